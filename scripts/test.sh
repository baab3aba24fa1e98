#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it:
#   scripts/test.sh
#
# Builds (once, cached in ~/.cache/otpilot) the control-plane binaries and test
# tools, starts a real etcd + kube-apiserver + kube-controller-manager on
# loopback, then runs formatting, lints, every test of the workspace, and the
# Helm chart checks against that API server. Then the end-to-end phase on a
# real node (scripts/node-e2e.sh: kubelet + containerd, real Pods; needs root),
# which ends with a check that the host is as it was. Fails, never skips, when
# anything it needs cannot start. Logs of a failed run are kept in
# .otpilot/control-plane (and .otpilot/node for the node phase).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export OTPILOT_CP_DIR=${OTPILOT_CP_DIR:-$ROOT/.otpilot/control-plane}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# CI builds from a clean clone once: incremental caches would only cost disk
# (~18 GB for the workspace's test binaries). A developer can set it to 1.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
started=$(date +%s)
section() { printf '\n=== %s (%ss)\n' "$*" "$(( $(date +%s) - started ))"; }

section "toolchain"
cargo --version; rustc --version; go version

section "control-plane binaries"
BIN=$(scripts/build-control-plane.sh)
echo "$BIN"

section "promtool"
# Prometheus' rule checker, for the chart's alerts (scripts/chart-check.sh);
# built once from the Go module proxy and cached like the control plane.
scripts/build-promtool.sh

section "node binaries and packages"
# kubelet, kube-scheduler, containerd (cached like the control plane); runc, CNI plugins...
scripts/install-node-packages.sh
scripts/build-node.sh

section "test tools"
# Assign first: `eval "$(cmd)"` would hide a failing cmd.
tool_env=$(scripts/test-tools.sh)
eval "$tool_env"
cargo nextest --version
"$OTPILOT_PYTHON" -c 'import pyotp; print("pyotp", pyotp.__version__ if hasattr(pyotp, "__version__") else "ok")'

section "format"
cargo fmt --all -- --check

section "dependency policy"
# One TLS stack for the whole workspace: rustls with the ring provider.
# `cargo tree` runs alone so that its failure stops the run (a pipeline ending
# in `|| true` would read a failed tree as "nothing banned").
tree=$(cargo tree --workspace --locked --prefix none -e normal,build,dev --format '{p}')
[ -n "$tree" ] || { echo "error: cargo tree printed nothing" >&2; exit 1; }
banned=$(printf '%s\n' "$tree" | awk '{print $1}' | sort -u \
  | grep -xE 'aws-lc-rs|aws-lc-sys|openssl|openssl-sys|native-tls' || true)
if [ -n "$banned" ]; then
  echo "error: banned TLS crates in the dependency graph: $banned (use rustls with ring)" >&2
  exit 1
fi
echo "rustls + ring only"

section "supply chain"
# cargo-deny with the checked-in deny.toml: advisories (RustSec), bans (one
# copy of each crate unless deny.toml says why, no rsa, one TLS stack),
# licenses (an allow-list) and sources (crates.io only). Offline, against the
# dated snapshot test-tools.sh cloned from ../shared/advisory-db: without it
# the run fails, it never skips. A release is also checked against the live
# database (SECURITY.md).
if [ -z "${OTPILOT_ADVISORY_DBS:-}" ] || [ ! -d "$OTPILOT_ADVISORY_DBS" ]; then
  echo "error: no advisory database snapshot (../shared/advisory-db/advisory-db.bundle beside the repo, or OTPILOT_ADVISORY_BUNDLE); cannot check advisories" >&2
  exit 1
fi
cargo deny --version
snapshot_date=$(git -C "$OTPILOT_ADVISORY_DBS"/advisory-db-* log -1 --format=%cs)
echo "advisory database snapshot of $snapshot_date ($(( ($(date +%s) - $(date -d "$snapshot_date" +%s)) / 86400 )) days old)"
cargo deny --offline --locked check advisories bans licenses sources

section "clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

section "docs"
# Every public item of the library crates documented (#![warn(missing_docs)]), and no broken
# intra-doc links: rustdoc's warnings are errors.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --locked --quiet

section "build tests"
cargo nextest run --workspace --locked --no-run

section "control plane up"
finish() {
  status=$?
  if [ "$status" -ne 0 ]; then
    OTPILOT_KEEP_LOGS=1 scripts/control-plane.sh down || true
    echo "FAILED (exit $status); control-plane logs kept in $OTPILOT_CP_DIR" >&2
  else
    scripts/control-plane.sh down 2>&1 || true
  fi
  # The plain closing line, last: the counts nextest reported (doc tests are
  # counted by cargo test above it).
  if [ -n "${passed:-}" ]; then echo "$passed passed, $failed failed"; fi
  exit "$status"
}
trap finish EXIT
scripts/control-plane.sh down >/dev/null 2>&1 || true
cp_env=$(scripts/control-plane.sh up)
eval "$cp_env"
export OTPILOT_TEST_KUBECONFIG

