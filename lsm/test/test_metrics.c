/*
 * test_metrics.c — metrics_format output parsed back as Prometheus text 0.0.4:
 * syntax, HELP/TYPE placement, one TYPE per family, families not interleaved,
 * and every lsm_stats field present with its exact value.
 */
#include "testutil.h"

#include <ctype.h>
#include <math.h>

#include "metrics.h"

#define MAX_FAMILIES 64
#define MAX_SAMPLES 128

typedef struct family {
    char name[128];
    char type[16];
    bool has_help, has_type, closed;
    int samples;
} family;

typedef struct sample {
    char name[128];
    char labels[128];  /* raw text between the braces, "" if none */
    char value[64];
} sample;

typedef struct exposition {
    family fam[MAX_FAMILIES];
    int nfam;
    sample smp[MAX_SAMPLES];
    int nsmp;
    int errors;
} exposition;

static bool parser_quiet;  /* set while the parser's own self-test runs */

static void syntax_error(exposition *x, int line, const char *what, const char *text)
{
    x->errors++;
    if (!parser_quiet)
        fprintf(stderr, "line %d: %s: %s\n", line, what, text);
}

static family *find_family(exposition *x, const char *name)
{
    for (int i = 0; i < x->nfam; i++)
        if (strcmp(x->fam[i].name, name) == 0)
            return &x->fam[i];
    return NULL;
}

static family *get_family(exposition *x, const char *name)
{
    family *f = find_family(x, name);
    if (f == NULL && x->nfam < MAX_FAMILIES) {
        f = &x->fam[x->nfam++];
        memset(f, 0, sizeof *f);
        snprintf(f->name, sizeof f->name, "%s", name);
    }
    return f;
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* ; returns the length of the name at s (0 if none). */
static size_t metric_name_len(const char *s)
{
    size_t n = 0;
    if (!(isalpha((unsigned char) s[0]) || s[0] == '_' || s[0] == ':'))
        return 0;
    while (isalnum((unsigned char) s[n]) || s[n] == '_' || s[n] == ':')
        n++;
    return n;
}

static bool valid_value(const char *v)
{
    if (!strcmp(v, "NaN") || !strcmp(v, "+Inf") || !strcmp(v, "-Inf"))
        return true;
    char *end;
    strtod(v, &end);
    return *v != '\0' && *end == '\0';
}

/* label="value" pairs, comma separated; values without escapes here. */
static bool valid_labels(const char *s)
{
    while (*s) {
        size_t n = metric_name_len(s);
        if (n == 0 || s[n] != '=' || s[n + 1] != '"')
            return false;
        const char *close = strchr(s + n + 2, '"');
        if (close == NULL)
            return false;
        s = close + 1;
        if (*s == ',')
            s++;
        else if (*s != '\0')
            return false;
    }
    return true;
}

/* The family a sample belongs to: its own name, or a summary's _count/_sum. */
static family *sample_family(exposition *x, const char *name)
{
    family *f = find_family(x, name);
    if (f != NULL)
        return f;
    static const char *const suffixes[] = { "_count", "_sum" };
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(name), k = strlen(suffixes[i]);
        if (n > k && strcmp(name + n - k, suffixes[i]) == 0) {
            char base[128];
            snprintf(base, sizeof base, "%.*s", (int) (n - k), name);
            f = find_family(x, base);
            if (f && (!strcmp(f->type, "summary") || !strcmp(f->type, "histogram")))
                return f;
        }
    }
    return NULL;
}

