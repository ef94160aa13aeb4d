/* SPDX-License-Identifier: MIT */
/*
 * Session tickets as a user meets them: tlsserver --ticket-key / --ticket-lifetime and
 * SIGHUP, and tlsclient --sess-out / --sess-in / --reconnect, with
 * `openssl s_client -sess_out/-sess_in` as the real peer that is not tlskit (each reads
 * the other's session files). Two servers sharing a key file resume each other's sessions (both nginx
 * layouts, TLS 1.2 and 1.3); a reload keeps resumption working; bad key files are
 * start-up errors.
 */
#include "common.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TK_SUITE(tickets_apps);

#ifndef TK_OPENSSL_BIN
#define TK_OPENSSL_BIN "openssl"
#endif

#define RUN_MS 60000

/* One echo through s_client to port, reading the session from sess_in and/or writing it
 * to sess_out (either may be NULL). 1 when s_client says "Reused", 0 for "New", and the
 * test fails on anything else. stdin stays open until the echo is back: with TLS 1.3
 * the ticket (and so -sess_out) comes after the handshake. */
static int s_client_resumed(int port, const char *proto, const char *sess_in,
                            const char *sess_out)
{
    char connect[64];
    snprintf(connect, sizeof connect, "127.0.0.1:%d", port);
    const char *argv[24] = {TK_OPENSSL_BIN, "s_client", "-connect", connect, "-CAfile",
                            tk_cert("ca.crt"), "-verify_return_error", "-servername",
                            "localhost", proto};
    int n = 10;
    if (sess_in) {
        argv[n++] = "-sess_in";
        argv[n++] = sess_in;
    }
    if (sess_out) {
        argv[n++] = "-sess_out";
        argv[n++] = sess_out;
    }
    argv[n] = NULL;
    struct tk_proc p;
    tk_proc_start(&p, argv);
    tk_proc_feed(&p, "hello-ticket\n", 13, 0);
    int got = tk_proc_wait_for(&p, 1, "hello-ticket\n", 30000);
    tk_proc_feed(&p, NULL, 0, 1);
    int code = tk_proc_wait(&p, RUN_MS);
    cr_assert(got && code == 0, "s_client %s exit %d; stdout: %s; stderr: %s", proto, code,
              p.outbuf, p.errbuf);
    int reused = tk_contains(p.outbuf, "\nReused, ");
    cr_assert(reused || tk_contains(p.outbuf, "\nNew, "), "%s", p.outbuf);
    tk_proc_free(&p);
    return reused;
}

static void write_key(const char *path, size_t len, uint32_t seed)
{
    unsigned char buf[80];
    tk_fill_pattern(buf, len, seed);
    tk_write_file(path, buf, len);
    cr_assert_eq(chmod(path, 0600), 0);
}

static const char *const protos[] = {"-tls1_2", "-tls1_3"};

/* A private directory and two file names in it. */
struct files {
    char dir[256], a[300], b[300];
};

static void files_init(struct files *f, const char *a, const char *b)
{
    tk_tmpdir(f->dir, sizeof f->dir);
    snprintf(f->a, sizeof f->a, "%s/%s", f->dir, a);
    snprintf(f->b, sizeof f->b, "%s/%s", f->dir, b);
}
static const char *const versions[] = {"1.2", "1.3"}; /* the same, as tlsclient says it */

/* tlsclient -v to port with TLS `version` only and the extra arguments (NULL-ended);
 * sends one line and expects it back. Returns the exit code; p keeps the output (the
 * caller frees it). */
static int tlsclient_run(struct tk_proc *p, int port, const char *version,
                         const char *const extra[])
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    const char *argv[24] = {tk_client_bin(), "-v", "--ca", tk_cert("ca.crt"), "--tls-min",
                            version, "--tls-max", version};
    int n = 8;
    for (int i = 0; extra != NULL && extra[i] != NULL; i++)
        argv[n++] = extra[i];
    argv[n++] = "localhost";
    argv[n++] = portstr;
    argv[n] = NULL;
    return tk_run(p, argv, "hello\n", 6, RUN_MS);
}

