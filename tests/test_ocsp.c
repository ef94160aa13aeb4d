/* SPDX-License-Identifier: MIT */
/* OCSP stapling. Responses made by `openssl ocsp` from the test CA (good, revoked, for
 * another certificate) and built here (past its nextUpdate, signed by a key nobody
 * trusts, a CA signature with one bit flipped). Server role: in the library (which are
 * stapled, which refused and why) and in tlsserver --ocsp-staple against openssl
 * s_client -status. Client role: the library's check in process, and tlsclient
 * --require-staple against openssl s_server -status_file and tlsserver --ocsp-staple. */
#include "common.h"

#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef TK_OPENSSL_BIN
#define TK_OPENSSL_BIN "openssl"
#endif

#define RUN_MS 20000

TK_SUITE(ocsp);

struct responses {
    char dir[512];
    char good[600];    /* server.crt: good */
    char revoked[600]; /* server.crt: revoked */
    char other[600];   /* client.crt: good (another certificate) */
    char expired[600]; /* server.crt: good, nextUpdate an hour ago */
    char rogue[600];   /* server.crt: good, signed by an impostor of the CA (same name) */
    char tampered[600]; /* server.crt: good, signed by the CA, one signature bit flipped */
    char garbage[600]; /* not DER */
};

/* An `openssl ocsp` response of the test CA for cert, from its own `openssl ca` database
 * where cert is valid or revoked. */
static void make_response(const char *dir, const char *name, const char *cert, int revoked,
                          char *out, size_t n)
{
    char sub[560], cnf[600], db[600], text[2048];
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    cr_assert_eq(mkdir(sub, 0700), 0);
    snprintf(cnf, sizeof cnf, "%s/ca.cnf", sub);
    snprintf(db, sizeof db, "%s/index.txt", sub);
    tk_write_file(db, "", 0);
    int len = snprintf(text, sizeof text,
                       "[ca]\ndefault_ca = tk\n[tk]\ndatabase = %s\ncertificate = %s\n"
                       "private_key = %s\ndefault_md = sha256\n",
                       db, tk_cert("ca.crt"), tk_cert("ca.key"));
    tk_write_file(cnf, text, (size_t)len);
    const char *const add[] = {TK_OPENSSL_BIN, "ca", "-config", cnf,
                               revoked ? "-revoke" : "-valid", cert, NULL};
    tk_run_ok(add, RUN_MS);
    snprintf(out, n, "%s/ocsp.der", sub);
    const char *const resp[] = {TK_OPENSSL_BIN, "ocsp", "-index", db, "-rsigner",
                                tk_cert("ca.crt"), "-rkey", tk_cert("ca.key"), "-CA",
                                tk_cert("ca.crt"), "-issuer", tk_cert("ca.crt"), "-cert",
                                cert, "-respout", out, "-ndays", "1", NULL};
    tk_run_ok(resp, RUN_MS);
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s", path);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    cr_assert(x, "%s", path);
    return x;
}

/* A `good` response for server.crt, built here (no `openssl ocsp` option makes these):
 * signed with signer_crt/signer_key, thisUpdate and nextUpdate `this_s`/`next_s` seconds
 * from now; with `tamper`, one bit of the signature flipped. */
