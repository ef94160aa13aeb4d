/* SPDX-License-Identifier: MIT */
/* Worker threads of the load generator. Each worker owns its slots (connections) and an
 * edge-triggered epoll set; a slot is only ever touched by its worker, so nothing here
 * takes a lock on the hot path. Counters are relaxed atomics the main thread samples.
 *
 * One slot's life, by mode:
 *   handshake  connect, handshake, [request, response], close_notify, read to the end,
 *              and again (each lap is one measured handshake)
 *   rr         connect, handshake, then request/response for ever (latency per exchange)
 *   bulk       connect, handshake, then N bytes each way at once (echo) or GETs until N
 *              body bytes came (HTTP)
 *   idle       connect, handshake, [one request], then hold; on verify, one more request
 * The state machine (slot_step) is the same for all; what differs is in one table,
 * mode_ops, and its functions, grouped by mode. Idle's paced set-up (--inflight) and
 * its verify round are the worker's, in tick().
 *
 * The client reads to the server's close (after sending its own close_notify) rather
 * than dropping the socket: that consumes the TLS 1.3 tickets (needed for --resume) and
 * gives the server the ordinary clean close it would get from a browser. */
#include "load.h"

#include "cli.h"
#include "http_response.h"

#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define TICK_MS 20          /* timeouts, retries, idle set-up */
#define RETRY_MS 20         /* after a failed connection, before the next try */
#define DRAIN_MS 2000       /* waiting for the server's close after our close_notify */
#define BULK_CHUNK 65536
#define IDLE_TRIES 3        /* idle: attempts per slot before giving up on it */
#define EVENTS_MAX 256      /* epoll events taken per wait */

enum st {
    ST_FREE = 0,   /* no connection (maybe waiting for retry_at) */
    ST_CONNECTING, /* TCP connect in progress */
    ST_HANDSHAKE,
    ST_SEND,       /* writing a request */
    ST_RECV,       /* reading its response */
    ST_BULK,       /* echo bulk: writing and reading at once */
    ST_SHUTDOWN,   /* sending close_notify */
    ST_DRAIN,      /* reading until the server closes */
    ST_IDLE,       /* idle: held */
    ST_DEAD,       /* idle: gone for good (counted) */
};

struct slot {
    struct worker *w;
    uint32_t index;      /* in w->slots */
    uint32_t gen;        /* bumped per connection: tells stale epoll events apart */
    int fd;
    tlskit_conn *tc;
    enum st st;
    int64_t t0_ns;       /* connect started (handshake latency) */
    int64_t treq_ns;     /* request started (request latency) */
    int64_t deadline;    /* ms, 0 none */
    int64_t retry_at;    /* ms, 0 none */
    int tries;           /* idle: set-up attempts */
    int was_ready;       /* rr: counted in ctr.ready once */
    int verifying;       /* idle: this exchange is the verify round */
    int initial_done;    /* idle: the first exchange is over */
    /* the current request */
    size_t woff;
    /* the current response */
    uint64_t need;       /* echo: bytes still expected */
    struct http_response resp;
    /* bulk */
    uint64_t sent, got, body_got;
    size_t wpend;
};

static void add(atomic_uint_fast64_t *a, uint64_t n)
{
    atomic_fetch_add_explicit(a, n, memory_order_relaxed);
}

static int is_want(ssize_t r)
{
    return r == TLSKIT_WANT_READ || r == TLSKIT_WANT_WRITE;
}

static int measuring(const struct worker *w)
{
    return atomic_load_explicit(&w->ctl->measuring, memory_order_relaxed);
}

static int stopping(const struct worker *w)
{
    return atomic_load_explicit(&w->ctl->stop, memory_order_relaxed);
}

