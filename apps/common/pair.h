/* SPDX-License-Identifier: MIT */
/*
 * pair: two engine connections relayed to each other, with the public API only: what
 * tlsserver --forward (a TLS client and its plain backend) and tlsclient --listen (a
 * plain local client and its TLS server) share. Bytes both ways; a side whose peer does
 * not keep up stops reading on the other (read_stop/read_start); a half-close carried
 * across (on_eof -> shutdown); an error on one side passed to the other as a reset
 * (abort), a clean end as a clean close.
 */
#ifndef TLSKIT_APPS_PAIR_H
#define TLSKIT_APPS_PAIR_H

#include <tlskit/tlskit.h>

/* Queued toward one side beyond this, the other side stops being read: about this much
 * plus one read (256 KiB) is held per direction, far under the engine's write limit (at a
 * quarter of which the engine would pause the writer's own reading). */
#define PAIR_MARK (256u * 1024)

/* The userdata of both connections; freed by the second on_close (pair_closed()). */
struct pair {
    tlskit_conn *front, *back;     /* accepted; opened by tlskit_engine_connect() */
    char front_addr[64];           /* the front's peer, kept when it ends */
    int back_open;                 /* the back's on_open came */
    char back_addr[128];           /* its peer, kept when it ends ("unix:" + a path fits) */
    unsigned long long back_in, back_out;
    char *failed;                  /* the back never opened: why (its on_close reason);
                                    * NULL otherwise (or when out of memory) */
};

/* A pair for front and back (NULL when out of memory: the caller closes both). */
struct pair *pair_new(tlskit_conn *front, tlskit_conn *back);
/* The engine callbacks' relaying, for any connection of a pair (no-ops otherwise). */
void pair_data(tlskit_conn *c, const void *data, size_t len);
void pair_drain(tlskit_conn *c);
void pair_eof(tlskit_conn *c);
/* c's on_close: passes the end to the other side (a back that never opened closes the
 * front cleanly, with close_notify; an error aborts the other side, a reset; a clean
 * end closes it after its output) and keeps the back's address and bytes in p. Returns
 * 1 when c was the front, 0 for the back. Then the caller logs what it wants from p and
 * calls pair_release(p). */
int pair_closed(struct pair *p, tlskit_conn *c, int code, const char *reason);
/* Frees p once both sides are gone. */
void pair_release(struct pair *p);
/* The back's address and bytes as of now, into p's back_* fields (once it is gone,
 * they stay as it ended). */
void pair_snapshot(struct pair *p);

#endif
