/* SPDX-License-Identifier: MIT */
/*
 * Listening sockets made elsewhere: tlskit_listener_adopt_fds() and
 * tlskit_engine_adopt_fds() (checks, serving), and tlsserver under systemd socket
 * activation (LISTEN_PID / LISTEN_FDS), started by systemd-socket-activate from Debian's
 * systemd package as a unit would start it: the "listening on" line shows the real
 * address, and instances started one after another on the same socket keep the port
 * open (no client refused while none runs).
 */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

TK_SUITE(activation);

#define SOCKET_ACTIVATE "/usr/bin/systemd-socket-activate"

static void adopt_refused(int fd, const char *why)
{
    tlskit_config *cfg = tk_server_config("server");
    tlskit_listener *l = tlskit_listener_new(cfg);
    cr_expect_eq(tlskit_listener_adopt_fds(l, &fd, 1), -1);
    cr_expect_eq(tlskit_listener_error_code(l), TLSKIT_E_LISTEN);
    cr_expect(tk_contains(tlskit_listener_error(l), why), "%s", tlskit_listener_error(l));
    tlskit_listener_free(l);
    tlskit_config_free(cfg);
}

TK_TEST(activation, adopt_refuses_what_is_not_a_listening_tcp_socket)
{
    int port;
    int bound = tk_tcp_bound("127.0.0.1", 0, &port); /* bound, not listening */
    adopt_refused(bound, "not listening");
    close(bound);
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    adopt_refused(udp, "not a stream socket");
    close(udp);
    int un = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "tlskit-adopt-%d", (int)getpid());
    cr_assert_eq(bind(un, (struct sockaddr *)&sun, sizeof(sun)), 0);
    cr_assert_eq(listen(un, 4), 0);
    adopt_refused(un, "not a TCP socket");
    close(un);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    adopt_refused(fds[0], "Socket operation on non-socket");
    close(fds[0]);
    close(fds[1]);
    adopt_refused(-1, "Bad file descriptor");

    tlskit_config *cfg = tk_server_config("server");
    struct tlskit_engine_handlers h = {0};
    tlskit_engine *e = tlskit_engine_new(cfg, &h);
    cr_expect_eq(tlskit_engine_adopt_fds(e, NULL, 0), -1);
    cr_expect_eq(tlskit_engine_error_code(e), TLSKIT_E_INVALID);
    tlskit_engine_free(e);
    tlskit_config_free(cfg);
}

static void echo(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    (void)arg;
    tlskit_conn_write(c, d, n);
}

/* One byte over a verified TLS connection to 127.0.0.1:port. */
static void ping(int port)
{
    tlskit_config *cfg = tk_client_config("ca.crt");
    tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, 20000);
    tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_READ, 20000);
    tlskit_conn *c = tlskit_conn_new(cfg);
    int fd = tk_tcp_connect("127.0.0.1", port);
    cr_assert_eq(tlskit_conn_wrap_client(c, fd, "localhost"), 0);
    cr_assert_eq(tlskit_conn_handshake(c), 0, "%s", tlskit_conn_error(c));
    cr_assert_eq(tlskit_conn_write_all(c, "x", 1), 0);
    char b = 0;
    cr_assert_eq(tlskit_conn_read(c, &b, 1), 1, "%s", tlskit_conn_error(c));
    cr_assert_eq(b, 'x');
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    close(fd);
}

TK_TEST(activation, engine_and_listener_serve_adopted_sockets)
{
    int port;
    int lfd = tk_tcp_bound("127.0.0.1", 16, &port);
    tlskit_config *cfg = tk_server_config("server");
    struct tlskit_engine_handlers h = {.on_data = echo};
    tlskit_engine *e = tlskit_engine_new(cfg, &h);
    cr_assert_eq(tlskit_engine_set_workers(e, 3), 0);
    cr_assert_eq(tlskit_engine_adopt_fds(e, &lfd, 1), 0, "%s", tlskit_engine_error(e));
    cr_expect_eq(tlskit_engine_port(e), port);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", port);
    cr_expect_str_eq(tlskit_engine_addrs(e), want);
    cr_assert_eq(tlskit_engine_start(e), 0);
    for (int i = 0; i < 6; i++) /* whichever worker takes each */
        ping(port);
    tlskit_engine_free(e); /* closes the duplicates; the original was closed at adopt */

    lfd = tk_tcp_bound("127.0.0.1", 16, &port);
    tlskit_listener *l = tlskit_listener_new(cfg);
    cr_assert_eq(tlskit_listener_adopt_fds(l, &lfd, 1), 0, "%s", tlskit_listener_error(l));
    cr_expect_eq(tlskit_listener_port(l), port);
    struct tk_byte_server bs = {.l = l, .conns = 1};
    pthread_t t = tk_thread_start(tk_byte_server_main, &bs);
    ping(port);
    tk_thread_join(t);
    cr_expect_str_eq(bs.err, "");
    tlskit_listener_free(l);
    tlskit_config_free(cfg);
}

/* ---- tlsserver, socket-activated ---- */

static int free_port(void)
{
    int port;
    int fd = tk_tcp_bound("127.0.0.1", 0, &port);
    close(fd);
    return port;
}

static void need_socket_activate(void)
{
    if (access(SOCKET_ACTIVATE, X_OK) != 0)
        cr_skip_test("systemd-socket-activate is not installed (scripts/setup.sh: systemd)");
}

