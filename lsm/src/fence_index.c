/* fence_index.c — see fence_index.h. */
#include "fence_index.h"

#include <stdlib.h>
#include <string.h>

#include "entry.h"
#include "status.h"

#define FENCE_MIN_BLOCKS 32

static uint64_t key8_after(const uint8_t *key, size_t klen, size_t from)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = v << 8 | (from + i < klen ? key[from + i] : 0);
    return v;
}

static size_t common_prefix(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen, i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* Fills fence i from index entry i; false if the entry is malformed. */
static bool fence_from_entry(fence_index *fi, const sst_block *index, uint32_t i)
{
    sst_index_entry ie;
    if (sst_index_entry_at(index, i, &ie) != LSM_OK)
        return false;
    fi->key8[i] = key8_after(ie.last_key, ie.last_key_len, fi->common_len);
    fi->fences[i] = (fence) {
        .ts = ie.last_ts, .block_offset = ie.handle.offset, .block_size = ie.handle.size,
        .tail_len = ie.last_key_len - fi->common_len,
    };
    return true;
}

lsm_status fence_index_build(fence_index *fi, const sst_block *index)
{
    memset(fi, 0, sizeof *fi);
    if (index->count < FENCE_MIN_BLOCKS)
        return LSM_OK;
    const uint8_t *first, *last;
    uint32_t flen, llen;
    int64_t ts;
    if (!sst_block_key_ts(index, 0, &first, &flen, &ts) ||
        !sst_block_key_ts(index, index->count - 1, &last, &llen, &ts))
        return LSM_OK;
    void *mem = malloc((sizeof(uint64_t) + sizeof(fence)) * (size_t) index->count);
    if (!mem)
        return lsm_fail(LSM_NO_MEMORY, "fence index of %u blocks", index->count);
    fi->key8 = mem;
    fi->fences = (fence *) (fi->key8 + index->count);
    fi->common = first;
    fi->common_len = (uint32_t) common_prefix(first, flen, last, llen);
    fi->count = index->count;
    for (uint32_t i = 0; i < index->count; i++)
        if (!fence_from_entry(fi, index, i)) {
            fence_index_free(fi);
            return LSM_OK; /* malformed: plain search reports it */
        }
    return LSM_OK;
}

void fence_index_free(fence_index *fi)
{
    free(fi->key8);
    memset(fi, 0, sizeof *fi);
}

/* Compares index entry i, whose key8 equals the target's, with the target. */
static int fence_cmp_equal_key8(const fence_index *fi, const sst_block *index, uint32_t i,
                                const uint8_t *key, size_t klen, int64_t ts)
{
    const fence *f = &fi->fences[i];
    size_t tail = klen - fi->common_len;
    if (f->tail_len <= 8 && tail <= 8) {
        if (f->tail_len != tail)
            return f->tail_len < tail ? -1 : 1;
        return (f->ts > ts) - (f->ts < ts);
    }
    const uint8_t *k;
    uint32_t kl;
    int64_t t;
    if (!sst_block_key_ts(index, i, &k, &kl, &t))
        return 1; /* as sst_block_seek: malformed sorts high */
    return entry_compare_kt(k, kl, t, key, klen, ts);
}

uint32_t fence_index_seek(const fence_index *fi, const sst_block *index, const uint8_t *key,
                          size_t klen, int64_t ts)
{
    if (!fi->key8 || klen < fi->common_len || memcmp(key, fi->common, fi->common_len) != 0)
        return sst_index_seek(index, key, klen, ts);
    uint64_t key8 = key8_after(key, klen, fi->common_len);
    /* [lo, hi): the blocks whose key8 equals the target's; the answer is
     * the first of them not below the target, or hi. */
    uint32_t lo = 0, hi = fi->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (fi->key8[mid] < key8)
            lo = mid + 1;
        else
            hi = mid;
    }
    hi = lo;
    while (hi < fi->count && fi->key8[hi] == key8 && hi - lo < 4)
        hi++;
    if (hi < fi->count && fi->key8[hi] == key8) {   /* a long run: search its end */
        uint32_t end = fi->count;
        while (hi < end) {
            uint32_t mid = hi + (end - hi) / 2;
            if (fi->key8[mid] == key8)
                hi = mid + 1;
            else
                end = mid;
        }
    }
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (fence_cmp_equal_key8(fi, index, mid, key, klen, ts) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool fence_index_handle(const fence_index *fi, uint32_t i, sst_handle *h)
{
    if (!fi->key8 || i >= fi->count)
        return false;
    h->offset = fi->fences[i].block_offset;
    h->size = fi->fences[i].block_size;
    return true;
}
