/*
 * tlskit: TLS over TCP sockets, as simple as plain sockets.
 *
 * One header, opaque objects:
 *   tlskit_config    settings -> an OpenSSL context; build it once, then share it
 *                    read-only across threads and connections.
 *   tlskit_listener  one or more listening sockets (e.g. "localhost" on 127.0.0.1 and ::1).
 *   tlskit_conn      one TLS session over one TCP socket, client or server role.
 *
 * Conventions (all functions):
 *   - Return 0 on success and -1 on failure (byte counts for I/O), or one of
 *     TLSKIT_WANT_READ / TLSKIT_WANT_WRITE on a non-blocking connection.
 *   - After a failure, tlskit_*_error(obj) gives a message owned by the object
 *     ("handshake with 127.0.0.1:4433: certificate verify failed: certificate has expired")
 *     and tlskit_*_error_code(obj) its class (TLSKIT_E_*). Both stay valid until the
 *     next call on that object. Each call clears the previous error first; with no error
 *     the message is "" (never NULL) and the class TLSKIT_E_NONE.
 *   - Setters copy their input. Getters return pointers owned by the object, valid until
 *     the object changes or is freed. _free(NULL) is a no-op.
 *   - The library never prints, never exits, never installs signal handlers and never
 *     raises SIGPIPE in the calling process.
 *   - Secure by default: TLS 1.2 minimum, peer certificate and host name verified by
 *     clients, renegotiation off. Weakening takes a call with "insecure" in its name.
 */
#ifndef TLSKIT_TLSKIT_H
#define TLSKIT_TLSKIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TLSKIT_API __attribute__((visibility("default")))
#else
#define TLSKIT_API
#endif

#define TLSKIT_VERSION_MAJOR 0
#define TLSKIT_VERSION_MINOR 1
#define TLSKIT_VERSION_PATCH 0
#define TLSKIT_VERSION_STRING "0.1.0"

/* Library version string at run time (may differ from TLSKIT_VERSION_STRING if the
 * shared library was upgraded), e.g. "tlskit 0.1.0 (OpenSSL 3.0.19 27 Jan 2026)". */
TLSKIT_API const char *tlskit_version(void);

/* ---------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------- */

/* Error classes. XX(name, value, short description). Tests and callers branch on these,
 * never on message text. */
#define TLSKIT_ERROR_MAP(XX)                                                        \
    XX(NONE, 0, "no error")                                                         \
    XX(INVALID, 1, "invalid argument or call out of order")                         \
    XX(NOMEM, 2, "out of memory")                                                   \
    XX(FILE, 3, "file missing, unreadable or malformed")                            \
    XX(CONFIG, 4, "invalid configuration")                                          \
    XX(RESOLVE, 5, "host name resolution failed")                                   \
    XX(CONNECT, 6, "could not connect")                                             \
    XX(LISTEN, 7, "could not listen")                                               \
    XX(TIMEOUT, 8, "deadline reached")                                              \
    XX(VERIFY, 9, "certificate verification failed")                                \
    XX(PROTOCOL, 10, "TLS protocol error")                                          \
    XX(TRUNCATED, 11, "peer closed without close_notify")                           \
    XX(CLOSED, 12, "connection closed")                                             \
    XX(IO, 13, "socket I/O error")

enum tlskit_error_code {
#define TLSKIT_XX_(name, val, desc) TLSKIT_E_##name = val,
    TLSKIT_ERROR_MAP(TLSKIT_XX_)
#undef TLSKIT_XX_
};

/* "TLSKIT_E_TIMEOUT" for TLSKIT_E_TIMEOUT, "TLSKIT_E_UNKNOWN" for anything else. */
TLSKIT_API const char *tlskit_error_name(int code);
/* The short description from TLSKIT_ERROR_MAP. */
TLSKIT_API const char *tlskit_error_description(int code);

/* Returned by non-blocking I/O: wait for the socket to become readable / writable and
 * call the same function again. Both are negative and distinct from -1. */
#define TLSKIT_WANT_READ (-2)
#define TLSKIT_WANT_WRITE (-3)

/* poll(2) events (POLLIN or POLLOUT) to wait for after a call returned `ret`;
 * 0 when `ret` is not a WANT value. */
