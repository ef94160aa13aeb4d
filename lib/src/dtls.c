/* SPDX-License-Identifier: MIT */
/* The datagram path: DTLS 1.2 over UDP. The DTLS config and its settings, stateless
 * cookies (RFC 6347 section 4.2.1), the retransmission timer, the datagram BIO that
 * answers OpenSSL's datagram controls, the client's connect, and the seam the engine
 * uses to serve many peers from one unconnected socket per worker (engine_udp.c). */
#include "conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TK_COOKIE_LEN 32          /* HMAC-SHA256, whole */
#define TK_DTLS_MIN_MTU 256       /* below this OpenSSL refuses the MTU */
#define TK_DTLS_MAX_MTU 65507     /* the largest UDP payload over IPv4 */
#define TK_DTLS_REC_HDR 13        /* DTLS record header */
#define TK_DTLS_HS_HDR 12         /* DTLS handshake message header */

/* ---- the config ---- */

static int cookie_gen(SSL *ssl, unsigned char *cookie, unsigned int *len);
static int cookie_verify(SSL *ssl, const unsigned char *cookie, unsigned int len);

tlskit_config *tlskit_config_new_dtls(void)
{
    tlskit_config *cfg = tlskit__config_new_method(DTLS_method(), DTLS1_2_VERSION,
                                                   DTLS1_2_VERSION);
    if (!cfg)
        return NULL;
    cfg->dtls = 1;
    cfg->mtu = TLSKIT_DTLS_DEFAULT_MTU;
    cfg->dtls_first_ms = TLSKIT_DTLS_DEFAULT_TIMER_FIRST_MS;
    cfg->dtls_max_ms = TLSKIT_DTLS_DEFAULT_TIMER_MAX_MS;
    cfg->cookie_secs = TLSKIT_DTLS_DEFAULT_COOKIE_SECS;
    if (RAND_bytes(cfg->cookie_key, sizeof(cfg->cookie_key)) != 1) {
        ERR_clear_error();
        tlskit_config_free(cfg);
        return NULL;
    }
    SSL_CTX_set_cookie_generate_cb(cfg->ctx, cookie_gen);
    SSL_CTX_set_cookie_verify_cb(cfg->ctx, cookie_verify);
    return cfg;
}

static int dtls_setter(tlskit_config *cfg, const char *call)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    if (!cfg->dtls) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID,
                        "%s: not a DTLS config (make it with tlskit_config_new_dtls())", call);
        return -1;
    }
    return 0;
}

int tlskit_config_set_mtu(tlskit_config *cfg, int bytes)
{
    if (dtls_setter(cfg, "set_mtu") != 0)
        return -1;
    if (bytes < TK_DTLS_MIN_MTU || bytes > TK_DTLS_MAX_MTU) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID, "MTU %d out of range (%d to %d bytes)",
                        bytes, TK_DTLS_MIN_MTU, TK_DTLS_MAX_MTU);
        return -1;
    }
    cfg->mtu = bytes;
    return 0;
}

int tlskit_config_set_dtls_timer(tlskit_config *cfg, int64_t first_ms, int64_t max_ms)
{
    if (dtls_setter(cfg, "set_dtls_timer") != 0)
        return -1;
    if (first_ms < 10 || max_ms < first_ms || max_ms > 600000) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID,
                        "DTLS timer: first delay %lld ms, cap %lld ms: need 10 <= first <= "
                        "cap <= 600000", (long long)first_ms, (long long)max_ms);
        return -1;
    }
    cfg->dtls_first_ms = first_ms;
    cfg->dtls_max_ms = max_ms;
    return 0;
}

int tlskit_config_set_dtls_cookie_lifetime(tlskit_config *cfg, int64_t secs)
{
    if (dtls_setter(cfg, "set_dtls_cookie_lifetime") != 0)
        return -1;
    if (secs < 1 || secs > 3600) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID,
                        "DTLS cookie lifetime %lld s out of range (1 to 3600)", (long long)secs);
        return -1;
    }
    cfg->cookie_secs = secs;
    return 0;
}

/* ---- cookies: HMAC(key, time bucket | peer address | port) ---- */

