/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the client's check of a stapled OCSP response (lib/src/ocsp.c,
 * staple_status()): a tlskit server staples the input's bytes as they are (through the
 * SSL_CTX escape hatch: tlskit's own loader would refuse most of them), and a tlskit
 * client that asks for the staple handshakes with it over a socketpair.
 *
 * Input: [flags] then the staple (empty: none stapled). Flags: bit 0 TLS 1.2 (else 1.3),
 * bit 1 TLSKIT_OCSP_REQUIRE (else _REQUEST), bit 2 the client verifies (the fuzz
 * certificate is its only CA, "localhost" checked; else insecure).
 * Invariants: the status is one of TLSKIT_OCSP_STATUS_*, with printable text; a handshake
 * that completed never has a `revoked` status, nor, when required, another than `good`;
 * one that failed did so with TLSKIT_E_VERIFY naming the OCSP staple; OpenSSL's error
 * queue is left empty; no descriptor or memory leaks.
 */
#include "fuzz_common.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

static tlskit_config *server_cfg[2], *client_cfg[8];
static const uint8_t *staple;
static size_t staple_len;

/* The server's status callback: staple the input as it is. */
static int staple_input(SSL *ssl, void *arg)
{
    (void)arg;
    if (staple_len == 0)
        return SSL_TLSEXT_ERR_NOACK;
    unsigned char *copy = OPENSSL_malloc(staple_len);
    FZ_CHECK(copy != NULL, "out of memory");
    memcpy(copy, staple, staple_len);
    FZ_CHECK(SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)staple_len) == 1, "staple");
    return SSL_TLSEXT_ERR_OK;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_deterministic_rand(); /* the seeds' responses are about fz_keypair()'s certificate */
    for (unsigned f = 0; f < 8; f++) {
        unsigned tls = (f & 1) ? FZ_TLS12 : FZ_TLS13;
        if (f < 2) {
            server_cfg[f] = fz_server_config(tls);
            SSL_CTX *ctx = tlskit_config_ssl_ctx(server_cfg[f]);
            SSL_CTX_set_tlsext_status_cb(ctx, staple_input);
        }
        client_cfg[f] = fz_client_config(tls | ((f & 4) ? 0 : FZ_CLI_INSECURE));
        int mode = (f & 2) ? TLSKIT_OCSP_REQUIRE : TLSKIT_OCSP_REQUEST;
        FZ_CHECK(tlskit_config_set_ocsp_request(client_cfg[f], mode) == 0, "%s",
                 tlskit_config_error(client_cfg[f]));
    }
    return 0;
}

/* Both ends non-blocking on one socketpair, stepped in turn: 1 when the client's
 * handshake completed, -1 when it failed. */
static int handshake_pair(tlskit_conn *cli, tlskit_conn *srv)
{
    int cs = 0, ss = 0;
    for (int i = 0; i < 50 && cs == 0; i++) {
        int r = tlskit_conn_handshake(cli);
        cs = r == 0 ? 1 : r == -1 ? -1 : 0;
        if (ss == 0) {
            r = tlskit_conn_handshake(srv);
            ss = r == 0 ? 1 : r == -1 ? -1 : 0;
        }
    }
    fz_check_err_queue("tlskit_conn_handshake");
    return cs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_input in = {data, size};
    unsigned flags = fz_take_u8(&in) & 7;
    staple = in.p;
    staple_len = in.n > INT_MAX ? INT_MAX : in.n;
    fz_fd_mark();
    int sv[2];
    FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0,
             "socketpair");
    tlskit_conn *cli = tlskit_conn_new(client_cfg[flags]);
    tlskit_conn *srv = tlskit_conn_new(server_cfg[flags & 1]);
    FZ_CHECK(cli && srv, "out of memory");
    FZ_CHECK(tlskit_conn_wrap_client(cli, sv[0], (flags & 4) ? "localhost" : NULL) == 0,
             "wrap: %s", tlskit_conn_error(cli));
    FZ_CHECK(tlskit_conn_wrap_server(srv, sv[1]) == 0, "wrap: %s", tlskit_conn_error(srv));
    int done = handshake_pair(cli, srv);
    int st = tlskit_conn_ocsp_status(cli);
    const char *text = tlskit_conn_ocsp_text(cli);
    FZ_CHECK(st >= TLSKIT_OCSP_STATUS_NONE && st <= TLSKIT_OCSP_STATUS_INVALID, "status %d", st);
    FZ_CHECK(text != NULL && *text, "no status text");
    for (const char *p = text; *p; p++)
        FZ_CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f,
                 "raw byte 0x%02x in \"%s\"", (unsigned char)*p, text);
    if (getenv("TLSKIT_FUZZ_DEBUG"))
        fprintf(stderr, "fuzz: flags %u: %s, status %d: %s\n", flags,
                done == 1 ? "completed" : tlskit_conn_error(cli), st, text);
    if (done == 1) {
        FZ_CHECK(st != TLSKIT_OCSP_STATUS_REVOKED, "a revoked staple was accepted");
        FZ_CHECK(!(flags & 2) || st == TLSKIT_OCSP_STATUS_GOOD,
                 "required, accepted with status %d: %s", st, text);
    } else {
        int code = tlskit_conn_error_code(cli);
        const char *err = tlskit_conn_error(cli);
        FZ_CHECK(code == TLSKIT_E_VERIFY && strstr(err, "OCSP staple"),
                 "handshake failed with %s: %s", tlskit_error_name(code), err);
        FZ_CHECK(st != TLSKIT_OCSP_STATUS_GOOD, "refused with a good staple: %s", err);
    }
    tlskit_conn_free(cli);
    tlskit_conn_free(srv);
    close(sv[0]);
    close(sv[1]);
    fz_fd_check("OCSP client handshake");
    return 0;
}
