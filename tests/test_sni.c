/* SPDX-License-Identifier: MIT */
/*
 * SNI: several keypairs on one server config, chosen by the name the client sends
 * (lib/src/sni.c), in-process over socketpairs; then tlsserver with several --cert/--key
 * pairs against real clients (openssl s_client -servername, curl --resolve), strict SNI,
 * ECDSA and RSA for one name chosen by the client's signature algorithms, SIGHUP reload,
 * bad input. Also the CA names a server sends with its CertificateRequest, as
 * openssl s_client sees them.
 */
#include "common.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <openssl/ssl.h>

TK_SUITE(sni);

#define RUN_MS 60000
#define OPENSSL "/usr/bin/openssl"
#define CURL "/usr/bin/curl"

/* A server config with the keypairs NAME.crt/NAME.key, in order, NULL-terminated. */
static tlskit_config *sni_config(const char *const names[])
{
    tlskit_config *cfg = tlskit_config_new();
    cr_assert_not_null(cfg);
    for (size_t i = 0; names[i] != NULL; i++) {
        char crt[64], key[64];
        snprintf(crt, sizeof crt, "%s.crt", names[i]);
        snprintf(key, sizeof key, "%s.key", names[i]);
        char crtpath[4096];
        snprintf(crtpath, sizeof crtpath, "%s", tk_cert(crt));
        int rc = tlskit_config_add_keypair_file(cfg, crtpath, tk_cert(key));
        cr_assert_eq(rc, 0, "%s: %s", names[i], tlskit_config_error(cfg));
    }
    return cfg;
}

/* Handshake scfg against a client asking for `name` (NULL: no SNI); the client checks the
 * certificate against `name` unless checkname is 0. Returns the index the server served
 * (-1 when a side failed; *srv_err / *cli_err, if given, get the error texts). */
static int served(tlskit_config *scfg, tlskit_config *ccfg, const char *name,
                  char *srv_err, char *cli_err)
{
    struct tk_side srv = {.cfg = scfg}, cli = {.cfg = ccfg, .servername = name};
    tk_handshake_pair(&srv, &cli);
    int idx = srv.rc == 0 && cli.rc == 0 ? tlskit_conn_local_cert_index(srv.conn) : -1;
    if (idx >= 0) {
        const char *subject = tlskit_conn_local_cert_subject(srv.conn);
        cr_expect(subject != NULL && strncmp(subject, "CN=", 3) == 0, "subject %s",
                  tk_str(subject));
        cr_expect_eq(tlskit_conn_local_cert_index(cli.conn), -1, "client role has no index");
    }
    if (srv_err)
        snprintf(srv_err, 1024, "%s", srv.err);
    if (cli_err)
        snprintf(cli_err, 1024, "%s", cli.err);
    tk_side_free(&srv);
    tk_side_free(&cli);
    return idx;
}

static tlskit_config *noname_client(void)
{
    tlskit_config *c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_insecure_noverifyname(c), 0);
    return c;
}

/* ---- the library ------------------------------------------------------------------- */

