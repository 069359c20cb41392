# bench/lib.sh: the scaffolding the bench scripts share. Sourced, not executed:
#
#   set -euo pipefail
#   source "$(dirname "$0")/lib.sh"
#   bench_init store                 # cd to the repository root; ROOT, WORK, PIDS, CLK; cleanup trap
#   install_tools wrk                # apt-get install whichever are missing (require_tools: fail)
#   build_release mint floor         # cargo build --release; TARGET, BIN, MINT, FLOOR
#   mint_keygen; SAME=$(mint_tokens 1)
#   nginx_upstream_conf 18080 > "$WORK/upstream.conf"
#   start upstream nginx -p "$WORK" -c "$WORK/upstream.conf"; wait_port 18080
#
# What it provides:
#   bench_init NAME        ROOT (the repository; also the working directory), WORK (a fresh
#                          /tmp/authgate-NAME.XXXXXX), PIDS=() (what `start` started), CLK (clock
#                          ticks per second) and an EXIT trap running bench_cleanup: stop_all,
#                          then the script's `on_cleanup` function if it defines one, then
#                          rm -rf "$WORK".
#   raise_fd_limit         the soft open-files limit up to the hard one (many connections).
#   stop_all               SIGTERM to every pid in PIDS, 0.3 s, SIGKILL; PIDS emptied.
#   install_tools TOOL...  apt-get install the missing ones (package name = command name).
#   require_tools TOOL...  exit 1 naming the first one missing.
#   build_release [EXAMPLE...]  cargo build --release --bin authgate (--example EXAMPLE...);
#                          sets TARGET (honours CARGO_TARGET_DIR), BIN, MINT, FLOOR.
#   mint_keygen            an ES256 key pair for the bench issuer: $WORK/idp-key.pem, idp-pub.pem.
#   mint_tokens N          prints N distinct ES256 tokens of that issuer (valid for 2 hours).
#   start NAME CMD...      runs CMD in the background, output to $WORK/NAME.log; its pid goes to
#                          PIDS, $WORK/NAME.pid.main and STARTED.
#   stop PID               SIGTERM and wait for it.
#   wait_port PORT [SECONDS [LOG]]  until 127.0.0.1:PORT accepts (10 s by default), else exit 1
#                          (printing LOG if given).
#   port_free PORT...      exit 1 if something already listens on one of them.
#   family PID             PID and its children (nginx's master and workers).
#   ticks "PID..."         utime + stime of those processes, in clock ticks (/proc/PID/stat).
#   status_kb "PID..." KEY the sum of a /proc/PID/status field (VmRSS, VmHWM) in kB;
#   hwm_kb "PID..."        status_kb for VmHWM; status_mb "PID..." KEY: the same in whole MB.
#   cpu_us TICKS N [DECIMALS]  CPU µs per request: TICKS clock ticks over N requests.
#   wrk_stats FILE         from wrk's output: WRK_N (requests), WRK_RPS (whole req/s), WRK_P50,
#                          WRK_P99 (as wrk prints them; needs --latency), WRK_NON2XX.
#   machine_desc           "CPU model, arch, N cores", for the reports.
#   nginx_upstream_conf PORT [WORKER_CONNECTIONS [LISTEN_OPTIONS]]  prints the config of the
#                          trivial upstream (nginx `return 200 "hello world\n"`; pid and error
#                          log in $WORK/upstream.*). Defaults: 20000, " backlog=4096".
#   nginx_tls_conf PORT UPSTREAM_PORT  prints the config of nginx proxying over TLS to the
#                          upstream with authgate's certificate ($WORK/authgate/cert.pem).
#   gateway_conf TLS_PORT PLAIN_PORT UPSTREAM_PORT ADMIN_PORT MAX_CONNECTIONS [UPSTREAM_LINES]
#                          prints authgate's benchmark gateway.toml (to $WORK/authgate/): one
#                          worker thread, access log off, the ES256 issuer of mint_keygen (kid
#                          `bench`, `subject = "local"`, group claim `gid`), routes / and /public
#                          (auth = "public") to the upstream. ADMIN_PORT or MAX_CONNECTIONS ""
#                          leaves that setting out; UPSTREAM_LINES go into [upstream].

BENCH_ISSUER=https://bench-idp
BENCH_KID=bench

bench_init() { # NAME
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  ROOT=$PWD
  WORK=$(mktemp -d "/tmp/authgate-$1.XXXXXX")
  PIDS=()
  CLK=$(getconf CLK_TCK)
  trap bench_cleanup EXIT
}
raise_fd_limit() { ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; }

stop_all() {
  local pid
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  sleep 0.3
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; done
  PIDS=()
}

bench_cleanup() {
  stop_all
  if declare -F on_cleanup > /dev/null; then on_cleanup || true; fi
  rm -rf "$WORK"
}

install_tools() { # TOOL...
  local tool need=()
  for tool in "$@"; do command -v "$tool" > /dev/null || need+=("$tool"); done
  if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" > /dev/null
  fi
}

require_tools() { # TOOL...
  local tool
  for tool in "$@"; do command -v "$tool" > /dev/null || { echo "$tool is needed" >&2; exit 1; }; done
}

build_release() { # [EXAMPLE...]
  local example args=()
  for example in "$@"; do args+=(--example "$example"); done
  echo "== building authgate (release)"
  cargo build --release --quiet --bin authgate "${args[@]}"
  TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
  BIN=$TARGET/release/authgate
  MINT=$TARGET/release/examples/mint
  FLOOR=$TARGET/release/examples/floor
}

