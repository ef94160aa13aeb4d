/* SPDX-License-Identifier: MIT */
/* Checks on the peer's certificate on top of OpenSSL's chain verification: public-key
 * pins (client role) and the allow-list of client identities (server role). One
 * certificate-verify callback on the SSL_CTX runs the normal verification first and then
 * these checks, so they can only narrow what is accepted. */
#include "conn.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <strings.h>
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

static int cert_verify(X509_STORE_CTX *x, void *arg);

/* The client-role check: the leaf's key must be one of the pins. */
static int check_pins(tlskit_conn *c, const X509 *leaf)
{
    const tlskit_config *cfg = c->cfg;
    unsigned char md[32];
    char seen[TK_SPKI_TEXT];
    struct tlskit__conn_notes *n = tlskit__conn_notes(c);
    if (tlskit__spki_sha256(leaf, md) != 0) {
        if (n)
            snprintf(n->verify_why, sizeof(n->verify_why),
                     "public key pin check: cannot hash the server's public key");
        return -1;
    }
    for (size_t i = 0; i < cfg->npins; i++)
        if (memcmp(cfg->pins[i], md, 32) == 0)
            return 0;
    tlskit__spki_text(md, seen);
    if (n)
        snprintf(n->verify_why, sizeof(n->verify_why),
                 "public key pin mismatch: the server's key is %s, not a pinned one", seen);
    return -1;
}

/* ---- the allow-list of client identities ---- */

static const struct {
    const char *prefix;
    enum tlskit__ident_kind kind;
} ident_kinds[] = {
    {"dns:", TK_ID_DNS}, {"uri:", TK_ID_URI}, {"email:", TK_ID_EMAIL}, {"cn:", TK_ID_CN},
    {"spki:", TK_ID_SPKI},
};

/* What a value of each kind may look like: printable ASCII without spaces for names
 * that are IA5Strings in certificates; a CN may have inner spaces. */
static int ident_value_ok(enum tlskit__ident_kind kind, const char *v)
{
    size_t len = strlen(v);
    if (len == 0 || len > TK_IDENT_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch < 0x20 || ch >= 0x7f || (ch == ' ' && kind != TK_ID_CN))
            return 0;
    }
    if (kind == TK_ID_CN && (v[0] == ' ' || v[len - 1] == ' '))
        return 0;
    if (kind == TK_ID_URI && !strchr(v, ':'))
        return 0;
    if (kind == TK_ID_EMAIL) {
        const char *at = strchr(v, '@');
        if (!at || at == v || !at[1] || strchr(at + 1, '@'))
            return 0;
    }
    if (kind == TK_ID_DNS && strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "0123456789.-_*") != len)
        return 0;
    return 1;
}

int tlskit__ident_parse(struct tlskit__err *err, const char *text, struct tlskit__ident *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; text && i < sizeof(ident_kinds) / sizeof(ident_kinds[0]); i++) {
        size_t plen = strlen(ident_kinds[i].prefix);
        if (strncmp(text, ident_kinds[i].prefix, plen) != 0)
            continue;
        const char *v = text + plen;
        out->kind = ident_kinds[i].kind;
        if (out->kind == TK_ID_SPKI) {
            if (parse_one_pin(v, strlen(v), out->md) != 0) {
                tlskit__err_set(err, TLSKIT_E_INVALID,
                                "client identity \"%.80s\": spki: takes sha256// and the "
                                "base64 of a SHA-256 hash (44 characters, ending in '=')", text);
                return -1;
            }
            return 0;
        }
        if (!ident_value_ok(out->kind, v)) {
            tlskit__err_set(err, TLSKIT_E_INVALID,
                            "client identity \"%.80s\": not a valid %.*s value (printable "
                            "ASCII, 1 to %d characters%s)", text, (int)(plen - 1), text,
                            TK_IDENT_MAX,
                            out->kind == TK_ID_URI     ? ", with a scheme"
                            : out->kind == TK_ID_EMAIL ? ", one '@' inside"
                            : out->kind == TK_ID_DNS   ? ": letters, digits, '.', '-', '_', '*'"
                                                       : "");
            return -1;
        }
        if (!(out->value = strdup(v))) {
            tlskit__err_set(err, TLSKIT_E_NOMEM, "client identity: out of memory");
            return -1;
        }
        return 0;
    }
    tlskit__err_set(err, TLSKIT_E_INVALID,
                    "client identity \"%.80s\": not dns:NAME, uri:URI, email:ADDR, cn:NAME "
                    "or spki:sha256//BASE64", text ? text : "(null)");
    return -1;
}

