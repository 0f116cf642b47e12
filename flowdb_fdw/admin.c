/*
 * admin.c — keyspace data purges, maintenance, statistics and metrics.
 *
 * Maintenance runs in the calling backend on the shared engine (the worker
 * also runs it on its own schedule).  Access is controlled in SQL: these
 * functions are revoked from PUBLIC and granted to flowdb_admin.
 */
#include "flowdb.h"

#include <stdlib.h>

#include "catalog/namespace.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(flowdb_purge_keyspace);
PG_FUNCTION_INFO_V1(flowdb_purge_database);
PG_FUNCTION_INFO_V1(flowdb_flush);
PG_FUNCTION_INFO_V1(flowdb_compact);
PG_FUNCTION_INFO_V1(flowdb_gc);
PG_FUNCTION_INFO_V1(flowdb_checkpoint);
PG_FUNCTION_INFO_V1(flowdb_stats);
PG_FUNCTION_INFO_V1(flowdb_metrics);

static void
buffer_prefix_delete(const uint8 *prefix, int len)
{
	uint8	   *end;
	int			end_len;

	if (!flowdb_prefix_successor(prefix, len, &end, &end_len))
		elog(ERROR, "flowdb: prefix has no successor");
	flowdb_xact_delete_range(prefix, len, end, end_len);
}

/* Other backends must forget cached keyspace lookups once we commit. */
static void
invalidate_keyspace_caches(void)
{
	Oid			nsp = get_namespace_oid("flowdb", false);
	Oid			relid = get_relname_relid("keyspaces", nsp);

	flowdb_keyspace_cache_reset();
	if (OidIsValid(relid))
		CacheInvalidateRelcacheByRelid(relid);
}

/* _purge_keyspace(name): delete every record of the keyspace (one range
 * delete, transactional).  Called by create_keyspace (so a re-created
 * keyspace starts empty) and drop_keyspace. */
Datum
flowdb_purge_keyspace(PG_FUNCTION_ARGS)
{
	FlowdbKeyspace ks;
	text	   *name;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("flowdb: keyspace name must not be NULL")));
	name = PG_GETARG_TEXT_PP(0);
	flowdb_keyspace_init(&ks, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
	buffer_prefix_delete(ks.prefix, ks.prefix_len);
	invalidate_keyspace_caches();
	PG_RETURN_VOID();
}

/* _purge_database(): delete every keyspace record of this database.  Run by
 * CREATE EXTENSION: data left by an earlier installation, or by a dropped
 * database whose OID was reused, must not reappear. */
Datum
flowdb_purge_database(PG_FUNCTION_ARGS)
{
	uint8		prefix[8];
	int			len = flowdb_db_prefix(prefix, FLOWDB_KIND_KEYSPACE);

	buffer_prefix_delete(prefix, len);
	flowdb_keyspace_cache_reset();
	PG_RETURN_VOID();
}

static void
check(lsm_status st, const char *what)
{
	if (st != LSM_OK)
		flowdb_raise(st, what);
}

Datum
flowdb_flush(PG_FUNCTION_ARGS)
{
	check(lsm_flush(flowdb_db()), "flush");
	PG_RETURN_VOID();
}

/* compact(full boolean default true): full = merge everything into one
 * table; otherwise run the compaction steps that are due. */
Datum
flowdb_compact(PG_FUNCTION_ARGS)
{
	bool		full = PG_ARGISNULL(0) ? true : PG_GETARG_BOOL(0);

	check(full ? lsm_compact_full(flowdb_db()) : lsm_compact(flowdb_db()), "compact");
	PG_RETURN_VOID();
}

Datum
flowdb_gc(PG_FUNCTION_ARGS)
{
	uint64_t	purged = 0;

	check(lsm_gc(flowdb_db(), &purged), "gc");
	PG_RETURN_INT64((int64) purged);
}

Datum
flowdb_checkpoint(PG_FUNCTION_ARGS)
{
	lsm_db	   *db = flowdb_db();

	check(lsm_flush(db), "checkpoint (flush)");
	check(lsm_wal_sync(db), "checkpoint (WAL sync)");
	PG_RETURN_VOID();
}

static void
put_stat(ReturnSetInfo *rsinfo, const char *name, double value)
{
	Datum		values[2];
	bool		nulls[2] = {false, false};

	values[0] = CStringGetTextDatum(name);
	values[1] = Float8GetDatum(value);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* stats() returns setof (name text, value double precision) */
Datum
flowdb_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	lsm_stats	s;

	InitMaterializedSRF(fcinfo, 0);
	check(lsm_get_stats(flowdb_db(), &s), "stats");
#define STAT(field) put_stat(rsinfo, #field, (double) s.field)
#define LATENCY(field) \
	do { put_stat(rsinfo, #field "_p50_us", s.field.p50_us); \
		 put_stat(rsinfo, #field "_p90_us", s.field.p90_us); \
		 put_stat(rsinfo, #field "_p99_us", s.field.p99_us); \
		 put_stat(rsinfo, #field "_count", (double) s.field.count); } while (0)
	STAT(records_written);
	STAT(bytes_written);
	STAT(records_read);
	STAT(bytes_read);
	STAT(flushes);
	STAT(compactions);
	STAT(gc_runs);
	STAT(records_purged);
	STAT(memtable_records);
	STAT(memtable_bytes);
	STAT(frozen_memtables);
	STAT(table_count);
	STAT(table_bytes);
	STAT(wal_bytes);
	STAT(wal_records_dropped);
	STAT(cache_hits);
	STAT(cache_misses);
	STAT(cache_hit_rate);
	STAT(raw_bytes_flushed);
	STAT(sst_bytes_flushed);
	STAT(compression_ratio);
	STAT(write_stalls);
	STAT(ingests);
	STAT(ingests_streamed);
	STAT(last_seq);
	LATENCY(write_latency);
	LATENCY(read_latency);
	LATENCY(flush_latency);
#undef STAT
#undef LATENCY
	return (Datum) 0;
}

/* metrics() returns the Prometheus exposition text */
Datum
flowdb_metrics(PG_FUNCTION_ARGS)
{
	char	   *text_out = NULL;
	lsm_status	st = lsm_metrics_text(flowdb_db(), &text_out);
	text	   *result;

	if (st != LSM_OK)
		flowdb_raise(st, "metrics");
	result = cstring_to_text(text_out ? text_out : "");
	free(text_out);
	PG_RETURN_TEXT_P(result);
}
