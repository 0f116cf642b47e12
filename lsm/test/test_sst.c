/* test_sst.c — SST builder/reader round trips, seeks, bloom, meta, corruption. */
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

#include "bloom.h"
#include "coding.h"
#include "fence_index.h"
#include "sst.h"
#include "testutil.h"

static char dir[512];
static uint64_t rng = 0x9E3779B97F4A7C15ull;

/* ------------------------------------------------------------ helpers */

typedef struct owned_entry {
    lsm_entry e;
    uint8_t *key, *value;   /* owned copies */
} owned_entry;

static int cmp_owned(const void *a, const void *b)
{
    return entry_compare(&((const owned_entry *) a)->e, &((const owned_entry *) b)->e);
}

static owned_entry make_entry(const uint8_t *key, uint32_t klen, int64_t ts, uint64_t seq,
                              uint8_t type, int64_t expire_at, uint32_t vlen)
{
    owned_entry o = {0};
    o.key = malloc(klen);
    memcpy(o.key, key, klen);
    o.value = malloc(vlen ? vlen : 1);
    for (uint32_t i = 0; i < vlen; i++)
        o.value[i] = (uint8_t) ((i % 64 == 0) ? xorshift64(&rng) : 'a' + (i + seq) % 7);
    o.e = (lsm_entry){.key = o.key, .key_len = klen, .type = type, .ts = ts, .seq = seq,
                      .expire_at = expire_at, .value = o.value, .value_len = vlen};
    return o;
}

static void free_entries(owned_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].value);
    }
    free(v);
}

static bool same_entry(const lsm_entry *a, const lsm_entry *b)
{
    return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0 &&
           a->ts == b->ts && a->seq == b->seq && a->type == b->type &&
           a->expire_at == b->expire_at && a->value_len == b->value_len &&
           (a->value_len == 0 || memcmp(a->value, b->value, a->value_len) == 0);
}

/* Random entries over a small key space so keys repeat with many ts/seq. */
static owned_entry *random_entries(size_t n, uint64_t *seq_base)
{
    owned_entry *v = calloc(n + 2, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        uint8_t key[32];
        uint32_t klen = 1 + xorshift64(&rng) % 12;
        for (uint32_t j = 0; j < klen; j++)
            key[j] = (uint8_t) ("abcd\x00\xff"[xorshift64(&rng) % 6]);
        int64_t ts = (int64_t) (xorshift64(&rng) % 40) - 20;
        if (xorshift64(&rng) % 50 == 0)
            ts = (xorshift64(&rng) & 1) ? INT64_MAX - 1 : INT64_MIN + 1;
        uint8_t type = xorshift64(&rng) % 10 == 0 ? ENTRY_DELETE : ENTRY_PUT;
        int64_t exp = xorshift64(&rng) % 3 == 0 ? 0 : 1700000000 + (int64_t) (xorshift64(&rng) % 1000);
        uint32_t vlen = type == ENTRY_DELETE ? 0 : (uint32_t) (xorshift64(&rng) % 4 == 0 ? 0 : xorshift64(&rng) % 300);
        v[i] = make_entry(key, klen, ts, ++*seq_base, type, exp, vlen);
    }
    return v;
}

static sst_options opts(size_t block_size, uint32_t bits)
{
    return (sst_options){.block_size = block_size, .bloom_bits_per_key = bits};
}

