/*
 * fdw_table.c — what a flowdb foreign table is: options, columns, row codec.
 *
 * Two kinds of table share the wrapper (the handler dispatches per table):
 * a table with option store is a JsonDB document store (jsondb/store_fdw_*.c);
 * every other one is a keyspace table, described here.
 *
 * Options
 *   table   store 'name'      a JsonDB store table (nothing else allowed)
 *           keyspace 'name'   the keyspace holding the rows (default: the
 *                             table's name, pinned as an option at CREATE)
 *           ttl_secs 'n'      expiry of rows written without an expire_at
 *                             value: 0 = never; default flowdb.default_ttl_secs
 *   column  key / ts / expire_at 'true'   the column playing that role
 *           (default: the columns named key, ts and expire_at)
 *
 * The key column is text or varchar; ts is bigint, timestamptz or timestamp;
 * expire_at is bigint (Unix seconds) or timestamptz.  Every other column is
 * stored in the record value (fdw.h has the encoding), except that a table
 * whose only other column is "value bytea" stores the bytes raw, so it reads
 * and writes the same records as flowdb.put / flowdb.get.
 */
#include "fdw.h"
#include "jsondb.h"

#include "access/htup_details.h"
#include "access/reloptions.h"
#include "access/table.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "datatype/timestamp.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "parser/parsetree.h"

PG_FUNCTION_INFO_V1(flowdb_fdw_handler);
PG_FUNCTION_INFO_V1(flowdb_fdw_validator);
PG_FUNCTION_INFO_V1(flowdb_fdw_table_keyspace);

/* ------------------------------------------------------------ validator */

static bool
option_bool(DefElem *d)
{
	return defGetBoolean(d);
}

static int64
parse_ttl(DefElem *d)
{
	char	   *s = defGetString(d);
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("flowdb: ttl_secs must be an integer >= 0 (0 = never expire), got \"%s\"", s)));
	return (int64) v;
}

static void
check_keyspace_option(DefElem *d)
{
	char	   *s = defGetString(d);
	int			len = strlen(s);

	if (len < 1 || len > FLOWDB_MAX_KEYSPACE_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("flowdb: keyspace name must be 1 to %d bytes long, got %d",
						FLOWDB_MAX_KEYSPACE_NAME, len)));
}

static void
check_store_option(DefElem *d)
{
	char	   *s = defGetString(d);
	int			len = strlen(s);

	if (len < 1 || len > JDB_MAX_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("flowdb: store name must be 1 to %d bytes long, got %d",
						JDB_MAX_NAME, len)));
}

Datum
flowdb_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *lc;
	bool		has_store = false,
				has_keyspace_options = false;

	foreach(lc, options)
	{
		DefElem    *d = lfirst(lc);
		bool		ok = false;

		if (catalog == ForeignTableRelationId)
		{
			if (strcmp(d->defname, "store") == 0)
			{
				check_store_option(d);
				has_store = true;
				ok = true;
			}
			else if (strcmp(d->defname, "keyspace") == 0)
			{
				check_keyspace_option(d);
				ok = true;
			}
			else if (strcmp(d->defname, "ttl_secs") == 0)
			{
				(void) parse_ttl(d);
				ok = true;
			}
		}
		else if (catalog == AttributeRelationId)
		{
			if (strcmp(d->defname, "key") == 0 || strcmp(d->defname, "ts") == 0 ||
				strcmp(d->defname, "expire_at") == 0)
			{
				(void) option_bool(d);
				ok = true;
			}
		}
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("flowdb: invalid option \"%s\"", d->defname),
					 errhint(catalog == ForeignTableRelationId ?
							 "Valid table options are keyspace and ttl_secs." :
							 catalog == AttributeRelationId ?
							 "Valid column options are key, ts and expire_at (boolean)." :
							 "The flowdb wrapper, its servers and user mappings take no options.")));
		if (catalog == ForeignTableRelationId && strcmp(d->defname, "store") != 0)
			has_keyspace_options = true;
	}
	if (has_store && has_keyspace_options)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("flowdb: a store table takes no keyspace or ttl_secs option"),
				 errhint("Option store makes a JsonDB document store table; keyspace and ttl_secs "
						 "belong to keyspace tables.")));
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------- table cache */

