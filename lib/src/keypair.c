/* SPDX-License-Identifier: MIT */
/* Keypairs: a certificate chain and its private key, from files or memory, parsed with
 * errors that name the file and the reason, checked against each other and against the
 * security level, and installed in the config's context. The PEM certificate reader is
 * shared with the trust store (config.c). */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* PEM passphrase callback: encrypted keys are refused rather than prompting on a tty
 * (a library must never read the terminal). */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Parse every PEM certificate in buf. Returns the count, or -1 (err set). */
int tlskit__parse_certs(struct tlskit__err *err, const char *label, const void *buf,
                        size_t len, X509 **leaf, STACK_OF(X509) **chain)
{
    int count = 0;
    if (len > INT32_MAX) {
        tlskit__err_set(err, TLSKIT_E_FILE, "%s: too large", label);
        return -1;
    }
    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    if (!bio) {
        tlskit__err_set(err, TLSKIT_E_NOMEM, "%s: out of memory", label);
        return -1;
    }
    for (;;) {
        ERR_clear_error();
        X509 *x = PEM_read_bio_X509(bio, NULL, no_password, NULL);
        if (!x) {
            unsigned long e = ERR_peek_last_error();
            if (count > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM &&
                ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                ERR_clear_error();
                break;
            }
            if (count == 0 && ERR_GET_LIB(e) == ERR_LIB_PEM &&
                ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                ERR_clear_error();
                tlskit__err_set(err, TLSKIT_E_FILE, "%s: no PEM certificate found", label);
            } else {
                tlskit__err_set_ssl(err, TLSKIT_E_FILE, "malformed certificate",
                               "%s: cannot parse certificate", label);
            }
            goto fail;
        }
        if (count == 0 && leaf) {
            *leaf = x;
        } else if (chain) {
            if (!*chain)
                *chain = sk_X509_new_null();
            if (!*chain || !sk_X509_push(*chain, x)) {
                X509_free(x);
                tlskit__err_set(err, TLSKIT_E_NOMEM, "%s: out of memory", label);
                goto fail;
            }
        } else {
            X509_free(x);
        }
        count++;
    }
    BIO_free(bio);
    return count;
fail:
    BIO_free(bio);
    return -1;
}

static EVP_PKEY *parse_key(struct tlskit__err *err, const char *label, const void *buf, size_t len)
{
    if (len > INT32_MAX) {
        tlskit__err_set(err, TLSKIT_E_FILE, "%s: too large", label);
        return NULL;
    }
    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    if (!bio) {
        tlskit__err_set(err, TLSKIT_E_NOMEM, "%s: out of memory", label);
        return NULL;
    }
    ERR_clear_error();
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    BIO_free(bio);
    if (!pkey) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
            ERR_clear_error();
            tlskit__err_set(err, TLSKIT_E_FILE, "%s: no PEM private key found", label);
        } else if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
                   ERR_GET_REASON(e) == PEM_R_BAD_PASSWORD_READ) {
            ERR_clear_error();
            tlskit__err_set(err, TLSKIT_E_FILE,
                       "%s: the private key is encrypted (passphrase-protected keys are "
                       "not supported)", label);
        } else {
            tlskit__err_set_ssl(err, TLSKIT_E_FILE, "malformed private key",
                           "%s: cannot parse private key", label);
        }
    }
    return pkey;
}

static const char *key_type(const EVP_PKEY *pkey)
{
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA: return "RSA";
    case EVP_PKEY_EC: return "EC";
    case EVP_PKEY_ED25519: return "Ed25519";
    case EVP_PKEY_ED448: return "Ed448";
    default: return "key";
    }
}

/* The leaf's DNS SANs, lower case, into kp. A name holding a NUL (a forged "a\0.b") can
 * never match a host name and is left out. 0, or -1 when out of memory. */
static int keypair_names(struct tlskit__keypair *kp)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(kp->leaf, NID_subject_alt_name, NULL, NULL);
    int n = sans ? sk_GENERAL_NAME_num(sans) : 0, rc = 0;
    if (n > 0 && !(kp->names = calloc((size_t)n, sizeof(*kp->names))))
        rc = -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != GEN_DNS || g->d.dNSName->length <= 0 ||
            memchr(g->d.dNSName->data, '\0', (size_t)g->d.dNSName->length))
            continue;
        char *name = strndup((const char *)g->d.dNSName->data, (size_t)g->d.dNSName->length);
        if (!name) {
            rc = -1;
            break;
        }
        for (char *p = name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        kp->names[kp->nnames++] = name;
    }
    GENERAL_NAMES_free(sans);
    ERR_clear_error();
    return rc;
}

static void keypair_clear(struct tlskit__keypair *kp)
{
    X509_free(kp->leaf);
    sk_X509_pop_free(kp->chain, X509_free);
    EVP_PKEY_free(kp->pkey);
    for (size_t i = 0; i < kp->nnames; i++)
        free(kp->names[i]);
    free(kp->names);
    free(kp->subject);
    free(kp->ocsp);
    memset(kp, 0, sizeof(*kp));
}

void tlskit__keypairs_free(tlskit_config *cfg)
{
    for (size_t i = 0; i < cfg->nkeypairs; i++)
        keypair_clear(&cfg->keypairs[i]);
    free(cfg->keypairs);
    cfg->keypairs = NULL;
    cfg->nkeypairs = 0;
    cfg->has_keypair = 0;
}

/* Whether OpenSSL takes the keypair at the config's security level: tried on a scratch
 * SSL, so that a keypair SNI installs only per connection is refused here, at once,
 * and with the same words as the default one. 0, or -1 with the error set. */
