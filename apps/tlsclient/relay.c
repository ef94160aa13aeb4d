/* SPDX-License-Identifier: MIT */
/*
 * tlsclient's connection once it is set up: the exit code for a failure, the -v summary,
 * and the relay between stdin/stdout and the server.
 *
 * One thread does everything: an SSL object must not be read and written from two
 * threads at once. After a blocking connect + handshake (bounded by --timeout), the
 * connection is switched to non-blocking and a poll() loop moves data both ways. At EOF
 * on stdin we send close_notify and keep reading until the server closes.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tlskit/tlskit.h>

#include "cli.h"
#include "client.h"

#define RELAY_BUF 16384

/* ---- errors and exit codes ------------------------------------------------------------ */

static int exit_code(int code, int after_handshake)
{
    switch (code) {
    case TLSKIT_E_RESOLVE:
    case TLSKIT_E_CONNECT:
        return CLI_EXIT_CONNECT;
    case TLSKIT_E_TIMEOUT:
        return CLI_EXIT_TIMEOUT;
    case TLSKIT_E_VERIFY:
        return CLI_EXIT_VERIFY;
    case TLSKIT_E_PROTOCOL:
    case TLSKIT_E_IO:
    case TLSKIT_E_TRUNCATED:
    case TLSKIT_E_CLOSED:
        return after_handshake ? CLI_EXIT_BROKEN : CLI_EXIT_HANDSHAKE;
    default:
        return CLI_EXIT_ERROR;
    }
}

int client_failed(const tlskit_conn *c, int after_handshake)
{
    const char *why = tlskit_conn_error(c);
    cli_msg("%s", why != NULL && *why != '\0' ? why : "unknown error");
    return exit_code(tlskit_conn_error_code(c), after_handshake);
}

/* ---- verbose summary ---------------------------------------------------------------- */

static const char *or_none(const char *s)
{
    return s != NULL && *s != '\0' ? s : "(none)";
}

static void format_time(time_t t, char *buf, size_t len)
{
    struct tm tm;
    if (t == 0 || gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC",
                                                        &tm) == 0)
        snprintf(buf, len, "(unknown)");
}

void client_summary(const tlskit_conn *c)
{
    cli_msg("connected to %s", or_none(tlskit_conn_peer_addr(c)));
    cli_msg("protocol: %s, cipher: %s, group: %s", or_none(tlskit_conn_protocol(c)),
            or_none(tlskit_conn_cipher(c)), or_none(tlskit_conn_group(c)));
    cli_msg("server name (SNI): %s", or_none(tlskit_conn_servername(c)));
    cli_msg("resumed: %s", tlskit_conn_session_reused(c) ? "yes" : "no");
    cli_msg("ALPN protocol: %s", or_none(tlskit_conn_alpn_selected(c)));
    if (tlskit_conn_peer_cert_provided(c)) {
        char from[64], until[64];
        format_time(tlskit_conn_peer_cert_notbefore(c), from, sizeof(from));
        format_time(tlskit_conn_peer_cert_notafter(c), until, sizeof(until));
        cli_msg("server certificate:");
        cli_msg("  subject: %s", or_none(tlskit_conn_peer_cert_subject(c)));
        cli_msg("  issuer: %s", or_none(tlskit_conn_peer_cert_issuer(c)));
        cli_msg("  subject alt names: %s", or_none(tlskit_conn_peer_cert_sans(c)));
        cli_msg("  valid: %s to %s", from, until);
        cli_msg("  fingerprint: %s", or_none(tlskit_conn_peer_cert_fingerprint(c)));
        cli_msg("  public key (--pin): %s", or_none(tlskit_conn_peer_cert_spki_sha256(c)));
    } else {
        cli_msg("server certificate: (none)");
    }
    cli_msg("verify result: %s", or_none(tlskit_conn_verify_result(c)));
    cli_msg("OCSP staple: %s", or_none(tlskit_conn_ocsp_text(c)));
}

/* --showcerts: on stderr, so stdout carries only what the server sent. */
void client_showcerts(const tlskit_conn *c)
{
    const char *pem = tlskit_conn_peer_chain_pem(c);
    int n = tlskit_conn_peer_chain_count(c);
    cli_msg("server certificate chain: %d certificate%s", n, n == 1 ? "" : "s");
    if (pem != NULL)
        fputs(pem, stderr);
    fflush(stderr);
}

/* ---- the relay ---------------------------------------------------------------------- */

struct relay {
    tlskit_conn *conn;
    unsigned char in[RELAY_BUF]; /* from stdin, being written to the server */
    size_t in_len, in_off;
    unsigned char out[RELAY_BUF]; /* from the server, to stdout */
    int stdin_open;
    int shutdown_sent;
    short read_events;  /* what the last read waits for */
    short write_events; /* what a pending write or close_notify waits for */
    int64_t idle_ms;    /* --idle-timeout; 0: none */
    int64_t last_byte;  /* when a byte last moved, either way (ms) */
};

#define RELAY_GO_ON (-1)

/* Copy to stdout. A closed stdout (EPIPE) ends us quietly with 1. */
static int to_stdout(const void *buf, size_t len)
{
    if (cli_write_all(STDOUT_FILENO, buf, len, 1) == 0)
        return RELAY_GO_ON;
    if (errno != EPIPE)
        cli_msg("stdout: %s", strerror(errno));
    return CLI_EXIT_ERROR;
}

