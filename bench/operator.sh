#!/usr/bin/env bash
# Operator at scale, one command: bench/operator.sh
#
# For each N in BENCH_OPERATOR_COUNTS (default "100 1000 10000"), in its own
# namespace, with a fresh simulator (goaxr, N accounts, every vendor call
# delayed by BENCH_VENDOR_LATENCY_MS) and a fresh release operator process
# watching only that namespace:
#  - baselines first: the operator's RSS with 0 credentials, the API server's
#    RSS;
#  - N ApiCredentials created by one `kubectl create -f` (its time is a
#    baseline: what the API server takes to store them);
#  - wall time from the start of the create to all N Ready (the operator's
#    credential_ready gauges, confirmed by listing the objects), the
#    operator's peak RSS (VmHWM), the reconcile rate, vendor calls per
#    credential (the simulator's GET /stats);
#  - then idle: RSS 20 s after the last Ready, and the time of one
#    `kubectl get` list of the same N objects (baseline).
# When N cannot reach Ready within BENCH_READY_TIMEOUT, the run says how
# many were Ready and what the others' Ready reasons were, and goes on.
#
# Its own control plane (scripts/control-plane.sh, state in
# .otpilot/bench-operator-cp); loopback only; not part of the test suite.
# Environment:
#   BENCH_OPERATOR_COUNTS   (default "100 1000 10000")
#   BENCH_VENDOR_LATENCY_MS (default 100) added to every vendor answer
#   BENCH_TOTP_PERIOD       (default 30) the vendor's TOTP period, seconds
#   BENCH_READY_TIMEOUT     (default 1800) seconds per N
#   BENCH_SKIP_BUILD=1      use the release binaries already in ${CARGO_TARGET_DIR:-target}/release
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

COUNTS=${BENCH_OPERATOR_COUNTS:-100 1000 10000}
LATENCY_MS=${BENCH_VENDOR_LATENCY_MS:-100}
PERIOD=${BENCH_TOTP_PERIOD:-30}
READY_TIMEOUT=${BENCH_READY_TIMEOUT:-1800}
PASSWORD=bench-Tr0ub4dor-pw
API_KEY=bench-ak-9XqLmV2sPz7Kd
T=${CARGO_TARGET_DIR:-target}/release

[ "${BENCH_SKIP_BUILD:-0}" = 1 ] || cargo build --release -q -p otpilot-operator -p otpilot-sim --bins
BIN=$(scripts/build-control-plane.sh)
KUBECTL=$BIN/kubectl

WORK=$(mktemp -d)
PIDS=()
export OTPILOT_CP_DIR=$ROOT/.otpilot/bench-operator-cp
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/control-plane.sh down >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
scripts/control-plane.sh down >/dev/null 2>&1 || true
eval "$(scripts/control-plane.sh up)"
k() { "$KUBECTL" --kubeconfig "$OTPILOT_TEST_KUBECONFIG" "$@"; }
k apply -f crds/ >/dev/null
k wait --for=condition=Established --timeout=60s \
  crd/apicredentials.otpilot.dev crd/clientcas.otpilot.dev crd/clustermfaprofiles.otpilot.dev >/dev/null
APISERVER_PID=$(cat "$OTPILOT_CP_DIR/kube-apiserver.pid")

status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
metric_sum() { # sum of a metric's series in the operator's /metrics
  curl -sf --max-time 10 "http://$ADMIN/metrics" |
    awk -v m="$1" 'index($0, m) == 1 && (substr($0, length(m) + 1, 1) ~ /[{ ]/) { s += $NF } END { print s + 0 }'
}
ready_listed() { # Ready=True count, from the API server
  k get apicredentials -n "$NS" \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$' || true
}

echo "## machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), $(uname -r); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "## load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## vendor: goaxr simulator, ${LATENCY_MS} ms added to every call, TOTP period ${PERIOD} s; operator: release build"

