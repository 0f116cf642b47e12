/* histogram.c — log-linear latency buckets; see histogram.h for the layout. */
#include "histogram.h"

#include <math.h>

static unsigned highest_bit(uint64_t v) { return 63u - (unsigned) __builtin_clzll(v); }

uint32_t histogram_bucket_of(uint64_t micros)
{
    if (micros < HISTOGRAM_SUB_COUNT)
        return (uint32_t) micros;
    unsigned msb = highest_bit(micros);
    if (msb >= HISTOGRAM_MAX_BIT)
        return HISTOGRAM_BUCKETS - 1;
    unsigned shift = msb - HISTOGRAM_SUB_BITS;
    uint32_t sub = (uint32_t) (micros >> shift) & (HISTOGRAM_SUB_COUNT - 1);
    return HISTOGRAM_SUB_COUNT + shift * HISTOGRAM_SUB_COUNT + sub;
}

uint64_t histogram_bucket_lower(uint32_t bucket)
{
    if (bucket < HISTOGRAM_SUB_COUNT)
        return bucket;
    uint32_t shift = (bucket - HISTOGRAM_SUB_COUNT) / HISTOGRAM_SUB_COUNT;
    uint64_t sub = (bucket - HISTOGRAM_SUB_COUNT) % HISTOGRAM_SUB_COUNT;
    return (HISTOGRAM_SUB_COUNT + sub) << shift;
}

uint64_t histogram_bucket_upper(uint32_t bucket)
{
    if (bucket < HISTOGRAM_SUB_COUNT)
        return (uint64_t) bucket + 1;
    uint32_t shift = (bucket - HISTOGRAM_SUB_COUNT) / HISTOGRAM_SUB_COUNT;
    return histogram_bucket_lower(bucket) + ((uint64_t) 1 << shift);
}

void histogram_init(histogram *h)
{
    for (uint32_t i = 0; i < HISTOGRAM_BUCKETS; i++)
        atomic_init(&h->buckets[i], 0);
    atomic_init(&h->count, 0);
    atomic_init(&h->sum_us, 0);
}

void histogram_record(histogram *h, uint64_t micros)
{
    atomic_fetch_add_explicit(&h->buckets[histogram_bucket_of(micros)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, micros, memory_order_relaxed);
}

uint64_t histogram_count(const histogram *h)
{
    return atomic_load_explicit(&h->count, memory_order_relaxed);
}

uint64_t histogram_sum(const histogram *h)
{
    return atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}

/* Reads every bucket once into `snap`; returns their total. */
static uint64_t snapshot_buckets(const histogram *h, uint64_t *snap)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < HISTOGRAM_BUCKETS; i++) {
        snap[i] = atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        total += snap[i];
    }
    return total;
}

/*
 * The nearest-rank percentile: the ceil(p/100 * n)-th smallest sample (at
 * least the first).  The bucket holding that sample is found exactly; inside
 * it the value is interpolated linearly, so the estimate stays within the
 * bucket's [lower, upper] range, as the true sample does.
 */
double histogram_percentile(const histogram *h, double p)
{
    uint64_t snap[HISTOGRAM_BUCKETS];
    uint64_t total = snapshot_buckets(h, snap);
    if (total == 0)
        return 0.0;
    if (!(p > 0.0))  /* also NaN */
        p = 0.0;
    if (p > 100.0)
        p = 100.0;
    double rank = ceil(p / 100.0 * (double) total);
    if (rank < 1.0)
        rank = 1.0;
    uint64_t seen = 0;
    for (uint32_t b = 0; b < HISTOGRAM_BUCKETS; b++) {
        if (snap[b] == 0 || (double) (seen + snap[b]) < rank) {
            seen += snap[b];
            continue;
        }
        double lower = (double) histogram_bucket_lower(b);
        if (b < HISTOGRAM_SUB_COUNT)
            return lower;  /* exact bucket */
        double width = (double) (histogram_bucket_upper(b) - histogram_bucket_lower(b));
        double frac = (rank - (double) seen) / (double) snap[b];
        return lower + frac * width;
    }
    return (double) histogram_bucket_lower(HISTOGRAM_BUCKETS - 1);  /* rounding guard */
}

void histogram_to_latency(const histogram *h, lsm_latency *out)
{
    out->p50_us = histogram_percentile(h, 50.0);
    out->p90_us = histogram_percentile(h, 90.0);
    out->p99_us = histogram_percentile(h, 99.0);
    out->count = histogram_count(h);
}
