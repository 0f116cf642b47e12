/*
 * functions.c — the data functions of schema flowdb: put, put_many, get,
 * get_latest, scan, delete, delete_range, patch.
 *
 * Writes go to the transaction's buffer (xact.c); reads see the
 * transaction's own writes first, then the engine's latest committed state.
 * Arguments that need a value are checked here: NULL -> 22004.
 */
#include "flowdb.h"

#include <time.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/jsonapi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

/* locktag_field4 of flowdb's record locks: a space of its own among
 * advisory locks (pg_advisory_lock uses 1 and 2). */
#define FLOWDB_LOCK_SPACE 0x464C

PG_FUNCTION_INFO_V1(flowdb_put);
PG_FUNCTION_INFO_V1(flowdb_put_many);
PG_FUNCTION_INFO_V1(flowdb_get);
PG_FUNCTION_INFO_V1(flowdb_get_latest);
PG_FUNCTION_INFO_V1(flowdb_scan);
PG_FUNCTION_INFO_V1(flowdb_delete);
PG_FUNCTION_INFO_V1(flowdb_delete_range);
PG_FUNCTION_INFO_V1(flowdb_patch);

/* ----------------------------------------------------------- arguments */

static void
require(FunctionCallInfo fcinfo, int n, const char *fn, const char *arg)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("flowdb.%s: %s must not be NULL", fn, arg)));
}

static void
check_writable(const char *fn)
{
	char		cmd[64];

	snprintf(cmd, sizeof(cmd), "flowdb.%s()", fn);
	PreventCommandIfReadOnly(cmd);
	PreventCommandIfParallelMode(cmd);
}

static void
resolve_keyspace(FunctionCallInfo fcinfo, int n, const char *fn, FlowdbKeyspace *ks)
{
	require(fcinfo, n, fn, "keyspace");
	flowdb_keyspace_lookup(ks, PG_GETARG_TEXT_PP(n));
}

int64
flowdb_now(void)
{
	return (int64) time(NULL);
}

int64
flowdb_expire_at(bool ttl_isnull, int64 ttl_secs)
{
	int64		now = flowdb_now();

	if (ttl_isnull)
		ttl_secs = flowdb_default_ttl_secs;
	else if (ttl_secs < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("flowdb: ttl_secs must be >= 0 (0 = never expire), got " INT64_FORMAT,
						ttl_secs)));
	if (ttl_secs == 0)
		return 0;
	if (ttl_secs > PG_INT64_MAX - now)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("flowdb: ttl_secs " INT64_FORMAT " is too large", ttl_secs)));
	return now + ttl_secs;
}

static void
check_value_size(size_t len)
{
	if (len > LSM_MAX_VALUE_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("flowdb: value is %zu bytes, the limit is %u bytes",
						len, LSM_MAX_VALUE_SIZE)));
}

static void
buffer_put(const FlowdbKeyspace *ks, text *key, int64 ts, int64 expire_at, bytea *value)
{
	int			klen;
	uint8	   *enc;

	check_value_size(VARSIZE_ANY_EXHDR(value));
	enc = flowdb_encode_key(ks, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), &klen);
	flowdb_xact_put(enc, klen, ts, expire_at, (uint8 *) VARDATA_ANY(value),
					VARSIZE_ANY_EXHDR(value));
	pfree(enc);
}

static bytea *
make_bytea(const uint8 *p, size_t len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), p, len);
	return b;
}

/* --------------------------------------------------------------- writes */

/* put(key text, ts bigint, value bytea, ttl_secs bigint, keyspace text) */
Datum
flowdb_put(PG_FUNCTION_ARGS)
{
	FlowdbKeyspace ks;
	int64		expire_at;

	require(fcinfo, 0, "put", "key");
	require(fcinfo, 1, "put", "ts");
	require(fcinfo, 2, "put", "value");
	resolve_keyspace(fcinfo, 4, "put", &ks);
	check_writable("put");
	expire_at = flowdb_expire_at(PG_ARGISNULL(3), PG_ARGISNULL(3) ? 0 : PG_GETARG_INT64(3));
	buffer_put(&ks, PG_GETARG_TEXT_PP(0), PG_GETARG_INT64(1), expire_at, PG_GETARG_BYTEA_PP(2));
	PG_RETURN_VOID();
}

