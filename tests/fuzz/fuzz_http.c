/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the HTTP/1.1 request parser of `tlsserver --mode http`
 * (apps/tlsserver/http.c, http_feed()).
 *
 * Input: 3 header bytes, then the bytes a client sends.
 *   [0] bits 0-2 response body size (table below); bits 3-7 K: when non-zero the K-th
 *       write fails (the -1 path)
 *   [1] largest chunk fed at once (0: the whole input in one call)
 *   [2] chunk-size seed: 0 every chunk is [1] bytes, else sizes vary in 1..[1]
 * Invariants: every write is one whole response starting "HTTP/1.1 " with a known status
 * and a Content-Length that matches; nothing is written after a "Connection: close"
 * response; http_feed() returns -1, 0 or 1, -1 only after a failed write, and after 1
 * every further call returns 1 and writes nothing; the buffered head never exceeds
 * HTTP_MAX_HEAD; at most one response per 16 bytes of input, plus one; and the output
 * does not depend on how the input was split into reads (compared with one whole feed).
 */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static const size_t body_sizes[8] = {0, 1, 7, 64, 256, 1024, 4096, 16384};

struct out {
    const struct http_site *site;
    unsigned fail_at;   /* 1-based write that fails; 0 never */
    unsigned writes;
    int failed;         /* a write failed */
    int closing;        /* a "Connection: close" response was written */
    unsigned responses;
    char *buf;          /* everything written, for the split-independence check */
    size_t len, cap;
};

static void append(struct out *o, const void *data, size_t len)
{
    if (o->len + len > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + len)
            cap *= 2;
        o->buf = realloc(o->buf, cap);
        FZ_CHECK(o->buf != NULL, "out of memory");
        o->cap = cap;
    }
    memcpy(o->buf + o->len, data, len);
    o->len += len;
}

/* "Name: value\r\n" in head[0..len): value as a number, or -1. */
static long header_num(const char *head, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl < len; i++) {
        if ((i == 0 || head[i - 1] == '\n') && memcmp(head + i, name, nl) == 0) {
            char *end;
            long v = strtol(head + i + nl, &end, 10);
            return end > head + i + nl ? v : -1;
        }
    }
    return -1;
}

static int is_site_response(const struct http_site *s, const char *data, size_t len)
{
    if (data == s->ok_get)
        return len == s->ok_get_len || len == s->ok_head_len;
    if (data == s->ok_get_close)
        return len == s->ok_get_close_len || len == s->ok_head_close_len;
    return 0;
}

static int check_write(void *ctx, const void *data, size_t len)
{
    struct out *o = ctx;
    const char *d = data;
    o->writes++;
    FZ_CHECK(!o->failed, "write after a failed write");
    FZ_CHECK(!o->closing, "response after a 'Connection: close' response");
    FZ_CHECK(len >= 9 && memcmp(d, "HTTP/1.1 ", 9) == 0, "response does not start with "
             "'HTTP/1.1 ' (%zu bytes)", len);
    if (is_site_response(o->site, d, len)) {
        o->closing = d == o->site->ok_get_close;
    } else {
        /* An error response: bounded, known status, honest Content-Length. */
        FZ_CHECK(len < 512, "error response of %zu bytes", len);
        int status = atoi(d + 9);
        FZ_CHECK(status == 400 || status == 405 || status == 431 || status == 501,
                 "unexpected status %d", status);
        const char *end = NULL;
        for (size_t i = 3; i < len; i++)
            if (memcmp(d + i - 3, "\r\n\r\n", 4) == 0) {
                end = d + i + 1;
                break;
            }
        FZ_CHECK(end != NULL, "error response without an end of head");
        size_t hl = (size_t)(end - d);
        long cl = header_num(d, hl, "Content-Length: ");
        FZ_CHECK(cl >= 0 && (size_t)cl == len - hl, "Content-Length %ld, body %zu", cl,
                 len - hl);
        int close_hdr = memmem(d, hl, "\r\nConnection: close\r\n", 21) != NULL;
        FZ_CHECK(status == 405 || close_hdr, "status %d keeps the connection", status);
        o->closing = close_hdr;
    }
    o->responses++;
    append(o, d, len);
    if (o->fail_at && o->writes == o->fail_at) {
        o->failed = 1;
        return -1;
    }
    return 0;
}

