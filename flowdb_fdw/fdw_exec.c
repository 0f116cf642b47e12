/*
 * fdw_exec.c — executor callbacks of the flowdb foreign data wrapper.
 *
 * A scan evaluates its pushed condition values when it starts (and again on
 * rescan), turns them into bounds (fdw_pushdown.c) and reads:
 *   - a list of keys: one engine scan per key, in key order (reversed for a
 *     descending scan); a single key with ts = v is one engine get, and a
 *     single key read newest-first for one row is one get_latest — both
 *     only when the transaction has no own writes on that key;
 *   - otherwise one engine scan with prefix, key bounds and ts bounds.
 * A count pushdown (scan relid 0, fdw_plan.c) reads the same way but only
 * counts the records, then returns one row holding the count.
 * Every engine read goes through cursor.c, which merges the transaction's
 * own writes, and owns its iterator through a memory context that is reset
 * on rescan, at the end of the scan and on error.
 *
 * Writes go to the transaction's buffer (xact.c): atomic with the Postgres
 * transaction, savepoints included.  Writing an existing (key, ts) replaces
 * it; UPDATE that changes key or ts deletes the old row.
 */
#include "fdw.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "commands/vacuum.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/sampling.h"

typedef struct FdwScanState
{
	FdwTable   *t;
	List	   *kinds;			/* FdwCondKind per value */
	List	   *values;			/* ExprState per value */
	List	   *value_exprs;	/* the Exprs (types, EXPLAIN) */
	ExprState  *limit_count,
			   *limit_offset;
	Expr	   *limit_count_expr;
	int			order;			/* 0, 1, -1 */
	bool	   *needed;			/* per attribute; NULL = all */
	bool		direct;
	bool		like_recheck;	/* FDW_PRIV_LIKE_RECHECK */
	bool		pushed_count;	/* FDW_PRIV_PUSHED_COUNT: return one row, the count */
	ExprState  *saved_qual;		/* the scan's local quals */

	MemoryContext scan_cxt;		/* bounds and cursors; reset on rescan */
	bool		started;
	FdwBounds	b;
	uint64		limit;			/* 0 = none */
	uint64		returned;
	int			next_key;		/* keys mode: next index in scan order */
	bool		range_done;		/* range mode: the one scan was opened */
	FlowdbCursor *cursor;
	bool		have_pending;	/* a get / get_latest result to return */
	lsm_record	pending;
	lsm_value	value;			/* buffer for engine gets */
	/* count pushdown */
	List	   *rechecks;		/* LIKE patterns (text *) each key must match */
	text	   *key_buf;		/* a record's user key as text, for rechecks */
	bool		count_done;		/* the row with the count was returned */

	/* EXPLAIN ANALYZE */
	uint64		records_scanned,
				blocks_read,
				blocks_skipped_ts,
				tables_skipped,
				tables_skipped_bloom,
				engine_gets,
				engine_scans;
	uint64		deleted;		/* direct range delete */
} FdwScanState;

/* --------------------------------------------------------- scan set-up */

static bool
reverse_scan(FdwScanState *s)
{
	return s->order < 0;
}

static void
collect_stats(FdwScanState *s)
{
	lsm_iter_stats st;

	if (s->cursor == NULL)
		return;
	flowdb_cursor_stats(s->cursor, &st);
	s->records_scanned += st.records_scanned;
	s->blocks_read += st.blocks_read;
	s->blocks_skipped_ts += st.blocks_skipped_ts;
	s->tables_skipped += st.tables_skipped;
	s->tables_skipped_bloom += st.tables_skipped_bloom;
}

static void
close_cursor(FdwScanState *s)
{
	if (s->cursor)
	{
		collect_stats(s);
		flowdb_cursor_close(s->cursor);
		s->cursor = NULL;
	}
}

static Datum
eval_value(ExprState *es, Expr *e, ExprContext *econtext, bool *isnull)
{
	Datum		v = ExecEvalExprSwitchContext(es, econtext, isnull);
	int16		typlen;
	bool		byval;

	if (*isnull)
		return (Datum) 0;
	get_typlenbyval(exprType((Node *) e), &typlen, &byval);
	return datumCopy(v, byval, typlen);
}

/* A LIKE pattern the engine scan enforces completely (prefix + '%'s). */
static bool
like_is_exact(Datum d, bool isnull)
{
	text	   *p;
	char	   *prefix;
	int			plen;
	bool		whole,
				eq;

	if (isnull)
		return true;			/* no row matches: the scan returns none */
	p = DatumGetTextPP(d);
	return fdw_like_prefix(VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p), &prefix, &plen, &whole, &eq) &&
		(whole || eq);
}

