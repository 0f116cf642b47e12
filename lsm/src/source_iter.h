/*
 * source_iter.h — iteration over one source (a memtable or a table) for the
 * merging iterator.
 *
 * A source iterator stands on one (key, ts) at a time and exposes, as `cur`,
 * the newest version of it that the snapshot may see:
 *   - memtables hold several versions per (key, ts), some invisible (seq
 *     above the snapshot, or aborted); groups without a visible version are
 *     skipped;
 *   - tables hold exactly one version per (key, ts), all visible to every
 *     reader whose version lists the table (flush and compaction keep only
 *     the newest version, and only write data below visible_seq).
 * Entries whose ts is outside [ts_min, ts_max] are skipped; table blocks
 * whose [min_ts, max_ts] misses that range are not read at all.
 *
 * `cur` points into memory the source keeps pinned until it moves.
 */
#ifndef LSM_SOURCE_ITER_H
#define LSM_SOURCE_ITER_H

#include "db.h"

typedef struct iter_counters {
    uint64_t scanned, blocks_read, blocks_skipped_ts;
} iter_counters;

typedef struct source_iter {
    bool is_table;
    bool valid;
    lsm_entry cur;
    int64_t ts_min, ts_max;
    uint64_t snap;
    iter_counters *counters;
    lsm_status status;        /* first error met while moving */
    /* memtable */
    memtable *mem;
    uint32_t group;           /* offset of the current group's newest node */
    /* table */
    lsm_db *db;
    sst_table *table;
    uint64_t file_no;
    uint64_t uniform_seq;     /* nonzero: every entry's seq (sst_table_uniform_seq) */
    const lsm_read_options *ro;
    table_handle *handle;     /* index pinned there */
    block_ref data_ref;
    block_buf data_buf;
    sst_block index, block;
    uint32_t block_i, entry_i;
    bool block_loaded;
} source_iter;

void source_init_memtable(source_iter *s, memtable *m, uint64_t snap, int64_t ts_min,
                          int64_t ts_max, iter_counters *c);
/* snap: entries with a larger seq are skipped (an ingested table is
 * installed a moment before its batch becomes visible); UINT64_MAX: all. */
lsm_status source_init_table(source_iter *s, lsm_db *db, uint32_t slot, const lsm_read_options *ro,
                             uint64_t snap, int64_t ts_min, int64_t ts_max, iter_counters *c);
void source_release(source_iter *s);

void source_seek_first(source_iter *s);
void source_seek_last(source_iter *s);
/* First (key, ts) >= target. */
void source_seek(source_iter *s, const uint8_t *key, size_t klen, int64_t ts);
/* Last (key, ts) <= target. */
void source_seek_for_prev(source_iter *s, const uint8_t *key, size_t klen, int64_t ts);
void source_next(source_iter *s);
void source_prev(source_iter *s);

#endif /* LSM_SOURCE_ITER_H */