/* Feed data in chunks; returns the last result (1 once closed). */
static int run(const struct http_site *site, struct http_state *st, struct out *o,
               const uint8_t *data, size_t len, size_t max_chunk, uint32_t seed)
{
    int closed = 0, result = 0;
    size_t off = 0;
    do {
        size_t n = len - off;
        if (max_chunk && n > max_chunk) {
            n = max_chunk;
            if (seed) { /* xorshift32: varied sizes in 1..max_chunk */
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                n = 1 + seed % max_chunk;
            }
        }
        unsigned before = o->writes;
        int r = http_feed(st, site, (const char *)data + off, n, check_write, o);
        FZ_CHECK(r == -1 || r == 0 || r == 1, "http_feed returned %d", r);
        FZ_CHECK(st->len <= HTTP_MAX_HEAD, "buffered head %zu", st->len);
        if (closed)
            FZ_CHECK(r == 1 && o->writes == before, "fed after close: returned %d, "
                     "%u writes", r, o->writes - before);
        FZ_CHECK((r == -1) == (o->failed && o->writes > before) || closed,
                 "returned %d, write failed: %d", r, o->failed);
        if (r == -1)
            return -1; /* the server drops the connection */
        if (r == 1) {
            closed = 1;
            FZ_CHECK(st->closed, "returned 1 without marking the state closed");
        }
        result = r;
        off += n;
    } while (off < len);
    if (closed) { /* one more read after the close */
        unsigned before = o->writes;
        int r = http_feed(st, site, "GET / HTTP/1.0\r\n\r\n", 18, check_write, o);
        FZ_CHECK(r == 1 && o->writes == before, "fed after close: returned %d", r);
    }
    FZ_CHECK(o->responses <= len / 16 + 1, "%u responses to %zu bytes", o->responses, len);
    return result;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_input in = {data, size};
    uint8_t b0 = fz_take_u8(&in);
    size_t max_chunk = fz_take_u8(&in);
    uint32_t seed = fz_take_u8(&in);
    seed = seed ? seed * 2654435761u : 0;

    static struct http_site sites[8];
    static int ready[8];
    size_t which = b0 & 7;
    if (!ready[which]) {
        FZ_CHECK(http_site_init(&sites[which], body_sizes[which]) == 0, "http_site_init");
        ready[which] = 1;
    }
    const struct http_site *site = &sites[which];

    struct http_state *st = calloc(1, sizeof(*st));
    struct out o = {.site = site, .fail_at = b0 >> 3};
    FZ_CHECK(st != NULL, "out of memory");
    int r = run(site, st, &o, in.p, in.n, max_chunk, seed);

    if (!o.failed) { /* the same bytes in one read give the same answers */
        struct http_state *whole = calloc(1, sizeof(*whole));
        struct out w = {.site = site};
        FZ_CHECK(whole != NULL, "out of memory");
        int rw = run(site, whole, &w, in.p, in.n, 0, 0);
        FZ_CHECK(rw == r, "split input returned %d, whole input %d", r, rw);
        FZ_CHECK(w.len == o.len && (o.len == 0 || memcmp(w.buf, o.buf, o.len) == 0),
                 "output depends on the split: %zu bytes in pieces, %zu whole", o.len, w.len);
        FZ_CHECK(whole->requests == st->requests && whole->closed == st->closed,
                 "state depends on the split");
        free(w.buf);
        free(whole);
    }
    free(o.buf);
    free(st);
    return 0;
}
