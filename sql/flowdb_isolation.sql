-- Databases never see each other's data.
SELECT flowdb.put('shared-name', 1, 'from contrib_regression');
SELECT flowdb.create_keyspace('iso');
SELECT flowdb.put('k', 1, 'regression iso', keyspace => 'iso');
CREATE DATABASE flowdb_iso;
\c flowdb_iso
CREATE EXTENSION flowdb;
SELECT count(*) FROM flowdb.scan();
SELECT flowdb.get('shared-name', 1) IS NULL AS invisible;
SELECT flowdb.put('k', 1, 'x', keyspace => 'iso');     -- no such keyspace here
SELECT flowdb.put('shared-name', 1, 'from flowdb_iso');
SELECT flowdb.create_keyspace('iso');
SELECT count(*) FROM flowdb.scan(keyspace => 'iso');
SELECT flowdb.put('k', 1, 'flowdb_iso iso', keyspace => 'iso');
SELECT key, convert_from(value, 'UTF8') FROM flowdb.scan();
-- dropping and re-creating the extension starts from empty
DROP EXTENSION flowdb;
CREATE EXTENSION flowdb;
SELECT count(*) FROM flowdb.scan();
SELECT flowdb.put('shared-name', 1, 'from flowdb_iso');
\c contrib_regression
SELECT key, convert_from(value, 'UTF8') FROM flowdb.scan();
SELECT convert_from(flowdb.get('k', 1, 'iso'), 'UTF8');
DROP DATABASE flowdb_iso;
SELECT flowdb.drop_keyspace('iso');
SELECT flowdb.delete_range(NULL, NULL);
SELECT count(*) FROM flowdb.scan();
