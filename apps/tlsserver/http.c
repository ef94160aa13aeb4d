/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 request parsing for `tlsserver --mode http` (RFC 9110 / 9112 subset). */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SERVER_HDR "Server: tlsserver\r\n"

static char *build_ok(size_t body_size, const char *connection, size_t *total,
                      size_t *head_len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\n" SERVER_HDR "Content-Type: text/plain\r\n"
                     "Content-Length: %zu\r\nConnection: %s\r\n\r\n",
                     body_size, connection);
    if (n < 0 || (size_t)n >= sizeof(head))
        return NULL;
    char *buf = malloc((size_t)n + body_size);
    if (!buf)
        return NULL;
    memcpy(buf, head, (size_t)n);
    for (size_t i = 0; i < body_size; i++) /* printable, line-broken body */
        buf[(size_t)n + i] = (i % 64 == 63) ? '\n' : (char)('a' + i % 26);
    *head_len = (size_t)n;
    *total = (size_t)n + body_size;
    return buf;
}

int http_site_init(struct http_site *site, size_t body_size)
{
    memset(site, 0, sizeof(*site));
    site->ok_get = build_ok(body_size, "keep-alive", &site->ok_get_len, &site->ok_head_len);
    site->ok_get_close =
        build_ok(body_size, "close", &site->ok_get_close_len, &site->ok_head_close_len);
    if (!site->ok_get || !site->ok_get_close) {
        http_site_free(site);
        return -1;
    }
    return 0;
}

void http_site_free(struct http_site *site)
{
    free(site->ok_get);
    free(site->ok_get_close);
    memset(site, 0, sizeof(*site));
}

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int send_error(http_write_fn write, void *ctx, int status, const char *reason,
                      int keep_alive, const char *extra)
{
    char buf[512];
    char body[96];
    int bl = snprintf(body, sizeof(body), "%d %s\n", status, reason);
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s\r\n" SERVER_HDR "Content-Type: text/plain\r\n"
                     "Content-Length: %d\r\n%sConnection: %s\r\n\r\n%s",
                     status, reason, bl, extra ? extra : "", keep_alive ? "keep-alive" : "close",
                     body);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return -1;
    return write(ctx, buf, (size_t)n) == 0 ? 0 : -1;
}

/* Does the comma-separated header value contain token (case-insensitive)? */
static int has_token(const char *v, size_t len, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end - start == tl && !strncasecmp(v + start, token, tl))
            return 1;
    }
    return 0;
}

struct request {
    int method; /* 0 other, 1 GET, 2 HEAD */
    int http11;
    int keep_alive;
    int has_host;
    int chunked;
    long long content_length;
};

/* The line at p: where its content ends (before CRLF or a bare LF), and in *next where
 * the next line starts. RFC 9112 section 2.2 lets a recipient take a bare LF as a line
 * end, as nginx does; a bare CR elsewhere stays invalid (every field check refuses it).
 * NULL when no LF is left. */
static const char *line_end(const char *p, const char *end, const char **next)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf)
        return NULL;
    *next = lf + 1;
    return lf > p && lf[-1] == '\r' ? lf - 1 : lf;
}

/* Parse head[0..len) (ends with an empty line). 0 ok, else an HTTP status for the
 * error. */
