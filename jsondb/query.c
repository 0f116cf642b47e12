/*
 * query.c — jsondb.query(store, filter, order_by, direction, lim, off) and
 * jsondb.explain(store, filter, order_by).
 *
 * Filter: a JSON object {path: condition, ...}, all conditions must hold.
 * A condition is a constant (equality) or an object of operators $eq, $ne,
 * $gt, $gte, $lt, $lte, $in (array of constants).  Semantics, identical
 * whether or not an index is used:
 *   - the candidates of a document for a path are the elements of the value
 *     there if it is an array, else the value itself (none if missing);
 *   - a condition holds if one candidate satisfies all of its $eq / $in /
 *     range operators, and no candidate equals a $ne constant;
 *   - constants that are valid keys compare as IndexedDB keys; range
 *     operators only match candidates of the constant's key type (a number
 *     bound never matches a string); booleans, null and objects can only be
 *     tested for (JSON) equality.
 * Results are ordered by the order_by path's value as a key (documents
 * without a valid key there last), then by primary key; direction 'prev'
 * reverses; then off and lim apply.
 *
 * QPlan: an index fits a condition on its path with a key constant: a
 * unique or plain index on equality, a multi-entry index on equality/$in or
 * a range, a composite index when every one of its paths has an equality.
 * Preference: unique equality, composite, equality/$in, range; otherwise a
 * full scan.  A non-multi-entry index holds an array value as one array key,
 * while the filter looks at its elements: such documents are found by also
 * scanning the index's array-key section for each component (normally
 * empty).  Every candidate document is checked against the whole filter.
 */
#include "jsondb.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(jsondb_query);
PG_FUNCTION_INFO_V1(jsondb_explain);

typedef enum
{
	OP_EQ,
	OP_NE,
	OP_GT,
	OP_GTE,
	OP_LT,
	OP_LTE
} OpKind;

typedef struct Op
{
	OpKind		kind;
	JsonbValue	val;
	StringInfo	key;			/* encoded if val is a valid key, else NULL */
	List	   *in;				/* $in: List of Op (OP_EQ) */
} Op;

typedef struct Cond
{
	char	   *path_text;
	JdbPath		path;
	List	   *ops;
} Cond;

typedef struct QPlan
{
	JdbIndex   *ix;
	List	   *ranges;			/* List of JdbRange* (engine bounds) */
	const char *how;
	int			rank;			/* preference: 0 full scan .. 6 unique equality */
} QPlan;

/* ------------------------------------------------------------- parsing */

static Op *
make_op(OpKind k, JsonbValue *v)
{
	Op		   *op = palloc0(sizeof(Op));
	StringInfo	key = makeStringInfo();
	const char *why;

	op->kind = k;
	op->val = *v;
	if (jdb_encode_value(v, key, &why))
		op->key = key;
	else if (k != OP_EQ && k != OP_NE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("jsondb.query: a range operator needs a valid key as its bound: %s", why)));
	return op;
}

static bool
is_operator_object(JsonbValue *v)
{
	JsonbIterator *it;
	JsonbValue	k;
	JsonbIteratorToken tok;
	bool		ops = false;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		return false;
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		if (tok == WJB_KEY)
		{
			if (k.val.string.len > 1 && k.val.string.val[0] == '$' &&
				strncmp(k.val.string.val, "$date", k.val.string.len) != 0 &&
				strncmp(k.val.string.val, "$binary", k.val.string.len) != 0 &&
				strncmp(k.val.string.val, "$number", k.val.string.len) != 0)
				ops = true;
		}
	return ops;
}

