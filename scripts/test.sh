#!/usr/bin/env bash
# test.sh — every FlowDB test, as root on Debian 12 (installs what it needs):
#   engine tests, the same under ASan/UBSan, the fuzzers briefly, the
#   pg_regress suites, the pg_isolation_regress suites and the TAP tests
#   (crash recovery and friends).
# Ends with one line "N passed, N failed" summed over all of them; exits
# non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=$(mktemp -d /tmp/flowdb-test.XXXXXX)
total_passed=0
total_failed=0

count() {  # count NAME PASSED FAILED
    echo ">>> $1: $2 passed, $3 failed"
    total_passed=$((total_passed + $2))
    total_failed=$((total_failed + $3))
}

# Runs a step whose output ends with "... N passed, N failed".
counted_step() {  # counted_step NAME COMMAND...
    local name=$1; shift
    echo ">>> $name: $*"
    "$@" 2>&1 | tee "$LOG/$name.out"
    local rc=${PIPESTATUS[0]}
    local line p f
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$LOG/$name.out" | tail -1)
    p=$(sed -nE 's/.*\b([0-9]+) passed, ([0-9]+) failed.*/\1/p' <<<"$line")
    f=$(sed -nE 's/.*\b([0-9]+) passed, ([0-9]+) failed.*/\2/p' <<<"$line")
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # e.g. did not build
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; fi    # nothing ran
    count "$name" "$p" "$f"
}

fuzz_step() {
    echo ">>> fuzz: make -C lsm fuzz FUZZ_SECONDS=15"
    make -C lsm fuzz FUZZ_SECONDS=15 2>&1 | tee "$LOG/fuzz.out"
    local rc=${PIPESTATUS[0]}
    # one section per fuzzer: "== build/fuzz_x (15s)" then its last lines;
    # it passed if libFuzzer finished ("Done N runs") without a report
    local verdicts p f
    verdicts=$(awk '/^== /{if (s) print v; s=1; v="fail"; bad=0; next}
                    /ERROR:|deadly signal|Test unit written|SUMMARY:/{bad=1; v="fail"}
                    /Done [0-9]+ runs/{if (!bad) v="pass"}
                    END{if (s) print v}' "$LOG/fuzz.out")
    p=$(grep -c pass <<<"$verdicts")
    f=$(grep -c fail <<<"$verdicts")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    count fuzz "$p" "$f"
}

build_step() {
    echo ">>> build: make && make install"
    if { make -j"$(nproc)" && make install; } >"$LOG/build.out" 2>&1; then
        count build 1 0
    else
        tail -30 "$LOG/build.out"
        count build 0 1
    fi
}

if [ "$(id -u)" -eq 0 ]; then
    ./scripts/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
fi

counted_step engine   make -C lsm check
counted_step asan     make -C lsm asan
fuzz_step
build_step
counted_step regress  make installcheck
counted_step isolation make isolationcheck   # jsondb (issue 6): pg_isolation_regress
counted_step tap      ./test/run_crash_test.sh

echo "logs: $LOG"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
