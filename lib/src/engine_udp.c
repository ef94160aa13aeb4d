/* SPDX-License-Identifier: MIT */
/* The engine's datagram side: each worker reads its unconnected UDP sockets (one per
 * address, SO_REUSEPORT, so the kernel keeps each peer on one worker) and looks the
 * sender up by address and port. A known peer's datagram goes to its connection; from an
 * unknown peer only an epoch-0 ClientHello is looked at, and only one with a verified
 * cookie makes a connection (dtls.c's stateless listener). No connect() per peer:
 * datagrams arriving between a recvfrom() and a connect() would be lost (OpenSSL issues
 * 6934 and 27640). */
#include "engine.h"

#include <errno.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define TK_UDP_BATCH 64          /* datagrams per readiness event */
#define TK_UDP_BUF 65536         /* the largest UDP payload, and some */
#define TK_UDP_HALF_OPEN_MAX 1024 /* handshakes in progress per worker */
#define TK_UDP_BUCKETS_MIN 64

/* One peer address with a connection. */
struct tlskit__upeer {
    struct tlskit__upeer *next;  /* hash chain */
    struct tlskit__econn *ec;
    uint64_t hash;
    struct sockaddr_storage ss;
    socklen_t sl;
    unsigned char random[32];    /* of the ClientHello that made the connection */
};

struct tlskit__udp {
    tlskit_conn *lc;             /* the stateless listener, reused for every unknown peer */
    struct tlskit__upeer **tab;
    size_t nbuckets, n;
    uint64_t seed;               /* random: a peer cannot aim at one chain */
    size_t half_open;
    unsigned char buf[TK_UDP_BUF];
};

/* ---- the lookup: peer address and port -> connection ---- */

/* The bytes that name a peer: family, port, address. */
static size_t addr_key(const struct sockaddr_storage *ss, unsigned char key[19])
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)ss;
        key[0] = 4;
        memcpy(key + 1, &in->sin_port, 2);
        memcpy(key + 3, &in->sin_addr, 4);
        return 7;
    }
    const struct sockaddr_in6 *in6 = (const void *)ss;
    key[0] = 6;
    memcpy(key + 1, &in6->sin6_port, 2);
    memcpy(key + 3, &in6->sin6_addr, 16);
    return 19;
}

/* FNV-1a over the key, started from the worker's random seed, then mixed. */
static uint64_t addr_hash(const struct tlskit__udp *u, const unsigned char *key, size_t n)
{
    uint64_t h = u->seed ^ 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= key[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 31;
    h *= 0x7fb5d329728ea185ull;
    return h ^ (h >> 27);
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    unsigned char ka[19], kb[19];
    size_t na = addr_key(a, ka), nb = addr_key(b, kb);
    return na == nb && memcmp(ka, kb, na) == 0;
}

static struct tlskit__upeer *find(struct tlskit__udp *u, const struct sockaddr_storage *ss,
                                  uint64_t h)
{
    for (struct tlskit__upeer *p = u->tab[h & (u->nbuckets - 1)]; p; p = p->next)
        if (p->hash == h && same_addr(&p->ss, ss))
            return p;
    return NULL;
}

/* Double the buckets when there are more peers than buckets. */
static void grow(struct tlskit__udp *u)
{
    size_t nb = u->nbuckets * 2;
    struct tlskit__upeer **tab = calloc(nb, sizeof(*tab));
    if (!tab)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < u->nbuckets; i++) {
        struct tlskit__upeer *p = u->tab[i], *next;
        for (; p; p = next) {
            next = p->next;
            p->next = tab[p->hash & (nb - 1)];
            tab[p->hash & (nb - 1)] = p;
        }
    }
    free(u->tab);
    u->tab = tab;
    u->nbuckets = nb;
}

void tlskit__udp_forget(struct tlskit__econn *ec)
{
    struct tlskit__udp *u = ec->w->udp;
    struct tlskit__upeer *p = ec->peer;
    struct tlskit__upeer **pp = &u->tab[p->hash & (u->nbuckets - 1)];
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    u->n--;
    ec->peer = NULL;
    free(p);
}

/* ---- set-up ---- */

int tlskit__udp_init(struct tlskit__worker *w)
{
    struct tlskit__udp *u = calloc(1, sizeof(*u));
    if (!u)
        return -1;
    u->nbuckets = TK_UDP_BUCKETS_MIN;
    u->tab = calloc(u->nbuckets, sizeof(*u->tab));
    if (!u->tab || RAND_bytes((unsigned char *)&u->seed, sizeof(u->seed)) != 1) {
        free(u->tab);
        free(u);
        return -1;
    }
    w->udp = u;
    return 0;
}

void tlskit__udp_cleanup(struct tlskit__worker *w)
{
    struct tlskit__udp *u = w->udp;
    if (!u)
        return;
    /* Connections are gone by now (their end forgot their peers); free what is left. */
    for (size_t i = 0; i < u->nbuckets; i++) {
        struct tlskit__upeer *p = u->tab[i], *next;
        for (; p; p = next) {
            next = p->next;
            free(p);
        }
    }
    tlskit_conn_free(u->lc);
    free(u->tab);
    free(u);
    w->udp = NULL;
}

/* The listener for the worker's current config (a reload makes a new one). */
static tlskit_conn *listener(struct tlskit__worker *w)
{
    struct tlskit__udp *u = w->udp;
    tlskit_config *cfg = tlskit__worker_config(w);
    if (u->lc && tlskit__conn_config(u->lc) != cfg) {
        tlskit_conn_free(u->lc);
        u->lc = NULL;
    }
    if (!u->lc)
        u->lc = tlskit__dtls_listener_new(cfg);
    return u->lc;
}