static void note_error(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note_error(struct worker *w, const char *fmt, ...)
{
    add(&w->ctr.errors, 1);
    pthread_mutex_lock(&w->info_mu);
    if (!w->first_error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->first_error, sizeof(w->first_error), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&w->info_mu);
}

static const char *state_name(enum st st)
{
    static const char *const names[] = {"free", "connect", "handshake", "request",
                                        "response", "bulk transfer", "close_notify",
                                        "close", "idle", "dead"};
    return names[st];
}

/* What a mode does at the turns of a connection's life (the table is below, next to
 * the modes' own functions). */
struct mode_ops {
    int latency_of_handshake;             /* 1: latency is connect to handshake done */
    int latency_of_request;               /* 1: latency is request to whole response */
    void (*after_handshake)(struct slot *s);
    void (*after_response)(struct slot *s);
    int (*over)(struct slot *s);          /* at the end of a connection: 1 to stay closed */
    int (*failed)(struct slot *s);        /* after a failure: 1 when it scheduled a retry */
};

static const struct mode_ops *mode_of(const struct worker *w);

/* ---- starting and ending connections ---- */

static void slot_step(struct slot *s, uint32_t ev);

static void release(struct slot *s)
{
    if (s->tc)
        tlskit_conn_free(s->tc); /* wrapped: does not close our fd */
    s->tc = NULL;
    if (s->fd >= 0)
        close(s->fd); /* also leaves the epoll set */
    s->fd = -1;
    s->deadline = 0;
}

static void keep_session(struct slot *s)
{
    struct worker *w = s->w;
    tlskit_session *sess = tlskit_conn_session_copy(s->tc);
    if (sess && tlskit_session_resumable(sess)) {
        tlskit_session_free(w->session);
        w->session = sess;
    } else {
        tlskit_session_free(sess);
    }
}

static void slot_start(struct slot *s);

/* The connection is over (cleanly or not); what next depends on the mode. */
static void slot_end(struct slot *s, int ok)
{
    struct worker *w = s->w;
    const struct bench_params *p = w->p;
    if (ok && p->resume && s->tc)
        keep_session(s);
    release(s);
    s->st = ST_FREE;
    if (stopping(w))
        return;
    const struct mode_ops *m = mode_of(w);
    if (m->over && m->over(s))
        return;
    if (ok)
        slot_start(s);
    else
        s->retry_at = w->now_ms + RETRY_MS;
}

static void slot_fail(struct slot *s, const char *what)
{
    struct worker *w = s->w;
    if (stopping(w)) { /* the server may be going away under us: not an error */
        release(s);
        s->st = ST_FREE;
        return;
    }
    const char *why = s->tc ? tlskit_conn_error(s->tc) : "";
    if (s->tc && !*why)
        why = "failed";
    if (what)
        note_error(w, "%s", what);
    else
        note_error(w, "%s: %s", state_name(s->st), why);
    const struct mode_ops *m = mode_of(w);
    if (m->failed && m->failed(s))
        return;
    slot_end(s, 0);
}

static int begin_tls(struct slot *s)
{
    struct worker *w = s->w;
    s->tc = tlskit_conn_new(w->p->cfg);
    if (!s->tc) {
        slot_fail(s, "out of memory");
        return -1;
    }
    if (tlskit_conn_wrap_client(s->tc, s->fd, w->p->servername) != 0) {
        slot_fail(s, NULL);
        return -1;
    }
    if (w->p->resume && w->session && tlskit_conn_set_session(s->tc, w->session) != 0) {
        slot_fail(s, NULL);
        return -1;
    }
    s->st = ST_HANDSHAKE;
    return 0;
}

static void slot_start(struct slot *s)
{
    struct worker *w = s->w;
    const struct bench_params *p = w->p;
    s->retry_at = 0;
    s->t0_ns = cli_now_ns();
    s->deadline = w->now_ms + p->op_timeout_ms;
    s->sent = s->got = 0; /* body_got counts over reconnects (bulk from a closing server) */
    s->wpend = 0;
    s->tc = NULL;
    if (p->mode == MODE_IDLE)
        w->setting_up++;
    s->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "socket: %s", strerror(errno));
        s->st = ST_CONNECTING;
        slot_fail(s, msg);
        return;
    }
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s->gen++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = (uint64_t)s->gen << 32 | s->index};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, s->fd, &ev) != 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "epoll_ctl: %s", strerror(errno));
        s->st = ST_CONNECTING;
        slot_fail(s, msg);
        return;
    }
    s->st = ST_CONNECTING;
    if (connect(s->fd, (const struct sockaddr *)&p->addr, p->addrlen) != 0) {
        if (errno != EINPROGRESS) {
            char msg[128];
            snprintf(msg, sizeof(msg), "connect: %s", strerror(errno));
            slot_fail(s, msg);
        }
        return; /* epoll reports the end of the connect */
    }
    if (begin_tls(s) == 0)
        slot_step(s, 0);
}

