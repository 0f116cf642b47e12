/*
 * test_block_cache.c — the shared block cache: hits and misses, CLOCK order,
 * pins under pressure, releases racing erase_file, sizes up to a whole shard, erase_file, allocator churn,
 * and concurrent use by forked processes (each mapping the region at its own
 * address) and by threads.  Every value is derived from its key, so any
 * reader can verify every byte it gets.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "block_cache.h"

#define KiB ((size_t) 1024)

/* ------------------------------------------------------------ helpers */

static uint64_t key_seed(uint64_t file_no, uint64_t offset)
{
    uint64_t s = file_no * 0x9e3779b97f4a7c15ull + offset * 0xc2b2ae3d27d4eb4full + 1;
    xorshift64(&s);
    return xorshift64(&s);
}

/* Word k of a key's value is seed ^ (k * odd constant); the value is the
 * first len bytes of those words. */
static uint64_t value_word(uint64_t seed, size_t k)
{
    return seed ^ ((uint64_t) k * 0xff51afd7ed558ccdull);
}

static void fill_value(uint8_t *buf, size_t len, uint64_t file_no, uint64_t offset)
{
    uint64_t seed = key_seed(file_no, offset);
    size_t k = 0;
    for (; (k + 1) * 8 <= len; k++) {
        uint64_t w = value_word(seed, k);
        memcpy(buf + k * 8, &w, 8);
    }
    uint64_t w = value_word(seed, k);
    memcpy(buf + k * 8, &w, len - k * 8);
}

static bool value_ok(const uint8_t *p, size_t len, uint64_t file_no, uint64_t offset)
{
    uint64_t seed = key_seed(file_no, offset), diff = 0;
    size_t k = 0;
    for (; (k + 1) * 8 <= len; k++) {
        uint64_t w;
        memcpy(&w, p + k * 8, 8);
        diff |= w ^ value_word(seed, k);
    }
    uint64_t w = 0, want = value_word(seed, k);
    memcpy(&w, p + k * 8, len - k * 8);
    memset((uint8_t *) &want + (len - k * 8), 0, 8 - (len - k * 8));
    return (diff | (w ^ want)) == 0;
}

/* Length derived from the key: 1 .. max_len, mostly small, some large. */
static size_t key_len(uint64_t file_no, uint64_t offset, size_t max_len)
{
    uint64_t s = key_seed(file_no, offset) | 1;
    uint64_t r = xorshift64(&s);
    size_t len = r % 8 == 0 ? 1 + (size_t) (r >> 8) % max_len
                            : 1 + (size_t) (r >> 8) % (max_len / 8 + 1);
    return len > max_len ? max_len : len;
}

static block_cache *new_cache(size_t capacity, uint32_t shards)
{
    size_t size = block_cache_region_size(capacity, shards);
    CHECK(size > capacity);
    void *mem = aligned_alloc(64, (size + 63) / 64 * 64);
    CHECK_OK(block_cache_init(mem, capacity, shards));
    return mem;
}

/* Inserts a key-derived value of `len` bytes; returns the pinned copy. */
static const uint8_t *insert_value(block_cache *c, uint64_t file_no, uint64_t offset, size_t len,
                                   cache_pin *pin)
{
    uint8_t *buf = malloc(len ? len : 1);
    fill_value(buf, len, file_no, offset);
    const uint8_t *p = block_cache_insert(c, file_no, offset, buf, len, pin);
    free(buf);
    return p;
}

static bool insert_released(block_cache *c, uint64_t file_no, uint64_t offset, size_t len)
{
    cache_pin pin;
    const uint8_t *p = insert_value(c, file_no, offset, len, &pin);
    if (p == NULL)
        return false;
    CHECK(value_ok(p, len, file_no, offset));
    block_cache_release(c, pin);
    return true;
}

static bool cached(block_cache *c, uint64_t file_no, uint64_t offset)
{
    size_t len;
    cache_pin pin;
    const uint8_t *p = block_cache_lookup(c, file_no, offset, &len, &pin);
    if (p == NULL)
        return false;
    CHECK(value_ok(p, len, file_no, offset));
    block_cache_release(c, pin);
    return true;
}

