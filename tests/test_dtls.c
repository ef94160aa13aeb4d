/* SPDX-License-Identifier: MIT */
/*
 * DTLS 1.2 over UDP: interop with openssl s_server/s_client and gnutls-serv; the
 * engine's stateless cookies (size, no state, other port, expired bucket, a spoofed
 * flood); many peers on one port, a peer restarting from the same address, a replayed
 * ClientHello; a lossy relay (drop, delay, duplicate, reorder); path MTU relays and the
 * exact largest write; deadlines and retransmission timing; hostile datagrams.
 * Raw ClientHellos are built here byte by byte (build_ch), the way a scanner sends them.
 */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

TK_SUITE(dtls);

#ifndef TK_OPENSSL_BIN
#define TK_OPENSSL_BIN "openssl"
#endif

/* ---- an in-process DTLS echo engine ---- */

struct closes {
    pthread_mutex_t mu;
    int n;
    int codes[512];
    char reasons[8][256];
};

static void echo_data(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    (void)arg;
    tlskit_conn_write(c, d, n);
}

static void record_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    (void)c;
    struct closes *cl = arg;
    pthread_mutex_lock(&cl->mu);
    if (cl->n < 512)
        cl->codes[cl->n] = code;
    if (cl->n < 8)
        snprintf(cl->reasons[cl->n], sizeof(cl->reasons[0]), "%s", reason);
    cl->n++;
    pthread_mutex_unlock(&cl->mu);
}

struct eng {
    tlskit_config *cfg;
    tlskit_engine *e;
    struct closes cl;
    int port;
    char portstr[16];
};

struct eng_opts {
    int workers;
    int mtu;
    int64_t hs_ms, idle_ms;
    int64_t timer_first, timer_max;
    int64_t cookie_secs;
    const char *cert; /* "server" (ECDSA) by default */
};

static void eng_start(struct eng *g, const struct eng_opts *o)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->cl.mu, NULL);
    g->cfg = tlskit_config_new_dtls();
    cr_assert_not_null(g->cfg);
    tk_config_keypair(g->cfg, o->cert ? o->cert : "server");
    if (o->mtu)
        cr_assert_eq(tlskit_config_set_mtu(g->cfg, o->mtu), 0, "%s", tlskit_config_error(g->cfg));
    if (o->hs_ms)
        tlskit_config_set_timeout(g->cfg, TLSKIT_TIMEOUT_HANDSHAKE, o->hs_ms);
    if (o->idle_ms)
        tlskit_config_set_timeout(g->cfg, TLSKIT_TIMEOUT_IDLE, o->idle_ms);
    if (o->timer_first)
        cr_assert_eq(tlskit_config_set_dtls_timer(g->cfg, o->timer_first, o->timer_max), 0);
    if (o->cookie_secs)
        cr_assert_eq(tlskit_config_set_dtls_cookie_lifetime(g->cfg, o->cookie_secs), 0);
    struct tlskit_engine_handlers h = {.on_data = echo_data, .on_close = record_close,
                                       .arg = &g->cl};
    g->e = tlskit_engine_new(g->cfg, &h);
    cr_assert_not_null(g->e);
    tlskit_engine_set_workers(g->e, o->workers ? o->workers : 2);
    cr_assert_eq(tlskit_engine_listen(g->e, "127.0.0.1", "0", 0), 0, "%s",
                 tlskit_engine_error(g->e));
    cr_assert_eq(tlskit_engine_start(g->e), 0);
    g->port = tlskit_engine_port(g->e);
    snprintf(g->portstr, sizeof(g->portstr), "%d", g->port);
}

static void eng_stop(struct eng *g)
{
    tlskit_engine_set_drain_timeout(g->e, 0);
    tlskit_engine_stop(g->e);
    tlskit_engine_free(g->e);
    tlskit_config_free(g->cfg);
    pthread_mutex_destroy(&g->cl.mu);
}

static struct tlskit_engine_stats stats(struct eng *g)
{
    struct tlskit_engine_stats st;
    tlskit_engine_read_stats(g->e, &st);
    return st;
}

/* Poll the engine's counters until field >= want (or the generous bound). */
#define WAIT_STAT(g, field, want)                                                       \
    do {                                                                                \
        int64_t end_ = tk_now_ms() + 20000;                                             \
        while (stats(g).field < (uint64_t)(want) && tk_now_ms() < end_)                 \
            poll(NULL, 0, 10);                                                          \
    } while (0)

/* ---- clients ---- */

static tlskit_config *client_cfg(int mtu, int64_t hs_ms)
{
    tlskit_config *cfg = tlskit_config_new_dtls();
    cr_assert_not_null(cfg);
    cr_assert_eq(tlskit_config_add_ca_file(cfg, tk_cert("ca.crt")), 0);
    if (mtu)
        cr_assert_eq(tlskit_config_set_mtu(cfg, mtu), 0);
    tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, hs_ms ? hs_ms : 20000);
    tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_READ, 10000);
    cr_assert_eq(tlskit_config_set_dtls_timer(cfg, 100, 1000), 0);
    return cfg;
}

/* A blocking client connected and handshaken to 127.0.0.1:port (asserts). */
static tlskit_conn *client_open(tlskit_config *cfg, const char *port)
{
    tlskit_conn *c = tlskit_conn_new(cfg);
    cr_assert_not_null(c);
    tlskit_conn_set_servername(c, "localhost");
    cr_assert_eq(tlskit_conn_connect_udp(c, "127.0.0.1", port), 0, "%s", tlskit_conn_error(c));
    cr_assert_eq(tlskit_conn_handshake(c), 0, "%s", tlskit_conn_error(c));
    return c;
}

/* Send a datagram and read its echo (asserts). */
static void echo_once(tlskit_conn *c, const void *msg, size_t len)
{
    unsigned char buf[16384];
    cr_assert_eq(tlskit_conn_write(c, msg, len), (ssize_t)len, "%s", tlskit_conn_error(c));
    ssize_t n = tlskit_conn_read(c, buf, sizeof(buf));
    cr_assert_eq(n, (ssize_t)len, "read %zd: %s", n, tlskit_conn_error(c));
    cr_assert_eq(memcmp(buf, msg, len), 0);
}

/* ---- raw datagrams ---- */

static int udp_socket_on(const char *addr, int port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, addr, &sin.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0, "bind %s: %s", addr,
                 strerror(errno));
    return fd;
}

static int udp_port_of(int fd)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    return ntohs(sin.sin_port);
}

static void udp_send_to(int fd, int port, const void *buf, size_t len)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    cr_assert_eq(sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)), (ssize_t)len);
}

/* One datagram within timeout_ms: its length, or -1. */
static ssize_t udp_recv(int fd, void *buf, size_t cap, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return -1;
    return recv(fd, buf, cap, MSG_DONTWAIT);
}

/* A DTLS 1.2 ClientHello as one record: ECDHE-ECDSA/RSA AES-GCM, x25519 and P-256,
 * ECDSA and RSA signatures; cookie (may be empty), random from seed, message_seq. */
