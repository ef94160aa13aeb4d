/* SPDX-License-Identifier: MIT */
/* PROXY protocol (HAProxy's doc/proxy-protocol.txt), the receiving side: the parser of
 * the v1 text line and the v2 binary header. It is a prefix parser: it is called with
 * every byte received so far and says "need more" (all of them belong to a header not
 * yet complete), "done" (the header's length: the bytes after it are the peer's own, a
 * ClientHello) or "invalid" (why), as early as the bytes allow. Nothing here touches a
 * socket; proxy_recv.c reads a connection's header with it. The builder (--send-proxy)
 * is proxy_build.c. */
#include "internal.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define V1_MAX 107  /* the longest v1 line, CRLF included (spec 2.1) */
#define V2_HDR 16   /* signature, version/command, family/transport, length */
#define V2_ADDR_INET 12
#define V2_ADDR_INET6 36
#define V2_ADDR_UNIX 216
#define V2_UNIX_PATH 108

/* PP2_TYPE_* (spec 2.2.1 and following) that get checked beyond their framing. */
#define PP2_TYPE_CRC32C 0x03
#define PP2_TYPE_UNIQUE_ID 0x05
#define PP2_TYPE_SSL 0x20
#define PP2_UNIQUE_ID_MAX 128
#define PP2_SSL_FIXED 5 /* client flags (1) and verify (4) before the sub-TLVs */

static const unsigned char v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
static const char v1_sig[] = "PROXY ";

static ssize_t bad(char *why, size_t why_len, const char *fmt, ...) TK_PRINTF(3, 4);
static ssize_t bad(char *why, size_t why_len, const char *fmt, ...)
{
    if (why && why_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), what PP2_TYPE_CRC32C carries.
 * Bitwise: it runs once per connection over at most TLSKIT_PROXY_MAX_HEADER bytes. */
static uint32_t crc32c_update(uint32_t crc, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc;
}

uint32_t tlskit__crc32c(const void *buf, size_t len)
{
    return ~crc32c_update(0xFFFFFFFFu, buf, len);
}

/* ---- v1: "PROXY TCP4 192.0.2.1 198.51.100.2 51234 443\r\n" ---- */

/* A port in v1: decimal 0..65535, no sign, no leading zero. */
static int v1_port(const char *s, size_t n, unsigned *out)
{
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *out = v;
    return 0;
}

static void addr_text(int af, const void *addr, unsigned port, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN];
    inet_ntop(af, addr, host, sizeof(host));
    snprintf(out, outlen, af == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

/* The fields after "PROXY TCP4 " / "PROXY TCP6 ": exactly four, single spaces. */
static ssize_t v1_tcp(const char *f, size_t n, int af, struct tlskit_proxy_header *out,
                      char *why, size_t why_len)
{
    const char *field[4];
    size_t flen[4], k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && f[i] != ' ')
            continue;
        if (k == 4)
            return bad(why, why_len, "v1: more than four fields after the protocol");
        if (i == start)
            return bad(why, why_len, "v1: empty field (two spaces, or a space at the end)");
        field[k] = f + start;
        flen[k++] = i - start;
        start = i + 1;
    }
    if (k != 4)
        return bad(why, why_len, "v1: %zu field%s after the protocol, not 4 (source, "
                   "destination, source port, destination port)", k, k == 1 ? "" : "s");
    unsigned char a[2][16];
    for (int j = 0; j < 2; j++) {
        char tmp[INET6_ADDRSTRLEN];
        if (flen[j] >= sizeof(tmp))
            return bad(why, why_len, "v1: %s address too long", j ? "destination" : "source");
        memcpy(tmp, field[j], flen[j]);
        tmp[flen[j]] = '\0';
        if (inet_pton(af, tmp, a[j]) != 1)
            return bad(why, why_len, "v1: %s address \"%s\" is not an %s address",
                       j ? "destination" : "source", tmp, af == AF_INET ? "IPv4" : "IPv6");
    }
    unsigned port[2];
    for (int j = 0; j < 2; j++)
        if (v1_port(field[2 + j], flen[2 + j], &port[j]) != 0)
            return bad(why, why_len, "v1: %s port \"%.*s\" is not a decimal 0..65535 "
                       "without leading zeros", j ? "destination" : "source",
                       (int)(flen[2 + j] > 8 ? 8 : flen[2 + j]), field[2 + j]);
    out->family = af == AF_INET ? TLSKIT_PROXY_AF_INET : TLSKIT_PROXY_AF_INET6;
    addr_text(af, a[0], port[0], out->src, sizeof(out->src));
    addr_text(af, a[1], port[1], out->dst, sizeof(out->dst));
    return 0;
}

