/* SPDX-License-Identifier: MIT */
/* --model event: the library's engine (epoll, a worker thread per core, deadlines,
 * limits, backpressure). The main thread only handles signals. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bufpool.h"
#include "cli.h"
#include "heap.h"
#include "server.h"

struct events {
    struct server *srv;
    tlskit_engine *engine;
    struct forward *fwd; /* --forward */
};

static int engine_out(void *ctx, const void *data, size_t len)
{
    return tlskit_conn_write(ctx, data, len) < 0 ? -1 : 0;
}

static void on_open(tlskit_conn *c, void *arg)
{
    server_log_handshake(arg, c);
}

static void on_data(tlskit_conn *c, const void *data, size_t len, void *arg)
{
    struct server *s = arg;
    struct session none = {0}, *ss = &none;
    if (s->opt.mode == MODE_HTTP) { /* only http keeps state between reads */
        ss = tlskit_conn_userdata(c);
        if (!ss && !(ss = calloc(1, sizeof(*ss)))) {
            tlskit_conn_close(c);
            return;
        }
        tlskit_conn_set_userdata(c, ss);
    }
    if (session_data(s, ss, data, len, engine_out, c) != 0)
        tlskit_conn_close(c);
}

static void on_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    struct server *s = arg;
    struct session *ss = tlskit_conn_userdata(c);
    if (ss) {
        session_end(ss);
        free(ss);
    }
    server_log_end(s, c, code, reason);
    unsigned long ended = atomic_fetch_add(&s->ended, 1) + 1;
    if (s->opt.exit_after && ended >= s->opt.exit_after)
        wake_main();
}

static void on_event(int code, const char *message, void *arg)
{
    (void)code;
    (void)arg;
    cli_msg("%s", message);
}

/* The engine's quiet moments: give free memory back to the system. With glibc, a burst
 * of handshakes leaves the heap at its peak, and the process would keep its peak RSS for
 * ever (scripts/bench.sh: "RSS after a burst"; bufpool.c and heap.c say what it takes).
 * Other allocators return memory on their own. */
static void on_quiet(void *arg)
{
    (void)arg;
    bufpool_release();
    heap_release();
}

static void events_free(void *impl)
{
    struct events *ev = impl;
    tlskit_engine_free(ev->engine);
    forward_free(ev->fwd);
    free(ev);
}

/* --proxy-protocol, --proxy-from: the header's deadline is the handshake's. */
static int events_proxy(const struct server *s, tlskit_engine *e)
{
    if (!s->opt.proxy_protocol)
        return 0;
    if (tlskit_engine_set_proxy_protocol(e, 1, s->opt.handshake_ms) < 0)
        return -1;
    for (int i = 0; i < s->opt.nproxy_from; i++)
        if (tlskit_engine_add_proxy_from(e, s->opt.proxy_from[i]) < 0)
            return -1;
    return 0;
}

static void *events_listen(struct server *s, const char **addrs)
{
    struct tlskit_engine_handlers h = {
        .on_open = on_open, .on_data = on_data, .on_close = on_close, .arg = s,
        .on_event = on_event};
    struct events *ev = calloc(1, sizeof(*ev));
    if (ev == NULL) {
        cli_msg("out of memory");
        return NULL;
    }
    if (s->opt.forward != NULL && (ev->fwd = forward_new(s, &h)) == NULL) {
        free(ev);
        return NULL;
    }
    if ((ev->engine = tlskit_engine_new(s->cfg, &h)) == NULL) {
        forward_free(ev->fwd);
        free(ev);
        cli_msg("out of memory");
        return NULL;
    }
    if (ev->fwd != NULL)
        forward_set_engine(ev->fwd, ev->engine);
    ev->srv = s;
    tlskit_engine *e = ev->engine;
    if (tlskit_engine_set_workers(e, (int)s->opt.workers) < 0 ||
        tlskit_engine_set_max_conns(e, (int)s->opt.max_conns) < 0 ||
        tlskit_engine_set_drain_timeout(e, GRACE_MS) < 0 ||
        events_proxy(s, e) < 0 ||
        tlskit_engine_set_on_quiet(e, on_quiet, NULL) < 0 ||
        (s->nlisten_fds ? tlskit_engine_adopt_fds(e, s->listen_fds, (size_t)s->nlisten_fds)
                        : tlskit_engine_listen(e, s->opt.bind, s->opt.port, 0)) < 0) {
        cli_msg("%s", tlskit_engine_error(e));
        events_free(ev);
        return NULL;
    }
    *addrs = tlskit_engine_addrs(e);
    return ev;
}

static int events_start(void *impl)
{
    struct events *ev = impl;
    if (tlskit_engine_start(ev->engine) < 0) {
        cli_msg("%s", tlskit_engine_error(ev->engine));
        return -1;
    }
    return 0;
}

static const char *events_reload(void *impl, tlskit_config *cfg)
{
    struct events *ev = impl;
    return tlskit_engine_reload(ev->engine, cfg) < 0 ? tlskit_engine_error(ev->engine) : NULL;
}

/* The workers do all the serving: the main thread only waits for the self-pipe. */
static int events_wait(void *impl)
{
    struct events *ev = impl;
    struct pollfd p = {.fd = ev->srv->wake[0], .events = POLLIN};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) {
        cli_msg("poll: %s", strerror(errno));
        return -1;
    }
    server_drain_wake(ev->srv);
    return 0;
}

/* The engine finishes open connections itself (echoing what they sent, then
 * close_notify) within the drain timeout set at listen time. */
static void events_stop(void *impl)
{
    struct events *ev = impl;
    if (ev->srv->opt.verbosity > 0)
        cli_msg("stopping: no new connections; open ones get up to %d s to finish",
                GRACE_SECS);
    tlskit_engine_stop(ev->engine);
}

static void events_stats(void *impl, struct tlskit_engine_stats *st)
{
    struct events *ev = impl;
    tlskit_engine_read_stats(ev->engine, st);
}

const struct serve_model serve_events_model = {
    .listen = events_listen, .start = events_start, .reload = events_reload,
    .wait = events_wait, .stats = events_stats, .stop = events_stop, .free = events_free,
    .engine_stats = 1,
};
