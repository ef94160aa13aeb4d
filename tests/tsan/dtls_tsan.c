/* SPDX-License-Identifier: MIT */
/* The engine on UDP (DTLS 1.2) under ThreadSanitizer, a plain program for the same reason
 * as engine_tsan.c. Three workers share the port (one SO_REUSEPORT socket each, with its
 * own peer table and stateless cookie listener), clients on several threads make their
 * DTLS handshakes (HelloVerifyRequest, cookie) and echo datagrams, and the counters are
 * read while they do. Exit 0 when every echo matched and every association was opened
 * and closed; TSan makes the process fail on any report. */
#include <tlskit/tlskit.h>

#include "tsan_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_THREADS 4
#define CONNS_PER_THREAD 4
#define ROUNDS 10

static char port[16];
static atomic_int failures;

static void on_data(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    (void)arg;
    tlskit_conn_write(c, d, n); /* one datagram back */
}

static void on_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    (void)c;
    (void)code;
    (void)reason;
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void *client_thread(void *arg)
{
    tlskit_config *cfg = arg;
    tlskit_conn *conns[CONNS_PER_THREAD];
    for (int i = 0; i < CONNS_PER_THREAD; i++) {
        conns[i] = tlskit_conn_new(cfg);
        if (!conns[i] || tlskit_conn_connect_udp(conns[i], "127.0.0.1", port) != 0 ||
            tlskit_conn_handshake(conns[i]) != 0) {
            fprintf(stderr, "client: %s\n", conns[i] ? tlskit_conn_error(conns[i]) : "oom");
            atomic_fetch_add(&failures, 1);
        }
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < CONNS_PER_THREAD; i++) {
            if (tlskit_conn_handshake_done(conns[i]) && tsan_echo_round(conns[i], r, i) != 0)
                atomic_fetch_add(&failures, 1);
        }
    }
    for (int i = 0; i < CONNS_PER_THREAD; i++) {
        tlskit_conn_close(conns[i]);
        tlskit_conn_free(conns[i]);
    }
    return NULL;
}

int main(void)
{
    if (tsan_certs("dtls_tsan") != 0)
        return 1;
    char crt[512], key[512], ca[512];
    tsan_path(crt, sizeof(crt), "server.crt");
    tsan_path(key, sizeof(key), "server.key");
    tsan_path(ca, sizeof(ca), "ca.crt");
    tlskit_config *scfg = tlskit_config_new_dtls(), *ccfg = tlskit_config_new_dtls();
    if (!scfg || !ccfg || tlskit_config_set_keypair_file(scfg, crt, key) != 0 ||
        tlskit_config_add_ca_file(ccfg, ca) != 0) {
        fprintf(stderr, "config: %s\n", scfg ? tlskit_config_error(scfg) : "oom");
        return 1;
    }
    tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_HANDSHAKE, 20000);
    tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_READ, 20000);
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

    pthread_t clients[CLIENT_THREADS], stats;
    pthread_create(&stats, NULL, tsan_stats_thread, e);
    for (int i = 0; i < CLIENT_THREADS; i++)
        pthread_create(&clients[i], NULL, client_thread, ccfg);
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
    printf("dtls_tsan: accepted %llu, handshakes ok %llu, cookies sent %llu, closes %d, "
           "failures %d\n", (unsigned long long)st.accepted,
           (unsigned long long)st.handshakes_ok, (unsigned long long)st.dtls_cookies_sent,
           atomic_load(&closes), atomic_load(&failures));
    if (atomic_load(&failures) || st.handshakes_ok != (uint64_t)expected ||
        st.dtls_cookies_sent < (uint64_t)expected || atomic_load(&closes) != expected ||
        st.open != 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("1 passed, 0 failed\n");
    return 0;
}
