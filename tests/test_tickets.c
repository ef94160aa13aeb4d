/* SPDX-License-Identifier: MIT */
/*
 * Session-ticket keys (tickets.c), in process over loopback listeners: keys shared by
 * two configs (nginx's 48- and 80-byte layouts), the first key encrypts and the others
 * renew, automatic rotation, reload keeping tickets, and bad key input; client sessions
 * saved and loaded as PEM (memory and files) and bad session files.
 */
#include "common.h"

#include <openssl/ssl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TK_SUITE(tickets);

/* ---- a client exchange with a tk_byte_server ---- */

/* A client connection to the server on l, offering `offer` (may be NULL), handshake
 * done. */
static tlskit_conn *connect_hs(tlskit_config *c, tlskit_listener *l, tlskit_session *offer)
{
    char port[16];
    snprintf(port, sizeof port, "%d", tlskit_listener_port(l));
    tlskit_conn *conn = tlskit_conn_new(c);
    cr_assert_not_null(conn);
    cr_assert_eq(tlskit_conn_set_servername(conn, "localhost"), 0);
    cr_assert_eq(tlskit_conn_connect(conn, "127.0.0.1", port), 0, "%s",
                 tk_str(tlskit_conn_error(conn)));
    if (offer)
        cr_assert_eq(tlskit_conn_set_session(conn, offer), 0, "%s",
                     tk_str(tlskit_conn_error(conn)));
    cr_assert_eq(tlskit_conn_handshake(conn), 0, "%s", tk_str(tlskit_conn_error(conn)));
    return conn;
}

/* One byte there and back, then close. */
static void echo_close(tlskit_conn *conn)
{
    cr_assert_eq(tlskit_conn_write(conn, "x", 1), 1, "%s", tk_str(tlskit_conn_error(conn)));
    char ch;
    tk_conn_read_exact(conn, &ch, 1); /* TLS 1.3: the ticket came before the answer */
    tlskit_conn_close(conn);
    tlskit_conn_free(conn);
}

/* One exchange with the server on l, offering `offer` (may be NULL). Returns the session
 * the connection ended with (a new reference) and sets *reused. */
static tlskit_session *exchange(tlskit_config *c, tlskit_listener *l, tlskit_session *offer,
                                int *reused)
{
    tlskit_conn *conn = connect_hs(c, l, offer);
    cr_assert_eq(tlskit_conn_write(conn, "x", 1), 1, "%s", tk_str(tlskit_conn_error(conn)));
    char ch;
    tk_conn_read_exact(conn, &ch, 1);
    *reused = tlskit_conn_session_reused(conn);
    tlskit_session *s = tlskit_conn_session_copy(conn);
    tlskit_conn_close(conn);
    tlskit_conn_free(conn);
    return s;
}

/* The name of the key that encrypted the session's ticket (its first 16 bytes). */
static void ticket_name(const tlskit_session *s, unsigned char name[16])
{
    const unsigned char *tick = NULL;
    size_t len = 0;
    SSL_SESSION_get0_ticket((const SSL_SESSION *)(const void *)s, &tick, &len);
    cr_assert_geq(len, 16, "the session has no ticket");
    memcpy(name, tick, 16);
}

static tlskit_config *client_cfg(int proto)
{
    tlskit_config *c = tk_client_config("ca.crt");
    cr_assert_eq(tlskit_config_set_protocols(c, proto, proto), 0);
    return c;
}

static unsigned char key48[48];
static unsigned char key80[80];
static unsigned char key80b[80];

static void make_keys(void)
{
    tk_fill_pattern(key48, sizeof key48, 48);
    tk_fill_pattern(key80, sizeof key80, 80);
    tk_fill_pattern(key80b, sizeof key80b, 81);
}