mint_keygen() { "$MINT" keygen "$WORK"; }
mint_tokens() { "$MINT" tokens "$WORK/idp-key.pem" "$BENCH_ISSUER" "$BENCH_KID" "$1"; }

start() { # NAME CMD...
  local name=$1; shift
  "$@" > "$WORK/$name.log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
  echo "$STARTED" > "$WORK/$name.pid.main"
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

wait_port() { # PORT [SECONDS [LOG]]
  local _
  for _ in $(seq $((${2:-10} * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "port $1 never opened" >&2
  if [ -n "${3:-}" ]; then cat "$3" >&2; fi
  exit 1
}
port_free() { # PORT...
  local port
  for port in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "port $port is already in use (another benchmark running?)" >&2; exit 1
    fi
  done
}

family() { echo "$1 $(pgrep -P "$1" | tr '\n' ' ')"; }
ticks() {
  local p sum=0
  for p in $1; do [ -r "/proc/$p/stat" ] && sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo $sum
}
status_kb() { # "PID..." KEY
  local p sum=0
  for p in $1; do [ -r "/proc/$p/status" ] && sum=$((sum + $(awk -v k="$2:" '$1==k{print $2}' "/proc/$p/status"))); done
  echo $sum
}
hwm_kb() { status_kb "$1" VmHWM; }
status_mb() { echo $(($(status_kb "$1" "$2") / 1024)); }
cpu_us() { # TICKS N [DECIMALS]
  awk -v d="$1" -v n="$2" -v clk="$CLK" -v f="%.${3:-1}f" 'BEGIN{printf f, d * 1e6 / clk / n}'
}

wrk_stats() { # FILE
  WRK_N=$(awk '/requests in/{print $1}' "$1")
  WRK_RPS=$(awk '/Requests\/sec/{printf "%d", $2}' "$1")
  WRK_P50=$(awk '$1=="50%"{print $2}' "$1")
  WRK_P99=$(awk '$1=="99%"{print $2}' "$1")
  WRK_NON2XX=$(awk '/Non-2xx/{print $NF}' "$1")
  WRK_NON2XX=${WRK_NON2XX:-0}
}

machine_desc() {
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(uname -m), $(nproc) cores"
}

nginx_upstream_conf() { # PORT [WORKER_CONNECTIONS [LISTEN_OPTIONS]]
  cat <<CONF
worker_processes 1; daemon off; pid $WORK/upstream.pid; error_log $WORK/upstream.err warn;
events { worker_connections ${2:-20000}; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:$1${3- backlog=4096}; location / { return 200 "hello world\n"; } } }
CONF
}

# nginx with authgate's TLS suite order (AES-128-GCM-SHA256 first, the server's choice), so
# both negotiate the same suite with `openssl s_time` (which asks for AES-256-GCM-SHA384 first).
# NGINX_SUITES=client keeps nginx's default (the client's order).
nginx_tls_conf() { # PORT UPSTREAM_PORT
  local suites="ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256; ssl_prefer_server_ciphers on;"
  [ "${NGINX_SUITES:-server}" = client ] && suites=""
  cat <<CONF
worker_processes 1; daemon off; pid $WORK/nginx-tls.pid; error_log $WORK/nginx-tls.err warn;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 10000000;
  upstream u { server 127.0.0.1:$2; keepalive 128; }
  ssl_session_cache shared:SSL:10m;
  server { listen 127.0.0.1:$1 ssl backlog=4096;
    ssl_certificate $WORK/authgate/cert.pem; ssl_certificate_key $WORK/authgate/key.pem; $suites
    location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
}

gateway_conf() { # TLS_PORT PLAIN_PORT UPSTREAM_PORT ADMIN_PORT MAX_CONNECTIONS [UPSTREAM_LINES]
  local admin="" max=""
  [ -n "$4" ] && admin="[admin]
listen = \"127.0.0.1:$4\"
"
  [ -n "$5" ] && max="max_connections = $5
"
  cat <<CONF
[server]
listen = "127.0.0.1:$1"
plain_listen = "127.0.0.1:$2"
worker_threads = 1
${max}max_connections_per_ip = 0   # every load generator connects from 127.0.0.1
[tls]
cert = "cert.pem"
key = "key.pem"
dev_self_signed = true
${admin}[log]
level = "warn"
access_log = false
[upstream]
pool_max_idle_per_host = 128
${6:+$6
}[[issuers]]
issuer = "$BENCH_ISSUER"
public_key_file = "$WORK/idp-pub.pem"
kid = "$BENCH_KID"
algorithms = ["ES256"]
group_claim = "gid"
subject = "local"        # the bench tokens' subs are user ids; a prefix would do as well
[[routes]]
prefix = "/"
upstream = "http://127.0.0.1:$3"
# Only for the requests that carry no token (TLS handshakes, the public-route rows).
[[routes]]
prefix = "/public"
upstream = "http://127.0.0.1:$3"
auth = "public"
CONF
}

s_time_run() { # NAME PORT "PID..." -new|-reuse: `openssl s_time` for DURATION seconds on /public
  local name=$1 port=$2 pids=$3 mode=$4 before after
  before=$(ticks "$pids")
  openssl s_time -connect "127.0.0.1:$port" "$mode" -www /public -time "$DURATION" > "$WORK/$name.stime" 2>&1 || true
  after=$(ticks "$pids")
  ST_TICKS=$((after - before))
  # "N connections in T real seconds": the line without "user sec".
  read -r ST_N ST_T < <(awk '/connections in/ && /real seconds/{print $1, $4}' "$WORK/$name.stime" | tail -1) || true
  ST_N=${ST_N:-0}; ST_T=${ST_T:-$DURATION}
}
