/* SPDX-License-Identifier: MIT */
/* Shared helpers for the tlskit Criterion suites; see common.h. */
#include "common.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <openssl/ssl.h>

#if TK_HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

extern char **environ;

/* ---------------------------------------------------------------------------------------
 * Per-test resource checks
 * ------------------------------------------------------------------------------------- */

#define TK_MAX_FDS 256
static int base_fds[TK_MAX_FDS];
static char base_targets[TK_MAX_FDS][128];
static int base_nfds;

/* Fills fds[] (and targets, when not NULL) with the open descriptors; returns the count
 * (not counting the directory stream used to list them). */
static int list_fds(int *fds, char (*targets)[128], int max)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int self = dirfd(d), n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        if (fd == self)
            continue;
        if (n < max) {
            fds[n] = fd;
            if (targets != NULL) {
                char link[64];
                snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
                ssize_t k = readlink(link, targets[n], sizeof targets[n] - 1);
                targets[n][k > 0 ? k : 0] = '\0';
            }
        }
        n++;
    }
    closedir(d);
    return n;
}

int tk_fd_count(void)
{
    int fds[TK_MAX_FDS];
    return list_fds(fds, NULL, TK_MAX_FDS);
}

int tk_leak_check(void)
{
#if TK_HAVE_LSAN
    return __lsan_do_recoverable_leak_check();
#else
    return 0;
#endif
}

void tk_test_begin(void)
{
    /* OpenSSL opens nothing it keeps on Linux (getrandom), but initialise it before the
     * baseline anyway so a lazily opened random device is not counted as a leak. */
    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL);
    unsigned char b;
    (void)RAND_bytes(&b, 1);
    base_nfds = list_fds(base_fds, base_targets, TK_MAX_FDS);
    cr_assert_geq(base_nfds, 0, "cannot list /proc/self/fd");
}

static int was_open(int fd)
{
    for (int i = 0; i < base_nfds && i < TK_MAX_FDS; i++)
        if (base_fds[i] == fd)
            return 1;
    return 0;
}

void tk_test_end(void)
{
    int st;
    errno = 0;
    pid_t r = waitpid(-1, &st, WNOHANG);
    cr_assert(r == -1 && errno == ECHILD,
              "test left a child process behind (waitpid: %d): kill and reap it", (int)r);

    int fds[TK_MAX_FDS];
    char targets[TK_MAX_FDS][128];
    int n = list_fds(fds, targets, TK_MAX_FDS);
    if (n != base_nfds) {
        char msg[2048] = "";
        size_t off = 0;
        for (int i = 0; i < n && i < TK_MAX_FDS; i++)
            if (!was_open(fds[i]) && off < sizeof msg - 1)
                off += (size_t)snprintf(msg + off, sizeof msg - off, " %d->%s", fds[i],
                                        targets[i]);
        cr_assert_fail("file descriptor leak: %d open at start, %d at end; new:%s", base_nfds,
                       n, msg);
    }
    cr_assert_eq(tk_leak_check(), 0,
                 "memory leaked during this test (LeakSanitizer report above)");
}

/* ---------------------------------------------------------------------------------------
 * Child process registry: the suite's .fini kills whatever a failed test left running.
 * ------------------------------------------------------------------------------------- */

#define TK_MAX_PROCS 64
static pid_t procs[TK_MAX_PROCS];

static void proc_register(pid_t pid)
{
    for (int i = 0; i < TK_MAX_PROCS; i++)
        if (procs[i] == 0) {
            procs[i] = pid;
            return;
        }
}

static void proc_unregister(pid_t pid)
{
    for (int i = 0; i < TK_MAX_PROCS; i++)
        if (procs[i] == pid)
            procs[i] = 0;
}

void tk_suite_fini(void)
{
    for (int i = 0; i < TK_MAX_PROCS; i++)
        if (procs[i] > 0) {
            kill(procs[i], SIGKILL);
            waitpid(procs[i], NULL, 0);
            procs[i] = 0;
        }
}

/* ---------------------------------------------------------------------------------------
 * Strings, time, files
 * ------------------------------------------------------------------------------------- */

int64_t tk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tk_wait_until(int (*pred)(void *), void *arg, int timeout_ms)
{
    int64_t end = tk_now_ms() + timeout_ms;
    int v;
    while (!(v = pred(arg)) && tk_now_ms() < end)
        poll(NULL, 0, 10);
    return v;
}

