/*
 * store_fdw_table.c — what a store foreign table is.
 *
 *   CREATE FOREIGN TABLE users (key jsonb, doc jsonb) SERVER flowdb
 *       OPTIONS (store 'users');
 *
 * A flowdb foreign table with the option `store` shows the documents of that
 * JsonDB store: column doc (jsonb, required) is the document, column key
 * (jsonb, optional) its primary key.  No other columns are allowed.  The
 * store itself is looked up when the table is used (42P01 if it does not
 * exist), so the table may be created before the store.
 *
 * Which kind a flowdb foreign table is (store or keyspace) and its column
 * layout are cached per backend, cleared by relcache invalidation.
 */
#include "jsondb.h"

#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(jsondb_fdw_check_table);

typedef struct KindEntry
{
	Oid			relid;			/* hash key */
	bool		valid;
	bool		is_store;
	JdbFdwTable *table;			/* store tables, once described; else NULL */
} KindEntry;

static HTAB *kinds = NULL;

static void
kinds_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS st;
	KindEntry  *e;

	if (kinds == NULL)
		return;
	hash_seq_init(&st, kinds);
	while ((e = hash_seq_search(&st)) != NULL)
		if (relid == InvalidOid || e->relid == relid)
			e->valid = false;	/* the table struct is kept: callers may hold it */
}

/* The entry kind_entry returned last: a COPY asks about the same table once
 * per row.  Entries stay where dynahash put them (none is ever removed). */
static KindEntry *last_kind = NULL;

static KindEntry *
kind_entry(Oid relid)
{
	KindEntry  *e;
	bool		found;

	if (last_kind && last_kind->relid == relid && last_kind->valid)
		return last_kind;
	if (kinds == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(KindEntry);
		ctl.hcxt = TopMemoryContext;
		kinds = hash_create("jsondb store tables", 16, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(kinds_invalidate, (Datum) 0);
	}
	e = hash_search(kinds, &relid, HASH_ENTER, &found);
	if (!found)
	{
		e->valid = false;
		e->table = NULL;
	}
	if (!e->valid)
	{
		ForeignTable *ft = GetForeignTable(relid);
		ListCell   *lc;
		bool		is_store = false;

		foreach(lc, ft->options)
			if (strcmp(((DefElem *) lfirst(lc))->defname, "store") == 0)
				is_store = true;
		/* the lookup may have run invalidations: find the entry again */
		e = hash_search(kinds, &relid, HASH_ENTER, &found);
		if (!found)
			e->table = NULL;
		e->is_store = is_store;
		e->table = NULL;
		e->valid = true;
	}
	last_kind = e;
	return e;
}

bool
jdb_fdw_is_store_table(Oid relid)
{
	return OidIsValid(relid) && kind_entry(relid)->is_store;
}

/* Describe rel as a store table: the store option and the columns. */
static void
describe(Relation rel, JdbFdwTable *t)
{
	TupleDesc	desc = RelationGetDescr(rel);
	ForeignTable *ft = GetForeignTable(RelationGetRelid(rel));
	const char *relname = RelationGetRelationName(rel);
	ListCell   *lc;

	memset(t, 0, sizeof(*t));
	t->relid = RelationGetRelid(rel);
	t->natts = desc->natts;
	foreach(lc, ft->options)
	{
		DefElem    *d = lfirst(lc);

		if (strcmp(d->defname, "store") == 0)
			strlcpy(t->store, defGetString(d), sizeof(t->store));
	}
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);
		const char *name = NameStr(a->attname);

		if (a->attisdropped)
			continue;
		if (strcmp(name, "doc") != 0 && strcmp(name, "key") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_DEFINITION),
					 errmsg("flowdb: store foreign table \"%s\" cannot have column \"%s\"",
							relname, name),
					 errhint("A store table has a column doc jsonb (the document) and optionally "
							 "key jsonb (its primary key), nothing else.")));
		if (a->atttypid != JSONBOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("flowdb: column \"%s\" of store foreign table \"%s\" must be jsonb, not %s",
							name, relname, format_type_be(a->atttypid))));
		if (strcmp(name, "doc") == 0)
			t->doc_attno = a->attnum;
		else
			t->key_attno = a->attnum;
	}
	if (t->doc_attno == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_COLUMN_DEFINITION),
				 errmsg("flowdb: store foreign table \"%s\" needs a column doc jsonb", relname)));
}

const JdbFdwTable *
jdb_fdw_table(Oid relid)
{
	KindEntry  *e = kind_entry(relid);
	Relation	rel;
	JdbFdwTable built;
	JdbFdwTable *t;

	if (!e->is_store)
		elog(ERROR, "jsondb: relation %u is not a store foreign table", relid);
	if (e->table)
		return e->table;
	rel = table_open(relid, AccessShareLock);
	describe(rel, &built);
	table_close(rel, AccessShareLock);
	t = MemoryContextAlloc(TopMemoryContext, sizeof(JdbFdwTable));
	*t = built;
	e = kind_entry(relid);
	e->table = t;
	return t;
}

JdbStore *
jdb_fdw_store(const JdbFdwTable *t)
{
	return jdb_store_lookup(t->store);
}

/* jsondb._fdw_check_table(oid): the column check, for the DDL event trigger
 * (so CREATE FOREIGN TABLE fails at once on a bad shape). */
Datum
jsondb_fdw_check_table(PG_FUNCTION_ARGS)
{
	Relation	rel = table_open(PG_GETARG_OID(0), AccessShareLock);
	JdbFdwTable t;

	describe(rel, &t);
	table_close(rel, AccessShareLock);
	PG_RETURN_VOID();
}
