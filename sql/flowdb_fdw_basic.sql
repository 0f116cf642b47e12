-- Foreign tables over keyspaces: definition, column roles, types, round trips.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS flowdb;
RESET client_min_messages;
SET timezone = 'UTC';

-- the wrapper and the server come with the extension
SELECT fdwname FROM pg_foreign_data_wrapper;
SELECT srvname FROM pg_foreign_server;

-- keyspace defaults to the table name, is pinned as an option and created
CREATE FOREIGN TABLE metrics (key text, ts timestamptz, temp float8, host text,
                              payload jsonb, tags text[], n numeric, b boolean, d date)
    SERVER flowdb;
SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = 'metrics'::regclass;
SELECT name FROM flowdb.keyspaces WHERE name = 'metrics';
INSERT INTO metrics VALUES
    ('sensor.1', '2024-01-01 00:00:00.000001+00', 21.5, 'h1', '{"a": [1, "x", null]}', '{a,NULL,"c d"}', 12345678901234567890.123, true, '2024-02-29'),
    ('sensor.1', 'infinity', -0.0, '', '{}', '{}', 'NaN', false, 'infinity'),
    ('sensor.2', '-infinity', 'NaN', 'héllo wörld ✓', 'null', NULL, NULL, NULL, NULL),
    ('sensor.2', '1999-12-31 23:59:59.999999+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT * FROM metrics;
-- exact round trips: compare with the literals
SELECT count(*) FROM metrics WHERE ts = '2024-01-01 00:00:00.000001+00' AND payload = '{"a": [1, "x", null]}'
    AND tags = '{a,NULL,"c d"}' AND n = 12345678901234567890.123 AND d = '2024-02-29';

-- renaming the table keeps its keyspace
ALTER FOREIGN TABLE metrics RENAME TO metrics2;
SELECT count(*) FROM metrics2;
ALTER FOREIGN TABLE metrics2 RENAME TO metrics;

-- column options map other names; bigint ts; a second table on the same keyspace
CREATE FOREIGN TABLE events (id text OPTIONS (key 'true'), at bigint OPTIONS (ts 'true'), body text)
    SERVER flowdb OPTIONS (keyspace 'events_ks');
INSERT INTO events VALUES ('e1', -9223372036854775808, 'min'), ('e1', 9223372036854775807, 'max'), ('e1', 0, '');
SELECT * FROM events;
CREATE FOREIGN TABLE events_too (key text, ts bigint, body text) SERVER flowdb OPTIONS (keyspace 'events_ks');
SELECT * FROM events_too WHERE ts = 0;

-- timestamp without time zone
CREATE FOREIGN TABLE local_ts (key text, ts timestamp, v int) SERVER flowdb;
INSERT INTO local_ts VALUES ('a', '2020-02-02 02:02:02.5', 1), ('a', '4713-01-01 00:00:00 BC', 2);
SELECT * FROM local_ts ORDER BY ts;

-- raw mode: only "value bytea" besides key and ts reads flowdb.put's records
SELECT flowdb.create_keyspace('fdw_raw');
CREATE FOREIGN TABLE raw_b (key text, ts bigint, value bytea) SERVER flowdb OPTIONS (keyspace 'fdw_raw');
SELECT flowdb.put('p', 1, 'from put', keyspace => 'fdw_raw');
INSERT INTO raw_b VALUES ('p', 2, '\x00ff'::bytea);
SELECT key, ts, value FROM raw_b ORDER BY key, ts;
SELECT flowdb.get('p', 2, keyspace => 'fdw_raw');
-- a table of another shape over raw records reports corruption, not garbage
CREATE FOREIGN TABLE not_raw (key text, ts bigint, v int) SERVER flowdb OPTIONS (keyspace 'fdw_raw');
SELECT * FROM not_raw;
SELECT count(*) FROM not_raw;   -- no value column needed: nothing decoded

-- key and ts only
CREATE FOREIGN TABLE bare (key text, ts bigint) SERVER flowdb;
INSERT INTO bare VALUES ('x', 1);
SELECT * FROM bare;

-- columns added later read as NULL from older rows
ALTER FOREIGN TABLE bare ADD COLUMN extra text;
INSERT INTO bare VALUES ('y', 2, 'new');
SELECT * FROM bare ORDER BY key;

-- ANALYZE samples the keyspace
INSERT INTO events SELECT 'gen' || (i % 50), i, 'b' || i FROM generate_series(1, 2000) i;
ANALYZE events;
SELECT reltuples FROM pg_class WHERE relname = 'events';
SELECT attname, n_distinct > 0 OR n_distinct < 0 AS has_stats FROM pg_stats WHERE tablename = 'events' ORDER BY attname;

-- definition errors
CREATE FOREIGN TABLE nokey (k text, ts bigint) SERVER flowdb;
CREATE FOREIGN TABLE badkey (key int, ts bigint) SERVER flowdb;
CREATE FOREIGN TABLE badts (key text, ts text) SERVER flowdb;
CREATE FOREIGN TABLE badexp (key text, ts bigint, expire_at text) SERVER flowdb;
CREATE FOREIGN TABLE twokeys (a text OPTIONS (key 'true'), b text OPTIONS (key 'true'), ts bigint) SERVER flowdb;
CREATE FOREIGN TABLE badopt (key text, ts bigint) SERVER flowdb OPTIONS (bogus '1');
CREATE FOREIGN TABLE badttl (key text, ts bigint) SERVER flowdb OPTIONS (ttl_secs '-1');
CREATE FOREIGN TABLE longks (key text, ts bigint) SERVER flowdb OPTIONS (keyspace 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
CREATE FOREIGN TABLE badcolopt (key text OPTIONS (key 'maybe'), ts bigint) SERVER flowdb;
-- a keyspace dropped under a table
SELECT flowdb.drop_keyspace('local_ts');
SELECT * FROM local_ts;