/* -------------------------------------------------------------- tests */

static void test_init_rejects(void)
{
    uint64_t mem[1024] __attribute__((aligned(64)));
    CHECK(block_cache_region_size(1 << 20, 0) == 0);
    CHECK(block_cache_region_size(1 << 20, 3) == 0);
    CHECK(block_cache_region_size(1 << 20, 512) == 0);
    CHECK(block_cache_region_size(4096, 2) == 0);  /* 2 KiB shards */
    CHECK(block_cache_init(NULL, 1 << 20, 4) == LSM_INVALID);
    CHECK(block_cache_init(mem, 1 << 20, 3) == LSM_INVALID);
    CHECK(strstr(lsm_errmsg(), "shards") != NULL);
    CHECK(block_cache_init((char *) mem + 8, 4096, 1) == LSM_INVALID);
    CHECK(block_cache_init(mem, 1000, 1) == LSM_INVALID);
    CHECK(block_cache_charge(0) == 64);
    CHECK(block_cache_charge(32) == 64);
    CHECK(block_cache_charge(33) == 128);
    CHECK(block_cache_charge(4064) == 4096);
}

static void test_basic(void)
{
    block_cache *c = new_cache(256 * KiB, 4);
    block_cache_stats st;
    size_t len = 0;
    cache_pin pin, pin2;
    CHECK(block_cache_lookup(c, 7, 4096, &len, &pin) == NULL);

    const uint8_t *p = insert_value(c, 7, 4096, 5000, &pin);
    CHECK(p != NULL && value_ok(p, 5000, 7, 4096));
    const uint8_t *q = block_cache_lookup(c, 7, 4096, &len, &pin2);
    CHECK(q == p && len == 5000);
    block_cache_release(c, pin);
    block_cache_release(c, pin2);
    block_cache_release(c, pin2);  /* the entry has no pins left: ignored */
    CHECK(cached(c, 7, 4096));
    CHECK(!cached(c, 7, 4097));
    CHECK(!cached(c, 8, 4096));

    /* Inserting an existing key returns the cached entry, not the new data. */
    uint8_t other[10] = {0};
    q = block_cache_insert(c, 7, 4096, other, sizeof other, &pin);
    CHECK(q == p && value_ok(q, 5000, 7, 4096));
    block_cache_release(c, pin);

    CHECK(insert_released(c, 9, 0, 0));  /* empty values are cacheable */
    CHECK(block_cache_lookup(c, 9, 0, &len, &pin) != NULL && len == 0);
    block_cache_release(c, pin);

    block_cache_get_stats(c, &st);
    CHECK(st.hits == 3 && st.misses == 3 && st.inserts == 2 && st.evictions == 0);
    CHECK(st.entries == 2);
    CHECK(st.usage_bytes == block_cache_charge(5000) + block_cache_charge(0));
    CHECK(st.capacity_bytes == 256 * KiB);
    CHECK_OK(block_cache_verify(c));
    free(c);
}

/* One shard of 64 KiB holds exactly 16 entries of 4064 bytes (4 KiB each). */
#define SLOT_LEN 4064

/* CLOCK: a hit sets the entry's reference bit; the hand clears set bits,
 * passes over pinned entries and evicts the first clear, unpinned one; a new
 * entry goes just behind the hand.  The comments track the ring from the
 * hand on. */
