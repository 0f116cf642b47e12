/*
 * db.h — the engine's process-local handle and the functions its files share.
 *
 * An lsm_db is one process's view of the shared region: its own file
 * descriptors (WAL segment, SST tables, manifest) and scratch space.  All
 * cross-process state is in the region (region.h).
 */
#ifndef LSM_DB_H
#define LSM_DB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "block_cache.h"
#include "fence_index.h"
#include "file_io.h"
#include "lsm.h"
#include "manifest.h"
#include "region.h"
#include "sst.h"

/* Defined here because handles keep their index and filter pinned. */
typedef struct block_ref {
    const uint8_t *data;
    size_t len;
    block_cache *cache;          /* non-NULL when pinned in a cache */
    cache_pin pin;
    uint8_t *own;                /* malloc'd copy when not cached */
} block_ref;

/* This process's open table: fd plus its index and filter blocks, pinned in
 * the shared index cache (or copied locally when it is full) for as long as
 * the handle lives, so point reads take no lock for them. */
typedef struct table_handle {
    uint64_t file_no;   /* 0: empty */
    sst_table *table;
    _Atomic bool meta_loaded;   /* set last: the fields below are ready */
    block_ref index_ref, filter_ref;
    sst_block index;
    fence_index fences;
} table_handle;

struct lsm_db {
    region_header *hdr;
    void *owned_region;          /* mmap'd by lsm_open when the caller gave none */
    size_t owned_size;
    bool is_host;
    lsm_open_options opts;
    const char *dir;             /* hdr->cfg.dir */
    block_cache *data_cache, *index_cache;

    pthread_mutex_t local_mu;    /* the fields below, across this process's threads */
    int wal_fd;                  /* open on segment wal_fd_seg, -1 if none */
    uint64_t wal_fd_seg;
    int sync_fd;
    uint64_t sync_fd_seg;
    table_handle *handles;       /* indexed by table slot */
    uint64_t handles_gen;        /* version_gen at the last stale-handle sweep */
    manifest *man;
    uint64_t man_gen;
    int lock_fd;                 /* host: flock on <dir>/LOCK */

    uint64_t hash_scratch[1024]; /* write_mu holders only: a batch's slot hashes */

    pthread_t bg_thread, bg_thread2;   /* flusher, compactor */
    bool bg_running, bg2_running;
    _Atomic bool bg_stop;
};

struct lsm_snapshot {
    uint32_t version;
    uint64_t seq;
};

/* ---- time */
int64_t db_now_secs(lsm_db *db);
int64_t mono_ms(void);
uint64_t mono_us(void);

/* ---- locking helpers (process-shared mutexes never fail in practice;
 *      EOWNERDEAD is not used: a dead holder means the host restarts) */
void mu_lock(pthread_mutex_t *mu);
void mu_unlock(pthread_mutex_t *mu);
/* Waits on cv for at most ms; returns false on timeout. */
bool cv_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, uint32_t ms);
void db_wake_maintenance(lsm_db *db);
/* Counts records / bytes returned to a reader (this thread's stripe). */
void stats_count_read(lsm_db *db, uint64_t records, uint64_t bytes);

/* ---- versions (version.c) */
/* Pins the current version and reads visible_seq consistently with it. */
uint32_t version_pin_current(lsm_db *db, uint64_t *visible_seq);
void version_unpin(lsm_db *db, uint32_t v);
typedef struct version_change {
    int new_active;              /* >= 0: freeze the active memtable, this becomes active */
    int drop_mem;                /* >= 0: flushed memtable slot leaves the version */
    int add_table_front;         /* >= 0: table slot added as the newest table */
    const uint32_t *replace;     /* tables replaced (contiguous run) ... */
    uint32_t n_replace;
    int replacement;             /* ... by this slot, or -1 to just remove them */
} version_change;
void version_change_init(version_change *c);
/* Builds and installs a new current version (caller holds version_mu). */
lsm_status version_apply(lsm_db *db, const version_change *c);
/* version_apply under version_mu, retrying while no version slot is free
 * (a slot frees as soon as a reader unpins an old version). */
void version_apply_waiting(lsm_db *db, const version_change *c);
/* Table slot with state FREE, marked LIVE-pending; -1 if none (version_mu). */
int table_slot_alloc(lsm_db *db);
void db_delete_obsolete_tables(lsm_db *db);

/* ---- per-process table handles and block fetching (table_cache.c) */
lsm_status table_open_slot(lsm_db *db, uint32_t slot, sst_table **out);
/* The handle with index and filter loaded; valid while the caller's pinned
 * version lists the slot. */
