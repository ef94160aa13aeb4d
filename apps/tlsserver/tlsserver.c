/* SPDX-License-Identifier: MIT */
/*
 * tlsserver: a TLS server over the public tlskit API: echo (default), discard or a small
 * HTTP/1.1 responder, served by the event engine (default), a thread per connection, or
 * one connection at a time. This file: options, configuration, signals, logging.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "server.h"

#define SYNOPSIS "[options]"
#define DEFAULT_CERT "certs/server.crt"
#define DEFAULT_KEY "certs/server.key"
/* Every option's default (also used by the option-parser fuzz target). */
#define DEFAULT_OPTIONS                                                                    \
    {                                                                                      \
        .bind = "localhost", .port = "4433", .cert = DEFAULT_CERT, .key = DEFAULT_KEY,     \
        .tls_min = TLSKIT_TLS1_2, .tls_max = TLSKIT_TLS1_3, .handshake_ms = 10 * 1000,     \
        .idle_ms = 300 * 1000, .write_ms = 30 * 1000, .max_conns = 10000, .tickets = 1,    \
        .body_size = 1024, .model = MODEL_EVENT, .mode = MODE_ECHO, .verbosity = 1,        \
    }

volatile sig_atomic_t g_stop_signals, g_reload, g_dump;
static int g_wake_fd = -1;

static void usage(void)
{
    printf(
        "Usage: tlsserver [options]\n"
        "A TLS server: echoes every byte a client sends (or discards it, or answers\n"
        "HTTP/1.1 requests), serving many clients at once.\n"
        "\n"
        "Options:\n"
        "  --bind HOST               address to listen on (default: localhost, i.e.\n"
        "                            127.0.0.1 and ::1; '*' for all addresses, or\n"
        "                            0.0.0.0 / :: for all of one family)\n"
        "  --port PORT               TCP port (default: 4433; 0 picks a free port)\n"
        "  --cert FILE               certificate chain, PEM (default: " DEFAULT_CERT ")\n"
        "  --key FILE                private key, PEM (default: " DEFAULT_KEY ")\n"
        "  --ca FILE                 CA certificates, PEM, that client certificates\n"
        "                            must chain to\n"
        "  --verify-client[=MODE]    ask clients for a certificate; MODE 'required'\n"
        "                            (the default) rejects clients without one,\n"
        "                            'optional' accepts them; needs --ca\n"
        "  --tls-min VERSION         lowest TLS version, 1.2 or 1.3 (default: 1.2)\n"
        "  --tls-max VERSION         highest TLS version, 1.2 or 1.3 (default: 1.3)\n"
        "  --tickets N               TLS 1.3 session tickets sent after each full\n"
        "                            handshake, 0 to 16 (default: 1); 0 also turns\n"
        "                            TLS 1.2 tickets off\n"
        "  --handshake-timeout SECS  limit for a whole handshake (default: 10;\n"
        "                            fractions allowed; 0 = none)\n"
        "  --idle-timeout SECS       close a connection idle this long (default: 300;\n"
        "                            fractions allowed; 0 = none)\n"
        "  --write-timeout SECS      close a connection whose peer takes no data for\n"
        "                            this long while output is pending (event model;\n"
        "                            default: 30; 0 = none)\n"
        "  --max-conns N             connections served at once; more are closed at\n"
        "                            once and counted (default: 10000)\n"
        "  --model MODEL             event (default): epoll workers; thread: a thread\n"
        "                            per connection; iterative: one client at a time\n"
        "  --workers N               event model worker threads (default: one per core)\n"
        "  --mode MODE               echo (default), discard (read and drop), or http:\n"
        "                            HTTP/1.1 keep-alive, GET/HEAD get 200 and a fixed\n"
        "                            body, other methods 405, malformed requests 400\n"
        "  --body-size BYTES         http mode response body size (default: 1024)\n"
        "  --exit-after N            exit 0 once N connections have ended, rejected\n"
        "                            ones included (default: run until SIGINT or\n"
        "                            SIGTERM)\n"
        "  -v, --verbose             also log each handshake: SNI, group, client\n"
        "                            certificate subject and fingerprint, verify result\n"
        "  -q, --quiet               no per-connection lines (errors still shown)\n"
        "  -h, --help                show this help and exit\n"
        "  -V, --version             show the version and exit\n"
        "\n"
        "The first line on stdout is 'tlsserver: listening on ADDRESS:PORT[, ...]'.\n"
        "Each connection logs one line on stderr when it ends:\n"
        "  tlsserver: conn PEER proto=P cipher=C in=N out=N time=S.SSSs ok\n"
        "  tlsserver: conn PEER proto=P cipher=C in=N out=N time=S.SSSs error=CLASS: MESSAGE\n"
        "Signals: SIGINT or SIGTERM stops accepting, gives open connections up to 2\n"
        "seconds to finish, closes them and exits 0 (the event model echoes what they\n"
        "sent and sends close_notify; thread and iterative cut them). SIGHUP reloads\n"
        "the certificate, key and CA files: new connections get the new material, open\n"
        "ones keep theirs; if the new files are bad the old ones stay and the reason is\n"
        "logged. SIGUSR1 prints the counters (they are also printed on exit).\n"
        "\n"
        "Exit status: 0 stopped cleanly, 1 start-up error, 2 usage error.\n");
}

