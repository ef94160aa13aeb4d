/* SPDX-License-Identifier: MIT */
/*
 * tlskit: TLS over TCP sockets (and DTLS 1.2 over UDP), as simple as plain sockets.
 *
 * One header, opaque objects:
 *   tlskit_config    settings -> an OpenSSL context; build it once, then share it
 *                    read-only across threads and connections. tlskit_config_new_dtls()
 *                    makes one for datagrams (see "DTLS" below).
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

/* ---------------------------------------------------------------------------------------
 * DTLS 1.2 over UDP
 *
 * A DTLS config (its own SSL_CTX, DTLS 1.2 only: OpenSSL 3.0 has no DTLS 1.3) serves
 * clients through tlskit_conn_connect_udp() and servers through the engine: with a DTLS
 * config, tlskit_engine_listen() binds one unconnected UDP socket per worker
 * (SO_REUSEPORT) and the same callbacks serve each peer address as one connection.
 * Every setter of the config works as for TLS (certificates, CAs, client verification,
 * ciphers, deadlines); tlskit_config_set_protocols() accepts only ranges that start at
 * TLS 1.2, which means DTLS 1.2.
 * Datagram semantics: one tlskit_conn_write() is one datagram (a record that fits the
 * MTU); a write larger than tlskit_conn_max_write() fails with TLSKIT_E_LIMIT and the
 * connection stays usable. One tlskit_conn_read() returns one datagram's data (give it a
 * buffer of at least the peer's largest write; 16384 always does). UDP may lose, repeat
 * or reorder application datagrams: DTLS drops repeats, it does not resend data.
 * Servers answer every ClientHello from an unknown address with a stateless cookie
 * (HelloVerifyRequest, RFC 6347 4.2.1: never larger than the ClientHello, no state kept)
 * and only a verified cookie makes a connection. Deadlines: HANDSHAKE bounds the whole
 * handshake, retransmissions included; IDLE ends a quiet association with close_notify
 * (UDP has no close).
 * ------------------------------------------------------------------------------------- */

#define TLSKIT_DTLS_DEFAULT_MTU 1232            /* fits any IPv6 path (1280 - 48) */
#define TLSKIT_DTLS_DEFAULT_TIMER_FIRST_MS 1000 /* RFC 6347 4.2.4.1 */
#define TLSKIT_DTLS_DEFAULT_TIMER_MAX_MS 60000
#define TLSKIT_DTLS_DEFAULT_COOKIE_SECS 30

/* A new DTLS configuration with secure defaults (as tlskit_config_new()). NULL only when
 * out of memory. */
TLSKIT_API tlskit_config *tlskit_config_new_dtls(void);
/* The payload MTU: the most bytes one UDP datagram may carry (IP and UDP headers not
 * counted), 256 to 65507; default TLSKIT_DTLS_DEFAULT_MTU. Handshake messages are
 * fragmented to fit, and writes are limited to what fits (tlskit_conn_max_write()).
 * 0, or -1 (TLSKIT_E_INVALID: out of range, or not a DTLS config; or in use). */
TLSKIT_API int tlskit_config_set_mtu(tlskit_config *cfg, int bytes);
/* Retransmission of handshake flights: first after first_ms, then each delay doubles up
 * to max_ms (10 <= first_ms <= max_ms <= 600000). The HANDSHAKE deadline still bounds the
 * total. Defaults TLSKIT_DTLS_DEFAULT_TIMER_FIRST_MS / _MAX_MS. 0, or -1. */
TLSKIT_API int tlskit_config_set_dtls_timer(tlskit_config *cfg, int64_t first_ms,
                                            int64_t max_ms);
/* Server: cookies are an HMAC over the client's address and port and a time bucket of
 * secs seconds (1 to 3600, default TLSKIT_DTLS_DEFAULT_COOKIE_SECS); the current and the
 * previous bucket are accepted, so a cookie lives between secs and 2 * secs. The key is
 * random per config. 0, or -1. */
TLSKIT_API int tlskit_config_set_dtls_cookie_lifetime(tlskit_config *cfg, int64_t secs);
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

