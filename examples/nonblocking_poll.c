/* SPDX-License-Identifier: MIT */
/* nonblocking_poll: a client driven by its own poll() loop, with the WANT contract.
 *
 * After tlskit_conn_set_nonblocking(conn, 1), tlskit_conn_handshake / _write / _read
 * never wait: they return TLSKIT_WANT_READ or TLSKIT_WANT_WRITE, and the caller polls
 * the socket (tlskit_conn_fd) for the events tlskit_want_events(ret) names, then calls
 * the same function again (a write with the same arguments). The poll timeout comes
 * from tlskit_conn_timeout_ms (the handshake deadline here). Reads go on until WANT_READ
 * before the next poll(): the library reads ahead, and poll() cannot see records it has
 * already taken from the socket.
 *
 * Usage: nonblocking_poll HOST PORT CA_FILE MESSAGE   (against an echo server)
 * Prints each step with the number of times it had to wait, then "received: MESSAGE". */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <tlskit/tlskit.h>

/* Wait for what ret asks for. 0, or -1 on a deadline or poll() failure. */
static int wait_for(tlskit_conn *conn, ssize_t ret)
{
    struct pollfd pfd = {.fd = tlskit_conn_fd(conn), .events = tlskit_want_events(ret)};
    int timeout = tlskit_conn_timeout_ms(conn);

    if (timeout < 0)
        timeout = 5000; /* no library deadline applies: our own */
    if (poll(&pfd, 1, timeout) != 1) {
        fprintf(stderr, "nonblocking_poll: timed out waiting for %s\n",
                ret == TLSKIT_WANT_READ ? "input" : "output room");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    tlskit_config *cfg;
    tlskit_conn *conn = NULL;
    char buf[4096];
    size_t want, got = 0, sent = 0;
    ssize_t ret;
    int waits, status = 1;

    if (argc != 5 || (want = strlen(argv[4])) >= sizeof(buf)) {
        fprintf(stderr, "usage: nonblocking_poll HOST PORT CA_FILE MESSAGE\n");
        return 2;
    }
    if ((cfg = tlskit_config_new()) == NULL)
        return 1;
    if (tlskit_config_add_ca_file(cfg, argv[3]) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_CONNECT, 5000) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, 5000) == -1) {
        fprintf(stderr, "nonblocking_poll: %s\n", tlskit_error(cfg));
        goto out;
    }
    /* The TCP connect blocks (within its deadline); everything after it does not. */
    if ((conn = tlskit_conn_new(cfg)) == NULL)
        goto out;
    if (tlskit_conn_connect(conn, argv[1], argv[2]) == -1 ||
        tlskit_conn_set_nonblocking(conn, 1) == -1)
        goto conn_error;

    for (waits = 0; (ret = tlskit_conn_handshake(conn)) != 0; waits++)
        if (ret == -1 || wait_for(conn, ret) == -1)
            goto conn_error;
    printf("handshake done (%s) after %d waits\n", tlskit_conn_protocol(conn), waits);

    for (waits = 0; sent < want; ) {
        ret = tlskit_conn_write(conn, argv[4] + sent, want - sent);
        if (ret > 0)
            sent += (size_t)ret;
        else if (ret == -1 || wait_for(conn, ret) == -1)
            goto conn_error;
        else
            waits++;
    }
    printf("sent %zu bytes after %d waits\n", sent, waits);

    for (waits = 0; got < want; ) {
        ret = tlskit_conn_read(conn, buf + got, sizeof(buf) - 1 - got);
        if (ret > 0)
            got += (size_t)ret; /* and read again before polling */
        else if (ret == 0)
            break; /* closed by the server */
        else if (ret == -1 || wait_for(conn, ret) == -1)
            goto conn_error;
        else
            waits++;
    }
    buf[got] = '\0';
    printf("read %zu bytes after %d waits\n", got, waits);
    printf("received: %s\n", buf);
    tlskit_conn_close(conn);
    status = got == want ? 0 : 1;
    goto out;

conn_error:
    fprintf(stderr, "nonblocking_poll: %s (%s)\n", tlskit_error(conn),
            tlskit_error_name(tlskit_error_code(conn)));
out:
    tlskit_conn_free(conn);
    tlskit_config_free(cfg);
    return status;
}
