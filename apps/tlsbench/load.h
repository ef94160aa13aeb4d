/* SPDX-License-Identifier: MIT */
/* The load generator over the tlskit engine: a client-side engine (no listener) whose
 * worker threads each run a set of slots, one connection at a time per slot, through a
 * small state machine (connect and handshake, request, response, close). The engine
 * does the non-blocking connect, the handshake and the buffering; this file decides what
 * each slot does next. Public tlskit API only. */
#ifndef TLSBENCH_LOAD_H
#define TLSBENCH_LOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <tlskit/tlskit.h>

#include "hist.h"

enum bench_mode { MODE_HANDSHAKE, MODE_BULK, MODE_RR, MODE_IDLE };

/* Read-only for the workers once they run. */
struct bench_params {
    enum bench_mode mode;
    char host[64];              /* the target's numeric address (resolved once) */
    const char *port;
    tlskit_config *cfg;
    const char *servername;     /* SNI and the name checked, or NULL */
    int set_servername;         /* servername is not host: set it on each connection */
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

/* One engine worker's share of the load; only that worker's thread touches it (the
 * counters and the info fields are also read by the main thread). */
struct worker {
    const struct bench_params *p;
    struct bench_ctl *ctl;
    tlskit_engine *e;
    int id;
    int nslots;
    struct slot *slots;
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
};

/* nslots connections for this worker. 0 or -1 (message on stderr). */
int worker_init(struct worker *w, const struct bench_params *p, struct bench_ctl *ctl,
                int id, int nslots);
void worker_destroy(struct worker *w);

/* The engine that runs workers w[0..nw-1] (its worker i runs w[i]); not started. NULL
 * on failure (message on stderr). */
tlskit_engine *load_engine(struct worker *w, int nw, tlskit_config *cfg);
/* Start it: every worker opens its first connections. 0 or -1 (message on stderr). */
int load_start(tlskit_engine *e);
/* Wind down (ctl->stop must be set first): close every connection and join the
 * workers. */
void load_stop(tlskit_engine *e);

#endif