static tlskit_config *srv_cfg_keys(const unsigned char *k1, size_t l1, const unsigned char *k2,
                                   size_t l2)
{
    tlskit_config *s = tk_server_config("server");
    if (k1)
        cr_assert_eq(tlskit_config_add_ticket_key_mem(s, k1, l1), 0, "%s",
                     tk_str(tlskit_config_error(s)));
    if (k2)
        cr_assert_eq(tlskit_config_add_ticket_key_mem(s, k2, l2), 0, "%s",
                     tk_str(tlskit_config_error(s)));
    return s;
}

/* A session from a server with keys (a1, a2) offered to a server with keys (b1, b2).
 * Returns whether it resumed; *renewed: the ticket after it is under another key. */
static int across(int proto, const unsigned char *a1, size_t la1, const unsigned char *b1,
                  size_t lb1, const unsigned char *b2, size_t lb2, int *renewed)
{
    tlskit_config *sa = srv_cfg_keys(a1, la1, NULL, 0), *sb = srv_cfg_keys(b1, lb1, b2, lb2);
    tlskit_config *c = client_cfg(proto);
    tlskit_listener *la = tk_listen(sa, "127.0.0.1", "0"), *lb = tk_listen(sb, "127.0.0.1", "0");
    struct tk_byte_server ra = {.l = la, .conns = 1}, rb = {.l = lb, .conns = 1};
    pthread_t ta = tk_thread_start(tk_byte_server_main, &ra), tb = tk_thread_start(tk_byte_server_main, &rb);
    int reused = -1, reused2 = -1;
    tlskit_session *s1 = exchange(c, la, NULL, &reused);
    cr_expect_eq(reused, 0);
    tlskit_session *s2 = exchange(c, lb, s1, &reused2);
    unsigned char n1[16], n2[16];
    ticket_name(s1, n1);
    ticket_name(s2, n2);
    *renewed = memcmp(n1, n2, 16) != 0;
    tlskit_session_free(s1);
    tlskit_session_free(s2);
    tk_thread_join(ta);
    tk_thread_join(tb);
    cr_expect_eq(rb.reused[0], reused2, "client and server disagree on the resumption");
    cr_expect_str_empty(ra.err, "%s", ra.err);
    cr_expect_str_empty(rb.err, "%s", rb.err);
    tlskit_listener_free(la);
    tlskit_listener_free(lb);
    tlskit_config_free(sa);
    tlskit_config_free(sb);
    tlskit_config_free(c);
    return reused2;
}

static const int protos[] = {TLSKIT_TLS1_2, TLSKIT_TLS1_3};

/* Which keys serve which ticket: A makes it, B (first key encrypts, second decrypts
 * only) is offered it. */
TK_TEST(tickets, keys_across_configs)
{
    make_keys();
    const struct {
        const unsigned char *a, *b1, *b2;
        size_t la, lb1, lb2;
        int resumed, renewed; /* renewed: -1 not checked */
        const char *what;
    } cases[] = {
        {key48, key48, NULL, 48, 48, 0, 1, 0, "same 48-byte key"},
        {key80, key80, NULL, 80, 80, 0, 1, 0, "same 80-byte key"},
        {key80, key80b, NULL, 80, 80, 0, 0, -1, "a key B does not have"},
        {NULL, NULL, NULL, 0, 0, 0, 0, -1, "two automatic stores"},
        {key80, key80b, key80, 80, 80, 80, 1, 1, "B's decrypt-only key (renewed)"},
    };
    for (size_t i = 0; i < 2; i++)
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            int renewed = -1;
            int resumed = across(protos[i], cases[k].a, cases[k].la, cases[k].b1, cases[k].lb1,
                                 cases[k].b2, cases[k].lb2, &renewed);
            cr_expect_eq(resumed, cases[k].resumed, "proto %x, %s: resumed %d", protos[i],
                         cases[k].what, resumed);
            /* TLS 1.3 may renew any ticket; TLS 1.2 only when told to. */
            if (cases[k].renewed == 1 ||
                (cases[k].renewed == 0 && protos[i] == TLSKIT_TLS1_2))
                cr_expect_eq(renewed, cases[k].renewed, "proto %x, %s: renewed %d",
                             protos[i], cases[k].what, renewed);
        }
}

