/* SPDX-License-Identifier: MIT */
/*
 * tlsclient --starttls: the plain-text part of a protocol, up to the server's agreement to
 * start TLS. Everything the server sends here is hostile input read before any
 * authentication: lines are bounded (STARTTLS_LINE_MAX) and so are replies
 * (STARTTLS_REPLY_LINES), control bytes are never echoed raw, and bytes that arrive with
 * the agreement are refused rather than left for TLS (the STARTTLS injection of
 * CVE-2021-23214 and CVE-2011-0411's kind: plain text an attacker slips in must never
 * count as protected). Every wait honours the caller's deadline.
 */
#include "starttls.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "cli.h"

static const char *const names[] = {
    [STARTTLS_SMTP] = "smtp", [STARTTLS_IMAP] = "imap", [STARTTLS_POP3] = "pop3",
    [STARTTLS_FTP] = "ftp",   [STARTTLS_XMPP] = "xmpp", [STARTTLS_POSTGRES] = "postgres",
};

enum starttls_proto starttls_proto(const char *name)
{
    for (size_t i = 1; i < sizeof(names) / sizeof(names[0]); i++)
        if (name != NULL && strcasecmp(name, names[i]) == 0)
            return (enum starttls_proto)i;
    return STARTTLS_NONE;
}

const char *starttls_name(enum starttls_proto proto)
{
    return proto > STARTTLS_NONE && proto <= STARTTLS_POSTGRES ? names[proto] : "none";
}

/* ---- the dialogue: one socket, one deadline, one read buffer, one reason ---- */

struct dlg {
    int fd;
    int64_t deadline;
    char *why;
    size_t whylen;
    int rc;               /* the exit code of the failure */
    size_t len;           /* bytes in buf */
    char buf[STARTTLS_LINE_MAX + 1];
};

#define QUOTE_MAX 300
/* The server's words for a message: lines joined by " | ", cut at QUOTE_MAX. */
struct quote {
    char text[QUOTE_MAX + 8];
    size_t len;
};

static int fail(struct dlg *d, int rc, const char *fmt, ...) CLI_PRINTF(3, 4);
static int fail(struct dlg *d, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->why, d->whylen, fmt, ap);
    va_end(ap);
    d->rc = rc;
    return -1;
}

/* Wait for events until the deadline: 0, or -1 after fail(). */
static int wait_fd(struct dlg *d, short events, const char *what)
{
    for (;;) {
        int ms = -1;
        if (d->deadline > 0) {
            int64_t left = d->deadline - cli_now_ms();
            if (left <= 0)
                return fail(d, CLI_EXIT_TIMEOUT, "timed out waiting for %s", what);
            ms = left > 60000 ? 60000 : (int)left;
        }
        struct pollfd p = {.fd = d->fd, .events = events};
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return fail(d, CLI_EXIT_ERROR, "poll: %s", strerror(errno));
    }
}

/* Read more of the server's reply into buf. 0, or -1 after fail(). */
static int fill(struct dlg *d, const char *what)
{
    if (d->len >= STARTTLS_LINE_MAX)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server's %s is longer than %d bytes", what,
                    STARTTLS_LINE_MAX);
    for (;;) {
        if (wait_fd(d, POLLIN, what) < 0)
            return -1;
        ssize_t n = recv(d->fd, d->buf + d->len, STARTTLS_LINE_MAX - d->len, MSG_DONTWAIT);
        if (n > 0) {
            d->len += (size_t)n;
            d->buf[d->len] = '\0';
            return 0;
        }
        if (n == 0)
            return fail(d, CLI_EXIT_HANDSHAKE, "the server closed the connection before "
                        "its %s", what);
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return fail(d, CLI_EXIT_HANDSHAKE, "reading the server's %s: %s", what,
                        strerror(errno));
    }
}

static int send_text(struct dlg *d, const char *s, size_t len, const char *what)
{
    while (len > 0) {
        if (wait_fd(d, POLLOUT, "the server to take our command") < 0)
            return -1;
        ssize_t n = send(d->fd, s, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            s += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return fail(d, CLI_EXIT_HANDSHAKE, "sending %s: %s", what, strerror(errno));
        }
    }
    return 0;
}

static int send_cmd(struct dlg *d, const char *cmd)
{
    return send_text(d, cmd, strlen(cmd), cmd);
}

static void consume(struct dlg *d, size_t n)
{
    memmove(d->buf, d->buf + n, d->len - n);
    d->len -= n;
    d->buf[d->len] = '\0';
}

