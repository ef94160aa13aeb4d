/* SPDX-License-Identifier: MIT */
/* Certificate revocation lists on both sides: CRLs made by `openssl ca -gencrl` from the
 * test CA, in the library (a revoked server for a client, a revoked client for a server)
 * and in the apps (tlsclient --crl, tlsserver --crl) against openssl s_server/s_client. */
#include "common.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TK_OPENSSL_BIN
#define TK_OPENSSL_BIN "openssl"
#endif

#define RUN_MS 20000

TK_SUITE(crl);

struct crls {
    char dir[512];
    char revoked_server[600]; /* revokes server.crt */
    char revoked_client[600]; /* revokes client.crt */
    char none[600];           /* revokes nothing */
};

/* A CRL of the test CA in its own `openssl ca` database, revoking `cert` (NULL: none). */
static void make_crl(const char *dir, const char *name, const char *cert, char *out, size_t n)
{
    char sub[560], cnf[600], db[600], num[600];
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    cr_assert_eq(mkdir(sub, 0700), 0);
    snprintf(cnf, sizeof cnf, "%s/ca.cnf", sub);
    snprintf(db, sizeof db, "%s/index.txt", sub);
    snprintf(num, sizeof num, "%s/crlnumber", sub);
    tk_write_file(db, "", 0);
    tk_write_file(num, "01\n", 3);
    char text[2048];
    char ca_crt[600], ca_key[600];
    snprintf(ca_crt, sizeof ca_crt, "%s/ca.crt", tk_certs_dir());
    snprintf(ca_key, sizeof ca_key, "%s/ca.key", tk_certs_dir());
    int len = snprintf(text, sizeof text,
                       "[ca]\ndefault_ca = tk\n[tk]\ndatabase = %s\ncrlnumber = %s\n"
                       "certificate = %s\nprivate_key = %s\ndefault_md = sha256\n"
                       "default_crl_days = 30\n",
                       db, num, ca_crt, ca_key);
    tk_write_file(cnf, text, (size_t)len);
    if (cert) {
        const char *const rev[] = {TK_OPENSSL_BIN, "ca", "-config", cnf, "-revoke", cert, NULL};
        tk_run_ok(rev, RUN_MS);
    }
    snprintf(out, n, "%s/crl.pem", sub);
    const char *const gen[] = {TK_OPENSSL_BIN, "ca", "-config", cnf, "-gencrl", "-out", out,
                               NULL};
    tk_run_ok(gen, RUN_MS);
}

static void crls_make(struct crls *c)
{
    char crt[600];
    tk_tmpdir(c->dir, sizeof c->dir);
    snprintf(crt, sizeof crt, "%s/server.crt", tk_certs_dir());
    make_crl(c->dir, "server", crt, c->revoked_server, sizeof c->revoked_server);
    snprintf(crt, sizeof crt, "%s/client.crt", tk_certs_dir());
    make_crl(c->dir, "client", crt, c->revoked_client, sizeof c->revoked_client);
    make_crl(c->dir, "none", NULL, c->none, sizeof c->none);
}

/* ---- the library ---- */

/* A client with `crl` (NULL: none) against a server with server.crt; client certificate
 * client.crt when the server verifies clients with `server_crl`. */
static void pair(struct tk_side *srv, struct tk_side *cli, const char *server_crl,
                 const char *client_crl, int mtls)
{
    memset(srv, 0, sizeof *srv);
    memset(cli, 0, sizeof *cli);
    srv->cfg = tk_server_config("server");
    cli->cfg = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_timeout(cli->cfg, TLSKIT_TIMEOUT_READ, 20000), 0);
    if (mtls) {
        cr_assert_eq(tlskit_config_add_ca_file(srv->cfg, tk_cert("ca.crt")), 0);
        cr_assert_eq(tlskit_config_set_verify_client(srv->cfg, TLSKIT_VERIFY_CLIENT_REQUIRED), 0);
        tk_config_keypair(cli->cfg, "client");
    }
    if (server_crl)
        cr_assert_eq(tlskit_config_add_crl_file(srv->cfg, server_crl), 0, "%s",
                     tlskit_config_error(srv->cfg));
    if (client_crl)
        cr_assert_eq(tlskit_config_add_crl_file(cli->cfg, client_crl), 0, "%s",
                     tlskit_config_error(cli->cfg));
    cli->servername = "localhost";
    tk_handshake_pair(srv, cli);
}

static void pair_free(struct tk_side *srv, struct tk_side *cli)
{
    tlskit_config *a = srv->cfg, *b = cli->cfg;
    tk_side_free(srv);
    tk_side_free(cli);
    tlskit_config_free(a);
    tlskit_config_free(b);
}

