/* SPDX-License-Identifier: MIT */
/*
 * tlsclient: connect to a TLS server and relay stdin to it and its data to stdout, like
 * `ncat --ssl`. Public tlskit API only. This file: parse, connect, relay, clean up.
 */
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <tlskit/tlskit.h>

#include "cli.h"
#include "client.h"
#include "options.h"
#include "starttls.h"

/* -vv: the library's trace lines, on stderr as they come. */
static void trace_line(const tlskit_conn *c, const char *line, void *arg)
{
    (void)c;
    (void)arg;
    cli_msg("%s", line);
}

/* --udp: after stdin ends, how long to wait for the server's close_notify (UDP may lose
 * it: no answer is not an error). */
#define CLIENT_UDP_LINGER_MS 2000

static tlskit_config *configure(const struct options *o)
{
    tlskit_config *cfg = o->udp ? tlskit_config_new_dtls() : tlskit_config_new();
    if (cfg == NULL) {
        cli_msg("out of memory");
        return NULL;
    }
    if ((o->ca != NULL && tlskit_config_add_ca_file(cfg, o->ca) < 0) ||
        (o->capath != NULL && tlskit_config_add_ca_dir(cfg, o->capath) < 0) ||
        (o->cert != NULL && tlskit_config_set_keypair_file(cfg, o->cert, o->key) < 0) ||
        (o->pins != NULL && tlskit_config_set_pinned_pubkeys(cfg, o->pins) < 0) ||
        tlskit_config_set_protocols(cfg, o->tls_min, o->tls_max) < 0 ||
        (o->mtu && tlskit_config_set_mtu(cfg, (int)o->mtu) < 0) ||
        tlskit_config_set_alpn(cfg, o->alpn) < 0 ||
        tlskit_config_set_ocsp_request(cfg, o->require_staple ? TLSKIT_OCSP_REQUIRE
                                                              : TLSKIT_OCSP_REQUEST) < 0 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_CONNECT, o->timeout_ms) < 0 ||
        tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, o->timeout_ms) < 0 ||
        (o->verbosity > 2 && tlskit_config_set_trace(cfg, trace_line, NULL) < 0))
        goto fail;
    for (int i = 0; i < o->ncrl; i++)
        if (tlskit_config_add_crl_file(cfg, o->crl[i]) < 0)
            goto fail;
    if (o->keylog != NULL && tlskit_config_insecure_keylog_file(cfg, o->keylog) < 0) {
        cli_msg("%s: %s", o->keylog_from, tlskit_config_error(cfg));
        tlskit_config_free(cfg);
        return NULL;
    }
    if (o->insecure) {
        tlskit_config_insecure_noverifycert(cfg);
        tlskit_config_insecure_noverifyname(cfg);
    }
    return cfg;
fail:
    cli_msg("%s", tlskit_config_error(cfg));
    tlskit_config_free(cfg);
    return NULL;
}

int client_starttls(const struct options *o, tlskit_conn *c)
{
    if (o->starttls == STARTTLS_NONE)
        return -1;
    char why[512];
    int64_t deadline = o->timeout_ms > 0 ? cli_now_ms() + o->timeout_ms : 0;
    int rc = starttls_run(tlskit_conn_fd(c), (enum starttls_proto)o->starttls,
                          o->servername != NULL ? o->servername : o->host, deadline, why,
                          sizeof(why));
    if (rc == 0)
        return -1;
    char msg[700];
    snprintf(msg, sizeof(msg), "starttls %s: %s: %s",
             starttls_name((enum starttls_proto)o->starttls), tlskit_conn_peer_addr(c), why);
    cli_msg("%s", msg);
    if (!o->check && !o->json)
        return rc;
    /* The report of what was learned (the peer, the timing), with the dialogue's error. */
    int code = rc == CLI_EXIT_TIMEOUT ? TLSKIT_E_TIMEOUT
               : rc == CLI_EXIT_HANDSHAKE ? TLSKIT_E_PROTOCOL : TLSKIT_E_IO;
    return client_report_failure(o, c, rc, code, msg);
}

/* A failed handshake: the library's message, and for a certificate that found no trust
 * anchor or has other names, what to do about it with our options. The exit code. */
