/* SPDX-License-Identifier: MIT */
/*
 * tlsserver's server, whatever the serve_model: configuration and reload, signals and
 * the self-pipe, per-connection logging, and the serving loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "server.h"

/* Set by the signal handler, taken by the main thread's loop. */
static volatile sig_atomic_t stop_signals, reload_asked, dump_asked;
static int wake_fd = -1;

/* ---- configuration ----------------------------------------------------------------- */

static int missing(const char *path)
{
    return access(path, F_OK) < 0 && errno == ENOENT;
}

static int add_crls(tlskit_config *cfg, const struct options *o)
{
    for (int i = 0; i < o->ncrl; i++)
        if (tlskit_config_add_crl_file(cfg, o->crl[i]) < 0)
            return -1;
    return 0;
}

/* The --ocsp-staple of pair i, if any: one that is not for its certificate, not good or
 * not current only gets a warning (it is not stapled); a file that cannot be read or is
 * no OCSP response fails. 0, or -1 after logging. */
static int add_ocsp_staple(tlskit_config *cfg, const struct options *o, size_t i, int startup)
{
    if (o->ocsp_staple[i] == NULL ||
        tlskit_config_set_ocsp_staple_file(cfg, o->ocsp_staple[i]) == 0)
        return 0;
    if (tlskit_config_error_code(cfg) == TLSKIT_E_CONFIG) {
        cli_msg("warning: --ocsp-staple: %s", tlskit_config_error(cfg));
        return 0;
    }
    cli_msg("%s--ocsp-staple: %s", startup ? "" : "reload failed, keeping the old "
            "certificates: ", tlskit_config_error(cfg));
    return -1;
}

/* Every --cert/--key pair, the first one the default. 0, or -1 after logging. */
static int add_keypairs(tlskit_config *cfg, const struct options *o, int startup)
{
    for (size_t i = 0; i < o->ncert; i++) {
        if (tlskit_config_add_keypair_file(cfg, o->cert[i], o->key[i]) == 0) {
            if (add_ocsp_staple(cfg, o, i, startup) < 0)
                return -1;
            continue;
        }
        cli_msg("%s%s", startup ? "" : "reload failed, keeping the old certificates: ",
                tlskit_config_error(cfg));
        if (startup && ((strcmp(o->cert[i], DEFAULT_CERT) == 0 && missing(o->cert[i])) ||
                        (strcmp(o->key[i], DEFAULT_KEY) == 0 && missing(o->key[i]))))
            cli_msg("hint: run scripts/gen-certs.sh to create local test certificates");
        return -1;
    }
    return 0;
}

/* -vv: the library's trace lines, each after the client's address, on stderr as they
 * come (from any worker thread: cli_msg() writes a line at once). */
static void trace_line(const tlskit_conn *c, const char *line, void *arg)
{
    (void)arg;
    const char *peer = tlskit_conn_peer_addr(c);
    cli_msg("%s %s", peer != NULL && *peer != '\0' ? peer : "-", line);
}

