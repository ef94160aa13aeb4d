/* SPDX-License-Identifier: MIT */
/*
 * tlsclient --starttls (apps/tlsclient/starttls.c) against real servers from Debian's
 * packages, each started here on 127.0.0.1 with a generated configuration and the test
 * certificate:
 *   - PostgreSQL (initdb into a temporary directory; ssl=on), REAL;
 *   - Dovecot, IMAP and POP3 (a minimal dovecot.conf), REAL;
 *   - Postfix, SMTP (a main.cf/master.cf of its own, its master run in the foreground),
 *     REAL when we are root (its master must be); otherwise the scripted fake below.
 * FTP and XMPP run against SCRIPTED FAKES (tests/starttls_fake.py): vsftpd, proftpd and
 * prosody want system-wide set-up (users, /etc, PAM) that a test cannot give them here.
 * The fakes also play the misbehaviours no real server shows on demand: not offering
 * STARTTLS, refusing it, closing mid-dialogue, bytes injected after the go-ahead,
 * silence, an endless line. And verification still fails (exit 5) after the upgrade.
 */
#include "common.h"

#include <arpa/inet.h>
#include <glob.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TK_SUITE(starttls);

#define RUN_MS 60000
#define PYTHON "/usr/bin/python3"
#define SETPRIV "/usr/bin/setpriv"

/* ---- helpers ------------------------------------------------------------------------ */

/* A port nobody listens on right now (servers that cannot bind port 0 and say which). */
static int free_port(void)
{
    int port;
    int fd = tk_tcp_bound("127.0.0.1", 1, &port);
    close(fd);
    return port;
}

static int can_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
    size_t len;
    char *data = tk_read_file(from, &len);
    tk_write_file(to, data, len);
    free(data);
    cr_assert_eq(chmod(to, mode), 0);
}

/* Run tlsclient with args (NULL-terminated) and stdin; the exit code. */
static int client(struct tk_proc *p, const char *const args[], const char *in)
{
    return tk_run_app(p, tk_client_bin(), args, in, in ? strlen(in) : 0, RUN_MS);
}

/* ---- the scripted fakes ---------------------------------------------------------------- */

struct fake {
    struct tk_proc p;
    char port[16];
};

static void fake_start(struct fake *f, const char *scenario)
{
    const char *argv[] = {PYTHON, TK_STARTTLS_FAKE, scenario, tk_cert("server.crt"),
                          tk_cert("server.key"), NULL};
    tk_proc_start(&f->p, argv);
    cr_assert(tk_proc_wait_for(&f->p, 1, "\n", RUN_MS), "fake %s: %s", scenario,
              f->p.errbuf);
    cr_assert(sscanf(f->p.outbuf, "listening on %15s", f->port) == 1, "%s", f->p.outbuf);
}

static void fake_stop(struct fake *f)
{
    if (!f->p.exited)
        kill(f->p.pid, SIGTERM);
    tk_proc_wait(&f->p, RUN_MS);
    tk_proc_free(&f->p);
}

/* The dialogue then TLS through a fake: the echo comes back over TLS. */
static void fake_ok(const char *proto, const char *scenario)
{
    struct fake f;
    fake_start(&f, scenario);
    struct tk_proc p;
    const char *args[] = {"--starttls", proto, "--ca", tk_cert("ca.crt"), "-v", "localhost",
                          f.port, NULL};
    cr_expect_eq(client(&p, args, "hello over tls\n"), 0, "%s: %s", proto, p.errbuf);
    cr_expect(tk_contains(p.outbuf, "echo: hello over tls\n"), "%s: %s", proto, p.outbuf);
    cr_expect(tk_contains(p.errbuf, "verify result: ok"), "%s", p.errbuf);
    tk_proc_free(&p);
    fake_stop(&f);
}

TK_TEST(starttls, fake_ftp)
{
    fake_ok("ftp", "ftp");
}

TK_TEST(starttls, fake_xmpp)
{
    fake_ok("xmpp", "xmpp");
}

TK_TEST(starttls, fake_smtp)
{
    fake_ok("smtp", "smtp");
}