static size_t build_ch(unsigned char *out, const unsigned char *cookie, size_t cookie_len,
                       uint32_t seed, int msg_seq)
{
    static const unsigned char suites[] = {0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x2c, 0xc0, 0x30};
    static const unsigned char exts[] = {
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, /* supported_groups */
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00,                         /* ec_point_formats */
        0x00, 0x0d, 0x00, 0x0a, 0x00, 0x08, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03,
        0x00, 0x17, 0x00, 0x00,                                     /* extended ms */
        0xff, 0x01, 0x00, 0x01, 0x00,                               /* renegotiation_info */
    };
    unsigned char body[512];
    size_t n = 0;
    body[n++] = 0xfe;
    body[n++] = 0xfd; /* DTLS 1.2 */
    tk_fill_pattern(body + n, 32, seed);
    n += 32;
    body[n++] = 0; /* session id */
    body[n++] = (unsigned char)cookie_len;
    if (cookie_len)
        memcpy(body + n, cookie, cookie_len);
    n += cookie_len;
    body[n++] = 0;
    body[n++] = sizeof(suites);
    memcpy(body + n, suites, sizeof(suites));
    n += sizeof(suites);
    body[n++] = 1;
    body[n++] = 0; /* null compression */
    body[n++] = 0;
    body[n++] = sizeof(exts);
    memcpy(body + n, exts, sizeof(exts));
    n += sizeof(exts);
    size_t rec = 12 + n, o = 0;
    out[o++] = 22;
    out[o++] = 0xfe;
    out[o++] = 0xff; /* record version DTLS 1.0, as clients send their first flight */
    memset(out + o, 0, 8); /* epoch 0, sequence */
    out[o + 7] = (unsigned char)msg_seq;
    o += 8;
    out[o++] = (unsigned char)(rec >> 8);
    out[o++] = (unsigned char)rec;
    out[o++] = 1; /* client_hello */
    out[o++] = 0;
    out[o++] = (unsigned char)(n >> 8);
    out[o++] = (unsigned char)n;
    out[o++] = 0;
    out[o++] = (unsigned char)msg_seq;
    memset(out + o, 0, 3); /* fragment offset */
    o += 3;
    out[o++] = 0;
    out[o++] = (unsigned char)(n >> 8);
    out[o++] = (unsigned char)n;
    memcpy(out + o, body, n);
    return o + n;
}

/* The handshake type of the first message of a datagram (-1 if not a handshake record). */
static int hs_type(const unsigned char *d, ssize_t n)
{
    return n >= 14 && d[0] == 22 ? d[13] : -1;
}

/* The cookie of a HelloVerifyRequest (asserts). */
static size_t hvr_cookie(const unsigned char *d, ssize_t n, unsigned char *cookie)
{
    cr_assert_eq(hs_type(d, n), 3, "not a HelloVerifyRequest");
    size_t len = d[13 + 12 + 2];
    cr_assert_leq(13 + 12 + 3 + len, (size_t)n);
    memcpy(cookie, d + 13 + 12 + 3, len);
    return len;
}

/* CH without cookie from fd, then with the cookie from the answer: the reply's type. */
static int cookie_exchange(int fd, int port, uint32_t seed, unsigned char *cookie,
                           size_t *cookie_len)
{
    unsigned char ch[600], rep[4096];
    size_t chl = build_ch(ch, NULL, 0, seed, 0);
    udp_send_to(fd, port, ch, chl);
    ssize_t n = udp_recv(fd, rep, sizeof(rep), 10000);
    cr_assert_gt(n, 0, "no HelloVerifyRequest");
    cr_assert_leq((size_t)n, chl, "HelloVerifyRequest (%zd) larger than the ClientHello (%zu)",
                  n, chl);
    *cookie_len = hvr_cookie(rep, n, cookie);
    chl = build_ch(ch, cookie, *cookie_len, seed, 1);
    udp_send_to(fd, port, ch, chl);
    n = udp_recv(fd, rep, sizeof(rep), 10000);
    return hs_type(rep, n);
}

/* ============================== 1. interop ============================================ */

static int free_udp_port(void)
{
    int fd = udp_socket_on("127.0.0.1", 0);
    int port = udp_port_of(fd);
    close(fd);
    return port;
}

/* tlsclient --udp -> openssl s_server -dtls1_2 -listen; s_server prints what it gets. */
static void client_to_s_server(const char *cert, int mtls)
{
    char accept[64], crt[600], key[600], port[16];
    int p = free_udp_port();
    snprintf(port, sizeof(port), "%d", p);
    snprintf(accept, sizeof(accept), "127.0.0.1:%d", p);
    snprintf(crt, sizeof(crt), "%s/%s.crt", tk_certs_dir(), cert);
    snprintf(key, sizeof(key), "%s/%s.key", tk_certs_dir(), cert);
    const char *argv[20] = {TK_OPENSSL_BIN, "s_server", "-dtls1_2", "-listen", "-accept",
                            accept, "-cert", crt, "-key", key, "-quiet"};
    int n = 11;
    if (mtls) {
        argv[n++] = "-Verify";
        argv[n++] = "1";
        argv[n++] = "-CAfile";
        argv[n++] = tk_cert("ca.crt");
        argv[n++] = "-verify_return_error";
    }
    struct tk_proc srv;
    tk_proc_start(&srv, argv);
    poll(NULL, 0, 300); /* s_server prints nothing when it is ready with -quiet */
    struct tk_proc cli;
    const char *args[16] = {"--udp", "--ca", tk_cert("ca.crt"), "--servername", "localhost"};
    int a = 5;
    if (mtls) {
        args[a++] = "--cert";
        args[a++] = tk_cert("client.crt");
        args[a++] = "--key";
        args[a++] = tk_cert("client.key");
    }
    args[a++] = "127.0.0.1";
    args[a++] = port;
    args[a] = NULL;
    int rc = -1;
    for (int tries = 0; tries < 20 && rc != 0; tries++) { /* until s_server is up */
        rc = tk_run_app(&cli, tk_client_bin(), args, "dtls-ping\n", 10, 30000);
        if (rc != 0) {
            tk_proc_free(&cli);
            poll(NULL, 0, 200);
        }
    }
    cr_expect_eq(rc, 0, "tlsclient --udp to s_server (%s, mtls %d): %d: %s", cert, mtls, rc,
                 rc == 0 ? "" : "see above");
    if (rc == 0)
        tk_proc_free(&cli);
    cr_expect(tk_proc_wait_for(&srv, 1, "dtls-ping", 10000), "s_server got: %s",
              tk_str(srv.outbuf));
    kill(srv.pid, SIGTERM);
    tk_proc_wait(&srv, 10000);
    tk_proc_free(&srv);
}

