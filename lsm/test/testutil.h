/*
 * testutil.h — the engine tests' tiny harness.
 *
 * CHECK(cond) records a failure and goes on; CHECK_OK(expr) expects LSM_OK.
 * Each test binary ends with `return test_report(name);`, which prints
 * "name: N checks, N failed" and returns non-zero on any failure.
 */
#ifndef LSM_TESTUTIL_H
#define LSM_TESTUTIL_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lsm.h"

static unsigned long test_checks, test_failed;

#define CHECK(cond) do { \
    test_checks++; \
    if (!(cond)) { \
        test_failed++; \
        fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    } \
} while (0)

#define CHECK_OK(expr) do { \
    lsm_status st_ = (expr); \
    test_checks++; \
    if (st_ != LSM_OK) { \
        test_failed++; \
        fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #expr, \
                lsm_status_name(st_), lsm_errmsg()); \
    } \
} while (0)

#define CHECK_STATUS(expr, want) do { \
    lsm_status st_ = (expr); \
    test_checks++; \
    if (st_ != (want)) { \
        test_failed++; \
        fprintf(stderr, "%s:%d: %s -> %s, wanted %s (%s)\n", __FILE__, __LINE__, #expr, \
                lsm_status_name(st_), lsm_status_name(want), lsm_errmsg()); \
    } \
} while (0)

static inline int test_report(const char *name)
{
    printf("%s: %lu checks, %lu failed\n", name, test_checks, test_failed);
    return test_failed ? 1 : 0;
}

/* Defaults scaled down for tests: 1 MiB memtables, small caches, few
 * table and snapshot slots, a 5 s back-pressure wait. */
static inline void test_small_config(lsm_config *cfg, const char *dir)
{
    lsm_config_defaults(cfg);
    snprintf(cfg->dir, sizeof cfg->dir, "%s", dir);
    cfg->memtable_size = 1 << 20;
    cfg->block_cache_size = 4 << 20;
    cfg->index_cache_size = 2 << 20;
    cfg->max_tables = 64;
    cfg->max_snapshots = 16;
    cfg->write_wait_ms = 5000;
}

/* A fresh empty directory under $TMPDIR (or /tmp); path written to buf. */
static inline void test_tempdir(char *buf, size_t len, const char *tag)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, len, "%s/lsmtest-%s-XXXXXX", base ? base : "/tmp", tag);
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(2);
    }
}

static inline void test_rmdir(const char *path)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", path);
}

/* xorshift64: the tests' seeded generator. */
static inline uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Files in dir whose name contains `part` (".sst": the table files). */
static inline int test_count_files(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += strstr(de->d_name, part) != NULL;
    if (d)
        closedir(d);
    return n;
}

/* The small config with 1 KiB blocks and a tag filter (NULL: keep all). */
static inline lsm_db *test_open_with_filter(const char *dir, lsm_tag_filter_fn filter)
{
    lsm_config cfg;
    test_small_config(&cfg, dir);
    cfg.block_size = 1024;
    lsm_open_options o = {.tag_filter = filter};
    lsm_db *db = NULL;
    CHECK_OK(lsm_open(&cfg, NULL, 0, &o, &db));
    return db;
}

/* A tag filter that keeps only transactions tagged 7 (committed ones). */
static inline bool test_keep_tag_7(uint64_t tag, void *arg)
{
    (void) arg;
    return tag == 7;
}

/* Tests that write generations of values: key i is "key%06d" at ts 1 and
 * its value starts "value-<i>-gen-<gen>".  Returns the generation read,
 * -1 when the key is absent, -2 when the value does not parse. */
static inline int test_get_gen(lsm_db *db, const lsm_read_options *ro, int i)
{
    char k[16];
    snprintf(k, sizeof k, "key%06d", i);
    lsm_value v = {0};
    lsm_status st = lsm_get(db, ro, k, strlen(k), 1, &v);
    int gen = -1;
    if (st == LSM_OK && sscanf((const char *) v.data, "value-%*d-gen-%d", &gen) != 1)
        gen = -2;
    lsm_value_free(&v);
    return gen;
}

#endif /* LSM_TESTUTIL_H */
