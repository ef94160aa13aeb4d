/* SPDX-License-Identifier: MIT */
/*
 * Whole connections against a scripted peer: a socketpair(AF_UNIX) is the transport;
 * the fuzz input (after the flags byte, see fuzz_common.h) is everything the peer sends,
 * written before the connection starts and followed by the end of the stream. The
 * connection then handshakes, reads and echoes until it fails or the peer's bytes run
 * out, and is closed. What it sends back is read and thrown away.
 *
 * Invariants: every call returns what the header allows (0 / -1 / WANT, WANT only on a
 * non-blocking connection); a failure has a class the header lists for that call and a
 * message naming the operation; a failed handshake stays failed with the same error; a
 * completed one has a protocol, a cipher and, when verification is on, a verified peer
 * certificate; the OpenSSL error queue is left empty; no descriptor or memory leaks.
 */
#include "fuzz_handshake.h"

#include "fuzz_common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#define MAX_STEPS 1000 /* WANT returns before we call it a livelock */

static void drain(int fd)
{
    char buf[16384];
    while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
        ;
}

static void check_ret(tlskit_conn *c, ssize_t r, unsigned flags, const char *call)
{
    fz_check_err_queue(call);
    if (r == TLSKIT_WANT_READ || r == TLSKIT_WANT_WRITE) {
        FZ_CHECK(!(flags & FZ_BLOCKING), "%s returned WANT on a blocking connection", call);
        FZ_CHECK(tlskit_want_events(r) != 0, "%s: no poll events for WANT", call);
        return;
    }
    FZ_CHECK(r >= -1, "%s returned %zd", call, r);
    int code = tlskit_conn_error_code(c);
    const char *msg = tlskit_conn_error(c);
    FZ_CHECK(msg != NULL, "%s: NULL message", call);
    if (r == -1) {
        FZ_CHECK(fz_known_error(code) && msg[0] != '\0', "%s failed with class %d, \"%s\"",
                 call, code, msg);
    } else {
        FZ_CHECK(code == TLSKIT_E_NONE && msg[0] == '\0', "%s returned %zd with error %s: %s",
                 call, r, tlskit_error_name(code), msg);
    }
}

static void check_failed_handshake(tlskit_conn *c)
{
    int code = tlskit_conn_error_code(c);
    char msg[1024];
    snprintf(msg, sizeof(msg), "%s", tlskit_conn_error(c));
    FZ_CHECK(code == TLSKIT_E_VERIFY || code == TLSKIT_E_PROTOCOL || code == TLSKIT_E_TIMEOUT ||
                 code == TLSKIT_E_IO || code == TLSKIT_E_CLOSED,
             "handshake failed with class %s: %s", tlskit_error_name(code), msg);
    FZ_CHECK(strncmp(msg, "handshake with ", 15) == 0, "handshake error text: %s", msg);
    FZ_CHECK(!tlskit_conn_handshake_done(c), "failed, yet done");
    /* A client keeps what the server sent before the failure: its chain, and what its
     * ServerHello chose (tlskit.h). Nothing of it without a chain; none verified. */
    int nchain = tlskit_conn_peer_chain_count(c);
    const char *proto = tlskit_conn_protocol(c);
    if (nchain == 0)
        FZ_CHECK(proto == NULL && tlskit_conn_cipher(c) == NULL && tlskit_conn_group(c) == NULL,
                 "details of a failed handshake without a peer chain");
    else
        FZ_CHECK(proto == NULL || !strcmp(proto, "TLSv1.2") || !strcmp(proto, "TLSv1.3"),
                 "protocol %s after a failed handshake", proto);
    FZ_CHECK(tlskit_conn_trust_anchor(c) == NULL, "a trust anchor after a failed handshake");
    for (int i = 0; i < nchain; i++) {
        const char *fp = tlskit_conn_peer_chain_fingerprint(c, i);
        FZ_CHECK(fp != NULL && strncmp(fp, "SHA256:", 7) == 0, "chain[%d] fingerprint", i);
        FZ_CHECK(tlskit_conn_peer_chain_flags(c, i) == 0, "chain[%d] verified after a failed "
                 "handshake", i);
        (void)tlskit_conn_peer_chain_subject(c, i);
        (void)tlskit_conn_peer_chain_sans(c, i);
        (void)tlskit_conn_peer_chain_key_type(c, i);
        (void)tlskit_conn_peer_chain_key_bits(c, i);
        (void)tlskit_conn_peer_chain_key_group(c, i);
        (void)tlskit_conn_peer_chain_sigalg(c, i);
        (void)tlskit_conn_peer_chain_spki_sha256(c, i);
    }
    FZ_CHECK(tlskit_conn_peer_chain_subject(c, nchain) == NULL, "chain past its end");
    (void)tlskit_conn_peer_chain_pem(c);
    fz_check_err_queue("the peer chain getters (after a failed handshake)");
    FZ_CHECK(tlskit_conn_verify_result(c) != NULL, "no verify result after a handshake attempt");
    (void)tlskit_conn_servername(c);
    (void)tlskit_conn_peer_cert_provided(c);

    /* "After a failure the connection is unusable: further calls fail with the same
     * error." (tlskit.h, tlskit_conn_handshake) */
    int r = tlskit_conn_handshake(c);
    FZ_CHECK(r == -1, "a failed handshake returned %d the second time", r);
    fz_check_err_queue("tlskit_conn_handshake (again)");
    if (!fz_known("sticky-error"))
        FZ_CHECK(tlskit_conn_error_code(c) == code &&
                     strcmp(tlskit_conn_error(c), msg) == 0,
                 "the error changed on the second call: was %s \"%s\", now %s \"%s\"",
                 tlskit_error_name(code), msg, tlskit_error_name(tlskit_conn_error_code(c)),
                 tlskit_conn_error(c));
    char buf[16];
    ssize_t n = tlskit_conn_read(c, buf, sizeof(buf));
    fz_check_err_queue("tlskit_conn_read (after a failed handshake)");
    if (!fz_known("sticky-error"))
        FZ_CHECK(tlskit_conn_error_code(c) == code, "read after a failed handshake: %s "
                 "\"%s\"", tlskit_error_name(tlskit_conn_error_code(c)), tlskit_conn_error(c));
    FZ_CHECK(n == -1, "read after a failed handshake returned %zd", n);
}

