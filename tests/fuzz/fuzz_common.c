/* SPDX-License-Identifier: MIT */
/* Shared pieces of the fuzz targets; see fuzz_common.h. */
#include "fuzz_common.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "fuzz invariant failed at %s:%d: %s: %s\n", file, line, cond, msg);
    fflush(stderr);
    abort();
}

/* ---- a constant random stream (OpenSSL provider with one RAND algorithm) ---- */

static void *rand_newctx(void *provctx, void *parent, const OSSL_DISPATCH *parent_calls)
{
    (void)provctx;
    (void)parent;
    (void)parent_calls;
    int *state = OPENSSL_malloc(sizeof(*state));
    if (state)
        *state = EVP_RAND_STATE_UNINITIALISED;
    return state;
}

static void rand_freectx(void *ctx)
{
    OPENSSL_free(ctx);
}

static int rand_instantiate(void *ctx, unsigned int strength, int prediction_resistance,
                            const unsigned char *pstr, size_t pstr_len,
                            const OSSL_PARAM params[])
{
    (void)strength;
    (void)prediction_resistance;
    (void)pstr;
    (void)pstr_len;
    (void)params;
    *(int *)ctx = EVP_RAND_STATE_READY;
    return 1;
}

static int rand_uninstantiate(void *ctx)
{
    *(int *)ctx = EVP_RAND_STATE_UNINITIALISED;
    return 1;
}

/* Stateless: the same request always gets the same bytes, whatever was asked before, so
 * the two ends of a recorded handshake and a later replay of one end agree. */
static int rand_generate(void *ctx, unsigned char *out, size_t outlen, unsigned int strength,
                         int prediction_resistance, const unsigned char *adin, size_t adinlen)
{
    (void)ctx;
    (void)strength;
    (void)prediction_resistance;
    (void)adin;
    (void)adinlen;
    for (size_t i = 0; i < outlen; i++)
        out[i] = (unsigned char)(i + 1);
    return 1;
}

static int rand_enable_locking(void *ctx)
{
    (void)ctx;
    return 1;
}

static int rand_get_ctx_params(void *ctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STATE);
    if (p && !OSSL_PARAM_set_int(p, *(int *)ctx))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STRENGTH);
    if (p && !OSSL_PARAM_set_uint(p, 256))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_MAX_REQUEST);
    if (p && !OSSL_PARAM_set_size_t(p, INT_MAX))
        return 0;
    return 1;
}

static const OSSL_PARAM *rand_gettable_ctx_params(void *ctx, void *provctx)
{
    (void)ctx;
    (void)provctx;
    static const OSSL_PARAM known[] = {
        OSSL_PARAM_int(OSSL_RAND_PARAM_STATE, NULL),
        OSSL_PARAM_uint(OSSL_RAND_PARAM_STRENGTH, NULL),
        OSSL_PARAM_size_t(OSSL_RAND_PARAM_MAX_REQUEST, NULL),
        OSSL_PARAM_END,
    };
    return known;
}

/* OSSL_DISPATCH stores every function as void (*)(void): the casts are the API's. */
#define FZ_FN(f) ((void (*)(void))(f))

static const OSSL_DISPATCH rand_functions[] = {
    {OSSL_FUNC_RAND_NEWCTX, FZ_FN(rand_newctx)},
    {OSSL_FUNC_RAND_FREECTX, FZ_FN(rand_freectx)},
    {OSSL_FUNC_RAND_INSTANTIATE, FZ_FN(rand_instantiate)},
    {OSSL_FUNC_RAND_UNINSTANTIATE, FZ_FN(rand_uninstantiate)},
    {OSSL_FUNC_RAND_GENERATE, FZ_FN(rand_generate)},
    {OSSL_FUNC_RAND_ENABLE_LOCKING, FZ_FN(rand_enable_locking)},
    {OSSL_FUNC_RAND_GETTABLE_CTX_PARAMS, FZ_FN(rand_gettable_ctx_params)},
    {OSSL_FUNC_RAND_GET_CTX_PARAMS, FZ_FN(rand_get_ctx_params)},
    {0, NULL},
};

static const OSSL_ALGORITHM rand_algorithms[] = {
    {"tlskit-fuzz", "provider=tlskit-fuzz-rand", rand_functions, NULL},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM *rand_query(void *provctx, int operation_id, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    return operation_id == OSSL_OP_RAND ? rand_algorithms : NULL;
}

static const OSSL_DISPATCH rand_provider_functions[] = {
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, FZ_FN(rand_query)},
    {0, NULL},
};

