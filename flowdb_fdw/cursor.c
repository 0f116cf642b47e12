/*
 * cursor.c — a scan over the engine merged with the transaction's own writes.
 *
 * At open, the transaction's buffer is reduced to a "view": for every
 * (key, ts) its latest point write (put or delete) unless a later range
 * delete covers it, restricted to the scan bounds and sorted; plus the list of
 * range deletes, which hide engine records.  next() merges the view with the
 * engine iterator in scan order; on equal (key, ts) the view wins (an own
 * put replaces, an own delete hides).  The view is a snapshot of the buffer
 * at open, like a statement's snapshot; records are returned lazily and the
 * engine iterator keeps memory bounded.
 */
#include "flowdb.h"

#include "utils/memutils.h"

struct FlowdbCursor
{
	FlowdbIterRef *ref;
	bool		reverse;
	uint64		limit;			/* 0 = none */
	uint64		returned;
	int64		now;

	FlowdbOp   *view;			/* sorted by (key, ts) ascending */
	int			nview;
	int			vpos;			/* next view index in scan order */
	FlowdbOp   *ranges;
	int			nranges;

	lsm_record	eng;			/* engine lookahead */
	bool		eng_valid;
	bool		eng_done;
};

static int
record_cmp(const uint8 *ak, size_t al, int64 ats, const uint8 *bk, size_t bl, int64 bts)
{
	int			c = flowdb_key_cmp(ak, al, bk, bl);

	if (c != 0)
		return c;
	return (ats > bts) - (ats < bts);
}

/* point ops: by (key, ts), the latest write first */
static int
op_cmp(const void *a, const void *b)
{
	const FlowdbOp *x = a,
			   *y = b;
	int			c = record_cmp(x->key, x->key_len, x->ts, y->key, y->key_len, y->ts);

	if (c != 0)
		return c;
	return (x->seq < y->seq) - (x->seq > y->seq);
}

static bool
in_bounds(const FlowdbScanBounds *b, const uint8 *key, int key_len, int64 ts)
{
	if (ts < b->ts_min || ts > b->ts_max)
		return false;
	if (key_len < b->prefix_len || memcmp(key, b->prefix, b->prefix_len) != 0)
		return false;
	if (b->lo && flowdb_key_cmp(key, key_len, b->lo, b->lo_len) < 0)
		return false;
	if (b->hi)
	{
		int			c = flowdb_key_cmp(key, key_len, b->hi, b->hi_len);

		if (c > 0 || (c == 0 && !b->hi_inclusive))
			return false;
	}
	return true;
}

static bool
hidden_by_later_range(const FlowdbOp *ranges, int nranges, const FlowdbOp *op)
{
	for (int i = 0; i < nranges; i++)
	{
		const FlowdbOp *r = &ranges[i];

		if (r->seq > op->seq &&
			flowdb_key_cmp(r->key, r->key_len, op->key, op->key_len) <= 0 &&
			flowdb_key_cmp(op->key, op->key_len, r->end, r->end_len) < 0)
			return true;
	}
	return false;
}

static void
build_view(FlowdbCursor *c, const FlowdbScanBounds *b)
{
	int			n;
	const FlowdbOp *ops = flowdb_xact_ops(&n);
	FlowdbOp   *points;
	int			npoints = 0;

	c->view = NULL;
	c->nview = 0;
	c->ranges = NULL;
	c->nranges = 0;
	if (n == 0)
		return;

	points = palloc(n * sizeof(FlowdbOp));
	c->ranges = palloc(n * sizeof(FlowdbOp));
	for (int i = 0; i < n; i++)
	{
		if (ops[i].kind == FLOWDB_OP_DELETE_RANGE)
			c->ranges[c->nranges++] = ops[i];
		else if (in_bounds(b, ops[i].key, ops[i].key_len, ops[i].ts))
			points[npoints++] = ops[i];
	}
	qsort(points, npoints, sizeof(FlowdbOp), op_cmp);

	c->view = palloc(Max(npoints, 1) * sizeof(FlowdbOp));
	for (int i = 0; i < npoints; i++)
	{
		FlowdbOp   *op = &points[i];

		if (c->nview > 0 &&
			record_cmp(c->view[c->nview - 1].key, c->view[c->nview - 1].key_len,
					   c->view[c->nview - 1].ts, op->key, op->key_len, op->ts) == 0)
			continue;			/* an older write of the same (key, ts) */
		if (op->kind == FLOWDB_OP_DELETE_RANGE)
			continue;
		c->view[c->nview] = *op;
		/* a put erased by a later range delete, or expired, acts as a delete */
		if (op->kind == FLOWDB_OP_PUT &&
			(hidden_by_later_range(c->ranges, c->nranges, op) ||
			 (op->expire_at != 0 && op->expire_at <= c->now)))
			c->view[c->nview].kind = FLOWDB_OP_DELETE;
		c->nview++;
	}
	pfree(points);
}