int tk_contains(const char *h, const char *n)
{
    return h != NULL && n != NULL && strstr(h, n) != NULL;
}

int tk_contains_ci(const char *h, const char *n)
{
    return h != NULL && n != NULL && strcasestr(h, n) != NULL;
}

int tk_matches(const char *s, const char *re)
{
    regex_t rx;
    if (s == NULL || regcomp(&rx, re, REG_EXTENDED | REG_NOSUB | REG_NEWLINE) != 0)
        return 0;
    int ok = regexec(&rx, s, 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}

const char *tk_str(const char *s)
{
    return s != NULL ? s : "(null)";
}

const char *tk_certs_dir(void)
{
    const char *d = getenv("TLSKIT_TEST_CERTS");
#ifdef TK_DEFAULT_CERTS
    if (d == NULL || *d == '\0')
        d = TK_DEFAULT_CERTS;
#endif
    cr_assert(d != NULL && *d != '\0', "TLSKIT_TEST_CERTS is not set");
    return d;
}

const char *tk_cert(const char *file)
{
    static _Thread_local char ring[16][1024];
    static _Thread_local unsigned idx;
    char *buf = ring[idx++ % 16];
    int n = snprintf(buf, sizeof ring[0], "%s/%s", tk_certs_dir(), file);
    cr_assert(n > 0 && (size_t)n < sizeof ring[0]);
    cr_assert(access(buf, R_OK) == 0,
              "%s: %s (the gen_certs test makes the certificates: run the suite via ctest)",
              buf, strerror(errno));
    return buf;
}

char *tk_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    for (;;) {
        if (cap - n < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        if (k == 0)
            break;
        n += k;
    }
    fclose(f);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

void tk_tmpdir(char *buf, size_t n)
{
    const char *t = getenv("TMPDIR");
    if (t == NULL || *t == '\0')
        t = "/tmp";
    int k = snprintf(buf, n, "%s/tlskit-test.XXXXXX", t);
    cr_assert(k > 0 && (size_t)k < n);
    cr_assert_not_null(mkdtemp(buf), "mkdtemp %s: %s", buf, strerror(errno));
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tk_rmtree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void tk_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

void tk_fill_pattern(unsigned char *buf, size_t len, uint32_t seed)
{
    uint32_t x = seed ? seed : 0x9e3779b9u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)(x >> 11);
    }
}

/* ---------------------------------------------------------------------------------------
 * Configurations
 * ------------------------------------------------------------------------------------- */

void tk_config_keypair(tlskit_config *cfg, const char *name)
{
    char crt[256], key[256];
    snprintf(crt, sizeof crt, "%s.crt", name);
    snprintf(key, sizeof key, "%s.key", name);
    int rc = tlskit_config_set_keypair_file(cfg, tk_cert(crt), tk_cert(key));
    cr_assert_eq(rc, 0, "keypair %s: %s", name, tk_str(tlskit_config_error(cfg)));
}

tlskit_config *tk_server_config(const char *name)
{
    tlskit_config *cfg = tlskit_config_new();
    cr_assert_not_null(cfg);
    tk_config_keypair(cfg, name);
    return cfg;
}

tlskit_config *tk_client_config(const char *ca)
{
    tlskit_config *cfg = tlskit_config_new();
    cr_assert_not_null(cfg);
    if (ca != NULL) {
        int rc = tlskit_config_add_ca_file(cfg, tk_cert(ca));
        cr_assert_eq(rc, 0, "ca %s: %s", ca, tk_str(tlskit_config_error(cfg)));
    }
    return cfg;
}

/* ---------------------------------------------------------------------------------------
 * Handshakes over a socketpair
 * ------------------------------------------------------------------------------------- */

void tk_socketpair(int sv[2])
{
    int rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    cr_assert_eq(rc, 0, "socketpair: %s", strerror(errno));
}

static void side_run(struct tk_side *s, int server)
{
    s->err[0] = '\0';
    s->conn = tlskit_conn_new(s->cfg);
    if (s->conn == NULL) {
        s->rc = -1;
        s->code = TLSKIT_E_NOMEM;
        return;
    }
    s->rc = server ? tlskit_conn_wrap_server(s->conn, s->fd)
                   : tlskit_conn_wrap_client(s->conn, s->fd, s->servername);
    if (s->rc == 0)
        s->rc = tlskit_conn_handshake(s->conn);
    s->code = tlskit_conn_error_code(s->conn);
    snprintf(s->err, sizeof s->err, "%s", tk_str(tlskit_conn_error(s->conn)));
    if (s->rc != 0)
        shutdown(s->fd, SHUT_RDWR);
}

static void *server_side_thread(void *arg)
{
    side_run(arg, 1);
    return NULL;
}

void tk_handshake_pair(struct tk_side *srv, struct tk_side *cli)
{
    int sv[2];
    tk_socketpair(sv);
    srv->fd = sv[0];
    cli->fd = sv[1];
    tk_handshake_fds(srv, cli);
}

void tk_handshake_fds(struct tk_side *srv, struct tk_side *cli)
{
    srv->conn = cli->conn = NULL;
    pthread_t t = tk_thread_start(server_side_thread, srv);
    side_run(cli, 0);
    tk_thread_join(t);
}

void tk_side_free(struct tk_side *s)
{
    tlskit_conn_free(s->conn);
    s->conn = NULL;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

int tk_nb_handshake(tlskit_conn *a, tlskit_conn *b, int timeout_ms, char *err, size_t errlen,
                    int *wants)
{
    tlskit_conn *c[2] = {a, b};
    int rc[2] = {TLSKIT_WANT_READ, TLSKIT_WANT_READ};
    int64_t end = tk_now_ms() + timeout_ms;
    err[0] = '\0';
    while (rc[0] != 0 || rc[1] != 0) {
        struct pollfd pfd[2];
        nfds_t n = 0;
        for (int i = 0; i < 2; i++) {
            if (rc[i] == 0)
                continue;
            rc[i] = tlskit_conn_handshake(c[i]);
            if (rc[i] == -1) {
                snprintf(err, errlen, "%s: %s: %s", i == 0 ? "first" : "second",
                         tlskit_error_name(tlskit_conn_error_code(c[i])),
                         tk_str(tlskit_conn_error(c[i])));
                return -1;
            }
            if (rc[i] == 0)
                continue;
            if (rc[i] != TLSKIT_WANT_READ && rc[i] != TLSKIT_WANT_WRITE) {
                snprintf(err, errlen, "handshake returned %d", rc[i]);
                return -1;
            }
            if (wants != NULL)
                (*wants)++;
            pfd[n++] = (struct pollfd){.fd = tlskit_conn_fd(c[i]),
                                       .events = tlskit_want_events(rc[i])};
        }
        if (n == 0)
            break;
        int64_t left = end - tk_now_ms();
        if (left <= 0) {
            snprintf(err, errlen, "handshakes did not complete within %d ms", timeout_ms);
            return -1;
        }
        /* The peer's progress is what unblocks us: wait briefly, then retry both. */
        poll(pfd, n, left < 50 ? (int)left : 50);
    }
    return 0;
}

void tk_conn_read_exact(tlskit_conn *conn, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = tlskit_conn_read(conn, (char *)buf + got, len - got);
        cr_assert_gt(n, 0, "read after %zu of %zu bytes: %zd %s: %s", got, len, n,
                     tlskit_error_name(tlskit_conn_error_code(conn)),
                     tk_str(tlskit_conn_error(conn)));
        got += (size_t)n;
    }
}

pthread_t tk_thread_start(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    int rc = pthread_create(&t, NULL, fn, arg);
    cr_assert_eq(rc, 0, "pthread_create: %s", strerror(rc));
    return t;
}

void *tk_thread_join(pthread_t t)
{
    void *ret = NULL;
    int rc = pthread_join(t, &ret);
    cr_assert_eq(rc, 0, "pthread_join: %s", strerror(rc));
    return ret;
}

/* ---------------------------------------------------------------------------------------
 * Raw sockets
 * ------------------------------------------------------------------------------------- */

static socklen_t make_addr(const char *addr, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        return sizeof *sin;
    }
    cr_assert_eq(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1, "bad address %s", addr);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    return sizeof *sin6;
}

