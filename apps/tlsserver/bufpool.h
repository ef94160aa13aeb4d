/* SPDX-License-Identifier: MIT */
/* OpenSSL's large short-lived blocks in a pool of their own (bufpool.c). */
#ifndef TLSSERVER_BUFPOOL_H
#define TLSSERVER_BUFPOOL_H

#include <stddef.h>

/* Blocks of more than BUFPOOL_MIN and at most BUFPOOL_SLOT bytes go to the pool: the
 * record buffers (~16.7 KiB each way) and the handshake message buffer (~21 KiB), which
 * SSL_MODE_RELEASE_BUFFERS frees and takes again all the time. */
#define BUFPOOL_MIN (12 * 1024)
#define BUFPOOL_SLOT (24 * 1024)

/* Route OpenSSL's allocations through the pool (CRYPTO_set_mem_functions). Must be the
 * first thing main() does, before anything allocates through OpenSSL. 0 when installed;
 * -1 when not (too late, no address space, or a build where it does not apply: another
 * malloc or ASan, which should see OpenSSL's buffers), and OpenSSL keeps using malloc. */
int bufpool_install(void);

/* The pool's malloc/realloc/free, with OpenSSL's signatures (file and line unused);
 * exposed for the tests. Without bufpool_install() they are the pool all the same. */
void *bufpool_malloc(size_t n, const char *file, int line);
void *bufpool_realloc(void *p, size_t n, const char *file, int line);
void bufpool_free(void *p, const char *file, int line);

/* Give the pages of every free slot back to the system (madvise MADV_DONTNEED); the
 * slots stay reserved for the next burst. Any thread, any time; meant for the engine's
 * quiet moments. */
void bufpool_release(void);

struct bufpool_stats {
    size_t used;      /* slots handed out now */
    size_t dirty;     /* free slots whose pages may still be resident */
    size_t clean;     /* free slots given back to the system */
    size_t high;      /* slots ever carved from the reserve */
    size_t fallbacks; /* pool-sized requests served by malloc: the reserve was full */
};
void bufpool_stats(struct bufpool_stats *st);

#endif
