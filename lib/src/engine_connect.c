/* SPDX-License-Identifier: MIT */
/* The engine's outbound connections: tlskit_engine_connect() opens a TLS client or a
 * plain TCP / UNIX-socket connection on the worker of a connection it already serves (or,
 * with none beside, on the worker whose thread calls: its hook, a client-side engine),
 * without blocking that worker: a name is handed to the engine's resolver threads
 * (resolve.c) and the connection waits for the answer; then a non-blocking connect() per
 * resolved address in turn, all within the CONNECT deadline, then the same progress
 * (handshake, buffering, backpressure, deadlines, callbacks) as an accepted connection.
 * Numeric addresses and unix:PATH go straight to connect(). Failures arrive as the new
 * connection's on_close, never as a return value, so a caller has one path for them. */
#include "engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define TK_UNIX_PREFIX "unix:"

struct tlskit__dial {
    struct tlskit__lookup *lookup; /* a name being resolved (resolve.c) */
    char name[TK_ADDRLEN + 300];  /* ... "backend.example port 8080", for its messages */
    struct addrinfo *res, *next;  /* TCP: the addresses left to try */
    struct sockaddr_un un;        /* UNIX socket */
    socklen_t unlen;
    int is_unix;
    struct sockaddr_storage num;  /* a numeric address and port: the one to try */
    socklen_t numlen;
    int is_numeric;
    int64_t deadline, timeout_ms;
    char target[TK_ADDRLEN + 300]; /* "127.0.0.1:8080", "localhost port 8080", "unix:/p" */
    char current[TK_ADDRLEN + 300]; /* the address being tried */
    char tried[TK_ERRLEN];         /* "addr: why; addr: why" */
    size_t used;
    int ntried, last_errno;
    int fail_code;                 /* set when the connection cannot even start */
    char fail[TK_ERRLEN];
};

void tlskit__dial_free(struct tlskit__dial *d)
{
    if (!d)
        return;
    tlskit__lookup_cancel(d->lookup);
    if (d->res)
        freeaddrinfo(d->res);
    free(d);
}

static void note_failure(struct tlskit__dial *d, int why)
{
    char ebuf[96];
    d->last_errno = why;
    d->ntried++;
    int n = snprintf(d->tried + d->used, sizeof(d->tried) - d->used, "%s%s: %s",
                     d->used ? "; " : "", d->current, strerror_r(why, ebuf, sizeof(ebuf)));
    if (n > 0 && (size_t)n < sizeof(d->tried) - d->used)
        d->used += (size_t)n;
}

/* Start connecting to the next address: the socket (connecting or connected), or -1
 * when every address failed at once. */
static int dial_next(const tlskit_config *cfg, struct tlskit__dial *d)
{
    for (;;) {
        const struct sockaddr *sa;
        socklen_t salen;
        int family;
        if (d->is_unix || d->is_numeric) {
            if (d->ntried > 0)
                return -1;
            sa = d->is_unix ? (const struct sockaddr *)&d->un : (const struct sockaddr *)&d->num;
            salen = d->is_unix ? d->unlen : d->numlen;
            family = sa->sa_family;
            snprintf(d->current, sizeof(d->current), "%s", d->target);
        } else {
            struct addrinfo *ai = d->next;
            if (!ai)
                return -1;
            d->next = ai->ai_next;
            sa = ai->ai_addr;
            salen = ai->ai_addrlen;
            family = ai->ai_family;
            tlskit__format_addr(sa, d->current, sizeof(d->current));
        }
        int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            note_failure(d, errno);
            continue;
        }
        if (family != AF_UNIX)
            tlskit__socket_apply_options(cfg, fd);
        int r;
        do {
            r = connect(fd, sa, salen);
        } while (r != 0 && errno == EINTR);
        if (r == 0 || errno == EINPROGRESS)
            return fd;
        note_failure(d, errno);
        close(fd);
    }
}

