/* SPDX-License-Identifier: MIT */
/* tlskit_config: settings -> one SSL_CTX (TLS_method) used for both roles; the
 * per-role verification settings are applied to each SSL in conn.c. */
#include "internal.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* TLS 1.2: forward-secret AEAD suites only (what scanners grade A). TLS 1.3 suites are
 * all AEAD and keep OpenSSL's default order. */
#define TK_DEFAULT_CIPHERS                                                  \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"            \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"            \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* TLS 1.3 in the same order as TLS 1.2 above (Mozilla's recommendation): AES-128-GCM
 * first, as strong as needed and a quarter cheaper per byte than AES-256-GCM. */
#define TK_DEFAULT_SUITES \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

tlskit_config *tlskit_config_new(void)
{
    tlskit_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return NULL;
    ERR_clear_error();
    cfg->ctx = SSL_CTX_new(TLS_method());
    if (!cfg->ctx) {
        ERR_clear_error();
        free(cfg);
        return NULL;
    }
    if (pthread_mutex_init(&cfg->mu, NULL) != 0) {
        SSL_CTX_free(cfg->ctx);
        free(cfg);
        return NULL;
    }
    atomic_init(&cfg->refs, 1);
    atomic_init(&cfg->frozen, 0);
    cfg->verify_cert = 1;
    cfg->verify_name = 1;
    cfg->nodelay = 1;
    cfg->keylog_fd = -1;
    SSL_CTX *ctx = cfg->ctx;
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Send exactly the chain given with the key, never one rebuilt from the trust
     * store at each handshake. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_NO_AUTO_CHAIN);
    /* Read what the socket has, not a record header and then its body: half the
     * recv() calls (nginx does the same). Records already read wait inside OpenSSL, so
     * every reader reads until WANT_READ before polling again (conn.c, engine.c). */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* One TLS 1.3 ticket per full handshake instead of OpenSSL's two: a client resumes
     * with the newest one, and each ticket costs the server an encryption and a write. */
    SSL_CTX_set_num_tickets(ctx, 1);
    /* The secure defaults must hold or the config must not exist: an allocation failure
     * here would otherwise leave OpenSSL's wider defaults in place. */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TK_DEFAULT_CIPHERS) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, TK_DEFAULT_SUITES) != 1 ||
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"tlskit", 6) != 1) {
        ERR_clear_error();
        tlskit_config_free(cfg);
        return NULL;
    }
    /* Called only when a server asks a client that has no certificate for one: noted so
     * the failure that follows is reported as a verification problem. */
    SSL_CTX_set_client_cert_cb(ctx, tlskit__client_cert_cb);
    /* Our own ticket keys, not OpenSSL's per-SSL_CTX ones: they survive a reload. */
    cfg->tickets = tlskit__tickets_new(ctx);
    if (!cfg->tickets) {
        tlskit_config_free(cfg);
        return NULL;
    }
    return cfg;
}

tlskit_config *tlskit__config_ref(tlskit_config *cfg)
{
    atomic_fetch_add(&cfg->refs, 1);
    atomic_store(&cfg->frozen, 1);
    return cfg;
}

/* Start of every setter. A config in use is frozen: its SSL_CTX and fields are read by
 * connections on other threads without a lock, and a change would reach some
 * connections and not others. Reloading a new config is the way to change settings. */
int tlskit__config_settable(tlskit_config *cfg)
{
    tlskit__err_clear(&cfg->err);
    if (!atomic_load(&cfg->frozen))
        return 0;
    tlskit__err_set(&cfg->err, TLSKIT_E_INVALID, "config in use: build a new one and reload");
    return -1;
}

void tlskit_config_free(tlskit_config *cfg)
{
    if (!cfg || atomic_fetch_sub(&cfg->refs, 1) != 1)
        return;
    SSL_CTX_free(cfg->ctx);
    tlskit__tickets_free(cfg->tickets);
    free(cfg->pins);
    tlskit__allowed_free(cfg);
    if (cfg->keylog_fd >= 0)
        close(cfg->keylog_fd);
    tlskit__keypairs_free(cfg);
    free(cfg->alpn);
    sk_X509_NAME_pop_free(cfg->ca_names, X509_NAME_free);
    tlskit__err_free(&cfg->err);
    pthread_mutex_destroy(&cfg->mu);
    free(cfg);
}