/* ---- requests and responses ---- */

static void begin_request(struct slot *s)
{
    struct worker *w = s->w;
    const struct bench_params *p = w->p;
    s->st = ST_SEND;
    s->woff = 0;
    s->treq_ns = cli_now_ns();
    s->deadline = w->now_ms + p->op_timeout_ms;
    s->need = p->http_req ? 0 : (p->request ? p->request : 1);
    http_response_reset(&s->resp);
}

static int has_request(const struct bench_params *p)
{
    return p->http_req || p->request > 0;
}

/* ---- handshake mode: connect, handshake, [request, response], close; again ---- */

static void handshake_after_handshake(struct slot *s)
{
    if (has_request(s->w->p))
        begin_request(s);
    else
        s->st = ST_SHUTDOWN;
}

static void handshake_after_response(struct slot *s)
{
    s->st = ST_SHUTDOWN;
}

/* ---- rr: request/response on kept connections ---- */

static void rr_after_handshake(struct slot *s)
{
    if (!s->was_ready) {
        s->was_ready = 1;
        add(&s->w->ctr.ready, 1);
    }
    begin_request(s);
}

static void rr_after_response(struct slot *s)
{
    if (s->resp.server_close)
        s->st = ST_SHUTDOWN; /* then a new connection */
    else
        begin_request(s);
}

/* ---- bulk: N bytes each way (echo), or GETs until N body bytes came (HTTP) ---- */

static void bulk_after_handshake(struct slot *s)
{
    const struct bench_params *p = s->w->p;
    s->deadline = s->w->now_ms + p->op_timeout_ms;
    if (p->http_req)
        begin_request(s);
    else
        s->st = ST_BULK;
}

static void bulk_after_response(struct slot *s)
{
    if (s->body_got >= s->w->p->bulk_bytes) {
        s->got = s->body_got;
        s->st = ST_SHUTDOWN;
    } else if (s->resp.server_close) {
        s->st = ST_SHUTDOWN;
    } else {
        begin_request(s);
    }
}

static int bulk_over(struct slot *s)
{
    const struct bench_params *p = s->w->p;
    if (s->got < p->bulk_bytes || s->body_got < p->bulk_bytes)
        return 0;
    add(&s->w->ctr.done, 1);
    return 1;
}

/* ---- idle: connect, handshake, [one request], hold; on verify, one more request ---- */

static void idle_hold(struct slot *s)
{
    s->initial_done = 1;
    s->w->setting_up--;
    add(&s->w->ctr.ready, 1);
    s->st = ST_IDLE;
    s->deadline = 0;
}

static void idle_after_handshake(struct slot *s)
{
    if (has_request(s->w->p))
        begin_request(s);
    else
        idle_hold(s);
}

static void idle_after_response(struct slot *s)
{
    if (s->resp.server_close) {
        slot_fail(s, "idle: the server closed the connection after a response");
        return;
    }
    if (!s->verifying) {
        idle_hold(s);
        return;
    }
    s->verifying = 0;
    add(&s->w->ctr.verified, 1);
    s->st = ST_IDLE;
    s->deadline = 0;
}

static int idle_over(struct slot *s)
{
    s->st = ST_DEAD;
    return 1;
}

/* Count what was lost; a connection not yet held gets IDLE_TRIES tries. */
static int idle_failed(struct slot *s)
{
    struct worker *w = s->w;
    if (s->verifying) {
        add(&w->ctr.verify_failed, 1);
        return 0;
    }
    if (s->initial_done) {
        add(&w->ctr.dropped, 1);
        return 0;
    }
    w->setting_up--;
    if (++s->tries >= IDLE_TRIES) {
        add(&w->ctr.gave_up, 1);
        return 0;
    }
    release(s);
    s->st = ST_FREE;
    s->retry_at = w->now_ms + RETRY_MS;
    return 1;
}