static List *
parse_filter(Jsonb *filter)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	List	   *conds = NIL;

	if (!JB_ROOT_IS_OBJECT(filter))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("jsondb.query: the filter must be a JSON object {path: condition}")));
	it = JsonbIteratorInit(&filter->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		Cond	   *c;

		if (tok != WJB_KEY)
			continue;
		(void) JsonbIteratorNext(&it, &v, true);
		c = palloc0(sizeof(Cond));
		c->path_text = pnstrdup(k.val.string.val, k.val.string.len);
		jdb_path_parse(c->path_text, &c->path, "a filter");
		if (!is_operator_object(&v))
			c->ops = list_make1(make_op(OP_EQ, &v));
		else
		{
			JsonbIterator *oi = JsonbIteratorInit(v.val.binary.data);
			JsonbValue	ok,
						ov;

			while ((tok = JsonbIteratorNext(&oi, &ok, true)) != WJB_DONE)
			{
				char	   *name;

				if (tok != WJB_KEY)
					continue;
				(void) JsonbIteratorNext(&oi, &ov, true);
				name = pnstrdup(ok.val.string.val, ok.val.string.len);
				if (strcmp(name, "$eq") == 0)
					c->ops = lappend(c->ops, make_op(OP_EQ, &ov));
				else if (strcmp(name, "$ne") == 0)
					c->ops = lappend(c->ops, make_op(OP_NE, &ov));
				else if (strcmp(name, "$gt") == 0)
					c->ops = lappend(c->ops, make_op(OP_GT, &ov));
				else if (strcmp(name, "$gte") == 0)
					c->ops = lappend(c->ops, make_op(OP_GTE, &ov));
				else if (strcmp(name, "$lt") == 0)
					c->ops = lappend(c->ops, make_op(OP_LT, &ov));
				else if (strcmp(name, "$lte") == 0)
					c->ops = lappend(c->ops, make_op(OP_LTE, &ov));
				else if (strcmp(name, "$in") == 0)
				{
					Op		   *in = palloc0(sizeof(Op));

					if (ov.type != jbvBinary || !JsonContainerIsArray(ov.val.binary.data) ||
						JsonContainerIsScalar(ov.val.binary.data))
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("jsondb.query: $in needs an array")));
					in->kind = OP_EQ;
					for (int i = 0; i < (int) JsonContainerSize(ov.val.binary.data); i++)
						in->in = lappend(in->in,
										 make_op(OP_EQ, getIthJsonbValueFromContainer(ov.val.binary.data, i)));
					c->ops = lappend(c->ops, in);
				}
				else
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("jsondb.query: unknown operator \"%s\"", name),
							 errhint("Operators: $eq, $ne, $gt, $gte, $lt, $lte, $in.")));
			}
		}
		conds = lappend(conds, c);
	}
	return conds;
}

/* ------------------------------------------------------------ matching */

static bool
json_equal(JsonbValue *a, JsonbValue *b)
{
	Jsonb	   *x = JsonbValueToJsonb(a),
			   *y = JsonbValueToJsonb(b);

	return compareJsonbContainers(&x->root, &y->root) == 0;
}

/* one operator (not $ne) against one candidate */
static bool
op_holds(Op *op, JsonbValue *cand, StringInfo ckey)
{
	int			c;

	if (op->in)
	{
		ListCell   *lc;

		foreach(lc, op->in)
			if (op_holds(lfirst(lc), cand, ckey))
				return true;
		return false;
	}
	if (op->key == NULL)
		return op->kind == OP_EQ && json_equal(&op->val, cand);
	if (ckey == NULL)
		return false;
	if (op->kind == OP_EQ)
		return ckey->len == op->key->len && memcmp(ckey->data, op->key->data, ckey->len) == 0;
	if (ckey->data[0] != op->key->data[0])
		return false;			/* ranges stay within the constant's key type */
	c = flowdb_key_cmp((uint8 *) ckey->data, ckey->len, (uint8 *) op->key->data, op->key->len);
	switch (op->kind)
	{
		case OP_GT:
			return c > 0;
		case OP_GTE:
			return c >= 0;
		case OP_LT:
			return c < 0;
		case OP_LTE:
			return c <= 0;
		default:
			return false;
	}
}