/* Automatic keys, lifetime 1 s: within the first second the ticket resumes under the same
 * key; in the second it resumes and is renewed under a new key; after two it is refused.
 * The windows are computed from the handshake times, so a slow machine only waits longer. */
TK_TEST(tickets, automatic_keys_rotate)
{
    for (size_t i = 0; i < 2; i++) {
        tlskit_config *s = tk_server_config("server");
        cr_assert_eq(tlskit_config_set_ticket_lifetime(s, 1), 0);
        tlskit_config *c = client_cfg(protos[i]);
        tlskit_listener *l = tk_listen(s, "127.0.0.1", "0");
        struct tk_byte_server r = {.l = l, .conns = 3};
        pthread_t t = tk_thread_start(tk_byte_server_main, &r);
        int reused = -1;
        int64_t start = tk_now_ms();
        tlskit_session *s1 = exchange(c, l, NULL, &reused);
        int64_t made = tk_now_ms();
        /* The key was made between start and made: it encrypts until at least
         * start + 1000 and is accepted until at least start + 2000. */
        while (tk_now_ms() < made + 1000)
            poll(NULL, 0, 20);
        cr_assert_lt(tk_now_ms(), start + 2000, "the machine is too slow for this test");
        tlskit_session *s2 = exchange(c, l, s1, &reused);
        cr_expect_eq(reused, 1, "proto %x: the previous key's ticket was refused", protos[i]);
        unsigned char n1[16], n2[16];
        ticket_name(s1, n1);
        ticket_name(s2, n2);
        cr_expect_neq(memcmp(n1, n2, 16), 0, "proto %x: not renewed under a new key",
                      protos[i]);
        while (tk_now_ms() < made + 2000)
            poll(NULL, 0, 20);
        tlskit_session *s3 = exchange(c, l, s1, &reused);
        cr_expect_eq(reused, 0, "proto %x: a ticket older than two lifetimes resumed",
                     protos[i]);
        tlskit_session_free(s1);
        tlskit_session_free(s2);
        tlskit_session_free(s3);
        tk_thread_join(t);
        cr_expect_str_empty(r.err, "%s", r.err);
        tlskit_listener_free(l);
        tlskit_config_free(s);
        tlskit_config_free(c);
    }
}

/* A hostile client offers forged tickets: another key name, or a changed byte under the
 * HMAC. The server must neither fail nor resume: a full handshake, and a fresh ticket. */
static tlskit_session *forge(const tlskit_session *orig, size_t at_from_end, int name)
{
    const SSL_SESSION *s = (const SSL_SESSION *)(const void *)orig;
    const unsigned char *tick = NULL;
    size_t tlen = 0;
    SSL_SESSION_get0_ticket(s, &tick, &tlen);
    cr_assert_gt(tlen, 32);
    int len = i2d_SSL_SESSION((SSL_SESSION *)(uintptr_t)s, NULL);
    cr_assert_gt(len, 0);
    unsigned char *der = malloc((size_t)len), *p = der;
    cr_assert_eq(i2d_SSL_SESSION((SSL_SESSION *)(uintptr_t)s, &p), len);
    unsigned char *t = memmem(der, (size_t)len, tick, tlen);
    cr_assert_not_null(t, "the ticket is not in the DER session");
    t[name ? 3 : tlen - 1 - at_from_end] ^= 0x5a;
    const unsigned char *q = der;
    SSL_SESSION *forged = d2i_SSL_SESSION(NULL, &q, len);
    free(der);
    cr_assert_not_null(forged);
    return (tlskit_session *)(void *)forged;
}