static void make_signed(const char *path, const char *signer_crt, const char *signer_key,
                        long this_s, long next_s, int tamper)
{
    X509 *leaf = read_cert(tk_cert("server.crt")), *ca = read_cert(tk_cert("ca.crt"));
    X509 *signer = read_cert(signer_crt);
    FILE *f = fopen(signer_key, "r");
    cr_assert(f);
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    cr_assert(key);
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    OCSP_CERTID *id = OCSP_cert_to_id(NULL, leaf, ca);
    ASN1_TIME *this_upd = X509_time_adj_ex(NULL, 0, this_s, NULL);
    ASN1_TIME *next_upd = X509_time_adj_ex(NULL, 0, next_s, NULL);
    cr_assert(bs && id && this_upd && next_upd);
    cr_assert(OCSP_basic_add1_status(bs, id, V_OCSP_CERTSTATUS_GOOD, 0, NULL, this_upd,
                                     next_upd));
    /* The signer's certificate goes along, except in the tampered one (see below). */
    cr_assert_eq(OCSP_basic_sign(bs, signer, key, EVP_sha256(), NULL,
                                 tamper ? OCSP_NOCERTS : 0), 1);
    const ASN1_OCTET_STRING *sig = OCSP_resp_get0_signature(bs);
    unsigned char last = sig->data[sig->length - 1];
    ASN1_TIME_free(this_upd);
    ASN1_TIME_free(next_upd);
    OCSP_CERTID_free(id);
    EVP_PKEY_free(key);
    OCSP_RESPONSE *resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
    OCSP_BASICRESP_free(bs);
    unsigned char *der = NULL;
    int len = resp ? i2d_OCSP_RESPONSE(resp, &der) : -1;
    OCSP_RESPONSE_free(resp);
    cr_assert(len > 0);
    if (tamper) {
        /* The signature is the BIT STRING that ends the BasicOCSPResponse (no
         * certificates follow: none were added): its last byte is the DER's last. */
        cr_assert_eq(der[len - 1], last);
        der[len - 1] ^= 1;
    }
    tk_write_file(path, der, (size_t)len);
    OPENSSL_free(der);
    X509_free(leaf);
    X509_free(ca);
    X509_free(signer);
}

static void responses_make(struct responses *r)
{
    char server[600], client[600];
    tk_tmpdir(r->dir, sizeof r->dir);
    snprintf(server, sizeof server, "%s", tk_cert("server.crt"));
    snprintf(client, sizeof client, "%s", tk_cert("client.crt"));
    make_response(r->dir, "good", server, 0, r->good, sizeof r->good);
    make_response(r->dir, "revoked", server, 1, r->revoked, sizeof r->revoked);
    make_response(r->dir, "other", client, 0, r->other, sizeof r->other);
    snprintf(r->expired, sizeof r->expired, "%s/expired.der", r->dir);
    make_signed(r->expired, tk_cert("ca.crt"), tk_cert("ca.key"), -7200, -3600, 0);
    snprintf(r->tampered, sizeof r->tampered, "%s/tampered.der", r->dir);
    make_signed(r->tampered, tk_cert("ca.crt"), tk_cert("ca.key"), -60, 86400, 1);
    char rogue_crt[600], rogue_key[600];
    snprintf(rogue_crt, sizeof rogue_crt, "%s/rogue.crt", r->dir);
    snprintf(rogue_key, sizeof rogue_key, "%s/rogue.key", r->dir);
    const char *const req[] = {TK_OPENSSL_BIN, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                               "ec_paramgen_curve:P-256", "-nodes", "-keyout", rogue_key,
                               "-out", rogue_crt, "-subj", "/CN=tlskit local CA", "-days", "2",
                               NULL};
    tk_run_ok(req, RUN_MS);
    snprintf(r->rogue, sizeof r->rogue, "%s/rogue.der", r->dir);
    make_signed(r->rogue, rogue_crt, rogue_key, -60, 86400, 0);
    snprintf(r->garbage, sizeof r->garbage, "%s/garbage.der", r->dir);
    tk_write_file(r->garbage, "not an OCSP response\n", 21);
}

/* The responses that are not stapled, and the reason given. */
static const struct {
    size_t off; /* of the path in struct responses */
    const char *why;
} refused[] = {
    {offsetof(struct responses, revoked), "status is revoked"},
    {offsetof(struct responses, other), "for another certificate"},
    {offsetof(struct responses, expired), "not current"},
};
#define NREFUSED (sizeof refused / sizeof refused[0])

static const char *refused_path(const struct responses *r, size_t i)
{
    return (const char *)r + refused[i].off;
}

/* ---- the library ---- */

