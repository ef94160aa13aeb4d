/* SPDX-License-Identifier: MIT */
/*
 * tlsserver's option parser for fuzz_options.c: apps/tlsserver/options.c, linked as the
 * program links it. Nothing is ever served, no signal handler installed.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <tlskit/tlskit.h>

#include "cli.h"
#include "fuzz_common.h"
#include "fuzz_options.h"
/* By its path: both apps have an options.h, and both app folders are on the include
 * path of the fuzz targets. */
#include "../../apps/tlsserver/options.h"

static int in_argv(const char *p, int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (p == argv[i])
            return 1;
    return 0;
}

/* A pointer option is its default, NULL where allowed, or the value of an argument
 * (the whole argument, or what follows "=" in it). */
static int from_args(const char *p, const char *def, int argc, char **argv)
{
    if (p == def || in_argv(p, argc, argv))
        return 1;
    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (eq && p == eq + 1)
            return 1;
    }
    return 0;
}

int fz_tlsserver_parse(int argc, char **argv)
{
    struct options o = tlsserver_defaults();
    const char *bind0 = o.bind, *cert0 = o.cert[0], *key0 = o.key[0];

    optind = 0; /* glibc: a full reset of getopt's state */
    int rc = tlsserver_parse_args(argc, argv, &o);
    FZ_CHECK(rc == -1 || rc == CLI_EXIT_OK || rc == CLI_EXIT_USAGE,
             "tlsserver_parse_args returned %d", rc);
    if (rc != -1)
        return rc;
    /* Accepted: everything main() goes on with must be valid. */
    unsigned long port;
    FZ_CHECK(memchr(o.port, '\0', sizeof(o.port)) != NULL &&
                 cli_parse_ulong(o.port, 0, 65535, &port) == 0,
             "port \"%.8s\"", o.port);
    FZ_CHECK(o.tls_min == TLSKIT_TLS1_2 || o.tls_min == TLSKIT_TLS1_3, "tls_min %d", o.tls_min);
    FZ_CHECK(o.tls_max == TLSKIT_TLS1_2 || o.tls_max == TLSKIT_TLS1_3, "tls_max %d", o.tls_max);
    FZ_CHECK(o.tls_min <= o.tls_max, "tls_min above tls_max");
    FZ_CHECK(o.verify_client >= TLSKIT_VERIFY_CLIENT_NONE &&
                 o.verify_client <= TLSKIT_VERIFY_CLIENT_REQUIRED, "verify_client %d",
             o.verify_client);
    FZ_CHECK(o.verify_client == TLSKIT_VERIFY_CLIENT_NONE || o.ca != NULL,
             "client verification without --ca");
    FZ_CHECK(o.handshake_ms >= 0 && o.handshake_ms <= INT32_MAX && o.idle_ms >= 0 &&
                 o.idle_ms <= INT32_MAX && o.write_ms >= 0 && o.write_ms <= INT32_MAX,
             "timeouts %lld %lld %lld", (long long)o.handshake_ms, (long long)o.idle_ms,
             (long long)o.write_ms);
    FZ_CHECK(o.max_conns >= 1 && o.max_conns <= 1000000000, "max_conns %lu", o.max_conns);
    FZ_CHECK(o.exit_after <= 1000000000, "exit_after %lu", o.exit_after);
    FZ_CHECK(o.workers <= 1024, "workers %lu", o.workers);
    FZ_CHECK(o.body_size <= 64ul << 20, "body_size %lu", o.body_size);
    FZ_CHECK(o.tickets >= 0 && o.tickets <= 16, "tickets %d", o.tickets);
    FZ_CHECK(o.model == MODEL_EVENT || o.model == MODEL_THREAD || o.model == MODEL_ITERATIVE,
             "model %d", (int)o.model);
    FZ_CHECK(o.mode == MODE_ECHO || o.mode == MODE_DISCARD || o.mode == MODE_HTTP, "mode %d",
             (int)o.mode);
    FZ_CHECK(o.verbosity >= 0 && o.verbosity <= 3, "verbosity %d", o.verbosity);
    FZ_CHECK(o.bind && (o.bind == bind0 || o.bind == o.bind_host), "bind points elsewhere");
    FZ_CHECK(o.ncert == o.nkey && o.ncert >= 1 && o.ncert <= MAX_KEYPAIRS,
             "%zu --cert, %zu --key", o.ncert, o.nkey);
    for (size_t i = 0; i < o.ncert; i++) {
        FZ_CHECK(o.cert[i] && from_args(o.cert[i], cert0, argc, argv), "cert points elsewhere");
        FZ_CHECK(o.key[i] && from_args(o.key[i], key0, argc, argv), "key points elsewhere");
    }
    FZ_CHECK(!o.alpn || (from_args(o.alpn, NULL, argc, argv) &&
                         tlskit_alpn_check(o.alpn, NULL, 0) == 0), "alpn");
    FZ_CHECK(!o.ca || from_args(o.ca, NULL, argc, argv), "ca points elsewhere");
    /* --forward: a unix:/PATH, or a host and a port 1..65535; only with the event model. */
    FZ_CHECK(!o.forward || (from_args(o.forward, NULL, argc, argv) && o.model == MODEL_EVENT),
             "forward");
    FZ_CHECK(!o.forward ||
                 (strncmp(o.fwd_host, "unix:/", 6) == 0 && o.fwd_port[0] == '\0') ||
                 (o.fwd_host[0] != '\0' && cli_parse_ulong(o.fwd_port, 1, 65535, &port) == 0),
             "forward to \"%s\" port \"%s\"", o.fwd_host, o.fwd_port);
    FZ_CHECK(o.send_proxy == 0 || ((o.send_proxy == 1 || o.send_proxy == 2) && o.forward),
             "send_proxy %d", o.send_proxy);
    FZ_CHECK(o.backend_timeout_ms >= 0 && o.backend_timeout_ms <= INT32_MAX,
             "backend_timeout %lld", (long long)o.backend_timeout_ms);
    return rc;
}
