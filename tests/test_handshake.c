/* SPDX-License-Identifier: MIT */
/*
 * Whole handshakes in-process over socketpair(AF_UNIX): protocols, every broken
 * certificate of the negative set, mTLS, peer details, closing (clean and truncated),
 * the non-blocking WANT contract, deadlines, garbage on the wire, bulk data, and SIGPIPE.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

TK_SUITE(handshake);

/* Handshake a server using certificate `server_cert` against client config ccfg. */
static void pair_with(const char *server_cert, tlskit_config *ccfg, const char *servername,
                      struct tk_side *srv, struct tk_side *cli)
{
    *srv = (struct tk_side){.cfg = tk_server_config(server_cert)};
    *cli = (struct tk_side){.cfg = ccfg, .servername = servername};
    tk_handshake_pair(srv, cli);
}

static void pair_free(struct tk_side *srv, struct tk_side *cli)
{
    tlskit_config_free(srv->cfg);
    tk_side_free(srv);
    tk_side_free(cli);
}

/* ---- success ------------------------------------------------------------------------ */

TK_TEST(handshake, tls13_default)
{
    tlskit_config *c = tk_client_config("ca.crt");
    struct tk_side srv, cli;
    pair_with("server", c, "localhost", &srv, &cli);
    cr_assert_eq(cli.rc, 0, "client: %s", cli.err);
    cr_assert_eq(srv.rc, 0, "server: %s", srv.err);
    cr_expect_eq(cli.code, TLSKIT_E_NONE);
    cr_expect_str_eq(tk_str(tlskit_conn_protocol(cli.conn)), "TLSv1.3");
    cr_expect_str_eq(tk_str(tlskit_conn_protocol(srv.conn)), "TLSv1.3");
    cr_expect(tlskit_conn_handshake_done(cli.conn));
    cr_expect(tlskit_conn_handshake_done(srv.conn));
    cr_expect_str_eq(tk_str(tlskit_conn_verify_result(cli.conn)), "ok");
    cr_expect_str_eq(tk_str(tlskit_conn_servername(cli.conn)), "localhost");
    cr_expect_str_eq(tk_str(tlskit_conn_servername(srv.conn)), "localhost", "SNI received");
    cr_expect_eq(tlskit_conn_session_reused(cli.conn), 0);
    /* A second call on a finished handshake returns 0 at once. */
    cr_expect_eq(tlskit_conn_handshake(cli.conn), 0);
    /* The caller owns a wrapped fd. */
    cr_expect_eq(tlskit_conn_fd(cli.conn), cli.fd);
    tlskit_conn_free(cli.conn);
    cli.conn = NULL;
    cr_expect_neq(fcntl(cli.fd, F_GETFD), -1, "tlskit_conn_free closed a wrapped fd");
    pair_free(&srv, &cli);
    tlskit_config_free(c);
}

TK_TEST(handshake, tls12_and_tls13_by_range)
{
    const struct {
        const char *cert;
        int cmin, cmax, smin, smax;
        const char *proto;
    } cases[] = {
        {"server", TLSKIT_TLS1_2, TLSKIT_TLS1_2, TLSKIT_TLS1_2, TLSKIT_TLS1_3, "TLSv1.2"},
        {"server", TLSKIT_TLS1_2, TLSKIT_TLS1_3, TLSKIT_TLS1_2, TLSKIT_TLS1_2, "TLSv1.2"},
        {"server", TLSKIT_TLS1_3, TLSKIT_TLS1_3, TLSKIT_TLS1_2, TLSKIT_TLS1_3, "TLSv1.3"},
        {"rsa", TLSKIT_TLS1_2, TLSKIT_TLS1_2, TLSKIT_TLS1_2, TLSKIT_TLS1_3, "TLSv1.2"},
        {"rsa", TLSKIT_TLS1_2, TLSKIT_TLS1_3, TLSKIT_TLS1_2, TLSKIT_TLS1_3, "TLSv1.3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tlskit_config *c = tk_client_config("ca.crt");
        cr_assert_eq(tlskit_config_set_protocols(c, cases[i].cmin, cases[i].cmax), 0);
        tlskit_config *s = tk_server_config(cases[i].cert);
        cr_assert_eq(tlskit_config_set_protocols(s, cases[i].smin, cases[i].smax), 0);
        struct tk_side srv = {.cfg = s}, cli = {.cfg = c, .servername = "localhost"};
        tk_handshake_pair(&srv, &cli);
        cr_expect_eq(cli.rc, 0, "case %zu client: %s", i, cli.err);
        cr_expect_eq(srv.rc, 0, "case %zu server: %s", i, srv.err);
        cr_expect_str_eq(tk_str(tlskit_conn_protocol(cli.conn)), cases[i].proto, "case %zu", i);
        cr_expect_str_eq(tk_str(tlskit_conn_protocol(srv.conn)), cases[i].proto, "case %zu", i);
        const char *cipher = tlskit_conn_cipher(cli.conn);
        if (strcmp(cases[i].proto, "TLSv1.2") == 0)
            cr_expect(tk_contains(cipher, "ECDHE-"), "case %zu: TLS 1.2 cipher %s", i,
                      tk_str(cipher));
        else
            cr_expect(tk_contains(cipher, "TLS_"), "case %zu: cipher %s", i, tk_str(cipher));
        cr_expect_str_eq(tk_str(cipher), tk_str(tlskit_conn_cipher(srv.conn)));
        tk_side_free(&srv);
        tk_side_free(&cli);
        tlskit_config_free(s);
        tlskit_config_free(c);
    }
}

TK_TEST(handshake, protocol_ranges_disjoint)
{
    tlskit_config *c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_protocols(c, TLSKIT_TLS1_2, TLSKIT_TLS1_2), 0);
    tlskit_config *s = tk_server_config("server");
    cr_assert_eq(tlskit_config_set_protocols(s, TLSKIT_TLS1_3, TLSKIT_TLS1_3), 0);
    struct tk_side srv = {.cfg = s}, cli = {.cfg = c, .servername = "localhost"};
    tk_handshake_pair(&srv, &cli);
    cr_expect_eq(cli.rc, -1);
    cr_expect_eq(srv.rc, -1);
    cr_expect_eq(cli.code, TLSKIT_E_PROTOCOL, "%s: %s", tlskit_error_name(cli.code), cli.err);
    cr_expect_eq(srv.code, TLSKIT_E_PROTOCOL, "%s: %s", tlskit_error_name(srv.code), srv.err);
    cr_expect(tk_contains(cli.err, "protocol version"), "%s", cli.err);
    cr_expect(tk_contains(srv.err, "protocol"), "%s", srv.err);
    cr_expect_eq(tlskit_conn_handshake_done(cli.conn), 0);
    tk_side_free(&srv);
    tk_side_free(&cli);
    tlskit_config_free(s);
    tlskit_config_free(c);
}