typedef struct FdwTableEntry
{
	Oid			relid;			/* hash key */
	FdwTable   *table;			/* in fdw_cxt */
} FdwTableEntry;

static HTAB *table_cache = NULL;
static MemoryContext fdw_cxt = NULL;

static void
table_cache_invalidate(Datum arg, Oid relid)
{
	FdwTableEntry *e;

	if (table_cache == NULL)
		return;
	if (relid == InvalidOid)
	{
		HASH_SEQ_STATUS s;

		hash_seq_init(&s, table_cache);
		while ((e = hash_seq_search(&s)) != NULL)
			e->table = NULL;	/* freed lazily: callers may hold it this query */
		return;
	}
	e = hash_search(table_cache, &relid, HASH_FIND, NULL);
	if (e)
		e->table = NULL;
}

void
fdw_table_cache_register(void)
{
	CacheRegisterRelcacheCallback(table_cache_invalidate, (Datum) 0);
}

/* The column whose option `opt` is true, else the one named `name`. */
static AttrNumber
find_role_column(Relation rel, const char *opt, const char *name)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	by_option = 0,
				by_name = 0;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);
		ListCell   *lc;

		if (a->attisdropped)
			continue;
		foreach(lc, GetForeignColumnOptions(RelationGetRelid(rel), a->attnum))
		{
			DefElem    *d = lfirst(lc);

			if (strcmp(d->defname, opt) == 0 && defGetBoolean(d))
			{
				if (by_option)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_COLUMN_DEFINITION),
							 errmsg("flowdb: foreign table \"%s\" has more than one column with option %s",
									RelationGetRelationName(rel), opt)));
				by_option = a->attnum;
			}
		}
		if (strcmp(NameStr(a->attname), name) == 0)
			by_name = a->attnum;
	}
	return by_option ? by_option : by_name;
}