static tlskit_config *server_config(const struct options *o, int startup)
{
    tlskit_config *cfg = o->udp ? tlskit_config_new_dtls() : tlskit_config_new();
    if (cfg == NULL) {
        cli_msg("out of memory");
        return NULL;
    }
    if (o->mtu && tlskit_config_set_mtu(cfg, (int)o->mtu) < 0) {
        cli_msg("--mtu: %s", tlskit_config_error(cfg));
        goto fail;
    }
    if (add_keypairs(cfg, o, startup) < 0)
        goto fail;
    if ((o->ca != NULL && tlskit_config_add_ca_file(cfg, o->ca) < 0) ||
        tlskit_config_set_verify_client(cfg, o->verify_client) < 0 ||
        tlskit_config_set_ca_names(cfg, !o->no_ca_names) < 0 ||
        tlskit_config_set_sni_strict(cfg, o->sni_strict) < 0 ||
        tlskit_config_set_alpn(cfg, o->alpn) < 0 ||
        tlskit_config_set_protocols(cfg, o->tls_min, o->tls_max) < 0 ||
        tlskit_config_set_session_tickets(cfg, o->tickets) < 0 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, o->handshake_ms) < 0 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_IDLE, o->idle_ms) < 0 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_WRITE, o->write_ms) < 0 ||
        tlskit_config_set_ticket_lifetime(cfg, o->ticket_lifetime) < 0 ||
        (o->verbosity > 2 && tlskit_config_set_trace(cfg, trace_line, NULL) < 0) ||
        add_crls(cfg, o) < 0) {
        cli_msg("%s%s", startup ? "" : "reload failed, keeping the old certificates: ",
                tlskit_config_error(cfg));
        goto fail;
    }
    for (int i = 0; i < o->nticket_keys; i++)
        if (tlskit_config_add_ticket_key_file(cfg, o->ticket_keys[i]) < 0) {
            cli_msg("%s--ticket-key: %s", startup ? "" : "reload failed, keeping the old "
                    "certificate and ticket keys: ", tlskit_config_error(cfg));
            goto fail;
        }
    if (o->keylog != NULL && startup)
        cli_msg("WARNING: --keylog %s: the TLS secrets of every connection go to this "
                "file; anyone who reads it can decrypt the traffic (debugging only)",
                o->keylog);
    if (o->keylog != NULL && tlskit_config_insecure_keylog_file(cfg, o->keylog) < 0) {
        cli_msg("--keylog: %s", tlskit_config_error(cfg));
        goto fail;
    }
    for (int i = 0; i < o->nallow_client; i++)
        if (tlskit_config_add_allowed_client(cfg, o->allow_client[i]) < 0) {
            cli_msg("%s", tlskit_config_error(cfg)); /* checked by the parser: memory */
            goto fail;
        }
    return cfg;
fail:
    tlskit_config_free(cfg);
    return NULL;
}

static void server_listening(const char *addrs)
{
    printf("tlsserver: listening on %s\n", addrs);
    fflush(stdout);
}

/* ---- signals and the self-pipe --------------------------------------------------------- */

void wake_main(void)
{
    ssize_t r = write(wake_fd, "w", 1); /* a full pipe already wakes main */
    (void)r;
}

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGHUP)
        reload_asked = 1;
    else if (sig == SIGUSR1)
        dump_asked = 1;
    else
        stop_signals = stop_signals + 1;
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

unsigned long server_stop_signals(void)
{
    return (unsigned long)stop_signals;
}

static int server_should_stop(struct server *s)
{
    return stop_signals > 0 ||
           (s->opt.exit_after > 0 && atomic_load(&s->ended) >= s->opt.exit_after);
}

/* (The per-connection log lines, text or JSON: log.c.) */

/* ---- counters ------------------------------------------------------------------------- */

struct line {
    char buf[1024];
    size_t used;
};

static void add(struct line *l, const char *name, uint64_t value)
{
    size_t room = sizeof(l->buf) - l->used;
    int n = snprintf(l->buf + l->used, room, " %s=%llu", name, (unsigned long long)value);
    if (n > 0 && (size_t)n < room)
        l->used += (size_t)n;
}

/* "tlsserver: counters: ..." on stderr: one line format for every model, without the
 * fields that only the event engine keeps when another model serves. */
