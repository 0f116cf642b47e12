/* test_ingest.c — batches larger than a memtable, written straight to a table:
 * results, ordering against memtables and older tables, snapshots, abort,
 * and recovery of a prepared batch after a crash. */
#include <inttypes.h>
#include <sys/wait.h>

#include "testutil.h"

#define N_KEYS 20000

static void key_of(int i, char *k) { snprintf(k, 16, "key%06d", i); }

static void value_of(int i, int gen, char *v, size_t *len)
{
    *len = (size_t) snprintf(v, 160, "value-%d-gen-%d-%0100d", i, gen, i);
}

/* All N_KEYS keys at ts 1 in a scrambled order, values of generation gen;
 * every 7th key is put twice (the later op must win). */
static lsm_batch *big_batch(int gen)
{
    lsm_batch *b = lsm_batch_new();
    char k[16], v[160];
    size_t vlen;
    for (int j = 0; j < N_KEYS; j++) {
        int i = (int) (((uint64_t) j * 7919) % N_KEYS);
        key_of(i, k);
        if (i % 7 == 0) {
            value_of(i, gen + 100, v, &vlen); /* overwritten below */
            CHECK_OK(lsm_batch_put(b, k, strlen(k), 1, v, vlen));
        }
        value_of(i, gen, v, &vlen);
        CHECK_OK(lsm_batch_put(b, k, strlen(k), 1, v, vlen));
    }
    return b;
}

static size_t scan_count(lsm_db *db, const lsm_read_options *ro)
{
    lsm_scan_spec s;
    lsm_scan_spec_init(&s);
    lsm_iter *it;
    size_t n = 0;
    if (lsm_iter_open(db, ro, &s, &it) != LSM_OK)
        return (size_t) -1;
    lsm_record r;
    while (lsm_iter_next(it, &r) == LSM_OK)
        n++;
    lsm_iter_close(it);
    return n;
}

static bool all_gen(lsm_db *db, const lsm_read_options *ro, int gen)
{
    for (int i = 0; i < N_KEYS; i++)
        if (test_get_gen(db, ro, i) != gen) {
            fprintf(stderr, "key %d: generation %d, want %d\n", i, test_get_gen(db, ro, i), gen);
            return false;
        }
    return true;
}

static void test_larger_than_memtable(const char *dir)
{
    lsm_db *db = test_open_with_filter(dir, NULL);
    lsm_batch *b = big_batch(1);
    CHECK(lsm_batch_bytes(b) > (1 << 20)); /* more than one memtable */
    CHECK_OK(lsm_write(db, b));
    lsm_batch_free(b);
    lsm_stats stats;
    CHECK_OK(lsm_get_stats(db, &stats));
    CHECK(stats.ingests == 1 && stats.memtable_records == 0);
    CHECK(all_gen(db, NULL, 1));
    CHECK(scan_count(db, NULL) == N_KEYS);
    CHECK_OK(lsm_close(db));
    db = test_open_with_filter(dir, NULL);
    CHECK(all_gen(db, NULL, 1));
    CHECK(scan_count(db, NULL) == N_KEYS);
    CHECK_OK(lsm_compact_full(db));
    CHECK(all_gen(db, NULL, 1));
    CHECK_OK(lsm_close(db));
}

/* Older versions in the memtable and in tables must lose to the batch;
 * keys the batch does not touch keep their values. */
