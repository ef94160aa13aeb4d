/* SPDX-License-Identifier: MIT */
/* Small services every room uses: the clock and deadlines, the poll wait, the file
 * reader, the version and the WANT -> poll events mapping. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char version_buf[160];
static pthread_once_t version_once = PTHREAD_ONCE_INIT;

static void version_init(void)
{
    snprintf(version_buf, sizeof(version_buf), "tlskit %s (%s)", TLSKIT_VERSION_STRING,
             OpenSSL_version(OPENSSL_VERSION));
}

const char *tlskit_version(void)
{
    pthread_once(&version_once, version_init);
    return version_buf;
}

short tlskit_want_events(ssize_t ret)
{
    if (ret == TLSKIT_WANT_READ)
        return POLLIN;
    if (ret == TLSKIT_WANT_WRITE)
        return POLLOUT;
    return 0;
}

int64_t tlskit__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tlskit__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t tlskit__deadline_min(int64_t a, int64_t b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    return a < b ? a : b;
}

int64_t tlskit__deadline_in(int64_t ms)
{
    return ms > 0 ? tlskit__now_ms() + ms : 0;
}

int tlskit__wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int timeout = -1;
        if (deadline) {
            int64_t left = deadline - tlskit__now_ms();
            if (left <= 0)
                return 0;
            timeout = left > 86400000 ? 86400000 : (int)left;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, timeout);
        if (r > 0)
            return 1; /* POLLERR/POLLHUP too: the next I/O call reports the reason */
        if (r == 0) {
            if (deadline && tlskit__now_ms() >= deadline)
                return 0;
            continue;
        }
        if (errno != EINTR)
            return -1;
    }
}

#define TK_MAX_FILE (16 * 1024 * 1024)

int tlskit__read_file(struct tlskit__err *err, const char *path, char **out, size_t *outlen)
{
    struct stat st;
    char *buf = NULL;
    size_t used = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        tlskit__err_set_errno(err, TLSKIT_E_FILE, errno, "%s", path);
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        tlskit__err_set_errno(err, TLSKIT_E_FILE, errno, "%s", path);
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        tlskit__err_set_errno(err, TLSKIT_E_FILE, EISDIR, "%s", path);
        goto fail;
    }
    if (st.st_size > TK_MAX_FILE) {
        tlskit__err_set(err, TLSKIT_E_FILE, "%s: file too large (%lld bytes)", path,
                   (long long)st.st_size);
        goto fail;
    }
    size_t cap = (size_t)st.st_size + 1;
    if (cap < 4096)
        cap = 4096;
    buf = malloc(cap);
    if (!buf) {
        tlskit__err_set(err, TLSKIT_E_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (;;) {
        if (used == cap - 1) {
            if (cap > TK_MAX_FILE) {
                tlskit__err_set(err, TLSKIT_E_FILE, "%s: file too large", path);
                goto fail;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                tlskit__err_set(err, TLSKIT_E_NOMEM, "%s: out of memory", path);
                goto fail;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + used, cap - 1 - used);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            tlskit__err_set_errno(err, TLSKIT_E_FILE, errno, "%s", path);
            goto fail;
        }
        used += (size_t)n;
    }
    close(fd);
    buf[used] = '\0';
    *out = buf;
    *outlen = used;
    return 0;
fail:
    free(buf);
    close(fd);
    return -1;
}

/* Secrets (ticket keys, saved sessions): a regular file that only its owner may read,
 * opened without following a FIFO's block, and checked on the descriptor read from. */
int tlskit__read_private_file(struct tlskit__err *err, const char *what, const char *path,
                              int must_own, unsigned char *buf, size_t cap, size_t *outlen)
{
    struct stat st;
    size_t used = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        tlskit__err_set_errno(err, TLSKIT_E_FILE, errno, "%s %s", what, path);
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        tlskit__err_set_errno(err, TLSKIT_E_FILE, errno, "%s %s", what, path);
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        tlskit__err_set(err, TLSKIT_E_FILE, "%s %s: not a regular file%s", what, path,
                        S_ISDIR(st.st_mode) ? " (a directory)" : "");
        goto fail;
    }
    if (must_own && st.st_uid != geteuid()) {
        tlskit__err_set(err, TLSKIT_E_FILE, "%s %s: belongs to another user (uid %lu)", what,
                        path, (unsigned long)st.st_uid);
        goto fail;
    }
    if (st.st_mode & (S_IRGRP | S_IROTH)) {
        tlskit__err_set(err, TLSKIT_E_FILE,
                        "%s %s: readable by group or others (mode %04o; chmod 600 it)", what,
                        path, (unsigned)(st.st_mode & 07777));
        goto fail;
    }
    for (;;) {
        ssize_t n = read(fd, buf + used, cap - used);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            tlskit__err_set_errno(err, TLSKIT_E_FILE, errno, "%s %s", what, path);
            goto fail;
        }
        used += (size_t)n;
        if (used == cap) {
            tlskit__err_set(err, TLSKIT_E_FILE, "%s %s: too long (more than %zu bytes)", what,
                            path, cap - 1);
            goto fail;
        }
    }
    close(fd);
    *outlen = used;
    return 0;
fail:
    close(fd);
    return -1;
}