static void path_for(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

/* Builds path from sorted entries (+ tombstones); returns status of finish. */
static lsm_status build(const char *path, const sst_options *o, const owned_entry *v, size_t n,
                        const owned_entry *rt, size_t nrt, table_meta *meta)
{
    sst_builder *b;
    lsm_status st = sst_builder_open(path, 7, o, &b);
    if (st != LSM_OK)
        return st;
    for (size_t i = 0; i < n && st == LSM_OK; i++)
        st = sst_builder_add(b, &v[i].e);
    for (size_t i = 0; i < nrt && st == LSM_OK; i++)
        st = sst_builder_add_range_tombstone(b, &rt[i].e);
    if (st != LSM_OK) {
        sst_builder_abandon(b);
        return st;
    }
    return sst_builder_finish(b, meta);
}

/* A table's index plus one data block loaded at a time. */
typedef struct reader {
    sst_table *t;
    block_buf ibuf, dbuf;
    sst_block index, data;
    uint32_t block_no;      /* index of the block in data, or UINT32_MAX */
} reader;

static lsm_status reader_open(reader *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->block_no = UINT32_MAX;
    lsm_status st = sst_table_open(path, 7, &r->t);
    if (st == LSM_OK)
        st = sst_read_block(r->t, sst_table_index_handle(r->t), true, &r->ibuf);
    if (st == LSM_OK)
        st = sst_block_parse(r->ibuf.data, r->ibuf.len, &r->index);
    return st;
}

static lsm_status reader_load(reader *r, uint32_t block_no)
{
    sst_index_entry ie;
    lsm_status st = sst_index_entry_at(&r->index, block_no, &ie);
    if (st == LSM_OK)
        st = sst_read_block(r->t, ie.handle, true, &r->dbuf);
    if (st == LSM_OK)
        st = sst_block_parse(r->dbuf.data, r->dbuf.len, &r->data);
    r->block_no = st == LSM_OK ? block_no : UINT32_MAX;
    return st;
}

static void reader_close(reader *r)
{
    sst_table_close(r->t);
    block_buf_free(&r->ibuf);
    block_buf_free(&r->dbuf);
}

/* Lower bound of (key, ts) in v[0..n). */
static size_t expected_seek(const owned_entry *v, size_t n, const uint8_t *k, size_t kl, int64_t ts)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (entry_compare_kt(v[mid].e.key, v[mid].e.key_len, v[mid].e.ts, k, kl, ts) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Table seek: sets (*blk, *pos) to the first entry >= target; false at end. */
static bool table_seek(reader *r, const uint8_t *k, size_t kl, int64_t ts, uint32_t *pos)
{
    uint32_t bi = sst_index_seek(&r->index, k, kl, ts);
    if (bi >= r->index.count)
        return false;
    if (reader_load(r, bi) != LSM_OK)
        return false;
    *pos = sst_block_seek(&r->data, k, kl, ts);
    if (*pos < r->data.count)
        return true;
    /* Only possible if the separator is not this block's last key. */
    return false;
}

/* ------------------------------------------------------------- tests */

static void check_full_scan(reader *r, const owned_entry *v, size_t n, uint64_t *raw)
{
    size_t k = 0;
    *raw = 0;
    for (uint32_t bi = 0; bi < r->index.count; bi++) {
        sst_index_entry ie;
        CHECK_OK(sst_index_entry_at(&r->index, bi, &ie));
        CHECK_OK(reader_load(r, bi));
        *raw += r->dbuf.len;
        CHECK(r->data.count > 0);
        int64_t mn = INT64_MAX, mx = INT64_MIN;
        lsm_entry e = {0};
        for (uint32_t i = 0; i < r->data.count; i++, k++) {
            CHECK_OK(sst_block_entry(&r->data, i, &e));
            if (k < n && !same_entry(&e, &v[k].e)) {
                CHECK(!"entry differs");
                fprintf(stderr, "  at entry %zu (block %u slot %u)\n", k, bi, i);
                return;
            }
            mn = e.ts < mn ? e.ts : mn;
            mx = e.ts > mx ? e.ts : mx;
        }
        CHECK(ie.min_ts == mn && ie.max_ts == mx);
        CHECK(ie.last_ts == e.ts && key_compare(ie.last_key, ie.last_key_len, e.key, e.key_len) == 0);
    }
    CHECK(k == n);
}

static void check_seeks(reader *r, const owned_entry *v, size_t n)
{
    size_t bad = 0;
    for (int q = 0; q < 4000; q++) {
        uint8_t key[16];
        size_t kl;
        int64_t ts;
        if (q % 2 == 0 && n > 0) {      /* an existing (key, ts) */
            const lsm_entry *e = &v[xorshift64(&rng) % n].e;
            kl = e->key_len < sizeof key ? e->key_len : sizeof key;
            memcpy(key, e->key, kl);
            ts = q % 4 == 0 ? e->ts : INT64_MIN;   /* exact, or prefix-style */
        } else {
            kl = 1 + xorshift64(&rng) % 8;
            for (size_t j = 0; j < kl; j++)
                key[j] = (uint8_t) ("abcde\x00\xff"[xorshift64(&rng) % 7]);
            ts = (int64_t) (xorshift64(&rng) % 50) - 25;
        }
        size_t want = expected_seek(v, n, key, kl, ts);
        uint32_t pos;
        bool found = table_seek(r, key, kl, ts, &pos);
        if (found != (want < n)) {
            bad++;
            continue;
        }
        if (!found)
            continue;
        lsm_entry e;
        if (sst_block_entry(&r->data, pos, &e) != LSM_OK || !same_entry(&e, &v[want].e)) {
            bad++;
            continue;
        }
        /* Walk backward a few steps through offsets and previous blocks. */
        size_t k = want;
        for (int step = 0; step < 5 && k > 0; step++) {
            k--;
            if (pos == 0) {
                if (reader_load(r, r->block_no - 1) != LSM_OK) {
                    bad++;
                    break;
                }
                pos = r->data.count;
            }
            pos--;
            if (sst_block_entry(&r->data, pos, &e) != LSM_OK || !same_entry(&e, &v[k].e)) {
                bad++;
                break;
            }
        }
    }
    CHECK(bad == 0);
}

static void test_round_trip(void)
{
    uint64_t seq = 100;
    size_t n = 20000;
    owned_entry *v = random_entries(n, &seq);
    /* One 8 KiB key and one 16 MiB value. */
    uint8_t *big_key = malloc(LSM_MAX_KEY_SIZE);
    memset(big_key, 'b', LSM_MAX_KEY_SIZE);
    v[n++] = make_entry(big_key, LSM_MAX_KEY_SIZE, 5, ++seq, ENTRY_PUT, 0, 10);
    v[n++] = make_entry((const uint8_t *) "c", 1, 3, ++seq, ENTRY_PUT, 0, LSM_MAX_VALUE_SIZE);
    free(big_key);
    qsort(v, n, sizeof *v, cmp_owned);

    char path[600];
    path_for(path, sizeof path, "round.sst");
    sst_options o = opts(4096, 10);
    table_meta meta;
    CHECK_OK(build(path, &o, v, n, NULL, 0, &meta));

    reader r;
    CHECK_OK(reader_open(&r, path));
    if (r.t == NULL)
        return;
    uint64_t raw;
    CHECK(r.index.count > n / 200);
    check_full_scan(&r, v, n, &raw);
    check_seeks(&r, v, n);

    /* Meta agrees with the entries. */
    const table_meta *m = sst_table_meta(r.t);
    uint64_t dels = 0, mnseq = UINT64_MAX, mxseq = 0;
    int64_t mnts = INT64_MAX, mxts = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        dels += v[i].e.type == ENTRY_DELETE;
        mnseq = v[i].e.seq < mnseq ? v[i].e.seq : mnseq;
        mxseq = v[i].e.seq > mxseq ? v[i].e.seq : mxseq;
        mnts = v[i].e.ts < mnts ? v[i].e.ts : mnts;
        mxts = v[i].e.ts > mxts ? v[i].e.ts : mxts;
    }
    struct stat sb;
    CHECK(stat(path, &sb) == 0);
    CHECK(meta.file_no == 7 && m->file_no == 7);
    CHECK(meta.file_size == (uint64_t) sb.st_size && m->file_size == meta.file_size);
    CHECK(m->entry_count == n && meta.entry_count == n);
    CHECK(m->point_tombstones == dels && m->range_tombstones == 0);
    CHECK(m->min_seq == mnseq && m->max_seq == mxseq);
    CHECK(m->min_ts == mnts && m->max_ts == mxts);
    CHECK(m->max_expire_at == INT64_MAX);
    CHECK(m->raw_bytes == raw && meta.raw_bytes == raw);
    CHECK(m->smallest_len == v[0].e.key_len &&
          memcmp(m->smallest, v[0].e.key, m->smallest_len) == 0);
    /* Largest is the 'c' or the 8 KiB 'b...' key, whichever sorts last. */
    const lsm_entry *last = &v[n - 1].e;
    CHECK(m->largest_truncated == (last->key_len > TABLE_BOUND_MAX));
    CHECK(memcmp(m->largest, last->key, m->largest_len) == 0);
    CHECK(memcmp(m, &meta, sizeof meta) == 0);

    /* Bloom: every key present; the 16 MiB value made its own block. */
    block_buf fb = {0};
    CHECK_OK(sst_read_block(r.t, sst_table_filter_handle(r.t), true, &fb));
    size_t misses = 0;
    for (size_t i = 0; i < n; i++)
        misses += !bloom_may_contain(fb.data, fb.len, bloom_hash(v[i].e.key, v[i].e.key_len));
    CHECK(misses == 0);
    block_buf_free(&fb);

    uint32_t pos;
    CHECK(table_seek(&r, (const uint8_t *) "c", 1, 3, &pos));
    CHECK(r.data.count == 1 && r.dbuf.len > LSM_MAX_VALUE_SIZE);
    reader_close(&r);
    free_entries(v, n);
}

/* A filter in the flat layout of tables written before blocked filters
 * (SST_FORMAT.md), built here from its description. */
static uint8_t *flat_filter(const uint64_t *h, size_t n, size_t *len)
{
    uint64_t nbits = n * 10 < 64 ? 64 : n * 10;
    *len = (size_t) ((nbits + 7) / 8) + 1;
    nbits = (uint64_t) (*len - 1) * 8;
    uint8_t *f = calloc(*len, 1);
    f[*len - 1] = 7;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = h[i], d = ((h[i] >> 17) | (h[i] << 47)) | 1u;
        for (int j = 0; j < 7; j++, x += d)
            f[(x % nbits) >> 3] |= (uint8_t) (1u << ((x % nbits) & 7));
    }
    return f;
}

