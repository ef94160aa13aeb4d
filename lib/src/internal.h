/* SPDX-License-Identifier: MIT */
/* Internal declarations of libtlskit: struct bodies and helpers shared between the
 * library's files. Never installed, never included by apps or tests. */
#ifndef TLSKIT_INTERNAL_H
#define TLSKIT_INTERNAL_H

#include "tlskit/tlskit.h"

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/socket.h>

#define TK_ERRLEN 512
#define TK_RECORD 16384 /* plaintext bytes in a full TLS record */
#define TK_ADDRLEN 64 /* "[ffff:...:ffff]:65535" fits */
#define TK_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* One error slot per object: a class and a message. The text (TK_ERRLEN bytes) is
 * allocated by the first error, so the many objects that never fail (connections of a
 * busy server) do not carry it; tlskit__err_free() releases it. */
struct tlskit__err {
    int code;
    char *msg;
};

void tlskit__err_clear(struct tlskit__err *err);
void tlskit__err_free(struct tlskit__err *err);
/* The message: "" when there is none (or, after an error, a note that there was no
 * memory to keep its text). */
const char *tlskit__err_text(const struct tlskit__err *err);
/* Sets code and message. */
void tlskit__err_set(struct tlskit__err *err, int code, const char *fmt, ...) TK_PRINTF(3, 4);
/* Same, with ": strerror(errnum)" appended. */
void tlskit__err_set_errno(struct tlskit__err *err, int code, int errnum, const char *fmt, ...)
    TK_PRINTF(4, 5);
/* Same, with ": " and the drained OpenSSL error queue appended (or `fallback` when the
 * queue is empty). */
void tlskit__err_set_ssl(struct tlskit__err *err, int code, const char *fallback, const char *fmt, ...)
    TK_PRINTF(4, 5);
/* Drain OpenSSL's error queue of this thread into buf as "reason; reason". Returns the
 * first error's packed code (0 when the queue was empty). */
unsigned long tlskit__ssl_errors(char *buf, size_t len);

/* ---- util.c: clock, deadlines, poll wait, file reader ---- */

/* Monotonic clock in milliseconds. */
int64_t tlskit__now_ms(void);
/* Wait for events on fd until the absolute deadline (0: none). 1 ready, 0 deadline
 * reached, -1 error (errno set). Retries on EINTR. */
int tlskit__wait_fd(int fd, short events, int64_t deadline);
/* Earliest of two absolute deadlines where 0 means none. */
int64_t tlskit__deadline_min(int64_t a, int64_t b);
/* Absolute deadline for a relative timeout in ms starting now (0 for none). */
int64_t tlskit__deadline_in(int64_t ms);

/* Read a whole (small) file into a NUL-terminated heap buffer; errors name the path. */
int tlskit__read_file(struct tlskit__err *err, const char *path, char **out, size_t *outlen);

struct tlskit_config {
    atomic_int refs;
    atomic_int frozen;         /* a listener, connection or engine took it: setters fail */
    pthread_mutex_t mu;        /* guards the lazy loading of the system trust store */
    SSL_CTX *ctx;
    struct tlskit__err err;
    int verify_cert;           /* client role: verify the server's chain */
    int verify_name;           /* client role: check the host name */
    int verify_client;         /* server role: TLSKIT_VERIFY_CLIENT_* */
    int ca_set;                /* a CA was configured explicitly */
    int system_ca_loaded;
    int has_keypair;
    int64_t timeouts[5];       /* TLSKIT_TIMEOUT_*, ms, 0 none */
    int rcvbuf, sndbuf;
    int nodelay;
    int keepalive, ka_idle, ka_interval, ka_count;
};

tlskit_config *tlskit__config_ref(tlskit_config *cfg);
/* Make the config ready for a connection (loads the default trust store when no CA was
 * set). Thread-safe. */
int tlskit__config_prepare(tlskit_config *cfg, struct tlskit__err *err);

