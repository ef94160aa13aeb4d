/* SPDX-License-Identifier: MIT */
/* The listen/accept path: one listening socket per resolved address, all on the same
 * port (so "localhost" with port 0 gives 127.0.0.1:P and [::1]:P). */
#include "internal.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

tlskit_listener *tlskit_listener_new(tlskit_config *cfg)
{
    if (!cfg)
        return NULL;
    tlskit_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->cfg = tlskit__config_ref(cfg);
    l->port = -1;
    atomic_init(&l->closed, 0);
    return l;
}

static void close_fds(tlskit_listener *l)
{
    for (size_t i = 0; i < l->nfds; i++)
        close(l->fds[i]);
    l->nfds = 0;
    l->port = -1;
    l->addrs[0] = '\0';
}

void tlskit_listener_free(tlskit_listener *l)
{
    if (!l)
        return;
    close_fds(l);
    tlskit_config_free(l->cfg);
    tlskit__err_free(&l->err);
    free(l);
}

const char *tlskit_listener_error(const tlskit_listener *l)
{
    return l ? tlskit__err_text(&l->err) : "no listener";
}

int tlskit_listener_error_code(const tlskit_listener *l)
{
    return l ? l->err.code : TLSKIT_E_INVALID;
}

int tlskit_listener_port(const tlskit_listener *l)
{
    return l->nfds && !atomic_load(&l->closed) ? l->port : -1;
}

const char *tlskit_listener_addrs(const tlskit_listener *l)
{
    return l->addrs;
}

const int *tlskit_listener_fds(const tlskit_listener *l, size_t *count)
{
    if (count)
        *count = l->nfds;
    return l->fds;
}

static void set_port(struct sockaddr *sa, int port)
{
    if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)(void *)sa)->sin_port = htons((uint16_t)port);
    else if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)(void *)sa)->sin6_port = htons((uint16_t)port);
}

static int get_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

struct tlskit__addr {
    struct sockaddr_storage ss;
    socklen_t len;
    int optional; /* failing to bind it is not an error (::1 for "localhost") */
};

static int addr_port(const struct tlskit__addr *a)
{
    const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
}

/* Append the passive TCP addresses of host:port (host NULL: all) to addrs. */
static int resolve_passive(tlskit_listener *l, const char *host, const char *port,
                           struct tlskit__addr *addrs, size_t *n, int optional)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0) {
        if (optional)
            return 0;
        tlskit__err_set(&l->err, g == EAI_SERVICE ? TLSKIT_E_INVALID : TLSKIT_E_RESOLVE,
                   "listen on %s port %s: %s", host ? host : "*", port,
                   g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
        return -1;
    }
    for (const struct addrinfo *ai = res; ai && *n < TK_MAX_LISTEN; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(addrs[0].ss))
            continue;
        memcpy(&addrs[*n].ss, ai->ai_addr, ai->ai_addrlen);
        addrs[*n].len = ai->ai_addrlen;
        addrs[*n].optional = optional;
        (*n)++;
    }
    freeaddrinfo(res);
    if (*n == 0) {
        tlskit__err_set(&l->err, TLSKIT_E_LISTEN, "listen on %s port %s: no IPv4 or IPv6 address",
                   host ? host : "*", port);
        return -1;
    }
    return 0;
}

