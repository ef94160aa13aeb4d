/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD shim for peers that cannot be told which address to listen on (gnutls-serv
 * has only --port and binds the wildcard addresses). The interop and scanner tests may
 * touch only the loopback interface, so a bind() to 0.0.0.0 becomes 127.0.0.1 and one to
 * :: becomes ::1. Everything else passes through unchanged.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    static bind_fn real_bind;
    if (real_bind == NULL)
        real_bind = (bind_fn)(void (*)(void))dlsym(RTLD_NEXT, "bind");

    if (addr != NULL && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in sin;
        memcpy(&sin, addr, sizeof(sin));
        if (sin.sin_addr.s_addr == htonl(INADDR_ANY)) {
            sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return real_bind(fd, (const struct sockaddr *)&sin, sizeof(sin));
        }
    } else if (addr != NULL && addr->sa_family == AF_INET6 &&
               len >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, addr, sizeof(sin6));
        if (memcmp(&sin6.sin6_addr, &in6addr_any, sizeof(in6addr_any)) == 0) {
            sin6.sin6_addr = in6addr_loopback;
            return real_bind(fd, (const struct sockaddr *)&sin6, sizeof(sin6));
        }
    }
    return real_bind(fd, addr, len);
}
