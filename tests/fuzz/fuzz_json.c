/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the apps' JSON writer (apps/common/json.c), which writes peer-supplied text
 * (certificate subjects, SANs, error messages) into tlsclient --json and tlsserver
 * --log-format json. The input is written as a key and as a value; the output must be
 * exactly {"KEY":"VALUE"} where both strings, decoded by a strict JSON string reader
 * written here from RFC 8259, give the input with every byte that does not start valid
 * UTF-8 (RFC 3629's syntax, written here as its table of byte ranges) replaced by U+FFFD.
 * No raw control character may appear in the output.
 *
 * Input: the bytes of the string (NUL bytes included).
 */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"

/* RFC 3629 section 4, UTF8-2 / UTF8-3 / UTF8-4: the length of the valid sequence at s. */
static size_t ref_utf8(const unsigned char *s, size_t n)
{
    static const struct {
        unsigned char lead_lo, lead_hi, second_lo, second_hi, len;
    } rows[] = {
        {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3}, {0xe1, 0xec, 0x80, 0xbf, 3},
        {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3}, {0xf0, 0xf0, 0x90, 0xbf, 4},
        {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        if (s[0] < rows[r].lead_lo || s[0] > rows[r].lead_hi)
            continue;
        size_t len = rows[r].len;
        if (n < len || s[1] < rows[r].second_lo || s[1] > rows[r].second_hi)
            return 0;
        for (size_t i = 2; i < len; i++)
            if (s[i] < 0x80 || s[i] > 0xbf)
                return 0;
        return len;
    }
    return 0;
}

/* What the writer promises to keep of in: valid UTF-8 as is, other bytes >= 0x80 as
 * U+FFFD (EF BF BD). */
static size_t ref_expected(const unsigned char *in, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t u = in[i] < 0x80 ? 1 : ref_utf8(in + i, n - i);
        if (u == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, in + i, u);
            o += u;
            i += u;
        }
    }
    return o;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A JSON string at t[*pos] (RFC 8259 section 7), decoded into out: its length. Fails the
 * run on anything a strict reader would refuse. */
static size_t read_string(const char *t, size_t tlen, size_t *pos, unsigned char *out)
{
    size_t o = 0, p = *pos;
    FZ_CHECK(p < tlen && t[p] == '"', "no string at %zu", p);
    for (p++;;) {
        FZ_CHECK(p < tlen, "unterminated string");
        unsigned char c = (unsigned char)t[p];
        FZ_CHECK(c >= 0x20, "raw control byte 0x%02x at %zu", c, p);
        if (c == '"')
            break;
        if (c != '\\') {
            out[o++] = c;
            p++;
            continue;
        }
        FZ_CHECK(p + 1 < tlen, "escape at the end");
        char e = t[p + 1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e != '\0' && simple != NULL) {
            out[o++] = (unsigned char)"\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            p += 2;
            continue;
        }
        FZ_CHECK(e == 'u' && p + 5 < tlen, "bad escape \\%c", e);
        unsigned cp = 0;
        for (int i = 2; i < 6; i++) {
            int h = hexval(t[p + i]);
            FZ_CHECK(h >= 0, "bad \\u escape");
            cp = cp << 4 | (unsigned)h;
        }
        FZ_CHECK(cp < 0xd800 || cp > 0xdfff, "a lone surrogate escape");
        if (cp < 0x80) {
            out[o++] = (unsigned char)cp;
        } else if (cp < 0x800) {
            out[o++] = (unsigned char)(0xc0 | cp >> 6);
            out[o++] = (unsigned char)(0x80 | (cp & 0x3f));
        } else {
            out[o++] = (unsigned char)(0xe0 | cp >> 12);
            out[o++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
            out[o++] = (unsigned char)(0x80 | (cp & 0x3f));
        }
        p += 6;
    }
    *pos = p + 1;
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    /* The key is a C string: up to the first NUL. */
    size_t keylen = strnlen((const char *)data, size);
    char *key = malloc(keylen + 1);
    unsigned char *want_key = malloc(keylen * 3 + 1), *want_val = malloc(size * 3 + 1);
    unsigned char *got = malloc(size * 6 + 16);
    FZ_CHECK(key && want_key && want_val && got, "out of memory");
    memcpy(key, data, keylen);
    key[keylen] = '\0';

    struct json j;
    json_init(&j);
    json_object_begin(&j, NULL);
    json_string_len(&j, key, (const char *)data, size);
    json_object_end(&j);
    const char *t = json_text(&j);
    FZ_CHECK(t != NULL, "the writer failed");
    size_t tlen = strlen(t), pos = 0;
    FZ_CHECK(tlen > 0 && t[0] == '{', "no object");
    pos = 1;
    size_t n = read_string(t, tlen, &pos, got);
    size_t want = ref_expected((const unsigned char *)key, keylen, want_key);
    FZ_CHECK(n == want && memcmp(got, want_key, n) == 0, "the key does not read back");
    FZ_CHECK(pos < tlen && t[pos] == ':', "no colon");
    pos++;
    n = read_string(t, tlen, &pos, got);
    want = ref_expected(data, size, want_val);
    FZ_CHECK(n == want && memcmp(got, want_val, n) == 0, "the value does not read back");
    FZ_CHECK(pos + 1 == tlen && t[pos] == '}', "trailing bytes after the string");
    json_free(&j);
    free(key);
    free(want_key);
    free(want_val);
    free(got);
    return 0;
}
