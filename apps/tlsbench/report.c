/* SPDX-License-Identifier: MIT */
#include "report.h"

#include <stdio.h>
#include <string.h>

#ifndef TLSBENCH_ALLOCATOR
#define TLSBENCH_ALLOCATOR "libc"
#endif

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static const char *json_bool(int v)
{
    return v ? "true" : "false";
}

static void json_str(const char *key, const char *v, int comma)
{
    printf("\"%s\":\"", key);
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    printf("\"%s", comma ? "," : "");
}

/* RSS grown per held connection; only when both samples and a connection exist. */
static int rss_per_conn(const struct bench_results *r, double *bytes)
{
    if (r->rss_before < 0 || r->rss_after < 0 || !r->ready)
        return 0;
    *bytes = (double)(r->rss_after - r->rss_before) * 1024.0 / (double)r->ready;
    return 1;
}

static void json_setup(const struct opts *o, const struct bench_results *r)
{
    json_str("tool", "tlsbench", 1);
    json_str("mode", bench_mode_name(o->mode), 1);
    int v6 = strchr(o->host, ':') != NULL;
    printf("\"target\":\"%s%s%s:%s\",", v6 ? "[" : "", o->host, v6 ? "]" : "", o->port);
    printf("\"threads\":%d,\"conns\":%d,\"resume\":%s,\"http\":%s,\"request_bytes\":%ld,",
           r->threads, o->conns, json_bool(o->resume), json_bool(o->http), o->request);
    if (o->http)
        json_str("path", o->path ? o->path : "/", 1);
    printf("\"tls\":{");
    json_str("protocol", r->proto, 1);
    json_str("cipher", r->cipher, 1);
    json_str("group", r->group, 0);
    printf("},");
}

static void json_counts(const struct opts *o, const struct bench_results *r)
{
    printf("\"duration_s\":%.6f,\"warmup_s\":%.3f,", r->elapsed_s,
           (double)o->warmup_ms / 1000.0);
    printf("\"handshakes\":%llu,\"resumed\":%llu,\"requests\":%llu,\"bytes_in\":%llu,"
           "\"bytes_out\":%llu,\"errors\":%llu,",
           (unsigned long long)r->handshakes, (unsigned long long)r->resumed,
           (unsigned long long)r->requests, (unsigned long long)r->bytes_in,
           (unsigned long long)r->bytes_out, (unsigned long long)r->errors);
    printf("\"unit\":\"%s\",\"rate\":%.3f,", bench_mode_unit(o->mode), r->rate);
    if (o->mode == MODE_BULK)
        printf("\"mb_per_s\":%.3f,", r->rate / 1e6);
    const struct hist *h = &r->lat;
    if (h->count)
        printf("\"latency_ms\":{\"count\":%llu,\"mean\":%.4f,\"p50\":%.4f,\"p90\":%.4f,"
               "\"p99\":%.4f,\"p999\":%.4f,\"max\":%.4f},",
               (unsigned long long)h->count, ms(h->sum_ns) / (double)h->count,
               ms(hist_quantile(h, 0.5)), ms(hist_quantile(h, 0.9)), ms(hist_quantile(h, 0.99)),
               ms(hist_quantile(h, 0.999)), ms(h->max_ns));
    printf("\"client_cpu_s\":%.6f,", r->client_cpu_s);
    if (r->ops && o->mode != MODE_BULK && o->mode != MODE_IDLE)
        printf("\"client_cpu_us_per_op\":%.3f,", r->client_cpu_s * 1e6 / (double)r->ops);
    if (r->have_server_cpu) {
        printf("\"server_cpu_s\":%.6f,", r->server_cpu_s);
        if (r->have_server_sys)
            printf("\"server_sys_s\":%.3f,", r->server_sys_s);
        if (r->per_server_cpu > 0)
            printf("\"per_server_cpu_s\":%.3f,", r->per_server_cpu);
    }
}

static void json_idle(const struct opts *o, const struct bench_results *r)
{
    printf("\"idle\":{\"wanted\":%d,\"open\":%llu,\"gave_up\":%llu,\"dropped\":%llu,", o->conns,
           (unsigned long long)r->ready, (unsigned long long)r->gave_up,
           (unsigned long long)r->dropped);
    if (o->verify)
        printf("\"verified\":%llu,\"verify_failed\":%llu,", (unsigned long long)r->verified,
               (unsigned long long)r->verify_failed);
    double per_conn;
    if (rss_per_conn(r, &per_conn))
        printf("\"server_rss_before_kib\":%lld,\"server_rss_after_kib\":%lld,"
               "\"server_rss_per_conn_bytes\":%.1f,",
               (long long)r->rss_before, (long long)r->rss_after, per_conn);
    if (r->rss_after_close >= 0 && r->rss_before > 0)
        printf("\"server_rss_after_close_kib\":%lld,\"after_close_ms\":%lld,"
               "\"server_rss_after_close_ratio\":%.3f,",
               (long long)r->rss_after_close, (long long)o->after_close_ms,
               (double)r->rss_after_close / (double)r->rss_before);
    printf("\"ok\":%s},", json_bool(r->idle_ok));
}

