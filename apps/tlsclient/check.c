/* SPDX-License-Identifier: MIT */
/*
 * tlsclient --check and --json: what the connection learned, as a report for a person
 * (stdout) or as one JSON object (stdout with --check, stderr in relay mode). Both forms
 * are written from one gathered record, so a field added to the record reaches both.
 * The JSON keys are a contract (README, schemas/tlsclient-check.schema.json): add keys,
 * never rename or retype one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tlskit/tlskit.h>

#include "cli.h"
#include "client.h"
#include "json.h"
#include "options.h"

#define MAX_CHAIN 16    /* certificates reported; a longer chain is cut (and says so) */
#define DAY_SECS 86400

struct cert_row {
    const char *subject, *issuer, *sans, *key_type, *key_group, *sigalg, *fingerprint, *pin;
    time_t not_before, not_after;
    int64_t days_left; /* whole days until not_after (negative: expired) */
    int key_bits;
    int flags;         /* TLSKIT_CHAIN_* */
    int expiring;      /* within --warn-days */
};

struct report {
    const char *host, *port, *peer;
    const char *protocol, *cipher, *group, *sni, *alpn, *verify;
    int ocsp;          /* TLSKIT_OCSP_STATUS_* of the stapled response */
    const char *ocsp_text;
    const char *anchor;
    int resumed, verified;
    int nchain, nshown;
    struct cert_row chain[MAX_CHAIN];
    int64_t warn_days; /* -1: none */
    int nexpiring;
    int64_t us[4];     /* TLSKIT_PHASE_*, -1 when not measured */
    int exit;          /* the exit code */
    int code;          /* TLSKIT_E_* of the failure, TLSKIT_E_NONE */
    const char *message;
};

static void gather_cert(const tlskit_conn *c, int i, time_t now, int64_t warn_days,
                        struct cert_row *r)
{
    r->subject = tlskit_conn_peer_chain_subject(c, i);
    r->issuer = tlskit_conn_peer_chain_issuer(c, i);
    r->sans = tlskit_conn_peer_chain_sans(c, i);
    r->not_before = tlskit_conn_peer_chain_notbefore(c, i);
    r->not_after = tlskit_conn_peer_chain_notafter(c, i);
    r->key_type = tlskit_conn_peer_chain_key_type(c, i);
    r->key_bits = tlskit_conn_peer_chain_key_bits(c, i);
    r->key_group = tlskit_conn_peer_chain_key_group(c, i);
    r->sigalg = tlskit_conn_peer_chain_sigalg(c, i);
    r->fingerprint = tlskit_conn_peer_chain_fingerprint(c, i);
    r->pin = tlskit_conn_peer_chain_spki_sha256(c, i);
    r->flags = tlskit_conn_peer_chain_flags(c, i);
    /* Floor division: a certificate that expired an hour ago has -1 days left. */
    int64_t left = (int64_t)r->not_after - (int64_t)now;
    r->days_left = left >= 0 ? left / DAY_SECS : -((-left + DAY_SECS - 1) / DAY_SECS);
    r->expiring = warn_days >= 0 && left < warn_days * DAY_SECS;
}

static void gather(const struct options *o, const tlskit_conn *c, int rc, struct report *r)
{
    int done = tlskit_conn_handshake_done(c);
    time_t now = time(NULL);

    memset(r, 0, sizeof(*r));
    r->host = o->host;
    r->port = o->port;
    r->peer = tlskit_conn_fd(c) >= 0 || done ? tlskit_conn_peer_addr(c) : NULL;
    r->protocol = tlskit_conn_protocol(c);
    r->cipher = tlskit_conn_cipher(c);
    r->group = tlskit_conn_group(c);
    r->sni = tlskit_conn_servername(c);
    r->alpn = tlskit_conn_alpn_selected(c);
    r->resumed = tlskit_conn_session_reused(c);
    r->verify = tlskit_conn_verify_result(c);
    r->verified = done && r->verify != NULL && strcmp(r->verify, "ok") == 0;
    r->anchor = tlskit_conn_trust_anchor(c);
    r->ocsp = tlskit_conn_ocsp_status(c);
    r->ocsp_text = tlskit_conn_ocsp_text(c);
    r->nchain = tlskit_conn_peer_chain_count(c);
    r->nshown = r->nchain < MAX_CHAIN ? r->nchain : MAX_CHAIN;
    r->warn_days = o->warn_days;
    for (int i = 0; i < r->nshown; i++) {
        gather_cert(c, i, now, o->warn_days, &r->chain[i]);
        r->nexpiring += r->chain[i].expiring;
    }
    for (int p = 0; p < 4; p++)
        r->us[p] = tlskit_conn_phase_us(c, (enum tlskit_phase)p);
    r->exit = rc;
    r->code = rc == CLI_EXIT_OK ? TLSKIT_E_NONE : tlskit_conn_error_code(c);
    r->message = rc == CLI_EXIT_OK ? NULL : tlskit_conn_error(c);
    /* --warn-days decides only for a server that otherwise passed: a failure keeps its
     * own exit code (an expired certificate already fails verification with 5). */
    if (rc == CLI_EXIT_OK && r->nexpiring > 0)
        r->exit = CLI_EXIT_EXPIRING;
}