TK_TEST(ocsp, loader_accepts_good_and_says_why_not_otherwise)
{
    struct responses r;
    responses_make(&r);
    tlskit_config *cfg = tk_server_config("server");
    cr_expect_eq(tlskit_config_set_ocsp_staple_file(cfg, r.good), 0, "%s",
                 tlskit_config_error(cfg));
    for (size_t i = 0; i < NREFUSED; i++) {
        const char *path = refused_path(&r, i);
        cr_expect_eq(tlskit_config_set_ocsp_staple_file(cfg, path), -1, "%s", path);
        cr_expect_eq(tlskit_config_error_code(cfg), TLSKIT_E_CONFIG, "%s: %s", path,
                     tlskit_error_name(tlskit_config_error_code(cfg)));
        cr_expect(tk_contains(tlskit_config_error(cfg), refused[i].why), "%s",
                  tlskit_config_error(cfg));
        cr_expect(tk_contains(tlskit_config_error(cfg), path), "%s", tlskit_config_error(cfg));
    }
    /* Not an OCSP response, or no file: TLSKIT_E_FILE naming it. */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing.der", r.dir);
    const char *bad[] = {r.garbage, missing, tk_cert("server.crt")};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(tlskit_config_set_ocsp_staple_file(cfg, bad[i]), -1, "%s", bad[i]);
        cr_expect_eq(tlskit_config_error_code(cfg), TLSKIT_E_FILE, "%s: %s", bad[i],
                     tlskit_config_error(cfg));
        cr_expect(tk_contains(tlskit_config_error(cfg), bad[i]), "%s", tlskit_config_error(cfg));
    }
    size_t len = 0;
    char *der = tk_read_file(r.good, &len);
    cr_expect_eq(tlskit_config_set_ocsp_staple_mem(cfg, der, len), 0, "%s",
                 tlskit_config_error(cfg));
    /* Trailing bytes: not one DER response. */
    char *longer = malloc(len + 1);
    cr_assert(longer);
    memcpy(longer, der, len);
    longer[len] = 0;
    cr_expect_eq(tlskit_config_set_ocsp_staple_mem(cfg, longer, len + 1), -1);
    cr_expect_eq(tlskit_config_error_code(cfg), TLSKIT_E_FILE, "%s", tlskit_config_error(cfg));
    free(longer);
    tlskit_config_free(cfg);
    /* No keypair to staple it to. */
    cfg = tlskit_config_new();
    cr_expect_eq(tlskit_config_set_ocsp_staple_mem(cfg, der, len), -1);
    cr_expect_eq(tlskit_config_error_code(cfg), TLSKIT_E_INVALID, "%s",
                 tlskit_config_error(cfg));
    cr_expect_eq(tlskit_config_set_ocsp_staple_mem(cfg, NULL, 1), -1);
    tlskit_config_free(cfg);
    free(der);
    tk_rmtree(r.dir);
}

/* ---- tlsserver against openssl s_client -status ---- */

static void s_client_status(const char *port, struct tk_proc *p)
{
    char connect[64];
    snprintf(connect, sizeof connect, "127.0.0.1:%s", port);
    const char *const sc[] = {TK_OPENSSL_BIN, "s_client", "-connect", connect, "-CAfile",
                              tk_cert("ca.crt"), "-servername", "localhost", "-status", NULL};
    int code = tk_run(p, sc, "", 0, RUN_MS);
    cr_expect_eq(code, 0, "s_client exit %d: %s", code, p->errbuf);
}

/* good: stapled; the others: a warning that says why, and nothing stapled. */
TK_TEST(ocsp, tlsserver_staples_only_a_good_response)
{
    struct responses r;
    responses_make(&r);
    for (size_t i = 0; i <= NREFUSED; i++) {
        const char *path = i < NREFUSED ? refused_path(&r, i) : r.good;
        struct tk_server s;
        const char *const extra[] = {"--ocsp-staple", path, NULL};
        tk_server_start(&s, "server", "127.0.0.1", extra);
        if (i < NREFUSED)
            cr_expect(tk_proc_wait_for(&s.p, 2, refused[i].why, 30000) &&
                      tk_contains(s.p.errbuf, "warning: --ocsp-staple") &&
                      tk_contains(s.p.errbuf, path),
                      "no warning for %s: %s", path, s.p.errbuf);
        struct tk_proc p;
        s_client_status(s.portstr, &p);
        const char *want = i < NREFUSED ? "OCSP response: no response sent" : "Cert Status: good";
        cr_expect(tk_contains(p.outbuf, want), "%s: no '%s' in %s", path, want, p.outbuf);
        tk_proc_free(&p);
        tk_server_stop(&s);
    }
    tk_rmtree(r.dir);
}