static int
array_elements(ArrayType *a, Oid type, int16 typlen, bool byval, char align,
			   Datum **values, bool **nulls, const char *what)
{
	int			n;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("flowdb.put_many: %s must be a one-dimensional array", what)));
	deconstruct_array(a, type, typlen, byval, align, values, nulls, &n);
	for (int i = 0; i < n; i++)
		if ((*nulls)[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("flowdb.put_many: %s[%d] must not be NULL", what, i + 1)));
	return n;
}

/* put_many(keys text[], tss bigint[], vals bytea[], ttl_secs bigint, keyspace text) */
Datum
flowdb_put_many(PG_FUNCTION_ARGS)
{
	FlowdbKeyspace ks;
	Datum	   *keys,
			   *tss,
			   *vals;
	bool	   *knull,
			   *tnull,
			   *vnull;
	int			nk,
				nt,
				nv;
	int64		expire_at;

	require(fcinfo, 0, "put_many", "keys");
	require(fcinfo, 1, "put_many", "tss");
	require(fcinfo, 2, "put_many", "vals");
	resolve_keyspace(fcinfo, 4, "put_many", &ks);
	check_writable("put_many");
	expire_at = flowdb_expire_at(PG_ARGISNULL(3), PG_ARGISNULL(3) ? 0 : PG_GETARG_INT64(3));

	nk = array_elements(PG_GETARG_ARRAYTYPE_P(0), TEXTOID, -1, false, TYPALIGN_INT,
						&keys, &knull, "keys");
	nt = array_elements(PG_GETARG_ARRAYTYPE_P(1), INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						&tss, &tnull, "tss");
	nv = array_elements(PG_GETARG_ARRAYTYPE_P(2), BYTEAOID, -1, false, TYPALIGN_INT,
						&vals, &vnull, "vals");
	if (nk != nt || nk != nv)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("flowdb.put_many: keys, tss and vals must have the same length (got %d, %d, %d)",
						nk, nt, nv)));
	for (int i = 0; i < nk; i++)
		buffer_put(&ks, DatumGetTextPP(keys[i]), DatumGetInt64(tss[i]), expire_at,
				   DatumGetByteaPP(vals[i]));
	PG_RETURN_INT64(nk);
}

/* delete(key text, ts bigint, keyspace text) */
Datum
flowdb_delete(PG_FUNCTION_ARGS)
{
	FlowdbKeyspace ks;
	text	   *key;
	int			klen;
	uint8	   *enc;

	require(fcinfo, 0, "delete", "key");
	require(fcinfo, 1, "delete", "ts");
	resolve_keyspace(fcinfo, 2, "delete", &ks);
	check_writable("delete");
	key = PG_GETARG_TEXT_PP(0);
	enc = flowdb_encode_key(&ks, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), &klen);
	flowdb_xact_delete(enc, klen, PG_GETARG_INT64(1));
	PG_RETURN_VOID();
}

/* delete_range(key_start text, key_end text, keyspace text): keys in
 * [key_start, key_end), all timestamps; NULL = unbounded on that side. */
Datum
flowdb_delete_range(PG_FUNCTION_ARGS)
{
	FlowdbKeyspace ks;
	uint8	   *start,
			   *end;
	int			slen,
				elen,
				cmp;

	resolve_keyspace(fcinfo, 2, "delete_range", &ks);
	check_writable("delete_range");
	if (PG_ARGISNULL(0))
		start = flowdb_encode_bound(&ks, "", 0, &slen);
	else
		start = flowdb_encode_bound(&ks, VARDATA_ANY(PG_GETARG_TEXT_PP(0)),
									VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(0)), &slen);
	if (PG_ARGISNULL(1))
	{
		if (!flowdb_prefix_successor(ks.prefix, ks.prefix_len, &end, &elen))
			elog(ERROR, "flowdb: keyspace prefix has no successor");
	}
	else
		end = flowdb_encode_bound(&ks, VARDATA_ANY(PG_GETARG_TEXT_PP(1)),
								  VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(1)), &elen);
	cmp = flowdb_key_cmp(start, slen, end, elen);
	if (cmp > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("flowdb.delete_range: key_start must not be greater than key_end")));
	if (cmp < 0)
		flowdb_xact_delete_range(start, slen, end, elen);
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------- reads */

