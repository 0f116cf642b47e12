/*
 * entry.h — the engine's internal record: one version of one (key, ts).
 *
 * Order (entry_compare): key bytewise ascending (a prefix sorts first), then
 * ts ascending, then seq DESCENDING, so that the newest version of a
 * (key, ts) comes first in a forward merge.
 *
 * Sequence numbers are assigned per record at write time, strictly
 * increasing across the engine; seq 0 is never used.  A version with seq s is
 * visible to a snapshot with seq S iff s <= S (and it is not aborted).
 *
 * Types:
 *   ENTRY_PUT           value = record value, expire_at as written
 *   ENTRY_DELETE        point tombstone for (key, ts); no value
 *   ENTRY_RANGE_DELETE  range tombstone over keys [key, value) for all ts;
 *                       never stored among ordinary entries: memtables and
 *                       SSTs keep range tombstones in their own list/block.
 */
#ifndef LSM_ENTRY_H
#define LSM_ENTRY_H

#include <stdint.h>
#include <string.h>

enum entry_type {
    ENTRY_PUT = 1,
    ENTRY_DELETE = 2,
    ENTRY_RANGE_DELETE = 3
};

typedef struct lsm_entry {
    const uint8_t *key;
    uint32_t key_len;
    uint8_t type;
    int64_t ts;
    uint64_t seq;
    int64_t expire_at;     /* 0 = never */
    const uint8_t *value;  /* PUT: value; RANGE_DELETE: end key */
    uint32_t value_len;
} lsm_entry;

/* Bytewise comparison, shorter-is-smaller on a common prefix. */
static inline int key_compare(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return (alen > blen) - (alen < blen);
}

/* (key, ts) order only; versions of one (key, ts) compare equal. */
static inline int entry_compare_kt(const uint8_t *akey, size_t alen, int64_t ats,
                                   const uint8_t *bkey, size_t blen, int64_t bts)
{
    int c = key_compare(akey, alen, bkey, blen);
    if (c != 0)
        return c;
    return (ats > bts) - (ats < bts);
}

/* Full order: key asc, ts asc, seq desc. */
static inline int entry_compare(const lsm_entry *a, const lsm_entry *b)
{
    int c = entry_compare_kt(a->key, a->key_len, a->ts, b->key, b->key_len, b->ts);
    if (c != 0)
        return c;
    return (a->seq < b->seq) - (a->seq > b->seq);
}

static inline int entry_is_expired(const lsm_entry *e, int64_t now)
{
    return e->expire_at != 0 && e->expire_at <= now;
}

#endif /* LSM_ENTRY_H */
