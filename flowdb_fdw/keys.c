/*
 * keys.c — engine key layout and keyspace resolution.
 *
 * Engine key of a record in keyspace K of database D:
 *
 *   D (4 bytes, big-endian OID) | 'k' | len(K) (1 byte, 1..63) | K | user key
 *
 * The database OID comes first, so databases never see each other's data.
 * The kind byte separates object kinds ('k' SQL-function keyspaces; 't' and
 * 'j' reserved for the table access method and jsondb).  The keyspace name
 * is length-prefixed, so a user key can never reach into another keyspace's
 * prefix: every key of K starts with exactly the bytes above.
 *
 * Keyspaces are rows of the per-database catalog table flowdb.keyspaces.
 * Lookups are cached per backend; the cache is dropped on any relcache
 * invalidation of that table (create/drop_keyspace send one).
 *
 * flowdb_extension_table_relid resolves the extension's catalog tables
 * (flowdb.keyspaces here, jsondb.stores in jsondb/catalog.c) by name.
 */
#include "flowdb.h"

#include "catalog/namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

int
flowdb_db_prefix(uint8 *out, char kind)
{
	uint32		oid = MyDatabaseId;

	out[0] = (uint8) (oid >> 24);
	out[1] = (uint8) (oid >> 16);
	out[2] = (uint8) (oid >> 8);
	out[3] = (uint8) oid;
	out[4] = (uint8) kind;
	return 5;
}

static void
check_keyspace_name(const char *name, int len)
{
	if (len < 1 || len > FLOWDB_MAX_KEYSPACE_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("flowdb: keyspace name must be 1 to %d bytes long, got %d",
						FLOWDB_MAX_KEYSPACE_NAME, len)));
}

void
flowdb_keyspace_init(FlowdbKeyspace *ks, const char *name, int name_len)
{
	int			n;

	check_keyspace_name(name, name_len);
	memcpy(ks->name, name, name_len);
	ks->name[name_len] = '\0';
	n = flowdb_db_prefix(ks->prefix, FLOWDB_KIND_KEYSPACE);
	ks->prefix[n++] = (uint8) name_len;
	memcpy(ks->prefix + n, name, name_len);
	ks->prefix_len = n + name_len;
}

/* ------------------------------------------------------------- the cache */

typedef struct KeyspaceCacheEntry
{
	char		name[FLOWDB_MAX_KEYSPACE_NAME + 1]; /* hash key */
} KeyspaceCacheEntry;

static HTAB *keyspace_cache = NULL;
static Oid	keyspaces_relid = InvalidOid;

void
flowdb_keyspace_cache_reset(void)
{
	if (keyspace_cache)
	{
		hash_destroy(keyspace_cache);
		keyspace_cache = NULL;
	}
	keyspaces_relid = InvalidOid;
}

static void
relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == keyspaces_relid)
		flowdb_keyspace_cache_reset();
}

void
flowdb_keyspace_cache_register(void)
{
	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
}

Oid
flowdb_extension_table_relid(const char *schema, const char *table)
{
	Oid			nsp = get_namespace_oid(schema, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(table, nsp) : InvalidOid;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("flowdb: table %s.%s does not exist", schema, table),
				 errhint("Run CREATE EXTENSION flowdb in this database.")));
	return relid;
}

static bool
catalog_has_keyspace(const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	bool		found;
	int			rc;

	args[0] = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "flowdb: SPI_connect failed");
	rc = SPI_execute_with_args("SELECT 1 FROM flowdb.keyspaces WHERE name = $1",
							   1, argtypes, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "flowdb: keyspace lookup failed: %s", SPI_result_code_string(rc));
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

static bool
keyspace_exists(const char *name)
{
	bool		found;

	if (keyspace_cache == NULL)
	{
		HASHCTL		ctl;

		keyspaces_relid = flowdb_extension_table_relid("flowdb", "keyspaces");
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = FLOWDB_MAX_KEYSPACE_NAME + 1;
		ctl.entrysize = sizeof(KeyspaceCacheEntry);
		ctl.hcxt = TopMemoryContext;
		keyspace_cache = hash_create("flowdb keyspaces", 16, &ctl,
									 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	hash_search(keyspace_cache, name, HASH_FIND, &found);
	if (found)
		return true;
	if (!catalog_has_keyspace(name))
		return false;
	/* the SPI call may have processed an invalidation that reset the cache */
	if (keyspace_cache)
		hash_search(keyspace_cache, name, HASH_ENTER, NULL);
	return true;
}

void
flowdb_keyspace_lookup(FlowdbKeyspace *ks, text *name)
{
	flowdb_keyspace_init(ks, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
	if (!keyspace_exists(ks->name))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("flowdb: keyspace \"%s\" does not exist", ks->name),
				 errhint("Create it with SELECT flowdb.create_keyspace('%s').", ks->name)));
}

/* ------------------------------------------------------------------ keys */

static uint8 *
encode(const FlowdbKeyspace *ks, const char *key, int key_len, int *out_len)
{
	int			max_user = (int) LSM_MAX_KEY_SIZE - ks->prefix_len;
	uint8	   *out;

	if (key_len > max_user)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("flowdb: key is %d bytes, the limit in keyspace \"%s\" is %d bytes",
						key_len, ks->name, max_user)));
	out = palloc(ks->prefix_len + key_len);
	memcpy(out, ks->prefix, ks->prefix_len);
	memcpy(out + ks->prefix_len, key, key_len);
	*out_len = ks->prefix_len + key_len;
	return out;
}

uint8 *
flowdb_encode_key(const FlowdbKeyspace *ks, const char *key, int key_len, int *out_len)
{
	if (key_len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("flowdb: key must not be empty")));
	return encode(ks, key, key_len, out_len);
}

uint8 *
flowdb_encode_bound(const FlowdbKeyspace *ks, const char *key, int key_len, int *out_len)
{
	return encode(ks, key, key_len, out_len);
}

bool
flowdb_prefix_successor(const uint8 *p, int len, uint8 **out, int *out_len)
{
	while (len > 0 && p[len - 1] == 0xFF)
		len--;
	if (len == 0)
		return false;
	*out = palloc(len);
	memcpy(*out, p, len);
	(*out)[len - 1]++;
	*out_len = len;
	return true;
}

int
flowdb_key_cmp(const uint8 *a, size_t alen, const uint8 *b, size_t blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}
