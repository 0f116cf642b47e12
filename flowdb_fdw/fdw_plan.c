/*
 * fdw_plan.c — planner callbacks of the flowdb foreign data wrapper.
 *
 * Paths offered for a foreign table:
 *   - the plain scan, with whatever WHERE clauses fdw_pushdown.c accepts;
 *   - the same scan in the query's ORDER BY when the engine's order gives it
 *     (key, ts ascending or both descending), bounded by the query's LIMIT +
 *     OFFSET when nothing else sits between the scan and the LIMIT;
 *   - parameterized scans for join clauses on the key (key = outer.col), so
 *     a nested loop does one engine seek per outer row;
 *   - for SELECT count(*) with no GROUP BY / HAVING over a scan that takes
 *     every WHERE clause, an upper path: one foreign scan that counts the
 *     engine's records (fdw_get_upper_paths).
 * Costs: a seek costs FDW_SEEK_COST, every record the engine reads (after
 * pushed bounds) FDW_RECORD_COST, plus local filters and tuple output.
 */
#include "fdw.h"

#include "access/table.h"
#include "catalog/pg_aggregate.h"
#include "commands/trigger.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/appendinfo.h"
#include "optimizer/clauses.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "optimizer/tlist.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"

#define FDW_SEEK_COST 0.05
#define FDW_RECORD_COST 0.004
#define FDW_DEFAULT_ROWS 1000

#define FDW_REL_INFO_MAGIC 0x46647269	/* marks our FdwRelInfo */

typedef struct FdwRelInfo
{
	uint32		magic;			/* FDW_REL_INFO_MAGIC */
	FdwTable   *table;
	List	   *pushed;			/* RestrictInfos pushed into the scan */
	bool		all_exact;		/* every base clause is enforced by the scan */
	bool		single_key;		/* an exact key = v is pushed */
	int			nkey_eq;		/* pushed key equality clauses (seeks) */
	double		scanned;		/* records the engine reads */
} FdwRelInfo;

/* fdw_private of the upper relation of a count pushdown */
typedef struct FdwCountInfo
{
	RelOptInfo *scan_rel;		/* the foreign table's base relation */
	List	   *aggs;			/* the distinct count Aggrefs of the target */
} FdwCountInfo;

static double prefix_correction(PlannerInfo *root, RelOptInfo *rel, FdwRelInfo *info);
static ForeignScan *count_plan(PlannerInfo *root, RelOptInfo *rel, List *tlist);

void
fdw_get_rel_size(PlannerInfo *root, RelOptInfo *rel, Oid relid)
{
	FdwRelInfo *info = palloc0(sizeof(FdwRelInfo));
	ListCell   *lc;
	Selectivity sel;
	double		factor;

	info->magic = FDW_REL_INFO_MAGIC;
	info->table = fdw_table_get(relid);
	info->all_exact = true;
	foreach(lc, rel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst(lc);
		FdwCond		c;

		if (ri->pseudoconstant)
			continue;
		if (fdw_classify_clause(root, rel, info->table, ri, NULL, &c))
		{
			info->pushed = lappend(info->pushed, ri);
			if (c.kind == FDW_KEY_EQ && c.exact)
				info->single_key = true;
			if (c.kind == FDW_KEY_EQ || c.kind == FDW_KEY_IN)
				info->nkey_eq++;
			if (!c.exact)
				info->all_exact = false;
		}
		else
			info->all_exact = false;
	}
	rel->fdw_private = info;

	if (rel->tuples < 0)		/* never analyzed */
		rel->tuples = FDW_DEFAULT_ROWS;
	set_baserel_size_estimates(root, rel);
	factor = prefix_correction(root, rel, info);
	rel->rows = clamp_row_est(Min(rel->tuples, rel->rows * factor));
	sel = clauselist_selectivity(root, info->pushed, rel->relid, JOIN_INNER, NULL);
	info->scanned = clamp_row_est(Min(rel->tuples, rel->tuples * sel * factor));
}

