/*
 * key.c — IndexedDB keys on jsonb, and the order-preserving encoding.
 *
 * Valid keys: numbers (IEEE doubles, ±Infinity included, NaN not), dates,
 * strings, binary, and arrays of valid keys.  Order: number < date < string
 * < binary < array; numbers and dates numerically; strings by UTF-16 code
 * unit; binary bytewise; arrays element by element, a prefix first.
 *
 * JSON has no dates, binary or infinities, so they use tagged objects with
 * exactly one member:
 *   {"$date": "2024-05-01T12:00:00.000Z"}   or {"$date": <ms since epoch>}
 *   {"$binary": "<base64>"}
 *   {"$number": "Infinity"} / {"$number": "-Infinity"}
 * Booleans, null, other objects, NaN and invalid dates are not keys.
 *
 * Encoding (bytewise order == key order):
 *   number  0x10 | 8 bytes: the double's bits, sign bit flipped for >= 0,
 *                 all bits flipped for < 0 (-0 is stored as 0)
 *   date    0x20 | the same for the milliseconds
 *   string  0x30 | each UTF-16 code unit u, variable length:
 *                   u < 0x7F            1 byte  u + 1           (0x01..0x7F)
 *                   u < 0x7F + 0x4000   2 bytes 0x8000 + u - 0x7F (0x80..0xBF ..)
 *                   else                3 bytes 0xC00000 | u << 6 (0xC1.. ..)
 *                 | 0x00
 *   binary  0x40 | each byte like a code unit (1 or 2 bytes) | 0x00
 *   array   0x50 | the elements' encodings | 0x00
 * Every encoding is self-delimiting and 0x00 sorts below every tag, so a
 * shorter array sorts before its extensions and encodings concatenate.
 */
#include "jsondb.h"

#include <math.h>

#include "common/base64.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/json.h"
#include "utils/numeric.h"

#define MAX_DATE_MS 8.64e15		/* ECMAScript time value range */
#define MAX_KEY_DEPTH 64

/* ------------------------------------------------------------ key paths */

static bool
ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' || c >= 0x80;
}

static bool
ident_char(unsigned char c)
{
	return ident_start(c) || (c >= '0' && c <= '9');
}

void
jdb_path_parse(const char *s, JdbPath *out, const char *what)
{
	int			n = 1;
	const char *p;

	out->nsegs = 0;
	out->segs = NULL;
	if (*s == '\0')
		return;					/* the whole value */
	for (p = s; *p; p++)
		if (*p == '.')
			n++;
	out->segs = palloc(n * sizeof(char *));
	p = s;
	while (true)
	{
		const char *e = p;

		if (!ident_start((unsigned char) *e))
			goto bad;
		while (*e && *e != '.')
		{
			if (!ident_char((unsigned char) *e))
				goto bad;
			e++;
		}
		out->segs[out->nsegs++] = pnstrdup(p, e - p);
		if (*e == '\0')
			break;
		p = e + 1;
	}
	return;
bad:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("jsondb: invalid key path \"%s\" for %s", s, what),
			 errdetail("A key path is '' (the whole value) or identifiers separated by dots, "
					   "such as \"address.city\".")));
}

void
jdb_keypath_parse(Jsonb *kp, JdbKeyPath *out, const char *what)
{
	JsonbValue	v;

	memset(out, 0, sizeof(*out));
	if (JB_ROOT_IS_SCALAR(kp) && JsonbExtractScalar(&kp->root, &v) && v.type == jbvString)
	{
		out->npaths = 1;
		out->paths = palloc(sizeof(JdbPath));
		jdb_path_parse(pnstrdup(v.val.string.val, v.val.string.len), &out->paths[0], what);
		return;
	}
	if (JB_ROOT_IS_ARRAY(kp) && !JB_ROOT_IS_SCALAR(kp))
	{
		int			n = JB_ROOT_COUNT(kp);

		if (n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("jsondb: an array key path for %s must not be empty", what)));
		out->is_array = true;
		out->npaths = n;
		out->paths = palloc(n * sizeof(JdbPath));
		for (int i = 0; i < n; i++)
		{
			JsonbValue *e = getIthJsonbValueFromContainer(&kp->root, i);

			if (e == NULL || e->type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("jsondb: the key paths of %s must be strings", what)));
			jdb_path_parse(pnstrdup(e->val.string.val, e->val.string.len), &out->paths[i], what);
		}
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("jsondb: the key path of %s must be a string or an array of strings", what)));
}

