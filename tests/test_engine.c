/* SPDX-License-Identifier: MIT */
/* The server engine in-process: many connections, deadlines, backpressure and the write
 * cap, connection limits, graceful stop, reload, counters. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

TK_SUITE(engine);

/* ---- an echo engine with recorded closes ---- */

struct closes {
    pthread_mutex_t mu;
    int n;
    int codes[64];
    char reasons[64][256];
    size_t flood;     /* on_open writes this many bytes (to test the write cap) */
};

static void echo_data(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    (void)arg;
    tlskit_conn_write(c, d, n);
}

static void flood_open(tlskit_conn *c, void *arg)
{
    struct closes *cl = arg;
    static unsigned char chunk[65536];
    for (size_t sent = 0; sent < cl->flood; sent += sizeof(chunk))
        if (tlskit_conn_write(c, chunk, sizeof(chunk)) < 0)
            break;
}

static void record_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    (void)c;
    struct closes *cl = arg;
    pthread_mutex_lock(&cl->mu);
    if (cl->n < 64) {
        cl->codes[cl->n] = code;
        snprintf(cl->reasons[cl->n], sizeof(cl->reasons[0]), "%s", reason);
    }
    cl->n++;
    pthread_mutex_unlock(&cl->mu);
}

static int closes_count(struct closes *cl)
{
    pthread_mutex_lock(&cl->mu);
    int n = cl->n;
    pthread_mutex_unlock(&cl->mu);
    return n;
}


struct eng {
    tlskit_config *cfg;
    tlskit_engine *e;
    struct closes cl;
    char port[16];
};

static void eng_start(struct eng *g, const char *cert, int workers, int64_t hs_ms,
                      int64_t idle_ms, int64_t write_ms, void (*on_open)(tlskit_conn *, void *))
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->cl.mu, NULL);
    g->cfg = tk_server_config(cert);
    if (hs_ms)
        tlskit_config_set_timeout(g->cfg, TLSKIT_TIMEOUT_HANDSHAKE, hs_ms);
    if (idle_ms)
        tlskit_config_set_timeout(g->cfg, TLSKIT_TIMEOUT_IDLE, idle_ms);
    if (write_ms)
        tlskit_config_set_timeout(g->cfg, TLSKIT_TIMEOUT_WRITE, write_ms);
    struct tlskit_engine_handlers h = {
        .on_open = on_open, .on_data = echo_data, .on_close = record_close, .arg = &g->cl};
    g->e = tlskit_engine_new(g->cfg, &h);
    cr_assert_not_null(g->e);
    cr_assert_eq(tlskit_engine_set_workers(g->e, workers), 0);
}

static void eng_listen(struct eng *g)
{
    cr_assert_eq(tlskit_engine_listen(g->e, "127.0.0.1", "0", 0), 0, "%s",
                 tlskit_engine_error(g->e));
    snprintf(g->port, sizeof(g->port), "%d", tlskit_engine_port(g->e));
    cr_assert_eq(tlskit_engine_start(g->e), 0, "%s", tlskit_engine_error(g->e));
}

static void eng_free(struct eng *g)
{
    cr_assert_eq(tlskit_engine_stop(g->e), 0);
    struct tlskit_engine_stats st;
    tlskit_engine_read_stats(g->e, &st);
    cr_expect_eq(st.open, 0, "connections still open after stop: %llu",
                 (unsigned long long)st.open);
    tlskit_engine_free(g->e);
    tlskit_config_free(g->cfg);
    pthread_mutex_destroy(&g->cl.mu);
}

static tlskit_conn *client(tlskit_config *ccfg, const char *port)
{
    tlskit_conn *c = tlskit_conn_new(ccfg);
    cr_assert_not_null(c);
    cr_assert_eq(tlskit_conn_connect(c, "127.0.0.1", port), 0, "%s", tlskit_conn_error(c));
    return c;
}

static void echo_once(tlskit_conn *c, const char *msg)
{
    size_t len = strlen(msg);
    char got[256];
    cr_assert_eq(tlskit_conn_write_all(c, msg, len), 0, "%s", tlskit_conn_error(c));
    tk_conn_read_exact(c, got, len);
    cr_assert(memcmp(got, msg, len) == 0, "echo mismatch");
}

static void drop(tlskit_conn *c)
{
    tlskit_conn_close(c);
    tlskit_conn_free(c);
}

/* ---- many connections at once ---- */

/* 2,000 handshakes (both ends in this process) under ASan on two shared cores: give it
 * more than the suite's default bound. */
static void thousand_body(void);
Test(engine, thousand_concurrent_connections_each_echoed, .timeout = 240)
{
    tk_test_begin();
    thousand_body();
    tk_test_end();
}

