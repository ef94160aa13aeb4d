/* SPDX-License-Identifier: MIT */
/*
 * The handshake trace (lib/src/trace.c, tlskit_config_set_trace()): the lines both sides
 * of a TLS 1.3 and a TLS 1.2 handshake with SNI and ALPN get, an alert (a server that
 * requires a client certificate the client does not have), the formatter over malformed
 * and hostile messages; then tlsclient -vv / --trace and tlsserver -vv, whose lines carry
 * the client's address.
 */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TK_SUITE(trace);

#define RUN_MS 60000

/* Every line one side's callback got, in order (the server side runs in a thread). */
struct lines {
    pthread_mutex_t mu;
    char text[32768];
    size_t len;
    int calls;
    int bad; /* a line that was not printable ASCII, too long, or without a direction */
};

static void collect(const tlskit_conn *c, const char *line, void *arg)
{
    struct lines *l = arg;
    (void)c;
    pthread_mutex_lock(&l->mu);
    size_t n = strlen(line);
    if (n >= TLSKIT_TRACE_LINE_MAX || (strncmp(line, "> ", 2) != 0 && strncmp(line, "< ", 2) != 0))
        l->bad = 1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e)
            l->bad = 1;
    if (l->len + n + 2 < sizeof(l->text)) {
        memcpy(l->text + l->len, line, n);
        l->text[l->len + n] = '\n';
        l->len += n + 1;
        l->text[l->len] = '\0';
    }
    l->calls++;
    pthread_mutex_unlock(&l->mu);
}

static void lines_init(struct lines *l)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
}

/* The line starting with prefix, copied into out ("" if none). */
static const char *line_of(const struct lines *l, const char *prefix, char *out, size_t len)
{
    out[0] = '\0';
    for (const char *p = l->text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            snprintf(out, len, "%.*s", (int)n, p);
            return out;
        }
        p += n + (nl != NULL);
    }
    return out;
}

/* One handshake over a socketpair with tracing on both sides. */
static void traced_pair(struct lines *sl, struct lines *cl, int version, const char *chain,
                        int require_cert, struct tk_side *srv, struct tk_side *cli)
{
    tlskit_config *scfg = tlskit_config_new();
    cr_assert_eq(tlskit_config_set_keypair_file(scfg, chain, tk_cert("server.key")), 0, "%s",
                 tlskit_config_error(scfg));
    cr_assert_eq(tlskit_config_set_alpn(scfg, "h2,http/1.1"), 0);
    cr_assert_eq(tlskit_config_set_protocols(scfg, version, version), 0);
    if (require_cert) {
        cr_assert_eq(tlskit_config_add_ca_file(scfg, tk_cert("ca.crt")), 0);
        cr_assert_eq(tlskit_config_set_verify_client(scfg, TLSKIT_VERIFY_CLIENT_REQUIRED), 0);
    }
    cr_assert_eq(tlskit_config_set_trace(scfg, collect, sl), 0);
    tlskit_config *ccfg = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_alpn(ccfg, "h2,http/1.1"), 0);
    cr_assert_eq(tlskit_config_set_trace(ccfg, collect, cl), 0);
    *srv = (struct tk_side){.cfg = scfg};
    *cli = (struct tk_side){.cfg = ccfg, .servername = "localhost"};
    tk_handshake_pair(srv, cli);
}

static void free_pair(struct tk_side *srv, struct tk_side *cli)
{
    tlskit_config_free(srv->cfg);
    tlskit_config_free(cli->cfg);
    tk_side_free(srv);
    tk_side_free(cli);
}

