/*
 * test_compaction.c — which tables compaction merges: the space-amplification
 * run (the oldest table and the tables in front of it, once they outgrow
 * it), the newest run once the table count reaches the threshold, and what
 * keeps a run apart (the setting at 0, disjoint key ranges, other expiry
 * buckets, other tiers).  Each test flushes one table at a time, works out
 * each table's bytes from the stats, and checks the table count the rule
 * predicts, then that every key still reads its newest value.
 */
#include <inttypes.h>

#include "testutil.h"

#define FAR_EXPIRY 4000000000LL  /* Unix seconds in 2096: never reached here */

static int64_t fake_now = 1000000;
static int64_t test_clock(void *arg) { (void) arg; return fake_now; }

static lsm_db *open_db_with(const char *dir, uint32_t threshold, uint32_t size_amp_percent)
{
    lsm_config cfg;
    test_small_config(&cfg, dir);
    cfg.block_size = 512;
    cfg.compaction_threshold = threshold;
    cfg.max_size_amp_percent = size_amp_percent;
    lsm_open_options o = {.clock = test_clock};
    lsm_db *db = NULL;
    CHECK_OK(lsm_open(&cfg, NULL, 0, &o, &db));
    return db;
}

/* Threshold 64: neither tiers nor the table count merge anything here, so
 * only the space-amplification rule is under test. */
static lsm_db *open_db(const char *dir, uint32_t size_amp_percent)
{
    return open_db_with(dir, 64, size_amp_percent);
}

static lsm_stats stats_of(lsm_db *db)
{
    lsm_stats s;
    CHECK_OK(lsm_get_stats(db, &s));
    return s;
}

/* Runs every due compaction step; returns the table count after them. */
static uint64_t tables_after_compact(lsm_db *db)
{
    CHECK_OK(lsm_compact(db));
    return stats_of(db).table_count;
}

/* Writes keys [first, first + n) with values tagged by round, as one new
 * table (expire_at 0 = never); returns that table's bytes. */
static uint64_t flush_table(lsm_db *db, int first, int n, int round, int64_t expire_at)
{
    uint64_t before = stats_of(db).table_bytes;
    lsm_batch *b = lsm_batch_new();
    char k[32], v[96];
    for (int i = first; i < first + n; i++) {
        snprintf(k, sizeof k, "key%06d", i);
        snprintf(v, sizeof v, "round %d of key %d, padded to a few dozen bytes", round, i);
        CHECK_OK(lsm_batch_put_expiring(b, k, strlen(k), 0, expire_at, v, strlen(v)));
    }
    CHECK_OK(lsm_write(db, b));
    lsm_batch_free(b);
    CHECK_OK(lsm_flush(db));
    return stats_of(db).table_bytes - before;
}

static bool reads_round(lsm_db *db, int key, int round)
{
    char k[32], want[96];
    snprintf(k, sizeof k, "key%06d", key);
    snprintf(want, sizeof want, "round %d of key %d, padded to a few dozen bytes", round, key);
    lsm_value v = {0};
    lsm_status st = lsm_get(db, NULL, k, strlen(k), 0, &v);
    bool ok = st == LSM_OK && v.len == strlen(want) && memcmp(v.data, want, v.len) == 0;
    if (!ok)
        fprintf(stderr, "get(%s) -> %s, want round %d\n", k, lsm_status_name(st), round);
    lsm_value_free(&v);
    return ok;
}

/* A small oldest table and overlapping tables in front of it: nothing
 * merges until their bytes pass 200% of the oldest one's, then all merge
 * into one table, and the newest value of every key survives. */
static void test_merges_once_newer_outgrow_oldest(const char *dir)
{
    lsm_db *db = open_db(dir, 200);
    uint64_t oldest = flush_table(db, 0, 400, 0, 0), newer = 0;
    int round = 0;
    bool merged = false;
    while (!merged && round < 8) {
        round++;
        newer += flush_table(db, 0, 200, round, 0);
        uint64_t got = tables_after_compact(db);
        merged = newer * 100 > 200 * oldest;
        uint64_t want = merged ? 1 : (uint64_t) round + 1;
        CHECK(got == want);
        if (got != want)
            fprintf(stderr, "round %d: oldest %" PRIu64 " B, newer %" PRIu64 " B: %" PRIu64
                    " tables, want %" PRIu64 "\n", round, oldest, newer, got, want);
    }
    CHECK(merged); /* within 8 rounds */
    CHECK(round >= 3); /* 200-key tables: several before they pass 2x 400 keys */
    CHECK(stats_of(db).compactions == 1);
    for (int i = 0; i < 400; i++)
        CHECK(reads_round(db, i, i < 200 ? round : 0));
    CHECK_OK(lsm_close(db));
}

/* At 0 the rule is off: tables in front pile up (tiers are off here too). */
static void test_zero_never_merges(const char *dir)
{
    lsm_db *db = open_db(dir, 0);
    flush_table(db, 0, 50, 0, 0);
    for (int round = 1; round <= 4; round++)
        flush_table(db, 0, 400, round, 0);
    CHECK(tables_after_compact(db) == 5);
    CHECK(stats_of(db).compactions == 0);
    CHECK(reads_round(db, 10, 4));
    CHECK(reads_round(db, 399, 4));
    CHECK_OK(lsm_close(db));
}

/* Disjoint key ranges (a sequential load) shadow nothing: no merge, however
 * large the tables in front. */
