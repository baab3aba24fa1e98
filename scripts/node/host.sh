# Sourced by scripts/node.sh: what a node changes on the host, how `down` puts it back, and the
# snapshot scripts/node-e2e.sh compares before `up` and after `down`.
# Uses node.sh's DIR, ROOT, BRIDGE, POD_CIDR, POD_GW, SVC_IP, API_PORT, TAG, SYSCTLS, log, die.

iptables_rules() { # -A|-D: the DNAT for the kubernetes Service and the no-routing-out rule
  local op=$1
  iptables -t nat "$op" PREROUTING -d "$SVC_IP/32" -p tcp --dport 443 -m comment --comment "$TAG" \
    -j DNAT --to-destination "$POD_GW:$API_PORT"
  iptables -t filter "$op" FORWARD -s "$POD_CIDR" ! -d "$POD_CIDR" -m comment --comment "$TAG" -j DROP
}

# Before `up` changes anything: what to put back, or leave alone, on `down`.
record_host() {
  sysctl -n "${SYSCTLS[@]}" > "$DIR/sysctl.orig"
  { ls /run/netns 2>/dev/null || true; } > "$DIR/netns-before"
  nft list tables > "$DIR/nft-tables-before" 2>/dev/null || true
  [ -d /run/netns ] && touch "$DIR/run-netns-existed"
  [ -d /var/log/containers ] && touch "$DIR/varlog-containers-existed"
  # A kubelet before 1.30 has no podLogsDir: its Pods log under /var/log/pods.
  [ -d /var/log/pods ] && touch "$DIR/varlog-pods-existed"
  { ls /var/log/pods 2>/dev/null || true; } > "$DIR/varlog-pods-before"
  [ -d /run/containerd ] && touch "$DIR/run-containerd-existed"
  touch "$DIR/host-changed"
}

