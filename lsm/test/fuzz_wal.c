/*
 * fuzz_wal.c — libFuzzer target: arbitrary bytes as WAL segments, replayed,
 * with every delivered payload decoded as a batch.
 *
 * Input byte 0 picks how the rest becomes segment files, so that the fuzzer
 * also gets past the checksums to the record and batch decoders:
 *   mode 0  segment 1 = the bytes as they are
 *   mode 1  segment 1 = a valid segment header + the bytes
 *   mode 2  segment 1 = a valid header + records framed (with valid
 *           checksums) from the bytes: [kind/count byte][u16 len][payload]...
 *   mode 3  as mode 2, split over segments 1 and 2
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "wal.h"

static char dir[512];
static char seg_path[3][600];
static uint8_t seg_header[3][WAL_SEGMENT_HEADER_SIZE];

/* Takes the header bytes of a real segment, so the fuzzer needn't know them. */
static void capture_header(uint64_t seg)
{
    int fd;
    uint64_t start;
    if (wal_segment_create(dir, seg, 0, &fd, &start) != LSM_OK ||
        pread(fd, seg_header[seg], WAL_SEGMENT_HEADER_SIZE, 0) != WAL_SEGMENT_HEADER_SIZE)
        abort();
    close(fd);
    wal_segment_path(seg_path[seg], sizeof seg_path[seg], dir, seg);
    unlink(seg_path[seg]);
}

static void remove_dir(void)
{
    unlink(seg_path[1]);
    unlink(seg_path[2]);
    rmdir(dir);
}

/* $TMPDIR, else /dev/shm (file I/O dominates each run), else /tmp. */
static void init_once(void)
{
    if (dir[0])
        return;
    const char *base = getenv("TMPDIR");
    if (!base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/fuzz-wal-XXXXXX", base);
    if (!mkdtemp(dir))
        abort();
    capture_header(1);
    capture_header(2);
    atexit(remove_dir);
}

/* Growable output buffer for one segment file. */
typedef struct out_buf {
    uint8_t *p;
    size_t len, cap;
} out_buf;

static void out_put(out_buf *o, const void *src, size_t n)
{
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2 + 64;
        o->p = realloc(o->p, o->cap);
        if (!o->p)
            abort();
    }
    if (n)
        memcpy(o->p + o->len, src, n);
    o->len += n;
}

/* What replay must deliver: the sane framed records up to the first bad one. */
typedef struct expectation {
    uint64_t records;
    bool broken;
} expectation;

/* Frames data as records; a final fragment too short to frame goes in raw. */
static void frame_records(out_buf *o, const uint8_t *data, size_t size, uint64_t *seq,
                          expectation *want)
{
    size_t i = 0;
    while (size - i >= 3) {
        uint8_t ctl = data[i];
        size_t len = (size_t) data[i + 1] | (size_t) data[i + 2] << 8;
        i += 3;
        if (len > size - i)
            len = size - i;
        uint8_t kind = ctl & 3;   /* 1 batch, 2 abort, 3 ingest, 0 invalid */
        uint32_t count = ctl >> 2;
        size_t rec = wal_record_size(len);
        uint8_t *buf = malloc(rec);
        if (!buf)
            abort();
        wal_encode_record(buf, kind, ctl, *seq, count, data + i, len);
        out_put(o, buf, rec);
        free(buf);
        bool sane = kind == WAL_RECORD_BATCH || (kind == WAL_RECORD_ABORT && len == 0) ||
                    (kind == WAL_RECORD_INGEST && len == 8 && count > 0);
        want->broken |= !sane;
        want->records += !want->broken;
        *seq += count;
        i += len;
    }
    want->broken |= size > i;
    out_put(o, data + i, size - i);
}

static void write_file(const char *path, const out_buf *o)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || (o->len && write(fd, o->p, o->len) != (ssize_t) o->len))
        abort();
    close(fd);
}

static lsm_status visit_entry(const lsm_entry *e, void *arg)
{
    uint64_t *sum = arg;
    for (uint32_t i = 0; i < e->key_len; i++)
        *sum += e->key[i];
    for (uint32_t i = 0; i < e->value_len; i++)
        *sum += e->value[i];
    return LSM_OK;
}

typedef struct replay_tally {
    uint64_t calls, sum;
} replay_tally;

static lsm_status on_record(uint8_t kind, uint64_t tag, uint64_t first_seq, uint32_t count,
                            const uint8_t *payload, size_t len, void *arg)
{
    replay_tally *t = arg;
    t->calls++;
    if (kind != WAL_RECORD_BATCH && kind != WAL_RECORD_ABORT && kind != WAL_RECORD_INGEST)
        __builtin_trap();   /* replay must only deliver known kinds */
    if (kind == WAL_RECORD_ABORT && len != 0)
        __builtin_trap();
    if (kind == WAL_RECORD_INGEST && (len != 8 || count == 0))
        __builtin_trap();   /* an INGEST payload is one file number */
    uint32_t ops;
    if (batch_count_ops(payload, len, &ops) == LSM_OK && ops == count)
        batch_iterate(payload, len, visit_entry, &t->sum);
    return LSM_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    if (size < 1)
        return 0;
    uint8_t mode = data[0] & 3;
    data++;
    size--;
    out_buf seg[3] = {{0}};
    uint64_t seq = 1;
    expectation want = {0};
    size_t split = mode == 3 && size ? data[0] % (size + 1) : size;
    if (mode >= 1)
        out_put(&seg[1], seg_header[1], WAL_SEGMENT_HEADER_SIZE);
    if (mode == 0 || mode == 1)
        out_put(&seg[1], data, size);
    else
        frame_records(&seg[1], data, split, &seq, &want);
    write_file(seg_path[1], &seg[1]);
    if (mode == 3) {
        out_put(&seg[2], seg_header[2], WAL_SEGMENT_HEADER_SIZE);
        frame_records(&seg[2], data + split, size - split, &seq, &want);
        write_file(seg_path[2], &seg[2]);
    } else {
        unlink(seg_path[2]);
    }

    replay_tally t = {0};
    wal_replay_stats st;
    lsm_status s = wal_replay(dir, 0, on_record, &t, &st);
    if (s != LSM_OK || st.records != t.calls)
        __builtin_trap();
    if (!st.stopped && (st.records_dropped || st.bytes_dropped))
        __builtin_trap();
    if (st.stopped) {
        size_t stop_size = st.stop_seg == 2 ? seg[2].len : seg[1].len;
        uint64_t later = st.stop_seg == 1 && mode == 3 ? seg[2].len : 0;
        if (st.stop_offset > stop_size || st.bytes_dropped != stop_size - st.stop_offset + later)
            __builtin_trap();
    }
    if (mode >= 2 && (st.records != want.records || st.stopped != want.broken))
        __builtin_trap();
    free(seg[1].p);
    free(seg[2].p);
    return 0;
}