/* A read that runs out of time says which deadline and how long it was: its own (READ)
 * or the idle one (no byte either way). */
TK_TEST(handshake, read_timeout_names_its_deadline)
{
    static const struct { int which; const char *want, *not; } cases[] = {
        {TLSKIT_TIMEOUT_READ, "timed out after 0.200 s", "idle"},
        {TLSKIT_TIMEOUT_IDLE, "timed out after 0.200 s idle (no byte either way)", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tlskit_config *c = tk_client_config("ca.crt");
        cr_assert_eq(tlskit_config_set_timeout(c, cases[i].which, 200), 0);
        tlskit_config *s = tk_server_config("server");
        struct tk_side srv = {.cfg = s}, cli = {.cfg = c, .servername = "localhost"};
        tk_handshake_pair(&srv, &cli);
        cr_assert_eq(cli.rc, 0, "%s", cli.err);
        char b;
        int64_t t0 = tk_now_ms();
        cr_expect_eq(tlskit_conn_read(cli.conn, &b, 1), -1);
        cr_expect_geq(tk_now_ms() - t0, 190, "case %zu: returned early", i);
        cr_expect_eq(tlskit_conn_error_code(cli.conn), TLSKIT_E_TIMEOUT);
        const char *err = tlskit_conn_error(cli.conn);
        cr_expect(tk_contains(err, "read from ") && tk_contains(err, cases[i].want),
                  "case %zu: %s", i, err);
        if (cases[i].not)
            cr_expect(!tk_contains(err, cases[i].not), "case %zu: %s", i, err);
        tk_side_free(&srv);
        tk_side_free(&cli);
        tlskit_config_free(s);
        tlskit_config_free(c);
    }
}

/* ---- verification failures (client side) ------------------------------------------- */

TK_TEST(handshake, negative_server_certificates)
{
    const struct {
        const char *cert, *ca, *servername;
        const char *reason, *reason_alt;
    } cases[] = {
        {"expired", "ca.crt", "localhost", "certificate has expired", NULL},
        {"notyet", "ca.crt", "localhost", "not yet valid", NULL},
        {"wronghost", "ca.crt", "localhost", "hostname mismatch", NULL},
        {"selfsigned", "ca.crt", "localhost", "self-signed", "self signed"},
        {"otherca", "ca.crt", "localhost", "unable to get local issuer certificate", NULL},
        /* wrong CA on the client: our good server certificate does not chain to it */
        {"server", "other-ca.crt", "localhost", "unable to get local issuer certificate", NULL},
        /* an IP address checked against the IP SANs */
        {"server", "ca.crt", "10.9.8.7", "mismatch", NULL},
        {"wronghost", "ca.crt", "127.0.0.1", "mismatch", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tlskit_config *c = tk_client_config(cases[i].ca);
        struct tk_side srv, cli;
        pair_with(cases[i].cert, c, cases[i].servername, &srv, &cli);
        const char *what = cases[i].cert;
        cr_expect_eq(cli.rc, -1, "%s/%s: handshake succeeded", what, cases[i].ca);
        cr_expect_eq(cli.code, TLSKIT_E_VERIFY, "%s: %s: %s", what,
                     tlskit_error_name(cli.code), cli.err);
        cr_expect(tk_contains(cli.err, cases[i].reason) ||
                      (cases[i].reason_alt && tk_contains(cli.err, cases[i].reason_alt)),
                  "%s: message lacks \"%s\": %s", what, cases[i].reason, cli.err);
        const char *vr = tlskit_conn_verify_result(cli.conn);
        cr_expect(tk_contains(vr, cases[i].reason) ||
                      (cases[i].reason_alt && tk_contains(vr, cases[i].reason_alt)),
                  "%s: verify result \"%s\"", what, tk_str(vr));
        cr_expect_eq(srv.rc, -1, "%s: the server completed a handshake the client rejected",
                     what);
        cr_expect_eq(tlskit_conn_handshake_done(cli.conn), 0);
        pair_free(&srv, &cli);
        tlskit_config_free(c);
    }
}

/* No CA call at all: the system store is used, and it does not know our local CA. */
TK_TEST(handshake, system_store_does_not_trust_local_ca)
{
    tlskit_config *c = tk_client_config(NULL);
    struct tk_side srv, cli;
    pair_with("server", c, "localhost", &srv, &cli);
    cr_expect_eq(cli.rc, -1);
    cr_expect_eq(cli.code, TLSKIT_E_VERIFY, "%s: %s", tlskit_error_name(cli.code), cli.err);
    cr_expect(tk_contains(cli.err, "unable to get local issuer certificate"), "%s", cli.err);
    pair_free(&srv, &cli);
    tlskit_config_free(c);
}

TK_TEST(handshake, ip_servername)
{
    static const char *const ips[] = {"127.0.0.1", "::1"};
    for (size_t i = 0; i < 2; i++) {
        tlskit_config *c = tk_client_config("ca.crt");
        struct tk_side srv, cli;
        pair_with("server", c, ips[i], &srv, &cli);
        cr_expect_eq(cli.rc, 0, "%s: %s", ips[i], cli.err);
        cr_expect_eq(srv.rc, 0, "%s", srv.err);
        /* An IP address is never sent as SNI (RFC 6066, section 3). */
        cr_expect_null(tlskit_conn_servername(srv.conn), "server received SNI \"%s\"",
                       tk_str(tlskit_conn_servername(srv.conn)));
        pair_free(&srv, &cli);
        tlskit_config_free(c);
    }
}

/* No servername with a verifying client: the library refuses rather than silently
 * skipping the name check (nothing insecure without "insecure" in its name). With
 * insecure_noverifyname it works, and the chain is still verified. */
TK_TEST(handshake, no_servername)
{
    tlskit_config *c = tk_client_config("ca.crt");
    struct tk_side srv, cli;
    pair_with("server", c, NULL, &srv, &cli);
    cr_expect_eq(cli.rc, -1, "verifying client without a name to check succeeded");
    cr_expect_eq(cli.code, TLSKIT_E_INVALID, "%s: %s", tlskit_error_name(cli.code), cli.err);
    cr_expect(tk_contains(cli.err, "insecure_noverifyname"), "%s", cli.err);
    pair_free(&srv, &cli);
    tlskit_config_free(c);

    c = tk_client_config("ca.crt"); /* the first one is in use: frozen */
    cr_assert_eq(tlskit_config_insecure_noverifyname(c), 0);
    pair_with("wronghost", c, NULL, &srv, &cli);
    cr_expect_eq(cli.rc, 0, "%s", cli.err);
    cr_expect_null(tlskit_conn_servername(srv.conn));
    pair_free(&srv, &cli);
    pair_with("expired", c, NULL, &srv, &cli);
    cr_expect_eq(cli.rc, -1, "expired accepted without a servername");
    cr_expect_eq(cli.code, TLSKIT_E_VERIFY, "%s: %s", tlskit_error_name(cli.code), cli.err);
    pair_free(&srv, &cli);
    tlskit_config_free(c);
}

TK_TEST(handshake, insecure_noverifycert)
{
    static const char *const certs[] = {"expired", "selfsigned", "otherca", "wronghost"};
    for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++) {
        tlskit_config *c = tk_client_config("ca.crt");
        tlskit_config_insecure_noverifycert(c);
        struct tk_side srv, cli;
        pair_with(certs[i], c, "localhost", &srv, &cli);
        cr_expect_eq(cli.rc, 0, "%s: %s", certs[i], cli.err);
        cr_expect_eq(srv.rc, 0, "%s: %s", certs[i], srv.err);
        const char *vr = tlskit_conn_verify_result(cli.conn);
        cr_expect(tk_contains(vr, "not verified"), "%s: verify result \"%s\"", certs[i],
                  tk_str(vr));
        cr_expect(tlskit_conn_peer_cert_provided(cli.conn));
        pair_free(&srv, &cli);
        tlskit_config_free(c);
    }
}

TK_TEST(handshake, insecure_noverifyname_still_checks_chain)
{
    tlskit_config *c = tk_client_config("ca.crt");
    tlskit_config_insecure_noverifyname(c);
    struct tk_side srv, cli;
    pair_with("wronghost", c, "localhost", &srv, &cli);
    cr_expect_eq(cli.rc, 0, "wronghost with noverifyname: %s", cli.err);
    pair_free(&srv, &cli);
    pair_with("expired", c, "localhost", &srv, &cli);
    cr_expect_eq(cli.rc, -1, "expired accepted with only noverifyname");
    cr_expect_eq(cli.code, TLSKIT_E_VERIFY, "%s: %s", tlskit_error_name(cli.code), cli.err);
    cr_expect(tk_contains(cli.err, "certificate has expired"), "%s", cli.err);
    pair_free(&srv, &cli);
    tlskit_config_free(c);
}

/* A peer speaking TLS 1.1 only (raw OpenSSL) is refused by default. */
struct raw_peer {
    int fd;
    SSL_CTX *ctx;
    int server;
    int rc;
};

static void *raw_peer_thread(void *p)
{
    struct raw_peer *r = p;
    SSL *ssl = SSL_new(r->ctx);
    SSL_set_fd(ssl, r->fd);
    r->rc = r->server ? SSL_accept(ssl) : SSL_connect(ssl);
    SSL_free(ssl);
    shutdown(r->fd, SHUT_RDWR);
    ERR_clear_error();
    return NULL;
}

TK_TEST(handshake, tls11_peer_refused)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    cr_assert_not_null(ctx);
    SSL_CTX_set_security_level(ctx, 0);
    cr_assert(SSL_CTX_set_min_proto_version(ctx, TLS1_1_VERSION));
    cr_assert(SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION));
    cr_assert(SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0"));
    cr_assert_eq(SSL_CTX_use_certificate_chain_file(ctx, tk_cert("server.crt")), 1);
    cr_assert_eq(SSL_CTX_use_PrivateKey_file(ctx, tk_cert("server.key"), SSL_FILETYPE_PEM), 1);
    int sv[2];
    tk_socketpair(sv);
    struct raw_peer peer = {.fd = sv[0], .ctx = ctx, .server = 1};
    pthread_t t = tk_thread_start(raw_peer_thread, &peer);
    tlskit_config *c = tk_client_config("ca.crt");
    tlskit_conn *conn = tlskit_conn_new(c);
    cr_assert_eq(tlskit_conn_wrap_client(conn, sv[1], "localhost"), 0);
    int rc = tlskit_conn_handshake(conn);
    int code = tlskit_conn_error_code(conn);
    char err[1024];
    snprintf(err, sizeof err, "%s", tk_str(tlskit_conn_error(conn)));
    shutdown(sv[1], SHUT_RDWR);
    tk_thread_join(t);
    cr_expect_eq(rc, -1, "handshake with a TLS 1.1 server succeeded");
    cr_expect_eq(code, TLSKIT_E_PROTOCOL, "%s: %s", tlskit_error_name(code), err);
    cr_expect_neq(peer.rc, 1);
    tlskit_conn_free(conn);
    tlskit_config_free(c);
    SSL_CTX_free(ctx);
    close(sv[0]);
    close(sv[1]);
}

