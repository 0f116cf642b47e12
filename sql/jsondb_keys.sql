-- IndexedDB keys: validity, order (number < date < string < binary < array),
-- strings by UTF-16 code unit, arrays element by element, tagged forms.
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

SELECT jsondb.create_store('k', 'k');
-- inserted in scrambled order; get_all_keys returns IndexedDB order
SELECT jsondb.put('k', jsonb_build_object('k', v)) FROM (VALUES
  ('[1, 2]'::jsonb), ('"b"'), ('{"$binary": "AP8="}'), ('-1.5'), ('{"$date": "2024-01-01T00:00:00Z"}'),
  ('"a"'), ('[1]'), ('{"$number": "Infinity"}'), ('[]'), ('0'), ('"\uffff"'), ('"\ud83d\ude00"'),
  ('{"$binary": ""}'), ('{"$number": "-Infinity"}'), ('{"$date": 0}'), ('""'), ('[[]]'), ('"ab"'),
  ('{"$date": "1969-12-31T23:59:59.999Z"}'), ('1e300'), ('["a", 1]'), ('[1, "a"]'), ('-0'),
  ('{"$binary": "AA=="}'), ('"B"'), ('"é"'), ('10'), ('2'), ('"10"'), ('"2"')) t(v);
SELECT row_number() OVER () AS pos, k FROM jsondb.get_all_keys('k') k;
-- reverse and bounds
SELECT jsondb.get_all_keys('k', '"a"', '"b"', false, true);
SELECT jsondb.get_all_keys('k', '0', '10', true, false);
SELECT jsondb.get_all_keys('k', count => 3, direction => 'prev');
SELECT jsondb.count('k', '{"$date": 0}', '{"$binary": ""}');
-- -0 and 0 are the same key
SELECT jsondb.get('k', '-0') = jsondb.get('k', '0') AS same_zero;
-- 😀 (U+1F600, surrogates D83D DE00) sorts before U+FFFF by UTF-16 code unit,
-- though its UTF-8 bytes sort after
SELECT jsondb.get_all_keys('k', '"\ud83d\ude00"', '"\uffff"');

-- invalid keys: a clear error with SQLSTATE 22023
SELECT pg_temp.err($$SELECT jsondb.get('k', 'true')$$);
SELECT pg_temp.err($$SELECT jsondb.get('k', 'null')$$);
SELECT pg_temp.err($$SELECT jsondb.get('k', '{"a": 1}')$$);
SELECT pg_temp.err($$SELECT jsondb.get('k', '[1, false]')$$);
SELECT pg_temp.err($$SELECT jsondb.get('k', '{"$number": "NaN"}')$$);
SELECT pg_temp.err($$SELECT jsondb.get('k', '{"$date": "2024-02-30"}')$$);
SELECT pg_temp.err($$SELECT jsondb.get('k', '{"$date": "yesterday"}')$$);
SELECT pg_temp.err($$SELECT jsondb.get('k', '{"$binary": "not base64!"}')$$);
SELECT pg_temp.err($$SELECT jsondb.put('k', '{"k": true}')$$);
SELECT pg_temp.err($$SELECT jsondb.put('k', '{"k": null}')$$);
SELECT pg_temp.err($$SELECT jsondb.put('k', '{"k": {"x": 1}}')$$);
SELECT pg_temp.err($$SELECT jsondb.put('k', '{"other": 1}')$$);
SELECT pg_temp.err($$SELECT jsondb.put('k', '[1, 2]')$$);
SELECT pg_temp.err($$SELECT jsondb.put('k', '"just a string"')$$);
-- tagged forms round-trip
SELECT jsondb.get('k', '{"$date": "2024-01-01T01:00:00+01:00"}');
SELECT jsondb.get('k', '{"$binary": "AP8="}');
SELECT jsondb.get('k', '{"$number": "-Infinity"}');
-- dates given in milliseconds and as strings are the same key
SELECT jsondb.get('k', '{"$date": 1704067200000}') IS NOT NULL AS ms_form;

-- key paths: '' whole value, dotted, compound; invalid ones rejected at creation
SELECT pg_temp.err($$SELECT jsondb.create_store('bad1', 'a..b')$$);
SELECT pg_temp.err($$SELECT jsondb.create_store('bad2', '1abc')$$);
SELECT pg_temp.err($$SELECT jsondb.create_store('bad3', 'a b')$$);
SELECT pg_temp.err($$SELECT jsondb.create_store('bad4', ARRAY[]::text[])$$);
SELECT pg_temp.err($$SELECT jsondb.create_store('bad5', ARRAY['a', 'b'], true)$$);
SELECT pg_temp.err($$SELECT jsondb.create_store('bad6', '', true)$$);
SELECT pg_temp.err($$SELECT jsondb.create_index('k', 'bad', ARRAY['x.'])$$);
SELECT pg_temp.err($$SELECT jsondb.create_index('k', 'bad', ARRAY['a', 'b'], false, true)$$);
SELECT jsondb.create_store('compound', ARRAY['last', 'first']);
SELECT jsondb.put('compound', '{"first": "Ada", "last": "Lovelace"}');
SELECT jsondb.put('compound', '{"first": "Alan", "last": "Turing"}');
SELECT jsondb.put('compound', '{"first": "Grace", "last": "Hopper"}');
SELECT jsondb.get_all_keys('compound');
SELECT jsondb.get('compound', '["Turing", "Alan"]');
SELECT pg_temp.err($$SELECT jsondb.put('compound', '{"first": "X"}')$$);
SELECT jsondb.create_store('nested', 'a.b.c');
SELECT jsondb.put('nested', '{"a": {"b": {"c": "deep"}}, "v": 1}');
SELECT jsondb.get('nested', '"deep"');
