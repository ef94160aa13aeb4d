/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the ALPN list parser (lib/src/alpn.c) through its two public doors,
 * tlskit_alpn_check() and tlskit_config_set_alpn(), checked against a reference written
 * from the documented contract: comma-separated names of 1 to 255 bytes of printable
 * ASCII (0x21..0x7e), none listed twice, the list not empty.
 *
 * Input: the list, up to the first NUL (at most 4096 bytes are used).
 * Invariants: both doors agree with the reference; a refusal has a reason and leaves a
 * config error of class TLSKIT_E_INVALID that quotes it; an accepted list with its first
 * name appended again is refused as "listed twice".
 */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUT 4096

static int ref_check(const char *list)
{
    size_t len = strlen(list);
    if (len == 0)
        return -1;
    for (size_t start = 0; start <= len;) {
        size_t n = 0;
        while (start + n < len && list[start + n] != ',')
            n++;
        if (n == 0 || n > 255)
            return -1;
        for (size_t i = start; i < start + n; i++)
            if ((unsigned char)list[i] < 0x21 || (unsigned char)list[i] > 0x7e)
                return -1;
        for (size_t p = 0; p < start;) {
            size_t m = 0;
            while (list[p + m] != ',')
                m++;
            if (m == n && memcmp(list + p, list + start, n) == 0)
                return -1;
            p += m + 1;
        }
        start += n + 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = 0;
    while (len < size && len < MAX_INPUT && data[len] != 0)
        len++;
    char *list = malloc(len + 1);
    FZ_CHECK(list != NULL, "out of memory");
    memcpy(list, data, len);
    list[len] = '\0';

    char why[160] = "";
    int got = tlskit_alpn_check(list, why, sizeof why);
    int want = ref_check(list);
    FZ_CHECK(got == want, "check %d, reference %d for \"%.60s\" (%s)", got, want, list, why);
    FZ_CHECK(got == 0 ? why[0] == '\0' : why[0] != '\0', "reason \"%s\"", why);

    tlskit_config *cfg = tlskit_config_new();
    FZ_CHECK(cfg != NULL, "out of memory");
    int set = tlskit_config_set_alpn(cfg, list);
    if (len == 0) {
        FZ_CHECK(set == 0, "\"\" must turn ALPN off: %s", tlskit_config_error(cfg));
    } else {
        FZ_CHECK(set == got, "set_alpn %d, check %d for \"%.60s\"", set, got, list);
        if (set != 0) {
            FZ_CHECK(tlskit_config_error_code(cfg) == TLSKIT_E_INVALID, "class %d",
                     tlskit_config_error_code(cfg));
            FZ_CHECK(strstr(tlskit_config_error(cfg), why) != NULL, "\"%s\" lacks \"%s\"",
                     tlskit_config_error(cfg), why);
        }
    }
    tlskit_config_free(cfg);

    if (got == 0) {
        size_t first = strcspn(list, ",");
        char *twice = malloc(len + first + 2);
        FZ_CHECK(twice != NULL, "out of memory");
        memcpy(twice, list, len);
        twice[len] = ',';
        memcpy(twice + len + 1, list, first);
        twice[len + 1 + first] = '\0';
        FZ_CHECK(tlskit_alpn_check(twice, why, sizeof why) == -1 && strstr(why, "twice"),
                 "\"%.60s\" accepted with its first name twice (%s)", twice, why);
        free(twice);
    }
    free(list);
    return 0;
}
