#!/usr/bin/env bash
# The long-lived-process run of issue 20: ONE authgate process (one worker thread, access log
# off, plain HTTP listener; bench/run.sh's config) in front of a real upstream (nginx `return
# 200`), driven with the same ES256 bearer token on every request by consecutive wrk runs
# (wrk -t1 -c16) of INTERVAL seconds for DURATION seconds, all against that same process. After
# each interval: requests/s (wrk), CPU µs/request (utime+stime of the authgate process over the
# interval / the requests of the interval), RSS (VmRSS) and p99 latency. The process should stay
# flat: first minute vs last minute within noise, RSS not growing.
#
# Writes bench/results/longrun.csv (t_seconds,requests_per_s,cpu_us_per_request,rss_mb,p99_ms),
# bench/results/longrun.md (first vs last minute medians, their ratios, the verdict) and the plot
# bench/results/longrun.svg (bench/plot_longrun.py).
#
#   bash bench/longrun.sh                          # DURATION=300 INTERVAL=10
#   DURATION=40 INTERVAL=5 bash bench/longrun.sh   # a quick check of the script
#
# Other knobs: CONNECTIONS=16 (wrk -c), WARMUP=2 (seconds of wrk before the first interval, not
# recorded), WINDOW=60 (seconds compared at the start and at the end; half the run when the run is
# shorter than two windows), THRESHOLD=10 (percent: the largest last/first change of req/s, CPU
# µs/request and RSS still called flat), RESULTS_DIR=bench/results (where the three files go).
# Everything on 127.0.0.1 (ports 18243, 18280, 18284, 18290); stops every process it starts.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init longrun
raise_fd_limit
DURATION=${DURATION:-300}
INTERVAL=${INTERVAL:-10}
CONNECTIONS=${CONNECTIONS:-16}
WARMUP=${WARMUP:-2}
WINDOW=${WINDOW:-60}
THRESHOLD=${THRESHOLD:-10}
RESULTS_DIR=${RESULTS_DIR:-bench/results}
# The bench tokens expire 2 hours after minting.
[ "$DURATION" -ge "$INTERVAL" ] && [ "$DURATION" -lt 7000 ] ||
  { echo "DURATION must be at least INTERVAL and under 7000 s (the token's lifetime)" >&2; exit 1; }
COMMAND="DURATION=$DURATION INTERVAL=$INTERVAL bash bench/longrun.sh"
[ "$CONNECTIONS" = 16 ] || COMMAND="CONNECTIONS=$CONNECTIONS $COMMAND"
[ "$WARMUP" = 2 ] || COMMAND="WARMUP=$WARMUP $COMMAND"
[ "$WINDOW" = 60 ] || COMMAND="WINDOW=$WINDOW $COMMAND"
[ "$THRESHOLD" = 10 ] || COMMAND="THRESHOLD=$THRESHOLD $COMMAND"

install_tools nginx wrk
require_tools python3 curl
port_free 18243 18280 18284 18290
build_release mint
mint_keygen
SAME=$(mint_tokens 1)

nginx_upstream_conf 18280 > "$WORK/upstream.conf"
mkdir -p "$WORK/authgate"
gateway_conf 18243 18284 18280 18290 20000 > "$WORK/authgate/gateway.toml"
start upstream nginx -p "$WORK" -c "$WORK/upstream.conf"; wait_port 18280
start authgate "$BIN" serve --config "$WORK/authgate/gateway.toml"; wait_port 18284 10 "$WORK/authgate.log"
AG=$STARTED
URL=http://127.0.0.1:18284/bench
AUTH="Authorization: Bearer $SAME"
# Sanity: the token is accepted (a refusal would look cheap) and required.
curl -sf -o /dev/null -H "$AUTH" "$URL" || { echo "authgate refused the bench token" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL")" = 401 ] || { echo "authgate let a request without a token through" >&2; exit 1; }

ms() { # wrk's latency (512.00us, 1.23ms, 1.00s) in ms
  awk -v v="$1" 'BEGIN{ n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    printf "%.3f", u == "us" ? n / 1000 : u == "s" ? n * 1000 : u == "m" ? n * 60000 : n }'
}

mkdir -p "$RESULTS_DIR"
CSV=$RESULTS_DIR/longrun.csv
echo "t_seconds,requests_per_s,cpu_us_per_request,rss_mb,p99_ms" > "$CSV"
if [ "$WARMUP" -gt 0 ]; then
  wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -H "$AUTH" "$URL" > /dev/null
