/* flowdb--0.1.sql — CREATE EXTENSION flowdb (schema flowdb) */

\echo Use "CREATE EXTENSION flowdb" to load this file. \quit

-- ------------------------------------------------------------------ catalog

-- Named key spaces of this database.  Transactional and per database; the
-- records themselves live in the shared engine under a prefix of
-- (database OID, 'k', keyspace name).
CREATE TABLE flowdb.keyspaces (
    name       text PRIMARY KEY CHECK (octet_length(name) BETWEEN 1 AND 63),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- ------------------------------------------------------------ internal calls

CREATE FUNCTION flowdb._purge_keyspace(name text) RETURNS void
    AS 'MODULE_PATHNAME', 'flowdb_purge_keyspace' LANGUAGE C VOLATILE;
CREATE FUNCTION flowdb._purge_database() RETURNS void
    AS 'MODULE_PATHNAME', 'flowdb_purge_database' LANGUAGE C VOLATILE;

-- Fresh start for this database's key spaces (data of an earlier
-- installation, or of a dropped database whose OID was reused, is deleted).
-- This also fails early if the engine is not running.
SELECT flowdb._purge_database();
INSERT INTO flowdb.keyspaces (name) VALUES ('default');

-- --------------------------------------------------------------------- data

CREATE FUNCTION flowdb.put(key text, ts bigint, value bytea,
                           ttl_secs bigint DEFAULT NULL, keyspace text DEFAULT 'default')
    RETURNS void AS 'MODULE_PATHNAME', 'flowdb_put' LANGUAGE C VOLATILE;

CREATE FUNCTION flowdb.put_many(keys text[], tss bigint[], vals bytea[],
                                ttl_secs bigint DEFAULT NULL, keyspace text DEFAULT 'default')
    RETURNS bigint AS 'MODULE_PATHNAME', 'flowdb_put_many' LANGUAGE C VOLATILE;

CREATE FUNCTION flowdb.get(key text, ts bigint, keyspace text DEFAULT 'default')
    RETURNS bytea AS 'MODULE_PATHNAME', 'flowdb_get' LANGUAGE C VOLATILE;

CREATE FUNCTION flowdb.get_latest(key text, keyspace text DEFAULT 'default')
    RETURNS TABLE (key text, ts bigint, expire_at bigint, value bytea)
    AS 'MODULE_PATHNAME', 'flowdb_get_latest' LANGUAGE C VOLATILE ROWS 1;

CREATE FUNCTION flowdb.scan(prefix text DEFAULT NULL,
                            key_start text DEFAULT NULL, key_end text DEFAULT NULL,
                            ts_start bigint DEFAULT NULL, ts_end bigint DEFAULT NULL,
                            lim bigint DEFAULT NULL, reverse boolean DEFAULT false,
                            keyspace text DEFAULT 'default')
    RETURNS TABLE (key text, ts bigint, expire_at bigint, value bytea)
    AS 'MODULE_PATHNAME', 'flowdb_scan' LANGUAGE C VOLATILE ROWS 1000;

CREATE FUNCTION flowdb.delete(key text, ts bigint, keyspace text DEFAULT 'default')
    RETURNS void AS 'MODULE_PATHNAME', 'flowdb_delete' LANGUAGE C VOLATILE;

CREATE FUNCTION flowdb.delete_range(key_start text, key_end text, keyspace text DEFAULT 'default')
    RETURNS void AS 'MODULE_PATHNAME', 'flowdb_delete_range' LANGUAGE C VOLATILE;

