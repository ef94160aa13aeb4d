/* SPDX-License-Identifier: MIT */
/* The data paths that only real TCP sockets exercise: large writes sent record by record
 * with MSG_MORE (the tail must never be held back, whole or partial writes alike),
 * read-ahead (records OpenSSL has already read must come out before the next poll()),
 * and TLS 1.3 session tickets (how many are sent, and resumption with them). */
#include "common.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

TK_SUITE(transfer);

static tlskit_conn *connect_local(tlskit_config *c, tlskit_listener *l)
{
    char port[16];
    snprintf(port, sizeof port, "%d", tlskit_listener_port(l));
    tlskit_conn *conn = tlskit_conn_new(c);
    cr_assert_not_null(conn);
    cr_assert_eq(tlskit_conn_connect(conn, "localhost", port), 0, "%s",
                 tk_str(tlskit_conn_error(conn)));
    return conn;
}

/* ---- large writes: record packing with MSG_MORE ---- */

struct sink {
    tlskit_listener *l;
    size_t want;
    unsigned char *buf;
    size_t got;
    int slow;             /* small reads with pauses: the writer keeps hitting WANT_WRITE */
    char err[512];
};

/* Accept one connection and read exactly `want` bytes (blocking, with a read deadline:
 * bytes held back by the writer's side end the test with a timeout, not a hang). */
static void *sink_main(void *p)
{
    struct sink *s = p;
    tlskit_conn *conn = NULL;
    if (tlskit_listener_accept(s->l, &conn, 20000) != 0) {
        snprintf(s->err, sizeof s->err, "accept: %s", tk_str(tlskit_listener_error(s->l)));
        return NULL;
    }
    while (s->got < s->want) {
        size_t room = s->want - s->got;
        if (s->slow && room > 3000)
            room = 3000;
        ssize_t n = tlskit_conn_read(conn, s->buf + s->got, room);
        if (n <= 0) {
            snprintf(s->err, sizeof s->err, "read after %zu of %zu bytes: %zd %s", s->got,
                     s->want, n, tk_str(tlskit_conn_error(conn)));
            break;
        }
        s->got += (size_t)n;
        if (s->slow && s->got % 7 == 0)
            poll(NULL, 0, 1);
    }
    if (s->got == s->want)
        tlskit_conn_write_all(conn, "k", 1); /* the writer waits for this */
    tlskit_conn_close(conn);
    tlskit_conn_free(conn);
    return NULL;
}

/* Write `total` bytes in uneven pieces (1 byte .. several records), blocking or not;
 * the sink must receive every byte, in order, with nothing held back at the end. */
