/* SPDX-License-Identifier: MIT */
/* --forward: each client, once its handshake is done, is paired with a new plain
 * connection to the backend, on the same engine worker, with the public API only:
 * bytes both ways (a side whose peer does not keep up stops reading on the other),
 * the half-close carried across, an error on one side passed to the other as a reset,
 * and, with --send-proxy, a PROXY header first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "server.h"

/* Queued toward one side beyond this, the other side stops being read: about this much
 * plus one read (16 KiB) is held per direction, far under the engine's write limit (at a
 * quarter of which the engine would pause the writer's own reading). */
#define FWD_MARK (256u * 1024)

struct forward {
    struct server *s;
    tlskit_engine *e;
    tlskit_config *bcfg; /* the backend connections' deadlines and socket options */
};

/* A client and its backend; userdata of both. Freed by the second on_close. */
struct pair {
    tlskit_conn *client, *backend;
    int backend_open;                /* its on_open came */
    char backend_addr[300];
    unsigned long long b_in, b_out;  /* the backend's bytes, kept when it ends first */
    char failed[512];                /* the backend could not be reached: why */
};

static tlskit_conn *other(struct pair *p, tlskit_conn *c)
{
    return c == p->client ? p->backend : p->client;
}

static void backend_bytes(struct pair *p)
{
    snprintf(p->backend_addr, sizeof(p->backend_addr), "%s",
             tlskit_conn_peer_addr(p->backend));
    p->b_in = tlskit_conn_bytes_in(p->backend);
    p->b_out = tlskit_conn_bytes_out(p->backend);
}

static void client_open(struct forward *f, tlskit_conn *c)
{
    const struct options *o = &f->s->opt;
    struct pair *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        cli_msg("out of memory: closing %s", tlskit_conn_peer_addr(c));
        tlskit_conn_close(c);
        return;
    }
    p->client = c;
    p->backend = tlskit_engine_connect(f->e, c, f->bcfg, o->fwd_host, o->fwd_port,
                                       TLSKIT_CONNECT_PLAIN);
    if (p->backend == NULL) {
        cli_msg("backend %s: %s", o->forward, tlskit_conn_error(c));
        free(p);
        tlskit_conn_close(c);
        return;
    }
    tlskit_conn_set_userdata(c, p);
    tlskit_conn_set_userdata(p->backend, p);
    if (o->send_proxy) {
        unsigned char hdr[TLSKIT_PROXY_HEADER_MAX];
        ssize_t n = tlskit_conn_proxy_header(c, o->send_proxy, hdr, sizeof(hdr));
        if (n < 0) {
            cli_msg("--send-proxy: %s", tlskit_conn_error(c));
            tlskit_conn_abort(p->backend, "no PROXY header");
            return;
        }
        tlskit_conn_write(p->backend, hdr, (size_t)n); /* sent first, once connected */
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
        p->backend_open = 1;
    }
}

static void fwd_data(tlskit_conn *c, const void *data, size_t len, void *arg)
{
    (void)arg;
    struct pair *p = tlskit_conn_userdata(c);
    tlskit_conn *to = p != NULL ? other(p, c) : NULL;
    if (to == NULL || tlskit_conn_write(to, data, len) < 0)
        return; /* the other side is ending: its on_close ends this one */
    if (tlskit_conn_pending(to) > FWD_MARK)
        tlskit_conn_read_stop(c);
}

static void fwd_drain(tlskit_conn *c, void *arg)
{
    (void)arg;
    struct pair *p = tlskit_conn_userdata(c);
    tlskit_conn *from = p != NULL ? other(p, c) : NULL;
    if (from != NULL)
        tlskit_conn_read_start(from);
}

static void fwd_eof(tlskit_conn *c, void *arg)
{
    (void)arg;
    struct pair *p = tlskit_conn_userdata(c);
    tlskit_conn *to = p != NULL ? other(p, c) : NULL;
    if (to != NULL)
        tlskit_conn_shutdown(to);
    else
        tlskit_conn_close(c);
}

/* "connect to 127.0.0.1:8080: Connection refused" -> "127.0.0.1:8080: Connection refused" */
static const char *without_connect_to(const char *reason)
{
    static const char prefix[] = "connect to ";
    return strncmp(reason, prefix, sizeof(prefix) - 1) == 0 ? reason + sizeof(prefix) - 1
                                                            : reason;
}

static void backend_close(struct pair *p, int code, const char *reason)
{
    backend_bytes(p);
    p->backend = NULL;
    if (p->client == NULL) {
        free(p);
        return;
    }
    if (!p->backend_open) { /* refused, unreachable, timed out: the client gets close_notify */
        snprintf(p->failed, sizeof(p->failed), "backend %s", without_connect_to(reason));
        cli_msg("%s", p->failed);
        tlskit_conn_close(p->client);
    } else if (code != TLSKIT_E_NONE) {
        tlskit_conn_abort(p->client, reason);
    } else {
        tlskit_conn_close(p->client);
    }
}

static void fwd_close(tlskit_conn *c, int code, const char *reason, void *arg)
{
    struct forward *f = arg;
    struct pair *p = tlskit_conn_userdata(c);
    if (p != NULL && c == p->backend) {
        backend_close(p, code, reason);
        return;
    }
    if (p == NULL) { /* the handshake failed: there never was a backend */
        server_log_end(f->s, c, code, reason);
    } else {
        if (p->backend != NULL) { /* its on_close, later, frees the pair */
            backend_bytes(p);
            if (code == TLSKIT_E_NONE)
                tlskit_conn_close(p->backend);
            else
                tlskit_conn_abort(p->backend, reason);
        }
        struct backend_log b = {.addr = p->backend_addr, .in = p->b_in, .out = p->b_out};
        if (p->failed[0] != '\0')
            server_log_end_fwd(f->s, c, TLSKIT_E_CONNECT, p->failed, &b);
        else
            server_log_end_fwd(f->s, c, code, reason, &b);
        p->client = NULL;
        if (p->backend == NULL)
            free(p);
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
