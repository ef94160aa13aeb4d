/* SPDX-License-Identifier: MIT */
/*
 * cli: the small pieces tlsserver and tlsclient share — program name and message
 * output, strict number parsing, exit codes. Public tlskit API only; no library internals.
 */
#ifndef TLSKIT_APPS_CLI_H
#define TLSKIT_APPS_CLI_H

#include <stdint.h>
#include <sys/types.h>

#if defined(__GNUC__) || defined(__clang__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

/* Exit codes (DESIGN.md, "Command-line contract"). tlsserver uses the first three. */
enum cli_exit {
    CLI_EXIT_OK = 0,        /* success */
    CLI_EXIT_ERROR = 1,     /* any other error (config files, start-up, local I/O) */
    CLI_EXIT_USAGE = 2,     /* bad option or value */
    CLI_EXIT_CONNECT = 3,   /* could not connect: DNS, refused, unreachable */
    CLI_EXIT_TIMEOUT = 4,   /* a deadline expired, in any phase */
    CLI_EXIT_VERIFY = 5,    /* certificate verification failed (either side) */
    CLI_EXIT_HANDSHAKE = 6, /* TLS handshake failed for another reason */
    CLI_EXIT_BROKEN = 7,    /* connection broke after the handshake */
    CLI_EXIT_EXPIRING = 8,  /* tlsclient --check --warn-days N: a certificate expires soon */
};

/* Remember the program name (the prefix of every message) and make sure fds 0, 1 and 2
 * are open (on /dev/null if not), so a socket never lands on a standard descriptor. */
void cli_init(const char *prog);

/* "PROG: MESSAGE\n" on stderr in one write(2), so lines from several threads never
 * interleave. Control characters (peer-supplied text may hold them) become '?'. */
void cli_msg(const char *fmt, ...) CLI_PRINTF(1, 2);

/* Usage error: "PROG: MESSAGE", then the synopsis and a pointer to --help, on stderr.
 * Returns CLI_EXIT_USAGE for `return cli_usage_error(...)`. */
int cli_usage_error(const char *synopsis, const char *fmt, ...) CLI_PRINTF(2, 3);

/* The option getopt_long() just stopped at, as the user typed it ("--ca", "-x"). */
void cli_bad_option_name(char *out, size_t len, char **argv);

/* The end of every app's getopt_long() switch: -v, -q, -h and -V, which all apps share,
 * and getopt_long()'s ':' (missing value) and '?' (unknown option, or a value given to
 * an option that takes none) turned into usage errors. Call it for any other c. Returns
 * -1 to go on, or the exit code (0 after --help or --version). */
int cli_common_option(int c, char **argv, const char *synopsis, void (*usage)(void),
                      int *verbosity);

/* The long options every app has, to end its table: --verbose, --quiet, --help,
 * --version, and the terminator. cli_parse_options() takes their short forms. */
#define CLI_COMMON_LONG_OPTIONS                                                             \
    {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'},                 \
    {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}

struct option;
/* The option loop of every app: getopt_long() over longopts and the common short
 * options, with getopt's own messages off (cli_common_option() reports), calling
 * set(c, argv, opts) for each option until it returns an exit code (>= 0), which is
 * returned. -1 once every option is taken; the operands start at optind. */
int cli_parse_options(int argc, char **argv, const struct option *longopts,
                      int (*set)(int c, char **argv, void *opts), void *opts);

/* A --tls-min/--tls-max value ("1.2", "1.3") into *version. -1 to go on, or the usage
 * error's exit code. */
int cli_tls_version_option(const char *synopsis, const char *name, const char *arg,
                           int *version);

/* A flag's value checked by the library's own parser before anything starts: setter (a
 * tlskit_config_* call taking the text) runs on a scratch config. -1 when it takes the
 * value; else the exit code, after "PROG: NAME: why" (a usage error) or "out of memory".
 * The config type is spelled out so that this header needs no tlskit.h. */
struct tlskit_config;
int cli_config_value_option(const char *synopsis, const char *name, const char *value,
                            int (*setter)(struct tlskit_config *cfg, const char *value));
/* An --alpn value ("h2,http/1.1") into *list, once tlskit_alpn_check() finds it well
 * formed. -1 to go on, or the usage error's exit code. */
int cli_alpn_option(const char *synopsis, const char *arg, const char **list);

/* "-V": "PROG VERSION" and the library's version line, on stdout. */
void cli_print_version(void);

/* Decimal seconds with an optional fraction ("10", "0.5", "2.250") to milliseconds,
 * rounding sub-millisecond remainders up so a non-zero value never becomes 0.
 * No sign, exponent or spaces; at most CLI_SECONDS_MAX. 0 or -1. */
#define CLI_SECONDS_MAX 2147483L /* INT32_MAX ms, what poll(2) can wait */
int cli_parse_seconds(const char *text, int64_t *ms);

/* Plain decimal integer in [min, max]; no sign, spaces or trailing text. 0 or -1. */
int cli_parse_ulong(const char *text, unsigned long min, unsigned long max,
                    unsigned long *out);

/* Write all of buf to fd, retrying on EINTR and waiting on EAGAIN. 0, or -1 with errno.
 * With nosigpipe set, a write to a closed pipe fails with EPIPE instead of raising
 * SIGPIPE, without changing the process's SIGPIPE disposition. */
int cli_write_all(int fd, const void *buf, size_t len, int nosigpipe);

/* CLOCK_MONOTONIC in milliseconds, and in nanoseconds: the program's one clock. */
int64_t cli_now_ms(void);
int64_t cli_now_ns(void);

#endif /* TLSKIT_APPS_CLI_H */
