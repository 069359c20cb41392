#!/usr/bin/env bash
# Side-by-side proxy benchmark on 127.0.0.1: direct, nginx (no auth), hyper-floor (a hyper proxy
# that only forwards, bench/floor.rs), HAProxy (plain and with
# jwt_verify ES256), authgate (ES256 bearer check + identity headers). One wrk thread; every
# proxy limited to one worker thread. authgate-session (issue 23): the authgate-same load, but
# on a session route (`auth = "session"`, prefix /s, same upstream) with the sign-in page's
# `Cookie: __Host-authgate-session=...` instead of a bearer token (a user added with the CLI,
# signed in once through /open/signin with curl). The cookie is resolved through the in-memory
# session cache: the store (SQLite) is read at most once per `auth.refresh_interval` (2 s) per
# session, the revocation snapshot is checked on every request; no idle timeout, so no renewal
# writes; GET requests, so the same-origin rule for state-changing methods does not apply.
# nginx+authgate-fa (issue 24): nginx in front with `auth_request` to a second authgate process,
# its forward-auth decision service ([forward_auth], the route `upstream = "none"`), the same
# token as authgate-same; nginx runs the shipped deploy/nginx/authgate-forward-auth.conf with
# only what the bench needs changed (fa_nginx_conf below); CPU and RSS are nginx's + authgate's.
# Then authgate and nginx over TLS (keep-alive, full handshakes, resumed sessions) and
# authgate's RSS with 10,000 idle keep-alive connections.
# Writes bench/results/latest.md and prints it.
#
#   bash bench/run.sh            # RUNS=3 DURATION=10 by default
#   RUNS=1 DURATION=5 bash bench/run.sh
#
# Installs nginx, haproxy, wrk and openssl with apt-get when missing. Stops every process it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init bench
raise_fd_limit
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
TOKENS=${TOKENS:-600000}
# the minted tokens alone are ~0.5 GB: bench_cleanup removes $WORK

install_tools nginx haproxy wrk openssl
NGINX=$(command -v nginx); HAPROXY=$(command -v haproxy)

build_release mint floor

echo "== minting $TOKENS distinct ES256 tokens"
mint_keygen
mint_tokens "$TOKENS" > "$WORK/tokens.txt"
# Each wrk invocation (warm-up, c64, c16) gets its own slice: a token is never sent twice.
head -n $((TOKENS / 8)) "$WORK/tokens.txt" > "$WORK/tokens.warm"
sed -n "$((TOKENS / 8 + 1)),$((TOKENS * 5 / 8))p" "$WORK/tokens.txt" > "$WORK/tokens.c64"
sed -n "$((TOKENS * 5 / 8 + 1)),\$p" "$WORK/tokens.txt" > "$WORK/tokens.c16"
# The same-token workload must not hit a token of the distinct file.
mint_tokens 1 > "$WORK/same.txt"
SAME=$(cat "$WORK/same.txt")

