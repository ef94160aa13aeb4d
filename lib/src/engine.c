/* SPDX-License-Identifier: MIT */
/* The server engine: N worker threads, each with its own SO_REUSEPORT listeners and an
 * edge-triggered epoll loop. A connection lives on one worker for its whole life, so no
 * connection state is shared between threads; only the counters (atomics), the current
 * config (under a mutex, for reload) and the stop flag are.
 *
 * Deadlines are enforced by a sweep over the worker's connections every TK_SWEEP_MS;
 * at 10,000 connections that is a few hundred thousand cheap checks a second. */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define TK_SWEEP_MS 50
#define TK_READ_CHUNK 16384
#define TK_ACCEPT_BATCH 64
#define TK_ACCEPT_PAUSE_MS 100
#define TK_FINAL_FLUSH_MS 1000

enum tlskit__kind { KIND_CONN = 1, KIND_LISTEN, KIND_WAKE };

struct tlskit__evsrc {
    enum tlskit__kind kind;
    int fd;
};

struct tlskit__counters {
    atomic_uint_fast64_t accepted, hs_ok, hs_err[16], bytes_in, bytes_out, hs_timeouts,
        idle_timeouts, write_stalls, buffer_closes, limit_rejections, accept_errors;
};

struct tlskit__worker {
    tlskit_engine *e;
    pthread_t thread;
    int started;
    int epfd;
    struct tlskit__evsrc wake;
    tlskit_listener *l;
    struct tlskit__evsrc lsrc[TK_MAX_LISTEN];
    int listening;             /* listen fds are in epoll */
    int64_t listen_resume_at;  /* after EMFILE: when to accept again (0: not paused) */
    tlskit_conn *conns;        /* doubly linked list of this worker's connections */
    size_t nconns;
    int final_pass_done;
    tlskit_config *cfg;        /* this worker's reference to the engine's config ... */
    uint64_t cfg_gen;          /* ... as of this reload generation */
    unsigned char rbuf[TK_READ_CHUNK];
    struct tlskit__counters ctr;
};

struct tlskit__econn {
    struct tlskit__evsrc src;       /* first: epoll data points here */
    struct tlskit__worker *w;
    tlskit_conn *conn;         /* back pointer */
    tlskit_conn *prev, *next;
    unsigned char *out;
    size_t out_off, out_len, out_cap;
    int64_t stall_since;       /* output pending and no progress since */
    int opened;
    int closing;               /* close once the output is flushed */
    int paused;                /* backpressure: not reading */
    int in_callback;
    int hs_waits;              /* handshake steps that waited for the peer */
    int ended;
    const char *close_reason;  /* for a clean close once the output is flushed */
    int end_code;
    char *end_reason;          /* allocated when the connection ends */
};

struct tlskit_engine {
    pthread_mutex_t mu;        /* guards cfg */
    tlskit_config *cfg;
    atomic_uint_fast64_t cfg_gen; /* bumped (under mu) by each reload */
    struct tlskit_engine_handlers h;
    int nworkers;
    int max_conns;
    size_t write_limit;
    int64_t drain_ms;
    struct tlskit__worker *workers;
    atomic_int open;
    atomic_int accept_failing;     /* an accept error streak was reported */
    atomic_llong accept_reported_ms; /* when (rate limit) */
    atomic_int stopping;
    atomic_llong drain_deadline;
    int running;
    int port;
    char addrs[TK_MAX_LISTEN * (TK_ADDRLEN + 2)];
    struct tlskit__err err;
};

static void end_conn(tlskit_conn *c, int code, const char *fmt, ...) TK_PRINTF(3, 4);

tlskit_engine *tlskit_engine_new(tlskit_config *cfg, const struct tlskit_engine_handlers *h)
{
    if (!cfg || !h)
        return NULL;
    tlskit_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    if (pthread_mutex_init(&e->mu, NULL) != 0) {
        free(e);
        return NULL;
    }
    e->cfg = tlskit__config_ref(cfg);
    e->h = *h;
    e->max_conns = 10000;
    e->write_limit = 4u << 20;
    e->drain_ms = 5000;
    e->port = -1;
    atomic_init(&e->open, 0);
    atomic_init(&e->cfg_gen, 0);
    atomic_init(&e->accept_failing, 0);
    atomic_init(&e->accept_reported_ms, 0);
    atomic_init(&e->stopping, 0);
    atomic_init(&e->drain_deadline, 0);
    return e;
}

