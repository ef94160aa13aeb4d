/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the keyword and number parsers of the command line —
 * cli_parse_seconds() and cli_parse_ulong() (apps/common/cli.c) and
 * tlskit_protocol_parse() (the library) — each checked against a simple reference
 * implementation written from its documented contract.
 *
 * Input: [0] [1] pick cli_parse_ulong's min and max from a table; the rest (up to the
 * first NUL) is the text given to all three parsers.
 */
#include "fuzz_common.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

static const unsigned long bounds[16] = {
    0, 1, 2, 9, 10, 1024, 65535, 65536, 64ul << 20, 1000000000, 4294967295ul,
    4294967296ul, ULONG_MAX / 10, ULONG_MAX / 10 + 1, ULONG_MAX - 1, ULONG_MAX,
};

/* Reference for cli_parse_seconds: DIGITS[.DIGITS] to ms, sub-ms remainders rounded up,
 * at most INT32_MAX ms. Works on the digits as text, so it cannot overflow. */
static int ref_seconds(const char *t, int64_t *ms)
{
    size_t w = strspn(t, "0123456789");
    if (w == 0)
        return -1;
    const char *frac = "";
    size_t f = 0;
    if (t[w] == '.') {
        frac = t + w + 1;
        f = strspn(frac, "0123456789");
        if (f == 0)
            return -1;
    }
    if (t[w + (t[w] == '.' ? 1 + f : 0)] != '\0')
        return -1;
    while (w > 1 && *t == '0') { /* leading zeros */
        t++;
        w--;
    }
    if (w > 7) /* more than 9999999 s: too large whatever follows */
        return -1;
    int64_t whole = 0;
    for (size_t i = 0; i < w; i++)
        whole = whole * 10 + (t[i] - '0');
    int64_t milli = 0;
    for (size_t i = 0; i < 3; i++)
        milli = milli * 10 + (i < f ? frac[i] - '0' : 0);
    int rest = 0;
    for (size_t i = 3; i < f; i++)
        rest |= frac[i] != '0';
    int64_t total = whole * 1000 + milli + rest;
    if (whole > CLI_SECONDS_MAX || total > INT32_MAX)
        return -1;
    *ms = total;
    return 0;
}

static int ref_ulong(const char *t, unsigned long min, unsigned long max, unsigned long *out)
{
    size_t n = strspn(t, "0123456789");
    if (n == 0 || t[n] != '\0')
        return -1;
    while (n > 1 && *t == '0') {
        t++;
        n--;
    }
    char umax[32];
    int ml = snprintf(umax, sizeof(umax), "%lu", ULONG_MAX);
    if (n > (size_t)ml || (n == (size_t)ml && strcmp(t, umax) > 0))
        return -1; /* does not fit */
    unsigned long v = strtoul(t, NULL, 10);
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int ref_protocol(const char *t)
{
    if (strncasecmp(t, "tlsv", 4) == 0)
        t += 4;
    else if (strncasecmp(t, "tls", 3) == 0)
        t += 3;
    if (!strcmp(t, "1.2") || !strcmp(t, "1_2"))
        return TLSKIT_TLS1_2;
    if (!strcmp(t, "1.3") || !strcmp(t, "1_3"))
        return TLSKIT_TLS1_3;
    return -1;
}

static void check_seconds(const char *text)
{
    int64_t ms = -7, ref = -7;
    int rc = cli_parse_seconds(text, &ms);
    int rrc = ref_seconds(text, &ref);
    FZ_CHECK(rc == 0 || rc == -1, "cli_parse_seconds returned %d", rc);
    FZ_CHECK(rc == rrc, "cli_parse_seconds(\"%s\") = %d, reference %d", text, rc, rrc);
    if (rc != 0) {
        FZ_CHECK(ms == -7, "cli_parse_seconds wrote its result on failure");
        return;
    }
    FZ_CHECK(ms == ref, "cli_parse_seconds(\"%s\") = %lld ms, reference %lld", text,
             (long long)ms, (long long)ref);
    FZ_CHECK(ms >= 0 && ms <= INT32_MAX, "%lld ms out of range", (long long)ms);
    FZ_CHECK((ms > 0) == (strpbrk(text, "123456789") != NULL),
             "\"%s\" became %lld ms", text, (long long)ms);
    if (strchr(text, '.') == NULL) /* whole seconds: exactly value * 1000 */
        FZ_CHECK(ms == strtoll(text, NULL, 10) * 1000, "\"%s\" is not %lld ms", text,
                 (long long)ms);
    char again[32];
    int64_t ms2 = -1;
    snprintf(again, sizeof(again), "%lld.%03lld", (long long)(ms / 1000),
             (long long)(ms % 1000));
    FZ_CHECK(cli_parse_seconds(again, &ms2) == 0 && ms2 == ms, "round trip of %lld ms "
             "via \"%s\" gave %lld", (long long)ms, again, (long long)ms2);
}

static void check_ulong(const char *text, unsigned long min, unsigned long max)
{
    unsigned long v = 7, ref = 7;
    int rc = cli_parse_ulong(text, min, max, &v);
    int rrc = ref_ulong(text, min, max, &ref);
    FZ_CHECK(rc == 0 || rc == -1, "cli_parse_ulong returned %d", rc);
    FZ_CHECK(rc == rrc, "cli_parse_ulong(\"%s\", %lu, %lu) = %d, reference %d", text, min,
             max, rc, rrc);
    if (rc == 0)
        FZ_CHECK(v == ref && v >= min && v <= max, "cli_parse_ulong(\"%s\") = %lu, "
                 "reference %lu", text, v, ref);
    else
        FZ_CHECK(v == 7, "cli_parse_ulong wrote its result on failure");
}

static void check_protocol(const char *text)
{
    int v = tlskit_protocol_parse(text);
    FZ_CHECK(v == -1 || v == TLSKIT_TLS1_2 || v == TLSKIT_TLS1_3,
             "tlskit_protocol_parse returned %d", v);
    FZ_CHECK(v == ref_protocol(text), "tlskit_protocol_parse(\"%s\") = %d, reference %d",
             text, v, ref_protocol(text));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_input in = {data, size};
    unsigned long min = bounds[fz_take_u8(&in) & 15];
    unsigned long max = bounds[fz_take_u8(&in) & 15];
    char *text = malloc(in.n + 1);
    FZ_CHECK(text != NULL, "out of memory");
    memcpy(text, in.p, in.n);
    text[in.n] = '\0';

    check_seconds(text);
    check_ulong(text, min, max);
    check_protocol(text);
    FZ_CHECK(tlskit_protocol_parse(NULL) == -1, "tlskit_protocol_parse(NULL)");
    free(text);
    return 0;
}
