/*
 * sst_block.c — the decoded block format shared by data, index and
 * range-tombstone blocks, and the growable buffers they are built in.
 *
 * Block = entry* | offset u32 * count | count u32
 * Entry = varint key_len | key | zigzag ts | type u8 | varint seq |
 *         zigzag expire_at | varint value_len | value
 *
 * Invariant checked by sst_block_parse: offsets are strictly ascending and
 * below the start of the offset array, so entry i occupies
 * [offset[i], offset[i+1]) (the last one ends where the offsets begin).
 */
#include "sst.h"

#include <stdlib.h>

#include "coding.h"
#include "status.h"

/* ---------------------------------------------------------- block_buf */

void block_buf_free(block_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

lsm_status block_buf_reserve(block_buf *b, size_t need)
{
    if (need <= b->cap)
        return LSM_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL)
        return lsm_fail(LSM_NO_MEMORY, "block buffer: cannot allocate %zu bytes", cap);
    b->data = p;
    b->cap = cap;
    return LSM_OK;
}

/* ------------------------------------------------------- entry codec */

static uint64_t zigzag(int64_t v) { return ((uint64_t) v << 1) ^ (uint64_t) (v >> 63); }
static int64_t unzigzag(uint64_t v) { return (int64_t) (v >> 1) ^ -(int64_t) (v & 1); }

size_t sst_entry_encoded_len(const lsm_entry *e)
{
    return (size_t) varint_len(e->key_len) + e->key_len + varint_len(zigzag(e->ts)) + 1 +
           varint_len(e->seq) + varint_len(zigzag(e->expire_at)) + varint_len(e->value_len) +
           e->value_len;
}

size_t sst_entry_encode(uint8_t *p, const lsm_entry *e)
{
    uint8_t *start = p;
    p += put_varint(p, e->key_len);
    if (e->key_len)
        memcpy(p, e->key, e->key_len);
    p += e->key_len;
    p += put_varint(p, zigzag(e->ts));
    *p++ = e->type;
    p += put_varint(p, e->seq);
    p += put_varint(p, zigzag(e->expire_at));
    p += put_varint(p, e->value_len);
    if (e->value_len)
        memcpy(p, e->value, e->value_len);
    p += e->value_len;
    return (size_t) (p - start);
}

/* Reads a varint length that must fit in u32 and in [p, end). */
static const uint8_t *get_length(const uint8_t *p, const uint8_t *end, uint32_t *len)
{
    uint64_t v;
    p = get_varint(p, end, &v);
    if (p == NULL || v > (uint64_t) (end - p))
        return NULL;
    *len = (uint32_t) v;
    return p;
}

/* Decodes the entry in [p, end); NULL if malformed. */
static const uint8_t *decode_entry(const uint8_t *p, const uint8_t *end, lsm_entry *e)
{
    uint64_t v;
    if ((p = get_length(p, end, &e->key_len)) == NULL)
        return NULL;
    e->key = p;
    p += e->key_len;
    if ((p = get_varint(p, end, &v)) == NULL || p >= end)
        return NULL;
    e->ts = unzigzag(v);
    e->type = *p++;
    if (e->type < ENTRY_PUT || e->type > ENTRY_RANGE_DELETE)
        return NULL;
    if ((p = get_varint(p, end, &e->seq)) == NULL)
        return NULL;
    if ((p = get_varint(p, end, &v)) == NULL)
        return NULL;
    e->expire_at = unzigzag(v);
    if ((p = get_length(p, end, &e->value_len)) == NULL)
        return NULL;
    e->value = p;
    return p + e->value_len;
}

/* ------------------------------------------------------------ reading */

static uint32_t offset_at(const sst_block *b, uint32_t i)
{
    if (b->offset_width == 2)
        return get_u16(b->offsets + (size_t) i * 2);
    return get_u32(b->offsets + (size_t) i * 4);
}

/* The block tail's u32 holds the entry count, with SST_OFFSETS_U16 set when
 * the offsets are u16 (entries area below 64 KiB: most blocks). */
static void decode_tail(const uint8_t *data, size_t len, uint32_t *count, unsigned *width)
{
    uint32_t word = get_u32(data + len - 4);
    *count = word & ~SST_OFFSETS_U16;
    *width = word & SST_OFFSETS_U16 ? 2 : 4;
}

/* Bytes before the offset array. */
static size_t entries_end(const sst_block *b)
{
    return (size_t) (b->offsets - b->data);
}

