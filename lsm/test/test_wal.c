/* test_wal.c — WAL segments, framing, point-in-time replay and its dropped tally. */
#include <fcntl.h>
#include <sys/stat.h>

#include "file_io.h"
#include "batch.h"
#include "testutil.h"
#include "wal.h"

#define MAX_RECS 256

/* What replay delivered, for comparison with what was written. */
typedef struct rec_log {
    int n;
    uint8_t kind[MAX_RECS];
    uint64_t tag[MAX_RECS], first_seq[MAX_RECS];
    uint32_t count[MAX_RECS];
    size_t len[MAX_RECS];
    uint8_t first_byte[MAX_RECS];
} rec_log;

static lsm_status collect(uint8_t kind, uint64_t tag, uint64_t first_seq, uint32_t count,
                          const uint8_t *payload, size_t len, void *arg)
{
    rec_log *l = arg;
    if (l->n < MAX_RECS) {
        l->kind[l->n] = kind;
        l->tag[l->n] = tag;
        l->first_seq[l->n] = first_seq;
        l->count[l->n] = count;
        l->len[l->n] = len;
        l->first_byte[l->n] = len ? payload[0] : 0;
    }
    l->n++;
    return LSM_OK;
}

/* The engine's view of one open segment: fd and write offset. */
typedef struct writer {
    int fd;
    uint64_t off;
    char path[4200];
} writer;

static void writer_create(writer *w, const char *dir, uint64_t seg)
{
    CHECK_OK(wal_segment_create(dir, seg, 0, &w->fd, &w->off));
    CHECK(w->off == WAL_SEGMENT_HEADER_SIZE);
    CHECK_OK(wal_segment_path(w->path, sizeof w->path, dir, seg));
}

/* Appends one record, alternating the contiguous and two-part forms.
 * Returns the record's offset. */
static uint64_t append_rec(writer *w, uint8_t kind, uint64_t tag, uint64_t first_seq,
                           uint32_t count, const uint8_t *payload, size_t len)
{
    static int flip;
    uint64_t at = w->off;
    if (flip++ % 2 == 0) {
        size_t sz = wal_record_size(len);
        uint8_t *buf = malloc(sz);
        wal_encode_record(buf, kind, tag, first_seq, count, payload, len);
        CHECK_OK(file_write_at(w->fd, buf, sz, w->off, w->path));
        free(buf);
    } else {
        wal_frame f;
        wal_frame_record(&f, kind, tag, first_seq, count, payload, len);
        CHECK_OK(wal_append_frame(w->fd, w->off, &f, payload, len, w->path));
    }
    w->off += wal_record_size(len);
    return at;
}

/* Appends a BATCH record of `ops` deletes; payload's first byte is ENTRY_DELETE. */
static uint64_t append_batch(writer *w, uint64_t tag, uint64_t first_seq, uint32_t ops)
{
    lsm_batch *b = lsm_batch_new();
    for (uint32_t i = 0; i < ops; i++)
        CHECK_OK(lsm_batch_delete(b, "key", 3, (int64_t) (first_seq + i)));
    uint64_t at = append_rec(w, WAL_RECORD_BATCH, tag, first_seq, ops, batch_body(b),
                             batch_body_len(b));
    lsm_batch_free(b);
    return at;
}

static void writer_close(writer *w)
{
    CHECK_OK(wal_sync(w->fd));
    close(w->fd);
}

static uint64_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (uint64_t) sb.st_size : 0;
}

static void flip_byte(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t c;
    CHECK(pread(fd, &c, 1, (off_t) off) == 1);
    c ^= 0x5a;
    CHECK(pwrite(fd, &c, 1, (off_t) off) == 1);
    close(fd);
}

