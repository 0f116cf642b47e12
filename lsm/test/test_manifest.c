/* test_manifest.c — MANIFEST append/load/rewrite, torn tails and corruption. */
#include <fcntl.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "coding.h"
#include "manifest.h"
#include "testutil.h"

static table_meta make_table(uint64_t file_no)
{
    table_meta t;
    memset(&t, 0, sizeof t);
    t.file_no = file_no;
    t.file_size = 1000 * file_no + 7;
    t.entry_count = 300 + file_no;
    t.point_tombstones = 5;
    t.range_tombstones = file_no % 3;
    t.raw_bytes = UINT64_MAX - file_no;
    t.min_seq = 10 * file_no;
    t.max_seq = 10 * file_no + 9;
    t.min_ts = INT64_MIN + (int64_t) file_no;
    t.max_ts = -5;
    t.max_expire_at = INT64_MAX;
    t.smallest_len = (uint16_t) (file_no % 2 ? TABLE_BOUND_MAX : 3);
    for (int i = 0; i < t.smallest_len; i++)
        t.smallest[i] = (uint8_t) (i + file_no);
    t.largest_len = 0;
    t.largest_truncated = file_no % 2 == 0;
    return t;
}

static bool table_eq(const table_meta *a, const table_meta *b)
{
    return a->file_no == b->file_no && a->file_size == b->file_size &&
           a->entry_count == b->entry_count && a->point_tombstones == b->point_tombstones &&
           a->range_tombstones == b->range_tombstones && a->raw_bytes == b->raw_bytes &&
           a->min_seq == b->min_seq && a->max_seq == b->max_seq && a->min_ts == b->min_ts &&
           a->max_ts == b->max_ts && a->max_expire_at == b->max_expire_at &&
           a->smallest_len == b->smallest_len && a->largest_len == b->largest_len &&
           a->largest_truncated == b->largest_truncated &&
           memcmp(a->smallest, b->smallest, a->smallest_len) == 0 &&
           memcmp(a->largest, b->largest, a->largest_len) == 0;
}

/* True if st's tables are exactly make_table(files[0..n)) in that order. */
static bool tables_are(const manifest_state *st, const uint64_t *files, uint32_t n)
{
    if (st->n_tables != n)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        table_meta want = make_table(files[i]);
        if (!table_eq(&st->tables[i], &want))
            return false;
    }
    return true;
}

static void manifest_file(char *buf, size_t len, const char *dir)
{
    snprintf(buf, len, "%s/MANIFEST", dir);
}

static uint64_t size_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (uint64_t) sb.st_size : 0;
}

static void flip_byte(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t c;
    CHECK(pread(fd, &c, 1, (off_t) off) == 1);
    c ^= 0x21;
    CHECK(pwrite(fd, &c, 1, (off_t) off) == 1);
    close(fd);
}

/* Edit 1: add 1, 2; counters.  Edit 2: remove 1, add 3, last_seq. */
static void append_two_edits(manifest *m, uint64_t *end_of_first)
{
    table_meta t12[2] = {make_table(1), make_table(2)};
    manifest_edit e1 = {.has_next_file_no = true, .next_file_no = 3, .has_log_number = true,
                        .log_number = 1, .has_last_seq = true, .last_seq = 100,
                        .n_added = 2, .added = t12};
    CHECK_OK(manifest_append(m, &e1));
    *end_of_first = manifest_size(m);
    table_meta t3 = make_table(3);
    uint64_t rm1 = 1;
    manifest_edit e2 = {.has_last_seq = true, .last_seq = 200, .n_added = 1, .added = &t3,
                        .n_removed = 1, .removed = &rm1};
    CHECK_OK(manifest_append(m, &e2));
}

static void check_after_first(const manifest_state *st)
{
    static const uint64_t files[] = {1, 2};
    CHECK(st->next_file_no == 3 && st->log_number == 1 && st->last_seq == 100);
    CHECK(tables_are(st, files, 2));
}

