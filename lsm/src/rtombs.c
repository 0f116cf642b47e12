/*
 * rtombs.c — the range tombstones a read must honour.
 *
 * A read collects, once, every range tombstone of its version that it may
 * see (seq <= snapshot) and that overlaps its key range; a record version
 * with seq s is deleted when a collected tombstone with seq > s covers its
 * key.  Tombstones are expected to be few; the set is a plain array.
 */
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "status.h"

static bool overlaps(const uint8_t *s, size_t slen, const uint8_t *e, size_t elen,
                     const uint8_t *lo, size_t lo_len, const uint8_t *hi, size_t hi_len)
{
    if (hi && key_compare(s, slen, hi, hi_len) >= 0)
        return false;
    if (lo && key_compare(e, elen, lo, lo_len) <= 0)
        return false;
    return true;
}

lsm_status rtomb_add(rtomb_set *set, const uint8_t *start, size_t slen, const uint8_t *end,
                     size_t elen, uint64_t seq)
{
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 8;
        rtomb *items = realloc(set->items, cap * sizeof *items);
        if (!items)
            return lsm_fail(LSM_NO_MEMORY, "range tombstone set");
        set->items = items;
        set->cap = cap;
    }
    rtomb *t = &set->items[set->n];
    t->start = malloc(slen + elen);
    if (!t->start)
        return lsm_fail(LSM_NO_MEMORY, "range tombstone set");
    memcpy(t->start, start, slen);
    t->end = t->start + slen;
    memcpy(t->end, end, elen);
    t->start_len = (uint32_t) slen;
    t->end_len = (uint32_t) elen;
    t->seq = seq;
    set->n++;
    return LSM_OK;
}

void rtomb_set_free(rtomb_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        free(set->items[i].start);
    free(set->items);
    memset(set, 0, sizeof *set);
}

bool rtomb_covers(const rtomb_set *set, const uint8_t *key, size_t klen, uint64_t entry_seq)
{
    for (size_t i = 0; i < set->n; i++) {
        const rtomb *t = &set->items[i];
        if (t->seq > entry_seq && key_compare(t->start, t->start_len, key, klen) <= 0 &&
            key_compare(key, klen, t->end, t->end_len) < 0)
            return true;
    }
    return false;
}

static lsm_status collect_memtable(memtable *m, uint64_t snap, const uint8_t *lo, size_t lo_len,
                                   const uint8_t *hi, size_t hi_len, rtomb_set *out)
{
    for (uint32_t off = memtable_rt_first(m); off; off = memtable_rt_next(m, off)) {
        mem_node *n = memtable_node(m, off);
        if (n->seq > snap || atomic_load(&n->aborted))
            continue;
        lsm_entry e;
        memtable_node_entry(n, &e);
        if (!overlaps(e.key, e.key_len, e.value, e.value_len, lo, lo_len, hi, hi_len))
            continue;
        lsm_status st = rtomb_add(out, e.key, e.key_len, e.value, e.value_len, e.seq);
        if (st != LSM_OK)
            return st;
    }
    return LSM_OK;
}

static lsm_status collect_table(lsm_db *db, uint32_t slot, uint64_t snap, const uint8_t *lo,
                                size_t lo_len, const uint8_t *hi, size_t hi_len,
                                const lsm_read_options *ro, rtomb_set *out)
{
    sst_table *t;
    lsm_status st = table_open_slot(db, slot, &t);
    if (st != LSM_OK)
        return st;
    block_buf buf = {0};
    block_ref ref = {0};
    sst_block blk = {0};
    uint64_t file_no = region_table(db->hdr, slot)->meta.file_no;
    st = block_fetch(db, t, file_no, sst_table_tombstone_handle(t), true, ro, &buf, &ref, &blk);
    for (uint32_t i = 0; st == LSM_OK && i < blk.count; i++) {
        lsm_entry e;
        st = sst_block_entry(&blk, i, &e);
        if (st == LSM_OK && e.seq <= snap &&
            overlaps(e.key, e.key_len, e.value, e.value_len, lo, lo_len, hi, hi_len))
            st = rtomb_add(out, e.key, e.key_len, e.value, e.value_len, e.seq);
    }
    block_ref_release(&ref);
    block_buf_free(&buf);
    return table_error(db, file_no, st);
}