/* Segments 1..3 of 4 records each, seqs 1..; one ABORT in segment 2. */
static void write_three_segments(const char *dir, uint64_t rec_off[4][4], uint64_t seg_size[4])
{
    uint64_t seq = 1;
    for (uint64_t seg = 1; seg <= 3; seg++) {
        writer w;
        writer_create(&w, dir, seg);
        for (int i = 0; i < 4; i++) {
            if (seg == 2 && i == 3) {
                rec_off[seg][i] = append_rec(&w, WAL_RECORD_ABORT, 77, 5, 2, NULL, 0);
                continue;
            }
            rec_off[seg][i] = append_batch(&w, seg * 10 + (uint64_t) i, seq, 2);
            seq += 2;
        }
        writer_close(&w);
        seg_size[seg] = w.off;
        CHECK(file_size(w.path) == w.off);
    }
}

static void test_round_trip(void)
{
    char dir[256];
    test_tempdir(dir, sizeof dir, "wal");
    uint64_t off[4][4], size[4];
    write_three_segments(dir, off, size);

    rec_log l = {0};
    wal_replay_stats st;
    CHECK_OK(wal_replay(dir, 0, collect, &l, &st));
    CHECK(l.n == 12 && st.records == 12);
    CHECK(st.records_dropped == 0 && st.bytes_dropped == 0 && !st.stopped);
    CHECK(st.max_seg == 3);
    CHECK(st.last_seq == 22);   /* 11 batches of 2 ops */
    CHECK(l.kind[0] == WAL_RECORD_BATCH && l.tag[0] == 10 && l.first_seq[0] == 1);
    CHECK(l.count[0] == 2 && l.first_byte[0] == ENTRY_DELETE);
    CHECK(l.kind[7] == WAL_RECORD_ABORT && l.tag[7] == 77 && l.first_seq[7] == 5);
    CHECK(l.count[7] == 2 && l.len[7] == 0);
    CHECK(l.tag[11] == 33 && l.first_seq[11] == 21);

    /* from_seg skips earlier segments. */
    rec_log l2 = {0};
    CHECK_OK(wal_replay(dir, 3, collect, &l2, &st));
    CHECK(l2.n == 4 && l2.tag[0] == 30 && st.last_seq == 22 && st.max_seg == 3);

    /* Both encodings produce identical bytes. */
    uint8_t payload[100];
    for (int i = 0; i < 100; i++)
        payload[i] = (uint8_t) i;
    uint8_t flat[wal_record_size(100)];
    wal_encode_record(flat, WAL_RECORD_BATCH, 1, 2, 3, payload, 100);
    wal_frame f;
    wal_frame_record(&f, WAL_RECORD_BATCH, 1, 2, 3, payload, 100);
    CHECK(memcmp(flat, f.header, WAL_RECORD_HEADER_SIZE) == 0);
    CHECK(memcmp(flat + WAL_RECORD_HEADER_SIZE + 100, f.trailer, WAL_RECORD_TRAILER_SIZE) == 0);
    test_rmdir(dir);
}

/* A payload far over the replay read chunk between small records. */
static void test_large_record(void)
{
    char dir[256];
    test_tempdir(dir, sizeof dir, "wal");
    writer w;
    writer_create(&w, dir, 7);
    size_t big = 3u << 20;
    uint8_t *payload = malloc(big);
    memset(payload, 0xab, big);
    append_batch(&w, 1, 1, 1);
    append_rec(&w, WAL_RECORD_BATCH, 2, 2, 1, payload, big);
    append_batch(&w, 3, 3, 1);
    writer_close(&w);
    free(payload);
    rec_log l = {0};
    wal_replay_stats st;
    CHECK_OK(wal_replay(dir, 0, collect, &l, &st));
    CHECK(l.n == 3 && l.len[1] == big && l.first_byte[1] == 0xab && l.tag[2] == 3);
    CHECK(st.records_dropped == 0 && st.last_seq == 3);
    test_rmdir(dir);
}

