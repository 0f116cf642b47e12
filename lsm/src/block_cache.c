/*
 * block_cache.c — sharded CLOCK block cache in shared memory; see block_cache.h.
 *
 * Sections: geometry and addressing, the arena allocator, hash table and
 * CLOCK ring, entries, the public operations, verification.  Everything
 * inside a shard is addressed by u32 indexes (entry slots, hash buckets) or
 * u32 unit numbers (arena blocks); NIL marks "none".  All shard state is
 * protected by the shard mutex except the statistics counters and an
 * entry's pin word, which are atomics:
 *
 *   - a pin is only ever taken under the mutex (lookup, insert), so while
 *     the mutex is held no pin count can grow: an entry seen unpinned under
 *     the mutex stays unpinned until it is unlocked (eviction relies on it);
 *   - a pin is dropped without the mutex (a CAS decrement) as long as the
 *     entry is not DETACHED; the PIN_DETACHED bit lives in the same word, so
 *     erase_file's "detach or destroy" decision and a release's decrement
 *     are ordered by that one atomic.  Once the bit is set every decrement
 *     happens under the mutex, and the one that reaches zero frees the entry
 *     there: a DETACHED entry seen under the mutex always has a pin.
 */
#include "block_cache.h"
#include "status.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#define CACHE_MAGIC 0x43484b4c42574c46ull  /* "FLWBLKCH" */
#define NIL UINT32_MAX
#define ALIGN 64u

/* ---------------------------------------------------------------- arena */

#define UNIT 64u           /* arena allocation granule, bytes */
#define BLOCK_HEADER 32u   /* arena_block header before an entry's bytes */
#define SL_BITS 3          /* 8 second-level size classes per power of two */
#define SL_COUNT (1u << SL_BITS)
#define FL_COUNT 30        /* first-level classes: block sizes < 2^32 units */

/* Header of every arena block, free or used.  Physical neighbours are found
 * by size: the next block starts `units` later, the previous `prev_units`
 * earlier.  Invariant: no two physically adjacent blocks are both free. */
typedef struct arena_block {
    uint32_t units;       /* this block's size in units, header included */
    uint32_t prev_units;  /* size of the physically previous block; 0 for the first */
    uint32_t is_free;
    uint32_t entry;       /* owning entry slot when used */
    uint32_t next_free;   /* free-list links when free */
    uint32_t prev_free;
    uint32_t unused[2];
} arena_block;
_Static_assert(sizeof(arena_block) == BLOCK_HEADER, "arena_block is the block header");

/* -------------------------------------------------------------- entries */

enum entry_state {
    ENTRY_FREE = 0,   /* on the free-slot list */
    ENTRY_FILLING,    /* allocated, bytes being copied in; pinned by the inserter */
    ENTRY_CACHED,     /* in the hash table and on the CLOCK ring, pinned or not */
    ENTRY_DETACHED,   /* out of table and ring (erased while pinned); freed at 0 pins */
};

/* The pin word: pin count in the low bits, PIN_DETACHED set iff the state
 * is ENTRY_DETACHED (see the locking rules at the top). */
#define PIN_DETACHED 0x80000000u
#define PIN_COUNT    0x7fffffffu

/* One cache line per entry: a hit touches its bucket and this line only. */
typedef struct cache_entry {
    uint64_t file_no, offset;
    uint32_t len;
    uint32_t hash;        /* low 32 bits of the key hash */
    uint32_t hash_next;   /* bucket chain when CACHED; free-slot list when FREE */
    uint32_t ring_prev, ring_next;  /* CLOCK ring when CACHED */
    uint32_t block;       /* arena unit of the entry's block */
    uint32_t state;
    uint32_t referenced;  /* CLOCK reference bit: set by hits, cleared by the hand */
    _Atomic uint32_t pins;
    uint32_t unused[3];
} cache_entry;
_Static_assert(sizeof(cache_entry) == 64, "an entry is one cache line");

typedef struct cache_shard {
    pthread_mutex_t mu;
    uint64_t buckets_off, entries_off, arena_off;  /* from the shard's start */
    uint32_t nbuckets;     /* power of two */
    uint32_t nentries;
    uint32_t arena_units;
    uint32_t free_entry;   /* head of the free-slot list */
    uint32_t clock_hand;   /* next CACHED entry the sweep looks at; NIL iff the ring is empty */
    uint32_t ring_count;   /* CACHED entries, all on the ring */
    uint32_t fl_bitmap;                 /* bit f: some list in first level f is non-empty */
    uint32_t sl_bitmap[FL_COUNT];       /* bit s: free_head[f][s] non-empty */
    uint32_t free_head[FL_COUNT][SL_COUNT];
    _Atomic uint64_t hits, misses, inserts, evictions, usage_bytes, entries;
} cache_shard;

struct block_cache {
    uint64_t magic;
    uint64_t capacity;
    uint64_t shards_off;    /* first shard, from the cache's start */
    uint64_t shard_stride;  /* bytes from one shard to the next */
    uint32_t shards;
    uint32_t shard_shift;   /* key hash >> shard_shift = shard; 64 for one shard */
};

