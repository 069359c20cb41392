#!/usr/bin/env bash
# Differential test: the gateway's reading of a request against four real upstream stacks.
#
# Proves, on Tomcat 10, PHP's built-in server with a legacy front controller, Express 4 and
# Flask/Werkzeug, that (a) no request reaches a stack's protected handler without the
# authentication its gateway route requires (and with a token, only with the identity the
# gateway injected), and (b) no stack sees an identity value the gateway did not inject, an
# override header (X-Original-URL, X-HTTP-Method-Override, ...) or an underscore framing header.
# The corpus (corpus.py, 300+ raw HTTP/1.1 requests: encodings, `;` parameters, `\`, dot
# segments, case, Unicode, identity spellings, overrides, framing, upgrades) goes through the
# gateway to every stack twice, without a token and with a non-admin token; differential.py
# joins each stack's records to the requests and prints a stack x outcome table per pass.
#   1. installs what is missing: Debian tomcat10 and php-cli (apt), Express (npm ci from the
#      committed lock file into node/), Flask (pip, requirements.txt);
#   2. starts the four stacks on free ports of 127.0.0.1, each recording into a JSON-lines file;
#   3. writes a gateway config (per stack, host-based routes: /pub public, /pub/secret
#      authenticated), registers user alice (id 100, group 7), issues her a token, starts the
#      gateway;
#   4. runs differential.py; stops everything it started, whatever happens.
#
# Run from anywhere:   bash tests/differential/run.sh
# Environment:         AUTHGATE_BIN   the binary (default: <repo>/target/debug/authgate, brought
#                                     up to date with `cargo build --locked`)
#                      KEEP_DIFF_TMP=1 keep the temp dir (config, logs, records, report.jsonl)
#                      DIFF_MAX_LISTED=N list at most N violations (default: all)
# Exits 0 when no violation, 1 on violations, 2 when the harness could not conclude (a stack
# failed its control requests or died), 3 when the driver failed, other non-zero when
# something could not be set up.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${AUTHGATE_BIN:-$repo/target/debug/authgate}"
python="${PYTHON:-python3}"
t0=$SECONDS
export PYTHONDONTWRITEBYTECODE=1
# Our config is the whole truth: no AUTHGATE__… override from the caller's environment.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^AUTHGATE__' || true)

log() { echo "== differential: $* (+$((SECONDS - t0)) s)"; }

# --- 1. the binary and the stacks' software ---------------------------------------------------
if [[ -n "${AUTHGATE_BIN:-}" ]]; then
  [[ -x "$bin" ]] || { echo "AUTHGATE_BIN=$bin is not an executable file" >&2; exit 1; }
else
  log "building authgate (cargo build --locked)"
  (cd "$repo" && cargo build --locked --quiet)
fi

missing=()
for pkg in tomcat10 php-cli; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]} (apt)"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  timeout 900 "${sudo_cmd[@]}" apt-get update -qq
  timeout 900 "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
catalina_home="${CATALINA_HOME:-/usr/share/tomcat10}"
[[ -f "$catalina_home/lib/servlet-api.jar" ]] || { echo "no Tomcat at $catalina_home" >&2; exit 1; }
command -v javac >/dev/null || { echo "javac not found (OpenJDK 17 JDK needed)" >&2; exit 1; }
command -v php >/dev/null || { echo "php not found" >&2; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "node/npm not found" >&2; exit 1; }

