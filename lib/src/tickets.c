/* SPDX-License-Identifier: MIT */
/*
 * Session-ticket keys: our own key store behind OpenSSL's ticket callback, so that
 * tickets outlive a reload (a new config, a new SSL_CTX) and can be shared by several
 * servers through key files.
 *
 * Two kinds of store:
 *  - automatic (the default): random keys made here. A new key encrypts every
 *    `lifetime`; a key is accepted until one more lifetime after it stopped encrypting,
 *    i.e. until created + 2 * lifetime. A reload carries the keys over.
 *  - files (nginx's ssl_session_ticket_key format): the first key encrypts, the others
 *    only decrypt, and a ticket under one of them is renewed. No rotation: the files are
 *    the keys, and the caller re-reads them into a new config to change them.
 *
 * Layouts (nginx, ngx_ssl_session_ticket_keys()): 48 bytes = name[16] aes[16] hmac[16]
 * for AES-128-CBC; 80 bytes = name[16] hmac[32] aes[32] for AES-256-CBC. HMAC-SHA256
 * either way, as nginx does, so the same file serves both servers.
 */
#include "internal.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define TK_TICKET_KEYS_MAX 64       /* key files per config */
#define TK_DEFAULT_TICKET_LIFETIME 3600

struct tk_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    size_t len;       /* 16 (48-byte layout) or 32 (80-byte layout, and automatic keys) */
    int64_t created;  /* ms, monotonic: automatic keys */
};

struct tlskit__tickets {
    pthread_mutex_t mu;
    int files;            /* keys came from files (or memory): no rotation */
    int64_t lifetime_ms;
    struct tk_key *keys;  /* files: [0] encrypts; automatic: oldest first */
    size_t n, cap;
};

static void wipe_keys(struct tk_key *keys, size_t n)
{
    if (keys)
        OPENSSL_cleanse(keys, n * sizeof(*keys));
}

static int push_key(struct tlskit__tickets *t, const struct tk_key *k)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4;
        struct tk_key *nk = calloc(cap, sizeof(*nk));
        if (!nk)
            return -1;
        if (t->n)
            memcpy(nk, t->keys, t->n * sizeof(*nk));
        wipe_keys(t->keys, t->n);
        free(t->keys);
        t->keys = nk;
        t->cap = cap;
    }
    t->keys[t->n++] = *k;
    return 0;
}

/* Automatic store: forget the keys no ticket may use any more (oldest first). */
static void prune(struct tlskit__tickets *t, int64_t now)
{
    size_t drop = 0;
    while (drop < t->n && t->keys[drop].created + 2 * t->lifetime_ms <= now)
        drop++;
    if (!drop)
        return;
    wipe_keys(t->keys, drop);
    memmove(t->keys, t->keys + drop, (t->n - drop) * sizeof(*t->keys));
    t->n -= drop;
    wipe_keys(t->keys + t->n, drop);
}

