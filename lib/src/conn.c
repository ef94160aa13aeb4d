/* SPDX-License-Identifier: MIT */
/* tlskit_conn: handshake, read, write, shutdown, close; blocking and non-blocking.
 * Every OpenSSL call goes through conn_run(), which owns the WANT contract, the
 * deadlines and the translation of failures into the connection's error. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Longest wait to hand close_notify to a peer when no WRITE deadline is set. */
#define TK_CLOSE_NOTIFY_MS 5000

enum tlskit__op { OP_HANDSHAKE, OP_READ, OP_WRITE, OP_SHUTDOWN };

static const char *op_text(enum tlskit__op op)
{
    switch (op) {
    case OP_HANDSHAKE: return "handshake with";
    case OP_READ: return "read from";
    case OP_WRITE: return "write to";
    default: return "close_notify to";
    }
}

tlskit_conn *tlskit_conn_new(tlskit_config *cfg)
{
    if (!cfg)
        return NULL;
    tlskit_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->cfg = tlskit__config_ref(cfg);
    c->fd = -1;
    snprintf(c->peer, sizeof(c->peer), "(not connected)");
    return c;
}

void tlskit_conn_free(tlskit_conn *c)
{
    if (!c)
        return;
    SSL_free(c->ssl);
    if (c->own_fd && c->fd >= 0)
        close(c->fd);
    tlskit__info_free(c);
    free(c->servername);
    tlskit__err_free(&c->err);
    tlskit_config_free(c->cfg);
    free(c);
}

const char *tlskit_conn_error(const tlskit_conn *c)
{
    return c ? tlskit__err_text(&c->err) : "no connection";
}

int tlskit_conn_error_code(const tlskit_conn *c)
{
    return c ? c->err.code : TLSKIT_E_INVALID;
}

void tlskit_conn_set_userdata(tlskit_conn *c, void *data)
{
    c->userdata = data;
}

void *tlskit_conn_userdata(const tlskit_conn *c)
{
    return c->userdata;
}

int tlskit_conn_fd(const tlskit_conn *c)
{
    return c ? c->fd : -1;
}

int tlskit_conn_set_nonblocking(tlskit_conn *c, int on)
{
    tlskit__err_clear(&c->err);
    c->nonblocking = on != 0;
    return 0;
}

static void setup_server(tlskit_conn *c)
{
    int mode = SSL_VERIFY_NONE;
    if (c->cfg->verify_client == TLSKIT_VERIFY_CLIENT_OPTIONAL)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
    else if (c->cfg->verify_client == TLSKIT_VERIFY_CLIENT_REQUIRED)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE;
    SSL_set_verify(c->ssl, mode, NULL);
    SSL_set_accept_state(c->ssl);
}

int tlskit__conn_setup(tlskit_conn *c, int fd, int own_fd, int is_server)
{
    c->fd = fd;
    c->own_fd = own_fd;
    c->is_server = is_server;
    c->last_activity = c->created_ms = tlskit__now_ms();
    /* The trust store only matters to a role that verifies its peer: loading (and, for
     * the chain, searching) the system store on every server handshake costs ~15%. */
    int verifies = is_server ? c->cfg->verify_client != TLSKIT_VERIFY_CLIENT_NONE
                             : c->cfg->verify_cert;
    if (verifies && tlskit__config_prepare(c->cfg, &c->err) != 0)
        return -1;
    if (is_server && !c->cfg->has_keypair) {
        tlskit__err_set(&c->err, TLSKIT_E_CONFIG, "server role needs a certificate and key");
        return -1;
    }
    ERR_clear_error();
    c->ssl = SSL_new(c->cfg->ctx);
    BIO *bio = tlskit__bio_new(c);
    if (!c->ssl || !bio) {
        BIO_free(bio);
        tlskit__err_set_ssl(&c->err, TLSKIT_E_NOMEM, "out of memory", "new TLS session");
        return -1;
    }
    SSL_set_bio(c->ssl, bio, bio);
    SSL_set_app_data(c->ssl, c);
    if (is_server)
        setup_server(c);
    else if (tlskit__client_setup(c) != 0)
        return -1;
    c->state = TK_READY;
    return 0;
}

