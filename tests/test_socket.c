/* SPDX-License-Identifier: MIT */
/* Real sockets: listening (port 0, both families, port in use), accepting with
 * deadlines, connecting (refused, unresolvable, silent, several addresses), and TCP
 * closes. */
#include "common.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

TK_SUITE(socket);

static int sock_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    return ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                   : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int sock_family(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    return ss.ss_family;
}

TK_TEST(socket, listen_ipv4_port0)
{
    tlskit_config *cfg = tk_server_config("server");
    tlskit_listener *l = tlskit_listener_new(cfg);
    cr_expect_eq(tlskit_listener_port(l), -1, "port before listening");
    cr_assert_eq(tlskit_listener_listen(l, "127.0.0.1", "0", 0), 0, "%s",
                 tk_str(tlskit_listener_error(l)));
    int port = tlskit_listener_port(l);
    cr_assert(port > 0 && port < 65536, "port %d", port);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    cr_expect_str_eq(tk_str(tlskit_listener_addrs(l)), want);
    size_t n = 0;
    const int *fds = tlskit_listener_fds(l, &n);
    cr_assert_eq(n, 1);
    cr_expect_eq(sock_port(fds[0]), port);
    cr_expect_eq(sock_family(fds[0]), AF_INET);
    cr_expect(fcntl(fds[0], F_GETFD) & FD_CLOEXEC, "listening socket without FD_CLOEXEC");
    int one = 0;
    socklen_t len = sizeof one;
    cr_expect_eq(getsockopt(fds[0], SOL_SOCKET, SO_REUSEADDR, &one, &len), 0);
    cr_expect(one, "SO_REUSEADDR not set");
    tlskit_listener_free(l);
    tlskit_config_free(cfg);
}

TK_TEST(socket, listen_localhost_both_families_same_port)
{
    tlskit_config *cfg = tk_server_config("server");
    tlskit_listener *l = tk_listen(cfg, "localhost", "0");
    int port = tlskit_listener_port(l);
    cr_assert_gt(port, 0);
    const char *addrs = tlskit_listener_addrs(l);
    char v4[64], v6[64];
    snprintf(v4, sizeof v4, "127.0.0.1:%d", port);
    snprintf(v6, sizeof v6, "[::1]:%d", port);
    cr_expect(tk_contains(addrs, v4), "addrs \"%s\" lacks %s", tk_str(addrs), v4);
    cr_expect(tk_contains(addrs, v6), "addrs \"%s\" lacks %s", tk_str(addrs), v6);
    size_t n = 0;
    const int *fds = tlskit_listener_fds(l, &n);
    cr_expect_eq(n, 2, "localhost: %zu listening sockets (%s)", n, tk_str(addrs));
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(sock_port(fds[i]), port);
        if (sock_family(fds[i]) == AF_INET6) {
            int v6only = 0;
            socklen_t len = sizeof v6only;
            getsockopt(fds[i], IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len);
            cr_expect(v6only, "IPv6 socket is not IPv6-only");
        }
    }
    tlskit_listener_free(l);
    tlskit_config_free(cfg);
}

TK_TEST(socket, listen_all_addresses)
{
    tlskit_config *cfg = tk_server_config("server");
    static const char *const hosts[] = {NULL, "", "*"};
    for (size_t i = 0; i < 3; i++) {
        tlskit_listener *l = tk_listen(cfg, hosts[i], "0");
        int port = tlskit_listener_port(l);
        char v4[64], v6[64];
        snprintf(v4, sizeof v4, "0.0.0.0:%d", port);
        snprintf(v6, sizeof v6, "[::]:%d", port);
        const char *addrs = tlskit_listener_addrs(l);
        cr_expect(tk_contains(addrs, v4) && tk_contains(addrs, v6), "host \"%s\": addrs %s",
                  tk_str(hosts[i]), tk_str(addrs));
        tlskit_listener_free(l);
    }
    tlskit_config_free(cfg);
}

