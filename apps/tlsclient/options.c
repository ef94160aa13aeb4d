/* SPDX-License-Identifier: MIT */
/* tlsclient's options: help text, defaults, parsing and the checks across options. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <tlskit/tlskit.h>

#include "cli.h"
#include "options.h"
#include "starttls.h"

#define SYNOPSIS "[options] HOST PORT | HOST:PORT"

struct options tlsclient_defaults(void)
{
    return (struct options){
        .timeout_ms = 30 * 1000,
        .tls_min = TLSKIT_TLS1_2,
        .tls_max = TLSKIT_TLS1_3,
        .warn_days = -1,
        .verbosity = 1,
    };
}

static void usage(void)
{
    printf(
        "Usage: tlsclient [options] HOST PORT | HOST:PORT\n"
        "Connect to a TLS server, send it stdin and copy what it sends to stdout.\n"
        "At the end of stdin, send close_notify and wait for the server to close.\n"
        "An IPv6 address may be written in brackets: [::1]:4433 or [::1] 4433.\n"
        "\n"
        "Options:\n"
        "  --ca FILE            trust the CA certificates in FILE (PEM) instead of the\n"
        "                       system trust store\n"
        "  --capath DIR         trust the CA certificates in DIR (hashed, c_rehash\n"
        "                       style) instead of the system trust store\n"
        "  --crl FILE           certificate revocation list(s), PEM (may repeat): a\n"
        "                       revoked server certificate fails with exit 5; the\n"
        "                       server's issuer must then have a CRL among them\n"
        "  --servername NAME    name to send as SNI and to check the certificate\n"
        "                       against (default: HOST)\n"
        "  --insecure           do NOT verify the server's certificate or name\n"
        "                       (anyone on the path can impersonate the server)\n"
        "  --pin LIST           also require the server's public key to be one of\n"
        "                       LIST: sha256//BASE64[;sha256//BASE64...] (curl's\n"
        "                       --pinnedpubkey format; a mismatch exits 5 and\n"
        "                       prints the key the server has)\n"
        "  --require-staple     require a stapled OCSP response that says good, signed\n"
        "                       by the issuer or its responder, for this certificate,\n"
        "                       current; otherwise exit 5 with the reason (a staple is\n"
        "                       always asked for: a stapled 'revoked' exits 5 anyway,\n"
        "                       and -v shows the status)\n"
        "  --showcerts          print the server's certificate chain (PEM) on stderr\n"
        );
    printf(
        "  --check              connect, handshake, print a report on stdout and exit\n"
        "                       (no relay; stdin is not read): address, protocol,\n"
        "                       cipher, group, SNI, ALPN, resumed, verify result,\n"
        "                       each certificate the server sent (subject, issuer,\n"
        "                       SANs, validity, key, signature, SHA-256, --pin\n"
        "                       value, place in the verified chain) and the time\n"
        "                       of each phase; on failure, what was learned\n"
        "  --warn-days N        with --check: exit 8 when the leaf or any other\n"
        "                       certificate of the chain expires within N days\n"
        "                       (the report says which)\n"
        "  --json               the report as one JSON object: on stdout with\n"
        "                       --check; else on stderr after the handshake (or the\n"
        "                       failure), before the relay; a failure adds \"error\"\n"
        );
    printf(
        "  --keylog FILE        INSECURE, for debugging: append the TLS secrets to\n"
        "                       FILE (NSS key log format, for Wireshark); without\n"
        "                       it, the SSLKEYLOGFILE environment variable is\n"
        "                       honoured the same way, with the same warning\n"
        "  --cert FILE          client certificate chain, PEM (needs --key)\n"
        "  --key FILE           client private key, PEM (needs --cert)\n"
        );
    printf(
        "  --starttls PROTO     speak PROTO in plain text until the server agrees to\n"
        "                       start TLS, then TLS as usual (name checked as usual):\n"
        "                       smtp, imap, pop3, ftp, xmpp (to='HOST' or\n"
        "                       --servername) or postgres; the relay then carries\n"
        "                       PROTO. --timeout covers this phase too\n"
        "  --alpn LIST          offer these ALPN protocols, in order of preference,\n"
        "                       e.g. h2,http/1.1 (-v shows the one selected)\n"
        );
    printf(
        "  --timeout SECS       limit for the TCP connect and again for the TLS\n"
        "                       handshake (default: 30; fractions allowed; 0 = none)\n"
        "  --idle-timeout SECS  after the handshake, end (exit 4) once no byte has\n"
        "                       moved either way for SECS (default: 0 = wait for ever)\n"
        "  --tls-min VERSION    lowest TLS version, 1.2 or 1.3 (default: 1.2)\n"
        "  --tls-max VERSION    highest TLS version, 1.2 or 1.3 (default: 1.3)\n"
        "  --sess-in FILE       offer the session saved in FILE (PEM, as written by\n"
        "                       --sess-out or openssl s_client -sess_out); the file\n"
        "                       must be ours and unreadable by group and others\n"
        "  --sess-out FILE      save the session to FILE (PEM, mode 0600); with TLS 1.3\n"
        "                       waits up to 5 seconds for the server's ticket\n"
        "  --reconnect N        after the first connection, connect N more times\n"
        "                       offering its session, and print for each whether it\n"
        "                       resumed\n"
        );
    printf(
        "  --listen [HOST:]PORT a tunnel (stunnel's client mode): accept plain TCP on\n"
        "                       HOST:PORT (default HOST: localhost, i.e. 127.0.0.1 and\n"
        "                       ::1; PORT 0 picks one) and carry each connection over\n"
        "                       a new TLS connection to HOST PORT, verified as above\n"
        "                       (--ca, --capath, --crl, --pin, --servername, --alpn,\n"
        "                       --cert/--key); sessions are resumed across them. A\n"
        "                       HOST name is resolved for each connection on a\n"
        "                       resolver thread, never holding up the others, within\n"
        "                       --timeout. The first line on stdout is 'tlsclient:\n"
        "                       listening on ADDRESS:PORT[, ...]'; one line on stderr\n"
        "                       per connection when it ends; runs until SIGINT or\n"
        "                       SIGTERM (exit 0)\n"
        "  --udp                DTLS 1.2 over UDP: each line of stdin (at most one\n"
        "                       datagram's worth; longer lines are split) is sent as\n"
        "                       one datagram, each datagram received is written to\n"
        "                       stdout; at the end of stdin, send close_notify and\n"
        "                       wait up to 2 seconds for the server's\n"
        "  --mtu BYTES          with --udp: the most bytes one UDP datagram carries,\n"
        "                       IP and UDP headers not counted (default: 1232; 256\n"
        "                       to 65507)\n"
        );
    printf(
        "  -v, --verbose        after the handshake, describe the connection (with\n"
        "                       'resumed: yes|no') and the server's certificate on\n"
        "                       stderr\n"
        "  -vv, --trace         also trace the handshake on stderr as it happens: one\n"
        "                       line per message and alert, '>' sent, '<' received,\n"
        "                       the hellos with their extensions (SNI, ALPN,\n"
        "                       supported_versions, key_share ...)\n"
        "  -q, --quiet          print errors only (also silences the --insecure warning)\n"
        "  -h, --help           show this help and exit\n"
        "  -V, --version        show the version and exit\n"
        "\n");
    /* In parts: C99 promises string literals of 4095 bytes, no more. */
    printf(
        "Exit status:\n"
        "  0  the server closed the connection cleanly (close_notify; also when its\n"
        "     idle timeout ends a quiet connection)\n"
        "  1  other error (e.g. a missing or bad --ca, --cert or --key file)\n"
        "  2  usage error\n"
        "  3  could not connect (name resolution, refused, unreachable)\n"
        "  4  timed out (connect, handshake, or --idle-timeout)\n"
        "  5  certificate verification failed (the server's, e.g. revoked, or the\n"
        "     server rejected ours), the --pin did not match, or the OCSP staple\n"
        "     says revoked or, with --require-staple, is missing or bad\n"
        "  6  TLS handshake failed for another reason, or --starttls: the server did\n"
        "     not offer TLS, refused it or broke off (its words are quoted)\n"
        "  7  connection broke after the handshake (reset, truncation)\n"
        "  8  --check --warn-days N: the handshake and verification passed, but a\n"
        "     certificate of the chain expires within N days\n");
}

