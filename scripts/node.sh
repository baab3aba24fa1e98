#!/usr/bin/env bash
# A one-node Kubernetes cluster on this machine, for the end-to-end tests that run real Pods:
# etcd + kube-apiserver + kube-controller-manager + kube-scheduler on fixed 16xxx ports,
# containerd 2.x (own socket and state dir) + runc, a kubelet, and a CNI bridge the project owns
# (otpilotcni0, 10.88.0.0/16, no masquerade: nothing in a Pod routes beyond this machine).
# Needs root. scripts/control-plane.sh (no node, free ports) is unchanged and unrelated.
#
#   scripts/node.sh up            # start; prints `export OTPILOT_NODE_KUBECONFIG=...`
#   scripts/node.sh load A.tar..  # import OCI archives (scripts/node/image.sh) into containerd
#   scripts/node.sh down          # stop what `up` started (by PID) and restore the host
#   scripts/node.sh status
#   scripts/node.sh snapshot F    # record the host state (iptables, sysctls, netns, links,
#   scripts/node.sh check-clean F #   mounts, cgroups, processes); check-clean diffs against it
#
# State lives in $OTPILOT_NODE_DIR (default <repo>/.otpilot/node); logs are kept there after
# `down` when OTPILOT_KEEP_LOGS=1. Binaries: scripts/build-control-plane.sh, scripts/build-node.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${OTPILOT_NODE_DIR:-$ROOT/.otpilot/node}
CACHE=${OTPILOT_CACHE:-$HOME/.cache/otpilot}
NODE=otpilot-node
ETCD_PORT=16379; PEER_PORT=16380; API_PORT=16443; KCM_PORT=16257; SCHED_PORT=16259
KUBELET_PORT=16250; KUBELET_HEALTHZ=16248
BRIDGE=otpilotcni0; POD_CIDR=10.88.0.0/16; POD_GW=10.88.0.1
SVC_IP=10.0.0.1          # ClusterIP of the "kubernetes" Service (first of 10.0.0.0/24)
TAG=otpilot-node         # comment on every iptables rule this script adds
PAUSE_IMAGE=localhost/otpilot/pause:1
SOCK=$DIR/containerd/containerd.sock
COMPONENTS=(kubelet kube-scheduler kube-controller-manager kube-apiserver etcd containerd) # stop order
SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward)

log() { printf '[node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
wait_for() { # DESCRIPTION SECONDS COMMAND...
  local what=$1 seconds=$2; shift 2
  local deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.2
  done
  log "$what ready"
}
alive() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }
show_log_tail() { [ -f "$DIR/$1.log" ] && { log "last lines of $DIR/$1.log:"; tail -n 30 "$DIR/$1.log" >&2; }; return 0; }
start() { local n=$1; shift; "$@" >"$DIR/$n.log" 2>&1 & echo $! >"$DIR/$n.pid"; }
binaries() { CP_BIN=$("$ROOT/scripts/build-control-plane.sh"); NODE_BIN=$("$ROOT/scripts/build-node.sh"); }
ctr_() { "$NODE_BIN/ctr" -a "$SOCK" -n k8s.io "$@"; }
# What the node changes on the host and how `down` puts it back; snapshot and check-clean.
# shellcheck source=scripts/node/host.sh
. "$ROOT/scripts/node/host.sh"

