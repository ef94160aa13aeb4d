/* SPDX-License-Identifier: MIT */
/* A client-side engine: started without listening, its workers open connections from the
 * worker hook (tlskit_engine_set_on_worker) and from callbacks with
 * tlskit_engine_connect(e, NULL, ...), to a server engine in the same process. The
 * counters stay right for outbound connections, a stopping engine does not refill
 * itself, and the calls refuse what they must. */
#include "common.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

TK_SUITE(engine_client);

#define WORKERS 2
#define PER_WORKER 4 /* connections each worker keeps open at once */
#define TOTAL 40     /* echo exchanges to complete, over all workers */

struct client {
    tlskit_engine *e;
    tlskit_config *cfg;
    char port[16];
    char refused_port[16];  /* nothing listens there: one connection is refused */
    int refused_fd;         /* holds that port (bound, not listening) */
    atomic_int starts[WORKERS], ticks[WORKERS];
    atomic_int bad_worker;  /* a hook or callback ran with a worker index out of range */
    atomic_int started;     /* connections opened to the server */
    atomic_int done;        /* exchanges completed: "ping" echoed back */
    atomic_int refused;     /* on_close with TLSKIT_E_CONNECT */
    atomic_int other_fail;  /* any other failed end */
    atomic_int canceled;    /* connect refused with ECANCELED (stopping) */
    atomic_int null_errno;  /* connect returned NULL for another reason: its errno */
    atomic_int hold;        /* 1: keep connections open after their exchange */
    atomic_int tick_opened; /* worker 1 opened one connection from a tick */
    atomic_int by_client;   /* clean ends saying "closed by client" (we closed them) */
    char first_fail[256];
    char refused_reason[256];
};

struct cconn {
    struct client *cl;
    size_t got;
};

static void open_one(struct client *cl, const char *port)
{
    tlskit_conn *c = tlskit_engine_connect(cl->e, NULL, cl->cfg, "127.0.0.1", port, 0);
    if (!c) {
        if (errno == ECANCELED)
            atomic_fetch_add(&cl->canceled, 1);
        else
            atomic_store(&cl->null_errno, errno ? errno : -1);
        return;
    }
    struct cconn *cc = calloc(1, sizeof(*cc));
    cc->cl = cl;
    tlskit_conn_set_userdata(c, cc);
    /* Written while connecting: sent once the handshake is done. */
    tlskit_conn_write(c, "ping", 4);
    if (port == cl->port)
        atomic_fetch_add(&cl->started, 1);
}

static void on_worker(int worker, int event, void *arg)
{
    struct client *cl = arg;
    if (worker < 0 || worker >= WORKERS) {
        atomic_store(&cl->bad_worker, 1);
        return;
    }
    if (event == TLSKIT_WORKER_START) {
        atomic_fetch_add(&cl->starts[worker], 1);
        for (int i = 0; i < PER_WORKER; i++)
            open_one(cl, cl->port);
        if (worker == 0)
            open_one(cl, cl->refused_port);
    } else if (event == TLSKIT_WORKER_TICK) {
        /* A connection from a tick too (a retry after a pause, in a load generator). */
        if (atomic_fetch_add(&cl->ticks[worker], 1) == 2 && worker == 1 &&
            !atomic_load(&cl->hold)) {
            open_one(cl, cl->port);
            atomic_store(&cl->tick_opened, 1);
        }
    } else {
        atomic_store(&cl->bad_worker, 1);
    }
}

static void on_data(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    (void)d;
    struct client *cl = arg;
    struct cconn *cc = tlskit_conn_userdata(c);
    cc->got += n;
    if (cc->got == 4) {
        atomic_fetch_add(&cl->done, 1);
        if (!atomic_load(&cl->hold))
            tlskit_conn_close(c);
    }
}

static void on_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    struct client *cl = arg;
    struct cconn *cc = tlskit_conn_userdata(c);
    free(cc);
    if (code == TLSKIT_E_CONNECT) {
        if (atomic_fetch_add(&cl->refused, 1) == 0)
            snprintf(cl->refused_reason, sizeof(cl->refused_reason), "%s", reason);
        return;
    }
    if (code == TLSKIT_E_NONE && strcmp(reason, "closed by client") == 0)
        atomic_fetch_add(&cl->by_client, 1);
    if (code != TLSKIT_E_NONE && atomic_fetch_add(&cl->other_fail, 1) == 0)
        snprintf(cl->first_fail, sizeof(cl->first_fail), "%d: %s", code, reason);
    /* The next connection from on_close, with no connection beside (this one is going). */
    if (atomic_load(&cl->started) < TOTAL || atomic_load(&cl->hold))
        open_one(cl, cl->port);
}

