#!/usr/bin/env bash
# Build, once, promtool (Prometheus' rule checker and rule unit-test runner)
# from the Go module proxy, and cache it outside the repo, like
# scripts/build-control-plane.sh. A warm cache answers in well under a second;
# a build that fails fails the caller (scripts/chart-check.sh), never skips.
#
#   scripts/build-promtool.sh        # prints the path of the promtool binary
#
# Output: $OTPILOT_CACHE/bin-promtool-<version>/promtool. Nothing built here is
# ever committed.
set -euo pipefail

# github.com/prometheus/prometheus v0.316.0 is Prometheus 3.16.0.
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0}
CACHE=${OTPILOT_CACHE:-$HOME/.cache/otpilot}
OUT=$CACHE/bin-promtool-$PROMETHEUS_VERSION

if [ -x "$OUT/promtool" ]; then echo "$OUT/promtool"; exit 0; fi

command -v go >/dev/null || { echo "error: Go (>= 1.26) is required to build promtool" >&2; exit 1; }
export GOTOOLCHAIN=local GOFLAGS=-modcacherw CGO_ENABLED=0
step() { printf '[build-promtool %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

mkdir -p "$CACHE"
STAGE=$OUT.partial
rm -rf "$STAGE"; mkdir -p "$STAGE"
start=$(date +%s)
step "building promtool $PROMETHEUS_VERSION"
GOBIN=$STAGE go install -trimpath -ldflags "-s -w" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
"$STAGE/promtool" --version >/dev/null
rm -rf "$OUT"
mv "$STAGE" "$OUT"
step "done in $(( $(date +%s) - start ))s: $OUT/promtool"
echo "$OUT/promtool"