/* Socket helpers (socket.c). */
void tlskit__socket_apply_options(const tlskit_config *cfg, int fd);
void tlskit__format_addr(const struct sockaddr *sa, char *buf, size_t len);
int tlskit__connect(tlskit_config *cfg, struct tlskit__err *err, const char *host, const char *port,
               char *peer, size_t peerlen);

#define TK_MAX_LISTEN 16

struct tlskit_listener {
    tlskit_config *cfg;
    int fds[TK_MAX_LISTEN];
    size_t nfds;
    int port;
    atomic_int closed;
    char addrs[TK_MAX_LISTEN * (TK_ADDRLEN + 2)];
    int reuseport;
    struct tlskit__err err;
};

/* reuseport: 0 none; JOIN: join the SO_REUSEPORT group on that port; FIRST: first
 * socket of a group (checks that nobody else listens on the port). */
#define TLSKIT__REUSEPORT_JOIN 1
#define TLSKIT__REUSEPORT_FIRST 2
/* A port is a decimal 0..65535 or a service name; errors name the operation. */
int tlskit__check_port(struct tlskit__err *err, const char *op, const char *port);
int tlskit__listener_listen(tlskit_listener *l, const char *host, const char *port, int backlog,
                       int reuseport);
/* A server-role connection over an accepted socket (closed on failure). */
tlskit_conn *tlskit__conn_accepted(tlskit_config *cfg, int fd, const struct sockaddr *sa,
                              struct tlskit__err *err);

enum tlskit__state { TK_NEW = 0, TK_READY, TK_OPEN, TK_CLOSED };

struct tlskit__peer_info {
    char *subject, *issuer, *sans;
    char fingerprint[7 + 32 * 3];
    time_t notbefore, notafter;
};

struct tlskit_conn {
    tlskit_config *cfg;
    SSL *ssl;
    int fd;
    int own_fd;
    int is_server;
    int nonblocking;
    enum tlskit__state state;
    int hs_done;
    int dead;                  /* a fatal error happened: further I/O fails */
    int sent_shutdown;
    int got_close_notify;
    int cert_requested;        /* client: the server asked for a certificate we lack */
    char *servername;          /* client role: SNI / name to verify */
    char peer[TK_ADDRLEN];
    int64_t hs_deadline;       /* absolute, 0 none; fixed at the first handshake step */
    int64_t last_activity;     /* for the idle deadline */
    int64_t created_ms;        /* connected or accepted */
    uint64_t bytes_in, bytes_out;
    int io_errno;              /* last socket error seen by the BIO */
    int io_eof;                /* the BIO saw EOF */
    int io_reset;              /* ECONNRESET seen at any time on this connection */
    int msg_more;              /* the record being written is not the call's last */
    int corked;                /* the last send() had MSG_MORE */
    int cork;                  /* engine: send everything with MSG_MORE for now */
    char verify_text[128];
    struct tlskit__peer_info info;
    void *userdata;
    struct tlskit__econn *eng;      /* engine state, NULL outside the engine (engine.c) */
    struct tlskit__err err;
};

/* The BIO over a connection's socket: recv/send with MSG_DONTWAIT | MSG_NOSIGNAL, so the
 * library never blocks inside OpenSSL and never raises SIGPIPE (bio.c). */
BIO *tlskit__bio_new(tlskit_conn *conn);
/* After a write that stopped early: push out what MSG_MORE may hold back (bio.c). */
void tlskit__bio_uncork(tlskit_conn *conn);

/* Attach an SSL object for the role to a connection with an fd (conn.c). */
int tlskit__conn_setup(tlskit_conn *conn, int fd, int own_fd, int is_server);
/* Client-role settings of a new SSL (client.c). */
int tlskit__client_setup(tlskit_conn *conn);
/* Fill conn->info after the handshake (info.c). */
void tlskit__info_collect(tlskit_conn *conn);
void tlskit__info_free(tlskit_conn *conn);
void tlskit__info_verify_text(tlskit_conn *conn);

#endif