/* ------------------------------------------------------------- encoding */

static void
put_u64(StringInfo out, uint64 x)
{
	for (int i = 7; i >= 0; i--)
		appendStringInfoChar(out, (char) (uint8) (x >> (i * 8)));
}

static uint64
get_u64(const uint8 *p)
{
	uint64		x = 0;

	for (int i = 0; i < 8; i++)
		x = (x << 8) | p[i];
	return x;
}

static uint64
double_bits(double d)
{
	uint64		b;

	if (d == 0)
		d = 0;					/* -0 -> 0 */
	memcpy(&b, &d, 8);
	return (b & UINT64CONST(0x8000000000000000)) ? ~b : b ^ UINT64CONST(0x8000000000000000);
}

static double
bits_double(uint64 b)
{
	double		d;

	b = (b & UINT64CONST(0x8000000000000000)) ? b ^ UINT64CONST(0x8000000000000000) : ~b;
	memcpy(&d, &b, 8);
	return d;
}

void
jdb_encode_number(StringInfo out, double d)
{
	appendStringInfoChar(out, JDB_TAG_NUMBER);
	put_u64(out, double_bits(d));
}

static void
put_unit(StringInfo out, uint32 u)
{
	if (u < 0x7F)
		appendStringInfoChar(out, (char) (u + 1));
	else if (u < 0x7F + 0x4000)
	{
		uint32		v = 0x8000 + u - 0x7F;

		appendStringInfoChar(out, (char) (v >> 8));
		appendStringInfoChar(out, (char) (v & 0xFF));
	}
	else
	{
		uint32		v = 0xC00000 | (u << 6);

		appendStringInfoChar(out, (char) (v >> 16));
		appendStringInfoChar(out, (char) ((v >> 8) & 0xFF));
		appendStringInfoChar(out, (char) (v & 0xFF));
	}
}

/* *p at a unit: decode it; false if malformed */
static bool
get_unit(const uint8 **p, const uint8 *end, uint32 *u)
{
	const uint8 *q = *p;

	if (q >= end || *q == 0)
		return false;
	if (*q < 0x80)
	{
		*u = *q - 1;
		*p = q + 1;
	}
	else if (*q < 0xC0)
	{
		if (end - q < 2)
			return false;
		*u = (((uint32) q[0] << 8 | q[1]) - 0x8000) + 0x7F;
		*p = q + 2;
	}
	else
	{
		if (end - q < 3)
			return false;
		*u = (((uint32) q[0] << 16 | (uint32) q[1] << 8 | q[2]) & 0x3FFFFF) >> 6;
		*p = q + 3;
	}
	return true;
}

/* UTF-8 (server encoding converted) -> UTF-16 code units */
static void
encode_string(StringInfo out, const char *s, int len)
{
	const unsigned char *u;
	const unsigned char *end;
	char	   *utf8 = (char *) s;

	if (GetDatabaseEncoding() != PG_UTF8)
	{
		char	   *tmp = pnstrdup(s, len);

		utf8 = pg_server_to_any(tmp, len, PG_UTF8);
		len = strlen(utf8);
	}
	u = (const unsigned char *) utf8;
	end = u + len;
	appendStringInfoChar(out, JDB_TAG_STRING);
	while (u < end)
	{
		int			l = pg_utf_mblen(u);
		pg_wchar	c = utf8_to_unicode(u);

		if (c >= 0x10000)
		{
			c -= 0x10000;
			put_unit(out, 0xD800 + (c >> 10));
			put_unit(out, 0xDC00 + (c & 0x3FF));
		}
		else
			put_unit(out, c);
		u += l;
	}
	appendStringInfoChar(out, JDB_KEY_END);
}

static void
encode_binary(StringInfo out, const uint8 *b, int len)
{
	appendStringInfoChar(out, JDB_TAG_BINARY);
	for (int i = 0; i < len; i++)
		put_unit(out, b[i]);
	appendStringInfoChar(out, JDB_KEY_END);
}