/* ---- mTLS ---------------------------------------------------------------------------- */

static tlskit_config *mtls_server(int mode)
{
    tlskit_config *s = tk_server_config("server");
    cr_assert_eq(tlskit_config_add_ca_file(s, tk_cert("ca.crt")), 0);
    cr_assert_eq(tlskit_config_set_verify_client(s, mode), 0);
    return s;
}

static tlskit_config *mtls_client(const char *name)
{
    tlskit_config *c = tk_client_config("ca.crt");
    if (name != NULL)
        tk_config_keypair(c, name);
    return c;
}

TK_TEST(handshake, mtls_ok)
{
    static const int modes[] = {TLSKIT_VERIFY_CLIENT_REQUIRED, TLSKIT_VERIFY_CLIENT_OPTIONAL};
    for (size_t i = 0; i < 2; i++) {
        tlskit_config *s = mtls_server(modes[i]), *c = mtls_client("client");
        struct tk_side srv = {.cfg = s}, cli = {.cfg = c, .servername = "localhost"};
        tk_handshake_pair(&srv, &cli);
        cr_expect_eq(cli.rc, 0, "mode %d client: %s", modes[i], cli.err);
        cr_expect_eq(srv.rc, 0, "mode %d server: %s", modes[i], srv.err);
        cr_expect(tlskit_conn_peer_cert_provided(srv.conn));
        const char *subj = tlskit_conn_peer_cert_subject(srv.conn);
        cr_expect(tk_contains(subj, "tlskit-client"), "client subject %s", tk_str(subj));
        cr_expect(tk_contains(tlskit_conn_peer_cert_issuer(srv.conn), "tlskit local CA"),
                  "client issuer %s", tk_str(tlskit_conn_peer_cert_issuer(srv.conn)));
        cr_expect_str_eq(tk_str(tlskit_conn_verify_result(srv.conn)), "ok");
        tk_side_free(&srv);
        tk_side_free(&cli);
        tlskit_config_free(s);
        tlskit_config_free(c);
    }
}

