/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the whole command line of tlsserver and tlsclient (getopt_long, every
 * option's value check, the cross-option checks), through their own parse_args().
 *
 * Input: [0] bit 0 picks the program (0 tlsserver, 1 tlsclient); the rest is the
 * arguments, separated by NUL bytes (at most 16). Output (usage, --help, errors) goes to
 * /dev/null unless FUZZ_VERBOSE is set. Invariants: the result is "go on", 0 or 2, and
 * an accepted command line leaves options that are each valid (fuzz_options_*.c).
 */
#include "fuzz_common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_options.h"

#define MAX_ARGS 16

static int quiet = -1;
static int saved_out = -1, saved_err = -1;

static void silence(void)
{
    if (quiet < 0)
        quiet = getenv("FUZZ_VERBOSE") == NULL;
    if (!quiet)
        return;
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    fflush(stdout);
    fflush(stderr);
    saved_out = dup(STDOUT_FILENO);
    saved_err = dup(STDERR_FILENO);
    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        close(null);
    }
}

static void unsilence(void)
{
    if (!quiet)
        return;
    fflush(stdout);
    fflush(stderr);
    if (saved_out >= 0) {
        dup2(saved_out, STDOUT_FILENO);
        close(saved_out);
    }
    if (saved_err >= 0) {
        dup2(saved_err, STDERR_FILENO);
        close(saved_err);
    }
    saved_out = saved_err = -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_input in = {data, size};
    int client = fz_take_u8(&in) & 1;

    /* One NUL-terminated copy; getopt_long permutes argv, so the strings must be ours. */
    char *buf = malloc(in.n + 1);
    FZ_CHECK(buf != NULL, "out of memory");
    memcpy(buf, in.p, in.n);
    buf[in.n] = '\0';
    static char server_name[] = "tlsserver", client_name[] = "tlsclient";
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = client ? client_name : server_name;
    for (char *p = buf; in.n > 0 && argc <= MAX_ARGS;) {
        argv[argc++] = p;
        p += strlen(p) + 1;
        if (p >= buf + in.n)
            break;
    }
    argv[argc] = NULL;

    fz_fd_mark();
    silence();
    if (client)
        fz_tlsclient_parse(argc, argv);
    else
        fz_tlsserver_parse(argc, argv);
    unsilence();
    fz_fd_check("option parsing");
    free(buf);
    return 0;
}
