/*
 * fdw_pushdown.c — which WHERE clauses go into the engine scan.
 *
 * One place decides (fdw_classify_clause), in the spirit of postgres_fdw's
 * foreign_expr_walker.  A clause is pushed only in these shapes, with the
 * table's key or ts column on one side and, on the other, a value the scan
 * can compute when it starts (constants, parameters, stable expressions,
 * outer columns of a parameterized join; nothing volatile, no sub-selects):
 *
 *   key = v                  texteq under a deterministic collation (bytewise
 *                            equal); exact
 *   key = ANY(v), key IN     the same per element; exact
 *   starts_with(key, v), ^@  bytewise under every deterministic collation; exact
 *   key LIKE v               the literal prefix of v (backslash escapes); exact
 *                            only for a constant pattern that is the prefix
 *                            followed by nothing but '%' (or has no wildcard)
 *   key < <= > >= v          only where the comparison collation sorts
 *                            bytewise (C / POSIX); exact
 *   ts = < <= > >= v         the ts type's btree operators; v of the same type
 *                            (any integer type for a bigint ts); exact
 *
 * An exact clause is enforced by the scan and not re-checked; every other
 * clause (and every inexact one) stays a local filter, so a pushdown only
 * ever narrows what the engine reads, never what the query returns.
 */
#include "fdw.h"

#include "access/stratnum.h"
#include "catalog/pg_am.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/pg_locale.h"

static Node *
strip_relabel(Node *n)
{
	while (n && IsA(n, RelabelType))
		n = (Node *) ((RelabelType *) n)->arg;
	return n;
}

/* The attno of our column `n` is, or 0. */
static AttrNumber
our_column(Node *n, Index relid)
{
	n = strip_relabel(n);
	if (n && IsA(n, Var) && ((Var *) n)->varno == relid && ((Var *) n)->varlevelsup == 0)
		return ((Var *) n)->varattno;
	return 0;
}

bool
fdw_is_runtime_value(Expr *e, Index relid, Relids outer)
{
	Relids		varnos;

	if (contain_volatile_functions((Node *) e) || contain_subplans((Node *) e))
		return false;
	varnos = pull_varnos(NULL, (Node *) e);
	if (bms_is_member(relid, varnos))
		return false;
	return bms_is_subset(varnos, outer);
}

static bool
deterministic(Oid coll)
{
	return OidIsValid(coll) && get_collation_isdeterministic(coll);
}

static Oid
ts_opfamily(Oid ts_type)
{
	Oid			opclass = GetDefaultOpClass(ts_type, BTREE_AM_OID);

	return OidIsValid(opclass) ? get_opclass_family(opclass) : InvalidOid;
}

static bool
ts_value_type_ok(const FdwTable *t, Oid vtype)
{
	if (t->ts_type == INT8OID)
		return vtype == INT8OID || vtype == INT4OID || vtype == INT2OID;
	return vtype == t->ts_type;
}

/* strategy of `value OP column` seen as `column OP' value` */
static int
commute_strategy(int s)
{
	switch (s)
	{
		case BTLessStrategyNumber:
			return BTGreaterStrategyNumber;
		case BTLessEqualStrategyNumber:
			return BTGreaterEqualStrategyNumber;
		case BTGreaterStrategyNumber:
			return BTLessStrategyNumber;
		case BTGreaterEqualStrategyNumber:
			return BTLessEqualStrategyNumber;
		default:
			return s;
	}
}

static FdwCondKind
strategy_kind(int s, bool key)
{
	switch (s)
	{
		case BTLessStrategyNumber:
			return key ? FDW_KEY_LT : FDW_TS_LT;
		case BTLessEqualStrategyNumber:
			return key ? FDW_KEY_LE : FDW_TS_LE;
		case BTGreaterStrategyNumber:
			return key ? FDW_KEY_GT : FDW_TS_GT;
		case BTGreaterEqualStrategyNumber:
			return key ? FDW_KEY_GE : FDW_TS_GE;
		default:
			return key ? FDW_KEY_EQ : FDW_TS_EQ;
	}
}

static int
text_func_strategy(Oid func)
{
	switch (func)
	{
		case F_TEXT_LT:
			return BTLessStrategyNumber;
		case F_TEXT_LE:
			return BTLessEqualStrategyNumber;
		case F_TEXT_GT:
			return BTGreaterStrategyNumber;
		case F_TEXT_GE:
			return BTGreaterEqualStrategyNumber;
		case F_TEXTEQ:
			return BTEqualStrategyNumber;
		default:
			return 0;
	}
}

