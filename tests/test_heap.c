/* SPDX-License-Identifier: MIT */
/* tlsserver's memory at quiet moments, in-process. heap_release() (apps/tlsserver/heap.c):
 * with glibc's malloc it must hand the calling thread's tcache back to the arena, which
 * malloc_trim(0) alone does not, and so give back the pages that the scattered tcache
 * chunks pinned after a burst. bufpool.c: OpenSSL's large short-lived blocks in page-
 * aligned slots of their own, given back at quiet moments. The bench's burst figures are
 * the measure; this checks the mechanisms. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common.h"
#include "bufpool.h"
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

/* Resident pages of this process (/proc/self/statm). */
static long statm_resident(void)
{
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    cr_assert_not_null(f);
    cr_assert_eq(fscanf(f, "%ld %ld", &size, &res), 2);
    fclose(f);
    return res;
}


/* Run a case on a thread of its own, as on an engine worker (its own arena); skipped
 * where the mechanism does not exist. */
#ifdef HEAP_TESTABLE
static void on_own_thread(void *(*fn)(void *))
{
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, fn, NULL), 0);
    pthread_join(t, NULL);
}
#define ON_OWN_THREAD(fn) on_own_thread(fn)
#else
#define ON_OWN_THREAD(fn) cr_skip_test("glibc's malloc only (not ASan, not TLSKIT_APP_ALLOCATOR)")
#endif

/* On a thread of its own, as on an engine worker (its own arena). */
TK_TEST(heap, the_tcache_goes_back_to_the_arena)
{
    ON_OWN_THREAD(tcache_case);
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
    long trimmed = statm_resident();
    heap_release();
    long released = statm_resident();
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
    ON_OWN_THREAD(burst_case);
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

/* ---- bufpool.c: OpenSSL's large short-lived blocks in a pool of their own ---- */

static size_t pool_used(void)
{
    struct bufpool_stats st;
    bufpool_stats(&st);
    return st.used;
}

TK_TEST(heap, bufpool_takes_only_its_sizes_and_reallocs_like_realloc)
{
    unsigned char *small = bufpool_malloc(100, __FILE__, __LINE__);
    unsigned char *edge = bufpool_malloc(BUFPOOL_MIN, __FILE__, __LINE__);
    unsigned char *big = bufpool_malloc(BUFPOOL_SLOT + 1, __FILE__, __LINE__);
    cr_assert(small && edge && big);
    cr_expect_eq(pool_used(), 0, "100, BUFPOOL_MIN and BUFPOOL_SLOT+1 bytes are malloc's");
    unsigned char *rec = bufpool_malloc(16716, __FILE__, __LINE__); /* a record buffer */
    cr_assert_not_null(rec);
    cr_expect_eq(pool_used(), 1);
    cr_expect_eq((uintptr_t)rec % 4096, 0, "slots are page-aligned");
    for (size_t i = 0; i < 16716; i++)
        rec[i] = (unsigned char)i;
    /* Growing within the slot keeps it; past the slot moves to malloc with the bytes. */
    cr_expect_eq(bufpool_realloc(rec, BUFPOOL_SLOT, __FILE__, __LINE__), rec);
    unsigned char *moved = bufpool_realloc(rec, 40000, __FILE__, __LINE__);
    cr_assert_not_null(moved);
    cr_expect_neq(moved, rec);
    cr_expect_eq(pool_used(), 0, "the slot went back when the block moved");
    for (size_t i = 0; i < 16716; i++)
        if (moved[i] != (unsigned char)i)
            cr_assert_fail("byte %zu changed when the block moved out of the pool", i);
    /* A heap block stays in the heap, whatever size it grows to. */
    small[0] = 42;
    small = bufpool_realloc(small, 16716, __FILE__, __LINE__);
    cr_assert_not_null(small);
    cr_expect_eq(small[0], 42);
    cr_expect_eq(pool_used(), 0);
    /* realloc(NULL, n) allocates, realloc(p, 0) frees, free(NULL) does nothing. */
    void *p = bufpool_realloc(NULL, 20000, __FILE__, __LINE__);
    cr_assert_not_null(p);
    cr_expect_eq(pool_used(), 1);
    cr_expect_null(bufpool_realloc(p, 0, __FILE__, __LINE__));
    cr_expect_eq(pool_used(), 0);
    bufpool_free(NULL, __FILE__, __LINE__);
    bufpool_free(small, __FILE__, __LINE__);
    bufpool_free(edge, __FILE__, __LINE__);
    bufpool_free(big, __FILE__, __LINE__);
    bufpool_free(moved, __FILE__, __LINE__);
}

#define BURST 256
TK_TEST(heap, bufpool_release_gives_free_slots_back_and_reuses_them)
{
    void *b[BURST];
    for (int i = 0; i < BURST; i++) {
        cr_assert_not_null(b[i] = bufpool_malloc(16716, __FILE__, __LINE__));
        memset(b[i], 0xa5, 16716);
    }
    struct bufpool_stats st;
    bufpool_stats(&st);
    cr_expect_eq(st.used, BURST);
    cr_expect_eq(st.high, BURST);
    for (int i = 0; i < BURST; i++)
        bufpool_free(b[i], __FILE__, __LINE__);
    long held = statm_resident();
    bufpool_release();
    long released = statm_resident();
    long page = sysconf(_SC_PAGESIZE);
    /* 256 x 16.7 KiB were resident: at least 3 MiB of it must go. */
    cr_expect_geq((held - released) * page, 3L << 20, "resident %ld -> %ld pages", held,
                  released);
    bufpool_stats(&st);
    cr_expect_eq(st.dirty, 0);
    cr_expect_eq(st.clean, BURST);
    /* The next burst takes the same slots (no new address space), zeroed by the kernel. */
    for (int i = 0; i < BURST; i++) {
        cr_assert_not_null(b[i] = bufpool_malloc(16716, __FILE__, __LINE__));
        cr_expect_eq(((unsigned char *)b[i])[100], 0);
    }
    bufpool_stats(&st);
    cr_expect_eq(st.high, BURST);
    cr_expect_eq(st.fallbacks, 0);
    for (int i = 0; i < BURST; i++)
        bufpool_free(b[i], __FILE__, __LINE__);
}

/* Workers allocate and free at once while another thread releases (as on_quiet does). */
static void *pool_worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    void *held[32] = {0};
    size_t len[32] = {0};
    for (int round = 0; round < 4000; round++) {
        int k = (int)(rand_r(&seed) % 32);
        if (held[k] != NULL) {
            unsigned char *c = held[k];
            if (c[0] != (unsigned char)k || c[len[k] - 1] != (unsigned char)k)
                cr_expect_fail("a block was overwritten by another thread");
            bufpool_free(held[k], __FILE__, __LINE__);
            held[k] = NULL;
        } else {
            len[k] = 1 + rand_r(&seed) % (BUFPOOL_SLOT + 4096);
            held[k] = bufpool_malloc(len[k], __FILE__, __LINE__);
            cr_assert_not_null(held[k]);
            memset(held[k], k, len[k]);
        }
    }
    for (int k = 0; k < 32; k++)
        bufpool_free(held[k], __FILE__, __LINE__);
    return NULL;
}

