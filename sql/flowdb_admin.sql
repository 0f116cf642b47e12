-- Maintenance, statistics, metrics and privileges.
SELECT flowdb.put('adm/' || i, i, convert_to('value ' || i, 'UTF8')) FROM generate_series(1, 100) i \g /dev/null
SELECT flowdb.flush();
SELECT flowdb.put('adm/' || i, i, convert_to('again ' || i, 'UTF8')) FROM generate_series(1, 100) i \g /dev/null
SELECT flowdb.checkpoint();
SELECT flowdb.compact();
SELECT flowdb.compact(false);
SELECT flowdb.gc() >= 0 AS gc_ran;
SELECT count(*) FROM flowdb.scan(prefix => 'adm/');
SELECT convert_from(flowdb.get('adm/7', 7), 'UTF8');

-- stats: one row per engine counter
SELECT name FROM flowdb.stats() ORDER BY name;
SELECT value >= 1 AS flushed FROM flowdb.engine_stats WHERE name = 'flushes';
SELECT value >= 200 AS written FROM flowdb.engine_stats WHERE name = 'records_written';
-- metrics: Prometheus text
SELECT flowdb.metrics() LIKE '%# TYPE flowdb_%' AS prometheus;
SELECT count(*) > 10 AS many_lines FROM regexp_split_to_table(flowdb.metrics(), E'\n') l
WHERE l ~ '^flowdb_';

-- privileges: maintenance is for flowdb_admin; data functions are public
CREATE ROLE flowdb_plain;
SET ROLE flowdb_plain;
SELECT flowdb.put('adm/plain', 1, 'x');
SELECT convert_from(flowdb.get('adm/plain', 1), 'UTF8');
SELECT count(*) FROM flowdb.scan(prefix => 'adm/');
SELECT count(*) > 0 AS stats_readable FROM flowdb.engine_stats;
SELECT flowdb.flush();
SELECT flowdb.compact();
SELECT flowdb.gc();
SELECT flowdb.checkpoint();
SELECT flowdb.create_keyspace('plain');
SELECT flowdb.drop_keyspace('default');
SELECT flowdb._purge_database();
RESET ROLE;
GRANT flowdb_admin TO flowdb_plain;
SET ROLE flowdb_plain;
SELECT flowdb.flush();
SELECT flowdb.compact();
SELECT flowdb.gc() >= 0 AS gc_ran;
SELECT flowdb.checkpoint();
SELECT flowdb.create_keyspace('plain');
SELECT flowdb.put('k', 1, 'x', keyspace => 'plain');
SELECT flowdb.drop_keyspace('plain');
SELECT flowdb._purge_database();
RESET ROLE;
DROP ROLE flowdb_plain;
SELECT flowdb.delete_range(NULL, NULL);