TK_TEST(socket, listen_bad_port)
{
    tlskit_config *cfg = tk_server_config("server");
    static const char *const ports[] = {"notaport", "99999", "-1", ""};
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        tlskit_listener *l = tlskit_listener_new(cfg);
        int rc = tlskit_listener_listen(l, "127.0.0.1", ports[i], 0);
        cr_expect_eq(rc, -1, "port \"%s\" accepted: listening on %s", ports[i],
                     tk_str(tlskit_listener_addrs(l)));
        cr_expect_neq(tlskit_listener_error_code(l), TLSKIT_E_NONE);
        cr_expect_eq(tlskit_listener_port(l), -1);
        tlskit_listener_free(l);
    }
    tlskit_config_free(cfg);
}

TK_TEST(socket, port_in_use)
{
    tlskit_config *cfg = tk_server_config("server");
    tlskit_listener *a = tk_listen(cfg, "127.0.0.1", "0");
    char port[16], addr[64];
    snprintf(port, sizeof port, "%d", tlskit_listener_port(a));
    snprintf(addr, sizeof addr, "127.0.0.1:%s", port);
    tlskit_listener *b = tlskit_listener_new(cfg);
    int rc = tlskit_listener_listen(b, "127.0.0.1", port, 0);
    const char *msg = tlskit_listener_error(b);
    cr_expect_eq(rc, -1, "second listener on %s succeeded", addr);
    cr_expect_eq(tlskit_listener_error_code(b), TLSKIT_E_LISTEN, "%s: %s",
                 tlskit_error_name(tlskit_listener_error_code(b)), tk_str(msg));
    cr_expect(tk_contains(msg, "Address already in use"), "%s", tk_str(msg));
    cr_expect(tk_contains(msg, addr), "message does not name %s: %s", addr, tk_str(msg));
    tlskit_listener_free(b);
    tlskit_listener_free(a);
    tlskit_config_free(cfg);
}

/* timeout 0 follows the WANT contract: nothing pending is TLSKIT_WANT_READ, not an
 * error; a pending client is accepted at once. */
TK_TEST(socket, accept_nonblocking_wants_read)
{
    tlskit_config *cfg = tk_server_config("server");
    tlskit_listener *l = tk_listen(cfg, "127.0.0.1", "0");
    tlskit_conn *conn = NULL;
    cr_expect_eq(tlskit_listener_accept(l, &conn, 0), TLSKIT_WANT_READ);
    cr_expect_null(conn);
    cr_expect_eq(tlskit_listener_error_code(l), TLSKIT_E_NONE, "%s",
                 tk_str(tlskit_listener_error(l)));
    cr_expect_eq(tlskit_want_events(TLSKIT_WANT_READ), POLLIN);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)tlskit_listener_port(l)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
    size_t n = 0;
    struct pollfd p = {.fd = tlskit_listener_fds(l, &n)[0], .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 20000), 1, "the client never showed up in the backlog");
    cr_assert_eq(tlskit_listener_accept(l, &conn, 0), 0, "%s", tlskit_listener_error(l));
    cr_expect_not_null(conn);
    tlskit_conn_free(conn);
    close(fd);
    tlskit_listener_free(l);
    tlskit_config_free(cfg);
}

/* tlskit_conn_refuse(): the alert, what the client sent dropped (so a FIN, not a reset),
 * and only for an accepted connection before its handshake. */
