/* SPDX-License-Identifier: MIT */
/* Run control. The workers (load.c, on the engine's threads) count; this thread only samples their counters,
 * decides when the window starts and ends, and samples the server's CPU and memory from
 * /proc when told its pids. */
#include "run.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <tlskit/tlskit.h>

#include "cli.h"
#include "procstat.h"

#define NS_PER_MS 1000000LL
#define POLL_MS 10               /* how often the main thread looks at the counters */
#define FAST_POLL_MS 1           /* bulk and --count: the end is a count, not a time */
#define PROGRESS_NS 1000000000LL /* one progress line a second */
/* A window in which only errors happen ends after this long: a run with --count or bulk
 * mode (ended by a count, not a time) against a port that refuses, or that does not
 * speak TLS, would otherwise retry for ever. */
#define NO_PROGRESS_S 10
/* rr and idle: how long opening the connections may go on without one more opening */
#define READY_WAIT_MS 60000
#define VERIFY_SLACK_MS 5000     /* idle --verify: on top of --timeout */
#define REQBUF_MIN 65536         /* also the bulk write size (load.c BULK_CHUNK) */
#define FD_SPARE 64              /* descriptors besides the connections */

static volatile sig_atomic_t got_stop, got_usr1;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        got_usr1 = 1;
    else
        got_stop = 1;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct snap {
    int64_t t_ns;
    uint64_t handshakes, resumed, requests, bytes_in, bytes_out, errors;
    int64_t client_cpu, server_cpu, server_sys;
};

struct run {
    const struct opts *o;
    struct bench_params p;
    struct bench_ctl ctl;
    struct worker *w;
    int nw;
    tlskit_engine *e;           /* runs the workers */
    int ninit;                  /* workers set up (to destroy) */
    unsigned char *reqbuf;      /* owned; p points at them */
    char *http_req;
    struct snap a, b;           /* the measured window's ends */
    struct bench_results *res;
};

#define SUM(r, field) sum_counter((r), offsetof(struct bench_counters, field))

static uint64_t sum_counter(const struct run *r, size_t off)
{
    uint64_t t = 0;
    for (int i = 0; i < r->nw; i++) {
        const atomic_uint_fast64_t *a =
            (const atomic_uint_fast64_t *)(const void *)((const char *)&r->w[i].ctr + off);
        t += atomic_load_explicit(a, memory_order_relaxed);
    }
    return t;
}

static void take_snap(struct run *r, struct snap *s)
{
    s->t_ns = cli_now_ns();
    s->handshakes = SUM(r, handshakes);
    s->resumed = SUM(r, resumed);
    s->requests = SUM(r, requests);
    s->bytes_in = SUM(r, bytes_in);
    s->bytes_out = SUM(r, bytes_out);
    s->errors = SUM(r, errors);
    s->client_cpu = procstat_self_cpu_ns();
    s->server_cpu = r->o->npids ? procstat_cpu_ns(r->o->pids, r->o->npids) : -1;
    s->server_sys = r->o->npids ? procstat_sys_ns(r->o->pids, r->o->npids) : -1;
}

/* What the mode counts (bench_mode_unit()). */
static uint64_t primary(enum bench_mode m, const struct snap *s)
{
    return m == MODE_RR ? s->requests : m == MODE_BULK ? s->bytes_in : s->handshakes;
}

static void progress_line(struct run *r, const struct snap *prev, const struct snap *now,
                          double since_start)
{
    enum bench_mode m = r->o->mode;
    if (r->o->quiet)
        return;
    double dt = (double)(now->t_ns - prev->t_ns) / 1e9;
    if (dt <= 0)
        return;
    double rate = (double)(primary(m, now) - primary(m, prev)) / dt;
    if (m == MODE_BULK)
        cli_msg("%5.1f s  %9.1f MB/s  errors %llu", since_start, rate / 1e6,
                (unsigned long long)now->errors);
    else
        cli_msg("%5.1f s  %9.1f %s/s  resumed %llu  errors %llu", since_start, rate,
                bench_mode_unit(m), (unsigned long long)(now->resumed - prev->resumed),
                (unsigned long long)now->errors);
}

/* Has the measured window, begun at r->a, reached its end? */
static int window_over(struct run *r, int64_t t)
{
    const struct opts *o = r->o;
    if (got_stop)
        return 1;
    if (o->duration_ms && (t - r->a.t_ns) / NS_PER_MS >= o->duration_ms)
        return 1;
    if (o->count) {
        uint64_t done = o->mode == MODE_RR ? SUM(r, requests) - r->a.requests
                                           : SUM(r, handshakes) - r->a.handshakes;
        if (done >= o->count)
            return 1;
    }
    return o->mode == MODE_BULK && SUM(r, done) >= (uint64_t)o->conns;
}

