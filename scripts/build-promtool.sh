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

# The Go module github.com/prometheus/prometheus v0.316.0 is Prometheus 3.16.0.
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0}
PROMETHEUS_RELEASE=${PROMETHEUS_RELEASE:-3.16.0}
CACHE=${OTPILOT_CACHE:-$HOME/.cache/otpilot}
# remove_all_sd: without Prometheus' service-discovery providers (cloud SDKs,
# client-go), which rule checks never use: a fraction of the download and build.
TAGS=remove_all_sd
OUT=$CACHE/bin-promtool-$PROMETHEUS_VERSION-$TAGS

if [ -x "$OUT/promtool" ]; then echo "$OUT/promtool"; exit 0; fi

command -v go >/dev/null || { echo "error: Go (>= 1.26) is required to build promtool" >&2; exit 1; }
export GOTOOLCHAIN=local GOFLAGS=-modcacherw CGO_ENABLED=0
step() { printf '[build-promtool %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

mkdir -p "$CACHE"
STAGE=$OUT.partial
rm -rf "$STAGE"; mkdir -p "$STAGE"
start=$(date +%s)
step "building promtool $PROMETHEUS_RELEASE ($PROMETHEUS_VERSION, tags $TAGS)"
GOBIN=$STAGE go install -trimpath -tags "$TAGS" \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_RELEASE" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
"$STAGE/promtool" --version >/dev/null
rm -rf "$OUT"
mv "$STAGE" "$OUT"
step "done in $(( $(date +%s) - start ))s: $OUT/promtool"
echo "$OUT/promtool"