static void thousand_body(void)
{
    enum { N = 1000 };
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rlim_t need = 2 * N + 64;
    if (rl.rlim_cur < need) {
        cr_assert_geq(rl.rlim_max, need, "hard fd limit %llu is below %llu",
                      (unsigned long long)rl.rlim_max, (unsigned long long)need);
        rl.rlim_cur = need;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    struct eng g;
    eng_start(&g, "server", 2, 30000, 0, 0, NULL);
    eng_listen(&g);
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_HANDSHAKE, 30000);
    tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_READ, 30000);
    tlskit_conn **cs = calloc(N, sizeof(*cs));
    for (int i = 0; i < N; i++) {
        cs[i] = client(ccfg, g.port);
        cr_assert_eq(tlskit_conn_handshake(cs[i]), 0, "conn %d: %s", i,
                     tlskit_conn_error(cs[i]));
    }
    struct tlskit_engine_stats st;
    tlskit_engine_read_stats(g.e, &st);
    cr_assert_geq(st.open, N - 0, "open %llu", (unsigned long long)st.open);
    /* All held open at once; now each one echoes its own message. */
    for (int i = 0; i < N; i++) {
        char msg[64];
        snprintf(msg, sizeof(msg), "connection %d says hello", i);
        echo_once(cs[i], msg);
    }
    tlskit_engine_read_stats(g.e, &st);
    cr_assert_eq(st.open, N);
    cr_assert_eq(st.handshakes_ok, N);
    for (int i = 0; i < N; i++)
        drop(cs[i]);
    free(cs);
    tlskit_config_free(ccfg);
    eng_free(&g);
}

/* ---- deadlines ---- */

static int first_close_seen(void *arg)
{
    return closes_count(arg) >= 1;
}

TK_TEST(engine, slowloris_and_idle_clients_cut_at_handshake_deadline_while_serving)
{
    struct eng g;
    eng_start(&g, "server", 2, 600, 0, 0, NULL);
    eng_listen(&g);
    int port = atoi(g.port);
    /* One client sends nothing; one sends a plausible ClientHello start a byte at a time. */
    int idle = tk_tcp_connect("127.0.0.1", port);
    int slow = tk_tcp_connect("127.0.0.1", port);
    const unsigned char hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc,
                                   0x03, 0x03, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_conn *real = client(ccfg, g.port);
    int64_t start = tk_now_ms();
    size_t i = 0;
    int slow_closed = 0;
    /* Meanwhile a real client is served. */
    echo_once(real, "served while others stall");
    while (!slow_closed && tk_now_ms() - start < 20000) {
        if (i < sizeof(hello) && send(slow, &hello[i], 1, MSG_NOSIGNAL) == 1)
            i++;
        struct pollfd p = {.fd = slow, .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            /* Readable: EOF or reset, i.e. the server ended it (it has nothing to say
             * to an unfinished ClientHello but goodbye). */
            char b[64];
            cr_assert_leq(recv(slow, b, sizeof(b), 0), 0, "server answered a partial hello");
            slow_closed = 1;
        }
    }
    int64_t took = tk_now_ms() - start;
    cr_assert(slow_closed, "slowloris client was not cut off within 20 s");
    cr_assert_geq(took, 500, "cut off before the deadline (%lld ms)", (long long)took);
    char b[8];
    struct pollfd p = {.fd = idle, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 20000), 1, "idle client not closed");
    cr_assert_leq(recv(idle, b, sizeof(b), 0), 0);
    echo_once(real, "and still served after");
    struct tlskit_engine_stats st;
    tlskit_engine_read_stats(g.e, &st);
    cr_assert_geq(st.handshake_timeouts, 2, "handshake_timeouts %llu",
                  (unsigned long long)st.handshake_timeouts);
    cr_assert_geq(st.handshake_errors[TLSKIT_E_TIMEOUT], 2);
    cr_assert(tk_wait_until(first_close_seen, &g.cl, 5000));
    pthread_mutex_lock(&g.cl.mu);
    int timeouts = 0;
    for (int k = 0; k < g.cl.n && k < 64; k++)
        if (g.cl.codes[k] == TLSKIT_E_TIMEOUT && tk_contains(g.cl.reasons[k], "timed out"))
            timeouts++;
    pthread_mutex_unlock(&g.cl.mu);
    cr_assert_geq(timeouts, 2, "close reasons do not say timed out");
    close(idle);
    close(slow);
    drop(real);
    tlskit_config_free(ccfg);
    eng_free(&g);
}

TK_TEST(engine, idle_deadline_closes_quiet_connection)
{
    struct eng g;
    eng_start(&g, "server", 1, 0, 400, 0, NULL);
    eng_listen(&g);
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_READ, 20000);
    tlskit_conn *c = client(ccfg, g.port);
    echo_once(c, "one");
    char b[16];
    ssize_t n = tlskit_conn_read(c, b, sizeof(b)); /* waits until the server ends it */
    cr_assert_leq(n, 0);
    struct tlskit_engine_stats st;
    tlskit_engine_read_stats(g.e, &st);
    cr_assert_eq(st.idle_timeouts, 1);
    drop(c);
    tlskit_config_free(ccfg);
    eng_free(&g);
}