/* The staple follows the certificate served: the second pair's, not the default's. */
TK_TEST(ocsp, tlsserver_staple_per_keypair)
{
    struct responses r;
    responses_make(&r);
    struct tk_server s;
    /* The default pair (client.crt has no DNS name localhost) gets the response for
     * client.crt; server.crt, served to SNI localhost, gets its own. */
    const char *const extra[] = {"--cert", tk_cert("client.crt"), "--key", tk_cert("client.key"),
                                 "--ocsp-staple", r.other, "--cert", tk_cert("server.crt"),
                                 "--key", tk_cert("server.key"), "--ocsp-staple", r.good,
                                 NULL};
    tk_server_start(&s, NULL, "127.0.0.1", extra);
    cr_expect(!tk_contains(s.p.errbuf, "warning"), "%s", s.p.errbuf);
    struct tk_proc p;
    s_client_status(s.portstr, &p);
    cr_expect(tk_contains(p.outbuf, "Cert Status: good"), "%s", p.outbuf);
    /* The response s_client shows is server.crt's (its serial), not client.crt's. */
    X509 *x = read_cert(tk_cert("server.crt"));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    cr_assert(hex);
    char want[300];
    snprintf(want, sizeof want, "Serial Number: %s", hex);
    cr_expect(tk_contains(p.outbuf, want), "no '%s' in %s", want, p.outbuf);
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(x);
    tk_proc_free(&p);
    tk_server_stop(&s);
    tk_rmtree(r.dir);
}

TK_TEST(ocsp, tlsserver_bad_input)
{
    struct responses r;
    responses_make(&r);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing.der", r.dir);
    const char *files[] = {missing, r.garbage};
    for (size_t i = 0; i < 2; i++) {
        const char *const a[] = {tk_server_bin(), "--port", "0", "--cert",
                                 tk_cert("server.crt"), "--key", tk_cert("server.key"),
                                 "--ocsp-staple", files[i], NULL};
        struct tk_proc p;
        cr_expect_eq(tk_run(&p, a, NULL, 0, RUN_MS), 1, "%s", p.errbuf);
        cr_expect(tk_contains(p.errbuf, "--ocsp-staple") && tk_contains(p.errbuf, files[i]),
                  "%s", p.errbuf);
        tk_proc_free(&p);
    }
    const char *const b[] = {tk_server_bin(), "--port", "0", "--ocsp-staple", r.good, "--cert",
                             tk_cert("server.crt"), "--key", tk_cert("server.key"), NULL};
    struct tk_proc p;
    cr_expect_eq(tk_run(&p, b, NULL, 0, RUN_MS), 2, "%s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, "before any --cert"), "%s", p.errbuf);
    tk_proc_free(&p);
    tk_rmtree(r.dir);
}

/* ---- client role: the library, in process ---- */

static void client_handshake(tlskit_config *scfg, int mode, int tls, struct tk_side *srv,
                             struct tk_side *cli)
{
    tlskit_config *ccfg = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_ocsp_request(ccfg, mode), 0, "%s", tlskit_config_error(ccfg));
    cr_assert_eq(tlskit_config_set_protocols(ccfg, tls, tls), 0);
    *srv = (struct tk_side){.cfg = scfg};
    *cli = (struct tk_side){.cfg = ccfg, .servername = "localhost"};
    tk_handshake_pair(srv, cli);
}

