/* SPDX-License-Identifier: MIT */
/*
 * Hostile clients against the built tlsserver (event model, the default; one worker).
 *
 * Each test starts one tlsserver (--handshake-timeout 1) and attacks it over and over with
 * one kind of bad client: garbage, stalls, resets, obsolete or crafted hellos, weak cipher
 * offers, TLS-level abuse, clients that never read or vanish, bad mTLS certificates.
 * Raw bytes are crafted here by hand; version, cipher, group and renegotiation abuse uses
 * OpenSSL's client API directly, so the attacker never goes through the code under test.
 *
 * After every attack a probe (an in-process tlskit client) must complete an echo within one
 * second. At the end the server must be back to its baseline: exactly as many descriptors
 * as before the attacks (polled: it closes asynchronously) and a resident size within a
 * small margin of allocator noise. It must have logged one line per attacking connection
 * with the expected error class, still be alive, and exit 0 on SIGTERM (a sanitizer build
 * exits non-zero when LeakSanitizer finds a leak at exit).
 *
 * By hand: TLSKIT_HOSTILE_ROUNDS=N multiplies the rounds (a soak run, with the resident
 * size logged after each round under --verbose); TLSKIT_HOSTILE_LOG=1 logs the server's
 * stderr under --verbose.
 */
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

TK_SUITE(hostile_clients);

#define PROBE_LIMIT_MS 1000 /* what the issue asks: a probe is answered within 1 s */
#define SETTLE_MS 5000      /* how long the server may take to close what an attack left */
#define RSS_MARGIN_KB 2048  /* allocator noise; a per-connection leak exceeds it quickly */
#define HS_TIMEOUT_MS 1000  /* --handshake-timeout 1 */
#define WARMUP_ROUNDS 2
/* A stalled connection must be cut off by the 1 s handshake deadline; the slack covers the
 * engine's 50 ms sweep and a loaded two-core machine running sanitizer builds. */
#define CUTOFF_MS 3000

/* ---------------------------------------------------------------------------------------
 * The server under attack
 * ------------------------------------------------------------------------------------- */

struct victim {
    struct tk_server s;
    tlskit_config *probe_cfg;
    int base_fds;
    long base_rss_kb;
    size_t probes;       /* probe connections made (each logs one "ok" line) */
    size_t attack_conns; /* attacking connections made (each logs one line) */
    int64_t worst_probe_ms;
};

static int proc_fd_count(pid_t pid, char *list, size_t listlen)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    size_t used = 0;
    if (list != NULL && listlen > 0)
        list[0] = '\0';
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        n++;
        if (list != NULL && used + 96 < listlen) {
            char link[320], target[80];
            snprintf(link, sizeof link, "%s/%s", path, e->d_name);
            ssize_t k = readlink(link, target, sizeof target - 1);
            target[k > 0 ? k : 0] = '\0';
            int w = snprintf(list + used, listlen - used, " %s->%s", e->d_name, target);
            if (w > 0)
                used += (size_t)w;
        }
    }
    closedir(d);
    return n;
}

static long proc_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

/* Whether SIGPIPE is pending for the process or any of its threads. tlsserver's I/O
 * threads (engine workers) block every signal, so a SIGPIPE raised by a send() without
 * MSG_NOSIGNAL would not kill the server: it would stay pending on the worker thread.
 * This is how the "never SIGPIPE" contract stays observable from outside. */
static int sigpipe_pending(pid_t pid, char *where, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char status[96], line[256];
        int tid = atoi(e->d_name);
        snprintf(status, sizeof status, "/proc/%d/task/%d/status", (int)pid, tid);
        FILE *f = fopen(status, "r");
        if (f == NULL)
            continue;
        while (fgets(line, sizeof line, f) != NULL) {
            if (strncmp(line, "SigPnd:", 7) != 0 && strncmp(line, "ShdPnd:", 7) != 0)
                continue;
            unsigned long long mask = strtoull(line + 7, NULL, 16);
            if (mask & (1ull << (SIGPIPE - 1))) {
                snprintf(where, len, "thread %d, %.6s", tid, line);
                found = 1;
            }
        }
        fclose(f);
    }
    closedir(d);
    return found;
}

/* Fails the test, naming the signal, if the server process has died or has a SIGPIPE
 * pending. Uses WNOWAIT so a live server is left exactly as it was and a dead one is
 * still reaped by tk_proc_wait. */
static void assert_alive(struct victim *v, const char *what)
{
    char where[128];
    cr_assert(!sigpipe_pending(v->s.p.pid, where, sizeof where),
              "%s: tlsserver raised SIGPIPE (pending, blocked: %s): a send() without "
              "MSG_NOSIGNAL", what, where);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid(P_PID, (id_t)v->s.p.pid, &si, WEXITED | WNOHANG | WNOWAIT);
    cr_assert(r == 0, "waitid: %s", strerror(errno));
    if (si.si_pid == 0)
        return;
    if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED)
        cr_assert_fail("%s: tlsserver was killed by signal %d (%s)", what, si.si_status,
                       strsignal(si.si_status));
    cr_assert_fail("%s: tlsserver exited with status %d", what, si.si_status);
}

/* ASan keeps freed memory in a quarantine (256 MiB by default) before reusing it, so a
 * sanitizer-built server's resident size grows with every connection even without a leak.
 * A 1 MiB quarantine keeps use-after-free detection for recently freed blocks and makes the
 * resident size meaningful. Criterion runs each test in its own process, so this changes
 * the environment of this test's children only. */
static void small_asan_quarantine(void)
{
    const char *old = getenv("ASAN_OPTIONS");
    char buf[1024];
    if (old != NULL && strstr(old, "quarantine_size_mb") != NULL)
        return;
    snprintf(buf, sizeof buf, "%s%squarantine_size_mb=1", old != NULL ? old : "",
             old != NULL && *old != '\0' ? ":" : "");
    setenv("ASAN_OPTIONS", buf, 1);
}

/* One echo through a fresh TLS connection. Returns its duration in ms, or -1 (err set). */
static int64_t probe_once(struct victim *v, char *err, size_t errlen)
{
    static const char msg[] = "probe\n";
    char buf[sizeof msg];
    int64_t t0 = tk_now_ms();
    tlskit_conn *c = tlskit_conn_new(v->probe_cfg);
    cr_assert_not_null(c);
    v->probes++;
    int ok = tlskit_conn_set_servername(c, "localhost") == 0 &&
             tlskit_conn_connect(c, "127.0.0.1", v->s.portstr) == 0 &&
             tlskit_conn_handshake(c) == 0 &&
             tlskit_conn_write_all(c, msg, sizeof msg - 1) == 0;
    size_t got = 0;
    while (ok && got < sizeof msg - 1) {
        ssize_t n = tlskit_conn_read(c, buf + got, sizeof msg - 1 - got);
        if (n <= 0)
            ok = 0;
        else
            got += (size_t)n;
    }
    if (!ok)
        snprintf(err, errlen, "%s: %s", tlskit_error_name(tlskit_conn_error_code(c)),
                 tlskit_conn_error(c));
    else if (memcmp(buf, msg, sizeof msg - 1) != 0) {
        snprintf(err, errlen, "the echo differs");
        ok = 0;
    }
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    return ok ? tk_now_ms() - t0 : -1;
}

/* The liveness check: a probe started after (or during) an attack is answered
 * within one second. A single retry is allowed when the first probe was merely slow
 * (never when it failed): a sanitizer build on two cores, with another suite running in
 * parallel, can lose a few hundred ms to scheduling now and then. A server that is really
 * stuck, or serialised behind the attacker, fails both. */
static void probe(struct victim *v, const char *when)
{
    char err[512] = "";
    assert_alive(v, when);
    int64_t ms = probe_once(v, err, sizeof err);
    cr_assert_geq(ms, 0, "probe %s: %s\nserver log:\n%s", when, err, v->s.p.errbuf);
    if (ms >= PROBE_LIMIT_MS) {
        int64_t again = probe_once(v, err, sizeof err);
        cr_assert_geq(again, 0, "probe %s (retry): %s", when, err);
        cr_assert_lt(again, PROBE_LIMIT_MS,
                     "probe %s: answered after %lld ms, then %lld ms (limit %d ms)", when,
                     (long long)ms, (long long)again, PROBE_LIMIT_MS);
        ms = again;
    }
    if (ms > v->worst_probe_ms)
        v->worst_probe_ms = ms;
}