static int wrap(tlskit_conn *c, int fd, int is_server)
{
    tlskit__err_clear(&c->err);
    if (c->state != TK_NEW) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID, "connection is already in use");
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) {
        tlskit__err_set_errno(&c->err, TLSKIT_E_INVALID, errno, "wrap fd %d", fd);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        tlskit__format_addr((struct sockaddr *)&ss, c->peer, sizeof(c->peer));
    else if (errno == ENOTSOCK) {
        tlskit__err_set_errno(&c->err, TLSKIT_E_INVALID, errno, "wrap fd %d", fd);
        return -1;
    } else {
        snprintf(c->peer, sizeof(c->peer), "fd %d", fd);
    }
    c->nonblocking = (flags & O_NONBLOCK) != 0;
    return tlskit__conn_setup(c, fd, 0, is_server);
}

int tlskit_conn_wrap_client(tlskit_conn *c, int fd, const char *servername)
{
    if (servername && tlskit_conn_set_servername(c, servername) != 0)
        return -1;
    return wrap(c, fd, 0);
}

int tlskit_conn_wrap_server(tlskit_conn *c, int fd)
{
    return wrap(c, fd, 1);
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
    if (r == SSL_R_CERTIFICATE_VERIFY_FAILED)
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
static void conn_fail(tlskit_conn *c, enum tlskit__op op, int ssl_error)
{
    struct fail_facts f = {
        .ssl_error = ssl_error, .reason = ssl_reason(),
        .is_server = c->is_server, .hs_done = c->hs_done, .cert_requested = c->cert_requested,
        .io_errno = c->io_errno, .io_reset = c->io_reset,
    };
    enum fail_kind k = classify(&f);
    char detail[TK_ERRLEN] = "";
    const char *d = detail;

    switch (fail_text[k].detail) {
    case D_VERIFY_RESULT:
        d = X509_verify_cert_error_string(SSL_get_verify_result(c->ssl));
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
    tlskit__err_set(&c->err, fail_text[k].code, "%s %s: %s%s%s", op_text(op), c->peer,
                    fail_text[k].pre, d, fail_text[k].post);
}

static int conn_timeout(tlskit_conn *c, enum tlskit__op op)
{
    /* A read that waited in vain leaves the TLS state intact (the connection may be used
     * again, or closed with close_notify); a stalled handshake or write does not. */
    if (op != OP_READ)
        c->dead = 1;
    if (op == OP_HANDSHAKE)
        tlskit__err_set(&c->err, TLSKIT_E_TIMEOUT, "%s %s: timed out after %.3f s",
                   op_text(op), c->peer,
                   (double)c->cfg->timeouts[TLSKIT_TIMEOUT_HANDSHAKE] / 1000.0);
    else
        tlskit__err_set(&c->err, TLSKIT_E_TIMEOUT, "%s %s: timed out", op_text(op), c->peer);
    return -1;
}

/* The deadline that bounds one waiting step of op, fixed at the start of the call. */
static int64_t op_deadline(tlskit_conn *c, enum tlskit__op op, int64_t call_start)
{
    const int64_t *t = c->cfg->timeouts;
    int64_t d = 0;
    if (op == OP_HANDSHAKE || !c->hs_done)
        return c->hs_deadline;
    if (op == OP_READ && t[TLSKIT_TIMEOUT_READ])
        d = call_start + t[TLSKIT_TIMEOUT_READ];
    if ((op == OP_WRITE || op == OP_SHUTDOWN) && t[TLSKIT_TIMEOUT_WRITE])
        d = call_start + t[TLSKIT_TIMEOUT_WRITE];
    else if (op == OP_SHUTDOWN)
        d = call_start + TK_CLOSE_NOTIFY_MS; /* never hang on a peer that does not read */
    if (t[TLSKIT_TIMEOUT_IDLE])
        d = tlskit__deadline_min(d, c->last_activity + t[TLSKIT_TIMEOUT_IDLE]);
    return d;
}

/* Start of an I/O call: a connection that failed keeps (and repeats) its error; else
 * the previous error is cleared. */
static int check_usable(tlskit_conn *c)
{
    if (c->dead && c->state != TK_CLOSED)
        return -1; /* keep the error that made it unusable */
    tlskit__err_clear(&c->err);
    if (c->state == TK_NEW) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID, "connection is not connected");
        return -1;
    }
    if (c->state == TK_CLOSED) {
        tlskit__err_set(&c->err, TLSKIT_E_CLOSED, "connection is closed");
        return -1;
    }
    return 0;
}