TK_TEST(handshake, mtls_required_without_client_cert)
{
    tlskit_config *s = mtls_server(TLSKIT_VERIFY_CLIENT_REQUIRED), *c = mtls_client(NULL);
    struct tk_side srv = {.cfg = s}, cli = {.cfg = c, .servername = "localhost"};
    tk_handshake_pair(&srv, &cli);
    cr_expect_eq(srv.rc, -1, "server accepted a client without certificate");
    cr_expect_eq(srv.code, TLSKIT_E_VERIFY, "%s: %s", tlskit_error_name(srv.code), srv.err);
    cr_expect(tk_contains(srv.err, "certificate"), "%s", srv.err);
    /* TLS 1.3: the client finishes first and learns of the rejection on its next read. */
    if (cli.rc == 0) {
        char buf[16];
        ssize_t n = tlskit_conn_read(cli.conn, buf, sizeof buf);
        cr_expect_eq(n, -1, "client read after rejection returned %zd", n);
        cr_expect_neq(tlskit_conn_error_code(cli.conn), TLSKIT_E_NONE);
    }
    tk_side_free(&srv);
    tk_side_free(&cli);
    tlskit_config_free(s);
    tlskit_config_free(c);
}

TK_TEST(handshake, mtls_optional_without_client_cert)
{
    tlskit_config *s = mtls_server(TLSKIT_VERIFY_CLIENT_OPTIONAL), *c = mtls_client(NULL);
    struct tk_side srv = {.cfg = s}, cli = {.cfg = c, .servername = "localhost"};
    tk_handshake_pair(&srv, &cli);
    cr_expect_eq(srv.rc, 0, "%s", srv.err);
    cr_expect_eq(cli.rc, 0, "%s", cli.err);
    cr_expect_eq(tlskit_conn_peer_cert_provided(srv.conn), 0);
    cr_expect_str_eq(tk_str(tlskit_conn_verify_result(srv.conn)), "no certificate");
    cr_expect_eq(tlskit_conn_peer_cert_notafter(srv.conn), 0);
    tk_side_free(&srv);
    tk_side_free(&cli);
    tlskit_config_free(s);
    tlskit_config_free(c);
}

TK_TEST(handshake, mtls_bad_client_certs)
{
    const struct {
        int mode;
        const char *client, *reason;
    } cases[] = {
        {TLSKIT_VERIFY_CLIENT_REQUIRED, "client-otherca", "unable to get local issuer certificate"},
        {TLSKIT_VERIFY_CLIENT_OPTIONAL, "client-otherca", "unable to get local issuer certificate"},
        {TLSKIT_VERIFY_CLIENT_REQUIRED, "client-expired", "certificate has expired"},
        {TLSKIT_VERIFY_CLIENT_OPTIONAL, "client-expired", "certificate has expired"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tlskit_config *s = mtls_server(cases[i].mode), *c = mtls_client(cases[i].client);
        struct tk_side srv = {.cfg = s}, cli = {.cfg = c, .servername = "localhost"};
        tk_handshake_pair(&srv, &cli);
        cr_expect_eq(srv.rc, -1, "%s (mode %d) accepted", cases[i].client, cases[i].mode);
        cr_expect_eq(srv.code, TLSKIT_E_VERIFY, "%s: %s: %s", cases[i].client,
                     tlskit_error_name(srv.code), srv.err);
        cr_expect(tk_contains(srv.err, cases[i].reason), "%s: %s", cases[i].client, srv.err);
        tk_side_free(&srv);
        tk_side_free(&cli);
        tlskit_config_free(s);
        tlskit_config_free(c);
    }
}

/* ---- peer details -------------------------------------------------------------------- */

static X509 *load_cert(const char *name)
{
    FILE *f = fopen(tk_cert(name), "r");
    cr_assert_not_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    cr_assert_not_null(x);
    return x;
}

static time_t asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;
    cr_assert(ASN1_TIME_to_tm(t, &tm));
    return timegm(&tm);
}

