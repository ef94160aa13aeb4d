/* SPDX-License-Identifier: MIT */
/*
 * Client sessions kept for later: PEM in memory or in a file (the format of
 * `openssl s_client -sess_out`, PEM_write_bio_SSL_SESSION), and waiting for a TLS 1.3
 * ticket, which arrives after the handshake.
 *
 * A session file holds the secret that resumes the session: it is written mode 0600,
 * and read only when it is a regular file of ours that group and others cannot read.
 */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TK_SESSION_FILE_MAX (256 * 1024) /* a session holds the peer certificate */

static SSL_SESSION *resumable_session(tlskit_conn *c, const char *op)
{
    SSL_SESSION *s = c->ssl && c->hs_done ? SSL_get1_session(c->ssl) : NULL;
    if (s && SSL_SESSION_is_resumable(s))
        return s;
    SSL_SESSION_free(s);
    tlskit__err_set(&c->err, TLSKIT_E_INVALID,
                    "%s: no resumable session from %s (TLS 1.3: the server's ticket comes "
                    "after the handshake: see tlskit_conn_session_wait())", op,
                    c->peer[0] ? c->peer : "the server");
    return NULL;
}

/* The session as PEM in a new heap buffer (not NUL-terminated). */
static int session_pem(tlskit_conn *c, const char *op, char **out, size_t *outlen)
{
    SSL_SESSION *s = resumable_session(c, op);
    if (!s)
        return -1;
    int rc = -1;
    ERR_clear_error();
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = 0;
    if (!b || PEM_write_bio_SSL_SESSION(b, s) != 1 || (len = BIO_get_mem_data(b, &data)) <= 0) {
        tlskit__err_set_ssl(&c->err, TLSKIT_E_NOMEM, "out of memory", "%s", op);
        goto done;
    }
    *out = malloc((size_t)len);
    if (!*out) {
        tlskit__err_set(&c->err, TLSKIT_E_NOMEM, "%s: out of memory", op);
        goto done;
    }
    memcpy(*out, data, (size_t)len);
    *outlen = (size_t)len;
    rc = 0;
done:
    if (data && len > 0)
        OPENSSL_cleanse(data, (size_t)len);
    BIO_free(b);
    SSL_SESSION_free(s);
    return rc;
}

int tlskit_conn_session_save_mem(tlskit_conn *c, char **pem, size_t *len)
{
    tlskit__err_clear(&c->err);
    if (!pem || !len) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID, "save session: no place for the PEM");
        return -1;
    }
    return session_pem(c, "save session", pem, len);
}

int tlskit_conn_session_save_file(tlskit_conn *c, const char *path)
{
    tlskit__err_clear(&c->err);
    if (!path) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID, "save session: file name is required");
        return -1;
    }
    char *pem = NULL;
    size_t len = 0;
    if (session_pem(c, "save session", &pem, &len) != 0)
        return -1;
    int rc = -1;
    struct stat st;
    /* O_NOFOLLOW: never write a secret through a link someone else placed. */
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK,
                  0600);
    if (fd < 0) {
        tlskit__err_set_errno(&c->err, TLSKIT_E_FILE, errno, "session file %s", path);
        goto done;
    }
    if (fstat(fd, &st) != 0) {
        tlskit__err_set_errno(&c->err, TLSKIT_E_FILE, errno, "session file %s", path);
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        tlskit__err_set(&c->err, TLSKIT_E_FILE, "session file %s: not a regular file", path);
        goto done;
    }
    if (st.st_uid != geteuid()) {
        tlskit__err_set(&c->err, TLSKIT_E_FILE, "session file %s: belongs to another user "
                        "(uid %lu)", path, (unsigned long)st.st_uid);
        goto done;
    }
    if (fchmod(fd, 0600) != 0 || ftruncate(fd, 0) != 0) {
        tlskit__err_set_errno(&c->err, TLSKIT_E_FILE, errno, "session file %s", path);
        goto done;
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, pem + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            tlskit__err_set_errno(&c->err, TLSKIT_E_FILE, n < 0 ? errno : EIO,
                                  "session file %s", path);
            goto done;
        }
        off += (size_t)n;
    }
    if (close(fd) != 0) {
        fd = -1;
        tlskit__err_set_errno(&c->err, TLSKIT_E_FILE, errno, "session file %s", path);
        goto done;
    }
    fd = -1;
    rc = 0;
