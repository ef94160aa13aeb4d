/* SPDX-License-Identifier: MIT */
/*
 * tlsserver's per-connection log lines (-v's handshake line, and the line each
 * connection logs when it ends), as text or, with --log-format json, as one JSON object
 * per line. Both formats are written from one record of the connection's fields: a new
 * field (a backend address, bytes forwarded, the client address a PROXY header gave) is
 * one rec_*() call in handshake_record() or end_record(), and reaches both formats.
 * JSON keys are those of tlsclient --json where they mean the same (peer, protocol,
 * cipher, group, sni, alpn, resumed, error.code, error.message).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "server.h"

#define LOG_MAX_FIELDS 32

enum log_kind { LOG_STR, LOG_U64, LOG_BOOL, LOG_SECS };

struct log_field {
    const char *key;       /* the JSON key */
    const char *text_key;  /* the text form's "key=", NULL: JSON only */
    enum log_kind kind;
    const char *s;         /* LOG_STR (NULL: JSON null, text null_text) */
    const char *null_text; /* text for a NULL string ("-" unless said) */
    int quote;             /* text: value in double quotes */
    uint64_t n;            /* LOG_U64, LOG_BOOL */
    int64_t us;            /* LOG_SECS: microseconds; text "S.SSSs", JSON key in ms */
};

struct log_record {
    const char *event; /* "conn", "handshake": the text line's first word */
    const char *peer;
    struct log_field f[LOG_MAX_FIELDS];
    int n;
    int has_result;    /* the line ends in "ok" or "error=CLASS: MESSAGE" */
    int code;
    const char *why;
};

static struct log_field *rec_add(struct log_record *r, const char *key, const char *text_key,
                                 enum log_kind kind)
{
    static struct log_field spare; /* a full record drops fields rather than overflow */
    if (r->n == LOG_MAX_FIELDS)
        return memset(&spare, 0, sizeof(spare));
    struct log_field *f = &r->f[r->n++];
    memset(f, 0, sizeof(*f));
    f->key = key;
    f->text_key = text_key;
    f->kind = kind;
    return f;
}

static void rec_str(struct log_record *r, const char *key, const char *text_key,
                    const char *value)
{
    rec_add(r, key, text_key, LOG_STR)->s = value != NULL && *value != '\0' ? value : NULL;
}

static void rec_quoted(struct log_record *r, const char *key, const char *text_key,
                       const char *value, const char *null_text)
{
    struct log_field *f = rec_add(r, key, text_key, LOG_STR);
    f->s = value != NULL && *value != '\0' ? value : NULL;
    f->quote = f->s != NULL;
    f->null_text = null_text;
}

static void rec_u64(struct log_record *r, const char *key, const char *text_key, uint64_t v)
{
    rec_add(r, key, text_key, LOG_U64)->n = v;
}

static void rec_bool(struct log_record *r, const char *key, const char *text_key, int v)
{
    rec_add(r, key, text_key, LOG_BOOL)->n = v != 0;
}

static void rec_secs(struct log_record *r, const char *key, const char *text_key, int64_t us)
{
    rec_add(r, key, text_key, LOG_SECS)->us = us;
}

/* ---- the fields --------------------------------------------------------------------- */

/* The --cert file of the keypair c was served, NULL on a resumed session. */
static const char *served_cert(const struct server *s, tlskit_conn *c)
{
    int i = tlskit_conn_local_cert_index(c);
    return i >= 0 && (size_t)i < s->opt.ncert ? s->opt.cert[i] : NULL;
}

static void handshake_record(const struct server *s, tlskit_conn *c, struct log_record *r)
{
    memset(r, 0, sizeof(*r));
    r->event = "handshake";
    r->peer = tlskit_conn_peer_addr(c);
    rec_str(r, "protocol", "proto", tlskit_conn_protocol(c));
    rec_str(r, "cipher", "cipher", tlskit_conn_cipher(c));
    rec_str(r, "group", "group", tlskit_conn_group(c));
    rec_str(r, "sni", "sni", tlskit_conn_servername(c));
    rec_str(r, "alpn", NULL, tlskit_conn_alpn_selected(c));
    rec_bool(r, "resumed", NULL, tlskit_conn_session_reused(c));
    rec_str(r, "cert", "cert", served_cert(s, c));
    int has = tlskit_conn_peer_cert_provided(c);
    rec_quoted(r, "client_cert", "client-cert", has ? tlskit_conn_peer_cert_subject(c) : NULL,
               has ? "\"-\"" : "none");
    if (has)
        rec_str(r, "client_cert_fingerprint", "fingerprint",
                tlskit_conn_peer_cert_fingerprint(c));
    else
        rec_str(r, "client_cert_fingerprint", NULL, NULL);
    rec_quoted(r, "verify", "verify", tlskit_conn_verify_result(c), "\"-\"");
}

