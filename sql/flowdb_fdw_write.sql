-- Writes through foreign tables: every path, transactions, expiry, errors.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS flowdb;
RESET client_min_messages;
SET timezone = 'UTC';
CREATE FOREIGN TABLE w (key text COLLATE "C", ts bigint, v text, n int) SERVER flowdb;

-- single row, multi-row, INSERT ... SELECT, RETURNING
INSERT INTO w VALUES ('a', 1, 'one', 1);
INSERT INTO w VALUES ('a', 2, 'two', 2), ('b', 1, NULL, 3) RETURNING key, ts, v;
INSERT INTO w SELECT 'c', i, 'c' || i, i FROM generate_series(1, 5) i;
INSERT INTO w SELECT key || '2', ts, v, n FROM w WHERE key = 'a';
SELECT * FROM w ORDER BY key, ts;
-- writing an existing (key, ts) replaces it
INSERT INTO w VALUES ('a', 1, 'uno', 10);
SELECT * FROM w WHERE key = 'a' AND ts = 1;

-- COPY FROM
COPY w FROM stdin (FORMAT csv);
d,1,"quoted, comma",7
d,2,,8
d,3,"",9
\.
SELECT * FROM w WHERE key = 'd' ORDER BY ts;

-- UPDATE: values, and moving a row to another key / ts
UPDATE w SET v = upper(v) WHERE key = 'c' AND ts <= 2 RETURNING *;
UPDATE w SET ts = ts + 100 WHERE key = 'c' AND ts = 3;
UPDATE w SET key = 'e' WHERE key = 'c' AND ts = 4 RETURNING key, ts;
SELECT * FROM w WHERE key IN ('c', 'e') ORDER BY key, ts;
UPDATE w SET n = n + 1 WHERE v IS NULL;
SELECT * FROM w WHERE key = 'b';

-- DELETE row by row (with RETURNING / with a ts condition / with a filter)
DELETE FROM w WHERE key = 'd' AND ts = 1 RETURNING *;
DELETE FROM w WHERE key = 'c' AND ts > 100;
DELETE FROM w WHERE n = 9;
SELECT * FROM w WHERE key IN ('c', 'd') ORDER BY key, ts;
-- DELETE by key range / prefix / key only: one range delete
EXPLAIN (COSTS OFF) DELETE FROM w WHERE key LIKE 'a%';
EXPLAIN (COSTS OFF) DELETE FROM w WHERE key >= 'c' AND key < 'd';
EXPLAIN (COSTS OFF) DELETE FROM w WHERE key = 'e';
EXPLAIN (COSTS OFF) DELETE FROM w WHERE key = 'e' AND ts = 4;
EXPLAIN (COSTS OFF) DELETE FROM w WHERE key LIKE 'a%' RETURNING *;
DELETE FROM w WHERE key LIKE 'a%';
DELETE FROM w WHERE key >= 'c' AND key < 'd';
DELETE FROM w WHERE key = 'e';
SELECT * FROM w ORDER BY key, ts;
DELETE FROM w WHERE key LIKE 'zz%';

-- transactions and savepoints
BEGIN;
INSERT INTO w VALUES ('t', 1, 'kept', 1);
SAVEPOINT s1;
INSERT INTO w VALUES ('t', 2, 'rolled back', 2);
DELETE FROM w WHERE key = 't' AND ts = 1;
SELECT * FROM w WHERE key = 't';
ROLLBACK TO s1;
SELECT * FROM w WHERE key = 't';
SAVEPOINT s2;
DELETE FROM w WHERE key LIKE 't%';
SELECT count(*) FROM w WHERE key = 't';
ROLLBACK TO s2;
RELEASE s1;
COMMIT;
SELECT * FROM w WHERE key = 't';
BEGIN;
INSERT INTO w VALUES ('u', 1, 'gone', 1);
ROLLBACK;
SELECT count(*) FROM w WHERE key = 'u';
-- a failed statement leaves nothing behind
INSERT INTO w VALUES ('v', 1, 'x', 1), (NULL, 2, 'y', 2);
SELECT count(*) FROM w WHERE key = 'v';

-- expiry: ttl_secs option and expire_at column
CREATE FOREIGN TABLE ttl (key text, ts bigint, v int) SERVER flowdb OPTIONS (ttl_secs '3600');
INSERT INTO ttl VALUES ('k', 1, 1);
SELECT count(*) FROM ttl;
SELECT (r.expire_at - extract(epoch FROM now())::bigint) BETWEEN 3590 AND 3610 AS about_an_hour
FROM flowdb.scan(keyspace => 'ttl') r;
CREATE FOREIGN TABLE exp (key text, ts bigint, expire_at timestamptz, v int) SERVER flowdb;
INSERT INTO exp VALUES ('k', 1, now() + interval '1 day', 1), ('k', 2, NULL, 2),
                       ('k', 3, '2001-01-01', 3), ('k', 4, 'infinity', 4);
SELECT ts, expire_at > now() AS later, v FROM exp ORDER BY ts;
CREATE FOREIGN TABLE exp2 (key text, ts bigint, expire_at bigint) SERVER flowdb;
INSERT INTO exp2 VALUES ('k', 1, 4102444800), ('k', 2, 0);
SELECT * FROM exp2 ORDER BY ts;
INSERT INTO exp2 VALUES ('k', 3, -1);

-- errors
INSERT INTO w VALUES (NULL, 1, 'x', 1);
INSERT INTO w VALUES ('x', NULL, 'x', 1);
INSERT INTO w VALUES ('', 1, 'x', 1);
INSERT INTO w VALUES (repeat('x', 9000), 1, 'x', 1);
INSERT INTO w VALUES ('a', 1, 'x', 1) ON CONFLICT DO NOTHING;
CREATE FOREIGN TABLE raw_w (key text, ts bigint, value bytea) SERVER flowdb;
INSERT INTO raw_w VALUES ('k', 1, NULL);
BEGIN READ ONLY;
INSERT INTO w VALUES ('ro', 1, 'x', 1);
ROLLBACK;
BEGIN;
INSERT INTO w VALUES ('p', 1, 'x', 1);
PREPARE TRANSACTION 'fdw';
SELECT count(*) FROM w WHERE key = 'p';

-- A transaction whose only writes are FlowDB's gets no Postgres xid: its
-- commit is one engine-WAL fsync (xact.c, xid-less commits).  A heap write
-- in it brings an xid and the tagged path; both sides commit together.
BEGIN;
INSERT INTO w VALUES ('xidless', 1, 'x', 1);
UPDATE w SET n = 2 WHERE key = 'xidless' AND ts = 1;
SELECT flowdb.put('xidless-fn', 1, '\x01'::bytea);
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_xid;
COMMIT;
SELECT key, n FROM w WHERE key = 'xidless';
SELECT flowdb.get('xidless-fn', 1);
CREATE TABLE heap_side (k text);
BEGIN;
INSERT INTO w VALUES ('tagged', 1, 'x', 1);
INSERT INTO heap_side VALUES ('tagged');
SELECT pg_current_xact_id_if_assigned() IS NOT NULL AS has_xid;
COMMIT;
SELECT (SELECT count(*) FROM w WHERE key = 'tagged') AS flowdb_rows,
       (SELECT count(*) FROM heap_side) AS heap_rows;
BEGIN;
INSERT INTO w VALUES ('rolled', 1, 'x', 1);
ROLLBACK;
SELECT count(*) FROM w WHERE key = 'rolled';
DELETE FROM w WHERE key IN ('xidless', 'tagged');
SELECT flowdb.delete('xidless-fn', 1);
DROP TABLE heap_side;
