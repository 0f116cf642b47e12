/*
 * store_fdw_quals.c — which WHERE clauses of a store foreign table narrow
 * its scan, and the scan they give once their values are known.
 *
 * Pushed shapes (v: any expression computable when the scan starts: a
 * constant, a $n parameter, a stable expression, an outer row's column in
 * a parameterized scan; path: ->/->> steps of identifiers, or #>/#>> with a
 * constant path):
 *   doc->>'a' = v, doc->'a'->>'b' = v        text equality
 *   (doc->>'a')::T op v, (doc->'a')::T op v   T int2/int4/int8/numeric,
 *                                            op = < <= > >= (BETWEEN too)
 *   key op v (op = < <= > >=), key IN (...)  the primary key
 * Nothing is ever removed from the local quals: a pushed clause only chooses
 * which documents are read, and Postgres checks every clause on every
 * document read.  So the invariant is one-sided: every document for which
 * the clause is true must be among the documents read.  How each shape keeps
 * it:
 *   - text equality with c: a JSON string equal to c, or a number whose text
 *     is c (c is plain decimal), and nothing else, can have ->> = c; c that
 *     could be the text of a boolean, an object or an array is not pushed
 *     (those are not index keys).  Filter: {"a": "c"} or {"a": {"$in":
 *     ["c", c]}}.
 *   - numeric casts: the index holds numbers as doubles, converted like
 *     the bound (monotonic), so bounds become closed; integer casts widen
 *     them by 1 (jsonb -> int rounds), and past 2^52 by two more units in
 *     the last place.  ->> then a cast also accepts strings such as "30":
 *     the whole string section of the index is read as well.
 *   - no pushed condition holds for an array value, so the array-key
 *     sections of non-multi-entry indexes are not read; documents whose
 *     value encodes to more than 4 KiB are not indexed, so an equality on
 *     such a value does not use an index (query.c).
 *   - key comparisons follow jsonb's order (null < string < number <
 *     boolean < array < object; dates, binary and +-Infinity keys are shown
 *     as objects): whole key-type sections, plus a bound inside the section
 *     of the constant's own type where the orders agree (numbers; strings
 *     under the C collation when the constant has no code point >= U+D000).
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
			if (op->opno == TextEqualOperator && doc_path(x, t, relid, true, &path))
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

/* ---------------------------------------------------------- key sets
 *
 * A set of encoded primary keys: sorted, disjoint intervals.  A NULL bound
 * is unbounded.  A one-byte bound T is the start of key type T's section
 * (every key of type T sorts after it; T + 1 is after all of them).
 */

typedef struct KInt
{
	StringInfo	lo;
	bool		lo_incl;
	StringInfo	hi;
	bool		hi_incl;
} KInt;

static StringInfo
bytes(const char *p, int len)
{
	StringInfo	s = makeStringInfo();

	appendBinaryStringInfo(s, p, len);
	return s;
}

static StringInfo
tag(uint8 t)
{
	char		c = (char) t;

	return bytes(&c, 1);
}

static KInt *
kint(StringInfo lo, bool lo_incl, StringInfo hi, bool hi_incl)
{
	KInt	   *k = palloc(sizeof(KInt));

	k->lo = lo;
	k->lo_incl = lo_incl;
	k->hi = hi;
	k->hi_incl = hi_incl;
	return k;
}

static int
bcmp_(StringInfo a, StringInfo b)
{
	return flowdb_key_cmp((uint8 *) a->data, a->len, (uint8 *) b->data, b->len);
}

/* lower bounds: NULL first; equal bytes: inclusive first */
static int
lo_cmp(const KInt *a, const KInt *b)
{
	int			c;

	if (a->lo == NULL || b->lo == NULL)
		return (a->lo != NULL) - (b->lo != NULL);
	c = bcmp_(a->lo, b->lo);
	if (c != 0)
		return c;
	return (!a->lo_incl) - (!b->lo_incl);
}

/* upper bounds: NULL last; equal bytes: exclusive first */
static int
hi_cmp(const KInt *a, const KInt *b)
{
	int			c;

	if (a->hi == NULL || b->hi == NULL)
		return (a->hi == NULL) - (b->hi == NULL);
	c = bcmp_(a->hi, b->hi);
	if (c != 0)
		return c;
	return a->hi_incl - b->hi_incl;
}

