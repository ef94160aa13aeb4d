/* SPDX-License-Identifier: MIT */
/* Plain connections: a tlskit_conn without TLS, for what the engine relays to or from
 * (a TCP or UNIX-socket backend behind tlsserver --forward, the local side of
 * tlsclient --listen). The bytes go to the socket as they are; conn.c judges each step
 * as it judges an SSL_* call, so deadlines, the WANT contract and the error texts are
 * the same for both kinds. A FIN is the clean end of a plain stream (there is no
 * close_notify to tell it from a truncation). */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static int io_failed(tlskit_conn *c, int *ssl_error)
{
    c->io_errno = errno;
    if (errno == ECONNRESET)
        c->io_reset = errno;
    *ssl_error = SSL_ERROR_SYSCALL;
    return 0;
}

static int plain_read(tlskit_conn *c, void *buf, size_t len, size_t *n, int *ssl_error)
{
    if (c->rd_empty) { /* engine: empty, and no readiness since (conn.h) */
        *ssl_error = SSL_ERROR_WANT_READ;
        return 0;
    }
    for (;;) {
        ssize_t r = recv(c->fd, buf, len, MSG_DONTWAIT);
        if (r > 0) {
            c->last_activity = tlskit__now_ms();
            *n = (size_t)r;
            return 1;
        }
        if (r == 0) {
            *ssl_error = SSL_ERROR_ZERO_RETURN;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->rd_empty = c->eng != NULL;
            *ssl_error = SSL_ERROR_WANT_READ;
            return 0;
        }
        return io_failed(c, ssl_error);
    }
}

/* As write_records(): a non-blocking write that stops early reports what was taken. */
static int plain_write(tlskit_conn *c, const unsigned char *buf, size_t len, size_t *written,
                       size_t *n, int *ssl_error)
{
    while (*written < len) {
        ssize_t r = send(c->fd, buf + *written, len - *written, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r >= 0) {
            c->last_activity = tlskit__now_ms();
            *written += (size_t)r;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (*written > 0 && c->nonblocking)
                break;
            *ssl_error = SSL_ERROR_WANT_WRITE;
            return 0;
        }
        return io_failed(c, ssl_error);
    }
    *n = *written;
    return 1;
}

int tlskit__plain_step(tlskit_conn *c, enum tlskit__op op, void *buf, size_t len,
                       size_t *written, size_t *n, int *ssl_error)
{
    switch (op) {
    case OP_READ: return plain_read(c, buf, len, n, ssl_error);
    case OP_WRITE: return plain_write(c, buf, len, written, n, ssl_error);
    case OP_SHUTDOWN:
        if (shutdown(c->fd, SHUT_WR) != 0 && errno != ENOTCONN)
            return io_failed(c, ssl_error);
        return 1;
    default: return 1; /* OP_HANDSHAKE: nothing to agree on */
    }
}

/* ---- connections the engine makes (internal.h) ---- */

tlskit_conn *tlskit__conn_plain_new(tlskit_config *cfg, int fd, const struct sockaddr *sa,
                                    struct tlskit__err *err)
{
    if (sa) /* accepted; an outbound socket got them before its connect() */
        tlskit__socket_apply_options(cfg, fd);
    tlskit_conn *c = tlskit_conn_new(cfg);
    if (!c) {
        close(fd);
        tlskit__err_set(err, TLSKIT_E_NOMEM, "out of memory");
        return NULL;
    }
    if (sa)
        tlskit__format_addr(sa, c->peer, sizeof(c->peer));
    c->plain = 1;
    tlskit__conn_setup(c, fd, 1, sa != NULL); /* cannot fail for a plain one */
    return c;
}

int tlskit__conn_client_setup(tlskit_conn *c, int fd, const char *servername)
{
    if (tlskit_conn_set_servername(c, servername) != 0)
        return -1;
    if (tlskit__conn_setup(c, fd, 1, 0) != 0) {
        SSL_free(c->ssl);
        c->ssl = NULL;
        c->fd = -1;
        c->own_fd = 0;
        return -1;
    }
    return 0;
}

void tlskit__conn_set_fd(tlskit_conn *c, int fd)
{
    c->fd = fd;
}

void tlskit__conn_set_peer(tlskit_conn *c, const char *peer)
{
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
}

void tlskit__conn_connected(tlskit_conn *c)
{
    c->last_activity = c->created_ms = tlskit__now_ms();
}

int tlskit__conn_is_plain(const tlskit_conn *c)
{
    return c->plain;
}

void tlskit__conn_err(tlskit_conn *c, int code, const char *msg)
{
    tlskit__err_set(&c->err, code, "%s", msg);
}