static void test_bloom_flat(const uint64_t *h, size_t n)
{
    size_t len, fn = 0, fp = 0;
    uint8_t *f = flat_filter(h, n, &len);
    for (size_t i = 0; i < n; i++)
        fn += !bloom_may_contain(f, len, h[i]);
    for (size_t i = 0; i < n; i++)
        fp += bloom_may_contain(f, len, bloom_hash(&i, sizeof i));
    CHECK(fn == 0);
    CHECK(fp < n / 50); /* ~0.82% expected */
    free(f);
}

static void test_bloom_rate(void)
{
    size_t n = 100000;
    uint64_t *h = malloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++) {
        char k[32];
        int kl = snprintf(k, sizeof k, "sensor.%05zu", i);
        h[i] = bloom_hash(k, (size_t) kl);
    }
    CHECK(bloom_probes(10) == 7 && bloom_probes(1) == 1 && bloom_probes(32) == 22);
    size_t len = bloom_filter_len(n, 10);
    uint8_t *f = malloc(len);
    bloom_build(h, n, 10, f);
    size_t fn = 0, fp = 0;
    for (size_t i = 0; i < n; i++)
        fn += !bloom_may_contain(f, len, h[i]);
    for (size_t i = 0; i < n; i++) {
        char k[32];
        int kl = snprintf(k, sizeof k, "absent.%05zu", i);
        fp += bloom_may_contain(f, len, bloom_hash(k, (size_t) kl));
    }
    double rate = (double) fp / (double) n;
    /* Theory for a flat filter with 10 bits/key, k = 7: (1 - e^(-7/10))^7
     * ~= 0.82%; confining a key's probes to one 512-bit block costs a
     * little (about 1.1%), hence the bounds. */
    double theory = pow(1 - exp(-7.0 / 10.0), 7);
    printf("bloom 10 bits/key: false-positive rate %.3f%% (theory %.3f%%)\n", rate * 100, theory * 100);
    CHECK(fn == 0);
    CHECK(rate < theory * 1.5 && rate > theory * 0.5);
    test_bloom_flat(h, n);
    CHECK(bloom_may_contain(f, 0, 1) && bloom_may_contain(NULL, 5, 1));
    f[len - 1] = 0;   /* k = 0: malformed, answers true */
    CHECK(bloom_may_contain(f, len, 12345));
    free(f);
    free(h);
}

