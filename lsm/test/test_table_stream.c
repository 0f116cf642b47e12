/* test_table_stream.c — tables written while a transaction still writes:
 * results against memtables, older tables and snapshots, the order rules,
 * abort and abandon (no file left), recovery of a prepared stream after a
 * crash, and the uniform-seq footer. */
#include <sys/wait.h>

#include "sst.h"
#include "testutil.h"

#define N_KEYS 30000 /* more than STREAM_CHUNKS * CHUNK_OPS: the producer waits */

/* Keys and values of one generation; they outlive the stream. */
typedef struct gen_data {
    char (*key)[16];
    char (*val)[96];
} gen_data;

static gen_data gen_make(int gen)
{
    gen_data g = {calloc(N_KEYS, sizeof *g.key), calloc(N_KEYS, sizeof *g.val)};
    for (int i = 0; i < N_KEYS; i++) {
        snprintf(g.key[i], sizeof g.key[i], "key%06d", i);
        snprintf(g.val[i], sizeof g.val[i], "value-%d-gen-%d-%040d", i, gen, i);
    }
    return g;
}

static void gen_free(gen_data *g)
{
    free(g->key);
    free(g->val);
}

static lsm_write_op put_op(const gen_data *g, int i, int64_t expire_at)
{
    return (lsm_write_op){LSM_OP_PUT, g->key[i], strlen(g->key[i]), g->val[i],
                          strlen(g->val[i]), 1, expire_at};
}

/* Records a full scan returns, checking each against the point read. */
static long scan_check(lsm_db *db, const lsm_read_options *ro)
{
    lsm_scan_spec s;
    lsm_scan_spec_init(&s);
    lsm_iter *it;
    long n = 0;
    if (lsm_iter_open(db, ro, &s, &it) != LSM_OK)
        return -1;
    lsm_record r;
    while (lsm_iter_next(it, &r) == LSM_OK) {
        int i, gen;
        if (sscanf((const char *) r.value, "value-%d-gen-%d", &i, &gen) != 2 ||
            test_get_gen(db, ro, i) != gen)
            n = -1000000;
        n++;
    }
    lsm_iter_close(it);
    return n;
}

static void write_batch_gen(lsm_db *db, const gen_data *g, int from, int to)
{
    lsm_batch *b = lsm_batch_new();
    for (int i = from; i < to; i++)
        CHECK_OK(lsm_batch_put(b, g->key[i], strlen(g->key[i]), 1, g->val[i], strlen(g->val[i])));
    CHECK_OK(lsm_write(db, b));
    lsm_batch_free(b);
}

/* Streams generation g over every key: key 10 deleted, key 11 put already
 * expired, the rest put. */
static lsm_table_stream *stream_gen(lsm_db *db, const gen_data *g)
{
    lsm_table_stream *s;
    CHECK_OK(lsm_table_stream_open(db, &s));
    for (int i = 0; i < N_KEYS; i++) {
        lsm_write_op op = put_op(g, i, i == 11 ? 1000 : 0);
        if (i == 10)
            op = (lsm_write_op){LSM_OP_DELETE, g->key[i], strlen(g->key[i]), NULL, 0, 1, 0};
        CHECK_OK(lsm_table_stream_add(s, &op));
    }
    CHECK(lsm_table_stream_count(s) == N_KEYS);
    return s;
}

static bool gens_are(lsm_db *db, const lsm_read_options *ro, int want, int want_5)
{
    for (int i = 0; i < N_KEYS; i++) {
        int w = i == 10 || i == 11 ? -1 : i == 5 ? want_5 : want;
        if (test_get_gen(db, ro, i) != w) {
            fprintf(stderr, "key %d: generation %d, want %d\n", i, test_get_gen(db, ro, i), w);
            return false;
        }
    }
    return true;
}

/* The stream's table beats older tables and memtables, not newer writes,
 * is invisible to older snapshots and until committed, and survives reopen
 * and compaction. */