static bool
kint_empty(const KInt *k)
{
	int			c;

	if (k->lo == NULL || k->hi == NULL)
		return false;
	c = bcmp_(k->lo, k->hi);
	return c > 0 || (c == 0 && !(k->lo_incl && k->hi_incl));
}

static int
kint_sort_cmp(const void *a, const void *b)
{
	return lo_cmp(*(KInt * const *) a, *(KInt * const *) b);
}

/* does b start at or before a's end (overlap or touch)? */
static bool
touches(const KInt *a, const KInt *b)
{
	int			c;

	if (a->hi == NULL || b->lo == NULL)
		return true;
	c = bcmp_(b->lo, a->hi);
	return c < 0 || (c == 0 && (b->lo_incl || a->hi_incl));
}

/* sort and merge into disjoint intervals */
static List *
kset_normalize(List *l)
{
	int			n = list_length(l),
				i = 0;
	KInt	  **a = palloc(Max(n, 1) * sizeof(KInt *));
	ListCell   *lc;
	List	   *out = NIL;
	KInt	   *cur = NULL;

	foreach(lc, l)
		if (!kint_empty(lfirst(lc)))
			a[i++] = lfirst(lc);
	n = i;
	qsort(a, n, sizeof(KInt *), kint_sort_cmp);
	for (i = 0; i < n; i++)
	{
		if (cur && touches(cur, a[i]))
		{
			if (hi_cmp(a[i], cur) > 0)
			{
				cur->hi = a[i]->hi;
				cur->hi_incl = a[i]->hi_incl;
			}
			continue;
		}
		cur = kint(a[i]->lo, a[i]->lo_incl, a[i]->hi, a[i]->hi_incl);
		out = lappend(out, cur);
	}
	return out;
}

static List *
kset_all(void)
{
	return list_make1(kint(NULL, false, NULL, false));
}

static List *
kset_intersect(List *a, List *b)
{
	List	   *out = NIL;
	ListCell   *la,
			   *lb;

	foreach(la, a)
		foreach(lb, b)
	{
		KInt	   *x = lfirst(la),
				   *y = lfirst(lb);
		KInt	   *lo = lo_cmp(x, y) >= 0 ? x : y;
		KInt	   *hi = hi_cmp(x, y) <= 0 ? x : y;

		out = lappend(out, kint(lo->lo, lo->lo_incl, hi->hi, hi->hi_incl));
	}
	return kset_normalize(out);
}

static bool
kset_is_all(List *s)
{
	KInt	   *k;

	if (list_length(s) != 1)
		return false;
	k = linitial(s);
	return k->lo == NULL && k->hi == NULL;
}

/* the whole section of key type t */
static KInt *
section(uint8 t)
{
	return kint(tag(t), true, tag(t + 1), false);
}

static KInt *
point(StringInfo k)
{
	return kint(k, true, k, true);
}

/* keys jsonb shows as objects: dates, binary, +-Infinity */
static List *
object_keys(void)
{
	StringInfo	ninf = makeStringInfo(),
				pinf = makeStringInfo();

	jdb_encode_number(ninf, -get_float8_infinity());
	jdb_encode_number(pinf, get_float8_infinity());
	return list_make4(section(JDB_TAG_DATE), section(JDB_TAG_BINARY), point(ninf), point(pinf));
}

/* jsonb's type order of a key constant */
enum
{
	JC_NULL, JC_STRING, JC_NUMBER, JC_BOOL, JC_ARRAY, JC_OBJECT
};

static int
jsonb_class(Jsonb *j, JsonbValue *scalar)
{
	if (JB_ROOT_IS_SCALAR(j))
	{
		*scalar = *getIthJsonbValueFromContainer(&j->root, 0);
		switch (scalar->type)
		{
			case jbvNull:
				return JC_NULL;
			case jbvString:
				return JC_STRING;
			case jbvNumeric:
				return JC_NUMBER;
			default:
				return JC_BOOL;
		}
	}
	return JB_ROOT_IS_ARRAY(j) ? JC_ARRAY : JC_OBJECT;
}