enum {
    OPT_CA = 256, OPT_CAPATH, OPT_SERVERNAME, OPT_INSECURE, OPT_CERT, OPT_KEY, OPT_TIMEOUT,
    OPT_TLS_MIN, OPT_TLS_MAX, OPT_SESS_IN, OPT_SESS_OUT, OPT_RECONNECT, OPT_CRL, OPT_PIN,
    OPT_SHOWCERTS, OPT_KEYLOG, OPT_ALPN, OPT_REQUIRE_STAPLE, OPT_CHECK, OPT_JSON,
    OPT_WARN_DAYS, OPT_IDLE_TIMEOUT, OPT_LISTEN, OPT_UDP, OPT_MTU, OPT_TRACE, OPT_STARTTLS,
};

static const struct option long_options[] = {
    {"ca", required_argument, NULL, OPT_CA},
    {"capath", required_argument, NULL, OPT_CAPATH},
    {"crl", required_argument, NULL, OPT_CRL},
    {"servername", required_argument, NULL, OPT_SERVERNAME},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"tls-min", required_argument, NULL, OPT_TLS_MIN},
    {"tls-max", required_argument, NULL, OPT_TLS_MAX},
    {"sess-in", required_argument, NULL, OPT_SESS_IN},
    {"sess-out", required_argument, NULL, OPT_SESS_OUT},
    {"reconnect", required_argument, NULL, OPT_RECONNECT},
    {"pin", required_argument, NULL, OPT_PIN},
    {"showcerts", no_argument, NULL, OPT_SHOWCERTS},
    {"require-staple", no_argument, NULL, OPT_REQUIRE_STAPLE},
    {"keylog", required_argument, NULL, OPT_KEYLOG},
    {"alpn", required_argument, NULL, OPT_ALPN},
    {"check", no_argument, NULL, OPT_CHECK},
    {"json", no_argument, NULL, OPT_JSON},
    {"warn-days", required_argument, NULL, OPT_WARN_DAYS},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"udp", no_argument, NULL, OPT_UDP},
    {"mtu", required_argument, NULL, OPT_MTU},
    {"trace", no_argument, NULL, OPT_TRACE},
    {"starttls", required_argument, NULL, OPT_STARTTLS},
    CLI_COMMON_LONG_OPTIONS,
};

