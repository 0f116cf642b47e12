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
    const struct located_block *located; /* get_many: a block already pinned */
} get_ctx;

/* get_many's second stage: the data block that the newest table whose bloom
 * filter admits the key would search, fetched and pinned (its bytes being
 * loaded) before the key's turn comes. */
typedef struct located_block {
    bool none;           /* no table admits the key (bounds, bloom, fence) */
    bool pinned;
    uint32_t index;      /* the table's position in the version */
    uint32_t slot;       /* the table's slot */
    uint64_t uniform_seq; /* the table's sst_table_uniform_seq */
    block_ref ref;
    sst_block block;
    block_buf buf;       /* scratch for a block read from the file */
} located_block;

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

/* Looks (key, ts) up in a table's data block: LSM_OK with *found (and the
 * value copied into *out for a PUT), or LSM_NOT_FOUND.  uniform_seq: the
 * table's (sst_table_uniform_seq). */
static lsm_status search_block(get_ctx *g, const sst_block *block, uint64_t uniform_seq,
                               lsm_value *out, lsm_entry *found)
{
    uint32_t i = sst_block_seek(block, g->key, g->klen, g->ts);
    lsm_status st = i < block->count ? sst_block_entry(block, i, found) : LSM_NOT_FOUND;
    if (st == LSM_OK && uniform_seq)
        found->seq = uniform_seq;
    if (st == LSM_OK &&
        entry_compare_kt(found->key, found->key_len, found->ts, g->key, g->klen, g->ts) != 0)
        st = LSM_NOT_FOUND;
    if (st == LSM_OK && found->seq > g->snap)
        st = LSM_NOT_FOUND; /* an ingested batch not visible yet: older tables decide */
    if (st == LSM_OK && found->type == ENTRY_PUT)
        st = copy_out(out, found);
    return st;
}

/* The handle of the block of table `slot` that would hold (key, ts), after
 * the table's bounds and bloom filter admit the key: LSM_OK, LSM_NOT_FOUND
 * or an error. */
static lsm_status table_block(get_ctx *g, uint32_t slot, table_handle **th, sst_handle *bh)
{
    const table_meta *m = &region_table(g->db->hdr, slot)->meta;
    if (table_excludes(g, m))
        return LSM_NOT_FOUND;
    lsm_status st = table_handle_get(g->db, slot, g->ro, th);
    if (st != LSM_OK)
        return table_error(g->db, m->file_no, st);
    if (!g->hashed) {
        g->hash = bloom_hash(g->key, g->klen);
        g->hashed = true;
    }
    if (!bloom_may_contain((*th)->filter_ref.data, (*th)->filter_ref.len, g->hash))
        return LSM_NOT_FOUND;
    uint32_t bi = fence_index_seek(&(*th)->fences, &(*th)->index, g->key, g->klen, g->ts);
    if (bi >= (*th)->index.count)
        return LSM_NOT_FOUND;
    if (fence_index_handle(&(*th)->fences, bi, bh))
        return LSM_OK;
    sst_index_entry ie; /* no fences (a small table): decode the index entry */
    st = sst_index_entry_at(&(*th)->index, bi, &ie);
    if (st != LSM_OK)
        return table_error(g->db, (*th)->file_no, st);
    *bh = ie.handle;
    return LSM_OK;
}

/* Looks (key, ts) up in one table; copies the value into *out on a hit
 * (the data block is released before returning). */
