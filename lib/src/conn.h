/* SPDX-License-Identifier: MIT */
/* The body of a connection: seen only by the files of the connection layer (conn.c,
 * bio.c, client.c, server.c, info.c, verify.c, ocsp.c, plain.c, proxy_recv.c). Everything else, the engine included,
 * goes through the public API or the seam in internal.h, so conn.c's state machine can
 * change without a reader of another room knowing its fields. */
#ifndef TLSKIT_CONN_H
#define TLSKIT_CONN_H

#include "internal.h"

enum tlskit__state { TK_NEW = 0, TK_READY, TK_OPEN, TK_CLOSED };

/* A close_notify waits at most this long for a peer that does not read (ms), when the
 * config has no write deadline. */
#define TK_CLOSE_NOTIFY_MS 5000
/* tlskit_conn_refuse() drops at most this much of what the client already sent. */
#define TK_REFUSE_DRAIN (64 * 1024)

struct tlskit__peer_info {
    char *subject, *issuer, *sans;
    char *alpn;                /* the protocol agreed on, NULL if none */
    char fingerprint[7 + 32 * 3];
    char spki[TK_SPKI_TEXT];   /* "sha256//BASE64" of the public key; made on first use */
    char *chain_pem;           /* the chain the peer sent, leaf first; made on first use */
    time_t notbefore, notafter;
    struct tlskit__chain_cert *chain; /* per-certificate details, made on first use */
    int nchain;                /* entries of chain[] */
    char *anchor;              /* subject of the trust anchor, made on first use */
};

/* Timestamps (tlskit__now_us(), 0: not yet) of the phases tlskit_conn_phase_us() reports:
 * set by the connect path (client.c, socket.c) and the handshake (conn.c). */
struct tlskit__times {
    int64_t begin;             /* tlskit_conn_connect() started */
    int64_t resolved;          /* getaddrinfo() returned */
    int64_t connected;         /* the TCP connect ended (or failed) */
    int64_t hs_start, hs_end;  /* the first handshake step; its end, success or failure */
    int64_t end;               /* the last phase ended: handshake, or a failed connect */
};

/* Texts few connections ever need: a refusal's reason, a hint, an OCSP staple's status.
 * They live apart, made when the first is written, so that the thousands of ordinary
 * connections a server holds carry none of them (read them with TK_NOTE()). */
#define TK_NOTE_LEN 320
struct tlskit__conn_notes {
    char verify_why[TK_NOTE_LEN];  /* why verify.c refused a certificate OpenSSL accepted */
    char verify_hint[TK_NOTE_LEN]; /* what would help with OpenSSL's refusal (verify.c) */
    char ocsp_text[200];           /* client: the staple's status (ocsp.c) */
};
/* The connection's notes, made on first use: NULL only when out of memory (the note is
 * then lost, never the decision it explains) (conn.c). */
struct tlskit__conn_notes *tlskit__conn_notes(tlskit_conn *c);
/* A note's text: "" when none was written. */
#define TK_NOTE(c, field) ((c)->notes ? (const char *)(c)->notes->field : "")

struct tlskit_conn {
    tlskit_config *cfg;
    SSL *ssl;
    int fd;
    int own_fd;
    int is_server;
    int plain;                 /* no TLS: bytes go to the socket as they are (plain.c) */
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
    int rd_empty;              /* engine: a read found the socket empty and no readiness
                                * came since: reads say WANT_READ without a recv() */
    int io_reset;              /* ECONNRESET seen at any time on this connection */
    int msg_more;              /* the record being written is not the call's last */
    int corked;                /* the last send() had MSG_MORE */
    int sent_any;              /* a send() took bytes (tlskit__conn_cork()) */
    unsigned char *wleft;      /* engine: gathered records the socket did not take yet */
    size_t wleft_len;          /* (bio.c); they go out before anything else */
    int cork;                  /* hold every send back (MSG_MORE) for now */
    const char *verify_text;   /* the verification result in words (static text), NULL
                                * before the handshake got that far */
    int ocsp_status;           /* client: TLSKIT_OCSP_STATUS_* of the staple (ocsp.c) */
    int ocsp_checked;          /* client: the status callback ran this handshake */
    struct tlskit__conn_notes *notes; /* made on the first note (tlskit__conn_notes()) */
    struct tlskit__peer_info info;
    struct tlskit__times times;
    void *userdata;
    struct tlskit__econn *eng; /* engine state, NULL outside the engine */
    struct tlskit__proxy_rx *prx; /* a PROXY header still to read (proxy_recv.c) */
    int proxy_local;              /* the header read was LOCAL (a health check) */
    struct tlskit__dgram *dg;  /* DTLS: the datagram transport (dtls.c), NULL for TLS */
    struct tlskit__err err;
};

/* The BIO over a connection's socket: recv/send with MSG_DONTWAIT | MSG_NOSIGNAL, so the
 * library never blocks inside OpenSSL and never raises SIGPIPE (bio.c). */
BIO *tlskit__bio_new(tlskit_conn *conn);
/* After a write that stopped early: push out what MSG_MORE may hold back (bio.c). */
void tlskit__bio_uncork(tlskit_conn *conn);
/* The end of a write call: records it gathered and did not send (the call failed
 * before its last record) are sent now, or kept for the next write (bio.c). */
void tlskit__bio_flush(tlskit_conn *conn);

/* The datagram side of a DTLS connection. A client owns a connected UDP socket; a
 * server association shares its engine worker's unconnected socket, sends with sendto()
 * to `peer` and reads the one datagram the engine fed it. */
