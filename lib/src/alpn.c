/* SPDX-License-Identifier: MIT */
/* ALPN (RFC 7301): the comma-separated list of the API into the wire format (each name
 * preceded by its length), offered by a client and chosen from by a server in its own
 * order of preference. */
#include "internal.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALPN_NAME_MAX 255  /* a length byte (RFC 7301 3.1) */
#define ALPN_LIST_MAX 65535 /* the extension's two-byte length */

static int fail(char *why, size_t why_len, const char *fmt, ...) TK_PRINTF(3, 4);
static int fail(char *why, size_t why_len, const char *fmt, ...)
{
    if (why && why_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Parse list into out (may be NULL to only check; room for strlen(list) + 1 bytes).
 * The wire length, or -1 with the reason in why. */
static long alpn_parse(const char *list, unsigned char *out, char *why, size_t why_len)
{
    size_t len = strlen(list), used = 0;
    if (len == 0)
        return fail(why, why_len, "the list is empty");
    if (len + 1 > ALPN_LIST_MAX)
        return fail(why, why_len, "the list is longer than %d bytes", ALPN_LIST_MAX - 1);
    for (size_t start = 0; start <= len;) {
        size_t n = strcspn(list + start, ",");
        if (n == 0)
            return fail(why, why_len, "empty protocol name at position %zu", start + 1);
        if (n > ALPN_NAME_MAX)
            return fail(why, why_len, "protocol name at position %zu is %zu bytes (at most %d)",
                        start + 1, n, ALPN_NAME_MAX);
        for (size_t i = start; i < start + n; i++) {
            unsigned char ch = (unsigned char)list[i];
            if (ch <= 0x20 || ch >= 0x7f)
                return fail(why, why_len, "byte 0x%02x at position %zu: protocol names are "
                            "printable ASCII without spaces", ch, i + 1);
        }
        /* A name offered twice is a mistake in the list, never a preference. */
        for (size_t p = 0; p < start;) {
            size_t m = strcspn(list + p, ",");
            if (m == n && memcmp(list + p, list + start, n) == 0)
                return fail(why, why_len, "protocol \"%.*s%s\" is listed twice",
                            n > 40 ? 40 : (int)n, list + start, n > 40 ? "..." : "");
            p += m + 1;
        }
        if (out) {
            out[used] = (unsigned char)n;
            memcpy(out + used + 1, list + start, n);
        }
        used += n + 1;
        start += n + 1;
    }
    return (long)used;
}

int tlskit_alpn_check(const char *list, char *why, size_t why_len)
{
    if (why && why_len > 0)
        why[0] = '\0';
    if (!list)
        return fail(why, why_len, "no list");
    return alpn_parse(list, NULL, why, why_len) < 0 ? -1 : 0;
}

/* Server: the first of our names the client offers (RFC 7301 3.2: none in common is a
 * fatal no_application_protocol alert, which OpenSSL sends for ALERT_FATAL). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    const tlskit_config *cfg = arg;
    (void)ssl;
    for (size_t i = 0; i < cfg->alpn_len; i += 1 + (size_t)cfg->alpn[i]) {
        const unsigned char *ours = cfg->alpn + i;
        for (unsigned int j = 0; j < inlen; j += 1u + in[j]) {
            if (j + 1u + in[j] > inlen)
                break; /* OpenSSL checked the framing; never read past it anyway */
            if (in[j] == ours[0] && memcmp(in + j + 1, ours + 1, ours[0]) == 0) {
                *out = ours + 1;
                *outlen = ours[0];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

int tlskit_config_set_alpn(tlskit_config *cfg, const char *list)
{
    char why[160];
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    unsigned char *wire = NULL;
    long len = 0;
    if (list && *list) {
        if (!(wire = malloc(strlen(list) + 1))) {
            tlskit__err_set(&cfg->err, TLSKIT_E_NOMEM, "ALPN list: out of memory");
            return -1;
        }
        if ((len = alpn_parse(list, wire, why, sizeof(why))) < 0) {
            free(wire);
            /* At most 40 bytes of the list: the reason must fit in the message. */
            tlskit__err_set(&cfg->err, TLSKIT_E_INVALID, "ALPN list \"%.40s%s\": %s", list,
                            strlen(list) > 40 ? "..." : "", why);
            return -1;
        }
    }
    /* The client side offers from the SSL_CTX; 0 is success here (OpenSSL's own rule). */
    ERR_clear_error();
    if (SSL_CTX_set_alpn_protos(cfg->ctx, wire, (unsigned int)len) != 0) {
        free(wire);
        tlskit__err_set_ssl(&cfg->err, TLSKIT_E_NOMEM, "out of memory", "ALPN list");
        return -1;
    }
    free(cfg->alpn);
    cfg->alpn = wire;
    cfg->alpn_len = (size_t)len;
    SSL_CTX_set_alpn_select_cb(cfg->ctx, wire ? alpn_select : NULL, wire ? cfg : NULL);
    return 0;
}
