/* SPDX-License-Identifier: MIT */
/* Memory back to the system at the engine's quiet moments (serve_events.c's on_quiet).
 *
 * With glibc's malloc, malloc_trim(0) alone leaves most of what a burst grew: after 5,000
 * clients connected at once and left, each worker's arena was ~80 MB of address space with
 * ~210 KB still in use, and 1.4-1.6 MB of it resident. The bytes in use were almost all
 * the worker thread's tcache: up to 7 freed chunks of each of the 64 small sizes (24 to
 * 1032 bytes), kept out of the arena for the next malloc. They are the last ones the burst
 * freed, scattered over the whole arena, and trim releases only the pages between two
 * chunks in use, so ~450 scattered chunks pin ~400 pages and the partial pages around
 * them. glibc has no call that empties a tcache; a thread's tcache is emptied into the
 * arenas when the thread exits. So the worker takes every chunk out of its own tcache
 * (mallocs of each size), a short-lived thread frees them (its tcache takes 7 of each
 * and gives them back to their arena when it exits), and then the arenas are trimmed.
 * Measured by scripts/bench.sh's "after the burst" figure; README "Performance".
 *
 * Everything here is plain malloc/free, so it is safe with any malloc: it is compiled
 * out with another allocator (TLSKIT_APP_ALLOCATOR), where it would be useless, and kept
 * under ASan, where it is useless too but the sanitizers check it. */
#include <pthread.h>
#include <stdlib.h>
#if defined(__GLIBC__) && defined(TLSKIT_APP_MALLOC_LIBC)
#include <malloc.h>
#define HEAP_GLIBC 1
#endif

#include "heap.h"

#ifdef HEAP_GLIBC
#define TCACHE_BINS 64   /* glibc's TCACHE_MAX_BINS: chunks of 32 to 1040 bytes, */
#define TCACHE_FILL 7    /* ... and its default glibc.malloc.tcache_count */
#define TCACHE_SIZE(bin) (24 + 16 * (size_t)(bin)) /* the largest request of a bin */

struct taken {
    size_t n;
    void *p[TCACHE_BINS * TCACHE_FILL];
};

static void *free_taken(void *arg)
{
    struct taken *t = arg;
    for (size_t i = 0; i < t->n; i++)
        free(t->p[i]);
    return NULL;
}
#endif

void heap_release(void)
{
#ifdef HEAP_GLIBC
    /* First trim: it also merges the fastbins, which a malloc below would otherwise
     * move into the tcache as it empties it. */
    malloc_trim(0);
    struct taken *t = malloc(sizeof(*t));
    if (t != NULL) {
        t->n = 0;
        for (size_t bin = 0; bin < TCACHE_BINS; bin++) {
            for (int i = 0; i < TCACHE_FILL; i++) {
                void *p = malloc(TCACHE_SIZE(bin));
                if (p == NULL)
                    break;
                t->p[t->n++] = p;
            }
        }
        pthread_t th;
        if (pthread_create(&th, NULL, free_taken, t) == 0)
            pthread_join(th, NULL);
        else
            free_taken(t); /* back into this thread's tcache: as before, no worse */
        free(t);
    }
    malloc_trim(0);
#endif
}
