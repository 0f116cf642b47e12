#!/usr/bin/env bash
# timeseries.sh — benchmark Q (../shared/bench/SPEC.md): a flowdb foreign
# table against a heap table with a btree on (key, ts), same data, same run.
#
# Starts a throwaway cluster (as the OS user postgres when run as root) with
# fsync on and synchronous_commit on, a database with LC_COLLATE C, loads
# S x P rows per SPEC Q into both, and prints
#   | row | flowdb | heap | ratio |   (medians of REPS repetitions)
# then min / max per cell, then estimated vs actual rows of the foreign
# table's scan for every timed shape.  Uses the installed extension.
#
# Environment: S (5000) P (200) REPS (3) DURATION (20 s per pgbench run)
#   PORT (55999) BENCH_TMP (/tmp) MEMTABLE_MB (32, the setting's default: the
#   1,000,000-row COPY is one transaction, whose batch the engine writes
#   straight to a table at commit)
set -euo pipefail
cd "$(dirname "$0")"
S=${S:-5000}; P=${P:-200}; REPS=${REPS:-3}; DURATION=${DURATION:-20}
PORT=${PORT:-55999}; MEMTABLE_MB=${MEMTABLE_MB:-32}
BIN=$(pg_config --bindir)
RUN_AS=postgres
WORK=$(mktemp -d "${BENCH_TMP:-/tmp}/flowdb-q.XXXXXX")
chmod 755 "$WORK"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$RUN_AS" -- "$@"; else "$@"; fi; }
cleanup() { as_pg "$BIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
[ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$WORK"

cc -O2 -o "$WORK/ts_gen" ts_gen.c
"$WORK/ts_gen" "$S" "$P" > "$WORK/q.csv"
chmod 644 "$WORK/q.csv"
ROWS=$((S * P))

as_pg "$BIN/initdb" -D "$WORK/data" --locale=C -E UTF8 >/dev/null 2>&1
cat >> "$WORK/data/postgresql.conf" <<CONF
port = $PORT
unix_socket_directories = '$WORK'
listen_addresses = ''
shared_preload_libraries = 'flowdb'
fsync = on
synchronous_commit = on
shared_buffers = 1GB
max_wal_size = 8GB
flowdb.memtable_size_mb = $MEMTABLE_MB
flowdb.block_cache_mb = 256
CONF
as_pg "$BIN/pg_ctl" -D "$WORK/data" -l "$WORK/log" -w start >/dev/null
psql_() { as_pg "$BIN/psql" -X -q -v client_min_messages=warning -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" "$@"; }
psql_ -d postgres -c "CREATE DATABASE q TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"
sq() { PGOPTIONS='-c client_min_messages=warning' psql_ -d q -At -c "$1"; }
sq "CREATE EXTENSION flowdb"

now() { date +%s.%N; }
declare -A R    # R[row,engine] = space-separated values

load() {   # load REP: fresh tables, timed COPY into each (order alternates)
    sq "DROP TABLE IF EXISTS heap_q; CREATE TABLE heap_q (key text, ts bigint, value text);
        CREATE INDEX heap_q_key_ts ON heap_q (key, ts);
        DROP FOREIGN TABLE IF EXISTS fdw_q;
        DELETE FROM flowdb.keyspaces WHERE name = 'fdw_q';
        CREATE FOREIGN TABLE fdw_q (key text, ts bigint, value text) SERVER flowdb;
        CHECKPOINT" >/dev/null
    local order="heap_q fdw_q"; [ $(($1 % 2)) -eq 0 ] && order="fdw_q heap_q"
    for t in $order; do
        local t0 t1
        t0=$(now); sq "COPY $t FROM '$WORK/q.csv' (FORMAT csv)" >/dev/null; t1=$(now)
        local e=heap; [ "$t" = fdw_q ] && e=flowdb
        R[ingest,$e]+="$(echo "$ROWS / ($t1 - $t0)" | bc -l) "
    done
}

pgb() {   # pgb TABLE CLIENTS SCRIPT -> tps
    local f="$WORK/script.sql"
    printf '%s\n' "$3" | sed "s/\bT\b/$1/g" > "$f"
    [ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$f"
    as_pg "$BIN/pgbench" -n -M prepared -h "$WORK" -p "$PORT" -c "$2" -j "$2" -T "$DURATION" \
        --random-seed=42 -f "$f" q 2>/dev/null | sed -nE 's/^tps = ([0-9.]+).*/\1/p'
}

KEY="'sensor.' || lpad(:s::text, 5, '0')"
POINT="\\set s random(0, $((S - 1)))
\\set i random(0, $((P - 1)))
SELECT value FROM T WHERE key = $KEY AND ts = 1700000000 + 10 * :i;"
LATEST="\\set s random(0, $((S - 1)))
SELECT ts, value FROM T WHERE key = $KEY ORDER BY ts DESC LIMIT 1;"
PREFIX="\\set s random(0, $((S - 1)))
SELECT count(*) FROM T WHERE key LIKE $KEY || '%';"
WINDOW="\\set i random(0, $((P - 6)))
SELECT count(*) FROM T WHERE ts BETWEEN 1700000000 + 10 * :i AND 1700000000 + 10 * :i + 59;"
INSERT="\\set s random(0, $((S - 1)))
\\set n random(1, 1000000000)
INSERT INTO T VALUES ($KEY, 1800000000::bigint + :n, 'inserted value');"

for rep in $(seq 1 "$REPS"); do
    echo "rep $rep: load" >&2
    load "$rep"
    sq "VACUUM ANALYZE heap_q" >/dev/null
    sq "ANALYZE fdw_q" >/dev/null
    sq "SELECT flowdb.flush()" >/dev/null
    sq "SELECT flowdb.compact(true)" >/dev/null
    R[storage,heap]+="$(sq "SELECT pg_total_relation_size('heap_q')") "
    R[storage,flowdb]+="$(sq "SELECT value::bigint FROM flowdb.engine_stats WHERE name = 'table_bytes'") "
    for shape in point latest prefix; do
        case $shape in point) s=$POINT;; latest) s=$LATEST;; prefix) s=$PREFIX;; esac
        for c in 1 2; do
            echo "rep $rep: ${shape}_c$c" >&2
            R[${shape}_c$c,flowdb]+="$(pgb fdw_q $c "$s") "
            R[${shape}_c$c,heap]+="$(pgb heap_q $c "$s") "
        done
    done
    echo "rep $rep: window, insert, ceiling" >&2
    R[window,flowdb]+="$(pgb fdw_q 1 "$WINDOW") "
    R[window,heap]+="$(pgb heap_q 1 "$WINDOW") "
    R[insert,flowdb]+="$(pgb fdw_q 1 "$INSERT") "
    R[insert,heap]+="$(pgb heap_q 1 "$INSERT") "
    R[ceiling,heap]+="$(pgb heap_q 1 'SELECT 1;') "
done
R[ceiling_c1,flowdb]=${R[point_c1,flowdb]}
R[ceiling_c1,heap]=${R[ceiling,heap]}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
minmax() { tr ' ' '\n' | grep -v '^$' | sort -g | awk 'NR==1{m=$1} {x=$1} END {printf "%.0f .. %.0f", m, x}'; }
fmt() { awk '{printf "%.0f", $1}'; }

echo "Q: S=$S P=$P ($ROWS rows), $REPS repetitions, pgbench -M prepared -T $DURATION; $(date -u +%F)"
echo
echo "| row | flowdb | heap | ratio |"
echo "|---|---|---|---|"
for row in ingest storage point_c1 point_c2 latest_c1 latest_c2 prefix_c1 prefix_c2 window insert ceiling_c1; do
    f=$(echo "${R[$row,flowdb]}" | median); h=$(echo "${R[$row,heap]}" | median)
    if [ "$row" = storage ]; then ratio=$(echo "$h / $f" | bc -l); else ratio=$(echo "$f / $h" | bc -l); fi
    printf '| %s | %s | %s | %.2f |\n' "$row" "$(echo "$f" | fmt)" "$(echo "$h" | fmt)" "$ratio"
done
echo
echo "| row | flowdb min .. max | heap min .. max |"
echo "|---|---|---|"
for row in ingest storage point_c1 point_c2 latest_c1 latest_c2 prefix_c1 prefix_c2 window insert ceiling_c1; do
    printf '| %s | %s | %s |\n' "$row" "$(echo "${R[$row,flowdb]}" | minmax)" "$(echo "${R[$row,heap]}" | minmax)"
done

# Row estimates of the foreign table's scan vs actual rows, per shape.
echo
echo "| shape | estimated rows | actual rows |"
echo "|---|---|---|"
for q in "point|key = 'sensor.00042' AND ts = 1700000100" \
         "latest|key = 'sensor.00042'" \
         "prefix|key LIKE 'sensor.00042%'" \
         "window|ts BETWEEN 1700000500 AND 1700000559"; do
    name=${q%%|*}; cond=${q#*|}
    line=$(sq "EXPLAIN ANALYZE SELECT * FROM fdw_q WHERE $cond" | grep -m1 'Foreign Scan')
    est=$(sed -nE 's/.*cost=[^ ]+ rows=([0-9]+).*/\1/p' <<<"$line")
    act=$(sed -nE 's/.*actual time=[^ ]+ rows=([0-9]+).*/\1/p' <<<"$line")
    echo "| $name | $est | $act |"
done