lsm_status table_handle_get(lsm_db *db, uint32_t slot, const lsm_read_options *ro,
                            table_handle **out);
void table_handles_close_all(lsm_db *db);
/* Prefixes an error met while reading table file_no with its path (unless
 * the message names it already); passes other statuses through. */
lsm_status table_error(lsm_db *db, uint64_t file_no, lsm_status st);
void sst_file_path(char *buf, size_t len, const char *dir, uint64_t file_no);

/* Fetches a block through the cache; with a miss it is read into scratch
 * (and copied into the cache when ro->fill_cache).  When `parsed` is given
 * the block is an sst block: validated once when read from disk (only
 * validated bytes enter the cache) and viewed without re-validation after.
 * Release with block_ref_release before scratch is reused. */
lsm_status block_fetch(lsm_db *db, sst_table *t, uint64_t file_no, sst_handle h, bool meta,
                       const lsm_read_options *ro, block_buf *scratch, block_ref *out,
                       sst_block *parsed);
void block_ref_release(block_ref *r);

/* ---- writes (write.c) */
lsm_status wal_group_sync(lsm_db *db, uint64_t upto);
/* Freeze the active memtable and start a new one with a new WAL segment
 * (caller holds write_mu).  Waits (back-pressure) for a free memtable. */
lsm_status db_switch_memtable(lsm_db *db);
lsm_status wal_start_segment(lsm_db *db, uint64_t seg_no);

/* ---- flush (flush.c) */
lsm_status flush_frozen(lsm_db *db);
/* A table slot and file number for a new SST (flush, ingest); release
 * returns the slot when the table is not installed. */
lsm_status table_file_reserve(lsm_db *db, int *slot, uint64_t *file_no);
void table_file_release(lsm_db *db, int slot);
lsm_status table_build_options(lsm_db *db, sst_options *o);
/* Flushes only if no other flush runs (for stalled writers); *ran tells. */
lsm_status flush_frozen_if_idle(lsm_db *db, bool *ran);
lsm_status manifest_handle(lsm_db *db, manifest **out);
lsm_status manifest_write_edit(lsm_db *db, const manifest_edit *e);
/* Appends e to the manifest, then applies c to the current version, as one
 * step under manifest_mu (a manifest rewrite never sees one without the
 * other); log_number, if given, becomes the region's with them. */
lsm_status manifest_log_and_apply(lsm_db *db, const manifest_edit *e, const version_change *c,
                                  const uint64_t *log_number);

/* ---- compaction and GC (compaction.c, gc.c) */
typedef struct compaction_job {
    uint32_t *inputs;            /* table slots, newest first, contiguous */
    uint32_t n_inputs;
    bool bottommost;             /* inputs include the oldest table */
    int64_t now;
    uint64_t purged;             /* out: records dropped as expired */
} compaction_job;
lsm_status compaction_run(lsm_db *db, compaction_job *job);
lsm_status tables_replace(lsm_db *db, const uint32_t *run, uint32_t n, int replacement);

/* ---- range tombstones visible to a read (rtombs.c) */
typedef struct rtomb {
    uint8_t *start, *end;        /* owned copies */
    uint32_t start_len, end_len;
    uint64_t seq;
} rtomb;
typedef struct rtomb_set {
    rtomb *items;
    size_t n, cap;
} rtomb_set;
/* Collects the range tombstones of version v with seq <= snap that overlap
 * [lo, hi) (hi NULL = unbounded). */
lsm_status rtomb_collect(lsm_db *db, uint32_t v, uint64_t snap, const uint8_t *lo, size_t lo_len,
                         const uint8_t *hi, size_t hi_len, const lsm_read_options *ro,
                         rtomb_set *out);
/* Point reads: is key's version with `seq` deleted by a range tombstone
 * with seq in (seq, snap]?  Copies nothing; skips every source whose max
 * seq is <= seq and tables whose key bounds exclude key. */
lsm_status rtomb_point_covered(lsm_db *db, uint32_t v, uint64_t snap, const uint8_t *key,
                               size_t klen, uint64_t seq, const lsm_read_options *ro,
                               bool *covered);
/* True if a tombstone with seq > entry_seq covers key. */
bool rtomb_covers(const rtomb_set *s, const uint8_t *key, size_t klen, uint64_t entry_seq);
void rtomb_set_free(rtomb_set *s);
lsm_status rtomb_add(rtomb_set *s, const uint8_t *start, size_t slen, const uint8_t *end,
                     size_t elen, uint64_t seq);

#endif /* LSM_DB_H */