/* Is the constant LIKE pattern enforced exactly by its prefix? */
static bool
like_const_exact(Const *c, bool *useful)
{
	char	   *prefix;
	int			plen;
	bool		whole,
				eq;
	text	   *pat;

	*useful = false;
	if (c->constisnull)
	{
		*useful = true;			/* NULL pattern: no row matches */
		return true;
	}
	pat = DatumGetTextPP(c->constvalue);
	if (!fdw_like_prefix(VARDATA_ANY(pat), VARSIZE_ANY_EXHDR(pat), &prefix, &plen, &whole, &eq))
		return false;			/* malformed: leave the error to LIKE */
	*useful = plen > 0 || eq;
	return whole || eq;
}

static bool
classify_key_op(const FdwTable *t, Oid func, Oid collid, bool var_left, Expr *value,
				FdwCond *out)
{
	int			s = text_func_strategy(func);

	if (s == BTEqualStrategyNumber)
	{
		if (!deterministic(collid))
			return false;
		out->kind = FDW_KEY_EQ;
		out->exact = true;
	}
	else if (s != 0)
	{
		if (!lc_collate_is_c(collid))
			return false;
		out->kind = strategy_kind(var_left ? s : commute_strategy(s), true);
		out->exact = true;
	}
	else if (func == F_STARTS_WITH && var_left)
	{
		if (!deterministic(collid))
			return false;
		out->kind = FDW_KEY_PREFIX;
		out->exact = true;
	}
	else if (func == F_TEXTLIKE && var_left)
	{
		bool		useful = true;

		if (!deterministic(collid))
			return false;
		out->kind = FDW_KEY_LIKE;
		out->exact = false;
		if (IsA(value, Const))
		{
			out->exact = like_const_exact((Const *) value, &useful);
			if (!useful)
				return false;	/* '%...' or '_...': nothing to narrow */
		}
	}
	else
		return false;
	out->value = value;
	return true;
}

static bool
classify_ts_op(const FdwTable *t, Oid opno, bool var_left, Expr *value, FdwCond *out)
{
	Oid			family = ts_opfamily(t->ts_type);
	int			s;

	if (!OidIsValid(family) || !ts_value_type_ok(t, exprType((Node *) value)))
		return false;
	s = get_op_opfamily_strategy(opno, family);
	if (s < BTLessStrategyNumber || s > BTGreaterStrategyNumber)
		return false;
	out->kind = strategy_kind(var_left ? s : commute_strategy(s), false);
	out->value = value;
	out->exact = true;
	return true;
}

bool
fdw_classify_clause(PlannerInfo *root, RelOptInfo *rel, const FdwTable *t,
					RestrictInfo *ri, Relids outer, FdwCond *out)
{
	Expr	   *clause = ri->clause;
	Index		relid = rel->relid;

	if (ri->pseudoconstant)
		return false;
	memset(out, 0, sizeof(*out));
	out->rinfo = ri;

	if (IsA(clause, OpExpr) && list_length(((OpExpr *) clause)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) clause;
		Node	   *l = linitial(op->args),
				   *r = lsecond(op->args);
		AttrNumber	la = our_column(l, relid),
					ra = our_column(r, relid);
		bool		var_left;
		AttrNumber	att;
		Expr	   *value;

		if (la && !ra)
		{
			var_left = true;
			att = la;
			value = (Expr *) r;
		}
		else if (ra && !la)
		{
			var_left = false;
			att = ra;
			value = (Expr *) l;
		}
		else
			return false;
		if (!fdw_is_runtime_value(value, relid, outer))
			return false;
		if (att == t->key_attno)
			return classify_key_op(t, get_opcode(op->opno), op->inputcollid, var_left, value, out);
		if (att == t->ts_attno)
			return classify_ts_op(t, op->opno, var_left, value, out);
		return false;
	}
	if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) clause;
		Expr	   *value = lsecond(sa->args);

		if (!sa->useOr || get_opcode(sa->opno) != F_TEXTEQ || !deterministic(sa->inputcollid) ||
			our_column(linitial(sa->args), relid) != t->key_attno ||
			!fdw_is_runtime_value(value, relid, outer))
			return false;
		out->kind = FDW_KEY_IN;
		out->value = value;
		out->exact = true;
		return true;
	}
	if (IsA(clause, FuncExpr))
	{
		FuncExpr   *f = (FuncExpr *) clause;

		if (f->funcid != F_STARTS_WITH || list_length(f->args) != 2 ||
			!deterministic(f->inputcollid) ||
			our_column(linitial(f->args), relid) != t->key_attno ||
			!fdw_is_runtime_value(lsecond(f->args), relid, outer))
			return false;
		out->kind = FDW_KEY_PREFIX;
		out->value = lsecond(f->args);
		out->exact = true;
		return true;
	}
	return false;
}

