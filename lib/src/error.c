/* SPDX-License-Identifier: MIT */
/* Errors: per-object message + class, and the one place that reads OpenSSL's queue. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const struct {
    int code;
    const char *name;
    const char *desc;
} error_table[] = {
#define TK_XX(name, val, desc) {val, "TLSKIT_E_" #name, desc},
    TLSKIT_ERROR_MAP(TK_XX)
#undef TK_XX
};

const char *tlskit_error_name(int code)
{
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++)
        if (error_table[i].code == code)
            return error_table[i].name;
    return "TLSKIT_E_UNKNOWN";
}

const char *tlskit_error_description(int code)
{
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++)
        if (error_table[i].code == code)
            return error_table[i].desc;
    return "unknown error";
}

short tlskit_want_events(ssize_t ret)
{
    if (ret == TLSKIT_WANT_READ)
        return POLLIN;
    if (ret == TLSKIT_WANT_WRITE)
        return POLLOUT;
    return 0;
}

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

void tlskit__err_clear(struct tlskit__err *err)
{
    err->code = TLSKIT_E_NONE;
    if (err->msg)
        err->msg[0] = '\0';
}

void tlskit__err_free(struct tlskit__err *err)
{
    free(err->msg);
    err->msg = NULL;
}

const char *tlskit__err_text(const struct tlskit__err *err)
{
    if (err->msg)
        return err->msg;
    return err->code ? "(out of memory: the error text was lost)" : "";
}

static void err_vset(struct tlskit__err *err, int code, const char *fmt, va_list ap)
{
    err->code = code;
    if (!err->msg && !(err->msg = malloc(TK_ERRLEN)))
        return;
    vsnprintf(err->msg, TK_ERRLEN, fmt, ap);
}

void tlskit__err_set(struct tlskit__err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, code, fmt, ap);
    va_end(ap);
}

static void err_append(struct tlskit__err *err, const char *text)
{
    if (!err->msg)
        return;
    size_t used = strlen(err->msg);
    size_t room = TK_ERRLEN - used;
    if (room > 3) {
        memcpy(err->msg + used, ": ", 2);
        size_t n = strlen(text);
        if (n > room - 3)
            n = room - 3; /* truncate, keeping the NUL */
        memcpy(err->msg + used + 2, text, n);
        err->msg[used + 2 + n] = '\0';
    }
}

void tlskit__err_set_errno(struct tlskit__err *err, int code, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, code, fmt, ap);
    va_end(ap);
    char buf[128];
    err_append(err, strerror_r(errnum, buf, sizeof(buf)));
}

unsigned long tlskit__ssl_errors(char *buf, size_t len)
{
    unsigned long first = 0, e;
    size_t used = 0;
    const char *file, *data;
    int line, flags;

    if (len)
        buf[0] = '\0';
    while ((e = ERR_get_error_all(&file, &line, NULL, &data, &flags)) != 0) {
        if (!first)
            first = e;
        if (!len || used >= len - 1)
            continue; /* keep draining: the queue must be empty afterwards */
        const char *reason = ERR_reason_error_string(e);
        char code[32];
        if (!reason) {
            snprintf(code, sizeof(code), "error %08lX", e);
            reason = code;
        }
        int n = snprintf(buf + used, len - used, "%s%s%s%s", used ? "; " : "", reason,
                         (flags & ERR_TXT_STRING) && data && *data ? " " : "",
                         (flags & ERR_TXT_STRING) && data ? data : "");
        if (n > 0)
            used += (size_t)n;
    }
    return first;
}

void tlskit__err_set_ssl(struct tlskit__err *err, int code, const char *fallback, const char *fmt, ...)
{
    char buf[TK_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, code, fmt, ap);
    va_end(ap);
    if (!tlskit__ssl_errors(buf, sizeof(buf)) || !buf[0])
        snprintf(buf, sizeof(buf), "%s", fallback ? fallback : "unknown TLS error");
    err_append(err, buf);
}

int64_t tlskit__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