/* ------------------------------------------------------------- geometry */

typedef struct shard_geometry {
    uint32_t nbuckets, nentries, arena_units;
    uint64_t buckets_off, entries_off, arena_off, stride;
} shard_geometry;

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

static bool valid_shards(uint32_t shards)
{
    return shards >= 1 && shards <= BLOCK_CACHE_MAX_SHARDS && (shards & (shards - 1)) == 0;
}

/* One entry slot per KiB of arena (at least 64, at most one per unit): data
 * blocks are ~4 KiB, so slots run out only for unusually small entries, and
 * then an entry is evicted to free one. */
static bool shard_geometry_for(size_t capacity, uint32_t shards, shard_geometry *g)
{
    if (!valid_shards(shards))
        return false;
    uint64_t arena_bytes = (uint64_t) capacity / shards / UNIT * UNIT;
    if (arena_bytes < BLOCK_CACHE_MIN_SHARD_BYTES || arena_bytes / UNIT >= NIL)
        return false;
    g->arena_units = (uint32_t) (arena_bytes / UNIT);
    uint64_t nentries = arena_bytes / 1024;
    if (nentries < 64)
        nentries = 64;
    if (nentries > g->arena_units)
        nentries = g->arena_units;
    g->nentries = (uint32_t) nentries;
    g->nbuckets = 1;
    while (g->nbuckets < g->nentries)
        g->nbuckets <<= 1;
    g->buckets_off = align_up(sizeof(cache_shard), ALIGN);
    g->entries_off = g->buckets_off + align_up((uint64_t) g->nbuckets * sizeof(uint32_t), ALIGN);
    g->arena_off = g->entries_off + align_up((uint64_t) g->nentries * sizeof(cache_entry), ALIGN);
    g->stride = g->arena_off + arena_bytes;
    return true;
}

size_t block_cache_region_size(size_t capacity, uint32_t shards)
{
    shard_geometry g;
    if (!shard_geometry_for(capacity, shards, &g))
        return 0;
    uint64_t total = align_up(sizeof(block_cache), ALIGN) + (uint64_t) shards * g.stride;
    return total > SIZE_MAX ? 0 : (size_t) total;
}

size_t block_cache_charge(size_t len)
{
    return (size_t) align_up((uint64_t) len + BLOCK_HEADER, UNIT);
}

static cache_shard *shard_at(block_cache *c, uint32_t i)
{
    return (cache_shard *) ((char *) c + c->shards_off + (uint64_t) i * c->shard_stride);
}

static uint32_t *shard_buckets(cache_shard *s) { return (uint32_t *) ((char *) s + s->buckets_off); }

static cache_entry *shard_entry(cache_shard *s, uint32_t i)
{
    return (cache_entry *) ((char *) s + s->entries_off) + i;
}

static arena_block *arena_at(cache_shard *s, uint32_t unit)
{
    return (arena_block *) ((char *) s + s->arena_off + (uint64_t) unit * UNIT);
}

static uint8_t *entry_bytes(cache_shard *s, const cache_entry *e)
{
    return (uint8_t *) arena_at(s, e->block) + BLOCK_HEADER;
}

/* splitmix64's finalizer: every key bit affects every hash bit. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t key_hash(uint64_t file_no, uint64_t offset)
{
    return mix64(file_no * 0x9e3779b97f4a7c15ull ^ mix64(offset));
}

/* The shard takes the hash's top bits, the bucket its low bits. */
static uint32_t shard_index(const block_cache *c, uint64_t hash)
{
    return c->shard_shift >= 64 ? 0 : (uint32_t) (hash >> c->shard_shift);
}

static cache_shard *shard_for(block_cache *c, uint64_t hash)
{
    return shard_at(c, shard_index(c, hash));
}

/* ------------------------------------------------- arena: size classes */

static unsigned log2_floor(uint32_t v) { return 31u - (unsigned) __builtin_clz(v); }

/* The free list a block of `units` belongs on.  Sizes below SL_COUNT get
 * first level 0 and one list per size; above, level f covers
 * [2^(f+2), 2^(f+3)) units split into SL_COUNT equal classes. */
static void size_class(uint32_t units, uint32_t *fl, uint32_t *sl)
{
    if (units < SL_COUNT) {
        *fl = 0;
        *sl = units;
        return;
    }
    unsigned msb = log2_floor(units);
    *fl = msb - SL_BITS + 1;
    *sl = (units >> (msb - SL_BITS)) & (SL_COUNT - 1);
}

static void freelist_push(cache_shard *s, uint32_t unit)
{
    arena_block *b = arena_at(s, unit);
    uint32_t fl, sl;
    size_class(b->units, &fl, &sl);
    b->is_free = 1;
    b->prev_free = NIL;
    b->next_free = s->free_head[fl][sl];
    if (b->next_free != NIL)
        arena_at(s, b->next_free)->prev_free = unit;
    s->free_head[fl][sl] = unit;
    s->fl_bitmap |= 1u << fl;
    s->sl_bitmap[fl] |= 1u << sl;
}

