/* SPDX-License-Identifier: MIT */
/*
 * hostport: the one parser of "where to connect / listen" for every app (DESIGN.md,
 * "Command-line contract"): HOST PORT, HOST:PORT, [V6]:PORT and [V6] PORT. Brackets are
 * only syntax: what comes out is the bare host that getaddrinfo(3) and the certificate
 * name check take ("::1", never "[::1]").
 */
#ifndef TLSKIT_APPS_HOSTPORT_H
#define TLSKIT_APPS_HOSTPORT_H

#include <stddef.h>

/* A DNS name is at most 253 characters; an IPv6 literal with a zone ("fe80::1%eth0")
 * fits as well. */
#define CLI_HOST_MAX 255

struct cli_hostport {
    char host[CLI_HOST_MAX + 1];
    char port[6]; /* decimal, 1 to 65535 */
};

/*
 * The target of tlsclient or tlsbench into hp.
 * - port_arg given (two operands): host_arg is HOST or [V6] (a bare V6 address is taken
 *   as it is: with the port apart it is not ambiguous), port_arg the port.
 * - port_arg NULL (one operand): host_arg is HOST:PORT or [V6]:PORT. A bare V6 address
 *   with more than one colon ("::1:443") is refused as ambiguous (is 443 the port or the
 *   address's last group?), with the bracketed spelling suggested. With default_port
 *   (not NULL), HOST and [V6] alone take it.
 * The port is decimal, 1 to 65535. 0, or -1 with a short reason in why ("the port is
 * empty", "']' is missing") for "PROG: 'ARG': WHY".
 */
int cli_parse_hostport(const char *host_arg, const char *port_arg, const char *default_port,
                       struct cli_hostport *hp, char *why, size_t whylen);

/* A host alone (tlsserver --bind): HOST, V6 or [V6], into out (CLI_HOST_MAX + 1 bytes),
 * brackets stripped. 0, or -1 with why as above. */
int cli_parse_host(const char *arg, char out[CLI_HOST_MAX + 1], char *why, size_t whylen);

#endif /* TLSKIT_APPS_HOSTPORT_H */