static void test_clock_order(void)
{
    block_cache *c = new_cache(64 * KiB, 1);
    for (uint64_t k = 0; k < 16; k++)
        CHECK(insert_released(c, 1, k, SLOT_LEN));   /* ring 0..15, no bits */
    block_cache_stats st;
    block_cache_get_stats(c, &st);
    CHECK(st.usage_bytes == 64 * KiB && st.evictions == 0);

    /* Every entry referenced: the hand clears all bits and comes back to 0,
     * although 0 was used last (LRU would evict 1). */
    for (uint64_t k = 0; k < 16; k++)
        CHECK(cached(c, 1, k));
    CHECK(cached(c, 1, 0));
    CHECK(insert_released(c, 1, 16, SLOT_LEN));     /* evicts 0: 1..15 16 */
    CHECK(!cached(c, 1, 0));

    /* Second chance for referenced entries. */
    CHECK(cached(c, 1, 1) && cached(c, 1, 2));
    CHECK(insert_released(c, 1, 17, SLOT_LEN));     /* evicts 3: 4..15 16 1 2 17 */
    CHECK(!cached(c, 1, 3));

    /* A pinned entry stays on the ring and is passed over. */
    size_t len;
    cache_pin pin;
    const uint8_t *held = block_cache_lookup(c, 1, 4, &len, &pin);
    CHECK(held != NULL && len == SLOT_LEN);
    CHECK(insert_released(c, 1, 18, SLOT_LEN));     /* evicts 5: 6..15 16 1 2 17 4 18 */
    CHECK(!cached(c, 1, 5));
    CHECK(value_ok(held, SLOT_LEN, 1, 4));
    block_cache_release(c, pin);                    /* 4 keeps its bit */
    CHECK_OK(block_cache_verify(c));

    for (uint64_t k = 19; k <= 28; k++)             /* evict 6..15: 16 1 2 17 4 18 19..28 */
        CHECK(insert_released(c, 1, k, SLOT_LEN));
    for (uint64_t k = 29; k <= 33; k++)             /* evict 16 1 2 17, pass 4, evict 18 */
        CHECK(insert_released(c, 1, k, SLOT_LEN));
    const uint64_t gone[] = {16, 1, 2, 17, 18, 6, 15};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
        CHECK(!cached(c, 1, gone[i]));
    CHECK(cached(c, 1, 4));
    for (uint64_t k = 19; k <= 33; k++)
        CHECK(cached(c, 1, k));
    block_cache_get_stats(c, &st);
    CHECK(st.evictions == 18 && st.entries == 16 && st.hits == 16 + 1 + 2 + 1 + 1 + 15);
    CHECK_OK(block_cache_verify(c));
    free(c);
}

/* With every entry pinned the hand finds no victim (after two revolutions)
 * and the insert fails; one release makes exactly that entry evictable. */
static void test_all_pinned(void)
{
    block_cache *c = new_cache(64 * KiB, 1);
    cache_pin pins[16];
    for (uint64_t k = 0; k < 16; k++)
        CHECK(insert_value(c, 7, k, SLOT_LEN, &pins[k]) != NULL);
    CHECK(!insert_released(c, 7, 100, SLOT_LEN));
    CHECK(!insert_released(c, 7, 101, 10));
    block_cache_release(c, pins[9]);
    CHECK(insert_released(c, 7, 100, SLOT_LEN));
    CHECK(!cached(c, 7, 9));
    for (uint64_t k = 0; k < 16; k++)
        if (k != 9) {
            CHECK(cached(c, 7, k));   /* pinned twice now, released once */
            block_cache_release(c, pins[k]);
        }
    block_cache_stats st;
    block_cache_get_stats(c, &st);
    CHECK(st.evictions == 1 && st.entries == 16);
    CHECK_OK(block_cache_verify(c));
    free(c);
}

static void test_pins_survive_pressure(void)
{
    block_cache *c = new_cache(64 * KiB, 1);
    cache_pin pins[16];
    const uint8_t *held[16];
    for (uint64_t k = 0; k < 8; k++) {
        held[k] = insert_value(c, 2, k, SLOT_LEN, &pins[k]);
        CHECK(held[k] != NULL);
    }
    for (uint64_t k = 100; k < 300; k++)
        CHECK(insert_released(c, 2, k, 1 + k * 37 % (6 * KiB)));
    for (uint64_t k = 0; k < 8; k++) {
        CHECK(value_ok(held[k], SLOT_LEN, 2, k));
        CHECK(cached(c, 2, k));
    }
    CHECK_OK(block_cache_verify(c));

    /* Pin the whole shard: nothing can be evicted, so inserts fail. */
    for (uint64_t k = 8; k < 16; k++) {
        held[k] = insert_value(c, 3, k, SLOT_LEN, &pins[k]);
        CHECK(held[k] != NULL);
    }
    CHECK(!insert_released(c, 3, 99, 100));
    for (uint64_t k = 0; k < 16; k++) {
        CHECK(value_ok(held[k], SLOT_LEN, k < 8 ? 2 : 3, k));
        block_cache_release(c, pins[k]);
    }
    CHECK(insert_released(c, 3, 99, 100));
    CHECK_OK(block_cache_verify(c));
    free(c);
}

