/* SPDX-License-Identifier: MIT */
/* tlsclient --listen, the tunnel: plain TCP accepted locally, each connection carried
 * over a new verified TLS connection (the library engine's outbound connections),
 * sessions resumed across them. Against openssl s_server and against tlsserver
 * --verify-client (mTLS); a server that fails verification; the half-close both ways;
 * usage errors. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

TK_SUITE(tunnel);

#ifndef TK_OPENSSL_BIN
#define TK_OPENSSL_BIN "/usr/bin/openssl"
#endif

struct tunnel {
    struct tk_proc p;
    int port;
};

/* tlsclient --listen 127.0.0.1:0 [args...] HOST PORT: started, its port read from the
 * first stdout line. */
static void tunnel_start(struct tunnel *t, const char *const args[])
{
    const char *argv[40];
    int n = 0;
    argv[n++] = tk_client_bin();
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    for (int i = 0; args[i] && n < 38; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    memset(t, 0, sizeof(*t));
    tk_proc_start(&t->p, argv);
    cr_assert(tk_proc_wait_for(&t->p, 1, "\n", 30000), "no listening line: %s%s", t->p.outbuf,
              t->p.errbuf);
    const char *prefix = "tlsclient: listening on 127.0.0.1:";
    cr_assert(strncmp(t->p.outbuf, prefix, strlen(prefix)) == 0, "%s", t->p.outbuf);
    t->port = atoi(t->p.outbuf + strlen(prefix));
}

static void tunnel_stop(struct tunnel *t)
{
    kill(t->p.pid, SIGTERM);
    int rc = tk_proc_wait(&t->p, 30000);
    cr_expect_eq(rc, 0, "tlsclient --listen exit %d: %s", rc, t->p.errbuf);
    tk_proc_free(&t->p);
}

/* Through the tunnel with a plain socket: send in (then our FIN), read until the other
 * side's FIN or until want bytes came (want 0: to the FIN). The bytes read, in a new
 * buffer (*got_len). */
static unsigned char *plain_exchange(int port, const void *in, size_t len, size_t want,
                                     size_t *got_len)
{
    int fd = tk_tcp_connect("127.0.0.1", port);
    cr_assert(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
    size_t cap = (want ? want : len) + 65536, got = 0, sent = 0;
    unsigned char *out = malloc(cap);
    cr_assert_not_null(out);
    int shut = 0;
    int64_t end = tk_now_ms() + 60000;
    for (;;) {
        cr_assert_lt(tk_now_ms(), end, "tunnel exchange stuck: sent %zu, got %zu", sent, got);
        if (sent < len) {
            ssize_t n = send(fd, (const char *)in + sent, len - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
        } else if (!shut) {
            shutdown(fd, SHUT_WR);
            shut = 1;
        }
        if (got == cap) {
            cap *= 2;
            out = realloc(out, cap);
            cr_assert_not_null(out);
        }
        ssize_t n = recv(fd, out + got, cap - got, 0);
        if (n > 0) {
            got += (size_t)n;
            if (want && got >= want)
                break;
            continue;
        }
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            break;
        struct pollfd p = {.fd = fd, .events = (short)(POLLIN | (sent < len ? POLLOUT : 0))};
        poll(&p, 1, 100);
    }
    close(fd);
    *got_len = got;
    return out;
}

/* tlsserver --verify-client (mTLS) through the tunnel: a megabyte echoed byte-exact,
 * the client certificate seen by the server, the second connection resumed, and the
 * half-close carried both ways (our FIN -> close_notify -> the echo's close_notify ->
 * our FIN). */
TK_TEST(tunnel, against_tlsserver_verify_client)
{
    struct tk_server s;
    const char *sx[] = {"-v", "--verify-client", "--ca", tk_cert("ca.crt"), NULL};
    tk_server_start(&s, "server", "127.0.0.1", sx);
    struct tunnel t;
    const char *args[] = {"--ca", tk_cert("ca.crt"), "--cert", tk_cert("client.crt"), "--key",
                          tk_cert("client.key"), "--servername", "localhost", "127.0.0.1",
                          s.portstr, NULL};
    tunnel_start(&t, args);
    size_t len = 1000000, got;
    unsigned char *in = malloc(len);
    tk_fill_pattern(in, len, 12);
    unsigned char *out = plain_exchange(t.port, in, len, 0, &got);
    cr_expect_eq(got, len, "echoed %zu of %zu bytes", got, len);
    cr_expect(got == len && memcmp(in, out, len) == 0, "the echo differs");
    free(out);
    out = plain_exchange(t.port, "again\n", 6, 0, &got);
    cr_expect(got == 6 && memcmp(out, "again\n", 6) == 0, "second: got %zu bytes", got);
    free(out);
    free(in);
    cr_expect(tk_proc_wait_for_n(&t.p, 2, " ok\n", 2, 30000), "%s", t.p.errbuf);
    cr_expect(tk_contains(t.p.errbuf, "resumed=no in=1000000 out=1000000 "), "%s", t.p.errbuf);
    cr_expect(tk_contains(t.p.errbuf, "resumed=yes in=6 out=6 "), "%s", t.p.errbuf);
    cr_expect(tk_proc_wait_for(&s.p, 2, "client-cert=\"CN=tlskit-client", 30000), "%s",
              s.p.errbuf);
    tunnel_stop(&t);
    tk_server_stop(&s);
}

/* openssl s_server -rev: another TLS stack at the far end; the second connection
 * resumes with its ticket. */
TK_TEST(tunnel, against_openssl_s_server)
{
    const char *sargv[] = {TK_OPENSSL_BIN, "s_server", "-accept", "127.0.0.1:0", "-naccept",
                           "2", "-rev", "-cert", tk_cert("server.crt"), "-key",
                           tk_cert("server.key"), NULL};
    struct tk_proc srv;
    tk_proc_start(&srv, sargv);
    cr_assert(tk_proc_wait_for(&srv, 1, "ACCEPT ", 30000) && tk_proc_wait_for(&srv, 1, "\n", 30000),
              "no ACCEPT line: %s", srv.outbuf);
    char port[16];
    snprintf(port, sizeof(port), "%d", atoi(strrchr(strstr(srv.outbuf, "ACCEPT "), ':') + 1));
    struct tunnel t;
    const char *args[] = {"--ca", tk_cert("ca.crt"), "--servername", "localhost", "127.0.0.1",
                          port, NULL};
    tunnel_start(&t, args);
    for (int i = 0; i < 2; i++) {
        size_t got;
        unsigned char *out = plain_exchange(t.port, "hello\n", 6, 6, &got);
        cr_expect(got == 6 && memcmp(out, "olleh\n", 6) == 0, "%d: got %zu bytes: %.*s", i,
                  got, (int)got, out);
        free(out);
    }
    cr_expect(tk_proc_wait_for_n(&t.p, 2, "tunnel 127.0.0.1:", 2, 30000), "%s", t.p.errbuf);
    cr_expect(tk_contains(t.p.errbuf, " resumed=no "), "%s", t.p.errbuf);
    cr_expect(tk_contains(t.p.errbuf, " resumed=yes "), "%s", t.p.errbuf);
    tunnel_stop(&t);
    tk_proc_wait(&srv, 30000);
    tk_proc_free(&srv);
}

/* A server that does not verify (its certificate is for another name): the tunnel
 * closes the local connection without a byte and says why; it keeps serving. */
TK_TEST(tunnel, verification_failure_closes_the_local_side)
{
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", NULL);
    struct tunnel t;
    const char *args[] = {"--ca", tk_cert("ca.crt"), "--servername", "not-this-name.example",
                          "127.0.0.1", s.portstr, NULL};
    tunnel_start(&t, args);
    size_t got;
    unsigned char *out = plain_exchange(t.port, "x", 1, 0, &got);
    cr_expect_eq(got, 0);
    free(out);
    cr_expect(tk_proc_wait_for(&t.p, 2, "error=TLSKIT_E_VERIFY: ", 30000), "%s", t.p.errbuf);
    /* The next one fails the same way: the tunnel is still there. */
    out = plain_exchange(t.port, "x", 1, 0, &got);
    cr_expect_eq(got, 0);
    free(out);
    cr_expect(tk_proc_wait_for_n(&t.p, 2, "error=TLSKIT_E_VERIFY: ", 2, 30000), "%s",
              t.p.errbuf);
    tunnel_stop(&t);
    tk_server_stop(&s);
}

/* Nothing listens at HOST PORT: the local connection is closed, the reason logged. */
TK_TEST(tunnel, server_down)
{
    int port;
    int fd = tk_tcp_bound("127.0.0.1", 0, &port);
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct tunnel t;
    const char *args[] = {"--ca", tk_cert("ca.crt"), "127.0.0.1", portstr, NULL};
    tunnel_start(&t, args);
    size_t got;
    unsigned char *out = plain_exchange(t.port, "x", 1, 0, &got);
    cr_expect_eq(got, 0);
    free(out);
    char line[128];
    snprintf(line, sizeof(line), "error=TLSKIT_E_CONNECT: connect to 127.0.0.1:%d: Connection "
             "refused", port);
    cr_expect(tk_proc_wait_for(&t.p, 2, line, 30000), "%s", t.p.errbuf);
    tunnel_stop(&t);
    close(fd);
}

TK_TEST(tunnel, usage_errors)
{
    static const struct {
        const char *args[8];
        const char *why;
    } cases[] = {
        {{"--listen", "a:b:c", "h", "1", NULL}, "--listen a:b:c: expected [HOST:]PORT"},
        {{"--listen", "99999", "h", "1", NULL}, "expected [HOST:]PORT"},
        {{"--listen", "0", "--reconnect", "1", "h", "1", NULL}, "--listen: not with --reconnect"},
        {{"--listen", "0", "--sess-out", "f", "h", "1", NULL}, "--listen: not with --sess-out"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tk_proc p;
        int rc = tk_run_app(&p, tk_client_bin(), cases[i].args, NULL, 0, 30000);
        cr_expect_eq(rc, 2, "case %zu: exit %d: %s", i, rc, p.errbuf);
        cr_expect(tk_contains(p.errbuf, cases[i].why), "case %zu: %s", i, p.errbuf);
        tk_proc_free(&p);
    }
}