static bool
cond_holds(Cond *c, Jsonb *doc)
{
	JsonbValue	v;
	JsonbValue *cands;
	int			ncands = 0;
	StringInfo *keys;
	bool		has_positive = false;
	ListCell   *lc;

	if (jdb_path_value(doc, &c->path, &v))
	{
		if (v.type == jbvBinary && JsonContainerIsArray(v.val.binary.data) &&
			!JsonContainerIsScalar(v.val.binary.data))
		{
			int			n = JsonContainerSize(v.val.binary.data);

			cands = palloc(Max(n, 1) * sizeof(JsonbValue));
			for (int i = 0; i < n; i++)
				cands[ncands++] = *getIthJsonbValueFromContainer(v.val.binary.data, i);
		}
		else
		{
			cands = palloc(sizeof(JsonbValue));
			cands[ncands++] = v;
		}
	}
	else
		cands = NULL;
	keys = palloc0(Max(ncands, 1) * sizeof(StringInfo));
	for (int i = 0; i < ncands; i++)
	{
		StringInfo	k = makeStringInfo();
		const char *why;

		keys[i] = jdb_encode_value(&cands[i], k, &why) ? k : NULL;
	}
	foreach(lc, c->ops)
	{
		Op		   *op = lfirst(lc);

		if (op->kind == OP_NE)
		{
			for (int i = 0; i < ncands; i++)
				if (op->key ? (keys[i] && keys[i]->len == op->key->len &&
							   memcmp(keys[i]->data, op->key->data, keys[i]->len) == 0)
					: json_equal(&op->val, &cands[i]))
					return false;
		}
		else
			has_positive = true;
	}
	if (!has_positive)
		return true;
	for (int i = 0; i < ncands; i++)
	{
		bool		all = true;

		foreach(lc, c->ops)
		{
			Op		   *op = lfirst(lc);

			if (op->kind != OP_NE && !op_holds(op, &cands[i], keys[i]))
			{
				all = false;
				break;
			}
		}
		if (all)
			return true;
	}
	return false;
}

static bool
filter_holds(List *conds, Jsonb *doc)
{
	ListCell   *lc;

	foreach(lc, conds)
		if (!cond_holds(lfirst(lc), doc))
			return false;
	return true;
}

/* ------------------------------------------------------------ planning */

static bool
path_equal(const JdbPath *a, const JdbPath *b)
{
	if (a->nsegs != b->nsegs)
		return false;
	for (int i = 0; i < a->nsegs; i++)
		if (strcmp(a->segs[i], b->segs[i]) != 0)
			return false;
	return true;
}

static Cond *
cond_for(List *conds, const JdbPath *p)
{
	ListCell   *lc;

	foreach(lc, conds)
	{
		Cond	   *c = lfirst(lc);

		if (path_equal(&c->path, p))
			return c;
	}
	return NULL;
}

/* the key-valid equality constant of c, if any */
static Op *
cond_eq(Cond *c)
{
	ListCell   *lc;

	if (c == NULL)
		return NULL;
	foreach(lc, c->ops)
	{
		Op		   *op = lfirst(lc);

		if (op->kind == OP_EQ && op->in == NULL && op->key && op->key->data[0] != JDB_TAG_ARRAY)
			return op;
	}
	return NULL;
}

static Op *
cond_in(Cond *c)
{
	ListCell   *lc;

	if (c == NULL)
		return NULL;
	foreach(lc, c->ops)
	{
		Op		   *op = lfirst(lc);
		ListCell   *l2;
		bool		ok = op->in != NIL;

		foreach(l2, op->in)
		{
			Op		   *e = lfirst(l2);

			if (e->key == NULL || e->key->data[0] == JDB_TAG_ARRAY)
				ok = false;
		}
		if (ok)
			return op;
	}
	return NULL;
}

static JdbRange *
range_new(StringInfo pre, StringInfo lo, bool lo_open, StringInfo hi, bool hi_open)
{
	JdbRange   *r = palloc0(sizeof(JdbRange));

	jdb_range_make(r, pre->data, pre->len, lo, lo_open, hi, hi_open);
	return r;
}

/* the type-bounded range of c's range operators, if any */
static bool
cond_range(Cond *c, StringInfo pre, List **ranges)
{
	StringInfo	lo = NULL,
				hi = NULL;
	bool		lo_open = false,
				hi_open = false;
	uint8		tag = 0;
	ListCell   *lc;
	StringInfoData tlo,
				thi;

	if (c == NULL)
		return false;
	foreach(lc, c->ops)
	{
		Op		   *op = lfirst(lc);

		if (op->in || op->key == NULL || op->kind == OP_EQ || op->kind == OP_NE ||
			op->key->data[0] == JDB_TAG_ARRAY)
			continue;
		if (tag && tag != (uint8) op->key->data[0])
			return false;		/* mixed types: nothing matches; let the scan say so */
		tag = op->key->data[0];
		if (op->kind == OP_GT || op->kind == OP_GTE)
		{
			if (lo == NULL || flowdb_key_cmp((uint8 *) op->key->data, op->key->len,
											 (uint8 *) lo->data, lo->len) > 0)
			{
				lo = op->key;
				lo_open = op->kind == OP_GT;
			}
		}
		else if (hi == NULL || flowdb_key_cmp((uint8 *) op->key->data, op->key->len,
											  (uint8 *) hi->data, hi->len) < 0)
		{
			hi = op->key;
			hi_open = op->kind == OP_LT;
		}
	}
	if (!tag)
		return false;
	/* bound the open side by the key type's section [tag, tag + 1) */
	initStringInfo(&tlo);
	appendStringInfoChar(&tlo, (char) tag);
	initStringInfo(&thi);
	appendStringInfoChar(&thi, (char) (tag + 1));
	*ranges = list_make1(range_new(pre, lo ? lo : &tlo, lo ? lo_open : false,
								   hi ? hi : &thi, hi ? hi_open : true));
	return true;
}