static void test_range_tombstones(void)
{
    uint64_t seq = 1;
    owned_entry pts[2];
    pts[0] = make_entry((const uint8_t *) "m", 1, 1, 50, ENTRY_PUT, 1800000000, 3);
    pts[1] = make_entry((const uint8_t *) "n", 1, 2, 51, ENTRY_PUT, 1700000000, 3);
    size_t nrt = 50;
    owned_entry *rt = calloc(nrt, sizeof *rt);
    for (size_t i = 0; i < nrt; i++) {
        char s[16], e[16];
        int a = (int) (xorshift64(&rng) % 100), span = 1 + (int) (xorshift64(&rng) % 10);
        snprintf(s, sizeof s, "k%03d", a);
        snprintf(e, sizeof e, "k%03d", a + span);
        rt[i] = make_entry((const uint8_t *) s, 4, 0, ++seq, ENTRY_RANGE_DELETE, 0, 0);
        free(rt[i].value);
        rt[i].value = (uint8_t *) strdup(e);
        rt[i].e.value = rt[i].value;
        rt[i].e.value_len = 4;
    }
    char path[600];
    path_for(path, sizeof path, "rt.sst");
    sst_options o = opts(512, 8);
    table_meta meta;
    CHECK_OK(build(path, &o, pts, 2, rt, nrt, &meta));
    CHECK(meta.range_tombstones == nrt && meta.entry_count == 2);
    CHECK(meta.min_seq == 2 && meta.max_seq == 51);
    CHECK(meta.max_expire_at == INT64_MAX);       /* tombstones never expire */
    CHECK(meta.min_ts == 1 && meta.max_ts == 2);
    /* smallest is the least start ("k0.."), largest "n" (above every end). */
    CHECK(meta.smallest_len == 4 && meta.smallest[0] == 'k');
    CHECK(meta.largest_len == 1 && meta.largest[0] == 'n' && !meta.largest_truncated);

    sst_table *t;
    CHECK_OK(sst_table_open(path, 9, &t));
    if (t == NULL)
        return;
    block_buf bb = {0};
    sst_block blk;
    CHECK_OK(sst_read_block(t, sst_table_tombstone_handle(t), true, &bb));
    CHECK_OK(sst_block_parse(bb.data, bb.len, &blk));
    CHECK(blk.count == nrt);
    qsort(rt, nrt, sizeof *rt, cmp_owned);   /* start asc, seq desc (ts all 0) */
    size_t same = 0;
    for (uint32_t i = 0; i < blk.count; i++) {
        lsm_entry e;
        CHECK_OK(sst_block_entry(&blk, i, &e));
        same += same_entry(&e, &rt[i].e);
    }
    CHECK(same == nrt);
    sst_table_close(t);
    block_buf_free(&bb);

    /* Only tombstones: bounds come from them, largest = greatest end. */
    CHECK_OK(build(path, &o, NULL, 0, rt, nrt, &meta));
    CHECK(meta.entry_count == 0 && meta.min_ts > meta.max_ts);
    CHECK(meta.smallest_len == 4 && memcmp(meta.smallest, rt[0].key, 4) == 0);
    CHECK(meta.largest_len == 4 && meta.largest[0] == 'k');

    /* An ended-before-start tombstone is refused. */
    sst_builder *b;
    CHECK_OK(sst_builder_open(path, 1, &o, &b));
    lsm_entry bad = {.key = (const uint8_t *) "z", .key_len = 1, .type = ENTRY_RANGE_DELETE,
                     .value = (const uint8_t *) "a", .value_len = 1, .seq = 3};
    CHECK_STATUS(sst_builder_add_range_tombstone(b, &bad), LSM_INVALID);
    sst_builder_abandon(b);
    CHECK(access(path, F_OK) != 0);
    for (int i = 0; i < 2; i++) {
        free(pts[i].key);
        free(pts[i].value);
    }
    free_entries(rt, nrt);
}

