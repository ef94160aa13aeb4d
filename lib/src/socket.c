/* SPDX-License-Identifier: MIT */
/* Sockets, the one room for them: options, address text, resolve, listen (with the
 * port-0 retry), accept (one errno policy), connect with one deadline over every address. */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* The getaddrinfo() hints of both directions: TCP over IPv4 or IPv6. */
static struct addrinfo tcp_hints(int flags)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = flags;
    return hints;
}

int tlskit__lookup_tcp(const char *host, const char *port, struct addrinfo **res)
{
    struct addrinfo hints = tcp_hints(AI_NUMERICSERV);
    *res = NULL;
    int g = getaddrinfo(host, port, &hints, res);
    /* A port that is not a number is a service name ("https"): looked up again with the
     * services database. A numeric one is not: the same name would not be found twice. */
    if ((g == EAI_NONAME || g == EAI_SERVICE) && port[strspn(port, "0123456789")]) {
        hints.ai_flags = 0;
        g = getaddrinfo(host, port, &hints, res);
    }
    if (g != 0)
        *res = NULL;
    return g;
}

void tlskit__socket_apply_options(const tlskit_config *cfg, int fd)
{
    /* Best effort: a refused option must not fail a connection (e.g. TCP_NODELAY on a
     * unix socketpair in tests). */
    int one = 1;
    if (cfg->nodelay)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (cfg->rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cfg->rcvbuf, sizeof(cfg->rcvbuf));
    if (cfg->sndbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cfg->sndbuf, sizeof(cfg->sndbuf));
    if (cfg->keepalive) {
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        if (cfg->ka_idle > 0)
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &cfg->ka_idle, sizeof(cfg->ka_idle));
        if (cfg->ka_interval > 0)
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &cfg->ka_interval,
                       sizeof(cfg->ka_interval));
        if (cfg->ka_count > 0)
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cfg->ka_count, sizeof(cfg->ka_count));
    }
}

void tlskit__format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        snprintf(buf, len, "unix socket");
    } else {
        snprintf(buf, len, "address family %d", sa->sa_family);
    }
}

/* One non-blocking connect attempt until deadline. Returns fd, or -1 with *why = errno
 * (ETIMEDOUT when the deadline passed). */
static int connect_one(const tlskit_config *cfg, const struct addrinfo *ai, int64_t deadline,
                       int *why)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0) {
        *why = errno;
        return -1;
    }
    tlskit__socket_apply_options(cfg, fd);
    int r;
    do {
        r = connect(fd, ai->ai_addr, ai->ai_addrlen);
    } while (r != 0 && errno == EINTR);
    if (r != 0 && errno != EINPROGRESS) {
        *why = errno;
        close(fd);
        return -1;
    }
    if (r != 0) {
        int w = tlskit__wait_fd(fd, POLLOUT, deadline);
        if (w <= 0) {
            *why = w == 0 ? ETIMEDOUT : errno;
            close(fd);
            return -1;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            soerr = errno;
        if (soerr != 0) {
            *why = soerr;
            close(fd);
            return -1;
        }
    }
    return fd;
}