static bool
digits(const char **p, const char *end, int n, int *out)
{
	*out = 0;
	for (int i = 0; i < n; i++)
	{
		if (*p >= end || **p < '0' || **p > '9')
			return false;
		*out = *out * 10 + (*(*p)++ - '0');
	}
	return true;
}

/* Strict ISO 8601: YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|(+|-)HH:MM] */
static bool
parse_iso_date(const char *s, int len, double *ms)
{
	int			y,
				mo,
				d,
				h = 0,
				mi = 0,
				sec = 0,
				frac = 0,
				fracdig = 0,
				off = 0;
	const char *p = s,
			   *end = s + len;
	int64		days;
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

#define DIGITS(n, var) do { if (!digits(&p, end, (n), &(var))) return false; } while (0)

	DIGITS(4, y);
	if (p >= end || *p++ != '-')
		return false;
	DIGITS(2, mo);
	if (p >= end || *p++ != '-')
		return false;
	DIGITS(2, d);
	if (p < end && *p == 'T')
	{
		p++;
		DIGITS(2, h);
		if (p >= end || *p++ != ':')
			return false;
		DIGITS(2, mi);
		if (p < end && *p == ':')
		{
			p++;
			DIGITS(2, sec);
			if (p < end && *p == '.')
			{
				p++;
				while (p < end && *p >= '0' && *p <= '9')
				{
					if (fracdig < 3)
					{
						frac = frac * 10 + (*p - '0');
						fracdig++;
					}
					p++;
				}
				if (fracdig == 0)
					return false;
				while (fracdig < 3)
				{
					frac *= 10;
					fracdig++;
				}
			}
		}
		if (p < end && *p == 'Z')
			p++;
		else if (p < end && (*p == '+' || *p == '-'))
		{
			int			sign = *p++ == '-' ? -1 : 1,
						oh,
						om;

			DIGITS(2, oh);
			if (p >= end || *p++ != ':')
				return false;
			DIGITS(2, om);
			if (oh > 23 || om > 59)
				return false;
			off = sign * (oh * 60 + om);
		}
	}
	if (p != end)
		return false;
#undef DIGITS
	if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
		return false;
	if (d > mdays[mo - 1] + (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)))
		return false;
	/* days from civil (proleptic Gregorian) */
	{
		int			yy = y - (mo <= 2);
		int64		era = (yy >= 0 ? yy : yy - 399) / 400;
		int			yoe = yy - era * 400;
		int			doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
		int			doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

		days = era * 146097 + doe - 719468;
	}
	*ms = ((double) days * 86400.0 + h * 3600.0 + mi * 60.0 + sec - off * 60.0) * 1000.0 + frac;
	return fabs(*ms) <= MAX_DATE_MS;
}

static void
format_iso_date(StringInfo out, double ms)
{
	int64		t = (int64) floor(ms);
	int64		days = t >= 0 ? t / 86400000 : -((-t + 86399999) / 86400000);
	int64		rem = t - days * 86400000;
	int64		z = days + 719468;
	int64		era = (z >= 0 ? z : z - 146096) / 146097;
	int64		doe = z - era * 146097;
	int64		yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64		y = yoe + era * 400;
	int64		doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64		mp = (5 * doy + 2) / 153;
	int64		d = doy - (153 * mp + 2) / 5 + 1;
	int64		m = mp + (mp < 10 ? 3 : -9);

	y += (m <= 2);
	appendStringInfo(out, "{\"$date\": \"%s%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ\"}",
					 y < 0 ? "-" : "", (long long) (y < 0 ? -y : y), (long long) m, (long long) d,
					 (long long) (rem / 3600000), (long long) (rem / 60000 % 60),
					 (long long) (rem / 1000 % 60), (long long) (rem % 1000));
}

static bool encode_container(JsonbContainer *c, StringInfo out, const char **why, int depth);

/*
 * The double nearest n, as numeric_float8 gives it.  Keys are mostly
 * integers that fit int32: those are converted exactly without going
 * through text (numeric_float8 prints the numeric and parses it back);
 * anything else (fractions, larger magnitudes, NaN, infinities) takes
 * numeric_float8.
 */
