/* SPDX-License-Identifier: MIT */
/*
 * Allocation-failure injection: for N = 1, 2, 3, ... make the Nth allocation of a
 * scenario fail, until a run completes without reaching N. Each run must end with every
 * API call either succeeding or returning -1 (NULL for a constructor) with a non-empty
 * message and a valid error class; nothing may crash or hang, and every allocation made
 * during the scenario must be freed by the end of it.
 *
 * Which allocations are counted, and why this way:
 *   - OpenSSL's: CRYPTO_set_mem_functions() routes every OPENSSL_malloc/realloc/free
 *     through our hooks (called before OpenSSL allocates anything).
 *   - The library's own: the test links the static library with -Wl,--wrap=malloc
 *     (calloc, realloc, strdup, free), so only calls from the objects linked into this
 *     program are redirected; libc's internal allocations (getaddrinfo, stdio,
 *     pthread_create) are neither counted nor failed. That keeps the runs about tlskit
 *     and OpenSSL, works unchanged under ASan (our hooks call the real malloc, which ASan
 *     provides) and catches use-after-free and double frees on the error paths too.
 *   - A process-wide malloc interposer would also fail libc's internals (noise, and
 *     ASan already owns malloc), so it is not used.
 * Both kinds go into one table of live pointers, so memory freed by the "other" free
 * (OpenSSL memory passed to free(), library memory to OPENSSL_free()) is still counted,
 * and reported: it breaks applications that install their own CRYPTO mem functions.
 *
 * Every N runs in a forked child (a crash or hang is then a result, not the end of the
 * test). The parent first runs each scenario once without failures, so OpenSSL's
 * one-time global set-up is done and inherited: counted allocations belong to the
 * scenario. A block the run allocated and left live is a leak unless it is reachable
 * from a global (OpenSSL's method and name caches grow when a failure sends a run down
 * another path): the reachability scan is LeakSanitizer's idea, done here per run.
 *
 * Which N: a clean run of a scenario makes 14,000 to 27,000 allocations, and one run per
 * N under ASan takes a few hundred ms, so by default N is chosen by allocation site (the
 * call stack: OpenSSL's file:line, the OpenSSL entry point and the library's frames):
 * the 1st, 2nd and last use of each site (--uses 3, the default; --uses 1: the 1st
 * only), 1,800 to 2,300 runs per scenario. --all runs every N (or --from/--to/--step)
 * for a long exhaustive sweep.
 *
 * Outcomes: PASS (some call failed, with a message and a class, nothing leaked), absorbed
 * (the failure changed nothing visible), FAIL (crash, hang, leak, empty message or
 * invalid class, a call failing with no failure injected, or no call failing although
 * the session came out different: e.g. other cipher suites), KNOWN (a FAIL of the last
 * kind that OpenSSL itself causes inside one of its calls; listed, not counted).
 *
 * Scenarios (one thread, both ends non-blocking over a socketpair, so the allocation
 * sequence is the same in every run):
 *   tls13-mtls  server config from files (set_keypair_file, add_ca_file, verify client,
 *               an allow-list of two client identities, an empty CRL of the CA from
 *               memory: add_crl_mem), client config with CA, client
 *               keypair and two public-key pins (one the server's); handshake, echo,
 *               close_notify both ways, free everything. The server also
 *               has a second keypair, the one for the client's name (SNI installs it per
 *               connection: sni.c), and both ends an ALPN list (alpn.c); the CA names go
 *               in its CertificateRequest.
 *   tls12       the same without mTLS, TLS 1.2 only (a different handshake path).
 *   resume      TLS 1.3 with a ticket key file's key (add_ticket_key_mem): a first
 *               handshake whose session is saved as PEM (session_save_mem), then a
 *               second offering it (session_load_mem) that must resume.
 *   engine      the server engine (1 worker thread) on 127.0.0.1:0 with an echo handler:
 *               engine_new, listen, start, a blocking client handshake + echo + close,
 *               engine_stop, engine_free. Threads make its allocation order vary a
 *               little between runs; each N is still a valid test.
 *
 * Usage: alloc_failure --certs DIR [--scenario NAME]... [--uses 1|2|3 | --all |
 *                      --from N --to N --step K] [--recheck] [--dry-run] [--jobs J] [-v]
 * --dry-run: only the clean runs, and how many N each scenario would take.
 * The last line is "N passed, M failed".
 */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <tlskit/tlskit.h>

/* ---- the allocation hooks ---------------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
void __wrap_free(void *p);

enum { ORIGIN_LIB = 1, ORIGIN_OSSL = 2 };

struct slot {
    void *p;
    unsigned long seq;  /* allocation number within the epoch, 0 before counting */
    unsigned epoch;
    unsigned char origin;
    const char *file;   /* OpenSSL's OPENSSL_FILE, or NULL */
    int line;
    void *caller;       /* return address for the library's own allocations */
    size_t size;
};

#define TABLE_BITS 19
#define TABLE_SIZE (1u << TABLE_BITS)
static struct slot g_table[TABLE_SIZE];
static size_t g_live;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static atomic_uint g_epoch;          /* scenario run being counted; 0: not counting */
static atomic_ulong g_seq;           /* allocations counted in this epoch */
static unsigned long g_fail_at;      /* 0: never fail */
static atomic_ulong g_injected;      /* allocation number that was failed, or 0 */
static atomic_ulong g_mismatched;    /* frees through the other family's free */
static char g_mismatch_text[256];
#define MAX_FRAMES 24
static void *g_inject_bt[MAX_FRAMES];
static int g_inject_depth;
static const char *g_inject_file;
static int g_inject_line;

static size_t slot_of(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> (64 - TABLE_BITS));
}

static void table_add(void *p, size_t size, unsigned char origin, const char *file, int line,
                      void *caller, unsigned long seq, unsigned epoch)
{
    pthread_mutex_lock(&g_mu);
    if (g_live >= TABLE_SIZE - TABLE_SIZE / 4) {
        static const char msg[] = "alloc_failure: allocation table full\n";
        (void)!write(2, msg, sizeof msg - 1);
        abort();
    }
    size_t i = slot_of(p);
    while (g_table[i].p != NULL)
        i = (i + 1) & (TABLE_SIZE - 1);
    g_table[i] = (struct slot){p, seq, epoch, origin, file, line, caller, size};
    g_live++;
    pthread_mutex_unlock(&g_mu);
}

/* Remove p; returns its origin, 0 if it was not ours. Linear probing with backward-shift
 * deletion (no tombstones). */
static unsigned char table_del(void *p)
{
    unsigned char origin = 0;
    pthread_mutex_lock(&g_mu);
    size_t i = slot_of(p);
    while (g_table[i].p != NULL && g_table[i].p != p)
        i = (i + 1) & (TABLE_SIZE - 1);
    if (g_table[i].p == p) {
        origin = g_table[i].origin;
        g_live--;
        size_t j = i;
        for (;;) {
            g_table[i].p = NULL;
            for (;;) {
                j = (j + 1) & (TABLE_SIZE - 1);
                if (g_table[j].p == NULL)
                    goto done;
                size_t k = slot_of(g_table[j].p);
                /* Move j back to i unless its home k lies cyclically in (i, j]. */
                if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                    continue;
                break;
            }
            g_table[i] = g_table[j];
            i = j;
        }
    }
done:
    pthread_mutex_unlock(&g_mu);
    return origin;
}

/* Allocation sites of a clean run, to pick one N per distinct site (see main). A site
 * is where the allocation happens (OpenSSL's file:line, or the library's call) and the
 * two innermost frames of this program (the library's call into OpenSSL), plus the two
 * frames above CRYPTO_malloc (so a generic helper such as a stack push is told apart by
 * its user). */
static int g_record;
static uint64_t *g_sites; /* by allocation number */
static size_t g_sites_cap;
static const void *g_exe_base;
static uintptr_t g_exe_lo, g_exe_hi; /* this program's executable segment */

static int in_exe(const void *pc)
{
    return (uintptr_t)pc >= g_exe_lo && (uintptr_t)pc < g_exe_hi;
}

static int phdr_exe(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    if (info->dlpi_addr != (uintptr_t)g_exe_base)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            g_exe_lo = info->dlpi_addr + ph->p_vaddr;
            g_exe_hi = g_exe_lo + ph->p_memsz;
        }
    }
    return 1;
}

/* The index of the first frame of whoever called our hook (OpenSSL's allocator or the
 * library) in a stack taken `ours` frames deep inside our code (record_site: 3,
 * count_alloc: 2); under ASan the first frame is its backtrace interceptor. */
static int first_caller_frame(void *const *frames, int depth, int ours)
{
    int i = 0;
    while (i < depth && !in_exe(frames[i]))
        i++;
    return i + ours < depth ? i + ours : depth;
}