/* server.crt followed by ca.crt: a chain of two certificates. */
static const char *two_cert_chain(char *dir, size_t dirlen, char *path, size_t len)
{
    tk_tmpdir(dir, dirlen);
    snprintf(path, len, "%s/chain.crt", dir);
    size_t a, b;
    char *leaf = tk_read_file(tk_cert("server.crt"), &a);
    char *ca = tk_read_file(tk_cert("ca.crt"), &b);
    char *both = malloc(a + b);
    memcpy(both, leaf, a);
    memcpy(both + a, ca, b);
    tk_write_file(path, both, a + b);
    free(both);
    free(leaf);
    free(ca);
    return path;
}

TK_TEST(trace, tls13_sni_alpn)
{
    struct lines sl, cl;
    lines_init(&sl);
    lines_init(&cl);
    char dir[256], chain[512], got[TLSKIT_TRACE_LINE_MAX];
    struct tk_side srv, cli;
    traced_pair(&sl, &cl, TLSKIT_TLS1_3, two_cert_chain(dir, sizeof dir, chain, sizeof chain),
                0, &srv, &cli);
    cr_assert_eq(cli.rc, 0, "%s", cli.err);
    cr_assert_eq(srv.rc, 0, "%s", srv.err);
    cr_expect_eq(cl.bad + sl.bad, 0, "client:\n%s\nserver:\n%s", cl.text, sl.text);

    /* The client's view, in order. */
    cr_expect(tk_matches(cl.text, "^> ClientHello [^\n]*\n< ServerHello [^\n]*\n"
                                  "< EncryptedExtensions[^\n]*\n< Certificate \\(2 certs\\)\n"
                                  "< CertificateVerify\n< Finished\n"),
              "%s", cl.text);
    line_of(&cl, "> ClientHello", got, sizeof got);
    cr_expect(tk_contains(got, " sni=localhost "), "%s", got);
    cr_expect(tk_contains(got, " alpn=h2,http/1.1 "), "%s", got);
    cr_expect(tk_contains(got, " supported_versions=TLSv1.3,TLSv1.2 "), "%s", got);
    cr_expect(tk_matches(got, " key_share=X25519( |$)"), "%s", got);
    cr_expect(tk_contains(got, " signature_algorithms "), "%s", got);
    line_of(&cl, "< ServerHello", got, sizeof got);
    cr_expect(tk_matches(got, "^< ServerHello cipher=TLS_[A-Z0-9_]+ .*supported_versions="
                              "TLSv1.3.* key_share=X25519"), "%s", got);
    line_of(&cl, "< EncryptedExtensions", got, sizeof got);
    cr_expect(tk_contains(got, " alpn=h2"), "%s", got);
    cr_expect(tk_contains(got, " sni"), "%s", got);
    cr_expect(tk_contains(cl.text, "> Finished\n"), "%s", cl.text);

    /* The server's view is the mirror image. */
    cr_expect(tk_matches(sl.text, "^< ClientHello [^\n]*sni=localhost[^\n]*\n> ServerHello "),
              "%s", sl.text);
    cr_expect(tk_contains(sl.text, "> Certificate (2 certs)\n"), "%s", sl.text);
    cr_expect(tk_contains(sl.text, "< Finished\n"), "%s", sl.text);
    free_pair(&srv, &cli);
    tk_rmtree(dir);
}

TK_TEST(trace, tls12_sni_alpn)
{
    struct lines sl, cl;
    lines_init(&sl);
    lines_init(&cl);
    char got[TLSKIT_TRACE_LINE_MAX];
    struct tk_side srv, cli;
    traced_pair(&sl, &cl, TLSKIT_TLS1_2, tk_cert("server.crt"), 0, &srv, &cli);
    cr_assert_eq(cli.rc, 0, "%s", cli.err);
    cr_expect_eq(cl.bad + sl.bad, 0, "client:\n%s\nserver:\n%s", cl.text, sl.text);
    line_of(&cl, "< ServerHello", got, sizeof got);
    cr_expect(tk_matches(got, "^< ServerHello cipher=ECDHE-[A-Z0-9-]+ .*alpn=h2.* "
                              "version=TLSv1.2$"), "%s", got);
    cr_expect(tk_contains(got, " sni "), "%s", got);
    cr_expect(!tk_contains(got, "supported_versions"), "%s", got);
    cr_expect(tk_matches(cl.text, "< Certificate \\(1 cert\\)\n< ServerKeyExchange group="
                                  "X25519\n< ServerHelloDone\n> ClientKeyExchange\n"
                                  "> ChangeCipherSpec\n> Finished\n"),
              "%s", cl.text);
    line_of(&sl, "< ClientHello", got, sizeof got);
    cr_expect(tk_contains(got, " sni=localhost "), "%s", got);
    cr_expect(tk_contains(got, " alpn=h2,http/1.1 "), "%s", got);
    cr_expect(tk_contains(sl.text, "> ServerHelloDone\n"), "%s", sl.text);
    free_pair(&srv, &cli);
}