/* Is p (n bytes, no LF among them) the start of a line that may still become valid?
 * Catches garbage early: a client speaking TLS straight away fails at its first byte. */
static ssize_t v1_prefix(const unsigned char *p, size_t n, char *why, size_t why_len)
{
    static const char *const protos[] = {"TCP4 ", "TCP6 ", "UNKNOWN"};
    size_t sig = n < 6 ? n : 6;
    if (memcmp(p, v1_sig, sig) != 0)
        return bad(why, why_len, "not a PROXY protocol header (it starts with neither "
                   "\"PROXY \" nor the v2 signature)");
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r' && i + 1 < n)
            return bad(why, why_len, "v1: CR not followed by LF at byte %zu", i + 1);
        if (p[i] != '\r' && (p[i] < 0x20 || p[i] > 0x7e))
            return bad(why, why_len, "v1: byte 0x%02x at position %zu is not printable "
                       "ASCII", p[i], i + 1);
    }
    if (n > 6) {
        size_t m = n - 6;
        int ok = 0;
        for (size_t j = 0; j < 3 && !ok; j++) {
            size_t pl = strlen(protos[j]);
            size_t c = m < pl ? m : pl;
            ok = memcmp(p + 6, protos[j], c) == 0;
        }
        if (!ok)
            return bad(why, why_len, "v1: the protocol is not TCP4, TCP6 or UNKNOWN");
    }
    if (n >= V1_MAX)
        return bad(why, why_len, "v1: no CRLF within %d bytes", V1_MAX);
    return 0;
}

static ssize_t parse_v1(const unsigned char *p, size_t len, struct tlskit_proxy_header *out,
                        char *why, size_t why_len)
{
    size_t scan = len < V1_MAX ? len : V1_MAX;
    const unsigned char *lf = memchr(p, '\n', scan);
    size_t n = lf ? (size_t)(lf - p) : scan;
    if (v1_prefix(p, n, why, why_len) != 0)
        return -1;
    if (!lf)
        return 0;
    if (n < 7 || p[n - 1] != '\r')
        return bad(why, why_len, "v1: the line ends in LF without CR");
    const char *f = (const char *)p + 6;
    size_t flen = n - 1 - 6; /* between "PROXY " and CR */
    memset(out, 0, sizeof(*out));
    out->version = 1;
    out->command = TLSKIT_PROXY_CMD_PROXY;
    out->transport = TLSKIT_PROXY_STREAM;
    if (flen >= 7 && memcmp(f, "UNKNOWN", 7) == 0 && (flen == 7 || f[7] == ' ')) {
        /* Spec 2.1: the rest of an UNKNOWN line is ignored; the receiver uses the real
         * connection's addresses. */
        out->family = TLSKIT_PROXY_AF_UNSPEC;
        out->transport = TLSKIT_PROXY_UNSPEC;
    } else if (flen > 5 && (memcmp(f, "TCP4 ", 5) == 0 || memcmp(f, "TCP6 ", 5) == 0)) {
        if (v1_tcp(f + 5, flen - 5, f[3] == '4' ? AF_INET : AF_INET6, out, why, why_len) != 0)
            return -1;
    } else {
        return bad(why, why_len, "v1: the protocol is not TCP4, TCP6 or UNKNOWN");
    }
    out->length = n + 1;
    return (ssize_t)(n + 1);
}

/* ---- v2: 16-byte header, then addresses and TLVs ---- */

/* The TLVs of region p..p+n: each within bounds, the known ones well formed. *crc_at:
 * offset of a CRC32C value from p (or SIZE_MAX). */