TK_TEST(dtls, interop_tlsclient_to_openssl_s_server)
{
    client_to_s_server("server", 0);
    client_to_s_server("rsa", 0);
    client_to_s_server("server", 1);
    client_to_s_server("rsa", 1);
}

/* openssl s_client -dtls1_2 -> tlsserver --udp (echo). */
static void s_client_to_server(const char *cert, int mtls)
{
    const char *extra[8] = {"--udp", NULL};
    if (mtls) {
        extra[1] = "--verify-client";
        extra[2] = "--ca";
        extra[3] = tk_cert("ca.crt");
        extra[4] = NULL;
    }
    struct tk_server s;
    tk_server_start(&s, cert, "127.0.0.1", extra);
    char connect[64], crt[600], key[600];
    snprintf(connect, sizeof(connect), "127.0.0.1:%d", s.port);
    const char *argv[24] = {TK_OPENSSL_BIN, "s_client", "-dtls1_2", "-connect", connect,
                            "-CAfile", tk_cert("ca.crt"), "-verify_return_error",
                            "-verify_hostname", "localhost", "-quiet", "-no_ign_eof"};
    int n = 12;
    if (mtls) {
        snprintf(crt, sizeof(crt), "%s/client.crt", tk_certs_dir());
        snprintf(key, sizeof(key), "%s/client.key", tk_certs_dir());
        argv[n++] = "-cert";
        argv[n++] = crt;
        argv[n++] = "-key";
        argv[n++] = key;
    }
    struct tk_proc p;
    tk_proc_start(&p, argv);
    tk_proc_feed(&p, "over-udp\n", 9, 0);
    cr_expect(tk_proc_wait_for(&p, 1, "over-udp\n", 30000), "no echo (%s, mtls %d): %s", cert,
              mtls, tk_str(p.errbuf));
    tk_proc_feed(&p, NULL, 0, 1);
    tk_proc_wait(&p, 30000);
    tk_proc_free(&p);
    cr_expect(tk_proc_wait_for(&s.p, 2, "proto=DTLSv1.2", 30000), "server log: %s",
              tk_str(s.p.errbuf));
    tk_server_stop(&s);
}

TK_TEST(dtls, interop_openssl_s_client_to_tlsserver)
{
    s_client_to_server("server", 0);
    s_client_to_server("rsa", 0);
    s_client_to_server("server", 1);
    s_client_to_server("rsa", 1);
}

/* gnutls-serv --udp --echo: another implementation, datagrams echoed one by one. */
TK_TEST(dtls, interop_tlsclient_to_gnutls_serv)
{
    char port[16];
    int p = free_udp_port();
    snprintf(port, sizeof(port), "%d", p);
    const char *argv[] = {"/usr/bin/gnutls-serv", "--udp", "--echo", "-p", port,
                          "--x509certfile", tk_cert("server.crt"), "--x509keyfile",
                          tk_cert("server.key"), NULL};
    if (access(argv[0], X_OK) != 0)
        cr_skip_test("gnutls-serv is not installed (scripts/setup.sh installs gnutls-bin)");
    struct tk_proc srv;
    tk_proc_start(&srv, argv);
    cr_assert(tk_proc_wait_for(&srv, 1, "UDP", 10000) || 1);
    const char *args[] = {"--udp", "--ca", tk_cert("ca.crt"), "127.0.0.1", port, NULL};
    struct tk_proc cli;
    int rc = -1;
    for (int tries = 0; tries < 20 && rc != 0; tries++) {
        rc = tk_run_app(&cli, tk_client_bin(), args, "one\ntwo\n", 8, 30000);
        if (rc != 0) {
            tk_proc_free(&cli);
            poll(NULL, 0, 200);
        }
    }
    cr_expect_eq(rc, 0);
    if (rc == 0) {
        cr_expect(tk_contains(cli.outbuf, "one\n") && tk_contains(cli.outbuf, "two\n"),
                  "echo: %s", tk_str(cli.outbuf));
        tk_proc_free(&cli);
    }
    kill(srv.pid, SIGTERM);
    tk_proc_wait(&srv, 10000);
    tk_proc_free(&srv);
}

/* ============================== 2. cookies ============================================ */

TK_TEST(dtls, cookie_hello_verify_small_and_stateless)
{
    struct eng g;
    eng_start(&g, &(struct eng_opts){.workers = 1});
    int fd = udp_socket_on("127.0.0.1", 0);
    unsigned char ch[600], rep[4096];
    size_t chl = build_ch(ch, NULL, 0, 1, 0);
    udp_send_to(fd, g.port, ch, chl);
    ssize_t n = udp_recv(fd, rep, sizeof(rep), 10000);
    cr_assert_gt(n, 0);
    cr_expect_eq(hs_type(rep, n), 3, "expected a HelloVerifyRequest");
    cr_expect_leq((size_t)n, chl, "HelloVerifyRequest %zd bytes > ClientHello %zu", n, chl);
    WAIT_STAT(&g, dtls_cookies_sent, 1); /* counted just after the send */
    struct tlskit_engine_stats st = stats(&g);
    cr_expect_eq(st.dtls_cookies_sent, 1);
    cr_expect_eq(st.accepted, 0, "a ClientHello without cookie made state");
    cr_expect_eq(st.open, 0);
    /* The cookie made for this address and port lets it in. */
    unsigned char cookie[255];
    size_t cl;
    int t = cookie_exchange(fd, g.port, 2, cookie, &cl);
    cr_expect_eq(t, 2, "expected a ServerHello after the cookie, got %d", t);
    WAIT_STAT(&g, accepted, 1);
    cr_expect_eq(stats(&g).accepted, 1);
    close(fd);
    eng_stop(&g);
}

TK_TEST(dtls, cookie_for_another_port_refused)
{
    struct eng g;
    eng_start(&g, &(struct eng_opts){.workers = 1});
    int a = udp_socket_on("127.0.0.1", 0), b = udp_socket_on("127.0.0.1", 0);
    unsigned char ch[600], rep[4096], cookie[255];
    size_t chl = build_ch(ch, NULL, 0, 3, 0);
    udp_send_to(a, g.port, ch, chl);
    ssize_t n = udp_recv(a, rep, sizeof(rep), 10000);
    size_t cl = hvr_cookie(rep, n, cookie);
    chl = build_ch(ch, cookie, cl, 3, 1); /* A's cookie, from B */
    udp_send_to(b, g.port, ch, chl);
    n = udp_recv(b, rep, sizeof(rep), 10000);
    cr_expect_eq(hs_type(rep, n), 3, "B with A's cookie must get a new HelloVerifyRequest");
    WAIT_STAT(&g, dtls_cookie_failures, 1);
    struct tlskit_engine_stats st = stats(&g);
    cr_expect_eq(st.dtls_cookie_failures, 1);
    cr_expect_eq(st.accepted, 0);
    /* A forged cookie of the right length fails the same way. */
    memset(cookie, 0x41, cl);
    chl = build_ch(ch, cookie, cl, 4, 1);
    udp_send_to(a, g.port, ch, chl);
    n = udp_recv(a, rep, sizeof(rep), 10000);
    cr_expect_eq(hs_type(rep, n), 3);
    WAIT_STAT(&g, dtls_cookie_failures, 2);
    cr_expect_eq(stats(&g).accepted, 0);
    close(a);
    close(b);
    eng_stop(&g);
}

