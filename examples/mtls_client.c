/* SPDX-License-Identifier: MIT */
/* mtls_client: mutual TLS, the client side. The client presents its own certificate
 * (tlskit_config_set_keypair_file, as a server does), verifies the server as usual
 * (tlskit_config_add_ca_file), and reads the server's identity after the handshake
 * (tlskit_conn_peer_cert_subject, _sans, _fingerprint).
 * Without CERT_FILE/KEY_FILE it connects with no certificate, to show how a server
 * that requires one refuses it.
 *
 * Usage: mtls_client HOST PORT CA_FILE [CERT_FILE KEY_FILE]
 * Prints "server subject: ...", "server SANs: ..." and the server's greeting. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <tlskit/tlskit.h>

int main(int argc, char **argv)
{
    tlskit_config *cfg;
    tlskit_conn *conn = NULL;
    char buf[1024];
    size_t got = 0;
    ssize_t n;
    int status = 1;

    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: mtls_client HOST PORT CA_FILE [CERT_FILE KEY_FILE]\n");
        return 2;
    }
    if ((cfg = tlskit_config_new()) == NULL)
        return 1;
    if (tlskit_config_add_ca_file(cfg, argv[3]) == -1 ||
        (argc == 6 && tlskit_config_set_keypair_file(cfg, argv[4], argv[5]) == -1) ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_CONNECT, 5000) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, 5000) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_READ, 5000) == -1) {
        fprintf(stderr, "mtls_client: %s\n", tlskit_error(cfg));
        goto out;
    }
    if ((conn = tlskit_conn_new(cfg)) == NULL)
        goto out;
    if (tlskit_conn_connect(conn, argv[1], argv[2]) == -1 ||
        tlskit_conn_handshake(conn) == -1)
        goto conn_error;
    printf("server subject: %s\n", tlskit_conn_peer_cert_subject(conn));
    printf("server SANs: %s\n", tlskit_conn_peer_cert_sans(conn));
    printf("server fingerprint: %s\n", tlskit_conn_peer_cert_fingerprint(conn));
    /* With TLS 1.3 the server checks our certificate after our side of the handshake has
     * finished: a rejection shows up on the first read. */
    while (got < sizeof(buf) - 1 && (n = tlskit_conn_read(conn, buf + got,
                                                          sizeof(buf) - 1 - got)) != 0) {
        if (n == -1)
            goto conn_error;
        got += (size_t)n;
    }
    buf[got] = '\0';
    printf("server says: %s", buf);
    tlskit_conn_close(conn);
    status = 0;
    goto out;

conn_error:
    fprintf(stderr, "mtls_client: %s (%s)\n", tlskit_error(conn),
            tlskit_error_name(tlskit_error_code(conn)));
out:
    tlskit_conn_free(conn);
    tlskit_config_free(cfg);
    return status;
}