/* The server requires a client certificate the client does not have: TLS 1.3 ends with
 * certificate_required, seen sent by one side and received by the other. */
TK_TEST(trace, alert_certificate_required)
{
    struct lines sl, cl;
    lines_init(&sl);
    lines_init(&cl);
    struct tk_side srv, cli;
    traced_pair(&sl, &cl, TLSKIT_TLS1_3, tk_cert("server.crt"), 1, &srv, &cli);
    cr_assert_neq(srv.rc, 0, "the server accepted a client without a certificate");
    cr_expect(tk_contains(cl.text, "< CertificateRequest\n"), "%s", cl.text);
    cr_expect(tk_contains(cl.text, "> Certificate (0 certs)\n"), "%s", cl.text);
    cr_expect(tk_contains(sl.text, "> alert fatal certificate_required\n"), "%s", sl.text);
    /* The client may have finished its side before the alert came (TLS 1.3 clients do);
     * once it reads, it sees the alert. */
    char b;
    (void)tlskit_conn_read(cli.conn, &b, 1);
    cr_expect(tk_contains(cl.text, "< alert fatal certificate_required\n"), "%s", cl.text);
    free_pair(&srv, &cli);
}

/* No callback: nothing is traced; a config in use refuses the setter. */
TK_TEST(trace, off_and_frozen)
{
    struct lines l;
    lines_init(&l);
    tlskit_config *cfg = tk_client_config("ca.crt");
    cr_expect_eq(tlskit_config_set_trace(cfg, collect, &l), 0);
    cr_expect_eq(tlskit_config_set_trace(cfg, NULL, NULL), 0);
    tlskit_conn *c = tlskit_conn_new(cfg);
    cr_expect_eq(tlskit_config_set_trace(cfg, collect, &l), -1);
    cr_expect_eq(tlskit_config_error_code(cfg), TLSKIT_E_INVALID);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    cr_expect_eq(l.calls, 0);
}

/* ---- the formatter over hand-made and hostile messages ---- */

static const char *fmt(char *out, size_t len, int sent, int type, int version,
                       const unsigned char *msg, size_t n)
{
    size_t got = tlskit_trace_format(out, len, sent, type, version, msg, n);
    cr_expect_eq(got, strlen(out));
    return out;
}