TK_TEST(sni, picks_by_name_exact_wildcard_default)
{
    tlskit_config *s = sni_config((const char *const[]){"server", "wronghost", "wildcard",
                                                        NULL});
    tlskit_config *c = tk_client_config("ca.crt");
    tlskit_config *nc = noname_client();
    static const struct {
        const char *name;
        int verify; /* the client checks the name against the certificate */
        int idx;
    } cases[] = {
        {"localhost", 1, 0},        {"wrong.example", 1, 1},  {"WRONG.Example", 1, 1},
        {"a.wild.example", 1, 2},   {"Www.WILD.example", 1, 2},
        {"wrong.example.", 0, 1},   /* a trailing dot names the same host */
        {"a.b.wild.example", 0, 0}, /* a wildcard stands for one label only */
        {"wild.example", 0, 0},     {"unknown.example", 0, 0}, {NULL, 0, 0},
        /* Odd names a hostile client may send: never a crash, never a wrong match. */
        {"*.wild.example", 0, 2},   {".wild.example", 0, 0},  {"a..wild.example", 0, 0},
        {"x.wild.example.", 0, 2},  {"localhostx", 0, 0},     {"xlocalhost", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char se[1024], ce[1024];
        int idx = served(s, cases[i].verify ? c : nc, cases[i].name, se, ce);
        cr_expect_eq(idx, cases[i].idx, "%s: served %d, want %d (server: %s; client: %s)",
                     tk_str(cases[i].name), idx, cases[i].idx, se, ce);
    }
    tlskit_config_free(nc);
    tlskit_config_free(c);
    tlskit_config_free(s);
}

TK_TEST(sni, strict_refuses_unknown_and_missing_names)
{
    tlskit_config *s = sni_config((const char *const[]){"server", "wronghost", NULL});
    cr_assert_eq(tlskit_config_set_sni_strict(s, 1), 0);
    tlskit_config *nc = noname_client();
    cr_expect_eq(served(s, nc, "wrong.example", NULL, NULL), 1);
    const char *refused[] = {"unknown.example", NULL};
    for (size_t i = 0; i < 2; i++) {
        char se[1024], ce[1024];
        struct tk_side srv = {.cfg = s}, cli = {.cfg = nc, .servername = refused[i]};
        tk_handshake_pair(&srv, &cli);
        cr_expect_eq(cli.rc, -1, "%s: client handshake succeeded", tk_str(refused[i]));
        cr_expect_eq(cli.code, TLSKIT_E_PROTOCOL, "%s: client: %s", tk_str(refused[i]), cli.err);
        cr_expect(tk_contains(cli.err, "unrecognized name"), "client: %s", cli.err);
        snprintf(se, sizeof se, "%s", srv.err);
        snprintf(ce, sizeof ce, "%s", cli.err);
        cr_expect(tk_contains(se, refused[i] ? "no certificate for \"unknown.example\""
                                             : "the client sent no server name"),
                  "server: %s", se);
        tk_side_free(&srv);
        tk_side_free(&cli);
    }
    tlskit_config_free(nc);
    tlskit_config_free(s);
}

/* The client allows only one signature algorithm family: the server must answer with the
 * keypair of that type for the same name. */
static int served_with_sigalgs(tlskit_config *s, const char *sigalgs, int tls_max)
{
    tlskit_config *c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_protocols(c, TLSKIT_TLS1_2, tls_max), 0);
    cr_assert_eq(SSL_CTX_set1_sigalgs_list(tlskit_config_ssl_ctx(c), sigalgs), 1);
    char se[1024], ce[1024];
    int idx = served(s, c, "localhost", se, ce);
    cr_expect(idx >= 0, "%s: server: %s; client: %s", sigalgs, se, ce);
    tlskit_config_free(c);
    return idx;
}

TK_TEST(sni, ecdsa_and_rsa_for_one_name)
{
    /* wronghost first: the pair for "localhost" is not the default group. */
    tlskit_config *s = sni_config((const char *const[]){"wronghost", "server", "rsa", NULL});
    for (int v = 0; v < 2; v++) {
        int max = v ? TLSKIT_TLS1_3 : TLSKIT_TLS1_2;
        cr_expect_eq(served_with_sigalgs(s, "ECDSA+SHA256", max), 1, "v%d ECDSA", v);
        cr_expect_eq(served_with_sigalgs(s, "RSA-PSS+SHA256:RSA+SHA256", max), 2, "v%d RSA", v);
    }
    tlskit_config_free(s);
    /* And as the default group: both types serve clients without SNI. */
    s = sni_config((const char *const[]){"server", "rsa", "wronghost", NULL});
    cr_expect_eq(served_with_sigalgs(s, "ECDSA+SHA256", TLSKIT_TLS1_3), 0);
    cr_expect_eq(served_with_sigalgs(s, "RSA-PSS+SHA256", TLSKIT_TLS1_3), 1);
    tlskit_config_free(s);
}

