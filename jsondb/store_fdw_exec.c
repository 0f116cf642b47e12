/*
 * store_fdw_exec.c — scanning a store foreign table, its EXPLAIN, and
 * ANALYZE sampling.
 *
 * A scan reads through the JsonDB transaction like jsondb.get_all: the
 * snapshot of the first jsondb call, own writes visible, every document
 * read recorded for OCC.  When it starts (again at each rescan: a
 * parameterized scan's values change), the pushed conditions' values are
 * evaluated and jdb_fdw_make_scan (store_fdw_scan.c) decides what is read:
 *   full scan / up to 8 key ranges  streamed in key order (the ranges are
 *                                   disjoint, so no document twice), all
 *                                   cursors opened at the first row;
 *   keys (key = / IN)               one point read each, before the first row;
 *   more key ranges                 read completely before the first row;
 *   an index                        likewise (point reads for a unique
 *                                   index's keys), the documents sorted by
 *                                   primary key and deduplicated (a
 *                                   multi-entry index or an IN list can meet
 *                                   a document twice).
 * So a scan never sees writes made after it started (the cursors' views of
 * the transaction's own writes are taken when they open), like a statement
 * snapshot.  Postgres then checks every WHERE clause on every row.
 */
#include "jsondb.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/sampling.h"

typedef struct Hit
{
	uint8	   *pk;
	int			pklen;
	Jsonb	   *doc;
} Hit;

typedef struct StoreScan
{
	const JdbFdwTable *t;
	List	   *quals;
	List	   *value_states;	/* ExprState* of the quals' values */
	JdbScanPlan plan;
	bool		planned;
	MemoryContext scan_cxt;		/* the plan, hits; reset on rescan */
	MemoryContext row_cxt;		/* one row */
	int			pre_len;		/* document key prefix length */
	/* streaming: one cursor per key range, all opened together */
	JdbScan   **scans;
	int			nscans,
				cur;
	bool		opened;
	/* materialized index hits */
	Hit		   *hits;
	int			nhits,
				cap,
				pos;
	bool		collected;
} StoreScan;

static void
make_plan(ForeignScanState *node, StoreScan *st)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	int			n = list_length(st->quals);
	MemoryContext old = MemoryContextSwitchTo(st->scan_cxt);	/* reset on rescan */
	Datum	   *values = palloc0(Max(n, 1) * sizeof(Datum));
	bool	   *nulls = palloc0(Max(n, 1) * sizeof(bool));
	bool	   *unknown = palloc0(Max(n, 1) * sizeof(bool));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, st->value_states)
	{
		values[i] = ExecEvalExpr(lfirst(lc), econtext, &nulls[i]);
		i++;
	}
	jdb_txn_begin();
	jdb_fdw_make_scan(jdb_fdw_store(st->t), st->quals, values, nulls, unknown, &st->plan);
	MemoryContextSwitchTo(old);
	st->planned = true;
}

/* Does the expression use a parameter set by an outer plan node? */
static bool
has_exec_param(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXEC)
		return true;
	return expression_tree_walker(node, has_exec_param, context);
}

/* The pushed conditions with their values left out, for EXPLAIN. */
static char *
describe_quals(List *quals)
{
	static const char *const ops[] = {"?", "<", "<=", "=", ">=", ">"};
	StringInfoData out;
	ListCell   *lc;

	initStringInfo(&out);
	foreach(lc, quals)
	{
		JdbQual    *q = lfirst(lc);

		if (out.len)
			appendStringInfoString(&out, " AND ");
		switch (q->kind)
		{
			case JDB_Q_TEXT_EQ:
				appendStringInfo(&out, "%s = ?", q->path);
				break;
			case JDB_Q_NUM_CMP:
				appendStringInfo(&out, "%s::%s %s ?", q->path, q->int_cast ? "int" : "numeric",
								 ops[q->strategy]);
				break;
			case JDB_Q_KEY_CMP:
				appendStringInfo(&out, "key %s ?", ops[q->strategy]);
				break;
			case JDB_Q_KEY_IN:
				appendStringInfoString(&out, "key IN ?");
				break;
			case JDB_Q_CONTAINS:
				appendStringInfo(&out, "%s @> ?", q->path ? q->path : "doc");
				break;
		}
	}
	return out.data;
}

