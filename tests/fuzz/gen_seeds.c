/* SPDX-License-Identifier: MIT */
/*
 * Seed corpus generator for the fuzz targets (not part of the test run; its output is
 * committed under tests/fuzz/corpus/). Usage: fuzz_gen_seeds OUTDIR
 *
 * Handshake seeds are real transcripts: a tlskit client and a tlskit server talk over
 * two socketpairs joined by a recording relay, in this process, with the deterministic
 * random generator (fuzz_common.h). The bytes the client sent, after the server flags
 * byte, are a handshake_server seed; the bytes the server sent, after the client flags
 * byte, a handshake_client seed. Replayed against the same configuration they lead to
 * the same completed handshake, the data exchange and close_notify. Other seeds
 * (http, cli, options, pem, malformed handshakes) are written out as they are.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static const char *outdir;

struct buf {
    unsigned char *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2 + 1024;
        if (!(b->p = realloc(b->p, b->cap)))
            abort();
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

static void write_seed(const char *target, const char *name, unsigned char head,
                       int with_head, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", outdir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/seed-%s", outdir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (with_head && fputc(head, f) == EOF) || fwrite(data, 1, len, f) != len ||
        fclose(f) != 0) {
        fprintf(stderr, "gen_seeds: %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* ---- recorded handshakes ---- */

/* Move what is readable from one relay end to the other, recording it. */
static int pump(int from, int to, struct buf *rec)
{
    unsigned char tmp[16384];
    int moved = 0;
    for (;;) {
        ssize_t n = read(from, tmp, sizeof(tmp));
        if (n <= 0)
            return moved;
        buf_add(rec, tmp, (size_t)n);
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(to, tmp + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EAGAIN)
                    continue;
                return moved;
            }
            off += w;
        }
        moved = 1;
    }
}

/* Step a non-blocking connection's handshake; 1 done, 0 not yet, -1 failed. */
static int step(tlskit_conn *c, int *state)
{
    if (*state != 0)
        return *state;
    int r = tlskit_conn_handshake(c);
    if (r == 0)
        *state = 1;
    else if (r == -1)
        *state = -1;
    return *state;
}

/* The trace corpus: every message a recorded handshake sends (once, by its sender), in
 * fuzz_trace.c's layout: [flags] message. */
static const char *trace_name;
static int trace_n;
static void trace_seed(int write_p, int version, int type, const void *buf, size_t len,
                       SSL *ssl, void *arg)
{
    (void)version;
    (void)arg;
    if (!write_p || (type != 20 && type != 21 && type != 22))
        return;
    unsigned flags = (unsigned)(type - 20) << 1 | (SSL_version(ssl) == TLS1_3_VERSION ? 8 : 0);
    char name[160];
    snprintf(name, sizeof(name), "%s-%02d", trace_name, trace_n++);
    write_seed("trace", name, (unsigned char)(flags | (trace_n & 1)), 1, buf, len);
}