TK_TEST(tickets, forged_tickets_get_full_handshakes)
{
    make_keys();
    for (size_t i = 0; i < 2; i++) {
        tlskit_config *s = srv_cfg_keys(key80, 80, NULL, 0), *c = client_cfg(protos[i]);
        tlskit_listener *l = tk_listen(s, "127.0.0.1", "0");
        struct tk_byte_server r = {.l = l, .conns = 4};
        pthread_t t = tk_thread_start(tk_byte_server_main, &r);
        int reused = -1;
        tlskit_session *good = exchange(c, l, NULL, &reused);
        const struct {
            size_t at;
            int name;
            const char *what;
        } cases[] = {{0, 1, "unknown key name"}, {0, 0, "last HMAC byte"},
                     {40, 0, "a ciphertext byte"}};
        for (size_t k = 0; k < 3; k++) {
            tlskit_session *bad = forge(good, cases[k].at, cases[k].name);
            tlskit_session *after = exchange(c, l, bad, &reused);
            cr_expect_eq(reused, 0, "proto %x, %s: a forged ticket resumed", protos[i],
                         cases[k].what);
            cr_expect(tlskit_session_resumable(after), "proto %x, %s: no fresh ticket",
                      protos[i], cases[k].what);
            tlskit_session_free(bad);
            tlskit_session_free(after);
        }
        tlskit_session_free(good);
        tk_thread_join(t);
        cr_expect_str_empty(r.err, "%s", r.err);
        for (int k = 1; k < 4; k++)
            cr_expect_eq(r.reused[k], 0, "the server resumed a forged ticket");
        tlskit_listener_free(l);
        tlskit_config_free(s);
        tlskit_config_free(c);
    }
}

/* A reload hands the listener a new config (a new SSL_CTX): tickets made before it still
 * resume. With key files, the new config's keys are what it was given. */
static int resumes_after_reload(int proto, const unsigned char *k_old, const unsigned char *k_new)
{
    tlskit_config *s1 = srv_cfg_keys(k_old, 80, NULL, 0), *s2 = srv_cfg_keys(k_new, 80, NULL, 0);
    tlskit_config *c = client_cfg(proto);
    tlskit_listener *l = tk_listen(s1, "127.0.0.1", "0");
    struct tk_byte_server r = {.l = l, .conns = 2, .reload_to = s2};
    pthread_t t = tk_thread_start(tk_byte_server_main, &r);
    int reused = -1;
    tlskit_session *a = exchange(c, l, NULL, &reused);
    tlskit_session *b = exchange(c, l, a, &reused);
    tk_thread_join(t);
    cr_expect_str_empty(r.err, "%s", r.err);
    tlskit_session_free(a);
    tlskit_session_free(b);
    tlskit_listener_free(l);
    tlskit_config_free(s1);
    tlskit_config_free(s2);
    tlskit_config_free(c);
    return reused;
}

TK_TEST(tickets, reload_keeps_tickets)
{
    make_keys();
    for (size_t i = 0; i < 2; i++) {
        cr_expect_eq(resumes_after_reload(protos[i], NULL, NULL), 1,
                     "proto %x: automatic keys lost in the reload", protos[i]);
        cr_expect_eq(resumes_after_reload(protos[i], key80, key80), 1,
                     "proto %x: same key file, no resumption after reload", protos[i]);
        cr_expect_eq(resumes_after_reload(protos[i], key80, key80b), 0,
                     "proto %x: a replaced key file still decrypts", protos[i]);
    }
}

/* ---- bad input ---- */

static void expect_key_file_error(const char *path, const char *why)
{
    tlskit_config *s = tlskit_config_new();
    cr_assert_not_null(s);
    cr_expect_eq(tlskit_config_add_ticket_key_file(s, path), -1, "%s accepted", path);
    cr_expect_eq(tlskit_config_error_code(s), TLSKIT_E_FILE, "%s: %s", path,
                 tlskit_config_error(s));
    cr_expect(tk_contains(tlskit_config_error(s), path), "%s", tlskit_config_error(s));
    cr_expect(tk_contains(tlskit_config_error(s), why), "want '%s' in: %s", why,
              tlskit_config_error(s));
    tlskit_config_free(s);
}