static void bulk_to_sink(int nonblocking, int slow)
{
    tlskit_config *s = tk_server_config("server");
    cr_assert_eq(tlskit_config_set_timeout(s, TLSKIT_TIMEOUT_READ, 20000), 0);
    tlskit_config *c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_timeout(c, TLSKIT_TIMEOUT_WRITE, 20000), 0);
    cr_assert_eq(tlskit_config_set_timeout(c, TLSKIT_TIMEOUT_READ, 20000), 0);
    cr_assert_eq(tlskit_config_set_buffer_sizes(c, 0, 32768), 0);
    tlskit_listener *l = tk_listen(s, "127.0.0.1", "0");

    const size_t total = (3u << 20) + 12345;
    unsigned char *out = malloc(total);
    struct sink sk = {.l = l, .want = total, .buf = malloc(total), .slow = slow};
    cr_assert(out && sk.buf);
    tk_fill_pattern(out, total, 4242);
    pthread_t t = tk_thread_start(sink_main, &sk);

    tlskit_conn *conn = connect_local(c, l);
    cr_assert_eq(tlskit_conn_handshake(conn), 0, "%s", tk_str(tlskit_conn_error(conn)));
    if (nonblocking)
        cr_assert_eq(tlskit_conn_set_nonblocking(conn, 1), 0);
    static const size_t pieces[] = {1, 16384, 16385, 100000, 5, 65536, 49151, 300000, 2};
    size_t off = 0, k = 0;
    int partial = 0, wants = 0;
    int64_t end = tk_now_ms() + 60000;
    while (off < total && tk_now_ms() < end) {
        size_t want = pieces[k++ % (sizeof pieces / sizeof pieces[0])];
        if (want > total - off)
            want = total - off;
        ssize_t n = tlskit_conn_write(conn, out + off, want);
        if (n > 0) {
            cr_assert_leq((size_t)n, want);
            partial += (size_t)n < want;
            off += (size_t)n;
            continue;
        }
        cr_assert(nonblocking && (n == TLSKIT_WANT_WRITE || n == TLSKIT_WANT_READ),
                  "write at %zu: %zd %s", off, n, tk_str(tlskit_conn_error(conn)));
        wants++;
        k--; /* the same piece again, as the WANT contract says */
        struct pollfd pf = {.fd = tlskit_conn_fd(conn), .events = tlskit_want_events(n)};
        poll(&pf, 1, 1000);
    }
    cr_assert_eq(off, total, "wrote %zu of %zu bytes", off, total);
    /* The sink answers once it has everything: read that (non-blocking: poll). */
    char k1 = 0;
    ssize_t n;
    while ((n = tlskit_conn_read(conn, &k1, 1)) == TLSKIT_WANT_READ && tk_now_ms() < end) {
        struct pollfd pf = {.fd = tlskit_conn_fd(conn), .events = POLLIN};
        poll(&pf, 1, 1000);
    }
    cr_expect_eq(n, 1, "no answer from the sink: %zd %s", n, tk_str(tlskit_conn_error(conn)));
    tk_thread_join(t);
    cr_expect_str_empty(sk.err, "%s", sk.err);
    cr_expect_eq(sk.got, total);
    cr_expect_eq(memcmp(sk.buf, out, total), 0, "the data arrived changed");
    if (nonblocking) {
        cr_expect_gt(wants + partial, 0, "3 MB into a 32 KB send buffer never had to wait");
    }
    tlskit_conn_free(conn);
    tlskit_listener_free(l);
    free(out);
    free(sk.buf);
    tlskit_config_free(s);
    tlskit_config_free(c);
}

TK_TEST(transfer, blocking_bulk_uneven_pieces)
{
    bulk_to_sink(0, 0);
}

TK_TEST(transfer, blocking_bulk_slow_reader)
{
    bulk_to_sink(0, 1);
}

TK_TEST(transfer, nonblocking_bulk_partial_writes)
{
    bulk_to_sink(1, 0);
}

TK_TEST(transfer, nonblocking_bulk_slow_reader)
{
    bulk_to_sink(1, 1);
}

/* ---- nothing held back after a write ---- */

static void *echo_main(void *p)
{
    tlskit_listener *l = p;
    tlskit_conn *conn = NULL;
    if (tlskit_listener_accept(l, &conn, 20000) != 0)
        return NULL;
    static unsigned char buf[65536];
    ssize_t n;
    while ((n = tlskit_conn_read(conn, buf, sizeof buf)) > 0)
        if (tlskit_conn_write_all(conn, buf, (size_t)n) != 0)
            break;
    tlskit_conn_close(conn);
    tlskit_conn_free(conn);
    return NULL;
}

/* On an otherwise quiet connection (no ACK coming to push a held segment), every write
 * must go out whole at once: a last record sent with MSG_MORE would wait forever. */
