/* manifest.c — MANIFEST encoding, loading, appending and rewriting (manifest.h). */
#include "manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "coding.h"
#include "file_io.h"
#include "status.h"

/*
 * File:    header | record*
 * header:  u32 magic "FMAN" | u32 version | u64 XXH3_64bits(magic + version)
 * record:  u32 len | u32 low 32 bits of XXH3_64bits(len) | payload (len bytes)
 *          | u64 XXH3_64bits(len field + its check + payload)
 * The length has its own check so that a damaged length is reported as
 * corruption instead of looking like a torn final record.
 *
 * payload: fields, each a u8 tag then its value:
 *   NEXT_FILE_NO, LOG_NUMBER, LAST_SEQ   varint (at most once each)
 *   REMOVE_TABLE                         varint file_no
 *   ADD_TABLE                            a table_meta (see encode_table)
 */
#define MANIFEST_MAGIC 0x4E414D46u    /* "FMAN" little-endian */
#define MANIFEST_HEADER_SIZE 16u
#define RECORD_HEADER_SIZE 8u
#define RECORD_TRAILER_SIZE 8u
#define MANIFEST_PATH_MAX 4096
/* Largest encoded table: tag, 8 varints, 3 fixed i64, 2 bounds, flag. */
#define TABLE_ENCODED_MAX (1 + 8 * 10 + 3 * 8 + 2 * (10 + TABLE_BOUND_MAX) + 1)

enum manifest_field {
    FIELD_NEXT_FILE_NO = 1,
    FIELD_LOG_NUMBER = 2,
    FIELD_LAST_SEQ = 3,
    FIELD_ADD_TABLE = 4,
    FIELD_REMOVE_TABLE = 5
};

struct manifest {
    int fd;
    uint64_t size;
    uint8_t *buf;        /* encoding scratch */
    size_t cap;
    char dir[MANIFEST_PATH_MAX];
    char path[MANIFEST_PATH_MAX];
};

/* ------------------------------------------------------------------- I/O */

static lsm_status file_size_of(int fd, const char *path, uint64_t *size)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return lsm_fail(LSM_IO, "manifest %s: stat: %s", path, strerror(errno));
    *size = (uint64_t) sb.st_size;
    return LSM_OK;
}

static lsm_status manifest_path(char *buf, const char *dir, const char *name)
{
    int n = snprintf(buf, MANIFEST_PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= MANIFEST_PATH_MAX)
        return lsm_fail(LSM_INVALID, "manifest: directory path %s is too long", dir);
    return LSM_OK;
}

