/* SPDX-License-Identifier: MIT */
/*
 * Hostile servers against the built tlsclient.
 *
 * Each test runs one malicious or broken server in a thread of the test (raw sockets, or
 * OpenSSL's server API with the generated bad certificates, at security level 0 where it
 * has to serve what OpenSSL would refuse) and points `tlsclient --ca ca.crt localhost PORT`
 * at it. The client must end with the exit code DESIGN.md gives for the failure
 * (0 ok, 1 other, 2 usage, 3 connect, 4 timeout, 5 verification, 6 handshake, 7 broken after
 * the handshake) and say why on stderr, `tlsclient: what: why`; before a handshake has
 * succeeded, nothing may reach stdout.
 */
#include "common.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

TK_SUITE(hostile_servers);

/* Bounds for the evil server's own waits: far above anything a passing test needs, so a
 * broken client fails its assertions instead of hanging the suite. */
#define EVIL_WAIT_MS 20000
#define CLIENT_RUN_MS 60000

struct evil;
typedef void (*behave_fn)(struct evil *e, int fd);

struct evil {
    int lfd, port;
    char portstr[16];
    behave_fn behave;
    SSL_CTX *ctx;        /* for the behaviours that speak TLS */
    pthread_t thread;
    int accepted;
    int handshake_ok;    /* the OpenSSL server completed its side */
    char note[256];      /* what the server saw, for failure messages */
};

/* ---------------------------------------------------------------------------------------
 * The server thread and its helpers
 * ------------------------------------------------------------------------------------- */

