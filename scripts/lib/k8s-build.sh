# Shared by scripts/build-control-plane.sh and scripts/build-node.sh (sourced, not run):
# build k8s.io/kubernetes commands at $K8S_VERSION from the Go module proxy.
# Needs: K8S_VERSION, a `step` logging function, GOTOOLCHAIN/GOFLAGS/CGO_ENABLED exported.

# build_k8s_commands MODULE_DIR OUT_DIR CMD... : resolve (once) a module requiring the given
# k8s.io/kubernetes/cmd/* packages, then build each missing OUT_DIR/CMD.
build_k8s_commands() {
  local m=$1 out=$2; shift 2
  local minor staging
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  staging=v0.${K8S_VERSION#v1.}
  if [ ! -f "$m/go.sum" ] || ! grep -q "k8s.io/kubernetes $K8S_VERSION" "$m/go.mod" 2>/dev/null; then
    step "resolving k8s.io/kubernetes $K8S_VERSION (staging modules at $staging)"
    rm -rf "$m"; mkdir -p "$m"
    (
      cd "$m"
      go mod init local.invalid/k8s-bins >/dev/null 2>&1
      local gomod
      gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
      # k8s.io/kubernetes pins its staging modules at v0.0.0 via ./staging replaces;
      # replace each with the published module of the matching version.
      for s in $(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$gomod"); do
        go mod edit -replace="$s=$s@$staging"
      done
      # Run-time defaults (GODEBUG) of the Go the release was made for, not of this newer Go:
      # its own `godebug default=` (1.30+), else its `go` line (1.29 says go 1.21).
      local gd
      gd=$(sed -n 's/^godebug default=\(go[0-9.]*\)$/\1/p' "$gomod")
      [ -n "$gd" ] || gd=$(sed -n 's/^go \([0-9]*\.[0-9]*\).*$/go\1/p' "$gomod" | head -n 1)
      if [ -n "$gd" ]; then go mod edit -godebug="default=$gd"; fi
      go get $(for c in "$@"; do echo "k8s.io/kubernetes/cmd/$c@$K8S_VERSION"; done) >&2
    )
  fi
  local ld="-s -w" p cmd
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  for cmd in "$@"; do
    [ -x "$out/$cmd" ] && continue
    step "building $cmd $K8S_VERSION (cold: several minutes on 2 cores)"
    (cd "$m" && go build -trimpath -tags selinux,notest -ldflags "$ld" -o "$out/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
    mv "$out/$cmd.tmp" "$out/$cmd"
  done
}