static FdwTable *
build_table(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	ForeignTable *ft = GetForeignTable(RelationGetRelid(rel));
	FdwTable   *t = palloc0(sizeof(FdwTable));
	const char *ksname = RelationGetRelationName(rel);
	const char *relname = RelationGetRelationName(rel);
	ListCell   *lc;
	int			nother = 0;

	t->relid = RelationGetRelid(rel);
	t->natts = desc->natts;
	t->ttl_secs = -1;
	foreach(lc, ft->options)
	{
		DefElem    *d = lfirst(lc);

		if (strcmp(d->defname, "keyspace") == 0)
			ksname = defGetString(d);
		else if (strcmp(d->defname, "ttl_secs") == 0)
			t->ttl_secs = parse_ttl(d);
	}
	flowdb_keyspace_init(&t->ks, ksname, strlen(ksname));

	t->key_attno = find_role_column(rel, "key", "key");
	t->ts_attno = find_role_column(rel, "ts", "ts");
	t->expire_attno = find_role_column(rel, "expire_at", "expire_at");
	if (t->key_attno == 0 || t->ts_attno == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_COLUMN_DEFINITION),
				 errmsg("flowdb: foreign table \"%s\" needs a key column and a ts column", relname),
				 errhint("Name them key and ts, or mark them with OPTIONS (key 'true') and OPTIONS (ts 'true').")));
	if (t->key_attno == t->ts_attno || t->expire_attno == t->key_attno ||
		t->expire_attno == t->ts_attno)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_COLUMN_DEFINITION),
				 errmsg("flowdb: foreign table \"%s\": one column cannot play two of key, ts and expire_at",
						relname)));

	t->key_type = TupleDescAttr(desc, t->key_attno - 1)->atttypid;
	t->key_collation = TupleDescAttr(desc, t->key_attno - 1)->attcollation;
	if (t->key_type != TEXTOID && t->key_type != VARCHAROID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("flowdb: the key column of \"%s\" must be text or varchar, not %s",
						relname, format_type_be(t->key_type))));
	t->ts_type = TupleDescAttr(desc, t->ts_attno - 1)->atttypid;
	if (t->ts_type != INT8OID && t->ts_type != TIMESTAMPTZOID && t->ts_type != TIMESTAMPOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("flowdb: the ts column of \"%s\" must be bigint, timestamptz or timestamp, not %s",
						relname, format_type_be(t->ts_type))));
	if (t->expire_attno)
	{
		t->expire_type = TupleDescAttr(desc, t->expire_attno - 1)->atttypid;
		if (t->expire_type != INT8OID && t->expire_type != TIMESTAMPTZOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("flowdb: the expire_at column of \"%s\" must be bigint or timestamptz, not %s",
							relname, format_type_be(t->expire_type))));
	}

	t->val_attno = palloc(sizeof(AttrNumber) * Max(desc->natts, 1));
	t->val_typlen = palloc(sizeof(int16) * Max(desc->natts, 1));
	t->val_byval = palloc(sizeof(bool) * Max(desc->natts, 1));
	t->val_dropped = palloc(sizeof(bool) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attnum == t->key_attno || a->attnum == t->ts_attno ||
			a->attnum == t->expire_attno)
			continue;
		t->val_attno[t->nvals] = a->attnum;
		t->val_typlen[t->nvals] = a->attlen;
		t->val_byval[t->nvals] = a->attbyval;
		t->val_dropped[t->nvals] = a->attisdropped;
		t->nvals++;
		if (!a->attisdropped)
		{
			nother++;
			if (a->atttypid == BYTEAOID && strcmp(NameStr(a->attname), "value") == 0)
				t->raw_attno = a->attnum;
		}
	}
	if (nother != 1)
		t->raw_attno = 0;
	return t;
}

static void
copy_into(FdwTable *dst, const FdwTable *src, MemoryContext cxt)
{
	int			n = Max(src->nvals, 1);

	*dst = *src;
	dst->val_attno = MemoryContextAlloc(cxt, sizeof(AttrNumber) * n);
	dst->val_typlen = MemoryContextAlloc(cxt, sizeof(int16) * n);
	dst->val_byval = MemoryContextAlloc(cxt, sizeof(bool) * n);
	dst->val_dropped = MemoryContextAlloc(cxt, sizeof(bool) * n);
	memcpy(dst->val_attno, src->val_attno, sizeof(AttrNumber) * src->nvals);
	memcpy(dst->val_typlen, src->val_typlen, sizeof(int16) * src->nvals);
	memcpy(dst->val_byval, src->val_byval, sizeof(bool) * src->nvals);
	memcpy(dst->val_dropped, src->val_dropped, sizeof(bool) * src->nvals);
}

