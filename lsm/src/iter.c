/*
 * iter.c — the public scan iterator: a heap merge over the sources of one
 * pinned version.
 *
 * Every source shows the newest version of its current (key, ts) visible to
 * the snapshot (source_iter.h).  The heap orders sources by (key, ts) in the
 * scan direction, then by seq descending, so the top of the heap is the
 * newest visible version of the next (key, ts).  After it is returned, every
 * source standing on that (key, ts) is moved past it before the next one is
 * chosen (the "pending skip"), which keeps the returned slices valid until
 * the following call.
 *
 * Memory is bounded: one pinned data block and one index block per table,
 * plus the range tombstones of the scanned key range.
 */
#include <stdlib.h>
#include <string.h>

#include "bloom.h"
#include "db.h"
#include "merge_heap.h"
#include "status.h"

typedef struct bound {
    const uint8_t *key;
    size_t len;
    bool set;
    bool inclusive;
} bound;

struct lsm_iter {
    lsm_db *db;
    lsm_read_options ro;
    lsm_snapshot own_snap;      /* pinned by the iterator when ro has none */
    bool owns_snap;
    uint32_t version;
    uint64_t snap;
    bool reverse;
    uint64_t limit, returned;
    int64_t ts_min, ts_max;
    bound lo, hi;
    uint8_t *bound_buf;         /* owned copies of lo / hi */
    rtomb_set rtombs;
    source_iter *sources;
    uint32_t n_sources;
    merge_heap heap;
    bool pending_skip;
    uint8_t *skip_key;
    size_t skip_len, skip_cap;
    int64_t skip_ts;
    bool done;
    lsm_status status;
    iter_counters counters;
    uint64_t tables_skipped;
    uint64_t tables_skipped_bloom;
    uint64_t bytes_returned;
};

void lsm_scan_spec_init(lsm_scan_spec *s)
{
    memset(s, 0, sizeof *s);
    s->ts_min = LSM_TS_MIN;
    s->ts_max = LSM_TS_MAX;
}

void lsm_read_options_init(lsm_read_options *ro)
{
    ro->snapshot = NULL;
    ro->fill_cache = true;
    ro->verify_checksums = true;
}

/* --------------------------------------------------------------- bounds */

static int bound_cmp(const bound *a, const bound *b)
{
    return key_compare(a->key, a->len, b->key, b->len);
}

/* Smallest key strictly greater than every key with this prefix; false if
 * none exists (the prefix is all 0xff bytes). */
static bool prefix_successor(const uint8_t *p, size_t len, uint8_t *out, size_t *out_len)
{
    while (len > 0 && p[len - 1] == 0xff)
        len--;
    if (len == 0)
        return false;
    memcpy(out, p, len);
    out[len - 1]++;
    *out_len = len;
    return true;
}

static lsm_status set_bounds(lsm_iter *it, const lsm_scan_spec *s)
{
    size_t total = s->key_lo_len + s->key_hi_len + 2 * s->prefix_len + 1;
    it->bound_buf = malloc(total);
    if (!it->bound_buf)
        return lsm_fail(LSM_NO_MEMORY, "scan bounds");
    uint8_t *p = it->bound_buf;
    if (s->key_lo) {
        memcpy(p, s->key_lo, s->key_lo_len);
        it->lo = (bound) {p, s->key_lo_len, true, !s->key_lo_exclusive};
        p += s->key_lo_len;
    }
    if (s->key_hi) {
        memcpy(p, s->key_hi, s->key_hi_len);
        it->hi = (bound) {p, s->key_hi_len, true, s->key_hi_inclusive};
        p += s->key_hi_len;
    }
    if (!s->prefix || s->prefix_len == 0)
        return LSM_OK;
    memcpy(p, s->prefix, s->prefix_len);
    bound plo = {p, s->prefix_len, true, true};
    p += s->prefix_len;
    if (!it->lo.set || bound_cmp(&plo, &it->lo) > 0)
        it->lo = plo;
    size_t succ_len;
    if (prefix_successor(plo.key, plo.len, p, &succ_len)) {
        bound phi = {p, succ_len, true, false};
        int c = it->hi.set ? bound_cmp(&phi, &it->hi) : -1;
        if (c < 0 || (c == 0 && it->hi.inclusive))
            it->hi = phi;
    }
    return LSM_OK;
}

