#!/usr/bin/env bash
# Import the images into the running node's containerd (no registry, no Docker): the shipped
# operator and sidecar images that scripts/images.sh built from the release binaries
# (localhost/otpilot/{operator,sidecar}:dev inside their archives), and a busybox app image
# (localhost/otpilot/app:dev) for the tests' workloads.
#
#   scripts/node/images.sh              # the archives in ${CARGO_TARGET_DIR:-target}/images
#   scripts/node/images.sh BIN_DIR      # package BIN_DIR's binaries first, with scripts/images.sh
#                                       # (scripts/run-local.sh: target/debug, a quicker build)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR=${OTPILOT_NODE_DIR:-$ROOT/.otpilot/node}
images=${CARGO_TARGET_DIR:-$ROOT/target}/images
t0=$(date +%s)
if [ $# -gt 0 ]; then
  images=$DIR/images
  OUT=$images "$ROOT/scripts/images.sh" --bin "$1"
fi
for c in operator sidecar; do
  [ -f "$images/$c.tar" ] || { echo "error: $images/$c.tar missing (scripts/images.sh)" >&2; exit 1; }
done
mkdir -p "$DIR/images"
BUSYBOX=1 "$ROOT/scripts/node/image.sh" localhost/otpilot/app:dev "$DIR/images/app.tar" 2>/dev/null
archives=("$images/operator.tar" "$images/sidecar.tar" "$DIR/images/app.tar")
# The debug sidecar, for the one case that needs its failpoint (tests/tests/node_support/health.rs);
# scripts/node-e2e.sh builds it.
debug_sidecar=${CARGO_TARGET_DIR:-$ROOT/target}/debug/otpilot-sidecar
if [ -x "$debug_sidecar" ]; then
  EXTRA=/etc/ssl/certs/ca-certificates.crt IMAGE_USER=65532:65532 \
    "$ROOT/scripts/node/image.sh" localhost/otpilot/sidecar-failpoints:dev \
    "$DIR/images/sidecar-failpoints.tar" "$debug_sidecar=/usr/local/bin/otpilot-sidecar" 2>/dev/null
  archives+=("$DIR/images/sidecar-failpoints.tar")
fi
"$ROOT/scripts/node.sh" load "${archives[@]}"
echo "[node-images] imported in $(( $(date +%s) - t0 ))s" >&2
