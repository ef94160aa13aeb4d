/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: loading a saved client session (session.c) —
 * tlskit_conn_session_load_mem() with arbitrary bytes on a client connection that has
 * not shaken hands (over a socketpair nobody answers).
 *
 * Input: the PEM bytes. Invariants: 0 or -1; on -1 the class FILE, INVALID or NOMEM and a
 * message naming the session; the OpenSSL error queue is left empty; no leaks
 * (LeakSanitizer).
 */
#include "fuzz_common.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tlskit_config *cfg;
    int sv[2];
    if (!cfg) {
        cfg = tlskit_config_new();
        FZ_CHECK(cfg != NULL, "no config");
    }
    FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    tlskit_conn *c = tlskit_conn_new(cfg);
    FZ_CHECK(c != NULL, "no connection");
    FZ_CHECK(tlskit_conn_wrap_client(c, sv[0], "localhost") == 0, "wrap: %s",
             tlskit_conn_error(c));
    int rc = tlskit_conn_session_load_mem(c, data, size);
    int code = tlskit_conn_error_code(c);
    const char *msg = tlskit_conn_error(c);
    FZ_CHECK(rc == 0 || rc == -1, "returned %d", rc);
    if (rc == 0)
        FZ_CHECK(code == TLSKIT_E_NONE && msg[0] == '\0', "success with error: %s", msg);
    else
        FZ_CHECK((code == TLSKIT_E_FILE || code == TLSKIT_E_INVALID || code == TLSKIT_E_NOMEM) &&
                     strstr(msg, "session") != NULL,
                 "class %s: %s", tlskit_error_name(code), msg);
    fz_check_err_queue("load session");
    tlskit_conn_free(c);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
