/* SPDX-License-Identifier: MIT */
/*
 * The rough edges a new user hits (issue 11), each as the user meets it: host and port
 * spellings ([::1]:4433, [::1] 4433, HOST:PORT) in every app, verification failures that
 * say what would help, tlsclient --idle-timeout, tlsbench explaining a run that measured
 * nothing, a full server refusing with an alert, a fatal alert that reaches a client
 * still sending (lingering close), bare-LF HTTP requests, and the server's idle timeout
 * closing with close_notify.
 */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

TK_SUITE(edges);

#define RUN_MS 60000

static const char *bench_bin(void)
{
    const char *p = getenv("TLSKIT_BENCH_BIN");
    cr_assert(p && *p, "TLSKIT_BENCH_BIN is not set");
    return p;
}

/* tlsclient with args and stdin "hello\n"; exit code, stdout checked when 0. */
static int hello(struct tk_proc *p, const char *const args[])
{
    int code = tk_run_app(p, tk_client_bin(), args, "hello\n", 6, RUN_MS);
    if (code == 0)
        cr_expect_str_eq(p->outbuf, "hello\n", "echo; stderr: %s", p->errbuf);
    return code;
}

/* ---- host and port spellings -------------------------------------------------------- */

TK_TEST(edges, client_host_port_spellings)
{
    static const char *const bind[] = {"--bind", "[::1]", NULL};
    struct tk_server s;
    tk_server_start(&s, "server", NULL, bind);
    cr_expect(tk_contains(s.listening, "[::1]:"), "--bind [::1]: %s", s.listening);

    char colon[64];
    snprintf(colon, sizeof(colon), "[::1]:%s", s.portstr);
    const char *const one[] = {"--ca", tk_cert("ca.crt"), colon, NULL};
    const char *const two[] = {"--ca", tk_cert("ca.crt"), "[::1]", s.portstr, NULL};
    const char *const bare[] = {"--ca", tk_cert("ca.crt"), "::1", s.portstr, NULL};
    const char *const *forms[] = {one, two, bare};
    for (size_t i = 0; i < 3; i++) {
        struct tk_proc p;
        int code = hello(&p, forms[i]);
        cr_expect_eq(code, 0, "form %zu: exit %d: %s", i, code, p.errbuf);
        tk_proc_free(&p);
    }
    tk_server_stop(&s);

    tk_server_start(&s, "server", "127.0.0.1", NULL);
    snprintf(colon, sizeof(colon), "localhost:%s", s.portstr);
    const char *const named[] = {"--ca", tk_cert("ca.crt"), colon, NULL};
    struct tk_proc p;
    int code = hello(&p, named);
    cr_expect_eq(code, 0, "HOST:PORT: exit %d: %s", code, p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

TK_TEST(edges, bad_spellings_are_usage_errors)
{
    static const struct {
        const char *a, *b, *why;
    } bad[] = {
        {"[::1", "443", "']' is missing"},
        {"::1:443", NULL, "ambiguous"},
        {"localhost:", NULL, "port is empty"},
        {"localhost:65536", NULL, "not a port number"},
        {"localhost", NULL, "port is missing"},
        {"https://localhost/", NULL, "URL"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *const args[] = {bad[i].a, bad[i].b, NULL};
        struct tk_proc p;
        int code = tk_run_app(&p, tk_client_bin(), args, NULL, 0, RUN_MS);
        cr_expect_eq(code, 2, "'%s': exit %d: %s", bad[i].a, code, p.errbuf);
        cr_expect(tk_contains(p.errbuf, bad[i].why), "'%s': %s", bad[i].a, p.errbuf);
        tk_proc_free(&p);
    }
    static const char *const bind[] = {"--bind", "[::1]:4433", NULL};
    struct tk_proc p;
    int code = tk_run_app(&p, tk_server_bin(), bind, NULL, 0, RUN_MS);
    cr_expect_eq(code, 2, "--bind [::1]:4433: exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, "--bind"), "%s", p.errbuf);
    tk_proc_free(&p);
}

TK_TEST(edges, bench_takes_host_port_like_the_client)
{
    static const char *const bind[] = {"--bind", "[::1]", NULL};
    struct tk_server s;
    tk_server_start(&s, "server", NULL, bind);
    char colon[64];
    snprintf(colon, sizeof(colon), "[::1]:%s", s.portstr);
    const char *const two[] = {"handshake", "-q", "-n", "3", "-c", "1", "--ca",
                               tk_cert("ca.crt"), "[::1]", s.portstr, NULL};
    const char *const one[] = {"handshake", "-q", "-n", "3", "-c", "1", "--ca",
                               tk_cert("ca.crt"), colon, NULL};
    const char *const *forms[] = {two, one};
    for (size_t i = 0; i < 2; i++) {
        struct tk_proc p;
        int code = tk_run_app(&p, bench_bin(), forms[i], NULL, 0, RUN_MS);
        cr_expect_eq(code, 0, "form %zu: exit %d: %s", i, code, p.errbuf);
        cr_expect(tk_contains(p.outbuf, "handshakes"), "%s", p.outbuf);
        tk_proc_free(&p);
    }
    tk_server_stop(&s);
}

/* ---- tlsbench says why nothing was measured ----------------------------------------- */

TK_TEST(edges, bench_url_without_http_says_why)
{
    static const char *const http[] = {"--mode", "http", NULL};
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", http);
    char url[64];
    snprintf(url, sizeof(url), "https://localhost:%s/", s.portstr);
    const char *const args[] = {"rr", "-d", "0.5", "-w", "0", "--timeout", "0.5", "--ca",
                                tk_cert("ca.crt"), url, NULL};
    struct tk_proc p;
    int code = tk_run_app(&p, bench_bin(), args, NULL, 0, RUN_MS);
    cr_expect_eq(code, 1, "exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, "--http was not given"), "no hint: %s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, "no requests completed"), "no summary: %s", p.errbuf);
    tk_proc_free(&p);

    /* The same URL with --http measures. */
    const char *const ok[] = {"rr", "-q", "-n", "5", "--http", "--ca", tk_cert("ca.crt"), url,
                              NULL};
    code = tk_run_app(&p, bench_bin(), ok, NULL, 0, RUN_MS);
    cr_expect_eq(code, 0, "--http: exit %d: %s", code, p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

TK_TEST(edges, bench_no_responses_says_why)
{
    static const char *const discard[] = {"--mode", "discard", NULL};
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", discard);
    const char *const args[] = {"rr", "-q", "-d", "0.5", "-w", "0", "--timeout", "0.5",
                                "--ca", tk_cert("ca.crt"), "localhost", s.portstr, NULL};
    struct tk_proc p;
    int code = tk_run_app(&p, bench_bin(), args, NULL, 0, RUN_MS);
    cr_expect_eq(code, 1, "exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, "no requests completed"), "%s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, "nothing was echoed back"), "%s", p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

/* ---- HTTP mode: a bare LF ends a line (RFC 9112 section 2.2) ------------------------ */

TK_TEST(edges, http_bare_lf_request_is_answered)
{
    static const char *const models[] = {"event", "thread"};
    for (size_t m = 0; m < 2; m++) {
        const char *const extra[] = {"--mode", "http", "--model", models[m], NULL};
        struct tk_server s;
        tk_server_start(&s, "server", "127.0.0.1", extra);
        const char *const args[] = {"--ca", tk_cert("ca.crt"), "localhost", s.portstr, NULL};
        static const char *const reqs[] = {
            "GET / HTTP/1.0\n\n",
            "GET / HTTP/1.1\nHost: localhost\nConnection: close\n\n",
            "GET / HTTP/1.1\r\nHost: localhost\nConnection: close\r\n\n",
        };
        for (size_t i = 0; i < 3; i++) {
            struct tk_proc p;
            int code = tk_run_app(&p, tk_client_bin(), args, reqs[i], strlen(reqs[i]), RUN_MS);
            cr_expect_eq(code, 0, "%s, request %zu: exit %d: %s", models[m], i, code,
                         p.errbuf);
            cr_expect(tk_matches(p.outbuf, "^HTTP/1\\.1 200 OK\r\n"), "%s, request %zu: %s",
                      models[m], i, tk_str(p.outbuf));
            tk_proc_free(&p);
        }
        /* A bare CR is still not a line end. */
        static const char bad[] = "GET / HTTP/1.0\rX: y\r\n\r\n";
        struct tk_proc p;
        int code = tk_run_app(&p, tk_client_bin(), args, bad, sizeof(bad) - 1, RUN_MS);
        cr_expect_eq(code, 0, "bare CR: exit %d: %s", code, p.errbuf);
        cr_expect(tk_matches(p.outbuf, "^HTTP/1\\.1 400 "), "bare CR: %s", tk_str(p.outbuf));
        tk_proc_free(&p);
        tk_server_stop(&s);
    }
}

/* ---- tlsclient --idle-timeout ------------------------------------------------------- */

/* tlsclient ARGS... localhost PORT with stdin left open (a script that never ends its
 * input): started, fed `in`, not closed. */
static void client_open_stdin(struct tk_proc *p, const char *const extra[], const char *port,
                              const char *in)
{
    const char *argv[16];
    int n = 0;
    argv[n++] = tk_client_bin();
    argv[n++] = "--ca";
    argv[n++] = tk_cert("ca.crt");
    for (int i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n++] = "localhost";
    argv[n++] = port;
    argv[n] = NULL;
    tk_proc_start(p, argv);
    if (in)
        tk_proc_feed(p, in, strlen(in), 0);
}

TK_TEST(edges, client_idle_timeout_ends_a_silent_relay)
{
    static const char *const discard[] = {"--mode", "discard", NULL};
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", discard);
    static const char *const idle[] = {"--idle-timeout", "0.5", NULL};
    struct tk_proc p;
    int64_t t0 = tk_now_ms();
    client_open_stdin(&p, idle, s.portstr, "into the void\n");
    int code = tk_proc_wait(&p, RUN_MS);
    int64_t dt = tk_now_ms() - t0;
    cr_expect_eq(code, 4, "exit %d (want 4): %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, "no data either way for 0.500 s (--idle-timeout)"), "%s",
              p.errbuf);
    cr_expect_geq(dt, 500, "ended after %lld ms, before the idle timeout", (long long)dt);
    tk_proc_free(&p);
    /* The server saw an orderly end: our close_notify, not a truncation. */
    cr_expect(tk_proc_wait_for(&s.p, 2, " ok", 30000), "server log: %s", s.p.errbuf);
    cr_expect(!tk_contains(s.p.errbuf, "truncat"), "server log: %s", s.p.errbuf);
    tk_server_stop(&s);
}

TK_TEST(edges, client_idle_timeout_is_reset_by_traffic)
{
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", NULL); /* echo */
    static const char *const idle[] = {"--idle-timeout", "2", NULL};
    struct tk_proc p;
    int64_t t0 = tk_now_ms();
    client_open_stdin(&p, idle, s.portstr, "one\n");
    cr_assert(tk_proc_wait_for(&p, 1, "one\n", 30000), "no echo: %s", p.errbuf);
    /* Traffic within the limit keeps the relay up past it: two pauses of 1.2 s, each
     * shorter than the limit, together longer (the client must still be there). */
    for (int i = 0; i < 2; i++) {
        cr_assert(!tk_proc_wait_for(&p, 2, "idle-timeout", 1200), "ended after %lld ms: %s",
                  (long long)(tk_now_ms() - t0), p.errbuf);
        tk_proc_feed(&p, "more\n", 5, 0);
        cr_assert(tk_proc_wait_for_n(&p, 1, "more\n", (size_t)i + 1, 30000), "%s", p.errbuf);
    }
    int code = tk_proc_wait(&p, RUN_MS); /* then silence: the timeout ends it */
    cr_expect_eq(code, 4, "exit %d: %s", code, p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

/* ---- the server's idle timeout is an orderly end ------------------------------------ */

TK_TEST(edges, server_idle_timeout_sends_close_notify)
{
    static const char *const models[] = {"event", "thread"};
    for (size_t m = 0; m < 2; m++) {
        const char *const extra[] = {"--idle-timeout", "0.3", "--model", models[m], NULL};
        struct tk_server s;
        tk_server_start(&s, "server", "127.0.0.1", extra);
        struct tk_proc p;
        client_open_stdin(&p, NULL, s.portstr, "hi\n");
        int code = tk_proc_wait(&p, RUN_MS); /* stdin stays open: the server ends it */
        cr_expect_eq(code, 0, "%s: exit %d (0: close_notify, not a truncation): %s",
                     models[m], code, p.errbuf);
        cr_expect_str_eq(p.outbuf, "hi\n", "%s", models[m]);
        cr_expect(!tk_contains(p.errbuf, "truncat"), "%s: %s", models[m], p.errbuf);
        tk_proc_free(&p);
        cr_expect(tk_proc_wait_for(&s.p, 2, "error=TLSKIT_E_TIMEOUT", 30000), "%s: log: %s",
                  models[m], s.p.errbuf);
        tk_server_stop(&s);
    }
}

/* ---- verification failures say what would help ------------------------------------- */

/* The library's own message (what any library user gets), in-process. */
TK_TEST(edges, library_verify_messages_name_issuer_store_and_names)
{
    static const struct {
        const char *server, *client_ca, *servername;
        const char *want;
    } cases[] = {
        {"server", "other-ca.crt", "localhost",
         "certificate verify failed: unable to get local issuer certificate: the issuer "
         "\"CN=tlskit local CA\" is not in the trust store (the CA file "},
        {"server", NULL, "localhost",
         "the issuer \"CN=tlskit local CA\" is not in the trust store (the system trust "
         "store)"},
        {"selfsigned", "ca.crt", "localhost",
         "\"CN=localhost\" is self-signed and not in the trust store (the CA file "},
        {"server", "ca.crt", "example.com",
         "hostname mismatch: expected \"example.com\", the certificate has DNS:localhost, "
         "IP:127.0.0.1"},
        {"wronghost", "ca.crt", "localhost",
         "expected \"localhost\", the certificate has DNS:wrong.example"},
        {"server", "ca.crt", "10.0.0.1",
         "IP address mismatch: expected \"10.0.0.1\", the certificate has DNS:localhost"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tk_side srv = {.cfg = tk_server_config(cases[i].server)};
        struct tk_side cli = {.cfg = tk_client_config(cases[i].client_ca),
                              .servername = cases[i].servername};
        tk_handshake_pair(&srv, &cli);
        cr_expect_eq(cli.code, TLSKIT_E_VERIFY, "case %zu: code %d: %s", i, cli.code, cli.err);
        cr_expect(tk_contains(cli.err, cases[i].want), "case %zu:\n  got  %s\n  want %s", i,
                  cli.err, cases[i].want);
        tk_side_free(&srv);
        tk_side_free(&cli);
        tlskit_config_free(srv.cfg);
        tlskit_config_free(cli.cfg);
    }
}

/* A server verifying client certificates says the same about a client's issuer. */
TK_TEST(edges, library_verify_message_for_client_certificates)
{
    struct tk_side srv = {.cfg = tk_server_config("server")};
    cr_assert_eq(tlskit_config_add_ca_file(srv.cfg, tk_cert("ca.crt")), 0);
    cr_assert_eq(tlskit_config_set_verify_client(srv.cfg, TLSKIT_VERIFY_CLIENT_REQUIRED), 0);
    struct tk_side cli = {.cfg = tk_client_config("ca.crt"), .servername = "localhost"};
    tk_config_keypair(cli.cfg, "client-otherca");
    tk_handshake_pair(&srv, &cli);
    cr_expect_eq(srv.code, TLSKIT_E_VERIFY, "server: code %d: %s", srv.code, srv.err);
    cr_expect(tk_contains(srv.err, "the issuer \"CN=tlskit other CA\" is not in the trust "
                          "store (the CA file "), "server: %s", srv.err);
    cr_expect(tk_contains(srv.err, "ca.crt)"), "server: %s", srv.err);
    tk_side_free(&srv);
    tk_side_free(&cli);
    tlskit_config_free(srv.cfg);
    tlskit_config_free(cli.cfg);
}

/* tlsclient adds what to do with its own options. */
TK_TEST(edges, client_verify_failures_suggest_the_fix)
{
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", NULL);
    const char *const system[] = {"localhost", s.portstr, NULL};
    const char *const other[] = {"--ca", tk_cert("other-ca.crt"), "localhost", s.portstr, NULL};
    const char *const name[] = {"--ca", tk_cert("ca.crt"), "--servername", "example.com",
                                "localhost", s.portstr, NULL};
    static const char *const want[][2] = {
        {"(the system trust store)", "hint: give --ca FILE"},
        {"other-ca.crt)", "hint: --ca/--capath does not hold the CA"},
        {"expected \"example.com\", the certificate has DNS:localhost", "--servername NAME"},
    };
    const char *const *args[] = {system, other, name};
    for (size_t i = 0; i < 3; i++) {
        struct tk_proc p;
        int code = tk_run_app(&p, tk_client_bin(), args[i], NULL, 0, RUN_MS);
        cr_expect_eq(code, 5, "case %zu: exit %d: %s", i, code, p.errbuf);
        cr_expect(tk_contains(p.errbuf, want[i][0]), "case %zu: %s", i, p.errbuf);
        cr_expect(tk_contains(p.errbuf, want[i][1]), "case %zu: %s", i, p.errbuf);
        tk_proc_free(&p);
    }
    tk_server_stop(&s);
}

/* ---- a fatal alert reaches a client that is still sending (lingering close) --------- */

/* python3 (a real TLS client from Debian, not ours): TLS 1.3 without a client
 * certificate, so its handshake ends before the server refuses it; it keeps writing,
 * then reads, and prints what it got; then it goes on writing raw bytes and prints when
 * the server finally closed. */
static const char keep_writing_py[] =
    "import os, select, socket, ssl, sys, time\n"
    "ctx = ssl.create_default_context(cafile=sys.argv[1])\n"
    "s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[2]))),\n"
    "                    server_hostname='localhost')\n"
    "try:\n"
    "    for i in range(16):\n"
    "        s.sendall(b'x' * 1024)\n"
    "        time.sleep(0.01)\n"
    "    print('read', s.recv(100), flush=True)\n"
    "except ssl.SSLError as e:\n"
    "    print('alert', e.reason, flush=True)\n"
    "except OSError as e:\n"
    "    print('oserror', e, flush=True)\n"
    "t0 = time.monotonic()\n"
    "fd = s.fileno()\n"
    "try:\n"
    "    while time.monotonic() - t0 < 30:\n"
    "        os.write(fd, b'y' * 100)\n"
    "        if select.select([fd], [], [], 0.05)[0] and not os.read(fd, 65536):\n"
    "            break\n"
    "except OSError:\n"
    "    pass\n"
    "print('closed after %.1f s' % (time.monotonic() - t0), flush=True)\n";

TK_TEST(edges, fatal_alert_reaches_a_client_still_sending)
{
    static const char *const models[] = {"event", "thread"};
    for (size_t m = 0; m < 2; m++) {
        const char *const extra[] = {"--verify-client", "--ca", tk_cert("ca.crt"),
                                     "--max-conns", "1", "--model", models[m], NULL};
        struct tk_server s;
        tk_server_start(&s, "server", "127.0.0.1", extra);
        const char *const py[] = {"/usr/bin/python3", "-c", keep_writing_py,
                                  tk_cert("ca.crt"), s.portstr, NULL};
        struct tk_proc p;
        tk_proc_start(&p, py);
        cr_expect(tk_proc_wait_for(&p, 1, "\n", 30000), "%s: python said nothing: %s",
                  models[m], p.errbuf);
        cr_expect(tk_contains(p.outbuf, "alert TLSV13_ALERT_CERTIFICATE_REQUIRED"),
                  "%s: the client did not get the alert: %s%s", models[m], p.outbuf, p.errbuf);

        /* While it lingers, the refused client holds no slot of --max-conns 1 (in the
         * thread model its thread does, for the bounded linger). */
        if (m == 0) {
            const char *const ok[] = {"--ca", tk_cert("ca.crt"), "--cert",
                                      tk_cert("client.crt"), "--key", tk_cert("client.key"),
                                      "localhost", s.portstr, NULL};
            struct tk_proc c;
            int code = hello(&c, ok);
            cr_expect_eq(code, 0, "a client during the linger: exit %d: %s", code, c.errbuf);
            tk_proc_free(&c);
        }
        int code = tk_proc_wait(&p, RUN_MS);
        cr_expect_eq(code, 0, "python: %d: %s", code, p.errbuf);
        double secs = 99;
        const char *closed = strstr(p.outbuf, "closed after ");
        cr_expect(closed && sscanf(closed, "closed after %lf", &secs) == 1, "%s", p.outbuf);
        cr_expect_lt(secs, 20.0, "%s: the lingering close is not bounded: %s", models[m],
                     p.outbuf);
        tk_proc_free(&p);
        tk_server_stop(&s);
    }
}

/* ---- a full server refuses with an alert, and says so once a second ---------------- */

static void full_server_refuses(const char *model)
{
    const char *const extra[] = {"--max-conns", "1", "--model", model, NULL};
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", extra);
    struct tk_proc hold;
    client_open_stdin(&hold, NULL, s.portstr, "hold\n");
    cr_assert(tk_proc_wait_for(&hold, 1, "hold\n", 30000), "%s", hold.errbuf);

    for (int i = 0; i < 3; i++) {
        struct tk_proc p;
        const char *const args[] = {"--ca", tk_cert("ca.crt"), "localhost", s.portstr, NULL};
        int code = tk_run_app(&p, tk_client_bin(), args, "x\n", 2, RUN_MS);
        cr_expect_eq(code, 6, "%s: refused client %d: exit %d: %s", model, i, code, p.errbuf);
        cr_expect(tk_contains(p.errbuf, "alert internal error"), "%s: client %d: %s", model, i,
                  p.errbuf);
        cr_expect(!tk_contains_ci(p.errbuf, "reset"), "%s: client %d: %s", model, i, p.errbuf);
        tk_proc_free(&p);
    }
    cr_expect(tk_proc_wait_for(&s.p, 2, "refused: too many connections (", 30000),
              "%s: server log: %s", model, s.p.errbuf);
    cr_expect(tk_contains(s.p.errbuf, "max_conns 1") || tk_contains(s.p.errbuf, "--max-conns 1"),
              "%s: server log: %s", model, s.p.errbuf);
    tk_proc_feed(&hold, NULL, 0, 1);
    cr_expect_eq(tk_proc_wait(&hold, RUN_MS), 0, "%s", hold.errbuf);
    tk_proc_free(&hold);
    tk_server_stop(&s);
}

/* Both models: the thread model refuses through tlskit_conn_refuse(). */
TK_TEST(edges, full_server_refuses_with_an_alert)
{
    full_server_refuses("event");
    full_server_refuses("thread");
}
