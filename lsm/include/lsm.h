/*
 * lsm.h — FlowDB's log-structured merge-tree engine: the public interface.
 *
 * Plain C11 + pthreads + lz4 + xxhash. No Postgres headers, ever.
 *
 * Data model
 * ----------
 * A record is (key bytes, ts int64, expire_at int64, value bytes). Records are
 * ordered by key (unsigned bytewise, a shorter key before its extensions), then
 * by ts ascending. Writing an existing (key, ts) replaces the record.
 *
 *   expire_at   Unix seconds after which the record is gone; 0 = never.
 *               A record is expired when expire_at != 0 && expire_at <= now.
 *               Expired records are never returned.
 *
 * Range conventions (every API uses these):
 *   key range   [key_lo, key_hi)   lower bound inclusive, upper exclusive,
 *               unless the scan spec's *_exclusive / *_inclusive flags say
 *               otherwise.  delete_range is always [start, end).
 *   prefix      every key that begins with the prefix bytes.
 *   ts range    [ts_min, ts_max]   both inclusive.
 *
 * Limits: key 1..LSM_MAX_KEY_SIZE bytes (empty keys are rejected), value
 * 0..LSM_MAX_VALUE_SIZE bytes, and one record must fit in one memtable.
 *
 * Processes
 * ---------
 * All state other processes must see lives in one memory region of
 * lsm_region_size(cfg) bytes, handed to lsm_open().  Standalone, pass NULL and
 * the engine maps private memory (huge pages where the kernel allows);
 * threads then share one lsm_db, and a forked child does not share it.  With
 * several processes the region is MAP_SHARED (or Postgres shared memory): one
 * process (the host) calls lsm_open(), which initialises the region and
 * recovers; the others call lsm_attach() once lsm_region_ready() is true.
 * Every lsm_db handle is process-local (file descriptors, scratch buffers);
 * lsm_db handles are thread-safe.
 *
 * Errors
 * ------
 * Every call returns an lsm_status.  On failure, lsm_errmsg() returns a
 * message for the calling thread naming the field, file or limit involved.
 */
#ifndef FLOWDB_LSM_H
#define FLOWDB_LSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The engine is built with -fvisibility=hidden: only this interface is
 * exported, so its internal names never bind to a host's symbols (Postgres
 * has a wal_segment_open too). */
#pragma GCC visibility push(default)

#define LSM_MAX_KEY_SIZE   (8u * 1024u)           /* bytes */
#define LSM_MAX_VALUE_SIZE (16u * 1024u * 1024u)  /* bytes */
#define LSM_TS_MIN INT64_MIN
#define LSM_TS_MAX INT64_MAX

typedef enum lsm_status {
    LSM_OK = 0,
    LSM_DONE,       /* iterator exhausted (not an error) */
    LSM_NOT_FOUND,  /* get: no visible record (not an error) */
    LSM_INVALID,    /* bad argument or configuration */
    LSM_TOO_LARGE,  /* key, value or record over a limit */
    LSM_IO,         /* operating-system I/O failure */
    LSM_CORRUPT,    /* checksum, magic or format error in a file */
    LSM_NO_MEMORY,  /* allocation failed */
    LSM_BUSY,       /* a bounded wait ran out (back-pressure, slots) */
    LSM_CLOSED      /* engine closed, or not (yet) open in this region */
} lsm_status;

/* Message for the last failure in this thread ("" if none). */
const char *lsm_errmsg(void);
/* Short name of a status ("ok", "corrupt", ...). */
const char *lsm_status_name(lsm_status st);

/* ------------------------------------------------------------------ config */

typedef enum lsm_sync_mode {
    LSM_SYNC_ALWAYS = 0,  /* fsync before a write is acknowledged */
    LSM_SYNC_INTERVAL     /* fsync every sync_interval_ms (lsm_wal_sync) */
} lsm_sync_mode;

