-- JsonDB stores as foreign tables: reads, pushdown (checked against a heap
-- copy of the same rows, where nothing can be pushed), EXPLAIN, writes.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS flowdb CASCADE;
RESET client_min_messages;
CREATE EXTENSION flowdb;
SELECT jsondb.create_store('users', 'id');
SELECT jsondb.create_index('users', 'by_email', ARRAY['email'], true);
SELECT jsondb.create_index('users', 'by_city', ARRAY['address.city']);
SELECT jsondb.create_index('users', 'by_age', ARRAY['age']);
SELECT jsondb.create_index('users', 'by_city_name', ARRAY['address.city', 'name']);
SELECT jsondb.create_index('users', 'by_tags', ARRAY['tags'], false, true);
SELECT count(*) FROM (
  SELECT jsondb.put('users', jsonb_build_object(
    'id', i, 'email', 'user' || i || '@example.com', 'name', 'n' || (i % 5),
    'age', 20 + i % 30,
    'address', jsonb_build_object('city', (ARRAY['Paris','Lyon','Nice'])[1 + i % 3]),
    'tags', CASE WHEN i % 4 = 0 THEN '["a","b"]'::jsonb ELSE '["c"]'::jsonb END))
  FROM generate_series(1, 60) i) s;
-- mixed types at indexed paths: a string "30" next to the number 30, a
-- missing and a null age, a number as email, string / array / date keys
SELECT jsondb.put('users', '{"id": 100, "email": "s@x", "age": "30", "address": {"city": "Paris"}, "name": "n1"}');
SELECT jsondb.put('users', '{"id": 101, "email": "m@x", "tags": "a"}');
SELECT jsondb.put('users', '{"id": 102, "email": 42, "age": null, "address": {"city": "Nice"}}');
SELECT jsondb.put('users', '{"id": 103, "email": "30", "age": " 31", "address": {"city": ["Paris"]}}');
SELECT jsondb.put('users', '{"id": "k1", "email": "k1@x", "age": 30, "address": {"city": "Paris"}, "name": "n0"}');
SELECT jsondb.put('users', '{"id": "a", "email": "a@x", "age": 45}');
SELECT jsondb.put('users', '{"id": "m", "email": "m2@x", "age": 21}');
SELECT jsondb.put('users', '{"id": "é", "email": "e@x"}');
SELECT jsondb.put('users', '{"id": [1, "x"], "email": "arr@x", "age": 35}');
SELECT jsondb.put('users', '{"id": {"$date": "2020-01-02T03:04:05.000Z"}, "email": "date@x"}');
SELECT jsondb.put('users', '{"id": {"$number": "Infinity"}, "email": "inf@x"}');

CREATE FOREIGN TABLE users (key jsonb, doc jsonb) SERVER flowdb OPTIONS (store 'users');
CREATE FOREIGN TABLE users_doc (doc jsonb) SERVER flowdb OPTIONS (store 'users');
SELECT count(*) FROM users;
SELECT key, doc FROM users WHERE jsonb_typeof(doc->'tags') IS DISTINCT FROM 'array' ORDER BY key::text COLLATE "C";
-- the reference: the same rows in a heap table, where nothing is pushed
CREATE TABLE ref_users AS SELECT * FROM users;
CREATE TABLE ref_users_doc AS SELECT * FROM users_doc;
SELECT count(*) FROM ref_users;