/* DTLS client (cfg from tlskit_config_new_dtls()): resolve host, and connect a UDP socket
 * to its first address (the library owns the socket). Nothing is sent yet: the
 * handshake follows as for TLS (tlskit_conn_handshake(), blocking with retransmissions,
 * or non-blocking: call it again on readiness or when tlskit_conn_timeout_ms() says the
 * retransmission timer expired). An ICMP port unreachable during the handshake fails it
 * with TLSKIT_E_CONNECT. Errors: TLSKIT_E_INVALID (not a DTLS config), _RESOLVE,
 * _CONNECT. A DTLS config refuses tlskit_conn_connect() and tlskit_conn_wrap_server();
 * tlskit_conn_wrap_client() takes a connected UDP socket (the caller's, e.g. bound to a
 * chosen local port). */
TLSKIT_API int tlskit_conn_connect_udp(tlskit_conn *conn, const char *host, const char *port);
/* The most bytes one tlskit_conn_write() takes: on a DTLS connection after the handshake,
 * what fits in one datagram of the MTU with the agreed cipher's overhead (a write of one
 * byte more fails with TLSKIT_E_LIMIT and changes nothing); 0 before the handshake;
 * SIZE_MAX on a TLS connection (any size). */
TLSKIT_API size_t tlskit_conn_max_write(const tlskit_conn *conn);
/* DTLS: handshake flights this connection sent again after its timer expired. */
TLSKIT_API uint64_t tlskit_conn_retransmits(const tlskit_conn *conn);

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
/* Bytes written but not yet taken by the socket: those an engine connection has queued,
 * plus the encrypted records it has made of them that the socket has not taken yet (up to
 * 256 KiB); 0 for other connections, whose writes return only what the socket took. */
TLSKIT_API size_t tlskit_conn_pending(const tlskit_conn *conn);

/* Send close_notify and stop writing; reading remains possible until the peer closes
 * (TLS half-close). 0, -1, or WANT. On an engine connection: close_notify (or, plain,
 * the FIN) once the queued output is sent, further writes fail; returns 0. */
TLSKIT_API int tlskit_conn_shutdown(tlskit_conn *conn);
/* Send close_notify if not yet sent, then close the socket (if the library owns it).
 * Never waits for the peer's close_notify; waits for the socket to take our close_notify
 * at most the WRITE deadline, or 5 s when none is set. 0 or -1 (closed either way).
 * On an engine connection: close once the queued output is sent (close_notify
 * included); the engine then calls on_close and frees it. Returns 0. */
TLSKIT_API int tlskit_conn_close(tlskit_conn *conn);
/* On a connection served by the engine, the calls that drive a connection by hand
 * (tlskit_conn_handshake, _read, _set_nonblocking) fail with
 * TLSKIT_E_INVALID: the engine does that work, and data arrives in on_data. */

/* The socket, or -1. Still owned by the connection. */
TLSKIT_API int tlskit_conn_fd(const tlskit_conn *conn);
/* Milliseconds until the nearest deadline that applies to the connection's current
 * state (handshake, or idle; for DTLS also the retransmission timer), for a caller's
 * poll(); -1 if none applies. */
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

/* "127.0.0.1:4433" / "[::1]:4433", valid once connected or accepted. Behind the PROXY
 * protocol (tlskit_listener_set_proxy_protocol()), the client its header names, once the
 * header is read (the handshake's first step). */
TLSKIT_API const char *tlskit_conn_peer_addr(const tlskit_conn *conn);
TLSKIT_API int tlskit_conn_handshake_done(const tlskit_conn *conn);
/* 1 when the connection began with a PROXY v2 LOCAL header: the sender's own connection,
 * no client behind it (a load balancer's health check); 0 otherwise. */
TLSKIT_API int tlskit_conn_proxy_local(const tlskit_conn *conn);
/* 1 when it was a health check that ended as one: a LOCAL header, then the sender closed
 * or reset the connection before the handshake was done (HAProxy's check-send-proxy
 * does that); its error is then TLSKIT_E_CLOSED or TLSKIT_E_IO as usual. The engine
 * counts these in health_checks, not in handshakes_failed. */
