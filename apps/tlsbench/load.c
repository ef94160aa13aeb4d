/* SPDX-License-Identifier: MIT */
/* The load generator's workers, over a client-side tlskit engine. The engine's worker
 * threads do the non-blocking connect, the handshake, the reading and the buffering;
 * each of them runs one struct worker here: its slots (one connection at a time each),
 * opened from the engine's worker hook at start (TLSKIT_WORKER_START) and again from the
 * callbacks as connections end. A slot is only ever touched by its worker's thread (the
 * engine calls a connection's callbacks on the thread that owns it), so nothing here
 * takes a lock on the hot path. Counters are relaxed atomics the main thread samples.
 *
 * One slot's life, by mode:
 *   handshake  connect, handshake, [request, response], close_notify, read to the end,
 *              and again (each lap is one measured handshake)
 *   rr         connect, handshake, then request/response for ever (latency per exchange)
 *   bulk       connect, handshake, then N bytes each way at once (echo) or GETs until N
 *              body bytes came (HTTP)
 *   idle       connect, handshake, [one request], then hold; on verify, one more request
 * What every mode does is in the callbacks; what differs is in one table, mode_ops, and
 * its functions, grouped by mode. The engine's tick (TLSKIT_WORKER_TICK, every 50 ms)
 * carries this file's timers: each step's deadline, the retry after a failure, idle's
 * verify round, and the stop. Idle's paced set-up (--inflight) starts the next slot as
 * one is held or lost.
 *
 * The client reads to the server's close (after sending its own close_notify) rather
 * than dropping the socket: that consumes the TLS 1.3 tickets (needed for --resume) and
 * gives the server the ordinary clean close it would get from a browser. */
#include "load.h"

#include "cli.h"
#include "http_response.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MS 20         /* after a failed connection, before the next try (at the
                             * engine's next tick: TLSKIT_ENGINE_TICK_MS) */
#define DRAIN_MS 2000       /* waiting for the server's close after our close_notify */
#define BULK_CHUNK 65536
#define IDLE_TRIES 3        /* idle: attempts per slot before giving up on it */

enum st {
    ST_FREE = 0,   /* no connection (maybe waiting for retry_at) */
    ST_CONNECTING, /* TCP connect and TLS handshake, in the engine */
    ST_RECV,       /* request written (queued), reading its response */
    ST_BULK,       /* echo bulk: writing and reading at once */
    ST_DRAIN,      /* close_notify queued, reading until the server closes */
    ST_IDLE,       /* idle: held */
    ST_DEAD,       /* idle: gone for good (counted) */
};

struct slot {
    struct worker *w;
    tlskit_conn *tc;     /* NULL between connections; set until its on_close */
    enum st st;
    int failed;          /* this connection failed (counted); it is closing */
    int closing_ok;      /* we closed it after it did its work */
    int64_t t0_ns;       /* connect started (handshake latency) */
    int64_t treq_ns;     /* request started (request latency) */
    int64_t deadline;    /* ms, 0 none */
    int64_t retry_at;    /* ms, 0 none */
    int tries;           /* idle: set-up attempts */
    int was_ready;       /* rr: counted in ctr.ready once */
    int verifying;       /* idle: this exchange is the verify round */
    int initial_done;    /* idle: the first exchange is over */
    /* the current response */
    uint64_t need;       /* echo: bytes still expected */
    struct http_response resp;
    /* bulk */
    uint64_t sent, got, body_got;
};

