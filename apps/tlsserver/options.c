/* SPDX-License-Identifier: MIT */
/* tlsserver's options: help text, defaults, parsing and the checks across options. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <tlskit/tlskit.h>

#include "cli.h"
#include "options.h"

#define SYNOPSIS "[options]"
#define STRINGIFY(x) #x
#define TEXT(x) STRINGIFY(x)
#define GRACE_SECS_TEXT TEXT(GRACE_SECS)

struct options tlsserver_defaults(void)
{
    return (struct options){
        .bind = "localhost", .port = "4433", .cert = {DEFAULT_CERT}, .key = {DEFAULT_KEY},
        .tls_min = TLSKIT_TLS1_2, .tls_max = TLSKIT_TLS1_3, .handshake_ms = 10 * 1000,
        .idle_ms = 300 * 1000, .write_ms = 30 * 1000, .max_conns = 10000, .tickets = 1,
        .ticket_lifetime = 3600,
        .body_size = 1024, .model = MODEL_EVENT, .mode = MODE_ECHO, .verbosity = 1,
        .backend_timeout_ms = 10 * 1000,
    };
}

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
        "                            0.0.0.0 / :: for all of one family; an IPv6\n"
        "                            address may be in brackets: [::1])\n"
        "  --port PORT               TCP port (default: 4433; 0 picks a free port)\n"
        "  --cert FILE               certificate chain, PEM (default: " DEFAULT_CERT ")\n"
        "  --key FILE                private key, PEM (default: " DEFAULT_KEY ")\n"
        "                            --cert and --key may be given several times, in\n"
        "                            pairs (the Nth --key goes with the Nth --cert):\n"
        "                            a client gets the pair whose certificate has the\n"
        "                            name it asks for (SNI; exact DNS name, then a\n"
        "                            '*.' wildcard), else the first pair; pairs of\n"
        "                            different key types (ECDSA, RSA) may share a name\n"
        "  --ocsp-staple FILE        OCSP response, DER, stapled for the --cert/--key\n"
        "                            pair given just before it (before any --cert: the\n"
        "                            default pair); one that is not for that\n"
        "                            certificate, not 'good' or not current is not\n"
        "                            stapled (a warning says why). Re-read on SIGHUP\n"
        "  --sni-strict              refuse clients that ask for no name or for one no\n"
        "                            certificate has (unrecognized_name alert)\n"
        "  --alpn LIST               ALPN protocols in order of preference, e.g.\n"
        "                            h2,http/1.1; a client offering none of them is\n"
        "                            refused (no_application_protocol alert), one\n"
        "                            offering no ALPN is served without\n"
        "  --ca FILE                 CA certificates, PEM, that client certificates\n"
        "                            must chain to\n"
        "  --verify-client[=MODE]    ask clients for a certificate; MODE 'required'\n"
        "                            (the default) rejects clients without one,\n"
        "                            'optional' accepts them; needs --ca\n"
        "  --crl FILE                certificate revocation list(s), PEM (may repeat;\n"
        "                            needs --verify-client): a revoked client\n"
        "                            certificate is refused; the client's issuer must\n"
        "                            then have a CRL among them. Re-read on SIGHUP\n"
        "  --allow-client ID         accept only client certificates with one of these\n"
        "                            identities (repeat for more): dns:NAME, uri:URI\n"
        "                            (e.g. a SPIFFE ID), email:ADDR, cn:NAME (only\n"
        "                            for certificates without SANs) or\n"
        "                            spki:sha256//BASE64; needs --verify-client\n"
        "  --keylog FILE             INSECURE, for debugging: append the TLS secrets\n"
        "                            of every connection to FILE (NSS key log format,\n"
        "                            for Wireshark); anyone who reads FILE can decrypt\n"
        "                            the traffic\n"
        "  --no-ca-names             do not list the --ca certificates' names in the\n"
        "                            certificate request (sent by default)\n");
    printf(
        "  --proxy-protocol          every connection starts with a PROXY protocol\n"
        "                            header, v1 or v2 (HAProxy send-proxy[-v2]), read\n"
        "                            before TLS: the client it names is the peer that\n"
        "                            logs show; LOCAL headers (health checks) keep the\n"
        "                            real peer, and one closed before TLS is counted\n"
        "                            (health_checks) and logged only with -v. A\n"
        "                            malformed header, or none within the\n"
        "                            handshake timeout (10 s if that is 0), fails the\n"
        "                            connection\n"
        "  --proxy-from CIDR         who may send that header (may repeat), e.g.\n"
        "                            10.0.0.0/8 or 2001:db8::7 (default: 127.0.0.0/8\n"
        "                            and ::1); a connection from anyone else is\n"
        "                            refused and logged\n");
    /* In parts: C99 promises string literals of 4095 bytes, no more. */
    printf(
        "  --tls-min VERSION         lowest TLS version, 1.2 or 1.3 (default: 1.2)\n"
        "  --tls-max VERSION         highest TLS version, 1.2 or 1.3 (default: 1.3)\n"
        "  --tickets N               TLS 1.3 session tickets sent after each full\n"
        "                            handshake, 0 to 16 (default: 1); 0 also turns\n"
        "                            TLS 1.2 tickets off\n"
        "  --ticket-key FILE         session-ticket key in nginx's format (48 or 80\n"
        "                            bytes, mode 0600); may repeat: the first encrypts,\n"
        "                            the others only decrypt (a fresh ticket follows).\n"
        "                            Servers given the same file resume each other's\n"
        "                            sessions. Re-read on SIGHUP\n"
        "  --ticket-lifetime SECS    without --ticket-key: a new random ticket key every\n"
        "                            SECS, a ticket accepted for SECS more after its key\n"
        "                            stops encrypting (default: 3600); keys survive\n"
        "                            SIGHUP\n"
        "  --handshake-timeout SECS  limit for a whole handshake (default: 10;\n"
        "                            fractions allowed; 0 = none)\n"
        "  --idle-timeout SECS       close a connection idle this long (default: 300;\n"
        "                            fractions allowed; 0 = none), with close_notify:\n"
        "                            the client sees a clean end (tlsclient exits 0),\n"
        "                            the log line says error=TLSKIT_E_TIMEOUT\n"
        "  --write-timeout SECS      close a connection whose peer takes no data for\n"
        "                            this long while output is pending (event model;\n"
        "                            default: 30; 0 = none)\n"
        "  --max-conns N             connections served at once; more are refused at\n"
        "                            once with an internal_error alert, logged (event\n"
        "                            model: once a second) and counted\n"
        "                            (default: 10000)\n"
        "  --model MODEL             event (default): epoll workers; thread: a thread\n"
        "                            per connection; iterative: one client at a time\n"
        "  --workers N               event model worker threads (default: one per core)\n"
        "  --mode MODE               echo (default), discard (read and drop), or http:\n"
        "                            HTTP/1.1 keep-alive, GET/HEAD get 200 and a fixed\n"
        "                            body, other methods 405, malformed requests 400\n"
        "  --body-size BYTES         http mode response body size (default: 1024)\n"
        "  --udp                     DTLS 1.2 over UDP instead of TLS over TCP (event\n"
        "                            model; echo or discard): each datagram is echoed\n"
        "                            as one datagram; clients prove their address\n"
        "                            with a stateless cookie first\n"
        "  --mtu BYTES               with --udp: the most bytes one UDP datagram\n"
        "                            carries, IP and UDP headers not counted\n"
        "                            (default: 1232; 256 to 65507)\n"
        "  --exit-after N            exit 0 once N connections have ended, rejected\n"
        "                            ones included (default: run until SIGINT or\n"
        "                            SIGTERM)\n"
        "  -v, --verbose             also log each handshake: SNI, the certificate\n"
        "                            served, group, client certificate subject and\n"
        "                            fingerprint, verify result\n"
        "  -vv                       also trace each handshake as it happens: one line\n"
        "                            per message and alert after the client's address,\n"
        "                            '<' received, '>' sent, hellos with extensions\n"
        "  -q, --quiet               no per-connection lines (errors still shown)\n"
        "  --log-format FORMAT       text (default) or json: each connection's line\n"
        "                            (and -v's handshake line) as one JSON object\n"
        "                            per line, with tlsclient --json's field names;\n"
        "                            other messages stay 'tlsserver: ...' text\n"
        "  -h, --help                show this help and exit\n"
        "  -V, --version             show the version and exit\n"
        "\n");
    printf(
        "Forwarding (a TLS terminator in front of a plain TCP service; event model):\n"
        "  --forward HOST:PORT       relay every client, once its handshake is done, to a\n"
        "  --forward unix:/PATH      new connection to this backend (TCP, or a UNIX\n"
        "                            socket), bytes both ways until both sides are done;\n"
        "                            replaces --mode. A half-close is carried across\n"
        "                            (close_notify becomes a FIN and the reverse); a\n"
        "                            side that stops reading stops reading on the other.\n"
        "                            A backend that cannot be reached closes the client\n"
        "                            with close_notify ('backend ADDR: why' is logged);\n"
        "                            a backend that resets resets the client. A HOST\n"
        "                            name is resolved for each connection on a resolver\n"
        "                            thread, never holding up the other clients\n"
        "  --backend-timeout SECS    limit for resolving and connecting to the backend\n"
        "                            (default: 10; fractions allowed; 0 = none)\n"
        "  --send-proxy v1|v2        send the backend a PROXY protocol header first,\n"
        "                            with the client's address; v2 adds the TLS version,\n"
        "                            cipher, SNI, ALPN and the client certificate's CN\n"
        "                            (HAProxy's PP2_TYPE_SSL TLVs)\n"
        "\n");
    /* Two strings: C99 promises only 4095 characters in one literal. */
    printf(
        "The first line on stdout is 'tlsserver: listening on ADDRESS:PORT[, ...]'.\n"
        "Each connection logs one line on stderr when it ends:\n"
        "  tlsserver: conn PEER proto=P cipher=C alpn=A in=N out=N time=S.SSSs ok\n"
        "  tlsserver: conn PEER proto=P cipher=C alpn=A in=N out=N time=S.SSSs error=CLASS: MESSAGE\n"
        "(alpn=- when no protocol was agreed with --alpn). With --forward, out=N is\n"
        "followed by backend=ADDR backend_in=N backend_out=N (bytes from and to it).\n"
        "With --alpn, 'alpn=NAME' (or 'alpn=-') follows cipher=C.\n"
        "With --log-format json the same line is, e.g.:\n"
        "  {\"event\":\"conn\",\"peer\":\"127.0.0.1:50000\",\"protocol\":\"TLSv1.3\",...,\"ok\":true}\n"
        "Signals: SIGINT or SIGTERM stops accepting, gives open connections up to "
        GRACE_SECS_TEXT "\n"
        "seconds to finish, closes them and exits 0 (the event model echoes what they\n"
        "sent and sends close_notify; thread and iterative cut them). SIGHUP reloads\n"
        "every --cert, --key, --ocsp-staple, --ca, --crl and --ticket-key file: new\n"
        "connections get the new material, open ones keep theirs, tickets issued\n"
        "before still resume; if the new files are bad the old ones stay and the\n"
        "reason is logged. SIGUSR1 prints the counters (they are also printed on exit).\n"
        "Started by systemd socket activation (LISTEN_PID, LISTEN_FDS), it serves the\n"
        "listening sockets systemd passes instead of --bind/--port (see contrib/systemd).\n"
        "\n"
        "Exit status: 0 stopped cleanly, 1 start-up error, 2 usage error.\n");
}