lsm_status sst_block_parse(const uint8_t *data, size_t len, sst_block *out)
{
    if (data == NULL || len < 4)
        return lsm_fail(LSM_CORRUPT, "sst block: %zu bytes, too short for an entry count", len);
    uint32_t count;
    unsigned width;
    decode_tail(data, len, &count, &width);
    if ((uint64_t) count * width > len - 4)
        return lsm_fail(LSM_CORRUPT, "sst block: count %u does not fit in %zu bytes", count, len);
    size_t end = len - 4 - (size_t) count * width;
    const uint8_t *offsets = data + end;
    uint64_t prev = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t off = width == 2 ? get_u16(offsets + (size_t) i * 2)
                                  : get_u32(offsets + (size_t) i * 4);
        if ((i > 0 && off <= prev) || off >= end)
            return lsm_fail(LSM_CORRUPT, "sst block: entry %u offset %u out of order or range", i, off);
        prev = off;
    }
    out->data = data;
    out->len = len;
    out->count = count;
    out->offsets = offsets;
    out->offset_width = width;
    return LSM_OK;
}

void sst_block_parse_trusted(const uint8_t *data, size_t len, sst_block *out)
{
    uint32_t count;
    unsigned width;
    decode_tail(data, len, &count, &width);
    out->data = data;
    out->len = len;
    out->count = count;
    out->offset_width = width;
    out->offsets = data + len - 4 - (size_t) count * width;
}

/* Decodes entry i, or returns false if malformed. */
static bool block_entry(const sst_block *b, uint32_t i, lsm_entry *e)
{
    if (i >= b->count)
        return false;
    size_t start = offset_at(b, i);
    size_t end = i + 1 < b->count ? offset_at(b, i + 1) : entries_end(b);
    const uint8_t *p = decode_entry(b->data + start, b->data + end, e);
    /* Invariant: an entry fills exactly its slot. */
    return p == b->data + end;
}

lsm_status sst_block_entry(const sst_block *b, uint32_t i, lsm_entry *out)
{
    if (i >= b->count)
        return lsm_fail(LSM_CORRUPT, "sst block: entry %u of %u out of range", i, b->count);
    if (!block_entry(b, i, out))
        return lsm_fail(LSM_CORRUPT, "sst block: entry %u malformed", i);
    return LSM_OK;
}

/* Decodes only entry i's key and ts (they lead the entry): what a seek
 * compares.  False if malformed. */
bool sst_block_key_ts(const sst_block *b, uint32_t i, const uint8_t **key, uint32_t *klen,
                      int64_t *ts)
{
    if (i >= b->count)
        return false;
    size_t start = offset_at(b, i);
    size_t end = i + 1 < b->count ? offset_at(b, i + 1) : entries_end(b);
    const uint8_t *p = b->data + start, *lim = b->data + end;
    uint64_t v;
    if (start >= end || (p = get_length(p, lim, klen)) == NULL)
        return false;
    *key = p;
    if (get_varint(p + *klen, lim, &v) == NULL)
        return false;
    *ts = unzigzag(v);
    return true;
}

/* Entries a binary search over [lo, hi) may probe in its first `levels`
 * steps, prefetched: each probe's cache line would otherwise be a miss that
 * only starts once the previous comparison is done.  All of a small block's
 * entry starts are fetched at once (a data block of a few large records). */
#define SEEK_PREFETCH_ALL 16
#define SEEK_PREFETCH_LEVELS 3

static void prefetch_probes(const sst_block *b, uint32_t lo, uint32_t hi, int levels)
{
    if (lo >= hi || levels == 0)
        return;
    uint32_t mid = lo + (hi - lo) / 2;
    __builtin_prefetch(b->data + offset_at(b, mid));
    prefetch_probes(b, lo, mid, levels - 1);
    prefetch_probes(b, mid + 1, hi, levels - 1);
}

static void prefetch_seek(const sst_block *b)
{
    if (b->count <= SEEK_PREFETCH_ALL) {
        for (uint32_t i = 0; i < b->count; i++)
            __builtin_prefetch(b->data + offset_at(b, i));
    } else {
        prefetch_probes(b, 0, b->count, SEEK_PREFETCH_LEVELS);
    }
}

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return v;
#else
    return __builtin_bswap64(v);
#endif
}

/* entry_compare_kt, with the keys' first 8 bytes compared as one big-endian
 * integer when both have them: most probes are decided there, without a
 * memcmp call. */