const char *tlskit_engine_error(const tlskit_engine *e)
{
    return e ? tlskit__err_text(&e->err) : "no engine";
}

int tlskit_engine_error_code(const tlskit_engine *e)
{
    return e ? e->err.code : TLSKIT_E_INVALID;
}

static int settable(tlskit_engine *e)
{
    tlskit__err_clear(&e->err);
    if (e->workers) {
        tlskit__err_set(&e->err, TLSKIT_E_INVALID, "engine settings must be made before listening");
        return 0;
    }
    return 1;
}

int tlskit_engine_set_workers(tlskit_engine *e, int workers)
{
    if (!settable(e))
        return -1;
    if (workers > 1024) {
        tlskit__err_set(&e->err, TLSKIT_E_INVALID, "too many workers (%d, at most 1024)", workers);
        return -1;
    }
    e->nworkers = workers;
    return 0;
}

int tlskit_engine_set_max_conns(tlskit_engine *e, int max_conns)
{
    if (!settable(e))
        return -1;
    if (max_conns < 0) {
        tlskit__err_set(&e->err, TLSKIT_E_INVALID, "negative connection limit");
        return -1;
    }
    e->max_conns = max_conns;
    return 0;
}

int tlskit_engine_set_write_limit(tlskit_engine *e, size_t bytes)
{
    if (!settable(e))
        return -1;
    if (bytes < 16384) {
        tlskit__err_set(&e->err, TLSKIT_E_INVALID, "write limit below 16384 bytes");
        return -1;
    }
    e->write_limit = bytes;
    return 0;
}

int tlskit_engine_set_drain_timeout(tlskit_engine *e, int64_t ms)
{
    if (!settable(e))
        return -1;
    if (ms < 0) {
        tlskit__err_set(&e->err, TLSKIT_E_INVALID, "negative drain timeout");
        return -1;
    }
    e->drain_ms = ms;
    return 0;
}

int tlskit_engine_port(const tlskit_engine *e)
{
    return e->port;
}

const char *tlskit_engine_addrs(const tlskit_engine *e)
{
    return e->addrs;
}

/* The config for a new connection. Workers keep their own reference and take the
 * engine's mutex only after a reload, not at every accept: with many workers accepting
 * thousands of connections a second, one shared lock would serialise them. A reader that
 * sees generation g then takes the lock gets the config of reload g or a newer one. */
static tlskit_config *worker_config(struct tlskit__worker *w)
{
    tlskit_engine *e = w->e;
    uint64_t gen = atomic_load_explicit(&e->cfg_gen, memory_order_acquire);
    if (!w->cfg || gen != w->cfg_gen) {
        pthread_mutex_lock(&e->mu);
        tlskit_config *cfg = tlskit__config_ref(e->cfg);
        pthread_mutex_unlock(&e->mu);
        tlskit_config_free(w->cfg);
        w->cfg = cfg;
        w->cfg_gen = gen;
    }
    return w->cfg;
}

int tlskit_engine_reload(tlskit_engine *e, tlskit_config *cfg)
{
    tlskit__err_clear(&e->err);
    if (!cfg || !cfg->has_keypair) {
        tlskit__err_set(&e->err, TLSKIT_E_CONFIG,
                   "reload: the new configuration has no certificate and key; keeping the "
                   "old one");
        return -1;
    }
    pthread_mutex_lock(&e->mu);
    tlskit_config *old = e->cfg;
    e->cfg = tlskit__config_ref(cfg);
    atomic_fetch_add(&e->cfg_gen, 1);
    pthread_mutex_unlock(&e->mu);
    tlskit_config_free(old);
    return 0;
}

/* ---- workers: setup ---- */

static void worker_cleanup(struct tlskit__worker *w)
{
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->wake.fd >= 0)
        close(w->wake.fd);
    tlskit_listener_free(w->l);
    w->l = NULL;
    tlskit_config_free(w->cfg);
    w->cfg = NULL;
    w->epfd = w->wake.fd = -1;
}