/* What the connection's on_close says when no address could be reached. */
static void dial_failed(struct tlskit__econn *ec)
{
    struct tlskit__dial *d = ec->dial;
    tlskit__count(&ec->w->ctr.connect_failures, 1);
    if (d->fail_code) {
        tlskit__econn_end(ec, d->fail_code, "%s", d->fail);
    } else if (d->ntried == 1) {
        char ebuf[96];
        tlskit__econn_end(ec, TLSKIT_E_CONNECT, "connect to %s: %s", d->current,
                          strerror_r(d->last_errno, ebuf, sizeof(ebuf)));
    } else {
        tlskit__econn_end(ec, TLSKIT_E_CONNECT, "connect to %s: %s", d->target,
                          d->used ? d->tried : "no address");
    }
}

/* An IPv4 or IPv6 address and a port number: the one address to try, with no resolver
 * call (getaddrinfo() costs a few thousand instructions and allocations at every connect
 * of a backend or a load generator's target, for the same answer). 0 when host or port
 * is anything else (a name, a scope id, a service name): getaddrinfo() then decides. */
static int dial_numeric(struct tlskit__dial *d, const char *host, const char *port)
{
    unsigned long n = 0;
    const char *p = port;
    for (; *p >= '0' && *p <= '9' && n <= 65535; p++)
        n = n * 10 + (unsigned long)(*p - '0');
    if (p == port || *p || n > 65535)
        return 0;
    memset(&d->num, 0, sizeof(d->num));
    struct sockaddr_in *in = (struct sockaddr_in *)(void *)&d->num;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&d->num;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)n);
        d->numlen = sizeof(*in);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)n);
        d->numlen = sizeof(*in6);
    } else {
        return 0;
    }
    d->is_numeric = 1;
    return 1;
}

/* Fill d for host and port: a UNIX socket, a numeric address (connect at once), or a
 * name, for which d->name is set and 1 returned (the resolver threads answer later); on
 * failure d->fail says why. */
static int dial_prepare(struct tlskit__dial *d, const char *host, const char *port)
{
    if (strncmp(host, TK_UNIX_PREFIX, strlen(TK_UNIX_PREFIX)) == 0) {
        const char *path = host + strlen(TK_UNIX_PREFIX);
        snprintf(d->target, sizeof(d->target), "%s", host);
        d->is_unix = 1;
        d->un.sun_family = AF_UNIX;
        if (!*path || strlen(path) >= sizeof(d->un.sun_path)) {
            d->fail_code = TLSKIT_E_INVALID;
            snprintf(d->fail, sizeof(d->fail), "connect to %s: the path is empty or longer "
                     "than %zu bytes", host, sizeof(d->un.sun_path) - 1);
            return 0;
        }
        memcpy(d->un.sun_path, path, strlen(path) + 1);
        d->unlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
        return 0;
    }
    snprintf(d->target, sizeof(d->target), strchr(host, ':') ? "[%s]:%s" : "%s:%s", host,
             port);
    if (dial_numeric(d, host, port))
        return 0;
    snprintf(d->name, sizeof(d->name), "%s port %s", host, port);
    return 1;
}

/* The engine's resolver, made by the first worker that needs it; each worker keeps its
 * own pointer, so that its loop reads no shared field. */
static struct tlskit__resolver *worker_resolver(struct tlskit__worker *w)
{
    if (!w->resolver) {
        tlskit_engine *e = w->e;
        pthread_mutex_lock(&e->mu);
        if (!e->resolver)
            e->resolver = tlskit__resolver_new();
        w->resolver = e->resolver;
        pthread_mutex_unlock(&e->mu);
    }
    return w->resolver;
}

/* Hand the name to the resolver; ec waits in its dialing state (no socket yet). */
static void dial_ask(struct tlskit__econn *ec, const char *host, const char *port)
{
    struct tlskit__dial *d = ec->dial;
    struct tlskit__resolver *r = worker_resolver(ec->w);
    errno = ENOMEM;
    if (!r || !(d->lookup = tlskit__lookup_start(r, host, port, &ec->w->inbox, ec))) {
        d->fail_code = TLSKIT_E_RESOLVE;
        snprintf(d->fail, sizeof(d->fail), "resolve %s: cannot start a lookup: %s", d->name,
                 strerror(errno));
        dial_failed(ec);
    }
}

