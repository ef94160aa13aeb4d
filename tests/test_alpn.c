/* SPDX-License-Identifier: MIT */
/*
 * ALPN (RFC 7301, lib/src/alpn.c): the list parser, the server's choice in its own order,
 * the no_application_protocol refusal, in-process over socketpairs; then tlsserver --alpn
 * against openssl s_client -alpn, curl (--http1.1 / --http2) and Python's
 * set_alpn_protocols, and tlsclient --alpn against openssl s_server -alpn and a Python
 * server. Bad lists are usage errors naming --alpn.
 */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TK_SUITE(alpn);

#define RUN_MS 60000
#define OPENSSL "/usr/bin/openssl"
#define CURL "/usr/bin/curl"
#define PYTHON "/usr/bin/python3"

/* ---- the list ---------------------------------------------------------------------- */

TK_TEST(alpn, list_syntax)
{
    char n255[300], n256[300];
    memset(n255, 'a', 255);
    n255[255] = '\0';
    memset(n256, 'b', 256);
    n256[256] = '\0';
    const char *good[] = {"h2", "h2,http/1.1", "http/1.1,h2,acme-tls/1", n255};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char why[160] = "x";
        cr_expect_eq(tlskit_alpn_check(good[i], why, sizeof why), 0, "%.40s: %s", good[i], why);
        cr_expect_str_empty(why);
        tlskit_config *cfg = tlskit_config_new();
        cr_expect_eq(tlskit_config_set_alpn(cfg, good[i]), 0, "%s", tlskit_config_error(cfg));
        tlskit_config_free(cfg);
    }
    static const struct {
        const char *list, *why;
    } bad[] = {
        {"", "the list is empty"},
        {",", "empty protocol name at position 1"},
        {"h2,", "empty protocol name at position 4"},
        {",h2", "empty protocol name at position 1"},
        {"h2,,http/1.1", "empty protocol name at position 4"},
        {"h2 ,http/1.1", "byte 0x20 at position 3"},
        {"h2\t", "byte 0x09 at position 3"},
        {"h\xc3\xa9", "byte 0xc3 at position 2"},
        {"h2,http/1.1,h2", "protocol \"h2\" is listed twice"},
        {NULL, "protocol name at position 4 is 256 bytes (at most 255)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char list[320];
        snprintf(list, sizeof list, "%s", bad[i].list ? bad[i].list : "");
        if (!bad[i].list)
            snprintf(list, sizeof list, "h2,%s", n256);
        char why[160] = "";
        cr_expect_eq(tlskit_alpn_check(list, why, sizeof why), -1, "%.40s accepted", list);
        cr_expect(strncmp(why, bad[i].why, strlen(bad[i].why)) == 0, "%.40s: %s", list, why);
        cr_expect_eq(tlskit_alpn_check(list, NULL, 0), -1);
        tlskit_config *cfg = tlskit_config_new();
        if (*list) { /* "" turns ALPN off in the config call */
            cr_expect_eq(tlskit_config_set_alpn(cfg, list), -1, "%.40s", list);
            cr_expect_eq(tlskit_config_error_code(cfg), TLSKIT_E_INVALID);
            cr_expect(tk_contains(tlskit_config_error(cfg), bad[i].why), "%s",
                      tlskit_config_error(cfg));
        }
        tlskit_config_free(cfg);
    }
    cr_expect_eq(tlskit_alpn_check(NULL, NULL, 0), -1);
}

/* ---- in-process ---------------------------------------------------------------------- */

/* Handshake a server with ALPN list `s_alpn` against a client with `c_alpn` (NULL: none).
 * Returns 0 when both handshakes completed; *sel gets the client's selection. */
