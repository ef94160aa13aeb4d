/* SPDX-License-Identifier: MIT */
/* SNI: which of the config's keypairs a client gets. The name the client sends is matched
 * against each leaf's DNS SANs, exactly first, then against a "*." wildcard standing for
 * exactly one label (RFC 6125 6.4.3, as browsers do), case-insensitively. Every keypair
 * of the chosen name is installed, one per key type, so that ECDSA and RSA certificates
 * for one name coexist and OpenSSL picks by the client's signature algorithms. No name,
 * or one nothing matches, gets the default group (the first keypair and, of other key
 * types, those sharing its first DNS name), unless the config is strict: then the client
 * gets an unrecognized_name alert (RFC 6066 3).
 * The default group lives in the SSL_CTX, so the common case costs one lookup; another
 * group replaces the keys of that connection's SSL in the servername callback, which
 * OpenSSL runs after parsing the ClientHello and before choosing the certificate. */
#include "internal.h"

#include <openssl/err.h>
#include <string.h>
#include <strings.h>

#define SNI_GROUP_MAX 8 /* key types in one handshake: RSA, RSA-PSS, EC, Ed25519, ... */

struct group {
    size_t idx[SNI_GROUP_MAX];
    size_t n;
};

/* A bit per key type, for the set of types installed in the SSL_CTX. */
static unsigned type_bit(int type)
{
    switch (type) {
    case EVP_PKEY_RSA: return 1u;
    case EVP_PKEY_RSA_PSS: return 2u;
    case EVP_PKEY_EC: return 4u;
    case EVP_PKEY_ED25519: return 8u;
    case EVP_PKEY_ED448: return 16u;
    default: return 32u;
    }
}

/* Add keypair i unless the group already has a key of its type (the first added wins). */
static void group_add(const tlskit_config *cfg, struct group *g, size_t i)
{
    for (size_t j = 0; j < g->n; j++)
        if (type_bit(cfg->keypairs[g->idx[j]].type) == type_bit(cfg->keypairs[i].type))
            return;
    if (g->n < SNI_GROUP_MAX)
        g->idx[g->n++] = i;
}

/* A "*." SAN matches a host of one more label: "*.example.org" takes "a.example.org", not
 * "example.org" nor "a.b.example.org"; a '*' anywhere else matches nothing. */
static int wildcard_match(const char *san, const char *host, size_t hostlen)
{
    if (san[0] != '*' || san[1] != '.' || strchr(san + 1, '*'))
        return 0;
    const char *dot = memchr(host, '.', hostlen);
    if (!dot || dot == host)
        return 0;
    size_t rest = hostlen - (size_t)(dot - host);
    return strlen(san + 1) == rest && strncasecmp(san + 1, dot, rest) == 0;
}

static int name_match(const struct tlskit__keypair *kp, const char *host, size_t hostlen,
                      int wildcard)
{
    for (size_t i = 0; i < kp->nnames; i++) {
        const char *san = kp->names[i];
        if (wildcard ? wildcard_match(san, host, hostlen)
                     : strlen(san) == hostlen && strncasecmp(san, host, hostlen) == 0)
            return 1;
    }
    return 0;
}

/* The keypairs for host: exact matches, else wildcard matches; n == 0 when none. */
static void group_for(const tlskit_config *cfg, const char *host, struct group *g)
{
    size_t len = strlen(host);
    if (len > 0 && host[len - 1] == '.') /* "example.org." is "example.org" */
        len--;
    g->n = 0;
    for (int wildcard = 0; wildcard < 2 && g->n == 0; wildcard++)
        for (size_t i = 0; i < cfg->nkeypairs; i++)
            if (name_match(&cfg->keypairs[i], host, len, wildcard))
                group_add(cfg, g, i);
}

/* The first keypair and, of other types, the keypairs for its first DNS name. */
static void group_default(const tlskit_config *cfg, struct group *g)
{
    g->n = 0;
    if (cfg->nkeypairs == 0)
        return;
    group_add(cfg, g, 0);
    const struct tlskit__keypair *first = &cfg->keypairs[0];
    if (first->nnames == 0)
        return;
    for (size_t i = 1; i < cfg->nkeypairs; i++)
        if (name_match(&cfg->keypairs[i], first->names[0], strlen(first->names[0]), 0))
            group_add(cfg, g, i);
}

static int group_equal(const struct group *a, const struct group *b)
{
    return a->n == b->n && memcmp(a->idx, b->idx, a->n * sizeof(a->idx[0])) == 0;
}

/* The servername callback: runs for every ClientHello, with or without SNI. */
static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    const tlskit_config *cfg = arg;
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    struct group want, def;

    if (cfg->nkeypairs == 0)
        return SSL_TLSEXT_ERR_OK;
    want.n = 0;
    if (host && *host)
        group_for(cfg, host, &want);
    if (want.n == 0 && cfg->sni_strict) {
        /* Queued for the server's own error text (conn_fail.c drains the queue). */
        if (host && *host)
            ERR_raise_data(ERR_LIB_SSL, SSL_R_TLSV1_UNRECOGNIZED_NAME,
                           "(strict SNI: no certificate for \"%.255s\")", host);
        else
            ERR_raise_data(ERR_LIB_SSL, SSL_R_TLSV1_UNRECOGNIZED_NAME,
                           "(strict SNI: the client sent no server name)");
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    group_default(cfg, &def);
    if (want.n == 0)
        want = def;
    if (!cfg->sni_ctx_stale && group_equal(&want, &def))
        return SSL_TLSEXT_ERR_OK; /* the SSL_CTX's keys, copied into the SSL, are right */
    /* Only keys of the chosen name: a stale key of another type must not be served. */
    SSL_certs_clear(ssl);
    for (size_t i = 0; i < want.n; i++) {
        const struct tlskit__keypair *kp = &cfg->keypairs[want.idx[i]];
        if (SSL_use_cert_and_key(ssl, kp->leaf, kp->pkey, kp->chain, 1) != 1) {
            *alert = SSL_AD_INTERNAL_ERROR;
            return SSL_TLSEXT_ERR_ALERT_FATAL;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

int tlskit__sni_install(tlskit_config *cfg)
{
    struct group def;
    unsigned types = 0;

    group_default(cfg, &def);
    for (size_t i = 0; i < def.n; i++) {
        const struct tlskit__keypair *kp = &cfg->keypairs[def.idx[i]];
        ERR_clear_error();
        if (SSL_CTX_use_cert_and_key(cfg->ctx, kp->leaf, kp->pkey, kp->chain, 1) != 1) {
            tlskit__err_set_ssl(&cfg->err, TLSKIT_E_CONFIG, NULL, "certificate \"%s\": cannot "
                                "use it", kp->subject);
            return -1;
        }
        types |= type_bit(kp->type);
    }
    /* The SSL_CTX cannot drop a key: after a replacement by another type, the old one is
     * still there, and every connection gets its keys set (sni_cb). */
    cfg->sni_ctx_types |= types;
    cfg->sni_ctx_stale = (cfg->sni_ctx_types & ~types) != 0;
    SSL_CTX_set_tlsext_servername_callback(cfg->ctx, sni_cb);
    SSL_CTX_set_tlsext_servername_arg(cfg->ctx, cfg);
    return 0;
}

int tlskit__sni_index(const tlskit_config *cfg, const X509 *x)
{
    for (size_t i = 0; x && i < cfg->nkeypairs; i++)
        if (cfg->keypairs[i].leaf == x)
            return (int)i;
    return -1;
}

int tlskit_config_set_sni_strict(tlskit_config *cfg, int on)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    cfg->sni_strict = on != 0;
    return 0;
}