/* Cutting the last record at every byte keeps the earlier ones. */
static void test_torn_tail(void)
{
    char dir[256];
    test_tempdir(dir, sizeof dir, "wal");
    writer w;
    writer_create(&w, dir, 1);
    append_batch(&w, 1, 1, 3);
    append_batch(&w, 2, 4, 3);
    uint64_t last = append_batch(&w, 3, 7, 3);
    writer_close(&w);
    uint64_t end = w.off;

    /* Downward, so that each truncate only shrinks the file. */
    int bad = 0;
    for (uint64_t cut = end - 1; cut >= last; cut--) {
        CHECK(truncate(w.path, (off_t) cut) == 0);
        rec_log l = {0};
        wal_replay_stats st;
        CHECK_OK(wal_replay(dir, 0, collect, &l, &st));
        uint64_t torn = cut - last;
        bool ok = l.n == 2 && st.records == 2 && st.last_seq == 6 &&
                  st.records_dropped == (torn ? 1u : 0u) && st.bytes_dropped == torn &&
                  st.stopped == (torn != 0) && (!torn || st.stop_offset == last);
        if (!ok && bad++ < 5)
            fprintf(stderr, "torn tail at +%llu: n=%d dropped=%llu bytes=%llu\n",
                    (unsigned long long) torn, l.n, (unsigned long long) st.records_dropped,
                    (unsigned long long) st.bytes_dropped);
        CHECK(ok);
    }

    /* A segment file shorter than its header is torn too. */
    CHECK(truncate(w.path, 10) == 0);
    rec_log l = {0};
    wal_replay_stats st;
    CHECK_OK(wal_replay(dir, 0, collect, &l, &st));
    CHECK(l.n == 0 && st.stopped && st.stop_seg == 1 && st.stop_offset == 0);
    CHECK(st.records_dropped == 1 && st.bytes_dropped == 10);
    test_rmdir(dir);
}

/* Damage in a middle record ends replay there; the rest is dropped. */
static void test_flipped_byte(void)
{
    char dir[256];
    test_tempdir(dir, sizeof dir, "wal");
    uint64_t off[4][4], size[4];
    write_three_segments(dir, off, size);
    char seg2[4200];
    CHECK_OK(wal_segment_path(seg2, sizeof seg2, dir, 2));

    /* Every byte of record 1 of segment 2, one at a time. */
    uint64_t rec_lo = off[2][1], rec_hi = off[2][2];
    for (uint64_t b = rec_lo; b < rec_hi; b++) {
        flip_byte(seg2, b);
        rec_log l = {0};
        wal_replay_stats st;
        CHECK_OK(wal_replay(dir, 0, collect, &l, &st));
        CHECK(l.n == 5 && st.records == 5);
        CHECK(l.n < 5 || (l.tag[4] == 20 && l.first_seq[4] == 9));
        CHECK(st.last_seq == 10);
        CHECK(st.stopped && st.stop_seg == 2 && st.stop_offset == rec_lo);
        CHECK(st.bytes_dropped == (size[2] - rec_lo) + size[3]);
        CHECK(st.records_dropped >= 1 + 4);
        /* Payload damage keeps the framing: the tally is exact. */
        if (b >= rec_lo + 4)
            CHECK(st.records_dropped == 3 + 4);
        flip_byte(seg2, b);
    }

    /* Discarding from the stop point leaves a clean log that later appends
     * extend without being hidden behind the damage. */
    flip_byte(seg2, off[2][1] + WAL_RECORD_HEADER_SIZE + 1);
    rec_log l = {0};
    wal_replay_stats st;
    CHECK_OK(wal_replay(dir, 0, collect, &l, &st));
    CHECK_OK(wal_discard_from(dir, st.stop_seg, st.stop_offset));
    CHECK(file_size(seg2) == off[2][1]);
    uint64_t *segs;
    size_t n;
    CHECK_OK(wal_list_segments(dir, &segs, &n));
    CHECK(n == 2 && segs[0] == 1 && segs[1] == 2);
    free(segs);
    writer w;
    writer_create(&w, dir, 3);
    append_batch(&w, 99, 11, 1);
    writer_close(&w);
    rec_log l2 = {0};
    CHECK_OK(wal_replay(dir, 0, collect, &l2, &st));
    CHECK(l2.n == 6 && l2.tag[5] == 99 && st.records_dropped == 0 && !st.stopped);
    test_rmdir(dir);
}

