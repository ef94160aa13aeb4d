/* SPDX-License-Identifier: MIT */
/* tlsserver's heap_release() (apps/tlsserver/heap.c), in-process: with glibc's malloc it
 * must hand the calling thread's tcache back to the arena, which malloc_trim(0) alone does
 * not, and so give back the pages that the scattered tcache chunks pinned after a burst.
 * The bench's "after the burst" figure is the measure; this checks the mechanism. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common.h"
#include "heap.h"

TK_SUITE(heap);

#if defined(__GLIBC__) && defined(TLSKIT_APP_MALLOC_LIBC) && !TK_HAVE_LSAN
#define HEAP_TESTABLE 1
#define BINS 64                         /* the tcache's sizes: requests of 24 ... 1032 */
#define FILL 7                          /* chunks of each it keeps (glibc's default) */
#define REQ(bin) (24 + 16 * (size_t)(bin))

static size_t in_use(void)
{
    return mallinfo2().uordblks; /* every arena; tcache chunks count as in use */
}

static long resident_pages(void)
{
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    cr_assert_not_null(f);
    cr_assert_eq(fscanf(f, "%ld %ld", &size, &res), 2);
    fclose(f);
    return res;
}

/* Fill this thread's tcache: FILL chunks of every size, freed. */
static size_t fill_tcache(void)
{
    void *p[BINS][FILL];
    size_t bytes = 0;
    for (int b = 0; b < BINS; b++)
        for (int i = 0; i < FILL; i++) {
            cr_assert_not_null(p[b][i] = malloc(REQ(b)));
            bytes += malloc_usable_size(p[b][i]);
        }
    for (int b = 0; b < BINS; b++)
        for (int i = 0; i < FILL; i++)
            free(p[b][i]);
    return bytes;
}

static void *tcache_case(void *arg)
{
    (void)arg;
    size_t held = fill_tcache();
    size_t before = in_use();
    malloc_trim(0);
    size_t trimmed = in_use();
    /* The method: trim leaves the tcache as it was (what heap_release is for). */
    cr_expect_lt(before - trimmed, held / 10, "malloc_trim freed %zu of %zu tcache bytes",
                 before - trimmed, held);
    heap_release();
    size_t after = in_use();
    cr_expect_geq(trimmed - after, held * 9 / 10,
                  "heap_release gave back %zu of the tcache's %zu bytes", trimmed - after,
                  held);
    return NULL;
}
#endif

/* On a thread of its own, as on an engine worker (its own arena). */
TK_TEST(heap, the_tcache_goes_back_to_the_arena)
{
#ifdef HEAP_TESTABLE
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, tcache_case, NULL), 0);
    pthread_join(t, NULL);
#else
    cr_skip_test("glibc's malloc only (not ASan, not TLSKIT_APP_ALLOCATOR)");
#endif
}

#ifdef HEAP_TESTABLE
#define CONNS 2000 /* a burst: per connection a 16 KiB buffer and a small object */

static void *burst_case(void *arg)
{
    (void)arg;
    void **big = calloc(CONNS, sizeof(*big)), **small = calloc(CONNS, sizeof(*small));
    cr_assert(big && small);
    for (int i = 0; i < CONNS; i++) {
        cr_assert_not_null(big[i] = malloc(16384));
        cr_assert_not_null(small[i] = malloc(REQ(i % BINS)));
        memset(big[i], 1, 16384);
        memset(small[i], 1, REQ(i % BINS));
    }
    /* All gone: the tcache keeps the first FILL small ones of each size, one per ~16 KiB
     * of the arena. */
    for (int i = 0; i < CONNS; i++) {
        free(big[i]);
        free(small[i]);
    }
    free(big);
    free(small);
    malloc_trim(0);
    long trimmed = resident_pages();
    heap_release();
    long released = resident_pages();
    long page = sysconf(_SC_PAGESIZE);
    /* ~450 pages were pinned; ask for well over half of them back. */
    cr_expect_geq((trimmed - released) * page, 1 << 20,
                  "after malloc_trim %ld pages resident, after heap_release %ld", trimmed,
                  released);
    return NULL;
}
#endif

TK_TEST(heap, pages_pinned_by_a_burst_come_back)
{
#ifdef HEAP_TESTABLE
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, burst_case, NULL), 0);
    pthread_join(t, NULL);
#else
    cr_skip_test("glibc's malloc only (not ASan, not TLSKIT_APP_ALLOCATOR)");
#endif
}

/* Safe from several threads at once (the engine's workers go quiet together). */
static void *release_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        void *p = malloc(100 + (size_t)i * 40);
        cr_assert_not_null(p);
        heap_release();
        free(p);
    }
    return NULL;
}

TK_TEST(heap, several_threads_at_once)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, release_many, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
}