static void test_disjoint_tables_stay(const char *dir)
{
    lsm_db *db = open_db(dir, 200);
    flush_table(db, 0, 50, 0, 0);
    for (int round = 1; round <= 3; round++)
        flush_table(db, round * 1000, 400, round, 0);
    CHECK(tables_after_compact(db) == 4);
    CHECK(reads_round(db, 0, 0));
    CHECK(reads_round(db, 3399, 3));
    /* one overlapping table makes the run worth merging */
    flush_table(db, 0, 50, 4, 0);
    CHECK(tables_after_compact(db) == 1);
    CHECK(reads_round(db, 49, 4));
    CHECK(reads_round(db, 2000, 2));
    CHECK_OK(lsm_close(db));
}

/* Only the tables in the oldest one's expiry bucket count and merge: a
 * table of another bucket in front ends the run, so GC can still drop
 * whole tables. */
static void test_other_expiry_bucket_ends_the_run(const char *dir)
{
    lsm_db *db = open_db(dir, 200);
    flush_table(db, 0, 50, 0, 0);                 /* oldest: never expires */
    flush_table(db, 0, 400, 1, FAR_EXPIRY);       /* another bucket */
    flush_table(db, 0, 400, 2, FAR_EXPIRY);
    CHECK(tables_after_compact(db) == 3);
    CHECK(reads_round(db, 20, 2));
    flush_table(db, 0, 50, 3, 0); /* the oldest's bucket, but not adjacent to it */
    CHECK(tables_after_compact(db) == 4);
    CHECK(reads_round(db, 20, 3));
    CHECK(reads_round(db, 300, 2));
    CHECK_OK(lsm_close(db));
}

/* Keys [0, n) with incompressible 100-byte values, written as one batch
 * larger than the memtable (so as one table of tier 1: 4 .. 16 MiB). */
static void write_big_table(lsm_db *db, int n)
{
    lsm_batch *b = lsm_batch_new();
    char k[32], v[100];
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "key%06d", i);
        for (size_t j = 0; j < sizeof v; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            v[j] = (char) x;
        }
        CHECK_OK(lsm_batch_put(b, k, strlen(k), 0, v, sizeof v));
    }
    CHECK_OK(lsm_write(db, b));
    lsm_batch_free(b);
    CHECK_OK(lsm_flush(db));
}

/* The table count rule, threshold 3, one big table (tier 1): the first
 * small table in front of it stays (2 tables); the second brings the count
 * to 3 and the newest run, the two small tables (tier 0), merges — not into
 * the big one, another tier.  With threshold 4 the same tables stay apart. */
static void test_count_merges_newest_run(const char *dir)
{
    lsm_db *db = open_db_with(dir, 3, 0);
    write_big_table(db, 60000);
    CHECK(stats_of(db).table_count == 1);
    uint64_t big = stats_of(db).table_bytes;
    CHECK(big >= 4u << 20 && big < 16u << 20);
    flush_table(db, 0, 100, 1, 0);
    CHECK(tables_after_compact(db) == 2);
    flush_table(db, 50, 100, 2, 0);
    CHECK(tables_after_compact(db) == 2);
    CHECK(stats_of(db).compactions == 1);
    flush_table(db, 0, 10, 3, 0);
    CHECK(tables_after_compact(db) == 2);
    CHECK(stats_of(db).compactions == 2);
    CHECK(reads_round(db, 5, 3));
    CHECK(reads_round(db, 10, 1));
    CHECK(reads_round(db, 120, 2));
    lsm_value v = {0};
    CHECK_OK(lsm_get(db, NULL, "key059999", 9, 0, &v));
    CHECK(v.len == 100);
    lsm_value_free(&v);
    CHECK_OK(lsm_close(db));
}

static void test_count_below_threshold_stays(const char *dir)
{
    lsm_db *db = open_db_with(dir, 4, 0);
    write_big_table(db, 60000);
    flush_table(db, 0, 100, 1, 0);
    flush_table(db, 50, 100, 2, 0);
    CHECK(tables_after_compact(db) == 3);
    CHECK(stats_of(db).compactions == 0);
    CHECK_OK(lsm_close(db));
}

/* A newest run of disjoint tables (appends past the big table's keys) stays
 * apart even at the count: reads skip them by their key bounds. */
static void test_count_disjoint_run_stays(const char *dir)
{
    lsm_db *db = open_db_with(dir, 3, 0);
    write_big_table(db, 60000);
    flush_table(db, 100000, 100, 1, 0);
    flush_table(db, 200000, 100, 2, 0);
    CHECK(tables_after_compact(db) == 3);
    CHECK(reads_round(db, 100099, 1));
    CHECK(reads_round(db, 200000, 2));
    CHECK_OK(lsm_close(db));
}

/* The merged table survives a reopen (it went through the manifest). */
static void test_merge_survives_reopen(const char *dir)
{
    lsm_db *db = open_db(dir, 100);
    flush_table(db, 0, 100, 0, 0);
    flush_table(db, 0, 300, 1, 0);
    CHECK(tables_after_compact(db) == 1);
    CHECK_OK(lsm_close(db));
    db = open_db(dir, 100);
    CHECK(stats_of(db).table_count == 1);
    CHECK(reads_round(db, 0, 1));
    CHECK(reads_round(db, 299, 1));
    CHECK_OK(lsm_close(db));
}

int main(void)
{
    char dir[256];
    void (*tests[])(const char *) = {test_merges_once_newer_outgrow_oldest, test_zero_never_merges,
                                     test_disjoint_tables_stay,
                                     test_other_expiry_bucket_ends_the_run,
                                     test_merge_survives_reopen, test_count_merges_newest_run,
                                     test_count_below_threshold_stays, test_count_disjoint_run_stays};
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        test_tempdir(dir, sizeof dir, "compaction");
        tests[i](dir);
        test_rmdir(dir);
    }
    return test_report("test_compaction");
}