TLSKIT_API int tlskit_conn_health_check(const tlskit_conn *conn);
/* Milliseconds since the connection was connected or accepted (0 before). */
TLSKIT_API int64_t tlskit_conn_age_ms(const tlskit_conn *conn);
/* Protocol ("TLSv1.3"), cipher ("TLS_AES_...") and key-exchange group, by OpenSSL's name
 * for it ("x25519", "secp256r1"; the config setter takes "X25519:P-256" too); NULL
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
 * when the config asked for none, "not checked (resumed session)" on a resumption,
 * "not checked (...)" when the handshake failed before (e.g. the chain did not verify). */
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
/* The PROXY protocol header (HAProxy's doc/proxy-protocol.txt) that tells a backend who
 * is on the other side of this connection: its peer as the source and the address the
 * peer reached as the destination (PROXY UNKNOWN / family UNSPEC when they are not both
 * IPv4 or both IPv6). TLSKIT_PROXY_V1: one text line ("PROXY TCP4 SRC DST SPORT
 * DPORT\r\n"). TLSKIT_PROXY_V2: binary, with, once the handshake is done, the TLVs
 * PP2_TYPE_ALPN (the protocol agreed), PP2_TYPE_AUTHORITY (the SNI received) and
 * PP2_TYPE_SSL (client bits SSL, CERT_CONN / CERT_SESS when the client presented a
 * certificate; verify 0 only when it was verified; subtypes SSL_VERSION "TLSv1.3",
 * SSL_CIPHER, and SSL_CN, the client certificate's common name). Written into buf (cap
 * bytes; TLSKIT_PROXY_HEADER_MAX is enough unless a name is unusually long). Returns the
 * length, or -1: TLSKIT_E_INVALID (version), TLSKIT_E_LIMIT (cap too small). */
#define TLSKIT_PROXY_V1 1
#define TLSKIT_PROXY_V2 2
#define TLSKIT_PROXY_HEADER_MAX 2048
TLSKIT_API ssize_t tlskit_conn_proxy_header(tlskit_conn *conn, int version, void *buf,
                                            size_t cap);

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
/* Listen on sockets made elsewhere instead: bound, listening TCP sockets (IPv4 or IPv6),
 * e.g. those systemd hands a socket-activated service (LISTEN_FDS; reading those
 * variables is the caller's job). Each is checked (a stream socket, listening, TCP over
 * IPv4 or IPv6) and made non-blocking and close-on-exec. On success the listener owns
 * them (tlskit_listener_free() closes them); on failure they stay the caller's. 1 to 16
 * sockets. Errors: TLSKIT_E_LISTEN naming the fd and why ("listen on given socket fd 3:
 * not listening"), TLSKIT_E_INVALID for a bad count. */
TLSKIT_API int tlskit_listener_adopt_fds(tlskit_listener *l, const int *fds, size_t n);
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
/* Turn away a client accepted with tlskit_listener_accept(), before its handshake (too
 * many clients, no thread or memory to serve it): a fatal internal_error alert (RFC 8446
 * section 6.2: a resource the server lacks, nothing the client did) where the client
 * expects the ServerHello, then the connection is closed. Never waits: what the client
 * has already sent is dropped so that the close is not a reset (what comes later may
 * still get one, after the alert). The engine does this itself beyond max_conns. 0, or
 * -1 with TLSKIT_E_INVALID for any other connection (nothing sent). tlskit_conn_free()
 * it afterwards as usual. */
