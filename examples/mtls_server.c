/* SPDX-License-Identifier: MIT */
/* mtls_server: mutual TLS, the server side. Clients must present a certificate signed
 * by CA_FILE (tlskit_config_set_verify_client REQUIRED, CAs from tlskit_config_add_ca_file);
 * a client without one, or with one from another CA, fails the handshake with
 * TLSKIT_E_VERIFY. After the handshake the peer's identity is read from the connection:
 * subject, SANs, issuer and SHA-256 fingerprint (tlskit_conn_peer_cert_*), and the
 * server greets the client by its subject.
 *
 * Usage: mtls_server PORT CERT_FILE KEY_FILE CA_FILE   (PORT 0 picks a free port)
 * Prints "listening on ADDRS" first, then per client "client subject: ..." etc. or
 * "rejected: MESSAGE (TLSKIT_E_...)". */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <tlskit/tlskit.h>

static void serve(tlskit_conn *conn)
{
    char reply[1024];

    if (tlskit_conn_handshake(conn) == -1) {
        printf("rejected: %s (%s)\n", tlskit_conn_error(conn),
               tlskit_error_name(tlskit_conn_error_code(conn)));
        return;
    }
    printf("client subject: %s\n", tlskit_conn_peer_cert_subject(conn));
    printf("client issuer: %s\n", tlskit_conn_peer_cert_issuer(conn));
    printf("client SANs: %s\n", tlskit_conn_peer_cert_sans(conn));
    printf("client fingerprint: %s\n", tlskit_conn_peer_cert_fingerprint(conn));
    snprintf(reply, sizeof(reply), "hello, %s\n", tlskit_conn_peer_cert_subject(conn));
    if (tlskit_conn_write_all(conn, reply, strlen(reply)) == -1)
        printf("write: %s\n", tlskit_conn_error(conn));
    tlskit_conn_close(conn);
}

int main(int argc, char **argv)
{
    tlskit_config *cfg;
    tlskit_listener *listener;
    tlskit_conn *conn;

    if (argc != 5) {
        fprintf(stderr, "usage: mtls_server PORT CERT_FILE KEY_FILE CA_FILE\n");
        return 2;
    }
    if ((cfg = tlskit_config_new()) == NULL)
        return 1;
    if (tlskit_config_set_keypair_file(cfg, argv[2], argv[3]) == -1 ||
        tlskit_config_add_ca_file(cfg, argv[4]) == -1 ||
        tlskit_config_set_verify_client(cfg, TLSKIT_VERIFY_CLIENT_REQUIRED) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, 10000) == -1) {
        fprintf(stderr, "mtls_server: %s\n", tlskit_error(cfg));
        tlskit_config_free(cfg);
        return 1;
    }
    listener = tlskit_listener_new(cfg);
    tlskit_config_free(cfg);
    if (listener == NULL)
        return 1;
    if (tlskit_listener_listen(listener, "localhost", argv[1], 0) == -1) {
        fprintf(stderr, "mtls_server: %s\n", tlskit_error(listener));
        tlskit_listener_free(listener);
        return 1;
    }
    printf("listening on %s\n", tlskit_listener_addrs(listener));
    fflush(stdout);
    while (tlskit_listener_accept(listener, &conn, -1) == 0) {
        serve(conn);
        fflush(stdout);
        tlskit_conn_free(conn);
    }
    fprintf(stderr, "mtls_server: %s\n", tlskit_error(listener));
    tlskit_listener_free(listener);
    return 1;
}
