/*
 * compaction.c — size-tiered compaction with a streaming merge.
 *
 * Tables are kept newest first: for any one key, a table in front holds
 * newer versions than a table behind it.  (Seq ranges of whole tables may
 * interleave: an ingested table can sit behind tables flushed later from
 * memtables that share no key with it — ingest.c.)  A compaction merges a
 * contiguous run of them into one table that takes the run's place, so
 * that order (and "newest source wins") still holds.
 *
 * Picking, first rule that applies:
 *
 * 1. Space amplification: when the tables in front of the oldest one that
 *    share its expiry bucket hold more than max_size_amp_percent of the
 *    oldest one's bytes, that whole run is merged into it (the trigger of
 *    RocksDB's universal compaction).  A small oldest table (the first
 *    flush of a store that grew later) otherwise never finds partners, and
 *    every point read of a key it holds probes each table in front of it.
 *    Such a merge waits until the tables in front have outgrown the oldest,
 *    so it rewrites at most 1 + 100 / max_size_amp_percent times their
 *    bytes (2x at the default 100).
 * 2. Tiers: a table's tier is floor(log4(size / 1 MiB)); a run of at least
 *    compaction_threshold adjacent tables of one tier whose newest expiries
 *    fall in the same time bucket is merged, the lowest tier first.
 * 3. Table count: once the version holds compaction_threshold tables, the
 *    newest run of adjacent tables of one tier and bucket merges even when
 *    it is shorter than that (2 tables or more), as universal compaction
 *    does once its sorted runs reach their trigger.  Tiers alone allow
 *    compaction_threshold - 1 tables in every tier, and a point read probes
 *    them all.
 *
 * Keeping expiry buckets apart lets TTL GC drop whole tables.  A run whose
 * tables' key ranges are pairwise disjoint (a sequential load) is left
 * alone by every rule: merging would rewrite every byte and drop nothing,
 * and reads already skip such tables by their key bounds — until the table
 * count passes a quarter of max_tables.  Past that ("crowded") rule 2
 * ignores tiers and expiry buckets too: alternating tiers or buckets must
 * not keep the table count growing until the table slots run out.
 *
 * Merging: one data block per input is in memory at a time.  Of each
 * (key, ts) only the newest version is kept; a version covered by a newer
 * range tombstone of the inputs is dropped.  When the run includes the
 * oldest table ("bottommost") nothing older can be shadowed, so point
 * tombstones, range tombstones and expired records are dropped too;
 * otherwise an expired record is kept as a point tombstone.
 */
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "merge_heap.h"
#include "status.h"

#define MAX_COMPACTION_INPUTS 64


static int size_tier(uint64_t bytes)
{
    int tier = 0;
    for (uint64_t s = bytes >> 20; s >= 4; s >>= 2)
        tier++;
    return tier;
}

static int64_t expiry_bucket(const lsm_config *cfg, const table_meta *m)
{
    return m->max_expire_at == INT64_MAX ? -1 : m->max_expire_at / cfg->time_bucket_secs;
}

static bool same_group(const lsm_config *cfg, bool crowded, const table_meta *a,
                       const table_meta *b)
{
    return crowded || (size_tier(a->file_size) == size_tier(b->file_size) &&
                       expiry_bucket(cfg, a) == expiry_bucket(cfg, b));
}

static bool run_overlaps(region_header *h, const uint32_t *tables, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = i + 1; j < n; j++)
            if (table_ranges_overlap(&region_table(h, tables[i])->meta,
                                     &region_table(h, tables[j])->meta))
                return true;
    return false;
}

static void take_run(const version *v, uint32_t start, uint32_t len, compaction_job *job)
{
    job->n_inputs = len;
    memcpy(job->inputs, &v->tables[start], len * sizeof(uint32_t));
    job->bottommost = start + len == v->n_tables;
}

/* The space-amplification run: the oldest table and the adjacent tables in
 * front of it in its expiry bucket, when they outgrow it (see the top). */
static bool pick_size_amp_run(region_header *h, const version *v, compaction_job *job)
{
    uint32_t pct = h->cfg.max_size_amp_percent;
    if (pct == 0 || v->n_tables < 2)
        return false;
    uint32_t oldest = v->n_tables - 1, start = oldest;
    const table_meta *base = &region_table(h, v->tables[oldest])->meta;
    uint64_t newer_bytes = 0;
    while (start > 0 && oldest - start + 1 < MAX_COMPACTION_INPUTS) {
        const table_meta *m = &region_table(h, v->tables[start - 1])->meta;
        if (expiry_bucket(&h->cfg, m) != expiry_bucket(&h->cfg, base))
            break;
        newer_bytes += m->file_size;
        start--;
    }
    uint32_t len = oldest - start + 1;
    if (len < 2 || newer_bytes * 100 <= (uint64_t) pct * base->file_size ||
        !run_overlaps(h, &v->tables[start], len))
        return false;
    take_run(v, start, len, job);
    return true;
}

