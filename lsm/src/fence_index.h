/*
 * fence_index.h — a compact, process-local search array over a table's index
 * block, for point reads.
 *
 * Index entries are the last (key, ts) of each data block, sorted.  All keys
 * of one index share a prefix (that of its first and last keys); the fence
 * keeps, per block, the next 8 key bytes after it as a big-endian integer
 * (zero-padded), the key's length past the prefix, and the ts.  For keys
 * a, b sharing the prefix: key8(a) < key8(b) implies a < b; with equal key8
 * and both keys ending inside the 8-byte window, the shorter is a prefix of
 * the longer (only zero bytes differ), so lengths then ts decide; otherwise
 * the full comparison does.
 *
 * The key8 values sit in a dense array of their own (8 bytes per block), so
 * a seek's binary search touches few cache lines and usually compares
 * integers only; the rest of a fence (ts, tail length, and the block's
 * handle, copied from the index entry) is read for the answer and for
 * blocks with equal key8.  With the handle at hand a point read needs no
 * index-entry decoding.
 */
#ifndef LSM_FENCE_INDEX_H
#define LSM_FENCE_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "lsm.h"
#include "sst.h"

typedef struct fence {
    int64_t ts;
    uint64_t block_offset;      /* the data block's sst_handle */
    uint32_t block_size;
    uint32_t tail_len;          /* key length past the common prefix */
} fence;

typedef struct fence_index {
    uint64_t *key8;             /* one per index entry; NULL: not built */
    fence *fences;              /* one per index entry, same allocation */
    uint32_t count;
    uint32_t common_len;
    const uint8_t *common;      /* points into the index block's first key */
} fence_index;

/* Builds the fences for `index` (worth it from a few dozen blocks up);
 * leaves fi->key8 NULL for small or malformed indexes. */
lsm_status fence_index_build(fence_index *fi, const sst_block *index);
void fence_index_free(fence_index *fi);
/* Same answer as sst_index_seek(index, key, klen, ts). */
uint32_t fence_index_seek(const fence_index *fi, const sst_block *index, const uint8_t *key,
                          size_t klen, int64_t ts);
/* Block i's handle, as sst_index_entry_at would decode it; false when the
 * fences are not built or i is out of range (decode the index entry then). */
bool fence_index_handle(const fence_index *fi, uint32_t i, sst_handle *h);

#endif /* LSM_FENCE_INDEX_H */