/* A peer that sends but never reads: backpressure stops the server reading, so its
 * buffer stays bounded, and the write-stall deadline ends the connection. */
TK_TEST(engine, peer_that_never_reads_is_closed_with_memory_bounded)
{
    struct eng g;
    eng_start(&g, "server", 1, 0, 0, 500, NULL);
    cr_assert_eq(tlskit_engine_set_write_limit(g.e, 256 * 1024), 0);
    eng_listen(&g);
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_conn *c = client(ccfg, g.port);
    cr_assert_eq(tlskit_conn_handshake(c), 0, "%s", tlskit_conn_error(c));
    cr_assert_eq(tlskit_conn_set_nonblocking(c, 1), 0);
    static unsigned char chunk[16384];
    size_t sent = 0;
    int64_t start = tk_now_ms();
    /* Write until the connection ends (never reading). */
    for (;;) {
        ssize_t n = tlskit_conn_write(c, chunk, sizeof(chunk));
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n == -1)
            break;
        struct pollfd p = {.fd = tlskit_conn_fd(c), .events = tlskit_want_events(n)};
        poll(&p, 1, 100);
        if (closes_count(&g.cl) >= 1 || tk_now_ms() - start > 30000)
            break;
    }
    cr_assert(tk_wait_until(first_close_seen, &g.cl, 20000), "server never closed the stalled peer");
    struct tlskit_engine_stats st;
    tlskit_engine_read_stats(g.e, &st);
    cr_assert_eq(st.write_stalls, 1, "write_stalls %llu (sent %zu)",
                 (unsigned long long)st.write_stalls, sent);
    /* Bounded: the server took in at most what its kernel buffers, TLS records and the
     * write limit hold, far below what an unbounded echo would accept. */
    cr_assert_lt(st.bytes_in, 32u << 20, "server read %llu bytes", (unsigned long long)st.bytes_in);
    cr_assert_eq(g.cl.codes[0], TLSKIT_E_TIMEOUT);
    cr_assert(tk_contains(g.cl.reasons[0], "stalled"), "%s", g.cl.reasons[0]);
    drop(c);
    tlskit_config_free(ccfg);
    eng_free(&g);
}

TK_TEST(engine, output_over_the_write_limit_closes_with_limit_error)
{
    struct eng g;
    eng_start(&g, "server", 1, 0, 0, 0, flood_open);
    g.cl.flood = 8u << 20; /* the app queues 8 MiB to a peer that reads nothing */
    cr_assert_eq(tlskit_engine_set_write_limit(g.e, 1u << 20), 0);
    eng_listen(&g);
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_conn *c = client(ccfg, g.port);
    cr_assert_eq(tlskit_conn_handshake(c), 0, "%s", tlskit_conn_error(c));
    cr_assert(tk_wait_until(first_close_seen, &g.cl, 20000));
    cr_assert_eq(g.cl.codes[0], TLSKIT_E_LIMIT, "%s", g.cl.reasons[0]);
    cr_assert(tk_contains(g.cl.reasons[0], "limit"), "%s", g.cl.reasons[0]);
    struct tlskit_engine_stats st;
    tlskit_engine_read_stats(g.e, &st);
    cr_assert_eq(st.buffer_limit_closes, 1);
    drop(c);
    tlskit_config_free(ccfg);
    eng_free(&g);
}

/* ---- limits ---- */

TK_TEST(engine, connections_beyond_max_are_closed_at_once_and_counted)
{
    struct eng g;
    eng_start(&g, "server", 1, 10000, 0, 0, NULL);
    cr_assert_eq(tlskit_engine_set_max_conns(g.e, 3), 0);
    eng_listen(&g);
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_conn *cs[3];
    for (int i = 0; i < 3; i++) {
        cs[i] = client(ccfg, g.port);
        echo_once(cs[i], "within the limit");
    }
    tlskit_conn *extra = client(ccfg, g.port);
    cr_assert_eq(tlskit_conn_handshake(extra), -1, "a fourth connection was served");
    struct tlskit_engine_stats st;
    tlskit_engine_read_stats(g.e, &st);
    cr_assert_eq(st.limit_rejections, 1);
    drop(extra);
    drop(cs[0]);
    /* A slot freed: a new client is served again. */
    int64_t end = tk_now_ms() + 20000;
    for (;;) {
        tlskit_engine_read_stats(g.e, &st);
        if (st.open == 2 || tk_now_ms() > end)
            break;
        poll(NULL, 0, 10);
    }
    tlskit_conn *again = client(ccfg, g.port);
    echo_once(again, "served once a slot is free");
    drop(again);
    drop(cs[1]);
    drop(cs[2]);
    tlskit_config_free(ccfg);
    eng_free(&g);
}

/* ---- graceful stop ---- */

