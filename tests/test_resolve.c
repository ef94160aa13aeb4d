/* SPDX-License-Identifier: MIT */
/* Names in tlskit_engine_connect(): resolved on the engine's resolver thread, never on
 * the worker. "localhost" (from /etc/hosts) through the thread, plain and TLS (the name
 * is the one sent and checked); a name that does not exist (TLSKIT_E_RESOLVE with
 * getaddrinfo()'s message); a DNS server that never answers: the CONNECT deadline ends
 * the lookup, another connection on the same worker keeps flowing meanwhile, a
 * connection aborted during its lookup ends at once, and the engine stops and frees at
 * once, leaving at most the blocked resolver threads, which later drop their answers and
 * leak nothing. And tlsserver --forward localhost:PORT.
 *
 * The DNS cases run in a forked child with its own mount namespace, where a temporary
 * resolv.conf naming 127.0.0.N is bind-mounted over /etc/resolv.conf (glibc reads it at
 * first use) and a fake server on 127.0.0.N:53 answers NXDOMAIN or nothing: the
 * machine's resolver is never touched. The child reports through a pipe. */
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

TK_SUITE(resolve);

/* ---- a client engine that opens the connections the test asks for ---- */

struct rec {
    atomic_int done;
    int code;
    char reason[512];
    char got[16];
    size_t ngot;
    int64_t opened_ms, echoed_ms, closed_ms;
};

struct plan {
    const char *host;
    char port[16];
    int flags;
    struct rec rec;
    atomic_int abort_req;  /* the test asks the worker to abort it */
    tlskit_conn *conn;     /* the worker's only */
};

#define MAX_PLANS 8
static struct plan plans[MAX_PLANS];
static atomic_int nwant, nopened;
static tlskit_engine *cli;
static tlskit_config *cli_cfg;

/* On the client's worker (its start and every tick): open what the test asked for. */
static void cli_hook(int worker, int event, void *arg)
{
    (void)worker;
    (void)event;
    (void)arg;
    while (atomic_load(&nopened) < atomic_load(&nwant)) {
        struct plan *p = &plans[atomic_load(&nopened)];
        p->rec.opened_ms = tk_now_ms();
        tlskit_conn *c = tlskit_engine_connect(cli, NULL, cli_cfg, p->host, p->port, p->flags);
        if (!c) {
            p->rec.code = -2;
            snprintf(p->rec.reason, sizeof(p->rec.reason), "engine connect: NULL (errno %d)",
                     errno);
            atomic_store(&p->rec.done, 1);
        } else {
            tlskit_conn_set_userdata(c, p);
            tlskit_conn_write(c, "ping", 4);
            p->conn = c;
        }
        atomic_fetch_add(&nopened, 1);
    }
    for (int i = 0; i < atomic_load(&nopened); i++) {
        struct plan *p = &plans[i];
        if (p->conn && !atomic_load(&p->rec.done) && atomic_exchange(&p->abort_req, 0))
            tlskit_conn_abort(p->conn, "aborted by the test");
    }
}

static void cli_data(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    (void)arg;
    struct rec *r = &((struct plan *)tlskit_conn_userdata(c))->rec;
    if (r->ngot + n > 4) {
        tlskit_conn_abort(c, "too much echoed");
        return;
    }
    memcpy(r->got + r->ngot, d, n);
    r->ngot += n;
    if (r->ngot == 4) {
        r->echoed_ms = tk_now_ms();
        tlskit_conn_close(c);
    }
}

static void cli_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    (void)arg;
    struct plan *p = tlskit_conn_userdata(c);
    if (!p)
        return;
    struct rec *r = &p->rec;
    p->conn = NULL;
    r->code = code;
    r->closed_ms = tk_now_ms();
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    atomic_store(&r->done, 1);
}

/* A client engine with one worker; connect_ms: its CONNECT deadline. */
static int cli_start(int connect_ms)
{
    cli_cfg = tk_client_config("ca.crt");
    tlskit_config_set_timeout(cli_cfg, TLSKIT_TIMEOUT_CONNECT, connect_ms);
    struct tlskit_engine_handlers h = {.on_data = cli_data, .on_close = cli_close};
    cli = tlskit_engine_new(cli_cfg, &h);
    if (!cli || tlskit_engine_set_workers(cli, 1) != 0 ||
        tlskit_engine_set_drain_timeout(cli, 0) != 0 ||
        tlskit_engine_set_on_worker(cli, cli_hook, NULL) != 0)
        return -1;
    return tlskit_engine_start(cli);
}

