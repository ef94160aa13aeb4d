/* SPDX-License-Identifier: MIT */
/*
 * The peer's identity beyond "it verifies": the chain it sent, its public key's SHA-256
 * (sha256//BASE64), public-key pins on top of verification (library and tlsclient --pin)
 * and tlsclient --showcerts. Hashes are checked against what openssl computes and what
 * curl --pinnedpubkey accepts.
 */
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

TK_SUITE(identity);

#define RUN_MS 60000

/* A pin nobody has: the base64 of 32 zero bytes. */
#define ZERO_PIN "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

/* The pin of NAME.crt as openssl computes it, the way curl's manual says to
 * (x509 -pubkey | pkey -pubin -outform der | dgst -sha256 -binary | base64). */
static void openssl_pin(const char *name, char *out, size_t len)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl x509 -in '%s' -pubkey -noout | openssl pkey -pubin -outform der | "
             "openssl dgst -sha256 -binary | base64",
             tk_cert(name));
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    struct tk_proc p;
    int code = tk_run(&p, argv, NULL, 0, RUN_MS);
    cr_assert_eq(code, 0, "openssl pin of %s: exit %d: %s", name, code, p.errbuf);
    p.outbuf[strcspn(p.outbuf, "\n")] = '\0';
    cr_assert_eq(strlen(p.outbuf), 44, "openssl pin: '%s'", p.outbuf);
    snprintf(out, len, "sha256//%s", p.outbuf);
    tk_proc_free(&p);
}

/* Handshake a client config against the server keypair NAME over a socketpair. */
static void pair(struct tk_side *srv, struct tk_side *cli, const char *name,
                 tlskit_config *ccfg, tlskit_config *scfg)
{
    memset(srv, 0, sizeof(*srv));
    memset(cli, 0, sizeof(*cli));
    srv->cfg = scfg ? scfg : tk_server_config(name);
    cli->cfg = ccfg;
    cli->servername = "localhost";
    tk_handshake_pair(srv, cli);
}

static void pair_free(struct tk_side *srv, struct tk_side *cli)
{
    tk_side_free(srv);
    tk_side_free(cli);
    tlskit_config_free(srv->cfg);
    tlskit_config_free(cli->cfg);
}

/* DER of every certificate in a PEM text, concatenated: comparable across encoders. */
static unsigned char *pem_chain_der(const char *pem, size_t *len, int *count)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    BIO *out = BIO_new(BIO_s_mem());
    cr_assert(b != NULL && out != NULL);
    X509 *x;
    *count = 0;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        i2d_X509_bio(out, x);
        X509_free(x);
        (*count)++;
    }
    char *data;
    long n = BIO_get_mem_data(out, &data);
    unsigned char *copy = malloc((size_t)n + 1);
    cr_assert_not_null(copy);
    memcpy(copy, data, (size_t)n);
    *len = (size_t)n;
    BIO_free(b);
    BIO_free(out);
    return copy;
}

static void expect_same_chain(const char *pem, const char *file)
{
    char *want_pem = tk_read_file(tk_cert(file), NULL);
    size_t got_len, want_len;
    int got_n, want_n;
    unsigned char *got = pem_chain_der(pem, &got_len, &got_n);
    unsigned char *want = pem_chain_der(want_pem, &want_len, &want_n);
    cr_expect(got_n > 0, "no certificate in:\n%s", pem);
    cr_expect_eq(got_n, want_n, "%d certificates, %s has %d", got_n, file, want_n);
    cr_expect(got_len == want_len && memcmp(got, want, got_len) == 0,
              "the chain is not %s:\n%s", file, pem);
    free(got);
    free(want);
    free(want_pem);
}

/* ---- library: chain and SPKI ------------------------------------------------------- */

TK_TEST(identity, peer_spki_matches_openssl_and_chain_is_the_servers)
{
    char want[64];
    openssl_pin("server.crt", want, sizeof(want));
    struct tk_side srv, cli;
    pair(&srv, &cli, "server", tk_client_config("ca.crt"), NULL);
    cr_assert_eq(cli.rc, 0, "%s", cli.err);
    cr_expect_str_eq(tk_str(tlskit_conn_peer_cert_spki_sha256(cli.conn)), want);
    cr_expect_eq(tlskit_conn_peer_chain_count(cli.conn), 1);
    expect_same_chain(tk_str(tlskit_conn_peer_chain_pem(cli.conn)), "server.crt");
    /* The server has no peer certificate: nothing to report. */
    cr_expect_null(tlskit_conn_peer_cert_spki_sha256(srv.conn));
    cr_expect_eq(tlskit_conn_peer_chain_count(srv.conn), 0);
    cr_expect_null(tlskit_conn_peer_chain_pem(srv.conn));
    pair_free(&srv, &cli);
}

TK_TEST(identity, server_sees_the_client_chain_and_key)
{
    char want[64];
    openssl_pin("client.crt", want, sizeof(want));
    tlskit_config *scfg = tk_server_config("server");
    cr_assert_eq(tlskit_config_add_ca_file(scfg, tk_cert("ca.crt")), 0);
    cr_assert_eq(tlskit_config_set_verify_client(scfg, TLSKIT_VERIFY_CLIENT_REQUIRED), 0);
    tlskit_config *ccfg = tk_client_config("ca.crt");
    tk_config_keypair(ccfg, "client");
    struct tk_side srv, cli;
    pair(&srv, &cli, "server", ccfg, scfg);
    cr_assert_eq(srv.rc, 0, "%s", srv.err);
    cr_expect_str_eq(tk_str(tlskit_conn_peer_cert_spki_sha256(srv.conn)), want);
    cr_expect_eq(tlskit_conn_peer_chain_count(srv.conn), 1);
    expect_same_chain(tk_str(tlskit_conn_peer_chain_pem(srv.conn)), "client.crt");
    pair_free(&srv, &cli);
}

