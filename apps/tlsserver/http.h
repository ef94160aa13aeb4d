/* SPDX-License-Identifier: MIT */
/* A small HTTP/1.1 keep-alive responder for `tlsserver --mode http`: GET and HEAD get a
 * fixed-size body, other methods 405, malformed requests 400 (then close). It only parses
 * and answers; bytes in and out go through callbacks, so it is independent of sockets and
 * TLS (and can be fuzzed on its own). */
#ifndef TLSSERVER_HTTP_H
#define TLSSERVER_HTTP_H

#include <stddef.h>

#define HTTP_MAX_HEAD 8192 /* request line + headers */

/* Responses shared by every connection: built once. */
struct http_site {
    char *ok_get;       /* full 200 response with body, keep-alive */
    size_t ok_get_len;
    size_t ok_head_len; /* the same headers without the body */
    char *ok_get_close; /* with "Connection: close" */
    size_t ok_get_close_len;
    size_t ok_head_close_len;
};

int http_site_init(struct http_site *site, size_t body_size);
void http_site_free(struct http_site *site);

struct http_state {
    char head[HTTP_MAX_HEAD];
    size_t len;
    size_t skip;        /* request body bytes still to discard */
    int closed;         /* a response asked for the connection to close */
    unsigned long requests;
};

typedef int (*http_write_fn)(void *ctx, const void *data, size_t len);

/* Feed received bytes. Writes responses through `write`. Returns 0 to keep the
 * connection open, 1 when it must be closed after the written responses, -1 when a
 * write failed. Pipelined requests are answered in order. */
int http_feed(struct http_state *st, const struct http_site *site, const char *data,
              size_t len, http_write_fn write, void *ctx);

#endif
