/* bloom.c — building and probing the per-table bloom filter (see bloom.h). */
#include "bloom.h"

#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t bloom_hash(const void *key, size_t klen)
{
    return XXH3_64bits(key, klen);
}

uint32_t bloom_probes(uint32_t bits_per_key)
{
    /* round(bits * ln 2) in integer arithmetic: ln 2 ~= 0.693147 */
    uint32_t k = (uint32_t) (((uint64_t) bits_per_key * 693147u + 500000u) / 1000000u);
    if (k < 1)
        k = 1;
    if (k > BLOOM_MAX_PROBES)
        k = BLOOM_MAX_PROBES;
    return k;
}

static uint64_t second_hash(uint64_t h)
{
    return ((h >> 17) | (h << 47)) | 1u;
}

/* Cache-line-blocked layout (the k byte has BLOOM_BLOCKED set): the bits are
 * 64-byte blocks; a key's probes all fall in one block, chosen from the
 * hash's high 32 bits, so a probe costs one cache miss instead of k. */
#define BLOCK_BITS 512u

static uint64_t block_of(uint64_t h, uint64_t nblocks)
{
    return ((h >> 32) * nblocks) >> 32; /* multiply-shift: h_hi * nblocks / 2^32 */
}

size_t bloom_filter_len(size_t nkeys, uint32_t bits_per_key)
{
    uint64_t bits = (uint64_t) nkeys * bits_per_key;
    uint64_t blocks = (bits + BLOCK_BITS - 1) / BLOCK_BITS;
    if (blocks < 1)
        blocks = 1;
    return (size_t) (blocks * (BLOCK_BITS / 8)) + 1;
}

void bloom_build(const uint64_t *hashes, size_t n, uint32_t bits_per_key, uint8_t *out)
{
    size_t len = bloom_filter_len(n, bits_per_key);
    uint64_t nblocks = (uint64_t) (len - 1) / (BLOCK_BITS / 8);
    uint32_t k = bloom_probes(bits_per_key);

    memset(out, 0, len - 1);
    out[len - 1] = (uint8_t) (BLOOM_BLOCKED | k);
    for (size_t i = 0; i < n; i++) {
        uint8_t *block = out + block_of(hashes[i], nblocks) * (BLOCK_BITS / 8);
        uint32_t h = (uint32_t) hashes[i], delta = (h >> 17 | h << 15) | 1u;
        for (uint32_t j = 0; j < k; j++) {
            uint32_t bit = h % BLOCK_BITS;
            block[bit >> 3] |= (uint8_t) (1u << (bit & 7));
            h += delta;
        }
    }
}

static bool blocked_may_contain(const uint8_t *filter, size_t len, uint32_t k, uint64_t hash)
{
    uint64_t nblocks = (uint64_t) (len - 1) / (BLOCK_BITS / 8);
    if (nblocks == 0)
        return true;
    const uint8_t *block = filter + block_of(hash, nblocks) * (BLOCK_BITS / 8);
    uint32_t h = (uint32_t) hash, delta = (h >> 17 | h << 15) | 1u;
    for (uint32_t j = 0; j < k; j++) {
        uint32_t bit = h % BLOCK_BITS;
        if (!(block[bit >> 3] & (1u << (bit & 7))))
            return false;
        h += delta;
    }
    return true;
}

/* Format-1 filters (no BLOOM_BLOCKED flag), still read from older tables. */
static bool flat_may_contain(const uint8_t *filter, size_t len, uint32_t k, uint64_t hash)
{
    uint64_t nbits = (uint64_t) (len - 1) * 8;
    uint64_t h = hash, delta = second_hash(hash);
    for (uint32_t j = 0; j < k; j++) {
        uint64_t bit = h % nbits;
        if (!(filter[bit >> 3] & (1u << (bit & 7))))
            return false;
        h += delta;
    }
    return true;
}

bool bloom_may_contain(const uint8_t *filter, size_t len, uint64_t hash)
{
    if (filter == NULL || len < 2)
        return true;
    uint32_t k = filter[len - 1] & ~BLOOM_BLOCKED;
    if (k < 1 || k > BLOOM_MAX_PROBES)
        return true;
    if (filter[len - 1] & BLOOM_BLOCKED)
        return blocked_may_contain(filter, len, k, hash);
    return flat_may_contain(filter, len, k, hash);
}

void bloom_prefetch(const uint8_t *filter, size_t len, uint64_t hash)
{
    if (filter == NULL || len < 2 || !(filter[len - 1] & BLOOM_BLOCKED))
        return;
    uint64_t nblocks = (uint64_t) (len - 1) / (BLOCK_BITS / 8);
    if (nblocks > 0)
        __builtin_prefetch(filter + block_of(hash, nblocks) * (BLOCK_BITS / 8));
}
