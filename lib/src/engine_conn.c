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
#include <sys/socket.h>

static size_t pending(const struct tlskit__econn *ec)
{
    return ec->out_len - ec->out_off;
}

/* The reason of a close this side asked for: it is the server of an accepted connection
 * and the client of one it opened. */
static const char *closed_here(const struct tlskit__econn *ec)
{
    return ec->outbound ? "closed by client" : "closed by server";
}

static struct tlskit__econn *econn(const tlskit_conn *c)
{
    return tlskit__conn_engine(c);
}

size_t tlskit__engine_pending(const tlskit_conn *c)
{
    return pending(econn(c));
}

struct tlskit__stage *tlskit__engine_stage(const tlskit_conn *c)
{
    return &econn(c)->w->stage;
}

/* Record why the connection ends; the worker frees it at the end of the current event
 * (never inside an application callback). */
void tlskit__econn_end(struct tlskit__econn *ec, int code, const char *fmt, ...)
{
    if (ec->ended)
        return;
    tlskit__econn_kick(ec); /* ended from elsewhere: reaped after this round */
    ec->ended = 1;
    ec->end_code = code;
    va_list ap;
    va_start(ap, fmt);
    if ((ec->end_reason = malloc(TK_ERRLEN)) != NULL)
        vsnprintf(ec->end_reason, TK_ERRLEN, fmt, ap);
    va_end(ap);
}

void tlskit__econn_kick(struct tlskit__econn *ec)
{
    if (ec->kicked || ec->w->current == ec)
        return;
    ec->kicked = 1;
    ec->kick_next = ec->w->kicks;
    ec->w->kicks = ec;
}

static void unkick(struct tlskit__econn *ec)
{
    if (!ec->kicked)
        return;
    for (struct tlskit__econn **p = &ec->w->kicks; *p; p = &(*p)->kick_next)
        if (*p == ec) {
            *p = ec->kick_next;
            break;
        }
    ec->kicked = 0;
}

void tlskit__worker_run_kicks(struct tlskit__worker *w)
{
    while (w->kicks) {
        struct tlskit__econn *ec = w->kicks;
        w->kicks = ec->kick_next;
        ec->kicked = 0;
        tlskit__econn_event(ec);
    }
}

/* DTLS: the connection's retransmissions and lost sends into the worker's counters. */
static void take_dtls_counts(struct tlskit__econn *ec)
{
    uint64_t retx, drops;
    tlskit__conn_dtls_counts(ec->conn, &retx, &drops);
    if (retx)
        tlskit__count(&ec->w->ctr.dtls_retx, retx);
    if (drops)
        tlskit__count(&ec->w->ctr.dtls_drops, drops);
}

