/* SPDX-License-Identifier: MIT */
/* event_server: the engine (the tutorial's asyncio server), an echo in under 40 lines.
 * on_data echoes (tlskit_conn_write queues, with backpressure); SIGINT/SIGTERM stop it
 * gracefully (drain, close_notify). Threads, deadlines and limits are the engine's.
 * Usage: event_server PORT CERT_FILE KEY_FILE   (prints "listening on ADDRS" first) */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <tlskit/tlskit.h>

static void on_data(tlskit_conn *conn, const void *data, size_t len, void *arg)
{
    (void)arg;
    tlskit_conn_write(conn, data, len);
}

int main(int argc, char **argv)
{
    struct tlskit_engine_handlers handlers = {.on_data = on_data};
    tlskit_config *cfg = tlskit_config_new();
    sigset_t stop;
    int sig;
    if (argc != 4 || tlskit_config_set_keypair_file(cfg, argv[2], argv[3]) == -1)
        return fprintf(stderr, "usage: event_server PORT CERT KEY %s\n", tlskit_error(cfg)), 1;
    tlskit_engine *e = tlskit_engine_new(cfg, &handlers); /* cfg is now in use */
    sigemptyset(&stop); /* block before the workers start: they inherit the mask */
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    if (tlskit_engine_listen(e, "localhost", argv[1], 0) == -1 || tlskit_engine_start(e) == -1)
        return fprintf(stderr, "event_server: %s\n", tlskit_error(e)), 1;
    printf("listening on %s\n", tlskit_engine_addrs(e));
    fflush(stdout);
    sigwait(&stop, &sig);
    tlskit_engine_stop(e);
    tlskit_engine_free(e);
    tlskit_config_free(cfg);
    return printf("stopped\n"), 0;
}
