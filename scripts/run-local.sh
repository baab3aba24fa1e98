#!/usr/bin/env bash
# Run otpilot locally, with no cluster and no Docker:
#   scripts/run-local.sh            # bring everything up; Ctrl-C stops it all
#   scripts/run-local.sh --check    # bring it up, verify a proxied call, tear down (scripts/test.sh)
#
# As root (the default when it is), on a real one-node cluster (scripts/node.sh: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, containerd and a kubelet): the Helm
# chart runs the operator as Pods from images built out of the cargo binaries, the AUDD vendor
# simulator (https, mTLS) runs on the host at the node's bridge address, and a Deployment
# annotated for injection gets the sidecar; its app container prints the token it got (type and
# expiry, never the token) and the vendor's answer through the sidecar's proxy.
#
# Without root (or with OTPILOT_LOCAL_NODE=0): a control plane without a node
# (scripts/control-plane.sh), the operator as a process, and a sidecar as a process on the
# credential's runtime Secret (laid out as the kubelet mounts it).
#
# Both apply examples/local-demo.yaml and hand the ClientCA's certificate to the simulator the
# way a person hands it to a vendor, then wait for the ApiCredential to be Ready.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1
STATE=${OTPILOT_LOCAL_DIR:-$ROOT/.otpilot/local}
export OTPILOT_CP_DIR=$STATE/control-plane
export OTPILOT_NODE_DIR=$STATE/node
NODE=${OTPILOT_LOCAL_NODE:-$([ "$(id -u)" = 0 ] && echo 1 || echo 0)}
if [ "$NODE" = 1 ]; then
  # shellcheck source=lib/node-lock.sh
  . "$ROOT/scripts/lib/node-lock.sh"
  node_lock_reexec "$ROOT/scripts/run-local.sh" "$@"