/* Writes data to <path>.tmp, fsyncs it, renames it over path, fsyncs dir. */
static lsm_status replace_file(const char *dir, const char *path, const uint8_t *data, size_t len)
{
    char tmp[MANIFEST_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return lsm_fail(LSM_IO, "manifest: create %s: %s", tmp, strerror(errno));
    lsm_status st = file_write_at(fd, data, len, 0, tmp);
    if (st == LSM_OK && fsync(fd) != 0)
        st = lsm_fail(LSM_IO, "manifest: fsync %s: %s", tmp, strerror(errno));
    close(fd);
    if (st == LSM_OK && rename(tmp, path) != 0)
        st = lsm_fail(LSM_IO, "manifest: rename %s to %s: %s", tmp, path, strerror(errno));
    if (st != LSM_OK) {
        unlink(tmp);
        return st;
    }
    return fsync_dir(dir);
}

/* -------------------------------------------------------------- encoding */

static void encode_file_header(uint8_t *h)
{
    put_u32(h, MANIFEST_MAGIC);
    put_u32(h + 4, MANIFEST_FORMAT_VERSION);
    put_u64(h + 8, XXH3_64bits(h, 8));
}

static uint32_t length_check(const uint8_t *len_field)
{
    return (uint32_t) XXH3_64bits(len_field, 4);
}

static size_t edit_encoded_bound(const manifest_edit *e)
{
    return 3 * 11 + (size_t) e->n_removed * 11 + (size_t) e->n_added * TABLE_ENCODED_MAX;
}

static uint8_t *encode_table(uint8_t *p, const table_meta *t)
{
    *p++ = FIELD_ADD_TABLE;
    const uint64_t counts[8] = {t->file_no,          t->file_size,   t->entry_count,
                                t->point_tombstones, t->range_tombstones,
                                t->raw_bytes,        t->min_seq,     t->max_seq};
    for (int i = 0; i < 8; i++)
        p += put_varint(p, counts[i]);
    put_i64(p, t->min_ts);
    put_i64(p + 8, t->max_ts);
    put_i64(p + 16, t->max_expire_at);
    p += 24;
    p += put_varint(p, t->smallest_len);
    memcpy(p, t->smallest, t->smallest_len);
    p += t->smallest_len;
    p += put_varint(p, t->largest_len);
    memcpy(p, t->largest, t->largest_len);
    p += t->largest_len;
    *p++ = t->largest_truncated ? 1 : 0;
    return p;
}

static uint8_t *encode_scalar(uint8_t *p, bool has, uint8_t tag, uint64_t v)
{
    if (!has)
        return p;
    *p++ = tag;
    return p + put_varint(p, v);
}

/* Encodes e as payload at p (edit_encoded_bound bytes available); scalars,
 * then removals, then additions: the order the loader applies them in. */
static lsm_status encode_edit(const manifest_edit *e, uint8_t *p, size_t *len, const char *path)
{
    uint8_t *start = p;
    p = encode_scalar(p, e->has_next_file_no, FIELD_NEXT_FILE_NO, e->next_file_no);
    p = encode_scalar(p, e->has_log_number, FIELD_LOG_NUMBER, e->log_number);
    p = encode_scalar(p, e->has_last_seq, FIELD_LAST_SEQ, e->last_seq);
    for (uint32_t i = 0; i < e->n_removed; i++)
        p = encode_scalar(p, true, FIELD_REMOVE_TABLE, e->removed[i]);
    for (uint32_t i = 0; i < e->n_added; i++) {
        const table_meta *t = &e->added[i];
        if (t->smallest_len > TABLE_BOUND_MAX || t->largest_len > TABLE_BOUND_MAX)
            return lsm_fail(LSM_INVALID, "manifest %s: table %" PRIu64 " key bound over %d bytes",
                            path, t->file_no, TABLE_BOUND_MAX);
        p = encode_table(p, t);
    }
    *len = (size_t) (p - start);
    return LSM_OK;
}

/* Frames the payload at rec + RECORD_HEADER_SIZE; returns the record size. */
static size_t frame_record(uint8_t *rec, size_t payload_len)
{
    put_u32(rec, (uint32_t) payload_len);
    put_u32(rec + 4, length_check(rec));
    size_t covered = RECORD_HEADER_SIZE + payload_len;
    put_u64(rec + covered, XXH3_64bits(rec, covered));
    return covered + RECORD_TRAILER_SIZE;
}

static lsm_status reserve(manifest *m, size_t need)
{
    if (need <= m->cap)
        return LSM_OK;
    uint8_t *grown = realloc(m->buf, need);
    if (!grown)
        return lsm_fail(LSM_NO_MEMORY, "manifest %s: no memory for a %zu-byte edit", m->path, need);
    m->buf = grown;
    m->cap = need;
    return LSM_OK;
}

/* Encodes e as one framed record at m->buf + at; *rec_len is its size. */
static lsm_status encode_record(manifest *m, size_t at, const manifest_edit *e, size_t *rec_len)
{
    size_t bound = edit_encoded_bound(e);
    if (bound > MANIFEST_MAX_RECORD)
        return lsm_fail(LSM_TOO_LARGE, "manifest %s: edit of up to %zu bytes exceeds %u",
                        m->path, bound, MANIFEST_MAX_RECORD);
    lsm_status st = reserve(m, at + RECORD_HEADER_SIZE + bound + RECORD_TRAILER_SIZE);
    if (st != LSM_OK)
        return st;
    size_t payload_len = 0;
    if ((st = encode_edit(e, m->buf + at + RECORD_HEADER_SIZE, &payload_len, m->path)) != LSM_OK)
        return st;
    *rec_len = frame_record(m->buf + at, payload_len);
    return LSM_OK;
}

/* -------------------------------------------------------------- decoding */

typedef struct edit_cursor {
    const uint8_t *p, *end;
    const char *path;
    uint64_t rec_off;    /* file offset of the record, for messages */
} edit_cursor;

static lsm_status malformed(const edit_cursor *c, const char *what)
{
    return lsm_fail(LSM_CORRUPT, "manifest %s: malformed edit in record at offset %" PRIu64 ": %s",
                    c->path, c->rec_off, what);
}

static bool take_varint(edit_cursor *c, uint64_t *v)
{
    const uint8_t *p = get_varint(c->p, c->end, v);
    if (!p)
        return false;
    c->p = p;
    return true;
}

static bool take_i64(edit_cursor *c, int64_t *v)
{
    if (c->end - c->p < 8)
        return false;
    *v = get_i64(c->p);
    c->p += 8;
    return true;
}

static bool take_bound(edit_cursor *c, uint16_t *len, uint8_t *out)
{
    uint64_t n;
    if (!take_varint(c, &n) || n > TABLE_BOUND_MAX || (uint64_t) (c->end - c->p) < n)
        return false;
    *len = (uint16_t) n;
    memcpy(out, c->p, n);
    c->p += n;
    return true;
}

static bool decode_table(edit_cursor *c, table_meta *t)
{
    memset(t, 0, sizeof *t);
    uint64_t *counts[8] = {&t->file_no,          &t->file_size,   &t->entry_count,
                           &t->point_tombstones, &t->range_tombstones,
                           &t->raw_bytes,        &t->min_seq,     &t->max_seq};
    for (int i = 0; i < 8; i++)
        if (!take_varint(c, counts[i]))
            return false;
    if (!take_i64(c, &t->min_ts) || !take_i64(c, &t->max_ts) || !take_i64(c, &t->max_expire_at))
        return false;
    if (!take_bound(c, &t->smallest_len, t->smallest) || !take_bound(c, &t->largest_len, t->largest))
        return false;
    if (c->p >= c->end || *c->p > 1)
        return false;
    t->largest_truncated = *c->p++ == 1;
    return true;
}

static int64_t find_table(const manifest_state *st, uint64_t file_no)
{
    for (uint32_t i = 0; i < st->n_tables; i++)
        if (st->tables[i].file_no == file_no)
            return i;
    return -1;
}

static lsm_status add_table(manifest_state *st, const table_meta *t, const edit_cursor *c,
                            uint32_t *cap)
{
    if (find_table(st, t->file_no) >= 0)
        return lsm_fail(LSM_CORRUPT, "manifest %s: record at offset %" PRIu64
                        " adds table %" PRIu64 " that is already live",
                        c->path, c->rec_off, t->file_no);
    if (st->n_tables == *cap) {
        if (*cap >= UINT32_MAX / 2)
            return malformed(c, "too many tables");
        uint32_t ncap = *cap ? *cap * 2 : 16;
        table_meta *grown = realloc(st->tables, (size_t) ncap * sizeof *grown);
        if (!grown)
            return lsm_fail(LSM_NO_MEMORY, "manifest %s: no memory for %u tables", c->path, ncap);
        st->tables = grown;
        *cap = ncap;
    }
    st->tables[st->n_tables++] = *t;
    return LSM_OK;
}

static lsm_status remove_table(manifest_state *st, uint64_t file_no, const edit_cursor *c)
{
    int64_t i = find_table(st, file_no);
    if (i < 0)
        return lsm_fail(LSM_CORRUPT, "manifest %s: record at offset %" PRIu64
                        " removes unknown table %" PRIu64, c->path, c->rec_off, file_no);
    memmove(&st->tables[i], &st->tables[i + 1], (st->n_tables - (uint32_t) i - 1) * sizeof *st->tables);
    st->n_tables--;
    return LSM_OK;
}

/* Applies one decoded field to st. */
static lsm_status apply_field(manifest_state *st, uint8_t tag, edit_cursor *c, uint32_t *cap,
                              unsigned *seen)
{
    uint64_t v;
    table_meta t;
    if (tag >= FIELD_NEXT_FILE_NO && tag <= FIELD_LAST_SEQ) {
        if (*seen & (1u << tag))
            return malformed(c, "a counter field appears twice");
        *seen |= 1u << tag;
    }
    switch (tag) {
    case FIELD_NEXT_FILE_NO:
    case FIELD_LOG_NUMBER:
    case FIELD_LAST_SEQ:
        if (!take_varint(c, &v))
            return malformed(c, "truncated counter");
        if (tag == FIELD_NEXT_FILE_NO)
            st->next_file_no = v;
        else if (tag == FIELD_LOG_NUMBER)
            st->log_number = v;
        else
            st->last_seq = v;
        return LSM_OK;
    case FIELD_REMOVE_TABLE:
        if (!take_varint(c, &v))
            return malformed(c, "truncated removal");
        return remove_table(st, v, c);
    case FIELD_ADD_TABLE:
        if (!decode_table(c, &t))
            return malformed(c, "bad table description");
        return add_table(st, &t, c, cap);
    default:
        return malformed(c, "unknown field tag");
    }
}

/* Everything the loader carries from record to record. */
typedef struct load_ctx {
    manifest_state *st;
    uint32_t cap;        /* allocated st->tables slots */
} load_ctx;

static lsm_status apply_edit(const uint8_t *payload, size_t len, uint64_t rec_off,
                             const char *path, void *arg)
{
    load_ctx *lc = arg;
    edit_cursor c = {payload, payload + len, path, rec_off};
    unsigned seen = 0;
    while (c.p < c.end) {
        uint8_t tag = *c.p++;
        lsm_status st = apply_field(lc->st, tag, &c, &lc->cap, &seen);
        if (st != LSM_OK)
            return st;
    }
    return LSM_OK;
}

/* ---------------------------------------------------------------- scanning */

typedef lsm_status (*payload_fn)(const uint8_t *payload, size_t len, uint64_t rec_off,
                                 const char *path, void *arg);

/* True if [off, size) of the file is all zero bytes. */
static lsm_status tail_is_zero(int fd, const char *path, uint64_t off, uint64_t size, bool *zero)
{
    uint8_t chunk[4096];
    *zero = true;
    while (off < size && *zero) {
        size_t n = size - off < sizeof chunk ? (size_t) (size - off) : sizeof chunk;
        lsm_status st = file_read_at(fd, chunk, n, off, LSM_IO, path);
        if (st != LSM_OK)
            return st;
        for (size_t i = 0; i < n; i++)
            if (chunk[i]) {
                *zero = false;
                break;
            }
        off += n;
    }
    return LSM_OK;
}

static lsm_status check_file_header(int fd, const char *path, uint64_t size)
{
    uint8_t h[MANIFEST_HEADER_SIZE];
    if (size < MANIFEST_HEADER_SIZE)
        return lsm_fail(LSM_CORRUPT, "manifest %s: %" PRIu64 " bytes, shorter than its header",
                        path, size);
    lsm_status st = file_read_at(fd, h, sizeof h, 0, LSM_IO, path);
    if (st != LSM_OK)
        return st;
    if (get_u32(h) != MANIFEST_MAGIC || get_u64(h + 8) != XXH3_64bits(h, 8))
        return lsm_fail(LSM_CORRUPT, "manifest %s: bad magic or header checksum", path);
    if (get_u32(h + 4) != MANIFEST_FORMAT_VERSION)
        return lsm_fail(LSM_CORRUPT, "manifest %s: format version %u, expected %u", path,
                        get_u32(h + 4), MANIFEST_FORMAT_VERSION);
    return LSM_OK;
}

typedef enum record_verdict { RECORD_OK, RECORD_TORN } record_verdict;

/* Reads and verifies the record at pos into *buf; RECORD_TORN if the file
 * ends inside it or is zero from pos on. */
static lsm_status read_record(int fd, const char *path, uint64_t pos, uint64_t size,
                              uint8_t **buf, size_t *cap, size_t *payload_len,
                              record_verdict *verdict)
{
    uint8_t h[RECORD_HEADER_SIZE];
    uint64_t left = size - pos;
    *verdict = RECORD_TORN;
    if (left < RECORD_HEADER_SIZE)
        return LSM_OK;
    lsm_status st = file_read_at(fd, h, sizeof h, pos, LSM_IO, path);
    if (st != LSM_OK)
        return st;
    uint32_t len = get_u32(h);
    if (get_u32(h + 4) != length_check(h)) {
        bool zero;
        if ((st = tail_is_zero(fd, path, pos, size, &zero)) != LSM_OK || zero)
            return st;
        return lsm_fail(LSM_CORRUPT, "manifest %s: bad record length check at offset %" PRIu64,
                        path, pos);
    }
    if (len > MANIFEST_MAX_RECORD)
        return lsm_fail(LSM_CORRUPT, "manifest %s: record at offset %" PRIu64 " of %u bytes",
                        path, pos, len);
    size_t rec_len = RECORD_HEADER_SIZE + (size_t) len + RECORD_TRAILER_SIZE;
    if (rec_len > left)
        return LSM_OK;
    if (rec_len > *cap) {
        uint8_t *grown = realloc(*buf, rec_len);
        if (!grown)
            return lsm_fail(LSM_NO_MEMORY, "manifest %s: no memory for a %zu-byte record", path,
                            rec_len);
        *buf = grown;
        *cap = rec_len;
    }
    if ((st = file_read_at(fd, *buf, rec_len, pos, LSM_IO, path)) != LSM_OK)
        return st;
    size_t covered = RECORD_HEADER_SIZE + len;
    if (get_u64(*buf + covered) != XXH3_64bits(*buf, covered))
        return lsm_fail(LSM_CORRUPT, "manifest %s: checksum mismatch in record at offset %" PRIu64,
                        path, pos);
    *payload_len = len;
    *verdict = RECORD_OK;
    return LSM_OK;
}

/* Verifies the whole file, passing each record's payload to fn (if any).
 * *valid_end is the end of the last good record; *dropped is 1 if a torn
 * final record follows it. */
static lsm_status scan_file(int fd, const char *path, payload_fn fn, void *arg,
                            uint64_t *valid_end, uint64_t *dropped)
{
    uint64_t size = 0;
    lsm_status st = file_size_of(fd, path, &size);
    if (st != LSM_OK || (st = check_file_header(fd, path, size)) != LSM_OK)
        return st;
    uint8_t *buf = NULL;
    size_t cap = 0;
    uint64_t pos = MANIFEST_HEADER_SIZE;
    *dropped = 0;
    while (pos < size) {
        size_t len = 0;
        record_verdict verdict;
        st = read_record(fd, path, pos, size, &buf, &cap, &len, &verdict);
        if (st != LSM_OK)
            break;
        if (verdict == RECORD_TORN) {
            *dropped = 1;
            break;
        }
        if (fn && (st = fn(buf + RECORD_HEADER_SIZE, len, pos, path, arg)) != LSM_OK)
            break;
        pos += RECORD_HEADER_SIZE + len + RECORD_TRAILER_SIZE;
    }
    free(buf);
    *valid_end = pos;
    return st;
}

/* ------------------------------------------------------------------ public */

static void state_init(manifest_state *st)
{
    memset(st, 0, sizeof *st);
    st->next_file_no = 1;
}

void manifest_state_free(manifest_state *st)
{
    if (!st)
        return;
    free(st->tables);
    state_init(st);
}

lsm_status manifest_load(const char *dir, manifest_state *st)
{
    char path[MANIFEST_PATH_MAX];
    state_init(st);
    lsm_status s = manifest_path(path, dir, "MANIFEST");
    if (s != LSM_OK)
        return s;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return LSM_OK;
        return lsm_fail(LSM_IO, "manifest: open %s: %s", path, strerror(errno));
    }
    load_ctx lc = {st, 0};
    uint64_t end;
    s = scan_file(fd, path, apply_edit, &lc, &end, &st->records_dropped);
    close(fd);
    if (s != LSM_OK) {
        manifest_state_free(st);
        return s;
    }
    st->found = true;
    return LSM_OK;
}