TLSKIT_API short tlskit_want_events(ssize_t ret);

/* ---------------------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------------------- */

typedef struct tlskit_config tlskit_config;

/* A new configuration with secure defaults. NULL only when out of memory.
 * Thread rules: configure it from one thread; once connections use it, it may be shared
 * by any number of threads, but must not be changed while in use. It is reference
 * counted: every listener and connection made from it holds a reference, so
 * tlskit_config_free() may be called as soon as the caller no longer needs it. */
TLSKIT_API tlskit_config *tlskit_config_new(void);
TLSKIT_API void tlskit_config_free(tlskit_config *cfg);
TLSKIT_API const char *tlskit_config_error(const tlskit_config *cfg);
TLSKIT_API int tlskit_config_error_code(const tlskit_config *cfg);

/* Certificate chain (leaf first, then intermediates; PEM) and its private key (PEM).
 * Fails with TLSKIT_E_FILE naming the file when it is missing, unreadable or malformed,
 * and with TLSKIT_E_CONFIG when the key does not match the certificate or is too weak
 * for the security level (e.g. RSA-1024 at OpenSSL's default level 2). */
TLSKIT_API int tlskit_config_set_keypair_file(tlskit_config *cfg, const char *cert_file,
                                              const char *key_file);
TLSKIT_API int tlskit_config_set_keypair_mem(tlskit_config *cfg, const void *cert,
                                             size_t cert_len, const void *key, size_t key_len);

/* Trust anchors for verifying the peer. Without any of these calls, the system default
 * trust store is used. Each call adds to the trust store. */
TLSKIT_API int tlskit_config_set_ca_file(tlskit_config *cfg, const char *ca_file);
TLSKIT_API int tlskit_config_set_ca_dir(tlskit_config *cfg, const char *ca_dir);
TLSKIT_API int tlskit_config_set_ca_mem(tlskit_config *cfg, const void *ca, size_t len);
/* Add the system default trust store (also when a CA was set). */
TLSKIT_API int tlskit_config_use_system_ca(tlskit_config *cfg);

/* Client role: do not verify the server's certificate chain / host name.
 * Loudly insecure: anyone on the path can impersonate the server. */
TLSKIT_API void tlskit_config_insecure_noverifycert(tlskit_config *cfg);
TLSKIT_API void tlskit_config_insecure_noverifyname(tlskit_config *cfg);

/* Server role: ask clients for a certificate and verify it against the CA settings.
 * REQUIRED rejects clients without one; OPTIONAL accepts them (but still rejects a
 * certificate that is presented and does not verify). */
enum tlskit_verify_client { TLSKIT_VERIFY_CLIENT_NONE = 0, TLSKIT_VERIFY_CLIENT_OPTIONAL = 1,
                            TLSKIT_VERIFY_CLIENT_REQUIRED = 2 };
TLSKIT_API int tlskit_config_set_verify_client(tlskit_config *cfg, int mode);

/* Protocol range. Only TLS 1.2 and TLS 1.3 are offered; the default is 1.2 to 1.3. */
#define TLSKIT_TLS1_2 0x0303
#define TLSKIT_TLS1_3 0x0304
TLSKIT_API int tlskit_config_set_protocols(tlskit_config *cfg, int min_version,
                                           int max_version);
/* "1.2", "1.3", "tls1.2", "TLSv1.3" -> TLSKIT_TLS1_x; -1 if unknown or not allowed. */
TLSKIT_API int tlskit_protocol_parse(const char *text);

/* OpenSSL cipher strings: TLS 1.2 cipher list, TLS 1.3 cipher suites, key-exchange
 * groups ("X25519:P-256"). Fail with TLSKIT_E_CONFIG when nothing usable remains. */
TLSKIT_API int tlskit_config_set_ciphers(tlskit_config *cfg, const char *tls12_ciphers);
TLSKIT_API int tlskit_config_set_ciphersuites(tlskit_config *cfg, const char *tls13_suites);
TLSKIT_API int tlskit_config_set_groups(tlskit_config *cfg, const char *groups);

