/* SPDX-License-Identifier: MIT */
/* tlsserver's parts: the command line (options.c), main (main.c), the server itself
 * (server.c: configuration, signals, and the one serving loop), the per-connection log
 * lines, text or JSON (log.c), what a connection does with the bytes it gets (session.c:
 * echo, discard, http), and the two serve_models that loop drives: the event engine (serve_events.c), and a thread per
 * connection or one at a time (serve_threads.c). */
#ifndef TLSSERVER_SERVER_H
#define TLSSERVER_SERVER_H

#include <stdatomic.h>
#include <stddef.h>

#include <tlskit/tlskit.h>

#include "http.h"
#include "options.h"

struct server {
    struct options opt;
    tlskit_config *cfg;         /* current: replaced by a successful reload */
    struct http_site site;      /* http mode */
    int wake[2];                /* self-pipe: [0] polled by main */
    atomic_ulong ended;         /* connections that ended (for --exit-after) */
};

/* One way of serving many clients, driven by server_run(): listen, print the listening
 * line, start, then until SIGINT/SIGTERM or --exit-after: reload on SIGHUP, counters on
 * SIGUSR1, wait; then stop, counters, free. Each call but reload logs its own failures. */
struct serve_model {
    /* NULL on failure; else *addrs is "ADDR:PORT[, ...]", valid until free. */
    void *(*listen)(struct server *s, const char **addrs);
    int (*start)(void *m);
    /* Serve new connections with cfg (the caller keeps its reference). NULL, or why not. */
    const char *(*reload)(void *m, tlskit_config *cfg);
    /* Block until the self-pipe or the model has work, and do it. -1: stop, failed. */
    int (*wait)(void *m);
    /* The counters so far, into st (zeroed by the caller). Only the event engine fills
     * every field (engine_stats); the thread models keep the common ones. */
    void (*stats)(void *m, struct tlskit_engine_stats *st);
    int engine_stats;
    /* Stop accepting; open connections get GRACE_MS, then are cut. */
    void (*stop)(void *m);
    void (*free)(void *m);
};

extern const struct serve_model serve_events_model;  /* MODEL_EVENT */
extern const struct serve_model serve_threads_model; /* MODEL_THREAD, MODEL_ITERATIVE */

/* The self-pipe, signal handlers and first configuration. 0, or -1 after logging. */
int server_init(struct server *s);
/* Serve until stopped; the exit code. */
int server_run(struct server *s, const struct serve_model *m);
/* Undo server_init(), also a partial one. */
void server_cleanup(struct server *s);

/* Write one byte to the main thread's self-pipe (async-signal-safe). */
void wake_main(void);
/* Drain the self-pipe. */
void server_drain_wake(struct server *s);
/* SIGINT and SIGTERM received so far: a second one cuts the grace period short. */
unsigned long server_stop_signals(void);
/* The per-connection log line when it ends, text or --log-format json (log.c). code
 * TLSKIT_E_NONE for a clean end. */
void server_log_end(const struct server *s, tlskit_conn *c, int code, const char *why);
void server_log_handshake(const struct server *s, tlskit_conn *c);

/* ---- what a connection does with its bytes (session.c) ---- */

struct session {
    struct http_state *http; /* http mode, allocated only while a request is partial */
};

typedef int (*out_fn)(void *ctx, const void *data, size_t len);

/* Handle received bytes; output goes through out. 0 keep going, 1 close once the output
 * is sent, -1 failed. */
int session_data(const struct server *s, struct session *ss, const char *data, size_t len,
                 out_fn out, void *ctx);
void session_end(struct session *ss);

#endif
