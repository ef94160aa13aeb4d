/* SPDX-License-Identifier: MIT */
/* tcp_echo_client: the tutorial's simple TCP client, with TLS.
 *
 * Shows: create (tlskit_conn_new), connect (tlskit_conn_connect), the handshake with
 * certificate and host-name verification (on by default; the CA is the only setting),
 * send one message (tlskit_conn_write_all), receive the echo (tlskit_conn_read) and
 * close (tlskit_conn_close). Errors print the message and the TLSKIT_E_* class.
 *
 * Usage: tcp_echo_client HOST PORT CA_FILE [MESSAGE]
 * Prints "connected to ADDR with PROTOCOL", then "received: MESSAGE". */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <tlskit/tlskit.h>

int main(int argc, char **argv)
{
    const char *msg = argc > 4 ? argv[4] : "hello over TLS";
    size_t got = 0, want = strlen(msg);
    char buf[4096];
    tlskit_config *cfg;
    tlskit_conn *conn = NULL;
    int status = 1;

    if (argc < 4 || want >= sizeof(buf)) {
        fprintf(stderr, "usage: tcp_echo_client HOST PORT CA_FILE [MESSAGE]\n");
        return 2;
    }
    if ((cfg = tlskit_config_new()) == NULL)
        return 1;
    if (tlskit_config_add_ca_file(cfg, argv[3]) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_CONNECT, 5000) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, 5000) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_READ, 5000) == -1) {
        fprintf(stderr, "tcp_echo_client: %s\n", tlskit_error(cfg));
        goto out;
    }
    if ((conn = tlskit_conn_new(cfg)) == NULL)
        goto out;
    if (tlskit_conn_connect(conn, argv[1], argv[2]) == -1 ||
        tlskit_conn_handshake(conn) == -1 ||
        tlskit_conn_write_all(conn, msg, want) == -1)
        goto conn_error;
    printf("connected to %s with %s\n", tlskit_conn_peer_addr(conn),
           tlskit_conn_protocol(conn));
    while (got < want) {
        ssize_t n = tlskit_conn_read(conn, buf + got, sizeof(buf) - 1 - got);
        if (n == -1)
            goto conn_error;
        if (n == 0)
            break; /* the server closed cleanly (close_notify) */
        got += (size_t)n;
    }
    buf[got] = '\0';
    printf("received: %s\n", buf);
    if (tlskit_conn_close(conn) == -1)
        goto conn_error;
    status = got == want ? 0 : 1;
    goto out;

conn_error:
    fprintf(stderr, "tcp_echo_client: %s (%s)\n", tlskit_error(conn),
            tlskit_error_name(tlskit_error_code(conn)));
out:
    tlskit_conn_free(conn);
    tlskit_config_free(cfg);
    return status;
}