/* What the server did wrong, and the message that must quote it. */
TK_TEST(starttls, refusals_and_breakage)
{
    static const struct {
        const char *proto, *scenario, *timeout;
        int exit;
        const char *why;
    } cases[] = {
        {"smtp", "smtp-no-starttls", "30", 6, "the server does not offer STARTTLS: "
         "\"250-fake.test | 250-PIPELINING | 250 8BITMIME\""},
        {"smtp", "smtp-refuse", "30", 6, "the server refused STARTTLS: \"454 4.7.0 TLS not "
         "available due to local problem\""},
        {"smtp", "smtp-close", "30", 6, "the server closed the connection before its reply "
         "to STARTTLS"},
        {"smtp", "smtp-inject", "30", 6, "the server sent 14 bytes after agreeing to start "
         "TLS; refusing them"},
        {"imap", "imap-no-starttls", "30", 6, "the server does not offer STARTTLS: "
         "\"* CAPABILITY IMAP4rev1 AUTH=PLAIN\""},
        {"pop3", "pop3-refuse", "30", 6, "the server refused STLS: \"-ERR [IN-USE] TLS is "
         "not available right now\""},
        {"ftp", "ftp-no-auth-tls", "30", 6, "the server does not offer AUTH TLS: "
         "\"211-Features: |  MDTM |  SIZE | 211 End\""},
        {"xmpp", "xmpp-refuse", "30", 6, "the server refused STARTTLS: \"<failure "
         "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\""},
        {"postgres", "postgres-N", "30", 6, "the server refused SSL: it answered \"N\""},
        {"smtp", "silent", "1", 4, "timed out waiting for greeting"},
        {"smtp", "endless-line", "30", 6, "the server's greeting is longer than 4096 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake f;
        fake_start(&f, cases[i].scenario);
        struct tk_proc p;
        const char *args[] = {"--starttls", cases[i].proto, "--ca", tk_cert("ca.crt"),
                              "--timeout", cases[i].timeout, "127.0.0.1", f.port, NULL};
        int rc = client(&p, args, "");
        char prefix[128];
        snprintf(prefix, sizeof prefix, "tlsclient: starttls %s: 127.0.0.1:%s: ",
                 cases[i].proto, f.port);
        cr_expect_eq(rc, cases[i].exit, "%s: exit %d: %s", cases[i].scenario, rc, p.errbuf);
        cr_expect(tk_contains(p.errbuf, prefix) && tk_contains(p.errbuf, cases[i].why),
                  "%s: wanted \"%s%s\", got: %s", cases[i].scenario, prefix, cases[i].why,
                  p.errbuf);
        tk_proc_free(&p);
        fake_stop(&f);
    }
}

/* A failed dialogue with --json (stderr) or --check --json (stdout): the report still
 * comes, with the dialogue's error; the exit code is the dialogue's. */
TK_TEST(starttls, json_report_on_a_failed_dialogue)
{
    for (int check = 0; check <= 1; check++) {
        struct fake f;
        fake_start(&f, "smtp-no-starttls");
        struct tk_proc p;
        const char *args[] = {"--starttls", "smtp", "--ca", tk_cert("ca.crt"), "--json",
                              check ? "--check" : "--json", "127.0.0.1", f.port, NULL};
        int rc = client(&p, args, "");
        cr_expect_eq(rc, 6, "exit %d: %s", rc, p.errbuf);
        const char *json = check ? p.outbuf : strchr(p.errbuf, '{');
        cr_expect(tk_contains(json, "\"error\":{\"code\":\"TLSKIT_E_PROTOCOL\",\"exit\":6,"
                              "\"message\":\"starttls smtp: 127.0.0.1:") &&
                      tk_contains(json, "the server does not offer STARTTLS"),
                  "check %d: %s", check, tk_str(json));
        cr_expect(tk_contains(json, "\"peer\":\"127.0.0.1:"), "check %d: %s", check,
                  tk_str(json));
        tk_proc_free(&p);
        fake_stop(&f);
    }
}

/* After the upgrade, the certificate is verified as always: an untrusted one exits 5. */
TK_TEST(starttls, verify_fails_after_upgrade)
{
    struct fake f;
    fake_start(&f, "smtp");
    struct tk_proc p;
    const char *args[] = {"--starttls", "smtp", "--ca", tk_cert("other-ca.crt"), "localhost",
                          f.port, NULL};
    cr_expect_eq(client(&p, args, ""), 5, "%s", p.errbuf);
    cr_expect(tk_contains(p.errbuf, "certificate verify failed"), "%s", p.errbuf);
    tk_proc_free(&p);
    fake_stop(&f);
}

TK_TEST(starttls, usage)
{
    struct tk_proc p;
    const char *args[] = {"--starttls", "gopher", "localhost", "25", NULL};
    cr_expect_eq(client(&p, args, ""), 2);
    cr_expect(tk_contains(p.errbuf, "--starttls: 'gopher' is not one of smtp, imap, pop3, "
                                    "ftp, xmpp, postgres"), "%s", p.errbuf);
    tk_proc_free(&p);
}

/* ---- real servers --------------------------------------------------------------------- */

/* Root runs the servers as their own system user (PostgreSQL refuses root). */
static const struct passwd *service_user(const char *name)
{
    return geteuid() == 0 ? getpwnam(name) : NULL;
}

static void chown_to(const char *path, const struct passwd *pw)
{
    if (pw != NULL)
        cr_assert_eq(chown(path, pw->pw_uid, pw->pw_gid), 0, "chown %s", path);
}

static int find_postgres_bin(char *dir, size_t len)
{
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) != 0)
        return 0;
    snprintf(dir, len, "%s", g.gl_pathv[g.gl_pathc - 1]); /* the newest version */
    *strrchr(dir, '/') = '\0';
    globfree(&g);
    return 1;
}