/* ---- library: pins ----------------------------------------------------------------- */

static tlskit_config *pinned(const char *ca, const char *pins)
{
    tlskit_config *cfg = tk_client_config(ca);
    cr_assert_eq(tlskit_config_set_pinned_pubkeys(cfg, pins), 0, "%s: %s", pins,
                 tlskit_config_error(cfg));
    return cfg;
}

TK_TEST(identity, pin_right_wrong_and_several)
{
    char right[64], several[256], none_right[256];
    openssl_pin("server.crt", right, sizeof(right));
    char rsa[64];
    openssl_pin("rsa.crt", rsa, sizeof(rsa));
    snprintf(several, sizeof(several), "%s;%s;%s", ZERO_PIN, right, rsa);
    snprintf(none_right, sizeof(none_right), "%s;%s", ZERO_PIN, rsa);
    const struct {
        const char *pins;
        int ok;
    } cases[] = {{right, 1}, {several, 1}, {ZERO_PIN, 0}, {none_right, 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int tls12 = 0; tls12 < 2; tls12++) {
            tlskit_config *ccfg = pinned("ca.crt", cases[i].pins);
            if (tls12)
                tlskit_config_set_protocols(ccfg, TLSKIT_TLS1_2, TLSKIT_TLS1_2);
            struct tk_side srv, cli;
            pair(&srv, &cli, "server", ccfg, NULL);
            if (cases[i].ok) {
                cr_expect_eq(cli.rc, 0, "case %zu tls12=%d: %s", i, tls12, cli.err);
                cr_expect_str_eq(tk_str(tlskit_conn_verify_result(cli.conn)), "ok");
            } else {
                cr_expect_eq(cli.rc, -1, "case %zu tls12=%d: pin mismatch accepted", i, tls12);
                cr_expect_eq(cli.code, TLSKIT_E_VERIFY, "case %zu: %s: %s", i,
                             tlskit_error_name(cli.code), cli.err);
                cr_expect(tk_contains(cli.err, "pin mismatch"), "case %zu: %s", i, cli.err);
                cr_expect(tk_contains(cli.err, right), "case %zu lacks the real key %s: %s", i,
                          right, cli.err);
                cr_expect(tk_contains(tlskit_conn_verify_result(cli.conn), "pin mismatch"),
                          "verify result: %s", tk_str(tlskit_conn_verify_result(cli.conn)));
                cr_expect_eq(srv.rc, -1, "the server completed a refused handshake");
            }
            pair_free(&srv, &cli);
        }
    }
}

/* A pin is on top of verification: the right pin does not make an untrusted chain
 * acceptable, and the failure is the chain's, not the pin's. */
TK_TEST(identity, pin_does_not_replace_verification)
{
    char right[64];
    openssl_pin("server.crt", right, sizeof(right));
    struct tk_side srv, cli;
    pair(&srv, &cli, "server", pinned("other-ca.crt", right), NULL);
    cr_expect_eq(cli.rc, -1, "an untrusted server passed on its pin alone");
    cr_expect_eq(cli.code, TLSKIT_E_VERIFY, "%s", cli.err);
    cr_expect(!tk_contains(cli.err, "pin"), "%s", cli.err);
    pair_free(&srv, &cli);

    /* The wrong name, right pin: still refused. */
    pair(&srv, &cli, "wronghost", pinned("ca.crt", right), NULL);
    cr_expect_eq(cli.rc, -1);
    cr_expect_eq(cli.code, TLSKIT_E_VERIFY, "%s", cli.err);
    pair_free(&srv, &cli);
}

/* With verification explicitly off, the pin is all that is checked (curl -k
 * --pinnedpubkey): a self-signed server passes on its pin and fails without it. */
TK_TEST(identity, insecure_with_pin_checks_the_pin)
{
    char self[64];
    openssl_pin("selfsigned.crt", self, sizeof(self));
    const char *pins[] = {self, ZERO_PIN};
    for (int i = 0; i < 2; i++) {
        tlskit_config *ccfg = pinned("ca.crt", pins[i]);
        tlskit_config_insecure_noverifycert(ccfg);
        struct tk_side srv, cli;
        pair(&srv, &cli, "selfsigned", ccfg, NULL);
        if (i == 0) {
            cr_expect_eq(cli.rc, 0, "%s", cli.err);
        } else {
            cr_expect_eq(cli.rc, -1);
            cr_expect_eq(cli.code, TLSKIT_E_VERIFY, "%s", cli.err);
            cr_expect(tk_contains(cli.err, self), "%s", cli.err);
        }
        pair_free(&srv, &cli);
    }
}