static void *evil_main(void *arg)
{
    struct evil *e = arg;
    struct pollfd p = {.fd = e->lfd, .events = POLLIN};
    if (poll(&p, 1, EVIL_WAIT_MS) != 1) {
        snprintf(e->note, sizeof e->note, "no client connected");
        return NULL;
    }
    int fd = accept4(e->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        snprintf(e->note, sizeof e->note, "accept: %s", strerror(errno));
        return NULL;
    }
    e->accepted = 1;
    struct timeval tv = {.tv_sec = EVIL_WAIT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    e->behave(e, fd); /* closes fd */
    ERR_clear_error();
    return NULL;
}

/* Read the client's first flight (its ClientHello) and note how much came. */
static void read_hello(struct evil *e, int fd)
{
    unsigned char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    snprintf(e->note, sizeof e->note, "read %zd bytes of ClientHello (first byte 0x%02x)", n,
             n > 0 ? buf[0] : 0);
}

/* Wait (bounded) until the client closes its end, discarding what it sends. */
static void wait_for_client_close(int fd)
{
    char buf[4096];
    int64_t end = tk_now_ms() + EVIL_WAIT_MS;
    for (;;) {
        int64_t left = end - tk_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return;
        if (recv(fd, buf, sizeof buf, 0) <= 0)
            return;
    }
}

static void send_bytes(int fd, const void *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, (const char *)data + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

static void rst_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* SSL_accept on fd; 1 when the handshake completed. */
static int tls_accept(struct evil *e, int fd, SSL **out)
{
    SSL *ssl = SSL_new(e->ctx);
    cr_assert_not_null(ssl);
    SSL_set_fd(ssl, fd);
    ERR_clear_error();
    int ok = SSL_accept(ssl) == 1;
    if (!ok) {
        const char *r = ERR_reason_error_string(ERR_peek_error());
        snprintf(e->note, sizeof e->note, "server handshake failed: %s", r ? r : "?");
    }
    e->handshake_ok = ok;
    *out = ssl;
    return ok;
}

/* Read one line ("hello\n") from the client after the handshake. */
static void tls_read_line(SSL *ssl, char *buf, size_t len)
{
    size_t got = 0;
    while (got + 1 < len) {
        int n = SSL_read(ssl, buf + got, 1);
        if (n <= 0)
            break;
        got++;
        if (buf[got - 1] == '\n')
            break;
    }
    buf[got] = '\0';
}

/* ---------------------------------------------------------------------------------------
 * Behaviours
 * ------------------------------------------------------------------------------------- */

/* A well-behaved TLS echo server (with whatever certificate or protocol range its context
 * has): echo until the client's close_notify, then answer it. */
static void behave_tls_echo(struct evil *e, int fd)
{
    SSL *ssl;
    if (tls_accept(e, fd, &ssl)) {
        char buf[4096];
        int n;
        while ((n = SSL_read(ssl, buf, sizeof buf)) > 0)
            if (SSL_write(ssl, buf, n) != n)
                break;
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    close(fd);
}

/* Echo the first line, then end the stream (a FIN) without close_notify. A plain close()
 * would turn into a reset if the client's own close_notify were already waiting unread, so
 * the FIN comes from shutdown() and the close only after the client has gone. */
static void behave_close_no_notify(struct evil *e, int fd)
{
    SSL *ssl;
    if (tls_accept(e, fd, &ssl)) {
        char line[64];
        tls_read_line(ssl, line, sizeof line);
        SSL_write(ssl, line, (int)strlen(line));
        shutdown(fd, SHUT_WR);
        wait_for_client_close(fd);
    }
    SSL_free(ssl);
    close(fd);
}

/* Echo the first line, then reset. */
static void behave_rst_after_handshake(struct evil *e, int fd)
{
    SSL *ssl;
    if (tls_accept(e, fd, &ssl)) {
        char line[64];
        tls_read_line(ssl, line, sizeof line);
        SSL_write(ssl, line, (int)strlen(line));
    }
    SSL_free(ssl);
    rst_close(fd);
}

/* After the handshake, an application-data record that is not encrypted under the session
 * keys: authentication of the record must fail. */
static void behave_garbage_after_handshake(struct evil *e, int fd)
{
    SSL *ssl;
    if (tls_accept(e, fd, &ssl)) {
        unsigned char rec[5 + 64];
        memcpy(rec, "\x17\x03\x03\x00\x40", 5);
        tk_fill_pattern(rec + 5, 64, 17);
        send_bytes(fd, rec, sizeof rec);
        wait_for_client_close(fd);
    }
    SSL_free(ssl);
    close(fd);
}

static void behave_plaintext(struct evil *e, int fd)
{
    static const char resp[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 12\r\nConnection: close\r\n\r\nBad Request\n";
    read_hello(e, fd);
    send_bytes(fd, resp, sizeof resp - 1);
    wait_for_client_close(fd);
    close(fd);
}

/* A well-formed handshake record whose contents are garbage. */
static void behave_garbage_record(struct evil *e, int fd)
{
    unsigned char rec[5 + 48];
    memcpy(rec, "\x16\x03\x03\x00\x30", 5);
    tk_fill_pattern(rec + 5, 48, 5);
    read_hello(e, fd);
    send_bytes(fd, rec, sizeof rec);
    wait_for_client_close(fd);
    close(fd);
}

static void behave_random_bytes(struct evil *e, int fd)
{
    unsigned char junk[1024];
    tk_fill_pattern(junk, sizeof junk, 23);
    junk[0] = 0x42;
    read_hello(e, fd);
    send_bytes(fd, junk, sizeof junk);
    wait_for_client_close(fd);
    close(fd);
}

/* A record header announcing 65535 bytes (more than RFC 8446 section 5.2 allows). */
static void behave_record_too_long(struct evil *e, int fd)
{
    unsigned char rec[5 + 20000];
    memset(rec, 0x41, sizeof rec);
    memcpy(rec, "\x16\x03\x03\xff\xff", 5);
    read_hello(e, fd);
    send_bytes(fd, rec, sizeof rec);
    wait_for_client_close(fd);
    close(fd);
}

/* Reads the ClientHello and then says nothing until the client gives up. */
static void behave_silent(struct evil *e, int fd)
{
    read_hello(e, fd);
    wait_for_client_close(fd);
    close(fd);
}

/* The first 20 bytes of a ServerHello record, then nothing. */
static void behave_truncated_server_hello(struct evil *e, int fd)
{
    static const unsigned char part[] = {0x16, 0x03, 0x03, 0x00, 0x7a, 0x02, 0x00, 0x00,
                                         0x76, 0x03, 0x03, 0x11, 0x22, 0x33, 0x44, 0x55,
                                         0x66, 0x77, 0x88, 0x99};
    read_hello(e, fd);
    send_bytes(fd, part, sizeof part);
    wait_for_client_close(fd);
    close(fd);
}

/* A ServerHello dripped one byte every 200 ms: each byte is progress, so only a total
 * handshake deadline (DESIGN.md) ends it; the record would take 25 s. */
static void behave_drip(struct evil *e, int fd)
{
    unsigned char rec[5 + 122];
    memcpy(rec, "\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03", 11);
    tk_fill_pattern(rec + 11, sizeof rec - 11, 41);
    read_hello(e, fd);
    for (size_t i = 0; i < sizeof rec; i++) {
        if (send(fd, rec + i, 1, MSG_NOSIGNAL) != 1)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 200) != 0)
            break; /* the client closed (or sent an alert): done */
    }
    wait_for_client_close(fd);
    close(fd);
}

/* A ServerHello whose handshake header claims 16 MiB - 1 bytes. */
static void behave_16mb_claim(struct evil *e, int fd)
{
    unsigned char rec[5 + 4 + 64];
    memcpy(rec, "\x16\x03\x03\x00\x44\x02\xff\xff\xff\x03\x03", 11);
    tk_fill_pattern(rec + 11, sizeof rec - 11, 43);
    read_hello(e, fd);
    send_bytes(fd, rec, sizeof rec);
    wait_for_client_close(fd);
    close(fd);
}

static void behave_rst_after_hello(struct evil *e, int fd)
{
    read_hello(e, fd);
    rst_close(fd);
}

static void behave_eof_after_hello(struct evil *e, int fd)
{
    read_hello(e, fd);
    close(fd);
}

/* A fatal handshake_failure alert instead of a ServerHello. */
static void behave_fatal_alert(struct evil *e, int fd)
{
    static const unsigned char alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
    read_hello(e, fd);
    send_bytes(fd, alert, sizeof alert);
    wait_for_client_close(fd);
    close(fd);
}

/* A ServerHello choosing SSL 3.0 (RFC 7568 forbids it) with a plain RSA suite. */
static void behave_sslv3_server_hello(struct evil *e, int fd)
{
    unsigned char rec[5 + 4 + 2 + 32 + 1 + 2 + 1];
    size_t n = 0;
    memcpy(rec, "\x16\x03\x00\x00\x2a", 5); /* record: 4 + 38 bytes */
    n = 5;
    rec[n++] = 2; /* server_hello */
    rec[n++] = 0;
    rec[n++] = 0;
    rec[n++] = 38;
    rec[n++] = 3; /* version 3.0 */
    rec[n++] = 0;
    tk_fill_pattern(rec + n, 32, 31);
    n += 32;
    rec[n++] = 0;    /* no session id */
    rec[n++] = 0x00; /* TLS_RSA_WITH_AES_128_CBC_SHA */
    rec[n++] = 0x2f;
    rec[n++] = 0; /* null compression */
    read_hello(e, fd);
    send_bytes(fd, rec, n);
    wait_for_client_close(fd);
    close(fd);
}

/* ---------------------------------------------------------------------------------------
 * The runner
 * ------------------------------------------------------------------------------------- */

struct evil_case {
    const char *name;
    behave_fn behave;
    const char *cert;    /* NAME for NAME.crt/NAME.key: an OpenSSL server; NULL: raw */
    int min, max;        /* the OpenSSL server's protocol range (0: default) */
    int seclevel0;       /* serve what OpenSSL refuses at its default level */
    const char *timeout; /* tlsclient --timeout */
    int want_exit;
    const char *reasons[3]; /* stderr must contain one of these */
    const char *want_out;   /* exact stdout (NULL: nothing) */
    int any_out;            /* stdout not checked (a race decides it) */
    int max_ms;             /* the client must be done within this (0: not checked) */
};

static SSL_CTX *evil_ctx(const struct evil_case *c)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    cr_assert_not_null(ctx);
    if (c->seclevel0) {
        SSL_CTX_set_security_level(ctx, 0);
        cr_assert_eq(SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0"), 1);
    }
    if (c->min)
        cr_assert_eq(SSL_CTX_set_min_proto_version(ctx, c->min), 1);
    if (c->max)
        cr_assert_eq(SSL_CTX_set_max_proto_version(ctx, c->max), 1);
    char crt[128], key[128];
    snprintf(crt, sizeof crt, "%s.crt", c->cert);
    snprintf(key, sizeof key, "%s.key", c->cert);
    cr_assert_eq(SSL_CTX_use_certificate_chain_file(ctx, tk_cert(crt)), 1, "%s: %s", crt,
                 ERR_reason_error_string(ERR_peek_error()));
    cr_assert_eq(SSL_CTX_use_PrivateKey_file(ctx, tk_cert(key), SSL_FILETYPE_PEM), 1,
                 "%s: %s", key, ERR_reason_error_string(ERR_peek_error()));
    return ctx;
}

static void run_case(const struct evil_case *c)
{
    /* The evil server writes to a client that may be gone: EPIPE, not death. */
    signal(SIGPIPE, SIG_IGN);
    struct evil e;
    memset(&e, 0, sizeof e);
    e.behave = c->behave;
    e.ctx = c->cert != NULL ? evil_ctx(c) : NULL;
    e.lfd = tk_tcp_bound("127.0.0.1", 8, &e.port);
    snprintf(e.portstr, sizeof e.portstr, "%d", e.port);
    e.thread = tk_thread_start(evil_main, &e);

    const char *argv[] = {tk_client_bin(), "--ca", tk_cert("ca.crt"), "--timeout",
                          c->timeout != NULL ? c->timeout : "10", "localhost", e.portstr,
                          NULL};
    struct tk_proc p;
    int64_t t0 = tk_now_ms();
    int code = tk_run(&p, argv, "hello\n", 6, CLIENT_RUN_MS);
    int64_t ms = tk_now_ms() - t0;
    tk_thread_join(e.thread);
    close(e.lfd);
    SSL_CTX_free(e.ctx);

    cr_expect(e.accepted, "%s: tlsclient never connected; stderr: %s", c->name, p.errbuf);
    cr_expect_eq(code, c->want_exit, "%s: tlsclient exit %d, want %d (after %lld ms); "
                 "stderr: %s; server: %s", c->name, code, c->want_exit, (long long)ms,
                 p.errbuf, e.note);
    if (c->max_ms > 0)
        cr_expect_leq(ms, c->max_ms, "%s: tlsclient --timeout %s took %lld ms", c->name,
                      c->timeout, (long long)ms);
    if (c->want_exit == 0) {
        cr_expect_str_eq(p.errbuf, "", "%s: stderr on success", c->name);
    } else {
        int named = 0;
        for (int i = 0; i < 3 && c->reasons[i] != NULL; i++)
            named |= tk_contains_ci(p.errbuf, c->reasons[i]);
        cr_expect(named, "%s: stderr does not name the reason (\"%s\"%s%s%s): %s", c->name,
                  c->reasons[0], c->reasons[1] ? " or \"" : "",
                  c->reasons[1] ? c->reasons[1] : "", c->reasons[1] ? "\"" : "", p.errbuf);
        cr_expect(tk_matches(p.errbuf, "^tlsclient: [^\n]+: "),
                  "%s: not `tlsclient: what: why`: %s", c->name, p.errbuf);
    }
    if (!c->any_out)
        cr_expect_str_eq(p.outbuf, c->want_out != NULL ? c->want_out : "",
                         "%s: stdout differs", c->name);
    cr_expect(!tk_contains(p.errbuf, "PRIVATE KEY"), "%s: key material printed", c->name);
    cr_log_info("%s: exit %d after %lld ms: %s", c->name, code, (long long)ms, p.errbuf);
    tk_proc_free(&p);
}

#define EVIL(name_, ...)                                                                 \
    TK_TEST(hostile_servers, name_)                                                     \
    {                                                                                   \
        static const struct evil_case c = {.name = #name_, __VA_ARGS__};                \
        run_case(&c);                                                                   \
    }

/* ---------------------------------------------------------------------------------------
 * The cases
 * ------------------------------------------------------------------------------------- */

/* Sanity: the harness itself with a good server. */
EVIL(good_server_echoes, .behave = behave_tls_echo, .cert = "server", .want_exit = 0,
     .want_out = "hello\n")

/* certificates (exit 5) */
EVIL(expired_certificate, .behave = behave_tls_echo, .cert = "expired", .want_exit = 5,
     .reasons = {"certificate has expired"})
EVIL(not_yet_valid_certificate, .behave = behave_tls_echo, .cert = "notyet", .want_exit = 5,
     .reasons = {"certificate is not yet valid", "not yet valid"})
EVIL(wrong_host_certificate, .behave = behave_tls_echo, .cert = "wronghost", .want_exit = 5,
     .reasons = {"hostname mismatch"})
EVIL(self_signed_certificate, .behave = behave_tls_echo, .cert = "selfsigned",
     .want_exit = 5, .reasons = {"self-signed certificate", "self signed certificate"})
EVIL(other_ca_certificate, .behave = behave_tls_echo, .cert = "otherca", .want_exit = 5,
     .reasons = {"unable to get local issuer certificate"})
/* A 1024-bit RSA key is below OpenSSL's default security level 2 (112 bits); the client
 * refuses it while verifying the chain: "EE certificate key too weak". */
EVIL(rsa1024_certificate, .behave = behave_tls_echo, .cert = "rsa1024", .seclevel0 = 1,
     .want_exit = 5, .reasons = {"key too weak", "too small"})

/* protocol versions (exit 6) */
EVIL(tls10_only_server, .behave = behave_tls_echo, .cert = "server", .min = TLS1_VERSION,
     .max = TLS1_VERSION, .seclevel0 = 1, .want_exit = 6, .reasons = {"protocol version"})
EVIL(tls11_only_server, .behave = behave_tls_echo, .cert = "server", .min = TLS1_1_VERSION,
     .max = TLS1_1_VERSION, .seclevel0 = 1, .want_exit = 6, .reasons = {"protocol version"})
EVIL(sslv3_server_hello, .behave = behave_sslv3_server_hello, .want_exit = 6,
     .reasons = {"unsupported protocol", "wrong ssl version", "version"})

/* not TLS, or broken TLS, before the handshake completes (exit 6) */
EVIL(plaintext_server, .behave = behave_plaintext, .want_exit = 6,
     .reasons = {"wrong version number", "not a TLS", "plaintext"})
EVIL(garbage_record, .behave = behave_garbage_record, .want_exit = 6,
     .reasons = {"unexpected message", "length", "decode"})
EVIL(random_bytes_server, .behave = behave_random_bytes, .want_exit = 6,
     .reasons = {"wrong version number", "record", "not a TLS"})
EVIL(record_too_long_server, .behave = behave_record_too_long, .want_exit = 6,
     .reasons = {"packet length too long", "record overflow", "too long"})
EVIL(fatal_alert_server, .behave = behave_fatal_alert, .want_exit = 6,
     .reasons = {"handshake failure"})
EVIL(rst_after_client_hello, .behave = behave_rst_after_hello, .want_exit = 6,
     .reasons = {"reset"})
EVIL(eof_after_client_hello, .behave = behave_eof_after_hello, .want_exit = 6,
     .reasons = {"closed"})

EVIL(handshake_16mb_claim_server, .behave = behave_16mb_claim, .want_exit = 6,
     .reasons = {"excessive message size", "too long", "too large"})

/* silence and stalls (exit 4). --timeout 1; 5 s leaves room for a loaded machine. */
EVIL(silent_server, .behave = behave_silent, .timeout = "1", .want_exit = 4,
     .reasons = {"timed out"}, .max_ms = 5000)
EVIL(truncated_server_hello_then_silence, .behave = behave_truncated_server_hello,
     .timeout = "1", .want_exit = 4, .reasons = {"timed out"}, .max_ms = 5000)
EVIL(server_hello_one_byte_every_200ms, .behave = behave_drip, .timeout = "1",
     .want_exit = 4, .reasons = {"timed out"}, .max_ms = 5000)

/* after the handshake (exit 7) */
EVIL(close_without_close_notify, .behave = behave_close_no_notify, .cert = "server",
     .want_exit = 7, .reasons = {"truncat", "close_notify"}, .want_out = "hello\n")
/* The echo and the reset race each other: a reset may discard unread data. */
EVIL(rst_after_handshake, .behave = behave_rst_after_handshake, .cert = "server",
     .want_exit = 7, .reasons = {"reset"}, .any_out = 1)
EVIL(garbage_after_handshake, .behave = behave_garbage_after_handshake, .cert = "server",
     .want_exit = 7, .reasons = {"bad record mac", "decryption failed", "decrypt"})