TK_TEST(sni, set_keypair_replaces_all)
{
    tlskit_config *s = sni_config((const char *const[]){"server", "wronghost", NULL});
    tk_config_keypair(s, "rsa"); /* set_keypair: now only the RSA one */
    tlskit_config *nc = noname_client();
    cr_expect_eq(served(s, nc, "wrong.example", NULL, NULL), 0);
    tlskit_config_free(nc);
    /* The ECDSA key set before is gone, although an SSL_CTX cannot drop a key: a client
     * that takes only ECDSA finds no certificate. */
    tlskit_config *c = tk_client_config("ca.crt");
    cr_assert_eq(SSL_CTX_set1_sigalgs_list(tlskit_config_ssl_ctx(c), "ECDSA+SHA256"), 1);
    char se[1024], ce[1024];
    cr_expect_eq(served(s, c, "localhost", se, ce), -1, "an ECDSA key was still served");
    tlskit_config_free(c);
    c = tk_client_config("ca.crt");
    cr_expect_eq(served(s, c, "localhost", se, ce), 0, "server: %s; client: %s", se, ce);
    tlskit_config_free(c);
    tlskit_config_free(s);
}

TK_TEST(sni, bad_keypairs_change_nothing)
{
    tlskit_config *s = sni_config((const char *const[]){"server", NULL});
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/missing.crt", tk_certs_dir());
    cr_expect_eq(tlskit_config_add_keypair_file(s, missing, tk_cert("server.key")), -1);
    cr_expect_eq(tlskit_config_error_code(s), TLSKIT_E_FILE);
    cr_expect(tk_contains(tlskit_config_error(s), "missing.crt"), "%s", tlskit_config_error(s));
    char crt[4096];
    snprintf(crt, sizeof crt, "%s", tk_cert("rsa1024.crt"));
    cr_expect_eq(tlskit_config_add_keypair_file(s, crt, tk_cert("rsa1024.key")), -1);
    cr_expect_eq(tlskit_config_error_code(s), TLSKIT_E_CONFIG, "%s", tlskit_config_error(s));
    snprintf(crt, sizeof crt, "%s", tk_cert("wronghost.crt"));
    cr_expect_eq(tlskit_config_add_keypair_file(s, crt, tk_cert("server.key")), -1);
    cr_expect(tk_contains(tlskit_config_error(s), "does not match"), "%s",
              tlskit_config_error(s));
    cr_expect_eq(tlskit_config_add_keypair_mem(s, NULL, 0, "x", 1), -1);
    cr_expect_eq(tlskit_config_error_code(s), TLSKIT_E_INVALID);
    /* Still the one good keypair: wrong.example gets the default. */
    tlskit_config *nc = noname_client();
    cr_expect_eq(served(s, nc, "wrong.example", NULL, NULL), 0);
    /* Frozen once in use. */
    cr_expect_eq(tlskit_config_set_sni_strict(s, 1), -1);
    snprintf(crt, sizeof crt, "%s", tk_cert("wronghost.crt"));
    cr_expect_eq(tlskit_config_add_keypair_file(s, crt, tk_cert("wronghost.key")), -1);
    cr_expect(tk_contains(tlskit_config_error(s), "config in use"), "%s",
              tlskit_config_error(s));
    tlskit_config_free(nc);
    tlskit_config_free(s);
}

TK_TEST(sni, keypairs_from_memory)
{
    size_t cl, kl, wl, wkl;
    char *crt = tk_read_file(tk_cert("server.crt"), &cl);
    char *key = tk_read_file(tk_cert("server.key"), &kl);
    char *wcrt = tk_read_file(tk_cert("wildcard.crt"), &wl);
    char *wkey = tk_read_file(tk_cert("wildcard.key"), &wkl);
    tlskit_config *s = tlskit_config_new();
    cr_assert_eq(tlskit_config_add_keypair_mem(s, crt, cl, key, kl), 0, "%s",
                 tlskit_config_error(s));
    cr_assert_eq(tlskit_config_add_keypair_mem(s, wcrt, wl, wkey, wkl), 0, "%s",
                 tlskit_config_error(s));
    tlskit_config *c = tk_client_config("ca.crt");
    cr_expect_eq(served(s, c, "x.wild.example", NULL, NULL), 1);
    cr_expect_eq(served(s, c, "localhost", NULL, NULL), 0);
    tlskit_config_free(c);
    tlskit_config_free(s);
    free(crt);
    free(key);
    free(wcrt);
    free(wkey);
}