static void add(atomic_uint_fast64_t *a, uint64_t n)
{
    atomic_fetch_add_explicit(a, n, memory_order_relaxed);
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
    static const char *const names[] = {"free", "handshake", "response", "bulk transfer",
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
static void idle_fill(struct worker *w);

/* The connection is over (cleanly or not; from its on_close, or when none could be
 * made); what next depends on the mode. */
static void slot_over(struct slot *s, int ok)
{
    struct worker *w = s->w;
    const struct bench_params *p = w->p;
    if (ok && p->resume && s->tc)
        keep_session(s);
    s->tc = NULL;
    s->deadline = 0;
    s->st = ST_FREE;
    if (stopping(w))
        return;
    const struct mode_ops *m = mode_of(w);
    if (!ok && m->failed && m->failed(s))
        return;
    if (m->over && m->over(s))
        return;
    if (ok)
        slot_start(s);
    else
        s->retry_at = cli_now_ms() + RETRY_MS;
}

/* This connection failed: count it (with what, or the state and the connection's error)
 * and end it: abort (a reset, nothing more sent) or close (after what is queued). Its
 * on_close then starts what comes next. */
static void slot_fail(struct slot *s, const char *what, int abort)
{
    struct worker *w = s->w;
    if (s->failed || !s->tc)
        return;
    s->failed = 1;
    if (!stopping(w)) /* the server may be going away under us: not an error */
        note_error(w, "%s", what);
    if (abort)
        tlskit_conn_abort(s->tc, what);
    else
        tlskit_conn_close(s->tc);
}

static void slot_start(struct slot *s)
{
    struct worker *w = s->w;
    const struct bench_params *p = w->p;
    s->retry_at = 0;
    s->t0_ns = cli_now_ns();
    s->deadline = s->t0_ns / 1000000 + p->op_timeout_ms;
    s->sent = s->got = 0; /* body_got counts over reconnects (bulk from a closing server) */
    s->failed = s->closing_ok = 0;
    s->st = ST_CONNECTING;
    if (p->mode == MODE_IDLE)
        w->setting_up++;
    tlskit_conn *c = tlskit_engine_connect(w->e, NULL, p->cfg, p->host, p->port, 0);
    if (!c) {
        if (errno != ECANCELED) /* ECANCELED: the engine stops */
            note_error(w, "connect: %s", strerror(errno));
        slot_over(s, 0);
        return;
    }
    s->tc = c;
    tlskit_conn_set_userdata(c, s);
    if (tlskit_conn_fd(c) < 0)
        return; /* it failed at once: its on_close says why */
    if ((p->set_servername && tlskit_conn_set_servername(c, p->servername) != 0) ||
        (p->resume && w->session && tlskit_conn_set_session(c, w->session) != 0)) {
        char msg[BENCH_ERRLEN];
        snprintf(msg, sizeof(msg), "handshake: %s", tlskit_conn_error(c));
        slot_fail(s, msg, 1);
    }
}

/* ---- requests and responses ---- */

/* Our close_notify after the queued output, then read until the server's close. */
static void slot_shutdown(struct slot *s)
{
    s->st = ST_DRAIN;
    s->deadline = cli_now_ms() + DRAIN_MS;
    tlskit_conn_shutdown(s->tc);
}

static void begin_request(struct slot *s)
{
    struct worker *w = s->w;
    const struct bench_params *p = w->p;
    s->st = ST_RECV;
    s->treq_ns = cli_now_ns();
    s->deadline = s->treq_ns / 1000000 + p->op_timeout_ms;
    s->need = p->http_req ? 0 : (p->request ? p->request : 1);
    http_response_reset(&s->resp);
    const void *buf = p->http_req ? (const void *)p->http_req : p->reqbuf;
    size_t len = p->http_req ? p->http_req_len : (p->request ? p->request : 1);
    /* Queued by the engine and sent as the socket takes it; -1: the connection is
     * ending, and its on_close says why. */
    if (tlskit_conn_write(s->tc, buf, len) == (ssize_t)len)
        add(&w->ctr.bytes_out, len);
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
        slot_shutdown(s);
}

static void handshake_after_response(struct slot *s)
{
    slot_shutdown(s);
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
        slot_shutdown(s); /* then a new connection */
    else
        begin_request(s);
}

/* ---- bulk: N bytes each way (echo), or GETs until N body bytes came (HTTP) ---- */

/* Echo: write while the socket takes it all; on_drain brings the next round. */
static void bulk_write(struct slot *s)
{
    struct worker *w = s->w;
    const struct bench_params *p = w->p;
    while (s->st == ST_BULK && s->sent < p->bulk_bytes) {
        uint64_t left = p->bulk_bytes - s->sent;
        size_t len = left < BULK_CHUNK ? (size_t)left : BULK_CHUNK;
        if (tlskit_conn_write(s->tc, p->reqbuf, len) != (ssize_t)len)
            return; /* ending: its on_close says why */
        s->sent += len;
        add(&w->ctr.bytes_out, len);
        if (tlskit_conn_pending(s->tc) > 0)
            return;
    }
}

static void bulk_after_handshake(struct slot *s)
{
    const struct bench_params *p = s->w->p;
    s->deadline = cli_now_ms() + p->op_timeout_ms;
    if (p->http_req) {
        begin_request(s);
    } else {
        s->st = ST_BULK;
        bulk_write(s);
    }
}

static void bulk_after_response(struct slot *s)
{
    if (s->body_got >= s->w->p->bulk_bytes) {
        s->got = s->body_got;
        slot_shutdown(s);
    } else if (s->resp.server_close) {
        slot_shutdown(s);
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
    idle_fill(s->w); /* one more may start now, not at the next tick */
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
        slot_fail(s, "idle: the server closed the connection after a response", 0);
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
    s->retry_at = cli_now_ms() + RETRY_MS;
    return 1;
}

/* Start slots while fewer than --inflight are being set up. */
static void idle_fill(struct worker *w)
{
    const struct bench_params *p = w->p;
    while (w->started < w->nslots && w->setting_up < p->inflight && !stopping(w))
        slot_start(&w->slots[w->started++]);
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

/* HTTP/1.0 style: the body ends with the connection. */
static int body_until_close(const struct slot *s)
{
    return s->st == ST_RECV && s->resp.in_body && s->resp.until_close;
}

/* ---- the engine's callbacks (on the connection's worker thread) ---- */

static void on_open(tlskit_conn *c, void *arg)
{
    (void)arg;
    struct slot *s = tlskit_conn_userdata(c);
    if (s && !s->failed)
        handshake_done(s);
}

static void on_data(tlskit_conn *c, const void *data, size_t n, void *arg)
{
    (void)arg;
    struct slot *s = tlskit_conn_userdata(c);
    if (!s || s->failed)
        return;
    struct worker *w = s->w;
    const struct bench_params *p = w->p;
    if (s->st == ST_RECV) {
        add(&w->ctr.bytes_in, n);
        if (p->mode == MODE_BULK)
            s->deadline = cli_now_ms() + p->op_timeout_ms;
        int r = consume(s, data, n);
        if (r < 0)
            slot_fail(s, w->scratch, 1);
        else if (r == 1)
            response_done(s);
    } else if (s->st == ST_BULK) {
        s->got += n;
        add(&w->ctr.bytes_in, n);
        s->deadline = cli_now_ms() + p->op_timeout_ms;
        if (s->got >= p->bulk_bytes) {
            s->body_got = s->got;
            slot_shutdown(s);
        }
    } /* else (draining, held): unexpected, but harmless */
}

static void on_drain(tlskit_conn *c, void *arg)
{
    (void)arg;
    struct slot *s = tlskit_conn_userdata(c);
    if (s && !s->failed && s->st == ST_BULK) {
        s->deadline = cli_now_ms() + s->w->p->op_timeout_ms;
        bulk_write(s);
    }
}

/* The server sent close_notify (or its FIN): the end we wait for when draining, and
 * the end of an HTTP/1.0-style body; anywhere else, a failure. */
static void on_eof(tlskit_conn *c, void *arg)
{
    (void)arg;
    struct slot *s = tlskit_conn_userdata(c);
    if (!s || s->failed) {
        tlskit_conn_close(c);
        return;
    }
    if (body_until_close(s)) {
        s->resp.server_close = 1;
        response_done(s); /* our close_notify goes out, then the connection ends */
        if (s->st != ST_DRAIN && !s->failed)
            slot_fail(s, "response: the server closed the connection", 0);
        return;
    }
    switch (s->st) {
    case ST_DRAIN:
        tlskit_conn_close(c);
        break;
    case ST_BULK:
        slot_fail(s, "bulk: the server closed the connection early", 0);
        break;
    case ST_IDLE:
        slot_fail(s, "idle: the server closed the connection", 0);
        break;
    default:
        slot_fail(s, "response: the server closed the connection", 0);
        break;
    }
}

static void on_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    (void)arg;
    struct slot *s = tlskit_conn_userdata(c);
    if (!s)
        return;
    struct worker *w = s->w;
    const int idle = w->p->mode == MODE_IDLE;
    int ok;
    if (s->failed) {
        ok = 0;
    } else if (s->st == ST_DRAIN || s->closing_ok) {
        ok = 1; /* after our close_notify, even a reset: the exchange itself went fine */
    } else if (body_until_close(s) && !stopping(w)) {
        s->resp.server_close = 1; /* closed without close_notify: still the body's end */
        response_done(s);
        ok = !s->failed;
    } else {
        if (!stopping(w)) {
            if (code == TLSKIT_E_CONNECT || code == TLSKIT_E_RESOLVE)
                note_error(w, "%s", reason); /* "connect to 127.0.0.1:9: Connection refused" */
            else
                note_error(w, "%s: %s", state_name(s->st), reason);
        }
        ok = 0;
    }
    slot_over(s, ok);
    if (idle)
        idle_fill(w);
}

/* ---- the engine's worker hook: start, timers, stop ---- */

static void tick(struct worker *w)
{
    const struct bench_params *p = w->p;
    int64_t now = cli_now_ms();
    if (stopping(w)) { /* leave politely but without waiting: close_notify if it fits */
        for (int i = 0; i < w->nslots; i++) {
            struct slot *s = &w->slots[i];
            if (s->tc && !s->failed) {
                s->closing_ok = 1;
                tlskit_conn_close(s->tc);
            }
        }
        return;
    }
    if (p->mode == MODE_IDLE && atomic_load(&w->ctl->verify) && !w->verify_started) {
        w->verify_started = 1;
        for (int i = 0; i < w->nslots; i++) {
            struct slot *s = &w->slots[i];
            if (s->st == ST_IDLE && s->tc) {
                s->verifying = 1;
                begin_request(s);
            }
        }
    }
    for (int i = 0; i < w->nslots; i++) {
        struct slot *s = &w->slots[i];
        if (s->tc && !s->failed && s->deadline && now >= s->deadline) {
            s->deadline = 0;
            if (s->st == ST_DRAIN) { /* the exchange went fine; the server is slow to close */
                s->closing_ok = 1;
                tlskit_conn_close(s->tc);
            } else {
                char msg[96];
                snprintf(msg, sizeof(msg), "%s: timed out after %.1f s", state_name(s->st),
                         (double)p->op_timeout_ms / 1000.0);
                slot_fail(s, msg, 1);
            }
        }
        if (s->st == ST_FREE && s->retry_at && now >= s->retry_at) {
            if (p->mode != MODE_IDLE || w->setting_up < p->inflight)
                slot_start(s);
        }
    }
    if (p->mode == MODE_IDLE)
        idle_fill(w);
}

static void on_worker(int id, int event, void *arg)
{
    struct worker *w = &((struct worker *)arg)[id];
    if (event == TLSKIT_WORKER_TICK) {
        tick(w);
    } else if (event == TLSKIT_WORKER_START) {
        if (w->p->mode == MODE_IDLE)
            idle_fill(w);
        else
            for (int i = 0; i < w->nslots && !stopping(w); i++)
                slot_start(&w->slots[i]);
    }
}

tlskit_engine *load_engine(struct worker *w, int nw, tlskit_config *cfg)
{
    struct tlskit_engine_handlers h = {.on_open = on_open, .on_data = on_data,
                                       .on_drain = on_drain, .on_close = on_close,
                                       .on_eof = on_eof};
    tlskit_engine *e = tlskit_engine_new(cfg, &h);
    if (!e) {
        cli_msg("out of memory");
        return NULL;
    }
    /* No drain on stop: the run is over, its connections only need closing. */
    if (tlskit_engine_set_workers(e, nw) != 0 || tlskit_engine_set_drain_timeout(e, 0) != 0 ||
        tlskit_engine_set_on_worker(e, on_worker, w) != 0) {
        cli_msg("%s", tlskit_engine_error(e));
        tlskit_engine_free(e);
        return NULL;
    }
    for (int i = 0; i < nw; i++)
        w[i].e = e;
    return e;
}

int load_start(tlskit_engine *e)
{
    if (tlskit_engine_start(e) != 0) {
        cli_msg("%s", tlskit_engine_error(e));
        return -1;
    }
    return 0;
}

void load_stop(tlskit_engine *e)
{
    tlskit_engine_stop(e);
}

int worker_init(struct worker *w, const struct bench_params *p, struct bench_ctl *ctl, int id,
                int nslots)
{
    w->p = p;
    w->ctl = ctl;
    w->id = id;
    w->nslots = nslots;
    w->slots = calloc((size_t)nslots, sizeof(*w->slots));
    if (!w->slots) {
        cli_msg("out of memory");
        return -1;
    }
    for (int i = 0; i < nslots; i++)
        w->slots[i].w = w;
    pthread_mutex_init(&w->info_mu, NULL);
    return 0;
}

void worker_destroy(struct worker *w)
{
    free(w->slots);
    tlskit_session_free(w->session);
    pthread_mutex_destroy(&w->info_mu);
}