TK_TEST(trace, format_messages)
{
    char out[TLSKIT_TRACE_LINE_MAX];
    static const unsigned char alert[] = {2, 42}, warn[] = {1, 0}, odd[] = {7, 200};
    cr_expect_str_eq(fmt(out, sizeof out, 0, 21, 0, alert, 2), "< alert fatal bad_certificate");
    cr_expect_str_eq(fmt(out, sizeof out, 1, 21, 0, warn, 2), "> alert warning close_notify");
    cr_expect_str_eq(fmt(out, sizeof out, 0, 21, 0, odd, 2), "< alert level? 200");
    cr_expect_str_eq(fmt(out, sizeof out, 0, 21, 0, alert, 1), "< alert [malformed]");
    cr_expect_str_eq(fmt(out, sizeof out, 1, 20, 0, (const unsigned char *)"\1", 1),
                     "> ChangeCipherSpec");
    cr_expect_str_eq(fmt(out, sizeof out, 0, 22, 0, NULL, 0), "< handshake fragment (0 bytes)");

    /* A ClientHello whose SNI holds a comma, a NUL and a newline, GREASE and an unknown
     * extension, and ALPN. */
    static const unsigned char ch[] = {
        1, 0, 0, 73,                       /* ClientHello, 73 bytes */
        3, 3,                              /* legacy_version */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0,                        /* random */
        0,                                 /* session id */
        0, 2, 0x13, 0x01,                  /* one suite */
        1, 0,                              /* compression: null */
        0, 30,                             /* extensions */
        0, 0, 0, 10, 0, 8, 0, 0, 5, 'a', ',', 0, '\n', 'b',  /* server_name */
        0x3a, 0x3a, 0, 0,                  /* GREASE */
        0x12, 0x34, 0, 0,                  /* unknown */
        0, 16, 0, 4, 0, 2, 1, 'x',         /* ALPN, protocol "x" */
    };
    fmt(out, sizeof out, 1, 22, 0, ch, sizeof ch);
    cr_expect_str_eq(out, "> ClientHello ciphers=1 sni=a\\x2c\\x00\\x0ab grease 0x1234 alpn=x "
                          "version=TLSv1.2");
    /* Every shorter cut of it is malformed, never read past. */
    for (size_t n = 4; n < sizeof ch; n++) {
        unsigned char *copy = malloc(n); /* exact size: ASan sees an over-read */
        memcpy(copy, ch, n);
        fmt(out, sizeof out, 1, 22, 0, copy, n);
        cr_expect(tk_contains(out, "[malformed]"), "%zu bytes: %s", n, out);
        free(copy);
    }
    /* A server_name list whose length says more than the extension has. */
    unsigned char lie[sizeof ch];
    memcpy(lie, ch, sizeof ch);
    lie[4 + 2 + 32 + 1 + 4 + 2 + 2 + 5] = 40;
    fmt(out, sizeof out, 1, 22, 0, lie, sizeof lie);
    cr_expect(tk_contains(out, "[malformed]"), "%s", out);

    /* Cut lines end in "...", within the buffer; a zero-size buffer is left alone. */
    char small[20];
    fmt(small, sizeof small, 1, 22, 0, ch, sizeof ch);
    cr_expect_str_eq(small, "> ClientHello ci...");
    char none = 'z';
    cr_expect_eq(tlskit_trace_format(&none, 0, 1, 22, 0, ch, sizeof ch), 0);
    cr_expect_eq(none, 'z');

    /* A HelloRetryRequest (a ServerHello with RFC 8446's special random) asking for P-256,
     * and EncryptedExtensions with a protocol name holding a byte above 0x7e. */
    static const unsigned char hrr[] = {
        2, 0, 0, 46, 3, 3, 0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c,
        0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07,
        0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c, 0, 0x13, 0x01, 0, 0, 6, 0, 51, 0, 2, 0, 23};
    cr_expect_str_eq(fmt(out, sizeof out, 0, 22, 0, hrr, sizeof hrr),
                     "< HelloRetryRequest cipher=0x1301 key_share=P-256 version=TLSv1.2");
    static const unsigned char ee[] = {8, 0, 0, 18, 0, 16, 0, 16, 0, 12, 0, 10, 2, 'h', '2',
                                       6, 'f', 'o', 'o', 0xff, 'b', 'a'};
    cr_expect_str_eq(fmt(out, sizeof out, 0, 22, TLSKIT_TLS1_3, ee, sizeof ee),
                     "< EncryptedExtensions alpn=h2,foo\\xffba");

    /* TLS 1.3 Certificate: context, then two entries each with empty extensions. */
    static const unsigned char cert13[] = {11, 0, 0, 16, 0, 0, 0, 12, 0, 0, 1, 'A', 0, 0,
                                           0, 0, 1, 'B', 0, 0};
    cr_expect_str_eq(fmt(out, sizeof out, 0, 22, TLSKIT_TLS1_3, cert13, sizeof cert13),
                     "< Certificate (2 certs)");
    cr_expect(tk_contains(fmt(out, sizeof out, 0, 22, TLSKIT_TLS1_2, cert13, sizeof cert13),
                          "[malformed]"), "%s", out);
}

