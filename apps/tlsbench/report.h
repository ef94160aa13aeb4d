/* SPDX-License-Identifier: MIT */
/* The result on stdout: a table for people, or one JSON object for scripts (its keys are
 * a contract: notes/CONTRACTS.md). */
#ifndef TLSBENCH_REPORT_H
#define TLSBENCH_REPORT_H

#include "options.h"
#include "run.h"

void report_table(const struct opts *o, const struct bench_results *r);
void report_json(const struct opts *o, const struct bench_results *r);

#endif
