#!/usr/bin/env bash
# Edge test: authgate as the forward-auth decision service behind a real nginx (issue 24), with
# the shipped deploy/nginx/authgate-forward-auth.conf.
#
# Proves, through Debian's nginx running that file (only its addresses, ports and certificate
# paths changed), that the app behind nginx receives exactly the user_id / group_id authgate
# decided and never an identity header the client sent (any spelling, with or without a token),
# that refusals hold (401 without a token, 403 for a non-admin naming another user, the path
# readings: /pub public but /pub/secret;x and /pub/SECRET not), that an admin acting for a user
# reaches the app as that user with X-Impersonator-Id, that the app gets the request target
# authgate judged and never the session cookie (checks.py) — and, in headless Chromium
# (browser.test.mjs), that a navigation to a session route without a session goes to
# /open/signin through nginx's error_page, and after signing in (on the app's own host, through
# nginx) lands on the page asked for with the user injected.
#
#   1. installs nginx (and Chromium) with apt-get when missing (as root), the pinned npm
#      packages (`npm ci` in tests/edge), builds authgate unless AUTHGATE_BIN is set;
#   2. writes into a temp dir: a certificate (openssl) for authgate and nginx, a gateway config
#      with [forward_auth] and upstream = "none" routes, users; starts `authgate serve`, the
#      recording app (app.py) and nginx (its own pid file, logs and temp paths in the temp dir);
#   3. runs checks.py and browser.test.mjs; stops everything it started, whatever happens.
#
# Run from anywhere:   bash tests/edge/run.sh
# Environment:         AUTHGATE_BIN    the binary (default: <repo>/target/debug/authgate, brought
#                                      up to date with `cargo build --locked`)
#                      NGINX           the nginx binary (default: nginx on PATH, else installed)
#                      CHROMIUM        the browser (default: /usr/bin/chromium)
#                      KEEP_EDGE_TMP=1 keep the temp dir (configs, logs, the app's records)
# Prints PASS/FAIL per check; exits non-zero when anything fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${AUTHGATE_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/authgate}"
chromium="${CHROMIUM:-/usr/bin/chromium}"
python="${PYTHON:-python3}"
shipped="$repo/deploy/nginx/authgate-forward-auth.conf"
t0=$SECONDS
export PYTHONDONTWRITEBYTECODE=1
# Our config is the whole truth: no AUTHGATE__… override from the caller's environment.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^AUTHGATE__' || true)

log() { echo "== edge: $* (+$((SECONDS - t0)) s)"; }

# --- 1. nginx, Chromium, Node packages, the binary --------------------------------------------
apt_install() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "edge: $* missing; install as root: apt-get install $*" >&2
    exit 1
  fi
  log "installing $* (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine's package lists may be stale or absent; wait for a dpkg lock held by
  # another installer instead of failing on it.
  apt_get() { timeout 900 apt-get -o DPkg::Lock::Timeout=300 -qq "$@" </dev/null; }
  apt_get update
  apt_get install -y --no-install-recommends "$@" >/dev/null
}
nginx_bin="${NGINX:-$(command -v nginx || true)}"
if [[ -z "$nginx_bin" && -x /usr/sbin/nginx ]]; then nginx_bin=/usr/sbin/nginx; fi
if [[ -z "$nginx_bin" ]]; then
  apt_install nginx
  nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
fi
[[ -x "$nginx_bin" ]] || { echo "edge: no nginx binary at $nginx_bin" >&2; exit 1; }
if [[ ! -x "$chromium" ]]; then
  [[ -z "${CHROMIUM:-}" ]] || { echo "edge: CHROMIUM=$chromium is not an executable file" >&2; exit 1; }
  apt_install chromium
fi
for tool in openssl node npm "$python"; do
  command -v "$tool" >/dev/null || { echo "edge: $tool is required" >&2; exit 1; }
done
# The interpreter itself, not a version manager's shim (which costs most of a second a call).
python="$("$python" -c 'import sys; print(sys.executable)')"

# playwright-core from the committed lock file; again only when the lock file changed.
lock_sum="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [[ "$(cat "$here/node_modules/.edge-lock-sha256" 2>/dev/null || true)" != "$lock_sum" ]]; then
  log "installing npm packages (tests/edge/package-lock.json)"
  export npm_config_update_notifier=false PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
  (cd "$here" && timeout 600 npm ci --no-audit --no-fund --loglevel=error </dev/null >/dev/null)
  echo "$lock_sum" >"$here/node_modules/.edge-lock-sha256"
