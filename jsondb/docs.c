/*
 * docs.c — documents: put / add / get / delete / patch, index maintenance,
 * the key generator and per-document versions.
 *
 * A write reads the old document (through the transaction's snapshot and own
 * writes, recorded for OCC), computes the old and new entries of every index,
 * checks unique indexes, and buffers: deleted entries, added entries, the
 * document with version old + 1 (1 for a new one).  Nothing is buffered
 * before every check passed, so a failing put writes nothing.
 *
 * Key generator (IndexedDB): the store's 'g' record holds the current
 * number, 1 when absent.  Generating takes the store's transaction lock
 * (exclusive) and reads the latest committed value, so concurrent writers
 * of one auto-increment store queue instead of failing; a rolled-back
 * transaction's update is discarded with its other writes.  An explicit
 * numeric key >= current sets it to floor(key) + 1; past 2^53 it is spent.
 */
#include "jsondb.h"

#include <math.h>

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#define GEN_LIMIT UINT64CONST(9007199254740992)	/* 2^53: the last key generated */

PG_FUNCTION_INFO_V1(jsondb_put);
PG_FUNCTION_INFO_V1(jsondb_add);
PG_FUNCTION_INFO_V1(jsondb_get);
PG_FUNCTION_INFO_V1(jsondb_get_with_meta);
PG_FUNCTION_INFO_V1(jsondb_delete);
PG_FUNCTION_INFO_V1(jsondb_patch);
PG_FUNCTION_INFO_V1(jsondb_merge_patch);

/* --------------------------------------------------------------- values */

static uint64
be64(const uint8 *p)
{
	uint64		x = 0;

	for (int i = 0; i < 8; i++)
		x = (x << 8) | p[i];
	return x;
}

static void
put_be64(uint8 *p, uint64 x)
{
	for (int i = 7; i >= 0; i--)
		p[7 - i] = (uint8) (x >> (i * 8));
}

Jsonb *
jdb_doc_decode(const uint8 *val, int vlen, uint64 *version)
{
	Jsonb	   *j;

	if (vlen < 8 + (int) sizeof(uint32))
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("jsondb: malformed stored document")));
	if (version)
		*version = be64(val);
	j = palloc(VARHDRSZ + vlen - 8);
	SET_VARSIZE(j, VARHDRSZ + vlen - 8);
	memcpy(VARDATA(j), val + 8, vlen - 8);
	return j;
}

Jsonb *
jdb_doc_decode_into(const uint8 *val, int vlen, StringInfo buf)
{
	Jsonb	   *j;

	if (vlen < 8 + (int) sizeof(uint32))
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("jsondb: malformed stored document")));
	resetStringInfo(buf);
	enlargeStringInfo(buf, VARHDRSZ + vlen - 8);
	j = (Jsonb *) buf->data;	/* palloc'd: aligned */
	SET_VARSIZE(j, VARHDRSZ + vlen - 8);
	memcpy(VARDATA(j), val + 8, vlen - 8);
	buf->len = VARHDRSZ + vlen - 8;
	return j;
}

Jsonb *
jdb_get_doc(JdbStore *s, const uint8 *pk, int pklen, uint64 *version)
{
	StringInfoData k;
	const uint8 *v;
	int			vlen;

	initStringInfo(&k);
	jdb_doc_key(s, &k, pk, pklen);
	if (!jdb_read_view((uint8 *) k.data, k.len, &v, &vlen, true))
		return NULL;
	return jdb_doc_decode(v, vlen, version);	/* the one copy */
}

static void
check_doc(Jsonb *doc, const char *what)
{
	if (!JB_ROOT_IS_OBJECT(doc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("jsondb.%s: a document must be a JSON object", what)));
	if (VARSIZE(doc) > JDB_MAX_DOC_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("jsondb.%s: document of %zu bytes is over the limit of %d bytes",
						what, (size_t) VARSIZE(doc), JDB_MAX_DOC_BYTES)));
}

/* ------------------------------------------------------------ generator */

static void
gen_key(const JdbStore *s, StringInfo k)
{
	initStringInfo(k);
	jdb_sub_prefix(s, 'g', k);
}

/* The current number (read under the store's exclusive lock). */
static uint64
gen_current(const JdbStore *s)
{
	StringInfoData k;
	const FlowdbOp *op;
	uint8	   *v;
	int			vlen;

	jdb_lock_store(s->id, true);
	gen_key(s, &k);
	switch (jdb_own_lookup((uint8 *) k.data, k.len, &op))
	{
		case FLOWDB_OWN_PUT:
			return be64(op->value);
		case FLOWDB_OWN_GONE:
			return 1;
		default:
			break;
	}
	if (jdb_read_latest((uint8 *) k.data, k.len, &v, &vlen) && vlen == 8)
		return be64(v);
	return 1;
}

