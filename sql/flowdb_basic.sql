-- Basic reads and writes through the SQL API.
CREATE EXTENSION flowdb;
\dx flowdb

-- put / get
SELECT flowdb.put('sensor/1', 100, 'a');
SELECT flowdb.put('sensor/1', 200, 'b');
SELECT flowdb.put('sensor/2', 100, '\x00ff'::bytea);
SELECT flowdb.put('sensor/3', -5, '');            -- empty value, negative ts
SELECT flowdb.put('ключ', 1, convert_to('ünïcödé', 'UTF8'));
SELECT flowdb.get('sensor/1', 100), flowdb.get('sensor/1', 200), flowdb.get('sensor/2', 100);
SELECT flowdb.get('sensor/3', -5) = ''::bytea AS empty_value;
SELECT convert_from(flowdb.get('ключ', 1), 'UTF8');
SELECT flowdb.get('sensor/1', 150) IS NULL AS missing_ts,
       flowdb.get('nope', 1) IS NULL AS missing_key;

-- overwrite (same key and ts replaces)
SELECT flowdb.put('sensor/1', 100, 'a2');
SELECT flowdb.get('sensor/1', 100);

-- get_latest: the greatest ts, zero or one row
SELECT key, ts, expire_at, value FROM flowdb.get_latest('sensor/1');
SELECT count(*) FROM flowdb.get_latest('nope');

-- scan: all, prefix, key range [start, end), ts range [start, end], limit, reverse
SELECT key, ts, value FROM flowdb.scan();
SELECT key, ts FROM flowdb.scan(prefix => 'sensor/');
SELECT key, ts FROM flowdb.scan(key_start => 'sensor/1', key_end => 'sensor/3');
SELECT key, ts FROM flowdb.scan(ts_start => 100, ts_end => 150);
SELECT key, ts FROM flowdb.scan(prefix => 'sensor/', lim => 2);
SELECT key, ts FROM flowdb.scan(prefix => 'sensor/', reverse => true);
SELECT key, ts FROM flowdb.scan(prefix => 'sensor/', reverse => true, lim => 1);
SELECT key, ts FROM flowdb.scan('sensor/', 'sensor/2', NULL, 0, 1000, 0, false);
SELECT count(*) FROM flowdb.scan(prefix => 'zzz');
-- a scan in the select list is evaluated lazily, one row per call
SELECT (flowdb.scan(prefix => 'sensor/1')).key;
-- LIKE-style prefix must not match keys that merely sort between
SELECT key FROM flowdb.scan(prefix => 'sensor/1');

-- put_many
SELECT flowdb.put_many(ARRAY['m/1', 'm/2', 'm/3'], ARRAY[1, 2, 3]::bigint[],
                       ARRAY['x', 'y', 'z']::bytea[]);
SELECT flowdb.put_many('{}'::text[], '{}'::bigint[], '{}'::bytea[]);
SELECT key, ts, value FROM flowdb.scan(prefix => 'm/');

-- a batch from a query
SELECT flowdb.put_many(array_agg('g/' || i), array_agg(i::bigint), array_agg(int4send(i)))
FROM generate_series(1, 1000) i;
SELECT count(*), min(ts), max(ts) FROM flowdb.scan(prefix => 'g/');
SELECT key, ts FROM flowdb.scan(prefix => 'g/', key_start => 'g/99', lim => 3);

-- delete one version, delete a key range (all ts)
SELECT flowdb.delete('sensor/1', 100);
SELECT key, ts FROM flowdb.scan(prefix => 'sensor/1');
SELECT flowdb.delete('sensor/1', 999);             -- deleting nothing is fine
SELECT flowdb.delete_range('g/', 'g/5');
SELECT count(*) FROM flowdb.scan(prefix => 'g/');
SELECT flowdb.delete_range('g/5', 'h');
SELECT count(*) FROM flowdb.scan(prefix => 'g/');
SELECT key FROM flowdb.scan();
SELECT flowdb.delete_range('s', NULL);              -- NULL end: to the end of the keyspace
SELECT key FROM flowdb.scan();
SELECT flowdb.delete_range(NULL, 'm/2');            -- NULL start: from its beginning
SELECT key FROM flowdb.scan();
SELECT flowdb.delete_range('x', 'x');               -- empty range: no-op

-- TTL: expire_at = now + ttl_secs; 0 = never; records past expire_at vanish
SELECT flowdb.put('ttl/a', 1, 'v', 3600);
SELECT flowdb.put('ttl/b', 1, 'v', 0);
SELECT key, expire_at = 0 AS never,
       expire_at BETWEEN extract(epoch FROM now())::bigint + 3500
                     AND extract(epoch FROM now())::bigint + 3700 AS in_an_hour
FROM flowdb.scan(prefix => 'ttl/');
SELECT flowdb.put('ttl/c', 1, 'v', 1);
SELECT pg_sleep(2.1);
SELECT flowdb.get('ttl/c', 1) IS NULL AS expired;
SELECT key FROM flowdb.scan(prefix => 'ttl/');
-- an expired record inside the own transaction is gone as well
BEGIN;
SELECT flowdb.put('ttl/d', 1, 'v', 1);
SELECT pg_sleep(2.1);
SELECT flowdb.get('ttl/d', 1) IS NULL AS expired_own;
SELECT count(*) FROM flowdb.scan(prefix => 'ttl/d');
COMMIT;

-- large values and keys at the limits
SELECT flowdb.put(repeat('k', 8192 - 13), 1, 'max key');  -- 13-byte prefix for 'default'
SELECT length(key) FROM flowdb.scan(prefix => 'kkk');
SELECT flowdb.put('big', 1, convert_to(repeat('v', 16 * 1024 * 1024), 'UTF8'));
SELECT length(flowdb.get('big', 1));
SELECT flowdb.delete_range(NULL, NULL);
SELECT count(*) FROM flowdb.scan();
