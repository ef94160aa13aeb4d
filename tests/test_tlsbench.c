/* SPDX-License-Identifier: MIT */
/* tlsbench against tlsserver: every mode completes with the counts it was asked for and
 * reports them in --json, resumption resumes, --server-closes closes from the server's
 * side, verification works both ways, and failures and usage errors say so. Small
 * counts: this checks that the tool works, never how fast anything is. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TK_SUITE(tlsbench);

#define RUN_MS 120000

static const char *bench_bin(void)
{
    const char *p = getenv("TLSKIT_BENCH_BIN");
    cr_assert(p && *p, "TLSKIT_BENCH_BIN is not set");
    return p;
}

/* Run tlsbench with args (NULL-terminated) plus HOST:PORT of s (when s is not NULL). */
static int bench(struct tk_proc *p, struct tk_server *s, const char *const args[])
{
    const char *argv[40];
    char target[64];
    int n = 0;
    argv[n++] = bench_bin();
    for (int i = 0; args[i] && n < 38; i++)
        argv[n++] = args[i];
    if (s) {
        snprintf(target, sizeof target, "127.0.0.1:%d", s->port);
        argv[n++] = target;
    }
    argv[n] = NULL;
    return tk_run(p, argv, NULL, 0, RUN_MS);
}

/* The number after "key": in the JSON (the keys tlsbench prints are unique); -1 if none. */
static long long jnum(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *at = json ? strstr(json, pat) : NULL;
    return at ? strtoll(at + strlen(pat), NULL, 10) : -1;
}

static void server(struct tk_server *s, const char *mode)
{
    const char *extra[] = {"--mode", mode, "--body-size", "300", "-q", NULL};
    tk_server_start(s, "server", "127.0.0.1", extra);
}

