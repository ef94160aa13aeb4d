/* SPDX-License-Identifier: MIT */
/* tlsclient's parts: the command line (options.c), main (main.c: configure, connect,
 * clean up), and the connection once it is up (relay.c). */
#ifndef TLSCLIENT_CLIENT_H
#define TLSCLIENT_CLIENT_H

#include <tlskit/tlskit.h>

/* Log c's error and return the exit code for it (DESIGN.md's contract): a failure after
 * the handshake is "connection broke" where the same class before it is "handshake
 * failed". */
int client_failed(const tlskit_conn *c, int after_handshake);

/* -v: the connection and the server's certificate, on stderr. */
void client_summary(const tlskit_conn *c);
/* --showcerts: the server's chain as PEM on stderr. */
void client_showcerts(const tlskit_conn *c);

/* Relay stdin to c and c to stdout until the server closes (c is switched to
 * non-blocking). The exit code. */
int client_relay(tlskit_conn *c);

#endif