done:
    if (fd >= 0)
        close(fd);
    OPENSSL_cleanse(pem, len);
    free(pem);
    return rc;
}

static int load_pem(tlskit_conn *c, const char *label, const void *pem, size_t len)
{
    if (len > TK_SESSION_FILE_MAX) {
        tlskit__err_set(&c->err, TLSKIT_E_FILE, "session %s: too large (%zu bytes)", label, len);
        return -1;
    }
    ERR_clear_error();
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    SSL_SESSION *s = b ? PEM_read_bio_SSL_SESSION(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!s) {
        int oom = ERR_GET_REASON(ERR_peek_last_error()) == ERR_R_MALLOC_FAILURE;
        tlskit__err_set_ssl(&c->err, oom ? TLSKIT_E_NOMEM : TLSKIT_E_FILE,
                            "no SSL SESSION PARAMETERS block", "session %s: %s", label,
                            oom ? "out of memory" : "not a PEM session");
        return -1;
    }
    int rc = tlskit_conn_set_session(c, (tlskit_session *)(void *)s);
    SSL_SESSION_free(s);
    return rc;
}

int tlskit_conn_session_load_mem(tlskit_conn *c, const void *pem, size_t len)
{
    tlskit__err_clear(&c->err);
    if (!pem) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID, "load session: PEM data is required");
        return -1;
    }
    return load_pem(c, "(memory)", pem, len);
}

int tlskit_conn_session_load_file(tlskit_conn *c, const char *path)
{
    tlskit__err_clear(&c->err);
    if (!path) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID, "load session: file name is required");
        return -1;
    }
    unsigned char *buf = malloc(TK_SESSION_FILE_MAX + 1);
    size_t len = 0;
    if (!buf) {
        tlskit__err_set(&c->err, TLSKIT_E_NOMEM, "session file %s: out of memory", path);
        return -1;
    }
    int rc = tlskit__read_private_file(&c->err, "session file", path, 1, buf,
                                       TK_SESSION_FILE_MAX + 1, &len);
    if (rc == 0)
        rc = load_pem(c, path, buf, len);
    OPENSSL_cleanse(buf, len);
    free(buf);
    return rc;
}

int tlskit_conn_session_wait(tlskit_conn *c, int timeout_ms)
{
    tlskit__err_clear(&c->err);
    if (c->is_server || !c->hs_done || c->dead || c->eng) {
        tlskit__err_set(&c->err, TLSKIT_E_INVALID,
                        "wait for a session: needs a client connection after its handshake");
        return -1;
    }
    int64_t deadline = tlskit__deadline_in(timeout_ms > 0 ? timeout_ms : 1);
    for (;;) {
        SSL_SESSION *s = SSL_get0_session(c->ssl);
        if (s && SSL_SESSION_is_resumable(s))
            return 0;
        if (c->got_close_notify)
            break;
        unsigned char b;
        ERR_clear_error();
        /* SSL_peek processes the ticket and leaves application data to be read. */
        int r = SSL_peek(c->ssl, &b, 1);
        if (r > 0)
            break; /* data came and no ticket before it: none is coming */
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN) {
            c->got_close_notify = 1;
            ERR_clear_error();
            break;
        }
        if (e != SSL_ERROR_WANT_READ) {
            tlskit__conn_fail(c, OP_READ, e);
            return -1;
        }
        s = SSL_get0_session(c->ssl);
        if (s && SSL_SESSION_is_resumable(s))
            return 0;
        int w = tlskit__wait_fd(c->fd, POLLIN, deadline);
        if (w < 0) {
            tlskit__err_set_errno(&c->err, TLSKIT_E_IO, errno, "wait for a session from %s",
                                  c->peer);
            return -1;
        }
        if (w == 0) {
            tlskit__err_set(&c->err, TLSKIT_E_TIMEOUT, "wait for a session from %s: no "
                            "ticket within %d ms", c->peer, timeout_ms);
            return -1;
        }
    }
    tlskit__err_set(&c->err, TLSKIT_E_CLOSED, "wait for a session from %s: the server sent "
                    "no session ticket", c->peer);
    return -1;
}
