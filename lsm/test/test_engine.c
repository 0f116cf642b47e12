/*
 * test_engine.c — the engine's public API end to end: writes, gets, scans
 * of every shape, deletes, range deletes, TTL, snapshots, flush,
 * compaction, GC, close/reopen, limits and errors.
 */
#include <inttypes.h>

#include "testutil.h"

static int64_t fake_now = 1000000;
static int64_t test_clock(void *arg) { (void) arg; return fake_now; }

static lsm_db *open_db(const char *dir, lsm_config *cfg_out)
{
    lsm_config cfg;
    test_small_config(&cfg, dir);
    cfg.block_size = 512;
    if (cfg_out)
        *cfg_out = cfg;
    lsm_open_options o = {.clock = test_clock};
    lsm_db *db = NULL;
    CHECK_OK(lsm_open(&cfg, NULL, 0, &o, &db));
    return db;
}

static void put(lsm_db *db, const char *k, int64_t ts, const char *v)
{
    lsm_batch *b = lsm_batch_new();
    CHECK_OK(lsm_batch_put(b, k, strlen(k), ts, v, strlen(v)));
    CHECK_OK(lsm_write(db, b));
    lsm_batch_free(b);
}

static int get_is(lsm_db *db, const char *k, int64_t ts, const char *want)
{
    lsm_value v = {0};
    lsm_status st = lsm_get(db, NULL, k, strlen(k), ts, &v);
    int ok = want ? (st == LSM_OK && v.len == strlen(want) && memcmp(v.data, want, v.len) == 0)
                  : st == LSM_NOT_FOUND;
    if (!ok)
        fprintf(stderr, "get(%s,%" PRId64 ") -> %s len %zu, want %s\n", k, ts, lsm_status_name(st),
                v.len, want ? want : "(not found)");
    lsm_value_free(&v);
    return ok;
}

static size_t scan_count(lsm_db *db, const lsm_scan_spec *s)
{
    lsm_iter *it;
    size_t n = 0;
    if (lsm_iter_open(db, NULL, s, &it) != LSM_OK)
        return (size_t) -1;
    lsm_record r;
    while (lsm_iter_next(it, &r) == LSM_OK)
        n++;
    lsm_iter_close(it);
    return n;
}

static void test_basic(const char *dir)
{
    lsm_db *db = open_db(dir, NULL);
    put(db, "a", 1, "v1");
    put(db, "a", 2, "v2");
    put(db, "b", 1, "w1");
    put(db, "a", 1, "v1b");
    CHECK(get_is(db, "a", 1, "v1b"));
    CHECK(get_is(db, "a", 2, "v2"));
    CHECK(get_is(db, "a", 3, NULL));
    /* seqs: a rewrite of (a, 1) came after the snapshot of its first read */
    lsm_snapshot *before;
    lsm_value sv = {0};
    CHECK_OK(lsm_snapshot_acquire(db, &before));
    CHECK_OK(lsm_get(db, NULL, "a", 1, 1, &sv));
    CHECK(sv.seq > 0 && sv.seq <= lsm_snapshot_seq(before));
    put(db, "a", 1, "v1b");
    lsm_value now = {0};
    CHECK_OK(lsm_get(db, NULL, "a", 1, 1, &now));
    CHECK(now.seq > lsm_snapshot_seq(before));
    lsm_snapshot_release(db, before);
    lsm_value_free(&sv);
    lsm_value_free(&now);
    lsm_value v = {0};
    CHECK_OK(lsm_get_latest(db, NULL, "a", 1, &v));
    CHECK(v.ts == 2 && v.len == 2);
    lsm_value_free(&v);

    lsm_scan_spec s;
    lsm_scan_spec_init(&s);
    CHECK(scan_count(db, &s) == 3);
    s.prefix = "a";
    s.prefix_len = 1;
    CHECK(scan_count(db, &s) == 2);
    s.reverse = true;
    CHECK(scan_count(db, &s) == 2);

    CHECK_OK(lsm_flush(db));
    CHECK(get_is(db, "a", 1, "v1b"));
    CHECK(scan_count(db, &s) == 2);
    CHECK_OK(lsm_close(db));

    db = open_db(dir, NULL);
    CHECK(get_is(db, "a", 1, "v1b"));
    CHECK(get_is(db, "b", 1, "w1"));
    lsm_batch *b = lsm_batch_new();
    CHECK_OK(lsm_batch_delete(b, "a", 1, 1));
    CHECK_OK(lsm_write(db, b));
    CHECK(get_is(db, "a", 1, NULL));
    lsm_batch_clear(b);
    CHECK_OK(lsm_batch_delete_range(b, "a", 1, "b", 1));
    CHECK_OK(lsm_write(db, b));
    CHECK(get_is(db, "a", 2, NULL));
    CHECK(get_is(db, "b", 1, "w1"));
    lsm_batch_free(b);
    CHECK_OK(lsm_compact_full(db));
    CHECK(get_is(db, "a", 2, NULL));
    CHECK(get_is(db, "b", 1, "w1"));
    CHECK_OK(lsm_close(db));
}