static lsm_status table_find(get_ctx *g, uint32_t slot, lsm_value *out, lsm_entry *found)
{
    if (g->located && g->located->pinned && g->located->slot == slot)
        return search_block(g, &g->located->block, g->located->uniform_seq, out, found);
    table_handle *th;
    sst_handle bh;
    lsm_status st = table_block(g, slot, &th, &bh);
    if (st != LSM_OK)
        return st;
    block_ref dref = {0};
    sst_block block;
    st = block_fetch(g->db, th->table, th->file_no, bh, false, g->ro, &g->buf, &dref, &block);
    if (st == LSM_OK)
        st = search_block(g, &block, sst_table_uniform_seq(th->table), out, found);
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
    /* get_many located the key's block: the tables before it (or all of
     * them, when none admitted the key) were ruled out for this key at
     * this version already. */
    uint32_t first = 0;
    if (g->located && g->located->none)
        first = v->n_tables;
    else if (g->located && g->located->pinned)
        first = g->located->index;
    for (uint32_t i = first; i < v->n_tables && st == LSM_NOT_FOUND; i++)
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

/* The version a read searches and its visibility horizon *snap: the
 * snapshot's, or the current one pinned until end_read. */
static uint32_t read_version(lsm_db *db, const lsm_read_options *ro, uint64_t *snap)
{
    if (ro->snapshot) {
        *snap = ro->snapshot->seq;
        return ro->snapshot->version;
    }
    return version_pin_current(db, snap);
}

static void end_read(lsm_db *db, const lsm_read_options *ro, uint32_t v)
{
    if (!ro->snapshot)
        version_unpin(db, v);
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
    uint32_t v = read_version(db, ro, &g.snap);
    st = get_in_version(&g, v, out);
    end_read(db, ro, v);
    block_buf_free(&g.buf);
    if (st == LSM_OK) {
        stats_count_read(db, 1, key_len + out->len);
    }
    if (timed)
        histogram_record(&db->hdr->stats.read_latency, mono_us() - t0);
    return st;
}

/* ------------------------------------------------------------ get_many */

/* Keys whose first cache misses are started ahead of the key being read. */
#define GET_MANY_AHEAD 4
#define GET_MANY_RING (GET_MANY_AHEAD + 1)
/* Keys whose data block is located and pinned ahead of the key being read
 * (< GET_MANY_AHEAD: it needs the bloom blocks prefetched). */
#define GET_MANY_LOCATE 2

/* Starts loading what reading k touches first: its hash slot in each
 * memtable and its bloom filter block in each table of version v; returns
 * its bloom hash. */
static uint64_t prefetch_key(lsm_db *db, const lsm_read_options *ro, const version *v,
                             const lsm_key_ts *k)
{
    region_header *h = db->hdr;
    for (uint32_t i = 0; i < v->n_mem; i++)
        memtable_prefetch_lookup(region_memtable(h, v->mem[i]), k->key, k->key_len, k->ts);
    uint64_t hash = bloom_hash(k->key, k->key_len);
    for (uint32_t i = 0; i < v->n_tables; i++) {
        table_handle *th;
        if (table_handle_get(db, v->tables[i], ro, &th) == LSM_OK)
            bloom_prefetch(th->filter_ref.data, th->filter_ref.len, hash);
    }
    return hash;
}

/* Pins into *loc the block of the newest table of v whose bloom filter
 * admits g's key, and starts loading its bytes; or notes that no table
 * admits it.  Best effort: on any failure nothing is noted and the key's
 * own read meets the error. */
static void locate_block(get_ctx *g, const version *v, located_block *loc)
{
    loc->none = loc->pinned = false;
    for (uint32_t i = 0; i < v->n_tables; i++) {
        table_handle *th;
        sst_handle bh;
        lsm_status st = table_block(g, v->tables[i], &th, &bh);
        if (st == LSM_NOT_FOUND)
            continue;
        if (st != LSM_OK || block_fetch(g->db, th->table, th->file_no, bh, false, g->ro,
                                        &loc->buf, &loc->ref, &loc->block) != LSM_OK)
            return;
        loc->pinned = true;
        loc->index = i;
        loc->slot = v->tables[i];
        loc->uniform_seq = sst_table_uniform_seq(th->table);
        for (size_t off = 0; off < loc->block.len; off += 64)
            __builtin_prefetch(loc->block.data + off);
        return;
    }
    loc->none = true;
}

static void located_release(located_block *loc)
{
    if (loc->pinned)
        block_ref_release(&loc->ref);
    loc->none = loc->pinned = false;
}

/* Does a memtable of v hold some version of g's key?  (Then the tables are
 * not searched unless it is invisible: no block is located for it.) */
static bool in_memtable(const get_ctx *g, const version *v)
{
    for (uint32_t i = 0; i < v->n_mem; i++)
        if (memtable_lookup(region_memtable(g->db->hdr, v->mem[i]), g->key, g->klen, g->ts))
            return true;
    return false;
}

static void set_key(get_ctx *g, const lsm_key_ts *k, uint64_t hash)
{
    g->key = k->key;
    g->klen = k->key_len;
    g->ts = k->ts;
    g->hash = hash;
    g->hashed = true;
}

/*
 * Three stages, each a few keys ahead of the next: key i + GET_MANY_AHEAD
 * has its memtable hash slots and bloom blocks prefetched; key
 * i + GET_MANY_LOCATE has its data block located, pinned and prefetched;
 * key i is read, searching the located block when the read gets to that
 * table.
 */
lsm_status lsm_get_many(lsm_db *db, const lsm_read_options *ro, const lsm_key_ts *keys, size_t n,
                        lsm_value *out, lsm_status *found)
{
    if (!db || (n && (!keys || !out || !found)))
        return lsm_fail(LSM_INVALID, "get_many: NULL argument");
    if (atomic_load(&db->hdr->state) != REGION_READY)
        return lsm_fail(LSM_CLOSED, "engine is not open");
    lsm_read_options dflt;
    if (!ro) {
        lsm_read_options_init(&dflt);
        ro = &dflt;
    }
    get_ctx g = {.db = db, .ro = ro};
    uint32_t vi = read_version(db, ro, &g.snap);
    const version *v = region_version(db->hdr, vi);
    get_ctx lg = g; /* the locate stage's context */
    uint64_t hashes[GET_MANY_RING];
    located_block locs[GET_MANY_LOCATE + 1];
    memset(locs, 0, sizeof locs);
    lsm_status first_error = LSM_OK;
    uint64_t hits = 0, bytes = 0;
    /* one key has nothing to overlap with: it is read as lsm_get reads */
    bool ahead = n > 1;
    for (size_t i = 0; i < n + GET_MANY_AHEAD; i++) {
        if (i < n && check_key(keys[i].key, keys[i].key_len) == LSM_OK)
            hashes[i % GET_MANY_RING] =
                ahead ? prefetch_key(db, ro, v, &keys[i]) : bloom_hash(keys[i].key, keys[i].key_len);
        size_t l = i - (GET_MANY_AHEAD - GET_MANY_LOCATE); /* wraps below 0: skipped */
        if (ahead && l < n && check_key(keys[l].key, keys[l].key_len) == LSM_OK) {
            set_key(&lg, &keys[l], hashes[l % GET_MANY_RING]);
            if (!in_memtable(&lg, v))
                locate_block(&lg, v, &locs[l % (GET_MANY_LOCATE + 1)]);
        }
        size_t r = i - GET_MANY_AHEAD;
        if (r >= n)
            continue;
        located_block *loc = &locs[r % (GET_MANY_LOCATE + 1)];
        lsm_status st = check_key(keys[r].key, keys[r].key_len);
        if (st == LSM_OK) {
            set_key(&g, &keys[r], hashes[r % GET_MANY_RING]);
            g.located = loc;
            st = get_in_version(&g, vi, &out[r]);
        }
        located_release(loc);
        found[r] = st;
        if (st == LSM_OK) {
            hits++;
            bytes += keys[r].key_len + out[r].len;
        } else if (st != LSM_NOT_FOUND && first_error == LSM_OK) {
            first_error = st;
        }
    }
    end_read(db, ro, vi);
    block_buf_free(&g.buf);
    for (size_t i = 0; i < GET_MANY_LOCATE + 1; i++)
        block_buf_free(&locs[i].buf);
    if (hits)
        stats_count_read(db, hits, bytes);
    return first_error;
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
