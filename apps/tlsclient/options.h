/* SPDX-License-Identifier: MIT */
/* tlsclient's command line: the options, their defaults and the parser. A file of its own
 * so that the option-parser fuzz target links exactly what the program runs. */
#ifndef TLSCLIENT_OPTIONS_H
#define TLSCLIENT_OPTIONS_H

#include <stdint.h>

#include "hostport.h"

#define TLSCLIENT_MAX_CRLS 16

struct options {
    const char *host, *port;   /* point into target */
    struct cli_hostport target; /* HOST PORT, HOST:PORT, [V6]:PORT or [V6] PORT */
    const char *crl[TLSCLIENT_MAX_CRLS]; /* --crl, in order */
    int ncrl;
    const char *ca, *capath, *servername, *cert, *key;
    const char *pins; /* --pin, checked by the parser */
    const char *alpn;    /* --alpn LIST, checked; NULL: none */
    int insecure;
    const char *sess_in, *sess_out; /* saved sessions (PEM) */
    unsigned long reconnect;        /* connections after the first, offering the session */
    int showcerts;
    int require_staple; /* --require-staple */
    int check;             /* --check: report and exit, no relay */
    int json;              /* --json: the report as one JSON object */
    int64_t warn_days;     /* --warn-days N (with --check), -1: none */
    const char *keylog;    /* --keylog FILE, or $SSLKEYLOGFILE */
    const char *keylog_from; /* "--keylog" or "SSLKEYLOGFILE" */
    int64_t timeout_ms;
    int64_t idle_ms; /* --idle-timeout: relay ends after this long without a byte; 0 none */
    int tls_min, tls_max;
    int udp;               /* --udp: DTLS 1.2 over UDP */
    unsigned long mtu;     /* --mtu BYTES (0: the library's default) */
    /* --listen [HOST:]PORT: the tunnel (tunnel.c). listen NULL: one connection, stdin. */
    const char *listen;
    char listen_host[256], listen_port[8]; /* host "" given as PORT alone: localhost */
    int starttls; /* --starttls PROTO: enum starttls_proto, 0 none */
    int verbosity; /* 0 quiet, 1 normal, 2 verbose, 3 also the trace (-vv, --trace) */
};

/* Every option's default. */
struct options tlsclient_defaults(void);

/* Parse argv into o (which holds the defaults); HOST and PORT point into o->target. -1 to go
 * on; otherwise the exit code: 0 after --help or --version, 2 after a usage error (already
 * printed). */
int tlsclient_parse_args(int argc, char **argv, struct options *o);

#endif