/* The cookie for the peer of c in bucket b. 0, or -1. */
static int cookie_make(const tlskit_conn *c, int64_t b, unsigned char out[TK_COOKIE_LEN])
{
    unsigned char msg[8 + 1 + 2 + 16];
    size_t n = 0;
    for (int i = 7; i >= 0; i--)
        msg[n++] = (unsigned char)((uint64_t)b >> (i * 8));
    const struct sockaddr *sa = (const struct sockaddr *)&c->dg->peer;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        msg[n++] = 4;
        memcpy(msg + n, &in->sin_port, 2);
        memcpy(msg + n + 2, &in->sin_addr, 4);
        n += 6;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        msg[n++] = 6;
        memcpy(msg + n, &in6->sin6_port, 2);
        memcpy(msg + n + 2, &in6->sin6_addr, 16);
        n += 18;
    } else {
        return -1;
    }
    size_t outlen = 0;
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, c->cfg->cookie_key,
                   sizeof(c->cfg->cookie_key), msg, n, out, TK_COOKIE_LEN, &outlen) ||
        outlen != TK_COOKIE_LEN) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

static int64_t cookie_bucket(const tlskit_conn *c)
{
    return tlskit__now_ms() / 1000 / c->cfg->cookie_secs;
}

static int cookie_gen(SSL *ssl, unsigned char *cookie, unsigned int *len)
{
    tlskit_conn *c = SSL_get_app_data(ssl);
    if (!c || !c->dg || cookie_make(c, cookie_bucket(c), cookie) != 0)
        return 0;
    *len = TK_COOKIE_LEN;
    c->dg->cookie_sent = 1;
    return 1;
}

/* The current bucket and the one before: a cookie lives one to two lifetimes. */
static int cookie_verify(SSL *ssl, const unsigned char *cookie, unsigned int len)
{
    tlskit_conn *c = SSL_get_app_data(ssl);
    unsigned char want[TK_COOKIE_LEN];
    if (!c || !c->dg)
        return 0;
    int64_t b = cookie_bucket(c);
    for (int64_t i = 0; len == TK_COOKIE_LEN && i < 2; i++)
        if (cookie_make(c, b - i, want) == 0 && CRYPTO_memcmp(want, cookie, len) == 0)
            return 1;
    c->dg->cookie_bad = 1;
    return 0;
}

/* ---- the retransmission timer ---- */

/* OpenSSL asks for the first delay with 0, then for the next after each expiry. */
static unsigned int timer_cb(SSL *ssl, unsigned int prev_us)
{
    tlskit_conn *c = SSL_get_app_data(ssl);
    uint64_t first = c ? (uint64_t)c->cfg->dtls_first_ms * 1000 : 1000000;
    uint64_t cap = c ? (uint64_t)c->cfg->dtls_max_ms * 1000 : 60000000;
    uint64_t next = prev_us == 0 ? first : (uint64_t)prev_us * 2;
    return (unsigned int)(next > cap ? cap : next);
}

void tlskit__dtls_ssl_setup(tlskit_conn *c)
{
    DTLS_set_timer_cb(c->ssl, timer_cb);
    SSL_set_mtu(c->ssl, c->cfg->mtu);
}

int tlskit__dtls_tick(tlskit_conn *c)
{
    ERR_clear_error();
    int r = DTLSv1_handle_timeout(c->ssl);
    if (r > 0) {
        c->dg->retransmits++;
        c->dg->retransmits_total++;
    }
    if (r < 0)
        return -1;
    ERR_clear_error();
    return 0;
}

