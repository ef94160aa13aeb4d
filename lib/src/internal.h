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
#include <time.h>

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
/* Drain the queue too: 1 when one of its errors is an allocation failure (so that it is
 * not reported as bad input). */
int tlskit__ssl_oom(void);

/* ---- util.c: clock, deadlines, poll wait, file reader ---- */

/* Monotonic clock in milliseconds, and in microseconds (phase timings). */
int64_t tlskit__now_ms(void);
int64_t tlskit__now_us(void);
/* Wait for events on fd until the absolute deadline (0: none). 1 ready, 0 deadline
 * reached, -1 error (errno set). Retries on EINTR. */
int tlskit__wait_fd(int fd, short events, int64_t deadline);
/* Earliest of two absolute deadlines where 0 means none. */
int64_t tlskit__deadline_min(int64_t a, int64_t b);
/* Absolute deadline for a relative timeout in ms starting now (0 for none). */
int64_t tlskit__deadline_in(int64_t ms);

/* Read a whole (small) file into a NUL-terminated heap buffer; errors name the path. */
int tlskit__read_file(struct tlskit__err *err, const char *path, char **out, size_t *outlen);
/* Read a secret file (at most cap - 1 bytes) into buf: refused unless it is a regular
 * file unreadable by group and others (and, with must_own, owned by the effective
 * user). Errors name what ("ticket key file"), the path and which check failed. The
 * caller wipes buf. */
int tlskit__read_private_file(struct tlskit__err *err, const char *what, const char *path,
                              int must_own, unsigned char *buf, size_t cap, size_t *outlen);

/* One certificate chain and its key, as added (keypair.c); SNI chooses among them by the
 * DNS names of the leaf (sni.c). */
struct tlskit__keypair {
    X509 *leaf;
    STACK_OF(X509) *chain;
    EVP_PKEY *pkey;
    int type;          /* EVP_PKEY base id: a handshake may carry one key of each type */
    char **names;      /* the leaf's DNS SANs, lower case */
    size_t nnames;
    char *subject;     /* the leaf's subject, RFC 2253 */
    unsigned char *ocsp; /* the OCSP response stapled for the leaf (DER), NULL: none */
    size_t ocsp_len;
    time_t ocsp_next;  /* its nextUpdate (0: none): not stapled from then on */
};

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
    char trust_first[200];     /* the first explicit CA source, for messages ("the CA
                                * file ca.crt"); trust_more: how many came after it */
    int trust_more;
    int has_keypair;           /* nkeypairs > 0 */
    struct tlskit__keypair *keypairs; /* in the order added; [0] is the default */
    size_t nkeypairs;
    int sni_strict;            /* refuse a client whose SNI matches no keypair */
    int sni_ctx_stale;         /* the SSL_CTX holds a key outside the default group */
    unsigned sni_ctx_types;    /* key types installed in the SSL_CTX (sni.c) */
    int no_ca_names;           /* server: leave certificate_authorities out */
    STACK_OF(X509_NAME) *ca_names; /* subjects of the CAs added from files or memory */
    unsigned char *alpn;       /* ALPN list, wire format (length-prefixed names) */
    size_t alpn_len;
    int64_t timeouts[5];       /* TLSKIT_TIMEOUT_*, ms, 0 none */
    int rcvbuf, sndbuf;
    int nodelay;
    int keepalive, ka_idle, ka_interval, ka_count;
    struct tlskit__tickets *tickets; /* session-ticket keys (tickets.c) */
    unsigned char (*pins)[32]; /* client role: SHA-256 of the accepted server keys */
    size_t npins;
    struct tlskit__ident *allowed; /* server role: the client identities accepted */
    size_t nallowed;
    int keylog_fd;             /* the key log (keylog.c), -1 when off */
    int ocsp_mode;             /* client role: TLSKIT_OCSP_OFF/_REQUEST/_REQUIRE (ocsp.c) */
    /* DTLS (dtls.c): a config made by tlskit_config_new_dtls() */
    int dtls;
    int mtu;                   /* UDP payload bytes a datagram may carry */
    int64_t dtls_first_ms, dtls_max_ms; /* retransmission timer: first delay, cap */
    int64_t cookie_secs;       /* a cookie's time bucket */
    unsigned char cookie_key[32];
    tlskit_trace_fn trace_fn;  /* the handshake trace (trace.c), NULL when off */
    void *trace_arg;
};

tlskit_config *tlskit__config_ref(tlskit_config *cfg);
/* A config over an SSL_CTX of method, its protocol range min..max (OpenSSL's
 * *_VERSION); tlskit_config_new() is TLS_method() with TLS 1.2..1.3 (config.c). */
