/* SPDX-License-Identifier: MIT */
/*
 * The handshake trace: every TLS message and alert a connection sends or receives, as one
 * line of text for a callback the application sets (tlskit_config_set_trace()). OpenSSL
 * hands each whole message to its msg callback before it processes it, so the walker
 * below reads bytes a hostile peer chose: every length is checked against what is left,
 * nothing is trusted to be NUL-terminated, and names from the peer are shown escaped.
 * Nothing secret is shown: keys, ticket contents and Finished data are never printed.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- output: a bounded line that says when it was cut ---- */

struct out {
    char *buf;
    size_t cap, len;
    int cut;
};

static void put(struct out *o, const char *fmt, ...) TK_PRINTF(2, 3);
static void put(struct out *o, const char *fmt, ...)
{
    if (o->cut || o->cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->buf[o->len] = '\0';
        return;
    }
    if ((size_t)n >= o->cap - o->len) {
        o->cut = 1;
        /* End on "..." so a cut line says so (when there is room for it). */
        o->len = o->cap - 1;
        if (o->cap > 4)
            memcpy(o->buf + o->cap - 4, "...", 4);
        else
            o->buf[o->len] = '\0';
        return;
    }
    o->len += (size_t)n;
}

/* Peer-chosen bytes (a host name, a protocol name): printable ASCII as is, anything else,
 * and the list separator ',' and '\\', as \xNN. At most 64 bytes shown. */
static void put_text(struct out *o, const unsigned char *p, size_t n)
{
    size_t shown = n > 64 ? 64 : n;
    for (size_t i = 0; i < shown; i++) {
        unsigned char ch = p[i];
        if (ch < 0x21 || ch > 0x7e || ch == ',' || ch == '\\')
            put(o, "\\x%02x", ch);
        else
            put(o, "%c", ch);
    }
    if (shown < n)
        put(o, "...");
}

/* ---- input: a cursor over the message that never reads past its end ---- */

struct rd {
    const unsigned char *p;
    size_t n;
    int bad; /* a length said more than was there */
};

static size_t take_uint(struct rd *r, size_t bytes)
{
    size_t v = 0;
    if (r->bad || r->n < bytes) {
        r->bad = 1;
        r->n = 0;
        return 0;
    }
    for (size_t i = 0; i < bytes; i++)
        v = (v << 8) | r->p[i];
    r->p += bytes;
    r->n -= bytes;
    return v;
}

/* The next n bytes as a cursor of their own (empty and r bad when fewer are left). */
static struct rd take(struct rd *r, size_t n)
{
    struct rd s = {r->p, n, 0};
    if (r->bad || r->n < n) {
        r->bad = 1;
        r->n = 0;
        s.n = 0;
        s.bad = 1;
        return s;
    }
    r->p += n;
    r->n -= n;
    return s;
}

/* A vector with a length prefix of `bytes` bytes (RFC 8446 3.4). */
static struct rd vec(struct rd *r, size_t bytes)
{
    size_t n = take_uint(r, bytes);
    return take(r, n);
}

/* ---- names ---- */

struct name {
    unsigned code;
    const char *name;
};

static const char *lookup(const struct name *t, size_t n, unsigned code)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].code == code)
            return t[i].name;
    return NULL;
}
#define LOOKUP(table, code) lookup(table, sizeof(table) / sizeof(table[0]), code)

/* RFC 8446 4.2 and the IANA registry; GREASE values (RFC 8701) are named as such. */
static const struct name ext_names[] = {
    {0, "sni"}, {1, "max_fragment_length"}, {5, "status_request"},
    {10, "supported_groups"}, {11, "ec_point_formats"}, {13, "signature_algorithms"},
    {14, "use_srtp"}, {15, "heartbeat"}, {16, "alpn"}, {18, "signed_certificate_timestamp"},
    {19, "client_certificate_type"}, {20, "server_certificate_type"}, {21, "padding"},
    {22, "encrypt_then_mac"}, {23, "extended_master_secret"}, {27, "compress_certificate"},
    {28, "record_size_limit"}, {35, "session_ticket"}, {41, "pre_shared_key"},
    {42, "early_data"}, {43, "supported_versions"}, {44, "cookie"},
    {45, "psk_key_exchange_modes"}, {47, "certificate_authorities"}, {48, "oid_filters"},
    {49, "post_handshake_auth"}, {50, "signature_algorithms_cert"}, {51, "key_share"},
    {57, "quic_transport_parameters"}, {65281, "renegotiation_info"},
};

