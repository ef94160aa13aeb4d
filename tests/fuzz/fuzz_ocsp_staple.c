/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the OCSP staple loader (lib/src/ocsp.c) — tlskit_config_set_ocsp_staple_mem()
 * with arbitrary bytes, for the fuzz keypair (fz_keypair(): the seeds hold responses
 * for its certificate, so the checks after the DER parser are reached: CertID, status,
 * validity).
 *
 * Input: the bytes, as they are.
 * Invariants: 0 or -1; on 0 no error; on -1 class FILE (not a DER OCSP response), CONFIG
 * (not stapled, and why) or NOMEM, with a message naming "OCSP response (memory)"; the
 * OpenSSL error queue is left empty; the config stays usable (a listener takes it); no
 * leaks (LeakSanitizer).
 */
#include "fuzz_common.h"

#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_deterministic_rand(); /* fz_keypair() is then the seeds' certificate */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t empty[1];
    const char *cert, *key;
    size_t cert_len, key_len;
    fz_keypair(&cert, &cert_len, &key, &key_len);
    tlskit_config *cfg = tlskit_config_new();
    FZ_CHECK(cfg != NULL, "out of memory");
    FZ_CHECK(tlskit_config_set_keypair_mem(cfg, cert, cert_len, key, key_len) == 0, "%s",
             tlskit_config_error(cfg));
    int rc = tlskit_config_set_ocsp_staple_mem(cfg, size ? data : empty, size);
    int code = tlskit_config_error_code(cfg);
    const char *msg = tlskit_config_error(cfg);
    FZ_CHECK(rc == 0 || rc == -1, "returned %d", rc);
    if (rc == 0) {
        FZ_CHECK(code == TLSKIT_E_NONE && msg[0] == '\0', "succeeded with %s: %s",
                 tlskit_error_name(code), msg);
    } else {
        FZ_CHECK(code == TLSKIT_E_FILE || code == TLSKIT_E_CONFIG || code == TLSKIT_E_NOMEM,
                 "failed with %s: %s", tlskit_error_name(code), msg);
        FZ_CHECK(strncmp(msg, "OCSP response (memory)", 22) == 0,
                 "the message does not name what was loaded: %s", msg);
    }
    fz_check_err_queue("tlskit_config_set_ocsp_staple_mem");
    tlskit_listener *l = tlskit_listener_new(cfg);
    FZ_CHECK(l != NULL, "out of memory");
    FZ_CHECK(tlskit_listener_reload(l, cfg) == 0, "the config was refused: %s",
             tlskit_listener_error(l));
    tlskit_listener_free(l);
    tlskit_config_free(cfg);
    return 0;
}