static int epoll_add(int epfd, int fd, uint32_t events, void *ptr)
{
    struct epoll_event ev = {.events = events, .data.ptr = ptr};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void listen_enable(struct tlskit__worker *w, int on)
{
    size_t n = 0;
    const int *fds = tlskit_listener_fds(w->l, &n);
    for (size_t i = 0; i < n; i++) {
        if (on)
            epoll_add(w->epfd, fds[i], EPOLLIN, &w->lsrc[i]);
        else
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, fds[i], NULL);
    }
    w->listening = on;
}

static int worker_init(tlskit_engine *e, struct tlskit__worker *w, const char *host,
                       const char *port, int backlog, int first)
{
    w->e = e;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wake.kind = KIND_WAKE;
    w->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->epfd < 0 || w->wake.fd < 0) {
        tlskit__err_set_errno(&e->err, TLSKIT_E_IO, errno, "engine: epoll/eventfd");
        return -1;
    }
    if (epoll_add(w->epfd, w->wake.fd, EPOLLIN, &w->wake) != 0) {
        tlskit__err_set_errno(&e->err, TLSKIT_E_IO, errno, "engine: epoll_ctl");
        return -1;
    }
    if (!(w->l = tlskit_listener_new(e->cfg))) {
        tlskit__err_set(&e->err, TLSKIT_E_NOMEM, "engine: out of memory");
        return -1;
    }
    if (tlskit__listener_listen(w->l, host, port, backlog,
                                first ? TLSKIT__REUSEPORT_FIRST : TLSKIT__REUSEPORT_JOIN) != 0) {
        tlskit__err_set(&e->err, tlskit_listener_error_code(w->l), "%s", tlskit_listener_error(w->l));
        return -1;
    }
    size_t n = 0;
    const int *fds = tlskit_listener_fds(w->l, &n);
    for (size_t i = 0; i < n; i++)
        w->lsrc[i] = (struct tlskit__evsrc){.kind = KIND_LISTEN, .fd = fds[i]};
    return 0;
}