/* ---- options ------------------------------------------------------------------------ */

enum {
    OPT_BIND = 256, OPT_PORT, OPT_CERT, OPT_KEY, OPT_CA, OPT_VERIFY_CLIENT, OPT_TLS_MIN,
    OPT_TLS_MAX, OPT_HANDSHAKE_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_EXIT_AFTER, OPT_MAX_CONNS,
    OPT_WRITE_TIMEOUT, OPT_MODEL, OPT_WORKERS, OPT_MODE, OPT_BODY_SIZE, OPT_TICKETS,
    OPT_TICKET_KEY, OPT_TICKET_LIFETIME, OPT_CRL, OPT_ALLOW_CLIENT, OPT_KEYLOG,
    OPT_SNI_STRICT, OPT_ALPN, OPT_NO_CA_NAMES, OPT_OCSP_STAPLE, OPT_LOG_FORMAT,
    OPT_FORWARD, OPT_BACKEND_TIMEOUT, OPT_SEND_PROXY, OPT_PROXY_PROTOCOL, OPT_PROXY_FROM,
    OPT_UDP, OPT_MTU,
};

static const struct option long_options[] = {
    {"bind", required_argument, NULL, OPT_BIND},
    {"port", required_argument, NULL, OPT_PORT},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"ca", required_argument, NULL, OPT_CA},
    {"crl", required_argument, NULL, OPT_CRL},
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
    {"ticket-key", required_argument, NULL, OPT_TICKET_KEY},
    {"ticket-lifetime", required_argument, NULL, OPT_TICKET_LIFETIME},
    {"allow-client", required_argument, NULL, OPT_ALLOW_CLIENT},
    {"keylog", required_argument, NULL, OPT_KEYLOG},
    {"sni-strict", no_argument, NULL, OPT_SNI_STRICT},
    {"alpn", required_argument, NULL, OPT_ALPN},
    {"no-ca-names", no_argument, NULL, OPT_NO_CA_NAMES},
    {"ocsp-staple", required_argument, NULL, OPT_OCSP_STAPLE},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"forward", required_argument, NULL, OPT_FORWARD},
    {"backend-timeout", required_argument, NULL, OPT_BACKEND_TIMEOUT},
    {"send-proxy", required_argument, NULL, OPT_SEND_PROXY},
    {"proxy-protocol", no_argument, NULL, OPT_PROXY_PROTOCOL},
    {"proxy-from", required_argument, NULL, OPT_PROXY_FROM},
    {"udp", no_argument, NULL, OPT_UDP},
    {"mtu", required_argument, NULL, OPT_MTU},
    CLI_COMMON_LONG_OPTIONS,
};

