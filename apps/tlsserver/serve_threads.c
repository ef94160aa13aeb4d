/* SPDX-License-Identifier: MIT */
/*
 * The classic models: a thread per connection (--model thread), or one connection at a
 * time (--model iterative: the same worker, but the next client is accepted only when
 * the current one has finished).
 *
 * The main thread waits in poll() on the listening sockets and the self-pipe that the
 * signal handler and finishing workers write to, so signals and --exit-after take effect
 * at once without busy waiting.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bufpool.h"
#include "cli.h"
#include "server.h"

#define ACCEPT_BACKOFF_MS 100  /* pause after a failed accept (EMFILE) instead of spinning */
#define ACCEPT_BATCH 64        /* connections accepted per wake-up before polling again */
#define WORKER_STACK (512 * 1024)
#define IO_BUF 16384
#define LINGER_MS 2000          /* lingering close: at most this long ... */
#define LINGER_BYTES (256 * 1024) /* ... and this much read and dropped */

struct pool;

struct worker {
    struct worker *next; /* main thread only */
    struct pool *pool;
    tlskit_conn *conn;
    pthread_t tid;
    /* Under pool->lock: the socket, for shutdown(2) when the grace period ends (-1 once
     * the worker is about to close it, so a reused fd number is never hit); whether that
     * shutdown happened; whether the worker has finished. */
    int fd;
    int forced;
    int done;
    unsigned char buf[IO_BUF];
};

/* The event model has the engine's counters; these are the thread models' own. */
struct counters {
    atomic_ullong accepted, handshakes_ok, handshakes_failed, health_checks, bytes_in, bytes_out,
        rejected, accept_errors;
};

struct pool {
    struct server *srv;
    tlskit_listener *listener;
    struct pollfd *pfds;    /* [0] the self-pipe, then the listening sockets */
    size_t nlisten;
    struct counters ctr;
    pthread_mutex_t lock;
    struct worker *workers; /* main thread only */
    size_t nworkers;
    int accept_failing;     /* an accept error was logged and has not cleared yet */
};

static int conn_out(void *ctx, const void *data, size_t len)
{
    struct worker *w = ctx;
    if (tlskit_conn_write_all(w->conn, data, len) < 0)
        return -1;
    atomic_fetch_add(&w->pool->ctr.bytes_out, len);
    return 0;
}

/* Serve until the client's close_notify or the session asks to close (1), or an error
 * (0). */
static int converse(struct worker *w)
{
    struct server *s = w->pool->srv;
    struct session ss = {0};
    int ok = 0;
    for (;;) {
        ssize_t n = tlskit_conn_read(w->conn, w->buf, sizeof(w->buf));
        if (n == 0) {
            ok = 1;
            break;
        }
        if (n < 0)
            break;
        atomic_fetch_add(&w->pool->ctr.bytes_in, (unsigned long long)n);
        int r = session_data(s, &ss, (const char *)w->buf, (size_t)n, conn_out, w);
        if (r != 0) {
            ok = r > 0;
            break;
        }
    }
    session_end(&ss);
    return ok;
}

/* Lingering close, as the event engine does after a fatal alert: shut the socket down
 * for writing and drop what the client still sends, until its FIN or the bounds, so
 * that our close does not reset the connection before the client has read the alert.
 * The grace-period shutdown(2) of threads_stop() ends it at once (EOF). */