TK_TEST(identity, malformed_pins_are_refused)
{
    static const char *const bad[] = {
        "",
        "sha256//",
        "sha256//AAAA",
        "sha1//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "SHA256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  /* no padding */
        "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=",  /* not canonical */
        "sha256//AAAAAAAAAAAAAAAAAAAAAA*AAAAAAAAAAAAAAAAAAAAA=",
        ZERO_PIN ";",
        ";" ZERO_PIN,
        ZERO_PIN ";;" ZERO_PIN,
        ZERO_PIN " ",
        "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=AAAA",
    };
    tlskit_config *cfg = tlskit_config_new();
    cr_assert_not_null(cfg);
    cr_assert_eq(tlskit_config_set_pinned_pubkeys(cfg, ZERO_PIN ";" ZERO_PIN), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(tlskit_config_set_pinned_pubkeys(cfg, bad[i]), -1, "accepted '%s'",
                     bad[i]);
        cr_expect_eq(tlskit_config_error_code(cfg), TLSKIT_E_INVALID, "'%s'", bad[i]);
        cr_expect(tk_contains(tlskit_config_error(cfg), "pin"), "'%s': %s", bad[i],
                  tlskit_config_error(cfg));
    }
    cr_expect_eq(tlskit_config_set_pinned_pubkeys(cfg, NULL), -1);
    /* Too many. */
    size_t n = 65, len = n * 53;
    char *many = malloc(len);
    cr_assert_not_null(many);
    many[0] = '\0';
    for (size_t i = 0; i < n; i++)
        strcat(strcat(many, i ? ";" : ""), ZERO_PIN);
    cr_expect_eq(tlskit_config_set_pinned_pubkeys(cfg, many), -1);
    free(many);
    tlskit_config_free(cfg);
}

/* ---- tlsclient --pin, --showcerts --------------------------------------------------- */

static int client(struct tk_proc *p, const char *const args[])
{
    return tk_run_app(p, tk_client_bin(), args, "hello\n", 6, RUN_MS);
}

