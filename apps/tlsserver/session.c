/* SPDX-License-Identifier: MIT */
/* What tlsserver does with a connection's bytes: echo them, discard them, or answer
 * them as HTTP/1.1 requests. Independent of how connections are served. */
#include <stdlib.h>

#include "server.h"

int session_data(const struct server *s, struct session *ss, const char *data, size_t len,
                 out_fn out, void *ctx)
{
    switch (s->opt.mode) {
    case MODE_ECHO:
        return out(ctx, data, len) == 0 ? 0 : -1;
    case MODE_DISCARD:
        return 0;
    case MODE_HTTP:
        break;
    }
    /* The parser's state (8 KiB) exists only while a request is incomplete, so idle
     * keep-alive connections stay small. */
    if (!ss->http && !(ss->http = calloc(1, sizeof(*ss->http))))
        return -1;
    int r = http_feed(ss->http, &s->site, data, len, out, ctx);
    if (r == 0 && ss->http->len == 0 && ss->http->skip == 0) {
        free(ss->http);
        ss->http = NULL;
    }
    return r;
}

void session_end(struct session *ss)
{
    free(ss->http);
    ss->http = NULL;
}