void
jdb_fdw_begin_scan(ForeignScanState *node, int eflags)
{
	ForeignScan *fs = (ForeignScan *) node->ss.ps.plan;
	StoreScan  *st = palloc0(sizeof(StoreScan));
	StringInfoData pre;

	st->t = jdb_fdw_table(RelationGetRelid(node->ss.ss_currentRelation));
	st->quals = jdb_fdw_quals_from_private(lsecond(fs->fdw_private), fs->fdw_exprs);
	st->value_states = ExecInitExprList(fs->fdw_exprs, (PlanState *) node);
	st->scan_cxt = AllocSetContextCreate(CurrentMemoryContext, "jsondb store scan",
										 ALLOCSET_DEFAULT_SIZES);
	st->row_cxt = AllocSetContextCreate(CurrentMemoryContext, "jsondb store row",
										ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&pre);
	jdb_sub_prefix(jdb_fdw_store(st->t), 'd', &pre);
	st->pre_len = pre.len;
	node->fdw_state = st;
	/* EXPLAIN shows what would be read, so decide it now, unless it
	 * depends on an outer row (parameterized scan) that does not exist */
	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) && !has_exec_param((Node *) fs->fdw_exprs, NULL))
		make_plan(node, st);
}

static bool
collect_visit(void *arg, const uint8 *ik, int iklen, const uint8 *pk, int pklen, Jsonb *doc)
{
	StoreScan  *st = arg;
	Hit		   *h;

	if (st->nhits == st->cap)
	{
		st->cap = st->cap ? st->cap * 2 : 64;
		st->hits = st->hits ? repalloc(st->hits, st->cap * sizeof(Hit)) :
			palloc(st->cap * sizeof(Hit));
	}
	h = &st->hits[st->nhits++];
	h->pk = palloc(pklen);
	memcpy(h->pk, pk, pklen);
	h->pklen = pklen;
	h->doc = doc;
	return true;
}

static int
hit_cmp(const void *a, const void *b)
{
	const Hit  *x = a,
			   *y = b;

	return flowdb_key_cmp(x->pk, x->pklen, y->pk, y->pklen);
}

/* Is r the range of exactly one engine key (r->lo)? */
static bool
range_is_point(const JdbRange *r)
{
	uint8	   *succ;
	int			slen;

	return r->has_hi &&
		flowdb_prefix_successor((const uint8 *) r->lo.data, r->lo.len, &succ, &slen) &&
		slen == r->hi.len && memcmp(succ, r->hi.data, slen) == 0;
}

static bool
all_points(List *ranges)
{
	ListCell   *lc;

	foreach(lc, ranges)
		if (!range_is_point(lfirst(lc)))
			return false;
	return true;
}

/*
 * Read the document of pk (a point read through the transaction, recorded
 * for OCC like a scanned document) into the hits.
 */
static void
collect_doc(StoreScan *st, JdbStore *s, const uint8 *pk, int pklen)
{
	Jsonb	   *doc = jdb_get_doc(s, pk, pklen, NULL);

	if (doc)
		collect_visit(st, NULL, 0, pk, pklen, doc);
}

static void
collect_index(StoreScan *st)
{
	MemoryContext old = MemoryContextSwitchTo(st->scan_cxt);
	JdbStore   *s = jdb_fdw_store(st->t);
	ListCell   *lc;
	int			n = 0;

	if (st->plan.ix.ix->unique && !st->plan.ix.ix->multi_entry && all_points(st->plan.ix.ranges))
	{
		/* a unique entry's engine key is the range's key, its value the
		 * primary key: point reads instead of scans (as get_by_index) */
		foreach(lc, st->plan.ix.ranges)
		{
			JdbRange   *r = lfirst(lc);
			uint8	   *pk;
			int			pklen;

			if (jdb_read((uint8 *) r->lo.data, r->lo.len, &pk, &pklen, false))
				collect_doc(st, s, pk, pklen);
		}
	}
	else
		foreach(lc, st->plan.ix.ranges)
			jdb_scan_index_range(s, st->plan.ix.ix, lfirst(lc), 0, collect_visit, st);
	if (st->nhits > 1)
		qsort(st->hits, st->nhits, sizeof(Hit), hit_cmp);
	for (int i = 0; i < st->nhits; i++)
		if (n == 0 || hit_cmp(&st->hits[i], &st->hits[n - 1]) != 0)
			st->hits[n++] = st->hits[i];
	st->nhits = n;
	st->collected = true;
	MemoryContextSwitchTo(old);
}

static TupleTableSlot *
store_row(StoreScan *st, TupleTableSlot *slot, const uint8 *pk, int pklen, Jsonb *doc)
{
	ExecClearTuple(slot);
	for (int i = 0; i < slot->tts_tupleDescriptor->natts; i++)
	{
		slot->tts_values[i] = (Datum) 0;
		slot->tts_isnull[i] = true;
	}
	slot->tts_values[st->t->doc_attno - 1] = JsonbPGetDatum(doc);
	slot->tts_isnull[st->t->doc_attno - 1] = false;
	if (st->t->key_attno)
	{
		slot->tts_values[st->t->key_attno - 1] = JsonbPGetDatum(jdb_key_to_jsonb(pk, pklen));
		slot->tts_isnull[st->t->key_attno - 1] = false;
	}
	return ExecStoreVirtualTuple(slot);
}

