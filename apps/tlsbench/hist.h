/* SPDX-License-Identifier: MIT */
/* A latency histogram with bounded relative error: exact below 256 ns, then 128 buckets
 * per power of two (under 0.8% error), up to about 18 minutes. Fixed size, no
 * allocation while recording; one per thread, merged at the end. */
#ifndef TLSBENCH_HIST_H
#define TLSBENCH_HIST_H

#include <stdint.h>

#define HIST_SUB 128
#define HIST_EXACT 256
#define HIST_OCTAVES 33 /* 2^8 .. 2^40 ns */
#define HIST_BUCKETS (HIST_EXACT + HIST_OCTAVES * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t max_ns;
    uint64_t sum_ns;
    uint64_t b[HIST_BUCKETS];
};

void hist_add(struct hist *h, uint64_t ns);
void hist_merge(struct hist *into, const struct hist *from);
/* The value at quantile q (0 < q <= 1) in nanoseconds: the midpoint of its bucket, and
 * never above the largest value recorded. 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
