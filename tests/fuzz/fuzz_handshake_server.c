/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a whole server-role connection (tlskit_conn_wrap_server, handshake, read,
 * echo, close) against a scripted client: the input is the flags byte (fuzz_common.h)
 * and then everything the client sends. Seeds: real client transcripts recorded by
 * gen_seeds.c (they replay to a completed handshake thanks to the deterministic random
 * generator), plain HTTP, an SSLv2-format hello and the like.
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
    fz_handshake_run(1, data, size);
    return 0;
}
