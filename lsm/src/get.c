/*
 * get.c — point reads: get(key, ts) and get_latest(key).
 *
 * get searches the sources of one pinned version newest first; the first
 * source holding a visible version of (key, ts) holds the newest one, because
 * sources are ordered by seq (newer memtables, then tables, newest first).
 * The version found is then checked against range tombstones and expiry.
 * Tables are skipped by key bounds, ts range and bloom filter before any
 * data block is read.
 */
#include <stdlib.h>
#include <string.h>

#include "bloom.h"
#include "db.h"
#include "source_iter.h"
#include "status.h"

#define READ_LATENCY_SAMPLE 16

typedef struct get_ctx {
    lsm_db *db;
    const lsm_read_options *ro;
    const uint8_t *key;
    size_t klen;
    int64_t ts;
    uint64_t snap;
    uint64_t hash;
    bool hashed;
    block_buf buf;
} get_ctx;

static lsm_status copy_out(lsm_value *out, const lsm_entry *e)
{
    if (out->cap < e->value_len || !out->data) {
        size_t cap = e->value_len ? e->value_len : 1;
        uint8_t *d = realloc(out->data, cap);
        if (!d)
            return lsm_fail(LSM_NO_MEMORY, "get: value of %u bytes", e->value_len);
        out->data = d;
        out->cap = cap;
    }
    if (e->value_len)
        memcpy(out->data, e->value, e->value_len);
    out->len = e->value_len;
    out->ts = e->ts;
    out->expire_at = e->expire_at;
    out->seq = e->seq;
    return LSM_OK;
}

/* Newest visible version in a memtable: LSM_OK (found), LSM_NOT_FOUND. */
static lsm_status memtable_find(get_ctx *g, memtable *m, lsm_entry *e)
{
    for (uint32_t off = memtable_lookup(m, g->key, g->klen, g->ts); off;
         off = memtable_next(m, off)) {
        mem_node *n = memtable_node(m, off);
        memtable_node_entry(n, e);
        if (entry_compare_kt(e->key, e->key_len, e->ts, g->key, g->klen, g->ts) != 0)
            break;
        if (n->seq <= g->snap && !atomic_load_explicit(&n->aborted, memory_order_acquire))
            return LSM_OK;
    }
    return LSM_NOT_FOUND;
}

static bool table_excludes(const get_ctx *g, const table_meta *m)
{
    if (g->ts < m->min_ts || g->ts > m->max_ts)
        return true;
    if (key_compare(g->key, g->klen, m->smallest, m->smallest_len) < 0)
        return true;
    if (key_compare(g->key, g->klen, m->largest, m->largest_len) > 0) {
        bool extends = g->klen >= m->largest_len &&
                       memcmp(g->key, m->largest, m->largest_len) == 0;
        return !(m->largest_truncated && extends);
    }
    return false;
}

/* Looks (key, ts) up in one table; copies the value into *out on a hit
 * (the data block is released before returning). */
static lsm_status table_find(get_ctx *g, uint32_t slot, lsm_value *out, lsm_entry *found)
{
    const table_meta *m = &region_table(g->db->hdr, slot)->meta;
    if (table_excludes(g, m))
        return LSM_NOT_FOUND;
    table_handle *th;
    lsm_status st = table_handle_get(g->db, slot, g->ro, &th);
    if (st != LSM_OK)
        return table_error(g->db, m->file_no, st);
    if (!g->hashed) {
        g->hash = bloom_hash(g->key, g->klen);
        g->hashed = true;
    }
    if (!bloom_may_contain(th->filter_ref.data, th->filter_ref.len, g->hash))
        return LSM_NOT_FOUND;
    uint32_t bi = fence_index_seek(&th->fences, &th->index, g->key, g->klen, g->ts);
    if (bi >= th->index.count)
        return LSM_NOT_FOUND;
    sst_handle h;
    if (!fence_index_handle(&th->fences, bi, &h)) {
        sst_index_entry ie;
        st = sst_index_entry_at(&th->index, bi, &ie);
        if (st != LSM_OK)
            return table_error(g->db, th->file_no, st);
        h = ie.handle;
    }
    block_ref dref = {0};
    sst_block block;
    st = block_fetch(g->db, th->table, th->file_no, h, false, g->ro, &g->buf, &dref, &block);
    if (st == LSM_OK) {
        uint32_t i = sst_block_seek(&block, g->key, g->klen, g->ts);
        st = i < block.count ? sst_block_entry(&block, i, found) : LSM_NOT_FOUND;
        if (st == LSM_OK &&
            entry_compare_kt(found->key, found->key_len, found->ts, g->key, g->klen, g->ts) != 0)
            st = LSM_NOT_FOUND;
        if (st == LSM_OK && found->seq > g->snap)
            st = LSM_NOT_FOUND; /* an ingested batch not visible yet: older tables decide */
        if (st == LSM_OK && found->type == ENTRY_PUT)
            st = copy_out(out, found);
    }
    block_ref_release(&dref);
    return table_error(g->db, th->file_no, st);
}

