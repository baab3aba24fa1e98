#!/usr/bin/env bash
# Install (once, idempotent, noninteractive) the Debian packages a real node needs:
# runc (containerd's runtime), the CNI plugins (bridge, host-local, loopback), iptables and
# conntrack (used by the kubelet and the CNI bridge), nftables (`nft`, so `down` can drop the
# iptables-nft tables the node created), busybox-static (the test app image's shell
# and HTTP client). No service is started: there is no systemd here, and scripts/node.sh runs
# everything itself. Needs root.
set -euo pipefail
PACKAGES=(runc containernetworking-plugins iptables conntrack nftables busybox-static)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || { echo "error: installing ${missing[*]} needs root" >&2; exit 1; }
echo "[install-node-packages] installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
