/* test_histogram.c — bucket geometry, percentile accuracy, concurrent records. */
#include "testutil.h"

#include <math.h>
#include <pthread.h>

#include "histogram.h"

#define MAX_REL_ERROR (1.0 / HISTOGRAM_SUB_COUNT)

static void test_geometry(void)
{
    CHECK(HISTOGRAM_BUCKETS == 448);
    CHECK(histogram_bucket_lower(0) == 0);
    for (uint32_t b = 0; b < HISTOGRAM_BUCKETS; b++) {
        uint64_t lo = histogram_bucket_lower(b), hi = histogram_bucket_upper(b);
        CHECK(lo < hi);
        CHECK(histogram_bucket_of(lo) == b);
        CHECK(histogram_bucket_of(hi - 1) == b);
        if (b + 1 < HISTOGRAM_BUCKETS)
            CHECK(histogram_bucket_lower(b + 1) == hi);  /* contiguous, no gaps */
        if (b < HISTOGRAM_SUB_COUNT)
            CHECK(hi - lo == 1);  /* exact buckets */
        else
            CHECK((double) (hi - lo) / (double) lo <= MAX_REL_ERROR);
    }
    /* 1 us .. 100 s are covered by real (non-overflow) buckets. */
    CHECK(histogram_bucket_of(1) == 1);
    CHECK(histogram_bucket_of(100000000) < HISTOGRAM_BUCKETS - 1);
    CHECK(histogram_bucket_of(UINT64_MAX) == HISTOGRAM_BUCKETS - 1);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile of sorted samples. */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double p)
{
    size_t rank = (size_t) ceil(p / 100.0 * (double) n);
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

static bool close_enough(double estimate, uint64_t exact)
{
    if (exact < HISTOGRAM_SUB_COUNT)
        return estimate == (double) exact;
    return fabs(estimate - (double) exact) <= MAX_REL_ERROR * (double) exact + 1e-9;
}

typedef uint64_t (*sampler)(uint64_t *seed);
static uint64_t uniform_small(uint64_t *s) { return xorshift64(s) % 200; }
static uint64_t uniform_ms(uint64_t *s) { return 1000 + xorshift64(s) % 50000; }
/* Log-uniform over 1 us .. 100 s: every bucket range gets samples. */
static uint64_t log_uniform(uint64_t *s)
{
    double e = (double) (xorshift64(s) % 1000000) / 1000000.0 * 8.0;
    return (uint64_t) pow(10.0, e);
}
/* Mostly fast with a slow tail, like real latencies. */
static uint64_t long_tail(uint64_t *s)
{
    uint64_t r = xorshift64(s);
    return r % 100 < 95 ? 20 + r % 80 : 10000 + r % 5000000;
}

static void check_distribution(const char *name, sampler draw, size_t n, uint64_t seed)
{
    static const double ps[] = {0, 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100};
    uint64_t *v = malloc(n * sizeof *v);
    histogram h;
    histogram_init(&h);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = draw(&seed);
        sum += v[i];
        histogram_record(&h, v[i]);
    }
    qsort(v, n, sizeof *v, cmp_u64);
    CHECK(histogram_count(&h) == n);
    CHECK(histogram_sum(&h) == sum);
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double est = histogram_percentile(&h, ps[i]);
        uint64_t exact = exact_percentile(v, n, ps[i]);
        CHECK(close_enough(est, exact));
        if (!close_enough(est, exact))
            fprintf(stderr, "%s p%g: estimate %.1f, exact %llu\n", name, ps[i], est,
                    (unsigned long long) exact);
    }
    free(v);
}

static void test_percentiles(void)
{
    check_distribution("uniform_small", uniform_small, 10000, 1);
    check_distribution("uniform_ms", uniform_ms, 100000, 2);
    check_distribution("log_uniform", log_uniform, 200000, 3);
    check_distribution("long_tail", long_tail, 100000, 4);
    check_distribution("tiny", log_uniform, 3, 5);
}

static void test_edges(void)
{
    histogram h;
    histogram_init(&h);
    CHECK(histogram_percentile(&h, 50) == 0.0);
    CHECK(histogram_count(&h) == 0);
    lsm_latency lat;
    histogram_to_latency(&h, &lat);
    CHECK(lat.count == 0 && lat.p50_us == 0.0 && lat.p99_us == 0.0);

    histogram_record(&h, 7);
    CHECK(histogram_percentile(&h, 0) == 7.0);
    CHECK(histogram_percentile(&h, 100) == 7.0);
    CHECK(histogram_percentile(&h, -5) == 7.0);   /* clamped */
    CHECK(histogram_percentile(&h, 500) == 7.0);  /* clamped */
    CHECK(histogram_percentile(&h, NAN) == 7.0);

    histogram_record(&h, 1000000);  /* 1 s */
    histogram_to_latency(&h, &lat);
    CHECK(lat.count == 2);
    CHECK(lat.p50_us == 7.0);
    CHECK(close_enough(lat.p99_us, 1000000));

    histogram_record(&h, UINT64_MAX);  /* lands in the last bucket, no crash */
    CHECK(histogram_count(&h) == 3);
    CHECK(histogram_percentile(&h, 100) >= (double) (1ull << 30));
}

#define THREADS 4
#define PER_THREAD 200000

static void *record_many(void *arg)
{
    histogram *h = arg;
    for (uint64_t i = 0; i < PER_THREAD; i++)
        histogram_record(h, i % 5000);
    return NULL;
}

static void test_concurrent_records(void)
{
    histogram h;
    histogram_init(&h);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, record_many, &h);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK(histogram_count(&h) == (uint64_t) THREADS * PER_THREAD);
    uint64_t in_buckets = 0;
    for (uint32_t b = 0; b < HISTOGRAM_BUCKETS; b++)
        in_buckets += atomic_load(&h.buckets[b]);
    CHECK(in_buckets == (uint64_t) THREADS * PER_THREAD);
    CHECK(atomic_load(&h.buckets[histogram_bucket_of(4999)]) > 0);
}

int main(void)
{
    test_geometry();
    test_percentiles();
    test_edges();
    test_concurrent_records();
    return test_report("test_histogram");
}
