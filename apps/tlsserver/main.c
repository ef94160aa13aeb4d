/* SPDX-License-Identifier: MIT */
/*
 * tlsserver: a TLS server over the public tlskit API: echo (default), discard or a small
 * HTTP/1.1 responder, served by the event engine (default), a thread per connection, or
 * one connection at a time.
 */
#include "bufpool.h"
#include "cli.h"
#include "server.h"

int main(int argc, char **argv)
{
    struct server s = {.opt = tlsserver_defaults(), .wake = {-1, -1}};
    int rc;

    /* Before anything allocates through OpenSSL (bufpool.h); where it does not apply,
     * OpenSSL keeps plain malloc. */
    (void)bufpool_install();
    cli_init("tlsserver");
    rc = tlsserver_parse_args(argc, argv, &s.opt);
    if (rc >= 0)
        return rc;
    if (server_init(&s) < 0)
        rc = CLI_EXIT_ERROR;
    else
        rc = server_run(&s, s.opt.model == MODEL_EVENT ? &serve_events_model
                                                       : &serve_threads_model);
    server_cleanup(&s);
    return rc;
}