int tk_tcp_bound(const char *addr, int backlog, int *port)
{
    struct sockaddr_storage ss;
    socklen_t len = make_addr(addr, 0, &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
    if (ss.ss_family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    cr_assert_eq(bind(fd, (struct sockaddr *)&ss, len), 0, "bind %s: %s", addr,
                 strerror(errno));
    if (backlog > 0)
        cr_assert_eq(listen(fd, backlog), 0, "listen: %s", strerror(errno));
    len = sizeof ss;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    *port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                    : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

int tk_tcp_connect(const char *addr, int port)
{
    struct sockaddr_storage ss;
    socklen_t len = make_addr(addr, port, &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
    cr_assert_eq(connect(fd, (struct sockaddr *)&ss, len), 0, "connect %s:%d: %s", addr,
                 port, strerror(errno));
    return fd;
}

tlskit_listener *tk_listen(tlskit_config *cfg, const char *host, const char *port)
{
    tlskit_listener *l = tlskit_listener_new(cfg);
    cr_assert_not_null(l);
    int rc = tlskit_listener_listen(l, host, port, 0);
    cr_assert_eq(rc, 0, "listen %s:%s: %s", tk_str(host), port, tk_str(tlskit_listener_error(l)));
    return l;
}

/* ---------------------------------------------------------------------------------------
 * Child processes
 * ------------------------------------------------------------------------------------- */

static const char *bin_path(const char *env, const char *fallback)
{
    const char *p = getenv(env);
    if (p == NULL || *p == '\0')
        p = fallback;
    cr_assert(p != NULL && *p != '\0', "%s is not set", env);
    cr_assert(access(p, X_OK) == 0, "%s=%s: %s", env, p, strerror(errno));
    return p;
}

const char *tk_server_bin(void)
{
#ifdef TK_DEFAULT_SERVER_BIN
    return bin_path("TLSKIT_SERVER_BIN", TK_DEFAULT_SERVER_BIN);
#else
    return bin_path("TLSKIT_SERVER_BIN", NULL);
#endif
}

const char *tk_client_bin(void)
{
#ifdef TK_DEFAULT_CLIENT_BIN
    return bin_path("TLSKIT_CLIENT_BIN", TK_DEFAULT_CLIENT_BIN);
#else
    return bin_path("TLSKIT_CLIENT_BIN", NULL);
#endif
}

void tk_proc_start(struct tk_proc *p, const char *const argv[])
{
    int in[2], out[2], err[2];
    memset(p, 0, sizeof *p);
    cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
    /* execve's argv is char *const[] for historical reasons; it is not written. */
    char *args[64];
    size_t n = 0;
    for (; argv[n] != NULL && n < 63; n++)
        args[n] = (char *)(uintptr_t)argv[n];
    args[n] = NULL;
    /* fork+exec rather than posix_spawn: the child must die with the test worker
     * (PR_SET_PDEATHSIG) even when Criterion kills a timed-out worker with SIGKILL and
     * no .fini runs. A CLOEXEC pipe reports an exec failure. */
    int status[2];
    cr_assert_eq(pipe2(status, O_CLOEXEC), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* Only async-signal-safe calls from here to exec. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        /* Nothing of the test runner's (sockets, Criterion's pipes) reaches the child,
         * except the status pipe, which closes on exec. */
        for (int fd = 3; fd < 1024; fd++)
            if (fd != status[1])
                close(fd);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        execve(args[0], args, environ);
        int e = errno;
        ssize_t w = write(status[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    p->pid = pid;
    close(status[1]);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    int exec_errno = 0;
    ssize_t got;
    do
        got = read(status[0], &exec_errno, sizeof exec_errno);
    while (got < 0 && errno == EINTR);
    close(status[0]);
    if (got == (ssize_t)sizeof exec_errno) {
        waitpid(pid, NULL, 0);
        close(in[1]);
        close(out[0]);
        close(err[0]);
        cr_assert_fail("exec %s: %s", argv[0], strerror(exec_errno));
    }
    proc_register(p->pid);
    p->in = in[1];
    p->out = out[0];
    p->err = err[0];
    fcntl(p->out, F_SETFL, O_NONBLOCK);
    fcntl(p->err, F_SETFL, O_NONBLOCK);
    fcntl(p->in, F_SETFL, O_NONBLOCK);
    p->outbuf = calloc(1, 1);
    p->errbuf = calloc(1, 1);
    cr_assert(p->outbuf != NULL && p->errbuf != NULL);
}

/* Read what is available on *fd into (buf,len); closes *fd at EOF. */
static void drain(int *fd, char **buf, size_t *len)
{
    char tmp[65536];
    while (*fd >= 0) {
        ssize_t n = read(*fd, tmp, sizeof tmp);
        if (n > 0) {
            char *nb = realloc(*buf, *len + (size_t)n + 1);
            cr_assert_not_null(nb);
            memcpy(nb + *len, tmp, (size_t)n);
            *len += (size_t)n;
            nb[*len] = '\0';
            *buf = nb;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        close(*fd);
        *fd = -1;
    }
}

/* One round: wait up to ms for output (and, when want_in, for stdin to take data). */
static int proc_poll(struct tk_proc *p, int want_in, int ms)
{
    struct pollfd pfd[3];
    int n = 0, in_idx = -1;
    if (p->out >= 0)
        pfd[n++] = (struct pollfd){.fd = p->out, .events = POLLIN};
    if (p->err >= 0)
        pfd[n++] = (struct pollfd){.fd = p->err, .events = POLLIN};
    if (want_in && p->in >= 0) {
        in_idx = n;
        pfd[n++] = (struct pollfd){.fd = p->in, .events = POLLOUT};
    }
    if (n == 0) {
        poll(NULL, 0, ms);
        return 0;
    }
    int r = poll(pfd, (nfds_t)n, ms);
    if (r > 0) {
        drain(&p->out, &p->outbuf, &p->outlen);
        drain(&p->err, &p->errbuf, &p->errlen);
    }
    return in_idx >= 0 && r > 0 && (pfd[in_idx].revents & (POLLOUT | POLLERR | POLLHUP));
}

static size_t count_of(const char *h, const char *n)
{
    size_t c = 0, nl = strlen(n);
    for (const char *s = h; s != NULL && (s = strstr(s, n)) != NULL; s += nl)
        c++;
    return c;
}

int tk_proc_wait_for_n(struct tk_proc *p, int stream, const char *needle, size_t times,
                       int timeout_ms)
{
    int64_t end = tk_now_ms() + timeout_ms;
    for (;;) {
        const char *buf = stream == 1 ? p->outbuf : p->errbuf;
        if (count_of(buf, needle) >= times)
            return 1;
        int fd = stream == 1 ? p->out : p->err;
        int64_t left = end - tk_now_ms();
        if (fd < 0 || left <= 0)
            return 0;
        proc_poll(p, 0, (int)(left < 100 ? left : 100));
    }
}

int tk_proc_wait_for(struct tk_proc *p, int stream, const char *needle, int timeout_ms)
{
    return tk_proc_wait_for_n(p, stream, needle, 1, timeout_ms);
}

void tk_proc_feed(struct tk_proc *p, const void *data, size_t len, int close_in)
{
    /* A child that exits without reading all of its input must not kill the test with
     * SIGPIPE: block it around the writes and discard a pending one. */
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    size_t off = 0;
    int64_t end = tk_now_ms() + 120000;
    while (off < len && p->in >= 0 && tk_now_ms() < end) {
        if (!proc_poll(p, 1, 100))
            continue;
        ssize_t n = write(p->in, (const char *)data + off, len - off);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            break; /* EPIPE: the child closed its stdin */
    }
    if (close_in && p->in >= 0) {
        close(p->in);
        p->in = -1;
    }
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int tk_proc_wait(struct tk_proc *p, int timeout_ms)
{
    int64_t end = tk_now_ms() + timeout_ms;
    while (!p->exited) {
        int st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->exited = 1;
            p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            proc_unregister(p->pid);
            break;
        }
        if (tk_now_ms() > end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            proc_unregister(p->pid);
            p->exited = 1;
            p->status = 128 + SIGKILL;
            cr_assert_fail("pid %d did not exit within %d ms; stderr so far:\n%s", (int)p->pid,
                           timeout_ms, p->errbuf);
        }
        proc_poll(p, 0, 50);
    }
    /* The child is gone: collect the rest of its output (to EOF). */
    for (int i = 0; i < 100 && (p->out >= 0 || p->err >= 0); i++)
        proc_poll(p, 0, 20);
    return p->status;
}

void tk_proc_free(struct tk_proc *p)
{
    if (p->in >= 0)
        close(p->in);
    if (p->out >= 0)
        close(p->out);
    if (p->err >= 0)
        close(p->err);
    p->in = p->out = p->err = -1;
    free(p->outbuf);
    free(p->errbuf);
    p->outbuf = p->errbuf = NULL;
}

int tk_run(struct tk_proc *p, const char *const argv[], const void *in, size_t inlen,
           int timeout_ms)
{
    tk_proc_start(p, argv);
    tk_proc_feed(p, in, inlen, 1);
    return tk_proc_wait(p, timeout_ms);
}

void tk_run_ok(const char *const argv[], int timeout_ms)
{
    struct tk_proc p;
    int code = tk_run(&p, argv, NULL, 0, timeout_ms);
    cr_assert_eq(code, 0, "%s %s %s failed (%d): %s", argv[0], tk_str(argv[1]), tk_str(argv[2]),
                 code, p.errbuf);
    tk_proc_free(&p);
}

int tk_run_app(struct tk_proc *p, const char *bin, const char *const args[], const void *in,
               size_t inlen, int timeout_ms)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = bin;
    for (int i = 0; args[i] != NULL && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return tk_run(p, argv, in, inlen, timeout_ms);
}

void tk_server_start(struct tk_server *s, const char *cert, const char *bind,
                     const char *const extra[])
{
    const char *argv[64];
    int n = 0;
    char crt[256], key[256];
    argv[n++] = tk_server_bin();
    argv[n++] = "--port";
    argv[n++] = "0";
    if (bind != NULL) {
        argv[n++] = "--bind";
        argv[n++] = bind;
    }
    if (cert != NULL) {
        /* NAME -> NAME.crt / NAME.key */
        snprintf(crt, sizeof crt, "%s.crt", cert);
        snprintf(crt, sizeof crt, "%s", tk_cert(crt));
        snprintf(key, sizeof key, "%s.key", cert);
        snprintf(key, sizeof key, "%s", tk_cert(key));
        argv[n++] = "--cert";
        argv[n++] = crt;
        argv[n++] = "--key";
        argv[n++] = key;
    }
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    memset(s, 0, sizeof *s);
    tk_proc_start(&s->p, argv);
    close(s->p.in);
    s->p.in = -1;
    int got = tk_proc_wait_for(&s->p, 1, "\n", 30000);
    cr_assert(got, "tlsserver printed no listening line; stdout: %s; stderr: %s",
              s->p.outbuf, s->p.errbuf);
    const char *prefix = "tlsserver: listening on ";
    cr_assert(strncmp(s->p.outbuf, prefix, strlen(prefix)) == 0,
              "first stdout line is not '%s...': %s", prefix, s->p.outbuf);
    size_t linelen = strcspn(s->p.outbuf, "\n");
    cr_assert_lt(linelen, sizeof s->listening);
    memcpy(s->listening, s->p.outbuf, linelen);
    s->listening[linelen] = '\0';
    /* The port: after the last ':' of the first address. */
    char first[256];
    snprintf(first, sizeof first, "%s", s->listening + strlen(prefix));
    first[strcspn(first, ",")] = '\0';
    const char *colon = strrchr(first, ':');
    cr_assert_not_null(colon, "no port in %s", s->listening);
    s->port = atoi(colon + 1);
    cr_assert(s->port > 0 && s->port < 65536, "bad port in %s", s->listening);
    snprintf(s->portstr, sizeof s->portstr, "%d", s->port);
}

void tk_server_stop(struct tk_server *s)
{
    if (!s->p.exited)
        kill(s->p.pid, SIGTERM);
    int code = tk_proc_wait(&s->p, 30000);
    cr_assert(!tk_contains(s->p.outbuf, "PRIVATE KEY") &&
                  !tk_contains(s->p.errbuf, "PRIVATE KEY"),
              "tlsserver printed key material");
    cr_assert_eq(code, 0, "tlsserver exit status %d after SIGTERM; stderr:\n%s", code,
                 s->p.errbuf);
    tk_proc_free(&s->p);
}

/* ---- a listener answering one byte per connection ---- */

void *tk_byte_server_main(void *arg)
{
    struct tk_byte_server *r = arg;
    for (int i = 0; i < r->conns && i < 8; i++) {
        tlskit_conn *conn = NULL;
        if (tlskit_listener_accept(r->l, &conn, 20000) != 0) {
            snprintf(r->err, sizeof r->err, "accept: %s", tk_str(tlskit_listener_error(r->l)));
            return NULL;
        }
        char ch;
        if (tlskit_conn_read(conn, &ch, 1) == 1)
            tlskit_conn_write_all(conn, &ch, 1);
        r->reused[i] = tlskit_conn_session_reused(conn);
        tlskit_conn_close(conn);
        tlskit_conn_free(conn);
        if (i == 0 && r->reload_to && tlskit_listener_reload(r->l, r->reload_to) != 0)
            snprintf(r->err, sizeof r->err, "reload: %s", tk_str(tlskit_listener_error(r->l)));
    }
    return NULL;
}
