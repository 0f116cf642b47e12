/*
 * read.c — key ranges over a store or an index: count, get_all,
 * get_all_keys, delete_range, get_by_index, range_by_index.
 *
 * A range [lower, upper] (either open, either NULL = unbounded) over encoded
 * keys K under an engine prefix P becomes engine bounds [lo, hi):
 *   lo = P|lower            (closed)   or succ(P|lower)   (open)
 *   hi = succ(P|upper)      (closed)   or P|upper         (open)
 * where succ(x) is the smallest key above every key starting with x.  Index
 * entries append the primary key after the index key, and encodings are
 * self-delimiting, so the same bounds select whole index keys.
 *
 * Directions (IndexedDB): next / prev walk in key order (index: then
 * primary-key order) up / down; nextunique / prevunique yield one record
 * per distinct index key, the one with the lowest primary key.
 */
#include "jsondb.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(jsondb_get_all);
PG_FUNCTION_INFO_V1(jsondb_get_all_keys);
PG_FUNCTION_INFO_V1(jsondb_count);
PG_FUNCTION_INFO_V1(jsondb_delete_range);
PG_FUNCTION_INFO_V1(jsondb_get_by_index);
PG_FUNCTION_INFO_V1(jsondb_range_by_index);

void
jdb_range_make(JdbRange *r, const char *prefix, int plen,
			   const StringInfo lower, bool lower_open,
			   const StringInfo upper, bool upper_open)
{
	uint8	   *succ;
	int			slen;

	initStringInfo(&r->lo);
	initStringInfo(&r->hi);
	r->has_hi = true;
	appendBinaryStringInfo(&r->lo, prefix, plen);
	if (lower)
	{
		appendBinaryStringInfo(&r->lo, lower->data, lower->len);
		if (lower_open && flowdb_prefix_successor((uint8 *) r->lo.data, r->lo.len, &succ, &slen))
		{
			resetStringInfo(&r->lo);
			appendBinaryStringInfo(&r->lo, (char *) succ, slen);
		}
	}
	appendBinaryStringInfo(&r->hi, prefix, plen);
	if (upper)
	{
		appendBinaryStringInfo(&r->hi, upper->data, upper->len);
		if (upper_open)
			return;
	}
	if (flowdb_prefix_successor((uint8 *) r->hi.data, r->hi.len, &succ, &slen))
	{
		resetStringInfo(&r->hi);
		appendBinaryStringInfo(&r->hi, (char *) succ, slen);
	}
	else
		r->has_hi = false;
}

/* jdb_scan_tracks (txn.c): a document row from a scan must be tracked for
 * OCC unless it is the transaction's own write (then its snapshot state was
 * tracked when it was written). */

/* ---------------------------------------------------------- arguments */

typedef enum
{
	DIR_NEXT,
	DIR_NEXTUNIQUE,
	DIR_PREV,
	DIR_PREVUNIQUE
} Direction;

static Direction
direction_arg(FunctionCallInfo fcinfo, int argno)
{
	char	   *d;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return DIR_NEXT;
	d = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (strcmp(d, "next") == 0)
		return DIR_NEXT;
	if (strcmp(d, "nextunique") == 0)
		return DIR_NEXTUNIQUE;
	if (strcmp(d, "prev") == 0)
		return DIR_PREV;
	if (strcmp(d, "prevunique") == 0)
		return DIR_PREVUNIQUE;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("jsondb: invalid direction \"%s\"", d),
			 errhint("Use next, nextunique, prev or prevunique.")));
	return DIR_NEXT;
}

static StringInfo
bound_arg(FunctionCallInfo fcinfo, int argno, const char *what)
{
	StringInfo	k;

	if (PG_ARGISNULL(argno))
		return NULL;
	k = makeStringInfo();
	jdb_encode_jsonb_or_error(PG_GETARG_JSONB_P(argno), k, what);
	return k;
}

static bool
bool_arg(FunctionCallInfo fcinfo, int argno)
{
	return PG_NARGS() > argno && !PG_ARGISNULL(argno) && PG_GETARG_BOOL(argno);
}

static uint64
count_arg(FunctionCallInfo fcinfo, int argno, const char *what)
{
	int64		n;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return 0;
	n = PG_GETARG_INT64(argno);
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("jsondb.%s: count must be >= 0 (0 or NULL = all)", what)));
	return (uint64) n;
}

