/*
 * flush.c — turning the oldest frozen memtable into an SST.
 *
 * Order of effects, each durable before the next, so a crash at any point
 * recovers to a consistent state:
 *   1. wait until every batch in the memtable has committed or aborted
 *      (visible_seq >= its max seq), so what is written is final;
 *   2. write the SST (fsync'd by the builder) under a new file number;
 *   3. append a manifest edit: add the table, advance log_number to the
 *      first WAL segment of the next newer memtable;
 *   4. install a version without the memtable and with the table;
 *   5. delete WAL segments below log_number.
 * A crash before 3 leaves an orphan file that open() deletes; after 3 the
 * WAL segments are merely redundant.
 *
 * The SST keeps only the newest version of each (key, ts): every version is
 * visible by now and older readers pin the memtable itself.  An expired put
 * becomes a point tombstone, because it may shadow an older table's version.
 * When no table exists yet the flush is "bottommost", like a bottommost
 * compaction: range tombstones are applied and dropped, point tombstones
 * and expired records dropped, and seqs zeroed (see compaction.c).
 */
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "ingest.h"
#include "sst.h"
#include "status.h"
#include "wal.h"

#define MANIFEST_REWRITE_BYTES (4u << 20)

lsm_status manifest_handle(lsm_db *db, manifest **out)
{
    lsm_status st = LSM_OK;
    mu_lock(&db->local_mu);
    if (!db->man)
        st = manifest_open(db->dir, &db->man);
    *out = db->man;
    mu_unlock(&db->local_mu);
    return st;
}

/* Rewrites the manifest as one snapshot of the current state when the log
 * has grown well past its last snapshot (manifest_mu held). */
static lsm_status maybe_rewrite_manifest(lsm_db *db, manifest *m)
{
    region_header *h = db->hdr;
    uint64_t size = manifest_size(m);
    if (size < MANIFEST_REWRITE_BYTES || size < 2 * h->manifest_base_bytes)
        return LSM_OK;
    manifest_state st = {0};
    mu_lock(&h->version_mu);
    version *v = region_version(h, h->current_version);
    table_meta metas[v->n_tables ? v->n_tables : 1];
    for (uint32_t i = 0; i < v->n_tables; i++)
        metas[v->n_tables - 1 - i] = region_table(h, v->tables[i])->meta; /* oldest first */
    st.n_tables = v->n_tables;
    st.next_file_no = h->next_file_no;
    st.log_number = h->log_number;
    st.last_seq = atomic_load(&h->visible_seq);
    mu_unlock(&h->version_mu);
    st.tables = metas;
    lsm_status rc = manifest_rewrite(m, &st);
    if (rc == LSM_OK)
        h->manifest_base_bytes = manifest_size(m);
    return rc;
}

lsm_status manifest_write_edit(lsm_db *db, const manifest_edit *e)
{
    manifest *m;
    lsm_status st = manifest_handle(db, &m);
    if (st == LSM_OK)
        st = manifest_append(m, e);
    if (st == LSM_OK)
        st = maybe_rewrite_manifest(db, m);
    return st;
}

lsm_status manifest_log_and_apply(lsm_db *db, const manifest_edit *e, const version_change *c,
                                  const uint64_t *log_number)
{
    region_header *h = db->hdr;
    mu_lock(&h->manifest_mu);
    lsm_status st = manifest_write_edit(db, e);
    if (st == LSM_OK) {
        /* The manifest already lists the change: the version must follow. */
        version_apply_waiting(db, c);
        if (log_number) {
            mu_lock(&h->version_mu);
            h->log_number = *log_number;
            mu_unlock(&h->version_mu);
        }
    }
    mu_unlock(&h->manifest_mu);
    return st;
}

static lsm_status wait_until_resolved(lsm_db *db, uint64_t max_seq)
{
    region_header *h = db->hdr;
    int64_t deadline = mono_ms() + h->cfg.write_wait_ms;
    mu_lock(&h->inflight_mu);
    while (atomic_load(&h->visible_seq) < max_seq) {
        if (mono_ms() >= deadline) {
            mu_unlock(&h->inflight_mu);
            return lsm_fail(LSM_BUSY, "flush waited %u ms for prepared writes to commit",
                            h->cfg.write_wait_ms);
        }
        cv_wait_ms(&h->inflight_cv, &h->inflight_mu, 50);
    }
    mu_unlock(&h->inflight_mu);
    return LSM_OK;
}

typedef struct flush_out {
    sst_builder *b;
    int64_t now;
    int64_t min_expire;
    bool bottommost;
    rtomb_set rtombs;       /* bottommost: the memtable's range tombstones */
} flush_out;