static void test_bad_header_and_gap(void)
{
    char dir[256];
    test_tempdir(dir, sizeof dir, "wal");
    uint64_t off[4][4], size[4];
    write_three_segments(dir, off, size);
    char seg2[4200];
    CHECK_OK(wal_segment_path(seg2, sizeof seg2, dir, 2));

    /* Bad magic in segment 2: segments 2 and 3 are dropped. */
    flip_byte(seg2, 0);
    int fd;
    CHECK_STATUS(wal_segment_open(dir, 2, &fd), LSM_CORRUPT);
    CHECK(strstr(lsm_errmsg(), seg2) != NULL);
    rec_log l = {0};
    wal_replay_stats st;
    CHECK_OK(wal_replay(dir, 0, collect, &l, &st));
    CHECK(l.n == 4 && st.stopped && st.stop_seg == 2 && st.stop_offset == 0);
    CHECK(st.records_dropped == 1 + 4 && st.bytes_dropped == size[2] + size[3]);
    flip_byte(seg2, 0);

    /* A missing middle segment stops replay at the next one. */
    CHECK(unlink(seg2) == 0);
    rec_log l2 = {0};
    CHECK_OK(wal_replay(dir, 0, collect, &l2, &st));
    CHECK(l2.n == 4 && st.stopped && st.stop_seg == 3 && st.stop_offset == 0);
    CHECK(st.records_dropped == 4 && st.bytes_dropped == size[3]);
    CHECK_OK(wal_discard_from(dir, st.stop_seg, st.stop_offset));
    uint64_t *segs;
    size_t n;
    CHECK_OK(wal_list_segments(dir, &segs, &n));
    CHECK(n == 1 && segs[0] == 1);
    free(segs);
    test_rmdir(dir);
}

static void test_segments(void)
{
    char dir[256];
    test_tempdir(dir, sizeof dir, "wal");
    for (uint64_t seg = 1; seg <= 5; seg++) {
        writer w;
        writer_create(&w, dir, seg);
        append_batch(&w, seg, seg, 1);
        writer_close(&w);
    }
    /* Creating an existing segment fails; opening it appends after others. */
    int fd;
    uint64_t start;
    CHECK_STATUS(wal_segment_create(dir, 5, 0, &fd, &start), LSM_IO);
    CHECK_STATUS(wal_segment_create(dir, WAL_MAX_SEG_NO + 1, 0, &fd, &start), LSM_INVALID);
    CHECK_OK(wal_segment_open(dir, 5, &fd));
    writer w = {.fd = fd};
    CHECK_OK(wal_segment_path(w.path, sizeof w.path, dir, 5));
    w.off = file_size(w.path);
    append_batch(&w, 6, 6, 1);
    writer_close(&w);
    CHECK_STATUS(wal_segment_open(dir, 9, &fd), LSM_IO);

    /* Names that are not exactly wal-<16 digits>.log are ignored. */
    char junk[4300];
    const char *names[] = {"wal-0000000000000009.log.tmp", "wal-000000000000009.log",
                           "wal-00000000000000x9.log", "MANIFEST"};
    for (int i = 0; i < 4; i++) {
        snprintf(junk, sizeof junk, "%s/%s", dir, names[i]);
        FILE *f = fopen(junk, "w");
        CHECK(f != NULL);
        if (f)
            fclose(f);
    }
    uint64_t *segs;
    size_t n;
    CHECK_OK(wal_list_segments(dir, &segs, &n));
    CHECK(n == 5 && segs[0] == 1 && segs[4] == 5);
    free(segs);

    CHECK_OK(wal_delete_segments_below(dir, 3));
    CHECK_OK(wal_list_segments(dir, &segs, &n));
    CHECK(n == 3 && segs[0] == 3 && segs[1] == 4 && segs[2] == 5);
    free(segs);
    rec_log l = {0};
    wal_replay_stats st;
    CHECK_OK(wal_replay(dir, 0, collect, &l, &st));
    CHECK(l.n == 4 && l.tag[0] == 3 && l.tag[3] == 6 && !st.stopped && st.last_seq == 6);
    CHECK_OK(wal_delete_segments_below(dir, 100));
    CHECK_OK(wal_list_segments(dir, &segs, &n));
    CHECK(n == 0 && segs == NULL);
    CHECK_OK(wal_replay(dir, 0, collect, &l, &st));
    CHECK(st.records == 0 && st.max_seg == 0);
    CHECK_STATUS(wal_list_segments("/nonexistent/flowdb", &segs, &n), LSM_IO);
    test_rmdir(dir);
}

