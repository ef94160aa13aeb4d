/* SPDX-License-Identifier: MIT */
/* timeouts: the connect, handshake and read deadlines, and how each failure is reported.
 *
 * Deadlines are config settings (tlskit_config_set_timeout, milliseconds): CONNECT for
 * the TCP connect, HANDSHAKE for the whole TLS handshake, READ for one blocking read
 * (also WRITE and IDLE). When one expires the call returns -1, tlskit_error_code() is
 * TLSKIT_E_TIMEOUT and tlskit_error() names the operation, the peer and the deadline.
 * Three local peers that never answer make each one expire:
 *   connect    a listening socket whose accept queue is full: the kernel drops the SYN;
 *   handshake  a listening socket nobody accepts from: TCP connects, TLS never answers;
 *   read       a tlskit server (in a thread) that completes the handshake, then is silent.
 *
 * Usage: timeouts CERT_FILE KEY_FILE CA_FILE
 * Prints one line per deadline: "NAME: TLSKIT_E_TIMEOUT: MESSAGE". */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <tlskit/tlskit.h>

#define DEADLINE_MS 300

/* A listening TCP socket on 127.0.0.1, any port; its port as text in port. */
static int plain_listener(int backlog, char *port, size_t size)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd == -1 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == -1 ||
        listen(fd, backlog) == -1 || getsockname(fd, (struct sockaddr *)&addr, &len) == -1) {
        perror("timeouts: listening socket");
        return -1;
    }
    snprintf(port, size, "%d", ntohs(addr.sin_port));
    return fd;
}

/* Report how the step failed (or that it did not). 0 when it was a timeout. */
static int report(const char *name, tlskit_conn *conn, int ret)
{
    if (ret != -1) {
        printf("%s: no error?\n", name);
        return -1;
    }
    printf("%s: %s: %s\n", name, tlskit_error_name(tlskit_error_code(conn)),
           tlskit_error(conn));
    return tlskit_error_code(conn) == TLSKIT_E_TIMEOUT ? 0 : -1;
}

/* The silent server: accept one client, handshake, then wait for it to go away. */
static void *silent_server(void *arg)
{
    tlskit_listener *l = arg;
    tlskit_conn *conn;
    char buf[64];

    if (tlskit_listener_accept(l, &conn, 10000) == 0) {
        if (tlskit_conn_handshake(conn) == 0)
            while (tlskit_conn_read(conn, buf, sizeof(buf)) > 0)
                ;
        tlskit_conn_free(conn);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    tlskit_config *cfg = NULL, *scfg = NULL;
    tlskit_listener *l = NULL;
    tlskit_conn *conn;
    char port[16], buf[64];
    pthread_t thread;
    int fd, filler, status = 0;

    if (argc != 4) {
        fprintf(stderr, "usage: timeouts CERT_FILE KEY_FILE CA_FILE\n");
        return 2;
    }
    if ((cfg = tlskit_config_new()) == NULL || (scfg = tlskit_config_new()) == NULL ||
        tlskit_config_add_ca_file(cfg, argv[3]) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_CONNECT, DEADLINE_MS) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, DEADLINE_MS) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_READ, DEADLINE_MS) == -1 ||
        tlskit_config_set_keypair_file(scfg, argv[1], argv[2]) == -1) {
        fprintf(stderr, "timeouts: %s\n", cfg ? tlskit_error(cfg) : "out of memory");
        return 1;
    }

    /* Connect: backlog 0 queues one connection; with the queue full (filler) Linux
     * drops further SYNs, and the client waits for a SYN-ACK that never comes. */
    if ((fd = plain_listener(0, port, sizeof(port))) == -1)
        return 1;
    filler = socket(AF_INET, SOCK_STREAM, 0);
    {
        struct sockaddr_in addr = {.sin_family = AF_INET};
        socklen_t len = sizeof(addr);
        getsockname(fd, (struct sockaddr *)&addr, &len);
        if (connect(filler, (struct sockaddr *)&addr, sizeof(addr)) == -1)
            perror("timeouts: filling the accept queue");
    }
    conn = tlskit_conn_new(cfg);
    status |= report("connect", conn, tlskit_conn_connect(conn, "127.0.0.1", port));
    tlskit_conn_free(conn);
    close(filler);
    close(fd);

    /* Handshake: the kernel completes the TCP connection; no TLS server answers. */
    if ((fd = plain_listener(16, port, sizeof(port))) == -1)
        return 1;
    conn = tlskit_conn_new(cfg);
    if (tlskit_conn_connect(conn, "127.0.0.1", port) == -1)
        report("handshake (connecting)", conn, -1);
    status |= report("handshake", conn, tlskit_conn_handshake(conn));
    tlskit_conn_free(conn);
    close(fd);

    /* Read: the handshake completes, then the server sends nothing. */
    if ((l = tlskit_listener_new(scfg)) == NULL ||
        tlskit_listener_listen(l, "127.0.0.1", "0", 0) == -1) {
        fprintf(stderr, "timeouts: %s\n", l ? tlskit_error(l) : "out of memory");
        return 1;
    }
    snprintf(port, sizeof(port), "%d", tlskit_listener_port(l));
    if (pthread_create(&thread, NULL, silent_server, l) != 0)
        return 1;
    conn = tlskit_conn_new(cfg);
    if (tlskit_conn_connect(conn, "127.0.0.1", port) == -1 ||
        tlskit_conn_handshake(conn) == -1)
        report("read (handshake)", conn, -1);
    status |= report("read", conn, (int)tlskit_conn_read(conn, buf, sizeof(buf)));
    tlskit_conn_free(conn); /* the server thread's read then ends */
    pthread_join(thread, NULL);

    tlskit_listener_free(l);
    tlskit_config_free(scfg);
    tlskit_config_free(cfg);
    return status == 0 ? 0 : 1;
}
