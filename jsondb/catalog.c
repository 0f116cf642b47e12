/*
 * catalog.c — store and index definitions.
 *
 * Definitions are rows of the per-database table jsondb.stores (created by
 * CREATE EXTENSION flowdb), changed only by the jsondb.* DDL functions, which
 * bump def_version and send a relcache invalidation for the table.  Each
 * backend caches parsed definitions by name.  An invalidation never frees
 * definitions in use: it marks the cache stale, and the old cache memory is
 * released at the end of the transaction.
 */
#include "jsondb.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

typedef struct CacheEntry
{
	char		name[JDB_MAX_NAME + 1]; /* hash key */
	JdbStore   *store;
} CacheEntry;

static MemoryContext cache_cxt = NULL;
static HTAB *cache = NULL;
static List *retired = NIL;		/* stale cache contexts, freed at xact end */
static Oid	stores_relid = InvalidOid;

static void
cache_retire(void)
{
	if (cache_cxt)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		retired = lappend(retired, cache_cxt);
		MemoryContextSwitchTo(old);
	}
	cache_cxt = NULL;
	cache = NULL;
}

static void
relcache_cb(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == stores_relid)
		cache_retire();
}

static void
xact_cb(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT)
	{
		ListCell   *lc;

		foreach(lc, retired)
			MemoryContextDelete((MemoryContext) lfirst(lc));
		list_free(retired);
		retired = NIL;
		if (event == XACT_EVENT_ABORT)
			cache_retire();		/* definitions read by the aborted xact */
	}
}

void
jdb_catalog_register(void)
{
	CacheRegisterRelcacheCallback(relcache_cb, (Datum) 0);
	RegisterXactCallback(xact_cb, NULL);
}

void
jdb_store_prefix_of(int32 store_id, uint8 *out9)
{
	int			n = flowdb_db_prefix(out9, FLOWDB_KIND_JSONDB);

	out9[n++] = (uint8) ((uint32) store_id >> 24);
	out9[n++] = (uint8) ((uint32) store_id >> 16);
	out9[n++] = (uint8) ((uint32) store_id >> 8);
	out9[n++] = (uint8) store_id;
}

static bool
json_bool(JsonbContainer *c, const char *k)
{
	JsonbValue *v = getKeyJsonValueFromContainer(c, k, strlen(k), NULL);

	return v && v->type == jbvBool && v->val.boolean;
}

static void
parse_indexes(JdbStore *s, Jsonb *ixs)
{
	int			n = JB_ROOT_IS_ARRAY(ixs) ? JB_ROOT_COUNT(ixs) : 0;

	s->nindexes = n;
	s->indexes = palloc0(Max(n, 1) * sizeof(JdbIndex));
	for (int i = 0; i < n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(&ixs->root, i);
		JsonbContainer *c = e->val.binary.data;
		JdbIndex   *ix = &s->indexes[i];
		JsonbValue *name = getKeyJsonValueFromContainer(c, "name", 4, NULL);
		JsonbValue *id = getKeyJsonValueFromContainer(c, "id", 2, NULL);
		JsonbValue *kp = getKeyJsonValueFromContainer(c, "key_path", 8, NULL);

		if (!name || name->type != jbvString || !id || id->type != jbvNumeric || !kp)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("jsondb: malformed index definition in store \"%s\"", s->name)));
		strlcpy(ix->name, pnstrdup(name->val.string.val, name->val.string.len), sizeof(ix->name));
		ix->id = DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(id->val.numeric)));
		ix->unique = json_bool(c, "unique");
		ix->multi_entry = json_bool(c, "multi_entry");
		jdb_keypath_parse(JsonbValueToJsonb(kp), &ix->kp, "an index");
	}
}