/*
 * Open a cursor for every key range at once: each takes its view of the
 * transaction's own writes when opened, so opening them together keeps
 * writes made while the rows are consumed (INSERT ... SELECT into the same
 * store) out of the scan, like a statement snapshot.
 */
static void
open_ranges(StoreScan *st)
{
	MemoryContext old = MemoryContextSwitchTo(st->scan_cxt);
	ListCell   *lc;

	st->nscans = 0;
	st->cur = 0;
	st->scans = palloc(Max(list_length(st->plan.key_ranges), 1) * sizeof(JdbScan *));
	foreach(lc, st->plan.key_ranges)
	{
		JdbRange   *r = lfirst(lc);

		st->scans[st->nscans++] =
			jdb_scan_open((uint8 *) r->lo.data, st->pre_len, (uint8 *) r->lo.data, r->lo.len,
						  false, r->has_hi ? (uint8 *) r->hi.data : NULL, r->hi.len, false, false);
	}
	st->opened = true;
	MemoryContextSwitchTo(old);
}

/* the next document of the key ranges, or false */
static bool
next_streamed(StoreScan *st, lsm_record *rec)
{
	if (!st->opened)
		open_ranges(st);
	for (; st->cur < st->nscans; st->cur++)
		if (jdb_scan_next(st->scans[st->cur], rec))
			return true;
	return false;
}

/*
 * Many key ranges (an IN list): read them all first, as an index scan does,
 * rather than hold a cursor per key.
 */
#define MAX_OPEN_RANGES 8

static void
collect_keys(StoreScan *st)
{
	MemoryContext old = MemoryContextSwitchTo(st->scan_cxt);
	lsm_record	rec;

	if (st->plan.key_points)
	{
		/* one point read per key (the ranges are sorted and distinct) */
		JdbStore   *s = jdb_fdw_store(st->t);
		ListCell   *lc;

		foreach(lc, st->plan.key_ranges)
		{
			JdbRange   *r = lfirst(lc);

			collect_doc(st, s, (uint8 *) r->lo.data + st->pre_len, r->lo.len - st->pre_len);
			CHECK_FOR_INTERRUPTS();
		}
		st->collected = true;
		MemoryContextSwitchTo(old);
		return;
	}
	while (next_streamed(st, &rec))
	{
		if (jdb_scan_tracks(&rec))
			jdb_track(rec.key, rec.key_len, rec.value, rec.value_len, true);
		collect_visit(st, NULL, 0, rec.key + st->pre_len, rec.key_len - st->pre_len,
					  jdb_doc_decode(rec.value, rec.value_len, NULL));
		CHECK_FOR_INTERRUPTS();
	}
	st->collected = true;
	MemoryContextSwitchTo(old);
}

TupleTableSlot *
jdb_fdw_iterate(ForeignScanState *node)
{
	StoreScan  *st = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext old;
	lsm_record	rec;

	CHECK_FOR_INTERRUPTS();
	if (!st->planned)
		make_plan(node, st);
	if (st->plan.empty)
		return ExecClearTuple(slot);
	if (st->plan.kind == JDB_SCAN_INDEX || st->plan.key_points ||
		list_length(st->plan.key_ranges) > MAX_OPEN_RANGES)
	{
		if (!st->collected && st->plan.kind == JDB_SCAN_INDEX)
			collect_index(st);
		else if (!st->collected)
			collect_keys(st);
		if (st->pos >= st->nhits)
			return ExecClearTuple(slot);
		st->pos++;
		MemoryContextReset(st->row_cxt);
		old = MemoryContextSwitchTo(st->row_cxt);	/* the key's jsonb */
		slot = store_row(st, slot, st->hits[st->pos - 1].pk, st->hits[st->pos - 1].pklen,
						 st->hits[st->pos - 1].doc);
		MemoryContextSwitchTo(old);
		return slot;
	}
	MemoryContextReset(st->row_cxt);
	old = MemoryContextSwitchTo(st->row_cxt);
	if (!next_streamed(st, &rec))
	{
		MemoryContextSwitchTo(old);
		return ExecClearTuple(slot);
	}
	if (jdb_scan_tracks(&rec))
		jdb_track(rec.key, rec.key_len, rec.value, rec.value_len, true);
	slot = store_row(st, slot, rec.key + st->pre_len, rec.key_len - st->pre_len,
					 jdb_doc_decode(rec.value, rec.value_len, NULL));
	MemoryContextSwitchTo(old);
	return slot;
}

