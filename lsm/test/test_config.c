/* test_config.c — lsm_config_defaults and every lsm_config_validate rule. */
#include "testutil.h"

#include <stdint.h>

#define MiB ((size_t) 1024 * 1024)

static void valid_config(lsm_config *c)
{
    lsm_config_defaults(c);
    strcpy(c->dir, "/tmp/flowdb-test");
}

/* One rule = a mutation that breaks a valid config, and the field the error
 * message must name. */
typedef struct rule {
    const char *name;
    const char *field;
    void (*breaks)(lsm_config *c);
} rule;

#define RULE(tag, stmt) static void break_##tag(lsm_config *c) { stmt; }
RULE(dir_empty, c->dir[0] = '\0')
RULE(dir_unterminated, memset(c->dir, 'a', sizeof c->dir))
RULE(memtable_small, c->memtable_size = MiB - 1)
RULE(memtable_big, c->memtable_size = ((size_t) 3 << 30) + 1)
RULE(frozen_zero, c->max_frozen_memtables = 0)
RULE(frozen_big, c->max_frozen_memtables = 65)
RULE(block_small, c->block_size = 255)
RULE(block_big, c->block_size = 16 * MiB + 1)
RULE(bloom_zero, c->bloom_bits_per_key = 0)
RULE(bloom_big, c->bloom_bits_per_key = 33)
RULE(block_cache_small, c->block_cache_size = MiB - 1)
RULE(index_cache_small, c->index_cache_size = MiB - 1)
RULE(sync_mode_bad, c->sync_mode = (lsm_sync_mode) 2)
RULE(sync_mode_negative, c->sync_mode = (lsm_sync_mode) -1)
RULE(sync_interval_zero, c->sync_interval_ms = 0)
RULE(wal_segment_small, c->wal_segment_size = MiB - 1)
RULE(threshold_small, c->compaction_threshold = 1)
RULE(threshold_big, c->compaction_threshold = 65)
RULE(size_amp_big, c->max_size_amp_percent = 100001)
RULE(compaction_interval_zero, c->compaction_interval_ms = 0)
RULE(gc_interval_zero, c->gc_interval_secs = 0)
RULE(ttl_negative, c->default_ttl_secs = -1)
RULE(bucket_zero, c->time_bucket_secs = 0)
RULE(bucket_negative, c->time_bucket_secs = -5)
RULE(shards_zero, c->cache_shards = 0)
RULE(shards_big, c->cache_shards = 512)
RULE(shards_not_pow2, c->cache_shards = 12)
RULE(max_tables_small, c->max_tables = 15)
RULE(max_snapshots_zero, c->max_snapshots = 0)
RULE(inflight_zero, c->max_inflight_writes = 0)
RULE(write_wait_zero, c->write_wait_ms = 0)
/* 16 shards x 64 KiB = 1 MiB: 2 MiB / 64 shards = 32 KiB per shard. */
RULE(block_cache_shard_small, (c->block_cache_size = 2 * MiB, c->index_cache_size = 64 * MiB, c->cache_shards = 64))
RULE(index_cache_shard_small, (c->index_cache_size = 2 * MiB, c->cache_shards = 64))

#define R(tag, field) { #tag, field, break_##tag }
static const rule rules[] = {
    R(dir_empty, "dir"), R(dir_unterminated, "dir"),
    R(memtable_small, "memtable_size"), R(memtable_big, "memtable_size"),
    R(frozen_zero, "max_frozen_memtables"), R(frozen_big, "max_frozen_memtables"),
    R(block_small, "block_size"), R(block_big, "block_size"),
    R(bloom_zero, "bloom_bits_per_key"), R(bloom_big, "bloom_bits_per_key"),
    R(block_cache_small, "block_cache_size"), R(index_cache_small, "index_cache_size"),
    R(sync_mode_bad, "sync_mode"), R(sync_mode_negative, "sync_mode"),
    R(sync_interval_zero, "sync_interval_ms"), R(wal_segment_small, "wal_segment_size"),
    R(threshold_small, "compaction_threshold"), R(threshold_big, "compaction_threshold"),
    R(size_amp_big, "max_size_amp_percent"),
    R(compaction_interval_zero, "compaction_interval_ms"),
    R(gc_interval_zero, "gc_interval_secs"), R(ttl_negative, "default_ttl_secs"),
    R(bucket_zero, "time_bucket_secs"), R(bucket_negative, "time_bucket_secs"),
    R(shards_zero, "cache_shards"), R(shards_big, "cache_shards"),
    R(shards_not_pow2, "cache_shards"), R(max_tables_small, "max_tables"),
    R(max_snapshots_zero, "max_snapshots"), R(inflight_zero, "max_inflight_writes"),
    R(write_wait_zero, "write_wait_ms"),
    R(block_cache_shard_small, "block_cache_size"),
    R(index_cache_shard_small, "index_cache_size"),
};

