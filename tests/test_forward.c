/* SPDX-License-Identifier: MIT */
/* tlsserver --forward, and under it the engine's outbound connections and pairing:
 * bytes both ways byte-exact (1 MB, 100 MB), half-close each way, a backend that never
 * reads and a client that never reads (memory stays bounded, the write deadline ends
 * the pair), a backend that is down, slow to accept, resets mid-stream or drops the
 * connect, a UNIX-socket backend, 1,000 forwarded connections at once, and the PROXY
 * header a python3 backend parses (v1, v2 with the TLS TLVs and an mTLS client). The
 * backends are python3 sockets (tests/forward/backend.py). */
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
#include <sys/wait.h>
#include <unistd.h>

TK_SUITE(forward);
/* The 100 MB transfers: sanitizer builds move a few MB a second through two TLS stacks
 * and python. */
TestSuite(forward_big, .fini = tk_suite_fini, .timeout = 280);

#ifndef TK_FORWARD_BACKEND
#define TK_FORWARD_BACKEND "tests/forward/backend.py"
#endif

/* ---- backends ---- */

struct backend {
    struct tk_proc p;
    char port[16]; /* or "" for a UNIX socket */
};

static void backend_start(struct backend *b, const char *mode, const char *unix_path)
{
    const char *argv[] = {"/usr/bin/python3", "-u", TK_FORWARD_BACKEND, mode, unix_path, NULL};
    memset(b, 0, sizeof(*b));
    tk_proc_start(&b->p, argv);
    cr_assert(tk_proc_wait_for(&b->p, 1, "\n", 30000), "backend %s did not start: %s", mode,
              b->p.errbuf);
    if (!unix_path)
        snprintf(b->port, sizeof(b->port), "%d", atoi(b->p.outbuf));
}

/* The backend's next line containing what, within 30 s. */
static void backend_expect(struct backend *b, const char *what)
{
    cr_assert(tk_proc_wait_for(&b->p, 1, what, 30000), "backend never said \"%s\": %s%s",
              what, b->p.outbuf, b->p.errbuf);
}

static void backend_stop(struct backend *b)
{
    close(b->p.in);
    b->p.in = -1;
    int rc = tk_proc_wait(&b->p, 30000);
    cr_expect_eq(rc, 0, "backend exit %d: %s", rc, b->p.errbuf);
    tk_proc_free(&b->p);
}

/* ---- tlsserver --forward ---- */

static void forward_start(struct tk_server *s, const char *target, const char *const more[])
{
    const char *extra[24];
    int n = 0;
    extra[n++] = "--forward";
    extra[n++] = target;
    extra[n++] = "--workers";
    extra[n++] = "2";
    for (int i = 0; more && more[i] && n < 22; i++)
        extra[n++] = more[i];
    extra[n] = NULL;
    tk_server_start(s, "server", "127.0.0.1", extra);
}

static char *tcp_target(const struct backend *b)
{
    static char buf[64];
    snprintf(buf, sizeof(buf), "127.0.0.1:%s", b->port);
    return buf;
}

/* The counters line (SIGUSR1) contains what. */
static void expect_counters(struct tk_server *s, const char *what)
{
    cr_assert_eq(kill(s->p.pid, SIGUSR1), 0);
    cr_expect(tk_proc_wait_for(&s->p, 2, "counters:", 30000), "no counters: %s", s->p.errbuf);
    cr_expect(tk_proc_wait_for(&s->p, 2, what, 5000), "no \"%s\" in the counters: %s", what,
              s->p.errbuf);
}

/* ---- clients (in-process, the library) ---- */

static tlskit_config *ccfg_new(void)
{
    tlskit_config *cfg = tk_client_config("ca.crt");
    tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_READ, 30000);
    tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_WRITE, 30000);
    return cfg;
}

static tlskit_conn *tls_client(tlskit_config *cfg, int port)
{
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    tlskit_conn *c = tlskit_conn_new(cfg);
    cr_assert_not_null(c);
    cr_assert_eq(tlskit_conn_set_servername(c, "localhost"), 0);
    cr_assert_eq(tlskit_conn_connect(c, "127.0.0.1", p), 0, "%s", tlskit_conn_error(c));
    cr_assert_eq(tlskit_conn_handshake(c), 0, "%s", tlskit_conn_error(c));
    return c;
}

static unsigned char pat(uint64_t i)
{
    return (unsigned char)((i * 7u) ^ (i >> 9) ^ (i >> 17));
}

/* Send total pattern bytes, then close_notify (our half-close); read until the server's
 * close_notify, checking every byte. Returns the bytes read. Non-blocking, one thread. */
