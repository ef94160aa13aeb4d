/* SPDX-License-Identifier: MIT */
/*
 * tlsserver: a TLS server over the public tlskit API: echo (default), discard or a small
 * HTTP/1.1 responder, served by the event engine (default), a thread per connection, or
 * one connection at a time. This file: configuration, signals, logging.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "server.h"

volatile sig_atomic_t g_stop_signals, g_reload, g_dump;
static int g_wake_fd = -1;

/* ---- configuration ----------------------------------------------------------------- */

static int missing(const char *path)
{
    return access(path, F_OK) < 0 && errno == ENOENT;
}

tlskit_config *server_config(const struct options *o, int startup)
{
    tlskit_config *cfg = tlskit_config_new();
    if (cfg == NULL) {
        cli_msg("out of memory");
        return NULL;
    }
    if (tlskit_config_set_keypair_file(cfg, o->cert, o->key) < 0) {
        cli_msg("%s%s", startup ? "" : "reload failed, keeping the old certificate: ",
                tlskit_config_error(cfg));
        if (startup && ((strcmp(o->cert, DEFAULT_CERT) == 0 && missing(o->cert)) ||
                        (strcmp(o->key, DEFAULT_KEY) == 0 && missing(o->key))))
            cli_msg("hint: run scripts/gen-certs.sh to create local test certificates");
        goto fail;
    }
    if ((o->ca != NULL && tlskit_config_set_ca_file(cfg, o->ca) < 0) ||
        tlskit_config_set_verify_client(cfg, o->verify_client) < 0 ||
        tlskit_config_set_protocols(cfg, o->tls_min, o->tls_max) < 0 ||
        tlskit_config_set_session_tickets(cfg, o->tickets) < 0 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, o->handshake_ms) < 0 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_IDLE, o->idle_ms) < 0 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_WRITE, o->write_ms) < 0) {
        cli_msg("%s%s", startup ? "" : "reload failed, keeping the old certificate: ",
                tlskit_config_error(cfg));
        goto fail;
    }
    return cfg;
fail:
    tlskit_config_free(cfg);
    return NULL;
}

tlskit_config *server_reload_config(struct server *s)
{
    return server_config(&s->opt, 0);
}

void server_listening(const char *addrs)
{
    printf("tlsserver: listening on %s\n", addrs);
    fflush(stdout);
}

/* ---- signals and the self-pipe --------------------------------------------------------- */

void wake_main(void)
{
    ssize_t r = write(g_wake_fd, "w", 1); /* a full pipe already wakes main */
    (void)r;
}

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGHUP)
        g_reload = 1;
    else if (sig == SIGUSR1)
        g_dump = 1;
    else
        g_stop_signals = g_stop_signals + 1;
    wake_main();
    errno = saved;
}

static int install_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaddset(&sa.sa_mask, sigs[i]);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (sigaction(sigs[i], &sa, NULL) < 0) {
            cli_msg("sigaction: %s", strerror(errno));
            return -1;
        }
    return 0;
}

void server_drain_wake(struct server *s)
{
    char buf[256];
    while (read(s->wake[0], buf, sizeof(buf)) > 0)
        ;
}

int server_should_stop(struct server *s)
{
    return g_stop_signals > 0 ||
           (s->opt.exit_after > 0 && atomic_load(&s->ended) >= s->opt.exit_after);
}

/* ---- logging -------------------------------------------------------------------------- */

static const char *or_dash(const char *s)
{
    return s != NULL && *s != '\0' ? s : "-";
}

void server_log_handshake(const struct server *s, tlskit_conn *c)
{
    if (s->opt.verbosity < 2)
        return;
    const char *peer = or_dash(tlskit_conn_peer_addr(c));
    const char *proto = or_dash(tlskit_conn_protocol(c));
    const char *cipher = or_dash(tlskit_conn_cipher(c));
    const char *group = or_dash(tlskit_conn_group(c));
    const char *sni = or_dash(tlskit_conn_servername(c));
    const char *verify = or_dash(tlskit_conn_verify_result(c));

    if (tlskit_conn_peer_cert_provided(c))
        cli_msg("handshake %s proto=%s cipher=%s group=%s sni=%s client-cert=\"%s\" "
                "fingerprint=%s verify=\"%s\"", peer, proto, cipher, group, sni,
                or_dash(tlskit_conn_peer_cert_subject(c)),
                or_dash(tlskit_conn_peer_cert_fingerprint(c)), verify);
    else
        cli_msg("handshake %s proto=%s cipher=%s group=%s sni=%s client-cert=none "
                "verify=\"%s\"", peer, proto, cipher, group, sni, verify);
}