-- same(table, condition): the rows of the foreign table and of its heap copy
-- under the condition, compared both ways (EXCEPT ALL)
CREATE FUNCTION same(tbl text, cond text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    n bigint; extra bigint; missing bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %I WHERE %s', tbl, cond) INTO n;
    EXECUTE format('SELECT count(*) FROM (SELECT * FROM %I WHERE %s EXCEPT ALL '
                   'SELECT * FROM %I WHERE %s) d', tbl, cond, 'ref_' || tbl, cond) INTO extra;
    EXECUTE format('SELECT count(*) FROM (SELECT * FROM %I WHERE %s EXCEPT ALL '
                   'SELECT * FROM %I WHERE %s) d', 'ref_' || tbl, cond, tbl, cond) INTO missing;
    RETURN format('%s rows, %s extra, %s missing', n, extra, missing);
END $$;

-- pairs(table, conditions): every condition and every pair of them, pushed
-- and not (the heap copy): the same rows, or both fail (a cast can fail on
-- rows the index does not read, so the pushed query may succeed alone)
CREATE FUNCTION pairs(tbl text, conds text[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    cond text; a bigint; b bigint; a_err text; b_err text;
    n int := 0; bad int := 0; errs int := 0;
BEGIN
    FOR i IN 1 .. array_length(conds, 1) LOOP
        FOR j IN i .. array_length(conds, 1) LOOP
            cond := conds[i] || CASE WHEN j > i THEN ' AND ' || conds[j] ELSE '' END;
            a_err := NULL;
            b_err := NULL;
            BEGIN
                EXECUTE format('SELECT count(*) FROM (SELECT * FROM %I WHERE %s EXCEPT ALL '
                               'SELECT * FROM %I WHERE %s) d', tbl, cond, 'ref_' || tbl, cond) INTO a;
                EXECUTE format('SELECT count(*) FROM (SELECT * FROM %I WHERE %s EXCEPT ALL '
                               'SELECT * FROM %I WHERE %s) d', 'ref_' || tbl, cond, tbl, cond) INTO b;
            EXCEPTION WHEN OTHERS THEN
                a_err := SQLERRM;
            END;
            n := n + 1;
            IF a_err IS NOT NULL THEN
                errs := errs + 1;
                BEGIN
                    EXECUTE format('SELECT count(*) FROM %I WHERE %s', 'ref_' || tbl, cond) INTO b;
                EXCEPTION WHEN OTHERS THEN
                    b_err := SQLERRM;
                END;
                IF b_err IS NULL THEN
                    bad := bad + 1;
                    RAISE NOTICE '%: pushed fails (%), not pushed does not', cond, a_err;
                END IF;
            ELSIF a <> 0 OR b <> 0 THEN
                bad := bad + 1;
                RAISE NOTICE '%: % extra, % missing', cond, a, b;
            END IF;
        END LOOP;
    END LOOP;
    RETURN format('%s conditions, %s fail both ways, %s differ', n, errs, bad);
END $$;
-- text equality: a unique index
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE doc->>'email' = 'user5@example.com';
SELECT * FROM users WHERE doc->>'email' = 'user5@example.com';
SELECT same('users', $$doc->>'email' = 'user5@example.com'$$);
-- text that is also a number's text: the string "30" and the number 42
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE doc->>'email' = '42';
SELECT key FROM users WHERE doc->>'email' = '42';
SELECT same('users', $$doc->>'email' = '42'$$);
SELECT same('users', $$doc->>'email' = '30'$$);
SELECT same('users', $$doc->>'age' = '30'$$);
SELECT same('users', $$doc->>'age' = ' 31'$$);
SELECT same('users', $$doc->>'age' = '030'$$);
SELECT same('users', $$doc->>'age' = '-0.50'$$);
-- a boolean's text cannot be looked up: not pushed
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE doc->>'email' = 'true';
-- nested paths, ->, #>> and the function forms
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE doc->'address'->>'city' = 'Paris';
SELECT same('users', $$doc->'address'->>'city' = 'Paris'$$);
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE doc #>> '{address,city}' = 'Lyon';
SELECT same('users', $$doc #>> '{address,city}' = 'Lyon'$$);
SELECT same('users', $$'Nice' = jsonb_extract_path_text(doc, 'address', 'city')$$);
-- a multi-entry index: a scalar "a" matches, an array containing "a" does not
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE doc->>'tags' = 'a';
SELECT key FROM users WHERE doc->>'tags' = 'a';
SELECT same('users', $$doc->>'tags' = 'a'$$);
-- composite index: equality on both of its paths
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE doc->'address'->>'city' = 'Paris' AND doc->>'name' = 'n1';
SELECT same('users', $$doc->'address'->>'city' = 'Paris' AND doc->>'name' = 'n1'$$);
-- containment: the string and number leaves of the object are equalities
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE doc @> '{"email": "user5@example.com"}';
SELECT same('users', $$doc @> '{"email": "user5@example.com"}'$$);
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE doc @> '{"address": {"city": "Paris"}, "name": "n1"}';
SELECT same('users', $$doc @> '{"address": {"city": "Paris"}, "name": "n1"}'$$);
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE doc->'address' @> '{"city": "Lyon"}';
SELECT same('users', $$doc->'address' @> '{"city": "Lyon"}'$$);
SELECT same('users', $$'{"age": 30}' <@ doc$$);
SELECT same('users', $$doc @> '{"age": 30.0}'$$);
SELECT same('users', $$doc @> '{"email": 42}'$$);
SELECT same('users', $$doc @> '{"tags": ["a"]}'$$);
SELECT same('users', $$doc @> '{"tags": "a"}'$$);
SELECT same('users', $$doc @> '{"address": {"city": ["Paris"]}}'$$);
SELECT same('users', $$doc @> '{"address": {"city": "Paris"}, "age": "30"}'$$);
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE doc @> '{"e-mail": "x", "age": true}';

-- a path that is not an identifier is not pushed
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE doc->>'e-mail' = 'x';
-- numeric comparisons of ->> text: strings such as "30" and " 31" cast too
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE (doc->>'age')::int >= 30;
SELECT same('users', $$(doc->>'age')::int >= 30$$);
SELECT key FROM users WHERE (doc->>'age')::int BETWEEN 30 AND 31 ORDER BY key::text COLLATE "C";
SELECT same('users', $$(doc->>'age')::int BETWEEN 30 AND 31$$);
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE (doc->>'age')::numeric < 22;
SELECT same('users', $$(doc->>'age')::numeric < 22$$);
SELECT same('users', $$(doc->>'age')::bigint = 30$$);
SELECT same('users', $$30 < (doc->>'age')::smallint$$);
-- equality on a number and a range on the index together
SELECT same('users', $$doc->>'age' = '30' AND (doc->>'age')::int <= 30$$);

-- numbers only: (doc->'v')::T (a string would be an error, as without an index)
SELECT jsondb.create_store('nums', 'id');
SELECT jsondb.create_index('nums', 'by_v', ARRAY['v']);
SELECT jsondb.create_index('nums', 'by_v_w', ARRAY['v', 'w']);
SELECT count(*) FROM (SELECT jsondb.put('nums', jsonb_build_object('id', i, 'v', v, 'w', i % 2))
  FROM unnest(ARRAY[29.4, 29.5, 30, 30.0, 30.49, 30.5, 31, -5, 0.1, 2147483647])
       WITH ORDINALITY AS u(v, i)) s;
SELECT jsondb.put('nums', '{"id": 50}');
CREATE FOREIGN TABLE nums (key jsonb, doc jsonb) SERVER flowdb OPTIONS (store 'nums');
CREATE TABLE ref_nums AS SELECT * FROM nums;
-- jsonb -> int rounds (29.5 is 30): the bounds widen by one
EXPLAIN (COSTS OFF) SELECT * FROM nums WHERE (doc->'v')::int = 30;
SELECT doc->'v' AS v FROM nums WHERE (doc->'v')::int = 30 ORDER BY key;
SELECT same('nums', $$(doc->'v')::int = 30$$);
SELECT same('nums', $$(doc->'v')::int > 30$$);
SELECT same('nums', $$(doc->'v')::int < 30$$);
SELECT same('nums', $$(doc->'v')::int >= 2147483647$$);
SELECT same('nums', $$(doc->'v')::bigint <= -5$$);
EXPLAIN (COSTS OFF) SELECT * FROM nums WHERE (doc->'v')::numeric = 30;
SELECT same('nums', $$(doc->'v')::numeric = 30$$);
SELECT same('nums', $$(doc->'v')::numeric > 30$$);
SELECT same('nums', $$(doc->'v')::numeric >= 0.1 AND (doc->'v')::numeric < 30.5$$);
SELECT same('nums', $$(doc->'v')::numeric BETWEEN 29.5 AND 30.49$$);
EXPLAIN (COSTS OFF) SELECT * FROM nums WHERE (doc->'v')::numeric = 30 AND (doc->'w')::numeric = 1;
SELECT same('nums', $$(doc->'v')::numeric = 30 AND (doc->'w')::numeric = 1$$);
SELECT pairs('nums', ARRAY[
    $c$(doc->'v')::int = 30$c$, $c$(doc->'v')::int > 29$c$, $c$(doc->'v')::smallint <= 30$c$,
    $c$(doc->'v')::numeric = 30$c$, $c$(doc->'v')::numeric < 30.49$c$,
    $c$(doc->'v')::numeric BETWEEN 29.5 AND 30.5$c$, $c$(doc->'w')::numeric = 1$c$,
    $c$(doc->>'v')::numeric >= 30.0$c$, $c$doc->>'v' = '30.0'$c$, $c$doc->>'v' = '30'$c$,
    $c$key IN ('1', '3', '4')$c$, $c$key >= '5'$c$]);
-- beyond 2^53 numbers are doubles in the index: neighbours are read and rechecked
SELECT jsondb.create_store('big', 'id');
SELECT jsondb.create_index('big', 'by_v', ARRAY['v']);
SELECT count(*) FROM (SELECT jsondb.put('big', jsonb_build_object('id', i, 'v', v))
  FROM unnest(ARRAY[9007199254740991, 9007199254740992, 9007199254740993, 9007199254740994,
                    1e20, -9007199254740993]) WITH ORDINALITY AS u(v, i)) s;
CREATE FOREIGN TABLE big (key jsonb, doc jsonb) SERVER flowdb OPTIONS (store 'big');
CREATE TABLE ref_big AS SELECT * FROM big;
SELECT same('big', $$(doc->'v')::numeric > 9007199254740992$$);
SELECT same('big', $$(doc->'v')::numeric = 9007199254740993$$);
SELECT same('big', $$(doc->'v')::numeric < -9007199254740992$$);
SELECT same('big', $$(doc->'v')::numeric >= 1e20$$);
SELECT same('big', $$(doc->>'v')::numeric = 9007199254740993$$);

-- values over 4 KiB are left out of indexes: an equality on one cannot use
-- the index (here a composite; a single-path one is then used)
SELECT jsondb.create_store('longs', 'id');
SELECT jsondb.create_index('longs', 'by_s', ARRAY['s']);
SELECT jsondb.create_index('longs', 'by_s_t', ARRAY['s', 't']);
SELECT jsondb.put('longs', jsonb_build_object('id', 1, 's', repeat('x', 5000), 't', 'a'));
SELECT jsondb.put('longs', jsonb_build_object('id', 2, 's', repeat('y', 3000), 't', repeat('z', 3000)));
SELECT jsondb.put('longs', jsonb_build_object('id', 3, 's', 'short', 't', 'a'));
CREATE FOREIGN TABLE longs (key jsonb, doc jsonb) SERVER flowdb OPTIONS (store 'longs');
CREATE TABLE ref_longs AS SELECT * FROM longs;
SET plan_cache_mode = force_generic_plan;
PREPARE by_s(text, text) AS SELECT key FROM longs WHERE doc->>'s' = $1 AND doc->>'t' = $2;
EXPLAIN (COSTS OFF) EXECUTE by_s(repeat('x', 5000), 'a');
EXECUTE by_s(repeat('x', 5000), 'a');
EXPLAIN (COSTS OFF) EXECUTE by_s(repeat('y', 3000), repeat('z', 3000));
EXECUTE by_s(repeat('y', 3000), repeat('z', 3000));
EXPLAIN (COSTS OFF) EXECUTE by_s('short', 'a');
EXECUTE by_s('short', 'a');
RESET plan_cache_mode;
SELECT same('longs', $$doc->>'s' = repeat('x', 5000)$$);

-- primary key comparisons, in jsonb's order (string < number < array < object)
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE key = '5';
SELECT same('users', $$key = '5'$$);
SELECT same('users', $$key = '5.0'$$);
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE key IN ('5', '7', '5', '"k1"');
SELECT key FROM users WHERE key IN ('5', '7', '5', '"k1"') ORDER BY key;
SELECT same('users', $$key IN ('5', '7', '5', '"k1"', '[1, "x"]')$$);
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE key >= '10' AND key < '20';
SELECT same('users', $$key >= '10' AND key < '20'$$);
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE key > '55';
SELECT key FROM users WHERE key > '55' ORDER BY key;
SELECT same('users', $$key > '55'$$);
SELECT same('users', $$key <= '3'$$);
SELECT same('users', $$key < '"k1"'$$);
-- (string bounds whose results do not depend on the collation)
SELECT same('users', $$key >= '"b"'$$);
SELECT same('users', $$key > '"a"'$$);
SELECT same('users', $$key <= '"a"'$$);
SELECT same('users', $$key < '[2]'$$);
SELECT same('users', $$key > '[1]'$$);
SELECT same('users', $$key >= '{"$date": "2020-01-01T00:00:00.000Z"}'$$);
SELECT same('users', $$key < 'true'$$);
SELECT same('users', $$key > 'null'$$);
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE key < 'null';
-- key and document conditions together: the key wins when it is exact
EXPLAIN (COSTS OFF) SELECT * FROM users WHERE key = '5' AND doc->>'email' = 'user5@example.com';
SELECT same('users', $$key > '30' AND doc->>'email' = 'user40@example.com'$$);
-- a table without the key column
EXPLAIN (COSTS OFF) SELECT * FROM users_doc WHERE doc->>'email' = 'user7@example.com';
SELECT same('users_doc', $$doc->>'email' = 'user7@example.com'$$);
EXPLAIN (VERBOSE, COSTS OFF) SELECT doc->>'email' FROM users WHERE (doc->>'age')::int < 21;

-- parameters: the index and bounds are chosen when the scan starts
SET plan_cache_mode = force_generic_plan;
PREPARE by_email(text) AS SELECT key FROM users WHERE doc->>'email' = $1;
EXPLAIN (COSTS OFF) EXECUTE by_email('user9@example.com');
EXECUTE by_email('user9@example.com');
EXPLAIN (COSTS OFF) EXECUTE by_email('42');
EXECUTE by_email('42');
PREPARE by_key(jsonb) AS SELECT doc->>'email' FROM users WHERE key = $1;
EXPLAIN (COSTS OFF) EXECUTE by_key('12');
EXECUTE by_key('12');
-- a NULL value never matches: nothing is read
PREPARE by_age(int) AS SELECT key FROM users WHERE (doc->>'age')::int = $1;
EXPLAIN (COSTS OFF) EXECUTE by_age(NULL);
EXECUTE by_age(NULL);
EXPLAIN (COSTS OFF) EXECUTE by_age(45);
SELECT key FROM users WHERE (doc->>'age')::int = 45 ORDER BY key;
RESET plan_cache_mode;
SELECT pairs('users', ARRAY[
    $c$doc->>'email' = 'user5@example.com'$c$, $c$doc->>'email' = '42'$c$,
    $c$doc->>'email' = '30'$c$, $c$doc->>'age' = '30'$c$, $c$doc->>'age' = ' 31'$c$,
    $c$doc->>'age' = 'true'$c$, $c$doc->>'tags' = 'a'$c$, $c$doc->>'name' = 'n1'$c$,
    $c$doc->'address'->>'city' = 'Paris'$c$, $c$doc #>> '{address,city}' = 'Nice'$c$,
    $c$(doc->>'age')::int >= 30$c$, $c$(doc->>'age')::int < 25$c$,
    $c$(doc->>'age')::numeric <= 21$c$, $c$(doc->>'age')::bigint = 45$c$,
    $c$(doc->>'age')::int BETWEEN 44 AND 46$c$, $c$(doc->'age')::numeric > 40$c$,
    $c$key = '5'$c$, $c$key IN ('5', '"a"', '[1, "x"]', '40')$c$, $c$key > '40'$c$,
    $c$key <= '3'$c$, $c$key >= '"b"'$c$, $c$key < '[2]'$c$, $c$key > 'true'$c$,
    $c$doc @> '{"address": {"city": "Paris"}}'$c$, $c$doc @> '{"age": 30}'$c$,
    $c$doc @> '{"tags": ["a"]}'$c$]);

-- joins: a parameterized scan looks each outer row's value up
EXPLAIN (COSTS OFF)
SELECT r.key FROM (VALUES ('3'::jsonb), ('4')) v(k) JOIN users r ON r.key = v.k;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT r.key FROM (VALUES ('3'::jsonb), ('4')) v(k) JOIN users r ON r.key = v.k;
SELECT r.key FROM (VALUES ('3'::jsonb), ('4'), ('"k1"'), ('true')) v(k) JOIN users r ON r.key = v.k
ORDER BY r.key;
EXPLAIN (COSTS OFF)
SELECT u.key FROM (VALUES ('user3@example.com'), ('42')) v(e) JOIN users u ON u.doc->>'email' = v.e;
SELECT u.key FROM (VALUES ('user3@example.com'), ('42'), ('30')) v(e)
  JOIN users u ON u.doc->>'email' = v.e ORDER BY u.key;
EXPLAIN (COSTS OFF)
SELECT v.a, u.key FROM (VALUES (48), (49)) v(a) JOIN users u ON (u.doc->>'age')::int >= v.a;
SELECT count(*) FROM
  ((SELECT v.a, u.* FROM (VALUES (48), (49), (20)) v(a) JOIN users u ON (u.doc->>'age')::int >= v.a)
   EXCEPT ALL
   (SELECT v.a, u.* FROM (VALUES (48), (49), (20)) v(a) JOIN ref_users u ON (u.doc->>'age')::int >= v.a)) d;
SELECT count(*) FROM
  ((SELECT v.a, u.* FROM (VALUES (48), (49), (20)) v(a) JOIN ref_users u ON (u.doc->>'age')::int >= v.a)
   EXCEPT ALL
   (SELECT v.a, u.* FROM (VALUES (48), (49), (20)) v(a) JOIN users u ON (u.doc->>'age')::int >= v.a)) d;
SELECT count(*) FROM ref_users r JOIN users u ON u.key = r.key AND u.doc = r.doc;

-- ANALYZE samples the documents
ANALYZE users;
SELECT reltuples FROM pg_class WHERE relname = 'users';

-- writes: INSERT through jsondb.add, with or without the key column
INSERT INTO users (doc) VALUES ('{"id": 200, "email": "new@x", "age": 77}') RETURNING *;
INSERT INTO users VALUES ('201', '{"id": 201, "email": "new2@x"}') RETURNING key;
INSERT INTO users VALUES ('202', '{"id": 203, "email": "new3@x"}');
INSERT INTO users VALUES ('202', '{"email": "new3@x"}');
INSERT INTO users (doc) VALUES ('{"email": "nokey@x"}');
INSERT INTO users (doc) VALUES (NULL);
INSERT INTO users (doc) VALUES ('[1]');
INSERT INTO users (doc) VALUES ('{"id": 200}') ON CONFLICT DO NOTHING;
-- an existing key, a unique index (nothing written either time)
INSERT INTO users (doc) VALUES ('{"id": 200, "email": "other@x"}');
INSERT INTO users (doc) VALUES ('{"id": 204, "email": "new@x"}');
SELECT jsondb.get('users', '204');
SELECT jsondb.get_by_index('users', 'by_email', '"new@x"');
SELECT * FROM users WHERE (doc->>'age')::int = 77;
-- UPDATE replaces the document and keeps the indexes right
UPDATE users SET doc = doc || '{"email": "upd@x", "age": 78}' WHERE key = '200' RETURNING *;
SELECT jsondb.get_by_index('users', 'by_email', '"upd@x"');
SELECT jsondb.get_by_index('users', 'by_email', '"new@x"');
SELECT key FROM jsondb.range_by_index('users', 'by_age', '77', '78');
SELECT (jsondb.get_with_meta('users', '200')).version;
UPDATE users SET doc = doc || '{"email": "user1@example.com"}' WHERE key = '200';
-- the key cannot change
UPDATE users SET doc = '{"id": 999}' WHERE key = '200';
UPDATE users SET key = '999' WHERE key = '200';
UPDATE users SET doc = doc - 'id' WHERE key = '200';
-- through the index-pushed scan, several documents at once
UPDATE users SET doc = jsonb_set(doc, '{name}', '"renamed"')
  WHERE doc->'address'->>'city' = 'Lyon' AND (doc->>'age')::int < 30;
SELECT count(*) FROM jsondb.query('users', '{"name": "renamed"}');
SELECT count(*) FROM users WHERE doc->>'name' = 'renamed';
-- DELETE
DELETE FROM users WHERE key = '201' RETURNING *;
DELETE FROM users_doc WHERE doc->>'email' = 'upd@x' RETURNING *;
SELECT jsondb.get_by_index('users', 'by_email', '"upd@x"');
SELECT jsondb.get('users', '200');
SELECT key FROM jsondb.range_by_index('users', 'by_age', '77', '78');
DELETE FROM users WHERE doc->>'tags' = 'a';
SELECT jsondb.get('users', '101');

-- auto-increment: the generator fills the key and RETURNING shows it
SELECT jsondb.create_store('auto', 'id', true);
CREATE FOREIGN TABLE auto (key jsonb, doc jsonb) SERVER flowdb OPTIONS (store 'auto');
INSERT INTO auto (doc) VALUES ('{"v": 1}'), ('{"v": 2}') RETURNING *;
INSERT INTO auto VALUES ('10', '{"id": 10, "v": 3}') RETURNING *;
INSERT INTO auto (doc) VALUES ('{"v": 4}') RETURNING key;
INSERT INTO auto VALUES ('12', '{"v": 5}');
-- an update without the key keeps it (a number key; a string key cannot)
UPDATE auto SET doc = '{"v": 20}' WHERE key = '1' RETURNING *;
INSERT INTO auto (doc) VALUES ('{"id": "s", "v": 6}');
UPDATE auto SET doc = '{"v": 21}' WHERE key = '"s"';
DELETE FROM auto WHERE key = '"s"' RETURNING key;
SELECT * FROM auto ORDER BY key;

-- transactions: own writes visible, rollback, savepoints
BEGIN;
INSERT INTO auto (doc) VALUES ('{"v": 100}');
SELECT count(*) FROM auto WHERE (doc->>'v')::int = 100;
SELECT count(*) FROM auto;
ROLLBACK;
SELECT count(*) FROM auto;
BEGIN;
INSERT INTO auto VALUES (NULL, '{"id": 50, "v": 50}');
SAVEPOINT s;
INSERT INTO auto VALUES (NULL, '{"id": 51, "v": 51}');
DELETE FROM auto WHERE key = '1';
ROLLBACK TO s;
INSERT INTO auto VALUES (NULL, '{"id": 52, "v": 52}');
COMMIT;
SELECT key FROM auto ORDER BY key;
-- COPY into a store table
COPY auto (doc) FROM STDIN;
{"v": "copied", "n": 1}
{"id": 40, "v": "copied"}
\.
SELECT * FROM auto WHERE doc->>'v' = 'copied' ORDER BY key;
-- a statement does not read its own writes: INSERT ... SELECT from the same
-- store copies each document once (full scan, key ranges, an IN list)
INSERT INTO auto (doc) SELECT doc - 'id' FROM auto;
SELECT count(*) FROM auto;
INSERT INTO auto (doc) SELECT doc - 'id' FROM auto WHERE key > '50';
SELECT count(*) FROM auto;
INSERT INTO auto (doc) SELECT doc - 'id' FROM auto
  WHERE key IN ('1', '2', '10', '11', '50', '52', '72', '73', '74', '75');
SELECT count(*), max(key::text::int) FROM auto;

-- string key bounds: under the C collation jsonb orders strings like the
-- keys as long as the bound has no code point >= U+D000 (else: all strings)
\set regress_db :DBNAME
CREATE DATABASE jsondb_fdw_c TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C' ENCODING 'UTF8';
\c jsondb_fdw_c
CREATE EXTENSION flowdb;
SELECT jsondb.create_store('sk', 'id');
SELECT count(*) FROM (SELECT jsondb.put('sk', jsonb_build_object('id', k))
  FROM unnest(ARRAY['a', 'b', 'ab', E'b\u0001', 'é', 'z', 'Z', '', 'a b', E'\uFFFD',
                    E'\U0001F600', E'\uE000x', E'\uD7FF', 'k1', E'\u00FF']) k) s;
SELECT jsondb.put('sk', '{"id": 5}'), jsondb.put('sk', '{"id": [1]}');
CREATE FOREIGN TABLE sk (key jsonb, doc jsonb) SERVER flowdb OPTIONS (store 'sk');
CREATE TABLE ref_sk AS SELECT * FROM sk;
EXPLAIN (COSTS OFF) SELECT * FROM sk WHERE key < '"b"';
EXPLAIN (COSTS OFF) SELECT * FROM sk WHERE key >= '"é"';
EXPLAIN (COSTS OFF) SELECT * FROM sk WHERE key > '"\uFFFD"';   -- whole string section
DO $$
DECLARE
    b jsonb; op text; a bigint; r bigint; bad int := 0; n int := 0;
BEGIN
    FOR b IN SELECT unnest(ARRAY['""', '"a"', '"ab"', '"b"', '"k1"', '"z"', '"Z"', '"a b"', '"é"',
                                 '"ÿ"', '"\uFFFD"', '"\ud83d\ude00"', '"\ue000"', '"\ud7ff"',
                                 '"\ue000x"']::jsonb[]) LOOP
        FOREACH op IN ARRAY ARRAY['<', '<=', '>', '>=', '='] LOOP
            EXECUTE format('SELECT count(*) FROM sk WHERE key %s %L', op, b) INTO a;
            EXECUTE format('SELECT count(*) FROM ref_sk WHERE key %s %L', op, b) INTO r;
            n := n + 1;
            IF a <> r THEN
                bad := bad + 1;
                RAISE NOTICE 'key % %: % rows, % without pushdown', op, b, a, r;
            END IF;
        END LOOP;
    END LOOP;
    RAISE NOTICE '% comparisons, % differ', n, bad;
END $$;
\c :regress_db
DROP DATABASE jsondb_fdw_c;

-- errors
CREATE FOREIGN TABLE nostore (doc jsonb) SERVER flowdb OPTIONS (store 'nope');
DO $$ BEGIN PERFORM * FROM nostore; EXCEPTION WHEN undefined_table THEN
  RAISE NOTICE 'undefined_table: %', SQLERRM; END $$;
DO $$ BEGIN INSERT INTO nostore VALUES ('{}'); EXCEPTION WHEN undefined_table THEN
  RAISE NOTICE 'undefined_table: %', SQLERRM; END $$;
CREATE FOREIGN TABLE bad1 (doc text) SERVER flowdb OPTIONS (store 'users');
CREATE FOREIGN TABLE bad2 (doc jsonb, extra int) SERVER flowdb OPTIONS (store 'users');
CREATE FOREIGN TABLE bad3 (key jsonb) SERVER flowdb OPTIONS (store 'users');
CREATE FOREIGN TABLE bad4 (doc jsonb) SERVER flowdb OPTIONS (store 'users', keyspace 'k');
CREATE FOREIGN TABLE bad5 (doc jsonb) SERVER flowdb OPTIONS (store '');
ALTER FOREIGN TABLE users_doc ADD COLUMN extra int;
-- keyspace tables are unaffected
CREATE FOREIGN TABLE kv (key text, ts bigint, value bytea) SERVER flowdb;
INSERT INTO kv VALUES ('a', 1, 'x');
SELECT * FROM kv;

DROP TABLE ref_users, ref_users_doc, ref_nums, ref_big, ref_longs;
DROP FUNCTION same(text, text), pairs(text, text[]);
