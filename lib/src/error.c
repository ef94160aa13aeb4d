/* SPDX-License-Identifier: MIT */
/* Errors: per-object message + class, and the one place that reads OpenSSL's queue. */
#include "internal.h"

#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int tlskit__ssl_oom(void)
{
    int oom = 0;
    for (unsigned long e; (e = ERR_get_error()) != 0;)
        if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
            oom = 1;
    return oom;
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
