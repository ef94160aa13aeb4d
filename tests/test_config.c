/* SPDX-License-Identifier: MIT */
/* tlskit_config: key pairs, trust anchors, protocol range, ciphers, groups, timeouts,
 * socket options, and sharing one config between threads. */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

TK_SUITE(config);

/* A scratch directory with a few broken files, shared by the table-driven tests. */
struct scratch {
    char dir[512];
    char missing[600], garbage[600], empty[600], under_file[600], bad_pem[600];
};

static void scratch_make(struct scratch *s)
{
    tk_tmpdir(s->dir, sizeof s->dir);
    snprintf(s->missing, sizeof s->missing, "%s/missing.pem", s->dir);
    snprintf(s->garbage, sizeof s->garbage, "%s/garbage.pem", s->dir);
    snprintf(s->empty, sizeof s->empty, "%s/empty.pem", s->dir);
    snprintf(s->bad_pem, sizeof s->bad_pem, "%s/bad.pem", s->dir);
    /* A path that goes through a regular file: ENOTDIR (as root, chmod 000 would not
     * make a file unreadable, so this is how we get an open() failure besides ENOENT). */
    snprintf(s->under_file, sizeof s->under_file, "%s/garbage.pem/x.pem", s->dir);
    tk_write_file(s->garbage, "this is not PEM at all\n", 23);
    tk_write_file(s->empty, "", 0);
    static const char bad[] = "-----BEGIN CERTIFICATE-----\n"
                              "bm90IGEgY2VydGlmaWNhdGU=\n"
                              "-----END CERTIFICATE-----\n"
                              "-----BEGIN PRIVATE KEY-----\n"
                              "bm90IGEga2V5\n"
                              "-----END PRIVATE KEY-----\n";
    tk_write_file(s->bad_pem, bad, sizeof bad - 1);
}

static void expect_error(const char *what, int rc, const tlskit_config *cfg, int want_code,
                         const char *const needles[])
{
    const char *msg = tlskit_config_error(cfg);
    int code = tlskit_config_error_code(cfg);
    cr_expect_eq(rc, -1, "%s: rc %d (want -1)", what, rc);
    cr_expect_eq(code, want_code, "%s: %s (want %s): %s", what, tlskit_error_name(code),
                 tlskit_error_name(want_code), tk_str(msg));
    for (size_t i = 0; needles != NULL && needles[i] != NULL; i++)
        cr_expect(tk_contains(msg, needles[i]), "%s: message lacks \"%s\": %s", what,
                  needles[i], tk_str(msg));
}

/* ---- key pairs from files ---------------------------------------------------------- */

TK_TEST(config, keypair_file_ok)
{
    static const char *const names[] = {"server", "rsa", "client", "expired"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        tlskit_config *cfg = tlskit_config_new();
        char crt[64], key[64];
        snprintf(crt, sizeof crt, "%s.crt", names[i]);
        snprintf(key, sizeof key, "%s.key", names[i]);
        int rc = tlskit_config_set_keypair_file(cfg, tk_cert(crt), tk_cert(key));
        cr_expect_eq(rc, 0, "%s: %s", names[i], tk_str(tlskit_config_error(cfg)));
        cr_expect_eq(tlskit_config_error_code(cfg), TLSKIT_E_NONE);
        tlskit_config_free(cfg);
    }
}

