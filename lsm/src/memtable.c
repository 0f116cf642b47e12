/* memtable.c — offset-addressed skiplist; see memtable.h for the invariants. */
#include "memtable.h"

#include <string.h>
#include <xxhash.h>

#include "status.h"

#define ALIGN8(x) (((x) + 7u) & ~(size_t) 7u)
#define ARENA_START ALIGN8(sizeof(memtable))

static size_t node_bytes(int height, size_t klen, size_t vlen)
{
    return ALIGN8(sizeof(mem_node) + (size_t) height * sizeof(uint32_t) + klen + vlen);
}

static const uint8_t *node_key(const mem_node *n)
{
    return (const uint8_t *) &n->next[n->height];
}

static const uint8_t *node_value(const mem_node *n)
{
    return node_key(n) + n->key_len;
}

static uint32_t hash_slots(size_t capacity)
{
    uint32_t n = 1024;
    while (n < capacity / 64 && n < (1u << 26))
        n <<= 1;
    return n;
}

size_t memtable_footprint(size_t capacity)
{
    return ARENA_START + (size_t) hash_slots(capacity) * 8 + ALIGN8(capacity);
}

static _Atomic uint64_t *hash_table(const memtable *m)
{
    return (_Atomic uint64_t *) ((char *) m + m->hash_off);
}

static uint64_t kt_hash(const uint8_t *key, size_t klen, int64_t ts)
{
    return XXH3_64bits_withSeed(key, klen, (uint64_t) ts);
}

size_t memtable_entry_cost(size_t key_len, size_t value_len)
{
    return node_bytes(MEM_MAX_HEIGHT, key_len, value_len);
}

static uint32_t arena_alloc(memtable *m, size_t bytes)
{
    uint32_t off = atomic_load_explicit(&m->used, memory_order_relaxed);
    if ((size_t) off + bytes > (size_t) m->capacity + m->hash_off + (size_t) (m->hash_mask + 1) * 8)
        return 0;
    atomic_store_explicit(&m->used, (uint32_t) (off + bytes), memory_order_release);
    return off;
}

void memtable_init(memtable *m, size_t capacity)
{
    uint32_t slots = hash_slots(capacity);
    m->hash_off = (uint32_t) ARENA_START;
    m->hash_mask = slots - 1;
    m->hash_used = 0;
    atomic_store(&m->hash_complete, 1);
    memset((char *) m + m->hash_off, 0, (size_t) slots * 8);
    atomic_store(&m->used, (uint32_t) (ARENA_START + (size_t) slots * 8));
    m->capacity = (uint32_t) ALIGN8(capacity);
    atomic_store(&m->rt_head, 0);
    atomic_store(&m->max_height, 1);
    m->rand_state = 0x9e3779b9u;
    atomic_store(&m->entries, 0);
    atomic_store(&m->data_bytes, 0);
    atomic_store(&m->min_seq, UINT64_MAX);
    atomic_store(&m->max_seq, 0);
    size_t hb = node_bytes(MEM_MAX_HEIGHT, 0, 0);
    m->head = arena_alloc(m, hb);
    m->hint_last = 0;
    for (int l = 0; l < MEM_MAX_HEIGHT; l++)
        m->hint_prevs[l] = m->head;
    mem_node *h = (mem_node *) ((char *) m + m->head);
    memset(h, 0, hb);
    h->node_size = (uint32_t) hb;
    h->height = MEM_MAX_HEIGHT;
}

bool memtable_has_room(const memtable *m, size_t bytes)
{
    size_t used = atomic_load_explicit(&m->used, memory_order_relaxed);
    return used + bytes <= (size_t) m->capacity + m->hash_off + (size_t) (m->hash_mask + 1) * 8;
}

bool memtable_is_empty(const memtable *m)
{
    return atomic_load(&m->entries) == 0;
}

uint32_t memtable_alloc_mark(const memtable *m)
{
    return atomic_load_explicit(&m->used, memory_order_relaxed);
}