/* Opens path read-write, creating a header-only file atomically if absent. */
static lsm_status open_or_create(manifest *m)
{
    m->fd = open(m->path, O_RDWR | O_CLOEXEC);
    if (m->fd >= 0)
        return LSM_OK;
    if (errno != ENOENT)
        return lsm_fail(LSM_IO, "manifest: open %s: %s", m->path, strerror(errno));
    uint8_t header[MANIFEST_HEADER_SIZE];
    encode_file_header(header);
    lsm_status st = replace_file(m->dir, m->path, header, sizeof header);
    if (st != LSM_OK)
        return st;
    m->fd = open(m->path, O_RDWR | O_CLOEXEC);
    if (m->fd < 0)
        return lsm_fail(LSM_IO, "manifest: open %s: %s", m->path, strerror(errno));
    return LSM_OK;
}

/* Cuts a torn final record so the next append follows the last good one. */
static lsm_status cut_torn_tail(manifest *m)
{
    uint64_t end, dropped;
    lsm_status st = scan_file(m->fd, m->path, NULL, NULL, &end, &dropped);
    if (st != LSM_OK)
        return st;
    if (dropped && (ftruncate(m->fd, (off_t) end) != 0 || fsync(m->fd) != 0))
        return lsm_fail(LSM_IO, "manifest %s: truncate torn record at %" PRIu64 ": %s", m->path,
                        end, strerror(errno));
    m->size = end;
    return LSM_OK;
}