static lsm_status fail_on_second(uint8_t kind, uint64_t tag, uint64_t first_seq, uint32_t count,
                                 const uint8_t *payload, size_t len, void *arg)
{
    int *calls = arg;
    return ++*calls == 2 ? LSM_NO_MEMORY : LSM_OK;
}

static void test_callback_error(void)
{
    char dir[256];
    test_tempdir(dir, sizeof dir, "wal");
    uint64_t off[4][4], size[4];
    write_three_segments(dir, off, size);
    int calls = 0;
    wal_replay_stats st;
    CHECK_STATUS(wal_replay(dir, 0, fail_on_second, &calls, &st), LSM_NO_MEMORY);
    CHECK(calls == 2 && st.records == 1);
    test_rmdir(dir);
}

/* Zero padding after the last record is a clean end; a torn record or any
 * non-zero byte inside the padding stops replay and is counted. */
static void test_zero_padding(void)
{
    char dir[256];
    test_tempdir(dir, sizeof dir, "walpad");
    writer w;
    writer_create(&w, dir, 1);
    append_batch(&w, 0, 1, 2);
    uint64_t second = append_batch(&w, 0, 3, 2);
    uint64_t end = w.off;
    CHECK_OK(wal_zero_extend(w.fd, end, end + 100000, w.path));
    writer w2;
    writer_create(&w2, dir, 2);
    append_batch(&w2, 0, 5, 2);
    CHECK_OK(wal_zero_extend(w2.fd, w2.off, w2.off + 5000, w2.path));

    rec_log l = {0};
    wal_replay_stats st;
    CHECK_OK(wal_replay(dir, 0, collect, &l, &st));
    CHECK(l.n == 3 && !st.stopped && st.records_dropped == 0 && st.bytes_dropped == 0);

    /* garbage inside segment 1's padding: replay stops there */
    uint8_t junk = 0x5a;
    CHECK_OK(file_write_at(w.fd, &junk, 1, end + 50000, w.path));
    rec_log l2 = {0};
    CHECK_OK(wal_replay(dir, 0, collect, &l2, &st));
    CHECK(l2.n == 2 && st.stopped && st.stop_seg == 1 && st.stop_offset == end);
    CHECK(st.records_dropped == 2); /* the garbage, and segment 2's record */

    /* a record torn into the padding: dropped from there */
    uint8_t zeros[8] = {0};
    CHECK_OK(file_write_at(w.fd, zeros, 1, end + 50000, w.path));
    CHECK_OK(file_write_at(w.fd, zeros, 8, end - 8, w.path)); /* second's checksum */
    rec_log l3 = {0};
    CHECK_OK(wal_replay(dir, 0, collect, &l3, &st));
    CHECK(l3.n == 1 && st.stopped && st.stop_seg == 1 && st.stop_offset == second);
    close(w.fd);
    close(w2.fd);
    test_rmdir(dir);
}

int main(void)
{
    test_zero_padding();
    test_round_trip();
    test_large_record();
    test_torn_tail();
    test_flipped_byte();
    test_bad_header_and_gap();
    test_segments();
    test_callback_error();
    return test_report("test_wal");
}