/* One line without its CR LF into line (STARTTLS_LINE_MAX + 1 bytes); control bytes and
 * bytes above 0x7e become '?', so the line is safe to quote and holds no NUL. */
static int get_line(struct dlg *d, char *line, const char *what)
{
    for (;;) {
        char *nl = memchr(d->buf, '\n', d->len);
        if (nl != NULL) {
            size_t n = (size_t)(nl - d->buf), end = n;
            if (end > 0 && d->buf[end - 1] == '\r')
                end--;
            for (size_t i = 0; i < end; i++) {
                unsigned char ch = (unsigned char)d->buf[i];
                line[i] = ch < 0x20 || ch > 0x7e ? '?' : (char)ch;
            }
            line[end] = '\0';
            consume(d, n + 1);
            return 0;
        }
        if (fill(d, what) < 0)
            return -1;
    }
}

static void quote_add(struct quote *q, const char *line)
{
    if (q->len >= QUOTE_MAX)
        return;
    int n = snprintf(q->text + q->len, QUOTE_MAX + 1 - q->len, "%s%s", q->len ? " | " : "",
                     line);
    if (n < 0)
        return;
    if ((size_t)n > QUOTE_MAX - q->len) {
        q->len = QUOTE_MAX;
        memcpy(q->text + q->len, "...", 4);
        return;
    }
    q->len += (size_t)n;
}

/* The server agreed: anything it sent after that would be taken as TLS from an attacker
 * in the path (RFC 3207 5, the reason for CVE-2011-0411's fix); refuse it. */
static int agreed(struct dlg *d)
{
    if (d->len > 0)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server sent %zu bytes after agreeing to "
                    "start TLS; refusing them (they may have been injected)", d->len);
    return 0;
}

/* Is word (case-insensitive) one of the words of text (separated by spaces, ';', ',')? */
static int has_word(const char *text, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = text; *p;) {
        size_t skip = strspn(p, " ;,="), n;
        p += skip;
        n = strcspn(p, " ;,=");
        if (n == wl && strncasecmp(p, word, wl) == 0)
            return 1;
        p += n;
    }
    return 0;
}

/* The first word of text (after spaces) is first, and second (if any) follows it. */
static int has_feature(const char *text, const char *first, const char *second)
{
    text += strspn(text, " ");
    size_t fl = strlen(first);
    if (strncasecmp(text, first, fl) != 0 || (text[fl] != '\0' && text[fl] != ' '))
        return 0;
    return second == NULL || has_word(text + fl, second);
}

/* ---- SMTP and FTP: numbered replies (RFC 5321 4.2.1, RFC 959 4.2) ---- */

static int reply_code(const char *line)
{
    for (int i = 0; i < 3; i++)
        if (line[i] < '0' || line[i] > '9')
            return -1;
    if (line[3] != '\0' && line[3] != ' ' && line[3] != '-')
        return -1;
    return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/* A whole reply: its code, the lines quoted into q, *found set when a line announces
 * feature (first word) with arg (a later word; NULL: none). FTP lets the lines between the
 * first and the last be free text. -1 after fail(). */
static int numbered_reply(struct dlg *d, int ftp, struct quote *q, const char *feature,
                          const char *arg, int *found, const char *what)
{
    char line[STARTTLS_LINE_MAX + 1];
    int code = -1;
    for (int i = 0; i < STARTTLS_REPLY_LINES; i++) {
        if (get_line(d, line, what) < 0)
            return -1;
        quote_add(q, line);
        int lc = reply_code(line);
        if (i == 0 && lc < 0)
            return fail(d, CLI_EXIT_HANDSHAKE, "the server's %s is not a reply of this "
                        "protocol: \"%s\"", what, q->text);
        if (i == 0)
            code = lc;
        else if (!ftp && lc != code)
            return fail(d, CLI_EXIT_HANDSHAKE, "the server's %s mixes reply codes: \"%s\"",
                        what, q->text);
        const char *text = lc >= 0 ? line + (line[3] ? 4 : 3) : line;
        if (feature != NULL && i > 0 && has_feature(text, feature, arg))
            *found = 1;
        if (lc == code && line[3] != '-')
            return code;
    }
    return fail(d, CLI_EXIT_HANDSHAKE, "the server's %s is longer than %d lines", what,
                STARTTLS_REPLY_LINES);
}

/* EHLO names the client: our address as an address literal (RFC 5321 4.1.3) when we
 * have no domain name to give. */
static void ehlo_command(int fd, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char addr[INET6_ADDRSTRLEN] = "";
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET &&
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr)))
        snprintf(out, len, "EHLO [%s]\r\n", addr);
    else if (ss.ss_family == AF_INET6 &&
             inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr)))
        snprintf(out, len, "EHLO [IPv6:%s]\r\n", addr);
    else
        snprintf(out, len, "EHLO localhost\r\n");
}

