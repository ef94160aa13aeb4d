/* SPDX-License-Identifier: MIT */
/* Checks on the peer's certificate on top of OpenSSL's chain verification: public-key
 * pins (client role). One certificate-verify callback on the SSL_CTX runs the normal
 * verification first and then these checks, so they can only narrow what is accepted. */
#include "conn.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIN_PREFIX "sha256//"
#define PIN_B64LEN 44 /* base64 of 32 bytes, one '=' of padding */
#define TK_MAX_PINS 64

int tlskit__spki_sha256(const X509 *x, unsigned char md[32])
{
    unsigned char *der = NULL;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    unsigned int mdlen = 0;
    int ok = len > 0 && EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) == 1 &&
             mdlen == 32;
    OPENSSL_free(der);
    ERR_clear_error();
    return ok ? 0 : -1;
}

void tlskit__spki_text(const unsigned char md[32], char out[TK_SPKI_TEXT])
{
    memcpy(out, PIN_PREFIX, sizeof(PIN_PREFIX) - 1);
    EVP_EncodeBlock((unsigned char *)out + sizeof(PIN_PREFIX) - 1, md, 32);
}

/* One "sha256//BASE64" of len bytes at s: 0 and the hash in md, or -1. Only the
 * canonical encoding is taken (it must encode back to the same text), so two spellings
 * of one pin cannot exist. */
static int parse_one_pin(const char *s, size_t len, unsigned char md[32])
{
    const size_t plen = sizeof(PIN_PREFIX) - 1;
    unsigned char raw[36];
    char again[PIN_B64LEN + 1];
    if (len != plen + PIN_B64LEN || memcmp(s, PIN_PREFIX, plen) != 0)
        return -1;
    s += plen;
    for (size_t i = 0; i < PIN_B64LEN; i++)
        if (s[i] == '\0')
            return -1;
    if (s[PIN_B64LEN - 1] != '=' || EVP_DecodeBlock(raw, (const unsigned char *)s,
                                                    PIN_B64LEN) != 33)
        return -1;
    EVP_EncodeBlock((unsigned char *)again, raw, 32);
    if (memcmp(again, s, PIN_B64LEN) != 0)
        return -1;
    memcpy(md, raw, 32);
    return 0;
}

int tlskit__pins_parse(struct tlskit__err *err, const char *text, unsigned char (**out)[32],
                       size_t *count)
{
    *out = NULL;
    *count = 0;
    if (!text || !*text) {
        tlskit__err_set(err, TLSKIT_E_INVALID, "public key pins: the list is empty");
        return -1;
    }
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == ';';
    if (n > TK_MAX_PINS) {
        tlskit__err_set(err, TLSKIT_E_INVALID, "public key pins: %zu pins, at most %d", n,
                        TK_MAX_PINS);
        return -1;
    }
    unsigned char(*pins)[32] = calloc(n, sizeof(*pins));
    if (!pins) {
        tlskit__err_set(err, TLSKIT_E_NOMEM, "public key pins: out of memory");
        return -1;
    }
    const char *p = text;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (parse_one_pin(p, len, pins[i]) != 0) {
            tlskit__err_set(err, TLSKIT_E_INVALID,
                            "public key pin %zu \"%.*s%s\": not sha256// and the base64 of a "
                            "SHA-256 hash (44 characters, ending in '=')",
                            i + 1, (int)(len > 60 ? 60 : len), p, len > 60 ? "..." : "");
            free(pins);
            return -1;
        }
        p = end ? end + 1 : p + len;
    }
    *out = pins;
    *count = n;
    return 0;
}

/* The client-role check: the leaf's key must be one of the pins. */
static int check_pins(tlskit_conn *c, const X509 *leaf)
{
    const tlskit_config *cfg = c->cfg;
    unsigned char md[32];
    char seen[TK_SPKI_TEXT];
    if (tlskit__spki_sha256(leaf, md) != 0) {
        snprintf(c->verify_why, sizeof(c->verify_why),
                 "public key pin check: cannot hash the server's public key");
        return -1;
    }
    for (size_t i = 0; i < cfg->npins; i++)
        if (memcmp(cfg->pins[i], md, 32) == 0)
            return 0;
    tlskit__spki_text(md, seen);
    snprintf(c->verify_why, sizeof(c->verify_why),
             "public key pin mismatch: the server's key is %s, not a pinned one", seen);
    return -1;
}

/* SSL_CTX_set_cert_verify_callback(): OpenSSL's verification, then ours. With
 * tlskit_config_insecure_noverifycert() the chain's verdict is ignored and a pin alone
 * decides (what curl does with --insecure --pinnedpubkey). */
static int cert_verify(X509_STORE_CTX *x, void *arg)
{
    (void)arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    tlskit_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
    int ok = X509_verify_cert(x);
    if (!c)
        return ok;
    if (!c->is_server && !c->cfg->verify_cert) {
        X509_STORE_CTX_set_error(x, X509_V_OK);
        ok = 1;
    }
    if (ok <= 0)
        return ok;
    const X509 *leaf = X509_STORE_CTX_get0_cert(x);
    if (!c->is_server && c->cfg->npins && check_pins(c, leaf) != 0) {
        X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return ok;
}

int tlskit_config_set_pinned_pubkeys(tlskit_config *cfg, const char *pins)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    unsigned char(*list)[32];
    size_t n;
    if (tlskit__pins_parse(&cfg->err, pins, &list, &n) != 0)
        return -1;
    free(cfg->pins);
    cfg->pins = list;
    cfg->npins = n;
    SSL_CTX_set_cert_verify_callback(cfg->ctx, cert_verify, NULL);
    return 0;
}