static double
numeric_to_double(Numeric n)
{
	bool		err = false;
	int32		i = numeric_int4_opt_error(n, &err);	/* rounds */

	if (!err && DatumGetBool(DirectFunctionCall2(numeric_eq, NumericGetDatum(n),
												 NumericGetDatum(int64_to_numeric(i)))))
		return (double) i;
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, NumericGetDatum(n)));
}

/* a one-member object {"$date"|"$binary"|"$number": ...} */
static bool
encode_tagged(JsonbContainer *c, StringInfo out, const char **why)
{
	JsonbValue *v;

	if (JsonContainerSize(c) != 1)
	{
		*why = "an object is not a valid key";
		return false;
	}
	if ((v = getKeyJsonValueFromContainer(c, "$date", 5, NULL)) != NULL)
	{
		double		ms;

		if (v->type == jbvNumeric)
		{
			ms = numeric_to_double(v->val.numeric);
			if (isnan(ms) || fabs(ms) > MAX_DATE_MS)
			{
				*why = "the date is invalid (out of range)";
				return false;
			}
			ms = trunc(ms);
		}
		else if (v->type != jbvString || !parse_iso_date(v->val.string.val, v->val.string.len, &ms))
		{
			*why = "the date is invalid ($date needs an ISO 8601 string such as \"2024-05-01T12:00:00Z\" "
				"or milliseconds since 1970)";
			return false;
		}
		appendStringInfoChar(out, JDB_TAG_DATE);
		put_u64(out, double_bits(ms));
		return true;
	}
	if ((v = getKeyJsonValueFromContainer(c, "$binary", 7, NULL)) != NULL)
	{
		char	   *buf;
		int			n;

		if (v->type != jbvString)
		{
			*why = "$binary needs a base64 string";
			return false;
		}
		buf = palloc(pg_b64_dec_len(v->val.string.len) + 1);
		n = pg_b64_decode(v->val.string.val, v->val.string.len, buf,
						  pg_b64_dec_len(v->val.string.len) + 1);
		if (n < 0)
		{
			*why = "$binary is not valid base64";
			return false;
		}
		encode_binary(out, (uint8 *) buf, n);
		return true;
	}
	if ((v = getKeyJsonValueFromContainer(c, "$number", 7, NULL)) != NULL)
	{
		if (v->type == jbvString && v->val.string.len == 8 &&
			memcmp(v->val.string.val, "Infinity", 8) == 0)
		{
			jdb_encode_number(out, get_float8_infinity());
			return true;
		}
		if (v->type == jbvString && v->val.string.len == 9 &&
			memcmp(v->val.string.val, "-Infinity", 9) == 0)
		{
			jdb_encode_number(out, -get_float8_infinity());
			return true;
		}
		*why = "$number must be \"Infinity\" or \"-Infinity\" (NaN is not a valid key)";
		return false;
	}
	*why = "an object is not a valid key";
	return false;
}

static bool
encode_value(JsonbValue *v, StringInfo out, const char **why, int depth)
{
	switch (v->type)
	{
		case jbvNumeric:
			{
				double		d = numeric_to_double(v->val.numeric);

				if (isnan(d))
				{
					*why = "NaN is not a valid key";
					return false;
				}
				jdb_encode_number(out, d);
				return true;
			}
		case jbvString:
			encode_string(out, v->val.string.val, v->val.string.len);
			return true;
		case jbvBinary:
			return encode_container(v->val.binary.data, out, why, depth);
		case jbvBool:
			*why = "a boolean is not a valid key";
			return false;
		case jbvNull:
			*why = "null is not a valid key";
			return false;
		default:
			*why = "the value is not a valid key";
			return false;
	}
}

