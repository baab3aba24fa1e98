#!/usr/bin/env bash
# Sidecar benchmarks, one command: bench/sidecar.sh
#
#  - /token requests/s and p99 at 64 connections (wrk), beside a minimal
#    hyper server returning a constant body, measured in the same run;
#  - RSS idle, and after 1 M /token requests;
#  - proxy overhead: the proxy vs calling the simulated vendor directly;
#  - release binary size; CPU time per 1,000 /token requests (sidecar and
#    constant server, from /proc/PID/stat);
#  - time to first token: process start to ready, and the vendor round trips
#    it took (the simulator's GET /stats), on loopback and with 100 ms of
#    vendor latency.
#
# Installs wrk (Debian package) when it is missing. Loopback only. Environment:
#   BENCH_DURATION (default 15s) length of each measured wrk run
#   BENCH_TOTAL    (default 1000000) /token requests before the RSS reading
#   BENCH_SKIP_BUILD=1 use the release binaries already in ${CARGO_TARGET_DIR:-target}/release
#   BENCH_RSS_ONLY=1   only the binary size and the RSS idle and after BENCH_TOTAL /token
#                      requests: builds the release sidecar alone (the vendor fixture in a
#                      debug build: its speed does not change the sidecar's memory)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/debian-packages.sh
ensure_debian_packages bench wrk curl
for port in 18180 18181 18182 18183 18184; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "bench/sidecar.sh: port $port is in use (a previous run still going?)" >&2; exit 1
  fi
done

DUR=${BENCH_DURATION:-15s}
TOTAL=${BENCH_TOTAL:-1000000}
API=127.0.0.1:18181
PROXY=127.0.0.1:18182
CONST=127.0.0.1:18180
T=${CARGO_TARGET_DIR:-target}/release

RSS_ONLY=${BENCH_RSS_ONLY:-0}
VENDOR=$T/examples/bench_vendor
if [ "$RSS_ONLY" = 1 ]; then
  VENDOR=${CARGO_TARGET_DIR:-target}/debug/examples/bench_vendor
  [ "${BENCH_SKIP_BUILD:-0}" = 1 ] || { cargo build --release -q -p otpilot-sidecar --bin otpilot-sidecar \
    && cargo build -q -p otpilot-sidecar --example bench_vendor; }
else
  [ "${BENCH_SKIP_BUILD:-0}" = 1 ] || cargo build --release -q -p otpilot-sidecar --bin otpilot-sidecar \
    --example constant_server --example bench_vendor
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

vendor_calls() { curl -sf --max-time 5 "$ADMIN_URL/stats" | sed -n 's/.*"vendorRequests":\([0-9]*\).*/\1/p'; }
cpu_ms() { awk '{ print ($14 + $15) * 1000 / '"$(getconf CLK_TCK)"' }' "/proc/$1/stat"; }
# start_sidecar API_ADDR PROXY_ADDR LOG: starts a sidecar, waits for ready,
# prints "PID MS CALLS" (ms from spawn to ready, vendor calls meanwhile).
start_sidecar() {
  local calls0 t0 t1 pid
  calls0=$(vendor_calls)
  t0=$(date +%s%N)
  $T/otpilot-sidecar run --runtime-dir "$WORK/runtime" --password-file "$WORK/password" \
    --api-key-file "$WORK/api-key" --api-addr "$1" --proxy-addr "$2" >"$3" 2>&1 &
  pid=$!
  until ! kill -0 "$pid" 2>/dev/null || $T/otpilot-sidecar probe ready --api-addr "$1" 2>/dev/null; do sleep 0.002; done
  t1=$(date +%s%N)
  kill -0 "$pid" 2>/dev/null || { cat "$3" >&2; echo "the sidecar exited" >&2; exit 1; }
  echo "$pid $(((t1 - t0) / 1000000)) $(($(vendor_calls) - calls0))"
}
rss_kib() { awk '/^(VmRSS|RssAnon|RssFile):/ {printf "%s%s ", (n++ ? "" : ""), $1 $2} END {print ""}' "/proc/$1/status"; }
# wrk --latency: requests/s, p50 and p99 in ms, total requests.
wrk_summary() {
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    / requests in / { n = $1 }
    END { printf "%s %.3f %.3f %s\n", rps, p50, p99, n }' "$1"
}