TK_TEST(dtls, cookie_expired_bucket_refused)
{
    struct eng g;
    eng_start(&g, &(struct eng_opts){.workers = 1, .cookie_secs = 1});
    int fd = udp_socket_on("127.0.0.1", 0);
    unsigned char ch[600], rep[4096], cookie[255];
    size_t chl = build_ch(ch, NULL, 0, 5, 0);
    udp_send_to(fd, g.port, ch, chl);
    ssize_t n = udp_recv(fd, rep, sizeof(rep), 10000);
    size_t cl = hvr_cookie(rep, n, cookie);
    /* A 1 s bucket: the cookie is accepted for 1 to 2 s; after 2.1 s it is two buckets old.
     * Time itself is what is tested, so this waits for the clock. */
    int64_t until = tk_now_ms() + 2100;
    while (tk_now_ms() < until)
        poll(NULL, 0, 50);
    chl = build_ch(ch, cookie, cl, 5, 1);
    udp_send_to(fd, g.port, ch, chl);
    n = udp_recv(fd, rep, sizeof(rep), 10000);
    cr_expect_eq(hs_type(rep, n), 3, "an expired cookie must get a new HelloVerifyRequest");
    WAIT_STAT(&g, dtls_cookie_failures, 1);
    cr_expect_eq(stats(&g).accepted, 0);
    close(fd);
    eng_stop(&g);
}

static long rss_kib(pid_t pid)
{
    char path[64], *s, *p;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    s = tk_read_file(path, NULL);
    long v = -1;
    if (s && (p = strstr(s, "VmRSS:")))
        v = strtol(p + 6, NULL, 10);
    free(s);
    return v;
}

/* The value of "name=N" in the last counters line of the server's stderr. */
static long counter(struct tk_server *s, const char *name)
{
    char key[64];
    snprintf(key, sizeof(key), " %s=", name);
    const char *line = NULL, *p = s->p.errbuf;
    while (p && (p = strstr(p, "counters:"))) {
        line = p;
        p++;
    }
    if (!line || !(p = strstr(line, key)))
        return -1;
    return strtol(p + strlen(key), NULL, 10);
}

static long counters_now(struct tk_server *s, const char *name, size_t *seen)
{
    kill(s->p.pid, SIGUSR1);
    tk_proc_wait_for_n(&s->p, 2, "counters:", ++*seen, 10000);
    return counter(s, name);
}

/* ClientHellos from n source addresses and ports (127.b.x.y, each from a socket closed at
 * once: the HelloVerifyRequests go nowhere), half with a forged cookie. */
static void spoof_flood(int port, int n, int b)
{
    unsigned char ch[600], fake[32];
    memset(fake, 0x5a, sizeof(fake));
    for (int i = 0; i < n; i++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "127.%d.%d.%d", b, i / 250, 1 + i % 250);
        int fd = udp_socket_on(addr, 0);
        size_t chl = i % 2 ? build_ch(ch, fake, sizeof(fake), (uint32_t)i, 1)
                           : build_ch(ch, NULL, 0, (uint32_t)i, 0);
        udp_send_to(fd, port, ch, chl);
        close(fd);
    }
}

/* ASan keeps freed memory in a quarantine (256 MiB by default): RSS would grow with any
 * churn. 1 MiB keeps use-after-free detection and makes RSS mean what it says (as
 * test_hostile_clients does). */
static void small_asan_quarantine(void)
{
    const char *old = getenv("ASAN_OPTIONS");
    char buf[512];
    if (old != NULL && strstr(old, "quarantine_size_mb") != NULL)
        return;
    snprintf(buf, sizeof buf, "%s%squarantine_size_mb=1", old != NULL ? old : "",
             old != NULL && *old ? ":" : "");
    setenv("ASAN_OPTIONS", buf, 1);
}

/* 10,000 ClientHellos from 10,000 spoofed sources, half with a forged cookie: the
 * server's memory and connection table stay flat, and a real client still gets in. */
TK_TEST(dtls, cookie_flood_from_spoofed_sources)
{
    small_asan_quarantine();
    const char *extra[] = {"--udp", "--workers", "2", "-q", NULL};
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", extra);
    size_t seen = 0;
    spoof_flood(s.port, 3000, 2); /* warm-up: what the path allocates once is in the base */
    for (long last = -1, end = (long)(tk_now_ms() + 10000); tk_now_ms() < end;) {
        long c = counters_now(&s, "dtls_cookies_sent", &seen) + counter(&s, "dtls_drops");
        if (c >= 3000 || c == last)
            break; /* all answered, or the rest lost in the socket buffer */
        last = c;
        poll(NULL, 0, 100);
    }
    long rss0 = rss_kib(s.p.pid);
    long base_cookies = counter(&s, "dtls_cookies_sent");
    long base_failures = counter(&s, "dtls_cookie_failures");
    int64_t t0 = tk_now_ms();
    spoof_flood(s.port, 10000, 1);
    int64_t flood_ms = tk_now_ms() - t0;
    /* Everything sent has been answered (or dropped by a full socket buffer). */
    long answered = 0;
    for (int64_t end = tk_now_ms() + 20000; tk_now_ms() < end;) {
        long c = counters_now(&s, "dtls_cookies_sent", &seen) - base_cookies;
        long d = counter(&s, "dtls_drops");
        if (c + d >= 10000 || c == answered)
            break;
        answered = c;
        poll(NULL, 0, 200);
    }
    long open_after = counters_now(&s, "open", &seen);
    long accepted = counter(&s, "accepted");
    long cookies = counter(&s, "dtls_cookies_sent") - base_cookies;
    long failures = counter(&s, "dtls_cookie_failures") - base_failures;
    long rss1 = rss_kib(s.p.pid);
    cr_expect_eq(open_after, 0, "spoofed ClientHellos made connections: open=%ld", open_after);
    cr_expect_eq(accepted, 0);
    /* The kernel drops what a full socket buffer cannot take: the server answers most. */
    cr_expect_gt(cookies, 2000, "HelloVerifyRequests: %ld", cookies);
    cr_expect_gt(failures, 1000, "cookie failures: %ld", failures);
    cr_expect_lt(rss1 - rss0, 2048, "memory grew by %ld KiB", rss1 - rss0);
    /* A real client, now. */
    int64_t h0 = tk_now_ms();
    struct tk_proc cli;
    const char *args[] = {"--udp", "--ca", tk_cert("ca.crt"), "127.0.0.1", s.portstr, NULL};
    int rc = tk_run_app(&cli, tk_client_bin(), args, "real\n", 5, 30000);
    int64_t real_ms = tk_now_ms() - h0;
    cr_expect_eq(rc, 0, "real client: %s", tk_str(cli.errbuf));
    cr_expect(tk_contains(cli.outbuf, "real\n"));
    tk_proc_free(&cli);
    fprintf(stderr,
            "cookie flood: 10000 ClientHellos in %lld ms; server RSS %ld -> %ld KiB; "
            "open=%ld accepted=%ld cookies_sent=%ld cookie_failures=%ld; real client "
            "(tlsclient run, handshake and echo) %lld ms\n",
            (long long)flood_ms, rss0, rss1, open_after, accepted, cookies, failures,
            (long long)real_ms);
    tk_server_stop(&s);
}