tlskit_config *tlskit__config_new_method(const SSL_METHOD *method, int min, int max);
/* Start of every config setter: 0, or -1 with the config's error set when the config is
 * in use (frozen) (config.c). */
int tlskit__config_settable(tlskit_config *cfg);
/* The same, and arg (a file name or data, named by what: "CA data") is given. */
int tlskit__config_args(tlskit_config *cfg, const void *arg, const char *what);
/* A _file setter over its _mem work: the checks above, the whole file read, then
 * add(cfg, path, contents) with the path as the label errors name (config.c). */
int tlskit__config_add_file(tlskit_config *cfg, const char *path, const char *what,
                            int (*add)(tlskit_config *cfg, const char *label, const void *buf,
                                       size_t len));
/* A _mem setter over the same work: the checks above (what names the data), then
 * add(cfg, label, buf, len) (config.c). */
int tlskit__config_add_mem(tlskit_config *cfg, const void *buf, size_t len, const char *what,
                           const char *label,
                           int (*add)(tlskit_config *cfg, const char *label, const void *buf,
                                      size_t len));
/* Parse every PEM certificate in buf: the count, or -1 with err naming label and the
 * reason. leaf (may be NULL) gets the first, chain the others or all (keypair.c). */
int tlskit__parse_certs(struct tlskit__err *err, const char *label, const void *buf,
                        size_t len, X509 **leaf, STACK_OF(X509) **chain);
/* The keypairs: free them all (keypair.c). */
void tlskit__keypairs_free(tlskit_config *cfg);
/* Install the default keypairs (the first and, for other key types, those sharing its
 * first DNS name) in the SSL_CTX, and the SNI callback that picks the others (sni.c).
 * 0, or -1 with the config's error set. */
int tlskit__sni_install(tlskit_config *cfg);
/* The index of the keypair whose leaf is x, or -1 (sni.c). */
int tlskit__sni_index(const tlskit_config *cfg, const X509 *x);
/* The subject, in RFC 2253 form, of an X509 name; malloc'ed, NULL when out of memory
 * (info.c). */
char *tlskit__name_text(const X509_NAME *name);
/* SSL_CTX client-certificate callback of the client role (client.c). */
int tlskit__client_cert_cb(SSL *ssl, X509 **x509, EVP_PKEY **pkey);
/* Make the config ready for a connection (loads the default trust store when no CA was
 * set). Thread-safe. */
int tlskit__config_prepare(tlskit_config *cfg, struct tlskit__err *err);

/* ---- The handshake trace (trace.c) ---- */
/* tlskit_trace_format(), with ssl (may be NULL) to name the cipher of a ServerHello. */
size_t tlskit__trace_format(char *out, size_t outlen, int sent, int content_type, int version,
                            const void *buf, size_t len, SSL *ssl);

/* ---- Session-ticket keys (tickets.c) ---- */
/* The key store of a new config, its callback installed on ctx. NULL when out of memory. */
struct tlskit__tickets *tlskit__tickets_new(SSL_CTX *ctx);
void tlskit__tickets_free(struct tlskit__tickets *t);
/* Reload: the new config's automatic keys take over the old config's, so tickets issued
 * before the reload still resume. Nothing when either uses key files. */
void tlskit__tickets_carry(struct tlskit__tickets *to, struct tlskit__tickets *from);
/* ---- Checks on the peer's certificate (verify.c) ---- */
/* Remember a CA source for verification messages: what ("CA file") and name (a path,
 * or NULL). */
void tlskit__trust_note(tlskit_config *cfg, const char *what, const char *name);
/* SSL_set_verify()'s callback: on the first failure, keeps for the message what would
 * help (the issuer not found and the trust store searched, or the names a certificate
 * has that did not match). */
int tlskit__verify_cb(int ok, X509_STORE_CTX *x);
#define TK_MAX_ALLOWED 256
#define TK_IDENT_MAX 255
enum tlskit__ident_kind { TK_ID_NONE = 0, TK_ID_DNS, TK_ID_URI, TK_ID_EMAIL, TK_ID_CN,
                          TK_ID_SPKI };
