#!/usr/bin/env bash
# run_regress.sh TEST... — the pg_regress suites against a temporary instance
# (with FLOWDB_SUITE=isolation: the pg_isolation_regress specs in specs/,
# which is what run_isolation.sh runs).
#
# Runs the installed flowdb (do `make install` first) in a temporary cluster
# started by pg_regress with shared_preload_libraries = 'flowdb'.  Postgres
# refuses to run as root, so as root everything runs as the OS user
# `postgres` in a scratch directory it owns.  Afterwards the server log is
# checked for crashes, assertion failures and leak warnings; any of them
# fails the run.  Prints "<suite>: N passed, N failed" and exits non-zero on
# failure.  The scratch directory is kept when something failed.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
PG_CONFIG=${PG_CONFIG:-pg_config}
BINDIR=$("$PG_CONFIG" --bindir)
PGXS_TEST="$(dirname "$("$PG_CONFIG" --pgxs)")/../test"
RUN_AS=${FLOWDB_TEST_USER:-postgres}
SUITE=${FLOWDB_SUITE:-regress}
case "$SUITE" in
    regress)   RUNNER="$PGXS_TEST/regress/pg_regress"; INPUTS=sql; DBNAME=contrib_regression ;;
    isolation) RUNNER="$PGXS_TEST/isolation/pg_isolation_regress"; INPUTS=specs; DBNAME=isolation_regression ;;
    *) echo "run_regress.sh: unknown FLOWDB_SUITE '$SUITE'" >&2; exit 2 ;;
esac

WORK=$(mktemp -d "/tmp/flowdb-$SUITE.XXXXXX")
cp -r "$ROOT/$INPUTS" "$ROOT/expected" "$WORK/"
mkdir -p "$WORK/serverlog"
cat > "$WORK/regress.conf" <<CONF
shared_preload_libraries = 'flowdb'
max_prepared_transactions = 2
logging_collector = on
log_directory = '$WORK/serverlog'
log_filename = 'postgresql.log'
log_min_messages = warning
flowdb.memtable_size_mb = 17
flowdb.block_cache_mb = 8
flowdb.index_memory_mb = 4
CONF

as_user() {
    if [ "$(id -u)" -eq 0 ]; then
        chown -R "$RUN_AS" "$WORK"
        runuser -u "$RUN_AS" -- "$@"
    else
        "$@"
    fi
}

cd "$WORK"
as_user "$RUNNER" --bindir="$BINDIR" --temp-instance="$WORK/tmp_check" \
    --temp-config="$WORK/regress.conf" --inputdir="$WORK" --outputdir="$WORK" \
    --dbname="$DBNAME" "$@" 2>&1 | tee "$WORK/pg_regress.out"
rc=${PIPESTATUS[0]}

passed=$(grep -cE '^(test| )? *[a-z_0-9]+ +\.\.\. ok' "$WORK/pg_regress.out")
failed=$(grep -cE '\.\.\. FAILED' "$WORK/pg_regress.out")
[ -f "$WORK/regression.diffs" ] && cat "$WORK/regression.diffs"
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi

# The server log of the run: no crash, no assertion failure, no leak warning.
logcheck_pattern='terminated by signal|TRAP:|server process .* was terminated|PANIC|leak|was not closed|still referenced'
if grep -hE "$logcheck_pattern" "$WORK"/serverlog/* "$WORK"/tmp_check/log/* 2>/dev/null; then
    echo "$SUITE: server log check FAILED (lines above)"
    failed=$((failed + 1))
else
    echo "$SUITE: server log check ok"
    passed=$((passed + 1))
fi

echo "$SUITE: $passed passed, $failed failed"
if [ "$failed" -eq 0 ]; then
    rm -rf "$WORK"
else
    echo "$SUITE: output kept in $WORK"
fi
[ "$failed" -eq 0 ]