static void test_sizes_up_to_a_shard(void)
{
    block_cache *c = new_cache(64 * KiB, 1);
    const size_t whole = 64 * KiB - 32;  /* header + bytes = the whole arena */
    block_cache_stats st;
    cache_pin pin;

    CHECK(insert_released(c, 4, 0, whole));
    block_cache_get_stats(c, &st);
    CHECK(st.usage_bytes == 64 * KiB);
    CHECK(!insert_released(c, 4, 1, whole + 1));  /* one byte too big: not cached */
    CHECK(cached(c, 4, 0));

    /* Small entries, then a whole-shard one evicts all of them. */
    for (uint64_t k = 10; k < 40; k++)
        CHECK(insert_released(c, 4, k, 100 + k * 13));
    CHECK(insert_released(c, 4, 2, whole));
    for (uint64_t k = 10; k < 40; k++)
        CHECK(!cached(c, 4, k));

    /* With one small entry pinned, a whole-shard entry cannot fit. */
    const uint8_t *small = insert_value(c, 4, 50, 10, &pin);
    CHECK(small != NULL);
    CHECK(!insert_released(c, 4, 3, whole));
    CHECK(insert_released(c, 4, 3, whole - 64));   /* but one unit less does */
    CHECK(value_ok(small, 10, 4, 50));
    block_cache_release(c, pin);

    /* Every size from 0 to a few units, each verified. */
    for (size_t len = 0; len < 300; len++)
        CHECK(insert_released(c, 5, len, len));
    CHECK_OK(block_cache_verify(c));
    free(c);

    c = new_cache(256 * KiB, 4);                   /* 64 KiB shards */
    CHECK(!insert_released(c, 6, 0, 100 * KiB));
    CHECK(block_cache_insert(c, 6, 0, NULL, 10, &pin) == NULL);
    CHECK_OK(block_cache_verify(c));
    free(c);
}

static void test_erase_file(void)
{
    block_cache *c = new_cache(1024 * KiB, 4);
    for (uint64_t f = 1; f <= 3; f++)
        for (uint64_t k = 0; k < 20; k++)
            CHECK(insert_released(c, f, k * 4096, 3000));
    cache_pin pin;
    size_t len;
    const uint8_t *held = block_cache_lookup(c, 2, 5 * 4096, &len, &pin);
    CHECK(held != NULL);

    block_cache_stats before, after;
    block_cache_get_stats(c, &before);
    block_cache_erase_file(c, 2);
    block_cache_get_stats(c, &after);
    CHECK(after.entries == 41);  /* 40 of files 1 and 3, plus the pinned one */
    CHECK(after.usage_bytes == before.usage_bytes - 19 * block_cache_charge(3000));
    for (uint64_t k = 0; k < 20; k++) {
        CHECK(cached(c, 1, k * 4096));
        CHECK(!cached(c, 2, k * 4096));
        CHECK(cached(c, 3, k * 4096));
    }
    CHECK(value_ok(held, 3000, 2, 5 * 4096));

    /* The key may be cached again while the erased copy is still pinned. */
    cache_pin pin2;
    const uint8_t *fresh = insert_value(c, 2, 5 * 4096, 3000, &pin2);
    CHECK(fresh != NULL && fresh != held);
    CHECK_OK(block_cache_verify(c));
    block_cache_release(c, pin);   /* last pin: the erased entry is freed */
    block_cache_release(c, pin2);
    block_cache_get_stats(c, &after);
    CHECK(after.entries == 41);
    CHECK(cached(c, 2, 5 * 4096));
    CHECK_OK(block_cache_verify(c));
    free(c);
}

