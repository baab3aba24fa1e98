#!/usr/bin/env bash
# Build, once, the binaries a real node needs, from the Go module proxy, and cache them outside
# the repo next to the control plane's (scripts/build-control-plane.sh, whose Kubernetes module
# recipe this shares through scripts/lib/k8s-build.sh). A warm cache answers in well under a second.
#
#   scripts/build-node.sh        # prints the directory holding the binaries
#
# Output: $OTPILOT_CACHE/bin-node-k8s-<v>-containerd-<v>/{kubelet,kube-scheduler,containerd,
#         containerd-shim-runc-v2,ctr}
# Cold: ~7 min for the kubelet and ~3 min for containerd on 2 cores. Nothing here is committed.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.3.7}
CACHE=${OTPILOT_CACHE:-$HOME/.cache/otpilot}
OUT=$CACHE/bin-node-k8s-$K8S_VERSION-containerd-$CONTAINERD_VERSION

BINARIES=(kubelet kube-scheduler containerd containerd-shim-runc-v2 ctr)

complete() { for b in "${BINARIES[@]}"; do [ -x "$OUT/$b" ] || return 1; done; }
if complete; then echo "$OUT"; exit 0; fi

command -v go >/dev/null || { echo "error: Go (>= 1.26) is required to build the node" >&2; exit 1; }
export GOTOOLCHAIN=local GOFLAGS=-modcacherw CGO_ENABLED=0
step() { printf '[build-node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# shellcheck source=scripts/lib/k8s-build.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/k8s-build.sh"

mkdir -p "$CACHE"
STAGE=$OUT.partial
mkdir -p "$STAGE"

build_containerd() {
  # containerd does not depend on the Kubernetes version: built once into its own cache dir
  # and copied into every node dir, so an older kubelet (scripts/compat.sh) costs only itself.
  # Own module: containerd's dependency versions must not move the kubelet's.
  local m=$CACHE/mod-containerd-$CONTAINERD_VERSION dir=$CACHE/bin-containerd-$CONTAINERD_VERSION
  local cmds=(containerd containerd-shim-runc-v2 ctr)
  mkdir -p "$dir"
  for c in "${cmds[@]}"; do
    [ -x "$dir/$c" ] && continue
    if [ ! -f "$m/go.sum" ]; then
      step "resolving containerd $CONTAINERD_VERSION"
      rm -rf "$m"; mkdir -p "$m"
      # A bare `go get containerd/v2@v` leaves go.sum incomplete: get each command package.
      (cd "$m" && go mod init local.invalid/containerd-bins >/dev/null 2>&1 &&
        go get $(for c in "${cmds[@]}"; do echo "github.com/containerd/containerd/v2/cmd/$c@$CONTAINERD_VERSION"; done) >&2)
    fi
    step "building $c $CONTAINERD_VERSION"
    (cd "$m" && go build -trimpath -tags "no_btrfs no_devmapper no_zfs no_aufs urfave_cli_no_docs" \
      -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
      -o "$dir/$c.tmp" "github.com/containerd/containerd/v2/cmd/$c")
    mv "$dir/$c.tmp" "$dir/$c"
  done
  for c in "${cmds[@]}"; do cp "$dir/$c" "$STAGE/$c"; done
}

start=$(date +%s)
# Own module dir (not the control plane's), so resolving the kubelet never rewrites the
# go.mod the control-plane build relies on.
build_k8s_commands "$CACHE/mod-k8s-node-$K8S_VERSION" "$STAGE" kubelet kube-scheduler
build_containerd
rm -rf "$OUT"
mv "$STAGE" "$OUT"
step "done in $(( $(date +%s) - start ))s: $OUT"
echo "$OUT"