/* One allow-list entry: "dns:NAME" ... value (owned) for the names, md for spki. */
struct tlskit__ident {
    enum tlskit__ident_kind kind;
    char *value;
    unsigned char md[32];
};
/* Parse one "kind:value" identity into out (value allocated): 0, or -1 with err. */
int tlskit__ident_parse(struct tlskit__err *err, const char *text, struct tlskit__ident *out);
void tlskit__allowed_free(tlskit_config *cfg);
#define TK_SPKI_TEXT (8 + 44 + 1) /* "sha256//" + base64 of 32 bytes + NUL */
/* SHA-256 of x's DER SubjectPublicKeyInfo (what curl's --pinnedpubkey hashes): 0 or -1. */
int tlskit__spki_sha256(const X509 *x, unsigned char md[32]);
/* md as "sha256//BASE64". */
void tlskit__spki_text(const unsigned char md[32], char out[TK_SPKI_TEXT]);
/* Parse "sha256//BASE64[;sha256//BASE64...]": 0 with a new array of *count hashes in
 * *out (the caller frees it), or -1 with err naming the bad entry. */
int tlskit__pins_parse(struct tlskit__err *err, const char *text, unsigned char (**out)[32],
                       size_t *count);

/* ---- Sockets (socket.c) ---- */
#define TK_MAX_LISTEN 16
#define TK_DEFAULT_BACKLOG 511
#define TK_LISTEN_PORT_TRIES 8 /* port 0 on several addresses: new ports to try */

void tlskit__socket_apply_options(const tlskit_config *cfg, int fd);
void tlskit__format_addr(const struct sockaddr *sa, char *buf, size_t len);
/* A port is a decimal 0..65535 or a service name; errors name the operation. */
int tlskit__check_port(struct tlskit__err *err, const char *op, const char *port);
/* getaddrinfo() for a TCP connection to host and port (a number, or a service name):
 * 0 with *res (the caller's, for freeaddrinfo()), or getaddrinfo()'s error (*res NULL;
 * with EAI_SYSTEM, errno says why) (socket.c). */
struct addrinfo;
int tlskit__lookup_tcp(const char *host, const char *port, struct addrinfo **res);
/* A client we will not serve (too many, no resources): a fatal internal_error alert
 * (RFC 8446 section 6.2: a resource we lack, nothing the client did) in a plaintext
 * record, which a client reads where it expects the ServerHello; sent without waiting (a
 * fresh socket takes 7 bytes; if not, the close is all the client gets) (socket.c). */
void tlskit__send_refusal(int fd);
/* Resolve host and connect to each address in turn within the CONNECT deadline.
 * *resolved_us gets tlskit__now_us() when resolving ended (also when it failed). */
int tlskit__connect(tlskit_config *cfg, struct tlskit__err *err, const char *host,
                    const char *port, char *peer, size_t peerlen, int64_t *resolved_us);

/* The listening sockets of one host/port: every address host resolves to, one port. */
struct tlskit__listen_set {
    int fds[TK_MAX_LISTEN];
    size_t nfds;
    int port;
    char addrs[TK_MAX_LISTEN * (TK_ADDRLEN + 2)]; /* "127.0.0.1:4433, [::1]:4433" */
};
/* reuseport: 0 none; JOIN: join the SO_REUSEPORT group on that port; FIRST: first
 * socket of a group (checks that nobody else listens on the port). */
#define TLSKIT__REUSEPORT_JOIN 1
#define TLSKIT__REUSEPORT_FIRST 2
/* Or'ed into tlskit__listener_listen()'s reuseport: for plain connections (an engine
 * with tlskit_engine_set_plain()), so no certificate is needed. */
#define TLSKIT__LISTEN_PLAIN 4
/* Listen as tlskit_listener_listen() describes; out is filled on success. */
int tlskit__listen(struct tlskit__err *err, const tlskit_config *cfg, const char *host,
                   const char *port, int backlog, int reuseport, struct tlskit__listen_set *out);
void tlskit__listen_close(struct tlskit__listen_set *set);
/* Are these n descriptors listening TCP sockets? 0, or -1 with err naming the first that
 * is not, and why. */
int tlskit__listen_check(struct tlskit__err *err, const int *fds, size_t n);
/* Take n listening TCP sockets made elsewhere into out (checked, made non-blocking and
 * close-on-exec); on failure nothing is taken. */
int tlskit__listen_adopt(struct tlskit__err *err, const int *fds, size_t n,
                         struct tlskit__listen_set *out);
/* accept4() of a non-blocking, close-on-exec socket, with the one errno policy of the
 * library: a signal or a client that left already is retried at once. Returns the fd,
 * or -1 with *why = 0 when no client is pending, else the errno. */
int tlskit__accept(int lfd, struct sockaddr_storage *ss, int *why);
/* The accept errors that mean "out of descriptors or memory": the client stays queued,
 * and accepting again at once would fail again. */
int tlskit__accept_out_of_fds(int why);

