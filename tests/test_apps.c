/* SPDX-License-Identifier: MIT */
/*
 * Integration: the built tlsserver and tlsclient, run as processes with pipes, against
 * each other and against raw peers made in the test (plain TCP, raw OpenSSL).
 * Contract: notes/CONTRACTS.md and DESIGN.md (listening line, per-connection log line,
 * exit codes).
 */
#include "common.h"

#include <arpa/inet.h>
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
#include <openssl/pem.h>
#include <openssl/ssl.h>

TK_SUITE(apps);

#define RUN_MS 60000
/* One line of the per-connection log, PEER on 127.0.0.1. */
#define CONN_RE_PREFIX "^tlsserver: conn 127\\.0\\.0\\.1:[0-9]+ "
#define TIME_RE "time=[0-9]+\\.[0-9]{3}s "

/* Run tlsclient with args (NULL-terminated) and stdin `in`; returns its exit code. */
static int client(struct tk_proc *p, const char *const args[], const char *in, size_t inlen)
{
    return tk_run_app(p, tk_client_bin(), args, in, inlen, RUN_MS);
}

/* tlsclient --ca CA HOST PORT with "hello\n": exit code; stdout checked when 0. */
static int hello_client(struct tk_proc *p, const char *ca, const char *host, const char *port,
                        const char *const extra[])
{
    const char *args[24];
    int n = 0;
    if (ca != NULL) {
        args[n++] = "--ca";
        args[n++] = tk_cert(ca);
    }
    for (int i = 0; extra != NULL && extra[i] != NULL; i++)
        args[n++] = extra[i];
    args[n++] = host;
    args[n++] = port;
    args[n] = NULL;
    int code = client(p, args, "hello\n", 6);
    if (code == 0)
        cr_expect_str_eq(p->outbuf, "hello\n", "echo through tlsclient; stderr: %s", p->errbuf);
    return code;
}

/* Wait for the server's next log line matching what a test expects. */
static void expect_log(struct tk_server *s, const char *needle, size_t times, const char *re)
{
    int found = tk_proc_wait_for_n(&s->p, 2, needle, times, 30000);
    cr_expect(found, "server log lacks \"%s\" (x%zu):\n%s", needle, times, s->p.errbuf);
    if (found && re != NULL)
        cr_expect(tk_matches(s->p.errbuf, re), "no server log line matches /%s/:\n%s", re,
                  s->p.errbuf);
}

/* ---- the basics -------------------------------------------------------------------- */

TK_TEST(apps, hello_and_log_line)
{
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", NULL);
    cr_expect(tk_matches(s.listening, "^tlsserver: listening on 127\\.0\\.0\\.1:[0-9]+$"),
              "listening line: %s", s.listening);
    struct tk_proc p;
    int code = hello_client(&p, "ca.crt", "localhost", s.portstr, NULL);
    cr_expect_eq(code, 0, "tlsclient exit %d; stderr: %s", code, p.errbuf);
    cr_expect_str_eq(p.errbuf, "", "tlsclient wrote to stderr on success");
    tk_proc_free(&p);
    expect_log(&s, " ok\n", 1,
               CONN_RE_PREFIX "proto=TLSv1\\.3 cipher=TLS_[A-Z0-9_]+ alpn=- in=6 out=6 " TIME_RE "ok$");
    tk_server_stop(&s);
}