TK_TEST(ocsp, client_checks_the_staple_in_process)
{
    struct responses r;
    responses_make(&r);
    tlskit_config *stapled = tk_server_config("server"), *bare = tk_server_config("server");
    cr_assert_eq(tlskit_config_set_ocsp_staple_file(stapled, r.good), 0);
    const int versions[] = {TLSKIT_TLS1_2, TLSKIT_TLS1_3};
    for (size_t v = 0; v < 2; v++) {
        struct tk_side srv, cli;
        /* Required and stapled: good, with its times. */
        client_handshake(stapled, TLSKIT_OCSP_REQUIRE, versions[v], &srv, &cli);
        cr_expect_eq(cli.rc, 0, "%s", cli.err);
        cr_expect_eq(tlskit_conn_ocsp_status(cli.conn), TLSKIT_OCSP_STATUS_GOOD);
        cr_expect(tk_matches(tlskit_conn_ocsp_text(cli.conn),
                             "^good \\(this update 20[0-9-]+T[0-9:]+Z, next update "),
                  "%s", tlskit_conn_ocsp_text(cli.conn));
        tk_side_free(&srv);
        tlskit_config_free(cli.cfg);
        tk_side_free(&cli);
        /* Required and none stapled: a verification failure that says so, on both sides. */
        client_handshake(bare, TLSKIT_OCSP_REQUIRE, versions[v], &srv, &cli);
        cr_expect_eq(cli.rc, -1);
        cr_expect_eq(cli.code, TLSKIT_E_VERIFY, "%s", cli.err);
        cr_expect(tk_contains(cli.err, "certificate verify failed: OCSP staple required: the "
                                       "server stapled no OCSP response"), "%s", cli.err);
        cr_expect_eq(tlskit_conn_ocsp_status(cli.conn), TLSKIT_OCSP_STATUS_NONE);
        cr_expect_eq(srv.rc, -1);
        cr_expect(tk_contains(srv.err, "bad certificate status response"), "%s", srv.err);
        tk_side_free(&srv);
        tlskit_config_free(cli.cfg);
        tk_side_free(&cli);
        /* Requested, none stapled: reported, not refused. Off: not requested. */
        const int modes[] = {TLSKIT_OCSP_REQUEST, TLSKIT_OCSP_OFF};
        const char *texts[] = {"the server stapled no OCSP response", "not requested"};
        for (size_t m = 0; m < 2; m++) {
            client_handshake(bare, modes[m], versions[v], &srv, &cli);
            cr_expect_eq(cli.rc, 0, "%s", cli.err);
            cr_expect_eq(tlskit_conn_ocsp_status(cli.conn), TLSKIT_OCSP_STATUS_NONE);
            cr_expect_str_eq(tlskit_conn_ocsp_text(cli.conn), texts[m]);
            tk_side_free(&srv);
            tlskit_config_free(cli.cfg);
            tk_side_free(&cli);
        }
    }
    tlskit_config_free(stapled);
    tlskit_config_free(bare);
    tk_rmtree(r.dir);
}

/* Without verification (insecure) and without the CA in the trust store (OpenSSL then
 * builds no chain), only the chain the server sent is there to find the issuer in; a
 * server that sends its leaf alone leaves the staple uncheckable: reported with
 * TLSKIT_OCSP_REQUEST, refused with TLSKIT_OCSP_REQUIRE. */
TK_TEST(ocsp, client_without_the_issuer_cannot_check)
{
    struct responses r;
    responses_make(&r);
    tlskit_config *stapled = tk_server_config("server");
    cr_assert_eq(tlskit_config_set_ocsp_staple_file(stapled, r.good), 0);
    const int modes[] = {TLSKIT_OCSP_REQUEST, TLSKIT_OCSP_REQUIRE};
    for (size_t m = 0; m < 2; m++) {
        tlskit_config *ccfg = tk_client_config(NULL);
        cr_assert_eq(tlskit_config_insecure_noverifycert(ccfg), 0);
        cr_assert_eq(tlskit_config_set_ocsp_request(ccfg, modes[m]), 0);
        struct tk_side srv = {.cfg = stapled}, cli = {.cfg = ccfg, .servername = "localhost"};
        tk_handshake_pair(&srv, &cli);
        const char *want = "cannot be checked: the issuer of the server's certificate is "
                           "not known";
        if (m == 0) {
            cr_expect_eq(cli.rc, 0, "%s", cli.err);
            cr_expect_str_eq(tk_str(tlskit_conn_ocsp_text(cli.conn)), want);
            cr_expect_neq(tlskit_conn_ocsp_status(cli.conn), TLSKIT_OCSP_STATUS_GOOD);
        } else {
            cr_expect_eq(cli.rc, -1);
            cr_expect_eq(cli.code, TLSKIT_E_VERIFY, "%s", cli.err);
            cr_expect(tk_contains(cli.err, want), "%s", cli.err);
        }
        tk_side_free(&srv);
        tk_side_free(&cli);
        tlskit_config_free(ccfg);
    }
    tlskit_config_free(stapled);
    tk_rmtree(r.dir);
}