TK_TEST(handshake, peer_details)
{
    tlskit_config *s = mtls_server(TLSKIT_VERIFY_CLIENT_REQUIRED), *c = mtls_client("client");
    struct tk_side srv = {.cfg = s}, cli = {.cfg = c, .servername = "localhost"};
    tk_handshake_pair(&srv, &cli);
    cr_assert_eq(cli.rc, 0, "%s", cli.err);
    cr_assert_eq(srv.rc, 0, "%s", srv.err);

    /* Fingerprint: what `openssl x509 -fingerprint -sha256` prints, with a SHA256: tag. */
    X509 *x = load_cert("server.crt");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    cr_assert(X509_digest(x, EVP_sha256(), md, &mdlen));
    cr_assert_eq(mdlen, 32);
    char want[7 + 32 * 3 + 1] = "SHA256:";
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(want + 7 + i * 3, 4, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
    const char *fp = tlskit_conn_peer_cert_fingerprint(cli.conn);
    cr_expect(tk_matches(fp, "^SHA256:([0-9A-F]{2}:){31}[0-9A-F]{2}$"), "format: %s", tk_str(fp));
    cr_expect_str_eq(tk_str(fp), want);

    const char *sans = tlskit_conn_peer_cert_sans(cli.conn);
    cr_expect(tk_contains(sans, "DNS:localhost"), "SANs %s", tk_str(sans));
    cr_expect(tk_contains(sans, "IP:127.0.0.1"), "SANs %s", tk_str(sans));
    /* IPv6 in the compressed form of RFC 5952 (OpenSSL's own printer says 0:0:...:1). */
    cr_expect(tk_matches(sans, "(^|, )IP:::1(,|$)"), "SANs %s", tk_str(sans));
    cr_expect_str_eq(tk_str(sans), "DNS:localhost, IP:127.0.0.1, IP:::1");

    cr_expect(tk_contains(tlskit_conn_peer_cert_subject(cli.conn), "CN=localhost"), "%s",
              tk_str(tlskit_conn_peer_cert_subject(cli.conn)));
    cr_expect(tk_contains(tlskit_conn_peer_cert_issuer(cli.conn), "CN=tlskit local CA"), "%s",
              tk_str(tlskit_conn_peer_cert_issuer(cli.conn)));
    cr_expect_eq(tlskit_conn_peer_cert_notbefore(cli.conn), asn1_to_time(X509_get0_notBefore(x)));
    cr_expect_eq(tlskit_conn_peer_cert_notafter(cli.conn), asn1_to_time(X509_get0_notAfter(x)));
    X509_free(x);

    const char *g = tlskit_conn_group(cli.conn);
    cr_expect(g != NULL && strcasecmp(g, "X25519") == 0, "default group %s", tk_str(g));
    cr_expect_str_eq(tk_str(g), tk_str(tlskit_conn_group(srv.conn)));
    cr_expect(tk_matches(tlskit_conn_cipher(cli.conn), "^TLS_[A-Z0-9_]+$"), "%s",
              tk_str(tlskit_conn_cipher(cli.conn)));

    /* The client certificate, seen by the server. */
    x = load_cert("client.crt");
    cr_assert(X509_digest(x, EVP_sha256(), md, &mdlen));
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(want + 7 + i * 3, 4, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
    cr_expect_str_eq(tk_str(tlskit_conn_peer_cert_fingerprint(srv.conn)), want);
    cr_expect_eq(tlskit_conn_peer_cert_notafter(srv.conn), asn1_to_time(X509_get0_notAfter(x)));
    X509_free(x);

    /* Byte counters count plaintext. */
    cr_assert_eq(tlskit_conn_write(cli.conn, "hello", 5), 5, "%s", tk_str(tlskit_conn_error(cli.conn)));
    char buf[8];
    tk_conn_read_exact(srv.conn, buf, 5);
    cr_expect_eq(memcmp(buf, "hello", 5), 0);
    cr_assert_eq(tlskit_conn_write(srv.conn, "hi!", 3), 3);
    tk_conn_read_exact(cli.conn, buf, 3);
    cr_expect_eq(tlskit_conn_bytes_out(cli.conn), 5);
    cr_expect_eq(tlskit_conn_bytes_in(cli.conn), 3);
    cr_expect_eq(tlskit_conn_bytes_in(srv.conn), 5);
    cr_expect_eq(tlskit_conn_bytes_out(srv.conn), 3);

    tk_side_free(&srv);
    tk_side_free(&cli);
    tlskit_config_free(s);
    tlskit_config_free(c);
}

TK_TEST(handshake, details_before_handshake)
{
    tlskit_config *c = tk_client_config("ca.crt");
    tlskit_conn *conn = tlskit_conn_new(c);
    cr_expect_eq(tlskit_conn_handshake_done(conn), 0);
    cr_expect_eq(tlskit_conn_peer_cert_provided(conn), 0);
    cr_expect_eq(tlskit_conn_peer_cert_notbefore(conn), 0);
    cr_expect_eq(tlskit_conn_fd(conn), -1);
    cr_expect_eq(tlskit_conn_bytes_in(conn), 0);
    /* Handshake on a connection without a socket: an error, not a crash. */
    cr_expect_eq(tlskit_conn_handshake(conn), -1);
    cr_expect_eq(tlskit_conn_error_code(conn), TLSKIT_E_INVALID, "%s",
                 tlskit_error_name(tlskit_conn_error_code(conn)));
    tlskit_conn_free(conn);
    tlskit_config_free(c);
}

/* ---- closing ------------------------------------------------------------------------- */

TK_TEST(handshake, clean_close_reads_zero)
{
    tlskit_config *c = tk_client_config("ca.crt");
    struct tk_side srv, cli;
    pair_with("server", c, "localhost", &srv, &cli);
    cr_assert_eq(cli.rc, 0, "%s", cli.err);
    cr_assert_eq(srv.rc, 0, "%s", srv.err);
    cr_assert_eq(tlskit_conn_write(srv.conn, "bye", 3), 3);
    cr_assert_eq(tlskit_conn_close(srv.conn), 0, "%s", tk_str(tlskit_conn_error(srv.conn)));
    /* A wrapped fd stays open after close: the caller owns it. */
    cr_expect_neq(fcntl(srv.fd, F_GETFD), -1, "tlskit_conn_close closed a wrapped fd");
    char buf[8];
    tk_conn_read_exact(cli.conn, buf, 3);
    cr_expect_eq(memcmp(buf, "bye", 3), 0);
    ssize_t n = tlskit_conn_read(cli.conn, buf, sizeof buf);
    cr_expect_eq(n, 0, "read after close_notify: %zd (%s)", n, tk_str(tlskit_conn_error(cli.conn)));
    pair_free(&srv, &cli);
    tlskit_config_free(c);
}

TK_TEST(handshake, close_without_close_notify_is_truncation)
{
    static const int versions[] = {TLSKIT_TLS1_3, TLSKIT_TLS1_2};
    for (size_t i = 0; i < 2; i++) {
        tlskit_config *c = tk_client_config("ca.crt");
        cr_assert_eq(tlskit_config_set_protocols(c, TLSKIT_TLS1_2, versions[i]), 0);
        struct tk_side srv, cli;
        pair_with("server", c, "localhost", &srv, &cli);
        cr_assert_eq(cli.rc, 0, "%s", cli.err);
        cr_assert_eq(srv.rc, 0, "%s", srv.err);
        cr_assert_eq(tlskit_conn_write(srv.conn, "partial", 7), 7);
        /* The server goes away without close_notify. */
        tlskit_conn_free(srv.conn);
        srv.conn = NULL;
        close(srv.fd);
        srv.fd = -1;
        char buf[16];
        tk_conn_read_exact(cli.conn, buf, 7);
        ssize_t n = tlskit_conn_read(cli.conn, buf, sizeof buf);
        int code = tlskit_conn_error_code(cli.conn);
        cr_expect_eq(n, -1, "%#x: truncation read as %zd", versions[i], n);
        cr_expect_eq(code, TLSKIT_E_TRUNCATED, "%#x: %s: %s", versions[i],
                     tlskit_error_name(code), tk_str(tlskit_conn_error(cli.conn)));
        pair_free(&srv, &cli);
        tlskit_config_free(c);
    }
}

static void *read_then_close(void *p)
{
    int fd = *(int *)p;
    char buf[4096];
    ssize_t n;
    do
        n = read(fd, buf, sizeof buf);
    while (n < 0 && errno == EINTR);
    close(fd);
    return NULL;
}

TK_TEST(handshake, peer_closes_during_handshake)
{
    int sv[2];
    tk_socketpair(sv);
    pthread_t t = tk_thread_start(read_then_close, &sv[0]);
    tlskit_config *c = tk_client_config("ca.crt");
    tlskit_conn *conn = tlskit_conn_new(c);
    cr_assert_eq(tlskit_conn_wrap_client(conn, sv[1], "localhost"), 0);
    int rc = tlskit_conn_handshake(conn);
    tk_thread_join(t);
    int code = tlskit_conn_error_code(conn);
    cr_expect_eq(rc, -1);
    /* The header's contract: a close during the handshake is TLSKIT_E_CLOSED (truncation
     * is for an established session that ends without close_notify). */
    cr_expect_eq(code, TLSKIT_E_CLOSED, "%s: %s", tlskit_error_name(code),
                 tk_str(tlskit_conn_error(conn)));
    cr_expect(tk_contains(tlskit_conn_error(conn), "closed the connection during the handshake"),
              "%s", tk_str(tlskit_conn_error(conn)));
    tlskit_conn_free(conn);
    tlskit_config_free(c);
    close(sv[1]);
}

/* The process must not die of SIGPIPE when the peer has gone: the library uses
 * MSG_NOSIGNAL (or equivalent). SIGPIPE is set to its default action here on purpose. */
TK_TEST(handshake, write_to_gone_peer_no_sigpipe)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
    sigemptyset(&dfl.sa_mask);
    cr_assert_eq(sigaction(SIGPIPE, &dfl, &old), 0);
    tlskit_config *c = tk_client_config("ca.crt");
    struct tk_side srv, cli;
    pair_with("server", c, "localhost", &srv, &cli);
    cr_assert_eq(cli.rc, 0, "%s", cli.err);
    tlskit_conn_free(srv.conn);
    srv.conn = NULL;
    close(srv.fd);
    srv.fd = -1;
    ssize_t n = 0;
    char buf[4096];
    memset(buf, 'x', sizeof buf);
    for (int i = 0; i < 20 && n >= 0; i++)
        n = tlskit_conn_write(cli.conn, buf, sizeof buf);
    int code = tlskit_conn_error_code(cli.conn);
    cr_expect_eq(n, -1, "write to a closed peer kept succeeding");
    cr_expect_eq(code, TLSKIT_E_IO, "%s: %s", tlskit_error_name(code),
                 tk_str(tlskit_conn_error(cli.conn)));
    cr_expect(tk_contains(tlskit_conn_error(cli.conn), "Broken pipe"), "%s",
              tk_str(tlskit_conn_error(cli.conn)));
    pair_free(&srv, &cli);
    tlskit_config_free(c);
    sigaction(SIGPIPE, &old, NULL);
}

/* ---- non-blocking ---------------------------------------------------------------------- */

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    cr_assert_eq(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

TK_TEST(handshake, nonblocking_want_contract)
{
    tlskit_config *s = tk_server_config("server"), *c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_timeout(s, TLSKIT_TIMEOUT_HANDSHAKE, 20000), 0);
    int sv[2];
    tk_socketpair(sv);
    set_nonblock(sv[0]);
    set_nonblock(sv[1]);
    /* Small socket buffers so bulk writes must return WANT_WRITE. */
    int small = 16384;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    tlskit_conn *sc = tlskit_conn_new(s), *cc = tlskit_conn_new(c);
    cr_assert_eq(tlskit_conn_wrap_server(sc, sv[0]), 0);
    cr_assert_eq(tlskit_conn_wrap_client(cc, sv[1], "localhost"), 0);

    /* Nothing has been sent yet: the server must want to read, at once. */
    int64_t t0 = tk_now_ms();
    int rc = tlskit_conn_handshake(sc);
    cr_assert_eq(rc, TLSKIT_WANT_READ, "server handshake on an empty socket: %d (%s)", rc,
                 tk_str(tlskit_conn_error(sc)));
    cr_expect_lt(tk_now_ms() - t0, 5000, "a non-blocking call blocked");
    cr_expect_eq(tlskit_want_events(rc), POLLIN);
    int tmo = tlskit_conn_timeout_ms(sc);
    cr_expect(tmo > 0 && tmo <= 20000, "timeout_ms during the handshake: %d", tmo);

    char err[1100];
    int wants = 0;
    cr_assert_eq(tk_nb_handshake(cc, sc, 30000, err, sizeof err, &wants), 0, "%s", err);
    cr_expect_gt(wants, 0);
    cr_expect_str_eq(tk_str(tlskit_conn_protocol(cc)), "TLSv1.3");

    /* A read with nothing to read wants to read. */
    char small_buf[16];
    ssize_t r = tlskit_conn_read(sc, small_buf, sizeof small_buf);
    cr_expect_eq(r, TLSKIT_WANT_READ, "read with no data: %zd", r);

    /* 1 MB client -> server, both driven from this thread. */
    size_t total = 1 << 20;
    unsigned char *out = malloc(total), *in = malloc(total);
    cr_assert(out && in);
    tk_fill_pattern(out, total, 7);
    size_t sent = 0, got = 0;
    int want_write = 0;
    int64_t end = tk_now_ms() + 30000;
    while (got < total && tk_now_ms() < end) {
        short cev = 0, sev = 0;
        if (sent < total) {
            size_t chunk = total - sent < 40000 ? total - sent : 40000;
            ssize_t w = tlskit_conn_write(cc, out + sent, chunk);
            if (w > 0) {
                cr_assert_leq((size_t)w, chunk);
                want_write += (size_t)w < chunk; /* a partial write: the socket was full */
                sent += (size_t)w;
            } else {
                cr_assert(w == TLSKIT_WANT_READ || w == TLSKIT_WANT_WRITE, "write: %zd %s", w,
                          tk_str(tlskit_conn_error(cc)));
                want_write += w == TLSKIT_WANT_WRITE;
                cev = tlskit_want_events(w);
            }
        }
        ssize_t n = tlskit_conn_read(sc, in + got, total - got);
        if (n > 0)
            got += (size_t)n;
        else {
            cr_assert(n == TLSKIT_WANT_READ || n == TLSKIT_WANT_WRITE, "read: %zd %s", n,
                      tk_str(tlskit_conn_error(sc)));
            sev = tlskit_want_events(n);
        }
        if (cev && sev) {
            struct pollfd p[2] = {{.fd = sv[1], .events = cev}, {.fd = sv[0], .events = sev}};
            poll(p, 2, 100);
        }
    }
    cr_expect_eq(got, total);
    cr_expect_eq(memcmp(in, out, total), 0, "data corrupted");
    cr_expect_gt(want_write, 0,
                 "1 MB into a 16 KB socket buffer never returned WANT_WRITE or a partial write");

    /* close_notify, non-blocking. */
    rc = tlskit_conn_close(cc);
    cr_expect(rc == 0 || rc == TLSKIT_WANT_WRITE, "close: %d", rc);
    for (int i = 0; i < 100; i++) {
        r = tlskit_conn_read(sc, small_buf, sizeof small_buf);
        if (r != TLSKIT_WANT_READ)
            break;
        poll(&(struct pollfd){.fd = sv[0], .events = POLLIN}, 1, 100);
    }
    cr_expect_eq(r, 0, "read after close_notify: %zd %s", r, tk_str(tlskit_conn_error(sc)));

    free(out);
    free(in);
    tlskit_conn_free(sc);
    tlskit_conn_free(cc);
    close(sv[0]);
    close(sv[1]);
    tlskit_config_free(s);
    tlskit_config_free(c);
}

TK_TEST(handshake, set_nonblocking_on_blocking_fd)
{
    tlskit_config *s = tk_server_config("server");
    int sv[2];
    tk_socketpair(sv);
    tlskit_conn *sc = tlskit_conn_new(s);
    cr_assert_eq(tlskit_conn_wrap_server(sc, sv[0]), 0);
    cr_assert_eq(tlskit_conn_set_nonblocking(sc, 1), 0);
    int64_t t0 = tk_now_ms();
    int rc = tlskit_conn_handshake(sc);
    cr_expect_eq(rc, TLSKIT_WANT_READ, "%d %s", rc, tk_str(tlskit_conn_error(sc)));
    cr_expect_lt(tk_now_ms() - t0, 5000);
    tlskit_conn_free(sc);
    close(sv[0]);
    close(sv[1]);
    tlskit_config_free(s);
}

/* ---- deadlines ------------------------------------------------------------------------ */

TK_TEST(handshake, handshake_deadline_silent_peer)
{
    for (int server = 0; server < 2; server++) {
        tlskit_config *cfg = server ? tk_server_config("server") : tk_client_config("ca.crt");
        cr_assert_eq(tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, 300), 0);
        int sv[2];
        tk_socketpair(sv);
        tlskit_conn *conn = tlskit_conn_new(cfg);
        cr_assert_eq(server ? tlskit_conn_wrap_server(conn, sv[0])
                            : tlskit_conn_wrap_client(conn, sv[0], "localhost"), 0);
        int64_t t0 = tk_now_ms();
        int rc = tlskit_conn_handshake(conn);
        int64_t dt = tk_now_ms() - t0;
        int code = tlskit_conn_error_code(conn);
        cr_expect_eq(rc, -1, "%s", server ? "server" : "client");
        cr_expect_eq(code, TLSKIT_E_TIMEOUT, "%s: %s: %s", server ? "server" : "client",
                     tlskit_error_name(code), tk_str(tlskit_conn_error(conn)));
        cr_expect_lt(dt, 10000, "a 300 ms deadline took %lld ms", (long long)dt);
        cr_expect_geq(dt, 200, "timed out after %lld ms, before the 300 ms deadline", (long long)dt);
        tlskit_conn_free(conn);
        close(sv[0]);
        close(sv[1]);
        tlskit_config_free(cfg);
    }
}

