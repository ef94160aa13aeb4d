/* SPDX-License-Identifier: MIT */
/*
 * PROXY protocol in front of TLS (lib/src/proxy.c, proxy_recv.c; tlsserver
 * --proxy-protocol, --proxy-from):
 *   - the parser matrix: every valid v1 and v2 form, fed whole, with the ClientHello's
 *     first bytes behind it, and byte by byte; malformed headers, each refused with its
 *     reason and never accepted on a prefix; the size limit; --proxy-from prefixes;
 *   - the header read from real sockets, in the engine and on the blocking accept path:
 *     header and ClientHello in one write, header split byte by byte, LOCAL keeping the
 *     real peer, an untrusted sender, a silent one, garbage, EOF in the middle;
 *   - HAProxy (Debian's, mode tcp) as the real sender, send-proxy and send-proxy-v2 with
 *     its CRC32C, in front of tlsserver --proxy-protocol, over IPv4 and IPv6.
 */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TK_SUITE(proxy);

/* The first bytes of a TLS ClientHello: what follows a header in the same segment. */
static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};

/* ---- a v2 header builder of the test's own, with an independent CRC32C ---- */

static uint32_t crc_table[256];

/* Table-driven, unlike the library's bitwise loop: two implementations that must agree. */
static uint32_t test_crc32c(const unsigned char *p, size_t n)
{
    if (!crc_table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            crc_table[i] = c;
        }
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

#define SIG "\r\n\r\n\0\r\nQUIT\n"

/* ver_cmd, fam (family << 4 | transport), the address block, TLVs; with crc a CRC32C TLV
 * is appended, computed over the whole. Returns the length. */
static size_t v2(unsigned char *out, unsigned ver_cmd, unsigned fam, const void *addr,
                 size_t alen, const void *tlv, size_t tlen, int crc)
{
    size_t body = alen + tlen + (crc ? 7 : 0);
    memcpy(out, SIG, 12);
    out[12] = (unsigned char)ver_cmd;
    out[13] = (unsigned char)fam;
    out[14] = (unsigned char)(body >> 8);
    out[15] = (unsigned char)body;
    if (alen)
        memcpy(out + 16, addr, alen);
    if (tlen)
        memcpy(out + 16 + alen, tlv, tlen);
    size_t n = 16 + body;
    if (crc) {
        unsigned char *t = out + 16 + alen + tlen;
        memcpy(t, "\x03\x00\x04\x00\x00\x00\x00", 7);
        uint32_t c = test_crc32c(out, n);
        t[3] = (unsigned char)(c >> 24);
        t[4] = (unsigned char)(c >> 16);
        t[5] = (unsigned char)(c >> 8);
        t[6] = (unsigned char)c;
    }
    return n;
}

static const unsigned char a4[12] = {192, 0, 2, 9, 198, 51, 100, 1, 0x11, 0x5c, 0x01, 0xbb};
static unsigned char a6[36];
static unsigned char au[216];

static void addrs_init(void)
{
    inet_pton(AF_INET6, "2001:db8::9", a6);
    inet_pton(AF_INET6, "2001:db8::1", a6 + 16);
    a6[32] = 0xc3; a6[33] = 0x50; a6[34] = 0x01; a6[35] = 0xbb; /* 50000, 443 */
    memset(au, 0, sizeof(au));
    memcpy(au, "/run/client.sock", 16);
    memcpy(au + 108, "/run/tls.sock", 13);
}

/* TLVs: ALPN "h2", AUTHORITY, NOOP, UNIQUE_ID, SSL with version and CN sub-TLVs. */
static const unsigned char tlvs[] =
    "\x01\x00\x02h2"
    "\x02\x00\x0b" "example.com"
    "\x04\x00\x03\x00\x00\x00"
    "\x05\x00\x04\xde\xad\xbe\xef"
    "\x20\x00\x17\x07\x00\x00\x00\x00"
    "\x21\x00\x07TLSv1.3"
    "\x22\x00\x05" "alice";

struct valid {
    const char *name;
    unsigned char buf[400];
    size_t len;
    int version, command, family;
    const char *src, *dst;
};

static size_t text(unsigned char *out, const char *s)
{
    size_t n = strlen(s);
    memcpy(out, s, n);
    return n;
}

/* Every valid form. */
static size_t valid_forms(struct valid *v)
{
    addrs_init();
    size_t n = 0;
#define V1(nm, line, fam, s, d)                                                         \
    v[n] = (struct valid){.name = nm, .version = 1, .command = 1, .family = fam,         \
                          .src = s, .dst = d};                                           \
    v[n].len = text(v[n].buf, line);                                                     \
    n++
    V1("v1 TCP4", "PROXY TCP4 192.0.2.9 198.51.100.1 4444 443\r\n", 1, "192.0.2.9:4444",
       "198.51.100.1:443");
    V1("v1 TCP6", "PROXY TCP6 2001:db8::9 2001:db8::1 50000 443\r\n", 2,
       "[2001:db8::9]:50000", "[2001:db8::1]:443");
    V1("v1 TCP4 ports 0 and 65535", "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", 1,
       "0.0.0.0:0", "255.255.255.255:65535");
    V1("v1 UNKNOWN", "PROXY UNKNOWN\r\n", 0, "", "");
    V1("v1 UNKNOWN with fields", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", 0, "", "");
    V1("v1 TCP6 longest",
       "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:"
       "ffff:ffff 65535 65535\r\n",
       2, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
       "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
    /* The longest line: 107 bytes with CRLF (spec 2.1's worst case). */
    V1("v1 107 bytes",
       "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:"
       "ffff:ffff 65535 65535\r\n",
       0, "", "");
#undef V1
#define V2(nm, vc, fam, ad, al, t, tl, crc, f, s, d)                                   \
    v[n] = (struct valid){.name = nm, .version = 2, .command = (vc) & 0xF, .family = f,  \
                          .src = s, .dst = d};                                           \
    v[n].len = v2(v[n].buf, vc, fam, ad, al, t, tl, crc);                                \
    n++
    V2("v2 PROXY INET STREAM", 0x21, 0x11, a4, 12, NULL, 0, 0, 1, "192.0.2.9:4444",
       "198.51.100.1:443");
    V2("v2 PROXY INET6 STREAM", 0x21, 0x21, a6, 36, NULL, 0, 0, 2, "[2001:db8::9]:50000",
       "[2001:db8::1]:443");
    V2("v2 PROXY UNIX STREAM", 0x21, 0x31, au, 216, NULL, 0, 0, 3, "unix:/run/client.sock",
       "unix:/run/tls.sock");
    V2("v2 PROXY INET DGRAM", 0x21, 0x12, a4, 12, NULL, 0, 0, 1, "192.0.2.9:4444",
       "198.51.100.1:443");
    V2("v2 PROXY UNSPEC", 0x21, 0x00, NULL, 0, NULL, 0, 0, 0, "", "");
    V2("v2 LOCAL UNSPEC (health check)", 0x20, 0x00, NULL, 0, NULL, 0, 0, 0, "", "");
    V2("v2 LOCAL with INET addresses", 0x20, 0x11, a4, 12, NULL, 0, 0, 1, "192.0.2.9:4444",
       "198.51.100.1:443");
    V2("v2 INET with TLVs", 0x21, 0x11, a4, 12, tlvs, sizeof(tlvs) - 1, 0, 1,
       "192.0.2.9:4444", "198.51.100.1:443");
    V2("v2 INET with CRC32C", 0x21, 0x11, a4, 12, NULL, 0, 1, 1, "192.0.2.9:4444",
       "198.51.100.1:443");
    V2("v2 INET6 with TLVs and CRC32C", 0x21, 0x21, a6, 36, tlvs, sizeof(tlvs) - 1, 1, 2,
       "[2001:db8::9]:50000", "[2001:db8::1]:443");
    V2("v2 LOCAL with CRC32C", 0x20, 0x00, NULL, 0, NULL, 0, 1, 0, "", "");
#undef V2
    return n;
}

TK_TEST(proxy, crc32c_reference)
{
    /* The check value of CRC-32C (RFC 3720 B.4, the usual "123456789"). */
    cr_assert_eq(test_crc32c((const unsigned char *)"123456789", 9), 0xE3069283u);
}

TK_TEST(proxy, parse_every_valid_form)
{
    static struct valid v[32];
    size_t n = valid_forms(v);
    for (size_t i = 0; i < n; i++) {
        struct tlskit_proxy_header h;
        char why[256];
        unsigned char buf[600];
        memcpy(buf, v[i].buf, v[i].len);
        memcpy(buf + v[i].len, hello, sizeof(hello));
        /* Whole, and with the ClientHello's first bytes behind it: only the header counts. */
        for (int extra = 0; extra < 2; extra++) {
            size_t len = v[i].len + (extra ? sizeof(hello) : 0);
            memset(&h, 0x55, sizeof(h));
            ssize_t r = tlskit_proxy_header_parse(buf, len, 0, &h, why, sizeof(why));
            cr_assert_eq(r, (ssize_t)v[i].len, "%s: %zd (%s)", v[i].name, r, why);
            cr_expect_eq(h.length, v[i].len, "%s", v[i].name);
            cr_expect_eq(h.version, v[i].version, "%s", v[i].name);
            cr_expect_eq(h.command, v[i].command, "%s", v[i].name);
            cr_expect_eq(h.family, v[i].family, "%s: family %d", v[i].name, h.family);
            cr_expect_str_eq(h.src, v[i].src, "%s", v[i].name);
            cr_expect_str_eq(h.dst, v[i].dst, "%s", v[i].name);
            cr_expect_eq(h.crc32c, tk_contains(v[i].name, "CRC32C"), "%s", v[i].name);
        }
        /* Byte by byte: every proper prefix needs more, never a verdict. */
        for (size_t k = 0; k < v[i].len; k++) {
            ssize_t r = tlskit_proxy_header_parse(buf, k, 0, &h, why, sizeof(why));
            cr_assert_eq(r, 0, "%s: prefix of %zu bytes gave %zd (%s)", v[i].name, k, r, why);
        }
    }
}

struct bad {
    const char *name;
    unsigned char buf[400];
    size_t len;
    const char *why;   /* a part of the reason */
    size_t fails_at;   /* the shortest prefix that already fails (0: only the whole) */
};

static size_t malformed(struct bad *b)
{
    addrs_init();
    size_t n = 0;
#define B1(nm, line, w, at)                                                              \
    b[n] = (struct bad){.name = nm, .why = w, .fails_at = at};                           \
    b[n].len = text(b[n].buf, line);                                                     \
    n++
    B1("TLS at once", "\x16\x03\x01\x02\x00", "not a PROXY protocol header", 1);
    B1("HTTP", "GET / HTTP/1.1\r\n\r\n", "not a PROXY protocol header", 1);
    B1("lower case", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY protocol header", 1);
    B1("no space after PROXY", "PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n",
       "not a PROXY protocol header", 6);
    B1("TCP5", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "TCP4, TCP6 or UNKNOWN", 10);
    B1("UDP4", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "TCP4, TCP6 or UNKNOWN", 8);
    B1("LF without CR", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "without CR", 0);
    B1("CR inside", "PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n", "CR not followed by LF", 20);
    B1("control byte", "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", "not printable", 19);
    B1("two spaces", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "empty field", 0);
    B1("trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "more than four", 0);
    B1("three fields", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "not 4", 0);
    B1("five fields", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "more than four", 0);
    B1("IPv6 in TCP4", "PROXY TCP4 ::1 ::1 1 2\r\n", "not an IPv4 address", 0);
    B1("IPv4 in TCP6", "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "not an IPv6 address", 0);
    B1("host name", "PROXY TCP4 localhost 5.6.7.8 1 2\r\n", "not an IPv4 address", 0);
    B1("octal-looking address", "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "not an IPv4", 0);
    B1("port 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "source port", 0);
    B1("port with leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 1 080\r\n", "destination port",
       0);
    B1("negative port", "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "source port", 0);
    B1("TCP4 alone", "PROXY TCP4\r\n", "TCP4, TCP6 or UNKNOWN", 0);
    B1("empty protocol", "PROXY \r\n", "TCP4, TCP6 or UNKNOWN", 0);
    B1("UNKNOWNX", "PROXY UNKNOWNX\r\n", "TCP4, TCP6 or UNKNOWN", 0);
    B1("no CRLF within 107 bytes",
       "PROXY UNKNOWN aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
       "no CRLF within 107", 107);
#undef B1
#define B2(nm, vc, fam, ad, al, t, tl, crc, w, at)                                     \
    b[n] = (struct bad){.name = nm, .why = w, .fails_at = at};                           \
    b[n].len = v2(b[n].buf, vc, fam, ad, al, t, tl, crc);                                \
    n++
    B2("v2 version 1", 0x11, 0x11, a4, 12, NULL, 0, 0, "version 1, not 2", 13);
    B2("v2 version 3", 0x31, 0x11, a4, 12, NULL, 0, 0, "version 3, not 2", 13);
    B2("v2 command 2", 0x22, 0x11, a4, 12, NULL, 0, 0, "neither LOCAL nor PROXY", 13);
    B2("v2 family 4", 0x21, 0x41, a4, 12, NULL, 0, 0, "address family", 14);
    B2("v2 transport 3", 0x21, 0x13, a4, 12, NULL, 0, 0, "transport", 14);
    B2("v2 INET short", 0x21, 0x11, a4, 11, NULL, 0, 0, "family needs 12", 16);
    B2("v2 INET6 short", 0x21, 0x21, a6, 35, NULL, 0, 0, "family needs 36", 16);
    B2("v2 UNIX short", 0x21, 0x31, au, 215, NULL, 0, 0, "family needs 216", 16);
    B2("v2 TLV overrun", 0x21, 0x11, a4, 12, "\x01\x00\x09h2", 5, 0, "says 9 bytes", 0);
    B2("v2 stray TLV bytes", 0x21, 0x11, a4, 12, "\x01\x00", 2, 0, "stray", 0);
    B2("v2 CRC32C of 3 bytes", 0x21, 0x11, a4, 12, "\x03\x00\x03\x00\x00\x00", 6, 0,
       "CRC32C TLV of 3", 0);
    B2("v2 two CRC32C", 0x21, 0x11, a4, 12, "\x03\x00\x04\x00\x00\x00\x00", 7, 1,
       "two CRC32C", 0);
    B2("v2 SSL TLV too short", 0x21, 0x11, a4, 12, "\x20\x00\x04\x07\x00\x00\x00", 7, 0,
       "SSL TLV of 4", 0);
    B2("v2 SSL sub-TLV overrun", 0x21, 0x11, a4, 12,
       "\x20\x00\x08\x07\x00\x00\x00\x00\x21\x00\x09", 11, 0, "SSL sub-TLV", 0);
#undef B2
    /* A wrong checksum: the right one with a bit flipped. */
    b[n] = (struct bad){.name = "v2 CRC32C mismatch", .why = "CRC32C mismatch"};
    b[n].len = v2(b[n].buf, 0x21, 0x11, a4, 12, NULL, 0, 1);
    b[n].buf[b[n].len - 1] ^= 1;
    n++;
    /* A flipped byte of an address the CRC32C covers. */
    b[n] = (struct bad){.name = "v2 address changed under CRC32C", .why = "CRC32C mismatch"};
    b[n].len = v2(b[n].buf, 0x21, 0x11, a4, 12, NULL, 0, 1);
    b[n].buf[17] ^= 0x40;
    n++;
    /* A UNIQUE_ID over 128 bytes. */
    b[n] = (struct bad){.name = "v2 UNIQUE_ID of 129", .why = "UNIQUE_ID TLV of 129"};
    unsigned char uid[132] = {0x05, 0x00, 129};
    b[n].len = v2(b[n].buf, 0x21, 0x11, a4, 12, uid, 132, 0);
    n++;
    /* The signature broken at its fifth byte. */
    b[n] = (struct bad){.name = "v2 bad signature", .why = "not a PROXY protocol header",
                        .fails_at = 5};
    b[n].len = v2(b[n].buf, 0x21, 0x11, a4, 12, NULL, 0, 0);
    b[n].buf[4] = 0x01;
    n++;
    return n;
}

TK_TEST(proxy, parse_malformed_headers)
{
    static struct bad b[64];
    size_t n = malformed(b);
    for (size_t i = 0; i < n; i++) {
        struct tlskit_proxy_header h;
        char why[256];
        ssize_t r = tlskit_proxy_header_parse(b[i].buf, b[i].len, 0, &h, why, sizeof(why));
        cr_expect_eq(r, -1, "%s: accepted (%zd)", b[i].name, r);
        cr_expect(tk_contains(why, b[i].why), "%s: reason \"%s\", expected \"%s\"", b[i].name,
                  why, b[i].why);
        /* No prefix is ever accepted; and garbage is refused as early as the bytes say. */
        for (size_t k = 1; k < b[i].len; k++) {
            r = tlskit_proxy_header_parse(b[i].buf, k, 0, &h, why, sizeof(why));
            cr_assert(r <= 0, "%s: the prefix of %zu bytes was accepted", b[i].name, k);
            if (b[i].fails_at && k >= b[i].fails_at)
                cr_assert_eq(r, -1, "%s: still waiting after %zu bytes", b[i].name, k);
            if (b[i].fails_at && k < b[i].fails_at)
                cr_assert_eq(r, 0, "%s: failed at %zu bytes already (%s)", b[i].name, k, why);
        }
    }
}

TK_TEST(proxy, parse_size_limit)
{
    static unsigned char buf[TLSKIT_PROXY_MAX_HEADER + 64];
    static unsigned char noop[TLSKIT_PROXY_MAX_HEADER];
    char why[256];
    struct tlskit_proxy_header h;
    /* A NOOP TLV makes the header exactly the limit, then one byte more. */
    size_t tl = TLSKIT_PROXY_MAX_HEADER - 16 - 12;
    noop[0] = 0x04;
    noop[1] = (unsigned char)((tl - 3) >> 8);
    noop[2] = (unsigned char)(tl - 3);
    size_t n = v2(buf, 0x21, 0x11, a4, 12, noop, tl, 0);
    cr_assert_eq(n, TLSKIT_PROXY_MAX_HEADER);
    cr_expect_eq(tlskit_proxy_header_parse(buf, n, 0, &h, why, sizeof(why)), (ssize_t)n, "%s",
                 why);
    noop[2]++;
    n = v2(buf, 0x21, 0x11, a4, 12, noop, tl + 1, 0);
    /* Refused from the 16-byte header on: the length alone is over the limit. */
    cr_expect_eq(tlskit_proxy_header_parse(buf, 16, 0, &h, why, sizeof(why)), -1);
    cr_expect(tk_contains(why, "over the limit"), "%s", why);
    /* A caller's own smaller limit (never below 107: a v1 line may always be that). */
    addrs_init();
    n = v2(buf, 0x21, 0x21, a6, 36, tlvs, sizeof(tlvs) - 1, 0);
    cr_assert_gt(n, 107);
    cr_expect_eq(tlskit_proxy_header_parse(buf, n, 128, &h, why, sizeof(why)), (ssize_t)n);
    cr_expect_eq(tlskit_proxy_header_parse(buf, n, 107, &h, why, sizeof(why)), -1);
    cr_expect_eq(tlskit_proxy_header_parse(buf, n, 1, &h, why, sizeof(why)), -1);
    /* Nothing yet: need more. */
    cr_expect_eq(tlskit_proxy_header_parse(buf, 0, 0, &h, why, sizeof(why)), 0);
}

TK_TEST(proxy, proxy_from_prefixes)
{
    static const char *const good[] = {"127.0.0.0/8", "10.0.0.0/8", "192.0.2.7", "0.0.0.0/0",
                                       "2001:db8::/32", "::1", "::/0", "192.0.2.7/32",
                                       "::ffff:10.0.0.0/104"};
    static const struct {
        const char *cidr, *why;
    } bad[] = {{"", "not an address"},        {"/8", "not an address"},
               {"10.0.0.0/", "prefix length"}, {"10.0.0.0/33", "prefix length"},
               {"10.0.0.0/08", "prefix length"}, {"::/129", "prefix length"},
               {"10.1.2.3/8", "bits are set"}, {"localhost", "not an IPv4 or IPv6"},
               {"10.0.0.0/x", "prefix length"}, {"[::1]", "not an IPv4 or IPv6"}};
    char why[200];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_expect_eq(tlskit_proxy_from_check(good[i], why, sizeof(why)), 0, "%s: %s", good[i],
                     why);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(tlskit_proxy_from_check(bad[i].cidr, why, sizeof(why)), -1, "%s",
                     bad[i].cidr);
        cr_expect(tk_contains(why, bad[i].why), "%s: %s", bad[i].cidr, why);
    }
    /* The setters refuse the same, and the 65th prefix. */
    tlskit_config *cfg = tk_server_config("server");
    tlskit_listener *l = tlskit_listener_new(cfg);
    cr_expect_eq(tlskit_listener_add_proxy_from(l, "10.1.2.3/8"), -1);
    cr_expect_eq(tlskit_listener_error_code(l), TLSKIT_E_INVALID);
    for (int i = 0; i < TLSKIT_PROXY_MAX_FROM; i++)
        cr_assert_eq(tlskit_listener_add_proxy_from(l, "10.0.0.0/8"), 0);
    cr_expect_eq(tlskit_listener_add_proxy_from(l, "10.0.0.0/8"), -1);
    cr_expect_eq(tlskit_listener_set_proxy_protocol(l, 1, -1), -1);
    tlskit_listener_free(l);
    tlskit_config_free(cfg);
}

/* ---- real sockets: the sending side ---- */

enum send_way { ONE_WRITE, BYTE_SPLIT };

struct relay {
    int app;       /* the tlskit client's end of a socketpair */
    int tcp;       /* to the server */
    const unsigned char *hdr;
    size_t hlen;
};

/* Header and the client's first flight (the ClientHello) in ONE send(), then both ways
 * until each side has closed. */
static void *relay_main(void *arg)
{
    struct relay *r = arg;
    unsigned char buf[16384 + 512];
    memcpy(buf, r->hdr, r->hlen);
    ssize_t n = read(r->app, buf + r->hlen, sizeof(buf) - r->hlen);
    if (n <= 0)
        return NULL;
    if (send(r->tcp, buf, r->hlen + (size_t)n, MSG_NOSIGNAL) != (ssize_t)(r->hlen + (size_t)n))
        return NULL;
    int open_app = 1, open_tcp = 1;
    while (open_app || open_tcp) {
        struct pollfd p[2] = {{.fd = open_app ? r->app : -1, .events = POLLIN},
                              {.fd = open_tcp ? r->tcp : -1, .events = POLLIN}};
        if (poll(p, 2, 30000) <= 0)
            break;
        for (int i = 0; i < 2; i++) {
            if (!p[i].revents)
                continue;
            int from = i ? r->tcp : r->app, to = i ? r->app : r->tcp;
            n = read(from, buf, sizeof(buf));
            if (n <= 0) {
                shutdown(to, SHUT_WR);
                if (i)
                    open_tcp = 0;
                else
                    open_app = 0;
            } else if (send(to, buf, (size_t)n, MSG_NOSIGNAL) != n) {
                open_app = open_tcp = 0;
            }
        }
    }
    return NULL;
}

/* Connect to 127.0.0.1:port, send hdr the chosen way, then a TLS client handshakes,
 * sends "ping" and expects it back. 0 when all of that worked; *local gets the client
 * socket's own address ("127.0.0.1:PORT"). */
static int client_exchange(int port, const unsigned char *hdr, size_t hlen, enum send_way way,
                           char *local, size_t local_len)
{
    int tcp = tk_tcp_connect("127.0.0.1", port);
    int one = 1;
    setsockopt(tcp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    getsockname(tcp, (struct sockaddr *)&sin, &sl);
    snprintf(local, local_len, "127.0.0.1:%u", ntohs(sin.sin_port));
    tlskit_config *cfg = tk_client_config("ca.crt");
    tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, 20000);
    tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_READ, 20000);
    tlskit_conn *c = tlskit_conn_new(cfg);
    int fd = tcp, sv[2] = {-1, -1};
    pthread_t t = 0;
    struct relay r = {.tcp = tcp, .hdr = hdr, .hlen = hlen};
    if (way == ONE_WRITE) {
        tk_socketpair(sv);
        r.app = sv[1];
        t = tk_thread_start(relay_main, &r);
        fd = sv[0];
    } else {
        /* One byte per segment, paced so that the server sees them apart. */
        for (size_t i = 0; i < hlen; i++) {
            cr_assert_eq(send(tcp, hdr + i, 1, MSG_NOSIGNAL), 1);
            poll(NULL, 0, 2);
        }
    }
    int rc = -1;
    char got[8] = "";
    if (tlskit_conn_wrap_client(c, fd, "localhost") == 0 && tlskit_conn_handshake(c) == 0 &&
        tlskit_conn_write_all(c, "ping", 4) == 0) {
        size_t have = 0;
        while (have < 4) {
            ssize_t n = tlskit_conn_read(c, got + have, 4 - have);
            if (n <= 0)
                break;
            have += (size_t)n;
        }
        rc = have == 4 && memcmp(got, "ping", 4) == 0 ? 0 : -1;
    }
    if (rc != 0)
        cr_log_warn("client: %s", tlskit_conn_error(c));
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    if (way == ONE_WRITE) {
        close(sv[0]);
        tk_thread_join(t);
        close(sv[1]);
    }
    close(tcp);
    return rc;
}

/* ---- real sockets: the engine ---- */

struct seen {
    pthread_mutex_t mu;
    int opens, closes;
    char peer[128];       /* at on_open */
    int code;             /* at on_close */
    char reason[512];
    int local, check;     /* tlskit_conn_proxy_local/health_check() at on_close */
};

static void eng_open(tlskit_conn *c, void *arg)
{
    struct seen *s = arg;
    pthread_mutex_lock(&s->mu);
    s->opens++;
    snprintf(s->peer, sizeof(s->peer), "%s", tlskit_conn_peer_addr(c));
    pthread_mutex_unlock(&s->mu);
}

static void eng_data(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    (void)arg;
    tlskit_conn_write(c, d, n);
}

static void eng_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    struct seen *s = arg;
    pthread_mutex_lock(&s->mu);
    s->closes++;
    if (!s->opens || code != TLSKIT_E_NONE) {
        s->code = code;
        snprintf(s->reason, sizeof(s->reason), "%s", reason);
    }
    if (!s->opens)
        snprintf(s->peer, sizeof(s->peer), "%s", tlskit_conn_peer_addr(c));
    s->local = tlskit_conn_proxy_local(c);
    s->check = tlskit_conn_health_check(c);
    pthread_mutex_unlock(&s->mu);
}

static int seen_closes(struct seen *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->closes;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void wait_closes(struct seen *s, int n)
{
    int64_t end = tk_now_ms() + 20000;
    while (seen_closes(s) < n && tk_now_ms() < end)
        poll(NULL, 0, 5);
    cr_assert_eq(seen_closes(s), n, "closes: %d, expected %d", seen_closes(s), n);
}

struct peng {
    tlskit_config *cfg;
    tlskit_engine *e;
    struct seen s;
    int port;
};

static void peng_start(struct peng *g, const char *from, int64_t timeout_ms)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->s.mu, NULL);
    g->cfg = tk_server_config("server");
    struct tlskit_engine_handlers h = {.on_open = eng_open, .on_data = eng_data,
                                       .on_close = eng_close, .arg = &g->s};
    g->e = tlskit_engine_new(g->cfg, &h);
    cr_assert_not_null(g->e);
    cr_assert_eq(tlskit_engine_set_workers(g->e, 2), 0);
    cr_assert_eq(tlskit_engine_set_proxy_protocol(g->e, 1, timeout_ms), 0);
    if (from)
        cr_assert_eq(tlskit_engine_add_proxy_from(g->e, from), 0, "%s",
                     tlskit_engine_error(g->e));
    cr_assert_eq(tlskit_engine_listen(g->e, "127.0.0.1", "0", 0), 0, "%s",
                 tlskit_engine_error(g->e));
    g->port = tlskit_engine_port(g->e);
    cr_assert_eq(tlskit_engine_start(g->e), 0);
}

static void peng_free(struct peng *g, struct tlskit_engine_stats *st)
{
    cr_assert_eq(tlskit_engine_stop(g->e), 0);
    if (st)
        tlskit_engine_read_stats(g->e, st);
    tlskit_engine_free(g->e);
    tlskit_config_free(g->cfg);
    pthread_mutex_destroy(&g->s.mu);
}

static void engine_case(const unsigned char *hdr, size_t hlen, enum send_way way,
                        const char *want_peer)
{
    struct peng g;
    peng_start(&g, NULL, 0);
    char local[64];
    cr_assert_eq(client_exchange(g.port, hdr, hlen, way, local, sizeof(local)), 0);
    wait_closes(&g.s, 1);
    cr_expect_str_eq(g.s.peer, want_peer ? want_peer : local);
    cr_expect_eq(g.s.opens, 1);
    /* LOCAL is said (v2 command 0), but a connection that went on to TLS is no check. */
    cr_expect_eq(g.s.local, hlen >= 13 && hdr[0] == 0x0D && hdr[12] == 0x20);
    cr_expect_eq(g.s.check, 0);
    peng_free(&g, NULL);
}

TK_TEST(proxy, engine_v1_header_and_hello_in_one_write)
{
    const char *h = "PROXY TCP4 203.0.113.7 198.51.100.1 51234 443\r\n";
    engine_case((const unsigned char *)h, strlen(h), ONE_WRITE, "203.0.113.7:51234");
}

TK_TEST(proxy, engine_v2_crc_header_and_hello_in_one_write)
{
    unsigned char b[400];
    addrs_init();
    size_t n = v2(b, 0x21, 0x21, a6, 36, tlvs, sizeof(tlvs) - 1, 1);
    engine_case(b, n, ONE_WRITE, "[2001:db8::9]:50000");
}

TK_TEST(proxy, engine_v1_split_byte_by_byte)
{
    const char *h = "PROXY TCP6 2001:db8::7 2001:db8::1 40000 443\r\n";
    engine_case((const unsigned char *)h, strlen(h), BYTE_SPLIT, "[2001:db8::7]:40000");
}

TK_TEST(proxy, engine_v2_split_byte_by_byte)
{
    unsigned char b[400];
    size_t n = v2(b, 0x21, 0x11, a4, 12, NULL, 0, 1);
    engine_case(b, n, BYTE_SPLIT, "192.0.2.9:4444");
}

TK_TEST(proxy, engine_local_keeps_the_real_peer)
{
    unsigned char b[64];
    size_t n = v2(b, 0x20, 0x00, NULL, 0, NULL, 0, 0);
    engine_case(b, n, ONE_WRITE, NULL);
    n = v2(b, 0x20, 0x11, a4, 12, NULL, 0, 0); /* LOCAL: addresses ignored */
    engine_case(b, n, ONE_WRITE, NULL);
    engine_case((const unsigned char *)"PROXY UNKNOWN\r\n", 15, BYTE_SPLIT, NULL);
}

/* A raw client that sends data (maybe none), optionally closes its sending side, and
 * waits for the server to close. */
static void raw_client(int port, const void *data, size_t len, int close_wr)
{
    int fd = tk_tcp_connect("127.0.0.1", port);
    if (len)
        cr_assert_eq(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
    if (close_wr)
        shutdown(fd, SHUT_WR);
    char buf[256];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int64_t end = tk_now_ms() + 20000;
    while (tk_now_ms() < end && poll(&p, 1, 1000) >= 0) {
        if (p.revents && read(fd, buf, sizeof(buf)) <= 0)
            break;
    }
    close(fd);
}

static void engine_refusal(const char *from, int64_t timeout_ms, const void *data,
                           size_t len, int close_wr, int code, const char *why)
{
    struct peng g;
    peng_start(&g, from, timeout_ms);
    raw_client(g.port, data, len, close_wr);
    wait_closes(&g.s, 1);
    cr_expect_eq(g.s.opens, 0);
    cr_expect_eq(g.s.code, code, "code %s: %s", tlskit_error_name(g.s.code), g.s.reason);
    cr_expect(tk_contains(g.s.reason, why), "reason: %s", g.s.reason);
    cr_expect(tk_contains(g.s.reason, "PROXY header from 127.0.0.1:"), "reason: %s",
              g.s.reason);
    struct tlskit_engine_stats st;
    peng_free(&g, &st);
    cr_expect_eq(st.handshakes_failed, 1);
    cr_expect_eq(st.handshake_errors[code], 1);
    cr_expect_eq(st.handshake_timeouts, code == TLSKIT_E_TIMEOUT ? 1u : 0u);
}

TK_TEST(proxy, engine_untrusted_sender_refused)
{
    const char *h = "PROXY TCP4 203.0.113.7 198.51.100.1 51234 443\r\n";
    engine_refusal("10.0.0.0/8", 0, h, strlen(h), 0, TLSKIT_E_PROTOCOL,
                   "not a trusted PROXY sender");
}

TK_TEST(proxy, engine_silent_client_times_out)
{
    engine_refusal(NULL, 300, NULL, 0, 0, TLSKIT_E_TIMEOUT, "timed out after 0.300 s");
}

TK_TEST(proxy, engine_partial_header_times_out)
{
    engine_refusal(NULL, 300, "PROXY TCP4 1.2.3.4", 18, 0, TLSKIT_E_TIMEOUT, "timed out");
}

TK_TEST(proxy, engine_garbage_refused)
{
    engine_refusal(NULL, 0, "\x16\x03\x01\x00\x10", 5, 0, TLSKIT_E_PROTOCOL,
                   "not a PROXY protocol header");
    engine_refusal(NULL, 0, "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", 36, 0,
                   TLSKIT_E_PROTOCOL, "destination port");
}

TK_TEST(proxy, engine_eof_inside_header)
{
    engine_refusal(NULL, 0, "PROXY TCP4 1.2.3.4", 18, 1, TLSKIT_E_CLOSED,
                   "in the middle of the header");
    engine_refusal(NULL, 0, NULL, 0, 1, TLSKIT_E_CLOSED, "before sending a header");
}

/* A health check: a LOCAL header, then a close (FIN) or a reset before any TLS byte. Its
 * on_close says so (the error class is the usual one), and the engine counts it in
 * health_checks, not as a failed handshake. A LOCAL header followed by garbage is no
 * health check: a failed handshake. */
static void engine_health_check(int reset)
{
    struct peng g;
    peng_start(&g, NULL, 0);
    unsigned char b[64];
    size_t n = v2(b, 0x20, 0x00, NULL, 0, NULL, 0, 0);
    int fd = tk_tcp_connect("127.0.0.1", g.port);
    cr_assert_eq(send(fd, b, n, MSG_NOSIGNAL), (ssize_t)n);
    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    }
    close(fd);
    wait_closes(&g.s, 1);
    cr_expect_eq(g.s.opens, 0);
    cr_expect_eq(g.s.local, 1);
    cr_expect_eq(g.s.check, 1, "not a health check: %s: %s", tlskit_error_name(g.s.code),
                 g.s.reason);
    cr_expect_eq(g.s.code, reset ? TLSKIT_E_IO : TLSKIT_E_CLOSED, "%s: %s",
                 tlskit_error_name(g.s.code), g.s.reason);
    struct tlskit_engine_stats st;
    peng_free(&g, &st);
    cr_expect_eq(st.health_checks, 1);
    cr_expect_eq(st.handshakes_failed, 0);
}

TK_TEST(proxy, engine_local_then_close_is_a_health_check)
{
    engine_health_check(0);
    engine_health_check(1);

    struct peng g;
    peng_start(&g, NULL, 0);
    unsigned char b[64];
    size_t n = v2(b, 0x20, 0x00, NULL, 0, NULL, 0, 0);
    memcpy(b + n, "GET / HTTP/1.0\r\n\r\n", 18);
    raw_client(g.port, b, n + 18, 1);
    wait_closes(&g.s, 1);
    cr_expect_eq(g.s.local, 1);
    cr_expect_eq(g.s.check, 0, "garbage after LOCAL taken for a health check");
    struct tlskit_engine_stats st;
    peng_free(&g, &st);
    cr_expect_eq(st.health_checks, 0);
    cr_expect_eq(st.handshakes_failed, 1);
}

/* ---- real sockets: the blocking accept path ---- */

struct accept_one {
    tlskit_listener *l;
    int rc, code;
    char peer[128], err[512];
};

static void *accept_one_main(void *arg)
{
    struct accept_one *a = arg;
    tlskit_conn *c = NULL;
    a->rc = tlskit_listener_accept(a->l, &c, 20000);
    if (a->rc != 0) {
        snprintf(a->err, sizeof(a->err), "%s", tlskit_listener_error(a->l));
        return NULL;
    }
    a->rc = tlskit_conn_handshake(c);
    a->code = tlskit_conn_error_code(c);
    snprintf(a->err, sizeof(a->err), "%s", tlskit_conn_error(c));
    snprintf(a->peer, sizeof(a->peer), "%s", tlskit_conn_peer_addr(c));
    if (a->rc == 0) {
        char buf[16];
        ssize_t n = tlskit_conn_read(c, buf, sizeof(buf));
        if (n > 0)
            tlskit_conn_write_all(c, buf, (size_t)n);
        tlskit_conn_shutdown(c);
    }
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    return NULL;
}

static tlskit_listener *plisten(tlskit_config *cfg, const char *from, int64_t timeout_ms)
{
    tlskit_listener *l = tlskit_listener_new(cfg);
    cr_assert_eq(tlskit_listener_set_proxy_protocol(l, 1, timeout_ms), 0);
    if (from)
        cr_assert_eq(tlskit_listener_add_proxy_from(l, from), 0);
    cr_assert_eq(tlskit_listener_listen(l, "127.0.0.1", "0", 0), 0, "%s",
                 tlskit_listener_error(l));
    return l;
}

static void listener_case(const unsigned char *hdr, size_t hlen, enum send_way way,
                          const char *want_peer)
{
    tlskit_config *cfg = tk_server_config("server");
    struct accept_one a = {.l = plisten(cfg, NULL, 0)};
    pthread_t t = tk_thread_start(accept_one_main, &a);
    char local[64];
    int rc = client_exchange(tlskit_listener_port(a.l), hdr, hlen, way, local, sizeof(local));
    tk_thread_join(t);
    cr_expect_eq(rc, 0);
    cr_expect_eq(a.rc, 0, "%s", a.err);
    cr_expect_str_eq(a.peer, want_peer ? want_peer : local);
    tlskit_listener_free(a.l);
    tlskit_config_free(cfg);
}

TK_TEST(proxy, listener_v1_header_and_hello_in_one_write)
{
    const char *h = "PROXY TCP4 203.0.113.7 198.51.100.1 51234 443\r\n";
    listener_case((const unsigned char *)h, strlen(h), ONE_WRITE, "203.0.113.7:51234");
}

TK_TEST(proxy, listener_v2_split_byte_by_byte)
{
    unsigned char b[400];
    addrs_init();
    size_t n = v2(b, 0x21, 0x21, a6, 36, tlvs, sizeof(tlvs) - 1, 1);
    listener_case(b, n, BYTE_SPLIT, "[2001:db8::9]:50000");
}

TK_TEST(proxy, listener_v2_unix_and_local)
{
    unsigned char b[400];
    addrs_init();
    size_t n = v2(b, 0x21, 0x31, au, 216, NULL, 0, 0);
    listener_case(b, n, ONE_WRITE, "unix:/run/client.sock");
    n = v2(b, 0x20, 0x00, NULL, 0, NULL, 0, 1);
    listener_case(b, n, BYTE_SPLIT, NULL);
}

static void listener_refusal(const char *from, int64_t timeout_ms, const void *data,
                             size_t len, int close_wr, int code, const char *why)
{
    tlskit_config *cfg = tk_server_config("server");
    struct accept_one a = {.l = plisten(cfg, from, timeout_ms)};
    pthread_t t = tk_thread_start(accept_one_main, &a);
    raw_client(tlskit_listener_port(a.l), data, len, close_wr);
    tk_thread_join(t);
    cr_expect_eq(a.rc, -1);
    cr_expect_eq(a.code, code, "code %s: %s", tlskit_error_name(a.code), a.err);
    cr_expect(tk_contains(a.err, why), "reason: %s", a.err);
    tlskit_listener_free(a.l);
    tlskit_config_free(cfg);
}

TK_TEST(proxy, listener_refusals)
{
    const char *h = "PROXY TCP4 203.0.113.7 198.51.100.1 51234 443\r\n";
    listener_refusal("::1", 0, h, strlen(h), 0, TLSKIT_E_PROTOCOL,
                     "not a trusted PROXY sender");
    listener_refusal(NULL, 300, NULL, 0, 0, TLSKIT_E_TIMEOUT, "timed out after 0.300 s");
    listener_refusal(NULL, 0, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", 31, 0, TLSKIT_E_PROTOCOL,
                     "without CR");
    listener_refusal(NULL, 0, "\r\n\r\n\0\r\n", 7, 1, TLSKIT_E_CLOSED,
                     "in the middle of the header");
}

/* A prefix that covers the sender lets it in: 127.0.0.1/32 among others. */
TK_TEST(proxy, listener_trusted_prefix_list)
{
    tlskit_config *cfg = tk_server_config("server");
    tlskit_listener *l = tlskit_listener_new(cfg);
    cr_assert_eq(tlskit_listener_set_proxy_protocol(l, 1, 0), 0);
    cr_assert_eq(tlskit_listener_add_proxy_from(l, "10.0.0.0/8"), 0);
    cr_assert_eq(tlskit_listener_add_proxy_from(l, "127.0.0.1/32"), 0);
    cr_assert_eq(tlskit_listener_listen(l, "127.0.0.1", "0", 0), 0);
    struct accept_one a = {.l = l};
    pthread_t t = tk_thread_start(accept_one_main, &a);
    const char *h = "PROXY TCP4 203.0.113.8 198.51.100.1 1 443\r\n";
    char local[64];
    int rc = client_exchange(tlskit_listener_port(l), (const unsigned char *)h, strlen(h),
                             ONE_WRITE, local, sizeof(local));
    tk_thread_join(t);
    cr_expect_eq(rc, 0);
    cr_expect_str_eq(a.peer, "203.0.113.8:1", "%s", a.err);
    tlskit_listener_free(l);
    tlskit_config_free(cfg);
}

/* ---- HAProxy (Debian's) as the real sender in front of tlsserver --proxy-protocol ---- */

#define HAPROXY_BIN "/usr/sbin/haproxy"

/* A port free now on addr (probed: HAProxy cannot tell which port 0 gave it). */
static int free_port(const char *addr)
{
    int port;
    int fd = tk_tcp_bound(addr, 0, &port);
    close(fd);
    return port;
}

static int can_connect(const char *addr, int port)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, addr, &s6->sin6_addr);
        sl = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, addr, &s4->sin_addr);
        sl = sizeof(*s4);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ok = connect(fd, (struct sockaddr *)&ss, sl) == 0;
    close(fd);
    return ok;
}

struct hap {
    struct tk_proc p;
    char dir[256], cfg[300];
    int port4, port6;
};

/* HAProxy in mode tcp on 127.0.0.1 and ::1, one server: tlsserver at port, reached from
 * 127.0.0.3 so that the PROXY sender's own address differs from every client's. */
static void hap_start(struct hap *h, int port, const char *server_opts)
{
    memset(h, 0, sizeof(*h));
    tk_tmpdir(h->dir, sizeof(h->dir));
    snprintf(h->cfg, sizeof(h->cfg), "%s/haproxy.cfg", h->dir);
    h->port4 = free_port("127.0.0.1");
    h->port6 = free_port("::1");
    char conf[1024];
    int n = snprintf(conf, sizeof(conf),
                     "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n"
                     "  timeout server 30s\n"
                     "frontend fe\n  bind 127.0.0.1:%d\n  bind [::1]:%d\n  default_backend be\n"
                     "backend be\n  server s1 127.0.0.1:%d source 127.0.0.3 %s\n",
                     h->port4, h->port6, port, server_opts);
    tk_write_file(h->cfg, conf, (size_t)n);
    const char *argv[] = {HAPROXY_BIN, "-db", "-f", h->cfg, NULL};
    tk_proc_start(&h->p, argv);
    int64_t end = tk_now_ms() + 20000;
    while (!(can_connect("127.0.0.1", h->port4) && can_connect("::1", h->port6)) &&
           tk_now_ms() < end && kill(h->p.pid, 0) == 0)
        poll(NULL, 0, 20);
    cr_assert(can_connect("127.0.0.1", h->port4), "haproxy did not start: %s",
              tk_str(h->p.errbuf));
}

static void hap_stop(struct hap *h)
{
    kill(h->p.pid, SIGTERM);
    tk_proc_wait(&h->p, 20000);
    tk_proc_free(&h->p);
    tk_rmtree(h->dir);
}

/* tk_server_stop() without freeing: the log is read after the exit. */
static void server_stop_keep(struct tk_server *s)
{
    kill(s->p.pid, SIGTERM);
    cr_assert_eq(tk_proc_wait(&s->p, 30000), 0, "%s", tk_str(s->p.errbuf));
}

/* tlsserver, both models: a LOCAL header then a close is counted in health_checks (the
 * counters line at exit) and, without -v, not logged. */
TK_TEST(proxy, tlsserver_counts_health_checks_in_both_models)
{
    const char *models[] = {"event", "thread"};
    for (size_t i = 0; i < 2; i++) {
        struct tk_server s;
        const char *extra[] = {"--proxy-protocol", "--model", models[i], NULL};
        tk_server_start(&s, "server", "127.0.0.1", extra);
        unsigned char b[64];
        size_t n = v2(b, 0x20, 0x00, NULL, 0, NULL, 0, 0);
        raw_client(s.port, b, n, 1);
        server_stop_keep(&s);
        cr_expect(tk_matches(s.p.errbuf, "health_checks=1 "), "--model %s: %s", models[i],
                  s.p.errbuf);
        cr_expect(!tk_contains(s.p.errbuf, "health-check"), "--model %s: %s", models[i],
                  s.p.errbuf);
        tk_proc_free(&s.p);
    }
}

/* tlsclient through HAProxy: "ping" back? */
static int ping_via(const char *host, int port, int expect_ok)
{
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    struct tk_proc p;
    const char *argv[] = {tk_client_bin(), "-q", "--ca", tk_cert("ca.crt"), "--servername",
                          "localhost", "--timeout", "10", host, ps, NULL};
    int rc = tk_run(&p, argv, "ping", 4, 30000);
    int ok = rc == 0 && p.outbuf && strcmp(p.outbuf, "ping") == 0;
    if (!ok && expect_ok)
        cr_log_warn("tlsclient via %s %s: exit %d: %s", host, ps, rc, tk_str(p.errbuf));
    tk_proc_free(&p);
    return ok;
}

static void haproxy_case(const char *model, const char *server_opts)
{
    if (access(HAPROXY_BIN, X_OK) != 0)
        cr_skip_test("haproxy is not installed (scripts/setup.sh installs it)");
    struct tk_server s;
    const char *extra[] = {"--proxy-protocol", "--model", model, NULL};
    tk_server_start(&s, "server", "127.0.0.1", extra);
    struct hap h;
    hap_start(&h, s.port, server_opts);
    cr_expect(ping_via("127.0.0.1", h.port4, 1));
    cr_expect(tk_proc_wait_for(&s.p, 2, "conn 127.0.0.1:", 20000), "%s", tk_str(s.p.errbuf));
    cr_expect(ping_via("::1", h.port6, 1));
    cr_expect(tk_proc_wait_for(&s.p, 2, "conn [::1]:", 20000), "%s", tk_str(s.p.errbuf));
    hap_stop(&h);
    server_stop_keep(&s);
    /* Each client as itself, never as the proxy's 127.0.0.3; both exchanges clean. */
    cr_expect(!tk_contains(s.p.errbuf, "127.0.0.3"), "%s", s.p.errbuf);
    cr_expect(tk_matches(s.p.errbuf, "conn 127\\.0\\.0\\.1:[0-9]+ proto=TLSv1\\.3 .* ok"), "%s",
              s.p.errbuf);
    cr_expect(tk_matches(s.p.errbuf, "conn \\[::1\\]:[0-9]+ proto=TLSv1\\.3 .* ok"), "%s",
              s.p.errbuf);
    tk_proc_free(&s.p);
}

TK_TEST(proxy, haproxy_send_proxy_v1)
{
    haproxy_case("event", "send-proxy");
}

TK_TEST(proxy, haproxy_send_proxy_v2_crc32c)
{
    haproxy_case("event", "send-proxy-v2 proxy-v2-options crc32c,unique-id");
}

TK_TEST(proxy, haproxy_send_proxy_v2_thread_model)
{
    haproxy_case("thread", "send-proxy-v2 proxy-v2-options crc32c");
}

/* HAProxy's health checks with send-proxy-v2 say LOCAL: accepted, the peer is the
 * checker itself; and a sender outside --proxy-from is refused and logged. */
TK_TEST(proxy, haproxy_checks_local_and_untrusted)
{
    if (access(HAPROXY_BIN, X_OK) != 0)
        cr_skip_test("haproxy is not installed (scripts/setup.sh installs it)");
    struct tk_server s;
    /* -v: health checks are logged (as "health-check" lines) only then. */
    const char *extra[] = {"--proxy-protocol", "-v", NULL};
    tk_server_start(&s, "server", "127.0.0.1", extra);
    struct hap h;
    hap_start(&h, s.port, "send-proxy-v2 check inter 100ms check-send-proxy");
    cr_expect(tk_proc_wait_for_n(&s.p, 2, "health-check 127.0.0.3:", 3, 20000), "%s",
              tk_str(s.p.errbuf));
    cr_expect(ping_via("127.0.0.1", h.port4, 1));
    hap_stop(&h);
    server_stop_keep(&s);
    cr_expect(!tk_contains(s.p.errbuf, "PROXY header from"), "%s", s.p.errbuf);
    cr_expect(tk_matches(s.p.errbuf, "conn 127\\.0\\.0\\.1:[0-9]+ proto=TLSv1\\.3 .* ok"), "%s",
              s.p.errbuf);
    cr_expect(!tk_matches(s.p.errbuf, "127\\.0\\.0\\.3:[0-9]+ .*error="),
              "a health check logged as an error: %s", s.p.errbuf);
    /* (handshakes_failed counts the readiness probes of hap_start(): plain closes.) */
    cr_expect(tk_matches(s.p.errbuf, "health_checks=[1-9]"), "%s", s.p.errbuf);
    tk_proc_free(&s.p);

    /* Without -v, not a line for them (only the client's). */
    const char *quiet[] = {"--proxy-protocol", NULL};
    tk_server_start(&s, "server", "127.0.0.1", quiet);
    hap_start(&h, s.port, "send-proxy-v2 check inter 100ms check-send-proxy");
    cr_expect(ping_via("127.0.0.1", h.port4, 1));
    cr_expect(tk_proc_wait_for(&s.p, 2, "conn 127.0.0.1:", 20000), "%s", tk_str(s.p.errbuf));
    hap_stop(&h);
    server_stop_keep(&s);
    cr_expect(!tk_contains(s.p.errbuf, "127.0.0.3:"), "%s", s.p.errbuf);
    cr_expect(tk_matches(s.p.errbuf, "health_checks=[1-9]"), "%s", s.p.errbuf);
    tk_proc_free(&s.p);

    const char *untrusting[] = {"--proxy-protocol", "--proxy-from", "10.0.0.0/8",
                                "--proxy-from", "::1", NULL};
    tk_server_start(&s, "server", "127.0.0.1", untrusting);
    hap_start(&h, s.port, "send-proxy-v2");
    cr_expect(!ping_via("127.0.0.1", h.port4, 0));
    cr_expect(tk_proc_wait_for(&s.p, 2, "not a trusted PROXY sender", 20000), "%s",
              tk_str(s.p.errbuf));
    hap_stop(&h);
    server_stop_keep(&s);
    cr_expect(tk_contains(s.p.errbuf, "conn 127.0.0.3:"), "%s", s.p.errbuf);
    cr_expect(tk_contains(s.p.errbuf, "error=TLSKIT_E_PROTOCOL: PROXY header from 127.0.0.3:"),
              "%s", s.p.errbuf);
    tk_proc_free(&s.p);
}

/* HAProxy's header itself, read by a plain socket: the client's own address and port
 * (so the TLS tests above did not pass by accident), and the CRC32C TLV asked for. The
 * readiness probes of hap_start() also arrive here; they are skipped. */
static void haproxy_raw(const char *opts, int version, int want_crc)
{
    if (access(HAPROXY_BIN, X_OK) != 0)
        cr_skip_test("haproxy is not installed (scripts/setup.sh installs it)");
    int port;
    int lfd = tk_tcp_bound("127.0.0.1", 64, &port);
    struct hap h;
    hap_start(&h, port, opts);
    int cfd = tk_tcp_connect("127.0.0.1", h.port4);
    struct sockaddr_in me;
    socklen_t ml = sizeof(me);
    getsockname(cfd, (struct sockaddr *)&me, &ml);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%u", ntohs(me.sin_port));
    int found = 0;
    for (int tries = 0; tries < 16 && !found; tries++) {
        struct pollfd pl = {.fd = lfd, .events = POLLIN};
        cr_assert_gt(poll(&pl, 1, 20000), 0, "HAProxy never connected");
        int fd = accept(lfd, NULL, NULL);
        cr_assert_geq(fd, 0);
        unsigned char buf[TLSKIT_PROXY_MAX_HEADER];
        size_t have = 0;
        ssize_t r = 0;
        struct tlskit_proxy_header hd;
        char why[256] = "";
        while (r == 0 && have < sizeof(buf)) {
            struct pollfd pf = {.fd = fd, .events = POLLIN};
            if (poll(&pf, 1, 20000) <= 0)
                break;
            ssize_t n = read(fd, buf + have, sizeof(buf) - have);
            if (n <= 0)
                break;
            have += (size_t)n;
            r = tlskit_proxy_header_parse(buf, have, 0, &hd, why, sizeof(why));
        }
        close(fd);
        cr_assert_gt(r, 0, "no valid header from HAProxy (%zu bytes): %s", have, why);
        cr_expect_eq(hd.version, version);
        if (strcmp(hd.src, want) != 0)
            continue; /* a readiness probe's connection */
        found = 1;
        cr_expect_eq(hd.command, TLSKIT_PROXY_CMD_PROXY);
        cr_expect_eq(hd.family, TLSKIT_PROXY_AF_INET);
        char dst[64];
        snprintf(dst, sizeof(dst), "127.0.0.1:%d", h.port4);
        cr_expect_str_eq(hd.dst, dst);
        cr_expect_eq(hd.crc32c, want_crc);
    }
    cr_expect(found, "no header named the client %s", want);
    close(cfd);
    hap_stop(&h);
    close(lfd);
}

TK_TEST(proxy, haproxy_raw_v1_header)
{
    haproxy_raw("send-proxy", 1, 0);
}

TK_TEST(proxy, haproxy_raw_v2_header_with_crc32c)
{
    haproxy_raw("send-proxy-v2 proxy-v2-options crc32c,unique-id", 2, 1);
}