/* Writes the range tombstones, or, bottommost, collects them to apply. */
static lsm_status add_range_tombstones(flush_out *o, memtable *m)
{
    for (uint32_t off = memtable_rt_first(m); off; off = memtable_rt_next(m, off)) {
        mem_node *n = memtable_node(m, off);
        if (atomic_load(&n->aborted))
            continue;
        lsm_entry e;
        memtable_node_entry(n, &e);
        lsm_status st = o->bottommost
                            ? rtomb_add(&o->rtombs, e.key, e.key_len, e.value, e.value_len, e.seq)
                            : sst_builder_add_range_tombstone(o->b, &e);
        if (st != LSM_OK)
            return st;
    }
    return LSM_OK;
}

/* Emits the newest non-aborted version of each (key, ts). */
static lsm_status add_point_entries(flush_out *o, memtable *m)
{
    const uint8_t *last_key = NULL;
    uint32_t last_len = 0;
    int64_t last_ts = 0;
    for (uint32_t off = memtable_first(m); off; off = memtable_next(m, off)) {
        mem_node *n = memtable_node(m, off);
        if (atomic_load(&n->aborted))
            continue;
        lsm_entry e;
        memtable_node_entry(n, &e);
        if (last_key && entry_compare_kt(e.key, e.key_len, e.ts, last_key, last_len, last_ts) == 0)
            continue;
        last_key = e.key;
        last_len = e.key_len;
        last_ts = e.ts;
        bool expired = e.type == ENTRY_PUT && entry_is_expired(&e, o->now);
        if (o->bottommost) {
            if (e.type == ENTRY_DELETE || expired ||
                (o->rtombs.n && rtomb_covers(&o->rtombs, e.key, e.key_len, e.seq)))
                continue;
            e.seq = 0;
        } else if (expired) {
            e.type = ENTRY_DELETE;
            e.value_len = 0;
            e.expire_at = 0;
        }
        if (e.type == ENTRY_PUT && e.expire_at && e.expire_at < o->min_expire)
            o->min_expire = e.expire_at;
        lsm_status st = sst_builder_add(o->b, &e);
        if (st != LSM_OK)
            return st;
    }
    return LSM_OK;
}

lsm_status table_file_reserve(lsm_db *db, int *slot, uint64_t *file_no)
{
    region_header *h = db->hdr;
    mu_lock(&h->version_mu);
    *slot = table_slot_alloc(db);
    *file_no = h->next_file_no++;
    mu_unlock(&h->version_mu);
    if (*slot < 0)
        return lsm_fail(LSM_BUSY, "all %u table slots are in use (raise max_tables)",
                        h->cfg.max_tables);
    return LSM_OK;
}

void table_file_release(lsm_db *db, int slot)
{
    mu_lock(&db->hdr->version_mu);
    region_table(db->hdr, (uint32_t) slot)->state = SLOT_FREE;
    mu_unlock(&db->hdr->version_mu);
}

lsm_status table_build_options(lsm_db *db, sst_options *o)
{
    o->block_size = db->hdr->cfg.block_size;
    o->bloom_bits_per_key = db->hdr->cfg.bloom_bits_per_key;
    return LSM_OK;
}

/* Writes memtable slot mi as table `slot`; *empty when nothing survived. */
static lsm_status write_table(lsm_db *db, uint32_t mi, int slot, uint64_t file_no, bool *empty)
{
    region_header *h = db->hdr;
    memtable *m = region_memtable(h, mi);
    char path[1100];
    sst_file_path(path, sizeof path, db->dir, file_no);
    sst_options opt;
    table_build_options(db, &opt);
    flush_out o = {.now = db_now_secs(db), .min_expire = INT64_MAX};
    mu_lock(&h->version_mu);
    o.bottommost = region_version(h, h->current_version)->n_tables == 0;
    mu_unlock(&h->version_mu);
    lsm_status st = sst_builder_open(path, file_no, &opt, &o.b);
    if (st != LSM_OK)
        return st;
    if (o.bottommost)
        st = add_range_tombstones(&o, m); /* collected first, applied to entries */
    if (st == LSM_OK)
        st = add_point_entries(&o, m);
    if (st == LSM_OK && !o.bottommost)
        st = add_range_tombstones(&o, m);
    rtomb_set_free(&o.rtombs);
    table_slot *ts = region_table(h, (uint32_t) slot);
    *empty = st == LSM_OK && sst_builder_entries(o.b) == 0 &&
             (o.bottommost || memtable_rt_first(m) == 0);
    if (st != LSM_OK || *empty) {
        sst_builder_abandon(o.b);
        return st;
    }
    st = sst_builder_finish(o.b, &ts->meta);
    ts->min_expire_hint = o.min_expire;
    return st == LSM_OK ? fsync_dir(db->dir) : st;
}

