#!/usr/bin/env bash
# run_isolation.sh SPEC... — the pg_isolation_regress suites (specs/) against a
# temporary instance, set up and checked exactly like the pg_regress suites:
# run_regress.sh does both.  Prints "isolation: N passed, N failed".
exec env FLOWDB_SUITE=isolation "$(dirname "$0")/run_regress.sh" "$@"