int tlskit_engine_listen(tlskit_engine *e, const char *host, const char *port, int backlog)
{
    tlskit__err_clear(&e->err);
    if (e->workers) {
        tlskit__err_set(&e->err, TLSKIT_E_INVALID, "engine is already listening");
        return -1;
    }
    int n = e->nworkers;
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)(cores > 64 ? 64 : cores) : 1;
    }
    e->workers = calloc((size_t)n, sizeof(*e->workers));
    if (!e->workers) {
        e->nworkers = 0;
        tlskit__err_set(&e->err, TLSKIT_E_NOMEM, "engine: out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++)
        e->workers[i].epfd = e->workers[i].wake.fd = -1;
    e->nworkers = n;
    /* Worker 0 picks the port (maybe "0"); the others join it with SO_REUSEPORT. */
    char portbuf[16];
    for (int i = 0; i < n; i++) {
        if (worker_init(e, &e->workers[i], host, i == 0 ? port : portbuf, backlog, i == 0) != 0) {
            for (int j = 0; j <= i; j++)
                worker_cleanup(&e->workers[j]);
            free(e->workers);
            e->workers = NULL;
            e->nworkers = 0;
            return -1;
        }
        if (i == 0) {
            e->port = tlskit_listener_port(e->workers[0].l);
            snprintf(portbuf, sizeof(portbuf), "%d", e->port);
            snprintf(e->addrs, sizeof(e->addrs), "%s", tlskit_listener_addrs(e->workers[0].l));
        }
    }
    return 0;
}

/* ---- connections ---- */

static size_t pending(const struct tlskit__econn *ec)
{
    return ec->out_len - ec->out_off;
}

size_t tlskit_engine_pending(const tlskit_conn *c)
{
    return c->eng ? pending(c->eng) : 0;
}

static void count_add(atomic_uint_fast64_t *a, uint64_t n)
{
    atomic_fetch_add_explicit(a, n, memory_order_relaxed);
}

/* Record why the connection ends; the worker frees it at the end of the current event
 * (never inside an application callback). */
static void end_conn(tlskit_conn *c, int code, const char *fmt, ...)
{
    struct tlskit__econn *ec = c->eng;
    if (ec->ended)
        return;
    ec->ended = 1;
    ec->end_code = code;
    va_list ap;
    va_start(ap, fmt);
    if ((ec->end_reason = malloc(TK_ERRLEN)) != NULL)
        vsnprintf(ec->end_reason, TK_ERRLEN, fmt, ap);
    va_end(ap);
}

static void reap(tlskit_conn *c)
{
    struct tlskit__econn *ec = c->eng;
    struct tlskit__worker *w = ec->w;
    tlskit_engine *e = w->e;
    if (ec->end_code == TLSKIT_E_NONE && c->hs_done && !c->dead && !c->sent_shutdown) {
        c->cork = 1;
        tlskit_conn_shutdown(c); /* non-blocking: close_notify if the socket takes it */
        c->cork = 0;
        /* The close_notify was held back (MSG_MORE): the FIN goes out with it, one
         * segment. shutdown(), not close(): close() with unread input would reset the
         * connection and drop what is held. */
        if (c->corked && shutdown(c->fd, SHUT_WR) != 0)
            tlskit__bio_uncork(c);
        c->corked = 0;
    }
    /* close() below removes the fd from epoll: no EPOLL_CTL_DEL (one syscall less). */
    if (ec->prev)
        ec->prev->eng->next = ec->next;
    else
        w->conns = ec->next;
    if (ec->next)
        ec->next->eng->prev = ec->prev;
    w->nconns--;
    if (e->h.on_close)
        e->h.on_close(c, ec->end_code,
                      ec->end_reason ? ec->end_reason : "(out of memory: reason lost)",
                      e->h.arg);
    atomic_fetch_sub(&e->open, 1);
    free(ec->out);
    free(ec->end_reason);
    free(ec);
    c->eng = NULL;
    tlskit_conn_free(c);
}

static void fail_conn(tlskit_conn *c)
{
    struct tlskit__econn *ec = c->eng;
    if (!c->hs_done) {
        int code = c->err.code > 0 && c->err.code < 16 ? c->err.code : 0;
        count_add(&ec->w->ctr.hs_err[code], 1);
        /* The deadline may be seen here (a byte arrived after it) or by the sweep. */
        if (code == TLSKIT_E_TIMEOUT)
            count_add(&ec->w->ctr.hs_timeouts, 1);
    } else if (c->err.code == TLSKIT_E_TIMEOUT) {
        count_add(&ec->w->ctr.idle_timeouts, 1);
    }
    end_conn(c, c->err.code ? c->err.code : TLSKIT_E_IO, "%s",
             c->err.msg && c->err.msg[0] ? c->err.msg : "connection failed");
}

static void read_loop(tlskit_conn *c);

/* Send queued output. Returns 0, or -1 when the connection failed (ended). */
static int flush(tlskit_conn *c)
{
    struct tlskit__econn *ec = c->eng;
    tlskit_engine *e = ec->w->e;
    int progressed = 0;
    while (pending(ec) > 0) {
        ssize_t n = tlskit_conn_write(c, ec->out + ec->out_off, pending(ec));
        if (n > 0) {
            ec->out_off += (size_t)n;
            count_add(&ec->w->ctr.bytes_out, (uint64_t)n);
            progressed = 1;
            continue;
        }
        if (n == TLSKIT_WANT_READ || n == TLSKIT_WANT_WRITE)
            break;
        fail_conn(c);
        return -1;
    }
    if (progressed)
        ec->stall_since = tlskit__now_ms();
    if (pending(ec) == 0 && ec->out_len) {
        ec->out_off = ec->out_len = 0;
        if (ec->out_cap > TK_READ_CHUNK * 4) { /* give memory back after a burst */
            free(ec->out);
            ec->out = NULL;
            ec->out_cap = 0;
        }
        if (e->h.on_drain && !ec->closing) {
            ec->in_callback++;
            e->h.on_drain(c, e->h.arg);
            ec->in_callback--;
        }
    }
    if (ec->paused && pending(ec) <= e->write_limit / 8 && !ec->ended) {
        ec->paused = 0;
        read_loop(c); /* edge-triggered: data already waiting gives no new event */
    }
    return ec->ended ? -1 : 0;
}

static int append_out(tlskit_conn *c, const unsigned char *p, size_t len)
{
    struct tlskit__econn *ec = c->eng;
    tlskit_engine *e = ec->w->e;
    if (pending(ec) + len > e->write_limit) {
        count_add(&ec->w->ctr.buffer_closes, 1);
        end_conn(c, TLSKIT_E_LIMIT,
                 "write buffer limit (%zu bytes) reached: %s is not reading", e->write_limit,
                 c->peer);
        return -1;
    }
    if (ec->out_off && ec->out_len + len > ec->out_cap) { /* compact */
        memmove(ec->out, ec->out + ec->out_off, pending(ec));
        ec->out_len -= ec->out_off;
        ec->out_off = 0;
    }
    if (ec->out_len + len > ec->out_cap) {
        size_t cap = ec->out_cap ? ec->out_cap : 4096;
        while (cap < ec->out_len + len)
            cap *= 2;
        unsigned char *nb = realloc(ec->out, cap);
        if (!nb) {
            end_conn(c, TLSKIT_E_NOMEM, "out of memory buffering output for %s", c->peer);
            return -1;
        }
        ec->out = nb;
        ec->out_cap = cap;
    }
    if (pending(ec) == 0)
        ec->stall_since = tlskit__now_ms();
    memcpy(ec->out + ec->out_len, p, len);
    ec->out_len += len;
    return 0;
}

int tlskit_engine_write(tlskit_conn *c, const void *data, size_t len)
{
    struct tlskit__econn *ec = c ? c->eng : NULL;
    if (!ec || ec->ended || ec->closing)
        return -1;
    const unsigned char *p = data;
    if (pending(ec) == 0 && c->hs_done) {
        /* Fast path: straight to the socket; only what it does not take is copied. */
        while (len > 0) {
            ssize_t n = tlskit_conn_write(c, p, len);
            if (n > 0) {
                p += n;
                len -= (size_t)n;
                count_add(&ec->w->ctr.bytes_out, (uint64_t)n);
                continue;
            }
            if (n == TLSKIT_WANT_READ || n == TLSKIT_WANT_WRITE)
                break;
            fail_conn(c);
            return -1;
        }
        if (len == 0)
            return 0;
    }
    if (append_out(c, p, len) != 0)
        return -1;
    if (pending(ec) > ec->w->e->write_limit / 4)
        ec->paused = 1;
    return 0;
}

void tlskit_engine_close(tlskit_conn *c)
{
    if (c && c->eng && !c->eng->ended) {
        c->eng->closing = 1;
        if (!c->eng->in_callback && pending(c->eng) == 0)
            end_conn(c, TLSKIT_E_NONE, "closed by server");
    }
}

static void read_loop(tlskit_conn *c)
{
    struct tlskit__econn *ec = c->eng;
    struct tlskit__worker *w = ec->w;
    tlskit_engine *e = w->e;
    while (!ec->ended && !ec->paused && !ec->closing) {
        ssize_t n = tlskit_conn_read(c, w->rbuf, sizeof(w->rbuf));
        if (n > 0) {
            count_add(&w->ctr.bytes_in, (uint64_t)n);
            if (e->h.on_data) {
                ec->in_callback++;
                e->h.on_data(c, w->rbuf, (size_t)n, e->h.arg);
                ec->in_callback--;
            }
            continue;
        }
        if (n == 0) {
            ec->closing = 1; /* close_notify: finish sending, then close */
            ec->close_reason = "closed by peer";
            break;
        }
        if (n == TLSKIT_WANT_READ || n == TLSKIT_WANT_WRITE)
            break;
        fail_conn(c);
        break;
    }
}

static void progress_body(tlskit_conn *c);

/* Everything a readiness event (or a sweep) may need to do for one connection.
 * The event that may end the handshake (our flight is out, the peer's Finished may be
 * here) usually writes twice: the session ticket, then the answer to a request that came
 * with the Finished. Its sends are held back (MSG_MORE) and pushed together at the end:
 * one segment instead of two. */
static void progress(tlskit_conn *c)
{
    struct tlskit__econn *ec = c->eng;
    c->cork = !c->hs_done && ec->hs_waits > 0;
    progress_body(c);
    c->cork = 0;
    tlskit__bio_uncork(c); /* even when ending: close() would not push it (and a close with
                            * unread input resets the connection, dropping it) */
}

static void progress_body(tlskit_conn *c)
{
    struct tlskit__econn *ec = c->eng;
    struct tlskit__worker *w = ec->w;
    tlskit_engine *e = w->e;
    if (!c->hs_done) {
        int r = tlskit_conn_handshake(c);
        if (r == TLSKIT_WANT_READ || r == TLSKIT_WANT_WRITE) {
            ec->hs_waits++;
            return;
        }
        if (r != 0) {
            fail_conn(c);
            return;
        }
        count_add(&w->ctr.hs_ok, 1);
        ec->opened = 1;
        if (e->h.on_open) {
            ec->in_callback++;
            e->h.on_open(c, e->h.arg);
            ec->in_callback--;
        }
    }
    if (!ec->ended && pending(ec) && flush(c) != 0)
        return;
    if (!ec->ended)
        read_loop(c);
    if (!ec->ended && pending(ec))
        flush(c);
    if (!ec->ended && ec->closing && pending(ec) == 0)
        end_conn(c, TLSKIT_E_NONE, "%s", ec->close_reason ? ec->close_reason : "closed by server");
}

static void accept_ready(struct tlskit__worker *w, int lfd)
{
    tlskit_engine *e = w->e;
    for (int i = 0; i < TK_ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: the listen socket stays readable, so polling it
                 * again now would spin. Stop listening for a moment; clients wait in the
                 * backlog and are served once descriptors are free again. */
                int why = errno;
                count_add(&w->ctr.accept_errors, 1);
                listen_enable(w, 0);
                w->listen_resume_at = tlskit__now_ms() + TK_ACCEPT_PAUSE_MS;
                /* Reported once per streak, and at most once a second: a descriptor
                 * count that hovers at the limit must not flood the log. */
                int64_t now = tlskit__now_ms(), last = atomic_load(&e->accept_reported_ms);
                if (e->h.on_event && now - last >= 1000 &&
                    atomic_compare_exchange_strong(&e->accept_reported_ms, &last, now) &&
                    atomic_exchange(&e->accept_failing, 1) == 0) {
                    char msg[160];
                    snprintf(msg, sizeof(msg), "accept: %s: not accepting for %d ms at a "
                             "time until it succeeds (clients wait in the backlog)",
                             strerror(why), TK_ACCEPT_PAUSE_MS);
                    e->h.on_event(TLSKIT_E_IO, msg, e->h.arg);
                }
            }
            return; /* EAGAIN: another worker took it, or none left */
        }
        count_add(&w->ctr.accepted, 1);
        if (atomic_load_explicit(&e->accept_failing, memory_order_relaxed) &&
            atomic_exchange(&e->accept_failing, 0) == 1 && e->h.on_event)
            e->h.on_event(TLSKIT_E_NONE, "accepting connections again", e->h.arg);
        if (e->max_conns && atomic_load(&e->open) >= e->max_conns) {
            count_add(&w->ctr.limit_rejections, 1);
            close(fd);
            continue;
        }
        struct tlskit__err err = {0};
        tlskit_conn *c = tlskit__conn_accepted(worker_config(w), fd, (struct sockaddr *)&ss,
                                               &err);
        tlskit__err_free(&err);
        struct tlskit__econn *ec = c ? calloc(1, sizeof(*ec)) : NULL;
        if (!ec) {
            tlskit_conn_free(c);
            count_add(&w->ctr.accept_errors, 1);
            continue;
        }
        c->eng = ec;
        c->nonblocking = 1;
        SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
        if (c->cfg->timeouts[TLSKIT_TIMEOUT_HANDSHAKE])
            c->hs_deadline = tlskit__now_ms() + c->cfg->timeouts[TLSKIT_TIMEOUT_HANDSHAKE];
        ec->src = (struct tlskit__evsrc){.kind = KIND_CONN, .fd = c->fd};
        ec->w = w;
        ec->conn = c;
        ec->next = w->conns;
        if (w->conns)
            w->conns->eng->prev = c;
        w->conns = c;
        w->nconns++;
        atomic_fetch_add(&e->open, 1);
        if (epoll_add(w->epfd, c->fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, &ec->src) != 0) {
            end_conn(c, TLSKIT_E_IO, "epoll_ctl for %s: %s", c->peer, strerror(errno));
            reap(c);
            continue;
        }
        /* The ClientHello is often already here. */
        progress(c);
        if (c->eng->ended)
            reap(c);
    }
}