struct streamer {
    const char *port;
    tlskit_config *ccfg;
    atomic_int phase;    /* 1: first half sent, main may stop; 2: stop returned */
    size_t sent, got;
    int ok;
    char err[256];
};

static void *stream_client(void *arg)
{
    struct streamer *s = arg;
    enum { TOTAL = 256 * 1024, STEP = 4096 };
    static _Thread_local unsigned char out[TOTAL], in[TOTAL];
    tk_fill_pattern(out, TOTAL, 7);
    tlskit_conn *c = tlskit_conn_new(s->ccfg);
    if (tlskit_conn_connect(c, "127.0.0.1", s->port) != 0 || tlskit_conn_handshake(c) != 0) {
        snprintf(s->err, sizeof(s->err), "%s", tlskit_conn_error(c));
        atomic_store(&s->phase, 1);
        tlskit_conn_free(c);
        return NULL;
    }
    /* Stream the first half, with echoes flowing back as we go. */
    while (s->sent < TOTAL / 2) {
        if (tlskit_conn_write_all(c, out + s->sent, STEP) != 0)
            break;
        s->sent += STEP;
        if (s->got < s->sent) {
            ssize_t n = tlskit_conn_read(c, in + s->got, s->sent - s->got);
            if (n > 0)
                s->got += (size_t)n;
        }
    }
    atomic_store(&s->phase, 1);
    /* The stop has been called: send nothing more, read until the server closes. */
    for (;;) {
        ssize_t n = tlskit_conn_read(c, in + s->got, TOTAL - s->got);
        if (n <= 0) {
            s->ok = n == 0; /* close_notify, not truncation */
            if (n < 0)
                snprintf(s->err, sizeof(s->err), "%s", tlskit_conn_error(c));
            break;
        }
        s->got += (size_t)n;
    }
    if (s->got != s->sent || memcmp(in, out, s->got) != 0)
        s->ok = 0;
    tlskit_conn_free(c);
    return NULL;
}

TK_TEST(engine, graceful_stop_echoes_every_byte_sent_before_it)
{
    struct eng g;
    eng_start(&g, "server", 2, 0, 0, 0, NULL);
    cr_assert_eq(tlskit_engine_set_drain_timeout(g.e, 300), 0);
    eng_listen(&g);
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_READ, 20000);
    enum { K = 4 };
    struct streamer s[K];
    pthread_t t[K];
    for (int i = 0; i < K; i++) {
        memset(&s[i], 0, sizeof(s[i]));
        s[i].port = g.port;
        s[i].ccfg = ccfg;
        t[i] = tk_thread_start(stream_client, &s[i]);
    }
    for (int i = 0; i < K; i++)
        while (atomic_load(&s[i].phase) < 1)
            poll(NULL, 0, 5);
    cr_assert_eq(tlskit_engine_stop(g.e), 0);
    for (int i = 0; i < K; i++) {
        tk_thread_join(t[i]);
        cr_assert(s[i].ok, "client %d: sent %zu, got back %zu (%s)", i, s[i].sent, s[i].got,
                  s[i].err);
    }
    cr_assert_eq(closes_count(&g.cl), K);
    tlskit_config_free(ccfg);
    eng_free(&g);
}

/* ---- nothing held back ---- */

/* The event that ends a handshake holds its sends back (MSG_MORE) to push them as one
 * segment. Forgetting the push would not lose data, only delay it until TCP's probe
 * timer (200 ms or more): so count answers that took that long. */
TK_TEST(engine, first_answers_after_handshakes_are_not_held_back)
{
    struct eng g;
    eng_start(&g, "server", 1, 0, 0, 0, NULL);
    eng_listen(&g);
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_READ, 20000);
    enum { N = 20 };
    int slow = 0;
    int64_t worst = 0;
    for (int i = 0; i < N; i++) {
        tlskit_conn *c = client(ccfg, g.port);
        /* The client's Finished and its first request in one segment, so the server's
         * ticket and answer come from one event: the client's socket is corked
         * (TCP_CORK) around each step. Corked, the ClientHello cannot be answered during
         * the first step, so that step always ends wanting to read. */
        int fd = tlskit_conn_fd(c), on = 1, off = 0;
        cr_assert_eq(tlskit_conn_set_nonblocking(c, 1), 0);
        cr_assert_eq(setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on), 0);
        int r = tlskit_conn_handshake(c);
        cr_assert_eq(r, TLSKIT_WANT_READ, "first step: %d %s", r, tlskit_conn_error(c));
        cr_assert_eq(setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off), 0); /* CH out */
        cr_assert_eq(poll(&(struct pollfd){.fd = fd, .events = POLLIN}, 1, 20000), 1);
        cr_assert_eq(setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on), 0);
        while ((r = tlskit_conn_handshake(c)) == TLSKIT_WANT_READ)
            poll(&(struct pollfd){.fd = fd, .events = POLLIN}, 1, 20000);
        cr_assert_eq(r, 0, "%s", tlskit_conn_error(c));
        cr_assert_eq(tlskit_conn_write(c, "ping", 4), 4, "%s", tlskit_conn_error(c));
        int64_t t0 = tk_now_ms();
        cr_assert_eq(setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off), 0);
        cr_assert_eq(tlskit_conn_set_nonblocking(c, 0), 0);
        char got[4];
        tk_conn_read_exact(c, got, 4);
        cr_assert(memcmp(got, "ping", 4) == 0, "echo mismatch");
        echo_once(c, "pong");
        int64_t dt = tk_now_ms() - t0;
        slow += dt >= 150;
        worst = dt > worst ? dt : worst;
        drop(c);
    }
    cr_expect_leq(slow, N / 4, "%d of %d first exchanges took 150 ms or more (worst %lld "
                  "ms): answers held back by MSG_MORE?", slow, N, (long long)worst);
    tlskit_config_free(ccfg);
    eng_free(&g);
}