section "helm chart"
# Lint, render, server-side validation, install/upgrade/uninstall and the
# RBAC table, against the fresh control plane; it leaves only the CRDs.
scripts/chart-check.sh
"$BIN/kubectl" --kubeconfig "$OTPILOT_TEST_KUBECONFIG" wait --for=condition=Established --timeout=60s \
  crd/apicredentials.otpilot.dev crd/clientcas.otpilot.dev crd/clustermfaprofiles.otpilot.dev

section "secret ledger"
# Every secret the simulators create goes to the ledger, every process log and
# metrics scrape the harnesses keep to the artifacts; "secret scan" reads both.
export OTPILOT_SECRET_LEDGER=$ROOT/.otpilot/secret-ledger
export OTPILOT_RUN_ARTIFACTS=$ROOT/.otpilot/run-artifacts
rm -rf "$OTPILOT_SECRET_LEDGER" "$OTPILOT_RUN_ARTIFACTS"
mkdir -p "$OTPILOT_RUN_ARTIFACTS"
echo "$OTPILOT_SECRET_LEDGER, $OTPILOT_RUN_ARTIFACTS"

section "tests"
nextest_log=$(mktemp)
nextest_status=0
# node_e2e needs the real node: it is built and run in its own phase below
# (feature node-e2e of otpilot-tests), so this run neither builds nor lists it.
cargo nextest run --workspace --locked --no-fail-fast 2>&1 | tee "$nextest_log" || nextest_status=$?
# "Summary [  41s] 139 tests run: 137 passed, 2 failed, 0 skipped"
summary=$(grep -E '^ *Summary .* tests run: ' "$nextest_log" | tail -n 1 || true)
rm -f "$nextest_log"
counts=$(printf '%s' "$summary" | python3 "$ROOT/scripts/nextest-counts.py") || {
  echo "error: could not read nextest's summary line (${summary:-none}); its format changed?" >&2
  exit 1
}
read -r passed failed <<< "$counts"
[ "$nextest_status" -eq 0 ] || { echo "error: $failed test(s) failed" >&2; exit "$nextest_status"; }
cargo test --workspace --locked --doc

section "run-local check"
# The README's first command must keep working: bring it all up, verify, tear down.
OTPILOT_LOCAL_DIR=$ROOT/.otpilot/local-check OTPILOT_SIM_PORT=0 OTPILOT_SIM_ADMIN_PORT=0 scripts/run-local.sh --check

section "secret scan"
# No secret the run created in any process log, metrics scrape, Event, otpilot
# status or Lease (the audit log): counts and file:line only, never a value.
python3 scripts/secret-scan.py --ledger "$OTPILOT_SECRET_LEDGER" \
  "$OTPILOT_RUN_ARTIFACTS" "$OTPILOT_CP_DIR"/audit*.log
unset OTPILOT_SECRET_LEDGER OTPILOT_RUN_ARTIFACTS

section "end to end on a real node"
# Its own cluster (fixed 16xxx ports, the otpilotcni0 bridge): node up, the node_e2e tests
# with real Pods, node down, then the host must match the snapshot taken before.
node_log=$(mktemp)
node_status=0
scripts/node-e2e.sh 2>&1 | tee "$node_log" || node_status=$?
node_summary=$(grep -E '^ *Summary .* tests run: ' "$node_log" | tail -n 1 || true)
rm -f "$node_log"
if [ -n "$node_summary" ]; then
  read -r node_passed node_failed <<< "$(printf '%s' "$node_summary" | python3 "$ROOT/scripts/nextest-counts.py")"
  passed=$(( passed + node_passed )); failed=$(( failed + node_failed ))
fi
[ "$node_status" -eq 0 ] || { echo "error: the end-to-end phase on the node failed" >&2; exit "$node_status"; }

section "compatibility: the oldest Kubernetes claimed"
# scripts/compat.sh: v1.29.15 built and cached like v1.36.3; its own control plane (CRD
# validation table, operator, webhook), then node-e2e.sh on a v1.29.15 kubelet.
compat_log=$(mktemp)
compat_status=0
scripts/compat.sh 2>&1 | tee "$compat_log" || compat_status=$?
while read -r s; do
  read -r p f <<< "$(printf '%s' "$s" | python3 "$ROOT/scripts/nextest-counts.py")"
  passed=$(( passed + p )); failed=$(( failed + f ))
done < <(grep -E '^ *Summary .* tests run: ' "$compat_log" || true)
rm -f "$compat_log"
[ "$compat_status" -eq 0 ] || { echo "error: the compatibility phase failed" >&2; exit "$compat_status"; }

section "done"
echo "all checks passed in $(( $(date +%s) - started ))s"
