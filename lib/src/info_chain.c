/* SPDX-License-Identifier: MIT */
/* The peer's chain, certificate by certificate (tlskit_conn_peer_chain_*): what a
 * "look at this server" report shows for each one, and where it stands in the chain that
 * verification built. Details are made on first use and kept per certificate, so a
 * handshake that nobody inspects pays nothing.
 * The chain stays readable after a failed client handshake: OpenSSL keeps the server's
 * Certificate message in the session (peer_chain) before it verifies it, and only the
 * leaf (SSL_get0_peer_certificate) waits for verification to pass. */
#include "conn.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tlskit__chain_cert {
    int filled;
    char *subject, *issuer, *sans;
    time_t notbefore, notafter;
    char key_type[32];
    int key_bits;
    char key_group[48];
    char fingerprint[7 + 32 * 3];
    char spki[TK_SPKI_TEXT];
    int flags;
};

/* A client's view of the peer's chain from OpenSSL holds the server's leaf; a server's
 * view of the client's chain does not (info.c's chain_needs_leaf says the same). Before a
 * handshake was tried there is no chain: a session set for resumption may carry the chain
 * of an earlier connection. */
static const STACK_OF(X509) *sent_chain(const tlskit_conn *c, const X509 **leaf)
{
    *leaf = NULL;
    if (!c->ssl || !c->times.hs_start || (c->is_server && !c->hs_done))
        return NULL;
    const STACK_OF(X509) *sk = SSL_get_peer_cert_chain(c->ssl);
    if (c->is_server || !sk || sk_X509_num(sk) == 0)
        *leaf = SSL_get0_peer_certificate(c->ssl);
    return sk;
}

int tlskit__peer_chain_num(const tlskit_conn *c)
{
    const X509 *leaf;
    const STACK_OF(X509) *sk = sent_chain(c, &leaf);
    return (leaf ? 1 : 0) + (sk ? sk_X509_num(sk) : 0);
}

X509 *tlskit__peer_chain_at(const tlskit_conn *c, int i)
{
    const X509 *leaf;
    const STACK_OF(X509) *sk = sent_chain(c, &leaf);
    if (i < 0)
        return NULL;
    if (leaf) {
        if (i == 0)
            return (X509 *)(uintptr_t)leaf;
        i--;
    }
    return sk && i < sk_X509_num(sk) ? sk_X509_value(sk, i) : NULL;
}

static void certs_free(struct tlskit__peer_info *info)
{
    for (int i = 0; i < info->nchain; i++) {
        free(info->chain[i].subject);
        free(info->chain[i].issuer);
        free(info->chain[i].sans);
    }
    free(info->chain);
    info->chain = NULL;
    info->nchain = 0;
}

void tlskit__chain_free(struct tlskit__peer_info *info)
{
    certs_free(info);
    free(info->anchor);
    info->anchor = NULL;
}

static void key_details(const X509 *x, struct tlskit__chain_cert *d)
{
    EVP_PKEY *pk = X509_get0_pubkey(x);
    d->key_bits = -1;
    if (!pk)
        return;
    int id = EVP_PKEY_get_base_id(pk);
    const char *type = id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS ? "RSA"
                       : id == EVP_PKEY_EC                          ? "EC"
                       : id == EVP_PKEY_ED25519                     ? "Ed25519"
                       : id == EVP_PKEY_ED448                       ? "Ed448"
                       : id == EVP_PKEY_DSA                         ? "DSA"
                                                                    : OBJ_nid2sn(id);
    snprintf(d->key_type, sizeof(d->key_type), "%s", type ? type : "unknown");
    int bits = EVP_PKEY_get_bits(pk);
    d->key_bits = bits > 0 ? bits : -1;
    char group[sizeof(d->key_group)];
    size_t glen = 0;
    if (id == EVP_PKEY_EC &&
        EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) == 1 && glen > 0) {
        int nid = OBJ_sn2nid(group);
        const char *nist = nid != NID_undef ? EC_curve_nid2nist(nid) : NULL;
        snprintf(d->key_group, sizeof(d->key_group), "%s", nist ? nist : group);
    }
}

/* Where x stands in the chain verification built (leaf first, the trust anchor last);
 * none of it unless the peer verified in this handshake. */
static int path_flags(const tlskit_conn *c, const X509 *x)
{
    if (!c->hs_done || !c->verify_text || strcmp(c->verify_text, "ok") != 0 ||
        TK_NOTE(c, verify_why)[0])
        return 0;
    STACK_OF(X509) *vk = SSL_get0_verified_chain(c->ssl);
    int n = vk ? sk_X509_num(vk) : 0;
    for (int j = 0; j < n; j++) {
        if (X509_cmp(sk_X509_value(vk, j), x) != 0)
            continue;
        return TLSKIT_CHAIN_PATH | (j == n - 2 ? TLSKIT_CHAIN_ANCHORED : 0) |
               (j == n - 1 ? TLSKIT_CHAIN_ANCHOR : 0);
    }
    return 0;
}