/* Evaluate the pushed values into bounds (in scan_cxt).  If the only local
 * quals are LIKEs whose run-time patterns the scan enforces exactly, skip
 * them for this scan.  A count pushdown has no local quals: a LIKE pattern
 * the bounds do not enforce exactly goes to s->rechecks instead. */
static void
start_scan(FdwScanState *s, PlanState *ps, ExprContext *econtext)
{
	MemoryContext old = MemoryContextSwitchTo(s->scan_cxt);
	ListCell   *k,
			   *v,
			   *e;
	bool		drop_qual = s->like_recheck;

	fdw_bounds_init(&s->b);
	forthree(k, s->kinds, v, s->values, e, s->value_exprs)
	{
		bool		isnull;
		Datum		d = eval_value(lfirst(v), lfirst(e), econtext, &isnull);

		if ((FdwCondKind) lfirst_int(k) == FDW_KEY_LIKE && !like_is_exact(d, isnull))
		{
			drop_qual = false;
			if (s->pushed_count)
				s->rechecks = lappend(s->rechecks, DatumGetTextPP(d));
		}

		fdw_bounds_apply(&s->b, (FdwCondKind) lfirst_int(k), d, isnull,
						 exprType((Node *) lfirst(e)));
	}
	fdw_bounds_finish(&s->b);

	s->limit = 0;
	if (s->limit_count)
	{
		bool		cnull,
					onull;
		Datum		c = ExecEvalExprSwitchContext(s->limit_count, econtext, &cnull);
		Datum		o = ExecEvalExprSwitchContext(s->limit_offset, econtext, &onull);
		int64		count = cnull ? -1 : DatumGetInt64(c);
		int64		offset = onull ? 0 : DatumGetInt64(o);

		/* negative values: the Limit node above reports the error */
		if (count >= 0 && offset >= 0 && count <= PG_INT64_MAX - offset)
			s->limit = (uint64) (count + offset);
		if (count == 0)
			s->b.empty = true;
	}
	if (ps)
		ps->qual = drop_qual ? NULL : s->saved_qual;
	s->returned = 0;
	s->next_key = 0;
	s->range_done = false;
	s->have_pending = false;
	s->started = true;
	MemoryContextSwitchTo(old);
}

/* Engine key of a user key or bound, NULL if no stored key can equal it
 * (longer than a key may be). */
static uint8 *
encode_user(const FdwTable *t, const char *k, int len, int *out_len)
{
	if (len > (int) LSM_MAX_KEY_SIZE - t->ks.prefix_len)
		return NULL;
	return flowdb_encode_bound(&t->ks, k, len, out_len);
}

/* Bounds of the whole range scan; false if nothing can match. */
static bool
range_bounds(FdwScanState *s, FlowdbScanBounds *sb)
{
	const FdwTable *t = s->t;
	FdwBounds  *b = &s->b;
	int			max_user = (int) LSM_MAX_KEY_SIZE - t->ks.prefix_len;

	memset(sb, 0, sizeof(*sb));
	sb->ts_min = b->ts_min;
	sb->ts_max = b->ts_max;
	sb->reverse = reverse_scan(s);
	sb->limit = s->limit;
	if (b->prefix)
	{
		int			len;

		if (b->prefix_len > max_user)
			return false;		/* no key is that long */
		sb->prefix = flowdb_encode_bound(&t->ks, b->prefix, b->prefix_len, &len);
		sb->prefix_len = len;
	}
	else
	{
		sb->prefix = t->ks.prefix;
		sb->prefix_len = t->ks.prefix_len;
	}
	if (b->lo)
	{
		int			len = Min(b->lo_len, max_user);
		bool		incl = b->lo_incl && len == b->lo_len;
		uint8	   *enc;
		int			enc_len;

		/* a bound longer than any key: its truncation, exclusive, is exact */
		enc = flowdb_encode_bound(&t->ks, b->lo, len, &enc_len);
		if (!incl)
		{
			enc = repalloc(enc, enc_len + 1);
			enc[enc_len++] = 0;	/* the smallest key after it */
		}
		sb->lo = enc;
		sb->lo_len = enc_len;
	}
	if (b->hi)
	{
		int			len = Min(b->hi_len, max_user);
		int			enc_len;

		sb->hi = flowdb_encode_bound(&t->ks, b->hi, len, &enc_len);
		sb->hi_len = enc_len;
		sb->hi_inclusive = b->hi_incl || len < b->hi_len;
	}
	return true;
}

static void
key_bounds(FlowdbScanBounds *sb, const uint8 *enc, int len, FdwScanState *s, uint64 limit)
{
	memset(sb, 0, sizeof(*sb));
	sb->prefix = enc;
	sb->prefix_len = len;
	sb->lo = enc;
	sb->lo_len = len;
	sb->hi = enc;
	sb->hi_len = len;
	sb->hi_inclusive = true;
	sb->ts_min = s->b.ts_min;
	sb->ts_max = s->b.ts_max;
	sb->reverse = reverse_scan(s);
	sb->limit = limit;
}

