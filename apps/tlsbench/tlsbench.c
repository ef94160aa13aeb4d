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

/* A URL names an HTTP server, which never answers the echo bytes rr and bulk send
 * without --http: say so before the run rather than time out in silence. */
static int url_without_http(const struct opts *o)
{
    return o->url && !o->http && (o->mode == MODE_RR || o->mode == MODE_BULK);
}

/* Nothing was measured: say why, so exit 1 never comes without a reason. */
static void explain_nothing(const struct opts *o, const struct bench_results *r)
{
    if (!r->started || o->mode == MODE_IDLE || r->ops)
        return;
    cli_msg("no %s%s in %.1f s (%llu error%s)%s%s",
            o->mode == MODE_BULK ? "bytes came back" : bench_mode_unit(o->mode),
            o->mode == MODE_BULK ? "" : " completed", r->elapsed_s,
            (unsigned long long)r->errors, r->errors == 1 ? "" : "s",
            r->first_error[0] ? "; first error: " : "", r->first_error);
    if (url_without_http(o) && r->proto[0]) /* handshakes worked */
        cli_msg("the target is an https:// URL but --http was not given: %s mode sent echo "
                "bytes, which an HTTP server does not answer; add --http",
                bench_mode_name(o->mode));
    else if (o->mode != MODE_HANDSHAKE && !o->http && r->proto[0])
        cli_msg("handshakes worked but nothing was echoed back: is the server an echo "
                "server (tlsserver --mode echo)? For an HTTP server add --http");
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
    if (url_without_http(&o) && !o.quiet)
        cli_msg("warning: %s is a URL but --http was not given: %s mode sends echo bytes, "
                "which an HTTP server does not answer (add --http for GET requests)",
                argv[argc - 1], bench_mode_name(o.mode));
    if (bench_run(&o, &res) == 0) {
        if (res.first_error[0] && !o.json)
            cli_msg("first error: %s", res.first_error);
        if (o.json)
            report_json(&o, &res);
        else
            report_table(&o, &res);
        fflush(stdout);
        rc = exit_code(&o, &res);
        if (rc != CLI_EXIT_OK)
            explain_nothing(&o, &res);
    }
    options_free(&o);
    return rc;
}