/* ---- options ------------------------------------------------------------------------ */

enum {
    OPT_BIND = 256, OPT_PORT, OPT_CERT, OPT_KEY, OPT_CA, OPT_VERIFY_CLIENT, OPT_TLS_MIN,
    OPT_TLS_MAX, OPT_HANDSHAKE_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_EXIT_AFTER, OPT_MAX_CONNS,
    OPT_WRITE_TIMEOUT, OPT_MODEL, OPT_WORKERS, OPT_MODE, OPT_BODY_SIZE, OPT_TICKETS,
};

static const struct option long_options[] = {
    {"bind", required_argument, NULL, OPT_BIND},
    {"port", required_argument, NULL, OPT_PORT},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"ca", required_argument, NULL, OPT_CA},
    {"verify-client", optional_argument, NULL, OPT_VERIFY_CLIENT},
    {"tls-min", required_argument, NULL, OPT_TLS_MIN},
    {"tls-max", required_argument, NULL, OPT_TLS_MAX},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"exit-after", required_argument, NULL, OPT_EXIT_AFTER},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"write-timeout", required_argument, NULL, OPT_WRITE_TIMEOUT},
    {"model", required_argument, NULL, OPT_MODEL},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"mode", required_argument, NULL, OPT_MODE},
    {"body-size", required_argument, NULL, OPT_BODY_SIZE},
    {"tickets", required_argument, NULL, OPT_TICKETS},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};