static uint64_t pump(tlskit_conn *c, uint64_t total)
{
    static unsigned char wbuf[65536], rbuf[65536];
    uint64_t sent = 0, got = 0;
    size_t wlen = 0, woff = 0;
    int shut = 0, eof = 0;
    int64_t deadline = tk_now_ms() + 270000;
    cr_assert_eq(tlskit_conn_set_nonblocking(c, 1), 0);
    while (!eof) {
        cr_assert_lt(tk_now_ms(), deadline, "transfer stuck: sent %llu, got %llu",
                     (unsigned long long)sent, (unsigned long long)got);
        int progress = 0;
        short wev = 0;
        if (!shut && woff == wlen && sent < total) {
            wlen = total - sent < sizeof(wbuf) ? (size_t)(total - sent) : sizeof(wbuf);
            for (size_t i = 0; i < wlen; i++)
                wbuf[i] = pat(sent + i);
            woff = 0;
        }
        if (!shut && woff < wlen) {
            ssize_t n = tlskit_conn_write(c, wbuf + woff, wlen - woff);
            if (n > 0) {
                woff += (size_t)n;
                sent += (uint64_t)n;
                progress = 1;
            } else {
                cr_assert(n != -1, "write: %s", tlskit_conn_error(c));
                wev = tlskit_want_events(n);
            }
        } else if (!shut) {
            int r = tlskit_conn_shutdown(c);
            cr_assert(r != -1, "shutdown: %s", tlskit_conn_error(c));
            if (r == 0)
                shut = progress = 1;
            else
                wev = tlskit_want_events(r);
        }
        ssize_t n = tlskit_conn_read(c, rbuf, sizeof(rbuf));
        if (n > 0) {
            for (ssize_t i = 0; i < n; i++)
                if (rbuf[i] != pat(got + (uint64_t)i))
                    cr_assert_fail("byte %llu differs", (unsigned long long)(got + (uint64_t)i));
            got += (uint64_t)n;
            progress = 1;
        } else if (n == 0) {
            eof = 1;
        } else {
            cr_assert(n != -1, "read after %llu bytes: %s", (unsigned long long)got,
                      tlskit_conn_error(c));
            wev |= tlskit_want_events(n);
        }
        if (!progress && !eof) {
            struct pollfd p = {.fd = tlskit_conn_fd(c), .events = (short)(wev | POLLIN)};
            poll(&p, 1, 100);
        }
    }
    cr_expect_eq(sent, total);
    return got;
}

static void transfer(uint64_t total)
{
    struct backend b;
    backend_start(&b, "echo", NULL);
    struct tk_server s;
    forward_start(&s, tcp_target(&b), NULL);
    tlskit_config *cfg = ccfg_new();
    tlskit_conn *c = tls_client(cfg, s.port);
    uint64_t got = pump(c, total);
    cr_expect_eq(got, total, "echoed %llu of %llu bytes", (unsigned long long)got,
                 (unsigned long long)total);
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    char line[160];
    snprintf(line, sizeof(line), " in=%llu out=%llu backend=127.0.0.1:%s backend_in=%llu "
             "backend_out=%llu ", (unsigned long long)total, (unsigned long long)total, b.port,
             (unsigned long long)total, (unsigned long long)total);
    cr_expect(tk_proc_wait_for(&s.p, 2, line, 30000), "no end line with \"%s\": %s", line,
              s.p.errbuf);
    tk_server_stop(&s);
    backend_stop(&b);
}

/* Byte-exact both ways; the client's close_notify reaches the backend as a FIN, the
 * backend's FIN comes back as close_notify, and the log line has both sides' bytes. */
TK_TEST(forward, one_megabyte_both_ways_byte_exact)
{
    transfer(1000000);
}

TK_TEST(forward_big, hundred_megabytes_both_ways_byte_exact)
{
    transfer(100u * 1000 * 1000);
}

/* Read from c (blocking, with the config's READ deadline) until close_notify; what came
 * is appended to out (NUL-terminated, cap bytes). */
static size_t read_to_end(tlskit_conn *c, char *out, size_t cap)
{
    size_t used = 0;
    for (;;) {
        char buf[4096];
        ssize_t n = tlskit_conn_read(c, buf, sizeof(buf));
        cr_assert(n >= 0, "read: %s", tlskit_conn_error(c));
        if (n == 0)
            break;
        size_t take = (size_t)n < cap - 1 - used ? (size_t)n : cap - 1 - used;
        memcpy(out + used, buf, take);
        used += take;
    }
    out[used] = '\0';
    return used;
}

/* The backend half-closes first: the client gets close_notify, and what it sends after
 * that still reaches the backend; then the client's close_notify ends both. */