static void test_ttl(const char *dir)
{
    lsm_db *db = open_db(dir, NULL);
    lsm_batch *b = lsm_batch_new();
    lsm_batch_set_ttl(b, 10);
    CHECK_OK(lsm_batch_put(b, "t", 1, 1, "x", 1));
    CHECK_OK(lsm_write(db, b));
    CHECK(get_is(db, "t", 1, "x"));
    fake_now += 11;
    CHECK(get_is(db, "t", 1, NULL));
    CHECK_OK(lsm_flush(db));
    uint64_t purged = 0;
    CHECK_OK(lsm_gc(db, &purged));
    CHECK(get_is(db, "t", 1, NULL));
    lsm_batch_free(b);
    CHECK_OK(lsm_close(db));
}

static void test_snapshot(const char *dir)
{
    lsm_db *db = open_db(dir, NULL);
    put(db, "s", 1, "old");
    lsm_snapshot *snap;
    CHECK_OK(lsm_snapshot_acquire(db, &snap));
    put(db, "s", 1, "new");
    CHECK_OK(lsm_flush(db));
    CHECK_OK(lsm_compact_full(db));
    lsm_read_options ro;
    lsm_read_options_init(&ro);
    ro.snapshot = snap;
    lsm_value v = {0};
    CHECK_OK(lsm_get(db, &ro, "s", 1, 1, &v));
    CHECK(v.len == 3 && memcmp(v.data, "old", 3) == 0);
    CHECK(get_is(db, "s", 1, "new"));
    lsm_value_free(&v);
    lsm_snapshot_release(db, snap);
    CHECK_OK(lsm_close(db));
}

static void test_many(const char *dir)
{
    lsm_db *db = open_db(dir, NULL);
    char k[32], val[64];
    lsm_batch *b = lsm_batch_new();
    for (int i = 0; i < 20000; i++) {
        snprintf(k, sizeof k, "key%05d", i % 2000);
        snprintf(val, sizeof val, "value-%d", i);
        CHECK_OK(lsm_batch_put(b, k, strlen(k), i / 2000, val, strlen(val)));
        if (lsm_batch_count(b) == 100) {
            CHECK_OK(lsm_write(db, b));
            lsm_batch_clear(b);
        }
    }
    lsm_batch_free(b);
    lsm_scan_spec s;
    lsm_scan_spec_init(&s);
    CHECK(scan_count(db, &s) == 20000);
    CHECK_OK(lsm_compact(db));
    CHECK(scan_count(db, &s) == 20000);
    s.ts_min = 3;
    s.ts_max = 4;
    CHECK(scan_count(db, &s) == 4000);
    CHECK(get_is(db, "key01999", 9, "value-19999"));
    CHECK_OK(lsm_close(db));
    db = open_db(dir, NULL);
    lsm_scan_spec_init(&s);
    CHECK(scan_count(db, &s) == 20000);
    CHECK(get_is(db, "key00000", 0, "value-0"));
    CHECK_OK(lsm_close(db));
}

/* The documented limits: 8 KiB keys and 16 MiB values work end to end;
 * anything larger, an empty key, or a record that cannot fit in one
 * memtable is refused with its own status and a message. */
