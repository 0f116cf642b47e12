/*
 * ingest.c — a large batch written straight to a table.
 *
 * A batch whose memtable footprint reaches cfg.ingest_batch_size (default:
 * half a memtable; a batch larger than a memtable always qualifies) skips
 * the memtable: it is sorted and written as one SST, and the WAL records
 * only the file's number.  write.c runs the protocol (see its header); this
 * file holds the pieces:
 *
 *   ingest_sort       the batch's ops in table order, newest op of each
 *                     (key, ts) first, and the key range they touch;
 *   ingest_make_room  no memtable may hold an older version of a key in that
 *                     range, because readers search memtables before tables
 *                     and stop at the first version found: overlapping
 *                     memtables are frozen and flushed first (write_mu held,
 *                     so no older-seq write can arrive afterwards);
 *   ingest_build      the SST, with the batch's seqs (first_seq + op index);
 *   ingest_install    commit: manifest edit, then the table becomes the
 *                     newest of the version;
 *   ingest_discard    abort: the file and its slot go away.
 *
 * Invariant that keeps reads right: when an ingested table is installed,
 * every memtable version of a key in its range has a larger seq (written
 * after the prepare).  Tables flushed later from memtables that did not
 * overlap may sit in front of it: they share no key with it.  The table
 * may be installed a moment before visible_seq covers its seqs; readers
 * skip table entries above their snapshot (get.c, source_iter.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "db.h"
#include "ingest.h"
#include "status.h"

bool ingest_wanted(const region_header *h, size_t arena_bound)
{
    size_t at = h->cfg.ingest_batch_size ? h->cfg.ingest_batch_size : h->cfg.memtable_size / 2;
    return arena_bound >= at || arena_bound > h->cfg.memtable_size;
}

/* ------------------------------------------------------------- sorting */

static lsm_status collect_entry(const lsm_entry *e, void *arg)
{
    ingest_run *r = arg;
    lsm_entry c = *e;
    c.seq = r->n_points + r->n_ranges; /* the op's index; first_seq added later */
    if (e->type == ENTRY_RANGE_DELETE) {
        if (key_compare(e->key, e->key_len, e->value, e->value_len) < 0)
            r->ranges[r->n_ranges++] = c;
        else
            r->n_empty_ranges++;
    } else {
        r->points[r->n_points++] = c;
    }
    return LSM_OK;
}

/* (key, ts) ascending, then the later op first. */
static int table_order(const void *a, const void *b)
{
    const lsm_entry *x = a, *y = b;
    int c = entry_compare_kt(x->key, x->key_len, x->ts, y->key, y->key_len, y->ts);
    if (c != 0)
        return c;
    return (x->seq < y->seq) - (x->seq > y->seq);
}

static bool in_table_order(const lsm_entry *e, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (table_order(&e[i - 1], &e[i]) >= 0)
            return false;
    return true;
}

static void note_bounds(ingest_run *r)
{
    const uint8_t *lo = NULL, *hi = NULL;
    uint32_t lo_len = 0, hi_len = 0;
    if (r->n_points) {
        lo = r->points[0].key;
        lo_len = r->points[0].key_len;
        hi = r->points[r->n_points - 1].key;
        hi_len = r->points[r->n_points - 1].key_len;
    }
    for (size_t i = 0; i < r->n_ranges; i++) {
        const lsm_entry *e = &r->ranges[i];
        if (!lo || key_compare(e->key, e->key_len, lo, lo_len) < 0) {
            lo = e->key;
            lo_len = e->key_len;
        }
        if (!hi || key_compare(e->value, e->value_len, hi, hi_len) > 0) {
            hi = e->value; /* exclusive end: treated as touched, which is safe */
            hi_len = e->value_len;
        }
    }
    r->lo = lo;
    r->lo_len = lo_len;
    r->hi = hi;
    r->hi_len = hi_len;
}

static lsm_status run_alloc(ingest_run *r, size_t n)
{
    memset(r, 0, sizeof *r);
    r->points = malloc((n ? n : 1) * sizeof *r->points);
    r->ranges = malloc((n ? n : 1) * sizeof *r->ranges);
    if (!r->points || !r->ranges) {
        ingest_run_free(r);
        return lsm_fail(LSM_NO_MEMORY, "ingest: sorting %zu ops", n);
    }
    return LSM_OK;
}

static void run_order(ingest_run *r)
{
    if (!in_table_order(r->points, r->n_points))
        qsort(r->points, r->n_points, sizeof *r->points, table_order);
    note_bounds(r);
}