/* --verify-client, --model, --mode and --log-format: a word from a short list. -1 to go on, or the
 * exit code. */
static int set_choice(int c, struct options *o)
{
    switch (c) {
    case OPT_VERIFY_CLIENT:
        if (optarg == NULL || strcmp(optarg, "required") == 0)
            o->verify_client = TLSKIT_VERIFY_CLIENT_REQUIRED;
        else if (strcmp(optarg, "optional") == 0)
            o->verify_client = TLSKIT_VERIFY_CLIENT_OPTIONAL;
        else
            return cli_usage_error(SYNOPSIS, "--verify-client: '%s' is not 'required' or "
                                   "'optional'", optarg);
        return -1;
    case OPT_MODEL:
        o->model_given = 1;
        if (strcmp(optarg, "event") == 0)
            o->model = MODEL_EVENT;
        else if (strcmp(optarg, "thread") == 0)
            o->model = MODEL_THREAD;
        else if (strcmp(optarg, "iterative") == 0)
            o->model = MODEL_ITERATIVE;
        else
            return cli_usage_error(SYNOPSIS, "--model: '%s' is not event, thread or "
                                   "iterative", optarg);
        return -1;
    case OPT_LOG_FORMAT:
        if (strcmp(optarg, "text") == 0)
            o->log_json = 0;
        else if (strcmp(optarg, "json") == 0)
            o->log_json = 1;
        else
            return cli_usage_error(SYNOPSIS, "--log-format: '%s' is not text or json",
                                   optarg);
        return -1;
    default: /* OPT_MODE */
        if (strcmp(optarg, "echo") == 0)
            o->mode = MODE_ECHO;
        else if (strcmp(optarg, "discard") == 0)
            o->mode = MODE_DISCARD;
        else if (strcmp(optarg, "http") == 0)
            o->mode = MODE_HTTP;
        else
            return cli_usage_error(SYNOPSIS, "--mode: '%s' is not echo, discard or http",
                                   optarg);
        return -1;
    }
}

