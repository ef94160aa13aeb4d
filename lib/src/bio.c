/* SPDX-License-Identifier: MIT */
/* The socket BIO. OpenSSL's own socket BIO writes with write(2)/send(2) without
 * MSG_NOSIGNAL, which raises SIGPIPE on a reset peer; ours uses MSG_NOSIGNAL, and
 * MSG_DONTWAIT so that blocking behaviour (with deadlines) is decided in conn.c and the
 * caller's fd flags are never changed. It also records errno and EOF for error texts. */
#include "conn.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static BIO_METHOD *tlskit__method;
static pthread_once_t tlskit__method_once = PTHREAD_ONCE_INIT;

/* A socket call failed with errno (not EAGAIN): remember why. Returns -1. */
static int io_failed(tlskit_conn *c)
{
    c->io_errno = errno;
    if (errno == ECONNRESET) /* remembered: a later EOF is this reset, not a
                              * truncation (EPIPE alone may follow a clean close) */
        c->io_reset = errno;
    return -1;
}

/* A failed send: EAGAIN is a retry. Returns -1. */
static int send_failed(BIO *b, tlskit_conn *c)
{
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        BIO_set_retry_write(b);
        return -1;
    }
    return io_failed(c);
}

/* The socket took bytes, sent with more (MSG_MORE or 0). */
static void sent(tlskit_conn *c, int more)
{
    c->last_activity = tlskit__now_ms();
    c->corked = more != 0;
    c->sent_any = 1;
}

/* Engine connections gather the records of one write call (every record but the call's
 * last comes with msg_more) in the worker's stage and send them with the last one: one
 * sendmsg() per 256 KiB instead of one send() per 16 KiB record, each of which costs a
 * system call and, on loopback, a wake-up of the peer. To OpenSSL a gathered record is
 * written. What the socket does not take of them stays in c->wleft and goes out first
 * at the next write, before the record OpenSSL then offers again (it is told to retry
 * the record it was writing, so it always comes back). */
/* c->wleft becomes what the socket did not take of the old bytes (left of them in
 * c->wleft) and of the stage (staged), took bytes having gone: in place when only old
 * bytes remain (a retry while the socket is still full costs no copy). 0, or -1 when out
 * of memory. */
static int keep_unsent(tlskit_conn *c, const struct tlskit__stage *st, size_t left,
                       size_t staged, size_t took)
{
    size_t keep = left + staged - took;
    unsigned char *nb;
    if (took < left) {
        memmove(c->wleft, c->wleft + took, left - took);
        c->wleft_len = left - took;
        if (!staged)
            return 0;
        if (!(nb = realloc(c->wleft, keep)))
            return -1;
        memcpy(nb + (left - took), st->buf, staged);
    } else {
        if (!(nb = realloc(c->wleft, keep)))
            return -1;
        memcpy(nb, st->buf + (took - left), keep);
    }
    c->wleft = nb;
    c->wleft_len = keep;
    return 0;
}

static int send_gathered(BIO *b, tlskit_conn *c, struct tlskit__stage *st, const char *buf,
                         int len, int more)
{
    struct iovec iov[3];
    int n_iov = 0;
    size_t left = c->wleft_len, staged = st && st->owner == c ? st->len : 0;
    if (left)
        iov[n_iov++] = (struct iovec){.iov_base = c->wleft, .iov_len = left};
    if (staged)
        iov[n_iov++] = (struct iovec){.iov_base = st->buf, .iov_len = staged};
    iov[n_iov++] = (struct iovec){.iov_base = (void *)(uintptr_t)buf, .iov_len = (size_t)len};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n_iov};
    ssize_t n;
    do {
        n = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL | more);
    } while (n < 0 && errno == EINTR);
    int err = n < 0 ? errno : 0;
    size_t took = n > 0 ? (size_t)n : 0;
    if (n >= 0)
        sent(c, more);
    if (took < left + staged) { /* keep what is left of the old and the gathered bytes */
        int kept = keep_unsent(c, st, left, staged, took);
        if (staged)
            st->len = 0;
        if (kept != 0) {
            c->io_errno = ENOMEM;
            return -1; /* a broken stream: the connection fails */
        }
        if (err && err != EAGAIN && err != EWOULDBLOCK) {
            errno = err;
            return send_failed(b, c);
        }
        BIO_set_retry_write(b);
        return -1;
    }
    free(c->wleft);
    c->wleft = NULL;
    c->wleft_len = 0;
    if (staged)
        st->len = 0;
    if (n < 0) { /* (nothing was waiting: not reached from bio_write) */
        errno = err;
        return send_failed(b, c);
    }
    size_t of_buf = took - left - staged;
    if (of_buf == 0) { /* only the old bytes went: the record next time */
        BIO_set_retry_write(b);
        return -1;
    }
    return (int)of_buf;
}