static lsm_value engine_value;	/* reused buffer, owned by the engine API */

/* The latest committed-or-own value of (key, ts): true with *out. */
static bool
read_record(const uint8 *enc, int klen, int64 ts, lsm_record *out)
{
	const FlowdbOp *op;
	lsm_read_options ro;
	lsm_status	st;

	switch (flowdb_xact_lookup(enc, klen, ts, flowdb_now(), &op))
	{
		case FLOWDB_OWN_PUT:
			out->key = op->key;
			out->key_len = op->key_len;
			out->ts = op->ts;
			out->expire_at = op->expire_at;
			out->value = op->value;
			out->value_len = op->value_len;
			return true;
		case FLOWDB_OWN_GONE:
			return false;
		case FLOWDB_OWN_NONE:
			break;
	}
	lsm_read_options_init(&ro);
	st = lsm_get(flowdb_db(), &ro, enc, klen, ts, &engine_value);
	if (st == LSM_NOT_FOUND)
		return false;
	if (st != LSM_OK)
		flowdb_raise(st, "get");
	out->key = enc;
	out->key_len = klen;
	out->ts = engine_value.ts;
	out->expire_at = engine_value.expire_at;
	out->value = engine_value.data;
	out->value_len = engine_value.len;
	return true;
}

/* get(key text, ts bigint, keyspace text) returns bytea (NULL if absent) */
Datum
flowdb_get(PG_FUNCTION_ARGS)
{
	FlowdbKeyspace ks;
	text	   *key;
	uint8	   *enc;
	int			klen;
	lsm_record	rec;

	require(fcinfo, 0, "get", "key");
	require(fcinfo, 1, "get", "ts");
	resolve_keyspace(fcinfo, 2, "get", &ks);
	key = PG_GETARG_TEXT_PP(0);
	enc = flowdb_encode_key(&ks, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), &klen);
	if (!read_record(enc, klen, PG_GETARG_INT64(1), &rec))
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(make_bytea(rec.value, rec.value_len));
}

static HeapTuple
record_tuple(TupleDesc desc, const lsm_record *rec, int prefix_len)
{
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	values[0] = PointerGetDatum(cstring_to_text_with_len((const char *) rec->key + prefix_len,
														 rec->key_len - prefix_len));
	values[1] = Int64GetDatum(rec->ts);
	values[2] = Int64GetDatum(rec->expire_at);
	values[3] = PointerGetDatum(make_bytea(rec->value, rec->value_len));
	return heap_form_tuple(desc, values, nulls);
}

/* get_latest(key text, keyspace text) returns setof (key, ts, expire_at, value):
 * the record with the greatest ts, zero or one row. */
Datum
flowdb_get_latest(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FlowdbKeyspace ks;
	text	   *key;
	uint8	   *enc;
	int			klen;
	lsm_record	rec;
	bool		found;

	require(fcinfo, 0, "get_latest", "key");
	resolve_keyspace(fcinfo, 1, "get_latest", &ks);
	InitMaterializedSRF(fcinfo, 0);
	key = PG_GETARG_TEXT_PP(0);
	enc = flowdb_encode_key(&ks, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), &klen);

	if (!flowdb_xact_touches(enc, klen))
	{
		lsm_read_options ro;
		lsm_status	st;

		lsm_read_options_init(&ro);
		st = lsm_get_latest(flowdb_db(), &ro, enc, klen, &engine_value);
		if (st != LSM_OK && st != LSM_NOT_FOUND)
			flowdb_raise(st, "get_latest");
		found = (st == LSM_OK);
		rec.key = enc;
		rec.key_len = klen;
		rec.ts = engine_value.ts;
		rec.expire_at = engine_value.expire_at;
		rec.value = engine_value.data;
		rec.value_len = engine_value.len;
	}
	else
	{
		FlowdbScanBounds b;
		FlowdbCursor *c;

		memset(&b, 0, sizeof(b));
		b.prefix = enc;
		b.prefix_len = klen;
		b.lo = enc;
		b.lo_len = klen;
		b.hi = enc;
		b.hi_len = klen;
		b.hi_inclusive = true;
		b.ts_min = LSM_TS_MIN;
		b.ts_max = LSM_TS_MAX;
		b.reverse = true;
		b.limit = 1;
		c = flowdb_cursor_open(CurrentMemoryContext, &b);
		found = flowdb_cursor_next(c, &rec);
		if (found)
			tuplestore_puttuple(rsinfo->setResult,
								record_tuple(rsinfo->setDesc, &rec, ks.prefix_len));
		flowdb_cursor_close(c);
		return (Datum) 0;
	}
	if (found)
		tuplestore_puttuple(rsinfo->setResult, record_tuple(rsinfo->setDesc, &rec, ks.prefix_len));
	return (Datum) 0;
}