/* Point read of one key without own writes: get / get_latest. */
static bool
try_engine_get(FdwScanState *s, const uint8 *enc, int len)
{
	lsm_read_options ro;
	lsm_status	st;
	bool		latest;

	if (s->b.ts_min == s->b.ts_max)
		latest = false;
	else if (reverse_scan(s) && s->limit == 1 && s->b.ts_max == PG_INT64_MAX &&
			 s->b.ts_min == PG_INT64_MIN)
		latest = true;
	else
		return false;
	if (flowdb_xact_touches(enc, len))
		return false;
	lsm_read_options_init(&ro);
	if (latest)
		st = lsm_get_latest(flowdb_db(), &ro, enc, len, &s->value);
	else
		st = lsm_get(flowdb_db(), &ro, enc, len, s->b.ts_min, &s->value);
	s->engine_gets++;
	if (st != LSM_OK && st != LSM_NOT_FOUND)
		flowdb_raise(st, latest ? "get_latest" : "get");
	if (st == LSM_OK)
	{
		s->pending.key = enc;
		s->pending.key_len = len;
		s->pending.ts = latest ? s->value.ts : s->b.ts_min;
		s->pending.expire_at = s->value.expire_at;
		s->pending.value = s->value.data;
		s->pending.value_len = s->value.len;
		s->have_pending = true;
	}
	return true;
}

/* Open the next engine read; false when there is none left. */
static bool
open_next(FdwScanState *s)
{
	FlowdbScanBounds sb;
	MemoryContext old;
	bool		ok = true;

	if (s->b.empty)
		return false;
	old = MemoryContextSwitchTo(s->scan_cxt);
	if (s->b.has_keys)
	{
		text	   *k;
		uint8	   *enc;
		int			len;

		do
		{
			if (s->next_key >= s->b.nkeys)
			{
				ok = false;
				break;
			}
			k = s->b.keys[reverse_scan(s) ? s->b.nkeys - 1 - s->next_key : s->next_key];
			s->next_key++;
			enc = encode_user(s->t, VARDATA_ANY(k), VARSIZE_ANY_EXHDR(k), &len);
		} while (enc == NULL);
		if (ok && !try_engine_get(s, enc, len))
		{
			key_bounds(&sb, enc, len, s, s->limit ? s->limit - s->returned : 0);
			s->cursor = flowdb_cursor_open(s->scan_cxt, &sb);
			s->engine_scans++;
		}
	}
	else if (s->range_done || !range_bounds(s, &sb))
		ok = false;
	else
	{
		s->range_done = true;
		s->cursor = flowdb_cursor_open(s->scan_cxt, &sb);
		s->engine_scans++;
	}
	MemoryContextSwitchTo(old);
	return ok;
}

/* The next record of the scan, or false at its end. */
static bool
next_record(FdwScanState *s, lsm_record *rec)
{
	for (;;)
	{
		if (s->limit && s->returned >= s->limit)
			return false;
		if (s->have_pending)
		{
			s->have_pending = false;
			*rec = s->pending;
			s->returned++;
			return true;
		}
		if (s->cursor)
		{
			if (flowdb_cursor_next(s->cursor, rec))
			{
				s->returned++;
				return true;
			}
			close_cursor(s);
			continue;
		}
		if (!open_next(s))
			return false;
	}
}

/* ------------------------------------------------------------ callbacks */

static void
init_scan_state(FdwScanState *s, ForeignScanState *node, ForeignScan *fs)
{
	List	   *priv = fs->fdw_private;
	List	   *needed = list_nth(priv, FDW_PRIV_NEEDED);
	int			nvalues;
	ListCell   *lc;
	int			i = 0;

	/* scan relid 0 (count pushdown) has no relation open: the plan names it */
	s->t = fdw_table_get((Oid) intVal(list_nth(priv, FDW_PRIV_RELID)));
	s->pushed_count = intVal(list_nth(priv, FDW_PRIV_PUSHED_COUNT)) != 0;
	s->kinds = list_nth(priv, FDW_PRIV_KINDS);
	s->order = intVal(list_nth(priv, FDW_PRIV_ORDER));
	s->direct = intVal(list_nth(priv, FDW_PRIV_DIRECT)) != 0;
	s->like_recheck = intVal(list_nth(priv, FDW_PRIV_LIKE_RECHECK)) != 0;
	s->saved_qual = node->ss.ps.qual;
	nvalues = list_length(s->kinds);
	foreach(lc, fs->fdw_exprs)
	{
		Expr	   *e = lfirst(lc);
		ExprState  *es = ExecInitExpr(e, (PlanState *) node);

		if (i < nvalues)
		{
			s->values = lappend(s->values, es);
			s->value_exprs = lappend(s->value_exprs, e);
		}
		else if (i == nvalues)
		{
			s->limit_count = es;
			s->limit_count_expr = e;
		}
		else
			s->limit_offset = es;
		i++;
	}
	if (!(list_length(needed) == 1 && linitial_int(needed) == 0))
	{
		s->needed = palloc0(sizeof(bool) * Max(s->t->natts, 1));
		foreach(lc, needed)
			s->needed[lfirst_int(lc) - 1] = true;
	}
	s->scan_cxt = AllocSetContextCreate(node->ss.ps.state->es_query_cxt, "flowdb scan",
										ALLOCSET_DEFAULT_SIZES);
}

