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

enum tlskit__kind { KIND_CONN = 1, KIND_LISTEN, KIND_WAKE };

/* What epoll's data points at: the first member of each kind of event source. */
struct tlskit__evsrc {
    enum tlskit__kind kind;
    int fd;
};

struct tlskit__counters {
    atomic_uint_fast64_t accepted, hs_ok, hs_err[TLSKIT_E__COUNT], bytes_in, bytes_out,
        hs_timeouts, idle_timeouts, write_stalls, buffer_closes, limit_rejections,
        accept_errors, dtls_cookies, dtls_cookie_bad, dtls_retx, dtls_drops;
};

struct tlskit__udp;   /* a worker's datagram state (engine_udp.c) */
struct tlskit__upeer; /* one peer address in it */

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
    struct tlskit__udp *udp;   /* DTLS config: the listen fds are UDP sockets */
    struct tlskit__econn *conns; /* doubly linked list of this worker's connections */
    size_t nconns;
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
    const char *close_reason;  /* for a clean close once the output is flushed */
    int end_code;
    char *end_reason;          /* allocated when the connection ends */
    struct tlskit__upeer *peer; /* DTLS: its entry in the worker's address lookup */
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
/* The first half of that: take it in (a stream socket joins epoll), no progress yet.
 * NULL when it could not be (then it is freed, and counted). */
struct tlskit__econn *tlskit__econn_add(struct tlskit__worker *w, tlskit_conn *c);
/* One readiness event (or a sweep's kick) for a connection; frees it if it ended, and
 * then returns 1. */
int tlskit__econn_event(struct tlskit__econn *ec);
/* End a connection now with code and reason (on_close, then freed). */
void tlskit__econn_end(struct tlskit__econn *ec, int code, const char *reason);
/* The sweep's work for one connection at `now` (deadlines, the stop sequence). */
void tlskit__econn_sweep(struct tlskit__econn *ec, int64_t now, int final_pass, int stopping,
                         int64_t drain_at);
/* End every connection of a worker that never ran or has stopped. */
void tlskit__econn_end_all(struct tlskit__worker *w, const char *reason);

/* engine_udp.c: serving DTLS peers from the worker's unconnected UDP sockets */
int tlskit__udp_init(struct tlskit__worker *w);
void tlskit__udp_cleanup(struct tlskit__worker *w);
/* Datagrams are waiting on UDP socket fd. */
void tlskit__udp_ready(struct tlskit__worker *w, int fd);
/* The sweep's share: the half-open count. */
void tlskit__udp_sweep(struct tlskit__worker *w);
/* A connection ends: forget its peer address. */
void tlskit__udp_forget(struct tlskit__econn *ec);

#endif
