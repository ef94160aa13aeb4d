/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the client-identity parser of the allow-list,
 * tlskit_config_add_allowed_client() (lib/src/verify.c), checked against a reference
 * written from its documented contract: "dns:NAME", "uri:URI", "email:ADDR", "cn:NAME" or
 * "spki:sha256//BASE64"; values 1 to 255 printable ASCII characters (no space but inside
 * a CN); a DNS name of letters, digits, '.', '-', '_', '*'; a URI with a ':'; an address
 * with one '@' and text on both sides; spki a canonical pin.
 *
 * Input: the text (up to the first NUL).
 * Invariants: accepted exactly when the reference accepts; a refusal is TLSKIT_E_INVALID
 * with a message naming the client identity; the 257th identity is refused; no leaks.
 */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

static int ref_identity(const char *t)
{
    static const char *const kinds[] = {"dns:", "uri:", "email:", "cn:"};
    if (strncmp(t, "spki:", 5) == 0)
        return fz_ref_pin(t + 5, strlen(t + 5));
    for (int k = 0; k < 4; k++) {
        size_t plen = strlen(kinds[k]);
        if (strncmp(t, kinds[k], plen) != 0)
            continue;
        const char *v = t + plen;
        size_t len = strlen(v);
        if (len == 0 || len > 255)
            return 0;
        for (size_t i = 0; i < len; i++)
            if (v[i] < 0x21 || v[i] > 0x7e)
                if (!(k == 3 && v[i] == ' ' && i > 0 && i + 1 < len))
                    return 0;
        switch (k) {
        case 0:
            for (size_t i = 0; i < len; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_*",
                            v[i]))
                    return 0;
            return 1;
        case 1:
            return strchr(v, ':') != NULL;
        case 2: {
            const char *at = strchr(v, '@');
            return at && at != v && at[1] && !strchr(at + 1, '@');
        }
        default:
            return 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_text(data, size);
    tlskit_config *cfg = tlskit_config_new();
    FZ_CHECK(cfg != NULL, "tlskit_config_new");
    int rc = tlskit_config_add_allowed_client(cfg, text);
    fz_check_verdict(cfg, rc, ref_identity(text), text, "client identit");
    if (rc == 0 && size < 64) { /* the list's bound, on short inputs only (speed) */
        int n = 1;
        while (tlskit_config_add_allowed_client(cfg, text) == 0)
            n++;
        FZ_CHECK(n == 256, "%d identities accepted", n);
    }
    tlskit_config_free(cfg);
    free(text);
    return 0;
}