FdwTable *
fdw_table_get(Oid relid)
{
	FdwTableEntry *e;
	bool		found;
	Relation	rel;
	FdwTable   *built,
			   *t;
	text	   *ksname;

	if (table_cache == NULL)
	{
		HASHCTL		ctl;

		fdw_cxt = AllocSetContextCreate(TopMemoryContext, "flowdb foreign tables",
										ALLOCSET_SMALL_SIZES);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(FdwTableEntry);
		ctl.hcxt = fdw_cxt;
		table_cache = hash_create("flowdb foreign tables", 16, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(table_cache, &relid, HASH_FIND, &found);
	if (found && e->table)
	{
		FlowdbKeyspace ks;

		/* still there? (cached per backend; create/drop_keyspace reset it).
		 * Entries are never freed, so t stays valid if the lookup's catalog
		 * access invalidates the cache. */
		t = e->table;
		flowdb_keyspace_lookup(&ks, cstring_to_text(t->ks.name));
		return t;
	}

	rel = table_open(relid, AccessShareLock);
	built = build_table(rel);
	table_close(rel, AccessShareLock);
	/* the keyspace must exist (42704 otherwise); the check is cached */
	ksname = cstring_to_text(built->ks.name);
	flowdb_keyspace_lookup(&built->ks, ksname);

	t = MemoryContextAlloc(fdw_cxt, sizeof(FdwTable));
	copy_into(t, built, fdw_cxt);
	e = hash_search(table_cache, &relid, HASH_ENTER, NULL);
	e->table = t;
	return t;
}

/* flowdb._fdw_table_keyspace(oid) → text: checks the table's columns and
 * returns its keyspace name (for the DDL event trigger). */
Datum
flowdb_fdw_table_keyspace(PG_FUNCTION_ARGS)
{
	Relation	rel = table_open(PG_GETARG_OID(0), AccessShareLock);
	FdwTable   *t = build_table(rel);

	table_close(rel, AccessShareLock);
	PG_RETURN_TEXT_P(cstring_to_text(t->ks.name));
}

/* ---------------------------------------------------------------- codec */

static void
put_varint(StringInfo buf, uint64 v)
{
	while (v >= 0x80)
	{
		appendStringInfoChar(buf, (char) ((v & 0x7F) | 0x80));
		v >>= 7;
	}
	appendStringInfoChar(buf, (char) v);
}

static bool
get_varint(const uint8 **p, const uint8 *end, uint64 *out)
{
	uint64		v = 0;
	int			shift = 0;

	while (*p < end && shift < 64)
	{
		uint8		b = *(*p)++;

		v |= (uint64) (b & 0x7F) << shift;
		if (!(b & 0x80))
		{
			*out = v;
			return true;
		}
		shift += 7;
	}
	return false;
}

static void
corrupt_row(const FdwTable *t)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("flowdb: a record in keyspace \"%s\" is not a row of foreign table \"%s\"",
					t->ks.name, get_rel_name(t->relid)),
			 errhint("Records written with flowdb.put are readable through a table whose only "
					 "column besides key and ts is \"value bytea\".")));
}

uint8 *
fdw_encode_row(const FdwTable *t, const Datum *values, const bool *nulls, int *len)
{
	StringInfoData buf;
	int			nbytes = (t->nvals + 7) / 8;
	int			bitmap_at;

	if (t->raw_attno)
	{
		bytea	   *b;

		if (nulls[t->raw_attno - 1])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("flowdb: column \"value\" of a raw foreign table must not be NULL")));
		b = DatumGetByteaPP(values[t->raw_attno - 1]);
		*len = VARSIZE_ANY_EXHDR(b);
		return (uint8 *) VARDATA_ANY(b);
	}

	initStringInfo(&buf);
	appendStringInfoChar(&buf, FDW_ROW_FORMAT_V1);
	put_varint(&buf, t->nvals);
	bitmap_at = buf.len;
	for (int i = 0; i < nbytes; i++)
		appendStringInfoChar(&buf, 0);
	for (int i = 0; i < t->nvals; i++)
	{
		int			a = t->val_attno[i] - 1;
		int16		typlen = t->val_typlen[i];

		if (t->val_dropped[i] || nulls[a])
		{
			buf.data[bitmap_at + i / 8] |= (char) (1 << (i % 8));
			continue;
		}
		if (typlen > 0)
		{
			if (t->val_byval[i])
			{
				union
				{
					int16		i2;
					int32		i4;
					int64		i8;
					char		c;
				}			u;

				switch (typlen)
				{
					case 1:
						u.c = DatumGetChar(values[a]);
						break;
					case 2:
						u.i2 = DatumGetInt16(values[a]);
						break;
					case 4:
						u.i4 = DatumGetInt32(values[a]);
						break;
					case 8:
						u.i8 = DatumGetInt64(values[a]);
						break;
					default:
						elog(ERROR, "flowdb: unsupported by-value length %d", typlen);
				}
				appendBinaryStringInfo(&buf, (char *) &u, typlen);
			}
			else
				appendBinaryStringInfo(&buf, DatumGetPointer(values[a]), typlen);
		}
		else if (typlen == -1)
		{
			struct varlena *v = PG_DETOAST_DATUM_PACKED(values[a]);

			put_varint(&buf, VARSIZE_ANY_EXHDR(v));
			appendBinaryStringInfo(&buf, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
		}
		else
		{
			const char *s = DatumGetCString(values[a]);
			size_t		n = strlen(s);

			put_varint(&buf, n);
			appendBinaryStringInfo(&buf, s, n);
		}
	}
	*len = buf.len;
	return (uint8 *) buf.data;
}

