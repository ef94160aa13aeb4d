/* SPDX-License-Identifier: MIT */
/* Outbound connections and pairing under ThreadSanitizer (a plain program, as
 * engine_tsan.c). A TLS engine of 3 workers relays each client, with the public API
 * only, to a new plain connection (tlskit_engine_connect on the client's worker) to a
 * second engine of 2 workers that accepts plain TCP and echoes; clients on 4 threads
 * echo rounds through the pair, then half-close; counters are read all along. Exit 0
 * when every echo matched and every pair ended cleanly. */
#include <tlskit/tlskit.h>

#include "tsan_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_THREADS 4
#define CONNS_PER_THREAD 6
#define ROUNDS 15
#define MARK 65536

static char front_port[16], back_port[16];
static tlskit_engine *front;
static tlskit_config *bcfg;
static atomic_int failures, front_closes, back_closes;

struct pair {
    tlskit_conn *a, *b;
};

static tlskit_conn *other(tlskit_conn *c)
{
    struct pair *p = tlskit_conn_userdata(c);
    return p ? (c == p->a ? p->b : p->a) : NULL;
}

static void f_open(tlskit_conn *c, void *arg)
{
    (void)arg;
    if (tlskit_conn_userdata(c) != NULL)
        return; /* the backend side: connected */
    struct pair *p = calloc(1, sizeof(*p));
    p->a = c;
    p->b = tlskit_engine_connect(front, c, bcfg, "127.0.0.1", back_port, TLSKIT_CONNECT_PLAIN);
    if (!p->b) {
        fprintf(stderr, "connect: %s\n", tlskit_conn_error(c));
        atomic_fetch_add(&failures, 1);
        free(p);
        tlskit_conn_close(c);
        return;
    }
    tlskit_conn_set_userdata(c, p);
    tlskit_conn_set_userdata(p->b, p);
}

static void f_data(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    (void)arg;
    tlskit_conn *to = other(c);
    if (to && tlskit_conn_write(to, d, n) == (ssize_t)n && tlskit_conn_pending(to) > MARK)
        tlskit_conn_read_stop(c);
}

static void f_drain(tlskit_conn *c, void *arg)
{
    (void)arg;
    tlskit_conn *from = other(c);
    if (from)
        tlskit_conn_read_start(from);
}

static void f_eof(tlskit_conn *c, void *arg)
{
    (void)arg;
    tlskit_conn *to = other(c);
    if (to)
        tlskit_conn_shutdown(to);
}

static void f_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    (void)arg;
    struct pair *p = tlskit_conn_userdata(c);
    if (code != TLSKIT_E_NONE) {
        fprintf(stderr, "pair side ended: %s: %s\n", tlskit_error_name(code), reason);
        atomic_fetch_add(&failures, 1);
    }
    atomic_fetch_add(c == (p ? p->a : c) ? &front_closes : &back_closes, 1);
    if (!p)
        return;
    tlskit_conn *to = other(c);
    if (c == p->a)
        p->a = NULL;
    else
        p->b = NULL;
    if (to)
        tlskit_conn_close(to);
    else
        free(p);
}

/* The backend engine: plain echo, a FIN answered with ours (on_eof unset: closes after
 * the output). */
static void b_data(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    (void)arg;
    tlskit_conn_write(c, d, n);
}

static void *client_thread(void *arg)
{
    tlskit_config *cfg = arg;
    tlskit_conn *conns[CONNS_PER_THREAD];
    for (int i = 0; i < CONNS_PER_THREAD; i++) {
        conns[i] = tlskit_conn_new(cfg);
        if (tlskit_conn_set_servername(conns[i], "localhost") != 0 ||
            tlskit_conn_connect(conns[i], "127.0.0.1", front_port) != 0 ||
            tlskit_conn_handshake(conns[i]) != 0) {
            fprintf(stderr, "client: %s\n", tlskit_conn_error(conns[i]));
            atomic_fetch_add(&failures, 1);
        }
    }
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < CONNS_PER_THREAD; i++)
            if (tsan_echo_round(conns[i], r, i) != 0)
                atomic_fetch_add(&failures, 1);
    for (int i = 0; i < CONNS_PER_THREAD; i++) { /* half-close: their end follows ours */
        char b[16];
        if (tlskit_conn_shutdown(conns[i]) != 0 || tlskit_conn_read(conns[i], b, sizeof(b)) != 0) {
            fprintf(stderr, "half-close: %s\n", tlskit_conn_error(conns[i]));
            atomic_fetch_add(&failures, 1);
        }
        tlskit_conn_close(conns[i]);
        tlskit_conn_free(conns[i]);
    }
    return NULL;
}