static void test_meta_expiry_and_truncation(void)
{
    uint8_t k1[100], k2[100];
    memset(k1, 'x', sizeof k1);
    memset(k2, 'y', sizeof k2);
    owned_entry v[2];
    v[0] = make_entry(k1, 100, 10, 5, ENTRY_PUT, 1700000100, 4);
    v[1] = make_entry(k2, 100, 20, 4, ENTRY_PUT, 1700000200, 0);
    char path[600];
    path_for(path, sizeof path, "meta.sst");
    sst_options o = opts(4096, 10);
    table_meta meta;
    CHECK_OK(build(path, &o, v, 2, NULL, 0, &meta));
    CHECK(meta.max_expire_at == 1700000200);
    CHECK(meta.smallest_len == TABLE_BOUND_MAX && meta.smallest[0] == 'x');
    CHECK(meta.largest_len == TABLE_BOUND_MAX && meta.largest_truncated && meta.largest[63] == 'y');
    CHECK(meta.min_seq == 4 && meta.max_seq == 5);
    for (int i = 0; i < 2; i++) {
        free(v[i].key);
        free(v[i].value);
    }

    /* Empty table: valid, with "none" conventions. */
    CHECK_OK(build(path, &o, NULL, 0, NULL, 0, &meta));
    CHECK(meta.entry_count == 0 && meta.min_seq == UINT64_MAX && meta.max_seq == 0);
    CHECK(meta.min_ts == INT64_MAX && meta.max_ts == INT64_MIN && meta.max_expire_at == 0);
    reader r;
    CHECK_OK(reader_open(&r, path));
    CHECK(r.index.count == 0);
    reader_close(&r);
}

static void test_invalid_input(void)
{
    char path[600];
    path_for(path, sizeof path, "inv.sst");
    sst_builder *b;
    sst_options o = opts(10, 10);
    CHECK_STATUS(sst_builder_open(path, 1, &o, &b), LSM_INVALID);
    o = opts(4096, 0);
    CHECK_STATUS(sst_builder_open(path, 1, &o, &b), LSM_INVALID);
    o = opts(4096, 33);
    CHECK_STATUS(sst_builder_open(path, 1, &o, &b), LSM_INVALID);
    o = opts(4096, 10);
    CHECK_OK(sst_builder_open(path, 1, &o, &b));
    lsm_entry e = {.key = (const uint8_t *) "b", .key_len = 1, .type = ENTRY_PUT, .ts = 5, .seq = 10};
    CHECK_OK(sst_builder_add(b, &e));
    CHECK_STATUS(sst_builder_add(b, &e), LSM_INVALID);            /* equal */
    e.seq = 11;                                                    /* newer: sorts first */
    CHECK_STATUS(sst_builder_add(b, &e), LSM_INVALID);
    e.seq = 9;
    CHECK_OK(sst_builder_add(b, &e));
    e.key = (const uint8_t *) "a";
    CHECK_STATUS(sst_builder_add(b, &e), LSM_INVALID);
    e.key = (const uint8_t *) "c";
    e.type = ENTRY_RANGE_DELETE;
    CHECK_STATUS(sst_builder_add(b, &e), LSM_INVALID);
    e.type = ENTRY_PUT;
    e.key_len = 0;
    CHECK_STATUS(sst_builder_add(b, &e), LSM_INVALID);
    e.key_len = LSM_MAX_KEY_SIZE + 1;
    CHECK_STATUS(sst_builder_add(b, &e), LSM_TOO_LARGE);
    CHECK(sst_builder_entries(b) == 2);
    table_meta meta;
    CHECK_OK(sst_builder_finish(b, &meta));
    CHECK(meta.entry_count == 2);
    CHECK(sst_table_open("/nonexistent/dir/x.sst", 1, &(sst_table *){NULL}) == LSM_IO);
}