static __attribute__((noinline)) void record_site(unsigned long seq, const char *file, int line)
{
    void *frames[MAX_FRAMES];
    int depth = backtrace(frames, MAX_FRAMES);
    uint64_t h = 1469598103934665603ull;
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211ull)
    MIX((uintptr_t)file);
    MIX(line);
    int exe = 0, ossl = 0;
    /* Up to 3 OpenSSL frames (CRYPTO_malloc, the allocating function, its caller), then
     * the 2 innermost frames of the library. */
    for (int i = first_caller_frame(frames, depth, 3); i < depth && exe < 2; i++) {
        if (in_exe(frames[i])) {
            MIX((uintptr_t)frames[i]);
            exe++;
        } else if (ossl++ < 3) {
            MIX((uintptr_t)frames[i]);
        }
    }
#undef MIX
    pthread_mutex_lock(&g_mu);
    if (seq >= g_sites_cap) {
        size_t cap = g_sites_cap ? g_sites_cap * 2 : 65536;
        while (cap <= seq)
            cap *= 2;
        g_sites = __real_realloc(g_sites, cap * sizeof(*g_sites));
        memset(g_sites + g_sites_cap, 0, (cap - g_sites_cap) * sizeof(*g_sites));
        g_sites_cap = cap;
    }
    g_sites[seq] = h;
    pthread_mutex_unlock(&g_mu);
}

/* Count one allocation; 1 when it must fail. */
static __attribute__((noinline)) int count_alloc(unsigned long *seq, unsigned *epoch, const char *file, int line)
{
    *epoch = atomic_load(&g_epoch);
    *seq = 0;
    if (*epoch == 0)
        return 0;
    *seq = atomic_fetch_add(&g_seq, 1) + 1;
    if (g_record)
        record_site(*seq, file, line);
    if (g_fail_at != 0 && *seq == g_fail_at) {
        atomic_store(&g_injected, *seq);
        g_inject_file = file;
        g_inject_line = line;
        g_inject_depth = backtrace(g_inject_bt, MAX_FRAMES);
        return 1;
    }
    return 0;
}

static void *track(void *p, size_t size, unsigned char origin, const char *file, int line,
                   void *caller, unsigned long seq, unsigned epoch)
{
    if (p != NULL)
        table_add(p, size, origin, file, line, caller, seq, epoch);
    return p;
}

static void untrack(void *p, unsigned char by)
{
    if (p == NULL)
        return;
    unsigned char origin = table_del(p);
    if (origin != 0 && origin != by && atomic_fetch_add(&g_mismatched, 1) == 0)
        snprintf(g_mismatch_text, sizeof g_mismatch_text, "%s memory freed by %s",
                 origin == ORIGIN_OSSL ? "OPENSSL_malloc'ed" : "malloc'ed (library)",
                 by == ORIGIN_OSSL ? "OPENSSL_free" : "free()");
}

void *__wrap_malloc(size_t n)
{
    unsigned long seq;
    unsigned epoch;
    if (count_alloc(&seq, &epoch, NULL, 0))
        return NULL;
    return track(__real_malloc(n), n, ORIGIN_LIB, NULL, 0, __builtin_return_address(0), seq,
                 epoch);
}

void *__wrap_calloc(size_t n, size_t m)
{
    unsigned long seq;
    unsigned epoch;
    if (count_alloc(&seq, &epoch, NULL, 0))
        return NULL;
    return track(__real_calloc(n, m), n * m, ORIGIN_LIB, NULL, 0, __builtin_return_address(0), seq,
                 epoch);
}

void *__wrap_realloc(void *p, size_t n)
{
    unsigned long seq;
    unsigned epoch;
    if (count_alloc(&seq, &epoch, NULL, 0))
        return NULL; /* p stays valid, as with a real failure */
    untrack(p, ORIGIN_LIB);
    return track(__real_realloc(p, n), n, ORIGIN_LIB, NULL, 0, __builtin_return_address(0), seq,
                 epoch);
}

char *__wrap_strdup(const char *s)
{
    unsigned long seq;
    unsigned epoch;
    if (count_alloc(&seq, &epoch, NULL, 0))
        return NULL;
    return track(__real_strdup(s), s ? strlen(s) + 1 : 0, ORIGIN_LIB, NULL, 0, __builtin_return_address(0), seq,
                 epoch);
}

void __wrap_free(void *p)
{
    untrack(p, ORIGIN_LIB);
    __real_free(p);
}

static void *ossl_malloc(size_t n, const char *file, int line)
{
    unsigned long seq;
    unsigned epoch;
    if (count_alloc(&seq, &epoch, file, line))
        return NULL;
    return track(__real_malloc(n), n, ORIGIN_OSSL, file, line, NULL, seq, epoch);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
    if (n == 0) { /* what CRYPTO_realloc does with the default functions */
        untrack(p, ORIGIN_OSSL);
        __real_free(p);
        return NULL;
    }
    unsigned long seq;
    unsigned epoch;
    if (count_alloc(&seq, &epoch, file, line))
        return NULL;
    untrack(p, ORIGIN_OSSL);
    return track(__real_realloc(p, n), n, ORIGIN_OSSL, file, line, NULL, seq, epoch);
}

static void ossl_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    untrack(p, ORIGIN_OSSL);
    __real_free(p);
}

/* ---- reporting from a child ---------------------------------------------------------- */

static int g_report_fd = -1; /* child: pipe to the parent */
static char g_report[8192];
static size_t g_report_len;
static int g_verbose;
static int g_recheck;
static int g_uses = 3; /* --uses: which uses of each allocation site to fail */

static void __attribute__((format(printf, 1, 2))) report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g_report + g_report_len, sizeof g_report - g_report_len, fmt, ap);
    va_end(ap);
    if (n > 0)
        g_report_len = g_report_len + (size_t)n < sizeof g_report ? g_report_len + (size_t)n
                                                                  : sizeof g_report - 1;
}

/* "module+0xOFFSET" for each frame of the injected allocation, for addr2line. */
static void report_frames(void *const *frames, int depth)
{
    for (int i = 0; i < depth; i++) {
        Dl_info info;
        if (dladdr(frames[i], &info) && info.dli_fname != NULL)
            report("    #%d %s+0x%lx%s%s\n", i, info.dli_fname,
                   (unsigned long)((uintptr_t)frames[i] - (uintptr_t)info.dli_fbase),
                   info.dli_sname ? " " : "", info.dli_sname ? info.dli_sname : "");
        else
            report("    #%d %p\n", i, frames[i]);
    }
}

static void report_injection(void)
{
    unsigned long inj = atomic_load(&g_injected);
    if (inj == 0)
        return;
    report("  injected: allocation %lu (%s%s%d)\n", inj,
           g_inject_file ? g_inject_file : "library malloc", g_inject_file ? ":" : "",
           g_inject_file ? g_inject_line : 0);
    report_frames(g_inject_bt, g_inject_depth);
}

/* ---- scenario helpers ---------------------------------------------------------------- */

struct run {
    int failed;           /* a check failed: the test fails */
    int api_failed;       /* some call reported an error (expected after an injection) */
    char first_call[64];  /* first call that reported an error */
    int first_code;
    char first_msg[300];
    char proto[32], cipher[64]; /* negotiated, on success */
    char echo_ok;
};

static const char *g_certs = ".";
static char g_path[8][1024];

static const char *cert(int i, const char *name)
{
    snprintf(g_path[i], sizeof g_path[i], "%s/%s", g_certs, name);
    return g_path[i];
}

static void __attribute__((format(printf, 2, 3))) fail(struct run *r, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    report("  FAIL: %s\n", buf);
    r->failed = 1;
}

/* A call returned its failure value: check the error it left. */
static void check_error(struct run *r, const char *call, const char *msg, int code)
{
    if (!r->api_failed) {
        r->api_failed = 1;
        snprintf(r->first_call, sizeof r->first_call, "%s", call);
        r->first_code = code;
        snprintf(r->first_msg, sizeof r->first_msg, "%s", msg ? msg : "(null)");
    }
    if (atomic_load(&g_injected) == 0)
        fail(r, "%s failed although no allocation failed: %s: %s", call,
             tlskit_error_name(code), msg ? msg : "(null)");
    if (msg == NULL || *msg == '\0')
        fail(r, "%s failed with an empty message (class %s)", call, tlskit_error_name(code));
    if (code <= TLSKIT_E_NONE || strcmp(tlskit_error_name(code), "TLSKIT_E_UNKNOWN") == 0)
        fail(r, "%s failed with an invalid class %d (%s)", call, code, msg ? msg : "(null)");
}

static void check_null(struct run *r, const char *call)
{
    check_error(r, call, "(NULL: out of memory)", TLSKIT_E_NOMEM);
}

/* "tlskit_config_add_ca_file (server)" from the text of the call. */
static const char *call_name(const char *expr, char *buf, size_t len)
{
    snprintf(buf, len, "%.*s%s", (int)strcspn(expr, "("), expr,
             strstr(expr, "(scfg") ? " (server)" : strstr(expr, "(ccfg") ? " (client)" : "");
    return buf;
}

