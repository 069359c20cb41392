#!/usr/bin/env bash
# Token issuance benchmark on 127.0.0.1: `client_credentials` at /oauth2/token, ES256, 16
# connections (wrk -t1), the gateway with its default runtime (one worker per core). Reports
# tokens/s, latency and the gateway's CPU µs per token; writes bench/results/issuance.md.
#
#   bash bench/issuance.sh               # RUNS=3 DURATION=10 by default
#
# Installs wrk with apt-get when missing. Stops every process it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init issuance
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}

install_tools wrk
build_release

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
start serve "$BIN" serve --config "$WORK/gateway.toml"
PID=$STARTED
wait_port 18584
export BASIC
BASIC=$(printf 'svc:%s' "$SECRET" | base64 -w0)
URL=http://127.0.0.1:18584
# Sanity: the request the benchmark repeats is answered with a token.
curl -sf -H "Authorization: Basic $BASIC" -d grant_type=client_credentials -d scope=read \
  "$URL/oauth2/token" | grep -q '"access_token"' || { echo "the token request fails" >&2; exit 1; }

wrk -t1 -c16 -d2s -s bench/issuance.lua "$URL" > /dev/null
: > "$WORK/rows"
for run in $(seq "$RUNS"); do
  before=$(ticks "$PID")
  wrk -t1 -c16 -d"${DURATION}s" --latency -s bench/issuance.lua "$URL" > "$WORK/wrk.$run"
  after=$(ticks "$PID")
  wrk_stats "$WORK/wrk.$run"
  rps=$WRK_RPS p50=$WRK_P50 p99=$WRK_P99 non2xx=$WRK_NON2XX
  cpu=$(cpu_us $((after - before)) "$WRK_N")
  echo "run $run: $rps tokens/s, p50 $p50, p99 $p99, $cpu CPU µs/token, non-2xx $non2xx"
  echo "$rps|$p50|$p99|$cpu|$non2xx" >> "$WORK/rows"
done

OUT=bench/results/issuance.md
mkdir -p bench/results
MACHINE=$(machine_desc) python3 - "$WORK/rows" "$RUNS" "$DURATION" > "$OUT" <<'PY'
import statistics, sys, os, datetime
rows = [l.strip().split("|") for l in open(sys.argv[1]) if l.strip()]
med = statistics.median
print(f"Measured {datetime.date.today()} on {os.environ['MACHINE']}; "
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
  bench_cleanup
  trap - EXIT
  bash bench/store.sh
fi