static int alpn_pair(const char *s_alpn, const char *c_alpn, char *sel, size_t sel_len,
                     char *cli_err, char *srv_err)
{
    tlskit_config *s = tk_server_config("server");
    tlskit_config *c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_alpn(s, s_alpn), 0, "%s", tlskit_config_error(s));
    cr_assert_eq(tlskit_config_set_alpn(c, c_alpn), 0, "%s", tlskit_config_error(c));
    struct tk_side srv = {.cfg = s}, cli = {.cfg = c, .servername = "localhost"};
    tk_handshake_pair(&srv, &cli);
    int rc = srv.rc == 0 && cli.rc == 0 ? 0 : -1;
    snprintf(sel, sel_len, "%s", rc == 0 ? tk_str(tlskit_conn_alpn_selected(cli.conn)) : "");
    if (rc == 0)
        cr_expect_str_eq(tk_str(tlskit_conn_alpn_selected(srv.conn)), sel,
                         "both ends agree");
    snprintf(cli_err, 1024, "%s", cli.err);
    snprintf(srv_err, 1024, "%s", srv.err);
    if (rc != 0)
        cr_expect_eq(cli.code, TLSKIT_E_PROTOCOL, "client: %s", cli.err);
    tk_side_free(&srv);
    tk_side_free(&cli);
    tlskit_config_free(s);
    tlskit_config_free(c);
    return rc;
}

TK_TEST(alpn, server_order_wins_and_no_overlap_is_refused)
{
    static const struct {
        const char *server, *client, *selected; /* selected NULL: refused */
    } cases[] = {
        {"h2,http/1.1", "http/1.1,h2", "h2"},
        {"http/1.1,h2", "h2,http/1.1", "http/1.1"},
        {"h2,http/1.1", "x,http/1.1", "http/1.1"},
        {"h2,http/1.1", NULL, "(null)"},     /* a client offering nothing is served */
        {NULL, "h2,http/1.1", "(null)"},     /* a server without ALPN ignores it */
        {"h2", "http/1.1", NULL},
        {"h2", "h22,h", NULL},               /* prefixes are not matches */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char sel[300], ce[1024], se[1024];
        int rc = alpn_pair(cases[i].server, cases[i].client, sel, sizeof sel, ce, se);
        if (cases[i].selected) {
            cr_expect_eq(rc, 0, "case %zu: client: %s; server: %s", i, ce, se);
            cr_expect_str_eq(sel, cases[i].selected, "case %zu", i);
        } else {
            cr_expect_eq(rc, -1, "case %zu: handshake succeeded with %s", i, sel);
            cr_expect(tk_contains(ce, "no application protocol"), "case %zu: %s", i, ce);
            cr_expect(tk_contains(se, "no application protocol"), "case %zu: %s", i, se);
        }
    }
}

TK_TEST(alpn, frozen_config_and_turning_off)
{
    tlskit_config *cfg = tlskit_config_new();
    cr_assert_eq(tlskit_config_set_alpn(cfg, "h2"), 0);
    cr_assert_eq(tlskit_config_set_alpn(cfg, "bad,,list"), -1);
    cr_assert_eq(tlskit_config_set_alpn(cfg, ""), 0, "\"\" turns ALPN off");
    cr_assert_eq(tlskit_config_set_alpn(cfg, NULL), 0);
    tlskit_conn *c = tlskit_conn_new(cfg);
    cr_expect_eq(tlskit_config_set_alpn(cfg, "h2"), -1);
    cr_expect(tk_contains(tlskit_config_error(cfg), "config in use"), "%s",
              tlskit_config_error(cfg));
    cr_expect_null(tlskit_conn_alpn_selected(c), "nothing before a handshake");
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
}

/* ---- tlsserver --alpn against real clients ------------------------------------------ */

static void start_alpn_server(struct tk_server *s, const char *alpn, const char *mode)
{
    const char *args[] = {"--alpn", alpn, "--mode", mode, NULL};
    tk_server_start(s, "server", "127.0.0.1", args);
}