/* keys of class cls (jsonb's view) */
static List *
class_keys(int cls)
{
	switch (cls)
	{
		case JC_STRING:
			return list_make1(section(JDB_TAG_STRING));
		case JC_NUMBER:
			return list_make1(section(JDB_TAG_NUMBER));
		case JC_ARRAY:
			return list_make1(section(JDB_TAG_ARRAY));
		case JC_OBJECT:
			return object_keys();
		default:
			return NIL;
	}
}

/* Does jsonb's string order agree with the key order against s? */
static bool
string_order_agrees(JsonbValue *s)
{
	if (!lc_collate_is_c(DEFAULT_COLLATION_OID))
		return false;
	for (int i = 0; i < s->val.string.len; i++)
		if ((unsigned char) s->val.string.val[i] >= 0xED)
			return false;
	return true;
}

/* Keys k with (k as jsonb) op c possibly true: a superset. */
static List *
key_cmp_set(int strategy, Jsonb *c)
{
	JsonbValue	sv = {0};
	int			cls = jsonb_class(c, &sv);
	StringInfo	enc = makeStringInfo();
	const char *why;
	bool		below = strategy == BTLessStrategyNumber || strategy == BTLessEqualStrategyNumber;
	List	   *out = NIL;

	if (strategy == BTEqualStrategyNumber)
		return jdb_encode_jsonb(c, enc, &why) ? list_make1(point(enc)) : kset_all();
	for (int k = JC_STRING; k <= JC_OBJECT; k++)
		if (below ? k < cls : k > cls)
			out = list_concat(out, class_keys(k));
	if (cls == JC_NUMBER || (cls == JC_STRING && string_order_agrees(&sv)))
	{
		uint8		t = cls == JC_NUMBER ? JDB_TAG_NUMBER : JDB_TAG_STRING;

		if (!jdb_encode_jsonb(c, enc, &why))
			return kset_all();
		if (!below)
			out = lappend(out, kint(enc, true, tag(t + 1), false));
		else if (cls == JC_STRING)
			out = lappend(out, kint(tag(t), true, enc, true));
		else
		{
			/* -Infinity is an object to jsonb: above every number */
			StringInfo	ninf = makeStringInfo();

			jdb_encode_number(ninf, -get_float8_infinity());
			out = lappend(out, kint(ninf, false, enc, true));
		}
	}
	else
		out = list_concat(out, class_keys(cls));
	return kset_normalize(out);
}

static List *
key_in_set(Datum arr)
{
	ArrayType  *a = DatumGetArrayTypeP(arr);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *out = NIL;

	deconstruct_array(a, JSONBOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		StringInfo	enc = makeStringInfo();
		const char *why;

		if (nulls[i])
			continue;			/* = NULL is never true */
		if (!jdb_encode_jsonb(DatumGetJsonbP(elems[i]), enc, &why))
			return kset_all();
		out = lappend(out, point(enc));
	}
	return kset_normalize(out);
}

/* --------------------------------------------------------- the scan plan */

/* Could a non-string JSON value have ->> text c, and which? */
typedef enum
{
	TEXT_STRING_ONLY,			/* only a JSON string "c" */
	TEXT_OR_NUMBER,				/* also the number c */
	TEXT_NOT_PUSHABLE			/* a boolean, object or array could */
} TextEq;

static TextEq
text_eq_kind(const char *c, int len)
{
	int			i = 0;

	if ((len == 4 && memcmp(c, "true", 4) == 0) || (len == 5 && memcmp(c, "false", 5) == 0) ||
		(len > 0 && (c[0] == '{' || c[0] == '[')))
		return TEXT_NOT_PUSHABLE;
	/* numeric_out's form: -?digits(.digits)?, no leading zero */
	if (i < len && c[i] == '-')
		i++;
	if (i >= len || !isdigit((unsigned char) c[i]) ||
		(c[i] == '0' && i + 1 < len && isdigit((unsigned char) c[i + 1])))
		return TEXT_STRING_ONLY;
	while (i < len && isdigit((unsigned char) c[i]))
		i++;
	if (i < len && c[i] == '.')
	{
		i++;
		if (i >= len || !isdigit((unsigned char) c[i]))
			return TEXT_STRING_ONLY;
		while (i < len && isdigit((unsigned char) c[i]))
			i++;
	}
	return i == len ? TEXT_OR_NUMBER : TEXT_STRING_ONLY;
}