static int handshake_failed(const struct options *o, const tlskit_conn *c)
{
    int rc = client_failed(c, 0);
    const char *why = tlskit_conn_error(c);
    if (tlskit_conn_error_code(c) != TLSKIT_E_VERIFY || why == NULL)
        return rc;
    if (strstr(why, "not in the trust store") != NULL)
        cli_msg("hint: %s", o->ca == NULL && o->capath == NULL
                                ? "give --ca FILE with the CA certificate (PEM) that issued the "
                                  "server's certificate (a private or test CA is not in the "
                                  "system trust store)"
                                : "--ca/--capath does not hold the CA that issued the server's "
                                  "certificate: give that CA's certificate (PEM)");
    else if (strstr(why, "mismatch: expected") != NULL)
        cli_msg("hint: connect by a name the certificate has, or check that name with "
                "--servername NAME");
    return rc;
}

/* A failure before or during the handshake: the message, and with --check or --json
 * the report of what was learned so far. The exit code. */
static int setup_failed(const struct options *o, const tlskit_conn *c)
{
    int rc = handshake_failed(o, c);
    return o->check || o->json ? client_report(o, c, rc) : rc;
}

static int run(const struct options *o, tlskit_config *cfg, tlskit_conn *c)
{
    if (o->servername != NULL && tlskit_conn_set_servername(c, o->servername) < 0)
        return client_failed(c, 0);
    if ((o->udp ? tlskit_conn_connect_udp(c, o->host, o->port)
                : tlskit_conn_connect(c, o->host, o->port)) < 0)
        return setup_failed(o, c);
    int rc = client_starttls(o, c);
    if (rc >= 0)
        return rc;
    rc = client_offer_session(o, c);
    if (rc >= 0)
        return rc;
    if (tlskit_conn_handshake(c) < 0)
        return setup_failed(o, c);
    if (o->verbosity > 1)
        client_summary(c);
    if (o->showcerts)
        client_showcerts(c);
    if (o->udp) {
        rc = client_relay_udp(c, CLIENT_UDP_LINGER_MS);
        (void)tlskit_conn_close(c);
        return rc;
    }
    tlskit_session *sess = client_keep_session(o, c);
    if (o->check) { /* the report, then a clean close: stdin is never read */
        rc = client_report(o, c, CLI_EXIT_OK);
        (void)tlskit_conn_close(c);
        if (rc == CLI_EXIT_OK && o->sess_out != NULL && sess == NULL)
            rc = CLI_EXIT_ERROR;
        tlskit_session_free(sess);
        return rc;
    }
    if (o->json)
        (void)client_report(o, c, CLI_EXIT_OK);

    rc = client_relay(c, o->idle_ms);
    /* Our close_notify if not sent yet (the server closed first, or stdout failed); the
     * library skips it on a connection that already broke. */
    (void)tlskit_conn_close(c);
    if (rc == CLI_EXIT_OK && o->sess_out != NULL && sess == NULL)
        rc = CLI_EXIT_ERROR; /* --sess-out asked for a file it did not get */
    if (rc == CLI_EXIT_OK && o->reconnect > 0)
        return client_reconnect(o, cfg, sess);
    tlskit_session_free(sess);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o = tlsclient_defaults();
    int rc;

    cli_init("tlsclient");
    rc = tlsclient_parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    const char *env = getenv("SSLKEYLOGFILE");
    if (o.keylog == NULL && env != NULL && *env != '\0') {
        o.keylog = env;
        o.keylog_from = "SSLKEYLOGFILE";
    }
    if (o.keylog != NULL) /* even with -q: the user may not know the variable is set */
        cli_msg("WARNING: %s %s: the TLS secrets of this connection go to this file; "
                "anyone who reads it can decrypt the traffic (debugging only)",
                o.keylog_from, o.keylog);
    if (o.insecure && o.verbosity > 0)
        cli_msg("warning: --insecure: the server's certificate is NOT verified; anyone on "
                "the path can impersonate it");

    tlskit_config *cfg = configure(&o);
    if (cfg == NULL)
        return CLI_EXIT_ERROR;
    if (o.listen != NULL) {
        rc = tunnel_run(&o, cfg);
        tlskit_config_free(cfg);
        return rc;
    }
    tlskit_conn *c = tlskit_conn_new(cfg);
    if (c == NULL) {
        cli_msg("out of memory");
        tlskit_config_free(cfg);
        return CLI_EXIT_ERROR;
    }
    rc = run(&o, cfg, c);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    return rc;
}
