/* SPDX-License-Identifier: MIT */
/* The engine's workers: set-up, the epoll loop, accepting (with a pause when out of
 * descriptors) and the periodic sweep that enforces deadlines and the stop sequence. */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

static int epoll_add(int epfd, int fd, uint32_t events, void *ptr)
{
    struct epoll_event ev = {.events = events, .data.ptr = ptr};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

void tlskit__worker_cleanup(struct tlskit__worker *w)
{
    tlskit__udp_cleanup(w);
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->wake.fd >= 0)
        close(w->wake.fd);
    tlskit_listener_free(w->l);
    w->l = NULL;
    tlskit_config_free(w->cfg);
    w->cfg = NULL;
    w->epfd = w->wake.fd = -1;
}

static void listen_enable(struct tlskit__worker *w, int on)
{
    size_t n = 0;
    const int *fds = tlskit_listener_fds(w->l, &n);
    for (size_t i = 0; i < n; i++) {
        if (on)
            epoll_add(w->epfd, fds[i], EPOLLIN, &w->lsrc[i]);
        else
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, fds[i], NULL);
    }
    w->listening = on;
}

/* Sockets given to the engine (tlskit_engine_adopt_fds): every worker accepts from its
 * own duplicates of them, so that freeing a worker's listener never closes another's. */
static int adopt_dups(struct tlskit__worker *w)
{
    tlskit_engine *e = w->e;
    int dups[TK_MAX_LISTEN];
    size_t n = 0;
    for (; n < e->nadopt && n < TK_MAX_LISTEN; n++) {
        if ((dups[n] = e->adopt_fds[n] < 0 ? -1 : fcntl(e->adopt_fds[n], F_DUPFD_CLOEXEC, 0)) < 0) {
            tlskit__err_set_errno(&e->err, TLSKIT_E_LISTEN, e->adopt_fds[n] < 0 ? EBADF : errno,
                                  "listen on given socket fd %d", e->adopt_fds[n]);
            break;
        }
    }
    int rc = n == e->nadopt ? tlskit__listener_adopt(w->l, dups, n) : -1;
    if (rc != 0)
        for (size_t i = 0; i < n; i++)
            close(dups[i]);
    return rc;
}

/* The worker running on this thread: tlskit_engine_connect() with no connection beside
 * finds its worker here (engine_connect.c). */
static _Thread_local struct tlskit__worker *self;

struct tlskit__worker *tlskit__worker_self(void)
{
    return self;
}

int tlskit__worker_init_base(tlskit_engine *e, struct tlskit__worker *w)
{
    w->e = e;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wake.kind = KIND_WAKE;
    w->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->inbox.wake_fd = w->wake.fd;
    if (w->epfd < 0 || w->wake.fd < 0) {
        tlskit__err_set_errno(&e->err, TLSKIT_E_IO, errno, "engine: epoll/eventfd");
        return -1;
    }
    if (epoll_add(w->epfd, w->wake.fd, EPOLLIN, &w->wake) != 0) {
        tlskit__err_set_errno(&e->err, TLSKIT_E_IO, errno, "engine: epoll_ctl");
        return -1;
    }
    return 0;
}

int tlskit__worker_init(tlskit_engine *e, struct tlskit__worker *w, const char *host,
                        const char *port, int backlog, int first)
{
    if (tlskit__worker_init_base(e, w) != 0)
        return -1;
    if (!(w->l = tlskit_listener_new(e->cfg))) {
        tlskit__err_set(&e->err, TLSKIT_E_NOMEM, "engine: out of memory");
        return -1;
    }
    int how = (first ? TLSKIT__REUSEPORT_FIRST : TLSKIT__REUSEPORT_JOIN) |
              (e->plain ? TLSKIT__LISTEN_PLAIN : 0);
    if ((e->adopt_fds ? adopt_dups(w) : tlskit__listener_listen(w->l, host, port, backlog,
                                                                  how)) != 0) {
        tlskit__err_set(&e->err, tlskit_listener_error_code(w->l), "%s",
                        tlskit_listener_error(w->l));
        return -1;
    }
    size_t n = 0;
    const int *fds = tlskit_listener_fds(w->l, &n);
    for (size_t i = 0; i < n; i++)
        w->lsrc[i] = (struct tlskit__evsrc){.kind = KIND_LISTEN, .fd = fds[i]};
    if (e->cfg->dtls && tlskit__udp_init(w) != 0) {
        tlskit__err_set(&e->err, TLSKIT_E_NOMEM, "engine: out of memory");
        return -1;
    }
    return 0;
}