/* One record per SSL_write; every record but the last of this call is sent with
 * MSG_MORE (bio.c), so the kernel packs several into one segment: fewer packets and fewer
 * wake-ups of the peer. Each send() still takes its bytes or says EAGAIN: nothing waits
 * inside the library.
 * A non-blocking write that stops after some records returns their count, and OpenSSL
 * then needs the next call to carry at least the record it holds: only partial-write
 * mode (the engine) promises that; other non-blocking writes stay one SSL_write, retried
 * with the same arguments.
 * Returns SSL_write_ex's result, with *n = len when all is written; a partial write
 * (above) succeeds with *n = the bytes taken. *written survives a blocking wait. */
static int write_records(tlskit_conn *c, const unsigned char *buf, size_t len,
                         size_t *written, size_t *n)
{
    for (;;) {
        size_t left = len - *written, chunk = left > TK_RECORD ? TK_RECORD : left, done = 0;
        if (c->nonblocking && !(SSL_get_mode(c->ssl) & SSL_MODE_ENABLE_PARTIAL_WRITE))
            chunk = left;
        c->msg_more = left > chunk;
        int r = SSL_write_ex(c->ssl, buf + *written, chunk, &done);
        c->msg_more = 0;
        if (r > 0) {
            *written += done;
            *n = *written;
            if (*written == len)
                return r;
            ERR_clear_error();
            c->io_errno = 0;
            continue;
        }
        if (*written > 0 && c->nonblocking) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                tlskit__bio_uncork(c);
                return 1; /* a partial write: the rest later */
            }
        }
        return r;
    }
}

/* Run one operation. Returns > 0 / 1 on success (bytes for I/O), 0 for a clean EOF on
 * read, -1 on failure, or WANT on a non-blocking connection. */
static ssize_t conn_run(tlskit_conn *c, enum tlskit__op op, void *buf, size_t len)
{
    int64_t start = tlskit__now_ms();
    if (op == OP_HANDSHAKE && !c->hs_deadline && c->cfg->timeouts[TLSKIT_TIMEOUT_HANDSHAKE])
        c->hs_deadline = start + c->cfg->timeouts[TLSKIT_TIMEOUT_HANDSHAKE];
    int64_t deadline = op_deadline(c, op, start);
    size_t written = 0; /* OP_WRITE: bytes of buf already taken, kept across waits */

    for (;;) {
        int r;
        size_t n = 0;
        ERR_clear_error();
        c->io_errno = 0;
        switch (op) {
        case OP_HANDSHAKE: r = SSL_do_handshake(c->ssl); break;
        case OP_READ: r = SSL_read_ex(c->ssl, buf, len, &n); break;
        case OP_WRITE: r = write_records(c, buf, len, &written, &n); break;
        default: r = SSL_shutdown(c->ssl); if (r == 0) r = 1; break;
        }
        if (r > 0)
            return op == OP_READ || op == OP_WRITE ? (ssize_t)n : 1;
        if (op == OP_WRITE)
            tlskit__bio_uncork(c);

        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN && op == OP_READ) {
            c->got_close_notify = 1;
            return 0;
        }
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            conn_fail(c, op, e);
            return -1;
        }
        if (deadline && tlskit__now_ms() >= deadline)
            return conn_timeout(c, op);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        if (c->nonblocking)
            return e == SSL_ERROR_WANT_READ ? TLSKIT_WANT_READ : TLSKIT_WANT_WRITE;
        /* The idle deadline moves with traffic: recompute before each wait. */
        if (op != OP_HANDSHAKE && c->hs_done)
            deadline = op_deadline(c, op, start);
        int w = tlskit__wait_fd(c->fd, ev, deadline);
        if (w == 0)
            return conn_timeout(c, op);
        if (w < 0) {
            c->dead = 1;
            tlskit__err_set_errno(&c->err, TLSKIT_E_IO, errno, "%s %s: poll", op_text(op), c->peer);
            return -1;
        }
    }
}

