/* SPDX-License-Identifier: MIT */
/* tcp_echo_server: the tutorial's simple TCP server, with TLS.
 *
 * Shows the life of a server socket in tlskit terms: create (tlskit_listener_new),
 * bind + listen (tlskit_listener_listen), accept (tlskit_listener_accept), receive
 * (tlskit_conn_read, whose first call runs the handshake), send (tlskit_conn_write_all)
 * and close (tlskit_conn_close sends close_notify). One client at a time.
 *
 * Usage: tcp_echo_server PORT CERT_FILE KEY_FILE   (PORT 0 picks a free port)
 * Prints "listening on ADDRS" first, then one line per client served. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <tlskit/tlskit.h>

int main(int argc, char **argv)
{
    tlskit_config *cfg;
    tlskit_listener *listener;
    tlskit_conn *conn;
    char buf[4096];
    ssize_t n;

    if (argc != 4) {
        fprintf(stderr, "usage: tcp_echo_server PORT CERT_FILE KEY_FILE\n");
        return 2;
    }
    if ((cfg = tlskit_config_new()) == NULL)
        return 1;
    if (tlskit_config_set_keypair_file(cfg, argv[2], argv[3]) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, 10000) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_IDLE, 30000) == -1) {
        fprintf(stderr, "tcp_echo_server: %s\n", tlskit_error(cfg));
        tlskit_config_free(cfg);
        return 1;
    }
    listener = tlskit_listener_new(cfg);                  /* create */
    tlskit_config_free(cfg); /* the listener and its connections hold references */
    if (listener == NULL)
        return 1;
    if (tlskit_listener_listen(listener, "localhost", argv[1], 0) == -1) { /* bind, listen */
        fprintf(stderr, "tcp_echo_server: %s\n", tlskit_error(listener));
        tlskit_listener_free(listener);
        return 1;
    }
    printf("listening on %s\n", tlskit_listener_addrs(listener));
    fflush(stdout);
    for (;;) {
        size_t total = 0;

        if (tlskit_listener_accept(listener, &conn, -1) == -1) {  /* accept */
            fprintf(stderr, "tcp_echo_server: %s\n", tlskit_error(listener));
            break;
        }
        while ((n = tlskit_conn_read(conn, buf, sizeof(buf))) > 0) {   /* receive */
            if (tlskit_conn_write_all(conn, buf, (size_t)n) == -1) {   /* send */
                n = -1;
                break;
            }
            total += (size_t)n;
        }
        if (n == -1)
            fprintf(stderr, "tcp_echo_server: %s (%s)\n", tlskit_error(conn),
                    tlskit_error_name(tlskit_error_code(conn)));
        else
            printf("echoed %zu bytes to %s\n", total, tlskit_conn_peer_addr(conn));
        fflush(stdout);
        tlskit_conn_close(conn);                                       /* close */
        tlskit_conn_free(conn);
    }
    tlskit_listener_free(listener);
    return 1;
}