/* Wait until the server holds exactly its baseline descriptors. */
static void settle_fds(struct victim *v, const char *when)
{
    char list[2048];
    int64_t end = tk_now_ms() + SETTLE_MS;
    int n;
    while ((n = proc_fd_count(v->s.p.pid, NULL, 0)) != v->base_fds && tk_now_ms() < end)
        poll(NULL, 0, 20);
    if (n != v->base_fds) {
        proc_fd_count(v->s.p.pid, list, sizeof list);
        cr_assert_fail("%s: tlsserver holds %d descriptors %d s later, %d at the baseline:%s",
                       when, n, SETTLE_MS / 1000, v->base_fds, list);
    }
}

static void victim_start(struct victim *v, int mtls)
{
    memset(v, 0, sizeof *v);
    /* Writes to a peer that is gone must fail with EPIPE, in the attacker (this process)
     * as much as in the server; OpenSSL's own socket BIO, used by the attackers here,
     * writes without MSG_NOSIGNAL. tk_proc_start resets SIGPIPE for the children. */
    signal(SIGPIPE, SIG_IGN);
    small_asan_quarantine();
    /* One worker: every probe then shares the event loop with every attacking connection,
     * so a worker that blocks or spins on an attacker fails the probe every time, not only
     * when the kernel's SO_REUSEPORT hash happens to put both on the same worker. */
    const char *plain[] = {"--handshake-timeout", "1", "--workers", "1", NULL};
    /* mtls 2: also an allow-list that admits the probes' client.crt (cn:, no SANs). */
    const char *withca[] = {"--handshake-timeout", "1", "--workers", "1", "--ca",
                            tk_cert("ca.crt"), "--verify-client", "--allow-client",
                            "cn:tlskit-client", NULL};
    if (mtls == 1)
        withca[7] = NULL;
    tk_server_start(&v->s, "server", "127.0.0.1", mtls ? withca : plain);

    v->probe_cfg = tk_client_config("ca.crt");
    if (mtls)
        tk_config_keypair(v->probe_cfg, "client");
    static const int which[] = {TLSKIT_TIMEOUT_CONNECT, TLSKIT_TIMEOUT_HANDSHAKE,
                                TLSKIT_TIMEOUT_READ, TLSKIT_TIMEOUT_WRITE};
    for (size_t i = 0; i < sizeof which / sizeof which[0]; i++)
        cr_assert_eq(tlskit_config_set_timeout(v->probe_cfg, which[i], 5000), 0);

    /* Warm-up: the first handshakes initialise OpenSSL's lazily built tables, the
     * allocator's arenas and the engine's workers. */
    for (int i = 0; i < 6; i++)
        probe(v, "during warm-up");
    v->worst_probe_ms = 0;
    /* Every probe has closed on our side; wait for the server to close them too: it logs
     * each one just before closing the socket, then the count must hold still. */
    cr_assert(tk_proc_wait_for_n(&v->s.p, 2, "tlsserver: conn ", v->probes, 10000),
              "warm-up probes not logged: %s", v->s.p.errbuf);
    int64_t end = tk_now_ms() + SETTLE_MS;
    int prev = -1, n;
    while ((n = proc_fd_count(v->s.p.pid, NULL, 0)) != prev && tk_now_ms() < end) {
        prev = n;
        poll(NULL, 0, 100);
    }
    v->base_fds = n;
}

/* Everything the attacking connections logged: each ended with one line, and every line
 * of an attacking connection matches `re` (probes log " ok" lines, counted apart). */
static void check_log(struct victim *v, const char *name, const char *re)
{
    size_t want = v->probes + v->attack_conns;
    int all = tk_proc_wait_for_n(&v->s.p, 2, "tlsserver: conn ", want, 10000);
    cr_expect(all, "%s: expected %zu connection lines (%zu probes, %zu attacking), log:\n%s",
              name, want, v->probes, v->attack_conns, v->s.p.errbuf);
    if (re == NULL)
        return;
    size_t matched = 0, lines = 0, used = 0;
    char others[2048] = "";
    char *copy = strdup(v->s.p.errbuf);
    cr_assert_not_null(copy);
    char *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        if (strncmp(l, "tlsserver: conn ", 16) != 0)
            continue;
        lines++;
        if (tk_matches(l, re)) {
            matched++;
        } else if (!tk_matches(l, " in=6 out=6 .* ok$") && used < sizeof others) {
            int w = snprintf(others + used, sizeof others - used, "\n  %s", l);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    free(copy);
    cr_expect_eq(matched, v->attack_conns,
                 "%s: %zu of %zu attacking connections logged a line matching /%s/ "
                 "(%zu lines in all); the others:%s",
                 name, matched, v->attack_conns, re, lines, others);
}

static void victim_stop(struct victim *v)
{
    assert_alive(v, "at the end");
    tlskit_config_free(v->probe_cfg);
    v->probe_cfg = NULL;
    tk_server_stop(&v->s);
}

/* ---------------------------------------------------------------------------------------
 * The attack table and its runner
 * ------------------------------------------------------------------------------------- */

struct attack {
    const char *name;
    void (*run)(struct victim *v); /* one round; adds its connections to attack_conns */
    int rounds;                    /* measured rounds, after WARMUP_ROUNDS more */
    int mtls;                      /* server with --ca ca.crt --verify-client (2: and
                                    * --allow-client cn:tlskit-client) */
    const char *log_re;            /* every attacking connection's log line; NULL: any */
};

static void run_attack(const struct attack *a)
{
    struct victim v;
    victim_start(&v, a->mtls);
    char when[128];

    /* Warm-up rounds first, so that what an attack type makes the server allocate once
     * (OpenSSL's error strings, a cipher's tables, the allocator growing its arena to the
     * attack's peak, e.g. a never-reading client's 1 MiB of queued output) is in the
     * baseline; what is left after many more rounds is what each round leaks. */
    for (int i = 0; i < WARMUP_ROUNDS; i++) {
        a->run(&v);
        snprintf(when, sizeof when, "after %s (warm-up round %d)", a->name, i + 1);
        probe(&v, when);
    }
    settle_fds(&v, when);
    v.base_rss_kb = proc_rss_kb(v.s.p.pid);
    cr_assert_gt(v.base_rss_kb, 0);

    /* TLSKIT_HOSTILE_ROUNDS=N multiplies the rounds, for a soak run by hand. */
    const char *env = getenv("TLSKIT_HOSTILE_ROUNDS");
    int rounds = a->rounds * (env != NULL && atoi(env) > 0 ? atoi(env) : 1);
    for (int i = 0; i < rounds; i++) {
        a->run(&v);
        snprintf(when, sizeof when, "after %s round %d", a->name, i + 1);
        probe(&v, when);
        settle_fds(&v, when);
        if (env != NULL)
            cr_log_info("%s round %d: resident %ld KiB", a->name, i + 1,
                        proc_rss_kb(v.s.p.pid));
    }
    snprintf(when, sizeof when, "after %d rounds of %s", rounds, a->name);
    settle_fds(&v, when);
    long rss = proc_rss_kb(v.s.p.pid);
    cr_expect_leq(rss, v.base_rss_kb + RSS_MARGIN_KB,
                  "%s: resident size grew from %ld KiB to %ld KiB (margin %d KiB)", when,
                  v.base_rss_kb, rss, RSS_MARGIN_KB);
    check_log(&v, a->name, a->log_re);
    cr_log_info("%s: %zu attacking connections, %zu probes (slowest after warm-up %lld ms), "
                "%d descriptors, resident %ld KiB -> %ld KiB", a->name, v.attack_conns,
                v.probes, (long long)v.worst_probe_ms, v.base_fds, v.base_rss_kb, rss);
    if (getenv("TLSKIT_HOSTILE_LOG") != NULL)
        cr_log_info("%s: server log:\n%s", a->name, v.s.p.errbuf);
    victim_stop(&v);
}

#define HOSTILE(name_, run_, rounds_, mtls_, re_)                                        \
    TK_TEST(hostile_clients, name_)                                                     \
    {                                                                                   \
        static const struct attack a = {#name_, run_, rounds_, mtls_, re_};             \
        run_attack(&a);                                                                 \
    }

#define LOG_RE(cls) "^tlsserver: conn 127\\.0\\.0\\.1:[0-9]+ proto=- cipher=- .* error=" cls ": "
#define LOG_PROTOCOL LOG_RE("TLSKIT_E_PROTOCOL")
#define LOG_TIMEOUT LOG_RE("TLSKIT_E_TIMEOUT")

/* ---------------------------------------------------------------------------------------
 * Raw bytes
 * ------------------------------------------------------------------------------------- */

static int attack_connect(struct victim *v)
{
    v->attack_conns++;
    return tk_tcp_connect("127.0.0.1", v->s.port);
}

/* Send as much as the server takes; it may close or reset half-way (that is the point). */
static size_t send_some(int fd, const void *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, (const char *)data + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    return off;
}

/* Close with a TCP reset instead of a FIN. */
static void rst_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

struct reply {
    unsigned char head[64]; /* the first bytes the server sent */
    size_t len, total;
    int closed;             /* EOF or reset seen */
    int64_t ms;             /* until then */
};

/* Read what the server sends until it closes or timeout_ms passes. */
static void read_until_close(int fd, int timeout_ms, struct reply *r)
{
    memset(r, 0, sizeof *r);
    int64_t t0 = tk_now_ms(), end = t0 + timeout_ms;
    unsigned char buf[4096];
    for (;;) {
        int64_t left = end - tk_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r->closed = 1;
            break;
        }
        size_t room = sizeof r->head - r->len;
        memcpy(r->head + r->len, buf, (size_t)n < room ? (size_t)n : room);
        r->len += (size_t)n < room ? (size_t)n : room;
        r->total += (size_t)n;
    }
    r->ms = tk_now_ms() - t0;
}

static const char *hex(const unsigned char *p, size_t n)
{
    static _Thread_local char out[3 * 64 + 1];
    size_t k = 0;
    for (size_t i = 0; i < n && i < 64; i++)
        k += (size_t)snprintf(out + k, sizeof out - k, "%02x ", p[i]);
    out[k] = '\0';
    return out;
}

/* The server must answer with a fatal alert record (RFC 5246 section 7.2; 6 in RFC 8446)
 * with description `desc` (-1: any) and then close. */
static void expect_alert(const struct reply *r, int desc, const char *what)
{
    cr_expect(r->closed, "%s: the server did not close within %lld ms", what,
              (long long)r->ms);
    cr_expect(r->len >= 7 && r->head[0] == 21 && r->head[1] == 3 && r->head[3] == 0 &&
                  r->head[4] == 2 && r->head[5] == 2,
              "%s: the server's reply is not a fatal alert: %s", what, hex(r->head, r->len));
    if (desc >= 0 && r->len >= 7)
        cr_expect_eq(r->head[6], desc, "%s: alert %d, expected %d", what, r->head[6], desc);
}

/* Send bytes on a fresh connection and wait (bounded) for the server to hang up. */
static void send_and_expect_close(struct victim *v, const void *data, size_t len,
                                  struct reply *r)
{
    int fd = attack_connect(v);
    send_some(fd, data, len);
    read_until_close(fd, CUTOFF_MS, r);
    close(fd);
}

/* SSL_set_tlsext_host_name() is a macro that takes a non-const pointer. */
static void set_sni(SSL *ssl, const char *name)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", name);
    cr_assert_eq(SSL_set_tlsext_host_name(ssl, buf), 1, "SNI %s", name);
}

