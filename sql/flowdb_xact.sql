-- Writes are atomic with the Postgres transaction; reads see own writes.
CREATE EXTENSION dblink;
-- a second session, to look from outside the transaction
SELECT dblink_connect('other', format('dbname=%s port=%s host=%s', current_database(),
       current_setting('port'), current_setting('unix_socket_directories')));
CREATE FUNCTION pg_temp.other_sees(k text, t bigint) RETURNS bytea LANGUAGE sql AS $$
    SELECT v FROM dblink('other', format('SELECT flowdb.get(%L, %s)', k, t)) AS r(v bytea)
$$;

SELECT flowdb.put('base/1', 1, 'committed');
SELECT flowdb.put('base/2', 1, 'committed');
SELECT flowdb.put('base/3', 1, 'committed');

-- ROLLBACK discards everything
BEGIN;
SELECT flowdb.put('rb/1', 1, 'x');
SELECT flowdb.delete('base/1', 1);
SELECT flowdb.get('rb/1', 1), flowdb.get('base/1', 1);
ROLLBACK;
SELECT flowdb.get('rb/1', 1), flowdb.get('base/1', 1);

-- uncommitted writes are invisible to other sessions until COMMIT
BEGIN;
SELECT flowdb.put('c/1', 1, 'mine');
SELECT flowdb.get('c/1', 1) AS own, pg_temp.other_sees('c/1', 1) AS other;
COMMIT;
SELECT pg_temp.other_sees('c/1', 1) AS other_after_commit;

-- reads of own writes: get, get_latest and scan merge the buffer with the engine
BEGIN;
SELECT flowdb.put('base/1', 1, 'own overwrite');
SELECT flowdb.put('base/1', 5, 'own newer');
SELECT flowdb.delete('base/2', 1);
SELECT flowdb.put('base/0', 1, 'own new key');
SELECT flowdb.put('base/4', 1, 'own new key');
SELECT key, ts, value FROM flowdb.scan(prefix => 'base/');
SELECT key, ts, value FROM flowdb.scan(prefix => 'base/', reverse => true);
SELECT key, ts FROM flowdb.scan(prefix => 'base/', lim => 2);
SELECT key, ts FROM flowdb.scan(prefix => 'base/', key_start => 'base/1', key_end => 'base/4');
SELECT key, ts FROM flowdb.scan(prefix => 'base/', ts_start => 2);
SELECT flowdb.get('base/1', 1), flowdb.get('base/2', 1);
SELECT key, ts, value FROM flowdb.get_latest('base/1');
SELECT count(*) FROM flowdb.get_latest('base/2');
-- a put after a delete of the same version brings it back
SELECT flowdb.put('base/2', 1, 'again');
SELECT flowdb.get('base/2', 1);
-- range delete hides committed and own earlier writes; later puts stay visible
SELECT flowdb.delete_range('base/', 'base/3');
SELECT key, ts, value FROM flowdb.scan(prefix => 'base/');
SELECT flowdb.put('base/1', 7, 'after range delete');
SELECT key, ts, value FROM flowdb.scan(prefix => 'base/');
SELECT key, ts, value FROM flowdb.get_latest('base/1');
SELECT flowdb.get('base/0', 1) IS NULL AS gone;
ROLLBACK;
SELECT key, ts, value FROM flowdb.scan(prefix => 'base/');

-- savepoints: ROLLBACK TO drops the rolled-back subtransactions' writes
BEGIN;
SELECT flowdb.put('sp/a', 1, 'top');
SAVEPOINT s1;
SELECT flowdb.put('sp/b', 1, 's1');
SAVEPOINT s2;
SELECT flowdb.put('sp/c', 1, 's2');
SELECT flowdb.delete('sp/a', 1);
SELECT key FROM flowdb.scan(prefix => 'sp/');
ROLLBACK TO SAVEPOINT s2;
SELECT key FROM flowdb.scan(prefix => 'sp/');
SELECT flowdb.put('sp/d', 1, 's1 again');
RELEASE SAVEPOINT s1;
SAVEPOINT s3;
SELECT flowdb.put('sp/e', 1, 's3');
ROLLBACK TO SAVEPOINT s3;
SAVEPOINT s4;
SELECT flowdb.put('sp/f', 1, 's4');
RELEASE SAVEPOINT s4;
COMMIT;
SELECT key, value FROM flowdb.scan(prefix => 'sp/');

-- everything rolled back to a savepoint, then commit: nothing written
BEGIN;
SAVEPOINT s;
SELECT flowdb.put('sp2/a', 1, 'x');
ROLLBACK TO s;
COMMIT;
SELECT count(*) FROM flowdb.scan(prefix => 'sp2/');

-- an exception block is a subtransaction as well
DO $$
BEGIN
    PERFORM flowdb.put('exc/kept', 1, 'x');
    BEGIN
        PERFORM flowdb.put('exc/lost', 1, 'x');
        RAISE EXCEPTION 'boom';
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
END $$;
SELECT key FROM flowdb.scan(prefix => 'exc/');

-- an error aborts the whole transaction's writes
BEGIN;
SELECT flowdb.put('err/a', 1, 'x');
SELECT flowdb.put('', 1, 'x');
COMMIT;
SELECT count(*) FROM flowdb.scan(prefix => 'err/');

-- a scan open while the same statement writes sees the state at its start
BEGIN;
SELECT count(*) FROM (SELECT flowdb.put('w/' || key, ts, value) FROM flowdb.scan(prefix => 'sp/')) s;
SELECT key FROM flowdb.scan(prefix => 'w/');
COMMIT;

-- many writes in one transaction, rolled back in the middle
BEGIN;
SELECT flowdb.put('bulk/' || i, i, 'x') FROM generate_series(1, 500) i \g /dev/null
SAVEPOINT half;
SELECT flowdb.put('bulk/' || i, i, 'x') FROM generate_series(501, 1000) i \g /dev/null
ROLLBACK TO half;
COMMIT;
SELECT count(*) FROM flowdb.scan(prefix => 'bulk/');

-- an error inside a scan (cancel, bad row) releases the engine iterator
BEGIN;
SELECT key, 1 / (ts - 3) FROM flowdb.scan(prefix => 'bulk/');
ROLLBACK;
-- in the select list the scan is lazy: the error comes while its iterator is open
SELECT (s).key, 1 / ((s).ts - 3) FROM (SELECT flowdb.scan(prefix => 'bulk/') s) x;
SELECT count(*) FROM flowdb.scan(prefix => 'bulk/');
-- iterators of failed scans are closed: far more failures than engine
-- iterator slots, and scans still work afterwards
DO $$
DECLARE n int := 0;
BEGIN
    FOR i IN 1 .. 2000 LOOP
        BEGIN
            PERFORM (s).key, 1 / ((s).ts - 3) FROM (SELECT flowdb.scan(prefix => 'bulk/') s) x;
        EXCEPTION WHEN division_by_zero THEN
            n := n + 1;
        END;
    END LOOP;
    RAISE NOTICE '% scans failed', n;
END $$;
SELECT count(*) FROM flowdb.scan(prefix => 'bulk/');
SET statement_timeout = '1ms';
SELECT count(*) FROM flowdb.scan(prefix => 'bulk/') a, generate_series(1, 100000) b;
RESET statement_timeout;

SELECT dblink_disconnect('other');
SELECT flowdb.delete_range(NULL, NULL);
DROP EXTENSION dblink;