#define CFG_CALL(r, cfg, expr)                                                           \
    ((expr) == 0 ? 0                                                                     \
                 : (check_error((r), call_name(#expr, (char[96]){0}, 96),                \
                                tlskit_config_error(cfg), tlskit_config_error_code(cfg)), \
                    -1))

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define STEP_MS 10000 /* a step that takes this long is a hang */

struct end {
    const char *name;
    tlskit_conn *c;
    int fd;
    int dead;
};

/* The connection failed: stop talking on its socket, so the other end sees EOF instead of
 * waiting for bytes that will never come (the caller owns a wrapped fd). */
static void kill_end(struct end *e)
{
    e->dead = 1;
    shutdown(e->fd, SHUT_RDWR);
}

static void conn_failed(struct run *r, struct end *e, const char *call)
{
    char what[64];
    snprintf(what, sizeof what, "%s %s", e->name, call);
    check_error(r, what, tlskit_conn_error(e->c), tlskit_conn_error_code(e->c));
    kill_end(e);
}

/* Wait for the events a WANT asks for, up to the step deadline. */
static int wait_want(struct run *r, struct end *e, ssize_t want, int64_t deadline,
                     const char *call)
{
    struct pollfd p = {.fd = e->fd, .events = tlskit_want_events(want)};
    if (p.events == 0) {
        fail(r, "%s %s returned %zd: not a WANT value", e->name, call, want);
        return -1;
    }
    int64_t left = deadline - now_ms();
    if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
        fail(r, "%s %s: no progress within %d ms (hang)", e->name, call, STEP_MS);
        return -1;
    }
    return 0;
}

/* Both handshakes, interleaved. 0 when both completed. */
static int handshake_both(struct run *r, struct end *a, struct end *b)
{
    int64_t deadline = now_ms() + STEP_MS;
    int done_a = 0, done_b = 0;
    while (!(done_a && done_b)) {
        struct end *ends[2] = {a, b};
        int *done[2] = {&done_a, &done_b};
        short ev[2] = {0, 0};
        for (int i = 0; i < 2; i++) {
            if (*done[i])
                continue;
            int rc = tlskit_conn_handshake(ends[i]->c);
            if (rc == 0) {
                *done[i] = 1;
            } else if (rc == -1) {
                conn_failed(r, ends[i], "tlskit_conn_handshake");
                return -1;
            } else {
                ev[i] = tlskit_want_events(rc);
                if (ev[i] == 0) {
                    fail(r, "%s handshake returned %d", ends[i]->name, rc);
                    return -1;
                }
            }
        }
        if (done_a && done_b)
            break;
        struct pollfd p[2] = {{.fd = a->fd, .events = ev[0]}, {.fd = b->fd, .events = ev[1]}};
        int64_t left = deadline - now_ms();
        if (left <= 0 || poll(p, 2, (int)left) <= 0) {
            fail(r, "handshake: no progress within %d ms (hang)", STEP_MS);
            return -1;
        }
    }
    return 0;
}

/* Read exactly len bytes (or until EOF when len is 0, expecting a clean close). */
static int read_exact(struct run *r, struct end *e, unsigned char *buf, size_t len)
{
    int64_t deadline = now_ms() + STEP_MS;
    size_t got = 0;
    for (;;) {
        unsigned char tmp[1];
        ssize_t n = len ? tlskit_conn_read(e->c, buf + got, len - got)
                        : tlskit_conn_read(e->c, tmp, sizeof tmp);
        if (n > 0) {
            if (len == 0) {
                fail(r, "%s read: data where close_notify was expected", e->name);
                return -1;
            }
            got += (size_t)n;
            if (got == len)
                return 0;
            continue;
        }
        if (n == 0) {
            if (len == 0)
                return 0;
            /* A clean close_notify mid-message: the peer gave up after its own failure. */
            if (atomic_load(&g_injected) == 0)
                fail(r, "%s read: unexpected close_notify", e->name);
            return -1;
        }
        if (n == -1) {
            conn_failed(r, e, "tlskit_conn_read");
            return -1;
        }
        if (wait_want(r, e, n, deadline, "tlskit_conn_read") != 0)
            return -1;
    }
}

static int write_all_nb(struct run *r, struct end *e, const unsigned char *buf, size_t len)
{
    int64_t deadline = now_ms() + STEP_MS;
    size_t off = 0;
    while (off < len) {
        ssize_t n = tlskit_conn_write(e->c, buf + off, len - off);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n == -1) {
            conn_failed(r, e, "tlskit_conn_write");
            return -1;
        }
        if (wait_want(r, e, n, deadline, "tlskit_conn_write") != 0)
            return -1;
    }
    return 0;
}

/* After one end failed: the other must end within the deadline with an error or a clean
 * close, never hang and never report success with garbage. */
static void peer_must_end(struct run *r, struct end *e)
{
    if (e->dead)
        return;
    int64_t deadline = now_ms() + STEP_MS;
    unsigned char buf[256];
    for (;;) {
        ssize_t n = tlskit_conn_read(e->c, buf, sizeof buf);
        if (n == 0 || n == -1) {
            if (n == -1) {
                conn_failed(r, e, "tlskit_conn_read (after the peer failed)");
            }
            return;
        }
        if (n > 0)
            continue; /* e.g. an echo already in flight */
        if (wait_want(r, e, n, deadline, "tlskit_conn_read (after the peer failed)") != 0)
            return;
    }
}

/* ---- scenario: one thread, two non-blocking ends over a socketpair ------------------- */

struct pair_opts {
    int mtls;
    int tls12;
    const unsigned char *ticket_key; /* 80 bytes, or NULL: automatic keys */
    const char *offer;               /* PEM session to offer (offer_len bytes), or NULL */
    size_t offer_len;
    char **save;                     /* if set: the session after the echo, as PEM */
    size_t *save_len;
    int sni_alpn; /* the default keypair is for another name; ALPN on both ends */
    int ocsp;     /* the server staples g_ocsp, the client requires a good staple */
};

/* "ZERO_PIN;sha256//<server.crt's key>" for tlskit_config_set_pinned_pubkeys(). Made once
 * by main(), outside any counted run, so every run's allocations are the scenario's. */
static const char *server_pins(void)
{
    static char pins[128];
    if (pins[0])
        return pins;
    FILE *f = fopen(cert(6, "server.crt"), "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    unsigned char *der = NULL, md[32];
    int len = x ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der) : -1;
    unsigned int mdlen = 0;
    if (len > 0 && EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) == 1) {
        int n = snprintf(pins, sizeof pins,
                         "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=;sha256//");
        EVP_EncodeBlock((unsigned char *)pins + n, md, (int)mdlen);
    }
    OPENSSL_free(der);
    X509_free(x);
    if (f)
        fclose(f);
    return pins;
}

/* An empty CRL of the test CA (PEM), for the server's client verification: made once by
 * main(), like server_pins(), with OpenSSL's API (no `openssl ca` database needed). */
static char g_crl[4096];
static size_t g_crl_len;

static int make_crl(void)
{
    FILE *cf = fopen(cert(6, "ca.crt"), "r"), *kf = fopen(cert(7, "ca.key"), "r");
    X509 *ca = cf ? PEM_read_X509(cf, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = kf ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *now = X509_gmtime_adj(NULL, 0), *next = X509_gmtime_adj(NULL, 86400);
    BIO *mem = BIO_new(BIO_s_mem());
    BUF_MEM *bm = NULL;
    int ok = ca && key && crl && now && next && mem && X509_CRL_set_version(crl, 1) &&
             X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) &&
             X509_CRL_set1_lastUpdate(crl, now) && X509_CRL_set1_nextUpdate(crl, next) &&
             X509_CRL_sign(crl, key, EVP_sha256()) && PEM_write_bio_X509_CRL(mem, crl) &&
             BIO_get_mem_ptr(mem, &bm) == 1 && bm->length < sizeof g_crl;
    if (ok) {
        memcpy(g_crl, bm->data, bm->length);
        g_crl_len = bm->length;
    }
    BIO_free(mem);
    ASN1_TIME_free(now);
    ASN1_TIME_free(next);
    X509_CRL_free(crl);
    EVP_PKEY_free(key);
    X509_free(ca);
    if (cf)
        fclose(cf);
    if (kf)
        fclose(kf);
    return ok ? 0 : -1;
}

/* A `good` OCSP response of the test CA for server.crt (DER), for the stapling scenario:
 * made once by main(), like make_crl(). */
static unsigned char g_ocsp[4096];
static size_t g_ocsp_len;

