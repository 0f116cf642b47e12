#!/usr/bin/env bash
# documents.sh — benchmark J (../shared/bench/SPEC.md): JsonDB vs jsonb + indexes.
#
# Starts a throwaway cluster (OS user postgres; fsync on, synchronous_commit
# on, flowdb.wal_sync_mode = always, shared_buffers and flowdb.block_cache_mb
# both 256MB), loads the same 100,000 documents into a
# JsonDB store and a jsonb table with the SPEC's indexes, then times each row
# with pgbench (-M prepared, DURATION seconds, REPS repetitions, the two
# sides alternating), and prints the medians and min/max.  Needs
# `make install` first.
#
# Both sides must hold the same documents for every read row (SPEC: "on the
# same data").  The put and batch rows insert new documents, so they run a
# fixed number of transactions (PUT_TXNS, BATCH_TXNS; about DURATION seconds
# each) with the same pgbench --random-seed on both sides: each side inserts
# exactly the same ids, and a faster side does not grow its data set (and
# with it the ~333-document composite result) more than the other.  The
# run checks at the end that both sides still hold the same documents.
# Rows:
#   put        single-document upsert, autocommit, 1 client          docs/s
#   batch      100 documents per transaction (one statement)         docs/s
#   get_c1/c2  by primary key, 1 / 2 clients                          gets/s
#   unique     equality on email                                     lookups/s
#   composite  equality on city + age, returns ~333 documents        lookups/s
#   range      age BETWEEN 30 AND 32, LIMIT 100 documents             queries/s
#   multi      documents whose tags contain one tag, LIMIT 100       queries/s
#   autoinc    insert with a generated key, autocommit, 1 client     docs/s
#              (JsonDB store with auto_increment / bigserial table, no
#              secondary indexes on either side)
set -euo pipefail
DURATION=${DURATION:-5}
REPS=${REPS:-3}
PUT_TXNS=${PUT_TXNS:-$((DURATION * 1500))}
BATCH_TXNS=${BATCH_TXNS:-$((DURATION * 200))}
PORT=${BENCH_PORT:-5497}
N=${BENCH_DOCS:-100000}
BIN=$(pg_config --bindir)
WORK=$(mktemp -d /tmp/flowdb-bench-j.XXXXXX)
chown postgres "$WORK"
as_pg() { runuser -u postgres -- "$@"; }
cleanup() { as_pg "$BIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

as_pg "$BIN/initdb" -D "$WORK/data" -A trust >/dev/null
cat >> "$WORK/data/postgresql.conf" <<CONF
port = $PORT
unix_socket_directories = '$WORK'
shared_preload_libraries = 'flowdb'
shared_buffers = 256MB
# the engine's read cache gets the same budget as the jsonb side's buffer
# pool (the default is 64 MB): after the put/batch rows the documents no
# longer fit a 64 MB cache and every row after them reads blocks again
flowdb.block_cache_mb = 256
fsync = on
synchronous_commit = on
flowdb.wal_sync_mode = always
max_connections = 20
CONF
as_pg "$BIN/pg_ctl" -D "$WORK/data" -l "$WORK/log" -w start >/dev/null
PSQL=(runuser -u postgres -- "$BIN/psql" -h "$WORK" -p "$PORT" -X -q -v ON_ERROR_STOP=1 -d postgres)

"${PSQL[@]}" <<SQL
CREATE EXTENSION flowdb;
-- the document of id i (SPEC J).  STABLE, which is what its body is
-- (jsonb_build_object and text || bigint are stable): declared IMMUTABLE,
-- Postgres cannot inline it and re-plans its body on every call (~250 us,
-- as much as a whole durable put), a cost both sides paid on top of what
-- the put, batch and autoinc rows are meant to time.
CREATE FUNCTION doc(i bigint) RETURNS jsonb LANGUAGE sql STABLE AS \$\$
  SELECT jsonb_build_object('id', i, 'email', 'user' || i || '@example.com', 'age', 18 + i % 60,
    'name', 'User ' || i,
    'address', jsonb_build_object('city', 'city' || (i % 50), 'zip', lpad((i * 7919 % 100000)::text, 5, '0')),
    'tags', jsonb_build_array('tag' || (i % 20), 'tag' || ((i * 7 + 3) % 20), 'tag' || ((i * 13 + 5) % 20)),
    'bio', 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ' || i)
\$\$;
CREATE TABLE users (id bigint PRIMARY KEY, doc jsonb);
CREATE UNIQUE INDEX ON users ((doc ->> 'email'));
CREATE INDEX ON users (((doc ->> 'age')::int));
CREATE INDEX ON users ((doc -> 'address' ->> 'city'), ((doc ->> 'age')::int));
CREATE INDEX ON users USING gin (doc jsonb_path_ops);
CREATE TABLE events (id bigserial PRIMARY KEY, doc jsonb);
SELECT jsondb.create_store('users', 'id');
SELECT jsondb.create_index('users', 'email', ARRAY['email'], true);
SELECT jsondb.create_index('users', 'age', ARRAY['age']);
SELECT jsondb.create_index('users', 'city_age', ARRAY['address.city', 'age']);
SELECT jsondb.create_index('users', 'tags', ARRAY['tags'], false, true);
SELECT jsondb.create_store('events', 'id', true);
SQL
for ((b = 0; b < N; b += 10000)); do
  "${PSQL[@]}" -c "INSERT INTO users SELECT i, doc(i) FROM generate_series($b, $((b + 9999))) i" \
               -c "SELECT count(jsondb.put('users', doc(i))) FROM generate_series($b, $((b + 9999))) i" >/dev/null
done
"${PSQL[@]}" -c "VACUUM ANALYZE users" -c "SELECT flowdb.flush()" >/dev/null
# both sides hold the same documents
"${PSQL[@]}" -At -c "SELECT (SELECT count(*) FROM users) = jsondb.count('users')
    AND (SELECT count(*) FROM jsondb.range_by_index('users', 'city_age', '[\"city7\", 25]', '[\"city7\", 25]'))
      = (SELECT count(*) FROM users WHERE doc->'address'->>'city' = 'city7' AND (doc->>'age')::int = 25)" \
  | grep -qx t || { echo "documents differ between the two sides" >&2; exit 1; }

mkdir -p "$WORK/scripts"
script() { printf '%s\n' "$2" > "$WORK/scripts/$1.sql"; }
script put_jsondb     '\set i random(1000000, 100000000)
SELECT jsondb.put('"'users'"', doc(:i));'
script put_jsonb      '\set i random(1000000, 100000000)
INSERT INTO users VALUES (:i, doc(:i)) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc;'
script batch_jsondb   '\set b random(2000000, 90000000) * 100
SELECT count(jsondb.put('"'users'"', doc(i))) FROM generate_series(:b::bigint, :b::bigint + 99) i;'
script batch_jsonb    '\set b random(2000000, 90000000) * 100
INSERT INTO users SELECT i, doc(i) FROM generate_series(:b::bigint, :b::bigint + 99) i ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc;'
script get_jsondb     '\set i random(0, '"$((N - 1))"')
SELECT jsondb.get('"'users'"', to_jsonb(:i::bigint));'
script get_jsonb      '\set i random(0, '"$((N - 1))"')
SELECT doc FROM users WHERE id = :i;'
script unique_jsondb  '\set i random(0, '"$((N - 1))"')
SELECT jsondb.get_by_index('"'users'"', '"'email'"', to_jsonb('"'user'"' || :i || '"'@example.com'"'));'
script unique_jsonb   '\set i random(0, '"$((N - 1))"')
SELECT doc FROM users WHERE doc ->> '"'email'"' = '"'user'"' || :i || '"'@example.com'"';'
script composite_jsondb '\set i random(0, 299)
SELECT doc FROM jsondb.range_by_index('"'users'"', '"'city_age'"', jsonb_build_array('"'city'"' || :i % 50, 18 + :i % 60), jsonb_build_array('"'city'"' || :i % 50, 18 + :i % 60));'
script composite_jsonb  '\set i random(0, 299)
SELECT doc FROM users WHERE doc -> '"'address'"' ->> '"'city'"' = '"'city'"' || :i % 50 AND (doc ->> '"'age'"')::int = 18 + :i % 60;'
script range_jsondb   'SELECT doc FROM jsondb.range_by_index('"'users'"', '"'age'"', '"'30'"', '"'32'"', count => 100);'
script range_jsonb    'SELECT doc FROM users WHERE (doc ->> '"'age'"')::int BETWEEN 30 AND 32 LIMIT 100;'
script multi_jsondb   '\set t random(0, 19)
SELECT doc FROM jsondb.range_by_index('"'users'"', '"'tags'"', to_jsonb('"'tag'"' || :t), to_jsonb('"'tag'"' || :t), count => 100);'
script multi_jsonb    '\set t random(0, 19)
SELECT doc FROM users WHERE doc @> jsonb_build_object('"'tags'"', jsonb_build_array('"'tag'"' || :t)) LIMIT 100;'
script autoinc_jsondb '\set i random(0, 1000000)
SELECT jsondb.put('"'events'"', doc(:i) - '"'id'"');'
script autoinc_jsonb  '\set i random(0, 1000000)
INSERT INTO events (doc) VALUES (doc(:i) - '"'id'"');'
chown -R postgres "$WORK/scripts"

# run NAME SIDE CLIENTS REP -> tps.  The rows that insert into users run a
# fixed number of transactions with a seed that depends only on the
# repetition, so both sides insert the same documents.
run() {
  local len=(-T "$DURATION")
  case $1 in
    put)   len=(-t "$PUT_TXNS" --random-seed="$4") ;;
    batch) len=(-t "$BATCH_TXNS" --random-seed="$4") ;;
  esac
  as_pg "$BIN/pgbench" -h "$WORK" -p "$PORT" -n -M prepared -c "$3" -j "$3" "${len[@]}" \
        -f "$WORK/scripts/$1_$2.sql" postgres 2>&1 | sed -nE 's/^tps = ([0-9.]+) .*/\1/p'
}
RES="$WORK/results"
: > "$RES"
for ((r = 1; r <= REPS; r++)); do
  for row in put batch get_c1 get_c2 unique composite range multi autoinc; do
    case $row in get_c1) s=get; c=1;; get_c2) s=get; c=2;; *) s=$row; c=1;; esac
    mult=1; [ "$row" = batch ] && mult=100
    for side in jsondb jsonb; do
      tps=$(run "$s" "$side" "$c" "$r")
      [ -n "$tps" ] || { echo "pgbench failed for $row/$side" >&2; exit 1; }
      echo "$row $side $(awk -v t="$tps" -v m="$mult" 'BEGIN{printf "%.0f", t*m}')" >> "$RES"
    done
  done
