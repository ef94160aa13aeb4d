/* SPDX-License-Identifier: MIT */
/* systemd socket activation without libsystemd: the protocol of sd_listen_fds(3). A
 * socket-activated service gets its listening sockets as descriptors 3, 4, ... with
 * LISTEN_FDS saying how many and LISTEN_PID naming the process they are for (a child
 * that inherited the environment must not take them). The variables are removed, so
 * that a program we start does not take them either. The library checks that each is a
 * listening TCP socket (tlskit_listener_adopt_fds / tlskit_engine_adopt_fds). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "server.h"

#define SD_LISTEN_FDS_START 3

static int parse_number(const char *text, unsigned long max, unsigned long *out)
{
    return text != NULL && cli_parse_ulong(text, 1, max, out) == 0 ? 0 : -1;
}

int server_take_activation(struct server *s)
{
    const char *pid_text = getenv("LISTEN_PID"), *fds_text = getenv("LISTEN_FDS");
    unsigned long pid, n;
    s->nlisten_fds = 0;
    if (pid_text == NULL)
        return 0;
    if (parse_number(pid_text, 0x7fffffffUL, &pid) < 0 || (pid_t)pid != getpid())
        return 0; /* meant for another process: leave the variables to it */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDNAMES");
    if (parse_number(fds_text, MAX_LISTEN_FDS, &n) < 0) {
        cli_msg("socket activation: LISTEN_FDS '%s' is not a count from 1 to %d",
                fds_text ? fds_text : "", MAX_LISTEN_FDS);
        unsetenv("LISTEN_FDS");
        return -1;
    }
    unsetenv("LISTEN_FDS");
    for (unsigned long i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + (int)i;
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
            cli_msg("socket activation: descriptor %d: %s", fd, strerror(errno));
            return -1;
        }
        s->listen_fds[s->nlisten_fds++] = fd;
    }
    return 0;
}
