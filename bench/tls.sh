#!/usr/bin/env bash
# TLS handshakes and memory, authgate next to nginx with the same certificate, on 127.0.0.1:
#  - CPU µs per connection of the proxy process for `openssl s_time -new` (a full handshake and
#    one request per connection) and `-reuse` (a resumed session; s_time offers the same session
#    every time, which with TLS 1.3 means the same ticket), and how many it really resumed;
#  - peak and current RSS of a fresh process after 64 TLS keep-alive connections under wrk;
#  - RSS of a fresh authgate holding 10,000 idle keep-alive connections (plain HTTP, each has
#    sent one request): before, right after the responses, and after upstream.affinity_idle_timeout.
#
#   bash bench/tls.sh                 # RUNS=3 DURATION=5
#
# Honours CARGO_TARGET_DIR. Stops every process it started; removes its work directory.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init tls
raise_fd_limit
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
AFFINITY_IDLE=${AFFINITY_IDLE:-2} # upstream.affinity_idle_timeout in seconds (2: the default)
ONLY=${ONLY:-all}                 # handshakes | memory | all
require_tools nginx wrk openssl python3
NGINX=$(command -v nginx)

build_release mint
mint_keygen
SAME=$(mint_tokens 1)

nginx_upstream_conf 18080 > "$WORK/upstream.conf"
mkdir -p "$WORK/authgate"
gateway_conf 18443 18084 18080 "" 20000 "affinity_idle_timeout = \"${AFFINITY_IDLE}s\"" > "$WORK/authgate/gateway.toml"

start_authgate() {
  start authgate "$BIN" serve --config "$WORK/authgate/gateway.toml"; wait_port 18443; wait_port 18084
  AG=$STARTED
}
start_nginx_tls() {
  start nginx-tls "$NGINX" -p "$WORK" -c "$WORK/nginx-tls.conf"; wait_port 18444; sleep 0.3
  NGT_MAIN=$STARTED; NGT=$(pgrep -P "$NGT_MAIN" | tr '\n' ' ')
}

start upstream "$NGINX" -p "$WORK" -c "$WORK/upstream.conf"; wait_port 18080
start_authgate # generates the certificate nginx then serves too
nginx_tls_conf 18444 18080 > "$WORK/nginx-tls.conf"
start_nginx_tls
curl -skf https://127.0.0.1:18444/public > /dev/null
curl -skf https://127.0.0.1:18443/public > /dev/null

s_time() { # name, port, pids, -new|-reuse → name|conn/s|CPU µs/conn|resumed/total
  local name=$1
  s_time_run "$@"
  # s_time prints 'r' for a resumed connection and '*' for a full handshake.
  local resumed; resumed=$(tr -cd 'r' < <(grep -v 'connections\|Collecting\|Now timing\|SSL' "$WORK/$name.stime") | wc -c)
  awk -v n="$ST_N" -v d="$ST_TICKS" -v clk="$CLK" -v t="$ST_T" -v name="$name" -v r="$resumed" \
    'BEGIN{ if (n == 0) { print name "|0|-|-"; exit } printf "%s|%d|%.1f|%d/%d\n", name, n / t, d * 1e6 / clk / n, r, n }'
}
if [ "$ONLY" != memory ]; then
echo "== handshakes (CPU µs per connection of the proxy process)"
echo "run|setup|conn/s|CPU µs/conn|resumed"
for run in $(seq "$RUNS"); do
  for row in \
    "$(s_time nginx-tls-new 18444 "$NGT" -new)" \
    "$(s_time authgate-tls-new 18443 "$AG" -new)" \
    "$(s_time nginx-tls-resumed 18444 "$NGT" -reuse)" \
    "$(s_time authgate-tls-resumed 18443 "$AG" -reuse)"; do
    echo "$run|$row"
  done
done
fi
[ "$ONLY" = handshakes ] && exit 0

# Memory with 64 TLS keep-alive connections, each proxy fresh (VmHWM is the process's peak:
# measured on a process that has done nothing else).
echo "== 64 TLS keep-alive connections, wrk ${DURATION}s (fresh processes)"
stop "$AG"; start_authgate
stop "$NGT_MAIN"; start_nginx_tls
echo "setup|req/s|VmHWM MB|VmRSS MB"
for setup in nginx authgate; do
  case $setup in
    nginx) port=18444; pids=$NGT ;;
    authgate) port=18443; pids=$AG ;;
  esac
  wrk -t1 -c64 -d"${DURATION}s" -H "Authorization: Bearer $SAME" "https://127.0.0.1:$port/bench" > "$WORK/ka.$setup" 2>&1
  rps=$(awk '/Requests\/sec/{printf "%d", $2}' "$WORK/ka.$setup")
  grep -q Non-2xx "$WORK/ka.$setup" && { echo "$setup answered non-2xx" >&2; exit 1; }
  echo "$setup-tls-keepalive|$rps|$(status_mb "$pids" VmHWM)|$(status_mb "$pids" VmRSS)"
done

# 10,000 idle keep-alive connections on a fresh authgate (plain listener).
echo "== 10,000 idle keep-alive connections (fresh authgate, plain HTTP)"
stop "$AG"; start_authgate; sleep 0.3
python3 - "$AG" "$AFFINITY_IDLE" <<'PY'
import socket, sys, time
pid, affinity_idle = sys.argv[1], float(sys.argv[2])
def mb(key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
before = mb("VmRSS")
socks = []
for _ in range(10000):
    s = socket.create_connection(("127.0.0.1", 18084))
    s.sendall(b"GET /public HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
for s in socks:
    assert s.recv(4096).startswith(b"HTTP/1.1 200"), "no 200"
time.sleep(0.5)
after = mb("VmRSS")
time.sleep(affinity_idle + 1.5)
released = mb("VmRSS")
per = lambda v: (v - before) * 1024 / len(socks)
print(f"before: {before:.0f} MB; right after the responses: {after:.0f} MB ({per(after):.1f} KB per connection); "
      f"after affinity_idle_timeout: {released:.0f} MB ({per(released):.1f} KB per connection); peak {mb('VmHWM'):.0f} MB")
for s in socks:
    s.close()
PY
