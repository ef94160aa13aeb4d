/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: session-ticket key loading (tickets.c, nginx's ssl_session_ticket_key
 * format) — tlskit_config_add_ticket_key_mem() and, through a private temporary file,
 * tlskit_config_add_ticket_key_file().
 *
 * Input: [0] split: the first (split % (rest + 1)) bytes of the rest go to the memory
 * call, the others are written to the file for the file call. Invariants: 0 exactly when
 * the length is 48 or 80 (the file call: when not more than 80 bytes either); on -1 the
 * class FILE and a message naming the key ("ticket key"); the OpenSSL error queue is left
 * empty; no leaks (LeakSanitizer).
 */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void check(tlskit_config *cfg, int rc, size_t len, const char *call)
{
    int code = tlskit_config_error_code(cfg);
    const char *msg = tlskit_config_error(cfg);
    int good = len == 48 || len == 80;
    FZ_CHECK(rc == (good ? 0 : -1), "%s: %zu bytes gave %d: %s", call, len, rc, msg);
    if (rc == 0) {
        FZ_CHECK(code == TLSKIT_E_NONE && msg[0] == '\0', "%s: success with error %s", call,
                 msg);
    } else {
        FZ_CHECK(code == TLSKIT_E_FILE, "%s: class %s: %s", call, tlskit_error_name(code), msg);
        FZ_CHECK(strstr(msg, "ticket key") != NULL, "%s: message without 'ticket key': %s",
                 call, msg);
    }
    fz_check_err_queue(call);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[] = "/tmp/fuzz_ticket_key.XXXXXX";
    static int fd = -1;
    if (size < 1)
        return 0;
    if (fd < 0) {
        fd = mkstemp(path); /* mode 0600, as a key file must be */
        FZ_CHECK(fd >= 0, "mkstemp failed");
        unlink(path);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    size_t rest = size - 1, split = data[0] % (rest + 1);
    const uint8_t *file_part = data + 1 + split;
    size_t file_len = rest - split;

    tlskit_config *cfg = tlskit_config_new();
    FZ_CHECK(cfg != NULL, "no config");
    check(cfg, tlskit_config_add_ticket_key_mem(cfg, data + 1, split), split, "mem");

    FZ_CHECK(ftruncate(fd, 0) == 0 && pwrite(fd, file_part, file_len, 0) == (ssize_t)file_len,
             "writing the key file failed");
    check(cfg, tlskit_config_add_ticket_key_file(cfg, path), file_len, "file");
    tlskit_config_free(cfg);
    return 0;
}
