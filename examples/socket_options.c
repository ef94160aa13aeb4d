/* SPDX-License-Identifier: MIT */
/* socket_options: buffer sizes, TCP_NODELAY and keepalive, and the values in force.
 *
 * Socket options are config settings, applied to every socket the config makes or
 * accepts: tlskit_config_set_buffer_sizes (SO_RCVBUF / SO_SNDBUF; 0 keeps the kernel's
 * default), tlskit_config_set_nodelay (TCP_NODELAY, on by default: TLS records go out
 * at once) and tlskit_config_set_keepalive (SO_KEEPALIVE with TCP_KEEPIDLE,
 * TCP_KEEPINTVL, TCP_KEEPCNT). The program connects, then reads the options back from
 * the socket (tlskit_conn_fd) with getsockopt(): Linux reports twice the buffer size
 * asked for (the other half is its bookkeeping).
 *
 * Usage: socket_options HOST PORT CA_FILE   (any TLS server, e.g. tcp_echo_server)
 * Prints "OPTION: VALUE" lines. */
#define _DEFAULT_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <tlskit/tlskit.h>

static void show(int fd, const char *name, int level, int option, const char *note)
{
    int value = -1;
    socklen_t len = sizeof(value);

    if (getsockopt(fd, level, option, &value, &len) == -1)
        perror(name);
    printf("%s: %d%s\n", name, value, note);
}

int main(int argc, char **argv)
{
    tlskit_config *cfg;
    tlskit_conn *conn = NULL;
    int fd, status = 1;

    if (argc != 4) {
        fprintf(stderr, "usage: socket_options HOST PORT CA_FILE\n");
        return 2;
    }
    if ((cfg = tlskit_config_new()) == NULL)
        return 1;
    if (tlskit_config_add_ca_file(cfg, argv[3]) == -1 ||
        tlskit_config_set_buffer_sizes(cfg, 65536, 65536) == -1 ||
        tlskit_config_set_keepalive(cfg, 1, 30, 10, 4) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_CONNECT, 5000) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, 5000) == -1) {
        fprintf(stderr, "socket_options: %s\n", tlskit_error(cfg));
        goto out;
    }
    if ((conn = tlskit_conn_new(cfg)) == NULL)
        goto out;
    if (tlskit_conn_connect(conn, argv[1], argv[2]) == -1 ||
        tlskit_conn_handshake(conn) == -1) {
        fprintf(stderr, "socket_options: %s (%s)\n", tlskit_error(conn),
                tlskit_error_name(tlskit_error_code(conn)));
        goto out;
    }
    fd = tlskit_conn_fd(conn);
    show(fd, "SO_RCVBUF", SOL_SOCKET, SO_RCVBUF, " (asked for 65536)");
    show(fd, "SO_SNDBUF", SOL_SOCKET, SO_SNDBUF, " (asked for 65536)");
    show(fd, "TCP_NODELAY", IPPROTO_TCP, TCP_NODELAY, " (the default)");
    show(fd, "SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE, "");
    show(fd, "TCP_KEEPIDLE", IPPROTO_TCP, TCP_KEEPIDLE, " s");
    show(fd, "TCP_KEEPINTVL", IPPROTO_TCP, TCP_KEEPINTVL, " s");
    show(fd, "TCP_KEEPCNT", IPPROTO_TCP, TCP_KEEPCNT, "");
    tlskit_conn_close(conn);
    status = 0;
out:
    tlskit_conn_free(conn);
    tlskit_config_free(cfg);
    return status;
}