static void fill(const tlskit_conn *c, const X509 *x, struct tlskit__chain_cert *d)
{
    d->subject = tlskit__name_text(X509_get_subject_name(x));
    d->issuer = tlskit__name_text(X509_get_issuer_name(x));
    d->sans = tlskit__sans_text(x);
    d->notbefore = tlskit__asn1_time(X509_get0_notBefore(x));
    d->notafter = tlskit__asn1_time(X509_get0_notAfter(x));
    key_details(x, d);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (X509_digest(x, EVP_sha256(), md, &mdlen) == 1 && mdlen == 32) {
        char *p = d->fingerprint;
        p += sprintf(p, "SHA256:");
        for (unsigned int i = 0; i < mdlen; i++)
            p += sprintf(p, i ? ":%02X" : "%02X", md[i]);
    }
    if (tlskit__spki_sha256(x, md) == 0)
        tlskit__spki_text(md, d->spki);
    d->flags = path_flags(c, x);
    d->filled = 1;
    ERR_clear_error();
}

/* The details of certificate i, made on first use: a cache behind const getters, as
 * tlskit_conn_peer_chain_pem() keeps one. NULL when i is out of range or memory ran out. */
static const struct tlskit__chain_cert *cert_at(const tlskit_conn *cc, int i)
{
    tlskit_conn *c = (tlskit_conn *)(uintptr_t)cc;
    const X509 *x = tlskit__peer_chain_at(c, i);
    if (!x)
        return NULL;
    int n = tlskit__peer_chain_num(c);
    if (c->info.nchain != n) { /* first use, or the chain arrived since */
        certs_free(&c->info);
        if (!(c->info.chain = calloc((size_t)n, sizeof(*c->info.chain))))
            return NULL;
        c->info.nchain = n;
    }
    struct tlskit__chain_cert *d = &c->info.chain[i];
    if (!d->filled)
        fill(c, x, d);
    return d;
}

const char *tlskit_conn_peer_chain_subject(const tlskit_conn *c, int i)
{
    const struct tlskit__chain_cert *d = cert_at(c, i);
    return d ? d->subject : NULL;
}

const char *tlskit_conn_peer_chain_issuer(const tlskit_conn *c, int i)
{
    const struct tlskit__chain_cert *d = cert_at(c, i);
    return d ? d->issuer : NULL;
}

const char *tlskit_conn_peer_chain_sans(const tlskit_conn *c, int i)
{
    const struct tlskit__chain_cert *d = cert_at(c, i);
    return d ? d->sans : NULL;
}

time_t tlskit_conn_peer_chain_notbefore(const tlskit_conn *c, int i)
{
    const struct tlskit__chain_cert *d = cert_at(c, i);
    return d ? d->notbefore : 0;
}

time_t tlskit_conn_peer_chain_notafter(const tlskit_conn *c, int i)
{
    const struct tlskit__chain_cert *d = cert_at(c, i);
    return d ? d->notafter : 0;
}

const char *tlskit_conn_peer_chain_key_type(const tlskit_conn *c, int i)
{
    const struct tlskit__chain_cert *d = cert_at(c, i);
    return d && d->key_type[0] ? d->key_type : NULL;
}

int tlskit_conn_peer_chain_key_bits(const tlskit_conn *c, int i)
{
    const struct tlskit__chain_cert *d = cert_at(c, i);
    return d ? d->key_bits : -1;
}

const char *tlskit_conn_peer_chain_key_group(const tlskit_conn *c, int i)
{
    const struct tlskit__chain_cert *d = cert_at(c, i);
    return d && d->key_group[0] ? d->key_group : NULL;
}

/* OpenSSL's long names are static strings: nothing to keep. */
const char *tlskit_conn_peer_chain_sigalg(const tlskit_conn *c, int i)
{
    const X509 *x = tlskit__peer_chain_at(c, i);
    int nid = x ? X509_get_signature_nid(x) : NID_undef;
    return nid != NID_undef ? OBJ_nid2ln(nid) : NULL;
}

const char *tlskit_conn_peer_chain_fingerprint(const tlskit_conn *c, int i)
{
    const struct tlskit__chain_cert *d = cert_at(c, i);
    return d && d->fingerprint[0] ? d->fingerprint : NULL;
}

const char *tlskit_conn_peer_chain_spki_sha256(const tlskit_conn *c, int i)
{
    const struct tlskit__chain_cert *d = cert_at(c, i);
    return d && d->spki[0] ? d->spki : NULL;
}

int tlskit_conn_peer_chain_flags(const tlskit_conn *c, int i)
{
    const struct tlskit__chain_cert *d = cert_at(c, i);
    return d ? d->flags : 0;
}

const char *tlskit_conn_trust_anchor(const tlskit_conn *cc)
{
    tlskit_conn *c = (tlskit_conn *)(uintptr_t)cc;
    if (c->info.anchor || !c->hs_done || !c->verify_text || strcmp(c->verify_text, "ok") != 0 ||
        TK_NOTE(c, verify_why)[0])
        return c->info.anchor;
    STACK_OF(X509) *vk = SSL_get0_verified_chain(c->ssl);
    int n = vk ? sk_X509_num(vk) : 0;
    if (n > 0)
        c->info.anchor = tlskit__name_text(X509_get_subject_name(sk_X509_value(vk, n - 1)));
    return c->info.anchor;
}
