#!/usr/bin/env bash
# Token issuance benchmark on 127.0.0.1: `client_credentials` at /oauth2/token, ES256, 16
# connections (wrk -t1), the gateway with its default runtime (one worker per core). Reports
# tokens/s, latency and the gateway's CPU µs per token; writes bench/results/issuance.md.
#
#   bash bench/issuance.sh               # RUNS=3 DURATION=10 by default
#
# Installs wrk with apt-get when missing. Stops every process it started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
WORK=$(mktemp -d /tmp/authgate-issuance.XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  sleep 0.3
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
echo "== building authgate (release)"
cargo build --release --quiet --bin authgate
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/authgate

cat > "$WORK/gateway.toml" <<CONF
[server]
listen = "127.0.0.1:18543"
plain_listen = "127.0.0.1:18584"
[tls]
cert = "cert.pem"
key = "key.pem"
dev_self_signed = true
[log]
level = "warn"
access_log = false
CONF
SECRET=bench-secret-0123456789abcdef
"$BIN" client add svc --config "$WORK/gateway.toml" --grant client_credentials --scope read \
  --secret-stdin <<< "$SECRET" > /dev/null
"$BIN" serve --config "$WORK/gateway.toml" > "$WORK/serve.log" 2>&1 &
PID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18584) 2>/dev/null && break; sleep 0.1; done
export BASIC
BASIC=$(printf 'svc:%s' "$SECRET" | base64 -w0)
URL=http://127.0.0.1:18584
# Sanity: the request the benchmark repeats is answered with a token.
curl -sf -H "Authorization: Basic $BASIC" -d grant_type=client_credentials -d scope=read \
  "$URL/oauth2/token" | grep -q '"access_token"' || { echo "the token request fails" >&2; exit 1; }

CLK=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
wrk -t1 -c16 -d2s -s bench/issuance.lua "$URL" > /dev/null
: > "$WORK/rows"
for run in $(seq "$RUNS"); do
  before=$(ticks)
  wrk -t1 -c16 -d"${DURATION}s" --latency -s bench/issuance.lua "$URL" > "$WORK/wrk.$run"
  after=$(ticks)
  n=$(awk '/requests in/{print $1}' "$WORK/wrk.$run")
  rps=$(awk '/Requests\/sec/{printf "%d", $2}' "$WORK/wrk.$run")
  p50=$(awk '$1=="50%"{print $2}' "$WORK/wrk.$run")
  p99=$(awk '$1=="99%"{print $2}' "$WORK/wrk.$run")
  non2xx=$(awk '/Non-2xx/{print $NF}' "$WORK/wrk.$run"); non2xx=${non2xx:-0}
  cpu=$(awk -v d=$((after - before)) -v n="$n" -v clk="$CLK" 'BEGIN{printf "%.1f", d * 1e6 / clk / n}')
  echo "run $run: $rps tokens/s, p50 $p50, p99 $p99, $cpu CPU µs/token, non-2xx $non2xx"
  echo "$rps|$p50|$p99|$cpu|$non2xx" >> "$WORK/rows"
done

OUT=bench/results/issuance.md
mkdir -p bench/results
python3 - "$WORK/rows" "$RUNS" "$DURATION" > "$OUT" <<'PY'
import statistics, sys, subprocess, platform, datetime
rows = [l.strip().split("|") for l in open(sys.argv[1]) if l.strip()]
med = statistics.median
cpu_model = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
print(f"Measured {datetime.date.today()} on {cpu_model}, {platform.machine()}, "
      f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores; "
      f"`bash bench/issuance.sh` (median of {sys.argv[2]} runs of {sys.argv[3]} s, wrk -t1 -c16).\n")
print("| workload | tokens/s | p50 | p99 | CPU µs/token | non-2xx |")
print("|---|---:|---:|---:|---:|---:|")
mid = sorted(rows, key=lambda r: int(r[0]))[len(rows) // 2]  # the median run's latencies
print(f"| client_credentials, ES256, /oauth2/token | {med(int(r[0]) for r in rows):,.0f} | "
      f"{mid[1]} | {mid[2]} | {med(float(r[3]) for r in rows):.1f} | "
      f"{max(int(r[4]) for r in rows)} |")
PY
cat "$OUT"

# The store's hot paths (refresh rotation, codes, opaque tokens, revocation) on SQLite and
# PostgreSQL: bench/store.sh, its own results file. STORE=0 skips it.
if [ "${STORE:-1}" = 1 ]; then
  cleanup
  trap - EXIT
  bash bench/store.sh
fi