TK_TEST(tickets, bad_key_files_are_refused)
{
    char dir[256], path[512];
    unsigned char buf[100];
    tk_tmpdir(dir, sizeof dir);
    tk_fill_pattern(buf, sizeof buf, 7);

    const struct {
        const char *name;
        size_t len;
        mode_t mode;
        const char *why;
    } cases[] = {
        {"short.key", 47, 0600, "47 bytes, expected 48 or 80"},
        {"mid.key", 64, 0600, "64 bytes, expected 48 or 80"},
        {"long.key", 81, 0600, "too long"},
        {"open.key", 48, 0644, "readable by group or others (mode 0644"},
        {"group.key", 80, 0640, "readable by group or others (mode 0640"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, cases[i].name);
        tk_write_file(path, buf, cases[i].len);
        chmod(path, cases[i].mode);
        expect_key_file_error(path, cases[i].why);
    }
    expect_key_file_error(dir, "not a regular file (a directory)");
    snprintf(path, sizeof path, "%s/missing.key", dir);
    expect_key_file_error(path, "No such file or directory");

    snprintf(path, sizeof path, "%s/good.key", dir);
    tk_write_file(path, buf, 80);
    chmod(path, 0600);
    tlskit_config *s = tlskit_config_new();
    cr_expect_eq(tlskit_config_add_ticket_key_file(s, path), 0, "%s", tlskit_config_error(s));
    cr_expect_eq(tlskit_config_add_ticket_key_mem(s, buf, 79), -1);
    cr_expect(tk_contains(tlskit_config_error(s), "79 bytes"), "%s", tlskit_config_error(s));
    cr_expect_eq(tlskit_config_set_ticket_lifetime(s, 0), -1);
    cr_expect_eq(tlskit_config_set_ticket_lifetime(s, TLSKIT_TICKET_LIFETIME_MAX + 1), -1);
    cr_expect_eq(tlskit_config_set_ticket_lifetime(s, TLSKIT_TICKET_LIFETIME_MAX), 0);
    tlskit_config_free(s);
    tk_rmtree(dir);
}

TK_TEST(tickets, frozen_config_takes_no_keys)
{
    tlskit_config *s = tk_server_config("server");
    tlskit_listener *l = tlskit_listener_new(s);
    cr_expect_eq(tlskit_config_add_ticket_key_mem(s, key48, 48), -1);
    cr_expect_eq(tlskit_config_set_ticket_lifetime(s, 10), -1);
    cr_expect_eq(tlskit_config_error_code(s), TLSKIT_E_INVALID);
    tlskit_listener_free(l);
    tlskit_config_free(s);
}

/* ---- client sessions: PEM in memory and in files ---- */

/* Save the first connection's session (after waiting for it) to memory and to a file,
 * then resume from each. */