struct trickle {
    int fd;
    volatile int stop;
};

/* A ClientHello record header announcing 512 bytes, then one byte every 50 ms. */
static void *trickle_thread(void *p)
{
    struct trickle *t = p;
    static const unsigned char hdr[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};
    send(t->fd, hdr, sizeof hdr, MSG_NOSIGNAL);
    for (int i = 0; i < 200 && !t->stop; i++) {
        if (send(t->fd, "\x03", 1, MSG_NOSIGNAL) != 1)
            break;
        poll(NULL, 0, 50);
    }
    return NULL;
}

TK_TEST(handshake, handshake_deadline_is_total)
{
    tlskit_config *s = tk_server_config("server");
    cr_assert_eq(tlskit_config_set_timeout(s, TLSKIT_TIMEOUT_HANDSHAKE, 500), 0);
    int sv[2];
    tk_socketpair(sv);
    struct trickle t = {.fd = sv[1]};
    pthread_t th = tk_thread_start(trickle_thread, &t);
    tlskit_conn *conn = tlskit_conn_new(s);
    cr_assert_eq(tlskit_conn_wrap_server(conn, sv[0]), 0);
    int64_t t0 = tk_now_ms();
    int rc = tlskit_conn_handshake(conn);
    int64_t dt = tk_now_ms() - t0;
    t.stop = 1;
    tk_thread_join(th);
    int code = tlskit_conn_error_code(conn);
    cr_expect_eq(rc, -1);
    cr_expect_eq(code, TLSKIT_E_TIMEOUT, "%s: %s", tlskit_error_name(code),
                 tk_str(tlskit_conn_error(conn)));
    /* The trickle lasts 10 s; a per-read deadline would not fire before it ends. */
    cr_expect_lt(dt, 5000, "a 500 ms total deadline took %lld ms", (long long)dt);
    tlskit_conn_free(conn);
    close(sv[0]);
    close(sv[1]);
    tlskit_config_free(s);
}