/* Watch a new socket of ec (connecting): 0, or -1 when epoll refused it (ended). */
static int dial_watch(struct tlskit__econn *ec, int fd)
{
    struct tlskit__dial *d = ec->dial;
    tlskit_conn *c = ec->conn;
    tlskit__conn_set_fd(c, fd);
    ec->src.fd = fd;
    tlskit__conn_set_peer(c, d->current);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.ptr = &ec->src};
    if (epoll_ctl(ec->w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        tlskit__count(&ec->w->ctr.connect_failures, 1);
        tlskit__econn_end(ec, TLSKIT_E_IO, "epoll_ctl for %s: %s", d->current, strerror(errno));
        return -1;
    }
    return 0;
}

/* The resolver answered ec's lookup (lk, taken): connect to the addresses in turn, as a
 * numeric address would have been at once. */
static void dial_answered(struct tlskit__econn *ec, struct tlskit__lookup *lk)
{
    struct tlskit__dial *d = ec->dial;
    struct addrinfo *res;
    int eno;
    int g = tlskit__lookup_answer(lk, &res, &eno);
    tlskit__lookup_free(lk);
    d->lookup = NULL;
    if (g != 0) {
        char ebuf[96];
        d->fail_code = TLSKIT_E_RESOLVE;
        snprintf(d->fail, sizeof(d->fail), "resolve %s: %s", d->name,
                 g == EAI_SYSTEM ? strerror_r(eno, ebuf, sizeof(ebuf)) : gai_strerror(g));
        dial_failed(ec);
        return;
    }
    d->res = d->next = res;
    if (res->ai_next) /* several: the message names the host, then each address */
        snprintf(d->target, sizeof(d->target), "%s", d->name);
    int fd = dial_next(tlskit__conn_config(ec->conn), d);
    if (fd < 0) {
        tlskit__conn_set_peer(ec->conn, d->target);
        dial_failed(ec);
        return;
    }
    dial_watch(ec, fd);
}

void tlskit__dial_answers(struct tlskit__worker *w)
{
    struct tlskit__lookup *lk;
    while ((lk = tlskit__inbox_pop(w->resolver, &w->inbox)) != NULL) {
        struct tlskit__econn *ec = tlskit__lookup_owner(lk);
        if (!ec->ended) {
            dial_answered(ec, lk);
        } else { /* ended, not yet reaped: its dial_free has no lookup to cancel now */
            ec->dial->lookup = NULL;
            tlskit__lookup_free(lk);
        }
    }
}

/* A call that makes no connection: the reason goes to beside's error, or with no
 * connection beside, to errno. */
static tlskit_conn *no_connect(tlskit_conn *beside, int code, int eno, const char *msg)
{
    if (beside)
        tlskit__conn_err(beside, code, msg);
    else
        errno = eno;
    return NULL;
}

