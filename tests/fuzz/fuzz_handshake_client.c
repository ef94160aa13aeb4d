/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a whole client-role connection (tlskit_conn_wrap_client, handshake, read,
 * echo, close) against a scripted server: the input is the flags byte (fuzz_common.h)
 * and then everything the server sends. Seeds: real server transcripts recorded by
 * gen_seeds.c (they replay to a completed handshake thanks to the deterministic random
 * generator), with TLS 1.2 (the server certificate in clear, so mutations of it reach
 * the verification and certificate-detail code), TLS 1.3, client certificates.
 */
#include "fuzz_common.h"
#include "fuzz_handshake.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_deterministic_rand();
    const char *c, *k;
    size_t cl, kl;
    fz_keypair(&c, &cl, &k, &kl);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_handshake_run(0, data, size);
    return 0;
}
