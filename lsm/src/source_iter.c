/* source_iter.c — memtable and table sources; see source_iter.h. */
#include "source_iter.h"

#include <string.h>

#include "status.h"

static bool ts_in_range(const source_iter *s, int64_t ts)
{
    return ts >= s->ts_min && ts <= s->ts_max;
}

/* ---------------------------------------------------------- memtables */

static bool node_visible(const mem_node *n, uint64_t snap)
{
    return n->seq <= snap && !atomic_load_explicit(&((mem_node *) n)->aborted, memory_order_acquire);
}

static bool same_kt(const mem_node *a, const mem_node *b)
{
    lsm_entry ea, eb;
    memtable_node_entry(a, &ea);
    memtable_node_entry(b, &eb);
    return entry_compare_kt(ea.key, ea.key_len, ea.ts, eb.key, eb.key_len, eb.ts) == 0;
}

/* Offset of the first node after the group that starts at `group`. */
static uint32_t mem_after_group(const memtable *m, uint32_t group)
{
    const mem_node *g = memtable_node(m, group);
    uint32_t off = memtable_next(m, group);
    while (off && same_kt(memtable_node(m, off), g))
        off = memtable_next(m, off);
    return off;
}

/* Finds, in the group starting at `group`, the newest visible node; 0 if none. */
static uint32_t mem_visible_in_group(source_iter *s, uint32_t group)
{
    const memtable *m = s->mem;
    const mem_node *g = memtable_node(m, group);
    for (uint32_t off = group; off; off = memtable_next(m, off)) {
        const mem_node *n = memtable_node(m, off);
        if (off != group && !same_kt(n, g))
            break;
        s->counters->scanned++;
        if (node_visible(n, s->snap))
            return off;
    }
    return 0;
}

/* Stands on the group starting at `group` if it is in the ts range and has
 * a visible version; false otherwise. */
static bool mem_take_group(source_iter *s, uint32_t group)
{
    if (!ts_in_range(s, memtable_node(s->mem, group)->ts))
        return false;
    uint32_t vis = mem_visible_in_group(s, group);
    if (!vis)
        return false;
    s->group = group;
    s->valid = true;
    memtable_node_entry(memtable_node(s->mem, vis), &s->cur);
    return true;
}

/* From a group start, moves forward to the first group with a visible node. */
static void mem_settle_forward(source_iter *s, uint32_t group)
{
    for (; group; group = mem_after_group(s->mem, group))
        if (mem_take_group(s, group))
            return;
    s->valid = false;
}

static uint32_t mem_group_start(const memtable *m, uint32_t off)
{
    const mem_node *n = memtable_node(m, off);
    for (;;) {
        uint32_t p = memtable_prev(m, off);
        if (!p || !same_kt(memtable_node(m, p), n))
            return off;
        off = p;
    }
}

/* From any node, moves backward to the last group with a visible node. */
static void mem_settle_reverse(source_iter *s, uint32_t off)
{
    while (off) {
        uint32_t group = mem_group_start(s->mem, off);
        if (mem_take_group(s, group))
            return;
        off = memtable_prev(s->mem, group);
    }
    s->valid = false;
}

void source_init_memtable(source_iter *s, memtable *m, uint64_t snap, int64_t ts_min,
                          int64_t ts_max, iter_counters *c)
{
    memset(s, 0, sizeof *s);
    s->mem = m;
    s->snap = snap;
    s->ts_min = ts_min;
    s->ts_max = ts_max;
    s->counters = c;
}

/* ------------------------------------------------------------- tables */

static bool block_overlaps_ts(const source_iter *s, uint32_t bi)
{
    sst_index_entry ie;
    if (sst_index_entry_at(&s->index, bi, &ie) != LSM_OK)
        return true; /* let the load report the corruption */
    return !(ie.max_ts < s->ts_min || ie.min_ts > s->ts_max);
}

static bool table_fail(source_iter *s, lsm_status st)
{
    if (s->status == LSM_OK)
        s->status = table_error(s->db, s->file_no, st);
    s->valid = false;
    return false;
}