fi

if [[ -n "${AUTHGATE_BIN:-}" ]]; then
  [[ -x "$bin" ]] || { echo "edge: AUTHGATE_BIN=$bin is not an executable file" >&2; exit 1; }
else
  # Always ask cargo: a no-op when the binary is current, never a stale binary.
  log "building authgate (cargo build --locked)"
  (cd "$repo" && cargo build --locked --quiet)
fi

# --- 2. the temp dir, and what runs in it ------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/authgate-edge.XXXXXX")"
pids=()
cleanup() {
  local status=$?
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $status -ne 0 ]]; then
    echo "edge: FAILED (exit status $status)" >&2
    for f in gateway.log app.log nginx/error.log; do
      if [[ -s "$tmp/$f" ]]; then
        echo "---- last lines of $tmp/$f ----" >&2
        tail -n 25 "$tmp/$f" >&2 || true
      fi
    done
  fi
  if [[ -n "${KEEP_EDGE_TMP:-}" ]]; then
    echo "edge: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Free ports, all distinct (bound together, then released): authgate, its admin listener, the
# app, nginx.
read -r gw_port admin_port app_port edge_port < <("$python" -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

# One certificate for authgate and nginx (localhost, 127.0.0.1); nginx verifies authgate's
# against it, the checks trust it, Chromium is told to ignore it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null

# The gateway: [forward_auth] with its defaults (path /_authgate/check, loopback may ask, nginx
# convention answered with 401 + X-Authgate-Sign-In), the oauth2 dialect for the sign-in and
# logout pages under /open/, and routes decided here, served by nginx (upstream = "none"):
# /pub public, /pub/secret a token, /api a token, /app a browser session.
config="$tmp/gateway.toml"
cat >"$config" <<EOF
[server]
listen = "127.0.0.1:$gw_port"
header_read_timeout = "5s"

[tls]
cert = "cert.pem"
key = "key.pem"

[admin]
listen = "127.0.0.1:$admin_port"

[log]
format = "json"
level = "info"
access_log = true

[store]
url = "sqlite://data/authgate.db"

[dialects.oauth2]
enabled = true
[dialects.oauth2.openid]
enabled = false
[dialects.mobile]
enabled = false
[dialects.passport]
enabled = false
[dialects.app]
enabled = false

[forward_auth]

[[routes]]
name = "pub"
prefix = "/pub"
upstream = "none"
auth = "public"

[[routes]]
name = "pub-secret"
prefix = "/pub/secret"
upstream = "none"
auth = "authenticated"

[[routes]]
name = "api"
prefix = "/api"
upstream = "none"
auth = "authenticated"

[[routes]]
name = "app"
prefix = "/app"
upstream = "none"
auth = "session"
EOF

ag() { timeout 60 "$bin" "$@" --config "$config"; }
ag check >/dev/null
ag user add alice --id 100 --group-id 7 --password-stdin >/dev/null <<<'correct horse battery'
ag user add bob --id 101 --group-id 8 --password-stdin >/dev/null <<<'bob battery staple'
ag user add boss --id 1 --group-id 1 --admin --password-stdin >/dev/null <<<'boss battery staple'
for user in alice bob boss; do
  ag token issue --user "$user" >"$tmp/token-$user"
  [[ -s "$tmp/token-$user" ]] || { echo "edge: \`authgate token issue\` printed no token" >&2; exit 1; }
done

# nginx: a main config of the test's own around the shipped file, which goes in verbatim but for
# the substitutions below (each must hit exactly once: a changed file fails here, not silently).
mkdir -p "$tmp/nginx/temp"
edge_conf="$tmp/nginx/authgate-forward-auth.conf"
cp "$shipped" "$edge_conf"
substitute() { # FROM TO
  local count
  count="$(grep -cF -- "$1" "$edge_conf" || true)"
  if [[ "$count" != 1 ]]; then
    echo "edge: \`$1\` occurs $count times in $shipped (expected once)" >&2
    exit 1
  fi
  local text
  text="$(cat "$edge_conf")"
  printf '%s\n' "${text//"$1"/"$2"}" >"$edge_conf"
}
substitute "server 127.0.0.1:8443;" "server 127.0.0.1:$gw_port;"
substitute "server 127.0.0.1:8080;" "server 127.0.0.1:$app_port;"
substitute "listen 443 ssl http2;" "listen 127.0.0.1:$edge_port ssl http2;"
substitute "/etc/nginx/tls/app.example.com.crt" "$tmp/cert.pem"
substitute "/etc/nginx/tls/app.example.com.key" "$tmp/key.pem"
substitute "/etc/authgate/tls/cert.pem" "$tmp/cert.pem"
# The workers run as this user (as root, nginx would switch them to nobody, who cannot read
# the temp dir); not root, nginx ignores the directive.
cat >"$tmp/nginx/nginx.conf" <<EOF
user $(id -un) $(id -gn);
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log notice;
events { worker_connections 512; }
http {
    access_log $tmp/nginx/access.log;
    client_body_temp_path $tmp/nginx/temp/body;
    proxy_temp_path $tmp/nginx/temp/proxy;
    fastcgi_temp_path $tmp/nginx/temp/fastcgi;
    uwsgi_temp_path $tmp/nginx/temp/uwsgi;
    scgi_temp_path $tmp/nginx/temp/scgi;
    default_type application/octet-stream;
    include $edge_conf;
}
EOF
nginx_args=(-p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf")
if ! "$nginx_bin" -t -q "${nginx_args[@]}"; then
  echo "edge: nginx refused the config ($edge_conf)" >&2
  exit 1
fi

log "starting authgate (127.0.0.1:$gw_port), the app (:$app_port), nginx (https://127.0.0.1:$edge_port) in $tmp"
: >"$tmp/records.jsonl"
"$bin" serve --config "$config" </dev/null >"$tmp/gateway.log" 2>&1 &
pids+=($!); gateway_pid=$!
"$python" "$here/app.py" "$app_port" "$tmp/records.jsonl" </dev/null >"$tmp/app.log" 2>&1 &
pids+=($!); app_pid=$!
"$nginx_bin" "${nginx_args[@]}" </dev/null >"$tmp/nginx/stdout.log" 2>&1 &
pids+=($!); nginx_pid=$!

# Until each answers (authgate: /readyz; the app: /ready; nginx: a TCP connection), while it
# lives; 30 s at most.
if ! timeout 30 "$python" - "$admin_port:$gateway_pid:/readyz" "$app_port:$app_pid:/ready" \
    "$edge_port:$nginx_pid:tcp" <<'EOF'; then
import http.client, socket, sys, time
for spec in sys.argv[1:]:
    port, pid, probe = spec.split(":")
    while True:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    sys.exit(f"the process on port {port} exited during start-up")
        except OSError:
            sys.exit(f"the process on port {port} exited during start-up")
        try:
            if probe == "tcp":
                socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()
                break
            c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=2)
            c.request("GET", probe)
            if c.getresponse().status == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
EOF
  echo "edge: authgate, the app or nginx did not start" >&2
  exit 1
fi

# --- 3. the checks ------------------------------------------------------------------------------
status=0
export EDGE_BASE="https://127.0.0.1:$edge_port" AUTHGATE_DIRECT="https://127.0.0.1:$gw_port" \
  EDGE_CA="$tmp/cert.pem" \
  EDGE_RECORDS="$tmp/records.jsonl" EDGE_TOKENS="$tmp" \
  AUTHGATE_BIN="$bin" AUTHGATE_CONFIG="$config" CHROMIUM="$chromium" \
  ARTIFACTS="$here/artifacts"
log "checks through nginx (checks.py)"
timeout -k 5 120 "$python" "$here/checks.py" </dev/null || status=1
log "the browser through nginx (browser.test.mjs)"
rm -rf "$here/artifacts"
# TMPDIR puts Chromium's profile in $tmp; the test's own fetch calls trust the certificate.
(cd "$here" && TMPDIR="$tmp" NODE_EXTRA_CA_CERTS="$tmp/cert.pem" \
  timeout -k 10 120 node browser.test.mjs </dev/null) || status=1

for name in gateway app nginx; do
  pid_var="${name}_pid"
  if ! kill -0 "${!pid_var}" 2>/dev/null; then
    echo "edge: $name exited during the run" >&2
    status=1
  fi
done
if grep -q '\[\(alert\|emerg\|crit\)\]' "$tmp/nginx/error.log"; then
  echo "edge: nginx logged errors:" >&2
  grep '\[\(alert\|emerg\|crit\)\]' "$tmp/nginx/error.log" >&2
  status=1
fi
log "done (exit status $status)"
exit "$status"