static void check_after_second(const manifest_state *st)
{
    static const uint64_t files[] = {2, 3};
    CHECK(st->next_file_no == 3 && st->log_number == 1 && st->last_seq == 200);
    CHECK(tables_are(st, files, 2));
}

static void test_fresh_and_round_trip(void)
{
    char dir[256], path[300];
    test_tempdir(dir, sizeof dir, "man");
    manifest_file(path, sizeof path, dir);
    manifest_state st;
    CHECK_OK(manifest_load(dir, &st));
    CHECK(!st.found && st.n_tables == 0 && st.next_file_no == 1 && st.records_dropped == 0);
    manifest_state_free(&st);

    manifest *m;
    CHECK_OK(manifest_open(dir, &m));
    CHECK(manifest_size(m) == size_of(path) && manifest_size(m) > 0);
    CHECK_OK(manifest_load(dir, &st));
    CHECK(st.found && st.n_tables == 0);
    manifest_state_free(&st);

    uint64_t first_end;
    append_two_edits(m, &first_end);
    CHECK(manifest_size(m) == size_of(path));
    CHECK_OK(manifest_load(dir, &st));
    check_after_second(&st);
    CHECK(st.records_dropped == 0);
    manifest_state_free(&st);

    /* An empty edit is legal and changes nothing. */
    manifest_edit none = {0};
    CHECK_OK(manifest_append(m, &none));
    CHECK_OK(manifest_load(dir, &st));
    check_after_second(&st);
    manifest_state_free(&st);

    /* An edit that could not be loaded back is refused. */
    table_meta bad = make_table(9);
    bad.largest_len = TABLE_BOUND_MAX + 1;
    manifest_edit eb = {.n_added = 1, .added = &bad};
    uint64_t before = size_of(path);
    CHECK_STATUS(manifest_append(m, &eb), LSM_INVALID);
    CHECK(size_of(path) == before);
    manifest_close(m);

    /* Reopening keeps everything. */
    CHECK_OK(manifest_open(dir, &m));
    CHECK(manifest_size(m) == before);
    manifest_close(m);
    test_rmdir(dir);
}

static void test_rewrite_then_append(void)
{
    char dir[256], path[300];
    test_tempdir(dir, sizeof dir, "man");
    manifest_file(path, sizeof path, dir);
    manifest *m, *other;
    CHECK_OK(manifest_open(dir, &m));
    CHECK_OK(manifest_open(dir, &other));
    uint64_t first_end;
    for (int i = 0; i < 20; i++) {   /* history worth compacting */
        manifest_edit e = {.has_last_seq = true, .last_seq = (uint64_t) i};
        CHECK_OK(manifest_append(m, &e));
    }
    append_two_edits(m, &first_end);
    manifest_state st;
    CHECK_OK(manifest_load(dir, &st));
    uint64_t big = manifest_size(m);
    CHECK_OK(manifest_rewrite(m, &st));
    CHECK(manifest_size(m) < big && manifest_size(m) == size_of(path));
    manifest_state_free(&st);
    CHECK_OK(manifest_load(dir, &st));
    check_after_second(&st);
    manifest_state_free(&st);

    /* Append through the rewriting handle, then through a handle opened
     * before the rewrite: both land in the live file, in order. */
    table_meta t4 = make_table(4);
    manifest_edit e4 = {.n_added = 1, .added = &t4, .has_next_file_no = true, .next_file_no = 5};
    CHECK_OK(manifest_append(m, &e4));
    uint64_t rm2 = 2;
    manifest_edit e5 = {.n_removed = 1, .removed = &rm2};
    CHECK_OK(manifest_append(other, &e5));
    CHECK(manifest_size(other) == size_of(path));
    CHECK_OK(manifest_load(dir, &st));
    static const uint64_t files[] = {3, 4};
    CHECK(tables_are(&st, files, 2) && st.next_file_no == 5 && st.last_seq == 200);
    manifest_state_free(&st);
    CHECK(access(path, F_OK) == 0);
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0);
    manifest_close(m);
    manifest_close(other);
    test_rmdir(dir);
}