const char *tlskit_config_error(const tlskit_config *cfg)
{
    return cfg ? tlskit__err_text(&cfg->err) : "no config";
}

int tlskit_config_error_code(const tlskit_config *cfg)
{
    return cfg ? cfg->err.code : TLSKIT_E_INVALID;
}

struct ssl_ctx_st *tlskit_config_ssl_ctx(tlskit_config *cfg)
{
    return cfg->ctx;
}

int tlskit__config_prepare(tlskit_config *cfg, struct tlskit__err *err)
{
    int rc = 0;
    pthread_mutex_lock(&cfg->mu);
    if (!cfg->ca_set && !cfg->system_ca_loaded) {
        ERR_clear_error();
        if (SSL_CTX_set_default_verify_paths(cfg->ctx) != 1) {
            tlskit__err_set_ssl(err, TLSKIT_E_CONFIG, NULL, "loading the system trust store");
            rc = -1;
        } else {
            cfg->system_ca_loaded = 1;
        }
    }
    pthread_mutex_unlock(&cfg->mu);
    return rc;
}

/* ---- trust anchors and verification ---- */

/* The CertificateRequest's certificate_authorities: the SSL_CTX's client CA list, from
 * the names kept in the config (none when turned off). 0, or -1 when out of memory. */
static int apply_ca_names(tlskit_config *cfg)
{
    STACK_OF(X509_NAME) *names = NULL;
    if (!cfg->no_ca_names && cfg->ca_names && !(names = SSL_dup_CA_list(cfg->ca_names))) {
        ERR_clear_error();
        tlskit__err_set(&cfg->err, TLSKIT_E_NOMEM, "CA names: out of memory");
        return -1;
    }
    SSL_CTX_set_client_CA_list(cfg->ctx, names);
    return 0;
}

/* Keep x's subject for the CA names. 0, or -1 when out of memory. */
static int keep_ca_name(tlskit_config *cfg, X509 *x)
{
    X509_NAME *name = X509_NAME_dup(X509_get_subject_name(x));
    if (!cfg->ca_names)
        cfg->ca_names = sk_X509_NAME_new_null();
    if (!name || !cfg->ca_names || !sk_X509_NAME_push(cfg->ca_names, name)) {
        X509_NAME_free(name);
        ERR_clear_error();
        tlskit__err_set(&cfg->err, TLSKIT_E_NOMEM, "CA names: out of memory");
        return -1;
    }
    return 0;
}

static int add_ca(tlskit_config *cfg, const char *label, const void *buf, size_t len)
{
    STACK_OF(X509) *certs = NULL;
    int n = tlskit__parse_certs(&cfg->err, label, buf, len, NULL, &certs);
    if (n < 0) {
        sk_X509_pop_free(certs, X509_free); /* the ones parsed before the bad one */
        return -1;
    }
    X509_STORE *store = SSL_CTX_get_cert_store(cfg->ctx);
    for (int i = 0; i < sk_X509_num(certs); i++) {
        ERR_clear_error();
        if (X509_STORE_add_cert(store, sk_X509_value(certs, i)) != 1) {
            unsigned long e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
                ERR_GET_REASON(e) == X509_R_CERT_ALREADY_IN_HASH_TABLE) {
                ERR_clear_error();
                continue;
            }
            tlskit__err_set_ssl(&cfg->err, TLSKIT_E_CONFIG, NULL, "%s: cannot add CA", label);
            sk_X509_pop_free(certs, X509_free);
            return -1;
        }
        if (keep_ca_name(cfg, sk_X509_value(certs, i)) != 0) {
            sk_X509_pop_free(certs, X509_free);
            return -1;
        }
    }
    sk_X509_pop_free(certs, X509_free);
    cfg->ca_set = 1;
    if (strcmp(label, "CA (memory)") == 0)
        tlskit__trust_note(cfg, "CA data in memory", NULL);
    else
        tlskit__trust_note(cfg, "CA file", label);
    return apply_ca_names(cfg);
}

int tlskit_config_set_ca_names(tlskit_config *cfg, int on)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    cfg->no_ca_names = !on;
    return apply_ca_names(cfg);
}

int tlskit__config_args(tlskit_config *cfg, const void *arg, const char *what)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    if (!arg) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID, "%s is required", what);
        return -1;
    }
    return 0;
}

