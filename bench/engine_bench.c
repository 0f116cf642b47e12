/*
 * engine_bench.c — benchmark E of /work/shared/bench/SPEC.md: FlowDB's LSM
 * engine against RocksDB, in one process, on the same data, same machine,
 * same run.  Prints the SPEC's Markdown tables (medians, then min and max).
 *
 *   engine_bench [--reps N] [--full] [--engine flowdb|rocksdb|both]
 *                [--groups LIST] [--tmp DIR] [--scaled-series S]
 *                [--phase-limit SECONDS]
 *
 * Work is done in groups; each group starts from a fresh directory per engine
 * and repetition, and the engines alternate within a group (FlowDB first in
 * even repetitions, RocksDB first in odd ones) so that drift on a shared
 * machine hits both alike:
 *
 *   small       seq_write -> point_get_mem -> flush + full compaction ->
 *               storage -> warm-up pass -> point_get_sst -> prefix_scan
 *   concurrent  concurrent_write
 *   durable     durable_write
 *   full_scan   load S=1000 (untimed), flush + full compaction, one warm-up
 *               scan, then full scans for at least 1 s
 *   scaled      (--full) the small group at S=50,000 without point_get_mem:
 *               seq_write_10m, storage_10m, point_get_sst_10m, prefix_scan_10m
 *
 * Every get and scan checks what it returned against the generator; any
 * difference ends the run with a message and no table.  A get or scan loop
 * that runs past --phase-limit seconds (default 120) is stopped and its cell
 * reads "timeout": a per-SPEC figure or none, never a partial one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_engine.h"
#include "spec_data.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SMALL_SERIES      500
#define POINTS            200
#define FULL_SCAN_SERIES  1000
#define SCALED_SERIES     50000
#define BATCH_RECORDS     100
#define WRITER_THREADS    8
#define SMALL_GETS        100000
#define SMALL_SCANS       10000
#define SCALED_GETS       1000000
#define SCALED_SCANS      1000
#define FULL_SCAN_SECONDS 1.0
#define MAX_REPS          32
#define ENGINES           2

static char tmp_root[1024];   /* every engine directory lives under it */
static void remove_tree(const char *dir);