static void
fdw_begin_scan(ForeignScanState *node, int eflags)
{
	FdwScanState *s = palloc0(sizeof(FdwScanState));

	node->fdw_state = s;
	init_scan_state(s, node, (ForeignScan *) node->ss.ps.plan);
}

/* Does the record's key match every LIKE pattern to recheck?  Matched under
 * "C": for the deterministic collations a LIKE is pushed under, LIKE's
 * result does not depend on the collation. */
static bool
rechecks_pass(FdwScanState *s, const lsm_record *rec)
{
	int			len = (int) rec->key_len - s->t->ks.prefix_len;
	ListCell   *lc;

	if (s->key_buf == NULL)
		s->key_buf = MemoryContextAlloc(s->scan_cxt, VARHDRSZ + LSM_MAX_KEY_SIZE);
	SET_VARSIZE(s->key_buf, VARHDRSZ + len);
	memcpy(VARDATA(s->key_buf), rec->key + s->t->ks.prefix_len, len);
	foreach(lc, s->rechecks)
	{
		if (!DatumGetBool(DirectFunctionCall2Coll(textlike, C_COLLATION_OID,
												  PointerGetDatum(s->key_buf),
												  PointerGetDatum(lfirst(lc)))))
			return false;
	}
	return true;
}

/* Count pushdown: the records of the scan, counted without decoding. */
static TupleTableSlot *
iterate_count(ForeignScanState *node, FdwScanState *s)
{
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	lsm_record	rec;
	int64		n = 0;
	uint32		seen = 0;

	ExecClearTuple(slot);
	if (s->count_done)
		return slot;
	if (!s->started)
		start_scan(s, &node->ss.ps, node->ss.ps.ps_ExprContext);
	while (next_record(s, &rec))
	{
		if ((++seen & 4095) == 0)
			CHECK_FOR_INTERRUPTS();
		if (s->rechecks == NIL || rechecks_pass(s, &rec))
			n++;
	}
	for (int i = 0; i < slot->tts_tupleDescriptor->natts; i++)
	{
		slot->tts_values[i] = Int64GetDatum(n);
		slot->tts_isnull[i] = false;
	}
	s->count_done = true;
	return ExecStoreVirtualTuple(slot);
}

static TupleTableSlot *
fdw_iterate(ForeignScanState *node)
{
	FdwScanState *s = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	lsm_record	rec;

	if (s->pushed_count)
		return iterate_count(node, s);
	if (!s->started)
		start_scan(s, &node->ss.ps, node->ss.ps.ps_ExprContext);
	ExecClearTuple(slot);
	CHECK_FOR_INTERRUPTS();
	if (!next_record(s, &rec))
		return slot;
	fdw_decode_record(s->t, &rec, s->needed, slot->tts_values, slot->tts_isnull);
	return ExecStoreVirtualTuple(slot);
}

static void
reset_scan(FdwScanState *s)
{
	close_cursor(s);
	MemoryContextReset(s->scan_cxt);	/* closes any iterator left */
	s->started = false;
	s->have_pending = false;
	s->rechecks = NIL;
	s->key_buf = NULL;
	s->count_done = false;
}

static void
fdw_rescan(ForeignScanState *node)
{
	reset_scan(node->fdw_state);
}

static void
fdw_end_scan(ForeignScanState *node)
{
	FdwScanState *s = node->fdw_state;

	if (s)
	{
		reset_scan(s);
		lsm_value_free(&s->value);
	}
}

/* --------------------------------------------------------------- EXPLAIN */