/* ---- datagrams ---- */

/* A datagram from an address without a connection (or a new ClientHello from one that
 * has: `old`). Runs the cookie check; a verified cookie makes a connection. */
static void new_peer(struct tlskit__worker *w, int fd, const struct sockaddr_storage *ss,
                     socklen_t sl, uint64_t h, size_t len, struct tlskit__upeer *old)
{
    struct tlskit__udp *u = w->udp;
    tlskit_engine *e = w->e;
    const unsigned char *random;
    tlskit_conn *lc;
    if (!tlskit__dtls_client_hello(u->buf, len, &random) || atomic_load(&e->stopping) ||
        !(lc = listener(w))) {
        tlskit__count(&w->ctr.dtls_drops, 1);
        return;
    }
    switch (tlskit__dtls_listen(lc, fd, (const struct sockaddr *)ss, sl, u->buf, len)) {
    case TK_LISTEN_DROP:
        tlskit__count(&w->ctr.dtls_drops, 1);
        return;
    case TK_LISTEN_BAD_COOKIE:
        tlskit__count(&w->ctr.dtls_cookie_bad, 1);
        __attribute__((fallthrough)); /* a fresh HelloVerifyRequest went back */
    case TK_LISTEN_HVR:
        tlskit__count(&w->ctr.dtls_cookies, 1);
        return;
    case TK_LISTEN_OK:
        break;
    }
    if (!old && (u->half_open >= TK_UDP_HALF_OPEN_MAX ||
                 (e->max_conns && atomic_load(&e->open) >= e->max_conns))) {
        /* The listener is cleared by its next DTLSv1_listen(): nothing is kept. */
        tlskit__count(&w->ctr.limit_rejections, 1);
        return;
    }
    struct tlskit__upeer *p = calloc(1, sizeof(*p));
    if (!p) {
        tlskit__count(&w->ctr.accept_errors, 1);
        return;
    }
    if (old) /* RFC 6347 4.2.8: the peer proved its address with a cookie, and restarted */
        tlskit__econn_end_now(old->ec, TLSKIT_E_CLOSED,
                              "the peer started a new handshake from the same address");
    u->lc = NULL; /* the listener is now this peer's connection */
    tlskit__count(&w->ctr.accepted, 1);
    struct tlskit__econn *ec = tlskit__econn_add(w, lc, 0);
    if (!ec) {
        tlskit__count(&w->ctr.accept_errors, 1);
        free(p);
        return;
    }
    memcpy(&p->ss, ss, sizeof(*ss));
    p->sl = sl;
    p->hash = h;
    memcpy(p->random, random, sizeof(p->random));
    p->ec = ec;
    ec->peer = p;
    struct tlskit__upeer **head = &u->tab[h & (u->nbuckets - 1)];
    p->next = *head;
    *head = p;
    if (++u->n > u->nbuckets)
        grow(u);
    u->half_open++;
    tlskit__econn_event(ec); /* the buffered ClientHello: our first flight */
}

/* A datagram from a peer with a connection. */
static void deliver(struct tlskit__worker *w, int fd, const struct sockaddr_storage *ss,
                    socklen_t sl, uint64_t h, size_t len, struct tlskit__upeer *p)
{
    struct tlskit__udp *u = w->udp;
    const unsigned char *random;
    /* A ClientHello with another random is a new handshake: the peer lost its state
     * (restarted, or a NAT gave its port to another host). The same random is the
     * connection's own ClientHello again (a retransmission, or a replay): OpenSSL drops
     * or answers it as a repeat. */
    if (tlskit__dtls_client_hello(u->buf, len, &random) &&
        memcmp(random, p->random, sizeof(p->random)) != 0) {
        new_peer(w, fd, ss, sl, h, len, p);
        return;
    }
    struct tlskit__econn *ec = p->ec;
    tlskit__conn_dgram_feed(ec->conn, u->buf, len);
    if (tlskit__econn_event(ec) == 0)
        tlskit__conn_dgram_feed(ec->conn, NULL, 0); /* not read (closing): dropped */
}

void tlskit__udp_ready(struct tlskit__worker *w, int fd)
{
    struct tlskit__udp *u = w->udp;
    for (int i = 0; i < TK_UDP_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        ssize_t n = recvfrom(fd, u->buf, sizeof(u->buf), MSG_DONTWAIT | MSG_TRUNC,
                             (struct sockaddr *)&ss, &sl);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* EAGAIN: all read */
        }
        if (n == 0 || (size_t)n > sizeof(u->buf) ||
            (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
            tlskit__count(&w->ctr.dtls_drops, 1);
            continue;
        }
        unsigned char key[19];
        uint64_t h = addr_hash(u, key, addr_key(&ss, key));
        struct tlskit__upeer *p = find(u, &ss, h);
        if (p)
            deliver(w, fd, &ss, sl, h, (size_t)n, p);
        else
            new_peer(w, fd, &ss, sl, h, (size_t)n, NULL);
    }
}

void tlskit__udp_sweep(struct tlskit__worker *w)
{
    size_t half = 0;
    for (struct tlskit__econn *ec = w->conns; ec; ec = ec->next)
        if (ec->peer && !tlskit_conn_handshake_done(ec->conn))
            half++;
    w->udp->half_open = half;
}
