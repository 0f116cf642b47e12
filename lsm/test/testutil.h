/*
 * testutil.h — the engine tests' tiny harness.
 *
 * CHECK(cond) records a failure and goes on; CHECK_OK(expr) expects LSM_OK.
 * Each test binary ends with `return test_report(name);`, which prints
 * "name: N checks, N failed" and returns non-zero on any failure.
 */
#ifndef LSM_TESTUTIL_H
#define LSM_TESTUTIL_H

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

#endif /* LSM_TESTUTIL_H */