-- RFC 7396 JSON merge patch: objects merge recursively, null removes a
-- member, anything else replaces.
CREATE FUNCTION flowdb.json_merge_patch(target jsonb, patch jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    result jsonb;
    k text;
    v jsonb;
BEGIN
    IF patch IS NULL OR jsonb_typeof(patch) <> 'object' THEN
        RETURN patch;
    END IF;
    IF target IS NULL OR jsonb_typeof(target) <> 'object' THEN
        result := '{}';
    ELSE
        result := target;
    END IF;
    FOR k, v IN SELECT e.key, e.value FROM jsonb_each(patch) e LOOP
        IF jsonb_typeof(v) = 'null' THEN
            result := result - k;
        ELSE
            result := jsonb_set(result, ARRAY[k], flowdb.json_merge_patch(result -> k, v), true);
        END IF;
    END LOOP;
    RETURN result;
END $$;

CREATE FUNCTION flowdb.patch(key text, ts bigint, value bytea,
                             ttl_secs bigint DEFAULT NULL, keyspace text DEFAULT 'default')
    RETURNS bytea AS 'MODULE_PATHNAME', 'flowdb_patch' LANGUAGE C VOLATILE;

-- ---------------------------------------------------------------- keyspaces

CREATE FUNCTION flowdb.create_keyspace(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'flowdb.create_keyspace: name must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF octet_length(name) NOT BETWEEN 1 AND 63 THEN
        RAISE EXCEPTION 'flowdb.create_keyspace: keyspace name must be 1 to 63 bytes long, got %',
            octet_length(name) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM flowdb.keyspaces k WHERE k.name = create_keyspace.name) THEN
        RAISE EXCEPTION 'flowdb: keyspace "%" already exists', name
            USING ERRCODE = 'duplicate_object';
    END IF;
    INSERT INTO flowdb.keyspaces (name) VALUES (create_keyspace.name);
    PERFORM flowdb._purge_keyspace(name);
END $$;

CREATE FUNCTION flowdb.drop_keyspace(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'flowdb.drop_keyspace: name must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF name = 'default' THEN
        RAISE EXCEPTION 'flowdb: keyspace "default" cannot be dropped'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Empty it with SELECT flowdb.delete_range(NULL, NULL).';
    END IF;
    DELETE FROM flowdb.keyspaces k WHERE k.name = drop_keyspace.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'flowdb: keyspace "%" does not exist', name
            USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM flowdb._purge_keyspace(name);
END $$;

-- -------------------------------------------------------------- maintenance

CREATE FUNCTION flowdb.flush() RETURNS void
    AS 'MODULE_PATHNAME', 'flowdb_flush' LANGUAGE C VOLATILE;
CREATE FUNCTION flowdb.compact(full boolean DEFAULT true) RETURNS void
    AS 'MODULE_PATHNAME', 'flowdb_compact' LANGUAGE C VOLATILE;
CREATE FUNCTION flowdb.gc() RETURNS bigint
    AS 'MODULE_PATHNAME', 'flowdb_gc' LANGUAGE C VOLATILE;
CREATE FUNCTION flowdb.checkpoint() RETURNS void
    AS 'MODULE_PATHNAME', 'flowdb_checkpoint' LANGUAGE C VOLATILE;

CREATE FUNCTION flowdb.stats() RETURNS TABLE (name text, value double precision)
    AS 'MODULE_PATHNAME', 'flowdb_stats' LANGUAGE C VOLATILE;
CREATE VIEW flowdb.engine_stats AS SELECT name, value FROM flowdb.stats();
CREATE FUNCTION flowdb.metrics() RETURNS text
    AS 'MODULE_PATHNAME', 'flowdb_metrics' LANGUAGE C VOLATILE;

-- --------------------------------------------------------------- privileges

GRANT USAGE ON SCHEMA flowdb TO PUBLIC;
GRANT SELECT ON flowdb.keyspaces, flowdb.engine_stats TO PUBLIC;

REVOKE ALL ON FUNCTION flowdb._purge_keyspace(text), flowdb._purge_database(),
    flowdb.create_keyspace(text), flowdb.drop_keyspace(text),
    flowdb.flush(), flowdb.compact(boolean), flowdb.gc(), flowdb.checkpoint()
    FROM PUBLIC;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'flowdb_admin') THEN
        CREATE ROLE flowdb_admin NOLOGIN;
    END IF;
END $$;

GRANT EXECUTE ON FUNCTION flowdb.create_keyspace(text), flowdb.drop_keyspace(text),
    flowdb.flush(), flowdb.compact(boolean), flowdb.gc(), flowdb.checkpoint()
    TO flowdb_admin;

-- ------------------------------------------------- foreign data wrapper
-- (issue 5) CREATE FOREIGN TABLE ... SERVER flowdb OPTIONS (keyspace ...)

CREATE FUNCTION flowdb._fdw_handler() RETURNS fdw_handler
    AS 'MODULE_PATHNAME', 'flowdb_fdw_handler' LANGUAGE C STRICT;
CREATE FUNCTION flowdb._fdw_validator(text[], oid) RETURNS void
    AS 'MODULE_PATHNAME', 'flowdb_fdw_validator' LANGUAGE C STRICT;
CREATE FUNCTION flowdb._fdw_table_keyspace(oid) RETURNS text
    AS 'MODULE_PATHNAME', 'flowdb_fdw_table_keyspace' LANGUAGE C STRICT;
-- (issue 6) JsonDB store tables: is a table one (option store), and the
-- check of its columns
CREATE FUNCTION flowdb._fdw_is_store(options text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS $$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_options_to_table(options) o
                   WHERE o.option_name = 'store') $$;
CREATE FUNCTION flowdb._fdw_check_store_table(oid) RETURNS void
    AS 'MODULE_PATHNAME', 'jsondb_fdw_check_table' LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER flowdb HANDLER flowdb._fdw_handler
    VALIDATOR flowdb._fdw_validator;
CREATE SERVER flowdb FOREIGN DATA WRAPPER flowdb;

-- After CREATE / ALTER FOREIGN TABLE on a flowdb server: check the columns,
-- pin the keyspace option (default: the table's name, so a later RENAME does
-- not move the table to another keyspace) and create the keyspace if it
-- does not exist.  Transactional like the command itself.
CREATE FUNCTION flowdb._fdw_on_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    ks text;
BEGIN
    FOR r IN
        SELECT DISTINCT c.objid, ft.ftoptions
        FROM pg_event_trigger_ddl_commands() c
        JOIN pg_foreign_table ft ON ft.ftrelid = c.objid
        JOIN pg_foreign_server s ON s.oid = ft.ftserver
        JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
        WHERE c.classid = 'pg_class'::regclass
          AND w.fdwhandler = 'flowdb._fdw_handler'::regproc AND NOT flowdb._fdw_is_store(ft.ftoptions)
    LOOP
        ks := flowdb._fdw_table_keyspace(r.objid);
        IF NOT EXISTS (SELECT 1 FROM pg_options_to_table(r.ftoptions) o
                       WHERE o.option_name = 'keyspace') THEN
            EXECUTE format('ALTER FOREIGN TABLE %s OPTIONS (ADD keyspace %L)',
                           r.objid::regclass, ks);
        END IF;
        IF NOT EXISTS (SELECT 1 FROM flowdb.keyspaces k WHERE k.name = ks) THEN
            INSERT INTO flowdb.keyspaces (name) VALUES (ks);
            PERFORM flowdb._purge_keyspace(ks);
        END IF;
    END LOOP;
    -- (issue 6) JsonDB store tables (option store): only their columns are
    -- checked; the store is looked up when the table is used
    FOR r IN
        SELECT DISTINCT c.objid
        FROM pg_event_trigger_ddl_commands() c
        JOIN pg_foreign_table ft ON ft.ftrelid = c.objid
        JOIN pg_foreign_server s ON s.oid = ft.ftserver
        JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
        WHERE c.classid = 'pg_class'::regclass
          AND w.fdwhandler = 'flowdb._fdw_handler'::regproc AND flowdb._fdw_is_store(ft.ftoptions)
    LOOP
        PERFORM flowdb._fdw_check_store_table(r.objid);
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION flowdb._fdw_on_ddl(), flowdb._fdw_table_keyspace(oid),
    flowdb._fdw_check_store_table(oid) FROM PUBLIC;

CREATE EVENT TRIGGER flowdb_foreign_tables ON ddl_command_end
    WHEN TAG IN ('CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE')
    EXECUTE FUNCTION flowdb._fdw_on_ddl();

-- --------------------------------------------------------------- jsondb
-- (issue 6) IndexedDB-style document stores: schema jsondb.  Definitions
-- live in jsondb.stores; documents, index entries, key generators and change
-- logs live in the engine under (database OID, 'j', store id).  See
-- jsondb/jsondb.h for the key layout.

CREATE SCHEMA jsondb;
GRANT USAGE ON SCHEMA jsondb TO PUBLIC;

CREATE SEQUENCE jsondb.store_ids;
CREATE TABLE jsondb.stores (
    name           text PRIMARY KEY CHECK (octet_length(name) BETWEEN 1 AND 63),
    id             int NOT NULL UNIQUE,
    def_version    bigint NOT NULL DEFAULT 1,
    key_path       jsonb NOT NULL,          -- "path" or ["path", ...]
    auto_increment boolean NOT NULL DEFAULT false,
    watched        boolean NOT NULL DEFAULT false,
    indexes        jsonb NOT NULL DEFAULT '[]',  -- [{name, id, key_path, unique, multi_entry}]
    next_index_id  int NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON jsondb.stores TO PUBLIC;

CREATE FUNCTION jsondb._check_key_path(key_path jsonb, what text) RETURNS void
    AS 'MODULE_PATHNAME', 'jsondb_check_key_path' LANGUAGE C STRICT;
CREATE FUNCTION jsondb._invalidate() RETURNS void
    AS 'MODULE_PATHNAME', 'jsondb_invalidate' LANGUAGE C;
CREATE FUNCTION jsondb._lock_store_ddl(store_id int) RETURNS void
    AS 'MODULE_PATHNAME', 'jsondb_lock_store_ddl' LANGUAGE C STRICT;
CREATE FUNCTION jsondb._purge_store(store_id int) RETURNS void
    AS 'MODULE_PATHNAME', 'jsondb_purge_store' LANGUAGE C STRICT;
CREATE FUNCTION jsondb._purge_index(store_id int, index_id int) RETURNS void
    AS 'MODULE_PATHNAME', 'jsondb_purge_index' LANGUAGE C STRICT;
CREATE FUNCTION jsondb._purge_database() RETURNS void
    AS 'MODULE_PATHNAME', 'jsondb_purge_database' LANGUAGE C;
CREATE FUNCTION jsondb._backfill_index(store text, index text) RETURNS void
    AS 'MODULE_PATHNAME', 'jsondb_backfill_index' LANGUAGE C STRICT;

SELECT jsondb._purge_database();

-- The stored definition of a store, as jsondb.stores() and apply_store use it.
CREATE FUNCTION jsondb._definition(s jsondb.stores) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('name', s.name, 'key_path', s.key_path,
        'auto_increment', s.auto_increment, 'watched', s.watched,
        'indexes', COALESCE((SELECT jsonb_agg(i - 'id' ORDER BY i->>'name')
                             FROM jsonb_array_elements(s.indexes) i), '[]'))
$$;

CREATE FUNCTION jsondb._create_store(name text, key_path jsonb, auto_increment boolean)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    sid int;
BEGIN
    IF name IS NULL OR key_path IS NULL THEN
        RAISE EXCEPTION 'jsondb.create_store: name and key_path must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM jsondb._check_key_path(key_path, format('store "%s"', name));
    IF auto_increment AND (jsonb_typeof(key_path) = 'array' OR key_path = '""') THEN
        RAISE EXCEPTION 'jsondb.create_store: a key generator needs a single non-empty key path'
            USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM jsondb.stores s WHERE s.name = _create_store.name) THEN
        RAISE EXCEPTION 'jsondb: store "%" already exists', name USING ERRCODE = '42P07';
    END IF;
    sid := nextval('jsondb.store_ids');
    INSERT INTO jsondb.stores (name, id, key_path, auto_increment)
        VALUES (name, sid, key_path, COALESCE(auto_increment, false));
    PERFORM jsondb._purge_store(sid);
    PERFORM jsondb._invalidate();
END $$;

CREATE FUNCTION jsondb.create_store(name text, key_path text, auto_increment boolean DEFAULT false)
RETURNS void LANGUAGE sql AS $$ SELECT jsondb._create_store(name, to_jsonb(key_path), auto_increment) $$;
CREATE FUNCTION jsondb.create_store(name text, key_path text[], auto_increment boolean DEFAULT false)
RETURNS void LANGUAGE sql AS $$ SELECT jsondb._create_store(name, to_jsonb(key_path), auto_increment) $$;

CREATE FUNCTION jsondb._store_row(store text) RETURNS jsondb.stores
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    r jsondb.stores;
BEGIN
    SELECT * INTO r FROM jsondb.stores s WHERE s.name = store;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'jsondb: store "%" does not exist', store USING ERRCODE = '42P01';
    END IF;
    PERFORM jsondb._lock_store_ddl(r.id);
    SELECT * INTO r FROM jsondb.stores s WHERE s.name = store;   -- after the lock
    RETURN r;
END $$;

CREATE FUNCTION jsondb.delete_store(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    r jsondb.stores := jsondb._store_row(name);
BEGIN
    DELETE FROM jsondb.stores s WHERE s.id = r.id;
    PERFORM jsondb._purge_store(r.id);
    PERFORM jsondb._invalidate();
END $$;

CREATE FUNCTION jsondb.create_index(store text, name text, key_paths text[],
                                    "unique" boolean DEFAULT false, multi_entry boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    r jsondb.stores := jsondb._store_row(store);
    kp jsonb;
BEGIN
    IF name IS NULL OR octet_length(name) NOT BETWEEN 1 AND 63 THEN
        RAISE EXCEPTION 'jsondb.create_index: index name must be 1 to 63 bytes' USING ERRCODE = '22023';
    END IF;
    IF key_paths IS NULL OR cardinality(key_paths) = 0 THEN
        RAISE EXCEPTION 'jsondb.create_index: key_paths must name at least one path' USING ERRCODE = '22023';
    END IF;
    kp := CASE WHEN cardinality(key_paths) = 1 THEN to_jsonb(key_paths[1]) ELSE to_jsonb(key_paths) END;
    PERFORM jsondb._check_key_path(kp, format('index "%s"', name));
    IF multi_entry AND cardinality(key_paths) > 1 THEN
        RAISE EXCEPTION 'jsondb.create_index: a multi-entry index cannot have a compound key path'
            USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(r.indexes) i WHERE i->>'name' = name) THEN
        RAISE EXCEPTION 'jsondb: index "%" already exists on store "%"', name, store USING ERRCODE = '42P07';
    END IF;
    UPDATE jsondb.stores s SET
        indexes = s.indexes || jsonb_build_array(jsonb_build_object('name', name, 'id', s.next_index_id,
            'key_path', kp, 'unique', COALESCE("unique", false), 'multi_entry', COALESCE(multi_entry, false))),
        next_index_id = s.next_index_id + 1,
        def_version = s.def_version + 1
    WHERE s.id = r.id;
    PERFORM jsondb._purge_index(r.id, r.next_index_id);
    PERFORM jsondb._invalidate();
    PERFORM jsondb._backfill_index(store, name);
END $$;

CREATE FUNCTION jsondb.delete_index(store text, name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    r jsondb.stores := jsondb._store_row(store);
    ix jsonb;
BEGIN
    SELECT i INTO ix FROM jsonb_array_elements(r.indexes) i WHERE i->>'name' = name;
    IF ix IS NULL THEN
        RAISE EXCEPTION 'jsondb: index "%" does not exist on store "%"', name, store USING ERRCODE = '42704';
    END IF;
    UPDATE jsondb.stores s SET
        indexes = COALESCE((SELECT jsonb_agg(i) FROM jsonb_array_elements(s.indexes) i
                            WHERE i->>'name' <> name), '[]'),
        def_version = s.def_version + 1
    WHERE s.id = r.id;
    PERFORM jsondb._purge_index(r.id, (ix->>'id')::int);
    PERFORM jsondb._invalidate();
END $$;

-- watch(store, on): ring NOTIFY jsondb_changes after commits that change it
CREATE FUNCTION jsondb.watch(store text, "on" boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    r jsondb.stores := jsondb._store_row(store);
BEGIN
    UPDATE jsondb.stores s SET watched = COALESCE("on", false), def_version = s.def_version + 1
    WHERE s.id = r.id;
    PERFORM jsondb._invalidate();
END $$;

CREATE FUNCTION jsondb.stores() RETURNS TABLE (name text, definition jsonb)
LANGUAGE sql STABLE AS $$
    SELECT s.name, jsondb._definition(s) FROM jsondb.stores s ORDER BY s.name
$$;

-- apply_store({"name", "key_path", "auto_increment", "watched", "indexes": [{"name",
-- "key_path", "unique", "multi_entry"}]}): create what is missing, drop indexes
-- no longer listed; a different key path / generator / index definition fails.
CREATE FUNCTION jsondb.apply_store(definition jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    nm text := definition->>'name';
    kp jsonb := definition->'key_path';
    ai boolean := COALESCE((definition->>'auto_increment')::boolean, false);
    r jsondb.stores;
    want jsonb;
    have jsonb;
    ikp jsonb;
BEGIN
    IF jsonb_typeof(definition) IS DISTINCT FROM 'object' OR nm IS NULL OR kp IS NULL THEN
        RAISE EXCEPTION 'jsondb.apply_store: the definition needs "name" and "key_path"' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM jsondb.stores s WHERE s.name = nm) THEN
        PERFORM jsondb._create_store(nm, kp, ai);
    END IF;
    r := jsondb._store_row(nm);
    IF r.key_path <> kp OR r.auto_increment <> ai THEN
        RAISE EXCEPTION 'jsondb.apply_store: store "%" exists with a different key path or key generator', nm
            USING ERRCODE = '42P17',
                  DETAIL = format('existing: key_path %s, auto_increment %s; requested: key_path %s, auto_increment %s',
                                  r.key_path, r.auto_increment, kp, ai);
    END IF;
    IF definition ? 'watched' AND r.watched <> (definition->>'watched')::boolean THEN
        PERFORM jsondb.watch(nm, (definition->>'watched')::boolean);
    END IF;
    -- conflicts first, so that a failing definition changes nothing
    FOR want IN SELECT * FROM jsonb_array_elements(COALESCE(definition->'indexes', '[]')) LOOP
        ikp := want->'key_path';
        IF jsonb_typeof(ikp) = 'array' AND jsonb_array_length(ikp) = 1 THEN ikp := ikp->0; END IF;
        SELECT i INTO have FROM jsonb_array_elements(r.indexes) i WHERE i->>'name' = want->>'name';
        IF have IS NOT NULL AND (have->'key_path' <> ikp
                OR (have->>'unique')::boolean <> COALESCE((want->>'unique')::boolean, false)
                OR (have->>'multi_entry')::boolean <> COALESCE((want->>'multi_entry')::boolean, false)) THEN
            RAISE EXCEPTION 'jsondb.apply_store: index "%" of store "%" exists with a different definition',
                want->>'name', nm USING ERRCODE = '42P17',
                DETAIL = format('existing: %s; requested: %s', have - 'id', want);
        END IF;
    END LOOP;
    FOR have IN SELECT * FROM jsonb_array_elements(r.indexes) LOOP
        IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(COALESCE(definition->'indexes', '[]')) w
                       WHERE w->>'name' = have->>'name') THEN
            PERFORM jsondb.delete_index(nm, have->>'name');
        END IF;
    END LOOP;
    FOR want IN SELECT * FROM jsonb_array_elements(COALESCE(definition->'indexes', '[]')) LOOP
        IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(r.indexes) i WHERE i->>'name' = want->>'name') THEN
            ikp := want->'key_path';
            PERFORM jsondb.create_index(nm, want->>'name',
                CASE WHEN jsonb_typeof(ikp) = 'array'
                     THEN ARRAY(SELECT jsonb_array_elements_text(ikp)) ELSE ARRAY[ikp #>> '{}'] END,
                COALESCE((want->>'unique')::boolean, false), COALESCE((want->>'multi_entry')::boolean, false));
        END IF;
    END LOOP;
    RETURN (SELECT jsondb._definition(s) FROM jsondb.stores s WHERE s.name = nm);
END $$;

-- documents
CREATE FUNCTION jsondb.put(store text, doc jsonb, expected_version bigint DEFAULT NULL) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'jsondb_put' LANGUAGE C VOLATILE;
CREATE FUNCTION jsondb.add(store text, doc jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'jsondb_add' LANGUAGE C VOLATILE;
CREATE FUNCTION jsondb.get(store text, key jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'jsondb_get' LANGUAGE C VOLATILE;
CREATE FUNCTION jsondb.get_with_meta(store text, key jsonb,
                                     OUT key jsonb, OUT doc jsonb, OUT version bigint)
    AS 'MODULE_PATHNAME', 'jsondb_get_with_meta' LANGUAGE C VOLATILE;
CREATE FUNCTION jsondb.delete(store text, key jsonb) RETURNS bigint
    AS 'MODULE_PATHNAME', 'jsondb_delete' LANGUAGE C VOLATILE;
CREATE FUNCTION jsondb.patch(store text, key jsonb, delta jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'jsondb_patch' LANGUAGE C VOLATILE;
CREATE FUNCTION jsondb.merge_patch(target jsonb, patch jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'jsondb_merge_patch' LANGUAGE C IMMUTABLE STRICT;

-- ranges: lower/upper NULL = unbounded; count NULL/0 = all
CREATE FUNCTION jsondb.delete_range(store text, lower jsonb DEFAULT NULL, upper jsonb DEFAULT NULL,
                                    lower_open boolean DEFAULT false, upper_open boolean DEFAULT false)
    RETURNS bigint AS 'MODULE_PATHNAME', 'jsondb_delete_range' LANGUAGE C VOLATILE;
CREATE FUNCTION jsondb.count(store text, lower jsonb DEFAULT NULL, upper jsonb DEFAULT NULL,
                             lower_open boolean DEFAULT false, upper_open boolean DEFAULT false)
    RETURNS bigint AS 'MODULE_PATHNAME', 'jsondb_count' LANGUAGE C VOLATILE;
CREATE FUNCTION jsondb.get_all(store text, lower jsonb DEFAULT NULL, upper jsonb DEFAULT NULL,
                               lower_open boolean DEFAULT false, upper_open boolean DEFAULT false,
                               count bigint DEFAULT NULL, direction text DEFAULT 'next')
    RETURNS SETOF jsonb AS 'MODULE_PATHNAME', 'jsondb_get_all' LANGUAGE C VOLATILE ROWS 100;
CREATE FUNCTION jsondb.get_all_keys(store text, lower jsonb DEFAULT NULL, upper jsonb DEFAULT NULL,
                                    lower_open boolean DEFAULT false, upper_open boolean DEFAULT false,
                                    count bigint DEFAULT NULL, direction text DEFAULT 'next')
    RETURNS SETOF jsonb AS 'MODULE_PATHNAME', 'jsondb_get_all_keys' LANGUAGE C VOLATILE ROWS 100;
CREATE FUNCTION jsondb.get_by_index(store text, index text, value jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'jsondb_get_by_index' LANGUAGE C VOLATILE;
CREATE FUNCTION jsondb.range_by_index(store text, index text, lower jsonb DEFAULT NULL,
                                      upper jsonb DEFAULT NULL, lower_open boolean DEFAULT false,
                                      upper_open boolean DEFAULT false, count bigint DEFAULT NULL,
                                      direction text DEFAULT 'next')
    RETURNS TABLE (index_key jsonb, key jsonb, doc jsonb)
    AS 'MODULE_PATHNAME', 'jsondb_range_by_index' LANGUAGE C VOLATILE ROWS 100;

CREATE FUNCTION jsondb.query(store text, filter jsonb, order_by text DEFAULT NULL,
                             direction text DEFAULT 'next', lim bigint DEFAULT NULL, off bigint DEFAULT 0)
    RETURNS SETOF jsonb AS 'MODULE_PATHNAME', 'jsondb_query' LANGUAGE C VOLATILE ROWS 100;
CREATE FUNCTION jsondb.explain(store text, filter jsonb, order_by text DEFAULT NULL) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'jsondb_explain' LANGUAGE C VOLATILE;

CREATE FUNCTION jsondb.changes(store text, since bigint DEFAULT 0, lim bigint DEFAULT 1000)
    RETURNS TABLE (seq bigint, op text, key jsonb, version bigint)
    AS 'MODULE_PATHNAME', 'jsondb_changes' LANGUAGE C VOLATILE ROWS 100;

REVOKE ALL ON FUNCTION jsondb._purge_store(int), jsondb._purge_index(int, int),
    jsondb._purge_database(), jsondb._backfill_index(text, text), jsondb._invalidate(),
    jsondb._lock_store_ddl(int) FROM PUBLIC;
