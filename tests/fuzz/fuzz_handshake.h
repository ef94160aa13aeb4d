/* SPDX-License-Identifier: MIT */
/* The whole-connection driver shared by fuzz_handshake_server.c and
 * fuzz_handshake_client.c (fuzz_handshake.c). */
#ifndef TLSKIT_FUZZ_HANDSHAKE_H
#define TLSKIT_FUZZ_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

/* Run one connection in the server (server = 1) or client role over a socketpair whose
 * other end has already sent the input (after its flags byte) and closed for writing. */
void fz_handshake_run(int server, const uint8_t *data, size_t size);

#endif
