#!/usr/bin/env bash
# The end-to-end phase on a real node, as scripts/test.sh runs it (also usable alone):
#   the shipped images (scripts/images.sh --check: release binaries, reproducible, pushed to and
#   pulled from a loopback registry) -> snapshot the host -> scripts/node.sh up -> those images
#   imported -> the node_e2e tests
#   -> scripts/node.sh down -> the host must match the snapshot.
# Needs root. Fails, never skips, when the node cannot start. On failure the node's logs
# (kubelet, containerd, API server...) are kept in $OTPILOT_NODE_DIR.
# Arguments go to nextest, e.g. to run some of the cases: scripts/node-e2e.sh -E 'test(seed)'.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The script's arguments go to nextest (e.g. -E 'test(seed)').
run_e2e_tests() {
  cargo nextest run --locked -p otpilot-tests --features node-e2e --test node_e2e --no-fail-fast "$@"
}
# Another cluster instead of the local node (kind in .github/workflows/e2e-kind.yml): with
# OTPILOT_E2E_EXTERNAL=1, only the tests run, against OTPILOT_NODE_KUBECONFIG; the images must be
# loaded there and OTPILOT_NODE_HOST_ADDRESS set (tests/src/node.rs lists the variables).
if [ "${OTPILOT_E2E_EXTERNAL:-0}" = 1 ]; then
  : "${OTPILOT_NODE_KUBECONFIG:?OTPILOT_E2E_EXTERNAL=1 needs the kubeconfig of the cluster}"
  export OTPILOT_NODE_KUBECONFIG
  cd "$ROOT"
  run_e2e_tests "$@"
  exit
fi
# The images users ship, not debug builds: every test below runs the release artefact.
# Built and checked before taking the host-wide node lock: the release build takes minutes
# and needs no node, so another run can use the node meanwhile.
if [ -z "${OTPILOT_IMAGES_BUILT:-}" ]; then
  "$ROOT/scripts/images.sh" --check
  # One case kills a sidecar task through a failpoint, which only debug builds have: it
  # runs a debug build of the same source (scripts/node/images.sh makes
  # localhost/otpilot/sidecar-failpoints:dev of it); every other case, the release image.
  (cd "$ROOT" && cargo build --quiet --locked -p otpilot-sidecar)
  export OTPILOT_IMAGES_BUILT=1
fi
# shellcheck source=lib/node-lock.sh
. "$ROOT/scripts/lib/node-lock.sh"
node_lock_reexec "$ROOT/scripts/node-e2e.sh" "$@"
cd "$ROOT"
export OTPILOT_NODE_DIR=${OTPILOT_NODE_DIR:-$ROOT/.otpilot/node}
SNAPSHOT=${OTPILOT_NODE_DIR%/}.host-before
mkdir -p "$(dirname "$SNAPSHOT")"
say() { printf '[node-e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

scripts/install-node-packages.sh
scripts/build-node.sh >/dev/null
# A node left over from an interrupted run would be part of the "before" picture.
scripts/node.sh down >/dev/null 2>&1 || true
scripts/node.sh snapshot "$SNAPSHOT"

finish() {
  status=$?
  if [ "$status" -ne 0 ]; then
    OTPILOT_KEEP_LOGS=1 scripts/node.sh down || true
    say "FAILED (exit $status); node logs kept in $OTPILOT_NODE_DIR"
  else
    scripts/node.sh down || status=$?
  fi
  # After down, whatever happened: the host as it was.
  scripts/node.sh check-clean "$SNAPSHOT" || status=1
  rm -f "$SNAPSHOT"
  exit "$status"
}
trap finish EXIT

started=$(date +%s)
node_env=$(scripts/node.sh up)
eval "$node_env"
export OTPILOT_NODE_KUBECONFIG
say "node up in $(( $(date +%s) - started ))s"
scripts/node/images.sh
run_e2e_tests "$@"
say "end-to-end tests passed in $(( $(date +%s) - started ))s"
