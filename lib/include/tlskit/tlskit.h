/* SPDX-License-Identifier: MIT */
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

/* The version, in this one place (CMakeLists.txt reads these three lines). */
#define TLSKIT_VERSION_MAJOR 0
#define TLSKIT_VERSION_MINOR 1
#define TLSKIT_VERSION_PATCH 0
#define TLSKIT_STR_(x) #x
#define TLSKIT_XSTR_(x) TLSKIT_STR_(x)
#define TLSKIT_VERSION_STRING                                                        \
    TLSKIT_XSTR_(TLSKIT_VERSION_MAJOR) "." TLSKIT_XSTR_(TLSKIT_VERSION_MINOR) "."    \
    TLSKIT_XSTR_(TLSKIT_VERSION_PATCH)

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
    XX(IO, 13, "socket I/O error")                                                 \
    XX(LIMIT, 14, "resource limit reached")

enum tlskit_error_code {
#define TLSKIT_XX_(name, val, desc) TLSKIT_E_##name = val,
    TLSKIT_ERROR_MAP(TLSKIT_XX_)
#undef TLSKIT_XX_
};
/* The number of error classes (their values are 0 .. TLSKIT_E__COUNT - 1), derived from
 * the map: an array indexed by class, such as the engine's handshake_errors[], has this
 * many slots. */