/* The run-count run: the newest tables of the newest one's tier and bucket,
 * once the version holds compaction_threshold tables (see the top). */
static bool pick_newest_run(region_header *h, const version *v, compaction_job *job)
{
    if (v->n_tables < h->cfg.compaction_threshold)
        return false;
    const table_meta *newest = &region_table(h, v->tables[0])->meta;
    uint32_t len = 1;
    while (len < v->n_tables && len < MAX_COMPACTION_INPUTS &&
           same_group(&h->cfg, false, newest, &region_table(h, v->tables[len])->meta))
        len++;
    if (len < 2 || !run_overlaps(h, v->tables, len))
        return false;
    take_run(v, 0, len, job);
    return true;
}

/* Picks the run to merge from the current version (version_mu held). */
static bool pick_run(region_header *h, compaction_job *job)
{
    version *v = region_version(h, h->current_version);
    if (pick_size_amp_run(h, v, job))
        return true;
    bool crowded = v->n_tables > h->cfg.max_tables / 4;
    uint32_t best_start = 0, best_len = 0;
    int best_tier = 0;
    for (uint32_t i = 0; i < v->n_tables;) {
        const table_meta *first = &region_table(h, v->tables[i])->meta;
        uint32_t j = i + 1;
        while (j < v->n_tables && j - i < MAX_COMPACTION_INPUTS &&
               same_group(&h->cfg, crowded, first, &region_table(h, v->tables[j])->meta))
            j++;
        int tier = size_tier(first->file_size);
        bool worth = crowded || run_overlaps(h, &v->tables[i], j - i);
        if (j - i >= h->cfg.compaction_threshold && worth && (best_len == 0 || tier < best_tier)) {
            best_start = i;
            best_len = j - i;
            best_tier = tier;
        }
        i = j;
    }
    if (best_len == 0)
        return pick_newest_run(h, v, job);
    take_run(v, best_start, best_len, job);
    return true;
}

typedef struct merge_state {
    lsm_db *db;
    compaction_job *job;
    source_iter *src;
    uint32_t n_src;
    merge_heap heap;
    rtomb_set rtombs;
    iter_counters counters;
    sst_builder *out;
    int64_t min_expire;
    lsm_read_options ro;
} merge_state;

static lsm_status collect_input_tombstones(merge_state *m)
{
    region_header *h = m->db->hdr;
    for (uint32_t i = 0; i < m->job->n_inputs; i++) {
        uint32_t slot = m->job->inputs[i];
        if (region_table(h, slot)->meta.range_tombstones == 0)
            continue;
        sst_table *t;
        lsm_status st = table_open_slot(m->db, slot, &t);
        block_buf buf = {0};
        block_ref ref = {0};
        sst_block blk = {0};
        if (st == LSM_OK)
            st = block_fetch(m->db, t, region_table(h, slot)->meta.file_no,
                             sst_table_tombstone_handle(t), true, &m->ro, &buf, &ref, &blk);
        for (uint32_t k = 0; st == LSM_OK && k < blk.count; k++) {
            lsm_entry e;
            st = sst_block_entry(&blk, k, &e);
            if (st == LSM_OK)
                st = rtomb_add(&m->rtombs, e.key, e.key_len, e.value, e.value_len, e.seq);
        }
        block_ref_release(&ref);
        block_buf_free(&buf);
        if (st != LSM_OK)
            return st;
    }
    return LSM_OK;
}

static lsm_status open_inputs(merge_state *m)
{
    m->src = calloc(m->job->n_inputs, sizeof *m->src);
    m->heap.items = calloc(m->job->n_inputs, sizeof *m->heap.items);
    if (!m->src || !m->heap.items)
        return lsm_fail(LSM_NO_MEMORY, "compaction inputs");
    lsm_read_options_init(&m->ro);
    m->ro.fill_cache = false;
    for (uint32_t i = 0; i < m->job->n_inputs; i++) {
        source_iter *s = &m->src[m->n_src++];
        lsm_status st = source_init_table(s, m->db, m->job->inputs[i], &m->ro, UINT64_MAX, LSM_TS_MIN,
                                          LSM_TS_MAX, &m->counters);
        if (st != LSM_OK)
            return st;
    }
    return LSM_OK;
}