TLSKIT_API int tlskit_conn_refuse(tlskit_conn *conn);
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
    /* Decrypted bytes arrived: what has come in so far, up to 256 KiB per call (several
     * TLS records gathered; less with a write limit under 1 MiB: a quarter of it, at
     * least 16 KiB). The buffer is valid during the call only. */
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
    /* Half-close. The peer will send nothing more (close_notify, or the FIN of a plain
     * connection) but may still read: the connection stays open for writing until the
     * application calls tlskit_conn_shutdown() (or _close()); on_close follows once both
     * directions are done. May be NULL: the connection is then closed once its queued
     * output is sent (the behaviour before on_eof existed). */
    void (*on_eof)(tlskit_conn *conn, void *arg);
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
    /* Outbound connections (tlskit_engine_connect()): connected, and failed before they
     * were open (refused, unreachable, unresolved, CONNECT deadline, TLS handshake).
     * They are not in open, accepted, handshakes_* or bytes_*: those count clients. */
    uint64_t connects, connect_failures;
    /* DTLS (an engine with a DTLS config): HelloVerifyRequests sent (one per ClientHello
     * without a valid cookie), ClientHellos whose cookie did not verify (another address
     * or port, expired, forged), handshake flights sent again, and datagrams dropped
     * (from unknown peers and not a ClientHello, malformed, over the half-open cap, or
     * not taken by a full socket buffer). */
    uint64_t dtls_cookies_sent, dtls_cookie_failures, dtls_retransmissions, dtls_drops;
    /* PROXY protocol: connections that sent a LOCAL header and were closed before their
     * handshake (a load balancer's health checks; tlskit_conn_health_check()). */
    uint64_t health_checks;
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
/* on: the engine accepts plain TCP connections (no TLS; the config then needs no
 * certificate: only its socket options and deadlines apply), e.g. the local side of a
 * tunnel (tlsclient --listen). A plain connection is a tlskit_conn without TLS: the same
 * calls and callbacks, on_open at once, a FIN is its clean end (on_eof), and the TLS
 * details (protocol, cipher, peer certificate...) are NULL / 0. Default off. */
TLSKIT_API int tlskit_engine_set_plain(tlskit_engine *e, int on);
/* fn(arg) is called on a worker thread once that worker has gone quiet after a change:
 * at least TLSKIT_ENGINE_QUIET_CHANGES connections opened, finished their handshake or
 * closed since the last call, then none for TLSKIT_ENGINE_QUIET_MS. Never under steady
 * load, at most once per quiet spell and worker. A moment to give memory back, e.g.
 * glibc's malloc_trim(0), which tlsserver calls: after a burst of handshakes, OpenSSL's
 * freed buffers otherwise stay in the heap between live objects. The engine itself never
 * calls into the allocator beyond malloc/free. fn NULL: no calls (the default). Before
 * tlskit_engine_listen(), like the other settings; several workers may call fn at once. */
#define TLSKIT_ENGINE_QUIET_CHANGES 32
#define TLSKIT_ENGINE_QUIET_MS 200
TLSKIT_API int tlskit_engine_set_on_quiet(tlskit_engine *e, void (*fn)(void *arg), void *arg);
/* fn(worker, event, arg) runs on each worker thread (worker: 0 to workers - 1):
 *   TLSKIT_WORKER_START  once, as the worker starts, before it handles any event;
 *   TLSKIT_WORKER_TICK   then every TLSKIT_ENGINE_TICK_MS, after the engine's own
 *                        deadline sweep (also while the engine stops).
 * There fn may do what a callback may do with the connections of that worker, and open
 * new ones with tlskit_engine_connect(e, NULL, ...): the way a client-side engine starts
 * (see tlskit_engine_start()). The tick is the place for the application's own timers (a
 * retry after a pause, a deadline of its protocol) and for work another thread asks for
 * (a flag that thread sets and the tick reads): nothing else runs on a worker but
 * callbacks. What fn did (a close, a write) is carried out as it returns. fn NULL: none
 * (the default). Before tlskit_engine_listen() / _start(), like the other settings. */
#define TLSKIT_WORKER_START 1
#define TLSKIT_WORKER_TICK 2
#define TLSKIT_ENGINE_TICK_MS 50
TLSKIT_API int tlskit_engine_set_on_worker(tlskit_engine *e,
                                           void (*fn)(int worker, int event, void *arg),
                                           void *arg);

/* Bind the listening sockets (as tlskit_listener_listen: "localhost" means both
 * families; port "0" picks one free port for all). */
TLSKIT_API int tlskit_engine_listen(tlskit_engine *e, const char *host, const char *port,
                                    int backlog);