typedef struct lsm_config {
    char dir[1024];                 /* engine directory (created if absent) */
    size_t memtable_size;           /* bytes of one memtable */
    uint32_t max_frozen_memtables;  /* frozen memtables before writers wait */
    size_t block_size;              /* target uncompressed SST block bytes */
    uint32_t bloom_bits_per_key;    /* 1..32 */
    size_t block_cache_size;        /* bytes of shared data-block cache */
    size_t index_cache_size;        /* bytes of shared index/bloom cache */
    lsm_sync_mode sync_mode;
    uint32_t sync_interval_ms;      /* >= 1 */
    size_t wal_segment_size;        /* bytes before a WAL segment rolls */
    uint32_t compaction_threshold;  /* similar-size tables that trigger a merge,
                                       and the table count at which the newest
                                       similar-size ones merge; >= 2 */
    uint32_t max_size_amp_percent;  /* the tables in front of the oldest one,
                                       past this percent of its bytes, are all
                                       merged into it; 0 = never (compaction.c) */
    uint32_t compaction_interval_ms;/* >= 1 */
    uint32_t gc_interval_secs;      /* >= 1 */
    int64_t default_ttl_secs;       /* 0 = records never expire by default */
    int64_t time_bucket_secs;       /* compaction keeps tables whose newest
                                       expiry falls in different buckets of
                                       this width apart, so whole tables
                                       expire together; >= 1 */
    uint32_t cache_shards;          /* power of two, 1..256 */
    uint32_t max_tables;            /* live SST slots in the region */
    uint32_t max_snapshots;         /* concurrently pinned snapshots/iterators */
    uint32_t max_inflight_writes;   /* concurrently prepared batches */
    uint32_t write_wait_ms;         /* back-pressure wait before LSM_BUSY */
    size_t ingest_batch_size;       /* a batch whose memtable footprint reaches
                                       this many bytes is written straight to
                                       a table instead (0 = memtable_size / 2);
                                       batches larger than a memtable always are */
} lsm_config;

void lsm_config_defaults(lsm_config *cfg);
/* LSM_OK, or LSM_INVALID with a message naming the first bad field.
 * Touches nothing on disk. */
lsm_status lsm_config_validate(const lsm_config *cfg);

/* ------------------------------------------------------------- open/close */

typedef struct lsm_db lsm_db;

/* Recovery filter: decides, per tag, whether a batch replayed from the WAL is
 * kept.  Tag 0 (untagged) batches are always kept.  Return true to keep. */
typedef bool (*lsm_tag_filter_fn)(uint64_t tag, void *arg);
/* Clock in Unix seconds; tests inject their own. */
typedef int64_t (*lsm_clock_fn)(void *arg);

typedef struct lsm_open_options {
    lsm_tag_filter_fn tag_filter;  /* NULL: keep every batch */
    void *tag_filter_arg;
    lsm_clock_fn clock;            /* NULL: time(NULL) */
    void *clock_arg;
    bool background_threads;       /* standalone: run flush, compaction, GC
                                      and WAL sync on the engine's threads */
} lsm_open_options;

size_t lsm_region_size(const lsm_config *cfg);

/* Host: validate cfg, initialise `region` (NULL = allocate privately), open
 * the directory, recover from manifest + WAL, mark the region ready. */
lsm_status lsm_open(const lsm_config *cfg, void *region, size_t region_size,
                    const lsm_open_options *opts, lsm_db **out);
/* Host: flush memtables, sync the WAL, mark the region closed, release. */
lsm_status lsm_close(lsm_db *db);

/* Host, from a background process after open: fault the whole shared
 * region in (memtable arenas, block caches) so that writers and cache
 * fills do not take first-touch page faults later.  Contents are not
 * changed, so it may run while other processes use the region. */
void lsm_prefault(lsm_db *db);

/* Other processes: true once the host finished recovery. */
bool lsm_region_ready(const void *region);
/* Attach a process-local handle to a ready region.  LSM_CLOSED if not ready. */
lsm_status lsm_attach(void *region, const lsm_open_options *opts, lsm_db **out);
/* Release this process's handle (open iterators/snapshots must be closed). */
void lsm_detach(lsm_db *db);

/* ----------------------------------------------------------------- writes */

typedef struct lsm_batch lsm_batch;  /* process-local, reusable */

lsm_batch *lsm_batch_new(void);
void lsm_batch_free(lsm_batch *b);
void lsm_batch_clear(lsm_batch *b);
/* TTL applied to puts in this batch that carry no explicit expire_at:
 * -1 (the default) = the engine's default_ttl_secs; 0 = never expire. */