/* ---- large responses ---- */

enum { DL_TOTAL = (3 << 20) + 777 };
static unsigned char g_dl[DL_TOTAL];

/* The whole download queued at once in uneven pieces (a byte .. many records), then a
 * close: the engine writes what the socket takes, buffers the rest, and must deliver
 * every byte in order, the tail included, before its close_notify. */
static void download_open(tlskit_conn *c, void *arg)
{
    (void)arg;
    static const size_t pieces[] = {1, 16384, 16385, 300000, 7, 65536, 100001};
    size_t off = 0;
    for (size_t k = 0; off < DL_TOTAL; k++) {
        size_t n = pieces[k % (sizeof pieces / sizeof pieces[0])];
        if (n > DL_TOTAL - off)
            n = DL_TOTAL - off;
        if (tlskit_conn_write(c, g_dl + off, n) < 0)
            return;
        off += n;
    }
    tlskit_conn_close(c);
}

struct downloader {
    const char *port;
    tlskit_config *ccfg;
    int slow;
    size_t got;
    int ok;
    char err[512];
};

static void *download_client(void *arg)
{
    struct downloader *d = arg;
    unsigned char *in = malloc(DL_TOTAL + 1);
    tlskit_conn *c = tlskit_conn_new(d->ccfg);
    if (!in || tlskit_conn_connect(c, "127.0.0.1", d->port) != 0 ||
        tlskit_conn_handshake(c) != 0) {
        snprintf(d->err, sizeof(d->err), "%s", tlskit_conn_error(c));
        goto out;
    }
    for (;;) {
        size_t room = DL_TOTAL + 1 - d->got;
        if (d->slow && room > 5000)
            room = 5000;
        ssize_t n = tlskit_conn_read(c, in + d->got, room);
        if (n <= 0) {
            d->ok = n == 0 && d->got == DL_TOTAL && memcmp(in, g_dl, DL_TOTAL) == 0;
            if (n < 0)
                snprintf(d->err, sizeof(d->err), "%s", tlskit_conn_error(c));
            break;
        }
        d->got += (size_t)n;
        if (d->slow && (d->got & 7) == 0)
            poll(NULL, 0, 1);
    }
out:
    tlskit_conn_free(c);
    free(in);
    return NULL;
}

TK_TEST(engine, large_responses_arrive_whole_and_in_order)
{
    tk_fill_pattern(g_dl, DL_TOTAL, 99);
    struct eng g;
    eng_start(&g, "server", 2, 0, 0, 0, download_open);
    cr_assert_eq(tlskit_engine_set_write_limit(g.e, 8u << 20), 0);
    eng_listen(&g);
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_READ, 20000);
    cr_assert_eq(tlskit_config_set_buffer_sizes(ccfg, 16384, 0), 0); /* backpressure */
    enum { K = 4 };
    struct downloader d[K];
    pthread_t t[K];
    for (int i = 0; i < K; i++) {
        d[i] = (struct downloader){.port = g.port, .ccfg = ccfg, .slow = i % 2};
        t[i] = tk_thread_start(download_client, &d[i]);
    }
    for (int i = 0; i < K; i++) {
        tk_thread_join(t[i]);
        cr_expect(d[i].ok, "client %d (%s reader): got %zu of %d bytes, %s", i,
                  d[i].slow ? "slow" : "fast", d[i].got, DL_TOTAL, d[i].err);
    }
    tlskit_config_free(ccfg);
    eng_free(&g);
}

/* ---- reload ---- */