/* ---- PROXY protocol, the receiving side (proxy.c: the parser; proxy_recv.c: who may
 * send it, and reading a connection's header before TLS) ---- */
/* One trusted prefix: family AF_INET or AF_INET6, the address, the prefix length. */
struct tlskit__cidr {
    int family;
    int bits;
    unsigned char addr[16];
};
/* A listener's or an engine's setting: copied into nothing, read at every accept. */
struct tlskit__proxy_policy {
    int on;
    int64_t timeout_ms;        /* the header's deadline from accept */
    size_t nfrom;              /* 0: loopback only */
    struct tlskit__cidr from[TLSKIT_PROXY_MAX_FROM];
};
/* CRC-32C (Castagnoli) of buf, as PP2_TYPE_CRC32C carries it (proxy.c). */
uint32_t tlskit__crc32c(const void *buf, size_t len);
/* The setters' work, on the policy of a listener or an engine: 0, or -1 with err. */
int tlskit__proxy_set(struct tlskit__err *err, struct tlskit__proxy_policy *p, int on,
                      int64_t timeout_ms);
int tlskit__proxy_add_from(struct tlskit__err *err, struct tlskit__proxy_policy *p,
                           const char *cidr);
/* An accepted connection whose first bytes must be a PROXY header (when p->on): its
 * deadline starts now, and a peer outside p's senders is marked to fail at the first
 * handshake step. 0, or -1 when out of memory (the connection is left as it was). */
int tlskit__proxy_arm(tlskit_conn *c, const struct tlskit__proxy_policy *p,
                      const struct sockaddr *peer);

/* ---- Listeners (server.c) ---- */
/* tlskit_listener_adopt_fds() without the public checks' clearing of the error. */
int tlskit__listener_adopt(tlskit_listener *l, const int *fds, size_t n);
/* Listen on l with SO_REUSEPORT as given (the engine's workers share one port). */
int tlskit__listener_listen(tlskit_listener *l, const char *host, const char *port, int backlog,
                            int reuseport);
/* A server-role connection over an accepted socket (closed on failure). */
tlskit_conn *tlskit__conn_accepted(tlskit_config *cfg, int fd, const struct sockaddr *sa,
                              struct tlskit__err *err);

/* ---- The connection seam for the engine (conn.c) ----
 * The engine drives a connection only through these calls and the public API; the
 * connection's body is private to the connection layer (conn.h). */
struct tlskit__econn; /* the engine's state of one connection (engine.h) */

/* Put an accepted connection under the engine: non-blocking, partial writes, record
 * buffers released while idle, the handshake deadline armed now, ec attached. */
void tlskit__conn_engine_attach(tlskit_conn *c, struct tlskit__econn *ec);
/* The engine state, or NULL for a connection outside the engine. */
struct tlskit__econn *tlskit__conn_engine(const tlskit_conn *c);
/* Free a connection the engine is done with (detaches it first). */
void tlskit__conn_engine_free(tlskit_conn *c);
/* While on, every send is held back (MSG_MORE) so that several writes leave as one
 * segment; tlskit__conn_push() sends what is held. Not before the connection has sent
 * anything: its first flight goes alone. */
void tlskit__conn_cork(tlskit_conn *c, int on);
void tlskit__conn_push(tlskit_conn *c);
/* End a connection cleanly without waiting: close_notify when the handshake completed
 * and nothing failed, and the FIN in the same segment. */
void tlskit__conn_finish(tlskit_conn *c);
/* The connection's own deadlines at `now`: 1 when the handshake or the idle deadline has
 * passed (the connection then has failed with TLSKIT_E_TIMEOUT and the one timeout
 * text), else 0. */
int tlskit__conn_expired(tlskit_conn *c, int64_t now);
const tlskit_config *tlskit__conn_config(const tlskit_conn *c);
/* The I/O calls without the engine dispatch of the public ones (which, on an engine
 * connection, queue and close through the engine). Same returns as the public calls. */
int tlskit__conn_handshake(tlskit_conn *c);
ssize_t tlskit__conn_read(tlskit_conn *c, void *buf, size_t len);
ssize_t tlskit__conn_write(tlskit_conn *c, const void *buf, size_t len);

/* The engine saw the socket readable (EPOLLIN, RDHUP, HUP or ERR): the next read tries
 * recv() again. Until then, after a recv() that found the socket empty, an engine
 * connection's reads say WANT_READ without a system call: under edge-triggered epoll,
 * anything that arrives later raises an event first (conn.c). */