void lsm_batch_set_ttl(lsm_batch *b, int64_t ttl_secs);
/* Opaque tag stored in the batch's WAL header (see lsm_tag_filter_fn). */
void lsm_batch_set_tag(lsm_batch *b, uint64_t tag);
lsm_status lsm_batch_put(lsm_batch *b, const void *key, size_t key_len, int64_t ts,
                         const void *value, size_t value_len);
/* expire_at: absolute Unix seconds; 0 = take the batch TTL. */
lsm_status lsm_batch_put_expiring(lsm_batch *b, const void *key, size_t key_len, int64_t ts,
                                  int64_t expire_at, const void *value, size_t value_len);
lsm_status lsm_batch_delete(lsm_batch *b, const void *key, size_t key_len, int64_t ts);
/* Range tombstone over keys [start, end), all ts. start < end required. */
lsm_status lsm_batch_delete_range(lsm_batch *b, const void *start, size_t start_len,
                                  const void *end, size_t end_len);
size_t lsm_batch_count(const lsm_batch *b);
size_t lsm_batch_bytes(const lsm_batch *b);

/* Apply a batch atomically: all or nothing, after a crash too.  Durable before
 * return in LSM_SYNC_ALWAYS mode, and visible to reads that start after it
 * returns (in every process).  Concurrent writers are group-committed. */
lsm_status lsm_write(lsm_db *db, lsm_batch *b);

/* Two-phase form for hosts with their own commit protocol (Postgres):
 * prepare writes the batch to the WAL (synced per sync mode) and inserts it
 * invisibly; commit makes it visible; abort discards it and logs the abort.
 * Between prepare and commit/abort, readers' visibility horizon cannot pass
 * the batch, so keep that window short.  Commit returns once the horizon
 * covers the batch (waiting for older prepared batches, at most
 * write_wait_ms).  A batch of any size is accepted: one whose memtable
 * footprint reaches cfg.ingest_batch_size is written as a table of its own
 * (sorted) instead of going through the WAL and a memtable.  Commit of a
 * memtable batch cannot fail; commit of such a table fails only if the
 * manifest cannot be written (LSM_IO), and the batch then stays in flight
 * (holding visibility back, its WAL record kept) until a restart's recovery
 * installs it.  Write latency covers prepare. */
typedef struct lsm_ticket { uint64_t first_seq; uint32_t count; uint32_t slot; } lsm_ticket;
lsm_status lsm_write_prepare(lsm_db *db, lsm_batch *b, lsm_ticket *t);
lsm_status lsm_write_commit(lsm_db *db, const lsm_ticket *t);
lsm_status lsm_write_abort(lsm_db *db, const lsm_ticket *t);

/* One write given in place to lsm_write_prepare_ops: the operations of
 * lsm_batch_put_expiring, lsm_batch_delete and lsm_batch_delete_range, with
 * the same limits.  expire_at is absolute Unix seconds, 0 = never (the
 * default TTL does not apply).  For LSM_OP_DELETE_RANGE, key is the start
 * and value the exclusive end. */
typedef enum lsm_op_kind { LSM_OP_PUT = 1, LSM_OP_DELETE, LSM_OP_DELETE_RANGE } lsm_op_kind;
typedef struct lsm_write_op {
    lsm_op_kind kind;
    const void *key;   size_t key_len;
    const void *value; size_t value_len;
    int64_t ts, expire_at;
} lsm_write_op;

/* lsm_write_prepare of the ops [0, n) in order, tagged like
 * lsm_batch_set_tag.  A transaction large enough to be written as a table is
 * sorted and written straight from the caller's memory (it need not stay
 * valid after return); a smaller one is encoded into *scratch (cleared
 * first; reusable) and prepared as that batch.  Either way the result is
 * what the same ops in one batch would give. */
lsm_status lsm_write_prepare_ops(lsm_db *db, const lsm_write_op *ops, size_t n, uint64_t tag,
                                 lsm_batch *scratch, lsm_ticket *t);

/* A table stream: a large transaction's table, written by a helper thread
 * while the transaction still makes its writes, so its commit only
 * finishes the file.  Ops must come in table order: LSM_OP_PUT and
 * LSM_OP_DELETE only, (key, ts) strictly increasing (keys bytewise, then
 * ts), and their key and value bytes must stay valid and unchanged until
 * lsm_write_prepare_stream or lsm_table_stream_abandon returns.  Until then
 * the file is invisible to everyone.  One thread uses a stream. */