void memtable_node_entry(const mem_node *n, lsm_entry *e)
{
    e->key = node_key(n);
    e->key_len = n->key_len;
    e->type = n->type;
    e->ts = n->ts;
    e->seq = n->seq;
    e->expire_at = n->expire_at;
    e->value = node_value(n);
    e->value_len = n->value_len;
}

static int random_height(memtable *m)
{
    int h = 1;
    uint32_t x = m->rand_state;
    for (;;) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if (h >= MEM_MAX_HEIGHT || (x & 3) != 0)
            break;
        h++;
    }
    m->rand_state = x;
    return h;
}

static uint32_t load_next(const mem_node *n, int level)
{
    return atomic_load_explicit(&n->next[level], memory_order_acquire);
}

/* kt(node) compared with (key, ts). */
static int node_cmp_kt(const mem_node *n, const uint8_t *key, size_t klen, int64_t ts)
{
    return entry_compare_kt(node_key(n), n->key_len, n->ts, key, klen, ts);
}

/* Full order of node vs entry. */
static int node_cmp_entry(const mem_node *n, const lsm_entry *e)
{
    int c = node_cmp_kt(n, e->key, e->key_len, e->ts);
    if (c != 0)
        return c;
    return (n->seq < e->seq) - (n->seq > e->seq);
}

/* True when e sorts after the last inserted node and before every
 * successor of the remembered predecessors: they are e's predecessors too. */
static bool hint_fits(const memtable *m, const lsm_entry *e)
{
    if (!m->hint_last || node_cmp_entry(memtable_node(m, m->hint_last), e) >= 0)
        return false;
    int height = (int) atomic_load_explicit(&m->max_height, memory_order_relaxed);
    for (int l = 0; l < height; l++) {
        uint32_t nx = load_next(memtable_node(m, m->hint_prevs[l]), l);
        if (nx && node_cmp_entry(memtable_node(m, nx), e) < 0)
            return false;
    }
    return true;
}

static void find_prevs(const memtable *m, const lsm_entry *e, uint32_t *prevs)
{
    if (hint_fits(m, e)) {
        memcpy(prevs, m->hint_prevs, sizeof m->hint_prevs);
        return;
    }
    uint32_t x = m->head;
    int level = (int) atomic_load_explicit(&m->max_height, memory_order_relaxed) - 1;
    for (int l = MEM_MAX_HEIGHT - 1; l > level; l--)
        prevs[l] = m->head;
    for (; level >= 0; level--) {
        for (;;) {
            uint32_t nx = load_next(memtable_node(m, x), level);
            if (nx == 0 || node_cmp_entry(memtable_node(m, nx), e) >= 0)
                break;
            x = nx;
        }
        prevs[level] = x;
    }
}

static void link_point_node(memtable *m, uint32_t off, mem_node *n, const lsm_entry *e)
{
    uint32_t prevs[MEM_MAX_HEIGHT];
    find_prevs(m, e, prevs);
    if (n->height > atomic_load_explicit(&m->max_height, memory_order_relaxed))
        atomic_store_explicit(&m->max_height, n->height, memory_order_relaxed);
    for (int l = 0; l < n->height; l++) {
        mem_node *p = memtable_node(m, prevs[l]);
        atomic_store_explicit(&n->next[l], load_next(p, l), memory_order_relaxed);
    }
    uint32_t succ = atomic_load_explicit(&n->next[0], memory_order_relaxed);
    atomic_store_explicit(&n->prev, prevs[0] == m->head ? 0 : prevs[0], memory_order_relaxed);
    for (int l = 0; l < n->height; l++)
        atomic_store_explicit(&memtable_node(m, prevs[l])->next[l], off, memory_order_release);
    if (succ)
        atomic_store_explicit(&memtable_node(m, succ)->prev, off, memory_order_release);
    for (int l = 0; l < MEM_MAX_HEIGHT; l++)
        m->hint_prevs[l] = l < n->height ? off : prevs[l];
    m->hint_last = off;
}

