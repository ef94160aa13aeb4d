/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the PROXY protocol header parser, tlskit_proxy_header_parse()
 * (lib/src/proxy.c), which reads what a load balancer (or anyone who may connect) sends
 * before TLS, and the --proxy-from prefix parser, tlskit_proxy_from_check().
 *
 * Input: [limit] bytes. limit 0 is the default limit; else 107 + 16 * limit.
 * Invariants:
 *   - the result is -1 (with a reason), 0, or a length within the input and the limit;
 *   - a prefix parser: on a prefix of the input the verdict is "need more" or the same
 *     verdict (a failure stays a failure, an accepted header the same header); bytes
 *     after an accepted header change nothing;
 *   - an accepted v1 TCP header, written again canonically from the fields, parses to
 *     the same fields; a v1 header ends in CRLF within 107 bytes;
 *   - "need more" only below the limit;
 *   - tlskit_proxy_from_check() on the text accepts or refuses with a reason, the same
 *     verdict twice.
 */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V1_MAX 107

static ssize_t parse(const uint8_t *d, size_t n, size_t max, struct tlskit_proxy_header *h,
                     char *why, size_t why_len)
{
    /* A private copy: the parser must not read past n (ASan sees the heap bound). */
    uint8_t *copy = malloc(n ? n : 1);
    FZ_CHECK(copy != NULL, "malloc");
    if (n)
        memcpy(copy, d, n);
    ssize_t r = tlskit_proxy_header_parse(copy, n, max, h, why, why_len);
    free(copy);
    return r;
}

static void same_header(const struct tlskit_proxy_header *a,
                        const struct tlskit_proxy_header *b, const char *what)
{
    FZ_CHECK(a->version == b->version && a->command == b->command &&
                 a->family == b->family && a->transport == b->transport &&
                 strcmp(a->src, b->src) == 0 && strcmp(a->dst, b->dst) == 0 &&
                 a->tlv_len == b->tlv_len && a->crc32c == b->crc32c && a->length == b->length,
             "%s: fields differ (%s %s / %s %s)", what, a->src, a->dst, b->src, b->dst);
}

/* "1.2.3.4:5" / "[::1]:5" -> host and port text. */
static void split(const char *a, char *host, size_t hl, char *port, size_t pl)
{
    const char *colon = strrchr(a, ':');
    FZ_CHECK(colon != NULL, "address without port: %s", a);
    const char *h = a;
    size_t n = (size_t)(colon - a);
    if (a[0] == '[') {
        h = a + 1;
        n -= 2;
    }
    snprintf(host, hl, "%.*s", (int)n, h);
    snprintf(port, pl, "%s", colon + 1);
}

/* An accepted v1 TCP header, written again from its fields, gives the same fields. */
static void v1_round_trip(const struct tlskit_proxy_header *h, size_t max)
{
    char sh[64], sp[8], dh[64], dp[8], line[160];
    split(h->src, sh, sizeof(sh), sp, sizeof(sp));
    split(h->dst, dh, sizeof(dh), dp, sizeof(dp));
    int n = snprintf(line, sizeof(line), "PROXY TCP%c %s %s %s %s\r\n",
                     h->family == TLSKIT_PROXY_AF_INET ? '4' : '6', sh, dh, sp, dp);
    FZ_CHECK(n > 0 && n <= V1_MAX, "canonical line of %d bytes", n);
    struct tlskit_proxy_header again;
    char why[256];
    ssize_t r = parse((const uint8_t *)line, (size_t)n, max, &again, why, sizeof(why));
    FZ_CHECK(r == n, "canonical line refused: %s: %s", line, why);
    again.length = h->length;
    same_header(h, &again, "v1 round trip");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max = data[0] ? V1_MAX + 16u * data[0] : 0;
    size_t eff = max == 0 || max > TLSKIT_PROXY_MAX_HEADER ? TLSKIT_PROXY_MAX_HEADER : max;
    data++;
    size--;

    struct tlskit_proxy_header h, h2;
    char why[256], why2[256];
    ssize_t r = parse(data, size, max, &h, why, sizeof(why));
    FZ_CHECK(r >= -1 && r <= (ssize_t)size, "result %zd for %zu bytes", r, size);
    if (r < 0)
        FZ_CHECK(why[0] != '\0', "a refusal without a reason");
    if (r == 0)
        FZ_CHECK(size < eff, "need more after %zu bytes (limit %zu)", size, eff);
    if (r > 0) {
        FZ_CHECK((size_t)r == h.length, "length %zu, returned %zd", h.length, r);
        FZ_CHECK(h.version == 1 || h.version == 2, "version %d", h.version);
        if (h.version == 1) {
            FZ_CHECK(r <= V1_MAX && data[r - 2] == '\r' && data[r - 1] == '\n',
                     "v1 header of %zd bytes not ending in CRLF", r);
            if (h.family != TLSKIT_PROXY_AF_UNSPEC)
                v1_round_trip(&h, max);
        } else {
            FZ_CHECK((size_t)r <= eff, "v2 header of %zd bytes over the limit %zu", r, eff);
        }
        /* The header alone: the same. */
        FZ_CHECK(parse(data, (size_t)r, max, &h2, why2, sizeof(why2)) == r, "alone: %s", why2);
        same_header(&h, &h2, "the header alone");
    }
    /* Prefixes: "need more", or the same verdict. All of them for short inputs. */
    size_t step = size <= 300 ? 1 : size / 97 + 1;
    for (size_t k = 0; k < size; k += step) {
        ssize_t p = parse(data, k, max, &h2, why2, sizeof(why2));
        if (p == 0)
            continue;
        FZ_CHECK(p == r || (p > 0 && r == p), "prefix of %zu bytes: %zd, whole: %zd (%s)", k,
                 p, r, why2);
        if (p > 0)
            same_header(&h, &h2, "a prefix");
    }

    /* The same bytes as a --proxy-from prefix (text up to the first NUL). */
    char *text = fz_text(data, size);
    int v1 = tlskit_proxy_from_check(text, why, sizeof(why));
    int v2 = tlskit_proxy_from_check(text, why2, sizeof(why2));
    FZ_CHECK(v1 == v2 && (v1 == 0 || v1 == -1), "proxy_from verdicts %d, %d", v1, v2);
    FZ_CHECK(v1 == 0 || why[0] != '\0', "proxy_from refusal without a reason");
    free(text);
    return 0;
}