TK_TEST(sni, resumed_session_serves_no_certificate)
{
    tlskit_config *s = sni_config((const char *const[]){"server", "wronghost", NULL});
    tlskit_config *c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_protocols(c, TLSKIT_TLS1_2, TLSKIT_TLS1_2), 0);
    struct tk_side srv = {.cfg = s}, cli = {.cfg = c, .servername = "wrong.example"};
    tk_handshake_pair(&srv, &cli);
    cr_assert_eq(cli.rc, 0, "%s", cli.err);
    cr_expect_eq(tlskit_conn_local_cert_index(srv.conn), 1);
    tlskit_session *sess = tlskit_conn_session_copy(cli.conn);
    cr_assert_not_null(sess);
    /* Closed cleanly: OpenSSL forgets a session whose connection was cut. */
    tlskit_conn_close(cli.conn);
    tlskit_conn_close(srv.conn);
    tk_side_free(&srv);
    tk_side_free(&cli);

    int sv[2];
    tk_socketpair(sv);
    srv = (struct tk_side){.cfg = s, .fd = sv[0]};
    cli = (struct tk_side){.cfg = c, .fd = sv[1], .servername = "wrong.example"};
    /* The session is offered before the handshake: wrap by hand, then run both. */
    cli.conn = tlskit_conn_new(c);
    cr_assert_eq(tlskit_conn_wrap_client(cli.conn, cli.fd, "wrong.example"), 0);
    cr_assert_eq(tlskit_conn_set_session(cli.conn, sess), 0);
    srv.conn = tlskit_conn_new(s);
    cr_assert_eq(tlskit_conn_wrap_server(srv.conn, srv.fd), 0);
    cr_assert_eq(tlskit_conn_set_nonblocking(srv.conn, 1), 0);
    cr_assert_eq(tlskit_conn_set_nonblocking(cli.conn, 1), 0);
    char err[256];
    cr_assert_eq(tk_nb_handshake(cli.conn, srv.conn, 10000, err, sizeof err, NULL), 0, "%s",
                 err);
    cr_expect_eq(tlskit_conn_session_reused(srv.conn), 1);
    cr_expect_eq(tlskit_conn_local_cert_index(srv.conn), -1);
    cr_expect_null(tlskit_conn_local_cert_subject(srv.conn));
    tlskit_session_free(sess);
    tk_side_free(&srv);
    tk_side_free(&cli);
    tlskit_config_free(c);
    tlskit_config_free(s);
}

/* ---- tlsserver against real clients ------------------------------------------------ */

/* tlsserver -v with --cert/--key for each name (NULL-terminated), then extra args. */
static void start_sni_server(struct tk_server *s, const char *const names[],
                             const char *const extra[])
{
    static char files[16][2][4096];
    const char *args[64];
    int n = 0;
    for (size_t i = 0; names[i] != NULL; i++) {
        snprintf(files[i][0], sizeof files[i][0], "%s/%s.crt", tk_certs_dir(), names[i]);
        snprintf(files[i][1], sizeof files[i][1], "%s/%s.key", tk_certs_dir(), names[i]);
        args[n++] = "--cert";
        args[n++] = files[i][0];
        args[n++] = "--key";
        args[n++] = files[i][1];
    }
    args[n++] = "-v";
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    tk_server_start(s, NULL, "127.0.0.1", args);
}

/* openssl s_client -servername NAME (NULL: -noservername) [extra]; "hello" echoed.
 * Returns its exit code; p holds its output. */