FlowdbCursor *
flowdb_cursor_open(MemoryContext mcxt, const FlowdbScanBounds *b)
{
	MemoryContext old = MemoryContextSwitchTo(mcxt);
	FlowdbCursor *c = palloc0(sizeof(FlowdbCursor));
	lsm_scan_spec spec;
	lsm_read_options ro;

	c->reverse = b->reverse;
	c->limit = b->limit;
	c->now = flowdb_now();
	build_view(c, b);
	c->vpos = c->reverse ? c->nview - 1 : 0;

	lsm_scan_spec_init(&spec);
	spec.prefix = b->prefix;
	spec.prefix_len = b->prefix_len;
	spec.key_lo = b->lo;
	spec.key_lo_len = b->lo ? b->lo_len : 0;
	spec.key_hi = b->hi;
	spec.key_hi_len = b->hi ? b->hi_len : 0;
	spec.key_hi_inclusive = b->hi_inclusive;
	spec.ts_min = b->ts_min;
	spec.ts_max = b->ts_max;
	spec.reverse = b->reverse;
	/* own writes may hide engine records: apply the limit after merging */
	spec.limit = (c->nview == 0 && c->nranges == 0) ? b->limit : 0;
	lsm_read_options_init(&ro);
	ro.snapshot = b->snapshot;

	c->ref = flowdb_iter_open(mcxt, &ro, &spec);
	MemoryContextSwitchTo(old);
	return c;
}

static bool
engine_record_hidden(FlowdbCursor *c, const lsm_record *r)
{
	for (int i = 0; i < c->nranges; i++)
	{
		const FlowdbOp *rg = &c->ranges[i];

		if (flowdb_key_cmp(rg->key, rg->key_len, r->key, r->key_len) <= 0 &&
			flowdb_key_cmp(r->key, r->key_len, rg->end, rg->end_len) < 0)
			return true;
	}
	return false;
}

static void
fill_engine_lookahead(FlowdbCursor *c)
{
	while (!c->eng_valid && !c->eng_done)
	{
		lsm_status	st = lsm_iter_next(c->ref->iter, &c->eng);

		if (st == LSM_DONE)
			c->eng_done = true;
		else if (st != LSM_OK)
			flowdb_raise(st, "scanning");	/* iterator closed by its context */
		else if (!engine_record_hidden(c, &c->eng))
			c->eng_valid = true;
	}
}

static void
op_to_record(const FlowdbOp *op, lsm_record *rec)
{
	rec->key = op->key;
	rec->key_len = op->key_len;
	rec->ts = op->ts;
	rec->expire_at = op->expire_at;
	rec->value = op->value;
	rec->value_len = op->value_len;
}

bool
flowdb_cursor_next(FlowdbCursor *c, lsm_record *rec)
{
	if (c->ref->iter == NULL || (c->limit && c->returned >= c->limit))
		return false;
	for (;;)
	{
		bool		view_left = c->reverse ? c->vpos >= 0 : c->vpos < c->nview;
		const FlowdbOp *op = view_left ? &c->view[c->vpos] : NULL;
		int			cmp;

		fill_engine_lookahead(c);
		if (!view_left && !c->eng_valid)
			return false;
		if (!view_left)
			cmp = 1;			/* take the engine record */
		else if (!c->eng_valid)
			cmp = -1;			/* take the view entry */
		else
		{
			cmp = record_cmp(op->key, op->key_len, op->ts,
							 c->eng.key, c->eng.key_len, c->eng.ts);
			if (c->reverse)
				cmp = -cmp;
		}

		if (cmp > 0)
		{
			*rec = c->eng;
			c->eng_valid = false;
			c->returned++;
			return true;
		}
		if (cmp == 0)
			c->eng_valid = false;	/* own write replaces/hides it */
		c->vpos += c->reverse ? -1 : 1;
		if (op->kind == FLOWDB_OP_DELETE)
			continue;
		op_to_record(op, rec);
		c->returned++;
		return true;
	}
}

void
flowdb_cursor_stats(const FlowdbCursor *c, lsm_iter_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (c && c->ref && c->ref->iter)
		lsm_iter_get_stats(c->ref->iter, st);
}

void
flowdb_cursor_close(FlowdbCursor *c)
{
	if (c && c->ref)
		flowdb_iter_close(c->ref);
}