static double
value_double(Datum v, Oid type)
{
	switch (type)
	{
		case INT2OID:
			return (double) DatumGetInt16(v);
		case INT4OID:
			return (double) DatumGetInt32(v);
		case INT8OID:
			return (double) DatumGetInt64(v);
		default:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, v));
	}
}

typedef struct PathConds
{
	char	   *path;
	StringInfoData ops;			/* JSON members of the path's condition object */
	StringInfoData shown;		/* for EXPLAIN */
	bool		any_string;
} PathConds;

static PathConds *
path_conds(List **paths, const char *path)
{
	ListCell   *lc;
	PathConds  *p;

	foreach(lc, *paths)
	{
		p = lfirst(lc);
		if (strcmp(p->path, path) == 0)
			return p;
	}
	p = palloc0(sizeof(PathConds));
	p->path = pstrdup(path);
	initStringInfo(&p->ops);
	initStringInfo(&p->shown);
	*paths = lappend(*paths, p);
	return p;
}

static void
add_op(PathConds *p, const char *op, const char *json, const char *shown_op)
{
	if (p->ops.len)
		appendStringInfoString(&p->ops, ", ");
	appendStringInfo(&p->ops, "\"%s\": %s", op, json);
	if (p->shown.len)
		appendStringInfoString(&p->shown, " AND ");
	appendStringInfo(&p->shown, "%s %s ", p->path, shown_op);
	if (strlen(json) <= 64)
		appendStringInfoString(&p->shown, json);
	else
	{
		int			n = 60;

		/* long values are cut in EXPLAIN, at a character boundary */
		while (n > 0 && ((unsigned char) json[n] & 0xC0) == 0x80)
			n--;
		appendStringInfo(&p->shown, "%.*s...", n, json);
	}
}

/* a double as a JSON number, or false if it is not finite */
static bool
json_number(StringInfo out, double d)
{
	if (isinf(d) || isnan(d))
		return false;
	appendStringInfo(out, "%.17g", d);
	return true;
}

/*
 * A closed bound that keeps every number x with (x::T op d): integer casts
 * of jsonb round (29.5::int = 30), so they widen by 1; beyond 2^52 the
 * double arithmetic may round, so two more units in the last place.
 */
static double
widen(double d, bool down, bool int_cast)
{
	double		to = down ? -get_float8_infinity() : get_float8_infinity();

	if (int_cast)
		d += down ? -1.0 : 1.0;
	if (fabs(d) >= 4503599627370496.0)
		d = nextafter(nextafter(d, to), to);
	return d;
}

static void
add_text_eq(List **paths, JdbQual *q, text *v)
{
	PathConds  *p;
	StringInfoData s;
	char	   *c = VARDATA_ANY(v);
	int			len = VARSIZE_ANY_EXHDR(v);
	TextEq		k = text_eq_kind(c, len);

	if (k == TEXT_NOT_PUSHABLE)
		return;
	p = path_conds(paths, q->path);
	initStringInfo(&s);
	escape_json(&s, text_to_cstring(v));
	if (k == TEXT_STRING_ONLY)
		add_op(p, "$eq", s.data, "=");
	else
	{
		StringInfoData in;

		initStringInfo(&in);
		appendStringInfo(&in, "[%s, %.*s]", s.data, len, c);
		add_op(p, "$in", in.data, "IN");
	}
}

