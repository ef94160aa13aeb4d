/* SPDX-License-Identifier: MIT */
/* tlsserver's parts: options (options.c), start-up (tlsserver.c), what a connection does with the
 * bytes it gets (session.c: echo, discard, http), and the three ways of serving many
 * clients: a thread per connection or one at a time (serve_threads.c), and the event
 * engine (serve_events.c). */
#ifndef TLSSERVER_SERVER_H
#define TLSSERVER_SERVER_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include <tlskit/tlskit.h>

#include "http.h"
#include "options.h"

/* Counters of the thread and iterative models (the event model has the engine's). */
struct counters {
    atomic_ullong accepted, handshakes_ok, handshakes_failed, bytes_in, bytes_out,
        rejected, accept_errors;
};

/* Signals, set by the handler, consumed by the main thread. */
extern volatile sig_atomic_t g_stop_signals, g_reload, g_dump;
/* Write one byte to the main thread's self-pipe (async-signal-safe). */
void wake_main(void);

struct server {
    struct options opt;
    tlskit_config *cfg;         /* current: replaced by a successful reload */
    struct http_site site;      /* http mode */
    int wake[2];                /* self-pipe: [0] polled by main */
    atomic_ulong ended;         /* connections that ended (for --exit-after) */
    struct counters ctr;
};

/* The contract's first stdout line: "tlsserver: listening on ADDRS", flushed. */
void server_listening(const char *addrs);
/* Build a config from the options (certificate files included). NULL after logging. */
tlskit_config *server_config(const struct options *o, int startup);
/* SIGHUP: a new config from the same files, or NULL (the reason logged; keep the old). */
tlskit_config *server_reload_config(struct server *s);
/* Whether the main loop should stop now (signal, or --exit-after reached). */
int server_should_stop(struct server *s);
/* Drain the self-pipe. */
void server_drain_wake(struct server *s);
/* The per-connection log line when it ends. code TLSKIT_E_NONE for a clean end. */
void server_log_end(const struct server *s, tlskit_conn *c, int code, const char *why);
void server_log_handshake(const struct server *s, tlskit_conn *c);
/* "tlsserver: counters: ..." on stderr. */
void server_print_counters(const struct server *s, const struct tlskit_engine_stats *st);

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

/* ---- models: each returns the exit code ---- */
int serve_threads(struct server *s);   /* MODEL_THREAD and MODEL_ITERATIVE */
int serve_events(struct server *s);    /* MODEL_EVENT */

#endif