/* 1 when tlsclient resumed (its -v line), 0 when not; fails the test on an error. */
static int tlsclient_resumed(int port, const char *version, const char *const extra[])
{
    struct tk_proc p;
    int code = tlsclient_run(&p, port, version, extra);
    cr_assert_eq(code, 0, "tlsclient %s exit %d: %s", version, code, p.errbuf);
    cr_expect_str_eq(p.outbuf, "hello\n");
    int reused = tk_contains(p.errbuf, "tlsclient: resumed: yes\n");
    cr_assert(reused || tk_contains(p.errbuf, "tlsclient: resumed: no\n"), "%s", p.errbuf);
    tk_proc_free(&p);
    return reused;
}

/* tlsclient: a session made on A resumed on B, and each of tlsclient and s_client reads
 * the other's session file. */
static void tlsclient_across(int pa, int pb, size_t i, const char *sess, const char *what)
{
    const char *out[] = {"--sess-out", sess, NULL}, *in[] = {"--sess-in", sess, NULL};
    unlink(sess);
    cr_expect_eq(tlsclient_resumed(pa, versions[i], out), 0);
    struct stat st;
    cr_assert_eq(stat(sess, &st), 0, "--sess-out wrote no file");
    cr_expect_eq(st.st_mode & 07777, 0600, "session file mode %o", st.st_mode & 07777);
    cr_expect_eq(tlsclient_resumed(pb, versions[i], in), 1,
                 "%s, TLS %s: tlsclient did not resume on B", what, versions[i]);
    cr_expect_eq(s_client_resumed(pb, protos[i], sess, NULL), 1,
                 "%s, TLS %s: s_client did not resume with tlsclient's file", what, versions[i]);
    unlink(sess);
    cr_expect_eq(s_client_resumed(pa, protos[i], NULL, sess), 0);
    chmod(sess, 0600); /* s_client writes it as its umask says */
    cr_expect_eq(tlsclient_resumed(pb, versions[i], in), 1,
                 "%s, TLS %s: tlsclient did not resume with s_client's file", what,
                 versions[i]);
}

/* Two servers started with extra: does a session made on A resume on B? */
static void two_servers(const char *const extra[], const char *sess, int want,
                        const char *what)
{
    struct tk_server a, b;
    tk_server_start(&a, "server", "127.0.0.1", extra);
    tk_server_start(&b, "server", "127.0.0.1", extra);
    for (size_t i = 0; i < 2; i++) {
        unlink(sess);
        cr_expect_eq(s_client_resumed(a.port, protos[i], NULL, sess), 0);
        cr_expect_eq(s_client_resumed(b.port, protos[i], sess, NULL), want,
                     "%s, %s: s_client, session made on A, resumed on B: %d", what,
                     protos[i], !want);
        if (want)
            tlsclient_across(a.port, b.port, i, sess, what);
    }
    tk_server_stop(&a);
    tk_server_stop(&b);
}

TK_TEST(tickets_apps, two_servers_sharing_a_key_file_resume_each_other)
{
    struct files f;
    files_init(&f, "ticket.key", "sess.pem");
    write_key(f.a, 48, 48);
    two_servers((const char *const[]){"--ticket-key", f.a, "-q", NULL}, f.b, 1,
                "48-byte key file");
    write_key(f.a, 80, 80);
    two_servers((const char *const[]){"--ticket-key", f.a, "-q", NULL}, f.b, 1,
                "80-byte key file");
    /* Control: without a shared file, B has its own keys. */
    two_servers((const char *const[]){"-q", NULL}, f.b, 0, "no key file");
    tk_rmtree(f.dir);
}

/* SIGHUP makes a new config; sessions from before it still resume (automatic keys are
 * carried over), in the event model (engine reload) and the thread model (listener
 * reload). Then, with a key file: the file is re-read, so a replaced key ends the old
 * tickets. */
static void sighup(struct tk_server *s, size_t *reloads)
{
    kill(s->p.pid, SIGHUP);
    ++*reloads;
    cr_assert(tk_proc_wait_for_n(&s->p, 2, "reload: new connections use", *reloads, 20000),
              "%s", s->p.errbuf);
}

/* A session made before SIGHUP resumes after it; with a key file, rewriting the file and
 * reloading again ends it. */
