#!/usr/bin/env bash
# Build, once, the control-plane binaries tests need, from the Go module proxy,
# and cache them outside the repo. A warm cache answers in well under a second.
#
#   scripts/build-control-plane.sh        # prints the directory holding the binaries
#
# Output: $OTPILOT_CACHE/bin-<versions>/{etcd,kube-apiserver,kube-controller-manager,kubectl,helm}
# Nothing built here is ever committed. The node's binaries (kubelet, kube-scheduler,
# containerd): scripts/build-node.sh, sharing scripts/lib/k8s-build.sh.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
CACHE=${OTPILOT_CACHE:-$HOME/.cache/otpilot}
OUT=$CACHE/bin-k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION

BINARIES=(etcd kube-apiserver kube-controller-manager kubectl helm)

complete() { for b in "${BINARIES[@]}"; do [ -x "$OUT/$b" ] || return 1; done; }
if complete; then echo "$OUT"; exit 0; fi

command -v go >/dev/null || { echo "error: Go (>= 1.26) is required to build the control plane" >&2; exit 1; }
export GOTOOLCHAIN=local GOFLAGS=-modcacherw CGO_ENABLED=0
step() { printf '[build-control-plane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# shellcheck source=scripts/lib/k8s-build.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/k8s-build.sh"

mkdir -p "$CACHE"
STAGE=$OUT.partial
mkdir -p "$STAGE"

build_kubernetes() {
  build_k8s_commands "$CACHE/mod-k8s-$K8S_VERSION" "$STAGE" kube-apiserver kube-controller-manager kubectl
}

# etcd and helm do not depend on the Kubernetes version: each is built once into its own
# cache dir and copied into every control-plane dir, so a second (older) Kubernetes
# version (scripts/compat.sh) costs only its own binaries.
build_etcd() {
  [ -x "$STAGE/etcd" ] && return
  local cached=$CACHE/bin-etcd-$ETCD_VERSION/etcd
  if [ ! -x "$cached" ]; then
    # Own module, so the server's etcd version does not raise kube-apiserver's etcd client.
    local m=$CACHE/mod-etcd-$ETCD_VERSION
    step "building etcd $ETCD_VERSION"
    rm -rf "$m"; mkdir -p "$m" "${cached%/*}"
    (
      cd "$m"
      go mod init local.invalid/etcd-bin >/dev/null 2>&1
      go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
      go build -trimpath -ldflags "-s -w" -o "$cached.tmp" go.etcd.io/etcd/server/v3
    )
    mv "$cached.tmp" "$cached"
  fi
  cp "$cached" "$STAGE/etcd"
}

build_helm() {
  [ -x "$STAGE/helm" ] && return
  local dir=$CACHE/bin-helm-$HELM_VERSION
  if [ ! -x "$dir/helm" ]; then
    step "building helm $HELM_VERSION"
    mkdir -p "$dir"
    GOBIN=$dir.partial go install -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
      "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    mv "$dir.partial/helm" "$dir/helm"; rmdir "$dir.partial"
  fi
  cp "$dir/helm" "$STAGE/helm"
}

start=$(date +%s)
build_etcd
build_helm
build_kubernetes
rm -rf "$OUT"
mv "$STAGE" "$OUT"
step "done in $(( $(date +%s) - start ))s: $OUT"
echo "$OUT"