static void
close_scan(StoreScan *st)
{
	for (int i = 0; i < st->nscans; i++)
		jdb_scan_close(st->scans[i]);
	st->nscans = 0;
	st->opened = false;
}

void
jdb_fdw_rescan(ForeignScanState *node)
{
	StoreScan  *st = node->fdw_state;

	close_scan(st);
	MemoryContextReset(st->scan_cxt);
	st->planned = false;
	st->collected = false;
	st->hits = NULL;
	st->nhits = st->cap = st->pos = 0;
}

void
jdb_fdw_end_scan(ForeignScanState *node)
{
	StoreScan  *st = node->fdw_state;

	if (st)
		close_scan(st);
}

void
jdb_fdw_explain_scan(ForeignScanState *node, ExplainState *es)
{
	StoreScan  *st = node->fdw_state;
	const char *what;

	ExplainPropertyText("JsonDB Store", st->t->store, es);
	if (!st->planned)
	{
		ExplainPropertyText("JsonDB Per Outer Row", describe_quals(st->quals), es);
		return;
	}
	what = st->plan.empty ? "Scan" : st->plan.kind == JDB_SCAN_INDEX ? "Index" :
		st->plan.kind == JDB_SCAN_FULL ? "Scan" : st->plan.key_points ? "Keys" : "Key Ranges";
	ExplainPropertyText(psprintf("JsonDB %s", what), jdb_fdw_show_scan(&st->plan), es);
	if (es->verbose && st->plan.filter)
		ExplainPropertyText("JsonDB Filter", st->plan.filter, es);
}

/* ------------------------------------------------------------- ANALYZE */

static int
sample_rows(Relation rel, int elevel, HeapTuple *rows, int targrows, double *totalrows,
			double *totaldeadrows)
{
	const JdbFdwTable *t = jdb_fdw_table(RelationGetRelid(rel));
	JdbStore   *s = jdb_fdw_store(t);
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *values = palloc0(desc->natts * sizeof(Datum));
	bool	   *nulls = palloc(desc->natts * sizeof(bool));
	StringInfoData pre;
	JdbScan    *sc;
	lsm_record	rec;
	ReservoirStateData rs;
	double		seen = 0,
				skip = -1;
	int			n = 0;
	MemoryContext row_cxt = AllocSetContextCreate(CurrentMemoryContext, "jsondb analyze row",
												  ALLOCSET_DEFAULT_SIZES);

	reservoir_init_selection_state(&rs, targrows);
	initStringInfo(&pre);
	jdb_sub_prefix(s, 'd', &pre);
	sc = jdb_scan_open((uint8 *) pre.data, pre.len, NULL, 0, false, NULL, 0, false, false);
	while (jdb_scan_next(sc, &rec))
	{
		int			slot = -1;
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		/* reservoir sampling (Vitter's Algorithm Z, as ANALYZE does) */
		if (n < targrows)
			slot = n++;
		else
		{
			if (skip < 0)
				skip = reservoir_get_next_S(&rs, seen, targrows);
			if (skip <= 0)
			{
				slot = (int) (targrows * sampler_random_fract(&rs.randstate));
				heap_freetuple(rows[slot]);
			}
			skip -= 1;
		}
		seen++;
		if (slot < 0)
			continue;
		old = MemoryContextSwitchTo(row_cxt);
		memset(nulls, true, desc->natts * sizeof(bool));
		values[t->doc_attno - 1] = JsonbPGetDatum(jdb_doc_decode(rec.value, rec.value_len, NULL));
		nulls[t->doc_attno - 1] = false;
		if (t->key_attno)
		{
			values[t->key_attno - 1] = JsonbPGetDatum(jdb_key_to_jsonb(rec.key + pre.len,
																	   rec.key_len - pre.len));
			nulls[t->key_attno - 1] = false;
		}
		MemoryContextSwitchTo(old);
		rows[slot] = heap_form_tuple(desc, values, nulls);
		MemoryContextReset(row_cxt);
	}
	jdb_scan_close(sc);
	MemoryContextDelete(row_cxt);
	*totalrows = seen;
	*totaldeadrows = 0;
	ereport(elevel,
			(errmsg("\"%s\": store \"%s\" has %.0f documents, %d in the sample",
					RelationGetRelationName(rel), s->name, seen, n)));
	return n;
}

bool
jdb_fdw_analyze(Relation rel, AcquireSampleRowsFunc *func, BlockNumber *totalpages)
{
	*func = sample_rows;
	*totalpages = 1;
	return true;
}