/* The timeouts: decimal seconds. -1 to go on, or the exit code. */
static int set_timeout(int c, struct options *o)
{
    int64_t *ms = c == OPT_IDLE_TIMEOUT    ? &o->idle_ms
                  : c == OPT_WRITE_TIMEOUT ? &o->write_ms
                                           : &o->handshake_ms;
    if (cli_parse_seconds(optarg, ms) == 0)
        return -1;
    return cli_usage_error(SYNOPSIS, "%s: '%s' is not a number of seconds (e.g. 10 or 0.5, "
                           "at most %ld)",
                           c == OPT_IDLE_TIMEOUT    ? "--idle-timeout"
                           : c == OPT_WRITE_TIMEOUT ? "--write-timeout"
                                                    : "--handshake-timeout",
                           optarg, CLI_SECONDS_MAX);
}

/* The whole numbers, each with its range. -1 to go on, or the exit code. */
static int set_number(int c, struct options *o)
{
    unsigned long num;

    switch (c) {
    case OPT_PORT:
        if (cli_parse_ulong(optarg, 0, 65535, &num) < 0)
            return cli_usage_error(SYNOPSIS, "--port: '%s' is not a port number "
                                   "(0 to 65535)", optarg);
        snprintf(o->port, sizeof(o->port), "%lu", num);
        return -1;
    case OPT_WORKERS:
        if (cli_parse_ulong(optarg, 1, 1024, &num) < 0)
            return cli_usage_error(SYNOPSIS, "--workers: '%s' is not a whole number from "
                                   "1 to 1024", optarg);
        o->workers = num;
        return -1;
    case OPT_BODY_SIZE:
        if (cli_parse_ulong(optarg, 0, 64ul << 20, &num) < 0)
            return cli_usage_error(SYNOPSIS, "--body-size: '%s' is not a size from 0 to "
                                   "%lu bytes", optarg, 64ul << 20);
        o->body_size = num;
        return -1;
    case OPT_TICKETS:
        if (cli_parse_ulong(optarg, 0, 16, &num) < 0)
            return cli_usage_error(SYNOPSIS, "--tickets: '%s' is not a whole number from "
                                   "0 to 16", optarg);
        o->tickets = (int)num;
        return -1;
    case OPT_TICKET_LIFETIME:
        if (cli_parse_ulong(optarg, 1, TLSKIT_TICKET_LIFETIME_MAX, &num) < 0)
            return cli_usage_error(SYNOPSIS, "--ticket-lifetime: '%s' is not a whole number "
                                   "of seconds from 1 to %d", optarg,
                                   TLSKIT_TICKET_LIFETIME_MAX);
        o->ticket_lifetime = (long)num;
        return -1;
    default: /* OPT_EXIT_AFTER, OPT_MAX_CONNS */
        if (cli_parse_ulong(optarg, 1, 1000000000, &num) < 0)
            return cli_usage_error(SYNOPSIS, "%s: '%s' is not a whole number from 1 "
                                   "to 1000000000",
                                   c == OPT_EXIT_AFTER ? "--exit-after" : "--max-conns",
                                   optarg);
        *(c == OPT_EXIT_AFTER ? &o->exit_after : &o->max_conns) = num;
        return -1;
    }
}

