/* SPDX-License-Identifier: MIT */
/* Connection and peer-certificate details. Peer details are collected once, when the
 * handshake completes, so the getters are cheap and take a const connection. */
#include "conn.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *tlskit__name_text(const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (!b)
        return NULL;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        char *data;
        long n = BIO_get_mem_data(b, &data);
        if (n >= 0 && (out = malloc((size_t)n + 1))) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(b);
    return out;
}

static void append(char *buf, size_t len, size_t *used, const char *prefix, const char *s)
{
    if (*used >= len - 1)
        return;
    int n = snprintf(buf + *used, len - *used, "%s%s%s", *used ? ", " : "", prefix, s);
    if (n > 0)
        *used = *used + (size_t)n < len ? *used + (size_t)n : len - 1;
}

/* A name from a certificate as printable text: bytes outside 0x21..0x7e, and the ',' and
 * '\\' that would make one name read as two, become \xNN. So "evil\0.localhost" cannot
 * show as "evil". */
void tlskit__escape_name(const unsigned char *in, int len, char *out, size_t outlen)
{
    size_t o = 0;
    for (int i = 0; i < len && o + 5 < outlen; i++) {
        unsigned char ch = in[i];
        if (ch > 0x20 && ch < 0x7f && ch != ',' && ch != '\\')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02X", ch);
    }
    out[o] = '\0';
}

char *tlskit__sans_text(const X509 *x)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    char buf[2048] = "";
    size_t used = 0;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        char tmp[INET6_ADDRSTRLEN + 1];
        if (g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI) {
            const ASN1_IA5STRING *s = g->d.ia5;
            char val[256];
            tlskit__escape_name(s->data, s->length, val, sizeof(val));
            append(buf, sizeof(buf), &used,
                   g->type == GEN_DNS ? "DNS:" : g->type == GEN_EMAIL ? "email:" : "URI:", val);
        } else if (g->type == GEN_IPADD) {
            const ASN1_OCTET_STRING *ip = g->d.ip;
            if (ip->length == 4 && inet_ntop(AF_INET, ip->data, tmp, sizeof(tmp)))
                append(buf, sizeof(buf), &used, "IP:", tmp);
            else if (ip->length == 16 && inet_ntop(AF_INET6, ip->data, tmp, sizeof(tmp)))
                append(buf, sizeof(buf), &used, "IP:", tmp);
        }
    }
    GENERAL_NAMES_free(names);
    return strdup(buf);
}

time_t tlskit__asn1_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return timegm(&tm);
}

void tlskit__info_free(tlskit_conn *c)
{
    free(c->info.subject);
    free(c->info.issuer);
    free(c->info.sans);
    free(c->info.chain_pem);
    free(c->info.alpn);
    tlskit__chain_free(&c->info);
    memset(&c->info, 0, sizeof(c->info));
}

void tlskit__info_verify_text(tlskit_conn *c)
{
    const char *text;
    const X509 *peer = SSL_get0_peer_certificate(c->ssl);
    long vr = SSL_get_verify_result(c->ssl);
    if (!c->is_server && !c->cfg->verify_cert)
        text = peer ? "not verified (insecure)" : "no certificate";
    else if (c->is_server && c->cfg->verify_client == TLSKIT_VERIFY_CLIENT_NONE)
        text = "not requested";
    else if (!peer && vr == X509_V_OK)
        text = "no certificate";
    else if (vr == X509_V_OK)
        text = "ok";
    else
        text = X509_verify_cert_error_string(vr);
    c->verify_text = text;
}

/* The chain as the peer sent it, leaf first, in PEM. Made on first use, not at every
 * handshake: a busy client or server rarely asks, and the PEM is a kilobyte or more. */
static void collect_chain(tlskit_conn *c)
{
    int n = tlskit__peer_chain_num(c);
    BIO *b = n > 0 ? BIO_new(BIO_s_mem()) : NULL;
    if (!b)
        return;
    int ok = 1;
    for (int i = 0; ok && i < n; i++)
        ok = PEM_write_bio_X509(b, tlskit__peer_chain_at(c, i)) == 1;
    char *data;
    long len = BIO_get_mem_data(b, &data);
    if (ok && len > 0 && (c->info.chain_pem = malloc((size_t)len + 1))) {
        memcpy(c->info.chain_pem, data, (size_t)len);
        c->info.chain_pem[len] = '\0';
    }
    BIO_free(b);
    ERR_clear_error();
}

void tlskit__info_collect(tlskit_conn *c)
{
    tlskit__info_free(c);
    tlskit__info_verify_text(c);
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    if (alpn && alpn_len > 0)
        c->info.alpn = strndup((const char *)alpn, alpn_len); /* NULL: out of memory */
    X509 *x = SSL_get0_peer_certificate(c->ssl);
    if (!x)
        return;
    c->info.subject = tlskit__name_text(X509_get_subject_name(x));
    c->info.issuer = tlskit__name_text(X509_get_issuer_name(x));
    c->info.sans = tlskit__sans_text(x);
    c->info.notbefore = tlskit__asn1_time(X509_get0_notBefore(x));
    c->info.notafter = tlskit__asn1_time(X509_get0_notAfter(x));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (X509_digest(x, EVP_sha256(), md, &mdlen) == 1 && mdlen == 32) {
        char *p = c->info.fingerprint;
        p += sprintf(p, "SHA256:");
        for (unsigned int i = 0; i < mdlen; i++)
            p += sprintf(p, i ? ":%02X" : "%02X", md[i]);
    }
    ERR_clear_error();
}

