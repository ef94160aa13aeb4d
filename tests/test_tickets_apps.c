/* SPDX-License-Identifier: MIT */
/*
 * Session tickets as a user meets them: tlsserver --ticket-key / --ticket-lifetime and
 * SIGHUP, with `openssl s_client -sess_out/-sess_in` as the client (a real peer that is
 * not tlskit). Two servers sharing a key file resume each other's sessions (both nginx
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

TK_TEST(tickets_apps, two_servers_sharing_a_key_file_resume_each_other)
{
    char dir[256], key[300], sess[300];
    tk_tmpdir(dir, sizeof dir);
    snprintf(key, sizeof key, "%s/ticket.key", dir);
    snprintf(sess, sizeof sess, "%s/sess.pem", dir);
    static const size_t sizes[] = {48, 80};
    for (size_t k = 0; k < 2; k++) {
        write_key(key, sizes[k], (uint32_t)sizes[k]);
        const char *extra[] = {"--ticket-key", key, "-q", NULL};
        struct tk_server a, b;
        tk_server_start(&a, "server", "127.0.0.1", extra);
        tk_server_start(&b, "server", "127.0.0.1", extra);
        for (size_t i = 0; i < 2; i++) {
            unlink(sess);
            cr_expect_eq(s_client_resumed(a.port, protos[i], NULL, sess), 0);
            cr_expect_eq(s_client_resumed(b.port, protos[i], sess, NULL), 1,
                         "%zu-byte key, %s: a session made on A did not resume on B",
                         sizes[k], protos[i]);
        }
        tk_server_stop(&a);
        tk_server_stop(&b);
    }
    /* Control: without a shared file, B has its own keys. */
    const char *none[] = {"-q", NULL};
    struct tk_server a, b;
    tk_server_start(&a, "server", "127.0.0.1", none);
    tk_server_start(&b, "server", "127.0.0.1", none);
    for (size_t i = 0; i < 2; i++) {
        unlink(sess);
        cr_expect_eq(s_client_resumed(a.port, protos[i], NULL, sess), 0);
        cr_expect_eq(s_client_resumed(b.port, protos[i], sess, NULL), 0,
                     "%s: resumed on a server without the key", protos[i]);
    }
    tk_server_stop(&a);
    tk_server_stop(&b);
    tk_rmtree(dir);
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

TK_TEST(tickets_apps, sighup_keeps_resumption)
{
    char dir[256], key[300], sess[300];
    tk_tmpdir(dir, sizeof dir);
    snprintf(key, sizeof key, "%s/ticket.key", dir);
    snprintf(sess, sizeof sess, "%s/sess.pem", dir);
    static const char *const models[] = {"event", "thread"};
    for (size_t m = 0; m < 2; m++) {
        const char *extra[] = {"--model", models[m], "-q", NULL};
        struct tk_server s;
        size_t reloads = 0;
        tk_server_start(&s, "server", "127.0.0.1", extra);
        for (size_t i = 0; i < 2; i++) {
            unlink(sess);
            cr_expect_eq(s_client_resumed(s.port, protos[i], NULL, sess), 0);
            sighup(&s, &reloads);
            cr_expect_eq(s_client_resumed(s.port, protos[i], sess, NULL), 1,
                         "%s model, %s: the session did not survive SIGHUP", models[m],
                         protos[i]);
        }
        tk_server_stop(&s);
    }
    write_key(key, 80, 1);
    const char *extra[] = {"--ticket-key", key, "-q", NULL};
    struct tk_server s;
    size_t reloads = 0;
    tk_server_start(&s, "server", "127.0.0.1", extra);
    for (size_t i = 0; i < 2; i++) {
        unlink(sess);
        cr_expect_eq(s_client_resumed(s.port, protos[i], NULL, sess), 0);
        sighup(&s, &reloads);
        cr_expect_eq(s_client_resumed(s.port, protos[i], sess, NULL), 1,
                     "%s: same key file, no resumption after SIGHUP", protos[i]);
        write_key(key, 80, (uint32_t)(2 + i));
        sighup(&s, &reloads);
        cr_expect_eq(s_client_resumed(s.port, protos[i], sess, NULL), 0,
                     "%s: the key file was not re-read on SIGHUP", protos[i]);
    }
    tk_server_stop(&s);
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