void bench_fail(const char *fmt, ...)
{
    static bool cleaning;
    va_list ap;
    va_start(ap, fmt);
    fputs("engine_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (!cleaning && tmp_root[0]) {
        cleaning = true;
        remove_tree(tmp_root);
    }
    exit(1);
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------ the rows */

typedef enum row_id {
    ROW_SEQ_WRITE, ROW_CONCURRENT_WRITE, ROW_DURABLE_WRITE, ROW_POINT_GET_MEM,
    ROW_POINT_GET_SST, ROW_PREFIX_SCAN, ROW_FULL_SCAN, ROW_STORAGE,
    ROW_SEQ_WRITE_10M, ROW_POINT_GET_SST_10M, ROW_PREFIX_SCAN_10M, ROW_STORAGE_10M,
    ROW_COUNT
} row_id;

static const struct {
    const char *name;
    bool lower_is_better;   /* bytes; everything else is ops/s */
} ROWS[ROW_COUNT] = {
    {"seq_write", false},      {"concurrent_write", false}, {"durable_write", false},
    {"point_get_mem", false},  {"point_get_sst", false},    {"prefix_scan", false},
    {"full_scan", false},      {"storage", true},
    {"seq_write_10m", false},  {"point_get_sst_10m", false}, {"prefix_scan_10m", false},
    {"storage_10m", true},
};

/* results[row][engine][rep]; NAN where not measured. */
static double results[ROW_COUNT][ENGINES][MAX_REPS];
/* Rows an engine could not finish within phase_limit_seconds in some rep. */
static bool timed_out[ROW_COUNT][ENGINES];

/* A get or scan loop (warm-up included) that runs longer than this stops and
 * yields no figure ("timeout" in the tables) rather than stall the run. */
static double phase_limit_seconds = 120;  /* the Makefile passes 60 */
#define TIMED_OUT (-1.0)

static void record(row_id row, int engine, int rep, double value)
{
    if (value == TIMED_OUT) {
        timed_out[row][engine] = true;
        fprintf(stderr, "  %-18s %-8s rep %d: stopped after %.0f s, no figure\n",
                ROWS[row].name, engine == 0 ? "flowdb" : "rocksdb", rep + 1,
                phase_limit_seconds);
        return;
    }
    results[row][engine][rep] = value;
    fprintf(stderr, "  %-18s %-8s rep %d: %.2f\n", ROWS[row].name,
            engine == 0 ? "flowdb" : "rocksdb", rep + 1, value);
}

/* ------------------------------------------------------------ data set */

/* All records of S series x P points, generated once; writes and checks read
 * from here so that generating values is never part of a timing. */
typedef struct dataset {
    int series, points;
    size_t records;
    char (*keys)[SPEC_KEY_MAX];
    size_t key_len;           /* the same for every key (12) */
    char *values;             /* records x SPEC_VALUE_SIZE, (s, i) order */
} dataset;

static void dataset_build(dataset *ds, int series, int points)
{
    ds->series = series;
    ds->points = points;
    ds->records = (size_t)series * (size_t)points;
    ds->keys = malloc((size_t)series * sizeof *ds->keys);
    ds->values = malloc(ds->records * SPEC_VALUE_SIZE);
    if (!ds->keys || !ds->values)
        bench_fail("out of memory for %zu records", ds->records);
    for (int s = 0; s < series; s++) {
        int n = spec_key(ds->keys[s], s);
        if (s == 0)
            ds->key_len = (size_t)n;
        else if ((size_t)n != ds->key_len)
            bench_fail("series %d: key length %d differs from %zu", s, n, ds->key_len);
        for (int i = 0; i < points; i++)
            spec_value(ds->values + ((size_t)s * points + i) * SPEC_VALUE_SIZE, s, i);
    }
}

static void dataset_free(dataset *ds)
{
    free(ds->keys);
    free(ds->values);
    memset(ds, 0, sizeof *ds);
}

static const char *dataset_value(const dataset *ds, int s, int i)
{
    return ds->values + ((size_t)s * ds->points + i) * SPEC_VALUE_SIZE;
}

/* Ends the run unless rec is record (s, i) of ds. */
static void check_record(const dataset *ds, const bench_record *rec, int s, int i,
                         const char *engine, const char *phase)
{
    if (rec->key_len != ds->key_len || memcmp(rec->key, ds->keys[s], ds->key_len) != 0)
        bench_fail("%s %s: expected key %s, got %.*s", engine, phase, ds->keys[s],
                   (int)rec->key_len, rec->key);
    if (rec->ts != spec_ts(i))
        bench_fail("%s %s: key %s: expected ts %lld, got %lld", engine, phase, ds->keys[s],
                   (long long)spec_ts(i), (long long)rec->ts);
    if (rec->value_len != SPEC_VALUE_SIZE ||
        memcmp(rec->value, dataset_value(ds, s, i), SPEC_VALUE_SIZE) != 0)
        bench_fail("%s %s: (%s, %lld): value differs (%zu bytes)", engine, phase,
                   ds->keys[s], (long long)rec->ts, rec->value_len);
}

/* ------------------------------------------------------------ directories */

static off_t tree_bytes;

static int add_file_bytes(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)path; (void)f;
    if (type == FTW_F)
        tree_bytes += st->st_size;
    return 0;
}

/* Sum of the sizes of every regular file under dir. */
static uint64_t dir_bytes(const char *dir)
{
    tree_bytes = 0;
    if (nftw(dir, add_file_bytes, 16, FTW_PHYS) != 0)
        bench_fail("cannot walk %s: %s", dir, strerror(errno));
    return (uint64_t)tree_bytes;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st; (void)type; (void)f;
    if (remove(path) != 0)
        bench_fail("cannot remove %s: %s", path, strerror(errno));
    return 0;
}

static void remove_tree(const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) != 0)
        return;
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        bench_fail("cannot remove %s: %s", dir, strerror(errno));
}

