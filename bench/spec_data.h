/*
 * spec_data.h — the data generator of /work/shared/bench/SPEC.md ("Data"),
 * shared by every FlowDB benchmark so that all of them load the same records.
 *
 * Series s in [0, S), point i in [0, P):
 *   key   = sprintf("sensor.%05d", s)            (12 bytes for s < 100000)
 *   ts    = 1700000000 + 10*i
 *   value = exactly SPEC_VALUE_SIZE bytes: snprintf of the JSON below,
 *           right-padded with spaces, cut if longer.
 * Random choices come from xorshift64 (Marsaglia 13/7/17) with a fixed seed,
 * so every run and every engine sees the same sequence.
 *
 * Header-only, plain C11, no dependencies beyond libc.
 */
#ifndef FLOWDB_BENCH_SPEC_DATA_H
#define FLOWDB_BENCH_SPEC_DATA_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SPEC_VALUE_SIZE 128
#define SPEC_KEY_MAX    16          /* buffer size for one key, NUL included */
#define SPEC_TS_BASE    1700000000LL
#define SPEC_TS_STEP    10LL
#define SPEC_SEED       UINT64_C(0x9E3779B97F4A7C15)

/* Writes the key of series s into out (NUL-terminated); returns its length. */
static inline int spec_key(char out[SPEC_KEY_MAX], int s)
{
    return snprintf(out, SPEC_KEY_MAX, "sensor.%05d", s);
}

static inline int64_t spec_ts(int i)
{
    return SPEC_TS_BASE + SPEC_TS_STEP * (int64_t)i;
}

/* Inverse of spec_ts for timestamps it produced; -1 for any other ts. */
static inline int64_t spec_point_of_ts(int64_t ts)
{
    int64_t d = ts - SPEC_TS_BASE;
    if (d < 0 || d % SPEC_TS_STEP != 0)
        return -1;
    return d / SPEC_TS_STEP;
}

/* Writes the SPEC_VALUE_SIZE-byte value of (s, i) into out (not NUL-terminated). */
static inline void spec_value(char out[SPEC_VALUE_SIZE], int s, int i)
{
    char text[256];
    int n = snprintf(text, sizeof text,
                     "{\"series\":%d,\"seq\":%d,\"temp\":%d.%02d,\"unit\":\"celsius\","
                     "\"host\":\"host-%03d\",\"region\":\"eu-west-1\",\"ok\":true}",
                     s, i, (s * 31 + i * 7) % 40, (s + i) % 100, s % 1000);
    if (n < 0)
        n = 0;
    if (n > SPEC_VALUE_SIZE)
        n = SPEC_VALUE_SIZE;
    memcpy(out, text, (size_t)n);
    memset(out + n, ' ', (size_t)(SPEC_VALUE_SIZE - n));
}

/* xorshift64; the state is never 0 (a zero seed is replaced by SPEC_SEED). */
typedef struct spec_rng {
    uint64_t state;
} spec_rng;

static inline void spec_rng_seed(spec_rng *r, uint64_t seed)
{
    r->state = seed ? seed : SPEC_SEED;
}

static inline uint64_t spec_rng_next(spec_rng *r)
{
    uint64_t x = r->state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->state = x;
    return x;
}

/* Uniform-enough choice in [0, n) for the small n used here (n << 2^32). */
static inline uint32_t spec_rng_below(spec_rng *r, uint32_t n)
{
    return (uint32_t)(spec_rng_next(r) % n);
}

#endif /* FLOWDB_BENCH_SPEC_DATA_H */
