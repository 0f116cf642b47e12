/*
 * guc.c — the flowdb.* settings.
 *
 * Every setting sizes shared memory or is baked into the engine when the
 * worker opens it, so all are PGC_POSTMASTER (changed by editing
 * postgresql.conf and restarting).  Per-setting ranges are enforced by the GUC
 * machinery (its messages name the setting and the allowed range).  Because
 * a value set before the library defines its settings is only warned about
 * and replaced by the default, each value is re-checked here and an invalid
 * one stops the server instead of silently running with the default.  The
 * cross-field rules are the engine's own: the assembled configuration goes
 * through lsm_config_validate() once all settings are known, and an invalid
 * combination stops the server from starting with the engine's message.
 */
#include "flowdb.h"

#include <limits.h>

#include "miscadmin.h"
#include "utils/guc.h"

char	   *flowdb_data_dir = NULL;
int			flowdb_memtable_size_mb = 32;
int			flowdb_max_frozen_memtables = 2;
int			flowdb_block_size = 4096;
int			flowdb_bloom_bits_per_key = 10;
int			flowdb_block_cache_mb = 64;
int			flowdb_index_memory_mb = 16;
int			flowdb_wal_sync_mode = LSM_SYNC_ALWAYS;
int			flowdb_wal_sync_interval_ms = 100;
int			flowdb_wal_segment_size_mb = 64;
int			flowdb_compaction_threshold = 4;
int			flowdb_max_size_amp_percent = 100;
int			flowdb_compaction_interval_ms = 1000;
int			flowdb_gc_interval_secs = 60;
int			flowdb_default_ttl_secs = 0;
int			flowdb_time_bucket_secs = 3600;

static const struct config_enum_entry sync_mode_options[] = {
	{"always", LSM_SYNC_ALWAYS, false},
	{"interval", LSM_SYNC_INTERVAL, false},
	{NULL, 0, false}
};

/* The value given in the configuration before the setting was defined. */
static char *
configured_value(const char *name)
{
	const char *raw = GetConfigOption(name, true, false);

	return raw ? pstrdup(raw) : NULL;
}

static void
reject(const char *name, const char *raw, const char *allowed)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for parameter \"%s\": \"%s\"", name, raw),
			 errdetail("Allowed: %s.", allowed),
			 errhint("Fix %s in postgresql.conf (or postgresql.auto.conf) and start the server again.",
					 name)));
}

static void
define_int(const char *name, const char *desc, int *var, int def, int min, int max, int flags)
{
	char	   *raw = configured_value(name);
	int			v;
	const char *hint;

	DefineCustomIntVariable(name, desc, NULL, var, def, min, max,
							PGC_POSTMASTER, flags, NULL, NULL, NULL);
	if (raw && (!parse_int(raw, &v, flags, &hint) || v < min || v > max))
	{
		const char *unit = (flags & GUC_UNIT_MB) ? " MB" : (flags & GUC_UNIT_BYTE) ? " bytes" :
		(flags & GUC_UNIT_MS) ? " ms" : (flags & GUC_UNIT_S) ? " s" : "";

		reject(name, raw, psprintf("%d .. %d%s", min, max, unit));
	}
}

static void
define_sync_mode(void)
{
	const char *name = "flowdb.wal_sync_mode";
	char	   *raw = configured_value(name);

	DefineCustomEnumVariable(name,
							 "When the engine WAL is fsynced: at every commit (always) or every wal_sync_interval_ms (interval).",
							 NULL, &flowdb_wal_sync_mode, LSM_SYNC_ALWAYS, sync_mode_options,
							 PGC_POSTMASTER, 0, NULL, NULL, NULL);
	if (raw && pg_strcasecmp(raw, "always") != 0 && pg_strcasecmp(raw, "interval") != 0)
		reject(name, raw, "always, interval");
}