static ssize_t v2_tlvs(const unsigned char *p, size_t n, int nested, size_t *crc_at,
                       char *why, size_t why_len)
{
    size_t i = 0;
    while (i < n) {
        if (n - i < 3)
            return bad(why, why_len, "v2: %zu stray byte%s after the last %sTLV", n - i,
                       n - i == 1 ? "" : "s", nested ? "SSL sub-" : "");
        unsigned type = p[i];
        size_t vlen = (size_t)p[i + 1] << 8 | p[i + 2];
        if (vlen > n - i - 3)
            return bad(why, why_len, "v2: %sTLV type 0x%02x says %zu bytes, %zu remain",
                       nested ? "SSL sub-" : "", type, vlen, n - i - 3);
        const unsigned char *v = p + i + 3;
        if (!nested && type == PP2_TYPE_CRC32C) {
            if (vlen != 4)
                return bad(why, why_len, "v2: CRC32C TLV of %zu bytes, not 4", vlen);
            if (*crc_at != SIZE_MAX)
                return bad(why, why_len, "v2: two CRC32C TLVs");
            *crc_at = i + 3;
        } else if (!nested && type == PP2_TYPE_UNIQUE_ID && vlen > PP2_UNIQUE_ID_MAX) {
            return bad(why, why_len, "v2: UNIQUE_ID TLV of %zu bytes (at most %d)", vlen,
                       PP2_UNIQUE_ID_MAX);
        } else if (!nested && type == PP2_TYPE_SSL) {
            if (vlen < PP2_SSL_FIXED)
                return bad(why, why_len, "v2: SSL TLV of %zu bytes (at least %d)", vlen,
                           PP2_SSL_FIXED);
            size_t none = SIZE_MAX;
            if (v2_tlvs(v + PP2_SSL_FIXED, vlen - PP2_SSL_FIXED, 1, &none, why, why_len) != 0)
                return -1;
        }
        i += 3 + vlen;
    }
    return 0;
}

/* The address block: the fields of out, and its size for the family. */
static size_t v2_addrs(const unsigned char *a, int family, struct tlskit_proxy_header *out)
{
    switch (family) {
    case TLSKIT_PROXY_AF_INET:
        addr_text(AF_INET, a, (unsigned)(a[8] << 8 | a[9]), out->src, sizeof(out->src));
        addr_text(AF_INET, a + 4, (unsigned)(a[10] << 8 | a[11]), out->dst, sizeof(out->dst));
        return V2_ADDR_INET;
    case TLSKIT_PROXY_AF_INET6:
        addr_text(AF_INET6, a, (unsigned)(a[32] << 8 | a[33]), out->src, sizeof(out->src));
        addr_text(AF_INET6, a + 16, (unsigned)(a[34] << 8 | a[35]), out->dst,
                  sizeof(out->dst));
        return V2_ADDR_INET6;
    case TLSKIT_PROXY_AF_UNIX:
        for (int j = 0; j < 2; j++) {
            const unsigned char *path = a + j * V2_UNIX_PATH;
            char *o = j ? out->dst : out->src;
            size_t cap = j ? sizeof(out->dst) : sizeof(out->src), k = 0;
            k = (size_t)snprintf(o, cap, "unix:");
            /* An abstract socket starts with NUL: shown as '@', as ss(8) does. */
            for (size_t i = 0; i < V2_UNIX_PATH && k + 1 < cap; i++) {
                unsigned char ch = path[i];
                if (ch == 0 && i > 0)
                    break;
                o[k++] = ch == 0 ? '@' : ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
            }
            o[k] = '\0';
        }
        return V2_ADDR_UNIX;
    default:
        return 0;
    }
}