TK_TEST(starttls, postgres_real)
{
    char bin[256], dir[256], data[300], crt[300], key[300], prog[300], initdb[300];
    if (!find_postgres_bin(bin, sizeof bin))
        cr_skip_test("PostgreSQL is not installed (scripts/setup.sh installs postgresql)");
    const struct passwd *pw = service_user("postgres");
    if (geteuid() == 0)
        cr_assert_not_null(pw, "running as root and there is no postgres user");
    char reuid[64], regid[64];
    snprintf(reuid, sizeof reuid, "--reuid=%u", pw ? pw->pw_uid : 0);
    snprintf(regid, sizeof regid, "--regid=%u", pw ? pw->pw_gid : 0);
    tk_tmpdir(dir, sizeof dir);
    chown_to(dir, pw);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(crt, sizeof crt, "%s/server.crt", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    copy_file(tk_cert("server.crt"), crt, 0644);
    copy_file(tk_cert("server.key"), key, 0600); /* postgres insists */
    chown_to(crt, pw);
    chown_to(key, pw);
    snprintf(prog, sizeof prog, "%s/postgres", bin);
    snprintf(initdb, sizeof initdb, "%s/initdb", bin);

    /* As the postgres user through setpriv (it execs: the pid is the server's). */
    const char *pre[] = {SETPRIV, reuid, regid, "--clear-groups"};
    size_t npre = pw ? 4 : 0;
    const char *argv[40];
    size_t n = 0;
    for (size_t i = 0; i < npre; i++)
        argv[n++] = pre[i];
    const char *init_args[] = {initdb, "-D", data, "-A", "trust", "-U", "postgres",
                               "--no-sync", NULL};
    for (size_t i = 0; init_args[i]; i++)
        argv[n++] = init_args[i];
    argv[n] = NULL;
    struct tk_proc p;
    cr_assert_eq(tk_run(&p, argv, NULL, 0, RUN_MS), 0, "initdb: %s", p.errbuf);
    tk_proc_free(&p);

    /* Its port is given, not picked: take a free one, and another if it was taken. */
    struct tk_proc srv;
    char port[16] = "", ssl_cert[400], ssl_key[400];
    snprintf(ssl_cert, sizeof ssl_cert, "ssl_cert_file=%s", crt);
    snprintf(ssl_key, sizeof ssl_key, "ssl_key_file=%s", key);
    for (int attempt = 0; attempt < 3; attempt++) {
        snprintf(port, sizeof port, "%d", free_port());
        n = npre;
        const char *run_args[] = {prog, "-D", data, "-k", dir, "-p", port, "-c",
                                  "listen_addresses=127.0.0.1", "-c", "ssl=on", "-c", ssl_cert,
                                  "-c", ssl_key, "-c", "fsync=off", NULL};
        for (size_t i = 0; run_args[i]; i++)
            argv[n++] = run_args[i];
        argv[n] = NULL;
        tk_proc_start(&srv, argv);
        if (tk_proc_wait_for(&srv, 2, "ready to accept connections", RUN_MS))
            break;
        cr_assert(tk_contains(srv.errbuf, "could not bind"), "postgres: %s", srv.errbuf);
        tk_proc_wait(&srv, RUN_MS);
        tk_proc_free(&srv);
        port[0] = '\0';
    }
    cr_assert(port[0], "postgres found no free port");

    /* A StartupMessage (protocol 3.0, user and database postgres) through the relay, then
     * Terminate: the server's AuthenticationOk and parameters come back over TLS. */
    static const char startup[] = "\0\0\0\x29\0\3\0\0user\0postgres\0database\0postgres\0\0"
                                  "X\0\0\0\4";
    struct tk_proc c;
    const char *args[] = {"--starttls", "postgres", "--ca", tk_cert("ca.crt"), "-v",
                          "127.0.0.1", port, NULL};
    int rc = tk_run_app(&c, tk_client_bin(), args, startup, sizeof startup - 1, RUN_MS);
    cr_expect_eq(rc, 0, "%s", c.errbuf);
    cr_expect(c.outlen > 9 && memcmp(c.outbuf, "R\0\0\0\x08\0\0\0\0", 9) == 0,
              "no AuthenticationOk (%zu bytes)", c.outlen);
    cr_expect(memmem(c.outbuf, c.outlen, "server_version", 14) != NULL);
    cr_expect(tk_contains(c.errbuf, "verify result: ok"), "%s", c.errbuf);
    tk_proc_free(&c);

    /* --reconnect speaks the dialogue again on each connection. */
    const char *again[] = {"--starttls", "postgres", "--ca", tk_cert("ca.crt"), "--reconnect",
                           "1", "127.0.0.1", port, NULL};
    cr_expect_eq(client(&c, again, ""), 0, "%s", c.errbuf);
    cr_expect(tk_matches(c.errbuf, "reconnect 1: resumed: (yes|no)"), "%s", c.errbuf);
    tk_proc_free(&c);

    /* The same server, a CA that did not sign its certificate: exit 5 after the upgrade. */
    const char *other[] = {"--starttls", "postgres", "--ca", tk_cert("other-ca.crt"),
                           "127.0.0.1", port, NULL};
    cr_expect_eq(client(&c, other, ""), 5, "%s", c.errbuf);
    cr_expect(tk_contains(c.errbuf, "certificate verify failed"), "%s", c.errbuf);
    tk_proc_free(&c);

    kill(srv.pid, SIGINT); /* fast shutdown */
    cr_expect_eq(tk_proc_wait(&srv, RUN_MS), 0, "%s", srv.errbuf);
    tk_proc_free(&srv);
    tk_rmtree(dir);
}

TK_TEST(starttls, dovecot_imap_pop3_real)
{
    if (access("/usr/sbin/dovecot", X_OK) != 0)
        cr_skip_test("Dovecot is not installed (scripts/setup.sh installs dovecot-imapd "
                     "and dovecot-pop3d)");
    char dir[256], conf[300], crt[300], key[300], imap[16], pop3[16];
    tk_tmpdir(dir, sizeof dir);
    snprintf(conf, sizeof conf, "%s/dovecot.conf", dir);
    snprintf(crt, sizeof crt, "%s/server.crt", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    copy_file(tk_cert("server.crt"), crt, 0644);
    copy_file(tk_cert("server.key"), key, 0600);

    struct tk_proc srv;
    for (int attempt = 0;; attempt++) {
        snprintf(imap, sizeof imap, "%d", free_port());
        snprintf(pop3, sizeof pop3, "%d", free_port());
        /* Plain-text logins off until TLS: PLAIN appears in the capabilities only once
         * the relay runs over TLS, which shows the protocol carried on. Not root: every
         * service runs as us. */
        const struct passwd *me = getpwuid(geteuid());
        char users[256] = "";
        if (geteuid() != 0 && me != NULL)
            snprintf(users, sizeof users, "default_internal_user = %s\n"
                     "default_login_user = %s\n", me->pw_name, me->pw_name);
        char text[4096];
        int len = snprintf(text, sizeof text,
            "base_dir = %s/run\nstate_dir = %s/state\nlog_path = /dev/stderr\n%s"
            "protocols = imap pop3\nlisten = 127.0.0.1\nssl = yes\n"
            "ssl_cert = <%s\nssl_key = <%s\ndisable_plaintext_auth = yes\n"
            "auth_mechanisms = plain\n"
            "passdb {\n driver = static\n args = password=unused\n}\n"
            "userdb {\n driver = static\n args = uid=%u gid=%u home=%s\n}\n"
            "service imap-login {\n inet_listener imap {\n  port = %s\n }\n"
            " inet_listener imaps {\n  port = 0\n }\n}\n"
            "service pop3-login {\n inet_listener pop3 {\n  port = %s\n }\n"
            " inet_listener pop3s {\n  port = 0\n }\n}\n",
            dir, dir, users, crt, key, (unsigned)geteuid(), (unsigned)getegid(), dir, imap,
            pop3);
        tk_write_file(conf, text, (size_t)len);
        const char *argv[] = {"/usr/sbin/dovecot", "-F", "-c", conf, NULL};
        tk_proc_start(&srv, argv);
        if (tk_proc_wait_for(&srv, 2, "starting up", RUN_MS))
            break;
        cr_assert(attempt < 2 && tk_contains(srv.errbuf, "in use"), "dovecot: %s",
                  srv.errbuf);
        tk_proc_wait(&srv, RUN_MS);
        tk_proc_free(&srv);
    }
    /* The listeners are bound before "starting up" is logged; poll to be sure. */
    for (int i = 0; i < 200 && !can_connect(atoi(imap)); i++)
        usleep(50 * 1000);

    struct tk_proc c;
    const char *a_imap[] = {"--starttls", "imap", "--ca", tk_cert("ca.crt"), "localhost", imap,
                            NULL};
    cr_expect_eq(client(&c, a_imap, "a3 CAPABILITY\r\na4 LOGOUT\r\n"), 0, "%s", c.errbuf);
    cr_expect(tk_matches(c.outbuf, "\\* CAPABILITY [^\n]*AUTH=PLAIN"), "%s", c.outbuf);
    cr_expect(tk_contains(c.outbuf, "a4 OK"), "%s", c.outbuf);
    tk_proc_free(&c);

    const char *a_pop3[] = {"--starttls", "pop3", "--ca", tk_cert("ca.crt"), "localhost", pop3,
                            NULL};
    cr_expect_eq(client(&c, a_pop3, "CAPA\r\nQUIT\r\n"), 0, "%s", c.errbuf);
    cr_expect(tk_contains(c.outbuf, "SASL PLAIN"), "%s", c.outbuf);
    cr_expect(tk_matches(c.outbuf, "\r\n\\+OK[^\n]*\r\n$"), "%s", c.outbuf);
    tk_proc_free(&c);

    const char *bad[] = {"--starttls", "imap", "--ca", tk_cert("other-ca.crt"), "localhost",
                         imap, NULL};
    cr_expect_eq(client(&c, bad, ""), 5, "%s", c.errbuf);
    tk_proc_free(&c);

    kill(srv.pid, SIGTERM);
    tk_proc_wait(&srv, RUN_MS);
    tk_proc_free(&srv);
    tk_rmtree(dir);
}

/* Postfix's master must run as root; without root, the scripted fake stands in (and the
 * test says so). */
TK_TEST(starttls, postfix_smtp_real)
{
    if (geteuid() != 0 || access("/usr/lib/postfix/sbin/master", X_OK) != 0) {
        cr_log_warn("Postfix needs root (or is not installed): SMTP against the scripted "
                    "fake instead");
        fake_ok("smtp", "smtp");
        return;
    }
    char dir[256], path[300], crt[300], key[300], port[16];
    tk_tmpdir(dir, sizeof dir);
    cr_assert_eq(chmod(dir, 0755), 0); /* postfix's own users work below it */
    snprintf(crt, sizeof crt, "%s/server.crt", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    copy_file(tk_cert("server.crt"), crt, 0644);
    copy_file(tk_cert("server.key"), key, 0600);
    const struct passwd *pw = getpwnam("postfix");
    cr_assert_not_null(pw, "no postfix user");
    snprintf(path, sizeof path, "%s/conf", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/queue", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/data", dir);
    cr_assert_eq(mkdir(path, 0700), 0);
    chown_to(path, pw);
    snprintf(port, sizeof port, "%d", free_port());

    char text[4096];
    int len = snprintf(text, sizeof text,
        "compatibility_level = 3.6\nqueue_directory = %s/queue\ndata_directory = %s/data\n"
        "mail_owner = postfix\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n"
        "myhostname = mail.test.invalid\nmydestination =\nmaillog_file = /dev/stdout\n"
        "smtpd_tls_cert_file = %s\nsmtpd_tls_key_file = %s\n"
        "smtpd_tls_security_level = may\n", dir, dir, crt, key);
    snprintf(path, sizeof path, "%s/conf/main.cf", dir);
    tk_write_file(path, text, (size_t)len);
    static const char *const services[] = {
        "cleanup unix n - n - 0 cleanup", "qmgr unix n - n 300 1 qmgr",
        "tlsmgr unix - - n 1000? 1 tlsmgr", "rewrite unix - - n - - trivial-rewrite",
        "bounce unix - - n - 0 bounce", "defer unix - - n - 0 bounce",
        "trace unix - - n - 0 bounce", "verify unix - - n - 1 verify",
        "proxymap unix - - n - - proxymap", "anvil unix - - n - 1 anvil",
        "scache unix - - n - 1 scache", "postlog unix-dgram n - n - 1 postlogd",
        "error unix - - n - - error", "discard unix - - n - - discard",
    };
    len = snprintf(text, sizeof text, "127.0.0.1:%s inet n - n - - smtpd\n", port);
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++)
        len += snprintf(text + len, sizeof text - (size_t)len, "%s\n", services[i]);
    snprintf(path, sizeof path, "%s/conf/master.cf", dir);
    tk_write_file(path, text, (size_t)len);

    /* `postfix check` makes the queue directories; the master, in the foreground (-d), is
     * the child we stop. */
    snprintf(path, sizeof path, "%s/conf", dir);
    const char *check[] = {"/usr/sbin/postfix", "-c", path, "check", NULL};
    struct tk_proc p;
    cr_assert_eq(tk_run(&p, check, NULL, 0, RUN_MS), 0, "postfix check: %s", p.errbuf);
    tk_proc_free(&p);
    const char *master[] = {"/usr/lib/postfix/sbin/master", "-c", path, "-d", NULL};
    struct tk_proc srv;
    tk_proc_start(&srv, master);
    cr_assert(tk_proc_wait_for(&srv, 1, "daemon started", RUN_MS), "postfix: %s %s",
              srv.outbuf, srv.errbuf);

    /* EHLO again over TLS: the answer no longer offers STARTTLS. Postfix closes without
     * close_notify once we close (exit 7, "truncated"), its known habit. */
    const char *args[] = {"--starttls", "smtp", "--ca", tk_cert("ca.crt"), "-v", "127.0.0.1",
                          port, NULL};
    const char *argv[32];
    size_t n = 0;
    argv[n++] = tk_client_bin();
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    struct tk_proc c;
    tk_proc_start(&c, argv);
    tk_proc_feed(&c, "EHLO [127.0.0.1]\r\n", 18, 0);
    cr_expect(tk_proc_wait_for(&c, 1, "\n250 ", RUN_MS), "%s %s", c.outbuf, c.errbuf);
    tk_proc_feed(&c, "", 0, 1);
    int rc = tk_proc_wait(&c, RUN_MS);
    cr_expect(rc == 0 || rc == 7, "exit %d: %s", rc, c.errbuf);
    cr_expect(tk_contains(c.outbuf, "250-mail.test.invalid"), "%s", c.outbuf);
    cr_expect(!tk_contains(c.outbuf, "STARTTLS"), "%s", c.outbuf);
    cr_expect(tk_contains(c.errbuf, "verify result: ok"), "%s", c.errbuf);
    tk_proc_free(&c);

    kill(srv.pid, SIGTERM);
    tk_proc_wait(&srv, RUN_MS);
    tk_proc_free(&srv);
    tk_rmtree(dir);
}