TK_TEST(transfer, quiet_connection_writes_arrive_at_once)
{
    tlskit_config *s = tk_server_config("server");
    tlskit_config *c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_timeout(c, TLSKIT_TIMEOUT_READ, 10000), 0);
    tlskit_listener *l = tk_listen(s, "127.0.0.1", "0");
    pthread_t t = tk_thread_start(echo_main, l);
    tlskit_conn *conn = connect_local(c, l);
    cr_assert_eq(tlskit_conn_handshake(conn), 0, "%s", tk_str(tlskit_conn_error(conn)));
    static unsigned char out[40000], in[40000];
    tk_fill_pattern(out, sizeof out, 5);
    static const size_t sizes[] = {1, 16384, 16385, 40000, 32768};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        cr_assert_eq(tlskit_conn_write_all(conn, out, sizes[i]), 0, "%s",
                     tk_str(tlskit_conn_error(conn)));
        /* Bytes the kernel holds unsent (corked). A held segment would still leave
         * after ~200 ms (the probe timer): the echo alone would not notice. */
        int unsent = -1;
        cr_assert_eq(ioctl(tlskit_conn_fd(conn), SIOCOUTQNSD, &unsent), 0, "%s",
                     strerror(errno));
        cr_expect_eq(unsent, 0, "after a %zu-byte write, %d bytes wait unsent in the kernel",
                     sizes[i], unsent);
        tk_conn_read_exact(conn, in, sizes[i]);
        cr_expect_eq(memcmp(in, out, sizes[i]), 0, "%zu bytes came back changed", sizes[i]);
    }
    tlskit_conn_close(conn);
    tlskit_conn_free(conn);
    tk_thread_join(t);
    tlskit_listener_free(l);
    tlskit_config_free(s);
    tlskit_config_free(c);
}

/* ---- read-ahead: many small records ---- */

struct burst {
    tlskit_listener *l;
    int records;
    char err[512];
};

/* Send `records` one-byte records as fast as possible, then wait for the peer's close. */
static void *burst_main(void *p)
{
    struct burst *b = p;
    tlskit_conn *conn = NULL;
    if (tlskit_listener_accept(b->l, &conn, 20000) != 0) {
        snprintf(b->err, sizeof b->err, "accept: %s", tk_str(tlskit_listener_error(b->l)));
        return NULL;
    }
    for (int i = 0; i < b->records; i++) {
        unsigned char ch = (unsigned char)(i & 0xff);
        if (tlskit_conn_write_all(conn, &ch, 1) != 0) {
            snprintf(b->err, sizeof b->err, "write %d: %s", i, tk_str(tlskit_conn_error(conn)));
            break;
        }
    }
    char x;
    (void)tlskit_conn_read(conn, &x, 1);
    tlskit_conn_free(conn);
    return NULL;
}

/* A non-blocking reader that reads until WANT_READ and only then polls must see every
 * record: a record already inside OpenSSL gives poll() nothing to report. */
TK_TEST(transfer, read_ahead_small_records_nonblocking)
{
    tlskit_config *s = tk_server_config("server");
    tlskit_config *c = tk_client_config("ca.crt");
    tlskit_listener *l = tk_listen(s, "127.0.0.1", "0");
    struct burst b = {.l = l, .records = 3000};
    pthread_t t = tk_thread_start(burst_main, &b);
    tlskit_conn *conn = connect_local(c, l);
    cr_assert_eq(tlskit_conn_handshake(conn), 0, "%s", tk_str(tlskit_conn_error(conn)));
    cr_assert_eq(tlskit_conn_set_nonblocking(conn, 1), 0);
    int got = 0, bad = 0;
    int64_t end = tk_now_ms() + 30000;
    while (got < b.records && tk_now_ms() < end) {
        unsigned char buf[1]; /* one byte at a time: records pile up inside OpenSSL */
        ssize_t n = tlskit_conn_read(conn, buf, sizeof buf);
        if (n > 0) {
            bad += buf[0] != (unsigned char)(got & 0xff);
            got++;
            continue;
        }
        cr_assert(n == TLSKIT_WANT_READ || n == TLSKIT_WANT_WRITE, "read: %zd %s", n,
                  tk_str(tlskit_conn_error(conn)));
        struct pollfd pf = {.fd = tlskit_conn_fd(conn), .events = tlskit_want_events(n)};
        int r = poll(&pf, 1, 5000);
        cr_assert(r > 0 || got == b.records,
                  "poll saw nothing for 5 s after %d of %d records: data stuck inside the "
                  "library?", got, b.records);
    }
    cr_expect_eq(got, b.records);
    cr_expect_eq(bad, 0, "records out of order");
    tlskit_conn_free(conn);
    tk_thread_join(t);
    cr_expect_str_empty(b.err, "%s", b.err);
    tlskit_listener_free(l);
    tlskit_config_free(s);
    tlskit_config_free(c);
}