static bool node_is_kt(const memtable *m, uint32_t off, const uint8_t *key, size_t klen, int64_t ts)
{
    const mem_node *n = memtable_node(m, off);
    return node_cmp_kt(n, key, klen, ts) == 0;
}

/* Points (key, ts)'s slot at its newest node `off` (writer only); h is
 * kt_hash of the entry, computed early so the slot could be prefetched. */
static void hash_index(memtable *m, uint32_t off, const lsm_entry *e, uint64_t h)
{
    if (!atomic_load_explicit(&m->hash_complete, memory_order_relaxed))
        return;
    uint64_t tag = h >> 32;
    _Atomic uint64_t *slots = hash_table(m);
    for (uint32_t i = (uint32_t) h & m->hash_mask;; i = (i + 1) & m->hash_mask) {
        uint64_t v = atomic_load_explicit(&slots[i], memory_order_relaxed);
        if (v == 0) {
            if (m->hash_used + 1 > (m->hash_mask + 1) / 4 * 3) {
                atomic_store_explicit(&m->hash_complete, 0, memory_order_release);
                return;
            }
            m->hash_used++;
            atomic_store_explicit(&slots[i], tag << 32 | off, memory_order_release);
            return;
        }
        if ((v >> 32) == tag && node_is_kt(m, (uint32_t) v, e->key, e->key_len, e->ts)) {
            atomic_store_explicit(&slots[i], tag << 32 | off, memory_order_release);
            return;
        }
    }
}

uint32_t memtable_lookup(const memtable *m, const uint8_t *key, size_t klen, int64_t ts)
{
    if (!atomic_load_explicit(&m->hash_complete, memory_order_acquire)) {
        uint32_t off = memtable_seek(m, key, klen, ts);
        return off && node_is_kt(m, off, key, klen, ts) ? off : 0;
    }
    uint64_t h = kt_hash(key, klen, ts);
    uint64_t tag = h >> 32;
    _Atomic uint64_t *slots = hash_table(m);
    for (uint32_t i = (uint32_t) h & m->hash_mask;; i = (i + 1) & m->hash_mask) {
        uint64_t v = atomic_load_explicit(&slots[i], memory_order_acquire);
        if (v == 0)
            return 0;
        if ((v >> 32) == tag && node_is_kt(m, (uint32_t) v, key, klen, ts))
            return (uint32_t) v;
    }
}

void memtable_prefetch_lookup(const memtable *m, const uint8_t *key, size_t klen, int64_t ts)
{
    if (atomic_load_explicit(&m->hash_complete, memory_order_relaxed))
        __builtin_prefetch(&hash_table(m)[(uint32_t) kt_hash(key, klen, ts) & m->hash_mask]);
}

uint64_t memtable_prefetch_slot(const memtable *m, const lsm_entry *e)
{
    uint64_t h = kt_hash(e->key, e->key_len, e->ts);
    __builtin_prefetch(&hash_table(m)[(uint32_t) h & m->hash_mask], 1);
    return h;
}

lsm_status memtable_add(memtable *m, const lsm_entry *e)
{
    /* The slot is a near-certain cache miss: start loading it now and let
     * it overlap with copying the node and linking the skiplist. */
    uint64_t h = e->type == ENTRY_RANGE_DELETE ? 0 : memtable_prefetch_slot(m, e);
    return memtable_add_hashed(m, e, h);
}

