#!/usr/bin/env bash
# The sidecar soak, long: sidecar/tests/soak.rs for MINUTES (default 30)
# against the simulator, faults from a seeded plan.
#
#   scripts/soak.sh [minutes]                  # a new seed, printed
#   OTPILOT_SOAK_SEED=1234 scripts/soak.sh 30  # the same plan again
#
# The normal suite runs the same test for 2 minutes. No control plane needed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
minutes=${1:-30}
case "$minutes" in
  ''|*[!0-9]*) echo "usage: $0 [minutes]" >&2; exit 2 ;;
esac
export OTPILOT_SOAK_SECONDS=$(( minutes * 60 ))
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
# The soak profile lifts nextest's time limit (.config/nextest.toml).
exec cargo nextest run -p otpilot-sidecar --test soak --profile soak --no-capture