static uint32_t oldest_frozen(region_header *h, int *next_newer)
{
    version *v = region_version(h, h->current_version);
    if (v->n_mem < 2)
        return UINT32_MAX;
    *next_newer = (int) v->mem[v->n_mem - 2];
    return v->mem[v->n_mem - 1];
}

static lsm_status install_flush(lsm_db *db, uint32_t mi, int slot, bool empty, uint64_t log_number)
{
    region_header *h = db->hdr;
    table_meta meta = region_table(h, (uint32_t) slot)->meta;
    manifest_edit e = {0};
    e.has_next_file_no = true;
    e.next_file_no = h->next_file_no;
    e.has_log_number = true;
    e.log_number = log_number;
    e.has_last_seq = true;
    e.last_seq = atomic_load(&region_memtable(h, mi)->max_seq);
    if (!empty) {
        e.n_added = 1;
        e.added = &meta;
    }
    version_change c;
    version_change_init(&c);
    c.drop_mem = (int) mi;
    c.add_table_front = empty ? -1 : slot;
    return manifest_log_and_apply(db, &e, &c, &log_number);
}

/* Flushes the oldest frozen memtable; *done = false when there was none. */
static lsm_status flush_one(lsm_db *db, bool *flushed)
{
    region_header *h = db->hdr;
    int next_newer = -1;
    mu_lock(&h->version_mu);
    uint32_t mi = oldest_frozen(h, &next_newer);
    mu_unlock(&h->version_mu);
    *flushed = false;
    if (mi == UINT32_MAX)
        return LSM_OK;
    uint64_t t0 = mono_us();
    memtable *m = region_memtable(h, mi);
    lsm_status st = wait_until_resolved(db, atomic_load(&m->max_seq));
    int slot = -1;
    uint64_t file_no = 0;
    bool empty = false;
    uint64_t log_number = region_mem_slot(h, (uint32_t) next_newer)->first_wal_seg;
    if (st == LSM_OK && ingest_pending_below(h, log_number))
        return LSM_OK; /* its WAL record must outlive it: flush once it resolves */
    if (st == LSM_OK)
        st = table_file_reserve(db, &slot, &file_no);
    if (st == LSM_OK)
        st = write_table(db, mi, slot, file_no, &empty);
    if (st == LSM_OK)
        st = install_flush(db, mi, slot, empty, log_number);
    if (st != LSM_OK || empty) {
        if (slot >= 0)
            table_file_release(db, slot);
        if (st != LSM_OK && !empty && slot >= 0) {
            char path[1100];
            sst_file_path(path, sizeof path, db->dir, file_no);
            remove(path);
        }
        if (st != LSM_OK)
            return st;
    }
    wal_delete_segments_below(db->dir, log_number);
    atomic_fetch_add(&h->stats.flushes, 1);
    if (!empty) {
        table_meta *meta = &region_table(h, (uint32_t) slot)->meta;
        atomic_fetch_add(&h->stats.raw_bytes_flushed, meta->raw_bytes);
        atomic_fetch_add(&h->stats.sst_bytes_flushed, meta->file_size);
    }
    histogram_record(&h->stats.flush_latency, mono_us() - t0);
    *flushed = true;
    return LSM_OK;
}

static lsm_status flush_all_locked(lsm_db *db)
{
    lsm_status st = LSM_OK;
    for (bool flushed = true; st == LSM_OK && flushed;)
        st = flush_one(db, &flushed);
    return st;
}

lsm_status flush_frozen(lsm_db *db)
{
    mu_lock(&db->hdr->flush_mu);
    lsm_status st = flush_all_locked(db);
    mu_unlock(&db->hdr->flush_mu);
    return st;
}

lsm_status flush_frozen_if_idle(lsm_db *db, bool *ran)
{
    *ran = pthread_mutex_trylock(&db->hdr->flush_mu) == 0;
    if (!*ran)
        return LSM_OK;
    lsm_status st = flush_all_locked(db);
    mu_unlock(&db->hdr->flush_mu);
    return st;
}

lsm_status lsm_flush(lsm_db *db)
{
    if (!db)
        return lsm_fail(LSM_INVALID, "flush: NULL database");
    if (atomic_load(&db->hdr->state) != REGION_READY)
        return lsm_fail(LSM_CLOSED, "engine is not open");
    region_header *h = db->hdr;
    lsm_status st = flush_frozen(db); /* frees memtables so the switch cannot stall */
    if (st != LSM_OK)
        return st;
    mu_lock(&h->write_mu);
    if (!memtable_is_empty(region_memtable(h, h->active_mem)))
        st = db_switch_memtable(db);
    mu_unlock(&h->write_mu);
    if (st == LSM_OK)
        st = flush_frozen(db);
    return st;
}
