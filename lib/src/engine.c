/* SPDX-License-Identifier: MIT */
/* The engine object: settings, listening, the worker threads' lifecycle, reload and the
 * counters. The loop is in engine_loop.c, the connections in engine_conn.c; engine.h
 * says how they share the work. */
#include "engine.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    e->max_conns = TLSKIT_ENGINE_DEFAULT_MAX_CONNS;
    e->write_limit = TLSKIT_ENGINE_DEFAULT_WRITE_LIMIT;
    e->drain_ms = TLSKIT_ENGINE_DEFAULT_DRAIN_MS;
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
    if (workers > TLSKIT_ENGINE_MAX_WORKERS) {
        tlskit__err_set(&e->err, TLSKIT_E_INVALID, "too many workers (%d, at most %d)", workers,
                        TLSKIT_ENGINE_MAX_WORKERS);
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
    if (bytes < TLSKIT_ENGINE_MIN_WRITE_LIMIT) {
        tlskit__err_set(&e->err, TLSKIT_E_INVALID, "write limit below %d bytes",
                        TLSKIT_ENGINE_MIN_WRITE_LIMIT);
        return -1;
    }
    e->write_limit = bytes;
    return 0;
}

int tlskit_engine_set_plain(tlskit_engine *e, int on)
{
    if (!settable(e))
        return -1;
    e->plain = on != 0;
    return 0;
}

int tlskit_engine_set_on_quiet(tlskit_engine *e, void (*fn)(void *arg), void *arg)
{
    if (!settable(e))
        return -1;
    e->on_quiet = fn;
    e->quiet_arg = arg;
    return 0;
}

int tlskit_engine_set_on_worker(tlskit_engine *e, void (*fn)(int worker, int event, void *arg),
                                void *arg)
{
    if (!settable(e))
        return -1;
    e->on_worker = fn;
    e->worker_arg = arg;
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

int tlskit_engine_set_proxy_protocol(tlskit_engine *e, int on, int64_t timeout_ms)
{
    if (!settable(e))
        return -1;
    return tlskit__proxy_set(&e->err, &e->proxy, on, timeout_ms);
}

int tlskit_engine_add_proxy_from(tlskit_engine *e, const char *cidr)
{
    if (!settable(e))
        return -1;
    return tlskit__proxy_add_from(&e->err, &e->proxy, cidr);
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
tlskit_config *tlskit__worker_config(struct tlskit__worker *w)
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
    if (!cfg || (!cfg->has_keypair && !e->plain)) {
        tlskit__err_set(&e->err, TLSKIT_E_CONFIG,
                   "reload: the new configuration has no certificate and key; keeping the "
                   "old one");
        return -1;
    }
    if (cfg->dtls != e->cfg->dtls) {
        tlskit__err_set(&e->err, TLSKIT_E_CONFIG, "reload: the engine serves %s and the new "
                        "configuration is for %s; keeping the old one",
                        e->cfg->dtls ? "DTLS" : "TLS", cfg->dtls ? "DTLS" : "TLS");
        return -1;
    }
    pthread_mutex_lock(&e->mu);
    tlskit_config *old = e->cfg;
    tlskit__tickets_carry(cfg->tickets, old->tickets);
    e->cfg = tlskit__config_ref(cfg);
    atomic_fetch_add(&e->cfg_gen, 1);
    pthread_mutex_unlock(&e->mu);
    tlskit_config_free(old);
    return 0;
}

/* The workers' array (the settings end here): e->nworkers of them, none set up yet. */
static int alloc_workers(tlskit_engine *e)
{
    int n = e->nworkers;
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)(cores > TLSKIT_ENGINE_MAX_WORKERS ? TLSKIT_ENGINE_MAX_WORKERS
                                                                 : cores)
                      : 1;
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
    return 0;
}

static void free_workers(tlskit_engine *e, int upto)
{
    for (int j = 0; j <= upto && j < e->nworkers; j++)
        tlskit__worker_cleanup(&e->workers[j]);
    free(e->workers);
    e->workers = NULL;
    e->nworkers = 0;
}