TK_TEST(alpn, tlsserver_with_openssl_s_client)
{
    struct tk_server s;
    start_alpn_server(&s, "h2,http/1.1", "echo");
    char connect[64];
    snprintf(connect, sizeof connect, "127.0.0.1:%d", s.port);
    static const struct {
        const char *offer, *want, *log;
    } cases[] = {
        {"http/1.1,h2", "ALPN protocol: h2", " alpn=h2 in="},
        {"http/1.1", "ALPN protocol: http/1.1", " alpn=http/1.1 in="},
        {NULL, "No ALPN negotiated", " alpn=- in="},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[] = {OPENSSL, "s_client", "-connect", connect, "-CAfile",
                              tk_cert("ca.crt"), "-servername", "localhost",
                              cases[i].offer ? "-alpn" : NULL, cases[i].offer, NULL};
        struct tk_proc p;
        int code = tk_run(&p, argv, "", 0, RUN_MS);
        cr_expect_eq(code, 0, "%s: exit %d: %s", tk_str(cases[i].offer), code, p.errbuf);
        cr_expect(tk_contains(p.outbuf, cases[i].want), "%s: %s", tk_str(cases[i].offer),
                  p.outbuf);
        tk_proc_free(&p);
        cr_expect(tk_proc_wait_for(&s.p, 2, cases[i].log, 10000), "no '%s': %s", cases[i].log,
                  s.p.errbuf);
    }
    /* Nothing in common: the no_application_protocol alert (RFC 7301 3.2). */
    const char *argv[] = {OPENSSL, "s_client", "-connect", connect, "-CAfile", tk_cert("ca.crt"),
                          "-servername", "localhost", "-alpn", "spdy/3,acme-tls/1", NULL};
    struct tk_proc p;
    int code = tk_run(&p, argv, "", 0, RUN_MS);
    cr_expect_neq(code, 0, "s_client succeeded: %s", p.outbuf);
    cr_expect(tk_contains(p.errbuf, "no application protocol"), "%s", p.errbuf);
    tk_proc_free(&p);
    cr_expect(tk_proc_wait_for(&s.p, 2, "error=TLSKIT_E_PROTOCOL", 10000), "%s", s.p.errbuf);
    cr_expect(tk_matches(s.p.errbuf, "alpn=- in=0 out=0 time=[0-9.]+s error=TLSKIT_E_PROTOCOL: "
                                     "[^\n]*no application protocol"), "%s", s.p.errbuf);
    tk_server_stop(&s);
}

static int curl_get(struct tk_proc *p, const struct tk_server *s, const char *version)
{
    char resolve[64], url[64];
    snprintf(resolve, sizeof resolve, "localhost:%d:127.0.0.1", s->port);
    snprintf(url, sizeof url, "https://localhost:%d/", s->port);
    const char *argv[] = {CURL, "-sS", "-v", version, "--cacert", tk_cert("ca.crt"),
                          "--resolve", resolve, "-o", "/dev/null", url, NULL};
    return tk_run(p, argv, "", 0, RUN_MS);
}

