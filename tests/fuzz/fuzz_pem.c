/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: certificate, key and CRL loading from memory —
 * tlskit_config_set_keypair_mem(), tlskit_config_add_ca_mem() and
 * tlskit_config_add_crl_mem() with arbitrary bytes.
 *
 * Input: [0] bit 0 skip the keypair call, bit 1 skip the CA call, bit 2 CA before
 * keypair, bit 3 also the CRL call; [1..2] little-endian length of the certificate part
 * (taken modulo the rest); then the certificate bytes and the key bytes. The CA and CRL
 * calls get the whole rest.
 * Invariants: 0 or -1; on 0 no error (class NONE, message ""); on -1 a class among
 * INVALID, NOMEM, FILE and CONFIG and a message naming what was loaded; the OpenSSL
 * error queue is left empty; a loaded keypair makes a config a listener accepts; no leaks
 * (LeakSanitizer).
 */
#include "fuzz_common.h"

#include <string.h>

static void check_result(tlskit_config *cfg, int rc, const char *call, const char *label)
{
    int code = tlskit_config_error_code(cfg);
    const char *msg = tlskit_config_error(cfg);
    FZ_CHECK(rc == 0 || rc == -1, "%s returned %d", call, rc);
    FZ_CHECK(msg != NULL, "%s: NULL message", call);
    if (rc == 0) {
        FZ_CHECK(code == TLSKIT_E_NONE && msg[0] == '\0', "%s succeeded with error %s: %s",
                 call, tlskit_error_name(code), msg);
    } else {
        FZ_CHECK(code == TLSKIT_E_INVALID || code == TLSKIT_E_NOMEM ||
                     code == TLSKIT_E_FILE || code == TLSKIT_E_CONFIG,
                 "%s failed with class %d (%s): %s", call, code, tlskit_error_name(code), msg);
        FZ_CHECK(msg[0] != '\0', "%s failed without a message", call);
        FZ_CHECK(strncmp(msg, label, strlen(label)) == 0 ||
                     strncmp(msg, "private key (memory)", 20) == 0,
                 "%s: message does not name what was loaded: %s", call, msg);
    }
    fz_check_err_queue(call);
}

static int keypair(tlskit_config *cfg, const uint8_t *cert, size_t cert_len,
                   const uint8_t *key, size_t key_len)
{
    int rc = tlskit_config_set_keypair_mem(cfg, cert, cert_len, key, key_len);
    check_result(cfg, rc, "tlskit_config_set_keypair_mem", "certificate (memory)");
    return rc;
}

/* Last: a listener freezes the config, so no setter may follow. */
static void listener_accepts(tlskit_config *cfg)
{
    tlskit_listener *l = tlskit_listener_new(cfg);
    FZ_CHECK(l != NULL, "out of memory");
    FZ_CHECK(tlskit_listener_reload(l, cfg) == 0, "a config with a keypair was "
             "refused: %s", tlskit_listener_error(l));
    tlskit_listener_free(l);
}

static void ca(tlskit_config *cfg, const uint8_t *data, size_t len)
{
    int rc = tlskit_config_add_ca_mem(cfg, data, len);
    check_result(cfg, rc, "tlskit_config_add_ca_mem", "CA (memory)");
}

static void crl(tlskit_config *cfg, const uint8_t *data, size_t len)
{
    int rc = tlskit_config_add_crl_mem(cfg, data, len);
    check_result(cfg, rc, "tlskit_config_add_crl_mem", "CRL (memory)");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_input in = {data, size};
    unsigned flags = fz_take_u8(&in);
    size_t cert_len = fz_take_u16(&in);
    cert_len = in.n ? cert_len % (in.n + 1) : 0;
    /* Never NULL pointers: those are a separate, documented INVALID case. */
    static const uint8_t empty[1];
    const uint8_t *cert = in.n ? in.p : empty;
    const uint8_t *key = in.n ? in.p + cert_len : empty;
    size_t key_len = in.n - cert_len;

    tlskit_config *cfg = tlskit_config_new();
    FZ_CHECK(cfg != NULL, "out of memory");
    if ((flags & 4) && !(flags & 2))
        ca(cfg, cert, in.n);
    int have_keypair = !(flags & 1) && keypair(cfg, cert, cert_len, key, key_len) == 0;
    if (!(flags & 4) && !(flags & 2))
        ca(cfg, cert, in.n);
    if (flags & 8)
        crl(cfg, cert, in.n);
    if (have_keypair)
        listener_accepts(cfg);
    tlskit_config_free(cfg);
    return 0;
}