/* array-key sections of a non-multi-entry index for components 0..n-1,
 * with equality prefix eqs[0..i-1] */
static void
add_array_sections(QPlan *p, StringInfo pre, JdbIndex *ix, Op **eqs, int n)
{
	StringInfoData alo,
				ahi;

	if (ix->multi_entry)
		return;
	if (!ix->kp.is_array)
	{
		initStringInfo(&alo);
		appendStringInfoChar(&alo, JDB_TAG_ARRAY);
		initStringInfo(&ahi);
		appendStringInfoChar(&ahi, JDB_TAG_ARRAY + 1);
		p->ranges = lappend(p->ranges, range_new(pre, &alo, false, &ahi, true));
		return;
	}
	for (int i = 0; i < n; i++)
	{
		StringInfo	lo = makeStringInfo(),
					hi = makeStringInfo();

		appendStringInfoChar(lo, JDB_TAG_ARRAY);
		for (int j = 0; j < i; j++)
			appendBinaryStringInfo(lo, eqs[j]->key->data, eqs[j]->key->len);
		appendBinaryStringInfo(hi, lo->data, lo->len);
		appendStringInfoChar(lo, JDB_TAG_ARRAY);
		appendStringInfoChar(hi, JDB_TAG_ARRAY + 1);
		p->ranges = lappend(p->ranges, range_new(pre, lo, false, hi, true));
	}
}

/*
 * Documents whose index key is longer than this are left out of the index
 * (docs.c): an equality on such a key cannot use the index.
 */
#define MAX_INDEXED_KEY (LSM_MAX_KEY_SIZE / 2)

static bool
indexable_key(StringInfo k)
{
	return k->len <= (int) MAX_INDEXED_KEY;
}

/*
 * arrays: also read the array-key sections of non-multi-entry indexes
 * (documents whose value at a path is an array, whose elements the filter
 * tests).  Callers whose conditions never hold for an array value skip them.
 */
static QPlan
plan_query(JdbStore *s, List *conds, bool arrays)
{
	QPlan		best = {NULL, NIL, "full scan", 0};
	int			best_rank = 0;

	for (int i = 0; i < s->nindexes; i++)
	{
		JdbIndex   *ix = &s->indexes[i];
		StringInfoData pre;
		QPlan		p = {ix, NIL, NULL, 0};
		int			rank = 0;

		initStringInfo(&pre);
		jdb_index_prefix(s, ix, &pre);
		if (ix->kp.is_array)
		{
			Op		  **eqs = palloc(ix->kp.npaths * sizeof(Op *));
			StringInfoData k;

			if (ix->multi_entry)
				continue;
			initStringInfo(&k);
			appendStringInfoChar(&k, JDB_TAG_ARRAY);
			for (int j = 0; j < ix->kp.npaths; j++)
			{
				eqs[j] = cond_eq(cond_for(conds, &ix->kp.paths[j]));
				if (eqs[j] == NULL)
					break;
				appendBinaryStringInfo(&k, eqs[j]->key->data, eqs[j]->key->len);
			}
			if (eqs[ix->kp.npaths - 1] == NULL)
				continue;
			for (int j = 0; j < ix->kp.npaths; j++)
				if (eqs[j] == NULL)
					goto next;
			appendStringInfoChar(&k, JDB_KEY_END);
			if (!indexable_key(&k))
				continue;
			p.ranges = list_make1(range_new(&pre, &k, false, &k, false));
			if (arrays)
				add_array_sections(&p, &pre, ix, eqs, ix->kp.npaths);
			p.how = "index equality (composite)";
			rank = ix->unique ? 5 : 4;
		}
		else
		{
			Cond	   *c = cond_for(conds, &ix->kp.paths[0]);
			Op		   *eq = cond_eq(c);
			Op		   *in = eq ? NULL : cond_in(c);

			if (c == NULL || ix->kp.paths[0].nsegs == 0)
				continue;
			if (eq && !indexable_key(eq->key))
				eq = NULL;		/* such documents are not in the index */
			if (in)
			{
				ListCell   *lc;

				foreach(lc, in->in)
					if (!indexable_key(((Op *) lfirst(lc))->key))
						in = NULL;
			}
			if (eq)
			{
				p.ranges = list_make1(range_new(&pre, eq->key, false, eq->key, false));
				p.how = "index equality";
				rank = ix->unique ? 6 : 3;
			}
			else if (in)
			{
				ListCell   *lc;

				foreach(lc, in->in)
				{
					Op		   *e = lfirst(lc);

					p.ranges = lappend(p.ranges, range_new(&pre, e->key, false, e->key, false));
				}
				p.how = "index $in";
				rank = 2;
			}
			else if (cond_range(c, &pre, &p.ranges))
			{
				p.how = "index range";
				rank = 1;
			}
			else
				continue;
			if (arrays)
				add_array_sections(&p, &pre, ix, NULL, 1);
		}
		if (rank > best_rank)
		{
			best = p;
			best.rank = rank;
			best_rank = rank;
		}
next:	;
	}
	return best;
}

