/* SPDX-License-Identifier: MIT */
/* A client-side engine under ThreadSanitizer (a plain program, as engine_tsan.c): two
 * client workers open their connections from the worker hook and reopen from on_close
 * with tlskit_engine_connect(e, NULL, ...) to a two-worker echo engine, as tlsbench does;
 * the main thread sets a flag that the workers' ticks read (their only way in from
 * another thread), counters are read on a third thread while both engines run, and the
 * client engine is stopped with connections open, connecting and mid-exchange. Exit 0
 * when every echo matched; any TSan report fails the process. */
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
#define PER_WORKER 8
#define EXCHANGES 200 /* completed exchanges before the ticks are told to hold */

static char port[16];
static tlskit_engine *client;
static tlskit_config *ccfg;
static atomic_int failures, exchanges, opened, hold, held_ticks;
static char first_failure[256];

struct cc {
    size_t got;
};

static void fail(const char *what)
{
    if (atomic_fetch_add(&failures, 1) == 0)
        snprintf(first_failure, sizeof(first_failure), "%s", what);
}

static void open_one(void)
{
    tlskit_conn *c = tlskit_engine_connect(client, NULL, ccfg, "127.0.0.1", port, 0);
    if (!c) {
        if (errno != ECANCELED)
            fail("engine connect returned NULL");
        return;
    }
    tlskit_conn_set_userdata(c, calloc(1, sizeof(struct cc)));
    tlskit_conn_write(c, "ping", 4);
    atomic_fetch_add(&opened, 1);
}

static void on_worker(int worker, int event, void *arg)
{
    (void)arg;
    if (worker < 0 || worker >= WORKERS)
        fail("worker index out of range");
    if (event == TLSKIT_WORKER_START)
        for (int i = 0; i < PER_WORKER; i++)
            open_one();
    else if (event == TLSKIT_WORKER_TICK && atomic_load(&hold))
        atomic_fetch_add(&held_ticks, 1);
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
        if (!atomic_load(&hold))
            tlskit_conn_close(c);
    }
}

static void client_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    (void)arg;
    free(tlskit_conn_userdata(c));
    if (code != TLSKIT_E_NONE && !atomic_load(&hold)) {
        char msg[256];
        snprintf(msg, sizeof(msg), "client connection: %s", reason);
        fail(msg);
    }
    open_one(); /* refused (ECANCELED) once the engine stops */
}

static void echo(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    (void)arg;
    tlskit_conn_write(c, d, n);
}

int main(void)
{
    if (tsan_certs("client_engine_tsan") != 0)
        return 1;
    char crt[512], key[512], ca[512];
    tsan_path(crt, sizeof(crt), "server.crt");
    tsan_path(key, sizeof(key), "server.key");
    tsan_path(ca, sizeof(ca), "ca.crt");
    tlskit_config *scfg = tlskit_config_new();
    ccfg = tlskit_config_new();
    if (tlskit_config_set_keypair_file(scfg, crt, key) != 0 ||
        tlskit_config_add_ca_file(ccfg, ca) != 0) {
        fprintf(stderr, "config: %s %s\n", tlskit_config_error(scfg), tlskit_config_error(ccfg));
        return 1;
    }
    tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_HANDSHAKE, 20000);
    struct tlskit_engine_handlers sh = {.on_data = echo};
    tlskit_engine *server = tlskit_engine_new(scfg, &sh);
    tlskit_engine_set_workers(server, 2);
    if (tlskit_engine_listen(server, "127.0.0.1", "0", 0) != 0 ||
        tlskit_engine_start(server) != 0) {
        fprintf(stderr, "server engine: %s\n", tlskit_engine_error(server));
        return 1;
    }
    snprintf(port, sizeof(port), "%d", tlskit_engine_port(server));

    struct tlskit_engine_handlers ch = {.on_data = client_data, .on_close = client_close};
    client = tlskit_engine_new(ccfg, &ch);
    tlskit_engine_set_workers(client, WORKERS);
    tlskit_engine_set_drain_timeout(client, 0);
    tlskit_engine_set_on_worker(client, on_worker, NULL);
    pthread_t stats[2];
    pthread_create(&stats[0], NULL, tsan_stats_thread, server);
    if (tlskit_engine_start(client) != 0) {
        fprintf(stderr, "client engine: %s\n", tlskit_engine_error(client));
        return 1;
    }
    pthread_create(&stats[1], NULL, tsan_stats_thread, client);

    for (int i = 0; i < 6000 && atomic_load(&exchanges) < EXCHANGES && !atomic_load(&failures);
         i++)
        poll(NULL, 0, 10);
    atomic_store(&hold, 1); /* read by the ticks on the client's workers */
    for (int i = 0; i < 600 && atomic_load(&held_ticks) < 2 * WORKERS; i++)
        poll(NULL, 0, 10);
    tlskit_engine_stop(client); /* with connections held, connecting, mid-exchange */
    atomic_store(&tsan_stop_stats, 1);
    pthread_join(stats[0], NULL);
    pthread_join(stats[1], NULL);
    struct tlskit_engine_stats st;
    tlskit_engine_read_stats(client, &st);
    tlskit_engine_free(client);
    tlskit_engine_stop(server);
    tlskit_engine_free(server);
    tlskit_config_free(scfg);
    tlskit_config_free(ccfg);

    printf("client_engine_tsan: opened %d, exchanges %d, connects %llu, connect failures "
           "%llu, held ticks %d, failures %d %s\n", atomic_load(&opened),
           atomic_load(&exchanges), (unsigned long long)st.connects,
           (unsigned long long)st.connect_failures, atomic_load(&held_ticks),
           atomic_load(&failures), first_failure);
    if (atomic_load(&failures) || atomic_load(&exchanges) < EXCHANGES ||
        atomic_load(&held_ticks) < 2 * WORKERS || st.connect_failures != 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("1 passed, 0 failed\n");
    return 0;
}
