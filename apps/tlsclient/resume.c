/* SPDX-License-Identifier: MIT */
/* tlsclient's sessions: --sess-in (offer a saved session), --sess-out (save the one the
 * server gave), --reconnect N (more connections offering it, one line each). */
#include <stddef.h>

#include <tlskit/tlskit.h>

#include "cli.h"
#include "client.h"
#include "options.h"

/* A TLS 1.3 ticket comes after the handshake: how long to wait for it. */
#define TICKET_WAIT_MS 5000

int client_offer_session(const struct options *o, tlskit_conn *c)
{
    if (o->sess_in == NULL || tlskit_conn_session_load_file(c, o->sess_in) == 0)
        return -1;
    cli_msg("--sess-in: %s", tlskit_conn_error(c));
    return CLI_EXIT_ERROR;
}

tlskit_session *client_keep_session(const struct options *o, tlskit_conn *c)
{
    if (o->sess_out == NULL && o->reconnect == 0)
        return NULL;
    if (tlskit_conn_session_wait(c, TICKET_WAIT_MS) < 0) {
        cli_msg("%s: %s", o->sess_out != NULL ? "--sess-out" : "--reconnect",
                tlskit_conn_error(c));
        return NULL;
    }
    if (o->sess_out != NULL && tlskit_conn_session_save_file(c, o->sess_out) < 0) {
        cli_msg("--sess-out: %s", tlskit_conn_error(c));
        return NULL;
    }
    return tlskit_conn_session_copy(c);
}

/* One more connection offering *sess: "reconnect I: resumed: yes|no" on stderr; *sess
 * becomes the newest session the server gave. The exit code. */
static int reconnect_once(const struct options *o, tlskit_config *cfg, unsigned long i,
                          tlskit_session **sess)
{
    int rc = CLI_EXIT_OK;
    tlskit_conn *c = tlskit_conn_new(cfg);
    if (c == NULL) {
        cli_msg("out of memory");
        return CLI_EXIT_ERROR;
    }
    if ((o->servername != NULL && tlskit_conn_set_servername(c, o->servername) < 0) ||
        tlskit_conn_connect(c, o->host, o->port) < 0) {
        rc = client_failed(c, 0);
        goto done;
    }
    if ((rc = client_starttls(o, c)) >= 0)
        goto done;
    rc = CLI_EXIT_OK;
    if ((*sess != NULL && tlskit_conn_set_session(c, *sess) < 0) ||
        tlskit_conn_handshake(c) < 0) {
        rc = client_failed(c, 0);
        goto done;
    }
    cli_msg("reconnect %lu: resumed: %s", i, tlskit_conn_session_reused(c) ? "yes" : "no");
    if (o->verbosity > 1)
        client_summary(c);
    /* A newer session if its ticket is already here; else the one offered serves again
     * (tickets are not single-use), so a server without tickets costs no wait. */
    if (tlskit_conn_session_wait(c, 0) == 0) {
        tlskit_session *newer = tlskit_conn_session_copy(c);
        if (newer != NULL) {
            tlskit_session_free(*sess);
            *sess = newer;
        }
    }
    (void)tlskit_conn_close(c);
done:
    tlskit_conn_free(c);
    return rc;
}

int client_reconnect(const struct options *o, tlskit_config *cfg, tlskit_session *sess)
{
    int rc = CLI_EXIT_OK;
    for (unsigned long i = 1; i <= o->reconnect && rc == CLI_EXIT_OK; i++)
        rc = reconnect_once(o, cfg, i, &sess);
    tlskit_session_free(sess);
    return rc;
}
