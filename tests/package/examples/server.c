/* SPDX-License-Identifier: MIT */
/* A TLS echo server on localhost, one client at a time.
 * Usage: server [PORT [CERT_FILE KEY_FILE]]   (defaults: 4433 certs/server.crt
 * certs/server.key; PORT 0 picks a free port) */
#include <stdio.h>
#include <tlskit/tlskit.h>

static void serve(tlskit_conn *conn)
{
    char buf[4096];
    ssize_t n;

    /* The first read runs the handshake. */
    while ((n = tlskit_conn_read(conn, buf, sizeof(buf))) > 0)
        if (tlskit_conn_write_all(conn, buf, (size_t)n) == -1) {
            n = -1;
            break;
        }
    if (n == -1)
        fprintf(stderr, "server: %s\n", tlskit_error(conn));
    tlskit_conn_close(conn);
    tlskit_conn_free(conn);
}

int main(int argc, char **argv)
{
    const char *port = argc > 1 ? argv[1] : "4433";
    const char *cert = argc > 3 ? argv[2] : "certs/server.crt";
    const char *key = argc > 3 ? argv[3] : "certs/server.key";
    tlskit_config *cfg;
    tlskit_listener *listener;
    tlskit_conn *conn;

    if ((cfg = tlskit_config_new()) == NULL)
        return 1;
    if (tlskit_config_set_keypair_file(cfg, cert, key) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, 10000) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_IDLE, 30000) == -1) {
        fprintf(stderr, "server: %s\n", tlskit_error(cfg));
        tlskit_config_free(cfg);
        return 1;
    }
    listener = tlskit_listener_new(cfg);
    tlskit_config_free(cfg); /* the listener and its connections hold references */
    if (listener == NULL)
        return 1;
    if (tlskit_listener_listen(listener, "localhost", port, 0) == -1) {
        fprintf(stderr, "server: %s\n", tlskit_error(listener));
        tlskit_listener_free(listener);
        return 1;
    }
    printf("listening on %s\n", tlskit_listener_addrs(listener));
    fflush(stdout);
    for (;;) {
        if (tlskit_listener_accept(listener, &conn, -1) == -1) {
            fprintf(stderr, "server: %s\n", tlskit_error(listener));
            break;
        }
        serve(conn);
    }
    tlskit_listener_free(listener);
    return 1;
}