static bool
encode_container(JsonbContainer *c, StringInfo out, const char **why, int depth)
{
	if (JsonContainerIsScalar(c))
	{
		JsonbValue	v;

		JsonbExtractScalar(c, &v);
		return encode_value(&v, out, why, depth);
	}
	if (JsonContainerIsObject(c))
		return encode_tagged(c, out, why);
	if (depth >= MAX_KEY_DEPTH)
	{
		*why = "arrays nested too deeply";
		return false;
	}
	appendStringInfoChar(out, JDB_TAG_ARRAY);
	for (int i = 0; i < (int) JsonContainerSize(c); i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(c, i);

		if (!encode_value(e, out, why, depth + 1))
			return false;
	}
	appendStringInfoChar(out, JDB_KEY_END);
	return true;
}

bool
jdb_encode_value(JsonbValue *v, StringInfo out, const char **why)
{
	return encode_value(v, out, why, 0);
}

bool
jdb_encode_jsonb(Jsonb *j, StringInfo out, const char **why)
{
	return encode_container(&j->root, out, why, 0);
}

void
jdb_encode_jsonb_or_error(Jsonb *j, StringInfo out, const char *what)
{
	const char *why = NULL;

	if (!jdb_encode_jsonb(j, out, &why))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("jsondb: invalid key for %s: %s", what, why),
				 errdetail("Key: %s", JsonbToCString(NULL, &j->root, VARSIZE(j))),
				 errhint("Keys are numbers, strings, arrays of keys, {\"$date\": ...}, "
						 "{\"$binary\": \"<base64>\"} or {\"$number\": \"Infinity\"}.")));
	if (out->len > LSM_MAX_KEY_SIZE - 64)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("jsondb: key for %s is too long (%d encoded bytes, at most %d)",
						what, out->len, LSM_MAX_KEY_SIZE - 64)));
}

/* ------------------------------------------------------------ key paths */

bool
jdb_path_value(Jsonb *doc, const JdbPath *p, JsonbValue *v)
{
	JsonbContainer *c = &doc->root;

	if (p->nsegs == 0)
	{
		if (JsonContainerIsScalar(c))
			return JsonbExtractScalar(c, v);
		v->type = jbvBinary;
		v->val.binary.data = c;
		v->val.binary.len = VARSIZE(doc) - VARHDRSZ;
		return true;
	}
	for (int i = 0; i < p->nsegs; i++)
	{
		if (!JsonContainerIsObject(c))
			return false;
		if (getKeyJsonValueFromContainer(c, p->segs[i], strlen(p->segs[i]), v) == NULL)
			return false;
		if (i + 1 < p->nsegs)
		{
			if (v->type != jbvBinary)
				return false;
			c = v->val.binary.data;
		}
	}
	return true;
}

JdbEval
jdb_eval_keypath(Jsonb *doc, const JdbKeyPath *kp, StringInfo out, const char **why)
{
	if (kp->is_array)
		appendStringInfoChar(out, JDB_TAG_ARRAY);
	for (int i = 0; i < kp->npaths; i++)
	{
		JsonbValue	v;

		if (!jdb_path_value(doc, &kp->paths[i], &v))
			return JDB_EVAL_MISSING;
		if (!jdb_encode_value(&v, out, why))
			return JDB_EVAL_INVALID;
	}
	if (kp->is_array)
		appendStringInfoChar(out, JDB_KEY_END);
	return JDB_EVAL_OK;
}

List *
jdb_eval_multi(Jsonb *doc, const JdbKeyPath *kp)
{
	JsonbValue	v;
	List	   *keys = NIL;
	const char *why;

	if (kp->is_array || kp->npaths != 1)
		return NIL;				/* rejected at creation */
	if (!jdb_path_value(doc, &kp->paths[0], &v))
		return NIL;
	if (v.type == jbvBinary && JsonContainerIsArray(v.val.binary.data) &&
		!JsonContainerIsScalar(v.val.binary.data))
	{
		JsonbContainer *c = v.val.binary.data;

		for (int i = 0; i < (int) JsonContainerSize(c); i++)
		{
			JsonbValue *e = getIthJsonbValueFromContainer(c, i);
			StringInfo	k = makeStringInfo();
			ListCell   *lc;
			bool		dup = false;

			if (!jdb_encode_value(e, k, &why))
				continue;		/* invalid elements are skipped */
			foreach(lc, keys)
			{
				StringInfo	o = lfirst(lc);

				if (o->len == k->len && memcmp(o->data, k->data, k->len) == 0)
					dup = true;
			}
			if (!dup)
				keys = lappend(keys, k);
		}
		return keys;
	}
	{
		StringInfo	k = makeStringInfo();

		if (jdb_encode_value(&v, k, &why))
			keys = lappend(keys, k);
	}
	return keys;
}

