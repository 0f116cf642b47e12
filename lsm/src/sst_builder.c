/*
 * sst_builder.c — writing one SST from entries in entry_compare order.
 *
 * Data blocks are cut once their encoded size reaches block_size; an entry
 * whose own encoding is >= block_size goes alone in its block.  Each cut
 * adds one index entry (the block's last (key, ts), its min/max ts and its
 * handle).  The filter, range-tombstone and index blocks follow the data,
 * then the footer.  Buffers are reused across entries and blocks: the only
 * growing allocations are the blocks themselves and one u64 hash per
 * distinct key (for the bloom filter).
 */
#include "sst.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "bloom.h"
#include "coding.h"
#include "status.h"

struct sst_builder {
    int fd;
    char *path;
    sst_options opt;
    uint64_t offset;            /* bytes written to the file */
    lsm_status failed;          /* sticky: once set, every call returns it */

    sst_block_writer data;      /* the data block being filled */
    sst_block_writer index;
    sst_block_writer tombstones;/* in arrival order; sorted at finish */
    block_buf packed;           /* one stored block: payload + trailer */
    block_buf out;              /* bytes appended but not yet written */

    block_buf first_key;        /* smallest point key (full) */
    block_buf last_key;         /* previous entry's key: order + separator */
    int64_t last_ts;
    uint64_t last_seq;
    int64_t block_min_ts, block_max_ts;

    uint64_t *hashes;           /* bloom_hash of each distinct key */
    size_t nhashes, hashes_cap;

    table_meta meta;            /* counts and seq/ts/expiry so far */
    bool uniform_seq;           /* set_uniform_seq was called */
};

static lsm_status fail(sst_builder *b, lsm_status st)
{
    if (b->failed == LSM_OK)
        b->failed = st;
    return st;
}

static lsm_status copy_into(block_buf *buf, const uint8_t *p, size_t len)
{
    lsm_status st = block_buf_reserve(buf, len);
    if (st != LSM_OK)
        return st;
    if (len)
        memcpy(buf->data, p, len);
    buf->len = len;
    return LSM_OK;
}

static void reset_block_ts(sst_builder *b)
{
    b->block_min_ts = INT64_MAX;
    b->block_max_ts = INT64_MIN;
}

lsm_status sst_builder_open(const char *path, uint64_t file_no, const sst_options *opt,
                            sst_builder **out)
{
    *out = NULL;
    if (opt->block_size < SST_MIN_BLOCK_SIZE || opt->block_size > SST_MAX_BLOCK_SIZE)
        return lsm_fail(LSM_INVALID, "sst %s: block_size %zu outside %u..%u", path,
                        opt->block_size, SST_MIN_BLOCK_SIZE, SST_MAX_BLOCK_SIZE);
    if (opt->bloom_bits_per_key < BLOOM_MIN_BITS_PER_KEY ||
        opt->bloom_bits_per_key > BLOOM_MAX_BITS_PER_KEY)
        return lsm_fail(LSM_INVALID, "sst %s: bloom_bits_per_key %u outside %u..%u", path,
                        opt->bloom_bits_per_key, BLOOM_MIN_BITS_PER_KEY, BLOOM_MAX_BITS_PER_KEY);
    sst_builder *b = calloc(1, sizeof *b);
    if (b == NULL || (b->path = strdup(path)) == NULL) {
        free(b);
        return lsm_fail(LSM_NO_MEMORY, "sst %s: cannot allocate builder", path);
    }
    b->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (b->fd < 0) {
        lsm_status st = lsm_fail(LSM_IO, "sst %s: create: %s", path, strerror(errno));
        free(b->path);
        free(b);
        return st;
    }
    b->opt = *opt;
    b->meta.file_no = file_no;
    b->meta.min_seq = UINT64_MAX;
    b->meta.min_ts = INT64_MAX;
    b->meta.max_ts = INT64_MIN;
    reset_block_ts(b);
    *out = b;
    return LSM_OK;
}

/* ------------------------------------------------------------ output */

#define OUT_BUFFER_BYTES (1u << 20)