void
flowdb_define_gucs(void)
{
	DefineCustomStringVariable("flowdb.data_dir",
							   "Directory of the engine's files; relative paths are under the data directory.",
							   NULL, &flowdb_data_dir, "flowdb",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	define_int("flowdb.memtable_size_mb", "Size of one memtable.",
			   &flowdb_memtable_size_mb, 32, 17, 3072, GUC_UNIT_MB);
	define_int("flowdb.max_frozen_memtables", "Frozen memtables waiting for flush before writers wait.",
			   &flowdb_max_frozen_memtables, 2, 1, 64, 0);
	define_int("flowdb.block_size", "Target uncompressed size of an SST data block.",
			   &flowdb_block_size, 4096, 512, 1048576, GUC_UNIT_BYTE);
	define_int("flowdb.bloom_bits_per_key", "Bloom filter bits per key in SSTs.",
			   &flowdb_bloom_bits_per_key, 10, 1, 32, 0);
	define_int("flowdb.block_cache_mb", "Shared cache of SST data blocks.",
			   &flowdb_block_cache_mb, 64, 1, 1048576, GUC_UNIT_MB);
	define_int("flowdb.index_memory_mb", "Shared memory for SST block indexes and bloom filters.",
			   &flowdb_index_memory_mb, 16, 1, 1048576, GUC_UNIT_MB);
	define_sync_mode();
	define_int("flowdb.wal_sync_interval_ms", "WAL fsync period in interval mode.",
			   &flowdb_wal_sync_interval_ms, 100, 1, 60000, GUC_UNIT_MS);
	define_int("flowdb.wal_segment_size_mb", "Engine WAL segment size before it rolls.",
			   &flowdb_wal_segment_size_mb, 64, 1, 4096, GUC_UNIT_MB);
	define_int("flowdb.compaction_threshold", "Similar-size tables that trigger a merge, and the table count that merges the newest similar-size ones.",
			   &flowdb_compaction_threshold, 4, 2, 64, 0);
	define_int("flowdb.max_size_amp_percent",
			   "Merge the tables in front of the oldest one into it once they exceed this percent of its size; 0 = never.",
			   &flowdb_max_size_amp_percent, 100, 0, 100000, 0);
	define_int("flowdb.compaction_interval_ms", "How often the worker checks for due compactions.",
			   &flowdb_compaction_interval_ms, 1000, 1, 3600000, GUC_UNIT_MS);
	define_int("flowdb.gc_interval_secs", "How often the worker drops expired data.",
			   &flowdb_gc_interval_secs, 60, 1, 86400 * 7, GUC_UNIT_S);
	define_int("flowdb.default_ttl_secs", "TTL of records written without one; 0 = never expire.",
			   &flowdb_default_ttl_secs, 0, 0, INT_MAX, GUC_UNIT_S);
	define_int("flowdb.time_bucket_secs", "Expiry bucket width that keeps tables apart in compaction.",
			   &flowdb_time_bucket_secs, 3600, 1, INT_MAX, GUC_UNIT_S);
	MarkGUCPrefixReserved("flowdb");
}

/* Engine slots that scale with the number of processes. */
static uint32
at_least(uint32 engine_default, uint32 wanted)
{
	return engine_default > wanted ? engine_default : wanted;
}

void
flowdb_build_config(lsm_config *cfg)
{
	const char *dir = flowdb_data_dir ? flowdb_data_dir : "flowdb";
	int			n;

	lsm_config_defaults(cfg);
	if (is_absolute_path(dir))
		n = snprintf(cfg->dir, sizeof(cfg->dir), "%s", dir);
	else
		n = snprintf(cfg->dir, sizeof(cfg->dir), "%s/%s", DataDir, dir);
	if (n < 0 || n >= (int) sizeof(cfg->dir))
		cfg->dir[0] = '\0';		/* lsm_config_validate names the field */

	cfg->memtable_size = (size_t) flowdb_memtable_size_mb * 1024 * 1024;
	cfg->max_frozen_memtables = flowdb_max_frozen_memtables;
	cfg->block_size = flowdb_block_size;
	cfg->bloom_bits_per_key = flowdb_bloom_bits_per_key;
	cfg->block_cache_size = (size_t) flowdb_block_cache_mb * 1024 * 1024;
	cfg->index_cache_size = (size_t) flowdb_index_memory_mb * 1024 * 1024;
	cfg->sync_mode = (lsm_sync_mode) flowdb_wal_sync_mode;
	cfg->sync_interval_ms = flowdb_wal_sync_interval_ms;
	cfg->wal_segment_size = (size_t) flowdb_wal_segment_size_mb * 1024 * 1024;
	cfg->compaction_threshold = flowdb_compaction_threshold;
	cfg->max_size_amp_percent = flowdb_max_size_amp_percent;
	cfg->compaction_interval_ms = flowdb_compaction_interval_ms;
	cfg->gc_interval_secs = flowdb_gc_interval_secs;
	cfg->default_ttl_secs = flowdb_default_ttl_secs;
	cfg->time_bucket_secs = flowdb_time_bucket_secs;

	/* Every backend may hold a few iterators and one prepared batch. */
	if (MaxBackends > 0)
	{
		cfg->max_snapshots = at_least(cfg->max_snapshots, (uint32) MaxBackends * 4 + 16);
		cfg->max_inflight_writes = at_least(cfg->max_inflight_writes, (uint32) MaxBackends + 8);
	}
}