# The pause (sandbox) image: a tiny static Go program, built once per source version.
pause_image() {
  local src=$ROOT/scripts/node/pause sum out
  sum=$(cat "$src/main.go" "$src/go.mod" | sha256sum | cut -c1-12)
  out=$CACHE/pause-$sum
  if [ ! -x "$out/pause" ]; then
    mkdir -p "$out"
    (cd "$src" && GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$out/pause.tmp" .)
    mv "$out/pause.tmp" "$out/pause"
  fi
  "$ROOT/scripts/node/image.sh" "$PAUSE_IMAGE" "$DIR/images/pause.tar" "$out/pause=/pause"
}

issue_certificates() {
  local ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
  # shellcheck disable=SC2086
  openssl req -x509 -new -nodes $ec -keyout ca.key -out ca.crt -days 7 -subj "/CN=otpilot-node-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
  sign() { # name subject extensions
    # shellcheck disable=SC2086
    openssl req -new -nodes $ec -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    printf '%b' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 7 -extfile "$1.ext" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
  }
  # Pods reach the API server as kubernetes.default (10.0.0.1) through one DNAT to the bridge.
  sign apiserver "/CN=localhost" \
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:$POD_GW,IP:$SVC_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
  sign admin "/O=system:masters/CN=otpilot-node-admin" \
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n'
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
  openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
}

write_configs() {
  cat > "$DIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: otpilot-node
  cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$DIR/ca.crt"}
users:
- name: otpilot-node-admin
  user: {client-certificate: "$DIR/admin.crt", client-key: "$DIR/admin.key"}
contexts:
- name: otpilot-node
  context: {cluster: otpilot-node, user: otpilot-node-admin}
current-context: otpilot-node
KC
  mkdir -p "$DIR/cni"
  # ipMasq false: Pods reach this machine (bridge address, the API server) and each other, and
  # nothing beyond it (no NAT out; the FORWARD drop rule in `up` covers the rest).
  cat > "$DIR/cni/10-otpilot.conflist" <<CNI
{"cniVersion": "1.0.0", "name": "otpilot-node", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "$DIR/cni-ipam"}},
  {"type": "loopback"}]}
CNI
  cat > "$DIR/containerd.toml" <<TOML
version = 3
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$PAUSE_IMAGE"
[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  # No CAP_SYS_RESOURCE in this VM's bounding set: runc cannot set a negative oom_score_adj
  # (the pause container asks for -998). Clamp to containerd's own value.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$DIR/cni"
TOML
  cat > "$DIR/kubelet-config.yaml" <<KY
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# kubelet >= 1.35 refuses cgroup v1 unless told otherwise; this VM is cgroup v1 (hybrid).
failCgroupV1: false
containerRuntimeEndpoint: unix://$SOCK
failSwapOn: false
port: $KUBELET_PORT
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ
readOnlyPort: 0
podLogsDir: $DIR/pod-logs
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$DIR/ca.crt"}
authorization: {mode: AlwaysAllow}
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
# Imported images cannot be pulled again: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
nodeStatusUpdateFrequency: 4s
syncFrequency: 10s
serializeImagePulls: false
KY
}