/* Deadlines in milliseconds; 0 (the default) means none.
 * CONNECT   TCP connect, all resolved addresses together.
 * HANDSHAKE the whole TLS handshake, as a total (a peer sending one byte a second is
 *           still cut off when it expires).
 * READ      one blocking read waiting for data.
 * WRITE     one blocking write waiting for the peer to take data.
 * IDLE      no byte in either direction for this long ends blocking reads and writes. */
enum tlskit_timeout { TLSKIT_TIMEOUT_CONNECT = 0, TLSKIT_TIMEOUT_HANDSHAKE = 1,
                      TLSKIT_TIMEOUT_READ = 2, TLSKIT_TIMEOUT_WRITE = 3,
                      TLSKIT_TIMEOUT_IDLE = 4 };
TLSKIT_API int tlskit_config_set_timeout(tlskit_config *cfg, int which, int64_t ms);

/* Socket options applied to every socket made or accepted with this config.
 * 0 keeps the kernel default buffer size. TCP_NODELAY is on by default. */
TLSKIT_API int tlskit_config_set_buffer_sizes(tlskit_config *cfg, int rcvbuf, int sndbuf);
TLSKIT_API void tlskit_config_set_nodelay(tlskit_config *cfg, int on);
/* TCP keepalive: idle seconds before probes, seconds between probes, probe count
 * (0 keeps the kernel default for that value). */
TLSKIT_API int tlskit_config_set_keepalive(tlskit_config *cfg, int on, int idle_s,
                                           int interval_s, int count);

/* Escape hatch: the underlying OpenSSL SSL_CTX (struct ssl_ctx_st *), owned by the
 * config. Changes made through it are the caller's responsibility. */
struct ssl_ctx_st;
TLSKIT_API struct ssl_ctx_st *tlskit_config_ssl_ctx(tlskit_config *cfg);

/* ---------------------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------------------- */

typedef struct tlskit_conn tlskit_conn;

/* A new, unconnected connection using cfg (a reference is taken). NULL only when out of
 * memory. A connection is used by one thread at a time. */
TLSKIT_API tlskit_conn *tlskit_conn_new(tlskit_config *cfg);
/* Closes the socket if the library opened it (connect, accept); sends nothing.
 * Call tlskit_conn_close() first for a clean close_notify. */
TLSKIT_API void tlskit_conn_free(tlskit_conn *conn);
TLSKIT_API const char *tlskit_conn_error(const tlskit_conn *conn);
TLSKIT_API int tlskit_conn_error_code(const tlskit_conn *conn);

/* Client role. Server name sent as SNI and checked against the certificate; defaults to
 * the host given to tlskit_conn_connect() (an IP address is checked against IP SANs and
 * sent without SNI). */
TLSKIT_API int tlskit_conn_set_servername(tlskit_conn *conn, const char *name);
/* Resolve host, connect to each address in turn within the CONNECT deadline. Does not
 * handshake (call tlskit_conn_handshake(), or the first read/write does it).
 * Errors: TLSKIT_E_RESOLVE, TLSKIT_E_CONNECT, TLSKIT_E_TIMEOUT. */
TLSKIT_API int tlskit_conn_connect(tlskit_conn *conn, const char *host, const char *port);

/* Wrap an already-connected socket (what Python's wrap_socket does). The caller keeps
 * ownership of fd: neither tlskit_conn_close() nor tlskit_conn_free() closes it, and its
 * flags are never changed. The connection starts non-blocking when fd has O_NONBLOCK set.
 * servername is sent as SNI and verified; NULL is accepted only when host-name checks
 * were turned off with tlskit_config_insecure_noverifyname() (TLSKIT_E_INVALID
 * otherwise). */
TLSKIT_API int tlskit_conn_wrap_client(tlskit_conn *conn, int fd, const char *servername);
TLSKIT_API int tlskit_conn_wrap_server(tlskit_conn *conn, int fd);

/* Switch between blocking (the library waits, honouring deadlines, and never returns
 * WANT) and non-blocking behaviour (calls return TLSKIT_WANT_READ/WRITE). */
TLSKIT_API int tlskit_conn_set_nonblocking(tlskit_conn *conn, int on);

