/* SPDX-License-Identifier: MIT */
/* --model event: the library's engine (epoll, a worker thread per core, deadlines,
 * limits, backpressure). The main thread only handles signals. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "server.h"

static int engine_out(void *ctx, const void *data, size_t len)
{
    return tlskit_engine_write(ctx, data, len);
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
            tlskit_engine_close(c);
            return;
        }
        tlskit_conn_set_userdata(c, ss);
    }
    if (session_data(s, ss, data, len, engine_out, c) != 0)
        tlskit_engine_close(c);
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

static void reload(struct server *s, tlskit_engine *e)
{
    tlskit_config *cfg = server_reload_config(s);
    if (!cfg)
        return;
    if (tlskit_engine_reload(e, cfg) < 0) {
        cli_msg("reload: %s", tlskit_engine_error(e));
        tlskit_config_free(cfg);
        return;
    }
    tlskit_config_free(s->cfg);
    s->cfg = cfg;
    cli_msg("reload: new connections use %s", s->opt.cert);
}

int serve_events(struct server *s)
{
    struct tlskit_engine_handlers h = {
        .on_open = on_open, .on_data = on_data, .on_close = on_close, .arg = s,
        .on_event = on_event};
    tlskit_engine *e = tlskit_engine_new(s->cfg, &h);
    int rc = CLI_EXIT_OK;
    if (!e) {
        cli_msg("out of memory");
        return CLI_EXIT_ERROR;
    }
    if (tlskit_engine_set_workers(e, (int)s->opt.workers) < 0 ||
        tlskit_engine_set_max_conns(e, (int)s->opt.max_conns) < 0 ||
        tlskit_engine_set_drain_timeout(e, GRACE_MS) < 0 ||
        tlskit_engine_listen(e, s->opt.bind, s->opt.port, 0) < 0)
        goto fail;
    server_listening(tlskit_engine_addrs(e));
    if (tlskit_engine_start(e) < 0)
        goto fail;
    for (;;) {
        if (server_should_stop(s))
            break;
        if (g_reload) {
            g_reload = 0;
            reload(s, e);
        }
        if (g_dump) {
            g_dump = 0;
            struct tlskit_engine_stats st;
            tlskit_engine_get_stats(e, &st);
            server_print_counters(s, &st);
        }
        struct pollfd p = {.fd = s->wake[0], .events = POLLIN};
        if (poll(&p, 1, -1) < 0 && errno != EINTR) {
            cli_msg("poll: %s", strerror(errno));
            rc = CLI_EXIT_ERROR;
            break;
        }
        server_drain_wake(s);
    }
    if (s->opt.verbosity > 0)
        cli_msg("stopping: no new connections; open ones get up to %d s to finish",
                GRACE_SECS);
    tlskit_engine_stop(e);
    struct tlskit_engine_stats st;
    tlskit_engine_get_stats(e, &st);
    server_print_counters(s, &st);
    tlskit_engine_free(e);
    return rc;
fail:
    cli_msg("%s", tlskit_engine_error(e));
    tlskit_engine_free(e);
    return CLI_EXIT_ERROR;
}