static const struct mode_ops mode_ops[] = {
    [MODE_HANDSHAKE] = {1, 0, handshake_after_handshake, handshake_after_response, NULL, NULL},
    [MODE_RR] = {0, 1, rr_after_handshake, rr_after_response, NULL, NULL},
    [MODE_BULK] = {0, 0, bulk_after_handshake, bulk_after_response, bulk_over, NULL},
    [MODE_IDLE] = {0, 0, idle_after_handshake, idle_after_response, idle_over, idle_failed},
};

static const struct mode_ops *mode_of(const struct worker *w)
{
    return &mode_ops[w->p->mode];
}

/* ---- what every mode does at a handshake's and a response's end ---- */

static void handshake_done(struct slot *s)
{
    struct worker *w = s->w;
    int64_t t = cli_now_ns();
    add(&w->ctr.handshakes, 1);
    if (tlskit_conn_session_reused(s->tc))
        add(&w->ctr.resumed, 1);
    if (mode_of(w)->latency_of_handshake && measuring(w))
        hist_add(&w->lat, (uint64_t)(t - s->t0_ns));
    if (!w->proto[0]) {
        pthread_mutex_lock(&w->info_mu);
        snprintf(w->proto, sizeof(w->proto), "%s", tlskit_conn_protocol(s->tc));
        snprintf(w->cipher, sizeof(w->cipher), "%s", tlskit_conn_cipher(s->tc));
        const char *g = tlskit_conn_group(s->tc);
        snprintf(w->group, sizeof(w->group), "%s", g ? g : "-");
        pthread_mutex_unlock(&w->info_mu);
    }
    mode_of(w)->after_handshake(s);
}

static void response_done(struct slot *s)
{
    struct worker *w = s->w;
    add(&w->ctr.requests, 1);
    if (mode_of(w)->latency_of_request && measuring(w))
        hist_add(&w->lat, (uint64_t)(cli_now_ns() - s->treq_ns));
    mode_of(w)->after_response(s);
}

/* Feed response bytes. 1 when the response is complete, 0 for more, -1 on error (the
 * reason in scratch). */
static int consume(struct slot *s, const unsigned char *d, size_t n)
{
    const struct bench_params *p = s->w->p;
    if (!p->http_req) {
        if (n > s->need) {
            snprintf(s->w->scratch, sizeof(s->w->scratch), "echo: %zu bytes more than sent",
                     (size_t)(n - s->need));
            return -1;
        }
        s->need -= n;
        return s->need == 0;
    }
    uint64_t body;
    int r = http_response_feed(&s->resp, d, n, &body, s->w->scratch, sizeof(s->w->scratch));
    s->body_got += body; /* counts over responses and reconnects (bulk over HTTP) */
    return r;
}

/* ---- the state machine ---- */

static int step_connecting(struct slot *s, uint32_t ev)
{
    if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        return 0;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err) {
        char msg[128];
        snprintf(msg, sizeof(msg), "connect: %s", strerror(err));
        slot_fail(s, msg);
        return 0;
    }
    return begin_tls(s) == 0;
}

static int step_send(struct slot *s)
{
    struct worker *w = s->w;
    const struct bench_params *p = w->p;
    const unsigned char *buf;
    size_t len;
    if (p->http_req) {
        buf = (const unsigned char *)p->http_req;
        len = p->http_req_len;
    } else {
        buf = p->reqbuf;
        len = p->request ? p->request : 1;
    }
    while (s->woff < len) {
        ssize_t n = tlskit_conn_write(s->tc, buf + s->woff, len - s->woff);
        if (n > 0) {
            s->woff += (size_t)n;
            add(&w->ctr.bytes_out, (uint64_t)n);
            continue;
        }
        if (!is_want(n))
            slot_fail(s, NULL);
        return 0;
    }
    s->st = ST_RECV;
    return 1;
}

