/* SPDX-License-Identifier: MIT */
/* PROXY protocol on accepted connections: who may send a header (trusted prefixes, by
 * default loopback), and reading a connection's header before its handshake, from the
 * socket itself. The bytes are peeked (MSG_PEEK), parsed (proxy.c), and only the
 * header's own are taken off the socket: a ClientHello that came in the same segment
 * stays queued for OpenSSL, so nothing has to be handed over to the TLS BIO. When the
 * header is still incomplete every byte peeked belongs to it, so those are taken too
 * (kept in a buffer allocated only for such a split header): a blocking wait would
 * otherwise wake at once, forever, on the bytes left queued. */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct tlskit__proxy_rx {
    int64_t deadline;          /* absolute */
    int64_t timeout_ms;
    int untrusted;             /* the peer is not an allowed sender: fail at once */
    size_t have;               /* bytes of the header taken off the socket so far */
    unsigned char *buf;        /* ... kept here (allocated on the first split) */
};

/* ---- trusted senders ---- */

static int cidr_parse(const char *text, struct tlskit__cidr *out, char *why, size_t why_len)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = text ? strchr(text, '/') : NULL;
    size_t hl = slash ? (size_t)(slash - text) : (text ? strlen(text) : 0);
    if (!text || hl == 0 || hl >= sizeof(host)) {
        snprintf(why, why_len, "\"%s\" is not an address or ADDR/BITS prefix",
                 text ? text : "(null)");
        return -1;
    }
    memcpy(host, text, hl);
    host[hl] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, host, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, host, out->addr) == 1)
        out->family = AF_INET6;
    else {
        snprintf(why, why_len, "\"%s\": \"%s\" is not an IPv4 or IPv6 address", text, host);
        return -1;
    }
    int max = out->family == AF_INET ? 32 : 128;
    out->bits = max;
    if (slash) {
        const char *b = slash + 1;
        size_t bl = strlen(b);
        int v = 0;
        int ok = bl > 0 && bl <= 3 && !(bl > 1 && b[0] == '0');
        for (size_t i = 0; ok && i < bl; i++) {
            ok = b[i] >= '0' && b[i] <= '9';
            v = v * 10 + (b[i] - '0');
        }
        if (!ok || v > max) {
            snprintf(why, why_len, "\"%s\": the prefix length must be 0 to %d", text, max);
            return -1;
        }
        out->bits = v;
    }
    for (int i = out->bits; i < max; i++) {
        if (out->addr[i / 8] & (0x80 >> (i % 8))) {
            snprintf(why, why_len, "\"%s\": bits are set after the first %d (did you mean "
                     "the network's own address?)", text, out->bits);
            return -1;
        }
    }
    return 0;
}

int tlskit_proxy_from_check(const char *cidr, char *why, size_t why_len)
{
    struct tlskit__cidr c;
    char buf[160];
    int r = cidr_parse(cidr, &c, buf, sizeof(buf));
    if (r != 0 && why && why_len)
        snprintf(why, why_len, "%s", buf);
    else if (why && why_len)
        why[0] = '\0';
    return r;
}

int tlskit__proxy_set(struct tlskit__err *err, struct tlskit__proxy_policy *p, int on,
                      int64_t timeout_ms)
{
    if (timeout_ms < 0) {
        tlskit__err_set(err, TLSKIT_E_INVALID, "PROXY protocol: negative header timeout");
        return -1;
    }
    p->on = on != 0;
    p->timeout_ms = timeout_ms ? timeout_ms : TLSKIT_PROXY_DEFAULT_TIMEOUT_MS;
    return 0;
}

int tlskit__proxy_add_from(struct tlskit__err *err, struct tlskit__proxy_policy *p,
                           const char *cidr)
{
    char why[160];
    if (p->nfrom == TLSKIT_PROXY_MAX_FROM) {
        tlskit__err_set(err, TLSKIT_E_INVALID, "PROXY senders: at most %d prefixes",
                        TLSKIT_PROXY_MAX_FROM);
        return -1;
    }
    if (cidr_parse(cidr, &p->from[p->nfrom], why, sizeof(why)) != 0) {
        tlskit__err_set(err, TLSKIT_E_INVALID, "PROXY sender %s", why);
        return -1;
    }
    p->nfrom++;
    return 0;
}

static int cidr_match(const struct tlskit__cidr *c, int family, const unsigned char *a)
{
    if (c->family != family)
        return 0;
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, a, (size_t)full) != 0)
        return 0;
    return rest == 0 || ((c->addr[full] ^ a[full]) & (0xFF << (8 - rest)) & 0xFF) == 0;
}

/* Is peer an allowed sender? An IPv4-mapped IPv6 peer is judged as the IPv4 address. */
static int trusted(const struct tlskit__proxy_policy *p, const struct sockaddr *peer)
{
    static const struct tlskit__cidr loopback[2] = {
        {.family = AF_INET, .bits = 8, .addr = {127}},
        {.family = AF_INET6, .bits = 128, .addr = {[15] = 1}},
    };
    const struct tlskit__cidr *list = p->nfrom ? p->from : loopback;
    size_t n = p->nfrom ? p->nfrom : 2;
    unsigned char a[16];
    int family = peer->sa_family;
    if (family == AF_INET) {
        memcpy(a, &((const struct sockaddr_in *)(const void *)peer)->sin_addr, 4);
    } else if (family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr;
        memcpy(a, in6, 16);
        if (IN6_IS_ADDR_V4MAPPED(in6)) {
            for (size_t i = 0; i < n; i++)
                if (cidr_match(&list[i], AF_INET, a + 12))
                    return 1;
        }
    } else {
        return 0; /* a UNIX socket has no address to trust */
    }
    for (size_t i = 0; i < n; i++)
        if (cidr_match(&list[i], family, a))
            return 1;
    return 0;
}

