/* SPDX-License-Identifier: MIT */
/*
 * tlsclient's option parser for fuzz_options.c: apps/tlsclient/options.c, linked as the
 * program links it, so nothing connects.
 */
#include <getopt.h>
#include <string.h>

#include <tlskit/tlskit.h>

#include "cli.h"
#include "fuzz_common.h"
#include "fuzz_options.h"
/* By its path: both apps have an options.h, and both app folders are on the include
 * path of the fuzz targets. */
#include "../../apps/tlsclient/options.h"

static int from_args(const char *p, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (p == argv[i] || (eq && p == eq + 1))
            return 1;
    }
    return 0;
}

/* The host comes out of HOST, HOST:PORT or [V6]:PORT: some operand holds it. */
static int host_in_args(const char *host, int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strstr(argv[i], host) != NULL)
            return 1;
    return 0;
}

int fz_tlsclient_parse(int argc, char **argv)
{
    struct options o = tlsclient_defaults();

    optind = 0; /* glibc: a full reset of getopt's state */
    int rc = tlsclient_parse_args(argc, argv, &o);
    FZ_CHECK(rc == -1 || rc == CLI_EXIT_OK || rc == CLI_EXIT_USAGE,
             "tlsclient_parse_args returned %d", rc);
    if (rc != -1)
        return rc;
    unsigned long port;
    FZ_CHECK(o.host && *o.host && host_in_args(o.host, argc, argv), "host");
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
    FZ_CHECK(o.verbosity >= 0 && o.verbosity <= 3, "verbosity %d", o.verbosity);
    /* --listen: a port 0..65535 (0: any), and none of the one-connection options. */
    unsigned long lport;
    FZ_CHECK(!o.listen || (cli_parse_ulong(o.listen_port, 0, 65535, &lport) == 0 &&
                           !o.sess_in && !o.sess_out && !o.reconnect && !o.showcerts),
             "listen port \"%s\"", o.listen_port);
    return rc;
}