static void record(const char *name, unsigned cflags, unsigned sflags, int expect_ok)
{
    int cp[2], sp[2];
    struct buf c2s = {0}, s2c = {0};
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, cp) != 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp) != 0)
        abort();
    tlskit_config *ccfg = fz_client_config(cflags), *scfg = fz_server_config(sflags);
    trace_name = name;
    trace_n = 0;
    SSL_CTX_set_msg_callback(tlskit_config_ssl_ctx(ccfg), trace_seed);
    SSL_CTX_set_msg_callback(tlskit_config_ssl_ctx(scfg), trace_seed);
    tlskit_conn *cli = tlskit_conn_new(ccfg), *srv = tlskit_conn_new(scfg);
    tlskit_config_free(ccfg);
    tlskit_config_free(scfg);
    const char *sni = (cflags & FZ_CLI_INSECURE) ? NULL
                      : (cflags & FZ_CLI_IPNAME) ? "127.0.0.1"
                                                 : "localhost";
    if (tlskit_conn_wrap_client(cli, cp[0], sni) != 0 || tlskit_conn_wrap_server(srv, sp[0]))
        abort();

    int cs = 0, ss = 0;
    for (int i = 0; i < 100 && (cs == 0 || ss == 0) && cs != -1 && ss != -1; i++) {
        step(cli, &cs);
        step(srv, &ss);
        pump(cp[1], sp[1], &c2s);
        pump(sp[1], cp[1], &s2c);
    }
    /* A failed side has sent its alert; let the other side read it. */
    for (int i = 0; i < 10; i++) {
        step(cli, &cs);
        step(srv, &ss);
        pump(cp[1], sp[1], &c2s);
        pump(sp[1], cp[1], &s2c);
    }
    int ok = cs == 1 && ss == 1;
    if (ok != expect_ok) {
        fprintf(stderr, "gen_seeds: %s: handshake %s (client: %s; server: %s)\n", name,
                ok ? "completed" : "failed", tlskit_conn_error(cli), tlskit_conn_error(srv));
        exit(1);
    }
    if (ok) {
        static const char hello[] = "hello from the tlskit fuzz seed generator\n";
        char tmp[256];
        if (tlskit_conn_write(cli, hello, sizeof(hello) - 1) != (ssize_t)sizeof(hello) - 1)
            abort();
        pump(cp[1], sp[1], &c2s);
        ssize_t n = tlskit_conn_read(srv, tmp, sizeof(tmp));
        if (n <= 0 || tlskit_conn_write(srv, tmp, (size_t)n) != n)
            abort();
        pump(sp[1], cp[1], &s2c);
        for (int i = 0; i < 10 && tlskit_conn_read(cli, tmp, sizeof(tmp)) != n; i++)
            pump(sp[1], cp[1], &s2c);
        tlskit_conn_close(cli); /* close_notify both ways */
        pump(cp[1], sp[1], &c2s);
        if (tlskit_conn_read(srv, tmp, sizeof(tmp)) != 0)
            abort();
        tlskit_conn_close(srv);
        pump(sp[1], cp[1], &s2c);
    }
    tlskit_conn_free(cli);
    tlskit_conn_free(srv);
    close(cp[0]);
    close(cp[1]);
    close(sp[0]);
    close(sp[1]);

    write_seed("handshake_server", name, (unsigned char)sflags, 1, c2s.p, c2s.len);
    write_seed("handshake_client", name, (unsigned char)cflags, 1, s2c.p, s2c.len);
    if (ok) { /* the same bytes, blocking, and against a peer that closes at once */
        char n2[128];
        snprintf(n2, sizeof(n2), "%s-blocking", name);
        write_seed("handshake_server", n2, (unsigned char)(sflags | FZ_BLOCKING), 1, c2s.p,
                   c2s.len);
        write_seed("handshake_client", n2, (unsigned char)(cflags | FZ_BLOCKING), 1, s2c.p,
                   s2c.len);
    }
    printf("%-28s client sent %5zu bytes, server %5zu: %s\n", name, c2s.len, s2c.len,
           ok ? "completed" : "failed (as planned)");
    free(c2s.p);
    free(s2c.p);
}