const char *tlskit_conn_peer_addr(const tlskit_conn *c)
{
    return c->peer;
}

int tlskit_conn_handshake_done(const tlskit_conn *c)
{
    return c->hs_done;
}

int tlskit_conn_proxy_local(const tlskit_conn *c)
{
    return c && c->proxy_local;
}

int tlskit_conn_health_check(const tlskit_conn *c)
{
    if (!c || !c->proxy_local || c->hs_done)
        return 0;
    return c->err.code == TLSKIT_E_CLOSED || c->err.code == TLSKIT_E_IO;
}

int64_t tlskit_conn_age_ms(const tlskit_conn *c)
{
    return c->created_ms ? tlskit__now_ms() - c->created_ms : 0;
}

/* What the ServerHello settled is known once the server's Certificate arrived, also when
 * the handshake then failed (a server that fails verification: which version, cipher and
 * group it chose). */
static int hello_known(const tlskit_conn *c)
{
    return c->ssl && (c->hs_done || (!c->is_server && tlskit__peer_chain_num(c) > 0));
}

const char *tlskit_conn_protocol(const tlskit_conn *c)
{
    return hello_known(c) ? SSL_get_version(c->ssl) : NULL;
}

const char *tlskit_conn_cipher(const tlskit_conn *c)
{
    const SSL_CIPHER *cipher = hello_known(c) ? SSL_get_current_cipher(c->ssl) : NULL;
    return cipher ? SSL_CIPHER_get_name(cipher) : NULL;
}

const char *tlskit_conn_group(const tlskit_conn *c)
{
    if (!hello_known(c))
        return NULL;
    int nid = SSL_get_negotiated_group(c->ssl);
    if (nid <= 0)
        return NULL;
    const char *name = SSL_group_to_name(c->ssl, nid);
    return name ? name : OBJ_nid2sn(nid);
}

/* OpenSSL answers both roles: the name a client sent (none for an IP address, which is
 * verified but never sent as SNI), or the name a server received. */
const char *tlskit_conn_servername(const tlskit_conn *c)
{
    return c->ssl ? SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

int tlskit_conn_session_reused(const tlskit_conn *c)
{
    return c->hs_done && c->ssl && SSL_session_reused(c->ssl);
}

uint64_t tlskit_conn_bytes_in(const tlskit_conn *c)
{
    return c->bytes_in;
}

uint64_t tlskit_conn_bytes_out(const tlskit_conn *c)
{
    return c->bytes_out;
}

int tlskit_conn_peer_cert_provided(const tlskit_conn *c)
{
    return c->ssl && SSL_get0_peer_certificate(c->ssl) != NULL;
}

const char *tlskit_conn_peer_cert_subject(const tlskit_conn *c)
{
    return c->info.subject;
}

const char *tlskit_conn_peer_cert_issuer(const tlskit_conn *c)
{
    return c->info.issuer;
}

const char *tlskit_conn_peer_cert_sans(const tlskit_conn *c)
{
    return c->info.sans;
}

const char *tlskit_conn_peer_cert_fingerprint(const tlskit_conn *c)
{
    return c->info.fingerprint[0] ? c->info.fingerprint : NULL;
}

time_t tlskit_conn_peer_cert_notbefore(const tlskit_conn *c)
{
    return c->info.notbefore;
}

time_t tlskit_conn_peer_cert_notafter(const tlskit_conn *c)
{
    return c->info.notafter;
}

const char *tlskit_conn_verify_result(const tlskit_conn *c)
{
    if (TK_NOTE(c, verify_why)[0]) /* verify.c refused what OpenSSL accepted */
        return TK_NOTE(c, verify_why);
    return c->verify_text;
}

/* Made on first use, like the chain's PEM: few callers ask (pins check the key in
 * verify.c on their own), so no handshake pays for it. */
const char *tlskit_conn_peer_cert_spki_sha256(const tlskit_conn *c)
{
    const X509 *x = c->hs_done && c->ssl ? SSL_get0_peer_certificate(c->ssl) : NULL;
    unsigned char md[32];
    if (!c->info.spki[0] && x && tlskit__spki_sha256(x, md) == 0)
        tlskit__spki_text(md, ((tlskit_conn *)(uintptr_t)c)->info.spki);
    ERR_clear_error();
    return c->info.spki[0] ? c->info.spki : NULL;
}

int tlskit_conn_peer_chain_count(const tlskit_conn *c)
{
    return tlskit__peer_chain_num(c);
}

const char *tlskit_conn_peer_chain_pem(const tlskit_conn *c)
{
    if (!c->info.chain_pem && c->ssl) {
        /* A cache filled on first use: the getter stays const for its callers. */
        collect_chain((tlskit_conn *)(uintptr_t)c);
    }
    return c->info.chain_pem;
}

const char *tlskit_conn_alpn_selected(const tlskit_conn *c)
{
    return c->info.alpn;
}

int tlskit_conn_local_cert_index(const tlskit_conn *c)
{
    if (!c->hs_done || !c->ssl || !c->is_server || SSL_session_reused(c->ssl))
        return -1;
    return tlskit__sni_index(c->cfg, SSL_get_certificate(c->ssl));
}

const char *tlskit_conn_local_cert_subject(const tlskit_conn *c)
{
    int i = tlskit_conn_local_cert_index(c);
    return i < 0 ? NULL : c->cfg->keypairs[i].subject;
}
