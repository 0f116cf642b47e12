/*
 * sst_reader.c — opening a table (footer) and reading its blocks (trailer,
 * checksum, decompression).  The footer codec lives here too, so the one
 * place that verifies the format also defines it.
 *
 * Footer (SST_FOOTER_SIZE = 261 bytes, at the end of the file):
 *     0 version u32
 *     4 index handle      (offset u64, size u32)
 *    16 filter handle
 *    28 tombstone handle
 *    40 entry_count, point_tombstones, range_tombstones, raw_bytes,
 *       min_seq, max_seq (u64 each)
 *    88 min_ts, max_ts, max_expire_at (i64 each)
 *   112 smallest_len u16, largest_len u16, flags u8 (bit 0 largest
 *       truncated, bit 1 uniform seq: version 3 only)
 *   117 smallest[64], largest[64]
 *   245 checksum u64 = XXH3_64bits(footer[0..245))
 *   253 magic u64
 */
#include "sst.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "coding.h"
#include "file_io.h"
#include "status.h"

#define FOOTER_LARGEST_TRUNCATED 0x01
#define FOOTER_UNIFORM_SEQ 0x02
#define FOOTER_CHECKSUM_AT 245
#define FOOTER_MAGIC_AT    253

_Static_assert(FOOTER_MAGIC_AT + 8 == SST_FOOTER_SIZE, "footer layout");
_Static_assert(117 + 2 * TABLE_BOUND_MAX == FOOTER_CHECKSUM_AT, "footer layout");

struct sst_table {
    int fd;
    char *path;
    uint64_t data_end;   /* file size minus the footer: blocks lie below */
    sst_footer footer;   /* footer.meta also carries file_no and file_size */
};

/* ------------------------------------------------------------ footer */

static uint8_t *put_handle(uint8_t *p, sst_handle h)
{
    put_u64(p, h.offset);
    put_u32(p + 8, h.size);
    return p + 12;
}

static const uint8_t *get_handle(const uint8_t *p, sst_handle *h)
{
    h->offset = get_u64(p);
    h->size = get_u32(p + 8);
    return p + 12;
}

void sst_footer_encode(const sst_footer *f, uint8_t out[SST_FOOTER_SIZE])
{
    const table_meta *m = &f->meta;
    uint8_t *p = out;
    memset(out, 0, SST_FOOTER_SIZE);
    put_u32(p, f->version), p += 4;
    p = put_handle(p, f->index);
    p = put_handle(p, f->filter);
    p = put_handle(p, f->tombstones);
    const uint64_t u[6] = {m->entry_count, m->point_tombstones, m->range_tombstones,
                           m->raw_bytes, m->min_seq, m->max_seq};
    for (int i = 0; i < 6; i++)
        put_u64(p, u[i]), p += 8;
    const int64_t s[3] = {m->min_ts, m->max_ts, m->max_expire_at};
    for (int i = 0; i < 3; i++)
        put_i64(p, s[i]), p += 8;
    put_u16(p, m->smallest_len), p += 2;
    put_u16(p, m->largest_len), p += 2;
    *p++ = (m->largest_truncated ? FOOTER_LARGEST_TRUNCATED : 0) |
           (f->uniform_seq ? FOOTER_UNIFORM_SEQ : 0);
    memcpy(p, m->smallest, TABLE_BOUND_MAX), p += TABLE_BOUND_MAX;
    memcpy(p, m->largest, TABLE_BOUND_MAX), p += TABLE_BOUND_MAX;
    put_u64(out + FOOTER_CHECKSUM_AT, XXH3_64bits(out, FOOTER_CHECKSUM_AT));
    put_u64(out + FOOTER_MAGIC_AT, SST_MAGIC);
}

