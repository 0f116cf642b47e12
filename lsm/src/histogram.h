/*
 * histogram.h — a lock-free latency histogram that can live in the region.
 *
 * Log-linear buckets over microseconds: values 0..15 get one bucket each;
 * above that, every power-of-two range [2^k, 2^(k+1)) is split into 16 equal
 * buckets, up to 2^31 us (~36 min).  A bucket's width is at most 1/16 of its
 * lower bound, so a percentile estimate is within 6.25% of the true sample
 * (values 0..15 are exact).  Larger values land in the last bucket.
 *
 * The struct is plain data with C11 atomics and no pointers: it may be placed
 * in memory shared by several processes.  Recording is one relaxed
 * fetch_add per counter; readers see a consistent-enough snapshot (each
 * bucket is read once, totals are taken from the buckets read).
 */
#ifndef LSM_HISTOGRAM_H
#define LSM_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>

#include "lsm.h"

#define HISTOGRAM_SUB_BITS 4                          /* 16 buckets per power of two */
#define HISTOGRAM_SUB_COUNT (1u << HISTOGRAM_SUB_BITS)
#define HISTOGRAM_MAX_BIT 31                           /* last range [2^30, 2^31) */
#define HISTOGRAM_BUCKETS \
    (HISTOGRAM_SUB_COUNT + (HISTOGRAM_MAX_BIT - HISTOGRAM_SUB_BITS) * HISTOGRAM_SUB_COUNT)

typedef struct histogram {
    _Atomic uint64_t buckets[HISTOGRAM_BUCKETS];
    _Atomic uint64_t count;     /* samples recorded */
    _Atomic uint64_t sum_us;    /* sum of recorded values (wraps after ~584k years) */
} histogram;

void histogram_init(histogram *h);
void histogram_record(histogram *h, uint64_t micros);
uint64_t histogram_count(const histogram *h);
uint64_t histogram_sum(const histogram *h);
/* Value at percentile p (0..100, clamped) in microseconds; 0 when empty. */
double histogram_percentile(const histogram *h, double p);
/* p50 / p90 / p99 and count, as lsm_stats reports a latency. */
void histogram_to_latency(const histogram *h, lsm_latency *out);

/* Bucket geometry (exposed for tests): the bucket holding `micros`, and a
 * bucket's value range [lower, upper). */
uint32_t histogram_bucket_of(uint64_t micros);
uint64_t histogram_bucket_lower(uint32_t bucket);
uint64_t histogram_bucket_upper(uint32_t bucket);

#endif /* LSM_HISTOGRAM_H */
