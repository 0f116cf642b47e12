/*
 * engine_flowdb.c — benchmark E's subject: FlowDB's LSM engine through its
 * public API (lsm/include/lsm.h), standalone (private region, the engine's own
 * background threads for flush, compaction and WAL sync).
 *
 * Configuration: lsm_config_defaults() plus the budgets RocksDB gets —
 * 64 MiB memtable, 2 frozen memtables (3 in all, as RocksDB's 3 write
 * buffers), 128 MiB block cache, bloom 10 bits/key — WAL on, sync mode
 * LSM_SYNC_ALWAYS for durable writes, LSM_SYNC_INTERVAL otherwise.
 */
#include "bench_engine.h"

#include "lsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB ((size_t)1 << 20)

struct bench_db {
    lsm_db *db;
};

struct bench_writer {
    bench_db *db;
    lsm_batch *batch;
};

struct bench_reader {
    bench_db *db;
    lsm_read_options ro;
    lsm_value value;   /* reused across gets */
    lsm_iter *iter;
};

static void check(lsm_status st, const char *what)
{
    if (st != LSM_OK)
        bench_fail("flowdb %s: %s: %s", what, lsm_status_name(st), lsm_errmsg());
}

static bench_db *flowdb_open(const char *dir, bool sync_always)
{
    lsm_config cfg;
    lsm_config_defaults(&cfg);
    if (strlen(dir) >= sizeof cfg.dir)
        bench_fail("flowdb: directory name too long: %s", dir);
    snprintf(cfg.dir, sizeof cfg.dir, "%s", dir);
    cfg.memtable_size = 64 * MIB;
    cfg.max_frozen_memtables = 2;
    cfg.block_cache_size = 128 * MIB;
    cfg.bloom_bits_per_key = 10;
    cfg.sync_mode = sync_always ? LSM_SYNC_ALWAYS : LSM_SYNC_INTERVAL;

    lsm_open_options opts;
    memset(&opts, 0, sizeof opts);
    opts.background_threads = true;

    bench_db *d = calloc(1, sizeof *d);
    if (!d)
        bench_fail("flowdb: out of memory");
    check(lsm_open(&cfg, NULL, lsm_region_size(&cfg), &opts, &d->db), "open");
    return d;
}

static void flowdb_close(bench_db *d)
{
    check(lsm_close(d->db), "close");
    free(d);
}

static bench_writer *flowdb_writer_new(bench_db *d)
{
    bench_writer *w = calloc(1, sizeof *w);
    if (!w)
        bench_fail("flowdb: out of memory");
    w->db = d;
    w->batch = lsm_batch_new();
    if (!w->batch)
        bench_fail("flowdb: lsm_batch_new failed: %s", lsm_errmsg());
    return w;
}

static void flowdb_put(bench_writer *w, const char *key, size_t key_len, int64_t ts,
                       const char *value, size_t value_len)
{
    check(lsm_batch_put(w->batch, key, key_len, ts, value, value_len), "batch put");
}

static void flowdb_commit(bench_writer *w)
{
    check(lsm_write(w->db->db, w->batch), "write");
    lsm_batch_clear(w->batch);
}

static void flowdb_writer_free(bench_writer *w)
{
    lsm_batch_free(w->batch);
    free(w);
}

static bench_reader *flowdb_reader_new(bench_db *d)
{
    bench_reader *r = calloc(1, sizeof *r);
    if (!r)
        bench_fail("flowdb: out of memory");
    r->db = d;
    lsm_read_options_init(&r->ro);
    return r;
}

static bool flowdb_get(bench_reader *r, const char *key, size_t key_len, int64_t ts,
                       const char **value, size_t *value_len)
{
    lsm_status st = lsm_get(r->db->db, &r->ro, key, key_len, ts, &r->value);
    if (st == LSM_NOT_FOUND)
        return false;
    check(st, "get");
    if (r->value.ts != ts)
        bench_fail("flowdb get: asked for ts %lld, got ts %lld", (long long)ts,
                   (long long)r->value.ts);
    *value = (const char *)r->value.data;
    *value_len = r->value.len;
    return true;
}

static void flowdb_scan_open(bench_reader *r, const char *key, size_t key_len)
{
    if (r->iter)
        bench_fail("flowdb: scan_open while a scan is open");
    lsm_scan_spec spec;
    lsm_scan_spec_init(&spec);
    if (key) {
        spec.prefix = key;
        spec.prefix_len = key_len;
    }
    check(lsm_iter_open(r->db->db, &r->ro, &spec, &r->iter), "iter open");
}

static bool flowdb_scan_next(bench_reader *r, bench_record *rec)
{
    lsm_record lr;
    lsm_status st = lsm_iter_next(r->iter, &lr);
    if (st == LSM_DONE)
        return false;
    check(st, "iter next");
    rec->key = (const char *)lr.key;
    rec->key_len = lr.key_len;
    rec->ts = lr.ts;
    rec->value = (const char *)lr.value;
    rec->value_len = lr.value_len;
    return true;
}

static void flowdb_scan_close(bench_reader *r)
{
    if (r->iter)
        lsm_iter_close(r->iter);
    r->iter = NULL;
}

static void flowdb_reader_free(bench_reader *r)
{
    flowdb_scan_close(r);
    lsm_value_free(&r->value);
    free(r);
}

static void flowdb_flush_compact(bench_db *d)
{
    check(lsm_compact_full(d->db), "compact_full");
}

const bench_engine bench_flowdb = {
    .name = "flowdb",
    .version = "working tree",
    .open = flowdb_open,
    .close = flowdb_close,
    .writer_new = flowdb_writer_new,
    .put = flowdb_put,
    .commit = flowdb_commit,
    .writer_free = flowdb_writer_free,
    .reader_new = flowdb_reader_new,
    .get = flowdb_get,
    .scan_open = flowdb_scan_open,
    .scan_next = flowdb_scan_next,
    .scan_close = flowdb_scan_close,
    .reader_free = flowdb_reader_free,
    .flush_compact = flowdb_flush_compact,
};