TK_TEST(identity, tlsclient_pin)
{
    char right[64], several[200], wrong[200];
    openssl_pin("server.crt", right, sizeof(right));
    snprintf(several, sizeof(several), "%s;%s", ZERO_PIN, right);
    snprintf(wrong, sizeof(wrong), "%s;%s", ZERO_PIN, ZERO_PIN);
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", NULL);
    const char *pins[] = {right, several, wrong};
    for (int i = 0; i < 3; i++) {
        const char *args[] = {"--ca", tk_cert("ca.crt"), "--pin", pins[i], "localhost",
                              s.portstr, NULL};
        struct tk_proc p;
        int code = client(&p, args);
        if (i < 2) {
            cr_expect_eq(code, 0, "--pin %s: exit %d: %s", pins[i], code, p.errbuf);
            cr_expect_str_eq(p.outbuf, "hello\n");
        } else {
            cr_expect_eq(code, 5, "wrong pin: exit %d: %s", code, p.errbuf);
            cr_expect(tk_contains(p.errbuf, "pin mismatch"), "%s", p.errbuf);
            cr_expect(tk_contains(p.errbuf, right), "the real key %s is not printed: %s",
                      right, p.errbuf);
            cr_expect_str_eq(p.outbuf, "");
        }
        tk_proc_free(&p);
    }
    /* -v shows the key in the form --pin takes. */
    const char *args[] = {"-v", "--ca", tk_cert("ca.crt"), "localhost", s.portstr, NULL};
    struct tk_proc p;
    cr_expect_eq(client(&p, args), 0, "%s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, right), "-v lacks %s: %s", right, p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

TK_TEST(identity, tlsclient_malformed_pin_is_a_usage_error)
{
    static const char *const bad[] = {"", "sha256//nope", "sha512//x", ZERO_PIN ";"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *args[] = {"--pin", bad[i], "localhost", "4433", NULL};
        struct tk_proc p;
        int code = client(&p, args);
        cr_expect_eq(code, 2, "--pin '%s': exit %d", bad[i], code);
        cr_expect(tk_contains(p.errbuf, "tlsclient: --pin: "), "'%s': %s", bad[i], p.errbuf);
        tk_proc_free(&p);
    }
}

TK_TEST(identity, tlsclient_showcerts_prints_the_chain_on_stderr)
{
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", NULL);
    const char *args[] = {"--showcerts", "--ca", tk_cert("ca.crt"), "localhost", s.portstr,
                          NULL};
    struct tk_proc p;
    int code = client(&p, args);
    cr_expect_eq(code, 0, "exit %d: %s", code, p.errbuf);
    cr_expect_str_eq(p.outbuf, "hello\n", "stdout is the data channel only");
    cr_expect(tk_contains(p.errbuf, "server certificate chain: 1 certificate\n"), "%s",
              p.errbuf);
    expect_same_chain(p.errbuf, "server.crt");
    tk_proc_free(&p);
    tk_server_stop(&s);
}

/* curl takes the key tlskit reports as its --pinnedpubkey, and refuses another: the
 * format is curl's. */
TK_TEST(identity, curl_accepts_the_reported_pin)
{
    struct tk_side srv, cli;
    pair(&srv, &cli, "server", tk_client_config("ca.crt"), NULL);
    cr_assert_eq(cli.rc, 0, "%s", cli.err);
    char pin[64];
    snprintf(pin, sizeof(pin), "%s", tk_str(tlskit_conn_peer_cert_spki_sha256(cli.conn)));
    pair_free(&srv, &cli);
    struct tk_server s;
    static const char *const http[] = {"--mode", "http", NULL};
    tk_server_start(&s, "server", "127.0.0.1", http);
    char url[64], resolve[64];
    snprintf(url, sizeof(url), "https://localhost:%s/", s.portstr);
    snprintf(resolve, sizeof(resolve), "localhost:%s:127.0.0.1", s.portstr);
    const char *pins[] = {pin, ZERO_PIN};
    for (int i = 0; i < 2; i++) {
        const char *argv[] = {"curl", "-sS", "-o", "/dev/null", "--cacert", tk_cert("ca.crt"),
                              "--resolve", resolve, "--pinnedpubkey", pins[i], url, NULL};
        const char *full[16];
        full[0] = "/usr/bin/curl";
        for (int k = 1; argv[k - 1] != NULL; k++)
            full[k] = argv[k];
        struct tk_proc p;
        int code = tk_run(&p, full, NULL, 0, RUN_MS);
        if (i == 0)
            cr_expect_eq(code, 0, "curl --pinnedpubkey %s: exit %d: %s", pin, code, p.errbuf);
        else
            cr_expect_eq(code, 90, "curl with a wrong pin: exit %d: %s", code, p.errbuf);
        tk_proc_free(&p);
    }
    tk_server_stop(&s);
}

/* ---- client identities: the allow-list ---------------------------------------------- */

#define CLIENT_SPIFFE "spiffe://tlskit.test/ns/default/sa/client"

/* A server config that verifies clients against ca.crt and allows only ids. */
static tlskit_config *allowing(const char *const ids[])
{
    tlskit_config *cfg = tk_server_config("server");
    cr_assert_eq(tlskit_config_add_ca_file(cfg, tk_cert("ca.crt")), 0);
    cr_assert_eq(tlskit_config_set_verify_client(cfg, TLSKIT_VERIFY_CLIENT_REQUIRED), 0);
    for (int i = 0; ids[i] != NULL; i++)
        cr_assert_eq(tlskit_config_add_allowed_client(cfg, ids[i]), 0, "%s: %s", ids[i],
                     tlskit_config_error(cfg));
    return cfg;
}

/* What a client certificate presents, and an id of each kind that it does or does not
 * match. The CN-only rule: client.crt has no SANs, the others have the same CN and one
 * SAN each, so cn: names only client.crt. */
static const struct ident_case {
    const char *id;
    const char *cert;     /* a client certificate it allows */
    const char *other;    /* one it refuses */
    const char *presents; /* what the refused one is logged as presenting */
} ident_cases[] = {
    {"dns:client.tlskit.test", "client-dns", "client-uri", "uri:" CLIENT_SPIFFE},
    {"dns:CLIENT.tlskit.TEST", "client-dns", "client", "cn:tlskit-client"},
    {"uri:" CLIENT_SPIFFE, "client-uri", "client-email", "email:client@tlskit.test"},
    {"email:client@tlskit.test", "client-email", "client-dns", "dns:client.tlskit.test"},
    {"cn:tlskit-client", "client", "client-dns", "dns:client.tlskit.test"},
    {"spki:", "client-rsa", "client", "cn:tlskit-client, spki:sha256//"}, /* key filled in */
};

/* The id of a case, with client-rsa's key for "spki:". */
static const char *case_id(const struct ident_case *c, char *buf, size_t len)
{
    if (strcmp(c->id, "spki:") != 0)
        return c->id;
    char pin[64];
    openssl_pin("client-rsa.crt", pin, sizeof(pin));
    snprintf(buf, len, "spki:%s", pin);
    return buf;
}

TK_TEST(identity, allow_list_each_kind_in_process)
{
    for (size_t i = 0; i < sizeof(ident_cases) / sizeof(ident_cases[0]); i++) {
        char buf[96];
        const char *ids[] = {case_id(&ident_cases[i], buf, sizeof(buf)), NULL};
        for (int refused = 0; refused < 2; refused++) {
            const char *cert = refused ? ident_cases[i].other : ident_cases[i].cert;
            tlskit_config *ccfg = tk_client_config("ca.crt");
            tk_config_keypair(ccfg, cert);
            struct tk_side srv, cli;
            pair(&srv, &cli, "server", ccfg, allowing(ids));
            if (!refused) {
                cr_expect_eq(srv.rc, 0, "%s with %s: %s", ids[0], cert, srv.err);
            } else {
                cr_expect_eq(srv.rc, -1, "%s let %s in", ids[0], cert);
                cr_expect_eq(srv.code, TLSKIT_E_VERIFY, "%s", srv.err);
                cr_expect(tk_contains(srv.err, "not on the allow-list: it presented "),
                          "%s", srv.err);
                cr_expect(tk_contains(srv.err, ident_cases[i].presents), "%s: %s lacks %s",
                          ids[0], srv.err, ident_cases[i].presents);
                cr_expect(tk_contains(tlskit_conn_verify_result(srv.conn), "allow-list"),
                          "verify result %s", tk_str(tlskit_conn_verify_result(srv.conn)));
            }
            pair_free(&srv, &cli);
        }
    }
}

/* Several ids: any one admits; a certificate that fails verification is refused for
 * that, whatever its identities. */
TK_TEST(identity, allow_list_several_and_verification_first)
{
    const char *ids[] = {"dns:nope.example", "cn:tlskit-client", "uri:" CLIENT_SPIFFE, NULL};
    const struct {
        const char *cert;
        int ok;
        const char *why;
    } cases[] = {
        {"client", 1, NULL},
        {"client-uri", 1, NULL},
        {"client-email", 0, "allow-list"},
        {"client-otherca", 0, "unable to get local issuer certificate"},
        {"client-expired", 0, "certificate has expired"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tlskit_config *ccfg = tk_client_config("ca.crt");
        tk_config_keypair(ccfg, cases[i].cert);
        struct tk_side srv, cli;
        pair(&srv, &cli, "server", ccfg, allowing(ids));
        if (cases[i].ok) {
            cr_expect_eq(srv.rc, 0, "%s: %s", cases[i].cert, srv.err);
        } else {
            cr_expect_eq(srv.rc, -1, "%s admitted", cases[i].cert);
            cr_expect(tk_contains(srv.err, cases[i].why), "%s: %s", cases[i].cert, srv.err);
        }
        pair_free(&srv, &cli);
    }
    /* No client certificate at all: refused even with verify_client optional. */
    tlskit_config *scfg = allowing(ids);
    cr_assert_eq(tlskit_config_set_verify_client(scfg, TLSKIT_VERIFY_CLIENT_OPTIONAL), 0);
    struct tk_side srv, cli;
    pair(&srv, &cli, "server", tk_client_config("ca.crt"), scfg);
    cr_expect_eq(srv.rc, -1, "a client without a certificate passed an allow-list");
    cr_expect_eq(srv.code, TLSKIT_E_VERIFY, "%s", srv.err);
    pair_free(&srv, &cli);
}

TK_TEST(identity, malformed_identities_are_refused)
{
    static const char *const bad[] = {
        "", "client.tlskit.test", "DNS:client.tlskit.test", "dns:", "dns:a b", "dns:a/b",
        "uri:no-scheme", "uri:", "email:nobody", "email:@x", "email:a@", "email:a@b@c",
        "cn:", "cn: padded", "cn:tab\there", "spki:", "spki:sha256//AAAA",
        "spki:" ZERO_PIN ";" ZERO_PIN, "ip:127.0.0.1",
    };
    tlskit_config *cfg = tlskit_config_new();
    cr_assert_not_null(cfg);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(tlskit_config_add_allowed_client(cfg, bad[i]), -1, "accepted '%s'", bad[i]);
        cr_expect_eq(tlskit_config_error_code(cfg), TLSKIT_E_INVALID, "'%s'", bad[i]);
        cr_expect(tk_contains(tlskit_config_error(cfg), "client identity"), "'%s': %s", bad[i],
                  tlskit_config_error(cfg));
    }
    cr_expect_eq(tlskit_config_add_allowed_client(cfg, NULL), -1);
    static const char *const good[] = {"dns:*.tlskit.test", "cn:Jane Doe", "spki:" ZERO_PIN,
                                       "uri:urn:uuid:1234", "email:a.b+c@d.example"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_expect_eq(tlskit_config_add_allowed_client(cfg, good[i]), 0, "'%s': %s", good[i],
                     tlskit_config_error(cfg));
    tlskit_config_free(cfg);
}

/* ---- the allow-list in tlsserver, with curl, openssl s_client and tlsclient ---------- */

#define HTTP_REQ "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

enum peer { PEER_CURL, PEER_OPENSSL, PEER_TLSCLIENT };
static const char *const peer_names[] = {"curl", "openssl s_client", "tlsclient"};

/* One HTTP request from peer with client certificate cert; 1 when a 200 came back. */
static int peer_get(enum peer peer, const char *port, const char *cert)
{
    char crt[512], key[512], url[64], resolve[64], connect[64];
    snprintf(crt, sizeof(crt), "%s/%s.crt", tk_certs_dir(), cert);
    snprintf(key, sizeof(key), "%s/%s.key", tk_certs_dir(), cert);
    snprintf(url, sizeof(url), "https://localhost:%s/", port);
    snprintf(resolve, sizeof(resolve), "localhost:%s:127.0.0.1", port);
    snprintf(connect, sizeof(connect), "127.0.0.1:%s", port);
    const char *curl[] = {"/usr/bin/curl", "-sS", "-i", "--cacert", tk_cert("ca.crt"),
                          "--resolve", resolve, "--cert", crt, "--key", key, url, NULL};
    const char *openssl[] = {"/usr/bin/openssl", "s_client", "-quiet", "-connect", connect,
                             "-servername", "localhost", "-verify_return_error", "-CAfile",
                             tk_cert("ca.crt"), "-cert", crt, "-key", key, NULL};
    const char *tlsclient[] = {tk_client_bin(), "--ca", tk_cert("ca.crt"), "--cert", crt,
                               "--key", key, "localhost", port, NULL};
    const char *const *argv = peer == PEER_CURL ? curl : peer == PEER_OPENSSL ? openssl
                                                                               : tlsclient;
    struct tk_proc p;
    int code = tk_run(&p, argv, HTTP_REQ, strlen(HTTP_REQ), RUN_MS);
    int ok = tk_contains(p.outbuf, "HTTP/1.1 200");
    if (ok && code != 0)
        cr_expect_fail("%s with %s: a 200, yet exit %d: %s", peer_names[peer], cert, code,
                       p.errbuf);
    if (!ok && peer == PEER_TLSCLIENT)
        cr_expect_eq(code, 5, "tlsclient refused: exit %d, not 5: %s", code, p.errbuf);
    tk_proc_free(&p);
    return ok;
}

TK_TEST(identity, tlsserver_allow_client_with_real_peers)
{
    for (size_t i = 0; i < sizeof(ident_cases) / sizeof(ident_cases[0]); i++) {
        char buf[96];
        const struct ident_case *c = &ident_cases[i];
        const char *extra[] = {"--mode", "http", "--ca", tk_cert("ca.crt"), "--verify-client",
                               "--allow-client", case_id(c, buf, sizeof(buf)), NULL};
        struct tk_server s;
        tk_server_start(&s, "server", "127.0.0.1", extra);
        for (int peer = PEER_CURL; peer <= PEER_TLSCLIENT; peer++) {
            cr_expect(peer_get((enum peer)peer, s.portstr, c->cert), "%s refused %s with %s",
                      extra[6], peer_names[peer], c->cert);
            cr_expect(!peer_get((enum peer)peer, s.portstr, c->other), "%s admitted %s with %s",
                      extra[6], peer_names[peer], c->other);
        }
        /* One refusal per peer, each logged with what the client presented. */
        cr_expect(tk_proc_wait_for_n(&s.p, 2, "not on the allow-list", 3, 30000),
                  "server log: %s", s.p.errbuf);
        char want[160];
        snprintf(want, sizeof(want), "it presented %s", c->presents);
        cr_expect(tk_contains(s.p.errbuf, "error=TLSKIT_E_VERIFY: ") &&
                      tk_contains(s.p.errbuf, want),
                  "%s: the log does not say \"%s\":\n%s", extra[6], want, s.p.errbuf);
        tk_server_stop(&s);
    }
}

TK_TEST(identity, tlsserver_allow_client_usage_errors)
{
    const char *ca = tk_cert("ca.crt");
    const struct {
        const char *args[8];
        const char *msg;
    } cases[] = {
        {{"--allow-client", "dns:a.example", NULL}, "--allow-client needs --verify-client"},
        {{"--ca", ca, "--verify-client=optional", "--allow-client", "dns:a.example", NULL},
         "--allow-client needs --verify-client"},
        {{"--ca", ca, "--verify-client", "--allow-client", "host:a.example", NULL},
         "tlsserver: --allow-client: client identity \"host:a.example\""},
        {{"--ca", ca, "--verify-client", "--allow-client", "spki:sha256//nope", NULL},
         "tlsserver: --allow-client: client identity \"spki:sha256//nope\""},
        {{"--ca", ca, "--verify-client", "--allow-client", "email:nobody", NULL},
         "tlsserver: --allow-client: client identity \"email:nobody\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tk_proc p;
        int code = tk_run_app(&p, tk_server_bin(), cases[i].args, NULL, 0, RUN_MS);
        cr_expect_eq(code, 2, "case %zu: exit %d: %s", i, code, p.errbuf);
        cr_expect(tk_contains(p.errbuf, cases[i].msg), "case %zu: %s", i, p.errbuf);
        cr_expect_str_eq(p.outbuf, "", "case %zu started listening", i);
        tk_proc_free(&p);
    }
}

/* ---- the key log ------------------------------------------------------------------ */

#define NSS_LINE_RE                                                                      \
    "^(CLIENT_RANDOM|CLIENT_HANDSHAKE_TRAFFIC_SECRET|SERVER_HANDSHAKE_TRAFFIC_SECRET|"   \
    "CLIENT_TRAFFIC_SECRET_0|SERVER_TRAFFIC_SECRET_0|EXPORTER_SECRET) [0-9a-f]{64} "     \
    "([0-9a-f]{64}|[0-9a-f]{96})$"

/* Every line of the key log at path is a valid NSS key log line, there are at least
 * min_lines, and one tlskit wrote (ours) has mode 0600 (curl's need not); returns its
 * text (free it). */
static char *check_keylog(const char *path, int min_lines, int ours)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
    if (ours)
        cr_expect_eq(st.st_mode & 0777, 0600, "%s: mode %o", path, st.st_mode & 0777);
    char *text = tk_read_file(path, NULL);
    char *copy = strdup(text), *save = NULL;
    cr_assert_not_null(copy);
    int n = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cr_expect(tk_matches(line, NSS_LINE_RE), "%s: not an NSS key log line: '%s'", path,
                  line);
        n++;
    }
    cr_expect(n >= min_lines, "%s: %d lines:\n%s", path, n, text);
    cr_expect(text[0] == '\0' || text[strlen(text) - 1] == '\n', "%s: unterminated line", path);
    free(copy);
    return text;
}

TK_TEST(identity, keylog_library_tls12_and_tls13)
{
    char dir[256], path[512];
    tk_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/keys.log", dir);
    /* TLS 1.3: five secrets per connection; TLS 1.2: one CLIENT_RANDOM. Appended. */
    for (int tls12 = 0; tls12 < 2; tls12++) {
        tlskit_config *ccfg = tk_client_config("ca.crt");
        cr_assert_eq(tlskit_config_insecure_keylog_file(ccfg, path), 0, "%s",
                     tlskit_config_error(ccfg));
        if (tls12)
            tlskit_config_set_protocols(ccfg, TLSKIT_TLS1_2, TLSKIT_TLS1_2);
        struct tk_side srv, cli;
        pair(&srv, &cli, "server", ccfg, NULL);
        cr_expect_eq(cli.rc, 0, "%s", cli.err);
        pair_free(&srv, &cli);
    }
    char *text = check_keylog(path, 6, 1);
    cr_expect(tk_contains(text, "CLIENT_HANDSHAKE_TRAFFIC_SECRET ") &&
                  tk_contains(text, "SERVER_TRAFFIC_SECRET_0 ") &&
                  tk_contains(text, "CLIENT_RANDOM "),
              "%s", text);
    free(text);
    /* Off unless asked: a config without the call writes nothing anywhere. */
    tlskit_config *cfg = tlskit_config_new();
    cr_expect_eq(tlskit_config_insecure_keylog_file(cfg, dir), -1, "a directory accepted");
    cr_expect_eq(tlskit_config_error_code(cfg), TLSKIT_E_FILE);
    cr_expect(tk_contains(tlskit_config_error(cfg), dir) &&
                  tk_contains(tlskit_config_error(cfg), "Is a directory"),
              "%s", tlskit_config_error(cfg));
    cr_expect_eq(tlskit_config_insecure_keylog_file(cfg, "/dev/null"), -1, "not a file");
    cr_expect_eq(tlskit_config_insecure_keylog_file(cfg, ""), -1);
    tlskit_config_free(cfg);
    tk_rmtree(dir);
}

static int same_secrets(const char *ours, const char *theirs)
{
    /* Every line curl (or tlsclient) wrote must be in the server's file: the same
     * client random, label and secret. */
    char *copy = strdup(theirs), *save = NULL;
    int n = 0, found = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        n++;
        found += tk_contains(ours, line);
    }
    free(copy);
    return n > 0 && found == n;
}

TK_TEST(identity, keylog_server_matches_curl_and_tlsclient)
{
    char dir[256], srvlog[512], curllog[512], clilog[512], env[600], url[64], resolve[64];
    tk_tmpdir(dir, sizeof(dir));
    snprintf(srvlog, sizeof(srvlog), "%s/server.keys", dir);
    snprintf(curllog, sizeof(curllog), "%s/curl.keys", dir);
    snprintf(clilog, sizeof(clilog), "%s/tlsclient.keys", dir);
    const char *extra[] = {"--mode", "http", "--keylog", srvlog, NULL};
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", extra);
    cr_expect(tk_proc_wait_for(&s.p, 2, "WARNING: --keylog ", 30000),
              "no start-up warning: %s", s.p.errbuf);
    snprintf(url, sizeof(url), "https://localhost:%s/", s.portstr);
    snprintf(resolve, sizeof(resolve), "localhost:%s:127.0.0.1", s.portstr);
    snprintf(env, sizeof(env), "SSLKEYLOGFILE=%s", curllog);
    const char *curl[] = {"/usr/bin/env", env, "curl", "-sS", "-o", "/dev/null", "--cacert",
                          tk_cert("ca.crt"), "--resolve", resolve, url, NULL};
    struct tk_proc p;
    int code = tk_run(&p, curl, NULL, 0, RUN_MS);
    cr_expect_eq(code, 0, "curl: %s", p.errbuf);
    tk_proc_free(&p);
    /* tlsclient through the environment variable, as curl. */
    snprintf(env, sizeof(env), "SSLKEYLOGFILE=%s", clilog);
    const char *cli[] = {"/usr/bin/env", env, tk_client_bin(), "--ca", tk_cert("ca.crt"),
                         "localhost", s.portstr, NULL};
    code = tk_run(&p, cli, HTTP_REQ, strlen(HTTP_REQ), RUN_MS);
    cr_expect_eq(code, 0, "tlsclient: %s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, "WARNING: SSLKEYLOGFILE "), "no warning: %s", p.errbuf);
    tk_proc_free(&p);
    cr_expect(tk_proc_wait_for_n(&s.p, 2, " ok\n", 2, 30000), "%s", s.p.errbuf);
    tk_server_stop(&s);

    char *ours = check_keylog(srvlog, 10, 1);
    char *theirs = check_keylog(curllog, 5, 0);
    char *mine = check_keylog(clilog, 5, 1);
    cr_expect(same_secrets(ours, theirs), "curl's secrets are not the server's:\n%s\n--\n%s",
              theirs, ours);
    cr_expect(same_secrets(ours, mine), "tlsclient's secrets are not the server's:\n%s\n--\n%s",
              mine, ours);
    free(ours);
    free(theirs);
    free(mine);
    tk_rmtree(dir);
}

/* Wait for a child that is still running to exit after sig; its exit code. */
static int stop_proc(struct tk_proc *p, int sig)
{
    kill(p->pid, sig);
    return tk_proc_wait(p, RUN_MS);
}

/* A UDP socket on 127.0.0.1, its port in *port. */
static int udp_bound(int *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
              getsockname(fd, (struct sockaddr *)&sin, &len) == 0, "udp socket: %s",
              strerror(errno));
    *port = ntohs(sin.sin_port);
    return fd;
}

/* Send datagrams to our own UDP port until the capture lists one (tshark -l prints
 * "N,PORT" per packet, in order): then everything sent before is in the capture too.
 * 1, or 0 when 30 s passed (e.g. tshark exited: no privilege to capture). */
static int capture_saw(struct tk_proc *cap, int udp, int port)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char needle[16];
    snprintf(needle, sizeof(needle), ",%d\n", port);
    int64_t end = tk_now_ms() + 30000;
    while (tk_now_ms() < end) {
        (void)sendto(udp, "x", 1, 0, (struct sockaddr *)&to, sizeof(to));
        if (tk_proc_wait_for(cap, 1, needle, 100))
            return 1;
    }
    return 0;
}