/* Is p (n < 16 bytes) the start of a v2 header that may still become valid? */
static ssize_t v2_prefix(const unsigned char *p, size_t n, char *why, size_t why_len)
{
    size_t sig = n < sizeof(v2_sig) ? n : sizeof(v2_sig);
    if (memcmp(p, v2_sig, sig) != 0)
        return bad(why, why_len, "not a PROXY protocol header (it starts with neither "
                   "\"PROXY \" nor the v2 signature)");
    if (n > 12 && (p[12] >> 4) != 2)
        return bad(why, why_len, "v2: version %u, not 2", p[12] >> 4);
    if (n > 12 && (p[12] & 0x0F) > TLSKIT_PROXY_CMD_PROXY)
        return bad(why, why_len, "v2: command 0x%x is neither LOCAL nor PROXY", p[12] & 0x0F);
    if (n > 13 && (p[13] >> 4) > TLSKIT_PROXY_AF_UNIX)
        return bad(why, why_len, "v2: address family 0x%x is not UNSPEC, INET, INET6 or "
                   "UNIX", p[13] >> 4);
    if (n > 13 && (p[13] & 0x0F) > TLSKIT_PROXY_DGRAM)
        return bad(why, why_len, "v2: transport 0x%x is not UNSPEC, STREAM or DGRAM",
                   p[13] & 0x0F);
    return 0;
}

static ssize_t parse_v2(const unsigned char *p, size_t len, size_t max_len,
                        struct tlskit_proxy_header *out, char *why, size_t why_len)
{
    if (v2_prefix(p, len < V2_HDR ? len : V2_HDR, why, why_len) != 0)
        return -1;
    if (len < V2_HDR)
        return 0;
    size_t body = (size_t)p[14] << 8 | p[15], total = V2_HDR + body;
    if (total > max_len)
        return bad(why, why_len, "v2: header of %zu bytes, over the limit of %zu", total,
                   max_len);
    int cmd = p[12] & 0x0F, family = p[13] >> 4;
    size_t need = family == TLSKIT_PROXY_AF_INET    ? V2_ADDR_INET
                  : family == TLSKIT_PROXY_AF_INET6 ? V2_ADDR_INET6
                  : family == TLSKIT_PROXY_AF_UNIX  ? V2_ADDR_UNIX
                                                    : 0;
    if (body < need)
        return bad(why, why_len, "v2: %zu bytes of addresses, the family needs %zu", body,
                   need);
    if (len < total)
        return 0;
    memset(out, 0, sizeof(*out));
    out->version = 2;
    out->command = cmd;
    out->family = family;
    out->transport = p[13] & 0x0F;
    v2_addrs(p + V2_HDR, family, out);
    size_t crc_at = SIZE_MAX;
    const unsigned char *tlv = p + V2_HDR + need;
    if (v2_tlvs(tlv, body - need, 0, &crc_at, why, why_len) != 0)
        return -1;
    if (crc_at != SIZE_MAX) {
        /* Spec 2.2.4: over the whole header, the checksum field counted as zeros. */
        size_t at = (size_t)(tlv - p) + crc_at;
        static const unsigned char zero[4];
        uint32_t crc = crc32c_update(0xFFFFFFFFu, p, at);
        crc = ~crc32c_update(crc32c_update(crc, zero, 4), p + at + 4, total - at - 4);
        uint32_t got = (uint32_t)p[at] << 24 | (uint32_t)p[at + 1] << 16 |
                       (uint32_t)p[at + 2] << 8 | p[at + 3];
        if (crc != got)
            return bad(why, why_len, "v2: CRC32C mismatch (header says %08x, computed %08x)",
                       got, crc);
        out->crc32c = 1;
    }
    out->tlv_len = body - need;
    out->length = total;
    return (ssize_t)total;
}

ssize_t tlskit_proxy_header_parse(const void *buf, size_t len, size_t max_len,
                                  struct tlskit_proxy_header *out, char *why, size_t why_len)
{
    struct tlskit_proxy_header scratch;
    if (why && why_len)
        why[0] = '\0';
    if (!out)
        out = &scratch;
    if (!buf && len)
        return bad(why, why_len, "no buffer");
    if (max_len == 0 || max_len > TLSKIT_PROXY_MAX_HEADER)
        max_len = TLSKIT_PROXY_MAX_HEADER;
    if (max_len < V1_MAX)
        max_len = V1_MAX;
    if (len == 0)
        return 0;
    const unsigned char *p = buf;
    if (p[0] == v1_sig[0])
        return parse_v1(p, len, out, why, why_len);
    return parse_v2(p, len, max_len, out, why, why_len);
}