/* Bind + listen on one address. Returns fd or -1 with err set; *eaddrinuse for retry. */
static int listen_one(tlskit_listener *l, const struct tlskit__addr *a, int backlog,
                      int *eaddrinuse)
{
    const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
    char addr[TK_ADDRLEN];
    int one = 1;
    tlskit__format_addr(sa, addr, sizeof(addr));
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        tlskit__err_set_errno(&l->err, TLSKIT_E_LISTEN, errno, "listen on %s: socket", addr);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (l->reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    /* Buffer sizes must be set before listen() to apply to accepted sockets' windows. */
    if (l->cfg->rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &l->cfg->rcvbuf, sizeof(l->cfg->rcvbuf));
    if (bind(fd, sa, a->len) != 0 || listen(fd, backlog) != 0) {
        int e = errno;
        *eaddrinuse = e == EADDRINUSE;
        tlskit__err_set_errno(&l->err, TLSKIT_E_LISTEN, e, "listen on %s", addr);
        close(fd);
        return -1;
    }
    return fd;
}

int tlskit_listener_listen(tlskit_listener *l, const char *host, const char *port,
                           int backlog)
{
    return tlskit__listener_listen(l, host, port, backlog, 0);
}

int tlskit__listener_listen(tlskit_listener *l, const char *host, const char *port, int backlog,
                       int reuseport)
{
    l->reuseport = reuseport;
    tlskit__err_clear(&l->err);
    if (l->nfds) {
        tlskit__err_set(&l->err, TLSKIT_E_INVALID, "listener is already listening");
        return -1;
    }
    if (!l->cfg->has_keypair) {
        tlskit__err_set(&l->err, TLSKIT_E_CONFIG,
                   "listen: the configuration has no certificate and key");
        return -1;
    }
    if (tlskit__check_port(&l->err, "listen", port) != 0)
        return -1;
    if (host && (!*host || !strcmp(host, "*")))
        host = NULL;
    if (backlog <= 0)
        backlog = 511;

    struct tlskit__addr addrs[TK_MAX_LISTEN];
    size_t naddrs = 0;
    if (host && !strcasecmp(host, "localhost")) {
        /* Both loopbacks, whatever /etc/hosts says: clients may resolve either. */
        if (resolve_passive(l, "127.0.0.1", port, addrs, &naddrs, 0) != 0 ||
            resolve_passive(l, "::1", port, addrs, &naddrs, 1) != 0)
            return -1;
    } else if (resolve_passive(l, host, port, addrs, &naddrs, 0) != 0) {
        return -1;
    }

    /* With port 0 the first address picks the port and the others reuse it; if that port
     * is taken on another address, start over with a new one. */
    int tries = 0, wanted = addr_port(&addrs[0]);
    /* SO_REUSEPORT would let us silently share a port another server already listens
     * on: the first socket of a group checks with a plain bind first. */
    if (reuseport == TLSKIT__REUSEPORT_FIRST && wanted != 0) {
        for (size_t i = 0; i < naddrs; i++) {
            int inuse = 0;
            l->reuseport = 0;
            int fd = listen_one(l, &addrs[i], backlog, &inuse);
            l->reuseport = reuseport;
            if (fd < 0) {
                if (addrs[i].optional && !inuse) {
                    tlskit__err_clear(&l->err);
                    continue;
                }
                return -1;
            }
            close(fd);
        }
    }
    int rc = -1;
    for (;;) {
        int port_now = wanted, inuse = 0, failed = 0;
        for (size_t i = 0; i < naddrs; i++) {
            set_port((struct sockaddr *)&addrs[i].ss, port_now);
            int fd = listen_one(l, &addrs[i], backlog, &inuse);
            if (fd < 0) {
                if (addrs[i].optional && !inuse) {
                    tlskit__err_clear(&l->err); /* e.g. ::1 on a host without IPv6 */
                    continue;
                }
                failed = 1;
                break;
            }
            l->fds[l->nfds++] = fd;
            if (port_now == 0)
                port_now = get_port(fd);
        }
        if (!failed && l->nfds) {
            l->port = port_now;
            rc = 0;
            break;
        }
        close_fds(l);
        if (!failed) {
            tlskit__err_set(&l->err, TLSKIT_E_LISTEN, "listen on %s port %s: no usable address",
                       host ? host : "*", port);
            break;
        }
        if (!(wanted == 0 && inuse && ++tries < 8))
            break;
        tlskit__err_clear(&l->err);
    }
    if (rc == 0) {
        size_t used = 0;
        for (size_t i = 0; i < l->nfds; i++) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);
            char addr[TK_ADDRLEN];
            if (getsockname(l->fds[i], (struct sockaddr *)&ss, &sl) != 0)
                continue;
            tlskit__format_addr((struct sockaddr *)&ss, addr, sizeof(addr));
            int n = snprintf(l->addrs + used, sizeof(l->addrs) - used, "%s%s",
                             used ? ", " : "", addr);
            if (n > 0)
                used += (size_t)n;
        }
        atomic_store(&l->closed, 0);
    }
    return rc;
}