TK_TEST(config, keypair_file_errors)
{
    struct scratch s;
    scratch_make(&s);
    char crt[600], key[600], dir[600];
    snprintf(crt, sizeof crt, "%s", tk_cert("server.crt"));
    snprintf(key, sizeof key, "%s", tk_cert("server.key"));
    snprintf(dir, sizeof dir, "%s", tk_certs_dir());
    char client_key[600], rsa1024_crt[600], rsa1024_key[600];
    snprintf(client_key, sizeof client_key, "%s", tk_cert("client.key"));
    snprintf(rsa1024_crt, sizeof rsa1024_crt, "%s", tk_cert("rsa1024.crt"));
    snprintf(rsa1024_key, sizeof rsa1024_key, "%s", tk_cert("rsa1024.key"));

    const struct {
        const char *what, *cert, *key;
        int code;
        const char *needles[4];
    } cases[] = {
        {"missing cert", s.missing, key, TLSKIT_E_FILE, {s.missing, "No such file or directory"}},
        {"missing key", crt, s.missing, TLSKIT_E_FILE, {s.missing, "No such file or directory"}},
        {"cert is a directory", dir, key, TLSKIT_E_FILE, {dir}},
        {"key is a directory", crt, dir, TLSKIT_E_FILE, {dir}},
        {"cert under a regular file", s.under_file, key, TLSKIT_E_FILE,
         {s.under_file, "Not a directory"}},
        {"key under a regular file", crt, s.under_file, TLSKIT_E_FILE,
         {s.under_file, "Not a directory"}},
        {"cert not PEM", s.garbage, key, TLSKIT_E_FILE, {s.garbage}},
        {"key not PEM", crt, s.garbage, TLSKIT_E_FILE, {s.garbage}},
        {"cert empty", s.empty, key, TLSKIT_E_FILE, {s.empty}},
        {"key empty", crt, s.empty, TLSKIT_E_FILE, {s.empty}},
        {"cert PEM with bad body", s.bad_pem, key, TLSKIT_E_FILE, {s.bad_pem}},
        {"key PEM with bad body", crt, s.bad_pem, TLSKIT_E_FILE, {s.bad_pem}},
        {"cert and key swapped", key, crt, TLSKIT_E_FILE, {NULL}},
        /* The pair does not belong together: both files and the reason are named. */
        {"key does not match", crt, client_key, TLSKIT_E_CONFIG, {crt, client_key, "match"}},
        /* RSA-1024 is below OpenSSL's default security level 2. */
        {"RSA-1024 too weak", rsa1024_crt, rsa1024_key, TLSKIT_E_CONFIG, {rsa1024_crt}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tlskit_config *cfg = tlskit_config_new();
        int rc = tlskit_config_set_keypair_file(cfg, cases[i].cert, cases[i].key);
        expect_error(cases[i].what, rc, cfg, cases[i].code, cases[i].needles);
        tlskit_config_free(cfg);
    }
    tk_rmtree(s.dir);
}

TK_TEST(config, rsa1024_message_names_the_reason)
{
    tlskit_config *cfg = tlskit_config_new();
    int rc = tlskit_config_set_keypair_file(cfg, tk_cert("rsa1024.crt"), tk_cert("rsa1024.key"));
    const char *msg = tlskit_config_error(cfg);
    cr_assert_eq(rc, -1, "RSA-1024 accepted");
    cr_expect(tk_contains_ci(msg, "too small") || tk_contains_ci(msg, "too weak") ||
                  tk_contains_ci(msg, "security level"),
              "message does not say the key is too weak: %s", tk_str(msg));
    tlskit_config_free(cfg);
}

TK_TEST(config, keypair_null_arguments)
{
    tlskit_config *cfg = tlskit_config_new();
    int rc = tlskit_config_set_keypair_file(cfg, NULL, tk_cert("server.key"));
    int code = tlskit_config_error_code(cfg);
    cr_expect_eq(rc, -1);
    cr_expect(code == TLSKIT_E_INVALID || code == TLSKIT_E_FILE, "%s", tlskit_error_name(code));
    rc = tlskit_config_set_keypair_file(cfg, tk_cert("server.crt"), NULL);
    code = tlskit_config_error_code(cfg);
    cr_expect_eq(rc, -1);
    cr_expect(code == TLSKIT_E_INVALID || code == TLSKIT_E_FILE, "%s", tlskit_error_name(code));
    tlskit_config_free(cfg);
}

/* A failed call leaves no half-set key pair behind: a later good call works and the
 * config serves handshakes. */
TK_TEST(config, keypair_retry_after_failure)
{
    tlskit_config *cfg = tlskit_config_new();
    cr_assert_eq(tlskit_config_set_keypair_file(cfg, tk_cert("server.crt"),
                                                tk_cert("client.key")), -1);
    tk_config_keypair(cfg, "server");
    tlskit_config *ccfg = tk_client_config("ca.crt");
    struct tk_side srv = {.cfg = cfg}, cli = {.cfg = ccfg, .servername = "localhost"};
    tk_handshake_pair(&srv, &cli);
    cr_expect_eq(cli.rc, 0, "client: %s", cli.err);
    cr_expect_eq(srv.rc, 0, "server: %s", srv.err);
    tk_side_free(&srv);
    tk_side_free(&cli);
    tlskit_config_free(cfg);
    tlskit_config_free(ccfg);
}

/* ---- key pairs from memory --------------------------------------------------------- */

TK_TEST(config, keypair_mem)
{
    size_t clen, klen, other_len;
    char *crt = tk_read_file(tk_cert("server.crt"), &clen);
    char *key = tk_read_file(tk_cert("server.key"), &klen);
    char *other_key = tk_read_file(tk_cert("client.key"), &other_len);

    tlskit_config *cfg = tlskit_config_new();
    cr_expect_eq(tlskit_config_set_keypair_mem(cfg, crt, clen, key, klen), 0, "%s",
                 tk_str(tlskit_config_error(cfg)));
    /* Setters copy their input. */
    memset(crt, 0, clen);
    memset(key, 0, klen);
    tlskit_config *ccfg = tk_client_config("ca.crt");
    struct tk_side srv = {.cfg = cfg}, cli = {.cfg = ccfg, .servername = "localhost"};
    tk_handshake_pair(&srv, &cli);
    cr_expect_eq(cli.rc, 0, "client: %s", cli.err);
    cr_expect_eq(srv.rc, 0, "server: %s", srv.err);
    tk_side_free(&srv);
    tk_side_free(&cli);
    tlskit_config_free(cfg);
    tlskit_config_free(ccfg);
    free(crt);
    free(key);

    crt = tk_read_file(tk_cert("server.crt"), &clen);
    const struct {
        const char *what;
        const void *c;
        size_t cl;
        const void *k;
        size_t kl;
        int code;
    } bad[] = {
        {"garbage cert", "garbage", 7, other_key, other_len, TLSKIT_E_FILE},
        {"garbage key", crt, clen, "garbage", 7, TLSKIT_E_FILE},
        {"empty cert", crt, 0, other_key, other_len, TLSKIT_E_FILE},
        {"truncated cert", crt, clen / 2, other_key, other_len, TLSKIT_E_FILE},
        {"mismatched key", crt, clen, other_key, other_len, TLSKIT_E_CONFIG},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg = tlskit_config_new();
        int rc = tlskit_config_set_keypair_mem(cfg, bad[i].c, bad[i].cl, bad[i].k, bad[i].kl);
        int code = tlskit_config_error_code(cfg);
        cr_expect_eq(rc, -1, "%s accepted", bad[i].what);
        /* Malformed input in memory is the analogue of a malformed file; a mismatch is
         * a configuration error either way. */
        if (bad[i].code == TLSKIT_E_FILE)
            cr_expect(code == TLSKIT_E_FILE || code == TLSKIT_E_CONFIG, "%s: %s: %s",
                      bad[i].what, tlskit_error_name(code), tk_str(tlskit_config_error(cfg)));
        else
            cr_expect_eq(code, bad[i].code, "%s: %s: %s", bad[i].what, tlskit_error_name(code),
                         tk_str(tlskit_config_error(cfg)));
        const char *msg = tlskit_config_error(cfg);
        cr_expect(msg != NULL && *msg != '\0', "%s: empty message", bad[i].what);
        tlskit_config_free(cfg);
    }
    free(crt);
    free(other_key);
}

/* ---- trust anchors ----------------------------------------------------------------- */

TK_TEST(config, ca_errors)
{
    struct scratch s;
    scratch_make(&s);
    const struct {
        const char *what;
        int dir; /* add_ca_dir instead of add_ca_file */
        const char *path;
        const char *needles[3];
    } cases[] = {
        {"missing CA file", 0, s.missing, {s.missing, "No such file or directory"}},
        {"CA file under a regular file", 0, s.under_file, {s.under_file, "Not a directory"}},
        {"CA file not PEM", 0, s.garbage, {s.garbage}},
        {"CA file empty", 0, s.empty, {s.empty}},
        {"CA file with a bad body", 0, s.bad_pem, {s.bad_pem}},
        {"CA file is a directory", 0, s.dir, {s.dir}},
        {"missing CA dir", 1, s.missing, {s.missing, "No such file or directory"}},
        {"CA dir is a file", 1, s.garbage, {s.garbage, "Not a directory"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tlskit_config *cfg = tlskit_config_new();
        int rc = cases[i].dir ? tlskit_config_add_ca_dir(cfg, cases[i].path)
                              : tlskit_config_add_ca_file(cfg, cases[i].path);
        expect_error(cases[i].what, rc, cfg, TLSKIT_E_FILE, cases[i].needles);
        tlskit_config_free(cfg);
    }
    tlskit_config *cfg = tlskit_config_new();
    int rc = tlskit_config_add_ca_mem(cfg, "garbage", 7);
    int code = tlskit_config_error_code(cfg);
    cr_expect_eq(rc, -1, "garbage CA in memory accepted");
    cr_expect(code == TLSKIT_E_FILE || code == TLSKIT_E_CONFIG, "%s", tlskit_error_name(code));
    rc = tlskit_config_add_ca_mem(cfg, "", 0);
    cr_expect_eq(rc, -1, "empty CA in memory accepted");
    tlskit_config_free(cfg);
    tk_rmtree(s.dir);
}

/* Handshake against server.crt with a client config prepared by `setup`. */
static void handshake_with_client(tlskit_config *ccfg, int want_ok, const char *what)
{
    tlskit_config *scfg = tk_server_config("server");
    struct tk_side srv = {.cfg = scfg}, cli = {.cfg = ccfg, .servername = "localhost"};
    tk_handshake_pair(&srv, &cli);
    if (want_ok) {
        cr_expect_eq(cli.rc, 0, "%s: client: %s", what, cli.err);
        cr_expect_eq(srv.rc, 0, "%s: server: %s", what, srv.err);
    } else {
        cr_expect_eq(cli.rc, -1, "%s: handshake succeeded", what);
        cr_expect_eq(cli.code, TLSKIT_E_VERIFY, "%s: %s: %s", what,
                     tlskit_error_name(cli.code), cli.err);
    }
    tk_side_free(&srv);
    tk_side_free(&cli);
    tlskit_config_free(scfg);
}

TK_TEST(config, ca_file_dir_mem_verify)
{
    /* file */
    tlskit_config *c = tk_client_config("ca.crt");
    handshake_with_client(c, 1, "CA file");
    tlskit_config_free(c);

    /* memory */
    size_t len;
    char *pem = tk_read_file(tk_cert("ca.crt"), &len);
    c = tlskit_config_new();
    cr_assert_eq(tlskit_config_add_ca_mem(c, pem, len), 0, "%s", tk_str(tlskit_config_error(c)));
    memset(pem, 0, len); /* copied */
    handshake_with_client(c, 1, "CA in memory");
    tlskit_config_free(c);
    free(pem);

    /* directory in c_rehash layout: HASH.0 */
    char dir[512], path[700];
    tk_tmpdir(dir, sizeof dir);
    FILE *f = fopen(tk_cert("ca.crt"), "r");
    cr_assert_not_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    cr_assert_not_null(x);
    snprintf(path, sizeof path, "%s/%08lx.0", dir, X509_subject_name_hash(x));
    X509_free(x);
    pem = tk_read_file(tk_cert("ca.crt"), &len);
    tk_write_file(path, pem, len);
    free(pem);
    c = tlskit_config_new();
    cr_assert_eq(tlskit_config_add_ca_dir(c, dir), 0, "%s", tk_str(tlskit_config_error(c)));
    handshake_with_client(c, 1, "CA directory");
    tlskit_config_free(c);

    /* an empty directory is a valid (useless) trust store: verification then fails */
    unlink(path);
    c = tlskit_config_new();
    cr_assert_eq(tlskit_config_add_ca_dir(c, dir), 0, "%s", tk_str(tlskit_config_error(c)));
    handshake_with_client(c, 0, "empty CA directory");
    tlskit_config_free(c);
    tk_rmtree(dir);
}

TK_TEST(config, ca_calls_add_up)
{
    tlskit_config *c = tk_client_config("other-ca.crt");
    handshake_with_client(c, 0, "other CA only");
    tlskit_config_free(c);

    c = tk_client_config("other-ca.crt");
    cr_assert_eq(tlskit_config_add_ca_file(c, tk_cert("ca.crt")), 0);
    handshake_with_client(c, 1, "other CA, then our CA");
    tlskit_config_free(c);

    /* A failing call does not throw away what was loaded before. */
    c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_add_ca_file(c, "/nonexistent/ca.crt"), -1);
    handshake_with_client(c, 1, "CA, then a failed CA call");
    tlskit_config_free(c);
}

/* ---- protocols ---------------------------------------------------------------------- */

TK_TEST(config, protocol_parse)
{
    const struct {
        const char *text;
        int want;
    } cases[] = {
        {"1.2", TLSKIT_TLS1_2},     {"1.3", TLSKIT_TLS1_3},    {"tls1.2", TLSKIT_TLS1_2},
        {"tls1.3", TLSKIT_TLS1_3},  {"TLSv1.2", TLSKIT_TLS1_2}, {"TLSv1.3", TLSKIT_TLS1_3},
        {"1.1", -1},     {"1.0", -1},     {"tls1.1", -1},  {"TLSv1.1", -1}, {"TLSv1", -1},
        {"ssl3", -1},    {"SSLv3", -1},   {"", -1},        {"1.4", -1},     {"2", -1},
        {"1", -1},       {"1.2x", -1},    {" 1.2", -1},    {"1.2 ", -1},    {"tls", -1},
        {"dtls1.2", -1}, {"DTLSv1.2", -1}, {"1.3.0", -1},  {"0x0303", -1},  {"-1", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(tlskit_protocol_parse(cases[i].text), cases[i].want,
                     "tlskit_protocol_parse(\"%s\") = %#x, want %#x", cases[i].text,
                     tlskit_protocol_parse(cases[i].text), cases[i].want);
}

TK_TEST(config, protocol_ranges)
{
    const struct {
        int min, max, ok;
    } cases[] = {
        {TLSKIT_TLS1_2, TLSKIT_TLS1_3, 1}, {TLSKIT_TLS1_2, TLSKIT_TLS1_2, 1},
        {TLSKIT_TLS1_3, TLSKIT_TLS1_3, 1}, {TLSKIT_TLS1_3, TLSKIT_TLS1_2, 0},
        {0x0301, TLSKIT_TLS1_3, 0},        {0x0302, TLSKIT_TLS1_2, 0},
        {0x0300, 0x0303, 0},               {TLSKIT_TLS1_2, 0x0305, 0},
        {-1, TLSKIT_TLS1_3, 0},            {TLSKIT_TLS1_2, -1, 0},
        {0xfefd, 0xfefd, 0}, /* DTLS 1.2 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tlskit_config *cfg = tlskit_config_new();
        int rc = tlskit_config_set_protocols(cfg, cases[i].min, cases[i].max);
        int code = tlskit_config_error_code(cfg);
        if (cases[i].ok) {
            cr_expect_eq(rc, 0, "%#x-%#x: %s", cases[i].min, cases[i].max,
                         tk_str(tlskit_config_error(cfg)));
        } else {
            cr_expect_eq(rc, -1, "%#x-%#x accepted", cases[i].min, cases[i].max);
            cr_expect(code == TLSKIT_E_INVALID || code == TLSKIT_E_CONFIG, "%#x-%#x: %s",
                      cases[i].min, cases[i].max, tlskit_error_name(code));
            const char *msg = tlskit_config_error(cfg);
            cr_expect(msg != NULL && *msg != '\0', "%#x-%#x: no message", cases[i].min,
                      cases[i].max);
        }
        tlskit_config_free(cfg);
    }
}

/* Secure defaults, seen through the escape hatch: TLS 1.2 minimum, no renegotiation. */
TK_TEST(config, secure_defaults_in_ssl_ctx)
{
    tlskit_config *cfg = tlskit_config_new();
    SSL_CTX *ctx = tlskit_config_ssl_ctx(cfg);
    cr_assert_not_null(ctx);
    long min = SSL_CTX_get_min_proto_version(ctx);
    cr_expect(min == TLS1_2_VERSION || min == TLS1_3_VERSION, "minimum protocol %#lx", min);
    cr_expect(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION, "renegotiation allowed");
    cr_expect_geq(SSL_CTX_get_security_level(ctx), 2, "security level %d",
                  SSL_CTX_get_security_level(ctx));
    tlskit_config_free(cfg);
}

/* ---- ciphers and groups ------------------------------------------------------------ */

TK_TEST(config, cipher_strings)
{
    const struct {
        int which; /* 0 ciphers (1.2), 1 ciphersuites (1.3), 2 groups */
        const char *text;
        int ok;
    } cases[] = {
        {0, "ECDHE-ECDSA-AES128-GCM-SHA256", 1},
        {0, "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384", 1},
        {0, "HIGH:!aNULL", 1},
        {0, "NO-SUCH-CIPHER", 0},
        {0, "", 0},
        {0, "!ALL", 0},
        {1, "TLS_AES_128_GCM_SHA256", 1},
        {1, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256", 1},
        {1, "TLS_NO_SUCH_SUITE", 0},
        {1, "ECDHE-ECDSA-AES128-GCM-SHA256", 0}, /* a 1.2 cipher is not a 1.3 suite */
        {2, "X25519:P-256", 1},
        {2, "P-384", 1},
        {2, "X25519", 1},
        {2, "NO-SUCH-GROUP", 0},
        {2, "X25519:NO-SUCH-GROUP", 0},
        {2, "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tlskit_config *cfg = tlskit_config_new();
        int rc = cases[i].which == 0   ? tlskit_config_set_ciphers(cfg, cases[i].text)
                 : cases[i].which == 1 ? tlskit_config_set_ciphersuites(cfg, cases[i].text)
                                       : tlskit_config_set_groups(cfg, cases[i].text);
        int code = tlskit_config_error_code(cfg);
        const char *msg = tlskit_config_error(cfg);
        static const char *const kind[] = {"ciphers", "ciphersuites", "groups"};
        if (cases[i].ok) {
            cr_expect_eq(rc, 0, "%s \"%s\": %s", kind[cases[i].which], cases[i].text,
                         tk_str(msg));
        } else {
            cr_expect_eq(rc, -1, "%s \"%s\" accepted", kind[cases[i].which], cases[i].text);
            cr_expect_eq(code, TLSKIT_E_CONFIG, "%s \"%s\": %s: %s", kind[cases[i].which],
                         cases[i].text, tlskit_error_name(code), tk_str(msg));
            if (*cases[i].text != '\0' && cases[i].text[0] != '!')
                cr_expect(tk_contains(msg, cases[i].which == 2 ? "NO-SUCH-GROUP"
                                                                 : cases[i].text) ||
                              tk_contains_ci(msg, kind[cases[i].which]) ||
                              tk_contains_ci(msg, "cipher") || tk_contains_ci(msg, "group"),
                          "%s \"%s\": message names neither the value nor the setting: %s",
                          kind[cases[i].which], cases[i].text, tk_str(msg));
        }
        tlskit_config_free(cfg);
    }
}

/* The chosen suite, 1.2 cipher and group are the ones negotiated. */
TK_TEST(config, ciphers_and_groups_take_effect)
{
    tlskit_config *s = tk_server_config("server");
    tlskit_config *c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_ciphersuites(c, "TLS_CHACHA20_POLY1305_SHA256"), 0);
    cr_assert_eq(tlskit_config_set_groups(c, "P-384"), 0);
    struct tk_side srv = {.cfg = s}, cli = {.cfg = c, .servername = "localhost"};
    tk_handshake_pair(&srv, &cli);
    cr_assert_eq(cli.rc, 0, "%s", cli.err);
    cr_assert_eq(srv.rc, 0, "%s", srv.err);
    cr_expect_str_eq(tk_str(tlskit_conn_cipher(cli.conn)), "TLS_CHACHA20_POLY1305_SHA256");
    cr_expect_str_eq(tk_str(tlskit_conn_cipher(srv.conn)), "TLS_CHACHA20_POLY1305_SHA256");
    const char *g = tlskit_conn_group(cli.conn);
    cr_expect(g != NULL && (strcmp(g, "secp384r1") == 0 || strcmp(g, "P-384") == 0),
              "group %s", tk_str(g));
    tk_side_free(&srv);
    tk_side_free(&cli);
    tlskit_config_free(c);

    c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_protocols(c, TLSKIT_TLS1_2, TLSKIT_TLS1_2), 0);
    cr_assert_eq(tlskit_config_set_ciphers(c, "ECDHE-ECDSA-AES128-GCM-SHA256"), 0);
    struct tk_side srv2 = {.cfg = s}, cli2 = {.cfg = c, .servername = "localhost"};
    tk_handshake_pair(&srv2, &cli2);
    cr_assert_eq(cli2.rc, 0, "%s", cli2.err);
    cr_expect_str_eq(tk_str(tlskit_conn_protocol(cli2.conn)), "TLSv1.2");
    cr_expect_str_eq(tk_str(tlskit_conn_cipher(cli2.conn)), "ECDHE-ECDSA-AES128-GCM-SHA256");
    tk_side_free(&srv2);
    tk_side_free(&cli2);
    tlskit_config_free(c);

    /* Nothing in common: the handshake fails as a protocol error. */
    c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_protocols(c, TLSKIT_TLS1_2, TLSKIT_TLS1_2), 0);
    cr_assert_eq(tlskit_config_set_ciphers(c, "ECDHE-RSA-AES128-GCM-SHA256"), 0);
    struct tk_side srv3 = {.cfg = s}, cli3 = {.cfg = c, .servername = "localhost"};
    tk_handshake_pair(&srv3, &cli3);
    cr_expect_eq(cli3.rc, -1, "handshake with no common cipher succeeded");
    cr_expect_eq(cli3.code, TLSKIT_E_PROTOCOL, "%s: %s", tlskit_error_name(cli3.code), cli3.err);
    cr_expect_eq(srv3.rc, -1);
    cr_expect_eq(srv3.code, TLSKIT_E_PROTOCOL, "%s: %s", tlskit_error_name(srv3.code), srv3.err);
    cr_expect(tk_contains(srv3.err, "no shared cipher"), "%s", srv3.err);
    tk_side_free(&srv3);
    tk_side_free(&cli3);
    tlskit_config_free(c);
    tlskit_config_free(s);
}

/* ---- timeouts and socket options ---------------------------------------------------- */

TK_TEST(config, timeouts)
{
    static const int kinds[] = {TLSKIT_TIMEOUT_CONNECT, TLSKIT_TIMEOUT_HANDSHAKE,
                                TLSKIT_TIMEOUT_READ, TLSKIT_TIMEOUT_WRITE, TLSKIT_TIMEOUT_IDLE};
    tlskit_config *cfg = tlskit_config_new();
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        cr_expect_eq(tlskit_config_set_timeout(cfg, kinds[i], 0), 0, "kind %d, 0", kinds[i]);
        cr_expect_eq(tlskit_config_set_timeout(cfg, kinds[i], 1500), 0, "kind %d", kinds[i]);
        cr_expect_eq(tlskit_config_set_timeout(cfg, kinds[i], -1), -1, "kind %d, -1 accepted",
                     kinds[i]);
        int code = tlskit_config_error_code(cfg);
        cr_expect(code == TLSKIT_E_INVALID || code == TLSKIT_E_CONFIG, "kind %d: %s", kinds[i],
                  tlskit_error_name(code));
        cr_expect_eq(tlskit_config_set_timeout(cfg, kinds[i], INT64_MIN), -1);
    }
    cr_expect_eq(tlskit_config_set_timeout(cfg, 5, 1000), -1, "unknown timeout kind accepted");
    cr_expect_eq(tlskit_config_set_timeout(cfg, -1, 1000), -1, "unknown timeout kind accepted");
    tlskit_config_free(cfg);
}

TK_TEST(config, socket_options_and_modes)
{
    tlskit_config *cfg = tlskit_config_new();
    cr_expect_eq(tlskit_config_set_buffer_sizes(cfg, 0, 0), 0);
    cr_expect_eq(tlskit_config_set_buffer_sizes(cfg, 65536, 131072), 0);
    cr_expect_eq(tlskit_config_set_buffer_sizes(cfg, -1, 0), -1);
    cr_expect_eq(tlskit_config_set_buffer_sizes(cfg, 0, -1), -1);
    cr_expect_eq(tlskit_config_set_keepalive(cfg, 1, 30, 5, 3), 0);
    cr_expect_eq(tlskit_config_set_keepalive(cfg, 0, 0, 0, 0), 0);
    cr_expect_eq(tlskit_config_set_keepalive(cfg, 1, -1, 0, 0), -1);
    cr_expect_eq(tlskit_config_set_keepalive(cfg, 1, 0, -1, 0), -1);
    cr_expect_eq(tlskit_config_set_keepalive(cfg, 1, 0, 0, -1), -1);
    cr_expect_eq(tlskit_config_set_verify_client(cfg, TLSKIT_VERIFY_CLIENT_NONE), 0);
    cr_expect_eq(tlskit_config_set_verify_client(cfg, TLSKIT_VERIFY_CLIENT_OPTIONAL), 0);
    cr_expect_eq(tlskit_config_set_verify_client(cfg, TLSKIT_VERIFY_CLIENT_REQUIRED), 0);
    cr_expect_eq(tlskit_config_set_verify_client(cfg, 3), -1, "verify mode 3 accepted");
    cr_expect_eq(tlskit_config_set_verify_client(cfg, -1), -1, "verify mode -1 accepted");
    tlskit_config_free(cfg);
}

TK_TEST(config, session_tickets_range)
{
    tlskit_config *cfg = tlskit_config_new();
    SSL_CTX *ctx = tlskit_config_ssl_ctx(cfg);
    cr_expect_eq(SSL_CTX_get_num_tickets(ctx), 1, "default tickets");
    cr_expect_eq(SSL_CTX_get_read_ahead(ctx), 1, "read-ahead is off");
    cr_expect_eq(tlskit_config_set_session_tickets(cfg, 0), 0);
    cr_expect_eq(SSL_CTX_get_num_tickets(ctx), 0);
    cr_expect(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET, "0 tickets left TLS 1.2 tickets on");
    cr_expect_eq(tlskit_config_set_session_tickets(cfg, 16), 0);
    cr_expect_eq(SSL_CTX_get_num_tickets(ctx), 16);
    cr_expect_not(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET);
    cr_expect_eq(tlskit_config_set_session_tickets(cfg, 17), -1, "17 tickets accepted");
    cr_expect_eq(tlskit_config_error_code(cfg), TLSKIT_E_INVALID);
    cr_expect(tk_contains(tlskit_config_error(cfg), "17"), "%s", tlskit_config_error(cfg));
    cr_expect_eq(tlskit_config_set_session_tickets(cfg, -1), -1, "-1 tickets accepted");
    cr_expect_eq(SSL_CTX_get_num_tickets(ctx), 16, "a refused value changed the setting");
    tlskit_config_free(cfg);
}

/* ---- sharing ----------------------------------------------------------------------- */

#define SHARE_THREADS 6
#define SHARE_ROUNDS 4

struct share_arg {
    tlskit_config *scfg, *ccfg;
    int ok;
    char err[1100];
};

static void *share_worker(void *p)
{
    struct share_arg *a = p;
    for (int r = 0; r < SHARE_ROUNDS; r++) {
        struct tk_side srv = {.cfg = a->scfg}, cli = {.cfg = a->ccfg, .servername = "localhost"};
        /* not tk_handshake_pair: it asserts, and Criterion asserts belong to the main
         * thread; run both sides here with plain checks */
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            snprintf(a->err, sizeof a->err, "socketpair: %s", strerror(errno));
            return NULL;
        }
        srv.fd = sv[0];
        cli.fd = sv[1];
        srv.conn = tlskit_conn_new(a->scfg);
        cli.conn = tlskit_conn_new(a->ccfg);
        int ok = srv.conn && cli.conn && tlskit_conn_wrap_server(srv.conn, srv.fd) == 0 &&
                 tlskit_conn_wrap_client(cli.conn, cli.fd, "localhost") == 0;
        if (ok) {
            tlskit_conn_set_nonblocking(srv.conn, 1);
            tlskit_conn_set_nonblocking(cli.conn, 1);
            ok = tk_nb_handshake(cli.conn, srv.conn, 30000, a->err, sizeof a->err, NULL) == 0;
        }
        tlskit_conn_free(srv.conn);
        tlskit_conn_free(cli.conn);
        close(sv[0]);
        close(sv[1]);
        if (!ok) {
            if (a->err[0] == '\0')
                snprintf(a->err, sizeof a->err, "handshake did not complete");
            return NULL;
        }
        a->ok++;
    }
    return NULL;
}

TK_TEST(config, shared_between_threads)
{
    tlskit_config *scfg = tk_server_config("server");
    tlskit_config *ccfg = tk_client_config("ca.crt");
    struct share_arg args[SHARE_THREADS];
    pthread_t t[SHARE_THREADS];
    for (int i = 0; i < SHARE_THREADS; i++) {
        args[i] = (struct share_arg){.scfg = scfg, .ccfg = ccfg};
        t[i] = tk_thread_start(share_worker, &args[i]);
    }
    for (int i = 0; i < SHARE_THREADS; i++)
        tk_thread_join(t[i]);
    for (int i = 0; i < SHARE_THREADS; i++)
        cr_expect_eq(args[i].ok, SHARE_ROUNDS, "thread %d: %d/%d handshakes: %s", i, args[i].ok,
                     SHARE_ROUNDS, args[i].err);
    tlskit_config_free(scfg);
    tlskit_config_free(ccfg);
}

/* Connections hold a reference: the config may be freed while they are in use. */
TK_TEST(config, freed_while_connections_use_it)
{
    tlskit_config *scfg = tk_server_config("server");
    tlskit_config *ccfg = tk_client_config("ca.crt");
    int sv[2];
    tk_socketpair(sv);
    tlskit_conn *s = tlskit_conn_new(scfg), *c = tlskit_conn_new(ccfg);
    cr_assert(s != NULL && c != NULL);
    tlskit_config_free(scfg);
    tlskit_config_free(ccfg);
    cr_assert_eq(tlskit_conn_wrap_server(s, sv[0]), 0, "%s", tk_str(tlskit_conn_error(s)));
    cr_assert_eq(tlskit_conn_wrap_client(c, sv[1], "localhost"), 0);
    cr_assert_eq(tlskit_conn_set_nonblocking(s, 1), 0);
    cr_assert_eq(tlskit_conn_set_nonblocking(c, 1), 0);
    char err[1100];
    int rc = tk_nb_handshake(c, s, 30000, err, sizeof err, NULL);
    cr_expect_eq(rc, 0, "%s", err);
    tlskit_conn_free(s);
    tlskit_conn_free(c);
    close(sv[0]);
    close(sv[1]);
}

/* ---- frozen once in use ---------------------------------------------------------- */

/* Every setter, with arguments that succeed on a fresh config. */
static int set_keypair_file(tlskit_config *c)
{
    return tlskit_config_set_keypair_file(c, tk_cert("server.crt"), tk_cert("server.key"));
}
static int set_keypair_mem(tlskit_config *c)
{
    size_t clen, klen;
    char *crt = tk_read_file(tk_cert("server.crt"), &clen);
    char *key = tk_read_file(tk_cert("server.key"), &klen);
    int rc = tlskit_config_set_keypair_mem(c, crt, clen, key, klen);
    free(crt);
    free(key);
    return rc;
}
static int add_ca_file(tlskit_config *c) { return tlskit_config_add_ca_file(c, tk_cert("ca.crt")); }
static int add_ca_dir(tlskit_config *c) { return tlskit_config_add_ca_dir(c, tk_certs_dir()); }
static int add_ca_mem(tlskit_config *c)
{
    size_t len;
    char *ca = tk_read_file(tk_cert("ca.crt"), &len);
    int rc = tlskit_config_add_ca_mem(c, ca, len);
    free(ca);
    return rc;
}
static int add_system_ca(tlskit_config *c) { return tlskit_config_add_system_ca(c); }
static int noverifycert(tlskit_config *c) { return tlskit_config_insecure_noverifycert(c); }
static int noverifyname(tlskit_config *c) { return tlskit_config_insecure_noverifyname(c); }
static int verify_client(tlskit_config *c)
{
    return tlskit_config_set_verify_client(c, TLSKIT_VERIFY_CLIENT_OPTIONAL);
}
static int protocols(tlskit_config *c)
{
    return tlskit_config_set_protocols(c, TLSKIT_TLS1_2, TLSKIT_TLS1_2);
}
static int ciphers(tlskit_config *c)
{
    return tlskit_config_set_ciphers(c, "ECDHE-ECDSA-AES256-GCM-SHA384");
}
static int suites(tlskit_config *c)
{
    return tlskit_config_set_ciphersuites(c, "TLS_AES_256_GCM_SHA384");
}
static int groups(tlskit_config *c) { return tlskit_config_set_groups(c, "P-256"); }
static int timeout(tlskit_config *c)
{
    return tlskit_config_set_timeout(c, TLSKIT_TIMEOUT_HANDSHAKE, 1);
}
static int buffers(tlskit_config *c) { return tlskit_config_set_buffer_sizes(c, 65536, 65536); }
static int nodelay(tlskit_config *c) { return tlskit_config_set_nodelay(c, 0); }
static int tickets(tlskit_config *c) { return tlskit_config_set_session_tickets(c, 0); }
static int keepalive(tlskit_config *c) { return tlskit_config_set_keepalive(c, 1, 30, 5, 3); }

static const struct {
    const char *name;
    int (*set)(tlskit_config *);
} setters[] = {
    {"set_keypair_file", set_keypair_file}, {"set_keypair_mem", set_keypair_mem},
    {"add_ca_file", add_ca_file}, {"add_ca_dir", add_ca_dir}, {"add_ca_mem", add_ca_mem},
    {"add_system_ca", add_system_ca}, {"insecure_noverifycert", noverifycert},
    {"insecure_noverifyname", noverifyname}, {"set_verify_client", verify_client},
    {"set_protocols", protocols}, {"set_ciphers", ciphers}, {"set_ciphersuites", suites},
    {"set_groups", groups}, {"set_timeout", timeout}, {"set_buffer_sizes", buffers},
    {"set_nodelay", nodelay}, {"set_session_tickets", tickets}, {"set_keepalive", keepalive},
};

TK_TEST(config, fresh_config_takes_every_setter)
{
    tlskit_config *cfg = tlskit_config_new();
    cr_assert_not_null(cfg);
    for (size_t i = 0; i < sizeof setters / sizeof setters[0]; i++) {
        cr_expect_eq(setters[i].set(cfg), 0, "%s: %s", setters[i].name,
                     tlskit_config_error(cfg));
        cr_expect_eq(tlskit_config_error_code(cfg), TLSKIT_E_NONE, "%s", setters[i].name);
    }
    tlskit_config_free(cfg);
}

/* The three ways a config comes into use; each returns what to free afterwards. */
enum user { BY_CONN, BY_LISTENER, BY_ENGINE };
static const char *const user_name[] = {"tlskit_conn_new", "tlskit_listener_new",
                                        "tlskit_engine_new"};

static void *take_config(enum user how, tlskit_config *cfg)
{
    static const struct tlskit_engine_handlers none = {0};
    void *user = how == BY_CONN       ? (void *)tlskit_conn_new(cfg)
                 : how == BY_LISTENER ? (void *)tlskit_listener_new(cfg)
                                      : (void *)tlskit_engine_new(cfg, &none);
    cr_assert_not_null(user, "%s", user_name[how]);
    return user;
}

static void drop_config_user(enum user how, void *user)
{
    if (how == BY_CONN)
        tlskit_conn_free(user);
    else if (how == BY_LISTENER)
        tlskit_listener_free(user);
    else
        tlskit_engine_free(user);
}

/* A config in use refuses every setter, changes nothing, and still serves connections. */
TK_TEST(config, frozen_once_in_use)
{
    static const char *const in_use[] = {"config in use: build a new one and reload", NULL};
    for (enum user how = BY_CONN; how <= BY_ENGINE; how++) {
        tlskit_config *scfg = tk_server_config("server");
        void *user = take_config(how, scfg);
        for (size_t i = 0; i < sizeof setters / sizeof setters[0]; i++) {
            char what[96];
            snprintf(what, sizeof what, "%s after %s", setters[i].name, user_name[how]);
            expect_error(what, setters[i].set(scfg), scfg, TLSKIT_E_INVALID, in_use);
        }
        /* set_protocols(1.2, 1.2) above did not reach the context, nor the timeout */
        cr_expect_eq(SSL_CTX_get_max_proto_version(tlskit_config_ssl_ctx(scfg)),
                     TLS1_3_VERSION, "after %s", user_name[how]);

        tlskit_config *ccfg = tk_client_config("ca.crt");
        struct tk_side srv = {.cfg = scfg}, cli = {.cfg = ccfg, .servername = "localhost"};
        tk_handshake_pair(&srv, &cli);
        cr_expect_eq(srv.rc, 0, "after %s: %s", user_name[how], srv.err);
        cr_expect_eq(cli.rc, 0, "after %s: %s", user_name[how], cli.err);
        cr_expect_str_eq(tk_str(tlskit_conn_protocol(cli.conn)), "TLSv1.3");
        tk_side_free(&srv);
        tk_side_free(&cli);
        drop_config_user(how, user);
        tlskit_config_free(ccfg);
        tlskit_config_free(scfg);
    }
}

/* Frozen for good: once the last user is gone the config still refuses changes (a
 * connection made later would otherwise see settings the earlier ones did not). */
TK_TEST(config, stays_frozen_after_its_users_are_gone)
{
    tlskit_config *cfg = tk_client_config("ca.crt");
    tlskit_conn_free(tlskit_conn_new(cfg));
    expect_error("set_timeout after the connection was freed",
                 tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_READ, 10), cfg,
                 TLSKIT_E_INVALID, NULL);
    cr_expect_eq(tlskit_config_set_nodelay(cfg, 1), -1);
    tlskit_config_free(cfg);
}
