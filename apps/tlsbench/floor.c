/* SPDX-License-Identifier: MIT */
/*
 * tlsbench-floor: what any OpenSSL-based server pays at least, measured without sockets.
 *
 * A client and a server SSL in one thread, joined by a BIO pair. Only the server side's
 * calls are timed, with the thread's CPU clock: SSL_new and its BIOs, the handshake
 * (including the session tickets it sends), reading the client's close_notify, sending
 * its own, SSL_free. The client's work is not counted. Then, on one connection, 16 KiB
 * records encrypted by the server (SSL_write; the client drains the ciphertext without
 * decrypting it) and decrypted by it (SSL_read of the client's records).
 *
 * This is a reference for bench.sh, not a tlskit program: it calls OpenSSL directly, with
 * its defaults (TLS 1.3, X25519, TLS_AES_256_GCM_SHA384 for a default client), as the
 * servers under test do.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define PAIR_BUF (256 * 1024)
#define BATCH 8 /* records per timed batch: keeps the clock's own cost small */

static const char *prog = "tlsbench-floor";

struct acc {
    int64_t ns;     /* server CPU */
    long segments;  /* timed segments (each pays about one clock read) */
};

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The cost of one clock read, to take out of every timed segment. */
static int64_t clock_cost(void)
{
    int64_t best = INT64_MAX;
    for (int round = 0; round < 5; round++) {
        int64_t t0 = cpu_ns();
        for (int i = 0; i < 1000; i++)
            (void)cpu_ns();
        int64_t per = (cpu_ns() - t0) / 1001;
        if (per < best)
            best = per;
    }
    return best;
}

#define TIMED(acc, stmt)                          \
    do {                                          \
        int64_t t0_ = cpu_ns();                   \
        stmt;                                     \
        (acc)->ns += cpu_ns() - t0_;              \
        (acc)->segments++;                        \
    } while (0)

static void die_ssl(const char *what)
{
    fprintf(stderr, "%s: %s: ", prog, what);
    ERR_print_errors_fp(stderr);
    fprintf(stderr, "\n");
    exit(1);
}

