/* SPDX-License-Identifier: MIT */
/* An echo server on the event engine: all cores, deadlines, limits, graceful stop.
 * Usage: engine_echo [PORT [CERT_FILE KEY_FILE]]   (defaults as for server.c) */
#include <signal.h>
#include <stdio.h>
#include <tlskit/tlskit.h>

static void on_data(tlskit_conn *conn, const void *data, size_t len, void *arg)
{
    (void)arg;
    tlskit_conn_write(conn, data, len); /* buffered, with backpressure */
}

int main(int argc, char **argv)
{
    struct tlskit_engine_handlers handlers = {.on_data = on_data};
    tlskit_config *cfg = tlskit_config_new();
    sigset_t stop;
    int sig;

    if (tlskit_config_set_keypair_file(cfg, argc > 3 ? argv[2] : "certs/server.crt",
                                       argc > 3 ? argv[3] : "certs/server.key") == -1)
        return fprintf(stderr, "engine_echo: %s\n", tlskit_error(cfg)), 1;
    tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, 10000);
    tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_IDLE, 60000);
    tlskit_engine *e = tlskit_engine_new(cfg, &handlers);
    if (tlskit_engine_listen(e, "localhost", argc > 1 ? argv[1] : "4433", 0) == -1 ||
        tlskit_engine_start(e) == -1)
        return fprintf(stderr, "engine_echo: %s\n", tlskit_error(e)), 1;
    printf("listening on %s\n", tlskit_engine_addrs(e));
    fflush(stdout);
    sigemptyset(&stop); /* the engine's threads block signals: take them here */
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    sigwait(&stop, &sig);
    tlskit_engine_stop(e); /* stop accepting, drain, close_notify */
    tlskit_engine_free(e);
    tlskit_config_free(cfg);
    return 0;
}