static void cli_free(void)
{
    tlskit_engine_stop(cli);
    tlskit_engine_free(cli);
    tlskit_config_free(cli_cfg);
    cli = NULL;
    cli_cfg = NULL;
}

/* Ask the client's worker to open host port; the plan's index. */
static int cli_open(const char *host, const char *port, int flags)
{
    int i = atomic_load(&nwant);
    plans[i].host = host;
    snprintf(plans[i].port, sizeof(plans[i].port), "%s", port);
    plans[i].flags = flags;
    atomic_store(&nwant, i + 1);
    return i;
}

/* Wait up to ms for plan i to end: 1 when it did. */
static int cli_wait(int i, int ms)
{
    int64_t end = tk_now_ms() + ms;
    while (!atomic_load(&plans[i].rec.done) && tk_now_ms() < end)
        poll(NULL, 0, 5);
    return atomic_load(&plans[i].rec.done);
}

/* ---- echo servers (engines) ---- */

static char server_sni[128];

static void echo_open(tlskit_conn *c, void *arg)
{
    (void)arg;
    const char *sni = tlskit_conn_servername(c);
    if (sni)
        snprintf(server_sni, sizeof(server_sni), "%s", sni);
}

static void echo_data(tlskit_conn *c, const void *d, size_t n, void *arg)
{
    (void)arg;
    tlskit_conn_write(c, d, n);
}

/* An echo engine on 127.0.0.1: TLS with certificate `cert` (NULL: plain TCP). */
static tlskit_engine *echo_start(const char *cert, tlskit_config **cfg, char port[16])
{
    *cfg = cert ? tk_server_config(cert) : tlskit_config_new();
    struct tlskit_engine_handlers h = {.on_open = echo_open, .on_data = echo_data};
    tlskit_engine *e = tlskit_engine_new(*cfg, &h);
    if (!e || tlskit_engine_set_workers(e, 1) != 0 || (!cert && tlskit_engine_set_plain(e, 1)) ||
        tlskit_engine_listen(e, "127.0.0.1", "0", 0) != 0 || tlskit_engine_start(e) != 0)
        return NULL;
    snprintf(port, 16, "%d", tlskit_engine_port(e));
    return e;
}

static void echo_free(tlskit_engine *e, tlskit_config *cfg)
{
    tlskit_engine_stop(e);
    tlskit_engine_free(e);
    tlskit_config_free(cfg);
}

/* ---- threads of this process ---- */

/* How many threads this process has, and how many of them are resolver threads. */
static int count_threads(int *resolvers)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    *resolvers = 0;
    if (!d)
        return -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        n++;
        char path[300], comm[64] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fgets(comm, sizeof(comm), f) && strncmp(comm, "tlskit-resolve", 14) == 0)
                (*resolvers)++;
            fclose(f);
        }
    }
    closedir(d);
    return n;
}

/* ---- "localhost" through the resolver thread ---- */