lsm_status memtable_add_hashed(memtable *m, const lsm_entry *e, uint64_t h)
{
    bool is_range = e->type == ENTRY_RANGE_DELETE;
    int height = is_range ? 1 : random_height(m);
    size_t vlen = e->type == ENTRY_DELETE ? 0 : e->value_len;
    size_t bytes = node_bytes(height, e->key_len, vlen);
    uint32_t off = arena_alloc(m, bytes);
    if (off == 0)
        return lsm_fail(LSM_TOO_LARGE, "memtable full (%zu bytes requested)", bytes);
    mem_node *n = memtable_node(m, off);
    n->node_size = (uint32_t) bytes;
    n->height = (uint8_t) height;
    n->type = e->type;
    atomic_store_explicit(&n->aborted, 0, memory_order_relaxed);
    n->key_len = e->key_len;
    n->value_len = (uint32_t) vlen;
    n->ts = e->ts;
    n->seq = e->seq;
    n->expire_at = e->expire_at;
    memcpy((uint8_t *) node_key(n), e->key, e->key_len);
    if (vlen)
        memcpy((uint8_t *) node_value(n), e->value, vlen);

    if (is_range) {
        atomic_store_explicit(&n->next[0], atomic_load(&m->rt_head), memory_order_relaxed);
        atomic_store_explicit(&m->rt_head, off, memory_order_release);
    } else {
        link_point_node(m, off, n, e);
        hash_index(m, off, e, h);
    }
    atomic_fetch_add_explicit(&m->entries, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->data_bytes, e->key_len + vlen, memory_order_relaxed);
    if (e->seq < atomic_load_explicit(&m->min_seq, memory_order_relaxed))
        atomic_store_explicit(&m->min_seq, e->seq, memory_order_relaxed);
    if (e->seq > atomic_load_explicit(&m->max_seq, memory_order_relaxed))
        atomic_store_explicit(&m->max_seq, e->seq, memory_order_relaxed);
    return LSM_OK;
}

void memtable_mark_aborted(memtable *m, uint32_t from, uint32_t to)
{
    uint32_t off = from;
    while (off < to) {
        mem_node *n = memtable_node(m, off);
        atomic_store_explicit(&n->aborted, 1, memory_order_release);
        off += n->node_size;
    }
}

uint32_t memtable_first(const memtable *m)
{
    return load_next(memtable_node(m, m->head), 0);
}

uint32_t memtable_last(const memtable *m)
{
    uint32_t x = m->head;
    for (int level = (int) atomic_load(&m->max_height) - 1; level >= 0; level--) {
        for (;;) {
            uint32_t nx = load_next(memtable_node(m, x), level);
            if (nx == 0)
                break;
            x = nx;
        }
    }
    return x == m->head ? 0 : x;
}

uint32_t memtable_seek(const memtable *m, const uint8_t *key, size_t klen, int64_t ts)
{
    uint32_t x = m->head;
    for (int level = (int) atomic_load(&m->max_height) - 1; level >= 0; level--) {
        for (;;) {
            uint32_t nx = load_next(memtable_node(m, x), level);
            if (nx == 0 || node_cmp_kt(memtable_node(m, nx), key, klen, ts) >= 0)
                break;
            x = nx;
        }
    }
    return load_next(memtable_node(m, x), 0);
}

uint32_t memtable_seek_for_prev(const memtable *m, const uint8_t *key, size_t klen, int64_t ts)
{
    uint32_t x = m->head;
    for (int level = (int) atomic_load(&m->max_height) - 1; level >= 0; level--) {
        for (;;) {
            uint32_t nx = load_next(memtable_node(m, x), level);
            if (nx == 0 || node_cmp_kt(memtable_node(m, nx), key, klen, ts) > 0)
                break;
            x = nx;
        }
    }
    return x == m->head ? 0 : x;
}

uint32_t memtable_next(const memtable *m, uint32_t off)
{
    return load_next(memtable_node(m, off), 0);
}

uint32_t memtable_prev(const memtable *m, uint32_t off)
{
    return atomic_load_explicit(&memtable_node(m, off)->prev, memory_order_acquire);
}

uint32_t memtable_rt_first(const memtable *m)
{
    return atomic_load_explicit(&m->rt_head, memory_order_acquire);
}

uint32_t memtable_rt_next(const memtable *m, uint32_t off)
{
    return load_next(memtable_node(m, off), 0);
}
