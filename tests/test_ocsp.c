/* SPDX-License-Identifier: MIT */
/* OCSP stapling, server role: responses made by `openssl ocsp` from the test CA (good,
 * revoked, for another certificate) and one built here that is past its nextUpdate, in
 * the library (which are stapled, which refused and why) and in tlsserver --ocsp-staple
 * against openssl s_client -status. */
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

/* A `good` response for server.crt signed by the CA, thisUpdate two hours and
 * nextUpdate one hour ago (no `openssl ocsp` option makes that). */
static void make_expired(const char *path)
{
    X509 *leaf = read_cert(tk_cert("server.crt")), *ca = read_cert(tk_cert("ca.crt"));
    FILE *f = fopen(tk_cert("ca.key"), "r");
    cr_assert(f);
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    cr_assert(key);
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    OCSP_CERTID *id = OCSP_cert_to_id(NULL, leaf, ca);
    ASN1_TIME *this_upd = X509_time_adj_ex(NULL, 0, -7200, NULL);
    ASN1_TIME *next_upd = X509_time_adj_ex(NULL, 0, -3600, NULL);
    cr_assert(bs && id && this_upd && next_upd);
    cr_assert(OCSP_basic_add1_status(bs, id, V_OCSP_CERTSTATUS_GOOD, 0, NULL, this_upd,
                                     next_upd));
    cr_assert_eq(OCSP_basic_sign(bs, ca, key, EVP_sha256(), NULL, 0), 1);
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
    tk_write_file(path, der, (size_t)len);
    OPENSSL_free(der);
    X509_free(leaf);
    X509_free(ca);
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
    make_expired(r->expired);
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
