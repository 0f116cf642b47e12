/*
 * ingest.h — large batches written straight to a table (see ingest.c).
 */
#ifndef LSM_INGEST_H
#define LSM_INGEST_H

#include <stdbool.h>
#include <stddef.h>

#include "batch.h"
#include "entry.h"
#include "region.h"
#include "status.h"

typedef struct lsm_db lsm_db;

/* A batch's ops in table order.  Entries are slices of the batch (or of the
 * caller's ops), which must outlive the run; their seq is the op's index in the batch. */
typedef struct ingest_run {
    lsm_entry *points;        /* PUT / DELETE, (key, ts) asc, later op first */
    size_t n_points;
    lsm_entry *ranges;        /* RANGE_DELETE with start < end, batch order */
    size_t n_ranges;
    size_t n_empty_ranges;    /* start >= end: deletes nothing */
    const uint8_t *lo, *hi;   /* smallest key / largest key or range end; */
    uint32_t lo_len, hi_len;  /* lo NULL when the run touches no key */
} ingest_run;

/* Should a batch with this memtable footprint be ingested as a table? */
bool ingest_wanted(const region_header *h, size_t arena_bound);

lsm_status ingest_sort(const lsm_batch *b, ingest_run *r);
/* The same for ops given in place (validated like batch ops); the entries
 * are slices of the caller's memory. */
lsm_status ingest_sort_ops(const lsm_write_op *ops, size_t n, ingest_run *r);
void ingest_run_free(ingest_run *r);

/* write_mu held: freezes and flushes the memtables holding keys in the
 * run's range, so none holds an older version of them.  Returns with
 * write_mu held, but may release it while it waits for a flush. */
lsm_status ingest_make_room(lsm_db *db, const ingest_run *r);

/* The entry a table gets for a batch's put or delete: an expired put
 * becomes a point tombstone (it may shadow an older table's version), a
 * tombstone carries no value; a put's expiry lowers *min_expire. */
void ingest_table_entry(lsm_entry *e, int64_t now, int64_t *min_expire);

/* The builder of the table in reserved `slot` (file `path`) ended with st:
 * on success the directory entry is made durable and *slot_out = slot; on
 * failure (or if that fails) the file is removed, the slot freed and
 * *slot_out = -1. */
lsm_status ingest_table_settle(lsm_db *db, int slot, const char *path, lsm_status st,
                               int *slot_out);

/* Writes the run as an SST with seqs first_seq + op index (fsync'd, the
 * directory too); *slot = its table slot, not yet in any version. */
lsm_status ingest_build(lsm_db *db, const ingest_run *r, uint64_t first_seq, int *slot);

/* Commit (and recovery of a kept INGEST): the manifest lists the table,
 * then it is the newest table. */
lsm_status ingest_install(lsm_db *db, int slot);
/* Abort: removes the file and frees the slot. */
void ingest_discard(lsm_db *db, int slot);

/* Is an unresolved ingest's WAL record in a segment below seg?  (A flush
 * that would delete such segments waits.) */
bool ingest_pending_below(region_header *h, uint64_t seg);

#endif /* LSM_INGEST_H */