static int keypair_usable(tlskit_config *cfg, const struct tlskit__keypair *kp,
                          const char *cert_label)
{
    ERR_clear_error();
    SSL *ssl = SSL_new(cfg->ctx);
    if (!ssl) {
        tlskit__err_set_ssl(&cfg->err, TLSKIT_E_NOMEM, "out of memory", "%s", cert_label);
        return -1;
    }
    int ok = SSL_use_cert_and_key(ssl, kp->leaf, kp->pkey, kp->chain, 1) == 1;
    if (!ok) {
        unsigned long e = ERR_peek_last_error();
        int reason = ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0;
        if (reason == SSL_R_EE_KEY_TOO_SMALL || reason == SSL_R_CA_KEY_TOO_SMALL ||
            reason == SSL_R_CA_MD_TOO_WEAK) {
            char why[256];
            tlskit__ssl_errors(why, sizeof(why));
            tlskit__err_set(&cfg->err, TLSKIT_E_CONFIG,
                       "%s: %s: too weak for security level %d (%s, %d bits)", cert_label,
                       why, SSL_CTX_get_security_level(cfg->ctx), key_type(kp->pkey),
                       EVP_PKEY_get_bits(kp->pkey));
        } else {
            tlskit__err_set_ssl(&cfg->err, TLSKIT_E_CONFIG, NULL, "%s: cannot use certificate",
                           cert_label);
        }
    }
    SSL_free(ssl);
    return ok ? 0 : -1;
}

/* Parse and check a keypair, then add it (replace: instead of all the others). */
static int use_keypair(tlskit_config *cfg, const char *cert_label, const void *cert,
                       size_t cert_len, const char *key_label, const void *key,
                       size_t key_len, int replace)
{
    struct tlskit__keypair kp = {0};

    if (tlskit__parse_certs(&cfg->err, cert_label, cert, cert_len, &kp.leaf, &kp.chain) < 0)
        goto fail;
    if (!(kp.pkey = parse_key(&cfg->err, key_label, key, key_len)))
        goto fail;
    ERR_clear_error();
    if (X509_check_private_key(kp.leaf, kp.pkey) != 1) {
        ERR_clear_error();
        tlskit__err_set(&cfg->err, TLSKIT_E_CONFIG,
                   "%s: private key does not match the certificate in %s", key_label,
                   cert_label);
        goto fail;
    }
    if (keypair_usable(cfg, &kp, cert_label) != 0)
        goto fail;
    kp.type = EVP_PKEY_get_base_id(kp.pkey);
    if (keypair_names(&kp) != 0 ||
        !(kp.subject = tlskit__name_text(X509_get_subject_name(kp.leaf)))) {
        tlskit__err_set(&cfg->err, TLSKIT_E_NOMEM, "%s: out of memory", cert_label);
        goto fail;
    }
    struct tlskit__keypair *list =
        replace ? malloc(sizeof(*list))
                : realloc(cfg->keypairs, (cfg->nkeypairs + 1) * sizeof(*list));
    if (!list) {
        tlskit__err_set(&cfg->err, TLSKIT_E_NOMEM, "%s: out of memory", cert_label);
        goto fail;
    }
    if (replace)
        tlskit__keypairs_free(cfg);
    cfg->keypairs = list;
    cfg->keypairs[cfg->nkeypairs++] = kp;
    cfg->has_keypair = 1;
    if (tlskit__sni_install(cfg) == 0)
        return 0;
    /* Only out of memory gets here (the scratch SSL took the keypair): drop it again. */
    keypair_clear(&cfg->keypairs[--cfg->nkeypairs]);
    cfg->has_keypair = cfg->nkeypairs > 0;
    return -1;
fail:
    keypair_clear(&kp);
    return -1;
}

/* Read both files; add (or, with replace, set) the keypair they hold. */
static int keypair_file(tlskit_config *cfg, const char *cert_file, const char *key_file,
                        int replace)
{
    char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    int rc = -1;

    if (tlskit__config_settable(cfg) != 0)
        return -1;
    if (!cert_file || !key_file) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID, "certificate and key files are required");
        return -1;
    }
    if (tlskit__read_file(&cfg->err, cert_file, &cert, &cert_len) == 0 &&
        tlskit__read_file(&cfg->err, key_file, &key, &key_len) == 0)
        rc = use_keypair(cfg, cert_file, cert, cert_len, key_file, key, key_len, replace);
    free(cert);
    if (key) {
        OPENSSL_cleanse(key, key_len);
        free(key);
    }
    return rc;
}

static int keypair_mem(tlskit_config *cfg, const void *cert, size_t cert_len, const void *key,
                       size_t key_len, int replace)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    if (!cert || !key) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID, "certificate and key are required");
        return -1;
    }
    return use_keypair(cfg, "certificate (memory)", cert, cert_len, "private key (memory)",
                       key, key_len, replace);
}

int tlskit_config_set_keypair_file(tlskit_config *cfg, const char *cert_file,
                                   const char *key_file)
{
    return keypair_file(cfg, cert_file, key_file, 1);
}

int tlskit_config_add_keypair_file(tlskit_config *cfg, const char *cert_file,
                                   const char *key_file)
{
    return keypair_file(cfg, cert_file, key_file, 0);
}

int tlskit_config_set_keypair_mem(tlskit_config *cfg, const void *cert, size_t cert_len,
                                  const void *key, size_t key_len)
{
    return keypair_mem(cfg, cert, cert_len, key, key_len, 1);
}

int tlskit_config_add_keypair_mem(tlskit_config *cfg, const void *cert, size_t cert_len,
                                  const void *key, size_t key_len)
{
    return keypair_mem(cfg, cert, cert_len, key, key_len, 0);
}