static int raw_client(int port, const void *data, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
    if (len)
        cr_assert_eq(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
    return fd;
}

static tlskit_conn *accept_one(tlskit_listener *l)
{
    tlskit_conn *conn = NULL;
    cr_assert_eq(tlskit_listener_accept(l, &conn, 20000), 0, "%s", tlskit_listener_error(l));
    return conn;
}

TK_TEST(socket, refuse_sends_an_alert_before_the_handshake_only)
{
    tlskit_config *cfg = tk_server_config("server");
    tlskit_listener *l = tk_listen(cfg, "127.0.0.1", "0");
    int port = tlskit_listener_port(l);
    /* The start of a ClientHello, already in the server's socket when it refuses. */
    static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x00, 0xf4, 0x01, 0x00};
    int fd = raw_client(port, hello, sizeof(hello));
    tlskit_conn *conn = accept_one(l);
    struct pollfd pf = {.fd = tlskit_conn_fd(conn), .events = POLLIN};
    cr_assert_eq(poll(&pf, 1, 20000), 1, "the client's bytes never arrived");
    cr_assert_eq(tlskit_conn_refuse(conn), 0, "%s", tlskit_conn_error(conn));
    tlskit_conn_free(conn);
    unsigned char got[64];
    size_t have = 0;
    ssize_t n;
    while ((n = recv(fd, got + have, sizeof(got) - have, 0)) > 0)
        have += (size_t)n;
    static const unsigned char alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50};
    cr_expect_eq(have, sizeof(alert), "%zu bytes", have);
    cr_expect(have == sizeof(alert) && memcmp(got, alert, sizeof(alert)) == 0,
              "not a fatal internal_error alert");
    cr_expect_eq(n, 0, "the close was not a FIN: %s", strerror(errno));
    close(fd);

    /* After a handshake step: refused, nothing sent. */
    fd = raw_client(port, NULL, 0);
    conn = accept_one(l);
    cr_assert_eq(tlskit_conn_set_nonblocking(conn, 1), 0);
    cr_expect_eq(tlskit_conn_handshake(conn), TLSKIT_WANT_READ, "%s", tlskit_conn_error(conn));
    cr_expect_eq(tlskit_conn_refuse(conn), -1);
    cr_expect_eq(tlskit_conn_error_code(conn), TLSKIT_E_INVALID);
    cr_expect(tk_contains(tlskit_conn_error(conn), "before its handshake"), "%s",
              tlskit_conn_error(conn));
    tlskit_conn_free(conn);
    close(fd);

    /* A client connection: refused. */
    tlskit_config *ccfg = tk_client_config("ca.crt");
    conn = tlskit_conn_new(ccfg);
    cr_expect_eq(tlskit_conn_refuse(conn), -1);
    cr_expect_eq(tlskit_conn_error_code(conn), TLSKIT_E_INVALID);
    tlskit_conn_free(conn);
    cr_expect_eq(tlskit_conn_refuse(NULL), -1);
    tlskit_config_free(ccfg);
    tlskit_listener_free(l);
    tlskit_config_free(cfg);
}

TK_TEST(socket, accept_deadline)
{
    tlskit_config *cfg = tk_server_config("server");
    tlskit_listener *l = tk_listen(cfg, "127.0.0.1", "0");
    tlskit_conn *conn = NULL;
    int64_t t0 = tk_now_ms();
    int rc = tlskit_listener_accept(l, &conn, 300);
    int64_t dt = tk_now_ms() - t0;
    cr_expect_eq(rc, -1);
    cr_expect_null(conn);
    cr_expect_eq(tlskit_listener_error_code(l), TLSKIT_E_TIMEOUT, "%s: %s",
                 tlskit_error_name(tlskit_listener_error_code(l)), tk_str(tlskit_listener_error(l)));
    cr_expect(dt >= 200 && dt < 10000, "300 ms accept deadline took %lld ms", (long long)dt);
    tlskit_listener_free(l);
    tlskit_config_free(cfg);
}

struct accept_arg {
    tlskit_listener *l;
    int rc, code;
};

static void *blocked_accept(void *p)
{
    struct accept_arg *a = p;
    tlskit_conn *conn = NULL;
    a->rc = tlskit_listener_accept(a->l, &conn, -1);
    a->code = tlskit_listener_error_code(a->l);
    tlskit_conn_free(conn);
    return NULL;
}

TK_TEST(socket, close_wakes_blocked_accept)
{
    tlskit_config *cfg = tk_server_config("server");
    tlskit_listener *l = tk_listen(cfg, "127.0.0.1", "0");
    struct accept_arg a = {.l = l};
    pthread_t t = tk_thread_start(blocked_accept, &a);
    poll(NULL, 0, 200); /* not for correctness: gives the thread time to block */
    tlskit_listener_close(l);
    tk_thread_join(t); /* hangs (and the test times out) if close does not wake it */
    cr_expect_eq(a.rc, -1);
    cr_expect_eq(a.code, TLSKIT_E_CLOSED, "%s", tlskit_error_name(a.code));
    cr_expect_eq(tlskit_listener_port(l), -1);
    tlskit_listener_free(l);
    tlskit_config_free(cfg);
}

