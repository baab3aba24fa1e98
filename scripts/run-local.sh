#!/usr/bin/env bash
# Run otpilot locally, with no cluster and no Docker:
#   scripts/run-local.sh            # bring everything up; Ctrl-C stops it all
#   scripts/run-local.sh --check    # bring it up, verify, tear down (used by scripts/test.sh)
#
# Starts a real etcd + kube-apiserver + kube-controller-manager on loopback,
# installs the Helm chart (the CRDs), starts the AUDD vendor simulator on
# https://127.0.0.1:8443 (admin API on http://127.0.0.1:8444) with a demo
# account, and applies examples/local-demo.yaml.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1
STATE=${OTPILOT_LOCAL_DIR:-$ROOT/.otpilot/local}
export OTPILOT_CP_DIR=$STATE/control-plane
SIM_PORT=${OTPILOT_SIM_PORT:-8443}
SIM_ADMIN_PORT=${OTPILOT_SIM_ADMIN_PORT:-8444}
say() { printf '[run-local %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

say "building the control plane (cached after the first run) and otpilot"
BIN=$(scripts/build-control-plane.sh)
cargo build --quiet -p otpilot-sim -p otpilot-operator
mkdir -p "$STATE"

sim_pid=
cleanup() {
  status=$?
  if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  if [ "$status" -ne 0 ]; then
    OTPILOT_KEEP_LOGS=1 scripts/control-plane.sh down || true
    say "failed; logs in $STATE"
  else
    scripts/control-plane.sh down || true
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

scripts/control-plane.sh down >/dev/null 2>&1 || true
cp_env=$(scripts/control-plane.sh up)
eval "$cp_env"
kubectl() { "$BIN/kubectl" --kubeconfig "$OTPILOT_TEST_KUBECONFIG" "$@"; }

say "installing the Helm chart"
kubectl create namespace otpilot-system >/dev/null
"$BIN/helm" install otpilot charts/otpilot --namespace otpilot-system \
  --kubeconfig "$OTPILOT_TEST_KUBECONFIG" >/dev/null
kubectl wait --for=condition=Established --timeout=60s \
  crd/apicredentials.otpilot.dev crd/clientcas.otpilot.dev crd/clustermfaprofiles.otpilot.dev >/dev/null

say "starting the AUDD simulator"
target/debug/otpilot-sim --vendor audd --port "$SIM_PORT" --admin-port "$SIM_ADMIN_PORT" \
  --state-dir "$STATE/simulator" --account payments-bot:demo-password:demo-api-key \
  >"$STATE/simulator.out" 2>"$STATE/simulator.log" &
sim_pid=$!
for _ in $(seq 1 100); do
  grep -q '^server CA:' "$STATE/simulator.out" 2>/dev/null && break
  kill -0 "$sim_pid" 2>/dev/null || { cat "$STATE/simulator.log" >&2; exit 1; }
  sleep 0.1
done
# The simulator prints where it listens (ports may be chosen at random).
sim_url=$(sed -n 's/^vendor URL: *//p' "$STATE/simulator.out")
admin_url=$(sed -n 's/^admin URL: *//p' "$STATE/simulator.out")
server_ca=$(sed -n 's/^server CA: *//p' "$STATE/simulator.out")
[ -n "$sim_url" ] && [ -n "$admin_url" ] || { say "simulator did not report its URLs"; exit 1; }
curl -fsS "$admin_url/accounts" >/dev/null

say "applying examples/local-demo.yaml"
sed "s|https://127.0.0.1:8443|$sim_url|" examples/local-demo.yaml | kubectl apply -f - >/dev/null
kubectl get apicredentials -A

cat >&2 <<MSG

otpilot is running locally:
  control plane   export KUBECONFIG=$OTPILOT_TEST_KUBECONFIG   (then: kubectl get apicred -A)
  simulator       $sim_url (AUDD), admin $admin_url
                  server CA: $server_ca; account payments-bot / demo-password / demo-api-key
  logs            $STATE

Not here yet: the operator's controllers (so the ApiCredential's READY stays empty),
the sidecar serving a token, and sidecar injection. See docs/architecture.md.
MSG

if [ "$CHECK" = 1 ]; then
  kubectl get apicredential payments -n demo -o name >/dev/null
  kubectl get clientca demo-vendor-ca -o name >/dev/null
  say "check passed"
  exit 0
fi
say "Ctrl-C to stop"
wait "$sim_pid"
