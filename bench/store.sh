#!/usr/bin/env bash
# The store's hot paths (issue 20), on SQLite and on PostgreSQL, 127.0.0.1 only, wrk -t1 -c16
# against the gateway's plain listener (default runtime, access log off):
#   - refresh-token rotation at /oauth2/token (every request spends a never-used refresh token:
#     bench/store/refresh.lua keeps the one each answer returns), and at the mobile /auth/token;
#   - authorization codes: issued by the login page to a signed-in browser (session cookie, code
#     flow; that row's codes are split between the runs of the next), then each redeemed once
#     at /oauth2/token (bench/store/codes.lua, once.lua);
#   - the proxy path to the built-in echo upstream: one JWT, one opaque token (cached), and
#     opaque tokens each sent once (uncached; pre-issued by mobile refresh rotation);
#   - revocation then first refusal: POST /oauth2/revoke at instance A, then A and a second
#     instance B on the same store (refresh_interval = 2s) polled until they answer 401.
# Reports requests/s, p50/p99 and the gateway's CPU µs per request (utime+stime of its process
# over the run); writes bench/results/store.md.
#
#   bash bench/store.sh        # RUNS=3 DURATION=5 ROUNDS=5 BACKENDS="sqlite postgres"
#
# PostgreSQL: PG_URL (default postgres://postgres:postgres@127.0.0.1:5432/test) is used only to
# create and finally drop a database of the bench's own. Stops every process it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init store
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-5}
BACKENDS=${BACKENDS:-sqlite postgres}
PG_URL=${PG_URL:-postgres://postgres:postgres@127.0.0.1:5432/test}
PG_DB=authgate_bench_$$
PG_CREATED=
on_cleanup() {
  [ -n "$PG_CREATED" ] && psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
}

install_tools wrk
build_release
PASSWORD=bench-password-0123456789
SECRET=bench-secret-0123456789abcdef
REDIRECT_URI=http://127.0.0.1/cb
AUTHORIZE_QUERY="/open/authorize/index?response_type=code&client_id=web&state=s&scope=read&redirect_uri=$REDIRECT_URI"
export AUTHGATE_KEY_SECRET=bench-key-secret-0123456789abcdef-0123 REDIRECT_URI AUTHORIZE_QUERY
export BASIC MOBILE_CLIENT=mob
BASIC=$(printf 'web:%s' "$SECRET" | base64 -w0)
: > "$WORK/rows"
: > "$WORK/revocations"
export SEED_FILE=$WORK/seed

# gateway.toml for instance $2 (a or b) of backend $1; A listens on 1867x, B on 1868x.
config() {
  local dir=$WORK/$1/$2 url port=18670
  [ "$2" = b ] && port=18680
  if [ "$1" = sqlite ]; then url="sqlite://$WORK/$1/authgate.db"; else url=${PG_URL%/*}/$PG_DB; fi
  mkdir -p "$dir"
  cat > "$dir/gateway.toml" <<CONF
[server]
listen = "127.0.0.1:$((port + 3))"
plain_listen = "127.0.0.1:$port"
pid_file = "gateway.pid"
[tls]
cert = "$WORK/cert.pem"
key = "$WORK/key.pem"
dev_self_signed = true
[admin]
listen = "127.0.0.1:$((port + 1))"
[log]
level = "warn"
access_log = false
[auth]
issuer = "https://127.0.0.1:18673"
refresh_interval = "2s"
[store]
url = "$url"
[tokens]
code_ttl = "10m"
[dialects.mobile]
enabled = true
token_format = "opaque"
[[routes]]
name = "echo"
prefix = "/echo"
upstream = "builtin:echo"
auth = "authenticated"
CONF
  echo "$dir/gateway.toml"
}
serve() { # serve CONFIG PORT: start a gateway, wait for its plain listener; its pid in PIDS
  "$BIN" serve --config "$1" > "${1%.toml}.log" 2>&1 &
  PIDS+=($!)
  wait_port "$2" 10 "${1%.toml}.log"
}
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
oauth_password() { curl -sf -H "Authorization: Basic $BASIC" "$URL/oauth2/token" -d grant_type=password \
  -d username=alice --data-urlencode "password=$PASSWORD" -d scope=read; }
mobile_password() { curl -sf "$URL/auth/token" -d client_id=mob -d grant_type=password \
  -d username=alice --data-urlencode "password=$PASSWORD"; }

# row BACKEND LABEL PREP WRK-ARGS...: RUNS runs of wrk; PREP (a function or :) runs before each.
# A script printing "ONCE answers seconds" (once.lua) gives the rate; else wrk's Requests/sec.
row() {
  local backend=$1 label=$2 prep=$3 run before after n rps p50 p99 non2xx cpu once
  shift 3
  for run in $(seq "$RUNS"); do
    "$prep" "$run"
    before=$(ticks "$GW")
    wrk -t1 -c16 -d"${DURATION}s" --latency "$@" "${ROW_URL:-$URL}" > "$WORK/wrk.out"
    after=$(ticks "$GW")
    wrk_stats "$WORK/wrk.out"
    n=$WRK_N rps=$WRK_RPS p50=$WRK_P50 p99=$WRK_P99 non2xx=$WRK_NON2XX
    once=$(awk '/^ONCE/{print $2, $3}' "$WORK/wrk.out")
    if [ -n "$once" ]; then
      n=${once% *}; rps=$(awk -v n="$n" -v s="${once#* }" 'BEGIN{printf "%d", n / s}')
    fi
    cpu=$(cpu_us $((after - before)) "$n")
    echo "$backend, $label, run $run: $rps/s, p50 $p50, p99 $p99, $cpu CPU µs/req, $n answers, non-2xx $non2xx"
    echo "$backend|$label|$rps|$p50|$p99|$cpu|$non2xx|$n" >> "$WORK/rows"
  done
}

# Per-run preparations.
seed_refresh() { # 32 fresh refresh tokens (password grant) for refresh.lua's pool
  : > "$WORK/seed"
  for _ in $(seq 32); do oauth_password | json refresh_token >> "$WORK/seed"; done
}
seed_mobile() {
  : > "$WORK/seed"
  for _ in $(seq 32); do mobile_password | json refresh_token >> "$WORK/seed"; done
  rm -f "$WORK/opaque"
}
share() { # share FILE RUN: the run's share of the pre-issued lines of FILE, into FILE.run
  local per
  per=$(( $(wc -l < "$1") / RUNS ))
  sed -n "$(( ($2 - 1) * per + 1 )),$(( $2 * per ))p" "$1" > "$1.run"
}
split_codes() { share "$WORK/codes" "$1"; }
split_opaque() { share "$WORK/opaque" "$1"; }

for backend in $BACKENDS; do
  echo "== $backend"
  if [ "$backend" = postgres ]; then
    psql -q "$PG_URL" -c "CREATE DATABASE $PG_DB" > /dev/null
    PG_CREATED=1
  fi
  A=$(config "$backend" a)
  "$BIN" user add alice --config "$A" --password-stdin <<< "$PASSWORD" > /dev/null
  "$BIN" client add web --config "$A" --grant password --grant refresh_token \
    --grant authorization_code --redirect-uri "$REDIRECT_URI" --scope read --secret-stdin <<< "$SECRET" > /dev/null
  "$BIN" client add mob --config "$A" --public --grant password --grant refresh_token > /dev/null
  serve "$A" 18670
  GW=${PIDS[0]}
  URL=http://127.0.0.1:18670

  # Sanity: each kind of token answers on the proxy path.
  JWT=$(oauth_password | json access_token)
  OPAQUE=$(mobile_password | json access_token)
  for t in "$JWT" "$OPAQUE"; do
    curl -sf -o /dev/null -H "Authorization: Bearer $t" "$URL/echo/bench" || { echo "a token is refused" >&2; exit 1; }
  done
  # A signed-in browser: the login page's CSRF cookie, then the form (over TLS: Secure cookies).
  curl -sk -c "$WORK/jar" -o /dev/null "https://127.0.0.1:18673$AUTHORIZE_QUERY"
  csrf=$(awk '/authgate_csrf/{print $7}' "$WORK/jar")
  curl -sk -b "$WORK/jar" -c "$WORK/jar" -o /dev/null "https://127.0.0.1:18673/open/authorize/index" \
    --data "${AUTHORIZE_QUERY#*\?}&csrf_token=$csrf&username=alice&password=$PASSWORD&action=login"
  SESSION=$(awk '/__Host-authgate-session/{print $7}' "$WORK/jar")
  export SESSION
  [ -n "$SESSION" ] || { echo "no login session" >&2; exit 1; }

  wrk -t1 -c16 -d1s -H "Authorization: Bearer $JWT" "$URL/echo/bench" > /dev/null # warm-up
  row "$backend" "refresh rotation, /oauth2/token (JWT)" seed_refresh -s bench/store/refresh.lua
  DIALECT=mobile OUT=$WORK/opaque row "$backend" "refresh rotation, mobile /auth/token (opaque)" seed_mobile -s bench/store/refresh.lua
  rm -f "$WORK/codes"
  OUT=$WORK/codes row "$backend" "authorization code issued (login page, signed in)" : -s bench/store/codes.lua
  LINES_FILE=$WORK/codes.run MODE=code row "$backend" "authorization code redeemed, /oauth2/token" split_codes -s bench/store/once.lua
  ROW_URL=$URL/echo/bench row "$backend" "proxy, JWT, same token (cached)" : -H "Authorization: Bearer $JWT"
  ROW_URL=$URL/echo/bench row "$backend" "proxy, opaque, same token (cached)" : -H "Authorization: Bearer $OPAQUE"
  LINES_FILE=$WORK/opaque.run MODE=bearer row "$backend" "proxy, opaque, distinct tokens (uncached)" split_opaque -s bench/store/once.lua

  # Revocation then first refusal, at A and at B (same store, learns it by its 2 s reload).
  serve "$(config "$backend" b)" 18680
  python3 bench/store/revoke.py "$ROUNDS" "$BASIC" mob "$(oauth_password | json refresh_token)" \
    "$(mobile_password | json refresh_token)" 127.0.0.1:18670 127.0.0.1:18680 |
    sed "s/^/$backend /" | tee -a "$WORK/revocations"
  stop_all
  if [ "$backend" = postgres ]; then
    psql -q "$PG_URL" -c "DROP DATABASE $PG_DB WITH (FORCE)" > /dev/null
    PG_CREATED=
  fi
done

OUT=bench/results/store.md
mkdir -p bench/results
MACHINE=$(machine_desc) python3 - "$WORK/rows" "$WORK/revocations" "$RUNS" "$DURATION" "$ROUNDS" > "$OUT" <<'PY'
import statistics, sys, os, datetime
rows_file, rev_file, runs, duration, rounds = sys.argv[1:6]
rows = [l.strip().split("|") for l in open(rows_file) if l.strip()]
med = statistics.median
print(f"Measured {datetime.date.today()} on {os.environ['MACHINE']}; "
      f"`bash bench/store.sh` (median of {runs} runs of {duration} s, wrk -t1 -c16, plain HTTP "
      f"on 127.0.0.1). The machine is shared and other work may have been running: the numbers "
      f"are indicative, compare rows of one run.\n")
print("| store | workload | requests/s | p50 | p99 | CPU µs/request | answers (sum) | non-2xx |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
groups = {}
for r in rows:
    groups.setdefault((r[0], r[1]), []).append(r)
for (backend, label), rs in groups.items():
    mid = sorted(rs, key=lambda r: int(r[2]))[len(rs) // 2]  # the median run's latencies
    print(f"| {backend} | {label} | {med(int(r[2]) for r in rs):,.0f} | {mid[3]} | {mid[4]} | "
          f"{med(float(r[5]) for r in rs):.1f} | {sum(int(r[7]) for r in rs):,} | "
          f"{sum(int(r[6]) for r in rs)} |")
print("\nWhat the rows measure. Refresh rotation: every request spends a refresh token never "
      "used before (the pool of bench/store/refresh.lua: 32 from password grants, then the one "
      "each answer returns); /oauth2/token answers a JWT, /auth/token an opaque token. Codes: "
      "issued by GET /open/authorize/index for a browser signed in on the login page (session "
      "cookie), then each redeemed once (client_secret_basic); each run gets its share of the "
      "codes of the row before. Proxy rows: GET /echo/bench (authenticated route, built-in echo "
      "upstream); uncached: opaque tokens issued by the mobile rotation row, each sent once, the "
      "rate over the time until the last answer (few thousand requests: p99 is rough). CPU "
      "µs/request: utime+stime of the gateway over the run, divided by the answers.")
print(f"\nRevocation then first refusal ({rounds} rounds each): milliseconds from sending "
      "POST /oauth2/revoke to instance A until the proxy path answers 401, polled every ~1 ms on "
      "a keep-alive connection; B is a second gateway on the same store (`refresh_interval = "
      "\"2s\"`), which had already accepted (and cached) the token.\n")
print("| store | token | instance | p50 ms | max ms | revoke answered in (p50 ms) |")
print("|---|---|---|---:|---:|---:|")
for line in open(rev_file):
    backend, kind, inst, p50, mx, rv = line.split()
    print(f"| {backend} | {kind} | {'A (revoked here)' if inst == 'A' else 'B (other instance)'} "
          f"| {p50} | {mx} | {rv} |")
PY
cat "$OUT"
