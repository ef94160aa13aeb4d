/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the tlskit Criterion suites.
 *
 * Every test is declared with TK_TEST() (not Criterion's Test()): it runs the body and
 * then checks that the test left nothing behind -- no leaked memory (LeakSanitizer, in
 * sanitizer builds), no open file descriptor, no child process. Those checks run inside
 * the test body on purpose: Criterion 2.4 prints assertion failures raised from a suite's
 * .fini but still reports the test as passed.
 */
#ifndef TLSKIT_TESTS_COMMON_H
#define TLSKIT_TESTS_COMMON_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <criterion/criterion.h>

#include <tlskit/tlskit.h>

#if defined(__SANITIZE_ADDRESS__)
#define TK_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TK_HAVE_LSAN 1
#endif
#endif
#ifndef TK_HAVE_LSAN
#define TK_HAVE_LSAN 0
#endif

/* Generous: sanitizer builds on two cores are slow. No test should come close. */
#define TK_TIMEOUT_S 60

/* Every suite: TK_SUITE(name); its .fini stops any process a failed test left running. */
#define TK_SUITE(suite) TestSuite(suite, .fini = tk_suite_fini, .timeout = TK_TIMEOUT_S)

#define TK_TEST(suite, name)                                                            \
    static void tk_body_##suite##_##name(void);                                        \
    Test(suite, name)                                                                   \
    {                                                                                   \
        tk_test_begin();                                                                \
        tk_body_##suite##_##name();                                                     \
        tk_test_end();                                                                  \
    }                                                                                   \
    static void tk_body_##suite##_##name(void)

void tk_test_begin(void);
void tk_test_end(void);
void tk_suite_fini(void);

/* Resource accounting, also used by the self-test of the checks. */
int tk_fd_count(void);
/* Non-zero when LeakSanitizer finds memory that is no longer reachable (0 without ASan). */
int tk_leak_check(void);

/* ---- strings and time ---- */

/* Milliseconds on a monotonic clock. */
int64_t tk_now_ms(void);
/* Poll pred(arg) every 10 ms until it holds or timeout_ms passed; its last value. */
int tk_wait_until(int (*pred)(void *), void *arg, int timeout_ms);
int tk_contains(const char *haystack, const char *needle);       /* NULL-safe */
int tk_contains_ci(const char *haystack, const char *needle);    /* case-insensitive */
/* Does s match the POSIX extended regular expression re? */
int tk_matches(const char *s, const char *re);
/* "(null)" for NULL, for messages. */
const char *tk_str(const char *s);

/* ---- certificates and files ---- */

/* Directory holding the generated certificates ($TLSKIT_TEST_CERTS). */
const char *tk_certs_dir(void);
/* Path of a file in the certificate directory. Points into a per-thread ring of
 * buffers: valid until 16 more calls from the same thread. */
const char *tk_cert(const char *file);
/* Whole file, NUL-terminated, malloc'ed; *len (optional) excludes the NUL. */
char *tk_read_file(const char *path, size_t *len);
/* A fresh private directory (mkdtemp) and its recursive removal. */
void tk_tmpdir(char *buf, size_t n);
void tk_rmtree(const char *dir);
void tk_write_file(const char *path, const void *data, size_t len);
/* Deterministic pseudo-random bytes. */
void tk_fill_pattern(unsigned char *buf, size_t len, uint32_t seed);

/* ---- configurations (assert on failure) ---- */

/* Server config with NAME.crt / NAME.key from the certificate directory. */
tlskit_config *tk_server_config(const char *name);
/* Client config trusting CA file `ca` (e.g. "ca.crt"); NULL: no CA call at all. */
tlskit_config *tk_client_config(const char *ca);
void tk_config_keypair(tlskit_config *cfg, const char *name);

/* ---- in-process handshakes over a socketpair ---- */

struct tk_side {
    tlskit_config *cfg;      /* in */
    const char *servername;  /* in, client only (NULL: no SNI, no name check) */
    int fd;                  /* this side's end of the socketpair */
    tlskit_conn *conn;       /* out: kept for inspection; tk_side_free() frees it */
    int rc;                  /* out: tlskit_conn_handshake() result */
    int code;                /* out: tlskit_conn_error_code() after the handshake */
    char err[1024];          /* out: tlskit_conn_error() after the handshake */
};

/* socketpair(AF_UNIX) with O_CLOEXEC; asserts. */
void tk_socketpair(int sv[2]);
/* Handshake srv (server role, in a thread) against cli (client role, this thread).
 * A side whose handshake fails shuts its socket down so the other side cannot hang. */
void tk_handshake_pair(struct tk_side *srv, struct tk_side *cli);
/* The same over the fds already in srv->fd and cli->fd (e.g. through a relay). */
void tk_handshake_fds(struct tk_side *srv, struct tk_side *cli);
/* tlskit_conn_free + close(fd). */
void tk_side_free(struct tk_side *s);

/* Drive the handshakes of two non-blocking connections (the two ends of one pair) from
 * this thread, polling as tlskit_want_events() says. 0 when both completed; -1 with a
 * description in err otherwise. Safe to call from any thread (does not assert).
 * *wants (optional) counts WANT returns seen. */
int tk_nb_handshake(tlskit_conn *a, tlskit_conn *b, int timeout_ms, char *err, size_t errlen,
                    int *wants);

/* Read exactly len bytes from conn (blocking), asserting. */
void tk_conn_read_exact(tlskit_conn *conn, void *buf, size_t len);

/* ---- a listener answering one byte per connection ---- */

/* The thread body (tk_thread_start(tk_byte_server_main, &srv)): serve `conns` connections
 * on l one after the other: read a byte, send it back, note in reused[i] whether the
 * session was resumed, close. With reload_to set, l is reloaded with it after the first
 * connection (from this, the accepting thread). err says what failed (empty if nothing). */
struct tk_byte_server {
    tlskit_listener *l;
    tlskit_config *reload_to;
    int conns;        /* at most 8 */
    int reused[8];
    char err[512];
};
void *tk_byte_server_main(void *arg);

/* ---- threads (assert on failure) ---- */
pthread_t tk_thread_start(void *(*fn)(void *), void *arg);
void *tk_thread_join(pthread_t t);

/* ---- raw sockets ---- */

/* A TCP socket bound to addr ("127.0.0.1" / "::1") port 0; listening if backlog > 0,
 * else bound only (connecting to it is refused). *port receives the port. */
int tk_tcp_bound(const char *addr, int backlog, int *port);
/* A blocking TCP client socket connected to addr:port; asserts. */
int tk_tcp_connect(const char *addr, int port);
/* A tlskit listener on host:port (e.g. "127.0.0.1", "0"); asserts. */
tlskit_listener *tk_listen(tlskit_config *cfg, const char *host, const char *port);

/* ---- child processes (apps, openssl) ---- */

struct tk_proc {
    pid_t pid;
    int in;   /* write end of the child's stdin, or -1 */
    int out;  /* read end of its stdout, or -1 */
    int err;  /* read end of its stderr, or -1 */
    char *outbuf, *errbuf;        /* everything read so far, NUL-terminated */
    size_t outlen, errlen;
    int exited, status;           /* set once reaped */
};

/* Start argv[0] (a path) with pipes on stdin/stdout/stderr. Registered so that the
 * suite's .fini kills it if the test fails before reaping it. */
void tk_proc_start(struct tk_proc *p, const char *const argv[]);
/* Read stdout/stderr into the buffers until `needle` appears in the chosen stream
 * (1 = stdout, 2 = stderr) or timeout_ms passes. Returns 1 when found. */
int tk_proc_wait_for(struct tk_proc *p, int stream, const char *needle, int timeout_ms);
/* The same, until needle has appeared `times` times. */
int tk_proc_wait_for_n(struct tk_proc *p, int stream, const char *needle, size_t times,
                       int timeout_ms);
/* Write data to stdin (all of it, while draining stdout/stderr), optionally close stdin. */
void tk_proc_feed(struct tk_proc *p, const void *data, size_t len, int close_in);
/* Drain stdout/stderr until the child exits; kills it and fails after timeout_ms.
 * Returns the exit code (128+signal when killed by a signal). */
int tk_proc_wait(struct tk_proc *p, int timeout_ms);
/* Free buffers, close pipes (the process must have been reaped). */
void tk_proc_free(struct tk_proc *p);

/* Run a program to completion with the given stdin; returns the exit code. */
int tk_run(struct tk_proc *p, const char *const argv[], const void *in, size_t inlen,
           int timeout_ms);
/* Run argv without input and assert that it exits 0 (its stderr in the message). */
void tk_run_ok(const char *const argv[], int timeout_ms);

/* Run program bin (e.g. tk_client_bin()) with args (NULL-terminated, at most 30) and
 * stdin `in`; returns its exit code. */
int tk_run_app(struct tk_proc *p, const char *bin, const char *const args[], const void *in,
               size_t inlen, int timeout_ms);

/* Paths of the built apps ($TLSKIT_SERVER_BIN, $TLSKIT_CLIENT_BIN). */
const char *tk_server_bin(void);
const char *tk_client_bin(void);

/* A started tlsserver with its port parsed from the first stdout line. */
struct tk_server {
    struct tk_proc p;
    int port;
    char portstr[16];
    char listening[256];  /* the first stdout line */
};
/* Start tlsserver with the given extra arguments (NULL-terminated); when cert is not
 * NULL, adds --cert NAME.crt --key NAME.key; when bind is not NULL, --bind BIND;
 * always --port 0. Asserts that the listening line arrives. */
void tk_server_start(struct tk_server *s, const char *cert, const char *bind,
                     const char *const extra[]);
/* SIGTERM, wait, assert exit status 0. */
void tk_server_stop(struct tk_server *s);

#endif
