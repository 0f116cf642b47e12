/*
 * store_fdw_quals.c — which WHERE clauses of a store foreign table can
 * narrow its scan (classification at plan time, and their fdw_private form).
 *
 * Pushed shapes (v: any expression computable when the scan starts: a
 * constant, a $n parameter, a stable expression, an outer row's column in
 * a parameterized scan; path: ->/->> steps of identifiers, or #>/#>> with a
 * constant path):
 *   doc->>'a' = v, doc->'a'->>'b' = v        text equality
 *   (doc->>'a')::T op v, (doc->'a')::T op v   T int2/int4/int8/numeric,
 *                                            op = < <= = >= > (BETWEEN too)
 *   key op v (op = < <= = >= >), key IN (...) the primary key
 *   doc @> v, doc->'a' @> v, v <@ doc        containment: the string and
 *                                            number leaves of object v
 * What they read is decided in store_fdw_scan.c (documents) and
 * store_fdw_keyset.c (primary keys).
 */
#include "jsondb.h"

#include <math.h>

#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/pg_locale.h"

#define INTEGER_BTREE_FAM 1976
#define NUMERIC_BTREE_FAM 1988
#define JSONB_BTREE_FAM 4033

/* ------------------------------------------------------- classification */

static bool
ident_ok(const char *s, int len)
{
	if (len == 0)
		return false;
	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];
		bool		start = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			c == '_' || c == '$' || c >= 0x80;

		if (!start && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

static void
jpath_add(StringInfo path, const char *seg, int len)
{
	if (path->len > 0)
		appendStringInfoChar(path, '.');
	appendBinaryStringInfo(path, seg, len);
}

static bool
is_doc_var(Expr *e, const JdbFdwTable *t, Index relid)
{
	Var		   *v = (Var *) e;

	return IsA(e, Var) && v->varno == relid && v->varlevelsup == 0 &&
		v->varattno == t->doc_attno;
}

/* Segments of a constant text[] path (#> / #>>). */
static bool
array_path(Expr *e, StringInfo path)
{
	Const	   *c = (Const *) e;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (!IsA(e, Const) || c->constisnull || c->consttype != TEXTARRAYOID)
		return false;
	deconstruct_array(DatumGetArrayTypeP(c->constvalue), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	if (n == 0)
		return false;
	for (int i = 0; i < n; i++)
	{
		text	   *s;

		if (nulls[i])
			return false;
		s = DatumGetTextPP(elems[i]);
		if (!ident_ok(VARDATA_ANY(s), VARSIZE_ANY_EXHDR(s)))
			return false;
		jpath_add(path, VARDATA_ANY(s), VARSIZE_ANY_EXHDR(s));
	}
	return true;
}

/*
 * Is e a path into the doc column?  *as_text: the last step is ->> / #>>.
 * The dotted path is appended to path.
 */
static bool
doc_path(Expr *e, const JdbFdwTable *t, Index relid, bool want_text, StringInfo path)
{
	Oid			fn;
	List	   *args;
	Expr	   *key;
	Const	   *c;

	if (IsA(e, OpExpr))
	{
		fn = ((OpExpr *) e)->opfuncid;
		if (fn == InvalidOid)
			fn = get_opcode(((OpExpr *) e)->opno);
		args = ((OpExpr *) e)->args;
	}
	else if (IsA(e, FuncExpr))
	{
		fn = ((FuncExpr *) e)->funcid;
		args = ((FuncExpr *) e)->args;
	}
	else
		return false;
	if (list_length(args) != 2)
		return false;
	if (fn != (want_text ? F_JSONB_OBJECT_FIELD_TEXT : F_JSONB_OBJECT_FIELD) &&
		fn != (want_text ? F_JSONB_EXTRACT_PATH_TEXT : F_JSONB_EXTRACT_PATH))
		return false;
	/* the steps before the last one are ->, or the column itself */
	if (!is_doc_var(linitial(args), t, relid) &&
		!doc_path(linitial(args), t, relid, false, path))
		return false;
	key = lsecond(args);
	if (fn == F_JSONB_EXTRACT_PATH_TEXT || fn == F_JSONB_EXTRACT_PATH)
		return array_path(key, path);
	c = (Const *) key;
	if (!IsA(key, Const) || c->constisnull || c->consttype != TEXTOID)
		return false;
	{
		text	   *s = DatumGetTextPP(c->constvalue);

		if (!ident_ok(VARDATA_ANY(s), VARSIZE_ANY_EXHDR(s)))
			return false;
		jpath_add(path, VARDATA_ANY(s), VARSIZE_ANY_EXHDR(s));
	}
	return true;
}

/*
 * A value the scan can compute when it starts: no column of this table, no
 * volatile function, no subquery.  Constants, $n parameters, stable
 * expressions, and (in a parameterized path) columns of the outer row.
 */
static bool
runtime_value(PlannerInfo *root, Expr *e, Index relid)
{
	return !bms_is_member(relid, pull_varnos(root, (Node *) e)) &&
		!contain_volatile_functions((Node *) e) && !contain_subplans((Node *) e) &&
		!contain_agg_clause((Node *) e) && !contain_window_function((Node *) e);
}

/* (doc path)::T with T an integer type or numeric. */
static bool
numeric_cast(Expr *e, const JdbFdwTable *t, Index relid, JdbQual *q, StringInfo path)
{
	Oid			type;
	Expr	   *arg;

	if (IsA(e, CoerceViaIO))
	{
		type = ((CoerceViaIO *) e)->resulttype;
		arg = ((CoerceViaIO *) e)->arg;
		q->from_text = true;
		if (!doc_path(arg, t, relid, true, path))
			return false;
	}
	else if (IsA(e, FuncExpr) && list_length(((FuncExpr *) e)->args) == 1)
	{
		Oid			fn = ((FuncExpr *) e)->funcid;

		type = fn == F_NUMERIC_JSONB ? NUMERICOID : fn == F_INT2_JSONB ? INT2OID :
			fn == F_INT4_JSONB ? INT4OID : fn == F_INT8_JSONB ? INT8OID : InvalidOid;
		arg = linitial(((FuncExpr *) e)->args);
		q->from_text = false;
		if (!OidIsValid(type) || !doc_path(arg, t, relid, false, path))
			return false;
	}
	else
		return false;
	if (type == NUMERICOID)
		q->int_cast = false;
	else if (type == INT2OID || type == INT4OID || type == INT8OID)
		q->int_cast = true;
	else
		return false;
	return true;
}

/* doc @> v (doc on the left) or v <@ doc (on the right) */
static bool
contains_op(OpExpr *op, int doc_side)
{
	Oid			fn = OidIsValid(op->opfuncid) ? op->opfuncid : get_opcode(op->opno);

	return (fn == F_JSONB_CONTAINS && doc_side == 0) || (fn == F_JSONB_CONTAINED && doc_side == 1);
}

/* Is s (len bytes) a key path segment (an identifier)? */
bool
jdb_fdw_segment_ok(const char *s, int len)
{
	return ident_ok(s, len);
}

static int
commute_strategy(int s)
{
	return s == BTLessStrategyNumber ? BTGreaterStrategyNumber :
		s == BTLessEqualStrategyNumber ? BTGreaterEqualStrategyNumber :
		s == BTGreaterStrategyNumber ? BTLessStrategyNumber :
		s == BTGreaterEqualStrategyNumber ? BTLessEqualStrategyNumber : s;
}

static bool
is_key_var(Expr *e, const JdbFdwTable *t, Index relid)
{
	Var		   *v = (Var *) e;

	return t->key_attno && IsA(e, Var) && v->varno == relid && v->varlevelsup == 0 &&
		v->varattno == t->key_attno;
}

bool
jdb_fdw_classify(PlannerInfo *root, Index relid, const JdbFdwTable *t, Expr *clause,
				 JdbQual *q)
{
	StringInfoData path;

	memset(q, 0, sizeof(*q));
	initStringInfo(&path);
	if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) clause;

		if (!sa->useOr || list_length(sa->args) != 2 ||
			get_op_opfamily_strategy(sa->opno, JSONB_BTREE_FAM) != BTEqualStrategyNumber ||
			!is_key_var(linitial(sa->args), t, relid) || !runtime_value(root, lsecond(sa->args), relid))
			return false;
		q->kind = JDB_Q_KEY_IN;
		q->strategy = BTEqualStrategyNumber;
		q->value = lsecond(sa->args);
		return true;
	}
	if (IsA(clause, OpExpr) && list_length(((OpExpr *) clause)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) clause;
		Expr	   *l = linitial(op->args),
				   *r = lsecond(op->args);
		int			st;

		for (int side = 0; side < 2; side++)
		{
			Expr	   *x = side == 0 ? l : r;
			Expr	   *v = side == 0 ? r : l;

			if (!runtime_value(root, v, relid))
				continue;
			resetStringInfo(&path);
			if (contains_op(op, side) &&
				(is_doc_var(x, t, relid) || doc_path(x, t, relid, false, &path)))
			{
				q->kind = JDB_Q_CONTAINS;
				q->strategy = BTEqualStrategyNumber;
			}
			else if (op->opno == TextEqualOperator && doc_path(x, t, relid, true, &path))
			{
				q->kind = JDB_Q_TEXT_EQ;
				q->strategy = BTEqualStrategyNumber;
			}
			else if (is_key_var(x, t, relid) &&
					 (st = get_op_opfamily_strategy(op->opno, JSONB_BTREE_FAM)) != 0)
			{
				q->kind = JDB_Q_KEY_CMP;
				q->strategy = side == 0 ? st : commute_strategy(st);
			}
			else if (numeric_cast(x, t, relid, q, &path) &&
					 (st = get_op_opfamily_strategy(op->opno, q->int_cast ? INTEGER_BTREE_FAM :
													NUMERIC_BTREE_FAM)) != 0)
			{
				q->kind = JDB_Q_NUM_CMP;
				q->strategy = side == 0 ? st : commute_strategy(st);
			}
			else
				continue;
			q->path = path.len ? pstrdup(path.data) : NULL;
			q->value = v;
			return true;
		}
	}
	return false;
}

