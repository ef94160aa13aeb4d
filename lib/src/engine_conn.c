/* SPDX-License-Identifier: MIT */
/* The engine's connections: the output buffer and backpressure, progress on readiness
 * (handshake, read, flush), the end of a connection and its release. Everything here
 * runs on the worker thread that owns the connection. The connection is driven through
 * the seam in internal.h and the public API; its body is not visible here. */
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

static size_t pending(const struct tlskit__econn *ec)
{
    return ec->out_len - ec->out_off;
}

static struct tlskit__econn *econn(const tlskit_conn *c)
{
    return tlskit__conn_engine(c);
}

size_t tlskit__engine_pending(const tlskit_conn *c)
{
    return pending(econn(c));
}

/* Record why the connection ends; the worker frees it at the end of the current event
 * (never inside an application callback). */
static void end_conn(struct tlskit__econn *ec, int code, const char *fmt, ...) TK_PRINTF(3, 4);
static void end_conn(struct tlskit__econn *ec, int code, const char *fmt, ...)
{
    if (ec->ended)
        return;
    ec->ended = 1;
    ec->end_code = code;
    va_list ap;
    va_start(ap, fmt);
    if ((ec->end_reason = malloc(TK_ERRLEN)) != NULL)
        vsnprintf(ec->end_reason, TK_ERRLEN, fmt, ap);
    va_end(ap);
}

static void reap(struct tlskit__econn *ec)
{
    tlskit_conn *c = ec->conn;
    struct tlskit__worker *w = ec->w;
    tlskit_engine *e = w->e;
    if (ec->end_code == TLSKIT_E_NONE || ec->notify_on_end)
        tlskit__conn_finish(c);
    /* close() (in the free below) removes the fd from epoll: no EPOLL_CTL_DEL. */
    if (ec->prev)
        ec->prev->next = ec->next;
    else
        w->conns = ec->next;
    if (ec->next)
        ec->next->prev = ec->prev;
    w->nconns--;
    if (e->h.on_close)
        e->h.on_close(c, ec->end_code,
                      ec->end_reason ? ec->end_reason : "(out of memory: reason lost)",
                      e->h.arg);
    atomic_fetch_sub(&e->open, 1);
    int lfd = ec->linger ? tlskit__linger_take_fd(w, ec->src.fd) : -1;
    free(ec->out);
    free(ec->end_reason);
    free(ec);
    tlskit__conn_engine_free(c);
    if (lfd >= 0)
        tlskit__linger_start(w, lfd);
}

/* The connection failed (its error says how): count it and end it with that reason. */
static void fail_conn(struct tlskit__econn *ec)
{
    tlskit_conn *c = ec->conn;
    int code = tlskit_conn_error_code(c);
    if (!tlskit_conn_handshake_done(c)) {
        tlskit__count(&ec->w->ctr.hs_err[code > 0 && code < TLSKIT_E__COUNT ? code : 0], 1);
        /* The deadline may be seen here (a byte arrived after it) or by the sweep. */
        if (code == TLSKIT_E_TIMEOUT)
            tlskit__count(&ec->w->ctr.hs_timeouts, 1);
    } else if (code == TLSKIT_E_TIMEOUT) {
        tlskit__count(&ec->w->ctr.idle_timeouts, 1);
    }
    /* After a fatal alert (a refused certificate, a protocol error) the peer may still
     * be sending: a lingering close lets it read the alert instead of a reset. */
    ec->linger = code == TLSKIT_E_VERIFY || code == TLSKIT_E_PROTOCOL;
    const char *msg = tlskit_conn_error(c);
    end_conn(ec, code ? code : TLSKIT_E_IO, "%s", msg[0] ? msg : "connection failed");
}

/* Write to the socket until it takes no more. Returns 0, or -1 when the connection
 * failed (ended). *taken: bytes of buf the socket took. */
static int write_some(struct tlskit__econn *ec, const unsigned char *buf, size_t len,
                      size_t *taken)
{
    *taken = 0;
    while (*taken < len) {
        ssize_t n = tlskit__conn_write(ec->conn, buf + *taken, len - *taken);
        if (n > 0) {
            *taken += (size_t)n;
            tlskit__count(&ec->w->ctr.bytes_out, (uint64_t)n);
            continue;
        }
        if (n == TLSKIT_WANT_READ || n == TLSKIT_WANT_WRITE)
            return 0;
        fail_conn(ec);
        return -1;
    }
    return 0;
}

static void read_loop(struct tlskit__econn *ec);