/*
 * The planner's LIKE / starts_with estimate from a histogram can be far too
 * low for a prefix that is itself a common key (sensor.00042% matches all
 * 200 points of sensor.00042).  Like Postgres' own prefix estimate, never go
 * below the selectivity of key = prefix.  Returns the factor to apply (to the
 * rows and to the records scanned).
 *
 * A pattern or prefix only known at run time (a generic plan of a prepared
 * statement: LIKE $1 || '%') gets the estimate of key = <that value>, i.e.
 * rows per distinct key, instead of the planner's blind DEFAULT_MATCH_SEL
 * (0.5% of the table), lower or higher.  The scan is the same prefix seek
 * either way; the blind figure made a generic plan look 25x dearer than the
 * custom ones on the benchmark data, so the plan cache re-planned such a
 * statement on every execution.
 */
static double
prefix_correction(PlannerInfo *root, RelOptInfo *rel, FdwRelInfo *info)
{
	double		factor = 1.0;
	ListCell   *lc;

	foreach(lc, info->pushed)
	{
		RestrictInfo *ri = lfirst(lc);
		FdwCond		c;
		Const	   *k;
		char	   *prefix;
		int			plen;
		bool		whole,
					eq;
		Var		   *var;
		Expr	   *eqclause;
		Selectivity pat_sel,
					eq_sel;

		if (!fdw_classify_clause(root, rel, info->table, ri, NULL, &c) ||
			(c.kind != FDW_KEY_PREFIX && c.kind != FDW_KEY_LIKE))
			continue;
		if (!IsA(c.value, Const))
			k = NULL;			/* run-time value: key = value, not constant */
		else if (((Const *) c.value)->constisnull)
			continue;
		else
			k = (Const *) c.value;
		if (k && c.kind == FDW_KEY_LIKE)
		{
			text	   *pat = DatumGetTextPP(k->constvalue);

			if (!fdw_like_prefix(VARDATA_ANY(pat), VARSIZE_ANY_EXHDR(pat), &prefix, &plen,
								 &whole, &eq) || plen == 0)
				continue;
			k = makeConst(TEXTOID, -1, info->table->key_collation, -1,
						  PointerGetDatum(cstring_to_text_with_len(prefix, plen)), false, false);
		}
		var = makeVar(rel->relid, info->table->key_attno, TEXTOID, -1,
					  info->table->key_collation, 0);
		eqclause = make_opclause(TextEqualOperator, BOOLOID, false, (Expr *) var,
								 k ? (Expr *) k : c.value,
								 InvalidOid, info->table->key_collation);
		eq_sel = clause_selectivity(root, (Node *) eqclause, rel->relid, JOIN_INNER, NULL);
		pat_sel = clause_selectivity(root, (Node *) ri, rel->relid, JOIN_INNER, NULL);
		if (pat_sel > 0 && (eq_sel > pat_sel || k == NULL))
			factor *= eq_sel / pat_sel;
	}
	return factor;
}

static void
scan_cost(PlannerInfo *root, RelOptInfo *rel, double scanned, double rows, int seeks,
		  Cost *startup, Cost *total)
{
	QualCost	local = rel->baserestrictcost;

	*startup = FDW_SEEK_COST + local.startup;
	*total = *startup + FDW_SEEK_COST * Max(seeks - 1, 0) +
		scanned * (FDW_RECORD_COST + local.per_tuple) +
		rows * cpu_tuple_cost + rel->reltarget->cost.per_tuple * rows;
}

static List *
path_private(int order, bool limit)
{
	return list_make2(makeInteger(order), makeInteger(limit ? 1 : 0));
}

/* EquivalenceClass members that are our key column. */
static bool
ec_member_is_key(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
				 EquivalenceMember *em, void *arg)
{
	FdwTable   *t = arg;
	Node	   *e = (Node *) em->em_expr;

	while (IsA(e, RelabelType))
		e = (Node *) ((RelabelType *) e)->arg;
	return IsA(e, Var) && ((Var *) e)->varno == rel->relid &&
		((Var *) e)->varattno == t->key_attno && ((Var *) e)->varlevelsup == 0;
}