static void
check_range(StringInfo lo, StringInfo hi, const char *what)
{
	if (lo && hi && flowdb_key_cmp((uint8 *) lo->data, lo->len, (uint8 *) hi->data, hi->len) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("jsondb.%s: lower bound is greater than upper bound", what)));
}

/* ------------------------------------------------------------ results */

typedef struct Out
{
	Tuplestorestate *ts;
	TupleDesc	desc;
} Out;

static void
out_begin(FunctionCallInfo fcinfo, Out *o)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("jsondb: set-valued function called in a context that cannot accept a set")));
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &o->desc) != TYPEFUNC_COMPOSITE)
	{
		o->desc = CreateTemplateTupleDesc(1);
		TupleDescInitEntry(o->desc, (AttrNumber) 1, "value", JSONBOID, -1, 0);
	}
	o->desc = BlessTupleDesc(o->desc);
	/* random access (backward fetches) only when the caller needs it */
	o->ts = tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0,
								  false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = o->ts;
	rsinfo->setDesc = o->desc;
	MemoryContextSwitchTo(old);
}

static void
out_row(Out *o, Jsonb *a, Jsonb *b, Jsonb *c)
{
	Datum		v[3];
	bool		n[3] = {false, false, false};

	v[0] = JsonbPGetDatum(a);
	v[1] = b ? JsonbPGetDatum(b) : (Datum) 0;
	v[2] = c ? JsonbPGetDatum(c) : (Datum) 0;
	n[1] = b == NULL;
	n[2] = c == NULL;
	tuplestore_putvalues(o->ts, o->desc, v, n);
}

/* --------------------------------------------------------- store ranges */

typedef bool (*DocVisit) (void *arg, const uint8 *pk, int pklen, const lsm_record *rec);

/* Documents of s with pk in the range, in pk order (reverse: descending). */
static void
scan_docs(JdbStore *s, StringInfo lower, bool lower_open, StringInfo upper, bool upper_open,
		  bool reverse, DocVisit visit, void *arg)
{
	StringInfoData pre;
	JdbRange	r;
	JdbScan    *sc;
	lsm_record	rec;

	initStringInfo(&pre);
	jdb_sub_prefix(s, 'd', &pre);
	jdb_range_make(&r, pre.data, pre.len, lower, lower_open, upper, upper_open);
	sc = jdb_scan_open((uint8 *) pre.data, pre.len, (uint8 *) r.lo.data, r.lo.len, false,
					   r.has_hi ? (uint8 *) r.hi.data : NULL, r.hi.len, false, reverse);
	while (jdb_scan_next(sc, &rec))
	{
		CHECK_FOR_INTERRUPTS();
		if (jdb_scan_tracks(&rec))
			jdb_track(rec.key, rec.key_len, rec.value, rec.value_len, true);
		if (!visit(arg, rec.key + 10, rec.key_len - 10, &rec))
			break;
	}
	jdb_scan_close(sc);
}

typedef struct GetAllState
{
	Out			out;
	uint64		limit;
	uint64		n;
	bool		keys_only;
} GetAllState;

static bool
get_all_visit(void *arg, const uint8 *pk, int pklen, const lsm_record *rec)
{
	GetAllState *st = arg;

	if (st->keys_only)
		out_row(&st->out, jdb_key_to_jsonb(pk, pklen), NULL, NULL);
	else
		out_row(&st->out, jdb_doc_decode(rec->value, rec->value_len, NULL), NULL, NULL);
	return !(st->limit && ++st->n >= st->limit);
}

static Datum
get_all_common(FunctionCallInfo fcinfo, bool keys_only, const char *what)
{
	JdbStore   *s;
	StringInfo	lo,
				hi;
	GetAllState st;
	Direction	dir;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("jsondb.%s: store must not be NULL", what)));
	jdb_txn_begin();
	s = jdb_store_lookup_text(PG_GETARG_TEXT_PP(0));
	lo = bound_arg(fcinfo, 1, what);
	hi = bound_arg(fcinfo, 2, what);
	check_range(lo, hi, what);
	memset(&st, 0, sizeof(st));
	st.limit = count_arg(fcinfo, 5, what);
	st.keys_only = keys_only;
	dir = direction_arg(fcinfo, 6);
	out_begin(fcinfo, &st.out);
	scan_docs(s, lo, bool_arg(fcinfo, 3), hi, bool_arg(fcinfo, 4),
			  dir == DIR_PREV || dir == DIR_PREVUNIQUE, get_all_visit, &st);
	return (Datum) 0;
}

