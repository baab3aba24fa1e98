#!/usr/bin/env bash
# Run otpilot locally, with no cluster and no Docker:
#   scripts/run-local.sh            # bring everything up; Ctrl-C stops it all
#   scripts/run-local.sh --check    # bring it up, verify a proxied call, tear down (scripts/test.sh)
#
# Starts a real etcd + kube-apiserver + kube-controller-manager on loopback,
# installs the CRDs, the AUDD vendor simulator (https, mTLS) with a demo
# account, and the operator as a process. Applies examples/local-demo.yaml,
# hands the ClientCA's certificate to the simulator the way a person hands it
# to a vendor, waits for the ApiCredential to be Ready, then runs a sidecar
# on the credential's runtime Secret (laid out as the kubelet mounts it) and
# calls the vendor through the sidecar's proxy.
#
# This control plane has no node yet, so the operator and the sidecar run as
# processes here; on a real cluster the Helm chart runs the operator and the
# webhook injects the sidecar (README: "On a real cluster").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1
STATE=${OTPILOT_LOCAL_DIR:-$ROOT/.otpilot/local}
export OTPILOT_CP_DIR=$STATE/control-plane
SIM_PORT=${OTPILOT_SIM_PORT:-8443}
SIM_ADMIN_PORT=${OTPILOT_SIM_ADMIN_PORT:-8444}
API_PORT=${OTPILOT_SIDECAR_API_PORT:-8181}
PROXY_PORT=${OTPILOT_SIDECAR_PROXY_PORT:-8182}
say() { printf '[run-local %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
if [ "$CHECK" = 1 ]; then API_PORT=$(free_port); PROXY_PORT=$(free_port); fi

say "building the control plane (cached after the first run) and otpilot"
BIN=$(scripts/build-control-plane.sh)
cargo build --quiet -p otpilot-sim -p otpilot-operator -p otpilot-sidecar
rm -rf "$STATE/sidecar"
mkdir -p "$STATE/sidecar"

pids=()
cleanup() {
  status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    OTPILOT_KEEP_LOGS=1 scripts/control-plane.sh down || true
    say "failed; logs in $STATE (operator.log, sidecar.log, simulator.log, control-plane/)"
    for f in operator.log sidecar.log; do
      [ -f "$STATE/$f" ] && { say "last lines of $f:"; tail -n 15 "$STATE/$f" >&2; }
    done
  else
    scripts/control-plane.sh down || true
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# wait_until DESCRIPTION SECONDS COMMAND...
wait_until() {
  local what=$1 seconds=$2; shift 2
  local deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { say "timed out after ${seconds}s waiting for $what"; return 1; }
    sleep 0.5
  done
}

scripts/control-plane.sh down >/dev/null 2>&1 || true
cp_env=$(scripts/control-plane.sh up)
eval "$cp_env"
kubectl() { "$BIN/kubectl" --kubeconfig "$OTPILOT_TEST_KUBECONFIG" "$@"; }

say "installing the CRDs (the Helm chart's crds/)"
kubectl apply --server-side -f charts/otpilot/crds/ >/dev/null
kubectl wait --for=condition=Established --timeout=60s \
  crd/apicredentials.otpilot.dev crd/clientcas.otpilot.dev crd/clustermfaprofiles.otpilot.dev >/dev/null
kubectl create namespace otpilot-system >/dev/null

say "starting the AUDD simulator"
target/debug/otpilot-sim --vendor audd --port "$SIM_PORT" --admin-port "$SIM_ADMIN_PORT" \
  --state-dir "$STATE/simulator" --account payments-bot:demo-password:demo-api-key \
  >"$STATE/simulator.out" 2>"$STATE/simulator.log" &
pids+=($!)
wait_until "the simulator" 20 grep -q '^server CA:' "$STATE/simulator.out"
# The simulator prints where it listens (ports may be chosen at random).
sim_url=$(sed -n 's/^vendor URL: *//p' "$STATE/simulator.out")
admin_url=$(sed -n 's/^admin URL: *//p' "$STATE/simulator.out")
server_ca=$(sed -n 's/^server CA: *//p' "$STATE/simulator.out")
[ -n "$sim_url" ] && [ -n "$admin_url" ] || { say "simulator did not report its URLs"; exit 1; }

say "starting the operator (logs: $STATE/operator.log)"
operator_admin=127.0.0.1:$(free_port)
KUBECONFIG=$OTPILOT_TEST_KUBECONFIG target/debug/otpilot-operator run \
  --namespace otpilot-system --admin-addr "$operator_admin" >"$STATE/operator.log" 2>&1 &
pids+=($!)
wait_until "the operator's /readyz" 60 curl -fsS "http://$operator_admin/readyz"

say "applying examples/local-demo.yaml"
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: demo}
YAML
# The vendor's server CA is private: the credential trusts it through a ConfigMap.
kubectl -n demo create configmap vendor-server-ca --from-file=ca.crt="$server_ca" >/dev/null
sed "s|https://127.0.0.1:8443|$sim_url|" examples/local-demo.yaml | kubectl apply -f - >/dev/null

say "handing the ClientCA's certificate to the vendor (the simulator's admin API)"
wait_until "ClientCA demo-vendor-ca Ready" 60 kubectl wait --for=condition=Ready --timeout=2s clientca/demo-vendor-ca
kubectl get clientca demo-vendor-ca -o jsonpath='{.status.certificate}' >"$STATE/client-ca.pem"
curl -fsS --data-binary @"$STATE/client-ca.pem" "$admin_url/client-cas" >/dev/null

say "waiting for ApiCredential demo/payments: certificate, MFA enrollment at the vendor"
if ! kubectl -n demo wait --for=condition=Ready --timeout=120s apicredential/payments >/dev/null; then
  kubectl -n demo get apicredential payments -o yaml >&2
  exit 1
fi
kubectl -n demo get apicredential payments -o wide

say "starting a sidecar on the runtime Secret (logs: $STATE/sidecar.log)"
# Laid out as the kubelet mounts a Secret volume (..data symlink swap on rotation).
kubectl -n demo get secret payments-runtime -o json | python3 scripts/secret-volume.py "$STATE/sidecar/runtime"
kubectl -n demo get secret payments-bot -o json | python3 scripts/secret-volume.py "$STATE/sidecar/credentials"
target/debug/otpilot-sidecar run --runtime-dir "$STATE/sidecar/runtime" \
  --password-file "$STATE/sidecar/credentials/password" --api-key-file "$STATE/sidecar/credentials/api-key" \
  --api-addr "127.0.0.1:$API_PORT" --proxy-addr "127.0.0.1:$PROXY_PORT" >"$STATE/sidecar.log" 2>&1 &
pids+=($!)
wait_until "the sidecar's /readyz" 90 curl -fsS "http://127.0.0.1:$API_PORT/readyz"

token_json=$(curl -fsS -H 'Otpilot-Request: true' "http://127.0.0.1:$API_PORT/token")
expires=$(printf '%s' "$token_json" | python3 -c 'import json,sys; t=json.load(sys.stdin); print(t["tokenType"], "token, expires", t["expiresAt"])')
say "sidecar serves a $expires"
users=$(curl -fsS "http://127.0.0.1:$PROXY_PORT/users")
say "through the sidecar's proxy, GET $sim_url/users answered: $users"
refused=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$API_PORT/token")
[ "$refused" = 403 ] || { say "/token without its header answered $refused, not 403"; exit 1; }

cat >&2 <<MSG

otpilot is running locally:
  control plane   export KUBECONFIG=$OTPILOT_TEST_KUBECONFIG
                  kubectl get clientca,apicred -A -o wide
  operator        metrics http://$operator_admin/metrics, log $STATE/operator.log
  vendor          $sim_url (AUDD simulator), admin $admin_url
  the token       curl -H 'Otpilot-Request: true' http://127.0.0.1:$API_PORT/token
  the vendor      curl http://127.0.0.1:$PROXY_PORT/users      (mTLS + bearer added by the sidecar)
  sidecar         http://127.0.0.1:$API_PORT/readyz, /metrics, log $STATE/sidecar.log

MSG

if [ "$CHECK" = 1 ]; then
  say "check passed"
  exit 0
fi
say "Ctrl-C to stop"
wait "${pids[0]}"