static void end_record(tlskit_conn *c, int code, const char *why, const struct backend_log *b,
                       struct log_record *r)
{
    int done = tlskit_conn_handshake_done(c);
    memset(r, 0, sizeof(*r));
    r->event = "conn";
    r->peer = tlskit_conn_peer_addr(c);
    rec_str(r, "protocol", "proto", done ? tlskit_conn_protocol(c) : NULL);
    rec_str(r, "cipher", "cipher", done ? tlskit_conn_cipher(c) : NULL);
    rec_str(r, "group", NULL, done ? tlskit_conn_group(c) : NULL);
    rec_str(r, "sni", NULL, tlskit_conn_servername(c));
    rec_str(r, "alpn", "alpn", done ? tlskit_conn_alpn_selected(c) : NULL);
    rec_bool(r, "resumed", NULL, done && tlskit_conn_session_reused(c));
    rec_u64(r, "bytes_in", "in", tlskit_conn_bytes_in(c));
    rec_u64(r, "bytes_out", "out", tlskit_conn_bytes_out(c));
    if (b != NULL) { /* --forward: the backend's side */
        rec_str(r, "backend", "backend", b->addr);
        rec_u64(r, "backend_bytes_in", "backend_in", b->in);
        rec_u64(r, "backend_bytes_out", "backend_out", b->out);
    }
    rec_secs(r, "duration_ms", "time", tlskit_conn_age_ms(c) * 1000);
    rec_secs(r, "handshake_ms", NULL, tlskit_conn_phase_us(c, TLSKIT_PHASE_HANDSHAKE));
    r->has_result = 1;
    r->code = code;
    r->why = why != NULL && *why != '\0' ? why : "unknown error";
}

/* ---- the two formats ---------------------------------------------------------------- */

static void text_field(char *buf, size_t len, size_t *used, const struct log_field *f)
{
    int n = 0;
    switch (f->kind) {
    case LOG_STR:
        if (f->s == NULL)
            n = snprintf(buf + *used, len - *used, " %s=%s", f->text_key,
                         f->null_text != NULL ? f->null_text : "-");
        else
            n = snprintf(buf + *used, len - *used, f->quote ? " %s=\"%s\"" : " %s=%s",
                         f->text_key, f->s);
        break;
    case LOG_U64:
        n = snprintf(buf + *used, len - *used, " %s=%llu", f->text_key,
                     (unsigned long long)f->n);
        break;
    case LOG_BOOL:
        n = snprintf(buf + *used, len - *used, " %s=%s", f->text_key, f->n ? "yes" : "no");
        break;
    case LOG_SECS:
        n = snprintf(buf + *used, len - *used, " %s=%.3fs", f->text_key,
                     f->us < 0 ? 0.0 : (double)f->us / 1e6);
        break;
    }
    if (n > 0)
        *used = *used + (size_t)n < len ? *used + (size_t)n : len - 1;
}

/* "tlsserver: conn PEER proto=... time=0.012s ok", through cli_msg() (one write, control
 * characters made harmless). */
static void log_text(const struct log_record *r)
{
    char buf[2048];
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < r->n; i++)
        if (r->f[i].text_key != NULL)
            text_field(buf, sizeof(buf), &used, &r->f[i]);
    const char *peer = r->peer != NULL && *r->peer != '\0' ? r->peer : "-";
    if (!r->has_result)
        cli_msg("%s %s%s", r->event, peer, buf);
    else if (r->code == TLSKIT_E_NONE)
        cli_msg("%s %s%s ok", r->event, peer, buf);
    else
        cli_msg("%s %s%s error=%s: %s", r->event, peer, buf, tlskit_error_name(r->code),
                r->why);
}

/* One JSON object on one line of stderr, written whole (worker threads log at once). */
static void log_json(const struct log_record *r)
{
    struct json j;
    json_init(&j);
    json_object_begin(&j, NULL);
    json_string(&j, "event", r->event);
    json_string(&j, "peer", r->peer);
    for (int i = 0; i < r->n; i++) {
        const struct log_field *f = &r->f[i];
        switch (f->kind) {
        case LOG_STR: json_string(&j, f->key, f->s); break;
        case LOG_U64: json_int(&j, f->key, (int64_t)f->n); break;
        case LOG_BOOL: json_bool(&j, f->key, f->n != 0); break;
        case LOG_SECS: json_ms(&j, f->key, f->us); break;
        }
    }
    if (r->has_result) {
        json_bool(&j, "ok", r->code == TLSKIT_E_NONE);
        if (r->code != TLSKIT_E_NONE) {
            json_object_begin(&j, "error");
            json_string(&j, "code", tlskit_error_name(r->code));
            json_string(&j, "message", r->why);
            json_object_end(&j);
        }
    }
    json_object_end(&j);
    json_newline(&j); /* in the buffer, so the line leaves in one write */
    const char *text = json_text(&j);
    if (text != NULL) {
        (void)cli_write_all(STDERR_FILENO, text, strlen(text), 1);
    } else {
        cli_msg("log: out of memory");
    }
    json_free(&j);
}

static void log_record(const struct server *s, const struct log_record *r)
{
    if (s->opt.log_json)
        log_json(r);
    else
        log_text(r);
}

void server_log_handshake(const struct server *s, tlskit_conn *c)
{
    struct log_record r;
    if (s->opt.verbosity < 2)
        return;
    handshake_record(s, c, &r);
    log_record(s, &r);
}

void server_log_end(const struct server *s, tlskit_conn *c, int code, const char *why)
{
    server_log_end_fwd(s, c, code, why, NULL);
}

void server_log_end_fwd(const struct server *s, tlskit_conn *c, int code, const char *why,
                        const struct backend_log *b)
{
    struct log_record r;
    /* A load balancer's health check (PROXY LOCAL, then closed before TLS) is no error
     * and would be a line every few seconds: -v shows it, as a "health-check" line. */
    int check = tlskit_conn_health_check(c);
    if (s->opt.verbosity < (check ? 2 : 1))
        return;
    end_record(c, check ? TLSKIT_E_NONE : code, why, b, &r);
    if (check)
        r.event = "health-check";
    log_record(s, &r);
}