static void
add_num_cmp(List **paths, JdbQual *q, Datum v, Oid type)
{
	double		d = value_double(v, type);
	PathConds  *p;
	StringInfoData lo,
				hi;

	if (isnan(d))
		return;
	initStringInfo(&lo);
	initStringInfo(&hi);
	if (q->strategy == BTEqualStrategyNumber && !q->int_cast && !q->from_text)
	{
		/* x = d exactly: the number keys equal to d's double (composites too) */
		if (json_number(&lo, d))
			add_op(path_conds(paths, q->path), "$eq", lo.data, "=");
		return;
	}
	if (q->strategy != BTLessStrategyNumber && q->strategy != BTLessEqualStrategyNumber &&
		!json_number(&lo, widen(d, true, q->int_cast)))
		resetStringInfo(&lo);
	if (q->strategy != BTGreaterStrategyNumber && q->strategy != BTGreaterEqualStrategyNumber &&
		!json_number(&hi, widen(d, false, q->int_cast)))
		resetStringInfo(&hi);
	if (lo.len == 0 && hi.len == 0)
		return;
	p = path_conds(paths, q->path);
	if (lo.len)
		add_op(p, "$gte", lo.data, ">=");
	if (hi.len)
		add_op(p, "$lte", hi.data, "<=");
	if (q->from_text)
		p->any_string = true;
}

static void
show_kint(StringInfo out, const KInt *k)
{
	static const char *const names[] = {"number", "date", "string", "binary", "array"};

	if (k->lo && k->hi && k->lo_incl && k->hi_incl && bcmp_(k->lo, k->hi) == 0)
	{
		/* one key */
		appendStringInfoString(out, JsonbToCString(NULL, &jdb_key_to_jsonb((uint8 *) k->lo->data,
																		   k->lo->len)->root, 0));
		return;
	}
	appendStringInfoChar(out, k->lo_incl ? '[' : '(');
	for (int side = 0; side < 2; side++)
	{
		StringInfo	b = side == 0 ? k->lo : k->hi;

		if (side == 1)
			appendStringInfoString(out, ", ");
		if (b == NULL)
			appendStringInfoString(out, side == 0 ? "-inf" : "+inf");
		else if (b->len == 1)
		{
			int			t = ((uint8) b->data[0] & 0xF0) >> 4;

			if (t >= 1 && t <= 5)
				appendStringInfo(out, "%s %s", side == 0 || ((uint8) b->data[0] & 0x0F) == 0 ?
								 "first" : "after last", names[t - 1]);
			else
				appendStringInfoString(out, "+inf");
		}
		else
			appendStringInfoString(out, JsonbToCString(NULL, &jdb_key_to_jsonb((uint8 *) b->data,
																				 b->len)->root, 0));
	}
	appendStringInfoChar(out, k->hi_incl ? ']' : ')');
}

static JdbRange *
engine_range(StringInfo pre, KInt *k)
{
	JdbRange   *r = palloc0(sizeof(JdbRange));

	jdb_range_make(r, pre->data, pre->len, k->lo, !k->lo_incl, k->hi, !k->hi_incl);
	return r;
}

/*
 * The scan for quals with values (values[i] / nulls[i] for quals' i-th;
 * unknown[i]: not known yet, at plan time — a neutral stand-in is used).
 */