static void reap(struct tlskit__econn *ec)
{
    tlskit_conn *c = ec->conn;
    struct tlskit__worker *w = ec->w;
    tlskit_engine *e = w->e;
    unkick(ec);
    if (ec->end_code == TLSKIT_E_NONE || ec->notify_on_end)
        tlskit__conn_finish(c);
    if (ec->peer)
        tlskit__udp_forget(ec);
    take_dtls_counts(ec);
    /* close() (in the free below) removes the fd from epoll: no EPOLL_CTL_DEL. */
    if (ec->prev)
        ec->prev->next = ec->next;
    else
        w->conns = ec->next;
    if (ec->next)
        ec->next->prev = ec->prev;
    w->nconns--;
    w->ended++;
    if (e->h.on_close)
        e->h.on_close(c, ec->end_code,
                      ec->end_reason ? ec->end_reason : "(out of memory: reason lost)",
                      e->h.arg);
    if (!ec->outbound)
        atomic_fetch_sub(&e->open, 1);
    tlskit__dial_free(ec->dial);
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
    if (ec->outbound) {
        if (!tlskit_conn_handshake_done(c))
            tlskit__count(&ec->w->ctr.connect_failures, 1);
    } else if (tlskit_conn_health_check(c)) {
        tlskit__count(&ec->w->ctr.health_checks, 1);
    } else if (!tlskit_conn_handshake_done(c)) {
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
    tlskit__econn_end(ec, code ? code : TLSKIT_E_IO, "%s", msg[0] ? msg : "connection failed");
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
            if (!ec->outbound)
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
        /* An emptied buffer is freed whatever its size: most connections queue a few
         * bytes once (written before the connection was open, or when the socket was
         * full for a moment) and then sit idle, and 4 KiB held by each of thousands of
         * idle connections is most of what the engine itself costs them. */
        ec->out_off = ec->out_len = 0;
        free(ec->out);
        ec->out = NULL;
        ec->out_cap = 0;
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
        tlskit__econn_end(ec, TLSKIT_E_LIMIT,
                          "write buffer limit (%zu bytes) reached: %s is not reading",
                          e->write_limit, peer);
        return -1;
    }
    if (ec->out_off && ec->out_len + len > ec->out_cap) { /* compact */
        memmove(ec->out, ec->out + ec->out_off, pending(ec));
        ec->out_len -= ec->out_off;
        ec->out_off = 0;
    }
    if (ec->out_len + len > ec->out_cap) {
        /* Small first: a connection usually queues a few bytes at a time. */
        size_t cap = ec->out_cap ? ec->out_cap : len < 1024 ? 1024 : len;
        while (cap < ec->out_len + len)
            cap *= 2;
        unsigned char *nb = realloc(ec->out, cap);
        if (!nb) {
            tlskit__econn_end(ec, TLSKIT_E_NOMEM, "out of memory buffering output for %s", peer);
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
    if (ec->ended || ec->closing || ec->shut_wanted)
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
            tlskit__econn_end(ec, TLSKIT_E_NONE, "%s", closed_here(ec));
        tlskit__econn_kick(ec);
    }
}

void tlskit__engine_shutdown(tlskit_conn *c)
{
    struct tlskit__econn *ec = econn(c);
    if (!ec->ended && !ec->shut_wanted) {
        ec->shut_wanted = 1;
        tlskit__econn_kick(ec);
    }
}

void tlskit__engine_abort(tlskit_conn *c, const char *why)
{
    struct tlskit__econn *ec = econn(c);
    if (ec->ended)
        return;
    tlskit__econn_end(ec, TLSKIT_E_CLOSED, "%s", why ? why : "aborted");
    /* A reset, not a FIN: the peer must not take the end for a complete stream. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (tlskit_conn_fd(c) >= 0)
        (void)setsockopt(tlskit_conn_fd(c), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void tlskit__engine_hold(tlskit_conn *c, int on)
{
    struct tlskit__econn *ec = econn(c);
    if (ec->held == (on != 0))
        return;
    ec->held = on != 0;
    if (!on)
        tlskit__econn_kick(ec); /* edge-triggered: what waits gives no new event */
}

/* tlskit_conn_shutdown() asked for, once the queued output is out: close_notify (or the
 * FIN). With the peer's end already seen, the connection is done. */
static void shut_step(struct tlskit__econn *ec)
{
    if (!ec->shut_wanted || ec->shut_done || pending(ec) || ec->ended ||
        !tlskit_conn_handshake_done(ec->conn))
        return;
    int r = tlskit__conn_shutdown(ec->conn);
    if (r == TLSKIT_WANT_READ || r == TLSKIT_WANT_WRITE)
        return;
    if (r != 0) {
        fail_conn(ec);
        return;
    }
    tlskit__conn_push(ec->conn);
    ec->shut_done = 1;
    if (ec->eof)
        tlskit__econn_end(ec, TLSKIT_E_NONE, "closed (both directions)");
}

/* Read what the peer sent and hand it to on_data. What is already here is gathered
 * first, record after record, up to the worker's buffer (256 KiB): one call and, for a
 * paired connection, one send() on the other side instead of one per record (a TLS
 * record holds at most 16 KiB): 15-20% less server CPU per byte forwarded at 64 KiB,
 * another ~10% at 256 KiB (fewer sends, fewer wake-ups of the peers). A smaller
 * write limit gathers less (a quarter of it, at least a record), so that an echo of one
 * call never overflows it. A DTLS connection reads its one datagram. */
static void read_loop(struct tlskit__econn *ec)
{
    struct tlskit__worker *w = ec->w;
    tlskit_engine *e = w->e;
    size_t cap = e->write_limit / 4 < TK_RECORD ? TK_RECORD : e->write_limit / 4;
    if (cap > sizeof(w->rbuf))
        cap = sizeof(w->rbuf);
    const int gather = !tlskit__conn_is_dtls(ec->conn);
    while (!ec->ended && !ec->paused && !ec->closing && !ec->held && !ec->eof) {
        size_t got = 0;
        ssize_t n;
        do {
            n = tlskit__conn_read(ec->conn, w->rbuf + got, cap - got);
            if (n > 0)
                got += (size_t)n;
        } while (n > 0 && gather && got < cap);
        if (got > 0) {
            if (!ec->outbound)
                tlskit__count(&w->ctr.bytes_in, (uint64_t)got);
            if (e->h.on_data) {
                ec->in_callback++;
                e->h.on_data(ec->conn, w->rbuf, got, e->h.arg);
                ec->in_callback--;
            }
            /* Read on, unless the socket is empty: an end or an error that stopped the
             * gathering is met again by the next read, if on_data left the connection
             * reading at all (as without gathering). */
            if (n != TLSKIT_WANT_READ && n != TLSKIT_WANT_WRITE)
                continue;
            break;
        }
        if (n == 0 && e->h.on_eof) { /* half-close: the other direction goes on */
            ec->eof = 1;
            ec->in_callback++;
            e->h.on_eof(ec->conn, e->h.arg);
            ec->in_callback--;
            if (ec->shut_done)
                tlskit__econn_end(ec, TLSKIT_E_NONE, "closed (both directions)");
            break;
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
        if (!ec->outbound && !tlskit__conn_is_plain(c))
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
    shut_step(ec);
    if (!ec->ended && ec->closing && pending(ec) == 0)
        tlskit__econn_end(ec, TLSKIT_E_NONE, "%s",
                          ec->close_reason ? ec->close_reason : closed_here(ec));
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

int tlskit__econn_event(struct tlskit__econn *ec)
{
    struct tlskit__worker *w = ec->w;
    struct tlskit__econn *outer = w->current;
    w->current = ec;
    if (!ec->ended && (!ec->dial || tlskit__dial_event(ec) > 0))
        progress(ec);
    w->current = outer;
    if (!ec->ended)
        return 0;
    reap(ec);
    return 1;
}

/* End a connection at once (the UDP path: a peer that restarted from its address). */
void tlskit__econn_end_now(struct tlskit__econn *ec, int code, const char *reason)
{
    tlskit__econn_end(ec, code, "%s", reason);
    if (ec->w->current != ec && !ec->in_callback)
        reap(ec);
}

struct tlskit__econn *tlskit__econn_add(struct tlskit__worker *w, tlskit_conn *c, int outbound)
{
    struct tlskit__econn *ec = calloc(1, sizeof(*ec));
    if (!ec) {
        tlskit_conn_free(c);
        return NULL;
    }
    tlskit__conn_engine_attach(c, ec);
    ec->src = (struct tlskit__evsrc){.kind = KIND_CONN, .fd = tlskit_conn_fd(c)};
    ec->w = w;
    ec->conn = c;
    ec->outbound = outbound;
    ec->next = w->conns;
    if (w->conns)
        w->conns->prev = ec;
    w->conns = ec;
    w->nconns++;
    if (!outbound)
        atomic_fetch_add(&w->e->open, 1);
    /* A DTLS connection shares its worker's UDP socket: the worker reads for it. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.ptr = &ec->src};
    if (ec->src.fd >= 0 && !tlskit__conn_is_dtls(c) &&
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, ec->src.fd, &ev) != 0)
        tlskit__econn_end(ec, TLSKIT_E_IO, "epoll_ctl for %s: %s", tlskit_conn_peer_addr(c),
                          strerror(errno));
    return ec;
}

void tlskit__econn_start(struct tlskit__worker *w, tlskit_conn *c)
{
    struct tlskit__econn *ec = tlskit__econn_add(w, c, 0);
    if (!ec) {
        tlskit__count(&w->ctr.accept_errors, 1);
        return;
    }
    if (ec->ended) {
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
            tlskit__econn_end(ec, TLSKIT_E_NONE, "server stopping");
    }
}

void tlskit__econn_sweep(struct tlskit__econn *ec, int64_t now, int final, int stopping,
                         int64_t drain_at)
{
    tlskit_conn *c = ec->conn;
    const int64_t write_ms = tlskit__conn_config(c)->timeouts[TLSKIT_TIMEOUT_WRITE];
    if (ec->dial) {
        /* Still connecting when the drain time is up: nothing was exchanged yet, so it
         * ends with the final pass rather than a second later. */
        if (!tlskit__dial_expired(ec, now) &&
            (final || (stopping && now >= drain_at + TK_FINAL_FLUSH_MS)))
            tlskit__econn_end(ec, TLSKIT_E_NONE, "%s stopping (still connecting)",
                              ec->outbound && !ec->w->l ? "client" : "server");
    } else if (tlskit_conn_handshake_done(c) && pending(ec) && write_ms &&
        now - ec->stall_since >= write_ms) {
        tlskit__count(&ec->w->ctr.write_stalls, 1);
        tlskit__econn_end(ec, TLSKIT_E_TIMEOUT,
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
        tlskit__econn_end(ec, TLSKIT_E_NONE, "server stopping (%zu bytes not sent)", pending(ec));
    }
    if (!ec->ended)
        take_dtls_counts(ec);
    if (ec->ended)
        reap(ec);
}

void tlskit__econn_end_all(struct tlskit__worker *w, const char *reason)
{
    while (w->conns) {
        struct tlskit__econn *ec = w->conns;
        tlskit__econn_end(ec, TLSKIT_E_NONE, "%s", reason);
        reap(ec);
    }
}