# Express: `npm ci` from the committed lock file, again only when the lock file changed.
lock_sum="$(sha256sum "$here/node/package-lock.json" | cut -d' ' -f1)"
if [[ "$(cat "$here/node/node_modules/.diff-lock-sha256" 2>/dev/null || true)" != "$lock_sum" ]]; then
  log "installing Express (npm ci in tests/differential/node)"
  (cd "$here/node" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$lock_sum" >"$here/node/node_modules/.diff-lock-sha256"
fi

# Flask: pip, only when the pinned versions are not the installed ones.
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
if ! "$python" - "$here/requirements.txt" <<'EOF' 2>/dev/null; then
import re, sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    m = re.match(r"\s*([A-Za-z0-9_.-]+)==(\S+)", line)
    if m and version(m.group(1)) != m.group(2):
        sys.exit(1)
EOF
  log "installing Flask (pip, tests/differential/requirements.txt)"
  pip_install() {
    timeout 600 "$python" -m pip install --quiet --requirement "$here/requirements.txt" "$@"
  }
  if ! pip_output="$(pip_install 2>&1)"; then
    if grep -q externally-managed-environment <<<"$pip_output"; then
      pip_install --break-system-packages
    else
      echo "$pip_output" >&2
      exit 1
    fi
  fi
fi

# --- 2. the stacks ----------------------------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/authgate-differential.XXXXXX")"
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
  if [[ $status -ne 0 && $status -ne 1 ]]; then
    echo "differential: FAILED (exit status $status)" >&2
    for f in gateway.log tomcat.log php.log express.log flask.log; do
      if [[ -s "$tmp/$f" ]]; then
        echo "---- last lines of $tmp/$f ----" >&2
        tail -n 20 "$tmp/$f" >&2 || true
      fi
    done
  fi
  if [[ -n "${KEEP_DIFF_TMP:-}" ]]; then
    echo "differential: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Free ports, all distinct (bound together, then released).
read -r port admin_port tomcat_port php_port express_port flask_port < <("$python" -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

# Waits until something answers HTTP on 127.0.0.1:$2 (plain), while process $3 lives.
wait_http() {
  local name=$1 port=$2 pid=$3
  # Generous: a JVM on a busy 2-core CI machine can take a minute to start.
  if ! timeout 180 "$python" - "$port" "$pid" <<'EOF'; then
import http.client, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
while True:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                sys.exit("exited during start-up")
    except OSError:
        sys.exit("exited during start-up")
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/ready")
        c.getresponse().read()
        break
    except OSError:
        time.sleep(0.1)
EOF
    echo "differential: $name did not start on 127.0.0.1:$port" >&2
    exit 2
  fi
}

log "starting Tomcat, PHP, Express and Flask in $tmp"
# Tomcat: a CATALINA_BASE of our own, one HTTP connector, no shutdown port, the ROOT webapp.
base="$tmp/tomcat"
mkdir -p "$base"/{conf,logs,temp,work,webapps/ROOT/WEB-INF/classes}
cp "$catalina_home/etc/web.xml" "$base/conf/web.xml" 2>/dev/null || cp /etc/tomcat10/web.xml "$base/conf/web.xml"
cat >"$base/conf/server.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Server port="-1" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector port="$tomcat_port" address="127.0.0.1" protocol="HTTP/1.1"
               connectionTimeout="20000" maxParameterCount="1000"/>
    <Engine name="Catalina" defaultHost="localhost">
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false"/>
    </Engine>
  </Service>
</Server>
EOF
cat >"$base/conf/context.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<Context>
  <JarScanner scanClassPath="false" scanManifest="false"/>
</Context>
EOF
cat >"$base/conf/logging.properties" <<'EOF'
handlers = java.util.logging.ConsoleHandler
.handlers = java.util.logging.ConsoleHandler
.level = INFO
java.util.logging.ConsoleHandler.level = INFO
java.util.logging.ConsoleHandler.formatter = org.apache.juli.OneLineFormatter
EOF
cp "$here/tomcat/web.xml" "$base/webapps/ROOT/WEB-INF/web.xml"
javac -nowarn -d "$base/webapps/ROOT/WEB-INF/classes" -cp "$catalina_home/lib/servlet-api.jar" \
  "$here/tomcat/RecordServlet.java" "$here/tomcat/StackFilter.java"
: >"$tmp/tomcat.jsonl" >"$tmp/php.jsonl" >"$tmp/express.jsonl" >"$tmp/flask.jsonl"
java -Xshare:auto -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx256m \
  -Ddiff.records="$tmp/tomcat.jsonl" \
  -Dcatalina.home="$catalina_home" -Dcatalina.base="$base" -Djava.io.tmpdir="$base/temp" \
  -Djava.util.logging.config.file="$base/conf/logging.properties" \
  -Djava.util.logging.manager=org.apache.juli.ClassLoaderLogManager \
  -cp "$catalina_home/bin/bootstrap.jar:$catalina_home/bin/tomcat-juli.jar" \
  org.apache.catalina.startup.Bootstrap start </dev/null >"$tmp/tomcat.log" 2>&1 &
pids+=($!); tomcat_pid=$!

DIFF_RECORDS="$tmp/php.jsonl" php -n -S "127.0.0.1:$php_port" -t "$here/php" "$here/php/router.php" \
  </dev/null >"$tmp/php.log" 2>&1 &
pids+=($!); php_pid=$!

node "$here/node/app.js" "$express_port" "$tmp/express.jsonl" </dev/null >"$tmp/express.log" 2>&1 &
pids+=($!); express_pid=$!

"$python" "$here/flask/app.py" "$flask_port" "$tmp/flask.jsonl" </dev/null >"$tmp/flask.log" 2>&1 &
pids+=($!); flask_pid=$!

wait_http php "$php_port" "$php_pid"
wait_http express "$express_port" "$express_pid"
wait_http flask "$flask_port" "$flask_pid"
wait_http tomcat "$tomcat_port" "$tomcat_pid"

# --- 3. the gateway ---------------------------------------------------------------------------
# A config of our own: no token dialects (nothing here needs them, and the passport dialect
# would generate a 4096-bit RSA key), per stack a public /pub and an authenticated /pub/secret on
# the stack's virtual host, so the gateway's prefixes are the stacks' own paths. Werkzeug's
# server drops header names with `_`, so Flask's routes inject X-User-Id / X-Group-Id.
config="$tmp/gateway.toml"
cat >"$config" <<EOF
[server]
listen = "127.0.0.1:$port"
header_read_timeout = "5s"

[tls]
cert = "certs/dev-cert.pem"
key = "certs/dev-key.pem"
dev_self_signed = true

[admin]
listen = "127.0.0.1:$admin_port"

[log]
format = "json"
level = "info"
access_log = true

[store]
url = "sqlite://data/authgate.db"

[dialects.oauth2]
enabled = false
[dialects.mobile]
enabled = false
[dialects.passport]
enabled = false
[dialects.app]
enabled = false
EOF
route() { # name host port prefix auth [extra toml lines]
  cat >>"$config" <<EOF

[[routes]]
name = "$1"
host = "$2"
prefix = "$4"
upstream = "http://127.0.0.1:$3"
auth = "$5"
timeout = "5s"
${6:-}
EOF
}
for stack in tomcat php express flask; do
  port_var="${stack}_port"
  extra=""
  [[ $stack == flask ]] && extra=$'user_header = "X-User-Id"\ngroup_header = "X-Group-Id"'
  route "$stack-public" "$stack.test" "${!port_var}" /pub public "$extra"
  route "$stack-secret" "$stack.test" "${!port_var}" /pub/secret authenticated "$extra"
done

ag() { timeout 60 "$bin" --config "$config" "$@"; }
ag check >/dev/null
ag user add alice --id 100 --group-id 7 --password-stdin >/dev/null <<<'correct horse battery'
ag token issue --user alice >"$tmp/token"
[[ -s "$tmp/token" ]] || { echo "differential: \`authgate token issue\` printed no token" >&2; exit 1; }

log "starting the gateway on 127.0.0.1:$port"
"$bin" --config "$config" serve </dev/null >"$tmp/gateway.log" 2>&1 &
pids+=($!); gateway_pid=$!
if ! timeout 30 "$python" - "$admin_port" "$gateway_pid" <<'EOF'; then
import sys, time, urllib.request
port, pid = int(sys.argv[1]), int(sys.argv[2])
while True:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                sys.exit("the gateway exited during start-up")
    except OSError:
        sys.exit("the gateway exited during start-up")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            if r.status == 200:
                break
    except Exception:
        pass
    time.sleep(0.1)
EOF
  echo "differential: the gateway did not become ready on 127.0.0.1:$port" >&2
  exit 1
fi

# --- 4. the corpus ----------------------------------------------------------------------------
log "sending the corpus (differential.py)"
status=0
timeout 600 "$python" "$here/differential.py" --gateway-port "$port" --token-file "$tmp/token" \
  --stack "tomcat=tomcat.test=$tmp/tomcat.jsonl" --stack "php=php.test=$tmp/php.jsonl" \
  --stack "express=express.test=$tmp/express.jsonl" --stack "flask=flask.test=$tmp/flask.jsonl" \
  --report "$tmp/report.jsonl" --max-listed "${DIFF_MAX_LISTED:-0}" || status=$?

for stack in tomcat php express flask gateway; do
  pid_var="${stack}_pid"
  if ! kill -0 "${!pid_var}" 2>/dev/null; then
    echo "differential: $stack exited during the run" >&2
    [[ $status -ne 0 ]] || status=2
  fi
done
log "done (exit status $status)"
exit "$status"