static int make_ocsp(void)
{
    FILE *lf = fopen(cert(6, "server.crt"), "r"), *cf = fopen(cert(6, "ca.crt"), "r");
    FILE *kf = fopen(cert(7, "ca.key"), "r");
    X509 *leaf = lf ? PEM_read_X509(lf, NULL, NULL, NULL) : NULL;
    X509 *ca = cf ? PEM_read_X509(cf, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = kf ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    OCSP_CERTID *id = leaf && ca ? OCSP_cert_to_id(NULL, leaf, ca) : NULL;
    ASN1_TIME *now = X509_gmtime_adj(NULL, -60), *next = X509_gmtime_adj(NULL, 86400);
    OCSP_RESPONSE *resp = NULL;
    unsigned char *der = NULL;
    int len = -1;
    if (key && bs && id && now && next &&
        OCSP_basic_add1_status(bs, id, V_OCSP_CERTSTATUS_GOOD, 0, NULL, now, next) &&
        OCSP_basic_sign(bs, ca, key, EVP_sha256(), NULL, OCSP_NOCERTS) == 1 &&
        (resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs)))
        len = i2d_OCSP_RESPONSE(resp, &der);
    int ok = len > 0 && (size_t)len <= sizeof g_ocsp;
    if (ok) {
        memcpy(g_ocsp, der, (size_t)len);
        g_ocsp_len = (size_t)len;
    }
    OPENSSL_free(der);
    OCSP_RESPONSE_free(resp);
    ASN1_TIME_free(now);
    ASN1_TIME_free(next);
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(bs);
    EVP_PKEY_free(key);
    X509_free(ca);
    X509_free(leaf);
    if (lf)
        fclose(lf);
    if (cf)
        fclose(cf);
    if (kf)
        fclose(kf);
    return ok ? 0 : -1;
}

static void scenario_pair(struct run *r, const struct pair_opts *o)
{
    tlskit_config *scfg = NULL, *ccfg = NULL;
    tlskit_conn *sc = NULL, *cc = NULL;
    int sv[2] = {-1, -1};
    struct end srv = {"server", NULL, -1, 0}, cli = {"client", NULL, -1, 0};
    unsigned char msg[3000], back[sizeof msg];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (unsigned char)(i * 7 + 1);

    if (!(scfg = tlskit_config_new())) {
        check_null(r, "tlskit_config_new (server)");
        goto out;
    }
    if ((o->sni_alpn &&
         (CFG_CALL(r, scfg, tlskit_config_set_keypair_file(scfg, cert(6, "wronghost.crt"),
                                                           cert(7, "wronghost.key"))) ||
          CFG_CALL(r, scfg, tlskit_config_add_keypair_file(scfg, cert(0, "server.crt"),
                                                           cert(1, "server.key"))) ||
          CFG_CALL(r, scfg, tlskit_config_set_alpn(scfg, "h2,http/1.1")))) ||
        (!o->sni_alpn &&
         CFG_CALL(r, scfg, tlskit_config_set_keypair_file(scfg, cert(0, "server.crt"),
                                                          cert(1, "server.key")))) ||
        (o->ocsp && CFG_CALL(r, scfg, tlskit_config_set_ocsp_staple_mem(scfg, g_ocsp,
                                                                        g_ocsp_len))) ||
        /* Also without mTLS: a config without a CA loads the whole system trust store
         * on its first connection (~220,000 allocations), even in the server role. */
        CFG_CALL(r, scfg, tlskit_config_add_ca_file(scfg, cert(2, "ca.crt"))) ||
        (o->mtls && CFG_CALL(r, scfg, tlskit_config_set_verify_client(
                                          scfg, TLSKIT_VERIFY_CLIENT_REQUIRED))) ||
        (o->mtls && CFG_CALL(r, scfg, tlskit_config_add_allowed_client(
                                          scfg, "dns:nobody.example"))) ||
        (o->mtls && CFG_CALL(r, scfg, tlskit_config_add_allowed_client(
                                          scfg, "cn:tlskit-client"))) ||
        (o->mtls && CFG_CALL(r, scfg, tlskit_config_add_crl_mem(scfg, g_crl, g_crl_len))) ||
        (o->tls12 && CFG_CALL(r, scfg, tlskit_config_set_protocols(scfg, TLSKIT_TLS1_2,
                                                                   TLSKIT_TLS1_2))) ||
        (o->ticket_key &&
         CFG_CALL(r, scfg, tlskit_config_add_ticket_key_mem(scfg, o->ticket_key, 80))))
        goto out;
    if (!(ccfg = tlskit_config_new())) {
        check_null(r, "tlskit_config_new (client)");
        goto out;
    }
    if (CFG_CALL(r, ccfg, tlskit_config_add_ca_file(ccfg, cert(3, "ca.crt"))) ||
        (o->sni_alpn && CFG_CALL(r, ccfg, tlskit_config_set_alpn(ccfg, "http/1.1,h2"))) ||
        (o->ocsp && CFG_CALL(r, ccfg, tlskit_config_set_ocsp_request(ccfg,
                                                                     TLSKIT_OCSP_REQUIRE))) ||
        (o->mtls && CFG_CALL(r, ccfg, tlskit_config_set_keypair_file(
                                          ccfg, cert(4, "client.crt"), cert(5, "client.key")))) ||
        (o->mtls && CFG_CALL(r, ccfg, tlskit_config_set_pinned_pubkeys(ccfg, server_pins()))))
        goto out;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        fail(r, "socketpair: %s", strerror(errno));
        goto out;
    }
    srv.fd = sv[0];
    cli.fd = sv[1];
    if (!(sc = tlskit_conn_new(scfg))) {
        check_null(r, "tlskit_conn_new (server)");
        goto out;
    }
    if (!(cc = tlskit_conn_new(ccfg))) {
        check_null(r, "tlskit_conn_new (client)");
        goto out;
    }
    srv.c = sc;
    cli.c = cc;
    /* The connections hold their own references. */
    tlskit_config_free(scfg);
    scfg = NULL;
    tlskit_config_free(ccfg);
    ccfg = NULL;

    if (tlskit_conn_wrap_server(sc, srv.fd) != 0) {
        conn_failed(r, &srv, "tlskit_conn_wrap_server");
        goto out;
    }
    if (tlskit_conn_wrap_client(cc, cli.fd, "localhost") != 0) {
        conn_failed(r, &cli, "tlskit_conn_wrap_client");
        goto out;
    }
    if (o->offer && tlskit_conn_session_load_mem(cc, o->offer, o->offer_len) != 0) {
        conn_failed(r, &cli, "tlskit_conn_session_load_mem");
        goto out;
    }
    if (handshake_both(r, &srv, &cli) != 0)
        goto peer;
    /* A resumption that silently became a full handshake is a different session. */
    snprintf(r->proto, sizeof r->proto, "%s%s",
             tlskit_conn_protocol(cc) ? tlskit_conn_protocol(cc) : "?",
             tlskit_conn_session_reused(cc) ? " resumed" : "");
    snprintf(r->cipher, sizeof r->cipher, "%s", tlskit_conn_cipher(cc) ? tlskit_conn_cipher(cc) : "?");
    if (o->ocsp && tlskit_conn_ocsp_status(cc) != TLSKIT_OCSP_STATUS_GOOD)
        fail(r, "OCSP required, handshake completed with: %s", tlskit_conn_ocsp_text(cc));
    if (o->mtls && !tlskit_conn_peer_cert_provided(sc))
        fail(r, "mTLS handshake completed but the server saw no client certificate");
    if (o->sni_alpn && tlskit_conn_local_cert_index(sc) != 1)
        fail(r, "SNI: the server served keypair %d, not 1 (localhost)",
             tlskit_conn_local_cert_index(sc));
    /* Its copy may fail (out of memory): then NULL, never another name. */
    if (o->sni_alpn && tlskit_conn_alpn_selected(cc) &&
        strcmp(tlskit_conn_alpn_selected(cc), "h2") != 0)
        fail(r, "ALPN: selected %s, not h2", tlskit_conn_alpn_selected(cc));

    /* Echo: client -> server -> client. */
    if (write_all_nb(r, &cli, msg, sizeof msg) != 0 || read_exact(r, &srv, back, sizeof msg) != 0 ||
        write_all_nb(r, &srv, back, sizeof msg) != 0 || read_exact(r, &cli, back, sizeof msg) != 0)
        goto peer;
    if (memcmp(msg, back, sizeof msg) != 0) {
        fail(r, "echo returned different bytes");
        goto out;
    }
    r->echo_ok = 1;
    /* The TLS 1.3 ticket came before the echo. */
    if (o->save && tlskit_conn_session_save_mem(cc, o->save, o->save_len) != 0) {
        conn_failed(r, &cli, "tlskit_conn_session_save_mem");
        r->echo_ok = 0;
        goto out;
    }

    /* close_notify both ways. */
    if (tlskit_conn_close(cc) != 0) {
        conn_failed(r, &cli, "tlskit_conn_close (client)");
        goto peer;
    }
    if (read_exact(r, &srv, NULL, 0) != 0)
        goto peer;
    if (tlskit_conn_close(sc) != 0) {
        conn_failed(r, &srv, "tlskit_conn_close (server)");
        goto out;
    }
    goto out;
