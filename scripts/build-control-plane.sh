#!/usr/bin/env bash
# Build, once, the control-plane binaries tests need, from the Go module proxy,
# and cache them outside the repo. A warm cache answers in well under a second.
#
#   scripts/build-control-plane.sh        # prints the directory holding the binaries
#
# Output: $OTPILOT_CACHE/bin-<versions>/{etcd,kube-apiserver,kube-controller-manager,kubectl,helm}
# Nothing built here is ever committed.
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

mkdir -p "$CACHE"
STAGE=$OUT.partial
mkdir -p "$STAGE"
MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
STAGING=v0.${K8S_VERSION#v1.}

build_kubernetes() {
  local m=$CACHE/mod-k8s-$K8S_VERSION
  if [ ! -f "$m/go.sum" ] || ! grep -q "k8s.io/kubernetes $K8S_VERSION" "$m/go.mod" 2>/dev/null; then
    step "resolving k8s.io/kubernetes $K8S_VERSION (staging modules at $STAGING)"
    rm -rf "$m"; mkdir -p "$m"
    (
      cd "$m"
      go mod init local.invalid/k8s-bins >/dev/null 2>&1
      local gomod
      gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
      # k8s.io/kubernetes pins its staging modules at v0.0.0 via ./staging replaces;
      # replace each with the published module of the matching version.
      for s in $(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$gomod"); do
        go mod edit -replace="$s=$s@$STAGING"
      done
      local gd
      gd=$(sed -n 's/^godebug default=\(go[0-9.]*\)$/\1/p' "$gomod")
      if [ -n "$gd" ]; then go mod edit -godebug="default=$gd"; fi
      go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
             "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
             "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION" >&2
    )
  fi
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  for cmd in kube-apiserver kube-controller-manager kubectl; do
    [ -x "$STAGE/$cmd" ] && continue
    step "building $cmd $K8S_VERSION (cold: several minutes on 2 cores)"
    (cd "$m" && go build -trimpath -tags selinux,notest -ldflags "$ld" -o "$STAGE/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
    mv "$STAGE/$cmd.tmp" "$STAGE/$cmd"
  done
}

build_etcd() {
  [ -x "$STAGE/etcd" ] && return
  # Own module, so the server's etcd version does not raise kube-apiserver's etcd client.
  local m=$CACHE/mod-etcd-$ETCD_VERSION
  step "building etcd $ETCD_VERSION"
  rm -rf "$m"; mkdir -p "$m"
  (
    cd "$m"
    go mod init local.invalid/etcd-bin >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
    go build -trimpath -ldflags "-s -w" -o "$STAGE/etcd.tmp" go.etcd.io/etcd/server/v3
  )
  mv "$STAGE/etcd.tmp" "$STAGE/etcd"
}

build_helm() {
  [ -x "$STAGE/helm" ] && return
  step "building helm $HELM_VERSION"
  GOBIN=$STAGE go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

start=$(date +%s)
build_etcd
build_helm
build_kubernetes
rm -rf "$OUT"
mv "$STAGE" "$OUT"
step "done in $(( $(date +%s) - start ))s: $OUT"
echo "$OUT"