/*
 * The index plan of a JSON filter, for callers other than jsondb.query (the
 * store foreign tables): the same parsing and the same index choice.  Every
 * document matching the filter is among the documents of out->ranges of
 * out->ix (full scan when out->ix is NULL); the ranges may yield a document
 * more than once (multi-entry, $in) and documents that do not match.
 * Without arrays, documents whose value at a filtered path is an array (not
 * in a multi-entry index) may be missing: for conditions false on arrays.
 */
void
jdb_plan_filter(JdbStore *s, Jsonb *filter, bool arrays, JdbFilterPlan *out)
{
	QPlan		p = plan_query(s, parse_filter(filter), arrays);

	out->ix = p.ix;
	out->ranges = p.ranges;
	out->how = p.how;
	out->rank = p.rank;
}

/* ------------------------------------------------------------ execution */

typedef struct Hit
{
	StringInfo	sort;			/* encoded order_by key or NULL */
	StringInfo	pk;
	Jsonb	   *doc;
} Hit;

typedef struct Collect
{
	List	   *conds;
	JdbPath    *order;
	Hit		   *hits;
	int			n,
				cap;
} Collect;

static void
collect(Collect *c, const uint8 *pk, int pklen, Jsonb *doc)
{
	Hit		   *h;

	if (!filter_holds(c->conds, doc))
		return;
	if (c->n == c->cap)
	{
		c->cap = c->cap ? c->cap * 2 : 64;
		c->hits = c->hits ? repalloc(c->hits, c->cap * sizeof(Hit)) : palloc(c->cap * sizeof(Hit));
	}
	h = &c->hits[c->n++];
	h->pk = makeStringInfo();
	appendBinaryStringInfo(h->pk, (const char *) pk, pklen);
	h->doc = doc;
	h->sort = NULL;
	if (c->order)
	{
		JsonbValue	v;
		StringInfo	k = makeStringInfo();
		const char *why;

		if (jdb_path_value(doc, c->order, &v) && jdb_encode_value(&v, k, &why))
			h->sort = k;
	}
}

static bool
index_visit(void *arg, const uint8 *ik, int iklen, const uint8 *pk, int pklen, Jsonb *doc)
{
	collect(arg, pk, pklen, doc);
	return true;
}

static int
hit_cmp(const void *a, const void *b)
{
	const Hit  *x = a,
			   *y = b;
	int			c;

	if ((x->sort == NULL) != (y->sort == NULL))
		return x->sort == NULL ? 1 : -1;
	if (x->sort)
	{
		c = flowdb_key_cmp((uint8 *) x->sort->data, x->sort->len, (uint8 *) y->sort->data, y->sort->len);
		if (c != 0)
			return c;
	}
	return flowdb_key_cmp((uint8 *) x->pk->data, x->pk->len, (uint8 *) y->pk->data, y->pk->len);
}