static void
add_param_paths(PlannerInfo *root, RelOptInfo *rel, FdwRelInfo *info)
{
	List	   *candidates;
	List	   *done = NIL;
	ListCell   *lc;

	candidates = generate_implied_equalities_for_column(root, rel, ec_member_is_key,
														info->table, rel->lateral_referencers);
	candidates = list_concat(candidates, list_copy(rel->joininfo));
	foreach(lc, candidates)
	{
		RestrictInfo *ri = lfirst(lc);
		Relids		outer;
		FdwCond		c;
		ParamPathInfo *ppi;
		Cost		startup,
					total;
		double		per_key;

		if (!join_clause_is_movable_to(ri, rel))
			continue;
		outer = bms_union(bms_difference(ri->clause_relids, rel->relids), rel->lateral_relids);
		if (bms_is_empty(outer) || bms_overlap(outer, rel->lateral_referencers))
			continue;
		if (!fdw_classify_clause(root, rel, info->table, ri, outer, &c) ||
			(c.kind != FDW_KEY_EQ && c.kind != FDW_KEY_IN))
			continue;
		if (list_member(done, outer))
			continue;
		done = lappend(done, outer);

		ppi = get_baserel_parampathinfo(root, rel, outer);
		per_key = clamp_row_est(ppi->ppi_rows);
		scan_cost(root, rel, per_key, ppi->ppi_rows, 1, &startup, &total);
		add_path(rel, (Path *) create_foreignscan_path(root, rel, NULL, ppi->ppi_rows,
													   startup, total, NIL, outer, NULL,
													   path_private(0, false)));
	}
}

void
fdw_get_paths(PlannerInfo *root, RelOptInfo *rel, Oid relid)
{
	FdwRelInfo *info = rel->fdw_private;
	Cost		startup,
				total;
	bool		limit_ok = info->all_exact && fdw_limit_pushable(root, rel);
	int			order;

	scan_cost(root, rel, info->scanned, rel->rows, Max(info->nkey_eq, 1), &startup, &total);

	/* unordered; bounded by LIMIT only if the query has no ORDER BY either */
	add_path(rel, (Path *) create_foreignscan_path(root, rel, NULL, rel->rows, startup, total,
												   NIL, NULL, NULL,
												   path_private(0, limit_ok &&
																root->query_pathkeys == NIL)));

	order = fdw_match_pathkeys(rel, info->table, info->single_key, root->query_pathkeys);
	if (order != 0)
		add_path(rel, (Path *) create_foreignscan_path(root, rel, NULL, rel->rows, startup,
													   total, root->query_pathkeys, NULL, NULL,
													   path_private(order, limit_ok)));
	add_param_paths(root, rel, info);
}

static List *
needed_attnos(RelOptInfo *rel, const FdwTable *t, List *tlist, List *local_quals)
{
	Bitmapset  *attrs = NULL;
	List	   *out = NIL;

	pull_varattnos((Node *) rel->reltarget->exprs, rel->relid, &attrs);
	pull_varattnos((Node *) local_quals, rel->relid, &attrs);
	if (bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs))
		return list_make1_int(0);	/* whole row */
	for (int a = 1; a <= t->natts; a++)
		if (bms_is_member(a - FirstLowInvalidHeapAttributeNumber, attrs))
			out = lappend_int(out, a);
	return out;
}