/* Instead of tlskit_engine_listen(): serve sockets made elsewhere, as
 * tlskit_listener_adopt_fds() takes them (systemd socket activation). Every worker
 * accepts from them (each holds its own duplicates); on success the engine has closed
 * the fds given, on failure they stay the caller's. */
TLSKIT_API int tlskit_engine_adopt_fds(tlskit_engine *e, const int *fds, size_t n);
TLSKIT_API int tlskit_engine_port(const tlskit_engine *e);
TLSKIT_API const char *tlskit_engine_addrs(const tlskit_engine *e);

/* Start the worker threads; returns at once. Without tlskit_engine_listen() or
 * _adopt_fds() before it, a client-side engine: its workers accept nothing and run the
 * connections the application opens with tlskit_engine_connect() (from the worker hook,
 * tlskit_engine_set_on_worker(), then from callbacks), with the same callbacks, buffering
 * and deadlines. Settings are then closed, as after listening. Not with a DTLS config
 * (TLSKIT_E_INVALID). tlskit_engine_stop() ends them as it ends accepted ones. */
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

/* Outbound connections. From a callback of `beside` (a connection the engine serves),
 * open a new connection on the same worker thread, so that the two can be paired (a
 * proxy) with no locking: both are only ever touched by that thread. beside NULL: on the
 * worker whose thread calls (from the worker hook, tlskit_engine_set_on_worker(), or any
 * callback); e.g. a load generator opening the next connection from on_close. That
 * fails once tlskit_engine_stop() began (errno ECANCELED), so that a stopping client
 * engine does not refill itself.
 * host: a name or address with port; or "unix:/PATH" for a UNIX-domain socket (port is
 * then ignored). flags 0: a TLS client, verified as tlskit_conn_connect() verifies (the
 * config's trust store, pins, host name = host; tlskit_conn_set_servername() and
 * tlskit_conn_set_session() work on it until the callback returns). flags
 * TLSKIT_CONNECT_PLAIN: plain TCP / UNIX socket, no TLS (see tlskit_engine_set_plain()).
 * cfg (a reference is taken) gives the deadlines: CONNECT (resolving the name, then
 * every resolved address in turn, all together), then HANDSHAKE, IDLE and WRITE as for
 * accepted connections, and the socket options. Nothing here blocks the worker: an IP
 * address (or unix:PATH) is connected to at once; a name is handed to the engine's
 * resolver (getaddrinfo() on at most two threads of its own, started at the first name
 * and detached) and the connection waits for the answer within the CONNECT deadline
 * ("resolve NAME port P: timed out after 2.000 s", TLSKIT_E_TIMEOUT); closing it, or
 * freeing the engine, meanwhile never waits for the lookup. connect() itself never
 * blocks.
 * Returns the new connection at once, connecting: write to it now (the bytes are sent
 * once it is open), set its userdata. It gets the engine's callbacks like any other:
 * on_open when connected (and the TLS handshake done), then on_data, on_drain, on_eof,
 * on_close. Every failure, resolving included, is reported by on_close (never before
 * this call returns) with TLSKIT_E_RESOLVE, _CONNECT ("connect to 127.0.0.1:8080:
 * Connection refused"), _TIMEOUT ("connect to ...: timed out after 2.000 s"), or the
 * handshake's class, and counted in connect_failures. NULL only for bad arguments
 * (beside not an engine connection of e, or NULL off e's worker threads, no host or
 * port, a port out of range: "engine connect: port 99999 is out of range (0 to 65535)")
 * or no memory: then tlskit_conn_error(beside) says which, or with beside NULL,
 * errno (EINVAL, ENOMEM, ECANCELED). */
#define TLSKIT_CONNECT_PLAIN 1
TLSKIT_API tlskit_conn *tlskit_engine_connect(tlskit_engine *e, tlskit_conn *beside,
                                              tlskit_config *cfg, const char *host,
                                              const char *port, int flags);