const char *
fdw_cond_name(FdwCondKind kind)
{
	switch (kind)
	{
		case FDW_KEY_EQ:
			return "key =";
		case FDW_KEY_IN:
			return "key = ANY";
		case FDW_KEY_PREFIX:
			return "key prefix";
		case FDW_KEY_LIKE:
			return "key LIKE prefix of";
		case FDW_KEY_LT:
			return "key <";
		case FDW_KEY_LE:
			return "key <=";
		case FDW_KEY_GT:
			return "key >";
		case FDW_KEY_GE:
			return "key >=";
		case FDW_TS_EQ:
			return "ts =";
		case FDW_TS_LT:
			return "ts <";
		case FDW_TS_LE:
			return "ts <=";
		case FDW_TS_GT:
			return "ts >";
		case FDW_TS_GE:
			return "ts >=";
	}
	return "?";
}

/* ------------------------------------------------------ run-time bounds */

bool
fdw_like_prefix(const char *pat, int len, char **prefix, int *prefix_len,
				bool *whole, bool *exact_eq)
{
	char	   *out = palloc(len + 1);
	int			n = 0,
				i = 0;

	*whole = false;
	*exact_eq = false;
	while (i < len)
	{
		char		c = pat[i];

		if (c == '\\')
		{
			if (i + 1 >= len)
				return false;	/* LIKE reports this error itself */
			out[n++] = pat[i + 1];
			i += 2;
			continue;
		}
		if (c == '%' || c == '_')
			break;
		out[n++] = c;
		i++;
	}
	*prefix = out;
	*prefix_len = n;
	if (i == len)
		*exact_eq = true;
	else
	{
		int			j = i;

		while (j < len && pat[j] == '%')
			j++;
		*whole = (j == len);
	}
	return true;
}

void
fdw_bounds_init(FdwBounds *b)
{
	memset(b, 0, sizeof(*b));
	b->ts_min = PG_INT64_MIN;
	b->ts_max = PG_INT64_MAX;
}

static int
bytes_cmp(const char *a, int alen, const char *b, int blen)
{
	return flowdb_key_cmp((const uint8 *) a, alen, (const uint8 *) b, blen);
}