void tlskit__conn_readable(tlskit_conn *c);
/* Send close_notify (TLS) or the FIN (plain) without waiting: 0, -1 or WANT. */
int tlskit__conn_shutdown(tlskit_conn *c);
/* Connections the engine makes (plain.c). A plain one (no TLS) over fd, accepted
 * (sa: the peer; server role) or outbound (sa NULL: client role, the peer named by
 * tlskit__conn_set_peer()); closed on failure (NULL, err set). */
tlskit_conn *tlskit__conn_plain_new(tlskit_config *cfg, int fd, const struct sockaddr *sa,
                                    struct tlskit__err *err);
/* An outbound TLS client over fd (connecting): SNI and the name checked are servername.
 * 0, or -1 with the connection's error set (fd is then the caller's). */
int tlskit__conn_client_setup(tlskit_conn *c, int fd, const char *servername);
/* The socket changed (connecting: the next address). */
void tlskit__conn_set_fd(tlskit_conn *c, int fd);
void tlskit__conn_set_peer(tlskit_conn *c, const char *peer);
/* Connected: the age and the idle deadline count from now. */
void tlskit__conn_connected(tlskit_conn *c);
/* Set the connection's error (a failure found outside the connection layer). */
void tlskit__conn_err(tlskit_conn *c, int code, const char *msg);
/* 1 for a plain connection. */
int tlskit__conn_is_plain(const tlskit_conn *c);
/* ---- The datagram seam for the engine (dtls.c) ---- */
/* 1 when the connection is DTLS (its fd may be a socket shared with others). */
int tlskit__conn_is_dtls(const tlskit_conn *c);
/* Hand the connection one datagram to read (NULL: take back what it did not read). The
 * buffer must stay valid until then. */
void tlskit__conn_dgram_feed(tlskit_conn *c, const void *buf, size_t len);
/* Retransmissions and dropped sends since the last call (then zeroed). */
void tlskit__conn_dtls_counts(tlskit_conn *c, uint64_t *retransmits, uint64_t *drops);
/* The stateless listener of one engine worker: a server-role DTLS connection that runs
 * DTLSv1_listen() over each datagram from an unknown peer (NULL: out of memory). */
tlskit_conn *tlskit__dtls_listener_new(tlskit_config *cfg);
enum tlskit__listen_result { TK_LISTEN_DROP = 0, TK_LISTEN_HVR, TK_LISTEN_BAD_COOKIE,
                             TK_LISTEN_OK };
/* One datagram from peer on socket fd through the listener: DROP (not a ClientHello,
 * malformed: nothing sent), HVR (no cookie: a HelloVerifyRequest went back), BAD_COOKIE
 * (a cookie that does not verify: a fresh HelloVerifyRequest went back), OK (a verified
 * cookie: lc is now that peer's association, its ClientHello buffered; make a new
 * listener). Nothing is kept for any result but OK. */
enum tlskit__listen_result tlskit__dtls_listen(tlskit_conn *lc, int fd, const struct sockaddr *peer,
                                               socklen_t peerlen, const void *buf, size_t len);
/* 1 when buf is an epoch-0 DTLS handshake record starting a ClientHello; *random (may be
 * NULL) then points at its 32-byte client random. */
int tlskit__dtls_client_hello(const unsigned char *buf, size_t len, const unsigned char **random);

/* ---- What the connection layer asks of the engine (engine_conn.c) ---- */
/* Queue bytes on an engine connection: 0, or -1 (closing, or the write limit). */
int tlskit__engine_write(tlskit_conn *c, const void *data, size_t len);
/* Close an engine connection once its queued output is sent. */
void tlskit__engine_close(tlskit_conn *c);
/* Send close_notify (or the FIN) once the queued output is sent; reading goes on. */
void tlskit__engine_shutdown(tlskit_conn *c);
/* End an engine connection now, without close_notify (on_close gets TLSKIT_E_CLOSED). */
void tlskit__engine_abort(tlskit_conn *c, const char *why);
/* Stop (on) or resume (0) reading from an engine connection. */
void tlskit__engine_hold(tlskit_conn *c, int on);
/* Bytes queued on an engine connection and not yet taken by the socket. */
size_t tlskit__engine_pending(const tlskit_conn *c);
/* The worker's staging buffer, where the socket BIO gathers the records of one write
 * call of one connection to send them with one sendmsg() (bio.c). */
#define TK_STAGE_CAP (256 * 1024)
struct tlskit__stage {
    const tlskit_conn *owner;  /* whose records wait in buf (len > 0) */
    size_t len;
    unsigned char buf[TK_STAGE_CAP];
};
struct tlskit__stage *tlskit__engine_stage(const tlskit_conn *c);

#endif