/* Random lookups, inserts and held pins over a key space larger than the
 * cache; returns the number of failed verifications. */
typedef struct workload {
    block_cache *c;
    uint64_t seed;
    int ops;
    uint64_t files, offsets;
    size_t max_len;
    size_t capacity;
    bool verify_often;  /* single-user only: run block_cache_verify regularly */
    bool erase_sometimes;
} workload;

#define HELD_PINS 6

static int run_workload(const workload *w)
{
    int errors = 0;
    uint64_t seed = w->seed;
    cache_pin pins[HELD_PINS];
    const uint8_t *held[HELD_PINS] = {0};
    size_t held_len[HELD_PINS];
    uint64_t held_file[HELD_PINS], held_off[HELD_PINS];
    uint8_t *buf = malloc(w->max_len);
    for (int op = 0; op < w->ops; op++) {
        uint64_t r = xorshift64(&seed);
        uint64_t file = 1 + r % w->files, off = (r >> 16) % w->offsets * 4096;
        size_t want = key_len(file, off, w->max_len);
        int slot = (int) ((r >> 40) % HELD_PINS);
        if (held[slot] != NULL) {  /* re-check and drop a held pin */
            errors += !value_ok(held[slot], held_len[slot], held_file[slot], held_off[slot]);
            block_cache_release(w->c, pins[slot]);
            held[slot] = NULL;
        }
        size_t len = 0;
        const uint8_t *p = block_cache_lookup(w->c, file, off, &len, &pins[slot]);
        if (p == NULL) {
            fill_value(buf, want, file, off);
            len = want;
            p = block_cache_insert(w->c, file, off, buf, len, &pins[slot]);
        }
        if (p == NULL)
            continue;
        errors += len != want || !value_ok(p, len, file, off);
        if ((r >> 50) % 4 == 0) {  /* keep a quarter of the pins a while */
            held[slot] = p;
            held_len[slot] = len;
            held_file[slot] = file;
            held_off[slot] = off;
        } else {
            block_cache_release(w->c, pins[slot]);
        }
        if (w->erase_sometimes && r % 5000 == 0)
            block_cache_erase_file(w->c, file);
        if (w->verify_often) {
            block_cache_stats st;
            block_cache_get_stats(w->c, &st);
            errors += st.usage_bytes > w->capacity;
            if (op % 2000 == 0 && block_cache_verify(w->c) != LSM_OK) {
                fprintf(stderr, "verify: %s\n", lsm_errmsg());
                errors++;
            }
        }
    }
    for (int i = 0; i < HELD_PINS; i++)
        if (held[i] != NULL) {
            errors += !value_ok(held[i], held_len[i], held_file[i], held_off[i]);
            block_cache_release(w->c, pins[i]);
        }
    free(buf);
    return errors;
}

static void test_fragmentation_churn(void)
{
    const size_t capacity = 1024 * KiB;
    block_cache *c = new_cache(capacity, 4);  /* 256 KiB shards */
    workload w = {
        .c = c, .seed = 12345, .ops = 100000, .files = 8, .offsets = 400,
        .max_len = 200 * KiB, .capacity = capacity, .verify_often = true,
        .erase_sometimes = true,
    };
    CHECK(run_workload(&w) == 0);
    CHECK_OK(block_cache_verify(c));
    block_cache_stats st;
    block_cache_get_stats(c, &st);
    CHECK(st.usage_bytes <= capacity);
    CHECK(st.evictions > 1000);  /* the key space really overflowed the cache */
    CHECK(st.hits > 1000);
    /* Every entry left is intact. */
    uint64_t found = 0;
    for (uint64_t f = 1; f <= w.files; f++)
        for (uint64_t k = 0; k < w.offsets; k++)
            found += cached(c, f, k * 4096);
    CHECK(found == st.entries);
    free(c);
}