/* Deadlines, accept pauses and the stop sequence. */
static void sweep(struct tlskit__worker *w, int64_t now)
{
    tlskit_engine *e = w->e;
    const int stopping = atomic_load(&e->stopping);
    const int64_t drain_at = atomic_load(&e->drain_deadline);
    if (w->listen_resume_at && now >= w->listen_resume_at && !stopping) {
        w->listen_resume_at = 0;
        listen_enable(w, 1);
    }
    const int final_pass = stopping && now >= drain_at && !w->final_pass_done;
    if (final_pass)
        w->final_pass_done = 1;
    tlskit_conn *next;
    for (tlskit_conn *c = w->conns; c; c = next) {
        struct tlskit__econn *ec = c->eng;
        const int64_t *t = c->cfg->timeouts;
        next = ec->next;
        if (!c->hs_done && c->hs_deadline && now >= c->hs_deadline) {
            count_add(&w->ctr.hs_timeouts, 1);
            count_add(&w->ctr.hs_err[TLSKIT_E_TIMEOUT], 1);
            end_conn(c, TLSKIT_E_TIMEOUT, "handshake with %s: timed out after %.3f s",
                     c->peer, (double)t[TLSKIT_TIMEOUT_HANDSHAKE] / 1000.0);
        } else if (c->hs_done && pending(ec) && t[TLSKIT_TIMEOUT_WRITE] &&
                   now - ec->stall_since >= t[TLSKIT_TIMEOUT_WRITE]) {
            count_add(&w->ctr.write_stalls, 1);
            end_conn(c, TLSKIT_E_TIMEOUT,
                     "write to %s stalled: the peer took no data for %.3f s (%zu bytes pending)",
                     c->peer, (double)t[TLSKIT_TIMEOUT_WRITE] / 1000.0, pending(ec));
        } else if (c->hs_done && t[TLSKIT_TIMEOUT_IDLE] &&
                   now - c->last_activity >= t[TLSKIT_TIMEOUT_IDLE]) {
            count_add(&w->ctr.idle_timeouts, 1);
            end_conn(c, TLSKIT_E_TIMEOUT, "%s idle for %.3f s", c->peer,
                     (double)t[TLSKIT_TIMEOUT_IDLE] / 1000.0);
        } else if (final_pass) {
            /* Echo what the peer sent before the stop, then close after the flush. */
            if (c->hs_done) {
                ec->paused = 0;
                read_loop(c);
                if (!ec->ended && pending(ec))
                    flush(c);
            }
            if (!ec->ended) {
                ec->closing = 1;
                ec->close_reason = "server stopping";
                if (!c->hs_done || pending(ec) == 0)
                    end_conn(c, TLSKIT_E_NONE, "server stopping");
            }
        } else if (stopping && now >= drain_at + TK_FINAL_FLUSH_MS) {
            end_conn(c, TLSKIT_E_NONE, "server stopping (%zu bytes not sent)", pending(ec));
        }
        if (ec->ended)
            reap(c);
    }
}