/* ============================== 4. many peers, restarts, replays ======================= */

TK_TEST(dtls, two_hundred_peers_on_one_port)
{
    struct eng g;
    eng_start(&g, &(struct eng_opts){.workers = 2});
    tlskit_config *cfg = client_cfg(0, 0);
    enum { N = 200 };
    tlskit_conn *c[N];
    int done[N];
    for (int i = 0; i < N; i++) {
        c[i] = tlskit_conn_new(cfg);
        tlskit_conn_set_servername(c[i], "localhost");
        cr_assert_eq(tlskit_conn_connect_udp(c[i], "127.0.0.1", g.portstr), 0);
        tlskit_conn_set_nonblocking(c[i], 1);
        done[i] = 0;
    }
    /* All handshakes at once, one poll loop. */
    int left = N;
    int64_t end = tk_now_ms() + 60000;
    while (left > 0 && tk_now_ms() < end) {
        struct pollfd p[N];
        int wait = 100;
        for (int i = 0; i < N; i++) {
            p[i] = (struct pollfd){.fd = done[i] ? -1 : tlskit_conn_fd(c[i]), .events = POLLIN};
            int t = tlskit_conn_timeout_ms(c[i]);
            if (!done[i] && t >= 0 && t < wait)
                wait = t;
        }
        poll(p, N, wait);
        for (int i = 0; i < N; i++) {
            if (done[i])
                continue;
            int r = tlskit_conn_handshake(c[i]);
            if (r == 0) {
                done[i] = 1;
                left--;
            } else {
                cr_assert(r == TLSKIT_WANT_READ || r == TLSKIT_WANT_WRITE, "peer %d: %s", i,
                          tlskit_conn_error(c[i]));
            }
        }
    }
    cr_assert_eq(left, 0, "%d handshakes did not complete", left);
    cr_expect_eq(stats(&g).open, N);
    for (int i = 0; i < N; i++) {
        tlskit_conn_set_nonblocking(c[i], 0);
        char msg[32];
        int len = snprintf(msg, sizeof(msg), "peer %d", i);
        echo_once(c[i], msg, (size_t)len);
    }
    for (int i = 0; i < N; i++) {
        tlskit_conn_close(c[i]);
        tlskit_conn_free(c[i]);
    }
    WAIT_STAT(&g, handshakes_ok, N);
    tlskit_config_free(cfg);
    eng_stop(&g);
}

/* A client that lost its state (crashed, no close_notify) comes back from the same
 * address and port: its new handshake, cookie verified, replaces the old association. */