TK_TEST(apps, five_megabytes_round_trip)
{
    struct tk_server s;
    static const char *const quiet[] = {"-q", NULL};
    tk_server_start(&s, "server", "127.0.0.1", quiet);
    size_t total = 5u << 20;
    unsigned char *data = malloc(total);
    cr_assert_not_null(data);
    tk_fill_pattern(data, total, 424242);
    const char *args[] = {"--ca", tk_cert("ca.crt"), "localhost", s.portstr, NULL};
    struct tk_proc p;
    int code = client(&p, args, (const char *)data, total);
    cr_expect_eq(code, 0, "exit %d: %s", code, p.errbuf);
    cr_expect_eq(p.outlen, total, "echoed %zu of %zu bytes", p.outlen, total);
    cr_expect(p.outlen == total && memcmp(p.outbuf, data, total) == 0, "echoed data differs");
    free(data);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

TK_TEST(apps, ipv6)
{
    struct tk_server s;
    tk_server_start(&s, "server", "::1", NULL);
    cr_expect(tk_matches(s.listening, "^tlsserver: listening on \\[::1\\]:[0-9]+$"), "%s",
              s.listening);
    struct tk_proc p;
    int code = hello_client(&p, "ca.crt", "::1", s.portstr, NULL);
    cr_expect_eq(code, 0, "exit %d: %s", code, p.errbuf);
    tk_proc_free(&p);
    expect_log(&s, " ok\n", 1, "^tlsserver: conn \\[::1\\]:[0-9]+ proto=TLSv1\\.3 .* ok$");
    tk_server_stop(&s);
}

TK_TEST(apps, default_bind_is_both_loopbacks)
{
    struct tk_server s;
    tk_server_start(&s, "server", NULL, NULL);
    char v6[64];
    snprintf(v6, sizeof v6, "[::1]:%s", s.portstr);
    cr_expect(tk_contains(s.listening, "127.0.0.1:") && tk_contains(s.listening, v6),
              "default bind: %s", s.listening);
    tk_server_stop(&s);
}

TK_TEST(apps, tls12)
{
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", NULL);
    static const char *const max12[] = {"--tls-max", "1.2", NULL};
    struct tk_proc p;
    int code = hello_client(&p, "ca.crt", "localhost", s.portstr, max12);
    cr_expect_eq(code, 0, "exit %d: %s", code, p.errbuf);
    tk_proc_free(&p);
    expect_log(&s, " ok\n", 1, CONN_RE_PREFIX "proto=TLSv1\\.2 cipher=ECDHE-[A-Z0-9-]+ alpn=- in=6 out=6 ");
    tk_server_stop(&s);

    /* Disjoint ranges: a handshake failure that is not about certificates. */
    static const char *const min13[] = {"--tls-min", "1.3", NULL};
    tk_server_start(&s, "server", "127.0.0.1", min13);
    code = hello_client(&p, "ca.crt", "localhost", s.portstr, max12);
    cr_expect_eq(code, 6, "exit %d (want 6): %s", code, p.errbuf);
    tk_proc_free(&p);
    expect_log(&s, "error=TLSKIT_E_PROTOCOL", 1, NULL);
    tk_server_stop(&s);
}

/* ---- verification ---------------------------------------------------------------------- */

TK_TEST(apps, negative_server_certificates)
{
    const struct {
        const char *cert, *ca, *reason, *alt;
    } cases[] = {
        {"expired", "ca.crt", "certificate has expired", NULL},
        {"notyet", "ca.crt", "not yet valid", NULL},
        {"wronghost", "ca.crt", "hostname mismatch", NULL},
        {"selfsigned", "ca.crt", "self-signed", "self signed"},
        {"otherca", "ca.crt", "unable to get local issuer certificate", NULL},
        {"server", "other-ca.crt", "unable to get local issuer certificate", NULL},
    };
    static const char *const quiet[] = {"-q", NULL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tk_server s;
        tk_server_start(&s, cases[i].cert, "127.0.0.1", quiet);
        struct tk_proc p;
        int code = hello_client(&p, cases[i].ca, "localhost", s.portstr, NULL);
        cr_expect_eq(code, 5, "%s/%s: exit %d (want 5): %s", cases[i].cert, cases[i].ca, code,
                     p.errbuf);
        cr_expect(tk_contains(p.errbuf, cases[i].reason) ||
                      (cases[i].alt && tk_contains(p.errbuf, cases[i].alt)),
                  "%s: stderr lacks \"%s\": %s", cases[i].cert, cases[i].reason, p.errbuf);
        cr_expect(tk_matches(p.errbuf, "^tlsclient: "), "%s: stderr: %s", cases[i].cert,
                  p.errbuf);
        cr_expect_str_eq(p.outbuf, "", "%s: data received from an unverified server",
                         cases[i].cert);
        tk_proc_free(&p);
        tk_server_stop(&s);
    }
}

TK_TEST(apps, servername_and_capath)
{
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", NULL);
    static const char *const wrong[] = {"--servername", "wrong.example", NULL};
    struct tk_proc p;
    int code = hello_client(&p, "ca.crt", "127.0.0.1", s.portstr, wrong);
    cr_expect_eq(code, 5, "--servername wrong.example: exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, "mismatch"), "%s", p.errbuf);
    tk_proc_free(&p);

    static const char *const right[] = {"--servername", "localhost", NULL};
    code = hello_client(&p, "ca.crt", "127.0.0.1", s.portstr, right);
    cr_expect_eq(code, 0, "--servername localhost: exit %d: %s", code, p.errbuf);
    tk_proc_free(&p);

    /* --capath with a c_rehash-style directory */
    char dir[512], path[700];
    tk_tmpdir(dir, sizeof dir);
    FILE *f = fopen(tk_cert("ca.crt"), "r");
    cr_assert_not_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    cr_assert_not_null(x);
    snprintf(path, sizeof path, "%s/%08lx.0", dir, X509_subject_name_hash(x));
    X509_free(x);
    size_t len;
    char *pem = tk_read_file(tk_cert("ca.crt"), &len);
    tk_write_file(path, pem, len);
    free(pem);
    const char *capath[] = {"--capath", dir, NULL};
    code = hello_client(&p, NULL, "localhost", s.portstr, capath);
    cr_expect_eq(code, 0, "--capath: exit %d: %s", code, p.errbuf);
    tk_proc_free(&p);
    tk_rmtree(dir);
    tk_server_stop(&s);
}

TK_TEST(apps, insecure_accepts_expired_with_warning)
{
    struct tk_server s;
    tk_server_start(&s, "expired", "127.0.0.1", NULL);
    static const char *const insecure[] = {"--insecure", NULL};
    struct tk_proc p;
    int code = hello_client(&p, NULL, "localhost", s.portstr, insecure);
    cr_expect_eq(code, 0, "exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains_ci(p.errbuf, "warning"), "no warning on stderr: \"%s\"", p.errbuf);
    cr_expect(tk_contains_ci(p.errbuf, "insecure") || tk_contains_ci(p.errbuf, "not verif"),
              "the warning does not say why: \"%s\"", p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

TK_TEST(apps, mtls)
{
    struct tk_server s;
    const char *const extra[] = {"--ca", tk_cert("ca.crt"), "--verify-client", NULL};
    tk_server_start(&s, "server", "127.0.0.1", extra);
    const struct {
        const char *name;
        int want;
    } cases[] = {
        {NULL, 5},
        {"client", 0},
        {"client-otherca", 5},
        {"client-expired", 5},
    };
    size_t errors = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char crt[600], key[600];
        const char *args[8];
        int n = 0;
        if (cases[i].name != NULL) {
            snprintf(crt, sizeof crt, "%s/%s.crt", tk_certs_dir(), cases[i].name);
            snprintf(key, sizeof key, "%s/%s.key", tk_certs_dir(), cases[i].name);
            args[n++] = "--cert";
            args[n++] = crt;
            args[n++] = "--key";
            args[n++] = key;
        }
        args[n] = NULL;
        struct tk_proc p;
        int code = hello_client(&p, "ca.crt", "localhost", s.portstr, args);
        cr_expect_eq(code, cases[i].want, "client cert %s: exit %d (want %d): %s",
                     tk_str(cases[i].name), code, cases[i].want, p.errbuf);
        tk_proc_free(&p);
        if (cases[i].want != 0) {
            errors++;
            expect_log(&s, "error=TLSKIT_E_VERIFY", errors, NULL);
        }
    }
    tk_server_stop(&s);
}

/* ---- connection failures ------------------------------------------------------------- */

TK_TEST(apps, refused_and_unresolvable)
{
    int port;
    int hold = tk_tcp_bound("127.0.0.1", 0, &port);
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct tk_proc p;
    int code = hello_client(&p, "ca.crt", "127.0.0.1", portstr, NULL);
    cr_expect_eq(code, 3, "refused: exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, "Connection refused"), "%s", p.errbuf);
    tk_proc_free(&p);
    close(hold);

    code = hello_client(&p, "ca.crt", "nonexistent.invalid", "443", NULL);
    cr_expect_eq(code, 3, "unresolvable: exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, "nonexistent.invalid"), "%s", p.errbuf);
    tk_proc_free(&p);
}

TK_TEST(apps, silent_server_times_out)
{
    int port;
    int lfd = tk_tcp_bound("127.0.0.1", 8, &port); /* listens, never accepts */
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    static const char *const t[] = {"--timeout", "0.5", NULL};
    struct tk_proc p;
    int64_t t0 = tk_now_ms();
    int code = hello_client(&p, "ca.crt", "localhost", portstr, t);
    int64_t dt = tk_now_ms() - t0;
    cr_expect_eq(code, 4, "exit %d (want 4): %s", code, p.errbuf);
    cr_expect_lt(dt, 20000, "--timeout 0.5 took %lld ms", (long long)dt);
    cr_expect(tk_matches(p.errbuf, "^tlsclient: "), "%s", p.errbuf);
    tk_proc_free(&p);
    close(lfd);
}

/* ---- a raw OpenSSL server that goes away without close_notify --------------------- */

struct raw_server {
    int lfd;
    SSL_CTX *ctx;
    int accepted;
};

static void *raw_server_thread(void *arg)
{
    struct raw_server *r = arg;
    struct pollfd pfd = {.fd = r->lfd, .events = POLLIN};
    if (poll(&pfd, 1, 30000) != 1)
        return NULL;
    int fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return NULL;
    SSL *ssl = SSL_new(r->ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        r->accepted = 1;
        SSL_write(ssl, "partial\n", 8);
    }
    /* No SSL_shutdown: the stream just ends. */
    SSL_free(ssl);
    close(fd);
    ERR_clear_error();
    return NULL;
}

TK_TEST(apps, truncation_mid_stream)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    cr_assert_not_null(ctx);
    cr_assert_eq(SSL_CTX_use_certificate_chain_file(ctx, tk_cert("server.crt")), 1);
    cr_assert_eq(SSL_CTX_use_PrivateKey_file(ctx, tk_cert("server.key"), SSL_FILETYPE_PEM), 1);
    int port;
    struct raw_server r = {.lfd = tk_tcp_bound("127.0.0.1", 8, &port), .ctx = ctx};
    pthread_t t = tk_thread_start(raw_server_thread, &r);
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    /* stdin stays open: the client is not closing, the server just goes away. */
    const char *argv[] = {tk_client_bin(), "--ca", tk_cert("ca.crt"), "localhost", portstr,
                          NULL};
    struct tk_proc p;
    tk_proc_start(&p, argv);
    int code = tk_proc_wait(&p, RUN_MS);
    tk_thread_join(t);
    cr_expect(r.accepted, "the raw server's handshake failed: %s", p.errbuf);
    cr_expect_eq(code, 7, "exit %d (want 7): %s", code, p.errbuf);
    cr_expect_str_eq(p.outbuf, "partial\n");
    cr_expect(tk_contains_ci(p.errbuf, "truncat"), "stderr: %s", p.errbuf);
    tk_proc_free(&p);
    close(r.lfd);
    SSL_CTX_free(ctx);
}

/* ---- garbage and stalls towards tlsserver -------------------------------------------- */

/* Send bytes on a raw TCP connection and wait (bounded) for the server to hang up. */
static void raw_send_and_wait(int port, const void *data, size_t len)
{
    int fd = tk_tcp_connect("127.0.0.1", port);
    if (len > 0)
        cr_assert_eq(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
    int64_t end = tk_now_ms() + 30000;
    char buf[512];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = end - tk_now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break; /* closed (or reset) by the server */
    }
    close(fd);
}

TK_TEST(apps, garbage_logged_and_server_keeps_serving)
{
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", NULL);
    static const char http[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    raw_send_and_wait(s.port, http, sizeof http - 1);
    expect_log(&s, "error=TLSKIT_E_PROTOCOL", 1,
               CONN_RE_PREFIX "proto=- cipher=- alpn=- in=0 out=0 " TIME_RE "error=TLSKIT_E_PROTOCOL: .+$");
    unsigned char ff[64];
    memset(ff, 0xff, sizeof ff);
    raw_send_and_wait(s.port, ff, sizeof ff);
    expect_log(&s, "error=TLSKIT_E_PROTOCOL", 2, NULL);
    struct tk_proc p;
    int code = hello_client(&p, "ca.crt", "localhost", s.portstr, NULL);
    cr_expect_eq(code, 0, "after garbage: exit %d: %s", code, p.errbuf);
    tk_proc_free(&p);
    expect_log(&s, " ok\n", 1, NULL);
    tk_server_stop(&s);
}

TK_TEST(apps, handshake_timeout_logged)
{
    struct tk_server s;
    static const char *const hto[] = {"--handshake-timeout", "0.5", NULL};
    tk_server_start(&s, "server", "127.0.0.1", hto);
    int64_t t0 = tk_now_ms();
    raw_send_and_wait(s.port, NULL, 0); /* connects, says nothing */
    int64_t dt = tk_now_ms() - t0;
    cr_expect_lt(dt, 20000, "a 0.5 s handshake timeout took %lld ms", (long long)dt);
    expect_log(&s, "error=TLSKIT_E_TIMEOUT", 1,
               CONN_RE_PREFIX "proto=- cipher=- alpn=- in=0 out=0 " TIME_RE "error=TLSKIT_E_TIMEOUT: .+$");
    struct tk_proc p;
    int code = hello_client(&p, "ca.crt", "localhost", s.portstr, NULL);
    cr_expect_eq(code, 0, "exit %d: %s", code, p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

TK_TEST(apps, exit_after_one)
{
    struct tk_server s;
    static const char *const one[] = {"--exit-after", "1", NULL};
    tk_server_start(&s, "server", "127.0.0.1", one);
    struct tk_proc p;
    int code = hello_client(&p, "ca.crt", "localhost", s.portstr, NULL);
    cr_expect_eq(code, 0, "exit %d: %s", code, p.errbuf);
    tk_proc_free(&p);
    int scode = tk_proc_wait(&s.p, 30000); /* no signal: it must leave on its own */
    cr_expect_eq(scode, 0, "tlsserver --exit-after 1: exit %d: %s", scode, s.p.errbuf);
    tk_proc_free(&s.p);
}

TK_TEST(apps, sigint_and_sigterm_exit_zero)
{
    static const int sigs[] = {SIGTERM, SIGINT};
    for (size_t i = 0; i < 2; i++) {
        struct tk_server s;
        tk_server_start(&s, "server", "127.0.0.1", NULL);
        /* with a connection open and idle */
        int fd = tk_tcp_connect("127.0.0.1", s.port);
        kill(s.p.pid, sigs[i]);
        int code = tk_proc_wait(&s.p, 30000);
        cr_expect_eq(code, 0, "signal %d: exit %d: %s", sigs[i], code, s.p.errbuf);
        close(fd);
        tk_proc_free(&s.p);
    }
}

TK_TEST(apps, quiet_server_logs_no_connections)
{
    struct tk_server s;
    static const char *const q[] = {"-q", NULL};
    tk_server_start(&s, "server", "127.0.0.1", q);
    struct tk_proc p;
    int code = hello_client(&p, "ca.crt", "localhost", s.portstr, NULL);
    cr_expect_eq(code, 0, "exit %d: %s", code, p.errbuf);
    tk_proc_free(&p);
    kill(s.p.pid, SIGTERM);
    cr_expect_eq(tk_proc_wait(&s.p, 30000), 0);
    cr_expect(!tk_contains(s.p.errbuf, "tlsserver: conn"), "-q logged: %s", s.p.errbuf);
    tk_proc_free(&s.p);
}

/* ---- start-up and usage errors ------------------------------------------------------------ */

static int server_run(struct tk_proc *p, const char *const args[])
{
    return tk_run_app(p, tk_server_bin(), args, NULL, 0, RUN_MS);
}

TK_TEST(apps, usage_errors)
{
    const struct {
        int server;
        const char *args[6];
    } cases[] = {
        {1, {"--bogus-flag"}},
        {1, {"--port"}},
        {1, {"--verify-client=sometimes"}},
        {1, {"--tls-min", "1.1"}},
        {1, {"--tickets", "17"}},
        {1, {"--tickets", "-1"}},
        {0, {"--bogus-flag", "localhost", "443"}},
        {0, {"localhost"}},
        {0, {"--timeout", "soon", "localhost", "443"}},
        {0, {"--tls-max", "1.0", "localhost", "443"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[8];
        int n = 0;
        if (cases[i].server) {
            args[n++] = "--port";
            args[n++] = "0";
        }
        for (int k = 0; cases[i].args[k] != NULL; k++)
            args[n++] = cases[i].args[k];
        args[n] = NULL;
        struct tk_proc p;
        int code = cases[i].server ? server_run(&p, args) : client(&p, args, NULL, 0);
        const char *prog = cases[i].server ? "tlsserver" : "tlsclient";
        cr_expect_eq(code, 2, "%s %s: exit %d (want 2): %s", prog, cases[i].args[0], code,
                     p.errbuf);
        cr_expect(tk_contains_ci(p.errbuf, "usage"), "%s %s: no usage on stderr: %s", prog,
                  cases[i].args[0], p.errbuf);
        char prefix[32];
        snprintf(prefix, sizeof prefix, "%s: ", prog);
        cr_expect(tk_contains(p.errbuf, prefix), "%s: message not prefixed: %s", prog, p.errbuf);
        cr_expect_str_eq(p.outbuf, "", "%s %s: wrote to stdout", prog, cases[i].args[0]);
        tk_proc_free(&p);
    }
}

TK_TEST(apps, help_and_version)
{
    for (int server = 0; server < 2; server++) {
        static const char *const help[] = {"--help", NULL}, *const version[] = {"--version", NULL};
        struct tk_proc p;
        int code = server ? server_run(&p, help) : client(&p, help, NULL, 0);
        cr_expect_eq(code, 0);
        cr_expect(tk_contains(p.outbuf, "Usage"), "--help: %s", p.outbuf);
        tk_proc_free(&p);
        code = server ? server_run(&p, version) : client(&p, version, NULL, 0);
        cr_expect_eq(code, 0);
        cr_expect(tk_contains(p.outbuf, TLSKIT_VERSION_STRING), "--version: %s", p.outbuf);
        tk_proc_free(&p);
    }
}

TK_TEST(apps, server_startup_errors)
{
    char dir[512], missing[600];
    tk_tmpdir(dir, sizeof dir);
    snprintf(missing, sizeof missing, "%s/missing.key", dir);
    const char *crt = tk_cert("server.crt");
    char crtbuf[600];
    snprintf(crtbuf, sizeof crtbuf, "%s", crt);
    const struct {
        const char *what;
        const char *args[10];
        const char *needle, *needle2;
    } cases[] = {
        {"missing key", {"--cert", crtbuf, "--key", missing}, missing, "No such file or directory"},
        {"key/cert mismatch", {"--cert", crtbuf, "--key", tk_cert("client.key")}, "client.key", NULL},
        {"RSA-1024", {"--cert", tk_cert("rsa1024.crt"), "--key", tk_cert("rsa1024.key")},
         "rsa1024", NULL},
        {"missing CA", {"--cert", crtbuf, "--key", tk_cert("server.key"), "--ca", missing,
                        "--verify-client"}, missing, "No such file or directory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[16] = {"--port", "0", "--bind", "127.0.0.1"};
        int n = 4;
        for (int k = 0; cases[i].args[k] != NULL; k++)
            args[n++] = cases[i].args[k];
        args[n] = NULL;
        struct tk_proc p;
        int code = server_run(&p, args);
        cr_expect_eq(code, 1, "%s: exit %d (want 1): %s", cases[i].what, code, p.errbuf);
        cr_expect(tk_contains(p.errbuf, cases[i].needle), "%s: stderr lacks %s: %s",
                  cases[i].what, cases[i].needle, p.errbuf);
        if (cases[i].needle2 != NULL)
            cr_expect(tk_contains(p.errbuf, cases[i].needle2), "%s: stderr lacks %s: %s",
                      cases[i].what, cases[i].needle2, p.errbuf);
        cr_expect(!tk_contains(p.outbuf, "listening"), "%s: printed a listening line",
                  cases[i].what);
        tk_proc_free(&p);
    }
    tk_rmtree(dir);
}

TK_TEST(apps, server_port_in_use)
{
    struct tk_server a;
    tk_server_start(&a, "server", "127.0.0.1", NULL);
    const char *argv[] = {tk_server_bin(), "--port", a.portstr, "--bind", "127.0.0.1", "--cert",
                          tk_cert("server.crt"), "--key", tk_cert("server.key"), NULL};
    struct tk_proc p;
    tk_proc_start(&p, argv);
    /* It must fail at once. If it starts listening instead (e.g. two servers sharing the
     * port through SO_REUSEPORT), say so rather than wait for it. */
    int listening = tk_proc_wait_for(&p, 1, "listening", 30000);
    if (listening)
        kill(p.pid, SIGKILL);
    int code = tk_proc_wait(&p, RUN_MS);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%s", a.portstr);
    cr_expect(!listening, "a second tlsserver started on the port in use: %s", p.outbuf);
    cr_expect_eq(code, 1, "exit %d (want 1): %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, "Address already in use"), "%s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, addr), "does not name %s: %s", addr, p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&a);
}

TK_TEST(apps, client_file_errors)
{
    char dir[512], missing[600];
    tk_tmpdir(dir, sizeof dir);
    snprintf(missing, sizeof missing, "%s/missing-ca.crt", dir);
    /* No server needed: the files are checked before connecting. Port 9 is never used. */
    const char *args[] = {"--ca", missing, "localhost", "9", NULL};
    struct tk_proc p;
    int code = client(&p, args, NULL, 0);
    cr_expect_eq(code, 1, "missing --ca: exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, missing), "%s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, "No such file or directory"), "%s", p.errbuf);
    tk_proc_free(&p);
    const char *args2[] = {"--ca", tk_cert("ca.crt"), "--cert", tk_cert("client.crt"),
                           "--key", missing, "localhost", "9", NULL};
    code = client(&p, args2, NULL, 0);
    cr_expect_eq(code, 1, "missing --key: exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, missing), "%s", p.errbuf);
    tk_proc_free(&p);
    tk_rmtree(dir);
}