static int all_done(void *arg)
{
    struct client *cl = arg;
    /* ... and every connection opened has finished its exchange (none is in flight) */
    return atomic_load(&cl->done) >= TOTAL && atomic_load(&cl->refused) == 1 &&
           atomic_load(&cl->tick_opened) &&
           atomic_load(&cl->done) == atomic_load(&cl->started);
}


/* The server: an echo engine. */
static void echo(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    (void)arg;
    tlskit_conn_write(c, d, n);
}

static tlskit_engine *server(tlskit_config **cfg, char port[16])
{
    *cfg = tk_server_config("server");
    struct tlskit_engine_handlers h = {.on_data = echo};
    tlskit_engine *s = tlskit_engine_new(*cfg, &h);
    cr_assert_not_null(s);
    cr_assert_eq(tlskit_engine_set_workers(s, 1), 0);
    cr_assert_eq(tlskit_engine_listen(s, "127.0.0.1", "0", 0), 0, "%s", tlskit_engine_error(s));
    cr_assert_eq(tlskit_engine_start(s), 0, "%s", tlskit_engine_error(s));
    snprintf(port, 16, "%d", tlskit_engine_port(s));
    return s;
}

static void client_new(struct client *cl, const char *port)
{
    memset(cl, 0, sizeof(*cl));
    cl->cfg = tk_client_config("ca.crt");
    tlskit_config_set_timeout(cl->cfg, TLSKIT_TIMEOUT_CONNECT, 20000);
    tlskit_config_set_timeout(cl->cfg, TLSKIT_TIMEOUT_HANDSHAKE, 20000);
    snprintf(cl->port, sizeof(cl->port), "%s", port);
    int refused = 0;
    cl->refused_fd = tk_tcp_bound("127.0.0.1", 0, &refused); /* bound, never listening */
    snprintf(cl->refused_port, sizeof(cl->refused_port), "%d", refused);
    struct tlskit_engine_handlers h = {.on_data = on_data, .on_close = on_close, .arg = cl};
    cl->e = tlskit_engine_new(cl->cfg, &h);
    cr_assert_not_null(cl->e);
    cr_assert_eq(tlskit_engine_set_workers(cl->e, WORKERS), 0);
    cr_assert_eq(tlskit_engine_set_on_worker(cl->e, on_worker, cl), 0);
}