ForeignScan *
fdw_get_plan(PlannerInfo *root, RelOptInfo *rel, Oid relid, ForeignPath *path,
			 List *tlist, List *scan_clauses, Plan *outer_plan)
{
	FdwRelInfo *info = rel->fdw_private;
	Relids		outer = PATH_REQ_OUTER(&path->path);
	List	   *kinds = NIL,
			   *exprs = NIL,
			   *local = NIL;
	int			order;
	bool		limit;
	ListCell   *lc;
	bool		like_recheck = true;
	List	   *priv;

	if (rel->reloptkind == RELOPT_UPPER_REL)
		return count_plan(root, rel, tlist);
	order = intVal(linitial(path->fdw_private));
	limit = intVal(lsecond(path->fdw_private)) != 0;
	foreach(lc, scan_clauses)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		FdwCond		c;

		if (ri->pseudoconstant)
			continue;			/* a gating qual above the scan */
		if (fdw_classify_clause(root, rel, info->table, ri, outer, &c))
		{
			kinds = lappend_int(kinds, c.kind);
			exprs = lappend(exprs, c.value);
			if (c.exact)
				continue;
			if (c.kind != FDW_KEY_LIKE || IsA(c.value, Const))
				like_recheck = false;
		}
		else
			like_recheck = false;
		local = lappend(local, ri->clause);
	}
	if (limit)
	{
		Query	   *q = root->parse;

		Assert(local == NIL);
		exprs = lappend(exprs, q->limitCount);
		exprs = lappend(exprs, q->limitOffset ? q->limitOffset :
						(Node *) makeConst(INT8OID, -1, InvalidOid, 8, Int64GetDatum(0),
										   false, FLOAT8PASSBYVAL));
	}
	priv = list_make5(kinds, makeInteger(order), makeInteger(limit ? 1 : 0),
					  needed_attnos(rel, info->table, tlist, local), makeInteger(0));
	priv = lappend(priv, makeInteger(like_recheck && local != NIL ? 1 : 0));
	priv = lappend(priv, makeInteger(0));
	priv = lappend(priv, makeInteger((int) relid));
	return make_foreignscan(tlist, local, rel->relid, exprs, priv, NIL, NIL, outer_plan);
}

/* ------------------------------------------------------------ modifying */

/* UPDATE / DELETE find the row by (key, ts): fetch both as junk columns. */
void
fdw_add_update_targets(PlannerInfo *root, Index rti, RangeTblEntry *rte, Relation rel)
{
	FdwTable   *t = fdw_table_get(RelationGetRelid(rel));
	TupleDesc	desc = RelationGetDescr(rel);
	Form_pg_attribute k = TupleDescAttr(desc, t->key_attno - 1);
	Form_pg_attribute s = TupleDescAttr(desc, t->ts_attno - 1);

	add_row_identity_var(root, makeVar(rti, t->key_attno, k->atttypid, k->atttypmod,
									   k->attcollation, 0), rti, "flowdb_key");
	add_row_identity_var(root, makeVar(rti, t->ts_attno, s->atttypid, s->atttypmod,
									   InvalidOid, 0), rti, "flowdb_ts");
}

List *
fdw_plan_modify(PlannerInfo *root, ModifyTable *plan, Index rti, int subplan_index)
{
	if (plan->onConflictAction != ONCONFLICT_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("flowdb: ON CONFLICT is not supported on foreign tables"),
				 errdetail("Writing an existing (key, ts) replaces the row.")));
	return NIL;
}

static bool
has_row_delete_triggers(Oid relid)
{
	Relation	rel = table_open(relid, NoLock);
	bool		r = rel->trigdesc &&
		(rel->trigdesc->trig_delete_after_row || rel->trigdesc->trig_delete_before_row);

	table_close(rel, NoLock);
	return r;
}

/*
 * DELETE whose WHERE is only a pushed key range / prefix / single key (or
 * nothing) becomes one range delete: no per-row tombstones.
 */
