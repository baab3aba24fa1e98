#!/usr/bin/env bash
# Run otpilot locally, with no cluster and no Docker:
#   scripts/run-local.sh                   # bring everything up; Ctrl-C stops it all
#   scripts/run-local.sh --vendor goaxr    # another built-in vendor: audd (the default), goaxr,
#                                          # conduit, acreto or cryptr (examples/<vendor>.yaml)
#   scripts/run-local.sh --check           # bring it up, verify a proxied call, tear down
#                                          # (scripts/test.sh runs this)
#
# As root (the default when it is), on a real one-node cluster (scripts/node.sh: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, containerd and a kubelet): the Helm
# chart runs the operator as Pods from images built out of the cargo binaries, the vendor
# simulator (https; mTLS for AUDD) runs on the host at the node's bridge address, and
# examples/workload.yaml, a Deployment annotated for injection, gets the sidecar; its app
# container prints the token it got (type and expiry, never the token) and the vendor's answer
# through the sidecar's proxy.
#
# Without root (or with OTPILOT_LOCAL_NODE=0): a control plane without a node
# (scripts/control-plane.sh), the operator as a process, and a sidecar as a process on the
# credential's runtime Secret (laid out as the kubelet mounts it).
#
# Both apply examples/<vendor>.yaml, hand the ClientCA's certificate to the simulator the way a
# person hands it to a vendor (AUDD, the one built-in vendor using mTLS), wait for the
# ApiCredential to be Ready, and end with what to try next: `kubectl otpilot status`, the token,
# the vendor through the proxy, the metrics.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
usage() { sed -n '2,7p' "$ROOT/scripts/run-local.sh" | sed 's/^# \{0,1\}//'; }
ARGS=("$@")
CHECK=0
VENDOR=audd
while [ $# -gt 0 ]; do
  case $1 in
    --check) CHECK=1 ;;
    --vendor) [ $# -ge 2 ] || { usage >&2; exit 2; }; VENDOR=$2; shift ;;
    --vendor=*) VENDOR=${1#--vendor=} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
# What run-local needs to know about examples/<vendor>.yaml: the ApiCredential, its Secret and
# keys, the ClientCA to register (AUDD only), the simulator's account (the Secret's values) and
# a protected call to make through the sidecar ({id}: the account's id at the vendor).
case $VENDOR in
  audd)    CREDENTIAL=payments   SECRET=payments-bot PASSWORD_KEY=password API_KEY_KEY=api-key
           CLIENT_CA=demo-vendor-ca ACCOUNT=payments-bot:demo-password:demo-api-key
           PROTECTED=/users ;;
  goaxr)   CREDENTIAL=build-bot  SECRET=build-bot    PASSWORD_KEY=password API_KEY_KEY=
           CLIENT_CA= ACCOUNT=build-bot@demo.example:demo-password:
           PROTECTED='/users/{id}' ;;
  conduit) CREDENTIAL=sync-bot   SECRET=sync-bot     PASSWORD_KEY=password API_KEY_KEY=
           CLIENT_CA= ACCOUNT=sync-bot@demo.example:demo-password:
           PROTECTED=/authentication/user ;;
  acreto)  CREDENTIAL=edge-admin SECRET=edge-admin   PASSWORD_KEY=password API_KEY_KEY=
           CLIENT_CA= ACCOUNT=edge-admin@demo.example:demo-password:
           PROTECTED=/v2/users/edge-admin%40demo.example ;;
  cryptr)  CREDENTIAL=idp-sync   SECRET=idp-sync     PASSWORD_KEY= API_KEY_KEY=client-secret
           CLIENT_CA= ACCOUNT=idp-sync-client:unused:demo-client-secret
           PROTECTED='/api/v2/org/demo/users/{id}' ;;
  *) echo "unknown vendor '$VENDOR': one of audd, goaxr, conduit, acreto, cryptr" >&2; exit 2 ;;
esac
EXAMPLE=examples/$VENDOR.yaml
STATE=${OTPILOT_LOCAL_DIR:-$ROOT/.otpilot/local}
export OTPILOT_CP_DIR=$STATE/control-plane
export OTPILOT_NODE_DIR=$STATE/node
NODE=${OTPILOT_LOCAL_NODE:-$([ "$(id -u)" = 0 ] && echo 1 || echo 0)}
if [ "$NODE" = 1 ]; then
  # shellcheck source=lib/node-lock.sh
  . "$ROOT/scripts/lib/node-lock.sh"
  node_lock_reexec "$ROOT/scripts/run-local.sh" ${ARGS[@]+"${ARGS[@]}"}