TK_TEST(forward, half_close_from_the_backend)
{
    struct backend b;
    backend_start(&b, "halfclose", NULL);
    struct tk_server s;
    forward_start(&s, tcp_target(&b), NULL);
    tlskit_config *cfg = ccfg_new();
    tlskit_conn *c = tls_client(cfg, s.port);
    char got[64];
    read_to_end(c, got, sizeof(got));
    cr_expect_str_eq(got, "server-first");
    static const char after[] = "sent after the server's close_notify";
    cr_assert_eq(tlskit_conn_write_all(c, after, strlen(after)), 0, "%s", tlskit_conn_error(c));
    cr_assert_eq(tlskit_conn_shutdown(c), 0, "%s", tlskit_conn_error(c));
    backend_expect(&b, "got 36 bytes: sent after the server's close_notify");
    cr_expect(tk_proc_wait_for(&s.p, 2, " in=36 out=12 backend=", 30000), "%s", s.p.errbuf);
    cr_expect(tk_proc_wait_for(&s.p, 2, "backend_in=12 backend_out=36 ", 30000), "%s",
              s.p.errbuf);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    tk_server_stop(&s);
    backend_stop(&b);
}

/* A UNIX-socket backend. */
TK_TEST(forward, unix_socket_backend)
{
    char dir[256], path[300], target[320];
    tk_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/backend.sock", dir);
    snprintf(target, sizeof(target), "unix:%s", path);
    struct backend b;
    backend_start(&b, "unix", path);
    struct tk_server s;
    forward_start(&s, target, NULL);
    tlskit_config *cfg = ccfg_new();
    tlskit_conn *c = tls_client(cfg, s.port);
    cr_expect_eq(pump(c, 200000), 200000);
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    char line[400];
    snprintf(line, sizeof(line), "backend=%s backend_in=200000 backend_out=200000 ", target);
    cr_expect(tk_proc_wait_for(&s.p, 2, line, 30000), "%s", s.p.errbuf);
    tk_server_stop(&s);
    backend_stop(&b);
    tk_rmtree(dir);
}

/* A backend that accepts a second late: the client's bytes wait in the kernel, none is
 * lost. */
TK_TEST(forward, backend_slow_to_accept)
{
    struct backend b;
    backend_start(&b, "slow", NULL);
    struct tk_server s;
    forward_start(&s, tcp_target(&b), NULL);
    tlskit_config *cfg = ccfg_new();
    tlskit_conn *c = tls_client(cfg, s.port);
    cr_expect_eq(pump(c, 300000), 300000);
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    tk_server_stop(&s);
    backend_stop(&b);
}

/* Nobody listens: the client gets close_notify at once, the reason is logged and
 * counted, and the server serves the next client once the backend is up. */
TK_TEST(forward, backend_down_then_up)
{
    int port;
    int fd = tk_tcp_bound("127.0.0.1", 0, &port); /* bound, not listening: refused */
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    struct tk_server s;
    forward_start(&s, target, NULL);
    tlskit_config *cfg = ccfg_new();
    tlskit_conn *c = tls_client(cfg, s.port);
    char got[64];
    cr_expect_eq(read_to_end(c, got, sizeof(got)), 0); /* close_notify, not a reset */
    tlskit_conn_free(c);
    char line[128];
    snprintf(line, sizeof(line), "tlsserver: backend 127.0.0.1:%d: Connection refused\n", port);
    cr_expect(tk_proc_wait_for(&s.p, 2, line, 30000), "%s", s.p.errbuf);
    cr_expect(tk_proc_wait_for(&s.p, 2, "error=TLSKIT_E_CONNECT: backend 127.0.0.1:", 30000),
              "%s", s.p.errbuf);

    /* The backend comes up (this thread echoes one connection). */
    cr_assert_eq(listen(fd, 16), 0);
    c = tls_client(cfg, s.port);
    cr_assert_eq(tlskit_conn_write_all(c, "again", 5), 0, "%s", tlskit_conn_error(c));
    int a = accept(fd, NULL, NULL);
    cr_assert(a >= 0);
    char buf[8];
    size_t have = 0;
    while (have < 5) {
        ssize_t n = read(a, buf + have, 5 - have);
        cr_assert_gt(n, 0);
        have += (size_t)n;
    }
    cr_assert_eq(write(a, buf, 5), 5);
    close(a);
    char echo[8] = "";
    cr_expect_eq(read_to_end(c, echo, sizeof(echo)), 5);
    cr_expect_str_eq(echo, "again");
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    close(fd);
    expect_counters(&s, " backend_connects=1 backend_failures=1");
    tk_server_stop(&s);
}