# ---- configs ------------------------------------------------------------------------------
nginx_upstream_conf 18080 > "$WORK/upstream.conf"
cat > "$WORK/nginx-proxy.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/nginx-proxy.pid; error_log $WORK/nginx-proxy.err warn;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 10000000;
  upstream u { server 127.0.0.1:18080; keepalive 128; }
  server { listen 127.0.0.1:18081 backlog=4096;
    location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
haproxy_conf() { # $1 port, $2 extra frontend rules
  cat <<CONF
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$1
$2
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:18080
CONF
}
haproxy_conf 18082 "" > "$WORK/haproxy-plain.cfg"
haproxy_conf 18083 "  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
  http-request deny unless { var(txn.alg) -m str ES256 }
  http-request deny unless { var(txn.bearer),jwt_verify(txn.alg,\"$WORK/idp-pub.pem\") -m int 1 }
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
  http-request set-var(txn.now) date()
  http-request deny if { var(txn.exp),sub(txn.now) -m int lt 0 }
  http-request del-header user_id
  http-request del-header group_id
  http-request set-header user_id %[var(txn.bearer),jwt_payload_query('\$.sub')]
  http-request set-header group_id %[var(txn.bearer),jwt_payload_query('\$.gid','int')]" > "$WORK/haproxy-jwt.cfg"
mkdir -p "$WORK/authgate"
gateway_conf 18443 18084 18080 18090 20000 > "$WORK/authgate/gateway.toml"
# The authgate-session row: the same upstream behind a session route (the sign-in page is the
# oauth2 dialect's /open/signin, on by default), and a builtin:echo session route only for the
# sanity check (the upstream gets the user, never the cookie). A login session outlives any
# RUNS x DURATION.
cat >> "$WORK/authgate/gateway.toml" <<CONF
[[routes]]
prefix = "/s"
upstream = "http://127.0.0.1:18080"
auth = "session"
[[routes]]
prefix = "/s-echo"
upstream = "builtin:echo"
auth = "session"
[login]
session_ttl = "24h"
CONF
"$BIN" check --config "$WORK/authgate/gateway.toml" > /dev/null
# The nginx+authgate-fa row's authgate: the same settings (one worker thread, the issuer, the
# route / with the default bearer policy), but [forward_auth] and routes that only decide
# (`upstream = "none"`, as deployed behind an edge). Its own process (plain listener 18086),
# so the other rows' config and this row's CPU and RSS stay apart.
mkdir -p "$WORK/authgate-fa"
{ gateway_conf 18445 18086 18080 "" 20000 | sed 's|^upstream = "http://127.0.0.1:18080"|upstream = "none"|'
  echo "[forward_auth]                 # /_authgate/check; loopback may ask"; } > "$WORK/authgate-fa/gateway.toml"
grep -q '^upstream = "none"' "$WORK/authgate-fa/gateway.toml" &&
  ! grep -q '^upstream = "http' "$WORK/authgate-fa/gateway.toml" || { echo "authgate-fa: the routes did not become upstream = none" >&2; exit 1; }
"$BIN" check --config "$WORK/authgate-fa/gateway.toml" > /dev/null
# nginx for that row: the shipped deploy/nginx/authgate-forward-auth.conf (auth_request with
# X-Original-URI/-Method, auth_request_set, the identity set and every client spelling of it
# cleared, the session cookie mapped out, ...) with only these changes, each of which must hit
# (as in tests/edge/run.sh, a changed file fails here, not silently): plain HTTP from wrk (no
# TLS, no HTTP/2) and to authgate's plain listener (no proxy_ssl_*), the bench's ports, and
# keepalive 128 to authgate and to the upstream (the shipped 16 would open and close
# connections at 64 concurrent clients; the other nginx rows keep 128). One worker process.
fa_nginx_conf() { # NAME PORT APP_PORT: writes $WORK/NAME.conf (and NAME.server.conf)
  local text count
  text=$(< "$ROOT/deploy/nginx/authgate-forward-auth.conf")
  fa_edit() { # FROM TO TIMES
    count=$(grep -cF -- "$1" <<< "$text" || true)
    [ "$count" = "$3" ] || { echo "fa_nginx_conf: \`$1\` is on $count lines of the shipped config (expected $3)" >&2; exit 1; }
    text=${text//"$1"/"$2"}
  }
  fa_drop() { # REGEX TIMES: remove the lines matching
    count=$(grep -cE -- "$1" <<< "$text" || true)
    [ "$count" = "$2" ] || { echo "fa_nginx_conf: /$1/ matches $count lines of the shipped config (expected $2)" >&2; exit 1; }
    text=$(grep -vE -- "$1" <<< "$text")
  }
  fa_edit "listen 443 ssl http2;" "listen 127.0.0.1:$2 backlog=4096;" 1
  fa_edit "server 127.0.0.1:8443;" "server 127.0.0.1:18086;" 1
  fa_edit "server 127.0.0.1:8080;" "server 127.0.0.1:$3;" 1
  fa_edit "keepalive 16;" "keepalive 128;" 2
  fa_edit "proxy_pass https://authgate;" "proxy_pass http://authgate;" 2
  fa_drop '^[[:space:]]*ssl_certificate(_key)?[[:space:]]' 2
  fa_drop '^[[:space:]]*proxy_ssl_' 5
  printf '%s\n' "$text" > "$WORK/$1.server.conf"
  cat > "$WORK/$1.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/$1.pid; error_log $WORK/$1.err warn;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 10000000;
  include $WORK/$1.server.conf; }
CONF
  "$NGINX" -t -q -p "$WORK" -c "$WORK/$1.conf" || { echo "nginx refused $WORK/$1.conf" >&2; exit 1; }
}
fa_nginx_conf nginx-fa 18087 18080
# Only for the sanity check: the same config in front of an upstream that echoes what it got.
fa_nginx_conf nginx-fa-echo 18089 18088
cat > "$WORK/fa-echo-app.conf" <<CONF
worker_processes 1; daemon off; pid $WORK/fa-echo-app.pid; error_log $WORK/fa-echo-app.err warn;
events { worker_connections 64; }
http { access_log off; underscores_in_headers on;
  server { listen 127.0.0.1:18088;
    location / { return 200 "user_id=\$http_user_id group_id=\$http_group_id remote_user=\$http_remote_user authorization=\$http_authorization uri=\$request_uri\n"; } } }
CONF
PASSWORD=bench-password-0123456789
USER_ID=$("$BIN" user add alice --config "$WORK/authgate/gateway.toml" --password-stdin <<< "$PASSWORD" |
  sed -n 's/^user \([0-9]*\) added.*/\1/p')
[ -n "$USER_ID" ] || { echo "authgate user add printed no user id" >&2; exit 1; }

# ---- helpers ------------------------------------------------------------------------------
measure() { # setup name, port, pids ("" for direct), wrk extra args...; URL_PATH (/bench)
  local name=$1 port=$2 pids=$3; shift 3
  local scheme=http; case $port in 18443|18444) scheme=https ;; esac
  local url=$scheme://127.0.0.1:$port${URL_PATH:-/bench}
  TOKENS_FILE=$WORK/tokens.warm wrk -t1 -c64 -d2s "$@" "$url" > /dev/null 2>&1 || true
  local before; before=$(ticks "$pids")
  TOKENS_FILE=$WORK/tokens.c64 wrk -t1 -c64 -d"${DURATION}s" "$@" "$url" > "$WORK/$name.c64" 2>&1
  local after; after=$(ticks "$pids")
  TOKENS_FILE=$WORK/tokens.c16 wrk -t1 -c16 -d"${DURATION}s" --latency "$@" "$url" > "$WORK/$name.c16" 2>&1
  wrk_stats "$WORK/$name.c16"; local p50=$WRK_P50 p99=$WRK_P99
  wrk_stats "$WORK/$name.c64"; local n=$WRK_N rps=$WRK_RPS non2xx=$WRK_NON2XX
  local cpu="-" rss="-"
  if [ -n "$pids" ]; then
    cpu=$(cpu_us $((after - before)) "$n")
    rss="$(( $(hwm_kb "$pids") / 1024 )) MB"
  fi
  echo "$name|$rps|$p50|$p99|$cpu|$rss|$non2xx"
}
restart_authgate() { # a fresh process in place of $AG
  stop "$AG"
  start authgate "$BIN" serve --config "$WORK/authgate/gateway.toml"; wait_port 18084
  AG=$STARTED; sleep 0.3
}
cache_counts() { # authgate's verified-token cache counters, from the admin /metrics
  curl -s http://127.0.0.1:18090/metrics | awk '/^authgate_token_cache_(hits|misses)_total/{sub(/^authgate_token_cache_/, "", $1); sub(/_total$/, "", $1); printf "%s=%s ", $1, $2}'
}

# ---- run ----------------------------------------------------------------------------------
start upstream "$NGINX" -p "$WORK" -c "$WORK/upstream.conf"; wait_port 18080
start nginx-proxy "$NGINX" -p "$WORK" -c "$WORK/nginx-proxy.conf"; wait_port 18081
start haproxy-plain "$HAPROXY" -f "$WORK/haproxy-plain.cfg"; wait_port 18082
start haproxy-jwt "$HAPROXY" -f "$WORK/haproxy-jwt.cfg"; wait_port 18083
start authgate "$BIN" serve --config "$WORK/authgate/gateway.toml"; wait_port 18084
# A hyper proxy that does nothing but forward (bench/floor.rs): what hyper and tokio cost.
start hyper-floor "$FLOOR" 127.0.0.1:18085 127.0.0.1:18080; wait_port 18085
start authgate-fa "$BIN" serve --config "$WORK/authgate-fa/gateway.toml"; wait_port 18086 10 "$WORK/authgate-fa.log"
start nginx-fa "$NGINX" -p "$WORK" -c "$WORK/nginx-fa.conf"; wait_port 18087 10 "$WORK/nginx-fa.err"
sleep 0.5
HF=$(cat "$WORK/hyper-floor.pid.main")
NGX=$(family "$(cat "$WORK/nginx-proxy.pid.main")")
HAP=$(cat "$WORK/haproxy-plain.pid.main"); HAJ=$(cat "$WORK/haproxy-jwt.pid.main")
AG=$(cat "$WORK/authgate.pid.main")
# nginx+authgate-fa: nginx's master and worker, and authgate (ticks and hwm_kb sum them).
NGFA="$(family "$(cat "$WORK/nginx-fa.pid.main")") $(cat "$WORK/authgate-fa.pid.main")"
AUTH_SAME=(-H "Authorization: Bearer $SAME")
AUTH_DISTINCT=(-s "$ROOT/bench/distinct.lua")

# A signed-in browser for authgate-session: the sign-in page sets the CSRF cookie and renders
# the form; posting it answers 303 with the session cookie. Both cookies are `Secure` and this
# is plain HTTP, so they are read from the responses and sent back by hand (as wrk sends it).
set_cookie() { tr -d '\r' < "$1" | sed -n "s/^set-cookie: $2=\\([^;]*\\);.*/\\1/Ip"; }
curl -sf -D "$WORK/signin-get.headers" -o /dev/null "http://127.0.0.1:18084/open/signin?rd=/s/bench"
csrf=$(set_cookie "$WORK/signin-get.headers" authgate_csrf)
curl -s -D "$WORK/signin-post.headers" -o /dev/null -H "Cookie: authgate_csrf=$csrf" \
  "http://127.0.0.1:18084/open/signin" --data-urlencode "csrf_token=$csrf" --data-urlencode rd=/s/bench \
  --data-urlencode username=alice --data-urlencode "password=$PASSWORD" --data-urlencode action=login
SESSION=$(set_cookie "$WORK/signin-post.headers" __Host-authgate-session)
[ ${#SESSION} = 43 ] || { echo "no session cookie from /open/signin:" >&2; cat "$WORK/signin-post.headers" >&2; exit 1; }
AUTH_SESSION=(-H "Cookie: __Host-authgate-session=$SESSION")

# Sanity: every setup answers 200 (a JWT setup refusing the token would look fast).
for port in 18080 18081 18082 18085; do curl -sf "http://127.0.0.1:$port/bench" > /dev/null; done
for port in 18083 18084; do curl -sf -H "Authorization: Bearer $SAME" "http://127.0.0.1:$port/bench" > /dev/null; done
[ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18084/bench)" = 401 ] || { echo "authgate let a request without a token through" >&2; exit 1; }
curl -sf -H "Cookie: __Host-authgate-session=$SESSION" http://127.0.0.1:18084/s/bench > /dev/null
[ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18084/s/bench)" = 401 ] || { echo "authgate let a request without a session through" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $SAME" http://127.0.0.1:18084/s/bench)" = 401 ] || { echo "a session route took a bearer token" >&2; exit 1; }
answer=$(curl -sf -H "Cookie: a=1; __Host-authgate-session=$SESSION" http://127.0.0.1:18084/s-echo/bench)
grep -q "\"user_id\":\"$USER_ID\"" <<< "$answer" && ! grep -q authgate-session <<< "$answer" ||
  { echo "the upstream of a session route did not get the user (or got the cookie): $answer" >&2; exit 1; }
# nginx+authgate-fa: the token passes (the upstream's 200), no token or a bad one is nginx's
# 401; through the echo upstream, the app gets exactly the token's sub and gid as user_id and
# group_id, not the token nor another auth proxy's identity header the client sent (nginx
# clears it); a client's X-User-Id naming another user is authgate's 403 (not an admin).
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(curl -sf -H "Authorization: Bearer $SAME" http://127.0.0.1:18087/bench)" = "hello world" ] ||
  { echo "nginx+authgate-fa did not pass the token to the upstream" >&2; exit 1; }
[ "$(code http://127.0.0.1:18087/bench)" = 401 ] || { echo "nginx+authgate-fa let a request without a token through" >&2; exit 1; }
[ "$(code -H "Authorization: Bearer ${SAME}x" http://127.0.0.1:18087/bench)" = 401 ] ||
  { echo "nginx+authgate-fa let a bad token through" >&2; exit 1; }
start fa-echo-app "$NGINX" -p "$WORK" -c "$WORK/fa-echo-app.conf"; wait_port 18088; FA_ECHO_APP=$STARTED
start nginx-fa-echo "$NGINX" -p "$WORK" -c "$WORK/nginx-fa-echo.conf"; wait_port 18089; FA_ECHO=$STARTED
claims=$(python3 -c 'import base64, json, sys; p = sys.argv[1].split(".")[1]; c = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))); print("user_id=%s group_id=%s" % (c["sub"], c["gid"]))' "$SAME")
answer=$(curl -s -H "Authorization: Bearer $SAME" -H "Remote-User: mallory" "http://127.0.0.1:18089/bench?x=1")
[ "$answer" = "$claims remote_user= authorization= uri=/bench?x=1" ] ||
  { echo "through nginx+authgate-fa the upstream got: $answer (expected $claims, no Remote-User, no token)" >&2; exit 1; }
[ "$(code -H "Authorization: Bearer $SAME" -H "X-User-Id: 666" http://127.0.0.1:18089/bench)" = 403 ] ||
  { echo "nginx+authgate-fa let a client's X-User-Id through" >&2; exit 1; }
stop "$FA_ECHO"; stop "$FA_ECHO_APP"

RESULTS=$WORK/rows.txt
: > "$RESULTS"
for run in $(seq "$RUNS"); do
  echo "== run $run/$RUNS"
  for setup in direct nginx-proxy hyper-floor haproxy-plain haproxy-jwt-same authgate-same nginx+authgate-fa authgate-session haproxy-jwt-distinct authgate-distinct; do
    case $setup in
      direct) row=$(measure direct 18080 "") ;;
      nginx-proxy) row=$(measure nginx-proxy 18081 "$NGX") ;;
      hyper-floor) row=$(measure hyper-floor 18085 "$HF") ;;
      haproxy-plain) row=$(measure haproxy-plain 18082 "$HAP") ;;
      haproxy-jwt-same) row=$(measure haproxy-jwt-same 18083 "$HAJ" "${AUTH_SAME[@]}") ;;
      authgate-same) row=$(measure authgate-same 18084 "$AG" "${AUTH_SAME[@]}") ;;
      nginx+authgate-fa) row=$(measure nginx+authgate-fa 18087 "$NGFA" "${AUTH_SAME[@]}") ;;
      authgate-session) row=$(URL_PATH=/s/bench measure authgate-session 18084 "$AG" "${AUTH_SESSION[@]}") ;;
      haproxy-jwt-distinct) row=$(measure haproxy-jwt-distinct 18083 "$HAJ" "${AUTH_DISTINCT[@]}") ;;
      authgate-distinct)
        # A fresh process: an empty verified-token cache, so earlier runs cannot hit it.
        restart_authgate
        before=$(cache_counts)
        row=$(measure authgate-distinct 18084 "$AG" "${AUTH_DISTINCT[@]}")
        after=$(cache_counts)
        echo "before: $before after: $after" >> "$WORK/cache.txt" ;;
    esac
    echo "$run|$row" | tee -a "$RESULTS"
  done