up() {
  [ "$(id -u)" = 0 ] || die "the node needs root (containerd, runc, the CNI bridge, iptables)"
  if alive kubelet; then
    log "already running in $DIR"
    echo "export OTPILOT_NODE_KUBECONFIG=$DIR/kubeconfig"
    return 0
  fi
  # A previous run that died half-way: put the host back first.
  if [ -f "$DIR/host-changed" ]; then log "cleaning up after a previous run"; down; fi
  "$ROOT/scripts/install-node-packages.sh"
  binaries
  local t0; t0=$(date +%s.%N)
  rm -rf "$DIR"; mkdir -p "$DIR/etcd-data" "$DIR/containerd" "$DIR/pod-logs" "$DIR/images"; chmod 700 "$DIR"
  cd "$DIR"
  printf '%s\n%s\n' "$CP_BIN" "$NODE_BIN" > bin-dirs
  issue_certificates; write_configs; pause_image
  record_host
  # The bridge exists before the API server starts so it can advertise its address.
  ip link add "$BRIDGE" type bridge
  ip addr replace "$POD_GW/16" dev "$BRIDGE"; ip link set "$BRIDGE" up
  iptables_rules -A

  log "starting containerd $("$NODE_BIN/containerd" --version | awk '{print $3}')"
  PATH=$NODE_BIN:$PATH start containerd "$NODE_BIN/containerd" --config "$DIR/containerd.toml"
  wait_for containerd 30 ctr_ version || { show_log_tail containerd; die "containerd did not start"; }
  load "$DIR/images/pause.tar"

  log "starting etcd on 127.0.0.1:$ETCD_PORT"
  start etcd "$CP_BIN/etcd" --name=otpilot-node --data-dir="$DIR/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$PEER_PORT" \
    --initial-cluster="otpilot-node=http://127.0.0.1:$PEER_PORT" --unsafe-no-fsync=true --log-level=warn
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health" || { show_log_tail etcd; die "etcd did not become healthy"; }

  log "starting kube-apiserver on 127.0.0.1:$API_PORT and $POD_GW:$API_PORT"
  # Unlike scripts/control-plane.sh: ServiceAccount admission on (Pods get tokens), kubelet client
  # certificate, and aggregator routing (webhook Services resolve to endpoint IPs: no kube-proxy).
  start kube-apiserver "$CP_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=0.0.0.0 --advertise-address="$POD_GW" --secure-port="$API_PORT" \
    --cert-dir="$DIR" --tls-cert-file="$DIR/apiserver.crt" --tls-private-key-file="$DIR/apiserver.key" \
    --client-ca-file="$DIR/ca.crt" \
    --kubelet-client-certificate="$DIR/admin.crt" --kubelet-client-key="$DIR/admin.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --enable-aggregator-routing=true \
    --service-account-issuer="https://127.0.0.1:$API_PORT/" \
    --service-account-key-file="$DIR/sa.pub" --service-account-signing-key-file="$DIR/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 --authorization-mode=RBAC --allow-privileged=true
  wait_for kube-apiserver 120 curl -fsS --cacert ca.crt --cert admin.crt --key admin.key "https://127.0.0.1:$API_PORT/readyz" \
    || { show_log_tail kube-apiserver; die "kube-apiserver did not become ready"; }

  log "starting kube-controller-manager and kube-scheduler"
  start kube-controller-manager "$CP_BIN/kube-controller-manager" \
    --kubeconfig="$DIR/kubeconfig" --authentication-kubeconfig="$DIR/kubeconfig" --authorization-kubeconfig="$DIR/kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
    --root-ca-file="$DIR/ca.crt" --service-account-private-key-file="$DIR/sa.key" \
    --use-service-account-credentials=false --kube-api-qps=200 --kube-api-burst=400
  start kube-scheduler "$NODE_BIN/kube-scheduler" \
    --kubeconfig="$DIR/kubeconfig" --authentication-kubeconfig="$DIR/kubeconfig" --authorization-kubeconfig="$DIR/kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port="$SCHED_PORT"

  log "starting the kubelet (node $NODE)"
  start kubelet "$NODE_BIN/kubelet" --config="$DIR/kubelet-config.yaml" --kubeconfig="$DIR/kubeconfig" \
    --root-dir="$DIR/kubelet" --cert-dir="$DIR/kubelet/pki" --hostname-override="$NODE" --v=2
  wait_for kube-controller-manager 60 curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz" || { show_log_tail kube-controller-manager; die kcm; }
  wait_for kube-scheduler 60 curl -fsSk "https://127.0.0.1:$SCHED_PORT/healthz" || { show_log_tail kube-scheduler; die scheduler; }
  local kubectl=("$CP_BIN/kubectl" --kubeconfig="$DIR/kubeconfig")
  wait_for "node $NODE Ready" 120 sh -c "'$CP_BIN/kubectl' --kubeconfig='$DIR/kubeconfig' get node $NODE -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True" \
    || { show_log_tail kubelet; die "node $NODE never became Ready"; }
  # ServiceAccount admission refuses Pods until "default" exists.
  wait_for "serviceaccount default/default" 30 "${kubectl[@]}" get serviceaccount default
  "${kubectl[@]}" get node -o wide >&2
  # A run for another release (scripts/compat.sh) must not pass on the default binaries.
  local kubelet_version
  kubelet_version=$("${kubectl[@]}" get node "$NODE" -o jsonpath='{.status.nodeInfo.kubeletVersion}')
  if [ -n "${K8S_VERSION:-}" ] && [ "$kubelet_version" != "$K8S_VERSION" ]; then
    die "the kubelet is $kubelet_version, not K8S_VERSION=$K8S_VERSION"
  fi
  log "up in $(python3 -c "import time; print(round(time.time() - $t0, 1))")s"
  echo "export OTPILOT_NODE_KUBECONFIG=$DIR/kubeconfig"
}