static int probe_compare(const uint8_t *k, size_t kl, int64_t t, const uint8_t *key, size_t klen,
                         int64_t ts)
{
    if (kl >= 8 && klen >= 8) {
        uint64_t a = load_be64(k), b = load_be64(key);
        if (a != b)
            return a < b ? -1 : 1;
        return entry_compare_kt(k + 8, kl - 8, t, key + 8, klen - 8, ts);
    }
    return entry_compare_kt(k, kl, t, key, klen, ts);
}

uint32_t sst_block_seek(const sst_block *b, const uint8_t *key, size_t klen, int64_t ts)
{
    uint32_t lo = 0, hi = b->count;   /* answer in [lo, hi] */
    prefetch_seek(b);
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const uint8_t *k;
        uint32_t kl;
        int64_t t;
        bool below = sst_block_key_ts(b, mid, &k, &kl, &t) &&
                     probe_compare(k, kl, t, key, klen, ts) < 0;
        if (below)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* --------------------------------------------------------- index block */

lsm_status sst_index_entry_at(const sst_block *index, uint32_t i, sst_index_entry *out)
{
    lsm_entry e;
    lsm_status st = sst_block_entry(index, i, &e);
    if (st != LSM_OK)
        return st;
    if (e.value_len != SST_INDEX_VALUE_SIZE)
        return lsm_fail(LSM_CORRUPT, "sst index: entry %u value is %u bytes, want %u", i,
                        e.value_len, SST_INDEX_VALUE_SIZE);
    out->last_key = e.key;
    out->last_key_len = e.key_len;
    out->last_ts = e.ts;
    out->min_ts = get_i64(e.value);
    out->max_ts = get_i64(e.value + 8);
    out->handle.offset = get_u64(e.value + 16);
    out->handle.size = get_u32(e.value + 24);
    return LSM_OK;
}

uint32_t sst_index_seek(const sst_block *index, const uint8_t *key, size_t klen, int64_t ts)
{
    return sst_block_seek(index, key, klen, ts);
}

/* ------------------------------------------------------------ writing */

lsm_status sst_block_writer_add(sst_block_writer *w, const lsm_entry *e)
{
    size_t n = sst_entry_encoded_len(e);
    if (w->data.len + n > SST_MAX_BLOCK_LEN)
        return lsm_fail(LSM_TOO_LARGE, "sst block: over %u bytes", SST_MAX_BLOCK_LEN);
    lsm_status st = block_buf_reserve(&w->data, w->data.len + n);
    if (st == LSM_OK)
        st = block_buf_reserve(&w->offsets, w->offsets.len + 4);
    if (st != LSM_OK)
        return st;
    put_u32(w->offsets.data + w->offsets.len, (uint32_t) w->data.len);
    w->offsets.len += 4;
    w->data.len += sst_entry_encode(w->data.data + w->data.len, e);
    w->count++;
    return LSM_OK;
}

/* u16 offsets when every offset (all below data.len) fits. */
static unsigned writer_offset_width(const sst_block_writer *w)
{
    return w->data.len <= 0xffff ? 2 : 4;
}

size_t sst_block_writer_size(const sst_block_writer *w)
{
    return w->data.len + (size_t) w->count * writer_offset_width(w) + 4;
}

lsm_status sst_block_writer_finish(sst_block_writer *w)
{
    size_t total = sst_block_writer_size(w);
    if (total > SST_MAX_BLOCK_LEN)
        return lsm_fail(LSM_TOO_LARGE, "sst block: %zu bytes over %u", total, SST_MAX_BLOCK_LEN);
    lsm_status st = block_buf_reserve(&w->data, total);
    if (st != LSM_OK)
        return st;
    unsigned width = writer_offset_width(w);
    uint8_t *dst = w->data.data + w->data.len;
    for (uint32_t i = 0; i < w->count; i++) {
        uint32_t off = get_u32(w->offsets.data + (size_t) i * 4);
        if (width == 2)
            put_u16(dst + (size_t) i * 2, (uint16_t) off);
        else
            put_u32(dst + (size_t) i * 4, off);
    }
    w->data.len += (size_t) w->count * width;
    put_u32(w->data.data + w->data.len, w->count | (width == 2 ? SST_OFFSETS_U16 : 0));
    w->data.len += 4;
    return LSM_OK;
}

void sst_block_writer_reset(sst_block_writer *w)
{
    w->data.len = 0;
    w->offsets.len = 0;
    w->count = 0;
}

void sst_block_writer_free(sst_block_writer *w)
{
    block_buf_free(&w->data);
    block_buf_free(&w->offsets);
    w->count = 0;
}