TK_TEST(dtls, peer_restart_same_port_replaces_association)
{
    struct eng g;
    eng_start(&g, &(struct eng_opts){.workers = 1});
    tlskit_config *cfg = client_cfg(0, 0);
    int fd = udp_socket_on("127.0.0.1", 0);
    int local = udp_port_of(fd);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g.port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
    tlskit_conn *c = tlskit_conn_new(cfg);
    cr_assert_eq(tlskit_conn_wrap_client(c, fd, "localhost"), 0, "%s", tlskit_conn_error(c));
    cr_assert_eq(tlskit_conn_handshake(c), 0, "%s", tlskit_conn_error(c));
    echo_once(c, "first life", 10);
    tlskit_conn_free(c); /* no close_notify: the process "crashed" */
    close(fd);

    fd = udp_socket_on("127.0.0.1", local);
    cr_assert_eq(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
    c = tlskit_conn_new(cfg);
    cr_assert_eq(tlskit_conn_wrap_client(c, fd, "localhost"), 0);
    cr_assert_eq(tlskit_conn_handshake(c), 0, "%s", tlskit_conn_error(c));
    echo_once(c, "second life", 11);
    WAIT_STAT(&g, handshakes_ok, 2);
    struct tlskit_engine_stats st = stats(&g);
    cr_expect_eq(st.accepted, 2);
    cr_expect_eq(st.open, 1, "the old association must be gone: open=%llu",
                 (unsigned long long)st.open);
    pthread_mutex_lock(&g.cl.mu);
    cr_expect_eq(g.cl.n, 1);
    cr_expect(tk_contains(g.cl.reasons[0], "new handshake"), "%s", g.cl.reasons[0]);
    pthread_mutex_unlock(&g.cl.mu);
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    close(fd);
    tlskit_config_free(cfg);
    eng_stop(&g);
}

/* A ClientHello replayed (the one that made an association, and a stale one with an
 * old random and a cookie that no longer verifies) changes nothing. */
TK_TEST(dtls, replayed_client_hello_changes_nothing)
{
    struct eng g;
    eng_start(&g, &(struct eng_opts){.workers = 1});
    int fd = udp_socket_on("127.0.0.1", 0);
    unsigned char cookie[255], ch[600], rep[8192];
    size_t cl;
    cr_assert_eq(cookie_exchange(fd, g.port, 7, cookie, &cl), 2);
    WAIT_STAT(&g, accepted, 1);
    while (udp_recv(fd, rep, sizeof(rep), 200) > 0) {
    } /* the rest of the server's flight */
    /* The same ClientHello again: a retransmission to the association, no new one. */
    size_t chl = build_ch(ch, cookie, cl, 7, 1);
    udp_send_to(fd, g.port, ch, chl);
    /* A stale one: another random, a cookie that does not verify. */
    unsigned char stale[255];
    memset(stale, 0x33, cl);
    chl = build_ch(ch, stale, cl, 8, 1);
    udp_send_to(fd, g.port, ch, chl);
    ssize_t n;
    int hvr = 0;
    while ((n = udp_recv(fd, rep, sizeof(rep), 500)) > 0)
        hvr += hs_type(rep, n) == 3;
    cr_expect_eq(hvr, 1, "the stale ClientHello gets one HelloVerifyRequest, no more");
    struct tlskit_engine_stats st = stats(&g);
    cr_expect_eq(st.accepted, 1, "a replay made a new association");
    cr_expect_eq(st.open, 1, "a replay ended the association");
    cr_expect_eq(st.dtls_cookie_failures, 1);
    close(fd);
    eng_stop(&g);
}

/* ============================== a relay: loss, delay, duplicates, reorder, MTU ========= */

struct held {
    int64_t at;
    int to_server;
    size_t len;
    unsigned char data[2048];
};

struct relay {
    int front, back;            /* front: the client's side; back: connected to the server */
    int server_port;
    int loss;                   /* 1: drop, delay, duplicate, reorder each 1 in 5 */
    size_t max_size;            /* drop datagrams larger than this (0: none) */
    uint32_t seed;
    atomic_int stop;
    /* results */
    size_t largest;             /* the largest datagram passed on */
    unsigned dropped, delayed, duplicated, reordered, too_big;
    pthread_t thread;
    struct held held[64];
    int nheld;
    struct sockaddr_in client;
    int have_client;
    uint32_t rng;
};

static uint32_t rnd(struct relay *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 17;
    r->rng ^= r->rng << 5;
    return r->rng;
}

static void relay_out(struct relay *r, int to_server, const unsigned char *d, size_t len)
{
    if (r->max_size && len > r->max_size) {
        r->too_big++;
        return;
    }
    if (len > r->largest)
        r->largest = len;
    if (to_server)
        (void)send(r->back, d, len, 0);
    else if (r->have_client)
        (void)sendto(r->front, d, len, 0, (struct sockaddr *)&r->client, sizeof(r->client));
}

static void relay_hold(struct relay *r, int to_server, const unsigned char *d, size_t len,
                       int64_t at)
{
    if (r->nheld == 64 || len > sizeof(r->held[0].data)) {
        relay_out(r, to_server, d, len);
        return;
    }
    struct held *h = &r->held[r->nheld++];
    h->at = at;
    h->to_server = to_server;
    h->len = len;
    memcpy(h->data, d, len);
}

static void relay_release(struct relay *r, int64_t now, int to_server_passed)
{
    for (int i = 0; i < r->nheld;) {
        struct held *h = &r->held[i];
        /* at == 0: reordered, goes out after the next datagram in its direction */
        if ((h->at && now >= h->at) || (!h->at && to_server_passed == h->to_server)) {
            relay_out(r, h->to_server, h->data, h->len);
            r->held[i] = r->held[--r->nheld];
        } else {
            i++;
        }
    }
}

static void relay_one(struct relay *r, int to_server, const unsigned char *d, size_t len)
{
    if (!r->loss) {
        relay_out(r, to_server, d, len);
        return;
    }
    switch (rnd(r) % 5) {
    case 0: r->dropped++; return;
    case 1: r->delayed++; relay_hold(r, to_server, d, len, tk_now_ms() + 20 + rnd(r) % 150); return;
    case 2: r->duplicated++; relay_out(r, to_server, d, len); relay_out(r, to_server, d, len); return;
    case 3: r->reordered++; relay_hold(r, to_server, d, len, 0); return;
    default: relay_out(r, to_server, d, len); return;
    }
}

static void *relay_main(void *arg)
{
    struct relay *r = arg;
    unsigned char buf[65536];
    while (!atomic_load(&r->stop)) {
        struct pollfd p[2] = {{.fd = r->front, .events = POLLIN}, {.fd = r->back, .events = POLLIN}};
        int wait = 20;
        poll(p, 2, wait);
        int64_t now = tk_now_ms();
        if (p[0].revents & POLLIN) {
            socklen_t sl = sizeof(r->client);
            ssize_t n = recvfrom(r->front, buf, sizeof(buf), 0, (struct sockaddr *)&r->client, &sl);
            if (n > 0) {
                r->have_client = 1;
                relay_one(r, 1, buf, (size_t)n);
                relay_release(r, now, 1);
            }
        }
        if (p[1].revents & POLLIN) {
            ssize_t n = recv(r->back, buf, sizeof(buf), 0);
            if (n > 0) {
                relay_one(r, 0, buf, (size_t)n);
                relay_release(r, now, 0);
            }
        }
        relay_release(r, now, -1);
    }
    return NULL;
}

static void relay_start(struct relay *r, int server_port, int loss, size_t max_size, uint32_t seed)
{
    memset(r, 0, sizeof(*r));
    r->server_port = server_port;
    r->loss = loss;
    r->max_size = max_size;
    r->rng = seed ? seed : 1;
    r->front = udp_socket_on("127.0.0.1", 0);
    r->back = udp_socket_on("127.0.0.1", 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)server_port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    cr_assert_eq(connect(r->back, (struct sockaddr *)&to, sizeof(to)), 0);
    atomic_init(&r->stop, 0);
    r->thread = tk_thread_start(relay_main, r);
}

static void relay_stop(struct relay *r)
{
    atomic_store(&r->stop, 1);
    tk_thread_join(r->thread);
    close(r->front);
    close(r->back);
}

/* ============================== 3. lossy relay ======================================== */

TK_TEST(dtls, lossy_relay_handshakes_and_datagrams)
{
    struct eng g;
    eng_start(&g, &(struct eng_opts){.workers = 1, .hs_ms = 30000, .timer_first = 100,
                                     .timer_max = 800});
    tlskit_config *cfg = client_cfg(0, 30000);
    static const uint32_t seeds[] = {11, 22, 33, 44, 55};
    uint64_t client_retx = 0;
    unsigned sent_total = 0, got_total = 0;
    char times[256] = "";
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        struct relay r;
        relay_start(&r, g.port, 1, 0, seeds[s]);
        char rport[16];
        snprintf(rport, sizeof(rport), "%d", udp_port_of(r.front));
        int64_t t0 = tk_now_ms();
        tlskit_conn *c = client_open(cfg, rport);
        int64_t hs_ms = tk_now_ms() - t0;
        size_t used = strlen(times);
        snprintf(times + used, sizeof(times) - used, "%s%lld", used ? "," : "", (long long)hs_ms);
        client_retx += tlskit_conn_retransmits(c);
        /* 30 distinct datagrams; each echo must be intact and arrive at most once. */
        enum { M = 30 };
        int seen[M] = {0};
        for (int i = 0; i < M; i++) {
            char msg[64];
            int len = snprintf(msg, sizeof(msg), "datagram %02d of seed %u", i, seeds[s]);
            cr_assert_eq(tlskit_conn_write(c, msg, (size_t)len), len);
            sent_total++;
        }
        tlskit_conn_set_nonblocking(c, 1);
        int64_t end = tk_now_ms() + 1500;
        while (tk_now_ms() < end) {
            unsigned char buf[2048];
            ssize_t n = tlskit_conn_read(c, buf, sizeof(buf));
            if (n == TLSKIT_WANT_READ) {
                struct pollfd p = {.fd = tlskit_conn_fd(c), .events = POLLIN};
                poll(&p, 1, 50);
                continue;
            }
            cr_assert_gt(n, 0, "%s", tlskit_conn_error(c));
            int idx = -1;
            unsigned sd = 0;
            cr_assert_eq(sscanf((char *)buf, "datagram %d of seed %u", &idx, &sd), 2);
            char want[64];
            int wl = snprintf(want, sizeof(want), "datagram %02d of seed %u", idx, seeds[s]);
            cr_assert(idx >= 0 && idx < M && sd == seeds[s] && n == wl &&
                      memcmp(buf, want, (size_t)wl) == 0, "damaged datagram");
            cr_assert_eq(seen[idx], 0, "datagram %d arrived twice", idx);
            seen[idx] = 1;
            got_total++;
        }
        tlskit_conn_free(c);
        relay_stop(&r);
        cr_expect_gt(r.dropped + r.delayed + r.duplicated + r.reordered, 0);
    }
    WAIT_STAT(&g, handshakes_ok, 5);
    struct tlskit_engine_stats st = stats(&g);
    cr_expect_eq(st.handshakes_ok, 5);
    cr_expect_gt(st.dtls_retransmissions + client_retx, 0, "nobody retransmitted");
    cr_expect_gt(got_total, 0);
    fprintf(stderr,
            "lossy relay (1 in 5 each drop/delay/duplicate/reorder, seeds 11..55): 5/5 "
            "handshakes in %s ms; retransmissions server %llu, client %llu; echoes %u of %u "
            "sent datagrams, none twice or damaged\n",
            times, (unsigned long long)st.dtls_retransmissions,
            (unsigned long long)client_retx, got_total, sent_total);
    tlskit_config_free(cfg);
    eng_stop(&g);
}