static void test_results(const char *dir)
{
    lsm_db *db = test_open_with_filter(dir, NULL);
    gen_data g1 = gen_make(1), g2 = gen_make(2), g3 = gen_make(3), g4 = gen_make(4);
    write_batch_gen(db, &g1, 0, N_KEYS);          /* older table(s) */
    write_batch_gen(db, &g2, 5, 6);               /* memtable, older than the stream */
    lsm_snapshot *snap;
    CHECK_OK(lsm_snapshot_acquire(db, &snap));
    lsm_read_options ro;
    lsm_read_options_init(&ro);
    ro.snapshot = snap;

    lsm_stats st;
    CHECK_OK(lsm_get_stats(db, &st));
    uint64_t ingests = st.ingests;
    lsm_table_stream *s = stream_gen(db, &g3);
    int tables = test_count_files(dir, ".sst");
    lsm_ticket t;
    CHECK_OK(lsm_write_prepare_stream(db, s, 0, &t));
    CHECK(t.count == N_KEYS);
    CHECK(test_get_gen(db, NULL, 3) == 1);             /* prepared, not committed */
    CHECK_OK(lsm_write_commit(db, &t));
    CHECK(test_count_files(dir, ".sst") >= tables);
    CHECK_OK(lsm_get_stats(db, &st));
    CHECK(st.ingests == ingests + 1 && st.ingests_streamed == 1);
    CHECK(gens_are(db, NULL, 3, 3));
    CHECK(scan_check(db, NULL) == N_KEYS - 2);
    CHECK(test_get_gen(db, &ro, 3) == 1 && test_get_gen(db, &ro, 5) == 2 && test_get_gen(db, &ro, 10) == 1);
    CHECK(scan_check(db, &ro) == N_KEYS);
    lsm_snapshot_release(db, snap);

    write_batch_gen(db, &g4, 7, 8);               /* newer than the stream */
    for (int round = 0; round < 3; round++) {
        CHECK(test_get_gen(db, NULL, 7) == 4);
        CHECK(test_get_gen(db, NULL, 8) == 3 && test_get_gen(db, NULL, 5) == 3);
        CHECK(test_get_gen(db, NULL, 10) == -1 && test_get_gen(db, NULL, 11) == -1);
        CHECK(scan_check(db, NULL) == N_KEYS - 2);
        CHECK_OK(lsm_close(db));
        db = test_open_with_filter(dir, NULL);
        if (round == 1)
            CHECK_OK(lsm_compact_full(db));
    }
    CHECK_OK(lsm_close(db));
    gen_free(&g1), gen_free(&g2), gen_free(&g3), gen_free(&g4);
}

/* Ops out of (key, ts) order, equal (key, ts) and range deletes are
 * refused without being taken; the stream goes on. */
static void test_order_rules(const char *dir)
{
    lsm_db *db = test_open_with_filter(dir, NULL);
    gen_data g = gen_make(1);
    lsm_table_stream *s;
    CHECK_OK(lsm_table_stream_open(db, &s));
    lsm_write_op op = put_op(&g, 100, 0);
    CHECK_OK(lsm_table_stream_add(s, &op));
    CHECK_STATUS(lsm_table_stream_add(s, &op), LSM_INVALID);      /* same (key, ts) */
    op = put_op(&g, 99, 0);
    CHECK_STATUS(lsm_table_stream_add(s, &op), LSM_INVALID);      /* smaller key */
    op = put_op(&g, 100, 0);
    op.ts = 0;
    CHECK_STATUS(lsm_table_stream_add(s, &op), LSM_INVALID);      /* same key, older ts */
    op.ts = 2;
    CHECK_OK(lsm_table_stream_add(s, &op));                       /* same key, newer ts */
    lsm_write_op range = {LSM_OP_DELETE_RANGE, "key1", 4, "key2", 4, 0, 0};
    CHECK_STATUS(lsm_table_stream_add(s, &range), LSM_INVALID);
    lsm_write_op big = put_op(&g, 101, 0);
    big.key_len = 100000;
    CHECK_STATUS(lsm_table_stream_add(s, &big), LSM_TOO_LARGE);
    op = put_op(&g, 101, 0);
    CHECK_OK(lsm_table_stream_add(s, &op));
    CHECK(lsm_table_stream_count(s) == 3);
    lsm_ticket t;
    CHECK_OK(lsm_write_prepare_stream(db, s, 0, &t));
    CHECK_OK(lsm_write_commit(db, &t));
    CHECK(test_get_gen(db, NULL, 100) == 1 && test_get_gen(db, NULL, 101) == 1);
    lsm_value v = {0};
    CHECK_OK(lsm_get(db, NULL, g.key[100], strlen(g.key[100]), 2, &v));
    lsm_value_free(&v);
    CHECK(scan_check(db, NULL) == 3);
    CHECK_OK(lsm_close(db));
    gen_free(&g);
}