/* --allow-client: the library's parser says what is wrong before anything listens. */
static int allow_client_option(const char *id, struct options *o)
{
    if (o->nallow_client == MAX_ALLOW_CLIENT)
        return cli_usage_error(SYNOPSIS, "--allow-client: at most %d identities",
                               MAX_ALLOW_CLIENT);
    o->allow_client[o->nallow_client++] = id;
    return cli_config_value_option(SYNOPSIS, "--allow-client", id,
                                   tlskit_config_add_allowed_client);
}

/* --proxy-from: checked by the library's parser before anything listens. */
static int proxy_from_option(const char *cidr, struct options *o)
{
    char why[200];
    if (o->nproxy_from == MAX_PROXY_FROM)
        return cli_usage_error(SYNOPSIS, "--proxy-from: at most %d prefixes", MAX_PROXY_FROM);
    if (tlskit_proxy_from_check(cidr, why, sizeof(why)) != 0)
        return cli_usage_error(SYNOPSIS, "--proxy-from: %s", why);
    o->proxy_from[o->nproxy_from++] = cidr;
    return -1;
}

/* --cert and --key: the next file of their list. -1 to go on, or the exit code. */
static int set_keypair_file(int c, struct options *o)
{
    size_t *n = c == OPT_CERT ? &o->ncert : &o->nkey;
    if (*n == MAX_KEYPAIRS)
        return cli_usage_error(SYNOPSIS, "%s: more than %d given", c == OPT_CERT ? "--cert"
                               : "--key", MAX_KEYPAIRS);
    (c == OPT_CERT ? o->cert : o->key)[(*n)++] = optarg;
    return -1;
}