#define WORKERS 4

static void test_multi_process(void)
{
    const size_t capacity = 2048 * KiB;
    size_t size = block_cache_region_size(capacity, 4);
    int fd = memfd_create("block_cache_test", 0);
    CHECK(fd >= 0 && ftruncate(fd, (off_t) size) == 0);
    void *region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(region != MAP_FAILED);
    if (fd < 0 || region == MAP_FAILED)
        return;
    CHECK_OK(block_cache_init(region, capacity, 4));

    pid_t pids[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            /* A second mapping of the same memory, at a different address. */
            void *mine = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (mine == MAP_FAILED || mine == region)
                _exit(3);
            workload w = {
                .c = mine, .seed = 1000 + (uint64_t) i, .ops = 30000, .files = 4,
                .offsets = 300, .max_len = 64 * KiB, .capacity = capacity,
                .erase_sometimes = true,
            };
            int errors = run_workload(&w);
            _exit(errors == 0 && block_cache_verify(mine) == LSM_OK ? 0 : 1);
        }
        CHECK(pids[i] > 0);
    }
    for (int i = 0; i < WORKERS; i++) {
        int status = -1;
        CHECK(pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    CHECK_OK(block_cache_verify(region));
    block_cache_stats st;
    block_cache_get_stats(region, &st);
    CHECK(st.hits + st.misses >= (uint64_t) WORKERS * 30000);
    CHECK(st.hits > 0 && st.evictions > 0 && st.usage_bytes <= capacity);
    munmap(region, size);
    close(fd);
}

static void *workload_thread(void *arg)
{
    workload *w = arg;
    return (void *) (intptr_t) run_workload(w);
}

static void test_multi_thread(void)
{
    const size_t capacity = 2048 * KiB;
    block_cache *c = new_cache(capacity, 4);
    pthread_t t[8];
    workload w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (workload) {
            .c = c, .seed = 77 + (uint64_t) i, .ops = 30000, .files = 4, .offsets = 300,
            .max_len = 64 * KiB, .capacity = capacity, .erase_sometimes = true,
        };
        CHECK(pthread_create(&t[i], NULL, workload_thread, &w[i]) == 0);
    }
    for (int i = 0; i < 8; i++) {
        void *errors = NULL;
        pthread_join(t[i], &errors);
        CHECK((intptr_t) errors == 0);
    }
    CHECK_OK(block_cache_verify(c));
    block_cache_stats st;
    block_cache_get_stats(c, &st);
    CHECK(st.hits + st.misses >= 8 * 30000ull);
    CHECK(st.usage_bytes <= capacity);
    free(c);
}

/* Lock-free releases racing erase_file: readers pin and release a few hot
 * keys (often holding two pins) while another thread erases their file over
 * and over.  Every erased-while-pinned entry must be freed by exactly one
 * release: afterwards, with nothing pinned, one more erase leaves the cache
 * empty and consistent. */
#define ERASE_READERS 4
#define ERASE_ROUNDS 20000

typedef struct erase_race {
    block_cache *c;
    uint64_t seed;
    _Atomic int *stop;
    int errors;
} erase_race;

static void *erase_reader(void *arg)
{
    erase_race *r = arg;
    uint64_t seed = r->seed;
    for (int op = 0; op < ERASE_ROUNDS; op++) {
        uint64_t k = xorshift64(&seed) % 8;
        size_t len = 100 + k * 300, got;
        cache_pin a, b;
        const uint8_t *p = block_cache_lookup(r->c, 11, k, &got, &a);
        if (p == NULL)
            p = insert_value(r->c, 11, k, len, &a);
        else
            r->errors += got != len;
        if (p == NULL)
            continue;
        const uint8_t *q = block_cache_lookup(r->c, 11, k, &got, &b);
        r->errors += !value_ok(p, len, 11, k);
        if (q != NULL) {
            r->errors += !value_ok(q, len, 11, k);
            block_cache_release(r->c, b);
        }
        block_cache_release(r->c, a);
    }
    return NULL;
}