peer:
    peer_must_end(r, &srv);
    peer_must_end(r, &cli);
out:
    tlskit_conn_free(sc);
    tlskit_conn_free(cc);
    tlskit_config_free(scfg);
    tlskit_config_free(ccfg);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
}

static void scenario_tls13_mtls(struct run *r)
{
    static const struct pair_opts o = {.mtls = 1, .sni_alpn = 1};
    scenario_pair(r, &o);
}

/* TLS 1.2, with an OCSP staple sent and required (the status callback, both roles). */
static void scenario_tls12(struct run *r)
{
    static const struct pair_opts o = {.tls12 = 1, .ocsp = 1};
    scenario_pair(r, &o);
}

/* Ticket keys from nginx's 80-byte layout, the session saved as PEM after a first
 * handshake, then offered on a second: the ticket encrypt and decrypt callbacks and the
 * session PEM code. */
static void scenario_resume(struct run *r)
{
    static unsigned char key[80];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (unsigned char)(i * 13 + 5);
    char *pem = NULL;
    size_t len = 0;
    struct pair_opts first = {.ticket_key = key, .save = &pem, .save_len = &len};
    scenario_pair(r, &first);
    if (pem && r->echo_ok) {
        struct pair_opts second = {.ticket_key = key, .offer = pem, .offer_len = len};
        r->echo_ok = 0;
        scenario_pair(r, &second);
    }
    free(pem);
}

/* ---- scenario: the engine ------------------------------------------------------------ */

static void eng_data(tlskit_conn *c, const void *data, size_t len, void *arg)
{
    (void)arg;
    (void)tlskit_conn_write(c, data, len); /* a failure closes the connection */
}

struct eng_closes {
    atomic_int n;
    atomic_int bad; /* on_close with an empty reason or invalid class */
    char text[256];
    char last[300]; /* the last on_close, for messages */
};

static void eng_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    (void)c;
    struct eng_closes *k = arg;
    atomic_fetch_add(&k->n, 1);
    snprintf(k->last, sizeof k->last, "%s: %s", tlskit_error_name(code),
             reason ? reason : "(null)");
    if (code != TLSKIT_E_NONE &&
        (reason == NULL || *reason == '\0' ||
         strcmp(tlskit_error_name(code), "TLSKIT_E_UNKNOWN") == 0) &&
        atomic_fetch_add(&k->bad, 1) == 0)
        snprintf(k->text, sizeof k->text, "on_close code %d reason '%s'", code,
                 reason ? reason : "(null)");
}

static void scenario_engine(struct run *r)
{
    tlskit_config *scfg = NULL, *ccfg = NULL;
    tlskit_engine *e = NULL;
    tlskit_conn *cc = NULL;
    struct eng_closes closes = {0};
    struct tlskit_engine_handlers h = {.on_data = eng_data, .on_close = eng_close,
                                       .arg = &closes};
    unsigned char msg[1000], back[sizeof msg];
    memset(msg, 'x', sizeof msg);

    if (!(scfg = tlskit_config_new())) {
        check_null(r, "tlskit_config_new (server)");
        goto out;
    }
    if (CFG_CALL(r, scfg, tlskit_config_set_keypair_file(scfg, cert(0, "server.crt"),
                                                         cert(1, "server.key"))) ||
        CFG_CALL(r, scfg, tlskit_config_add_ca_file(scfg, cert(2, "ca.crt"))) ||
        CFG_CALL(r, scfg, tlskit_config_set_timeout(scfg, TLSKIT_TIMEOUT_HANDSHAKE, 5000)))
        goto out;
    if (!(e = tlskit_engine_new(scfg, &h))) {
        check_null(r, "tlskit_engine_new");
        goto out;
    }
    if (tlskit_engine_set_workers(e, 1) != 0 || tlskit_engine_set_drain_timeout(e, 200) != 0) {
        check_error(r, "tlskit_engine_set_*", tlskit_engine_error(e), tlskit_engine_error_code(e));
        goto out;
    }
    if (tlskit_engine_listen(e, "127.0.0.1", "0", 16) != 0) {
        check_error(r, "tlskit_engine_listen", tlskit_engine_error(e), tlskit_engine_error_code(e));
        goto out;
    }
    if (tlskit_engine_start(e) != 0) {
        check_error(r, "tlskit_engine_start", tlskit_engine_error(e), tlskit_engine_error_code(e));
        goto out;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", tlskit_engine_port(e));

    if (!(ccfg = tlskit_config_new())) {
        check_null(r, "tlskit_config_new (client)");
        goto stop;
    }
    if (CFG_CALL(r, ccfg, tlskit_config_add_ca_file(ccfg, cert(3, "ca.crt"))) ||
        CFG_CALL(r, ccfg, tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_HANDSHAKE, STEP_MS)) ||
        CFG_CALL(r, ccfg, tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_READ, STEP_MS)) ||
        CFG_CALL(r, ccfg, tlskit_config_set_timeout(ccfg, TLSKIT_TIMEOUT_WRITE, STEP_MS)))
        goto stop;
    if (!(cc = tlskit_conn_new(ccfg))) {
        check_null(r, "tlskit_conn_new (client)");
        goto stop;
    }
    if (tlskit_conn_set_servername(cc, "localhost") != 0 ||
        tlskit_conn_connect(cc, "127.0.0.1", port) != 0 || tlskit_conn_handshake(cc) != 0) {
        check_error(r, "client connect/handshake", tlskit_conn_error(cc), tlskit_conn_error_code(cc));
        if (tlskit_conn_error_code(cc) == TLSKIT_E_TIMEOUT)
            fail(r, "client timed out: the engine neither answered nor closed");
        goto stop;
    }
    snprintf(r->proto, sizeof r->proto, "%s", tlskit_conn_protocol(cc) ? tlskit_conn_protocol(cc) : "?");
    snprintf(r->cipher, sizeof r->cipher, "%s", tlskit_conn_cipher(cc) ? tlskit_conn_cipher(cc) : "?");
    if (tlskit_conn_write_all(cc, msg, sizeof msg) != 0) {
        check_error(r, "client write_all", tlskit_conn_error(cc), tlskit_conn_error_code(cc));
        goto stop;
    }
    size_t got = 0;
    while (got < sizeof msg) {
        ssize_t n = tlskit_conn_read(cc, back + got, sizeof msg - got);
        if (n <= 0) {
            if (n == 0) {
                if (atomic_load(&g_injected) == 0)
                    fail(r, "engine closed cleanly before echoing");
            } else {
                check_error(r, "client read", tlskit_conn_error(cc), tlskit_conn_error_code(cc));
                if (tlskit_conn_error_code(cc) == TLSKIT_E_TIMEOUT)
                    fail(r, "client timed out: the engine neither answered nor closed");
            }
            goto stop;
        }
        got += (size_t)n;
    }
    if (memcmp(msg, back, sizeof msg) != 0) {
        fail(r, "engine echo returned different bytes");
        goto stop;
    }
    r->echo_ok = 1;
    if (tlskit_conn_close(cc) != 0)
        check_error(r, "client close", tlskit_conn_error(cc), tlskit_conn_error_code(cc));
stop:
    tlskit_conn_free(cc);
    cc = NULL;
    if (tlskit_engine_stop(e) != 0)
        check_error(r, "tlskit_engine_stop", tlskit_engine_error(e), tlskit_engine_error_code(e));
    if (atomic_load(&closes.bad))
        fail(r, "engine: %s", closes.text);
    if (r->failed || g_verbose > 1)
        report("  engine's last on_close: %s\n", closes.last[0] ? closes.last : "(none)");
out:
    tlskit_engine_free(e);
    tlskit_conn_free(cc);
    tlskit_config_free(scfg);
    tlskit_config_free(ccfg);
}

/* ---- running one N ---------------------------------------------------------------------- */

struct scenario {
    const char *name;
    void (*fn)(struct run *);
    int threaded;
};

static const struct scenario g_scenarios[] = {
    {"tls13-mtls", scenario_tls13_mtls, 0},
    {"tls12", scenario_tls12, 0},
    {"resume", scenario_resume, 0},
    {"engine", scenario_engine, 1},
};
#define NSCEN (sizeof g_scenarios / sizeof g_scenarios[0])

/* ---- leaks: what a run left live and nothing points to -------------------------------- *
 * OpenSSL keeps global caches (fetched algorithms, the name map, property queries) that
 * grow when a run takes a path the warm-up did not (e.g. TLS 1.2 after a failure made
 * TLS 1.3 unavailable): memory still live but reachable from a global is a cache, not a
 * leak. So, as LeakSanitizer does: mark everything reachable from the writable segments
 * of every loaded object (except this program's own bookkeeping) through tracked blocks;
 * a block of the run that is not marked is a leak. */

struct blk {
    uintptr_t start, end;
    size_t slot;
    int marked;
};
static struct blk *g_blks;
static size_t g_nblks;
static size_t *g_stack;
static size_t g_nstack, g_stack_cap;