static void check_open(int server, tlskit_conn *c, unsigned flags)
{
    FZ_CHECK(tlskit_conn_handshake_done(c), "handshake returned 0 but is not done");
    const char *proto = tlskit_conn_protocol(c);
    FZ_CHECK(proto && (!strcmp(proto, "TLSv1.2") || !strcmp(proto, "TLSv1.3")),
             "protocol %s", proto ? proto : "(null)");
    FZ_CHECK(tlskit_conn_cipher(c) != NULL, "no cipher");
    const char *verify = tlskit_conn_verify_result(c);
    FZ_CHECK(verify != NULL, "no verify result");
    int provided = tlskit_conn_peer_cert_provided(c);
    int verified = server ? (flags & FZ_VERIFY_MASK) == TLSKIT_VERIFY_CLIENT_REQUIRED
                          : !(flags & FZ_CLI_INSECURE);
    if (verified)
        FZ_CHECK(provided && strcmp(verify, "ok") == 0, "completed without a verified peer "
                 "certificate: %s", verify);
    if (provided) {
        const char *fp = tlskit_conn_peer_cert_fingerprint(c);
        FZ_CHECK(fp && strncmp(fp, "SHA256:", 7) == 0 && strlen(fp) == 7 + 32 * 3 - 1,
                 "fingerprint %s", fp ? fp : "(null)");
        FZ_CHECK(tlskit_conn_peer_cert_subject(c) && tlskit_conn_peer_cert_issuer(c) &&
                     tlskit_conn_peer_cert_sans(c), "peer certificate details missing");
        (void)tlskit_conn_peer_cert_notbefore(c);
        (void)tlskit_conn_peer_cert_notafter(c);
    }
    (void)tlskit_conn_group(c);
    (void)tlskit_conn_servername(c);
    (void)tlskit_conn_session_reused(c);
}