void
jdb_fdw_make_scan(JdbStore *s, List *quals, Datum *values, bool *nulls, bool *unknown,
				  JdbScanPlan *out)
{
	List	   *keys = kset_all();
	List	   *paths = NIL;
	ListCell   *lc;
	int			i = 0;
	StringInfoData filter,
				pre,
				shown;
	PathConds  *ranged = NULL;

	memset(out, 0, sizeof(*out));
	initStringInfo(&shown);
	foreach(lc, quals)
	{
		JdbQual    *q = lfirst(lc);
		Datum		v = values[i];
		Oid			type = exprType((Node *) q->value);

		if (!unknown[i] && nulls[i])
		{
			out->empty = true;	/* a comparison with NULL is never true */
			i++;
			continue;
		}
		switch (q->kind)
		{
			case JDB_Q_TEXT_EQ:
				add_text_eq(&paths, q, unknown[i] ? cstring_to_text("?") : DatumGetTextPP(v));
				break;
			case JDB_Q_NUM_CMP:
				add_num_cmp(&paths, q, unknown[i] ? Int32GetDatum(0) : v,
							unknown[i] ? INT4OID : type);
				break;
			case JDB_Q_KEY_CMP:
				keys = kset_intersect(keys, key_cmp_set(q->strategy, unknown[i] ?
														DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("0"))) :
														DatumGetJsonbP(v)));
				break;
			case JDB_Q_KEY_IN:
				if (!unknown[i])
					keys = kset_intersect(keys, key_in_set(v));
				else
				{
					StringInfo	k = makeStringInfo();

					jdb_encode_number(k, 0);
					keys = kset_intersect(keys, list_make1(point(k)));
				}
				break;
		}
		i++;
	}
	if (out->empty || keys == NIL)
	{
		out->empty = true;
		out->shown = "no rows (a condition can never be true)";
		return;
	}

	/* the index choice of the document conditions */
	initStringInfo(&filter);
	appendStringInfoChar(&filter, '{');
	foreach(lc, paths)
	{
		PathConds  *p = lfirst(lc);

		if (filter.len > 1)
			appendStringInfoString(&filter, ", ");
		escape_json(&filter, p->path);
		appendStringInfo(&filter, ": {%s}", p->ops.data);
	}
	appendStringInfoChar(&filter, '}');
	/* no pushed condition holds for an array value (->> gives "[...]", a
	 * cast fails): the array-key sections need not be read */
	if (paths == NIL)
	{
		out->ix.ix = NULL;
		out->ix.how = "full scan";
	}
	else
		jdb_plan_filter(s, DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
															  CStringGetDatum(filter.data))),
						false, &out->ix);

	/* key points > index equality > key ranges > index range > full scan */
	out->key_points = true;
	foreach(lc, keys)
	{
		KInt	   *k = lfirst(lc);

		if (!(k->lo && k->hi && k->lo_incl && k->hi_incl && bcmp_(k->lo, k->hi) == 0))
			out->key_points = false;
	}
	if (out->key_points || (!kset_is_all(keys) && out->ix.rank < 2))
		out->ix.ix = NULL;
	out->nkeys = list_length(keys);

	if (out->ix.ix)
	{
		JdbIndex   *ix = out->ix.ix;

		appendStringInfo(&shown, "%s (%s:", ix->name, out->ix.how);
		for (int j = 0; j < ix->kp.npaths; j++)
		{
			StringInfoData p;

			initStringInfo(&p);
			for (int g = 0; g < ix->kp.paths[j].nsegs; g++)
				jpath_add(&p, ix->kp.paths[j].segs[g], strlen(ix->kp.paths[j].segs[g]));
			foreach(lc, paths)
			{
				PathConds  *pc = lfirst(lc);

				if (strcmp(pc->path, p.data) == 0)
				{
					appendStringInfo(&shown, "%s %s", j > 0 ? " AND" : "", pc->shown.data);
					if (pc->any_string && out->ix.rank == 1 && !ix->kp.is_array)
					{
						ranged = pc;
						appendStringInfoString(&shown, " OR any string");
					}
				}
			}
		}
		appendStringInfoChar(&shown, ')');
		if (ranged)
		{
			/* ->> then a cast: strings such as "30" cast too */
			JdbRange   *r = palloc0(sizeof(JdbRange));

			initStringInfo(&pre);
			jdb_index_prefix(s, ix, &pre);
			jdb_range_make(r, pre.data, pre.len, tag(JDB_TAG_STRING), false,
						   tag(JDB_TAG_STRING + 1), true);
			out->ix.ranges = lappend(out->ix.ranges, r);
		}
		out->shown = shown.data;
		out->kind = JDB_SCAN_INDEX;
		return;
	}
	initStringInfo(&pre);
	jdb_sub_prefix(s, 'd', &pre);
	out->kind = kset_is_all(keys) ? JDB_SCAN_FULL : JDB_SCAN_KEYS;
	foreach(lc, keys)
		out->key_ranges = lappend(out->key_ranges, engine_range(&pre, lfirst(lc)));
	out->key_set = keys;
	out->shown = out->kind == JDB_SCAN_FULL ? "full scan" : NULL;	/* jdb_fdw_show_scan */
}

/* What EXPLAIN shows of the scan. */
const char *
jdb_fdw_show_scan(const JdbScanPlan *p)
{
	StringInfoData shown;
	ListCell   *lc;

	if (p->shown)
		return p->shown;
	/* key ranges: rendered only when asked for (each scan start has them) */
	initStringInfo(&shown);
	foreach(lc, p->key_set)
	{
		if (shown.len)
			appendStringInfoString(&shown, ", ");
		show_kint(&shown, lfirst(lc));
	}
	return shown.data;
}
