/*
 * config.c — engine configuration: defaults and validation.
 *
 * The defaults suit a small machine and SPEC's benchmark budgets (the same
 * budgets RocksDB gets there: 64 MiB write buffer, 128 MiB block cache,
 * 10 bloom bits per key).  lsm_config_validate checks one field at a time in
 * declaration order, then the cross-field rules, and reports the first
 * violation naming the field and its allowed range.
 */
#include "status.h"

#include <inttypes.h>
#include <string.h>

#define KiB ((size_t) 1024)
#define MiB (1024 * KiB)

/* Memtable offsets are 32-bit and cover the arena plus its hash index
 * (an eighth of the arena at most), so one memtable stays at 3 GiB. */
#define MEMTABLE_MAX ((size_t) 3 << 30)
#define MAX_FROZEN_MEMTABLES 64u
#define BLOCK_SIZE_MIN ((size_t) 256)      /* must hold a record header */
#define BLOCK_SIZE_MAX (16 * MiB)
#define BLOOM_BITS_MAX 32u
#define CACHE_SIZE_MIN MiB
#define WAL_SEGMENT_MIN MiB
#define COMPACTION_THRESHOLD_MIN 2u
#define COMPACTION_THRESHOLD_MAX 64u
#define SIZE_AMP_PERCENT_MAX 100000u
#define CACHE_SHARDS_MAX 256u
#define CACHE_SHARD_MIN (64 * KiB)
#define MAX_TABLES_MIN 16u

void lsm_config_defaults(lsm_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dir[0] = '\0';  /* no default: the caller must set it */
    cfg->memtable_size = 64 * MiB;
    cfg->max_frozen_memtables = 2;
    cfg->block_size = 4096;
    cfg->bloom_bits_per_key = 10;
    cfg->block_cache_size = 128 * MiB;
    cfg->index_cache_size = 32 * MiB;
    cfg->sync_mode = LSM_SYNC_INTERVAL;
    cfg->sync_interval_ms = 100;
    cfg->wal_segment_size = 64 * MiB;
    cfg->compaction_threshold = 4;
    cfg->max_size_amp_percent = 100;
    cfg->compaction_interval_ms = 1000;
    cfg->gc_interval_secs = 60;
    cfg->default_ttl_secs = 0;
    cfg->time_bucket_secs = 86400;
    cfg->cache_shards = 16;
    cfg->max_tables = 1024;
    cfg->max_snapshots = 256;
    cfg->max_inflight_writes = 256;
    cfg->write_wait_ms = 60000;
}

static lsm_status validate_dir(const lsm_config *cfg)
{
    if (memchr(cfg->dir, '\0', sizeof cfg->dir) == NULL)
        return lsm_fail(LSM_INVALID, "config: dir is not NUL-terminated within %zu bytes",
                        sizeof cfg->dir);
    if (cfg->dir[0] == '\0')
        return lsm_fail(LSM_INVALID, "config: dir is empty (must name the engine directory)");
    return LSM_OK;
}

/* Rejects size fields outside [lo, hi]; the message quotes the range. */
static lsm_status check_size(const char *field, size_t v, size_t lo, size_t hi, const char *range)
{
    if (v < lo || v > hi)
        return lsm_fail(LSM_INVALID, "config: %s = %zu out of range (allowed %s)", field, v, range);
    return LSM_OK;
}

static lsm_status check_u32(const char *field, uint32_t v, uint32_t lo, uint32_t hi,
                            const char *range)
{
    if (v < lo || v > hi)
        return lsm_fail(LSM_INVALID, "config: %s = %" PRIu32 " out of range (allowed %s)",
                        field, v, range);
    return LSM_OK;
}

static lsm_status check_i64(const char *field, int64_t v, int64_t lo, const char *range)
{
    if (v < lo)
        return lsm_fail(LSM_INVALID, "config: %s = %" PRId64 " out of range (allowed %s)",
                        field, v, range);
    return LSM_OK;
}

static lsm_status validate_sizes(const lsm_config *cfg)
{
    lsm_status st;
    if ((st = check_size("memtable_size", cfg->memtable_size, MiB, MEMTABLE_MAX,
                         "1 MiB .. 3 GiB, offsets are 32-bit")) != LSM_OK)
        return st;
    if ((st = check_u32("max_frozen_memtables", cfg->max_frozen_memtables, 1,
                        MAX_FROZEN_MEMTABLES, "1 .. 64")) != LSM_OK)
        return st;
    if ((st = check_size("block_size", cfg->block_size, BLOCK_SIZE_MIN, BLOCK_SIZE_MAX,
                         "256 bytes .. 16 MiB")) != LSM_OK)
        return st;
    if ((st = check_u32("bloom_bits_per_key", cfg->bloom_bits_per_key, 1, BLOOM_BITS_MAX,
                        "1 .. 32")) != LSM_OK)
        return st;
    if ((st = check_size("block_cache_size", cfg->block_cache_size, CACHE_SIZE_MIN, SIZE_MAX,
                         ">= 1 MiB")) != LSM_OK)
        return st;
    return check_size("index_cache_size", cfg->index_cache_size, CACHE_SIZE_MIN, SIZE_MAX,
                      ">= 1 MiB");
}