int tlskit__config_add_file(tlskit_config *cfg, const char *path, const char *what,
                            int (*add)(tlskit_config *cfg, const char *label, const void *buf,
                                       size_t len))
{
    char *buf = NULL;
    size_t len = 0;
    if (tlskit__config_args(cfg, path, what) != 0 ||
        tlskit__read_file(&cfg->err, path, &buf, &len) != 0)
        return -1;
    int rc = add(cfg, path, buf, len);
    free(buf);
    return rc;
}

int tlskit__config_add_mem(tlskit_config *cfg, const void *buf, size_t len, const char *what,
                           const char *label,
                           int (*add)(tlskit_config *cfg, const char *label, const void *buf,
                                      size_t len))
{
    if (tlskit__config_args(cfg, buf, what) != 0)
        return -1;
    return add(cfg, label, buf, len);
}

int tlskit_config_add_ca_file(tlskit_config *cfg, const char *ca_file)
{
    return tlskit__config_add_file(cfg, ca_file, "CA file name", add_ca);
}

int tlskit_config_add_ca_mem(tlskit_config *cfg, const void *ca, size_t len)
{
    return tlskit__config_add_mem(cfg, ca, len, "CA data", "CA (memory)", add_ca);
}

int tlskit_config_add_ca_dir(tlskit_config *cfg, const char *ca_dir)
{
    struct stat st;
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    if (!ca_dir) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID, "CA directory name is required");
        return -1;
    }
    if (stat(ca_dir, &st) != 0) {
        tlskit__err_set_errno(&cfg->err, TLSKIT_E_FILE, errno, "%s", ca_dir);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        tlskit__err_set_errno(&cfg->err, TLSKIT_E_FILE, ENOTDIR, "%s", ca_dir);
        return -1;
    }
    ERR_clear_error();
    if (SSL_CTX_load_verify_dir(cfg->ctx, ca_dir) != 1) {
        tlskit__err_set_ssl(&cfg->err, TLSKIT_E_FILE, NULL, "%s: cannot use as CA directory",
                       ca_dir);
        return -1;
    }
    cfg->ca_set = 1;
    tlskit__trust_note(cfg, "CA directory", ca_dir);
    return 0;
}

int tlskit_config_add_system_ca(tlskit_config *cfg)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    ERR_clear_error();
    if (SSL_CTX_set_default_verify_paths(cfg->ctx) != 1) {
        tlskit__err_set_ssl(&cfg->err, TLSKIT_E_CONFIG, NULL, "loading the system trust store");
        return -1;
    }
    cfg->system_ca_loaded = 1;
    return 0;
}

int tlskit_config_insecure_noverifycert(tlskit_config *cfg)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    cfg->verify_cert = 0;
    return 0;
}

int tlskit_config_insecure_noverifyname(tlskit_config *cfg)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    cfg->verify_name = 0;
    return 0;
}

int tlskit_config_set_verify_client(tlskit_config *cfg, enum tlskit_verify_client mode)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    if (mode != TLSKIT_VERIFY_CLIENT_NONE && mode != TLSKIT_VERIFY_CLIENT_OPTIONAL &&
        mode != TLSKIT_VERIFY_CLIENT_REQUIRED) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID, "invalid client verification mode %d", mode);
        return -1;
    }
    cfg->verify_client = mode;
    return 0;
}

/* ---- protocol, ciphers, groups ---- */

int tlskit_protocol_parse(const char *text)
{
    if (!text)
        return -1;
    if (!strncasecmp(text, "TLSv", 4))
        text += 4;
    else if (!strncasecmp(text, "TLS", 3))
        text += 3;
    if (!strcmp(text, "1.2") || !strcmp(text, "1_2"))
        return TLSKIT_TLS1_2;
    if (!strcmp(text, "1.3") || !strcmp(text, "1_3"))
        return TLSKIT_TLS1_3;
    return -1;
}

static const char *proto_name(int v)
{
    return v == TLSKIT_TLS1_2 ? "TLS 1.2" : v == TLSKIT_TLS1_3 ? "TLS 1.3" : "?";
}