/* Pairing two engine connections (a proxy), with the calls above:
 *   on_data(a):  tlskit_conn_write(b, ...); if tlskit_conn_pending(b) is over a mark
 *                (well under the write limit), tlskit_conn_read_stop(a);
 *   on_drain(b): tlskit_conn_read_start(a) - so a slow reader on either side stops
 *                reading on the other, and a pair holds about the mark plus one read
 *                (256 KiB) in memory per direction;
 *   on_eof(a):   tlskit_conn_shutdown(b) - the half-close carried across;
 *   on_close(a): tlskit_conn_close(b) after a clean end, tlskit_conn_abort(b) after an
 *                error, and forget b (its own on_close comes later).
 * read_stop: the engine stops reading from the connection (its peer then fills its
 * socket buffers and waits); read_start: it reads again (data already waiting is read).
 * Engine connections only: else -1 with TLSKIT_E_INVALID. */
TLSKIT_API int tlskit_conn_read_stop(tlskit_conn *conn);
TLSKIT_API int tlskit_conn_read_start(tlskit_conn *conn);
/* End an engine connection now, without sending what is queued and without
 * close_notify; the peer gets a reset (so it cannot mistake the end for a complete
 * stream: the way to pass an error across a pair). on_close follows with
 * TLSKIT_E_CLOSED and why (NULL: "aborted"). 0, or -1 for a connection not served by
 * the engine. */
TLSKIT_API int tlskit_conn_abort(tlskit_conn *conn, const char *why);

/* ---------------------------------------------------------------------------------------
 * PROXY protocol in front of TLS (HAProxy's doc/proxy-protocol.txt, v1 and v2)
 *
 * A load balancer in TCP mode (HAProxy `send-proxy` / `send-proxy-v2`, nginx
 * `proxy_protocol on`, cloud load balancers) sends one header with the client's address
 * before the client's bytes. With the PROXY protocol on, a listener or engine expects it
 * on every connection it accepts, v1 or v2 (told apart by the first byte):
 *   - The header is read from the socket before the handshake, exactly to its end: the
 *     ClientHello that arrived in the same segment stays for TLS.
 *   - It is validated fully: v1's syntax (one line of at most 107 bytes, TCP4 / TCP6 /
 *     UNKNOWN, addresses of the named family, ports 0..65535); v2's signature, version,
 *     command, family and transport, the address block's size for the family, every
 *     TLV's bounds (SSL sub-TLVs too) and the PP2_TYPE_CRC32C checksum when present; at
 *     most TLSKIT_PROXY_MAX_HEADER bytes. A bad header fails the handshake with
 *     TLSKIT_E_PROTOCOL ("PROXY header from 127.0.0.1:40000: v2: CRC32C mismatch ..."),
 *     one cut short by the peer with TLSKIT_E_CLOSED.
 *   - Its source address becomes tlskit_conn_peer_addr() ("203.0.113.7:51234",
 *     "[2001:db8::7]:443", "unix:/run/x.sock"). A v2 LOCAL header (health checks) and a
 *     v1 UNKNOWN or v2 UNSPEC one keep the socket's own peer, as the spec says.
 *   - Only trusted senders may send it: the connection's own peer must be inside one of
 *     the prefixes given with _add_proxy_from() (by default, when none is given:
 *     127.0.0.0/8 and ::1, loopback). A connection from anywhere else fails at once,
 *     before a byte is read, with TLSKIT_E_PROTOCOL ("... is not a trusted PROXY
 *     sender").
 *   - The header has its own deadline, timeout_ms from accept (0:
 *     TLSKIT_PROXY_DEFAULT_TIMEOUT_MS): a sender that stays silent fails with
 *     TLSKIT_E_TIMEOUT. The TLS handshake deadline starts once the header is read.
 * This works alike on the blocking path (tlskit_listener_accept() then
 * tlskit_conn_handshake(), which reads the header first) and in the engine (the failure
 * reaches on_close, counted as a failed handshake of its class). Settings are made
 * before listening (engine) or before accepting (listener), from one thread; they belong
 * to the listening side, not the config, so a reload keeps them.
 * ------------------------------------------------------------------------------------- */