/* ---- full connections ------------------------------------------------------------------ */

struct serve_arg {
    tlskit_listener *l;
    int mode; /* 0: echo one line then close_notify; 1: drop without close_notify */
    int rc, code;
    char err[1024];
    char peer[128], sni[128];
    int cloexec;
};

static void *serve_one(void *p)
{
    struct serve_arg *a = p;
    tlskit_conn *conn = NULL;
    a->rc = tlskit_listener_accept(a->l, &conn, 20000);
    if (a->rc != 0) {
        a->code = tlskit_listener_error_code(a->l);
        snprintf(a->err, sizeof a->err, "accept: %s", tk_str(tlskit_listener_error(a->l)));
        return NULL;
    }
    snprintf(a->peer, sizeof a->peer, "%s", tk_str(tlskit_conn_peer_addr(conn)));
    a->cloexec = (fcntl(tlskit_conn_fd(conn), F_GETFD) & FD_CLOEXEC) != 0;
    a->rc = tlskit_conn_handshake(conn);
    a->code = tlskit_conn_error_code(conn);
    snprintf(a->err, sizeof a->err, "%s", tk_str(tlskit_conn_error(conn)));
    snprintf(a->sni, sizeof a->sni, "%s", tk_str(tlskit_conn_servername(conn)));
    if (a->rc == 0 && a->mode == 0) {
        char buf[256];
        ssize_t n = tlskit_conn_read(conn, buf, sizeof buf);
        if (n > 0)
            tlskit_conn_write_all(conn, buf, (size_t)n);
        tlskit_conn_close(conn);
    } else if (a->rc == 0 && a->mode == 1) {
        char buf[256];
        tlskit_conn_read(conn, buf, sizeof buf);
        /* no close_notify: free closes the socket the library opened */
    }
    tlskit_conn_free(conn);
    return NULL;
}

/* Connect to host:port, handshake, send a line, expect it back and a clean close. */
static void round_trip(const char *listen_host, const char *connect_host, const char *want_peer,
                       const char *want_sni)
{
    tlskit_config *s = tk_server_config("server");
    tlskit_listener *l = tk_listen(s, listen_host, "0");
    char port[16];
    snprintf(port, sizeof port, "%d", tlskit_listener_port(l));
    struct serve_arg a = {.l = l};
    pthread_t t = tk_thread_start(serve_one, &a);

    tlskit_config *c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_timeout(c, TLSKIT_TIMEOUT_HANDSHAKE, 20000), 0);
    tlskit_conn *conn = tlskit_conn_new(c);
    int rc = tlskit_conn_connect(conn, connect_host, port);
    cr_expect_eq(rc, 0, "connect %s:%s: %s", connect_host, port, tk_str(tlskit_conn_error(conn)));
    if (rc == 0) {
        rc = tlskit_conn_handshake(conn);
        cr_expect_eq(rc, 0, "handshake: %s", tk_str(tlskit_conn_error(conn)));
        char peer[128];
        snprintf(peer, sizeof peer, "%s:%s", want_peer, port);
        cr_expect_str_eq(tk_str(tlskit_conn_peer_addr(conn)), peer);
        int fd = tlskit_conn_fd(conn);
        cr_expect(fcntl(fd, F_GETFD) & FD_CLOEXEC, "connected socket without FD_CLOEXEC");
        int nodelay = 0;
        socklen_t len = sizeof nodelay;
        getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len);
        cr_expect(nodelay, "TCP_NODELAY is not on by default");
        if (rc == 0) {
            cr_expect_eq(tlskit_conn_write(conn, "hello\n", 6), 6);
            char buf[16];
            tk_conn_read_exact(conn, buf, 6);
            cr_expect_eq(memcmp(buf, "hello\n", 6), 0);
            cr_expect_eq(tlskit_conn_read(conn, buf, sizeof buf), 0, "%s",
                         tk_str(tlskit_conn_error(conn)));
        }
        tlskit_conn_close(conn);
        cr_expect_eq(tlskit_conn_fd(conn), -1, "fd still set after close");
    }
    tlskit_conn_free(conn);
    if (rc != 0)
        tlskit_listener_close(l);
    tk_thread_join(t);
    cr_expect_eq(a.rc, 0, "server: %s", a.err);
    cr_expect(tk_contains(a.peer, want_peer), "server sees peer %s", a.peer);
    cr_expect(a.cloexec, "accepted socket without FD_CLOEXEC");
    cr_expect_str_eq(a.sni, want_sni ? want_sni : "(null)");
    tlskit_listener_free(l);
    tlskit_config_free(s);
    tlskit_config_free(c);
}

