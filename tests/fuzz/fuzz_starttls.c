/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: tlsclient --starttls's plain-text dialogues (apps/tlsclient/starttls.c),
 * the readers of SMTP/FTP numbered replies, IMAP tagged replies, POP3 multi-line replies,
 * XMPP stream features and the PostgreSQL SSLRequest answer. The input is everything the
 * server sends; it is written into a socketpair whose server end is then shut for
 * writing, so the dialogue always ends (agreement, refusal, or the server's "close").
 *
 * Input: [protocol selector] then the server's bytes (at most 64 KiB).
 * Invariants: the result is 0 or an exit code of the dialogue (4 never: nothing waits
 * for the deadline; 6 for every refusal); a failure has a reason, 0 has none; the reason
 * is printable ASCII and NUL-terminated within its buffer; no descriptor leaks.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "starttls.h"

#define MAX_INPUT 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size - 1 > MAX_INPUT)
        return 0;
    enum starttls_proto proto = (enum starttls_proto)(1 + data[0] % STARTTLS_POSTGRES);
    fz_fd_mark();
    int sv[2];
    FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %s",
             strerror(errno));
    int buf = 4 * MAX_INPUT;
    (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    (void)setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    size_t off = 1;
    while (off < size) {
        ssize_t n = send(sv[1], data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        FZ_CHECK(n > 0, "could not queue the input: %s", strerror(errno));
        off += (size_t)n;
    }
    shutdown(sv[1], SHUT_WR);

    char why[512];
    memset(why, 'Z', sizeof(why));
    int rc = starttls_run(sv[0], proto, "example.org", cli_now_ms() + 10000, why,
                          sizeof(why));
    FZ_CHECK(rc == 0 || rc == CLI_EXIT_HANDSHAKE, "%s: exit %d: %.200s", starttls_name(proto),
             rc, memchr(why, '\0', sizeof(why)) ? why : "(unterminated)");
    FZ_CHECK(memchr(why, '\0', sizeof(why)) != NULL, "reason not terminated");
    FZ_CHECK(rc == 0 ? why[0] == '\0' : why[0] != '\0', "exit %d with reason \"%s\"", rc, why);
    for (const char *p = why; *p; p++)
        FZ_CHECK(*p >= 0x20 && *p <= 0x7e, "byte 0x%02x in \"%s\"", (unsigned char)*p, why);
    close(sv[0]);
    close(sv[1]);
    fz_fd_check("starttls");
    return 0;
}
