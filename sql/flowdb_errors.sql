-- Every error path of the SQL API, with its SQLSTATE.
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- NULL where a value is required -> 22004
SELECT pg_temp.err($$SELECT flowdb.put(NULL, 1, 'x')$$);
SELECT pg_temp.err($$SELECT flowdb.put('k', NULL, 'x')$$);
SELECT pg_temp.err($$SELECT flowdb.put('k', 1, NULL)$$);
SELECT pg_temp.err($$SELECT flowdb.put('k', 1, 'x', NULL, NULL)$$);
SELECT pg_temp.err($$SELECT flowdb.put_many(NULL, '{1}', '{x}')$$);
SELECT pg_temp.err($$SELECT flowdb.put_many('{k}', NULL, '{x}')$$);
SELECT pg_temp.err($$SELECT flowdb.put_many('{k}', '{1}', NULL)$$);
SELECT pg_temp.err($$SELECT flowdb.put_many(ARRAY['k', NULL], '{1,2}', '{x,y}')$$);
SELECT pg_temp.err($$SELECT flowdb.put_many('{k,l}', ARRAY[1, NULL]::bigint[], '{x,y}')$$);
SELECT pg_temp.err($$SELECT flowdb.put_many('{k,l}', '{1,2}', ARRAY['x', NULL]::bytea[])$$);
SELECT pg_temp.err($$SELECT flowdb.get(NULL, 1)$$);
SELECT pg_temp.err($$SELECT flowdb.get('k', NULL)$$);
SELECT pg_temp.err($$SELECT flowdb.get('k', 1, NULL)$$);
SELECT pg_temp.err($$SELECT * FROM flowdb.get_latest(NULL)$$);
SELECT pg_temp.err($$SELECT * FROM flowdb.get_latest('k', NULL)$$);
SELECT pg_temp.err($$SELECT * FROM flowdb.scan(keyspace => NULL)$$);
SELECT pg_temp.err($$SELECT flowdb.delete(NULL, 1)$$);
SELECT pg_temp.err($$SELECT flowdb.delete('k', NULL)$$);
SELECT pg_temp.err($$SELECT flowdb.delete_range('a', 'b', NULL)$$);
SELECT pg_temp.err($$SELECT flowdb.patch(NULL, 1, 'x')$$);
SELECT pg_temp.err($$SELECT flowdb.patch('k', NULL, 'x')$$);
SELECT pg_temp.err($$SELECT flowdb.create_keyspace(NULL)$$);
SELECT pg_temp.err($$SELECT flowdb.drop_keyspace(NULL)$$);

-- empty keys -> 22023
SELECT pg_temp.err($$SELECT flowdb.put('', 1, 'x')$$);
SELECT pg_temp.err($$SELECT flowdb.get('', 1)$$);
SELECT pg_temp.err($$SELECT * FROM flowdb.get_latest('')$$);
SELECT pg_temp.err($$SELECT flowdb.delete('', 1)$$);
SELECT pg_temp.err($$SELECT flowdb.put_many('{""}', '{1}', '{x}')$$);

-- keys and values over the limits -> 54000
SELECT pg_temp.err($$SELECT flowdb.put(repeat('k', 8192 - 12), 1, 'x')$$);
SELECT pg_temp.err($$SELECT flowdb.get(repeat('k', 9000), 1)$$);
SELECT pg_temp.err($$SELECT * FROM flowdb.scan(prefix => repeat('k', 9000))$$);
SELECT pg_temp.err($$SELECT flowdb.put('k', 1, convert_to(repeat('v', 16 * 1024 * 1024 + 1), 'UTF8'))$$);

-- unknown keyspace -> 42704 (with a hint)
SELECT flowdb.put('k', 1, 'x', keyspace => 'nope');
SELECT pg_temp.err($$SELECT flowdb.get('k', 1, 'nope')$$);
SELECT pg_temp.err($$SELECT * FROM flowdb.scan(keyspace => 'nope')$$);
SELECT pg_temp.err($$SELECT flowdb.drop_keyspace('nope')$$);
SELECT pg_temp.err($$SELECT flowdb.put('k', 1, 'x', keyspace => '')$$);
SELECT pg_temp.err($$SELECT flowdb.put('k', 1, 'x', keyspace => repeat('n', 64))$$);

-- bad ranges and numbers -> 22023
SELECT pg_temp.err($$SELECT * FROM flowdb.scan(ts_start => 10, ts_end => 5)$$);
SELECT pg_temp.err($$SELECT * FROM flowdb.scan(lim => -1)$$);
SELECT pg_temp.err($$SELECT flowdb.delete_range('b', 'a')$$);
SELECT pg_temp.err($$SELECT flowdb.put('k', 1, 'x', -1)$$);
SELECT pg_temp.err($$SELECT flowdb.put('k', 1, 'x', 9223372036854775807)$$);
SELECT pg_temp.err($$SELECT flowdb.put_many('{a,b}', '{1}', '{x,y}')$$);
SELECT pg_temp.err($$SELECT flowdb.put_many('{{a}}', '{{1}}', '{{x}}')$$);

-- patch of a missing record -> P0002
SELECT pg_temp.err($$SELECT flowdb.patch('missing', 1, 'x')$$);

-- keyspace administration
SELECT pg_temp.err($$SELECT flowdb.create_keyspace('default')$$);
SELECT pg_temp.err($$SELECT flowdb.create_keyspace('')$$);
SELECT pg_temp.err($$SELECT flowdb.drop_keyspace('default')$$);

-- writes in a read-only transaction -> 25006
BEGIN READ ONLY;
SELECT pg_temp.err($$SELECT flowdb.put('k', 1, 'x')$$);
SELECT pg_temp.err($$SELECT flowdb.delete('k', 1)$$);
SELECT flowdb.get('k', 1) IS NULL AS reads_work;
COMMIT;

-- two-phase commit of flowdb writes -> 0A000
BEGIN;
SELECT flowdb.put('2pc', 1, 'x');
PREPARE TRANSACTION 'flowdb_2pc';
SELECT flowdb.get('2pc', 1) IS NULL AS not_written;
SELECT count(*) FROM pg_prepared_xacts;
-- 2PC without flowdb writes still works
BEGIN;
SELECT flowdb.get('2pc', 1);
PREPARE TRANSACTION 'flowdb_2pc_ok';
COMMIT PREPARED 'flowdb_2pc_ok';

-- the messages in full, for three representative errors
\set VERBOSITY default
SELECT flowdb.put(NULL, 1, 'x');
SELECT flowdb.put(repeat('k', 8192), 1, 'x');
SELECT * FROM flowdb.scan(ts_start => 10, ts_end => 5);
SELECT count(*) FROM flowdb.scan();