TK_TEST(alpn, tlsserver_with_curl)
{
    struct tk_server s;
    start_alpn_server(&s, "http/1.1", "http");
    struct tk_proc p;
    /* --http2 offers h2 and http/1.1; --http1.1 offers http/1.1 only. */
    const char *versions[] = {"--http2", "--http1.1"};
    for (size_t i = 0; i < 2; i++) {
        int code = curl_get(&p, &s, versions[i]);
        cr_expect_eq(code, 0, "%s: curl exit %d: %s", versions[i], code, p.errbuf);
        cr_expect(tk_contains(p.errbuf, "ALPN: server accepted http/1.1"), "%s: %s",
                  versions[i], p.errbuf);
        tk_proc_free(&p);
    }
    cr_expect(tk_proc_wait_for_n(&s.p, 2, " alpn=http/1.1 in=", 2, 10000), "%s", s.p.errbuf);
    tk_server_stop(&s);

    /* An h2-only server: curl --http2 gets h2 (the server then speaks HTTP/1.1, which is
     * not the point here), curl --http1.1 gets no_application_protocol. */
    start_alpn_server(&s, "h2", "http");
    curl_get(&p, &s, "--http2");
    cr_expect(tk_contains(p.errbuf, "ALPN: server accepted h2"), "%s", p.errbuf);
    tk_proc_free(&p);
    cr_expect(tk_proc_wait_for(&s.p, 2, " alpn=h2 in=", 10000), "%s", s.p.errbuf);
    int code = curl_get(&p, &s, "--http1.1");
    cr_expect_eq(code, 35, "curl exit %d (35: TLS handshake failed): %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, "no application protocol"), "%s", p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

TK_TEST(alpn, tlsserver_with_python_client)
{
    struct tk_server s;
    start_alpn_server(&s, "http/1.1,h2", "echo");
    static const char script[] =
        "import socket, ssl, sys\n"
        "ctx = ssl.create_default_context(cafile=sys.argv[1])\n"
        "ctx.set_alpn_protocols(sys.argv[3].split(','))\n"
        "with socket.create_connection(('127.0.0.1', int(sys.argv[2]))) as raw:\n"
        "    with ctx.wrap_socket(raw, server_hostname='localhost') as s:\n"
        "        print('selected', s.selected_alpn_protocol())\n"
        "        s.sendall(b'ping\\n')\n"
        "        assert s.recv(5) == b'ping\\n'\n";
    const char *offers[] = {"h2,http/1.1", "h2", "spdy/1"};
    const char *wants[] = {"selected http/1.1\n", "selected h2\n", NULL};
    for (size_t i = 0; i < 3; i++) {
        const char *argv[] = {PYTHON, "-c", script, tk_cert("ca.crt"), s.portstr, offers[i],
                              NULL};
        struct tk_proc p;
        int code = tk_run(&p, argv, "", 0, RUN_MS);
        if (wants[i]) {
            cr_expect_eq(code, 0, "%s: python exit %d: %s", offers[i], code, p.errbuf);
            cr_expect_str_eq(p.outbuf, wants[i], "%s", offers[i]);
        } else {
            cr_expect_neq(code, 0, "%s: python connected", offers[i]);
            cr_expect(tk_contains(p.errbuf, "no application protocol"), "%s", p.errbuf);
        }
        tk_proc_free(&p);
    }
    tk_server_stop(&s);
}

/* ---- tlsclient --alpn against real servers ----------------------------------------- */

/* A Python TLS server taking one connection with ALPN list `alpn`; prints the port, then
 * what it selected. */
static void python_server(struct tk_proc *p, const char *alpn, int *port)
{
    static const char script[] =
        "import socket, ssl, sys\n"
        "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
        "ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n"
        "ctx.set_alpn_protocols(sys.argv[3].split(','))\n"
        "ls = socket.create_server(('127.0.0.1', 0))\n"
        "print('port', ls.getsockname()[1], flush=True)\n"
        "conn, _ = ls.accept()\n"
        "with ctx.wrap_socket(conn, server_side=True) as s:\n"
        "    print('selected', s.selected_alpn_protocol(), flush=True)\n"
        "    data = s.recv(100)\n"
        "    s.sendall(data)\n"
        "    s.unwrap()\n";
    char crt[600], key[600];
    snprintf(crt, sizeof crt, "%s/server.crt", tk_certs_dir());
    snprintf(key, sizeof key, "%s/server.key", tk_certs_dir());
    const char *argv[] = {PYTHON, "-c", script, crt, key, alpn, NULL};
    tk_proc_start(p, argv);
    cr_assert(tk_proc_wait_for(p, 1, "\n", 30000), "no port: %s", p->errbuf);
    cr_assert(sscanf(p->outbuf, "port %d", port) == 1, "%s", p->outbuf);
}

TK_TEST(alpn, tlsclient_with_python_server)
{
    struct tk_proc srv, p;
    int port;
    python_server(&srv, "h2,http/1.1", &port);
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    const char *argv[] = {tk_client_bin(), "-v", "--ca", tk_cert("ca.crt"), "--alpn",
                          "http/1.1,h2", "localhost", portstr, NULL};
    int code = tk_run(&p, argv, "hello\n", 6, RUN_MS);
    cr_expect_eq(code, 0, "tlsclient exit %d: %s", code, p.errbuf);
    cr_expect_str_eq(p.outbuf, "hello\n");
    /* OpenSSL (under Python) picks in the client's order when the server lists both. */
    cr_expect(tk_matches(p.errbuf, "tlsclient: ALPN protocol: (h2|http/1\\.1)\n"), "%s",
              p.errbuf);
    tk_proc_free(&p);
    cr_expect_eq(tk_proc_wait(&srv, RUN_MS), 0, "%s", srv.errbuf);
    cr_expect(tk_matches(srv.outbuf, "selected (h2|http/1\\.1)\n"), "%s", srv.outbuf);
    tk_proc_free(&srv);
}

TK_TEST(alpn, tlsclient_with_openssl_s_server)
{
    char crt[600], key[600];
    snprintf(crt, sizeof crt, "%s/server.crt", tk_certs_dir());
    snprintf(key, sizeof key, "%s/server.key", tk_certs_dir());
    const char *offers[] = {"h2,http/1.1", "x-none"};
    for (size_t i = 0; i < 2; i++) {
        const char *sargv[] = {OPENSSL, "s_server", "-accept", "127.0.0.1:0", "-naccept", "1",
                               "-rev", "-cert", crt, "-key", key, "-alpn", "http/1.1", NULL};
        struct tk_proc srv, p;
        tk_proc_start(&srv, sargv);
        cr_assert(tk_proc_wait_for(&srv, 1, "ACCEPT ", 30000) &&
                      tk_proc_wait_for(&srv, 1, "\n", 30000),
                  "no ACCEPT line: %s", srv.outbuf);
        const char *colon = strrchr(strstr(srv.outbuf, "ACCEPT "), ':');
        cr_assert_not_null(colon);
        char port[16];
        snprintf(port, sizeof port, "%d", atoi(colon + 1));
        const char *argv[] = {tk_client_bin(), "-v", "--ca", tk_cert("ca.crt"), "--alpn",
                              offers[i], "localhost", port, NULL};
        int code = tk_run(&p, argv, "hello\n", 6, RUN_MS);
        if (i == 0) {
            cr_expect_eq(code, 0, "tlsclient exit %d: %s", code, p.errbuf);
            cr_expect_str_eq(p.outbuf, "olleh\n");
            cr_expect(tk_contains(p.errbuf, "tlsclient: ALPN protocol: http/1.1\n"), "%s",
                      p.errbuf);
        } else {
            /* Nothing in common: s_server refuses (RFC 7301 3.2); a handshake failure that
             * is not about a certificate. */
            cr_expect_eq(code, 6, "tlsclient exit %d: %s", code, p.errbuf);
            cr_expect(tk_contains(p.errbuf, "no application protocol"), "%s", p.errbuf);
        }
        tk_proc_free(&p);
        tk_proc_wait(&srv, RUN_MS);
        tk_proc_free(&srv);
    }
}

TK_TEST(alpn, bad_lists_are_usage_errors)
{
    const char *lists[] = {"h2,,http/1.1", "", "h2 ", "h2,h2"};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        for (int app = 0; app < 2; app++) {
            const char *argv[] = {app ? tk_client_bin() : tk_server_bin(), "--alpn", lists[i],
                                  app ? "localhost" : NULL, "1", NULL};
            struct tk_proc p;
            int code = tk_run(&p, argv, "", 0, RUN_MS);
            cr_expect_eq(code, 2, "%s --alpn '%s': exit %d", app ? "tlsclient" : "tlsserver",
                         lists[i], code);
            cr_expect(tk_contains(p.errbuf, ": --alpn: '"), "%s", p.errbuf);
            cr_expect_str_empty(p.outbuf);
            tk_proc_free(&p);
        }
    }
}
