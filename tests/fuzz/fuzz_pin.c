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

static int ref_pins(const char *t)
{
    size_t n = 0;
    for (;;) {
        const char *end = strchr(t, ';');
        size_t len = end ? (size_t)(end - t) : strlen(t);
        if (!fz_ref_pin(t, len) || ++n > 64)
            return 0;
        if (!end)
            return 1;
        t = end + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    tlskit_config *cfg = tlskit_config_new();
    FZ_CHECK(cfg != NULL, "tlskit_config_new");
    int want = ref_pins(text);
    for (int round = 0; round < 2; round++)
        fz_check_verdict(cfg, tlskit_config_set_pinned_pubkeys(cfg, text), want, text, "pin");
    tlskit_config_free(cfg);
    free(text);
    return 0;
}