/* Read from the server until it would block: OpenSSL may hold decrypted records that
 * poll() cannot see, so one read per wake-up is not enough. */
static int pump_in(struct relay *r, int *clean_eof)
{
    for (;;) {
        ssize_t n = tlskit_conn_read(r->conn, r->out, sizeof(r->out));
        if (n > 0) {
            r->last_byte = cli_now_ms();
            int rc = to_stdout(r->out, (size_t)n);
            if (rc != RELAY_GO_ON)
                return rc;
            continue;
        }
        if (n == 0) {
            *clean_eof = 1;
            return CLI_EXIT_OK;
        }
        if (n == TLSKIT_WANT_READ || n == TLSKIT_WANT_WRITE) {
            r->read_events = tlskit_want_events(n);
            return RELAY_GO_ON;
        }
        return client_failed(r->conn, 1);
    }
}

/* A write or close_notify failed. The server may have closed first, with close_notify or
 * an alert we have not read yet (a TLS 1.3 server rejecting our certificate does that
 * after our handshake is done): if a read explains it, report that instead. */
static int write_failed(struct relay *r)
{
    char why[512];
    int code = tlskit_conn_error_code(r->conn);
    const char *msg = tlskit_conn_error(r->conn);
    snprintf(why, sizeof(why), "%s", msg != NULL ? msg : "");

    int eof = 0;
    int rc = pump_in(r, &eof); /* reports a read error itself */
    if (rc != RELAY_GO_ON)
        return rc;
    cli_msg("%s", *why != '\0' ? why : "unknown error");
    return exit_code(code, 1);
}

/* Send what is pending from stdin, then close_notify once stdin is done. */
static int pump_out(struct relay *r)
{
    r->write_events = 0;
    while (r->in_off < r->in_len) {
        /* After WANT, OpenSSL needs the very same buffer and length again: in_off only
         * moves on success, so the retry below passes exactly that. */
        ssize_t n = tlskit_conn_write(r->conn, r->in + r->in_off, r->in_len - r->in_off);
        if (n > 0) {
            r->in_off += (size_t)n;
            r->last_byte = cli_now_ms();
        } else if (n == TLSKIT_WANT_READ || n == TLSKIT_WANT_WRITE) {
            r->write_events = tlskit_want_events(n);
            return RELAY_GO_ON;
        } else {
            return write_failed(r);
        }
    }
    r->in_off = r->in_len = 0;
    if (!r->stdin_open && !r->shutdown_sent) {
        int n = tlskit_conn_shutdown(r->conn);
        if (n == 0)
            r->shutdown_sent = 1;
        else if (n == TLSKIT_WANT_READ || n == TLSKIT_WANT_WRITE)
            r->write_events = tlskit_want_events(n);
        else
            return write_failed(r);
    }
    return RELAY_GO_ON;
}

static int read_stdin(struct relay *r)
{
    ssize_t n = read(STDIN_FILENO, r->in, sizeof(r->in));
    if (n > 0) {
        r->in_len = (size_t)n;
        r->in_off = 0;
        r->last_byte = cli_now_ms();
    } else if (n == 0 || errno == EBADF) {
        r->stdin_open = 0;
    } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
        cli_msg("stdin: %s", strerror(errno));
        return CLI_EXIT_ERROR;
    }
    return RELAY_GO_ON;
}

/* --idle-timeout: the poll() timeout until it expires (-1: none), or 0 once it has. */
static int idle_wait(const struct relay *r, int *expired)
{
    *expired = 0;
    if (r->idle_ms == 0)
        return -1;
    int64_t left = r->last_byte + r->idle_ms - cli_now_ms();
    if (left <= 0) {
        *expired = 1;
        return 0;
    }
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

int client_relay(tlskit_conn *c, int64_t idle_ms)
{
    static struct relay r; /* 32 KiB of buffers: keep them off the stack */
    int eof = 0, rc, expired;

    r.conn = c;
    r.stdin_open = 1;
    r.idle_ms = idle_ms;
    r.last_byte = cli_now_ms();
    if (tlskit_conn_set_nonblocking(c, 1) < 0)
        return client_failed(c, 1);

    for (;;) {
        if ((rc = pump_in(&r, &eof)) != RELAY_GO_ON || eof)
            return rc;
        if ((rc = pump_out(&r)) != RELAY_GO_ON)
            return rc;

        struct pollfd p[2] = {
            {.fd = tlskit_conn_fd(c), .events = (short)(r.read_events | r.write_events)},
            {.fd = STDIN_FILENO, .events = POLLIN},
        };
        nfds_t n = r.stdin_open && r.in_len == 0 ? 2 : 1;
        int wait = idle_wait(&r, &expired);
        if (expired) {
            /* run() then sends close_notify: the server sees an orderly end */
            cli_msg("%s: no data either way for %.3f s (--idle-timeout): closing",
                    tlskit_conn_peer_addr(c), (double)r.idle_ms / 1000.0);
            return CLI_EXIT_TIMEOUT;
        }
        if (poll(p, n, wait) < 0) {
            if (errno == EINTR)
                continue;
            cli_msg("poll: %s", strerror(errno));
            return CLI_EXIT_ERROR;
        }
        if (n == 2 && p[1].revents != 0) {
            if (p[1].revents & POLLNVAL)
                r.stdin_open = 0;
            else if ((rc = read_stdin(&r)) != RELAY_GO_ON)
                return rc;
        }
    }
}