/* Load one store by name via SPI into the cache context; NULL if absent. */
static JdbStore *
load_store(const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	JdbStore   *s = NULL;
	int			rc;

	args[0] = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "jsondb: SPI_connect failed");
	rc = SPI_execute_with_args("SELECT id, def_version, key_path, auto_increment, watched, indexes "
							   "FROM jsondb.stores WHERE name = $1",
							   1, argtypes, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "jsondb: reading jsondb.stores failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(cache_cxt);

		s = palloc0(sizeof(JdbStore));
		strlcpy(s->name, name, sizeof(s->name));
		s->id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		s->def_version = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		jdb_keypath_parse(DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 3, &isnull)), &s->kp, "a store");
		s->auto_increment = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		s->watched = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		parse_indexes(s, DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 6, &isnull)));
		jdb_store_prefix_of(s->id, s->prefix);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return s;
}

static JdbStore *
lookup(const char *name, bool missing_ok)
{
	CacheEntry *e;
	bool		found;
	JdbStore   *s;

	if (strlen(name) < 1 || strlen(name) > JDB_MAX_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("jsondb: store name must be 1 to %d bytes long", JDB_MAX_NAME)));
	if (cache == NULL)
	{
		HASHCTL		ctl;

		if (!OidIsValid(stores_relid) || cache_cxt == NULL)
			stores_relid = flowdb_extension_table_relid("jsondb", "stores");
		cache_cxt = AllocSetContextCreate(CacheMemoryContext, "jsondb store cache",
										  ALLOCSET_SMALL_SIZES);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = JDB_MAX_NAME + 1;
		ctl.entrysize = sizeof(CacheEntry);
		ctl.hcxt = cache_cxt;
		cache = hash_create("jsondb stores", 16, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	e = hash_search(cache, name, HASH_FIND, &found);
	if (found && e->store)
		return e->store;
	s = load_store(name);
	if (s == NULL)
	{
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("jsondb: store \"%s\" does not exist", name),
				 errhint("Create it with jsondb.create_store(name, key_path).")));
	}
	/* the load may have processed an invalidation that reset the cache */
	if (cache == NULL)
		return s;
	e = hash_search(cache, name, HASH_ENTER, &found);
	e->store = s;
	return s;
}

JdbStore *
jdb_store_lookup(const char *name)
{
	return lookup(name, false);
}

JdbStore *
jdb_store_lookup_text(text *name)
{
	return lookup(text_to_cstring(name), false);
}

JdbIndex *
jdb_index_lookup(JdbStore *s, const char *name)
{
	for (int i = 0; i < s->nindexes; i++)
		if (strcmp(s->indexes[i].name, name) == 0)
			return &s->indexes[i];
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("jsondb: index \"%s\" does not exist on store \"%s\"", name, s->name)));
	return NULL;
}

/* ---------------------------------------------------------- engine keys */

void
jdb_sub_prefix(const JdbStore *s, char sub, StringInfo out)
{
	appendBinaryStringInfo(out, (const char *) s->prefix, 9);
	appendStringInfoChar(out, sub);
}

void
jdb_doc_key(const JdbStore *s, StringInfo out, const uint8 *pk, int pklen)
{
	jdb_sub_prefix(s, 'd', out);
	appendBinaryStringInfo(out, (const char *) pk, pklen);
}

void
jdb_index_prefix(const JdbStore *s, const JdbIndex *ix, StringInfo out)
{
	jdb_sub_prefix(s, 'i', out);
	appendStringInfoChar(out, (char) (ix->id >> 8));
	appendStringInfoChar(out, (char) (ix->id & 0xFF));
}

/* ------------------------------------------------------- DDL helpers */

PG_FUNCTION_INFO_V1(jsondb_check_key_path);
PG_FUNCTION_INFO_V1(jsondb_invalidate);

/* _check_key_path(key_path jsonb, what text): raises if invalid */
Datum
jsondb_check_key_path(PG_FUNCTION_ARGS)
{
	JdbKeyPath	kp;

	jdb_keypath_parse(PG_GETARG_JSONB_P(0), &kp, text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_VOID();
}

/* _invalidate(): every backend drops its cached definitions (at commit) */
Datum
jsondb_invalidate(PG_FUNCTION_ARGS)
{
	CacheInvalidateRelcacheByRelid(flowdb_extension_table_relid("jsondb", "stores"));
	PG_RETURN_VOID();
}