TK_TEST(engine_client, connections_open_from_the_worker_hook_and_from_on_close)
{
    tlskit_config *scfg;
    char port[16];
    tlskit_engine *s = server(&scfg, port);
    struct client cl;
    client_new(&cl, port);
    /* Off the workers' threads there is no worker to open a connection on. */
    errno = 0;
    cr_expect_null(tlskit_engine_connect(cl.e, NULL, cl.cfg, "127.0.0.1", port, 0));
    cr_expect_eq(errno, EINVAL);
    cr_assert_eq(tlskit_engine_start(cl.e), 0, "%s", tlskit_engine_error(cl.e));
    cr_expect_eq(tlskit_engine_set_on_worker(cl.e, NULL, NULL), -1, "set after start");
    cr_expect_eq(tlskit_engine_port(cl.e), -1, "a client engine listens nowhere");

    cr_assert(tk_wait_until(all_done, &cl, 50000), "done %d of %d, refused %d, failed %d (%s), "
              "connect errno %d", atomic_load(&cl.done), TOTAL, atomic_load(&cl.refused),
              atomic_load(&cl.other_fail), cl.first_fail, atomic_load(&cl.null_errno));
    /* At least one tick after the start: wait for two more on each worker. */
    int t0 = atomic_load(&cl.ticks[0]), t1 = atomic_load(&cl.ticks[1]);
    int64_t end = tk_now_ms() + 30000;
    while ((atomic_load(&cl.ticks[0]) < t0 + 2 || atomic_load(&cl.ticks[1]) < t1 + 2) &&
           tk_now_ms() < end)
        poll(NULL, 0, 10);
    cr_expect_geq(atomic_load(&cl.ticks[0]), t0 + 2, "worker 0 does not tick");
    cr_expect_geq(atomic_load(&cl.ticks[1]), t1 + 2, "worker 1 does not tick");
    for (int i = 0; i < WORKERS; i++)
        cr_expect_eq(atomic_load(&cl.starts[i]), 1, "worker %d started %d times", i,
                     atomic_load(&cl.starts[i]));
    cr_expect_eq(atomic_load(&cl.bad_worker), 0);
    cr_expect_eq(atomic_load(&cl.other_fail), 0, "%s", cl.first_fail);
    cr_expect_eq(atomic_load(&cl.null_errno), 0);
    /* Closed by this side, the client of these connections: the reason says so. */
    cr_expect_geq(atomic_load(&cl.by_client), TOTAL - WORKERS, "%d", atomic_load(&cl.by_client));
    char want[96];
    snprintf(want, sizeof(want), "connect to 127.0.0.1:%s: Connection refused", cl.refused_port);
    cr_expect_str_eq(cl.refused_reason, want);

    cr_assert_eq(tlskit_engine_stop(cl.e), 0);
    struct tlskit_engine_stats st;
    tlskit_engine_read_stats(cl.e, &st);
    /* Every connection that was opened to the server connected; the one to the closed
     * port failed; none of them is a client of this engine. */
    cr_expect_eq(st.connects, (uint64_t)atomic_load(&cl.started), "connects %llu, "
                 "opened %d", (unsigned long long)st.connects, atomic_load(&cl.started));
    cr_expect_eq(st.connect_failures, 1);
    cr_expect_eq(st.accepted, 0);
    cr_expect_eq(st.open, 0);
    cr_expect_eq(st.handshakes_ok, 0);
    cr_expect_eq(st.bytes_in + st.bytes_out, 0);
    tlskit_engine_free(cl.e);
    tlskit_config_free(cl.cfg);
    close(cl.refused_fd);
    tlskit_engine_stop(s);
    struct tlskit_engine_stats ss;
    tlskit_engine_read_stats(s, &ss);
    cr_expect_eq(ss.handshakes_ok, st.connects, "the server saw %llu handshakes",
                 (unsigned long long)ss.handshakes_ok);
    tlskit_engine_free(s);
    tlskit_config_free(scfg);
}

static int held_all(void *arg)
{
    struct client *cl = arg;
    return atomic_load(&cl->done) >= WORKERS * PER_WORKER;
}

/* on_close reopens for ever (hold); the stop still ends: connects from on_close are
 * refused with ECANCELED once the engine stops, and every connection is closed. */
TK_TEST(engine_client, a_stopping_client_engine_does_not_refill_itself)
{
    tlskit_config *scfg;
    char port[16];
    tlskit_engine *s = server(&scfg, port);
    struct client cl;
    client_new(&cl, port);
    atomic_store(&cl.hold, 1);
    cr_assert_eq(tlskit_engine_set_drain_timeout(cl.e, 0), 0);
    cr_assert_eq(tlskit_engine_start(cl.e), 0, "%s", tlskit_engine_error(cl.e));
    cr_assert(tk_wait_until(held_all, &cl, 60000), "only %d connections answered",
              atomic_load(&cl.done));
    int64_t t = tk_now_ms();
    cr_assert_eq(tlskit_engine_stop(cl.e), 0);
    cr_expect_lt(tk_now_ms() - t, 20000, "stop took %lld ms", (long long)(tk_now_ms() - t));
    cr_expect_geq(atomic_load(&cl.canceled), WORKERS * PER_WORKER,
                  "reopens refused while stopping: %d", atomic_load(&cl.canceled));
    cr_expect_eq(atomic_load(&cl.null_errno), 0, "errno %d", atomic_load(&cl.null_errno));
    tlskit_engine_free(cl.e);
    tlskit_config_free(cl.cfg);
    close(cl.refused_fd);
    tlskit_engine_stop(s);
    tlskit_engine_free(s);
    tlskit_config_free(scfg);
}

TK_TEST(engine_client, a_dtls_config_needs_listening)
{
    tlskit_config *cfg = tlskit_config_new_dtls();
    cr_assert_not_null(cfg);
    struct tlskit_engine_handlers h = {0};
    tlskit_engine *e = tlskit_engine_new(cfg, &h);
    cr_assert_eq(tlskit_engine_start(e), -1);
    cr_expect_eq(tlskit_engine_error_code(e), TLSKIT_E_INVALID);
    cr_expect(tk_contains(tlskit_engine_error(e), "listen"), "%s", tlskit_engine_error(e));
    tlskit_engine_free(e);
    tlskit_config_free(cfg);
}