static void freelist_remove(cache_shard *s, uint32_t unit)
{
    arena_block *b = arena_at(s, unit);
    uint32_t fl, sl;
    size_class(b->units, &fl, &sl);
    if (b->prev_free != NIL)
        arena_at(s, b->prev_free)->next_free = b->next_free;
    else
        s->free_head[fl][sl] = b->next_free;
    if (b->next_free != NIL)
        arena_at(s, b->next_free)->prev_free = b->prev_free;
    if (s->free_head[fl][sl] == NIL) {
        s->sl_bitmap[fl] &= ~(1u << sl);
        if (s->sl_bitmap[fl] == 0)
            s->fl_bitmap &= ~(1u << fl);
    }
    b->is_free = 0;
}

/* A free block of at least `units` in O(1): the request is rounded up to
 * the next class boundary, so any block of a class found is large enough. */
static uint32_t freelist_find_good_fit(cache_shard *s, uint32_t units)
{
    uint64_t rounded = units;
    if (units >= SL_COUNT)
        rounded += (1ull << (log2_floor(units) - SL_BITS)) - 1;
    if (rounded >= NIL)
        return NIL;
    uint32_t fl, sl;
    size_class((uint32_t) rounded, &fl, &sl);
    uint32_t sl_map = s->sl_bitmap[fl] & (~0u << sl);
    if (sl_map == 0) {
        uint32_t fl_map = fl + 1 < 32 ? s->fl_bitmap & (~0u << (fl + 1)) : 0;
        if (fl_map == 0)
            return NIL;
        fl = (uint32_t) __builtin_ctz(fl_map);
        sl_map = s->sl_bitmap[fl];
    }
    return s->free_head[fl][(uint32_t) __builtin_ctz(sl_map)];
}

/* The rounding above skips blocks in the request's own class that are just
 * large enough (e.g. the whole arena for an arena-sized entry): scan it. */
static uint32_t freelist_find_in_class(cache_shard *s, uint32_t units)
{
    uint32_t fl, sl;
    size_class(units, &fl, &sl);
    for (uint32_t u = s->free_head[fl][sl]; u != NIL; u = arena_at(s, u)->next_free)
        if (arena_at(s, u)->units >= units)
            return u;
    return NIL;
}

static void arena_init(cache_shard *s)
{
    s->fl_bitmap = 0;
    memset(s->sl_bitmap, 0, sizeof s->sl_bitmap);
    for (uint32_t f = 0; f < FL_COUNT; f++)
        for (uint32_t l = 0; l < SL_COUNT; l++)
            s->free_head[f][l] = NIL;
    arena_block *b = arena_at(s, 0);
    memset(b, 0, sizeof *b);
    b->units = s->arena_units;
    b->prev_units = 0;
    freelist_push(s, 0);
}

/* The block physically after `unit`, or NIL at the arena's end. */
static uint32_t arena_next(cache_shard *s, uint32_t unit)
{
    uint32_t next = unit + arena_at(s, unit)->units;
    return next < s->arena_units ? next : NIL;
}

/* Allocates `units` contiguous units; NIL if no free block is large enough.
 * The remainder of a larger block goes back on a free list. */
static uint32_t arena_alloc(cache_shard *s, uint32_t units)
{
    uint32_t unit = freelist_find_good_fit(s, units);
    if (unit == NIL)
        unit = freelist_find_in_class(s, units);
    if (unit == NIL)
        return NIL;
    freelist_remove(s, unit);
    arena_block *b = arena_at(s, unit);
    uint32_t rest = b->units - units;
    if (rest > 0) {
        uint32_t split = unit + units;
        arena_block *r = arena_at(s, split);
        r->units = rest;
        r->prev_units = units;
        b->units = units;
        uint32_t after = arena_next(s, split);
        if (after != NIL)
            arena_at(s, after)->prev_units = rest;
        /* The block after the original one was used (free blocks never touch),
         * so the remainder needs no coalescing. */
        freelist_push(s, split);
    }
    return unit;
}

/* Frees a used block, merging it with free neighbours. */
static void arena_free(cache_shard *s, uint32_t unit)
{
    arena_block *b = arena_at(s, unit);
    uint32_t next = arena_next(s, unit);
    if (next != NIL && arena_at(s, next)->is_free) {
        freelist_remove(s, next);
        b->units += arena_at(s, next)->units;
    }
    if (b->prev_units != 0 && arena_at(s, unit - b->prev_units)->is_free) {
        uint32_t prev = unit - b->prev_units;
        freelist_remove(s, prev);
        arena_at(s, prev)->units += b->units;
        unit = prev;
        b = arena_at(s, prev);
    }
    next = arena_next(s, unit);
    if (next != NIL)
        arena_at(s, next)->prev_units = b->units;
    freelist_push(s, unit);
}

