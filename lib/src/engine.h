/* SPDX-License-Identifier: MIT */
/* The engine's rooms share these bodies: the engine object and its lifecycle (engine.c),
 * the workers' loops, accept and timers (engine_loop.c), and the per-connection state,
 * buffering and progress (engine_conn.c). Seen by engine*.c only.
 *
 * N worker threads, each with its own SO_REUSEPORT listeners and an edge-triggered epoll
 * loop. A connection lives on one worker for its whole life, so no connection state is
 * shared between threads; only the counters (atomics), the current config (under a
 * mutex, for reload) and the stop flag are. */
#ifndef TLSKIT_ENGINE_H
#define TLSKIT_ENGINE_H

#include "internal.h"

#define TK_SWEEP_MS 50          /* deadline sweep period: a few hundred thousand cheap
                                 * checks a second at 10,000 connections */
#define TK_READ_CHUNK 16384     /* one worker's read buffer */
#define TK_ACCEPT_BATCH 64      /* accepts per readiness event, so that one busy listener
                                 * does not starve the worker's connections */
#define TK_ACCEPT_PAUSE_MS 100  /* out of descriptors: how long accepting pauses */
#define TK_ACCEPT_REPORT_MS 1000 /* at most one "accept failing" report this often */
#define TK_FINAL_FLUSH_MS 1000  /* after the drain timeout: time to send what is queued */
#define TK_OUT_KEEP (TK_READ_CHUNK * 4) /* an emptied output buffer larger than this is
                                          * freed (memory back after a burst) */
#define TK_EPOLL_EVENTS 256
#define TK_LINGER_MS 2000       /* lingering close: read and drop for at most this long, */
#define TK_LINGER_BYTES (256 * 1024) /* ... and this much, */
#define TK_LINGER_MAX 1024      /* ... on at most this many sockets per worker */
#define TK_REFUSE_REPORT_MS 1000 /* at most one "refused: max_conns" report this often */

enum tlskit__kind { KIND_CONN = 1, KIND_LISTEN, KIND_WAKE, KIND_LINGER };

/* What epoll's data points at: the first member of each kind of event source. */
struct tlskit__evsrc {
    enum tlskit__kind kind;
    int fd;
};

struct tlskit__counters {
    atomic_uint_fast64_t accepted, hs_ok, hs_err[TLSKIT_E__COUNT], bytes_in, bytes_out,
        hs_timeouts, idle_timeouts, write_stalls, buffer_closes, limit_rejections,
        accept_errors;
};

struct tlskit__worker {
    tlskit_engine *e;
    pthread_t thread;
    int started;
    int epfd;
    struct tlskit__evsrc wake;
    tlskit_listener *l;
    struct tlskit__evsrc lsrc[TK_MAX_LISTEN];
    int listening;             /* listen fds are in epoll */
    int64_t listen_resume_at;  /* after EMFILE: when to accept again (0: not paused) */
    struct tlskit__econn *conns; /* doubly linked list of this worker's connections */
    size_t nconns;
    struct tlskit__linger *lingers; /* sockets in a lingering close (engine_linger.c) */
    size_t nlingers;
    int final_pass_done;
    tlskit_config *cfg;        /* this worker's reference to the engine's config ... */
    uint64_t cfg_gen;          /* ... as of this reload generation */
    unsigned char rbuf[TK_READ_CHUNK];
    struct tlskit__counters ctr;
};

/* The engine's state of one connection (the connection itself knows only a pointer). */
struct tlskit__econn {
    struct tlskit__evsrc src;  /* first: epoll data points here */
    struct tlskit__worker *w;
    tlskit_conn *conn;
    struct tlskit__econn *prev, *next;
    unsigned char *out;
    size_t out_off, out_len, out_cap;
    int64_t stall_since;       /* output pending and no progress since */
    int opened;
    int closing;               /* close once the output is flushed */
    int paused;                /* backpressure: not reading */
    int in_callback;
    int hs_waits;              /* handshake steps that waited for the peer */
    int ended;
    int linger;                /* ended after a fatal alert: lingering close */
    int notify_on_end;         /* ended with an error, yet close with close_notify (idle) */
    const char *close_reason;  /* for a clean close once the output is flushed */
    int end_code;
    char *end_reason;          /* allocated when the connection ends */
};

struct tlskit_engine {
    pthread_mutex_t mu;        /* guards cfg */
    tlskit_config *cfg;
    atomic_uint_fast64_t cfg_gen; /* bumped (under mu) by each reload */
    struct tlskit_engine_handlers h;
    int nworkers;
    int max_conns;
    size_t write_limit;
    int64_t drain_ms;
    struct tlskit__worker *workers;
    atomic_int open;
    atomic_int accept_failing;     /* an accept error streak was reported */
    atomic_llong accept_reported_ms; /* when (rate limit) */
    atomic_llong refuse_reported_ms; /* the last max_conns refusal reported (rate limit) */
    atomic_uint_fast64_t refused_unreported; /* refusals since then */
    atomic_int stopping;
    atomic_llong drain_deadline;
    int running;
    int port;
    char addrs[TK_MAX_LISTEN * (TK_ADDRLEN + 2)];
    struct tlskit__err err;
};

static inline void tlskit__count(atomic_uint_fast64_t *a, uint64_t n)
{
    atomic_fetch_add_explicit(a, n, memory_order_relaxed);
}

/* engine.c */
/* The config for a new connection on this worker (follows reloads). */
tlskit_config *tlskit__worker_config(struct tlskit__worker *w);

/* engine_loop.c */
int tlskit__worker_init(tlskit_engine *e, struct tlskit__worker *w, const char *host,
                        const char *port, int backlog, int first);
void tlskit__worker_cleanup(struct tlskit__worker *w);
void *tlskit__worker_main(void *arg);

/* engine_conn.c */
/* Take an accepted connection into worker w and make what progress it can. */
void tlskit__econn_start(struct tlskit__worker *w, tlskit_conn *c);
/* One readiness event (or a sweep's kick) for a connection; frees it if it ended. */
void tlskit__econn_event(struct tlskit__econn *ec);
/* The sweep's work for one connection at `now` (deadlines, the stop sequence). */
void tlskit__econn_sweep(struct tlskit__econn *ec, int64_t now, int final_pass, int stopping,
                         int64_t drain_at);
/* End every connection of a worker that never ran or has stopped. */
void tlskit__econn_end_all(struct tlskit__worker *w, const char *reason);

/* engine_linger.c */
/* Shut fd (taken over) down for writing, then read and drop what the peer still sends
 * until its FIN, TK_LINGER_MS or TK_LINGER_BYTES; then close it. Closes at once when
 * the worker lingers on TK_LINGER_MAX sockets already. */
void tlskit__linger_start(struct tlskit__worker *w, int fd);
/* A copy of a connection's fd (taken out of epoll) for tlskit__linger_start(), or -1. */
int tlskit__linger_take_fd(struct tlskit__worker *w, int fd);
void tlskit__linger_event(struct tlskit__worker *w, struct tlskit__evsrc *src);
/* Close the lingering sockets whose time is up (all of them with all). */
void tlskit__linger_sweep(struct tlskit__worker *w, int64_t now, int all);

#endif