/* get_all(store, lower, upper, lower_open, upper_open, count, direction) -> setof doc */
Datum
jsondb_get_all(PG_FUNCTION_ARGS)
{
	return get_all_common(fcinfo, false, "get_all");
}

/* get_all_keys(...) -> setof key */
Datum
jsondb_get_all_keys(PG_FUNCTION_ARGS)
{
	return get_all_common(fcinfo, true, "get_all_keys");
}

static bool
count_visit(void *arg, const uint8 *pk, int pklen, const lsm_record *rec)
{
	(*(int64 *) arg)++;
	return true;
}

/* count(store, lower, upper, lower_open, upper_open) -> bigint */
Datum
jsondb_count(PG_FUNCTION_ARGS)
{
	JdbStore   *s;
	StringInfo	lo,
				hi;
	int64		n = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("jsondb.count: store must not be NULL")));
	jdb_txn_begin();
	s = jdb_store_lookup_text(PG_GETARG_TEXT_PP(0));
	lo = bound_arg(fcinfo, 1, "count");
	hi = bound_arg(fcinfo, 2, "count");
	check_range(lo, hi, "count");
	scan_docs(s, lo, bool_arg(fcinfo, 3), hi, bool_arg(fcinfo, 4), false, count_visit, &n);
	PG_RETURN_INT64(n);
}

typedef struct DelItem
{
	StringInfo	pk;
	Jsonb	   *doc;
} DelItem;

static bool
delete_visit(void *arg, const uint8 *pk, int pklen, const lsm_record *rec)
{
	List	  **l = arg;
	DelItem    *d = palloc(sizeof(DelItem));

	d->pk = makeStringInfo();
	appendBinaryStringInfo(d->pk, (const char *) pk, pklen);
	d->doc = jdb_doc_decode(rec->value, rec->value_len, NULL);
	*l = lappend(*l, d);
	return true;
}

/* delete_range(store, lower, upper, lower_open, upper_open) -> documents deleted */
Datum
jsondb_delete_range(PG_FUNCTION_ARGS)
{
	JdbStore   *s;
	StringInfo	lo,
				hi;
	List	   *l = NIL;
	ListCell   *lc;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("jsondb.delete_range: store must not be NULL")));
	jdb_txn_begin();
	s = jdb_store_lookup_text(PG_GETARG_TEXT_PP(0));
	lo = bound_arg(fcinfo, 1, "delete_range");
	hi = bound_arg(fcinfo, 2, "delete_range");
	check_range(lo, hi, "delete_range");
	scan_docs(s, lo, bool_arg(fcinfo, 3), hi, bool_arg(fcinfo, 4), false, delete_visit, &l);
	foreach(lc, l)
	{
		DelItem    *d = lfirst(lc);

		jdb_delete_doc(s, (uint8 *) d->pk->data, d->pk->len, d->doc);
	}
	PG_RETURN_INT64(list_length(l));
}

/* ---------------------------------------------------------- index ranges */

/*
 * Visit the documents of index entries in the engine range [lo, hi) of
 * index ix in direction dir.  visit gets (index key, pk, doc); it returns
 * false to stop.
 */

/*
 * The document of pk through the transaction (recorded for OCC), or NULL.
 * With docbuf it is decoded into docbuf (valid until the next call),
 * otherwise palloc'd.
 */
static Jsonb *
fetch_doc(JdbStore *s, StringInfo dk, const uint8 *pk, int pklen, StringInfo docbuf)
{
	const uint8 *v;
	int			vlen;

	resetStringInfo(dk);
	jdb_doc_key(s, dk, pk, pklen);
	if (!jdb_read_view((uint8 *) dk->data, dk->len, &v, &vlen, true))
		return NULL;
	return docbuf ? jdb_doc_decode_into(v, vlen, docbuf) : jdb_doc_decode(v, vlen, NULL);
}