/* ------------------------------------------------------- corruption */

static void copy_file(const char *from, const char *to, size_t truncate_to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        if (total + n > truncate_to)
            n = truncate_to - total;
        fwrite(buf, 1, n, out);
        total += n;
    }
    fclose(in);
    fclose(out);
}

static void flip_byte(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t c;
    if (pread(fd, &c, 1, (off_t) off) == 1) {
        c ^= 0x5a;
        if (pwrite(fd, &c, 1, (off_t) off) != 1)
            perror("pwrite");
    }
    close(fd);
}

/* Reads and walks the whole table; the first failure's status. */
static lsm_status read_everything(const char *path, bool verify)
{
    sst_table *t;
    lsm_status st = sst_table_open(path, 1, &t);
    if (st != LSM_OK)
        return st;
    block_buf ib = {0}, db = {0};
    sst_block index, blk;
    lsm_entry e;
    st = sst_read_block(t, sst_table_index_handle(t), verify, &ib);
    if (st == LSM_OK)
        st = sst_block_parse(ib.data, ib.len, &index);
    for (uint32_t i = 0; st == LSM_OK && i < index.count; i++) {
        sst_index_entry ie;
        st = sst_index_entry_at(&index, i, &ie);
        if (st == LSM_OK)
            st = sst_read_block(t, ie.handle, verify, &db);
        if (st == LSM_OK)
            st = sst_block_parse(db.data, db.len, &blk);
        for (uint32_t j = 0; st == LSM_OK && j < blk.count; j++)
            st = sst_block_entry(&blk, j, &e);
    }
    sst_handle hs[2] = {sst_table_filter_handle(t), sst_table_tombstone_handle(t)};
    for (int i = 0; st == LSM_OK && i < 2; i++) {
        st = sst_read_block(t, hs[i], verify, &db);
        if (st == LSM_OK && i == 1)
            st = sst_block_parse(db.data, db.len, &blk);
    }
    block_buf_free(&ib);
    block_buf_free(&db);
    sst_table_close(t);
    return st;
}

static bool errmsg_names(const char *path)
{
    return strstr(lsm_errmsg(), path) != NULL;
}