static bool below_lo(const lsm_iter *it, const uint8_t *k, size_t len)
{
    if (!it->lo.set)
        return false;
    int c = key_compare(k, len, it->lo.key, it->lo.len);
    return c < 0 || (c == 0 && !it->lo.inclusive);
}

static bool above_hi(const lsm_iter *it, const uint8_t *k, size_t len)
{
    if (!it->hi.set)
        return false;
    int c = key_compare(k, len, it->hi.key, it->hi.len);
    return c > 0 || (c == 0 && !it->hi.inclusive);
}

static bool range_empty(const lsm_iter *it)
{
    if (!it->lo.set || !it->hi.set)
        return false;
    int c = bound_cmp(&it->lo, &it->hi);
    return c > 0 || (c == 0 && !(it->lo.inclusive && it->hi.inclusive));
}

/* Moves every source standing on the remembered (key, ts) past it. */
static bool skip_pending(lsm_iter *it)
{
    while (it->heap.len && merge_heap_top_is(&it->heap, it->skip_key, it->skip_len, it->skip_ts)) {
        lsm_status st = merge_heap_advance_top(&it->heap);
        if (st != LSM_OK) {
            it->status = st;
            return false;
        }
    }
    it->pending_skip = false;
    return true;
}

static lsm_status remember_skip(lsm_iter *it, const lsm_entry *e)
{
    if (e->key_len > it->skip_cap) {
        uint8_t *k = realloc(it->skip_key, e->key_len);
        if (!k)
            return lsm_fail(LSM_NO_MEMORY, "iterator key buffer");
        it->skip_key = k;
        it->skip_cap = e->key_len;
    }
    memcpy(it->skip_key, e->key, e->key_len);
    it->skip_len = e->key_len;
    it->skip_ts = e->ts;
    it->pending_skip = true;
    return LSM_OK;
}

/* ----------------------------------------------------------------- open */

/* False when the table's key bounds or ts range show it holds nothing in
 * range (table_meta.h: smallest is a lower bound; a truncated largest bounds
 * every key that does not extend it). */
static bool table_may_overlap(const lsm_iter *it, const table_meta *m)
{
    if (m->entry_count == 0 || m->max_ts < it->ts_min || m->min_ts > it->ts_max)
        return false;
    if (above_hi(it, m->smallest, m->smallest_len))
        return false;
    if (below_lo(it, m->largest, m->largest_len)) {
        bool lo_extends_largest = it->lo.len >= m->largest_len &&
                                  memcmp(it->lo.key, m->largest, m->largest_len) == 0;
        if (!m->largest_truncated || !lo_extends_largest)
            return false;
    }
    return true;
}

/* A scan of exactly one key may skip tables whose bloom filter rules the
 * key out (their range tombstones are collected separately, rtombs.c). */
static bool single_key(const lsm_iter *it)
{
    return it->lo.set && it->hi.set && it->lo.inclusive && it->hi.inclusive &&
           bound_cmp(&it->lo, &it->hi) == 0;
}

static bool table_may_hold(lsm_iter *it, uint32_t slot, uint64_t hash)
{
    table_handle *th;
    if (table_handle_get(it->db, slot, &it->ro, &th) != LSM_OK)
        return true; /* opening the source reports the error */
    return bloom_may_contain(th->filter_ref.data, th->filter_ref.len, hash);
}