typedef struct lsm_table_stream lsm_table_stream;
lsm_status lsm_table_stream_open(lsm_db *db, lsm_table_stream **out);
/* Takes one op; LSM_INVALID if it breaks the order above or is a range
 * delete (not taken: the stream stays as it was), the limits' errors as
 * lsm_write_prepare_ops, or an error the helper met writing earlier ops
 * (the stream is then of no further use: abandon it). */
lsm_status lsm_table_stream_add(lsm_table_stream *s, const lsm_write_op *op);
uint64_t lsm_table_stream_count(const lsm_table_stream *s);
/* Would lsm_write_prepare_ops write n ops holding key_value_bytes of keys
 * and values as a table?  (Only then is a stream worth opening.) */
bool lsm_write_ops_ingested(lsm_db *db, size_t n, size_t key_value_bytes);
/* lsm_write_prepare_ops of the streamed ops (tagged likewise): always
 * written as a table.  Frees the stream whatever the outcome. */
lsm_status lsm_write_prepare_stream(lsm_db *db, lsm_table_stream *s, uint64_t tag,
                                    lsm_ticket *t);
/* Drops a stream that will not be prepared: stops its thread, removes its
 * file.  NULL is a no-op. */
void lsm_table_stream_abandon(lsm_table_stream *s);

/* ------------------------------------------------------------------ reads */

typedef struct lsm_snapshot lsm_snapshot;

/* Pin the current state: reads through it ignore every later write, flush
 * and compaction.  Pins memory: release promptly. */
lsm_status lsm_snapshot_acquire(lsm_db *db, lsm_snapshot **out);
void lsm_snapshot_release(lsm_db *db, lsm_snapshot *snap);
uint64_t lsm_snapshot_seq(const lsm_snapshot *snap);

typedef struct lsm_read_options {
    const lsm_snapshot *snapshot;  /* NULL: the latest state */
    bool fill_cache;               /* default true */
    bool verify_checksums;         /* default true */
} lsm_read_options;
void lsm_read_options_init(lsm_read_options *ro);

/* A value returned by get: owned by the caller, reused across calls. */
typedef struct lsm_value {
    uint8_t *data;
    size_t len;
    size_t cap;
    int64_t ts;
    int64_t expire_at;
    uint64_t seq;   /* see lsm_record.seq */
} lsm_value;
void lsm_value_free(lsm_value *v);

lsm_status lsm_get(lsm_db *db, const lsm_read_options *ro, const void *key, size_t key_len,
                   int64_t ts, lsm_value *out);
/* n point reads at one snapshot: found[i] is what lsm_get(keys[i]) would
 * return (LSM_OK, LSM_NOT_FOUND or an error) and out[i] its value.  For
 * keys spread over data larger than the CPU caches it is faster than n
 * lsm_get calls: the first cache misses of the next keys' lookups (memtable
 * hash slots, bloom filter blocks) are started while the current key is
 * read.  Returns LSM_OK, or the first error any key met. */
typedef struct lsm_key_ts { const void *key; size_t key_len; int64_t ts; } lsm_key_ts;
lsm_status lsm_get_many(lsm_db *db, const lsm_read_options *ro, const lsm_key_ts *keys, size_t n,
                        lsm_value *out, lsm_status *found);
/* The record with the greatest ts for key. */
lsm_status lsm_get_latest(lsm_db *db, const lsm_read_options *ro, const void *key,
                          size_t key_len, lsm_value *out);

typedef struct lsm_scan_spec {
    const void *prefix;       size_t prefix_len;      /* NULL: no prefix */
    const void *key_lo;       size_t key_lo_len;      /* NULL: unbounded */
    bool key_lo_exclusive;                            /* default false */
    const void *key_hi;       size_t key_hi_len;      /* NULL: unbounded */
    bool key_hi_inclusive;                            /* default false */
    int64_t ts_min, ts_max;                           /* inclusive */
    bool reverse;             /* key desc, ts desc */
    uint64_t limit;           /* 0 = none */
} lsm_scan_spec;
void lsm_scan_spec_init(lsm_scan_spec *s);