static void handshake_seeds(void)
{
    record("tls13", 0, 0, 1);
    record("tls12-client", FZ_TLS12, 0, 1);
    record("tls12-server", 0, FZ_TLS12, 1);
    record("tls12-insecure", FZ_CLI_INSECURE | FZ_TLS12, 0, 1);
    record("tls13-insecure", FZ_CLI_INSECURE, 0, 1);
    record("ip-name", FZ_CLI_IPNAME, 0, 1);
    record("tls13-client-cert", FZ_CLI_CERT, TLSKIT_VERIFY_CLIENT_REQUIRED, 1);
    record("tls12-client-cert", FZ_CLI_CERT | FZ_TLS12, TLSKIT_VERIFY_CLIENT_REQUIRED, 1);
    record("tls12-optional-none", FZ_TLS12, TLSKIT_VERIFY_CLIENT_OPTIONAL, 1);
    record("tls13-required-none", 0, TLSKIT_VERIFY_CLIENT_REQUIRED, 0);
    record("tls12-required-none", FZ_TLS12, TLSKIT_VERIFY_CLIENT_REQUIRED, 0);
    record("hello-retry", 0, FZ_SRV_P256, 1);
    record("version-mismatch", FZ_TLS12, FZ_TLS13, 0);

    static const unsigned char sslv2_hello[] = { /* SSLv2-format ClientHello (RFC 6101 E) */
        0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10,
        0x00, 0xc0, 0x2f, 0x00, 0xc0, 0x2b, 0x00, 0x00, 0x9c, 0x00, 0x00, 0x2f,
        0x00, 0x00, 0x35, 0x00, 0x00, 0x0a, 0x01, 0x00, 0x80, 0x00, 0x00, 0xff,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
        0x0d, 0x0e, 0x0f, 0x10};
    static const unsigned char alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
    static const unsigned char huge_record[] = {0x16, 0x03, 0x01, 0xff, 0xff, 0x01};
    static const unsigned char heartbeat[] = {0x18, 0x03, 0x03, 0x00, 0x03, 0x01, 0x40, 0x00};
    static const char http[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    static const char http_reply[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    const char *both[] = {"handshake_server", "handshake_client"};
    for (int i = 0; i < 2; i++) {
        write_seed(both[i], "empty", 0, 1, "", 0);
        write_seed(both[i], "alert", 0, 1, alert, sizeof(alert));
        write_seed(both[i], "huge-record", 0, 1, huge_record, sizeof(huge_record));
        write_seed(both[i], "heartbeat", 0, 1, heartbeat, sizeof(heartbeat));
        write_seed(both[i], "peer-close", FZ_PEER_CLOSE, 1, alert, sizeof(alert));
    }
    write_seed("handshake_server", "sslv2-hello", 0, 1, sslv2_hello, sizeof(sslv2_hello));
    write_seed("handshake_server", "plain-http", 0, 1, http, sizeof(http) - 1);
    write_seed("handshake_client", "plain-http", 0, 1, http_reply, sizeof(http_reply) - 1);
}

/* ---- certificates and keys from memory (fuzz_pem) ---- */

static char *pem_of(int (*write)(BIO *, const void *), const void *obj, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    if (!b || !write(b, obj))
        abort();
    long n = BIO_get_mem_data(b, &data);
    char *out = malloc((size_t)n + 1);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    *len = (size_t)n;
    BIO_free(b);
    return out;
}

static int w_cert(BIO *b, const void *x)
{
    return PEM_write_bio_X509(b, (X509 *)(uintptr_t)x);
}

static int w_key(BIO *b, const void *k)
{
    return PEM_write_bio_PrivateKey(b, (EVP_PKEY *)(uintptr_t)k, NULL, NULL, 0, NULL, NULL);
}

static int w_key_trad(BIO *b, const void *k)
{
    return PEM_write_bio_PrivateKey_traditional(b, (EVP_PKEY *)(uintptr_t)k, NULL, NULL, 0,
                                                NULL, NULL);
}

static int w_key_enc(BIO *b, const void *k)
{
    return PEM_write_bio_PKCS8PrivateKey(b, (EVP_PKEY *)(uintptr_t)k, EVP_aes_128_cbc(),
                                         NULL, 0, NULL, (void *)(uintptr_t) "secret");
}

/* A certificate for key, signed by issuer_key (self-signed when NULL). */
static X509 *cert_for(EVP_PKEY *key, const char *cn, EVP_PKEY *issuer_key, const char *issuer)
{
    X509 *x = X509_new();
    X509_NAME *subj = X509_NAME_new(), *iss = X509_NAME_new();
    X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_NAME_add_entry_by_txt(iss, "CN", MBSTRING_ASC,
                               (const unsigned char *)(issuer ? issuer : cn), -1, -1, 0);
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 2);
    ASN1_TIME_set_string_X509(X509_getm_notBefore(x), "20240101000000Z");
    ASN1_TIME_set_string_X509(X509_getm_notAfter(x), "99991231235959Z");
    X509_set_subject_name(x, subj);
    X509_set_issuer_name(x, iss);
    X509_set_pubkey(x, key);
    EVP_PKEY *signer = issuer_key ? issuer_key : key;
    const EVP_MD *md = EVP_PKEY_get_base_id(signer) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    if (!X509_sign(x, signer, md))
        abort();
    X509_NAME_free(subj);
    X509_NAME_free(iss);
    return x;
}

static void pem_seed(const char *name, unsigned flags, const char *cert, size_t cert_len,
                     const char *key, size_t key_len)
{
    struct buf b = {0};
    unsigned char head[3] = {(unsigned char)flags, (unsigned char)(cert_len & 0xff),
                             (unsigned char)(cert_len >> 8)};
    buf_add(&b, head, 3);
    buf_add(&b, cert, cert_len);
    buf_add(&b, key, key_len);
    write_seed("pem", name, 0, 0, b.p, b.len);
    free(b.p);
}

static void pem_seeds(void)
{
    /* Generated with OpenSSL's real generator: RSA key generation never ends with the
     * constant stream; run before fz_deterministic_rand(). */
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    EVP_PKEY *weak = EVP_RSA_gen(1024);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!ec || !rsa || !weak || !ed)
        abort();
    X509 *ec_x = cert_for(ec, "localhost", NULL, NULL);
    X509 *rsa_x = cert_for(rsa, "rsa.localhost", NULL, NULL);
    X509 *weak_x = cert_for(weak, "weak.localhost", NULL, NULL);
    X509 *ed_x = cert_for(ed, "ed25519.localhost", NULL, NULL);
    X509 *leaf_x = cert_for(ed, "leaf.localhost", ec, "localhost"); /* chain: leaf, ec */

    size_t l1, l2, l3, l4, l5, k1, k2, k3, k4, k5, k6, k7;
    char *ec_c = pem_of(w_cert, ec_x, &l1), *ec_k = pem_of(w_key, ec, &k1);
    char *rsa_c = pem_of(w_cert, rsa_x, &l2), *rsa_k = pem_of(w_key_trad, rsa, &k2);
    char *weak_c = pem_of(w_cert, weak_x, &l3), *weak_k = pem_of(w_key, weak, &k3);
    char *ed_c = pem_of(w_cert, ed_x, &l4), *ed_k = pem_of(w_key, ed, &k4);
    char *leaf_c = pem_of(w_cert, leaf_x, &l5);
    char *enc_k = pem_of(w_key_enc, ec, &k5);
    char *ec_trad = pem_of(w_key_trad, ec, &k6);
    char *rsa_k8 = pem_of(w_key, rsa, &k7);

    pem_seed("ec", 0, ec_c, l1, ec_k, k1);
    pem_seed("ec-traditional", 0, ec_c, l1, ec_trad, k6);
    pem_seed("rsa2048-pkcs1", 0, rsa_c, l2, rsa_k, k2);
    pem_seed("rsa2048-pkcs8", 0, rsa_c, l2, rsa_k8, k7);
    pem_seed("rsa1024-too-weak", 0, weak_c, l3, weak_k, k3);
    pem_seed("ed25519", 0, ed_c, l4, ed_k, k4);
    pem_seed("mismatch", 0, ec_c, l1, ed_k, k4);
    pem_seed("encrypted-key", 0, ec_c, l1, enc_k, k5);
    pem_seed("key-missing", 0, ec_c, l1, "", 0);
    pem_seed("garbage", 0, "-----BEGIN CERTIFICATE-----\nnot base64\n", 40,
             "-----BEGIN PRIVATE KEY-----\n", 28);
    pem_seed("truncated", 0, ec_c, l1 / 2, ec_k, k1 / 2);
    struct buf chain = {0};
    buf_add(&chain, leaf_c, l5);
    buf_add(&chain, ec_c, l1);
    pem_seed("chain", 0, (const char *)chain.p, chain.len, ed_k, k4);
    struct buf twice = {0}; /* CA bundle with a duplicate and trailing text */
    buf_add(&twice, ec_c, l1);
    buf_add(&twice, ec_c, l1);
    buf_add(&twice, "trailing text\n", 14);
    pem_seed("ca-duplicate", 1, (const char *)twice.p, twice.len, "", 0);
    pem_seed("ca-then-keypair", 4, rsa_c, l2, rsa_k, k2);

    free(chain.p);
    free(twice.p);
    char *all[] = {ec_c, ec_k, rsa_c, rsa_k, weak_c, weak_k, ed_c, ed_k, leaf_c, enc_k,
                   ec_trad, rsa_k8};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(all[i]);
    X509 *xs[] = {ec_x, rsa_x, weak_x, ed_x, leaf_x};
    for (size_t i = 0; i < 5; i++)
        X509_free(xs[i]);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(weak);
    EVP_PKEY_free(ed);
}