/* Run the handshake. 0 when complete (further calls return 0 at once), -1 on failure,
 * WANT on a non-blocking connection. Honours the HANDSHAKE deadline as a total.
 * Errors: TLSKIT_E_VERIFY (our check of the peer failed, or the peer rejected our
 * certificate), TLSKIT_E_PROTOCOL, TLSKIT_E_TIMEOUT, TLSKIT_E_IO (e.g. reset),
 * TLSKIT_E_CLOSED (the peer closed the connection during the handshake).
 * After a failure the connection is unusable: further calls fail with the same error. */
TLSKIT_API int tlskit_conn_handshake(tlskit_conn *conn);

/* Read up to len bytes: > 0 bytes read; 0 when the peer closed cleanly (close_notify);
 * -1 on error (TLSKIT_E_TRUNCATED when the peer closed without close_notify);
 * WANT on a non-blocking connection. */
TLSKIT_API ssize_t tlskit_conn_read(tlskit_conn *conn, void *buf, size_t len);
/* Write up to len bytes: > 0 bytes written (all of them unless non-blocking), -1 on error,
 * WANT on a non-blocking connection (call again with the same arguments). */
TLSKIT_API ssize_t tlskit_conn_write(tlskit_conn *conn, const void *buf, size_t len);
/* Write all len bytes, waiting as needed (also on a non-blocking connection, within the
 * WRITE deadline). 0 or -1. */
TLSKIT_API int tlskit_conn_write_all(tlskit_conn *conn, const void *buf, size_t len);

/* Send close_notify and stop writing; reading remains possible until the peer closes
 * (TLS half-close). 0, -1, or WANT. */
TLSKIT_API int tlskit_conn_shutdown(tlskit_conn *conn);
/* Send close_notify if not yet sent, then close the socket (if the library owns it).
 * Never waits for the peer's close_notify; waits for the socket to take our close_notify
 * at most the WRITE deadline, or 5 s when none is set. 0 or -1 (closed either way). */
TLSKIT_API int tlskit_conn_close(tlskit_conn *conn);

/* The socket, or -1. Still owned by the connection. */
TLSKIT_API int tlskit_conn_fd(const tlskit_conn *conn);
/* Milliseconds until the nearest deadline that applies to the connection's current
 * state (handshake, or idle), for a caller's poll(); -1 if none applies. */
TLSKIT_API int tlskit_conn_timeout_ms(const tlskit_conn *conn);

/* ---------------------------------------------------------------------------------------
 * Connection and peer details (valid after the handshake unless said otherwise)
 * ------------------------------------------------------------------------------------- */

/* "127.0.0.1:4433" / "[::1]:4433", valid once connected or accepted. */
TLSKIT_API const char *tlskit_conn_peer_addr(const tlskit_conn *conn);
TLSKIT_API int tlskit_conn_handshake_done(const tlskit_conn *conn);
TLSKIT_API const char *tlskit_conn_protocol(const tlskit_conn *conn);   /* "TLSv1.3" */
TLSKIT_API const char *tlskit_conn_cipher(const tlskit_conn *conn);     /* "TLS_AES_..." */
TLSKIT_API const char *tlskit_conn_group(const tlskit_conn *conn);      /* "X25519" */
/* Client: the name sent; server: the name received; NULL if none. */
TLSKIT_API const char *tlskit_conn_servername(const tlskit_conn *conn);
TLSKIT_API int tlskit_conn_session_reused(const tlskit_conn *conn);
TLSKIT_API uint64_t tlskit_conn_bytes_read(const tlskit_conn *conn);    /* plaintext */
TLSKIT_API uint64_t tlskit_conn_bytes_written(const tlskit_conn *conn); /* plaintext */

/* Peer certificate. tlskit_conn_peer_cert_provided() is 1 when the peer sent one.
 * Subject and issuer in RFC 2253 form; SANs as "DNS:localhost, IP:127.0.0.1";
 * fingerprint as "SHA256:AB:CD:..."; validity as Unix times (0 if no certificate). */