void report_json(const struct opts *o, const struct bench_results *r)
{
    printf("{");
    json_setup(o, r);
    json_counts(o, r);
    if (o->mode == MODE_IDLE)
        json_idle(o, r);
    json_str("allocator", TLSBENCH_ALLOCATOR, 1);
    json_str("first_error", r->first_error, 0);
    printf("}\n");
}

static void table_idle(const struct opts *o, const struct bench_results *r)
{
    printf("  connections open  %llu of %d  (gave up %llu, dropped while held %llu)\n",
           (unsigned long long)r->ready, o->conns, (unsigned long long)r->gave_up,
           (unsigned long long)r->dropped);
    if (o->verify)
        printf("  verified          %llu of %d answered\n", (unsigned long long)r->verified,
               o->conns);
    double per_conn;
    if (rss_per_conn(r, &per_conn))
        printf("  server RSS        %lld KiB -> %lld KiB: %.0f bytes per connection\n",
               (long long)r->rss_before, (long long)r->rss_after, per_conn);
    if (r->rss_after_close >= 0)
        printf("  after closing     %lld KiB %.1f s later (%.2fx the RSS before)\n",
               (long long)r->rss_after_close, (double)o->after_close_ms / 1000.0,
               r->rss_before > 0 ? (double)r->rss_after_close / (double)r->rss_before : 0.0);
}

/* The mode's own line: what was moved or counted, and how fast. */
static void table_counts(const struct opts *o, const struct bench_results *r)
{
    if (o->mode == MODE_IDLE) {
        table_idle(o, r);
        return;
    }
    if (o->mode == MODE_BULK) {
        printf("  received          %.1f MB  %.1f MB/s   (sent %.1f MB)\n",
               (double)r->bytes_in / 1e6, r->rate / 1e6, (double)r->bytes_out / 1e6);
        return;
    }
    printf("  %-17s %llu  %.1f/s", o->mode == MODE_RR ? "responses" : "handshakes",
           (unsigned long long)r->ops, r->rate);
    if (o->mode == MODE_RR && r->handshakes)
        printf("   (new connections %llu)", (unsigned long long)r->handshakes);
    if (r->handshakes && (o->resume || r->resumed))
        printf("   (resumed %.1f%%)", 100.0 * (double)r->resumed / (double)r->handshakes);
    printf("\n");
}

static void table_cpu(const struct opts *o, const struct bench_results *r)
{
    if (o->mode == MODE_IDLE)
        return;
    printf("  client CPU        %.3f s", r->client_cpu_s);
    if (r->ops && o->mode != MODE_BULK)
        printf("  (%.1f us per %s)", r->client_cpu_s * 1e6 / (double)r->ops,
               o->mode == MODE_RR ? "response" : "handshake");
    printf("\n");
    if (!r->have_server_cpu)
        return;
    printf("  server CPU        %.3f s  (%.0f%% of one core)", r->server_cpu_s,
           100.0 * r->server_cpu_s / r->elapsed_s);
    if (r->per_server_cpu > 0) {
        if (o->mode == MODE_BULK)
            printf("  %.1f MB per server CPU-second", r->per_server_cpu / 1e6);
        else
            printf("  %.1f %s per server CPU-second", r->per_server_cpu,
                   bench_mode_unit(o->mode));
    }
    printf("\n");
    if (r->have_server_sys && r->server_cpu_s > 0)
        printf("  of which kernel   %.2f s  (%.0f%%)\n", r->server_sys_s,
               100.0 * r->server_sys_s / r->server_cpu_s);
}

void report_table(const struct opts *o, const struct bench_results *r)
{
    printf("tlsbench %s -> %s:%s  (%s, %s, %s)\n", bench_mode_name(o->mode), o->host, o->port,
           r->proto[0] ? r->proto : "-", r->cipher[0] ? r->cipher : "-",
           r->group[0] ? r->group : "-");
    printf("  threads %d, connections %d, %s%s, measured %.3f s after %.2f s warm-up\n",
           r->threads, o->conns, o->http ? "HTTP GET " : "echo",
           o->http ? (o->path ? o->path : "/") : "", r->elapsed_s,
           (double)o->warmup_ms / 1000.0);
    table_counts(o, r);
    printf("  errors            %llu\n", (unsigned long long)r->errors);
    const struct hist *h = &r->lat;
    if (h->count)
        printf("  latency (ms)      p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%s)\n",
               ms(hist_quantile(h, 0.5)), ms(hist_quantile(h, 0.9)), ms(hist_quantile(h, 0.99)),
               ms(hist_quantile(h, 0.999)), ms(h->max_ns),
               o->mode == MODE_RR ? "request to whole response" : "connect to handshake done");
    table_cpu(o, r);
    if (r->first_error[0])
        printf("  first error       %s\n", r->first_error);
}
