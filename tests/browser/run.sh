#!/usr/bin/env bash
# Browser tests: a real headless Chromium signs in on a running gateway, on the login page and
# on a session route.
#
# Proves, in Debian's Chromium driven by playwright-core (login.test.mjs), that a person can
# open the authorize URL, type the credentials and land on the client's redirect URI with a code
# that exchanges for tokens; that a wrong password shows the error and issues nothing; Enter,
# Cancel, the login session, the implicit flow, a bad redirect URI, PKCE and a phone-sized
# viewport; and OpenID Connect: the code flow's ID token (claims, signature against the JWKS),
# silent sign-in (prompt=none), response_mode=form_post (with and without JavaScript) and
# logout at /open/logout (id_token_hint, and the confirmation page).
#
# And (sessions.test.mjs, issue 23) that a legacy web app behind a route with auth = "session"
# works in a browser and is safe: a navigation without a session goes to /open/signin and,
# after signing in, back to the page asked for, where the app shows the user_id and group_id
# the gateway injected; the __Host-authgate-session cookie is host-only, Path=/, Secure,
# HttpOnly, SameSite=Lax, and never reaches the app (its own cookies do); a reload keeps the
# session; the app's own form POST works; a POST from a page of another origin is refused with
# 403 cross_site_request even though Chromium sends the cookie along (same site, other port,
# so SameSite does not help: the gateway's same-origin rule does), and from a plain-http page
# (cross-site: no cookie) with 401, the app receiving neither; logout, and
# `authgate user revoke-tokens` while signed in, send the next navigation to the sign-in page
# (the session ended on the gateway: the old cookie does not bring it back). Non-browser
# requests get 401 JSON, never a redirect.
#
# Screenshots (login.png, login-error.png, login-mobile.png, form-post-noscript.png,
# logout-confirm.png, legacy-signin.png, legacy-app.png, legacy-cross-site.png) go to
# tests/browser/artifacts/.
#
# This script sets the stage:
#   1. installs Chromium with apt-get when it is missing (as root; playwright-core drives the
#      system Chromium and never downloads a browser) and the pinned npm packages (`npm ci`);
#   2. builds authgate (`cargo build --locked`) unless AUTHGATE_BIN names a binary;
#   3. writes a gateway config into a temp dir (a copy of the shipped gateway.toml plus the
#      session route /legacy, listeners on free ports of 127.0.0.1, auth.refresh_interval
#      250ms), registers two users and three clients with the authgate CLI;
#   4. starts `authgate serve`, waits until it answers, runs login.test.mjs (which serves the
#      clients' redirect URIs itself) and sessions.test.mjs (which serves the legacy app and
#      the cross-origin pages itself, and runs `authgate user revoke-tokens`), and always
#      stops the gateway and removes the temp dir.
#
# Run from anywhere:   bash tests/browser/run.sh
# Environment:         AUTHGATE_BIN        the binary (default: <repo>/target/debug/authgate,
#                                          brought up to date with `cargo build --locked`)
#                      CHROMIUM            the browser (default: /usr/bin/chromium)
#                      KEEP_BROWSER_TMP=1  keep the temp dir (config, store, gateway log)
# Exits non-zero when anything fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${AUTHGATE_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/authgate}"
chromium="${CHROMIUM:-/usr/bin/chromium}"
artifacts="$here/artifacts"

log() { echo "== browser: $*"; }

# --- 1. Chromium, Node packages, the binary ---------------------------------------------------
if [[ ! -x "$chromium" ]]; then
  if [[ -n "${CHROMIUM:-}" ]]; then
    echo "browser: CHROMIUM=$chromium is not an executable file" >&2
    exit 1
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "browser: $chromium is missing; install it as root: apt-get install chromium" >&2
    exit 1
  fi
  log "installing Chromium (apt-get install chromium)"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine's package lists may be stale or absent; wait for a dpkg lock held by
  # another installer instead of failing on it.
  apt_get() { timeout 900 apt-get -o DPkg::Lock::Timeout=300 -qq "$@" </dev/null; }
  apt_get update
  apt_get install -y --no-install-recommends chromium >/dev/null
fi
command -v node >/dev/null || { echo "browser: node (>= 20) is required" >&2; exit 1; }
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if (( node_major < 20 )); then
  echo "browser: node >= 20 is required (found $(node --version))" >&2
  exit 1
