/* SPDX-License-Identifier: MIT */
#include "hist.h"

static unsigned bucket_of(uint64_t v)
{
    if (v < HIST_EXACT)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    if (msb >= 8 + HIST_OCTAVES)
        return HIST_BUCKETS - 1;
    unsigned shift = msb - 7;
    unsigned mant = (unsigned)(v >> shift); /* in [128, 256) */
    return HIST_EXACT + (msb - 8) * HIST_SUB + (mant - HIST_SUB);
}

static uint64_t bucket_mid(unsigned i)
{
    if (i < HIST_EXACT)
        return i;
    unsigned octave = (i - HIST_EXACT) / HIST_SUB;
    unsigned mant = HIST_SUB + (i - HIST_EXACT) % HIST_SUB;
    unsigned shift = octave + 1;
    return ((uint64_t)mant << shift) + ((uint64_t)1 << shift) / 2;
}

void hist_add(struct hist *h, uint64_t ns)
{
    h->b[bucket_of(ns)]++;
    h->count++;
    h->sum_ns += ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

void hist_merge(struct hist *into, const struct hist *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->b[i] += from->b[i];
    into->count += from->count;
    into->sum_ns += from->sum_ns;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (h->count == 0)
        return 0;
    /* The smallest value with at least ceil(q * count) values at or below it. */
    double want = q * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = bucket_mid(i);
            return v > h->max_ns ? h->max_ns : v;
        }
    }
    return h->max_ns;
}