TK_TEST(engine, reload_serves_new_certificate_to_new_connections_only)
{
    struct eng g;
    eng_start(&g, "server", 2, 0, 0, 0, NULL);
    eng_listen(&g);
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_conn *old = client(ccfg, g.port);
    echo_once(old, "before reload");
    char fp_old[128];
    snprintf(fp_old, sizeof(fp_old), "%s", tk_str(tlskit_conn_peer_cert_fingerprint(old)));

    tlskit_config *next = tk_server_config("rsa");
    cr_assert_eq(tlskit_engine_reload(g.e, next), 0, "%s", tlskit_engine_error(g.e));
    tlskit_config_free(next);
    /* A config without a keypair is refused and the current one kept. */
    tlskit_config *empty = tlskit_config_new();
    cr_assert_eq(tlskit_engine_reload(g.e, empty), -1);
    cr_assert_eq(tlskit_engine_error_code(g.e), TLSKIT_E_CONFIG);
    tlskit_config_free(empty);

    tlskit_conn *fresh = client(ccfg, g.port);
    echo_once(fresh, "after reload");
    cr_assert_str_neq(tk_str(tlskit_conn_peer_cert_fingerprint(fresh)), fp_old,
                      "new connection still got the old certificate");
    echo_once(old, "old connection keeps going");
    drop(old);
    drop(fresh);
    tlskit_config_free(ccfg);
    eng_free(&g);
}

/* ---- counters ---- */