static void test_overlap_and_order(const char *dir)
{
    lsm_db *db = test_open_with_filter(dir, NULL);
    lsm_batch *b = big_batch(1);
    CHECK_OK(lsm_write(db, b)); /* an older table */
    lsm_batch_free(b);
    lsm_batch *small = lsm_batch_new();
    char v[160];
    size_t vlen;
    value_of(5, 2, v, &vlen);
    CHECK_OK(lsm_batch_put(small, "key000005", 9, 1, v, vlen));  /* memtable, older */
    CHECK_OK(lsm_batch_put(small, "key000005x", 10, 1, "keep", 4)); /* in range, untouched */
    CHECK_OK(lsm_write(db, small));
    lsm_batch_free(small);
    b = big_batch(3);
    CHECK_OK(lsm_write(db, b));
    lsm_batch_free(b);
    CHECK(all_gen(db, NULL, 3));
    lsm_value out = {0};
    CHECK_OK(lsm_get(db, NULL, "key000005x", 10, 1, &out));
    CHECK(out.len == 4 && memcmp(out.data, "keep", 4) == 0);
    /* a newer small write beats the ingested table */
    small = lsm_batch_new();
    value_of(9, 4, v, &vlen);
    CHECK_OK(lsm_batch_put(small, "key000009", 9, 1, v, vlen));
    CHECK_OK(lsm_write(db, small));
    lsm_batch_free(small);
    CHECK(test_get_gen(db, NULL, 9) == 4);
    CHECK(scan_count(db, NULL) == N_KEYS + 1);
    CHECK_OK(lsm_close(db));
    db = test_open_with_filter(dir, NULL);
    CHECK(test_get_gen(db, NULL, 9) == 4);
    CHECK(test_get_gen(db, NULL, 8) == 3);
    CHECK_OK(lsm_get(db, NULL, "key000005x", 10, 1, &out));
    CHECK(scan_count(db, NULL) == N_KEYS + 1);
    lsm_value_free(&out);
    CHECK_OK(lsm_close(db));
}

/* Deletes and range deletes inside the batch, against older data. */
static void test_deletes_in_batch(const char *dir)
{
    lsm_db *db = test_open_with_filter(dir, NULL);
    lsm_batch *b = big_batch(1);
    CHECK_OK(lsm_write(db, b));
    lsm_batch_free(b);
    b = big_batch(2);
    CHECK_OK(lsm_batch_delete(b, "key000010", 9, 1));
    CHECK_OK(lsm_batch_delete_range(b, "key000100", 9, "key000200", 9));
    char v[160];
    size_t vlen;
    value_of(150, 5, v, &vlen);
    CHECK_OK(lsm_batch_put(b, "key000150", 9, 1, v, vlen)); /* after the range delete */
    CHECK_OK(lsm_write(db, b));
    lsm_batch_free(b);
    for (int round = 0; round < 2; round++) {
        CHECK(test_get_gen(db, NULL, 10) == -1);
        CHECK(test_get_gen(db, NULL, 100) == -1);
        CHECK(test_get_gen(db, NULL, 199) == -1);
        CHECK(test_get_gen(db, NULL, 150) == 5);
        CHECK(test_get_gen(db, NULL, 200) == 2);
        CHECK(test_get_gen(db, NULL, 99) == 2);
        CHECK(scan_count(db, NULL) == N_KEYS - 1 - 100 + 1);
        CHECK_OK(lsm_close(db));
        db = test_open_with_filter(dir, NULL);
        if (round == 0)
            CHECK_OK(lsm_compact_full(db));
    }
    CHECK_OK(lsm_close(db));
}

/* The ops of big_batch(gen) given in place, keys and values in *store. */
static lsm_write_op *big_ops(int gen, size_t extra, char (**store)[176], size_t *n)
{
    lsm_write_op *ops = calloc(N_KEYS + N_KEYS / 7 + 1 + extra, sizeof *ops);
    char(*buf)[176] = calloc(N_KEYS + N_KEYS / 7 + 1, sizeof *buf);
    size_t k = 0;
    for (int j = 0; j < N_KEYS; j++) {
        int i = (int) (((uint64_t) j * 7919) % N_KEYS);
        for (int pass = i % 7 == 0 ? 0 : 1; pass < 2; pass++, k++) {
            size_t vlen;
            key_of(i, buf[k]);
            value_of(i, pass == 0 ? gen + 100 : gen, buf[k] + 16, &vlen);
            ops[k] = (lsm_write_op) {LSM_OP_PUT, buf[k], strlen(buf[k]), buf[k] + 16, vlen, 1, 0};
        }
    }
    *store = buf;
    *n = k;
    return ops;
}

static lsm_status prepare_commit_ops(lsm_db *db, const lsm_write_op *ops, size_t n)
{
    lsm_batch *scratch = lsm_batch_new();
    lsm_ticket t;
    lsm_status st = lsm_write_prepare_ops(db, ops, n, 0, scratch, &t);
    if (st == LSM_OK)
        st = lsm_write_commit(db, &t);
    lsm_batch_free(scratch);
    return st;
}

/* lsm_write_prepare_ops gives what the same ops in a batch give, on both
 * paths (a table of its own, or the memtable), and checks ops like a batch. */