/* tshark's "follow TLS stream 0" of a capture, with or without a key log. */
static char *tshark_follow(const char *pcap, const char *port, const char *keylog)
{
    char opt[600], decode[64];
    snprintf(opt, sizeof(opt), "tls.keylog_file:%s", keylog ? keylog : "");
    snprintf(decode, sizeof(decode), "tcp.port==%s,tls", port); /* not 443: say it is TLS */
    const char *argv[] = {"/usr/bin/tshark", "-n", "-r", pcap, "-d", decode, "-o", opt, "-q",
                          "-z", "follow,tls,ascii,0", NULL};
    struct tk_proc p;
    int code = tk_run(&p, argv, NULL, 0, RUN_MS);
    cr_expect_eq(code, 0, "tshark: %s", p.errbuf);
    char *out = strdup(p.outbuf);
    tk_proc_free(&p);
    return out;
}

/* A session captured on loopback, decrypted by tshark with the server's key
 * log: the plaintext that was sent is there, and not without the key log. */
TK_TEST(identity, keylog_decrypts_a_captured_session_with_tshark)
{
    if (access("/usr/bin/tshark", X_OK) != 0)
        cr_assert_fail("tshark is missing: run scripts/setup.sh (Debian's tshark)");
    static const char probe[] = "tlskit key log probe 5d1f0c\n";
    for (int tls12 = 0; tls12 < 2; tls12++) {
        char dir[256], keys[512], pcap[512], filter[64];
        tk_tmpdir(dir, sizeof(dir));
        snprintf(keys, sizeof(keys), "%s/keys.log", dir);
        snprintf(pcap, sizeof(pcap), "%s/capture.pcapng", dir);
        const char *extra[] = {"--keylog", keys, NULL};
        struct tk_server s;
        tk_server_start(&s, "server", "127.0.0.1", extra);
        char portstr[16];
        snprintf(portstr, sizeof(portstr), "%s", s.portstr);
        /* tshark captures (through dumpcap) and lists each packet ("N,PORT") as it writes it:
         * a datagram to `ready` seen means the filter is in place, one to `done` seen
         * after the session means every packet of it is in the file. */
        int ready_port, done_port;
        int ready = udp_bound(&ready_port), done = udp_bound(&done_port);
        snprintf(filter, sizeof(filter), "tcp port %s or udp port %d or udp port %d",
                 s.portstr, ready_port, done_port);
        const char *tshark[] = {"/usr/bin/tshark", "-n", "-i", "lo", "-f", filter, "-w", pcap,
                                "-P", "-l", "-T", "fields", "-e", "frame.number", "-e",
                                "udp.dstport", "-E", "separator=,", NULL};
        struct tk_proc cap;
        tk_proc_start(&cap, tshark);
        if (!capture_saw(&cap, ready, ready_port)) {
            int code = stop_proc(&cap, SIGTERM);
            cr_assert_fail("cannot capture on the loopback interface (tshark exit %d; "
                           "capturing needs root or CAP_NET_RAW+CAP_NET_ADMIN): %s",
                           code, cap.errbuf);
        }
        const char *args[] = {"--ca", tk_cert("ca.crt"), "--tls-max", tls12 ? "1.2" : "1.3",
                              "localhost", s.portstr, NULL};
        struct tk_proc p;
        int code = tk_run_app(&p, tk_client_bin(), args, probe, strlen(probe), RUN_MS);
        cr_expect_eq(code, 0, "tlsclient: %s", p.errbuf);
        cr_expect_str_eq(p.outbuf, probe);
        tk_proc_free(&p);
        cr_expect(tk_proc_wait_for(&s.p, 2, " ok\n", 30000), "%s", s.p.errbuf);
        tk_server_stop(&s);
        /* The session is over and logged by the server: once the capture lists a packet
         * sent after it, it holds all of the session. */
        cr_expect(capture_saw(&cap, done, done_port), "the capture stalled: %s", cap.errbuf);
        cr_expect_eq(stop_proc(&cap, SIGINT), 0, "tshark: %s", cap.errbuf);
        tk_proc_free(&cap);
        close(ready);
        close(done);
        free(check_keylog(keys, tls12 ? 1 : 5, 1));
        char *plain = tshark_follow(pcap, portstr, keys);
        cr_expect(tk_contains(plain, "tlskit key log probe 5d1f0c"),
                  "TLS 1.%d: tshark did not decrypt the probe with the key log:\n%s",
                  tls12 ? 2 : 3, plain);
        free(plain);
        char *sealed = tshark_follow(pcap, portstr, NULL);
        cr_expect(!tk_contains(sealed, "tlskit key log probe"),
                  "the probe is readable without the key log:\n%s", sealed);
        free(sealed);
        tk_rmtree(dir);
    }
}