static void
explain_state(FdwScanState *s, ForeignScanState *node, ExplainState *es)
{
	List	   *ctx = set_deparse_context_plan(es->deparse_cxt, node->ss.ps.plan, NIL);
	StringInfoData keys,
				ts,
				recheck;
	ListCell   *k,
			   *e;

	initStringInfo(&keys);
	initStringInfo(&ts);
	if (s->pushed_count)
		ExplainPropertyText("Foreign Table", get_rel_name(s->t->relid), es);
	ExplainPropertyText("Keyspace", s->t->ks.name, es);
	initStringInfo(&recheck);
	forboth(k, s->kinds, e, s->value_exprs)
	{
		FdwCondKind kind = lfirst_int(k);
		StringInfo	buf = kind >= FDW_TS_EQ ? &ts : &keys;
		char	   *v = deparse_expression(lfirst(e), ctx, false, false);
		Const	   *c = lfirst(e);

		if (buf->len)
			appendStringInfoString(buf, ", ");
		appendStringInfo(buf, "%s %s", fdw_cond_name(kind), v);
		/* a count pushdown matches such a LIKE itself, on each key */
		if (s->pushed_count && kind == FDW_KEY_LIKE &&
			!(IsA(c, Const) && like_is_exact(c->constvalue, c->constisnull)))
			appendStringInfo(&recheck, "%skey LIKE %s%s", recheck.len ? ", " : "", v,
							 IsA(c, Const) ? "" : " unless a prefix + '%'");
	}
	if (keys.len)
		ExplainPropertyText("Key Bounds", keys.data, es);
	if (recheck.len)
		ExplainPropertyText("Key Recheck", recheck.data, es);
	if (ts.len)
		ExplainPropertyText("Ts Bounds", ts.data, es);
	if (s->order != 0)
		ExplainPropertyText("Engine Order", s->order > 0 ? "key, ts" : "key DESC, ts DESC", es);
	if (s->limit_count)
	{
		char	   *c = deparse_expression((Node *) s->limit_count_expr, ctx, false, false);
		ForeignScan *fs = (ForeignScan *) node->ss.ps.plan;
		Node	   *off = llast(fs->fdw_exprs);

		if (IsA(off, Const) && !((Const *) off)->constisnull &&
			DatumGetInt64(((Const *) off)->constvalue) == 0)
			ExplainPropertyText("Engine Limit", c, es);
		else
			ExplainPropertyText("Engine Limit",
								psprintf("%s + offset %s", c,
										 deparse_expression(off, ctx, false, false)), es);
	}
	if (s->direct)
		ExplainPropertyText("Engine Delete", "one range delete", es);
	if (s->pushed_count)
	{
		ForeignScan *fs = (ForeignScan *) node->ss.ps.plan;
		StringInfoData aggs;

		initStringInfo(&aggs);
		foreach(k, fs->fdw_scan_tlist)
		{
			if (aggs.len)
				appendStringInfoString(&aggs, ", ");
			appendStringInfoString(&aggs, deparse_expression((Node *) lfirst_node(TargetEntry, k)->expr,
															 ctx, false, false));
		}
		ExplainPropertyText("Aggregate Pushed Down", aggs.data, es);
	}
	if (es->analyze)
	{
		lsm_iter_stats cur;

		flowdb_cursor_stats(s->cursor, &cur);	/* a scan stopped by LIMIT */
		ExplainPropertyInteger("Engine Scans", NULL, s->engine_scans, es);
		ExplainPropertyInteger("Engine Gets", NULL, s->engine_gets, es);
		ExplainPropertyInteger("Records Scanned", NULL,
							   s->records_scanned + cur.records_scanned, es);
		ExplainPropertyInteger("Blocks Read", NULL, s->blocks_read + cur.blocks_read, es);
		ExplainPropertyInteger("Blocks Skipped by Time", NULL,
							   s->blocks_skipped_ts + cur.blocks_skipped_ts, es);
		ExplainPropertyInteger("Tables Skipped", NULL, s->tables_skipped + cur.tables_skipped, es);
		ExplainPropertyInteger("Tables Skipped by Bloom", NULL,
							   s->tables_skipped_bloom + cur.tables_skipped_bloom, es);
	}
}

static void
fdw_explain_scan(ForeignScanState *node, ExplainState *es)
{
	FdwScanState *s = node->fdw_state;

	if (s)
		explain_state(s, node, es);
}

/* ---------------------------------------------------------------- writes */

typedef struct FdwModifyState
{
	FdwTable   *t;
	AttrNumber	key_junk;		/* UPDATE / DELETE: old key and ts in planSlot */
	AttrNumber	ts_junk;
	MemoryContext row_cxt;		/* reset per row */
	FdwScanState fetch;			/* DELETE ... RETURNING: re-reads the row */
} FdwModifyState;

static FdwModifyState *
make_modify_state(EState *estate, ResultRelInfo *rinfo)
{
	FdwModifyState *m = palloc0(sizeof(FdwModifyState));

	m->t = fdw_table_get(RelationGetRelid(rinfo->ri_RelationDesc));
	/* Default sizes: a row's value buffer (1 KiB to start) fits the kept
	 * first block, so the per-row reset frees nothing to malloc. */
	m->row_cxt = AllocSetContextCreate(estate->es_query_cxt, "flowdb modify",
									   ALLOCSET_DEFAULT_SIZES);
	rinfo->ri_FdwState = m;
	return m;
}