/* Cutting the last record anywhere: the earlier state, one record dropped. */
static void test_torn_tail(void)
{
    char dir[256], path[300];
    test_tempdir(dir, sizeof dir, "man");
    manifest_file(path, sizeof path, dir);
    manifest *m;
    CHECK_OK(manifest_open(dir, &m));
    uint64_t first_end;
    append_two_edits(m, &first_end);
    uint64_t end = manifest_size(m);
    manifest_close(m);

    int bad = 0;
    for (uint64_t cut = end - 1; cut > first_end; cut--) {   /* downward: only shrinks */
        CHECK(truncate(path, (off_t) cut) == 0);
        manifest_state st;
        lsm_status s = manifest_load(dir, &st);
        bool ok = s == LSM_OK && st.records_dropped == 1 && st.n_tables == 2 &&
                  st.last_seq == 100 && st.tables[0].file_no == 1;
        if (!ok && bad++ < 5)
            fprintf(stderr, "torn at %llu: %s %s\n", (unsigned long long) cut,
                    lsm_status_name(s), lsm_errmsg());
        CHECK(ok);
        if (s == LSM_OK)
            check_after_first(&st);
        manifest_state_free(&st);
    }

    /* Opening cuts the torn record; later appends load cleanly. */
    CHECK(truncate(path, (off_t) first_end + 5) == 0);
    CHECK_OK(manifest_open(dir, &m));
    CHECK(manifest_size(m) == first_end && size_of(path) == first_end);
    uint64_t rm2 = 2;
    manifest_edit e = {.n_removed = 1, .removed = &rm2};
    CHECK_OK(manifest_append(m, &e));
    manifest_close(m);
    manifest_state st;
    CHECK_OK(manifest_load(dir, &st));
    static const uint64_t files[] = {1};
    CHECK(st.records_dropped == 0 && tables_are(&st, files, 1));
    manifest_state_free(&st);

    /* A zero-filled tail (size extended, data lost in a crash) is torn too. */
    int fd = open(path, O_WRONLY | O_APPEND);
    uint8_t zeros[300] = {0};
    CHECK(write(fd, zeros, sizeof zeros) == (ssize_t) sizeof zeros);
    close(fd);
    CHECK_OK(manifest_load(dir, &st));
    CHECK(st.records_dropped == 1 && tables_are(&st, files, 1));
    manifest_state_free(&st);
    test_rmdir(dir);
}

static void test_corruption(void)
{
    char dir[256], path[300];
    test_tempdir(dir, sizeof dir, "man");
    manifest_file(path, sizeof path, dir);
    manifest *m;
    CHECK_OK(manifest_open(dir, &m));
    uint64_t first_end;
    append_two_edits(m, &first_end);
    uint64_t end = manifest_size(m);
    manifest_close(m);

    /* Every byte of the first record (offset 16 on), and of the header. */
    int bad = 0;
    for (uint64_t b = 0; b < first_end; b++) {
        flip_byte(path, b);
        manifest_state st;
        lsm_status s = manifest_load(dir, &st);
        bool ok = s == LSM_CORRUPT && strstr(lsm_errmsg(), path) != NULL && st.n_tables == 0;
        if (!ok && bad++ < 5)
            fprintf(stderr, "flip at %llu: %s %s\n", (unsigned long long) b, lsm_status_name(s),
                    lsm_errmsg());
        CHECK(ok);
        manifest_state_free(&st);
        flip_byte(path, b);
    }
    /* A damaged (complete) last record is corruption too, not a torn tail. */
    flip_byte(path, end - 12);
    manifest_state st;
    CHECK_STATUS(manifest_load(dir, &st), LSM_CORRUPT);
    CHECK_STATUS(manifest_open(dir, &m), LSM_CORRUPT);
    CHECK(strstr(lsm_errmsg(), path) != NULL);
    flip_byte(path, end - 12);
    CHECK_OK(manifest_load(dir, &st));
    manifest_state_free(&st);

    /* Future format version with a valid header checksum. */
    uint8_t h[16];
    int fd = open(path, O_RDWR);
    CHECK(pread(fd, h, 16, 0) == 16);
    put_u32(h + 4, MANIFEST_FORMAT_VERSION + 1);
    put_u64(h + 8, XXH3_64bits(h, 8));
    CHECK(pwrite(fd, h, 16, 0) == 16);
    CHECK_STATUS(manifest_load(dir, &st), LSM_CORRUPT);
    CHECK(strstr(lsm_errmsg(), "version") != NULL && strstr(lsm_errmsg(), path) != NULL);

    /* Shorter than the header. */
    CHECK(ftruncate(fd, 7) == 0);
    close(fd);
    CHECK_STATUS(manifest_load(dir, &st), LSM_CORRUPT);
    CHECK(strstr(lsm_errmsg(), path) != NULL);
    test_rmdir(dir);
}