int tlskit_config_add_allowed_client(tlskit_config *cfg, const char *id)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    if (cfg->nallowed >= TK_MAX_ALLOWED) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID, "client identities: at most %d",
                        TK_MAX_ALLOWED);
        return -1;
    }
    struct tlskit__ident ident;
    if (tlskit__ident_parse(&cfg->err, id, &ident) != 0)
        return -1;
    struct tlskit__ident *list = realloc(cfg->allowed, (cfg->nallowed + 1) * sizeof(*list));
    if (!list) {
        free(ident.value);
        tlskit__err_set(&cfg->err, TLSKIT_E_NOMEM, "client identities: out of memory");
        return -1;
    }
    list[cfg->nallowed++] = ident;
    cfg->allowed = list;
    SSL_CTX_set_cert_verify_callback(cfg->ctx, cert_verify, NULL);
    return 0;
}

void tlskit__allowed_free(tlskit_config *cfg)
{
    for (size_t i = 0; i < cfg->nallowed; i++)
        free(cfg->allowed[i].value);
    free(cfg->allowed);
    cfg->allowed = NULL;
    cfg->nallowed = 0;
}

/* Does a name from the certificate (an IA5String or a CN, len bytes) equal value? DNS
 * names and e-mail addresses compare without case; an embedded NUL never matches. */
static int same_name(enum tlskit__ident_kind kind, const unsigned char *name, int len,
                     const char *value)
{
    size_t vlen = strlen(value);
    if (len < 0 || (size_t)len != vlen || memchr(name, '\0', (size_t)len))
        return 0;
    if (kind == TK_ID_DNS || kind == TK_ID_EMAIL)
        return strncasecmp((const char *)name, value, vlen) == 0;
    return memcmp(name, value, vlen) == 0;
}

static int allowed_one(const tlskit_config *cfg, enum tlskit__ident_kind kind,
                       const unsigned char *name, int len)
{
    for (size_t i = 0; i < cfg->nallowed; i++)
        if (cfg->allowed[i].kind == kind && same_name(kind, name, len, cfg->allowed[i].value))
            return 1;
    return 0;
}

static enum tlskit__ident_kind san_kind(int type)
{
    return type == GEN_DNS ? TK_ID_DNS : type == GEN_URI ? TK_ID_URI
                                     : type == GEN_EMAIL ? TK_ID_EMAIL : TK_ID_NONE;
}

/* Appends "kind:value" to the presented identities, escaped as info.c shows names. */
static void presented_add(char *buf, size_t len, const char *prefix, const unsigned char *v,
                          int vlen)
{
    char esc[200];
    size_t used = strlen(buf);
    tlskit__escape_name(v, vlen, esc, sizeof(esc));
    if (used + 2 < len)
        snprintf(buf + used, len - used, "%s%s%s", used ? ", " : "", prefix, esc);
}

/* The last CN of the subject, the one a CA puts last as the most specific. */
static const ASN1_STRING *subject_cn(const X509 *x)
{
    const X509_NAME *n = X509_get_subject_name(x);
    int i = -1, last = -1;
    while ((i = X509_NAME_get_index_by_NID(n, NID_commonName, i)) >= 0)
        last = i;
    return last < 0 ? NULL
                    : X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, last));
}

/* The server-role check: some identity of the client's leaf is on the allow-list. On a
 * refusal, verify_why lists what the client presented. */
static int check_allowed(tlskit_conn *c, const X509 *leaf)
{
    const tlskit_config *cfg = c->cfg;
    char presented[TK_NOTE_LEN] = "";
    unsigned char md[32];
    int ok = 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    int nsans = 0;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        enum tlskit__ident_kind kind = san_kind(g->type);
        if (kind == TK_ID_NONE)
            continue;
        nsans++;
        const ASN1_IA5STRING *s = g->d.ia5;
        ok = ok || allowed_one(cfg, kind, s->data, s->length);
        presented_add(presented, sizeof(presented),
                      kind == TK_ID_DNS ? "dns:" : kind == TK_ID_URI ? "uri:" : "email:",
                      s->data, s->length);
    }
    GENERAL_NAMES_free(names);
    /* A CN names the client only when there are no SANs (RFC 6125 section 6.4.4's rule
     * for servers, applied to clients): otherwise a CA that vetted the SANs alone could
     * have let any CN through. */
    const ASN1_STRING *cn = nsans ? NULL : subject_cn(leaf);
    if (cn) {
        unsigned char *utf8 = NULL;
        int len = ASN1_STRING_to_UTF8(&utf8, cn);
        if (len >= 0) {
            ok = ok || allowed_one(cfg, TK_ID_CN, utf8, len);
            presented_add(presented, sizeof(presented), "cn:", utf8, len);
        }
        OPENSSL_free(utf8);
    }
    if (tlskit__spki_sha256(leaf, md) == 0) {
        char text[TK_SPKI_TEXT];
        tlskit__spki_text(md, text);
        for (size_t i = 0; !ok && i < cfg->nallowed; i++)
            ok = cfg->allowed[i].kind == TK_ID_SPKI && memcmp(cfg->allowed[i].md, md, 32) == 0;
        presented_add(presented, sizeof(presented), "spki:", (const unsigned char *)text,
                      (int)strlen(text));
    }
    ERR_clear_error();
    if (ok)
        return 0;
    struct tlskit__conn_notes *n = tlskit__conn_notes(c);
    if (n)
        snprintf(n->verify_why, sizeof(n->verify_why), "client not on the allow-list: it presented %s",
                 presented[0] ? presented : "no identity");
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
    /* OpenSSL 3.0 picks the alert from the verify error and has none that becomes
     * access_denied: "certificate rejected" sends bad_certificate, which clients report
     * as a rejected certificate. */
    if (c->is_server && c->cfg->nallowed && check_allowed(c, leaf) != 0) {
        X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_REJECTED);
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