/* ============================== 5. path MTU ========================================== */

static void mtu_case(size_t path, int mtu)
{
    struct eng g;
    eng_start(&g, &(struct eng_opts){.workers = 1, .mtu = mtu, .hs_ms = 20000,
                                     .timer_first = 100, .timer_max = 400});
    tlskit_config *cfg = client_cfg(mtu, 20000);
    struct relay r;
    relay_start(&r, g.port, 0, path, 1);
    char rport[16];
    snprintf(rport, sizeof(rport), "%d", udp_port_of(r.front));
    tlskit_conn *c = client_open(cfg, rport);
    size_t max = tlskit_conn_max_write(c);
    cr_assert_gt(max, 0);
    cr_assert_lt(max, (size_t)mtu);
    unsigned char buf[2048];
    memset(buf, 'm', sizeof(buf));
    echo_once(c, buf, max);
    cr_expect_eq(r.largest, (size_t)mtu, "a largest write must fill the MTU exactly: %zu",
                 r.largest);
    cr_expect_eq(tlskit_conn_write(c, buf, max + 1), -1);
    cr_expect_eq(tlskit_conn_error_code(c), TLSKIT_E_LIMIT, "%s", tlskit_conn_error(c));
    echo_once(c, "still usable", 12);
    cr_expect_eq(r.too_big, 0, "a datagram above the path MTU was sent");
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    relay_stop(&r);
    tlskit_config_free(cfg);
    eng_stop(&g);
}

TK_TEST(dtls, path_mtu_576_and_508)
{
    mtu_case(576, 576);
    mtu_case(508, 508);
}

/* The control: with the default MTU (1232) the certificate flight does not fit a 576-byte
 * path and the handshake times out. */
TK_TEST(dtls, path_mtu_too_small_without_setting)
{
    struct eng g;
    eng_start(&g, &(struct eng_opts){.workers = 1, .hs_ms = 1500, .timer_first = 100,
                                     .timer_max = 400, .cert = "rsa"});
    tlskit_config *cfg = client_cfg(0, 1500);
    struct relay r;
    relay_start(&r, g.port, 0, 576, 1);
    char rport[16];
    snprintf(rport, sizeof(rport), "%d", udp_port_of(r.front));
    tlskit_conn *c = tlskit_conn_new(cfg);
    tlskit_conn_set_servername(c, "localhost");
    cr_assert_eq(tlskit_conn_connect_udp(c, "127.0.0.1", rport), 0);
    cr_expect_eq(tlskit_conn_handshake(c), -1);
    cr_expect_eq(tlskit_conn_error_code(c), TLSKIT_E_TIMEOUT, "%s", tlskit_conn_error(c));
    cr_expect_gt(r.too_big, 0);
    tlskit_conn_free(c);
    relay_stop(&r);
    tlskit_config_free(cfg);
    eng_stop(&g);
}

/* ============================== 6. deadlines ========================================= */

/* A peer that proves its address and then says nothing: the server retransmits its
 * flight at the configured delays (100, 200, 400, 400 ... ms) until the handshake
 * deadline ends it. */
TK_TEST(dtls, silent_peer_retransmissions_and_handshake_deadline)
{
    struct eng g;
    eng_start(&g, &(struct eng_opts){.workers = 1, .hs_ms = 1600, .timer_first = 100,
                                     .timer_max = 400});
    int fd = udp_socket_on("127.0.0.1", 0);
    unsigned char cookie[255], rep[8192];
    size_t cl;
    unsigned char ch[600];
    size_t chl = build_ch(ch, NULL, 0, 9, 0);
    udp_send_to(fd, g.port, ch, chl);
    ssize_t n = udp_recv(fd, rep, sizeof(rep), 10000);
    cl = hvr_cookie(rep, n, cookie);
    chl = build_ch(ch, cookie, cl, 9, 1);
    udp_send_to(fd, g.port, ch, chl);
    int64_t starts[32];
    int nstarts = 0;
    int64_t end = tk_now_ms() + 5000;
    while (tk_now_ms() < end && nstarts < 32) {
        n = udp_recv(fd, rep, sizeof(rep), 300);
        if (n > 0 && hs_type(rep, n) == 2) /* each flight starts with the ServerHello */
            starts[nstarts++] = tk_now_ms();
        if (stats(&g).handshake_timeouts > 0 && n < 0)
            break;
    }
    WAIT_STAT(&g, handshake_timeouts, 1);
    struct tlskit_engine_stats st = stats(&g);
    cr_expect_eq(st.handshake_timeouts, 1);
    cr_expect_eq(st.open, 0);
    cr_expect_geq(nstarts, 4, "flights: %d", nstarts);
    cr_expect_eq(st.dtls_retransmissions, (uint64_t)(nstarts - 1));
    /* Gaps: first 100 ms, then doubling, capped at 400; the engine looks every 50 ms. */
    int64_t want = 100;
    for (int i = 1; i < nstarts; i++) {
        int64_t gap = starts[i] - starts[i - 1];
        cr_expect(gap >= want - 20 && gap <= want + 250, "gap %d: %lld ms, expected ~%lld", i,
                  (long long)gap, (long long)want);
        want = want * 2 > 400 ? 400 : want * 2;
    }
    /* The deadline is a total: the last flight is before it. */
    cr_expect_leq(starts[nstarts - 1] - starts[0], 1700);
    close(fd);
    eng_stop(&g);
}

/* Client side: a server that never answers; the blocking handshake retransmits and ends
 * at the HANDSHAKE deadline. */
