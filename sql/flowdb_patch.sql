-- patch: RFC 7396 merge for JSON objects, replacement otherwise.
SELECT flowdb.put('doc', 1, convert_to('{"name": "a", "tags": {"x": 1, "y": 2}, "n": 1}', 'UTF8'), 3600);
SELECT convert_from(flowdb.patch('doc', 1, convert_to('{"tags": {"x": null, "z": 3}, "n": 2}', 'UTF8')), 'UTF8');
SELECT convert_from(flowdb.get('doc', 1), 'UTF8');
-- a null member removes it, nested objects merge, arrays replace
SELECT convert_from(flowdb.patch('doc', 1, convert_to('{"name": null, "list": [1, 2]}', 'UTF8')), 'UTF8');
SELECT convert_from(flowdb.patch('doc', 1, convert_to('{"list": [3]}', 'UTF8')), 'UTF8');
-- NULL ttl keeps the expiry; NULL value keeps the value
SELECT expire_at > extract(epoch FROM now()) + 3500 AS expiry_kept FROM flowdb.scan(prefix => 'doc');
SELECT convert_from(flowdb.patch('doc', 1, NULL, 0), 'UTF8');
SELECT expire_at FROM flowdb.scan(prefix => 'doc');
SELECT flowdb.patch('doc', 1, NULL, 7200) IS NOT NULL;
SELECT expire_at > extract(epoch FROM now()) + 7000 AS new_expiry FROM flowdb.scan(prefix => 'doc');
-- a non-object patch replaces the value
SELECT convert_from(flowdb.patch('doc', 1, convert_to('[1, 2]', 'UTF8')), 'UTF8');
SELECT convert_from(flowdb.patch('doc', 1, convert_to('{"a": 1}', 'UTF8')), 'UTF8');
-- a JSON object over a non-JSON or non-object value replaces it
SELECT flowdb.put('raw', 1, '\xdeadbeef'::bytea);
SELECT flowdb.patch('raw', 1, convert_to('{"a": 1}', 'UTF8'));
SELECT flowdb.patch('raw', 1, '\x0102'::bytea);
-- invalid JSON that looks like an object is just bytes
SELECT flowdb.put('bad', 1, convert_to('{"a": ', 'UTF8'));
SELECT convert_from(flowdb.patch('bad', 1, convert_to('{"b": 1}', 'UTF8')), 'UTF8');
SELECT convert_from(flowdb.patch('bad', 1, convert_to('{"c": 1', 'UTF8')), 'UTF8');
-- patch sees the transaction's own writes
BEGIN;
SELECT flowdb.put('own', 1, convert_to('{"a": 1}', 'UTF8'));
SELECT convert_from(flowdb.patch('own', 1, convert_to('{"b": 2}', 'UTF8')), 'UTF8');
SELECT convert_from(flowdb.patch('own', 1, convert_to('{"c": 3}', 'UTF8')), 'UTF8');
-- the record lock is held to the end of the transaction (advisory-style, own field space)
SELECT locktype, mode, granted, objsubid FROM pg_locks
WHERE locktype = 'advisory' AND pid = pg_backend_pid();
ROLLBACK;
SELECT flowdb.get('own', 1) IS NULL AS rolled_back;
-- deleted records cannot be patched
SELECT flowdb.delete('raw', 1);
SELECT flowdb.patch('raw', 1, 'x');
-- json_merge_patch itself (RFC 7396 appendix A examples)
SELECT flowdb.json_merge_patch(t::jsonb, p::jsonb) FROM (VALUES
  ('{"a":"b"}', '{"a":"c"}'),
  ('{"a":"b"}', '{"b":"c"}'),
  ('{"a":"b"}', '{"a":null}'),
  ('{"a":"b","b":"c"}', '{"a":null}'),
  ('{"a":["b"]}', '{"a":"c"}'),
  ('{"a":"c"}', '{"a":["b"]}'),
  ('{"a":{"b":"c"}}', '{"a":{"b":"d","c":null}}'),
  ('{"a":[{"b":"c"}]}', '{"a":[1]}'),
  ('["a","b"]', '["c","d"]'),
  ('{"a":"b"}', '["c"]'),
  ('{"a":"foo"}', 'null'),
  ('{"a":"foo"}', '"bar"'),
  ('{"e":null}', '{"a":1}'),
  ('[1,2]', '{"a":"b","c":null}'),
  ('{}', '{"a":{"bb":{"ccc":null}}}')) v(t, p);
SELECT flowdb.delete_range(NULL, NULL);
