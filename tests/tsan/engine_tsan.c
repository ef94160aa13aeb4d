/* SPDX-License-Identifier: MIT */
/* The engine under ThreadSanitizer. Not a Criterion test: TSan aborts under Criterion's
 * forking runner, so this is a plain program run by ctest in a TSan build
 * (-DTLSKIT_TSAN=ON). It exercises everything that crosses threads: several workers,
 * clients on several threads, counters read while serving, a reload under load, and a
 * graceful stop with clients mid-stream. The first config's default keypair is for
 * another name, so every handshake before the reload installs the one for "localhost" in
 * its SSL from the shared config (SNI, sni.c) on the workers at once; ALPN is on both
 * ends, and so is the handshake trace (its callback runs on every worker). Exit 0 when
 * every echo matched and every handshake was traced; TSan makes the
 * process fail on any report (halt_on_error / exitcode). */
#include <tlskit/tlskit.h>

#include "tsan_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_THREADS 4
#define CONNS_PER_THREAD 8
#define ROUNDS 20

static char port[16];
static atomic_int failures;

static atomic_int traced_hellos;

/* The trace callback, on the worker threads: reads the connection's address. */
static void on_trace(const tlskit_conn *c, const char *line, void *arg)
{
    (void)arg;
    const char *peer = tlskit_conn_peer_addr(c);
    if (strncmp(line, "< ClientHello ", 14) == 0 && peer != NULL && peer[0] != '\0')
        atomic_fetch_add(&traced_hellos, 1);
}

static void on_data(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    (void)arg;
    tlskit_conn_write(c, d, n);
}

static void on_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    (void)c;
    (void)code;
    (void)reason;
    atomic_fetch_add((atomic_int *)arg, 1);
}

static tlskit_config *client_config(void)
{
    char ca[512];
    tsan_path(ca, sizeof(ca), "ca.crt");
    tlskit_config *cfg = tlskit_config_new();
    if (!cfg || tlskit_config_add_ca_file(cfg, ca) != 0) {
        fprintf(stderr, "client config: %s\n", cfg ? tlskit_config_error(cfg) : "oom");
        exit(1);
    }
    if (tlskit_config_set_alpn(cfg, "http/1.1,h2") != 0) {
        fprintf(stderr, "client config: %s\n", tlskit_config_error(cfg));
        exit(1);
    }
    tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, 20000);
    tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_READ, 20000);
    return cfg;
}

static void *client_thread(void *arg)
{
    tlskit_config *cfg = arg;
    tlskit_conn *conns[CONNS_PER_THREAD];
    for (int i = 0; i < CONNS_PER_THREAD; i++) {
        conns[i] = tlskit_conn_new(cfg);
        if (tlskit_conn_connect(conns[i], "localhost", port) != 0 ||
            tlskit_conn_handshake(conns[i]) != 0) {
            fprintf(stderr, "client: %s\n", tlskit_conn_error(conns[i]));
            atomic_fetch_add(&failures, 1);
        } else if (!tlskit_conn_alpn_selected(conns[i]) ||
                   strcmp(tlskit_conn_alpn_selected(conns[i]), "h2") != 0) {
            fprintf(stderr, "client: ALPN %s, not h2\n", tlskit_conn_alpn_selected(conns[i]));
            atomic_fetch_add(&failures, 1);
        }
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < CONNS_PER_THREAD; i++)
            if (tsan_echo_round(conns[i], r, i) != 0)
                atomic_fetch_add(&failures, 1);
    }
    for (int i = 0; i < CONNS_PER_THREAD; i++) {
        tlskit_conn_close(conns[i]);
        tlskit_conn_free(conns[i]);
    }
    return NULL;
}

int main(void)
{
    if (tsan_certs("engine_tsan") != 0)
        return 1;
    char crt[512], key[512], other_crt[512], other_key[512];
    tsan_path(crt, sizeof(crt), "server.crt");
    tsan_path(key, sizeof(key), "server.key");
    tsan_path(other_crt, sizeof(other_crt), "wronghost.crt");
    tsan_path(other_key, sizeof(other_key), "wronghost.key");
    tlskit_config *scfg = tlskit_config_new();
    if (tlskit_config_set_keypair_file(scfg, other_crt, other_key) != 0 ||
        tlskit_config_add_keypair_file(scfg, crt, key) != 0 ||
        tlskit_config_set_alpn(scfg, "h2,http/1.1") != 0 ||
        tlskit_config_set_trace(scfg, on_trace, NULL) != 0) {
        fprintf(stderr, "server config: %s\n", tlskit_config_error(scfg));
        return 1;
    }
    atomic_int closes;
    atomic_init(&closes, 0);
    struct tlskit_engine_handlers h = {.on_data = on_data, .on_close = on_close, .arg = &closes};
    tlskit_engine *e = tlskit_engine_new(scfg, &h);
    tlskit_engine_set_workers(e, 3);
    if (tlskit_engine_listen(e, "127.0.0.1", "0", 0) != 0 || tlskit_engine_start(e) != 0) {
        fprintf(stderr, "engine: %s\n", tlskit_engine_error(e));
        return 1;
    }
    snprintf(port, sizeof(port), "%d", tlskit_engine_port(e));

    tlskit_config *ccfg = client_config();
    pthread_t clients[CLIENT_THREADS], stats;
    pthread_create(&stats, NULL, tsan_stats_thread, e);
    for (int i = 0; i < CLIENT_THREADS; i++)
        pthread_create(&clients[i], NULL, client_thread, ccfg);

    /* Reload while clients connect: new material from the same files. */
    tlskit_config *next = tlskit_config_new();
    if (tlskit_config_set_keypair_file(next, crt, key) != 0 ||
        tlskit_config_set_alpn(next, "h2,http/1.1") != 0 ||
        tlskit_config_set_trace(next, on_trace, NULL) != 0 || tlskit_engine_reload(e, next)) {
        fprintf(stderr, "reload failed\n");
        atomic_fetch_add(&failures, 1);
    }
    tlskit_config_free(next);

    for (int i = 0; i < CLIENT_THREADS; i++)
        pthread_join(clients[i], NULL);
    atomic_store(&tsan_stop_stats, 1);
    pthread_join(stats, NULL);

    struct tlskit_engine_stats st;
    tlskit_engine_stop(e);
    tlskit_engine_read_stats(e, &st);
    tlskit_engine_free(e);
    tlskit_config_free(scfg);
    tlskit_config_free(ccfg);

    int expected = CLIENT_THREADS * CONNS_PER_THREAD;
    printf("engine_tsan: accepted %llu, handshakes ok %llu, closes %d, failures %d, "
           "traced hellos %d\n", (unsigned long long)st.accepted,
           (unsigned long long)st.handshakes_ok, atomic_load(&closes),
           atomic_load(&failures), atomic_load(&traced_hellos));
    if (atomic_load(&failures) || st.handshakes_ok != (uint64_t)expected ||
        atomic_load(&traced_hellos) < expected ||
        atomic_load(&closes) != expected || st.open != 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("1 passed, 0 failed\n");
    return 0;
}