static bool tomb_covers(const lsm_entry *t, const uint8_t *key, size_t klen)
{
    return key_compare(t->key, t->key_len, key, klen) <= 0 &&
           key_compare(key, klen, t->value, t->value_len) < 0;
}

/* Does a memtable hold a visible range tombstone newer than `seq` over key? */
static bool memtable_covers(memtable *m, uint64_t snap, const uint8_t *key, size_t klen,
                            uint64_t seq)
{
    if (atomic_load(&m->max_seq) <= seq)
        return false;
    for (uint32_t off = memtable_rt_first(m); off; off = memtable_rt_next(m, off)) {
        mem_node *n = memtable_node(m, off);
        if (n->seq <= seq || n->seq > snap || atomic_load(&n->aborted))
            continue;
        lsm_entry e;
        memtable_node_entry(n, &e);
        if (tomb_covers(&e, key, klen))
            return true;
    }
    return false;
}

static bool key_within_bounds(const table_meta *m, const uint8_t *key, size_t klen)
{
    if (key_compare(key, klen, m->smallest, m->smallest_len) < 0)
        return false;
    if (key_compare(key, klen, m->largest, m->largest_len) <= 0)
        return true;
    return m->largest_truncated && klen >= m->largest_len &&
           memcmp(key, m->largest, m->largest_len) == 0;
}

static lsm_status table_covers(lsm_db *db, uint32_t slot, uint64_t snap, const uint8_t *key,
                               size_t klen, uint64_t seq, const lsm_read_options *ro,
                               bool *covered)
{
    const table_meta *m = &region_table(db->hdr, slot)->meta;
    if (m->range_tombstones == 0 || m->max_seq <= seq || !key_within_bounds(m, key, klen))
        return LSM_OK;
    sst_table *t;
    lsm_status st = table_open_slot(db, slot, &t);
    if (st != LSM_OK)
        return table_error(db, m->file_no, st);
    block_buf buf = {0};
    block_ref ref = {0};
    sst_block blk = {0};
    st = block_fetch(db, t, m->file_no, sst_table_tombstone_handle(t), true, ro, &buf, &ref, &blk);
    for (uint32_t i = 0; st == LSM_OK && i < blk.count && !*covered; i++) {
        lsm_entry e;
        st = sst_block_entry(&blk, i, &e);
        if (st == LSM_OK && e.seq > seq && e.seq <= snap && tomb_covers(&e, key, klen))
            *covered = true;
    }
    block_ref_release(&ref);
    block_buf_free(&buf);
    return table_error(db, m->file_no, st);
}

lsm_status rtomb_point_covered(lsm_db *db, uint32_t vi, uint64_t snap, const uint8_t *key,
                               size_t klen, uint64_t seq, const lsm_read_options *ro,
                               bool *covered)
{
    region_header *h = db->hdr;
    version *v = region_version(h, vi);
    *covered = false;
    for (uint32_t i = 0; i < v->n_mem && !*covered; i++)
        *covered = memtable_covers(region_memtable(h, v->mem[i]), snap, key, klen, seq);
    lsm_status st = LSM_OK;
    for (uint32_t i = 0; st == LSM_OK && i < v->n_tables && !*covered; i++)
        st = table_covers(db, v->tables[i], snap, key, klen, seq, ro, covered);
    return st;
}

lsm_status rtomb_collect(lsm_db *db, uint32_t vi, uint64_t snap, const uint8_t *lo, size_t lo_len,
                         const uint8_t *hi, size_t hi_len, const lsm_read_options *ro,
                         rtomb_set *out)
{
    region_header *h = db->hdr;
    version *v = region_version(h, vi);
    lsm_status st = LSM_OK;
    for (uint32_t i = 0; st == LSM_OK && i < v->n_mem; i++)
        st = collect_memtable(region_memtable(h, v->mem[i]), snap, lo, lo_len, hi, hi_len, out);
    for (uint32_t i = 0; st == LSM_OK && i < v->n_tables; i++) {
        if (region_table(h, v->tables[i])->meta.range_tombstones == 0)
            continue;
        st = collect_table(db, v->tables[i], snap, lo, lo_len, hi, hi_len, ro, out);
    }
    return st;
}