static int
text_ptr_cmp(const void *x, const void *y)
{
	text	   *a = *(text *const *) x,
			   *b = *(text *const *) y;

	return bytes_cmp(VARDATA_ANY(a), VARSIZE_ANY_EXHDR(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
}

static int
sort_unique(text **k, int n)
{
	int			m = 0;

	if (n == 0)
		return 0;
	qsort(k, n, sizeof(text *), text_ptr_cmp);
	for (int i = 0; i < n; i++)
		if (m == 0 || text_ptr_cmp(&k[m - 1], &k[i]) != 0)
			k[m++] = k[i];
	return m;
}

static void
intersect_keys(FdwBounds *b, text **k, int n)
{
	int			i = 0,
				j = 0,
				m = 0;

	n = sort_unique(k, n);
	if (!b->has_keys)
	{
		b->has_keys = true;
		b->keys = k;
		b->nkeys = n;
		return;
	}
	while (i < b->nkeys && j < n)
	{
		int			c = text_ptr_cmp(&b->keys[i], &k[j]);

		if (c == 0)
		{
			b->keys[m++] = b->keys[i];
			i++;
			j++;
		}
		else if (c < 0)
			i++;
		else
			j++;
	}
	b->nkeys = m;
}

static void
apply_prefix(FdwBounds *b, const char *p, int len)
{
	if (len == 0)
		return;
	if (b->prefix == NULL)
	{
		b->prefix = (char *) p;
		b->prefix_len = len;
	}
	else if (len >= b->prefix_len && memcmp(p, b->prefix, b->prefix_len) == 0)
	{
		b->prefix = (char *) p;	/* the longer one */
		b->prefix_len = len;
	}
	else if (!(len < b->prefix_len && memcmp(b->prefix, p, len) == 0))
		b->empty = true;		/* neither extends the other */
}

static void
apply_lo(FdwBounds *b, const char *v, int len, bool incl)
{
	int			c;

	if (b->lo == NULL || (c = bytes_cmp(v, len, b->lo, b->lo_len)) > 0 || (c == 0 && !incl))
	{
		b->lo = (char *) v;
		b->lo_len = len;
		b->lo_incl = incl;
	}
}

static void
apply_hi(FdwBounds *b, const char *v, int len, bool incl)
{
	int			c;

	if (b->hi == NULL || (c = bytes_cmp(v, len, b->hi, b->hi_len)) < 0 || (c == 0 && !incl))
	{
		b->hi = (char *) v;
		b->hi_len = len;
		b->hi_incl = incl;
	}
}

static int64
ts_value(Datum v, Oid type)
{
	switch (type)
	{
		case INT2OID:
			return DatumGetInt16(v);
		case INT4OID:
			return DatumGetInt32(v);
		default:
			return DatumGetInt64(v);	/* int8, timestamp, timestamptz */
	}
}

void
fdw_bounds_apply(FdwBounds *b, FdwCondKind kind, Datum v, bool isnull, Oid value_type)
{
	if (isnull)
	{
		b->empty = true;		/* a comparison with NULL is never true */
		return;
	}
	switch (kind)
	{
		case FDW_KEY_EQ:
			{
				text	  **k = palloc(sizeof(text *));

				k[0] = DatumGetTextPP(v);
				intersect_keys(b, k, 1);
				break;
			}
		case FDW_KEY_IN:
			{
				ArrayType  *a = DatumGetArrayTypeP(v);
				Datum	   *elems;
				bool	   *nulls;
				int			n,
							m = 0;
				text	  **k;
				int16		typlen;
				bool		typbyval;
				char		typalign;

				get_typlenbyvalalign(ARR_ELEMTYPE(a), &typlen, &typbyval, &typalign);
				deconstruct_array(a, ARR_ELEMTYPE(a), typlen, typbyval, typalign,
								  &elems, &nulls, &n);
				k = palloc(sizeof(text *) * Max(n, 1));
				for (int i = 0; i < n; i++)
					if (!nulls[i])
						k[m++] = DatumGetTextPP(elems[i]);
				intersect_keys(b, k, m);
				break;
			}
		case FDW_KEY_PREFIX:
			{
				text	   *p = DatumGetTextPP(v);

				apply_prefix(b, VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p));
				break;
			}
		case FDW_KEY_LIKE:
			{
				text	   *p = DatumGetTextPP(v);
				char	   *prefix;
				int			plen;
				bool		whole,
							eq;

				if (!fdw_like_prefix(VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p), &prefix, &plen,
									 &whole, &eq))
					break;		/* malformed: the local LIKE raises the error */
				if (eq)
				{
					text	  **k = palloc(sizeof(text *));

					k[0] = cstring_to_text_with_len(prefix, plen);
					intersect_keys(b, k, 1);
				}
				else
					apply_prefix(b, prefix, plen);
				break;
			}
		case FDW_KEY_LT:
		case FDW_KEY_LE:
			{
				text	   *p = DatumGetTextPP(v);

				apply_hi(b, VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p), kind == FDW_KEY_LE);
				break;
			}
		case FDW_KEY_GT:
		case FDW_KEY_GE:
			{
				text	   *p = DatumGetTextPP(v);

				apply_lo(b, VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p), kind == FDW_KEY_GE);
				break;
			}
		case FDW_TS_EQ:
		case FDW_TS_LT:
		case FDW_TS_LE:
		case FDW_TS_GT:
		case FDW_TS_GE:
			{
				int64		x = ts_value(v, value_type);

				if (kind == FDW_TS_LT)
				{
					if (x == PG_INT64_MIN)
						b->empty = true;
					else
						x--;
				}
				else if (kind == FDW_TS_GT)
				{
					if (x == PG_INT64_MAX)
						b->empty = true;
					else
						x++;
				}
				if (kind != FDW_TS_GT && kind != FDW_TS_GE)
					b->ts_max = Min(b->ts_max, x);
				if (kind != FDW_TS_LT && kind != FDW_TS_LE)
					b->ts_min = Max(b->ts_min, x);
				break;
			}
	}
}