/* ---- verification failures that say what would help ---- */

void tlskit__trust_note(tlskit_config *cfg, const char *what, const char *name)
{
    if (cfg->trust_first[0]) {
        cfg->trust_more++;
        return;
    }
    snprintf(cfg->trust_first, sizeof(cfg->trust_first), "the %s%s%s", what, name ? " " : "",
             name ? name : "");
}

/* The trust store a verification searched, in words: "the system trust store", "the CA
 * file ca.crt", "the CA file a.pem and 2 more and the system trust store". */
static void trust_text(const tlskit_config *cfg, char *buf, size_t len)
{
    if (!cfg->ca_set) {
        snprintf(buf, len, "the system trust store");
        return;
    }
    char more[32] = "";
    if (cfg->trust_more)
        snprintf(more, sizeof(more), " and %d more", cfg->trust_more);
    snprintf(buf, len, "%s%s%s", cfg->trust_first, more,
             cfg->system_ca_loaded ? " and the system trust store" : "");
}

/* The subject or issuer of x as RFC 2253 text, at most len - 1 bytes. */
static void name_of(const X509 *x, int issuer, char *buf, size_t len)
{
    char *t = tlskit__name_text(issuer ? X509_get_issuer_name(x) : X509_get_subject_name(x));
    snprintf(buf, len, "%s", t && *t ? t : "(empty name)");
    free(t);
}

/* The hint, cut to its buffer (a long path or name may not fit: the start says most). */
static void hint(tlskit_conn *c, const char *fmt, ...) TK_PRINTF(2, 3);
static void hint(tlskit_conn *c, const char *fmt, ...)
{
    struct tlskit__conn_notes *n = tlskit__conn_notes(c);
    if (!n)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->verify_hint, sizeof(n->verify_hint), fmt, ap);
    va_end(ap);
}

/* The hint for a chain that found no trust anchor, for a name that did not match. */
static void describe_failure(tlskit_conn *c, int err, const X509 *x)
{
    char name[160], store[240];
    trust_text(c->cfg, store, sizeof(store));
    switch (err) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        name_of(x, 1, name, sizeof(name));
        hint(c, "the issuer \"%s\" is not in the trust store (%s)",
                 name, store);
        break;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        name_of(x, 0, name, sizeof(name));
        hint(c, "\"%s\" is self-signed and not in the trust store (%s)",
                 name, store);
        break;
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        name_of(x, 0, name, sizeof(name));
        hint(c, "the root \"%s\" the peer sent is not in the trust "
                 "store (%s)", name, store);
        break;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH: {
        char *sans = tlskit__sans_text(x);
        if (sans && *sans) {
            hint(c, "expected \"%s\", the certificate has %s",
                     c->servername ? c->servername : "", sans);
        } else {
            name_of(x, 0, name, sizeof(name));
            hint(c, "expected \"%s\", the certificate has no "
                     "subject alternative names (subject \"%s\")",
                     c->servername ? c->servername : "", name);
        }
        free(sans);
        break;
    }
    default:
        break;
    }
}

int tlskit__verify_cb(int ok, X509_STORE_CTX *x)
{
    if (ok)
        return ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    tlskit_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
    const X509 *cert = X509_STORE_CTX_get_current_cert(x);
    if (c && cert && !TK_NOTE(c, verify_hint)[0])
        describe_failure(c, X509_STORE_CTX_get_error(x), cert);
    ERR_clear_error();
    return ok;
}
