#!/usr/bin/env bash
# Instructions per request under callgrind: the repeatable yardstick of issue 20 (CPU µs/request
# swings by up to 40 % on a shared machine; instruction counts do not). For each setup the proxy
# runs under `valgrind --tool=callgrind` and serves exactly N requests over one keep-alive
# connection (plain HTTP, a Python http.client loop: deterministic, unlike wrk), once for N1 and
# once for N2 in the same warmed-up process; (I(N2) − I(N1)) / (N2 − N1) is the cost of one
# request with start-up and the connection's own cost cancelled out. Setups: hyper-floor (bench/floor.rs),
# authgate with the same ES256 token on every request (external issuer, as bench/run.sh), and
# authgate on a public route. One worker thread, access log off, a trivial nginx upstream.
# Writes bench/results/instructions.md and prints it.
#
#   bash bench/instructions.sh                     # N1=200 N2=1200
#   PROFILE=/tmp/profile.txt bash bench/instructions.sh
#       also writes, for authgate same-token, the per-request instructions of the top functions
#       (self and inclusive): the N2 run's callgrind_annotate minus the N1 run's, / (N2 − N1)
#   KEEP=/tmp/dir bash bench/instructions.sh       # keeps callgrind's files (callgrind_annotate)
#
# Everything on 127.0.0.1 (ports 1818x, apart from bench/run.sh's); stops every process it starts.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init instr
N1=${N1:-200}
N2=${N2:-1200}
PROFILE=${PROFILE:-}
on_cleanup() { # callgrind's files, for callgrind_annotate
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$WORK"/*.callgrind* "$KEEP"/ 2>/dev/null || true; fi
}
require_tools nginx valgrind callgrind_annotate python3

build_release mint floor
mint_keygen
SAME=$(mint_tokens 1)

nginx_upstream_conf 18180 1024 "" > "$WORK/upstream.conf"
mkdir -p "$WORK/authgate"
# bench/run.sh's authgate config, on this script's ports.
gateway_conf 18543 18184 18180 18190 "" > "$WORK/authgate/gateway.toml"

start upstream nginx -p "$WORK" -c "$WORK/upstream.conf"
wait_port 18180 10

# Exactly $2 requests on one keep-alive connection; every answer must be 200 (a refusal would
# look cheap).
client() { # port, n, path, token
  python3 - "$@" <<'PY'
import http.client, sys
port, n, path, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
headers = {"Authorization": f"Bearer {token}"} if token else {}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for i in range(n):
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        sys.exit(f"request {i}: {response.status} {body[:200]!r}")
conn.close()
PY
}

# One process per setup under callgrind: a warm-up connection, then the counters are zeroed
# and N1 requests (one connection) dumped as part 1, N2 requests (another connection) as part
# 2. Start-up stays out of the count: it is not repeatable (aws-lc seeds its RNG from CPU
# jitter), and the difference of the parts cancels the connection's own cost.
measure() { # name, port, path, token, command...
  local name=$1 port=$2 path=$3 token=$4; shift 4
  echo "== $name" >&2
  local out=$WORK/$name.callgrind
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out" "$@" \
    > "$WORK/$name.log" 2>&1 &
  local pid=$!
  PIDS+=($pid)
  wait_port "$port" 120
  client "$port" 20 "$path" "$token"
  sleep 0.5 # the server sees the connection close before the counters are zeroed
  callgrind_control -z "$pid" > /dev/null
  client "$port" "$N1" "$path" "$token"
  sleep 0.5
  callgrind_control -d "$pid" > /dev/null
  client "$port" "$N2" "$path" "$token"
  sleep 0.5
  callgrind_control -d "$pid" > /dev/null
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  # Thread 1 runs the runtime (one worker thread: everything a request does). The others
  # (the SQLite driver's, the blocking pool) do timed background work, such as the store's
  # periodic reads, which would land in whichever part it happens to fall in.
  local i1 i2 other1 other2
  i1=$(awk '/^totals:/{print $2; exit}' "$out.1-01")
  i2=$(awk '/^totals:/{print $2; exit}' "$out.2-01")
  other1=$(cat "$out".1-* | awk '/^totals:/{s += $2} END{print s}')
  other2=$(cat "$out".2-* | awk '/^totals:/{s += $2} END{print s}')
  echo "$name $i1 $i2 $((other1 - i1)) $((other2 - i2))" >> "$ROWS"
}

ROWS=$WORK/rows.txt
: > "$ROWS"
measure hyper-floor 18185 /bench "" "$FLOOR" 127.0.0.1:18185 127.0.0.1:18180
AUTHGATE=("$BIN" serve --config "$WORK/authgate/gateway.toml")
measure authgate-same-token 18184 /bench "$SAME" "${AUTHGATE[@]}"
measure authgate-public 18184 /public/bench "" "${AUTHGATE[@]}"

if [ -n "$PROFILE" ]; then
  python3 - "$WORK/authgate-same-token.callgrind.1-01" "$WORK/authgate-same-token.callgrind.2-01" \
    "$N1" "$N2" > "$PROFILE" <<'PY'
import re, subprocess, sys
first, second, n1, n2 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def costs(path, inclusive):
    text = subprocess.run(["callgrind_annotate", f"--inclusive={inclusive}", "--threshold=100",
                           path], capture_output=True, text=True, check=True).stdout
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(\S.*?)(?:\s+\[[^\]]*\])?$", line)
        if m and m.group(2) != "PROGRAM TOTALS":
            out[m.group(2)] = out.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return out
for inclusive in ("no", "yes"):
    a, b = costs(first, inclusive), costs(second, inclusive)
    per = {k: (b.get(k, 0) - a.get(k, 0)) / (n2 - n1) for k in set(a) | set(b)}
    top = [kv for kv in sorted(per.items(), key=lambda kv: -kv[1]) if kv[1] >= 20][:250]
    print(f"## authgate same-token: instructions per request by function ({'inclusive' if inclusive == 'yes' else 'self'})\n")
    for name, ir in top:
        print(f"{ir:10.0f}  {name}")
    print()
PY
  echo "== profile written to $PROFILE" >&2
fi

OUT=bench/results/instructions.md
mkdir -p bench/results
python3 - "$ROWS" "$N1" "$N2" > "$OUT" <<'PY'
import datetime, subprocess, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
n1, n2 = int(sys.argv[2]), int(sys.argv[3])
per = {name: (int(i2) - int(i1)) / (n2 - n1) for name, i1, i2, _, _ in rows}
floor = per["hyper-floor"]
version = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
print(f"Measured {datetime.date.today()} with `bash bench/instructions.sh` ({version}): instructions per "
      f"request = (I({n2}) − I({n1})) / {n2 - n1}, each N on its own keep-alive connection to one "
      "warmed-up process under callgrind, plain HTTP, one worker thread, access log off.\n")
print("| setup | instructions/request | vs hyper-floor | other threads, part 1 / part 2 |")
print("|---|---:|---:|---:|")
for name, i1, i2, o1, o2 in rows:
    print(f"| {name} | {per[name]:,.0f} | {per[name] / floor:.2f} × | {int(o1):,} / {int(o2):,} |")
print("\nThe runtime's thread only (one worker thread); the last column is what the process's other "
      "threads (SQLite driver, blocking pool: timed background work) ran in each part.")
PY
cat "$OUT"
