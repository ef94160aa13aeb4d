/* SPDX-License-Identifier: MIT */
/* The load generator's engine: worker threads, each with its own epoll loop driving many
 * non-blocking tlskit connections through a small state machine (connect, handshake,
 * request, response, close). Public tlskit API only. */
#ifndef TLSBENCH_LOAD_H
#define TLSBENCH_LOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <tlskit/tlskit.h>

#include "hist.h"

enum bench_mode { MODE_HANDSHAKE, MODE_BULK, MODE_RR, MODE_IDLE };

/* Read-only for the workers once they run. */
struct bench_params {
    enum bench_mode mode;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    tlskit_config *cfg;
    const char *servername;     /* SNI, or NULL */
    int resume;                 /* offer the last session (tickets) on each new connection */
    size_t request;             /* echo: request size in bytes (0: none) */
    const unsigned char *reqbuf; /* request bytes (echo), at least `request` long */
    const char *http_req;       /* HTTP: the whole GET request; NULL for echo */
    size_t http_req_len;
    uint64_t bulk_bytes;        /* bulk: bytes per direction (echo) or to download (HTTP) */
    int64_t op_timeout_ms;      /* one step (connect+handshake, one exchange) */
    int inflight;               /* idle: connections being set up at once, per worker */
};

/* Written by the main thread, read by the workers. */
struct bench_ctl {
    atomic_int measuring;       /* record latencies */
    atomic_int stop;            /* wind down and leave the loop */
    atomic_int verify;          /* idle: send one request on each held connection */
};

/* Written by one worker, read (any time) by the main thread. */
struct bench_counters {
    atomic_uint_fast64_t handshakes, resumed, requests, bytes_in, bytes_out, errors,
        ready, verified, verify_failed, dropped, gave_up, done;
};

#define BENCH_ERRLEN 256

struct worker {
    const struct bench_params *p;
    struct bench_ctl *ctl;
    int id;
    int nslots;
    struct slot *slots;
    pthread_t thread;
    int epfd;
    int64_t now_ms;             /* cached, refreshed after each epoll_wait */
    int started;                /* idle: slots started so far */
    int setting_up;             /* idle: slots between start and held */
    int verify_started;
    tlskit_session *session;    /* the last resumable session seen */
    struct bench_counters ctr;
    struct hist lat;            /* handshake or request latency, while measuring */
    pthread_mutex_t info_mu;    /* guards the fields below */
    char proto[32], cipher[64], group[32];
    char first_error[BENCH_ERRLEN];
    char scratch[BENCH_ERRLEN];     /* a protocol error being reported */
    unsigned char rbuf[65536];
};

/* nslots connections for this worker. 0 or -1 (message on stderr). */
int worker_init(struct worker *w, const struct bench_params *p, struct bench_ctl *ctl,
                int id, int nslots);
int worker_start(struct worker *w);
void worker_join(struct worker *w);
void worker_destroy(struct worker *w);

#endif