for N in $COUNTS; do
  NS=bench-$N
  echo
  echo "### N=$N"
  k create namespace "$NS" >/dev/null

  # The simulator, with N accounts (usernames bot0..), through the admin API
  # would be N calls: they go on the command line instead.
  python3 -c "import sys; print('\n'.join(f'--account=bot{i}@example.com:$PASSWORD:$API_KEY' for i in range(int(sys.argv[1]))))" "$N" >"$WORK/accounts"
  mapfile -t ACCOUNTS <"$WORK/accounts"
  $T/otpilot-sim --vendor goaxr --port 0 --admin-port 0 --state-dir "$WORK/sim-$N" \
    --totp-period "${PERIOD}s" "${ACCOUNTS[@]}" >"$WORK/sim-$N.out" 2>"$WORK/sim-$N.log" &
  SIM=$!
  PIDS+=("$SIM")
  for _ in $(seq 1 600); do grep -q '^admin URL' "$WORK/sim-$N.out" && break; sleep 0.1; done
  BASE_URL=$(sed -n 's/^vendor URL: //p' "$WORK/sim-$N.out")
  SIM_ADMIN=$(sed -n 's/^admin URL: *//p' "$WORK/sim-$N.out")
  [ -n "$SIM_ADMIN" ] || { cat "$WORK/sim-$N.log" >&2; echo "simulator did not start" >&2; exit 1; }
  curl -sf -X PUT -H 'Content-Type: application/json' -d "{\"latencyMs\":$LATENCY_MS}" "$SIM_ADMIN/faults" >/dev/null

  k -n "$NS" create secret generic vendor-login \
    --from-literal=password="$PASSWORD" --from-literal=api-key="$API_KEY" >/dev/null
  k -n "$NS" create configmap vendor-ca --from-file=ca.crt="$WORK/sim-$N/server-ca.pem" >/dev/null

  ADMIN=127.0.0.1:$(free_port)
  env -i PATH="$PATH" KUBECONFIG="$OTPILOT_TEST_KUBECONFIG" OTPILOT_NAMESPACE="$NS" \
    OTPILOT_WATCH_NAMESPACE="$NS" OTPILOT_ADMIN_ADDR="$ADMIN" OTPILOT_LEASE_NAME="bench-$N" \
    OTPILOT_CLIENT_CA_SELECTOR="otpilot.dev/bench=$NS" RUST_LOG=info \
    $T/otpilot-operator run >/dev/null 2>"$WORK/operator-$N.log" &
  OP=$!
  PIDS+=("$OP")
  until curl -sf --max-time 1 "http://$ADMIN/metrics" 2>/dev/null | grep -qx 'otpilot_operator_leader 1'; do
    kill -0 "$OP" 2>/dev/null || { tail -20 "$WORK/operator-$N.log" >&2; echo "operator exited" >&2; exit 1; }
    sleep 0.2
  done
  sleep 3
  echo "baseline: operator RSS with 0 credentials: $(mib "$(status_kib "$OP" VmRSS)") MiB; kube-apiserver RSS: $(mib "$(status_kib "$APISERVER_PID" VmRSS)") MiB"
  calls_before=$(curl -sf "$SIM_ADMIN/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vendorRequests"])')

  python3 - "$N" "$BASE_URL" "$PERIOD" >"$WORK/credentials-$N.yaml" <<'EOF'
import sys
n, base_url, period = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(n):
    print(f"""---
apiVersion: otpilot.dev/v1alpha1
kind: ApiCredential
metadata: {{name: bot{i}}}
spec:
  profile: goaxr
  baseUrl: {base_url}
  serverCa: {{name: vendor-ca, key: ca.crt}}
  username: bot{i}@example.com
  passwordSecretRef: {{name: vendor-login, key: password}}
  apiKeySecretRef: {{name: vendor-login, key: api-key}}
  totp: {{period: {period}}}
  deletionPolicy: Retain""")
EOF
  started=$(now)
  k -n "$NS" create -f "$WORK/credentials-$N.yaml" >/dev/null
  create_s=$(since "$started")
  echo "baseline: kubectl create of the $N ApiCredentials: ${create_s} s"

  ready=0
  deadline=$(($(date +%s) + READY_TIMEOUT))
  while :; do
    ready=$(metric_sum otpilot_operator_credential_ready)
    if [ "$ready" -ge "$N" ] && [ "$(ready_listed)" -ge "$N" ]; then break; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then break; fi
    kill -0 "$OP" 2>/dev/null || { tail -20 "$WORK/operator-$N.log" >&2; echo "operator exited" >&2; exit 1; }
    sleep 1
  done
  wall=$(since "$started")
  listed=$(ready_listed)
  reconciles=$(metric_sum otpilot_operator_reconciles_total)
  errors=$(metric_sum otpilot_operator_reconcile_errors_total)
  calls=$(($(curl -sf "$SIM_ADMIN/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vendorRequests"])') - calls_before))
  if [ "$listed" -ge "$N" ]; then
    echo "all $N Ready in ${wall} s (from the start of the create)"
  else
    echo "NOT all Ready after ${wall} s: $listed of $N Ready; Ready reasons of all $N:"
    k get apicredentials -n "$NS" \
      -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].reason}{"\n"}{end}' |
      sort | uniq -c | sed 's/^/    /'
  fi
  echo "operator peak RSS (VmHWM): $(mib "$(status_kib "$OP" VmHWM)") MiB; RSS at the end: $(mib "$(status_kib "$OP" VmRSS)") MiB"
  awk -v r="$reconciles" -v e="$errors" -v w="$wall" -v n="$N" -v c="$calls" -v l="$listed" 'BEGIN {
    printf "reconciles: %d (%.1f per credential, %d errors), %.1f reconciles/s; Ready per second: %.1f\n", r, r / n, e, r / w, l / w
    printf "vendor calls: %d, %.2f per credential\n", c, c / n }'

  sleep 20
  idle_calls=$(($(curl -sf "$SIM_ADMIN/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vendorRequests"])') - calls_before - calls))
  echo "idle 20 s later: operator RSS $(mib "$(status_kib "$OP" VmRSS)") MiB, CPU total $(awk '{printf "%.1f", ($14 + $15) / 100}' "/proc/$OP/stat") s; vendor calls while idle: $idle_calls; kube-apiserver RSS: $(mib "$(status_kib "$APISERVER_PID" VmRSS)") MiB"
  t=$(now)
  k get apicredentials -n "$NS" -o name | wc -l >/dev/null
  echo "baseline: kubectl get of the $N objects (names only): $(since "$t") s"
  t=$(now)
  k get apicredentials -n "$NS" -o json >/dev/null
  echo "baseline: kubectl get of the $N objects (full JSON): $(since "$t") s"

  kill "$OP" "$SIM" 2>/dev/null || true
  wait "$OP" "$SIM" 2>/dev/null || true
done
echo
echo "## load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