fi

log "installing npm packages (tests/browser/package-lock.json)"
export npm_config_update_notifier=false
# playwright-core downloads nothing on install; this keeps it so if that ever changes.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd "$here" && timeout 600 npm ci --no-audit --no-fund --loglevel=error </dev/null)

if [[ -n "${AUTHGATE_BIN:-}" ]]; then
  [[ -x "$bin" ]] || { echo "browser: AUTHGATE_BIN=$bin is not an executable file" >&2; exit 1; }
else
  # Always ask cargo: a no-op when the binary is current, never a stale binary.
  log "building authgate (cargo build --locked)"
  (cd "$repo" && cargo build --locked --quiet)
fi

# --- 2. a config of our own in a temp dir ----------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/authgate-browser.XXXXXX")"
gateway_pid=""
cleanup() {
  local status=$?
  if [[ -n "$gateway_pid" ]] && kill -0 "$gateway_pid" 2>/dev/null; then
    kill -TERM "$gateway_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$gateway_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$gateway_pid" 2>/dev/null || true
    wait "$gateway_pid" 2>/dev/null || true
  fi
  if [[ $status -ne 0 ]]; then
    echo "browser: FAILED (exit status $status)" >&2
    if [[ -f "$tmp/gateway.log" ]]; then
      echo "---- last lines of the gateway log ($tmp/gateway.log) ----" >&2
      tail -n 40 "$tmp/gateway.log" >&2 || true
    fi
  fi
  if [[ -n "${KEEP_BROWSER_TMP:-}" ]]; then
    echo "browser: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Six distinct free ports: the gateway, its admin listener, the clients' redirect URIs (served
# by login.test.mjs), and for sessions.test.mjs the legacy app behind the session route, a
# cross-origin page over HTTPS and one over plain HTTP. They are chosen before anything listens
# on them (the route's upstream and the clients' redirect URIs name them).
read -r port admin_port client_port legacy_port attacker_port plain_attacker_port < <(node -e '
  const net = require("net");
  const servers = [0, 1, 2, 3, 4, 5].map(() => net.createServer());
  Promise.all(servers.map((s) => new Promise((r) => s.listen(0, "127.0.0.1", r)))).then(() => {
    console.log(servers.map((s) => s.address().port).join(" "));
    servers.forEach((s) => s.close());
  });')
[[ -n "$plain_attacker_port" ]] || { echo "browser: no free ports on 127.0.0.1" >&2; exit 1; }

# The shipped config plus one route (below); the listeners and the refresh interval are set by
# the documented environment overrides (exported, so the CLI below reads the same configuration
# as the server). Relative paths in it (store, key secret, dev certificate) resolve against
# $tmp, where they are created.
cp "$repo/gateway.toml" "$tmp/gateway.toml"
export AUTHGATE__SERVER__LISTEN="127.0.0.1:$port"
export AUTHGATE__ADMIN__LISTEN="127.0.0.1:$admin_port"
export AUTHGATE__LOG__FORMAT="json"
# Revocations (`authgate user revoke-tokens`) reach the running gateway within this; shorter
# than the shipped 2 s so sessions.test.mjs's bounded wait for it stays short.
export AUTHGATE__AUTH__REFRESH_INTERVAL="250ms"
config="$tmp/gateway.toml"
base="https://127.0.0.1:$port"
legacy_origin="http://127.0.0.1:$legacy_port"
# The legacy web app (served by sessions.test.mjs) behind a session route: the browser's
# session cookie, nothing else, lets a request through.
cat >>"$config" <<EOF

# Added by tests/browser/run.sh: the legacy app of sessions.test.mjs.
[[routes]]
name = "legacy"
prefix = "/legacy"
upstream = "$legacy_origin"
auth = "session"
EOF

# --- 3. a user and the clients ----------------------------------------------------------------
log "registering users and clients in $tmp"
client_origin="http://127.0.0.1:$client_port"
ag() { timeout 60 "$bin" "$@" --config "$config"; }
ag user add alice --id 100 --email alice@example.com --password-stdin >/dev/null \
  <<<'correct horse battery'
ag client add web --name 'Web Shop' --grant authorization_code --grant refresh_token \
  --grant implicit --redirect-uri "$client_origin/cb" --scope read --secret-stdin >/dev/null \
  <<<'web-secret-0123456789abcdef'
ag client add spa --public --grant authorization_code --redirect-uri "$client_origin/spa/cb" \
  </dev/null >/dev/null
# OpenID Connect: no --scope, so it may ask for openid profile email phone offline_access.
ag client add oidc --name 'OIDC App' --grant authorization_code --grant refresh_token \
  --redirect-uri "$client_origin/oidc/cb" --post-logout-redirect-uri "$client_origin/bye" \
  --secret-stdin >/dev/null <<<'oidc-secret-0123456789abcdef'
# sessions.test.mjs's user (her own, as it revokes her tokens): id 200, group 7.
ag user add carol --id 200 --group-id 7 --password-stdin >/dev/null <<<'carol staple battery'

# --- 4. serve, wait, check --------------------------------------------------------------------
log "starting the gateway on $base (admin on 127.0.0.1:$admin_port)"
"$bin" serve --config "$config" </dev/null >"$tmp/gateway.log" 2>&1 &
gateway_pid=$!

# Ready when the RFC 8414 metadata answers over HTTPS (60 s at most: the first start generates
# the dev certificate, trusted here once it exists, and the passport dialect's RSA key).
if ! timeout 60 node - "$base" "$tmp/certs/dev-cert.pem" "$gateway_pid" <<'EOF'; then
const fs = require("fs"), https = require("https");
const [base, cert, pid] = process.argv.slice(2);
const alive = () => {
  try { return fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(")").pop().trim()[0] !== "Z"; }
  catch { return false; }
};
const probe = () => new Promise((resolve) => {
  if (!fs.existsSync(cert)) return resolve(false);
  const request = https.get(base + "/.well-known/oauth-authorization-server",
    { ca: fs.readFileSync(cert), timeout: 2000 },
    (response) => { response.resume(); resolve(response.statusCode === 200); });
  request.on("error", () => resolve(false));
  request.on("timeout", () => { request.destroy(); resolve(false); });
});
(async () => {
  for (;;) {
    if (!alive()) { console.error("the gateway exited during start-up"); process.exit(1); }
    if (await probe()) process.exit(0);
    await new Promise((r) => setTimeout(r, 200));
  }
})();
EOF
  echo "browser: the gateway did not become ready on $base" >&2
  exit 1
fi

rm -rf "$artifacts"
mkdir -p "$artifacts"
status=0
# The tests' own HTTP calls trust the gateway's dev certificate (NODE_EXTRA_CA_CERTS); the
# browser skips verification (ignoreHTTPSErrors). TMPDIR puts Chromium's profile in $tmp, so it
# goes with it even if the browser is killed. Each test bounds itself at 120 s; `timeout` is the
# backstop (TERM, which Playwright answers by closing the browser, then KILL). Both files run
# even when the first fails.
run_test() {
  log "running $1"
  local started=$SECONDS
  (cd "$here" && TMPDIR="$tmp" timeout -k 10 150 env \
    AUTHGATE_BASE="$base" \
    CLIENT_ORIGIN="$client_origin" \
    LEGACY_ORIGIN="$legacy_origin" \
    ATTACKER_ORIGIN="https://127.0.0.1:$attacker_port" \
    PLAIN_ATTACKER_ORIGIN="http://127.0.0.1:$plain_attacker_port" \
    TLS_CERT="$tmp/certs/dev-cert.pem" \
    TLS_KEY="$tmp/certs/dev-key.pem" \
    AUTHGATE_BIN="$bin" \
    AUTHGATE_CONFIG="$config" \
    CHROMIUM="$chromium" \
    ARTIFACTS="$artifacts" \
    NODE_EXTRA_CA_CERTS="$tmp/certs/dev-cert.pem" \
    node "$1" </dev/null) || status=$?
  log "$1 took $((SECONDS - started)) s"
}
run_test login.test.mjs
run_test sessions.test.mjs

shopt -s nullglob
shots=("$artifacts"/*.png)
if (( ${#shots[@]} )); then
  log "screenshots:"
  for shot in "${shots[@]}"; do echo "  $shot"; done
fi
exit "$status"
