/* SPDX-License-Identifier: MIT */
/*
 * cli.c: message output, strict number parsing and small I/O helpers for the apps.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tlskit/tlskit.h>

/* The prefix of every message; set once by cli_init(). */
static const char *cli_prog = "tlskit";

void cli_init(const char *prog)
{
    cli_prog = prog;
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
            int nfd = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
            if (nfd >= 0 && nfd != fd) /* lowest free number: should be fd itself */
                close(nfd);
        }
    }
}

/* Format "PROG: <fmt>\n" into buf (truncating with "..." if needed) and write it at once. */
static void vmsg(const char *fmt, va_list ap)
{
    char buf[4096];
    size_t cap = sizeof(buf) - 1; /* room for the newline */
    int n = snprintf(buf, cap, "%s: ", cli_prog);
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len < cap) {
        int m = vsnprintf(buf + len, cap - len, fmt, ap);
        if (m > 0)
            len += (size_t)m;
    }
    if (len >= cap) {
        len = cap - 1;
        memcpy(buf + len - 3, "...", 3);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch < 0x20 || ch == 0x7f)
            buf[i] = '?';
    }
    buf[len++] = '\n';
    (void)cli_write_all(STDERR_FILENO, buf, len, 0);
}

void cli_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
}

int cli_usage_error(const char *synopsis, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    fprintf(stderr, "Usage: %s %s\nTry '%s --help' for more information.\n", cli_prog,
            synopsis, cli_prog);
    return CLI_EXIT_USAGE;
}

void cli_print_version(void)
{
    printf("%s %s\n%s\n", cli_prog, TLSKIT_VERSION_STRING, tlskit_version());
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int cli_parse_seconds(const char *text, int64_t *ms)
{
    const char *p = text;
    int64_t whole = 0;

    if (!is_digit(*p))
        return -1;
    for (; is_digit(*p); p++) {
        whole = whole * 10 + (*p - '0');
        if (whole > CLI_SECONDS_MAX)
            return -1;
    }
    int64_t frac_ms = 0; /* the first three decimals */
    int round_up = 0;    /* anything non-zero after them */
    if (*p == '.') {
        p++;
        if (!is_digit(*p))
            return -1;
        for (int scale = 100; is_digit(*p); p++) {
            if (scale > 0) {
                frac_ms += (*p - '0') * scale;
                scale /= 10;
            } else if (*p != '0') {
                round_up = 1;
            }
        }
    }
    if (*p != '\0')
        return -1;
    int64_t total = whole * 1000 + frac_ms + round_up;
    if (total > INT32_MAX)
        return -1;
    *ms = total;
    return 0;
}

int cli_parse_ulong(const char *text, unsigned long min, unsigned long max,
                    unsigned long *out)
{
    unsigned long v = 0;
    const char *p = text;

    if (!is_digit(*p))
        return -1;
    for (; is_digit(*p); p++) {
        unsigned long d = (unsigned long)(*p - '0');
        if (v > (ULONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (*p != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* write(2) with SIGPIPE blocked for this thread: a write to a closed pipe then leaves the
 * signal pending instead of killing us, and we take it back with sigtimedwait(). The
 * process-wide disposition stays the default, so the library is still held to never
 * raising SIGPIPE itself. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    (void)sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE) == 1;

    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t n = write(fd, buf, len);
    int saved = errno;
    if (n < 0 && saved == EPIPE && !was_pending) {
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) == -1 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return n;
}

int cli_write_all(int fd, const void *buf, size_t len, int nosigpipe)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = nosigpipe ? write_nosigpipe(fd, p, len) : write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                (void)poll(&pfd, 1, -1);
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int64_t cli_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t cli_now_ms(void)
{
    return cli_now_ns() / 1000000;
}

void cli_bad_option_name(char *out, size_t len, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    if (strncmp(arg, "--", 2) == 0)
        snprintf(out, len, "%.*s", (int)strcspn(arg, "="), arg);
    else
        snprintf(out, len, "-%c", optopt > 0 && optopt < 256 ? optopt : '?');
}

int cli_common_option(int c, char **argv, const char *synopsis, void (*usage)(void),
                      int *verbosity)
{
    char name[64];

    switch (c) {
    case 'v': /* -v verbose, -vv (a second -v) also the handshake trace */
        *verbosity = *verbosity >= 2 ? 3 : 2;
        return -1;
    case 'q':
        *verbosity = 0;
        return -1;
    case 'h':
        usage();
        return CLI_EXIT_OK;
    case 'V':
        cli_print_version();
        return CLI_EXIT_OK;
    case ':':
        cli_bad_option_name(name, sizeof(name), argv);
        return cli_usage_error(synopsis, "option '%s' needs a value", name);
    default:
        cli_bad_option_name(name, sizeof(name), argv);
        if (optopt != 0 && strncmp(name, "--", 2) == 0) /* "--help=x" */
            return cli_usage_error(synopsis, "option '%s' takes no value", name);
        return cli_usage_error(synopsis, "unknown option '%s'", name);
    }
}

int cli_parse_options(int argc, char **argv, const struct option *longopts,
                      int (*set)(int c, char **argv, void *opts), void *opts)
{
    int c, rc;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vqhV", longopts, NULL)) != -1)
        if ((rc = set(c, argv, opts)) >= 0)
            return rc;
    return -1;
}

int cli_config_value_option(const char *synopsis, const char *name, const char *value,
                            int (*setter)(struct tlskit_config *cfg, const char *value))
{
    tlskit_config *cfg = tlskit_config_new();
    int rc = -1;
    if (cfg == NULL) {
        cli_msg("out of memory");
        return CLI_EXIT_ERROR;
    }
    if (setter(cfg, value) < 0)
        rc = cli_usage_error(synopsis, "%s: %s", name, tlskit_config_error(cfg));
    tlskit_config_free(cfg);
    return rc;
}

int cli_tls_version_option(const char *synopsis, const char *name, const char *arg,
                           int *version)
{
    int v = tlskit_protocol_parse(arg);
    if (v < 0)
        return cli_usage_error(synopsis, "%s: '%s' is not a TLS version (1.2 or 1.3)", name,
                               arg);
    *version = v;
    return -1;
}

int cli_alpn_option(const char *synopsis, const char *arg, const char **list)
{
    char why[160];
    if (tlskit_alpn_check(arg, why, sizeof(why)) < 0)
        return cli_usage_error(synopsis, "--alpn: '%s': %s", arg, why);
    *list = arg;
    return -1;
}

int cli_parse_addr_port(const char *text, int port_only_ok, char *host, size_t hostlen,
                       char *port, size_t portlen)
{
    unsigned long num;
    const char *colon = strrchr(text, ':');
    const char *h = text, *p = colon ? colon + 1 : text;
    size_t hl = colon ? (size_t)(colon - text) : 0;
    if (!colon && !port_only_ok)
        return -1;
    if (colon && hl >= 2 && text[0] == '[' && text[hl - 1] == ']') {
        h++;
        hl -= 2;
    } else if (colon && memchr(text, ':', hl) != NULL) {
        return -1; /* an IPv6 address needs brackets: [::1]:8080 */
    }
    if ((colon && hl == 0) || hl >= hostlen || cli_parse_ulong(p, 0, 65535, &num) < 0)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, portlen, "%lu", num);
    return 0;
}