lsm_status ingest_sort(const lsm_batch *b, ingest_run *r)
{
    lsm_status st = run_alloc(r, b->count);
    if (st == LSM_OK && (st = batch_iterate(b->buf, b->len, collect_entry, r)) != LSM_OK)
        ingest_run_free(r);
    if (st == LSM_OK)
        run_order(r);
    return st;
}

static uint8_t op_entry_type(lsm_op_kind kind)
{
    return kind == LSM_OP_PUT      ? ENTRY_PUT
           : kind == LSM_OP_DELETE ? ENTRY_DELETE
                                   : ENTRY_RANGE_DELETE;
}

lsm_status ingest_sort_ops(const lsm_write_op *ops, size_t n, ingest_run *r)
{
    if (n > UINT32_MAX)
        return lsm_fail(LSM_TOO_LARGE, "write: more than %u operations", UINT32_MAX);
    lsm_status st = run_alloc(r, n);
    for (size_t i = 0; i < n && st == LSM_OK; i++) {
        const lsm_write_op *op = &ops[i];
        if ((st = batch_check_op(op, i)) != LSM_OK)
            break;
        lsm_entry e = {
            .key = op->key, .key_len = (uint32_t) op->key_len, .type = op_entry_type(op->kind),
            .ts = op->kind == LSM_OP_DELETE_RANGE ? 0 : op->ts,
            .expire_at = op->kind == LSM_OP_PUT ? op->expire_at : 0,
            .value = op->kind == LSM_OP_DELETE ? NULL : op->value,
            .value_len = op->kind == LSM_OP_DELETE ? 0 : (uint32_t) op->value_len,
        };
        st = collect_entry(&e, r);
    }
    if (st != LSM_OK)
        ingest_run_free(r);
    else
        run_order(r);
    return st;
}