struct tlskit__dgram {
    int connected;                 /* client: send()/recv() on a connected socket */
    struct sockaddr_storage peer;  /* server: where sendto() goes */
    socklen_t peerlen;
    const unsigned char *in;       /* server: the datagram fed by the engine, read once */
    size_t in_len;
    int emsgsize;                  /* the last send failed with EMSGSIZE */
    int cookie_sent, cookie_bad;   /* listener: what the last DTLSv1_listen() did */
    uint64_t retransmits, drops;   /* since tlskit__conn_dtls_counts() */
    uint64_t retransmits_total;
};
/* DTLS wrap: fd must be a connected UDP socket and the role the client's; sets up
 * conn->dg. 0, or -1 with the error set (dtls.c). */
int tlskit__dtls_wrap_check(tlskit_conn *conn, int fd, int is_server);
/* The BIO over a datagram socket (dtls.c). */
BIO *tlskit__dgram_bio_new(tlskit_conn *conn);
/* DTLS settings of a new SSL: MTU and retransmission timer (dtls.c). */
void tlskit__dtls_ssl_setup(tlskit_conn *conn);
/* Retransmit when the DTLS timer expired: 0, or -1 when OpenSSL gave up (dtls.c). */
int tlskit__dtls_tick(tlskit_conn *conn);
/* The absolute time the DTLS timer expires (0: not running) (dtls.c). */
int64_t tlskit__dtls_timer_at(const tlskit_conn *conn);

/* Attach an SSL object for the role to a connection with an fd (conn.c). */
int tlskit__conn_setup(tlskit_conn *conn, int fd, int own_fd, int is_server);
/* Client-role settings of a new SSL (client.c). */
int tlskit__client_setup(tlskit_conn *conn);
/* The checks both connect calls start with (error cleared, host, port, a new
 * connection): 0, or -1 with the error set (client.c). */
int tlskit__connect_args(tlskit_conn *c, const char *host, const char *port);
/* Client role: ask for an OCSP staple when the config says so (ocsp.c). */
int tlskit__ocsp_client_setup(tlskit_conn *conn);
/* Fill conn->info after the handshake (info.c). */
void tlskit__info_collect(tlskit_conn *conn);
void tlskit__info_free(tlskit_conn *conn);
void tlskit__info_verify_text(tlskit_conn *conn);
/* The chain the peer sent, leaf first: how many, and the i-th (borrowed), also after a
 * failed client handshake (info_chain.c). */
int tlskit__peer_chain_num(const tlskit_conn *conn);
X509 *tlskit__peer_chain_at(const tlskit_conn *conn, int i);
/* Free the per-certificate details of conn->info (info_chain.c). */
void tlskit__chain_free(struct tlskit__peer_info *info);
/* A name from a certificate as printable text: bytes outside 0x21..0x7e, ',' and '\\'
 * become \xNN (info.c). */
void tlskit__escape_name(const unsigned char *in, int len, char *out, size_t outlen);
/* x's subjectAltNames as "DNS:a, IP:127.0.0.1" (malloc'ed; NULL: out of memory), and an
 * ASN1_TIME as a Unix time (0 if unreadable) (info.c). */
char *tlskit__sans_text(const X509 *x);
time_t tlskit__asn1_time(const ASN1_TIME *t);

/* What a connection was doing when it failed: the operations of conn_run(), and the
 * engine's idle deadline. */
enum tlskit__op { OP_HANDSHAKE, OP_READ, OP_WRITE, OP_SHUTDOWN, OP_IDLE, OP_PROXY };
/* "handshake with", "read from", ...: how messages name op, before the peer. */
const char *tlskit__conn_op_text(enum tlskit__op op);
/* Translate a failed SSL_* call (ssl_error from SSL_get_error) into the connection's
 * error, which makes it unusable, and leave OpenSSL's error queue empty (conn_fail.c). */
void tlskit__conn_fail(tlskit_conn *c, enum tlskit__op op, int ssl_error);
/* The connection's deadline for op passed: its error says so (the one place a timeout
 * is put into words). Returns -1 (conn_fail.c). */
int tlskit__conn_timeout(tlskit_conn *c, enum tlskit__op op);

/* One step of op on a plain (no TLS) connection, in the terms conn_run() judges an
 * SSL_* call by: 1 done (*n bytes for read/write; *written, as in write_records(), kept
 * across waits), else 0 with *ssl_error SSL_ERROR_WANT_READ / _WANT_WRITE,
 * SSL_ERROR_ZERO_RETURN (read: the peer's FIN, a clean end without TLS) or
 * SSL_ERROR_SYSCALL (c->io_errno says why) (plain.c). */
int tlskit__plain_step(tlskit_conn *c, enum tlskit__op op, void *buf, size_t len,
                       size_t *written, size_t *n, int *ssl_error);
/* The PROXY header before the handshake (proxy_recv.c), while c->prx is set: read it
 * (0 done, -1 failed, TLSKIT_WANT_READ; a blocking connection waits up to its deadline),
 * its deadline, its timeout (for the message), and the state freed. */
int tlskit__proxy_recv(tlskit_conn *c);
int64_t tlskit__proxy_deadline(const tlskit_conn *c);
int64_t tlskit__proxy_timeout_ms(const tlskit_conn *c);
void tlskit__proxy_free(tlskit_conn *c);

/* Server-role settings of a new SSL (server.c). */
void tlskit__server_setup(tlskit_conn *conn);

#endif
