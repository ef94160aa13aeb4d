/* SPDX-License-Identifier: MIT */
/* reuseaddr: SO_REUSEADDR, and what "address already in use" looks like, handled.
 *
 * 1. A second listener on a port in use fails: tlskit_listener_listen returns -1 with
 *    TLSKIT_E_LISTEN and a message naming the address ("listen on 127.0.0.1:PORT:
 *    Address already in use"); a program can report it, or try another port.
 * 2. A server that closed a connection first leaves it in TIME_WAIT for a minute. A
 *    plain bind() to that port then fails with EADDRINUSE, the tutorial's restart
 *    problem. tlskit sets SO_REUSEADDR on every listening socket, so a restarted server
 *    listens again on the same port at once.
 *
 * Usage: reuseaddr CERT_FILE KEY_FILE
 * Prints each step and its outcome. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <tlskit/tlskit.h>

int main(int argc, char **argv)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    tlskit_config *cfg;
    tlskit_listener *first, *second, *again;
    tlskit_conn *conn;
    char port[16], byte;
    int fd, status = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: reuseaddr CERT_FILE KEY_FILE\n");
        return 2;
    }
    if ((cfg = tlskit_config_new()) == NULL ||
        tlskit_config_set_keypair_file(cfg, argv[1], argv[2]) == -1) {
        fprintf(stderr, "reuseaddr: %s\n", cfg ? tlskit_error(cfg) : "out of memory");
        return 1;
    }
    first = tlskit_listener_new(cfg);
    second = tlskit_listener_new(cfg);
    again = tlskit_listener_new(cfg);
    if (first == NULL || second == NULL || again == NULL ||
        tlskit_listener_listen(first, "127.0.0.1", "0", 0) == -1) {
        fprintf(stderr, "reuseaddr: %s\n", first ? tlskit_error(first) : "out of memory");
        return 1;
    }
    snprintf(port, sizeof(port), "%d", tlskit_listener_port(first));
    printf("first listener: %s\n", tlskit_listener_addrs(first));

    /* 1. The port is taken while the first listener is open. */
    if (tlskit_listener_listen(second, "127.0.0.1", port, 0) == -1)
        printf("second listener: %s: %s\n",
               tlskit_error_name(tlskit_error_code(second)), tlskit_error(second));
    else
        status = 1, printf("second listener: listening?\n");

    /* 2. A client connects; the server closes first, so its side ends in TIME_WAIT. */
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((unsigned short)tlskit_listener_port(first));
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd == -1 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == -1 ||
        tlskit_listener_accept(first, &conn, 10000) == -1) {
        fprintf(stderr, "reuseaddr: connecting: %s\n", tlskit_error(first));
        return 1;
    }
    tlskit_conn_free(conn);           /* the server closes first ... */
    if (read(fd, &byte, 1) != 0)      /* ... the client sees the end ... */
        status = 1;
    close(fd);                        /* ... and closes too */
    tlskit_listener_free(first);      /* the server stops; the port has a TIME_WAIT */
    printf("server closed first, then stopped\n");

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == -1)
        printf("plain bind() without SO_REUSEADDR: %s\n", strerror(errno));
    else
        status = 1, printf("plain bind() without SO_REUSEADDR: bound?\n");
    close(fd);

    if (tlskit_listener_listen(again, "127.0.0.1", port, 0) == 0) {
        printf("restarted listener (SO_REUSEADDR): %s\n", tlskit_listener_addrs(again));
    } else {
        status = 1;
        printf("restarted listener: %s\n", tlskit_error(again));
    }
    tlskit_listener_free(second);
    tlskit_listener_free(again);
    tlskit_config_free(cfg);
    return status;
}
