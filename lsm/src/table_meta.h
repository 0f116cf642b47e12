/*
 * table_meta.h — what the engine knows about one SST without opening it.
 *
 * Written by the SST builder at finish, recorded in every manifest "add"
 * edit, and kept in the shared region's table slots.  Fixed size so it can
 * live in shared memory: key bounds are kept to TABLE_BOUND_MAX bytes.
 *
 * Invariants:
 *   smallest <= every key in the table (a truncated smallest is a prefix of
 *   the real smallest key, so still a lower bound);
 *   every key in the table <= largest, or, when largest_truncated, every key
 *   begins with largest[0..largest_len) or sorts below it.
 *   The bounds cover point entries and range tombstones ([start, end) counts
 *   start and end).
 */
#ifndef LSM_TABLE_META_H
#define LSM_TABLE_META_H

#include <stdbool.h>
#include <stdint.h>

#define TABLE_BOUND_MAX 64

typedef struct table_meta {
    uint64_t file_no;
    uint64_t file_size;
    uint64_t entry_count;           /* puts + point tombstones */
    uint64_t point_tombstones;
    uint64_t range_tombstones;
    uint64_t raw_bytes;             /* uncompressed data-block bytes */
    uint64_t min_seq, max_seq;
    int64_t min_ts, max_ts;         /* over point entries; min>max if none */
    int64_t max_expire_at;          /* INT64_MAX if any entry never expires
                                       (expire_at 0, or any tombstone) */
    uint16_t smallest_len, largest_len;
    bool largest_truncated;
    uint8_t smallest[TABLE_BOUND_MAX];
    uint8_t largest[TABLE_BOUND_MAX];
} table_meta;

#include "entry.h"

/* May the key ranges of a and b overlap?  Conservative with a truncated
 * largest bound, which is taken to reach past every extension of it. */
static inline bool table_ranges_overlap(const table_meta *a, const table_meta *b)
{
    if (!b->largest_truncated &&
        key_compare(b->largest, b->largest_len, a->smallest, a->smallest_len) < 0)
        return false;
    if (!a->largest_truncated &&
        key_compare(a->largest, a->largest_len, b->smallest, b->smallest_len) < 0)
        return false;
    return true;
}

#endif /* LSM_TABLE_META_H */