TK_TEST(crl, client_refuses_a_revoked_server)
{
    struct crls c;
    crls_make(&c);
    struct tk_side srv, cli;
    pair(&srv, &cli, NULL, c.revoked_server, 0);
    cr_expect_eq(cli.rc, -1, "the handshake with a revoked server succeeded");
    cr_expect_eq(cli.code, TLSKIT_E_VERIFY, "%s: %s", tlskit_error_name(cli.code), cli.err);
    cr_expect(tk_contains(cli.err, "certificate verify failed: certificate revoked"), "%s",
              cli.err);
    pair_free(&srv, &cli);
    /* The same CA's CRL that revokes someone else: the server verifies. */
    pair(&srv, &cli, NULL, c.revoked_client, 0);
    cr_expect_eq(cli.rc, 0, "%s", cli.err);
    pair_free(&srv, &cli);
    tk_rmtree(c.dir);
}

TK_TEST(crl, server_refuses_a_revoked_client)
{
    struct crls c;
    crls_make(&c);
    struct tk_side srv, cli;
    pair(&srv, &cli, c.revoked_client, NULL, 1);
    cr_expect_eq(srv.rc, -1, "the handshake with a revoked client succeeded");
    cr_expect_eq(srv.code, TLSKIT_E_VERIFY, "%s: %s", tlskit_error_name(srv.code), srv.err);
    cr_expect(tk_contains(srv.err, "certificate revoked"), "%s", srv.err);
    /* With TLS 1.3 the client's handshake ends before the server judges its certificate:
     * the refusal then arrives as an alert on the first read. */
    char b;
    cr_expect(cli.rc != 0 || tlskit_conn_read(cli.conn, &b, 1) == -1,
              "the client did not see the refusal");
    pair_free(&srv, &cli);
    pair(&srv, &cli, c.none, NULL, 1);
    cr_expect_eq(srv.rc, 0, "%s", srv.err);
    cr_expect_eq(cli.rc, 0, "%s", cli.err);
    pair_free(&srv, &cli);
    tk_rmtree(c.dir);
}