static void fresh_dir(char *out, size_t cap, const bench_engine *e, const char *phase, int rep)
{
    snprintf(out, cap, "%s/%s-%s-r%d", tmp_root, e->name, phase, rep + 1);
    remove_tree(out);
}

/* ------------------------------------------------------------ workloads */

/* Writes the series first, first+step, ... of ds in (s, i) order, in batches
 * of BATCH_RECORDS, through one writer. */
static void write_series(const bench_engine *e, bench_writer *w, const dataset *ds,
                         int first, int step)
{
    int in_batch = 0;
    for (int s = first; s < ds->series; s += step) {
        for (int i = 0; i < ds->points; i++) {
            e->put(w, ds->keys[s], ds->key_len, spec_ts(i), dataset_value(ds, s, i),
                   SPEC_VALUE_SIZE);
            if (++in_batch == BATCH_RECORDS) {
                e->commit(w);
                in_batch = 0;
            }
        }
    }
    if (in_batch)
        e->commit(w);
}

/* Records/s of one thread writing all of ds. */
static double timed_load(const bench_engine *e, bench_db *db, const dataset *ds)
{
    bench_writer *w = e->writer_new(db);
    double t0 = now_seconds();
    write_series(e, w, ds, 0, 1);
    double t1 = now_seconds();
    e->writer_free(w);
    return (double)ds->records / (t1 - t0);
}

typedef struct writer_arg {
    const bench_engine *e;
    bench_db *db;
    const dataset *ds;
    int thread;
    pthread_barrier_t *start;
} writer_arg;

static void *writer_thread(void *p)
{
    writer_arg *a = p;
    bench_writer *w = a->e->writer_new(a->db);
    pthread_barrier_wait(a->start);
    write_series(a->e, w, a->ds, a->thread, WRITER_THREADS);
    a->e->writer_free(w);
    return NULL;
}

/* Records/s of WRITER_THREADS threads, thread t writing series s % 8 == t. */
static double timed_concurrent_load(const bench_engine *e, bench_db *db, const dataset *ds)
{
    pthread_t th[WRITER_THREADS];
    writer_arg args[WRITER_THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, WRITER_THREADS + 1);
    for (int t = 0; t < WRITER_THREADS; t++) {
        args[t] = (writer_arg){e, db, ds, t, &start};
        if (pthread_create(&th[t], NULL, writer_thread, &args[t]) != 0)
            bench_fail("cannot start writer thread %d", t);
    }
    pthread_barrier_wait(&start);
    double t0 = now_seconds();
    for (int t = 0; t < WRITER_THREADS; t++)
        pthread_join(th[t], NULL);
    double t1 = now_seconds();
    pthread_barrier_destroy(&start);
    return (double)ds->records / (t1 - t0);
}

/* A fixed sequence of (series, point) choices. */
typedef struct choices {
    uint32_t *series, *points;
    size_t count;
} choices;

static void choices_build(choices *c, const dataset *ds, size_t count, uint64_t seed)
{
    spec_rng rng;
    spec_rng_seed(&rng, seed);
    c->count = count;
    c->series = malloc(count * sizeof *c->series);
    c->points = malloc(count * sizeof *c->points);
    if (!c->series || !c->points)
        bench_fail("out of memory for %zu choices", count);
    for (size_t q = 0; q < count; q++) {
        c->series[q] = spec_rng_below(&rng, (uint32_t)ds->series);
        c->points[q] = spec_rng_below(&rng, (uint32_t)ds->points);
    }
}

static void choices_free(choices *c)
{
    free(c->series);
    free(c->points);
}

/* Gets/s of the gets in c, each checked against the generator; TIMED_OUT
 * past phase_limit_seconds. */