/* Send queued output. Returns 0, or -1 when the connection failed (ended). */
static int flush(struct tlskit__econn *ec)
{
    tlskit_engine *e = ec->w->e;
    size_t taken;
    if (write_some(ec, ec->out + ec->out_off, pending(ec), &taken) != 0)
        return -1;
    ec->out_off += taken;
    if (taken)
        ec->stall_since = tlskit__now_ms();
    if (pending(ec) == 0 && ec->out_len) {
        ec->out_off = ec->out_len = 0;
        if (ec->out_cap > TK_OUT_KEEP) {
            free(ec->out);
            ec->out = NULL;
            ec->out_cap = 0;
        }
        if (e->h.on_drain && !ec->closing) {
            ec->in_callback++;
            e->h.on_drain(ec->conn, e->h.arg);
            ec->in_callback--;
        }
    }
    /* Reading resumes well below where it stopped (a quarter of the limit), so that a
     * connection hovering at the mark does not flip every event. */
    if (ec->paused && pending(ec) <= e->write_limit / 8 && !ec->ended) {
        ec->paused = 0;
        read_loop(ec); /* edge-triggered: data already waiting gives no new event */
    }
    return ec->ended ? -1 : 0;
}

static int append_out(struct tlskit__econn *ec, const unsigned char *p, size_t len)
{
    tlskit_engine *e = ec->w->e;
    const char *peer = tlskit_conn_peer_addr(ec->conn);
    if (pending(ec) + len > e->write_limit) {
        tlskit__count(&ec->w->ctr.buffer_closes, 1);
        end_conn(ec, TLSKIT_E_LIMIT, "write buffer limit (%zu bytes) reached: %s is not reading",
                 e->write_limit, peer);
        return -1;
    }
    if (ec->out_off && ec->out_len + len > ec->out_cap) { /* compact */
        memmove(ec->out, ec->out + ec->out_off, pending(ec));
        ec->out_len -= ec->out_off;
        ec->out_off = 0;
    }
    if (ec->out_len + len > ec->out_cap) {
        size_t cap = ec->out_cap ? ec->out_cap : 4096;
        while (cap < ec->out_len + len)
            cap *= 2;
        unsigned char *nb = realloc(ec->out, cap);
        if (!nb) {
            end_conn(ec, TLSKIT_E_NOMEM, "out of memory buffering output for %s", peer);
            return -1;
        }
        ec->out = nb;
        ec->out_cap = cap;
    }
    if (pending(ec) == 0)
        ec->stall_since = tlskit__now_ms();
    memcpy(ec->out + ec->out_len, p, len);
    ec->out_len += len;
    return 0;
}

int tlskit__engine_write(tlskit_conn *c, const void *data, size_t len)
{
    struct tlskit__econn *ec = econn(c);
    if (ec->ended || ec->closing)
        return -1;
    const unsigned char *p = data;
    if (pending(ec) == 0 && tlskit_conn_handshake_done(c)) {
        /* Fast path: straight to the socket; only what it does not take is copied. */
        size_t taken;
        if (write_some(ec, p, len, &taken) != 0)
            return -1;
        p += taken;
        len -= taken;
        if (len == 0)
            return 0;
    }
    if (append_out(ec, p, len) != 0)
        return -1;
    /* Backpressure: stop reading from a peer whose answers pile up. */
    if (pending(ec) > ec->w->e->write_limit / 4)
        ec->paused = 1;
    return 0;
}

void tlskit__engine_close(tlskit_conn *c)
{
    struct tlskit__econn *ec = econn(c);
    if (!ec->ended) {
        ec->closing = 1;
        if (!ec->in_callback && pending(ec) == 0)
            end_conn(ec, TLSKIT_E_NONE, "closed by server");
    }
}

static void read_loop(struct tlskit__econn *ec)
{
    struct tlskit__worker *w = ec->w;
    tlskit_engine *e = w->e;
    while (!ec->ended && !ec->paused && !ec->closing) {
        ssize_t n = tlskit__conn_read(ec->conn, w->rbuf, sizeof(w->rbuf));
        if (n > 0) {
            tlskit__count(&w->ctr.bytes_in, (uint64_t)n);
            if (e->h.on_data) {
                ec->in_callback++;
                e->h.on_data(ec->conn, w->rbuf, (size_t)n, e->h.arg);
                ec->in_callback--;
            }
            continue;
        }
        if (n == 0) {
            ec->closing = 1; /* close_notify: finish sending, then close */
            ec->close_reason = "closed by peer";
            break;
        }
        if (n == TLSKIT_WANT_READ || n == TLSKIT_WANT_WRITE)
            break;
        fail_conn(ec);
        break;
    }
}