static void test_unknown_removal_and_double_add(void)
{
    char dir[256], path[300];
    test_tempdir(dir, sizeof dir, "man");
    manifest_file(path, sizeof path, dir);
    manifest *m;
    CHECK_OK(manifest_open(dir, &m));
    uint64_t first_end;
    append_two_edits(m, &first_end);
    uint64_t rm42 = 42;
    manifest_edit e = {.n_removed = 1, .removed = &rm42};
    CHECK_OK(manifest_append(m, &e));
    manifest_close(m);
    manifest_state st;
    CHECK_STATUS(manifest_load(dir, &st), LSM_CORRUPT);
    CHECK(strstr(lsm_errmsg(), path) != NULL && strstr(lsm_errmsg(), "42") != NULL);
    CHECK(st.n_tables == 0 && st.tables == NULL);
    test_rmdir(dir);

    test_tempdir(dir, sizeof dir, "man");
    manifest_file(path, sizeof path, dir);
    CHECK_OK(manifest_open(dir, &m));
    table_meta t = make_table(5);
    manifest_edit add = {.n_added = 1, .added = &t};
    CHECK_OK(manifest_append(m, &add));
    CHECK_OK(manifest_append(m, &add));
    manifest_close(m);
    CHECK_STATUS(manifest_load(dir, &st), LSM_CORRUPT);
    CHECK(strstr(lsm_errmsg(), path) != NULL);
    test_rmdir(dir);
}

/* Enough tables to need several buffer growths and a large snapshot. */
static void test_many_tables(void)
{
    char dir[256];
    test_tempdir(dir, sizeof dir, "man");
    manifest *m;
    CHECK_OK(manifest_open(dir, &m));
    enum { N = 5000 };
    table_meta *ts = malloc(N * sizeof *ts);
    for (uint32_t i = 0; i < N; i++)
        ts[i] = make_table(i + 1);
    manifest_edit e = {.n_added = N, .added = ts};
    CHECK_OK(manifest_append(m, &e));
    manifest_state st;
    CHECK_OK(manifest_load(dir, &st));
    CHECK(st.n_tables == N && table_eq(&st.tables[N - 1], &ts[N - 1]));
    CHECK_OK(manifest_rewrite(m, &st));
    manifest_state_free(&st);
    CHECK_OK(manifest_load(dir, &st));
    CHECK(st.n_tables == N && table_eq(&st.tables[0], &ts[0]));
    manifest_state_free(&st);
    free(ts);
    manifest_close(m);
    CHECK_STATUS(manifest_open("/nonexistent/flowdb", &m), LSM_IO);
    test_rmdir(dir);
}

int main(void)
{
    test_fresh_and_round_trip();
    test_rewrite_then_append();
    test_torn_tail();
    test_corruption();
    test_unknown_removal_and_double_add();
    test_many_tables();
    return test_report("test_manifest");
}