lsm_status manifest_open(const char *dir, manifest **out)
{
    *out = NULL;
    manifest *m = calloc(1, sizeof *m);
    if (!m)
        return lsm_fail(LSM_NO_MEMORY, "manifest: no memory for a handle on %s", dir);
    m->fd = -1;
    lsm_status st = manifest_path(m->path, dir, "MANIFEST");
    snprintf(m->dir, sizeof m->dir, "%s", dir);   /* fits: shorter than path */
    if (st == LSM_OK)
        st = open_or_create(m);
    if (st == LSM_OK)
        st = cut_torn_tail(m);
    if (st != LSM_OK) {
        manifest_close(m);
        return st;
    }
    *out = m;
    return LSM_OK;
}

/* Re-targets m->fd at the live MANIFEST if another handle rewrote it. */
static lsm_status follow_live_file(manifest *m)
{
    struct stat live, mine;
    if (stat(m->path, &live) != 0)
        return lsm_fail(LSM_IO, "manifest: stat %s: %s", m->path, strerror(errno));
    if (fstat(m->fd, &mine) != 0)
        return lsm_fail(LSM_IO, "manifest %s: stat: %s", m->path, strerror(errno));
    if (live.st_ino == mine.st_ino && live.st_dev == mine.st_dev)
        return LSM_OK;
    int fd = open(m->path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return lsm_fail(LSM_IO, "manifest: open %s: %s", m->path, strerror(errno));
    close(m->fd);
    m->fd = fd;
    return LSM_OK;
}

lsm_status manifest_append(manifest *m, const manifest_edit *e)
{
    size_t rec_len;
    uint64_t end;
    lsm_status st = encode_record(m, 0, e, &rec_len);
    if (st != LSM_OK || (st = follow_live_file(m)) != LSM_OK ||
        (st = file_size_of(m->fd, m->path, &end)) != LSM_OK)
        return st;
    st = file_write_at(m->fd, m->buf, rec_len, end, m->path);
    if (st == LSM_OK && fdatasync(m->fd) != 0)
        st = lsm_fail(LSM_IO, "manifest %s: fdatasync: %s", m->path, strerror(errno));
    if (st != LSM_OK) {
        /* Best effort: if this fails too, the partial record stays and
         * manifest_open cuts it at the next start. */
        int ignored = ftruncate(m->fd, (off_t) end);
        (void) ignored;
        return st;
    }
    m->size = end + rec_len;
    return LSM_OK;
}

lsm_status manifest_rewrite(manifest *m, const manifest_state *s)
{
    manifest_edit snapshot = {
        .has_next_file_no = true, .next_file_no = s->next_file_no,
        .has_log_number = true,   .log_number = s->log_number,
        .has_last_seq = true,     .last_seq = s->last_seq,
        .n_added = s->n_tables,   .added = s->tables,
    };
    size_t rec_len;
    lsm_status st = encode_record(m, MANIFEST_HEADER_SIZE, &snapshot, &rec_len);
    if (st != LSM_OK)
        return st;
    encode_file_header(m->buf);
    size_t total = MANIFEST_HEADER_SIZE + rec_len;
    if ((st = replace_file(m->dir, m->path, m->buf, total)) != LSM_OK)
        return st;
    /* MANIFEST is now the new file; until reopened, appends follow it anyway
     * (follow_live_file). */
    int fd = open(m->path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return lsm_fail(LSM_IO, "manifest: reopen %s: %s", m->path, strerror(errno));
    close(m->fd);
    m->fd = fd;
    m->size = total;
    return LSM_OK;
}

uint64_t manifest_size(const manifest *m) { return m ? m->size : 0; }

void manifest_close(manifest *m)
{
    if (!m)
        return;
    if (m->fd >= 0)
        close(m->fd);
    free(m->buf);
    free(m);
}