static double timed_gets(const bench_engine *e, bench_reader *r, const dataset *ds,
                         const choices *c, const char *phase)
{
    double t0 = now_seconds();
    for (size_t q = 0; q < c->count; q++) {
        if ((q & 1023) == 1023 && now_seconds() - t0 > phase_limit_seconds)
            return TIMED_OUT;
        int s = (int)c->series[q], i = (int)c->points[q];
        const char *v;
        size_t vlen;
        if (!e->get(r, ds->keys[s], ds->key_len, spec_ts(i), &v, &vlen))
            bench_fail("%s %s: (%s, %lld) not found", e->name, phase, ds->keys[s],
                       (long long)spec_ts(i));
        if (vlen != SPEC_VALUE_SIZE || memcmp(v, dataset_value(ds, s, i), SPEC_VALUE_SIZE) != 0)
            bench_fail("%s %s: (%s, %lld): value differs (%zu bytes)", e->name, phase,
                       ds->keys[s], (long long)spec_ts(i), vlen);
    }
    double t1 = now_seconds();
    return (double)c->count / (t1 - t0);
}

/* Scans/s of one-series scans of the series in c, each returning exactly
 * that series' P records in ts order; TIMED_OUT past phase_limit_seconds. */
static double timed_prefix_scans(const bench_engine *e, bench_reader *r, const dataset *ds,
                                 const choices *c, const char *phase)
{
    double t0 = now_seconds();
    for (size_t q = 0; q < c->count; q++) {
        if ((q & 63) == 63 && now_seconds() - t0 > phase_limit_seconds)
            return TIMED_OUT;
        int s = (int)c->series[q];
        bench_record rec;
        int n = 0;
        e->scan_open(r, ds->keys[s], ds->key_len);
        while (e->scan_next(r, &rec)) {
            if (n >= ds->points)
                bench_fail("%s %s: scan of %s returned more than %d records", e->name,
                           phase, ds->keys[s], ds->points);
            check_record(ds, &rec, s, n, e->name, phase);
            n++;
        }
        e->scan_close(r);
        if (n != ds->points)
            bench_fail("%s %s: scan of %s returned %d records, expected %d", e->name, phase,
                       ds->keys[s], n, ds->points);
    }
    double t1 = now_seconds();
    return (double)c->count / (t1 - t0);
}

/* One full scan, checking every record and the count. */
static void full_scan_once(const bench_engine *e, bench_reader *r, const dataset *ds)
{
    bench_record rec;
    size_t n = 0;
    e->scan_open(r, NULL, 0);
    while (e->scan_next(r, &rec)) {
        if (n >= ds->records)
            bench_fail("%s full_scan: more than %zu records", e->name, ds->records);
        check_record(ds, &rec, (int)(n / (size_t)ds->points), (int)(n % (size_t)ds->points),
                     e->name, "full_scan");
        n++;
    }
    e->scan_close(r);
    if (n != ds->records)
        bench_fail("%s full_scan: %zu records, expected %zu", e->name, n, ds->records);
}

/* ------------------------------------------------------------ groups */

typedef struct sized_rows {
    row_id seq_write, point_get_mem, point_get_sst, prefix_scan, storage;
    bool has_mem_gets;
    size_t gets, scans;
    const char *tag;
} sized_rows;

static const sized_rows SMALL_ROWS = {
    ROW_SEQ_WRITE, ROW_POINT_GET_MEM, ROW_POINT_GET_SST, ROW_PREFIX_SCAN, ROW_STORAGE,
    true, SMALL_GETS, SMALL_SCANS, "small"};
static const sized_rows SCALED_ROWS = {
    ROW_SEQ_WRITE_10M, ROW_COUNT, ROW_POINT_GET_SST_10M, ROW_PREFIX_SCAN_10M, ROW_STORAGE_10M,
    false, SCALED_GETS, SCALED_SCANS, "scaled"};

/* seq_write, point_get_mem, storage, point_get_sst, prefix_scan on one
 * fresh directory. */
static void run_sized_group(const bench_engine *e, int ei, int rep, const dataset *ds,
                            const sized_rows *rows, const choices *gets,
                            const choices *scans)
{
    char dir[1200];
    fresh_dir(dir, sizeof dir, e, rows->tag, rep);
    bench_db *db = e->open(dir, false);
    record(rows->seq_write, ei, rep, timed_load(e, db, ds));

    bench_reader *r = e->reader_new(db);
    if (rows->has_mem_gets)
        record(rows->point_get_mem, ei, rep, timed_gets(e, r, ds, gets, "point_get_mem"));

    e->flush_compact(db);
    record(rows->storage, ei, rep, (double)dir_bytes(dir));

    if (timed_gets(e, r, ds, gets, "point_get_sst warm-up") == TIMED_OUT)
        record(rows->point_get_sst, ei, rep, TIMED_OUT);
    else
        record(rows->point_get_sst, ei, rep, timed_gets(e, r, ds, gets, "point_get_sst"));
    record(rows->prefix_scan, ei, rep, timed_prefix_scans(e, r, ds, scans, "prefix_scan"));
    e->reader_free(r);
    e->close(db);
    remove_tree(dir);
}

