/* SPDX-License-Identifier: MIT */
/*
 * tlsclient --check, --warn-days and --json, and tlsserver --log-format json, run as a
 * user runs them against tlsserver and openssl s_server: every field of the report, the
 * exit codes 0, 3, 5 and 8, JSON that parses and matches schemas/tlsclient-check.schema.json
 * (checked by tests/check_json.py with Debian's python3-jsonschema). Also the library
 * getters behind the report (in-process) and the apps' JSON writer (apps/common/json.c).
 */
#include "common.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"

TK_SUITE(check);

#define RUN_MS 60000
#define PYTHON "/usr/bin/python3"
#define SCHEMA TK_SOURCE_DIR "/schemas/tlsclient-check.schema.json"
#define SERVER_SCHEMA TK_SOURCE_DIR "/schemas/tlsserver-log.schema.json"
#define CHECK_JSON TK_SOURCE_DIR "/tests/check_json.py"

/* ---- helpers ------------------------------------------------------------------------ */

/* tlsclient with args (NULL-terminated), a line on stdin that --check must not send. */
static int client(struct tk_proc *p, const char *const args[])
{
    static const char in[] = "must not be sent\n";
    return tk_run_app(p, tk_client_bin(), args, in, sizeof in - 1, RUN_MS);
}

/* Run check_json.py over text (one object on one line, or with lines set every line that
 * starts with '{'), with tlsclient's schema (schema 1), tlsserver's (2) or none (0), and
 * print the values at paths
 * into out ("0:PATH=VALUE\n" ...). Asserts that it parses (and matches). */
static void json_values(const char *text, int schema, int lines, const char *const paths[],
                        char *out, size_t outlen)
{
    char dir[256], file[300];
    tk_tmpdir(dir, sizeof dir);
    snprintf(file, sizeof file, "%s/out.json", dir);
    tk_write_file(file, text, strlen(text));
    const char *argv[40] = {PYTHON, CHECK_JSON};
    int n = 2;
    if (schema) {
        argv[n++] = "--schema";
        argv[n++] = schema == 2 ? SERVER_SCHEMA : SCHEMA;
    }
    if (lines)
        argv[n++] = "--lines";
    argv[n++] = file;
    for (int i = 0; paths != NULL && paths[i] != NULL && n < 39; i++)
        argv[n++] = paths[i];
    argv[n] = NULL;
    struct tk_proc p;
    int rc = tk_run(&p, argv, NULL, 0, RUN_MS);
    snprintf(out, outlen, "%s", tk_str(p.outbuf));
    char err[1024];
    snprintf(err, sizeof err, "%s", tk_str(p.errbuf));
    tk_proc_free(&p);
    tk_rmtree(dir);
    cr_assert_eq(rc, 0, "check_json.py failed: %s\non: %s", err, text);
}

/* The one line of stderr that starts with '{' (relay mode's --json), copied to out. */
static void json_line_of(const char *text, char *out, size_t outlen)
{
    const char *s = text;
    while (s != NULL && *s != '{') {
        s = strchr(s, '\n');
        s = s != NULL ? s + 1 : NULL;
    }
    cr_assert_not_null(s, "no JSON line in: %s", tk_str(text));
    const char *nl = strchr(s, '\n');
    cr_assert_not_null(nl);
    snprintf(out, outlen, "%.*s\n", (int)(nl - s + 0), s);
}

/* The certificate's SHA-256 as the report prints it, and its key as --pin takes it. */
static void cert_hashes(const char *path, char *fp, size_t fplen, char *pin, size_t pinlen)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    cr_assert_not_null(x);
    unsigned char md[32];
    unsigned int mdlen = 0;
    cr_assert_eq(X509_digest(x, EVP_sha256(), md, &mdlen), 1);
    size_t used = (size_t)snprintf(fp, fplen, "SHA256");
    for (unsigned i = 0; i < mdlen; i++)
        used += (size_t)snprintf(fp + used, fplen - used, ":%02X", md[i]);
    unsigned char *der = NULL;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    cr_assert(len > 0);
    EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL);
    OPENSSL_free(der);
    char b64[64];
    EVP_EncodeBlock((unsigned char *)b64, md, 32);
    snprintf(pin, pinlen, "sha256//%s", b64);
    X509_free(x);
}

/* ---- the text report ------------------------------------------------------------------ */