static int cmp_blk(const void *a, const void *b)
{
    const struct blk *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static struct blk *blk_of(uintptr_t v)
{
    size_t lo = 0, hi = g_nblks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g_blks[mid].start <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    struct blk *b = &g_blks[lo - 1];
    /* interior pointers count; one past the end does not (except for empty blocks) */
    return v < b->end || v == b->start ? b : NULL;
}

static void push_blk(size_t i)
{
    if (g_nstack == g_stack_cap) {
        g_stack_cap = g_stack_cap ? g_stack_cap * 2 : 4096;
        g_stack = __real_realloc(g_stack, g_stack_cap * sizeof(*g_stack));
    }
    g_stack[g_nstack++] = i;
}

__attribute__((no_sanitize_address)) static void scan_range(uintptr_t lo, uintptr_t hi)
{
    lo = (lo + sizeof(void *) - 1) & ~(uintptr_t)(sizeof(void *) - 1);
    for (uintptr_t a = lo; a + sizeof(void *) <= hi; a += sizeof(void *)) {
        uintptr_t v = *(const uintptr_t *)a;
        struct blk *b = blk_of(v);
        if (b && !b->marked) {
            b->marked = 1;
            push_blk((size_t)(b - g_blks));
        }
    }
}

static void scan_root(uintptr_t lo, uintptr_t hi)
{
    /* Our own tables point at every block: never roots. */
    const uintptr_t skip[][2] = {
        {(uintptr_t)g_table, (uintptr_t)(g_table + TABLE_SIZE)},
        {(uintptr_t)&g_blks, (uintptr_t)(&g_blks + 1)},
        {(uintptr_t)&g_stack, (uintptr_t)(&g_stack + 1)},
        {(uintptr_t)&g_sites, (uintptr_t)(&g_sites + 1)},
    };
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (skip[i][0] < hi && skip[i][1] > lo) {
            if (skip[i][0] > lo)
                scan_root(lo, skip[i][0]);
            if (skip[i][1] < hi)
                scan_root(skip[i][1], hi);
            return;
        }
    scan_range(lo, hi);
}

static int phdr_roots(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W))
            scan_root(info->dlpi_addr + ph->p_vaddr, info->dlpi_addr + ph->p_vaddr + ph->p_memsz);
    }
    return 0;
}

/* Blocks of epoch ep still live: *leaks (unreachable) and *cached (reachable). Reports
 * up to 12 leaks. Call with no other thread running. */
static void leaks_of(unsigned ep, int do_report, size_t *leaks, size_t *cached)
{
    *leaks = *cached = 0;
    pthread_mutex_lock(&g_mu);
    size_t candidates = 0;
    for (size_t i = 0; i < TABLE_SIZE; i++)
        candidates += g_table[i].p != NULL && g_table[i].epoch == ep;
    if (candidates == 0) {
        pthread_mutex_unlock(&g_mu);
        return;
    }
    g_blks = __real_malloc((g_live + 1) * sizeof(*g_blks));
    g_nblks = 0;
    for (size_t i = 0; i < TABLE_SIZE; i++)
        if (g_table[i].p != NULL)
            g_blks[g_nblks++] = (struct blk){(uintptr_t)g_table[i].p,
                                             (uintptr_t)g_table[i].p + g_table[i].size, i, 0};
    qsort(g_blks, g_nblks, sizeof(*g_blks), cmp_blk);
    g_nstack = 0;
    dl_iterate_phdr(phdr_roots, NULL);
    while (g_nstack > 0) {
        const struct blk *b = &g_blks[g_stack[--g_nstack]];
        scan_range(b->start, b->end);
    }
    size_t n = 0;
    for (size_t k = 0; k < g_nblks; k++) {
        const struct slot *s = &g_table[g_blks[k].slot];
        if (s->epoch != ep)
            continue;
        if (g_blks[k].marked) {
            ++*cached;
            continue;
        }
        if (do_report && n < 12) {
            if (s->file != NULL) {
                report("    leaked: allocation %lu (%zu bytes), OpenSSL %s:%d\n", s->seq,
                       s->size, s->file, s->line);
            } else {
                Dl_info info;
                if (dladdr(s->caller, &info) && info.dli_fname)
                    report("    leaked: allocation %lu (%zu bytes), library malloc from "
                           "%s+0x%lx\n", s->seq, s->size, info.dli_fname,
                           (unsigned long)((uintptr_t)s->caller - (uintptr_t)info.dli_fbase));
                else
                    report("    leaked: allocation %lu (%zu bytes), library malloc from %p\n",
                           s->seq, s->size, s->caller);
            }
        }
        n++;
    }
    *leaks = n;
    __real_free(g_blks);
    g_blks = NULL;
    g_nblks = 0;
    pthread_mutex_unlock(&g_mu);
}

static unsigned g_next_epoch = 1;

/* One scenario run, counted as a new epoch, with allocation fail_at failing (0: none).
 * Returns the number of allocations counted. */
static unsigned long run_counted(const struct scenario *sc, unsigned long fail_at,
                                 struct run *r, size_t *leaked, int report_leaks)
{
    memset(r, 0, sizeof *r);
    unsigned ep = g_next_epoch++;
    atomic_store(&g_injected, 0);
    atomic_store(&g_seq, 0);
    g_fail_at = fail_at;
    ERR_clear_error();
    atomic_store(&g_epoch, ep);
    int64_t t0 = now_ms();
    sc->fn(r);
    /* This thread's OpenSSL state (error queue with its reusable message buffers, DRBGs)
     * is a cache, not a leak: drop it inside the epoch, as a thread's exit would. */
    OPENSSL_thread_stop();
    atomic_store(&g_epoch, 0);
    g_fail_at = 0;
    unsigned long counted = atomic_load(&g_seq);
    size_t cached = 0;
    leaks_of(ep, report_leaks, leaked, &cached);
    if (g_verbose > 1)
        fprintf(stderr, "run %s fail_at=%lu: %lu allocations, %zu leaked, %zu cached, "
                "%lld ms\n", sc->name, fail_at, counted, *leaked, cached,
                (long long)(now_ms() - t0));
    return counted;
}

/* The baseline of a scenario (from the parent's clean run). */
struct baseline {
    unsigned long allocs;
    char proto[32], cipher[64];
};


/* In the child: run with allocation n failing, then a clean run. */
/* Outcomes that OpenSSL itself causes and the library cannot tell apart from success.
 * Matched on the OpenSSL function that the library called (the outermost OpenSSL frame of
 * the failed allocation); the run then counts as "known", not as failed. */
static const struct known {
    const char *outcome;  /* "degraded" */
    const char *entry;    /* exported OpenSSL function the library called */
    const char *why;
} g_known[] = {
    {"degraded", "SSL_CTX_new_ex",
     "OpenSSL 3.0 SSL_CTX_new() takes an allocation failure while probing signature "
     "algorithms (ssl_setup_sig_algs) or groups for 'algorithm unavailable' and succeeds "
     "with fewer of them (e.g. no TLS 1.3 signature for the key: TLS 1.2 is negotiated)"},
    {"degraded", "d2i_SSL_SESSION",
     "OpenSSL 3.0's server decodes the session inside a ticket with d2i_SSL_SESSION() "
     "during the handshake; when that runs out of memory it treats the ticket as one it "
     "cannot use and does a full handshake instead (as RFC 8446 allows), with no error the "
     "library could see"},
};

/* The OpenSSL function the library called when allocation n failed, or NULL. */
static const char *injected_entry(void)
{
    const char *entry = NULL;
    for (int i = first_caller_frame(g_inject_bt, g_inject_depth, 2); i < g_inject_depth; i++) {
        if (in_exe(g_inject_bt[i]))
            return entry;
        Dl_info info;
        if (dladdr(g_inject_bt[i], &info) && info.dli_sname)
            entry = info.dli_sname;
    }
    return NULL;
}

static const struct known *known_outcome(const char *outcome)
{
    const char *entry = injected_entry();
    for (size_t i = 0; entry && i < sizeof g_known / sizeof g_known[0]; i++)
        if (strcmp(g_known[i].outcome, outcome) == 0 && strcmp(g_known[i].entry, entry) == 0)
            return &g_known[i];
    return NULL;
}

enum { CHILD_PASS = 0, CHILD_FAIL = 1, CHILD_DONE = 3, CHILD_KNOWN = 4 };

