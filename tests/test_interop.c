/* SPDX-License-Identifier: MIT */
/*
 * Interoperability with a real, independent peer: `openssl s_client` against tlsserver
 * and tlsclient against `openssl s_server -rev` (which sends every line back reversed).
 * TLS 1.2 and 1.3, ECDSA and RSA certificates, and mTLS.
 */
#include "common.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TK_SUITE(interop);

#ifndef TK_OPENSSL_BIN
#define TK_OPENSSL_BIN "openssl"
#endif

#define RUN_MS 60000

/* ---- openssl s_client -> tlsserver ------------------------------------------------------ */

/* Echo one line through s_client; returns s_client's exit code. */
static int s_client_echo(struct tk_proc *p, const char *port, const char *ca, const char *proto,
                         const char *client_cert)
{
    char connect[64], crt[600], key[600];
    snprintf(connect, sizeof connect, "127.0.0.1:%s", port);
    const char *argv[32] = {TK_OPENSSL_BIN, "s_client", "-connect", connect, "-CAfile",
                            tk_cert(ca), "-verify_return_error", "-verify_hostname",
                            "localhost", "-servername", "localhost",
                            /* data only on stdout; then do close at the end of stdin */
                            "-quiet", "-no_ign_eof"};
    int n = 13;
    if (proto != NULL)
        argv[n++] = proto;
    if (client_cert != NULL) {
        snprintf(crt, sizeof crt, "%s/%s.crt", tk_certs_dir(), client_cert);
        snprintf(key, sizeof key, "%s/%s.key", tk_certs_dir(), client_cert);
        argv[n++] = "-cert";
        argv[n++] = crt;
        argv[n++] = "-key";
        argv[n++] = key;
    }
    argv[n] = NULL;
    tk_proc_start(p, argv);
    /* Keep stdin open until the echo is back: s_client closes as soon as stdin ends. */
    tk_proc_feed(p, "hello\n", 6, 0);
    int got = tk_proc_wait_for(p, 1, "hello\n", 30000);
    tk_proc_feed(p, NULL, 0, 1);
    int code = tk_proc_wait(p, RUN_MS);
    if (!got)
        return code == 0 ? -1 : code;
    return code;
}

