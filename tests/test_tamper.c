/* SPDX-License-Identifier: MIT */
/*
 * Handshakes through an in-test relay that rewrites one handshake message on its way,
 * for the failures that no honest peer produces: each must be reported with the class
 * that names its cause. The relay sits between two socketpairs and parses records and
 * handshake messages (never fixed offsets); it only reads plaintext, i.e. TLS 1.2 up
 * to the client's ChangeCipherSpec.
 */
#include "common.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>

TK_SUITE(tamper);

#define REC_CCS 20
#define REC_HANDSHAKE 22
#define HS_CERTIFICATE_VERIFY 15

/* Rewrites one handshake message (body, len: without its 4-byte header) in place;
 * returns 1 when it changed it. */
typedef int (*tamper_fn)(void *arg, unsigned type, unsigned char *body, size_t len);

struct relay {
    int client, server;  /* the relay's ends of the two socketpairs */
    tamper_fn tamper;
    void *arg;
    int tampered;        /* out: the client's flight was rewritten */
    unsigned char buf[1 << 16];
    size_t used;         /* client bytes not yet forwarded (an incomplete record) */
    int plaintext;       /* the client has not sent ChangeCipherSpec yet */
};

static void send_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the peer gave up: the handshakes report why */
        p += n;
        len -= (size_t)n;
    }
}

/* The handshake messages of one plaintext record; a message split across records is
 * left alone (OpenSSL does not split the small ones these tests rewrite). */
static void tamper_record(struct relay *r, unsigned char *frag, size_t len)
{
    size_t off = 0;
    while (len - off >= 4) {
        size_t mlen = (size_t)frag[off + 1] << 16 | (size_t)frag[off + 2] << 8 | frag[off + 3];
        if (mlen > len - off - 4)
            return;
        if (r->tamper(r->arg, frag[off], frag + off + 4, mlen))
            r->tampered = 1;
        off += 4 + mlen;
    }
}

/* Forward every complete record of the client's bytes, rewriting on the way. */
static void forward_client(struct relay *r)
{
    size_t off = 0;
    while (r->used - off >= 5) {
        unsigned char *rec = r->buf + off;
        size_t len = (size_t)rec[3] << 8 | rec[4];
        if (r->used - off - 5 < len)
            break;
        if (r->plaintext && rec[0] == REC_HANDSHAKE)
            tamper_record(r, rec + 5, len);
        if (rec[0] == REC_CCS)
            r->plaintext = 0;
        send_all(r->server, rec, 5 + len);
        off += 5 + len;
    }
    memmove(r->buf, r->buf + off, r->used - off);
    r->used -= off;
}

/* Until either side hangs up; then both learn it, so no handshake waits forever. */
static void *relay_thread(void *p)
{
    struct relay *r = p;
    unsigned char tmp[16384];
    for (;;) {
        struct pollfd fds[2] = {{.fd = r->client, .events = POLLIN},
                                {.fd = r->server, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0)
            break;
        if (fds[0].revents) {
            ssize_t n = recv(r->client, r->buf + r->used, sizeof(r->buf) - r->used, 0);
            if (n <= 0)
                break;
            r->used += (size_t)n;
            forward_client(r);
        }
        if (fds[1].revents) {
            ssize_t n = recv(r->server, tmp, sizeof tmp, 0);
            if (n <= 0)
                break;
            send_all(r->client, tmp, (size_t)n);
        }
    }
    shutdown(r->client, SHUT_RDWR);
    shutdown(r->server, SHUT_RDWR);
    return NULL;
}

/* Handshake srv and cli through a relay running `tamper`; returns whether it tampered. */
static int handshake_through(struct tk_side *srv, struct tk_side *cli, tamper_fn tamper,
                             void *arg)
{
    int a[2], b[2];
    tk_socketpair(a);
    tk_socketpair(b);
    struct relay *r = calloc(1, sizeof(*r));
    cr_assert_not_null(r);
    *r = (struct relay){.client = a[1], .server = b[1], .tamper = tamper, .arg = arg,
                        .plaintext = 1};
    cli->fd = a[0];
    srv->fd = b[0];
    pthread_t t = tk_thread_start(relay_thread, r);
    tk_handshake_fds(srv, cli);
    shutdown(a[0], SHUT_RDWR); /* ends the relay whatever the outcome */
    tk_thread_join(t);
    int tampered = r->tampered;
    close(a[1]);
    close(b[1]);
    free(r);
    return tampered;
}

/* ---- CertificateVerify --------------------------------------------------------------- */

struct forge_cv {
    EVP_PKEY *key;     /* the client's RSA key */
    unsigned sigalg;   /* out: the scheme the client chose */
    int sign_failed;   /* out (the relay thread must not assert) */
};

/* Replace the RSA-PSS signature with a raw RSA signature of an encoded message whose
 * first octet is valid and whose last is not PSS's 0xbc: the server's RSA library then
 * fails with "last octet invalid" (RSA_R_LAST_OCTET_INVALID, 134, the number SSL's
 * "certificate verify failed" has too), every time. A flipped byte would fail on a
 * random check instead. */
static int forge_certificate_verify(void *arg, unsigned type, unsigned char *body, size_t len)
{
    struct forge_cv *f = arg;
    if (type != HS_CERTIFICATE_VERIFY || len < 4)
        return 0;
    f->sigalg = (unsigned)body[0] << 8 | body[1];
    size_t siglen = (size_t)body[2] << 8 | body[3];
    if (siglen != len - 4 || siglen != (size_t)EVP_PKEY_get_size(f->key))
        return 0;
    unsigned char em[1024];
    if (siglen > sizeof em)
        return 0;
    tk_fill_pattern(em, siglen, 134);
    em[0] = 0x00;          /* below the modulus, and PSS's top-bits check passes */
    em[siglen - 1] = 0x00; /* not 0xbc */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(f->key, NULL);
    size_t outlen = siglen;
    f->sign_failed = !(ctx && EVP_PKEY_sign_init(ctx) == 1 &&
                       EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) == 1 &&
                       EVP_PKEY_sign(ctx, body + 4, &outlen, em, siglen) == 1 &&
                       outlen == siglen);
    EVP_PKEY_CTX_free(ctx);
    return !f->sign_failed;
}

