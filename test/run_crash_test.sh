#!/usr/bin/env bash
# run_crash_test.sh — the TAP tests in test/t (crash recovery, loading rules,
# patch concurrency) with PostgreSQL::Test::Cluster, run by prove.
#
# Uses the installed flowdb (`make install` first).  As root the tests run as
# the OS user `postgres` in a scratch directory it owns.  Prints
# "tap: N passed, N failed" (TAP assertions) and exits non-zero on failure.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
PG_CONFIG=${PG_CONFIG:-pg_config}
BINDIR=$("$PG_CONFIG" --bindir)
PGXS_DIR=$(dirname "$("$PG_CONFIG" --pgxs)")/..
RUN_AS=${FLOWDB_TEST_USER:-postgres}

WORK=$(mktemp -d /tmp/flowdb-tap.XXXXXX)
cp -r "$ROOT/test/t" "$WORK/"
run() {
    if [ "$(id -u)" -eq 0 ]; then
        chown -R "$RUN_AS" "$WORK"
        runuser -u "$RUN_AS" -- "$@"
    else
        "$@"
    fi
}

cd "$WORK"
run env PATH="$BINDIR:$PATH" PG_REGRESS="$PGXS_DIR/test/regress/pg_regress" \
    TESTDIR="$WORK" PG_TEST_NOCLEAN=1 \
    prove -v --ext=.pl -I "$PGXS_DIR/test/perl" ${*:-t/} 2>&1 | tee "$WORK/prove.out"
rc=${PIPESTATUS[0]}

passed=$(grep -cE '^ok [0-9]+' "$WORK/prove.out")
failed=$(grep -cE '^not ok [0-9]+' "$WORK/prove.out")
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then echo "tap: no tests ran"; failed=1; fi
echo "tap: $passed passed, $failed failed"
if [ "$failed" -eq 0 ]; then
    rm -rf "$WORK"
else
    echo "tap: logs kept in $WORK/tmp_check/log"
fi
[ "$failed" -eq 0 ]
