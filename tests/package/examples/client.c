/* SPDX-License-Identifier: MIT */
/* A TLS client: send one line, print the reply.
 * Usage: client [HOST [PORT [CA_FILE]]]   (defaults: localhost 4433 certs/ca.crt) */
#include <stdio.h>
#include <string.h>
#include <tlskit/tlskit.h>

int main(int argc, char **argv)
{
    const char *host = argc > 1 ? argv[1] : "localhost";
    const char *port = argc > 2 ? argv[2] : "4433";
    const char *ca = argc > 3 ? argv[3] : "certs/ca.crt";
    const char *msg = "hello over TLS\n";
    size_t got = 0, want = strlen(msg);
    char buf[256];
    tlskit_config *cfg;
    tlskit_conn *conn = NULL;
    int status = 1;

    if ((cfg = tlskit_config_new()) == NULL)
        return 1;
    /* Verification of the certificate and host name is on by default. */
    if (tlskit_config_add_ca_file(cfg, ca) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_CONNECT, 5000) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, 5000) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_READ, 5000) == -1) {
        fprintf(stderr, "client: %s\n", tlskit_error(cfg));
        goto out;
    }
    if ((conn = tlskit_conn_new(cfg)) == NULL)
        goto out;
    if (tlskit_conn_connect(conn, host, port) == -1 ||
        tlskit_conn_handshake(conn) == -1 ||
        tlskit_conn_write_all(conn, msg, want) == -1)
        goto conn_error;
    printf("connected to %s with %s\n", tlskit_conn_peer_addr(conn),
           tlskit_conn_protocol(conn));
    while (got < want) {
        ssize_t n = tlskit_conn_read(conn, buf, sizeof(buf));
        if (n == -1)
            goto conn_error;
        if (n == 0)
            break; /* the server closed cleanly (close_notify) */
        fwrite(buf, 1, (size_t)n, stdout);
        got += (size_t)n;
    }
    if (tlskit_conn_close(conn) == -1)
        goto conn_error;
    status = got == want ? 0 : 1;
    goto out;

conn_error:
    fprintf(stderr, "client: %s (%s)\n", tlskit_error(conn),
            tlskit_error_name(tlskit_error_code(conn)));
out:
    tlskit_conn_free(conn);
    tlskit_config_free(cfg);
    return status;
}