static void run_write_group(const bench_engine *e, int ei, int rep, const dataset *ds,
                            bool concurrent)
{
    char dir[1200];
    fresh_dir(dir, sizeof dir, e, concurrent ? "concurrent" : "durable", rep);
    bench_db *db = e->open(dir, !concurrent);
    if (concurrent)
        record(ROW_CONCURRENT_WRITE, ei, rep, timed_concurrent_load(e, db, ds));
    else
        record(ROW_DURABLE_WRITE, ei, rep, timed_load(e, db, ds));
    e->close(db);
    remove_tree(dir);
}

static void run_full_scan_group(const bench_engine *e, int ei, int rep, const dataset *ds)
{
    char dir[1200];
    fresh_dir(dir, sizeof dir, e, "full_scan", rep);
    bench_db *db = e->open(dir, false);
    timed_load(e, db, ds);
    e->flush_compact(db);
    bench_reader *r = e->reader_new(db);
    full_scan_once(e, r, ds);  /* warm-up */
    size_t scans = 0;
    double t0 = now_seconds(), t1;
    do {
        full_scan_once(e, r, ds);
        scans++;
        t1 = now_seconds();
    } while (t1 - t0 < FULL_SCAN_SECONDS);
    record(ROW_FULL_SCAN, ei, rep, (double)scans / (t1 - t0));
    e->reader_free(r);
    e->close(db);
    remove_tree(dir);
}

/* ------------------------------------------------------------ report */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median, min and max of the measured values of one cell; false if none. */
static bool summarize(const double *v, int n, double *median, double *min, double *max)
{
    double s[MAX_REPS];
    int m = 0;
    for (int k = 0; k < n; k++)
        if (!isnan(v[k]))
            s[m++] = v[k];
    if (m == 0)
        return false;
    qsort(s, (size_t)m, sizeof *s, cmp_double);
    *median = (m % 2) ? s[m / 2] : (s[m / 2 - 1] + s[m / 2]) / 2;
    *min = s[0];
    *max = s[m - 1];
    return true;
}

/* Figures below 1000 (full scans/s) keep two decimals. */
static void format_figure(char *out, size_t cap, double v)
{
    snprintf(out, cap, v < 1000 ? "%.2f" : "%.0f", v);
}

/* "Times better than RocksDB". */
static double ratio_of(row_id row, double flowdb, double rocksdb)
{
    return ROWS[row].lower_is_better ? rocksdb / flowdb : flowdb / rocksdb;
}