/* SYNs dropped (a full accept queue): --backend-timeout ends the attempt. */
TK_TEST(forward, backend_connect_timeout)
{
    struct backend b;
    backend_start(&b, "backlog0", NULL);
    struct tk_server s;
    const char *more[] = {"--backend-timeout", "0.5", NULL};
    forward_start(&s, tcp_target(&b), more);
    tlskit_config *cfg = ccfg_new();
    int64_t t0 = tk_now_ms();
    tlskit_conn *c = tls_client(cfg, s.port);
    char got[64];
    cr_expect_eq(read_to_end(c, got, sizeof(got)), 0);
    cr_expect_geq(tk_now_ms() - t0, 400, "closed before the backend timeout");
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    char line[128];
    snprintf(line, sizeof(line), "tlsserver: backend 127.0.0.1:%s: timed out after 0.500 s\n",
             b.port);
    cr_expect(tk_proc_wait_for(&s.p, 2, line, 30000), "%s", s.p.errbuf);
    tk_server_stop(&s);
    backend_stop(&b);
}

/* The backend resets after a kilobyte: the client is reset too (never a clean
 * close_notify that would pass a cut stream for a complete one). */
TK_TEST(forward, backend_resets_mid_stream)
{
    struct backend b;
    backend_start(&b, "reset", NULL);
    struct tk_server s;
    forward_start(&s, tcp_target(&b), NULL);
    tlskit_config *cfg = ccfg_new();
    tlskit_conn *c = tls_client(cfg, s.port);
    static unsigned char chunk[4096];
    cr_assert_eq(tlskit_conn_write_all(c, chunk, sizeof(chunk)), 0, "%s", tlskit_conn_error(c));
    backend_expect(&b, "reset after ");
    char buf[64];
    ssize_t n = tlskit_conn_read(c, buf, sizeof(buf));
    cr_expect_eq(n, -1, "read returned %zd after the backend's reset", n);
    int code = tlskit_conn_error_code(c);
    cr_expect(code == TLSKIT_E_IO || code == TLSKIT_E_TRUNCATED, "%s: %s",
              tlskit_error_name(code), tlskit_conn_error(c));
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    cr_expect(tk_proc_wait_for(&s.p, 2, "error=TLSKIT_E_CLOSED: read from 127.0.0.1:", 30000),
              "%s", s.p.errbuf);
    tk_server_stop(&s);
    backend_stop(&b);
}

/* Peak resident memory of a process, in kB (VmHWM). */
static long peak_rss_kb(pid_t pid)
{
    char path[64], *status;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    status = tk_read_file(path, NULL);
    const char *p = strstr(status, "VmHWM:");
    long kb = p ? strtol(p + 6, NULL, 10) : -1;
    free(status);
    return kb;
}

/* A backend that never reads: the client is stopped (its writes stop being taken) with
 * a few MB in flight, not the 200 MB it offers; the write deadline ends the pair. */
TK_TEST(forward, backend_never_reads)
{
    struct backend b;
    backend_start(&b, "sink", NULL);
    struct tk_server s;
    const char *more[] = {"--write-timeout", "1", NULL};
    forward_start(&s, tcp_target(&b), more);
    long rss0 = peak_rss_kb(s.p.pid);
    tlskit_config *cfg = ccfg_new();
    tlskit_conn *c = tls_client(cfg, s.port);
    backend_expect(&b, "accepted");
    cr_assert_eq(tlskit_conn_set_nonblocking(c, 1), 0);
    static unsigned char chunk[65536];
    uint64_t sent = 0;
    int64_t end = tk_now_ms() + 60000;
    for (;;) {
        cr_assert_lt(tk_now_ms(), end, "the pair never ended (%llu bytes taken)",
                     (unsigned long long)sent);
        ssize_t n = tlskit_conn_write(c, chunk, sizeof(chunk));
        if (n > 0) {
            sent += (uint64_t)n;
            cr_assert_lt(sent, 200u << 20, "200 MB taken: nothing stopped the client");
            continue;
        }
        if (n == -1)
            break; /* the reset that ends the pair */
        struct pollfd p = {.fd = tlskit_conn_fd(c), .events = tlskit_want_events(n)};
        poll(&p, 1, 100);
    }
    cr_expect_lt(sent, 64u << 20, "%llu bytes taken", (unsigned long long)sent);
    cr_expect(tk_proc_wait_for(&s.p, 2, "stalled: the peer took no data", 30000), "%s",
              s.p.errbuf);
    long rss = peak_rss_kb(s.p.pid);
    cr_expect_lt(rss - rss0, 32 * 1024, "tlsserver grew from %ld to %ld kB", rss0, rss);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    tk_server_stop(&s);
    backend_stop(&b);
}

/* A client that never reads while the backend floods: the backend is stopped after a
 * few MB, and the client's write deadline ends the pair. */