static void test_limits(const char *dir)
{
    lsm_config cfg;
    lsm_config_defaults(&cfg);
    snprintf(cfg.dir, sizeof cfg.dir, "%s", dir);
    cfg.memtable_size = 40u << 20;
    cfg.block_cache_size = 4 << 20;
    cfg.index_cache_size = 2 << 20;
    cfg.max_tables = 64;
    cfg.max_snapshots = 16;
    lsm_db *db = NULL;
    CHECK_OK(lsm_open(&cfg, NULL, 0, NULL, &db));
    size_t vlen = LSM_MAX_VALUE_SIZE;
    uint8_t *big = malloc(vlen + 1);
    uint8_t key[LSM_MAX_KEY_SIZE + 1];
    for (size_t i = 0; i < vlen + 1; i++)
        big[i] = (uint8_t) (i * 7 + 3);
    memset(key, 'k', sizeof key);
    lsm_batch *b = lsm_batch_new();
    CHECK_OK(lsm_batch_put(b, key, LSM_MAX_KEY_SIZE, 42, big, vlen));
    CHECK_OK(lsm_write(db, b));
    lsm_value v = {0};
    CHECK_OK(lsm_get(db, NULL, key, LSM_MAX_KEY_SIZE, 42, &v));
    CHECK(v.len == vlen && memcmp(v.data, big, vlen) == 0);
    CHECK_OK(lsm_flush(db));
    CHECK_OK(lsm_get(db, NULL, key, LSM_MAX_KEY_SIZE, 42, &v));
    CHECK(v.len == vlen && memcmp(v.data, big, vlen) == 0);
    lsm_value_free(&v);

    lsm_batch_clear(b);
    CHECK_STATUS(lsm_batch_put(b, key, LSM_MAX_KEY_SIZE + 1, 1, "x", 1), LSM_TOO_LARGE);
    CHECK(strstr(lsm_errmsg(), "key") != NULL);
    CHECK_STATUS(lsm_batch_put(b, key, 10, 1, big, vlen + 1), LSM_TOO_LARGE);
    CHECK(strstr(lsm_errmsg(), "value") != NULL);
    CHECK_STATUS(lsm_batch_put(b, "", 0, 1, "x", 1), LSM_INVALID);
    CHECK_STATUS(lsm_get(db, NULL, key, LSM_MAX_KEY_SIZE + 1, 1, &v), LSM_TOO_LARGE);
    /* three maximal values are more than one 40 MiB memtable holds: the
     * batch is written as a table of its own */
    lsm_batch_clear(b);
    for (int i = 0; i < 3; i++)
        CHECK_OK(lsm_batch_put(b, "m", 1, i, big, vlen));
    CHECK_OK(lsm_write(db, b));
    for (int i = 0; i < 3; i++) {
        CHECK_OK(lsm_get(db, NULL, "m", 1, i, &v));
        CHECK(v.len == vlen && memcmp(v.data, big, vlen) == 0);
    }
    lsm_value_free(&v);
    lsm_batch_free(b);
    free(big);
    CHECK_OK(lsm_close(db));
}

/* A lost MANIFEST must not be taken for a fresh directory (whose "orphan"
 * tables recovery would delete): open refuses, naming the MANIFEST. */
static void test_missing_manifest(const char *dir)
{
    lsm_db *db = open_db(dir, NULL);
    put(db, "x", 1, "kept");
    CHECK_OK(lsm_close(db));
    char path[400];
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    char saved[420];
    snprintf(saved, sizeof saved, "%s.saved", path);
    CHECK(rename(path, saved) == 0);
    lsm_config cfg;
    test_small_config(&cfg, dir);
    CHECK_STATUS(lsm_open(&cfg, NULL, 0, NULL, &db), LSM_CORRUPT);
    CHECK(strstr(lsm_errmsg(), "MANIFEST") != NULL);
    CHECK(rename(saved, path) == 0);
    db = open_db(dir, NULL);
    CHECK(get_is(db, "x", 1, "kept"));
    CHECK_OK(lsm_close(db));
}

/* A single-key scan skips tables whose bloom filter rules the key out, but
 * a range tombstone in such a table still hides the key. */
static lsm_iter_stats scan_one(lsm_db *db, const char *k, size_t *n)
{
    lsm_scan_spec s;
    lsm_scan_spec_init(&s);
    s.key_lo = s.key_hi = k;
    s.key_lo_len = s.key_hi_len = strlen(k);
    s.key_hi_inclusive = true;
    lsm_iter *it;
    lsm_iter_stats st = {0};
    *n = 0;
    CHECK_OK(lsm_iter_open(db, NULL, &s, &it));
    lsm_record r;
    while (lsm_iter_next(it, &r) == LSM_OK)
        (*n)++;
    lsm_iter_get_stats(it, &st);
    lsm_iter_close(it);
    return st;
}

static void test_bloom_skip(const char *dir)
{
    lsm_db *db = open_db(dir, NULL);
    const char *mid[] = {"k1", "k2", "k3"};
    for (int t = 0; t < 3; t++) { /* three tables, each spanning a..z */
        put(db, "a", t, "x");
        put(db, "z", t, "x");
        put(db, mid[t], 1, "v");
        CHECK_OK(lsm_flush(db));
    }
    size_t n;
    lsm_iter_stats st = scan_one(db, "k2", &n);
    CHECK(n == 1 && st.tables_skipped_bloom == 2);
    lsm_batch *b = lsm_batch_new();
    CHECK_OK(lsm_batch_delete_range(b, "k2", 2, "k3", 2));
    CHECK_OK(lsm_batch_put(b, "k9", 2, 1, "v", 1));
    CHECK_OK(lsm_write(db, b));
    lsm_batch_free(b);
    CHECK_OK(lsm_flush(db)); /* the tombstone's table does not hold "k2" */
    st = scan_one(db, "k2", &n);
    CHECK(n == 0 && st.tables_skipped_bloom >= 2);
    st = scan_one(db, "k3", &n);
    CHECK(n == 1);
    CHECK_OK(lsm_close(db));
}

