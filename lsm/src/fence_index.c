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
    fence *f = malloc(sizeof *f * index->count);
    if (!f)
        return lsm_fail(LSM_NO_MEMORY, "fence index of %u blocks", index->count);
    size_t common = common_prefix(first, flen, last, llen);
    for (uint32_t i = 0; i < index->count; i++) {
        const uint8_t *k;
        uint32_t kl;
        if (!sst_block_key_ts(index, i, &k, &kl, &f[i].ts)) {
            free(f);
            return LSM_OK; /* malformed: plain search reports it */
        }
        f[i].key8 = key8_after(k, kl, common);
        f[i].tail_len = kl - (uint32_t) common;
    }
    fi->fences = f;
    fi->count = index->count;
    fi->common = first;
    fi->common_len = (uint32_t) common;
    return LSM_OK;
}

void fence_index_free(fence_index *fi)
{
    free(fi->fences);
    memset(fi, 0, sizeof *fi);
}

/* Compares index entry i with the target; key8 is the target's fence. */
static int fence_cmp(const fence_index *fi, const sst_block *index, uint32_t i, uint64_t key8,
                     const uint8_t *key, size_t klen, int64_t ts)
{
    const fence *f = &fi->fences[i];
    if (f->key8 != key8)
        return f->key8 < key8 ? -1 : 1;
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
    if (!fi->fences || klen < fi->common_len || memcmp(key, fi->common, fi->common_len) != 0)
        return sst_index_seek(index, key, klen, ts);
    uint64_t key8 = key8_after(key, klen, fi->common_len);
    uint32_t lo = 0, hi = fi->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (fence_cmp(fi, index, mid, key8, key, klen, ts) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