int main(void)
{
    if (tsan_certs("forward_tsan") != 0)
        return 1;
    char crt[512], key[512], ca[512];
    tsan_path(crt, sizeof(crt), "server.crt");
    tsan_path(key, sizeof(key), "server.key");
    tsan_path(ca, sizeof(ca), "ca.crt");
    tlskit_config *scfg = tlskit_config_new(), *ccfg = tlskit_config_new();
    bcfg = tlskit_config_new();
    if (tlskit_config_set_keypair_file(scfg, crt, key) != 0 ||
        tlskit_config_add_ca_file(ccfg, ca) != 0) {
        fprintf(stderr, "config: %s%s\n", tlskit_config_error(scfg), tlskit_config_error(ccfg));
        return 1;
    }
    tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_READ, 20000);
    tlskit_config_set_timeout(bcfg, TLSKIT_TIMEOUT_CONNECT, 20000);

    struct tlskit_engine_handlers bh = {.on_data = b_data};
    tlskit_engine *back = tlskit_engine_new(bcfg, &bh);
    tlskit_engine_set_plain(back, 1);
    tlskit_engine_set_workers(back, 2);
    struct tlskit_engine_handlers fh = {.on_open = f_open, .on_data = f_data,
                                        .on_drain = f_drain, .on_eof = f_eof,
                                        .on_close = f_close};
    front = tlskit_engine_new(scfg, &fh);
    tlskit_engine_set_workers(front, 3);
    if (tlskit_engine_listen(back, "127.0.0.1", "0", 0) != 0 || tlskit_engine_start(back) != 0 ||
        tlskit_engine_listen(front, "127.0.0.1", "0", 0) != 0 || tlskit_engine_start(front) != 0) {
        fprintf(stderr, "engines: %s %s\n", tlskit_engine_error(back), tlskit_engine_error(front));
        return 1;
    }
    snprintf(back_port, sizeof(back_port), "%d", tlskit_engine_port(back));
    snprintf(front_port, sizeof(front_port), "%d", tlskit_engine_port(front));

    pthread_t clients[CLIENT_THREADS], stats;
    pthread_create(&stats, NULL, tsan_stats_thread, front);
    for (int i = 0; i < CLIENT_THREADS; i++)
        pthread_create(&clients[i], NULL, client_thread, ccfg);
    for (int i = 0; i < CLIENT_THREADS; i++)
        pthread_join(clients[i], NULL);
    atomic_store(&tsan_stop_stats, 1);
    pthread_join(stats, NULL);

    tlskit_engine_stop(front);
    tlskit_engine_stop(back);
    struct tlskit_engine_stats st;
    tlskit_engine_read_stats(front, &st);
    tlskit_engine_free(front);
    tlskit_engine_free(back);
    tlskit_config_free(scfg);
    tlskit_config_free(ccfg);
    tlskit_config_free(bcfg);

    int expected = CLIENT_THREADS * CONNS_PER_THREAD;
    printf("forward_tsan: connects %llu, front closes %d, back closes %d, failures %d\n",
           (unsigned long long)st.connects, atomic_load(&front_closes),
           atomic_load(&back_closes), atomic_load(&failures));
    if (atomic_load(&failures) || st.connects != (uint64_t)expected ||
        atomic_load(&front_closes) != expected || atomic_load(&back_closes) != expected) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("1 passed, 0 failed\n");
    return 0;
}