/* One option, c as getopt_long() returned it (for cli_parse_options(), hence the void
 * pointer). -1 to go on, or the exit code. */
static int set_option(int c, char **argv, void *opts)
{
    struct options *o = opts;
    unsigned long num;

    switch (c) {
    case OPT_CA:
        o->ca = optarg;
        return -1;
    case OPT_CAPATH:
        o->capath = optarg;
        return -1;
    case OPT_CRL:
        if (o->ncrl == TLSCLIENT_MAX_CRLS)
            return cli_usage_error(SYNOPSIS, "--crl: at most %d files", TLSCLIENT_MAX_CRLS);
        o->crl[o->ncrl++] = optarg;
        return -1;
    case OPT_SERVERNAME:
        if (*optarg == '\0')
            return cli_usage_error(SYNOPSIS, "--servername: the name is empty");
        o->servername = optarg;
        return -1;
    case OPT_INSECURE:
        o->insecure = 1;
        return -1;
    case OPT_CERT:
        o->cert = optarg;
        return -1;
    case OPT_KEY:
        o->key = optarg;
        return -1;
    case OPT_TIMEOUT:
        if (cli_parse_seconds(optarg, &o->timeout_ms) < 0)
            return cli_usage_error(SYNOPSIS, "--timeout: '%s' is not a number of seconds "
                                   "(e.g. 30 or 0.5, at most %ld)", optarg, CLI_SECONDS_MAX);
        return -1;
    case OPT_IDLE_TIMEOUT:
        if (cli_parse_seconds(optarg, &o->idle_ms) < 0)
            return cli_usage_error(SYNOPSIS, "--idle-timeout: '%s' is not a number of "
                                   "seconds (e.g. 30 or 0.5, at most %ld)", optarg,
                                   CLI_SECONDS_MAX);
        return -1;
    case OPT_PIN: /* the library's parser says what is wrong before anything connects */
        o->pins = optarg;
        return cli_config_value_option(SYNOPSIS, "--pin", optarg,
                                       tlskit_config_set_pinned_pubkeys);
    case OPT_SHOWCERTS:
        o->showcerts = 1;
        return -1;
    case OPT_REQUIRE_STAPLE:
        o->require_staple = 1;
        return -1;
    case OPT_KEYLOG:
        if (*optarg == '\0')
            return cli_usage_error(SYNOPSIS, "--keylog: the file name is empty");
        o->keylog = optarg;
        o->keylog_from = "--keylog";
        return -1;
    case OPT_TLS_MIN:
        return cli_tls_version_option(SYNOPSIS, "--tls-min", optarg, &o->tls_min);
    case OPT_TLS_MAX:
        return cli_tls_version_option(SYNOPSIS, "--tls-max", optarg, &o->tls_max);
    case OPT_SESS_IN:
    case OPT_SESS_OUT:
        if (*optarg == '\0')
            return cli_usage_error(SYNOPSIS, "%s: the file name is empty",
                                   c == OPT_SESS_IN ? "--sess-in" : "--sess-out");
        *(c == OPT_SESS_IN ? &o->sess_in : &o->sess_out) = optarg;
        return -1;
    case OPT_RECONNECT:
        if (cli_parse_ulong(optarg, 0, 1000, &o->reconnect) < 0)
            return cli_usage_error(SYNOPSIS, "--reconnect: '%s' is not a whole number from 0 "
                                   "to 1000", optarg);
        return -1;
    case OPT_ALPN:
        return cli_alpn_option(SYNOPSIS, optarg, &o->alpn);
    case OPT_CHECK:
        o->check = 1;
        return -1;
    case OPT_JSON:
        o->json = 1;
        return -1;
    case OPT_WARN_DAYS:
        if (cli_parse_ulong(optarg, 0, 36500, &num) < 0)
            return cli_usage_error(SYNOPSIS, "--warn-days: '%s' is not a whole number of "
                                   "days from 0 to 36500", optarg);
        o->warn_days = (int64_t)num;
        return -1;
    case OPT_LISTEN:
        o->listen = optarg;
        if (cli_parse_addr_port(optarg, 1, o->listen_host, sizeof(o->listen_host),
                               o->listen_port, sizeof(o->listen_port)) < 0)
            return cli_usage_error(SYNOPSIS, "--listen %s: expected [HOST:]PORT (PORT 0 to "
                                   "65535, 0: any free one)", optarg);
        return -1;
    case OPT_UDP:
        o->udp = 1;
        return -1;
    case OPT_MTU:
        if (cli_parse_ulong(optarg, 256, 65507, &o->mtu) < 0)
            return cli_usage_error(SYNOPSIS, "--mtu: '%s' is not a size from 256 to 65507 "
                                   "bytes", optarg);
        return -1;
    case OPT_TRACE:
        o->verbosity = 3;
        return -1;
    case OPT_STARTTLS:
        if ((o->starttls = (int)starttls_proto(optarg)) == STARTTLS_NONE)
            return cli_usage_error(SYNOPSIS, "--starttls: '%s' is not one of " STARTTLS_NAMES,
                                   optarg);
        return -1;
    default:
        return cli_common_option(c, argv, SYNOPSIS, usage, &o->verbosity);
    }
}