/* Abandoned, aborted and empty streams leave no file and change nothing. */
static void test_abandon_abort_empty(const char *dir)
{
    lsm_db *db = test_open_with_filter(dir, NULL);
    gen_data g1 = gen_make(1), g2 = gen_make(2);
    write_batch_gen(db, &g1, 0, N_KEYS);
    CHECK_OK(lsm_flush(db));
    int tables = test_count_files(dir, ".sst");
    for (int round = 0; round < 70; round++) { /* more rounds than table slots (64) */
        lsm_table_stream *s = stream_gen(db, &g2);
        CHECK(test_count_files(dir, ".sst") == tables + 1);
        lsm_table_stream_abandon(s);
        CHECK(test_count_files(dir, ".sst") == tables);
        if (round % 10 != 0)
            continue;
        s = stream_gen(db, &g2);
        lsm_ticket t;
        CHECK_OK(lsm_write_prepare_stream(db, s, 0, &t));
        CHECK(test_get_gen(db, NULL, 3) == 1);
        CHECK_OK(lsm_write_abort(db, &t));
        CHECK(test_count_files(dir, ".sst") == tables);
    }
    lsm_table_stream *s;
    CHECK_OK(lsm_table_stream_open(db, &s));
    lsm_ticket t;
    CHECK_OK(lsm_write_prepare_stream(db, s, 0, &t));
    CHECK(t.count == 0);
    CHECK_OK(lsm_write_commit(db, &t));
    CHECK(test_count_files(dir, ".sst") == tables);
    CHECK(test_get_gen(db, NULL, 10) == 1 && test_get_gen(db, NULL, 3) == 1);
    CHECK(scan_check(db, NULL) == N_KEYS);
    CHECK_OK(lsm_close(db));
    gen_free(&g1), gen_free(&g2);
}

/* A prepared, unresolved stream at a crash: kept when its tag committed
 * (the uniform-seq table read back after recovery), dropped otherwise. */
