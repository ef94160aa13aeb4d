/* SPDX-License-Identifier: MIT */
/* The relaying half of tlsserver --forward and tlsclient --listen (pair.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pair.h"

struct pair *pair_new(tlskit_conn *front, tlskit_conn *back)
{
    struct pair *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->front = front;
    p->back = back;
    snprintf(p->front_addr, sizeof(p->front_addr), "%s", tlskit_conn_peer_addr(front));
    tlskit_conn_set_userdata(front, p);
    tlskit_conn_set_userdata(back, p);
    return p;
}

static tlskit_conn *other(tlskit_conn *c)
{
    struct pair *p = tlskit_conn_userdata(c);
    if (p == NULL)
        return NULL;
    return c == p->front ? p->back : p->front;
}

void pair_data(tlskit_conn *c, const void *data, size_t len)
{
    tlskit_conn *to = other(c);
    if (to == NULL || tlskit_conn_write(to, data, len) < 0)
        return; /* the other side is ending: its on_close ends this one */
    if (tlskit_conn_pending(to) > PAIR_MARK)
        tlskit_conn_read_stop(c);
}

void pair_drain(tlskit_conn *c)
{
    tlskit_conn *from = other(c);
    if (from != NULL)
        tlskit_conn_read_start(from);
}

void pair_eof(tlskit_conn *c)
{
    tlskit_conn *to = other(c);
    if (to != NULL)
        tlskit_conn_shutdown(to);
    else
        tlskit_conn_close(c);
}

void pair_snapshot(struct pair *p)
{
    if (p->back == NULL)
        return;
    snprintf(p->back_addr, sizeof(p->back_addr), "%s", tlskit_conn_peer_addr(p->back));
    p->back_in = tlskit_conn_bytes_in(p->back);
    p->back_out = tlskit_conn_bytes_out(p->back);
}

/* "connect to 127.0.0.1:8080: Connection refused" -> "127.0.0.1:8080: Connection refused" */
static const char *without_connect_to(const char *reason)
{
    static const char prefix[] = "connect to ";
    return strncmp(reason, prefix, sizeof(prefix) - 1) == 0 ? reason + sizeof(prefix) - 1
                                                            : reason;
}

int pair_closed(struct pair *p, tlskit_conn *c, int code, const char *reason)
{
    tlskit_conn *to = c == p->front ? p->back : p->front;
    int was_front = c == p->front;
    if (!was_front) {
        pair_snapshot(p);
        p->back = NULL;
        if (!p->back_open && !p->failed)
            p->failed = strdup(without_connect_to(reason));
    } else {
        pair_snapshot(p);
        p->front = NULL;
    }
    if (to != NULL) {
        /* A back that never opened: the front gets a clean close (close_notify: "no
         * service", not a broken stream). After an error, a reset: the other side must
         * not take a cut stream for a complete one. */
        if (code != TLSKIT_E_NONE && (was_front || p->back_open))
            tlskit_conn_abort(to, reason);
        else
            tlskit_conn_close(to);
    }
    return was_front;
}

void pair_release(struct pair *p)
{
    if (p != NULL && p->front == NULL && p->back == NULL) {
        free(p->failed);
        free(p);
    }
}
