#!/usr/bin/env bash
# Every benchmark, one command: bench/run-all.sh
#
# Runs bench/sidecar.sh, bench/operator.sh and bench/shared-session.sh (the
# last on its own control plane), one after the other so they do not compete
# for the cores, and writes each one's output to a file. The figures go into
# BENCHMARKS.md by hand, each section beside the command that produced it.
# Not part of the test suite; loopback only.
#
# Environment:
#   BENCH_QUICK=1  a short run of each (100 credentials, 3 s wrk runs): checks that
#                  the benchmarks work; its figures are not for BENCHMARKS.md
#   BENCH_OUT      output directory (default target/bench/<UTC time>)
# Each script's own variables (BENCH_DURATION, BENCH_OPERATOR_COUNTS, ...)
# are passed through and win over the quick mode's.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${BENCH_OUT:-target/bench/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  export BENCH_DURATION=${BENCH_DURATION:-3s}
  export BENCH_TOTAL=${BENCH_TOTAL:-100000}
  export BENCH_OPERATOR_COUNTS=${BENCH_OPERATOR_COUNTS:-100}
  export BENCH_TOTP_PERIOD=${BENCH_TOTP_PERIOD:-5}
fi

run() { # name command...
  local name=$1; shift
  echo "== $name → $OUT/$name.txt"
  local started=$SECONDS
  if "$@" 2>&1 | tee "$OUT/$name.txt"; then
    echo "== $name done in $((SECONDS - started)) s"
  else
    echo "== $name FAILED after $((SECONDS - started)) s (see $OUT/$name.txt)"
    FAILED+=("$name")
  fi
}

shared_session() {
  export OTPILOT_CP_DIR=$ROOT/.otpilot/bench-shared-cp
  scripts/control-plane.sh down >/dev/null 2>&1 || true
  eval "$(scripts/control-plane.sh up)"
  local status=0
  bench/shared-session.sh || status=$?
  scripts/control-plane.sh down >/dev/null 2>&1 || true
  return "$status"
}

FAILED=()
run sidecar bench/sidecar.sh
run operator bench/operator.sh
run shared-session shared_session

echo
echo "Figures: $OUT/{sidecar,operator,shared-session}.txt"
echo "They go into BENCHMARKS.md (sections: Sidecar, Operator at scale, Shared session),"
echo "with the date, the machine line each file starts with, and the baselines beside them."
[ "${#FAILED[@]}" -eq 0 ] || { echo "failed: ${FAILED[*]}" >&2; exit 1; }