static void sighup_case(const char *const extra[], const char *key, const char *sess,
                        const char *what)
{
    struct tk_server s;
    size_t reloads = 0;
    tk_server_start(&s, "server", "127.0.0.1", extra);
    for (size_t i = 0; i < 2; i++) {
        unlink(sess);
        cr_expect_eq(s_client_resumed(s.port, protos[i], NULL, sess), 0);
        sighup(&s, &reloads);
        cr_expect_eq(s_client_resumed(s.port, protos[i], sess, NULL), 1,
                     "%s, %s: the session did not survive SIGHUP", what, protos[i]);
        if (key == NULL)
            continue;
        write_key(key, 80, (uint32_t)(2 + i));
        sighup(&s, &reloads);
        cr_expect_eq(s_client_resumed(s.port, protos[i], sess, NULL), 0,
                     "%s, %s: the key file was not re-read on SIGHUP", what, protos[i]);
    }
    tk_server_stop(&s);
}

TK_TEST(tickets_apps, sighup_keeps_resumption)
{
    struct files f;
    files_init(&f, "ticket.key", "sess.pem");
    const char *dir = f.dir, *key = f.a, *sess = f.b;
    sighup_case((const char *const[]){"--model", "event", "-q", NULL}, NULL, sess,
                "event model");
    sighup_case((const char *const[]){"--model", "thread", "-q", NULL}, NULL, sess,
                "thread model");
    write_key(key, 80, 1);
    sighup_case((const char *const[]){"--ticket-key", key, "-q", NULL}, key, sess, "key file");
    tk_rmtree(dir);
}

/* A bad key file at start-up: exit 1, and the message names the flag, the file and the
 * reason. A bad --ticket-lifetime: a usage error. */