TK_TEST(interop, s_client_to_tlsserver)
{
    const struct {
        const char *cert, *proto, *want;
    } cases[] = {
        {"server", "-tls1_3", "TLSv1.3"},
        {"server", "-tls1_2", "TLSv1.2"},
        {"rsa", "-tls1_3", "TLSv1.3"},
        {"rsa", "-tls1_2", "TLSv1.2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tk_server s;
        tk_server_start(&s, cases[i].cert, "127.0.0.1", NULL);
        struct tk_proc p;
        int code = s_client_echo(&p, s.portstr, "ca.crt", cases[i].proto, NULL);
        cr_expect_eq(code, 0, "%s %s: s_client exit %d; stdout: %s; stderr: %s", cases[i].cert,
                     cases[i].proto, code, p.outbuf, p.errbuf);
        cr_expect_str_eq(p.outbuf, "hello\n", "%s %s", cases[i].cert, cases[i].proto);
        tk_proc_free(&p);
        char re[256];
        snprintf(re, sizeof re,
                 "^tlsserver: conn 127\\.0\\.0\\.1:[0-9]+ proto=%s cipher=[A-Z0-9_-]+ "
                 "alpn=- in=6 out=6 time=[0-9.]+s ok$",
                 cases[i].want);
        cr_expect(tk_proc_wait_for(&s.p, 2, "tlsserver: conn", 30000), "no log line");
        cr_expect(tk_proc_wait_for(&s.p, 2, "\n", 30000));
        cr_expect(tk_matches(s.p.errbuf, re), "%s %s: server log: %s", cases[i].cert,
                  cases[i].proto, s.p.errbuf);
        tk_server_stop(&s);
    }
}

TK_TEST(interop, s_client_mtls_to_tlsserver)
{
    struct tk_server s;
    const char *const extra[] = {"--ca", tk_cert("ca.crt"), "--verify-client", "-v", NULL};
    tk_server_start(&s, "server", "127.0.0.1", extra);
    struct tk_proc p;
    int code = s_client_echo(&p, s.portstr, "ca.crt", NULL, "client");
    cr_expect_eq(code, 0, "s_client exit %d; stderr: %s", code, p.errbuf);
    cr_expect_str_eq(p.outbuf, "hello\n");
    tk_proc_free(&p);
    cr_expect(tk_proc_wait_for(&s.p, 2, " ok\n", 30000), "server log: %s", s.p.errbuf);
    cr_expect(tk_contains(s.p.errbuf, "tlskit-client"), "-v does not show the client subject: %s",
              s.p.errbuf);
    tk_server_stop(&s);
}

TK_TEST(interop, s_client_rejects_tlsserver_with_wrong_ca)
{
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", NULL);
    struct tk_proc p;
    int code = s_client_echo(&p, s.portstr, "other-ca.crt", NULL, NULL);
    cr_expect_neq(code, 0, "s_client accepted a server it cannot verify");
    cr_expect_str_eq(p.outbuf, "");
    tk_proc_free(&p);
    cr_expect(tk_proc_wait_for(&s.p, 2, "error=", 30000), "server logged no error: %s",
              s.p.errbuf);
    tk_server_stop(&s);
}

/* ---- tlsclient -> openssl s_server ------------------------------------------------------ */

struct s_server {
    struct tk_proc p;
    char port[16];
};

static void s_server_start(struct s_server *s, const char *cert, const char *proto, int mtls)
{
    char crt[600], key[600];
    snprintf(crt, sizeof crt, "%s/%s.crt", tk_certs_dir(), cert);
    snprintf(key, sizeof key, "%s/%s.key", tk_certs_dir(), cert);
    const char *argv[32] = {TK_OPENSSL_BIN, "s_server", "-accept", "127.0.0.1:0", "-naccept",
                            "1", "-rev", "-cert", crt, "-key", key};
    int n = 11;
    if (proto != NULL)
        argv[n++] = proto;
    if (mtls) {
        argv[n++] = "-Verify";
        argv[n++] = "1";
        argv[n++] = "-CAfile";
        argv[n++] = tk_cert("ca.crt");
        argv[n++] = "-verify_return_error";
    }
    argv[n] = NULL;
    tk_proc_start(&s->p, argv);
    close(s->p.in);
    s->p.in = -1;
    /* OpenSSL 3 prints "ACCEPT 127.0.0.1:PORT" once listening (port 0 resolved). */
    int ok = tk_proc_wait_for(&s->p, 1, "ACCEPT ", 30000);
    const char *a = ok ? strstr(s->p.outbuf, "ACCEPT ") : NULL;
    ok = ok && tk_proc_wait_for(&s->p, 1, "\n", 30000) && strchr(a, '\n') != NULL;
    cr_assert(ok, "s_server printed no ACCEPT line: %s / %s", s->p.outbuf, s->p.errbuf);
    const char *nl = strchr(a, '\n');
    const char *colon = a;
    for (const char *c = a; c < nl; c++)
        if (*c == ':')
            colon = c;
    int port = atoi(colon + 1);
    cr_assert(port > 0 && port < 65536, "bad ACCEPT line: %.*s", (int)(nl - a), a);
    snprintf(s->port, sizeof s->port, "%d", port);
}

static int tlsclient_hello(struct tk_proc *p, const char *port, const char *const extra[])
{
    const char *argv[24] = {tk_client_bin(), "--ca", tk_cert("ca.crt")};
    int n = 3;
    for (int i = 0; extra != NULL && extra[i] != NULL; i++)
        argv[n++] = extra[i];
    argv[n++] = "localhost";
    argv[n++] = port;
    argv[n] = NULL;
    return tk_run(p, argv, "hello\n", 6, RUN_MS);
}

TK_TEST(interop, tlsclient_to_s_server)
{
    const struct {
        const char *cert, *proto, *want;
    } cases[] = {
        {"server", "-tls1_3", "TLSv1.3"},
        {"server", "-tls1_2", "TLSv1.2"},
        {"rsa", "-tls1_3", "TLSv1.3"},
        {"rsa", "-tls1_2", "TLSv1.2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct s_server s;
        s_server_start(&s, cases[i].cert, cases[i].proto, 0);
        struct tk_proc p;
        static const char *const v[] = {"-v", NULL};
        int code = tlsclient_hello(&p, s.port, v);
        cr_expect_eq(code, 0, "%s %s: tlsclient exit %d: %s", cases[i].cert, cases[i].proto,
                     code, p.errbuf);
        cr_expect_str_eq(p.outbuf, "olleh\n", "%s %s", cases[i].cert, cases[i].proto);
        cr_expect(tk_contains(p.errbuf, cases[i].want), "%s %s: -v does not show %s: %s",
                  cases[i].cert, cases[i].proto, cases[i].want, p.errbuf);
        tk_proc_free(&p);
        int scode = tk_proc_wait(&s.p, RUN_MS); /* -naccept 1: leaves by itself */
        cr_expect_eq(scode, 0, "s_server exit %d: %s", scode, s.p.errbuf);
        char want[64];
        snprintf(want, sizeof want, "Protocol version: %s", cases[i].want);
        cr_expect(tk_contains(s.p.outbuf, want) || tk_contains(s.p.errbuf, want),
                  "s_server did not negotiate %s: %s", cases[i].want, s.p.outbuf);
        tk_proc_free(&s.p);
    }
}

TK_TEST(interop, tlsclient_mtls_to_s_server)
{
    struct s_server s;
    s_server_start(&s, "server", NULL, 1);
    const char *const withcert[] = {"--cert", tk_cert("client.crt"), "--key",
                                    tk_cert("client.key"), NULL};
    struct tk_proc p;
    int code = tlsclient_hello(&p, s.port, withcert);
    cr_expect_eq(code, 0, "tlsclient exit %d: %s", code, p.errbuf);
    cr_expect_str_eq(p.outbuf, "olleh\n");
    tk_proc_free(&p);
    cr_expect_eq(tk_proc_wait(&s.p, RUN_MS), 0, "s_server: %s", s.p.errbuf);
    tk_proc_free(&s.p);

    /* Without a certificate, s_server (-Verify) rejects us: exit 5 (the server rejected
     * ours). */
    s_server_start(&s, "server", NULL, 1);
    code = tlsclient_hello(&p, s.port, NULL);
    cr_expect_eq(code, 5, "tlsclient without a certificate: exit %d: %s", code, p.errbuf);
    cr_expect_str_eq(p.outbuf, "");
    tk_proc_free(&p);
    tk_proc_wait(&s.p, RUN_MS);
    tk_proc_free(&s.p);
}

TK_TEST(interop, tlsclient_rejects_s_server_expired)
{
    struct s_server s;
    s_server_start(&s, "expired", NULL, 0);
    struct tk_proc p;
    int code = tlsclient_hello(&p, s.port, NULL);
    cr_expect_eq(code, 5, "exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, "certificate has expired"), "%s", p.errbuf);
    tk_proc_free(&p);
    tk_proc_wait(&s.p, RUN_MS);
    tk_proc_free(&s.p);
}