/* Decides what the output keeps of the newest version e of a (key, ts). */
static lsm_status emit(merge_state *m, lsm_entry *e)
{
    if (m->rtombs.n && rtomb_covers(&m->rtombs, e->key, e->key_len, e->seq))
        return LSM_OK;
    bool expired = e->type == ENTRY_PUT && entry_is_expired(e, m->job->now);
    if (m->job->bottommost && (e->type == ENTRY_DELETE || expired)) {
        if (expired)
            m->job->purged++;
        return LSM_OK;
    }
    lsm_entry out = *e;
    /* Nothing older remains below a bottommost output, and every reader that
     * can see it sees all of it: seqs carry no information there.  Zero
     * compresses far better than a distinct varint per record. */
    if (m->job->bottommost)
        out.seq = 0;
    if (expired) {
        out.type = ENTRY_DELETE;
        out.value_len = 0;
        out.expire_at = 0;
        m->job->purged++;
    }
    if (out.type == ENTRY_PUT && out.expire_at && out.expire_at < m->min_expire)
        m->min_expire = out.expire_at;
    return sst_builder_add(m->out, &out);
}

static lsm_status merge_inputs(merge_state *m)
{
    for (uint32_t i = 0; i < m->n_src; i++) {
        source_seek_first(&m->src[i]);
        if (m->src[i].status != LSM_OK)
            return m->src[i].status;
    }
    merge_heap_build(&m->heap, m->src, m->n_src);
    while (m->heap.len) {
        lsm_entry e = m->heap.items[0]->cur;
        lsm_status st = emit(m, &e);
        /* e's slices stay valid until its source moves: skip the group now. */
        uint8_t keybuf[LSM_MAX_KEY_SIZE];
        size_t klen = e.key_len;
        int64_t ts = e.ts;
        memcpy(keybuf, e.key, klen);
        while (st == LSM_OK && m->heap.len && merge_heap_top_is(&m->heap, keybuf, klen, ts))
            st = merge_heap_advance_top(&m->heap);
        if (st != LSM_OK)
            return st;
    }
    if (!m->job->bottommost)
        for (size_t i = 0; i < m->rtombs.n; i++) {
            rtomb *t = &m->rtombs.items[i];
            lsm_entry e = {.key = t->start, .key_len = t->start_len, .type = ENTRY_RANGE_DELETE,
                           .seq = t->seq, .value = t->end, .value_len = t->end_len};
            lsm_status st = sst_builder_add_range_tombstone(m->out, &e);
            if (st != LSM_OK)
                return st;
        }
    return LSM_OK;
}

static void close_inputs(merge_state *m)
{
    for (uint32_t i = 0; i < m->n_src; i++)
        source_release(&m->src[i]);
    free(m->src);
    free(m->heap.items);
    rtomb_set_free(&m->rtombs);
}

/* Replaces a contiguous run of tables by `replacement` (-1: by nothing):
 * one manifest edit (removals plus the added table), then the version.
 * manifest_mu keeps the edit and the version change together.  Shared by
 * compaction and GC. */
lsm_status tables_replace(lsm_db *db, const uint32_t *run, uint32_t n, int replacement)
{
    region_header *h = db->hdr;
    uint64_t *removed = malloc(sizeof(uint64_t) * (n ? n : 1));
    if (!removed)
        return lsm_fail(LSM_NO_MEMORY, "table replacement edit");
    for (uint32_t i = 0; i < n; i++)
        removed[i] = region_table(h, run[i])->meta.file_no;
    manifest_edit e = {0};
    e.has_next_file_no = true;
    e.next_file_no = h->next_file_no;
    e.n_removed = n;
    e.removed = removed;
    table_meta meta;
    if (replacement >= 0) {
        meta = region_table(h, (uint32_t) replacement)->meta;
        e.n_added = 1;
        e.added = &meta;
    }
    version_change c;
    version_change_init(&c);
    c.replace = run;
    c.n_replace = n;
    c.replacement = replacement;
    lsm_status st = manifest_log_and_apply(db, &e, &c, NULL);
    free(removed);
    return st;
}