static void *erase_loop(void *arg)
{
    erase_race *r = arg;
    while (!atomic_load(r->stop))
        block_cache_erase_file(r->c, 11);
    return NULL;
}

static void test_release_races_erase(void)
{
    block_cache *c = new_cache(256 * KiB, 2);
    _Atomic int stop = 0;
    erase_race readers[ERASE_READERS], eraser = { .c = c, .stop = &stop };
    pthread_t t[ERASE_READERS], te;
    CHECK(pthread_create(&te, NULL, erase_loop, &eraser) == 0);
    for (int i = 0; i < ERASE_READERS; i++) {
        readers[i] = (erase_race) { .c = c, .seed = 31 + (uint64_t) i, .stop = &stop };
        CHECK(pthread_create(&t[i], NULL, erase_reader, &readers[i]) == 0);
    }
    for (int i = 0; i < ERASE_READERS; i++) {
        pthread_join(t[i], NULL);
        CHECK(readers[i].errors == 0);
    }
    atomic_store(&stop, 1);
    pthread_join(te, NULL);
    CHECK_OK(block_cache_verify(c));
    block_cache_erase_file(c, 11);
    block_cache_stats st;
    block_cache_get_stats(c, &st);
    CHECK(st.entries == 0 && st.usage_bytes == 0);
    CHECK(st.hits > 0 && st.inserts > 8);
    CHECK_OK(block_cache_verify(c));
    free(c);
}

/* Threads inserting the same missing key at once must all end up with the
 * one cached copy (the losers of the race get the winner's entry). */
#define RACERS 6
#define RACE_ROUNDS 300
#define RACE_LEN (512 * KiB)

typedef struct race {
    block_cache *c;
    pthread_barrier_t *barrier;
    const uint8_t *got[RACE_ROUNDS];
    int errors;
} race;

static void *race_thread(void *arg)
{
    race *r = arg;
    uint8_t *buf = malloc(RACE_LEN);
    for (int round = 0; round < RACE_ROUNDS; round++) {
        cache_pin pin;
        fill_value(buf, RACE_LEN, 9, (uint64_t) round);
        pthread_barrier_wait(r->barrier);
        r->got[round] = block_cache_insert(r->c, 9, (uint64_t) round, buf, RACE_LEN, &pin);
        r->errors += r->got[round] == NULL || !value_ok(r->got[round], RACE_LEN, 9, (uint64_t) round);
        pthread_barrier_wait(r->barrier);  /* everyone holds a pin: nothing moves */
        if (r->got[round] != NULL)
            block_cache_release(r->c, pin);
    }
    free(buf);
    return NULL;
}

static void test_insert_race(void)
{
    block_cache *c = new_cache(8192 * KiB, 2);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, RACERS);
    static race r[RACERS];
    pthread_t t[RACERS];
    for (int i = 0; i < RACERS; i++) {
        r[i] = (race) { .c = c, .barrier = &barrier };
        pthread_create(&t[i], NULL, race_thread, &r[i]);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(t[i], NULL);
    int differing = 0;
    for (int i = 0; i < RACERS; i++) {
        CHECK(r[i].errors == 0);
        for (int round = 0; round < RACE_ROUNDS; round++)
            differing += r[i].got[round] != r[0].got[round];
    }
    CHECK(differing == 0);
    block_cache_stats st;
    block_cache_get_stats(c, &st);
    CHECK(st.inserts == RACE_ROUNDS);
    CHECK_OK(block_cache_verify(c));
    pthread_barrier_destroy(&barrier);
    free(c);
}

int main(void)
{
    test_init_rejects();
    test_basic();
    test_clock_order();
    test_all_pinned();
    test_pins_survive_pressure();
    test_sizes_up_to_a_shard();
    test_erase_file();
    test_fragmentation_churn();
    test_multi_process();
    test_multi_thread();
    test_insert_race();
    test_release_races_erase();
    return test_report("test_block_cache");
}
