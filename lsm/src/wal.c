/* wal.c — WAL segments, record framing and point-in-time replay (wal.h). */
#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack */
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "coding.h"
#include "file_io.h"
#include "status.h"

#define WAL_MAGIC 0x4C415746u          /* "FWAL" little-endian */
#define WAL_READ_CHUNK (1u << 20)      /* replay reads at least this much */
#define WAL_PATH_MAX 4096

_Static_assert(WAL_MAX_PAYLOAD <= UINT32_MAX, "payload length is a u32");

lsm_status wal_segment_path(char *buf, size_t len, const char *dir, uint64_t seg_no)
{
    if (seg_no > WAL_MAX_SEG_NO)
        return lsm_fail(LSM_INVALID, "wal: segment number %" PRIu64 " exceeds 16 digits", seg_no);
    int n = snprintf(buf, len, "%s/wal-%016" PRIu64 ".log", dir, seg_no);
    if (n < 0 || (size_t) n >= len)
        return lsm_fail(LSM_INVALID, "wal: path for segment %" PRIu64 " in %s is too long",
                        seg_no, dir);
    return LSM_OK;
}

/* ------------------------------------------------------------- encoding */

size_t wal_record_size(size_t payload_len)
{
    return WAL_RECORD_HEADER_SIZE + payload_len + WAL_RECORD_TRAILER_SIZE;
}

static void encode_record_header(uint8_t *h, uint8_t kind, uint64_t tag, uint64_t first_seq,
                                 uint32_t count, size_t len)
{
    put_u32(h, (uint32_t) len);
    put_u32(h + 4, count);
    put_u64(h + 8, tag);
    put_u64(h + 16, first_seq);
    h[24] = kind;
    h[25] = h[26] = h[27] = 0;
}

void wal_encode_record(uint8_t *dst, uint8_t kind, uint64_t tag, uint64_t first_seq,
                       uint32_t count, const uint8_t *payload, size_t len)
{
    encode_record_header(dst, kind, tag, first_seq, count, len);
    if (len)
        memcpy(dst + WAL_RECORD_HEADER_SIZE, payload, len);
    size_t covered = WAL_RECORD_HEADER_SIZE + len;
    put_u64(dst + covered, XXH3_64bits(dst, covered));
}

void wal_frame_record(wal_frame *f, uint8_t kind, uint64_t tag, uint64_t first_seq,
                      uint32_t count, const uint8_t *payload, size_t len)
{
    encode_record_header(f->header, kind, tag, first_seq, count, len);
    XXH3_state_t state;
    XXH3_INITSTATE(&state);
    XXH3_64bits_reset(&state);
    XXH3_64bits_update(&state, f->header, WAL_RECORD_HEADER_SIZE);
    if (len)
        XXH3_64bits_update(&state, payload, len);
    put_u64(f->trailer, XXH3_64bits_digest(&state));
}

static void encode_segment_header(uint8_t *h, uint64_t seg_no, uint64_t prev_last_seq)
{
    put_u32(h, WAL_MAGIC);
    put_u32(h + 4, WAL_FORMAT_VERSION);
    put_u64(h + 8, seg_no);
    put_u64(h + 16, prev_last_seq);
    put_u64(h + 24, XXH3_64bits(h, 24));
}

static bool segment_header_valid(const uint8_t *h, uint64_t seg_no)
{
    return get_u32(h) == WAL_MAGIC && get_u32(h + 4) == WAL_FORMAT_VERSION &&
           get_u64(h + 8) == seg_no && get_u64(h + 24) == XXH3_64bits(h, 24);
}

/* ------------------------------------------------------------------- I/O */

static lsm_status write_error(const char *what, size_t len, uint64_t offset, int err)
{
    return lsm_fail(LSM_IO, "wal %s: write of %zu bytes at offset %" PRIu64 ": %s", what, len,
                    offset, err ? strerror(err) : "no progress");
}

