/*
 * changes.c — jsondb.changes(store, since, lim): the store's change log.
 *
 * Entries are written by the commit hook (txn.c) in commit order with
 * consecutive sequence numbers starting at 1: (seq, op 'put'/'delete', key,
 * version; 0 for a delete).  `since` is a resume token: the call returns
 * entries with seq > since in order, at most lim.  The log keeps the last
 * JDB_CHANGE_RETENTION entries per store (each commit deletes, one point
 * delete each, the entries its new ones push out); asking for entries that were dropped
 * (since + 1 < first kept seq) is an error (55000), so a consumer never
 * silently misses changes.  Reads use the transaction's snapshot: a
 * consumer sees every change that committed before it, none half.
 */
#include "jsondb.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(jsondb_changes);

static uint64
be64(const uint8 *p)
{
	uint64		x = 0;

	for (int i = 0; i < 8; i++)
		x = (x << 8) | p[i];
	return x;
}

Datum
jsondb_changes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	JdbStore   *s;
	int64		since,
				lim;
	StringInfoData mk,
				lo,
				pre;
	uint8	   *mv;
	int			mvlen;
	uint64		first = 1,
				last = 0;
	JdbScan    *sc;
	lsm_record	rec;
	Tuplestorestate *ts;
	TupleDesc	desc;
	MemoryContext old;
	int64		n = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("jsondb.changes: store must not be NULL")));
	since = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);
	lim = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2);
	if (since < 0 || lim < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("jsondb.changes: since and lim must be >= 0")));
	jdb_txn_begin();
	s = jdb_store_lookup_text(PG_GETARG_TEXT_PP(0));

	initStringInfo(&mk);
	jdb_sub_prefix(s, 'm', &mk);
	if (jdb_read((uint8 *) mk.data, mk.len, &mv, &mvlen, false) && mvlen == 16)
	{
		last = be64(mv);
		first = be64(mv + 8);
	}
	if ((uint64) since + 1 < first)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("jsondb.changes: changes after sequence " INT64_FORMAT " of store \"%s\" "
						"are no longer kept", since, s->name),
				 errdetail("The change log keeps the last %d changes; the oldest kept is " UINT64_FORMAT
						   " (latest " UINT64_FORMAT ").", JDB_CHANGE_RETENTION, first, last),
				 errhint("Re-read the store and resume from the latest sequence.")));

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) || !(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("jsondb.changes: set-valued function called in a context that cannot accept a set")));
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "jsondb.changes: return type must be a row type");
	desc = BlessTupleDesc(desc);
	ts = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = ts;
	rsinfo->setDesc = desc;
	MemoryContextSwitchTo(old);

	initStringInfo(&pre);
	jdb_sub_prefix(s, 'c', &pre);
	initStringInfo(&lo);
	appendBinaryStringInfo(&lo, pre.data, pre.len);
	for (int i = 7; i >= 0; i--)
		appendStringInfoChar(&lo, (char) (uint8) ((uint64) (since + 1) >> (i * 8)));
	sc = jdb_scan_open((uint8 *) pre.data, pre.len, (uint8 *) lo.data, lo.len, false,
					   NULL, 0, false, false);
	while ((lim == 0 || n < lim) && jdb_scan_next(sc, &rec))
	{
		Datum		v[4];
		bool		nulls[4] = {false, false, false, false};

		if (rec.key_len != pre.len + 8 || rec.value_len < 9)
			continue;
		v[0] = Int64GetDatum((int64) be64(rec.key + pre.len));
		v[1] = CStringGetTextDatum(rec.value[0] == 'p' ? "put" : "delete");
		v[2] = JsonbPGetDatum(jdb_key_to_jsonb(rec.value + 9, rec.value_len - 9));
		v[3] = Int64GetDatum((int64) be64(rec.value + 1));
		tuplestore_putvalues(ts, desc, v, nulls);
		n++;
	}
	jdb_scan_close(sc);
	return (Datum) 0;
}