TLSKIT_API int tlskit_conn_peer_cert_provided(const tlskit_conn *conn);
TLSKIT_API const char *tlskit_conn_peer_cert_subject(const tlskit_conn *conn);
TLSKIT_API const char *tlskit_conn_peer_cert_issuer(const tlskit_conn *conn);
TLSKIT_API const char *tlskit_conn_peer_cert_sans(const tlskit_conn *conn);
TLSKIT_API const char *tlskit_conn_peer_cert_fingerprint(const tlskit_conn *conn);
TLSKIT_API time_t tlskit_conn_peer_cert_notbefore(const tlskit_conn *conn);
TLSKIT_API time_t tlskit_conn_peer_cert_notafter(const tlskit_conn *conn);
/* Verification result as text: "ok", "not verified (insecure)", "no certificate", or the
 * reason ("certificate has expired"). Valid after a handshake attempt. */
TLSKIT_API const char *tlskit_conn_verify_result(const tlskit_conn *conn);

/* ---------------------------------------------------------------------------------------
 * Listener (server role)
 * ------------------------------------------------------------------------------------- */

typedef struct tlskit_listener tlskit_listener;

/* A new listener using cfg (a reference is taken). NULL only when out of memory.
 * One thread at a time may call tlskit_listener_accept(). */
TLSKIT_API tlskit_listener *tlskit_listener_new(tlskit_config *cfg);
TLSKIT_API void tlskit_listener_free(tlskit_listener *l);
TLSKIT_API const char *tlskit_listener_error(const tlskit_listener *l);
TLSKIT_API int tlskit_listener_error_code(const tlskit_listener *l);

/* Listen on every address host resolves to (NULL or "" or "*": all IPv4 and IPv6
 * addresses; "localhost": 127.0.0.1 and ::1). port "0" picks a free port, the same one
 * for every address. SO_REUSEADDR is set; IPv6 sockets are IPv6-only. backlog <= 0 means
 * 511. Errors name the address: "listen on 127.0.0.1:4433: Address already in use". */
TLSKIT_API int tlskit_listener_listen(tlskit_listener *l, const char *host, const char *port,
                                      int backlog);
/* The bound port, or -1 when not listening. */
TLSKIT_API int tlskit_listener_port(const tlskit_listener *l);
/* The bound addresses as text, "127.0.0.1:4433, [::1]:4433". */
TLSKIT_API const char *tlskit_listener_addrs(const tlskit_listener *l);
/* The listening sockets (for a caller's own poll loop); *count receives their number. */
TLSKIT_API const int *tlskit_listener_fds(const tlskit_listener *l, size_t *count);

/* Wait up to timeout_ms (-1: forever) for a client and accept it. On success *out is a
 * new server-role connection (no handshake yet: call tlskit_conn_handshake(), usually
 * from the thread that serves it), owned by the caller. Errors: TLSKIT_E_TIMEOUT,
 * TLSKIT_E_IO (e.g. EMFILE: out of file descriptors; the pending client stays queued). */
TLSKIT_API int tlskit_listener_accept(tlskit_listener *l, tlskit_conn **out, int timeout_ms);
/* Close the listening sockets; a thread blocked in accept returns TLSKIT_E_CLOSED. */
TLSKIT_API void tlskit_listener_close(tlskit_listener *l);

/* ---------------------------------------------------------------------------------------
 * Generic error access: tlskit_error(obj) / tlskit_error_code(obj) for any object.
 * ------------------------------------------------------------------------------------- */
#if !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define tlskit_error(obj)                                            \
    _Generic((obj), tlskit_config *: tlskit_config_error,            \
             const tlskit_config *: tlskit_config_error,             \
             tlskit_conn *: tlskit_conn_error,                       \
             const tlskit_conn *: tlskit_conn_error,                 \
             tlskit_listener *: tlskit_listener_error,               \
             const tlskit_listener *: tlskit_listener_error)(obj)
#define tlskit_error_code(obj)                                       \
    _Generic((obj), tlskit_config *: tlskit_config_error_code,       \
             const tlskit_config *: tlskit_config_error_code,        \
             tlskit_conn *: tlskit_conn_error_code,                  \
             const tlskit_conn *: tlskit_conn_error_code,            \
             tlskit_listener *: tlskit_listener_error_code,          \
             const tlskit_listener *: tlskit_listener_error_code)(obj)
#endif

#ifdef __cplusplus
}
#endif
#endif /* TLSKIT_TLSKIT_H */
