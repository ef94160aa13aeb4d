/* SPDX-License-Identifier: MIT */
/* tlsserver's serving features: the three models, fd exhaustion, SIGHUP reload,
 * SIGUSR1 counters, --max-conns, and --mode http driven by curl. */
#include "common.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

TK_SUITE(server);

static int echo_via_tlsclient(const char *port, const char *msg)
{
    struct tk_proc p;
    const char *argv[] = {tk_client_bin(), "-q", "--ca", tk_cert("ca.crt"), "--timeout", "10",
                          "127.0.0.1", port, NULL};
    int rc = tk_run(&p, argv, msg, strlen(msg), 30000);
    int ok = rc == 0 && p.outbuf && strcmp(p.outbuf, msg) == 0;
    tk_proc_free(&p);
    return ok;
}

static long proc_cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the ")" of the command name: state is field 3; utime 14, stime 15. */
    const char *p = strrchr(buf, ')');
    cr_assert_not_null(p);
    long utime = 0, stime = 0;
    int field = 2;
    for (const char *q = p + 1; *q; q++) {
        if (*q == ' ') {
            field++;
            if (field == 14)
                utime = strtol(q + 1, NULL, 10);
            else if (field == 15)
                stime = strtol(q + 1, NULL, 10);
        }
    }
    return utime + stime;
}

/* Like tk_server_stop(), but keeps the output for inspection (tk_proc_free() after). */
static void stop_keep(struct tk_server *s)
{
    kill(s->p.pid, SIGTERM);
    int code = tk_proc_wait(&s->p, 30000);
    cr_assert_eq(code, 0, "tlsserver exit status %d after SIGTERM; stderr:\n%s", code,
                 s->p.errbuf);
}

/* ---- models ---- */

static void model_round_trip(const char *model)
{
    struct tk_server s;
    const char *extra[] = {"--model", model, "-q", NULL};
    tk_server_start(&s, "server", "127.0.0.1", extra);
    cr_assert(echo_via_tlsclient(s.portstr, "first client\n"), "model %s: echo failed", model);
    cr_assert(echo_via_tlsclient(s.portstr, "second client\n"), "model %s: echo failed", model);
    stop_keep(&s);
    cr_assert(tk_contains(s.p.errbuf, "counters:"), "no counters on exit: %s", s.p.errbuf);
    cr_assert(tk_contains(s.p.errbuf, "handshakes_ok=2"), "%s", s.p.errbuf);
    tk_proc_free(&s.p);
}

TK_TEST(server, event_model_echoes)
{
    model_round_trip("event");
}

TK_TEST(server, thread_model_echoes)
{
    model_round_trip("thread");
}

TK_TEST(server, iterative_model_echoes)
{
    model_round_trip("iterative");
}