static int rand_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                              const OSSL_DISPATCH **out, void **provctx)
{
    (void)handle;
    (void)in;
    *out = rand_provider_functions;
    *provctx = NULL;
    return 1;
}

static OSSL_PROVIDER *rand_provider;

void fz_deterministic_rand(void)
{
    if (rand_provider)
        return;
    if (!OSSL_PROVIDER_add_builtin(NULL, "tlskit-fuzz-rand", rand_provider_init) ||
        !RAND_set_DRBG_type(NULL, "tlskit-fuzz", NULL, NULL, NULL) ||
        !(rand_provider = OSSL_PROVIDER_try_load(NULL, "tlskit-fuzz-rand", 1))) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "fuzz: cannot install the deterministic random generator\n");
        abort();
    }
    unsigned char a[8], b[8];
    if (RAND_bytes(a, sizeof(a)) != 1 || RAND_priv_bytes(b, sizeof(b)) != 1 ||
        memcmp(a, b, sizeof(a)) != 0 || a[0] != 1) {
        fprintf(stderr, "fuzz: the deterministic random generator is not in use\n");
        abort();
    }
}

/* ---- the fuzz keypair ---- */

static char *pem_cert, *pem_key;
static size_t pem_cert_len, pem_key_len;

static char *bio_text(BIO *b, size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *out = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!out)
        abort();
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    *len = (size_t)n;
    return out;
}

static void add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!ext || !X509_add_ext(x, ext, -1))
        abort();
    X509_EXTENSION_free(ext);
}

static void make_keypair(void)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!pkey || !x)
        abort();
    X509_NAME *name = X509_get_subject_name(x);
    if (!X509_set_version(x, X509_VERSION_3) ||
        !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
        !ASN1_TIME_set_string_X509(X509_getm_notBefore(x), "20240101000000Z") ||
        !ASN1_TIME_set_string_X509(X509_getm_notAfter(x), "99991231235959Z") ||
        !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                    (const unsigned char *)"tlskit fuzz", -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)"localhost", -1, -1, 0) ||
        !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, pkey))
        abort();
    add_ext(x, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign");
    add_ext(x, NID_ext_key_usage, "serverAuth,clientAuth");
    add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    if (!X509_sign(x, pkey, EVP_sha256()))
        abort();
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    if (!cb || !kb || !PEM_write_bio_X509(cb, x) ||
        !PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL))
        abort();
    pem_cert = bio_text(cb, &pem_cert_len);
    pem_key = bio_text(kb, &pem_key_len);
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
}

void fz_keypair(const char **cert, size_t *cert_len, const char **key, size_t *key_len)
{
    if (!pem_cert)
        make_keypair();
    *cert = pem_cert;
    *cert_len = pem_cert_len;
    *key = pem_key;
    *key_len = pem_key_len;
}

/* ---- configurations of the handshake targets ---- */

static void must(tlskit_config *cfg, int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "fuzz: %s: %s\n", what, tlskit_config_error(cfg));
        abort();
    }
}

static void set_protocols(tlskit_config *cfg, unsigned flags)
{
    unsigned v = flags & (FZ_TLS12 | FZ_TLS13);
    if (v == FZ_TLS12)
        must(cfg, tlskit_config_set_protocols(cfg, TLSKIT_TLS1_2, TLSKIT_TLS1_2), "protocols");
    else if (v == FZ_TLS13)
        must(cfg, tlskit_config_set_protocols(cfg, TLSKIT_TLS1_3, TLSKIT_TLS1_3), "protocols");
}

/* Deadlines only matter for FZ_BLOCKING; they stop a target that would wait forever. */
static void set_deadlines(tlskit_config *cfg)
{
    must(cfg, tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_HANDSHAKE, 2000), "timeout");
    must(cfg, tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_READ, 2000), "timeout");
    must(cfg, tlskit_config_set_timeout(cfg, TLSKIT_TIMEOUT_WRITE, 2000), "timeout");
}