static int smtp(struct dlg *d)
{
    struct quote q = {.len = 0};
    int found = 0, code;
    char ehlo[80];
    if ((code = numbered_reply(d, 0, &q, NULL, NULL, NULL, "greeting")) < 0)
        return -1;
    if (code != 220)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server refused the session: \"%s\"", q.text);
    ehlo_command(d->fd, ehlo, sizeof(ehlo));
    q.len = 0;
    if (send_cmd(d, ehlo) < 0 ||
        (code = numbered_reply(d, 0, &q, "STARTTLS", NULL, &found, "reply to EHLO")) < 0)
        return -1;
    if (code != 250)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server refused EHLO: \"%s\"", q.text);
    if (!found)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server does not offer STARTTLS: \"%s\"",
                    q.text);
    q.len = 0;
    if (send_cmd(d, "STARTTLS\r\n") < 0 ||
        (code = numbered_reply(d, 0, &q, NULL, NULL, NULL, "reply to STARTTLS")) < 0)
        return -1;
    if (code != 220)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server refused STARTTLS: \"%s\"", q.text);
    return agreed(d);
}

static int ftp(struct dlg *d)
{
    struct quote q = {.len = 0};
    int found = 0, code;
    if ((code = numbered_reply(d, 1, &q, NULL, NULL, NULL, "greeting")) < 0)
        return -1;
    if (code != 220)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server refused the session: \"%s\"", q.text);
    q.len = 0;
    if (send_cmd(d, "FEAT\r\n") < 0 ||
        (code = numbered_reply(d, 1, &q, "AUTH", "TLS", &found, "reply to FEAT")) < 0)
        return -1;
    /* A server without FEAT (RFC 2389) may still know AUTH TLS: ask. */
    if (code == 211 && !found)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server does not offer AUTH TLS: \"%s\"",
                    q.text);
    q.len = 0;
    if (send_cmd(d, "AUTH TLS\r\n") < 0 ||
        (code = numbered_reply(d, 1, &q, NULL, NULL, NULL, "reply to AUTH TLS")) < 0)
        return -1;
    if (code != 234)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server refused AUTH TLS: \"%s\"", q.text);
    return agreed(d);
}

/* ---- IMAP (RFC 9051 7.1, 6.1.1, 6.2.1) ---- */

/* Lines up to the one tagged with tag ("a1 "), which goes into q; the untagged
 * "* CAPABILITY" lines are looked at for STARTTLS (and quoted into caps). The tagged
 * line's status, or -1 after fail(). */
static int imap_tagged(struct dlg *d, const char *tag, struct quote *q, struct quote *caps,
                       int *found, const char *what)
{
    char line[STARTTLS_LINE_MAX + 1];
    size_t tl = strlen(tag);
    for (int i = 0; i < STARTTLS_REPLY_LINES; i++) {
        if (get_line(d, line, what) < 0)
            return -1;
        if (strncmp(line, tag, tl) == 0) {
            quote_add(q, line);
            return strncasecmp(line + tl, "OK", 2) == 0 &&
                   (line[tl + 2] == ' ' || line[tl + 2] == '\0');
        }
        if (caps != NULL && strncasecmp(line, "* CAPABILITY ", 13) == 0) {
            quote_add(caps, line);
            if (has_word(line + 13, "STARTTLS"))
                *found = 1;
        }
    }
    return fail(d, CLI_EXIT_HANDSHAKE, "the server's %s is longer than %d lines", what,
                STARTTLS_REPLY_LINES);
}

static int imap(struct dlg *d)
{
    char line[STARTTLS_LINE_MAX + 1];
    struct quote q = {.len = 0}, caps = {.len = 0};
    int found = 0, ok;
    if (get_line(d, line, "greeting") < 0)
        return -1;
    quote_add(&q, line);
    if (strncasecmp(line, "* PREAUTH", 9) == 0)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server does not offer STARTTLS (the session "
                    "is already authenticated): \"%s\"", q.text);
    if (strncasecmp(line, "* BYE", 5) == 0)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server refused the session: \"%s\"", q.text);
    if (strncasecmp(line, "* OK", 4) != 0)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server's greeting is not IMAP: \"%s\"",
                    q.text);
    q.len = 0;
    if (send_cmd(d, "a1 CAPABILITY\r\n") < 0 ||
        (ok = imap_tagged(d, "a1 ", &q, &caps, &found, "reply to CAPABILITY")) < 0)
        return -1;
    if (!ok)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server refused CAPABILITY: \"%s\"", q.text);
    if (!found)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server does not offer STARTTLS: \"%s\"",
                    caps.len ? caps.text : q.text);
    q.len = 0;
    if (send_cmd(d, "a2 STARTTLS\r\n") < 0 ||
        (ok = imap_tagged(d, "a2 ", &q, NULL, NULL, "reply to STARTTLS")) < 0)
        return -1;
    if (!ok)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server refused STARTTLS: \"%s\"", q.text);
    return agreed(d);
}