/* Drops the first `done` bytes from iov[0..*cnt), in place. */
static struct iovec *skip_written(struct iovec *iov, int *cnt, size_t done)
{
    while (*cnt > 0 && done >= iov->iov_len) {
        done -= iov->iov_len;
        iov++;
        (*cnt)--;
    }
    if (*cnt > 0) {
        iov->iov_base = (uint8_t *) iov->iov_base + done;
        iov->iov_len -= done;
    }
    return iov;
}

lsm_status wal_append_frame(int fd, uint64_t offset, const wal_frame *f, const void *payload,
                            size_t len, const char *what_for_errors)
{
    struct iovec vec[3] = {
        {(void *) f->header, WAL_RECORD_HEADER_SIZE},
        {(void *) payload, len},
        {(void *) f->trailer, WAL_RECORD_TRAILER_SIZE},
    };
    struct iovec *iov = vec;
    int cnt = 3;
    uint64_t at = offset;
    while (cnt > 0) {
        ssize_t n = pwritev(fd, iov, cnt, (off_t) at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return write_error(what_for_errors, wal_record_size(len), offset, n < 0 ? errno : 0);
        at += (uint64_t) n;
        iov = skip_written(iov, &cnt, (size_t) n);
    }
    return LSM_OK;
}

lsm_status wal_sync(int fd)
{
    if (fdatasync(fd) != 0)
        return lsm_fail(LSM_IO, "wal: fdatasync of segment fd %d: %s", fd, strerror(errno));
    return LSM_OK;
}

/* Reads exactly len bytes at offset; *got tells how many if the file ends. */
static lsm_status read_at(int fd, uint8_t *buf, size_t len, uint64_t offset, size_t *got,
                          const char *path)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, (off_t) (offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return lsm_fail(LSM_IO, "wal %s: read at offset %" PRIu64 ": %s", path,
                            offset + done, strerror(errno));
        if (n == 0)
            break;
        done += (size_t) n;
    }
    *got = done;
    return LSM_OK;
}

/* ------------------------------------------------------------- segments */

lsm_status wal_segment_create(const char *dir, uint64_t seg_no, uint64_t prev_last_seq, int *fd_out,
                              uint64_t *data_start)
{
    char path[WAL_PATH_MAX];
    lsm_status st = wal_segment_path(path, sizeof path, dir, seg_no);
    if (st != LSM_OK)
        return st;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return lsm_fail(LSM_IO, "wal: create %s: %s", path, strerror(errno));
    uint8_t header[WAL_SEGMENT_HEADER_SIZE];
    encode_segment_header(header, seg_no, prev_last_seq);
    st = file_write_at(fd, header, sizeof header, 0, path);
    if (st == LSM_OK && fsync(fd) != 0)
        st = lsm_fail(LSM_IO, "wal: fsync %s: %s", path, strerror(errno));
    if (st == LSM_OK)
        st = fsync_dir(dir);
    if (st != LSM_OK) {
        close(fd);
        unlink(path);   /* a half-made segment would stop every later replay */
        return st;
    }
    *fd_out = fd;
    *data_start = WAL_SEGMENT_HEADER_SIZE;
    return LSM_OK;
}

lsm_status wal_segment_open(const char *dir, uint64_t seg_no, int *fd_out)
{
    char path[WAL_PATH_MAX];
    lsm_status st = wal_segment_path(path, sizeof path, dir, seg_no);
    if (st != LSM_OK)
        return st;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return lsm_fail(LSM_IO, "wal: open %s: %s", path, strerror(errno));
    uint8_t header[WAL_SEGMENT_HEADER_SIZE];
    size_t got;
    st = read_at(fd, header, sizeof header, 0, &got, path);
    if (st == LSM_OK && (got != sizeof header || !segment_header_valid(header, seg_no)))
        st = lsm_fail(LSM_CORRUPT, "wal %s: bad segment header", path);
    if (st != LSM_OK) {
        close(fd);
        return st;
    }
    *fd_out = fd;
    return LSM_OK;
}

