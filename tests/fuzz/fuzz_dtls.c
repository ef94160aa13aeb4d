/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the datagram path of a DTLS server (lib/src/dtls.c), what engine_udp.c
 * does with each datagram: the ClientHello sniff (tlskit__dtls_client_hello), the
 * stateless listener (DTLSv1_listen through the library's datagram BIO and cookie
 * callbacks) and, when a cookie verifies, the association fed the datagrams that follow.
 * Links the static library for the internal seam.
 *
 * Input: datagrams, each [length LE16][bytes] (the last one takes what is left). A
 * ClientHello answered with a HelloVerifyRequest is sent again at once with the cookie
 * spliced in (as a client would), so the association path is reached whatever the time.
 * Invariants: the sniff only accepts an epoch-0 handshake record whose first message is
 * a ClientHello; the listener answers a datagram with at most one datagram, never larger
 * than what it received (no amplification), and keeps nothing for anything but a
 * verified cookie; OpenSSL's error queue is empty after every call; no leaks.
 */
#include "fuzz_common.h"
#include "internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static tlskit_config *cfg;
static int fd = -1;
static struct sockaddr_in self;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_deterministic_rand();
    const char *cert, *key;
    size_t cl, kl;
    fz_keypair(&cert, &cl, &key, &kl);
    cfg = tlskit_config_new_dtls();
    FZ_CHECK(cfg && tlskit_config_set_keypair_mem(cfg, cert, cl, key, kl) == 0, "config");
    /* The listener answers to the peer address it is given: our own socket, so every
     * answer can be read back and measured. */
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    self.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &self.sin_addr);
    FZ_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&self, sizeof(self)) == 0, "bind");
    socklen_t sl = sizeof(self);
    getsockname(fd, (struct sockaddr *)&self, &sl);
    return 0;
}

static unsigned char last[65536]; /* the last answer read */
static size_t last_len;

/* Answers waiting on our socket: their number; *largest gets the longest. */
static int drain(size_t *largest)
{
    int n = 0;
    ssize_t r;
    *largest = 0;
    while ((r = recv(fd, last, sizeof(last), MSG_DONTWAIT)) >= 0) {
        n++;
        last_len = (size_t)r;
        if ((size_t)r > *largest)
            *largest = (size_t)r;
    }
    return n;
}

static size_t get_n(const unsigned char *p, int n)
{
    size_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_n(unsigned char *p, int n, size_t v)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

/* ClientHello d again, with the cookie of the HelloVerifyRequest in `last` and message
 * sequence 1, into out: its length, 0 when d or the answer is not laid out so. */
static size_t splice_cookie(const unsigned char *d, size_t len, unsigned char *out, size_t cap)
{
    size_t sid_at = 13 + 12 + 2 + 32;
    if (len < sid_at + 1 || last_len < 28 || last[13] != 3)
        return 0;
    size_t ck_at = sid_at + 1 + d[sid_at];
    size_t clen = last[27];
    if (len < ck_at + 1 || len < ck_at + 1 + d[ck_at] || last_len < 28 + clen)
        return 0;
    size_t old = d[ck_at], n = len - old + clen;
    if (n > cap)
        return 0;
    memcpy(out, d, ck_at);
    out[ck_at] = (unsigned char)clen;
    memcpy(out + ck_at + 1, last + 28, clen);
    memcpy(out + ck_at + 1 + clen, d + ck_at + 1 + old, len - ck_at - 1 - old);
    put_n(out + 11, 2, get_n(d + 11, 2) - old + clen);
    put_n(out + 14, 3, get_n(d + 14, 3) - old + clen);
    put_n(out + 22, 3, get_n(d + 22, 3) - old + clen);
    put_n(out + 17, 2, 1);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cfg)
        LLVMFuzzerInitialize(NULL, NULL);
    struct fz_input in = {data, size};
    tlskit_conn *lc = tlskit__dtls_listener_new(cfg);
    FZ_CHECK(lc != NULL, "listener");
    int assoc = 0;
    size_t largest;
    drain(&largest);
    while (in.n > 0) {
        size_t len = fz_take_u16(&in);
        if (len > in.n || len == 0)
            len = in.n;
        const unsigned char *d = in.p;
        in.p += len;
        in.n -= len;
        const unsigned char *random = NULL;
        int ch = tlskit__dtls_client_hello(d, len, &random);
        FZ_CHECK(!ch || (len >= 13 + 12 + 34 && d[0] == 22 && d[3] == 0 && d[4] == 0 &&
                         d[13] == 1 && random == d + 13 + 12 + 2),
                 "sniff accepted a datagram that is not an epoch-0 ClientHello");
        if (assoc) { /* the association reads what follows */
            tlskit__conn_dgram_feed(lc, d, len);
            int r = tlskit_conn_handshake(lc);
            tlskit__conn_dgram_feed(lc, NULL, 0);
            fz_check_err_queue("handshake");
            if (r == -1)
                FZ_CHECK(fz_known_error(tlskit_conn_error_code(lc)), "unknown error class");
            drain(&largest);
            continue;
        }
        enum tlskit__listen_result r = tlskit__dtls_listen(lc, fd, (struct sockaddr *)&self,
                                                           sizeof(self), d, len);
        fz_check_err_queue("listen");
        int answers = drain(&largest);
        FZ_CHECK(answers <= 1, "%d answers to one datagram", answers);
        FZ_CHECK(largest <= len, "answer of %zu bytes to a datagram of %zu", largest, len);
        FZ_CHECK(r == TK_LISTEN_DROP ? answers == 0 : 1, "a dropped datagram was answered");
        static unsigned char again[70000];
        size_t alen;
        if (r == TK_LISTEN_HVR && (alen = splice_cookie(d, len, again, sizeof(again))) > 0) {
            r = tlskit__dtls_listen(lc, fd, (struct sockaddr *)&self, sizeof(self), again,
                                    alen);
            fz_check_err_queue("listen with cookie");
            answers = drain(&largest);
            FZ_CHECK(answers <= 1 && largest <= alen, "answer larger than the datagram");
        }
        if (r == TK_LISTEN_OK) {
            tlskit_conn_set_nonblocking(lc, 1);
            assoc = 1;
        }
    }
    tlskit_conn_free(lc);
    return 0;
}