static int parse(const char *head, size_t len, struct request *rq)
{
    memset(rq, 0, sizeof(*rq));
    rq->content_length = -1;
    const char *p = head, *end = head + len, *next;
    const char *eol = line_end(p, end, &next);
    if (!eol)
        return 400;
    /* request-line = method SP request-target SP HTTP-version */
    const char *m = p;
    while (p < eol && is_tchar((unsigned char)*p))
        p++;
    if (p == m || p >= eol || *p != ' ')
        return 400;
    size_t mlen = (size_t)(p - m);
    if (mlen == 3 && !memcmp(m, "GET", 3))
        rq->method = 1;
    else if (mlen == 4 && !memcmp(m, "HEAD", 4))
        rq->method = 2;
    p++;
    const char *t = p;
    while (p < eol && (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f)
        p++;
    if (p == t || p >= eol || *p != ' ')
        return 400;
    p++;
    if (eol - p != 8 || memcmp(p, "HTTP/1.", 7) != 0)
        return 400;
    if (p[7] == '1')
        rq->http11 = 1;
    else if (p[7] != '0')
        return 400;
    int conn_close = 0, conn_keep = 0;
    p = next;
    while (p < end) {
        eol = line_end(p, end, &next);
        if (!eol)
            return 400;
        if (eol == p)
            break; /* the empty line */
        const char *name = p;
        while (p < eol && is_tchar((unsigned char)*p))
            p++;
        if (p == name || p >= eol || *p != ':')
            return 400; /* includes whitespace before the colon (RFC 9112 5.1) */
        size_t nlen = (size_t)(p - name);
        p++;
        while (p < eol && (*p == ' ' || *p == '\t'))
            p++;
        const char *v = p;
        for (const char *q = v; q < eol; q++)
            if (((unsigned char)*q < 0x20 && *q != '\t') || (unsigned char)*q == 0x7f)
                return 400;
        size_t vlen = (size_t)(eol - v);
        while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        if (nlen == 4 && !strncasecmp(name, "Host", 4)) {
            if (rq->has_host)
                return 400; /* RFC 9112 3.2: more than one Host */
            rq->has_host = 1;
        } else if (nlen == 14 && !strncasecmp(name, "Content-Length", 14)) {
            if (vlen == 0 || vlen > 12)
                return 400;
            long long cl = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return 400;
                cl = cl * 10 + (v[i] - '0');
            }
            if (rq->content_length >= 0 && rq->content_length != cl)
                return 400;
            rq->content_length = cl;
        } else if (nlen == 17 && !strncasecmp(name, "Transfer-Encoding", 17)) {
            rq->chunked = 1;
        } else if (nlen == 10 && !strncasecmp(name, "Connection", 10)) {
            conn_close |= has_token(v, vlen, "close");
            conn_keep |= has_token(v, vlen, "keep-alive");
        }
        p = next;
    }
    if (rq->http11 && !rq->has_host)
        return 400;
    if (rq->chunked)
        return 501; /* request bodies are not expected here; do not guess their framing */
    rq->keep_alive = rq->http11 ? !conn_close : (conn_keep && !conn_close);
    return 0;
}

/* Just past the empty line that ends the head: a line end (LF, after an optional CR)
 * followed by CRLF or a bare LF. */
static const char *find_head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n')
            return buf + i + 2;
        if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
            return buf + i + 3;
    }
    return NULL;
}

static void consume(struct http_state *st, size_t n)
{
    memmove(st->head, st->head + n, st->len - n);
    st->len -= n;
}

/* Answer every complete request in the buffer. */
static int process(struct http_state *st, const struct http_site *site, http_write_fn write,
                   void *ctx)
{
    for (;;) {
        if (st->skip && st->len) {
            size_t n = st->skip < st->len ? st->skip : st->len;
            consume(st, n);
            st->skip -= n;
        }
        if (st->skip || st->len == 0)
            return 0;
        const char *end = find_head_end(st->head, st->len);
        if (!end) {
            if (st->len == sizeof(st->head)) {
                st->closed = 1;
                return send_error(write, ctx, 431, "Request Header Fields Too Large", 0,
                                  NULL) == 0 ? 1 : -1;
            }
            return 0;
        }
        size_t hlen = (size_t)(end - st->head);
        struct request rq;
        int status = parse(st->head, hlen, &rq);
        st->requests++;
        if (status) {
            st->closed = 1;
            return send_error(write, ctx, status,
                              status == 501 ? "Not Implemented" : "Bad Request", 0, NULL) == 0
                       ? 1
                       : -1;
        }
        consume(st, hlen);
        if (rq.content_length > 0)
            st->skip = (size_t)rq.content_length;
        int rc;
        if (rq.method == 0)
            rc = send_error(write, ctx, 405, "Method Not Allowed", rq.keep_alive,
                            "Allow: GET, HEAD\r\n");
        else if (rq.keep_alive)
            rc = write(ctx, site->ok_get, rq.method == 1 ? site->ok_get_len : site->ok_head_len);
        else
            rc = write(ctx, site->ok_get_close,
                       rq.method == 1 ? site->ok_get_close_len : site->ok_head_close_len);
        if (rc != 0)
            return -1;
        if (!rq.keep_alive) {
            st->closed = 1;
            return 1;
        }
    }
}

int http_feed(struct http_state *st, const struct http_site *site, const char *data,
              size_t len, http_write_fn write, void *ctx)
{
    if (st->closed)
        return 1;
    for (;;) {
        int r = process(st, site, write, ctx);
        if (r != 0)
            return r;
        if (len == 0)
            return 0;
        if (st->skip && st->len == 0) { /* discard a body without copying it */
            size_t n = st->skip < len ? st->skip : len;
            st->skip -= n;
            data += n;
            len -= n;
            continue;
        }
        size_t room = sizeof(st->head) - st->len;
        size_t n = room < len ? room : len;
        memcpy(st->head + st->len, data, n);
        st->len += n;
        data += n;
        len -= n;
    }
}