static void *pool_releaser(void *arg)
{
    atomic_int *stop = arg;
    while (!atomic_load(stop))
        bufpool_release();
    return NULL;
}

TK_TEST(heap, bufpool_is_safe_across_threads)
{
    pthread_t w[4], r;
    atomic_int stop = 0;
    cr_assert_eq(pthread_create(&r, NULL, pool_releaser, &stop), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&w[i], NULL, pool_worker, (void *)(uintptr_t)(i + 1)), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(w[i], NULL);
    atomic_store(&stop, 1);
    pthread_join(r, NULL);
    cr_expect_eq(pool_used(), 0, "every slot came back");
}

/* Free slots on both sides of one in use: the runs given back must stop at it. */
TK_TEST(heap, bufpool_release_leaves_slots_in_use_alone)
{
    unsigned char *s[9];
    for (int i = 0; i < 9; i++) {
        cr_assert_not_null(s[i] = bufpool_malloc(BUFPOOL_SLOT, __FILE__, __LINE__));
        memset(s[i], 0x5a, BUFPOOL_SLOT);
    }
    for (int i = 0; i < 9; i++)
        if (i != 4)
            bufpool_free(s[i], __FILE__, __LINE__);
    bufpool_release();
    for (size_t k = 0; k < BUFPOOL_SLOT; k++)
        if (s[4][k] != 0x5a)
            cr_assert_fail("byte %zu of the slot in use was given back", k);
    struct bufpool_stats st;
    bufpool_stats(&st);
    cr_expect_eq(st.used, 1);
    cr_expect_eq(st.clean, 8);
    bufpool_free(s[4], __FILE__, __LINE__);
}