TK_TEST(socket, ipv4_round_trip)
{
    round_trip("127.0.0.1", "127.0.0.1", "127.0.0.1", NULL);
}

TK_TEST(socket, ipv6_round_trip)
{
    round_trip("::1", "::1", "[::1]", NULL);
}

TK_TEST(socket, localhost_sends_sni)
{
    round_trip("127.0.0.1", "localhost", "127.0.0.1", "localhost");
}

/* A name that resolves to two addresses, the first refusing, without touching
 * /etc/hosts: this executable interposes getaddrinfo() (libtlskit.so calls the
 * executable's definition) and answers "multi.tlskit.test" itself with 127.0.0.1 then
 * ::1, in that order; every other name goes to the real resolver. */
#define MULTI_HOST "multi.tlskit.test"

static struct addrinfo *fake_ai(int family, const char *addr, int port, struct addrinfo *next)
{
    /* One block per entry, as glibc allocates them, so glibc's freeaddrinfo() frees it. */
    struct addrinfo *ai = calloc(1, sizeof *ai + sizeof(struct sockaddr_in6));
    if (ai == NULL)
        return next;
    ai->ai_family = family;
    ai->ai_socktype = SOCK_STREAM;
    ai->ai_protocol = IPPROTO_TCP;
    ai->ai_addr = (struct sockaddr *)(ai + 1);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ai->ai_addr;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, addr, &sin->sin_addr);
        ai->ai_addrlen = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ai->ai_addr;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, addr, &sin6->sin6_addr);
        ai->ai_addrlen = sizeof *sin6;
    }
    ai->ai_next = next;
    return ai;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res);
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    if (node != NULL && strcmp(node, MULTI_HOST) == 0 && service != NULL) {
        int port = atoi(service);
        *res = fake_ai(AF_INET, "127.0.0.1", port, fake_ai(AF_INET6, "::1", port, NULL));
        return *res != NULL ? 0 : EAI_MEMORY;
    }
    int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    *(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
    return real(node, service, hints, res);
}

TK_TEST(socket, connect_falls_back_to_next_address)
{
    /* ::1 listens; 127.0.0.1 with the same port is held bound without listening, so
     * the first address is refused for sure. */
    tlskit_config *s = tk_server_config("server");
    tlskit_listener *l = tk_listen(s, "::1", "0");
    int port = tlskit_listener_port(l);
    int hold = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (bind(hold, (struct sockaddr *)&sin, sizeof sin) != 0) {
        close(hold);
        tlskit_listener_free(l);
        tlskit_config_free(s);
        cr_skip_test("port %d is taken on 127.0.0.1", port);
    }
    struct serve_arg a = {.l = l};
    pthread_t t = tk_thread_start(serve_one, &a);
    tlskit_config *c = tk_client_config("ca.crt");
    tlskit_config_insecure_noverifyname(c); /* the certificate does not name the fake host */
    tlskit_conn *conn = tlskit_conn_new(c);
    char portstr[16], want[64];
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(want, sizeof want, "[::1]:%d", port);
    int rc = tlskit_conn_connect(conn, MULTI_HOST, portstr);
    cr_expect_eq(rc, 0, "connect %s:%d (127.0.0.1 refuses, ::1 listens): %s", MULTI_HOST, port,
                 tk_str(tlskit_conn_error(conn)));
    if (rc == 0) {
        cr_expect_str_eq(tk_str(tlskit_conn_peer_addr(conn)), want);
        cr_expect_eq(tlskit_conn_handshake(conn), 0, "%s", tk_str(tlskit_conn_error(conn)));
        tlskit_conn_close(conn);
    } else {
        tlskit_listener_close(l);
    }
    tlskit_conn_free(conn);
    tk_thread_join(t);
    close(hold);
    tlskit_listener_free(l);
    tlskit_config_free(s);
    tlskit_config_free(c);
}