/* Wait for the measured window to end. */
static void measure(struct run *r)
{
    const struct opts *o = r->o;
    take_snap(r, &r->a);
    atomic_store(&r->ctl.measuring, 1);
    struct snap prev = r->a, cur, moved = r->a; /* moved: when a unit was last done */
    int64_t next_progress = r->a.t_ns + PROGRESS_NS;
    for (;;) {
        sleep_ms(o->mode == MODE_BULK || o->count ? FAST_POLL_MS : POLL_MS);
        int64_t t = cli_now_ns();
        if (window_over(r, t))
            break;
        if (t >= next_progress) {
            take_snap(r, &cur);
            progress_line(r, &prev, &cur, (double)(t - r->a.t_ns) / 1e9);
            prev = cur;
            next_progress += PROGRESS_NS;
            if (primary(o->mode, &cur) != primary(o->mode, &moved)) {
                moved = cur;
            } else if (cur.errors > moved.errors &&
                       cur.t_ns - moved.t_ns >= NO_PROGRESS_S * 1000000000LL) {
                cli_msg("stopping: no %s%s for %d s, only errors (%llu)",
                        o->mode == MODE_BULK ? "bytes came back" : bench_mode_unit(o->mode),
                        o->mode == MODE_BULK ? "" : " completed", NO_PROGRESS_S,
                        (unsigned long long)(cur.errors - moved.errors));
                break;
            }
        }
    }
    take_snap(r, &r->b);
    atomic_store(&r->ctl.measuring, 0);
}

/* Wait until every connection is open (or gave up): 0 when all are. Gives up when none
 * opened or gave up for READY_WAIT_MS (a slow machine may take minutes for many). */
static int wait_ready(struct run *r, const char *what)
{
    uint64_t want = (uint64_t)r->o->conns, last = 0;
    int64_t start = cli_now_ns(), next = start + PROGRESS_NS, moved = start;
    for (;;) {
        uint64_t ready = SUM(r, ready), gave = SUM(r, gave_up);
        if (ready + gave >= want)
            return ready >= want ? 0 : -1;
        int64_t t = cli_now_ns();
        if (ready + gave != last) {
            last = ready + gave;
            moved = t;
        }
        if (got_stop || (t - moved) / NS_PER_MS > READY_WAIT_MS)
            return -1;
        if (t >= next && !r->o->quiet) {
            cli_msg("%s: %llu of %llu connections open, %llu errors", what,
                    (unsigned long long)ready, (unsigned long long)want,
                    (unsigned long long)SUM(r, errors));
            next += PROGRESS_NS;
        }
        sleep_ms(POLL_MS);
    }
}

/* Sleep until end_ns, or until SIGINT/SIGTERM (or SIGUSR1, when usr1_ends) come. */
static void hold_until(int64_t end_ns, int usr1_ends)
{
    while (!got_stop && !(usr1_ends && got_usr1) && cli_now_ns() < end_ns)
        sleep_ms(POLL_MS);
}

/* idle --verify: one exchange on every connection still held. */
static void verify_round(struct run *r)
{
    struct bench_results *res = r->res;
    /* Connections still being set up when the wait gave up may have opened since. */
    res->ready = SUM(r, ready);
    uint64_t held = res->ready - res->dropped;
    atomic_store(&r->ctl.verify, 1);
    int64_t end = cli_now_ns() + (r->o->timeout_ms + VERIFY_SLACK_MS) * NS_PER_MS;
    while (!got_stop && cli_now_ns() < end &&
           SUM(r, verified) + SUM(r, verify_failed) + (SUM(r, dropped) - res->dropped) < held)
        sleep_ms(POLL_MS);
    res->verified = SUM(r, verified);
    res->verify_failed = held > res->verified ? held - res->verified : 0;
}

static void run_idle(struct run *r)
{
    const struct opts *o = r->o;
    struct bench_results *res = r->res;
    if (wait_ready(r, "idle") != 0)
        cli_msg("idle: only %llu of %d connections could be opened",
                (unsigned long long)SUM(r, ready), o->conns);
    res->ready = SUM(r, ready);
    cli_msg("idle: %llu connections open", (unsigned long long)res->ready);
    sleep_ms((int)o->settle_ms); /* let the server free its handshake buffers first */
    if (o->npids)
        res->rss_after = procstat_rss_kib(o->pids, o->npids);
    take_snap(r, &r->a);
    hold_until(cli_now_ns() + o->duration_ms * NS_PER_MS, 1);
    res->dropped = SUM(r, dropped);
    if (o->verify && !got_stop)
        verify_round(r);
    res->dropped = SUM(r, dropped);
    res->gave_up = SUM(r, gave_up);
    take_snap(r, &r->b);
}