static void *worker_main(void *arg)
{
    struct tlskit__worker *w = arg;
    tlskit_engine *e = w->e;
    struct epoll_event evs[256];
    int64_t next_sweep = tlskit__now_ms() + TK_SWEEP_MS;
    listen_enable(w, 1);
    for (;;) {
        int64_t now = tlskit__now_ms();
        int timeout = next_sweep > now ? (int)(next_sweep - now) : 0;
        int n = epoll_wait(w->epfd, evs, 256, timeout);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            struct tlskit__evsrc *src = evs[i].data.ptr;
            if (src->kind == KIND_WAKE) {
                uint64_t v;
                while (read(w->wake.fd, &v, sizeof(v)) > 0) {
                }
                if (atomic_load(&e->stopping) && w->l) {
                    listen_enable(w, 0);
                    w->listen_resume_at = 0;
                    tlskit_listener_free(w->l); /* refuse new clients at once */
                    w->l = NULL;
                }
            } else if (src->kind == KIND_LISTEN) {
                if (w->listening)
                    accept_ready(w, src->fd);
            } else {
                tlskit_conn *c = ((struct tlskit__econn *)(void *)src)->conn;
                progress(c);
                if (c->eng->ended)
                    reap(c);
            }
        }
        now = tlskit__now_ms();
        if (now >= next_sweep) {
            sweep(w, now);
            next_sweep = now + TK_SWEEP_MS;
        }
        if (atomic_load(&e->stopping) && !w->l && w->nconns == 0)
            break;
    }
    return NULL;
}