/* When every address fails, the error names each one tried. */
TK_TEST(socket, connect_all_addresses_refused)
{
    int port;
    int hold4 = tk_tcp_bound("127.0.0.1", 0, &port);
    int hold6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
    int held6 = bind(hold6, (struct sockaddr *)&sin6, sizeof sin6) == 0;
    tlskit_config *c = tk_client_config("ca.crt");
    tlskit_conn *conn = tlskit_conn_new(c);
    char portstr[16], v4[64], v6[64];
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(v4, sizeof v4, "127.0.0.1:%d", port);
    snprintf(v6, sizeof v6, "[::1]:%d", port);
    int rc = tlskit_conn_connect(conn, MULTI_HOST, portstr);
    const char *msg = tlskit_conn_error(conn);
    cr_expect_eq(rc, -1);
    cr_expect_eq(tlskit_conn_error_code(conn), TLSKIT_E_CONNECT, "%s: %s",
                 tlskit_error_name(tlskit_conn_error_code(conn)), tk_str(msg));
    cr_expect(tk_contains(msg, v4), "message lacks %s: %s", v4, tk_str(msg));
    if (held6)
        cr_expect(tk_contains(msg, v6), "message lacks %s: %s", v6, tk_str(msg));
    cr_expect(tk_contains(msg, "Connection refused"), "%s", tk_str(msg));
    tlskit_conn_free(conn);
    tlskit_config_free(c);
    close(hold4);
    close(hold6);
}

/* ---- connection failures ----------------------------------------------------------------- */

TK_TEST(socket, connect_refused)
{
    int port;
    int hold = tk_tcp_bound("127.0.0.1", 0, &port); /* bound, not listening: refused */
    tlskit_config *c = tk_client_config("ca.crt");
    tlskit_conn *conn = tlskit_conn_new(c);
    char portstr[16], addr[64];
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    int rc = tlskit_conn_connect(conn, "127.0.0.1", portstr);
    const char *msg = tlskit_conn_error(conn);
    cr_expect_eq(rc, -1);
    cr_expect_eq(tlskit_conn_error_code(conn), TLSKIT_E_CONNECT, "%s: %s",
                 tlskit_error_name(tlskit_conn_error_code(conn)), tk_str(msg));
    cr_expect(tk_contains(msg, "Connection refused"), "%s", tk_str(msg));
    cr_expect(tk_contains(msg, addr), "message does not name %s: %s", addr, tk_str(msg));
    cr_expect_eq(tlskit_conn_fd(conn), -1);
    tlskit_conn_free(conn);
    tlskit_config_free(c);
    close(hold);
}

TK_TEST(socket, unresolvable_host)
{
    tlskit_config *c = tk_client_config("ca.crt");
    tlskit_conn *conn = tlskit_conn_new(c);
    int rc = tlskit_conn_connect(conn, "nonexistent.invalid", "443");
    const char *msg = tlskit_conn_error(conn);
    cr_expect_eq(rc, -1);
    cr_expect_eq(tlskit_conn_error_code(conn), TLSKIT_E_RESOLVE, "%s: %s",
                 tlskit_error_name(tlskit_conn_error_code(conn)), tk_str(msg));
    cr_expect(tk_contains(msg, "nonexistent.invalid"), "%s", tk_str(msg));
    tlskit_conn_free(conn);
    tlskit_config_free(c);
}

