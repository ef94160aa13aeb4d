/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the apps' one parser of hosts and ports, cli_parse_hostport() and
 * cli_parse_host() (apps/common/hostport.c).
 *
 * Input: [0] picks the form (bits 0-1: one operand, two operands, one operand with a
 * default port, a host alone as for --bind); the rest is the host operand, then after
 * the first NUL (if any) the port operand.
 * Invariants: a result is a clean host (no brackets, spaces or control characters, at
 * most CLI_HOST_MAX bytes) and a canonical port (1 to 65535, no leading zero); written
 * back in the canonical spelling ([V6]:PORT or HOST:PORT, and HOST PORT) it parses to
 * the same; a bare address with two colons or more is never split at a colon; a refusal
 * always says why.
 */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostport.h"

static void check_clean(const char *host)
{
    size_t len = strlen(host);
    FZ_CHECK(len > 0 && len <= CLI_HOST_MAX, "host length %zu", len);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)host[i];
        FZ_CHECK(ch > 0x20 && ch != 0x7f && ch != '[' && ch != ']' && ch != '/',
                 "host \"%s\" has byte 0x%02x", host, ch);
    }
}

static void check_result(const struct cli_hostport *hp)
{
    check_clean(hp->host);
    unsigned long port = strtoul(hp->port, NULL, 10);
    char again[8];
    snprintf(again, sizeof(again), "%lu", port);
    FZ_CHECK(port >= 1 && port <= 65535 && strcmp(again, hp->port) == 0, "port \"%s\"",
             hp->port);

    /* The canonical spellings parse back to the same. */
    char one[CLI_HOST_MAX + 16], why[160];
    struct cli_hostport back;
    int v6 = strchr(hp->host, ':') != NULL;
    snprintf(one, sizeof(one), v6 ? "[%s]:%s" : "%s:%s", hp->host, hp->port);
    FZ_CHECK(cli_parse_hostport(one, NULL, NULL, &back, why, sizeof(why)) == 0,
             "\"%s\" refused: %s", one, why);
    FZ_CHECK(strcmp(back.host, hp->host) == 0 && strcmp(back.port, hp->port) == 0,
             "\"%s\" came back as %s %s", one, back.host, back.port);
    if (!v6 || strchr(strchr(hp->host, ':') + 1, ':') != NULL) { /* HOST PORT, V6 PORT */
        FZ_CHECK(cli_parse_hostport(hp->host, hp->port, NULL, &back, why, sizeof(why)) == 0,
                 "\"%s\" \"%s\" refused: %s", hp->host, hp->port, why);
        FZ_CHECK(strcmp(back.host, hp->host) == 0, "host %s came back as %s", hp->host,
                 back.host);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_input in = {data, size};
    int form = fz_take_u8(&in) & 3;
    char *text = malloc(in.n + 2);
    FZ_CHECK(text != NULL, "out of memory");
    memcpy(text, in.p, in.n);
    text[in.n] = text[in.n + 1] = '\0';
    const char *host = text;
    const char *port = text + strlen(text) + 1; /* after the first NUL, or "" */

    struct cli_hostport hp;
    char why[160] = "";
    char out[CLI_HOST_MAX + 1];
    int rc;
    switch (form) {
    case 0: rc = cli_parse_hostport(host, NULL, NULL, &hp, why, sizeof(why)); break;
    case 1: rc = cli_parse_hostport(host, port, NULL, &hp, why, sizeof(why)); break;
    case 2: rc = cli_parse_hostport(host, NULL, "443", &hp, why, sizeof(why)); break;
    default: rc = cli_parse_host(host, out, why, sizeof(why)); break;
    }
    FZ_CHECK(rc == 0 || rc == -1, "returned %d", rc);
    if (rc != 0) {
        FZ_CHECK(why[0] != '\0', "refused \"%s\" without a reason", host);
    } else if (form == 3) {
        check_clean(out);
    } else {
        check_result(&hp);
        if (form != 1 && host[0] != '[') {
            const char *c1 = strchr(host, ':');
            FZ_CHECK(c1 == NULL || strchr(c1 + 1, ':') == NULL,
                     "\"%s\": a bare IPv6 address was split at a colon", host);
        }
    }
    free(text);
    return 0;
}