static void linger(struct worker *w, int fd)
{
    if (shutdown(fd, SHUT_WR) != 0)
        return;
    int64_t until = cli_now_ms() + LINGER_MS;
    size_t left = LINGER_BYTES;
    for (;;) {
        int64_t wait = until - cli_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (wait <= 0 || poll(&p, 1, (int)wait) == 0)
            return;
        ssize_t n = recv(fd, w->buf, sizeof(w->buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n <= 0 || (size_t)n >= left)
            return;
        left -= (size_t)n;
    }
}

static void *serve(void *arg)
{
    struct worker *w = arg;
    struct pool *p = w->pool;
    struct server *s = p->srv;
    tlskit_conn *c = w->conn;
    int ok = 0;

    if (tlskit_conn_handshake(c) == 0) {
        atomic_fetch_add(&p->ctr.handshakes_ok, 1);
        server_log_handshake(s, c);
        ok = converse(w);
    } else if (tlskit_conn_health_check(c)) {
        atomic_fetch_add(&p->ctr.health_checks, 1);
    } else {
        atomic_fetch_add(&p->ctr.handshakes_failed, 1);
    }
    pthread_mutex_lock(&p->lock);
    int forced = w->forced;
    pthread_mutex_unlock(&p->lock);
    if (ok)
        server_log_end(s, c, TLSKIT_E_NONE, NULL);
    else if (forced) /* our own shutdown(2) made the library see a bare EOF */
        server_log_end(s, c, TLSKIT_E_CLOSED, "closed by tlsserver on shutdown");
    else
        server_log_end(s, c, tlskit_conn_error_code(c), tlskit_conn_error(c));

    /* Send our close_notify while the grace-period shutdown(2) can still reach the
     * socket; then unregister the fd before the library closes it. */
    if (ok)
        (void)tlskit_conn_shutdown(c);
    int code = tlskit_conn_error_code(c);
    if (!ok && !forced && (code == TLSKIT_E_VERIFY || code == TLSKIT_E_PROTOCOL))
        linger(w, tlskit_conn_fd(c)); /* after a fatal alert */
    pthread_mutex_lock(&p->lock);
    w->fd = -1;
    pthread_mutex_unlock(&p->lock);
    (void)tlskit_conn_close(c);
    tlskit_conn_free(c);
    w->conn = NULL;

    pthread_mutex_lock(&p->lock);
    w->done = 1;
    pthread_mutex_unlock(&p->lock);
    wake_main();
    return NULL;
}

/* Join the workers that have finished. */
static void reap(struct pool *p)
{
    struct worker *finished = NULL;

    pthread_mutex_lock(&p->lock);
    for (struct worker **pp = &p->workers; *pp != NULL;) {
        struct worker *w = *pp;
        if (w->done) {
            *pp = w->next;
            w->next = finished;
            finished = w;
        } else {
            pp = &w->next;
        }
    }
    pthread_mutex_unlock(&p->lock);

    int reaped = finished != NULL;
    while (finished != NULL) {
        struct worker *w = finished;
        finished = w->next;
        pthread_join(w->tid, NULL);
        free(w);
        p->nworkers--;
        atomic_fetch_add(&p->srv->ended, 1);
    }
    /* The last client gone: OpenSSL's free buffer slots go back to the system (the event
     * model does it at the engine's quiet moments; bufpool.c). */
    if (reaped && p->nworkers == 0)
        bufpool_release();
}

static void start_worker(struct pool *p, tlskit_conn *c)
{
    struct server *s = p->srv;
    const char *peer = tlskit_conn_peer_addr(c);
    struct worker *w = NULL;
    int err = 0;

    atomic_fetch_add(&p->ctr.accepted, 1);
    if (p->nworkers >= s->opt.max_conns) {
        atomic_fetch_add(&p->ctr.rejected, 1);
        if (s->opt.verbosity > 0)
            cli_msg("conn %s refused: too many connections (--max-conns %lu; an "
                    "internal_error alert was sent)", peer, s->opt.max_conns);
        goto reject;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        cli_msg("conn %s rejected: out of memory", peer);
        goto reject;
    }
    w->pool = p;
    w->conn = c;
    w->fd = tlskit_conn_fd(c);
    if (s->opt.verbosity > 1)
        cli_msg("conn %s accepted", peer);

    /* Workers never see signals: the handler's work is the main thread's. */
    pthread_attr_t attr;
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, WORKER_STACK);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    err = pthread_create(&w->tid, &attr, serve, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        cli_msg("conn %s rejected: cannot start a thread: %s", peer, strerror(err));
        free(w);
        goto reject;
    }
    w->next = p->workers;
    p->workers = w;
    p->nworkers++;
    return;

reject:
    (void)tlskit_conn_refuse(c); /* an alert, then closed: never waits */
    tlskit_conn_free(c);
    atomic_fetch_add(&s->ended, 1);
}

static void accept_ready(struct pool *p)
{
    struct server *s = p->srv;
    int batch = s->opt.model == MODEL_ITERATIVE ? 1 : ACCEPT_BATCH;
    for (int i = 0; i < batch; i++) {
        tlskit_conn *c = NULL;
        int r = tlskit_listener_accept(p->listener, &c, 0);
        if (r == TLSKIT_WANT_READ)
            return; /* nothing (more) pending */
        if (r < 0) {
            /* EMFILE and friends: the client stays queued, so the socket stays readable.
             * Log once per streak and pause instead of spinning. */
            atomic_fetch_add(&p->ctr.accept_errors, 1);
            if (!p->accept_failing)
                cli_msg("%s (retrying every %d ms)", tlskit_listener_error(p->listener),
                        ACCEPT_BACKOFF_MS);
            p->accept_failing = 1;
            struct pollfd pf = {.fd = s->wake[0], .events = POLLIN};
            (void)poll(&pf, 1, ACCEPT_BACKOFF_MS); /* a signal still cuts this short */
            return;
        }
        if (p->accept_failing) {
            cli_msg("accepting connections again");
            p->accept_failing = 0;
        }
        start_worker(p, c);
    }
}