fi
intervals=$(((DURATION + INTERVAL - 1) / INTERVAL))
echo "== $intervals intervals of ${INTERVAL}s against authgate pid $AG (wrk -t1 -c$CONNECTIONS, same token)"
TOTAL=0 NON2XX=0 ERRORS=0
T0=$EPOCHREALTIME
for i in $(seq "$intervals"); do
  before=$(ticks "$AG")
  wrk -t1 -c"$CONNECTIONS" -d"${INTERVAL}s" --latency -H "$AUTH" "$URL" > "$WORK/wrk.out"
  after=$(ticks "$AG")
  [ -r "/proc/$AG/status" ] || { echo "authgate (pid $AG) is gone" >&2; cat "$WORK/authgate.log" >&2; exit 1; }
  rss=$(awk '/^VmRSS:/{printf "%.1f", $2 / 1024}' "/proc/$AG/status")
  t=$(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b - a}')
  wrk_stats "$WORK/wrk.out"
  rps=$(awk '/Requests\/sec/{printf "%.1f", $2}' "$WORK/wrk.out")
  cpu=$(cpu_us $((after - before)) "$WRK_N" 2)
  p99=$(ms "$WRK_P99")
  echo "$t,$rps,$cpu,$rss,$p99" >> "$CSV"
  TOTAL=$((TOTAL + WRK_N)); NON2XX=$((NON2XX + WRK_NON2XX))
  ERRORS=$((ERRORS + $(awk '/Socket errors/{gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$WORK/wrk.out" | tail -1) + 0))
  printf '%6ss  %10s req/s  %7s CPU µs/req  %6s MB  p99 %s ms  (non-2xx %s)\n' \
    "$t" "$rps" "$cpu" "$rss" "$p99" "$WRK_NON2XX"
done
HWM=$(( $(hwm_kb "$AG") / 1024 ))

# The report: first vs last window, from the CSV.
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || COMMIT="$COMMIT (with uncommitted changes)"
MACHINE=$(machine_desc) DATE=$DATE COMMIT=$COMMIT COMMAND=$COMMAND python3 - "$CSV" "$INTERVAL" "$WINDOW" \
  "$THRESHOLD" "$WARMUP" "$CONNECTIONS" "$HWM" "$TOTAL" "$NON2XX" "$ERRORS" > "$RESULTS_DIR/longrun.md" <<'PY'
import os, statistics, sys
sys.dont_write_bytecode = True  # no bench/__pycache__/ in the tree
sys.path.insert(0, "bench")
from plot_longrun import read_csv, windows
csv, interval, window, threshold, warmup, conns, hwm, total, non2xx, errors = sys.argv[1:11]
rows = read_csv(csv)
first, last, span = windows(rows, float(window))
threshold = float(threshold)
env = os.environ
med = statistics.median
print(f"# Long-lived process: one authgate, the same token, {len(rows)} × {interval} s\n")
print(f"Measured {env['DATE']} on {env['MACHINE']}; commit {env['COMMIT']}; `{env['COMMAND']}`.\n")
print(f"One authgate process (one worker thread, access log off, plain HTTP listener) in front of "
      f"nginx (`return 200`, 12 bytes), wrk -t1 -c{conns} with the same ES256 bearer token on every "
      f"request (`GET /bench`, a route to the nginx upstream): {len(rows)} consecutive wrk runs of "
      f"{interval} s against the same process, after a {warmup} s warm-up. CPU µs/request: utime + "
      f"stime of the authgate process over each interval, divided by the requests wrk completed in "
      f"it; RSS: VmRSS after each interval. Data: [longrun.csv](longrun.csv); plot: "
      f"[longrun.svg](longrun.svg).\n")
metrics = [("requests/s", "requests_per_s", "{:,.0f}", True), ("CPU µs/request", "cpu_us_per_request", "{:.2f}", True),
           ("RSS MB", "rss_mb", "{:.1f}", True), ("p99 ms", "p99_ms", "{:.3f}", False)]
what = f"first {span:g} s" if span != 60 else "first minute"
what_last = f"last {span:g} s" if span != 60 else "last minute"
print(f"| metric | {what} (median) | {what_last} (median) | last / first | {what} min–max | "
      f"{what_last} min–max | flat (±{threshold:g} %) |")
print("|---|---:|---:|---:|---:|---:|---|")
failed = []
for label, key, fmt, judged in metrics:
    a = [r[key] for r in first]; b = [r[key] for r in last]
    ratio = med(b) / med(a) if med(a) else float("nan")
    flat = abs(ratio - 1) * 100 <= threshold
    if judged and not flat:
        failed.append(label)
    verdict = ("yes" if flat else "**no**") if judged else "(not judged)"
    rng = lambda xs: f"{fmt.format(min(xs))}–{fmt.format(max(xs))}"
    print(f"| {label} | {fmt.format(med(a))} | {fmt.format(med(b))} | {ratio:.3f} | {rng(a)} | {rng(b)} | {verdict} |")
ts = [r["t_seconds"] for r in rows]; rss = [r["rss_mb"] for r in rows]
slope = statistics.linear_regression(ts, rss).slope * 60 if len(rows) > 1 and len(set(ts)) > 1 else 0.0
print()
if span < 60:
    print(f"The run is shorter than two minutes: the windows compared are its first and last {span:g} s.\n")
print(f"**Verdict: {'flat' if not failed else 'not flat'}** — the threshold: the median of the last "
      f"{span:g} s within ±{threshold:g} % of the median of the first {span:g} s for requests/s, CPU "
      f"µs/request and RSS" + (f"; outside it: {', '.join(failed)}." if failed else ".") +
      " p99 latency is shown, not judged (a tail on a shared 2-core machine).\n")
print(f"RSS trend over the whole run (least squares): {slope:+.3f} MB/minute; peak RSS (VmHWM) "
      f"{hwm} MB. Requests: {int(total):,}; non-2xx: {non2xx}; socket errors: {errors}.")
PY
python3 bench/plot_longrun.py "$CSV" "$RESULTS_DIR/longrun.svg" --date "$DATE" --command "$COMMAND" --window "$WINDOW"
cat "$RESULTS_DIR/longrun.md"
echo "== wrote $CSV, $RESULTS_DIR/longrun.md, $RESULTS_DIR/longrun.svg"