int64_t tlskit__dtls_timer_at(const tlskit_conn *c)
{
    struct timeval tv;
    if (!c->ssl || DTLSv1_get_timeout(c->ssl, &tv) != 1)
        return 0;
    return tlskit__now_ms() + (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- the datagram BIO ---- */

static BIO_METHOD *dgram_method;
static pthread_once_t dgram_once = PTHREAD_ONCE_INIT;

static int dgram_write(BIO *b, const char *buf, int len)
{
    tlskit_conn *c = BIO_get_data(b);
    struct tlskit__dgram *d = c->dg;
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = d->connected
                        ? send(c->fd, buf, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL)
                        : sendto(c->fd, buf, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL,
                                 (const struct sockaddr *)&d->peer, d->peerlen);
        if (n >= 0) {
            c->last_activity = tlskit__now_ms();
            return (int)n;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (d->connected) {
                BIO_set_retry_write(b);
                return -1;
            }
            /* A socket shared by every peer of the worker must never wait for one: the
             * datagram is lost, as the network may lose it; DTLS retransmits handshake
             * flights, and application data over UDP is best effort. */
            d->drops++;
            return len;
        }
        if (errno == EMSGSIZE)
            d->emsgsize = 1;
        c->io_errno = errno;
        return -1;
    }
}

static int dgram_read(BIO *b, char *buf, int len)
{
    tlskit_conn *c = BIO_get_data(b);
    struct tlskit__dgram *d = c->dg;
    BIO_clear_retry_flags(b);
    if (!d->connected) {
        if (!d->in) {
            BIO_set_retry_read(b);
            return -1;
        }
        size_t n = d->in_len < (size_t)len ? d->in_len : (size_t)len;
        memcpy(buf, d->in, n);
        d->in = NULL;
        d->in_len = 0;
        c->last_activity = tlskit__now_ms();
        return (int)n;
    }
    for (;;) {
        ssize_t n = recv(c->fd, buf, (size_t)len, MSG_DONTWAIT);
        if (n > 0) {
            c->last_activity = tlskit__now_ms();
            return (int)n;
        }
        if (n == 0 || errno == EINTR)
            continue; /* an empty datagram carries nothing */
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            BIO_set_retry_read(b);
            return -1;
        }
        c->io_errno = errno; /* ECONNREFUSED: an ICMP port unreachable came back */
        return -1;
    }
}

static int dgram_puts(BIO *b, const char *str)
{
    return dgram_write(b, str, (int)strlen(str));
}

static const struct sockaddr *dgram_peer(tlskit_conn *c, socklen_t *len)
{
    if (!c->dg->connected) {
        *len = c->dg->peerlen;
        return (const struct sockaddr *)&c->dg->peer;
    }
    *len = sizeof(c->dg->peer);
    if (getpeername(c->fd, (struct sockaddr *)&c->dg->peer, len) != 0)
        return NULL;
    return (const struct sockaddr *)&c->dg->peer;
}

/* The peer as a BIO_ADDR, for DTLSv1_listen(). */
static long dgram_get_peer(tlskit_conn *c, BIO_ADDR *out)
{
    socklen_t len;
    const struct sockaddr *sa = dgram_peer(c, &len);
    if (!sa || !out)
        return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        return BIO_ADDR_rawmake(out, AF_INET, &in->sin_addr, sizeof(in->sin_addr), in->sin_port);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        return BIO_ADDR_rawmake(out, AF_INET6, &in6->sin6_addr, sizeof(in6->sin6_addr),
                                in6->sin6_port);
    }
    return 0;
}

/* IP and UDP headers: what a link MTU holds besides the payload. */
static long dgram_overhead(tlskit_conn *c)
{
    socklen_t len;
    const struct sockaddr *sa = dgram_peer(c, &len);
    return sa && sa->sa_family == AF_INET6 ? 40 + 8 : 20 + 8;
}

static long dgram_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    tlskit_conn *c = BIO_get_data(b);
    (void)num;
    if (!c)
        return 0;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
    case BIO_CTRL_WPENDING:
        return 0;
    case BIO_C_GET_FD:
        if (ptr)
            *(int *)ptr = c->fd;
        return c->fd;
    /* The path MTU is what the config says: the payload a datagram may carry. The
     * fallback is the same, so that OpenSSL's shrinking after repeated timeouts never
     * goes below what the caller chose (and tlskit_conn_max_write() stays exact). */
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
    case BIO_CTRL_DGRAM_GET_MTU:
        return c->cfg->mtu;
    case BIO_CTRL_DGRAM_SET_MTU:
        return num;
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
        return dgram_overhead(c);
    case BIO_CTRL_DGRAM_MTU_EXCEEDED: {
        int e = c->dg->emsgsize;
        c->dg->emsgsize = 0;
        return e;
    }
    case BIO_CTRL_DGRAM_GET_PEER:
        return dgram_get_peer(c, ptr);
    case BIO_CTRL_DGRAM_SET_PEER:      /* the peer is ours to know: the engine's lookup */
    case BIO_CTRL_DGRAM_SET_CONNECTED:
    case BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT: /* timers are conn.c's and the engine's */
        return 1;
    default:
        return 0;
    }
}

