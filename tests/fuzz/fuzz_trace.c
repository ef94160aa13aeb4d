/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the handshake trace's message walker (lib/src/trace.c) through
 * tlskit_trace_format(): the ClientHello / ServerHello / HelloRetryRequest /
 * EncryptedExtensions extension walker (SNI, ALPN, supported_versions, key_share,
 * supported_groups), Certificate in both layouts, ServerKeyExchange, NewSessionTicket,
 * alerts. OpenSSL hands these bytes to the trace before it checks them, so a hostile
 * peer chooses all of them.
 *
 * Input: [flags] then the message. flags bit 0: sent; bits 1-2: record type (0
 * ChangeCipherSpec, 1 alert, 2 handshake, 3 application data); bit 3: TLS 1.3 layout;
 * bits 4-7: output size (0: TLSKIT_TRACE_LINE_MAX, else 16 per step).
 * Invariants: the line fits the buffer with its NUL, its length is returned, it is
 * printable ASCII and starts with the direction; the message is read only within its
 * length (it is copied to a buffer of exactly that size, so ASan sees any over-read).
 */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0];
    static const int types[] = {20, 21, 22, 23};
    int sent = flags & 1, type = types[(flags >> 1) & 3];
    int version = (flags & 8) ? TLSKIT_TLS1_3 : TLSKIT_TLS1_2;
    size_t outlen = (flags >> 4) ? (flags >> 4) * 16u : TLSKIT_TRACE_LINE_MAX;
    size_t len = size - 1;
    unsigned char *msg = malloc(len ? len : 1);
    char *out = malloc(outlen + 1);
    FZ_CHECK(msg != NULL && out != NULL, "out of memory");
    memcpy(msg, data + 1, len);
    out[outlen] = 'Z'; /* a canary one past the buffer */

    size_t n = tlskit_trace_format(out, outlen, sent, type, version, msg, len);
    FZ_CHECK(n < outlen, "length %zu for a buffer of %zu", n, outlen);
    FZ_CHECK(strlen(out) == n, "returned %zu, line is %zu", n, strlen(out));
    FZ_CHECK(out[outlen] == 'Z', "wrote past the buffer");
    for (size_t i = 0; i < n; i++)
        FZ_CHECK(out[i] >= 0x20 && out[i] <= 0x7e, "byte 0x%02x at %zu: \"%s\"",
                 (unsigned char)out[i], i, out);
    if (outlen >= 3)
        FZ_CHECK(strncmp(out, sent ? "> " : "< ", 2) == 0, "direction: \"%s\"", out);
    free(msg);
    free(out);
    return 0;
}
