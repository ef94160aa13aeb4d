/* SPDX-License-Identifier: MIT */
/* OCSP stapling. Server role: a DER OCSP response per keypair, checked when it is loaded
 * (it answers for the leaf, says `good`, is current) and sent by the status callback
 * for the certificate actually served, unless its nextUpdate has passed since.
 * Client role: ask for a staple, check the one that comes (signature, certificate,
 * time) and refuse the handshake when it says revoked or, if required, when it is not a
 * checked `good`. One status callback serves both roles (the SSL_CTX is shared). */
#include "conn.h"

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds since the epoch of an ASN1 time, or 0 when it cannot be read. */
static time_t asn1_time_t(const ASN1_GENERALIZEDTIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return timegm(&tm);
}

/* Whether the CertID answers for leaf: its serial and the hash of the leaf's issuer name
 * (the issuer's key is not known here, so its hash is not compared). */
static int certid_matches(const OCSP_CERTID *cid, X509 *leaf)
{
    ASN1_OCTET_STRING *name_hash = NULL;
    ASN1_OBJECT *md_oid = NULL;
    ASN1_INTEGER *serial = NULL;
    OCSP_CERTID *id = OCSP_CERTID_dup(cid); /* OCSP_id_get0_info() takes no const */
    int ok = id && OCSP_id_get0_info(&name_hash, &md_oid, NULL, &serial, id) == 1 &&
             ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(leaf)) == 0;
    const EVP_MD *md = ok ? EVP_get_digestbyobj(md_oid) : NULL;
    unsigned char hash[EVP_MAX_MD_SIZE];
    unsigned int hlen = 0;
    ok = md && X509_NAME_digest(X509_get_issuer_name(leaf), md, hash, &hlen) == 1 &&
         name_hash->length == (int)hlen && memcmp(name_hash->data, hash, hlen) == 0;
    OCSP_CERTID_free(id);
    ERR_clear_error();
    return ok;
}

/* Check a parsed response against the leaf. 0 (next: its nextUpdate, 0 for none), or -1
 * with TLSKIT_E_CONFIG and why it will not be stapled. */
static int staple_check(tlskit_config *cfg, const char *label, OCSP_RESPONSE *resp, X509 *leaf,
                        time_t *next)
{
    int status = OCSP_response_status(resp);
    if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        tlskit__err_set(&cfg->err, TLSKIT_E_CONFIG, "%s: not stapled: the OCSP response says "
                        "%s", label, OCSP_response_status_str(status));
        return -1;
    }
    OCSP_BASICRESP *basic = OCSP_response_get1_basic(resp);
    if (!basic) {
        if (tlskit__ssl_oom())
            tlskit__err_set(&cfg->err, TLSKIT_E_NOMEM, "%s: out of memory", label);
        else
            tlskit__err_set(&cfg->err, TLSKIT_E_CONFIG, "%s: not stapled: not a basic OCSP "
                            "response", label);
        return -1;
    }
    int rc = -1;
    OCSP_SINGLERESP *single = NULL;
    for (int i = 0; i < OCSP_resp_count(basic); i++) {
        OCSP_SINGLERESP *s = OCSP_resp_get0(basic, i);
        if (certid_matches(OCSP_SINGLERESP_get0_id(s), leaf)) {
            single = s;
            break;
        }
    }
    if (!single) {
        tlskit__err_set(&cfg->err, TLSKIT_E_CONFIG, "%s: not stapled: the OCSP response is "
                        "for another certificate (serial or issuer differ)", label);
        goto done;
    }
    int reason = 0;
    ASN1_GENERALIZEDTIME *this_upd = NULL, *next_upd = NULL;
    int cs = OCSP_single_get0_status(single, &reason, NULL, &this_upd, &next_upd);
    if (cs != V_OCSP_CERTSTATUS_GOOD) {
        tlskit__err_set(&cfg->err, TLSKIT_E_CONFIG, "%s: not stapled: the certificate's "
                        "status is %s", label, OCSP_cert_status_str(cs));
        goto done;
    }
    if (OCSP_check_validity(this_upd, next_upd, 300, -1) != 1) {
        ERR_clear_error();
        tlskit__err_set(&cfg->err, TLSKIT_E_CONFIG, "%s: not stapled: the OCSP response is "
                        "not current (past its nextUpdate, or thisUpdate in the future)",
                        label);
        goto done;
    }
    *next = asn1_time_t(next_upd);
    rc = 0;