TK_TEST(server, bad_model_mode_and_workers_are_usage_errors)
{
    const char *cases[][3] = {{"--model", "forked", "model"},
                              {"--mode", "chargen", "mode"},
                              {"--workers", "0", "workers"},
                              {"--body-size", "-1", "body-size"},
                              {"--write-timeout", "soon", "write-timeout"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tk_proc p;
        const char *argv[] = {tk_server_bin(), cases[i][0], cases[i][1], NULL};
        int rc = tk_run(&p, argv, NULL, 0, 30000);
        cr_assert_eq(rc, 2, "%s %s: exit %d", cases[i][0], cases[i][1], rc);
        cr_assert(tk_contains(p.errbuf, cases[i][2]), "%s", p.errbuf);
        tk_proc_free(&p);
    }
}

/* ---- running out of file descriptors ---- */

TK_TEST(server, fd_exhaustion_keeps_serving_and_recovers_without_spinning)
{
    /* The child inherits a small soft limit; ours is restored right after the spawn. */
    struct rlimit saved, small;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
    small = saved;
    small.rlim_cur = 48;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &small), 0);
    struct tk_server s;
    const char *extra[] = {"--workers", "2", "--handshake-timeout", "60", NULL};
    tk_server_start(&s, "server", "127.0.0.1", extra);
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);

    /* More silent clients than the server has descriptors for. */
    enum { N = 80 };
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = tk_tcp_connect("127.0.0.1", s.port);
    cr_assert(tk_proc_wait_for(&s.p, 2, "accept: Too many open files", 20000),
              "the server never said it hit its descriptor limit: %s", s.p.errbuf);

    /* At the limit with clients waiting: the server must idle, not spin. */
    long before = proc_cpu_ticks(s.p.pid);
    int64_t t0 = tk_now_ms();
    poll(NULL, 0, 1000); /* a measurement window, not a readiness wait */
    long ticks = proc_cpu_ticks(s.p.pid) - before;
    double secs = (double)(tk_now_ms() - t0) / 1000.0;
    double cpu = (double)ticks / (double)sysconf(_SC_CLK_TCK) / secs;
    cr_assert_lt(cpu, 0.5, "server used %.0f%% CPU while out of descriptors", cpu * 100);
    cr_assert_eq(kill(s.p.pid, 0), 0, "server died");

    /* Free the descriptors: the server recovers and serves a real client. */
    for (int i = 0; i < N; i++)
        close(fds[i]);
    int served = 0;
    int64_t end = tk_now_ms() + 30000;
    while (!served && tk_now_ms() < end)
        served = echo_via_tlsclient(s.portstr, "after the storm\n");
    cr_assert(served, "server did not recover: %s", s.p.errbuf);
    cr_expect(tk_proc_wait_for(&s.p, 2, "accepting connections again", 20000),
              "no line when accepting resumed: %s", s.p.errbuf);
    kill(s.p.pid, SIGUSR1);
    cr_assert(tk_proc_wait_for(&s.p, 2, "counters:", 20000));
    tk_server_stop(&s);
}

/* ---- limits ---- */

TK_TEST(server, max_conns_rejects_extra_connections)
{
    struct tk_server s;
    const char *extra[] = {"--max-conns", "2", NULL};
    tk_server_start(&s, "server", "127.0.0.1", extra);
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_conn *held[2];
    for (int i = 0; i < 2; i++) {
        held[i] = tlskit_conn_new(ccfg);
        cr_assert_eq(tlskit_conn_connect(held[i], "127.0.0.1", s.portstr), 0);
        cr_assert_eq(tlskit_conn_handshake(held[i]), 0, "%s", tlskit_conn_error(held[i]));
    }
    tlskit_conn *extra_conn = tlskit_conn_new(ccfg);
    cr_assert_eq(tlskit_conn_connect(extra_conn, "127.0.0.1", s.portstr), 0);
    cr_assert_eq(tlskit_conn_handshake(extra_conn), -1, "third connection was served");
    tlskit_conn_free(extra_conn);
    kill(s.p.pid, SIGUSR1);
    cr_assert(tk_proc_wait_for(&s.p, 2, "limit_rejections=1", 20000), "%s", s.p.errbuf);
    for (int i = 0; i < 2; i++) {
        tlskit_conn_close(held[i]);
        tlskit_conn_free(held[i]);
    }
    tlskit_config_free(ccfg);
    tk_server_stop(&s);
}

/* ---- reload ---- */

static void copy_pair(const char *dir, const char *from)
{
    char src[512], dst[512];
    const char *ext[] = {".crt", ".key"};
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof(src), "%s%s", from, ext[i]);
        size_t len = 0;
        char *data = tk_read_file(tk_cert(src), &len);
        snprintf(dst, sizeof(dst), "%s/live%s", dir, ext[i]);
        tk_write_file(dst, data, len);
        free(data);
    }
}

static char *fingerprint_of_new_conn(const char *port)
{
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_conn *c = tlskit_conn_new(ccfg);
    cr_assert_eq(tlskit_conn_connect(c, "127.0.0.1", port), 0);
    cr_assert_eq(tlskit_conn_handshake(c), 0, "%s", tlskit_conn_error(c));
    char *fp = strdup(tk_str(tlskit_conn_peer_cert_fingerprint(c)));
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    tlskit_config_free(ccfg);
    return fp;
}