static int dgram_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void dgram_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK |
                                     BIO_TYPE_DESCRIPTOR, "tlskit datagram");
    if (!m)
        return;
    BIO_meth_set_write(m, dgram_write);
    BIO_meth_set_read(m, dgram_read);
    BIO_meth_set_puts(m, dgram_puts);
    BIO_meth_set_ctrl(m, dgram_ctrl);
    BIO_meth_set_create(m, dgram_create);
    dgram_method = m;
}

BIO *tlskit__dgram_bio_new(tlskit_conn *conn)
{
    pthread_once(&dgram_once, dgram_method_init);
    if (!dgram_method)
        return NULL;
    BIO *b = BIO_new(dgram_method);
    if (b)
        BIO_set_data(b, conn);
    return b;
}

/* ---- the client ---- */

/* A connected UDP socket to the first address of host:port that takes connect(). */
static int udp_connect(tlskit_conn *c, const char *host, const char *port)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0) {
        if (g == EAI_SYSTEM)
            tlskit__err_set_errno(&c->err, TLSKIT_E_RESOLVE, errno, "resolve %s port %s", host,
                                  port);
        else
            tlskit__err_set(&c->err, TLSKIT_E_RESOLVE, "resolve %s port %s: %s", host, port,
                            gai_strerror(g));
        return -1;
    }
    int fd = -1, why = 0;
    for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            why = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            why = errno;
            close(fd);
            fd = -1;
            continue;
        }
        tlskit__format_addr(ai->ai_addr, c->peer, sizeof(c->peer));
    }
    freeaddrinfo(res);
    if (fd < 0)
        tlskit__err_set_errno(&c->err, TLSKIT_E_CONNECT, why, "connect to %s port %s (UDP)",
                              host, port);
    return fd;
}

int tlskit_conn_connect_udp(tlskit_conn *c, const char *host, const char *port)
{
    if (tlskit__connect_args(c, host, port) != 0)
        return -1;
    if (!c->cfg->dtls) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID, "connect_udp: the config is not a DTLS "
                        "config (make it with tlskit_config_new_dtls())");
        return -1;
    }
    if (!c->servername && !(c->servername = strdup(host))) {
        tlskit__err_set(&c->err, TLSKIT_E_NOMEM, "out of memory");
        return -1;
    }
    if (!c->dg && !(c->dg = calloc(1, sizeof(*c->dg)))) {
        tlskit__err_set(&c->err, TLSKIT_E_NOMEM, "out of memory");
        return -1;
    }
    c->dg->connected = 1;
    int fd = udp_connect(c, host, port);
    if (fd < 0)
        return -1;
    tlskit__socket_apply_options(c->cfg, fd);
    if (tlskit__conn_setup(c, fd, 1, 0) != 0) {
        close(fd);
        c->fd = -1;
        c->own_fd = 0;
        SSL_free(c->ssl);
        c->ssl = NULL;
        return -1;
    }
    return 0;
}

int tlskit__dtls_wrap_check(tlskit_conn *c, int fd, int is_server)
{
    int type = 0;
    socklen_t tl = sizeof(type);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (is_server) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID, "wrap_server: DTLS servers are served by "
                        "the engine (tlskit_engine_listen() with a DTLS config)");
        return -1;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_DGRAM ||
        getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID, "wrap fd %d: a DTLS config needs a "
                        "connected UDP socket", fd);
        return -1;
    }
    if (!c->dg && !(c->dg = calloc(1, sizeof(*c->dg)))) {
        tlskit__err_set(&c->err, TLSKIT_E_NOMEM, "out of memory");
        return -1;
    }
    c->dg->connected = 1;
    return 0;
}