done:
    OCSP_BASICRESP_free(basic);
    return rc;
}

/* Server role: staple the response of the certificate served. */
static int server_status(SSL *ssl, const tlskit_config *cfg)
{
    int i = tlskit__sni_index(cfg, SSL_get_certificate(ssl));
    if (i < 0)
        return SSL_TLSEXT_ERR_NOACK;
    const struct tlskit__keypair *kp = &cfg->keypairs[i];
    if (!kp->ocsp || (kp->ocsp_next != 0 && time(NULL) >= kp->ocsp_next))
        return SSL_TLSEXT_ERR_NOACK;
    unsigned char *copy = OPENSSL_malloc(kp->ocsp_len);
    if (!copy)
        return SSL_TLSEXT_ERR_NOACK;
    memcpy(copy, kp->ocsp, kp->ocsp_len);
    if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)kp->ocsp_len) != 1) {
        OPENSSL_free(copy);
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* ---- client role ---- */

/* t as "2026-12-04T20:15:32Z" in buf ("?" when it cannot be read). */
static const char *iso_time(const ASN1_GENERALIZEDTIME *t, char *buf, size_t n)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "?");
    return buf;
}

/* The certificate in chain that issued leaf, or NULL. */
static X509 *find_issuer(STACK_OF(X509) *chain, X509 *leaf)
{
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        if (X509_check_issued(x, leaf) == X509_V_OK) /* itself, when self-signed */
            return x;
    }
    return NULL;
}

/* The single response for leaf: its CertID, remade with the hash the responder used
 * (SHA-1 or another), equals the response's. */
static OCSP_SINGLERESP *find_single(OCSP_BASICRESP *basic, X509 *leaf, X509 *issuer)
{
    for (int i = 0; i < OCSP_resp_count(basic); i++) {
        OCSP_SINGLERESP *s = OCSP_resp_get0(basic, i);
        OCSP_CERTID *cid = OCSP_CERTID_dup(OCSP_SINGLERESP_get0_id(s));
        ASN1_OBJECT *md_oid = NULL;
        const EVP_MD *md = cid && OCSP_id_get0_info(NULL, &md_oid, NULL, NULL, cid) == 1
                               ? EVP_get_digestbyobj(md_oid) : NULL;
        OCSP_CERTID *mine = md ? OCSP_cert_to_id(md, leaf, issuer) : NULL;
        int same = mine && OCSP_id_cmp(mine, cid) == 0;
        OCSP_CERTID_free(mine);
        OCSP_CERTID_free(cid);
        if (same)
            return s;
    }
    return NULL;
}

/* What the stapled response (der, len; none when len <= 0) says of the peer's leaf:
 * a TLSKIT_OCSP_STATUS_* and, in text, why. */
