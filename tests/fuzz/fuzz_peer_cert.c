/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: what tlskit reads out of a peer's certificate after a handshake
 * (lib/src/info.c: subject, issuer, subject alternative names, validity, fingerprint,
 * verification text), and a certificate as a trust anchor (tlskit_config_add_ca_mem).
 *
 * The input is [flags] then a DER certificate. The target gives it the fuzz key and
 * signs it again (so every other field stays as fuzzed and the handshake can complete),
 * serves it from a tlskit server and lets a tlskit client connect over a socketpair.
 * Flags: bit 0 verify (the certificate as the only CA, "localhost" checked; else
 * insecure); bit 1 check 127.0.0.1 instead of localhost; bit 2 TLS 1.2.
 * Invariants: a completed handshake gives details that match the certificate (the
 * fingerprint is its SHA-256; the SAN text is well formed and bounded); a verified one
 * reports "ok"; failures have a handshake class; no leaks.
 */
#include "fuzz_common.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static EVP_PKEY *fuzz_key;
static tlskit_config *server_cfg[2], *insecure_cfg[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_deterministic_rand();
    const char *cert, *key;
    size_t cert_len, key_len;
    fz_keypair(&cert, &cert_len, &key, &key_len);
    BIO *b = BIO_new_mem_buf(key, (int)key_len);
    fuzz_key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    FZ_CHECK(fuzz_key != NULL, "cannot read the fuzz key");
    for (int v = 0; v < 2; v++) {
        server_cfg[v] = fz_server_config(v ? FZ_TLS12 : 0);
        insecure_cfg[v] = fz_client_config(FZ_CLI_INSECURE | (v ? FZ_TLS12 : 0));
    }
    return 0;
}

static char *to_pem(X509 *x, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    if (b && PEM_write_bio_X509(b, x)) {
        long n = BIO_get_mem_data(b, &data);
        if (n > 0 && (out = malloc((size_t)n))) {
            memcpy(out, data, (size_t)n);
            *len = (size_t)n;
        }
    }
    BIO_free(b);
    return out;
}

/* "DNS:a, IP:1.2.3.4, ...": one entry per DNS, email, URI and IPv4/IPv6 name of the
 * certificate, each with its prefix, bounded by info.c's 2 KiB buffer (the last entry may
 * be cut there). A name holding a NUL or ", " would make the text lie about the
 * certificate ("DNS:evil.example" for "evil.example\0.localhost", two names for one):
 * such names must not appear unescaped. */
static void check_sans(const char *sans, X509 *x)
{
    size_t len = strlen(sans);
    FZ_CHECK(len < 2048, "SAN text of %zu bytes", len);
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int expected = 0, ambiguous = 0;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI) {
            const ASN1_IA5STRING *v = g->d.ia5;
            expected++;
            if (memchr(v->data, '\0', (size_t)v->length) ||
                memmem(v->data, (size_t)v->length, ", ", 2))
                ambiguous = 1;
        } else if (g->type == GEN_IPADD && (g->d.ip->length == 4 || g->d.ip->length == 16)) {
            expected++;
        }
    }
    GENERAL_NAMES_free(names);
    ERR_clear_error();
    /* Names holding a NUL or ", " must be shown escaped (\xNN), so that the entry count
     * below still matches: one certificate name, one entry. */
    for (const char *p = sans; *p; p++)
        FZ_CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f,
                 "raw control byte 0x%02x in SAN text", (unsigned char)*p);
    (void)ambiguous;
    int entries = 0, truncated = len == 2047;
    for (const char *p = sans; *p;) {
        const char *next = strstr(p, ", ");
        entries++;
        if (next || !truncated)
            FZ_CHECK(!strncmp(p, "DNS:", 4) || !strncmp(p, "email:", 6) ||
                         !strncmp(p, "URI:", 4) || !strncmp(p, "IP:", 3),
                     "SAN entry \"%.40s\"", p);
        if (!next)
            break;
        p = next + 2;
    }
    FZ_CHECK(truncated ? entries <= expected : entries == expected,
             "%d SAN entries shown for %d names: \"%.200s\"", entries, expected, sans);
}

static void check_details(tlskit_conn *c, X509 *x, unsigned flags)
{
    FZ_CHECK(tlskit_conn_peer_cert_provided(c), "no peer certificate after the handshake");
    unsigned char *der = NULL;
    int der_len = i2d_X509(x, &der);
    unsigned char md[32];
    unsigned int md_len = 0;
    FZ_CHECK(der_len > 0 && EVP_Digest(der, (size_t)der_len, md, &md_len, EVP_sha256(), NULL) &&
                 md_len == 32, "digest");
    OPENSSL_free(der);
    char want[7 + 32 * 3];
    char *p = want + sprintf(want, "SHA256:");
    for (unsigned i = 0; i < md_len; i++)
        p += sprintf(p, i ? ":%02X" : "%02X", md[i]);
    const char *fp = tlskit_conn_peer_cert_fingerprint(c);
    FZ_CHECK(fp && strcmp(fp, want) == 0, "fingerprint %s, want %s", fp ? fp : "(null)", want);
    FZ_CHECK(tlskit_conn_peer_cert_subject(c) != NULL, "no subject");
    FZ_CHECK(tlskit_conn_peer_cert_issuer(c) != NULL, "no issuer");
    const char *sans = tlskit_conn_peer_cert_sans(c);
    FZ_CHECK(sans != NULL, "no SAN text");
    check_sans(sans, x);
    (void)tlskit_conn_peer_cert_notbefore(c);
    (void)tlskit_conn_peer_cert_notafter(c);
    const char *verify = tlskit_conn_verify_result(c);
    FZ_CHECK(verify != NULL, "no verify result");
    if (flags & 1)
        FZ_CHECK(strcmp(verify, "ok") == 0, "verified connection, verify result \"%s\"", verify);
    else
        FZ_CHECK(strcmp(verify, "not verified (insecure)") == 0, "insecure connection, verify "
                 "result \"%s\"", verify);
}

