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

-- a transaction of a few thousand documents reads its own writes exactly
-- (get, a unique index, count, the change log) across a savepoint rolled
-- back in the middle of it
SELECT jsondb.create_store('bulk', 'id');
SELECT jsondb.create_index('bulk', 'email', ARRAY['email'], true);
SELECT jsondb.create_index('bulk', 'grp', ARRAY['grp']);
BEGIN;
SELECT count(jsondb.add('bulk', jsonb_build_object('id', i, 'email', 'u' || i || '@x', 'grp', i % 7)))
  FROM generate_series(1, 3000) i;
SAVEPOINT mid;
SELECT count(jsondb.add('bulk', jsonb_build_object('id', i, 'email', 'u' || i || '@x', 'grp', i % 7)))
  FROM generate_series(3001, 4000) i;
SELECT count(jsondb.put('bulk', jsonb_build_object('id', i, 'email', 'moved' || i || '@x', 'grp', 100)))
  FROM generate_series(1, 500) i;
SELECT sum(jsondb.delete('bulk', to_jsonb(i))) FROM generate_series(501, 1000) i;
SELECT jsondb.count('bulk') AS before_rollback;            -- 3500
SELECT jsondb.get_by_index('bulk', 'email', '"moved250@x"') ->> 'id' AS moved;
ROLLBACK TO mid;
SELECT jsondb.count('bulk') AS after_rollback;             -- 3000
SELECT jsondb.get('bulk', '3500') IS NULL AS added_gone,
       jsondb.get('bulk', '250') ->> 'email' AS rewrite_undone,
       jsondb.get('bulk', '750') ->> 'email' AS delete_undone;
SELECT jsondb.get_by_index('bulk', 'email', '"u250@x"') ->> 'id' AS u250,
       jsondb.get_by_index('bulk', 'email', '"moved250@x"') IS NULL AS moved_gone,
       jsondb.get_by_index('bulk', 'email', '"u3500@x"') IS NULL AS u3500_gone;
SELECT count(*) FROM jsondb.range_by_index('bulk', 'grp', '100', '100');   -- 0
SELECT count(*) FROM jsondb.range_by_index('bulk', 'grp', '3', '3');       -- 429
-- the unique index still holds the transaction's own entries ...
SAVEPOINT dup;
SELECT jsondb.add('bulk', '{"id": 5000, "email": "u1@x"}');
ROLLBACK TO dup;
-- ... and no longer the rolled-back ones
SELECT jsondb.add('bulk', '{"id": 5000, "email": "u3500@x", "grp": 3}');
SELECT jsondb.put('bulk', '{"id": 2, "email": "u2-new@x", "grp": 3}') AS rewritten;
SELECT jsondb.get_by_index('bulk', 'email', '"u2@x"') IS NULL AS old_entry_gone,
       jsondb.get_by_index('bulk', 'email', '"u2-new@x"') ->> 'id' AS new_entry;
SELECT jsondb.count('bulk') AS before_commit;              -- 3001
COMMIT;
SELECT jsondb.count('bulk') AS committed,
       jsondb.get('bulk', '5000') ->> 'email' AS last_added,
       jsondb.get('bulk', '2') ->> 'email' AS last_rewrite;
SELECT count(*) AS changes, count(DISTINCT key) AS keys, max(seq) - min(seq) + 1 AS span
  FROM jsondb.changes('bulk', since => 0, lim => 100000);

-- JsonDB calls alone assign no Postgres xid (one fsync at commit)
BEGIN;
SELECT jsondb.put('t', '{"id": 900, "email": "xidless@example.com"}');
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_xid;
COMMIT;
SELECT jsondb.get('t', '900') ->> 'email';
SELECT jsondb.delete('t', '900');