bool
fdw_plan_direct_modify(PlannerInfo *root, ModifyTable *plan, Index rti, int subplan_index)
{
	Plan	   *sub = outerPlan(plan);
	ForeignScan *fs;
	List	   *kinds;
	ListCell   *lc;
	RangeTblEntry *rte = planner_rt_fetch(rti, root);

	if (plan->operation != CMD_DELETE || plan->returningLists != NIL || sub == NULL ||
		!IsA(sub, ForeignScan))
		return false;
	fs = (ForeignScan *) sub;
	if (fs->scan.scanrelid != rti || fs->scan.plan.qual != NIL ||
		intVal(list_nth(fs->fdw_private, FDW_PRIV_LIMIT)) != 0 ||
		has_row_delete_triggers(rte->relid))
		return false;
	kinds = list_nth(fs->fdw_private, FDW_PRIV_KINDS);
	foreach(lc, kinds)
	{
		switch ((FdwCondKind) lfirst_int(lc))
		{
			case FDW_KEY_EQ:
			case FDW_KEY_PREFIX:
			case FDW_KEY_LIKE:
			case FDW_KEY_LT:
			case FDW_KEY_LE:
			case FDW_KEY_GT:
			case FDW_KEY_GE:
				break;
			default:
				return false;	/* ts bounds or key lists: row by row */
		}
	}
	fs->operation = CMD_DELETE;
	fs->resultRelation = rti;
	list_nth_cell(fs->fdw_private, FDW_PRIV_DIRECT)->ptr_value = makeInteger(1);
	return true;
}

/* ------------------------------------------------------ count pushdown */

/*
 * count(*), or count(c) of the key or ts column (never NULL in a stored
 * row, so it counts the same rows), as a plain aggregate: no DISTINCT,
 * ORDER BY or FILTER, not split into partial / final steps.
 */
static bool
is_pushable_count(Aggref *a, Index relid, const FdwTable *t)
{
	TargetEntry *arg;
	Node	   *e;

	if (a->aggfilter || a->aggdistinct || a->aggorder || a->agglevelsup != 0 ||
		a->aggsplit != AGGSPLIT_SIMPLE || a->aggkind != AGGKIND_NORMAL)
		return false;
	if (a->aggfnoid == F_COUNT_)
		return a->aggstar;
	if (a->aggfnoid != F_COUNT_ANY || list_length(a->args) != 1)
		return false;
	arg = linitial_node(TargetEntry, a->args);
	e = (Node *) arg->expr;
	while (IsA(e, RelabelType))
		e = (Node *) ((RelabelType *) e)->arg;
	return IsA(e, Var) && ((Var *) e)->varno == relid && ((Var *) e)->varlevelsup == 0 &&
		(((Var *) e)->varattno == t->key_attno || ((Var *) e)->varattno == t->ts_attno);
}

/*
 * The distinct count Aggrefs the grouping target is built from, or NIL if it
 * holds anything else that needs the rows: another aggregate, a column
 * outside an aggregate, a set-returning function, a sub-select.  Whatever
 * surrounds the Aggrefs (count(*) + 1) is computed by the scan's projection.
 */
static List *
target_counts(PathTarget *target, Index relid, const FdwTable *t)
{
	List	   *found;
	List	   *aggs = NIL;
	ListCell   *lc;

	if (expression_returns_set((Node *) target->exprs) ||
		contain_subplans((Node *) target->exprs))
		return NIL;
	found = pull_var_clause((Node *) target->exprs,
							PVC_INCLUDE_AGGREGATES | PVC_INCLUDE_WINDOWFUNCS |
							PVC_INCLUDE_PLACEHOLDERS);
	foreach(lc, found)
	{
		Node	   *n = lfirst(lc);

		if (!IsA(n, Aggref) || !is_pushable_count((Aggref *) n, relid, t))
			return NIL;
		aggs = list_append_unique(aggs, n);
	}
	return aggs;
}

/*
 * Every WHERE clause of the scan is pushed, and enforced by the scan except
 * LIKEs (their patterns are rechecked on each record's key when they are
 * more than a prefix + '%').  No gating clause: it would be lost above a
 * scan that stands for the aggregate.
 */