/* ---- lifecycle ---- */

int tlskit_engine_start(tlskit_engine *e)
{
    tlskit__err_clear(&e->err);
    if (!e->workers) {
        tlskit__err_set(&e->err, TLSKIT_E_INVALID, "engine: call tlskit_engine_listen() first");
        return -1;
    }
    if (e->running) {
        tlskit__err_set(&e->err, TLSKIT_E_INVALID, "engine is already running");
        return -1;
    }
    /* Workers block every signal, so process signals reach the application's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = 0;
    for (int i = 0; i < e->nworkers; i++) {
        int err = pthread_create(&e->workers[i].thread, NULL, worker_main, &e->workers[i]);
        if (err) {
            tlskit__err_set_errno(&e->err, TLSKIT_E_NOMEM, err, "engine: starting worker %d", i);
            rc = -1;
            break;
        }
        e->workers[i].started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    e->running = 1;
    if (rc != 0)
        tlskit_engine_stop(e);
    return rc;
}

static void join_workers(tlskit_engine *e)
{
    for (int i = 0; i < e->nworkers; i++) {
        struct tlskit__worker *w = &e->workers[i];
        if (w->started) {
            pthread_join(w->thread, NULL);
            w->started = 0;
        }
    }
}

static void stop_workers(tlskit_engine *e, int64_t drain_ms)
{
    atomic_store(&e->drain_deadline, tlskit__now_ms() + drain_ms);
    atomic_store(&e->stopping, 1);
    for (int i = 0; i < e->nworkers; i++) {
        uint64_t one = 1;
        ssize_t r = write(e->workers[i].wake.fd, &one, sizeof(one));
        (void)r;
    }
    join_workers(e);
    e->running = 0;
}

int tlskit_engine_stop(tlskit_engine *e)
{
    tlskit__err_clear(&e->err);
    if (!e->running)
        return 0;
    stop_workers(e, e->drain_ms);
    return 0;
}

void tlskit_engine_get_stats(tlskit_engine *e, struct tlskit_engine_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->open = (uint64_t)atomic_load(&e->open);
    for (int i = 0; e->workers && i < e->nworkers; i++) {
        struct tlskit__counters *k = &e->workers[i].ctr;
#define TK_LOAD(x) atomic_load_explicit(&k->x, memory_order_relaxed)
        out->accepted += TK_LOAD(accepted);
        out->handshakes_ok += TK_LOAD(hs_ok);
        for (int j = 0; j < 16; j++) {
            uint64_t v = TK_LOAD(hs_err[j]);
            out->handshake_errors[j] += v;
            out->handshakes_failed += v;
        }
        out->bytes_in += TK_LOAD(bytes_in);
        out->bytes_out += TK_LOAD(bytes_out);
        out->handshake_timeouts += TK_LOAD(hs_timeouts);
        out->idle_timeouts += TK_LOAD(idle_timeouts);
        out->write_stalls += TK_LOAD(write_stalls);
        out->buffer_limit_closes += TK_LOAD(buffer_closes);
        out->limit_rejections += TK_LOAD(limit_rejections);
        out->accept_errors += TK_LOAD(accept_errors);
#undef TK_LOAD
    }
}

void tlskit_engine_free(tlskit_engine *e)
{
    if (!e)
        return;
    if (e->running)
        stop_workers(e, 0);
    for (int i = 0; e->workers && i < e->nworkers; i++) {
        struct tlskit__worker *w = &e->workers[i];
        while (w->conns) { /* never started, or stopped: close what is left */
            tlskit_conn *c = w->conns;
            end_conn(c, TLSKIT_E_NONE, "engine freed");
            reap(c);
        }
        worker_cleanup(w);
    }
    free(e->workers);
    tlskit_config_free(e->cfg);
    tlskit__err_free(&e->err);
    pthread_mutex_destroy(&e->mu);
    free(e);
}
