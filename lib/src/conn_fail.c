/* SPDX-License-Identifier: MIT */
/* A connection's failures in words: classify what went wrong (from SSL_get_error, the
 * SSL library's own reason, and what the BIO saw on the socket), then format the message
 * once; and the one formatter of its timeouts. conn.c calls these after every failed
 * OpenSSL call; the engine reaches them through the seam (tlskit__conn_expired). */
#include "conn.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

const char *tlskit__conn_op_text(enum tlskit__op op)
{
    switch (op) {
    case OP_HANDSHAKE: return "handshake with";
    case OP_READ: return "read from";
    case OP_WRITE: return "write to";
    case OP_SHUTDOWN: return "close_notify to";
    case OP_PROXY: return "PROXY header from";
    default: return "idle";
    }
}

/* ---- failures: classify, then format once ---- */

static int is_cert_alert(int reason)
{
    switch (reason) {
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_TLSV1_BAD_CERTIFICATE_STATUS_RESPONSE:
        return 1;
    default:
        return 0;
    }
}

/* What a failed SSL_* call means to the caller. */
enum fail_kind {
    F_VERIFY,         /* our check of the peer's certificate failed */
    F_NO_CLIENT_CERT, /* server: the client sent no certificate */
    F_CERT_MISSING,   /* client: the server wants a certificate we do not have */
    F_CERT_REJECTED,  /* the peer's alert says it rejected our certificate */
    F_RESET,
    F_TRUNCATED,
    F_CLOSED_IN_HS,
    F_IO,
    F_REFUSED,        /* UDP: an ICMP port unreachable answered the handshake */
    F_CLOSE_NOTIFY,
    F_NOT_TLS,        /* client: the server's first bytes are not TLS 1.0 or later */
    F_PROTOCOL,
};

/* Where the variable part of the message comes from. */
enum fail_detail { D_NONE, D_VERIFY_RESULT, D_IO_RESET, D_IO_ERRNO, D_QUEUE };

/* The message is "<op> <peer>: <pre><detail><post>". */
static const struct {
    int code;
    enum fail_detail detail;
    const char *pre, *post;
    const char *empty; /* D_QUEUE: the detail when OpenSSL queued nothing */
} fail_text[] = {
    [F_VERIFY] = {TLSKIT_E_VERIFY, D_VERIFY_RESULT, "certificate verify failed: ", "", ""},
    [F_NO_CLIENT_CERT] = {TLSKIT_E_VERIFY, D_NONE,
                          "certificate verify failed: the client sent no certificate", "", ""},
    [F_CERT_MISSING] = {TLSKIT_E_VERIFY, D_QUEUE,
                        "the server requires a client certificate and none is configured (",
                        ")", ""},
    [F_CERT_REJECTED] = {TLSKIT_E_VERIFY, D_QUEUE, "the peer rejected our certificate: ", "", ""},
    [F_RESET] = {TLSKIT_E_IO, D_IO_RESET, "", "", ""},
    [F_TRUNCATED] = {TLSKIT_E_TRUNCATED, D_NONE,
                     "connection truncated: the peer closed without close_notify", "", ""},
    [F_CLOSED_IN_HS] = {TLSKIT_E_CLOSED, D_NONE,
                        "the peer closed the connection during the handshake", "", ""},
    [F_IO] = {TLSKIT_E_IO, D_IO_ERRNO, "", "", ""},
    [F_REFUSED] = {TLSKIT_E_CONNECT, D_IO_ERRNO, "", " (nothing listens on that UDP port?)", ""},
    [F_CLOSE_NOTIFY] = {TLSKIT_E_CLOSED, D_NONE, "the peer sent close_notify", "", ""},
    [F_NOT_TLS] = {TLSKIT_E_PROTOCOL, D_QUEUE, "",
                   " (the server's answer is not TLS: a plaintext service, or TLS older "
                   "than 1.0?)", ""},
    [F_PROTOCOL] = {TLSKIT_E_PROTOCOL, D_QUEUE, "", "", "TLS protocol error"},
};

/* The SSL library's own reason for a failure: the last error it queued. The code it
 * called (RSA, EVP, X509, ASN1) queues its errors first, as causes, and their reason
 * numbers mean other things in other libraries: RSA's "last octet invalid" is 134, as
 * is SSL's "certificate verify failed". 0 when the last error is not the SSL library's. */
static int ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    return ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0;
}

/* The facts a failure is judged on. */
struct fail_facts {
    int ssl_error;  /* SSL_get_error() */
    int reason;     /* the SSL library's reason for the failure; 0: none */
    int is_server, hs_done, cert_requested;
    int io_errno, io_reset;
};

/* Precedence, first match wins:
 * 1. Certificate problems, ours or the peer's verdict on ours. They come first because
 *    the side that rejects a certificate sends an alert and hangs up: the reset or EOF
 *    that follows is a consequence, the certificate is the reason. A client the server
 *    asked for a certificate it lacks is told so before the generic "rejected our
 *    certificate", because the fix (configure one) differs.
 * 2. A reset before EOF: OpenSSL may ignore a failed write (a TLS 1.3 ticket) and then
 *    report the read's EOF, yet the peer reset the connection, it did not close it.
 * 3. EOF without close_notify: a truncation after the handshake, a refusal during it.
 * 4. Any other socket error, then a clean close_notify where none was expected.
 * 5. Protocol errors; a client whose server answers in something else than TLS gets a
 *    hint, because "wrong version number" misleads. */