static void
fdw_begin_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo, List *fdw_private,
				 int subplan_index, int eflags)
{
	FdwModifyState *m;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	m = make_modify_state(mtstate->ps.state, rinfo);
	if (mtstate->operation == CMD_UPDATE || mtstate->operation == CMD_DELETE)
	{
		Plan	   *sub = outerPlanState(mtstate)->plan;

		m->key_junk = ExecFindJunkAttributeInTlist(sub->targetlist, "flowdb_key");
		m->ts_junk = ExecFindJunkAttributeInTlist(sub->targetlist, "flowdb_ts");
		if (!AttributeNumberIsValid(m->key_junk) || !AttributeNumberIsValid(m->ts_junk))
			elog(ERROR, "flowdb: row identity columns missing from the plan");
	}
}

static void
fdw_begin_insert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	make_modify_state(mtstate->ps.state, rinfo);
}

static text *
key_of(const FdwTable *t, Datum d, bool isnull)
{
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("flowdb: the key of a row must not be NULL")));
	return DatumGetTextPP(d);
}

static int64
ts_of(Datum d, bool isnull)
{
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("flowdb: the ts of a row must not be NULL")));
	return DatumGetInt64(d);
}

static void
write_row(FdwModifyState *m, TupleTableSlot *slot)
{
	const FdwTable *t = m->t;
	text	   *key;
	uint8	   *enc,
			   *val;
	int			enc_len,
				val_len;
	int64		ts,
				expire_at;

	slot_getallattrs(slot);
	key = key_of(t, slot->tts_values[t->key_attno - 1], slot->tts_isnull[t->key_attno - 1]);
	ts = ts_of(slot->tts_values[t->ts_attno - 1], slot->tts_isnull[t->ts_attno - 1]);
	enc = flowdb_encode_key(&t->ks, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), &enc_len);
	if (t->expire_attno && !slot->tts_isnull[t->expire_attno - 1])
		expire_at = fdw_expire_from_datum(t, slot->tts_values[t->expire_attno - 1]);
	else if (t->ttl_secs >= 0)
		expire_at = flowdb_expire_at(false, t->ttl_secs);
	else
		expire_at = flowdb_expire_at(true, 0);
	val = fdw_encode_row(t, slot->tts_values, slot->tts_isnull, &val_len);
	if ((size_t) val_len > LSM_MAX_VALUE_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("flowdb: row value is %d bytes, the limit is %u bytes",
						val_len, LSM_MAX_VALUE_SIZE)));
	flowdb_xact_put(enc, enc_len, ts, expire_at, val, val_len);
}

static TupleTableSlot *
fdw_exec_insert(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
				TupleTableSlot *planSlot)
{
	FdwModifyState *m = rinfo->ri_FdwState;
	MemoryContext old = MemoryContextSwitchTo(m->row_cxt);

	write_row(m, slot);
	MemoryContextSwitchTo(old);
	MemoryContextReset(m->row_cxt);
	return slot;
}

/* The old row's engine key and ts from the junk columns. */
static uint8 *
old_identity(FdwModifyState *m, TupleTableSlot *planSlot, int *len, int64 *ts)
{
	bool		isnull;
	Datum		k = ExecGetJunkAttribute(planSlot, m->key_junk, &isnull);
	text	   *key = key_of(m->t, k, isnull);

	*ts = ts_of(ExecGetJunkAttribute(planSlot, m->ts_junk, &isnull), isnull);
	return flowdb_encode_key(&m->t->ks, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), len);
}

static TupleTableSlot *
fdw_exec_update(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
				TupleTableSlot *planSlot)
{
	FdwModifyState *m = rinfo->ri_FdwState;
	const FdwTable *t = m->t;
	MemoryContext old = MemoryContextSwitchTo(m->row_cxt);
	int			old_len,
				new_len;
	int64		old_ts;
	uint8	   *old_key = old_identity(m, planSlot, &old_len, &old_ts);
	text	   *new_key;
	uint8	   *new_enc;

	slot_getallattrs(slot);
	new_key = key_of(t, slot->tts_values[t->key_attno - 1], slot->tts_isnull[t->key_attno - 1]);
	new_enc = flowdb_encode_key(&t->ks, VARDATA_ANY(new_key), VARSIZE_ANY_EXHDR(new_key),
								&new_len);
	if (flowdb_key_cmp(old_key, old_len, new_enc, new_len) != 0 ||
		old_ts != ts_of(slot->tts_values[t->ts_attno - 1], slot->tts_isnull[t->ts_attno - 1]))
		flowdb_xact_delete(old_key, old_len, old_ts);
	write_row(m, slot);
	MemoryContextSwitchTo(old);
	MemoryContextReset(m->row_cxt);
	return slot;
}