static void crash_with_prepared_stream(const char *dir, int gen)
{
    pid_t pid = fork();
    if (pid == 0) {
        lsm_db *db = test_open_with_filter(dir, NULL);
        gen_data g = gen_make(gen);
        lsm_table_stream *s = stream_gen(db, &g);
        lsm_ticket t;
        if (lsm_write_prepare_stream(db, s, (uint64_t) gen, &t) != LSM_OK)
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
    gen_data g1 = gen_make(1);
    write_batch_gen(db, &g1, 0, N_KEYS);
    CHECK_OK(lsm_close(db));
    int tables = test_count_files(dir, ".sst");

    crash_with_prepared_stream(dir, 8);
    CHECK(test_count_files(dir, ".sst") == tables + 1);
    db = test_open_with_filter(dir, test_keep_tag_7);
    CHECK(test_get_gen(db, NULL, 3) == 1 && test_get_gen(db, NULL, 10) == 1);
    CHECK(scan_check(db, NULL) == N_KEYS);
    CHECK_OK(lsm_close(db));
    CHECK(test_count_files(dir, ".sst") == tables);

    crash_with_prepared_stream(dir, 7);
    for (int round = 0; round < 2; round++) { /* from the WAL, then the manifest */
        db = test_open_with_filter(dir, round == 0 ? test_keep_tag_7 : NULL);
        CHECK(gens_are(db, NULL, 7, 7));
        CHECK(scan_check(db, NULL) == N_KEYS - 2);
        CHECK_OK(lsm_close(db));
    }
    gen_free(&g1);
}

/* A committed stream stays invisible while an older batch is still in
 * flight (visible_seq is held below it): point reads and scans skip the
 * table's entries by their seq, which only the footer gives them. */
static void test_invisible_behind_older_batch(const char *dir)
{
    lsm_db *db = test_open_with_filter(dir, NULL);
    gen_data g1 = gen_make(1), g3 = gen_make(3);
    write_batch_gen(db, &g1, 0, N_KEYS);
    lsm_batch *older = lsm_batch_new();
    CHECK_OK(lsm_batch_put(older, "zzz", 3, 1, "in flight", 9));
    lsm_ticket ta, tb;
    CHECK_OK(lsm_write_prepare(db, older, &ta));
    lsm_table_stream *s = stream_gen(db, &g3);
    CHECK_OK(lsm_write_prepare_stream(db, s, 0, &tb));
    CHECK_OK(lsm_write_commit(db, &tb));
    CHECK(test_get_gen(db, NULL, 3) == 1 && test_get_gen(db, NULL, 10) == 1);
    CHECK(scan_check(db, NULL) == N_KEYS);
    lsm_value v = {0};
    CHECK_STATUS(lsm_get(db, NULL, "zzz", 3, 1, &v), LSM_NOT_FOUND);
    CHECK_OK(lsm_write_commit(db, &ta));
    CHECK(gens_are(db, NULL, 3, 3));
    CHECK_OK(lsm_get(db, NULL, "zzz", 3, 1, &v));
    lsm_value_free(&v);
    lsm_batch_free(older);
    CHECK_OK(lsm_close(db));
    gen_free(&g1), gen_free(&g3);
}

/* The footer keeps the uniform seq; the builder refuses what it cannot
 * express. */
static void test_uniform_footer(const char *dir)
{
    char path[300];
    snprintf(path, sizeof path, "%s/u.sst", dir);
    sst_options opt = {.block_size = 256, .bloom_bits_per_key = 10};
    sst_builder *b;
    CHECK_OK(sst_builder_open(path, 1, &opt, &b));
    lsm_entry e = {.key = (const uint8_t *) "a", .key_len = 1, .type = ENTRY_PUT, .ts = 1};
    CHECK_OK(sst_builder_add(b, &e));
    CHECK_STATUS(sst_builder_set_uniform_seq(b, 0), LSM_INVALID);
    CHECK_OK(sst_builder_set_uniform_seq(b, 42));
    e.key = (const uint8_t *) "b";
    CHECK_STATUS(sst_builder_add(b, &e), LSM_INVALID); /* after the seq is set */
    table_meta m;
    CHECK_OK(sst_builder_finish(b, &m));
    CHECK(m.min_seq == 42 && m.max_seq == 42 && m.entry_count == 1);
    sst_table *t;
    CHECK_OK(sst_table_open(path, 1, &t));
    CHECK(sst_table_uniform_seq(t) == 42);
    sst_table_close(t);

    CHECK_OK(sst_builder_open(path, 2, &opt, &b));
    e.seq = 5;
    CHECK_OK(sst_builder_add(b, &e));
    CHECK_STATUS(sst_builder_set_uniform_seq(b, 42), LSM_INVALID); /* a stored seq */
    CHECK_OK(sst_builder_finish(b, &m));
    CHECK_OK(sst_table_open(path, 2, &t));
    CHECK(sst_table_uniform_seq(t) == 0);
    sst_table_close(t);
}

int main(void)
{
    char dir[256];
    void (*tests[])(const char *) = {test_results, test_order_rules, test_abandon_abort_empty,
                                     test_crash_recovery, test_invisible_behind_older_batch,
                                     test_uniform_footer};
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        test_tempdir(dir, sizeof dir, "stream");
        tests[i](dir);
        test_rmdir(dir);
    }
    return test_report("test_table_stream");
}
