/* SPDX-License-Identifier: MIT */
/* Name lookups off the engine's workers (resolve.c). getaddrinfo() blocks for the DNS
 * round trip, or for resolv.conf's timeout x attempts when the server does not answer;
 * on a worker that would stop every connection it serves. A resolver runs the lookups
 * on its own threads and posts each answer to the asking worker's inbox, then writes the
 * worker's wake-up eventfd. Seen by resolve.c and engine_connect.c (and the bodies that
 * embed an inbox). */
#ifndef TLSKIT_RESOLVE_H
#define TLSKIT_RESOLVE_H

#include <netdb.h>

struct tlskit__resolver; /* threads and their queue (shared, reference-counted) */
struct tlskit__lookup;   /* one name and port being resolved */

/* Where one worker receives its answers: guarded by the resolver's lock; wake_fd (an
 * eventfd) is written after each answer. */
struct tlskit__inbox {
    struct tlskit__lookup *head;
    int wake_fd;
};

/* A resolver with no thread yet (the first lookup starts one): NULL when out of memory. */
struct tlskit__resolver *tlskit__resolver_new(void);
/* The owner is done with r (every lookup it started is cancelled or taken). Returns at
 * once: a thread still blocked in getaddrinfo() holds its own reference, drops its late
 * answer and frees r when it is the last. NULL is ignored. */
void tlskit__resolver_release(struct tlskit__resolver *r);
/* Queue host and port (copied) for a resolver thread; the answer goes to in (which must
 * stay valid until the lookup is taken or cancelled), tagged with owner. NULL on
 * failure (no memory, or no thread could be started): errno says why. */
struct tlskit__lookup *tlskit__lookup_start(struct tlskit__resolver *r, const char *host,
                                            const char *port, struct tlskit__inbox *in,
                                            void *owner);
/* The owner gives up a lookup it has not taken: nothing of it reaches the inbox after
 * this returns (a running getaddrinfo() finishes on its thread and is dropped). */
void tlskit__lookup_cancel(struct tlskit__lookup *lk);
/* The next answered lookup of in (now the caller's), or NULL. */
struct tlskit__lookup *tlskit__inbox_pop(struct tlskit__resolver *r, struct tlskit__inbox *in);
void *tlskit__lookup_owner(const struct tlskit__lookup *lk);
/* A taken lookup's answer: 0 with *res (now the caller's, for freeaddrinfo()), or
 * getaddrinfo()'s error code (with EAI_SYSTEM, *eno is its errno). */
int tlskit__lookup_answer(struct tlskit__lookup *lk, struct addrinfo **res, int *eno);
/* Free a taken lookup. */
void tlskit__lookup_free(struct tlskit__lookup *lk);

#endif