static bool load_block(source_iter *s, uint32_t bi)
{
    block_ref_release(&s->data_ref);
    s->block_loaded = false;
    sst_index_entry ie;
    lsm_status st = sst_index_entry_at(&s->index, bi, &ie);
    if (st == LSM_OK)
        st = block_fetch(s->db, s->table, s->file_no, ie.handle, false, s->ro, &s->data_buf,
                         &s->data_ref, &s->block);
    if (st != LSM_OK)
        return table_fail(s, st);
    s->counters->blocks_read++;
    s->block_i = bi;
    s->block_loaded = true;
    return true;
}

/* Loads the first block at or after bi that may hold ts-range entries. */
static bool load_block_forward(source_iter *s, uint32_t bi)
{
    for (; bi < s->index.count; bi++) {
        if (block_overlaps_ts(s, bi))
            return load_block(s, bi);
        s->counters->blocks_skipped_ts++;
    }
    s->valid = false;
    return false;
}

/* Loads the last block at or before bi (bi < count) that may hold entries. */
static bool load_block_reverse(source_iter *s, int64_t bi)
{
    for (; bi >= 0; bi--) {
        if (block_overlaps_ts(s, (uint32_t) bi))
            return load_block(s, (uint32_t) bi);
        s->counters->blocks_skipped_ts++;
    }
    s->valid = false;
    return false;
}

static bool table_decode(source_iter *s)
{
    lsm_status st = sst_block_entry(&s->block, s->entry_i, &s->cur);
    if (st != LSM_OK)
        return table_fail(s, st);
    if (s->uniform_seq)
        s->cur.seq = s->uniform_seq;
    s->counters->scanned++;
    return true;
}

/* Where a forward scan goes on after cur (entry entry_i), which is outside
 * the ts range: an entry older than ts_min jumps to (key, ts_min) in the
 * block, one newer than ts_max past the rest of its key — binary searches
 * instead of decoding every entry of a long series (a time window across
 * many keys).  Tables hold one entry per (key, ts). */
static uint32_t skip_out_of_range(source_iter *s)
{
    const lsm_entry *e = &s->cur;
    uint32_t i = s->entry_i + 1;
    if (e->ts < s->ts_min)
        i = sst_block_seek(&s->block, e->key, e->key_len, s->ts_min);
    else if (e->ts > s->ts_max) {
        i = sst_block_seek(&s->block, e->key, e->key_len, LSM_TS_MAX);
        const uint8_t *k;
        uint32_t kl;
        int64_t ts;
        if (i < s->block.count && sst_block_key_ts(&s->block, i, &k, &kl, &ts) &&
            entry_compare_kt(k, kl, ts, e->key, e->key_len, LSM_TS_MAX) == 0)
            i++; /* (key, LSM_TS_MAX) itself is past ts_max too */
    }
    return i > s->entry_i ? i : s->entry_i + 1;
}

/* From (block_i, entry_i), the first in-range entry going forward. */
static void table_settle_forward(source_iter *s)
{
    for (;;) {
        if (s->entry_i >= s->block.count) {
            if (!load_block_forward(s, s->block_i + 1))
                return;
            s->entry_i = 0;
            continue;
        }
        if (!table_decode(s))
            return;
        if (ts_in_range(s, s->cur.ts) && s->cur.seq <= s->snap) {
            s->valid = true;
            return;
        }
        s->entry_i = ts_in_range(s, s->cur.ts) ? s->entry_i + 1 : skip_out_of_range(s);
    }
}

/* From (block_i, entry_i) (entry_i may be -1 as UINT32_MAX), going backward. */
static void table_settle_reverse(source_iter *s, int64_t ei)
{
    for (;;) {
        if (ei < 0) {
            if (!load_block_reverse(s, (int64_t) s->block_i - 1))
                return;
            ei = (int64_t) s->block.count - 1;
            continue;
        }
        s->entry_i = (uint32_t) ei;
        if (!table_decode(s))
            return;
        if (ts_in_range(s, s->cur.ts) && s->cur.seq <= s->snap) {
            s->valid = true;
            return;
        }
        ei--;
    }
}