tlskit_conn *tlskit_engine_connect(tlskit_engine *e, tlskit_conn *beside, tlskit_config *cfg,
                                   const char *host, const char *port, int flags)
{
    static const char bad_args[] = "engine connect: needs the engine, one of its connections "
                                   "(or its worker's thread), a config, a host and a port "
                                   "(or unix:PATH) and known flags";
    struct tlskit__econn *near = beside ? tlskit__conn_engine(beside) : NULL;
    /* No connection beside: the worker whose thread this is (its hook, any callback). */
    struct tlskit__worker *w = beside ? (near ? near->w : NULL) : tlskit__worker_self();
    if (!e || !w || w->e != e || !cfg || !host || !*host ||
        (flags & ~TLSKIT_CONNECT_PLAIN) ||
        (strncmp(host, TK_UNIX_PREFIX, strlen(TK_UNIX_PREFIX)) != 0 &&
         (!port || !*port)))
        return no_connect(beside, TLSKIT_E_INVALID, EINVAL, bad_args);
    /* A client-side engine whose on_close opens the next connection must not keep itself
     * running once stopped. Connections beside others (a proxy's backends) still open:
     * their clients are being served to the end. */
    if (!beside && atomic_load(&e->stopping))
        return no_connect(NULL, TLSKIT_E_CLOSED, ECANCELED, "engine connect: stopping");
    /* As tlskit_conn_connect(): getaddrinfo() would cut 99999 to 16 bits. */
    if (strncmp(host, TK_UNIX_PREFIX, strlen(TK_UNIX_PREFIX)) != 0) {
        struct tlskit__err perr = {0};
        if (tlskit__check_port(&perr, "engine connect", port) != 0) {
            tlskit_conn *none = no_connect(beside, TLSKIT_E_INVALID, EINVAL,
                                           tlskit__err_text(&perr));
            tlskit__err_free(&perr);
            return none;
        }
    }
    struct tlskit__dial *d = calloc(1, sizeof(*d));
    if (!d)
        return no_connect(beside, TLSKIT_E_NOMEM, ENOMEM, "engine connect: out of memory");
    d->timeout_ms = cfg->timeouts[TLSKIT_TIMEOUT_CONNECT];
    d->deadline = tlskit__deadline_in(d->timeout_ms);
    int ask = dial_prepare(d, host, port); /* a name: no socket until it is resolved */
    int fd = d->fail_code || ask ? -1 : dial_next(cfg, d);

    struct tlskit__err err = {0};
    tlskit_conn *c;
    if (flags & TLSKIT_CONNECT_PLAIN) {
        c = tlskit__conn_plain_new(cfg, fd, NULL, &err);
    } else if ((c = tlskit_conn_new(cfg)) != NULL) {
        const char *name = d->is_unix ? NULL : host;
        if (tlskit__conn_client_setup(c, fd, name) != 0 && !d->fail_code) {
            d->fail_code = tlskit_conn_error_code(c);
            snprintf(d->fail, sizeof(d->fail), "connect to %s: %s", d->target,
                     tlskit_conn_error(c));
            if (fd >= 0)
                close(fd);
            fd = -1;
        }
    } else if (fd >= 0) {
        close(fd);
    }
    tlskit__err_free(&err);
    if (!c) {
        tlskit__dial_free(d);
        return no_connect(beside, TLSKIT_E_NOMEM, ENOMEM, "engine connect: out of memory");
    }
    tlskit__conn_set_peer(c, fd >= 0 ? d->current : d->target);
    struct tlskit__econn *ec = tlskit__econn_add(w, c, 1);
    if (!ec) {
        tlskit__dial_free(d);
        return no_connect(beside, TLSKIT_E_NOMEM, ENOMEM, "engine connect: out of memory");
    }
    ec->dial = d;
    if (ec->ended)
        return c;
    if (ask && !d->fail_code)
        dial_ask(ec, host, port); /* the worker's inbox gets the answer */
    else if (fd < 0)
        dial_failed(ec); /* on_close after this round of events, as for any failure */
    return c;
}

int tlskit__dial_event(struct tlskit__econn *ec)
{
    struct tlskit__dial *d = ec->dial;
    tlskit_conn *c = ec->conn;
    int fd = tlskit_conn_fd(c), soerr = 0;
    /* epoll says when the connect ended: writable (connected), or an error or hang-up
     * (SO_ERROR says which). Anything else (a kick from another connection's callback)
     * comes while it is still connecting. */
    if (d->lookup || !(ec->ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        return 0;
    if (ec->ev & (EPOLLERR | EPOLLHUP)) {
        socklen_t sl = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            soerr = errno;
    }
    if (soerr == 0) {
        tlskit__conn_set_peer(c, d->current);
        tlskit__conn_connected(c);
        tlskit__count(&ec->w->ctr.connects, 1);
        tlskit__dial_free(d);
        ec->dial = NULL;
        return 1;
    }
    note_failure(d, soerr);
    close(fd); /* also leaves the epoll set */
    int next = dial_next(tlskit__conn_config(c), d);
    if (next < 0) {
        tlskit__conn_set_fd(c, next);
        ec->src.fd = next;
        dial_failed(ec);
        return -1;
    }
    return dial_watch(ec, next);
}

int tlskit__dial_expired(struct tlskit__econn *ec, int64_t now)
{
    struct tlskit__dial *d = ec->dial;
    if (!d->deadline || now < d->deadline)
        return 0;
    tlskit__count(&ec->w->ctr.connect_failures, 1);
    if (d->lookup) /* the resolver has not answered: the lookup is dropped with d */
        tlskit__econn_end(ec, TLSKIT_E_TIMEOUT, "resolve %s: timed out after %.3f s",
                          d->name, (double)d->timeout_ms / 1000.0);
    else
        tlskit__econn_end(ec, TLSKIT_E_TIMEOUT, "connect to %s: timed out after %.3f s",
                          d->target, (double)d->timeout_ms / 1000.0);
    return 1;
}