TK_TEST(tickets, session_saved_and_loaded_resumes)
{
    char dir[256], path[300];
    tk_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/sess.pem", dir);
    for (size_t i = 0; i < 2; i++) {
        tlskit_config *s = tk_server_config("server"), *c = client_cfg(protos[i]);
        tlskit_listener *l = tk_listen(s, "127.0.0.1", "0");
        struct tk_byte_server r = {.l = l, .conns = 3};
        pthread_t t = tk_thread_start(tk_byte_server_main, &r);

        tlskit_conn *first = connect_hs(c, l, NULL);
        char *pem = NULL;
        size_t len = 0;
        cr_expect_eq(tlskit_conn_session_wait(first, 20000), 0, "%s",
                     tlskit_conn_error(first));
        cr_assert_eq(tlskit_conn_session_save_mem(first, &pem, &len), 0, "%s",
                     tlskit_conn_error(first));
        cr_assert_eq(tlskit_conn_session_save_file(first, path), 0, "%s",
                     tlskit_conn_error(first));
        echo_close(first); /* the data waited behind the ticket, untouched */
        cr_expect(len > 40 && memcmp(pem, "-----BEGIN SSL SESSION PARAMETERS-----", 38) == 0);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_expect_eq(st.st_mode & 07777, 0600, "session file mode %o", st.st_mode & 07777);

        tlskit_conn *a = tlskit_conn_new(c);
        char port[16];
        snprintf(port, sizeof port, "%d", tlskit_listener_port(l));
        cr_assert_eq(tlskit_conn_connect(a, "localhost", port), 0, "%s", tlskit_conn_error(a));
        cr_assert_eq(tlskit_conn_session_load_mem(a, pem, len), 0, "%s", tlskit_conn_error(a));
        cr_assert_eq(tlskit_conn_handshake(a), 0, "%s", tlskit_conn_error(a));
        cr_expect_eq(tlskit_conn_session_reused(a), 1, "proto %x: PEM in memory", protos[i]);
        echo_close(a);
        tlskit_conn *b = tlskit_conn_new(c);
        cr_assert_eq(tlskit_conn_connect(b, "localhost", port), 0, "%s", tlskit_conn_error(b));
        cr_assert_eq(tlskit_conn_session_load_file(b, path), 0, "%s", tlskit_conn_error(b));
        cr_assert_eq(tlskit_conn_handshake(b), 0, "%s", tlskit_conn_error(b));
        cr_expect_eq(tlskit_conn_session_reused(b), 1, "proto %x: session file", protos[i]);
        echo_close(b);
        free(pem);
        tk_thread_join(t);
        cr_expect_str_empty(r.err, "%s", r.err);
        tlskit_listener_free(l);
        tlskit_config_free(s);
        tlskit_config_free(c);
    }
    tk_rmtree(dir);
}

static void expect_load_error(tlskit_conn *conn, const char *path, const char *why)
{
    cr_expect_eq(tlskit_conn_session_load_file(conn, path), -1, "%s accepted", path);
    cr_expect_eq(tlskit_conn_error_code(conn), TLSKIT_E_FILE, "%s", tlskit_conn_error(conn));
    cr_expect(tk_contains(tlskit_conn_error(conn), path), "%s", tlskit_conn_error(conn));
    cr_expect(tk_contains(tlskit_conn_error(conn), why), "want '%s' in: %s", why,
              tlskit_conn_error(conn));
}

TK_TEST(tickets, bad_session_files_are_refused)
{
    char dir[256], path[300];
    tk_tmpdir(dir, sizeof dir);
    tlskit_config *c = tk_client_config("ca.crt");
    tlskit_conn *conn = tlskit_conn_new(c);

    snprintf(path, sizeof path, "%s/open.pem", dir);
    tk_write_file(path, "x", 1);
    chmod(path, 0644);
    expect_load_error(conn, path, "readable by group or others (mode 0644");
    chmod(path, 0600);
    cr_assert_eq(chown(path, 4321, 4321), 0, "chown (the suite runs as root)");
    expect_load_error(conn, path, "belongs to another user (uid 4321)");
    cr_assert_eq(chown(path, geteuid(), getegid()), 0);
    expect_load_error(conn, path, "not a PEM session");
    expect_load_error(conn, dir, "not a regular file (a directory)");
    snprintf(path, sizeof path, "%s/missing.pem", dir);
    expect_load_error(conn, path, "No such file or directory");
    cr_expect_eq(tlskit_conn_session_load_mem(conn, "junk", 4), -1);
    cr_expect_eq(tlskit_conn_error_code(conn), TLSKIT_E_FILE, "%s", tlskit_conn_error(conn));

    /* Nothing to save or wait for before a handshake. */
    cr_expect_eq(tlskit_conn_session_save_file(conn, path), -1);
    cr_expect_eq(tlskit_conn_error_code(conn), TLSKIT_E_INVALID, "%s", tlskit_conn_error(conn));
    cr_expect_eq(tlskit_conn_session_wait(conn, 10), -1);
    cr_expect_eq(tlskit_conn_error_code(conn), TLSKIT_E_INVALID, "%s", tlskit_conn_error(conn));
    tlskit_conn_free(conn);
    tlskit_config_free(c);
    tk_rmtree(dir);
}