static int staple_status(SSL *ssl, const unsigned char *der, long len, char *text, size_t n)
{
    if (!der || len <= 0) {
        snprintf(text, n, "the server stapled no OCSP response");
        return TLSKIT_OCSP_STATUS_NONE;
    }
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, len);
    OCSP_BASICRESP *basic = NULL;
    int st = TLSKIT_OCSP_STATUS_INVALID;
    if (!resp || p != der + len) {
        snprintf(text, n, !resp && tlskit__ssl_oom() ? "cannot be checked: out of memory"
                                                     : "malformed (not one DER OCSP response)");
        goto done;
    }
    int rs = OCSP_response_status(resp);
    if (rs != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        snprintf(text, n, "the responder answered %s", OCSP_response_status_str(rs));
        goto done;
    }
    if (!(basic = OCSP_response_get1_basic(resp))) {
        snprintf(text, n, tlskit__ssl_oom() ? "cannot be checked: out of memory"
                                            : "not a basic OCSP response");
        goto done;
    }
    /* The verified chain ends at the trust anchor, so the leaf's issuer is in it; without
     * verification (insecure) only the chain the server sent is there to look in. */
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
    X509 *issuer = leaf ? find_issuer(chain, leaf) : NULL;
    if (leaf && !issuer)
        issuer = find_issuer(chain = SSL_get_peer_cert_chain(ssl), leaf);
    if (!issuer) {
        snprintf(text, n, "cannot be checked: the issuer of the server's certificate is "
                 "not known");
        goto done;
    }
    X509_STORE *store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
    if (OCSP_basic_verify(basic, chain, store, 0) <= 0) {
        char why[200] = "";
        tlskit__ssl_errors(why, sizeof why);
        snprintf(text, n, "bad signature or signer: %s", why[0] ? why : "verify failed");
        goto done;
    }
    OCSP_SINGLERESP *single = find_single(basic, leaf, issuer);
    if (!single) {
        snprintf(text, n, "the response is for another certificate (serial or issuer "
                 "differ)");
        goto done;
    }
    int reason = -1;
    ASN1_GENERALIZEDTIME *rev = NULL, *this_upd = NULL, *next_upd = NULL;
    int cs = OCSP_single_get0_status(single, &reason, &rev, &this_upd, &next_upd);
    char t1[32], t2[32];
    if (OCSP_check_validity(this_upd, next_upd, 300, -1) != 1) {
        if (next_upd && X509_cmp_current_time(next_upd) < 0)
            snprintf(text, n, "expired: its next update was %s", iso_time(next_upd, t1, sizeof t1));
        else
            snprintf(text, n, "not yet valid: its this update is %s",
                     iso_time(this_upd, t1, sizeof t1));
        goto done;
    }
    if (cs == V_OCSP_CERTSTATUS_GOOD) {
        st = TLSKIT_OCSP_STATUS_GOOD;
        snprintf(text, n, "good (this update %s, next update %s)",
                 iso_time(this_upd, t1, sizeof t1),
                 next_upd ? iso_time(next_upd, t2, sizeof t2) : "none");
    } else if (cs == V_OCSP_CERTSTATUS_REVOKED) {
        st = TLSKIT_OCSP_STATUS_REVOKED;
        snprintf(text, n, "the certificate is revoked (%s) since %s",
                 reason >= 0 ? OCSP_crl_reason_str(reason) : "no reason given",
                 iso_time(rev, t1, sizeof t1));
    } else {
        st = TLSKIT_OCSP_STATUS_UNKNOWN;
        snprintf(text, n, "the responder does not know the certificate (status unknown)");
    }
done:
    ERR_clear_error();
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(resp);
    return st;
}

/* Client role: 1 to go on, 0 to refuse the handshake (OpenSSL then sends
 * bad_certificate_status_response; conn_fail.c reports verify_why). */
static int client_status(SSL *ssl, tlskit_conn *c)
{
    const unsigned char *der = NULL;
    long len = SSL_get_tlsext_status_ocsp_resp(ssl, &der);
    struct tlskit__conn_notes *n = tlskit__conn_notes(c);
    char lost[sizeof(n->ocsp_text)]; /* out of memory: decided, not kept */
    char *text = n ? n->ocsp_text : lost;
    c->ocsp_status = staple_status(ssl, der, len, text, sizeof lost);
    c->ocsp_checked = 1;
    if (c->ocsp_status == TLSKIT_OCSP_STATUS_REVOKED ||
        (c->cfg->ocsp_mode == TLSKIT_OCSP_REQUIRE && c->ocsp_status != TLSKIT_OCSP_STATUS_GOOD)) {
        if (n)
            snprintf(n->verify_why, sizeof n->verify_why, "OCSP staple%s: %s",
                     c->ocsp_status == TLSKIT_OCSP_STATUS_REVOKED ? "" : " required", text);
        return 0;
    }
    return 1;
}

/* SSL_CTX_set_tlsext_status_cb(): both roles (the SSL_CTX serves both). */
static int status_cb(SSL *ssl, void *arg)
{
    if (SSL_is_server(ssl))
        return server_status(ssl, arg);
    tlskit_conn *c = SSL_get_app_data(ssl);
    return c ? client_status(ssl, c) : 0;
}