static lsm_status open_sources(lsm_iter *it)
{
    region_header *h = it->db->hdr;
    version *v = region_version(h, it->version);
    uint32_t n = v->n_mem + v->n_tables;
    it->sources = calloc(n ? n : 1, sizeof *it->sources);
    it->heap.items = calloc(n ? n : 1, sizeof *it->heap.items);
    it->heap.reverse = it->reverse;
    if (!it->sources || !it->heap.items)
        return lsm_fail(LSM_NO_MEMORY, "iterator sources");
    bool one_key = single_key(it);
    uint64_t hash = one_key ? bloom_hash(it->lo.key, it->lo.len) : 0;
    for (uint32_t i = 0; i < v->n_mem; i++)
        source_init_memtable(&it->sources[it->n_sources++], region_memtable(h, v->mem[i]),
                             it->snap, it->ts_min, it->ts_max, &it->counters);
    for (uint32_t i = 0; i < v->n_tables; i++) {
        if (!table_may_overlap(it, &region_table(h, v->tables[i])->meta)) {
            it->tables_skipped++;
            continue;
        }
        if (one_key && !table_may_hold(it, v->tables[i], hash)) {
            it->tables_skipped_bloom++;
            continue;
        }
        source_iter *s = &it->sources[it->n_sources++];
        lsm_status st = source_init_table(s, it->db, v->tables[i], &it->ro, it->snap, it->ts_min,
                                          it->ts_max, &it->counters);
        if (st != LSM_OK)
            return st;
    }
    return LSM_OK;
}

static void position_sources(lsm_iter *it)
{
    for (uint32_t i = 0; i < it->n_sources; i++) {
        source_iter *s = &it->sources[i];
        if (!it->reverse && it->lo.set)
            source_seek(s, it->lo.key, it->lo.len, it->ts_min);
        else if (!it->reverse)
            source_seek_first(s);
        else if (it->hi.set)
            source_seek_for_prev(s, it->hi.key, it->hi.len, it->ts_max);
        else
            source_seek_last(s);
        if (s->status != LSM_OK && it->status == LSM_OK)
            it->status = s->status;
    }
    merge_heap_build(&it->heap, it->sources, it->n_sources);
}

/* rtomb_collect takes an exclusive upper bound: an inclusive hi becomes
 * hi + 0x00, the smallest key above it. */
static lsm_status collect_tombstones(lsm_iter *it)
{
    const uint8_t *lo = it->lo.set ? it->lo.key : NULL;
    if (!it->hi.set || !it->hi.inclusive)
        return rtomb_collect(it->db, it->version, it->snap, lo, it->lo.len,
                             it->hi.set ? it->hi.key : NULL, it->hi.len, &it->ro, &it->rtombs);
    uint8_t *hi = malloc(it->hi.len + 1);
    if (!hi)
        return lsm_fail(LSM_NO_MEMORY, "scan bounds");
    memcpy(hi, it->hi.key, it->hi.len);
    hi[it->hi.len] = 0;
    lsm_status st = rtomb_collect(it->db, it->version, it->snap, lo, it->lo.len, hi,
                                  it->hi.len + 1, &it->ro, &it->rtombs);
    free(hi);
    return st;
}

static lsm_status validate_spec(const lsm_scan_spec *s)
{
    if (s->ts_min > s->ts_max)
        return lsm_fail(LSM_INVALID, "scan: ts_min %lld is greater than ts_max %lld",
                        (long long) s->ts_min, (long long) s->ts_max);
    if ((s->key_lo_len && !s->key_lo) || (s->key_hi_len && !s->key_hi) ||
        (s->prefix_len && !s->prefix))
        return lsm_fail(LSM_INVALID, "scan: a bound has a length but no bytes");
    if (s->key_lo_len > LSM_MAX_KEY_SIZE || s->key_hi_len > LSM_MAX_KEY_SIZE ||
        s->prefix_len > LSM_MAX_KEY_SIZE)
        return lsm_fail(LSM_TOO_LARGE, "scan: a bound is longer than %u bytes", LSM_MAX_KEY_SIZE);
    return LSM_OK;
}