static void reload_test(const char *model)
{
    char dir[256], crt[300], key[300];
    tk_tmpdir(dir, sizeof(dir));
    copy_pair(dir, "server");
    snprintf(crt, sizeof(crt), "%s/live.crt", dir);
    snprintf(key, sizeof(key), "%s/live.key", dir);
    struct tk_server s;
    const char *extra[] = {"--cert", crt, "--key", key, "--model", model, NULL};
    tk_server_start(&s, NULL, "127.0.0.1", extra);

    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_conn *old = tlskit_conn_new(ccfg);
    cr_assert_eq(tlskit_conn_connect(old, "127.0.0.1", s.portstr), 0);
    cr_assert_eq(tlskit_conn_handshake(old), 0, "%s", tlskit_conn_error(old));
    char *fp1 = strdup(tk_str(tlskit_conn_peer_cert_fingerprint(old)));

    copy_pair(dir, "rsa");
    kill(s.p.pid, SIGHUP);
    cr_assert(tk_proc_wait_for(&s.p, 2, "reload: new connections use", 20000), "%s",
              s.p.errbuf);
    char *fp2 = fingerprint_of_new_conn(s.portstr);
    cr_assert_str_neq(fp1, fp2, "new connection still got the old certificate");
    /* The open connection continues. */
    cr_assert_eq(tlskit_conn_write_all(old, "still here", 10), 0, "%s", tlskit_conn_error(old));
    char buf[16];
    tk_conn_read_exact(old, buf, 10);
    cr_assert(memcmp(buf, "still here", 10) == 0);

    /* A bad new key: the old material stays, and the log says why. */
    char *wrong = tk_read_file(tk_cert("client.key"), NULL);
    tk_write_file(key, wrong, strlen(wrong));
    free(wrong);
    kill(s.p.pid, SIGHUP);
    cr_assert(tk_proc_wait_for(&s.p, 2, "reload failed, keeping the old certificate", 20000),
              "%s", s.p.errbuf);
    cr_assert(tk_contains(s.p.errbuf, "does not match"), "%s", s.p.errbuf);
    char *fp3 = fingerprint_of_new_conn(s.portstr);
    cr_assert_str_eq(fp2, fp3, "a failed reload changed the certificate");

    tlskit_conn_close(old);
    tlskit_conn_free(old);
    tlskit_config_free(ccfg);
    free(fp1);
    free(fp2);
    free(fp3);
    tk_server_stop(&s);
    tk_rmtree(dir);
}

TK_TEST(server, sighup_reloads_certificate_event_model)
{
    reload_test("event");
}

TK_TEST(server, sighup_reloads_certificate_thread_model)
{
    reload_test("thread");
}

/* ---- --mode http with curl ---- */

static int curl_run(struct tk_proc *p, const char *const args[])
{
    const char *argv[32];
    int n = 0;
    argv[n++] = "/usr/bin/curl";
    argv[n++] = "-sS";
    argv[n++] = "--max-time";
    argv[n++] = "20";
    argv[n++] = "--cacert";
    argv[n++] = tk_cert("ca.crt");
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    cr_assert_eq(access("/usr/bin/curl", X_OK), 0,
                 "curl is missing: install the Debian package curl (scripts/setup.sh does)");
    return tk_run(p, argv, NULL, 0, 30000);
}