/* Read (key, ts) through the transaction into slot; false if absent. */
static bool
fetch_row(FdwModifyState *m, const uint8 *enc, int len, int64 ts, TupleTableSlot *slot)
{
	FdwScanState *s = &m->fetch;
	FlowdbScanBounds sb;
	FlowdbCursor *c;
	lsm_record	rec;
	bool		found;

	fdw_bounds_init(&s->b);
	s->b.ts_min = s->b.ts_max = ts;
	s->order = 1;
	key_bounds(&sb, enc, len, s, 1);
	c = flowdb_cursor_open(m->row_cxt, &sb);
	found = flowdb_cursor_next(c, &rec);
	ExecClearTuple(slot);
	if (found)
	{
		fdw_decode_record(m->t, &rec, NULL, slot->tts_values, slot->tts_isnull);
		ExecStoreVirtualTuple(slot);
		ExecMaterializeSlot(slot);	/* row_cxt is reset after this row */
	}
	flowdb_cursor_close(c);
	return found;
}

static TupleTableSlot *
fdw_exec_delete(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
				TupleTableSlot *planSlot)
{
	FdwModifyState *m = rinfo->ri_FdwState;
	MemoryContext old = MemoryContextSwitchTo(m->row_cxt);
	int			len;
	int64		ts;
	uint8	   *enc = old_identity(m, planSlot, &len, &ts);
	bool		found = true;

	if (rinfo->ri_projectReturning)
		found = fetch_row(m, enc, len, ts, slot);
	if (found)
		flowdb_xact_delete(enc, len, ts);
	MemoryContextSwitchTo(old);
	MemoryContextReset(m->row_cxt);
	return found ? slot : NULL;
}

static void
fdw_end_modify(EState *estate, ResultRelInfo *rinfo)
{
}

static int
fdw_updatable(Relation rel)
{
	return (1 << CMD_INSERT) | (1 << CMD_UPDATE) | (1 << CMD_DELETE);
}

/* ------------------------------------------------- direct range delete */

static void
fdw_begin_direct(ForeignScanState *node, int eflags)
{
	FdwScanState *s = palloc0(sizeof(FdwScanState));

	node->fdw_state = s;
	init_scan_state(s, node, (ForeignScan *) node->ss.ps.plan);
}

/* [start, end) in engine keys covering exactly the bounds; false if empty */
static bool
delete_range_of(FdwScanState *s, uint8 **start, int *start_len, uint8 **end, int *end_len)
{
	FlowdbScanBounds sb;
	uint8	   *succ;
	int			succ_len;

	if (s->b.empty)
		return false;
	if (s->b.has_keys)
	{
		text	   *k = s->b.keys[0];

		Assert(s->b.nkeys == 1);
		*start = encode_user(s->t, VARDATA_ANY(k), VARSIZE_ANY_EXHDR(k), start_len);
		if (*start == NULL)
			return false;
		*end = palloc(*start_len + 1);
		memcpy(*end, *start, *start_len);
		(*end)[*start_len] = 0;
		*end_len = *start_len + 1;
		return true;
	}
	if (!range_bounds(s, &sb))
		return false;
	*start = (uint8 *) sb.prefix;
	*start_len = sb.prefix_len;
	if (sb.lo && flowdb_key_cmp(sb.lo, sb.lo_len, *start, *start_len) > 0)
	{
		*start = (uint8 *) sb.lo;
		*start_len = sb.lo_len;
	}
	if (!flowdb_prefix_successor(sb.prefix, sb.prefix_len, end, end_len))
		elog(ERROR, "flowdb: keyspace prefix has no successor");
	if (sb.hi)
	{
		succ = (uint8 *) sb.hi;
		succ_len = sb.hi_len;
		if (sb.hi_inclusive)
		{
			succ = palloc(sb.hi_len + 1);
			memcpy(succ, sb.hi, sb.hi_len);
			succ[sb.hi_len] = 0;
			succ_len = sb.hi_len + 1;
		}
		if (flowdb_key_cmp(succ, succ_len, *end, *end_len) < 0)
		{
			*end = succ;
			*end_len = succ_len;
		}
	}
	return flowdb_key_cmp(*start, *start_len, *end, *end_len) < 0;
}

