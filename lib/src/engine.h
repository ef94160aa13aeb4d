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
#include "resolve.h"

#define TK_SWEEP_MS 50          /* deadline sweep period: a few hundred thousand cheap
                                 * checks a second at 10,000 connections */
#define TK_READ_CHUNK (256 * 1024) /* one worker's read buffer: 16 full TLS records */
#define TK_ACCEPT_BATCH 64      /* accepts per readiness event, so that one busy listener
                                 * does not starve the worker's connections */
#define TK_ACCEPT_PAUSE_MS 100  /* out of descriptors: how long accepting pauses */
#define TK_ACCEPT_REPORT_MS 1000 /* at most one "accept failing" report this often */
#define TK_FINAL_FLUSH_MS 1000  /* after the drain timeout: time to send what is queued */
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
        accept_errors, connects, connect_failures, dtls_cookies, dtls_cookie_bad, dtls_retx,
        dtls_drops, health_checks;
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
    struct tlskit__linger *lingers; /* sockets in a lingering close (engine_linger.c) */
    size_t nlingers;
    struct tlskit__econn *current; /* the connection whose event is being handled */
    struct tlskit__econn *kicks;   /* to visit after this round of events (kick_next) */
    int final_pass_done;
    tlskit_config *cfg;        /* this worker's reference to the engine's config ... */
    uint64_t cfg_gen;          /* ... as of this reload generation */
    unsigned char rbuf[TK_READ_CHUNK];
    struct tlskit__stage stage; /* the records of one write call, sent together (bio.c) */
    struct tlskit__counters ctr;
    uint64_t ended;            /* connections reaped (only this worker touches it) */
    uint64_t quiet_seen;       /* on_quiet: accepted + hs_ok + ended at the last look, */
    uint64_t quiet_base;       /* ... and at the last call */
    int64_t quiet_since;       /* when quiet_seen last changed */
    struct tlskit__resolver *resolver; /* the engine's, once this worker asked it */
    struct tlskit__inbox inbox;    /* its answers (engine_connect.c, resolve.c) */
};

/* The engine's state of one connection (the connection itself knows only a pointer). */
struct tlskit__econn {
    struct tlskit__evsrc src;  /* first: epoll data points here */
    struct tlskit__worker *w;
    tlskit_conn *conn;
    struct tlskit__econn *prev, *next;
    uint32_t ev;               /* the epoll events being handled (0: a kick or a sweep) */
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
    int outbound;              /* made by tlskit_engine_connect(), not accepted */
    struct tlskit__dial *dial; /* outbound, still connecting (engine_connect.c) */
    int held;                  /* the application stopped reading (read_stop) */
    int eof;                   /* on_eof: the peer sent all it will send */
    int shut_wanted;           /* tlskit_conn_shutdown(): after the queued output */
    int shut_done;             /* close_notify / FIN sent */
    int kicked;                /* on the worker's kick list */
    struct tlskit__econn *kick_next;
    const char *close_reason;  /* for a clean close once the output is flushed */
    int end_code;
    char *end_reason;          /* allocated when the connection ends */
    struct tlskit__upeer *peer; /* DTLS: its entry in the worker's address lookup */
};

struct tlskit_engine {
    pthread_mutex_t mu;        /* guards cfg (and the resolver's creation) */
    tlskit_config *cfg;
    atomic_uint_fast64_t cfg_gen; /* bumped (under mu) by each reload */
    struct tlskit_engine_handlers h;
    int nworkers;
    int max_conns;
    int plain;                 /* accepted connections are plain TCP (no TLS) */
    size_t write_limit;
    int64_t drain_ms;
    void (*on_quiet)(void *arg);
    void *quiet_arg;
    void (*on_worker)(int worker, int event, void *arg); /* tlskit_engine_set_on_worker() */
    void *worker_arg;
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
    struct tlskit__proxy_policy proxy; /* set before listening, read-only after */
    struct tlskit__resolver *resolver; /* names for outbound connections: made (under mu)
                                        * by the first that needs one, released by free */
    const int *adopt_fds;      /* during tlskit_engine_adopt_fds(): the sockets given */
    size_t nadopt;
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
/* A worker without listening sockets (a client-side engine): its epoll set and wake-up. */
int tlskit__worker_init_base(tlskit_engine *e, struct tlskit__worker *w);
/* The worker whose thread this is, or NULL (not an engine worker thread). */
struct tlskit__worker *tlskit__worker_self(void);
int tlskit__worker_init(tlskit_engine *e, struct tlskit__worker *w, const char *host,
                        const char *port, int backlog, int first);
void tlskit__worker_cleanup(struct tlskit__worker *w);
void *tlskit__worker_main(void *arg);

/* engine_conn.c */
/* Take an accepted connection into worker w and make what progress it can. */
void tlskit__econn_start(struct tlskit__worker *w, tlskit_conn *c);
/* One readiness event (or a sweep's kick) for a connection; frees it if it ended, and
 * then returns 1. */
int tlskit__econn_event(struct tlskit__econn *ec);
/* End a connection now with code and reason (on_close, then freed), unless it is the one
 * whose event is being handled (then at the end of that event). */
void tlskit__econn_end_now(struct tlskit__econn *ec, int code, const char *reason);
/* The sweep's work for one connection at `now` (deadlines, the stop sequence). */
void tlskit__econn_sweep(struct tlskit__econn *ec, int64_t now, int final_pass, int stopping,
                         int64_t drain_at);
/* End every connection of a worker that never ran or has stopped. */
void tlskit__econn_end_all(struct tlskit__worker *w, const char *reason);
/* Take a connection into worker w (its list; epoll when it has a socket of its own: a
 * DTLS connection shares its worker's UDP socket) without making progress: the
 * connection, ended when epoll refused it; NULL when out of memory (then it is freed;
 * the caller counts that). */
struct tlskit__econn *tlskit__econn_add(struct tlskit__worker *w, tlskit_conn *c, int outbound);
/* Visit ec after the current round of events (it was changed from another connection's
 * callback, or it ended there). */
void tlskit__econn_kick(struct tlskit__econn *ec);
/* Visit every kicked connection (the worker's loop, after its events and sweeps). */
void tlskit__worker_run_kicks(struct tlskit__worker *w);
/* End a connection with a reason (freed at the end of its event or kick). */
void tlskit__econn_end(struct tlskit__econn *ec, int code, const char *fmt, ...) TK_PRINTF(3, 4);

/* engine_connect.c */
/* An outbound connection's socket became ready while connecting: 1 connected (go on
 * with the handshake), 0 still connecting (the next address), -1 ended. */
int tlskit__dial_event(struct tlskit__econn *ec);
/* The wake-up eventfd fired: continue the dials whose names were resolved. */
void tlskit__dial_answers(struct tlskit__worker *w);
/* The CONNECT deadline at now: 1 when it passed (the connection then ended). */
int tlskit__dial_expired(struct tlskit__econn *ec, int64_t now);
void tlskit__dial_free(struct tlskit__dial *d);

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