TK_TEST(resolve, localhost_goes_through_the_resolver_thread_plain_and_tls)
{
    tlskit_config *pcfg, *tcfg, *wcfg;
    char pport[16], tport[16], wport[16];
    tlskit_engine *plain = echo_start(NULL, &pcfg, pport);
    tlskit_engine *tls = echo_start("server", &tcfg, tport);
    tlskit_engine *wrong = echo_start("wronghost", &wcfg, wport);
    cr_assert(plain && tls && wrong, "echo servers did not start");
    cr_assert_eq(cli_start(30000), 0, "%s", tlskit_engine_error(cli));
    int r0;
    count_threads(&r0);
    cr_assert_eq(r0, 0, "a resolver thread before any name was asked for");

    int p = cli_open("localhost", pport, TLSKIT_CONNECT_PLAIN);
    int t = cli_open("localhost", tport, 0);
    int w = cli_open("localhost", wport, 0);
    cr_assert(cli_wait(p, 30000) && cli_wait(t, 30000) && cli_wait(w, 30000),
              "the connections did not end");
    int resolvers;
    count_threads(&resolvers);
    cr_expect(resolvers >= 1 && resolvers <= 2,
              "%d resolver threads (tlskit-resolve): one or two make the lookups", resolvers);

    cr_expect_eq(plans[p].rec.code, TLSKIT_E_NONE, "plain: %s", plans[p].rec.reason);
    cr_expect(plans[p].rec.ngot == 4 && memcmp(plans[p].rec.got, "ping", 4) == 0,
              "plain: no echo");
    cr_expect_eq(plans[t].rec.code, TLSKIT_E_NONE, "tls: %s", plans[t].rec.reason);
    cr_expect(plans[t].rec.ngot == 4 && memcmp(plans[t].rec.got, "ping", 4) == 0,
              "tls: no echo");
    cr_expect_str_eq(server_sni, "localhost", "the name is sent as SNI");
    /* The certificate is for wrong.example: the name checked is "localhost". */
    cr_expect_eq(plans[w].rec.code, TLSKIT_E_VERIFY, "wrong name: %s %s",
                 tlskit_error_name(plans[w].rec.code), plans[w].rec.reason);
    cr_expect(tk_contains(plans[w].rec.reason, "localhost") ||
                  tk_contains(plans[w].rec.reason, "host"),
              "%s", plans[w].rec.reason);
    struct tlskit_engine_stats st;
    tlskit_engine_read_stats(cli, &st);
    cr_expect_eq(st.connects, 3);
    cr_expect_eq(st.connect_failures, 1, "the handshake with the wrong name");

    cli_free();
    /* Released: the idle resolver thread leaves on its own. */
    int64_t end = tk_now_ms() + 10000;
    while (count_threads(&resolvers) > 0 && resolvers > 0 && tk_now_ms() < end)
        poll(NULL, 0, 10);
    cr_expect_eq(resolvers, 0, "the idle resolver thread did not exit after engine free");
    echo_free(plain, pcfg);
    echo_free(tls, tcfg);
    echo_free(wrong, wcfg);
}

/* ---- a DNS server of our own, in a mount namespace ---- */

static int report_fd = -1;

