/* SPDX-License-Identifier: MIT */
/* OpenSSL's large short-lived blocks in a pool of their own, for glibc's sake.
 *
 * During a burst each handshake takes a ~21 KiB handshake buffer and ~16.7 KiB record
 * buffers, and frees them once done (SSL_MODE_RELEASE_BUFFERS), while the connection's
 * long-lived objects (the SSL, its session, cipher contexts: ~14 KiB) stay. In glibc's
 * heap the two kinds interleave, so a held connection costs its live bytes plus the holes
 * between them, and malloc_trim can give back only whole pages inside a hole: at 1,000
 * clients arriving at once that was ~22.7 KiB per held connection. Here blocks of 12-24
 * KiB get a page-aligned 24 KiB slot in one reserved region instead (no system call per
 * block: a free list under a mutex); the heap keeps only the small objects, packed, and
 * a free slot's pages go back whole at quiet moments (bufpool_release). The same burst
 * then held ~17 KiB per connection (README "Performance"). Setting glibc's mmap
 * threshold to 16 KiB does the same for memory, with an mmap and munmap per record.
 *
 * The region is reserved once (MAP_NORESERVE: address space, no memory until touched);
 * when it is full, blocks go to malloc as before. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/crypto.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h> /* RUNNING_ON_VALGRIND: a few instructions, no library */
#define BUFPOOL_VALGRIND 1
#endif
#endif

#include "bufpool.h"

#define RESERVE ((size_t)2 << 30) /* 2 GiB: 87,381 slots, 4 per connection at 20,000 */
#define NSLOTS (RESERVE / BUFPOOL_SLOT)

static struct {
    pthread_mutex_t mu;
    unsigned char *base;   /* the region; NULL until first used */
    int failed;            /* mmap refused: malloc for good */
    uint32_t *dirty;       /* stack of free slots, most recently freed on top */
    uint32_t *clean;       /* stack of free slots whose pages were given back */
    size_t ndirty, nclean, used, high, fallbacks;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Any thread, without the lock: base is written once, before the first slot exists. */
static int in_pool(const void *p)
{
    uintptr_t base = (uintptr_t)__atomic_load_n(&pool.base, __ATOMIC_ACQUIRE);
    return base != 0 && (uintptr_t)p - base < RESERVE; /* below base wraps: not ours */
}

/* Under mu. The region and the two stacks, reserved together on first use. */
static int pool_map(void)
{
    if (pool.base != NULL)
        return 0;
    if (pool.failed)
        return -1;
    size_t stacks = 2 * NSLOTS * sizeof(uint32_t);
    void *m = mmap(NULL, RESERVE + stacks, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        pool.failed = 1;
        return -1;
    }
    pool.dirty = (uint32_t *)(void *)((unsigned char *)m + RESERVE);
    pool.clean = pool.dirty + NSLOTS;
    __atomic_store_n(&pool.base, (unsigned char *)m, __ATOMIC_RELEASE);
    return 0;
}

/* A slot, or NULL when the pool cannot give one. A dirty slot first: its pages are
 * resident and likely in cache. */
static void *slot_take(void)
{
    uint32_t i;
    void *p = NULL;
    pthread_mutex_lock(&pool.mu);
    if (pool_map() == 0) {
        if (pool.ndirty > 0)
            i = pool.dirty[--pool.ndirty];
        else if (pool.nclean > 0)
            i = pool.clean[--pool.nclean];
        else if (pool.high < NSLOTS)
            i = (uint32_t)pool.high++;
        else
            i = UINT32_MAX;
        if (i != UINT32_MAX) {
            pool.used++;
            p = pool.base + (size_t)i * BUFPOOL_SLOT;
        }
    }
    if (p == NULL)
        pool.fallbacks++;
    pthread_mutex_unlock(&pool.mu);
    return p;
}

static void slot_put(void *p)
{
    uint32_t i = (uint32_t)(((unsigned char *)p - pool.base) / BUFPOOL_SLOT);
    pthread_mutex_lock(&pool.mu);
    pool.dirty[pool.ndirty++] = i;
    pool.used--;
    pthread_mutex_unlock(&pool.mu);
}

void *bufpool_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    if (n > BUFPOOL_MIN && n <= BUFPOOL_SLOT) {
        void *p = slot_take();
        if (p != NULL)
            return p;
    }
    return malloc(n);
}

void bufpool_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    if (in_pool(p))
        slot_put(p);
    else
        free(p);
}

void *bufpool_realloc(void *p, size_t n, const char *file, int line)
{
    if (p == NULL)
        return bufpool_malloc(n, file, line);
    if (n == 0) {
        bufpool_free(p, file, line);
        return NULL;
    }
    if (!in_pool(p))
        return realloc(p, n); /* a heap block stays in the heap */
    if (n <= BUFPOOL_SLOT)
        return p;
    void *q = malloc(n);
    if (q == NULL)
        return NULL; /* p is left as it was, as realloc does */
    memcpy(q, p, BUFPOOL_SLOT);
    slot_put(p);
    return q;
}

static int slot_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

void bufpool_release(void)
{
    uint32_t *give;
    size_t n;
    pthread_mutex_lock(&pool.mu);
    n = pool.ndirty;
    if (n == 0 || (give = malloc(n * sizeof(*give))) == NULL) {
        pthread_mutex_unlock(&pool.mu);
        return;
    }
    memcpy(give, pool.dirty, n * sizeof(*give));
    pool.ndirty = 0;
    pthread_mutex_unlock(&pool.mu);
    /* Outside the lock: the other workers may be busy. These slots are on no stack
     * meanwhile, so nobody hands them out. In address order, one madvise per run of
     * neighbours (after a burst most free slots form a few runs). The time goes mostly
     * to the kernel freeing the pages: after 5,000 clients, ~100 MB in 5-60 ms of this
     * worker on the busy 2-core machine, once per burst. */
    qsort(give, n, sizeof(*give), slot_cmp);
    for (size_t k = 0, run; k < n; k += run) {
        for (run = 1; k + run < n && give[k + run] == give[k] + run; run++)
            ;
        madvise(pool.base + (size_t)give[k] * BUFPOOL_SLOT, run * BUFPOOL_SLOT,
                MADV_DONTNEED);
    }
    pthread_mutex_lock(&pool.mu);
    memcpy(pool.clean + pool.nclean, give, n * sizeof(*give));
    pool.nclean += n;
    pthread_mutex_unlock(&pool.mu);
    free(give);
}

void bufpool_stats(struct bufpool_stats *st)
{
    pthread_mutex_lock(&pool.mu);
    st->used = pool.used;
    st->dirty = pool.ndirty;
    st->clean = pool.nclean;
    st->high = pool.high;
    st->fallbacks = pool.fallbacks;
    pthread_mutex_unlock(&pool.mu);
}

int bufpool_install(void)
{
#if defined(__GLIBC__) && defined(TLSKIT_APP_MALLOC_LIBC) && !defined(__SANITIZE_ADDRESS__)
#ifdef BUFPOOL_VALGRIND
    /* memcheck (scripts/valgrind.sh) must see OpenSSL's buffers as malloc's. */
    if (RUNNING_ON_VALGRIND) {
        errno = ENOTSUP;
        return -1;
    }
#endif
    if (CRYPTO_set_mem_functions(bufpool_malloc, bufpool_realloc, bufpool_free) != 1)
        return -1;
    return 0;
#else
    errno = ENOTSUP;
    return -1;
#endif
}
