-- Transactions larger than a memtable (the suite runs with 17 MB memtables):
-- their batch is written as a table of its own at commit.  Results must be
-- exactly those of small transactions: commit, rollback, savepoints, newer
-- and older versions of the same rows, deletes inside the transaction.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS flowdb;
RESET client_min_messages;
CREATE FOREIGN TABLE big (key text COLLATE "C", ts bigint, v text) SERVER flowdb;
CREATE FUNCTION pad(i int, tag text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT tag || ':' || i || ':' || repeat(md5(i::text), 6) $$;

-- older versions of some rows, in the memtable, before the big transaction
INSERT INTO big SELECT 'k' || lpad(i::text, 6, '0'), 1, pad(i, 'old')
FROM generate_series(0, 99999, 1000) i;
INSERT INTO big VALUES ('k000500x', 1, 'untouched');

-- ~24 MB in one transaction: committed, as one table (the "ingests" counter);
-- its rows come in (key, ts) order, so the table was written while the
-- statement ran (a table stream: "ingests_streamed")
CREATE FUNCTION streamed() RETURNS bigint LANGUAGE sql
    AS $$ SELECT value::bigint FROM flowdb.stats() WHERE name = 'ingests_streamed' $$;
-- table files the engine does not list, once everything is flushed and merged
CREATE FUNCTION unlisted_files() RETURNS bigint LANGUAGE sql AS $$
    SELECT flowdb.checkpoint(), flowdb.compact();
    SELECT count(*) - (SELECT value::bigint FROM flowdb.stats() WHERE name = 'table_count')
    FROM pg_ls_dir(current_setting('flowdb.data_dir')) f WHERE f LIKE '%.sst' $$;
SELECT value AS ingests0 FROM flowdb.stats() WHERE name = 'ingests' \gset
SELECT streamed() AS streamed0 \gset
INSERT INTO big SELECT 'k' || lpad(i::text, 6, '0'), 1, pad(i, 'new')
FROM generate_series(0, 99999) i;
SELECT value - :ingests0 AS ingested FROM flowdb.stats() WHERE name = 'ingests';
SELECT streamed() - :streamed0 AS streamed;
SELECT count(*), count(*) FILTER (WHERE v LIKE 'new:%') AS new,
       sum(length(v)) AS bytes FROM big;
SELECT left(v, 20) FROM big WHERE key = 'k001000' AND ts = 1;
SELECT v FROM big WHERE key = 'k000500x';
SELECT key, left(v, 12) FROM big WHERE key >= 'k099998' ORDER BY key;

-- a newer small write beats the big transaction's version
UPDATE big SET v = 'newest' WHERE key = 'k002000' AND ts = 1;
SELECT v FROM big WHERE key = 'k002000' AND ts = 1;

-- rolled back: nothing of it is seen, and its streamed table file is gone
BEGIN;
INSERT INTO big SELECT 'r' || lpad(i::text, 6, '0'), 1, pad(i, 'rb')
FROM generate_series(0, 99999) i;
SELECT count(*) FROM big WHERE key LIKE 'r%';
ROLLBACK;
SELECT count(*) FROM big WHERE key LIKE 'r%';
SELECT unlisted_files();

-- an error in the middle of a streamed statement: nothing of it stays
SELECT streamed() AS streamed0 \gset
INSERT INTO big SELECT 'e' || lpad(i::text, 6, '0'), 1, pad(i, 'err') || (1 / (90000 - i))
FROM generate_series(0, 99999) i;
SELECT count(*) FROM big WHERE key LIKE 'e%';
SELECT unlisted_files(), streamed() - :streamed0 AS streamed;

-- the transaction reads its own streamed rows; a write out of order then
-- stops the stream, and the commit writes the buffer as before
BEGIN;
INSERT INTO big SELECT 'o' || lpad(i::text, 6, '0'), 1, pad(i, 'own')
FROM generate_series(0, 99999) i;
SELECT count(*), min(key), max(key) FROM big WHERE key LIKE 'o%';
SELECT left(v, 10) FROM big WHERE key = 'o050000' AND ts = 1;
UPDATE big SET v = 'changed' WHERE key = 'o000007' AND ts = 1;
COMMIT;
SELECT streamed() - :streamed0 AS streamed;
SELECT count(*), count(*) FILTER (WHERE v = 'changed') FROM big WHERE key LIKE 'o%';

-- streamed together with a heap write (the xid-tagged commit)
CREATE TABLE heap_side (i int);
BEGIN;
INSERT INTO heap_side VALUES (1);
INSERT INTO big SELECT 'h' || lpad(i::text, 6, '0'), 1, pad(i, 'heap')
FROM generate_series(0, 99999) i;
COMMIT;
SELECT streamed() - :streamed0 AS streamed;
SELECT (SELECT count(*) FROM heap_side) AS heap_rows, count(*) FROM big WHERE key LIKE 'h%';
DROP TABLE heap_side;
SELECT streamed() AS streamed0 \gset

-- savepoints: the rolled-back part of a big transaction is gone, the rest
-- commits, and deletes inside the transaction apply to its own rows and to
-- older ones
BEGIN;
INSERT INTO big SELECT 's' || lpad(i::text, 6, '0'), 2, pad(i, 'sp1')
FROM generate_series(0, 59999) i;
SAVEPOINT a;
INSERT INTO big SELECT 't' || lpad(i::text, 6, '0'), 2, pad(i, 'sp2')
FROM generate_series(0, 59999) i;
ROLLBACK TO a;
DELETE FROM big WHERE key >= 's000100' AND key < 's000200';
DELETE FROM big WHERE key >= 'k000000' AND key < 'k000010';
INSERT INTO big VALUES ('s000150', 2, 'reinserted');
COMMIT;
SELECT streamed() - :streamed0 AS streamed;  -- the savepoint stopped the stream
SELECT count(*) FROM big WHERE key LIKE 's%';
SELECT count(*) FROM big WHERE key LIKE 't%';
SELECT v FROM big WHERE key = 's000150';
SELECT count(*) FROM big WHERE key LIKE 'k%';

-- the same after the engine flushed and merged everything
SELECT flowdb.checkpoint();
SELECT flowdb.compact();
SELECT count(*), count(DISTINCT key) FROM big;
SELECT v FROM big WHERE key = 'k002000' AND ts = 1;
SELECT v FROM big WHERE key = 's000150';

-- a big COPY-like load through flowdb.put_many in one statement
SELECT flowdb.put_many(array_agg('p' || i), array_agg(i::bigint), array_agg(convert_to(pad(i, 'pm'), 'UTF8')))
FROM generate_series(1, 80000) i;
SELECT count(*) FROM flowdb.scan(prefix => 'p');

SELECT flowdb.delete_range(NULL, NULL, 'big');
DROP FOREIGN TABLE big;
DROP FUNCTION pad(int, text);
DROP FUNCTION streamed();
DROP FUNCTION unlisted_files();
SELECT flowdb.delete_range(NULL, NULL);