TK_TEST(handshake, read_write_idle_deadlines)
{
    const struct {
        int which;
        int write; /* 1: block in a write the peer never drains */
    } cases[] = {
        {TLSKIT_TIMEOUT_READ, 0},
        {TLSKIT_TIMEOUT_IDLE, 0},
        {TLSKIT_TIMEOUT_WRITE, 1},
        {TLSKIT_TIMEOUT_IDLE, 1},
    };
    size_t big = 8 << 20;
    char *buf = malloc(big);
    cr_assert_not_null(buf);
    memset(buf, 'z', big);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tlskit_config *c = tk_client_config("ca.crt");
        cr_assert_eq(tlskit_config_set_timeout(c, cases[i].which, 300), 0);
        struct tk_side srv, cli;
        pair_with("server", c, "localhost", &srv, &cli);
        cr_assert_eq(cli.rc, 0, "%s", cli.err);
        int small = 16384;
        setsockopt(cli.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        int64_t t0 = tk_now_ms();
        ssize_t n = cases[i].write ? tlskit_conn_write(cli.conn, buf, big)
                                   : tlskit_conn_read(cli.conn, buf, 100);
        int64_t dt = tk_now_ms() - t0;
        int code = tlskit_conn_error_code(cli.conn);
        cr_expect_eq(n, -1, "case %zu: %zd", i, n);
        cr_expect_eq(code, TLSKIT_E_TIMEOUT, "case %zu: %s: %s", i, tlskit_error_name(code),
                     tk_str(tlskit_conn_error(cli.conn)));
        cr_expect_lt(dt, 10000, "case %zu: %lld ms", i, (long long)dt);
        pair_free(&srv, &cli);
        tlskit_config_free(c);
    }
    free(buf);
}

/* ---- garbage on the wire ------------------------------------------------------------- */