static void
gen_set(const JdbStore *s, uint64 next)
{
	StringInfoData k;
	uint8		v[8];

	gen_key(s, &k);
	put_be64(v, Min(next, GEN_LIMIT + 1));
	jdb_write_put(s, (uint8 *) k.data, k.len, v, 8);
}

/* ---------------------------------------------------------- index keys */

/* The encoded index keys of doc for ix (List of StringInfo; NIL if none). */
static List *
index_keys(Jsonb *doc, const JdbIndex *ix)
{
	StringInfo	k;
	const char *why;

	if (doc == NULL)
		return NIL;
	if (ix->multi_entry)
		return jdb_eval_multi(doc, &ix->kp);
	k = makeStringInfo();
	if (jdb_eval_keypath(doc, &ix->kp, k, &why) != JDB_EVAL_OK)
		return NIL;				/* left out of the index */
	if (k->len > LSM_MAX_KEY_SIZE / 2)
		return NIL;				/* too long to index: left out */
	return list_make1(k);
}

static bool
key_in(List *keys, StringInfo k)
{
	ListCell   *lc;

	foreach(lc, keys)
	{
		StringInfo	o = lfirst(lc);

		if (o->len == k->len && memcmp(o->data, k->data, k->len) == 0)
			return true;
	}
	return false;
}

typedef struct PendingWrite
{
	StringInfo	key;
	StringInfo	val;			/* NULL: delete */
} PendingWrite;

static void
add_pending(List **w, StringInfo key, const uint8 *val, int vlen, bool del)
{
	PendingWrite *p = palloc(sizeof(PendingWrite));

	p->key = key;
	p->val = NULL;
	if (!del)
	{
		p->val = makeStringInfo();
		appendBinaryStringInfo(p->val, (const char *) val, vlen);
	}
	*w = lappend(*w, p);
}

/*
 * Compute the index writes for a document changing from old_doc to new_doc
 * (either may be NULL), checking unique indexes; appends to *w.
 */
static void
index_changes(JdbStore *s, const uint8 *pk, int pklen, Jsonb *old_doc, Jsonb *new_doc, List **w)
{
	for (int i = 0; i < s->nindexes; i++)
	{
		JdbIndex   *ix = &s->indexes[i];
		List	   *oldk = index_keys(old_doc, ix);
		List	   *newk = index_keys(new_doc, ix);
		ListCell   *lc;

		foreach(lc, oldk)
		{
			StringInfo	ik = lfirst(lc);
			StringInfo	ek;

			if (key_in(newk, ik))
				continue;
			ek = makeStringInfo();
			jdb_index_prefix(s, ix, ek);
			appendBinaryStringInfo(ek, ik->data, ik->len);
			if (!ix->unique)
				appendBinaryStringInfo(ek, (const char *) pk, pklen);
			add_pending(w, ek, NULL, 0, true);
		}
		foreach(lc, newk)
		{
			StringInfo	ik = lfirst(lc);
			StringInfo	ek;

			if (key_in(oldk, ik))
				continue;
			ek = makeStringInfo();
			jdb_index_prefix(s, ix, ek);
			appendBinaryStringInfo(ek, ik->data, ik->len);
			if (ix->unique)
			{
				uint8	   *v;
				int			vlen;

				if (jdb_read((uint8 *) ek->data, ek->len, &v, &vlen, true) &&
					!(vlen == pklen && memcmp(v, pk, pklen) == 0))
				{
					Jsonb	   *kj = jdb_key_to_jsonb((uint8 *) ik->data, jdb_key_length((uint8 *) ik->data, ik->len));

					ereport(ERROR,
							(errcode(ERRCODE_UNIQUE_VIOLATION),
							 errmsg("jsondb: duplicate key value violates unique index \"%s\" of store \"%s\"",
									ix->name, s->name),
							 errdetail("Index key %s is already used by the document with key %s.",
									   JsonbToCString(NULL, &kj->root, VARSIZE(kj)),
									   JsonbToCString(NULL, &jdb_key_to_jsonb(v, vlen)->root, 0))));
				}
				add_pending(w, ek, pk, pklen, false);
			}
			else
			{
				appendBinaryStringInfo(ek, (const char *) pk, pklen);
				add_pending(w, ek, (const uint8 *) "", 0, false);
			}
		}
	}
}