lsm_status source_init_table(source_iter *s, lsm_db *db, uint32_t slot, const lsm_read_options *ro,
                             uint64_t snap, int64_t ts_min, int64_t ts_max, iter_counters *c)
{
    memset(s, 0, sizeof *s);
    s->is_table = true;
    s->db = db;
    s->ro = ro;
    s->ts_min = ts_min;
    s->ts_max = ts_max;
    s->counters = c;
    s->snap = snap;
    lsm_status st = table_handle_get(db, slot, ro, &s->handle);
    if (st != LSM_OK)
        return table_error(db, region_table(db->hdr, slot)->meta.file_no, st);
    s->table = s->handle->table;
    s->file_no = s->handle->file_no;
    s->uniform_seq = sst_table_uniform_seq(s->table);
    s->index = s->handle->index;
    return LSM_OK;
}

void source_release(source_iter *s)
{
    if (!s->is_table)
        return;
    block_ref_release(&s->data_ref);
    block_buf_free(&s->data_buf);
}

/* ----------------------------------------------------------- dispatch */

void source_seek_first(source_iter *s)
{
    s->valid = false;
    if (!s->is_table) {
        mem_settle_forward(s, memtable_first(s->mem));
        return;
    }
    if (load_block_forward(s, 0)) {
        s->entry_i = 0;
        table_settle_forward(s);
    }
}

void source_seek_last(source_iter *s)
{
    s->valid = false;
    if (!s->is_table) {
        mem_settle_reverse(s, memtable_last(s->mem));
        return;
    }
    if (s->index.count && load_block_reverse(s, (int64_t) s->index.count - 1))
        table_settle_reverse(s, (int64_t) s->block.count - 1);
}

void source_seek(source_iter *s, const uint8_t *key, size_t klen, int64_t ts)
{
    s->valid = false;
    if (!s->is_table) {
        mem_settle_forward(s, memtable_seek(s->mem, key, klen, ts));
        return;
    }
    uint32_t bi = sst_index_seek(&s->index, key, klen, ts);
    if (!load_block_forward(s, bi))
        return;
    s->entry_i = bi == s->block_i ? sst_block_seek(&s->block, key, klen, ts) : 0;
    table_settle_forward(s);
}

void source_seek_for_prev(source_iter *s, const uint8_t *key, size_t klen, int64_t ts)
{
    s->valid = false;
    if (!s->is_table) {
        mem_settle_reverse(s, memtable_seek_for_prev(s->mem, key, klen, ts));
        return;
    }
    if (s->index.count == 0)
        return;
    uint32_t bi = sst_index_seek(&s->index, key, klen, ts);
    if (bi >= s->index.count)
        bi = s->index.count - 1;
    if (!load_block_reverse(s, bi))
        return;
    if (s->block_i != bi) {
        table_settle_reverse(s, (int64_t) s->block.count - 1);
        return;
    }
    /* Last entry <= target: the lower bound, or the one before it. */
    uint32_t i = sst_block_seek(&s->block, key, klen, ts);
    int64_t ei = (int64_t) i - 1;
    if (i < s->block.count) {
        lsm_entry e;
        if (sst_block_entry(&s->block, i, &e) == LSM_OK &&
            entry_compare_kt(e.key, e.key_len, e.ts, key, klen, ts) == 0)
            ei = i;
    }
    table_settle_reverse(s, ei);
}

void source_next(source_iter *s)
{
    if (!s->valid)
        return;
    if (!s->is_table) {
        mem_settle_forward(s, mem_after_group(s->mem, s->group));
        return;
    }
    s->entry_i++;
    table_settle_forward(s);
}

void source_prev(source_iter *s)
{
    if (!s->valid)
        return;
    if (!s->is_table) {
        mem_settle_reverse(s, memtable_prev(s->mem, s->group));
        return;
    }
    table_settle_reverse(s, (int64_t) s->entry_i - 1);
}
