/* SPDX-License-Identifier: MIT */
/* Run control: set up the workers (load.c), hold the warm-up and the measured window
 * (or, in idle mode, the hold and the verify round), stop them, and sum up what they
 * counted into one results struct that both reports read. */
#ifndef TLSBENCH_RUN_H
#define TLSBENCH_RUN_H

#include <stdint.h>

#include "hist.h"
#include "load.h"
#include "options.h"

struct bench_results {
    int threads;
    int started;            /* every worker started (else the run did not happen) */
    double elapsed_s;       /* the measured window */
    /* counted over the measured window */
    uint64_t handshakes, resumed, requests, bytes_in, bytes_out, errors;
    uint64_t ops;           /* what the mode counts: handshakes, requests or bytes in */
    double rate;            /* ops per second */
    double client_cpu_s;
    int have_server_cpu;    /* --server-pid given and readable at both ends */
    double server_cpu_s;
    int have_server_sys;    /* the kernel's share of it could be read too */
    double server_sys_s;    /* (clock ticks: coarse over a short window) */
    double per_server_cpu;  /* ops per server CPU-second; 0 when unknown */
    struct hist lat;        /* handshake or request latency */
    /* idle */
    uint64_t ready, gave_up, dropped, verified, verify_failed;
    int idle_ok;            /* every connection opened (and answered, with --verify) */
    int64_t rss_before, rss_after; /* server RSS in KiB; -1 unknown */
    int64_t rss_after_close;       /* --after-close: RSS that long after closing them */
    char proto[32], cipher[64], group[32], first_error[BENCH_ERRLEN];
};

/* Run the benchmark o describes; progress and messages on stderr. Returns 0 with res
 * filled in, or -1 when it could not be set up (the reason printed). */
int bench_run(const struct opts *o, struct bench_results *res);

#endif