static void parse_comment(exposition *x, int ln, char *line, family **current)
{
    char kw[8], name[128];
    int used = 0;
    if (sscanf(line, "# %7s %127s %n", kw, name, &used) < 2 ||
        (strcmp(kw, "HELP") && strcmp(kw, "TYPE")))
        return;  /* an ordinary comment */
    if (metric_name_len(name) != strlen(name))
        syntax_error(x, ln, "bad metric name", line);
    family *f = get_family(x, name);
    if (f == NULL || f->closed || f->samples > 0)
        syntax_error(x, ln, "HELP/TYPE after the family's samples", line);
    if (f == NULL)
        return;
    if (*current && *current != f)
        (*current)->closed = true;
    *current = f;
    if (!strcmp(kw, "HELP")) {
        if (f->has_help)
            syntax_error(x, ln, "second HELP", line);
        if (line[used] == '\0')
            syntax_error(x, ln, "empty HELP", line);
        f->has_help = true;
        return;
    }
    if (f->has_type)
        syntax_error(x, ln, "second TYPE", line);
    f->has_type = true;
    snprintf(f->type, sizeof f->type, "%s", line + used);
    if (strcmp(f->type, "counter") && strcmp(f->type, "gauge") && strcmp(f->type, "summary") &&
        strcmp(f->type, "histogram") && strcmp(f->type, "untyped"))
        syntax_error(x, ln, "bad TYPE", line);
}

static void parse_sample(exposition *x, int ln, char *line, family **current)
{
    size_t n = metric_name_len(line);
    if (n == 0 || x->nsmp >= MAX_SAMPLES) {
        syntax_error(x, ln, "bad sample", line);
        return;
    }
    sample *s = &x->smp[x->nsmp++];
    snprintf(s->name, sizeof s->name, "%.*s", (int) n, line);
    char *p = line + n;
    s->labels[0] = '\0';
    if (*p == '{') {
        char *close = strchr(p, '}');
        if (close == NULL) {
            syntax_error(x, ln, "unclosed labels", line);
            return;
        }
        snprintf(s->labels, sizeof s->labels, "%.*s", (int) (close - p - 1), p + 1);
        if (!valid_labels(s->labels))
            syntax_error(x, ln, "bad labels", line);
        p = close + 1;
    }
    if (*p != ' ' || strchr(p + 1, ' ') != NULL)  /* exactly one value, no timestamp */
        syntax_error(x, ln, "expected ' value'", line);
    snprintf(s->value, sizeof s->value, "%s", p + 1);
    if (!valid_value(s->value))
        syntax_error(x, ln, "bad value", line);
    family *f = sample_family(x, s->name);
    if (f == NULL || !f->has_type || !f->has_help)
        syntax_error(x, ln, "sample without HELP and TYPE before it", line);
    else if (f != *current)
        syntax_error(x, ln, "sample outside its family's group", line);
    else
        f->samples++;
}

static void parse_exposition(exposition *x, char *text)
{
    memset(x, 0, sizeof *x);
    family *current = NULL;
    size_t len = strlen(text);
    if (len == 0 || text[len - 1] != '\n')
        syntax_error(x, 0, "text must end with a newline", "");
    int ln = 0;
    for (char *line = text; *line; ) {
        char *nl = strchr(line, '\n');
        if (nl == NULL)
            break;
        *nl = '\0';
        ln++;
        if (line[0] == '#')
            parse_comment(x, ln, line, &current);
        else if (line[0] == '\0')
            syntax_error(x, ln, "empty line", line);
        else
            parse_sample(x, ln, line, &current);
        line = nl + 1;
    }
    for (int i = 0; i < x->nfam; i++)
        if (x->fam[i].samples == 0)
            syntax_error(x, 0, "family without samples", x->fam[i].name);
}

static const sample *find_sample(const exposition *x, const char *name, const char *labels)
{
    const sample *found = NULL;
    for (int i = 0; i < x->nsmp; i++)
        if (!strcmp(x->smp[i].name, name) && !strcmp(x->smp[i].labels, labels)) {
            CHECK(found == NULL);  /* no duplicate series */
            found = &x->smp[i];
        }
    return found;
}

static void expect_u64(const exposition *x, const char *name, const char *labels,
                       const char *type, uint64_t want)
{
    const sample *s = find_sample(x, name, labels);
    CHECK(s != NULL);
    if (s == NULL) {
        fprintf(stderr, "missing %s{%s}\n", name, labels);
        return;
    }
    CHECK(strtoull(s->value, NULL, 10) == want);
    CHECK(strspn(s->value, "0123456789") == strlen(s->value));
    const family *f = sample_family((exposition *) x, name);
    CHECK(f != NULL && strcmp(f->type, type) == 0);
}