lsm_status lsm_iter_open(lsm_db *db, const lsm_read_options *ro, const lsm_scan_spec *spec,
                         lsm_iter **out)
{
    *out = NULL;
    if (!db || !spec)
        return lsm_fail(LSM_INVALID, "iter_open: NULL argument");
    lsm_status st = validate_spec(spec);
    if (st != LSM_OK)
        return st;
    if (atomic_load(&db->hdr->state) != REGION_READY)
        return lsm_fail(LSM_CLOSED, "engine is not open");
    lsm_iter *it = calloc(1, sizeof *it);
    if (!it)
        return lsm_fail(LSM_NO_MEMORY, "iterator");
    it->db = db;
    if (ro)
        it->ro = *ro;
    else
        lsm_read_options_init(&it->ro);
    it->reverse = spec->reverse;
    it->limit = spec->limit;
    it->ts_min = spec->ts_min;
    it->ts_max = spec->ts_max;
    if (it->ro.snapshot) {
        it->version = it->ro.snapshot->version;
        it->snap = it->ro.snapshot->seq;
        it->ro.snapshot = NULL; /* the iterator does not own it */
    } else {
        it->version = version_pin_current(db, &it->snap);
        it->owns_snap = true;
    }
    st = set_bounds(it, spec);
    if (st == LSM_OK && range_empty(it))
        it->done = true;
    if (st == LSM_OK && !it->done)
        st = collect_tombstones(it);
    if (st == LSM_OK && !it->done)
        st = open_sources(it);
    if (st == LSM_OK && !it->done)
        position_sources(it);
    if (st == LSM_OK)
        st = it->status;
    if (st != LSM_OK) {
        lsm_iter_close(it);
        return st;
    }
    *out = it;
    return LSM_OK;
}

/* ----------------------------------------------------------------- next */

static bool entry_deleted(const lsm_iter *it, const lsm_entry *e, int64_t now)
{
    if (e->type != ENTRY_PUT || entry_is_expired(e, now))
        return true;
    return it->rtombs.n && rtomb_covers(&it->rtombs, e->key, e->key_len, e->seq);
}

static bool past_end(const lsm_iter *it, const lsm_entry *e)
{
    return it->reverse ? below_lo(it, e->key, e->key_len) : above_hi(it, e->key, e->key_len);
}

static bool before_start(const lsm_iter *it, const lsm_entry *e)
{
    return it->reverse ? above_hi(it, e->key, e->key_len) : below_lo(it, e->key, e->key_len);
}

lsm_status lsm_iter_next(lsm_iter *it, lsm_record *rec)
{
    if (it->status != LSM_OK)
        return it->status;
    if (it->done || (it->limit && it->returned >= it->limit))
        return LSM_DONE;
    if (it->pending_skip && !skip_pending(it))
        return it->status;
    int64_t now = db_now_secs(it->db);
    while (it->heap.len) {
        const lsm_entry *e = &it->heap.items[0]->cur;
        if (past_end(it, e))
            break;
        lsm_status st = remember_skip(it, e);
        if (st != LSM_OK)
            return it->status = st;
        if (before_start(it, e) || entry_deleted(it, e, now)) {
            if (!skip_pending(it))
                return it->status;
            continue;
        }
        rec->key = e->key;
        rec->key_len = e->key_len;
        rec->ts = e->ts;
        rec->expire_at = e->expire_at;
        rec->value = e->value;
        rec->value_len = e->value_len;
        rec->seq = e->seq;
        it->returned++;
        it->bytes_returned += e->key_len + e->value_len;
        return LSM_OK;
    }
    it->done = true;
    return LSM_DONE;
}

void lsm_iter_get_stats(const lsm_iter *it, lsm_iter_stats *st)
{
    st->records_scanned = it->counters.scanned;
    st->records_returned = it->returned;
    st->blocks_read = it->counters.blocks_read;
    st->blocks_skipped_ts = it->counters.blocks_skipped_ts;
    st->tables_skipped = it->tables_skipped;
    st->tables_skipped_bloom = it->tables_skipped_bloom;
}

void lsm_iter_close(lsm_iter *it)
{
    if (!it)
        return;
    for (uint32_t i = 0; i < it->n_sources; i++)
        source_release(&it->sources[i]);
    free(it->sources);
    free(it->heap.items);
    rtomb_set_free(&it->rtombs);
    free(it->bound_buf);
    free(it->skip_key);
    stats_count_read(it->db, it->returned, it->bytes_returned);
    if (it->owns_snap)
        version_unpin(it->db, it->version);
    free(it);
}