/* Could a clause comparing e push down (an equivalence-class member)? */
bool
jdb_fdw_is_target(Index relid, const JdbFdwTable *t, Expr *e)
{
	StringInfoData path;

	initStringInfo(&path);
	while (IsA(e, RelabelType))
		e = ((RelabelType *) e)->arg;
	return is_key_var(e, t, relid) || doc_path(e, t, relid, true, &path);
}

/* fdw_private form of quals (values go to fdw_exprs, same order) */
List *
jdb_fdw_quals_to_private(List *quals)
{
	List	   *out = NIL;
	ListCell   *lc;

	foreach(lc, quals)
	{
		JdbQual    *q = lfirst(lc);

		out = lappend(out, list_make5(makeInteger(q->kind), makeString(q->path ? q->path : ""),
									  makeInteger(q->strategy), makeBoolean(q->int_cast),
									  makeBoolean(q->from_text)));
	}
	return out;
}

List *
jdb_fdw_quals_from_private(List *priv, List *values)
{
	List	   *out = NIL;
	ListCell   *lc,
			   *lv;

	forboth(lc, priv, lv, values)
	{
		List	   *l = lfirst(lc);
		JdbQual    *q = palloc0(sizeof(JdbQual));

		q->kind = intVal(linitial(l));
		q->path = strVal(lsecond(l));
		if (q->path[0] == '\0')
			q->path = NULL;
		q->strategy = intVal(lthird(l));
		q->int_cast = boolVal(lfourth(l));
		q->from_text = boolVal(list_nth(l, 4));
		q->value = lfirst(lv);
		out = lappend(out, q);
	}
	return out;
}