done

# the write rows left both sides with the same documents
"${PSQL[@]}" -At -c "SELECT (SELECT count(*) FROM users) = jsondb.count('users')
    AND (SELECT count(*) FROM jsondb.range_by_index('users', 'city_age', '[\"city7\", 25]', '[\"city7\", 25]'))
      = (SELECT count(*) FROM users WHERE doc->'address'->>'city' = 'city7' AND (doc->>'age')::int = 25)" \
  | grep -qx t || { echo "documents differ between the two sides after the run" >&2; exit 1; }

python3 - "$RES" <<'PY'
import sys, statistics
rows = ["put", "batch", "get_c1", "get_c2", "unique", "composite", "range", "multi", "autoinc"]
v = {}
for line in open(sys.argv[1]):
    r, side, x = line.split()
    v.setdefault((r, side), []).append(float(x))
print("| row | jsondb | jsonb | ratio |")
print("|---|---:|---:|---:|")
for r in rows:
    a, b = statistics.median(v[(r, "jsondb")]), statistics.median(v[(r, "jsonb")])
    print(f"| {r} | {a:,.0f} | {b:,.0f} | {a / b:.2f}x |")
print()
print("| row | jsondb min | jsondb max | jsonb min | jsonb max |")
print("|---|---:|---:|---:|---:|")
for r in rows:
    a, b = v[(r, "jsondb")], v[(r, "jsonb")]
    print(f"| {r} | {min(a):,.0f} | {max(a):,.0f} | {min(b):,.0f} | {max(b):,.0f} |")
PY