TK_TEST(engine, counters_count_bytes_and_failed_handshakes_by_class)
{
    struct eng g;
    eng_start(&g, "server", 1, 5000, 0, 0, NULL);
    eng_listen(&g);
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_conn *c = client(ccfg, g.port);
    echo_once(c, "12345");
    drop(c);
    int fd = tk_tcp_connect("127.0.0.1", atoi(g.port));
    const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(send(fd, http, sizeof(http) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(http) - 1);
    char b[256];
    while (recv(fd, b, sizeof(b), 0) > 0) {
    }
    close(fd);
    int64_t end = tk_now_ms() + 20000;
    struct tlskit_engine_stats st;
    do {
        tlskit_engine_read_stats(g.e, &st);
        if (st.open == 0 && st.handshakes_failed == 1)
            break;
        poll(NULL, 0, 10);
    } while (tk_now_ms() < end);
    cr_assert_eq(st.accepted, 2);
    cr_assert_eq(st.handshakes_ok, 1);
    cr_assert_eq(st.handshakes_failed, 1);
    cr_assert_eq(st.handshake_errors[TLSKIT_E_PROTOCOL], 1);
    cr_assert_eq(st.bytes_in, 5);
    cr_assert_eq(st.bytes_out, 5);
    cr_assert_eq(st.open, 0);
    tlskit_config_free(ccfg);
    eng_free(&g);
}

/* ---- the quiet hook (tlskit_engine_set_on_quiet) ---- */

static void count_quiet(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

struct quiet_wait {
    atomic_int *calls;
    int want;
    struct closes *cl;
    int closes;
};

static int quiet_reached(void *arg)
{
    struct quiet_wait *q = arg;
    return atomic_load(q->calls) >= q->want;
}

static int closes_reached(void *arg)
{
    struct quiet_wait *q = arg;
    return closes_count(q->cl) >= q->closes;
}

/* A few connections are no reason to call it; a burst of them is, after they stop; a
 * quiet engine is not called again. */
TK_TEST(engine, quiet_hook_runs_once_after_a_burst)
{
    struct eng g;
    atomic_int calls = 0;
    eng_start(&g, "server", 1, 10000, 0, 0, NULL);
    cr_assert_eq(tlskit_engine_set_on_quiet(g.e, count_quiet, &calls), 0);
    eng_listen(&g);
    cr_assert_eq(tlskit_engine_set_on_quiet(g.e, NULL, NULL), -1, "settable after listen");
    cr_assert_eq(tlskit_engine_error_code(g.e), TLSKIT_E_INVALID);
    tlskit_config *ccfg = tk_client_config("ca.crt");
    struct quiet_wait q = {.calls = &calls, .want = 1, .cl = &g.cl, .closes = 1};
    /* One connection: 3 changes (accepted, handshake, closed), below the threshold. */
    tlskit_conn *c = client(ccfg, g.port);
    echo_once(c, "one");
    drop(c);
    cr_assert(tk_wait_until(closes_reached, &q, 20000));
    poll(NULL, 0, TLSKIT_ENGINE_QUIET_MS * 4); /* long past a quiet spell */
    cr_expect_eq(atomic_load(&calls), 0, "called after a single connection");
    /* A burst: 12 more connections (36 changes) held, then closed. */
    tlskit_conn *burst[12];
    for (int i = 0; i < 12; i++) {
        burst[i] = client(ccfg, g.port);
        echo_once(burst[i], "burst");
    }
    for (int i = 0; i < 12; i++)
        drop(burst[i]);
    q.closes = 13;
    cr_assert(tk_wait_until(closes_reached, &q, 20000));
    cr_expect(tk_wait_until(quiet_reached, &q, 20000), "not called after a burst");
    poll(NULL, 0, TLSKIT_ENGINE_QUIET_MS * 4); /* (a slow machine may split the burst) */
    int after = atomic_load(&calls);
    poll(NULL, 0, TLSKIT_ENGINE_QUIET_MS * 4);
    cr_expect_eq(atomic_load(&calls), after, "called again while nothing changed");
    tlskit_config_free(ccfg);
    eng_free(&g);
}

TK_TEST(engine, settings_are_validated)
{
    tlskit_config *cfg = tk_server_config("server");
    struct tlskit_engine_handlers h = {0};
    tlskit_engine *e = tlskit_engine_new(cfg, &h);
    cr_assert_eq(tlskit_engine_set_max_conns(e, -1), -1);
    cr_assert_eq(tlskit_engine_error_code(e), TLSKIT_E_INVALID);
    cr_assert_eq(tlskit_engine_set_write_limit(e, 10), -1);
    cr_assert_eq(tlskit_engine_set_drain_timeout(e, -5), -1);
    cr_assert_eq(tlskit_engine_set_workers(e, 2), 0);
    struct tlskit_engine_stats st; /* before listening: all zero, no crash */
    tlskit_engine_read_stats(e, &st);
    cr_assert_eq(st.accepted, 0);
    int fd = -1, port = 0;
    fd = tk_tcp_bound("127.0.0.1", 16, &port);
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    cr_assert_eq(tlskit_engine_listen(e, "127.0.0.1", p, 0), -1);
    cr_assert_eq(tlskit_engine_error_code(e), TLSKIT_E_LISTEN);
    cr_assert(tk_contains(tlskit_engine_error(e), "Address already in use"), "%s",
              tlskit_engine_error(e));
    close(fd);
    tlskit_engine_free(e);
    tlskit_config_free(cfg);
}

/* ---- one family of calls: the connection calls on an engine connection ---- */

struct family {
    atomic_int checked;       /* on_data ran the checks */
    atomic_int failures;      /* checks that did not hold */
    char what[256];           /* the first one that did not hold */
};

static void family_fail(struct family *f, const char *what)
{
    if (atomic_fetch_add(&f->failures, 1) == 0)
        snprintf(f->what, sizeof(f->what), "%s", what);
}

/* The calls that drive a connection by hand fail with TLSKIT_E_INVALID; writes queue and
 * return their length; free is refused (the engine frees it after on_close). (Shutdown
 * is an engine call since outbound connections: test_forward covers it.) */
static void family_data(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    struct family *f = arg;
    char buf[16];
    if (tlskit_conn_read(c, buf, sizeof(buf)) != -1 ||
        tlskit_conn_error_code(c) != TLSKIT_E_INVALID)
        family_fail(f, "read did not fail with TLSKIT_E_INVALID");
    if (!strstr(tlskit_conn_error(c), "served by the engine"))
        family_fail(f, "read's error does not say why");
    if (tlskit_conn_handshake(c) != -1 || tlskit_conn_error_code(c) != TLSKIT_E_INVALID)
        family_fail(f, "handshake did not fail with TLSKIT_E_INVALID");
    if (tlskit_conn_set_nonblocking(c, 0) != -1 ||
        tlskit_conn_error_code(c) != TLSKIT_E_INVALID)
        family_fail(f, "set_nonblocking did not fail with TLSKIT_E_INVALID");
    tlskit_conn_free(c); /* must do nothing: ASan reports a use after free otherwise */
    if (tlskit_conn_write(c, d, n) != (ssize_t)n)
        family_fail(f, "write did not return its length");
    if (tlskit_conn_write_all(c, "!", 1) != 0)
        family_fail(f, "write_all did not return 0");
    if (tlskit_conn_error_code(c) != TLSKIT_E_NONE)
        family_fail(f, "a successful write left an error");
    atomic_store(&f->checked, 1);
}

static int family_checked(void *arg)
{
    return atomic_load(&((struct family *)arg)->checked);
}

TK_TEST(engine, connection_calls_on_engine_connections)
{
    struct family f = {0};
    tlskit_config *cfg = tk_server_config("server");
    struct tlskit_engine_handlers h = {.on_data = family_data, .arg = &f};
    tlskit_engine *e = tlskit_engine_new(cfg, &h);
    cr_assert_not_null(e);
    cr_assert_eq(tlskit_engine_set_workers(e, 1), 0);
    cr_assert_eq(tlskit_engine_listen(e, "127.0.0.1", "0", 0), 0, "%s", tlskit_engine_error(e));
    cr_assert_eq(tlskit_engine_start(e), 0, "%s", tlskit_engine_error(e));
    char port[16];
    snprintf(port, sizeof(port), "%d", tlskit_engine_port(e));
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_READ, 20000);
    tlskit_conn *c = client(ccfg, port);
    char got[8];
    cr_assert_eq(tlskit_conn_write_all(c, "ping", 4), 0, "%s", tlskit_conn_error(c));
    tk_conn_read_exact(c, got, 5);
    cr_expect(memcmp(got, "ping!", 5) == 0, "got \"%.5s\"", got);
    /* The bytes may arrive before on_data has returned: wait for its last step. */
    cr_expect_eq(tk_wait_until(family_checked, &f, 20000), 1, "on_data never finished");
    cr_expect_eq(atomic_load(&f.failures), 0, "%s", f.what);
    /* Outside the engine, the same calls behave as before. */
    cr_expect_eq(tlskit_conn_pending(c), 0);
    drop(c);
    tlskit_config_free(ccfg);
    cr_assert_eq(tlskit_engine_stop(e), 0);
    tlskit_engine_free(e);
    tlskit_config_free(cfg);
}

/* ---- what tlskit_conn_pending() counts ---- */

/* A client that never reads: the server queues 4 MiB in one write. The records the
 * socket BIO gathered for one send() and the socket did not take are output too: the
 * bytes not yet in the kernel (the server's send queue plus the client's receive queue,
 * both ciphertext, so at least the plaintext they hold) must all be in pending. */
#define PEND_BYTES (4u << 20)

struct pend {
    tlskit_conn *conn;   /* the server's connection (worker thread only) */
    atomic_int written;  /* the 4 MiB were queued */
    atomic_long pending; /* sampled at the last tick: -1 before */
    atomic_long outq;    /* SIOCOUTQ of the server's socket, same tick */
    atomic_int stable;   /* ticks in a row with the same figures */
};

static void pend_data(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    struct pend *p = arg;
    (void)d;
    (void)n;
    if (atomic_load(&p->written))
        return;
    unsigned char *big = malloc(PEND_BYTES);
    if (!big)
        return;
    memset(big, 'p', PEND_BYTES);
    p->conn = c;
    if (tlskit_conn_write(c, big, PEND_BYTES) == (ssize_t)PEND_BYTES)
        atomic_store(&p->written, 1);
    free(big);
}

static void pend_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    struct pend *p = arg;
    (void)code;
    (void)reason;
    if (p->conn == c)
        p->conn = NULL;
}