static void test_defaults(void)
{
    lsm_config c;
    lsm_config_defaults(&c);
    CHECK(c.dir[0] == '\0');
    CHECK(lsm_config_validate(&c) == LSM_INVALID);  /* dir must be set */
    CHECK(strstr(lsm_errmsg(), "dir") != NULL);
    CHECK(c.memtable_size == 64 * MiB);
    CHECK(c.max_frozen_memtables == 2);
    CHECK(c.block_size == 4096);
    CHECK(c.bloom_bits_per_key == 10);
    CHECK(c.block_cache_size == 128 * MiB);
    CHECK(c.index_cache_size == 32 * MiB);
    CHECK(c.sync_mode == LSM_SYNC_INTERVAL);
    CHECK(c.sync_interval_ms == 100);
    CHECK(c.wal_segment_size == 64 * MiB);
    CHECK(c.compaction_threshold == 4);
    CHECK(c.max_size_amp_percent == 100);
    CHECK(c.compaction_interval_ms == 1000);
    CHECK(c.gc_interval_secs == 60);
    CHECK(c.default_ttl_secs == 0);
    CHECK(c.time_bucket_secs == 86400);
    CHECK(c.cache_shards == 16);
    CHECK(c.max_tables == 1024);
    CHECK(c.max_snapshots == 256);
    CHECK(c.max_inflight_writes == 256);
    CHECK(c.write_wait_ms == 60000);

    valid_config(&c);
    CHECK_OK(lsm_config_validate(&c));
}

static void test_rules(void)
{
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        lsm_config c;
        valid_config(&c);
        rules[i].breaks(&c);
        lsm_status st = lsm_config_validate(&c);
        CHECK(st == LSM_INVALID);
        CHECK(strstr(lsm_errmsg(), rules[i].field) != NULL);
        if (st != LSM_INVALID || !strstr(lsm_errmsg(), rules[i].field))
            fprintf(stderr, "rule %s: status %s, message \"%s\"\n", rules[i].name,
                    lsm_status_name(st), lsm_errmsg());
    }
}

/* The limits themselves are allowed. */
static void test_boundaries_accepted(void)
{
    lsm_config c;
    valid_config(&c);
    c.memtable_size = MiB;
    c.max_frozen_memtables = 1;
    c.block_size = 256;
    c.bloom_bits_per_key = 1;
    c.block_cache_size = MiB;
    c.index_cache_size = MiB;
    c.sync_mode = LSM_SYNC_ALWAYS;
    c.sync_interval_ms = 1;
    c.wal_segment_size = MiB;
    c.compaction_threshold = 2;
    c.max_size_amp_percent = 0;
    c.compaction_interval_ms = 1;
    c.gc_interval_secs = 1;
    c.time_bucket_secs = 1;
    c.cache_shards = 16;  /* 1 MiB / 16 = 64 KiB per shard: the minimum */
    c.max_tables = 16;
    c.max_snapshots = 1;
    c.max_inflight_writes = 1;
    c.write_wait_ms = 1;
    CHECK_OK(lsm_config_validate(&c));

    valid_config(&c);
    c.memtable_size = (size_t) 3 << 30;
    c.max_frozen_memtables = 64;
    c.block_size = 16 * MiB;
    c.bloom_bits_per_key = 32;
    c.compaction_threshold = 64;
    c.max_size_amp_percent = 100000;
    c.cache_shards = 256;
    c.block_cache_size = 256 * 64 * 1024;
    c.index_cache_size = 256 * 64 * 1024;
    c.default_ttl_secs = 3600;
    c.dir[sizeof c.dir - 1] = '\0';
    memset(c.dir, 'd', sizeof c.dir - 1);  /* longest NUL-terminated dir */
    CHECK_OK(lsm_config_validate(&c));

    c.cache_shards = 1;
    CHECK_OK(lsm_config_validate(&c));
    CHECK(lsm_config_validate(NULL) == LSM_INVALID);
}

int main(void)
{
    test_defaults();
    test_rules();
    test_boundaries_accepted();
    return test_report("test_config");
}
