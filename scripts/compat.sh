#!/usr/bin/env bash
# The compatibility phase: the oldest Kubernetes the docs claim, built from the Go module proxy
# like the current one (scripts/build-control-plane.sh and scripts/build-node.sh with
# K8S_VERSION; cached in ~/.cache/otpilot), and the tests that prove the claim on it:
#
#   1. its own control plane (scripts/control-plane.sh, own state dir, free ports): the API server
#      is exactly that release; the generated CRDs install and their CEL rules refuse what
#      they must (the CRD validation table); the operator, as the process users run, takes a
#      credential and a ClientCA-issued certificate to Ready; the webhook, called by that API
#      server through its matchConditions, injects the native sidecar.
#   2. its own kubelet (scripts/node-e2e.sh with K8S_VERSION: the node's host-wide lock, then
#      node up, the chart, the images, down, host as before): an injected Pod whose native
#      sidecar gets its token before the app starts, and a Job with the sidecar completing.
#
#   scripts/compat.sh                 # as scripts/test.sh runs it (after the node phase)
#
# The README's "Kubernetes versions" table lists what runs where; keep it in step.
# Fails, never skips. Logs of a failed run stay in .otpilot/compat-control-plane and
# .otpilot/compat-node.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# The oldest release the docs claim (README "Kubernetes versions", Chart.yaml kubeVersion):
# the last 1.29 patch (the Go module proxy serves every module it needs; v1.29.6 lacks some).
COMPAT_K8S_VERSION=${COMPAT_K8S_VERSION:-v1.29.15}
say() { printf '[compat %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
started=$(date +%s)

say "Kubernetes $COMPAT_K8S_VERSION: control plane, kubelet and kube-scheduler (cached after the first build)"
K8S_VERSION=$COMPAT_K8S_VERSION scripts/build-control-plane.sh
K8S_VERSION=$COMPAT_K8S_VERSION scripts/build-node.sh

# Only the control-plane tests below talk to this API server.
export OTPILOT_CP_DIR=$ROOT/.otpilot/compat-control-plane
finish() {
  status=$?
  if [ "$status" -ne 0 ]; then
    OTPILOT_KEEP_LOGS=1 scripts/control-plane.sh down || true
    say "FAILED (exit $status); control-plane logs kept in $OTPILOT_CP_DIR"
  else
    scripts/control-plane.sh down 2>&1 || true
  fi
  exit "$status"
}
trap finish EXIT
scripts/control-plane.sh down >/dev/null 2>&1 || true
cp_env=$(K8S_VERSION=$COMPAT_K8S_VERSION scripts/control-plane.sh up)
eval "$cp_env"
export OTPILOT_TEST_KUBECONFIG
# control_plane_crds.rs checks the server is exactly this release.
export OTPILOT_TEST_K8S_VERSION=$COMPAT_K8S_VERSION

say "control-plane tests against kube-apiserver $COMPAT_K8S_VERSION"
cargo nextest run --locked --no-fail-fast -p otpilot-tests -p otpilot-operator \
  --test control_plane_crds --test crd_validation --test control_plane_resource_fields \
  --test lifecycle --test client_certificates --test webhook -E '
    binary(control_plane_crds) | binary(crd_validation) | binary(control_plane_resource_fields)
  | (binary(lifecycle) & test(=a_retain_credential_has_no_finalizer_so_its_namespace_deletes_without_the_operator))
  | (binary(client_certificates) & test(=audd_credential_with_a_generated_client_ca_reaches_ready_and_logs_in_over_mtls))
  | (binary(webhook) & test(=an_annotated_pod_gets_the_native_sidecar_and_an_unannotated_pod_is_untouched))'
scripts/control-plane.sh down
trap - EXIT

say "end to end on a kubelet $COMPAT_K8S_VERSION node"
OTPILOT_NODE_DIR=$ROOT/.otpilot/compat-node K8S_VERSION=$COMPAT_K8S_VERSION scripts/node-e2e.sh -E '
    test(=injected_pods_start_the_app_after_the_sidecar_is_ready_and_reach_the_vendor)
  | test(=a_job_with_the_sidecar_completes)'
say "Kubernetes $COMPAT_K8S_VERSION: all compatibility checks passed in $(( $(date +%s) - started ))s"