static void run_timed(struct run *r)
{
    const struct opts *o = r->o;
    if (o->mode == MODE_RR && wait_ready(r, "rr") != 0)
        cli_msg("rr: only %llu of %d connections could be opened",
                (unsigned long long)SUM(r, ready), o->conns);
    hold_until(cli_now_ns() + o->warmup_ms * NS_PER_MS, 0);
    measure(r);
}

/* ---- set-up ---- */

static void raise_nofile(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < (rlim_t)want + FD_SPARE)
        cli_msg("warning: %d connections need about %d file descriptors; the limit is %llu",
                want, want + FD_SPARE, (unsigned long long)rl.rlim_cur);
}

static tlskit_config *make_config(const struct opts *o)
{
    tlskit_config *cfg = tlskit_config_new();
    if (!cfg) {
        cli_msg("out of memory");
        return NULL;
    }
    if (o->ca) {
        if (tlskit_config_add_ca_file(cfg, o->ca) != 0)
            goto fail;
    } else {
        tlskit_config_insecure_noverifycert(cfg);
        tlskit_config_insecure_noverifyname(cfg);
    }
    if (o->tls && tlskit_config_set_protocols(cfg, o->tls, o->tls) != 0)
        goto fail;
    return cfg;
fail:
    cli_msg("%s", tlskit_config_error(cfg));
    tlskit_config_free(cfg);
    return NULL;
}

/* The target's first address, once, as a numeric host: the engine resolves what it is
 * given at each connect, and a name would be looked up again every time. */
static int resolve(const struct opts *o, struct bench_params *p)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(o->host, o->port, &hints, &res);
    if (rc != 0) {
        cli_msg("%s:%s: %s", o->host, o->port, gai_strerror(rc));
        return -1;
    }
    rc = getnameinfo(res->ai_addr, res->ai_addrlen, p->host, sizeof(p->host), NULL, 0,
                     NI_NUMERICHOST);
    freeaddrinfo(res);
    if (rc != 0) {
        cli_msg("%s:%s: %s", o->host, o->port, gai_strerror(rc));
        return -1;
    }
    p->port = o->port;
    return 0;
}

static char *make_http_request(const struct opts *o, size_t *len)
{
    const char *host = o->servername ? o->servername : o->host;
    int v6 = strchr(host, ':') != NULL;
    int default_port = strcmp(o->port, "443") == 0;
    char *req = NULL;
    int n = asprintf(&req,
                     "GET %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\nUser-Agent: tlsbench/%s\r\n"
                     "Accept: */*\r\n%s\r\n",
                     o->path ? o->path : "/", v6 ? "[" : "", host, v6 ? "]" : "",
                     default_port ? "" : ":", default_port ? "" : o->port,
                     TLSKIT_VERSION_STRING, o->server_closes ? "Connection: close\r\n" : "");
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return req;
}

/* The generated request bytes (echo) and the GET request (HTTP). 0, or -1 (printed). */
static int make_requests(struct run *r)
{
    const struct opts *o = r->o;
    size_t bufsize = o->request > REQBUF_MIN ? (size_t)o->request : REQBUF_MIN;
    if (!(r->reqbuf = malloc(bufsize))) {
        cli_msg("out of memory");
        return -1;
    }
    for (size_t i = 0; i < bufsize; i++)
        r->reqbuf[i] = (unsigned char)('a' + i % 26);
    r->p.reqbuf = r->reqbuf;
    if (o->http && !(r->http_req = make_http_request(o, &r->p.http_req_len))) {
        cli_msg("out of memory");
        return -1;
    }
    r->p.http_req = r->http_req;
    return 0;
}

static int setup(struct run *r)
{
    const struct opts *o = r->o;
    struct bench_params *p = &r->p;
    p->mode = o->mode;
    p->resume = o->resume;
    p->request = (size_t)o->request;
    p->bulk_bytes = o->bytes;
    p->op_timeout_ms = o->timeout_ms;
    p->inflight = o->inflight;
    /* An address is checked against the certificate's IP SANs; the library sends no SNI
     * for it (RFC 6066 section 3). */
    p->servername = o->servername ? o->servername : o->host;
    if (resolve(o, p) != 0 || make_requests(r) != 0 || !(p->cfg = make_config(o)))
        return -1;
    p->set_servername = strcmp(p->servername, p->host) != 0;
    raise_nofile(o->conns);
    r->nw = o->threads;
    r->w = calloc((size_t)r->nw, sizeof(*r->w));
    if (!r->w) {
        cli_msg("out of memory");
        return -1;
    }
    for (; r->ninit < r->nw; r->ninit++) {
        int i = r->ninit, n = o->conns / r->nw + (i < o->conns % r->nw);
        if (worker_init(&r->w[i], p, &r->ctl, i, n) != 0)
            return -1;
    }
    return (r->e = load_engine(r->w, r->nw, p->cfg)) ? 0 : -1;
}