/* --ocsp-staple: for the pair given last (the default pair before any). -1 to go on, or
 * the exit code. */
static int set_ocsp_staple(struct options *o)
{
    size_t n = o->ncert > o->nkey ? o->ncert : o->nkey;
    size_t i = n > 0 ? n - 1 : 0;
    if (o->ocsp_staple[i] != NULL)
        return cli_usage_error(SYNOPSIS, "--ocsp-staple %s: the pair it applies to has one "
                               "already (%s)", optarg, o->ocsp_staple[i]);
    o->ocsp_staple[i] = optarg;
    if (n == 0)
        o->ocsp_staple_default = 1;
    return -1;
}

/* --forward, --backend-timeout, --send-proxy. -1 to go on, or the exit code. */
static int set_forward(int c, struct options *o)
{
    if (c == OPT_BACKEND_TIMEOUT) {
        if (cli_parse_seconds(optarg, &o->backend_timeout_ms) == 0)
            return -1;
        return cli_usage_error(SYNOPSIS, "--backend-timeout: '%s' is not a number of seconds "
                               "(e.g. 10 or 0.5, at most %ld)", optarg, CLI_SECONDS_MAX);
    }
    if (c == OPT_SEND_PROXY) {
        if (strcmp(optarg, "v1") == 0 || strcmp(optarg, "1") == 0)
            o->send_proxy = 1;
        else if (strcmp(optarg, "v2") == 0 || strcmp(optarg, "2") == 0)
            o->send_proxy = 2;
        else
            return cli_usage_error(SYNOPSIS, "--send-proxy: '%s' is not v1 or v2", optarg);
        return -1;
    }
    o->forward = optarg;
    if (strncmp(optarg, "unix:", 5) == 0) {
        if (optarg[5] != '/' || strlen(optarg) >= sizeof(o->fwd_host) || strlen(optarg) > 5 + 107)
            return cli_usage_error(SYNOPSIS, "--forward %s: a UNIX socket is unix:/PATH (an "
                                   "absolute path of at most 107 bytes)", optarg);
        snprintf(o->fwd_host, sizeof(o->fwd_host), "%s", optarg);
        o->fwd_port[0] = '\0';
        return -1;
    }
    if (cli_parse_addr_port(optarg, 0, o->fwd_host, sizeof(o->fwd_host), o->fwd_port,
                           sizeof(o->fwd_port)) < 0 || strcmp(o->fwd_port, "0") == 0)
        return cli_usage_error(SYNOPSIS, "--forward %s: expected HOST:PORT, [V6]:PORT or "
                               "unix:/PATH", optarg);
    return -1;
}

