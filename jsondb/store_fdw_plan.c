/*
 * store_fdw_plan.c — planner callbacks of store foreign tables: size
 * estimates, the one scan path, the plan, and the row identity for UPDATE /
 * DELETE.
 *
 * The scan plan carries, in fdw_private, JDB_FDW_SCAN_MARKER and the pushed
 * conditions (store_fdw_quals.c); their values are in fdw_exprs.  Every WHERE
 * clause stays a local qual.  Which index or key ranges are read is decided
 * again when the scan starts, with the values (they may be parameters).
 *
 * Estimates: the document count is pg_class.reltuples after ANALYZE;
 * before that the documents are counted at plan time up to 1000 (more is
 * taken as 10000).  The fraction read follows the kind of scan (one key per
 * key, unique equality one document, equality 0.5%, a range 10%, key ranges
 * 25%), the rows returned are capped by the clauses' selectivity.
 */
#include "jsondb.h"

#include "access/htup_details.h"
#include "optimizer/appendinfo.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/builtins.h"

#define COUNT_PROBE 1000

typedef struct StoreRelInfo
{
	List	   *quals;			/* JdbQual* */
	double		fetched;		/* documents read */
	double		per_doc;		/* cost of reading one */
} StoreRelInfo;

/* Documents in s: counted up to COUNT_PROBE (the keys only, not tracked). */
static double
probe_count(JdbStore *s)
{
	StringInfoData pre;
	JdbScan    *sc;
	lsm_record	rec;
	int			n = 0;

	initStringInfo(&pre);
	jdb_sub_prefix(s, 'd', &pre);
	sc = jdb_scan_open((uint8 *) pre.data, pre.len, NULL, 0, false, NULL, 0, false, false);
	while (n < COUNT_PROBE && jdb_scan_next(sc, &rec))
		n++;
	jdb_scan_close(sc);
	return n < COUNT_PROBE ? n : 10 * COUNT_PROBE;
}

static double
fetched_estimate(const JdbScanPlan *p, double tuples)
{
	if (p->empty)
		return 0;
	switch (p->kind)
	{
		case JDB_SCAN_KEYS:
			return p->key_points ? p->nkeys : tuples * 0.25;
		case JDB_SCAN_INDEX:
			switch (p->ix.rank)
			{
				case 6:
				case 5:
					return 1;
				case 4:
				case 3:
					return tuples * 0.005;
				case 2:
					return tuples * 0.005 * list_length(p->ix.ranges);
				default:
					return tuples * 0.1;
			}
		default:
			return tuples;
	}
}

void
jdb_fdw_get_rel_size(PlannerInfo *root, RelOptInfo *rel, Oid relid)
{
	const JdbFdwTable *t = jdb_fdw_table(relid);
	JdbStore   *s = jdb_fdw_store(t);
	StoreRelInfo *info = palloc0(sizeof(StoreRelInfo));
	ListCell   *lc;
	int			n,
				i = 0;
	Datum	   *values;
	bool	   *nulls,
			   *unknown;
	JdbScanPlan plan;
	double		tuples,
				sel;

	foreach(lc, rel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst(lc);
		JdbQual		q;

		if (jdb_fdw_classify(rel->relid, t, ri->clause, &q))
		{
			JdbQual    *c = palloc(sizeof(JdbQual));

			*c = q;
			info->quals = lappend(info->quals, c);
		}
	}
	n = list_length(info->quals);
	values = palloc0(Max(n, 1) * sizeof(Datum));
	nulls = palloc0(Max(n, 1) * sizeof(bool));
	unknown = palloc0(Max(n, 1) * sizeof(bool));
	foreach(lc, info->quals)
	{
		JdbQual    *q = lfirst(lc);
		Expr	   *v = q->value;

		while (IsA(v, RelabelType))
			v = ((RelabelType *) v)->arg;
		if (IsA(v, Const))
		{
			values[i] = ((Const *) v)->constvalue;
			nulls[i] = ((Const *) v)->constisnull;
		}
		else
			unknown[i] = true;
		i++;
	}
	jdb_fdw_make_scan(s, info->quals, values, nulls, unknown, &plan);

	tuples = rel->tuples >= 0 && rel->pages > 0 ? rel->tuples : probe_count(s);
	rel->tuples = tuples;
	info->fetched = Min(fetched_estimate(&plan, tuples), tuples);
	info->per_doc = plan.kind == JDB_SCAN_INDEX || plan.key_points ? 0.05 : 0.01;
	sel = clauselist_selectivity(root, rel->baserestrictinfo, 0, JOIN_INNER, NULL);
	rel->rows = clamp_row_est(Min(info->fetched, tuples * sel));
	rel->fdw_private = info;
}

void
jdb_fdw_get_paths(PlannerInfo *root, RelOptInfo *rel, Oid relid)
{
	StoreRelInfo *info = rel->fdw_private;
	Cost		startup = 10;
	Cost		total = startup + info->fetched * (info->per_doc + cpu_tuple_cost +
												  rel->baserestrictcost.per_tuple);

	add_path(rel, (Path *) create_foreignscan_path(root, rel, NULL, rel->rows, startup, total,
												   NIL, NULL, NULL, NIL));
}

ForeignScan *
jdb_fdw_get_plan(PlannerInfo *root, RelOptInfo *rel, Oid relid, ForeignPath *path,
				 List *tlist, List *scan_clauses, Plan *outer_plan)
{
	StoreRelInfo *info = rel->fdw_private;
	List	   *exprs = NIL;
	ListCell   *lc;

	foreach(lc, info->quals)
		exprs = lappend(exprs, ((JdbQual *) lfirst(lc))->value);
	/* every clause is checked on every document read */
	scan_clauses = extract_actual_clauses(scan_clauses, false);
	return make_foreignscan(tlist, scan_clauses, rel->relid, exprs,
							list_make2(makeString(JDB_FDW_SCAN_MARKER),
									   jdb_fdw_quals_to_private(info->quals)),
							NIL, NIL, outer_plan);
}

/* UPDATE / DELETE find the document by its old value: the doc column. */
void
jdb_fdw_add_update_targets(PlannerInfo *root, Index rtindex, RangeTblEntry *rte, Relation rel)
{
	const JdbFdwTable *t = jdb_fdw_table(RelationGetRelid(rel));
	Var		   *v = makeVar(rtindex, t->doc_attno, JSONBOID, -1, InvalidOid, 0);

	add_row_identity_var(root, v, rtindex, "jsondb_old_doc");
}

List *
jdb_fdw_plan_modify(PlannerInfo *root, ModifyTable *plan, Index rti, int subplan)
{
	return NIL;
}