lsm_status sst_footer_decode(const uint8_t in[SST_FOOTER_SIZE], const char *path, sst_footer *f)
{
    if (get_u64(in + FOOTER_MAGIC_AT) != SST_MAGIC)
        return lsm_fail(LSM_CORRUPT, "sst %s: bad magic number (not an SST file)", path);
    const uint8_t *p = in;
    f->version = get_u32(p), p += 4;
    if (f->version != SST_FORMAT_VERSION && f->version != SST_FORMAT_VERSION_UNIFORM_SEQ)
        return lsm_fail(LSM_CORRUPT, "sst %s: format version %u, this build reads %u and %u",
                        path, f->version, SST_FORMAT_VERSION, SST_FORMAT_VERSION_UNIFORM_SEQ);
    if (get_u64(in + FOOTER_CHECKSUM_AT) != XXH3_64bits(in, FOOTER_CHECKSUM_AT))
        return lsm_fail(LSM_CORRUPT, "sst %s: bad footer checksum", path);
    p = get_handle(p, &f->index);
    p = get_handle(p, &f->filter);
    p = get_handle(p, &f->tombstones);
    table_meta *m = &f->meta;
    memset(m, 0, sizeof *m);
    uint64_t *u[6] = {&m->entry_count, &m->point_tombstones, &m->range_tombstones,
                      &m->raw_bytes, &m->min_seq, &m->max_seq};
    for (int i = 0; i < 6; i++)
        *u[i] = get_u64(p), p += 8;
    int64_t *s[3] = {&m->min_ts, &m->max_ts, &m->max_expire_at};
    for (int i = 0; i < 3; i++)
        *s[i] = get_i64(p), p += 8;
    m->smallest_len = get_u16(p), p += 2;
    m->largest_len = get_u16(p), p += 2;
    uint8_t flags = *p++;
    uint8_t known = f->version == SST_FORMAT_VERSION_UNIFORM_SEQ
                        ? FOOTER_LARGEST_TRUNCATED | FOOTER_UNIFORM_SEQ
                        : FOOTER_LARGEST_TRUNCATED;
    if (m->smallest_len > TABLE_BOUND_MAX || m->largest_len > TABLE_BOUND_MAX || (flags & ~known))
        return lsm_fail(LSM_CORRUPT, "sst %s: footer key bounds or flags malformed", path);
    m->largest_truncated = flags & FOOTER_LARGEST_TRUNCATED;
    f->uniform_seq = flags & FOOTER_UNIFORM_SEQ;
    if (f->uniform_seq && (m->min_seq != m->max_seq || m->max_seq == 0))
        return lsm_fail(LSM_CORRUPT, "sst %s: uniform-seq table with seqs %llu..%llu", path,
                        (unsigned long long) m->min_seq, (unsigned long long) m->max_seq);
    memcpy(m->smallest, p, TABLE_BOUND_MAX), p += TABLE_BOUND_MAX;
    memcpy(m->largest, p, TABLE_BOUND_MAX);
    return LSM_OK;
}

/* ------------------------------------------------------------- table */

/* A handle must name at least a trailer, entirely below the footer. */
static bool handle_in_file(sst_handle h, uint64_t data_end)
{
    return h.size >= SST_TRAILER_SIZE && h.offset <= data_end && h.size <= data_end - h.offset;
}

static lsm_status check_handles(const sst_table *t)
{
    const sst_handle hs[3] = {t->footer.index, t->footer.filter, t->footer.tombstones};
    static const char *const names[3] = {"index", "filter", "range-tombstone"};
    for (int i = 0; i < 3; i++)
        if (!handle_in_file(hs[i], t->data_end))
            return lsm_fail(LSM_CORRUPT, "sst %s: %s block handle (%llu, %u) outside the file",
                            t->path, names[i], (unsigned long long) hs[i].offset, hs[i].size);
    return LSM_OK;
}

static lsm_status load_footer(sst_table *t, uint64_t file_no)
{
    struct stat sb;
    if (fstat(t->fd, &sb) != 0)
        return lsm_fail(LSM_IO, "sst %s: stat: %s", t->path, strerror(errno));
    uint64_t size = (uint64_t) sb.st_size;
    if (size < SST_FOOTER_SIZE)
        return lsm_fail(LSM_CORRUPT, "sst %s: %llu bytes, shorter than the footer (truncated)",
                        t->path, (unsigned long long) size);
    uint8_t raw[SST_FOOTER_SIZE];
    lsm_status st = file_read_at(t->fd, raw, sizeof raw, size - SST_FOOTER_SIZE, LSM_CORRUPT, t->path);
    if (st == LSM_OK)
        st = sst_footer_decode(raw, t->path, &t->footer);
    if (st != LSM_OK)
        return st;
    t->data_end = size - SST_FOOTER_SIZE;
    t->footer.meta.file_no = file_no;
    t->footer.meta.file_size = size;
    return check_handles(t);
}

