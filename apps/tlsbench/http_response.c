/* SPDX-License-Identifier: MIT */
#include "http_response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void http_response_reset(struct http_response *r)
{
    r->in_body = r->until_close = r->server_close = 0;
    r->body_left = 0;
    r->hlen = 0;
}

/* One header line (at line, up to the next CRLF): sets the framing. 0, or -1 with the
 * reason in err. */
static int parse_header(struct http_response *r, const char *line, int *have_len,
                        int *keepalive, char *err, size_t errlen)
{
    if (strncasecmp(line, "content-length:", 15) == 0) {
        r->body_left = strtoull(line + 15, NULL, 10);
        *have_len = 1;
    } else if (strncasecmp(line, "connection:", 11) == 0) {
        const char *eol = strstr(line, "\r\n");
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        char val[64];
        snprintf(val, sizeof(val), "%.*s", (int)(n < 63 ? n : 63), line + 11);
        if (strcasestr(val, "close"))
            r->server_close = 1;
        if (strcasestr(val, "keep-alive"))
            *keepalive = 1;
    } else if (strncasecmp(line, "transfer-encoding:", 18) == 0) {
        snprintf(err, errlen, "response: chunked transfer coding is not supported");
        return -1;
    }
    return 0;
}

/* Parse the head in r->hdr[0..end). 0, or -1 with the reason in err. */
static int parse_head(struct http_response *r, size_t end, char *err, size_t errlen)
{
    char *h = r->hdr;
    h[end - 2] = '\0';
    if (strncmp(h, "HTTP/1.", 7) != 0 || !h[7] || h[8] != ' ') {
        snprintf(err, errlen, "response: not HTTP/1.x");
        return -1;
    }
    int code = atoi(h + 9);
    if (code != 200) {
        char *eol = strstr(h, "\r\n");
        if (eol)
            *eol = '\0';
        snprintf(err, errlen, "response: \"%.80s\"", h);
        return -1;
    }
    int http10 = h[7] == '0';
    int have_len = 0, keepalive = 0;
    for (char *line = strstr(h, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (parse_header(r, line, &have_len, &keepalive, err, errlen) != 0)
            return -1;
    }
    if (http10 && !keepalive)
        r->server_close = 1;
    if (!have_len) {
        r->until_close = 1;
        r->server_close = 1;
    }
    r->in_body = 1;
    return 0;
}

/* n body bytes arrived: -1 when they overrun Content-Length. */
static int take_body(struct http_response *r, size_t n, uint64_t *body, char *err,
                     size_t errlen)
{
    if (!r->until_close && n > r->body_left) {
        snprintf(err, errlen, "response: more data than Content-Length");
        return -1;
    }
    *body += n;
    if (!r->until_close)
        r->body_left -= n;
    return 0;
}

/* Buffer head bytes; once the blank line is in, parse the head and count the body
 * bytes that came with it. Returns how many of d[0..n) it took, or -1. */
static long take_head(struct http_response *r, const unsigned char *d, size_t n,
                      uint64_t *body, char *err, size_t errlen)
{
    size_t room = sizeof(r->hdr) - 1 - r->hlen;
    size_t take = n < room ? n : room;
    size_t from = r->hlen > 3 ? r->hlen - 3 : 0; /* the blank line may span two reads */
    memcpy(r->hdr + r->hlen, d, take);
    r->hlen += take;
    r->hdr[r->hlen] = '\0';
    char *e = strstr(r->hdr + from, "\r\n\r\n");
    if (!e) {
        if (r->hlen == sizeof(r->hdr) - 1) {
            snprintf(err, errlen, "response: header larger than %d bytes",
                     HTTP_RESPONSE_HEAD_MAX);
            return -1;
        }
        return (long)take;
    }
    size_t end = (size_t)(e - r->hdr) + 4;
    size_t extra = r->hlen - end; /* body bytes that came with the head */
    if (parse_head(r, end, err, errlen) != 0)
        return -1;
    if (extra > 0 && take_body(r, extra, body, err, errlen) != 0)
        return -1;
    return (long)take;
}

int http_response_feed(struct http_response *r, const unsigned char *d, size_t n,
                       uint64_t *body, char *err, size_t errlen)
{
    *body = 0;
    while (n > 0) {
        if (r->in_body) {
            if (take_body(r, n, body, err, errlen) != 0)
                return -1;
            break;
        }
        long took = take_head(r, d, n, body, err, errlen);
        if (took < 0)
            return -1;
        d += took;
        n -= (size_t)took;
    }
    return r->in_body && !r->until_close && r->body_left == 0;
}