int tlskit__connect(tlskit_config *cfg, struct tlskit__err *err, const char *host, const char *port,
               char *peer, size_t peerlen, int64_t *resolved_us)
{
    struct addrinfo *res;
    int g = tlskit__lookup_tcp(host, port, &res);
    *resolved_us = tlskit__now_us();
    if (g != 0) {
        if (g == EAI_SYSTEM)
            tlskit__err_set_errno(err, TLSKIT_E_RESOLVE, errno, "resolve %s port %s", host, port);
        else
            tlskit__err_set(err, TLSKIT_E_RESOLVE, "resolve %s port %s: %s", host, port,
                       gai_strerror(g));
        return -1;
    }

    int64_t deadline = tlskit__deadline_in(cfg->timeouts[TLSKIT_TIMEOUT_CONNECT]);
    char tried[TK_ERRLEN] = "";
    size_t used = 0;
    int fd = -1, timed_out = 0;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (deadline && tlskit__now_ms() >= deadline) {
            timed_out = 1;
            break;
        }
        int why = 0;
        char addr[TK_ADDRLEN];
        tlskit__format_addr(ai->ai_addr, addr, sizeof(addr));
        fd = connect_one(cfg, ai, deadline, &why);
        if (fd >= 0) {
            snprintf(peer, peerlen, "%s", addr);
            break;
        }
        if (why == ETIMEDOUT && deadline && tlskit__now_ms() >= deadline)
            timed_out = 1;
        char ebuf[96];
        int n = snprintf(tried + used, sizeof(tried) - used, "%s%s: %s", used ? "; " : "",
                         addr, why == ETIMEDOUT && timed_out
                                   ? "timed out"
                                   : strerror_r(why, ebuf, sizeof(ebuf)));
        if (n > 0 && (size_t)n < sizeof(tried) - used)
            used += (size_t)n;
        if (timed_out)
            break;
    }
    freeaddrinfo(res);
    if (fd >= 0)
        return fd;
    if (timed_out)
        tlskit__err_set(err, TLSKIT_E_TIMEOUT, "connect to %s port %s: timed out after %.3f s (%s)",
                   host, port, (double)cfg->timeouts[TLSKIT_TIMEOUT_CONNECT] / 1000.0,
                   used ? tried : "no address tried");
    else
        tlskit__err_set(err, TLSKIT_E_CONNECT, "connect to %s port %s: %s", host, port,
                   used ? tried : "no address");
    return -1;
}

void tlskit__send_refusal(int fd)
{
    static const unsigned char alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50};
    ssize_t n = send(fd, alert, sizeof(alert), MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)n;
}

int tlskit__check_port(struct tlskit__err *err, const char *op, const char *port)
{
    if (!port || !*port) {
        tlskit__err_set(err, TLSKIT_E_INVALID, "%s: a port is required", op);
        return -1;
    }
    size_t digits = strspn(port, "0123456789");
    if (digits == strlen(port)) {
        /* getaddrinfo() would silently truncate 99999 to 16 bits */
        if (digits > 5 || atol(port) > 65535) {
            tlskit__err_set(err, TLSKIT_E_INVALID, "%s: port %s is out of range (0 to 65535)",
                            op, port);
            return -1;
        }
        return 0;
    }
    for (const char *p = port; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_')) {
            tlskit__err_set(err, TLSKIT_E_INVALID, "%s: invalid port \"%s\"", op, port);
            return -1;
        }
    return 0; /* a service name, resolved by getaddrinfo() */
}

/* ---- listen ---- */

static int sa_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
}

static void set_port(struct sockaddr *sa, int port)
{
    if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)(void *)sa)->sin_port = htons((uint16_t)port);
    else if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)(void *)sa)->sin6_port = htons((uint16_t)port);
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return -1;
    return sa_port((struct sockaddr *)&ss);
}

struct tlskit__addr {
    struct sockaddr_storage ss;
    socklen_t len;
    int optional; /* failing to bind it is not an error (::1 for "localhost") */
};

/* Append the passive TCP addresses of host:port (host NULL: all) to addrs. */
static int resolve_passive(struct tlskit__err *err, const char *host, const char *port,
                           struct tlskit__addr *addrs, size_t *n, int optional)
{
    struct addrinfo hints = tcp_hints(AI_PASSIVE), *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0) {
        if (optional)
            return 0;
        tlskit__err_set(err, g == EAI_SERVICE ? TLSKIT_E_INVALID : TLSKIT_E_RESOLVE,
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
        tlskit__err_set(err, TLSKIT_E_LISTEN, "listen on %s port %s: no IPv4 or IPv6 address",
                        host ? host : "*", port);
        return -1;
    }
    return 0;
}