/* ---- peer certificates (fuzz_peer_cert): DER, re-signed by the target ---- */

static void der_seed(const char *name, unsigned flags, X509 *x)
{
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    if (len <= 0)
        abort();
    write_seed("peer_cert", name, (unsigned char)flags, 1, der, (size_t)len);
    OPENSSL_free(der);
}

static X509 *peer_cert(EVP_PKEY *key, const char *cn, const char *sans, const char *extra_nid_value,
                       int extra_nid)
{
    X509 *x = cert_for(key, cn, NULL, NULL);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    if (sans) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, sans);
        if (!e || !X509_add_ext(x, e, -1))
            abort();
        X509_EXTENSION_free(e);
    }
    if (extra_nid_value) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, extra_nid, extra_nid_value);
        if (!e || !X509_add_ext(x, e, -1))
            abort();
        X509_EXTENSION_free(e);
    }
    return x;
}

/* A SAN extension made by hand, for values the config syntax cannot express. */
static void add_raw_dns_san(X509 *x, const char *value, int len)
{
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    if (!names || !g || !s || !ASN1_STRING_set(s, value, len))
        abort();
    GENERAL_NAME_set0_value(g, GEN_DNS, s);
    sk_GENERAL_NAME_push(names, g);
    if (!X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT))
        abort();
    GENERAL_NAMES_free(names);
}