/* Writes the output buffer to the file. */
static lsm_status flush_out(sst_builder *b)
{
    const uint8_t *p = b->out.data;
    size_t len = b->out.len;
    while (len > 0) {
        ssize_t n = write(b->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(b, lsm_fail(LSM_IO, "sst %s: write at %llu: %s", b->path,
                                    (unsigned long long) (b->offset - len), strerror(errno)));
        p += n;
        len -= (size_t) n;
    }
    b->out.len = 0;
    return LSM_OK;
}

/* Appends to the file through a 1 MiB buffer (one write() per block was a
 * syscall per 4 KiB).  b->offset counts every byte appended. */
static lsm_status write_all(sst_builder *b, const uint8_t *p, size_t len)
{
    if (b->out.len + len > OUT_BUFFER_BYTES) {
        lsm_status st = flush_out(b);
        if (st != LSM_OK)
            return st;
    }
    if (len > OUT_BUFFER_BYTES) {
        lsm_status st = block_buf_reserve(&b->out, len);
        if (st != LSM_OK)
            return fail(b, st);
    } else if (b->out.cap < OUT_BUFFER_BYTES) {
        lsm_status st = block_buf_reserve(&b->out, OUT_BUFFER_BYTES);
        if (st != LSM_OK)
            return fail(b, st);
    }
    memcpy(b->out.data + b->out.len, p, len);
    b->out.len += len;
    b->offset += len;
    return LSM_OK;
}

/* Compresses (if that saves space), appends the trailer, writes; *h names
 * the stored bytes. */
static lsm_status write_block(sst_builder *b, const uint8_t *data, size_t len, sst_handle *h)
{
    int bound = LZ4_compressBound((int) len);
    lsm_status st = block_buf_reserve(&b->packed, (size_t) bound + SST_TRAILER_SIZE);
    if (st != LSM_OK)
        return fail(b, st);
    uint8_t *p = b->packed.data;
    int clen = len ? LZ4_compress_default((const char *) data, (char *) p, (int) len, bound) : 0;
    uint8_t kind = SST_LZ4;
    if (clen <= 0 || (size_t) clen >= len) {
        kind = SST_RAW;
        clen = (int) len;
        if (len)
            memcpy(p, data, len);
    }
    p[clen] = kind;
    put_u32(p + clen + 1, (uint32_t) len);
    put_u64(p + clen + 5, XXH3_64bits(p, (size_t) clen + 5));
    h->offset = b->offset;
    h->size = (uint32_t) clen + SST_TRAILER_SIZE;
    return write_all(b, p, h->size);
}

static lsm_status add_index_entry(sst_builder *b, sst_handle h)
{
    uint8_t value[SST_INDEX_VALUE_SIZE];
    put_i64(value, b->block_min_ts);
    put_i64(value + 8, b->block_max_ts);
    put_u64(value + 16, h.offset);
    put_u32(value + 24, h.size);
    lsm_entry sep = {
        .key = b->last_key.data, .key_len = (uint32_t) b->last_key.len, .type = ENTRY_PUT,
        .ts = b->last_ts, .seq = 0, .expire_at = 0, .value = value,
        .value_len = SST_INDEX_VALUE_SIZE,
    };
    return sst_block_writer_add(&b->index, &sep);
}

/* Writes the data block being filled; last_key/last_ts are its last entry. */
static lsm_status flush_data_block(sst_builder *b)
{
    sst_handle h;
    lsm_status st = sst_block_writer_finish(&b->data);
    if (st == LSM_OK)
        st = write_block(b, b->data.data.data, b->data.data.len, &h);
    if (st == LSM_OK)
        st = add_index_entry(b, h);
    if (st != LSM_OK)
        return fail(b, st);
    b->meta.raw_bytes += b->data.data.len;
    sst_block_writer_reset(&b->data);
    reset_block_ts(b);
    return LSM_OK;
}

/* -------------------------------------------------------------- adding */

static lsm_status check_sizes(const sst_builder *b, const lsm_entry *e)
{
    if (e->key_len == 0 || e->key == NULL)
        return lsm_fail(LSM_INVALID, "sst %s: empty key", b->path);
    if (e->key_len > LSM_MAX_KEY_SIZE)
        return lsm_fail(LSM_TOO_LARGE, "sst %s: key of %u bytes over %u", b->path, e->key_len,
                        LSM_MAX_KEY_SIZE);
    if (e->value_len > LSM_MAX_VALUE_SIZE)
        return lsm_fail(LSM_TOO_LARGE, "sst %s: value of %u bytes over %u", b->path,
                        e->value_len, LSM_MAX_VALUE_SIZE);
    if (e->value_len > 0 && e->value == NULL)
        return lsm_fail(LSM_INVALID, "sst %s: value pointer is NULL", b->path);
    return LSM_OK;
}

static void note_seq_expiry(table_meta *m, uint64_t seq, int64_t expire_at, bool never_expires)
{
    if (seq < m->min_seq)
        m->min_seq = seq;
    if (seq > m->max_seq)
        m->max_seq = seq;
    if (never_expires || expire_at == 0)
        m->max_expire_at = INT64_MAX;
    else if (expire_at > m->max_expire_at)
        m->max_expire_at = expire_at;
}

static lsm_status push_hash(sst_builder *b, uint64_t h)
{
    if (b->nhashes == b->hashes_cap) {
        size_t cap = b->hashes_cap ? b->hashes_cap * 2 : 1024;
        uint64_t *p = realloc(b->hashes, cap * sizeof *p);
        if (p == NULL)
            return lsm_fail(LSM_NO_MEMORY, "sst %s: cannot grow key hashes to %zu", b->path, cap);
        b->hashes = p;
        b->hashes_cap = cap;
    }
    b->hashes[b->nhashes++] = h;
    return LSM_OK;
}

/* Checks e follows the previous entry; *new_key tells if its key differs. */
static lsm_status check_order(const sst_builder *b, const lsm_entry *e, bool *new_key)
{
    if (b->meta.entry_count == 0) {
        *new_key = true;
        return LSM_OK;
    }
    lsm_entry prev = {.key = b->last_key.data, .key_len = (uint32_t) b->last_key.len,
                      .ts = b->last_ts, .seq = b->last_seq};
    if (entry_compare(&prev, e) >= 0)
        return lsm_fail(LSM_INVALID, "sst %s: entry %llu out of order (key, ts asc, seq desc)",
                        b->path, (unsigned long long) b->meta.entry_count);
    *new_key = key_compare(prev.key, prev.key_len, e->key, e->key_len) != 0;
    return LSM_OK;
}

static void note_point_entry(sst_builder *b, const lsm_entry *e)
{
    table_meta *m = &b->meta;
    m->entry_count++;
    if (e->type == ENTRY_DELETE)
        m->point_tombstones++;
    if (e->ts < m->min_ts)
        m->min_ts = e->ts;
    if (e->ts > m->max_ts)
        m->max_ts = e->ts;
    if (e->ts < b->block_min_ts)
        b->block_min_ts = e->ts;
    if (e->ts > b->block_max_ts)
        b->block_max_ts = e->ts;
    note_seq_expiry(m, e->seq, e->expire_at, e->type == ENTRY_DELETE);
    b->last_ts = e->ts;
    b->last_seq = e->seq;
}

lsm_status sst_builder_add(sst_builder *b, const lsm_entry *e)
{
    if (b->failed != LSM_OK)
        return lsm_fail(b->failed, "sst %s: builder failed earlier", b->path);
    if (e->type != ENTRY_PUT && e->type != ENTRY_DELETE)
        return lsm_fail(LSM_INVALID, "sst %s: entry type %u is not PUT or DELETE", b->path,
                        e->type);
    if (b->uniform_seq)
        return lsm_fail(LSM_INVALID, "sst %s: entry added after the uniform seq was set", b->path);
    bool new_key = true;
    lsm_status st = check_sizes(b, e);
    if (st == LSM_OK)
        st = check_order(b, e, &new_key);
    if (st != LSM_OK)
        return st;
    /* A big entry gets a block of its own. */
    if (b->data.count > 0 && sst_entry_encoded_len(e) >= b->opt.block_size &&
        (st = flush_data_block(b)) != LSM_OK)
        return st;
    if (new_key && (st = push_hash(b, bloom_hash(e->key, e->key_len))) != LSM_OK)
        return fail(b, st);
    if (b->meta.entry_count == 0 && (st = copy_into(&b->first_key, e->key, e->key_len)) != LSM_OK)
        return fail(b, st);
    if ((st = sst_block_writer_add(&b->data, e)) != LSM_OK ||
        (st = copy_into(&b->last_key, e->key, e->key_len)) != LSM_OK)
        return fail(b, st);
    note_point_entry(b, e);
    if (sst_block_writer_size(&b->data) >= b->opt.block_size)
        return flush_data_block(b);
    return LSM_OK;
}

lsm_status sst_builder_add_range_tombstone(sst_builder *b, const lsm_entry *e)
{
    if (b->failed != LSM_OK)
        return lsm_fail(b->failed, "sst %s: builder failed earlier", b->path);
    if (e->type != ENTRY_RANGE_DELETE)
        return lsm_fail(LSM_INVALID, "sst %s: range tombstone has type %u", b->path, e->type);
    lsm_status st = check_sizes(b, e);
    if (st != LSM_OK)
        return st;
    if (e->value_len > LSM_MAX_KEY_SIZE)
        return lsm_fail(LSM_TOO_LARGE, "sst %s: range end of %u bytes over %u", b->path,
                        e->value_len, LSM_MAX_KEY_SIZE);
    if (key_compare(e->key, e->key_len, e->value, e->value_len) >= 0)
        return lsm_fail(LSM_INVALID, "sst %s: range tombstone start >= end", b->path);
    if ((st = sst_block_writer_add(&b->tombstones, e)) != LSM_OK)
        return fail(b, st);
    b->meta.range_tombstones++;
    note_seq_expiry(&b->meta, e->seq, e->expire_at, true);
    return LSM_OK;
}

lsm_status sst_builder_set_uniform_seq(sst_builder *b, uint64_t seq)
{
    if (b->failed != LSM_OK)
        return lsm_fail(b->failed, "sst %s: builder failed earlier", b->path);
    /* Stored seqs all 0 and (key, ts) strictly increasing (check_order
     * refuses an equal (key, ts, seq)): one seq for all loses no order. */
    if (seq == 0 || b->meta.range_tombstones || (b->meta.entry_count && b->meta.max_seq != 0))
        return lsm_fail(LSM_INVALID, "sst %s: uniform seq %llu needs point entries with seq 0",
                        b->path, (unsigned long long) seq);
    b->uniform_seq = true;
    b->meta.min_seq = b->meta.max_seq = seq;
    return LSM_OK;
}

lsm_status sst_builder_sync(sst_builder *b)
{
    if (b->failed != LSM_OK)
        return lsm_fail(b->failed, "sst %s: builder failed earlier", b->path);
    lsm_status st = flush_out(b);
    if (st == LSM_OK && fdatasync(b->fd) != 0)
        st = fail(b, lsm_fail(LSM_IO, "sst %s: fdatasync: %s", b->path, strerror(errno)));
    return st;
}

uint64_t sst_builder_entries(const sst_builder *b) { return b->meta.entry_count; }
uint64_t sst_builder_file_size(const sst_builder *b) { return b->offset; }

/* ------------------------------------------------------------- finish */

static lsm_status write_filter(sst_builder *b, sst_handle *h)
{
    block_buf *scratch = &b->data.data;   /* free: data blocks are done */
    size_t len = bloom_filter_len(b->nhashes, b->opt.bloom_bits_per_key);
    if (len > SST_MAX_BLOCK_LEN)
        return fail(b, lsm_fail(LSM_TOO_LARGE, "sst %s: filter of %zu bytes over %u; "
                                "write smaller tables", b->path, len, SST_MAX_BLOCK_LEN));
    lsm_status st = block_buf_reserve(scratch, len);
    if (st != LSM_OK)
        return fail(b, st);
    bloom_build(b->hashes, b->nhashes, b->opt.bloom_bits_per_key, scratch->data);
    return write_block(b, scratch->data, len, h);
}

static int tombstone_order(const void *pa, const void *pb)
{
    const lsm_entry *a = pa, *b = pb;
    int c = key_compare(a->key, a->key_len, b->key, b->key_len);
    if (c != 0)
        return c;
    if (a->seq != b->seq)
        return a->seq > b->seq ? -1 : 1;
    return key_compare(a->value, a->value_len, b->value, b->value_len);
}

/* Bounds of a key set: smaller/greater of (current, candidate). */
static void widen(const uint8_t **lo, size_t *lo_len, const uint8_t **hi, size_t *hi_len,
                  const uint8_t *k, size_t klen)
{
    if (*lo == NULL || key_compare(k, klen, *lo, *lo_len) < 0)
        *lo = k, *lo_len = klen;
    if (*hi == NULL || key_compare(k, klen, *hi, *hi_len) > 0)
        *hi = k, *hi_len = klen;
}

static void set_bounds(table_meta *m, const uint8_t *lo, size_t lo_len, const uint8_t *hi,
                       size_t hi_len)
{
    m->smallest_len = (uint16_t) (lo_len < TABLE_BOUND_MAX ? lo_len : TABLE_BOUND_MAX);
    m->largest_len = (uint16_t) (hi_len < TABLE_BOUND_MAX ? hi_len : TABLE_BOUND_MAX);
    m->largest_truncated = hi_len > TABLE_BOUND_MAX;
    if (m->smallest_len)
        memcpy(m->smallest, lo, m->smallest_len);
    if (m->largest_len)
        memcpy(m->largest, hi, m->largest_len);
}

/* Sorts the range tombstones into the (now idle) data writer, writes them,
 * and sets the table's key bounds (which may point into the tombstones). */
static lsm_status write_tombstones(sst_builder *b, sst_handle *h)
{
    sst_block_writer *out = &b->data;
    uint32_t n = b->tombstones.count;
    lsm_entry *ts = n ? malloc(n * sizeof *ts) : NULL;
    if (n && ts == NULL)
        return fail(b, lsm_fail(LSM_NO_MEMORY, "sst %s: cannot sort %u range tombstones",
                                b->path, n));
    lsm_status st = sst_block_writer_finish(&b->tombstones);
    sst_block blk;
    if (st == LSM_OK)
        st = sst_block_parse(b->tombstones.data.data, b->tombstones.data.len, &blk);
    for (uint32_t i = 0; st == LSM_OK && i < n; i++)
        st = sst_block_entry(&blk, i, &ts[i]);
    if (st == LSM_OK && n)
        qsort(ts, n, sizeof *ts, tombstone_order);

    const uint8_t *lo = NULL, *hi = NULL;
    size_t lo_len = 0, hi_len = 0;
    if (b->meta.entry_count > 0) {
        widen(&lo, &lo_len, &hi, &hi_len, b->first_key.data, b->first_key.len);
        widen(&lo, &lo_len, &hi, &hi_len, b->last_key.data, b->last_key.len);
    }
    sst_block_writer_reset(out);
    for (uint32_t i = 0; st == LSM_OK && i < n; i++) {
        widen(&lo, &lo_len, &hi, &hi_len, ts[i].key, ts[i].key_len);
        widen(&lo, &lo_len, &hi, &hi_len, ts[i].value, ts[i].value_len);
        st = sst_block_writer_add(out, &ts[i]);
    }
    if (st == LSM_OK)
        set_bounds(&b->meta, lo, lo_len, hi, hi_len);
    free(ts);
    if (st == LSM_OK)
        st = sst_block_writer_finish(out);
    if (st != LSM_OK)
        return fail(b, st);
    return write_block(b, out->data.data, out->data.len, h);
}

static lsm_status write_footer(sst_builder *b, const sst_footer *f)
{
    uint8_t raw[SST_FOOTER_SIZE];
    sst_footer_encode(f, raw);
    return write_all(b, raw, sizeof raw);
}

static lsm_status sync_and_close(sst_builder *b)
{
    lsm_status st = flush_out(b);
    if (st != LSM_OK)
        return st;
    int fd = b->fd;
    b->fd = -1;
    if (fsync(fd) != 0) {
        st = lsm_fail(LSM_IO, "sst %s: fsync: %s", b->path, strerror(errno));
        close(fd);
        return fail(b, st);
    }
    if (close(fd) != 0)
        return fail(b, lsm_fail(LSM_IO, "sst %s: close: %s", b->path, strerror(errno)));
    return LSM_OK;
}

static void builder_free(sst_builder *b)
{
    if (b->fd >= 0)
        close(b->fd);
    sst_block_writer_free(&b->data);
    sst_block_writer_free(&b->index);
    sst_block_writer_free(&b->tombstones);
    block_buf_free(&b->packed);
    block_buf_free(&b->out);
    block_buf_free(&b->first_key);
    block_buf_free(&b->last_key);
    free(b->hashes);
    free(b->path);
    free(b);
}

static lsm_status finish_file(sst_builder *b, table_meta *meta)
{
    sst_footer f = {.version = b->uniform_seq ? SST_FORMAT_VERSION_UNIFORM_SEQ
                                              : SST_FORMAT_VERSION,
                    .uniform_seq = b->uniform_seq};
    lsm_status st = b->failed;
    if (st != LSM_OK)
        return lsm_fail(st, "sst %s: builder failed earlier", b->path);
    if (b->data.count > 0 && (st = flush_data_block(b)) != LSM_OK)
        return st;
    if ((st = write_filter(b, &f.filter)) != LSM_OK ||
        (st = write_tombstones(b, &f.tombstones)) != LSM_OK)
        return st;
    if ((st = sst_block_writer_finish(&b->index)) != LSM_OK)
        return fail(b, st);
    if ((st = write_block(b, b->index.data.data, b->index.data.len, &f.index)) != LSM_OK)
        return st;
    f.meta = b->meta;
    if ((st = write_footer(b, &f)) != LSM_OK || (st = sync_and_close(b)) != LSM_OK)
        return st;
    *meta = b->meta;
    meta->file_size = b->offset;
    return LSM_OK;
}

lsm_status sst_builder_finish(sst_builder *b, table_meta *meta)
{
    lsm_status st = finish_file(b, meta);
    if (st != LSM_OK) {
        sst_builder_abandon(b);
        return st;
    }
    builder_free(b);
    return LSM_OK;
}

void sst_builder_abandon(sst_builder *b)
{
    if (b == NULL)
        return;
    if (b->fd >= 0) {
        close(b->fd);
        b->fd = -1;
    }
    unlink(b->path);
    builder_free(b);
}