static TupleTableSlot *
fdw_iterate_direct(ForeignScanState *node)
{
	FdwScanState *s = node->fdw_state;
	EState	   *estate = node->ss.ps.state;
	lsm_record	rec;
	uint8	   *start,
			   *end;
	int			start_len,
				end_len;
	MemoryContext old;

	if (!s->started)
	{
		start_scan(s, &node->ss.ps, node->ss.ps.ps_ExprContext);
		/* count what goes, so DELETE reports its row count */
		while (next_record(s, &rec))
		{
			CHECK_FOR_INTERRUPTS();
			s->deleted++;
		}
		close_cursor(s);
		old = MemoryContextSwitchTo(s->scan_cxt);
		if (s->deleted > 0 && delete_range_of(s, &start, &start_len, &end, &end_len))
			flowdb_xact_delete_range(start, start_len, end, end_len);
		MemoryContextSwitchTo(old);
		estate->es_processed += s->deleted;
	}
	return ExecClearTuple(node->ss.ss_ScanTupleSlot);
}

static void
fdw_end_direct(ForeignScanState *node)
{
	fdw_end_scan(node);
}

static void
fdw_explain_direct(ForeignScanState *node, ExplainState *es)
{
	fdw_explain_scan(node, es);
}

/* --------------------------------------------------------------- ANALYZE */

static int
sample_rows(Relation rel, int elevel, HeapTuple *rows, int targrows, double *totalrows,
			double *totaldeadrows)
{
	FdwTable   *t = fdw_table_get(RelationGetRelid(rel));
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext scan_cxt = AllocSetContextCreate(CurrentMemoryContext, "flowdb analyze",
												   ALLOCSET_DEFAULT_SIZES);
	MemoryContext row_cxt = AllocSetContextCreate(CurrentMemoryContext, "flowdb analyze row",
												  ALLOCSET_DEFAULT_SIZES);
	FlowdbScanBounds sb;
	FlowdbCursor *c;
	lsm_record	rec;
	Datum	   *values = palloc(sizeof(Datum) * Max(desc->natts, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(desc->natts, 1));
	ReservoirStateData rstate;
	double		seen = 0,
				skip = -1;
	int			n = 0;

	memset(&sb, 0, sizeof(sb));
	sb.prefix = t->ks.prefix;
	sb.prefix_len = t->ks.prefix_len;
	sb.ts_min = PG_INT64_MIN;
	sb.ts_max = PG_INT64_MAX;
	reservoir_init_selection_state(&rstate, targrows);
	c = flowdb_cursor_open(scan_cxt, &sb);
	while (flowdb_cursor_next(c, &rec))
	{
		int			slot = -1;
		bool		replace = false;

		vacuum_delay_point();
		if (n < targrows)
			slot = n++;
		else
		{
			if (skip < 0)
				skip = reservoir_get_next_S(&rstate, seen, targrows);
			if (skip <= 0)
			{
				slot = (int) (targrows * sampler_random_fract(&rstate.randstate));
				replace = true;
			}
			skip -= 1;
		}
		seen += 1;
		if (slot < 0)
			continue;
		MemoryContextSwitchTo(row_cxt);
		fdw_decode_record(t, &rec, NULL, values, nulls);
		MemoryContextSwitchTo(outer);
		if (replace)
			heap_freetuple(rows[slot]);
		rows[slot] = heap_form_tuple(desc, values, nulls);
		MemoryContextReset(row_cxt);
	}
	flowdb_cursor_close(c);
	MemoryContextDelete(scan_cxt);
	MemoryContextDelete(row_cxt);
	*totalrows = seen;
	*totaldeadrows = 0;
	ereport(elevel,
			(errmsg("\"%s\": keyspace \"%s\" holds %.0f rows; %d rows in sample",
					RelationGetRelationName(rel), t->ks.name, seen, n)));
	return n;
}

static bool
fdw_analyze(Relation rel, AcquireSampleRowsFunc *func, BlockNumber *totalpages)
{
	*func = sample_rows;
	*totalpages = 1;
	return true;
}

void
fdw_exec_routines(FdwRoutine *r)
{
	r->BeginForeignScan = fdw_begin_scan;
	r->IterateForeignScan = fdw_iterate;
	r->ReScanForeignScan = fdw_rescan;
	r->EndForeignScan = fdw_end_scan;
	r->ExplainForeignScan = fdw_explain_scan;
	r->BeginForeignModify = fdw_begin_modify;
	r->ExecForeignInsert = fdw_exec_insert;
	r->ExecForeignUpdate = fdw_exec_update;
	r->ExecForeignDelete = fdw_exec_delete;
	r->EndForeignModify = fdw_end_modify;
	r->BeginForeignInsert = fdw_begin_insert;
	r->EndForeignInsert = fdw_end_modify;
	r->IsForeignRelUpdatable = fdw_updatable;
	r->BeginDirectModify = fdw_begin_direct;
	r->IterateDirectModify = fdw_iterate_direct;
	r->EndDirectModify = fdw_end_direct;
	r->ExplainDirectModify = fdw_explain_direct;
	r->AnalyzeForeignTable = fdw_analyze;
}