static void test_corruption(void)
{
    uint64_t seq = 1;
    size_t n = 3000;
    owned_entry *v = random_entries(n, &seq);
    qsort(v, n, sizeof *v, cmp_owned);
    owned_entry rt[1];
    rt[0] = make_entry((const uint8_t *) "a", 1, 0, ++seq, ENTRY_RANGE_DELETE, 0, 0);
    free(rt[0].value);
    rt[0].value = (uint8_t *) strdup("b");
    rt[0].e.value = rt[0].value;
    rt[0].e.value_len = 1;
    char good[600], bad[600];
    path_for(good, sizeof good, "good.sst");
    path_for(bad, sizeof bad, "bad.sst");
    sst_options o = opts(1024, 10);
    table_meta meta;
    CHECK_OK(build(good, &o, v, n, rt, 1, &meta));
    CHECK_OK(read_everything(good, true));

    sst_table *t;
    CHECK_OK(sst_table_open(good, 1, &t));
    sst_handle idx = sst_table_index_handle(t), flt = sst_table_filter_handle(t),
               tomb = sst_table_tombstone_handle(t);
    sst_table_close(t);
    /* Offsets to damage: first data block, filter, tombstones, index, footer
     * (every field region), each block's payload start and trailer. */
    uint64_t spots[] = {
        0, 10, flt.offset - 1, flt.offset, flt.offset + flt.size - 1, flt.offset + flt.size - 9,
        tomb.offset, tomb.offset + tomb.size - 13, idx.offset, idx.offset + idx.size / 2,
        idx.offset + idx.size - 1,
        meta.file_size - SST_FOOTER_SIZE, meta.file_size - SST_FOOTER_SIZE + 5,
        meta.file_size - SST_FOOTER_SIZE + 50, meta.file_size - SST_FOOTER_SIZE + 115,
        meta.file_size - SST_FOOTER_SIZE + 200, meta.file_size - 12, meta.file_size - 1,
    };
    size_t nspots = sizeof spots / sizeof spots[0];
    for (size_t i = 0; i < nspots; i++) {
        copy_file(good, bad, SIZE_MAX);
        flip_byte(bad, spots[i]);
        lsm_status st = read_everything(bad, true);
        CHECK(st == LSM_CORRUPT);
        CHECK(errmsg_names(bad));
        if (st != LSM_CORRUPT)
            fprintf(stderr, "  flip at %llu -> %s\n", (unsigned long long) spots[i], lsm_status_name(st));
        read_everything(bad, false);   /* unverified: any status, no crash */
    }
    /* A flip anywhere at all: never LSM_OK with checksums on. */
    size_t escaped = 0;
    for (int i = 0; i < 300; i++) {
        copy_file(good, bad, SIZE_MAX);
        flip_byte(bad, xorshift64(&rng) % meta.file_size);
        escaped += read_everything(bad, true) != LSM_CORRUPT;
        read_everything(bad, false);
    }
    CHECK(escaped == 0);
    /* Truncations. */
    uint64_t cuts[] = {0, 1, SST_FOOTER_SIZE - 1, SST_FOOTER_SIZE, meta.file_size / 2,
                       meta.file_size - 1, meta.file_size - SST_FOOTER_SIZE};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        copy_file(good, bad, cuts[i]);
        CHECK_STATUS(sst_table_open(bad, 1, &t), LSM_CORRUPT);
        CHECK(errmsg_names(bad));
    }
    /* A well-formed footer of another version is refused. */
    sst_footer f = {.version = SST_FORMAT_VERSION_UNIFORM_SEQ + 1};
    uint8_t raw[SST_FOOTER_SIZE];
    sst_footer_encode(&f, raw);
    sst_footer g;
    CHECK_STATUS(sst_footer_decode(raw, "v2.sst", &g), LSM_CORRUPT);
    CHECK(strstr(lsm_errmsg(), "v2.sst") && strstr(lsm_errmsg(), "version"));
    f.version = SST_FORMAT_VERSION;
    sst_footer_encode(&f, raw);
    CHECK_OK(sst_footer_decode(raw, "v1.sst", &g));
    /* The uniform-seq flag: only in version 3, only with one seq. */
    f.uniform_seq = true;
    f.meta.min_seq = f.meta.max_seq = 9;
    sst_footer_encode(&f, raw);
    CHECK_STATUS(sst_footer_decode(raw, "u2.sst", &g), LSM_CORRUPT);
    f.version = SST_FORMAT_VERSION_UNIFORM_SEQ;
    sst_footer_encode(&f, raw);
    CHECK_OK(sst_footer_decode(raw, "u3.sst", &g));
    CHECK(g.uniform_seq && g.meta.max_seq == 9);
    f.meta.min_seq = 8;
    sst_footer_encode(&f, raw);
    CHECK_STATUS(sst_footer_decode(raw, "u3.sst", &g), LSM_CORRUPT);
    /* Malformed blocks handed to the parser directly. */
    sst_block blk;
    uint8_t junk[12] = {0, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0};   /* offset 9 >= 4 */
    CHECK_STATUS(sst_block_parse(junk, sizeof junk, &blk), LSM_CORRUPT);
    CHECK_STATUS(sst_block_parse(junk, 3, &blk), LSM_CORRUPT);
    uint8_t one[9] = {0x05, 'a', 0, 0, 0, 0, 0, 1, 0};   /* key_len 5 > bytes */
    uint8_t blkbytes[17];
    memcpy(blkbytes, one, 9);
    memset(blkbytes + 9, 0, 4);
    blkbytes[13] = 1, blkbytes[14] = blkbytes[15] = blkbytes[16] = 0;
    CHECK_OK(sst_block_parse(blkbytes, sizeof blkbytes, &blk));
    lsm_entry e;
    CHECK_STATUS(sst_block_entry(&blk, 0, &e), LSM_CORRUPT);
    CHECK_STATUS(sst_block_entry(&blk, 1, &e), LSM_CORRUPT);
    CHECK(sst_block_seek(&blk, (const uint8_t *) "a", 1, 0) <= 1);
    free_entries(v, n);
    free(rt[0].key);
    free(rt[0].value);
}

/* ---------------------------------------------------------- fence index */

/* Index-block keys of one shape, sorted by (key, ts); each key is
 * prefix | body where body depends on the shape. */
enum fence_shape { FENCE_IDS, FENCE_LONG_RUN, FENCE_MIXED_LEN };

static size_t fence_key(enum fence_shape shape, uint32_t i, uint8_t *k)
{
    memcpy(k, "doc/", 4);
    switch (shape) {
    case FENCE_IDS:         /* 8-byte big-endian ids with gaps */
        for (int b = 0; b < 8; b++)
            k[4 + b] = (uint8_t) (((uint64_t) i * 1000 + 7) >> (56 - 8 * b));
        return 12;
    case FENCE_LONG_RUN:    /* the 8 bytes after the prefix are equal for runs of 50 */
        memset(k + 4, 'A' + (int) (i / 50), 8);
        snprintf((char *) k + 12, 16, "%06u", i);
        return 18;
    case FENCE_MIXED_LEN:   /* lengths 4..16, zero bytes included, prefixes of each other */
    default: {
        size_t len = 4 + (i % 4) * 3;
        memset(k + 4, 0, 12);
        for (size_t b = 4; b < len && b < 8; b++)
            k[b] = (uint8_t) (i / 4 >> (8 * (7 - b)));
        return len;
    }
    }
}