TK_TEST(forward, client_never_reads)
{
    struct backend b;
    backend_start(&b, "flood", NULL);
    struct tk_server s;
    const char *more[] = {"--write-timeout", "1", NULL};
    forward_start(&s, tcp_target(&b), more);
    long rss0 = peak_rss_kb(s.p.pid);
    tlskit_config *cfg = ccfg_new();
    tlskit_conn *c = tls_client(cfg, s.port);
    backend_expect(&b, "flood ended after ");
    const char *line = strstr(b.p.outbuf, "flood ended after ");
    unsigned long long flooded = strtoull(line + strlen("flood ended after "), NULL, 10);
    cr_expect_lt(flooded, 64ull << 20, "the backend got %llu bytes out", flooded);
    cr_expect(tk_proc_wait_for(&s.p, 2, "stalled: the peer took no data", 30000), "%s",
              s.p.errbuf);
    long rss = peak_rss_kb(s.p.pid);
    cr_expect_lt(rss - rss0, 32 * 1024, "tlsserver grew from %ld to %ld kB", rss0, rss);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    tk_server_stop(&s);
    backend_stop(&b);
}

/* 1,000 clients forwarded at once, each echoed its own line. */
TK_TEST(forward, thousand_concurrent_connections)
{
    enum { N = 1000 };
    struct backend b;
    backend_start(&b, "echo", NULL);
    struct tk_server s;
    const char *more[] = {"-q", NULL};
    forward_start(&s, tcp_target(&b), more);
    tlskit_config *cfg = ccfg_new();
    static tlskit_conn *c[N];
    for (int i = 0; i < N; i++)
        c[i] = tls_client(cfg, s.port);
    for (int i = 0; i < N; i++) {
        char msg[32];
        int len = snprintf(msg, sizeof(msg), "client %04d\n", i);
        cr_assert_eq(tlskit_conn_write_all(c[i], msg, (size_t)len), 0, "%d: %s", i,
                     tlskit_conn_error(c[i]));
    }
    for (int i = 0; i < N; i++) {
        char msg[32], got[32];
        int len = snprintf(msg, sizeof(msg), "client %04d\n", i);
        tk_conn_read_exact(c[i], got, (size_t)len);
        cr_assert(memcmp(got, msg, (size_t)len) == 0, "client %d got \"%.12s\"", i, got);
    }
    for (int i = 0; i < N; i++) {
        tlskit_conn_close(c[i]);
        tlskit_conn_free(c[i]);
    }
    tlskit_config_free(cfg);
    expect_counters(&s, " accepted=1000 ");
    expect_counters(&s, " backend_connects=1000 backend_failures=0");
    tk_server_stop(&s);
    backend_stop(&b);
}

/* ---- --send-proxy ---- */

/* The value of "key": in the backend's JSON line (a string, or a number as text). */
static void json_field(const char *json, const char *key, char *out, size_t cap)
{
    char pat_[64];
    snprintf(pat_, sizeof(pat_), "\"%s\": ", key);
    const char *p = strstr(json, pat_);
    out[0] = '\0';
    if (!p)
        return;
    p += strlen(pat_);
    if (*p == '"')
        p++;
    size_t n = strcspn(p, "\",}");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
}

static void expect_field(const char *json, const char *key, const char *want)
{
    char v[256];
    json_field(json, key, v, sizeof(v));
    cr_expect_str_eq(v, want, "%s: got \"%s\", want \"%s\" in %s", key, v, want, json);
}

/* The client's own port, as the server saw it (its socket's local port). */
static void local_port(tlskit_conn *c, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    cr_assert_eq(getsockname(tlskit_conn_fd(c), (struct sockaddr *)&ss, &sl), 0);
    snprintf(out, cap, "%u", ntohs(((struct sockaddr_in *)&ss)->sin_port));
}

TK_TEST(forward, send_proxy_v1)
{
    struct backend b;
    backend_start(&b, "proxy", NULL);
    struct tk_server s;
    const char *more[] = {"--send-proxy", "v1", NULL};
    forward_start(&s, tcp_target(&b), more);
    tlskit_config *cfg = ccfg_new();
    tlskit_conn *c = tls_client(cfg, s.port);
    cr_expect_eq(pump(c, 5000), 5000); /* the header is the backend's, not echoed */
    backend_expect(&b, "proxy {");
    const char *json = strstr(b.p.outbuf, "proxy {");
    char sport[16];
    local_port(c, sport, sizeof(sport));
    expect_field(json, "version", "1");
    expect_field(json, "proto", "TCP4");
    expect_field(json, "src", "127.0.0.1");
    expect_field(json, "dst", "127.0.0.1");
    expect_field(json, "sport", sport);
    expect_field(json, "dport", s.portstr);
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    tk_server_stop(&s);
    backend_stop(&b);
}

/* v2 in front of an mTLS gateway: the backend learns the TLS version, cipher, SNI,
 * ALPN and the client certificate's CN, verified. */
