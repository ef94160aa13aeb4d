/* SPDX-License-Identifier: MIT */
/* wrap_socket: TLS over a socket the program already made (the tutorial's wrap_socket).
 *
 * The program makes a TCP connection with plain socket(), bind(), listen(), connect()
 * and accept(), then wraps each end: the accepted socket as the server
 * (tlskit_conn_wrap_server, in a thread) and the connected one as the client
 * (tlskit_conn_wrap_client, with the name to verify). The program keeps ownership of
 * both sockets: tlskit_conn_free() leaves them open, and after close_notify the program
 * could go on using them in plain text. It closes them itself.
 *
 * Usage: wrap_socket CERT_FILE KEY_FILE CA_FILE
 * Prints what each side received and whether the sockets are still open. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <tlskit/tlskit.h>

struct server_side {
    tlskit_config *cfg;
    int fd;
    int ok;
};

static void *serve(void *arg)
{
    struct server_side *s = arg;
    tlskit_conn *conn = tlskit_conn_new(s->cfg);
    char buf[256];
    ssize_t n;

    if (conn == NULL)
        return NULL;
    if (tlskit_conn_wrap_server(conn, s->fd) == -1 ||
        (n = tlskit_conn_read(conn, buf, sizeof(buf) - 1)) <= 0 ||
        tlskit_conn_write_all(conn, "pong", 4) == -1) {
        fprintf(stderr, "server side: %s\n", tlskit_conn_error(conn));
    } else {
        buf[n] = '\0';
        printf("server side received: %s (%s)\n", buf, tlskit_conn_protocol(conn));
        s->ok = tlskit_conn_close(conn) == 0;
    }
    tlskit_conn_free(conn); /* does not close s->fd */
    return NULL;
}

/* A connected pair of TCP sockets on 127.0.0.1, made without tlskit. */
static int tcp_pair(int *client_fd, int *server_fd)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof(addr);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *client_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd == -1 || *client_fd == -1 ||
        bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) == -1 || listen(lfd, 1) == -1 ||
        getsockname(lfd, (struct sockaddr *)&addr, &len) == -1 ||
        connect(*client_fd, (struct sockaddr *)&addr, sizeof(addr)) == -1 ||
        (*server_fd = accept(lfd, NULL, NULL)) == -1) {
        perror("wrap_socket: making the TCP connection");
        return -1;
    }
    close(lfd);
    return 0;
}

int main(int argc, char **argv)
{
    struct server_side server = {0};
    tlskit_config *client_cfg = NULL;
    tlskit_conn *conn = NULL;
    pthread_t thread;
    int client_fd, status = 1;
    char buf[256];
    ssize_t n;

    if (argc != 4) {
        fprintf(stderr, "usage: wrap_socket CERT_FILE KEY_FILE CA_FILE\n");
        return 2;
    }
    if (tcp_pair(&client_fd, &server.fd) == -1)
        return 1;
    server.cfg = tlskit_config_new();
    client_cfg = tlskit_config_new();
    if (server.cfg == NULL || client_cfg == NULL ||
        tlskit_config_set_keypair_file(server.cfg, argv[1], argv[2]) == -1 ||
        tlskit_config_add_ca_file(client_cfg, argv[3]) == -1 ||
        tlskit_config_set_timeout(client_cfg, TLSKIT_TIMEOUT_HANDSHAKE, 10000) == -1 ||
        tlskit_config_set_timeout(client_cfg, TLSKIT_TIMEOUT_READ, 10000) == -1) {
        fprintf(stderr, "wrap_socket: %s\n",
                server.cfg ? tlskit_error(server.cfg) : "out of memory");
        fprintf(stderr, "wrap_socket: %s\n", client_cfg ? tlskit_error(client_cfg) : "");
        goto out;
    }
    if (pthread_create(&thread, NULL, serve, &server) != 0)
        goto out;
    if ((conn = tlskit_conn_new(client_cfg)) == NULL ||
        tlskit_conn_wrap_client(conn, client_fd, "localhost") == -1 ||
        tlskit_conn_write_all(conn, "ping", 4) == -1 ||
        (n = tlskit_conn_read(conn, buf, sizeof(buf) - 1)) <= 0) {
        fprintf(stderr, "client side: %s (%s)\n", tlskit_error(conn),
                tlskit_error_name(tlskit_error_code(conn)));
        shutdown(client_fd, SHUT_RDWR); /* let the server thread finish */
    } else {
        buf[n] = '\0';
        printf("client side received: %s (server %s verified)\n", buf,
               tlskit_conn_peer_cert_subject(conn));
        status = tlskit_conn_close(conn) == 0 ? 0 : 1;
    }
    pthread_join(thread, NULL);
    tlskit_conn_free(conn);
    printf("after tlskit_conn_free: client socket %s, server socket %s\n",
           fcntl(client_fd, F_GETFD) != -1 ? "still open" : "closed",
           fcntl(server.fd, F_GETFD) != -1 ? "still open" : "closed");
    if (!server.ok)
        status = 1;
out:
    close(client_fd); /* ours to close */
    close(server.fd);
    tlskit_config_free(client_cfg);
    tlskit_config_free(server.cfg);
    return status;
}