/* -1 to go on; otherwise the exit code (0 after --help or --version). */
static int parse_args(int argc, char **argv, struct options *o)
{
    unsigned long num;
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vqhV", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_BIND:
            o->bind = optarg;
            break;
        case OPT_PORT:
            if (cli_parse_ulong(optarg, 0, 65535, &num) < 0)
                return cli_usage_error(SYNOPSIS, "--port: '%s' is not a port number "
                                       "(0 to 65535)", optarg);
            snprintf(o->port, sizeof(o->port), "%lu", num);
            break;
        case OPT_CERT:
            o->cert = optarg;
            break;
        case OPT_KEY:
            o->key = optarg;
            break;
        case OPT_CA:
            o->ca = optarg;
            break;
        case OPT_VERIFY_CLIENT:
            if (optarg == NULL || strcmp(optarg, "required") == 0)
                o->verify_client = TLSKIT_VERIFY_CLIENT_REQUIRED;
            else if (strcmp(optarg, "optional") == 0)
                o->verify_client = TLSKIT_VERIFY_CLIENT_OPTIONAL;
            else
                return cli_usage_error(SYNOPSIS, "--verify-client: '%s' is not 'required' "
                                       "or 'optional'", optarg);
            break;
        case OPT_TLS_MIN:
        case OPT_TLS_MAX: {
            int v = tlskit_protocol_parse(optarg);
            if (v < 0)
                return cli_usage_error(SYNOPSIS, "%s: '%s' is not a TLS version (1.2 or 1.3)",
                                       c == OPT_TLS_MIN ? "--tls-min" : "--tls-max", optarg);
            *(c == OPT_TLS_MIN ? &o->tls_min : &o->tls_max) = v;
            break;
        }
        case OPT_HANDSHAKE_TIMEOUT:
        case OPT_IDLE_TIMEOUT:
        case OPT_WRITE_TIMEOUT: {
            int64_t *ms = c == OPT_IDLE_TIMEOUT    ? &o->idle_ms
                          : c == OPT_WRITE_TIMEOUT ? &o->write_ms
                                                   : &o->handshake_ms;
            if (cli_parse_seconds(optarg, ms) < 0)
                return cli_usage_error(SYNOPSIS, "%s: '%s' is not a number of seconds "
                                       "(e.g. 10 or 0.5, at most %ld)",
                                       c == OPT_IDLE_TIMEOUT    ? "--idle-timeout"
                                       : c == OPT_WRITE_TIMEOUT ? "--write-timeout"
                                                                : "--handshake-timeout",
                                       optarg, CLI_SECONDS_MAX);
            break;
        }
        case OPT_MODEL:
            if (strcmp(optarg, "event") == 0)
                o->model = MODEL_EVENT;
            else if (strcmp(optarg, "thread") == 0)
                o->model = MODEL_THREAD;
            else if (strcmp(optarg, "iterative") == 0)
                o->model = MODEL_ITERATIVE;
            else
                return cli_usage_error(SYNOPSIS, "--model: '%s' is not event, thread or "
                                       "iterative", optarg);
            break;
        case OPT_MODE:
            if (strcmp(optarg, "echo") == 0)
                o->mode = MODE_ECHO;
            else if (strcmp(optarg, "discard") == 0)
                o->mode = MODE_DISCARD;
            else if (strcmp(optarg, "http") == 0)
                o->mode = MODE_HTTP;
            else
                return cli_usage_error(SYNOPSIS, "--mode: '%s' is not echo, discard or http",
                                       optarg);
            break;
        case OPT_WORKERS:
            if (cli_parse_ulong(optarg, 1, 1024, &num) < 0)
                return cli_usage_error(SYNOPSIS, "--workers: '%s' is not a whole number from "
                                       "1 to 1024", optarg);
            o->workers = num;
            break;
        case OPT_BODY_SIZE:
            if (cli_parse_ulong(optarg, 0, 64ul << 20, &num) < 0)
                return cli_usage_error(SYNOPSIS, "--body-size: '%s' is not a size from 0 to "
                                       "%lu bytes", optarg, 64ul << 20);
            o->body_size = num;
            break;
        case OPT_TICKETS:
            if (cli_parse_ulong(optarg, 0, 16, &num) < 0)
                return cli_usage_error(SYNOPSIS, "--tickets: '%s' is not a whole number from "
                                       "0 to 16", optarg);
            o->tickets = (int)num;
            break;
        case OPT_EXIT_AFTER:
        case OPT_MAX_CONNS:
            if (cli_parse_ulong(optarg, 1, 1000000000, &num) < 0)
                return cli_usage_error(SYNOPSIS, "%s: '%s' is not a whole number from 1 "
                                       "to 1000000000",
                                       c == OPT_EXIT_AFTER ? "--exit-after" : "--max-conns",
                                       optarg);
            *(c == OPT_EXIT_AFTER ? &o->exit_after : &o->max_conns) = num;
            break;
        case 'v':
            o->verbosity = 2;
            break;
        case 'q':
            o->verbosity = 0;
            break;
        case 'h':
            usage();
            return CLI_EXIT_OK;
        case 'V':
            cli_print_version();
            return CLI_EXIT_OK;
        case ':': {
            char name[64];
            cli_bad_option_name(name, sizeof(name), argv);
            return cli_usage_error(SYNOPSIS, "option '%s' needs a value", name);
        }
        default: {
            char name[64];
            cli_bad_option_name(name, sizeof(name), argv);
            if (optopt != 0 && strncmp(name, "--", 2) == 0) /* "--help=x" */
                return cli_usage_error(SYNOPSIS, "option '%s' takes no value", name);
            return cli_usage_error(SYNOPSIS, "unknown option '%s'", name);
        }
        }
    }
    if (optind < argc) {
        if (strcmp(argv[optind], "optional") == 0 || strcmp(argv[optind], "required") == 0)
            return cli_usage_error(SYNOPSIS, "unexpected argument '%s' (did you mean "
                                   "--verify-client=%s?)", argv[optind], argv[optind]);
        return cli_usage_error(SYNOPSIS, "unexpected argument '%s'", argv[optind]);
    }
    if (o->verify_client != TLSKIT_VERIFY_CLIENT_NONE && o->ca == NULL)
        return cli_usage_error(SYNOPSIS, "--verify-client needs --ca FILE (the CA that "
                               "client certificates must chain to)");
    if (o->tls_min > o->tls_max)
        return cli_usage_error(SYNOPSIS, "--tls-min is higher than --tls-max");
    return -1;
}

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
    if ((o->ca != NULL && tlskit_config_add_ca_file(cfg, o->ca) < 0) ||
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
    unsigned long long in = tlskit_conn_bytes_in(c);
    unsigned long long out = tlskit_conn_bytes_out(c);
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
        for (int i = 1; i < TLSKIT_E__COUNT; i++) {
            if (!st->handshake_errors[i])
                continue;
            int n = snprintf(byclass + used, sizeof(byclass) - used, " failed_%s=%llu",
                             tlskit_error_name(i) + strlen("TLSKIT_E_"),
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
        .opt = DEFAULT_OPTIONS,
        .wake = {-1, -1},
    };
    int rc;

    cli_init("tlsserver");
    rc = parse_args(argc, argv, &s.opt);
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