/* ------------------------------------------------ - hash table, CLOCK ring */

static uint32_t *bucket_for(cache_shard *s, uint32_t hash)
{
    return &shard_buckets(s)[hash & (s->nbuckets - 1)];
}

static uint32_t table_find(cache_shard *s, uint32_t hash, uint64_t file_no, uint64_t offset)
{
    for (uint32_t i = *bucket_for(s, hash); i != NIL; i = shard_entry(s, i)->hash_next) {
        cache_entry *e = shard_entry(s, i);
        if (e->hash == hash && e->file_no == file_no && e->offset == offset)
            return i;
    }
    return NIL;
}

static void table_insert(cache_shard *s, uint32_t i)
{
    cache_entry *e = shard_entry(s, i);
    uint32_t *head = bucket_for(s, e->hash);
    e->hash_next = *head;
    *head = i;
}

static void table_remove(cache_shard *s, uint32_t i)
{
    uint32_t *link = bucket_for(s, shard_entry(s, i)->hash);
    while (*link != i)
        link = &shard_entry(s, *link)->hash_next;
    *link = shard_entry(s, i)->hash_next;
}

/* Links i into the ring just behind the hand: a new entry is the last one
 * the current sweep reaches, so it survives about one revolution unused. */
static void ring_insert(cache_shard *s, uint32_t i)
{
    cache_entry *e = shard_entry(s, i);
    if (s->clock_hand == NIL) {
        e->ring_prev = e->ring_next = i;
        s->clock_hand = i;
    } else {
        cache_entry *hand = shard_entry(s, s->clock_hand);
        e->ring_next = s->clock_hand;
        e->ring_prev = hand->ring_prev;
        shard_entry(s, hand->ring_prev)->ring_next = i;
        hand->ring_prev = i;
    }
    s->ring_count++;
}

static void ring_remove(cache_shard *s, uint32_t i)
{
    cache_entry *e = shard_entry(s, i);
    if (e->ring_next == i) {
        s->clock_hand = NIL;
    } else {
        shard_entry(s, e->ring_prev)->ring_next = e->ring_next;
        shard_entry(s, e->ring_next)->ring_prev = e->ring_prev;
        if (s->clock_hand == i)
            s->clock_hand = e->ring_next;
    }
    e->ring_prev = e->ring_next = NIL;
    s->ring_count--;
}

/* -------------------------------------------------------------- entries */

static void relaxed_add(_Atomic uint64_t *v, uint64_t d)
{
    atomic_fetch_add_explicit(v, d, memory_order_relaxed);
}

static void relaxed_sub(_Atomic uint64_t *v, uint64_t d)
{
    atomic_fetch_sub_explicit(v, d, memory_order_relaxed);
}

static void slot_put(cache_shard *s, uint32_t i)
{
    shard_entry(s, i)->hash_next = s->free_entry;
    s->free_entry = i;
}

/* Pins held on e.  Acquire: a release's reads of the bytes happen before
 * an evictor that sees the count at zero reuses them. */
static uint32_t pin_count(cache_entry *e)
{
    return atomic_load_explicit(&e->pins, memory_order_acquire) & PIN_COUNT;
}

/* Frees an entry's block and slot.  It must be out of the table and ring,
 * with no pins left. */
static void entry_destroy(cache_shard *s, uint32_t i)
{
    cache_entry *e = shard_entry(s, i);
    relaxed_sub(&s->usage_bytes, (uint64_t) arena_at(s, e->block)->units * UNIT);
    relaxed_sub(&s->entries, 1);
    arena_free(s, e->block);
    e->state = ENTRY_FREE;
    atomic_store_explicit(&e->pins, 0, memory_order_relaxed);
    slot_put(s, i);
}

/*
 * CLOCK: the hand walks the ring; an unpinned entry with its reference bit
 * set gets a second chance (the bit is cleared), one without is the victim,
 * pinned entries are passed over.  Two revolutions clear every bit and
 * then look at every entry once more, so none found means all are pinned.
 */
static bool evict_one(cache_shard *s)
{
    for (uint64_t step = 0, limit = 2ull * s->ring_count; step < limit; step++) {
        uint32_t i = s->clock_hand;
        cache_entry *e = shard_entry(s, i);
        s->clock_hand = e->ring_next;
        if (pin_count(e) != 0)
            continue;
        if (e->referenced) {
            e->referenced = 0;
            continue;
        }
        ring_remove(s, i);
        table_remove(s, i);
        entry_destroy(s, i);
        relaxed_add(&s->evictions, 1);
        return true;
    }
    return false;
}

/* Under the mutex (so no evictor can race it): one more pin, and a CACHED
 * entry counts as referenced.  Touches only the entry's own line. */
static void entry_pin(cache_shard *s, uint32_t i)
{
    cache_entry *e = shard_entry(s, i);
    atomic_fetch_add_explicit(&e->pins, 1, memory_order_relaxed);
    if (!e->referenced)
        e->referenced = 1;
}

