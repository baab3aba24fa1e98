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
"$ROOT/scripts/node.sh" load "$images/operator.tar" "$images/sidecar.tar" "$DIR/images/app.tar"
echo "[node-images] imported in $(( $(date +%s) - t0 ))s" >&2
