/* SPDX-License-Identifier: MIT */
#include "procstat.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* utime + stime (or stime alone) from /proc/PID/stat (fields 14 and 15, after the
 * parenthesised name, which may itself hold spaces and parentheses). */
static int64_t stat_ns(pid_t pid, int sys_only)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long ut = 0, st = 0;
    /* After ')': state(3) ppid(4) ... utime(14) stime(15). */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    return (int64_t)(((sys_only ? 0 : ut) + st) * (1000000000ULL / (unsigned long long)hz));
}

static int64_t stat_cpu_ns(pid_t pid)
{
    return stat_ns(pid, 0);
}

static int64_t schedstat_cpu_ns(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int64_t sum = 0;
    int any = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p2[320];
        snprintf(p2, sizeof(p2), "/proc/%d/task/%s/schedstat", (int)pid, de->d_name);
        FILE *f = fopen(p2, "r");
        if (!f)
            continue; /* the thread just exited */
        unsigned long long ns = 0;
        if (fscanf(f, "%llu", &ns) == 1) {
            sum += (int64_t)ns;
            any = 1;
        }
        fclose(f);
    }
    closedir(d);
    return any ? sum : -1;
}

/* The process's CPU clock: nanoseconds, all threads, also those that have exited. */
static int64_t clock_cpu_ns(pid_t pid)
{
    clockid_t clk;
    struct timespec ts;
    if (clock_getcpuclockid(pid, &clk) != 0 || clock_gettime(clk, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t procstat_cpu_ns(const pid_t *pids, size_t n)
{
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t v = clock_cpu_ns(pids[i]);
        if (v < 0)
            v = schedstat_cpu_ns(pids[i]);
        if (v < 0)
            v = stat_cpu_ns(pids[i]);
        if (v < 0)
            return -1;
        total += v;
    }
    return total;
}

int64_t procstat_sys_ns(const pid_t *pids, size_t n)
{
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t v = stat_ns(pids[i], 1);
        if (v < 0)
            return -1;
        total += v;
    }
    return total;
}

int64_t procstat_rss_kib(const pid_t *pids, size_t n)
{
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pids[i]);
        FILE *f = fopen(path, "r");
        if (!f)
            return -1;
        long long kib = -1;
        while (fgets(line, sizeof(line), f))
            if (sscanf(line, "VmRSS: %lld kB", &kib) == 1)
                break;
        fclose(f);
        if (kib < 0)
            return -1;
        total += kib;
    }
    return total;
}

int64_t procstat_self_cpu_ns(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}
