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
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
AFFINITY_IDLE=${AFFINITY_IDLE:-2} # upstream.affinity_idle_timeout in seconds (2: the default)
ONLY=${ONLY:-all}                 # handshakes | memory | all
WORK=$(mktemp -d /tmp/authgate-tls.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  sleep 0.3
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
for tool in nginx wrk openssl python3; do command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }; done
NGINX=$(command -v nginx)

cargo build --release --quiet --bin authgate --example mint
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/authgate
"$TARGET/release/examples/mint" keygen "$WORK"
SAME=$("$TARGET/release/examples/mint" tokens "$WORK/idp-key.pem" https://bench-idp bench 1)

cat > "$WORK/upstream.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/upstream.pid; error_log $WORK/upstream.err warn;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:18080 backlog=4096; location / { return 200 "hello world\n"; } } }
CONF
mkdir -p "$WORK/authgate"
cat > "$WORK/authgate/gateway.toml" <<CONF
[server]
listen = "127.0.0.1:18443"
plain_listen = "127.0.0.1:18084"
worker_threads = 1
max_connections = 20000
max_connections_per_ip = 0
[tls]
cert = "cert.pem"
key = "key.pem"
dev_self_signed = true
[log]
level = "warn"
access_log = false
[upstream]
pool_max_idle_per_host = 128
affinity_idle_timeout = "${AFFINITY_IDLE}s"
[[issuers]]
issuer = "https://bench-idp"
public_key_file = "$WORK/idp-pub.pem"
kid = "bench"
algorithms = ["ES256"]
group_claim = "gid"
subject = "local"
[[routes]]
prefix = "/"
upstream = "http://127.0.0.1:18080"
[[routes]]
prefix = "/public"
upstream = "http://127.0.0.1:18080"
auth = "public"
CONF

start() { # name, command...
  local name=$1; shift
  "$@" > "$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  echo $! > "$WORK/$name.pid.main"
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
ticks() { local sum=0; for p in $1; do [ -r /proc/$p/stat ] && sum=$((sum + $(awk '{print $14 + $15}' /proc/$p/stat))); done; echo $sum; }
status_mb() { local sum=0; for p in $1; do sum=$((sum + $(awk -v k="$2:" '$1==k{print $2}' /proc/$p/status))); done; echo $((sum / 1024)); }
CLK=$(getconf CLK_TCK)
start_authgate() {
  start authgate "$BIN" serve --config "$WORK/authgate/gateway.toml"; wait_port 18443; wait_port 18084
  AG=$(cat "$WORK/authgate.pid.main")
}
start_nginx_tls() {
  start nginx-tls "$NGINX" -p "$WORK" -c "$WORK/nginx-tls.conf"; wait_port 18444; sleep 0.3
  NGT_MAIN=$(cat "$WORK/nginx-tls.pid.main"); NGT=$(pgrep -P "$NGT_MAIN" | tr '\n' ' ')
}

start upstream "$NGINX" -p "$WORK" -c "$WORK/upstream.conf"; wait_port 18080
start_authgate # generates the certificate nginx then serves too
cat > "$WORK/nginx-tls.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/nginx-tls.pid; error_log $WORK/nginx-tls.err warn;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 10000000;
  upstream u { server 127.0.0.1:18080; keepalive 128; }
  ssl_session_cache shared:SSL:10m;
  server { listen 127.0.0.1:18444 ssl backlog=4096;
    ssl_certificate $WORK/authgate/cert.pem; ssl_certificate_key $WORK/authgate/key.pem;
    location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
start_nginx_tls
curl -skf https://127.0.0.1:18444/public > /dev/null
curl -skf https://127.0.0.1:18443/public > /dev/null

s_time() { # name, port, pids, -new|-reuse → name|conn/s|CPU µs/conn|resumed/total
  local name=$1 port=$2 pids=$3 mode=$4
  local before; before=$(ticks "$pids")
  openssl s_time -connect "127.0.0.1:$port" "$mode" -www /public -time "$DURATION" > "$WORK/$name.stime" 2>&1 || true
  local after; after=$(ticks "$pids")
  local n t; read -r n t < <(awk '/connections in/ && /real seconds/{print $1, $4}' "$WORK/$name.stime" | tail -1)
  # s_time prints 'r' for a resumed connection and '*' for a full handshake.
  local resumed; resumed=$(tr -cd 'r' < <(grep -v 'connections\|Collecting\|Now timing\|SSL' "$WORK/$name.stime") | wc -c)
  awk -v n="${n:-0}" -v d=$((after - before)) -v clk="$CLK" -v t="${t:-$DURATION}" -v name="$name" -v r="$resumed" \
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
