/*
 * store_fdw_keyset.c — the primary keys a comparison on a store table's key
 * column can be true for, as sets of encoded keys: sorted, disjoint
 * intervals.  A NULL bound is unbounded; a one-byte bound T is the start of
 * key type T's section (every key of type T sorts after it, T + 1 after all
 * of them).
 *
 * The key column compares in jsonb's order, not the keys': null < string <
 * number < boolean < array < object, and dates, binary and +-Infinity keys
 * are objects to jsonb.  So a comparison gives whole key-type sections, plus
 * a bound inside the section of the constant's own type where the two
 * orders agree: numbers (the keys are the doubles of the numbers,
 * monotonically), and strings under the C collation when the constant has
 * no code point >= U+D000 (below that, UTF-8 byte order, code point order
 * and UTF-16 code unit order agree).  Every set is a superset: the clause
 * stays a local qual.
 */
#include "jsondb.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/pg_locale.h"

/* Keys k with lo <= k <= hi (< / > where not incl); NULL = unbounded. */
struct JdbKeyInterval
{
	StringInfo	lo;				/* encoded key, or a one-byte type section start */
	bool		lo_incl;
	StringInfo	hi;
	bool		hi_incl;
};
typedef JdbKeyInterval KInt;

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

List *
jdb_keyset_all(void)
{
	return list_make1(kint(NULL, false, NULL, false));
}

List *
jdb_keyset_intersect(List *a, List *b)
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

bool
jdb_keyset_is_all(List *s)
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
List *
jdb_keyset_cmp(int strategy, Jsonb *c)
{
	JsonbValue	sv = {0};
	int			cls = jsonb_class(c, &sv);
	StringInfo	enc = makeStringInfo();
	const char *why;
	bool		below = strategy == BTLessStrategyNumber || strategy == BTLessEqualStrategyNumber;
	List	   *out = NIL;

	if (strategy == BTEqualStrategyNumber)
		return jdb_encode_jsonb(c, enc, &why) ? list_make1(point(enc)) : jdb_keyset_all();
	for (int k = JC_STRING; k <= JC_OBJECT; k++)
		if (below ? k < cls : k > cls)
			out = list_concat(out, class_keys(k));
	if (cls == JC_NUMBER || (cls == JC_STRING && string_order_agrees(&sv)))
	{
		uint8		t = cls == JC_NUMBER ? JDB_TAG_NUMBER : JDB_TAG_STRING;

		if (!jdb_encode_jsonb(c, enc, &why))
			return jdb_keyset_all();
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

List *
jdb_keyset_in(Datum arr)
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
			return jdb_keyset_all();
		out = lappend(out, point(enc));
	}
	return kset_normalize(out);
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


/* One key for a stand-in value (plan time): the number 0. */
List *
jdb_keyset_stand_in(void)
{
	StringInfo	k = makeStringInfo();

	jdb_encode_number(k, 0);
	return list_make1(point(k));
}

/* Is every interval of s a single key? */
bool
jdb_keyset_is_points(List *s)
{
	ListCell   *lc;

	foreach(lc, s)
	{
		KInt	   *k = lfirst(lc);

		if (!(k->lo && k->hi && k->lo_incl && k->hi_incl && bcmp_(k->lo, k->hi) == 0))
			return false;
	}
	return true;
}

/* The engine ranges of s under prefix (a store's documents). */
List *
jdb_keyset_ranges(List *s, StringInfo prefix)
{
	List	   *out = NIL;
	ListCell   *lc;

	foreach(lc, s)
		out = lappend(out, engine_range(prefix, lfirst(lc)));
	return out;
}

/* s for EXPLAIN: keys as JSON, intervals as [lo, hi) with type sections. */
void
jdb_keyset_show(StringInfo out, List *s)
{
	ListCell   *lc;

	foreach(lc, s)
	{
		if (lc != list_head(s))
			appendStringInfoString(out, ", ");
		show_kint(out, lfirst(lc));
	}
}