/* tlskit_engine_start() without listening: workers that run outbound connections only. */
static int client_workers(tlskit_engine *e)
{
    if (e->cfg->dtls) {
        tlskit__err_set(&e->err, TLSKIT_E_INVALID, "engine: a DTLS engine serves peers: call "
                        "tlskit_engine_listen() first");
        return -1;
    }
    if (alloc_workers(e) != 0)
        return -1;
    for (int i = 0; i < e->nworkers; i++) {
        if (tlskit__worker_init_base(e, &e->workers[i]) != 0) {
            free_workers(e, i);
            return -1;
        }
    }
    return 0;
}

int tlskit_engine_listen(tlskit_engine *e, const char *host, const char *port, int backlog)
{
    tlskit__err_clear(&e->err);
    if (e->workers) {
        tlskit__err_set(&e->err, TLSKIT_E_INVALID, "engine is already listening");
        return -1;
    }
    if (alloc_workers(e) != 0)
        return -1;
    int n = e->nworkers;
    /* Worker 0 picks the port (maybe "0"); the others join it with SO_REUSEPORT. */
    char portbuf[16];
    for (int i = 0; i < n; i++) {
        if (tlskit__worker_init(e, &e->workers[i], host, i == 0 ? port : portbuf, backlog, i == 0) != 0) {
            free_workers(e, i);
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

int tlskit_engine_adopt_fds(tlskit_engine *e, const int *fds, size_t n)
{
    if (!fds || n == 0 || n > TK_MAX_LISTEN) {
        tlskit__err_clear(&e->err);
        tlskit__err_set(&e->err, TLSKIT_E_INVALID, "listen on given sockets: %zu sockets "
                        "(1 to %d)", fds ? n : 0, TK_MAX_LISTEN);
        return -1;
    }
    tlskit__err_clear(&e->err);
    if (tlskit__listen_check(&e->err, fds, n) != 0) /* errors name the caller's fds */
        return -1;
    e->adopt_fds = fds;
    e->nadopt = n;
    int rc = tlskit_engine_listen(e, NULL, "0", 0);
    e->adopt_fds = NULL;
    e->nadopt = 0;
    if (rc == 0) /* every worker has its duplicates */
        for (size_t i = 0; i < n; i++)
            close(fds[i]);
    return rc;
}

/* ---- lifecycle ---- */

int tlskit_engine_start(tlskit_engine *e)
{
    tlskit__err_clear(&e->err);
    if (e->running) {
        tlskit__err_set(&e->err, TLSKIT_E_INVALID, "engine is already running");
        return -1;
    }
    if (!e->workers && client_workers(e) != 0) /* not listening: a client-side engine */
        return -1;
    /* Workers block every signal, so process signals reach the application's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = 0;
    for (int i = 0; i < e->nworkers; i++) {
        int err = pthread_create(&e->workers[i].thread, NULL, tlskit__worker_main, &e->workers[i]);
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

void tlskit_engine_read_stats(tlskit_engine *e, struct tlskit_engine_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->open = (uint64_t)atomic_load(&e->open);
    for (int i = 0; e->workers && i < e->nworkers; i++) {
        struct tlskit__counters *k = &e->workers[i].ctr;
#define TK_LOAD(x) atomic_load_explicit(&k->x, memory_order_relaxed)
        out->accepted += TK_LOAD(accepted);
        out->handshakes_ok += TK_LOAD(hs_ok);
        for (int j = 0; j < TLSKIT_E__COUNT; j++) {
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
        out->connects += TK_LOAD(connects);
        out->connect_failures += TK_LOAD(connect_failures);
        out->dtls_cookies_sent += TK_LOAD(dtls_cookies);
        out->dtls_cookie_failures += TK_LOAD(dtls_cookie_bad);
        out->dtls_retransmissions += TK_LOAD(dtls_retx);
        out->dtls_drops += TK_LOAD(dtls_drops);
        out->health_checks += TK_LOAD(health_checks);
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
        tlskit__econn_end_all(w, "engine freed"); /* never started, or stopped */
        tlskit__worker_cleanup(w);
    }
    free(e->workers);
    /* Every lookup was cancelled with its connection above; one still blocked in
     * getaddrinfo() keeps its thread, not this call (resolve.c). */
    tlskit__resolver_release(e->resolver);
    tlskit_config_free(e->cfg);
    tlskit__err_free(&e->err);
    pthread_mutex_destroy(&e->mu);
    free(e);
}
