#!/usr/bin/env bash
# Package the cargo-built operator and sidecar (and a busybox app image for test workloads) as
# OCI archives and import them into the running node's containerd. No registry, no Docker:
# the Dockerfiles stay what users build; these images hold the same binaries at the same paths.
#
#   scripts/node/images.sh [PROFILE_DIR]     # default $CARGO_TARGET_DIR/debug, else target/debug
#
# Images: localhost/otpilot/operator:dev, localhost/otpilot/sidecar:dev (the chart's
# sidecar.binaryPath, /usr/local/bin/otpilot-sidecar), localhost/otpilot/app:dev (busybox).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${1:-${CARGO_TARGET_DIR:-$ROOT/target}/debug}
DIR=${OTPILOT_NODE_DIR:-$ROOT/.otpilot/node}
out=$DIR/images
mkdir -p "$out"
for b in otpilot-operator otpilot-sidecar; do
  [ -x "$BIN/$b" ] || { echo "error: $BIN/$b missing (cargo build -p $b)" >&2; exit 1; }
done
t0=$(date +%s)
# The binaries verify vendors with the platform's roots unless a CA is configured.
export EXTRA=/etc/ssl/certs/ca-certificates.crt
"$ROOT/scripts/node/image.sh" localhost/otpilot/operator:dev "$out/operator.tar" \
  "$BIN/otpilot-operator=/usr/local/bin/otpilot-operator"
"$ROOT/scripts/node/image.sh" localhost/otpilot/sidecar:dev "$out/sidecar.tar" \
  "$BIN/otpilot-sidecar=/usr/local/bin/otpilot-sidecar"
EXTRA="" BUSYBOX=1 "$ROOT/scripts/node/image.sh" localhost/otpilot/app:dev "$out/app.tar"
"$ROOT/scripts/node.sh" load "$out/operator.tar" "$out/sidecar.tar" "$out/app.tar"
echo "[node-images] built and imported in $(( $(date +%s) - t0 ))s" >&2