/* ---- text --------------------------------------------------------------------------- */

/* Peer-supplied text on a terminal: control characters become '?' (the library already
 * escapes names; this is the last line of defence, as cli_msg() has). */
static void text_value(FILE *f, const char *s)
{
    if (s == NULL || *s == '\0') {
        fputs("(none)", f);
        return;
    }
    for (; *s != '\0'; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

static void text_line(FILE *f, const char *label, const char *value)
{
    fprintf(f, "%-14s", label);
    text_value(f, value);
    fputc('\n', f);
}

/* UTC, for people ("2027-03-08 20:19:54 UTC") or as RFC 3339 ("2027-03-08T20:19:54Z"). */
static void format_time(time_t t, char *buf, size_t len, int rfc3339)
{
    struct tm tm;
    size_t n = 0;
    if (t != 0 && gmtime_r(&t, &tm) != NULL)
        n = rfc3339 ? strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm)
                    : strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
    if (n == 0)
        snprintf(buf, len, "(unknown)");
}

static void text_ms(FILE *f, const char *name, int64_t us, const char *sep)
{
    if (us < 0)
        fprintf(f, "%s -%s", name, sep);
    else
        fprintf(f, "%s %lld.%03lld ms%s", name, (long long)(us / 1000),
                (long long)(us % 1000), sep);
}

static const char *chain_role(int flags)
{
    if (flags & TLSKIT_CHAIN_ANCHOR)
        return "the trust anchor itself";
    if (flags & TLSKIT_CHAIN_ANCHORED)
        return "verified path, chained to the trust anchor";
    if (flags & TLSKIT_CHAIN_PATH)
        return "verified path";
    return "not on a verified path";
}

static void text_cert(FILE *f, int i, const struct cert_row *r)
{
    char from[40], until[40];
    format_time(r->not_before, from, sizeof(from), 0);
    format_time(r->not_after, until, sizeof(until), 0);
    fprintf(f, "  [%d] subject:   ", i);
    text_value(f, r->subject);
    fputs("\n      issuer:    ", f);
    text_value(f, r->issuer);
    fputs("\n      SANs:      ", f);
    text_value(f, r->sans);
    fprintf(f, "\n      valid:     %s to %s (%lld days left)%s\n", from, until,
            (long long)r->days_left, r->expiring ? "  <- expires within --warn-days" : "");
    fputs("      key:       ", f);
    text_value(f, r->key_type);
    if (r->key_group != NULL)
        fprintf(f, " %s", r->key_group);
    if (r->key_bits > 0)
        fprintf(f, " (%d bits)", r->key_bits);
    fputs("\n      signature: ", f);
    text_value(f, r->sigalg);
    fputs("\n      SHA-256:   ", f);
    text_value(f, r->fingerprint);
    fputs("\n      pin:       ", f);
    text_value(f, r->pin);
    fprintf(f, "\n      chain:     %s\n", chain_role(r->flags));
}

/* The stapled OCSP response's status as a JSON word. */
static const char *ocsp_name(int status)
{
    switch (status) {
    case TLSKIT_OCSP_STATUS_GOOD: return "good";
    case TLSKIT_OCSP_STATUS_REVOKED: return "revoked";
    case TLSKIT_OCSP_STATUS_UNKNOWN: return "unknown";
    case TLSKIT_OCSP_STATUS_INVALID: return "invalid";
    default: return "none";
    }
}

static void text_report(FILE *f, const struct report *r)
{
    char verify[512];
    text_line(f, "peer:", r->peer);
    text_line(f, "protocol:", r->protocol);
    text_line(f, "cipher:", r->cipher);
    text_line(f, "group:", r->group);
    text_line(f, "SNI sent:", r->sni);
    text_line(f, "ALPN:", r->alpn);
    text_line(f, "resumed:", r->resumed ? "yes" : "no");
    snprintf(verify, sizeof(verify), "%s%s%s%s", r->verify != NULL ? r->verify : "(none)",
             r->anchor != NULL ? " (trust anchor: " : "", r->anchor != NULL ? r->anchor : "",
             r->anchor != NULL ? ")" : "");
    text_line(f, "verify:", verify);
    text_line(f, "OCSP staple:", r->ocsp_text);
    fprintf(f, "%-14s%d certificate%s as sent by the server%s\n", "chain:", r->nchain,
            r->nchain == 1 ? "" : "s", r->nshown < r->nchain ? " (first ones shown)" : "");
    for (int i = 0; i < r->nshown; i++)
        text_cert(f, i, &r->chain[i]);
    fprintf(f, "%-14s", "timing:");
    text_ms(f, "DNS", r->us[TLSKIT_PHASE_DNS], ", ");
    text_ms(f, "connect", r->us[TLSKIT_PHASE_CONNECT], ", ");
    text_ms(f, "handshake", r->us[TLSKIT_PHASE_HANDSHAKE], ", ");
    text_ms(f, "total", r->us[TLSKIT_PHASE_TOTAL], "\n");
    for (int i = 0; i < r->nshown; i++) {
        if (!r->chain[i].expiring)
            continue;
        fprintf(f, "%-14s[%d] ", "warning:", i);
        text_value(f, r->chain[i].subject);
        fprintf(f, " expires in %lld days (--warn-days %lld)\n",
                (long long)r->chain[i].days_left, (long long)r->warn_days);
    }
    if (r->code != TLSKIT_E_NONE) {
        fprintf(f, "%-14s%s (exit %d): ", "error:", tlskit_error_name(r->code), r->exit);
        text_value(f, r->message);
        fputc('\n', f);
    }
    fprintf(f, "%-14s%s\n", "result:", r->exit == CLI_EXIT_OK         ? "ok"
                                       : r->exit == CLI_EXIT_EXPIRING ? "certificate expiring"
                                                                      : "failed");
}

/* ---- JSON --------------------------------------------------------------------------- */

static void json_time(struct json *j, const char *key, time_t t)
{
    char buf[40];
    if (t == 0) {
        json_null(j, key);
        return;
    }
    format_time(t, buf, sizeof(buf), 1);
    json_string(j, key, buf);
}

/* "DNS:a, IP:127.0.0.1" as ["DNS:a", "IP:127.0.0.1"]: the library escapes ',' inside a
 * name, so ", " only ever separates. */
static void json_sans(struct json *j, const char *sans)
{
    json_array_begin(j, "sans");
    while (sans != NULL && *sans != '\0') {
        const char *end = strstr(sans, ", ");
        size_t len = end != NULL ? (size_t)(end - sans) : strlen(sans);
        json_string_len(j, NULL, sans, len);
        sans = end != NULL ? end + 2 : NULL;
    }
    json_array_end(j);
}

static void json_cert(struct json *j, int i, const struct cert_row *r)
{
    json_object_begin(j, NULL);
    json_int(j, "index", i);
    json_string(j, "subject", r->subject);
    json_string(j, "issuer", r->issuer);
    json_sans(j, r->sans);
    json_time(j, "not_before", r->not_before);
    json_time(j, "not_after", r->not_after);
    json_int(j, "days_left", r->days_left);
    json_bool(j, "expires_within_warn_days", r->expiring);
    json_object_begin(j, "key");
    json_string(j, "type", r->key_type);
    if (r->key_bits > 0)
        json_int(j, "bits", r->key_bits);
    else
        json_null(j, "bits");
    json_string(j, "group", r->key_group);
    json_object_end(j);
    json_string(j, "signature_algorithm", r->sigalg);
    json_string(j, "sha256_fingerprint", r->fingerprint);
    json_string(j, "spki_pin", r->pin);
    json_bool(j, "in_verified_path", (r->flags & TLSKIT_CHAIN_PATH) != 0);
    json_bool(j, "chained_to_anchor", (r->flags & TLSKIT_CHAIN_ANCHORED) != 0);
    json_bool(j, "is_trust_anchor", (r->flags & TLSKIT_CHAIN_ANCHOR) != 0);
    json_object_end(j);
}

static void json_report(struct json *j, const struct report *r)
{
    json_object_begin(j, NULL);
    json_string(j, "host", r->host);
    json_string(j, "port", r->port);
    json_string(j, "peer", r->peer);
    json_string(j, "protocol", r->protocol);
    json_string(j, "cipher", r->cipher);
    json_string(j, "group", r->group);
    json_string(j, "sni", r->sni);
    json_string(j, "alpn", r->alpn);
    json_bool(j, "resumed", r->resumed);
    json_object_begin(j, "verify");
    json_bool(j, "ok", r->verified);
    json_string(j, "result", r->verify);
    json_string(j, "trust_anchor", r->anchor);
    json_object_end(j);
    json_object_begin(j, "ocsp");
    json_string(j, "status", ocsp_name(r->ocsp));
    json_string(j, "detail", r->ocsp_text);
    json_object_end(j);
    json_int(j, "chain_length", r->nchain);
    json_array_begin(j, "chain");
    for (int i = 0; i < r->nshown; i++)
        json_cert(j, i, &r->chain[i]);
    json_array_end(j);
    if (r->warn_days >= 0)
        json_int(j, "warn_days", r->warn_days);
    else
        json_null(j, "warn_days");
    json_array_begin(j, "expiring");
    for (int i = 0; i < r->nshown; i++)
        if (r->chain[i].expiring)
            json_int(j, NULL, i);
    json_array_end(j);
    json_object_begin(j, "timing_ms");
    json_ms(j, "dns", r->us[TLSKIT_PHASE_DNS]);
    json_ms(j, "connect", r->us[TLSKIT_PHASE_CONNECT]);
    json_ms(j, "handshake", r->us[TLSKIT_PHASE_HANDSHAKE]);
    json_ms(j, "total", r->us[TLSKIT_PHASE_TOTAL]);
    json_object_end(j);
    json_int(j, "exit", r->exit);
    if (r->code != TLSKIT_E_NONE) {
        json_object_begin(j, "error");
        json_string(j, "code", tlskit_error_name(r->code));
        json_int(j, "exit", r->exit);
        json_string(j, "message", r->message);
        json_object_end(j);
    }
    json_object_end(j);
}

int client_report(const struct options *o, const tlskit_conn *c, int rc)
{
    return client_report_failure(o, c, rc, TLSKIT_E_NONE, NULL);
}

int client_report_failure(const struct options *o, const tlskit_conn *c, int rc, int code,
                          const char *message)
{
    struct report *r = malloc(sizeof(*r));
    if (r == NULL) {
        cli_msg("out of memory");
        return rc == CLI_EXIT_OK ? CLI_EXIT_ERROR : rc;
    }
    gather(o, c, rc, r);
    if (message != NULL) {
        r->code = code;
        r->message = message;
    }
    rc = r->exit;
    FILE *f = o->check ? stdout : stderr;
    if (o->json) {
        struct json j;
        json_init(&j);
        json_report(&j, r);
        const char *text = json_text(&j);
        if (text != NULL)
            fprintf(f, "%s\n", text);
        else
            cli_msg("--json: out of memory");
        json_free(&j);
    } else if (o->check) {
        text_report(f, r);
    }
    if (fflush(f) != 0 && rc == CLI_EXIT_OK)
        rc = CLI_EXIT_ERROR;
    if (rc == CLI_EXIT_EXPIRING)
        cli_msg("%d certificate%s of the chain expire%s within %lld days (--warn-days)",
                r->nexpiring, r->nexpiring == 1 ? "" : "s", r->nexpiring == 1 ? "s" : "",
                (long long)r->warn_days);
    free(r);
    return rc;
}