static void activated(const char *model)
{
    need_socket_activate();
    int port = free_port();
    char listen_arg[64], line[96];
    snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%d", port);
    snprintf(line, sizeof(line), "tlsserver: listening on 127.0.0.1:%d\n", port);
    const char *argv[] = {SOCKET_ACTIVATE, "-l", listen_arg, tk_server_bin(),
                          "--cert", tk_cert("server.crt"), "--key", tk_cert("server.key"),
                          "--model", model, "--bind", "::1", "--port", "1", NULL};
    struct tk_proc p;
    tk_proc_start(&p, argv);
    cr_assert(tk_proc_wait_for(&p, 2, "Listening on", 20000), "%s", tk_str(p.errbuf));
    /* systemd-socket-activate starts the service at the first client, as systemd does. */
    ping(port);
    cr_assert(tk_proc_wait_for(&p, 1, line, 20000), "stdout: %s", tk_str(p.outbuf));
    cr_expect(strncmp(p.outbuf, line, strlen(line)) == 0, "first line: %s", p.outbuf);
    ping(port);
    kill(p.pid, SIGTERM); /* the service itself: systemd-socket-activate exec'd it */
    cr_expect_eq(tk_proc_wait(&p, 20000), 0, "%s", tk_str(p.errbuf));
    cr_expect(tk_contains(p.errbuf, "accepted=2"), "%s", tk_str(p.errbuf));
    tk_proc_free(&p);
}

TK_TEST(activation, tlsserver_event_model)
{
    activated("event");
}

TK_TEST(activation, tlsserver_thread_model)
{
    activated("thread");
}

/* A service restarted on the same socket (each instance serves one client, one at a
 * time, then exits and the next starts): the port stays open between them, so no client is refused. */
TK_TEST(activation, restarts_keep_the_port_open)
{
    need_socket_activate();
    int port = free_port();
    char listen_arg[64], line[96];
    snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%d", port);
    snprintf(line, sizeof(line), "tlsserver: listening on 127.0.0.1:%d", port);
    /* LISTEN_PID must name the service's own process: each instance is exec'd by a shell
     * that sets it to its own PID, as systemd's fork-then-exec does. */
    const char *loop = "i=0; while [ $i -lt 4 ]; do "
                       "sh -c 'LISTEN_PID=$$ exec \"$0\" \"$@\"' \"$@\" --model iterative --exit-after 1 || exit 1;"
                       " i=$((i+1)); done";
    const char *argv[] = {SOCKET_ACTIVATE, "-l", listen_arg, "/bin/sh", "-c", loop, "sh",
                          tk_server_bin(), "--cert", tk_cert("server.crt"), "--key",
                          tk_cert("server.key"), NULL};
    struct tk_proc p;
    tk_proc_start(&p, argv);
    cr_assert(tk_proc_wait_for(&p, 2, "Listening on", 20000), "%s", tk_str(p.errbuf));
    for (int i = 0; i < 4; i++)
        ping(port); /* some of them connect while no instance runs */
    cr_expect_eq(tk_proc_wait(&p, 30000), 0, "%s", tk_str(p.errbuf));
    cr_expect(tk_proc_wait_for_n(&p, 1, line, 4, 1000), "stdout: %s", tk_str(p.outbuf));
    tk_proc_free(&p);
}

/* LISTEN_PID of another process: the variables are not ours, --bind/--port apply. A
 * LISTEN_FDS that is not a count, or a descriptor that is no listening socket: exit 1
 * with the reason. */
TK_TEST(activation, environment_checks)
{
    const char *foreign[] = {"/usr/bin/env", "LISTEN_PID=1", "LISTEN_FDS=1", tk_server_bin(),
                             "--cert", tk_cert("server.crt"), "--key", tk_cert("server.key"),
                             "--bind", "127.0.0.1", "--port", "0", "--exit-after", "1",
                             NULL};
    struct tk_proc p;
    tk_proc_start(&p, foreign);
    cr_assert(tk_proc_wait_for(&p, 1, "listening on 127.0.0.1:", 20000), "%s",
              tk_str(p.errbuf));
    int port = atoi(strrchr(p.outbuf, ':') + 1);
    cr_assert_gt(port, 0);
    ping(port);
    cr_expect_eq(tk_proc_wait(&p, 20000), 0, "%s", tk_str(p.errbuf));
    tk_proc_free(&p);

    static const struct {
        const char *script, *why;
    } bad[] = {
        {"LISTEN_PID=$$ LISTEN_FDS=x exec \"$@\"", "LISTEN_FDS 'x' is not a count"},
        {"LISTEN_PID=$$ LISTEN_FDS=1 exec \"$@\" 3</dev/null",
         "listen on given socket fd 3: Socket operation on non-socket"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *argv[] = {"/bin/sh", "-c", bad[i].script, "sh", tk_server_bin(),
                              "--cert", tk_cert("server.crt"), "--key",
                              tk_cert("server.key"), NULL};
        int rc = tk_run(&p, argv, NULL, 0, 20000);
        cr_expect_eq(rc, 1, "%s: exit %d", bad[i].script, rc);
        cr_expect(tk_contains(p.errbuf, bad[i].why), "%s", tk_str(p.errbuf));
        tk_proc_free(&p);
    }
}
