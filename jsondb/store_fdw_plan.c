/*
 * store_fdw_plan.c — planner callbacks of store foreign tables: size
 * estimates, the scan paths (plain, and parameterized by a join's outer
 * row), the plan, and the row identity for UPDATE / DELETE.
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

#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/appendinfo.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#define COUNT_PROBE 1000

typedef struct StoreRelInfo
{
	const JdbFdwTable *t;
	List	   *quals;			/* JdbQual* of the restriction clauses */
	double		tuples;
	double		fetched;		/* documents read by the plain path */
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

/* The pushable ones of clauses (RestrictInfo*), as JdbQual*. */
static List *
classify_all(PlannerInfo *root, RelOptInfo *rel, const JdbFdwTable *t, List *clauses)
{
	List	   *quals = NIL;
	ListCell   *lc;

	foreach(lc, clauses)
	{
		RestrictInfo *ri = lfirst(lc);
		JdbQual		q;

		if (jdb_fdw_classify(root, rel->relid, t, ri->clause, &q))
		{
			JdbQual    *c = palloc(sizeof(JdbQual));

			*c = q;
			quals = lappend(quals, c);
		}
	}
	return quals;
}

/* Documents read for quals (values known when constant, else stand-ins). */
static double
estimate_fetched(const StoreRelInfo *info, List *quals, double *per_doc)
{
	int			n = list_length(quals),
				i = 0;
	Datum	   *values = palloc0(Max(n, 1) * sizeof(Datum));
	bool	   *nulls = palloc0(Max(n, 1) * sizeof(bool));
	bool	   *unknown = palloc0(Max(n, 1) * sizeof(bool));
	ListCell   *lc;
	JdbScanPlan plan;

	foreach(lc, quals)
	{
		Expr	   *v = ((JdbQual *) lfirst(lc))->value;

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
	jdb_fdw_make_scan(jdb_fdw_store(info->t), quals, values, nulls, unknown, &plan);
	*per_doc = plan.kind == JDB_SCAN_INDEX || plan.key_points ? 0.05 : 0.01;
	return Min(fetched_estimate(&plan, info->tuples), info->tuples);
}

void
jdb_fdw_get_rel_size(PlannerInfo *root, RelOptInfo *rel, Oid relid)
{
	StoreRelInfo *info = palloc0(sizeof(StoreRelInfo));
	double		sel;

	info->t = jdb_fdw_table(relid);
	info->quals = classify_all(root, rel, info->t, rel->baserestrictinfo);
	info->tuples = rel->tuples >= 0 && rel->pages > 0 ? rel->tuples :
		probe_count(jdb_fdw_store(info->t));
	rel->tuples = info->tuples;
	info->fetched = estimate_fetched(info, info->quals, &info->per_doc);
	sel = clauselist_selectivity(root, rel->baserestrictinfo, 0, JOIN_INNER, NULL);
	rel->rows = clamp_row_est(Min(info->fetched, info->tuples * sel));
	rel->fdw_private = info;
}

static bool
ec_member_is_target(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
					EquivalenceMember *em, void *arg)
{
	return jdb_fdw_is_target(rel->relid, ((StoreRelInfo *) arg)->t, em->em_expr);
}

/*
 * Join clauses that could be pushed with the outer row's value: key =
 * outer.x, doc->>'a' = outer.y (equivalence classes) and the pushable
 * shapes among the other join clauses.
 */
static List *
join_candidates(PlannerInfo *root, RelOptInfo *rel, StoreRelInfo *info)
{
	List	   *out = NIL;
	ListCell   *lc;

	foreach(lc, rel->joininfo)
	{
		RestrictInfo *ri = lfirst(lc);
		JdbQual		q;

		if (join_clause_is_movable_to(ri, rel) &&
			jdb_fdw_classify(root, rel->relid, info->t, ri->clause, &q))
			out = lappend(out, ri);
	}
	if (rel->has_eclass_joins)
	{
		List	   *ec = generate_implied_equalities_for_column(root, rel, ec_member_is_target,
																	info, rel->lateral_referencers);

		foreach(lc, ec)
		{
			RestrictInfo *ri = lfirst(lc);
			JdbQual		q;

			if (jdb_fdw_classify(root, rel->relid, info->t, ri->clause, &q))
				out = lappend(out, ri);
		}
	}
	return out;
}

void
jdb_fdw_get_paths(PlannerInfo *root, RelOptInfo *rel, Oid relid)
{
	StoreRelInfo *info = rel->fdw_private;
	Cost		startup = 10;
	Cost		total = startup + info->fetched * (info->per_doc + cpu_tuple_cost +
												  rel->baserestrictcost.per_tuple);
	List	   *done = NIL;
	ListCell   *lc;

	add_path(rel, (Path *) create_foreignscan_path(root, rel, NULL, rel->rows, startup, total,
												   NIL, NULL, NULL, NIL));

	/* parameterized: what is read is chosen again for each outer row */
	foreach(lc, join_candidates(root, rel, info))
	{
		RestrictInfo *ri = lfirst(lc);
		Relids		outer = bms_union(bms_difference(ri->clause_relids, rel->relids),
									  rel->lateral_relids);
		ParamPathInfo *ppi;
		double		fetched,
					per_doc,
					rows;
		ListCell   *ld;
		bool		seen = false;

		if (bms_is_empty(outer) || bms_overlap(outer, rel->relids))
			continue;
		foreach(ld, done)
			if (bms_equal(lfirst(ld), outer))
				seen = true;
		if (seen)
			continue;
		done = lappend(done, outer);
		ppi = get_baserel_parampathinfo(root, rel, outer);
		fetched = estimate_fetched(info, list_concat(list_copy(info->quals),
													 classify_all(root, rel, info->t,
																  ppi->ppi_clauses)),
								   &per_doc);
		rows = clamp_row_est(Min(fetched, ppi->ppi_rows));
		add_path(rel, (Path *) create_foreignscan_path(root, rel, NULL, rows, 1,
													   1 + fetched * (per_doc + cpu_tuple_cost +
																	  rel->baserestrictcost.per_tuple),
													   NIL, outer, NULL, NIL));
	}
}

ForeignScan *
jdb_fdw_get_plan(PlannerInfo *root, RelOptInfo *rel, Oid relid, ForeignPath *path,
				 List *tlist, List *scan_clauses, Plan *outer_plan)
{
	StoreRelInfo *info = rel->fdw_private;
	List	   *quals = classify_all(root, rel, info->t, scan_clauses);
	List	   *exprs = NIL;
	ListCell   *lc;

	foreach(lc, quals)
		exprs = lappend(exprs, ((JdbQual *) lfirst(lc))->value);
	/* every clause is checked on every document read; outer columns in
	 * exprs become parameters (create_foreignscan_plan) */
	scan_clauses = extract_actual_clauses(scan_clauses, false);
	return make_foreignscan(tlist, scan_clauses, rel->relid, exprs,
							list_make2(makeString(JDB_FDW_SCAN_MARKER),
									   jdb_fdw_quals_to_private(quals)),
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
	/* INSERT would report the conflict instead of skipping the row */
	if (plan->onConflictAction != ONCONFLICT_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("flowdb: INSERT ... ON CONFLICT is not supported on store table \"%s\"",
						get_rel_name(planner_rt_fetch(rti, root)->relid)),
				 errhint("jsondb.put inserts or replaces a document.")));
	return NIL;
}
