/* SPDX-License-Identifier: MIT */
/* threaded_server: one thread per client (the tutorial's threading section).
 *
 * The main thread only accepts (tlskit_listener_accept); each connection is handed to
 * a new detached thread, which runs the handshake (tlskit_conn_handshake, from the
 * thread that serves it, so a slow client never holds up the others), echoes, closes and
 * frees it. The config is shared read-only by all threads; a connection is used by one
 * thread at a time. Each thread reports how many clients were connected at the time.
 *
 * Usage: threaded_server PORT CERT_FILE KEY_FILE   (PORT 0 picks a free port)
 * Prints "listening on ADDRS" first, then "echoed N bytes to ADDR (K clients connected)"
 * per client. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <tlskit/tlskit.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int connected; /* clients being served now, under lock */

static void *serve(void *arg)
{
    tlskit_conn *conn = arg;
    char buf[4096];
    size_t total = 0;
    ssize_t n = 0;
    int now;

    if (tlskit_conn_handshake(conn) == -1)
        n = -1;
    while (n != -1 && (n = tlskit_conn_read(conn, buf, sizeof(buf))) > 0) {
        if (tlskit_conn_write_all(conn, buf, (size_t)n) == -1)
            n = -1;
        else
            total += (size_t)n;
    }
    pthread_mutex_lock(&lock);
    now = connected--;
    pthread_mutex_unlock(&lock);
    if (n == -1)
        printf("%s (%s)\n", tlskit_conn_error(conn),
               tlskit_error_name(tlskit_conn_error_code(conn)));
    else
        printf("echoed %zu bytes to %s (%d clients connected)\n", total,
               tlskit_conn_peer_addr(conn), now);
    fflush(stdout);
    tlskit_conn_close(conn);
    tlskit_conn_free(conn);
    return NULL;
}

int main(int argc, char **argv)
{
    tlskit_config *cfg;
    tlskit_listener *listener;
    tlskit_conn *conn;
    pthread_attr_t attr;
    pthread_t thread;

    if (argc != 4) {
        fprintf(stderr, "usage: threaded_server PORT CERT_FILE KEY_FILE\n");
        return 2;
    }
    if ((cfg = tlskit_config_new()) == NULL)
        return 1;
    if (tlskit_config_set_keypair_file(cfg, argv[2], argv[3]) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, 10000) == -1 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_IDLE, 30000) == -1) {
        fprintf(stderr, "threaded_server: %s\n", tlskit_error(cfg));
        tlskit_config_free(cfg);
        return 1;
    }
    listener = tlskit_listener_new(cfg);
    tlskit_config_free(cfg);
    if (listener == NULL)
        return 1;
    if (tlskit_listener_listen(listener, "localhost", argv[1], 0) == -1) {
        fprintf(stderr, "threaded_server: %s\n", tlskit_error(listener));
        tlskit_listener_free(listener);
        return 1;
    }
    printf("listening on %s\n", tlskit_listener_addrs(listener));
    fflush(stdout);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    while (tlskit_listener_accept(listener, &conn, -1) == 0) {
        pthread_mutex_lock(&lock);
        connected++;
        pthread_mutex_unlock(&lock);
        if (pthread_create(&thread, &attr, serve, conn) != 0) {
            fprintf(stderr, "threaded_server: cannot start a thread\n");
            pthread_mutex_lock(&lock);
            connected--;
            pthread_mutex_unlock(&lock);
            tlskit_conn_free(conn);
        }
    }
    fprintf(stderr, "threaded_server: %s\n", tlskit_error(listener));
    tlskit_listener_free(listener);
    return 1;
}