static EVP_PKEY *load_key(const char *name)
{
    FILE *fp = fopen(tk_cert(name), "r");
    cr_assert_not_null(fp, "%s", tk_cert(name));
    EVP_PKEY *k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    cr_assert_not_null(k, "%s: not a private key", name);
    return k;
}

/* A TLS 1.2 mTLS handshake with the client's RSA key, the one both tests run.
 * TLS 1.2: the CertificateVerify travels in plaintext. RSA-PSS: what a TLS 1.3 capable
 * client picks for an RSA key anyway, made certain here. */
struct rsa_mtls {
    tlskit_config *s, *c;
    struct tk_side srv, cli;
};

static void rsa_mtls_begin(struct rsa_mtls *m)
{
    m->s = tk_server_config("server");
    cr_assert_eq(tlskit_config_add_ca_file(m->s, tk_cert("ca.crt")), 0);
    cr_assert_eq(tlskit_config_set_verify_client(m->s, TLSKIT_VERIFY_CLIENT_REQUIRED), 0);
    m->c = tk_client_config("ca.crt");
    tk_config_keypair(m->c, "client-rsa");
    cr_assert_eq(tlskit_config_set_protocols(m->c, TLSKIT_TLS1_2, TLSKIT_TLS1_2), 0);
    cr_assert_eq(SSL_CTX_set1_client_sigalgs_list(tlskit_config_ssl_ctx(m->c),
                                                  "rsa_pss_rsae_sha256"), 1);
    m->srv = (struct tk_side){.cfg = m->s};
    m->cli = (struct tk_side){.cfg = m->c, .servername = "localhost"};
}

static void rsa_mtls_end(struct rsa_mtls *m)
{
    tk_side_free(&m->srv);
    tk_side_free(&m->cli);
    tlskit_config_free(m->s);
    tlskit_config_free(m->c);
}

/* A bad signature in the client's CertificateVerify is the client's protocol failure,
 * not a certificate that failed verification: the server's chain check passed, and
 * OpenSSL's verify result is still "ok". */
TK_TEST(tamper, bad_rsa_pss_certificate_verify_is_protocol_error)
{
    struct rsa_mtls m;
    rsa_mtls_begin(&m);
    struct forge_cv f = {.key = load_key("client-rsa.key")};
    int tampered = handshake_through(&m.srv, &m.cli, forge_certificate_verify, &f);
    EVP_PKEY_free(f.key);
    cr_expect_not(f.sign_failed, "the raw RSA signature failed");
    cr_expect(tampered, "the relay saw no RSA CertificateVerify to rewrite");
    cr_expect_eq(f.sigalg, 0x0804, "client signed with 0x%04x, not rsa_pss_rsae_sha256",
                 f.sigalg);
    cr_expect_eq(m.srv.rc, -1, "the server accepted a forged CertificateVerify");
    cr_expect_eq(m.srv.code, TLSKIT_E_PROTOCOL, "%s: %s", tlskit_error_name(m.srv.code),
                 m.srv.err);
    cr_expect(!tk_contains(m.srv.err, "certificate verify failed: ok"), "%s", m.srv.err);
    cr_expect(tk_contains(m.srv.err, "handshake with"), "%s", m.srv.err);
    cr_expect_eq(m.cli.rc, -1, "the client finished a handshake the server refused");
    rsa_mtls_end(&m);
}

/* The relay itself changes nothing when it has nothing to rewrite. */
static int tamper_nothing(void *arg, unsigned type, unsigned char *body, size_t len)
{
    (void)arg, (void)type, (void)body, (void)len;
    return 0;
}

TK_TEST(tamper, relay_alone_is_transparent)
{
    struct rsa_mtls m;
    rsa_mtls_begin(&m);
    cr_expect_not(handshake_through(&m.srv, &m.cli, tamper_nothing, NULL));
    cr_expect_eq(m.srv.rc, 0, "%s", m.srv.err);
    cr_expect_eq(m.cli.rc, 0, "%s", m.cli.err);
    rsa_mtls_end(&m);
}