echo "## machine: $(nproc) cores, $(uname -r), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
echo "binary_size_bytes=$(stat -c %s $T/otpilot-sidecar)"

$VENDOR "$WORK" >"$WORK/vendor.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 600); do grep -q '^READY' "$WORK/vendor.out" && break; sleep 0.1; done
grep -q '^READY' "$WORK/vendor.out" || { cat "$WORK/vendor.out"; echo "vendor fixture did not start" >&2; exit 1; }
BASE_URL=$(sed -n 's/^BASE_URL=//p' "$WORK/vendor.out")
ADMIN_URL=$(sed -n 's/^ADMIN_URL=//p' "$WORK/vendor.out")

read -r SIDECAR ttft_ms ttft_calls < <(start_sidecar "$API" "$PROXY" "$WORK/sidecar.log")
PIDS+=($SIDECAR)
echo "start_to_ready_ms=$ttft_ms vendor_round_trips=$ttft_calls (loopback, no added latency)"
FIRST_LOGIN=$(date +%s)
sleep 2
echo "rss_idle_kib=$(rss_kib $SIDECAR)"

if [ "$RSS_ONLY" = 1 ]; then
  done_requests=0
  while [ "$done_requests" -lt "$TOTAL" ]; do
    wrk -t2 -c64 -d10s -H 'Otpilot-Request: true' "http://$API/token" >"$WORK/more.txt"
    read -r _ _ _ n < <(wrk_summary "$WORK/more.txt")
    done_requests=$((done_requests + n))
  done
  echo "rss_after_kib=$(rss_kib $SIDECAR) after $done_requests /token requests"
  exit 0
fi

$T/examples/constant_server "$CONST" &
CONST_PID=$!
PIDS+=($CONST_PID)
sleep 0.3

# Warm-up, then the two measured runs back to back.
wrk -t2 -c64 -d2s -H 'Otpilot-Request: true' "http://$API/token" >/dev/null
wrk -t2 -c64 -d2s "http://$CONST/" >/dev/null
t_cpu0=$(cpu_ms "$SIDECAR")
wrk -t2 -c64 -d"$DUR" --latency -H 'Otpilot-Request: true' "http://$API/token" >"$WORK/token.txt"
t_cpu1=$(cpu_ms "$SIDECAR")
c_cpu0=$(cpu_ms "$CONST_PID")
wrk -t2 -c64 -d"$DUR" --latency "http://$CONST/" >"$WORK/const.txt"
c_cpu1=$(cpu_ms "$CONST_PID")
read -r t_rps t_p50 t_p99 t_n < <(wrk_summary "$WORK/token.txt")
read -r c_rps c_p50 c_p99 c_n < <(wrk_summary "$WORK/const.txt")
echo "token: rps=$t_rps p50_ms=$t_p50 p99_ms=$t_p99"
echo "constant hyper server: rps=$c_rps p50_ms=$c_p50 p99_ms=$c_p99"
awk -v a="$t_rps" -v b="$c_rps" 'BEGIN { printf "ratio_rps=%.3f\n", a / b }'
awk -v a="$t_cpu0" -v b="$t_cpu1" -v n="$t_n" -v c="$c_cpu0" -v d="$c_cpu1" -v m="$c_n" \
  'BEGIN { printf "cpu_ms_per_1000: token=%.1f constant=%.1f ratio=%.2f\n", (b - a) * 1000 / n, (d - c) * 1000 / m, ((b - a) / n) / ((d - c) / m) }'

done_requests=$t_n
while [ "$done_requests" -lt "$TOTAL" ]; do
  wrk -t2 -c64 -d10s -H 'Otpilot-Request: true' "http://$API/token" >"$WORK/more.txt"
  read -r _ _ _ n < <(wrk_summary "$WORK/more.txt")
  done_requests=$((done_requests + n))