TK_TEST(dtls, client_handshake_deadline_against_silence)
{
    int fd = udp_socket_on("127.0.0.1", 0);
    char port[16];
    snprintf(port, sizeof(port), "%d", udp_port_of(fd));
    tlskit_config *cfg = client_cfg(0, 700);
    tlskit_conn *c = tlskit_conn_new(cfg);
    cr_assert_eq(tlskit_conn_connect_udp(c, "127.0.0.1", port), 0);
    int64_t t0 = tk_now_ms();
    cr_expect_eq(tlskit_conn_handshake(c), -1);
    int64_t took = tk_now_ms() - t0;
    cr_expect_eq(tlskit_conn_error_code(c), TLSKIT_E_TIMEOUT, "%s", tlskit_conn_error(c));
    cr_expect(took >= 650 && took < 5000, "took %lld ms", (long long)took);
    /* 100, 200, 400 ms: three retransmissions before 700 ms */
    cr_expect_geq(tlskit_conn_retransmits(c), 2);
    unsigned char buf[4096];
    int hellos = 0;
    while (udp_recv(fd, buf, sizeof(buf), 0) > 0)
        hellos += hs_type(buf, 200) == 1;
    cr_expect_eq((uint64_t)hellos, 1 + tlskit_conn_retransmits(c));
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    close(fd);
}

TK_TEST(dtls, idle_association_closed_with_close_notify)
{
    struct eng g;
    eng_start(&g, &(struct eng_opts){.workers = 1, .idle_ms = 300});
    tlskit_config *cfg = client_cfg(0, 0);
    tlskit_conn *c = client_open(cfg, g.portstr);
    unsigned char buf[64];
    int64_t t0 = tk_now_ms();
    ssize_t n = tlskit_conn_read(c, buf, sizeof(buf)); /* blocks until the server ends it */
    int64_t took = tk_now_ms() - t0;
    cr_expect_eq(n, 0, "expected close_notify, got %zd: %s", n, tlskit_conn_error(c));
    cr_expect(took >= 250 && took < 5000, "took %lld ms", (long long)took);
    WAIT_STAT(&g, idle_timeouts, 1);
    cr_expect_eq(stats(&g).idle_timeouts, 1);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    eng_stop(&g);
}

/* ============================== 7. hostile datagrams ================================== */

TK_TEST(dtls, hostile_datagrams_leave_others_unaffected)
{
    struct eng g;
    eng_start(&g, &(struct eng_opts){.workers = 1});
    tlskit_config *cfg = client_cfg(0, 0);
    /* A real client on a socket we hold, so that we can also send from its address. */
    int fd = udp_socket_on("127.0.0.1", 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g.port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
    tlskit_conn *c = tlskit_conn_new(cfg);
    cr_assert_eq(tlskit_conn_wrap_client(c, fd, "localhost"), 0);
    cr_assert_eq(tlskit_conn_handshake(c), 0, "%s", tlskit_conn_error(c));

    int h = udp_socket_on("127.0.0.1", 0);
    unsigned char d[1500], ch[600];
    size_t chl = build_ch(ch, NULL, 0, 10, 0);
    tk_fill_pattern(d, sizeof(d), 99);
    for (int i = 0; i < 50; i++) { /* garbage of every size */
        udp_send_to(h, g.port, d, (size_t)(1 + i * 29));
        (void)send(fd, d, (size_t)(1 + i * 29), 0); /* from the client's own address */
    }
    udp_send_to(h, g.port, ch, chl / 2);            /* a truncated ClientHello */
    unsigned char wrong[600];
    memcpy(wrong, ch, chl);
    wrong[4] = 1;                                    /* epoch 1 */
    udp_send_to(h, g.port, wrong, chl);
    (void)send(fd, wrong, chl, 0);
    memcpy(wrong, ch, chl);                          /* a first fragment of 40 bytes */
    wrong[11] = 0;
    wrong[12] = 12 + 40;
    wrong[22] = 0;
    wrong[23] = 0;
    wrong[24] = 40;
    udp_send_to(h, g.port, wrong, 13 + 12 + 40);
    (void)send(fd, wrong, 13 + 12 + 40, 0);
    /* The association survives and another peer gets in. */
    echo_once(c, "still here", 10);
    tlskit_conn *other = client_open(cfg, g.portstr);
    echo_once(other, "me too", 6);
    struct tlskit_engine_stats st = stats(&g);
    cr_expect_eq(st.open, 2);
    cr_expect_eq(st.accepted, 2);
    cr_expect_gt(st.dtls_drops, 50, "drops: %llu", (unsigned long long)st.dtls_drops);
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    tlskit_conn_close(other);
    tlskit_conn_free(other);
    close(fd);
    close(h);
    tlskit_config_free(cfg);
    eng_stop(&g);
}

/* ============================== API edges ============================================= */

TK_TEST(dtls, api_config_kinds_do_not_mix)
{
    tlskit_config *tls = tlskit_config_new(), *dtls = tlskit_config_new_dtls();
    cr_expect_eq(tlskit_config_set_mtu(tls, 1000), -1);
    cr_expect_eq(tlskit_config_error_code(tls), TLSKIT_E_INVALID);
    cr_expect_eq(tlskit_config_set_mtu(dtls, 100), -1);
    cr_expect_eq(tlskit_config_set_mtu(dtls, 1400), 0);
    cr_expect_eq(tlskit_config_set_protocols(dtls, TLSKIT_TLS1_3, TLSKIT_TLS1_3), -1);
    cr_expect_eq(tlskit_config_set_protocols(dtls, TLSKIT_TLS1_2, TLSKIT_TLS1_3), 0);
    cr_expect_eq(tlskit_config_set_dtls_timer(dtls, 500, 100), -1);
    tlskit_conn *c = tlskit_conn_new(tls);
    cr_expect_eq(tlskit_conn_connect_udp(c, "127.0.0.1", "9"), -1);
    cr_expect_eq(tlskit_conn_error_code(c), TLSKIT_E_INVALID);
    tlskit_conn_free(c);
    c = tlskit_conn_new(dtls);
    cr_expect_eq(tlskit_conn_connect(c, "127.0.0.1", "9"), -1);
    cr_expect_eq(tlskit_conn_error_code(c), TLSKIT_E_INVALID);
    cr_expect_eq(tlskit_conn_max_write(c), 0);
    tlskit_conn_free(c);
    tlskit_config_free(tls);
    tlskit_config_free(dtls);
}

TK_TEST(dtls, client_refused_port_is_connect_error)
{
    int fd = udp_socket_on("127.0.0.1", 0);
    char port[16];
    snprintf(port, sizeof(port), "%d", udp_port_of(fd));
    close(fd); /* nothing listens there now: ICMP port unreachable */
    struct tk_proc p;
    const char *args[] = {"--udp", "--timeout", "5", "127.0.0.1", port, NULL};
    int rc = tk_run_app(&p, tk_client_bin(), args, "", 0, 30000);
    cr_expect_eq(rc, 3, "exit %d: %s", rc, tk_str(p.errbuf));
    tk_proc_free(&p);
}