/* The key to encrypt with, copied to *out (made first when due). -1 on failure. */
static int encrypt_key(struct tlskit__tickets *t, struct tk_key *out)
{
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    if (t->files) {
        *out = t->keys[0];
        goto done;
    }
    int64_t now = tlskit__now_ms();
    prune(t, now);
    if (t->n == 0 || t->keys[t->n - 1].created + t->lifetime_ms <= now) {
        struct tk_key k = {.len = 32, .created = now};
        if (RAND_bytes(k.name, sizeof(k.name)) != 1 || RAND_bytes(k.aes, 32) != 1 ||
            RAND_bytes(k.hmac, 32) != 1 || push_key(t, &k) != 0)
            rc = -1;
        OPENSSL_cleanse(&k, sizeof(k));
        if (rc)
            goto done;
    }
    *out = t->keys[t->n - 1];
done:
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* The key named `name`, copied to *out: 1 current (the encrypting key), 2 accepted but
 * the ticket is to be renewed, 0 unknown or expired. */
static int decrypt_key(struct tlskit__tickets *t, const unsigned char *name, struct tk_key *out)
{
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    int64_t now = t->files ? 0 : tlskit__now_ms();
    for (size_t i = 0; i < t->n; i++) {
        const struct tk_key *k = &t->keys[i];
        if (CRYPTO_memcmp(k->name, name, sizeof(k->name)) != 0)
            continue;
        if (t->files)
            rc = i == 0 ? 1 : 2;
        else if (now < k->created + t->lifetime_ms)
            rc = 1;
        else if (now < k->created + 2 * t->lifetime_ms)
            rc = 2;
        if (rc)
            *out = *k;
        break;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static int init_ctxs(const struct tk_key *k, const unsigned char *iv, EVP_CIPHER_CTX *ectx,
                     EVP_MAC_CTX *hctx, int enc)
{
    static char digest[] = "SHA256";
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    const EVP_CIPHER *cipher = k->len == 16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
    if (EVP_MAC_init(hctx, k->hmac, k->len, params) != 1)
        return -1;
    if (enc)
        return EVP_EncryptInit_ex(ectx, cipher, NULL, k->aes, iv) == 1 ? 0 : -1;
    return EVP_DecryptInit_ex(ectx, cipher, NULL, k->aes, iv) == 1 ? 0 : -1;
}

/* OpenSSL's ticket callback (SSL_CTX_set_tlsext_ticket_key_evp_cb): encrypt: 1 or -1;
 * decrypt: 1 use, 2 use and issue a fresh ticket, 0 unknown key (full handshake), -1
 * failure. The store is the connection's config's, so that a context switched for SNI
 * still uses the keys of the config that accepted the connection. */
static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                     EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
    const tlskit_conn *c = SSL_get_app_data(ssl);
    if (!c)
        return enc ? -1 : 0;
    struct tlskit__tickets *t = tlskit__conn_config(c)->tickets;
    struct tk_key k;
    int rc;
    if (enc) {
        rc = encrypt_key(t, &k) == 0 && RAND_bytes(iv, 16) == 1 &&
                     init_ctxs(&k, iv, ectx, hctx, 1) == 0
                 ? 1
                 : -1;
        if (rc == 1)
            memcpy(name, k.name, 16);
    } else {
        rc = decrypt_key(t, name, &k);
        if (rc && init_ctxs(&k, iv, ectx, hctx, 0) != 0)
            rc = -1;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}

struct tlskit__tickets *tlskit__tickets_new(SSL_CTX *ctx)
{
    struct tlskit__tickets *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        free(t);
        return NULL;
    }
    t->lifetime_ms = TK_DEFAULT_TICKET_LIFETIME * 1000;
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
    /* A session outlives its ticket key by design; never by more. */
    SSL_CTX_set_timeout(ctx, 2 * TK_DEFAULT_TICKET_LIFETIME);
    return t;
}

void tlskit__tickets_free(struct tlskit__tickets *t)
{
    if (!t)
        return;
    wipe_keys(t->keys, t->n);
    free(t->keys);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

void tlskit__tickets_carry(struct tlskit__tickets *to, struct tlskit__tickets *from)
{
    if (!to || !from || to == from)
        return;
    pthread_mutex_lock(&from->mu);
    struct tk_key *copy = from->n ? calloc(from->n, sizeof(*copy)) : NULL;
    size_t n = copy ? from->n : 0;
    int files = from->files;
    if (copy)
        memcpy(copy, from->keys, n * sizeof(*copy));
    pthread_mutex_unlock(&from->mu);

    pthread_mutex_lock(&to->mu);
    if (!files && !to->files) {
        /* Merge in creation order, so the newest key keeps encrypting. */
        for (size_t i = 0; i < n; i++) {
            size_t j = 0, dup = 0;
            for (; j < to->n && to->keys[j].created <= copy[i].created; j++)
                dup |= memcmp(to->keys[j].name, copy[i].name, 16) == 0;
            if (dup || push_key(to, &copy[i]) != 0)
                continue;
            struct tk_key k = to->keys[to->n - 1];
            memmove(to->keys + j + 1, to->keys + j, (to->n - 1 - j) * sizeof(k));
            to->keys[j] = k;
            OPENSSL_cleanse(&k, sizeof(k));
        }
    }
    pthread_mutex_unlock(&to->mu);
    wipe_keys(copy, n);
    free(copy);
}

/* ---- the public setters ---- */

static int add_key(tlskit_config *cfg, const char *label, const unsigned char *buf, size_t len)
{
    struct tlskit__tickets *t = cfg->tickets;
    struct tk_key k = {.len = 0};
    if (len != 48 && len != 80) {
        tlskit__err_set(&cfg->err, TLSKIT_E_FILE,
                        "ticket key %s: %zu bytes, expected 48 or 80 (nginx's "
                        "ssl_session_ticket_key format)", label, len);
        return -1;
    }
    if (t->n >= TK_TICKET_KEYS_MAX) {
        tlskit__err_set(&cfg->err, TLSKIT_E_CONFIG, "ticket key %s: more than %d keys",
                        label, TK_TICKET_KEYS_MAX);
        return -1;
    }
    memcpy(k.name, buf, 16);
    if (len == 48) {
        k.len = 16;
        memcpy(k.aes, buf + 16, 16);
        memcpy(k.hmac, buf + 32, 16);
    } else {
        k.len = 32;
        memcpy(k.hmac, buf + 16, 32);
        memcpy(k.aes, buf + 48, 32);
    }
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    if (!t->files) { /* the first key given: automatic keys end here */
        wipe_keys(t->keys, t->n);
        t->n = 0;
    }
    if (push_key(t, &k) != 0) {
        tlskit__err_set(&cfg->err, TLSKIT_E_NOMEM, "ticket key %s: out of memory", label);
        rc = -1;
    } else {
        t->files = 1; /* only with a key to encrypt with */
    }
    pthread_mutex_unlock(&t->mu);
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}

int tlskit_config_add_ticket_key_file(tlskit_config *cfg, const char *path)
{
    unsigned char buf[81];
    size_t len = 0;
    if (tlskit__config_args(cfg, path, "ticket key file name") != 0)
        return -1;
    int rc = tlskit__read_private_file(&cfg->err, "ticket key file", path, 0, buf,
                                       sizeof(buf), &len);
    if (rc == 0)
        rc = add_key(cfg, path, buf, len);
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

int tlskit_config_add_ticket_key_mem(tlskit_config *cfg, const void *key, size_t len)
{
    if (tlskit__config_args(cfg, key, "ticket key data") != 0)
        return -1;
    return add_key(cfg, "(memory)", key, len);
}

int tlskit_config_set_ticket_lifetime(tlskit_config *cfg, int64_t secs)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    if (secs < 1 || secs > TLSKIT_TICKET_LIFETIME_MAX) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID,
                        "ticket lifetime: %lld s is not 1..%d", (long long)secs,
                        TLSKIT_TICKET_LIFETIME_MAX);
        return -1;
    }
    pthread_mutex_lock(&cfg->tickets->mu);
    cfg->tickets->lifetime_ms = secs * 1000;
    pthread_mutex_unlock(&cfg->tickets->mu);
    SSL_CTX_set_timeout(cfg->ctx, (long)(2 * secs));
    return 0;
}
