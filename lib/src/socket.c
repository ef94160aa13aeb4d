/* SPDX-License-Identifier: MIT */
/* Sockets: options, address text, connect with one deadline over every address. */
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
#include <sys/socket.h>
#include <unistd.h>

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
               char *peer, size_t peerlen)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g == EAI_NONAME || g == EAI_SERVICE) {
        /* a service name such as "https" */
        hints.ai_flags = 0;
        g = getaddrinfo(host, port, &hints, &res);
    }
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