static void threads_free(void *impl)
{
    struct pool *p = impl;
    tlskit_listener_free(p->listener);
    free(p->pfds);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* --proxy-protocol, --proxy-from: the header's deadline is the handshake's. */
static int threads_proxy(const struct server *s, tlskit_listener *l)
{
    if (!s->opt.proxy_protocol)
        return 0;
    if (tlskit_listener_set_proxy_protocol(l, 1, s->opt.handshake_ms) < 0)
        return -1;
    for (int i = 0; i < s->opt.nproxy_from; i++)
        if (tlskit_listener_add_proxy_from(l, s->opt.proxy_from[i]) < 0)
            return -1;
    return 0;
}

static void *threads_listen(struct server *s, const char **addrs)
{
    struct pool *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->listener = tlskit_listener_new(s->cfg)) == NULL) {
        free(p);
        cli_msg("out of memory");
        return NULL;
    }
    p->srv = s;
    pthread_mutex_init(&p->lock, NULL);
    if (threads_proxy(s, p->listener) < 0 ||
        (s->nlisten_fds
             ? tlskit_listener_adopt_fds(p->listener, s->listen_fds, (size_t)s->nlisten_fds)
             : tlskit_listener_listen(p->listener, s->opt.bind, s->opt.port, 0)) < 0) {
        cli_msg("%s", tlskit_listener_error(p->listener));
        threads_free(p);
        return NULL;
    }
    *addrs = tlskit_listener_addrs(p->listener);
    return p;
}

static int threads_start(void *impl)
{
    struct pool *p = impl;
    const int *lfds = tlskit_listener_fds(p->listener, &p->nlisten);
    p->pfds = calloc(p->nlisten + 1, sizeof(*p->pfds));
    if (p->pfds == NULL) {
        cli_msg("out of memory");
        return -1;
    }
    p->pfds[0].fd = p->srv->wake[0];
    p->pfds[0].events = POLLIN;
    for (size_t i = 0; i < p->nlisten; i++)
        p->pfds[i + 1].fd = lfds[i];
    return 0;
}

static const char *threads_reload(void *impl, tlskit_config *cfg)
{
    struct pool *p = impl;
    return tlskit_listener_reload(p->listener, cfg) < 0 ? tlskit_listener_error(p->listener)
                                                            : NULL;
}

/* Wait for the self-pipe or a client, accept, and join the workers that have finished
 * (which counts them as ended for --exit-after). */
static int threads_wait(void *impl)
{
    struct pool *p = impl;
    struct server *s = p->srv;
    /* Iterative: the next client waits in the backlog until this one is done. */
    int listening = s->opt.model != MODEL_ITERATIVE || p->nworkers == 0;
    for (size_t i = 1; i <= p->nlisten; i++)
        p->pfds[i].events = listening ? POLLIN : 0;

    int n = poll(p->pfds, p->nlisten + 1, -1);
    if (n < 0 && errno != EINTR) {
        cli_msg("poll: %s", strerror(errno));
        return -1;
    }
    if (n > 0 && p->pfds[0].revents != 0)
        server_drain_wake(s);
    for (size_t i = 1; n > 0 && i <= p->nlisten; i++) {
        if (p->pfds[i].revents != 0) {
            accept_ready(p); /* accepts from whichever listener is ready */
            break;
        }
    }
    reap(p);
    return 0;
}

/* Stop accepting, give active connections GRACE_MS (cut short by another signal), then
 * shut their sockets down so every worker returns, and join them all. */
static void threads_stop(void *impl)
{
    struct pool *p = impl;
    struct server *s = p->srv;
    unsigned long signals = server_stop_signals();
    int64_t deadline = cli_now_ms() + GRACE_MS;

    tlskit_listener_close(p->listener);
    for (;;) {
        reap(p);
        int64_t left = deadline - cli_now_ms();
        if (p->nworkers == 0 || left <= 0 || server_stop_signals() != signals)
            break;
        struct pollfd pf = {.fd = s->wake[0], .events = POLLIN};
        if (poll(&pf, 1, (int)left) > 0)
            server_drain_wake(s);
    }
    if (p->nworkers == 0)
        return;

    if (s->opt.verbosity > 0)
        cli_msg("closing %zu active connection%s", p->nworkers, p->nworkers == 1 ? "" : "s");
    pthread_mutex_lock(&p->lock);
    for (struct worker *w = p->workers; w != NULL; w = w->next)
        if (w->fd >= 0) {
            w->forced = 1;
            (void)shutdown(w->fd, SHUT_RDWR);
        }
    pthread_mutex_unlock(&p->lock);
    while (p->workers != NULL) {
        struct worker *w = p->workers;
        p->workers = w->next;
        pthread_join(w->tid, NULL);
        free(w);
        p->nworkers--;
        atomic_fetch_add(&s->ended, 1);
    }
}

static void threads_stats(void *impl, struct tlskit_engine_stats *st)
{
    struct pool *p = impl;
    st->accepted = atomic_load(&p->ctr.accepted);
    st->handshakes_ok = atomic_load(&p->ctr.handshakes_ok);
    st->handshakes_failed = atomic_load(&p->ctr.handshakes_failed);
    st->health_checks = atomic_load(&p->ctr.health_checks);
    st->bytes_in = atomic_load(&p->ctr.bytes_in);
    st->bytes_out = atomic_load(&p->ctr.bytes_out);
    st->limit_rejections = atomic_load(&p->ctr.rejected);
    st->accept_errors = atomic_load(&p->ctr.accept_errors);
}

/* --model thread and --model iterative: they differ only in threads_wait(). */
const struct serve_model serve_threads_model = {
    .listen = threads_listen, .start = threads_start, .reload = threads_reload,
    .wait = threads_wait, .stats = threads_stats, .stop = threads_stop, .free = threads_free,
};
