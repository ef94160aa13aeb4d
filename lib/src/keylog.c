/* SPDX-License-Identifier: MIT */
/* The key log: TLS secrets in the NSS key log format (what Wireshark and tshark read), for
 * debugging captured traffic. Only when asked, by a call named "insecure": anyone who
 * reads the file can decrypt every connection it covers. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* OpenSSL hands over one line without its newline, "LABEL <client_random> <secret>".
 * One write() of line and newline on an O_APPEND descriptor keeps lines whole when
 * several threads (or processes) log to one file. A failed write loses a line, never
 * the connection. */
static void keylog_line(const SSL *ssl, const char *line)
{
    const tlskit_config *cfg = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    char buf[512];
    size_t len = strlen(line);
    if (!cfg || cfg->keylog_fd < 0 || len + 1 > sizeof(buf))
        return;
    memcpy(buf, line, len);
    buf[len] = '\n';
    ssize_t n;
    do
        n = write(cfg->keylog_fd, buf, len + 1);
    while (n < 0 && errno == EINTR);
}

int tlskit_config_insecure_keylog_file(tlskit_config *cfg, const char *path)
{
    if (tlskit__config_settable(cfg) != 0)
        return -1;
    if (!path || !*path) {
        tlskit__err_set(&cfg->err, TLSKIT_E_INVALID, "key log file: no path given");
        return -1;
    }
    /* 0600: the file holds secrets. An existing file is appended to, as NSS does. */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        tlskit__err_set_errno(&cfg->err, TLSKIT_E_FILE, errno, "key log file %s", path);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        tlskit__err_set(&cfg->err, TLSKIT_E_FILE, "key log file %s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (cfg->keylog_fd >= 0)
        close(cfg->keylog_fd);
    cfg->keylog_fd = fd;
    SSL_CTX_set_app_data(cfg->ctx, cfg);
    SSL_CTX_set_keylog_callback(cfg->ctx, keylog_line);
    return 0;
}