#define TLSKIT_PROXY_MAX_HEADER 4096           /* v2: 16 bytes + addresses + TLVs */
#define TLSKIT_PROXY_DEFAULT_TIMEOUT_MS 10000
#define TLSKIT_PROXY_MAX_FROM 64               /* trusted prefixes per listener/engine */

/* on: 1 expects a header on every connection, 0 (the default) none. 0, or -1. */
TLSKIT_API int tlskit_listener_set_proxy_protocol(tlskit_listener *l, int on,
                                                  int64_t timeout_ms);
TLSKIT_API int tlskit_engine_set_proxy_protocol(tlskit_engine *e, int on, int64_t timeout_ms);
/* Trust PROXY headers from this sender: "ADDR" or "ADDR/BITS", IPv4 or IPv6
 * ("10.0.0.0/8", "192.0.2.7", "2001:db8::/32"); each call adds one (replacing the
 * loopback default), at most TLSKIT_PROXY_MAX_FROM. Host bits set below the prefix are
 * refused as a likely mistake ("10.1.2.3/8"). An IPv4 prefix also covers the
 * IPv4-mapped IPv6 form of its addresses. 0, or -1 with TLSKIT_E_INVALID naming the
 * fault (tlskit_proxy_from_check() says it without an object). */
TLSKIT_API int tlskit_listener_add_proxy_from(tlskit_listener *l, const char *cidr);
TLSKIT_API int tlskit_engine_add_proxy_from(tlskit_engine *e, const char *cidr);
TLSKIT_API int tlskit_proxy_from_check(const char *cidr, char *why, size_t why_len);

/* The parser itself, for callers that read headers from their own sockets. */
#define TLSKIT_PROXY_CMD_LOCAL 0  /* v2 LOCAL: no client behind it (health check) */
#define TLSKIT_PROXY_CMD_PROXY 1
#define TLSKIT_PROXY_AF_UNSPEC 0  /* v1 UNKNOWN, v2 UNSPEC: use the socket's addresses */
#define TLSKIT_PROXY_AF_INET 1
#define TLSKIT_PROXY_AF_INET6 2
#define TLSKIT_PROXY_AF_UNIX 3
#define TLSKIT_PROXY_UNSPEC 0     /* transport */
#define TLSKIT_PROXY_STREAM 1
#define TLSKIT_PROXY_DGRAM 2
#define TLSKIT_PROXY_ADDRLEN 128
struct tlskit_proxy_header {
    int version;    /* 1 or 2 */
    int command;    /* TLSKIT_PROXY_CMD_*; v1 is always PROXY */
    int family;     /* TLSKIT_PROXY_AF_* */
    int transport;  /* TLSKIT_PROXY_UNSPEC/STREAM/DGRAM (v1: STREAM, UNKNOWN: UNSPEC) */
    char src[TLSKIT_PROXY_ADDRLEN]; /* "192.0.2.1:51234", "[2001:db8::1]:443",
                                     * "unix:/path" ("@name": abstract); "" for UNSPEC */
    char dst[TLSKIT_PROXY_ADDRLEN];
    size_t tlv_len; /* v2: bytes of TLVs after the addresses */
    int crc32c;     /* v2: a PP2_TYPE_CRC32C TLV was present (and matched) */
    size_t length;  /* the header's length in bytes */
};
/* Parse the start of a connection's bytes, buf[0..len), as a PROXY header, no more than
 * max_len bytes long (0 or more than TLSKIT_PROXY_MAX_HEADER: that; v1 lines may always
 * be 107). Returns the header's length (> 0; *out filled; the bytes after it are the
 * peer's own), 0 when more bytes are needed (every byte so far belongs to a header that
 * may still turn out valid: call again with more), or -1 when it is not a valid header,
 * with the reason in why (why_len bytes, may be 0). It fails as early as the bytes
 * allow: a client speaking TLS at once fails on its first byte. */
TLSKIT_API ssize_t tlskit_proxy_header_parse(const void *buf, size_t len, size_t max_len,
                                             struct tlskit_proxy_header *out, char *why,
                                             size_t why_len);

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