static int ensure_handshake(tlskit_conn *c)
{
    if (c->hs_done)
        return 0;
    ssize_t r = conn_run(c, OP_HANDSHAKE, NULL, 0);
    if (r == 1) {
        c->hs_done = 1;
        c->state = TK_OPEN;
        tlskit__info_collect(c);
        return 0;
    }
    if (r == -1 && c->ssl)
        tlskit__info_verify_text(c);
    return (int)r;
}

int tlskit_conn_handshake(tlskit_conn *c)
{
    if (check_usable(c) != 0)
        return -1;
    return ensure_handshake(c);
}

ssize_t tlskit_conn_read(tlskit_conn *c, void *buf, size_t len)
{
    if (check_usable(c) != 0)
        return -1;
    if (c->got_close_notify)
        return 0;
    int h = ensure_handshake(c);
    if (h != 0)
        return h;
    if (len == 0)
        return 0;
    ssize_t r = conn_run(c, OP_READ, buf, len);
    if (r > 0)
        c->bytes_in += (uint64_t)r;
    return r;
}

ssize_t tlskit_conn_write(tlskit_conn *c, const void *buf, size_t len)
{
    if (check_usable(c) != 0)
        return -1;
    if (c->sent_shutdown) {
        tlskit__err_set(&c->err, TLSKIT_E_CLOSED, "write to %s: already sent close_notify", c->peer);
        return -1;
    }
    int h = ensure_handshake(c);
    if (h != 0)
        return h;
    if (len == 0)
        return 0;
    ssize_t r = conn_run(c, OP_WRITE, (void *)(uintptr_t)buf, len);
    if (r > 0)
        c->bytes_out += (uint64_t)r;
    return r;
}

int tlskit_conn_write_all(tlskit_conn *c, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    int64_t deadline = tlskit__deadline_in(c->cfg->timeouts[TLSKIT_TIMEOUT_WRITE]);
    while (len > 0) {
        ssize_t n = tlskit_conn_write(c, p, len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n != TLSKIT_WANT_READ && n != TLSKIT_WANT_WRITE)
            return -1;
        int w = tlskit__wait_fd(c->fd, tlskit_want_events(n), deadline);
        if (w == 0)
            return conn_timeout(c, OP_WRITE);
        if (w < 0) {
            tlskit__err_set_errno(&c->err, TLSKIT_E_IO, errno, "write to %s: poll", c->peer);
            return -1;
        }
    }
    return 0;
}

int tlskit_conn_shutdown(tlskit_conn *c)
{
    if (check_usable(c) != 0)
        return -1;
    if (c->sent_shutdown || !c->hs_done) {
        c->sent_shutdown = 1;
        return 0;
    }
    ssize_t r = conn_run(c, OP_SHUTDOWN, NULL, 0);
    if (r == 1) {
        c->sent_shutdown = 1;
        return 0;
    }
    return (int)r;
}

int tlskit_conn_close(tlskit_conn *c)
{
    int rc = 0;
    if (!c)
        return -1;
    tlskit__err_clear(&c->err);
    if (c->state == TK_CLOSED)
        return 0;
    if (c->state == TK_OPEN && !c->dead && !c->sent_shutdown) {
        /* Bounded: a peer that never reads must not hold close() forever. */
        int nb = c->nonblocking;
        c->nonblocking = 0;
        ssize_t r = conn_run(c, OP_SHUTDOWN, NULL, 0);
        c->nonblocking = nb;
        if (r == 1)
            c->sent_shutdown = 1;
        else
            rc = -1;
    }
    if (c->fd >= 0) {
        if (c->own_fd) {
            close(c->fd);
        }
        c->fd = c->own_fd ? -1 : c->fd;
    }
    c->state = TK_CLOSED;
    return rc;
}

int tlskit_conn_timeout_ms(const tlskit_conn *c)
{
    int64_t d = 0;
    if (!c || c->state == TK_NEW || c->state == TK_CLOSED)
        return -1;
    if (!c->hs_done)
        d = c->hs_deadline;
    else if (c->cfg->timeouts[TLSKIT_TIMEOUT_IDLE])
        d = c->last_activity + c->cfg->timeouts[TLSKIT_TIMEOUT_IDLE];
    if (!d)
        return -1;
    int64_t left = d - tlskit__now_ms();
    if (left < 0)
        left = 0;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}