int tlskit_config_set_protocols(tlskit_config *cfg, int min_version, int max_version)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    if (min_version == 0)
        min_version = TLSKIT_TLS1_2;
    if (max_version == 0)
        max_version = TLSKIT_TLS1_3;
    if ((min_version != TLSKIT_TLS1_2 && min_version != TLSKIT_TLS1_3) ||
        (max_version != TLSKIT_TLS1_2 && max_version != TLSKIT_TLS1_3)) {
        tlskit__err_set(&cfg->err, TLSKIT_E_CONFIG,
                   "unsupported protocol version 0x%04x: only TLS 1.2 and TLS 1.3 are offered",
                   (min_version != TLSKIT_TLS1_2 && min_version != TLSKIT_TLS1_3)
                       ? (unsigned)min_version
                       : (unsigned)max_version);
        return -1;
    }
    if (min_version > max_version) {
        tlskit__err_set(&cfg->err, TLSKIT_E_CONFIG,
                   "empty protocol range: minimum %s is above maximum %s",
                   proto_name(min_version), proto_name(max_version));
        return -1;
    }
    SSL_CTX_set_min_proto_version(cfg->ctx, min_version);
    SSL_CTX_set_max_proto_version(cfg->ctx, max_version);
    return 0;
}

int tlskit_config_set_ciphers(tlskit_config *cfg, const char *tls12_ciphers)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    ERR_clear_error();
    if (!tls12_ciphers || SSL_CTX_set_cipher_list(cfg->ctx, tls12_ciphers) != 1) {
        tlskit__err_set_ssl(&cfg->err, TLSKIT_E_CONFIG, "no usable cipher",
                       "cipher list \"%s\"", tls12_ciphers ? tls12_ciphers : "(null)");
        return -1;
    }
    return 0;
}

int tlskit_config_set_ciphersuites(tlskit_config *cfg, const char *tls13_suites)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    ERR_clear_error();
    if (!tls13_suites || !*tls13_suites ||
        SSL_CTX_set_ciphersuites(cfg->ctx, tls13_suites) != 1) {
        tlskit__err_set_ssl(&cfg->err, TLSKIT_E_CONFIG, "no usable cipher suite",
                       "TLS 1.3 cipher suites \"%s\"", tls13_suites ? tls13_suites : "(null)");
        return -1;
    }
    return 0;
}

int tlskit_config_set_groups(tlskit_config *cfg, const char *groups)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    ERR_clear_error();
    if (!groups || SSL_CTX_set1_groups_list(cfg->ctx, groups) != 1) {
        tlskit__err_set_ssl(&cfg->err, TLSKIT_E_CONFIG, "unknown or unusable group",
                       "groups \"%s\"", groups ? groups : "(null)");
        return -1;
    }
    return 0;
}

/* ---- deadlines and socket options ---- */

int tlskit_config_set_timeout(tlskit_config *cfg, enum tlskit_timeout which, int64_t ms)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    if (which < TLSKIT_TIMEOUT_CONNECT || which > TLSKIT_TIMEOUT_IDLE) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID, "unknown timeout %d", which);
        return -1;
    }
    if (ms < 0) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID, "negative timeout %lld ms", (long long)ms);
        return -1;
    }
    cfg->timeouts[which] = ms;
    return 0;
}

int tlskit_config_set_buffer_sizes(tlskit_config *cfg, int rcvbuf, int sndbuf)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    if (rcvbuf < 0 || sndbuf < 0) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID, "negative socket buffer size");
        return -1;
    }
    cfg->rcvbuf = rcvbuf;
    cfg->sndbuf = sndbuf;
    return 0;
}

int tlskit_config_set_nodelay(tlskit_config *cfg, int on)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    cfg->nodelay = on != 0;
    return 0;
}

int tlskit_config_set_session_tickets(tlskit_config *cfg, int count)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    if (count < 0 || count > 16) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID,
                        "session tickets: %d is not 0..16", count);
        return -1;
    }
    SSL_CTX_set_num_tickets(cfg->ctx, (size_t)count);
    if (count == 0)
        SSL_CTX_set_options(cfg->ctx, SSL_OP_NO_TICKET);
    else
        SSL_CTX_clear_options(cfg->ctx, SSL_OP_NO_TICKET);
    return 0;
}

int tlskit_config_set_keepalive(tlskit_config *cfg, int on, int idle_s, int interval_s,
                                int count)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    if (idle_s < 0 || interval_s < 0 || count < 0) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID, "negative keepalive setting");
        return -1;
    }
    cfg->keepalive = on != 0;
    cfg->ka_idle = idle_s;
    cfg->ka_interval = interval_s;
    cfg->ka_count = count;
    return 0;
}