lsm_status sst_table_open(const char *path, uint64_t file_no, sst_table **out)
{
    *out = NULL;
    sst_table *t = calloc(1, sizeof *t);
    if (t == NULL || (t->path = strdup(path)) == NULL) {
        free(t);
        return lsm_fail(LSM_NO_MEMORY, "sst %s: cannot allocate table", path);
    }
    t->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (t->fd < 0) {
        lsm_status st = lsm_fail(LSM_IO, "sst %s: open: %s", path, strerror(errno));
        sst_table_close(t);
        return st;
    }
    lsm_status st = load_footer(t, file_no);
    if (st != LSM_OK) {
        sst_table_close(t);
        return st;
    }
    *out = t;
    return LSM_OK;
}

void sst_table_close(sst_table *t)
{
    if (t == NULL)
        return;
    if (t->fd >= 0)
        close(t->fd);
    free(t->path);
    free(t);
}

const table_meta *sst_table_meta(const sst_table *t) { return &t->footer.meta; }
const char *sst_table_path(const sst_table *t) { return t->path; }
sst_handle sst_table_index_handle(const sst_table *t) { return t->footer.index; }
sst_handle sst_table_filter_handle(const sst_table *t) { return t->footer.filter; }
sst_handle sst_table_tombstone_handle(const sst_table *t) { return t->footer.tombstones; }
uint64_t sst_table_uniform_seq(const sst_table *t)
{
    return t->footer.uniform_seq ? t->footer.meta.max_seq : 0;
}

/* ------------------------------------------------------------- blocks */

/* lz4 expands at most ~255x; a claimed length beyond that is corrupt. */
static bool plausible_lz4_len(uint64_t ulen, uint64_t clen)
{
    return ulen <= SST_MAX_BLOCK_LEN && ulen <= clen * 255 + 16;
}

/* out->data[0..clen) holds lz4 bytes; leaves ulen decoded bytes there. */
static lsm_status decompress_in_place(sst_table *t, sst_handle h, uint32_t clen, uint32_t ulen,
                                      block_buf *out)
{
    if (!plausible_lz4_len(ulen, clen))
        return lsm_fail(LSM_CORRUPT, "sst %s: block at %llu claims %u bytes from %u", t->path,
                        (unsigned long long) h.offset, ulen, clen);
    lsm_status st = block_buf_reserve(out, (size_t) ulen + clen);
    if (st != LSM_OK)
        return st;
    /* Move the (smaller) compressed bytes past the output area. */
    memmove(out->data + ulen, out->data, clen);
    int n = LZ4_decompress_safe((const char *) out->data + ulen, (char *) out->data, (int) clen,
                                (int) ulen);
    if (n < 0 || (uint32_t) n != ulen)
        return lsm_fail(LSM_CORRUPT, "sst %s: block at %llu does not decompress", t->path,
                        (unsigned long long) h.offset);
    out->len = ulen;
    return LSM_OK;
}

lsm_status sst_read_block(sst_table *t, sst_handle h, bool verify, block_buf *out)
{
    out->len = 0;
    if (!handle_in_file(h, t->data_end))
        return lsm_fail(LSM_CORRUPT, "sst %s: block handle (%llu, %u) outside the file", t->path,
                        (unsigned long long) h.offset, h.size);
    lsm_status st = block_buf_reserve(out, h.size);
    if (st == LSM_OK)
        st = file_read_at(t->fd, out->data, h.size, h.offset, LSM_CORRUPT, t->path);
    if (st != LSM_OK)
        return st;
    uint32_t clen = h.size - SST_TRAILER_SIZE;
    const uint8_t *trailer = out->data + clen;
    uint8_t kind = trailer[0];
    uint32_t ulen = get_u32(trailer + 1);
    if (verify && get_u64(trailer + 5) != XXH3_64bits(out->data, (size_t) clen + 5))
        return lsm_fail(LSM_CORRUPT, "sst %s: bad block checksum at %llu", t->path,
                        (unsigned long long) h.offset);
    if (kind == SST_LZ4)
        return decompress_in_place(t, h, clen, ulen, out);
    if (kind != SST_RAW || ulen != clen)
        return lsm_fail(LSM_CORRUPT, "sst %s: block at %llu has kind %u, length %u of %u",
                        t->path, (unsigned long long) h.offset, kind, ulen, clen);
    out->len = ulen;
    return LSM_OK;
}
