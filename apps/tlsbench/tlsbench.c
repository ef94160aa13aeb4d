/* SPDX-License-Identifier: MIT */
/*
 * tlsbench: a TLS load generator over the tlskit public API. Many non-blocking
 * connections on a few threads (load.c), driven by run.c; options.c reads the command
 * line and report.c prints the result.
 */
#include <stdio.h>

#include "cli.h"
#include "options.h"
#include "report.h"
#include "run.h"

/* 1 when nothing was measured; in idle mode, unless every connection held (and
 * answered, with --verify). */
static int exit_code(const struct opts *o, const struct bench_results *r)
{
    if (!r->started)
        return CLI_EXIT_ERROR;
    if (o->mode == MODE_IDLE)
        return r->idle_ok ? CLI_EXIT_OK : CLI_EXIT_ERROR;
    return r->ops ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

int main(int argc, char **argv)
{
    static struct bench_results res; /* holds a histogram: not on the stack */
    struct opts o = {0};
    cli_init("tlsbench");
    int rc = options_parse(argc, argv, &o);
    if (rc >= 0) {
        options_free(&o);
        return rc;
    }
    rc = CLI_EXIT_ERROR;
    if (bench_run(&o, &res) == 0) {
        if (res.first_error[0] && !o.json)
            cli_msg("first error: %s", res.first_error);
        if (o.json)
            report_json(&o, &res);
        else
            report_table(&o, &res);
        fflush(stdout);
        rc = exit_code(&o, &res);
    }
    options_free(&o);
    return rc;
}