TK_TEST(handshake, garbage_to_server_is_protocol_error)
{
    unsigned char ff[64];
    memset(ff, 0xff, sizeof ff);
    unsigned char badver[64] = {0x16, 0x09, 0x09, 0x00, 0x30};
    const struct {
        const char *what;
        const void *data;
        size_t len;
    } cases[] = {
        {"HTTP request", "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 35},
        {"SMTP", "EHLO localhost\r\n", 16},
        {"0xff bytes", ff, sizeof ff},
        {"handshake record with a bogus version", badver, sizeof badver},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tlskit_config *s = tk_server_config("server");
        int sv[2];
        tk_socketpair(sv);
        cr_assert_eq(write(sv[1], cases[i].data, cases[i].len), (ssize_t)cases[i].len);
        tlskit_conn *conn = tlskit_conn_new(s);
        cr_assert_eq(tlskit_conn_wrap_server(conn, sv[0]), 0);
        int rc = tlskit_conn_handshake(conn);
        int code = tlskit_conn_error_code(conn);
        cr_expect_eq(rc, -1, "%s: handshake succeeded", cases[i].what);
        cr_expect_eq(code, TLSKIT_E_PROTOCOL, "%s: %s: %s", cases[i].what,
                     tlskit_error_name(code), tk_str(tlskit_conn_error(conn)));
        tlskit_conn_free(conn);
        close(sv[0]);
        close(sv[1]);
        tlskit_config_free(s);
    }
}

TK_TEST(handshake, garbage_to_client_is_protocol_error)
{
    static const char reply[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    tlskit_config *c = tk_client_config("ca.crt");
    int sv[2];
    tk_socketpair(sv);
    cr_assert_eq(write(sv[1], reply, sizeof reply - 1), (ssize_t)sizeof reply - 1);
    tlskit_conn *conn = tlskit_conn_new(c);
    cr_assert_eq(tlskit_conn_wrap_client(conn, sv[0], "localhost"), 0);
    int rc = tlskit_conn_handshake(conn);
    int code = tlskit_conn_error_code(conn);
    cr_expect_eq(rc, -1);
    cr_expect_eq(code, TLSKIT_E_PROTOCOL, "%s: %s", tlskit_error_name(code),
                 tk_str(tlskit_conn_error(conn)));
    tlskit_conn_free(conn);
    close(sv[0]);
    close(sv[1]);
    tlskit_config_free(c);
}

/* ---- data ---------------------------------------------------------------------------- */

/* Echo until close_notify, then close_notify back. */
static void *echo_thread(void *p)
{
    tlskit_conn *conn = p;
    char buf[32768];
    for (;;) {
        ssize_t n = tlskit_conn_read(conn, buf, sizeof buf);
        if (n <= 0)
            break;
        if (tlskit_conn_write_all(conn, buf, (size_t)n) != 0)
            break;
    }
    tlskit_conn_close(conn);
    return NULL;
}

TK_TEST(handshake, five_megabytes_round_trip)
{
    tlskit_config *c = tk_client_config("ca.crt");
    struct tk_side srv, cli;
    pair_with("server", c, "localhost", &srv, &cli);
    cr_assert_eq(cli.rc, 0, "%s", cli.err);
    cr_assert_eq(srv.rc, 0, "%s", srv.err);
    pthread_t t = tk_thread_start(echo_thread, srv.conn);

    size_t total = 5u << 20;
    unsigned char *out = malloc(total), *in = malloc(total);
    cr_assert(out && in);
    tk_fill_pattern(out, total, 12345);
    size_t off = 0;
    uint32_t x = 99;
    while (off < total) {
        x = x * 1103515245u + 12345u;
        size_t chunk = 1 + (x >> 8) % 65536;
        if (chunk > total - off)
            chunk = total - off;
        cr_assert_eq(tlskit_conn_write_all(cli.conn, out + off, chunk), 0, "at %zu: %s", off,
                     tk_str(tlskit_conn_error(cli.conn)));
        tk_conn_read_exact(cli.conn, in + off, chunk);
        off += chunk;
    }
    cr_expect_eq(memcmp(in, out, total), 0, "echoed data differs");
    cr_expect_eq(tlskit_conn_bytes_out(cli.conn), total);
    cr_expect_eq(tlskit_conn_bytes_in(cli.conn), total);
    cr_assert_eq(tlskit_conn_shutdown(cli.conn), 0, "%s", tk_str(tlskit_conn_error(cli.conn)));
    tk_thread_join(t);
    char b;
    cr_expect_eq(tlskit_conn_read(cli.conn, &b, 1), 0, "no close_notify back: %s",
                 tk_str(tlskit_conn_error(cli.conn)));
    free(out);
    free(in);
    pair_free(&srv, &cli);
    tlskit_config_free(c);
}

struct sink_arg {
    tlskit_conn *conn;
    unsigned char *buf;
    size_t cap, got;
    ssize_t last;
};

/* Read everything until close_notify, then send it all back and close. */
static void *sink_then_reply(void *p)
{
    struct sink_arg *a = p;
    for (;;) {
        a->last = tlskit_conn_read(a->conn, a->buf + a->got, a->cap - a->got);
        if (a->last <= 0)
            break;
        a->got += (size_t)a->last;
    }
    if (a->last == 0 && tlskit_conn_write_all(a->conn, a->buf, a->got) == 0)
        tlskit_conn_close(a->conn);
    return NULL;
}

TK_TEST(handshake, half_close)
{
    tlskit_config *c = tk_client_config("ca.crt");
    struct tk_side srv, cli;
    pair_with("server", c, "localhost", &srv, &cli);
    cr_assert_eq(cli.rc, 0, "%s", cli.err);
    size_t total = 300000;
    unsigned char *out = malloc(total), *in = malloc(total + 1);
    struct sink_arg a = {.conn = srv.conn, .buf = malloc(total + 1), .cap = total + 1};
    cr_assert(out && in && a.buf);
    tk_fill_pattern(out, total, 3);
    pthread_t t = tk_thread_start(sink_then_reply, &a);
    cr_assert_eq(tlskit_conn_write_all(cli.conn, out, total), 0);
    int rc = tlskit_conn_shutdown(cli.conn);
    cr_expect_eq(rc, 0, "shutdown: %s", tk_str(tlskit_conn_error(cli.conn)));
    size_t got = 0;
    ssize_t n;
    while ((n = tlskit_conn_read(cli.conn, in + got, total + 1 - got)) > 0)
        got += (size_t)n;
    tk_thread_join(t);
    cr_expect_eq(a.last, 0, "server did not see close_notify");
    cr_expect_eq(n, 0, "client read after its shutdown: %zd %s", n,
                 tk_str(tlskit_conn_error(cli.conn)));
    cr_expect_eq(got, total);
    cr_expect_eq(memcmp(in, out, total), 0);
    free(out);
    free(in);
    free(a.buf);
    pair_free(&srv, &cli);
    tlskit_config_free(c);
}

/* The first read or write runs the handshake when the caller did not. */
struct implicit_arg {
    tlskit_config *cfg;
    int fd;
    char got[8];
    ssize_t n;
};

static void *implicit_server(void *p)
{
    struct implicit_arg *a = p;
    tlskit_conn *conn = tlskit_conn_new(a->cfg);
    if (tlskit_conn_wrap_server(conn, a->fd) == 0) {
        a->n = tlskit_conn_read(conn, a->got, 4);
        tlskit_conn_close(conn);
    }
    tlskit_conn_free(conn);
    shutdown(a->fd, SHUT_RDWR);
    return NULL;
}

TK_TEST(handshake, implicit_handshake)
{
    tlskit_config *s = tk_server_config("server"), *c = tk_client_config("ca.crt");
    int sv[2];
    tk_socketpair(sv);
    struct implicit_arg a = {.cfg = s, .fd = sv[0]};
    pthread_t t = tk_thread_start(implicit_server, &a);
    tlskit_conn *conn = tlskit_conn_new(c);
    cr_assert_eq(tlskit_conn_wrap_client(conn, sv[1], "localhost"), 0);
    ssize_t w = tlskit_conn_write(conn, "ping", 4);
    cr_expect_eq(w, 4, "%zd %s", w, tk_str(tlskit_conn_error(conn)));
    cr_expect(tlskit_conn_handshake_done(conn));
    tk_thread_join(t);
    cr_expect_eq(a.n, 4);
    cr_expect_eq(memcmp(a.got, "ping", 4), 0);
    tlskit_conn_free(conn);
    close(sv[0]);
    close(sv[1]);
    tlskit_config_free(s);
    tlskit_config_free(c);
}
