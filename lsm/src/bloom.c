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

size_t bloom_filter_len(size_t nkeys, uint32_t bits_per_key)
{
    uint64_t bits = (uint64_t) nkeys * bits_per_key;
    if (bits < 64)
        bits = 64;
    return (size_t) ((bits + 7) / 8) + 1;
}

void bloom_build(const uint64_t *hashes, size_t n, uint32_t bits_per_key, uint8_t *out)
{
    size_t len = bloom_filter_len(n, bits_per_key);
    uint64_t nbits = (uint64_t) (len - 1) * 8;
    uint32_t k = bloom_probes(bits_per_key);

    memset(out, 0, len - 1);
    out[len - 1] = (uint8_t) k;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = hashes[i], delta = second_hash(h);
        for (uint32_t j = 0; j < k; j++) {
            uint64_t bit = h % nbits;
            out[bit >> 3] |= (uint8_t) (1u << (bit & 7));
            h += delta;
        }
    }
}

bool bloom_may_contain(const uint8_t *filter, size_t len, uint64_t hash)
{
    if (filter == NULL || len < 2)
        return true;
    uint32_t k = filter[len - 1];
    if (k < 1 || k > BLOOM_MAX_PROBES)
        return true;
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