/* One option, c as getopt_long() returned it (for cli_parse_options(), hence the void
 * pointer). -1 to go on, or the exit code. */
static int set_option(int c, char **argv, void *opts)
{
    struct options *o = opts;

    switch (c) {
    case OPT_BIND: {
        char why[160];
        if (cli_parse_host(optarg, o->bind_host, why, sizeof(why)) < 0)
            return cli_usage_error(SYNOPSIS, "--bind '%s': %s", optarg, why);
        o->bind = o->bind_host;
        return -1;
    }
    case OPT_CERT:
    case OPT_KEY:
        return set_keypair_file(c, o);
    case OPT_OCSP_STAPLE:
        return set_ocsp_staple(o);
    case OPT_SNI_STRICT:
        o->sni_strict = 1;
        return -1;
    case OPT_UDP:
        o->udp = 1;
        return -1;
    case OPT_MTU: {
        unsigned long num;
        if (cli_parse_ulong(optarg, 256, 65507, &num) < 0)
            return cli_usage_error(SYNOPSIS, "--mtu: '%s' is not a size from 256 to 65507 "
                                   "bytes", optarg);
        o->mtu = num;
        return -1;
    }
    case OPT_NO_CA_NAMES:
        o->no_ca_names = 1;
        return -1;
    case OPT_ALPN:
        return cli_alpn_option(SYNOPSIS, optarg, &o->alpn);
    case OPT_CA:
        o->ca = optarg;
        return -1;
    case OPT_CRL:
        if (o->ncrl == TLSSERVER_MAX_CRLS)
            return cli_usage_error(SYNOPSIS, "--crl: at most %d files", TLSSERVER_MAX_CRLS);
        o->crl[o->ncrl++] = optarg;
        return -1;
    case OPT_TICKET_KEY:
        if (o->nticket_keys == MAX_TICKET_KEYS)
            return cli_usage_error(SYNOPSIS, "--ticket-key: more than %d key files",
                                   MAX_TICKET_KEYS);
        o->ticket_keys[o->nticket_keys++] = optarg;
        return -1;
    case OPT_TLS_MIN:
        return cli_tls_version_option(SYNOPSIS, "--tls-min", optarg, &o->tls_min);
    case OPT_TLS_MAX:
        return cli_tls_version_option(SYNOPSIS, "--tls-max", optarg, &o->tls_max);
    case OPT_VERIFY_CLIENT:
    case OPT_MODEL:
    case OPT_MODE:
    case OPT_LOG_FORMAT:
        return set_choice(c, o);
    case OPT_ALLOW_CLIENT:
        return allow_client_option(optarg, o);
    case OPT_PROXY_PROTOCOL:
        o->proxy_protocol = 1;
        return -1;
    case OPT_PROXY_FROM:
        return proxy_from_option(optarg, o);
    case OPT_KEYLOG:
        if (*optarg == '\0')
            return cli_usage_error(SYNOPSIS, "--keylog: the file name is empty");
        o->keylog = optarg;
        return -1;
    case OPT_HANDSHAKE_TIMEOUT:
    case OPT_IDLE_TIMEOUT:
    case OPT_WRITE_TIMEOUT:
        return set_timeout(c, o);
    case OPT_FORWARD:
    case OPT_BACKEND_TIMEOUT:
    case OPT_SEND_PROXY:
        return set_forward(c, o);
    case OPT_PORT:
    case OPT_WORKERS:
    case OPT_BODY_SIZE:
    case OPT_TICKETS:
    case OPT_TICKET_LIFETIME:
    case OPT_EXIT_AFTER:
    case OPT_MAX_CONNS:
        return set_number(c, o);
    default:
        return cli_common_option(c, argv, SYNOPSIS, usage, &o->verbosity);
    }
}

/* --cert and --key come in pairs; neither means the default pair. -1 to go on, or the
 * exit code. */