restore_host() {
  local m l c n
  # Mounts the kubelet and containerd made under the state dir (volumes, overlay rootfs, shm).
  grep -o " $DIR/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  # The kubelet's (hardcoded) /var/log/containers links into our pod-logs dir, or, before 1.30
  # (no podLogsDir), into the /var/log/pods entries our Pods made.
  local ours=()
  for l in /var/log/pods/*; do
    [ -e "$l" ] || continue
    grep -qxF "${l##*/}" "$DIR/varlog-pods-before" 2>/dev/null || ours+=("$l")
  done
  for l in /var/log/containers/*.log; do
    [ -L "$l" ] || continue
    case "$(readlink "$l")" in "$DIR"/*) rm -f "$l"; continue ;; esac
    for m in "${ours[@]}"; do case "$(readlink "$l")" in "$m"/*) rm -f "$l" ;; esac; done
  done
  [ -f "$DIR/varlog-containers-existed" ] || rmdir /var/log/containers 2>/dev/null || true
  [ ${#ours[@]} -eq 0 ] || rm -rf "${ours[@]}"
  [ -f "$DIR/varlog-pods-existed" ] || rmdir /var/log/pods 2>/dev/null || true
  # Pod cgroups (cgroupfs driver on cgroup v1): the emptied tree, depth first.
  for c in /sys/fs/cgroup/*/kubepods; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  # iptables: our two rules, and the kubelet's own chains (v4 and v6).
  while iptables -t nat -S PREROUTING 2>/dev/null | grep -q -- "--comment $TAG"; do iptables_rules -D 2>/dev/null || break; done
  while iptables -t filter -S FORWARD 2>/dev/null | grep -q -- "--comment $TAG"; do
    iptables -t filter -D FORWARD -s "$POD_CIDR" ! -d "$POD_CIDR" -m comment --comment "$TAG" -j DROP || break
  done
  local ipt t ch
  for ipt in iptables ip6tables; do
    for ch in INPUT OUTPUT; do while $ipt -t filter -D $ch -j KUBE-FIREWALL 2>/dev/null; do :; done; done
    $ipt -t filter -F KUBE-FIREWALL 2>/dev/null || true; $ipt -t filter -X KUBE-FIREWALL 2>/dev/null || true
    for t in mangle nat filter; do $ipt -t $t -F KUBE-KUBELET-CANARY 2>/dev/null || true; $ipt -t $t -X KUBE-KUBELET-CANARY 2>/dev/null || true; done
    $ipt -t mangle -X KUBE-IPTABLES-HINT 2>/dev/null || true
  done
  # iptables-nft creates its tables on first use: drop those that were not there before and
  # hold no rule now (ours and the kubelet's are gone by here).
  local family table save
  if [ -f "$DIR/nft-tables-before" ]; then
    nft list tables 2>/dev/null | while read -r _ family table; do
      grep -qx "table $family $table" "$DIR/nft-tables-before" && continue
      case $family in ip) save=iptables-save ;; ip6) save=ip6tables-save ;; *) continue ;; esac
      $save -t "$table" 2>/dev/null | grep -q '^-A' || nft delete table "$family" "$table" 2>/dev/null || true
    done
  fi
  # Pod network namespaces left by an abrupt stop, then the bridge.
  for n in $(ls /run/netns 2>/dev/null | grep '^cni-' || true); do
    grep -qx "$n" "$DIR/netns-before" 2>/dev/null || ip netns del "$n" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  # /run/netns is a self bind mount the first netns made.
  if [ ! -f "$DIR/run-netns-existed" ] && [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ]; then
    umount /run/netns 2>/dev/null || true; rmdir /run/netns 2>/dev/null || true
  fi
  # runc's state and the shims' sockets live under /run/containerd whatever our state dir.
  if [ ! -f "$DIR/run-containerd-existed" ] && [ -d /run/containerd ]; then
    for s in /run/containerd/s/*; do [ -S "$s" ] && ! ss -xl 2>/dev/null | grep -qF "$s" && rm -f "$s"; done
    find /run/containerd -depth -type d -empty -delete 2>/dev/null || true
  fi
  if [ -f "$DIR/sysctl.orig" ]; then
    local i=0 v
    while read -r v; do sysctl -qw "${SYSCTLS[$i]}=$v" || true; i=$((i + 1)); done < "$DIR/sysctl.orig"
  fi
  rm -f "$DIR/host-changed"
}

# The host state a node could change, one section per concern, stable across runs.
snapshot() {
  local ipt
  for ipt in iptables-save ip6tables-save; do
    echo "## $ipt"; { $ipt 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'; } || true
  done
  echo "## sysctls"; sysctl "${SYSCTLS[@]}" 2>/dev/null || true
  echo "## netns"; ls /run/netns 2>/dev/null || true
  echo "## links"; ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
  echo "## mounts"; awk '{print $2, $3}' /proc/mounts | grep -E "^(/run/netns|/run/containerd|$ROOT/.otpilot|/var/lib/kubelet)|kubelet|containerd|overlay" | sort || true
  echo "## cgroups"; { find /sys/fs/cgroup -maxdepth 2 -type d -name kubepods 2>/dev/null || true; } | sort
  echo "## run dirs"; ls -d /run/containerd /var/log/containers /var/log/pods 2>/dev/null || true
  echo "## pod logs"; ls /var/log/pods 2>/dev/null || true
  echo "## processes"; ps -eo comm= | grep -xE 'kubelet|containerd|containerd-shim|containerd-shim-runc-v2|kube-scheduler|pause|runc' | sort || true
}

check_clean() {
  local before=$1 now
  now=$(mktemp); snapshot > "$now"
  if diff -u "$before" "$now" >&2; then
    rm -f "$now"; log "host clean: iptables v4/v6, sysctls, netns, links, mounts, cgroups, processes as before"
  else
    rm -f "$now"; die "the host differs from the snapshot taken before up (diff above)"
  fi
}