/* Out of descriptors: the listen socket stays readable, so polling it again now would
 * spin. Stop listening for a moment; clients wait in the backlog and are served once
 * descriptors are free again. Reported once per streak, and at most once a second: a
 * descriptor count that hovers at the limit must not flood the log. */
static void accept_pause(struct tlskit__worker *w, int why)
{
    tlskit_engine *e = w->e;
    tlskit__count(&w->ctr.accept_errors, 1);
    listen_enable(w, 0);
    int64_t now = tlskit__now_ms(), last = atomic_load(&e->accept_reported_ms);
    w->listen_resume_at = now + TK_ACCEPT_PAUSE_MS;
    if (e->h.on_event && now - last >= TK_ACCEPT_REPORT_MS &&
        atomic_compare_exchange_strong(&e->accept_reported_ms, &last, now) &&
        atomic_exchange(&e->accept_failing, 1) == 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "accept: %s: not accepting for %d ms at a time until it "
                 "succeeds (clients wait in the backlog)", strerror(why), TK_ACCEPT_PAUSE_MS);
        e->h.on_event(TLSKIT_E_IO, msg, e->h.arg);
    }
}

/* A client over max_conns: a fatal internal_error alert (tlskit__send_refusal()), then a
 * lingering close, so that the ClientHello it sent does not turn our close into a reset.
 * Reported at most once a second, with the count of the refusals in between. */
static void refuse_full(struct tlskit__worker *w, int fd, const struct sockaddr_storage *ss)
{
    tlskit_engine *e = w->e;
    tlskit__count(&w->ctr.limit_rejections, 1);
    tlskit__send_refusal(fd);
    tlskit__linger_start(w, fd);

    uint64_t missed = atomic_fetch_add(&e->refused_unreported, 1) + 1;
    int64_t now = tlskit__now_ms(), last = atomic_load(&e->refuse_reported_ms);
    if (!e->h.on_event || now - last < TK_REFUSE_REPORT_MS ||
        !atomic_compare_exchange_strong(&e->refuse_reported_ms, &last, now))
        return;
    missed = atomic_exchange(&e->refused_unreported, 0);
    char peer[TK_ADDRLEN], more[64] = "", msg[256];
    tlskit__format_addr((const struct sockaddr *)ss, peer, sizeof(peer));
    if (missed > 1)
        snprintf(more, sizeof(more), "; %llu refused since the last report",
                 (unsigned long long)missed);
    snprintf(msg, sizeof(msg), "conn %s refused: too many connections (max_conns %d; an "
             "internal_error alert was sent)%s", peer, e->max_conns, more);
    e->h.on_event(TLSKIT_E_LIMIT, msg, e->h.arg);
}

static void accept_ready(struct tlskit__worker *w, int lfd)
{
    tlskit_engine *e = w->e;
    for (int i = 0; i < TK_ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        int why;
        int fd = tlskit__accept(lfd, &ss, &why);
        if (fd < 0) {
            if (tlskit__accept_out_of_fds(why))
                accept_pause(w, why);
            return; /* none left (another worker may have taken it) */
        }
        tlskit__count(&w->ctr.accepted, 1);
        if (atomic_load_explicit(&e->accept_failing, memory_order_relaxed) &&
            atomic_exchange(&e->accept_failing, 0) == 1 && e->h.on_event)
            e->h.on_event(TLSKIT_E_NONE, "accepting connections again", e->h.arg);
        if (e->max_conns && atomic_load(&e->open) >= e->max_conns) {
            refuse_full(w, fd, &ss);
            continue;
        }
        struct tlskit__err err = {0};
        tlskit_conn *c = e->plain ? tlskit__conn_plain_new(tlskit__worker_config(w), fd,
                                                           (struct sockaddr *)&ss, &err)
                                  : tlskit__conn_accepted(tlskit__worker_config(w), fd,
                                                          (struct sockaddr *)&ss, &err);
        tlskit__err_free(&err);
        if (c && tlskit__proxy_arm(c, &e->proxy, (struct sockaddr *)&ss) != 0) {
            tlskit_conn_free(c);
            c = NULL;
        }
        if (!c) {
            tlskit__count(&w->ctr.accept_errors, 1);
            continue;
        }
        tlskit__econn_start(w, c);
    }
}