/* ---- POP3 (RFC 2449 5, RFC 2595 4) ---- */

static int pop3(struct dlg *d)
{
    char line[STARTTLS_LINE_MAX + 1];
    struct quote q = {.len = 0};
    int found = 0;
    if (get_line(d, line, "greeting") < 0)
        return -1;
    quote_add(&q, line);
    if (strncmp(line, "+OK", 3) != 0)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server refused the session: \"%s\"", q.text);
    q.len = 0;
    if (send_cmd(d, "CAPA\r\n") < 0 || get_line(d, line, "reply to CAPA") < 0)
        return -1;
    quote_add(&q, line);
    int capa = strncmp(line, "+OK", 3) == 0; /* -ERR: no CAPA, STLS may still work */
    for (int i = 0; capa; i++) {
        if (i == STARTTLS_REPLY_LINES)
            return fail(d, CLI_EXIT_HANDSHAKE, "the server's reply to CAPA is longer than "
                        "%d lines", STARTTLS_REPLY_LINES);
        if (get_line(d, line, "reply to CAPA") < 0)
            return -1;
        if (strcmp(line, ".") == 0)
            break;
        quote_add(&q, line);
        if (has_feature(line, "STLS", NULL))
            found = 1;
    }
    if (capa && !found)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server does not offer STLS: \"%s\"", q.text);
    q.len = 0;
    if (send_cmd(d, "STLS\r\n") < 0 || get_line(d, line, "reply to STLS") < 0)
        return -1;
    quote_add(&q, line);
    if (strncmp(line, "+OK", 3) != 0)
        return fail(d, CLI_EXIT_HANDSHAKE, "the server refused STLS: \"%s\"", q.text);
    return agreed(d);
}

/* ---- XMPP (RFC 6120 4.2, 5.4) ---- */

/* Where needle starts in the first len bytes of buf, or NULL. */
static const char *find(const char *buf, size_t len, const char *needle)
{
    return memmem(buf, len, needle, strlen(needle));
}

/* The server's text from `from` on, made quotable (control bytes as '?'), cut. */
static void quote_xml(struct quote *q, const char *from, size_t len)
{
    char text[QUOTE_MAX + 1];
    size_t n = len > QUOTE_MAX ? QUOTE_MAX : len;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)from[i];
        text[i] = ch < 0x20 || ch > 0x7e ? '?' : (char)ch;
    }
    text[n] = '\0';
    quote_add(q, text);
}

/* Read until one of the ends appears (after a "<stream:error" the stream is over). The
 * index of the end found (its end offset in *stop), or -1 after fail(). */
static int xmpp_until(struct dlg *d, const char *const *ends, size_t nends, size_t *stop,
                      const char *what)
{
    for (;;) {
        const char *err = find(d->buf, d->len, "<stream:error");
        if (err != NULL && (find(err, d->len - (size_t)(err - d->buf), "</stream:error>") ||
                            find(err, d->len - (size_t)(err - d->buf), "/>"))) {
            struct quote q = {.len = 0};
            quote_xml(&q, err, d->len - (size_t)(err - d->buf));
            return fail(d, CLI_EXIT_HANDSHAKE, "the server ended the stream: \"%s\"", q.text);
        }
        for (size_t i = 0; i < nends; i++) {
            const char *e = find(d->buf, d->len, ends[i]);
            if (e != NULL) {
                *stop = (size_t)(e - d->buf) + strlen(ends[i]);
                return (int)i;
            }
        }
        if (fill(d, what) < 0)
            return -1;
    }
}

/* host as an XML attribute value between single quotes. */
static void xml_attr(const char *host, char *out, size_t len)
{
    size_t used = 0;
    for (const char *p = host; *p && used + 7 < len; p++) {
        const char *rep = *p == '\'' ? "&apos;" : *p == '<' ? "&lt;" : *p == '&' ? "&amp;"
                          : *p == '>' ? "&gt;" : *p == '"' ? "&quot;" : NULL;
        if (rep != NULL) {
            memcpy(out + used, rep, strlen(rep));
            used += strlen(rep);
        } else {
            out[used++] = *p;
        }
    }
    out[used] = '\0';
}