static int step_recv(struct slot *s)
{
    struct worker *w = s->w;
    for (;;) {
        ssize_t n = tlskit_conn_read(s->tc, w->rbuf, sizeof(w->rbuf));
        if (n > 0) {
            add(&w->ctr.bytes_in, (uint64_t)n);
            if (w->p->mode == MODE_BULK)
                s->deadline = w->now_ms + w->p->op_timeout_ms;
            int r = consume(s, w->rbuf, (size_t)n);
            if (r < 0) {
                slot_fail(s, w->scratch);
                return 0;
            }
            if (r == 1) {
                response_done(s);
                return 1;
            }
            continue;
        }
        if (is_want(n))
            return 0;
        /* HTTP/1.0 style: the body ends with the connection */
        if (s->resp.in_body && s->resp.until_close) {
            s->resp.server_close = 1;
            response_done(s);
            if (s->st == ST_SHUTDOWN) /* the server already closed: nothing to say */
                slot_end(s, 1);
            return 0;
        }
        slot_fail(s, n == 0 ? "response: the server closed the connection" : NULL);
        return 0;
    }
}

static int step_bulk(struct slot *s)
{
    struct worker *w = s->w;
    const struct bench_params *p = w->p;
    for (;;) {
        int progress = 0;
        if (s->sent < p->bulk_bytes) {
            size_t len = s->wpend;
            if (!len) {
                uint64_t left = p->bulk_bytes - s->sent;
                len = left < BULK_CHUNK ? (size_t)left : BULK_CHUNK;
            }
            ssize_t n = tlskit_conn_write(s->tc, p->reqbuf, len);
            if (n > 0) {
                s->sent += (uint64_t)n;
                add(&w->ctr.bytes_out, (uint64_t)n);
                s->wpend = 0;
                progress = 1;
            } else if (is_want(n)) {
                s->wpend = len;
            } else {
                slot_fail(s, NULL);
                return 0;
            }
        }
        ssize_t n = tlskit_conn_read(s->tc, w->rbuf, sizeof(w->rbuf));
        if (n > 0) {
            s->got += (uint64_t)n;
            add(&w->ctr.bytes_in, (uint64_t)n);
            progress = 1;
        } else if (!is_want(n)) {
            slot_fail(s, n == 0 ? "bulk: the server closed the connection early" : NULL);
            return 0;
        }
        if (s->got >= p->bulk_bytes) {
            s->body_got = s->got;
            s->st = ST_SHUTDOWN;
            return 1;
        }
        if (!progress)
            return 0;
        s->deadline = w->now_ms + p->op_timeout_ms;
    }
}

static void slot_step(struct slot *s, uint32_t ev)
{
    struct worker *w = s->w;
    for (;;) {
        switch (s->st) {
        case ST_FREE:
        case ST_DEAD:
            return;
        case ST_CONNECTING:
            if (!step_connecting(s, ev))
                return;
            break;
        case ST_HANDSHAKE: {
            int r = tlskit_conn_handshake(s->tc);
            if (is_want(r))
                return;
            if (r != 0) {
                slot_fail(s, NULL);
                return;
            }
            handshake_done(s);
            break;
        }
        case ST_SEND:
            if (!step_send(s))
                return;
            break;
        case ST_RECV:
            if (!step_recv(s))
                return;
            break;
        case ST_BULK:
            if (!step_bulk(s))
                return;
            break;
        case ST_SHUTDOWN: {
            int r = tlskit_conn_shutdown(s->tc);
            if (is_want(r))
                return;
            if (r != 0) { /* e.g. reset: the exchange itself went fine */
                slot_end(s, 1);
                return;
            }
            s->st = ST_DRAIN;
            s->deadline = w->now_ms + DRAIN_MS;
            break;
        }
        case ST_DRAIN: {
            ssize_t n = tlskit_conn_read(s->tc, w->rbuf, sizeof(w->rbuf));
            if (n > 0)
                break;
            if (is_want(n))
                return;
            slot_end(s, 1); /* close_notify, or the server just closed */
            return;
        }
        case ST_IDLE: {
            ssize_t n = tlskit_conn_read(s->tc, w->rbuf, sizeof(w->rbuf));
            if (n > 0)
                break; /* unexpected, but harmless */
            if (is_want(n))
                return;
            slot_fail(s, n == 0 ? "idle: the server closed the connection" : NULL);
            return;
        }
        }
    }
}