/* In the child: say what failed and exit 1. */
static void child_fail(int line, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
#define CHILD_CHECK(cond, ...)                                                          \
    do {                                                                                \
        if (!(cond))                                                                    \
            child_fail(__LINE__, __VA_ARGS__);                                          \
    } while (0)

static void child_fail(int line, const char *fmt, ...)
{
    char buf[1536];
    int n = snprintf(buf, sizeof(buf), "line %d: ", line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    ssize_t w = write(report_fd, buf, strlen(buf));
    (void)w;
    _exit(1);
}

enum dns_mode { DNS_SILENT, DNS_NXDOMAIN };

static struct {
    int udp, tcp;
    enum dns_mode mode;
    atomic_int queries, stop;
    pthread_t thread;
    pthread_mutex_t mu;
    char seen[1024]; /* " name name ...": the names asked for (under mu) */
} dns = {.udp = -1, .tcp = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

/* Note the query's name (labels joined with dots). */
static void dns_note(const unsigned char *q, size_t end)
{
    char name[256];
    size_t off = 12, n = 0;
    while (off < end && q[off] && n + q[off] + 1 < sizeof(name)) {
        if (n)
            name[n++] = '.';
        memcpy(name + n, q + off + 1, q[off]);
        n += q[off];
        off += (size_t)q[off] + 1;
    }
    name[n] = '\0';
    pthread_mutex_lock(&dns.mu);
    size_t used = strlen(dns.seen);
    if (used + n + 2 < sizeof(dns.seen))
        snprintf(dns.seen + used, sizeof(dns.seen) - used, " %s ", name);
    pthread_mutex_unlock(&dns.mu);
}

/* 1 when a query for name has arrived. */
static int dns_seen(const char *name)
{
    char key[300];
    snprintf(key, sizeof(key), " %s ", name);
    pthread_mutex_lock(&dns.mu);
    int yes = strstr(dns.seen, key) != NULL;
    pthread_mutex_unlock(&dns.mu);
    return yes;
}

/* The end of the question section of a query (header + one name + type + class), or 0. */
static size_t question_end(const unsigned char *q, size_t n)
{
    size_t off = 12;
    while (off < n && q[off] != 0) {
        if (q[off] & 0xc0)
            return 0;
        off += (size_t)q[off] + 1;
    }
    return off + 5 <= n ? off + 5 : 0;
}

/* Count the queries; answer NXDOMAIN (the question echoed, no records), or nothing. */
static void *dns_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&dns.stop)) {
        struct pollfd pfd = {.fd = dns.udp, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        unsigned char q[1500];
        struct sockaddr_storage from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(dns.udp, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
        if (n < 12)
            continue;
        size_t end = question_end(q, (size_t)n);
        if (end)
            dns_note(q, end);
        atomic_fetch_add(&dns.queries, 1);
        if (dns.mode != DNS_NXDOMAIN || !end)
            continue;
        q[2] |= 0x80;                      /* QR: a response; opcode and RD kept */
        q[3] = 0x83;                       /* RA, RCODE 3: NXDOMAIN */
        memset(q + 6, 0, 6);               /* no answer, authority or additional records */
        ssize_t s = sendto(dns.udp, q, end, 0, (struct sockaddr *)&from, fl);
        (void)s;
    }
    return NULL;
}

/* Bind UDP and TCP port 53 on the first free 127.0.0.N (N = 2..9): its address text. */
static const char *dns_bind(char *addr, size_t len)
{
    for (int n = 2; n <= 9; n++) {
        snprintf(addr, len, "127.0.0.%d", n);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
        inet_pton(AF_INET, addr, &sa.sin_addr);
        int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (u >= 0 && t >= 0 && bind(u, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
            bind(t, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(t, 16) == 0) {
            dns.udp = u;
            dns.tcp = t; /* never accepted: a TCP retry waits as the UDP query does */
            return addr;
        }
        if (u >= 0)
            close(u);
        if (t >= 0)
            close(t);
    }
    return NULL;
}

/* In the child: a private mount namespace whose /etc/resolv.conf names our server. */
static void child_namespace(const char *dir, enum dns_mode mode)
{
    CHILD_CHECK(unshare(CLONE_NEWNS) == 0,
                "unshare(CLONE_NEWNS): %s (the DNS tests need root and mount namespaces)",
                strerror(errno));
    CHILD_CHECK(mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0,
                "mount --make-rprivate /: %s", strerror(errno));
    char addr[32];
    CHILD_CHECK(dns_bind(addr, sizeof(addr)) != NULL,
                "cannot bind UDP+TCP port 53 on any of 127.0.0.2..9: %s", strerror(errno));
    char path[512], conf[256];
    snprintf(path, sizeof(path), "%s/resolv.conf", dir);
    int len = snprintf(conf, sizeof(conf), "nameserver %s\noptions timeout:5 attempts:2\n",
                       addr);
    FILE *f = fopen(path, "w");
    CHILD_CHECK(f && fwrite(conf, 1, (size_t)len, f) == (size_t)len && fclose(f) == 0,
                "write %s: %s", path, strerror(errno));
    CHILD_CHECK(mount(path, "/etc/resolv.conf", NULL, MS_BIND, NULL) == 0,
                "bind-mount %s over /etc/resolv.conf: %s", path, strerror(errno));
    dns.mode = mode;
    CHILD_CHECK(pthread_create(&dns.thread, NULL, dns_main, NULL) == 0, "dns thread");
}

static void child_dns_stop(void)
{
    atomic_store(&dns.stop, 1);
    pthread_join(dns.thread, NULL);
    close(dns.udp);
    close(dns.tcp);
}

/* Run body in a forked child inside its namespace; assert that it passed. */
static void in_namespace(void (*body)(void), enum dns_mode mode)
{
    char dir[256];
    tk_tmpdir(dir, sizeof(dir));
    int pfd[2];
    cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(pfd[0]);
        report_fd = pfd[1];
        child_namespace(dir, mode);
        body();
        child_dns_stop();
        CHILD_CHECK(tk_leak_check() == 0, "memory leaked (LeakSanitizer report above)");
        _exit(0);
    }
    close(pfd[1]);
    char msg[2048] = "";
    size_t have = 0;
    int64_t end = tk_now_ms() + 55000;
    for (;;) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int left = (int)(end - tk_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) {
            kill(pid, SIGKILL);
            snprintf(msg, sizeof(msg), "the child did not finish in time");
            break;
        }
        ssize_t n = read(pfd[0], msg + have, sizeof(msg) - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        msg[have] = '\0';
    }
    close(pfd[0]);
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    tk_rmtree(dir);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child (status 0x%x): %s", st, msg);
}

/* Wait until the fake server got a query for name: its lookup is running. */
static void wait_asked(const char *name, int ms)
{
    int64_t end = tk_now_ms() + ms;
    while (!dns_seen(name) && tk_now_ms() < end)
        poll(NULL, 0, 5);
    CHILD_CHECK(dns_seen(name), "the DNS server was never asked for %s (asked:%s)", name,
                dns.seen);
}

/* ---- a name that does not exist ---- */

static void nxdomain_body(void)
{
    CHILD_CHECK(cli_start(30000) == 0, "client engine: %s", tlskit_engine_error(cli));
    int i = cli_open("nosuch.example", "9", TLSKIT_CONNECT_PLAIN);
    CHILD_CHECK(cli_wait(i, 30000), "the connection to nosuch.example did not end");
    /* The same lookup here: its message is the one expected. */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int g = getaddrinfo("nosuch.example", "9", &hints, &res);
    if (res)
        freeaddrinfo(res);
    CHILD_CHECK(g == EAI_NONAME, "getaddrinfo here: %d %s, not EAI_NONAME", g, gai_strerror(g));
    char want[256];
    snprintf(want, sizeof(want), "resolve nosuch.example port 9: %s", gai_strerror(g));
    struct rec *r = &plans[i].rec;
    CHILD_CHECK(r->code == TLSKIT_E_RESOLVE, "code %s: %s", tlskit_error_name(r->code),
                r->reason);
    CHILD_CHECK(strcmp(r->reason, want) == 0, "reason \"%s\", not \"%s\"", r->reason, want);
    CHILD_CHECK(atomic_load(&dns.queries) >= 1, "the lookup never reached our DNS server");
    struct tlskit_engine_stats st;
    tlskit_engine_read_stats(cli, &st);
    CHILD_CHECK(st.connect_failures == 1 && st.connects == 0, "counters: %llu failures",
                (unsigned long long)st.connect_failures);
    cli_free();
}

TK_TEST(resolve, a_name_that_does_not_exist_is_a_resolve_error)
{
    in_namespace(nxdomain_body, DNS_NXDOMAIN);
}

/* ---- a DNS server that never answers ---- */

static void silent_body(void)
{
    tlskit_config *pcfg;
    char pport[16];
    tlskit_engine *plain = echo_start(NULL, &pcfg, pport);
    CHILD_CHECK(plain != NULL, "echo server");
    CHILD_CHECK(cli_start(2000) == 0, "client engine: %s", tlskit_engine_error(cli));
    int slow = cli_open("backend.example", "8080", TLSKIT_CONNECT_PLAIN);
    wait_asked("backend.example", 10000); /* the lookup is running on a resolver thread */
    /* The same (only) worker serves a numeric connection meanwhile. */
    int fast = cli_open("127.0.0.1", pport, TLSKIT_CONNECT_PLAIN);
    CHILD_CHECK(cli_wait(fast, 30000), "the numeric connection did not end");
    CHILD_CHECK(cli_wait(slow, 30000), "the connection to backend.example did not end");
    struct rec *s = &plans[slow].rec, *f = &plans[fast].rec;
    CHILD_CHECK(f->code == TLSKIT_E_NONE && f->ngot == 4 && memcmp(f->got, "ping", 4) == 0,
                "numeric: %s %s", tlskit_error_name(f->code), f->reason);
    CHILD_CHECK(f->echoed_ms < s->closed_ms,
                "the echo came %lld ms after the lookup ended: the worker waited on DNS",
                (long long)(f->echoed_ms - s->closed_ms));
    CHILD_CHECK(s->code == TLSKIT_E_TIMEOUT, "backend.example: %s %s",
                tlskit_error_name(s->code), s->reason);
    CHILD_CHECK(strcmp(s->reason, "resolve backend.example port 8080: timed out after 2.000 s")
                    == 0, "reason: %s", s->reason);
    /* The resolver itself gives up after 10 s (timeout:5 attempts:2). */
    CHILD_CHECK(s->closed_ms - s->opened_ms < 7000, "ended after %lld ms",
                (long long)(s->closed_ms - s->opened_ms));
    CHILD_CHECK(s->closed_ms - s->opened_ms >= 1900, "ended after %lld ms, before its deadline",
                (long long)(s->closed_ms - s->opened_ms));
    struct tlskit_engine_stats st;
    tlskit_engine_read_stats(cli, &st);
    CHILD_CHECK(st.connects == 1 && st.connect_failures == 1, "counters: %llu connects, %llu "
                "failures", (unsigned long long)st.connects,
                (unsigned long long)st.connect_failures);
    cli_free();
    echo_free(plain, pcfg);
}

TK_TEST(resolve, a_silent_dns_server_times_out_and_blocks_no_other_connection)
{
    in_namespace(silent_body, DNS_SILENT);
}

static void stop_free_body(void)
{
    int res0;
    int threads0 = count_threads(&res0), fds0 = tk_fd_count();
    CHILD_CHECK(cli_start(30000) == 0, "client engine: %s", tlskit_engine_error(cli));
    int i = cli_open("stuck.example", "443", 0);
    int a = cli_open("aborted.example", "8080", TLSKIT_CONNECT_PLAIN);
    /* Both getaddrinfo() calls are blocked, one on each resolver thread. */
    wait_asked("stuck.example", 10000);
    wait_asked("aborted.example", 10000);
    /* Aborted while its lookup runs: on_close at once, the late answer dropped. */
    atomic_store(&plans[a].abort_req, 1);
    CHILD_CHECK(cli_wait(a, 5000), "the aborted connection did not end");
    CHILD_CHECK(plans[a].rec.code == TLSKIT_E_CLOSED &&
                    strcmp(plans[a].rec.reason, "aborted by the test") == 0,
                "aborted: %s %s", tlskit_error_name(plans[a].rec.code), plans[a].rec.reason);
    CHILD_CHECK(!atomic_load(&plans[i].rec.done), "stuck.example ended early: %s",
                plans[i].rec.reason);

    int64_t t0 = tk_now_ms();
    tlskit_engine_stop(cli);
    tlskit_engine_free(cli);
    int64_t took = tk_now_ms() - t0;
    tlskit_config_free(cli_cfg);
    CHILD_CHECK(took < 3000, "engine stop + free took %lld ms (waited for the lookup?)",
                (long long)took);
    CHILD_CHECK(atomic_load(&plans[i].rec.done), "no on_close for the connection");
    CHILD_CHECK(plans[i].rec.code == TLSKIT_E_NONE &&
                    tk_contains(plans[i].rec.reason, "stopping (still connecting)"),
                "on_close: %s %s", tlskit_error_name(plans[i].rec.code), plans[i].rec.reason);
    /* Left: only the (at most two) resolver threads still blocked in getaddrinfo(). */
    int res1;
    int threads1 = count_threads(&res1);
    CHILD_CHECK(res1 <= 2 && threads1 <= threads0 + res1,
                "after free: %d threads (%d resolvers), %d before", threads1, res1, threads0);
    /* They end when the resolver gives up (10 s), dropping their answers: then nothing
     * is left of the engine (the leak check follows in in_namespace()). */
    int64_t end = tk_now_ms() + 40000;
    while ((count_threads(&res1), res1 > 0) && tk_now_ms() < end)
        poll(NULL, 0, 20);
    CHILD_CHECK(res1 == 0, "a resolver thread is still there after 40 s");
    threads1 = count_threads(&res1);
    int fds1 = tk_fd_count();
    CHILD_CHECK(threads1 == threads0 && fds1 == fds0,
                "threads %d -> %d, descriptors %d -> %d", threads0, threads1, fds0, fds1);
}

TK_TEST(resolve, engine_free_does_not_wait_for_a_blocked_lookup)
{
    in_namespace(stop_free_body, DNS_SILENT);
}

/* ---- tlsserver --forward localhost:PORT ---- */

TK_TEST(resolve, tlsserver_forwards_to_a_name)
{
    tlskit_config *pcfg;
    char pport[16];
    tlskit_engine *backend = echo_start(NULL, &pcfg, pport);
    cr_assert_not_null(backend);
    char target[64];
    snprintf(target, sizeof(target), "localhost:%s", pport);
    const char *extra[] = {"--forward", target, "--workers", "1", NULL};
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", extra);
    tlskit_config *cfg = tk_client_config("ca.crt");
    tlskit_conn *c = tlskit_conn_new(cfg);
    cr_assert_not_null(c);
    cr_assert_eq(tlskit_conn_set_servername(c, "localhost"), 0);
    cr_assert_eq(tlskit_conn_connect(c, "127.0.0.1", s.portstr), 0, "%s", tlskit_conn_error(c));
    cr_assert_eq(tlskit_conn_write_all(c, "hello by name", 13), 0, "%s", tlskit_conn_error(c));
    char got[13];
    tk_conn_read_exact(c, got, sizeof(got));
    cr_expect(memcmp(got, "hello by name", 13) == 0, "the echo through the name differs");
    tlskit_conn_close(c);
    tlskit_conn_free(c);
    tlskit_config_free(cfg);
    tk_server_stop(&s);
    echo_free(backend, pcfg);
}