void server_log_end(const struct server *s, tlskit_conn *c, int code, const char *why)
{
    if (s->opt.verbosity < 1)
        return;
    int done = tlskit_conn_handshake_done(c);
    const char *peer = or_dash(tlskit_conn_peer_addr(c));
    const char *proto = done ? or_dash(tlskit_conn_protocol(c)) : "-";
    const char *cipher = done ? or_dash(tlskit_conn_cipher(c)) : "-";
    unsigned long long in = tlskit_conn_bytes_read(c);
    unsigned long long out = tlskit_conn_bytes_written(c);
    double secs = (double)tlskit_conn_age_ms(c) / 1000.0;

    if (code == TLSKIT_E_NONE)
        cli_msg("conn %s proto=%s cipher=%s in=%llu out=%llu time=%.3fs ok", peer, proto,
                cipher, in, out, secs);
    else
        cli_msg("conn %s proto=%s cipher=%s in=%llu out=%llu time=%.3fs error=%s: %s", peer,
                proto, cipher, in, out, secs, tlskit_error_name(code),
                why != NULL && *why != '\0' ? why : "unknown error");
}

void server_print_counters(const struct server *s, const struct tlskit_engine_stats *st)
{
    if (st) {
        char byclass[512] = "";
        size_t used = 0;
        for (int i = 1; i < 16; i++) {
            if (!st->handshake_errors[i])
                continue;
            int n = snprintf(byclass + used, sizeof(byclass) - used, " failed_%s=%llu",
                             tlskit_error_name(i) + 9, /* without "TLSKIT_E_" */
                             (unsigned long long)st->handshake_errors[i]);
            if (n > 0 && (size_t)n < sizeof(byclass) - used)
                used += (size_t)n;
        }
        cli_msg("counters: open=%llu accepted=%llu handshakes_ok=%llu handshakes_failed=%llu%s "
                "bytes_in=%llu bytes_out=%llu handshake_timeouts=%llu idle_timeouts=%llu "
                "write_stalls=%llu buffer_limit_closes=%llu limit_rejections=%llu "
                "accept_errors=%llu",
                (unsigned long long)st->open, (unsigned long long)st->accepted,
                (unsigned long long)st->handshakes_ok, (unsigned long long)st->handshakes_failed,
                byclass,
                (unsigned long long)st->bytes_in, (unsigned long long)st->bytes_out,
                (unsigned long long)st->handshake_timeouts, (unsigned long long)st->idle_timeouts,
                (unsigned long long)st->write_stalls, (unsigned long long)st->buffer_limit_closes,
                (unsigned long long)st->limit_rejections, (unsigned long long)st->accept_errors);
        return;
    }
    const struct counters *k = &s->ctr;
    cli_msg("counters: accepted=%llu handshakes_ok=%llu handshakes_failed=%llu bytes_in=%llu "
            "bytes_out=%llu limit_rejections=%llu accept_errors=%llu",
            atomic_load(&k->accepted), atomic_load(&k->handshakes_ok),
            atomic_load(&k->handshakes_failed), atomic_load(&k->bytes_in),
            atomic_load(&k->bytes_out), atomic_load(&k->rejected),
            atomic_load(&k->accept_errors));
}

/* ---- main ------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    struct server s = {
        .opt = tlsserver_defaults(),
        .wake = {-1, -1},
    };
    int rc;

    cli_init("tlsserver");
    rc = tlsserver_parse_args(argc, argv, &s.opt);
    if (rc >= 0)
        return rc;

    rc = CLI_EXIT_ERROR;
    if (pipe2(s.wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        cli_msg("pipe: %s", strerror(errno));
        return rc;
    }
    g_wake_fd = s.wake[1];
    if (s.opt.mode == MODE_HTTP && http_site_init(&s.site, s.opt.body_size) < 0)
        cli_msg("out of memory");
    else if (install_signals() == 0 && (s.cfg = server_config(&s.opt, 1)) != NULL)
        rc = s.opt.model == MODEL_EVENT ? serve_events(&s) : serve_threads(&s);

    tlskit_config_free(s.cfg);
    http_site_free(&s.site);
    g_wake_fd = -1;
    close(s.wake[0]);
    close(s.wake[1]);
    return rc;
}