void ingest_run_free(ingest_run *r)
{
    free(r->points);
    free(r->ranges);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------- overlap */

static bool memtable_touches(memtable *m, const ingest_run *r)
{
    uint32_t off = memtable_seek(m, r->lo, r->lo_len, LSM_TS_MIN);
    if (off) {
        const mem_node *n = memtable_node(m, off);
        lsm_entry e;
        memtable_node_entry(n, &e);
        if (key_compare(e.key, e.key_len, r->hi, r->hi_len) <= 0)
            return true;
    }
    for (off = memtable_rt_first(m); off; off = memtable_rt_next(m, off)) {
        lsm_entry e;
        memtable_node_entry(memtable_node(m, off), &e);
        /* [e.key, e.value) meets [lo, hi] */
        if (key_compare(e.key, e.key_len, r->hi, r->hi_len) <= 0 &&
            key_compare(e.value, e.value_len, r->lo, r->lo_len) > 0)
            return true;
    }
    return false;
}

/* Does any memtable of the current version touch the run?  *active: the
 * active one does. */
static bool memtables_touch(lsm_db *db, const ingest_run *r, bool *active)
{
    region_header *h = db->hdr;
    bool any = false;
    *active = false;
    mu_lock(&h->version_mu);
    version *v = region_version(h, h->current_version);
    for (uint32_t i = 0; i < v->n_mem; i++) {
        if (!memtable_touches(region_memtable(h, v->mem[i]), r))
            continue;
        any = true;
        if (v->mem[i] == h->active_mem)
            *active = true;
    }
    mu_unlock(&h->version_mu);
    return any;
}

lsm_status ingest_make_room(lsm_db *db, const ingest_run *r)
{
    region_header *h = db->hdr;
    if (!r->lo)
        return LSM_OK; /* nothing but empty ranges */
    int64_t deadline = mono_ms() + h->cfg.write_wait_ms;
    lsm_status st = LSM_OK;
    bool active;
    while (st == LSM_OK && memtables_touch(db, r, &active)) {
        if (mono_ms() >= deadline)
            return lsm_fail(LSM_BUSY, "ingest: waited %u ms for the flush of memtables holding "
                            "keys of the batch", h->cfg.write_wait_ms);
        if (active && (st = db_switch_memtable(db)) != LSM_OK)
            break;
        /* write_mu is held, so flush_mu may be tried but not waited for
         * (lock order). */
        bool ran;
        st = flush_frozen_if_idle(db, &ran);
        if (st == LSM_OK && !ran)
            db_wake_maintenance(db);
        if (st != LSM_OK || !memtables_touch(db, r, &active))
            break;
        /* The flush waits for something: a prepared batch to resolve, whose
         * abort needs write_mu, or another ingest.  Wait without write_mu;
         * writers that slip in meanwhile have lower seqs than this batch
         * will get, so the loop checks their memtable again. */
        mu_unlock(&h->write_mu);
        usleep(1000);
        mu_lock(&h->write_mu);
    }
    return st;
}

/* ------------------------------------------------------------ building */

void ingest_table_entry(lsm_entry *e, int64_t now, int64_t *min_expire)
{
    if (e->type == ENTRY_PUT && entry_is_expired(e, now)) {
        e->type = ENTRY_DELETE;
        e->expire_at = 0;
    }
    if (e->type == ENTRY_DELETE) {
        e->value = NULL;
        e->value_len = 0;
    }
    if (e->type == ENTRY_PUT && e->expire_at && e->expire_at < *min_expire)
        *min_expire = e->expire_at;
}

/* Adds the newest op of each (key, ts), as ingest_table_entry makes it. */
static lsm_status add_points(sst_builder *sb, const ingest_run *r, uint64_t first_seq, int64_t now,
                             int64_t *min_expire)
{
    for (size_t i = 0; i < r->n_points; i++) {
        lsm_entry e = r->points[i];
        if (i > 0 && entry_compare_kt(e.key, e.key_len, e.ts, r->points[i - 1].key,
                                      r->points[i - 1].key_len, r->points[i - 1].ts) == 0)
            continue;
        e.seq += first_seq;
        ingest_table_entry(&e, now, min_expire);
        lsm_status st = sst_builder_add(sb, &e);
        if (st != LSM_OK)
            return st;
    }
    return LSM_OK;
}

static lsm_status add_ranges(sst_builder *sb, const ingest_run *r, uint64_t first_seq)
{
    for (size_t i = 0; i < r->n_ranges; i++) {
        lsm_entry e = r->ranges[i];
        e.seq += first_seq;
        lsm_status st = sst_builder_add_range_tombstone(sb, &e);
        if (st != LSM_OK)
            return st;
    }
    return LSM_OK;
}

lsm_status ingest_build(lsm_db *db, const ingest_run *r, uint64_t first_seq, int *slot_out)
{
    region_header *h = db->hdr;
    int slot;
    uint64_t file_no;
    *slot_out = -1;
    lsm_status st = table_file_reserve(db, &slot, &file_no);
    if (st != LSM_OK)
        return st;
    char path[1100];
    sst_file_path(path, sizeof path, db->dir, file_no);
    sst_options opt;
    table_build_options(db, &opt);
    sst_builder *sb;
    st = sst_builder_open(path, file_no, &opt, &sb);
    int64_t min_expire = INT64_MAX;
    if (st == LSM_OK) {
        st = add_points(sb, r, first_seq, db_now_secs(db), &min_expire);
        if (st == LSM_OK)
            st = add_ranges(sb, r, first_seq);
        table_slot *ts = region_table(h, (uint32_t) slot);
        if (st == LSM_OK)
            st = sst_builder_finish(sb, &ts->meta);
        else
            sst_builder_abandon(sb);
        ts->min_expire_hint = min_expire;
    }
    return ingest_table_settle(db, slot, path, st, slot_out);
}

lsm_status ingest_table_settle(lsm_db *db, int slot, const char *path, lsm_status st,
                               int *slot_out)
{
    *slot_out = -1;
    if (st == LSM_OK)
        st = fsync_dir(db->dir);
    if (st != LSM_OK) {
        remove(path);
        table_file_release(db, slot);
        return st;
    }
    *slot_out = slot;
    return LSM_OK;
}

/* ----------------------------------------------------- commit / abort */

lsm_status ingest_install(lsm_db *db, int slot)
{
    region_header *h = db->hdr;
    table_meta meta = region_table(h, (uint32_t) slot)->meta;
    manifest_edit e = {0};
    e.has_next_file_no = true;
    e.next_file_no = h->next_file_no;
    e.n_added = 1;
    e.added = &meta;
    version_change c;
    version_change_init(&c);
    c.add_table_front = slot;
    lsm_status st = manifest_log_and_apply(db, &e, &c, NULL);
    if (st == LSM_OK)
        db_wake_maintenance(db); /* one more table: compaction may be due */
    return st;
}

void ingest_discard(lsm_db *db, int slot)
{
    char path[1100];
    sst_file_path(path, sizeof path, db->dir, region_table(db->hdr, (uint32_t) slot)->meta.file_no);
    remove(path);
    table_file_release(db, slot);
}

bool ingest_pending_below(region_header *h, uint64_t seg)
{
    bool found = false;
    mu_lock(&h->inflight_mu);
    for (uint32_t i = 0; i < h->cfg.max_inflight_writes && !found; i++) {
        inflight_slot *s = region_inflight(h, i);
        found = s->first_seq && s->ingest_table && s->ingest_wal_seg < seg;
    }
    mu_unlock(&h->inflight_mu);
    return found;
}