TK_TEST(socket, silent_server_handshake_deadline)
{
    int port;
    int lfd = tk_tcp_bound("127.0.0.1", 8, &port); /* listens, never accepts */
    tlskit_config *c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_timeout(c, TLSKIT_TIMEOUT_HANDSHAKE, 300), 0);
    tlskit_conn *conn = tlskit_conn_new(c);
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    cr_assert_eq(tlskit_conn_connect(conn, "localhost", portstr), 0, "%s",
                 tk_str(tlskit_conn_error(conn)));
    int64_t t0 = tk_now_ms();
    int rc = tlskit_conn_handshake(conn);
    int64_t dt = tk_now_ms() - t0;
    cr_expect_eq(rc, -1);
    cr_expect_eq(tlskit_conn_error_code(conn), TLSKIT_E_TIMEOUT, "%s: %s",
                 tlskit_error_name(tlskit_conn_error_code(conn)), tk_str(tlskit_conn_error(conn)));
    cr_expect(tk_contains(tlskit_conn_error(conn), portstr), "message does not name the peer: %s",
              tk_str(tlskit_conn_error(conn)));
    cr_expect_lt(dt, 10000, "300 ms deadline took %lld ms", (long long)dt);
    tlskit_conn_free(conn);
    tlskit_config_free(c);
    close(lfd);
}

/* A full accept queue drops SYNs, so connect() hangs: the CONNECT deadline ends it. */
TK_TEST(socket, connect_deadline)
{
    int port;
    int lfd = tk_tcp_bound("127.0.0.1", 1, &port);
    cr_assert_eq(listen(lfd, 0), 0);
    int filler[16], nfill = 0, full = 0;
    while (nfill < 16 && !full) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
        filler[nfill++] = fd;
        if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0)
            continue;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 300) == 0)
            full = 1; /* this one hangs: the queue is full */
    }
    if (!full) {
        for (int i = 0; i < nfill; i++)
            close(filler[i]);
        close(lfd);
        cr_skip_test("could not fill the accept queue: connect never hangs here");
    }
    tlskit_config *c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_timeout(c, TLSKIT_TIMEOUT_CONNECT, 300), 0);
    tlskit_conn *conn = tlskit_conn_new(c);
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int64_t t0 = tk_now_ms();
    int rc = tlskit_conn_connect(conn, "127.0.0.1", portstr);
    int64_t dt = tk_now_ms() - t0;
    cr_expect_eq(rc, -1, "connect to a full queue succeeded");
    cr_expect_eq(tlskit_conn_error_code(conn), TLSKIT_E_TIMEOUT, "%s: %s",
                 tlskit_error_name(tlskit_conn_error_code(conn)), tk_str(tlskit_conn_error(conn)));
    cr_expect_lt(dt, 10000, "300 ms connect deadline took %lld ms", (long long)dt);
    tlskit_conn_free(conn);
    tlskit_config_free(c);
    for (int i = 0; i < nfill; i++)
        close(filler[i]);
    close(lfd);
}

/* ---- TCP closes ---------------------------------------------------------------------------- */

static void connect_to_dropper(tlskit_listener *l, tlskit_config *c, tlskit_conn **out,
                               struct serve_arg *a, pthread_t *t)
{
    char port[16];
    snprintf(port, sizeof port, "%d", tlskit_listener_port(l));
    *a = (struct serve_arg){.l = l, .mode = 1};
    *t = tk_thread_start(serve_one, a);
    *out = tlskit_conn_new(c);
    cr_assert_eq(tlskit_conn_connect(*out, "127.0.0.1", port), 0, "%s",
                 tk_str(tlskit_conn_error(*out)));
    cr_assert_eq(tlskit_conn_handshake(*out), 0, "%s", tk_str(tlskit_conn_error(*out)));
}