/* ---- the loop ---- */

static void tick(struct worker *w)
{
    const struct bench_params *p = w->p;
    int64_t now = w->now_ms;
    if (p->mode == MODE_IDLE && atomic_load(&w->ctl->verify) && !w->verify_started) {
        w->verify_started = 1;
        for (int i = 0; i < w->nslots; i++) {
            struct slot *s = &w->slots[i];
            if (s->st == ST_IDLE) {
                s->verifying = 1;
                begin_request(s);
                slot_step(s, 0);
            }
        }
    }
    for (int i = 0; i < w->nslots; i++) {
        struct slot *s = &w->slots[i];
        if (s->deadline && now >= s->deadline && s->st != ST_FREE && s->st != ST_DEAD) {
            if (s->st == ST_DRAIN) { /* the exchange went fine; the server is just slow to close */
                slot_end(s, 1);
            } else {
                char msg[96];
                snprintf(msg, sizeof(msg), "%s: timed out after %.1f s", state_name(s->st),
                         (double)p->op_timeout_ms / 1000.0);
                slot_fail(s, msg);
            }
        }
        if (s->st == ST_FREE && s->retry_at && now >= s->retry_at) {
            if (p->mode != MODE_IDLE || w->setting_up < p->inflight)
                slot_start(s);
        }
    }
    if (p->mode == MODE_IDLE) {
        while (w->started < w->nslots && w->setting_up < p->inflight && !stopping(w))
            slot_start(&w->slots[w->started++]);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[EVENTS_MAX];
    w->now_ms = cli_now_ms();
    if (w->p->mode == MODE_IDLE) {
        tick(w);
    } else {
        for (int i = 0; i < w->nslots; i++)
            slot_start(&w->slots[i]);
    }
    int64_t next_tick = w->now_ms + TICK_MS;
    while (!stopping(w)) {
        int n = epoll_wait(w->epfd, evs, EVENTS_MAX, TICK_MS);
        w->now_ms = cli_now_ms();
        for (int i = 0; i < n; i++) {
            struct slot *s = &w->slots[(uint32_t)evs[i].data.u64];
            /* An event for a connection this slot has already closed (the batch was
             * fetched before) must not drive the new one: e.g. pass for a finished
             * connect. */
            if ((uint32_t)(evs[i].data.u64 >> 32) == s->gen)
                slot_step(s, evs[i].events);
        }
        if (w->now_ms >= next_tick) {
            tick(w);
            next_tick = w->now_ms + TICK_MS;
        }
    }
    /* Leave politely but without waiting: close_notify if the socket takes it. */
    for (int i = 0; i < w->nslots; i++) {
        struct slot *s = &w->slots[i];
        if (s->tc && tlskit_conn_handshake_done(s->tc))
            (void)tlskit_conn_shutdown(s->tc);
        release(s);
    }
    return NULL;
}

int worker_init(struct worker *w, const struct bench_params *p, struct bench_ctl *ctl, int id,
                int nslots)
{
    w->p = p;
    w->ctl = ctl;
    w->id = id;
    w->nslots = nslots;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) {
        cli_msg("epoll_create1: %s", strerror(errno));
        return -1;
    }
    w->slots = calloc((size_t)nslots, sizeof(*w->slots));
    if (!w->slots) {
        cli_msg("out of memory");
        return -1;
    }
    for (int i = 0; i < nslots; i++) {
        w->slots[i].w = w;
        w->slots[i].index = (uint32_t)i;
        w->slots[i].fd = -1;
    }
    pthread_mutex_init(&w->info_mu, NULL);
    return 0;
}

int worker_start(struct worker *w)
{
    int err = pthread_create(&w->thread, NULL, worker_main, w);
    if (err) {
        cli_msg("starting a thread: %s", strerror(err));
        return -1;
    }
    return 0;
}

void worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
}

void worker_destroy(struct worker *w)
{
    if (w->slots)
        for (int i = 0; i < w->nslots; i++)
            release(&w->slots[i]);
    free(w->slots);
    tlskit_session_free(w->session);
    if (w->epfd >= 0)
        close(w->epfd);
    pthread_mutex_destroy(&w->info_mu);
}