tlskit_config *fz_server_config(unsigned flags)
{
    const char *cert, *key;
    size_t cert_len, key_len;
    fz_keypair(&cert, &cert_len, &key, &key_len);
    tlskit_config *cfg = tlskit_config_new();
    if (!cfg)
        abort();
    must(cfg, tlskit_config_set_keypair_mem(cfg, cert, cert_len, key, key_len), "keypair");
    /* An explicit CA also keeps the system trust store (slow to load) out of the loop. */
    must(cfg, tlskit_config_add_ca_mem(cfg, cert, cert_len), "ca");
    int verify = (int)(flags & FZ_VERIFY_MASK);
    must(cfg, tlskit_config_set_verify_client(cfg, verify == 3 ? 0 : verify), "verify");
    set_protocols(cfg, flags);
    if (flags & FZ_SRV_P256)
        must(cfg, tlskit_config_set_groups(cfg, "P-256"), "groups");
    set_deadlines(cfg);
    return cfg;
}

tlskit_config *fz_client_config(unsigned flags)
{
    const char *cert, *key;
    size_t cert_len, key_len;
    fz_keypair(&cert, &cert_len, &key, &key_len);
    tlskit_config *cfg = tlskit_config_new();
    if (!cfg)
        abort();
    must(cfg, tlskit_config_add_ca_mem(cfg, cert, cert_len), "ca");
    if (flags & FZ_CLI_INSECURE) {
        tlskit_config_insecure_noverifycert(cfg);
        tlskit_config_insecure_noverifyname(cfg);
    }
    if (flags & FZ_CLI_CERT)
        must(cfg, tlskit_config_set_keypair_mem(cfg, cert, cert_len, key, key_len), "keypair");
    set_protocols(cfg, flags);
    set_deadlines(cfg);
    return cfg;
}

int fz_known_error(int code)
{
    return code > TLSKIT_E_NONE && strcmp(tlskit_error_name(code), "TLSKIT_E_UNKNOWN") != 0;
}

/* ---- resources ---- */

static int fd_baseline = -1;

static int lowest_free_fd(void)
{
    int fd = dup(0);
    if (fd >= 0)
        close(fd);
    return fd;
}

void fz_fd_mark(void)
{
    /* Per input: between inputs the sanitizers may start a symbolizer (pipes). */
    fd_baseline = lowest_free_fd();
}

void fz_fd_check(const char *where)
{
    int now = lowest_free_fd();
    FZ_CHECK(now == fd_baseline, "%s: descriptor leak (lowest free fd %d, was %d)", where,
             now, fd_baseline);
}

void fz_check_err_queue(const char *after)
{
    unsigned long e = ERR_peek_error();
    if (e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        FZ_CHECK(e == 0, "OpenSSL error queue not empty after %s: %s", after, buf);
    }
}

int fz_known(const char *id)
{
    const char *list = getenv("TLSKIT_FUZZ_KNOWN");
    size_t n = strlen(id);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, id, n) == 0)
            return 1;
        p += len + (end != NULL);
    }
    return 0;
}

uint8_t fz_take_u8(struct fz_input *in)
{
    if (in->n == 0)
        return 0;
    uint8_t v = in->p[0];
    in->p++;
    in->n--;
    return v;
}

uint16_t fz_take_u16(struct fz_input *in)
{
    uint16_t lo = fz_take_u8(in);
    return (uint16_t)(lo | (uint16_t)(fz_take_u8(in) << 8));
}

char *fz_text(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    FZ_CHECK(text != NULL, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    return text;
}

int fz_ref_pin(const char *s, size_t len)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (len != 8 + 44 || memcmp(s, "sha256//", 8) != 0)
        return 0;
    s += 8;
    for (size_t i = 0; i < 43; i++)
        if (s[i] == '\0' || !strchr(b64, s[i]))
            return 0;
    /* 43 characters carry 258 bits: the last one holds 4 bits of the hash and 2 zero
     * bits. */
    return ((size_t)(strchr(b64, s[42]) - b64) & 3) == 0 && s[43] == '=';
}

void fz_check_verdict(const tlskit_config *cfg, int rc, int want, const char *text,
                      const char *needle)
{
    int code = tlskit_config_error_code(cfg);
    if (rc == -1 && code == TLSKIT_E_NOMEM)
        return;
    FZ_CHECK(rc == (want ? 0 : -1), "'%s': library %d, reference %d (%s)", text, rc, want,
             tlskit_config_error(cfg));
    if (rc == 0) {
        FZ_CHECK(code == TLSKIT_E_NONE, "success with an error class %d", code);
        return;
    }
    FZ_CHECK(code == TLSKIT_E_INVALID, "refusal class %d", code);
    FZ_CHECK(strstr(tlskit_config_error(cfg), needle) != NULL, "message: %s",
             tlskit_config_error(cfg));
}