typedef struct FlowdbScanCall
{
	FlowdbCursor *cursor;
	int			prefix_len;		/* keyspace prefix stripped from keys */
} FlowdbScanCall;

static uint8 *
optional_bound(FunctionCallInfo fcinfo, int n, const FlowdbKeyspace *ks, int *len)
{
	text	   *t;

	if (PG_ARGISNULL(n))
		return NULL;
	t = PG_GETARG_TEXT_PP(n);
	return flowdb_encode_bound(ks, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), len);
}

static void
scan_bounds(FunctionCallInfo fcinfo, const FlowdbKeyspace *ks, FlowdbScanBounds *b)
{
	memset(b, 0, sizeof(*b));
	if (PG_ARGISNULL(0))
	{
		b->prefix = ks->prefix;
		b->prefix_len = ks->prefix_len;
	}
	else
		b->prefix = optional_bound(fcinfo, 0, ks, &b->prefix_len);
	b->lo = optional_bound(fcinfo, 1, ks, &b->lo_len);
	b->hi = optional_bound(fcinfo, 2, ks, &b->hi_len);
	b->ts_min = PG_ARGISNULL(3) ? LSM_TS_MIN : PG_GETARG_INT64(3);
	b->ts_max = PG_ARGISNULL(4) ? LSM_TS_MAX : PG_GETARG_INT64(4);
	if (b->ts_min > b->ts_max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("flowdb.scan: ts_start (" INT64_FORMAT ") must not be greater than ts_end ("
						INT64_FORMAT ")", b->ts_min, b->ts_max)));
	if (!PG_ARGISNULL(5) && PG_GETARG_INT64(5) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("flowdb.scan: lim must be >= 0 (0 or NULL = no limit), got " INT64_FORMAT,
						PG_GETARG_INT64(5))));
	b->limit = PG_ARGISNULL(5) ? 0 : (uint64) PG_GETARG_INT64(5);
	b->reverse = PG_ARGISNULL(6) ? false : PG_GETARG_BOOL(6);
}

/*
 * scan(prefix, key_start, key_end, ts_start, ts_end, lim, reverse, keyspace)
 * returns setof (key, ts, expire_at, value), one row per call from a live
 * engine iterator.  The iterator belongs to the SRF's multi-call memory
 * context, so an error or cancel closes it.
 */
Datum
flowdb_scan(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	FlowdbScanCall  *state;
	lsm_record	rec;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;
		FlowdbKeyspace ks;
		FlowdbScanBounds b;
		TupleDesc	desc;

		funcctx = SRF_FIRSTCALL_INIT();
		resolve_keyspace(fcinfo, 7, "scan", &ks);
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "flowdb.scan: return type must be a row type");
		funcctx->tuple_desc = BlessTupleDesc(desc);
		scan_bounds(fcinfo, &ks, &b);
		state = palloc0(sizeof(FlowdbScanCall));
		state->prefix_len = ks.prefix_len;
		state->cursor = flowdb_cursor_open(funcctx->multi_call_memory_ctx, &b);
		funcctx->user_fctx = state;
		MemoryContextSwitchTo(old);
	}
	funcctx = SRF_PERCALL_SETUP();
	state = funcctx->user_fctx;

	CHECK_FOR_INTERRUPTS();
	if (flowdb_cursor_next(state->cursor, &rec))
	{
		HeapTuple	tuple = record_tuple(funcctx->tuple_desc, &rec, state->prefix_len);

		SRF_RETURN_NEXT(funcctx, HeapTupleGetDatum(tuple));
	}
	flowdb_cursor_close(state->cursor);
	SRF_RETURN_DONE(funcctx);
}