TK_TEST(check, text_report_every_field)
{
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", NULL);
    struct tk_proc p;
    const char *args[] = {"--check", "--ca", tk_cert("ca.crt"), "localhost", s.portstr, NULL};
    int rc = client(&p, args);
    const char *o = tk_str(p.outbuf);
    cr_expect_eq(rc, 0, "exit %d: %s / %s", rc, o, tk_str(p.errbuf));
    char want[512], fp[128], pin[80];
    cert_hashes(tk_cert("server.crt"), fp, sizeof fp, pin, sizeof pin);
    snprintf(want, sizeof want, "peer:         127.0.0.1:%d\n", s.port);
    cr_expect(tk_contains(o, want), "%s", o);
    cr_expect(tk_matches(o, "\nprotocol: +TLSv1\\.3\n"), "%s", o);
    cr_expect(tk_matches(o, "\ncipher: +TLS_[A-Z0-9_]+\n"), "%s", o);
    cr_expect(tk_matches(o, "\ngroup: +[A-Za-z0-9_-]+\n"), "%s", o);
    cr_expect(tk_contains(o, "\nSNI sent:     localhost\n"), "%s", o);
    cr_expect(tk_contains(o, "\nALPN:         (none)\n"), "%s", o);
    cr_expect(tk_contains(o, "\nresumed:      no\n"), "%s", o);
    cr_expect(tk_contains(o, "\nverify:       ok (trust anchor: CN=tlskit local CA)\n"), "%s", o);
    cr_expect(tk_contains(o, "\nchain:        1 certificate as sent by the server\n"), "%s", o);
    cr_expect(tk_contains(o, "  [0] subject:   CN=localhost\n"), "%s", o);
    cr_expect(tk_contains(o, "      issuer:    CN=tlskit local CA\n"), "%s", o);
    cr_expect(tk_contains(o, "      SANs:      DNS:localhost, IP:127.0.0.1, IP:::1\n"), "%s", o);
    cr_expect(tk_matches(o, "      valid:     20[0-9-]+ [0-9:]+ UTC to 20[0-9-]+ [0-9:]+ UTC "
                            "\\(8[0-9][0-9] days left\\)\n"), "%s", o);
    cr_expect(tk_contains(o, "      key:       EC P-256 (256 bits)\n"), "%s", o);
    cr_expect(tk_contains(o, "      signature: ecdsa-with-SHA256\n"), "%s", o);
    snprintf(want, sizeof want, "      SHA-256:   %s\n", fp);
    cr_expect(tk_contains(o, want), "want %s in %s", fp, o);
    snprintf(want, sizeof want, "      pin:       %s\n", pin);
    cr_expect(tk_contains(o, want), "want %s in %s", pin, o);
    cr_expect(tk_contains(o, "      chain:     verified path, chained to the trust anchor\n"),
              "%s", o);
    cr_expect(tk_matches(o, "\ntiming: +DNS [0-9]+\\.[0-9]{3} ms, connect [0-9]+\\.[0-9]{3} ms, "
                            "handshake [0-9]+\\.[0-9]{3} ms, total [0-9]+\\.[0-9]{3} ms\n"),
              "%s", o);
    cr_expect(tk_contains(o, "\nresult:       ok\n"), "%s", o);
    cr_expect(!tk_contains(o, "must not be sent"), "%s", o);
    tk_proc_free(&p);
    /* stdin untouched: the server got nothing, and the close was clean. */
    cr_expect(tk_proc_wait_for(&s.p, 2, " ok\n", RUN_MS), "%s", tk_str(s.p.errbuf));
    cr_expect(tk_matches(tk_str(s.p.errbuf), "conn 127\\.0\\.0\\.1:[0-9]+ proto=TLSv1\\.3 "
                                             "cipher=[^ ]+ alpn=- in=0 out=0 time=[0-9.]+s ok"),
              "%s", tk_str(s.p.errbuf));
    tk_server_stop(&s);
}

/* ---- JSON: success, verify failure, connect failure, --warn-days ---------------------- */