done
echo "rss_after_kib=$(rss_kib $SIDECAR) after $done_requests /token requests"

TOKEN=$(curl -sf --max-time 5 -H 'Otpilot-Request: true' -H 'Accept: text/plain' "http://$API/token")
[ -n "$TOKEN" ] || { echo "no token" >&2; exit 1; }
# Proxy overhead: GET /authentication/user, 8 connections.
wrk -t2 -c8 -d2s -H "Authorization: Bearer $TOKEN" "$BASE_URL/authentication/user" >/dev/null
wrk -t2 -c8 -d2s "http://$PROXY/authentication/user" >/dev/null
wrk -t2 -c8 -d"$DUR" --latency -H "Authorization: Bearer $TOKEN" "$BASE_URL/authentication/user" >"$WORK/direct.txt"
wrk -t2 -c8 -d"$DUR" --latency "http://$PROXY/authentication/user" >"$WORK/proxy.txt"
read -r d_rps d_p50 d_p99 _ < <(wrk_summary "$WORK/direct.txt")
read -r p_rps p_p50 p_p99 _ < <(wrk_summary "$WORK/proxy.txt")
grep -q 'Non-2xx' "$WORK/proxy.txt" "$WORK/direct.txt" && { echo "non-2xx answers:" >&2; cat "$WORK/proxy.txt" "$WORK/direct.txt" >&2; exit 1; }
echo "vendor direct (https): rps=$d_rps p50_ms=$d_p50 p99_ms=$d_p99"
echo "through the proxy (http→https): rps=$p_rps p50_ms=$p_p50 p99_ms=$p_p99"
awk -v a="$p_p50" -v b="$d_p50" -v c="$p_rps" -v d="$d_rps" \
  'BEGIN { printf "proxy_overhead_p50=%+.1f%% proxy_rps_ratio=%.3f\n", (a / b - 1) * 100, c / d }'

# The same with 20 ms of vendor latency (a vendor on the network, not on
# loopback), 64 connections: the proxy's cost relative to a realistic call.
curl -sf --max-time 5 -X PUT -H 'Content-Type: application/json' \
  -d '{"latencyMs":20}' "$ADMIN_URL/faults" >/dev/null
wrk -t2 -c64 -d"$DUR" --latency -H "Authorization: Bearer $TOKEN" "$BASE_URL/authentication/user" >"$WORK/direct20.txt"
wrk -t2 -c64 -d"$DUR" --latency "http://$PROXY/authentication/user" >"$WORK/proxy20.txt"
read -r d_rps d_p50 d_p99 _ < <(wrk_summary "$WORK/direct20.txt")
read -r p_rps p_p50 p_p99 _ < <(wrk_summary "$WORK/proxy20.txt")
echo "vendor direct, 20 ms latency: rps=$d_rps p50_ms=$d_p50 p99_ms=$d_p99"
echo "through the proxy, 20 ms latency: rps=$p_rps p50_ms=$p_p50 p99_ms=$p_p99"
awk -v a="$p_p50" -v b="$d_p50" -v c="$p_rps" -v d="$d_rps" \
  'BEGIN { printf "proxy_overhead_p50_20ms=%+.1f%% proxy_rps_ratio_20ms=%.3f\n", (a / b - 1) * 100, c / d }'

# Time to first token with 100 ms on every vendor call (a vendor across the
# internet): a second sidecar on other ports, after the first one's TOTP
# step has passed (the account accepts each code once).
wait_s=$((FIRST_LOGIN + 31 - $(date +%s)))
[ "$wait_s" -le 0 ] || sleep "$wait_s"
curl -sf --max-time 5 -X PUT -H 'Content-Type: application/json' \
  -d '{"latencyMs":100}' "$ADMIN_URL/faults" >/dev/null
read -r SIDECAR2 ttft_ms ttft_calls < <(start_sidecar 127.0.0.1:18183 127.0.0.1:18184 "$WORK/sidecar2.log")
PIDS+=($SIDECAR2)
echo "start_to_ready_ms_100ms_vendor=$ttft_ms vendor_round_trips=$ttft_calls"
