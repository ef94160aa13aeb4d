/* SPDX-License-Identifier: MIT */
/* The server role: the listener object (its sockets come from socket.c: one per resolved
 * address, all on the same port), accepted connections and their TLS settings. */
#include "conn.h"

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

struct tlskit_listener {
    tlskit_config *cfg;
    struct tlskit__listen_set set;
    atomic_int closed;
    struct tlskit__err err;
};

tlskit_listener *tlskit_listener_new(tlskit_config *cfg)
{
    if (!cfg)
        return NULL;
    tlskit_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->cfg = tlskit__config_ref(cfg);
    l->set.port = -1;
    atomic_init(&l->closed, 0);
    return l;
}

void tlskit_listener_free(tlskit_listener *l)
{
    if (!l)
        return;
    tlskit__listen_close(&l->set);
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
    return l->set.nfds && !atomic_load(&l->closed) ? l->set.port : -1;
}

const char *tlskit_listener_addrs(const tlskit_listener *l)
{
    return l->set.addrs;
}

const int *tlskit_listener_fds(const tlskit_listener *l, size_t *count)
{
    if (count)
        *count = l->set.nfds;
    return l->set.fds;
}

int tlskit_listener_listen(tlskit_listener *l, const char *host, const char *port,
                           int backlog)
{
    return tlskit__listener_listen(l, host, port, backlog, 0);
}

int tlskit__listener_listen(tlskit_listener *l, const char *host, const char *port, int backlog,
                            int reuseport)
{
    tlskit__err_clear(&l->err);
    if (l->set.nfds) {
        tlskit__err_set(&l->err, TLSKIT_E_INVALID, "listener is already listening");
        return -1;
    }
    if (!l->cfg->has_keypair) {
        tlskit__err_set(&l->err, TLSKIT_E_CONFIG,
                        "listen: the configuration has no certificate and key");
        return -1;
    }
    if (tlskit__listen(&l->err, l->cfg, host, port, backlog, reuseport, &l->set) != 0)
        return -1;
    atomic_store(&l->closed, 0);
    return 0;
}

/* A name for listening socket fd in messages. */
static void listen_name(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ls;
    socklen_t ll = sizeof(ls);
    if (getsockname(fd, (struct sockaddr *)&ls, &ll) == 0)
        tlskit__format_addr((struct sockaddr *)&ls, buf, len);
    else
        snprintf(buf, len, "fd %d", fd);
}

/* Accept from the ready listening sockets: 1 with *out, 0 when none had a client, -1. */
static int accept_ready(tlskit_listener *l, const struct pollfd *p, tlskit_conn **out)
{
    for (size_t i = 0; i < l->set.nfds; i++) {
        if (!(p[i].revents & (POLLIN | POLLERR | POLLHUP)))
            continue;
        struct sockaddr_storage ss;
        int why;
        int fd = tlskit__accept(l->set.fds[i], &ss, &why);
        if (fd < 0 && why == 0)
            continue; /* someone else took it, or the client already left */
        if (fd < 0) {
            char addr[TK_ADDRLEN];
            listen_name(l->set.fds[i], addr, sizeof(addr));
            tlskit__err_set_errno(&l->err, atomic_load(&l->closed) ? TLSKIT_E_CLOSED : TLSKIT_E_IO,
                                  why, "accept on %s", addr);
            return -1;
        }
        *out = tlskit__conn_accepted(l->cfg, fd, (struct sockaddr *)&ss, &l->err);
        return *out ? 1 : -1;
    }
    return 0;
}

int tlskit_listener_accept(tlskit_listener *l, tlskit_conn **out, int timeout_ms)
{
    tlskit__err_clear(&l->err);
    *out = NULL;
    if (!l->set.nfds || atomic_load(&l->closed)) {
        tlskit__err_set(&l->err, TLSKIT_E_CLOSED, "accept: the listener is not listening");
        return -1;
    }
    int64_t deadline = timeout_ms > 0 ? tlskit__now_ms() + timeout_ms : 0;
    struct pollfd p[TK_MAX_LISTEN];
    for (;;) {
        int wait = -1;
        if (timeout_ms >= 0) {
            int64_t left = deadline - tlskit__now_ms();
            wait = timeout_ms == 0 || left <= 0 ? 0 : (int)(left > INT32_MAX ? INT32_MAX : left);
        }
        for (size_t i = 0; i < l->set.nfds; i++)
            p[i] = (struct pollfd){.fd = l->set.fds[i], .events = POLLIN};
        int r = poll(p, l->set.nfds, wait);
        if (atomic_load(&l->closed)) {
            tlskit__err_set(&l->err, TLSKIT_E_CLOSED, "accept: the listener was closed");
            return -1;
        }
        if (r < 0 && errno != EINTR) {
            tlskit__err_set_errno(&l->err, TLSKIT_E_IO, errno, "accept: poll");
            return -1;
        }
        if (r > 0) {
            int a = accept_ready(l, p, out);
            if (a != 0)
                return a > 0 ? 0 : -1;
        }
        if (timeout_ms == 0)
            return TLSKIT_WANT_READ; /* the WANT contract: nothing pending now */
        if (r == 0 && timeout_ms > 0 && tlskit__now_ms() >= deadline) {
            tlskit__err_set(&l->err, TLSKIT_E_TIMEOUT, "accept on %s: timed out after %.3f s",
                            l->set.addrs, (double)timeout_ms / 1000.0);
            return -1;
        }
    }
}

/* Server-role settings of a new SSL: client certificates as the config asks. */
void tlskit__server_setup(tlskit_conn *c)
{
    int mode = SSL_VERIFY_NONE;
    /* An allow-list of client identities admits no client without a certificate. */
    if (c->cfg->nallowed)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE;
    else if (c->cfg->verify_client == TLSKIT_VERIFY_CLIENT_OPTIONAL)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
    else if (c->cfg->verify_client == TLSKIT_VERIFY_CLIENT_REQUIRED)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE;
    SSL_set_verify(c->ssl, mode, mode == SSL_VERIFY_NONE ? NULL : tlskit__verify_cb);
    SSL_set_accept_state(c->ssl);
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

int tlskit_listener_reload(tlskit_listener *l, tlskit_config *cfg)
{
    tlskit__err_clear(&l->err);
    if (!cfg || !cfg->has_keypair) {
        tlskit__err_set(&l->err, TLSKIT_E_CONFIG,
                   "the new configuration has no certificate and key; keeping the old one");
        return -1;
    }
    tlskit_config *old = l->cfg;
    tlskit__tickets_carry(cfg->tickets, old->tickets);
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
    for (size_t i = 0; i < l->set.nfds; i++)
        shutdown(l->set.fds[i], SHUT_RDWR);
}