enum {
#define TLSKIT_XX_(name, val, desc) +1
    TLSKIT_E__COUNT = 0 TLSKIT_ERROR_MAP(TLSKIT_XX_)
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
 * by any number of threads. It is reference counted: every listener, connection and
 * engine made from it holds a reference, so tlskit_config_free() may be called as soon
 * as the caller no longer needs it.
 * Frozen once in use: after the first tlskit_conn_new(), tlskit_listener_new(),
 * tlskit_listener_reload(), tlskit_engine_new() or tlskit_engine_reload() with it,
 * every setter below fails with TLSKIT_E_INVALID ("config in use: build a new one and
 * reload") and changes nothing. To change settings, build a new config and hand it to
 * tlskit_listener_reload() / tlskit_engine_reload(). Reading the error and
 * tlskit_config_ssl_ctx() stay available. */
TLSKIT_API tlskit_config *tlskit_config_new(void);
TLSKIT_API void tlskit_config_free(tlskit_config *cfg);
TLSKIT_API const char *tlskit_config_error(const tlskit_config *cfg);
TLSKIT_API int tlskit_config_error_code(const tlskit_config *cfg);

/* Certificate chain (leaf first, then intermediates; PEM) and its private key (PEM).
 * Fails with TLSKIT_E_FILE naming the file when it is missing, unreadable or malformed,
 * and with TLSKIT_E_CONFIG when the key does not match the certificate or is too weak
 * for the security level (e.g. RSA-1024 at OpenSSL's default level 2).
 * set_keypair replaces every keypair given before with this one; add_keypair adds one
 * more (see SNI below). A failed call adds nothing (out of memory, the config may be
 * left half-changed: build a new one). */
TLSKIT_API int tlskit_config_set_keypair_file(tlskit_config *cfg, const char *cert_file,
                                              const char *key_file);
TLSKIT_API int tlskit_config_set_keypair_mem(tlskit_config *cfg, const void *cert,
                                             size_t cert_len, const void *key, size_t key_len);

/* Server role, several certificates (SNI). Each call adds a keypair, as set_keypair
 * checks it; the first keypair of the config is the default. A client is served the
 * keypairs whose certificate has a DNS subjectAltName equal to the name it sends (SNI),
 * else those with a "*." wildcard name for it (one label: "*.example.org" matches
 * "www.example.org", not "example.org" or "a.b.example.org"), case-insensitively; the
 * subject's CN is not looked at. A client that sends no name (e.g. it connected to an
 * IP address) or a name no certificate has gets the default: the first keypair, together
 * with the keypairs of other key types that have its first DNS name. Keypairs of
 * different key types (ECDSA, RSA) for one name all go to the handshake, and OpenSSL
 * picks by the client's signature algorithms; of two with the same key type and name,
 * the first added wins. Same returns and errors as set_keypair. */
TLSKIT_API int tlskit_config_add_keypair_file(tlskit_config *cfg, const char *cert_file,
                                              const char *key_file);
TLSKIT_API int tlskit_config_add_keypair_mem(tlskit_config *cfg, const void *cert,
                                             size_t cert_len, const void *key, size_t key_len);
/* Server role: on (non-zero) refuses a client that sends no server name, or one that no
 * keypair has, with an unrecognized_name alert (RFC 6066) instead of serving the
 * default. Off by default. 0, or -1 when the config is in use. */
TLSKIT_API int tlskit_config_set_sni_strict(tlskit_config *cfg, int on);

/* Trust anchors for verifying the peer. Without any of these calls, the system default
 * trust store is used. Each call adds to the trust store: a PEM file of certificates, a
 * directory in OpenSSL's hashed layout (c_rehash; what the CLI calls --capath), or PEM in
 * memory.
 * A handshake that fails verification (TLSKIT_E_VERIFY) says what would help after
 * OpenSSL's reason: for a chain without a trust anchor, the issuer that was not found
 * and the store searched ("...: the issuer \"CN=My CA\" is not in the trust store (the
 * CA file ca.pem)", or "(the system trust store)"); for a name check, the name expected
 * and the names the certificate has ("...: expected \"example.com\", the certificate
 * has DNS:localhost, IP:127.0.0.1"). */
TLSKIT_API int tlskit_config_add_ca_file(tlskit_config *cfg, const char *ca_file);
TLSKIT_API int tlskit_config_add_ca_dir(tlskit_config *cfg, const char *ca_dir);
TLSKIT_API int tlskit_config_add_ca_mem(tlskit_config *cfg, const void *ca, size_t len);
/* Add the system default trust store (also when a CA was added). */
TLSKIT_API int tlskit_config_add_system_ca(tlskit_config *cfg);
/* Certificate revocation lists (PEM, one or more per file; each call adds). Once a CRL is
 * added, the peer's own certificate (a server's for a client, a client's for a server
 * with client verification) must be covered by a CRL of its issuer: a revoked one fails
 * the handshake with TLSKIT_E_VERIFY "... certificate verify failed: certificate
 * revoked", and one whose issuer has no CRL here fails with "unable to get certificate
 * CRL" (never mistaken for "not revoked"). An expired CRL fails as "CRL has expired".
 * Errors: TLSKIT_E_FILE naming the file (missing, unreadable, no or malformed PEM CRL).
 * 0, or -1 (also when the config is in use). */
TLSKIT_API int tlskit_config_add_crl_file(tlskit_config *cfg, const char *crl_file);
TLSKIT_API int tlskit_config_add_crl_mem(tlskit_config *cfg, const void *crl, size_t len);

/* Server role: OCSP stapling. The DER OCSP response (as `openssl ocsp -respout` writes
 * it) for the keypair added last (see tlskit_config_add_keypair_file()); a second call
 * replaces it. It is sent to clients that ask for certificate status when that keypair
 * is the one served, until its nextUpdate passes. It is checked when loaded: a response
 * for another certificate (the CertID's serial and issuer name hash are compared with
 * the leaf), one whose status is not `good`, or one that is not current is not stapled:
 * -1 with TLSKIT_E_CONFIG and why, the config still usable (a caller may warn and go on).
 * Data that is not a DER OCSP response fails with TLSKIT_E_FILE naming the file, and a
 * config without a keypair with TLSKIT_E_INVALID. On any failure the keypair has no
 * staple. 0, or -1 (also when the config is in use). */
TLSKIT_API int tlskit_config_set_ocsp_staple_file(tlskit_config *cfg, const char *der_file);
TLSKIT_API int tlskit_config_set_ocsp_staple_mem(tlskit_config *cfg, const void *der,
                                                 size_t len);

/* Client role: OCSP stapling. TLSKIT_OCSP_REQUEST asks the server to staple an OCSP
 * response (the status_request extension) and checks the one it sends: it must be signed
 * by the leaf's issuer or a responder the issuer authorised (OCSP_basic_verify against
 * the chain and the trust store), answer for the leaf, and be current (5 minutes of
 * clock skew allowed). A stapled `revoked` fails the handshake; a staple that is missing
 * or does not pass is only reported (tlskit_conn_ocsp_status()). TLSKIT_OCSP_REQUIRE
 * also fails the handshake unless a checked `good` staple came. Failures are
 * TLSKIT_E_VERIFY with the reason ("certificate verify failed: OCSP staple: the
 * certificate is revoked (keyCompromise) since ..."). A resumed session sends no
 * certificate and is not checked again. TLSKIT_OCSP_OFF (the default) asks nothing.
 * 0, or -1 (TLSKIT_E_INVALID for another mode, or the config is in use). */
#define TLSKIT_OCSP_OFF 0
#define TLSKIT_OCSP_REQUEST 1
#define TLSKIT_OCSP_REQUIRE 2
TLSKIT_API int tlskit_config_set_ocsp_request(tlskit_config *cfg, int mode);

/* Client role: do not verify the server's certificate chain / host name.
 * Loudly insecure: anyone on the path can impersonate the server.
 * 0, or -1 when the config is in use. */
TLSKIT_API int tlskit_config_insecure_noverifycert(tlskit_config *cfg);
TLSKIT_API int tlskit_config_insecure_noverifyname(tlskit_config *cfg);

/* Server role: with client verification on, the CertificateRequest lists the subject
 * names of the CA certificates given with tlskit_config_add_ca_file() / _mem()
 * (certificate_authorities), so a client holding several certificates can pick one, as
 * nginx and openssl s_server do. Off (0) leaves the list out. On by default. 0, or -1
 * when the config is in use. */
TLSKIT_API int tlskit_config_set_ca_names(tlskit_config *cfg, int on);

/* Server role: ask clients for a certificate and verify it against the CA settings.
 * REQUIRED rejects clients without one; OPTIONAL accepts them (but still rejects a
 * certificate that is presented and does not verify). */
enum tlskit_verify_client { TLSKIT_VERIFY_CLIENT_NONE = 0, TLSKIT_VERIFY_CLIENT_OPTIONAL = 1,
                            TLSKIT_VERIFY_CLIENT_REQUIRED = 2 };
TLSKIT_API int tlskit_config_set_verify_client(tlskit_config *cfg,
                                               enum tlskit_verify_client mode);

/* Server role: accept only clients whose certificate (verified as usual) carries one of
 * these identities; each call adds one, at most 256. id is one of
 *   "dns:NAME"     a DNS name in the subjectAltName (exact, case-insensitive)
 *   "uri:URI"      a URI in the subjectAltName (exact), e.g. a SPIFFE ID
 *   "email:ADDR"   an e-mail address in the subjectAltName (case-insensitive)
 *   "cn:NAME"      the subject's (last) common name, only for certificates without
 *                  DNS, URI or e-mail SANs
 *   "spki:sha256//BASE64"  the SHA-256 of the public key (as
 *                  tlskit_conn_peer_cert_spki_sha256() gives it).
 * With an allow-list a client certificate is required, whatever
 * tlskit_config_set_verify_client() says. A client that verifies but matches none fails
 * the handshake with TLSKIT_E_VERIFY and a message listing the identities it presented
 * ("client not on the allow-list: it presented dns:a.example, spki:sha256//..."); it is
 * sent a bad_certificate alert (OpenSSL 3.0 offers no way to send access_denied from
 * certificate verification). 0, or -1 with TLSKIT_E_INVALID naming the malformed id. */
TLSKIT_API int tlskit_config_add_allowed_client(tlskit_config *cfg, const char *id);

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

/* ALPN (RFC 7301): list is the protocol names in order of preference, separated by
 * commas, e.g. "h2,http/1.1"; each name 1 to 255 bytes of printable ASCII, none twice.
 * A client offers them. A server picks, in its own order, the first one the client also
 * offers; a client that offers ALPN with nothing in common is refused with a
 * no_application_protocol alert, and one that offers none is served without.
 * NULL or "" turns ALPN off (the default). Fails with TLSKIT_E_INVALID, naming the
 * fault, when the list is malformed (tlskit_alpn_check() says so without a config). */
TLSKIT_API int tlskit_config_set_alpn(tlskit_config *cfg, const char *list);
/* Check an ALPN list as tlskit_config_set_alpn() would: 0 when well formed, else -1 with
 * the reason ("empty protocol name at position 4") in why (why_len bytes, may be 0). */
TLSKIT_API int tlskit_alpn_check(const char *list, char *why, size_t why_len);

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
TLSKIT_API int tlskit_config_set_timeout(tlskit_config *cfg, enum tlskit_timeout which,
                                         int64_t ms);

/* Socket options applied to every socket made or accepted with this config.
 * 0 keeps the kernel default buffer size. TCP_NODELAY is on by default (set_nodelay:
 * 0, or -1 when the config is in use). */
TLSKIT_API int tlskit_config_set_buffer_sizes(tlskit_config *cfg, int rcvbuf, int sndbuf);
TLSKIT_API int tlskit_config_set_nodelay(tlskit_config *cfg, int on);

/* Server: session tickets sent after each full TLS 1.3 handshake (default 1, at most
 * 16). 0 sends none, and turns TLS 1.2 tickets off too: clients then resume only from
 * the server's session cache (TLS 1.2) or not at all (TLS 1.3). */
TLSKIT_API int tlskit_config_set_session_tickets(tlskit_config *cfg, int count);
/* Server: session-ticket keys. By default the config makes its own random keys: a new
 * key encrypts tickets every lifetime (set_ticket_lifetime, seconds, default 3600, at
 * most TLSKIT_TICKET_LIFETIME_MAX), and a ticket stays accepted for one more lifetime
 * after its key stopped encrypting; sessions expire after two lifetimes. A config handed
 * to tlskit_listener_reload() / tlskit_engine_reload() takes over the keys of the config
 * it replaces, so tickets issued before a reload still resume.
 * add_ticket_key_file/_mem: a key in nginx's ssl_session_ticket_key format, 48 bytes
 * (16 name, 16 AES-128 key, 16 HMAC key) or 80 bytes (16 name, 32 HMAC key, 32 AES-256
 * key). The first key added encrypts; later ones only decrypt, and a client resuming
 * with one of them gets a fresh ticket. Servers given the same files resume each other's
 * sessions. With keys added there is no rotation (and no carrying over on reload): the
 * keys are what was added. The file must be a regular file that group and others cannot
 * read. Fails with TLSKIT_E_FILE naming the file and the reason (missing, not a regular
 * file, readable by others, not 48 or 80 bytes). The key bytes are copied and never
 * shown in a message. */
#define TLSKIT_TICKET_LIFETIME_MAX 604800 /* 7 days */
TLSKIT_API int tlskit_config_set_ticket_lifetime(tlskit_config *cfg, int64_t secs);
TLSKIT_API int tlskit_config_add_ticket_key_file(tlskit_config *cfg, const char *path);
TLSKIT_API int tlskit_config_add_ticket_key_mem(tlskit_config *cfg, const void *key,
                                                size_t len);
/* TCP keepalive: idle seconds before probes, seconds between probes, probe count
 * (0 keeps the kernel default for that value). */
TLSKIT_API int tlskit_config_set_keepalive(tlskit_config *cfg, int on, int idle_s,
                                           int interval_s, int count);

/* Client role: public-key pinning, in curl's --pinnedpubkey format:
 * "sha256//BASE64[;sha256//BASE64...]", each the base64 SHA-256 of a DER
 * SubjectPublicKeyInfo (what tlskit_conn_peer_cert_spki_sha256() gives). The server's
 * leaf certificate must carry one of these keys. Checked after the normal verification,
 * on top of it: a certificate must verify AND match a pin (with
 * tlskit_config_insecure_noverifycert() the pin alone decides). A mismatch fails the
 * handshake with TLSKIT_E_VERIFY and a message that says it was the pin and gives the
 * hash the server presented. Replaces earlier pins. 0, or -1 with TLSKIT_E_INVALID naming
 * the malformed entry (at most 64 pins). */
TLSKIT_API int tlskit_config_set_pinned_pubkeys(tlskit_config *cfg, const char *pins);

/* INSECURE, for debugging only: append the TLS secrets of every connection made with
 * this config to the file at path, in the NSS key log format that Wireshark and tshark
 * read ("CLIENT_RANDOM <64 hex> <hex>" for TLS 1.2; CLIENT_HANDSHAKE_TRAFFIC_SECRET,
 * SERVER_HANDSHAKE_TRAFFIC_SECRET, CLIENT_TRAFFIC_SECRET_0, SERVER_TRAFFIC_SECRET_0 and
 * EXPORTER_SECRET for TLS 1.3). Anyone who can read the file can decrypt the captured
 * traffic. The library opens the file now (created with mode 0600, appended to if it
 * exists) and writes each line whole, also from several threads; it is closed when the
 * config is freed. Off unless this is called. 0, or -1 with TLSKIT_E_FILE naming the
 * path (unopenable, a directory, not a regular file). */
TLSKIT_API int tlskit_config_insecure_keylog_file(tlskit_config *cfg, const char *path);

/* Debugging: a trace of the handshake. fn gets one line of text for each TLS message and
 * alert that a connection made with this config sends (line starts "> ") or receives
 * ("< "), as it happens, with the message named and, for the hellos, their extensions:
 *   > ClientHello ciphers=31 sni=localhost alpn=h2,http/1.1 ... supported_versions=
 *     TLSv1.3,TLSv1.2 ... key_share=X25519
 *   < ServerHello cipher=TLS_AES_128_GCM_SHA256 supported_versions=TLSv1.3 key_share=X25519
 *   < EncryptedExtensions alpn=h2       < Certificate (2 certs)       < Finished
 *   < alert fatal bad_certificate       > ChangeCipherSpec
 * Other extensions appear by name (IANA registry), unknown ones as 0xNNNN; a message that
 * does not parse ends in " [malformed]". Names a peer chose are shown with bytes outside
 * printable ASCII (and ',' '\\') as \xNN. No secret ever appears (no keys, no ticket
 * contents, no Finished data). The line is printable ASCII without a newline, at most
 * TLSKIT_TRACE_LINE_MAX - 1 bytes (a longer one is cut and ends in "..."), valid during
 * the call only. The library does not print it: fn does what the application wants.
 * fn runs on the thread that drives conn, inside the tlskit call that sent or received
 * the message (handshake, read, write, close; on an engine connection, its worker
 * thread), so it must be safe to call from every thread that uses the config, and
 * quick. It may read tlskit_conn_peer_addr() and tlskit_conn_userdata() of conn and
 * must call nothing else on it. NULL fn turns the trace off (the default; off costs
 * nothing). 0, or -1 when the config is in use. */
#define TLSKIT_TRACE_LINE_MAX 1024
struct tlskit_conn; /* tlskit_conn, below */
typedef void (*tlskit_trace_fn)(const struct tlskit_conn *conn, const char *line, void *arg);
TLSKIT_API int tlskit_config_set_trace(tlskit_config *cfg, tlskit_trace_fn fn, void *arg);
/* The trace line for one message, as the trace callback would get it, for a caller that
 * captures messages itself (e.g. OpenSSL's msg callback on tlskit_config_ssl_ctx()):
 * sent (non-zero) or received, content_type the TLS record type (20 ChangeCipherSpec,
 * 21 alert, 22 handshake: one message with its 4-byte header), version the protocol in
 * use (TLSKIT_TLS1_3 reads a Certificate message in the TLS 1.3 layout), msg and len the
 * bytes, which may be hostile (every length is checked). Writes a NUL-terminated line
 * into out (outlen bytes, TLSKIT_TRACE_LINE_MAX is enough) and returns its length. */
TLSKIT_API size_t tlskit_trace_format(char *out, size_t outlen, int sent, int content_type,
                                      int version, const void *msg, size_t len);

/* Escape hatch: the underlying OpenSSL SSL_CTX (struct ssl_ctx_st *), owned by the
 * config. Changes made through it are the caller's responsibility (also once the config
 * is in use and frozen: the freeze covers only the setters above). */
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
 * Call tlskit_conn_close() first for a clean close_notify. Does nothing on a connection
 * served by the engine: the engine frees it after its on_close callback. */
TLSKIT_API void tlskit_conn_free(tlskit_conn *conn);
TLSKIT_API const char *tlskit_conn_error(const tlskit_conn *conn);
TLSKIT_API int tlskit_conn_error_code(const tlskit_conn *conn);

/* Client role. Server name sent as SNI and checked against the certificate; defaults to
 * the host given to tlskit_conn_connect() (an IP address is checked against IP SANs and
 * sent without SNI). */
TLSKIT_API int tlskit_conn_set_servername(tlskit_conn *conn, const char *name);
/* Resolve host, connect to each address in turn within the CONNECT deadline. Does not
 * handshake (call tlskit_conn_handshake(), or the first read/write does it). Until then
 * the socket (tlskit_conn_fd()) carries no TLS, and the caller may speak a plain-text
 * protocol over it first (STARTTLS), as long as it leaves nothing of the server's unread
 * that TLS would then take.
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
 * WANT on a non-blocking connection. The library reads ahead: on a non-blocking
 * connection, read until WANT_READ before waiting in poll(), which cannot see records
 * already read from the socket. */
TLSKIT_API ssize_t tlskit_conn_read(tlskit_conn *conn, void *buf, size_t len);
/* Write up to len bytes: > 0 bytes written (all of them unless non-blocking), -1 on error,
 * WANT on a non-blocking connection (call again with the same arguments).
 * On a connection served by the engine (from its callbacks, on its worker thread) the
 * bytes are queued and sent as the peer takes them: len, or -1 when the connection is
 * closing or its write limit was reached (it is then closed with that reason). */
TLSKIT_API ssize_t tlskit_conn_write(tlskit_conn *conn, const void *buf, size_t len);
/* Write all len bytes, waiting as needed (also on a non-blocking connection, within the
 * WRITE deadline). 0 or -1. On an engine connection: as tlskit_conn_write(). */
TLSKIT_API int tlskit_conn_write_all(tlskit_conn *conn, const void *buf, size_t len);
/* Bytes written but not yet taken by the socket: those an engine connection has queued
 * (0 for other connections, whose writes return only what the socket took). */
TLSKIT_API size_t tlskit_conn_pending(const tlskit_conn *conn);

/* Send close_notify and stop writing; reading remains possible until the peer closes
 * (TLS half-close). 0, -1, or WANT. */
TLSKIT_API int tlskit_conn_shutdown(tlskit_conn *conn);
/* Send close_notify if not yet sent, then close the socket (if the library owns it).
 * Never waits for the peer's close_notify; waits for the socket to take our close_notify
 * at most the WRITE deadline, or 5 s when none is set. 0 or -1 (closed either way).
 * On an engine connection: close once the queued output is sent (close_notify
 * included); the engine then calls on_close and frees it. Returns 0. */
TLSKIT_API int tlskit_conn_close(tlskit_conn *conn);
/* On a connection served by the engine, the calls that drive a connection by hand
 * (tlskit_conn_handshake, _read, _shutdown, _set_nonblocking) fail with
 * TLSKIT_E_INVALID: the engine does that work, and data arrives in on_data. */

/* The socket, or -1. Still owned by the connection. */
TLSKIT_API int tlskit_conn_fd(const tlskit_conn *conn);
/* Milliseconds until the nearest deadline that applies to the connection's current
 * state (handshake, or idle), for a caller's poll(); -1 if none applies. */
TLSKIT_API int tlskit_conn_timeout_ms(const tlskit_conn *conn);

/* ---------------------------------------------------------------------------------------
 * Session resumption (client role)
 * ------------------------------------------------------------------------------------- */

typedef struct tlskit_session tlskit_session;

/* A copy (a new reference) of the connection's session for resuming later, or NULL when
 * there is none yet. With TLS 1.3 the server sends its tickets after the handshake: read
 * some data first (e.g. the reply to a request). The caller owns the copy:
 * tlskit_session_free(). */
TLSKIT_API tlskit_session *tlskit_conn_session_copy(tlskit_conn *conn);
/* 1 when the session can be used to resume. */
TLSKIT_API int tlskit_session_resumable(const tlskit_session *sess);
TLSKIT_API void tlskit_session_free(tlskit_session *sess);
/* Offer sess for resumption; call after tlskit_conn_connect()/wrap and before the
 * handshake. The server may still decide on a full handshake (see
 * tlskit_conn_session_reused()). The connection takes its own reference. */
TLSKIT_API int tlskit_conn_set_session(tlskit_conn *conn, tlskit_session *sess);

/* Sessions kept across processes, as PEM: the format `openssl s_client -sess_out` writes
 * and `-sess_in` reads (either side may write what the other reads).
 * save: the connection's session, once it is resumable (TLSKIT_E_INVALID before that;
 * with TLS 1.3 call tlskit_conn_session_wait() first). _mem: *pem gets a new buffer of
 * *len bytes (not NUL-terminated) that the caller releases with free(). _file: the file
 * is created or replaced with mode 0600; refused (TLSKIT_E_FILE) when it is not a
 * regular file or belongs to another user; a symbolic link is not followed.
 * load: offer the session, as tlskit_conn_set_session() does (after connect/wrap,
 * before the handshake). _file refuses (TLSKIT_E_FILE, the message says which) a file
 * that is not a regular file, belongs to another user or is readable by group or others:
 * the file holds the secret that resumes the session. Malformed PEM: TLSKIT_E_FILE. */
TLSKIT_API int tlskit_conn_session_save_mem(tlskit_conn *conn, char **pem, size_t *len);
TLSKIT_API int tlskit_conn_session_save_file(tlskit_conn *conn, const char *path);
TLSKIT_API int tlskit_conn_session_load_mem(tlskit_conn *conn, const void *pem, size_t len);
TLSKIT_API int tlskit_conn_session_load_file(tlskit_conn *conn, const char *path);
/* Client, after the handshake: wait up to timeout_ms for a resumable session (TLS 1.3
 * servers send their tickets after the handshake). Processes incoming records without
 * taking application data (it stays for tlskit_conn_read()); timeout_ms 0 only looks at
 * what has arrived. 0 when the session is
 * resumable (at once with TLS 1.2 tickets); -1 with TLSKIT_E_TIMEOUT when none came in
 * time, TLSKIT_E_CLOSED when the server sent data or closed without a ticket. */
TLSKIT_API int tlskit_conn_session_wait(tlskit_conn *conn, int timeout_ms);

/* ---------------------------------------------------------------------------------------
 * Connection and peer details (valid after the handshake unless said otherwise)
 * ------------------------------------------------------------------------------------- */

/* "127.0.0.1:4433" / "[::1]:4433", valid once connected or accepted. */
TLSKIT_API const char *tlskit_conn_peer_addr(const tlskit_conn *conn);
TLSKIT_API int tlskit_conn_handshake_done(const tlskit_conn *conn);
/* Milliseconds since the connection was connected or accepted (0 before). */
TLSKIT_API int64_t tlskit_conn_age_ms(const tlskit_conn *conn);
/* Protocol ("TLSv1.3"), cipher ("TLS_AES_...") and key-exchange group ("X25519"); NULL
 * when not known. Client role: also after a failed handshake once the server's
 * certificate arrived, as far as the server's messages settled them by then (TLS 1.3: all
 * three; TLS 1.2: the protocol). */
TLSKIT_API const char *tlskit_conn_protocol(const tlskit_conn *conn);
TLSKIT_API const char *tlskit_conn_cipher(const tlskit_conn *conn);
TLSKIT_API const char *tlskit_conn_group(const tlskit_conn *conn);
/* Client: the name sent; server: the name received; NULL if none. */
TLSKIT_API const char *tlskit_conn_servername(const tlskit_conn *conn);
TLSKIT_API int tlskit_conn_session_reused(const tlskit_conn *conn);
/* The ALPN protocol agreed on ("h2"), or NULL when none was. */
TLSKIT_API const char *tlskit_conn_alpn_selected(const tlskit_conn *conn);
/* Server role: which of the config's keypairs was served (see
 * tlskit_config_add_keypair_file()): its index in the order added (0 is the default),
 * and its certificate's subject in RFC 2253 form (owned by the config, valid while the
 * connection lives). -1 / NULL before the handshake, in the client role, and on a
 * resumed session (no certificate is sent). */
TLSKIT_API int tlskit_conn_local_cert_index(const tlskit_conn *conn);
TLSKIT_API const char *tlskit_conn_local_cert_subject(const tlskit_conn *conn);
TLSKIT_API uint64_t tlskit_conn_bytes_in(const tlskit_conn *conn);  /* plaintext read */
TLSKIT_API uint64_t tlskit_conn_bytes_out(const tlskit_conn *conn); /* plaintext written */
/* Per-connection application pointer (any connection, engine or not). */
TLSKIT_API void tlskit_conn_set_userdata(tlskit_conn *conn, void *data);
TLSKIT_API void *tlskit_conn_userdata(const tlskit_conn *conn);

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
/* The SHA-256 of the peer certificate's public key (DER SubjectPublicKeyInfo) as
 * "sha256//BASE64", the form tlskit_config_set_pinned_pubkeys() takes; NULL if no
 * certificate. Computed on the first call (not from two threads at once). */
TLSKIT_API const char *tlskit_conn_peer_cert_spki_sha256(const tlskit_conn *conn);
/* The certificate chain the peer sent, leaf first: the number of certificates (0 if
 * none) and all of them as PEM ("-----BEGIN CERTIFICATE-----..." one after another; NULL
 * if none, or out of memory). Owned by the connection; the PEM is made on the first call
 * (so, as other calls on a connection, not from two threads at once). */
TLSKIT_API int tlskit_conn_peer_chain_count(const tlskit_conn *conn);
TLSKIT_API const char *tlskit_conn_peer_chain_pem(const tlskit_conn *conn);
/* Verification result as text: "ok", "not verified (insecure)", "no certificate", or the
 * reason ("certificate has expired"). Valid after a handshake attempt. */
TLSKIT_API const char *tlskit_conn_verify_result(const tlskit_conn *conn);

/* Client role, after a handshake attempt with TLSKIT_OCSP_REQUEST or _REQUIRE: what the
 * server stapled, one of TLSKIT_OCSP_STATUS_* below, and as text: "good (this update
 * ..., next update ...)", "revoked (keyCompromise) since ...", or why none counts ("the
 * server stapled no OCSP response", "bad signature: ...", "for another certificate",
 * "expired: next update was ..."). The text is owned by the connection; "not requested"
 * when the config asked for none, "not checked (resumed session)" on a resumption. */
#define TLSKIT_OCSP_STATUS_NONE 0    /* not requested, not stapled, or not checked */
#define TLSKIT_OCSP_STATUS_GOOD 1    /* a checked response says good */
#define TLSKIT_OCSP_STATUS_REVOKED 2 /* a checked response says revoked */
#define TLSKIT_OCSP_STATUS_UNKNOWN 3 /* a checked response says unknown */
#define TLSKIT_OCSP_STATUS_INVALID 4 /* stapled, but failed a check (see the text) */
TLSKIT_API int tlskit_conn_ocsp_status(const tlskit_conn *conn);
TLSKIT_API const char *tlskit_conn_ocsp_text(const tlskit_conn *conn);

/* Each certificate of the chain the peer sent, by its index in that chain (0 is the
 * leaf; 0 .. tlskit_conn_peer_chain_count() - 1), in the style of the peer_cert calls
 * above. Client role: valid after the handshake and also after a failed one once the
 * server's Certificate message arrived (the chain of a server that failed verification
 * can be looked at; tlskit_conn_peer_chain_count() and _pem() say so too). Server role:
 * after the handshake. Strings are owned by the connection and made on the first call
 * for that certificate (not from two threads at once); an index out of range, or no
 * chain, gives NULL / 0 / -1.
 *   subject, issuer   RFC 2253 form, as tlskit_conn_peer_cert_subject()
 *   sans              "DNS:localhost, IP:127.0.0.1" (names escaped as for the leaf:
 *                     ',' and '\' and bytes outside printable ASCII as \xNN, so ", "
 *                     only ever separates entries); "" when it has none
 *   notbefore/after   Unix times (0 when unreadable)
 *   key_type          "RSA", "EC", "Ed25519", "Ed448", "DSA", or OpenSSL's short name
 *   key_bits          the key size in bits (RSA modulus, EC field), -1 if unknown
 *   key_group         the named curve of an EC key in NIST form when it has one
 *                     ("P-256"), else OpenSSL's name ("brainpoolP256r1"); NULL otherwise
 *   sigalg            the signature algorithm the issuer used, OpenSSL's long name
 *                     ("ecdsa-with-SHA256", "sha256WithRSAEncryption")
 *   fingerprint       "SHA256:AB:CD:..." of the whole certificate (DER)
 *   spki_sha256       "sha256//BASE64" of the public key, the --pin /
 *                     tlskit_config_set_pinned_pubkeys() form */
TLSKIT_API const char *tlskit_conn_peer_chain_subject(const tlskit_conn *conn, int index);
TLSKIT_API const char *tlskit_conn_peer_chain_issuer(const tlskit_conn *conn, int index);
TLSKIT_API const char *tlskit_conn_peer_chain_sans(const tlskit_conn *conn, int index);
TLSKIT_API time_t tlskit_conn_peer_chain_notbefore(const tlskit_conn *conn, int index);
TLSKIT_API time_t tlskit_conn_peer_chain_notafter(const tlskit_conn *conn, int index);
TLSKIT_API const char *tlskit_conn_peer_chain_key_type(const tlskit_conn *conn, int index);
TLSKIT_API int tlskit_conn_peer_chain_key_bits(const tlskit_conn *conn, int index);
TLSKIT_API const char *tlskit_conn_peer_chain_key_group(const tlskit_conn *conn, int index);
TLSKIT_API const char *tlskit_conn_peer_chain_sigalg(const tlskit_conn *conn, int index);
TLSKIT_API const char *tlskit_conn_peer_chain_fingerprint(const tlskit_conn *conn, int index);
TLSKIT_API const char *tlskit_conn_peer_chain_spki_sha256(const tlskit_conn *conn,
                                                          int index);
/* Where a certificate the peer sent stands in the verified chain, as flags; all 0 when
 * no chain was verified in this handshake (verification failed or was turned off, the
 * session was resumed, which verifies nothing) or the index is out of range.
 *   TLSKIT_CHAIN_PATH       it is on the path verification built from the leaf to a
 *                           trust anchor (a certificate a server sends needlessly, or
 *                           an alternative path's, is not)
 *   TLSKIT_CHAIN_ANCHORED   it is the one that chained to the trust anchor: the anchor
 *                           issued it
 *   TLSKIT_CHAIN_ANCHOR     it is the trust anchor itself (the peer sent the root) */
#define TLSKIT_CHAIN_PATH 1
#define TLSKIT_CHAIN_ANCHORED 2
#define TLSKIT_CHAIN_ANCHOR 4
TLSKIT_API int tlskit_conn_peer_chain_flags(const tlskit_conn *conn, int index);
/* The subject (RFC 2253) of the trust anchor the peer's chain verified against in this
 * handshake; NULL when none was (as for the flags above). Owned by the connection. */
TLSKIT_API const char *tlskit_conn_trust_anchor(const tlskit_conn *conn);

/* How long each phase of setting up the connection took, in microseconds, as the
 * connection measured it (monotonic clock); -1 for a phase that did not run or has not
 * ended yet.
 *   DNS        resolving the host in tlskit_conn_connect()
 *   CONNECT    the TCP connect (all the addresses tried), in tlskit_conn_connect()
 *   HANDSHAKE  from the first handshake step to its end, also a failed end (on a
 *              non-blocking connection: including the caller's time between steps)
 *   TOTAL      from the start of tlskit_conn_connect() (or of the handshake, for a
 *              wrapped or accepted socket) to the end of the handshake; after a failed
 *              connect, to that failure. It holds what happens between the phases too
 *              (e.g. loading the system trust store on the first connection of a config),
 *              so it can exceed the sum of the others
 * After a failed tlskit_conn_connect(), DNS (and CONNECT, when resolving worked) say how
 * long the attempt took: the connection may be asked before it is freed. */
enum tlskit_phase { TLSKIT_PHASE_DNS = 0, TLSKIT_PHASE_CONNECT = 1,
                    TLSKIT_PHASE_HANDSHAKE = 2, TLSKIT_PHASE_TOTAL = 3 };
TLSKIT_API int64_t tlskit_conn_phase_us(const tlskit_conn *conn, enum tlskit_phase phase);

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
 * from the thread that serves it), owned by the caller. timeout_ms 0 never waits: with
 * no client pending it returns TLSKIT_WANT_READ (poll the tlskit_listener_fds()).
 * Errors: TLSKIT_E_TIMEOUT, TLSKIT_E_IO (e.g. EMFILE: out of file descriptors; the
 * pending client stays queued), TLSKIT_E_CLOSED. */
TLSKIT_API int tlskit_listener_accept(tlskit_listener *l, tlskit_conn **out, int timeout_ms);
/* Serve connections accepted from now on with cfg (a reference is taken); connections
 * already accepted keep theirs. For certificate reload. Call from the accepting thread.
 * Fails with TLSKIT_E_CONFIG (keeping the old config) when cfg has no certificate. */
TLSKIT_API int tlskit_listener_reload(tlskit_listener *l, tlskit_config *cfg);
/* Close the listening sockets; a thread blocked in accept returns TLSKIT_E_CLOSED. */
TLSKIT_API void tlskit_listener_close(tlskit_listener *l);

/* ---------------------------------------------------------------------------------------
 * Server engine: event-driven (epoll), multi-threaded, with limits and deadlines
 *
 * N worker threads (default: one per core), each with its own SO_REUSEPORT listening
 * sockets and epoll loop, so the kernel spreads new connections over the workers. The
 * application gives callbacks and writes with tlskit_conn_write(), which on an engine
 * connection queues: the engine buffers output and applies backpressure (it stops reading
 * from a connection whose output is not drained).
 * Every callback runs on the worker thread that owns the connection; a connection is
 * only ever touched by that thread.
 * Deadlines come from the config: HANDSHAKE (total), IDLE (no byte either way) and WRITE
 * (output pending but the peer took nothing for this long: a write stall).
 * ------------------------------------------------------------------------------------- */

typedef struct tlskit_engine tlskit_engine;

struct tlskit_engine_handlers {
    /* The handshake completed; connection details are available. */
    void (*on_open)(tlskit_conn *conn, void *arg);
    /* Decrypted bytes arrived. The buffer is valid during the call only. */
    void (*on_data)(tlskit_conn *conn, const void *data, size_t len, void *arg);
    /* The output buffer, after holding data, is empty again. May be NULL. */
    void (*on_drain)(tlskit_conn *conn, void *arg);
    /* The connection ended (also when the handshake failed, then without on_open):
     * code is TLSKIT_E_NONE for a clean close, else the error class; reason is text
     * ("closed by peer", "handshake with ...: ...", "idle timeout", ...). The connection is
     * freed after the callback returns. */
    void (*on_close)(tlskit_conn *conn, int code, const char *reason, void *arg);
    void *arg;
    /* Something about the engine rather than one connection, for a log; may be NULL.
     * Now: accepting failed (code TLSKIT_E_IO, e.g. out of file descriptors; the engine
     * stops accepting for 100 ms at a time, clients wait in the backlog), once per
     * streak, and TLSKIT_E_NONE when it accepts again; a client refused over max_conns
     * (code TLSKIT_E_LIMIT, at most once a second, with the count of refusals since the
     * last report). Called from worker threads. */
    void (*on_event)(int code, const char *message, void *arg);
};

struct tlskit_engine_stats {
    uint64_t open;               /* connections open now (accepted, not yet closed) */
    uint64_t accepted;           /* accepted since start */
    uint64_t handshakes_ok;
    uint64_t handshakes_failed;  /* sum of handshake_errors[] */
    uint64_t handshake_errors[TLSKIT_E__COUNT]; /* by error class: index TLSKIT_E_* */
    uint64_t bytes_in, bytes_out;  /* plaintext */
    uint64_t handshake_timeouts, idle_timeouts, write_stalls;
    uint64_t buffer_limit_closes;  /* output buffer cap reached */
    uint64_t limit_rejections;     /* closed at once: max connections reached */
    uint64_t accept_errors;        /* e.g. EMFILE; accepting pauses briefly, then resumes */
};

/* A new engine serving with cfg (a reference is taken). NULL only when out of memory. */
TLSKIT_API tlskit_engine *tlskit_engine_new(tlskit_config *cfg,
                                            const struct tlskit_engine_handlers *handlers);
/* Stops (as tlskit_engine_stop with no drain) if running, then frees. */
TLSKIT_API void tlskit_engine_free(tlskit_engine *e);
TLSKIT_API const char *tlskit_engine_error(const tlskit_engine *e);
TLSKIT_API int tlskit_engine_error_code(const tlskit_engine *e);

/* Settings, before tlskit_engine_listen(). workers <= 0: one per online core (at most
 * TLSKIT_ENGINE_MAX_WORKERS). max_conns: beyond it new connections are refused at once
 * with a fatal internal_error alert and counted (0 = no limit). A refused client, and one
 * that ends with TLSKIT_E_VERIFY or TLSKIT_E_PROTOCOL (a fatal alert sent), gets a
 * lingering close: the socket is shut down for writing and what the client still sends
 * is dropped for up to 2 s (256 KiB), so it reads the alert rather than a reset; such a
 * socket holds no max_conns slot and no callback comes for it. write_limit: output bytes buffered per connection before it is
 * closed (at least TLSKIT_ENGINE_MIN_WRITE_LIMIT); reading from a connection stops while
 * more than a quarter of it is queued, and resumes below an eighth. drain_ms: how long
 * tlskit_engine_stop() lets open connections finish. */
#define TLSKIT_ENGINE_DEFAULT_MAX_CONNS 10000
#define TLSKIT_ENGINE_DEFAULT_WRITE_LIMIT (4u << 20) /* 4 MiB */
#define TLSKIT_ENGINE_DEFAULT_DRAIN_MS 5000
#define TLSKIT_ENGINE_MAX_WORKERS 1024
#define TLSKIT_ENGINE_MIN_WRITE_LIMIT 16384 /* one full TLS record */
TLSKIT_API int tlskit_engine_set_workers(tlskit_engine *e, int workers);
TLSKIT_API int tlskit_engine_set_max_conns(tlskit_engine *e, int max_conns);
TLSKIT_API int tlskit_engine_set_write_limit(tlskit_engine *e, size_t bytes);
TLSKIT_API int tlskit_engine_set_drain_timeout(tlskit_engine *e, int64_t ms);

/* Bind the listening sockets (as tlskit_listener_listen: "localhost" means both
 * families; port "0" picks one free port for all). */
TLSKIT_API int tlskit_engine_listen(tlskit_engine *e, const char *host, const char *port,
                                    int backlog);
TLSKIT_API int tlskit_engine_port(const tlskit_engine *e);
TLSKIT_API const char *tlskit_engine_addrs(const tlskit_engine *e);

/* Start the worker threads; returns at once. */
TLSKIT_API int tlskit_engine_start(tlskit_engine *e);
/* Graceful stop: stop accepting, let open connections go on for up to the drain timeout,
 * then flush what they were sent, send close_notify and close them; join the workers.
 * Safe from any thread but a worker (not from a signal handler). */
TLSKIT_API int tlskit_engine_stop(tlskit_engine *e);
/* Serve new connections with cfg from now on; open ones keep their config. A reference
 * is taken. Fails (keeping the old config) if cfg has no certificate and key. The same
 * verb as tlskit_listener_reload(). */
TLSKIT_API int tlskit_engine_reload(tlskit_engine *e, tlskit_config *cfg);
/* A consistent-enough snapshot of the counters (each is exact; they are read one by
 * one). Safe from any thread. */
TLSKIT_API void tlskit_engine_read_stats(tlskit_engine *e,
                                         struct tlskit_engine_stats *out);

/* From the callbacks, a connection is written and closed with the connection calls:
 * tlskit_conn_write() queues, tlskit_conn_close() closes after the queued output,
 * tlskit_conn_pending() tells what is queued. */

/* ---------------------------------------------------------------------------------------
 * Generic error access: tlskit_error(obj) / tlskit_error_code(obj) for any object.
 * C11 _Generic: not defined in C++ or before C11, where the per-object calls
 * (tlskit_conn_error() ...) are the way.
 * ------------------------------------------------------------------------------------- */
#if !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define tlskit_error(obj)                                            \
    _Generic((obj), tlskit_config *: tlskit_config_error,            \
             const tlskit_config *: tlskit_config_error,             \
             tlskit_conn *: tlskit_conn_error,                       \
             const tlskit_conn *: tlskit_conn_error,                 \
             tlskit_listener *: tlskit_listener_error,               \
             const tlskit_listener *: tlskit_listener_error,         \
             tlskit_engine *: tlskit_engine_error,                   \
             const tlskit_engine *: tlskit_engine_error)(obj)
#define tlskit_error_code(obj)                                       \
    _Generic((obj), tlskit_config *: tlskit_config_error_code,       \
             const tlskit_config *: tlskit_config_error_code,        \
             tlskit_conn *: tlskit_conn_error_code,                  \
             const tlskit_conn *: tlskit_conn_error_code,            \
             tlskit_listener *: tlskit_listener_error_code,          \
             const tlskit_listener *: tlskit_listener_error_code,    \
             tlskit_engine *: tlskit_engine_error_code,              \
             const tlskit_engine *: tlskit_engine_error_code)(obj)
#endif

#ifdef __cplusplus
}
#endif
#endif /* TLSKIT_TLSKIT_H */
