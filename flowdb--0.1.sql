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
          AND w.fdwhandler = 'flowdb._fdw_handler'::regproc
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
END $$;
REVOKE ALL ON FUNCTION flowdb._fdw_on_ddl(), flowdb._fdw_table_keyspace(oid) FROM PUBLIC;

CREATE EVENT TRIGGER flowdb_foreign_tables ON ddl_command_end
    WHEN TAG IN ('CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE')
    EXECUTE FUNCTION flowdb._fdw_on_ddl();