static lsm_status write_output(lsm_db *db, compaction_job *job, int slot, uint64_t file_no,
                               bool *empty)
{
    merge_state m = {.db = db, .job = job, .min_expire = INT64_MAX};
    char path[1100];
    sst_file_path(path, sizeof path, db->dir, file_no);
    sst_options opt;
    table_build_options(db, &opt);
    lsm_status st = open_inputs(&m);
    if (st == LSM_OK)
        st = collect_input_tombstones(&m);
    if (st == LSM_OK)
        st = sst_builder_open(path, file_no, &opt, &m.out);
    if (st == LSM_OK)
        st = merge_inputs(&m);
    if (st == LSM_OK && sst_builder_entries(m.out) == 0 &&
        (job->bottommost || m.rtombs.n == 0)) {
        *empty = true;
        sst_builder_abandon(m.out);
    } else if (st == LSM_OK) {
        table_slot *ts = region_table(db->hdr, (uint32_t) slot);
        st = sst_builder_finish(m.out, &ts->meta);
        ts->min_expire_hint = m.min_expire;
        if (st == LSM_OK)
            st = fsync_dir(db->dir);
    } else if (m.out) {
        sst_builder_abandon(m.out);
    }
    close_inputs(&m);
    return st;
}

lsm_status compaction_run(lsm_db *db, compaction_job *job)
{
    region_header *h = db->hdr;
    mu_lock(&h->version_mu);
    int slot = table_slot_alloc(db);
    uint64_t file_no = h->next_file_no++;
    mu_unlock(&h->version_mu);
    if (slot < 0)
        return lsm_fail(LSM_BUSY, "all %u table slots are in use", h->cfg.max_tables);
    bool empty = false;
    lsm_status st = write_output(db, job, slot, file_no, &empty);
    if (st == LSM_OK)
        st = tables_replace(db, job->inputs, job->n_inputs, empty ? -1 : slot);
    if (st != LSM_OK || empty) {
        mu_lock(&h->version_mu);
        region_table(h, (uint32_t) slot)->state = SLOT_FREE;
        mu_unlock(&h->version_mu);
    }
    if (st == LSM_OK) {
        atomic_fetch_add(&h->stats.compactions, 1);
        db_delete_obsolete_tables(db);
    }
    return st;
}

static lsm_status compact_step_locked(lsm_db *db, bool *did_work)
{
    region_header *h = db->hdr;
    uint32_t inputs[MAX_COMPACTION_INPUTS];
    compaction_job job = {.inputs = inputs, .now = db_now_secs(db)};
    mu_lock(&h->version_mu);
    *did_work = pick_run(h, &job);
    mu_unlock(&h->version_mu);
    if (!*did_work)
        return LSM_OK;
    lsm_status st = compaction_run(db, &job);
    atomic_fetch_add(&h->stats.records_purged, job.purged);
    return st;
}

lsm_status lsm_compact_step(lsm_db *db, bool *did_work)
{
    bool dummy;
    if (!did_work)
        did_work = &dummy;
    *did_work = false;
    if (!db)
        return lsm_fail(LSM_INVALID, "compact: NULL database");
    if (atomic_load(&db->hdr->state) != REGION_READY)
        return lsm_fail(LSM_CLOSED, "engine is not open");
    mu_lock(&db->hdr->compact_mu);
    lsm_status st = compact_step_locked(db, did_work);
    mu_unlock(&db->hdr->compact_mu);
    return st;
}

lsm_status lsm_compact(lsm_db *db)
{
    bool did = true;
    lsm_status st = LSM_OK;
    while (st == LSM_OK && did)
        st = lsm_compact_step(db, &did);
    return st;
}

lsm_status lsm_compact_full(lsm_db *db)
{
    lsm_status st = lsm_flush(db);
    if (st != LSM_OK)
        return st;
    region_header *h = db->hdr;
    mu_lock(&h->compact_mu);
    uint32_t *inputs = malloc(sizeof(uint32_t) * h->cfg.max_tables);
    if (!inputs) {
        mu_unlock(&h->compact_mu);
        return lsm_fail(LSM_NO_MEMORY, "full compaction");
    }
    compaction_job job = {.inputs = inputs, .now = db_now_secs(db), .bottommost = true};
    mu_lock(&h->version_mu);
    version *v = region_version(h, h->current_version);
    job.n_inputs = v->n_tables;
    memcpy(inputs, v->tables, v->n_tables * sizeof(uint32_t));
    mu_unlock(&h->version_mu);
    /* One table with nothing to drop is already fully compacted. */
    bool needed = job.n_inputs > 1 ||
                  (job.n_inputs == 1 && (region_table(h, inputs[0])->meta.point_tombstones ||
                                         region_table(h, inputs[0])->meta.range_tombstones ||
                                         region_table(h, inputs[0])->min_expire_hint <= job.now));
    if (needed)
        st = compaction_run(db, &job);
    atomic_fetch_add(&h->stats.records_purged, job.purged);
    free(inputs);
    mu_unlock(&h->compact_mu);
    return st;
}
