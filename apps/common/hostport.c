/* SPDX-License-Identifier: MIT */
/* hostport.c: HOST PORT, HOST:PORT, [V6]:PORT and [V6] PORT, parsed once for every app. */
#include "hostport.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int fail(char *why, size_t whylen, const char *fmt, ...) CLI_PRINTF(3, 4);
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (whylen > 0)
        vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -1;
}

/* A host of len bytes at s (brackets already removed; bracketed says they were there)
 * into out. */
static int take_host(const char *s, size_t len, int bracketed, char out[CLI_HOST_MAX + 1],
                     char *why, size_t whylen)
{
    if (len == 0)
        return fail(why, whylen, "the host is empty");
    if (len > CLI_HOST_MAX)
        return fail(why, whylen, "the host is longer than %d characters", CLI_HOST_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch == 0x7f)
            return fail(why, whylen, "the host has a space or control character");
        if (ch == '[' || ch == ']')
            return fail(why, whylen, "stray '%c' (brackets go around a whole IPv6 "
                        "address: [::1]:443)", ch);
        if (ch == '/')
            return fail(why, whylen, "a host has no '/' (not a URL: give HOST PORT, "
                        "e.g. example.com 443)");
    }
    if (bracketed && memchr(s, ':', len) == NULL)
        return fail(why, whylen, "brackets are for IPv6 addresses ([::1]:443); write a "
                    "name or IPv4 address without them");
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

static int take_port(const char *s, struct cli_hostport *hp, char *why, size_t whylen)
{
    unsigned long num;
    if (*s == '\0')
        return fail(why, whylen, "the port is empty");
    if (cli_parse_ulong(s, 1, 65535, &num) < 0)
        return fail(why, whylen, "'%.16s%s' is not a port number (1 to 65535)", s,
                    strlen(s) > 16 ? "..." : "");
    snprintf(hp->port, sizeof(hp->port), "%lu", num);
    return 0;
}

/* "[V6]..." at s: the host into hp->host, *rest after the ']'. */
static int take_bracketed(const char *s, struct cli_hostport *hp, const char **rest,
                          char *why, size_t whylen)
{
    const char *close = strchr(s, ']');
    if (close == NULL)
        return fail(why, whylen, "']' is missing after the IPv6 address");
    *rest = close + 1;
    return take_host(s + 1, (size_t)(close - s - 1), 1, hp->host, why, whylen);
}

int cli_parse_hostport(const char *host_arg, const char *port_arg, const char *default_port,
                       struct cli_hostport *hp, char *why, size_t whylen)
{
    const char *rest = "", *port = port_arg;
    memset(hp, 0, sizeof(*hp));
    if (host_arg == NULL)
        return fail(why, whylen, "the host is missing");
    if (strstr(host_arg, "://") != NULL)
        return fail(why, whylen, "a URL is not a host (give HOST PORT, e.g. example.com "
                    "443)");
    if (host_arg[0] == '[') {
        if (take_bracketed(host_arg, hp, &rest, why, whylen) != 0)
            return -1;
        if (port_arg != NULL && *rest != '\0')
            return fail(why, whylen, "%s", *rest == ':' ? "the port is given twice"
                                                        : "unexpected text after ']'");
        if (port_arg == NULL) {
            if (*rest == ':')
                port = rest + 1;
            else if (*rest != '\0')
                return fail(why, whylen, "unexpected text after ']' (write [V6]:PORT)");
        }
    } else {
        const char *colon = strchr(host_arg, ':');
        size_t len = strlen(host_arg);
        int colons = 0;
        for (const char *p = host_arg; *p; p++)
            colons += *p == ':';
        if (port_arg != NULL && colons == 1)
            return fail(why, whylen, "the port is given twice");
        if (port_arg == NULL && colons > 1)
            return fail(why, whylen, "ambiguous: an IPv6 address with a port needs "
                        "brackets ([V6]:PORT), or give the port apart (V6 PORT)");
        if (port_arg == NULL && colons == 1) {
            len = (size_t)(colon - host_arg);
            port = colon + 1;
        }
        if (take_host(host_arg, len, 0, hp->host, why, whylen) != 0)
            return -1;
    }
    if (port == NULL)
        port = default_port;
    if (port == NULL)
        return fail(why, whylen, "the port is missing (HOST:PORT or HOST PORT)");
    return take_port(port, hp, why, whylen);
}

int cli_parse_host(const char *arg, char out[CLI_HOST_MAX + 1], char *why, size_t whylen)
{
    if (arg == NULL)
        return fail(why, whylen, "the host is missing");
    if (arg[0] == '[') {
        struct cli_hostport hp;
        const char *rest = "";
        if (take_bracketed(arg, &hp, &rest, why, whylen) != 0)
            return -1;
        if (*rest != '\0')
            return fail(why, whylen, "unexpected text after ']' (a host only: the port "
                        "is set apart)");
        memcpy(out, hp.host, sizeof(hp.host));
        return 0;
    }
    const char *colon = strchr(arg, ':');
    if (colon != NULL && strchr(colon + 1, ':') == NULL)
        return fail(why, whylen, "a host only, without a port (the port is given apart)");
    return take_host(arg, strlen(arg), 0, out, why, whylen);
}