/*
 * Index entries whose documents are read together (jdb_read_view_many).
 * The batch starts small and doubles up to JDB_READ_MANY_MAX, so a scan
 * that stops early (a LIMIT) reads few documents it does not use.
 */
typedef struct PendingRows
{
	int			n;
	int			cap;
	StringInfoData bytes;		/* index keys and pks of the batch */
	int			ik_at[JDB_READ_MANY_MAX],
				ik_len[JDB_READ_MANY_MAX],
				pk_at[JDB_READ_MANY_MAX],
				pk_len[JDB_READ_MANY_MAX];
} PendingRows;

static void
pending_add(PendingRows *p, const uint8 *ik, int iklen, const uint8 *pk, int pklen)
{
	p->ik_at[p->n] = p->bytes.len;
	p->ik_len[p->n] = iklen;
	appendBinaryStringInfo(&p->bytes, (const char *) ik, iklen);
	p->pk_at[p->n] = p->bytes.len;
	p->pk_len[p->n] = pklen;
	appendBinaryStringInfo(&p->bytes, (const char *) pk, pklen);
	p->n++;
}

/*
 * Reads the pending rows' documents and visits them in order (each read
 * recorded for OCC as it is used); false if visit stopped the scan.
 */
static bool
pending_visit(JdbStore *s, PendingRows *p, JdbIndexVisit visit, void *arg,
			  MemoryContext row_cxt, StringInfo docbuf)
{
	MemoryContext outer = CurrentMemoryContext;
	StringInfoData keys;
	int			key_at[JDB_READ_MANY_MAX];
	const uint8 *kp[JDB_READ_MANY_MAX];
	int			klen[JDB_READ_MANY_MAX];
	const uint8 *val[JDB_READ_MANY_MAX];
	int			vlen[JDB_READ_MANY_MAX];
	bool		present[JDB_READ_MANY_MAX];
	bool		go = true;

	initStringInfo(&keys);
	for (int i = 0; i < p->n; i++)
	{
		key_at[i] = keys.len;
		jdb_doc_key(s, &keys, (uint8 *) p->bytes.data + p->pk_at[i], p->pk_len[i]);
		klen[i] = keys.len - key_at[i];
	}
	for (int i = 0; i < p->n; i++)
		kp[i] = (uint8 *) keys.data + key_at[i];
	jdb_read_view_many(p->n, kp, klen, val, vlen, present);
	for (int i = 0; i < p->n && go; i++)
	{
		Jsonb	   *doc;

		jdb_track(kp[i], klen[i], NULL, 0, present[i]);
		if (!present[i])
			continue;
		if (row_cxt)
			MemoryContextSwitchTo(row_cxt);
		doc = docbuf ? jdb_doc_decode_into(val[i], vlen[i], docbuf)
			: jdb_doc_decode(val[i], vlen[i], NULL);
		go = visit(arg, (uint8 *) p->bytes.data + p->ik_at[i], p->ik_len[i],
				   (uint8 *) p->bytes.data + p->pk_at[i], p->pk_len[i], doc);
		if (row_cxt)
		{
			MemoryContextSwitchTo(outer);
			MemoryContextReset(row_cxt);
		}
	}
	pfree(keys.data);
	p->n = 0;
	resetStringInfo(&p->bytes);
	p->cap = Min(p->cap * 2, JDB_READ_MANY_MAX);
	return go;
}

/*
 * transient: the row's document lives in a buffer reused by the next row,
 * and whatever visit allocates in a context reset after the row, so visit
 * must copy what it keeps.  Otherwise both stay in the caller's context.
 */
