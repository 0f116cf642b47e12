-- Keyspaces: named key spaces within a database.
SELECT name FROM flowdb.keyspaces ORDER BY name;
SELECT flowdb.create_keyspace('metrics');
SELECT flowdb.create_keyspace('events');
SELECT name FROM flowdb.keyspaces ORDER BY name;
SELECT flowdb.create_keyspace('metrics');

-- the same key in different keyspaces are different records
SELECT flowdb.put('k', 1, 'default');
SELECT flowdb.put('k', 1, 'metrics', keyspace => 'metrics');
SELECT flowdb.put('k', 1, 'events', NULL, 'events');
SELECT flowdb.get('k', 1), flowdb.get('k', 1, 'metrics'), flowdb.get('k', 1, keyspace => 'events');
SELECT key, value FROM flowdb.scan(keyspace => 'metrics');
SELECT flowdb.put_many('{a,b}', '{1,2}', '{x,y}', NULL, 'metrics');
SELECT key FROM flowdb.scan(keyspace => 'metrics');
SELECT key FROM flowdb.scan();
-- a range delete over all keys of one keyspace leaves the others alone
SELECT flowdb.delete_range(NULL, NULL, 'metrics');
SELECT count(*) FROM flowdb.scan(keyspace => 'metrics');
SELECT flowdb.get('k', 1), flowdb.get('k', 1, 'events');

-- keyspace names that are prefixes of each other do not overlap
SELECT flowdb.create_keyspace('ev');
SELECT flowdb.put('ents', 1, 'in ev', keyspace => 'ev');
SELECT key FROM flowdb.scan(keyspace => 'ev');
SELECT key FROM flowdb.scan(keyspace => 'events');

-- drop deletes the data; re-creating starts empty
SELECT flowdb.drop_keyspace('events');
SELECT flowdb.get('k', 1, 'events');
SELECT flowdb.create_keyspace('events');
SELECT count(*) FROM flowdb.scan(keyspace => 'events');

-- create and drop are transactional
BEGIN;
SELECT flowdb.create_keyspace('temp');
SELECT flowdb.put('t', 1, 'x', keyspace => 'temp');
SELECT flowdb.get('t', 1, 'temp');
ROLLBACK;
SELECT flowdb.put('t', 1, 'x', keyspace => 'temp');
BEGIN;
SELECT flowdb.drop_keyspace('ev');
SELECT flowdb.get('ents', 1, 'ev');
ROLLBACK;
SELECT flowdb.get('ents', 1, 'ev');

SELECT flowdb.drop_keyspace('ev');
SELECT flowdb.drop_keyspace('events');
SELECT flowdb.drop_keyspace('metrics');
SELECT name FROM flowdb.keyspaces ORDER BY name;
SELECT flowdb.delete_range(NULL, NULL);
