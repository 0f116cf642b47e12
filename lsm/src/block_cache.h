/*
 * block_cache.h — a sharded CLOCK cache of byte strings that lives in the region.
 *
 * Keys are (file_no, offset); values are byte strings (decompressed SST data
 * blocks, index and filter blocks).  The whole cache — header, shards, hash
 * tables, entry slots and the bytes themselves — is one contiguous piece of
 * memory of block_cache_region_size() bytes, addressed only by offsets from
 * its start, so processes may map it at different addresses.
 *
 * Layout (every part 64-byte aligned, offsets from the cache's start):
 *
 *   block_cache header | shard 0 | shard 1 | ... | shard N-1
 *   shard = cache_shard header | hash buckets (u32) | entry slots (64 B) | arena
 *
 * Each shard owns capacity/shards bytes of arena and a process-shared mutex.
 * The arena is carved by a two-level segregated-fit allocator (TLSF style):
 * blocks are whole 64-byte units with a 32-byte header, adjacent free blocks
 * are always coalesced, and free blocks sit on 8 size-class lists per power
 * of two, so allocation and free are O(1) and an entry costs its length plus
 * 32 bytes rounded up to 64 (block_cache_charge).
 *
 * Replacement is CLOCK (second chance): cached entries sit on a ring in
 * insertion order, pinned or not; a hit sets the entry's reference bit and
 * nothing else.  When an insert finds no free block large enough, the hand
 * sweeps the ring, clearing set bits, passing over pinned entries, and evicts
 * the first unpinned entry whose bit is clear (a new entry goes just behind
 * the hand); if two revolutions find none, everything is pinned and the
 * insert returns NULL.  So a hit is one mutex round trip (hash chain, pin,
 * bit: the bucket's and the entry's cache lines) and a release is one atomic
 * decrement without the mutex.
 *
 * Invariants (checked by block_cache_verify):
 *   - usage (sum of block_cache_charge over live entries) <= capacity;
 *   - an entry with a pin is never evicted, moved or freed; erased or
 *     replaced entries that are still pinned are freed at their last release
 *     (under the mutex); entries are pinned only under the mutex;
 *   - the ring holds exactly the entries in the hash table;
 *   - lookups and inserts hold the shard mutex only for table operations;
 *     bytes are copied in outside it (the entry is invisible until complete).
 *
 * Not for crash recovery: a process that dies holding a shard mutex or a pin
 * leaves it held (the host re-initialises the region after such a crash).
 */
#ifndef LSM_BLOCK_CACHE_H
#define LSM_BLOCK_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "lsm.h"

#define BLOCK_CACHE_MAX_SHARDS 256
#define BLOCK_CACHE_MIN_SHARD_BYTES 4096  /* smallest arena per shard */

typedef struct block_cache block_cache;  /* the header at the start of its memory */

/* Bytes of memory a cache of `capacity` arena bytes over `shards` shards
 * needs (capacity plus hash tables and entry slots, ~6% more); 0 if the
 * parameters are invalid (shards not a power of two in 1..256, or
 * capacity / shards below BLOCK_CACHE_MIN_SHARD_BYTES). */
size_t block_cache_region_size(size_t capacity, uint32_t shards);

/* Once, by the host: lays out an empty cache in `mem` (block_cache_region_size
 * bytes, 16-byte aligned).  LSM_INVALID on bad parameters. */
lsm_status block_cache_init(void *mem, size_t capacity, uint32_t shards);

/* A pin: indexes only, so it is valid in any process mapping the cache. */
typedef struct cache_pin { uint32_t shard; uint32_t entry; } cache_pin;

/* Hit: the cached bytes (valid until block_cache_release(pin)), *len, *pin.
 * Miss: NULL. */
const uint8_t *block_cache_lookup(block_cache *c, uint64_t file_no, uint64_t offset,
                                  size_t *len, cache_pin *pin);

/* Copies `data` in and returns the cached copy pinned; if the key is already
 * cached, returns that entry pinned instead.  NULL when it cannot be cached
 * (larger than a shard, or everything evictable is pinned): the caller then
 * keeps using its own copy. */
const uint8_t *block_cache_insert(block_cache *c, uint64_t file_no, uint64_t offset,
                                  const uint8_t *data, size_t len, cache_pin *pin);

/* Drops one pin: a lock-free decrement, unless the entry was erased (then
 * under the shard mutex, freeing it at its last pin).  Each pin is released
 * exactly once: a second release may drop a pin someone else holds on a
 * reused slot.  Out-of-range pins and entries without pins are ignored. */
void block_cache_release(block_cache *c, cache_pin pin);

/* Drops every entry of a deleted table; pinned ones are freed at their last
 * release.  Scans every shard (rare). */
void block_cache_erase_file(block_cache *c, uint64_t file_no);

typedef struct block_cache_stats {
    uint64_t hits, misses, inserts, evictions;
    uint64_t usage_bytes;     /* sum of block_cache_charge() of live entries */
    uint64_t capacity_bytes;  /* as passed to block_cache_init */
    uint64_t entries;         /* live entries, cached or pinned-after-erase */
} block_cache_stats;

void block_cache_get_stats(block_cache *c, block_cache_stats *st);

/* Arena bytes an entry of `len` bytes occupies (header + data, whole units). */
size_t block_cache_charge(size_t len);

/* Walks every shard under its mutex and checks the allocator, hash table,
 * CLOCK ring, pin words and accounting against each other.  LSM_CORRUPT names the first broken
 * invariant.  For tests and debugging: O(size of the cache). */
lsm_status block_cache_verify(block_cache *c);

#endif /* LSM_BLOCK_CACHE_H */