TK_TEST(server, http_mode_serves_curl_and_survives_malformed_requests)
{
    struct tk_server s;
    const char *extra[] = {"--mode", "http", "--body-size", "100", NULL};
    tk_server_start(&s, "server", "127.0.0.1", extra);
    char url[128], url2[128];
    snprintf(url, sizeof(url), "https://localhost:%d/", s.port);
    snprintf(url2, sizeof(url2), "https://localhost:%d/again", s.port);

    struct tk_proc p;
    const char *get[] = {"-i", "-v", url, url2, NULL};
    cr_assert_eq(curl_run(&p, get), 0, "%s", p.errbuf);
    cr_assert(tk_contains(p.outbuf, "HTTP/1.1 200 OK"), "%s", p.outbuf);
    cr_assert(tk_contains(p.outbuf, "Content-Length: 100"), "%s", p.outbuf);
    cr_assert(tk_contains(p.outbuf, "Content-Type: text/plain"), "%s", p.outbuf);
    cr_assert(tk_contains_ci(p.errbuf, "re-using existing connection") ||
                  tk_contains_ci(p.errbuf, "reusing existing connection"),
              "keep-alive not used: %s", p.errbuf);
    /* Body: exactly 100 bytes after the blank line of each response. */
    const char *body = strstr(p.outbuf, "\r\n\r\n");
    cr_assert_not_null(body);
    const char *next = strstr(body + 4, "HTTP/1.1 200 OK");
    cr_assert_not_null(next, "second response missing");
    cr_assert_eq(next - (body + 4), 100, "body is %td bytes", next - (body + 4));
    tk_proc_free(&p);

    const char *head[] = {"-I", url, NULL};
    cr_assert_eq(curl_run(&p, head), 0, "%s", p.errbuf);
    cr_assert(tk_contains(p.outbuf, "HTTP/1.1 200 OK"), "%s", p.outbuf);
    tk_proc_free(&p);

    const char *post[] = {"-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", "x=1",
                          url, NULL};
    cr_assert_eq(curl_run(&p, post), 0, "%s", p.errbuf);
    cr_assert_str_eq(p.outbuf, "405");
    tk_proc_free(&p);

    /* Malformed requests through a TLS client: 400 and the connection closes. */
    const char *bad[] = {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\n\r\n", /* no Host */
                         "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                         "GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
                         "GET / HTTP/9.9\r\nHost: x\r\n\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *argv[] = {tk_client_bin(), "-q", "--ca", tk_cert("ca.crt"), "127.0.0.1",
                              s.portstr, NULL};
        int rc = tk_run(&p, argv, bad[i], strlen(bad[i]), 30000);
        cr_assert_eq(rc, 0, "case %zu: exit %d %s", i, rc, p.errbuf);
        cr_assert(tk_contains(p.outbuf, "HTTP/1.1 400 Bad Request"), "case %zu: %s", i,
                  p.outbuf);
        tk_proc_free(&p);
    }
    /* An oversized header section: 431. */
    size_t big = 20000;
    char *huge = malloc(big + 64);
    int off = snprintf(huge, 64, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(huge + off, 'a', big);
    memcpy(huge + off + big, "\r\n\r\n", 5);
    const char *argv[] = {tk_client_bin(), "-q", "--ca", tk_cert("ca.crt"), "127.0.0.1",
                          s.portstr, NULL};
    tk_run(&p, argv, huge, strlen(huge), 30000);
    cr_assert(tk_contains(p.outbuf, "HTTP/1.1 431"), "%s", p.outbuf);
    tk_proc_free(&p);
    free(huge);

    /* Still serving. */
    const char *again[] = {url, NULL};
    cr_assert_eq(curl_run(&p, again), 0, "%s", p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

TK_TEST(server, discard_mode_reads_and_sends_nothing)
{
    struct tk_server s;
    const char *extra[] = {"--mode", "discard", NULL};
    tk_server_start(&s, "server", "127.0.0.1", extra);
    struct tk_proc p;
    const char *argv[] = {tk_client_bin(), "--ca", tk_cert("ca.crt"), "127.0.0.1", s.portstr,
                          NULL};
    cr_assert_eq(tk_run(&p, argv, "dropped\n", 8, 30000), 0, "%s", p.errbuf);
    cr_assert_str_eq(p.outbuf, "");
    tk_proc_free(&p);
    stop_keep(&s);
    cr_assert(tk_contains(s.p.errbuf, "in=8 out=0"), "%s", s.p.errbuf);
    tk_proc_free(&s.p);
}

TK_TEST(server, idle_timeout_closes_quiet_client)
{
    struct tk_server s;
    const char *extra[] = {"--idle-timeout", "0.5", NULL};
    tk_server_start(&s, "server", "127.0.0.1", extra);
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_READ, 20000);
    tlskit_conn *c = tlskit_conn_new(ccfg);
    cr_assert_eq(tlskit_conn_connect(c, "127.0.0.1", s.portstr), 0);
    cr_assert_eq(tlskit_conn_handshake(c), 0);
    char b[8];
    int64_t t0 = tk_now_ms();
    ssize_t n = tlskit_conn_read(c, b, sizeof(b));
    cr_assert_leq(n, 0, "server sent data");
    cr_assert_lt(tk_now_ms() - t0, 15000, "idle deadline not enforced");
    cr_assert(tk_proc_wait_for(&s.p, 2, "idle", 20000), "%s", s.p.errbuf);
    tlskit_conn_free(c);
    tlskit_config_free(ccfg);
    tk_server_stop(&s);
}