static void print_counters(const struct server *s, const struct serve_model *m, void *impl)
{
    struct tlskit_engine_stats st;
    struct line l = {.used = 0};
    int all = m->engine_stats;

    memset(&st, 0, sizeof(st));
    m->stats(impl, &st);
    if (all)
        add(&l, "open", st.open);
    add(&l, "accepted", st.accepted);
    add(&l, "handshakes_ok", st.handshakes_ok);
    add(&l, "handshakes_failed", st.handshakes_failed);
    for (int i = 1; all && i < TLSKIT_E__COUNT; i++) {
        char name[64];
        if (!st.handshake_errors[i])
            continue;
        /* "failed_VERIFY": the class name without "TLSKIT_E_" */
        snprintf(name, sizeof(name), "failed_%s", tlskit_error_name(i) + strlen("TLSKIT_E_"));
        add(&l, name, st.handshake_errors[i]);
    }
    add(&l, "bytes_in", st.bytes_in);
    add(&l, "bytes_out", st.bytes_out);
    if (all) {
        add(&l, "handshake_timeouts", st.handshake_timeouts);
        add(&l, "idle_timeouts", st.idle_timeouts);
        add(&l, "write_stalls", st.write_stalls);
        add(&l, "buffer_limit_closes", st.buffer_limit_closes);
    }
    if (s->opt.proxy_protocol)
        add(&l, "health_checks", st.health_checks);
    add(&l, "limit_rejections", st.limit_rejections);
    add(&l, "accept_errors", st.accept_errors);
    if (s->opt.forward != NULL) {
        add(&l, "backend_connects", st.connects);
        add(&l, "backend_failures", st.connect_failures);
    }
    if (s->opt.udp) {
        add(&l, "dtls_cookies_sent", st.dtls_cookies_sent);
        add(&l, "dtls_cookie_failures", st.dtls_cookie_failures);
        add(&l, "dtls_retransmissions", st.dtls_retransmissions);
        add(&l, "dtls_drops", st.dtls_drops);
    }
    cli_msg("counters:%s", l.buf);
}

/* ---- the serving loop ------------------------------------------------------------------ */

/* Whether the handler set *flag since the last call; clears it. */
static int take(volatile sig_atomic_t *flag)
{
    if (!*flag)
        return 0;
    *flag = 0;
    return 1;
}

/* SIGHUP: a new config from the same files; on any failure the old one stays. */
static void reload(struct server *s, const struct serve_model *m, void *impl)
{
    tlskit_config *cfg = server_config(&s->opt, 0);
    if (!cfg)
        return;
    const char *why = m->reload(impl, cfg);
    if (why != NULL) {
        cli_msg("reload: %s", why);
        tlskit_config_free(cfg);
        return;
    }
    tlskit_config_free(s->cfg);
    s->cfg = cfg;
    if (s->opt.ncert == 1)
        cli_msg("reload: new connections use %s", s->opt.cert[0]);
    else
        cli_msg("reload: new connections use %s and %zu more certificates", s->opt.cert[0],
                s->opt.ncert - 1);
}

int server_run(struct server *s, const struct serve_model *m)
{
    const char *addrs = NULL;
    void *impl = m->listen(s, &addrs);
    int rc = CLI_EXIT_OK;

    if (impl == NULL)
        return CLI_EXIT_ERROR;
    server_listening(addrs);
    if (m->start(impl) < 0) {
        m->free(impl);
        return CLI_EXIT_ERROR;
    }
    while (!server_should_stop(s)) {
        if (take(&reload_asked))
            reload(s, m, impl);
        if (take(&dump_asked))
            print_counters(s, m, impl);
        if (m->wait(impl) < 0) {
            rc = CLI_EXIT_ERROR;
            break;
        }
    }
    m->stop(impl);
    print_counters(s, m, impl);
    m->free(impl);
    return rc;
}

int server_init(struct server *s)
{
    if (server_take_activation(s) < 0)
        return -1;
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        cli_msg("pipe: %s", strerror(errno));
        return -1;
    }
    wake_fd = s->wake[1];
    if (s->opt.mode == MODE_HTTP && http_site_init(&s->site, s->opt.body_size) < 0) {
        cli_msg("out of memory");
        return -1;
    }
    if (install_signals() < 0 || (s->cfg = server_config(&s->opt, 1)) == NULL)
        return -1;
    return 0;
}

void server_cleanup(struct server *s)
{
    tlskit_config_free(s->cfg);
    s->cfg = NULL;
    http_site_free(&s->site);
    wake_fd = -1;
    if (s->wake[0] >= 0)
        close(s->wake[0]);
    if (s->wake[1] >= 0)
        close(s->wake[1]);
    s->wake[0] = s->wake[1] = -1;
}