done

# Idle keep-alive connections: RSS of a fresh authgate holding 10,000 of them.
restart_authgate
python3 - "$AG" <<'PY' > "$WORK/idle.txt"
import socket, sys, time
pid = sys.argv[1]
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
before = rss()
socks = []
for _ in range(10000):
    s = socket.create_connection(("127.0.0.1", 18084))
    s.sendall(b"GET /bench HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
time.sleep(1)
for s in socks:
    s.recv(4096)
time.sleep(1)
print(f"{before} {rss()}")
for s in socks:
    s.close()
PY

# A fresh authgate for the TLS rows: VmHWM is a process's peak since it started, and the idle
# test's 10,000 connections would otherwise be the TLS keep-alive row's "peak RSS".
restart_authgate

# ---- TLS: authgate and nginx with the same certificate ----------------------------------------
# keep-alive: wrk over HTTPS (one handshake per connection); new: `openssl s_time -new`, a full
# handshake and one request per connection, one connection at a time; resumed: `s_time -reuse`
# (TLS session resumption). CPU µs per request or per connection of the proxy process.
nginx_tls_conf 18444 18080 > "$WORK/nginx-tls.conf"
start nginx-tls "$NGINX" -p "$WORK" -c "$WORK/nginx-tls.conf"; wait_port 18444; sleep 0.3
NGT=$(family "$(cat "$WORK/nginx-tls.pid.main")")
curl -skf https://127.0.0.1:18444/bench > /dev/null
curl -skf -H "Authorization: Bearer $SAME" https://127.0.0.1:18443/bench > /dev/null
curl -skf https://127.0.0.1:18443/public > /dev/null
s_time() { # name, port, pids, -new|-reuse
  local name=$1
  s_time_run "$@"
  awk -v n="$ST_N" -v d="$ST_TICKS" -v clk="$CLK" -v t="$ST_T" -v name="$name" \
    'BEGIN{ if (n == 0) { print name "|0|-|-|-|-|0"; exit } printf "%s|%d|-|-|%.1f|-|0\n", name, n / t, d * 1e6 / clk / n }'
}
TLS_RESULTS=$WORK/tls-rows.txt
: > "$TLS_RESULTS"
for run in $(seq "$RUNS"); do
  echo "== TLS run $run/$RUNS"
  for row in \
    "$(measure nginx-tls-keepalive 18444 "$NGT")" \
    "$(measure authgate-tls-keepalive 18443 "$AG" "${AUTH_SAME[@]}")" \
    "$(s_time nginx-tls-new 18444 "$NGT" -new)" \
    "$(s_time authgate-tls-new 18443 "$AG" -new)" \
    "$(s_time nginx-tls-resumed 18444 "$NGT" -reuse)" \
    "$(s_time authgate-tls-resumed 18443 "$AG" -reuse)"; do
    echo "$run|$row" | tee -a "$TLS_RESULTS"
  done
done

# ---- report (medians over runs) -------------------------------------------------------------
OUT=bench/results/latest.md
mkdir -p bench/results
MACHINE=$(machine_desc) python3 - "$RESULTS" "$WORK/idle.txt" "$WORK/cache.txt" "$RUNS" "$DURATION" "$TLS_RESULTS" > "$OUT" <<'PY'
import statistics, sys, re, os, datetime
rows = [l.strip().split("|") for l in open(sys.argv[1]) if l.strip()]
order, data = [], {}
for run, name, rps, p50, p99, cpu, rss, non2xx in rows:
    if name not in data:
        order.append(name); data[name] = []
    data[name].append((int(rps), p50, p99, cpu, rss, int(non2xx)))
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v or "")
    if not m: return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