TK_TEST(forward, send_proxy_v2_mtls)
{
    struct backend b;
    backend_start(&b, "proxy", NULL);
    struct tk_server s;
    const char *more[] = {"--send-proxy", "v2", "--verify-client", "--ca", tk_cert("ca.crt"),
                          "--alpn", "x-test", NULL};
    forward_start(&s, tcp_target(&b), more);
    tlskit_config *cfg = ccfg_new();
    tk_config_keypair(cfg, "client");
    cr_assert_eq(tlskit_config_set_alpn(cfg, "x-test"), 0);
    tlskit_conn *c = tls_client(cfg, s.port);
    cr_expect_eq(pump(c, 5000), 5000);
    backend_expect(&b, "proxy {");
    const char *json = strstr(b.p.outbuf, "proxy {");
    char sport[16];
    local_port(c, sport, sizeof(sport));
    expect_field(json, "version", "2");
    expect_field(json, "ver_cmd", "33"); /* 0x21: version 2, PROXY */
    expect_field(json, "fam", "17");     /* 0x11: TCP over IPv4 */
    expect_field(json, "src", "127.0.0.1");
    expect_field(json, "sport", sport);
    expect_field(json, "dport", s.portstr);
    expect_field(json, "authority", "localhost");
    expect_field(json, "alpn", "x-test");
    expect_field(json, "ssl_version", tlskit_conn_protocol(c));
    expect_field(json, "ssl_cipher", tlskit_conn_cipher(c));
    expect_field(json, "ssl_cn", "tlskit-client");
    expect_field(json, "ssl_client", "7"); /* SSL | CERT_CONN | CERT_SESS */
    expect_field(json, "ssl_verify", "0");
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    tk_server_stop(&s);
    backend_stop(&b);
}

/* v2 over IPv6, no client certificate: family TCP6, the SSL TLV without CN, verify
 * non-zero (no certificate was verified). */
TK_TEST(forward, send_proxy_v2_ipv6_without_client_certificate)
{
    struct backend b;
    backend_start(&b, "proxy", NULL);
    struct tk_server s;
    const char *extra[] = {"--forward", tcp_target(&b), "--send-proxy", "v2", NULL};
    tk_server_start(&s, "server", "::1", extra);
    tlskit_config *cfg = ccfg_new();
    tlskit_conn *c = tlskit_conn_new(cfg);
    cr_assert_eq(tlskit_conn_set_servername(c, "localhost"), 0);
    cr_assert_eq(tlskit_conn_connect(c, "::1", s.portstr), 0, "%s", tlskit_conn_error(c));
    cr_assert_eq(tlskit_conn_handshake(c), 0, "%s", tlskit_conn_error(c));
    cr_expect_eq(pump(c, 3000), 3000);
    backend_expect(&b, "proxy {");
    const char *json = strstr(b.p.outbuf, "proxy {");
    struct sockaddr_in6 me;
    socklen_t sl = sizeof(me);
    cr_assert_eq(getsockname(tlskit_conn_fd(c), (struct sockaddr *)&me, &sl), 0);
    char sport[16];
    snprintf(sport, sizeof(sport), "%u", ntohs(me.sin6_port));
    expect_field(json, "fam", "33"); /* 0x21: TCP over IPv6 */
    expect_field(json, "src", "::1");
    expect_field(json, "dst", "::1");
    expect_field(json, "sport", sport);
    expect_field(json, "dport", s.portstr);
    expect_field(json, "ssl_client", "1"); /* SSL only */
    expect_field(json, "ssl_verify", "1");
    expect_field(json, "ssl_cn", "");
    expect_field(json, "authority", "localhost");
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    tk_server_stop(&s);
    backend_stop(&b);
}

/* HAProxy as the receiver (bind ... accept-proxy): it takes the v2 header with its TLVs
 * and logs the client's real address, the address it reached, and the SNI from
 * PP2_TYPE_AUTHORITY; the bytes then flow through it to the echo. */