/* ------------------------------------------------------------- decoding */

int
jdb_key_length(const uint8 *p, int len)
{
	const uint8 *q = p,
			   *end = p + len;
	int			depth = 0;

	do
	{
		uint32		u;

		if (q >= end)
			return -1;
		switch (*q++)
		{
			case JDB_TAG_NUMBER:
			case JDB_TAG_DATE:
				if (end - q < 8)
					return -1;
				q += 8;
				break;
			case JDB_TAG_STRING:
			case JDB_TAG_BINARY:
				while (q < end && *q != 0)
					if (!get_unit(&q, end, &u))
						return -1;
				if (q >= end)
					return -1;
				q++;
				break;
			case JDB_TAG_ARRAY:
				depth++;
				break;
			case JDB_KEY_END:
				if (depth == 0)
					return -1;
				depth--;
				break;
			default:
				return -1;
		}
	} while (depth > 0);
	return q - p;
}

bool
jdb_key_number(const uint8 *p, int len, double *d)
{
	if (len != 9 || p[0] != JDB_TAG_NUMBER)
		return false;
	*d = bits_double(get_u64(p + 1));
	return true;
}

/* UTF-16 code units -> a server-encoded C string (lone surrogates become
 * U+FFFD); *len set to its length. */
static char *
units_to_server(const uint32 *units, int n, int *len)
{
	StringInfoData utf8;
	char	   *s;

	initStringInfo(&utf8);
	for (int i = 0; i < n; i++)
	{
		pg_wchar	c = units[i];
		unsigned char buf[8];

		if (c >= 0xD800 && c < 0xDC00 && i + 1 < n && units[i + 1] >= 0xDC00 && units[i + 1] < 0xE000)
		{
			c = 0x10000 + ((c - 0xD800) << 10) + (units[i + 1] - 0xDC00);
			i++;
		}
		else if (c >= 0xD800 && c < 0xE000)
			c = 0xFFFD;			/* a lone surrogate cannot be UTF-8 */
		unicode_to_utf8(c, buf);
		appendBinaryStringInfo(&utf8, (char *) buf, pg_utf_mblen(buf));
	}
	s = utf8.data;
	*len = utf8.len;
	if (GetDatabaseEncoding() != PG_UTF8)
	{
		s = pg_any_to_server(s, utf8.len, PG_UTF8);
		*len = strlen(s);
	}
	return s;
}

static void
append_json_string_units(StringInfo out, const uint32 *units, int n)
{
	int			len;

	escape_json(out, units_to_server(units, n, &len));
}

bool
jdb_decode_key(const uint8 **pp, const uint8 *end, StringInfo out)
{
	const uint8 *p = *pp;
	uint8		tag;

	if (p >= end)
		return false;
	tag = *p++;
	switch (tag)
	{
		case JDB_TAG_NUMBER:
		case JDB_TAG_DATE:
			{
				double		d;

				if (end - p < 8)
					return false;
				d = bits_double(get_u64(p));
				p += 8;
				if (tag == JDB_TAG_DATE)
					format_iso_date(out, d);
				else if (isinf(d))
					appendStringInfo(out, "{\"$number\": \"%sInfinity\"}", d < 0 ? "-" : "");
				else
					appendStringInfoString(out, float8out_internal(d));
				break;
			}
		case JDB_TAG_STRING:
		case JDB_TAG_BINARY:
			{
				uint32	   *units = palloc((end - p + 1) * sizeof(uint32));
				int			n = 0;

				while (p < end && *p != 0)
					if (!get_unit(&p, end, &units[n++]))
						return false;
				if (p >= end)
					return false;
				p++;
				if (tag == JDB_TAG_STRING)
					append_json_string_units(out, units, n);
				else
				{
					char	   *raw = palloc(n + 1);
					char	   *b64 = palloc(pg_b64_enc_len(n) + 1);
					int			l;

					for (int i = 0; i < n; i++)
						raw[i] = (char) units[i];
					l = pg_b64_encode(raw, n, b64, pg_b64_enc_len(n) + 1);
					b64[Max(l, 0)] = '\0';
					appendStringInfo(out, "{\"$binary\": \"%s\"}", b64);
				}
				pfree(units);
				break;
			}
		case JDB_TAG_ARRAY:
			appendStringInfoChar(out, '[');
			for (bool first = true; p < end && *p != JDB_KEY_END; first = false)
			{
				if (!first)
					appendStringInfoString(out, ", ");
				if (!jdb_decode_key(&p, end, out))
					return false;
			}
			if (p >= end)
				return false;
			p++;
			appendStringInfoChar(out, ']');
			break;
		default:
			return false;
	}
	*pp = p;
	return true;
}

