/* SPDX-License-Identifier: MIT */
/* The apps' JSON writer (json.h). */
#include "json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void json_init(struct json *j)
{
    memset(j, 0, sizeof(*j));
}

void json_free(struct json *j)
{
    free(j->buf);
    memset(j, 0, sizeof(*j));
}

static void put(struct json *j, const char *s, size_t n)
{
    if (j->failed)
        return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->len + n + 1)
            cap *= 2;
        char *nb = realloc(j->buf, cap);
        if (nb == NULL) {
            j->failed = 1;
            return;
        }
        j->buf = nb;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void puts_(struct json *j, const char *s)
{
    put(j, s, strlen(s));
}

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0 (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static void put_escaped(struct json *j, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    put(j, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t run = 0;
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            while (i + run < n && s[i + run] >= 0x20 && s[i + run] < 0x7f &&
                   s[i + run] != '"' && s[i + run] != '\\')
                run++;
            put(j, str + i, run);
            i += run;
            continue;
        }
        if (c >= 0x80) {
            size_t u = utf8_len(s + i, n - i);
            if (u > 0)
                put(j, str + i, u);
            else
                puts_(j, "\\ufffd");
            i += u > 0 ? u : 1;
            continue;
        }
        char esc[8];
        switch (c) {
        case '"': puts_(j, "\\\""); break;
        case '\\': puts_(j, "\\\\"); break;
        case '\b': puts_(j, "\\b"); break;
        case '\f': puts_(j, "\\f"); break;
        case '\n': puts_(j, "\\n"); break;
        case '\r': puts_(j, "\\r"); break;
        case '\t': puts_(j, "\\t"); break;
        default: /* other controls, and DEL (legal raw, but invisible in a terminal) */
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            puts_(j, esc);
        }
        i++;
    }
    put(j, "\"", 1);
}

/* Before a value: the comma, and the key when inside an object. A key inside an array,
 * or none inside an object, is a caller's mistake: the writer fails rather than emit
 * something that does not parse. */
static void member(struct json *j, const char *key)
{
    if (j->failed)
        return;
    int in_object = j->depth > 0 && j->object[j->depth - 1];
    if ((key != NULL) != in_object || (j->depth == 0 && j->len > 0)) {
        j->failed = 1; /* a key where none belongs, or a second top-level value */
        return;
    }
    if (j->depth > 0 && j->count[j->depth - 1])
        put(j, ",", 1);
    if (j->depth > 0)
        j->count[j->depth - 1] = 1;
    if (key != NULL) {
        put_escaped(j, key, strlen(key));
        put(j, ":", 1);
    }
}

static void open_(struct json *j, const char *key, const char *brace)
{
    member(j, key);
    if (j->depth == JSON_MAX_DEPTH) {
        j->failed = 1;
        return;
    }
    put(j, brace, 1);
    j->object[j->depth] = *brace == '{';
    j->count[j->depth++] = 0;
}

static void close_(struct json *j, const char *brace)
{
    if (j->depth == 0) {
        j->failed = 1;
        return;
    }
    if (j->object[j->depth - 1] != (*brace == '}')) {
        j->failed = 1;
        return;
    }
    j->depth--;
    put(j, brace, 1);
}

void json_object_begin(struct json *j, const char *key)
{
    open_(j, key, "{");
}

void json_object_end(struct json *j)
{
    close_(j, "}");
}

void json_array_begin(struct json *j, const char *key)
{
    open_(j, key, "[");
}

void json_array_end(struct json *j)
{
    close_(j, "]");
}

void json_string_len(struct json *j, const char *key, const char *value, size_t len)
{
    member(j, key);
    put_escaped(j, value, len);
}

void json_string(struct json *j, const char *key, const char *value)
{
    if (value == NULL)
        json_null(j, key);
    else
        json_string_len(j, key, value, strlen(value));
}

void json_int(struct json *j, const char *key, int64_t value)
{
    char num[32];
    member(j, key);
    snprintf(num, sizeof(num), "%" PRId64, value);
    puts_(j, num);
}

void json_bool(struct json *j, const char *key, int value)
{
    member(j, key);
    puts_(j, value ? "true" : "false");
}

void json_null(struct json *j, const char *key)
{
    member(j, key);
    puts_(j, "null");
}

void json_ms(struct json *j, const char *key, int64_t us)
{
    char num[40];
    if (us < 0) {
        json_null(j, key);
        return;
    }
    member(j, key);
    snprintf(num, sizeof(num), "%" PRId64 ".%03" PRId64, us / 1000, us % 1000);
    puts_(j, num);
}

void json_newline(struct json *j)
{
    if (j->depth != 0 || j->len == 0)
        j->failed = 1;
    put(j, "\n", 1);
}

const char *json_text(const struct json *j)
{
    if (j->failed)
        return NULL;
    return j->buf != NULL ? j->buf : "";
}