TK_TEST(forward, haproxy_accepts_send_proxy_v2)
{
    struct backend b;
    backend_start(&b, "echo", NULL);
    char dir[256], sock[300], cfgpath[300], target[320], conf[1024];
    tk_tmpdir(dir, sizeof(dir));
    snprintf(sock, sizeof(sock), "%s/haproxy.sock", dir);
    snprintf(cfgpath, sizeof(cfgpath), "%s/haproxy.cfg", dir);
    snprintf(target, sizeof(target), "unix:%s", sock);
    int n = snprintf(conf, sizeof(conf),
                     "global\n  log stdout format raw local0\n"
                     "defaults\n  mode tcp\n  log global\n  timeout connect 5s\n"
                     "  timeout client 30s\n  timeout server 30s\n"
                     "frontend f\n  bind unix@%s accept-proxy\n"
                     "  log-format \"haproxy src=%%ci:%%cp dst=%%fi:%%fp "
                     "authority=%%[fc_pp_authority]\"\n  default_backend b\n"
                     "backend b\n  server s1 127.0.0.1:%s\n", sock, b.port);
    tk_write_file(cfgpath, conf, (size_t)n);
    const char *hargv[] = {"/usr/sbin/haproxy", "-f", cfgpath, "-db", NULL};
    struct tk_proc h;
    tk_proc_start(&h, hargv);
    int64_t end = tk_now_ms() + 30000; /* ready once its socket exists */
    while (access(sock, F_OK) != 0 && tk_now_ms() < end && !h.exited)
        tk_proc_wait_for(&h, 2, "\x01never", 20);
    cr_assert_eq(access(sock, F_OK), 0, "haproxy did not start: %s%s", h.outbuf, h.errbuf);
    struct tk_server s;
    const char *more[] = {"--send-proxy", "v2", NULL};
    forward_start(&s, target, more);
    tlskit_config *cfg = ccfg_new();
    tlskit_conn *c = tls_client(cfg, s.port);
    cr_expect_eq(pump(c, 100000), 100000);
    char sport[16], line[160];
    local_port(c, sport, sizeof(sport));
    snprintf(line, sizeof(line), "haproxy src=127.0.0.1:%s dst=127.0.0.1:%s authority=localhost\n",
             sport, s.portstr);
    cr_expect(tk_proc_wait_for(&h, 1, line, 30000), "no \"%s\" in: %s", line, h.outbuf);
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    tk_server_stop(&s);
    kill(h.pid, SIGTERM);
    tk_proc_wait(&h, 30000);
    tk_proc_free(&h);
    backend_stop(&b);
    tk_rmtree(dir);
}

/* ---- the library's calls, in-process ---- */

/* An engine that, from its first client's on_open, opens a TLS connection to itself
 * (verified: CA and name), one to a name that does not resolve, and tries bad calls. */
static struct outbound_check {
    pthread_mutex_t mu;
    tlskit_engine *e;
    tlskit_config *ccfg;
    char port[16];
    int started;
    int bad_args_null, bad_args_said, bad_port_null, bad_port_said;
    char tls_proto[32], tls_got[8];
    int tls_close_code, resolve_close_code, done;
    char resolve_reason[256];
} oc = {.mu = PTHREAD_MUTEX_INITIALIZER, .tls_close_code = -1, .resolve_close_code = -1};
static int tag_tls, tag_resolve;

static void oc_open(tlskit_conn *c, void *arg)
{
    (void)arg;
    void *tag = tlskit_conn_userdata(c);
    if (tag == &tag_tls) {
        pthread_mutex_lock(&oc.mu);
        snprintf(oc.tls_proto, sizeof(oc.tls_proto), "%s", tk_str(tlskit_conn_protocol(c)));
        pthread_mutex_unlock(&oc.mu);
        tlskit_conn_write(c, "ping", 4);
        return;
    }
    pthread_mutex_lock(&oc.mu);
    int first = !oc.started;
    oc.started = 1;
    pthread_mutex_unlock(&oc.mu);
    if (!first)
        return;
    /* Bad arguments: NULL, and the reason on the connection given. */
    tlskit_conn *bad = tlskit_engine_connect(oc.e, c, NULL, "127.0.0.1", oc.port, 0);
    int said = tk_contains(tlskit_conn_error(c), "engine connect") &&
               tlskit_conn_error_code(c) == TLSKIT_E_INVALID;
    /* A port getaddrinfo() would cut to 16 bits (99999 -> 34463), with a name too. */
    tlskit_conn *bad_port = tlskit_engine_connect(oc.e, c, oc.ccfg, "localhost", "99999", 0);
    int port_said = tk_contains(tlskit_conn_error(c), "port 99999 is out of range") &&
                    tlskit_conn_error_code(c) == TLSKIT_E_INVALID;
    tlskit_conn *r = tlskit_engine_connect(oc.e, c, oc.ccfg, "no-such-host.invalid", "443", 0);
    if (r)
        tlskit_conn_set_userdata(r, &tag_resolve);
    tlskit_conn *t = tlskit_engine_connect(oc.e, c, oc.ccfg, "127.0.0.1", oc.port, 0);
    if (t) {
        tlskit_conn_set_userdata(t, &tag_tls);
        tlskit_conn_set_servername(t, "localhost"); /* the certificate's name */
    }
    pthread_mutex_lock(&oc.mu);
    oc.bad_args_null = bad == NULL;
    oc.bad_args_said = said;
    oc.bad_port_null = bad_port == NULL;
    oc.bad_port_said = port_said;
    pthread_mutex_unlock(&oc.mu);
}

static void oc_data(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    (void)arg;
    if (tlskit_conn_userdata(c) == &tag_tls) {
        pthread_mutex_lock(&oc.mu);
        snprintf(oc.tls_got, sizeof(oc.tls_got), "%.*s", (int)n, (const char *)d);
        pthread_mutex_unlock(&oc.mu);
        tlskit_conn_close(c);
        return;
    }
    tlskit_conn_write(c, d, n); /* accepted: echo */
}