static int check_keypairs(struct options *o)
{
    if (o->ncert > o->nkey)
        return cli_usage_error(SYNOPSIS, "--cert %s has no --key (each --cert needs its own "
                               "--key FILE)", o->cert[o->nkey]);
    if (o->nkey > o->ncert)
        return cli_usage_error(SYNOPSIS, "--key %s has no --cert (each --key needs its own "
                               "--cert FILE)", o->key[o->ncert]);
    if (o->ocsp_staple_default && o->ncert > 0)
        return cli_usage_error(SYNOPSIS, "--ocsp-staple %s comes before any --cert: it is for "
                               "the default pair, which --cert replaces (give it after its "
                               "--cert/--key)", o->ocsp_staple[0]);
    if (o->ncert == 0)
        o->ncert = o->nkey = 1; /* the defaults, already in [0] */
    return -1;
}

/* No operands, and the checks across options. -1 to go on, or the exit code. */
static int check_args(int argc, char **argv, struct options *o)
{
    if (optind < argc) {
        if (strcmp(argv[optind], "optional") == 0 || strcmp(argv[optind], "required") == 0)
            return cli_usage_error(SYNOPSIS, "unexpected argument '%s' (did you mean "
                                   "--verify-client=%s?)", argv[optind], argv[optind]);
        return cli_usage_error(SYNOPSIS, "unexpected argument '%s'", argv[optind]);
    }
    if (o->ncrl > 0 && o->verify_client == TLSKIT_VERIFY_CLIENT_NONE)
        return cli_usage_error(SYNOPSIS, "--crl needs --verify-client (CRLs are checked "
                               "against client certificates)");
    if (o->verify_client != TLSKIT_VERIFY_CLIENT_NONE && o->ca == NULL)
        return cli_usage_error(SYNOPSIS, "--verify-client needs --ca FILE (the CA that "
                               "client certificates must chain to)");
    if (o->nallow_client > 0 && o->verify_client != TLSKIT_VERIFY_CLIENT_REQUIRED)
        return cli_usage_error(SYNOPSIS, "--allow-client needs --verify-client (required: "
                               "a client without a certificate has no identity to allow)");
    if (o->tls_min > o->tls_max)
        return cli_usage_error(SYNOPSIS, "--tls-min is higher than --tls-max");
    if (o->forward != NULL && o->model != MODEL_EVENT)
        return cli_usage_error(SYNOPSIS, "--forward needs the event model (--model event, "
                               "the default)");
    if (o->forward == NULL && o->send_proxy)
        return cli_usage_error(SYNOPSIS, "--send-proxy needs --forward");
    if (o->nproxy_from > 0 && !o->proxy_protocol)
        return cli_usage_error(SYNOPSIS, "--proxy-from needs --proxy-protocol");
    if (o->mtu && !o->udp)
        return cli_usage_error(SYNOPSIS, "--mtu needs --udp (it sizes datagrams)");
    if (o->udp && o->model != MODEL_EVENT)
        return cli_usage_error(SYNOPSIS, "--udp is served by the event model only");
    if (o->udp && o->mode == MODE_HTTP)
        return cli_usage_error(SYNOPSIS, "--udp serves --mode echo or discard (HTTP/1.1 "
                               "needs a stream)");
    if (o->udp && o->tls_min == TLSKIT_TLS1_3)
        return cli_usage_error(SYNOPSIS, "--udp speaks DTLS 1.2 only (OpenSSL 3.0 has no "
                               "DTLS 1.3): --tls-min 1.3 cannot be met");
    if (o->udp && (o->forward != NULL || o->proxy_protocol))
        return cli_usage_error(SYNOPSIS, "--udp serves datagrams itself: not with %s",
                               o->forward != NULL ? "--forward" : "--proxy-protocol");
    return check_keypairs(o);
}

int tlsserver_parse_args(int argc, char **argv, struct options *o)
{
    int rc = cli_parse_options(argc, argv, long_options, set_option, o);
    return rc >= 0 ? rc : check_args(argc, argv, o);
}
