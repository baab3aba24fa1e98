#!/usr/bin/env bash
# Shared-session benchmark, one command: bench/shared-session.sh
#
# Time from starting N sidecar processes at once to all of them ready, for
# N = 1, 5, 20, with the shared session (one Lease holder logs in, the others
# follow through the API server) and standalone (each logs in itself), in the
# same run, against a simulator that accepts each TOTP code once.
#
# Needs the test control plane: eval "$(scripts/control-plane.sh up)".
# Environment: BENCH_TOTP_PERIOD (default 30) the vendor's TOTP period in
# seconds; standalone N replicas need about N periods, so the default run
# takes about 15 minutes (5 s: about 3 minutes, same shape).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${OTPILOT_TEST_KUBECONFIG:-}" ] || {
  echo "bench/shared-session.sh: start the control plane first: eval \"\$(scripts/control-plane.sh up)\"" >&2
  exit 1
}
echo "## machine: $(nproc) cores, $(uname -r)"
cargo test -q -p otpilot-sidecar --features bench --test bench_shared_session -- --nocapture time_to_all_ready \
  2>&1 | grep -E '^(\||TOTP)'