/* ---- the apps ---- */

TK_TEST(trace, tlsclient_and_tlsserver_vv)
{
    struct tk_server s;
    const char *extra[] = {"--alpn", "h2,http/1.1", "-vv", NULL};
    tk_server_start(&s, "server", "127.0.0.1", extra);

    struct tk_proc p;
    const char *args[] = {"--ca", tk_cert("ca.crt"), "--alpn", "h2", "-vv", "localhost",
                          s.portstr, NULL};
    cr_expect_eq(tk_run_app(&p, tk_client_bin(), args, "hi\n", 3, RUN_MS), 0, "%s",
                 p.errbuf);
    cr_expect(tk_matches(p.errbuf, "tlsclient: > ClientHello [^\n]*sni=localhost [^\n]*"
                                   "alpn=h2 [^\n]*key_share="),
              "%s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, "tlsclient: < EncryptedExtensions sni alpn=h2\n"), "%s",
              p.errbuf);
    cr_expect(tk_contains(p.errbuf, "tlsclient: < Certificate (1 cert)\n"), "%s", p.errbuf);
    /* -vv is also -v: the summary comes after the trace of the handshake. */
    cr_expect(tk_matches(p.errbuf, "< Finished\n(.*\n)*tlsclient: verify result: ok"), "%s",
              p.errbuf);
    tk_proc_free(&p);

    /* --trace, TLS 1.2. */
    const char *args12[] = {"--ca", tk_cert("ca.crt"), "--tls-max", "1.2", "--trace",
                            "localhost", s.portstr, NULL};
    cr_expect_eq(tk_run_app(&p, tk_client_bin(), args12, "", 0, RUN_MS), 0, "%s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, "tlsclient: < ServerHelloDone\n"), "%s", p.errbuf);
    tk_proc_free(&p);

    /* ALPN mismatch: the server's alert, traced by both. */
    const char *bad[] = {"--ca", tk_cert("ca.crt"), "--alpn", "foo", "--trace", "localhost",
                         s.portstr, NULL};
    cr_expect_eq(tk_run_app(&p, tk_client_bin(), bad, "", 0, RUN_MS), 6, "%s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, "tlsclient: < alert fatal no_application_protocol\n"),
              "%s", p.errbuf);
    tk_proc_free(&p);

    cr_expect(tk_proc_wait_for(&s.p, 2, "> alert fatal no_application_protocol", RUN_MS),
              "%s", s.p.errbuf);
    /* Every trace line of the server carries the client's address. */
    cr_expect(tk_matches(s.p.errbuf, "tlsserver: 127\\.0\\.0\\.1:[0-9]+ < ClientHello [^\n]*"
                                     "sni=localhost[^\n]*alpn=h2 "), "%s", s.p.errbuf);
    cr_expect(tk_matches(s.p.errbuf, "tlsserver: 127\\.0\\.0\\.1:[0-9]+ > Certificate "
                                     "\\(1 cert\\)\n"), "%s", s.p.errbuf);
    cr_expect(tk_matches(s.p.errbuf, "tlsserver: 127\\.0\\.0\\.1:[0-9]+ > alert fatal "
                                     "no_application_protocol\n"), "%s", s.p.errbuf);
    cr_expect(!tk_matches(s.p.errbuf, "tlsserver: [<>] "), "%s", s.p.errbuf);
    tk_server_stop(&s);
}