/* Parses "wal-<16 digits>.log" exactly. */
static bool parse_segment_name(const char *name, uint64_t *seg_no)
{
    if (strlen(name) != 4 + 16 + 4 || memcmp(name, "wal-", 4) != 0 ||
        memcmp(name + 20, ".log", 4) != 0)
        return false;
    uint64_t v = 0;
    for (int i = 4; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (uint64_t) (name[i] - '0');
    }
    *seg_no = v;
    return true;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return (x > y) - (x < y);
}

lsm_status wal_list_segments(const char *dir, uint64_t **segs, size_t *n)
{
    *segs = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return lsm_fail(LSM_IO, "wal: open directory %s: %s", dir, strerror(errno));
    uint64_t *list = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    lsm_status st = LSM_OK;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        uint64_t seg;
        if (!parse_segment_name(de->d_name, &seg))
            continue;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            uint64_t *grown = realloc(list, ncap * sizeof *grown);
            if (!grown) {
                st = lsm_fail(LSM_NO_MEMORY, "wal: listing %s: out of memory", dir);
                break;
            }
            list = grown;
            cap = ncap;
        }
        list[count++] = seg;
        errno = 0;
    }
    if (st == LSM_OK && errno != 0)
        st = lsm_fail(LSM_IO, "wal: read directory %s: %s", dir, strerror(errno));
    closedir(d);
    if (st != LSM_OK) {
        free(list);
        return st;
    }
    if (count > 1)
        qsort(list, count, sizeof *list, compare_u64);
    *segs = list;
    *n = count;
    return LSM_OK;
}

static lsm_status unlink_segment(const char *dir, uint64_t seg_no)
{
    char path[WAL_PATH_MAX];
    lsm_status st = wal_segment_path(path, sizeof path, dir, seg_no);
    if (st != LSM_OK)
        return st;
    if (unlink(path) != 0 && errno != ENOENT)   /* ENOENT: already gone */
        return lsm_fail(LSM_IO, "wal: delete %s: %s", path, strerror(errno));
    return LSM_OK;
}

/* Unlinks the listed segments in [lo, hi), then fsyncs dir if any went. */
static lsm_status delete_segments_in(const char *dir, uint64_t lo, uint64_t hi)
{
    uint64_t *segs;
    size_t n;
    lsm_status st = wal_list_segments(dir, &segs, &n);
    if (st != LSM_OK)
        return st;
    bool deleted = false;
    for (size_t i = 0; i < n && st == LSM_OK; i++) {
        if (segs[i] >= lo && segs[i] < hi) {
            st = unlink_segment(dir, segs[i]);
            deleted = true;
        }
    }
    free(segs);
    if (st == LSM_OK && deleted)
        st = fsync_dir(dir);
    return st;
}

lsm_status wal_delete_segments_below(const char *dir, uint64_t seg_no)
{
    return delete_segments_in(dir, 0, seg_no);
}

lsm_status wal_discard_from(const char *dir, uint64_t seg_no, uint64_t offset)
{
    if (offset <= WAL_SEGMENT_HEADER_SIZE)
        return delete_segments_in(dir, seg_no, UINT64_MAX);
    char path[WAL_PATH_MAX];
    lsm_status st = wal_segment_path(path, sizeof path, dir, seg_no);
    if (st != LSM_OK)
        return st;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return lsm_fail(LSM_IO, "wal: open %s: %s", path, strerror(errno));
    if (ftruncate(fd, (off_t) offset) != 0 || fsync(fd) != 0)
        st = lsm_fail(LSM_IO, "wal: truncate %s to %" PRIu64 ": %s", path, offset, strerror(errno));
    close(fd);
    if (st != LSM_OK)
        return st;
    return delete_segments_in(dir, seg_no + 1, UINT64_MAX);
}

/* --------------------------------------------------------------- replay */