static void
apply_pending(JdbStore *s, List *w)
{
	ListCell   *lc;

	foreach(lc, w)
	{
		PendingWrite *p = lfirst(lc);

		if (p->val)
			jdb_write_put(s, (uint8 *) p->key->data, p->key->len, (uint8 *) p->val->data, p->val->len);
		else
			jdb_write_delete(s, (uint8 *) p->key->data, p->key->len);
	}
}

/*
 * Write doc under pk: index maintenance, version.  old_doc/old_version are
 * what the transaction sees now (NULL if absent).
 */
static uint64
write_doc(JdbStore *s, const uint8 *pk, int pklen, Jsonb *old_doc, uint64 old_version, Jsonb *doc)
{
	List	   *w = NIL;
	StringInfoData dk;
	StringInfoData val;
	uint8		v8[8];
	uint64		version = old_doc ? old_version + 1 : 1;

	index_changes(s, pk, pklen, old_doc, doc, &w);
	initStringInfo(&dk);
	jdb_doc_key(s, &dk, pk, pklen);
	initStringInfo(&val);
	put_be64(v8, version);
	appendBinaryStringInfo(&val, (char *) v8, 8);
	appendBinaryStringInfo(&val, VARDATA(doc), VARSIZE(doc) - VARHDRSZ);
	apply_pending(s, w);
	jdb_write_put(s, (uint8 *) dk.data, dk.len, (uint8 *) val.data, val.len);
	return version;
}

/* Delete the document pk (known to be old_doc): entries, then the doc. */
void
jdb_delete_doc(JdbStore *s, const uint8 *pk, int pklen, Jsonb *old_doc)
{
	List	   *w = NIL;
	StringInfoData dk;

	index_changes(s, pk, pklen, old_doc, NULL, &w);
	apply_pending(s, w);
	initStringInfo(&dk);
	jdb_doc_key(s, &dk, pk, pklen);
	jdb_write_delete(s, (uint8 *) dk.data, dk.len);
}

/* Backfill one index from every document (under the store's DDL lock). */
void
jdb_index_backfill(JdbStore *s, JdbIndex *ix)
{
	StringInfoData pre;
	JdbScan    *sc;
	lsm_record	rec;
	JdbStore	one = *s;

	one.nindexes = 1;
	one.indexes = ix;
	initStringInfo(&pre);
	jdb_sub_prefix(s, 'd', &pre);
	sc = jdb_scan_open((uint8 *) pre.data, pre.len, NULL, 0, false, NULL, 0, false, false);
	while (jdb_scan_next(sc, &rec))
	{
		List	   *w = NIL;
		Jsonb	   *doc = jdb_doc_decode(rec.value, rec.value_len, NULL);

		index_changes(&one, rec.key + 10, rec.key_len - 10, NULL, doc, &w);
		apply_pending(s, w);
	}
	jdb_scan_close(sc);
}

/* ------------------------------------------------------------- put/add */

/* Primary key of doc (maybe generating one, which changes *doc). */
static void
primary_key(JdbStore *s, Jsonb **doc, StringInfo pk, const char *what)
{
	const char *why = NULL;
	JdbEval		e = jdb_eval_keypath(*doc, &s->kp, pk, &why);
	double		d;

	if (e == JDB_EVAL_INVALID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("jsondb.%s: invalid key in store \"%s\": %s", what, s->name, why)));
	if (e == JDB_EVAL_MISSING)
	{
		uint64		cur;
		bool		ok;

		if (!s->auto_increment)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("jsondb.%s: the document has no key at the key path of store \"%s\"",
							what, s->name),
					 errhint("Store \"%s\" has no key generator; give the document a key.", s->name)));
		cur = gen_current(s);
		if (cur > GEN_LIMIT)
			ereport(ERROR,
					(errcode(ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION),
					 errmsg("jsondb.%s: the key generator of store \"%s\" is exhausted (past 2^53)",
							what, s->name)));
		*doc = jdb_inject_key(*doc, &s->kp.paths[0], (double) cur, &ok);
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("jsondb.%s: cannot put the generated key into the document: "
							"a step of the key path is not an object", what)));
		gen_set(s, cur + 1);
		resetStringInfo(pk);
		jdb_encode_number(pk, (double) cur);
	}
	else if (s->auto_increment && jdb_key_number((uint8 *) pk->data, pk->len, &d))
	{
		uint64		cur = gen_current(s);

		if (d >= (double) cur)
			gen_set(s, d >= (double) GEN_LIMIT ? GEN_LIMIT + 1 : (uint64) floor(d) + 1);
	}
	if (pk->len > LSM_MAX_KEY_SIZE - 64)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("jsondb.%s: key too long (%d encoded bytes)", what, pk->len)));
}