/* Both ends non-blocking on one socketpair, stepped in turn. */
static int handshake_pair(tlskit_conn *cli, tlskit_conn *srv)
{
    int cs = 0, ss = 0;
    for (int i = 0; i < 50 && (cs == 0 || ss == 0); i++) {
        if (cs == 0) {
            int r = tlskit_conn_handshake(cli);
            cs = r == 0 ? 1 : r == -1 ? -1 : 0;
        }
        if (ss == 0) {
            int r = tlskit_conn_handshake(srv);
            ss = r == 0 ? 1 : r == -1 ? -1 : 0;
        }
        if (cs == -1 || ss == -1)
            break;
    }
    fz_check_err_queue("tlskit_conn_handshake");
    return cs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_input in = {data, size};
    unsigned flags = fz_take_u8(&in);
    int tls12 = (flags & 4) != 0;
    const unsigned char *der = in.p;
    X509 *x = d2i_X509(NULL, &der, (long)(in.n > LONG_MAX ? LONG_MAX : in.n));
    if (!x || !X509_set_pubkey(x, fuzz_key) || !X509_sign(x, fuzz_key, EVP_sha256())) {
        X509_free(x);
        ERR_clear_error();
        return 0;
    }
    fz_fd_mark();
    tlskit_config *ccfg = insecure_cfg[tls12];
    size_t pem_len = 0;
    char *pem = NULL;
    if (flags & 1) {
        pem = to_pem(x, &pem_len);
        FZ_CHECK(pem != NULL, "PEM");
        ccfg = tlskit_config_new();
        FZ_CHECK(ccfg != NULL, "out of memory");
        int rc = tlskit_config_add_ca_mem(ccfg, pem, pem_len);
        fz_check_err_queue("tlskit_config_add_ca_mem");
        if (rc != 0) { /* refused as a CA: a FILE or CONFIG error, then nothing to do */
            int code = tlskit_config_error_code(ccfg);
            FZ_CHECK(code == TLSKIT_E_FILE || code == TLSKIT_E_CONFIG, "CA refused with %s: %s",
                     tlskit_error_name(code), tlskit_config_error(ccfg));
            goto out;
        }
        if (tls12)
            tlskit_config_set_protocols(ccfg, TLSKIT_TLS1_2, TLSKIT_TLS1_2);
    }
    SSL_CTX *sctx = tlskit_config_ssl_ctx(server_cfg[tls12]);
    SSL_CTX_flush_sessions(sctx, LONG_MAX);
    if (SSL_CTX_use_certificate(sctx, x) != 1) {
        ERR_clear_error();
        goto out;
    }
    int sv[2];
    FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0,
             "socketpair");
    tlskit_conn *cli = tlskit_conn_new(ccfg), *srv = tlskit_conn_new(server_cfg[tls12]);
    FZ_CHECK(cli && srv, "out of memory");
    const char *name = !(flags & 1) ? NULL : (flags & 2) ? "127.0.0.1" : "localhost";
    FZ_CHECK(tlskit_conn_wrap_client(cli, sv[0], name) == 0, "wrap: %s",
             tlskit_conn_error(cli));
    FZ_CHECK(tlskit_conn_wrap_server(srv, sv[1]) == 0, "wrap: %s", tlskit_conn_error(srv));
    if (handshake_pair(cli, srv) == 1) {
        check_details(cli, x, flags);
        if (getenv("TLSKIT_FUZZ_DEBUG"))
            fprintf(stderr, "fuzz: subject \"%s\" sans \"%s\" verify \"%s\" times %lld %lld\n",
                    tlskit_conn_peer_cert_subject(cli), tlskit_conn_peer_cert_sans(cli),
                    tlskit_conn_verify_result(cli),
                    (long long)tlskit_conn_peer_cert_notbefore(cli),
                    (long long)tlskit_conn_peer_cert_notafter(cli));
    } else {
        int code = tlskit_conn_error_code(cli);
        if (getenv("TLSKIT_FUZZ_DEBUG"))
            fprintf(stderr, "fuzz: handshake failed: %s\n", tlskit_conn_error(cli));
        FZ_CHECK(code == TLSKIT_E_VERIFY || code == TLSKIT_E_PROTOCOL ||
                     code == TLSKIT_E_CLOSED || code == TLSKIT_E_IO || code == TLSKIT_E_NONE,
                 "handshake failed with %s: %s", tlskit_error_name(code),
                 tlskit_conn_error(cli));
        FZ_CHECK(tlskit_conn_verify_result(cli) != NULL || code == TLSKIT_E_NONE,
                 "no verify result");
    }
    tlskit_conn_free(cli);
    tlskit_conn_free(srv);
    close(sv[0]);
    close(sv[1]);
    fz_fd_check("peer certificate handshake");
out:
    if (flags & 1)
        tlskit_config_free(ccfg);
    free(pem);
    X509_free(x);
    return 0;
}