typedef struct lsm_record {
    const uint8_t *key;  size_t key_len;
    int64_t ts;
    int64_t expire_at;
    const uint8_t *value; size_t value_len;
    /* The write's sequence number.  A later write of this (key, ts) always
     * has a seq above the snapshot it was read at; compaction may lower an
     * old record's seq (to 0), never raise it.  So "changed since my
     * snapshot" is "now absent, or seq > snapshot seq". */
    uint64_t seq;
} lsm_record;  /* valid until the next call on the iterator */

typedef struct lsm_iter lsm_iter;

typedef struct lsm_iter_stats {
    uint64_t records_scanned;      /* entries examined, visible or not */
    uint64_t records_returned;
    uint64_t blocks_read;          /* data blocks fetched (cache or disk) */
    uint64_t blocks_skipped_ts;    /* blocks skipped by the time index */
    uint64_t tables_skipped;       /* tables skipped by key / ts bounds */
    uint64_t tables_skipped_bloom; /* single-key scans: tables whose bloom
                                      filter rules the key out */
} lsm_iter_stats;

/* Lazy iterator in bounded memory.  Snapshot: ro->snapshot, else the state at
 * open.  Bounds are validated (ts_min > ts_max is LSM_INVALID). */
lsm_status lsm_iter_open(lsm_db *db, const lsm_read_options *ro, const lsm_scan_spec *spec,
                         lsm_iter **out);
/* LSM_OK with *rec filled, LSM_DONE at the end, or an error. */
lsm_status lsm_iter_next(lsm_iter *it, lsm_record *rec);
void lsm_iter_get_stats(const lsm_iter *it, lsm_iter_stats *st);
void lsm_iter_close(lsm_iter *it);

/* ------------------------------------------------------------ maintenance */

/* Freeze the active memtable (if not empty) and flush every frozen one. */
lsm_status lsm_flush(lsm_db *db);
/* One compaction step if one is due; *did_work tells. */
lsm_status lsm_compact_step(lsm_db *db, bool *did_work);
/* Compaction steps until none is due. */
lsm_status lsm_compact(lsm_db *db);
/* Flush, then merge every table into one. */
lsm_status lsm_compact_full(lsm_db *db);
/* Drop expired data: whole expired tables, then rewrite tables whose
 * expired share is large.  *purged (optional) counts records removed. */
lsm_status lsm_gc(lsm_db *db, uint64_t *purged);
/* fsync the WAL up to everything written so far. */
lsm_status lsm_wal_sync(lsm_db *db);
/* Host loop: do whatever maintenance is due now (flush frozen memtables,
 * interval sync, compaction, GC), never blocking longer than one step. */
lsm_status lsm_maintenance_run(lsm_db *db);
/* Host loop: sleep until maintenance may be due or timeout_ms passes. */
void lsm_maintenance_wait(lsm_db *db, uint32_t timeout_ms);

/* ------------------------------------------------------------------ stats */

typedef struct lsm_latency {
    double p50_us, p90_us, p99_us;
    uint64_t count;
} lsm_latency;

typedef struct lsm_stats {
    uint64_t records_written, bytes_written;
    uint64_t records_read, bytes_read;
    uint64_t flushes, compactions, gc_runs, records_purged;
    uint64_t memtable_records, memtable_bytes;   /* active + frozen */
    uint64_t frozen_memtables;
    uint64_t table_count, table_bytes;
    uint64_t wal_bytes;                          /* appended since open */
    uint64_t wal_records_dropped;     /* at the last recovery */
    uint64_t cache_hits, cache_misses;
    double cache_hit_rate;            /* hits / (hits + misses), 0 if none */
    uint64_t raw_bytes_flushed, sst_bytes_flushed;
    double compression_ratio;         /* raw / stored, 0 if nothing flushed */
    uint64_t write_stalls;
    uint64_t ingests;                 /* batches written straight to a table */
    uint64_t ingests_streamed;        /* of those, tables written by a table stream */
    uint64_t last_seq;
    /* write: every batch; read: every 16th point read per thread (timing
     * each would cost ~10% of a memtable get); flush: every flush. */
    lsm_latency write_latency, read_latency, flush_latency;
} lsm_stats;

lsm_status lsm_get_stats(lsm_db *db, lsm_stats *out);
/* Prometheus exposition text (metric names flowdb_*); malloc'd, caller frees. */
lsm_status lsm_metrics_text(lsm_db *db, char **out);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* FLOWDB_LSM_H */