/* Deadlines, accept pauses and the stop sequence. */
static void sweep(struct tlskit__worker *w, int64_t now)
{
    tlskit_engine *e = w->e;
    const int stopping = atomic_load(&e->stopping);
    const int64_t drain_at = atomic_load(&e->drain_deadline);
    if (w->listen_resume_at && now >= w->listen_resume_at && !stopping) {
        w->listen_resume_at = 0;
        listen_enable(w, 1);
    }
    const int final_pass = stopping && now >= drain_at && !w->final_pass_done;
    if (final_pass)
        w->final_pass_done = 1;
    if (w->udp)
        tlskit__udp_sweep(w);
    struct tlskit__econn *next;
    for (struct tlskit__econn *ec = w->conns; ec; ec = next) {
        next = ec->next;
        tlskit__econn_sweep(ec, now, final_pass, stopping, drain_at);
    }
    tlskit__linger_sweep(w, now, 0);
}

/* tlskit_engine_set_on_quiet(): call the hook once the worker's connection changes have
 * stopped for a moment after enough of them (never under steady load). */
static void quiet_check(struct tlskit__worker *w, int64_t now)
{
    tlskit_engine *e = w->e;
    if (!e->on_quiet)
        return;
    uint64_t seen = atomic_load_explicit(&w->ctr.accepted, memory_order_relaxed) +
                    atomic_load_explicit(&w->ctr.hs_ok, memory_order_relaxed) + w->ended;
    if (seen != w->quiet_seen) {
        w->quiet_seen = seen;
        w->quiet_since = now;
    } else if (seen - w->quiet_base >= TLSKIT_ENGINE_QUIET_CHANGES &&
               now - w->quiet_since >= TLSKIT_ENGINE_QUIET_MS) {
        w->quiet_base = seen;
        e->on_quiet(e->quiet_arg);
    }
}

/* Stopping: refuse new clients at once. A UDP socket stays: it carries the open
 * associations' datagrams (engine_udp.c refuses new peers while stopping). */
static void stop_listening(struct tlskit__worker *w)
{
    if (w->udp)
        return;
    listen_enable(w, 0);
    w->listen_resume_at = 0;
    tlskit_listener_free(w->l);
    w->l = NULL;
}

/* tlskit_engine_set_on_worker(): the application's turn on this worker; what it did to
 * its connections (opened, wrote, closed) is carried out at once after it. */
static void worker_hook(struct tlskit__worker *w, int event)
{
    tlskit_engine *e = w->e;
    if (!e->on_worker)
        return;
    e->on_worker((int)(w - e->workers), event, e->worker_arg);
    tlskit__worker_run_kicks(w);
}

void *tlskit__worker_main(void *arg)
{
    struct tlskit__worker *w = arg;
    tlskit_engine *e = w->e;
    struct epoll_event evs[TK_EPOLL_EVENTS];
    int64_t next_sweep = tlskit__now_ms() + TK_SWEEP_MS;
    self = w;
    if (w->l)
        listen_enable(w, 1);
    worker_hook(w, TLSKIT_WORKER_START);
    for (;;) {
        int64_t now = tlskit__now_ms();
        int timeout = next_sweep > now ? (int)(next_sweep - now) : 0;
        int n = epoll_wait(w->epfd, evs, TK_EPOLL_EVENTS, timeout);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            struct tlskit__evsrc *src = evs[i].data.ptr;
            if (src->kind == KIND_WAKE) {
                uint64_t v;
                while (read(w->wake.fd, &v, sizeof(v)) > 0) {
                }
                if (w->resolver)
                    tlskit__dial_answers(w);
                if (atomic_load(&e->stopping) && w->l)
                    stop_listening(w);
            } else if (src->kind == KIND_LISTEN) {
                if (w->udp)
                    tlskit__udp_ready(w, src->fd);
                else if (w->listening)
                    accept_ready(w, src->fd);
            } else if (src->kind == KIND_LINGER) {
                tlskit__linger_event(w, src);
            } else {
                struct tlskit__econn *ec = (struct tlskit__econn *)(void *)src;
                ec->ev = evs[i].events;
                if (ec->ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                    tlskit__conn_readable(ec->conn);
                if (tlskit__econn_event(ec) == 0)
                    ec->ev = 0;
            }
        }
        tlskit__worker_run_kicks(w);
        now = tlskit__now_ms();
        if (now >= next_sweep) {
            sweep(w, now);
            tlskit__worker_run_kicks(w);
            worker_hook(w, TLSKIT_WORKER_TICK);
            quiet_check(w, now);
            next_sweep = now + TK_SWEEP_MS;
        }
        if (atomic_load(&e->stopping) && (!w->l || w->udp) && w->nconns == 0)
            break;
    }
    tlskit__linger_sweep(w, 0, 1);
    self = NULL;
    return NULL;
}