/* A window [buf_off, buf_off + buf_len) of one open segment. */
typedef struct seg_reader {
    int fd;
    const char *path;
    uint64_t size;        /* file size at open; nothing past it is read */
    uint8_t *buf;
    size_t cap;
    uint64_t buf_off;
    size_t buf_len;
} seg_reader;

/* Points *out at bytes [pos, pos + need) of the segment, reading in chunks
 * of at least WAL_READ_CHUNK.  Caller guarantees pos + need <= r->size, so
 * `need` (and the buffer) are bounded by the file size. */
static lsm_status reader_fetch(seg_reader *r, uint64_t pos, size_t need, const uint8_t **out)
{
    if (pos >= r->buf_off && pos + need <= r->buf_off + r->buf_len) {
        *out = r->buf + (pos - r->buf_off);
        return LSM_OK;
    }
    uint64_t left = r->size - pos;
    size_t want = need > WAL_READ_CHUNK ? need : WAL_READ_CHUNK;
    if (want > left)
        want = (size_t) left;
    if (want > r->cap) {
        uint8_t *grown = realloc(r->buf, want);
        if (!grown)
            return lsm_fail(LSM_NO_MEMORY, "wal %s: no memory for a %zu-byte read", r->path, want);
        r->buf = grown;
        r->cap = want;
    }
    size_t got;
    r->buf_len = 0;
    lsm_status st = read_at(r->fd, r->buf, want, pos, &got, r->path);
    if (st != LSM_OK)
        return st;
    r->buf_off = pos;
    r->buf_len = got;
    if (got < need)
        return lsm_fail(LSM_IO, "wal %s: file shrank during replay (offset %" PRIu64 ")",
                        r->path, pos + got);
    *out = r->buf;
    return LSM_OK;
}

/* The decoded header of one record frame. */
typedef struct wal_record_header {
    uint32_t len, count;
    uint64_t tag, first_seq;
    uint8_t kind;
} wal_record_header;

static void decode_record_header(const uint8_t *h, wal_record_header *rh)
{
    rh->len = get_u32(h);
    rh->count = get_u32(h + 4);
    rh->tag = get_u64(h + 8);
    rh->first_seq = get_u64(h + 16);
    rh->kind = h[24];
}

/* True if a frame with this header fits in the file from pos on. */
static bool frame_fits(const seg_reader *r, uint64_t pos, const wal_record_header *rh)
{
    return rh->len <= WAL_MAX_PAYLOAD && wal_record_size(rh->len) <= r->size - pos;
}

/* A checksum-verified frame must also make sense. */
static bool record_sane(const uint8_t *h, const wal_record_header *rh)
{
    if (h[25] || h[26] || h[27])
        return false;
    if (rh->kind == WAL_RECORD_ABORT)
        return rh->len == 0;
    if (rh->kind == WAL_RECORD_INGEST)
        return rh->len == 8 && rh->count > 0 && rh->first_seq <= UINT64_MAX - (rh->count - 1);
    if (rh->kind != WAL_RECORD_BATCH)
        return false;
    return rh->count == 0 || rh->first_seq <= UINT64_MAX - (rh->count - 1);
}

static void note_seq(wal_replay_stats *st, const wal_record_header *rh)
{
    if ((rh->kind == WAL_RECORD_BATCH || rh->kind == WAL_RECORD_INGEST) && rh->count > 0) {
        uint64_t last = rh->first_seq + (rh->count - 1);
        if (last > st->last_seq)
            st->last_seq = last;
    }
}

/* Counts the frames in [pos, size) without verifying them (for the dropped
 * tally); an undelimitable remainder counts as one. */
static bool all_zero(const uint8_t *p, size_t n);
static lsm_status zero_to_end(seg_reader *r, uint64_t pos, bool *zero);

