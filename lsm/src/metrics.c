/*
 * metrics.c — Prometheus text for lsm_stats; see metrics.h for the naming.
 *
 * The metric list is a table over lsm_stats field offsets, so adding a field
 * to lsm_stats means adding one row here (test_metrics.c checks that every
 * field is rendered).
 */
#include "metrics.h"
#include "status.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum metric_kind { COUNTER_U64, GAUGE_U64, GAUGE_F64 } metric_kind;

typedef struct metric_def {
    const char *field;  /* lsm_stats field name = metric name after flowdb_ */
    metric_kind kind;
    size_t offset;
    const char *help;
} metric_def;

#define COUNTER(f, help) { #f, COUNTER_U64, offsetof(lsm_stats, f), help }
#define GAUGE(f, help) { #f, GAUGE_U64, offsetof(lsm_stats, f), help }
#define GAUGE_D(f, help) { #f, GAUGE_F64, offsetof(lsm_stats, f), help }

static const metric_def metric_defs[] = {
    COUNTER(records_written, "Records written (puts and deletes)."),
    COUNTER(bytes_written, "Bytes of keys and values written."),
    COUNTER(records_read, "Records returned by gets and scans."),
    COUNTER(bytes_read, "Bytes of keys and values returned."),
    COUNTER(flushes, "Memtables flushed to SSTables."),
    COUNTER(compactions, "Compactions completed."),
    COUNTER(gc_runs, "TTL garbage collection runs."),
    COUNTER(records_purged, "Records removed by garbage collection."),
    GAUGE(memtable_records, "Records in memtables (active and frozen)."),
    GAUGE(memtable_bytes, "Key and value bytes in memtables (active and frozen)."),
    GAUGE(frozen_memtables, "Frozen memtables waiting to be flushed."),
    GAUGE(table_count, "Live SSTables."),
    GAUGE(table_bytes, "Bytes of live SSTables."),
    COUNTER(wal_bytes, "Bytes appended to the write-ahead log."),
    GAUGE(wal_records_dropped, "WAL records dropped as corrupt at the last recovery."),
    COUNTER(cache_hits, "Block cache hits."),
    COUNTER(cache_misses, "Block cache misses."),
    GAUGE_D(cache_hit_rate, "Block cache hits / (hits + misses); 0 if none."),
    COUNTER(raw_bytes_flushed, "Uncompressed bytes written by flushes."),
    COUNTER(sst_bytes_flushed, "SSTable bytes written by flushes."),
    GAUGE_D(compression_ratio, "Raw / stored bytes of flushed data; 0 if none."),
    COUNTER(write_stalls, "Writes that waited for memtable space."),
    COUNTER(ingests, "Large batches written straight to a table instead of a memtable."),
    COUNTER(ingests_streamed, "Of the ingested batches, those whose table was written while the transaction still wrote."),
    GAUGE(last_seq, "Last assigned sequence number."),
};

typedef struct latency_def {
    const char *field;
    size_t offset;
    const char *help;
} latency_def;

static const latency_def latency_defs[] = {
    { "write_latency", offsetof(lsm_stats, write_latency), "Write batch latency in microseconds." },
    { "read_latency", offsetof(lsm_stats, read_latency), "Point read latency in microseconds." },
    { "flush_latency", offsetof(lsm_stats, flush_latency), "Memtable flush latency in microseconds." },
};

/* A growing text buffer; `failed` sticks after the first allocation error. */
typedef struct text_buf {
    char *data;
    size_t len, cap;
    bool failed;
} text_buf;

static bool buf_reserve(text_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return false;
    b->data = p;
    b->cap = cap;
    return true;
}

static void buf_printf(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(text_buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t) n)) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t) n;
}

/* Prometheus float syntax: NaN / +Inf / -Inf, else the shorter of %.15g and
 * %.17g that reads back as exactly v. */
static void put_double(text_buf *b, double v)
{
    if (isnan(v)) {
        buf_printf(b, "NaN");
    } else if (isinf(v)) {
        buf_printf(b, v > 0 ? "+Inf" : "-Inf");
    } else {
        char s[32];
        snprintf(s, sizeof s, "%.15g", v);
        if (strtod(s, NULL) != v)
            snprintf(s, sizeof s, "%.17g", v);
        buf_printf(b, "%s", s);
    }
}

static void put_family_header(text_buf *b, const char *name, const char *help, const char *type)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_metric(text_buf *b, const lsm_stats *st, const metric_def *m)
{
    const char *base = (const char *) st + m->offset;
    char name[128];
    snprintf(name, sizeof name, "flowdb_%s%s", m->field, m->kind == COUNTER_U64 ? "_total" : "");
    put_family_header(b, name, m->help, m->kind == COUNTER_U64 ? "counter" : "gauge");
    if (m->kind == GAUGE_F64) {
        double v;
        memcpy(&v, base, sizeof v);
        buf_printf(b, "%s ", name);
        put_double(b, v);
        buf_printf(b, "\n");
    } else {
        uint64_t v;
        memcpy(&v, base, sizeof v);
        buf_printf(b, "%s %" PRIu64 "\n", name, v);
    }
}

static void put_latency(text_buf *b, const lsm_stats *st, const latency_def *l)
{
    lsm_latency lat;
    memcpy(&lat, (const char *) st + l->offset, sizeof lat);
    char name[128];
    snprintf(name, sizeof name, "flowdb_%s_us", l->field);
    put_family_header(b, name, l->help, "summary");
    const struct { const char *q; double v; } qs[] = {
        { "0.5", lat.p50_us }, { "0.9", lat.p90_us }, { "0.99", lat.p99_us },
    };
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        buf_printf(b, "%s{quantile=\"%s\"} ", name, qs[i].q);
        put_double(b, qs[i].v);
        buf_printf(b, "\n");
    }
    buf_printf(b, "%s_count %" PRIu64 "\n", name, lat.count);
}

lsm_status metrics_format(const lsm_stats *st, char **out)
{
    if (st == NULL || out == NULL)
        return lsm_fail(LSM_INVALID, "metrics_format: NULL %s", st == NULL ? "stats" : "out");
    *out = NULL;
    text_buf b = { 0 };
    for (size_t i = 0; i < sizeof metric_defs / sizeof metric_defs[0]; i++)
        put_metric(&b, st, &metric_defs[i]);
    for (size_t i = 0; i < sizeof latency_defs / sizeof latency_defs[0]; i++)
        put_latency(&b, st, &latency_defs[i]);
    if (b.failed) {
        free(b.data);
        return lsm_fail(LSM_NO_MEMORY, "metrics_format: out of memory after %zu bytes", b.len);
    }
    *out = b.data;
    return LSM_OK;
}