static void peer_cert_seeds(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (!key)
        abort();
    const char *pem;
    size_t pem_len;
    const char *k;
    size_t kl;
    fz_keypair(&pem, &pem_len, &k, &kl);
    BIO *b = BIO_new_mem_buf(pem, (int)pem_len);
    X509 *fuzz = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    der_seed("fuzz-insecure", 0, fuzz);
    der_seed("fuzz-verify", 1, fuzz);
    der_seed("fuzz-verify-ip", 3, fuzz);
    der_seed("fuzz-tls12-verify", 5, fuzz);
    X509_free(fuzz);

    X509 *x = peer_cert(key, "all-kinds", "DNS:localhost,DNS:*.example.org,email:a@example.org,"
                        "URI:https://example.org/x,IP:127.0.0.1,IP:::1,RID:1.2.3.4,"
                        "otherName:1.2.3.4;UTF8:hello", NULL, 0);
    der_seed("san-all-kinds", 0, x);
    der_seed("san-all-kinds-verify", 1, x);
    X509_free(x);

    char long_dns[400] = "DNS:";
    memset(long_dns + 4, 'a', 300);
    strcpy(long_dns + 304, ".example.org");
    x = peer_cert(key, "long", long_dns, NULL, 0);
    der_seed("san-long-name", 0, x);
    X509_free(x);

    struct buf many = {0};
    for (int i = 0; i < 150; i++) {
        char one[64];
        int n = snprintf(one, sizeof(one), "%sDNS:host%03d.example.org", i ? "," : "", i);
        buf_add(&many, one, (size_t)n);
    }
    buf_add(&many, "", 1);
    x = peer_cert(key, "many", (const char *)many.p, NULL, 0);
    der_seed("san-many", 0, x);
    X509_free(x);
    free(many.p);

    x = cert_for(key, "nul", NULL, NULL);
    add_raw_dns_san(x, "evil.example\0.localhost", 23);
    der_seed("san-embedded-nul", 0, x);
    der_seed("san-embedded-nul-verify", 1, x);
    X509_free(x);

    x = cert_for(key, "comma", NULL, NULL);
    add_raw_dns_san(x, "a.example, IP:10.0.0.1", 22);
    der_seed("san-comma-injection", 0, x);
    X509_free(x);

    x = peer_cert(key, "ctl\x1b[31m\nname", "DNS:ctl\x1b[0m.example", NULL, 0);
    der_seed("control-chars", 0, x);
    X509_free(x);

    x = peer_cert(key, "localhost", "DNS:localhost", "critical,CA:FALSE",
                  NID_basic_constraints);
    der_seed("not-ca-verify", 1, x);
    X509_free(x);

    x = peer_cert(key, "localhost", "DNS:localhost", "critical,digitalSignature",
                  NID_key_usage);
    der_seed("no-certsign-verify", 1, x);
    X509_free(x);

    x = cert_for(key, "v1", NULL, NULL); /* no extensions; old times */
    X509_set_version(x, X509_VERSION_1);
    ASN1_TIME_set_string_X509(X509_getm_notBefore(x), "19500101000000Z");
    ASN1_TIME_set_string_X509(X509_getm_notAfter(x), "20491231235959Z");
    X509_sign(x, key, EVP_sha256());
    der_seed("v1-utctime", 4, x);
    der_seed("v1-verify", 1, x);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* ---- text seeds: http, cli, options ---- */

static void http_seed(const char *name, unsigned b0, unsigned chunk, unsigned seed,
                      const char *req, size_t len)
{
    struct buf b = {0};
    unsigned char head[3] = {(unsigned char)b0, (unsigned char)chunk, (unsigned char)seed};
    buf_add(&b, head, 3);
    buf_add(&b, req, len);
    write_seed("http", name, 0, 0, b.p, b.len);
    free(b.p);
}

#define HTTP_SEED(name, b0, chunk, seed, req) http_seed(name, b0, chunk, seed, req, sizeof(req) - 1)

static void http_seeds(void)
{
    HTTP_SEED("get", 3, 0, 0, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    HTTP_SEED("get-bytewise", 3, 1, 0, "GET /index.html HTTP/1.1\r\nHost: a\r\nUser-Agent: "
              "fuzz\r\nAccept: */*\r\n\r\n");
    HTTP_SEED("head", 4, 7, 9, "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
    HTTP_SEED("pipelined", 2, 10, 77, "GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\n"
              "Host: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
              "GET /never HTTP/1.1\r\nHost: h\r\n\r\n");
    HTTP_SEED("post-body", 1, 5, 3, "POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 11"
              "\r\n\r\nhello=world" "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    HTTP_SEED("http10-keepalive", 0, 0, 0, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
              "GET / HTTP/1.0\r\n\r\n");
    HTTP_SEED("connection-list", 0, 0, 0, "GET / HTTP/1.1\r\nHost: h\r\nConnection: "
              "keep-alive, Upgrade,close\r\n\r\n");
    HTTP_SEED("chunked", 0, 0, 0, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
              "\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    HTTP_SEED("no-host", 0, 0, 0, "GET / HTTP/1.1\r\n\r\n");
    HTTP_SEED("two-hosts", 0, 0, 0, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    HTTP_SEED("cl-conflict", 0, 0, 0, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
              "Content-Length: 2\r\n\r\nab");
    HTTP_SEED("cl-huge", 0, 0, 0, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "
              "999999999999\r\n\r\nxxxx");
    HTTP_SEED("space-before-colon", 0, 0, 0, "GET / HTTP/1.1\r\nHost : a\r\n\r\n");
    HTTP_SEED("obs-fold", 0, 0, 0, "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n  c\r\n\r\n");
    HTTP_SEED("bare-lf", 0, 0, 0, "GET / HTTP/1.1\nHost: a\n\n\r\n\r\n");
    HTTP_SEED("version-2", 0, 0, 0, "GET / HTTP/2.0\r\nHost: a\r\n\r\n");
    HTTP_SEED("write-fails", 3 | (2 << 3), 0, 0, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
              "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    HTTP_SEED("method-405", 0, 3, 0, "DELETE /x HTTP/1.1\r\nHost: h\r\n\r\nOPTIONS * "
              "HTTP/1.1\r\nHost: h\r\n\r\n");
    /* A head that never ends: 431 once 8192 bytes are buffered. */
    char big[9000];
    memcpy(big, "GET / HTTP/1.1\r\nHost: h\r\nX-Long: ", 34);
    memset(big + 34, 'a', sizeof(big) - 34);
    http_seed("too-large", 0, 200, 5, big, sizeof(big));
}

static void cli_seed(const char *name, unsigned lo, unsigned hi, const char *text)
{
    struct buf b = {0};
    unsigned char head[2] = {(unsigned char)lo, (unsigned char)hi};
    buf_add(&b, head, 2);
    buf_add(&b, text, strlen(text));
    write_seed("cli", name, 0, 0, b.p, b.len);
    free(b.p);
}

static void cli_seeds(void)
{
    cli_seed("ten", 0, 6, "10");
    cli_seed("half", 0, 6, "0.5");
    cli_seed("fraction", 1, 5, "2.250");
    cli_seed("seconds-max", 0, 15, "2147483.647");
    cli_seed("seconds-over", 0, 15, "2147483.648");
    cli_seed("sub-ms", 0, 15, "0.0001");
    cli_seed("leading-zeros", 0, 15, "0000000000002147483.6470");
    cli_seed("dot-end", 0, 15, "1.");
    cli_seed("dot-start", 0, 15, ".5");
    cli_seed("port", 0, 6, "65535");
    cli_seed("port-over", 0, 6, "65536");
    cli_seed("ulong-max", 0, 15, "18446744073709551615");
    cli_seed("ulong-over", 0, 15, "18446744073709551616");
    cli_seed("tlsv13", 0, 0, "TLSv1.3");
    cli_seed("tls12", 0, 0, "tls1_2");
    cli_seed("tlsv-bare", 0, 0, "tlsv1.2");
    cli_seed("plus", 0, 15, "+5");
}

static void options_seed(const char *name, int client, const char *args, size_t len)
{
    struct buf b = {0};
    unsigned char head = (unsigned char)client;
    buf_add(&b, &head, 1);
    buf_add(&b, args, len);
    write_seed("options", name, 0, 0, b.p, b.len);
    free(b.p);
}

#define OPT_SEED(name, client, args) options_seed(name, client, args, sizeof(args) - 1)

static void options_seeds(void)
{
    OPT_SEED("server-port", 0, "--port\0008443");
    OPT_SEED("server-full", 0, "--bind\0localhost\0--port\0000\0--cert\0c.pem\0--key\0k.pem"
             "\0--mode\0http\0--body-size\0004096\0--model=thread\0-v");
    OPT_SEED("server-verify", 0, "--verify-client=optional\0--ca\0ca.pem");
    OPT_SEED("server-verify-noca", 0, "--verify-client");
    OPT_SEED("server-verify-sep", 0, "--verify-client\0optional");
    OPT_SEED("server-tls-range", 0, "--tls-min\0001.3\0--tls-max\0TLSv1.2");
    OPT_SEED("server-timeouts", 0, "--handshake-timeout=0.5\0--idle-timeout\0300\0"
             "--write-timeout\0002147483.647");
    OPT_SEED("server-workers", 0, "--workers\0004\0--max-conns\000100\0--exit-after=1\0-qv");
    OPT_SEED("server-help", 0, "--help");
    OPT_SEED("server-help-value", 0, "--help=x");
    OPT_SEED("server-version", 0, "-V");
    OPT_SEED("server-missing-value", 0, "--port");
    OPT_SEED("server-unknown", 0, "--bogus\0-x");
    OPT_SEED("server-abbrev", 0, "--verb\0--mod\0discard\0--mo=iterative");
    OPT_SEED("client-basic", 1, "localhost\0004433");
    OPT_SEED("client-insecure", 1, "--insecure\0example.org\000443\0-v");
    OPT_SEED("client-cert", 1, "--cert\0c.pem\0--key\0k.pem\0--ca\0ca.pem\0--capath\0/etc"
             "\0h\0001");
    OPT_SEED("client-cert-only", 1, "--cert\0c.pem\0h\0001");
    OPT_SEED("client-servername", 1, "--servername\0\0h\0001");
    OPT_SEED("client-timeout", 1, "--timeout\0000.25\0--tls-max=1.2\0h\00065535");
    OPT_SEED("client-bad-port", 1, "h\0000");
    OPT_SEED("client-extra", 1, "a\0b\0c");
    OPT_SEED("client-dashdash", 1, "--\0-h\0001");
}

/* ---- OCSP responses for the fuzz certificate (fuzz_ocsp_staple) ---- */

/* fuzz_ocsp_client: the staple behind a flags byte, TLS 1.3 and 1.2, required, with and
 * without verification (see the target). */
static void ocsp_client_seeds(const char *name, const void *der, size_t len)
{
    static const unsigned char heads[] = {0x06, 0x07, 0x02, 0x04};
    for (size_t i = 0; i < sizeof(heads); i++) {
        char seed[128];
        snprintf(seed, sizeof(seed), "%s-%02x", name, heads[i]);
        write_seed("ocsp_client", seed, heads[i], 1, der, len);
    }
}

/* A response about x (self-signed: its own issuer), signed with key: status, thisUpdate
 * and nextUpdate offsets in seconds from now (next_off 0: no nextUpdate). */
static void ocsp_seed(const char *name, X509 *x, EVP_PKEY *key, int status, long this_off,
                      long next_off, int other_serial)
{
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    X509 *subject = X509_dup(x);
    if (!bs || !subject)
        exit(1);
    if (other_serial)
        ASN1_INTEGER_set(X509_get_serialNumber(subject), 4242);
    OCSP_CERTID *id = OCSP_cert_to_id(NULL, subject, x);
    ASN1_TIME *this_upd = X509_time_adj_ex(NULL, 0, this_off, NULL);
    ASN1_TIME *next_upd = next_off ? X509_time_adj_ex(NULL, 0, next_off, NULL) : NULL;
    ASN1_TIME *rev = status == V_OCSP_CERTSTATUS_REVOKED ? this_upd : NULL;
    if (!id || !this_upd ||
        !OCSP_basic_add1_status(bs, id, status, rev ? OCSP_REVOKED_STATUS_KEYCOMPROMISE : -1,
                                rev, this_upd, next_upd) ||
        OCSP_basic_sign(bs, x, key, EVP_sha256(), NULL, 0) != 1)
        exit(1);
    OCSP_RESPONSE *resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
    unsigned char *der = NULL;
    int len = resp ? i2d_OCSP_RESPONSE(resp, &der) : -1;
    if (len <= 0)
        exit(1);
    write_seed("ocsp_staple", name, 0, 0, der, (size_t)len);
    ocsp_client_seeds(name, der, (size_t)len);
    if (strcmp(name, "good") == 0) {
        write_seed("ocsp_staple", "truncated", 0, 0, der, (size_t)len / 2);
        write_seed("ocsp_staple", "trailing-byte", 0, 0, der, (size_t)len); /* + below */
        char path[4096];
        snprintf(path, sizeof(path), "%s/ocsp_staple/seed-trailing-byte", outdir);
        FILE *f = fopen(path, "ab");
        if (!f || fputc(0, f) == EOF || fclose(f) != 0)
            exit(1);
    }
    OPENSSL_free(der);
    OCSP_RESPONSE_free(resp);
    ASN1_TIME_free(this_upd);
    ASN1_TIME_free(next_upd);
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(bs);
    X509_free(subject);
}

static void ocsp_staple_seeds(void)
{
    const char *cert, *key;
    size_t cert_len, key_len;
    fz_keypair(&cert, &cert_len, &key, &key_len);
    BIO *cb = BIO_new_mem_buf(cert, (int)cert_len), *kb = BIO_new_mem_buf(key, (int)key_len);
    X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    if (!x || !k)
        exit(1);
    /* Far from now, so that the seeds keep their meaning for years. */
    const long year = 365L * 24 * 3600;
    ocsp_seed("good", x, k, V_OCSP_CERTSTATUS_GOOD, -3600, 50 * year, 0);
    ocsp_seed("good-no-next-update", x, k, V_OCSP_CERTSTATUS_GOOD, -3600, 0, 0);
    ocsp_seed("revoked", x, k, V_OCSP_CERTSTATUS_REVOKED, -3600, 50 * year, 0);
    ocsp_seed("unknown", x, k, V_OCSP_CERTSTATUS_UNKNOWN, -3600, 50 * year, 0);
    ocsp_seed("expired", x, k, V_OCSP_CERTSTATUS_GOOD, -7200, -3600, 0);
    ocsp_seed("other-serial", x, k, V_OCSP_CERTSTATUS_GOOD, -3600, 50 * year, 1);
    OCSP_RESPONSE *r = OCSP_response_create(OCSP_RESPONSE_STATUS_TRYLATER, NULL);
    unsigned char *der = NULL;
    int len = r ? i2d_OCSP_RESPONSE(r, &der) : -1;
    if (len <= 0)
        exit(1);
    write_seed("ocsp_staple", "try-later", 0, 0, der, (size_t)len);
    ocsp_client_seeds("try-later", der, (size_t)len);
    ocsp_client_seeds("none", "", 0);
    OPENSSL_free(der);
    OCSP_RESPONSE_free(r);
    write_seed("ocsp_staple", "empty", 0, 0, "", 0);
    write_seed("ocsp_staple", "pem-cert", 0, 0, cert, cert_len);
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(k);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    mkdir(outdir, 0755);
    /* pem seeds use the real random generator, which cannot be swapped once used: in a
     * child process. */
    pid_t pid = fork();
    if (pid == 0) {
        pem_seeds();
        _exit(0);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "gen_seeds: generating the pem seeds failed\n");
        return 1;
    }
    http_seeds();
    cli_seeds();
    options_seeds();
    fz_deterministic_rand();
    handshake_seeds();
    peer_cert_seeds();
    ocsp_staple_seeds();
    return 0;
}