static void expect_f64(const exposition *x, const char *name, const char *labels,
                       const char *type, double want)
{
    const sample *s = find_sample(x, name, labels);
    CHECK(s != NULL);
    if (s == NULL) {
        fprintf(stderr, "missing %s{%s}\n", name, labels);
        return;
    }
    double got = strtod(s->value, NULL);
    CHECK(got == want || (isnan(got) && isnan(want)));
    const family *f = sample_family((exposition *) x, name);
    CHECK(f != NULL && strcmp(f->type, type) == 0);
}

/* Distinct values, some beyond 2^53, so a mix-up or lossy print shows. */
static void fill_stats(lsm_stats *st)
{
    memset(st, 0, sizeof *st);
    uint64_t v = 1000;
    uint64_t *u[] = {
        &st->records_written, &st->bytes_written, &st->records_read, &st->bytes_read,
        &st->flushes, &st->compactions, &st->gc_runs, &st->records_purged,
        &st->memtable_records, &st->memtable_bytes, &st->frozen_memtables, &st->table_count,
        &st->table_bytes, &st->wal_bytes, &st->wal_records_dropped, &st->cache_hits,
        &st->cache_misses, &st->raw_bytes_flushed, &st->sst_bytes_flushed, &st->write_stalls,
        &st->ingests, &st->ingests_streamed,
    };
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        *u[i] = v++;
    st->last_seq = UINT64_MAX - 7;
    st->bytes_written = (1ull << 60) + 3;
    st->cache_hit_rate = 0.8125;
    st->compression_ratio = 3.141592653589793;
    st->write_latency = (lsm_latency) { 12.5, 40.25, 1234.0625, 777 };
    st->read_latency = (lsm_latency) { 3.0, 9.75, 101.5, 88888 };
    st->flush_latency = (lsm_latency) { 1e6, 2.5e6, 1.0 / 3.0, 5 };
}