/* lsm_get_many answers every key as lsm_get does: across memtables and
 * tables, deletes, range deletes, expiry, at a snapshot, with bad keys. */
static void test_get_many(const char *dir)
{
    lsm_db *db = open_db(dir, NULL);
    enum { N = 3000 };
    char k[32], val[64];
    lsm_batch *b = lsm_batch_new();
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "gm%05d", i);
        snprintf(val, sizeof val, "v%d", i);
        if (i % 11 == 0)
            CHECK_OK(lsm_batch_put_expiring(b, k, strlen(k), 1, fake_now - 1, val, strlen(val)));
        else
            CHECK_OK(lsm_batch_put(b, k, strlen(k), 1, val, strlen(val)));
        if (lsm_batch_count(b) == 100) {
            CHECK_OK(lsm_write(db, b));
            lsm_batch_clear(b);
            if (i % 700 == 99)
                CHECK_OK(lsm_flush(db)); /* several tables, and the memtable */
        }
    }
    CHECK_OK(lsm_batch_delete(b, "gm00007", 7, 1));
    CHECK_OK(lsm_batch_delete_range(b, "gm00100", 7, "gm00200", 7));
    CHECK_OK(lsm_write(db, b));
    lsm_snapshot *snap;
    CHECK_OK(lsm_snapshot_acquire(db, &snap));
    lsm_batch_clear(b);
    CHECK_OK(lsm_batch_put(b, "gm00008", 7, 1, "after", 5));
    CHECK_OK(lsm_write(db, b));
    lsm_batch_free(b);

    static char names[N + 2][32];
    lsm_key_ts keys[N + 2];
    size_t n = 0;
    for (int i = 0; i < N + 1; i += 1 + i % 3) { /* ascending, with gaps, one past the end */
        snprintf(names[n], sizeof names[n], "gm%05d", (i * 7) % (N + 1));
        keys[n] = (lsm_key_ts) {names[n], strlen(names[n]), i % 50 == 0 ? 2 : 1};
        n++;
    }
    keys[n++] = (lsm_key_ts) {"", 0, 1}; /* invalid */
    static lsm_value out[N + 2];
    lsm_status found[N + 2];
    lsm_read_options ro;
    lsm_read_options_init(&ro);
    for (int pass = 0; pass < 2; pass++) {
        ro.snapshot = pass ? snap : NULL;
        CHECK(lsm_get_many(db, &ro, keys, n, out, found) == LSM_INVALID);
        int hits = 0;
        for (size_t i = 0; i < n; i++) {
            lsm_value one = {0};
            lsm_status st = lsm_get(db, &ro, keys[i].key, keys[i].key_len, keys[i].ts, &one);
            CHECK(found[i] == st);
            if (st == LSM_OK) {
                hits++;
                CHECK(out[i].len == one.len && memcmp(out[i].data, one.data, one.len) == 0);
                CHECK(out[i].seq == one.seq && out[i].ts == one.ts);
            }
            lsm_value_free(&one);
        }
        CHECK(hits > (int) n / 2);
    }
    CHECK_OK(lsm_get_many(db, NULL, keys, 0, out, found));
    for (size_t i = 0; i < n; i++)
        lsm_value_free(&out[i]);
    lsm_snapshot_release(db, snap);
    CHECK_OK(lsm_close(db));
}

int main(void)
{
    char dir[256];
    test_tempdir(dir, sizeof dir, "engine");
    char sub[300];
    snprintf(sub, sizeof sub, "%s/basic", dir);
    test_basic(sub);
    snprintf(sub, sizeof sub, "%s/ttl", dir);
    test_ttl(sub);
    snprintf(sub, sizeof sub, "%s/snap", dir);
    test_snapshot(sub);
    snprintf(sub, sizeof sub, "%s/many", dir);
    test_many(sub);
    snprintf(sub, sizeof sub, "%s/limits", dir);
    test_limits(sub);
    snprintf(sub, sizeof sub, "%s/manifest", dir);
    test_missing_manifest(sub);
    snprintf(sub, sizeof sub, "%s/bloom", dir);
    test_bloom_skip(sub);
    snprintf(sub, sizeof sub, "%s/get_many", dir);
    test_get_many(sub);
    test_rmdir(dir);
    return test_report("test_engine");
}
