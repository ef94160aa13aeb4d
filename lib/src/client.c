/* SPDX-License-Identifier: MIT */
/* The connect path: server name (SNI), host-name verification, TCP connect. */
#include "conn.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The server asked for a certificate and the config has none: remember it, so that the
 * server's rejection can be explained (conn.c). Sends no certificate. */
int tlskit__client_cert_cb(SSL *ssl, X509 **x509, EVP_PKEY **pkey)
{
    (void)x509;
    (void)pkey;
    tlskit_conn *c = SSL_get_app_data(ssl);
    if (c)
        c->cert_requested = 1;
    return 0;
}

/* An engine's outbound client is set up (state READY) as it starts connecting; until its
 * handshake starts, the name may still change: the settings are made again. */
static int outbound_before_handshake(const tlskit_conn *c)
{
    return c->eng && c->state == TK_READY && !c->is_server && c->ssl && !c->hs_deadline &&
           SSL_in_before(c->ssl);
}

int tlskit_conn_set_servername(tlskit_conn *c, const char *name)
{
    tlskit__err_clear(&c->err);
    int again = outbound_before_handshake(c);
    if (c->state != TK_NEW && !again) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID, "server name must be set before connecting");
        return -1;
    }
    char *copy = NULL;
    if (name && !(copy = strdup(name))) {
        tlskit__err_set(&c->err, TLSKIT_E_NOMEM, "out of memory");
        return -1;
    }
    free(c->servername);
    c->servername = copy;
    return again ? tlskit__client_setup(c) : 0;
}

static int is_ip_literal(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* Client-role settings: SNI (never for an IP literal, RFC 6066 section 3) and the name
 * check against DNS or IP SANs. */
int tlskit__client_setup(tlskit_conn *c)
{
    SSL *ssl = c->ssl;
    const char *name = c->servername;
    SSL_set_connect_state(ssl);
    /* The session id context separates a server's sessions by application; a client's
     * sessions carry none, as openssl s_client's do, so saved sessions go both ways
     * (OpenSSL refuses to resume a session whose context differs from the SSL's). */
    if (SSL_set_session_id_context(ssl, NULL, 0) != 1) {
        tlskit__err_set_ssl(&c->err, TLSKIT_E_NOMEM, "out of memory", "client setup");
        return -1;
    }
    /* With pins the certificate is always checked: verify.c then ignores the chain's
     * verdict when verification is off, and the pins decide alone. */
    if (!c->cfg->verify_cert && !c->cfg->npins) {
        SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_set_verify(ssl, SSL_VERIFY_PEER, tlskit__verify_cb);
    }
    if (tlskit__ocsp_client_setup(c) != 0)
        return -1;
    /* Made again when an outbound client's name changes: clear what the last name set. */
    X509_VERIFY_PARAM_set1_ip(SSL_get0_param(ssl), NULL, 0);
    SSL_set1_host(ssl, NULL);
    SSL_set_tlsext_host_name(ssl, NULL);
    if (name && !is_ip_literal(name) && SSL_set_tlsext_host_name(ssl, name) != 1) {
        tlskit__err_set_ssl(&c->err, TLSKIT_E_INVALID, NULL, "server name \"%s\"", name);
        return -1;
    }
    if (c->cfg->verify_cert && c->cfg->verify_name) {
        if (!name || !*name) {
            tlskit__err_set(&c->err, TLSKIT_E_INVALID,
                       "no server name to verify the certificate against: set one, or "
                       "call tlskit_config_insecure_noverifyname()");
            return -1;
        }
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        int ok;
        if (is_ip_literal(name)) {
            ok = X509_VERIFY_PARAM_set1_ip_asc(param, name);
        } else {
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = SSL_set1_host(ssl, name);
        }
        if (ok != 1) {
            tlskit__err_set_ssl(&c->err, TLSKIT_E_INVALID, NULL, "server name \"%s\"", name);
            return -1;
        }
    }
    return 0;
}

int tlskit__connect_args(tlskit_conn *c, const char *host, const char *port)
{
    tlskit__err_clear(&c->err);
    if (!host || !*host) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID, "connect: a host is required");
        return -1;
    }
    if (tlskit__check_port(&c->err, "connect", port) != 0)
        return -1;
    if (c->state != TK_NEW) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID, "connection is already in use");
        return -1;
    }
    return 0;
}

int tlskit_conn_connect(tlskit_conn *c, const char *host, const char *port)
{
    if (tlskit__connect_args(c, host, port) != 0)
        return -1;
    if (c->cfg->dtls) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID,
                        "connect: a DTLS config connects with tlskit_conn_connect_udp()");
        return -1;
    }
    if (!c->servername && !(c->servername = strdup(host))) {
        tlskit__err_set(&c->err, TLSKIT_E_NOMEM, "out of memory");
        return -1;
    }
    memset(&c->times, 0, sizeof(c->times));
    c->times.begin = tlskit__now_us();
    int fd = tlskit__connect(c->cfg, &c->err, host, port, c->peer, sizeof(c->peer),
                             &c->times.resolved);
    c->times.connected = tlskit__now_us();
    if (fd < 0) {
        c->times.end = c->times.connected;
        return -1;
    }
    if (tlskit__conn_setup(c, fd, 1, 0) != 0) {
        close(fd);
        c->fd = -1;
        c->own_fd = 0;
        SSL_free(c->ssl);
        c->ssl = NULL;
        return -1;
    }
    return 0;
}

tlskit_session *tlskit_conn_session_copy(tlskit_conn *c)
{
    if (!c || !c->ssl)
        return NULL;
    return (tlskit_session *)(void *)SSL_get1_session(c->ssl);
}

int tlskit_session_resumable(const tlskit_session *sess)
{
    return sess && SSL_SESSION_is_resumable((const SSL_SESSION *)(const void *)sess);
}

void tlskit_session_free(tlskit_session *sess)
{
    SSL_SESSION_free((SSL_SESSION *)(void *)sess);
}

int tlskit_conn_set_session(tlskit_conn *c, tlskit_session *sess)
{
    tlskit__err_clear(&c->err);
    if (c->state != TK_READY || c->is_server || c->hs_done || !c->ssl) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID,
                   "a session can only be set on a client connection before its handshake");
        return -1;
    }
    ERR_clear_error();
    if (SSL_set_session(c->ssl, (SSL_SESSION *)(void *)sess) != 1) {
        tlskit__err_set_ssl(&c->err, TLSKIT_E_INVALID, NULL, "set session");
        return -1;
    }
    return 0;
}