static void print_tables(int reps, const bool *row_ran)
{
    printf("| phase | flowdb | rocksdb | ratio |\n|---|---:|---:|---:|\n");
    for (int row = 0; row < ROW_COUNT; row++) {
        if (!row_ran[row])
            continue;
        double med[ENGINES], mn[ENGINES], mx[ENGINES];
        bool have[ENGINES];
        char cell[ENGINES][32];
        for (int e = 0; e < ENGINES; e++) {
            have[e] = summarize(results[row][e], reps, &med[e], &mn[e], &mx[e]);
            if (have[e])
                format_figure(cell[e], sizeof cell[e], med[e]);
            else
                snprintf(cell[e], sizeof cell[e], "%s", timed_out[row][e] ? "timeout" : "—");
        }
        char ratio[32] = "—";
        if (have[0] && have[1])
            snprintf(ratio, sizeof ratio, "%.2f", ratio_of((row_id)row, med[0], med[1]));
        printf("| %s | %s | %s | %s |\n", ROWS[row].name, cell[0], cell[1], ratio);
    }

    printf("\n| phase | flowdb min | flowdb max | rocksdb min | rocksdb max | ratio min | ratio max |\n"
           "|---|---:|---:|---:|---:|---:|---:|\n");
    for (int row = 0; row < ROW_COUNT; row++) {
        if (!row_ran[row])
            continue;
        char cells[6][32];
        for (int e = 0; e < ENGINES; e++) {
            double med, mn, mx;
            if (summarize(results[row][e], reps, &med, &mn, &mx)) {
                format_figure(cells[2 * e], sizeof cells[0], mn);
                format_figure(cells[2 * e + 1], sizeof cells[0], mx);
            } else {
                const char *none = timed_out[row][e] ? "timeout" : "—";
                snprintf(cells[2 * e], sizeof cells[0], "%s", none);
                snprintf(cells[2 * e + 1], sizeof cells[0], "%s", none);
            }
        }
        /* Ratios pair the two engines' figures of the same repetition. */
        double per_rep[MAX_REPS];
        for (int k = 0; k < reps; k++)
            per_rep[k] = (isnan(results[row][0][k]) || isnan(results[row][1][k]))
                             ? NAN
                             : ratio_of((row_id)row, results[row][0][k], results[row][1][k]);
        double med, mn, mx;
        if (summarize(per_rep, reps, &med, &mn, &mx)) {
            snprintf(cells[4], sizeof cells[0], "%.2f", mn);
            snprintf(cells[5], sizeof cells[0], "%.2f", mx);
        } else {
            snprintf(cells[4], sizeof cells[0], "—");
            snprintf(cells[5], sizeof cells[0], "—");
        }
        printf("| %s | %s | %s | %s | %s | %s | %s |\n", ROWS[row].name, cells[0], cells[1],
               cells[2], cells[3], cells[4], cells[5]);
    }
}

/* ------------------------------------------------------------ main */

static void usage(void)
{
    fprintf(stderr,
            "usage: engine_bench [--reps N] [--full] [--engine flowdb|rocksdb|both]\n"
            "                    [--groups small,concurrent,durable,full_scan,scaled]\n"
            "                    [--tmp DIR] [--scaled-series S] [--phase-limit SECONDS]\n");
    exit(2);
}

static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return true;
    return false;
}

int main(int argc, char **argv)
{
    int reps = 3, scaled_series = SCALED_SERIES;
    bool full = false;
    const char *engine_choice = "both", *groups = NULL;
    const char *tmp_base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--reps") && a + 1 < argc)
            reps = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--full"))
            full = true;
        else if (!strcmp(argv[a], "--engine") && a + 1 < argc)
            engine_choice = argv[++a];
        else if (!strcmp(argv[a], "--groups") && a + 1 < argc)
            groups = argv[++a];
        else if (!strcmp(argv[a], "--tmp") && a + 1 < argc)
            tmp_base = argv[++a];
        else if (!strcmp(argv[a], "--scaled-series") && a + 1 < argc)
            scaled_series = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--phase-limit") && a + 1 < argc)
            phase_limit_seconds = atof(argv[++a]);
        else
            usage();
    }
    if (reps < 1 || reps > MAX_REPS || scaled_series < 1 || scaled_series > 99999)
        usage();
    if (!groups)
        groups = full ? "small,concurrent,durable,full_scan,scaled"
                      : "small,concurrent,durable,full_scan";

    const bench_engine *engines[ENGINES] = {NULL, NULL};
#ifndef BENCH_WITHOUT_FLOWDB
    if (strcmp(engine_choice, "rocksdb") != 0)
        engines[0] = &bench_flowdb;
#else
    if (!strcmp(engine_choice, "flowdb"))
        bench_fail("built without FlowDB (BENCH_WITHOUT_FLOWDB)");