static enum fail_kind classify(const struct fail_facts *f)
{
    int r = f->ssl_error == SSL_ERROR_SSL ? f->reason : 0;
    /* The client's OCSP check refused the staple (ocsp.c says why in verify_why). */
    if (r == SSL_R_CERTIFICATE_VERIFY_FAILED || (r == SSL_R_INVALID_STATUS_RESPONSE && !f->is_server))
        return F_VERIFY;
    if (r == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
        return F_NO_CLIENT_CERT;
    if (f->cert_requested && !f->is_server &&
        (r == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE || is_cert_alert(r)))
        return F_CERT_MISSING;
    if (is_cert_alert(r))
        return F_CERT_REJECTED;
    if (f->io_reset && (f->io_errno == 0 || f->io_errno == f->io_reset || f->io_errno == EPIPE))
        return F_RESET;
    if (r == SSL_R_UNEXPECTED_EOF_WHILE_READING ||
        (f->ssl_error == SSL_ERROR_SYSCALL && f->io_errno == 0))
        return f->hs_done ? F_TRUNCATED : F_CLOSED_IN_HS;
    if (f->io_errno == ECONNREFUSED && !f->hs_done)
        return F_REFUSED;
    if (f->io_errno != 0)
        return F_IO;
    if (f->ssl_error == SSL_ERROR_ZERO_RETURN)
        return F_CLOSE_NOTIFY;
    if (r == SSL_R_WRONG_VERSION_NUMBER && !f->is_server && !f->hs_done)
        return F_NOT_TLS;
    return F_PROTOCOL;
}

/* Translate a failed SSL_* call (ssl_error from SSL_get_error) into c->err, and leave
 * OpenSSL's error queue empty. */
void tlskit__conn_fail(tlskit_conn *c, enum tlskit__op op, int ssl_error)
{
    struct fail_facts f = {
        .ssl_error = ssl_error, .reason = ssl_reason(),
        .is_server = c->is_server, .hs_done = c->hs_done, .cert_requested = c->cert_requested,
        .io_errno = c->io_errno, .io_reset = c->io_reset,
    };
    enum fail_kind k = classify(&f);
    char detail[TK_ERRLEN] = "";
    const char *d = detail, *sep = "", *hint = "";

    switch (fail_text[k].detail) {
    case D_VERIFY_RESULT:
        d = TK_NOTE(c, verify_why)[0]
                ? TK_NOTE(c, verify_why)
                : X509_verify_cert_error_string(SSL_get_verify_result(c->ssl));
        if (!TK_NOTE(c, verify_why)[0] && TK_NOTE(c, verify_hint)[0]) { /* what would help */
            sep = ": ";
            hint = TK_NOTE(c, verify_hint);
        }
        tlskit__info_verify_text(c);
        break;
    case D_IO_RESET: d = strerror_r(c->io_reset, detail, sizeof(detail)); break;
    case D_IO_ERRNO: d = strerror_r(c->io_errno, detail, sizeof(detail)); break;
    case D_QUEUE:
        if (!tlskit__ssl_errors(detail, sizeof(detail)) || !detail[0])
            d = fail_text[k].empty;
        break;
    case D_NONE: break;
    }
    ERR_clear_error(); /* what D_QUEUE did not drain: the kind already says more */
    c->dead = 1;
    tlskit__err_set(&c->err, fail_text[k].code, "%s %s: %s%s%s%s%s", tlskit__conn_op_text(op),
                    c->peer, fail_text[k].pre, d, sep, hint, fail_text[k].post);
}

/* A read, write or close_notify that ran out of time: which deadline (the operation's
 * own, or the idle one: no byte either way), and how long it was. */
static void timeout_text(tlskit_conn *c, enum tlskit__op op)
{
    const int64_t *t = c->cfg->timeouts;
    int64_t own = op == OP_READ ? t[TLSKIT_TIMEOUT_READ] : t[TLSKIT_TIMEOUT_WRITE];
    if (op == OP_SHUTDOWN && !own)
        own = TK_CLOSE_NOTIFY_MS;
    int64_t idle = t[TLSKIT_TIMEOUT_IDLE];
    const char *what = tlskit__conn_op_text(op);
    if (idle && tlskit__now_ms() - c->last_activity >= idle)
        tlskit__err_set(&c->err, TLSKIT_E_TIMEOUT, "%s %s: timed out after %.3f s idle "
                        "(no byte either way)", what, c->peer, (double)idle / 1000.0);
    else if (own)
        tlskit__err_set(&c->err, TLSKIT_E_TIMEOUT, "%s %s: timed out after %.3f s", what,
                        c->peer, (double)own / 1000.0);
    else
        tlskit__err_set(&c->err, TLSKIT_E_TIMEOUT, "%s %s: timed out", what, c->peer);
}

int tlskit__conn_timeout(tlskit_conn *c, enum tlskit__op op)
{
    /* A read that waited in vain, or an idle deadline, leaves the TLS state intact (the
     * connection may be used again, or closed with close_notify); a stalled handshake or
     * write does not. */
    if (op != OP_READ && op != OP_IDLE)
        c->dead = 1;
    const int64_t *t = c->cfg->timeouts;
    if (op == OP_HANDSHAKE)
        tlskit__err_set(&c->err, TLSKIT_E_TIMEOUT, "%s %s: timed out after %.3f s", tlskit__conn_op_text(op),
                        c->peer, (double)t[TLSKIT_TIMEOUT_HANDSHAKE] / 1000.0);
    else if (op == OP_PROXY)
        tlskit__err_set(&c->err, TLSKIT_E_TIMEOUT, "%s %s: timed out after %.3f s",
                        tlskit__conn_op_text(op), c->peer,
                        (double)tlskit__proxy_timeout_ms(c) / 1000.0);
    else if (op == OP_IDLE)
        tlskit__err_set(&c->err, TLSKIT_E_TIMEOUT, "%s idle for %.3f s", c->peer,
                        (double)t[TLSKIT_TIMEOUT_IDLE] / 1000.0);
    else
        timeout_text(c, op);
    return -1;
}
