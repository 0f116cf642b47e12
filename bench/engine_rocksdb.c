/*
 * engine_rocksdb.c — benchmark E's peer: RocksDB (Debian librocksdb-dev 7.8)
 * through its C API, with the options SPEC.md prescribes and nothing else:
 *
 *   LZ4 compression, full bloom filter 10 bits/key, 128 MiB LRU block cache,
 *   64 MiB write buffer, 3 write buffers, WAL on; every other option default.
 *
 * A record (key, ts) is stored under the RocksDB key
 *   key bytes | 0x00 | ts as 8-byte big-endian with the sign bit flipped
 * so that RocksDB's bytewise order is FlowDB's (key, ts) order for the keys
 * used here (which contain no 0x00 byte).
 */
#include "bench_engine.h"

#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>

#define ROCKS_TS_SIZE 8
#define ROCKS_KEY_MAX 64        /* the benchmark's keys are 12 bytes */
#define MIB ((size_t)1 << 20)
/* rocksdb/version.h is C++; the Makefile passes its numbers in. */
#ifndef ROCKSDB_VERSION_STRING
#define ROCKSDB_VERSION_STRING "unknown"
#endif

struct bench_db {
    rocksdb_t *db;
    rocksdb_options_t *options;
    rocksdb_block_based_table_options_t *table_options;
    rocksdb_cache_t *cache;
    rocksdb_filterpolicy_t *bloom;  /* owned by table_options once set */
    rocksdb_writeoptions_t *write_options;
};

struct bench_writer {
    bench_db *db;
    rocksdb_writebatch_t *batch;
};

struct bench_reader {
    bench_db *db;
    rocksdb_readoptions_t *get_options;
    rocksdb_pinnableslice_t *pinned;   /* last get's value */
    rocksdb_readoptions_t *key_scan_options;  /* upper bound set per scan */
    rocksdb_readoptions_t *full_scan_options; /* unbounded */
    rocksdb_iterator_t *iter;
    bool iter_started;                 /* iter already returned its position */
    char lo[ROCKS_KEY_MAX + 1];
    char hi[ROCKS_KEY_MAX + 1];
};

static void check_err(char *err, const char *what)
{
    if (err) {
        char msg[512];
        strncpy(msg, err, sizeof msg - 1);
        msg[sizeof msg - 1] = 0;
        rocksdb_free(err);
        bench_fail("rocksdb %s: %s", what, msg);
    }
}

/* Encodes (key, ts) into out; returns the encoded length. */
static size_t encode_key(char *out, const char *key, size_t key_len, int64_t ts)
{
    if (key_len > ROCKS_KEY_MAX)
        bench_fail("rocksdb: key of %zu bytes over the adapter's %d", key_len, ROCKS_KEY_MAX);
    memcpy(out, key, key_len);
    out[key_len] = 0;
    uint64_t u = (uint64_t)ts ^ (UINT64_C(1) << 63);
    for (int b = 0; b < ROCKS_TS_SIZE; b++)
        out[key_len + 1 + b] = (char)(uint8_t)(u >> (56 - 8 * b));
    return key_len + 1 + ROCKS_TS_SIZE;
}

/* Splits an encoded key back into (key, ts). */
static void decode_key(const char *enc, size_t len, bench_record *rec)
{
    if (len < 1 + ROCKS_TS_SIZE || enc[len - ROCKS_TS_SIZE - 1] != 0)
        bench_fail("rocksdb: stored key of %zu bytes is not key|0x00|ts", len);
    uint64_t u = 0;
    for (int b = 0; b < ROCKS_TS_SIZE; b++)
        u = (u << 8) | (uint8_t)enc[len - ROCKS_TS_SIZE + b];
    rec->key = enc;
    rec->key_len = len - ROCKS_TS_SIZE - 1;
    rec->ts = (int64_t)(u ^ (UINT64_C(1) << 63));
}

static bench_db *rocks_open(const char *dir, bool sync_always)
{
    bench_db *d = calloc(1, sizeof *d);
    if (!d)
        bench_fail("rocksdb: out of memory");
    d->options = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(d->options, 1);
    rocksdb_options_set_compression(d->options, rocksdb_lz4_compression);
    rocksdb_options_set_write_buffer_size(d->options, 64 * MIB);
    rocksdb_options_set_max_write_buffer_number(d->options, 3);

    d->table_options = rocksdb_block_based_options_create();
    d->bloom = rocksdb_filterpolicy_create_bloom_full(10);
    rocksdb_block_based_options_set_filter_policy(d->table_options, d->bloom);
    d->cache = rocksdb_cache_create_lru(128 * MIB);
    rocksdb_block_based_options_set_block_cache(d->table_options, d->cache);
    rocksdb_options_set_block_based_table_factory(d->options, d->table_options);

    char *err = NULL;
    d->db = rocksdb_open(d->options, dir, &err);
    check_err(err, "open");

    d->write_options = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(d->write_options, sync_always ? 1 : 0);
    rocksdb_writeoptions_disable_WAL(d->write_options, 0);
    return d;
}

static void rocks_close(bench_db *d)
{
    rocksdb_close(d->db);
    rocksdb_writeoptions_destroy(d->write_options);
    rocksdb_options_destroy(d->options);
    rocksdb_block_based_options_destroy(d->table_options);  /* drops the bloom policy */
    rocksdb_cache_destroy(d->cache);
    free(d);
}

