/* SPDX-License-Identifier: MIT */
/*
 * tlsclient's option parser for fuzz_options.c: includes apps/tlsclient/tlsclient.c
 * whole (main renamed) to call its static parse_args() directly, so nothing connects.
 */
#define main fz_tlsclient_main
int fz_tlsclient_main(int argc, char **argv);
#include "tlsclient.c"
#undef main

#include "fuzz_common.h"
#include "fuzz_options.h"

static int from_args(const char *p, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (p == argv[i] || (eq && p == eq + 1))
            return 1;
    }
    return 0;
}

int fz_tlsclient_parse(int argc, char **argv)
{
    /* The defaults of main() in tlsclient.c. */
    struct options o = {
        .timeout_ms = 30 * 1000,
        .tls_min = TLSKIT_TLS1_2,
        .tls_max = TLSKIT_TLS1_3,
        .verbosity = 1,
    };

    optind = 0; /* glibc: a full reset of getopt's state */
    int rc = parse_args(argc, argv, &o);
    FZ_CHECK(rc == -1 || rc == CLI_EXIT_OK || rc == CLI_EXIT_USAGE, "parse_args returned %d",
             rc);
    if (rc != -1)
        return rc;
    unsigned long port;
    FZ_CHECK(o.host && *o.host && from_args(o.host, argc, argv), "host");
    FZ_CHECK(o.port && cli_parse_ulong(o.port, 1, 65535, &port) == 0, "port \"%s\"",
             o.port ? o.port : "(null)");
    FZ_CHECK((o.cert == NULL) == (o.key == NULL), "--cert without --key or the reverse");
    FZ_CHECK(!o.servername || (*o.servername && from_args(o.servername, argc, argv)),
             "servername");
    FZ_CHECK(o.tls_min == TLSKIT_TLS1_2 || o.tls_min == TLSKIT_TLS1_3, "tls_min %d", o.tls_min);
    FZ_CHECK(o.tls_max == TLSKIT_TLS1_2 || o.tls_max == TLSKIT_TLS1_3, "tls_max %d", o.tls_max);
    FZ_CHECK(o.tls_min <= o.tls_max, "tls_min above tls_max");
    FZ_CHECK(o.timeout_ms >= 0 && o.timeout_ms <= INT32_MAX, "timeout %lld",
             (long long)o.timeout_ms);
    FZ_CHECK(o.insecure == 0 || o.insecure == 1, "insecure %d", o.insecure);
    FZ_CHECK(o.verbosity >= 0 && o.verbosity <= 2, "verbosity %d", o.verbosity);
    return rc;
}
