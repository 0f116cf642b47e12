-- Stores, auto-increment, indexes (unique / composite / multi-entry),
-- directions, query + explain, versions, patch, change feed.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS flowdb CASCADE;
RESET client_min_messages;
CREATE EXTENSION flowdb;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- auto-increment: starts at 1, explicit numeric key >= current moves it to
-- floor(key)+1, deletes never lower it, rollback reverts it, nested key path
-- objects are created, 2^53 is the last key
SELECT jsondb.create_store('ai', 'meta.id', true);
SELECT jsondb.put('ai', '{"v": "a"}');
SELECT jsondb.put('ai', '{"v": "b"}');
SELECT jsondb.put('ai', '{"v": "c", "meta": {"id": 10.5}}');
SELECT jsondb.put('ai', '{"v": "d"}');
SELECT jsondb.put('ai', '{"v": "e", "meta": {"id": 3}}');
SELECT jsondb.put('ai', '{"v": "f", "meta": {"id": "str"}}');
SELECT jsondb.put('ai', '{"v": "g"}');
SELECT jsondb.delete('ai', '12');
SELECT jsondb.put('ai', '{"v": "h"}');
BEGIN;
SELECT jsondb.put('ai', '{"v": "rolled back"}');
ROLLBACK;
SELECT jsondb.put('ai', '{"v": "i"}');
SELECT jsondb.get_all('ai');
SELECT pg_temp.err($$SELECT jsondb.put('ai', '{"meta": 5}')$$);
SELECT jsondb.put('ai', '{"v": "big", "meta": {"id": 9007199254740991}}');
SELECT jsondb.put('ai', '{"v": "last"}');
SELECT pg_temp.err($$SELECT jsondb.put('ai', '{"v": "past 2^53"}')$$);
SELECT jsondb.create_store('ai2', 'id', true);
SELECT jsondb.put('ai2', '{"id": {"$number": "Infinity"}}');
SELECT pg_temp.err($$SELECT jsondb.put('ai2', '{"x": 1}')$$);
-- a generated key past 10^15 is written into the document exactly (it used
-- to be rounded to 15 significant digits, unlike the primary key)
SELECT jsondb.create_store('ai3', 'meta.id', true);
SELECT jsondb.put('ai3', '{"meta": {"id": 9007199254740990}}');
SELECT jsondb.put('ai3', '{"v": "last"}');
SELECT jsondb.get('ai3', '9007199254740991');
SELECT (jsondb.get('ai3', '9007199254740991') #>> '{meta,id}')::numeric = 9007199254740991 AS exact_key;

-- stores and indexes
SELECT jsondb.create_store('users', 'id');
SELECT pg_temp.err($$SELECT jsondb.create_store('users', 'id')$$);
SELECT jsondb.put('users', '{"id": 1, "email": "ann@x", "age": 30, "address": {"city": "Paris"}, "tags": ["a", "b", "a", [1], true]}');
SELECT jsondb.put('users', '{"id": 2, "email": "bob@x", "age": 31, "address": {"city": "Paris"}, "tags": ["b", "c"]}');
SELECT jsondb.put('users', '{"id": 3, "email": "cat@x", "age": 40, "address": {"city": "Rome"}, "tags": "a"}');
SELECT jsondb.put('users', '{"id": 4, "age": "unknown", "address": {"city": "Rome"}}');
-- indexes created after the data are backfilled
SELECT jsondb.create_index('users', 'email', ARRAY['email'], "unique" => true);
SELECT jsondb.create_index('users', 'age', ARRAY['age']);
SELECT jsondb.create_index('users', 'city_age', ARRAY['address.city', 'age']);
SELECT jsondb.create_index('users', 'tags', ARRAY['tags'], multi_entry => true);
SELECT pg_temp.err($$SELECT jsondb.create_index('users', 'age', ARRAY['x'])$$);
SELECT pg_temp.err($$SELECT jsondb.create_index('nosuch', 'x', ARRAY['x'])$$);
SELECT pg_temp.err($$SELECT jsondb.put('nosuch', '{"id": 1}')$$);
SELECT pg_temp.err($$SELECT jsondb.get_by_index('users', 'nosuch', '1')$$);
-- multi-entry: each distinct valid element once; invalid skipped; nested array is one key
SELECT index_key, key FROM jsondb.range_by_index('users', 'tags');
-- unique violation names the index and writes nothing
SELECT pg_temp.err($$SELECT jsondb.put('users', '{"id": 9, "email": "ann@x"}')$$);
SELECT jsondb.get('users', '9');
SELECT pg_temp.err($$SELECT jsondb.add('users', '{"id": 1, "email": "new@x"}')$$);
-- re-putting the same document with its own email is fine
SELECT jsondb.put('users', '{"id": 1, "email": "ann@x", "age": 30, "address": {"city": "Paris"}, "tags": ["a", "b", "a", [1], true]}');
SELECT pg_temp.err($$SELECT jsondb.create_index('users', 'city_unique', ARRAY['address.city'], true)$$);
SELECT jsondb.stores();
-- four directions over a non-unique index
SELECT jsondb.put('users', '{"id": 5, "email": "dan@x", "age": 31, "address": {"city": "Oslo"}}');
SELECT index_key, key FROM jsondb.range_by_index('users', 'age', '30', '40', direction => 'next');
SELECT index_key, key FROM jsondb.range_by_index('users', 'age', '30', '40', direction => 'nextunique');
SELECT index_key, key FROM jsondb.range_by_index('users', 'age', '30', '40', direction => 'prev');
SELECT index_key, key FROM jsondb.range_by_index('users', 'age', '30', '40', direction => 'prevunique');
SELECT index_key, key FROM jsondb.range_by_index('users', 'age', '30', '40', true, true);
SELECT key FROM jsondb.range_by_index('users', 'city_age', '["Paris", 31]', '["Paris", 31]');
SELECT jsondb.get_by_index('users', 'email', '"cat@x"') ->> 'id' AS cat;
SELECT pg_temp.err($$SELECT * FROM jsondb.range_by_index('users', 'age', direction => 'sideways')$$);

-- query: the same rows with and without an index
SELECT jsondb.explain('users', '{"email": "bob@x"}');
SELECT jsondb.explain('users', '{"address.city": "Paris", "age": 31}');
SELECT jsondb.explain('users', '{"tags": {"$in": ["a", "c"]}}');
SELECT jsondb.explain('users', '{"age": {"$gte": 30, "$lt": 35}}');
SELECT jsondb.explain('users', '{"address.city": "Paris"}');
CREATE TEMP TABLE filters (f jsonb, o text);
INSERT INTO filters VALUES
  ('{"email": "bob@x"}', NULL), ('{"address.city": "Paris", "age": 31}', NULL),
  ('{"tags": {"$in": ["a", "c"]}}', 'age'), ('{"age": {"$gte": 30, "$lt": 35}}', 'age'),
  ('{"tags": "a", "age": {"$ne": 40}}', NULL), ('{"age": {"$gt": 0}}', 'email'),
  ('{"address.city": "Paris", "age": {"$gte": 30, "$lt": 40}, "tags": {"$in": ["a", "b"]}}', NULL),
  ('{"age": "unknown"}', NULL), ('{"tags": [1]}', NULL);
SELECT f, o, jsondb.explain('users', f) ->> 'index' AS index,
       ARRAY(SELECT q ->> 'id' FROM jsondb.query('users', f, o) q) AS ids
FROM filters;
-- the same filters with every index gone
BEGIN;
SELECT jsondb.delete_index('users', i) FROM unnest(ARRAY['email', 'age', 'city_age', 'tags']) i;
SELECT f, o, jsondb.explain('users', f) ->> 'index' AS index,
       ARRAY(SELECT q ->> 'id' FROM jsondb.query('users', f, o) q) AS ids
FROM filters;
ROLLBACK;
SELECT q ->> 'id' FROM jsondb.query('users', '{"age": {"$gte": 0}}', 'age', 'prev', 2, 1) q;
SELECT pg_temp.err($$SELECT jsondb.query('users', '{"age": {"$regex": "x"}}')$$);
SELECT pg_temp.err($$SELECT jsondb.query('users', '[1]')$$);

-- versions and expected-version puts
SELECT version FROM jsondb.get_with_meta('users', '2');
SELECT jsondb.put('users', '{"id": 2, "email": "bob@x", "age": 32}', 1);
SELECT version FROM jsondb.get_with_meta('users', '2');
SELECT pg_temp.err($$SELECT jsondb.put('users', '{"id": 2, "email": "bob@x"}', 1)$$);
SELECT pg_temp.err($$SELECT jsondb.put('users', '{"id": 77}', 3)$$);
SELECT jsondb.put('users', '{"id": 77}', 0);

-- patch (RFC 7396) keeps indexes right
SELECT jsondb.patch('users', '2', '{"email": "robert@x", "address": {"city": "Oslo", "zip": null}, "age": null, "x": {"y": {"z": 1}}}');
SELECT jsondb.get_by_index('users', 'email', '"bob@x"') IS NULL AS old_email_gone;
SELECT jsondb.get_by_index('users', 'email', '"robert@x"') ->> 'id' AS new_email;
SELECT key FROM jsondb.range_by_index('users', 'age', '32', '32');
SELECT version FROM jsondb.get_with_meta('users', '2');
SELECT pg_temp.err($$SELECT jsondb.patch('users', '2', '{"id": 3}')$$);
SELECT pg_temp.err($$SELECT jsondb.patch('users', '404', '{"a": 1}')$$);
SELECT pg_temp.err($$SELECT jsondb.patch('users', '2', '{"email": "cat@x"}')$$);
SELECT jsondb.merge_patch('{"a": "b", "c": {"d": "e", "f": "g"}}', '{"a": "z", "c": {"f": null}}');
SELECT jsondb.merge_patch('{"a": [1]}', '{"a": {"b": null, "c": 1}}');

-- delete / delete range / count keep indexes right
SELECT jsondb.count('users'), jsondb.count('users', '2', '4'), jsondb.count('users', '2', '4', true, true);
SELECT jsondb.delete_range('users', '3', '5');
SELECT jsondb.get_all_keys('users');
SELECT index_key, key FROM jsondb.range_by_index('users', 'tags');
SELECT jsondb.get_by_index('users', 'email', '"cat@x"') IS NULL AS cat_gone;

-- change feed: ordered, resumable, nothing for rolled-back work
SELECT jsondb.create_store('feed', 'id');
SELECT jsondb.put('feed', '{"id": 1}');
SELECT jsondb.put('feed', '{"id": 2}');
BEGIN;
SELECT jsondb.put('feed', '{"id": 3}');
ROLLBACK;
BEGIN;
SELECT jsondb.put('feed', '{"id": 1, "v": 2}');
SELECT jsondb.delete('feed', '2');
SELECT jsondb.put('feed', '{"id": 4}');
SELECT jsondb.delete('feed', '4');
COMMIT;
SELECT * FROM jsondb.changes('feed');
SELECT * FROM jsondb.changes('feed', since => 2, lim => 1);
SELECT * FROM jsondb.changes('feed', since => 5);
-- (the NOTIFY doorbell is shown by the jsondb_watch isolation spec)

-- delete_store removes data; schemas are per database
SELECT jsondb.delete_store('feed');
SELECT pg_temp.err($$SELECT jsondb.get('feed', '1')$$);
SELECT jsondb.create_store('feed', 'id');
SELECT jsondb.count('feed');

-- apply_store: idempotent, backfills, drops, and refuses conflicts
SELECT jsondb.apply_store('{"name": "people", "key_path": "id", "indexes": [{"name": "by_name", "key_path": "name"}]}');
SELECT jsondb.put('people', '{"id": 1, "name": "x", "nick": "n"}');
SELECT jsondb.apply_store('{"name": "people", "key_path": "id", "indexes": [{"name": "by_nick", "key_path": ["nick"], "unique": true}]}');
SELECT jsondb.apply_store('{"name": "people", "key_path": "id", "indexes": [{"name": "by_nick", "key_path": "nick", "unique": true}]}');
SELECT jsondb.get_by_index('people', 'by_nick', '"n"');
SELECT pg_temp.err($$SELECT jsondb.get_by_index('people', 'by_name', '"x"')$$);
SELECT pg_temp.err($$SELECT jsondb.apply_store('{"name": "people", "key_path": "pid"}')$$);
SELECT pg_temp.err($$SELECT jsondb.apply_store('{"name": "people", "key_path": "id", "indexes": [{"name": "by_nick", "key_path": "nick"}]}')$$);
SELECT pg_temp.err($$SELECT jsondb.apply_store('[]')$$);
-- a document of a few MB works
SELECT jsondb.put('people', jsonb_build_object('id', 2, 'blob', repeat('x', 4000000))) AS big;
SELECT length(jsondb.get('people', '2') ->> 'blob');
SELECT pg_temp.err($$SELECT jsondb.put('people', jsonb_build_object('id', 3, 'blob', repeat('x', 9000000)))$$);

-- index reads fetch documents in batches of 8 doubling to 64: every row,
-- in order, across batch edges, with the transaction's own writes
SELECT jsondb.create_store('batchy', 'id');
SELECT jsondb.create_index('batchy', 'g', ARRAY['g']);
SELECT count(jsondb.put('batchy', jsonb_build_object('id', i, 'g', i % 2, 'v', i)))
  FROM generate_series(1, 400) i;
BEGIN;
SELECT jsondb.put('batchy', '{"id": 9, "g": 1, "v": "own"}');
SELECT jsondb.delete('batchy', '11');
SELECT jsondb.put('batchy', '{"id": 1000, "g": 1, "v": "new"}');
SELECT jsondb.put('batchy', '{"id": 13, "g": 0, "v": "moved"}');
SELECT count(*), sum(key::int), count(*) FILTER (WHERE key <> doc->'id') AS mismatched
  FROM jsondb.range_by_index('batchy', 'g', '1', '1');
SELECT count(*) FILTER (WHERE k <= prev) AS out_of_order
  FROM (SELECT key::int AS k, lag(key::int) OVER (ORDER BY n) AS prev
          FROM jsondb.range_by_index('batchy', 'g', '1', '1') WITH ORDINALITY AS t(ik, key, doc, n)) s;
SELECT string_agg(key::text, ',') FROM jsondb.range_by_index('batchy', 'g', '1', '1', count => 9);
SELECT doc FROM jsondb.range_by_index('batchy', 'g', '1', '1') WHERE key IN ('9', '1000');
SELECT count(*), sum(key::int) FROM jsondb.range_by_index('batchy', 'g', '1', '1', count => 70, direction => 'prev');
SELECT count(*), min(key::int), max(key::int) FROM jsondb.range_by_index('batchy', 'g', '0', '0', count => 201);
COMMIT;
SELECT count(*), sum(key::int) FROM jsondb.range_by_index('batchy', 'g', '1', '1');
SELECT jsondb.delete_store('batchy');