static SSL_CTX *server_ctx(const char *cert, const char *key, long tickets, const char *suites)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        die_ssl("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (tickets >= 0 && SSL_CTX_set_num_tickets(ctx, (size_t)tickets) != 1)
        die_ssl("--tickets");
    if (suites) { /* the server's order, as tlskit's configs do */
        if (SSL_CTX_set_ciphersuites(ctx, suites) != 1)
            die_ssl("--suites");
        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        die_ssl(cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        die_ssl(key);
    return ctx;
}

static SSL_CTX *client_ctx(int tls12)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        die_ssl("SSL_CTX_new");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (tls12)
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    return ctx;
}

struct pair {
    SSL *s, *c;
};

/* Server-side work lives in these functions, never inlined, so that an instruction
 * profile can count the server alone: valgrind --tool=callgrind
 * --toggle-collect='server_*' tlsbench-floor ... */
#define SERVER_FN __attribute__((noinline))

static SERVER_FN SSL *server_new(SSL_CTX *sctx, BIO **client_bio)
{
    BIO *sb = NULL;
    SSL *s = SSL_new(sctx);
    if (s && BIO_new_bio_pair(&sb, PAIR_BUF, client_bio, PAIR_BUF) == 1) {
        SSL_set_bio(s, sb, sb);
        SSL_set_accept_state(s);
    }
    return s;
}

static SERVER_FN int server_handshake_step(SSL *s)
{
    return SSL_do_handshake(s);
}

/* Read the client's close_notify, answer it, free the connection. */
static SERVER_FN void server_close(SSL *s)
{
    char buf[64];
    size_t n;
    (void)SSL_read_ex(s, buf, sizeof(buf), &n);
    (void)SSL_shutdown(s);
    SSL_free(s);
}

static SERVER_FN uint64_t server_write_batch(SSL *s, const unsigned char *buf, size_t record,
                                             uint64_t left)
{
    uint64_t done = 0;
    for (int i = 0; i < BATCH && done < left; i++) {
        size_t n;
        if (SSL_write_ex(s, buf, record, &n) != 1)
            return 0;
        done += n;
    }
    return done;
}

static SERVER_FN uint64_t server_read_batch(SSL *s, unsigned char *buf, size_t record)
{
    uint64_t done = 0;
    for (int i = 0; i < BATCH; i++) {
        size_t got = 0, n;
        while (got < record) {
            if (SSL_read_ex(s, buf, record - got, &n) != 1)
                return 0;
            got += n;
        }
        done += got;
    }
    return done;
}

static void pair_new(struct pair *p, SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *sess,
                     struct acc *acc)
{
    BIO *cb = NULL;
    TIMED(acc, p->s = server_new(sctx, &cb));
    if (!p->s || !cb)
        die_ssl("SSL_new");
    p->c = SSL_new(cctx);
    if (!p->c)
        die_ssl("SSL_new");
    SSL_set_bio(p->c, cb, cb);
    SSL_set_connect_state(p->c);
    if (sess)
        SSL_set_session(p->c, sess);
}

static int want(SSL *ssl, int r)
{
    int e = SSL_get_error(ssl, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

static void handshake(struct pair *p, struct acc *acc)
{
    int cdone = 0, sdone = 0;
    for (int rounds = 0; !(cdone && sdone); rounds++) {
        if (rounds > 50) {
            fprintf(stderr, "%s: handshake does not finish\n", prog);
            exit(1);
        }
        if (!cdone) {
            int r = SSL_do_handshake(p->c);
            if (r == 1)
                cdone = 1;
            else if (!want(p->c, r))
                die_ssl("client handshake");
        }
        if (!sdone) {
            int r;
            TIMED(acc, r = server_handshake_step(p->s));
            if (r == 1)
                sdone = 1;
            else if (!want(p->s, r))
                die_ssl("server handshake");
        }
    }
}

/* The client takes in whatever the server sent (TLS 1.3 tickets). */
static void client_read_pending(SSL *c)
{
    char buf[256];
    size_t n;
    while (SSL_read_ex(c, buf, sizeof(buf), &n) == 1) {
    }
    ERR_clear_error();
}

static void close_pair(struct pair *p, struct acc *acc)
{
    SSL_shutdown(p->c); /* close_notify to the server */
    TIMED(acc, server_close(p->s));
    SSL_free(p->c);
    ERR_clear_error();
}

/* n handshakes; returns server CPU seconds net of the clock's cost. */
static double run_handshakes(SSL_CTX *sctx, SSL_CTX *cctx, long n, int resume, int64_t cc,
                             long *resumed, char *desc, size_t desclen)
{
    struct acc acc = {0, 0};
    SSL_SESSION *sess = NULL;
    *resumed = 0;
    /* One untimed connection first: warms caches and gives the first session. */
    for (long i = -1; i < n; i++) {
        struct acc tmp = {0, 0};
        struct acc *a = i < 0 ? &tmp : &acc;
        struct pair p;
        pair_new(&p, sctx, cctx, resume ? sess : NULL, a);
        handshake(&p, a);
        client_read_pending(p.c);
        if (i >= 0 && SSL_session_reused(p.c))
            (*resumed)++;
        if (i < 0 && desc) {
            const char *g = SSL_group_to_name(p.c, SSL_get_negotiated_group(p.c));
            snprintf(desc, desclen, "%s %s %s", SSL_get_version(p.c),
                     SSL_CIPHER_get_name(SSL_get_current_cipher(p.c)), g ? g : "-");
        }
        if (resume) {
            SSL_SESSION *s = SSL_get1_session(p.c);
            if (s && SSL_SESSION_is_resumable(s)) {
                SSL_SESSION_free(sess);
                sess = s;
            } else {
                SSL_SESSION_free(s);
            }
        }
        close_pair(&p, a);
    }
    SSL_SESSION_free(sess);
    return (double)(acc.ns - acc.segments * cc) / 1e9;
}

/* Move every byte queued toward the client out of the pair, undecrypted. */
static void drain_raw(SSL *c)
{
    BIO *b = SSL_get_rbio(c);
    static unsigned char sink[PAIR_BUF];
    while (BIO_read(b, sink, sizeof(sink)) > 0) {
    }
}

/* Server encrypts `bytes` in `record`-sized writes. Returns server CPU seconds. */
static double run_encrypt(struct pair *p, uint64_t bytes, size_t record, int64_t cc)
{
    struct acc acc = {0, 0};
    unsigned char *buf = calloc(1, record);
    uint64_t done = 0;
    while (done < bytes) {
        uint64_t n;
        TIMED(&acc, n = server_write_batch(p->s, buf, record, bytes - done));
        if (n == 0)
            die_ssl("server write");
        done += n;
        drain_raw(p->c);
    }
    free(buf);
    return (double)(acc.ns - acc.segments * cc) / 1e9;
}

/* Client encrypts (not timed), server decrypts `bytes`. Returns server CPU seconds. */
static double run_decrypt(struct pair *p, uint64_t bytes, size_t record, int64_t cc)
{
    struct acc acc = {0, 0};
    unsigned char *buf = calloc(1, record);
    uint64_t done = 0;
    while (done < bytes) {
        for (int i = 0; i < BATCH; i++) {
            size_t n;
            if (SSL_write_ex(p->c, buf, record, &n) != 1)
                die_ssl("client write");
        }
        uint64_t n;
        TIMED(&acc, n = server_read_batch(p->s, buf, record));
        if (n == 0)
            die_ssl("server read");
        done += n;
    }
    free(buf);
    return (double)(acc.ns - acc.segments * cc) / 1e9;
}

static void usage(void)
{
    printf("Usage: %s [options]\n"
           "The raw-OpenSSL floor: server-side CPU of in-memory handshakes (BIO pair, no\n"
           "sockets) and of 16 KiB record encryption, on one thread.\n\n"
           "  --cert FILE      server certificate chain (default certs/server.crt)\n"
           "  --key FILE       server key (default certs/server.key)\n"
           "  -n, --count N    handshakes of each kind (default 2000)\n"
           "  --bytes N        bytes to encrypt and to decrypt, in MiB (default 1024)\n"
           "  --record BYTES   record size (default 16384)\n"
           "  --tls12          TLS 1.2 instead of 1.3\n"
           "  --tickets N      TLS 1.3 tickets per full handshake (default: OpenSSL's 2)\n"
           "  --suites LIST    TLS 1.3 suites, in the server's order of preference\n"
           "                   (default: OpenSSL's, the client's order)\n"
           "  --only KIND      only 'full', 'resumed' or 'bulk' (e.g. for an instruction\n"
           "                   profile of the server side: valgrind --tool=callgrind\n"
           "                   --toggle-collect='server_*' %s --only full)\n"
           "  --json           JSON on stdout\n"
           "  -h, --help       this help\n", prog, prog);
}

int main(int argc, char **argv)
{
    const char *cert = "certs/server.crt", *key = "certs/server.key";
    long count = 2000;
    unsigned long long mib = 1024;
    size_t record = 16384;
    int json = 0, tls12 = 0;
    long tickets = -1;
    const char *only = "", *suites = NULL;
    static const struct option lo[] = {
        {"cert", required_argument, NULL, 'C'}, {"key", required_argument, NULL, 'K'},
        {"count", required_argument, NULL, 'n'}, {"bytes", required_argument, NULL, 'b'},
        {"record", required_argument, NULL, 'r'}, {"tls12", no_argument, NULL, '2'},
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
        {"only", required_argument, NULL, 'o'}, {"tickets", required_argument, NULL, 't'},
        {"suites", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "n:h", lo, NULL)) != -1) {
        switch (c) {
        case 'C': cert = optarg; break;
        case 'K': key = optarg; break;
        case 'n': count = strtol(optarg, NULL, 10); break;
        case 'b': mib = strtoull(optarg, NULL, 10); break;
        case 'r': record = (size_t)strtoul(optarg, NULL, 10); break;
        case '2': tls12 = 1; break;
        case 'j': json = 1; break;
        case 'o': only = optarg; break;
        case 't': tickets = strtol(optarg, NULL, 10); break;
        case 's': suites = optarg; break;
        case 'h': usage(); return 0;
        default: fprintf(stderr, "Try '%s --help'.\n", prog); return 2;
        }
    }
    int do_full = !*only || !strcmp(only, "full"), do_res = !*only || !strcmp(only, "resumed");
    int do_bulk = !*only || !strcmp(only, "bulk");
    if (optind != argc || count < 1 || mib < 1 || record < 1 || record > 16384 ||
        !(do_full || do_res || do_bulk) || tickets < -1 || tickets > 16) {
        fprintf(stderr, "%s: bad arguments (count >= 1, bytes >= 1 MiB, record 1..16384, "
                "tickets 0..16)\n", prog);
        return 2;
    }
    SSL_CTX *sctx = server_ctx(cert, key, tickets, suites), *cctx = client_ctx(tls12);
    int64_t cc = clock_cost();
    char desc[128] = "";
    long resumed_full = 0, resumed = count;
    double full = 0, res = 0, enc = 0, dec = 0;
    if (do_full)
        full = (double)count / run_handshakes(sctx, cctx, count, 0, cc, &resumed_full, desc,
                                              sizeof(desc));
    if (do_res)
        res = (double)count / run_handshakes(sctx, cctx, count, 1, cc, &resumed,
                                             desc[0] ? NULL : desc, sizeof(desc));
    uint64_t bytes = (uint64_t)mib << 20;
    if (do_bulk) {
        struct acc none = {0, 0};
        struct pair p;
        pair_new(&p, sctx, cctx, NULL, &none);
        handshake(&p, &none);
        client_read_pending(p.c);
        if (!desc[0])
            snprintf(desc, sizeof(desc), "%s %s", SSL_get_version(p.c),
                     SSL_CIPHER_get_name(SSL_get_current_cipher(p.c)));
        enc = (double)bytes / run_encrypt(&p, bytes, record, cc);
        dec = (double)bytes / run_decrypt(&p, bytes, record, cc);
        close_pair(&p, &none);
    }
    if (json) {
        printf("{\"tool\":\"tlsbench-floor\",\"tls\":\"%s\",\"handshakes\":%ld,"
               "\"full_handshakes_per_cpu_s\":%.1f,\"resumed_handshakes_per_cpu_s\":%.1f,"
               "\"resumed\":%ld,\"record_bytes\":%zu,\"bytes\":%llu,"
               "\"encrypt_bytes_per_cpu_s\":%.0f,\"decrypt_bytes_per_cpu_s\":%.0f,"
               "\"clock_cost_ns\":%lld,\"tickets\":%zu}\n",
               desc, count, full, res, resumed, record, (unsigned long long)bytes, enc, dec,
               (long long)cc, SSL_CTX_get_num_tickets(sctx));
    } else {
        printf("%s: raw OpenSSL %s, server side only, one thread (%s)\n", prog,
               OpenSSL_version(OPENSSL_VERSION), desc);
        printf("  full handshakes      %8.0f per server CPU-second (%ld)\n", full, count);
        printf("  resumed handshakes   %8.0f per server CPU-second (%ld of %ld resumed)\n", res,
               resumed, count);
        printf("  encrypt %5zu B recs  %8.1f MB per server CPU-second\n", record, enc / 1e6);
        printf("  decrypt %5zu B recs  %8.1f MB per server CPU-second\n", record, dec / 1e6);
    }
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return resumed == count ? 0 : 1;
}
