/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the HTTP/1.x response reader of `tlsbench --http`
 * (apps/tlsbench/http_response.c, http_response_feed()).
 *
 * Input: 2 header bytes, then the bytes a server sends.
 *   [0] largest chunk fed at once (0: the whole input in one call)
 *   [1] chunk-size seed: 0 every chunk is [0] bytes, else sizes vary in 1..[0]
 * Invariants: http_response_feed() returns -1, 0 or 1; -1 comes with a non-empty reason;
 * the buffered head stays below HTTP_RESPONSE_HEAD_MAX; it never counts more body bytes
 * than it was given, nor more than Content-Length; 1 means a parsed head with
 * Content-Length and nothing left. Fed in pieces (stopping at the first 1 or -1), the
 * answer agrees with one whole feed: the same 0 or -1, and a 1 in pieces is a 1 whole when
 * it came with the last byte, else -1 (bytes beyond Content-Length). Inputs holding a NUL
 * byte are exempt from that comparison: the head is searched as a C string, so a NUL can
 * hide the blank line from one whole search but not from a search that starts after it.
 */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

/* By path: the fuzz build's include directories are the other apps' (CMakeLists.txt). */
#include "../../apps/tlsbench/http_response.h"

struct outcome {
    int result;         /* the last return value */
    size_t fed;         /* bytes given before stopping */
    uint64_t body;      /* body bytes counted */
    int server_close, until_close;
};

static size_t next_chunk(size_t left, size_t max_chunk, uint32_t *seed)
{
    if (!max_chunk || left <= max_chunk)
        return left;
    if (!*seed)
        return max_chunk;
    *seed ^= *seed << 13; /* xorshift32: varied sizes in 1..max_chunk */
    *seed ^= *seed >> 17;
    *seed ^= *seed << 5;
    return 1 + *seed % max_chunk;
}

static void check_step(const struct http_response *r, int rc, size_t n, uint64_t body,
                       const char *err)
{
    FZ_CHECK(rc == -1 || rc == 0 || rc == 1, "http_response_feed returned %d", rc);
    FZ_CHECK(r->hlen < HTTP_RESPONSE_HEAD_MAX, "buffered head %zu", r->hlen);
    FZ_CHECK(body <= n, "%llu body bytes out of %zu fed", (unsigned long long)body, n);
    if (rc == -1)
        FZ_CHECK(err[0] != '\0', "-1 without a reason");
    if (rc == 1)
        FZ_CHECK(r->in_body && !r->until_close && r->body_left == 0,
                 "complete with in_body %d, until_close %d, body_left %llu", r->in_body,
                 r->until_close, (unsigned long long)r->body_left);
    if (r->until_close)
        FZ_CHECK(r->server_close, "a body ending at close without the server closing");
}

/* Feed data in chunks until the reader says 1 or -1, or the data runs out. */
static struct outcome run(const uint8_t *data, size_t len, size_t max_chunk, uint32_t seed)
{
    struct http_response *r = malloc(sizeof(*r));
    FZ_CHECK(r != NULL, "out of memory");
    http_response_reset(r);
    struct outcome o = {0};
    uint64_t content_length = 0;
    int framed = 0; /* the head is parsed and carried Content-Length */
    while (o.fed < len) {
        size_t n = next_chunk(len - o.fed, max_chunk, &seed);
        uint64_t body = UINT64_MAX;
        char err[256] = "";
        o.result = http_response_feed(r, data + o.fed, n, &body, err, sizeof(err));
        check_step(r, o.result, n, body, err);
        o.fed += n;
        o.body += body;
        if (!framed && r->in_body && !r->until_close && o.result != -1) {
            framed = 1;
            content_length = o.body + r->body_left;
        }
        if (framed && o.result != -1)
            FZ_CHECK(o.body <= content_length, "%llu body bytes, Content-Length %llu",
                     (unsigned long long)o.body, (unsigned long long)content_length);
        if (o.result != 0)
            break;
    }
    o.server_close = r->server_close;
    o.until_close = r->until_close;
    free(r);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_input in = {data, size};
    size_t max_chunk = fz_take_u8(&in);
    uint32_t seed = fz_take_u8(&in);
    seed = seed ? seed * 2654435761u : 0;

    struct outcome part = run(in.p, in.n, max_chunk, seed);
    if (memchr(in.p, 0, in.n) != NULL)
        return 0;
    struct outcome whole = run(in.p, in.n, 0, 0);
    if (part.result == 1 && part.fed < in.n) {
        FZ_CHECK(whole.result == -1, "complete before the end in pieces, %d whole",
                 whole.result);
        return 0;
    }
    FZ_CHECK(part.result == whole.result, "%d in pieces, %d whole", part.result,
             whole.result);
    if (part.result != -1)
        FZ_CHECK(part.body == whole.body && part.server_close == whole.server_close &&
                 part.until_close == whole.until_close,
                 "the outcome depends on the split: body %llu vs %llu",
                 (unsigned long long)part.body, (unsigned long long)whole.body);
    return 0;
}