static lsm_status get_in_version(get_ctx *g, uint32_t vi, lsm_value *out)
{
    region_header *h = g->db->hdr;
    version *v = region_version(h, vi);
    lsm_entry e;
    lsm_status st = LSM_NOT_FOUND;
    for (uint32_t i = 0; i < v->n_mem && st == LSM_NOT_FOUND; i++) {
        st = memtable_find(g, region_memtable(h, v->mem[i]), &e);
        if (st == LSM_OK && e.type == ENTRY_PUT)
            st = copy_out(out, &e);
    }
    for (uint32_t i = 0; i < v->n_tables && st == LSM_NOT_FOUND; i++)
        st = table_find(g, v->tables[i], out, &e);
    if (st != LSM_OK)
        return st;
    if (e.type != ENTRY_PUT || (e.expire_at != 0 && e.expire_at <= db_now_secs(g->db)))
        return LSM_NOT_FOUND;
    bool covered;
    st = rtomb_point_covered(g->db, vi, g->snap, g->key, g->klen, e.seq, g->ro, &covered);
    if (st == LSM_OK && covered)
        st = LSM_NOT_FOUND;
    return st;
}

static lsm_status check_key(const void *key, size_t klen)
{
    if (!key || klen == 0)
        return lsm_fail(LSM_INVALID, "key must not be empty");
    if (klen > LSM_MAX_KEY_SIZE)
        return lsm_fail(LSM_TOO_LARGE, "key of %zu bytes exceeds the %u-byte limit", klen,
                        LSM_MAX_KEY_SIZE);
    return LSM_OK;
}

lsm_status lsm_get(lsm_db *db, const lsm_read_options *ro, const void *key, size_t key_len,
                   int64_t ts, lsm_value *out)
{
    if (!db || !out)
        return lsm_fail(LSM_INVALID, "get: NULL argument");
    lsm_status st = check_key(key, key_len);
    if (st != LSM_OK)
        return st;
    if (atomic_load(&db->hdr->state) != REGION_READY)
        return lsm_fail(LSM_CLOSED, "engine is not open");
    /* Latency is sampled (1 read in READ_LATENCY_SAMPLE per thread): two
     * clock reads cost ~10% of a memtable get. */
    static _Thread_local uint32_t sample_tick;
    bool timed = (sample_tick++ % READ_LATENCY_SAMPLE) == 0;
    uint64_t t0 = timed ? mono_us() : 0;
    lsm_read_options dflt;
    if (!ro) {
        lsm_read_options_init(&dflt);
        ro = &dflt;
    }
    get_ctx g = {.db = db, .ro = ro, .key = key, .klen = key_len, .ts = ts};
    uint32_t v;
    if (ro->snapshot) {
        v = ro->snapshot->version;
        g.snap = ro->snapshot->seq;
    } else {
        v = version_pin_current(db, &g.snap);
    }
    st = get_in_version(&g, v, out);
    if (!ro->snapshot)
        version_unpin(db, v);
    block_buf_free(&g.buf);
    if (st == LSM_OK) {
        stats_count_read(db, 1, key_len + out->len);
    }
    if (timed)
        histogram_record(&db->hdr->stats.read_latency, mono_us() - t0);
    return st;
}

lsm_status lsm_get_latest(lsm_db *db, const lsm_read_options *ro, const void *key,
                          size_t key_len, lsm_value *out)
{
    if (!db || !out)
        return lsm_fail(LSM_INVALID, "get_latest: NULL argument");
    lsm_status st = check_key(key, key_len);
    if (st != LSM_OK)
        return st;
    lsm_scan_spec spec;
    lsm_scan_spec_init(&spec);
    spec.key_lo = key;
    spec.key_lo_len = key_len;
    spec.key_hi = key;
    spec.key_hi_len = key_len;
    spec.key_hi_inclusive = true;
    spec.reverse = true;
    spec.limit = 1;
    lsm_iter *it;
    st = lsm_iter_open(db, ro, &spec, &it);
    if (st != LSM_OK)
        return st;
    lsm_record rec;
    st = lsm_iter_next(it, &rec);
    if (st == LSM_OK) {
        lsm_entry e = {.value = rec.value, .value_len = (uint32_t) rec.value_len, .ts = rec.ts,
                       .expire_at = rec.expire_at, .seq = rec.seq};
        st = copy_out(out, &e);
    } else if (st == LSM_DONE) {
        st = LSM_NOT_FOUND;
    }
    lsm_iter_close(it);
    return st;
}

void lsm_value_free(lsm_value *v)
{
    if (!v)
        return;
    free(v->data);
    memset(v, 0, sizeof *v);
}
