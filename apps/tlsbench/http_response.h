/* SPDX-License-Identifier: MIT */
/* The HTTP/1.x response reader tlsbench uses with --http: only what a benchmark needs
 * (status 200, Content-Length or a body that ends at close, Connection), no chunked
 * coding. Pure: bytes in, counts and flags out, no sockets and no allocation, so it can
 * be fuzzed on its own (tests/fuzz/fuzz_http_response.c). */
#ifndef TLSBENCH_HTTP_RESPONSE_H
#define TLSBENCH_HTTP_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_RESPONSE_HEAD_MAX 2048 /* status line + headers, with the blank line */

struct http_response {
    int in_body;          /* the head is parsed: what follows is body */
    int until_close;      /* no Content-Length: the body ends with the connection */
    int server_close;     /* the server closes after this response */
    uint64_t body_left;   /* with Content-Length: body bytes still to come */
    size_t hlen;          /* head bytes buffered so far */
    char hdr[HTTP_RESPONSE_HEAD_MAX];
};

/* Ready for the next response on the connection. */
void http_response_reset(struct http_response *r);

/* Feed n received bytes. Returns 1 when the response is complete, 0 when more is needed,
 * -1 on a response tlsbench cannot take (reason in err, always NUL-terminated). *body is
 * set to the number of body bytes among them, also when -1 is returned. A body that
 * ends at close is never complete here: the caller decides on the connection's end. */
int http_response_feed(struct http_response *r, const unsigned char *d, size_t n,
                       uint64_t *body, char *err, size_t errlen);

#endif