static uint32_t slot_take(cache_shard *s)
{
    while (s->free_entry == NIL)
        if (!evict_one(s))
            return NIL;
    uint32_t i = s->free_entry;
    s->free_entry = shard_entry(s, i)->hash_next;
    return i;
}

/* A FILLING entry with a block of `units`, pinned once, evicting entries
 * as needed; NIL if only pinned entries are left to evict. */
static uint32_t entry_reserve(cache_shard *s, uint64_t file_no, uint64_t offset, uint32_t hash,
                              uint32_t len, uint32_t units)
{
    uint32_t i = slot_take(s);
    if (i == NIL)
        return NIL;
    uint32_t block;
    while ((block = arena_alloc(s, units)) == NIL) {
        if (!evict_one(s)) {
            slot_put(s, i);
            return NIL;
        }
    }
    cache_entry *e = shard_entry(s, i);
    e->file_no = file_no;
    e->offset = offset;
    e->len = len;
    e->hash = hash;
    e->hash_next = e->ring_prev = e->ring_next = NIL;
    e->block = block;
    e->state = ENTRY_FILLING;
    e->referenced = 0;
    atomic_store_explicit(&e->pins, 1, memory_order_relaxed);
    arena_at(s, block)->entry = i;
    relaxed_add(&s->usage_bytes, (uint64_t) units * UNIT);
    relaxed_add(&s->entries, 1);
    return i;
}

/* ------------------------------------------------------------ operations */

static void shard_init(cache_shard *s, const shard_geometry *g)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&s->mu, &attr);
    pthread_mutexattr_destroy(&attr);
    s->buckets_off = g->buckets_off;
    s->entries_off = g->entries_off;
    s->arena_off = g->arena_off;
    s->nbuckets = g->nbuckets;
    s->nentries = g->nentries;
    s->arena_units = g->arena_units;
    s->clock_hand = NIL;
    s->ring_count = 0;
    for (uint32_t b = 0; b < s->nbuckets; b++)
        shard_buckets(s)[b] = NIL;
    s->free_entry = NIL;
    for (uint32_t i = s->nentries; i-- > 0;) {
        cache_entry *e = shard_entry(s, i);
        memset(e, 0, sizeof *e);
        atomic_init(&e->pins, 0);
        slot_put(s, i);
    }
    arena_init(s);
    atomic_init(&s->hits, 0);
    atomic_init(&s->misses, 0);
    atomic_init(&s->inserts, 0);
    atomic_init(&s->evictions, 0);
    atomic_init(&s->usage_bytes, 0);
    atomic_init(&s->entries, 0);
}

lsm_status block_cache_init(void *mem, size_t capacity, uint32_t shards)
{
    shard_geometry g;
    if (mem == NULL || ((uintptr_t) mem & 15) != 0)
        return lsm_fail(LSM_INVALID, "block cache: memory %p is NULL or not 16-byte aligned", mem);
    if (!valid_shards(shards))
        return lsm_fail(LSM_INVALID, "block cache: shards = %u, must be a power of two in 1 .. %d",
                        shards, BLOCK_CACHE_MAX_SHARDS);
    if (!shard_geometry_for(capacity, shards, &g))
        return lsm_fail(LSM_INVALID,
                        "block cache: capacity %zu / %u shards out of range (each shard needs "
                        "%d bytes .. 256 GiB)", capacity, shards, BLOCK_CACHE_MIN_SHARD_BYTES);
    block_cache *c = mem;
    c->capacity = capacity;
    c->shards = shards;
    c->shard_shift = 64 - log2_floor(shards);
    c->shards_off = align_up(sizeof(block_cache), ALIGN);
    c->shard_stride = g.stride;
    for (uint32_t i = 0; i < shards; i++)
        shard_init(shard_at(c, i), &g);
    c->magic = CACHE_MAGIC;
    return LSM_OK;
}

const uint8_t *block_cache_lookup(block_cache *c, uint64_t file_no, uint64_t offset,
                                  size_t *len, cache_pin *pin)
{
    if (c == NULL || len == NULL || pin == NULL)
        return NULL;
    uint64_t hash = key_hash(file_no, offset);
    cache_shard *s = shard_for(c, hash);
    pthread_mutex_lock(&s->mu);
    uint32_t i = table_find(s, (uint32_t) hash, file_no, offset);
    if (i == NIL) {
        pthread_mutex_unlock(&s->mu);
        relaxed_add(&s->misses, 1);
        return NULL;
    }
    entry_pin(s, i);
    cache_entry *e = shard_entry(s, i);
    const uint8_t *bytes = entry_bytes(s, e);
    *len = e->len;
    /* Readers start at a block's end (an SST block's count word, a
     * filter's probe count): start that miss while we unlock. */
    if (e->len > 0)
        __builtin_prefetch(bytes + e->len - 1);
    pthread_mutex_unlock(&s->mu);
    relaxed_add(&s->hits, 1);
    *pin = (cache_pin) { shard_index(c, hash), i };
    return bytes;
}