/* In the child: run with allocation n failing, then a clean run. */
static int child_main(const struct scenario *sc, const struct baseline *base, unsigned long n)
{
    struct run r;
    size_t leaked = 0;
    alarm(60); /* a hang ends as SIGALRM, reported by the parent */
    run_counted(sc, n, &r, &leaked, 1);
    unsigned long inj = atomic_load(&g_injected);
    int bad = r.failed, known = 0;
    if (leaked) {
        report("  FAIL: %zu allocation(s) made during the scenario are still live and "
               "unreachable (leak)\n", leaked);
        bad = 1;
    }
    if (atomic_load(&g_mismatched)) {
        report("  FAIL: %lu free(s) through the wrong family: first: %s\n",
               atomic_load(&g_mismatched), g_mismatch_text);
        bad = 1;
    }
    if (!r.api_failed && !r.failed && (!r.echo_ok || strcmp(r.proto, base->proto) != 0 ||
                                      strcmp(r.cipher, base->cipher) != 0)) {
        const struct known *k = known_outcome("degraded");
        report("  %s: no call reported an error, yet the session was not the same: "
               "echo %s, %s %s (expected %s %s)\n", k ? "KNOWN" : "FAIL",
               r.echo_ok ? "ok" : "missing", r.proto, r.cipher, base->proto, base->cipher);
        if (k) {
            report("  (%s)\n", k->why);
            known = 1;
        } else {
            bad = 1;
        }
    }
    const char *entry = injected_entry();
    if (inj && entry)
        report("  injected under %s\n", entry);
    if (bad || g_verbose)
        report_injection();
    /* --recheck: the same process must still work without failures (no sticky broken
     * state). Off by default: after the parent's warm-up every one-time initialisation is
     * done, so this rarely finds anything and doubles the time. */
    struct run again = {.echo_ok = 1};
    size_t leaked2 = 0;
    if (g_recheck)
        run_counted(sc, 0, &again, &leaked2, 0);
    if (again.failed || again.api_failed || !again.echo_ok || leaked2) {
        report("  FAIL: after the injected failure, a clean run in the same process fails: "
               "%s: %s: %s (%zu leaked)\n", again.first_call[0] ? again.first_call : "(check)",
               tlskit_error_name(again.first_code), again.first_msg, leaked2);
        if (!bad)
            report_injection();
        bad = 1;
    }
    /* Summary line for the parent, tab-separated: state, first failing call, class,
     * message. */
    char summary[600];
    snprintf(summary, sizeof summary, "@\t%s\t%s\t%d\t%s", inj ? "injected" : "none",
             r.api_failed ? r.first_call : (r.echo_ok ? "-absorbed-" : "-"),
             r.api_failed ? r.first_code : 0, r.api_failed ? r.first_msg : "");
    for (char *p = summary; *p; p++)
        if (*p == '\n')
            *p = ' ';
    (void)!write(g_report_fd, summary, strlen(summary));
    (void)!write(g_report_fd, "\n", 1);
    (void)!write(g_report_fd, g_report, g_report_len);
    if (bad)
        return CHILD_FAIL;
    if (known)
        return CHILD_KNOWN;
    return inj ? CHILD_PASS : CHILD_DONE;
}

/* ---- the parent: fork per N, two at a time ---------------------------------------------- */

struct job {
    pid_t pid;
    int fd;
    unsigned long n;
    char *out;
    size_t len, cap;
    int64_t started;
};

struct tally {
    unsigned long passed, failed, absorbed, known;
    /* first failing call -> class histogram (small, linear) */
    struct { char call[96]; int code; unsigned long count; char sample[200]; } kinds[64];
    int nkinds;
};

static void tally_kind(struct tally *t, const char *call, int code, const char *msg)
{
    for (int i = 0; i < t->nkinds; i++)
        if (t->kinds[i].code == code && strcmp(t->kinds[i].call, call) == 0) {
            t->kinds[i].count++;
            return;
        }
    if (t->nkinds < 64) {
        snprintf(t->kinds[t->nkinds].call, sizeof t->kinds[0].call, "%s", call);
        t->kinds[t->nkinds].code = code;
        t->kinds[t->nkinds].count = 1;
        snprintf(t->kinds[t->nkinds].sample, sizeof t->kinds[0].sample, "%s", msg);
        t->nkinds++;
    }
}

static void job_read(struct job *j)
{
    for (;;) {
        if (j->cap - j->len < 4096) {
            j->cap = j->cap ? j->cap * 2 : 16384;
            j->out = __real_realloc(j->out, j->cap);
        }
        ssize_t n = read(j->fd, j->out + j->len, j->cap - j->len - 1);
        if (n > 0) {
            j->len += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        break;
    }
    j->out[j->len] = '\0';
}

static int start_job(struct job *j, const struct scenario *sc, const struct baseline *base,
                     unsigned long n)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        g_report_fd = p[1];
        int rc = child_main(sc, base, n);
        _exit(rc); /* no atexit handlers: OpenSSL's cleanup is the parent's */
    }
    close(p[1]);
    *j = (struct job){.pid = pid, .fd = p[0], .n = n, .started = now_ms()};
    fcntl(j->fd, F_SETFL, O_NONBLOCK);
    return 0;
}

/* Returns 1 when the child found no allocation to fail (N beyond the scenario). */
static int finish_job(struct job *j, const struct scenario *sc, struct tally *t)
{
    int status = 0;
    fcntl(j->fd, F_SETFL, 0);
    job_read(j);
    while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR)
        ;
    close(j->fd);
    int done = 0;
    char empty[1] = "";
    char *body = j->out ? j->out : empty;
    char *nl = strchr(body, '\n');
    char state[16] = "", call[96] = "", msgbuf[300] = "";
    int code = 0;
    if (strncmp(body, "@\t", 2) == 0 && nl) {
        *nl = '\0';
        char *save = NULL;
        char *f = strtok_r(body + 2, "\t", &save);
        if (f)
            snprintf(state, sizeof state, "%s", f);
        if ((f = strtok_r(NULL, "\t", &save)))
            snprintf(call, sizeof call, "%s", f);
        if ((f = strtok_r(NULL, "\t", &save)))
            code = atoi(f);
        if ((f = strtok_r(NULL, "", &save)))
            snprintf(msgbuf, sizeof msgbuf, "%s", f);
        body = nl + 1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_DONE) {
        done = 1;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_KNOWN) {
        t->passed++;
        t->known++;
        printf("KNOWN %s N=%lu (OpenSSL, not counted as a failure):\n%s", sc->name, j->n,
               body);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_PASS) {
        t->passed++;
        if (strcmp(call, "-absorbed-") == 0)
            t->absorbed++;
        else if (call[0] && strcmp(call, "-") != 0)
            tally_kind(t, call, code, msgbuf);
        if (g_verbose)
            printf("ok   %s N=%lu: %s %s %s\n%s", sc->name, j->n, call,
                   code ? tlskit_error_name(code) : "", msgbuf, body);
    } else {
        t->failed++;
        if (WIFSIGNALED(status))
            printf("FAIL %s N=%lu: killed by signal %d (%s)%s\n", sc->name, j->n,
                   WTERMSIG(status), strsignal(WTERMSIG(status)),
                   WTERMSIG(status) == SIGALRM ? ": hang" : ": crash");
        else if (state[0] == '\0')
            printf("FAIL %s N=%lu: exit %d before reporting (a sanitizer report on stderr "
                   "above?)\n", sc->name, j->n, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        else
            printf("FAIL %s N=%lu: exit %d; first error: %s %s %s\n", sc->name, j->n,
                   WIFEXITED(status) ? WEXITSTATUS(status) : -1, call,
                   code ? tlskit_error_name(code) : "", msgbuf);
        fputs(body, stdout);
    }
    __real_free(j->out);
    j->out = NULL;
    return done;
}

static const struct scenario *find_scenario(const char *name)
{
    for (size_t i = 0; i < NSCEN; i++)
        if (strcmp(g_scenarios[i].name, name) == 0)
            return &g_scenarios[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: alloc_failure --certs DIR [--scenario NAME]... [--uses 1|2|3 | --all\n"
               "                     | --from N --to N --step K] [--recheck] [--dry-run] [--jobs J]\n"
               "                     [-v]\n"
               "Scenarios:");
    for (size_t i = 0; i < NSCEN; i++)
        fprintf(f, " %s", g_scenarios[i].name);
    fprintf(f, " (default: all)\n");
}

static int cmp_ulong(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return x < y ? -1 : x > y;
}

struct site_seq {
    uint64_t site;
    unsigned long seq;
};

static int cmp_site(const void *a, const void *b)
{
    const struct site_seq *x = a, *y = b;
    if (x->site != y->site)
        return x->site < y->site ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Allocation numbers to fail, chosen by site from the recorded clean run. */
static unsigned long *distinct_sites(unsigned long allocs, size_t *count)
{
    struct site_seq *v = __real_malloc((allocs + 1) * sizeof(*v));
    unsigned long *ns = __real_malloc((allocs + 2) * sizeof(*ns));
    size_t n = 0, k = 0;
    for (unsigned long i = 1; i <= allocs && i < g_sites_cap; i++)
        v[n++] = (struct site_seq){g_sites[i], i};
    qsort(v, n, sizeof(*v), cmp_site);
    /* Of each site: the first, second (g_uses >= 2) and last (g_uses >= 3) use. The
     * second catches loops (the probe for a next certificate after the first one
     * parsed), the last a site used again later in another state (the client's copy of
     * a server-side call). */
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && v[i].site == v[start].site)
            continue;
        size_t len = i - start;
        ns[k++] = v[start].seq;
        if (len >= 2 && g_uses >= 2)
            ns[k++] = v[start + 1].seq;
        if (len >= 3 && g_uses >= 3)
            ns[k++] = v[i - 1].seq;
        start = i;
    }
    __real_free(v);
    qsort(ns, k, sizeof(*ns), cmp_ulong);
    *count = k;
    return ns;
}

