/* SPDX-License-Identifier: MIT */
/* tlskit_conn: handshake, read, write, shutdown, close; blocking and non-blocking.
 * Every OpenSSL call goes through conn_run(), which owns the WANT contract and the
 * deadlines; failures are put into words by conn_fail.c. On a connection served by the
 * engine, the public calls queue and close through the engine instead (the seam at the
 * end of this file is what the engine uses). */
#include "conn.h"

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

struct tlskit__conn_notes *tlskit__conn_notes(tlskit_conn *c)
{
    if (!c->notes)
        c->notes = calloc(1, sizeof(*c->notes));
    return c->notes;
}

void tlskit_conn_free(tlskit_conn *c)
{
    if (!c || c->eng) /* an engine connection is freed by the engine, after on_close */
        return;
    SSL_free(c->ssl);
    tlskit__proxy_free(c);
    if (c->own_fd && c->fd >= 0)
        close(c->fd);
    tlskit__info_free(c);
    free(c->notes);
    free(c->wleft);
    free(c->dg);
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

/* Calls that only make sense for a connection the caller drives itself; the engine
 * drives its own (it reads into on_data, and decides blocking). */
static int engine_owned(tlskit_conn *c, const char *call)
{
    if (!c->eng)
        return 0;
    tlskit__err_set(&c->err, TLSKIT_E_INVALID,
                    "%s: %s is served by the engine (its data arrives in on_data)", call,
                    c->peer);
    return 1;
}

int tlskit_conn_set_nonblocking(tlskit_conn *c, int on)
{
    tlskit__err_clear(&c->err);
    if (engine_owned(c, "set_nonblocking"))
        return -1;
    c->nonblocking = on != 0;
    return 0;
}

int tlskit__conn_setup(tlskit_conn *c, int fd, int own_fd, int is_server)
{
    c->fd = fd;
    c->own_fd = own_fd;
    c->is_server = is_server;
    c->last_activity = c->created_ms = tlskit__now_ms();
    if (c->plain) {
        c->state = TK_READY;
        return 0;
    }
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
    BIO *bio = c->dg ? tlskit__dgram_bio_new(c) : tlskit__bio_new(c);
    if (!c->ssl || !bio) {
        BIO_free(bio);
        tlskit__err_set_ssl(&c->err, TLSKIT_E_NOMEM, "out of memory", "new TLS session");
        return -1;
    }
    SSL_set_bio(c->ssl, bio, bio);
    SSL_set_app_data(c->ssl, c);
    if (c->dg)
        tlskit__dtls_ssl_setup(c);
    if (is_server)
        tlskit__server_setup(c);
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
    if (flags >= 0 && c->cfg->dtls && tlskit__dtls_wrap_check(c, fd, is_server) != 0)
        return -1;
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

/* The handshake deadline is a total: fixed at the first handshake step (or when the
 * engine takes the connection), never moved. */
static void arm_handshake_deadline(tlskit_conn *c, int64_t now)
{
    if (!c->hs_deadline && c->cfg->timeouts[TLSKIT_TIMEOUT_HANDSHAKE])
        c->hs_deadline = now + c->cfg->timeouts[TLSKIT_TIMEOUT_HANDSHAKE];
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
static int write_records_in(tlskit_conn *c, const unsigned char *buf, size_t len,
                            size_t *written, size_t *n);

static int write_records(tlskit_conn *c, const unsigned char *buf, size_t len,
                         size_t *written, size_t *n)
{
    int r = write_records_in(c, buf, len, written, n);
    tlskit__bio_flush(c);
    return r;
}

static int write_records_in(tlskit_conn *c, const unsigned char *buf, size_t len,
                            size_t *written, size_t *n)
{
    for (;;) {
        size_t left = len - *written, chunk = left > TK_RECORD ? TK_RECORD : left, done = 0;
        if (c->dg || (c->nonblocking && !(SSL_get_mode(c->ssl) & SSL_MODE_ENABLE_PARTIAL_WRITE)))
            chunk = left; /* DTLS: one write, one record, one datagram */
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
    if (op == OP_HANDSHAKE)
        arm_handshake_deadline(c, start);
    int64_t deadline = op_deadline(c, op, start);
    size_t written = 0; /* OP_WRITE: bytes of buf already taken, kept across waits */

    for (;;) {
        int r;
        size_t n = 0;
        /* DTLS: a flight whose answer is overdue goes out again (RFC 6347 4.2.4). */
        if (c->dg && !c->hs_done && tlskit__dtls_tick(c) != 0) {
            tlskit__conn_fail(c, op, SSL_ERROR_SSL);
            return -1;
        }
        ERR_clear_error();
        c->io_errno = 0;
        int e = SSL_ERROR_NONE;
        if (c->plain) {
            r = tlskit__plain_step(c, op, buf, len, &written, &n, &e);
        } else {
            switch (op) {
            case OP_HANDSHAKE: r = SSL_do_handshake(c->ssl); break;
            case OP_READ: r = SSL_read_ex(c->ssl, buf, len, &n); break;
            case OP_WRITE: r = write_records(c, buf, len, &written, &n); break;
            default: r = SSL_shutdown(c->ssl); if (r == 0) r = 1; break;
            }
        }
        if (r > 0)
            return op == OP_READ || op == OP_WRITE ? (ssize_t)n : 1;
        if (op == OP_WRITE)
            tlskit__bio_uncork(c);

        if (!c->plain)
            e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN && op == OP_READ) {
            c->got_close_notify = 1;
            return 0;
        }
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            tlskit__conn_fail(c, op, e);
            return -1;
        }
        if (deadline && tlskit__now_ms() >= deadline)
            return tlskit__conn_timeout(c, op);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        if (c->nonblocking)
            return e == SSL_ERROR_WANT_READ ? TLSKIT_WANT_READ : TLSKIT_WANT_WRITE;
        /* The idle deadline moves with traffic: recompute before each wait. */
        if (op != OP_HANDSHAKE && c->hs_done)
            deadline = op_deadline(c, op, start);
        int64_t wake = deadline;
        if (c->dg && !c->hs_done)
            wake = tlskit__deadline_min(deadline, tlskit__dtls_timer_at(c));
        int w = tlskit__wait_fd(c->fd, ev, wake);
        if (w == 0 && wake != deadline && !(deadline && tlskit__now_ms() >= deadline))
            continue; /* the DTLS timer: retransmit at the top of the loop */
        if (w == 0)
            return tlskit__conn_timeout(c, op);
        if (w < 0) {
            c->dead = 1;
            tlskit__err_set_errno(&c->err, TLSKIT_E_IO, errno, "%s %s: poll",
                                  tlskit__conn_op_text(op), c->peer);
            return -1;
        }
    }
}

static int ensure_handshake(tlskit_conn *c)
{
    if (c->hs_done)
        return 0;
    if (c->prx) { /* a PROXY header comes first (proxy_recv.c) */
        int p = tlskit__proxy_recv(c);
        if (p != 0)
            return p;
    }
    if (!c->times.hs_start)
        c->times.hs_start = tlskit__now_us();
    ssize_t r = conn_run(c, OP_HANDSHAKE, NULL, 0);
    if (r == 1 || r == -1)
        c->times.hs_end = c->times.end = tlskit__now_us();
    if (r == 1) {
        c->hs_done = 1;
        c->state = TK_OPEN;
        if (!c->plain)
            tlskit__info_collect(c);
        return 0;
    }
    if (r == -1 && c->ssl)
        tlskit__info_verify_text(c);
    return (int)r;
}

int64_t tlskit_conn_phase_us(const tlskit_conn *c, enum tlskit_phase phase)
{
    const struct tlskit__times *t = &c->times;
    int64_t from = 0, to = 0;
    switch (phase) {
    case TLSKIT_PHASE_DNS: from = t->begin; to = t->resolved; break;
    case TLSKIT_PHASE_CONNECT: from = t->resolved; to = t->connected; break;
    case TLSKIT_PHASE_HANDSHAKE: from = t->hs_start; to = t->hs_end; break;
    case TLSKIT_PHASE_TOTAL: from = t->begin ? t->begin : t->hs_start; to = t->end; break;
    }
    return from && to >= from ? to - from : -1;
}

int tlskit__conn_handshake(tlskit_conn *c)
{
    if (check_usable(c) != 0)
        return -1;
    return ensure_handshake(c);
}

int tlskit_conn_handshake(tlskit_conn *c)
{
    if (c->eng)
        {
        tlskit__err_clear(&c->err);
        engine_owned(c, "handshake");
        return -1;
    }
    return tlskit__conn_handshake(c);
}

ssize_t tlskit__conn_read(tlskit_conn *c, void *buf, size_t len)
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

ssize_t tlskit_conn_read(tlskit_conn *c, void *buf, size_t len)
{
    if (c->eng) {
        tlskit__err_clear(&c->err);
        engine_owned(c, "read");
        return -1;
    }
    return tlskit__conn_read(c, buf, len);
}

/* DTLS: a write is one datagram. One larger than the path takes fails here, and the
 * connection stays usable; OpenSSL would send an oversized record, or fail the whole
 * connection on one above 16 KiB. */
static int dtls_too_big(tlskit_conn *c, size_t len)
{
    if (!c->dg || !c->hs_done || len <= tlskit_conn_max_write(c))
        return 0;
    tlskit__err_set(&c->err, TLSKIT_E_LIMIT,
                    "write to %s: %zu bytes do not fit in one datagram (at most %zu with MTU "
                    "%d)", c->peer, len, tlskit_conn_max_write(c), c->cfg->mtu);
    return 1;
}

ssize_t tlskit__conn_write(tlskit_conn *c, const void *buf, size_t len)
{
    if (check_usable(c) != 0)
        return -1;
    if (dtls_too_big(c, len))
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

/* On an engine connection a write queues (the engine sends as the socket takes it), as
 * uv_write() does beside uv_try_write() on one stream. */
static ssize_t engine_write(tlskit_conn *c, const void *buf, size_t len)
{
    tlskit__err_clear(&c->err);
    if (tlskit__engine_write(c, buf, len) == 0)
        return (ssize_t)len;
    if (c->err.code == TLSKIT_E_NONE)
        tlskit__err_set(&c->err, TLSKIT_E_CLOSED, "write to %s: the connection is closing",
                        c->peer);
    return -1;
}

ssize_t tlskit_conn_write(tlskit_conn *c, const void *buf, size_t len)
{
    if (c->eng && c->dg && dtls_too_big(c, len))
        return -1;
    if (c->eng)
        return engine_write(c, buf, len);
    return tlskit__conn_write(c, buf, len);
}

int tlskit_conn_write_all(tlskit_conn *c, const void *buf, size_t len)
{
    if (c->eng || c->dg) /* DTLS: one datagram, never split */
        return tlskit_conn_write(c, buf, len) < 0 ? -1 : 0;
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
            return tlskit__conn_timeout(c, OP_WRITE);
        if (w < 0) {
            tlskit__err_set_errno(&c->err, TLSKIT_E_IO, errno, "write to %s: poll", c->peer);
            return -1;
        }
    }
    return 0;
}

static int conn_shutdown(tlskit_conn *c)
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

int tlskit_conn_shutdown(tlskit_conn *c)
{
    if (c->eng) { /* after the queued output; on_close once the peer is done too */
        tlskit__err_clear(&c->err);
        tlskit__engine_shutdown(c);
        return 0;
    }
    return conn_shutdown(c);
}

/* An engine connection only: the engine reads, so only it can stop reading. */
static int engine_only(tlskit_conn *c, const char *call)
{
    tlskit__err_clear(&c->err);
    if (c->eng)
        return 1;
    tlskit__err_set(&c->err, TLSKIT_E_INVALID, "%s: %s is not served by the engine", call,
                    c->peer);
    return 0;
}

int tlskit_conn_read_stop(tlskit_conn *c)
{
    if (!engine_only(c, "read_stop"))
        return -1;
    tlskit__engine_hold(c, 1);
    return 0;
}

int tlskit_conn_read_start(tlskit_conn *c)
{
    if (!engine_only(c, "read_start"))
        return -1;
    tlskit__engine_hold(c, 0);
    return 0;
}

int tlskit_conn_abort(tlskit_conn *c, const char *why)
{
    if (!engine_only(c, "abort"))
        return -1;
    tlskit__engine_abort(c, why);
    return 0;
}

int tlskit_conn_close(tlskit_conn *c)
{
    int rc = 0;
    if (!c)
        return -1;
    tlskit__err_clear(&c->err);
    if (c->eng) { /* after the queued output, close_notify included */
        tlskit__engine_close(c);
        return 0;
    }
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

int tlskit_conn_refuse(tlskit_conn *c)
{
    if (!c)
        return -1;
    if (c->eng || !c->is_server || c->dg || c->plain || c->state != TK_READY || c->fd < 0 ||
        c->times.hs_start) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID, "refuse %s: only a TLS connection "
                        "accepted from a listener, before its handshake", c->peer);
        return -1;
    }
    tlskit__send_refusal(c->fd);
    shutdown(c->fd, SHUT_WR);
    /* What the client has sent so far (its ClientHello) is dropped, without waiting, so
     * that our close is a FIN the client reads after the alert, not a reset. */
    char buf[4096];
    for (size_t got = 0; got < TK_REFUSE_DRAIN;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return tlskit_conn_close(c); /* before its handshake: no close_notify, only the close */
}

size_t tlskit_conn_pending(const tlskit_conn *c)
{
    /* Records gathered for one send() that the socket did not take (bio.c) are still
     * this connection's output: a pair's backpressure must see them. */
    return c && c->eng ? tlskit__engine_pending(c) + c->wleft_len : 0;
}

/* The deadline that applies to the connection's state now (handshake, or idle); 0: none. */
static int64_t state_deadline(const tlskit_conn *c)
{
    if (c->prx)
        return tlskit__proxy_deadline(c);
    if (!c->hs_done)
        return c->hs_deadline;
    if (c->cfg->timeouts[TLSKIT_TIMEOUT_IDLE])
        return c->last_activity + c->cfg->timeouts[TLSKIT_TIMEOUT_IDLE];
    return 0;
}

int tlskit_conn_timeout_ms(const tlskit_conn *c)
{
    if (!c || c->state == TK_NEW || c->state == TK_CLOSED)
        return -1;
    int64_t d = state_deadline(c);
    if (c->dg && !c->hs_done)
        d = tlskit__deadline_min(d, tlskit__dtls_timer_at(c));
    if (!d)
        return -1;
    int64_t left = d - tlskit__now_ms();
    if (left < 0)
        left = 0;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

/* ---- the seam for the engine (internal.h) ---- */

void tlskit__conn_engine_attach(tlskit_conn *c, struct tlskit__econn *ec)
{
    c->eng = ec;
    c->nonblocking = 1;
    /* Partial writes: the engine keeps what the socket did not take and offers the rest
     * later. Released buffers: an idle connection holds no record buffers. */
    if (c->ssl)
        SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
    /* An outbound connection's handshake deadline starts with its first step, once
     * connected (the CONNECT deadline covers the time before). */
    if (c->is_server)
        arm_handshake_deadline(c, tlskit__now_ms());
}

void tlskit__conn_readable(tlskit_conn *c)
{
    c->rd_empty = 0;
}

struct tlskit__econn *tlskit__conn_engine(const tlskit_conn *c)
{
    return c->eng;
}

void tlskit__conn_engine_free(tlskit_conn *c)
{
    if (c) {
        c->eng = NULL;
        tlskit_conn_free(c);
    }
}

const tlskit_config *tlskit__conn_config(const tlskit_conn *c)
{
    return c->cfg;
}

void tlskit__conn_cork(tlskit_conn *c, int on)
{
    /* Nothing sent yet: the step ahead sends the first flight, which is all there is to
     * send until the peer answers; holding it back would only cost the push. */
    c->cork = on && c->sent_any;
}

void tlskit__conn_push(tlskit_conn *c)
{
    tlskit__bio_uncork(c);
}

int tlskit__conn_shutdown(tlskit_conn *c)
{
    return conn_shutdown(c);
}

void tlskit__conn_finish(tlskit_conn *c)
{
    if (!c->hs_done || c->dead || c->sent_shutdown)
        return;
    if (c->plain) { /* the FIN now: close() with unread input would send a reset */
        conn_shutdown(c);
        return;
    }
    c->cork = 1;
    conn_shutdown(c); /* non-blocking: close_notify if the socket takes it */
    c->cork = 0;
    /* The close_notify was held back (MSG_MORE): the FIN goes out with it, one segment.
     * shutdown(), not close(): close() with unread input would reset the connection and
     * drop what is held. */
    if (c->corked && shutdown(c->fd, SHUT_WR) != 0)
        tlskit__bio_uncork(c);
    c->corked = 0;
}

int tlskit__conn_expired(tlskit_conn *c, int64_t now)
{
    if (c->dg && !c->hs_done && !c->dead && tlskit__dtls_tick(c) != 0) {
        tlskit__conn_fail(c, OP_HANDSHAKE, SSL_ERROR_SSL);
        return 1;
    }
    int64_t d = state_deadline(c);
    if (!d || now < d || c->dead)
        return 0;
    /* UDP has no FIN: a quiet association is told it ends (RFC 6347 4.2.7 alerts). */
    if (c->dg && c->hs_done)
        conn_shutdown(c);
    tlskit__conn_timeout(c, c->hs_done ? OP_IDLE : c->prx ? OP_PROXY : OP_HANDSHAKE);
    return 1;
}
