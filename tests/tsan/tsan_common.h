/* SPDX-License-Identifier: MIT */
/* What the ThreadSanitizer programs (engine_tsan.c, forward_tsan.c, dtls_tsan.c) share:
 * the certificates' directory, a thread that reads an engine's counters while it serves,
 * and one echo round trip on a blocking connection. Each program is one file, so these are static inline. */
#ifndef TLSKIT_TSAN_COMMON_H
#define TLSKIT_TSAN_COMMON_H

#include <tlskit/tlskit.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The test certificates' directory, from TLSKIT_TEST_CERTS (tsan_certs()). */
static const char *tsan_certs_dir;

/* Read TLSKIT_TEST_CERTS: 0, or -1 after a line on stderr naming prog. */
static inline int tsan_certs(const char *prog)
{
    tsan_certs_dir = getenv("TLSKIT_TEST_CERTS");
    if (tsan_certs_dir)
        return 0;
    fprintf(stderr, "%s: TLSKIT_TEST_CERTS is not set\n", prog);
    return -1;
}

/* buf = the path of certificate file name. */
static inline void tsan_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tsan_certs_dir, name);
}

/* Set to stop tsan_stats_thread(). */
static atomic_int tsan_stop_stats;

/* pthread_create(..., tsan_stats_thread, engine): read the counters until stopped. */
static inline void *tsan_stats_thread(void *engine)
{
    while (!atomic_load(&tsan_stop_stats)) {
        struct tlskit_engine_stats st;
        tlskit_engine_read_stats(engine, &st);
    }
    return NULL;
}

/* Bytes d[0..n) of the "ping" echo come in after *got of it: 1 when the echo is whole,
 * 0 when more is to come, -1 when they are not what was sent. */
static inline int tsan_ping_step(size_t *got, const void *d, size_t n)
{
    static const char ping[] = "ping";
    if (*got + n > 4 || memcmp(d, ping + *got, n) != 0)
        return -1;
    *got += n;
    return *got == 4;
}

/* Write one message naming round r and connection i, read it all back: 0 when the echo
 * matched, -1 (after a line on stderr) when it did not. */
static inline int tsan_echo_round(tlskit_conn *c, int r, int i)
{
    char msg[64], got[64];
    int len = snprintf(msg, sizeof(msg), "round %d conn %d %p", r, i, (void *)c);
    size_t have = 0;
    if (tlskit_conn_write_all(c, msg, (size_t)len) != 0) {
        fprintf(stderr, "write: %s\n", tlskit_conn_error(c));
        return -1;
    }
    while (have < (size_t)len) {
        ssize_t n = tlskit_conn_read(c, got + have, (size_t)len - have);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    if (have != (size_t)len || memcmp(msg, got, have) != 0) {
        fprintf(stderr, "echo mismatch: %s\n", tlskit_conn_error(c));
        return -1;
    }
    return 0;
}

#endif