static void
scan_index_range(JdbStore *s, JdbIndex *ix, const JdbRange *r, int dir,
				 JdbIndexVisit visit, void *arg, bool transient)
{
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext row_cxt = transient ?
		AllocSetContextCreate(CurrentMemoryContext, "jsondb index row", ALLOCSET_DEFAULT_SIZES) :
		NULL;
	StringInfoData dk;
	StringInfoData pre;
	JdbScan    *sc;
	lsm_record	rec;
	bool		reverse = dir == DIR_PREV || dir == DIR_PREVUNIQUE;
	bool		uniq = dir == DIR_NEXTUNIQUE || dir == DIR_PREVUNIQUE;
	StringInfoData last_ik,
				pend_pk;
	bool		have_last = false,
				pending = false;
	StringInfoData docbuf_data;
	StringInfo	docbuf = NULL;	/* transient: the row's document, reused */
	PendingRows rows;

	if (transient)
	{
		initStringInfo(&docbuf_data);
		docbuf = &docbuf_data;
	}
	initStringInfo(&pre);
	jdb_index_prefix(s, ix, &pre);
	initStringInfo(&last_ik);
	initStringInfo(&pend_pk);
	initStringInfo(&dk);
	rows.n = 0;
	rows.cap = 8;
	initStringInfo(&rows.bytes);
	sc = jdb_scan_open((uint8 *) pre.data, pre.len, (uint8 *) r->lo.data, r->lo.len, false,
					   r->has_hi ? (uint8 *) r->hi.data : NULL, r->hi.len, false, reverse);
	for (;;)
	{
		bool		more = jdb_scan_next(sc, &rec);
		const uint8 *ik = NULL,
				   *pk = NULL;
		int			iklen = 0,
					pklen = 0;
		bool		same = false;

		CHECK_FOR_INTERRUPTS();
		if (more)
		{
			ik = rec.key + pre.len;
			iklen = jdb_key_length(ik, rec.key_len - pre.len);
			if (iklen < 0)
				continue;
			if (ix->unique)
			{
				pk = rec.value;
				pklen = rec.value_len;
			}
			else
			{
				pk = ik + iklen;
				pklen = rec.key_len - pre.len - iklen;
			}
			same = have_last && last_ik.len == iklen && memcmp(last_ik.data, ik, iklen) == 0;
		}
		/* prevunique: emit the group's last-seen (lowest pk) entry at its end */
		if (dir == DIR_PREVUNIQUE && pending && (!more || !same))
		{
			Jsonb	   *doc;
			bool		go = true;

			pending = false;
			if (row_cxt)
				MemoryContextSwitchTo(row_cxt);
			doc = fetch_doc(s, &dk, (uint8 *) pend_pk.data, pend_pk.len, docbuf);
			if (doc)
				go = visit(arg, (uint8 *) last_ik.data, last_ik.len, (uint8 *) pend_pk.data,
						   pend_pk.len, doc);
			if (row_cxt)
			{
				MemoryContextSwitchTo(outer);
				MemoryContextReset(row_cxt);
			}
			if (!go)
				break;
		}
		if (!more)
		{
			if (rows.n > 0)
				(void) pending_visit(s, &rows, visit, arg, row_cxt, docbuf);
			break;
		}
		if (!same)
		{
			resetStringInfo(&last_ik);
			appendBinaryStringInfo(&last_ik, (const char *) ik, iklen);
			have_last = true;
		}
		if (dir == DIR_PREVUNIQUE)
		{
			resetStringInfo(&pend_pk);
			appendBinaryStringInfo(&pend_pk, (const char *) pk, pklen);
			pending = true;
			continue;
		}
		if (uniq && same)
			continue;
		pending_add(&rows, ik, iklen, pk, pklen);
		if (rows.n == rows.cap && !pending_visit(s, &rows, visit, arg, row_cxt, docbuf))
			break;
	}
	jdb_scan_close(sc);
	if (row_cxt)
		MemoryContextDelete(row_cxt);
	if (docbuf)
		pfree(docbuf->data);
	pfree(rows.bytes.data);
}

void
jdb_scan_index_range(JdbStore *s, JdbIndex *ix, const JdbRange *r, int dir,
					 JdbIndexVisit visit, void *arg)
{
	scan_index_range(s, ix, r, dir, visit, arg, false);
}

typedef struct IdxOut
{
	Out			out;
	uint64		limit;
	uint64		n;
	bool		first_only;
	Jsonb	   *first;
	MemoryContext keep_cxt;		/* where first and ikj are kept */
	StringInfoData ik;			/* the last index key and its jsonb */
	Jsonb	   *ikj;
} IdxOut;

