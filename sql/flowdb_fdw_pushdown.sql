-- Every pushdown shape: EXPLAIN shows what the engine scan does, and the
-- results are those of the same query over a heap table.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS flowdb;
RESET client_min_messages;
CREATE FOREIGN TABLE m (key text COLLATE "C", ts bigint, v int) SERVER flowdb;
CREATE TABLE h (key text COLLATE "C", ts bigint, v int);
INSERT INTO h SELECT 'k' || (i % 10), i, i FROM generate_series(1, 200) i;
INSERT INTO h VALUES ('a%b', 1, 1), ('a_b', 1, 2), ('a\b', 1, 3), ('axb', 1, 4), ('ab', 1, 5), ('é', -5, 6);
INSERT INTO m SELECT * FROM h;
ANALYZE m;
-- compare a query on m with the same on h (order-sensitive)
CREATE FUNCTION same(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE a text; b text;
BEGIN
    EXECUTE format('SELECT string_agg(x::text, '' '') FROM (%s) x', q) INTO a;
    EXECUTE format('SELECT string_agg(x::text, '' '') FROM (%s) x', replace(q, ' m ', ' h ')) INTO b;
    RETURN CASE WHEN a IS NOT DISTINCT FROM b THEN 'same: ' || coalesce(a, '(none)') ELSE 'DIFFERENT: ' || coalesce(a, '-') || ' vs ' || coalesce(b, '-') END;
END $$;

-- EXPLAIN ANALYZE with the engine's block / table counters masked (they
-- depend on flushes and compactions other sessions cause)
CREATE FUNCTION explain_analyze(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE l text;
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
        RETURN NEXT regexp_replace(l, '(Blocks Read|Blocks Skipped by Time|Tables Skipped by Bloom|Tables Skipped|Records Scanned): \d+', '\1: N');
    END LOOP;
END $$;

-- key equality, point get, newest point per key
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE key = 'k1';
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE key = 'k1' AND ts = 11;
SELECT same('SELECT * FROM m WHERE key = ''k1'' AND ts = 11');
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE key = 'k1' ORDER BY ts DESC LIMIT 1;
SELECT same('SELECT * FROM m WHERE key = ''k1'' ORDER BY ts DESC LIMIT 1');
SELECT explain_analyze('SELECT * FROM m WHERE key = ''k1'' ORDER BY ts DESC LIMIT 1');
-- IN and = ANY
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE key IN ('k2', 'k7', 'zz') AND ts > 180 ORDER BY key, ts;
SELECT same('SELECT * FROM m WHERE key IN (''k2'', ''k7'', ''zz'', NULL) AND ts > 180 ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE key IN (''k2'', ''k7'') AND ts > 180 ORDER BY key DESC, ts DESC');
SELECT same('SELECT * FROM m WHERE key = ANY(''{}''::text[])');
SELECT same('SELECT * FROM m WHERE key = ''k1'' AND key IN (''k1'', ''k2'') AND ts < 30');
-- prefixes: LIKE, starts_with, ^@
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE key LIKE 'k1%';
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE key LIKE 'a_%';
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE key LIKE '%1';
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE starts_with(key, 'k1');
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE key ^@ 'k1';
SELECT same('SELECT * FROM m WHERE key LIKE ''a\%%'' ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE key LIKE ''a\_b'' ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE key LIKE ''a_b'' ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE key LIKE ''a\\%'' ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE key LIKE ''a#%%'' ESCAPE ''#'' ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE key LIKE ''ab'' ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE key LIKE ''é%'' ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE key LIKE ''%'' AND ts = 1 ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE starts_with(key, ''a'') AND key ^@ ''ax'' ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE starts_with(key, ''a'') AND key ^@ ''k'' ORDER BY key, ts');
SELECT * FROM m WHERE key LIKE 'a\';   -- malformed pattern: LIKE's own error
-- key ranges under "C"
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE key >= 'k3' AND key < 'k5' ORDER BY key DESC, ts DESC LIMIT 3 OFFSET 2;
SELECT same('SELECT * FROM m WHERE key >= ''k3'' AND key < ''k5'' ORDER BY key DESC, ts DESC LIMIT 3 OFFSET 2');
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE key BETWEEN 'a' AND 'b' ORDER BY key, ts;
SELECT same('SELECT * FROM m WHERE key BETWEEN ''a'' AND ''ab'' ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE key > ''ab'' AND key <= ''k0'' ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE ''k8'' < key ORDER BY key, ts LIMIT 4');
SELECT same('SELECT * FROM m WHERE key > ''k5'' AND key < ''k5'' ORDER BY key, ts');
-- ...but not under a linguistic collation (filtered locally, same result)
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE key COLLATE "C.utf8" > 'k5';
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE key = 'k5' COLLATE "C.utf8";
-- ts ranges of every operator, both sides, other integer types
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE ts BETWEEN 10 AND 20 AND 15 > ts AND ts <> 12;
SELECT same('SELECT * FROM m WHERE ts BETWEEN 10 AND 20 AND 15 > ts AND ts <> 12 ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE ts = 5::int2 ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE ts > 9223372036854775807 ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE ts < -9223372036854775808 ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE ts >= 100 AND ts <= 99');
-- stable expressions and parameters, custom and generic plans
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE ts >= length(current_user) * 0 + 195;
PREPARE p(text, bigint, int) AS SELECT * FROM m WHERE key = $1 AND ts >= $2 ORDER BY ts LIMIT $3;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE p('k3', 50, 2);
EXECUTE p('k3', 50, 2);
EXECUTE p(NULL, 50, 2);
PREPARE q(text[], text) AS SELECT * FROM m WHERE key = ANY($1) AND key LIKE $2 ORDER BY key, ts LIMIT 3;
EXPLAIN (COSTS OFF) EXECUTE q('{k1,k2}', 'k2%');
EXECUTE q('{k1,k2}', 'k2%');
EXECUTE q('{k1,k2}', 'k_');
RESET plan_cache_mode;
-- ORDER BY the engine cannot give: sorted above the scan, LIMIT not pushed
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE key LIKE 'k1%' ORDER BY ts LIMIT 3;
SELECT same('SELECT * FROM m WHERE key LIKE ''k1%'' ORDER BY ts, key LIMIT 3');
EXPLAIN (COSTS OFF) SELECT * FROM m ORDER BY key, ts DESC LIMIT 3;
-- a local filter keeps the LIMIT out of the scan
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE v % 2 = 0 ORDER BY key, ts LIMIT 3;
SELECT same('SELECT * FROM m WHERE v % 2 = 0 ORDER BY key, ts LIMIT 3');
-- LIMIT without ORDER BY
EXPLAIN (COSTS OFF) SELECT key FROM m LIMIT 2;
-- count(*) pushed into the scan: one foreign scan counts the engine's
-- records and returns one row
EXPLAIN (COSTS OFF, VERBOSE) SELECT count(*) FROM m WHERE ts BETWEEN 10 AND 20;
SELECT count(*) FROM m WHERE ts BETWEEN 10 AND 20;
SELECT same('SELECT count(*) FROM m WHERE ts BETWEEN 10 AND 20');
SELECT explain_analyze('SELECT count(*) FROM m WHERE key ^@ ''k'' AND ts BETWEEN 10 AND 20');
EXPLAIN (COSTS OFF, VERBOSE) SELECT count(*) FROM m;
SELECT same('SELECT count(*) FROM m');
-- count of the key or ts column (never NULL), expressions over the counts
EXPLAIN (COSTS OFF, VERBOSE) SELECT count(*), count(key), count(ts) + 1 FROM m WHERE key LIKE 'k1%';
SELECT same('SELECT count(*), count(key), count(ts) + 1 FROM m WHERE key LIKE ''k1%''');
EXPLAIN (COSTS OFF, VERBOSE) SELECT count(*) FROM m WHERE key IN ('k2', 'k7', 'zz') AND ts > 180;
SELECT same('SELECT count(*) FROM m WHERE key IN (''k2'', ''k7'', ''zz'') AND ts > 180');
EXPLAIN (COSTS OFF, VERBOSE) SELECT count(*) FROM m WHERE key = 'k1' AND ts = 11;
SELECT same('SELECT count(*) FROM m WHERE key = ''k1'' AND ts = 11');
SELECT same('SELECT count(*) FROM m WHERE key >= ''k3'' AND key < ''k5'' AND ts <= 100');
SELECT same('SELECT count(*) FROM m WHERE starts_with(key, ''a'')');
-- nothing matches: still one row, 0
SELECT same('SELECT count(*) FROM m WHERE key = ''nope''');
SELECT same('SELECT count(*) FROM m WHERE ts > 100 AND ts < 50');
SELECT count(*) FROM m WHERE key = NULL;
-- a LIKE that is more than a prefix + '%': the scan matches it on each key
EXPLAIN (COSTS OFF, VERBOSE) SELECT count(*) FROM m WHERE key LIKE 'a_b';
SELECT same('SELECT count(*) FROM m WHERE key LIKE ''a_b''');
SELECT same('SELECT count(*) FROM m WHERE key LIKE ''a\_b''');
SELECT same('SELECT count(*) FROM m WHERE key LIKE ''k1_%''');
SELECT same('SELECT count(*) FROM m WHERE key LIKE ''k%0'' AND ts < 100');
-- run-time values (generic plan): each execution decides whether a LIKE
-- pattern is a prefix + '%' or is matched on each key
PREPARE c(text, bigint) AS SELECT count(*) FROM m WHERE key LIKE $1 AND ts >= $2;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF, VERBOSE) EXECUTE c('k1%', 100);
EXECUTE c('k1%', 100);
SELECT count(*) FROM h WHERE key LIKE 'k1%' AND ts >= 100;
EXECUTE c('k_', 0);
SELECT count(*) FROM h WHERE key LIKE 'k_' AND ts >= 0;
EXECUTE c('a\%%', 0);
EXECUTE c('%b', 0);
SELECT count(*) FROM h WHERE key LIKE '%b' AND ts >= 0;
EXECUTE c(NULL, 0);
EXECUTE c('k1', NULL);
EXECUTE c('a\', 0);     -- malformed pattern: LIKE's own error
EXECUTE c('a\', 1000);  -- ... raised only when a record reaches it
RESET plan_cache_mode;
DEALLOCATE c;
-- not pushed: a local condition, GROUP BY, HAVING, DISTINCT, FILTER, other
-- aggregates, count of a column that may be NULL, a join, a gating condition
EXPLAIN (COSTS OFF) SELECT count(*) FROM m WHERE ts < 20 AND v % 2 = 0;
SELECT same('SELECT count(*) FROM m WHERE ts < 20 AND v % 2 = 0');
EXPLAIN (COSTS OFF) SELECT count(*) FROM m WHERE key LIKE '%1';
EXPLAIN (COSTS OFF) SELECT key, count(*) FROM m WHERE key LIKE 'k%' GROUP BY key;
SELECT same('SELECT key, count(*) FROM m WHERE key LIKE ''k%'' GROUP BY key ORDER BY key');
EXPLAIN (COSTS OFF) SELECT count(*) FROM m HAVING count(*) > 300;
SELECT count(*) FROM m HAVING count(*) > 300;
EXPLAIN (COSTS OFF) SELECT count(DISTINCT key) FROM m;
SELECT same('SELECT count(DISTINCT key) FROM m');
EXPLAIN (COSTS OFF) SELECT count(*) FILTER (WHERE v > 100) FROM m;
SELECT same('SELECT count(*) FILTER (WHERE v > 100) FROM m');
EXPLAIN (COSTS OFF) SELECT sum(v) FROM m WHERE key = 'k1';
EXPLAIN (COSTS OFF) SELECT count(*), max(ts) FROM m;
EXPLAIN (COSTS OFF) SELECT count(v) FROM m;
EXPLAIN (COSTS OFF) SELECT count(*) FROM m a JOIN m b ON a.key = b.key AND a.ts = b.ts;
EXPLAIN (COSTS OFF) SELECT count(*) FROM m WHERE current_user = 'nobody';
SELECT count(*) FROM m WHERE current_user = 'nobody';
-- parameterized join: a nested loop of point reads
CREATE TABLE wanted (k text COLLATE "C");
INSERT INTO wanted VALUES ('k4'), ('k5'), ('nope');
ANALYZE wanted;
EXPLAIN (COSTS OFF) SELECT * FROM wanted JOIN m ON m.key = wanted.k WHERE m.ts < 20;
SELECT * FROM wanted JOIN m ON m.key = wanted.k WHERE m.ts < 20 ORDER BY 1, 3;
EXPLAIN (COSTS OFF) SELECT w.k, (SELECT max(ts) FROM m WHERE m.key = w.k) FROM wanted w;
SELECT w.k, (SELECT max(ts) FROM m WHERE m.key = w.k) FROM wanted w ORDER BY 1;
EXPLAIN (COSTS OFF) SELECT w.k, l.ts FROM wanted w, LATERAL (SELECT ts FROM m WHERE m.key = w.k ORDER BY ts DESC LIMIT 1) l;
SELECT w.k, l.ts FROM wanted w, LATERAL (SELECT ts FROM m WHERE m.key = w.k ORDER BY ts DESC LIMIT 1) l ORDER BY 1;
-- a pushed count per outer row: the scan restarts with each new key
EXPLAIN (COSTS OFF) SELECT w.k, (SELECT count(*) FROM m WHERE m.key = w.k AND m.ts > 100) FROM wanted w;
SELECT w.k, (SELECT count(*) FROM m WHERE m.key = w.k AND m.ts > 100) FROM wanted w ORDER BY 1;
-- estimates after ANALYZE
EXPLAIN SELECT * FROM m WHERE key = 'k1';
EXPLAIN SELECT * FROM m WHERE key LIKE 'k1%' AND ts < 100;
-- a prefix known only at run time (generic plan) is estimated like key = $1
-- (rows per distinct key), not with LIKE's blind 0.5% of the table
PREPARE r(text) AS SELECT count(*) FROM m WHERE key LIKE $1 || '%';
SET plan_cache_mode = force_generic_plan;
EXPLAIN EXECUTE r('k1');
EXECUTE r('k1');
EXECUTE r('a\');
RESET plan_cache_mode;
DEALLOCATE r;
-- OR, volatile values and other columns stay local
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE key = 'k1' OR key = 'k2';
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE ts > random() * 0;
EXPLAIN (COSTS OFF) SELECT * FROM m WHERE key = v::text;
-- own writes are merged into pushed scans
BEGIN;
INSERT INTO m VALUES ('k1', 500, 0), ('k15', 1, 0);
DELETE FROM m WHERE key = 'k1' AND ts = 191;
INSERT INTO h VALUES ('k1', 500, 0), ('k15', 1, 0);
DELETE FROM h WHERE key = 'k1' AND ts = 191;
SELECT same('SELECT * FROM m WHERE key = ''k1'' ORDER BY ts DESC LIMIT 2');
SELECT same('SELECT * FROM m WHERE key LIKE ''k1%'' AND ts > 150 ORDER BY key, ts');
SELECT same('SELECT * FROM m WHERE key = ''k1'' AND ts = 191');
SELECT same('SELECT count(*) FROM m WHERE key LIKE ''k1%'' AND ts > 150');
SELECT same('SELECT count(*) FROM m WHERE key LIKE ''k1_'' AND ts > 150');
SELECT same('SELECT count(*) FROM m WHERE key = ''k1'' AND ts = 191');
ROLLBACK;