static bool
count_quals_pushable(PlannerInfo *root, RelOptInfo *rel, const FdwTable *t, int *nlike)
{
	ListCell   *lc;

	*nlike = 0;
	foreach(lc, rel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst(lc);
		FdwCond		c;

		if (ri->pseudoconstant || !fdw_classify_clause(root, rel, t, ri, NULL, &c))
			return false;
		if (!c.exact && c.kind != FDW_KEY_LIKE)
			return false;
		if (!c.exact)
			(*nlike)++;
	}
	return true;
}

/*
 * Upper-relation paths: SELECT count(*) FROM t WHERE <pushed conditions>,
 * with no GROUP BY, HAVING or other aggregate, becomes one foreign scan
 * (scan relid 0) that counts the records of the engine scan without forming
 * tuples.  Anything else is declined and aggregated above the scan.
 */
void
fdw_get_upper_paths(PlannerInfo *root, UpperRelationKind stage, RelOptInfo *input_rel,
					RelOptInfo *output_rel, void *extra)
{
	Query	   *q = root->parse;
	FdwRelInfo *info = input_rel->fdw_private;
	GroupPathExtraData *gx = extra;
	FdwCountInfo *ci;
	List	   *aggs;
	int			nlike;
	Cost		cost;

	if (stage != UPPERREL_GROUP_AGG || output_rel->fdw_private != NULL ||
		input_rel->reloptkind != RELOPT_BASEREL || info == NULL ||
		info->magic != FDW_REL_INFO_MAGIC || gx->patype != PARTITIONWISE_AGGREGATE_NONE)
		return;
	if (!q->hasAggs || q->groupClause || q->groupingSets || q->havingQual ||
		root->hasHavingQual || root->hasPseudoConstantQuals)
		return;
	aggs = target_counts(output_rel->reltarget, input_rel->relid, info->table);
	if (aggs == NIL || !count_quals_pushable(root, input_rel, info->table, &nlike))
		return;

	ci = palloc0(sizeof(FdwCountInfo));
	ci->scan_rel = input_rel;
	ci->aggs = aggs;
	output_rel->fdw_private = ci;
	/* the scan's reads, a LIKE call per record to recheck, one row out */
	cost = FDW_SEEK_COST * Max(info->nkey_eq, 1) +
		info->scanned * (FDW_RECORD_COST + nlike * cpu_operator_cost) + cpu_tuple_cost +
		output_rel->reltarget->cost.per_tuple;
	add_path(output_rel, (Path *) create_foreign_upper_path(root, output_rel,
															output_rel->reltarget, 1,
															cost, cost, NIL, NULL, NIL));
}

/*
 * The plan of a count pushdown: the base relation's WHERE clauses as pushed
 * conditions, fdw_scan_tlist = the count Aggrefs (each output column is the
 * count; setrefs turns the Aggrefs of tlist into references to them).
 */
static ForeignScan *
count_plan(PlannerInfo *root, RelOptInfo *rel, List *tlist)
{
	FdwCountInfo *ci = rel->fdw_private;
	RelOptInfo *scan_rel = ci->scan_rel;
	FdwRelInfo *info = scan_rel->fdw_private;
	List	   *kinds = NIL,
			   *exprs = NIL,
			   *priv;
	ListCell   *lc;

	foreach(lc, scan_rel->baserestrictinfo)
	{
		FdwCond		c;

		if (!fdw_classify_clause(root, scan_rel, info->table, lfirst(lc), NULL, &c))
			elog(ERROR, "flowdb: count pushdown over a clause the scan cannot take");
		kinds = lappend_int(kinds, c.kind);
		exprs = lappend(exprs, c.value);
	}
	priv = list_make5(kinds, makeInteger(0), makeInteger(0), NIL, makeInteger(0));
	priv = lappend(priv, makeInteger(0));
	priv = lappend(priv, makeInteger(1));
	priv = lappend(priv, makeInteger((int) info->table->relid));
	return make_foreignscan(tlist, NIL, 0, exprs, priv, add_to_flat_tlist(NIL, ci->aggs),
							NIL, NULL);
}