static void pend_tick(int worker, int event, void *arg)
{
    struct pend *p = arg;
    (void)worker;
    if (event != TLSKIT_WORKER_TICK || !p->conn || !atomic_load(&p->written))
        return;
    int q = 0;
    long pend = (long)tlskit_conn_pending(p->conn);
    if (ioctl(tlskit_conn_fd(p->conn), SIOCOUTQ, &q) != 0)
        q = -1;
    if (pend == atomic_load(&p->pending) && q == atomic_load(&p->outq)) {
        atomic_fetch_add(&p->stable, 1);
    } else {
        atomic_store(&p->stable, 0);
        atomic_store(&p->pending, pend);
        atomic_store(&p->outq, q);
    }
}

static int pend_settled(void *arg)
{
    return atomic_load(&((struct pend *)arg)->stable) >= 4;
}

TK_TEST(engine, pending_counts_records_the_socket_did_not_take)
{
    struct pend p = {.pending = -1, .outq = -1};
    tlskit_config *cfg = tk_server_config("server");
    struct tlskit_engine_handlers h = {.on_data = pend_data, .on_close = pend_close, .arg = &p};
    tlskit_engine *e = tlskit_engine_new(cfg, &h);
    cr_assert_not_null(e);
    cr_assert_eq(tlskit_engine_set_workers(e, 1), 0);
    cr_assert_eq(tlskit_engine_set_write_limit(e, 8u << 20), 0, "%s", tlskit_engine_error(e));
    cr_assert_eq(tlskit_engine_set_on_worker(e, pend_tick, &p), 0);
    cr_assert_eq(tlskit_engine_listen(e, "127.0.0.1", "0", 0), 0, "%s", tlskit_engine_error(e));
    cr_assert_eq(tlskit_engine_start(e), 0, "%s", tlskit_engine_error(e));
    char port[16];
    snprintf(port, sizeof(port), "%d", tlskit_engine_port(e));
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_conn *c = client(ccfg, port);
    cr_assert_eq(tlskit_conn_write_all(c, "x", 1), 0, "%s", tlskit_conn_error(c));
    cr_assert_eq(tk_wait_until(pend_settled, &p, 30000), 1, "the server's output never settled");
    int inq = 0;
    cr_assert_eq(ioctl(tlskit_conn_fd(c), FIONREAD, &inq), 0);
    long pend = atomic_load(&p.pending), outq = atomic_load(&p.outq);
    cr_assert_geq(outq, 0, "SIOCOUTQ failed");
    long in_kernel = outq + inq;
    cr_expect_lt(in_kernel, (long)PEND_BYTES, "the socket took everything: nothing to check");
    cr_expect_geq(pend, (long)PEND_BYTES - in_kernel,
                  "pending %ld, but %ld of the %u bytes are not in the kernel (%ld queued to "
                  "send, %d received)", pend, (long)PEND_BYTES - in_kernel, PEND_BYTES, outq,
                  inq);
    drop(c);
    tlskit_config_free(ccfg);
    cr_assert_eq(tlskit_engine_stop(e), 0);
    tlskit_engine_free(e);
    tlskit_config_free(cfg);
}