static bool
key_in_range(const FdwBounds *b, const char *k, int len)
{
	int			c;

	if (len == 0)
		return false;			/* stored keys are never empty */
	if (b->prefix && (len < b->prefix_len || memcmp(k, b->prefix, b->prefix_len) != 0))
		return false;
	if (b->lo && ((c = bytes_cmp(k, len, b->lo, b->lo_len)) < 0 || (c == 0 && !b->lo_incl)))
		return false;
	if (b->hi && ((c = bytes_cmp(k, len, b->hi, b->hi_len)) > 0 || (c == 0 && !b->hi_incl)))
		return false;
	return true;
}

void
fdw_bounds_finish(FdwBounds *b)
{
	if (b->ts_min > b->ts_max)
		b->empty = true;
	if (b->empty)
		return;
	if (b->has_keys)
	{
		int			m = 0;

		for (int i = 0; i < b->nkeys; i++)
			if (key_in_range(b, VARDATA_ANY(b->keys[i]), VARSIZE_ANY_EXHDR(b->keys[i])))
				b->keys[m++] = b->keys[i];
		b->nkeys = m;
		if (m == 0)
			b->empty = true;
		return;
	}
	if (b->lo && b->hi)
	{
		int			c = bytes_cmp(b->lo, b->lo_len, b->hi, b->hi_len);

		if (c > 0 || (c == 0 && !(b->lo_incl && b->hi_incl)))
			b->empty = true;
	}
}

/* ------------------------------------------------------- order and limit */

/*
 * The scan's direction if it produces `pathkeys` (1 ascending, -1
 * descending), else 0.  The engine returns rows by key then ts, both
 * ascending or (reverse) both descending.  Accepted: [key], [key, ts], and
 * [ts] when the scan reads a single key (`single_key`).  Key order counts
 * only under a bytewise collation.  key and ts are never NULL, so NULLS
 * FIRST / LAST do not matter.
 */
int
fdw_match_pathkeys(RelOptInfo *rel, const FdwTable *t, bool single_key, List *pathkeys)
{
	int			dir = 0;
	bool		saw_key = false,
				saw_ts = false;
	ListCell   *lc;

	foreach(lc, pathkeys)
	{
		PathKey    *pk = lfirst(lc);
		EquivalenceClass *ec = pk->pk_eclass;
		AttrNumber	att = 0;
		int			d;
		ListCell   *m;

		if (ec->ec_has_volatile)
			return 0;
		foreach(m, ec->ec_members)
		{
			EquivalenceMember *em = lfirst(m);

			if (bms_equal(em->em_relids, rel->relids) &&
				(att = our_column((Node *) em->em_expr, rel->relid)) != 0)
				break;
		}
		d = pk->pk_strategy == BTLessStrategyNumber ? 1 : -1;
		if (dir != 0 && d != dir)
			return 0;
		dir = d;
		if (att == t->key_attno && att != 0)
		{
			if (saw_key || saw_ts || pk->pk_opfamily != TEXT_BTREE_FAM_OID ||
				!lc_collate_is_c(ec->ec_collation))
				return 0;
			saw_key = true;
		}
		else if (att == t->ts_attno && att != 0)
		{
			if (saw_ts || (!saw_key && !single_key) || pk->pk_opfamily != ts_opfamily(t->ts_type))
				return 0;
			saw_ts = true;
		}
		else
			return 0;
	}
	return dir;
}

/*
 * Can the query's LIMIT (plus OFFSET) bound this scan?  Only when the scan's
 * output is exactly the query's input to LIMIT: a plain SELECT of this one
 * relation, nothing that changes row counts between (grouping, aggregates,
 * window functions, DISTINCT, set-returning functions, row locks), every
 * WHERE clause enforced by the scan, and the scan already in the query's
 * order.  The caller checks the last two.
 */
bool
fdw_limit_pushable(PlannerInfo *root, RelOptInfo *rel)
{
	Query	   *q = root->parse;

	if (q->commandType != CMD_SELECT || q->limitCount == NULL ||
		q->limitOption != LIMIT_OPTION_COUNT ||
		q->groupClause || q->groupingSets || q->distinctClause || q->hasAggs ||
		q->hasWindowFuncs || q->hasTargetSRFs || q->havingQual || q->setOperations ||
		q->rowMarks || root->hasHavingQual ||
		rel->reloptkind != RELOPT_BASEREL ||
		bms_membership(root->all_baserels) != BMS_SINGLETON)
		return false;
	if (!fdw_is_runtime_value((Expr *) q->limitCount, rel->relid, NULL))
		return false;
	if (q->limitOffset && !fdw_is_runtime_value((Expr *) q->limitOffset, rel->relid, NULL))
		return false;
	return true;
}