fi
SIM_PORT=${OTPILOT_SIM_PORT:-8443}
SIM_ADMIN_PORT=${OTPILOT_SIM_ADMIN_PORT:-8444}
API_PORT=${OTPILOT_SIDECAR_API_PORT:-8181}
PROXY_PORT=${OTPILOT_SIDECAR_PROXY_PORT:-8182}
BRIDGE_ADDRESS=10.88.0.1   # scripts/node.sh: the host as Pods see it
say() { printf '[run-local %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
if [ "$CHECK" = 1 ]; then API_PORT=$(free_port); PROXY_PORT=$(free_port); fi

say "building the control plane (cached after the first run)"
BIN=$(scripts/build-control-plane.sh)
say "building otpilot: simulator, operator, sidecar, kubectl-otpilot (cargo; fast when warm)"
cargo build --quiet -p otpilot-sim -p otpilot-operator -p otpilot-sidecar -p kubectl-otpilot
started=$(date +%s)
rm -rf "$STATE/sidecar"
mkdir -p "$STATE/sidecar"

cluster() { if [ "$NODE" = 1 ]; then scripts/node.sh "$@"; else scripts/control-plane.sh "$@"; fi; }
pids=()
cleanup() {
  status=$?
  for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null || true; done
  for pid in ${pids[@]+"${pids[@]}"}; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    OTPILOT_KEEP_LOGS=1 cluster down || true
    say "failed; logs in $STATE (operator.log, sidecar.log, simulator.log, control-plane/ or node/)"
    for f in operator.log sidecar.log; do
      [ -f "$STATE/$f" ] && { say "last lines of $f:"; tail -n 15 "$STATE/$f" >&2; }
    done
  else
    say "stopping everything it started"
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
  say "images from the debug binaries (scripts/images.sh --bin; no registry): localhost/otpilot/{operator,sidecar,app}:dev"
  scripts/node/images.sh "$ROOT/target/debug"
  SIM_BIND=$BRIDGE_ADDRESS
else
  say "starting a control plane (etcd, kube-apiserver; logs in $OTPILOT_CP_DIR)"
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

say "starting the $VENDOR simulator on $SIM_BIND"
target/debug/otpilot-sim --vendor "$VENDOR" --bind "$SIM_BIND" --port "$SIM_PORT" --admin-port "$SIM_ADMIN_PORT" \
  --state-dir "$STATE/simulator" --account "$ACCOUNT" \
  >"$STATE/simulator.out" 2>"$STATE/simulator.log" &
pids+=($!)
wait_until "the simulator" 20 grep -q '^server CA:' "$STATE/simulator.out"
# The simulator prints where it listens (ports may be chosen at random).
sim_url=$(sed -n 's/^vendor URL: *//p' "$STATE/simulator.out")
admin_url=$(sed -n 's/^admin URL: *//p' "$STATE/simulator.out")
server_ca=$(sed -n 's/^server CA: *//p' "$STATE/simulator.out")
[ -n "$sim_url" ] && [ -n "$admin_url" ] || { say "simulator did not report its URLs"; exit 1; }
account_id=$(curl -fsS "$admin_url/accounts/${ACCOUNT%%:*}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
PROTECTED=${PROTECTED//\{id\}/$account_id}

operator_admin=""
if [ "$NODE" = 0 ]; then
  say "starting the operator (logs: $STATE/operator.log)"
  operator_admin=127.0.0.1:$(free_port)
  KUBECONFIG=$KUBECONFIG_FILE target/debug/otpilot-operator run \
    --namespace otpilot-system --admin-addr "$operator_admin" >"$STATE/operator.log" 2>&1 &
  pids+=($!)
  wait_until "the operator's /readyz" 60 curl -fsS "http://$operator_admin/readyz"
fi

say "applying $EXAMPLE"
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: demo}
YAML
# The vendor's server CA is private: the credential trusts it through a ConfigMap.
kubectl -n demo create configmap vendor-server-ca --from-file=ca.crt="$server_ca" >/dev/null
# Of the fields a user changes (examples/README.md), the one run-local must: the vendor's URL.
sed "s|https://127.0.0.1:8443|$sim_url|" "$EXAMPLE" | kubectl apply -f - >/dev/null

if [ -n "$CLIENT_CA" ]; then
  say "handing the ClientCA's certificate to the vendor (the simulator's admin API)"
  wait_until "ClientCA $CLIENT_CA Ready" 60 kubectl wait --for=condition=Ready --timeout=2s "clientca/$CLIENT_CA"
  kubectl get clientca "$CLIENT_CA" -o jsonpath='{.status.certificate}' >"$STATE/client-ca.pem"
  curl -fsS --data-binary @"$STATE/client-ca.pem" "$admin_url/client-cas" >/dev/null
fi

say "waiting for ApiCredential demo/$CREDENTIAL: MFA enrollment at the vendor"
if ! kubectl -n demo wait --for=condition=Ready --timeout=120s "apicredential/$CREDENTIAL" >/dev/null; then
  kubectl -n demo get apicredential "$CREDENTIAL" -o yaml >&2
  exit 1
fi
kubectl -n demo get apicredential "$CREDENTIAL" -o wide
# The CLI is a kubectl plugin: kubectl finds kubectl-otpilot on PATH.
PLUGIN_PATH="$BIN:$ROOT/target/debug"
status_command="kubectl otpilot status -n demo $CREDENTIAL"
say "$status_command"
# env: the real kubectl on PATH, not this script's kubectl function.
env KUBECONFIG="$KUBECONFIG_FILE" PATH="$PLUGIN_PATH:$PATH" $status_command >&2

if [ "$NODE" = 1 ]; then
  say "examples/workload.yaml: a Deployment annotated otpilot.dev/inject: $CREDENTIAL (the webhook adds the sidecar)"
  # The values a user changes: the credential it names, the image (busybox, loaded into the
  # node as localhost/otpilot/app:dev: no registry) and the vendor path it calls.
  sed -e "s|otpilot.dev/inject: payments|otpilot.dev/inject: $CREDENTIAL|" \
      -e "s|image: busybox:1.36|image: localhost/otpilot/app:dev\n          imagePullPolicy: Never|" \
      -e "s|value: /users|value: '$PROTECTED'|" examples/workload.yaml | kubectl apply -f - >/dev/null
  if ! kubectl -n demo rollout status deployment/demo-app --timeout=180s >&2; then
    kubectl -n demo describe pods -l app=demo-app >&2
    exit 1
  fi
  pod=$(kubectl -n demo get pods -l app=demo-app -o jsonpath='{.items[0].metadata.name}')
  kubectl -n demo get pod "$pod" -o wide
  kubectl -n demo get pod "$pod" -o jsonpath='{range .status.initContainerStatuses[*]}  init {.name}: started={.started} ready={.ready} restarts={.restartCount} {.state}{"\n"}{end}{range .status.containerStatuses[*]}  container {.name}: started={.started} ready={.ready} restarts={.restartCount} {.state}{"\n"}{end}' >&2
  wait_until "the app's first call" 60 sh -c "'$BIN/kubectl' --kubeconfig '$KUBECONFIG_FILE' -n demo logs $pod -c app | grep -q '^vendor: .*$account_id'"
  app_log=$(kubectl -n demo logs "$pod" -c app)
  say "the app container's log (a real Pod, its token from the injected sidecar):"
  printf '%s\n' "$app_log" | sed 's/^/    /' >&2
  printf '%s\n' "$app_log" | grep -qE '^token: [A-Za-z]+, expires 20' || { say "the app got no token"; exit 1; }
  # The sidecar's API listens on the Pod's loopback only: ask it from inside the Pod.
  token_command="kubectl -n demo exec deploy/demo-app -c app -- sh -c 'wget -qO- --header \"\$OTPILOT_TOKEN_HEADER\" \"\$OTPILOT_TOKEN_URL\"'"
  KUBECONFIG=$KUBECONFIG_FILE PATH="$BIN:$PATH" sh -c "$token_command" \
    | python3 -c 'import json,sys; json.load(sys.stdin)["tokenType"]' \
    || { say "GET /token from inside the Pod gave no token"; exit 1; }
  # The operator's Pods are on the node's bridge, which the host is on too. The leader (of
  # two replicas) is the one reconciling: its metrics carry the credential's gauges.
  metrics_url=""
  for ip in $(kubectl -n otpilot-system get pods -l app.kubernetes.io/component=operator \
      -o jsonpath='{.items[*].status.podIP}'); do
    if curl -fsS "http://$ip:8080/metrics" | grep -q '^otpilot_operator_leader 1'; then
      metrics_url=http://$ip:8080/metrics
    fi
  done
  [ -n "$metrics_url" ] || { say "no operator Pod reports otpilot_operator_leader 1"; exit 1; }
  curl -fsS "$metrics_url" | grep -q '^otpilot_operator_credential_ready{' \
    || { say "$metrics_url has no otpilot_operator_credential_ready"; exit 1; }
  say "ready $(( $(date +%s) - started ))s after the build"
  cat >&2 <<MSG

otpilot is running locally on a one-node cluster, vendor $VENDOR. Try:
  first           export KUBECONFIG=$KUBECONFIG_FILE PATH=$PLUGIN_PATH:\$PATH
  the credential  $status_command
  cluster         kubectl get pods -A -o wide; kubectl get clientca,apicred -A -o wide
  the token       $token_command
  the app         kubectl -n demo logs deploy/demo-app -c app   (the vendor's answer via the proxy)
  metrics         curl $metrics_url   (the operator, its leader Pod)
  operator        kubectl -n otpilot-system logs deploy/otpilot
  sidecar         kubectl -n demo logs deploy/demo-app -c otpilot-sidecar
  vendor          $sim_url ($VENDOR simulator, on the node's bridge), admin $admin_url

MSG
else
  say "starting a sidecar on the runtime Secret (logs: $STATE/sidecar.log)"
  # Laid out as the kubelet mounts a Secret volume (..data symlink swap on rotation).
  kubectl -n demo get secret "$CREDENTIAL-runtime" -o json | python3 scripts/secret-volume.py "$STATE/sidecar/runtime"
  kubectl -n demo get secret "$SECRET" -o json | python3 scripts/secret-volume.py "$STATE/sidecar/credentials"
  # The files the webhook would mount: only the keys this credential names.
  secret_files=()
  [ -n "$PASSWORD_KEY" ] && secret_files+=(--password-file "$STATE/sidecar/credentials/$PASSWORD_KEY")
  [ -n "$API_KEY_KEY" ] && secret_files+=(--api-key-file "$STATE/sidecar/credentials/$API_KEY_KEY")
  target/debug/otpilot-sidecar run --runtime-dir "$STATE/sidecar/runtime" "${secret_files[@]}" \
    --api-addr "127.0.0.1:$API_PORT" --proxy-addr "127.0.0.1:$PROXY_PORT" >"$STATE/sidecar.log" 2>&1 &
  pids+=($!)
  wait_until "the sidecar's /readyz" 90 curl -fsS "http://127.0.0.1:$API_PORT/readyz"

  token_json=$(curl -fsS -H 'Otpilot-Request: true' "http://127.0.0.1:$API_PORT/token")
  expires=$(printf '%s' "$token_json" | python3 -c 'import json,sys; t=json.load(sys.stdin); print(t["tokenType"], "token, expires", t["expiresAt"])')
  say "sidecar serves a $expires"
  answer=$(curl -fsS "http://127.0.0.1:$PROXY_PORT$PROTECTED")
  say "through the sidecar's proxy, GET $sim_url$PROTECTED answered: $answer"
  case $answer in *"$account_id"*) ;; *) say "the vendor's answer does not name the account"; exit 1 ;; esac
  refused=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$API_PORT/token")
  [ "$refused" = 403 ] || { say "/token without its header answered $refused, not 403"; exit 1; }
  curl -fsS "http://$operator_admin/metrics" | grep -q '^otpilot_operator_credential_ready{' \
    || { say "the operator's /metrics has no otpilot_operator_credential_ready"; exit 1; }
  say "ready $(( $(date +%s) - started ))s after the build"
  client_cert=""
  [ -n "$CLIENT_CA" ] && client_cert=" and the client certificate"
  cat >&2 <<MSG

otpilot is running locally, vendor $VENDOR. Try:
  first           export KUBECONFIG=$KUBECONFIG_FILE PATH=$PLUGIN_PATH:\$PATH
  the credential  $status_command
  control plane   kubectl get clientca,apicred -A -o wide
  the token       curl -H 'Otpilot-Request: true' http://127.0.0.1:$API_PORT/token
  the vendor      curl http://127.0.0.1:$PROXY_PORT$PROTECTED   (the sidecar adds the token$client_cert)
  metrics         curl http://$operator_admin/metrics   (the operator)
                  curl http://127.0.0.1:$API_PORT/metrics   (the sidecar)
  logs            $STATE/operator.log, $STATE/sidecar.log
  vendor          $sim_url ($VENDOR simulator), admin $admin_url

MSG
fi

if [ "$CHECK" = 1 ]; then
  say "check passed"
  exit 0
fi
say "Ctrl-C to stop"
wait "${pids[0]}"