TK_TEST(check, json_success_matches_schema)
{
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", NULL);
    struct tk_proc p;
    const char *args[] = {"--check", "--json", "--ca", tk_cert("ca.crt"), "localhost",
                          s.portstr, NULL};
    int rc = client(&p, args);
    cr_expect_eq(rc, 0, "exit %d: %s", rc, tk_str(p.errbuf));
    static const char *const paths[] = {
        "peer", "protocol", "sni", "alpn", "resumed", "verify.ok", "verify.result",
        "verify.trust_anchor", "chain_length", "chain.0.subject", "chain.0.issuer",
        "chain.0.sans", "chain.0.key.type", "chain.0.key.bits", "chain.0.key.group",
        "chain.0.signature_algorithm", "chain.0.sha256_fingerprint", "chain.0.spki_pin",
        "chain.0.in_verified_path", "chain.0.chained_to_anchor", "chain.0.is_trust_anchor",
        "chain.0.expires_within_warn_days", "warn_days", "expiring", "exit", "error", NULL};
    char v[8192], want[256], fp[128], pin[80];
    json_values(tk_str(p.outbuf), 1, 0, paths, v, sizeof v);
    cert_hashes(tk_cert("server.crt"), fp, sizeof fp, pin, sizeof pin);
    snprintf(want, sizeof want, "0:peer=\"127.0.0.1:%d\"\n", s.port);
    cr_expect(tk_contains(v, want), "%s", v);
    static const char *const expect[] = {
        "0:protocol=\"TLSv1.3\"\n", "0:sni=\"localhost\"\n", "0:alpn=null\n",
        "0:resumed=false\n", "0:verify.ok=true\n", "0:verify.result=\"ok\"\n",
        "0:verify.trust_anchor=\"CN=tlskit local CA\"\n", "0:chain_length=1\n",
        "0:chain.0.subject=\"CN=localhost\"\n", "0:chain.0.issuer=\"CN=tlskit local CA\"\n",
        "0:chain.0.sans=[\"DNS:localhost\", \"IP:127.0.0.1\", \"IP:::1\"]\n",
        "0:chain.0.key.type=\"EC\"\n", "0:chain.0.key.bits=256\n",
        "0:chain.0.key.group=\"P-256\"\n",
        "0:chain.0.signature_algorithm=\"ecdsa-with-SHA256\"\n",
        "0:chain.0.in_verified_path=true\n", "0:chain.0.chained_to_anchor=true\n",
        "0:chain.0.is_trust_anchor=false\n", "0:chain.0.expires_within_warn_days=false\n",
        "0:warn_days=null\n", "0:expiring=[]\n", "0:exit=0\n", "0:error=<missing>\n"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        cr_expect(tk_contains(v, expect[i]), "want %s in %s", expect[i], v);
    snprintf(want, sizeof want, "0:chain.0.sha256_fingerprint=\"%s\"\n", fp);
    cr_expect(tk_contains(v, want), "%s", v);
    snprintf(want, sizeof want, "0:chain.0.spki_pin=\"%s\"\n", pin);
    cr_expect(tk_contains(v, want), "%s", v);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

/* No --ca: the system store does not know the test CA. Exit 5, and the JSON still comes,
 * with the error and the chain the server sent. */
TK_TEST(check, json_verify_failure_keeps_chain)
{
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", NULL);
    struct tk_proc p;
    const char *args[] = {"--check", "--json", "localhost", s.portstr, NULL};
    int rc = client(&p, args);
    cr_expect_eq(rc, 5, "exit %d: %s", rc, tk_str(p.errbuf));
    cr_expect(tk_contains(p.errbuf, "certificate verify failed"), "%s", tk_str(p.errbuf));
    static const char *const paths[] = {"protocol", "cipher", "verify.ok", "verify.result",
                                        "chain_length",
                                        "chain.0.subject", "chain.0.in_verified_path",
                                        "exit", "error.code", "error.exit", "error.message",
                                        "timing_ms.handshake", NULL};
    char v[4096];
    json_values(tk_str(p.outbuf), 1, 0, paths, v, sizeof v);
    static const char *const expect[] = {
        /* What the ServerHello settled is known before the certificate failed. */
        "0:protocol=\"TLSv1.3\"\n", "0:cipher=\"TLS_",
        "0:verify.ok=false\n", "0:verify.result=\"unable to get local issuer certificate\"\n",
        "0:chain_length=1\n", "0:chain.0.subject=\"CN=localhost\"\n",
        "0:chain.0.in_verified_path=false\n", "0:exit=5\n",
        "0:error.code=\"TLSKIT_E_VERIFY\"\n", "0:error.exit=5\n",
        "0:error.message=\"handshake with 127.0.0.1:"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        cr_expect(tk_contains(v, expect[i]), "want %s in %s", expect[i], v);
    cr_expect(tk_matches(v, "0:timing_ms.handshake=[0-9]+\\.[0-9]+\n"), "%s", v);
    tk_proc_free(&p);
    /* The text form shows the same: the chain, and the error. */
    int rc2 = client(&p, (const char *const[]){"--check", "localhost", s.portstr, NULL});
    cr_expect_eq(rc2, 5);
    cr_expect(tk_contains(p.outbuf, "  [0] subject:   CN=localhost\n"), "%s", tk_str(p.outbuf));
    cr_expect(tk_contains(p.outbuf, "chain:     not on a verified path\n"), "%s",
              tk_str(p.outbuf));
    cr_expect(tk_contains(p.outbuf, "error:        TLSKIT_E_VERIFY (exit 5): "), "%s",
              tk_str(p.outbuf));
    cr_expect(tk_contains(p.outbuf, "result:       failed\n"), "%s", tk_str(p.outbuf));
    tk_proc_free(&p);
    tk_server_stop(&s);
}

TK_TEST(check, json_connect_failure)
{
    int port;
    int fd = tk_tcp_bound("127.0.0.1", 0, &port); /* bound, not listening: refused */
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct tk_proc p;
    const char *args[] = {"--check", "--json", "127.0.0.1", portstr, NULL};
    int rc = client(&p, args);
    close(fd);
    cr_expect_eq(rc, 3, "exit %d: %s", rc, tk_str(p.errbuf));
    static const char *const paths[] = {"peer", "protocol", "sni", "chain_length", "exit",
                                        "error.code", "error.exit", "error.message",
                                        "timing_ms.dns", "timing_ms.handshake", NULL};
    char v[4096];
    json_values(tk_str(p.outbuf), 1, 0, paths, v, sizeof v);
    static const char *const expect[] = {
        "0:peer=null\n", "0:protocol=null\n", "0:sni=null\n", "0:chain_length=0\n",
        "0:exit=3\n", "0:error.code=\"TLSKIT_E_CONNECT\"\n", "0:error.exit=3\n",
        "Connection refused\"\n", "0:timing_ms.handshake=null\n"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        cr_expect(tk_contains(v, expect[i]), "want %s in %s", expect[i], v);
    cr_expect(tk_matches(v, "0:timing_ms.dns=[0-9]+\\.[0-9]+\n"), "%s", v);
    tk_proc_free(&p);
}

/* The leaf is valid for 825 days (gen-certs.sh): 900 warns (exit 8), 30 does not. */
TK_TEST(check, warn_days)
{
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", NULL);
    struct tk_proc p;
    int rc = client(&p, (const char *const[]){"--check", "--json", "--warn-days", "900", "--ca",
                                              tk_cert("ca.crt"), "localhost", s.portstr,
                                              NULL});
    cr_expect_eq(rc, 8, "exit %d: %s", rc, tk_str(p.errbuf));
    cr_expect(tk_contains(p.errbuf, "1 certificate of the chain expires within 900 days"),
              "%s", tk_str(p.errbuf));
    char v[4096];
    static const char *const paths[] = {"warn_days", "expiring", "exit", "error",
                                        "chain.0.expires_within_warn_days", NULL};
    json_values(tk_str(p.outbuf), 1, 0, paths, v, sizeof v);
    static const char *const expect[] = {"0:warn_days=900\n", "0:expiring=[0]\n", "0:exit=8\n",
                                         "0:error=<missing>\n",
                                         "0:chain.0.expires_within_warn_days=true\n"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        cr_expect(tk_contains(v, expect[i]), "want %s in %s", expect[i], v);
    tk_proc_free(&p);

    rc = client(&p, (const char *const[]){"--check", "--warn-days", "900", "--ca",
                                          tk_cert("ca.crt"), "localhost", s.portstr, NULL});
    cr_expect_eq(rc, 8);
    cr_expect(tk_matches(tk_str(p.outbuf), "\nwarning: +\\[0\\] CN=localhost expires in "
                                           "8[0-9][0-9] days \\(--warn-days 900\\)\n"),
              "%s", tk_str(p.outbuf));
    cr_expect(tk_contains(p.outbuf, "<- expires within --warn-days"), "%s", tk_str(p.outbuf));
    cr_expect(tk_contains(p.outbuf, "result:       certificate expiring\n"), "%s",
              tk_str(p.outbuf));
    tk_proc_free(&p);

    rc = client(&p, (const char *const[]){"--check", "--warn-days", "30", "--ca",
                                          tk_cert("ca.crt"), "localhost", s.portstr, NULL});
    cr_expect_eq(rc, 0, "exit %d: %s", rc, tk_str(p.outbuf));
    cr_expect(!tk_contains(p.outbuf, "warning:"), "%s", tk_str(p.outbuf));
    tk_proc_free(&p);

    /* --warn-days without --check is a usage error. */
    rc = client(&p, (const char *const[]){"--warn-days", "30", "localhost", s.portstr, NULL});
    cr_expect_eq(rc, 2);
    cr_expect(tk_contains(p.errbuf, "--warn-days needs --check"), "%s", tk_str(p.errbuf));
    tk_proc_free(&p);
    tk_server_stop(&s);
}

/* ---- a longer chain: an intermediate that expires first, an RSA leaf whose subject has
 * a quote, a backslash and UTF-8 ------------------------------------------------------- */

static void make_chain(const char *dir)
{
    char ext[300], ikey[300], icsr[300], icrt[300], lkey[300], lcsr[300], lcrt[300];
    snprintf(ext, sizeof ext, "%s/ext.cnf", dir);
    static const char cnf[] = "[inter]\nbasicConstraints=critical,CA:TRUE\n"
                              "keyUsage=critical,keyCertSign,cRLSign\n"
                              "[leaf]\nbasicConstraints=CA:FALSE\n"
                              "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                              "extendedKeyUsage=serverAuth\n";
    tk_write_file(ext, cnf, sizeof cnf - 1);
    snprintf(ikey, sizeof ikey, "%s/inter.key", dir);
    snprintf(icsr, sizeof icsr, "%s/inter.csr", dir);
    snprintf(icrt, sizeof icrt, "%s/inter.crt", dir);
    snprintf(lkey, sizeof lkey, "%s/leaf.key", dir);
    snprintf(lcsr, sizeof lcsr, "%s/leaf.csr", dir);
    snprintf(lcrt, sizeof lcrt, "%s/leaf.crt", dir);
    const char *const req_i[] = {TK_OPENSSL_BIN, "req", "-new", "-newkey", "ec", "-pkeyopt",
                                 "ec_paramgen_curve:P-384", "-nodes", "-keyout", ikey, "-subj",
                                 "/CN=tlskit test intermediate", "-out", icsr, NULL};
    tk_run_ok(req_i, RUN_MS);
    const char *const sign_i[] = {TK_OPENSSL_BIN, "x509", "-req", "-in", icsr, "-CA",
                                  tk_cert("ca.crt"), "-CAkey", tk_cert("ca.key"), "-set_serial",
                                  "4242", "-days", "5", "-extfile", ext, "-extensions", "inter",
                                  "-out", icrt, NULL};
    tk_run_ok(sign_i, RUN_MS);
    const char *const req_l[] = {TK_OPENSSL_BIN, "req", "-new", "-newkey", "rsa:2048", "-nodes",
                                 "-keyout", lkey, "-utf8", "-subj",
                                 "/CN=localhost/O=Q\"uote\\\\Back \xc3\x9c" "n\xc3\xaf" "code",
                                 "-out", lcsr, NULL};
    tk_run_ok(req_l, RUN_MS);
    const char *const sign_l[] = {TK_OPENSSL_BIN, "x509", "-req", "-in", lcsr, "-CA", icrt,
                                  "-CAkey", ikey, "-set_serial", "4243", "-days", "300",
                                  "-sha384", "-extfile", ext, "-extensions", "leaf", "-out",
                                  lcrt, NULL};
    tk_run_ok(sign_l, RUN_MS);
    /* The server sends leaf then intermediate. */
    char chain[300];
    snprintf(chain, sizeof chain, "%s/chain.crt", dir);
    size_t ll, il;
    char *l = tk_read_file(lcrt, &ll), *i = tk_read_file(icrt, &il);
    char *both = malloc(ll + il);
    memcpy(both, l, ll);
    memcpy(both + ll, i, il);
    tk_write_file(chain, both, ll + il);
    free(both);
    free(l);
    free(i);
}

TK_TEST(check, chain_with_intermediate)
{
    char dir[256], chain[300], key[300];
    tk_tmpdir(dir, sizeof dir);
    make_chain(dir);
    snprintf(chain, sizeof chain, "%s/chain.crt", dir);
    snprintf(key, sizeof key, "%s/leaf.key", dir);
    struct tk_server s;
    tk_server_start(&s, NULL, "127.0.0.1",
                    (const char *const[]){"--cert", chain, "--key", key, NULL});
    struct tk_proc p;
    /* The intermediate expires in 5 days, the leaf in 300: --warn-days 10 is for [1]. */
    int rc = client(&p, (const char *const[]){"--check", "--json", "--warn-days", "10", "--ca",
                                              tk_cert("ca.crt"), "localhost", s.portstr,
                                              NULL});
    cr_expect_eq(rc, 8, "exit %d: %s", rc, tk_str(p.errbuf));
    static const char *const paths[] = {
        "chain_length", "chain.0.subject", "chain.0.key.type", "chain.0.key.bits",
        "chain.0.key.group", "chain.0.signature_algorithm", "chain.0.in_verified_path",
        "chain.0.chained_to_anchor", "chain.1.subject", "chain.1.issuer", "chain.1.key.type",
        "chain.1.key.bits", "chain.1.key.group", "chain.1.sans", "chain.1.in_verified_path",
        "chain.1.chained_to_anchor", "chain.1.is_trust_anchor", "chain.1.days_left",
        "expiring", "verify.trust_anchor", NULL};
    char v[8192];
    json_values(tk_str(p.outbuf), 1, 0, paths, v, sizeof v);
    static const char *const expect[] = {
        "0:chain_length=2\n",
        /* RFC 2253 escapes the quote and the backslash, and the UTF-8 bytes as \XX; the
         * JSON writer escapes each backslash again: it must parse back to exactly this. */
        "0:chain.0.subject=\"O=Q\\\\\\\"uote\\\\\\\\Back \\\\C3\\\\9Cn\\\\C3\\\\AFcode,CN=localhost\"\n",
        "0:chain.0.key.type=\"RSA\"\n", "0:chain.0.key.bits=2048\n", "0:chain.0.key.group=null\n",
        "0:chain.0.signature_algorithm=\"ecdsa-with-SHA384\"\n",
        "0:chain.0.in_verified_path=true\n", "0:chain.0.chained_to_anchor=false\n",
        "0:chain.1.subject=\"CN=tlskit test intermediate\"\n",
        "0:chain.1.issuer=\"CN=tlskit local CA\"\n", "0:chain.1.key.type=\"EC\"\n",
        "0:chain.1.key.bits=384\n", "0:chain.1.key.group=\"P-384\"\n", "0:chain.1.sans=[]\n",
        "0:chain.1.in_verified_path=true\n", "0:chain.1.chained_to_anchor=true\n",
        "0:chain.1.is_trust_anchor=false\n", "0:expiring=[1]\n",
        "0:verify.trust_anchor=\"CN=tlskit local CA\"\n"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        cr_expect(tk_contains(v, expect[i]), "want %s in %s", expect[i], v);
    cr_expect(tk_matches(v, "0:chain.1.days_left=[45]\n"), "%s", v);
    tk_proc_free(&p);
    tk_server_stop(&s);
    tk_rmtree(dir);
}

/* ---- relay mode: the JSON on stderr after the handshake -------------------------------- */

TK_TEST(check, relay_json_on_stderr)
{
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", NULL);
    struct tk_proc p;
    static const char in[] = "hello\n";
    const char *args[] = {"--json", "--ca", tk_cert("ca.crt"), "localhost", s.portstr, NULL};
    int rc = tk_run_app(&p, tk_client_bin(), args, in, sizeof in - 1, RUN_MS);
    cr_expect_eq(rc, 0, "exit %d: %s", rc, tk_str(p.errbuf));
    cr_expect_str_eq(tk_str(p.outbuf), "hello\n"); /* stdout carries only the data */
    char line[8192], v[2048];
    json_line_of(p.errbuf, line, sizeof line);
    static const char *const paths[] = {"protocol", "verify.ok", "exit", NULL};
    json_values(line, 1, 0, paths, v, sizeof v);
    cr_expect(tk_contains(v, "0:protocol=\"TLSv1.3\"\n0:verify.ok=true\n0:exit=0\n"), "%s", v);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

/* ---- against openssl s_server: TLS 1.2, ALPN, an IP address (no SNI) ------------------- */

TK_TEST(check, against_openssl_s_server)
{
    struct tk_proc srv;
    const char *const argv[] = {TK_OPENSSL_BIN, "s_server", "-accept", "127.0.0.1:0",
                                "-naccept", "1", "-tls1_2", "-alpn", "h2",
                                "-cert", tk_cert("rsa.crt"), "-key", tk_cert("rsa.key"), NULL};
    tk_proc_start(&srv, argv);
    int ok = tk_proc_wait_for(&srv, 1, "ACCEPT ", 30000) && tk_proc_wait_for(&srv, 1, "\n", 30000);
    const char *a = ok ? strstr(srv.outbuf, "ACCEPT ") : NULL;
    cr_assert(a != NULL && strchr(a, '\n') != NULL, "no ACCEPT line: %s", tk_str(srv.outbuf));
    const char *colon = strrchr(a, ':');
    char port[16];
    snprintf(port, sizeof port, "%d", atoi(colon + 1));
    struct tk_proc p;
    int rc = client(&p, (const char *const[]){"--check", "--json", "--alpn", "h2,http/1.1",
                                              "--ca", tk_cert("ca.crt"), "127.0.0.1", port,
                                              NULL});
    cr_expect_eq(rc, 0, "exit %d: %s", rc, tk_str(p.errbuf));
    static const char *const paths[] = {"protocol", "cipher", "group", "sni", "alpn",
                                        "verify.ok", "chain.0.key.type", "chain.0.key.bits",
                                        "chain.0.signature_algorithm", "timing_ms.dns", NULL};
    char v[4096];
    json_values(tk_str(p.outbuf), 1, 0, paths, v, sizeof v);
    static const char *const expect[] = {
        "0:protocol=\"TLSv1.2\"\n", "0:cipher=\"ECDHE-RSA-", "0:sni=null\n",
        "0:alpn=\"h2\"\n", "0:verify.ok=true\n", "0:chain.0.key.type=\"RSA\"\n",
        "0:chain.0.key.bits=2048\n", "0:chain.0.signature_algorithm=\"ecdsa-with-SHA256\"\n"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        cr_expect(tk_contains(v, expect[i]), "want %s in %s", expect[i], v);
    cr_expect(tk_matches(v, "0:group=\"[A-Za-z0-9_-]+\"\n"), "%s", v);
    cr_expect(tk_matches(v, "0:timing_ms.dns=[0-9]+\\.[0-9]+\n"), "%s", v);
    tk_proc_free(&p);
    tk_proc_wait(&srv, RUN_MS);
    tk_proc_free(&srv);
}

/* ---- resumed ---------------------------------------------------------------------------- */

TK_TEST(check, resumed_session)
{
    char dir[256], sess[300];
    tk_tmpdir(dir, sizeof dir);
    snprintf(sess, sizeof sess, "%s/sess.pem", dir);
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", NULL);
    struct tk_proc p;
    int rc = client(&p, (const char *const[]){"--check", "--sess-out", sess, "--ca",
                                              tk_cert("ca.crt"), "localhost", s.portstr, NULL});
    cr_expect_eq(rc, 0, "exit %d: %s", rc, tk_str(p.errbuf));
    cr_expect(tk_contains(p.outbuf, "\nresumed:      no\n"), "%s", tk_str(p.outbuf));
    tk_proc_free(&p);
    rc = client(&p, (const char *const[]){"--check", "--json", "--sess-in", sess, "--ca",
                                          tk_cert("ca.crt"), "localhost", s.portstr, NULL});
    cr_expect_eq(rc, 0, "exit %d: %s", rc, tk_str(p.errbuf));
    char v[1024];
    json_values(tk_str(p.outbuf), 1, 0, (const char *const[]){"resumed", NULL}, v, sizeof v);
    cr_expect(tk_contains(v, "0:resumed=true\n"), "%s", v);
    tk_proc_free(&p);
    tk_server_stop(&s);
    tk_rmtree(dir);
}

/* ---- tlsserver --log-format json ---------------------------------------------------------- */

TK_TEST(check, server_log_format_json)
{
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1",
                    (const char *const[]){"--log-format", "json", "-v", NULL});
    struct tk_proc p;
    static const char in[] = "hello\n";
    const char *args[] = {"--ca", tk_cert("ca.crt"), "localhost", s.portstr, NULL};
    cr_expect_eq(tk_run_app(&p, tk_client_bin(), args, in, sizeof in - 1, RUN_MS), 0);
    tk_proc_free(&p);
    cr_expect_eq(client(&p, (const char *const[]){"localhost", s.portstr, NULL}), 5);
    tk_proc_free(&p);
    cr_expect(tk_proc_wait_for_n(&s.p, 2, "\"event\":\"conn\"", 2, RUN_MS), "%s",
              tk_str(s.p.errbuf));
    static const char *const paths[] = {"event", "peer", "protocol", "sni", "resumed",
                                        "bytes_in", "bytes_out", "ok", "error.code", NULL};
    char v[8192];
    json_values(tk_str(s.p.errbuf), 2, 1, paths, v, sizeof v);
    /* The start-up line stays text. */
    cr_expect(!tk_contains(s.p.errbuf, "tlsserver: {"), "%s", tk_str(s.p.errbuf));
    tk_server_stop(&s);
    /* -v's handshake line, the first connection's end, the second's. */
    static const char *const expect[] = {
        "0:event=\"handshake\"\n", "0:protocol=\"TLSv1.3\"\n", "0:sni=\"localhost\"\n",
        "1:event=\"conn\"\n", "1:protocol=\"TLSv1.3\"\n", "1:resumed=false\n",
        "1:bytes_in=6\n", "1:bytes_out=6\n", "1:ok=true\n", "1:error.code=<missing>\n",
        "2:event=\"conn\"\n", "2:protocol=null\n", "2:ok=false\n",
        "2:error.code=\"TLSKIT_E_VERIFY\"\n"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        cr_expect(tk_contains(v, expect[i]), "want %s in %s", expect[i], v);
    cr_expect(tk_matches(v, "1:peer=\"127\\.0\\.0\\.1:[0-9]+\"\n"), "%s", v);

    struct tk_proc u;
    int rc = tk_run_app(&u, tk_server_bin(), (const char *const[]){"--log-format", "xml", NULL},
                        NULL, 0, RUN_MS);
    cr_expect_eq(rc, 2);
    cr_expect(tk_contains(u.errbuf, "--log-format: 'xml' is not text or json"), "%s",
              tk_str(u.errbuf));
    tk_proc_free(&u);
}

/* ---- the library's getters behind the report (in-process) ------------------------------- */

TK_TEST(check, getters_after_success)
{
    struct tk_side srv = {.cfg = tk_server_config("server")};
    struct tk_side cli = {.cfg = tk_client_config("ca.crt"), .servername = "localhost"};
    tk_handshake_pair(&srv, &cli);
    cr_assert_eq(cli.rc, 0, "%s", cli.err);
    const tlskit_conn *c = cli.conn;
    cr_expect_eq(tlskit_conn_peer_chain_count(c), 1);
    cr_expect_str_eq(tk_str(tlskit_conn_peer_chain_subject(c, 0)), "CN=localhost");
    cr_expect_str_eq(tk_str(tlskit_conn_peer_chain_issuer(c, 0)), "CN=tlskit local CA");
    cr_expect_str_eq(tk_str(tlskit_conn_peer_chain_sans(c, 0)), tk_str(tlskit_conn_peer_cert_sans(c)));
    cr_expect_eq(tlskit_conn_peer_chain_notafter(c, 0), tlskit_conn_peer_cert_notafter(c));
    cr_expect_eq(tlskit_conn_peer_chain_notbefore(c, 0), tlskit_conn_peer_cert_notbefore(c));
    cr_expect_str_eq(tk_str(tlskit_conn_peer_chain_key_type(c, 0)), "EC");
    cr_expect_eq(tlskit_conn_peer_chain_key_bits(c, 0), 256);
    cr_expect_str_eq(tk_str(tlskit_conn_peer_chain_key_group(c, 0)), "P-256");
    cr_expect_str_eq(tk_str(tlskit_conn_peer_chain_sigalg(c, 0)), "ecdsa-with-SHA256");
    cr_expect_str_eq(tk_str(tlskit_conn_peer_chain_fingerprint(c, 0)),
                     tk_str(tlskit_conn_peer_cert_fingerprint(c)));
    cr_expect_str_eq(tk_str(tlskit_conn_peer_chain_spki_sha256(c, 0)),
                     tk_str(tlskit_conn_peer_cert_spki_sha256(c)));
    cr_expect_eq(tlskit_conn_peer_chain_flags(c, 0), TLSKIT_CHAIN_PATH | TLSKIT_CHAIN_ANCHORED);
    cr_expect_str_eq(tk_str(tlskit_conn_trust_anchor(c)), "CN=tlskit local CA");
    /* Out of range: nothing, never a crash. */
    cr_expect_null(tlskit_conn_peer_chain_subject(c, 1));
    cr_expect_null(tlskit_conn_peer_chain_subject(c, -1));
    cr_expect_null(tlskit_conn_peer_chain_sigalg(c, 1));
    cr_expect_eq(tlskit_conn_peer_chain_key_bits(c, 1), -1);
    cr_expect_eq(tlskit_conn_peer_chain_flags(c, 7), 0);
    cr_expect_eq(tlskit_conn_peer_chain_notafter(c, 1), 0);
    /* A wrapped socket: no DNS or connect phase; the handshake's time, and a total. */
    cr_expect_eq(tlskit_conn_phase_us(c, TLSKIT_PHASE_DNS), -1);
    cr_expect_eq(tlskit_conn_phase_us(c, TLSKIT_PHASE_CONNECT), -1);
    int64_t hs = tlskit_conn_phase_us(c, TLSKIT_PHASE_HANDSHAKE);
    cr_expect(hs >= 0 && hs < 60 * 1000000, "%lld", (long long)hs);
    cr_expect_eq(tlskit_conn_phase_us(c, TLSKIT_PHASE_TOTAL), hs);
    /* The server's view: it verified nothing (no client certificate). */
    cr_expect_eq(tlskit_conn_peer_chain_count(srv.conn), 0);
    cr_expect_null(tlskit_conn_trust_anchor(srv.conn));
    cr_expect(tlskit_conn_phase_us(srv.conn, TLSKIT_PHASE_HANDSHAKE) >= 0);
    tk_side_free(&srv);
    tk_side_free(&cli);
    tlskit_config_free(srv.cfg);
    tlskit_config_free(cli.cfg);
}

TK_TEST(check, getters_after_failed_verification)
{
    struct tk_side srv = {.cfg = tk_server_config("server")};
    struct tk_side cli = {.cfg = tk_client_config("other-ca.crt"), .servername = "localhost"};
    tk_handshake_pair(&srv, &cli);
    cr_assert_eq(cli.rc, -1);
    cr_expect_eq(cli.code, TLSKIT_E_VERIFY, "%s", cli.err);
    const tlskit_conn *c = cli.conn;
    /* The chain of a server that failed verification can still be looked at. */
    cr_expect_eq(tlskit_conn_peer_chain_count(c), 1);
    cr_expect_str_eq(tk_str(tlskit_conn_peer_chain_subject(c, 0)), "CN=localhost");
    cr_expect(tk_contains(tlskit_conn_peer_chain_pem(c), "-----BEGIN CERTIFICATE-----"));
    cr_expect_not_null(tlskit_conn_peer_chain_fingerprint(c, 0));
    cr_expect_eq(tlskit_conn_peer_chain_flags(c, 0), 0);
    cr_expect_null(tlskit_conn_trust_anchor(c));
    cr_expect_str_eq(tk_str(tlskit_conn_protocol(c)), "TLSv1.3");
    cr_expect_not_null(tlskit_conn_cipher(c));
    cr_expect_not_null(tlskit_conn_group(c));
    /* The server's side of it: nothing from the client arrived. */
    cr_expect_eq(tlskit_conn_peer_chain_count(srv.conn), 0);
    cr_expect(tlskit_conn_phase_us(c, TLSKIT_PHASE_HANDSHAKE) >= 0);
    tk_side_free(&srv);
    tk_side_free(&cli);
    tlskit_config_free(srv.cfg);
    tlskit_config_free(cli.cfg);
}

TK_TEST(check, phases_of_a_connect)
{
    tlskit_config *cfg = tk_client_config("ca.crt");
    int port;
    int fd = tk_tcp_bound("127.0.0.1", 0, &port); /* refused */
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    tlskit_conn *c = tlskit_conn_new(cfg);
    cr_expect_eq(tlskit_conn_phase_us(c, TLSKIT_PHASE_TOTAL), -1);
    cr_assert_eq(tlskit_conn_connect(c, "127.0.0.1", portstr), -1);
    cr_expect_eq(tlskit_conn_error_code(c), TLSKIT_E_CONNECT);
    int64_t dns = tlskit_conn_phase_us(c, TLSKIT_PHASE_DNS);
    int64_t conn = tlskit_conn_phase_us(c, TLSKIT_PHASE_CONNECT);
    int64_t total = tlskit_conn_phase_us(c, TLSKIT_PHASE_TOTAL);
    cr_expect(dns >= 0 && conn >= 0 && total >= dns + conn, "%lld %lld %lld", (long long)dns,
              (long long)conn, (long long)total);
    cr_expect_eq(tlskit_conn_phase_us(c, TLSKIT_PHASE_HANDSHAKE), -1);
    cr_expect_eq(tlskit_conn_peer_chain_count(c), 0);
    tlskit_conn_free(c);
    close(fd);
    tlskit_config_free(cfg);
}

/* ---- the JSON writer (apps/common/json.c) ------------------------------------------------ */

static char *one_string(const char *s, size_t len)
{
    struct json j;
    json_init(&j);
    json_array_begin(&j, NULL);
    json_string_len(&j, NULL, s, len);
    json_array_end(&j);
    const char *t = json_text(&j);
    char *out = strdup(t != NULL ? t : "(failed)");
    json_free(&j);
    return out;
}

TK_TEST(check, json_writer_escapes)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"plain", 5, "[\"plain\"]"},
        {"q\"b\\s/", 6, "[\"q\\\"b\\\\s/\"]"},
        {"\b\f\n\r\t", 5, "[\"\\b\\f\\n\\r\\t\"]"},
        {"a\0b", 3, "[\"a\\u0000b\"]"},
        {"\x01\x1f\x7f", 3, "[\"\\u0001\\u001f\\u007f\"]"},
        {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x92", 9, "[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x92\"]"},
        {"\xff", 1, "[\"\\ufffd\"]"},                   /* never valid */
        {"\xc3", 1, "[\"\\ufffd\"]"},                   /* cut short */
        {"\xc3(", 2, "[\"\\ufffd(\"]"},                 /* bad continuation */
        {"\xc0\xaf", 2, "[\"\\ufffd\\ufffd\"]"},        /* overlong '/' */
        {"\xe0\x80\xaf", 3, "[\"\\ufffd\\ufffd\\ufffd\"]"}, /* overlong */
        {"\xed\xa0\x80", 3, "[\"\\ufffd\\ufffd\\ufffd\"]"}, /* a surrogate */
        {"\xf4\x90\x80\x80", 4, "[\"\\ufffd\\ufffd\\ufffd\\ufffd\"]"}, /* above U+10FFFF */
        {"\xf4\x8f\xbf\xbf", 4, "[\"\xf4\x8f\xbf\xbf\"]"}, /* U+10FFFF */
        {"", 0, "[\"\"]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = one_string(cases[i].in, cases[i].len);
        cr_expect_str_eq(got, cases[i].out, "case %zu", i);
        free(got);
    }
}

TK_TEST(check, json_writer_structure)
{
    struct json j;
    json_init(&j);
    json_object_begin(&j, NULL);
    json_string(&j, "s", NULL);
    json_int(&j, "n", -42);
    json_bool(&j, "t", 1);
    json_ms(&j, "ms", 1234567);
    json_ms(&j, "none", -1);
    json_array_begin(&j, "a");
    json_int(&j, NULL, 1);
    json_object_begin(&j, NULL);
    json_object_end(&j);
    json_array_end(&j);
    json_string(&j, "k\"ey", "v");
    json_object_end(&j);
    json_newline(&j);
    cr_expect_str_eq(tk_str(json_text(&j)),
                     "{\"s\":null,\"n\":-42,\"t\":true,\"ms\":1234.567,\"none\":null,"
                     "\"a\":[1,{}],\"k\\\"ey\":\"v\"}\n");
    json_free(&j);
    /* Misuse fails rather than writes what does not parse. */
    json_init(&j);
    json_object_begin(&j, NULL);
    json_int(&j, NULL, 1); /* a member without a key */
    cr_expect_null(json_text(&j));
    json_free(&j);
    json_init(&j);
    json_array_begin(&j, NULL);
    json_int(&j, "k", 1); /* a key in an array */
    cr_expect_null(json_text(&j));
    json_free(&j);
    json_init(&j);
    json_array_begin(&j, NULL);
    json_object_end(&j); /* mismatched end */
    cr_expect_null(json_text(&j));
    json_free(&j);
    json_init(&j);
    for (int i = 0; i <= JSON_MAX_DEPTH; i++)
        json_array_begin(&j, NULL);
    cr_expect_null(json_text(&j));
    json_free(&j);
}
