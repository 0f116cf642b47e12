/*
 * ddl.c — C helpers behind the jsondb.* definition functions (which are
 * PL/pgSQL in flowdb--0.1.sql and keep the definitions in jsondb.stores).
 *
 * Every definition change first takes the store's lock exclusively
 * (_lock_store_ddl), so it waits for committing writers of the store and
 * makes later committers that used the old definition fail with 40001.
 * Engine data is removed with transactional range deletes; a new index is
 * backfilled from the latest committed documents plus the transaction's own.
 */
#include "jsondb.h"

#include "miscadmin.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(jsondb_purge_store);
PG_FUNCTION_INFO_V1(jsondb_purge_index);
PG_FUNCTION_INFO_V1(jsondb_purge_database);
PG_FUNCTION_INFO_V1(jsondb_backfill_index);

static void
purge_prefix(const uint8 *p, int len)
{
	uint8	   *end;
	int			end_len;

	if (!flowdb_prefix_successor(p, len, &end, &end_len))
		elog(ERROR, "jsondb: prefix has no successor");
	flowdb_xact_delete_range(p, len, end, end_len);
}

/* _purge_store(id int): delete every record of the store */
Datum
jsondb_purge_store(PG_FUNCTION_ARGS)
{
	uint8		p[9];

	jdb_store_prefix_of(PG_GETARG_INT32(0), p);
	purge_prefix(p, 9);
	PG_RETURN_VOID();
}

/* _purge_index(store_id int, index_id int): delete the index's entries */
Datum
jsondb_purge_index(PG_FUNCTION_ARGS)
{
	uint8		p[12];
	int			ix = PG_GETARG_INT32(1);

	jdb_store_prefix_of(PG_GETARG_INT32(0), p);
	p[9] = 'i';
	p[10] = (uint8) (ix >> 8);
	p[11] = (uint8) ix;
	purge_prefix(p, 12);
	PG_RETURN_VOID();
}

/* _purge_database(): every jsondb record of this database (CREATE EXTENSION) */
Datum
jsondb_purge_database(PG_FUNCTION_ARGS)
{
	uint8		p[5];

	(void) flowdb_db_prefix(p, FLOWDB_KIND_JSONDB);
	purge_prefix(p, 5);
	PG_RETURN_VOID();
}

/* _backfill_index(store text, index text) */
Datum
jsondb_backfill_index(PG_FUNCTION_ARGS)
{
	JdbStore   *s;
	JdbIndex   *ix;

	jdb_txn_begin();
	s = jdb_store_lookup_text(PG_GETARG_TEXT_PP(0));
	ix = jdb_index_lookup(s, text_to_cstring(PG_GETARG_TEXT_PP(1)));
	jdb_scan_latest = true;
	PG_TRY();
	{
		jdb_index_backfill(s, ix);
	}
	PG_FINALLY();
	{
		jdb_scan_latest = false;
	}
	PG_END_TRY();
	PG_RETURN_VOID();
}

void
jsondb_init(void)
{
	jdb_catalog_register();
	jdb_txn_register();
}
