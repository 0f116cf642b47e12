/*
 * memtable.h — a skiplist in a fixed arena inside the shared region.
 *
 * Concurrency: one writer at a time (the caller holds the engine's write
 * lock); any number of readers in any process, lock-free.  A node is fully
 * written before it is linked (release stores), and readers follow links
 * with acquire loads, as in LevelDB's skiplist.
 *
 * Addressing: every link is a 32-bit offset from the memtable's own base, so
 * the structure is valid in every process that maps the region, whatever the
 * mapping address.  Offset 0 is "null" (the header occupies it).
 *
 * Nodes are allocated bump-style and never freed individually; the whole
 * arena is reset when the memtable is recycled.  Because the writer is
 * serialised, the nodes of one batch occupy one contiguous arena range,
 * which lets an abort flag them all without a lookup (memtable_mark_aborted).
 *
 * Order: entry_compare (key asc, ts asc, seq desc).  Level 0 also keeps a
 * backward link for reverse iteration; a reader going backwards may miss a
 * node linked concurrently, which is harmless because such a node's seq is
 * above every snapshot that existed before it was linked.
 *
 * Range tombstones live in a separate singly-linked list (newest first).
 *
 * Point lookups use a hash index beside the skiplist: open addressing over
 * 64-bit slots (hash tag << 32 | node offset), one slot per (key, ts),
 * always pointing at that (key, ts)'s newest node (older versions follow it
 * on level 0).  The writer publishes a slot after linking the node.  When
 * the index passes 3/4 load it stops being maintained (hash_complete = 0)
 * and lookups fall back to the skiplist.
 */
#ifndef LSM_MEMTABLE_H
#define LSM_MEMTABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "entry.h"
#include "lsm.h"

#define MEM_MAX_HEIGHT 12

typedef struct mem_node {
    uint32_t node_size;     /* bytes, for walking the arena */
    uint8_t height;
    uint8_t type;           /* enum entry_type */
    _Atomic uint8_t aborted;
    uint8_t pad_;
    uint32_t key_len;
    uint32_t value_len;
    int64_t ts;
    uint64_t seq;
    int64_t expire_at;
    _Atomic uint32_t prev;  /* level-0 backward link */
    _Atomic uint32_t next[]; /* height links, then key bytes, then value */
} mem_node;

typedef struct memtable {
    _Atomic uint32_t used;          /* arena bytes allocated (incl. header) */
    uint32_t capacity;              /* arena bytes */
    uint32_t head;                  /* offset of the head node */
    _Atomic uint32_t rt_head;       /* newest range tombstone node, 0 if none */
    _Atomic uint32_t max_height;
    uint32_t rand_state;
    _Atomic uint64_t entries;       /* point entries + range tombstones */
    _Atomic uint64_t data_bytes;    /* key + value bytes */
    _Atomic uint64_t min_seq, max_seq;
    /* Writer-only insert hint: the last node inserted and its predecessors
     * at each level.  Reused when the next entry sorts right after it, so
     * ordered inserts cost O(height) instead of a search from the head. */
    uint32_t hint_last;
    uint32_t hint_prevs[MEM_MAX_HEIGHT];
    uint32_t hash_off;              /* offset of the slot array */
    uint32_t hash_mask;             /* slots - 1 */
    uint32_t hash_used;             /* writer-only */
    _Atomic uint32_t hash_complete; /* every point node is indexed */
    /* arena follows, 8-byte aligned */
} memtable;

/* Bytes a memtable of `capacity` arena bytes occupies in the region. */
size_t memtable_footprint(size_t capacity);
void memtable_init(memtable *m, size_t capacity);
/* Worst-case arena bytes one entry needs (for admission checks). */
size_t memtable_entry_cost(size_t key_len, size_t value_len);
bool memtable_has_room(const memtable *m, size_t bytes);
bool memtable_is_empty(const memtable *m);

/* Writer only.  Returns LSM_TOO_LARGE if the arena is full (callers check
 * memtable_has_room for the whole batch first). */
lsm_status memtable_add(memtable *m, const lsm_entry *e);
/* Hash of a point entry for the hash index, after prefetching its slot: a
 * writer with a whole batch in hand prefetches every slot first so the
 * cache misses overlap, then inserts with memtable_add_hashed. */
uint64_t memtable_prefetch_slot(const memtable *m, const lsm_entry *e);
lsm_status memtable_add_hashed(memtable *m, const lsm_entry *e, uint64_t hash);
uint32_t memtable_alloc_mark(const memtable *m);
/* Flags every node allocated in [from, to) as aborted (invisible forever). */
void memtable_mark_aborted(memtable *m, uint32_t from, uint32_t to);

static inline mem_node *memtable_node(const memtable *m, uint32_t off)
{
    return off ? (mem_node *) ((char *) m + off) : NULL;
}
void memtable_node_entry(const mem_node *n, lsm_entry *e);

/* Newest node of (key, ts), 0 if absent; skiplist search if the hash
 * index is incomplete. */
uint32_t memtable_lookup(const memtable *m, const uint8_t *key, size_t klen, int64_t ts);
/* Starts loading the hash slot memtable_lookup(key, ts) will read first. */
void memtable_prefetch_lookup(const memtable *m, const uint8_t *key, size_t klen, int64_t ts);

/* Positioning (all versions of a (key, ts) are adjacent, newest first). */
uint32_t memtable_first(const memtable *m);
uint32_t memtable_last(const memtable *m);
/* First node with (key, ts) >= target. */
uint32_t memtable_seek(const memtable *m, const uint8_t *key, size_t klen, int64_t ts);
/* Last node with (key, ts) <= target (all versions of the target included). */
uint32_t memtable_seek_for_prev(const memtable *m, const uint8_t *key, size_t klen, int64_t ts);
uint32_t memtable_next(const memtable *m, uint32_t off);
uint32_t memtable_prev(const memtable *m, uint32_t off);

/* Range tombstones, newest first. */
uint32_t memtable_rt_first(const memtable *m);
uint32_t memtable_rt_next(const memtable *m, uint32_t off);

#endif /* LSM_MEMTABLE_H */
