/* SPDX-License-Identifier: MIT */
/*
 * The apps' one parser of hosts and ports (apps/common/hostport.c): every spelling the
 * command-line contract promises (DESIGN.md: HOST PORT, HOST:PORT, [V6]:PORT, [V6] PORT),
 * and the ones it refuses, each with its reason.
 */
#include "common.h"

#include <string.h>

#include "hostport.h"

TK_SUITE(hostport);

struct hp_case {
    const char *host_arg, *port_arg, *default_port;
    const char *host, *port; /* expected; host NULL: refused */
    const char *why;         /* refused: part of the reason */
};

static const struct hp_case cases[] = {
    /* two operands */
    {"localhost", "4433", NULL, "localhost", "4433", NULL},
    {"[::1]", "4433", NULL, "::1", "4433", NULL},
    {"::1", "4433", NULL, "::1", "4433", NULL},
    {"fe80::1%lo", "443", NULL, "fe80::1%lo", "443", NULL},
    {"127.0.0.1", "0443", NULL, "127.0.0.1", "443", NULL},
    {"host:1", "443", NULL, NULL, NULL, "given twice"},
    {"[::1]:1", "443", NULL, NULL, NULL, "given twice"},
    {"[::1]x", "443", NULL, NULL, NULL, "after ']'"},
    {"", "443", NULL, NULL, NULL, "host is empty"},
    {"host", "", NULL, NULL, NULL, "port is empty"},
    {"host", "0", NULL, NULL, NULL, "not a port number"},
    {"host", "65536", NULL, NULL, NULL, "not a port number"},
    {"host", "-1", NULL, NULL, NULL, "not a port number"},
    {"host", "https", NULL, NULL, NULL, "not a port number"},
    {"ho st", "443", NULL, NULL, NULL, "space"},
    /* one operand */
    {"localhost:4433", NULL, NULL, "localhost", "4433", NULL},
    {"[::1]:4433", NULL, NULL, "::1", "4433", NULL},
    {"[2001:db8::1]:65535", NULL, NULL, "2001:db8::1", "65535", NULL},
    {"127.0.0.1:1", NULL, NULL, "127.0.0.1", "1", NULL},
    {"::1:443", NULL, NULL, NULL, NULL, "ambiguous"},
    {"::1", NULL, NULL, NULL, NULL, "ambiguous"},
    {"[::1", NULL, NULL, NULL, NULL, "']' is missing"},
    {"[::1]", NULL, NULL, NULL, NULL, "port is missing"},
    {"[::1]443", NULL, NULL, NULL, NULL, "after ']'"},
    {"[]:443", NULL, NULL, NULL, NULL, "host is empty"},
    {"[localhost]:443", NULL, NULL, NULL, NULL, "brackets are for IPv6"},
    {"a]b:443", NULL, NULL, NULL, NULL, "stray ']'"},
    {"host:", NULL, NULL, NULL, NULL, "port is empty"},
    {":443", NULL, NULL, NULL, NULL, "host is empty"},
    {"host:0", NULL, NULL, NULL, NULL, "not a port number"},
    {"host:70000", NULL, NULL, NULL, NULL, "not a port number"},
    {"host:99999999999999999999999", NULL, NULL, NULL, NULL, "not a port number"},
    {"host", NULL, NULL, NULL, NULL, "port is missing"},
    {"https://example.com/", NULL, NULL, NULL, NULL, "URL"},
    /* one operand with a default port (tlsbench's https:// URLs) */
    {"example.com", NULL, "443", "example.com", "443", NULL},
    {"[::1]", NULL, "443", "::1", "443", NULL},
    {"example.com:8443", NULL, "443", "example.com", "8443", NULL},
    {"::1", NULL, "443", NULL, NULL, "ambiguous"},
};

TK_TEST(hostport, table)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct hp_case *c = &cases[i];
        struct cli_hostport hp;
        char why[160] = "";
        int rc = cli_parse_hostport(c->host_arg, c->port_arg, c->default_port, &hp, why,
                                    sizeof(why));
        if (c->host) {
            cr_expect_eq(rc, 0, "'%s' '%s' refused: %s", c->host_arg, tk_str(c->port_arg), why);
            if (rc == 0) {
                cr_expect_str_eq(hp.host, c->host, "host of '%s'", c->host_arg);
                cr_expect_str_eq(hp.port, c->port, "port of '%s'", c->host_arg);
            }
        } else {
            cr_expect_eq(rc, -1, "'%s' '%s' accepted as %s %s", c->host_arg,
                         tk_str(c->port_arg), hp.host, hp.port);
            cr_expect(tk_contains(why, c->why), "'%s' '%s': reason '%s', expected '%s'",
                      c->host_arg, tk_str(c->port_arg), why, c->why);
        }
    }
}

TK_TEST(hostport, host_alone_for_bind)
{
    static const struct {
        const char *arg, *host, *why;
    } hosts[] = {
        {"localhost", "localhost", NULL}, {"*", "*", NULL}, {"::", "::", NULL},
        {"[::1]", "::1", NULL}, {"::1", "::1", NULL}, {"0.0.0.0", "0.0.0.0", NULL},
        {"[::1]:4433", NULL, "after ']'"}, {"[::1", NULL, "']' is missing"},
        {"127.0.0.1:4433", NULL, "without a port"}, {"", NULL, "host is empty"},
        {"[]", NULL, "host is empty"},
    };
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        char out[CLI_HOST_MAX + 1] = "", why[160] = "";
        int rc = cli_parse_host(hosts[i].arg, out, why, sizeof(why));
        if (hosts[i].host) {
            cr_expect_eq(rc, 0, "'%s' refused: %s", hosts[i].arg, why);
            cr_expect_str_eq(out, hosts[i].host, "host of '%s'", hosts[i].arg);
        } else {
            cr_expect_eq(rc, -1, "'%s' accepted as %s", hosts[i].arg, out);
            cr_expect(tk_contains(why, hosts[i].why), "'%s': reason '%s'", hosts[i].arg, why);
        }
    }
}

TK_TEST(hostport, long_hosts)
{
    char host[CLI_HOST_MAX + 2];
    struct cli_hostport hp;
    char why[160];
    memset(host, 'a', sizeof(host) - 1);
    host[CLI_HOST_MAX] = '\0'; /* the longest taken */
    cr_expect_eq(cli_parse_hostport(host, "1", NULL, &hp, why, sizeof(why)), 0, "%s", why);
    host[CLI_HOST_MAX] = 'a';
    host[CLI_HOST_MAX + 1] = '\0';
    cr_expect_eq(cli_parse_hostport(host, "1", NULL, &hp, why, sizeof(why)), -1);
    cr_expect(tk_contains(why, "longer than"), "%s", why);
}