static Datum
put_common(FunctionCallInfo fcinfo, bool add, const char *what)
{
	JdbStore   *s;
	Jsonb	   *doc;
	StringInfoData pk;
	Jsonb	   *old;
	uint64		old_version = 0;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("jsondb.%s: store and document must not be NULL", what)));
	jdb_txn_begin();
	s = jdb_store_lookup_text(PG_GETARG_TEXT_PP(0));
	doc = PG_GETARG_JSONB_P(1);
	check_doc(doc, what);
	initStringInfo(&pk);
	primary_key(s, &doc, &pk, what);
	old = jdb_get_doc(s, (uint8 *) pk.data, pk.len, &old_version);
	if (add && old)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("jsondb.add: a document with key %s already exists in store \"%s\"",
						JsonbToCString(NULL, &jdb_key_to_jsonb((uint8 *) pk.data, pk.len)->root, 0),
						s->name)));
	if (!add && PG_NARGS() > 2 && !PG_ARGISNULL(2))
	{
		int64		expected = PG_GETARG_INT64(2);
		int64		have = old ? (int64) old_version : 0;

		if (expected != have)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("jsondb.put: version mismatch for key %s in store \"%s\": expected "
							INT64_FORMAT ", found " INT64_FORMAT,
							JsonbToCString(NULL, &jdb_key_to_jsonb((uint8 *) pk.data, pk.len)->root, 0),
							s->name, expected, have),
					 errhint("Version 0 means \"the document must not exist\".")));
	}
	(void) write_doc(s, (uint8 *) pk.data, pk.len, old, old_version, doc);
	PG_RETURN_JSONB_P(jdb_key_to_jsonb((uint8 *) pk.data, pk.len));
}

/* put(store, doc, expected_version bigint = NULL) -> key */
Datum
jsondb_put(PG_FUNCTION_ARGS)
{
	return put_common(fcinfo, false, "put");
}

/* add(store, doc) -> key; fails if the key exists */
Datum
jsondb_add(PG_FUNCTION_ARGS)
{
	return put_common(fcinfo, true, "add");
}

/* ----------------------------------------------------------- get/delete */

static JdbStore *
store_arg(FunctionCallInfo fcinfo, const char *what)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("jsondb.%s: store must not be NULL", what)));
	jdb_txn_begin();
	return jdb_store_lookup_text(PG_GETARG_TEXT_PP(0));
}

static void
key_arg(FunctionCallInfo fcinfo, int argno, StringInfo out, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("jsondb.%s: key must not be NULL", what)));
	initStringInfo(out);
	jdb_encode_jsonb_or_error(PG_GETARG_JSONB_P(argno), out, what);
}

/* get(store, key jsonb) -> doc or NULL */
Datum
jsondb_get(PG_FUNCTION_ARGS)
{
	JdbStore   *s = store_arg(fcinfo, "get");
	StringInfoData pk;
	Jsonb	   *doc;

	key_arg(fcinfo, 1, &pk, "get");
	doc = jdb_get_doc(s, (uint8 *) pk.data, pk.len, NULL);
	if (doc == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(doc);
}

/* get_with_meta(store, key) -> (doc, version) */
Datum
jsondb_get_with_meta(PG_FUNCTION_ARGS)
{
	JdbStore   *s = store_arg(fcinfo, "get_with_meta");
	StringInfoData pk;
	Jsonb	   *doc;
	uint64		version;
	TupleDesc	desc;
	Datum		vals[3];
	bool		nulls[3] = {false, false, false};

	key_arg(fcinfo, 1, &pk, "get_with_meta");
	doc = jdb_get_doc(s, (uint8 *) pk.data, pk.len, &version);
	if (doc == NULL)
		PG_RETURN_NULL();
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "jsondb.get_with_meta: return type must be a row type");
	desc = BlessTupleDesc(desc);
	vals[0] = JsonbPGetDatum(jdb_key_to_jsonb((uint8 *) pk.data, pk.len));
	vals[1] = JsonbPGetDatum(doc);
	vals[2] = Int64GetDatum((int64) version);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, vals, nulls)));
}

