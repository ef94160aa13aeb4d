/* SPDX-License-Identifier: MIT */
/* --listen: the tunnel (stunnel's client mode). The engine accepts plain TCP locally
 * (tlskit_engine_set_plain) and, for each connection, opens a verified TLS connection
 * to HOST PORT on the same worker (tlskit_engine_connect); apps/common/pair.c relays
 * them. Every TLS connection offers the session the last one left, so after the first
 * they resume. The main thread only waits for SIGINT or SIGTERM. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "options.h"
#include "pair.h"

#define TUNNEL_DRAIN_MS 2000

struct tunnel {
    const struct options *o;
    tlskit_engine *e;
    tlskit_config *tls;           /* the TLS side: tlsclient's configuration */
    pthread_mutex_t mu;           /* guards sess: workers share it */
    tlskit_session *sess;         /* the last resumable session, offered to the next */
};

static void keep_session(struct tunnel *t, tlskit_conn *c)
{
    tlskit_session *s = tlskit_conn_session_copy(c);
    if (s == NULL || !tlskit_session_resumable(s)) {
        tlskit_session_free(s);
        return;
    }
    pthread_mutex_lock(&t->mu);
    tlskit_session *old = t->sess;
    t->sess = s;
    pthread_mutex_unlock(&t->mu);
    tlskit_session_free(old);
}

static void local_open(struct tunnel *t, tlskit_conn *c)
{
    const struct options *o = t->o;
    tlskit_conn *b = tlskit_engine_connect(t->e, c, t->tls, o->host, o->port, 0);
    if (b == NULL) {
        cli_msg("tunnel %s: %s", tlskit_conn_peer_addr(c), tlskit_conn_error(c));
        tlskit_conn_close(c);
        return;
    }
    if (pair_new(c, b) == NULL) {
        cli_msg("out of memory: closing %s", tlskit_conn_peer_addr(c));
        tlskit_conn_abort(b, "out of memory");
        tlskit_conn_close(c);
        return;
    }
    if (o->servername != NULL && tlskit_conn_set_servername(b, o->servername) < 0)
        cli_msg("--servername: %s", tlskit_conn_error(b)); /* the handshake then fails */
    pthread_mutex_lock(&t->mu);
    if (t->sess != NULL)
        (void)tlskit_conn_set_session(b, t->sess); /* a refused one: a full handshake */
    pthread_mutex_unlock(&t->mu);
}

static void on_open(tlskit_conn *c, void *arg)
{
    struct tunnel *t = arg;
    struct pair *p = tlskit_conn_userdata(c);
    if (p == NULL) {
        local_open(t, c);
        return;
    }
    p->back_open = 1;
    if (t->o->verbosity > 1)
        client_summary(c);
}

static void on_data(tlskit_conn *c, const void *data, size_t len, void *arg)
{
    struct tunnel *t = arg;
    struct pair *p = tlskit_conn_userdata(c);
    if (p != NULL && c == p->back && tlskit_conn_bytes_in(c) == len)
        keep_session(t, c); /* the first data: TLS 1.3 tickets came before it */
    pair_data(c, data, len);
}

static void on_drain(tlskit_conn *c, void *arg)
{
    (void)arg;
    pair_drain(c);
}

static void on_eof(tlskit_conn *c, void *arg)
{
    (void)arg;
    pair_eof(c);
}

/* One line per tunnelled connection, when its TLS side ends. */
static void log_end(const struct tunnel *t, const struct pair *p, tlskit_conn *b, int code,
                    const char *reason)
{
    if (t->o->verbosity < 1)
        return;
    const char *proto = tlskit_conn_protocol(b), *cipher = tlskit_conn_cipher(b);
    char head[512];
    snprintf(head, sizeof(head), "tunnel %s -> %s proto=%s cipher=%s resumed=%s in=%llu "
             "out=%llu time=%.3fs", p->front_addr, tlskit_conn_peer_addr(b),
             proto ? proto : "-", cipher ? cipher : "-",
             tlskit_conn_session_reused(b) ? "yes" : "no", p->back_in, p->back_out,
             (double)tlskit_conn_age_ms(b) / 1000.0);
    if (code == TLSKIT_E_NONE)
        cli_msg("%s ok", head);
    else
        cli_msg("%s error=%s: %s", head, tlskit_error_name(code), reason);
}

static void on_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    struct tunnel *t = arg;
    struct pair *p = tlskit_conn_userdata(c);
    if (p == NULL)
        return; /* a local connection that could not be paired (logged) */
    if (c == p->back && p->back_open)
        keep_session(t, c);
    int front = pair_closed(p, c, code, reason);
    if (!front)
        log_end(t, p, c, code, reason);
    pair_release(p);
}

static void on_event(int code, const char *message, void *arg)
{
    (void)code;
    (void)arg;
    cli_msg("%s", message);
}

/* Until SIGINT or SIGTERM. Workers block every signal, so sigwait() here takes them. */
static void wait_for_stop(void)
{
    sigset_t set;
    int sig;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
}

static tlskit_engine *tunnel_engine(struct tunnel *t, tlskit_config *local)
{
    const struct options *o = t->o;
    struct tlskit_engine_handlers h = {
        .on_open = on_open, .on_data = on_data, .on_drain = on_drain, .on_eof = on_eof,
        .on_close = on_close, .on_event = on_event, .arg = t};
    tlskit_engine *e = tlskit_engine_new(local, &h);
    if (e == NULL) {
        cli_msg("out of memory");
        return NULL;
    }
    const char *host = o->listen_host[0] != '\0' ? o->listen_host : "localhost";
    if (tlskit_engine_set_plain(e, 1) < 0 ||
        tlskit_engine_set_drain_timeout(e, TUNNEL_DRAIN_MS) < 0 ||
        tlskit_engine_listen(e, host, o->listen_port, 0) < 0) {
        cli_msg("--listen %s: %s", o->listen, tlskit_engine_error(e));
        tlskit_engine_free(e);
        return NULL;
    }
    return e;
}

int tunnel_run(const struct options *o, tlskit_config *tls)
{
    struct tunnel t = {.o = o, .tls = tls};
    tlskit_config *local = tlskit_config_new();
    if (local == NULL || pthread_mutex_init(&t.mu, NULL) != 0) {
        cli_msg("out of memory");
        tlskit_config_free(local);
        return CLI_EXIT_ERROR;
    }
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int rc = CLI_EXIT_ERROR;
    /* A local client that stops reading is cut after this long, as tlsserver's default. */
    tlskit_config_set_timeout(local, TLSKIT_TIMEOUT_WRITE, 30 * 1000);
    tlskit_config_set_timeout(tls, TLSKIT_TIMEOUT_WRITE, 30 * 1000);
    if ((t.e = tunnel_engine(&t, local)) != NULL) {
        printf("tlsclient: listening on %s\n", tlskit_engine_addrs(t.e));
        fflush(stdout);
        if (tlskit_engine_start(t.e) < 0) {
            cli_msg("%s", tlskit_engine_error(t.e));
        } else {
            wait_for_stop();
            tlskit_engine_stop(t.e);
            rc = CLI_EXIT_OK;
        }
        tlskit_engine_free(t.e);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    tlskit_session_free(t.sess);
    pthread_mutex_destroy(&t.mu);
    tlskit_config_free(local);
    return rc;
}