static void test_ops_in_place(const char *dir)
{
    lsm_db *db = test_open_with_filter(dir, NULL);
    lsm_batch *b = big_batch(1);
    CHECK_OK(lsm_write(db, b));
    lsm_batch_free(b);
    char(*store)[176];
    size_t n;
    lsm_write_op *ops = big_ops(2, 3, &store, &n);
    char v[160];
    size_t vlen;
    value_of(150, 5, v, &vlen);
    ops[n++] = (lsm_write_op) {LSM_OP_DELETE, "key000010", 9, NULL, 0, 1, 0};
    ops[n++] = (lsm_write_op) {LSM_OP_DELETE_RANGE, "key000100", 9, "key000200", 9, 0, 0};
    ops[n++] = (lsm_write_op) {LSM_OP_PUT, "key000150", 9, v, vlen, 1, 0};
    CHECK_OK(prepare_commit_ops(db, ops, n));
    memset(store, 0, (N_KEYS + N_KEYS / 7 + 1) * sizeof *store); /* no longer needed */
    lsm_stats stats;
    CHECK_OK(lsm_get_stats(db, &stats));
    CHECK(stats.ingests == 2);
    CHECK(test_get_gen(db, NULL, 10) == -1 && test_get_gen(db, NULL, 100) == -1);
    CHECK(test_get_gen(db, NULL, 150) == 5 && test_get_gen(db, NULL, 200) == 2);
    CHECK(test_get_gen(db, NULL, 7) == 2); /* put twice: the later op won */
    CHECK(scan_count(db, NULL) == N_KEYS - 1 - 100 + 1);
    free(ops);
    free(store);

    /* a few ops: the memtable path, expiry as given */
    value_of(10, 9, v, &vlen);
    lsm_write_op few[] = {
        {LSM_OP_PUT, "key000010", 9, v, vlen, 1, 0},
        {LSM_OP_PUT, "key000011", 9, v, vlen, 1, 1}, /* expired long ago */
        {LSM_OP_DELETE, "key000012", 9, NULL, 0, 1, 0},
    };
    CHECK_OK(prepare_commit_ops(db, few, 3));
    CHECK_OK(lsm_get_stats(db, &stats));
    CHECK(stats.ingests == 2 && stats.memtable_records == 3);
    CHECK(test_get_gen(db, NULL, 10) == 9 && test_get_gen(db, NULL, 11) == -1 && test_get_gen(db, NULL, 12) == -1);

    /* bad ops are refused like batch ops, and nothing is written */
    lsm_write_op bad[][2] = {
        {{LSM_OP_PUT, "key000013", 9, v, vlen, 1, 0}, {LSM_OP_PUT, "", 0, v, vlen, 1, 0}},
        {{LSM_OP_PUT, "key000013", 9, v, vlen, 1, 0}, {LSM_OP_DELETE_RANGE, "b", 1, "a", 1, 0, 0}},
        {{LSM_OP_PUT, "key000013", 9, v, vlen, 1, 0}, {LSM_OP_PUT, "k", 1, v, vlen, 1, -5}},
        {{LSM_OP_PUT, "key000013", 9, v, vlen, 1, 0}, {(lsm_op_kind) 9, "k", 1, NULL, 0, 1, 0}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(prepare_commit_ops(db, bad[i], 2) == LSM_INVALID);
    CHECK(test_get_gen(db, NULL, 13) == 2);
    CHECK_OK(lsm_close(db));
    db = test_open_with_filter(dir, NULL);
    CHECK(test_get_gen(db, NULL, 150) == 5 && test_get_gen(db, NULL, 10) == 9 && test_get_gen(db, NULL, 100) == -1);
    CHECK_OK(lsm_close(db));
}

static void test_snapshot_and_abort(const char *dir)
{
    lsm_db *db = test_open_with_filter(dir, NULL);
    lsm_batch *b = big_batch(1);
    CHECK_OK(lsm_write(db, b));
    lsm_batch_free(b);
    int tables = test_count_files(dir, ".sst");
    lsm_snapshot *snap;
    CHECK_OK(lsm_snapshot_acquire(db, &snap));
    lsm_read_options ro;
    lsm_read_options_init(&ro);
    ro.snapshot = snap;

    b = big_batch(2);
    lsm_ticket t;
    CHECK_OK(lsm_write_prepare(db, b, &t));
    CHECK(test_get_gen(db, NULL, 3) == 1); /* prepared, not committed */
    CHECK_OK(lsm_write_abort(db, &t));
    CHECK(all_gen(db, NULL, 1));
    CHECK(test_count_files(dir, ".sst") == tables); /* the aborted table is gone */

    CHECK_OK(lsm_write_prepare(db, b, &t));
    CHECK_OK(lsm_write_commit(db, &t));
    lsm_batch_free(b);
    CHECK(all_gen(db, NULL, 2));
    CHECK(all_gen(db, &ro, 1)); /* the older snapshot does not see it */
    CHECK(scan_count(db, &ro) == N_KEYS);
    lsm_snapshot_release(db, snap);
    CHECK_OK(lsm_close(db));
    db = test_open_with_filter(dir, NULL);
    CHECK(all_gen(db, NULL, 2));
    CHECK_OK(lsm_close(db));
}

/* A prepared, unresolved batch at a crash: recovery keeps it when the tag
 * filter says its transaction committed, and drops it (and its file)
 * otherwise. */
static void crash_with_prepared(const char *dir, uint64_t tag)
{
    pid_t pid = fork();
    if (pid == 0) {
        lsm_db *db = test_open_with_filter(dir, NULL);
        lsm_batch *b = big_batch((int) tag);
        lsm_batch_set_tag(b, tag);
        lsm_ticket t;
        if (lsm_write_prepare(db, b, &t) != LSM_OK)
            _exit(3);
        _exit(0); /* no commit, no close: a crash */
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_crash_recovery(const char *dir)
{
    lsm_db *db = test_open_with_filter(dir, NULL);
    lsm_batch *b = big_batch(1);
    CHECK_OK(lsm_write(db, b));
    lsm_batch_free(b);
    CHECK_OK(lsm_close(db));
    int tables = test_count_files(dir, ".sst");

    crash_with_prepared(dir, 8); /* its transaction did not commit */
    CHECK(test_count_files(dir, ".sst") == tables + 1);
    db = test_open_with_filter(dir, test_keep_tag_7);
    CHECK(all_gen(db, NULL, 1));
    CHECK_OK(lsm_close(db));
    CHECK(test_count_files(dir, ".sst") == tables);

    crash_with_prepared(dir, 7); /* it did */
    db = test_open_with_filter(dir, test_keep_tag_7);
    CHECK(all_gen(db, NULL, 7));
    CHECK_OK(lsm_close(db));
    db = test_open_with_filter(dir, NULL); /* and it stays, now from the manifest */
    CHECK(all_gen(db, NULL, 7));
    CHECK(scan_count(db, NULL) == N_KEYS);
    CHECK_OK(lsm_close(db));
}

/* Committed ingests whose tables compaction merged away (files deleted)
 * before a crash: their INGEST records are still in the WAL, and recovery
 * must take the merged table for them instead of failing on the files. */
static void test_merged_away_before_crash(const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        lsm_db *db = test_open_with_filter(dir, NULL);
        for (int gen = 1; gen <= 2; gen++) {
            lsm_batch *b = big_batch(gen);
            if (lsm_write(db, b) != LSM_OK)
                _exit(3);
            lsm_batch_free(b);
        }
        if (lsm_compact_full(db) != LSM_OK)
            _exit(4);
        lsm_stats st;
        if (lsm_get_stats(db, &st) != LSM_OK || st.ingests != 2 || st.table_count != 1 ||
            test_count_files(dir, ".sst") != 1)
            _exit(5);
        _exit(0); /* no close: the WAL keeps both INGEST records */
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (int round = 0; round < 2; round++) {
        lsm_db *db = test_open_with_filter(dir, NULL);
        CHECK(all_gen(db, NULL, 2));
        CHECK(scan_count(db, NULL) == N_KEYS);
        CHECK(test_count_files(dir, ".sst") == 1);
        CHECK_OK(lsm_close(db));
    }
}

int main(void)
{
    char dir[256];
    void (*tests[])(const char *) = {test_larger_than_memtable, test_overlap_and_order,
                                     test_deletes_in_batch, test_ops_in_place, test_snapshot_and_abort,
                                     test_crash_recovery, test_merged_away_before_crash};
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        test_tempdir(dir, sizeof dir, "ingest");
        tests[i](dir);
        test_rmdir(dir);
    }
    return test_report("test_ingest");
}