/* ---- session tickets ---- */

static int g_tickets_seen;

static int count_ticket(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    (void)sess;
    g_tickets_seen++;
    return 0; /* not kept: OpenSSL frees it */
}

/* One exchange; returns the connection for a look at its session. */
static tlskit_conn *exchange(tlskit_config *c, tlskit_listener *l, tlskit_session *offer)
{
    tlskit_conn *conn = connect_local(c, l);
    if (offer)
        cr_assert_eq(tlskit_conn_set_session(conn, offer), 0, "%s",
                     tk_str(tlskit_conn_error(conn)));
    cr_assert_eq(tlskit_conn_handshake(conn), 0, "%s", tk_str(tlskit_conn_error(conn)));
    cr_assert_eq(tlskit_conn_write(conn, "x", 1), 1, "%s", tk_str(tlskit_conn_error(conn)));
    char ch;
    tk_conn_read_exact(conn, &ch, 1); /* the tickets came before the answer */
    return conn;
}

/* tickets: -1 for the default. Returns the number of tickets the client saw on the
 * first connection; *reused: whether the second one resumed. */
static int tickets_and_resume(int tickets, int *reused, int *srv_reused)
{
    tlskit_config *s = tk_server_config("server");
    if (tickets >= 0)
        cr_assert_eq(tlskit_config_set_session_tickets(s, tickets), 0, "%s",
                     tk_str(tlskit_config_error(s)));
    tlskit_config *c = tk_client_config("ca.crt");
    SSL_CTX *cctx = tlskit_config_ssl_ctx(c);
    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(cctx, count_ticket);
    tlskit_listener *l = tk_listen(s, "127.0.0.1", "0");
    struct tk_byte_server r = {.l = l, .conns = 2};
    pthread_t t = tk_thread_start(tk_byte_server_main, &r);

    g_tickets_seen = 0;
    tlskit_conn *first = exchange(c, l, NULL);
    int seen = g_tickets_seen;
    tlskit_session *sess = tlskit_conn_session_copy(first);
    cr_expect_eq(tlskit_session_resumable(sess), tickets != 0,
                 "resumable session after %d ticket(s)", seen);
    tlskit_conn_close(first);
    tlskit_conn_free(first);
    tlskit_conn *second = exchange(c, l, sess);
    *reused = tlskit_conn_session_reused(second);
    tlskit_conn_close(second);
    tlskit_conn_free(second);
    tlskit_session_free(sess);
    tk_thread_join(t);
    cr_expect_str_empty(r.err, "%s", r.err);
    *srv_reused = r.reused[1];
    cr_expect_eq(r.reused[0], 0, "the first connection cannot be a resumption");
    tlskit_listener_free(l);
    tlskit_config_free(s);
    tlskit_config_free(c);
    return seen;
}

TK_TEST(transfer, one_ticket_by_default_and_it_resumes)
{
    int reused = -1, srv = -1;
    cr_expect_eq(tickets_and_resume(-1, &reused, &srv), 1, "tickets sent by default");
    cr_expect_eq(reused, 1, "the client did not resume with the ticket");
    cr_expect_eq(srv, 1, "the server did not see a resumption");
}

TK_TEST(transfer, three_tickets_when_asked)
{
    int reused = -1, srv = -1;
    cr_expect_eq(tickets_and_resume(3, &reused, &srv), 3);
    cr_expect_eq(reused, 1);
}

TK_TEST(transfer, no_tickets_no_resumption)
{
    int reused = -1, srv = -1;
    cr_expect_eq(tickets_and_resume(0, &reused, &srv), 0, "tickets sent although turned off");
    cr_expect_eq(reused, 0, "resumed without a ticket");
    cr_expect_eq(srv, 0);
}