#endif
    if (strcmp(engine_choice, "flowdb") != 0)
        engines[1] = &bench_rocksdb;

    for (int r = 0; r < ROW_COUNT; r++)
        for (int e = 0; e < ENGINES; e++)
            for (int k = 0; k < MAX_REPS; k++)
                results[r][e][k] = NAN;

    snprintf(tmp_root, sizeof tmp_root, "%s/flowdb-engine-bench-XXXXXX", tmp_base);
    if (!mkdtemp(tmp_root))
        bench_fail("cannot create a directory under %s: %s", tmp_base, strerror(errno));

    bool run_small = has_word(groups, "small"), run_conc = has_word(groups, "concurrent"),
         run_dur = has_word(groups, "durable"), run_fs = has_word(groups, "full_scan"),
         run_scaled = has_word(groups, "scaled");
    bool row_ran[ROW_COUNT] = {false};
    row_ran[ROW_SEQ_WRITE] = row_ran[ROW_POINT_GET_MEM] = row_ran[ROW_POINT_GET_SST] =
        row_ran[ROW_PREFIX_SCAN] = row_ran[ROW_STORAGE] = run_small;
    row_ran[ROW_CONCURRENT_WRITE] = run_conc;
    row_ran[ROW_DURABLE_WRITE] = run_dur;
    row_ran[ROW_FULL_SCAN] = run_fs;
    row_ran[ROW_SEQ_WRITE_10M] = row_ran[ROW_POINT_GET_SST_10M] =
        row_ran[ROW_PREFIX_SCAN_10M] = row_ran[ROW_STORAGE_10M] = run_scaled;

    fprintf(stderr, "engine_bench: %d repetitions, groups %s, temp dir %s\n", reps, groups,
            tmp_root);
    dataset small = {0}, wide = {0}, scaled = {0};
    choices small_gets = {0}, small_scans = {0}, scaled_gets = {0}, scaled_scans = {0};
    if (run_small || run_conc || run_dur) {
        dataset_build(&small, SMALL_SERIES, POINTS);
        choices_build(&small_gets, &small, SMALL_GETS, SPEC_SEED);
        choices_build(&small_scans, &small, SMALL_SCANS, SPEC_SEED + 1);
    }
    if (run_fs)
        dataset_build(&wide, FULL_SCAN_SERIES, POINTS);
    if (run_scaled) {
        fprintf(stderr, "engine_bench: generating %d x %d records\n", scaled_series, POINTS);
        dataset_build(&scaled, scaled_series, POINTS);
        choices_build(&scaled_gets, &scaled, SCALED_GETS, SPEC_SEED + 2);
        choices_build(&scaled_scans, &scaled, SCALED_SCANS, SPEC_SEED + 3);
    }

    for (int rep = 0; rep < reps; rep++) {
        int order[ENGINES] = {rep % 2, 1 - rep % 2};
        for (int group = 0; group < 5; group++) {
            for (int k = 0; k < ENGINES; k++) {
                int ei = order[k];
                const bench_engine *e = engines[ei];
                if (!e)
                    continue;
                if (group == 0 && run_small)
                    run_sized_group(e, ei, rep, &small, &SMALL_ROWS, &small_gets, &small_scans);
                else if (group == 1 && run_conc)
                    run_write_group(e, ei, rep, &small, true);
                else if (group == 2 && run_dur)
                    run_write_group(e, ei, rep, &small, false);
                else if (group == 3 && run_fs)
                    run_full_scan_group(e, ei, rep, &wide);
                else if (group == 4 && run_scaled)
                    run_sized_group(e, ei, rep, &scaled, &SCALED_ROWS, &scaled_gets,
                                    &scaled_scans);
            }
        }
    }
    remove_tree(tmp_root);

    printf("E — engine vs RocksDB %s (S=%d, P=%d; full_scan S=%d; scaled S=%d), "
           "median of %d; throughput in records/s, gets/s or scans/s, storage in bytes; "
           "ratio = times better than RocksDB\n\n",
           bench_rocksdb.version, SMALL_SERIES, POINTS, FULL_SCAN_SERIES, scaled_series, reps);
    print_tables(reps, row_ran);

    choices_free(&small_gets);
    choices_free(&small_scans);
    choices_free(&scaled_gets);
    choices_free(&scaled_scans);
    dataset_free(&small);
    dataset_free(&wide);
    dataset_free(&scaled);
    return 0;
}