static bench_writer *rocks_writer_new(bench_db *d)
{
    bench_writer *w = calloc(1, sizeof *w);
    if (!w)
        bench_fail("rocksdb: out of memory");
    w->db = d;
    w->batch = rocksdb_writebatch_create();
    return w;
}

static void rocks_put(bench_writer *w, const char *key, size_t key_len, int64_t ts,
                      const char *value, size_t value_len)
{
    char enc[ROCKS_KEY_MAX + 1 + ROCKS_TS_SIZE];
    size_t n = encode_key(enc, key, key_len, ts);
    rocksdb_writebatch_put(w->batch, enc, n, value, value_len);
}

static void rocks_commit(bench_writer *w)
{
    char *err = NULL;
    rocksdb_write(w->db->db, w->db->write_options, w->batch, &err);
    check_err(err, "write");
    rocksdb_writebatch_clear(w->batch);
}

static void rocks_writer_free(bench_writer *w)
{
    rocksdb_writebatch_destroy(w->batch);
    free(w);
}

static bench_reader *rocks_reader_new(bench_db *d)
{
    bench_reader *r = calloc(1, sizeof *r);
    if (!r)
        bench_fail("rocksdb: out of memory");
    r->db = d;
    r->get_options = rocksdb_readoptions_create();
    r->key_scan_options = rocksdb_readoptions_create();
    r->full_scan_options = rocksdb_readoptions_create();
    return r;
}

static bool rocks_get(bench_reader *r, const char *key, size_t key_len, int64_t ts,
                      const char **value, size_t *value_len)
{
    char enc[ROCKS_KEY_MAX + 1 + ROCKS_TS_SIZE];
    size_t n = encode_key(enc, key, key_len, ts);
    if (r->pinned) {
        rocksdb_pinnableslice_destroy(r->pinned);
        r->pinned = NULL;
    }
    char *err = NULL;
    r->pinned = rocksdb_get_pinned(r->db->db, r->get_options, enc, n, &err);
    check_err(err, "get");
    if (!r->pinned)
        return false;
    *value = rocksdb_pinnableslice_value(r->pinned, value_len);
    return true;
}

static void rocks_scan_open(bench_reader *r, const char *key, size_t key_len)
{
    if (r->iter)
        bench_fail("rocksdb: scan_open while a scan is open");
    if (key) {
        if (key_len > ROCKS_KEY_MAX)
            bench_fail("rocksdb: scan key of %zu bytes over %d", key_len, ROCKS_KEY_MAX);
        /* Every encoded key of `key` lies in [key|0x00, key|0x01). */
        memcpy(r->lo, key, key_len);
        r->lo[key_len] = 0;
        memcpy(r->hi, key, key_len);
        r->hi[key_len] = 1;
        rocksdb_readoptions_set_iterate_upper_bound(r->key_scan_options, r->hi, key_len + 1);
    }
    r->iter = rocksdb_create_iterator(r->db->db, key ? r->key_scan_options : r->full_scan_options);
    if (key)
        rocksdb_iter_seek(r->iter, r->lo, key_len + 1);
    else
        rocksdb_iter_seek_to_first(r->iter);
    r->iter_started = false;
}

static bool rocks_scan_next(bench_reader *r, bench_record *rec)
{
    if (r->iter_started)
        rocksdb_iter_next(r->iter);
    r->iter_started = true;
    if (!rocksdb_iter_valid(r->iter)) {
        char *err = NULL;
        rocksdb_iter_get_error(r->iter, &err);
        check_err(err, "iterator");
        return false;
    }
    size_t klen, vlen;
    const char *k = rocksdb_iter_key(r->iter, &klen);
    decode_key(k, klen, rec);
    rec->value = rocksdb_iter_value(r->iter, &vlen);
    rec->value_len = vlen;
    return true;
}

static void rocks_scan_close(bench_reader *r)
{
    if (r->iter)
        rocksdb_iter_destroy(r->iter);
    r->iter = NULL;
}

static void rocks_reader_free(bench_reader *r)
{
    rocks_scan_close(r);
    if (r->pinned)
        rocksdb_pinnableslice_destroy(r->pinned);
    rocksdb_readoptions_destroy(r->get_options);
    rocksdb_readoptions_destroy(r->key_scan_options);
    rocksdb_readoptions_destroy(r->full_scan_options);
    free(r);
}

/* Flush, then CompactRange over everything: all data ends in one level. */
static void rocks_flush_compact(bench_db *d)
{
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    char *err = NULL;
    rocksdb_flush(d->db, fo, &err);
    rocksdb_flushoptions_destroy(fo);
    check_err(err, "flush");
    rocksdb_compact_range(d->db, NULL, 0, NULL, 0);
}

const bench_engine bench_rocksdb = {
    .name = "rocksdb",
    .version = ROCKSDB_VERSION_STRING,
    .open = rocks_open,
    .close = rocks_close,
    .writer_new = rocks_writer_new,
    .put = rocks_put,
    .commit = rocks_commit,
    .writer_free = rocks_writer_free,
    .reader_new = rocks_reader_new,
    .get = rocks_get,
    .scan_open = rocks_scan_open,
    .scan_next = rocks_scan_next,
    .scan_close = rocks_scan_close,
    .reader_free = rocks_reader_free,
    .flush_compact = rocks_flush_compact,
};