static lsm_status validate_durability(const lsm_config *cfg)
{
    lsm_status st;
    if (cfg->sync_mode != LSM_SYNC_ALWAYS && cfg->sync_mode != LSM_SYNC_INTERVAL)
        return lsm_fail(LSM_INVALID,
                        "config: sync_mode = %d out of range (allowed LSM_SYNC_ALWAYS (0) "
                        "or LSM_SYNC_INTERVAL (1))", (int) cfg->sync_mode);
    if ((st = check_u32("sync_interval_ms", cfg->sync_interval_ms, 1, UINT32_MAX,
                        ">= 1")) != LSM_OK)
        return st;
    return check_size("wal_segment_size", cfg->wal_segment_size, WAL_SEGMENT_MIN, SIZE_MAX,
                      ">= 1 MiB");
}

static lsm_status validate_maintenance(const lsm_config *cfg)
{
    lsm_status st;
    if ((st = check_u32("compaction_threshold", cfg->compaction_threshold,
                        COMPACTION_THRESHOLD_MIN, COMPACTION_THRESHOLD_MAX, "2 .. 64")) != LSM_OK)
        return st;
    if ((st = check_u32("max_size_amp_percent", cfg->max_size_amp_percent, 0,
                        SIZE_AMP_PERCENT_MAX, "0 (off) .. 100000")) != LSM_OK)
        return st;
    if ((st = check_u32("compaction_interval_ms", cfg->compaction_interval_ms, 1, UINT32_MAX,
                        ">= 1")) != LSM_OK)
        return st;
    if ((st = check_u32("gc_interval_secs", cfg->gc_interval_secs, 1, UINT32_MAX,
                        ">= 1")) != LSM_OK)
        return st;
    if ((st = check_i64("default_ttl_secs", cfg->default_ttl_secs, 0,
                        ">= 0, 0 = never expire")) != LSM_OK)
        return st;
    return check_i64("time_bucket_secs", cfg->time_bucket_secs, 1, ">= 1");
}

static lsm_status validate_slots(const lsm_config *cfg)
{
    lsm_status st;
    uint32_t shards = cfg->cache_shards;
    if (shards == 0 || shards > CACHE_SHARDS_MAX || (shards & (shards - 1)) != 0)
        return lsm_fail(LSM_INVALID,
                        "config: cache_shards = %" PRIu32 " out of range (allowed a power of "
                        "two in 1 .. 256)", shards);
    if ((st = check_u32("max_tables", cfg->max_tables, MAX_TABLES_MIN, UINT32_MAX,
                        ">= 16")) != LSM_OK)
        return st;
    if ((st = check_u32("max_snapshots", cfg->max_snapshots, 1, UINT32_MAX, ">= 1")) != LSM_OK)
        return st;
    if ((st = check_u32("max_inflight_writes", cfg->max_inflight_writes, 1, UINT32_MAX,
                        ">= 1")) != LSM_OK)
        return st;
    return check_u32("write_wait_ms", cfg->write_wait_ms, 1, UINT32_MAX, ">= 1");
}

/* Each cache is split into cache_shards equal shards; a shard smaller than
 * 64 KiB could not hold even a few blocks. */
static lsm_status validate_cache_shards(const char *field, size_t cache_size, uint32_t shards)
{
    size_t per_shard = cache_size / shards;
    if (per_shard < CACHE_SHARD_MIN)
        return lsm_fail(LSM_INVALID,
                        "config: %s / cache_shards = %zu / %" PRIu32 " = %zu bytes per shard, "
                        "below the minimum 64 KiB (raise %s or lower cache_shards)",
                        field, cache_size, shards, per_shard, field);
    return LSM_OK;
}

lsm_status lsm_config_validate(const lsm_config *cfg)
{
    lsm_status st;
    if (cfg == NULL)
        return lsm_fail(LSM_INVALID, "config: NULL configuration");
    if ((st = validate_dir(cfg)) != LSM_OK || (st = validate_sizes(cfg)) != LSM_OK ||
        (st = validate_durability(cfg)) != LSM_OK || (st = validate_maintenance(cfg)) != LSM_OK ||
        (st = validate_slots(cfg)) != LSM_OK)
        return st;
    if ((st = validate_cache_shards("block_cache_size", cfg->block_cache_size,
                                    cfg->cache_shards)) != LSM_OK)
        return st;
    return validate_cache_shards("index_cache_size", cfg->index_cache_size, cfg->cache_shards);
}