/*
 * The key at *pp as a JSON value (numbers, strings, arrays of them) without
 * going through text.  false when the key holds a form that has a tagged
 * JSON spelling (date, binary, ±Infinity) or is malformed: the caller then
 * takes the text path, which handles (or reports) all of them.  Arrays are
 * pushed onto *st (tok is the token for a scalar: WJB_ELEM inside an array,
 * 0 at the top, where *out is filled instead).
 */
/*
 * A jsonb scalar holding numeric n, laid out exactly as JsonbValueToJsonb
 * lays out a raw scalar (utils/jsonb.h): a one-element array container
 * flagged JB_FSCALAR whose JEntry holds the end offset of its one value,
 * the numeric, which follows int-aligned (VARHDRSZ + header + JEntry = 12
 * bytes: no padding).  Keys are mostly numbers, and index reads build one
 * per returned row: this skips the parse-state machinery.
 */
static Jsonb *
numeric_scalar_jsonb(Numeric n)
{
	uint32		numlen = VARSIZE_ANY(n);
	Size		size = VARHDRSZ + sizeof(uint32) + sizeof(JEntry) + numlen;
	Jsonb	   *j = palloc(size);

	SET_VARSIZE(j, size);
	j->root.header = 1 | JB_FARRAY | JB_FSCALAR;
	j->root.children[0] = JENTRY_ISNUMERIC | JENTRY_HAS_OFF | numlen;
	memcpy(&j->root.children[1], n, numlen);
	return j;
}

static bool
key_value(const uint8 **pp, const uint8 *end, JsonbParseState **st, JsonbValue *out,
		  JsonbValue **res)
{
	const uint8 *p = *pp;
	JsonbValue	v;

	if (p >= end)
		return false;
	switch (*p++)
	{
		case JDB_TAG_NUMBER:
			{
				double		d;

				if (end - p < 8)
					return false;
				d = bits_double(get_u64(p));
				p += 8;
				if (isinf(d) || isnan(d))
					return false;
				v.type = jbvNumeric;
				if (d == floor(d) && fabs(d) <= 9007199254740992.0)
					v.val.numeric = int64_to_numeric((int64) d);
				else
					v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																		CStringGetDatum(float8out_internal(d)),
																		ObjectIdGetDatum(InvalidOid),
																		Int32GetDatum(-1)));
				break;
			}
		case JDB_TAG_STRING:
			{
				uint32	   *units = palloc((end - p + 1) * sizeof(uint32));
				int			n = 0;
				int			len;

				while (p < end && *p != 0)
					if (!get_unit(&p, end, &units[n++]))
						return false;
				if (p >= end)
					return false;
				p++;
				v.type = jbvString;
				v.val.string.val = units_to_server(units, n, &len);
				v.val.string.len = len;
				pfree(units);
				break;
			}
		case JDB_TAG_ARRAY:
			{
				JsonbValue *r;

				(void) pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
				while (p < end && *p != JDB_KEY_END)
					if (!key_value(&p, end, st, NULL, NULL))
						return false;
				if (p >= end)
					return false;
				p++;
				r = pushJsonbValue(st, WJB_END_ARRAY, NULL);
				if (res)
					*res = r;
				*pp = p;
				return true;
			}
		default:
			return false;
	}
	if (out)
		*out = v;
	else
		(void) pushJsonbValue(st, WJB_ELEM, &v);
	*pp = p;
	return true;
}

