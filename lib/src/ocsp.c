/* SPDX-License-Identifier: MIT */
/* OCSP stapling, server role: a DER OCSP response per keypair, checked when it is loaded
 * (it answers for the leaf, says `good`, is current) and sent by the status callback
 * for the certificate actually served, unless its nextUpdate has passed since. */
#include "internal.h"

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
        ERR_clear_error();
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

/* SSL_CTX_set_tlsext_status_cb(), server role: the staple of the certificate served. */
static int status_cb(SSL *ssl, void *arg)
{
    const tlskit_config *cfg = arg;
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