static int xmpp(struct dlg *d, const char *host)
{
    char to[512], open[768];
    xml_attr(host != NULL ? host : "", to, sizeof(to));
    snprintf(open, sizeof(open),
             "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
             "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>", to);
    static const char *const features_end[] = {"</stream:features>", "<stream:features/>"};
    size_t stop = 0; /* (set by xmpp_until(); zeroed for -O3's flow analysis) */
    if (send_cmd(d, open) < 0 ||
        xmpp_until(d, features_end, 2, &stop, "stream features") < 0)
        return -1;
    const char *start = find(d->buf, stop, "<stream:features");
    size_t off = start != NULL ? (size_t)(start - d->buf) : 0;
    int offered = find(d->buf + off, stop - off, "<starttls") != NULL &&
                  find(d->buf + off, stop - off, "urn:ietf:params:xml:ns:xmpp-tls") != NULL;
    if (!offered) {
        struct quote q = {.len = 0};
        quote_xml(&q, d->buf + off, stop - off);
        return fail(d, CLI_EXIT_HANDSHAKE, "the server does not offer STARTTLS: \"%s\"",
                    q.text);
    }
    consume(d, stop);
    static const char *const answers[] = {"<proceed", "<failure"};
    int which;
    if (send_cmd(d, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>") < 0 ||
        (which = xmpp_until(d, answers, 2, &stop, "reply to starttls")) < 0)
        return -1;
    /* The element's end: "/>" or its closing tag. */
    static const char *const proceed_end[] = {"/>", "</proceed>"};
    static const char *const failure_end[] = {"/>", "</failure>"};
    size_t at = stop - strlen(answers[which]), end = 0;
    consume(d, at);
    if (xmpp_until(d, which == 0 ? proceed_end : failure_end, 2, &end, "reply to starttls") < 0)
        return -1;
    if (which == 1) {
        struct quote q = {.len = 0};
        quote_xml(&q, d->buf, end);
        return fail(d, CLI_EXIT_HANDSHAKE, "the server refused STARTTLS: \"%s\"", q.text);
    }
    consume(d, end);
    return agreed(d);
}

/* ---- PostgreSQL (protocol 3, 53.2.10 SSL Session Encryption) ---- */

static int postgres(struct dlg *d)
{
    /* SSLRequest: length 8, then the code 80877103 (1234 << 16 | 5679). */
    static const char ssl_request[8] = {0, 0, 0, 8, 0x04, (char)0xd2, 0x16, 0x2f};
    if (send_text(d, ssl_request, sizeof(ssl_request), "SSLRequest") < 0 ||
        fill(d, "reply to SSLRequest") < 0)
        return -1;
    char c = d->buf[0];
    if (c == 'S') {
        consume(d, 1);
        return agreed(d);
    }
    if (c == 'N')
        return fail(d, CLI_EXIT_HANDSHAKE, "the server refused SSL: it answered \"N\" (its "
                    "ssl setting is off)");
    if (c == 'E') { /* an ErrorResponse: quote its text fields */
        struct quote q = {.len = 0};
        quote_xml(&q, d->buf + 1, d->len - 1);
        return fail(d, CLI_EXIT_HANDSHAKE, "the server refused SSL: \"%s\"", q.text);
    }
    return fail(d, CLI_EXIT_HANDSHAKE, "not a PostgreSQL server: it answered byte 0x%02x to "
                "SSLRequest", (unsigned char)c);
}

int starttls_run(int fd, enum starttls_proto proto, const char *host, int64_t deadline,
                 char *why, size_t whylen)
{
    static struct dlg zero;
    struct dlg d = zero;
    d.fd = fd;
    d.deadline = deadline;
    d.why = why;
    d.whylen = whylen;
    if (whylen > 0)
        why[0] = '\0';
    int rc;
    switch (proto) {
    case STARTTLS_SMTP:
        rc = smtp(&d);
        break;
    case STARTTLS_IMAP:
        rc = imap(&d);
        break;
    case STARTTLS_POP3:
        rc = pop3(&d);
        break;
    case STARTTLS_FTP:
        rc = ftp(&d);
        break;
    case STARTTLS_XMPP:
        rc = xmpp(&d, host);
        break;
    case STARTTLS_POSTGRES:
        rc = postgres(&d);
        break;
    default:
        fail(&d, CLI_EXIT_USAGE, "unknown protocol");
        return CLI_EXIT_USAGE;
    }
    return rc == 0 ? 0 : d.rc;
}
