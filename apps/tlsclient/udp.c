/* SPDX-License-Identifier: MIT */
/*
 * tlsclient --udp: the relay over DTLS. Message boundaries are the point of UDP: each
 * line of stdin (newline included) leaves as one datagram, split only where it is longer
 * than one datagram can carry (tlskit_conn_max_write()), and each datagram received is
 * written to stdout as it came. At the end of stdin: close_notify, then wait a little for
 * the server's (it may be lost: UDP has no FIN, so not hearing it is no error).
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tlskit/tlskit.h>

#include "cli.h"
#include "client.h"

#define UDP_BUF 65536

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Every datagram that has arrived, to stdout. -1 to go on, or the exit code (0: the
 * server sent close_notify). */
static int pump_in(tlskit_conn *c)
{
    static unsigned char buf[UDP_BUF];
    for (;;) {
        ssize_t n = tlskit_conn_read(c, buf, sizeof(buf));
        if (n > 0) {
            if (cli_write_all(STDOUT_FILENO, buf, (size_t)n, 1) != 0) {
                if (errno != EPIPE)
                    cli_msg("stdout: %s", strerror(errno));
                return CLI_EXIT_ERROR;
            }
            continue;
        }
        if (n == 0)
            return CLI_EXIT_OK;
        if (n == TLSKIT_WANT_READ || n == TLSKIT_WANT_WRITE)
            return -1;
        return client_failed(c, 1);
    }
}

/* One datagram; waits (briefly, in practice) while the socket buffer is full. */
static int send_datagram(tlskit_conn *c, const unsigned char *p, size_t len)
{
    for (;;) {
        ssize_t n = tlskit_conn_write(c, p, len);
        if (n >= 0)
            return -1;
        if (n != TLSKIT_WANT_READ && n != TLSKIT_WANT_WRITE)
            return client_failed(c, 1);
        struct pollfd pf = {.fd = tlskit_conn_fd(c), .events = tlskit_want_events(n)};
        if (poll(&pf, 1, -1) < 0 && errno != EINTR) {
            cli_msg("poll: %s", strerror(errno));
            return CLI_EXIT_ERROR;
        }
    }
}

/* Send each complete line in buf (all of it at the end of stdin, or when the buffer is
 * full without a newline) and keep the rest. -1 to go on, or the exit code. */
static int send_lines(tlskit_conn *c, unsigned char *buf, size_t *have, int flush)
{
    size_t max = tlskit_conn_max_write(c), off = 0;
    if (max == 0)
        max = 1;
    while (off < *have) {
        const unsigned char *nl = memchr(buf + off, '\n', *have - off);
        size_t line = nl ? (size_t)(nl - (buf + off)) + 1 : *have - off;
        if (!nl && !flush && *have < UDP_BUF)
            break; /* a partial line: wait for the rest */
        for (size_t done = 0; done < line;) {
            size_t n = line - done > max ? max : line - done;
            int rc = send_datagram(c, buf + off + done, n);
            if (rc >= 0)
                return rc;
            done += n;
        }
        off += line;
    }
    memmove(buf, buf + off, *have - off);
    *have -= off;
    return -1;
}

int client_relay_udp(tlskit_conn *c, int linger_ms)
{
    static unsigned char in[UDP_BUF];
    size_t have = 0;
    int stdin_open = 1, rc;
    long long linger_until = 0;

    if (tlskit_conn_set_nonblocking(c, 1) < 0)
        return client_failed(c, 1);
    for (;;) {
        if ((rc = pump_in(c)) >= 0)
            return rc;
        if ((rc = send_lines(c, in, &have, !stdin_open)) >= 0)
            return rc;
        if (!stdin_open && linger_until == 0) {
            int n = tlskit_conn_shutdown(c);
            if (n < 0 && n != TLSKIT_WANT_READ && n != TLSKIT_WANT_WRITE)
                return client_failed(c, 1);
            linger_until = now_ms() + linger_ms;
        }
        int wait = -1;
        if (linger_until) {
            long long left = linger_until - now_ms();
            if (left <= 0)
                return CLI_EXIT_OK;
            wait = (int)left;
        }
        struct pollfd p[2] = {
            {.fd = tlskit_conn_fd(c), .events = POLLIN},
            {.fd = STDIN_FILENO, .events = POLLIN},
        };
        nfds_t n = stdin_open && have < UDP_BUF ? 2 : 1;
        if (poll(p, n, wait) < 0) {
            if (errno == EINTR)
                continue;
            cli_msg("poll: %s", strerror(errno));
            return CLI_EXIT_ERROR;
        }
        if (n == 2 && p[1].revents != 0) {
            ssize_t r = read(STDIN_FILENO, in + have, UDP_BUF - have);
            if (r > 0)
                have += (size_t)r;
            else if (r == 0 || (errno != EINTR && errno != EAGAIN))
                stdin_open = 0;
        }
    }
}