/* ---------------------------------------------------------------- patch */

/* Serialise patches of one (database, keyspace, key, ts) until commit. */
static void
lock_record(const uint8 *enc, int klen, int64 ts)
{
	LOCKTAG		tag;
	uint64		h = hash_bytes_extended(enc, klen, (uint64) ts);

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (h >> 32), (uint32) h, FLOWDB_LOCK_SPACE);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* The value as jsonb if it is a JSON object in the database encoding. */
static Jsonb *
json_object_or_null(const uint8 *p, size_t len)
{
	JsonLexContext *lex;
	size_t		i = 0;
	char	   *s;

	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	if (i == len || p[i] != '{' || len > INT_MAX ||
		memchr(p, '\0', len) != NULL ||
		!pg_verify_mbstr(GetDatabaseEncoding(), (const char *) p, (int) len, true))
		return NULL;
	s = pnstrdup((const char *) p, len);
	lex = makeJsonLexContextCstringLen(s, (int) len, GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &nullSemAction) != JSON_SUCCESS)
		return NULL;
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
}

static Jsonb *
merge_patch(Jsonb *target, Jsonb *patch)
{
	Oid			argtypes[2] = {JSONBOID, JSONBOID};
	List	   *name = list_make2(makeString("flowdb"), makeString("json_merge_patch"));
	Oid			fn = LookupFuncName(name, 2, argtypes, false);

	return DatumGetJsonbP(OidFunctionCall2(fn, JsonbPGetDatum(target), JsonbPGetDatum(patch)));
}

/*
 * patch(key, ts, value, ttl_secs, keyspace) returns the new value.
 *   - the record (key, ts) must exist (else 02000-class error P0002);
 *   - value NULL keeps the old value; if old and new are both JSON objects
 *     the new one is applied as an RFC 7396 merge patch; otherwise the new
 *     value replaces the old;
 *   - ttl_secs NULL keeps the old expiry, 0 = never, n = now + n.
 * Concurrent patches of the same record serialise on a transaction-scoped
 * lock, and each reads the latest committed value: no lost updates.
 */
Datum
flowdb_patch(PG_FUNCTION_ARGS)
{
	FlowdbKeyspace ks;
	text	   *key;
	uint8	   *enc;
	int			klen;
	int64		ts;
	lsm_record	old;
	bytea	   *result;
	int64		expire_at;

	require(fcinfo, 0, "patch", "key");
	require(fcinfo, 1, "patch", "ts");
	resolve_keyspace(fcinfo, 4, "patch", &ks);
	check_writable("patch");
	key = PG_GETARG_TEXT_PP(0);
	ts = PG_GETARG_INT64(1);
	enc = flowdb_encode_key(&ks, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), &klen);

	lock_record(enc, klen, ts);
	if (!read_record(enc, klen, ts, &old))
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("flowdb.patch: no record with key \"%s\" and ts " INT64_FORMAT
						" in keyspace \"%s\"", text_to_cstring(key), ts, ks.name),
				 errhint("patch only changes existing records; use flowdb.put to create one.")));

	expire_at = PG_ARGISNULL(3) ? old.expire_at : flowdb_expire_at(false, PG_GETARG_INT64(3));
	if (PG_ARGISNULL(2))
		result = make_bytea(old.value, old.value_len);
	else
	{
		bytea	   *value = PG_GETARG_BYTEA_PP(2);
		Jsonb	   *new_json = json_object_or_null((uint8 *) VARDATA_ANY(value),
												   VARSIZE_ANY_EXHDR(value));
		Jsonb	   *old_json = new_json ? json_object_or_null(old.value, old.value_len) : NULL;

		if (new_json && old_json)
		{
			Jsonb	   *merged = merge_patch(old_json, new_json);
			char	   *s = JsonbToCString(NULL, &merged->root, VARSIZE(merged));

			result = make_bytea((uint8 *) s, strlen(s));
		}
		else
			result = make_bytea((uint8 *) VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
	}
	check_value_size(VARSIZE(result) - VARHDRSZ);
	flowdb_xact_put(enc, klen, ts, expire_at, (uint8 *) VARDATA(result), VARSIZE(result) - VARHDRSZ);
	PG_RETURN_BYTEA_P(result);
}
