#!/usr/bin/env bash
# Install (once, idempotent, noninteractive) the Debian packages a real node needs:
# runc (containerd's runtime), the CNI plugins (bridge, host-local, loopback), iptables and
# conntrack (used by the kubelet and the CNI bridge), nftables (`nft`, so `down` can drop the
# iptables-nft tables the node created), busybox-static (the test app image's shell
# and HTTP client). No service is started: there is no systemd here, and scripts/node.sh runs
# everything itself. Needs root.
set -euo pipefail
source "$(dirname "$0")/lib/debian-packages.sh"
ensure_debian_packages install-node-packages \
  runc containernetworking-plugins iptables conntrack nftables busybox-static