/* ---- start, stop, results ---- */

/* Start the engine's workers (they block every signal, so that signals come to this
 * thread). 1 when they run. */
static int start_workers(struct run *r)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    if (r->o->mode == MODE_IDLE && r->o->npids)
        r->res->rss_before = procstat_rss_kib(r->o->pids, r->o->npids);
    return load_start(r->e) == 0;
}

/* The first protocol details and the first error any worker saw, and every latency. */
static void merge_workers(struct run *r)
{
    struct bench_results *res = r->res;
    for (int i = 0; i < r->nw; i++) {
        struct worker *w = &r->w[i];
        hist_merge(&res->lat, &w->lat);
        if (!res->proto[0] && w->proto[0]) {
            snprintf(res->proto, sizeof(res->proto), "%s", w->proto);
            snprintf(res->cipher, sizeof(res->cipher), "%s", w->cipher);
            snprintf(res->group, sizeof(res->group), "%s", w->group);
        }
        if (!res->first_error[0] && w->first_error[0])
            snprintf(res->first_error, sizeof(res->first_error), "%s", w->first_error);
    }
}

/* The window's counts and rates, from its two snapshots. */
static void window_results(const struct run *r)
{
    struct bench_results *res = r->res;
    const struct snap *a = &r->a, *b = &r->b;
    const struct opts *o = r->o;
    res->threads = r->nw;
    res->elapsed_s = (double)(b->t_ns - a->t_ns) / 1e9;
    if (res->elapsed_s <= 0)
        res->elapsed_s = 1e-9;
    res->handshakes = b->handshakes - a->handshakes;
    res->resumed = b->resumed - a->resumed;
    res->requests = b->requests - a->requests;
    res->bytes_in = b->bytes_in - a->bytes_in;
    res->bytes_out = b->bytes_out - a->bytes_out;
    res->errors = b->errors - a->errors;
    res->ops = primary(o->mode, b) - primary(o->mode, a);
    res->rate = (double)res->ops / res->elapsed_s;
    res->client_cpu_s = (double)(b->client_cpu - a->client_cpu) / 1e9;
    res->have_server_cpu = a->server_cpu >= 0 && b->server_cpu >= 0;
    res->server_cpu_s = (double)(b->server_cpu - a->server_cpu) / 1e9;
    res->have_server_sys = a->server_sys >= 0 && b->server_sys >= 0;
    res->server_sys_s = (double)(b->server_sys - a->server_sys) / 1e9;
    if (a->server_cpu >= 0 && b->server_cpu > a->server_cpu)
        res->per_server_cpu = (double)res->ops / res->server_cpu_s;
    res->idle_ok = res->ready == (uint64_t)o->conns &&
                   (!o->verify || res->verified == (uint64_t)o->conns);
}

static void cleanup(struct run *r)
{
    tlskit_engine_free(r->e); /* closes what is still open */
    for (int i = 0; i < r->ninit; i++)
        worker_destroy(&r->w[i]);
    free(r->w);
    tlskit_config_free(r->p.cfg);
    free(r->http_req);
    free(r->reqbuf);
}

int bench_run(const struct opts *o, struct bench_results *res)
{
    struct run r = {.o = o, .res = res};
    memset(res, 0, sizeof(*res));
    res->rss_before = res->rss_after = res->rss_after_close = -1;
    if (setup(&r) != 0) {
        cleanup(&r);
        return -1;
    }
    res->started = start_workers(&r);
    if (res->started && o->mode == MODE_IDLE)
        run_idle(&r);
    else if (res->started)
        run_timed(&r);
    atomic_store(&r.ctl.stop, 1);
    load_stop(r.e); /* the workers close their connections and end */
    merge_workers(&r);
    window_results(&r);
    cleanup(&r); /* closes every connection */
    if (o->mode == MODE_IDLE && o->after_close_ms >= 0 && o->npids && res->started &&
        !got_stop) {
        hold_until(cli_now_ns() + o->after_close_ms * NS_PER_MS, 0);
        res->rss_after_close = procstat_rss_kib(o->pids, o->npids);
    }
    return 0;
}