/* Bind + listen on one address. Returns fd or -1 with err set; *eaddrinuse for retry. */
static int listen_one(struct tlskit__err *err, const tlskit_config *cfg,
                      const struct tlskit__addr *a, int backlog, int reuseport, int *eaddrinuse)
{
    const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
    char addr[TK_ADDRLEN];
    int one = 1;
    tlskit__format_addr(sa, addr, sizeof(addr));
    /* A DTLS config listens on UDP: the same addresses, port and SO_REUSEPORT group. */
    int fd = socket(sa->sa_family, (cfg->dtls ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK |
                                       SOCK_CLOEXEC, 0);
    if (fd < 0) {
        tlskit__err_set_errno(err, TLSKIT_E_LISTEN, errno, "listen on %s: socket", addr);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    /* Buffer sizes must be set before listen() to apply to accepted sockets' windows. */
    if (cfg->rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cfg->rcvbuf, sizeof(cfg->rcvbuf));
    if (bind(fd, sa, a->len) != 0 || (!cfg->dtls && listen(fd, backlog) != 0)) {
        int e = errno;
        *eaddrinuse = e == EADDRINUSE;
        tlskit__err_set_errno(err, TLSKIT_E_LISTEN, e, "listen on %s", addr);
        close(fd);
        return -1;
    }
    return fd;
}

/* SO_REUSEPORT would let us silently share a port another server already listens on:
 * the first socket of a group checks each address with a plain bind first. */
static int check_port_free(struct tlskit__err *err, const tlskit_config *cfg,
                           const struct tlskit__addr *addrs, size_t naddrs, int backlog)
{
    for (size_t i = 0; i < naddrs; i++) {
        int inuse = 0;
        int fd = listen_one(err, cfg, &addrs[i], backlog, 0, &inuse);
        if (fd < 0) {
            if (addrs[i].optional && !inuse) {
                tlskit__err_clear(err);
                continue;
            }
            return -1;
        }
        close(fd);
    }
    return 0;
}

/* One try at listening on every address with the same port (0: the first address picks
 * it). 0 on success, 1 when no address was usable (all optional), -1 on failure with
 * *retry set when a port picked by the kernel was taken on another address. */
static int listen_all(struct tlskit__err *err, const tlskit_config *cfg,
                      struct tlskit__addr *addrs, size_t naddrs, int wanted, int backlog,
                      int reuseport, struct tlskit__listen_set *out, int *retry)
{
    int port_now = wanted, inuse = 0;
    for (size_t i = 0; i < naddrs; i++) {
        set_port((struct sockaddr *)&addrs[i].ss, port_now);
        int fd = listen_one(err, cfg, &addrs[i], backlog, reuseport, &inuse);
        if (fd < 0) {
            if (addrs[i].optional && !inuse) {
                tlskit__err_clear(err); /* e.g. ::1 on a host without IPv6 */
                continue;
            }
            *retry = wanted == 0 && inuse;
            return -1;
        }
        out->fds[out->nfds++] = fd;
        if (port_now == 0)
            port_now = bound_port(fd);
    }
    out->port = port_now;
    return out->nfds ? 0 : 1;
}

void tlskit__listen_close(struct tlskit__listen_set *set)
{
    for (size_t i = 0; i < set->nfds; i++)
        close(set->fds[i]);
    set->nfds = 0;
    set->port = -1;
    set->addrs[0] = '\0';
}

static void format_bound(struct tlskit__listen_set *set)
{
    size_t used = 0;
    set->addrs[0] = '\0';
    for (size_t i = 0; i < set->nfds; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char addr[TK_ADDRLEN];
        if (getsockname(set->fds[i], (struct sockaddr *)&ss, &sl) != 0)
            continue;
        tlskit__format_addr((struct sockaddr *)&ss, addr, sizeof(addr));
        int n = snprintf(set->addrs + used, sizeof(set->addrs) - used, "%s%s",
                         used ? ", " : "", addr);
        if (n > 0)
            used += (size_t)n;
    }
}

int tlskit__listen(struct tlskit__err *err, const tlskit_config *cfg, const char *host,
                   const char *port, int backlog, int reuseport, struct tlskit__listen_set *out)
{
    if (tlskit__check_port(err, "listen", port) != 0)
        return -1;
    if (host && (!*host || !strcmp(host, "*")))
        host = NULL;
    if (backlog <= 0)
        backlog = TK_DEFAULT_BACKLOG;

    struct tlskit__addr addrs[TK_MAX_LISTEN];
    size_t naddrs = 0;
    if (host && !strcasecmp(host, "localhost")) {
        /* Both loopbacks, whatever /etc/hosts says: clients may resolve either. */
        if (resolve_passive(err, "127.0.0.1", port, addrs, &naddrs, 0) != 0 ||
            resolve_passive(err, "::1", port, addrs, &naddrs, 1) != 0)
            return -1;
    } else if (resolve_passive(err, host, port, addrs, &naddrs, 0) != 0) {
        return -1;
    }

    int wanted = sa_port((struct sockaddr *)&addrs[0].ss);
    if (reuseport == TLSKIT__REUSEPORT_FIRST && wanted != 0 &&
        check_port_free(err, cfg, addrs, naddrs, backlog) != 0)
        return -1;
    /* With port 0 the first address picks the port and the others reuse it; if that port
     * is taken on another address, start over with a new one. */
    for (int tries = 1;; tries++) {
        int retry = 0;
        out->nfds = 0;
        int r = listen_all(err, cfg, addrs, naddrs, wanted, backlog, reuseport, out, &retry);
        if (r == 0) {
            format_bound(out);
            return 0;
        }
        tlskit__listen_close(out);
        if (r == 1) {
            tlskit__err_set(err, TLSKIT_E_LISTEN, "listen on %s port %s: no usable address",
                            host ? host : "*", port);
            return -1;
        }
        if (!retry || tries >= TK_LISTEN_PORT_TRIES)
            return -1;
        tlskit__err_clear(err);
    }
}

/* Sockets made elsewhere (systemd socket activation): each must be a listening TCP
 * socket; it becomes non-blocking (accept must never block when another worker took the
 * client) and close-on-exec. */
int tlskit__listen_check(struct tlskit__err *err, const int *fds, size_t n)
{
    if (n == 0 || n > TK_MAX_LISTEN) {
        tlskit__err_set(err, TLSKIT_E_INVALID, "listen on given sockets: %zu sockets (1 to %d)",
                        n, TK_MAX_LISTEN);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int type = 0, acc = 0, fd = fds[i];
        socklen_t tl = sizeof(type), al = sizeof(acc);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) != 0 ||
            getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
            tlskit__err_set_errno(err, TLSKIT_E_LISTEN, fd < 0 ? EBADF : errno,
                                  "listen on given socket fd %d", fd);
            return -1;
        }
        const char *why = type != SOCK_STREAM ? "not a stream socket"
                          : !acc              ? "not listening"
                          : ss.ss_family != AF_INET && ss.ss_family != AF_INET6
                              ? "not a TCP socket over IPv4 or IPv6"
                              : NULL;
        if (why) {
            tlskit__err_set(err, TLSKIT_E_LISTEN, "listen on given socket fd %d: %s", fd, why);
            return -1;
        }
    }
    return 0;
}

int tlskit__listen_adopt(struct tlskit__err *err, const int *fds, size_t n,
                         struct tlskit__listen_set *out)
{
    if (tlskit__listen_check(err, fds, n) != 0)
        return -1;
    out->nfds = 0;
    for (size_t i = 0; i < n; i++) {
        int fl = fcntl(fds[i], F_GETFL);
        if (fl >= 0)
            fcntl(fds[i], F_SETFL, fl | O_NONBLOCK);
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
        out->fds[out->nfds++] = fds[i];
    }
    out->port = bound_port(fds[0]);
    format_bound(out);
    return 0;
}

/* ---- accept ---- */

int tlskit__accept(int lfd, struct sockaddr_storage *ss, int *why)
{
    for (;;) {
        socklen_t sl = sizeof(*ss);
        int fd = accept4(lfd, (struct sockaddr *)ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            *why = 0;
            return fd;
        }
        /* A client that left before we took it, or a signal: try the next one. */
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue;
        *why = errno == EAGAIN || errno == EWOULDBLOCK ? 0 : errno;
        return -1;
    }
}

int tlskit__accept_out_of_fds(int why)
{
    return why == EMFILE || why == ENFILE || why == ENOBUFS || why == ENOMEM;
}