/* Read (and echo) until the peer's bytes are used up or something fails. */
static void talk(tlskit_conn *c, unsigned flags, int peer)
{
    char buf[4096];
    uint64_t total = 0;
    for (int steps = 0; steps < MAX_STEPS; steps++) {
        ssize_t n = tlskit_conn_read(c, buf, sizeof(buf));
        check_ret(c, n, flags, "tlskit_conn_read");
        if (n == TLSKIT_WANT_READ || n == TLSKIT_WANT_WRITE) {
            drain(peer);
            continue;
        }
        if (n == 0) { /* close_notify: stays at end of stream */
            n = tlskit_conn_read(c, buf, sizeof(buf));
            check_ret(c, n, flags, "tlskit_conn_read (after close_notify)");
            FZ_CHECK(n == 0, "read after close_notify returned %zd", n);
            return;
        }
        if (n < 0) {
            int code = tlskit_conn_error_code(c);
            FZ_CHECK(code == TLSKIT_E_TRUNCATED || code == TLSKIT_E_PROTOCOL ||
                         code == TLSKIT_E_CLOSED || code == TLSKIT_E_IO ||
                         code == TLSKIT_E_TIMEOUT || code == TLSKIT_E_VERIFY,
                     "read failed with class %s: %s", tlskit_error_name(code),
                     tlskit_conn_error(c));
            return;
        }
        total += (uint64_t)n;
        FZ_CHECK(tlskit_conn_bytes_in(c) == total, "bytes_in %llu, read %llu",
                 (unsigned long long)tlskit_conn_bytes_in(c), (unsigned long long)total);
        ssize_t w = tlskit_conn_write(c, buf, (size_t)n);
        check_ret(c, w, flags, "tlskit_conn_write");
        drain(peer);
        if (w == -1)
            return;
    }
    FZ_CHECK(0, "reading does not progress after %d steps", MAX_STEPS);
}

/* Building a config (SSL_CTX_new, PEM parsing) costs more than the rest of an input with
 * OpenSSL 3, so there is one per flags value, kept. The only state a connection leaves in
 * its config is the server's session cache: emptied before every input, so that no input
 * depends on the ones before it. */
static tlskit_config *config_for(int server, unsigned flags)
{
    static tlskit_config *cache[2][256];
    tlskit_config **slot = &cache[server != 0][flags & 0xff];
    if (!*slot)
        *slot = server ? fz_server_config(flags) : fz_client_config(flags);
    SSL_CTX_flush_sessions(tlskit_config_ssl_ctx(*slot), LONG_MAX);
    return *slot;
}

static void send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) { /* stops when the socket buffer is full: the rest is not sent */
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

void fz_handshake_run(int server, const uint8_t *data, size_t size)
{
    struct fz_input in = {data, size};
    unsigned flags = fz_take_u8(&in);
    int sv[2];

    fz_fd_mark();
    FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %s",
             strerror(errno));
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    send_all(sv[1], in.p, in.n);
    if (flags & FZ_PEER_CLOSE) {
        close(sv[1]);
        sv[1] = -1;
    } else {
        shutdown(sv[1], SHUT_WR);
    }
    if (!(flags & FZ_BLOCKING))
        fcntl(sv[0], F_SETFL, O_NONBLOCK);

    tlskit_conn *c = tlskit_conn_new(config_for(server, flags));
    FZ_CHECK(c != NULL, "out of memory");
    int rc;
    if (server) {
        rc = tlskit_conn_wrap_server(c, sv[0]);
    } else {
        const char *name = (flags & FZ_CLI_INSECURE) ? NULL
                           : (flags & FZ_CLI_IPNAME) ? "127.0.0.1"
                                                     : "localhost";
        rc = tlskit_conn_wrap_client(c, sv[0], name);
    }
    check_ret(c, rc, flags, "wrap");
    FZ_CHECK(rc == 0, "wrap failed: %s", tlskit_conn_error(c));
    FZ_CHECK(tlskit_conn_fd(c) == sv[0], "fd");

    int r = TLSKIT_WANT_READ;
    for (int steps = 0; steps < MAX_STEPS && r != 0 && r != -1; steps++) {
        r = tlskit_conn_handshake(c);
        check_ret(c, r, flags, "tlskit_conn_handshake");
        drain(sv[1]);
    }
    FZ_CHECK(r == 0 || r == -1, "the handshake does not progress after %d steps", MAX_STEPS);
    if (getenv("TLSKIT_FUZZ_DEBUG"))
        fprintf(stderr, "fuzz: %s handshake (flags 0x%02x): %s\n", server ? "server" : "client",
                flags, r == 0 ? "completed" : tlskit_conn_error(c));
    if (r == -1) {
        check_failed_handshake(c);
    } else {
        check_open(server, c, flags);
        talk(c, flags, sv[1]);
    }
    rc = tlskit_conn_close(c);
    fz_check_err_queue("tlskit_conn_close");
    FZ_CHECK(rc == 0 || rc == -1, "close returned %d", rc);
    char buf[8];
    ssize_t n = tlskit_conn_read(c, buf, sizeof(buf));
    FZ_CHECK(n == -1 && tlskit_conn_error_code(c) == TLSKIT_E_CLOSED,
             "read after close returned %zd (%s)", n, tlskit_conn_error(c));
    tlskit_conn_free(c);
    fz_check_err_queue("tlskit_conn_free");
    close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    fz_fd_check("connection");
}
