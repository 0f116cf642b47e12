/*
 * store_fdw_scan.c — what a store table's scan reads, once the values of its
 * pushed conditions are known (at the scan's start; with stand-ins at plan
 * time for estimates).
 *
 * Nothing is ever removed from the local quals: a pushed clause only chooses
 * which documents are read, and Postgres checks every clause on every
 * document read.  So the invariant is one-sided: every document for which
 * the clause is true must be among the documents read.
 *
 * Document conditions become a jsondb.query filter, planned by query.c's
 * planner (the same index choice):
 *   - text equality with c: a JSON string equal to c, or a number whose text
 *     is c (c is plain decimal, as numeric_out prints), and nothing else, can
 *     have ->> = c; c that could be the text of a boolean, an object or an
 *     array is not pushed (those are not index keys).  Filter: {"a": "c"} or
 *     {"a": {"$in": ["c", c]}}.
 *   - numeric casts: the index holds numbers as doubles, converted like the
 *     bound (monotonically), so bounds become closed; integer casts of jsonb
 *     widen them by 1 (jsonb -> int rounds; text -> int takes only
 *     integers), and past 2^52 by two more units in the last place.  ->> then a cast also accepts strings such as "30":
 *     the whole string section of the index is read as well.
 *   - no pushed condition holds for an array value, so the array-key
 *     sections of non-multi-entry indexes are not read; documents whose
 *     value encodes to more than 4 KiB are not indexed, so an equality on
 *     such a value does not use an index (query.c).
 * Key conditions become key sets (store_fdw_keyset.c).
 * Preference: key points > index equality / IN / composite > key ranges >
 * index range > full scan.
 */
#include "jsondb.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "nodes/nodeFuncs.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/json.h"
#include "utils/numeric.h"

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

static void
jpath_add(StringInfo path, const char *seg, int len)
{
	if (path->len > 0)
		appendStringInfoChar(path, '.');
	appendBinaryStringInfo(path, seg, len);
}

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

/*
 * doc[path] @> c: the string and number leaves of object c, reached through
 * objects only, are equalities at their paths (jsonb containment compares a
 * scalar with the value at the same place, numbers numerically).  Arrays,
 * booleans and nulls give no condition (a superset); a key that is not an
 * identifier stops the walk there.
 */
static void
add_contains_object(List **paths, StringInfo prefix, JsonbContainer *obj)
{
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		int			plen = prefix->len;

		if (tok != WJB_KEY)
			continue;
		(void) JsonbIteratorNext(&it, &v, true);
		if (!jdb_fdw_segment_ok(k.val.string.val, k.val.string.len))
			continue;
		jpath_add(prefix, k.val.string.val, k.val.string.len);
		if (v.type == jbvString || v.type == jbvNumeric)
		{
			Jsonb	   *leaf = JsonbValueToJsonb(&v);

			add_op(path_conds(paths, prefix->data), "$eq",
				   JsonbToCString(NULL, &leaf->root, 0), "=");
		}
		else if (v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
			add_contains_object(paths, prefix, v.val.binary.data);
		prefix->len = plen;
		prefix->data[plen] = '\0';
	}
}

static void
add_contains(List **paths, JdbQual *q, Jsonb *c)
{
	StringInfoData prefix;

	if (!JB_ROOT_IS_OBJECT(c))
		return;
	initStringInfo(&prefix);
	if (q->path)
		appendStringInfoString(&prefix, q->path);
	add_contains_object(paths, &prefix, &c->root);
}

static void
add_num_cmp(List **paths, JdbQual *q, Datum v, Oid type)
{
	double		d = value_double(v, type);
	PathConds  *p;
	StringInfoData lo,
				hi;
	bool		rounds;

	/* jsonb -> int rounds (29.5 is 30); text -> int only takes integers */
	rounds = q->int_cast && !q->from_text;
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
		!json_number(&lo, widen(d, true, rounds)))
		resetStringInfo(&lo);
	if (q->strategy != BTGreaterStrategyNumber && q->strategy != BTGreaterEqualStrategyNumber &&
		!json_number(&hi, widen(d, false, rounds)))
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

/*
 * The scan for quals with values (values[i] / nulls[i] for quals' i-th;
 * unknown[i]: not known yet, at plan time — a neutral stand-in is used).
 */
void
jdb_fdw_make_scan(JdbStore *s, List *quals, Datum *values, bool *nulls, bool *unknown,
				  JdbScanPlan *out)
{
	List	   *keys = jdb_keyset_all();
	List	   *paths = NIL;
	ListCell   *lc;
	int			i = 0;
	StringInfoData filter,
				pre,
				shown;
	PathConds  *ranged = NULL;
	bool		arrays = false; /* containment: also the array-key sections */

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
				keys = jdb_keyset_intersect(keys, unknown[i] ? jdb_keyset_stand_in() :
											jdb_keyset_cmp(q->strategy, DatumGetJsonbP(v)));
				break;
			case JDB_Q_CONTAINS:
				if (!unknown[i])
					add_contains(&paths, q, DatumGetJsonbP(v));
				arrays = true;
				break;
			case JDB_Q_KEY_IN:
				keys = jdb_keyset_intersect(keys, unknown[i] ? jdb_keyset_stand_in() :
											jdb_keyset_in(v));
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
	/* no condition but containment holds for an array value (->> gives
	 * "[...]", a cast fails): only then are the array-key sections read */
	out->filter = paths ? filter.data : NULL;
	if (paths == NIL)
	{
		out->ix.ix = NULL;
		out->ix.how = "full scan";
	}
	else
		jdb_plan_filter(s, DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
															  CStringGetDatum(filter.data))),
						arrays, &out->ix);

	/* key points > index equality > key ranges > index range > full scan */
	out->key_points = jdb_keyset_is_points(keys);
	if (out->key_points || (!jdb_keyset_is_all(keys) && out->ix.rank < 2))
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
			char		strings_lo[1],
						strings_hi[1];
			StringInfoData lo = {strings_lo, 1, 1, 0},
						hi = {strings_hi, 1, 1, 0};

			initStringInfo(&pre);
			jdb_index_prefix(s, ix, &pre);
			strings_lo[0] = JDB_TAG_STRING;
			strings_hi[0] = JDB_TAG_STRING + 1;
			jdb_range_make(r, pre.data, pre.len, &lo, false, &hi, true);
			out->ix.ranges = lappend(out->ix.ranges, r);
		}
		out->shown = shown.data;
		out->kind = JDB_SCAN_INDEX;
		return;
	}
	initStringInfo(&pre);
	jdb_sub_prefix(s, 'd', &pre);
	out->kind = jdb_keyset_is_all(keys) ? JDB_SCAN_FULL : JDB_SCAN_KEYS;
	out->key_ranges = jdb_keyset_ranges(keys, &pre);
	out->key_set = keys;
	out->shown = out->kind == JDB_SCAN_FULL ? "full scan" : NULL;	/* jdb_fdw_show_scan */
}

/* What EXPLAIN shows of the scan. */
const char *
jdb_fdw_show_scan(const JdbScanPlan *p)
{
	StringInfoData shown;

	if (p->shown)
		return p->shown;
	/* key ranges: rendered only when asked for (each scan start has them) */
	initStringInfo(&shown);
	jdb_keyset_show(&shown, p->key_set);
	return shown.data;
}