/* HOST and PORT, and the checks across options. -1 to go on, or the exit code. */
static int check_args(int argc, char **argv, struct options *o)
{
    char why[160];
    int n = argc - optind;

    if (n < 1)
        return cli_usage_error(SYNOPSIS, "missing HOST and PORT");
    if (n > 2)
        return cli_usage_error(SYNOPSIS, "unexpected argument '%s'", argv[optind + 2]);
    if (cli_parse_hostport(argv[optind], n == 2 ? argv[optind + 1] : NULL, NULL, &o->target,
                           why, sizeof(why)) < 0)
        return cli_usage_error(SYNOPSIS, "'%s%s%s': %s", argv[optind], n == 2 ? " " : "",
                               n == 2 ? argv[optind + 1] : "", why);
    o->host = o->target.host;
    o->port = o->target.port;
    if ((o->cert == NULL) != (o->key == NULL))
        return cli_usage_error(SYNOPSIS, "%s", o->cert != NULL ? "--cert needs --key FILE"
                                                               : "--key needs --cert FILE");
    if (o->tls_min > o->tls_max)
        return cli_usage_error(SYNOPSIS, "--tls-min is higher than --tls-max");
    if (o->warn_days >= 0 && !o->check)
        return cli_usage_error(SYNOPSIS, "--warn-days needs --check");
    if (o->check && o->reconnect > 0)
        return cli_usage_error(SYNOPSIS, "--check makes one connection: drop --reconnect");
    if (o->listen != NULL && (o->sess_in || o->sess_out || o->reconnect || o->showcerts))
        return cli_usage_error(SYNOPSIS, "--listen: not with %s (the tunnel keeps its "
                               "sessions itself)", o->sess_in ? "--sess-in" : o->sess_out ?
                               "--sess-out" : o->reconnect ? "--reconnect" : "--showcerts");
    if (o->mtu && !o->udp)
        return cli_usage_error(SYNOPSIS, "--mtu needs --udp (it sizes datagrams)");
    if (o->udp && o->tls_min == TLSKIT_TLS1_3)
        return cli_usage_error(SYNOPSIS, "--udp speaks DTLS 1.2 only (OpenSSL 3.0 has no "
                               "DTLS 1.3): --tls-min 1.3 cannot be met");
    if (o->udp && (o->check || o->json))
        return cli_usage_error(SYNOPSIS, "--udp relays datagrams: --check and --json are "
                               "for TLS");
    if (o->udp && o->listen != NULL)
        return cli_usage_error(SYNOPSIS, "--udp and --listen: the tunnel carries TCP only");
    if (o->udp && (o->sess_in || o->sess_out || o->reconnect))
        return cli_usage_error(SYNOPSIS, "--udp does not save or resume sessions "
                               "(--sess-in, --sess-out, --reconnect)");
    return -1;
}

int tlsclient_parse_args(int argc, char **argv, struct options *o)
{
    int rc = cli_parse_options(argc, argv, long_options, set_option, o);
    return rc >= 0 ? rc : check_args(argc, argv, o);
}
