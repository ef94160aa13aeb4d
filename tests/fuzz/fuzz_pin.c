/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the public-key pin list parser, tlskit_config_set_pinned_pubkeys()
 * (lib/src/verify.c), checked against a reference written from its documented contract:
 * "sha256//BASE64[;sha256//BASE64...]", 1 to 64 entries, each the canonical base64 of 32
 * bytes (43 characters, the last one with its 2 low bits zero, then one '=').
 *
 * Input: the text (up to the first NUL).
 * Invariants: accepted exactly when the reference accepts; a refusal is TLSKIT_E_INVALID
 * (or NOMEM) with a message that says "pin" and leaves the config usable; a second call
 * with the same text gives the same verdict; no leaks.
 */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int ref_one(const char *s, size_t len)
{
    if (len != 8 + 44 || memcmp(s, "sha256//", 8) != 0)
        return 0;
    s += 8;
    for (size_t i = 0; i < 43; i++)
        if (s[i] == '\0' || !strchr(b64, s[i]))
            return 0;
    /* 43 characters carry 258 bits: the last one holds 4 bits of the hash and 2 zero
     * bits. */
    size_t v = (size_t)(strchr(b64, s[42]) - b64);
    return (v & 3) == 0 && s[43] == '=';
}

static int ref_pins(const char *t)
{
    size_t n = 0;
    for (;;) {
        const char *end = strchr(t, ';');
        size_t len = end ? (size_t)(end - t) : strlen(t);
        if (!ref_one(t, len) || ++n > 64)
            return 0;
        if (!end)
            return 1;
        t = end + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    FZ_CHECK(text != NULL, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    tlskit_config *cfg = tlskit_config_new();
    FZ_CHECK(cfg != NULL, "tlskit_config_new");
    int want = ref_pins(text);
    for (int round = 0; round < 2; round++) {
        int rc = tlskit_config_set_pinned_pubkeys(cfg, text);
        int code = tlskit_config_error_code(cfg);
        if (rc == -1 && code == TLSKIT_E_NOMEM)
            continue;
        FZ_CHECK(rc == (want ? 0 : -1), "'%s': library %d, reference %d (%s)", text, rc, want,
                 tlskit_config_error(cfg));
        if (rc == 0) {
            FZ_CHECK(code == TLSKIT_E_NONE, "success with an error class %d", code);
        } else {
            FZ_CHECK(code == TLSKIT_E_INVALID, "refusal class %d", code);
            FZ_CHECK(strstr(tlskit_config_error(cfg), "pin") != NULL, "message: %s",
                     tlskit_config_error(cfg));
        }
    }
    tlskit_config_free(cfg);
    free(text);
    return 0;
}