static void check_fence_target(const fence_index *fi, const sst_block *index, const uint8_t *k,
                               size_t kl, int64_t ts)
{
    uint32_t want = sst_index_seek(index, k, kl, ts);
    uint32_t got = fence_index_seek(fi, index, k, kl, ts);
    CHECK(got == want);
    if (got != want)
        fprintf(stderr, "fence seek: got %u want %u (klen %zu ts %lld)\n", got, want, kl,
                (long long) ts);
    sst_handle h;
    if (want < index->count && fence_index_handle(fi, want, &h)) {
        sst_index_entry ie;
        CHECK_OK(sst_index_entry_at(index, want, &ie));
        CHECK(h.offset == ie.handle.offset && h.size == ie.handle.size);
    }
}

static void test_fence_shape(enum fence_shape shape, uint32_t nkeys)
{
    sst_block_writer w = {0};
    uint8_t keys[400][24];
    size_t lens[400];
    int64_t tss[400];
    uint32_t n = 0;
    for (uint32_t i = 0; i < nkeys && n < 400; i++) {
        uint8_t k[24];
        size_t kl = fence_key(shape, i, k);
        if (n > 0 && key_compare(k, kl, keys[n - 1], lens[n - 1]) <= 0)
            continue;   /* keep keys strictly ascending */
        for (int64_t v = 0; v < 1 + (int64_t) (i % 3) && n < 400; v++, n++) {
            memcpy(keys[n], k, kl);
            lens[n] = kl;
            tss[n] = v * 10 - 5;
            uint8_t val[SST_INDEX_VALUE_SIZE];
            put_i64(val, tss[n]);
            put_i64(val + 8, tss[n]);
            put_u64(val + 16, (uint64_t) n * 4096 + 17);
            put_u32(val + 24, 4000 + n);
            lsm_entry e = {.key = keys[n], .key_len = (uint32_t) kl, .type = ENTRY_PUT,
                           .ts = tss[n], .value = val, .value_len = sizeof val};
            CHECK_OK(sst_block_writer_add(&w, &e));
        }
    }
    CHECK_OK(sst_block_writer_finish(&w));
    sst_block index;
    CHECK_OK(sst_block_parse(w.data.data, w.data.len, &index));
    fence_index fi;
    CHECK_OK(fence_index_build(&fi, &index));
    CHECK(fi.key8 != NULL && fi.count == n);
    for (uint32_t i = 0; i < n; i++)
        for (int64_t d = -1; d <= 1; d++) {
            check_fence_target(&fi, &index, keys[i], lens[i], tss[i] + d);
            check_fence_target(&fi, &index, keys[i], lens[i] - 1, tss[i]);
            check_fence_target(&fi, &index, keys[i], lens[i], INT64_MIN);
        }
    for (int t = 0; t < 3000; t++) {   /* random keys, some off the prefix */
        uint8_t k[24];
        size_t kl = (size_t) (xorshift64(&rng) % 20);
        for (size_t b = 0; b < kl; b++)
            k[b] = (uint8_t) xorshift64(&rng);
        if (t % 4 != 0 && kl >= 4)
            memcpy(k, "doc/", 4);
        if (t % 8 == 1 && kl > 5)
            memset(k + 4, 'A' + (int) (xorshift64(&rng) % 4), kl - 5);
        check_fence_target(&fi, &index, k, kl, (int64_t) (xorshift64(&rng) % 30) - 15);
    }
    sst_handle h;
    CHECK(!fence_index_handle(&fi, n, &h));
    fence_index_free(&fi);
    CHECK(!fence_index_handle(&fi, 0, &h));
    sst_block_writer_free(&w);
}

/* fence_index_seek gives sst_index_seek's answer, and its handles are the
 * index entries', for ids, long runs of equal key8 and mixed lengths. */
static void test_fence_index(void)
{
    test_fence_shape(FENCE_IDS, 300);
    test_fence_shape(FENCE_LONG_RUN, 300);
    test_fence_shape(FENCE_MIXED_LEN, 300);
}

int main(void)
{
    test_tempdir(dir, sizeof dir, "sst");
    test_invalid_input();
    test_bloom_rate();
    test_round_trip();
    test_range_tombstones();
    test_meta_expiry_and_truncation();
    test_corruption();
    test_fence_index();
    test_rmdir(dir);
    return test_report("test_sst");
}