/* A genuine ClientHello record from OpenSSL, captured from a memory BIO. */
static size_t real_client_hello(unsigned char *out, size_t cap, int max_version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    cr_assert_not_null(ctx);
    SSL_CTX_set_max_proto_version(ctx, max_version);
    SSL *ssl = SSL_new(ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    cr_assert(ssl != NULL && rb != NULL && wb != NULL);
    SSL_set_bio(ssl, rb, wb);
    set_sni(ssl, "localhost");
    cr_assert_leq(SSL_connect(ssl), 0); /* wants the ServerHello */
    int n = BIO_read(wb, out, (int)cap);
    cr_assert_gt(n, 9, "no ClientHello captured");
    cr_assert_eq(BIO_pending(wb), 0, "ClientHello larger than %zu bytes", cap);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return (size_t)n;
}

/* A hand-made ClientHello (RFC 5246 section 7.4.1.2, RFC 8446 section 4.1.2). */
struct hello {
    uint16_t rec_version, version;
    const uint16_t *suites;
    size_t nsuites;
    const uint16_t *groups; /* supported_groups; the first also gets a key share if tls13 */
    size_t ngroups;
    int tls13;              /* supported_versions {TLS 1.3} and a key_share */
    int no_extensions;      /* SSLv3 style: no extensions block at all */
    const char *sni;        /* may contain NULs: sni_len counts */
    size_t sni_len;
    long claim;             /* >= 0: the handshake length field claims this instead */
};

struct wbuf {
    unsigned char *p;
    size_t len, cap;
};

static void put(struct wbuf *b, const void *d, size_t n)
{
    cr_assert_leq(b->len + n, b->cap, "hello buffer too small");
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void put8(struct wbuf *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}

static void put16(struct wbuf *b, unsigned v)
{
    put8(b, v >> 8);
    put8(b, v);
}

/* Length prefixes are written once the contents are known. */
static size_t open_len(struct wbuf *b, size_t width)
{
    size_t at = b->len;
    for (size_t i = 0; i < width; i++)
        put8(b, 0);
    return at;
}

static void close_len(struct wbuf *b, size_t at, size_t width)
{
    size_t n = b->len - at - width;
    for (size_t i = 0; i < width; i++)
        b->p[at + i] = (unsigned char)(n >> (8 * (width - 1 - i)));
}

static size_t build_hello(unsigned char *out, size_t cap, const struct hello *h)
{
    struct wbuf b = {out, 0, cap};
    unsigned char rnd[32];
    tk_fill_pattern(rnd, sizeof rnd, 7);

    put8(&b, 22); /* handshake record */
    put16(&b, h->rec_version);
    size_t rec = open_len(&b, 2);
    put8(&b, 1); /* client_hello */
    size_t hs = open_len(&b, 3);
    put16(&b, h->version);
    put(&b, rnd, sizeof rnd);
    put8(&b, h->tls13 ? 32 : 0); /* legacy_session_id: 32 bytes for middlebox compat */
    if (h->tls13)
        put(&b, rnd, 32);
    size_t cs = open_len(&b, 2);
    for (size_t i = 0; i < h->nsuites; i++)
        put16(&b, h->suites[i]);
    close_len(&b, cs, 2);
    put8(&b, 1); /* compression methods: null only */
    put8(&b, 0);
    if (!h->no_extensions) {
        size_t ext = open_len(&b, 2);
        if (h->sni != NULL) {
            put16(&b, 0x0000); /* server_name, RFC 6066 section 3 */
            size_t e = open_len(&b, 2);
            size_t list = open_len(&b, 2);
            put8(&b, 0); /* host_name */
            put16(&b, (unsigned)h->sni_len);
            put(&b, h->sni, h->sni_len);
            close_len(&b, list, 2);
            close_len(&b, e, 2);
        }
        if (h->ngroups > 0) {
            put16(&b, 0x000a); /* supported_groups */
            size_t e = open_len(&b, 2);
            size_t list = open_len(&b, 2);
            for (size_t i = 0; i < h->ngroups; i++)
                put16(&b, h->groups[i]);
            close_len(&b, list, 2);
            close_len(&b, e, 2);
            put16(&b, 0x000b); /* ec_point_formats: uncompressed */
            put16(&b, 2);
            put8(&b, 1);
            put8(&b, 0);
        }
        static const uint16_t sigalgs[] = {0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501};
        put16(&b, 0x000d); /* signature_algorithms */
        size_t e = open_len(&b, 2);
        size_t list = open_len(&b, 2);
        for (size_t i = 0; i < sizeof sigalgs / sizeof sigalgs[0]; i++)
            put16(&b, sigalgs[i]);
        close_len(&b, list, 2);
        close_len(&b, e, 2);
        if (h->tls13) {
            put16(&b, 0x002b); /* supported_versions: TLS 1.3 only */
            put16(&b, 3);
            put8(&b, 2);
            put16(&b, 0x0304);
            cr_assert_gt(h->ngroups, 0);
            put16(&b, 0x0033); /* key_share: 32 bytes for the first group */
            e = open_len(&b, 2);
            list = open_len(&b, 2);
            put16(&b, h->groups[0]);
            put16(&b, 32);
            put(&b, rnd, 32);
            close_len(&b, list, 2);
            close_len(&b, e, 2);
        }
        close_len(&b, ext, 2);
    }
    close_len(&b, hs, 3);
    close_len(&b, rec, 2);
    if (h->claim >= 0) {
        out[6] = (unsigned char)(h->claim >> 16);
        out[7] = (unsigned char)(h->claim >> 8);
        out[8] = (unsigned char)h->claim;
    }
    return b.len;
}

static const uint16_t modern_suites[] = {0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f};
static const uint16_t modern_groups[] = {0x001d, 0x0017}; /* x25519, secp256r1 */

/* A good TLS 1.3 hello with the given SNI bytes. */
static size_t hello_with_sni(unsigned char *out, size_t cap, const char *sni, size_t len)
{
    struct hello h = {.rec_version = 0x0301, .version = 0x0303, .suites = modern_suites,
                      .nsuites = 5, .groups = modern_groups, .ngroups = 2, .tls13 = 1,
                      .sni = sni, .sni_len = len, .claim = -1};
    return build_hello(out, cap, &h);
}

/* ---------------------------------------------------------------------------------------
 * OpenSSL attackers
 * ------------------------------------------------------------------------------------- */

struct ossl_opts {
    int min, max;            /* protocol versions (0: OpenSSL's default) */
    const char *ciphers;     /* TLS 1.2 cipher list (NULL: default) */
    const char *groups;      /* NULL: default */
    const char *sni;         /* NULL: "localhost" */
    const char *cert;        /* client certificate NAME (NAME.crt/NAME.key), or NULL */
};

static SSL_CTX *ossl_ctx(const struct ossl_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    cr_assert_not_null(ctx);
    /* The attacker does not care who the server is. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (o->min)
        cr_assert_eq(SSL_CTX_set_min_proto_version(ctx, o->min), 1);
    if (o->max)
        cr_assert_eq(SSL_CTX_set_max_proto_version(ctx, o->max), 1);
    if (o->ciphers != NULL)
        cr_assert_eq(SSL_CTX_set_cipher_list(ctx, o->ciphers), 1, "cipher list %s",
                     o->ciphers);
    if (o->groups != NULL)
        cr_assert_eq(SSL_CTX_set1_groups_list(ctx, o->groups), 1, "groups %s", o->groups);
    if (o->cert != NULL) {
        char crt[128], key[128];
        snprintf(crt, sizeof crt, "%s.crt", o->cert);
        snprintf(key, sizeof key, "%s.key", o->cert);
        cr_assert_eq(SSL_CTX_use_certificate_chain_file(ctx, tk_cert(crt)), 1);
        cr_assert_eq(SSL_CTX_use_PrivateKey_file(ctx, tk_cert(key), SSL_FILETYPE_PEM), 1);
    }
    return ctx;
}

struct ossl_conn {
    int fd;
    SSL *ssl;
    int rc;              /* SSL_connect() */
    unsigned long err;   /* first error in the queue after it */
};

/* Connect and run the handshake (blocking; a receive timeout guards against a server
 * that would never answer, so the test cannot hang). */
static void ossl_connect(struct victim *v, SSL_CTX *ctx, const struct ossl_opts *o,
                         struct ossl_conn *oc)
{
    oc->fd = attack_connect(v);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(oc->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(oc->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    oc->ssl = SSL_new(ctx);
    cr_assert_not_null(oc->ssl);
    SSL_set_fd(oc->ssl, oc->fd);
    set_sni(oc->ssl, o->sni != NULL ? o->sni : "localhost");
    ERR_clear_error();
    oc->rc = SSL_connect(oc->ssl);
    oc->err = ERR_peek_error();
}

static void ossl_close(struct ossl_conn *oc, int rst)
{
    SSL_free(oc->ssl);
    if (rst)
        rst_close(oc->fd);
    else
        close(oc->fd);
    ERR_clear_error();
}

static const char *ossl_reason(unsigned long e)
{
    const char *r = ERR_reason_error_string(e);
    return r != NULL ? r : "(no error)";
}

/* A handshake that the server must refuse, with the alert `reason` seen by the client. */
static void ossl_refused(struct victim *v, const struct ossl_opts *o, int reason,
                         const char *what)
{
    SSL_CTX *ctx = ossl_ctx(o);
    struct ossl_conn oc;
    ossl_connect(v, ctx, o, &oc);
    cr_expect_leq(oc.rc, 0, "%s: the server completed the handshake", what);
    if (reason != 0)
        cr_expect_eq(ERR_GET_REASON(oc.err), reason, "%s: client saw \"%s\", expected \"%s\"",
                     what, ossl_reason(oc.err), ossl_reason(ERR_PACK(ERR_LIB_SSL, 0, reason)));
    ossl_close(&oc, 0);
    SSL_CTX_free(ctx);
}

/* ---------------------------------------------------------------------------------------
 * Attacks: garbage
 * ------------------------------------------------------------------------------------- */

static void atk_plaintext_http(struct victim *v)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n";
    struct reply r;
    send_and_expect_close(v, req, sizeof req - 1, &r);
    cr_expect(r.closed, "plaintext HTTP: not closed within %lld ms", (long long)r.ms);
}

static void atk_random_bytes(struct victim *v)
{
    unsigned char junk[4096];
    tk_fill_pattern(junk, sizeof junk, (uint32_t)v->attack_conns + 1);
    junk[0] = 0x42; /* not 0x80 (an SSLv2 header) nor a record type, to be sure */
    struct reply r;
    send_and_expect_close(v, junk, sizeof junk, &r);
    cr_expect(r.closed, "random bytes: not closed within %lld ms", (long long)r.ms);
}

static void atk_zeros(struct victim *v)
{
    unsigned char zeros[4096];
    memset(zeros, 0, sizeof zeros);
    struct reply r;
    send_and_expect_close(v, zeros, sizeof zeros, &r);
    cr_expect(r.closed, "zeros: not closed within %lld ms", (long long)r.ms);
}

/* ---------------------------------------------------------------------------------------
 * Attacks: stalls. Several connections at once: each round costs one deadline, not one
 * per connection, and the server has to time out many at the same moment.
 * ------------------------------------------------------------------------------------- */

#define STALLS 5

/* Wait until the server has closed every fd; each must go within CUTOFF_MS of t0. */
static void expect_all_cut(const int *fds, int n, int64_t t0, const char *what)
{
    for (int i = 0; i < n; i++) {
        int64_t left = t0 + CUTOFF_MS - tk_now_ms();
        struct reply r;
        read_until_close(fds[i], left > 0 ? (int)left : 0, &r);
        cr_expect(r.closed, "%s: connection %d still open %lld ms after it started (the "
                  "handshake deadline is %d ms)", what, i, (long long)(tk_now_ms() - t0),
                  HS_TIMEOUT_MS);
    }
}

static void atk_truncated_hello_then_eof(struct victim *v)
{
    unsigned char hello[2048];
    size_t len = real_client_hello(hello, sizeof hello, 0);
    int fd = attack_connect(v);
    send_some(fd, hello, len / 2);
    shutdown(fd, SHUT_WR);
    struct reply r;
    read_until_close(fd, CUTOFF_MS, &r);
    cr_expect(r.closed, "half a ClientHello then EOF: not closed within %lld ms",
              (long long)r.ms);
    close(fd);
}

static void stall_with(struct victim *v, const unsigned char *data, size_t len,
                       const char *what)
{
    int fds[STALLS];
    int64_t t0 = tk_now_ms();
    for (int i = 0; i < STALLS; i++) {
        fds[i] = attack_connect(v);
        send_some(fds[i], data, len);
    }
    probe(v, what); /* while they stall */
    expect_all_cut(fds, STALLS, t0, what);
    for (int i = 0; i < STALLS; i++)
        close(fds[i]);
}

static void atk_truncated_hello_then_silence(struct victim *v)
{
    unsigned char hello[2048];
    size_t len = real_client_hello(hello, sizeof hello, 0);
    stall_with(v, hello, len / 2, "while half ClientHellos stall");
}

static void atk_connect_send_nothing(struct victim *v)
{
    stall_with(v, NULL, 0, "while silent connections stall");
}

/* Handshake header says 1000 bytes more than the record carries; then silence. */
static void atk_handshake_length_larger_than_sent(struct victim *v)
{
    unsigned char hello[2048];
    size_t len = real_client_hello(hello, sizeof hello, 0);
    unsigned long claim = ((unsigned long)hello[6] << 16 | hello[7] << 8 | hello[8]) + 1000;
    hello[6] = (unsigned char)(claim >> 16);
    hello[7] = (unsigned char)(claim >> 8);
    hello[8] = (unsigned char)claim;
    stall_with(v, hello, len, "while over-long handshake messages stall");
}

/* A genuine ClientHello dripped one byte per interval_ms on STALLS connections. The
 * handshake deadline is a total (DESIGN.md): however often bytes arrive, the server must
 * cut the connection once it expires. */
static void drip(struct victim *v, int interval_ms, const char *what)
{
    unsigned char hello[2048];
    size_t len = real_client_hello(hello, sizeof hello, 0);
    int fds[STALLS], open_n = STALLS, probed = 0;
    int64_t closed_at[STALLS];
    int64_t t0 = tk_now_ms();
    for (int i = 0; i < STALLS; i++) {
        fds[i] = attack_connect(v);
        closed_at[i] = 0;
    }
    for (size_t k = 0; open_n > 0 && k < len; k++) {
        for (int i = 0; i < STALLS; i++)
            if (!closed_at[i] && send(fds[i], hello + k, 1, MSG_NOSIGNAL) != 1) {
                closed_at[i] = tk_now_ms();
                open_n--;
            }
        if (!probed) {
            probe(v, what);
            probed = 1;
        }
        int64_t next = t0 + (int64_t)(k + 1) * interval_ms;
        while (open_n > 0 && tk_now_ms() < next && tk_now_ms() - t0 < CUTOFF_MS + 1000) {
            struct pollfd p[STALLS];
            for (int i = 0; i < STALLS; i++)
                p[i] = (struct pollfd){.fd = closed_at[i] ? -1 : fds[i], .events = POLLIN};
            int64_t left = next - tk_now_ms();
            if (poll(p, STALLS, left > 0 ? (int)left : 0) <= 0)
                continue;
            for (int i = 0; i < STALLS; i++) {
                char c[512];
                if (!closed_at[i] && (p[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
                    recv(fds[i], c, sizeof c, MSG_DONTWAIT) <= 0) {
                    closed_at[i] = tk_now_ms();
                    open_n--;
                }
            }
        }
        if (tk_now_ms() - t0 >= CUTOFF_MS + 1000)
            break;
    }
    for (int i = 0; i < STALLS; i++) {
        cr_expect(closed_at[i] != 0 && closed_at[i] - t0 <= CUTOFF_MS,
                  "%s: connection %d not cut off within %d ms (handshake deadline %d ms)",
                  what, i, CUTOFF_MS, HS_TIMEOUT_MS);
        close(fds[i]);
    }
}

static void atk_one_byte_per_second(struct victim *v)
{
    drip(v, 1000, "while clients send one byte a second");
}

/* Faster than the deadline: an idle timer reset by each byte would never fire. */
static void atk_one_byte_every_200ms(struct victim *v)
{
    drip(v, 200, "while clients send one byte every 200 ms");
}

/* ---------------------------------------------------------------------------------------
 * Attacks: closes and resets
 * ------------------------------------------------------------------------------------- */

static void atk_connect_close(struct victim *v)
{
    close(attack_connect(v));
}

static void atk_rst_before_handshake(struct victim *v)
{
    rst_close(attack_connect(v));
}

/* Reset once the server has started answering (its ServerHello is on the way). */
static void atk_rst_during_handshake(struct victim *v)
{
    unsigned char hello[2048];
    size_t len = real_client_hello(hello, sizeof hello, 0);
    int fd = attack_connect(v);
    send_some(fd, hello, len);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    cr_expect_eq(poll(&p, 1, 5000), 1, "no ServerHello");
    rst_close(fd);
}

/* Reset right after the handshake, while the server's TLS 1.3 session tickets may still be
 * on their way: the server then writes to a reset socket. */
static void atk_rst_after_handshake(struct victim *v)
{
    struct ossl_opts o = {0};
    SSL_CTX *ctx = ossl_ctx(&o);
    struct ossl_conn oc;
    ossl_connect(v, ctx, &o, &oc);
    cr_expect_eq(oc.rc, 1, "handshake: %s", ossl_reason(oc.err));
    ossl_close(&oc, 1);
    SSL_CTX_free(ctx);
}

/* The same, with the reset landing before the server has read the client's Finished, so
 * that its TLS 1.3 session tickets (RFC 8446 section 4.6.1) are written to a reset socket:
 * the client's last flight goes out through a memory BIO with the reset right behind it,
 * while a decoy ClientHello, sent just before, keeps the server's one worker busy for a
 * moment. The server's ticket write fails with ECONNRESET, the next write with EPIPE: the
 * connection was reset and must be reported so (TLSKIT_E_IO), like every other reset,
 * not as a peer that "closed without close_notify" (TLSKIT_E_TRUNCATED, what a FIN is).
 * The decoy is reset after the server's answer (also TLSKIT_E_IO). */
static void atk_rst_before_session_tickets(struct victim *v)
{
    struct ossl_opts o = {0};
    SSL_CTX *ctx = ossl_ctx(&o);
    int fd = attack_connect(v);
    SSL *ssl = SSL_new(ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    cr_assert(ssl != NULL && rb != NULL && wb != NULL);
    SSL_set_bio(ssl, rb, wb);
    set_sni(ssl, "localhost");
    int64_t end = tk_now_ms() + 5000;
    int r;
    while ((r = SSL_connect(ssl)) != 1 && tk_now_ms() < end) {
        cr_assert_eq(SSL_get_error(ssl, r), SSL_ERROR_WANT_READ, "handshake: %s",
                     ossl_reason(ERR_peek_error()));
        unsigned char buf[16384];
        int n = BIO_read(wb, buf, sizeof buf);
        if (n > 0)
            cr_assert_eq(send_some(fd, buf, (size_t)n), (size_t)n);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1000) == 1) {
            ssize_t k = recv(fd, buf, sizeof buf, 0);
            cr_assert_gt(k, 0, "the server closed during the handshake");
            BIO_write(rb, buf, (int)k);
        }
    }
    cr_assert_eq(r, 1, "handshake did not complete");
    unsigned char fin[1024], hello[2048];
    int n = BIO_read(wb, fin, sizeof fin);
    cr_assert_gt(n, 0, "no client Finished");
    size_t hlen = real_client_hello(hello, sizeof hello, 0);
    int decoy = attack_connect(v);
    send_some(decoy, hello, hlen);
    send_some(fd, fin, (size_t)n);
    rst_close(fd);
    struct pollfd p = {.fd = decoy, .events = POLLIN};
    cr_expect_eq(poll(&p, 1, 5000), 1, "no ServerHello for the decoy");
    rst_close(decoy);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
}

/* ---------------------------------------------------------------------------------------
 * Attacks: versions, ciphers, groups, names
 * ------------------------------------------------------------------------------------- */

static void atk_tls10_hello(struct victim *v)
{
    struct ossl_opts o = {.min = TLS1_VERSION, .max = TLS1_VERSION,
                          .ciphers = "DEFAULT:@SECLEVEL=0"};
    ossl_refused(v, &o, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION, "TLS 1.0 hello");
}

static void atk_tls11_hello(struct victim *v)
{
    struct ossl_opts o = {.min = TLS1_1_VERSION, .max = TLS1_1_VERSION,
                          .ciphers = "DEFAULT:@SECLEVEL=0"};
    ossl_refused(v, &o, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION, "TLS 1.1 hello");
}

/* RFC 8446 section 4.2.1 asks for protocol_version here; OpenSSL 3.0 answers a hello
 * below SSL 3.1 with handshake_failure ("version too low"). Either is a refusal. */
static void atk_sslv3_hello(struct victim *v)
{
    static const uint16_t suites[] = {0x002f, 0x0035, 0x000a}; /* AES, 3DES with RSA */
    struct hello h = {.rec_version = 0x0300, .version = 0x0300, .suites = suites,
                      .nsuites = 3, .no_extensions = 1, .claim = -1};
    unsigned char buf[512];
    size_t len = build_hello(buf, sizeof buf, &h);
    struct reply r;
    send_and_expect_close(v, buf, len, &r);
    expect_alert(&r, -1, "SSLv3 hello");
    cr_expect(r.len < 7 || r.head[6] == 70 || r.head[6] == 40,
              "SSLv3 hello: alert %d, expected protocol_version (70) or handshake_failure (40)",
              r.head[6]);
}

/* SSLv2 CLIENT-HELLO (draft-hickman-netscape-ssl-00; RFC 6176 forbids it). */
static size_t sslv2_hello(unsigned char *out, uint16_t version, const unsigned char *specs,
                          size_t nspecs)
{
    size_t n = 0, body = 9 + 3 * nspecs + 16;
    out[n++] = (unsigned char)(0x80 | (body >> 8));
    out[n++] = (unsigned char)body;
    out[n++] = 1; /* CLIENT-HELLO */
    out[n++] = (unsigned char)(version >> 8);
    out[n++] = (unsigned char)version;
    out[n++] = 0;
    out[n++] = (unsigned char)(3 * nspecs);
    out[n++] = 0; /* session id length */
    out[n++] = 0;
    out[n++] = 0; /* challenge length 16 */
    out[n++] = 16;
    memcpy(out + n, specs, 3 * nspecs);
    n += 3 * nspecs;
    tk_fill_pattern(out + n, 16, 99);
    return n + 16;
}

static void atk_sslv2_hello(struct victim *v)
{
    static const unsigned char specs[] = {0x01, 0x00, 0x80,  /* RC4_128_WITH_MD5 */
                                          0x07, 0x00, 0xc0}; /* DES_192_EDE3_CBC_WITH_MD5 */
    unsigned char buf[128];
    size_t len = sslv2_hello(buf, 0x0002, specs, 2);
    struct reply r;
    send_and_expect_close(v, buf, len, &r);
    cr_expect(r.closed, "SSLv2 hello: not closed within %lld ms", (long long)r.ms);
}

/* The SSLv2-compatible hello format announcing TLS 1.2 (RFC 5246 appendix E.2): must not
 * get past the server's minimum (it carries no extensions, so no groups, no signature
 * algorithms) nor leave it waiting. */
static void atk_sslv2_compat_hello(struct victim *v)
{
    static const unsigned char specs[] = {0x00, 0xc0, 0x2f,  /* ECDHE-RSA-AES128-GCM */
                                          0x00, 0xc0, 0x2b,  /* ECDHE-ECDSA-AES128-GCM */
                                          0x00, 0x00, 0x2f}; /* AES128-SHA */
    unsigned char buf[128];
    size_t len = sslv2_hello(buf, 0x0303, specs, 3);
    struct reply r;
    send_and_expect_close(v, buf, len, &r);
    cr_expect(r.closed, "SSLv2-format TLS 1.2 hello: not closed within %lld ms",
              (long long)r.ms);
}

static void atk_null_ciphers_only(struct victim *v)
{
    struct ossl_opts o = {.max = TLS1_2_VERSION, .ciphers = "eNULL:@SECLEVEL=0"};
    ossl_refused(v, &o, SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE, "NULL-only cipher list");
}

/* OpenSSL 3 cannot offer RC4 without its legacy provider: the bytes are made by hand. */
static void atk_rc4_ciphers_only(struct victim *v)
{
    static const uint16_t rc4[] = {0xc011, 0xc007, 0x0005, 0x0004}; /* ECDHE-*, RSA RC4 */
    struct hello h = {.rec_version = 0x0301, .version = 0x0303, .suites = rc4, .nsuites = 4,
                      .groups = modern_groups, .ngroups = 2, .claim = -1};
    unsigned char buf[512];
    size_t len = build_hello(buf, sizeof buf, &h);
    struct reply r;
    send_and_expect_close(v, buf, len, &r);
    expect_alert(&r, 40, "RC4-only hello"); /* handshake_failure */
}

/* TLS 1.2 with only brainpoolP256r1, which the server does not enable: none of its ECDHE
 * suites can be used. */
static void atk_no_common_group_tls12(struct victim *v)
{
    struct ossl_opts o = {.max = TLS1_2_VERSION, .groups = "brainpoolP256r1"};
    ossl_refused(v, &o, SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE, "TLS 1.2, no common group");
}

/* TLS 1.3 offering one group nobody knows (a GREASE value, RFC 8701), with a key share. */
static void atk_no_common_group_tls13(struct victim *v)
{
    static const uint16_t grease[] = {0x0a0a};
    static const uint16_t suites[] = {0x1301, 0x1302, 0x1303};
    struct hello h = {.rec_version = 0x0301, .version = 0x0303, .suites = suites,
                      .nsuites = 3, .groups = grease, .ngroups = 1, .tls13 = 1, .claim = -1};
    unsigned char buf[512];
    size_t len = build_hello(buf, sizeof buf, &h);
    struct reply r;
    send_and_expect_close(v, buf, len, &r);
    expect_alert(&r, 40, "TLS 1.3, no common group"); /* handshake_failure */
}

/* A name the server has no certificate for: tlsserver has one certificate and serves it
 * (RFC 6066 section 3 leaves the choice to the server); the echo must work. */
static void atk_unknown_sni(struct victim *v)
{
    struct ossl_opts o = {.sni = "unknown.example.invalid"};
    SSL_CTX *ctx = ossl_ctx(&o);
    struct ossl_conn oc;
    ossl_connect(v, ctx, &o, &oc);
    cr_expect_eq(oc.rc, 1, "unknown SNI: handshake failed: %s", ossl_reason(oc.err));
    char c = 0;
    cr_expect(oc.rc == 1 && SSL_write(oc.ssl, "x", 1) == 1 && SSL_read(oc.ssl, &c, 1) == 1 &&
                  c == 'x',
              "unknown SNI: no echo");
    SSL_shutdown(oc.ssl);
    ossl_close(&oc, 0);
    SSL_CTX_free(ctx);
}

/* A host_name with a NUL inside (RFC 6066: "the hostname ... MUST NOT contain NUL"). */
static void atk_sni_with_nul(struct victim *v)
{
    static const char name[] = "localhost\0.evil.example";
    unsigned char buf[1024];
    size_t len = hello_with_sni(buf, sizeof buf, name, sizeof name - 1);
    struct reply r;
    send_and_expect_close(v, buf, len, &r);
    expect_alert(&r, -1, "SNI with a NUL byte");
}

/* ---------------------------------------------------------------------------------------
 * Attacks: records
 * ------------------------------------------------------------------------------------- */

/* Declares 65535 bytes, far above the 2^14 + 2048 that RFC 5246 section 6.2.3 allows. */
static void atk_record_too_long(struct victim *v)
{
    unsigned char buf[5 + 20000];
    memset(buf, 0x41, sizeof buf);
    memcpy(buf, "\x16\x03\x01\xff\xff", 5);
    struct reply r;
    send_and_expect_close(v, buf, sizeof buf, &r);
    expect_alert(&r, 22, "65535-byte record"); /* record_overflow */
}

static void atk_bad_content_type(struct victim *v)
{
    static const unsigned char rec[] = {0x63, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5};
    struct reply r;
    send_and_expect_close(v, rec, sizeof rec, &r);
    expect_alert(&r, -1, "content type 99");
}

static void atk_appdata_before_handshake(struct victim *v)
{
    unsigned char rec[5 + 64];
    memcpy(rec, "\x17\x03\x03\x00\x40", 5);
    tk_fill_pattern(rec + 5, 64, 3);
    struct reply r;
    send_and_expect_close(v, rec, sizeof rec, &r);
    expect_alert(&r, 10, "application data before the handshake"); /* unexpected_message */
}

static void atk_alert_before_hello(struct victim *v)
{
    static const unsigned char rec[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
    struct reply r;
    send_and_expect_close(v, rec, sizeof rec, &r);
    cr_expect(r.closed, "fatal alert first: not closed within %lld ms", (long long)r.ms);
}

/* 20,000 empty handshake records (100 KB). OpenSSL gives up after 32 in a row. */
static void atk_empty_records_flood(struct victim *v)
{
    size_t n = 20000;
    unsigned char *buf = malloc(5 * n);
    cr_assert_not_null(buf);
    for (size_t i = 0; i < n; i++)
        memcpy(buf + 5 * i, "\x16\x03\x01\x00\x00", 5);
    struct reply r;
    send_and_expect_close(v, buf, 5 * n, &r);
    free(buf);
    expect_alert(&r, -1, "empty record flood");
}

/* A ClientHello whose handshake header claims 16 MiB - 1, followed by 64 KiB of "rest":
 * refused at the header, without buffering towards 16 MiB. */
static void atk_handshake_16mb_claim(struct victim *v)
{
    struct hello h = {.rec_version = 0x0301, .version = 0x0303, .suites = modern_suites,
                      .nsuites = 5, .groups = modern_groups, .ngroups = 2, .tls13 = 1,
                      .claim = 0xffffff};
    size_t more = 4;
    unsigned char *buf = malloc(1024 + more * (5 + 16384));
    cr_assert_not_null(buf);
    size_t len = build_hello(buf, 1024, &h);
    for (size_t i = 0; i < more; i++) {
        memcpy(buf + len, "\x16\x03\x03\x40\x00", 5);
        memset(buf + len + 5, 0x5a, 16384);
        len += 5 + 16384;
    }
    struct reply r;
    send_and_expect_close(v, buf, len, &r);
    free(buf);
    expect_alert(&r, -1, "16 MiB handshake claim");
}

/* Heartbleed's shape (CVE-2014-0160): a heartbeat request (RFC 6520) claiming 16 KiB of
 * payload and carrying none. */
static const unsigned char heartbeat[] = {0x18, 0x03, 0x03, 0x00, 0x03, 0x01, 0x40, 0x00};

static void atk_heartbeat_before_hello(struct victim *v)
{
    struct reply r;
    send_and_expect_close(v, heartbeat, sizeof heartbeat, &r);
    expect_alert(&r, -1, "heartbeat record before the hello");
}

/* After a TLS 1.2 ClientHello, when a server with heartbeats would answer one. */
static void atk_heartbeat_after_hello(struct victim *v)
{
    unsigned char buf[2048];
    size_t len = real_client_hello(buf, sizeof buf - sizeof heartbeat, TLS1_2_VERSION);
    memcpy(buf + len, heartbeat, sizeof heartbeat);
    struct reply r;
    send_and_expect_close(v, buf, len + sizeof heartbeat, &r);
    cr_expect(r.closed, "heartbeat after the hello: not closed within %lld ms",
              (long long)r.ms);
}

/* ---------------------------------------------------------------------------------------
 * Attacks: after the handshake
 * ------------------------------------------------------------------------------------- */

/* A TLS 1.2 client asking to renegotiate (renegotiation is off: DESIGN.md). */
static void atk_renegotiation(struct victim *v)
{
    struct ossl_opts o = {.max = TLS1_2_VERSION};
    SSL_CTX *ctx = ossl_ctx(&o);
    struct ossl_conn oc;
    ossl_connect(v, ctx, &o, &oc);
    cr_assert_eq(oc.rc, 1, "TLS 1.2 handshake: %s", ossl_reason(oc.err));
    char c = 0;
    cr_expect(SSL_write(oc.ssl, "x", 1) == 1 && SSL_read(oc.ssl, &c, 1) == 1 && c == 'x',
              "echo before renegotiation");
    cr_assert_eq(SSL_renegotiate(oc.ssl), 1);
    ERR_clear_error();
    int r = SSL_do_handshake(oc.ssl);
    unsigned long e = ERR_peek_error();
    cr_expect_neq(r, 1, "the server renegotiated");
    cr_expect_eq(ERR_GET_REASON(e), SSL_R_NO_RENEGOTIATION,
                 "renegotiation: client saw \"%s\", expected the server's no_renegotiation",
                 ossl_reason(e));
    ossl_close(&oc, 0);
    SSL_CTX_free(ctx);
}

/* A client that writes and never reads: the server echoes until its buffer and both
 * kernels' buffers are full, then must stop reading it (backpressure) and keep serving
 * everyone else. */
static void atk_never_reads(struct victim *v)
{
    struct ossl_opts o = {0};
    SSL_CTX *ctx = ossl_ctx(&o);
    struct ossl_conn oc;
    ossl_connect(v, ctx, &o, &oc);
    cr_assert_eq(oc.rc, 1, "handshake: %s", ossl_reason(oc.err));
    fcntl(oc.fd, F_SETFL, fcntl(oc.fd, F_GETFL) | O_NONBLOCK);
    static unsigned char chunk[16384];
    size_t total = 0;
    int64_t last = tk_now_ms();
    while (tk_now_ms() - last < 500 && total < (256u << 20)) {
        int n = SSL_write(oc.ssl, chunk, sizeof chunk);
        if (n > 0) {
            total += (size_t)n;
            last = tk_now_ms();
            continue;
        }
        int e = SSL_get_error(oc.ssl, n);
        cr_assert(e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ,
                  "never-reading client: write failed after %zu bytes (%d: %s)", total, e,
                  ossl_reason(ERR_peek_error()));
        struct pollfd p = {.fd = oc.fd, .events = POLLOUT};
        poll(&p, 1, 100);
    }
    /* It stalled: more than the server's 1 MiB backpressure threshold went in. */
    cr_expect_geq(total, 1u << 20, "the server stopped taking data after %zu bytes", total);
    cr_expect_lt(total, 256u << 20, "the server never pushed back (%zu bytes taken)", total);
    probe(v, "while a client that never reads holds a stalled connection");
    ossl_close(&oc, 1);
    SSL_CTX_free(ctx);
}

/* The server has echo output pending for a client that then resets: its writes fail with
 * ECONNRESET or EPIPE, never SIGPIPE. The client's small receive buffer makes sure the
 * server still has output queued when the reset arrives. */
static void atk_write_to_gone_peer(struct victim *v)
{
    struct ossl_opts o = {0};
    SSL_CTX *ctx = ossl_ctx(&o);
    struct ossl_conn oc;
    v->attack_conns++;
    oc.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(oc.fd, 0);
    int small = 4096;
    setsockopt(oc.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)v->s.port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(oc.fd, (struct sockaddr *)&sin, sizeof sin), 0, "connect: %s",
                 strerror(errno));
    struct timeval tv = {.tv_sec = 5};
    setsockopt(oc.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    oc.ssl = SSL_new(ctx);
    SSL_set_fd(oc.ssl, oc.fd);
    set_sni(oc.ssl, "localhost");
    cr_assert_eq(SSL_connect(oc.ssl), 1, "handshake: %s", ossl_reason(ERR_peek_error()));
    fcntl(oc.fd, F_SETFL, fcntl(oc.fd, F_GETFL) | O_NONBLOCK);
    static unsigned char chunk[16384];
    size_t total = 0;
    int64_t last = tk_now_ms();
    while (total < (512u << 10) && tk_now_ms() - last < 300) {
        int n = SSL_write(oc.ssl, chunk, sizeof chunk);
        if (n > 0) {
            total += (size_t)n;
            last = tk_now_ms();
        } else {
            struct pollfd p = {.fd = oc.fd, .events = POLLOUT};
            poll(&p, 1, 50);
        }
    }
    ossl_close(&oc, 1);
    SSL_CTX_free(ctx);
    assert_alive(v, "right after a client reset with echo output pending");
}

/* ---------------------------------------------------------------------------------------
 * Attacks: mTLS (server with --ca ca.crt --verify-client)
 * ------------------------------------------------------------------------------------- */

/* With TLS 1.3 the client's handshake is complete before the server has checked its
 * certificate; the refusal arrives as an alert on the first read. */
static void mtls_refused(struct victim *v, const char *cert, const char *what)
{
    struct ossl_opts o = {.cert = cert};
    SSL_CTX *ctx = ossl_ctx(&o);
    struct ossl_conn oc;
    ossl_connect(v, ctx, &o, &oc);
    char c;
    int got = oc.rc == 1 ? SSL_read(oc.ssl, &c, 1) : -1;
    cr_expect_leq(got, 0, "%s: the server accepted the client", what);
    ossl_close(&oc, 0);
    SSL_CTX_free(ctx);
}

static void atk_mtls_no_cert(struct victim *v)
{
    mtls_refused(v, NULL, "no client certificate");
}

static void atk_mtls_other_ca(struct victim *v)
{
    mtls_refused(v, "client-otherca", "client certificate from another CA");
}

static void atk_mtls_expired(struct victim *v)
{
    mtls_refused(v, "client-expired", "expired client certificate");
}

static void atk_mtls_not_allowed(struct victim *v)
{
    mtls_refused(v, "client-dns", "a verified client certificate not on the allow-list");
}

/* ---------------------------------------------------------------------------------------
 * The cases
 * ------------------------------------------------------------------------------------- */

#define LOG_ANY_ERROR "^tlsserver: conn 127\\.0\\.0\\.1:[0-9]+ .* error=TLSKIT_E_[A-Z]+: .+$"

/* garbage */
HOSTILE(plaintext_http, atk_plaintext_http, 10, 0, LOG_PROTOCOL ".*http request")
HOSTILE(random_bytes, atk_random_bytes, 10, 0, LOG_PROTOCOL)
HOSTILE(zeros, atk_zeros, 10, 0, LOG_PROTOCOL)
/* stalls and truncation */
HOSTILE(truncated_hello_then_eof, atk_truncated_hello_then_eof, 10, 0,
        LOG_RE("TLSKIT_E_CLOSED"))
HOSTILE(truncated_hello_then_silence, atk_truncated_hello_then_silence, 2, 0, LOG_TIMEOUT)
HOSTILE(connect_send_nothing, atk_connect_send_nothing, 2, 0, LOG_TIMEOUT)
HOSTILE(one_byte_per_second, atk_one_byte_per_second, 1, 0, LOG_TIMEOUT)
HOSTILE(one_byte_every_200ms, atk_one_byte_every_200ms, 1, 0, LOG_TIMEOUT)
HOSTILE(handshake_length_larger_than_sent, atk_handshake_length_larger_than_sent, 2, 0,
        LOG_TIMEOUT)
/* closes and resets */
HOSTILE(connect_close, atk_connect_close, 20, 0, LOG_RE("TLSKIT_E_CLOSED"))
HOSTILE(rst_before_handshake, atk_rst_before_handshake, 20, 0,
        LOG_RE("TLSKIT_E_(IO|CLOSED)"))
HOSTILE(rst_during_handshake, atk_rst_during_handshake, 10, 0,
        LOG_RE("TLSKIT_E_(IO|CLOSED)"))
HOSTILE(rst_after_handshake, atk_rst_after_handshake, 10, 0, LOG_ANY_ERROR)
HOSTILE(rst_before_session_tickets, atk_rst_before_session_tickets, 10, 0,
        "^tlsserver: conn 127\\.0\\.0\\.1:[0-9]+ .* error=TLSKIT_E_IO: .*(reset|Broken pipe)")
/* versions, ciphers, groups, names */
HOSTILE(tls10_hello, atk_tls10_hello, 10, 0, LOG_PROTOCOL ".*unsupported protocol")
HOSTILE(tls11_hello, atk_tls11_hello, 10, 0, LOG_PROTOCOL ".*unsupported protocol")
HOSTILE(sslv3_hello, atk_sslv3_hello, 10, 0,
        LOG_PROTOCOL ".*(version too low|unsupported protocol)")
HOSTILE(sslv2_hello, atk_sslv2_hello, 10, 0, LOG_PROTOCOL)
HOSTILE(sslv2_compat_hello, atk_sslv2_compat_hello, 10, 0, LOG_PROTOCOL)
HOSTILE(null_ciphers_only, atk_null_ciphers_only, 10, 0, LOG_PROTOCOL ".*no shared cipher")
HOSTILE(rc4_ciphers_only, atk_rc4_ciphers_only, 10, 0, LOG_PROTOCOL ".*no shared cipher")
HOSTILE(no_common_group_tls12, atk_no_common_group_tls12, 10, 0, LOG_PROTOCOL)
HOSTILE(no_common_group_tls13, atk_no_common_group_tls13, 10, 0, LOG_PROTOCOL)
HOSTILE(unknown_sni, atk_unknown_sni, 10, 0,
        "^tlsserver: conn 127\\.0\\.0\\.1:[0-9]+ proto=TLSv1\\.3 .* in=1 out=1 .* ok$")
HOSTILE(sni_with_nul, atk_sni_with_nul, 10, 0, LOG_PROTOCOL)
/* records */
HOSTILE(record_too_long, atk_record_too_long, 10, 0, LOG_PROTOCOL)
HOSTILE(bad_content_type, atk_bad_content_type, 10, 0, LOG_PROTOCOL)
HOSTILE(appdata_before_handshake, atk_appdata_before_handshake, 10, 0, LOG_PROTOCOL)
HOSTILE(alert_before_hello, atk_alert_before_hello, 10, 0, LOG_PROTOCOL)
HOSTILE(empty_records_flood, atk_empty_records_flood, 10, 0, LOG_PROTOCOL)
HOSTILE(handshake_16mb_claim, atk_handshake_16mb_claim, 10, 0, LOG_PROTOCOL)
HOSTILE(heartbeat_before_hello, atk_heartbeat_before_hello, 10, 0, LOG_PROTOCOL)
HOSTILE(heartbeat_after_hello, atk_heartbeat_after_hello, 10, 0, LOG_PROTOCOL)
/* after the handshake */
HOSTILE(renegotiation_tls12, atk_renegotiation, 8, 0,
        "^tlsserver: conn 127\\.0\\.0\\.1:[0-9]+ proto=TLSv1\\.2 .* error=TLSKIT_E_")
HOSTILE(never_reads, atk_never_reads, 3, 0, LOG_ANY_ERROR)
HOSTILE(write_to_gone_peer, atk_write_to_gone_peer, 10, 0, LOG_ANY_ERROR)
/* mTLS */
HOSTILE(mtls_no_cert, atk_mtls_no_cert, 8, 1,
        LOG_RE("TLSKIT_E_VERIFY") ".*no certificate")
HOSTILE(mtls_other_ca, atk_mtls_other_ca, 8, 1,
        LOG_RE("TLSKIT_E_VERIFY") ".*unable to get local issuer certificate")
HOSTILE(mtls_expired, atk_mtls_expired, 8, 1,
        LOG_RE("TLSKIT_E_VERIFY") ".*certificate has expired")
HOSTILE(mtls_not_allowed, atk_mtls_not_allowed, 8, 2,
        LOG_RE("TLSKIT_E_VERIFY") ".*client not on the allow-list: it presented "
                                  "dns:client\\.tlskit\\.test, spki:sha256//")