static void expect_start_failure(const char *const args[], int want, const char *why)
{
    const char *argv[16] = {tk_server_bin(), "--port", "0", "--cert", tk_cert("server.crt"),
                            "--key", tk_cert("server.key")};
    int n = 7;
    for (int i = 0; args[i] != NULL; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    struct tk_proc p;
    int code = tk_run(&p, argv, NULL, 0, RUN_MS);
    cr_expect_eq(code, want, "%s %s: exit %d; stderr: %s", args[0], args[1], code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, args[0]), "the flag is not named: %s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, why), "want '%s' in: %s", why, p.errbuf);
    cr_expect(!tk_contains(p.outbuf, "listening"), "%s", p.outbuf);
    tk_proc_free(&p);
}

TK_TEST(tickets_apps, bad_key_files_are_startup_errors)
{
    char dir[256], shortk[300], openk[300], missing[300], good[300];
    tk_tmpdir(dir, sizeof dir);
    snprintf(shortk, sizeof shortk, "%s/short.key", dir);
    snprintf(openk, sizeof openk, "%s/open.key", dir);
    snprintf(missing, sizeof missing, "%s/missing.key", dir);
    snprintf(good, sizeof good, "%s/good.key", dir);
    write_key(shortk, 40, 1);
    write_key(openk, 48, 2);
    chmod(openk, 0644);
    write_key(good, 48, 3);

    expect_start_failure((const char *const[]){"--ticket-key", shortk, NULL}, 1,
                         "40 bytes, expected 48 or 80");
    expect_start_failure((const char *const[]){"--ticket-key", openk, NULL}, 1,
                         "readable by group or others (mode 0644");
    expect_start_failure((const char *const[]){"--ticket-key", dir, NULL}, 1,
                         "not a regular file (a directory)");
    expect_start_failure((const char *const[]){"--ticket-key", missing, NULL}, 1,
                         "No such file or directory");
    /* The second file is checked as carefully as the first. */
    expect_start_failure((const char *const[]){"--ticket-key", good, "--ticket-key", openk,
                                               NULL}, 1, openk);
    expect_start_failure((const char *const[]){"--ticket-lifetime", "0", NULL}, 2,
                         "not a whole number of seconds");
    expect_start_failure((const char *const[]){"--ticket-lifetime", "1h", NULL}, 2,
                         "not a whole number of seconds");
    tk_rmtree(dir);
}

/* --reconnect N: one line per further connection, each resumed; -v says so too. */
TK_TEST(tickets_apps, tlsclient_reconnect_resumes)
{
    const char *quiet[] = {"-q", NULL};
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", quiet);
    for (size_t i = 0; i < 2; i++) {
        struct tk_proc p;
        const char *extra[] = {"--reconnect", "3", NULL};
        int code = tlsclient_run(&p, s.port, versions[i], extra);
        cr_expect_eq(code, 0, "exit %d: %s", code, p.errbuf);
        cr_expect(tk_matches(p.errbuf, "tlsclient: resumed: no\n(.*\n)*"
                                       "tlsclient: reconnect 1: resumed: yes\n(.*\n)*"
                                       "tlsclient: reconnect 2: resumed: yes\n(.*\n)*"
                                       "tlsclient: reconnect 3: resumed: yes\n"),
                  "TLS %s: %s", versions[i], p.errbuf);
        cr_expect(!tk_contains(p.errbuf, "reconnect 4"), "%s", p.errbuf);
        tk_proc_free(&p);
    }
    tk_server_stop(&s);
    /* A server without tickets: the reconnections say no. */
    const char *none[] = {"-q", "--tickets", "0", NULL};
    tk_server_start(&s, "server", "127.0.0.1", none);
    struct tk_proc p;
    const char *extra[] = {"--reconnect", "1", NULL};
    int code = tlsclient_run(&p, s.port, "1.3", extra);
    cr_expect(tk_contains(p.errbuf, "reconnect 1: resumed: no") ||
                  tk_contains(p.errbuf, "--reconnect: "), "exit %d: %s", code, p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

/* Bad session files: exit 1 and a message naming the flag, the file and which check. */
static void expect_client_failure(int port, const char *const extra[], int want,
                                  const char *why)
{
    struct tk_proc p;
    int code = tlsclient_run(&p, port, "1.3", extra);
    cr_expect_eq(code, want, "%s %s: exit %d; stderr: %s", extra[0], extra[1], code, p.errbuf);
    cr_expect(tk_contains(p.errbuf, extra[0]), "the flag is not named: %s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, why), "want '%s' in: %s", why, p.errbuf);
    tk_proc_free(&p);
}

TK_TEST(tickets_apps, tlsclient_bad_session_files)
{
    struct files f;
    files_init(&f, "sess.pem", "junk.pem");
    const char *dir = f.dir, *sess = f.a, *junk = f.b;
    const char *quiet[] = {"-q", NULL};
    struct tk_server s;
    tk_server_start(&s, "server", "127.0.0.1", quiet);
    const char *out[] = {"--sess-out", sess, NULL};
    cr_assert_eq(tlsclient_resumed(s.port, "1.3", out), 0);

    chmod(sess, 0644);
    expect_client_failure(s.port, (const char *const[]){"--sess-in", sess, NULL}, 1,
                          "readable by group or others (mode 0644");
    chmod(sess, 0600);
    cr_assert_eq(chown(sess, 4321, 4321), 0, "chown (the suite runs as root)");
    expect_client_failure(s.port, (const char *const[]){"--sess-in", sess, NULL}, 1,
                          "belongs to another user (uid 4321)");
    expect_client_failure(s.port, (const char *const[]){"--sess-out", sess, NULL}, 1,
                          "belongs to another user (uid 4321)");
    cr_assert_eq(chown(sess, geteuid(), getegid()), 0);
    expect_client_failure(s.port, (const char *const[]){"--sess-in", dir, NULL}, 1,
                          "not a regular file (a directory)");
    expect_client_failure(s.port, (const char *const[]){"--sess-out", dir, NULL}, 1, dir);
    tk_write_file(junk, "not a session\n", 14);
    chmod(junk, 0600);
    expect_client_failure(s.port, (const char *const[]){"--sess-in", junk, NULL}, 1,
                          "not a PEM session");
    expect_client_failure(s.port, (const char *const[]){"--reconnect", "x", NULL}, 2,
                          "not a whole number");
    expect_client_failure(s.port, (const char *const[]){"--sess-in", "", NULL}, 2,
                          "the file name is empty");
    tk_server_stop(&s);
    tk_rmtree(dir);
}