static void check_fields(const exposition *x, const lsm_stats *st)
{
    struct { const char *name; uint64_t v; } counters[] = {
        { "flowdb_records_written_total", st->records_written },
        { "flowdb_bytes_written_total", st->bytes_written },
        { "flowdb_records_read_total", st->records_read },
        { "flowdb_bytes_read_total", st->bytes_read },
        { "flowdb_flushes_total", st->flushes },
        { "flowdb_compactions_total", st->compactions },
        { "flowdb_gc_runs_total", st->gc_runs },
        { "flowdb_records_purged_total", st->records_purged },
        { "flowdb_cache_hits_total", st->cache_hits },
        { "flowdb_cache_misses_total", st->cache_misses },
        { "flowdb_raw_bytes_flushed_total", st->raw_bytes_flushed },
        { "flowdb_sst_bytes_flushed_total", st->sst_bytes_flushed },
        { "flowdb_write_stalls_total", st->write_stalls },
        { "flowdb_ingests_total", st->ingests },
        { "flowdb_ingests_streamed_total", st->ingests_streamed },
        { "flowdb_wal_bytes_total", st->wal_bytes },
    }, gauges[] = {
        { "flowdb_memtable_records", st->memtable_records },
        { "flowdb_memtable_bytes", st->memtable_bytes },
        { "flowdb_frozen_memtables", st->frozen_memtables },
        { "flowdb_table_count", st->table_count },
        { "flowdb_table_bytes", st->table_bytes },
        { "flowdb_wal_records_dropped", st->wal_records_dropped },
        { "flowdb_last_seq", st->last_seq },
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        expect_u64(x, counters[i].name, "", "counter", counters[i].v);
    for (size_t i = 0; i < sizeof gauges / sizeof gauges[0]; i++)
        expect_u64(x, gauges[i].name, "", "gauge", gauges[i].v);
    expect_f64(x, "flowdb_cache_hit_rate", "", "gauge", st->cache_hit_rate);
    expect_f64(x, "flowdb_compression_ratio", "", "gauge", st->compression_ratio);

    struct { const char *name; lsm_latency l; } lats[] = {
        { "flowdb_write_latency_us", st->write_latency },
        { "flowdb_read_latency_us", st->read_latency },
        { "flowdb_flush_latency_us", st->flush_latency },
    };
    for (size_t i = 0; i < 3; i++) {
        char count[160];
        expect_f64(x, lats[i].name, "quantile=\"0.5\"", "summary", lats[i].l.p50_us);
        expect_f64(x, lats[i].name, "quantile=\"0.9\"", "summary", lats[i].l.p90_us);
        expect_f64(x, lats[i].name, "quantile=\"0.99\"", "summary", lats[i].l.p99_us);
        snprintf(count, sizeof count, "%s_count", lats[i].name);
        expect_u64(x, count, "", "summary", lats[i].l.count);
    }
    /* 15 counters + 10 gauges + 3 summaries = every field; 25 + 3 * 4 samples. */
    CHECK(x->nfam == 28);
    CHECK(x->nsmp == 37);
}

static void test_all_fields(void)
{
    /* If lsm_stats grows, metrics.c and this test must learn the new field. */
    CHECK(sizeof(lsm_stats) == 25 * 8 + 3 * sizeof(lsm_latency));
    lsm_stats st;
    fill_stats(&st);
    char *text = NULL;
    CHECK_OK(metrics_format(&st, &text));
    if (text == NULL)
        return;
    exposition *x = malloc(sizeof *x);
    parse_exposition(x, text);
    CHECK(x->errors == 0);
    check_fields(x, &st);
    free(x);
    free(text);
}

static void test_zero_and_special_values(void)
{
    lsm_stats st;
    memset(&st, 0, sizeof st);
    st.cache_hit_rate = NAN;
    st.compression_ratio = INFINITY;
    st.read_latency.p99_us = -INFINITY;
    char *text = NULL;
    CHECK_OK(metrics_format(&st, &text));
    if (text == NULL)
        return;
    CHECK(strstr(text, "\nflowdb_cache_hit_rate NaN\n") != NULL);
    CHECK(strstr(text, "\nflowdb_compression_ratio +Inf\n") != NULL);
    CHECK(strstr(text, "\nflowdb_read_latency_us{quantile=\"0.99\"} -Inf\n") != NULL);
    CHECK(strstr(text, "\nflowdb_flushes_total 0\n") != NULL);
    exposition *x = malloc(sizeof *x);
    parse_exposition(x, text);
    CHECK(x->errors == 0);
    check_fields(x, &st);
    free(x);
    free(text);
}

/* The parser itself must reject what the format forbids. */
static void test_parser_rejects(void)
{
    static const char *const bad[] = {
        "flowdb_x 1\n",                                                  /* no HELP/TYPE */
        "# HELP a h\n# TYPE a gauge\na 1\n# TYPE a gauge\n",             /* TYPE after samples */
        "# HELP a h\n# TYPE a gauge\n# TYPE a counter\na 1\n",           /* two TYPEs */
        "# HELP a h\n# TYPE a gauge\na one\n",                           /* bad value */
        "# HELP a h\n# TYPE a gauge\na{q=1} 1\n",                        /* unquoted label */
        "# HELP a h\n# TYPE a gauge\n# HELP b h\n# TYPE b gauge\nb 1\na 1\n", /* interleaved */
        "# HELP a h\n# TYPE a gauge\na 1",                               /* no final newline */
    };
    parser_quiet = true;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *copy = strdup(bad[i]);
        exposition *x = malloc(sizeof *x);
        parse_exposition(x, copy);
        CHECK(x->errors > 0);
        free(x);
        free(copy);
    }
    parser_quiet = false;
    CHECK(metrics_format(NULL, NULL) == LSM_INVALID);
}

int main(void)
{
    test_all_fields();
    test_zero_and_special_values();
    test_parser_rejects();
    return test_report("test_metrics");
}
