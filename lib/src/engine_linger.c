/* SPDX-License-Identifier: MIT */
/* Lingering close (nginx's lingering_close): after a fatal alert, or a refusal, the
 * socket is shut down for writing and what the client still sends is read and dropped
 * for a short, bounded time before the close. Closing at once with unread input makes
 * the kernel send a reset, which can reach the client before it has read our alert, so
 * it reports "connection reset" instead of the alert's reason.
 * A lingering socket is no connection any more: it holds no TLS state, no slot of
 * max_conns and no callback; a worker keeps at most TK_LINGER_MAX of them, each for at
 * most TK_LINGER_MS and TK_LINGER_BYTES. */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct tlskit__linger {
    struct tlskit__evsrc src;  /* first: epoll data points here */
    struct tlskit__linger *prev, *next;
    int64_t until;
    size_t left;               /* bytes still to read before giving up */
};

static void linger_free(struct tlskit__worker *w, struct tlskit__linger *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        w->lingers = l->next;
    if (l->next)
        l->next->prev = l->prev;
    w->nlingers--;
    close(l->src.fd); /* also leaves epoll: the last descriptor of the socket */
    free(l);
}

void tlskit__linger_start(struct tlskit__worker *w, int fd)
{
    struct tlskit__linger *l = NULL;
    if (w->nlingers >= TK_LINGER_MAX || shutdown(fd, SHUT_WR) != 0 ||
        !(l = calloc(1, sizeof(*l)))) {
        close(fd);
        return;
    }
    l->src = (struct tlskit__evsrc){.kind = KIND_LINGER, .fd = fd};
    l->until = tlskit__now_ms() + TK_LINGER_MS;
    l->left = TK_LINGER_BYTES;
    l->next = w->lingers;
    if (w->lingers)
        w->lingers->prev = l;
    w->lingers = l;
    w->nlingers++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = &l->src};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        linger_free(w, l);
        return;
    }
    tlskit__linger_event(w, &l->src); /* what is already there gives no new edge */
}

int tlskit__linger_take_fd(struct tlskit__worker *w, int fd)
{
    /* The connection's descriptor is about to be closed with the connection; a copy
     * keeps the socket open. Out of epoll first: an entry lives as long as any copy. */
    if (w->nlingers >= TK_LINGER_MAX || epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL) != 0)
        return -1;
    return fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

void tlskit__linger_event(struct tlskit__worker *w, struct tlskit__evsrc *src)
{
    struct tlskit__linger *l = (struct tlskit__linger *)(void *)src;
    for (;;) {
        ssize_t n = recv(l->src.fd, w->rbuf, sizeof(w->rbuf), MSG_DONTWAIT);
        if (n > 0 && (size_t)n < l->left) {
            l->left -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        break; /* the client's FIN, an error, or more than we read for anyone */
    }
    linger_free(w, l);
}

void tlskit__linger_sweep(struct tlskit__worker *w, int64_t now, int all)
{
    struct tlskit__linger *next;
    for (struct tlskit__linger *l = w->lingers; l; l = next) {
        next = l->next;
        if (all || now >= l->until)
            linger_free(w, l);
    }
}