TK_TEST(ocsp, client_request_mode_is_checked)
{
    tlskit_config *cfg = tlskit_config_new();
    cr_assert(cfg);
    cr_expect_eq(tlskit_config_set_ocsp_request(cfg, 3), -1);
    cr_expect_eq(tlskit_config_error_code(cfg), TLSKIT_E_INVALID);
    cr_expect(tk_contains(tlskit_config_error(cfg), "_REQUIRE"), "%s",
              tlskit_config_error(cfg));
    cr_expect_eq(tlskit_config_set_ocsp_request(cfg, TLSKIT_OCSP_REQUIRE), 0);
    tlskit_config_free(cfg);
}

/* ---- client role: tlsclient against openssl s_server -status_file ---- */

static void s_server_start(struct tk_proc *s, const char *status_file, char *port, size_t n)
{
    char crt[600], key[600];
    snprintf(crt, sizeof crt, "%s", tk_cert("server.crt"));
    snprintf(key, sizeof key, "%s", tk_cert("server.key"));
    const char *argv[16] = {TK_OPENSSL_BIN, "s_server", "-accept", "127.0.0.1:0", "-naccept", "1",
                            "-cert", crt, "-key", key};
    size_t a = 10;
    if (status_file) {
        argv[a++] = "-status_file";
        argv[a++] = status_file;
    }
    argv[a] = NULL;
    tk_proc_start(s, argv);
    cr_assert(tk_proc_wait_for(s, 1, "ACCEPT ", 30000) && tk_proc_wait_for(s, 1, "\n", 30000),
              "s_server did not start: %s", s->errbuf);
    snprintf(port, n, "%d", atoi(strrchr(strstr(s->outbuf, "ACCEPT "), ':') + 1));
}

static void s_server_stop(struct tk_proc *s)
{
    kill(s->pid, SIGTERM);
    tk_proc_wait(s, 30000);
    tk_proc_free(s);
}

/* tlsclient -v [--require-staple] --tls-max VERSION to localhost:port. */
static int tlsclient_status(struct tk_proc *p, const char *port, int require, const char *tls)
{
    const char *argv[12] = {tk_client_bin(), "-v", "--ca", tk_cert("ca.crt"), "--tls-max", tls,
                            "--servername", "localhost", "127.0.0.1", port};
    if (require) {
        argv[10] = "--require-staple";
        argv[11] = NULL;
    }
    return tk_run(p, argv, "hello\n", 6, RUN_MS);
}