/*
 * Publishes a filled entry.  Another inserter may have cached the same key
 * while we copied: then ours is dropped and theirs returned pinned.  An
 * erase_file during the copy turned ours DETACHED: it stays uncached and is
 * freed at release.
 */
static uint32_t entry_publish(cache_shard *s, uint32_t i)
{
    cache_entry *e = shard_entry(s, i);
    if (e->state != ENTRY_FILLING)
        return i;
    uint32_t other = table_find(s, e->hash, e->file_no, e->offset);
    if (other != NIL) {
        entry_destroy(s, i);  /* our pin was its only one: nobody else saw it */
        entry_pin(s, other);
        return other;
    }
    e->state = ENTRY_CACHED;
    table_insert(s, i);
    ring_insert(s, i);
    relaxed_add(&s->inserts, 1);
    return i;
}

const uint8_t *block_cache_insert(block_cache *c, uint64_t file_no, uint64_t offset,
                                  const uint8_t *data, size_t len, cache_pin *pin)
{
    if (c == NULL || pin == NULL || (data == NULL && len > 0))
        return NULL;
    uint64_t hash = key_hash(file_no, offset);
    cache_shard *s = shard_for(c, hash);
    if (len > UINT32_MAX - UNIT || block_cache_charge(len) / UNIT > s->arena_units)
        return NULL;  /* larger than the shard: not cacheable */
    uint32_t units = (uint32_t) (block_cache_charge(len) / UNIT);

    pthread_mutex_lock(&s->mu);
    uint32_t i = table_find(s, (uint32_t) hash, file_no, offset);
    if (i != NIL)
        entry_pin(s, i);
    else
        i = entry_reserve(s, file_no, offset, (uint32_t) hash, (uint32_t) len, units);
    bool fill = i != NIL && shard_entry(s, i)->state == ENTRY_FILLING;
    uint8_t *bytes = i != NIL ? entry_bytes(s, shard_entry(s, i)) : NULL;
    pthread_mutex_unlock(&s->mu);
    if (i == NIL)
        return NULL;

    if (fill) {
        /* The FILLING entry is invisible and pinned: copy without the lock. */
        if (len > 0)
            memcpy(bytes, data, len);
        pthread_mutex_lock(&s->mu);
        i = entry_publish(s, i);
        bytes = entry_bytes(s, shard_entry(s, i));
        pthread_mutex_unlock(&s->mu);
    }
    *pin = (cache_pin) { shard_index(c, hash), i };
    return bytes;
}

void block_cache_release(block_cache *c, cache_pin pin)
{
    if (c == NULL || pin.shard >= c->shards)
        return;
    cache_shard *s = shard_at(c, pin.shard);
    if (pin.entry >= s->nentries)
        return;
    cache_entry *e = shard_entry(s, pin.entry);
    /* Fast path: not DETACHED, so a CACHED (or FILLING) entry keeps its slot
     * at zero pins; the release order publishes our reads of the bytes to
     * the evictor that later sees zero. */
    uint32_t w = atomic_load_explicit(&e->pins, memory_order_relaxed);
    while ((w & PIN_COUNT) != 0 && (w & PIN_DETACHED) == 0) {
        if (atomic_compare_exchange_weak_explicit(&e->pins, &w, w - 1, memory_order_release,
                                                  memory_order_relaxed))
            return;
    }
    if ((w & PIN_COUNT) == 0)
        return;  /* no pins: ignored */
    /* DETACHED: decrement under the mutex; the last pin frees the entry. */
    pthread_mutex_lock(&s->mu);
    w = atomic_load_explicit(&e->pins, memory_order_relaxed);
    if (e->state == ENTRY_DETACHED && (w & PIN_COUNT) != 0) {
        atomic_fetch_sub_explicit(&e->pins, 1, memory_order_relaxed);
        if ((w & PIN_COUNT) == 1)
            entry_destroy(s, pin.entry);
    }
    pthread_mutex_unlock(&s->mu);
}

/* Under the mutex: takes e out of circulation.  With no pins it is freed
 * now; otherwise it becomes DETACHED and its last release frees it.  The
 * fetch_or orders against lock-free releases (see the top of the file). */
static void entry_detach(cache_shard *s, uint32_t i)
{
    cache_entry *e = shard_entry(s, i);
    e->state = ENTRY_DETACHED;
    uint32_t before = atomic_fetch_or_explicit(&e->pins, PIN_DETACHED, memory_order_acq_rel);
    if ((before & PIN_COUNT) == 0)
        entry_destroy(s, i);
}

static void shard_erase_file(cache_shard *s, uint64_t file_no)
{
    pthread_mutex_lock(&s->mu);
    for (uint32_t i = 0; i < s->nentries; i++) {
        cache_entry *e = shard_entry(s, i);
        if (e->file_no != file_no || (e->state != ENTRY_CACHED && e->state != ENTRY_FILLING))
            continue;
        if (e->state == ENTRY_CACHED) {
            table_remove(s, i);
            ring_remove(s, i);
        }
        entry_detach(s, i);  /* a FILLING one is pinned by its inserter, which
                                will not publish it and frees it at release */
    }
    pthread_mutex_unlock(&s->mu);
}