int tlskit_listener_accept(tlskit_listener *l, tlskit_conn **out, int timeout_ms)
{
    tlskit__err_clear(&l->err);
    *out = NULL;
    if (!l->nfds || atomic_load(&l->closed)) {
        tlskit__err_set(&l->err, TLSKIT_E_CLOSED, "accept: the listener is not listening");
        return -1;
    }
    int64_t deadline = timeout_ms >= 0 ? tlskit__now_ms() + timeout_ms : 0;
    struct pollfd p[TK_MAX_LISTEN];
    for (;;) {
        int wait = -1;
        if (timeout_ms >= 0) {
            int64_t left = deadline - tlskit__now_ms();
            wait = left > 0 ? (int)(left > INT32_MAX ? INT32_MAX : left) : 0;
        }
        for (size_t i = 0; i < l->nfds; i++)
            p[i] = (struct pollfd){.fd = l->fds[i], .events = POLLIN};
        int r = poll(p, l->nfds, wait);
        if (atomic_load(&l->closed)) {
            tlskit__err_set(&l->err, TLSKIT_E_CLOSED, "accept: the listener was closed");
            return -1;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            tlskit__err_set_errno(&l->err, TLSKIT_E_IO, errno, "accept: poll");
            return -1;
        }
        if (r == 0) {
            if (timeout_ms >= 0 && tlskit__now_ms() >= deadline) {
                tlskit__err_set(&l->err, TLSKIT_E_TIMEOUT, "accept on %s: timed out after %.3f s",
                           l->addrs, (double)timeout_ms / 1000.0);
                return -1;
            }
            continue;
        }
        for (size_t i = 0; i < l->nfds; i++) {
            if (!(p[i].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);
            int fd = accept4(l->fds[i], (struct sockaddr *)&ss, &sl,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                int e = errno;
                if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED ||
                    e == EPROTO)
                    continue; /* someone else took it, or the client already left */
                char addr[TK_ADDRLEN];
                struct sockaddr_storage ls;
                socklen_t ll = sizeof(ls);
                if (getsockname(l->fds[i], (struct sockaddr *)&ls, &ll) == 0)
                    tlskit__format_addr((struct sockaddr *)&ls, addr, sizeof(addr));
                else
                    snprintf(addr, sizeof(addr), "fd %d", l->fds[i]);
                tlskit__err_set_errno(&l->err, atomic_load(&l->closed) ? TLSKIT_E_CLOSED
                                                                   : TLSKIT_E_IO,
                                 e, "accept on %s", addr);
                return -1;
            }
            tlskit_conn *c = tlskit__conn_accepted(l->cfg, fd, (struct sockaddr *)&ss, &l->err);
            if (!c)
                return -1;
            *out = c;
            return 0;
        }
    }
}

tlskit_conn *tlskit__conn_accepted(tlskit_config *cfg, int fd, const struct sockaddr *sa,
                              struct tlskit__err *err)
{
    tlskit__socket_apply_options(cfg, fd);
    tlskit_conn *c = tlskit_conn_new(cfg);
    if (!c) {
        close(fd);
        tlskit__err_set(err, TLSKIT_E_NOMEM, "accept: out of memory");
        return NULL;
    }
    tlskit__format_addr(sa, c->peer, sizeof(c->peer));
    if (tlskit__conn_setup(c, fd, 1, 1) != 0) {
        tlskit__err_set(err, c->err.code, "accept: %s", tlskit__err_text(&c->err));
        tlskit_conn_free(c);
        return NULL;
    }
    return c;
}

int tlskit_listener_set_config(tlskit_listener *l, tlskit_config *cfg)
{
    tlskit__err_clear(&l->err);
    if (!cfg || !cfg->has_keypair) {
        tlskit__err_set(&l->err, TLSKIT_E_CONFIG,
                   "the new configuration has no certificate and key; keeping the old one");
        return -1;
    }
    tlskit_config *old = l->cfg;
    l->cfg = tlskit__config_ref(cfg);
    tlskit_config_free(old);
    return 0;
}

void tlskit_listener_close(tlskit_listener *l)
{
    if (!l)
        return;
    atomic_store(&l->closed, 1);
    /* shutdown() wakes a thread blocked in poll/accept on Linux and refuses new clients;
     * the descriptors themselves are closed by tlskit_listener_free(). */
    for (size_t i = 0; i < l->nfds; i++)
        shutdown(l->fds[i], SHUT_RDWR);
}
