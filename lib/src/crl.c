/* SPDX-License-Identifier: MIT */
/* Certificate revocation lists: PEM CRLs added to the config's trust store, checked for
 * the peer's own certificate (a client's, or a server's) in every verification. */
#include "internal.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

/* Parse every PEM CRL in buf into the store. 0, or -1 with the error naming label. */
static int add_crls(tlskit_config *cfg, const char *label, const void *buf, size_t len)
{
    if (len > INT32_MAX) {
        tlskit__err_set(&cfg->err, TLSKIT_E_FILE, "%s: too large", label);
        return -1;
    }
    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    if (!bio) {
        tlskit__err_set(&cfg->err, TLSKIT_E_NOMEM, "%s: out of memory", label);
        return -1;
    }
    X509_STORE *store = SSL_CTX_get_cert_store(cfg->ctx);
    int count = 0, rc = 0;
    for (;;) {
        ERR_clear_error();
        X509_CRL *crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
        if (!crl) {
            unsigned long e = ERR_peek_last_error();
            int no_more = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
            if (no_more && count > 0) {
                ERR_clear_error();
            } else if (no_more) {
                ERR_clear_error();
                tlskit__err_set(&cfg->err, TLSKIT_E_FILE, "%s: no PEM CRL found (BEGIN X509 CRL)",
                                label);
                rc = -1;
            } else {
                tlskit__err_set_ssl(&cfg->err, TLSKIT_E_FILE, "malformed CRL",
                                    "%s: cannot parse CRL", label);
                rc = -1;
            }
            break;
        }
        int added = X509_STORE_add_crl(store, crl);
        X509_CRL_free(crl);
        if (added != 1) {
            tlskit__err_set_ssl(&cfg->err, TLSKIT_E_CONFIG, NULL, "%s: cannot add CRL", label);
            rc = -1;
            break;
        }
        count++;
    }
    BIO_free(bio);
    if (rc == 0) {
        /* The peer's own certificate is checked (as nginx's ssl_crl does for the leaf):
         * its issuer must have a CRL here, or verification fails ("unable to get
         * certificate CRL"), so a CRL that is missing is never mistaken for "not
         * revoked". Intermediates are not checked: that would need a CRL for each. */
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    return rc;
}

int tlskit_config_add_crl_file(tlskit_config *cfg, const char *crl_file)
{
    return tlskit__config_add_file(cfg, crl_file, "CRL file name", add_crls);
}

int tlskit_config_add_crl_mem(tlskit_config *cfg, const void *crl, size_t len)
{
    return tlskit__config_add_mem(cfg, crl, len, "CRL data", "CRL (memory)", add_crls);
}
