/* SPDX-License-Identifier: MIT */
/* The PROXY protocol header a relay sends its backend first (HAProxy's
 * doc/proxy-protocol.txt): version 1, one text line; version 2, binary, with TLVs for
 * what the TLS handshake established (PP2_TYPE_SSL and its subtypes, the SNI as
 * PP2_TYPE_AUTHORITY, the ALPN). The addresses are the connection's: its peer (the
 * client) as the source, the address the client reached as the destination. Reading
 * such a header is the parser's job (proxy.c); this file only builds. */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PP2_SIG "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A"
#define PP2_VERSION_PROXY 0x21 /* version 2, command PROXY */
#define PP2_FAM_UNSPEC 0x00
#define PP2_FAM_TCP4 0x11
#define PP2_FAM_TCP6 0x21
#define PP2_TYPE_ALPN 0x01
#define PP2_TYPE_AUTHORITY 0x02
#define PP2_TYPE_SSL 0x20
#define PP2_SUBTYPE_SSL_VERSION 0x21
#define PP2_SUBTYPE_SSL_CN 0x22
#define PP2_SUBTYPE_SSL_CIPHER 0x23
#define PP2_CLIENT_SSL 0x01
#define PP2_CLIENT_CERT_CONN 0x02
#define PP2_CLIENT_CERT_SESS 0x04

/* The two ends of the client's connection, as one family (else unknown). */
struct ends {
    int family; /* AF_INET, AF_INET6, or 0: unknown */
    unsigned char src[16], dst[16];
    uint16_t sport, dport;
};

/* "1.2.3.4:5" or "[::1]:5" (the connection's peer text) into an address and a port. */
static int parse_peer(const char *text, int *family, unsigned char *addr, uint16_t *port)
{
    char host[TK_ADDRLEN];
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= sizeof(host))
        return -1;
    size_t hl = (size_t)(colon - text);
    memcpy(host, text, hl);
    host[hl] = '\0';
    char *h = host;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    unsigned long p = strtoul(colon + 1, NULL, 10);
    if (p > 65535)
        return -1;
    *port = (uint16_t)p;
    if (inet_pton(AF_INET, h, addr) == 1)
        *family = AF_INET;
    else if (inet_pton(AF_INET6, h, addr) == 1)
        *family = AF_INET6;
    else
        return -1;
    return 0;
}

static void get_ends(const tlskit_conn *c, struct ends *e)
{
    memset(e, 0, sizeof(*e));
    int sfam = 0;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (parse_peer(c->peer, &sfam, e->src, &e->sport) != 0 ||
        getsockname(c->fd, (struct sockaddr *)&ss, &sl) != 0)
        return;
    if (ss.ss_family == AF_INET && sfam == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)&ss;
        memcpy(e->dst, &in->sin_addr, 4);
        e->dport = ntohs(in->sin_port);
    } else if (ss.ss_family == AF_INET6 && sfam == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)&ss;
        memcpy(e->dst, &in6->sin6_addr, 16);
        e->dport = ntohs(in6->sin6_port);
    } else {
        return; /* a v4 client announced on a v6 socket (or the reverse): unknown */
    }
    e->family = sfam;
}

static ssize_t build_v1(const struct ends *e, char *buf, size_t cap)
{
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    int n;
    if (!e->family) {
        n = snprintf(buf, cap, "PROXY UNKNOWN\r\n");
    } else {
        inet_ntop(e->family, e->src, s, sizeof(s));
        inet_ntop(e->family, e->dst, d, sizeof(d));
        n = snprintf(buf, cap, "PROXY %s %s %s %u %u\r\n",
                     e->family == AF_INET ? "TCP4" : "TCP6", s, d, e->sport, e->dport);
    }
    return n > 0 && (size_t)n < cap ? n : -1;
}

/* A writer that stops counting room once it runs out (checked once, at the end). */
struct out {
    unsigned char *p;
    size_t len, cap;
};

static void put(struct out *o, const void *data, size_t len)
{
    if (o->len + len <= o->cap)
        memcpy(o->p + o->len, data, len);
    o->len += len;
}

static void put_u8(struct out *o, unsigned v)
{
    unsigned char b = (unsigned char)v;
    put(o, &b, 1);
}

static void put_u16(struct out *o, unsigned v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    put(o, b, 2);
}

static void set_u16(struct out *o, size_t at, size_t v)
{
    if (at + 2 <= o->cap) {
        o->p[at] = (unsigned char)(v >> 8);
        o->p[at + 1] = (unsigned char)v;
    }
}

static void put_tlv(struct out *o, unsigned type, const void *v, size_t len)
{
    put_u8(o, type);
    put_u16(o, (unsigned)len);
    put(o, v, len);
}