int tlskit_config_set_ocsp_request(tlskit_config *cfg, int mode)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    if (mode != TLSKIT_OCSP_OFF && mode != TLSKIT_OCSP_REQUEST && mode != TLSKIT_OCSP_REQUIRE) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID, "OCSP request mode %d: use "
                        "TLSKIT_OCSP_OFF, _REQUEST or _REQUIRE", mode);
        return -1;
    }
    cfg->ocsp_mode = mode;
    SSL_CTX_set_tlsext_status_cb(cfg->ctx, status_cb);
    SSL_CTX_set_tlsext_status_arg(cfg->ctx, cfg);
    return 0;
}

int tlskit__ocsp_client_setup(tlskit_conn *c)
{
    c->ocsp_status = TLSKIT_OCSP_STATUS_NONE;
    c->ocsp_checked = 0;
    if (c->notes)
        c->notes->ocsp_text[0] = 0;
    if (c->cfg->ocsp_mode == TLSKIT_OCSP_OFF)
        return 0;
    if (SSL_set_tlsext_status_type(c->ssl, TLSEXT_STATUSTYPE_ocsp) != 1) {
        tlskit__err_set_ssl(&c->err, TLSKIT_E_NOMEM, "out of memory", "client setup");
        return -1;
    }
    return 0;
}

int tlskit_conn_ocsp_status(const tlskit_conn *c)
{
    return c && c->ocsp_checked ? c->ocsp_status : TLSKIT_OCSP_STATUS_NONE;
}

const char *tlskit_conn_ocsp_text(const tlskit_conn *c)
{
    if (!c || c->is_server || c->cfg->ocsp_mode == TLSKIT_OCSP_OFF)
        return "not requested";
    if (c->ocsp_checked)
        return c->notes ? c->notes->ocsp_text : "out of memory";
    if (c->ssl && c->hs_done && SSL_session_reused(c->ssl))
        return "not checked (resumed session)";
    return "not checked (the handshake ended before the server's certificate status)";
}

static int set_staple(tlskit_config *cfg, const char *label, const void *buf, size_t len)
{
    if (len == 0 || len > INT32_MAX) {
        tlskit__err_set(&cfg->err, TLSKIT_E_FILE, "%s: not a DER OCSP response (%s)", label,
                        len == 0 ? "empty" : "too large");
        return -1;
    }
    const unsigned char *p = buf;
    ERR_clear_error();
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    if (!resp || p != (const unsigned char *)buf + len) {
        OCSP_RESPONSE_free(resp);
        tlskit__err_set_ssl(&cfg->err, TLSKIT_E_FILE, resp ? "trailing data" : "malformed",
                            "%s: not a DER OCSP response", label);
        return -1;
    }
    if (cfg->nkeypairs == 0) {
        OCSP_RESPONSE_free(resp);
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID, "%s: no keypair to staple it to (add "
                        "a keypair first)", label);
        return -1;
    }
    struct tlskit__keypair *kp = &cfg->keypairs[cfg->nkeypairs - 1];
    free(kp->ocsp);
    kp->ocsp = NULL;
    kp->ocsp_len = 0;
    kp->ocsp_next = 0;
    time_t next = 0;
    int rc = staple_check(cfg, label, resp, kp->leaf, &next);
    OCSP_RESPONSE_free(resp);
    if (rc != 0)
        return -1;
    if (!(kp->ocsp = malloc(len))) {
        tlskit__err_set(&cfg->err, TLSKIT_E_NOMEM, "%s: out of memory", label);
        return -1;
    }
    memcpy(kp->ocsp, buf, len);
    kp->ocsp_len = len;
    kp->ocsp_next = next;
    SSL_CTX_set_tlsext_status_cb(cfg->ctx, status_cb);
    SSL_CTX_set_tlsext_status_arg(cfg->ctx, cfg);
    return 0;
}

int tlskit_config_set_ocsp_staple_file(tlskit_config *cfg, const char *path)
{
    return tlskit__config_add_file(cfg, path, "OCSP response file name", set_staple);
}

int tlskit_config_set_ocsp_staple_mem(tlskit_config *cfg, const void *der, size_t len)
{
    return tlskit__config_add_mem(cfg, der, len, "OCSP response data", "OCSP response (memory)",
                                  set_staple);
}