int tlskit__proxy_arm(tlskit_conn *c, const struct tlskit__proxy_policy *p,
                      const struct sockaddr *peer)
{
    if (!p->on)
        return 0;
    struct tlskit__proxy_rx *rx = calloc(1, sizeof(*rx));
    if (!rx)
        return -1;
    rx->timeout_ms = p->timeout_ms ? p->timeout_ms : TLSKIT_PROXY_DEFAULT_TIMEOUT_MS;
    rx->deadline = tlskit__now_ms() + rx->timeout_ms;
    rx->untrusted = !trusted(p, peer);
    c->prx = rx;
    return 0;
}

/* ---- reading the header ---- */

void tlskit__proxy_free(tlskit_conn *c)
{
    if (c->prx) {
        free(c->prx->buf);
        free(c->prx);
        c->prx = NULL;
    }
}

int64_t tlskit__proxy_deadline(const tlskit_conn *c)
{
    return c->prx ? c->prx->deadline : 0;
}

int64_t tlskit__proxy_timeout_ms(const tlskit_conn *c)
{
    return c->prx ? c->prx->timeout_ms : 0;
}

static int fail(tlskit_conn *c, int code, const char *why)
{
    c->dead = 1;
    tlskit__err_set(&c->err, code, "%s %s: %s", tlskit__conn_op_text(OP_PROXY), c->peer, why);
    return -1;
}

/* The header is read: the client it names becomes the peer. LOCAL (a health check) and
 * UNSPEC/UNKNOWN keep the socket's own (spec 2.1, 2.2). */
static void done(tlskit_conn *c, const struct tlskit_proxy_header *h)
{
    c->proxy_local = h->command == TLSKIT_PROXY_CMD_LOCAL;
    if (h->command == TLSKIT_PROXY_CMD_PROXY && h->family != TLSKIT_PROXY_AF_UNSPEC) {
        size_t n = strnlen(h->src, sizeof(c->peer) - 1); /* a long UNIX path is cut */
        memcpy(c->peer, h->src, n);
        c->peer[n] = '\0';
    }
    tlskit__proxy_free(c);
    c->hs_deadline = 0; /* the TLS handshake's own deadline starts now */
}

/* One look at the socket: 1 done, 0 need more (all taken), -1 failed, -2 nothing new. */
static int step(tlskit_conn *c)
{
    struct tlskit__proxy_rx *rx = c->prx;
    unsigned char tmp[TLSKIT_PROXY_MAX_HEADER];
    if (rx->have)
        memcpy(tmp, rx->buf, rx->have);
    ssize_t n = recv(c->fd, tmp + rx->have, sizeof(tmp) - rx->have, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return -2;
    if (n < 0) {
        char why[160], eb[96];
        snprintf(why, sizeof(why), "%s", strerror_r(errno, eb, sizeof(eb)));
        return fail(c, TLSKIT_E_IO, why);
    }
    if (n == 0) {
        char why[160];
        snprintf(why, sizeof(why), "the peer closed the connection %s",
                 rx->have ? "in the middle of the header" : "before sending a header");
        return fail(c, TLSKIT_E_CLOSED, why);
    }
    struct tlskit_proxy_header h;
    char why[200];
    ssize_t r = tlskit_proxy_header_parse(tmp, rx->have + (size_t)n, TLSKIT_PROXY_MAX_HEADER,
                                          &h, why, sizeof(why));
    if (r < 0)
        return fail(c, TLSKIT_E_PROTOCOL, why);
    /* Take off the socket what belongs to the header, and nothing after it. */
    size_t take = r > 0 ? (size_t)r - rx->have : (size_t)n;
    ssize_t got = take ? recv(c->fd, tmp + rx->have, take, MSG_DONTWAIT) : 0;
    if (got != (ssize_t)take)
        return fail(c, TLSKIT_E_IO, "the peeked header bytes could not be read");
    if (r > 0) {
        done(c, &h);
        return 1;
    }
    if (!rx->buf && !(rx->buf = malloc(TLSKIT_PROXY_MAX_HEADER)))
        return fail(c, TLSKIT_E_NOMEM, "out of memory");
    memcpy(rx->buf + rx->have, tmp + rx->have, (size_t)n);
    rx->have += (size_t)n;
    return 0;
}

int tlskit__proxy_recv(tlskit_conn *c)
{
    struct tlskit__proxy_rx *rx = c->prx;
    if (rx->untrusted)
        return fail(c, TLSKIT_E_PROTOCOL, "not a trusted PROXY sender (refused before "
                    "reading anything)");
    for (;;) {
        int r = step(c);
        if (r == 1)
            return 0;
        if (r == -1)
            return -1;
        if (tlskit__now_ms() >= rx->deadline)
            return tlskit__conn_timeout(c, OP_PROXY);
        if (r == 0)
            continue; /* more may be queued already */
        if (c->nonblocking)
            return TLSKIT_WANT_READ;
        int w = tlskit__wait_fd(c->fd, POLLIN, rx->deadline);
        if (w == 0)
            return tlskit__conn_timeout(c, OP_PROXY);
        if (w < 0) {
            char eb[96];
            return fail(c, TLSKIT_E_IO, strerror_r(errno, eb, sizeof(eb)));
        }
    }
}