fi
SIM_PORT=${OTPILOT_SIM_PORT:-8443}
SIM_ADMIN_PORT=${OTPILOT_SIM_ADMIN_PORT:-8444}
API_PORT=${OTPILOT_SIDECAR_API_PORT:-8181}
PROXY_PORT=${OTPILOT_SIDECAR_PROXY_PORT:-8182}
BRIDGE_ADDRESS=10.88.0.1   # scripts/node.sh: the host as Pods see it
say() { printf '[run-local %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
if [ "$CHECK" = 1 ]; then API_PORT=$(free_port); PROXY_PORT=$(free_port); fi

say "building the control plane (cached after the first run) and otpilot"
BIN=$(scripts/build-control-plane.sh)
cargo build --quiet -p otpilot-sim -p otpilot-operator -p otpilot-sidecar
rm -rf "$STATE/sidecar"
mkdir -p "$STATE/sidecar"

cluster() { if [ "$NODE" = 1 ]; then scripts/node.sh "$@"; else scripts/control-plane.sh "$@"; fi; }
pids=()
cleanup() {
  status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    OTPILOT_KEEP_LOGS=1 cluster down || true
    say "failed; logs in $STATE (operator.log, sidecar.log, simulator.log, control-plane/ or node/)"
    for f in operator.log sidecar.log; do
      [ -f "$STATE/$f" ] && { say "last lines of $f:"; tail -n 15 "$STATE/$f" >&2; }
    done
  else
    cluster down || true
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

cluster down >/dev/null 2>&1 || true
if [ "$NODE" = 1 ]; then
  say "starting a one-node cluster (kubelet, containerd; logs in $OTPILOT_NODE_DIR)"
  node_env=$(scripts/node.sh up)
  eval "$node_env"
  KUBECONFIG_FILE=$OTPILOT_NODE_KUBECONFIG
  say "images from the cargo binaries (no registry): localhost/otpilot/{operator,sidecar}:dev"
  scripts/node/images.sh
  SIM_BIND=$BRIDGE_ADDRESS
else
  cp_env=$(scripts/control-plane.sh up)
  eval "$cp_env"
  KUBECONFIG_FILE=$OTPILOT_TEST_KUBECONFIG
  SIM_BIND=127.0.0.1
fi
kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

if [ "$NODE" = 1 ]; then
  say "helm install otpilot (the operator as Pods, the injection webhook, the CRDs)"
  "$BIN/helm" --kubeconfig "$KUBECONFIG_FILE" upgrade --install otpilot charts/otpilot \
    --namespace otpilot-system --create-namespace --wait --timeout 180s \
    --set operator.image.repository=localhost/otpilot/operator --set operator.image.tag=dev \
    --set operator.image.pullPolicy=Never \
    --set sidecar.image.repository=localhost/otpilot/sidecar --set sidecar.image.tag=dev \
    --set sidecar.image.pullPolicy=Never >/dev/null
  kubectl -n otpilot-system get pods -o wide
else
  say "installing the CRDs (the Helm chart's crds/)"
  kubectl apply --server-side -f charts/otpilot/crds/ >/dev/null
  kubectl wait --for=condition=Established --timeout=60s \
    crd/apicredentials.otpilot.dev crd/clientcas.otpilot.dev crd/clustermfaprofiles.otpilot.dev >/dev/null
  kubectl create namespace otpilot-system >/dev/null
fi

say "starting the AUDD simulator on $SIM_BIND"
target/debug/otpilot-sim --vendor audd --bind "$SIM_BIND" --port "$SIM_PORT" --admin-port "$SIM_ADMIN_PORT" \
  --state-dir "$STATE/simulator" --account payments-bot:demo-password:demo-api-key \
  >"$STATE/simulator.out" 2>"$STATE/simulator.log" &
pids+=($!)
wait_until "the simulator" 20 grep -q '^server CA:' "$STATE/simulator.out"
# The simulator prints where it listens (ports may be chosen at random).
sim_url=$(sed -n 's/^vendor URL: *//p' "$STATE/simulator.out")
admin_url=$(sed -n 's/^admin URL: *//p' "$STATE/simulator.out")
server_ca=$(sed -n 's/^server CA: *//p' "$STATE/simulator.out")
[ -n "$sim_url" ] && [ -n "$admin_url" ] || { say "simulator did not report its URLs"; exit 1; }

operator_admin=""
if [ "$NODE" = 0 ]; then
  say "starting the operator (logs: $STATE/operator.log)"
  operator_admin=127.0.0.1:$(free_port)
  KUBECONFIG=$KUBECONFIG_FILE target/debug/otpilot-operator run \
    --namespace otpilot-system --admin-addr "$operator_admin" >"$STATE/operator.log" 2>&1 &
  pids+=($!)
  wait_until "the operator's /readyz" 60 curl -fsS "http://$operator_admin/readyz"
fi

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

if [ "$NODE" = 1 ]; then
  say "a Deployment annotated otpilot.dev/inject: payments (the webhook adds the sidecar)"
  # The app prints what it got from the sidecar (type and expiry: the token itself is a secret)
  # and the vendor's answer through the sidecar's proxy.
  kubectl -n demo apply -f - >/dev/null <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: payments-app}
spec:
  replicas: 1
  selector: {matchLabels: {app: payments-app}}
  template:
    metadata:
      labels: {app: payments-app}
      annotations: {otpilot.dev/inject: payments}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: app
        image: localhost/otpilot/app:dev
        imagePullPolicy: Never
        command:
        - sh
        - -c
        - |
          while true; do
            t=$(wget -qO- --header "$OTPILOT_TOKEN_HEADER" --header 'Accept: application/json' "$OTPILOT_TOKEN_URL")
            echo "token: $(echo "$t" | sed -n 's/.*"tokenType":"\([^"]*\)".*/\1/p'), expires $(echo "$t" | sed -n 's/.*"expiresAt":"\([^"]*\)".*/\1/p')"
            echo "vendor: $(wget -qO- "$OTPILOT_PROXY_URL/users")"
            sleep 30
          done
YAML
  if ! kubectl -n demo rollout status deployment/payments-app --timeout=180s >&2; then
    kubectl -n demo describe pods -l app=payments-app >&2
    exit 1
  fi
  pod=$(kubectl -n demo get pods -l app=payments-app -o jsonpath='{.items[0].metadata.name}')
  kubectl -n demo get pod "$pod" -o wide
  kubectl -n demo get pod "$pod" -o jsonpath='{range .status.initContainerStatuses[*]}  init {.name}: started={.started} ready={.ready} restarts={.restartCount} {.state}{"\n"}{end}{range .status.containerStatuses[*]}  container {.name}: started={.started} ready={.ready} restarts={.restartCount} {.state}{"\n"}{end}' >&2
  wait_until "the app's first call" 60 sh -c "'$BIN/kubectl' --kubeconfig '$KUBECONFIG_FILE' -n demo logs $pod -c app | grep -q '^vendor: .*payments-bot'"
  app_log=$(kubectl -n demo logs "$pod" -c app)
  say "the app container's log (a real Pod, its token from the injected sidecar):"
  printf '%s\n' "$app_log" | sed 's/^/    /' >&2
  printf '%s\n' "$app_log" | grep -qE '^token: [A-Za-z]+, expires 20' || { say "the app got no token"; exit 1; }
  cat >&2 <<MSG

otpilot is running locally on a one-node cluster:
  cluster         export KUBECONFIG=$KUBECONFIG_FILE
                  kubectl get pods -A -o wide; kubectl get clientca,apicred -A -o wide
  operator        kubectl -n otpilot-system logs deploy/otpilot
  vendor          $sim_url (AUDD simulator, on the node's bridge), admin $admin_url
  the app         kubectl -n demo logs deploy/payments-app -c app
  sidecar         kubectl -n demo logs deploy/payments-app -c otpilot-sidecar

MSG
else
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
  control plane   export KUBECONFIG=$KUBECONFIG_FILE
                  kubectl get clientca,apicred -A -o wide
  operator        metrics http://$operator_admin/metrics, log $STATE/operator.log
  vendor          $sim_url (AUDD simulator), admin $admin_url
  the token       curl -H 'Otpilot-Request: true' http://127.0.0.1:$API_PORT/token
  the vendor      curl http://127.0.0.1:$PROXY_PORT/users      (mTLS + bearer added by the sidecar)
  sidecar         http://127.0.0.1:$API_PORT/readyz, /metrics, log $STATE/sidecar.log

MSG
fi

if [ "$CHECK" = 1 ]; then
  say "check passed"
  exit 0
fi
say "Ctrl-C to stop"
wait "${pids[0]}"