static QPlan
setup(FunctionCallInfo fcinfo, JdbStore **s, List **conds, JdbPath **order, const char *what)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("jsondb.%s: store and filter must not be NULL", what)));
	jdb_txn_begin();
	*s = jdb_store_lookup_text(PG_GETARG_TEXT_PP(0));
	*conds = parse_filter(PG_GETARG_JSONB_P(1));
	*order = NULL;
	if (PG_NARGS() > 2 && !PG_ARGISNULL(2))
	{
		*order = palloc(sizeof(JdbPath));
		jdb_path_parse(text_to_cstring(PG_GETARG_TEXT_PP(2)), *order, "order_by");
	}
	return plan_query(*s, *conds, true);
}

/* query(store, filter, order_by, direction, lim, off) -> setof jsonb */
Datum
jsondb_query(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	JdbStore   *s;
	List	   *conds;
	JdbPath    *order;
	QPlan		plan = setup(fcinfo, &s, &conds, &order, "query");
	Collect		c = {0};
	bool		reverse = false;
	int64		lim = PG_ARGISNULL(4) ? 0 : PG_GETARG_INT64(4);
	int64		off = PG_ARGISNULL(5) ? 0 : PG_GETARG_INT64(5);
	Tuplestorestate *ts;
	TupleDesc	desc;
	MemoryContext old;
	int64		emitted = 0;

	if (!PG_ARGISNULL(3))
	{
		char	   *d = text_to_cstring(PG_GETARG_TEXT_PP(3));

		if (strcmp(d, "prev") == 0)
			reverse = true;
		else if (strcmp(d, "next") != 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("jsondb.query: direction must be next or prev")));
	}
	if (lim < 0 || off < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("jsondb.query: lim and off must be >= 0")));
	c.conds = conds;
	c.order = order;
	if (plan.ix)
	{
		ListCell   *lc;

		foreach(lc, plan.ranges)
			jdb_scan_index_range(s, plan.ix, lfirst(lc), 0, index_visit, &c);
	}
	else
	{
		StringInfoData pre;
		JdbScan    *sc;
		lsm_record	rec;

		initStringInfo(&pre);
		jdb_sub_prefix(s, 'd', &pre);
		sc = jdb_scan_open((uint8 *) pre.data, pre.len, NULL, 0, false, NULL, 0, false, false);
		while (jdb_scan_next(sc, &rec))
		{
			CHECK_FOR_INTERRUPTS();
			if (jdb_scan_tracks(&rec))
				jdb_track(rec.key, rec.key_len, rec.value, rec.value_len, true);
			collect(&c, rec.key + 10, rec.key_len - 10, jdb_doc_decode(rec.value, rec.value_len, NULL));
		}
		jdb_scan_close(sc);
	}
	qsort(c.hits, c.n, sizeof(Hit), hit_cmp);

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) || !(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("jsondb.query: set-valued function called in a context that cannot accept a set")));
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	desc = CreateTemplateTupleDesc(1);
	TupleDescInitEntry(desc, (AttrNumber) 1, "doc", JSONBOID, -1, 0);
	desc = BlessTupleDesc(desc);
	ts = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = ts;
	rsinfo->setDesc = desc;
	MemoryContextSwitchTo(old);
	for (int i = 0, skipped = 0; i < c.n; i++)
	{
		Hit		   *h = &c.hits[reverse ? c.n - 1 - i : i];
		Datum		v = JsonbPGetDatum(h->doc);
		bool		isnull = false;

		/* a multi-entry / $in scan can meet a document twice */
		if (i > 0 && hit_cmp(h, &c.hits[reverse ? c.n - i : i - 1]) == 0)
			continue;
		if (skipped < off)
		{
			skipped++;
			continue;
		}
		if (lim && emitted >= lim)
			break;
		tuplestore_putvalues(ts, desc, &v, &isnull);
		emitted++;
	}
	return (Datum) 0;
}

/* explain(store, filter, order_by) -> jsonb {"index", "plan", "ranges"} */
Datum
jsondb_explain(PG_FUNCTION_ARGS)
{
	JdbStore   *s;
	List	   *conds;
	JdbPath    *order;
	QPlan		plan = setup(fcinfo, &s, &conds, &order, "explain");
	StringInfoData out;

	initStringInfo(&out);
	appendStringInfoString(&out, "{\"store\": ");
	escape_json(&out, s->name);
	appendStringInfoString(&out, ", \"index\": ");
	if (plan.ix)
		escape_json(&out, plan.ix->name);
	else
		appendStringInfoString(&out, "null");
	appendStringInfoString(&out, ", \"plan\": ");
	escape_json(&out, plan.how);
	appendStringInfo(&out, ", \"ranges\": %d}", list_length(plan.ranges));
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}
