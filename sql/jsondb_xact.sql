-- Transactions: atomic, read-your-writes, savepoints, snapshot at the first
-- jsondb call, rollback leaves nothing (documents, indexes, change log).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS flowdb CASCADE;
RESET client_min_messages;
CREATE EXTENSION flowdb;
SELECT jsondb.create_store('t', 'id');
SELECT jsondb.create_index('t', 'email', ARRAY['email'], true);

BEGIN;
SELECT jsondb.put('t', '{"id": 1, "email": "a@x"}');
SELECT jsondb.get('t', '1');                               -- own write
SELECT jsondb.get_by_index('t', 'email', '"a@x"');          -- own index entry
SELECT jsondb.count('t');
SAVEPOINT s1;
SELECT jsondb.put('t', '{"id": 2, "email": "b@x"}');
SELECT jsondb.delete('t', '1');
SELECT jsondb.get_all_keys('t');
ROLLBACK TO s1;
SELECT jsondb.get_all_keys('t');
SELECT jsondb.get_by_index('t', 'email', '"b@x"') IS NULL AS b_gone;
COMMIT;
SELECT jsondb.get_all_keys('t');
SELECT seq, op, key FROM jsondb.changes('t');

-- an error aborts the whole transaction: nothing of it is written
BEGIN;
SELECT jsondb.put('t', '{"id": 3, "email": "c@x"}');
SELECT jsondb.put('t', '{"id": 4, "email": "a@x"}');       -- unique violation
COMMIT;
SELECT jsondb.get_all_keys('t');
SELECT jsondb.get_by_index('t', 'email', '"c@x"') IS NULL AS c_absent;

-- ROLLBACK
BEGIN;
SELECT jsondb.delete_range('t');
SELECT jsondb.count('t');
ROLLBACK;
SELECT jsondb.count('t');
SELECT max(seq) FROM jsondb.changes('t');

-- a transaction mixing jsondb and Postgres tables commits both
CREATE TABLE audit (what text);
BEGIN;
INSERT INTO audit VALUES ('put 5');
SELECT jsondb.put('t', '{"id": 5, "email": "e@x"}');
COMMIT;
SELECT * FROM audit;
SELECT jsondb.get('t', '5');

-- read-only use of a read-only transaction
BEGIN READ ONLY;
SELECT jsondb.get('t', '5') ->> 'email';
COMMIT;

-- change-log retention: the last 100,000 changes are kept, older ones are
-- deleted as new ones arrive (point deletes, no range tombstones)
SELECT jsondb.create_store('log', 'id');
SELECT count(jsondb.put('log', jsonb_build_object('id', i))) FROM generate_series(1, 25000) i;
SELECT count(jsondb.put('log', jsonb_build_object('id', i))) FROM generate_series(25001, 50000) i;
SELECT count(jsondb.put('log', jsonb_build_object('id', i))) FROM generate_series(50001, 75000) i;
SELECT count(jsondb.put('log', jsonb_build_object('id', i))) FROM generate_series(75001, 100000) i;
SELECT min(seq), max(seq), count(*) FROM jsondb.changes('log', since => 0, lim => 200000);
SELECT count(jsondb.put('log', jsonb_build_object('id', i, 'v', 2))) FROM generate_series(1, 7) i;
SELECT jsondb.changes('log', since => 6, lim => 1);    -- 7 was dropped
SELECT min(seq), max(seq), count(*) FROM jsondb.changes('log', since => 7, lim => 200000);
SELECT seq, op, key FROM jsondb.changes('log', since => 100004, lim => 10);