/* Run children for the listed N (ascending), `jobs` at a time; with `until_done`, go on
 * past the list until a child finds nothing left to fail: *last is that N (0: none). */
static void sweep(const struct scenario *sc, const struct baseline *base, const unsigned long *ns,
                  size_t count, int until_done, int jobs, struct tally *t, unsigned long *last)
{
    struct job running[16];
    int nrun = 0, done = 0;
    size_t next = 0;
    /* Past the list: straight to the end of the clean run (then on, one by one, for a
     * threaded scenario whose count varies a little). */
    unsigned long beyond = count && ns[count - 1] > base->allocs ? ns[count - 1] : base->allocs;
    *last = 0;
    while (nrun > 0 || !done) {
        while (!done && nrun < jobs) {
            unsigned long n;
            if (next < count)
                n = ns[next++];
            else if (until_done && beyond < base->allocs + 1000)
                n = ++beyond;
            else {
                done = 1;
                break;
            }
            if (start_job(&running[nrun], sc, base, n) != 0) {
                printf("FAIL %s: fork: %s\n", sc->name, strerror(errno));
                t->failed++;
                done = 1;
                break;
            }
            nrun++;
        }
        if (nrun == 0)
            break;
        /* Wait for the oldest child (results stay in order of N). */
        struct job j = running[0];
        memmove(running, running + 1, sizeof(running[0]) * (size_t)(nrun - 1));
        nrun--;
        if (finish_job(&j, sc, t)) {
            done = 1;
            if (!*last || j.n < *last)
                *last = j.n; /* the first N with nothing left to fail */
        }
    }
}

int main(int argc, char **argv)
{
    /* Before anything allocates through OpenSSL. */
    if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free)) {
        fprintf(stderr, "alloc_failure: CRYPTO_set_mem_functions failed (OpenSSL already "
                        "allocated)\n");
        return 1;
    }
    Dl_info self;
    if (dladdr((void *)(uintptr_t)&main, &self))
        g_exe_base = self.dli_fbase;
    dl_iterate_phdr(phdr_exe, NULL);

    const struct scenario *chosen[NSCEN];
    size_t nchosen = 0;
    unsigned long from = 1, to = 0, step = 1;
    int jobs = 2, all = 0, dry = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-v") == 0) {
            g_verbose++;
        } else if (strcmp(a, "--all") == 0) {
            all = 1;
        } else if (strcmp(a, "--recheck") == 0) {
            g_recheck = 1;
        } else if (strcmp(a, "--dry-run") == 0) {
            dry = 1;
        } else if (v && strcmp(a, "--uses") == 0) {
            g_uses = atoi(v);
            if (g_uses < 1 || g_uses > 3) {
                fprintf(stderr, "alloc_failure: --uses 1 (first), 2 (first two) or 3 (and "
                                "last)\n");
                return 2;
            }
            i++;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (v && strcmp(a, "--certs") == 0) {
            g_certs = v;
            i++;
        } else if (v && strcmp(a, "--scenario") == 0) {
            const struct scenario *sc = find_scenario(v);
            if (!sc || nchosen == NSCEN) {
                fprintf(stderr, "alloc_failure: unknown scenario '%s'\n", v);
                return 2;
            }
            chosen[nchosen++] = sc;
            i++;
        } else if (v && strcmp(a, "--from") == 0) {
            from = strtoul(v, NULL, 10);
            all = 1;
            i++;
        } else if (v && strcmp(a, "--to") == 0) {
            to = strtoul(v, NULL, 10);
            all = 1;
            i++;
        } else if (v && strcmp(a, "--step") == 0) {
            step = strtoul(v, NULL, 10);
            all = 1;
            i++;
        } else if (v && strcmp(a, "--jobs") == 0) {
            jobs = atoi(v);
            i++;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (from < 1 || step < 1 || jobs < 1 || jobs > 16 || (to && to < from)) {
        usage(stderr);
        return 2;
    }
    if (nchosen == 0)
        for (size_t i = 0; i < NSCEN; i++)
            chosen[nchosen++] = &g_scenarios[i];
    signal(SIGPIPE, SIG_IGN); /* the apps' habit; the library must not need it */
    if (!server_pins()[0]) {
        fprintf(stderr, "alloc_failure: cannot read the key of %s\n", cert(6, "server.crt"));
        return 1;
    }
    if (make_crl() != 0) {
        fprintf(stderr, "alloc_failure: cannot make a CRL from %s\n", cert(6, "ca.crt"));
        return 1;
    }
    if (make_ocsp() != 0) {
        fprintf(stderr, "alloc_failure: cannot make an OCSP response from %s\n",
                cert(6, "ca.crt"));
        return 1;
    }

    struct tally t = {0};
    int setup_failed = 0;
    for (size_t s = 0; s < nchosen; s++) {
        const struct scenario *sc = chosen[s];
        struct baseline base = {0};
        struct run r;
        size_t leaked = 0;
        /* Twice: the first run does OpenSSL's one-time set-up; the second is the baseline
         * (its allocation sites recorded) and must leave nothing behind. */
        run_counted(sc, 0, &r, &leaked, 0);
        g_record = 1;
        base.allocs = run_counted(sc, 0, &r, &leaked, 1);
        g_record = 0;
        if (r.failed || r.api_failed || !r.echo_ok || leaked) {
            printf("FAIL %s: the scenario does not pass without injected failures "
                   "(%s: %s: %s; %zu leaked)\n%s", sc->name, r.first_call,
                   tlskit_error_name(r.first_code), r.first_msg, leaked, g_report);
            g_report_len = 0;
            g_report[0] = '\0';
            setup_failed = 1;
            continue;
        }
        g_report_len = 0;
        g_report[0] = '\0';
        snprintf(base.proto, sizeof base.proto, "%s", r.proto);
        snprintf(base.cipher, sizeof base.cipher, "%s", r.cipher);

        unsigned long *ns;
        size_t count;
        int until_done;
        if (all) {
            unsigned long hi = to ? to : base.allocs;
            count = hi >= from ? (hi - from) / step + 1 : 0;
            ns = __real_malloc((count + 1) * sizeof(*ns));
            for (size_t i = 0; i < count; i++)
                ns[i] = from + i * step;
            until_done = to == 0;
        } else {
            ns = distinct_sites(base.allocs, &count);
            until_done = 1;
        }
        printf("%s: %lu allocations per clean run (%s %s); failing %s: %zu runs\n", sc->name,
               base.allocs, base.proto, base.cipher,
               all ? (step > 1 ? "every Nth" : "each one in turn")
               : g_uses == 1 ? "the 1st use of each allocation site"
               : g_uses == 2 ? "the 1st and 2nd use of each allocation site"
                             : "the 1st, 2nd and last use of each allocation site",
               count);
        fflush(stdout);

        if (dry) {
            __real_free(ns);
            continue;
        }
        unsigned long before_pass = t.passed, before_fail = t.failed, last = 0;
        int64_t t0 = now_ms();
        sweep(sc, &base, ns, count, until_done, jobs, &t, &last);
        __real_free(ns);
        printf("%s: %lu passed, %lu failed, %.1f s%s\n", sc->name, t.passed - before_pass,
               t.failed - before_fail, (double)(now_ms() - t0) / 1000.0,
               until_done ? (last ? "; ended by a run that completed without reaching N"
                                  : "; NO run completed without an injected failure")
                          : "");
        if (last)
            printf("%s: N=%lu completed with no allocation failed\n", sc->name, last);
        if (until_done && !last) {
            t.failed++;
        }
        fflush(stdout);
    }

    if (dry)
        return setup_failed;
    if (t.nkinds) {
        printf("how injected failures were reported (first failing call, class, runs, "
               "sample message):\n");
        for (int i = 0; i < t.nkinds; i++)
            printf("  %-44s %-17s %6lu  %s\n", t.kinds[i].call,
                   tlskit_error_name(t.kinds[i].code), t.kinds[i].count, t.kinds[i].sample);
    }
    printf("absorbed (an allocation failed, yet the session completed unchanged): %lu\n",
           t.absorbed);
    printf("known OpenSSL behaviour (passed, listed above as KNOWN): %lu\n", t.known);
    if (setup_failed)
        t.failed++;
    printf("%lu passed, %lu failed\n", t.passed, t.failed);
    return t.failed ? 1 : 0;
}