def med(xs): return statistics.median(xs)
direct = med([r[0] for r in data["direct"]])
print(f"Measured {datetime.date.today()} on {os.environ['MACHINE']}; "
      f"median of {sys.argv[4]} runs of {sys.argv[5]} s each; wrk -t1; one worker thread per proxy.\n")
print("| setup | req/s (c64) | × direct | p50 (c16) | p99 (c16) | CPU µs/req | peak RSS | non-2xx |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for name in order:
    rs = data[name]
    rps = med([r[0] for r in rs])
    p50 = med([ms(r[1]) for r in rs]); p99 = med([ms(r[2]) for r in rs])
    cpus = [float(r[3]) for r in rs if r[3] != "-"]
    cpu = f"{med(cpus):.1f}" if cpus else "—"
    print(f"| {name} | {rps:,.0f} | {rps/direct:.2f} | {p50:.2f} ms | {p99:.2f} ms | {cpu} | {rs[-1][4] if rs[-1][4] != '-' else '—'} | {max(r[5] for r in rs)} |")
before, after = open(sys.argv[2]).read().split()
print(f"\nauthgate RSS with 10,000 idle keep-alive connections: {after} MB (before: {before} MB).")
print("\nVerified-token cache of the fresh process of each distinct-token run:")
for line in open(sys.argv[3]):
    print(f"- {line.strip()}")
tls_order, tls = [], {}
for l in open(sys.argv[6]):
    if not l.strip(): continue
    run, name, rate, p50, p99, cpu, rss, non2xx = l.strip().split("|")
    if name not in tls:
        tls_order.append(name); tls[name] = []
    tls[name].append((int(rate), p50, p99, cpu, int(non2xx)))
print("\nOver TLS (same certificate, ECDSA P-256; authgate with the same token). keep-alive: wrk, "
      "req/s at c64, latency at c16; new / resumed: `openssl s_time -new` / `-reuse` with one "
      "request per connection (`/public`, no token), connections/s, one at a time. CPU µs per "
      "request or connection of the proxy process.\n")
print("| setup | req/s or conn/s | p50 (c16) | p99 (c16) | CPU µs | non-2xx |")
print("|---|---:|---:|---:|---:|---:|")
for name in tls_order:
    rs = tls[name]
    rate = med([r[0] for r in rs])
    lat = lambda i: f"{med([ms(r[i]) for r in rs]):.2f} ms" if rs[0][i] != "-" else "—"
    cpus = [float(r[3]) for r in rs if r[3] != "-"]
    cpu = f"{med(cpus):.1f}" if cpus else "—"
    print(f"| {name} | {rate:,.0f} | {lat(1)} | {lat(2)} | {cpu} | {max(r[4] for r in rs)} |")
PY
cat "$OUT"
