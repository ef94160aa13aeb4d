/* SPDX-License-Identifier: MIT */
/*
 * json: the one small JSON writer of the apps (tlsclient --json, tlsserver --log-format
 * json). Builds one object on one line in a growing buffer; commas and nesting are the
 * writer's business, so a caller only says what comes next.
 *
 * Strings may hold any bytes (certificate subjects hold what their issuer put there):
 * '"', '\', and control characters are escaped, valid UTF-8 is kept as it is, and each
 * byte that does not start a valid UTF-8 sequence (overlong forms and surrogates
 * included) becomes U+FFFD, so the output is always valid JSON in valid UTF-8.
 */
#ifndef TLSKIT_APPS_JSON_H
#define TLSKIT_APPS_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 16

struct json {
    char *buf;
    size_t len, cap;
    int depth;
    unsigned char count[JSON_MAX_DEPTH];  /* members so far at each level (0 or "some") */
    unsigned char object[JSON_MAX_DEPTH]; /* each level: 1 object, 0 array */
    int failed;                          /* out of memory, or nesting misused */
};

void json_init(struct json *j);
void json_free(struct json *j);

/* Every call takes the member's key: inside an object it is required, inside an array
 * (and for the top-level value) pass NULL. */
void json_object_begin(struct json *j, const char *key);
void json_object_end(struct json *j);
void json_array_begin(struct json *j, const char *key);
void json_array_end(struct json *j);
/* NULL writes null. */
void json_string(struct json *j, const char *key, const char *value);
/* len bytes of value (may hold NUL bytes, written as \u0000). */
void json_string_len(struct json *j, const char *key, const char *value, size_t len);
void json_int(struct json *j, const char *key, int64_t value);
void json_bool(struct json *j, const char *key, int value);
void json_null(struct json *j, const char *key);
/* Microseconds as milliseconds with three decimals ("1.234"); negative writes null
 * (a phase that did not run). */
void json_ms(struct json *j, const char *key, int64_t us);

/* After the top-level value: a newline, for one object per line. */
void json_newline(struct json *j);

/* The text so far (NUL-terminated), or NULL after a failure (out of memory, a key given
 * inside an array or missing inside an object, an end that does not match its begin,
 * nesting deeper than JSON_MAX_DEPTH, a second top-level value). */
const char *json_text(const struct json *j);

#endif /* TLSKIT_APPS_JSON_H */
