/*
 * bloom.h — the per-table bloom filter over distinct keys.
 *
 * Filter bytes: the bits, then one byte: k (probes per key), with
 * BLOOM_BLOCKED set in the filters this engine writes.
 *   blocked (written now): the bits are 64-byte blocks; a key with 64-bit
 *     hash h uses block (h >> 32) * nblocks >> 32, and probe j tests bit
 *     (h1 + j*h2) mod 512 of it, h1 = low 32 bits of h, h2 = h1 rotated
 *     right by 17 bits, forced odd: one cache line per probe.
 *   flat (older tables): probe j tests bit (h1 + j*h2) mod nbits of all the
 *     bits, h1 = h, h2 = h rotated right by 17 bits, forced odd.
 * k = round(bits_per_key * ln 2), clamped to 1..30.
 *
 * bloom_hash() is exposed so a lookup hashes its key once and probes the
 * filters of every table with the same value.
 */
#ifndef LSM_BLOOM_H
#define LSM_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLOOM_MIN_BITS_PER_KEY 1u
#define BLOOM_MAX_BITS_PER_KEY 32u
#define BLOOM_MAX_PROBES       30u
#define BLOOM_BLOCKED          0x80u

uint64_t bloom_hash(const void *key, size_t klen);
/* Probes per key for bits_per_key (1..32). */
uint32_t bloom_probes(uint32_t bits_per_key);
/* Filter bytes for nkeys keys (whole 64-byte blocks, at least one, + the k byte). */
size_t bloom_filter_len(size_t nkeys, uint32_t bits_per_key);
/* Writes a filter of bloom_filter_len(n, bits_per_key) bytes to out. */
void bloom_build(const uint64_t *hashes, size_t n, uint32_t bits_per_key, uint8_t *out);
/* False only if the key with this hash is certainly absent.  A malformed or
 * empty filter answers true. */
bool bloom_may_contain(const uint8_t *filter, size_t len, uint64_t hash);
/* Starts loading the cache line bloom_may_contain(hash) will read first. */
void bloom_prefetch(const uint8_t *filter, size_t len, uint64_t hash);

#endif /* LSM_BLOOM_H */