static lsm_status count_frames(seg_reader *r, uint64_t pos, uint64_t *frames)
{
    while (pos < r->size) {
        const uint8_t *h;
        wal_record_header rh;
        if (r->size - pos < WAL_RECORD_HEADER_SIZE) {
            (*frames)++;
            break;
        }
        lsm_status st = reader_fetch(r, pos, WAL_RECORD_HEADER_SIZE, &h);
        if (st != LSM_OK)
            return st;
        if (all_zero(h, WAL_RECORD_HEADER_SIZE)) {
            /* Zero padding ends the frames; non-zero bytes further on are an
             * undelimitable remainder, counted as one. */
            bool zero;
            if ((st = zero_to_end(r, pos, &zero)) != LSM_OK)
                return st;
            if (!zero)
                (*frames)++;
            break;
        }
        decode_record_header(h, &rh);
        (*frames)++;
        if (!frame_fits(r, pos, &rh))
            break;
        pos += wal_record_size(rh.len);
    }
    return LSM_OK;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Is [pos, size) all zero bytes (the padding of a zero-extended segment)? */
static lsm_status zero_to_end(seg_reader *r, uint64_t pos, bool *zero)
{
    *zero = true;
    while (pos < r->size && *zero) {
        size_t n = r->size - pos < 65536 ? (size_t) (r->size - pos) : 65536;
        const uint8_t *p;
        lsm_status st = reader_fetch(r, pos, n, &p);
        if (st != LSM_OK)
            return st;
        *zero = all_zero(p, n);
        pos += n;
    }
    return LSM_OK;
}

/* Replays the records of one segment from the first record on.  Sets
 * *stop_at to the offset of the first bad record, or r->size if none. */
static lsm_status replay_records(seg_reader *r, wal_record_fn fn, void *arg,
                                 wal_replay_stats *st, uint64_t *stop_at)
{
    uint64_t pos = WAL_SEGMENT_HEADER_SIZE;
    while (pos < r->size) {
        const uint8_t *rec;
        wal_record_header rh;
        *stop_at = pos;
        if (r->size - pos < WAL_RECORD_HEADER_SIZE)
            return LSM_OK;   /* torn header */
        lsm_status s = reader_fetch(r, pos, WAL_RECORD_HEADER_SIZE, &rec);
        if (s != LSM_OK)
            return s;
        if (all_zero(rec, WAL_RECORD_HEADER_SIZE)) {
            bool padding;
            if ((s = zero_to_end(r, pos, &padding)) != LSM_OK)
                return s;
            if (padding)
                *stop_at = r->size;  /* clean end: the rest is zero padding */
            return LSM_OK;
        }
        decode_record_header(rec, &rh);
        if (!frame_fits(r, pos, &rh))
            return LSM_OK;   /* torn payload, or a length beyond the file */
        size_t covered = WAL_RECORD_HEADER_SIZE + rh.len;
        if ((s = reader_fetch(r, pos, covered + WAL_RECORD_TRAILER_SIZE, &rec)) != LSM_OK)
            return s;
        if (get_u64(rec + covered) != XXH3_64bits(rec, covered) || !record_sane(rec, &rh))
            return LSM_OK;   /* corrupt */
        if ((s = fn(rh.kind, rh.tag, rh.first_seq, rh.count, rec + WAL_RECORD_HEADER_SIZE,
                    rh.len, arg)) != LSM_OK)
            return s;
        st->records++;
        note_seq(st, &rh);
        pos += covered + WAL_RECORD_TRAILER_SIZE;
    }
    *stop_at = r->size;
    return LSM_OK;
}

/* Opens segment seg_no into r and checks its header. */
static lsm_status reader_open(seg_reader *r, const char *path, uint64_t seg_no, bool *header_ok,
                              uint64_t *prev_last_seq)
{
    *prev_last_seq = 0;
    r->path = path;
    r->buf_off = r->buf_len = 0;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return lsm_fail(LSM_IO, "wal: open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(r->fd, &sb) != 0) {
        int err = errno;
        close(r->fd);
        return lsm_fail(LSM_IO, "wal: stat %s: %s", path, strerror(err));
    }
    r->size = (uint64_t) sb.st_size;
    const uint8_t *h;
    *header_ok = false;
    if (r->size < WAL_SEGMENT_HEADER_SIZE)
        return LSM_OK;
    lsm_status st = reader_fetch(r, 0, WAL_SEGMENT_HEADER_SIZE, &h);
    if (st != LSM_OK) {
        close(r->fd);
        return st;
    }
    *header_ok = segment_header_valid(h, seg_no);
    if (*header_ok)
        *prev_last_seq = get_u64(h + 16);
    return LSM_OK;
}

/* Adds [from, size) of r to the dropped tally. */
static lsm_status drop_rest(seg_reader *r, uint64_t from, bool header_ok, wal_replay_stats *st)
{
    if (from >= r->size)
        return LSM_OK;
    st->bytes_dropped += r->size - from;
    if (!header_ok) {
        st->records_dropped++;
        return LSM_OK;
    }
    if (from < WAL_SEGMENT_HEADER_SIZE)
        from = WAL_SEGMENT_HEADER_SIZE;
    return count_frames(r, from, &st->records_dropped);
}

static void mark_stop(wal_replay_stats *st, uint64_t seg, uint64_t offset)
{
    st->stopped = true;
    st->stop_seg = seg;
    st->stop_offset = offset;
}

/* Replays (or, after a stop, tallies as dropped) one segment.  `follows`:
 * an earlier segment was replayed in this run, so this one must continue it:
 * its header's prev_last_seq (the last seq the WAL held when it was
 * started) must have been reached, or records went missing at the end of
 * the earlier segment and replaying on would not be point in time. */
static lsm_status replay_segment(seg_reader *r, const char *dir, uint64_t seg_no, bool gap,
                                 bool follows, wal_record_fn fn, void *arg, wal_replay_stats *st)
{
    char path[WAL_PATH_MAX];
    bool header_ok = false;
    uint64_t prev_last_seq;
    lsm_status s = wal_segment_path(path, sizeof path, dir, seg_no);
    if (s != LSM_OK || (s = reader_open(r, path, seg_no, &header_ok, &prev_last_seq)) != LSM_OK)
        return s;
    bool short_before = follows && header_ok && prev_last_seq > st->last_seq;
    if (!st->stopped && (gap || !header_ok || short_before))
        mark_stop(st, seg_no, 0);
    if (st->stopped) {
        s = drop_rest(r, 0, header_ok, st);
    } else {
        uint64_t stop_at = 0;
        s = replay_records(r, fn, arg, st, &stop_at);
        if (s == LSM_OK && stop_at < r->size) {
            mark_stop(st, seg_no, stop_at);
            s = drop_rest(r, stop_at, true, st);
        }
    }
    close(r->fd);
    return s;
}

lsm_status wal_replay(const char *dir, uint64_t from_seg, wal_record_fn fn, void *arg,
                      wal_replay_stats *st)
{
    memset(st, 0, sizeof *st);
    uint64_t *segs;
    size_t n;
    lsm_status s = wal_list_segments(dir, &segs, &n);
    if (s != LSM_OK)
        return s;
    if (n > 0)
        st->max_seg = segs[n - 1];
    seg_reader r = {.fd = -1};
    bool first = true;
    uint64_t prev = 0;
    for (size_t i = 0; i < n && s == LSM_OK; i++) {
        if (segs[i] < from_seg)
            continue;
        bool gap = !first && segs[i] != prev + 1;
        s = replay_segment(&r, dir, segs[i], gap, !first, fn, arg, st);
        first = false;
        prev = segs[i];
    }
    free(r.buf);
    free(segs);
    return s;
}

lsm_status wal_zero_extend(int fd, uint64_t from, uint64_t to, const char *what_for_errors)
{
    static const uint8_t zeros[1 << 16];
    while (from < to) {
        size_t n = to - from < sizeof zeros ? (size_t) (to - from) : sizeof zeros;
        lsm_status st = file_write_at(fd, zeros, n, from, what_for_errors);
        if (st != LSM_OK)
            return st;
        from += n;
    }
    return LSM_OK;
}
