#!/usr/bin/env bash
# setup.sh — one command from a fresh Debian 12 machine (as root) to a local
# PostgreSQL 15 with FlowDB and demo data:
#   installs the packages, builds the engine and the extension, installs it,
#   creates a cluster in $FLOWDB_DEMO_DIR owned by the OS user `postgres` with
#   shared_preload_libraries = 'flowdb', starts it on port $FLOWDB_PORT,
#   loads demo data, and prints how to connect.  Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${FLOWDB_PORT:-5433}
DATA=${FLOWDB_DEMO_DIR:-/var/lib/postgresql/flowdb-demo}
SOCKDIR=/var/run/postgresql

[ "$(id -u)" -eq 0 ] || { echo "run as root (it installs packages and runs Postgres as user postgres)"; exit 1; }
./scripts/install-deps.sh

make -C lsm -j"$(nproc)"
make -j"$(nproc)"
make install

BINDIR=$(pg_config --bindir)
as_pg() { runuser -u postgres -- "$@"; }
mkdir -p "$SOCKDIR" && chown postgres:postgres "$SOCKDIR"
if [ ! -f "$DATA/PG_VERSION" ]; then
    mkdir -p "$DATA" && chown postgres:postgres "$DATA"
    as_pg "$BINDIR/initdb" -D "$DATA" --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    cat >> "$DATA/postgresql.conf" <<CONF

# FlowDB demo cluster (scripts/setup.sh)
shared_preload_libraries = 'flowdb'
port = $PORT
unix_socket_directories = '$SOCKDIR'
listen_addresses = 'localhost'
flowdb.wal_sync_mode = always
CONF
fi
# (re)start so a freshly installed flowdb.so is the one loaded
if as_pg "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    as_pg "$BINDIR/pg_ctl" -D "$DATA" -w -m fast restart -l "$DATA/server.log" >/dev/null
else
    as_pg "$BINDIR/pg_ctl" -D "$DATA" -w start -l "$DATA/server.log" >/dev/null
fi

as_pg psql -X -q -p "$PORT" -h "$SOCKDIR" -d postgres -v ON_ERROR_STOP=1 -o /dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS flowdb;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM flowdb.keyspaces WHERE name = 'sensors') THEN
        PERFORM flowdb.create_keyspace('sensors');
    END IF;
END $$;
-- one reading per minute for the last day from three sensors
SELECT flowdb.put_many(array_agg('sensor/' || s), array_agg(t),
                       array_agg(convert_to(json_build_object('temp', round((20 + 5 * sin(t / 3600.0) + s)::numeric, 2))::text, 'UTF8')),
                       NULL, 'sensors')
FROM generate_series(1, 3) s,
     generate_series(extract(epoch FROM now())::bigint / 60 * 60 - 86400, extract(epoch FROM now())::bigint / 60 * 60, 60) t;
SELECT flowdb.put('greeting', 1, convert_to('hello from flowdb', 'UTF8'));
SQL

cat <<MSG

FlowDB is running: PostgreSQL 15 on port $PORT, data in $DATA (log: $DATA/server.log).
Connect:
    runuser -u postgres -- psql -p $PORT
and try:
    SELECT key, ts, convert_from(value, 'UTF8') FROM flowdb.scan(prefix => 'sensor/1', lim => 5, reverse => true, keyspace => 'sensors');
Stop it with:
    runuser -u postgres -- $BINDIR/pg_ctl -D $DATA stop
MSG