TK_TEST(crl, bad_files)
{
    struct crls c;
    crls_make(&c);
    tlskit_config *cfg = tlskit_config_new();
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope.pem", c.dir);
    const struct {
        const char *path, *needle;
    } cases[] = {
        {missing, "No such file or directory"},
        {tk_cert("ca.crt"), "no PEM CRL found"},
        {c.dir, "nope"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s", cases[i].path);
        cr_expect_eq(tlskit_config_add_crl_file(cfg, path), -1, "%s accepted", path);
        cr_expect_eq(tlskit_config_error_code(cfg), TLSKIT_E_FILE, "%s: %s", path,
                     tlskit_error_name(tlskit_config_error_code(cfg)));
        cr_expect(tk_contains(tlskit_config_error(cfg), path), "the error does not name %s: %s",
                  path, tlskit_config_error(cfg));
        if (i < 2)
            cr_expect(tk_contains(tlskit_config_error(cfg), cases[i].needle), "%s",
                      tlskit_config_error(cfg));
    }
    static const char garbage[] = "-----BEGIN X509 CRL-----\nnot base64 at all\n"
                                  "-----END X509 CRL-----\n";
    cr_expect_eq(tlskit_config_add_crl_mem(cfg, garbage, sizeof garbage - 1), -1);
    cr_expect_eq(tlskit_config_error_code(cfg), TLSKIT_E_FILE);
    cr_expect(tk_contains(tlskit_config_error(cfg), "cannot parse CRL"), "%s",
              tlskit_config_error(cfg));
    tlskit_config_free(cfg);
    tk_rmtree(c.dir);
}

/* ---- the apps, against openssl ---- */

static int tlsclient_run(struct tk_proc *p, const char *port, const char *crl)
{
    const char *argv[] = {tk_client_bin(), "--ca", tk_cert("ca.crt"), "--crl", crl,
                          "localhost", port, NULL};
    return tk_run(p, argv, "hello\n", 6, RUN_MS);
}

TK_TEST(crl, tlsclient_against_openssl_s_server)
{
    struct crls c;
    crls_make(&c);
    for (int revoked = 0; revoked < 2; revoked++) {
        char crt[600], key[600];
        snprintf(crt, sizeof crt, "%s/server.crt", tk_certs_dir());
        snprintf(key, sizeof key, "%s/server.key", tk_certs_dir());
        const char *const argv[] = {TK_OPENSSL_BIN, "s_server", "-accept", "127.0.0.1:0",
                                    "-naccept", "1", "-rev", "-cert", crt, "-key", key, NULL};
        struct tk_proc s;
        tk_proc_start(&s, argv);
        cr_assert(tk_proc_wait_for(&s, 1, "ACCEPT ", 30000) && tk_proc_wait_for(&s, 1, "\n", 30000),
                  "s_server did not start: %s", s.errbuf);
        const char *colon = strrchr(strstr(s.outbuf, "ACCEPT "), ':');
        char port[16];
        snprintf(port, sizeof port, "%d", atoi(colon + 1));
        struct tk_proc p;
        int code = tlsclient_run(&p, port, revoked ? c.revoked_server : c.revoked_client);
        if (revoked) {
            cr_expect_eq(code, 5, "exit %d for a revoked server: %s", code, p.errbuf);
            cr_expect(tk_contains(p.errbuf, "certificate revoked"), "%s", p.errbuf);
        } else {
            cr_expect_eq(code, 0, "exit %d for a server that is not revoked: %s", code, p.errbuf);
        }
        tk_proc_free(&p);
        kill(s.pid, SIGTERM);
        tk_proc_wait(&s, 30000);
        tk_proc_free(&s);
    }
    tk_rmtree(c.dir);
}

TK_TEST(crl, tlsserver_refuses_revoked_clients)
{
    struct crls c;
    crls_make(&c);
    struct tk_server s;
    const char *const extra[] = {"--ca", tk_cert("ca.crt"), "--verify-client", "--crl",
                                 c.revoked_client, NULL};
    tk_server_start(&s, "server", "127.0.0.1", extra);
    char crt[600], key[600];
    snprintf(crt, sizeof crt, "%s/client.crt", tk_certs_dir());
    snprintf(key, sizeof key, "%s/client.key", tk_certs_dir());
    /* tlsclient: refused (the server's rejection is a verification failure: exit 5). */
    const char *argv[] = {tk_client_bin(), "--ca", tk_cert("ca.crt"), "--cert", crt, "--key",
                          key, "localhost", s.portstr, NULL};
    struct tk_proc p;
    int code = tk_run(&p, argv, "hello\n", 6, RUN_MS);
    cr_expect_eq(code, 5, "exit %d: %s", code, p.errbuf);
    tk_proc_free(&p);
    cr_expect(tk_proc_wait_for(&s.p, 2, "certificate revoked", 30000),
              "the server log does not say 'certificate revoked': %s", s.p.errbuf);
    /* openssl s_client with the same revoked certificate: refused too. */
    char connect[64];
    snprintf(connect, sizeof connect, "127.0.0.1:%s", s.portstr);
    const char *const sc[] = {TK_OPENSSL_BIN, "s_client", "-connect", connect, "-CAfile",
                              tk_cert("ca.crt"), "-cert", crt, "-key", key, "-quiet", NULL};
    code = tk_run(&p, sc, "hello\n", 6, RUN_MS);
    cr_expect(!tk_contains(p.outbuf, "hello"), "a revoked client got an echo: %s", p.outbuf);
    cr_expect(tk_contains(p.errbuf, "alert"), "s_client saw no alert (exit %d): %s", code,
              p.errbuf);
    tk_proc_free(&p);
    cr_expect(tk_proc_wait_for_n(&s.p, 2, "certificate revoked", 2, 30000),
              "the server did not log the second refusal: %s", s.p.errbuf);
    tk_server_stop(&s);
    tk_rmtree(c.dir);
}

TK_TEST(crl, usage_and_file_errors)
{
    struct crls c;
    crls_make(&c);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing.pem", c.dir);
    struct tk_proc p;
    const char *const a[] = {tk_client_bin(), "--crl", missing, "localhost", "1", NULL};
    cr_expect_eq(tk_run(&p, a, NULL, 0, RUN_MS), 1, "%s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, missing), "%s", p.errbuf);
    tk_proc_free(&p);
    const char *const b[] = {tk_client_bin(), "--crl", tk_cert("ca.crt"), "localhost", "1", NULL};
    cr_expect_eq(tk_run(&p, b, NULL, 0, RUN_MS), 1, "%s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, "no PEM CRL found"), "%s", p.errbuf);
    tk_proc_free(&p);
    const char *const d[] = {tk_server_bin(), "--port", "0", "--crl", c.none, NULL};
    cr_expect_eq(tk_run(&p, d, NULL, 0, RUN_MS), 2, "%s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, "--crl needs --verify-client"), "%s", p.errbuf);
    tk_proc_free(&p);
    tk_rmtree(c.dir);
}
