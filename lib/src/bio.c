/* SPDX-License-Identifier: MIT */
/* The socket BIO. OpenSSL's own socket BIO writes with write(2)/send(2) without
 * MSG_NOSIGNAL, which raises SIGPIPE on a reset peer; ours uses MSG_NOSIGNAL, and
 * MSG_DONTWAIT so that blocking behaviour (with deadlines) is decided in conn.c and the
 * caller's fd flags are never changed. It also records errno and EOF for error texts. */
#include "conn.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static BIO_METHOD *tlskit__method;
static pthread_once_t tlskit__method_once = PTHREAD_ONCE_INIT;

static int bio_write(BIO *b, const char *buf, int len)
{
    tlskit_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    const int more = c->msg_more || c->cork ? MSG_MORE : 0;
    for (;;) {
        ssize_t n = send(c->fd, buf, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL | more);
        if (n >= 0) {
            c->last_activity = tlskit__now_ms();
            c->corked = more != 0;
            return (int)n;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            BIO_set_retry_write(b);
            return -1;
        }
        c->io_errno = errno;
        if (errno == ECONNRESET) /* remembered: a later EOF is this reset, not a
                                  * truncation (EPIPE alone may follow a clean close) */
            c->io_reset = errno;
        return -1;
    }
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
            BIO_set_retry_read(b);
            return -1;
        }
        c->io_errno = errno;
        if (errno == ECONNRESET) /* remembered: a later EOF is this reset, not a
                                  * truncation (EPIPE alone may follow a clean close) */
            c->io_reset = errno;
        return -1;
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
