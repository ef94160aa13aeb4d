/* SPDX-License-Identifier: MIT */
/* datagram: a UDP datagram exchange next to a DTLS one (DTLS 1.2 over UDP).
 *
 * First plain UDP, with sendto() / recvfrom(): one datagram each way, readable by anyone
 * on the path. Then the same with DTLS: the server is the engine with a DTLS config
 * (tlskit_config_new_dtls, tlskit_engine_listen on a UDP port, on_data echoing each
 * datagram), the client a tlskit_conn made with a DTLS config, connected with
 * tlskit_conn_connect_udp and verified as for TLS. Each tlskit_conn_write is one
 * datagram and each tlskit_conn_read returns one: message boundaries are kept, and a
 * write larger than tlskit_conn_max_write (what fits the MTU) fails with
 * TLSKIT_E_LIMIT rather than being split.
 *
 * Usage: datagram CERT_FILE KEY_FILE CA_FILE
 * Prints each exchange. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <tlskit/tlskit.h>

static void on_data(tlskit_conn *conn, const void *data, size_t len, void *arg)
{
    (void)arg;
    tlskit_conn_write(conn, data, len); /* one datagram back per datagram in */
}

static int plain_udp(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof(addr);
    int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
    char buf[64];
    ssize_t n;

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (a == -1 || b == -1 || bind(a, (struct sockaddr *)&addr, sizeof(addr)) == -1 ||
        getsockname(a, (struct sockaddr *)&addr, &len) == -1 ||
        sendto(b, "hello", 5, 0, (struct sockaddr *)&addr, sizeof(addr)) != 5 ||
        (n = recvfrom(a, buf, sizeof(buf) - 1, 0, NULL, NULL)) == -1) {
        perror("datagram: plain UDP");
        return -1;
    }
    buf[n] = '\0';
    printf("UDP: received \"%s\" in one datagram of %zd bytes, in clear text\n", buf, n);
    close(a);
    close(b);
    return 0;
}

int main(int argc, char **argv)
{
    const char *msgs[] = {"first", "second message", "third"};
    struct tlskit_engine_handlers handlers = {.on_data = on_data};
    tlskit_config *scfg, *ccfg;
    tlskit_engine *e;
    tlskit_conn *conn;
    char port[16], buf[2048], big[2048];
    size_t i;
    ssize_t n;
    int status = 1;

    if (argc != 4) {
        fprintf(stderr, "usage: datagram CERT_FILE KEY_FILE CA_FILE\n");
        return 2;
    }
    if (plain_udp() == -1)
        return 1;

    scfg = tlskit_config_new_dtls();
    ccfg = tlskit_config_new_dtls();
    if (scfg == NULL || ccfg == NULL ||
        tlskit_config_set_keypair_file(scfg, argv[1], argv[2]) == -1 ||
        tlskit_config_add_ca_file(ccfg, argv[3]) == -1 ||
        tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_HANDSHAKE, 10000) == -1 ||
        tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_READ, 10000) == -1) {
        fprintf(stderr, "datagram: %s / %s\n", scfg ? tlskit_error(scfg) : "",
                ccfg ? tlskit_error(ccfg) : "");
        return 1;
    }
    e = tlskit_engine_new(scfg, &handlers);
    if (e == NULL || tlskit_engine_set_workers(e, 1) == -1 ||
        tlskit_engine_listen(e, "127.0.0.1", "0", 0) == -1 || tlskit_engine_start(e) == -1) {
        fprintf(stderr, "datagram: %s\n", e ? tlskit_error(e) : "out of memory");
        return 1;
    }
    snprintf(port, sizeof(port), "%d", tlskit_engine_port(e));

    if ((conn = tlskit_conn_new(ccfg)) == NULL)
        return 1;
    /* The certificate names localhost; the address is given as a number. */
    if (tlskit_conn_set_servername(conn, "localhost") == -1 ||
        tlskit_conn_connect_udp(conn, "127.0.0.1", port) == -1 ||
        tlskit_conn_handshake(conn) == -1)
        goto conn_error;
    printf("DTLS: %s with %s, server %s, at most %zu bytes per datagram\n",
           tlskit_conn_protocol(conn), tlskit_conn_cipher(conn),
           tlskit_conn_peer_cert_subject(conn), tlskit_conn_max_write(conn));
    for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
        if (tlskit_conn_write(conn, msgs[i], strlen(msgs[i])) == -1)
            goto conn_error;
    for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        if ((n = tlskit_conn_read(conn, buf, sizeof(buf) - 1)) <= 0)
            goto conn_error;
        buf[n] = '\0';
        printf("DTLS: received \"%s\" in one datagram of %zd bytes, encrypted\n", buf, n);
    }
    memset(big, 'x', sizeof(big)); /* one byte more than fits (the default MTU is 1232) */
    if (tlskit_conn_max_write(conn) < sizeof(big) &&
        tlskit_conn_write(conn, big, tlskit_conn_max_write(conn) + 1) == -1)
        printf("DTLS: a write of %zu bytes: %s: %s\n", tlskit_conn_max_write(conn) + 1,
               tlskit_error_name(tlskit_error_code(conn)), tlskit_error(conn));
    tlskit_conn_close(conn);
    status = 0;
    goto out;

conn_error:
    fprintf(stderr, "datagram: %s (%s)\n", tlskit_error(conn),
            tlskit_error_name(tlskit_error_code(conn)));
out:
    tlskit_conn_free(conn);
    tlskit_engine_set_drain_timeout(e, 0);
    tlskit_engine_stop(e);
    tlskit_engine_free(e);
    tlskit_config_free(ccfg);
    tlskit_config_free(scfg);
    return status;
}
