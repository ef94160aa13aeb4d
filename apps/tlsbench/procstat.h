/* SPDX-License-Identifier: MIT */
/* What tlsbench reads about other processes (the servers it measures) and itself:
 * CPU time and resident memory, from /proc and getrusage(2). */
#ifndef TLSBENCH_PROCSTAT_H
#define TLSBENCH_PROCSTAT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* CPU time (user + system) used so far by each process in pids (all its threads, also
 * exited ones), in nanoseconds: the process CPU clock (clock_getcpuclockid), else the
 * sum of /proc/PID/task/TID/schedstat, else /proc/PID/stat (clock ticks). -1 when a
 * process cannot be read. */
int64_t procstat_cpu_ns(const pid_t *pids, size_t n);
/* Of that, the time spent in the kernel (/proc/PID/stat's stime, in clock ticks of
 * usually 10 ms: read it over seconds); -1 when a process cannot be read. */
int64_t procstat_sys_ns(const pid_t *pids, size_t n);
/* Sum of VmRSS over the processes, in KiB; -1 when one cannot be read. */
int64_t procstat_rss_kib(const pid_t *pids, size_t n);
/* This process's CPU time (user + system) in nanoseconds. */
int64_t procstat_self_cpu_ns(void);

#endif