static int s_client(struct tk_proc *p, const struct tk_server *s, const char *name,
                    const char *const extra[])
{
    char connect[64];
    snprintf(connect, sizeof connect, "127.0.0.1:%d", s->port);
    const char *argv[32] = {OPENSSL, "s_client", "-connect", connect, "-CAfile",
                            tk_cert("ca.crt"), "-verify_return_error", "-no_ign_eof"};
    int n = 8;
    if (name) {
        argv[n++] = "-servername";
        argv[n++] = name;
        argv[n++] = "-verify_hostname";
        argv[n++] = name;
    } else {
        argv[n++] = "-noservername";
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    tk_proc_start(p, argv);
    /* Keep stdin open until the echo is back: s_client closes as soon as stdin ends. */
    tk_proc_feed(p, "hello\n", 6, 0);
    tk_proc_wait_for(p, 1, "hello\n", 10000);
    tk_proc_feed(p, NULL, 0, 1);
    return tk_proc_wait(p, RUN_MS);
}

TK_TEST(sni, tlsserver_openssl_picks_each_certificate)
{
    struct tk_server s;
    start_sni_server(&s, (const char *const[]){"server", "wronghost", "wildcard", NULL}, NULL);
    static const struct {
        const char *name, *subject, *file;
    } cases[] = {
        {"localhost", "subject=CN = localhost", "server.crt"},
        {"wrong.example", "subject=CN = wrong.example", "wronghost.crt"},
        {"api.wild.example", "subject=CN = *.wild.example", "wildcard.crt"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tk_proc p;
        int code = s_client(&p, &s, cases[i].name, NULL);
        cr_expect_eq(code, 0, "%s: s_client exit %d: %s", cases[i].name, code, p.errbuf);
        cr_expect(tk_contains(p.outbuf, cases[i].subject), "%s: %s", cases[i].name, p.outbuf);
        cr_expect(tk_contains(p.outbuf, "Verify return code: 0 (ok)"), "%s", p.outbuf);
        tk_proc_free(&p);
        char logline[256];
        snprintf(logline, sizeof logline, "sni=%s cert=%s/%s ", cases[i].name, tk_certs_dir(),
                 cases[i].file);
        cr_expect(tk_proc_wait_for(&s.p, 2, logline, 10000), "no '%s' in: %s", logline,
                  s.p.errbuf);
    }
    /* An unknown name and no name at all: the default, the first pair. */
    const char *defaults[] = {"unknown.example", NULL};
    for (size_t i = 0; i < 2; i++) {
        struct tk_proc p;
        char connect[64];
        snprintf(connect, sizeof connect, "127.0.0.1:%d", s.port);
        const char *argv[] = {OPENSSL, "s_client", "-connect", connect, "-CAfile",
                              tk_cert("ca.crt"), defaults[i] ? "-servername" : "-noservername",
                              defaults[i], NULL};
        int code = tk_run(&p, argv, "", 0, RUN_MS);
        cr_expect_eq(code, 0, "%s: s_client exit %d: %s", tk_str(defaults[i]), code, p.errbuf);
        cr_expect(tk_contains(p.outbuf, "subject=CN = localhost"), "%s", p.outbuf);
        tk_proc_free(&p);
    }
    cr_expect(tk_proc_wait_for(&s.p, 2, "sni=unknown.example cert=", 10000), "%s", s.p.errbuf);
    cr_expect(tk_proc_wait_for(&s.p, 2, "sni=- cert=", 10000), "%s", s.p.errbuf);
    cr_expect(tk_matches(s.p.errbuf, "sni=unknown\\.example cert=[^ ]*/server\\.crt "), "%s",
              s.p.errbuf);
    cr_expect(tk_matches(s.p.errbuf, "sni=- cert=[^ ]*/server\\.crt "), "%s", s.p.errbuf);
    tk_server_stop(&s);
}

TK_TEST(sni, tlsserver_curl_resolve_picks_each_certificate)
{
    struct tk_server s;
    start_sni_server(&s, (const char *const[]){"server", "wronghost", "wildcard", NULL},
                     (const char *const[]){"--mode", "http", NULL});
    const char *names[] = {"localhost", "wrong.example", "www.wild.example"};
    const char *subjects[] = {"CN=localhost", "CN=wrong.example", "CN=*.wild.example"};
    for (size_t i = 0; i < 3; i++) {
        char resolve[128], url[128];
        snprintf(resolve, sizeof resolve, "%s:%d:127.0.0.1", names[i], s.port);
        snprintf(url, sizeof url, "https://%s:%d/", names[i], s.port);
        const char *argv[] = {CURL, "-sS", "-v", "--cacert", tk_cert("ca.crt"), "--resolve",
                              resolve, "-o", "/dev/null", url, NULL};
        struct tk_proc p;
        int code = tk_run(&p, argv, "", 0, RUN_MS);
        cr_expect_eq(code, 0, "%s: curl exit %d: %s", names[i], code, p.errbuf);
        cr_expect(tk_contains(p.errbuf, subjects[i]), "%s: %s", names[i], p.errbuf);
        tk_proc_free(&p);
    }
    tk_server_stop(&s);
}

TK_TEST(sni, tlsserver_strict_sends_unrecognized_name)
{
    struct tk_server s;
    start_sni_server(&s, (const char *const[]){"server", "wronghost", NULL},
                     (const char *const[]){"--sni-strict", NULL});
    struct tk_proc p;
    int code = s_client(&p, &s, "wrong.example", NULL);
    cr_expect_eq(code, 0, "s_client exit %d: %s", code, p.errbuf);
    tk_proc_free(&p);
    const char *refused[] = {"unknown.example", NULL};
    for (size_t i = 0; i < 2; i++) {
        char connect[64];
        snprintf(connect, sizeof connect, "127.0.0.1:%d", s.port);
        const char *argv[] = {OPENSSL, "s_client", "-connect", connect, "-CAfile",
                              tk_cert("ca.crt"), refused[i] ? "-servername" : "-noservername",
                              refused[i], NULL};
        code = tk_run(&p, argv, "", 0, RUN_MS);
        cr_expect_neq(code, 0, "%s: s_client succeeded", tk_str(refused[i]));
        cr_expect(tk_contains(p.errbuf, "unrecognized name"), "%s: %s", tk_str(refused[i]),
                  p.errbuf);
        tk_proc_free(&p);
    }
    /* tlsclient too: the handshake failed for a reason that is not a certificate. */
    const char *cargs[] = {tk_client_bin(), "--ca", tk_cert("ca.crt"), "--servername",
                           "unknown.example", "127.0.0.1", s.portstr, NULL};
    code = tk_run(&p, cargs, "", 0, RUN_MS);
    cr_expect_eq(code, 6, "tlsclient exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, "unrecognized name"), "%s", p.errbuf);
    tk_proc_free(&p);
    cr_expect(tk_proc_wait_for(&s.p, 2, "no certificate for \"unknown.example\"", 10000), "%s",
              s.p.errbuf);
    cr_expect(tk_proc_wait_for(&s.p, 2, "the client sent no server name", 10000), "%s",
              s.p.errbuf);
    tk_server_stop(&s);
}

TK_TEST(sni, tlsserver_ecdsa_and_rsa_by_client_sigalgs)
{
    struct tk_server s;
    start_sni_server(&s, (const char *const[]){"wronghost", "server", "rsa", NULL}, NULL);
    static const struct {
        const char *sigalgs, *tls, *peer_sig, *file;
    } cases[] = {
        {"ECDSA+SHA256", "-tls1_3", "Peer signature type: ECDSA", "/server.crt "},
        {"RSA-PSS+SHA256", "-tls1_3", "Peer signature type: RSA-PSS", "/rsa.crt "},
        {"ECDSA+SHA256", "-tls1_2", "Peer signature type: ECDSA", "/server.crt "},
        {"RSA+SHA256", "-tls1_2", "Peer signature type: RSA", "/rsa.crt "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tk_proc p;
        const char *const extra[] = {"-sigalgs", cases[i].sigalgs, cases[i].tls, NULL};
        int code = s_client(&p, &s, "localhost", extra);
        cr_expect_eq(code, 0, "%s %s: exit %d: %s", cases[i].sigalgs, cases[i].tls, code,
                     p.errbuf);
        cr_expect(tk_contains(p.outbuf, cases[i].peer_sig), "%s %s: %s", cases[i].sigalgs,
                  cases[i].tls, p.outbuf);
        tk_proc_free(&p);
        cr_expect(tk_proc_wait_for_n(&s.p, 2, cases[i].file, 1, 10000), "%s", s.p.errbuf);
    }
    cr_expect(tk_proc_wait_for_n(&s.p, 2, "cert=", 4, 10000), "%s", s.p.errbuf);
    cr_expect(tk_proc_wait_for_n(&s.p, 2, "/rsa.crt ", 2, 10000), "%s", s.p.errbuf);
    cr_expect(tk_proc_wait_for_n(&s.p, 2, "/server.crt ", 2, 10000), "%s", s.p.errbuf);
    tk_server_stop(&s);
}

/* Copy NAMES[i].crt/.key of the certificate directory to paths[i][0]/[1]. */
static void copy_pairs(const char *const names[2], char *const paths[2][2])
{
    for (int pair = 0; pair < 2; pair++)
        for (int k = 0; k < 2; k++) {
            char name[64];
            snprintf(name, sizeof name, "%s.%s", names[pair], k ? "key" : "crt");
            size_t len;
            char *data = tk_read_file(tk_cert(name), &len);
            tk_write_file(paths[pair][k], data, len);
            free(data);
        }
}

/* SIGHUP reloads every pair: the files are replaced by others with the same names. */
TK_TEST(sni, tlsserver_sighup_reloads_every_pair)
{
    char dir[256], a_crt[512], a_key[512], b_crt[512], b_key[512];
    tk_tmpdir(dir, sizeof dir);
    snprintf(a_crt, sizeof a_crt, "%s/a.crt", dir);
    snprintf(a_key, sizeof a_key, "%s/a.key", dir);
    snprintf(b_crt, sizeof b_crt, "%s/b.crt", dir);
    snprintf(b_key, sizeof b_key, "%s/b.key", dir);
    char *const paths[2][2] = {{a_crt, a_key}, {b_crt, b_key}};
    copy_pairs((const char *const[]){"server", "wronghost"}, paths);
    struct tk_server s;
    const char *args[] = {"--cert", a_crt, "--key", a_key, "--cert", b_crt, "--key", b_key,
                          NULL};
    tk_server_start(&s, NULL, "127.0.0.1", args);
    struct tk_proc p;
    cr_expect_eq(s_client(&p, &s, "wrong.example", NULL), 0, "%s", p.errbuf);
    cr_expect(tk_contains(p.outbuf, "subject=CN = wrong.example"), "%s", p.outbuf);
    tk_proc_free(&p);

    /* Now a.* is the RSA localhost pair and b.* the wildcard. */
    copy_pairs((const char *const[]){"rsa", "wildcard"}, paths);
    kill(s.p.pid, SIGHUP);
    cr_assert(tk_proc_wait_for(&s.p, 2, "reload: new connections use", 10000), "%s",
              s.p.errbuf);
    cr_expect(tk_contains(s.p.errbuf, "and 1 more certificates"), "%s", s.p.errbuf);
    cr_expect_eq(s_client(&p, &s, "x.wild.example", NULL), 0, "%s", p.errbuf);
    cr_expect(tk_contains(p.outbuf, "subject=CN = *.wild.example"), "%s", p.outbuf);
    tk_proc_free(&p);
    const char *const rsa_only[] = {"-sigalgs", "RSA-PSS+SHA256", NULL};
    cr_expect_eq(s_client(&p, &s, "localhost", rsa_only), 0, "%s", p.errbuf);
    cr_expect(tk_contains(p.outbuf, "Peer signature type: RSA-PSS"), "%s", p.outbuf);
    tk_proc_free(&p);
    /* wrong.example is gone: the default (the RSA localhost pair) answers, and the name
     * check of s_client fails. */
    cr_expect_neq(s_client(&p, &s, "wrong.example", NULL), 0, "%s", p.outbuf);
    cr_expect(tk_contains(p.outbuf, "0 s:CN = localhost"), "%s", p.outbuf);
    tk_proc_free(&p);

    /* A bad second pair on reload keeps the old ones. */
    tk_write_file(b_key, "not a key\n", 10);
    kill(s.p.pid, SIGHUP);
    cr_expect(tk_proc_wait_for(&s.p, 2, "reload failed, keeping the old certificates", 10000),
              "%s", s.p.errbuf);
    cr_expect(tk_contains(s.p.errbuf, b_key), "%s", s.p.errbuf);
    cr_expect_eq(s_client(&p, &s, "x.wild.example", NULL), 0, "%s", p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
    tk_rmtree(dir);
}

TK_TEST(sni, tlsserver_bad_pairs_are_startup_errors)
{
    char crt[4096], key[4096], missing[4096], wcrt[4096];
    snprintf(crt, sizeof crt, "%s", tk_cert("server.crt"));
    snprintf(key, sizeof key, "%s", tk_cert("server.key"));
    snprintf(wcrt, sizeof wcrt, "%s", tk_cert("wronghost.crt"));
    snprintf(missing, sizeof missing, "%s/missing.key", tk_certs_dir());
    static const struct {
        const char *what;
        int code;
        const char *needle;
    } expect[] = {
        {"a --cert without --key", 2, "has no --key"},
        {"a --key without --cert", 2, "has no --cert"},
        {"missing key file in the second pair", 1, "No such file or directory"},
        {"second pair's key does not match", 1, "does not match"},
    };
    const char *argvs[4][12] = {
        {"--cert", crt, "--key", key, "--cert", wcrt, NULL},
        {"--key", key, NULL},
        {"--cert", crt, "--key", key, "--cert", wcrt, "--key", missing, NULL},
        {"--cert", crt, "--key", key, "--cert", wcrt, "--key", key, NULL},
    };
    for (size_t i = 0; i < 4; i++) {
        const char *argv[16] = {tk_server_bin(), "--port", "0"};
        int n = 3;
        for (int j = 0; argvs[i][j] != NULL; j++)
            argv[n++] = argvs[i][j];
        argv[n] = NULL;
        struct tk_proc p;
        int code = tk_run(&p, argv, "", 0, RUN_MS);
        cr_expect_eq(code, expect[i].code, "%s: exit %d: %s", expect[i].what, code, p.errbuf);
        cr_expect(tk_contains(p.errbuf, expect[i].needle), "%s: %s", expect[i].what, p.errbuf);
        cr_expect(!tk_contains(p.outbuf, "listening"), "%s: %s", expect[i].what, p.outbuf);
        if (i == 0)
            cr_expect(tk_contains(p.errbuf, "--cert") && tk_contains(p.errbuf, "wronghost.crt"),
                      "%s", p.errbuf);
        if (i == 2)
            cr_expect(tk_contains(p.errbuf, "missing.key"), "%s", p.errbuf);
        tk_proc_free(&p);
    }
}

/* ---- CA names in the CertificateRequest ---------------------------------------------- */

TK_TEST(sni, ca_names_seen_by_openssl)
{
    for (int off = 0; off < 2; off++) {
        struct tk_server s;
        const char *args[] = {"--ca", tk_cert("ca.crt"), "--verify-client=optional",
                              off ? "--no-ca-names" : NULL, NULL};
        tk_server_start(&s, "server", "127.0.0.1", args);
        for (int v = 0; v < 2; v++) {
            struct tk_proc p;
            const char *const extra[] = {v ? "-tls1_3" : "-tls1_2", NULL};
            int code = s_client(&p, &s, "localhost", extra);
            cr_expect_eq(code, 0, "s_client exit %d: %s", code, p.errbuf);
            if (off)
                cr_expect(tk_contains(p.outbuf, "No client certificate CA names sent"), "%s",
                          p.outbuf);
            else
                cr_expect(tk_matches(p.outbuf, "Acceptable client certificate CA names\n"
                                               "CN = tlskit local CA\n"), "%s", p.outbuf);
            tk_proc_free(&p);
        }
        tk_server_stop(&s);
    }
}
