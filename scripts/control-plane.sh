#!/usr/bin/env bash
# A real Kubernetes control plane on loopback: etcd + kube-apiserver +
# kube-controller-manager (so garbage collection and namespace deletion are
# real), with fresh certificates and an admin kubeconfig.
#
#   scripts/control-plane.sh up      # start; prints `export OTPILOT_TEST_KUBECONFIG=...`
#   scripts/control-plane.sh down    # stop everything by PID; removes the state dir
#                                    # unless OTPILOT_KEEP_LOGS=1 (logs kept for a failure)
#   scripts/control-plane.sh status
#
# State (certificates, data, logs, the audit log, PIDs) lives in $OTPILOT_CP_DIR
# (default: <repo>/.otpilot/control-plane). Binaries come from
# scripts/build-control-plane.sh (built once, cached).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${OTPILOT_CP_DIR:-$ROOT/.otpilot/control-plane}
COMPONENTS=(kube-controller-manager kube-apiserver etcd)   # stop order

log() { printf '[control-plane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll every 0.2 s.
wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then return 1; fi
    sleep 0.2
  done
  log "$what ready"
}

alive() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

show_log_tail() {
  local c=$1
  [ -f "$DIR/$c.log" ] || return 0
  log "last lines of $DIR/$c.log:"
  tail -n 30 "$DIR/$c.log" >&2
}

issue_certificates() {
  local ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
  # shellcheck disable=SC2086
  openssl req -x509 -new -nodes $ec -keyout ca.key -out ca.crt -days 7 -subj "/CN=otpilot-test-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
  sign() { # name subject extensions
    # shellcheck disable=SC2086
    openssl req -new -nodes $ec -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    printf '%b' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" \
      -days 7 -extfile "$1.ext" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
  }
  sign apiserver "/CN=localhost" \
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n'
  sign admin "/O=system:masters/CN=otpilot-admin" \
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n'
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
  openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
}

write_kubeconfig() {
  cat > "$DIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: otpilot-test
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $DIR/ca.crt
users:
- name: otpilot-admin
  user:
    client-certificate: $DIR/admin.crt
    client-key: $DIR/admin.key
contexts:
- name: otpilot-test
  context: {cluster: otpilot-test, user: otpilot-admin}
current-context: otpilot-test
KC
}

# The audit log the whole-run secret scan reads (scripts/secret-scan.py):
# full requests and responses for Events, otpilot's resources (with /status)
# and Leases; nothing for Secrets, which legitimately hold secrets; nothing
# else (volume).
write_audit_policy() {
  cat > "$DIR/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  resources:
  - group: ""
    resources: [secrets]
- level: RequestResponse
  resources:
  - group: ""
    resources: [events]
  - group: events.k8s.io
    resources: [events]
  - group: otpilot.dev
    resources: ["*", "*/status"]
  - group: coordination.k8s.io
    resources: [leases]
- level: None
POLICY
}

up() {
  if alive kube-apiserver; then
    log "already running in $DIR"
    echo "export OTPILOT_TEST_KUBECONFIG=$DIR/kubeconfig"
    return 0
  fi
  local bin
  bin=$("$ROOT/scripts/build-control-plane.sh")
  rm -rf "$DIR"; mkdir -p "$DIR/etcd-data"; chmod 700 "$DIR"
  cd "$DIR"
  echo "$bin" > bin-dir
  issue_certificates
  write_audit_policy

  local etcd_port peer_port kcm_port
  etcd_port=$(free_port); peer_port=$(free_port); API_PORT=$(free_port); kcm_port=$(free_port)

  log "starting etcd on 127.0.0.1:$etcd_port"
  "$bin/etcd" --name=otpilot-test --data-dir="$DIR/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="otpilot-test=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync=true --log-level=warn >"$DIR/etcd.log" 2>&1 &
  echo $! > "$DIR/etcd.pid"
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$etcd_port/health" \
    || { show_log_tail etcd; down_quietly; die "etcd did not become healthy"; }

  log "starting kube-apiserver on 127.0.0.1:$API_PORT"
  # ServiceAccount admission stays off: tests create Pods right after their
  # namespace, before the ServiceAccount controller has made "default".
  "$bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
    --cert-dir="$DIR" --tls-cert-file="$DIR/apiserver.crt" --tls-private-key-file="$DIR/apiserver.key" \
    --client-ca-file="$DIR/ca.crt" \
    --service-account-issuer="https://127.0.0.1:$API_PORT/" \
    --service-account-key-file="$DIR/sa.pub" --service-account-signing-key-file="$DIR/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --authorization-mode=RBAC \
    --disable-admission-plugins=ServiceAccount \
    --allow-privileged=true \
    --audit-policy-file="$DIR/audit-policy.yaml" --audit-log-path="$DIR/audit.log" \
    --audit-log-maxsize=500 --audit-log-maxbackup=10 \
    >"$DIR/kube-apiserver.log" 2>&1 &
  echo $! > "$DIR/kube-apiserver.pid"
  write_kubeconfig
  wait_for kube-apiserver 120 curl -fsS --cacert "$DIR/ca.crt" --cert "$DIR/admin.crt" --key "$DIR/admin.key" \
      "https://127.0.0.1:$API_PORT/readyz" \
    || { show_log_tail kube-apiserver; down_quietly; die "kube-apiserver did not become ready"; }

  log "starting kube-controller-manager"
  "$bin/kube-controller-manager" \
    --kubeconfig="$DIR/kubeconfig" --authentication-kubeconfig="$DIR/kubeconfig" \
    --authorization-kubeconfig="$DIR/kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port="$kcm_port" \
    --root-ca-file="$DIR/ca.crt" --service-account-private-key-file="$DIR/sa.key" \
    --use-service-account-credentials=false \
    --kube-api-qps=200 --kube-api-burst=400 \
    >"$DIR/kube-controller-manager.log" 2>&1 &
  echo $! > "$DIR/kube-controller-manager.pid"
  wait_for kube-controller-manager 60 curl -fsSk "https://127.0.0.1:$kcm_port/healthz" \
    || { show_log_tail kube-controller-manager; down_quietly; die "kube-controller-manager did not become healthy"; }

  wait_for "namespace default" 30 "$bin/kubectl" --kubeconfig="$DIR/kubeconfig" get namespace default \
    || { down_quietly; die "namespace default never appeared"; }
  log "server $("$bin/kubectl" --kubeconfig="$DIR/kubeconfig" version -o json | python3 -c 'import json,sys; v=json.load(sys.stdin)["serverVersion"]; print(v["gitVersion"], v["platform"])')"
  echo "export OTPILOT_TEST_KUBECONFIG=$DIR/kubeconfig"
}

stop_components() {
  for c in "${COMPONENTS[@]}"; do
    [ -f "$DIR/$c.pid" ] || continue
    local pid; pid=$(cat "$DIR/$c.pid")
    if kill -TERM "$pid" 2>/dev/null; then
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/$c.pid"
  done
}

down_quietly() { stop_components; }

down() {
  [ -d "$DIR" ] || { log "not running"; return 0; }
  stop_components
  if [ "${OTPILOT_KEEP_LOGS:-0}" = 1 ]; then
    rm -rf "$DIR/etcd-data"
    log "stopped; logs kept in $DIR"
  else
    rm -rf "$DIR"
    log "stopped"
  fi
}

status() {
  for c in etcd kube-apiserver kube-controller-manager; do
    if alive "$c"; then echo "$c: running (pid $(cat "$DIR/$c.pid"))"; else echo "$c: stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