load() { # import OCI archives into the node's containerd (namespace k8s.io)
  [ -S "$SOCK" ] || die "the node is not up ($SOCK missing)"
  [ -n "${NODE_BIN:-}" ] || NODE_BIN=$("$ROOT/scripts/build-node.sh")
  local f
  for f in "$@"; do
    # (ctr warns on every call that cgroup v1 is deprecated: drop that line)
    if ! ctr_ images import "$f" 2>&1 >/dev/null | { grep -v DEPRECATION || true; } >&2; then
      die "could not import $f"
    fi
  done
  log "images: $(ctr_ images ls -q 2>/dev/null | grep -v '^sha256' | tr '\n' ' ')"
}

stop_components() {
  local c pid t s
  for c in "${COMPONENTS[@]}"; do
    [ -f "$DIR/$c.pid" ] || continue
    pid=$(cat "$DIR/$c.pid")
    if [ "$c" = containerd ] && kill -0 "$pid" 2>/dev/null; then
      # The kubelet is gone: kill the Pods' containers, and delete them (runc delete removes
      # their cgroups), then the shims this containerd started.
      for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s KILL "$t" >/dev/null 2>&1 || true; done
      sleep 1
      for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete --force "$t" >/dev/null 2>&1 || true; done
    fi
    [ "$c" = containerd ] && stop_leftover_containers
    if kill -TERM "$pid" 2>/dev/null; then
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/$c.pid"
  done
}

# Containers and shims of ours that outlived containerd (it crashed, or was killed): runc knows
# the containers by bundle path (in our state dir); a shim names our socket in its arguments.
stop_leftover_containers() {
  local root=/run/containerd/runc/k8s.io id f
  if [ -d "$root" ]; then
    for id in $(runc --root "$root" list --format json 2>/dev/null | python3 -c '
import json, sys
for c in json.load(sys.stdin) or []:
    if c["bundle"].startswith(sys.argv[1] + "/"): print(c["id"])' "$DIR" 2>/dev/null); do
      runc --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    done
  fi
  local shims=() pid
  for f in /proc/[0-9]*/cmdline; do
    tr '\0' '\n' < "$f" 2>/dev/null | grep -qxF -- "$SOCK" || continue
    pid=${f#/proc/}; pid=${pid%/cmdline}
    [ "$pid" = "$(cat "$DIR/containerd.pid" 2>/dev/null)" ] || shims+=("$pid")
  done
  [ ${#shims[@]} -gt 0 ] || return 0
  kill -KILL "${shims[@]}" 2>/dev/null || true
  # Gone before `down` looks for their sockets under /run/containerd.
  for _ in $(seq 1 50); do
    for pid in "${shims[@]}"; do [ -d "/proc/$pid" ] && break; done
    [ -d "/proc/$pid" ] || break
    sleep 0.1
  done
}

down() {
  [ -d "$DIR" ] || { log "not running"; return 0; }
  [ -n "${NODE_BIN:-}" ] || NODE_BIN=$(sed -n 2p "$DIR/bin-dirs" 2>/dev/null || true)
  stop_components
  [ -f "$DIR/host-changed" ] && restore_host
  if [ "${OTPILOT_KEEP_LOGS:-0}" = 1 ]; then
    rm -rf "$DIR/etcd-data" "$DIR/containerd" "$DIR/kubelet"
    log "stopped; logs kept in $DIR"
  else
    rm -rf "$DIR"
    log "stopped"
  fi
}

status() { for c in "${COMPONENTS[@]}"; do if alive "$c"; then echo "$c: running (pid $(cat "$DIR/$c.pid"))"; else echo "$c: stopped"; fi; done; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  load) shift; load "$@" ;;
  snapshot) snapshot > "${2:?usage: $0 snapshot FILE}" ;;
  check-clean) check_clean "${2:?usage: $0 check-clean FILE}" ;;
  *) echo "usage: $0 up|down|status|load ARCHIVE...|snapshot FILE|check-clean FILE" >&2; exit 2 ;;
esac