static const struct name group_names[] = {
    {23, "P-256"}, {24, "P-384"}, {25, "P-521"}, {29, "X25519"}, {30, "X448"},
    {31, "brainpoolP256r1tls13"}, {32, "brainpoolP384r1tls13"}, {33, "brainpoolP512r1tls13"},
    {256, "ffdhe2048"}, {257, "ffdhe3072"}, {258, "ffdhe4096"}, {259, "ffdhe6144"},
    {260, "ffdhe8192"}, {0x6399, "X25519Kyber768Draft00"}, {0x11ec, "X25519MLKEM768"},
};

static const struct name version_names[] = {
    {0x0300, "SSLv3"}, {0x0301, "TLSv1.0"}, {0x0302, "TLSv1.1"}, {0x0303, "TLSv1.2"},
    {0x0304, "TLSv1.3"},
};

static const struct name handshake_names[] = {
    {0, "HelloRequest"}, {1, "ClientHello"}, {2, "ServerHello"}, {4, "NewSessionTicket"},
    {5, "EndOfEarlyData"}, {8, "EncryptedExtensions"}, {11, "Certificate"},
    {12, "ServerKeyExchange"}, {13, "CertificateRequest"}, {14, "ServerHelloDone"},
    {15, "CertificateVerify"}, {16, "ClientKeyExchange"}, {20, "Finished"},
    {21, "CertificateUrl"}, {22, "CertificateStatus"}, {24, "KeyUpdate"},
    {254, "MessageHash"},
};

/* RFC 8446 6 and the IANA registry, in the spelling of the RFCs. */
static const struct name alert_names[] = {
    {0, "close_notify"}, {10, "unexpected_message"}, {20, "bad_record_mac"},
    {21, "decryption_failed"}, {22, "record_overflow"}, {30, "decompression_failure"},
    {40, "handshake_failure"}, {41, "no_certificate"}, {42, "bad_certificate"},
    {43, "unsupported_certificate"}, {44, "certificate_revoked"},
    {45, "certificate_expired"}, {46, "certificate_unknown"}, {47, "illegal_parameter"},
    {48, "unknown_ca"}, {49, "access_denied"}, {50, "decode_error"}, {51, "decrypt_error"},
    {60, "export_restriction"}, {70, "protocol_version"}, {71, "insufficient_security"},
    {80, "internal_error"}, {86, "inappropriate_fallback"}, {90, "user_canceled"},
    {100, "no_renegotiation"}, {109, "missing_extension"}, {110, "unsupported_extension"},
    {111, "certificate_unobtainable"}, {112, "unrecognized_name"},
    {113, "bad_certificate_status_response"}, {114, "bad_certificate_hash_value"},
    {115, "unknown_psk_identity"}, {116, "certificate_required"},
    {120, "no_application_protocol"},
};

