/* SPDX-License-Identifier: MIT */
/* --forward: each client, once its handshake is done, is paired (apps/common/pair.c)
 * with a new plain connection to the backend on the same engine worker, with the
 * public API only; with --send-proxy, a PROXY header goes first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pair.h"
#include "server.h"

struct forward {
    struct server *s;
    tlskit_engine *e;
    tlskit_config *bcfg; /* the backend connections' deadlines and socket options */
};

static void client_open(struct forward *f, tlskit_conn *c)
{
    const struct options *o = &f->s->opt;
    tlskit_conn *b = tlskit_engine_connect(f->e, c, f->bcfg, o->fwd_host, o->fwd_port,
                                           TLSKIT_CONNECT_PLAIN);
    if (b == NULL) {
        cli_msg("backend %s: %s", o->forward, tlskit_conn_error(c));
        tlskit_conn_close(c);
        return;
    }
    if (pair_new(c, b) == NULL) {
        cli_msg("out of memory: closing %s", tlskit_conn_peer_addr(c));
        tlskit_conn_abort(b, "out of memory");
        tlskit_conn_close(c);
        return;
    }
    if (o->send_proxy) {
        unsigned char hdr[TLSKIT_PROXY_HEADER_MAX];
        ssize_t n = tlskit_conn_proxy_header(c, o->send_proxy, hdr, sizeof(hdr));
        if (n < 0) {
            cli_msg("--send-proxy: %s", tlskit_conn_error(c));
            tlskit_conn_abort(b, "no PROXY header");
            return;
        }
        tlskit_conn_write(b, hdr, (size_t)n); /* sent first, once connected */
    }
}

static void fwd_open(tlskit_conn *c, void *arg)
{
    struct forward *f = arg;
    struct pair *p = tlskit_conn_userdata(c);
    if (p == NULL) {
        server_log_handshake(f->s, c);
        client_open(f, c);
    } else {
        p->back_open = 1;
    }
}

static void fwd_data(tlskit_conn *c, const void *data, size_t len, void *arg)
{
    (void)arg;
    pair_data(c, data, len);
}

static void fwd_drain(tlskit_conn *c, void *arg)
{
    (void)arg;
    pair_drain(c);
}

static void fwd_eof(tlskit_conn *c, void *arg)
{
    (void)arg;
    pair_eof(c);
}

static void fwd_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    struct forward *f = arg;
    struct pair *p = tlskit_conn_userdata(c);
    if (p == NULL) { /* the handshake failed (or no memory): there never was a backend */
        server_log_end(f->s, c, code, reason);
    } else if (!pair_closed(p, c, code, reason)) { /* the backend */
        if (!p->back_open && p->front != NULL)
            cli_msg("backend %s", p->failed ? p->failed : "(out of memory: reason lost)");
        pair_release(p);
        return;
    } else {
        struct backend_log b = {.addr = p->back_addr, .in = p->back_in, .out = p->back_out};
        char why[600];
        if (p->failed) {
            snprintf(why, sizeof(why), "backend %s", p->failed);
            server_log_end_fwd(f->s, c, TLSKIT_E_CONNECT, why, &b);
        } else {
            server_log_end_fwd(f->s, c, code, reason, &b);
        }
        pair_release(p);
    }
    unsigned long ended = atomic_fetch_add(&f->s->ended, 1) + 1;
    if (f->s->opt.exit_after && ended >= f->s->opt.exit_after)
        wake_main();
}

struct forward *forward_new(struct server *s, struct tlskit_engine_handlers *h)
{
    const struct options *o = &s->opt;
    struct forward *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->bcfg = tlskit_config_new()) == NULL) {
        free(f);
        cli_msg("out of memory");
        return NULL;
    }
    f->s = s;
    if (tlskit_config_set_timeout(f->bcfg, TLSKIT_TIMEOUT_CONNECT, o->backend_timeout_ms) < 0 ||
        tlskit_config_set_timeout(f->bcfg, TLSKIT_TIMEOUT_IDLE, o->idle_ms) < 0 ||
        tlskit_config_set_timeout(f->bcfg, TLSKIT_TIMEOUT_WRITE, o->write_ms) < 0) {
        cli_msg("%s", tlskit_config_error(f->bcfg));
        forward_free(f);
        return NULL;
    }
    *h = (struct tlskit_engine_handlers){
        .on_open = fwd_open, .on_data = fwd_data, .on_drain = fwd_drain, .on_eof = fwd_eof,
        .on_close = fwd_close, .arg = f, .on_event = h->on_event};
    return f;
}

void forward_set_engine(struct forward *f, tlskit_engine *e)
{
    f->e = e;
}

void forward_free(struct forward *f)
{
    if (f == NULL)
        return;
    tlskit_config_free(f->bcfg);
    free(f);
}