TK_TEST(tlsbench, handshake_mode_counts_and_reports_json)
{
    struct tk_server s;
    server(&s, "http");
    struct tk_proc p;
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)s.p.pid);
    const char *args[] = {"handshake", "-k", "--json", "-q", "-n", "60", "-c", "4", "-t", "2",
                          "--http=/x", "--server-pid", pid, NULL};
    int rc = bench(&p, &s, args);
    cr_expect_eq(rc, 0, "exit %d: %s", rc, p.errbuf);
    cr_expect_geq(jnum(p.outbuf, "handshakes"), 60, "%s", p.outbuf);
    /* The server's CPU, and the kernel's part of it (whole seconds: "0.xx" reads as 0). */
    cr_expect(tk_contains(p.outbuf, "\"server_cpu_s\":"), "%s", p.outbuf);
    cr_expect(tk_contains(p.outbuf, "\"server_sys_s\":"), "%s", p.outbuf);
    cr_expect_geq(jnum(p.outbuf, "server_sys_s"), 0, "%s", p.outbuf);
    /* -n counts handshakes: requests of the last connections may still be in flight. */
    cr_expect_geq(jnum(p.outbuf, "requests"), 60 - 4, "%s", p.outbuf);
    cr_expect_eq(jnum(p.outbuf, "errors"), 0, "%s", p.outbuf);
    cr_expect_eq(jnum(p.outbuf, "resumed"), 0, "resumed without --resume: %s", p.outbuf);
    cr_expect(tk_contains(p.outbuf, "\"protocol\":\"TLSv1.3\""), "%s", p.outbuf);
    cr_expect(tk_contains(p.outbuf, "\"latency_ms\":{"), "%s", p.outbuf);
    cr_expect_str_empty(p.errbuf, "-q still wrote: %s", p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

TK_TEST(tlsbench, resume_resumes_and_server_closes)
{
    struct tk_server s;
    server(&s, "http");
    struct tk_proc p;
    /* One thread, one connection at a time: only the very first handshake is full. */
    const char *args[] = {"handshake", "-k", "--json", "-q", "-n", "30", "-c", "1", "-t", "1",
                          "--resume", "--server-closes", "--http", NULL};
    int rc = bench(&p, &s, args);
    cr_expect_eq(rc, 0, "exit %d: %s", rc, p.errbuf);
    long long hs = jnum(p.outbuf, "handshakes"), res = jnum(p.outbuf, "resumed");
    cr_expect_geq(hs, 30, "%s", p.outbuf);
    cr_expect_geq(res, hs - 1, "%lld of %lld resumed: %s", res, hs, p.outbuf);
    cr_expect_eq(jnum(p.outbuf, "errors"), 0, "%s", p.outbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

TK_TEST(tlsbench, bulk_echo_moves_every_byte)
{
    struct tk_server s;
    server(&s, "echo");
    struct tk_proc p;
    const char *args[] = {"bulk", "-k", "--json", "-q", "--bytes", "3M", NULL};
    int rc = bench(&p, &s, args);
    cr_expect_eq(rc, 0, "exit %d: %s", rc, p.errbuf);
    cr_expect_eq(jnum(p.outbuf, "bytes_in"), 3 << 20, "%s", p.outbuf);
    cr_expect_eq(jnum(p.outbuf, "bytes_out"), 3 << 20, "%s", p.outbuf);
    cr_expect_eq(jnum(p.outbuf, "errors"), 0, "%s", p.outbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

TK_TEST(tlsbench, rr_http_and_echo)
{
    struct tk_server s;
    server(&s, "http");
    struct tk_proc p;
    const char *args[] = {"rr", "-k", "--json", "-q", "-n", "500", "-c", "8", "--http", NULL};
    int rc = bench(&p, &s, args);
    cr_expect_eq(rc, 0, "exit %d: %s", rc, p.errbuf);
    cr_expect_geq(jnum(p.outbuf, "requests"), 500, "%s", p.outbuf);
    cr_expect_eq(jnum(p.outbuf, "errors"), 0, "%s", p.outbuf);
    cr_expect(tk_contains(p.outbuf, "\"p99\":"), "%s", p.outbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);

    server(&s, "echo");
    const char *echo[] = {"rr", "-k", "--json", "-q", "-n", "300", "-c", "3", "--request",
                          "1000", NULL};
    rc = bench(&p, &s, echo);
    cr_expect_eq(rc, 0, "exit %d: %s", rc, p.errbuf);
    cr_expect_geq(jnum(p.outbuf, "requests"), 300, "%s", p.outbuf);
    cr_expect_geq(jnum(p.outbuf, "bytes_in"), 300 * 1000, "%s", p.outbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

TK_TEST(tlsbench, idle_holds_and_verifies_every_connection)
{
    struct tk_server s;
    server(&s, "echo");
    struct tk_proc p;
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)s.p.pid);
    const char *args[] = {"idle", "-k", "--json", "-q", "-c", "50", "-d", "0.2", "--verify",
                          "--server-pid", pid, NULL};
    int rc = bench(&p, &s, args);
    cr_expect_eq(rc, 0, "exit %d: %s", rc, p.errbuf);
    cr_expect_eq(jnum(p.outbuf, "open"), 50, "%s", p.outbuf);
    cr_expect_eq(jnum(p.outbuf, "verified"), 50, "%s", p.outbuf);
    cr_expect(tk_contains(p.outbuf, "\"ok\":true"), "%s", p.outbuf);
    cr_expect_gt(jnum(p.outbuf, "server_rss_after_kib"), 0, "%s", p.outbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

/* A burst (every connection at once) and the server's RSS after they closed. */
TK_TEST(tlsbench, idle_burst_reports_the_rss_after_closing)
{
    struct tk_server s;
    server(&s, "echo");
    struct tk_proc p;
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)s.p.pid);
    const char *args[] = {"idle", "-k", "--json", "-q", "-c", "60", "-t", "2", "-d", "0.1",
                          "--inflight", "60", "--settle", "0.1", "--after-close", "0.5",
                          "--server-pid", pid, NULL};
    int rc = bench(&p, &s, args);
    cr_expect_eq(rc, 0, "exit %d: %s", rc, p.errbuf);
    cr_expect_eq(jnum(p.outbuf, "open"), 60, "%s", p.outbuf);
    cr_expect_gt(jnum(p.outbuf, "server_rss_after_close_kib"), 0, "%s", p.outbuf);
    cr_expect_eq(jnum(p.outbuf, "after_close_ms"), 500, "%s", p.outbuf);
    cr_expect(tk_contains(p.outbuf, "\"server_rss_after_close_ratio\":"), "%s", p.outbuf);
    tk_proc_free(&p);
    /* Idle mode only. */
    const char *wrong[] = {"handshake", "-k", "-q", "-n", "1", "--after-close", "1", NULL};
    rc = bench(&p, &s, wrong);
    cr_expect_eq(rc, 2, "--after-close in handshake mode: exit %d: %s", rc, p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

TK_TEST(tlsbench, verification_with_ca_and_against_the_wrong_one)
{
    struct tk_server s;
    server(&s, "echo");
    struct tk_proc p;
    const char *good[] = {"handshake", "--ca", tk_cert("ca.crt"), "--servername", "localhost",
                          "--json", "-q", "-n", "5", "-c", "1", NULL};
    int rc = bench(&p, &s, good);
    cr_expect_eq(rc, 0, "exit %d: %s", rc, p.errbuf);
    cr_expect_geq(jnum(p.outbuf, "handshakes"), 5, "%s", p.outbuf);
    tk_proc_free(&p);
    /* The server's own certificate as the only "CA": the chain does not verify. */
    const char *bad[] = {"handshake", "--ca", tk_cert("server.crt"), "--servername",
                         "localhost", "-q", "-n", "3", "-c", "1", "-d", "2", NULL};
    rc = bench(&p, &s, bad);
    cr_expect_eq(rc, 1, "an unverifiable server: exit %d: %s", rc, p.errbuf);
    cr_expect(tk_contains_ci(p.errbuf, "verif"), "no verification error shown: %s", p.errbuf);
    tk_proc_free(&p);
    tk_server_stop(&s);
}

TK_TEST(tlsbench, failures_and_usage_errors)
{
    /* Nothing listens there: exit 1 with the reason. */
    int port = 0;
    int fd = tk_tcp_bound("127.0.0.1", 0, &port); /* bound, not listening: refused */
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    struct tk_proc p;
    const char *refused[] = {"handshake", "-k", "-q", "-n", "3", "-c", "1", "-d", "2",
                             target, NULL};
    int rc = bench(&p, NULL, refused);
    cr_expect_eq(rc, 1, "connection refused: exit %d: %s", rc, p.errbuf);
    cr_expect(tk_contains_ci(p.errbuf, "refused"), "%s", p.errbuf);
    tk_proc_free(&p);

    /* Ended by a count, not a time (--count without --duration, bulk): a run in which
     * only errors happen stops after 10 s instead of retrying for ever (RUN_MS bounds
     * the wait: a hang fails the test). */
    const char *const counted[][12] = {
        {"handshake", "-k", "-q", "-n", "3", "-c", "1", target, NULL},
        {"bulk", "-k", "-q", "--bytes", "64K", target, NULL},
    };
    for (size_t i = 0; i < sizeof counted / sizeof counted[0]; i++) {
        rc = bench(&p, NULL, counted[i]);
        cr_expect_eq(rc, 1, "%s against a refusing port: exit %d: %s", counted[i][0], rc,
                     p.errbuf);
        cr_expect(strstr(p.errbuf, "stopping: no ") && strstr(p.errbuf, "only errors"),
                  "%s: no 'stopping' line: %s", counted[i][0], p.errbuf);
        cr_expect(tk_contains_ci(p.errbuf, "refused"), "%s", p.errbuf);
        tk_proc_free(&p);
    }
    close(fd);

    const char *const usage[][8] = {
        {"handshake", "127.0.0.1:1", NULL},                      /* neither --ca nor -k */
        {"handshake", "-k", "--server-closes", "127.0.0.1:1", NULL}, /* needs --http */
        {"bulk", "-k", "--resume", "127.0.0.1:1", NULL},
        {"nosuchmode", "-k", "127.0.0.1:1", NULL},
        {"handshake", "-k", "--count", "lots", "127.0.0.1:1", NULL},
    };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        rc = bench(&p, NULL, usage[i]);
        cr_expect_eq(rc, 2, "%s %s: exit %d: %s", usage[i][0], usage[i][1], rc, p.errbuf);
        cr_expect(tk_contains_ci(p.errbuf, "usage"), "%s", p.errbuf);
        cr_expect_str_empty(p.outbuf, "a usage error wrote to stdout");
        tk_proc_free(&p);
    }
}

/* tlsbench-floor, bench.sh's in-memory OpenSSL reference: OpenSSL's defaults (two
 * tickets, the client's AES-256-GCM), or tlskit's settings given as options. */
TK_TEST(tlsbench, floor_with_openssl_defaults_and_with_given_settings)
{
    const char *bin = getenv("TLSKIT_FLOOR_BIN");
    cr_assert(bin && *bin, "TLSKIT_FLOOR_BIN is not set");
    char cert[512], key[512];
    snprintf(cert, sizeof cert, "%s/server.crt", tk_certs_dir());
    snprintf(key, sizeof key, "%s/server.key", tk_certs_dir());
    struct tk_proc p;
    const char *dflt[] = {bin, "--cert", cert, "--key", key, "-n", "20", "--only", "full",
                          "--json", NULL};
    int rc = tk_run(&p, dflt, NULL, 0, RUN_MS);
    cr_expect_eq(rc, 0, "exit %d: %s", rc, p.errbuf);
    cr_expect(tk_contains(p.outbuf, "\"tickets\":2"), "%s", p.outbuf);
    cr_expect(tk_contains(p.outbuf, "TLS_AES_256_GCM_SHA384"), "%s", p.outbuf);
    cr_expect_gt(jnum(p.outbuf, "full_handshakes_per_cpu_s"), 0, "%s", p.outbuf);
    tk_proc_free(&p);
    const char *given[] = {bin, "--cert", cert, "--key", key, "-n", "20", "--only", "full",
                           "--json", "--tickets", "1", "--suites",
                           "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384", NULL};
    rc = tk_run(&p, given, NULL, 0, RUN_MS);
    cr_expect_eq(rc, 0, "exit %d: %s", rc, p.errbuf);
    cr_expect(tk_contains(p.outbuf, "\"tickets\":1"), "%s", p.outbuf);
    cr_expect(tk_contains(p.outbuf, "TLS_AES_128_GCM_SHA256"), "%s", p.outbuf);
    tk_proc_free(&p);
    const char *bad[] = {bin, "--cert", cert, "--key", key, "--tickets", "17", NULL};
    rc = tk_run(&p, bad, NULL, 0, RUN_MS);
    cr_expect_eq(rc, 2, "--tickets 17: exit %d: %s", rc, p.errbuf);
    tk_proc_free(&p);
}

/* --help and --version end the program from main, with status 0 and stdout only. */
TK_TEST(tlsbench, help_and_version_exit_0)
{
    struct tk_proc p;
    const char *help[] = {"--help", NULL};
    int rc = bench(&p, NULL, help);
    cr_expect_eq(rc, 0, "--help: exit %d: %s", rc, p.errbuf);
    cr_expect(tk_contains(p.outbuf, "Usage: tlsbench MODE"), "%s", p.outbuf);
    cr_expect_str_empty(p.errbuf, "--help wrote to stderr: %s", p.errbuf);
    tk_proc_free(&p);

    const char *version[] = {"handshake", "-V", NULL};
    rc = bench(&p, NULL, version);
    cr_expect_eq(rc, 0, "-V: exit %d: %s", rc, p.errbuf);
    cr_expect(tk_contains(p.outbuf, "tlsbench " TLSKIT_VERSION_STRING), "%s", p.outbuf);
    cr_expect_str_empty(p.errbuf, "-V wrote to stderr: %s", p.errbuf);
    tk_proc_free(&p);
}
