/* SPDX-License-Identifier: MIT */
/* tlsclient's parts: the command line (options.c), main (main.c: configure, connect,
 * clean up), the connection once it is up (relay.c), and saved sessions (resume.c). */
#ifndef TLSCLIENT_CLIENT_H
#define TLSCLIENT_CLIENT_H

#include <tlskit/tlskit.h>

struct options;

/* Log c's error and return the exit code for it (DESIGN.md's contract): a failure after
 * the handshake is "connection broke" where the same class before it is "handshake
 * failed". */
int client_failed(const tlskit_conn *c, int after_handshake);

/* -v: the connection and the server's certificate, on stderr. */
void client_summary(const tlskit_conn *c);
/* --showcerts: the server's chain as PEM on stderr. */
void client_showcerts(const tlskit_conn *c);

/* --check / --json (check.c): the report of what c learned, rc being the exit code so
 * far (0 after a handshake, else the failure's). With --check it goes to stdout (text,
 * or JSON with --json); in relay mode with --json, as JSON to stderr. The exit code:
 * rc, or 8 when it was 0 and --warn-days finds a certificate expiring. */
int client_report(const struct options *o, const tlskit_conn *c, int rc);
/* The same for a failure the library did not see (the STARTTLS dialogue before the
 * handshake): its error class and message instead of the connection's. */
int client_report_failure(const struct options *o, const tlskit_conn *c, int rc, int code,
                          const char *message);

/* Relay stdin to c and c to stdout until the server closes (c is switched to
 * non-blocking), or until no byte has moved either way for idle_ms (0: no limit; exit
 * 4). The exit code. */
int client_relay(tlskit_conn *c, int64_t idle_ms);

/* --listen: the tunnel until SIGINT or SIGTERM (tunnel.c). The exit code. */
int tunnel_run(const struct options *o, tlskit_config *cfg);
/* --udp: each line of stdin is one datagram to c, each datagram from c goes to stdout;
 * at the end of stdin, close_notify, then up to linger_ms for the server's. The exit
 * code. */
int client_relay_udp(tlskit_conn *c, int linger_ms);
/* --starttls: the plain dialogue on c's connected socket, within its own --timeout, before
 * the library's handshake takes the socket (main.c). -1 to go on (also without
 * --starttls), or the exit code after the message. */
int client_starttls(const struct options *o, tlskit_conn *c);

/* ---- sessions (resume.c) ---- */

/* --sess-in: offer the saved session on c (connected, before the handshake). -1 to go
 * on, or the exit code after the message. */
int client_offer_session(const struct options *o, tlskit_conn *c);
/* After the handshake, for --sess-out and --reconnect: wait (bounded) for a resumable
 * session, save it to --sess-out, and return a copy (NULL, after a message, when there
 * is none or it could not be saved; NULL too without either option). */
tlskit_session *client_keep_session(const struct options *o, tlskit_conn *c);
/* --reconnect N: N more connections offering sess (taken over, freed); a line on stderr
 * for each. The exit code. */
int client_reconnect(const struct options *o, tlskit_config *cfg, tlskit_session *sess);

#endif