static bool
idx_visit(void *arg, const uint8 *ik, int iklen, const uint8 *pk, int pklen, Jsonb *doc)
{
	IdxOut	   *st = arg;

	if (st->first_only)
	{
		/* doc lives in the row context: keep a copy */
		MemoryContext old = MemoryContextSwitchTo(st->keep_cxt);

		st->first = palloc(VARSIZE(doc));
		memcpy(st->first, doc, VARSIZE(doc));
		MemoryContextSwitchTo(old);
		return false;
	}
	/* runs of entries share their index key: convert it once per run */
	if (st->ikj == NULL || st->ik.len != iklen || memcmp(st->ik.data, ik, iklen) != 0)
	{
		MemoryContext old = MemoryContextSwitchTo(st->keep_cxt);

		if (st->ik.data == NULL)
			initStringInfo(&st->ik);
		if (st->ikj)
			pfree(st->ikj);
		resetStringInfo(&st->ik);
		appendBinaryStringInfo(&st->ik, (const char *) ik, iklen);
		st->ikj = jdb_key_to_jsonb(ik, iklen);
		MemoryContextSwitchTo(old);
	}
	out_row(&st->out, st->ikj, jdb_key_to_jsonb(pk, pklen), doc);
	return !(st->limit && ++st->n >= st->limit);
}

/* get_by_index(store, index, value) -> the first document (lowest pk) or NULL */
Datum
jsondb_get_by_index(PG_FUNCTION_ARGS)
{
	JdbStore   *s;
	JdbIndex   *ix;
	StringInfo	k;
	StringInfoData pre;
	JdbRange	r;
	IdxOut		st;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("jsondb.get_by_index: arguments must not be NULL")));
	jdb_txn_begin();
	s = jdb_store_lookup_text(PG_GETARG_TEXT_PP(0));
	ix = jdb_index_lookup(s, text_to_cstring(PG_GETARG_TEXT_PP(1)));
	k = bound_arg(fcinfo, 2, "get_by_index");
	initStringInfo(&pre);
	jdb_index_prefix(s, ix, &pre);
	if (ix->unique && pre.len + k->len <= LSM_MAX_KEY_SIZE / 2)
	{
		/* a unique entry's engine key is exactly prefix | index key, its
		 * value the primary key: two point reads, no scan.  Like the scan,
		 * only the document is recorded for OCC. */
		uint8	   *pk;
		int			pklen;
		Jsonb	   *doc;

		appendBinaryStringInfo(&pre, k->data, k->len);
		if (!jdb_read((uint8 *) pre.data, pre.len, &pk, &pklen, false))
			PG_RETURN_NULL();
		doc = jdb_get_doc(s, pk, pklen, NULL);
		if (doc == NULL)
			PG_RETURN_NULL();
		PG_RETURN_JSONB_P(doc);
	}
	jdb_range_make(&r, pre.data, pre.len, k, false, k, false);
	memset(&st, 0, sizeof(st));
	st.first_only = true;
	st.keep_cxt = CurrentMemoryContext;
	scan_index_range(s, ix, &r, DIR_NEXT, idx_visit, &st, true);
	if (st.first == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(st.first);
}

/* range_by_index(store, index, lower, upper, lower_open, upper_open, count,
 * direction) -> setof (index_key, key, doc) */
Datum
jsondb_range_by_index(PG_FUNCTION_ARGS)
{
	JdbStore   *s;
	JdbIndex   *ix;
	StringInfo	lo,
				hi;
	StringInfoData pre;
	JdbRange	r;
	IdxOut		st;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("jsondb.range_by_index: store and index must not be NULL")));
	jdb_txn_begin();
	s = jdb_store_lookup_text(PG_GETARG_TEXT_PP(0));
	ix = jdb_index_lookup(s, text_to_cstring(PG_GETARG_TEXT_PP(1)));
	lo = bound_arg(fcinfo, 2, "range_by_index");
	hi = bound_arg(fcinfo, 3, "range_by_index");
	check_range(lo, hi, "range_by_index");
	initStringInfo(&pre);
	jdb_index_prefix(s, ix, &pre);
	jdb_range_make(&r, pre.data, pre.len, lo, bool_arg(fcinfo, 4), hi, bool_arg(fcinfo, 5));
	memset(&st, 0, sizeof(st));
	st.limit = count_arg(fcinfo, 6, "range_by_index");
	out_begin(fcinfo, &st.out);
	st.keep_cxt = CurrentMemoryContext;
	scan_index_range(s, ix, &r, direction_arg(fcinfo, 7), idx_visit, &st, true);
	return (Datum) 0;
}