TK_TEST(ocsp, tlsclient_against_openssl_s_server)
{
    struct responses r;
    responses_make(&r);
    const struct {
        const char *file; /* NULL: s_server staples nothing */
        int require, exit;
        const char *want; /* in tlsclient's stderr */
    } cases[] = {
        {r.good, 1, 0, "OCSP staple: good (this update "},
        {r.good, 0, 0, "OCSP staple: good (this update "},
        {NULL, 1, 5, "certificate verify failed: OCSP staple required: the server stapled no "
                     "OCSP response"},
        {NULL, 0, 0, "OCSP staple: the server stapled no OCSP response"},
        /* A stapled `revoked` fails without --require-staple too. */
        {r.revoked, 0, 5, "certificate verify failed: OCSP staple: the certificate is revoked"},
        {r.revoked, 1, 5, "certificate verify failed: OCSP staple: the certificate is revoked"},
        {r.expired, 1, 5, "OCSP staple required: expired: its next update was 20"},
        {r.expired, 0, 0, "OCSP staple: expired: its next update was 20"},
        {r.rogue, 1, 5, "OCSP staple required: bad signature or signer: "},
        {r.tampered, 1, 5, "OCSP staple required: bad signature or signer: "},
        {r.tampered, 0, 0, "OCSP staple: bad signature or signer: "},
        {r.other, 1, 5, "OCSP staple required: the response is for another certificate"},
    };
    const char *versions[] = {"1.2", "1.3"};
    for (size_t v = 0; v < 2; v++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            struct tk_proc s, p;
            char port[16];
            s_server_start(&s, cases[i].file, port, sizeof port);
            int code = tlsclient_status(&p, port, cases[i].require, versions[v]);
            cr_expect_eq(code, cases[i].exit, "TLS %s, case %zu: exit %d: %s", versions[v], i,
                         code, p.errbuf);
            cr_expect(tk_contains(p.errbuf, cases[i].want), "TLS %s, case %zu: no '%s' in %s",
                      versions[v], i, cases[i].want, p.errbuf);
            tk_proc_free(&p);
            s_server_stop(&s);
        }
    tk_rmtree(r.dir);
}

/* ---- client role: tlsclient against tlsserver --ocsp-staple ---- */

TK_TEST(ocsp, tlsclient_against_tlsserver)
{
    struct responses r;
    responses_make(&r);
    struct tk_server s;
    const char *const extra[] = {"--ocsp-staple", r.good, NULL};
    tk_server_start(&s, "server", "127.0.0.1", extra);
    struct tk_proc p;
    int code = tlsclient_status(&p, s.portstr, 1, "1.3");
    cr_expect_eq(code, 0, "exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, "OCSP staple: good (this update "), "%s", p.errbuf);
    cr_expect_str_eq(p.outbuf, "hello\n");
    tk_proc_free(&p);
    /* --check and --check --json report it. */
    const char *const check[] = {tk_client_bin(), "--check", "--ca", tk_cert("ca.crt"),
                                 "localhost", s.portstr, NULL};
    code = tk_run(&p, check, NULL, 0, RUN_MS);
    cr_expect_eq(code, 0, "exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.outbuf, "\nOCSP staple:  good (this update "), "%s", p.outbuf);
    tk_proc_free(&p);
    const char *const json[] = {tk_client_bin(), "--check", "--json", "--ca", tk_cert("ca.crt"),
                                "localhost", s.portstr, NULL};
    code = tk_run(&p, json, NULL, 0, RUN_MS);
    cr_expect_eq(code, 0, "exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.outbuf, "\"ocsp\":{\"status\":\"good\",\"detail\":\"good (this "
                                    "update "), "%s", p.outbuf);
    tk_proc_free(&p);
    /* A resumed session carries no certificate: not checked again, and not refused. */
    const char *const again[] = {tk_client_bin(), "-v", "--ca", tk_cert("ca.crt"),
                                 "--require-staple", "--reconnect", "1", "--tls-max", "1.2",
                                 "localhost", s.portstr, NULL};
    code = tk_run(&p, again, "hello\n", 6, RUN_MS);
    cr_expect_eq(code, 0, "exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, "reconnect 1: resumed: yes"), "%s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, "OCSP staple: not checked (resumed session)"), "%s",
              p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);

    /* No staple: refused, and the server's log says the client rejected it. */
    tk_server_start(&s, "server", "127.0.0.1", NULL);
    code = tlsclient_status(&p, s.portstr, 1, "1.3");
    cr_expect_eq(code, 5, "exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, "OCSP staple required: the server stapled no OCSP response"),
              "%s", p.errbuf);
    cr_expect(tk_proc_wait_for(&s.p, 2, "bad certificate status response", 30000), "%s",
              s.p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
    tk_rmtree(r.dir);
}