size_t tlskit_conn_max_write(const tlskit_conn *c)
{
    if (!c || !c->ssl)
        return 0;
    if (!c->dg)
        return SIZE_MAX;
    return DTLS_get_data_mtu(c->ssl);
}

uint64_t tlskit_conn_retransmits(const tlskit_conn *c)
{
    return c && c->dg ? c->dg->retransmits_total : 0;
}

/* ---- the seam for the engine ---- */

int tlskit__conn_is_dtls(const tlskit_conn *c)
{
    return c->dg != NULL;
}

void tlskit__conn_dgram_feed(tlskit_conn *c, const void *buf, size_t len)
{
    c->dg->in = buf;
    c->dg->in_len = buf ? len : 0;
}

void tlskit__conn_dtls_counts(tlskit_conn *c, uint64_t *retransmits, uint64_t *drops)
{
    *retransmits = *drops = 0;
    if (!c->dg)
        return;
    *retransmits = c->dg->retransmits;
    *drops = c->dg->drops;
    c->dg->retransmits = c->dg->drops = 0;
}

tlskit_conn *tlskit__dtls_listener_new(tlskit_config *cfg)
{
    tlskit_conn *c = tlskit_conn_new(cfg);
    if (!c)
        return NULL;
    if (!(c->dg = calloc(1, sizeof(*c->dg))) || tlskit__conn_setup(c, -1, 0, 1) != 0) {
        tlskit_conn_free(c);
        return NULL;
    }
    return c;
}

enum tlskit__listen_result tlskit__dtls_listen(tlskit_conn *lc, int fd, const struct sockaddr *peer,
                                               socklen_t peerlen, const void *buf, size_t len)
{
    struct tlskit__dgram *d = lc->dg;
    if (peerlen > sizeof(d->peer))
        return TK_LISTEN_DROP;
    lc->fd = fd;
    memcpy(&d->peer, peer, peerlen);
    d->peerlen = peerlen;
    d->in = buf;
    d->in_len = len;
    d->cookie_sent = d->cookie_bad = 0;
    BIO_ADDR *client = BIO_ADDR_new();
    int r = client ? DTLSv1_listen(lc->ssl, client) : -1;
    BIO_ADDR_free(client);
    ERR_clear_error();
    d->in = NULL;
    d->in_len = 0;
    if (r == 1) {
        tlskit__format_addr(peer, lc->peer, sizeof(lc->peer));
        lc->last_activity = lc->created_ms = tlskit__now_ms();
        /* DTLSv1_listen() cleared the SSL, and with it the MTU it was given. */
        SSL_set_mtu(lc->ssl, lc->cfg->mtu);
        return TK_LISTEN_OK;
    }
    if (d->cookie_bad)
        return TK_LISTEN_BAD_COOKIE;
    return d->cookie_sent ? TK_LISTEN_HVR : TK_LISTEN_DROP;
}

/* Only what decides whether to run the cookie check at all: the record header (content
 * type handshake, DTLS major version, epoch 0, a length that fits) and the handshake
 * header (ClientHello, first fragment). DTLSv1_listen() parses the rest. */
int tlskit__dtls_client_hello(const unsigned char *p, size_t len, const unsigned char **random)
{
    const size_t body = TK_DTLS_REC_HDR + TK_DTLS_HS_HDR;
    if (len < body + 2 + 32)
        return 0;
    if (p[0] != 22 || p[1] != 0xfe || p[3] != 0 || p[4] != 0)
        return 0;
    size_t rlen = (size_t)p[11] << 8 | p[12];
    if (rlen + TK_DTLS_REC_HDR > len || rlen < TK_DTLS_HS_HDR + 2 + 32)
        return 0;
    const unsigned char *h = p + TK_DTLS_REC_HDR;
    if (h[0] != 1 || h[6] != 0 || h[7] != 0 || h[8] != 0) /* type, fragment offset */
        return 0;
    if (random)
        *random = h + TK_DTLS_HS_HDR + 2;
    return 1;
}