Jsonb *
jdb_key_to_jsonb(const uint8 *p, int len)
{
	StringInfoData s;
	const uint8 *q = p;
	JsonbParseState *st = NULL;
	JsonbValue	v;
	JsonbValue *res = NULL;

	if (key_value(&q, p + len, &st, &v, &res))
	{
		if (res == NULL && v.type == jbvNumeric)
			return numeric_scalar_jsonb(v.val.numeric);
		return JsonbValueToJsonb(res ? res : &v);
	}
	q = p;
	initStringInfo(&s);
	if (!jdb_decode_key(&q, p + len, &s))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("jsondb: malformed stored key")));
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}

/* ------------------------------------------------------- key injection */

static JsonbValue *
set_path(JsonbIterator **it, JsonbParseState **st, const JdbPath *p, int depth,
		 double key, bool *ok);

/* Copy the object at *it (after WJB_BEGIN_OBJECT was read by the caller)
 * with segs[depth] set. */
static JsonbValue *
copy_object_setting(JsonbIterator **it, JsonbParseState **st, const JdbPath *p, int depth,
					double key, bool *ok)
{
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	const char *seg = p->segs[depth];
	bool		done = false;
	JsonbValue *res = NULL;

	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	while ((tok = JsonbIteratorNext(it, &k, true)) != WJB_END_OBJECT)
	{
		Assert(tok == WJB_KEY);
		pushJsonbValue(st, WJB_KEY, &k);
		if (k.val.string.len == (int) strlen(seg) && memcmp(k.val.string.val, seg, k.val.string.len) == 0)
		{
			/* descend: the value must be an object (or this is the leaf,
			 * which does not happen: the key path did not resolve) */
			tok = JsonbIteratorNext(it, &v, false);
			if (tok == WJB_BEGIN_OBJECT && depth + 1 < p->nsegs)
			{
				copy_object_setting(it, st, p, depth + 1, key, ok);
				done = true;
				continue;
			}
			*ok = false;
			return NULL;
		}
		tok = JsonbIteratorNext(it, &v, true);
		pushJsonbValue(st, WJB_VALUE, &v);
	}
	if (!done)
		set_path(it, st, p, depth, key, ok);
	res = pushJsonbValue(st, WJB_END_OBJECT, NULL);
	return res;
}

/* Emit member segs[depth] with nested objects down to the key. */
static JsonbValue *
set_path(JsonbIterator **it, JsonbParseState **st, const JdbPath *p, int depth,
		 double key, bool *ok)
{
	JsonbValue	k,
				v;

	k.type = jbvString;
	k.val.string.val = p->segs[depth];
	k.val.string.len = strlen(p->segs[depth]);
	pushJsonbValue(st, WJB_KEY, &k);
	if (depth + 1 == p->nsegs)
	{
		v.type = jbvNumeric;
		/* generated keys are integers <= 2^53: exact (float8_numeric keeps
		 * only 15 significant digits, so a key past 10^15 would not match
		 * the document's primary key) */
		if (key == floor(key) && fabs(key) <= 9007199254740992.0)
			v.val.numeric = int64_to_numeric((int64) key);
		else
			v.val.numeric = DatumGetNumeric(DirectFunctionCall1(float8_numeric,
																Float8GetDatum(key)));
		return pushJsonbValue(st, WJB_VALUE, &v);
	}
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	set_path(it, st, p, depth + 1, key, ok);
	return pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

Jsonb *
jdb_inject_key(Jsonb *doc, const JdbPath *p, double key, bool *ok)
{
	JsonbIterator *it;
	JsonbParseState *st = NULL;
	JsonbValue	v;
	JsonbValue *res;

	*ok = true;
	if (p->nsegs == 0 || !JB_ROOT_IS_OBJECT(doc))
	{
		*ok = false;
		return doc;
	}
	it = JsonbIteratorInit(&doc->root);
	(void) JsonbIteratorNext(&it, &v, false);	/* WJB_BEGIN_OBJECT */
	res = copy_object_setting(&it, &st, p, 0, key, ok);
	if (!*ok)
		return doc;
	return JsonbValueToJsonb(res);
}