TK_TEST(identity, keylog_bad_paths_are_start_up_errors)
{
    char dir[256];
    tk_tmpdir(dir, sizeof(dir));
    const char *srv[] = {"--port", "0", "--cert", tk_cert("server.crt"), "--key",
                         tk_cert("server.key"), "--keylog", dir, NULL};
    struct tk_proc p;
    int code = tk_run_app(&p, tk_server_bin(), srv, NULL, 0, RUN_MS);
    cr_expect_eq(code, 1, "tlsserver --keylog DIR: exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, "tlsserver: --keylog: key log file ") &&
                  tk_contains(p.errbuf, dir) && tk_contains(p.errbuf, "Is a directory"),
              "%s", p.errbuf);
    cr_expect_str_eq(p.outbuf, "");
    tk_proc_free(&p);
    const char *cli[] = {"--keylog", dir, "localhost", "4433", NULL};
    code = tk_run_app(&p, tk_client_bin(), cli, NULL, 0, RUN_MS);
    cr_expect_eq(code, 1, "tlsclient --keylog DIR: exit %d: %s", code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, "tlsclient: --keylog: key log file ") &&
                  tk_contains(p.errbuf, "Is a directory"),
              "%s", p.errbuf);
    tk_proc_free(&p);
    const char *empty[] = {"--keylog", "", "localhost", "4433", NULL};
    code = tk_run_app(&p, tk_client_bin(), empty, NULL, 0, RUN_MS);
    cr_expect_eq(code, 2, "tlsclient --keylog '': exit %d: %s", code, p.errbuf);
    tk_proc_free(&p);
    tk_rmtree(dir);
}