static void oc_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    (void)arg;
    void *tag = tlskit_conn_userdata(c);
    pthread_mutex_lock(&oc.mu);
    if (tag == &tag_tls) {
        oc.tls_close_code = code;
        oc.done++;
    } else if (tag == &tag_resolve) {
        oc.resolve_close_code = code;
        snprintf(oc.resolve_reason, sizeof(oc.resolve_reason), "%s", reason);
        oc.done++;
    }
    pthread_mutex_unlock(&oc.mu);
}

static int oc_finished(void)
{
    pthread_mutex_lock(&oc.mu);
    int d = oc.done;
    pthread_mutex_unlock(&oc.mu);
    return d == 2;
}

TK_TEST(forward, engine_connect_tls_and_failures)
{
    tlskit_config *scfg = tk_server_config("server");
    oc.ccfg = ccfg_new();
    struct tlskit_engine_handlers h = {.on_open = oc_open, .on_data = oc_data,
                                       .on_close = oc_close};
    oc.e = tlskit_engine_new(scfg, &h);
    cr_assert_not_null(oc.e);
    cr_assert_eq(tlskit_engine_set_workers(oc.e, 1), 0);
    cr_assert_eq(tlskit_engine_listen(oc.e, "127.0.0.1", "0", 0), 0);
    snprintf(oc.port, sizeof(oc.port), "%d", tlskit_engine_port(oc.e));
    cr_assert_eq(tlskit_engine_start(oc.e), 0);
    tlskit_conn *c = tls_client(oc.ccfg, tlskit_engine_port(oc.e));
    /* Outside the engine, the pairing calls refuse. */
    cr_expect_eq(tlskit_conn_read_stop(c), -1);
    cr_expect_eq(tlskit_conn_error_code(c), TLSKIT_E_INVALID);
    cr_expect_eq(tlskit_conn_abort(c, NULL), -1);
    int64_t end = tk_now_ms() + 30000;
    while (!oc_finished() && tk_now_ms() < end)
        poll(NULL, 0, 10);
    cr_assert(oc_finished(), "the outbound connections did not both end");
    cr_expect(oc.bad_args_null && oc.bad_args_said, "bad arguments: not NULL or not said");
    cr_expect(oc.bad_port_null && oc.bad_port_said, "port 99999: not NULL or not said");
    cr_expect_str_eq(oc.tls_proto, "TLSv1.3");
    cr_expect_str_eq(oc.tls_got, "ping");
    cr_expect_eq(oc.tls_close_code, TLSKIT_E_NONE);
    cr_expect_eq(oc.resolve_close_code, TLSKIT_E_RESOLVE, "%s: %s",
                 tlskit_error_name(oc.resolve_close_code), oc.resolve_reason);
    cr_expect(tk_contains(oc.resolve_reason, "resolve no-such-host.invalid port 443"), "%s",
              oc.resolve_reason);
    struct tlskit_engine_stats st;
    tlskit_engine_read_stats(oc.e, &st);
    cr_expect_eq(st.connects, 1);
    cr_expect_eq(st.connect_failures, 1);
    cr_expect_eq(st.accepted, 2, "the client and the engine's own TLS connection");
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    cr_assert_eq(tlskit_engine_stop(oc.e), 0);
    tlskit_engine_free(oc.e);
    tlskit_config_free(oc.ccfg);
    tlskit_config_free(scfg);
}

/* ---- the command line ---- */

TK_TEST(forward, usage_errors)
{
    static const struct {
        const char *args[6];
        const char *why;
    } cases[] = {
        {{"--forward", "127.0.0.1:8080", "--model", "thread", NULL},
         "--forward needs the event model"},
        {{"--send-proxy", "v2", NULL}, "--send-proxy needs --forward"},
        {{"--forward", "127.0.0.1:8080", "--send-proxy", "v3", NULL}, "is not v1 or v2"},
        {{"--forward", "localhost", NULL}, "expected HOST:PORT"},
        {{"--forward", "::1:80", NULL}, "expected HOST:PORT"},
        {{"--forward", "unix:relative", NULL}, "unix:/PATH"},
        {{"--forward", "h:1", "--backend-timeout", "x", NULL}, "not a number of seconds"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tk_proc p;
        int rc = tk_run_app(&p, tk_server_bin(), cases[i].args, NULL, 0, 30000);
        cr_expect_eq(rc, 2, "case %zu: exit %d: %s", i, rc, p.errbuf);
        cr_expect(tk_contains(p.errbuf, cases[i].why), "case %zu: %s", i, p.errbuf);
        tk_proc_free(&p);
    }
}
