/* SPDX-License-Identifier: MIT */
/* tlsserver's command line: the options, their defaults and the parser. A file of its own
 * so that the option-parser fuzz target links exactly what the program runs. */
#ifndef TLSSERVER_OPTIONS_H
#define TLSSERVER_OPTIONS_H

#include <stdint.h>

#include "hostport.h"

#define DEFAULT_CERT "certs/server.crt"
#define DEFAULT_KEY "certs/server.key"
/* How long open connections may finish after SIGINT/SIGTERM, in both models. A literal,
 * so that the help text can show it (GRACE_SECS_TEXT). */
#define GRACE_SECS 2
#define GRACE_MS (GRACE_SECS * 1000)
#define MAX_TICKET_KEYS 16

#define MAX_ALLOW_CLIENT 64

/* --cert/--key pairs at most (SNI: one per name and key type). */
#define MAX_KEYPAIRS 64

enum model { MODEL_EVENT, MODEL_THREAD, MODEL_ITERATIVE };
enum mode { MODE_ECHO, MODE_DISCARD, MODE_HTTP };

#define TLSSERVER_MAX_CRLS 16
#define MAX_PROXY_FROM 64 /* TLSKIT_PROXY_MAX_FROM */

struct options {
    const char *bind;          /* "localhost", or bind_host */
    char bind_host[CLI_HOST_MAX + 1]; /* --bind, brackets stripped ([::1] -> ::1) */
    const char *crl[TLSSERVER_MAX_CRLS]; /* --crl, in order */
    int ncrl;
    char port[8];
    /* Keypairs: the i-th --cert goes with the i-th --key; [0] is the default. After
     * parsing, ncert == nkey >= 1 (the default files when neither was given). */
    const char *cert[MAX_KEYPAIRS], *key[MAX_KEYPAIRS];
    size_t ncert, nkey;
    /* --ocsp-staple: ocsp_staple[i] for the i-th pair (NULL: none); ocsp_staple_default
     * when it came before any --cert/--key (the default pair's). */
    const char *ocsp_staple[MAX_KEYPAIRS];
    int ocsp_staple_default;
    const char *ca;
    int sni_strict;           /* --sni-strict */
    int no_ca_names;          /* --no-ca-names */
    const char *alpn;         /* --alpn LIST, checked; NULL: none */
    int verify_client;
    const char *allow_client[MAX_ALLOW_CLIENT]; /* --allow-client, checked by the parser */
    int nallow_client;
    const char *keylog;        /* --keylog FILE: TLS secrets (insecure, debugging) */
    int tls_min, tls_max;
    int64_t handshake_ms, idle_ms, write_ms;
    unsigned long exit_after; /* 0: run until a signal */
    unsigned long max_conns;
    int tickets;                /* TLS 1.3 session tickets per full handshake */
    const char *ticket_keys[MAX_TICKET_KEYS]; /* --ticket-key files, the first encrypts */
    int nticket_keys;
    long ticket_lifetime;       /* seconds */
    unsigned long workers;    /* event model; 0: one per core */
    unsigned long body_size;  /* http mode */
    enum model model;
    int model_given;          /* --model was on the command line */
    enum mode mode;
    int log_json;  /* --log-format json: connection lines as JSON objects */
    int udp;                  /* --udp: DTLS 1.2 over UDP */
    unsigned long mtu;        /* --mtu BYTES (0: the library's default) */
    /* --forward: every client relayed to this backend (event model). fwd_host is
     * "unix:/PATH" for a UNIX socket (fwd_port then ""); NULL forward: serve --mode. */
    const char *forward;
    char fwd_host[256], fwd_port[8];
    int64_t backend_timeout_ms; /* --backend-timeout: connecting to the backend */
    int send_proxy;             /* --send-proxy: 0 none, 1 or 2 (PROXY protocol version) */
    int proxy_protocol;                        /* --proxy-protocol */
    const char *proxy_from[MAX_PROXY_FROM];    /* --proxy-from, checked by the parser */
    int nproxy_from;
    int verbosity; /* 0 quiet, 1 normal, 2 verbose, 3 also the trace (-vv) */
};

/* Every option's default. */
struct options tlsserver_defaults(void);

/* Parse argv into o (which holds the defaults). -1 to go on; otherwise the exit code:
 * 0 after --help or --version, 2 after a usage error (already printed). */
int tlsserver_parse_args(int argc, char **argv, struct options *o);

#endif
