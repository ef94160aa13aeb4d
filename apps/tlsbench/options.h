/* SPDX-License-Identifier: MIT */
/* tlsbench's command line: what the user asked for, with every default filled in. */
#ifndef TLSBENCH_OPTIONS_H
#define TLSBENCH_OPTIONS_H

#include <stdint.h>
#include <sys/types.h>

#include "hostport.h"
#include "load.h"

#define MAX_PIDS 64

struct opts {
    enum bench_mode mode;
    const char *host, *port;      /* point into target */
    struct cli_hostport target;
    int url;                      /* the target was an https:// URL */
    char *path;                   /* owned: the URL's or --http's path, or NULL */
    int threads, conns;
    int64_t duration_ms, warmup_ms, timeout_ms;
    int duration_set, warmup_set;
    uint64_t count;
    int resume, http, verify, json, quiet, insecure, server_closes;
    long request;                 /* -1: mode default */
    uint64_t bytes;
    int inflight;
    int tls;                      /* 0 any, else TLSKIT_TLS1_x */
    const char *servername, *ca;
    pid_t pids[MAX_PIDS];
    size_t npids;
};

/* Parse argv into o (zeroed by the caller). Returns -1 to go on; otherwise the exit code:
 * 0 after --help or --version, CLI_EXIT_USAGE after a usage error (already printed).
 * host and port point into o->target. */
int options_parse(int argc, char **argv, struct opts *o);
void options_free(struct opts *o);

/* "handshake", "bulk", "rr", "idle". */
const char *bench_mode_name(enum bench_mode m);
/* What the mode counts: "handshakes", "bytes" (bulk) or "requests" (rr). */
const char *bench_mode_unit(enum bench_mode m);

#endif