static int bio_write(BIO *b, const char *buf, int len)
{
    tlskit_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    const int more = c->msg_more || c->cork ? MSG_MORE : 0;
    struct tlskit__stage *st = c->eng ? tlskit__engine_stage(c) : NULL;
    if (st && c->msg_more && !c->wleft && (st->len == 0 || st->owner == c) &&
        st->len + (size_t)len <= sizeof(st->buf)) {
        memcpy(st->buf + st->len, buf, (size_t)len); /* gathered: sent with the last */
        st->len += (size_t)len;
        st->owner = c;
        return len;
    }
    if (c->wleft || (st && st->len && st->owner == c))
        return send_gathered(b, c, st, buf, len, more);
    ssize_t n;
    do {
        n = send(c->fd, buf, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL | more);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return send_failed(b, c);
    sent(c, more);
    return (int)n;
}

void tlskit__bio_flush(tlskit_conn *c)
{
    struct tlskit__stage *st = c->eng ? tlskit__engine_stage(c) : NULL;
    if (!st || !st->len || st->owner != c)
        return;
    size_t keep = st->len;
    unsigned char *nb = realloc(c->wleft, c->wleft_len + keep);
    if (nb) {
        memcpy(nb + c->wleft_len, st->buf, keep);
        c->wleft = nb;
        c->wleft_len += keep;
    } else {
        c->io_errno = ENOMEM; /* lost: the stream is broken (the call failed anyway) */
    }
    st->len = 0;
}

void tlskit__bio_uncork(tlskit_conn *c)
{
    if (!c->corked)
        return;
    /* Switching TCP_CORK off pushes pending segments (with Nagle still applying when
     * TCP_NODELAY is off). Harmless, and failing, on a socket that is not TCP. */
    int zero = 0;
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero));
    c->corked = 0;
}

static int bio_read(BIO *b, char *buf, int len)
{
    tlskit_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (c->rd_empty) { /* engine: empty, and no readiness since (conn.h) */
        BIO_set_retry_read(b);
        return -1;
    }
    for (;;) {
        ssize_t n = recv(c->fd, buf, (size_t)len, MSG_DONTWAIT);
        if (n > 0) {
            c->last_activity = tlskit__now_ms();
            return (int)n;
        }
        if (n == 0) {
            c->io_eof = 1;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->rd_empty = c->eng != NULL;
            BIO_set_retry_read(b);
            return -1;
        }
        return io_failed(c);
    }
}

static int bio_puts(BIO *b, const char *str)
{
    return bio_write(b, str, (int)strlen(str));
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    tlskit_conn *c = BIO_get_data(b);
    (void)num;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return c ? c->io_eof : 1;
    case BIO_C_GET_FD:
        if (!c)
            return -1;
        if (ptr)
            *(int *)ptr = c->fd;
        return c->fd;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK |
                                     BIO_TYPE_DESCRIPTOR, "tlskit socket");
    if (!m)
        return;
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_puts(m, bio_puts);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    tlskit__method = m;
}

BIO *tlskit__bio_new(tlskit_conn *conn)
{
    pthread_once(&tlskit__method_once, method_init);
    if (!tlskit__method)
        return NULL;
    BIO *b = BIO_new(tlskit__method);
    if (b)
        BIO_set_data(b, conn);
    return b;
}