/* delete(store, key) -> 1 if a document was deleted, else 0 */
Datum
jsondb_delete(PG_FUNCTION_ARGS)
{
	JdbStore   *s = store_arg(fcinfo, "delete");
	StringInfoData pk;
	Jsonb	   *old;

	key_arg(fcinfo, 1, &pk, "delete");
	old = jdb_get_doc(s, (uint8 *) pk.data, pk.len, NULL);
	if (old == NULL)
		PG_RETURN_INT64(0);
	jdb_delete_doc(s, (uint8 *) pk.data, pk.len, old);
	PG_RETURN_INT64(1);
}

/* ------------------------------------------------------------ merge patch */

static JsonbValue *merge_object(JsonbParseState **st, JsonbContainer *target, JsonbContainer *patch);

static bool
is_object(const JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

/* push key k with the merge of target value tv (NULL if absent) and patch value pv */
static void
push_merged(JsonbParseState **st, JsonbValue *k, JsonbValue *tv, JsonbValue *pv)
{
	if (pv->type == jbvNull)
		return;					/* removes the member */
	pushJsonbValue(st, WJB_KEY, k);
	if (is_object(pv))
		merge_object(st, tv && is_object(tv) ? tv->val.binary.data : NULL, pv->val.binary.data);
	else
		pushJsonbValue(st, WJB_VALUE, pv);
}

static JsonbValue *
merge_object(JsonbParseState **st, JsonbContainer *target, JsonbContainer *patch)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;

	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	if (target)
	{
		it = JsonbIteratorInit(target);
		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			JsonbValue	pv;

			if (tok != WJB_KEY)
				continue;
			(void) JsonbIteratorNext(&it, &v, true);
			if (getKeyJsonValueFromContainer(patch, k.val.string.val, k.val.string.len, &pv))
				push_merged(st, &k, &v, &pv);
			else
			{
				pushJsonbValue(st, WJB_KEY, &k);
				pushJsonbValue(st, WJB_VALUE, &v);
			}
		}
	}
	it = JsonbIteratorInit(patch);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		JsonbValue	tv;

		if (tok != WJB_KEY)
			continue;
		(void) JsonbIteratorNext(&it, &v, true);
		if (target && getKeyJsonValueFromContainer(target, k.val.string.val, k.val.string.len, &tv))
			continue;			/* handled above */
		push_merged(st, &k, NULL, &v);
	}
	return pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

Jsonb *
jdb_merge_patch(Jsonb *target, Jsonb *patch)
{
	JsonbParseState *st = NULL;

	if (!JB_ROOT_IS_OBJECT(patch))
		return patch;			/* RFC 7396: a non-object replaces */
	return JsonbValueToJsonb(merge_object(&st, JB_ROOT_IS_OBJECT(target) ? &target->root : NULL,
										  &patch->root));
}

/* merge_patch(target, patch) -> jsonb (RFC 7396) */
Datum
jsondb_merge_patch(PG_FUNCTION_ARGS)
{
	PG_RETURN_JSONB_P(jdb_merge_patch(PG_GETARG_JSONB_P(0), PG_GETARG_JSONB_P(1)));
}

/* patch(store, key, delta) -> the new document */
Datum
jsondb_patch(PG_FUNCTION_ARGS)
{
	JdbStore   *s = store_arg(fcinfo, "patch");
	StringInfoData pk,
				pk2;
	Jsonb	   *old,
			   *doc,
			   *delta;
	uint64		version;
	const char *why;

	key_arg(fcinfo, 1, &pk, "patch");
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("jsondb.patch: delta must not be NULL")));
	delta = PG_GETARG_JSONB_P(2);
	if (!JB_ROOT_IS_OBJECT(delta))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("jsondb.patch: the delta must be a JSON object (a merge patch)")));
	old = jdb_get_doc(s, (uint8 *) pk.data, pk.len, &version);
	if (old == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("jsondb.patch: no document with key %s in store \"%s\"",
						JsonbToCString(NULL, &jdb_key_to_jsonb((uint8 *) pk.data, pk.len)->root, 0),
						s->name)));
	doc = jdb_merge_patch(old, delta);
	check_doc(doc, "patch");
	initStringInfo(&pk2);
	if (jdb_eval_keypath(doc, &s->kp, &pk2, &why) != JDB_EVAL_OK ||
		pk2.len != pk.len || memcmp(pk2.data, pk.data, pk.len) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("jsondb.patch: a patch must not change or remove the document's key")));
	(void) write_doc(s, (uint8 *) pk.data, pk.len, old, version, doc);
	PG_RETURN_JSONB_P(doc);
}