static int is_grease(unsigned v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

static void put_code(struct out *o, const struct name *t, size_t n, unsigned code)
{
    const char *name = lookup(t, n, code);
    if (name)
        put(o, "%s", name);
    else if (is_grease(code))
        put(o, "grease");
    else
        put(o, "0x%04x", code);
}
#define PUT_CODE(o, table, code) put_code(o, table, sizeof(table) / sizeof(table[0]), code)

/* A vector of 16-bit codes (groups, versions) as "a,b,c". */
static void put_codes(struct out *o, struct rd *list, const struct name *t, size_t tn)
{
    for (int first = 1; list->n >= 2; first = 0) {
        if (!first)
            put(o, ",");
        put_code(o, t, tn, (unsigned)take_uint(list, 2));
    }
    if (list->n != 0)
        list->bad = 1;
}

/* ---- extensions (RFC 8446 4.2) ---- */

enum msg_kind { MSG_CH, MSG_SH, MSG_HRR, MSG_EE, MSG_OTHER };

struct hello {
    unsigned version; /* the version supported_versions selected (server), 0 if none */
    int has_versions; /* supported_versions was there */
};

static void ext_server_name(struct out *o, struct rd *b, enum msg_kind kind)
{
    if (kind != MSG_CH) { /* the server's empty acknowledgement (RFC 6066 3) */
        if (b->n)
            b->bad = 1;
        return;
    }
    struct rd list = vec(b, 2);
    for (int first = 1; list.n > 0 && !list.bad; first = 0) {
        unsigned type = (unsigned)take_uint(&list, 1);
        struct rd host = vec(&list, 2);
        if (list.bad)
            break;
        put(o, first ? "=" : ",");
        if (type == 0)
            put_text(o, host.p, host.n);
        else
            put(o, "type%u", type);
    }
    if (list.bad)
        b->bad = 1;
}

static void ext_alpn(struct out *o, struct rd *b)
{
    struct rd list = vec(b, 2);
    for (int first = 1; list.n > 0 && !list.bad; first = 0) {
        struct rd proto = vec(&list, 1);
        if (list.bad)
            break;
        put(o, first ? "=" : ",");
        put_text(o, proto.p, proto.n);
    }
    if (list.bad)
        b->bad = 1;
}

static void ext_versions(struct out *o, struct rd *b, enum msg_kind kind, struct hello *h)
{
    h->has_versions = 1;
    put(o, "=");
    if (kind == MSG_CH) {
        struct rd list = vec(b, 1);
        put_codes(o, &list, version_names, sizeof(version_names) / sizeof(version_names[0]));
        if (list.bad)
            b->bad = 1;
        return;
    }
    h->version = (unsigned)take_uint(b, 2);
    PUT_CODE(o, version_names, h->version);
}

/* The groups of the key shares (never the keys). */
static void ext_key_share(struct out *o, struct rd *b, enum msg_kind kind)
{
    put(o, "=");
    if (kind == MSG_HRR) { /* the group the server wants a share for */
        PUT_CODE(o, group_names, (unsigned)take_uint(b, 2));
        return;
    }
    struct rd list = kind == MSG_CH ? vec(b, 2) : take(b, b->n);
    for (int first = 1; list.n > 0 && !list.bad; first = 0) {
        unsigned group = (unsigned)take_uint(&list, 2);
        (void)vec(&list, 2);
        if (list.bad)
            break;
        if (!first)
            put(o, ",");
        PUT_CODE(o, group_names, group);
    }
    if (list.bad)
        b->bad = 1;
}

/* Every extension by name, the telling ones with their values. 0, or -1 when malformed. */
static int extensions(struct out *o, struct rd *r, enum msg_kind kind, struct hello *h)
{
    struct rd all = vec(r, 2);
    if (r->bad)
        return -1;
    while (all.n > 0) {
        unsigned type = (unsigned)take_uint(&all, 2);
        struct rd body = vec(&all, 2);
        if (all.bad)
            return -1;
        put(o, " ");
        PUT_CODE(o, ext_names, type);
        switch (type) {
        case 0:
            ext_server_name(o, &body, kind);
            break;
        case 16:
            ext_alpn(o, &body);
            break;
        case 43:
            ext_versions(o, &body, kind, h);
            break;
        case 51:
            ext_key_share(o, &body, kind);
            break;
        case 10:
            if (kind == MSG_CH || kind == MSG_EE) {
                struct rd list = vec(&body, 2);
                put(o, "=");
                put_codes(o, &list, group_names, sizeof(group_names) / sizeof(group_names[0]));
                body.bad |= list.bad;
            }
            break;
        default:
            break;
        }
        if (body.bad)
            return -1;
    }
    return 0;
}

/* ---- handshake messages ---- */

/* SHA-256("HelloRetryRequest"): the random of a HelloRetryRequest (RFC 8446 4.1.3). */
static const unsigned char hrr_random[32] = {
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

static int client_hello(struct out *o, struct rd *r)
{
    struct hello h = {0, 0};
    unsigned legacy = (unsigned)take_uint(r, 2);
    (void)take(r, 32);
    (void)vec(r, 1); /* session id */
    struct rd suites = vec(r, 2);
    (void)vec(r, 1); /* compression methods */
    if (r->bad)
        return -1;
    put(o, " ciphers=%zu", suites.n / 2);
    if (r->n > 0 && (extensions(o, r, MSG_CH, &h) < 0 || r->n != 0))
        return -1;
    if (!h.has_versions) { /* TLS 1.2 and older say it in the legacy field only */
        put(o, " version=");
        PUT_CODE(o, version_names, legacy);
    }
    return 0;
}

static int is_hrr(const struct rd *body)
{
    return body->n >= 2 + 32 && memcmp(body->p + 2, hrr_random, 32) == 0;
}

static int server_hello(struct out *o, struct rd *r, SSL *ssl)
{
    struct hello h = {0, 0};
    enum msg_kind kind = is_hrr(r) ? MSG_HRR : MSG_SH;
    unsigned legacy = (unsigned)take_uint(r, 2);
    (void)take(r, 32);
    (void)vec(r, 1);
    unsigned char cs[2] = {0, 0};
    struct rd suite = take(r, 2);
    (void)take_uint(r, 1);
    if (r->bad)
        return -1;
    memcpy(cs, suite.p, 2);
    const SSL_CIPHER *c = ssl ? SSL_CIPHER_find(ssl, cs) : NULL;
    if (c)
        put(o, " cipher=%s", SSL_CIPHER_get_name(c));
    else
        put(o, " cipher=0x%02x%02x", cs[0], cs[1]);
    if (r->n > 0 && (extensions(o, r, kind, &h) < 0 || r->n != 0))
        return -1;
    if (!h.has_versions) {
        put(o, " version=");
        PUT_CODE(o, version_names, legacy);
    }
    return 0;
}

/* TLS 1.3 (RFC 8446 4.4.2): a request context, then entries of a certificate and its
 * extensions; TLS 1.2 (RFC 5246 7.4.2): the certificates only. */
static int certificate(struct out *o, struct rd *r, int tls13)
{
    if (tls13)
        (void)vec(r, 1);
    struct rd list = vec(r, 3);
    size_t count = 0;
    while (list.n > 0 && !list.bad) {
        (void)vec(&list, 3);
        if (tls13)
            (void)vec(&list, 2);
        if (!list.bad)
            count++;
    }
    put(o, " (%zu cert%s)", count, count == 1 ? "" : "s");
    return r->bad || list.bad || r->n != 0 ? -1 : 0;
}

/* TLS 1.2 ECDHE (RFC 8422 5.4): the named curve; other kinds by their size. */
static int server_key_exchange(struct out *o, struct rd *r)
{
    if (r->n >= 3 && r->p[0] == 3) {
        (void)take_uint(r, 1);
        put(o, " group=");
        PUT_CODE(o, group_names, (unsigned)take_uint(r, 2));
    }
    return 0;
}

static int new_session_ticket(struct out *o, struct rd *r)
{
    unsigned long lifetime = (unsigned long)take_uint(r, 4);
    if (r->bad)
        return -1;
    put(o, " lifetime=%lus", lifetime);
    return 0;
}

static void handshake(struct out *o, struct rd *r, int version, SSL *ssl)
{
    unsigned type = (unsigned)take_uint(r, 1);
    size_t declared = take_uint(r, 3);
    if (r->bad) {
        put(o, "handshake fragment (%zu bytes)", r->n);
        return;
    }
    int truncated = declared > r->n;
    struct rd body = take(r, truncated ? r->n : declared);
    const char *name = LOOKUP(handshake_names, type);
    if (type == 2 && is_hrr(&body))
        name = "HelloRetryRequest"; /* a ServerHello by its type, not by its meaning */
    if (name)
        put(o, "%s", name);
    else
        put(o, "handshake type %u", type);
    int rc = 0;
    switch (type) {
    case 1:
        rc = client_hello(o, &body);
        break;
    case 2:
        rc = server_hello(o, &body, ssl);
        break;
    case 8: {
        struct hello h = {0, 0};
        rc = extensions(o, &body, MSG_EE, &h) < 0 || body.n != 0 ? -1 : 0;
        break;
    }
    case 11:
        rc = certificate(o, &body, version == TLSKIT_TLS1_3);
        break;
    case 12:
        rc = server_key_exchange(o, &body);
        break;
    case 4:
        rc = new_session_ticket(o, &body);
        break;
    case 24:
        put(o, body.n == 1 && body.p[0] == 1 ? " update_requested" : " update_not_requested");
        break;
    default:
        break;
    }
    if (rc < 0 || truncated)
        put(o, " [malformed]");
}

size_t tlskit__trace_format(char *out, size_t outlen, int sent, int content_type, int version,
                            const void *buf, size_t len, SSL *ssl)
{
    struct out o = {out, outlen, 0, 0};
    if (outlen == 0)
        return 0;
    out[0] = '\0';
    struct rd r = {buf, buf ? len : 0, 0};
    put(&o, "%s ", sent ? ">" : "<");
    switch (content_type) {
    case 20:
        put(&o, "ChangeCipherSpec");
        break;
    case 21: {
        unsigned level = (unsigned)take_uint(&r, 1), desc = (unsigned)take_uint(&r, 1);
        if (r.bad) {
            put(&o, "alert [malformed]");
            break;
        }
        const char *d = LOOKUP(alert_names, desc);
        put(&o, "alert %s ", level == 1 ? "warning" : level == 2 ? "fatal" : "level?");
        if (d)
            put(&o, "%s", d);
        else
            put(&o, "%u", desc);
        break;
    }
    case 22:
        handshake(&o, &r, version, ssl);
        break;
    case 23:
        put(&o, "application data (%zu bytes)", len);
        break;
    default:
        put(&o, "record type %d (%zu bytes)", content_type, len);
        break;
    }
    return o.len;
}

size_t tlskit_trace_format(char *out, size_t outlen, int sent, int content_type, int version,
                           const void *msg, size_t len)
{
    return tlskit__trace_format(out, outlen, sent, content_type, version, msg, len, NULL);
}

/* ---- the OpenSSL side ---- */

/* SSL_CTX_set_msg_callback(): every record header, inner content type, handshake message,
 * alert and ChangeCipherSpec, in both directions, on the thread driving the SSL. */
static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
                   SSL *ssl, void *arg)
{
    (void)arg;
    (void)version;
    if (content_type != SSL3_RT_HANDSHAKE && content_type != SSL3_RT_ALERT &&
        content_type != SSL3_RT_CHANGE_CIPHER_SPEC)
        return; /* record headers and TLS 1.3 inner types: not messages */
    tlskit_conn *c = SSL_get_app_data(ssl);
    const tlskit_config *cfg = c ? tlskit__conn_config(c) : NULL;
    if (!cfg || !cfg->trace_fn)
        return;
    char line[TLSKIT_TRACE_LINE_MAX];
    tlskit__trace_format(line, sizeof(line), write_p, content_type, SSL_version(ssl), buf,
                         len, ssl);
    cfg->trace_fn(c, line, cfg->trace_arg);
}

int tlskit_config_set_trace(tlskit_config *cfg, tlskit_trace_fn fn, void *arg)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    cfg->trace_fn = fn;
    cfg->trace_arg = arg;
    SSL_CTX_set_msg_callback(cfg->ctx, fn ? msg_cb : NULL);
    return 0;
}
