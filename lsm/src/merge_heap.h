/*
 * merge_heap.h — a binary heap of source iterators, ordered by (key, ts) in
 * the scan direction, then by seq descending (newest version first).
 * Used by the scan iterator and by compaction.
 */
#ifndef LSM_MERGE_HEAP_H
#define LSM_MERGE_HEAP_H

#include "source_iter.h"

typedef struct merge_heap {
    source_iter **items;
    uint32_t len;
    bool reverse;
} merge_heap;

static inline bool merge_heap_before(const merge_heap *h, const source_iter *a,
                                     const source_iter *b)
{
    int c = entry_compare_kt(a->cur.key, a->cur.key_len, a->cur.ts, b->cur.key, b->cur.key_len,
                             b->cur.ts);
    if (c != 0)
        return h->reverse ? c > 0 : c < 0;
    return a->cur.seq > b->cur.seq;
}

static inline void merge_heap_sift_down(merge_heap *h, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < h->len && merge_heap_before(h, h->items[l], h->items[best]))
            best = l;
        if (r < h->len && merge_heap_before(h, h->items[r], h->items[best]))
            best = r;
        if (best == i)
            return;
        source_iter *tmp = h->items[i];
        h->items[i] = h->items[best];
        h->items[best] = tmp;
        i = best;
    }
}

/* Fills the heap with the valid sources among src[0..n). */
static inline void merge_heap_build(merge_heap *h, source_iter *src, uint32_t n)
{
    h->len = 0;
    for (uint32_t i = 0; i < n; i++)
        if (src[i].valid)
            h->items[h->len++] = &src[i];
    for (int64_t i = (int64_t) h->len / 2 - 1; i >= 0; i--)
        merge_heap_sift_down(h, (uint32_t) i);
}

/* Steps the top source in the heap's direction; returns its status. */
static inline lsm_status merge_heap_advance_top(merge_heap *h)
{
    source_iter *s = h->items[0];
    if (h->reverse)
        source_prev(s);
    else
        source_next(s);
    if (s->status != LSM_OK)
        return s->status;
    if (!s->valid)
        h->items[0] = h->items[--h->len];
    if (h->len)
        merge_heap_sift_down(h, 0);
    return LSM_OK;
}

static inline bool merge_heap_top_is(const merge_heap *h, const uint8_t *key, size_t len,
                                     int64_t ts)
{
    const lsm_entry *e = &h->items[0]->cur;
    return entry_compare_kt(e->key, e->key_len, e->ts, key, len, ts) == 0;
}

#endif /* LSM_MERGE_HEAP_H */