TK_TEST(socket, tcp_truncation)
{
    tlskit_config *s = tk_server_config("server"), *c = tk_client_config("ca.crt");
    tlskit_listener *l = tk_listen(s, "127.0.0.1", "0");
    tlskit_conn *conn;
    struct serve_arg a;
    pthread_t t;
    connect_to_dropper(l, c, &conn, &a, &t);
    cr_assert_eq(tlskit_conn_write(conn, "x", 1), 1);
    tk_thread_join(t);
    char buf[16];
    ssize_t n = tlskit_conn_read(conn, buf, sizeof buf);
    cr_expect_eq(n, -1, "read after a drop without close_notify: %zd", n);
    cr_expect_eq(tlskit_conn_error_code(conn), TLSKIT_E_TRUNCATED, "%s: %s",
                 tlskit_error_name(tlskit_conn_error_code(conn)), tk_str(tlskit_conn_error(conn)));
    tlskit_conn_free(conn);
    tlskit_listener_free(l);
    tlskit_config_free(s);
    tlskit_config_free(c);
}

TK_TEST(socket, tcp_write_to_gone_peer_no_sigpipe)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
    sigemptyset(&dfl.sa_mask);
    cr_assert_eq(sigaction(SIGPIPE, &dfl, &old), 0);
    tlskit_config *s = tk_server_config("server"), *c = tk_client_config("ca.crt");
    tlskit_listener *l = tk_listen(s, "127.0.0.1", "0");
    tlskit_conn *conn;
    struct serve_arg a;
    pthread_t t;
    connect_to_dropper(l, c, &conn, &a, &t);
    cr_assert_eq(tlskit_conn_write(conn, "x", 1), 1);
    tk_thread_join(t);
    char buf[4096];
    memset(buf, 'y', sizeof buf);
    ssize_t n = 0;
    for (int i = 0; i < 50 && n >= 0; i++) {
        n = tlskit_conn_write(conn, buf, sizeof buf);
        if (n >= 0)
            poll(NULL, 0, 10); /* let the peer's RST arrive */
    }
    const char *msg = tlskit_conn_error(conn);
    cr_expect_eq(n, -1, "writes to a closed peer kept succeeding");
    cr_expect_eq(tlskit_conn_error_code(conn), TLSKIT_E_IO, "%s: %s",
                 tlskit_error_name(tlskit_conn_error_code(conn)), tk_str(msg));
    cr_expect(tk_contains(msg, "Broken pipe") || tk_contains(msg, "Connection reset"), "%s",
              tk_str(msg));
    tlskit_conn_free(conn);
    tlskit_listener_free(l);
    tlskit_config_free(s);
    tlskit_config_free(c);
    sigaction(SIGPIPE, &old, NULL);
}

/* ---- socket options from the config ------------------------------------------------------ */

TK_TEST(socket, socket_options_applied)
{
    tlskit_config *s = tk_server_config("server"), *c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_keepalive(c, 1, 30, 5, 3), 0);
    cr_assert_eq(tlskit_config_set_buffer_sizes(c, 65536, 65536), 0);
    tlskit_config_set_nodelay(c, 0);
    tlskit_listener *l = tk_listen(s, "127.0.0.1", "0");
    char port[16];
    snprintf(port, sizeof port, "%d", tlskit_listener_port(l));
    tlskit_conn *conn = tlskit_conn_new(c);
    cr_assert_eq(tlskit_conn_connect(conn, "127.0.0.1", port), 0);
    int fd = tlskit_conn_fd(conn), v = -1;
    socklen_t len = sizeof v;
    getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &len);
    cr_expect_eq(v, 1, "SO_KEEPALIVE");
    len = sizeof v;
    getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &len);
    cr_expect_eq(v, 30, "TCP_KEEPIDLE");
    len = sizeof v;
    getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, &len);
    cr_expect_eq(v, 5, "TCP_KEEPINTVL");
    len = sizeof v;
    getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, &len);
    cr_expect_eq(v, 3, "TCP_KEEPCNT");
    len = sizeof v;
    getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len);
    cr_expect_eq(v, 0, "TCP_NODELAY after set_nodelay(0)");
    len = sizeof v;
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len);
    cr_expect_geq(v, 65536, "SO_RCVBUF %d", v); /* Linux reports twice the request */
    tlskit_conn_free(conn);
    /* the server never accepted: drain the queue by closing the listener */
    tlskit_listener_free(l);
    tlskit_config_free(s);
    tlskit_config_free(c);
}