void block_cache_erase_file(block_cache *c, uint64_t file_no)
{
    if (c == NULL)
        return;
    for (uint32_t i = 0; i < c->shards; i++)
        shard_erase_file(shard_at(c, i), file_no);
}

static uint64_t relaxed_load(_Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

void block_cache_get_stats(block_cache *c, block_cache_stats *st)
{
    memset(st, 0, sizeof *st);
    if (c == NULL)
        return;
    st->capacity_bytes = c->capacity;
    for (uint32_t i = 0; i < c->shards; i++) {
        cache_shard *s = shard_at(c, i);
        st->hits += relaxed_load(&s->hits);
        st->misses += relaxed_load(&s->misses);
        st->inserts += relaxed_load(&s->inserts);
        st->evictions += relaxed_load(&s->evictions);
        st->usage_bytes += relaxed_load(&s->usage_bytes);
        st->entries += relaxed_load(&s->entries);
    }
}

/* --------------------------------------------------------- verification */

#define VERIFY(cond, ...) do { if (!(cond)) return lsm_fail(LSM_CORRUPT, __VA_ARGS__); } while (0)

/* Physical walk: sizes chain, back-links match, no adjacent free blocks,
 * used blocks belong to live entries of the right size.  Returns the number
 * of free blocks and the used units. */
static lsm_status verify_arena(cache_shard *s, uint32_t sh, uint64_t *free_blocks,
                               uint64_t *used_units)
{
    uint32_t unit = 0, prev_units = 0;
    bool prev_free = false;
    *free_blocks = *used_units = 0;
    while (unit < s->arena_units) {
        arena_block *b = arena_at(s, unit);
        VERIFY(b->units >= 1 && b->units <= s->arena_units - unit,
               "block cache shard %u: block at unit %u has bad size %u", sh, unit, b->units);
        VERIFY(b->prev_units == prev_units, "block cache shard %u: block at unit %u: prev_units %u, "
               "previous block has %u", sh, unit, b->prev_units, prev_units);
        if (b->is_free) {
            VERIFY(!prev_free, "block cache shard %u: adjacent free blocks at unit %u", sh, unit);
            (*free_blocks)++;
        } else {
            VERIFY(b->entry < s->nentries, "block cache shard %u: block %u owner %u out of range",
                   sh, unit, b->entry);
            cache_entry *e = shard_entry(s, b->entry);
            VERIFY(e->state != ENTRY_FREE && e->block == unit &&
                   block_cache_charge(e->len) == (uint64_t) b->units * UNIT,
                   "block cache shard %u: block %u does not match its entry %u", sh, unit, b->entry);
            *used_units += b->units;
        }
        prev_free = b->is_free;
        prev_units = b->units;
        unit += b->units;
    }
    return LSM_OK;
}

static lsm_status verify_free_lists(cache_shard *s, uint32_t sh, uint64_t free_blocks)
{
    uint64_t listed = 0;
    for (uint32_t f = 0; f < FL_COUNT; f++) {
        VERIFY(((s->fl_bitmap >> f) & 1) == (s->sl_bitmap[f] != 0),
               "block cache shard %u: first-level bitmap bit %u is wrong", sh, f);
        for (uint32_t l = 0; l < SL_COUNT; l++) {
            uint32_t head = s->free_head[f][l];
            VERIFY(((s->sl_bitmap[f] >> l) & 1) == (head != NIL),
                   "block cache shard %u: second-level bitmap bit %u/%u is wrong", sh, f, l);
            uint32_t prev = NIL;
            for (uint32_t u = head; u != NIL; u = arena_at(s, u)->next_free) {
                VERIFY(u < s->arena_units && listed < free_blocks,
                       "block cache shard %u: free list %u/%u is broken", sh, f, l);
                arena_block *b = arena_at(s, u);
                uint32_t bf, bl;
                size_class(b->units, &bf, &bl);
                VERIFY(b->is_free && bf == f && bl == l && b->prev_free == prev,
                       "block cache shard %u: block %u misfiled on free list %u/%u", sh, u, f, l);
                prev = u;
                listed++;
            }
        }
    }
    VERIFY(listed == free_blocks, "block cache shard %u: %llu free blocks, %llu on free lists",
           sh, (unsigned long long) free_blocks, (unsigned long long) listed);
    return LSM_OK;
}

/* The pin word against the state: FREE has none; FILLING and DETACHED have
 * at least one (the inserter's; DETACHED ones are freed at their last);
 * PIN_DETACHED is set iff DETACHED.  CACHED pins may drop concurrently. */
static bool pins_match_state(cache_entry *e)
{
    uint32_t w = atomic_load_explicit(&e->pins, memory_order_relaxed);
    bool detached = (w & PIN_DETACHED) != 0;
    switch (e->state) {
    case ENTRY_FREE: return w == 0;
    case ENTRY_FILLING: return !detached && (w & PIN_COUNT) > 0;
    case ENTRY_CACHED: return !detached;
    case ENTRY_DETACHED: return detached && (w & PIN_COUNT) > 0;
    default: return false;
    }
}

/* The ring is circular and doubly linked, holds exactly ring_count entries,
 * all CACHED, and the hand is on it (NIL iff it is empty). */
static lsm_status verify_ring(cache_shard *s, uint32_t sh)
{
    if (s->clock_hand == NIL) {
        VERIFY(s->ring_count == 0, "block cache shard %u: no clock hand but %u entries on the ring",
               sh, s->ring_count);
        return LSM_OK;
    }
    uint32_t i = s->clock_hand, n = 0;
    do {
        VERIFY(i < s->nentries && n < s->ring_count && shard_entry(s, i)->state == ENTRY_CACHED,
               "block cache shard %u: ring broken at entry %u", sh, i);
        uint32_t next = shard_entry(s, i)->ring_next;
        VERIFY(next < s->nentries && shard_entry(s, next)->ring_prev == i,
               "block cache shard %u: ring links broken after entry %u", sh, i);
        i = next;
        n++;
    } while (i != s->clock_hand);
    VERIFY(n == s->ring_count, "block cache shard %u: %u entries on the ring, count says %u", sh,
           n, s->ring_count);
    return LSM_OK;
}

static lsm_status verify_entries(cache_shard *s, uint32_t sh)
{
    uint64_t live = 0, cached = 0, in_table = 0, free_slots = 0;
    for (uint32_t i = 0; i < s->nentries; i++) {
        cache_entry *e = shard_entry(s, i);
        live += e->state != ENTRY_FREE;
        cached += e->state == ENTRY_CACHED;
        VERIFY(pins_match_state(e), "block cache shard %u: entry %u in state %u has pin word %#x",
               sh, i, e->state, atomic_load_explicit(&e->pins, memory_order_relaxed));
    }
    for (uint32_t i = s->free_entry; i != NIL; i = shard_entry(s, i)->hash_next) {
        VERIFY(i < s->nentries && shard_entry(s, i)->state == ENTRY_FREE &&
               free_slots < s->nentries, "block cache shard %u: free-slot list broken", sh);
        free_slots++;
    }
    for (uint32_t b = 0; b < s->nbuckets; b++)
        for (uint32_t i = shard_buckets(s)[b]; i != NIL; i = shard_entry(s, i)->hash_next) {
            VERIFY(i < s->nentries && in_table < s->nentries && shard_entry(s, i)->state ==
                   ENTRY_CACHED && (shard_entry(s, i)->hash & (s->nbuckets - 1)) == b,
                   "block cache shard %u: hash bucket %u broken", sh, b);
            cache_entry *e = shard_entry(s, i);
            VERIFY(table_find(s, e->hash, e->file_no, e->offset) == i,
                   "block cache shard %u: key (%llu, %llu) cached twice", sh,
                   (unsigned long long) e->file_no, (unsigned long long) e->offset);
            in_table++;
        }
    lsm_status st = verify_ring(s, sh);
    if (st != LSM_OK)
        return st;
    VERIFY(in_table == cached && s->ring_count == cached && free_slots + live == s->nentries &&
           live == relaxed_load(&s->entries),
           "block cache shard %u: counts disagree (table %llu/%llu cached, ring %u, "
           "%llu free + %llu live slots of %u, entries stat %llu)", sh,
           (unsigned long long) in_table, (unsigned long long) cached, s->ring_count,
           (unsigned long long) free_slots, (unsigned long long) live, s->nentries,
           (unsigned long long) relaxed_load(&s->entries));
    return LSM_OK;
}

static lsm_status verify_shard(cache_shard *s, uint32_t sh)
{
    uint64_t free_blocks, used_units;
    lsm_status st = verify_arena(s, sh, &free_blocks, &used_units);
    if (st == LSM_OK)
        st = verify_free_lists(s, sh, free_blocks);
    if (st == LSM_OK)
        st = verify_entries(s, sh);
    if (st == LSM_OK && used_units * UNIT != relaxed_load(&s->usage_bytes))
        st = lsm_fail(LSM_CORRUPT, "block cache shard %u: %llu bytes in used blocks, usage says %llu",
                      sh, (unsigned long long) (used_units * UNIT),
                      (unsigned long long) relaxed_load(&s->usage_bytes));
    return st;
}

lsm_status block_cache_verify(block_cache *c)
{
    if (c == NULL || c->magic != CACHE_MAGIC)
        return lsm_fail(LSM_CORRUPT, "block cache: missing or bad magic");
    for (uint32_t i = 0; i < c->shards; i++) {
        cache_shard *s = shard_at(c, i);
        pthread_mutex_lock(&s->mu);
        lsm_status st = verify_shard(s, i);
        pthread_mutex_unlock(&s->mu);
        if (st != LSM_OK)
            return st;
    }
    return LSM_OK;
}
