/* SPDX-License-Identifier: MIT */
/* Names resolved from several workers at once, under ThreadSanitizer (a plain program,
 * as client_engine_tsan.c): two client workers open plain connections to "localhost"
 * (from /etc/hosts, through the engine's resolver threads) from the worker hook and
 * reopen from on_close; every third one is closed again at once, while its lookup is
 * still queued or running (the lookup is cancelled). The answers come back to both
 * workers' inboxes. Then a second client engine is stopped and freed right after its
 * workers asked for names, with lookups in flight. Exit 0 when every echo matched; any
 * TSan report fails the process. */
#include <tlskit/tlskit.h>

#include "tsan_common.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORKERS 2
#define PER_WORKER 6
#define EXCHANGES 300

static char port[16];
static tlskit_engine *engines[2]; /* the handlers' arg points at one slot */
static tlskit_config *ccfg;
static atomic_int failures, exchanges, opened, cancelled, stopping;
static atomic_uint seq;
static char first_failure[256];

struct cc {
    size_t got;
    int closed_at_once;
};

static void fail(const char *what)
{
    if (atomic_fetch_add(&failures, 1) == 0)
        snprintf(first_failure, sizeof(first_failure), "%s", what);
}

static void open_one(tlskit_engine *e)
{
    tlskit_conn *c = tlskit_engine_connect(e, NULL, ccfg, "localhost", port,
                                           TLSKIT_CONNECT_PLAIN);
    if (!c) {
        if (errno != ECANCELED)
            fail("engine connect returned NULL");
        return;
    }
    struct cc *cc = calloc(1, sizeof(*cc));
    tlskit_conn_set_userdata(c, cc);
    atomic_fetch_add(&opened, 1);
    if (atomic_fetch_add(&seq, 1) % 3 == 2) { /* closed while its name is resolved */
        cc->closed_at_once = 1;
        tlskit_conn_close(c);
        return;
    }
    tlskit_conn_write(c, "ping", 4);
}

static void on_worker(int worker, int event, void *arg)
{
    (void)worker;
    if (event == TLSKIT_WORKER_START)
        for (int i = 0; i < PER_WORKER; i++)
            open_one(*(tlskit_engine **)arg);
}

static void client_data(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    (void)arg;
    struct cc *cc = tlskit_conn_userdata(c);
    int step = tsan_ping_step(&cc->got, d, n);
    if (step < 0) {
        fail("echo mismatch");
        tlskit_conn_abort(c, "echo mismatch");
        return;
    }
    if (step == 1) {
        atomic_fetch_add(&exchanges, 1);
        tlskit_conn_close(c);
    }
}

static void client_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    struct cc *cc = tlskit_conn_userdata(c);
    if (cc && cc->closed_at_once)
        atomic_fetch_add(&cancelled, 1);
    else if (code != TLSKIT_E_NONE && !atomic_load(&stopping)) {
        char msg[256];
        snprintf(msg, sizeof(msg), "client connection: %s", reason);
        fail(msg);
    }
    free(cc);
    if (atomic_load(&exchanges) < EXCHANGES) /* ECANCELED once the engine stops */
        open_one(*(tlskit_engine **)arg);
}

static void echo(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    (void)arg;
    tlskit_conn_write(c, d, n);
}

/* A client engine in slot k, started: its workers ask for names at once. */
static int client_start(int k)
{
    struct tlskit_engine_handlers ch = {.on_data = client_data, .on_close = client_close,
                                        .arg = &engines[k]};
    engines[k] = tlskit_engine_new(ccfg, &ch);
    tlskit_engine_set_workers(engines[k], WORKERS);
    tlskit_engine_set_drain_timeout(engines[k], 0);
    tlskit_engine_set_on_worker(engines[k], on_worker, &engines[k]);
    if (tlskit_engine_start(engines[k]) != 0) {
        fprintf(stderr, "client engine: %s\n", tlskit_engine_error(engines[k]));
        return -1;
    }
    return 0;
}

int main(void)
{
    tlskit_config *scfg = tlskit_config_new();
    ccfg = tlskit_config_new();
    tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_CONNECT, 60000);
    struct tlskit_engine_handlers sh = {.on_data = echo};
    tlskit_engine *server = tlskit_engine_new(scfg, &sh);
    tlskit_engine_set_workers(server, 2);
    tlskit_engine_set_plain(server, 1);
    if (tlskit_engine_listen(server, "127.0.0.1", "0", 0) != 0 ||
        tlskit_engine_start(server) != 0) {
        fprintf(stderr, "server engine: %s\n", tlskit_engine_error(server));
        return 1;
    }
    snprintf(port, sizeof(port), "%d", tlskit_engine_port(server));
    pthread_t stats;
    pthread_create(&stats, NULL, tsan_stats_thread, server);

    if (client_start(0) != 0)
        return 1;
    for (int i = 0; i < 6000 && atomic_load(&exchanges) < EXCHANGES && !atomic_load(&failures);
         i++)
        poll(NULL, 0, 10);
    atomic_store(&stopping, 1);
    tlskit_engine_stop(engines[0]);
    struct tlskit_engine_stats st;
    tlskit_engine_read_stats(engines[0], &st);
    tlskit_engine_free(engines[0]);

    /* Freed with its first lookups queued or running. */
    for (int round = 0; round < 5; round++) {
        if (client_start(1) != 0)
            return 1;
        tlskit_engine_stop(engines[1]);
        tlskit_engine_free(engines[1]);
    }

    atomic_store(&tsan_stop_stats, 1);
    pthread_join(stats, NULL);
    tlskit_engine_stop(server);
    tlskit_engine_free(server);
    tlskit_config_free(scfg);
    tlskit_config_free(ccfg);

    printf("resolve_tsan: opened %d, exchanges %d, closed while resolving %d, connects %llu, "
           "connect failures %llu, failures %d %s\n", atomic_load(&opened),
           atomic_load(&exchanges), atomic_load(&cancelled), (unsigned long long)st.connects,
           (unsigned long long)st.connect_failures, atomic_load(&failures), first_failure);
    if (atomic_load(&failures) || atomic_load(&exchanges) < EXCHANGES ||
        atomic_load(&cancelled) == 0 || st.connect_failures != 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("1 passed, 0 failed\n");
    return 0;
}