static void progress_body(struct tlskit__econn *ec)
{
    tlskit_conn *c = ec->conn;
    struct tlskit__worker *w = ec->w;
    tlskit_engine *e = w->e;
    if (!tlskit_conn_handshake_done(c)) {
        int r = tlskit__conn_handshake(c);
        if (r == TLSKIT_WANT_READ || r == TLSKIT_WANT_WRITE) {
            ec->hs_waits++;
            return;
        }
        if (r != 0) {
            fail_conn(ec);
            return;
        }
        tlskit__count(&w->ctr.hs_ok, 1);
        ec->opened = 1;
        if (e->h.on_open) {
            ec->in_callback++;
            e->h.on_open(c, e->h.arg);
            ec->in_callback--;
        }
    }
    if (!ec->ended && pending(ec) && flush(ec) != 0)
        return;
    if (!ec->ended)
        read_loop(ec);
    if (!ec->ended && pending(ec))
        flush(ec);
    if (!ec->ended && ec->closing && pending(ec) == 0)
        end_conn(ec, TLSKIT_E_NONE, "%s", ec->close_reason ? ec->close_reason : "closed by server");
}

/* Everything a readiness event (or a sweep) may need to do for one connection.
 * The event that may end the handshake (our flight is out, the peer's Finished may be
 * here) usually writes twice: the session ticket, then the answer to a request that came
 * with the Finished. Its sends are held back (MSG_MORE) and pushed together at the end:
 * one segment instead of two. */
static void progress(struct tlskit__econn *ec)
{
    tlskit_conn *c = ec->conn;
    tlskit__conn_cork(c, !tlskit_conn_handshake_done(c) && ec->hs_waits > 0);
    progress_body(ec);
    tlskit__conn_cork(c, 0);
    tlskit__conn_push(c); /* even when ending: close() would not push it (and a close with
                           * unread input resets the connection, dropping it) */
}

void tlskit__econn_event(struct tlskit__econn *ec)
{
    progress(ec);
    if (ec->ended)
        reap(ec);
}

void tlskit__econn_start(struct tlskit__worker *w, tlskit_conn *c)
{
    tlskit_engine *e = w->e;
    struct tlskit__econn *ec = calloc(1, sizeof(*ec));
    if (!ec) {
        tlskit_conn_free(c);
        tlskit__count(&w->ctr.accept_errors, 1);
        return;
    }
    tlskit__conn_engine_attach(c, ec);
    ec->src = (struct tlskit__evsrc){.kind = KIND_CONN, .fd = tlskit_conn_fd(c)};
    ec->w = w;
    ec->conn = c;
    ec->next = w->conns;
    if (w->conns)
        w->conns->prev = ec;
    w->conns = ec;
    w->nconns++;
    atomic_fetch_add(&e->open, 1);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.ptr = &ec->src};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, ec->src.fd, &ev) != 0) {
        end_conn(ec, TLSKIT_E_IO, "epoll_ctl for %s: %s", tlskit_conn_peer_addr(c),
                 strerror(errno));
        reap(ec);
        return;
    }
    tlskit__econn_event(ec); /* the ClientHello is often already here */
}

/* The stop sequence's last pass: echo what the peer sent before the stop, then close
 * after the flush. */
static void final_pass(struct tlskit__econn *ec)
{
    int hs_done = tlskit_conn_handshake_done(ec->conn);
    if (hs_done) {
        ec->paused = 0;
        read_loop(ec);
        if (!ec->ended && pending(ec))
            flush(ec);
    }
    if (!ec->ended) {
        ec->closing = 1;
        ec->close_reason = "server stopping";
        if (!hs_done || pending(ec) == 0)
            end_conn(ec, TLSKIT_E_NONE, "server stopping");
    }
}

void tlskit__econn_sweep(struct tlskit__econn *ec, int64_t now, int final, int stopping,
                         int64_t drain_at)
{
    tlskit_conn *c = ec->conn;
    const int64_t write_ms = tlskit__conn_config(c)->timeouts[TLSKIT_TIMEOUT_WRITE];
    if (tlskit_conn_handshake_done(c) && pending(ec) && write_ms &&
        now - ec->stall_since >= write_ms) {
        tlskit__count(&ec->w->ctr.write_stalls, 1);
        end_conn(ec, TLSKIT_E_TIMEOUT,
                 "write to %s stalled: the peer took no data for %.3f s (%zu bytes pending)",
                 tlskit_conn_peer_addr(c), (double)write_ms / 1000.0, pending(ec));
    } else if (tlskit__conn_expired(c, now)) {
        /* Idle: the peer sent everything it meant to and took all we sent, so the end
         * is an orderly one (close_notify), not a truncation to the peer. */
        ec->notify_on_end = tlskit_conn_handshake_done(c) && pending(ec) == 0;
        fail_conn(ec);
    } else if (final) {
        final_pass(ec);
    } else if (stopping && now >= drain_at + TK_FINAL_FLUSH_MS) {
        end_conn(ec, TLSKIT_E_NONE, "server stopping (%zu bytes not sent)", pending(ec));
    }
    if (ec->ended)
        reap(ec);
}

void tlskit__econn_end_all(struct tlskit__worker *w, const char *reason)
{
    while (w->conns) {
        struct tlskit__econn *ec = w->conns;
        end_conn(ec, TLSKIT_E_NONE, "%s", reason);
        reap(ec);
    }
}