/* The client certificate's (last) common name, into buf; 0 when it has none. */
static size_t client_cn(const tlskit_conn *c, char *buf, size_t cap)
{
    const X509 *x = c->ssl ? SSL_get0_peer_certificate(c->ssl) : NULL;
    const X509_NAME *name = x ? X509_get_subject_name(x) : NULL;
    int i = -1, last = -1;
    while (name && (i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0)
        last = i;
    if (last < 0)
        return 0;
    const ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, d);
    size_t len = n > 0 && (size_t)n < cap ? (size_t)n : 0;
    if (len)
        memcpy(buf, utf8, len);
    OPENSSL_free(utf8);
    return len;
}

/* PP2_TYPE_SSL: the client bits, the verify word, then the subtypes. */
static void put_ssl_tlv(struct out *o, const tlskit_conn *c)
{
    const X509 *x = SSL_get0_peer_certificate(c->ssl);
    unsigned client = PP2_CLIENT_SSL;
    if (x)
        client |= PP2_CLIENT_CERT_SESS | (SSL_session_reused(c->ssl) ? 0 : PP2_CLIENT_CERT_CONN);
    /* 0 only for a certificate presented and verified. */
    uint32_t verify = x && SSL_get_verify_result(c->ssl) == X509_V_OK &&
                              c->cfg->verify_client != TLSKIT_VERIFY_CLIENT_NONE
                          ? 0 : 1;
    put_u8(o, PP2_TYPE_SSL);
    size_t len_at = o->len;
    put_u16(o, 0);
    size_t start = o->len;
    put_u8(o, client);
    unsigned char vb[4] = {(unsigned char)(verify >> 24), (unsigned char)(verify >> 16),
                           (unsigned char)(verify >> 8), (unsigned char)verify};
    put(o, vb, 4);
    const char *version = SSL_get_version(c->ssl);
    put_tlv(o, PP2_SUBTYPE_SSL_VERSION, version, strlen(version));
    char cn[1024];
    size_t cnlen = x ? client_cn(c, cn, sizeof(cn)) : 0;
    if (cnlen)
        put_tlv(o, PP2_SUBTYPE_SSL_CN, cn, cnlen);
    const char *cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl));
    if (cipher)
        put_tlv(o, PP2_SUBTYPE_SSL_CIPHER, cipher, strlen(cipher));
    set_u16(o, len_at, o->len - start);
}

static ssize_t build_v2(const tlskit_conn *c, const struct ends *e, unsigned char *buf,
                        size_t cap)
{
    struct out o = {.p = buf, .cap = cap};
    put(&o, PP2_SIG, 12);
    put_u8(&o, PP2_VERSION_PROXY);
    put_u8(&o, e->family == AF_INET ? PP2_FAM_TCP4 : e->family == AF_INET6 ? PP2_FAM_TCP6
                                                                          : PP2_FAM_UNSPEC);
    put_u16(&o, 0); /* the length, set below */
    if (e->family) {
        size_t alen = e->family == AF_INET ? 4 : 16;
        put(&o, e->src, alen);
        put(&o, e->dst, alen);
        put_u16(&o, e->sport);
        put_u16(&o, e->dport);
    }
    if (c->ssl && c->hs_done) {
        const unsigned char *alpn = NULL;
        unsigned int alpn_len = 0;
        SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
        if (alpn && alpn_len)
            put_tlv(&o, PP2_TYPE_ALPN, alpn, alpn_len);
        const char *sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
        if (sni && *sni)
            put_tlv(&o, PP2_TYPE_AUTHORITY, sni, strlen(sni));
        put_ssl_tlv(&o, c);
    }
    if (o.len > cap || o.len - 16 > 0xffff)
        return -1;
    set_u16(&o, 14, o.len - 16);
    return (ssize_t)o.len;
}

ssize_t tlskit_conn_proxy_header(tlskit_conn *c, int version, void *buf, size_t cap)
{
    tlskit__err_clear(&c->err);
    if ((version != TLSKIT_PROXY_V1 && version != TLSKIT_PROXY_V2) || !buf) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID, "PROXY header: version %d is not 1 or 2 "
                        "(or no buffer)", version);
        return -1;
    }
    struct ends e;
    get_ends(c, &e);
    ssize_t n = version == TLSKIT_PROXY_V1 ? build_v1(&e, buf, cap) : build_v2(c, &e, buf, cap);
    if (n < 0)
        tlskit__err_set(&c->err, TLSKIT_E_LIMIT, "PROXY header for %s: more than the %zu "
                        "bytes given", c->peer, cap);
    return n;
}
