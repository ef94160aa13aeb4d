/* SPDX-License-Identifier: MIT */
/* tlsclient --starttls PROTO: the plain-text dialogue that precedes TLS in SMTP (RFC
 * 3207), IMAP (RFC 9051 6.2.1), POP3 (RFC 2595 4), FTP (RFC 4217 4), XMPP (RFC 6120 5)
 * and PostgreSQL (SSLRequest). A file of its own so that its fuzz target
 * (tests/fuzz/fuzz_starttls.c) runs exactly what the program runs. */
#ifndef TLSCLIENT_STARTTLS_H
#define TLSCLIENT_STARTTLS_H

#include <stddef.h>
#include <stdint.h>

enum starttls_proto {
    STARTTLS_NONE = 0,
    STARTTLS_SMTP,
    STARTTLS_IMAP,
    STARTTLS_POP3,
    STARTTLS_FTP,
    STARTTLS_XMPP,
    STARTTLS_POSTGRES,
};
#define STARTTLS_NAMES "smtp, imap, pop3, ftp, xmpp, postgres"

/* Longest line (or XMPP features block) read from the server, and the most lines in one
 * reply: a server cannot make the client buffer more. */
#define STARTTLS_LINE_MAX 4096
#define STARTTLS_REPLY_LINES 200

/* "smtp" -> STARTTLS_SMTP ...; STARTTLS_NONE for an unknown name. */
enum starttls_proto starttls_proto(const char *name);
const char *starttls_name(enum starttls_proto proto);

/* Speak proto over the connected socket fd until the server has agreed to start TLS,
 * within the absolute deadline (cli_now_ms() clock; 0: none). host is the name XMPP
 * addresses (to='host'). Nothing past the server's agreement is read, and bytes that came
 * with it are refused (they would be taken as TLS). 0 when TLS may start; otherwise the
 * exit code (CLI_EXIT_TIMEOUT, or CLI_EXIT_HANDSHAKE: not offered, refused, closed, not
 * the protocol) with the reason in why, quoting the server's own words. */
int starttls_run(int fd, enum starttls_proto proto, const char *host, int64_t deadline,
                 char *why, size_t whylen);

#endif