static Datum
ts_datum(int64 ts)
{
	return Int64GetDatum(ts);	/* bigint, timestamp, timestamptz alike */
}

static Datum
expire_datum(const FdwTable *t, int64 expire_at)
{
	if (t->expire_type == INT8OID)
		return Int64GetDatum(expire_at);
	return TimestampTzGetDatum((TimestampTz) ((expire_at - (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)
											  * USECS_PER_SEC));
}

int64
fdw_expire_from_datum(const FdwTable *t, Datum d)
{
	int64		v;

	if (t->expire_type == INT8OID)
	{
		v = DatumGetInt64(d);
		if (v < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("flowdb: expire_at must be >= 0 Unix seconds (0 = never), got " INT64_FORMAT, v)));
		return v;
	}
	else
	{
		TimestampTz ts = DatumGetTimestampTz(d);
		int64		secs;

		if (TIMESTAMP_IS_NOEND(ts))
			return 0;
		if (TIMESTAMP_IS_NOBEGIN(ts))
			return 1;
		/* whole seconds, rounded up, so a row never expires early */
		secs = ts / USECS_PER_SEC + (ts % USECS_PER_SEC > 0 ? 1 : 0);
		secs += (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
		return secs < 1 ? 1 : secs;
	}
}

static Datum
read_fixed(const uint8 *p, int16 typlen, bool byval)
{
	if (byval)
	{
		switch (typlen)
		{
			case 1:
				return CharGetDatum(*(const char *) p);
			case 2:
				{
					int16		v;

					memcpy(&v, p, 2);
					return Int16GetDatum(v);
				}
			case 4:
				{
					int32		v;

					memcpy(&v, p, 4);
					return Int32GetDatum(v);
				}
			default:
				{
					int64		v;

					memcpy(&v, p, 8);
					return Int64GetDatum(v);
				}
		}
	}
	else
	{
		char	   *c = palloc(typlen);

		memcpy(c, p, typlen);
		return PointerGetDatum(c);
	}
}

void
fdw_decode_record(const FdwTable *t, const lsm_record *rec, const bool *needed,
				  Datum *values, bool *nulls)
{
	const uint8 *p,
			   *end,
			   *bitmap;
	uint64		n;

	for (int i = 0; i < t->natts; i++)
	{
		values[i] = (Datum) 0;
		nulls[i] = true;
	}
	if (!needed || needed[t->key_attno - 1])
	{
		values[t->key_attno - 1] =
			PointerGetDatum(cstring_to_text_with_len((const char *) rec->key + t->ks.prefix_len,
													 rec->key_len - t->ks.prefix_len));
		nulls[t->key_attno - 1] = false;
	}
	values[t->ts_attno - 1] = ts_datum(rec->ts);
	nulls[t->ts_attno - 1] = false;
	if (t->expire_attno && rec->expire_at != 0)
	{
		values[t->expire_attno - 1] = expire_datum(t, rec->expire_at);
		nulls[t->expire_attno - 1] = false;
	}

	if (t->raw_attno)
	{
		if (!needed || needed[t->raw_attno - 1])
		{
			bytea	   *b = palloc(VARHDRSZ + rec->value_len);

			SET_VARSIZE(b, VARHDRSZ + rec->value_len);
			memcpy(VARDATA(b), rec->value, rec->value_len);
			values[t->raw_attno - 1] = PointerGetDatum(b);
			nulls[t->raw_attno - 1] = false;
		}
		return;
	}
	if (t->nvals == 0)
		return;
	if (needed)
	{
		bool		any = false;

		for (int i = 0; i < t->nvals && !any; i++)
			any = needed[t->val_attno[i] - 1];
		if (!any)
			return;
	}

	p = rec->value;
	end = p + rec->value_len;
	if (p >= end || *p++ != FDW_ROW_FORMAT_V1 || !get_varint(&p, end, &n) ||
		(uint64) (end - p) < (n + 7) / 8)
		corrupt_row(t);
	bitmap = p;
	p += (n + 7) / 8;
	for (uint64 i = 0; i < n; i++)
	{
		int			a;
		int16		typlen;
		bool		want;

		if (bitmap[i / 8] & (1 << (i % 8)))
			continue;
		if (i >= (uint64) t->nvals)
			corrupt_row(t);		/* more columns than the table has */
		a = t->val_attno[i] - 1;
		typlen = t->val_typlen[i];
		want = !t->val_dropped[i] && (!needed || needed[a]);
		if (typlen > 0)
		{
			if (end - p < typlen)
				corrupt_row(t);
			if (want)
			{
				values[a] = read_fixed(p, typlen, t->val_byval[i]);
				nulls[a] = false;
			}
			p += typlen;
		}
		else
		{
			uint64		len;

			if (!get_varint(&p, end, &len) || (uint64) (end - p) < len)
				corrupt_row(t);
			if (want)
			{
				if (typlen == -1)
				{
					struct varlena *v = palloc(VARHDRSZ + len);

					SET_VARSIZE(v, VARHDRSZ + len);
					memcpy(VARDATA(v), p, len);
					values[a] = PointerGetDatum(v);
				}
				else
					values[a] = CStringGetDatum(pnstrdup((const char *) p, len));
				nulls[a] = false;
			}
			p += len;
		}
	}
}

/* -------------------------------------------------------------- handler
 *
 * One wrapper, two kinds of table.  `ks` holds the keyspace table callbacks
 * (fdw_plan.c / fdw_exec.c); the handler's callbacks below pick per table:
 * planner callbacks by the table's OID (its kind cached per backend in
 * jsondb/store_fdw_table.c), scans by the marker that starts a store scan
 * plan's fdw_private (a scan without a relation, such as a pushed-down
 * aggregate, is a keyspace plan), writes and ANALYZE by the relation.
 * Direct modification is only ever planned for keyspace tables.
 */

static FdwRoutine ks;
static bool ks_ready = false;

static const FdwRoutine *
keyspace_routine(void)
{
	if (!ks_ready)
	{
		memset(&ks, 0, sizeof(ks));
		ks.type = T_FdwRoutine;
		ks.GetForeignRelSize = fdw_get_rel_size;
		ks.GetForeignPaths = fdw_get_paths;
		ks.GetForeignPlan = fdw_get_plan;
		ks.AddForeignUpdateTargets = fdw_add_update_targets;
		ks.PlanForeignModify = fdw_plan_modify;
		ks.PlanDirectModify = fdw_plan_direct_modify;
		ks.GetForeignUpperPaths = fdw_get_upper_paths;
		fdw_exec_routines(&ks);
		ks_ready = true;
	}
	return &ks;
}

static bool
store_rel(Relation rel)
{
	return jdb_fdw_is_store_table(RelationGetRelid(rel));
}

static bool
store_rti(PlannerInfo *root, Index rti)
{
	return jdb_fdw_is_store_table(planner_rt_fetch(rti, root)->relid);
}

static bool
store_scan(ForeignScanState *node)
{
	List	   *priv = ((ForeignScan *) node->ss.ps.plan)->fdw_private;

	/* keyspace plans may start with NIL (no pushed conditions) */
	return priv != NIL && linitial(priv) != NULL && IsA(linitial(priv), String) &&
		strcmp(strVal(linitial(priv)), JDB_FDW_SCAN_MARKER) == 0;
}

static void
d_get_rel_size(PlannerInfo *root, RelOptInfo *rel, Oid relid)
{
	if (jdb_fdw_is_store_table(relid))
		jdb_fdw_get_rel_size(root, rel, relid);
	else
		ks.GetForeignRelSize(root, rel, relid);
}

static void
d_get_paths(PlannerInfo *root, RelOptInfo *rel, Oid relid)
{
	if (jdb_fdw_is_store_table(relid))
		jdb_fdw_get_paths(root, rel, relid);
	else
		ks.GetForeignPaths(root, rel, relid);
}

static ForeignScan *
d_get_plan(PlannerInfo *root, RelOptInfo *rel, Oid relid, ForeignPath *path, List *tlist,
		   List *clauses, Plan *outer)
{
	/* an upper relation's plan (aggregate pushdown) has no table: keyspace */
	if (OidIsValid(relid) && jdb_fdw_is_store_table(relid))
		return jdb_fdw_get_plan(root, rel, relid, path, tlist, clauses, outer);
	return ks.GetForeignPlan(root, rel, relid, path, tlist, clauses, outer);
}

/* no upper paths when a store table takes part */
static void
d_get_upper_paths(PlannerInfo *root, UpperRelationKind stage, RelOptInfo *input_rel,
				  RelOptInfo *output_rel, void *extra)
{
	int			i = -1;

	while ((i = bms_next_member(root->all_baserels, i)) >= 0)
	{
		RangeTblEntry *rte = planner_rt_fetch(i, root);

		if (rte->rtekind == RTE_RELATION && rte->relkind == RELKIND_FOREIGN_TABLE &&
			jdb_fdw_is_store_table(rte->relid))
			return;
	}
	ks.GetForeignUpperPaths(root, stage, input_rel, output_rel, extra);
}

static void
d_add_update_targets(PlannerInfo *root, Index rti, RangeTblEntry *rte, Relation rel)
{
	if (store_rel(rel))
		jdb_fdw_add_update_targets(root, rti, rte, rel);
	else
		ks.AddForeignUpdateTargets(root, rti, rte, rel);
}

static List *
d_plan_modify(PlannerInfo *root, ModifyTable *plan, Index rti, int subplan)
{
	if (store_rti(root, rti))
		return jdb_fdw_plan_modify(root, plan, rti, subplan);
	return ks.PlanForeignModify(root, plan, rti, subplan);
}

static bool
d_plan_direct_modify(PlannerInfo *root, ModifyTable *plan, Index rti, int subplan)
{
	if (store_rti(root, rti))
		return false;
	return ks.PlanDirectModify(root, plan, rti, subplan);
}

static void
d_begin_scan(ForeignScanState *node, int eflags)
{
	if (store_scan(node))
		jdb_fdw_begin_scan(node, eflags);
	else
		ks.BeginForeignScan(node, eflags);
}

static TupleTableSlot *
d_iterate(ForeignScanState *node)
{
	return store_scan(node) ? jdb_fdw_iterate(node) : ks.IterateForeignScan(node);
}

static void
d_rescan(ForeignScanState *node)
{
	if (store_scan(node))
		jdb_fdw_rescan(node);
	else
		ks.ReScanForeignScan(node);
}

static void
d_end_scan(ForeignScanState *node)
{
	if (store_scan(node))
		jdb_fdw_end_scan(node);
	else
		ks.EndForeignScan(node);
}

static void
d_explain_scan(ForeignScanState *node, ExplainState *es)
{
	if (store_scan(node))
		jdb_fdw_explain_scan(node, es);
	else
		ks.ExplainForeignScan(node, es);
}

static void
d_begin_modify(ModifyTableState *mt, ResultRelInfo *rinfo, List *priv, int subplan, int eflags)
{
	if (store_rel(rinfo->ri_RelationDesc))
		jdb_fdw_begin_modify(mt, rinfo, priv, subplan, eflags);
	else
		ks.BeginForeignModify(mt, rinfo, priv, subplan, eflags);
}

static void
d_begin_insert(ModifyTableState *mt, ResultRelInfo *rinfo)
{
	if (store_rel(rinfo->ri_RelationDesc))
		jdb_fdw_begin_insert(mt, rinfo);
	else
		ks.BeginForeignInsert(mt, rinfo);
}

static TupleTableSlot *
d_exec_insert(EState *es, ResultRelInfo *rinfo, TupleTableSlot *slot, TupleTableSlot *plan_slot)
{
	if (store_rel(rinfo->ri_RelationDesc))
		return jdb_fdw_exec_insert(es, rinfo, slot, plan_slot);
	return ks.ExecForeignInsert(es, rinfo, slot, plan_slot);
}

static TupleTableSlot *
d_exec_update(EState *es, ResultRelInfo *rinfo, TupleTableSlot *slot, TupleTableSlot *plan_slot)
{
	if (store_rel(rinfo->ri_RelationDesc))
		return jdb_fdw_exec_update(es, rinfo, slot, plan_slot);
	return ks.ExecForeignUpdate(es, rinfo, slot, plan_slot);
}

static TupleTableSlot *
d_exec_delete(EState *es, ResultRelInfo *rinfo, TupleTableSlot *slot, TupleTableSlot *plan_slot)
{
	if (store_rel(rinfo->ri_RelationDesc))
		return jdb_fdw_exec_delete(es, rinfo, slot, plan_slot);
	return ks.ExecForeignDelete(es, rinfo, slot, plan_slot);
}

static void
d_end_modify(EState *es, ResultRelInfo *rinfo)
{
	if (store_rel(rinfo->ri_RelationDesc))
		jdb_fdw_end_modify(es, rinfo);
	else
		ks.EndForeignModify(es, rinfo);
}

static void
d_end_insert(EState *es, ResultRelInfo *rinfo)
{
	if (store_rel(rinfo->ri_RelationDesc))
		jdb_fdw_end_modify(es, rinfo);
	else
		ks.EndForeignInsert(es, rinfo);
}

static int
d_updatable(Relation rel)
{
	if (store_rel(rel))
		return (1 << CMD_INSERT) | (1 << CMD_UPDATE) | (1 << CMD_DELETE);
	return ks.IsForeignRelUpdatable(rel);
}

static bool
d_analyze(Relation rel, AcquireSampleRowsFunc *func, BlockNumber *totalpages)
{
	if (store_rel(rel))
		return jdb_fdw_analyze(rel, func, totalpages);
	return ks.AnalyzeForeignTable(rel, func, totalpages);
}

Datum
flowdb_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *r = makeNode(FdwRoutine);

	/* keyspace callbacks nobody wraps (direct modify) go straight through */
	*r = *keyspace_routine();
	r->GetForeignRelSize = d_get_rel_size;
	r->GetForeignPaths = d_get_paths;
	r->GetForeignPlan = d_get_plan;
	r->GetForeignUpperPaths = d_get_upper_paths;
	r->AddForeignUpdateTargets = d_add_update_targets;
	r->PlanForeignModify = d_plan_modify;
	r->PlanDirectModify = d_plan_direct_modify;
	r->BeginForeignScan = d_begin_scan;
	r->IterateForeignScan = d_iterate;
	r->ReScanForeignScan = d_rescan;
	r->EndForeignScan = d_end_scan;
	r->ExplainForeignScan = d_explain_scan;
	r->BeginForeignModify = d_begin_modify;
	r->ExecForeignInsert = d_exec_insert;
	r->ExecForeignUpdate = d_exec_update;
	r->ExecForeignDelete = d_exec_delete;
	r->EndForeignModify = d_end_modify;
	r->BeginForeignInsert = d_begin_insert;
	r->EndForeignInsert = d_end_insert;
	r->IsForeignRelUpdatable = d_updatable;
	r->AnalyzeForeignTable = d_analyze;
	PG_RETURN_POINTER(r);
}
