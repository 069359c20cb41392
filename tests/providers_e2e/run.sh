#!/usr/bin/env bash
# Providers end-to-end test (issue 25): signing in at an upstream OpenID Connect provider from
# authgate's login page, in a real headless Chromium, against two REAL providers:
#   - `oidp`: node-oidc-provider (provider.mjs; plain http on 127.0.0.1, so authgate names it
#     with allow_insecure_loopback = true), a confidential client (client_secret_basic, PKCE
#     required), its development login form, fixed accounts (carol, dave, mallory, eve, dora);
#   - `authgate2`: a second authgate with OpenID Connect on, its own store, the user frank
#     (group 9) and a client registered for the first gateway; its issuer is https with its
#     self-signed dev certificate, which the first gateway trusts through `ca_file`.
#
# providers.test.mjs proves that the login page shows both buttons beside the password form;
# that carol (new at oidp) is provisioned and lands on the client with a code whose access token
# reaches /echo as her new user with group 7, valid within max_session (she has no password);
# hank's unverified e-mail is not kept and his missing group claim gives default_group;
# frank at authgate2 gets group 9; dave is linked by his verified e-mail to the existing local
# dave; mallory (alice's e-mail, not verified) is not linked; boss (the local admin's verified
# e-mail) is never linked to an admin; eve (not staff) is refused; dora (links to a disabled
# local user) is refused; Cancel at the provider (access_denied) gives its page in words; a
# wrong or missing RFC 9207 `iss` and ID tokens with a broken signature, alg none, HS256, an
# unknown kid, another aud, azp, nonce or iss, or expired, are refused ("Sign-in with ... failed";
# provider.mjs's test hooks change the real answers); a sign-in started in one browser cannot be
# finished (nor used up) in another; a used callback URL cannot be replayed; a token endpoint
# that does not answer, or a discovery document slower than the provider's timeout, gives the
# "not reachable" page; admin_claim grants and removes the admin role at each sign-in (claims
# changed at run time through a test hook); the sign-in page of a session route
# (/web) and the implicit page have the buttons and come back to the page asked for; with
# oidc-provider killed, its button gives the "not reachable" page and the password form still
# works; `authgate user links` lists the links made, `authgate user unlink` removes one,
# `authgate audit` has provider.provision/link/remap/unlink; refusals are logged at warn with
# their reasons; start refuses a return_to that is not a login page of this host; prompt=login
# is dropped on the way back; with password_form = false (config edited: hot reload) the page
# shows only the buttons and a password form loaded before is not accepted.
#
# Screenshots go to tests/providers_e2e/artifacts/.
#
#   1. installs Chromium with apt-get when missing (as root), the pinned npm packages (`npm ci`:
#      oidc-provider, playwright-core), builds authgate (`cargo build --locked`) unless
#      AUTHGATE_BIN names a binary;
#   2. in a temp dir: starts oidc-provider, then the second gateway (users, client, config), then
#      the first gateway with [[login.providers]] for both (users, client);
#   3. runs providers.test.mjs; stops everything it started and removes the temp dir.
#
# Run from anywhere:   bash tests/providers_e2e/run.sh
# Environment:         AUTHGATE_BIN          the binary (default: <repo>/target/debug/authgate,
#                                            brought up to date with `cargo build --locked`)
#                      CHROMIUM              the browser (default: /usr/bin/chromium)
#                      KEEP_PROVIDERS_TMP=1  keep the temp dir (configs, stores, logs)
# Exits non-zero when anything fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${AUTHGATE_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/authgate}"
chromium="${CHROMIUM:-/usr/bin/chromium}"
artifacts="$here/artifacts"
started_at=$SECONDS

log() { echo "== providers: $*"; }

# --- 1. Chromium, Node packages, the binary ---------------------------------------------------
if [[ ! -x "$chromium" ]]; then
  if [[ -n "${CHROMIUM:-}" ]]; then
    echo "providers: CHROMIUM=$chromium is not an executable file" >&2
    exit 1
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "providers: $chromium is missing; install it as root: apt-get install chromium" >&2
    exit 1
  fi
  log "installing Chromium (apt-get install chromium)"
  export DEBIAN_FRONTEND=noninteractive
  apt_get() { timeout 900 apt-get -o DPkg::Lock::Timeout=300 -qq "$@" </dev/null; }
  apt_get update
  apt_get install -y --no-install-recommends chromium >/dev/null
fi
command -v node >/dev/null || { echo "providers: node (>= 20) is required" >&2; exit 1; }
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if (( node_major < 20 )); then
  echo "providers: node >= 20 is required (found $(node --version))" >&2
  exit 1
fi

log "installing npm packages (tests/providers_e2e/package-lock.json)"
export npm_config_update_notifier=false
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd "$here" && timeout 600 npm ci --no-audit --no-fund --loglevel=error </dev/null)

if [[ -n "${AUTHGATE_BIN:-}" ]]; then
  [[ -x "$bin" ]] || { echo "providers: AUTHGATE_BIN=$bin is not an executable file" >&2; exit 1; }
else
  log "building authgate (cargo build --locked)"
  (cd "$repo" && cargo build --locked --quiet)
fi

# --- 2. the stage ------------------------------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/authgate-providers.XXXXXX")"
pids=()
stop() {
  local pid=$1
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do stop "$pid"; done
  if [[ $status -ne 0 ]]; then
    echo "providers: FAILED (exit status $status)" >&2
    for f in gw1/gateway.log gw2/gateway.log oidp.log; do
      if [[ -f "$tmp/$f" ]]; then
        echo "---- last lines of $tmp/$f ----" >&2
        tail -n 30 "$tmp/$f" >&2 || true
      fi
    done
  fi
  if [[ -n "${KEEP_PROVIDERS_TMP:-}" ]]; then
    echo "providers: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Six free ports, chosen before anything listens (configs and redirect URIs name them): the
# first gateway and its admin listener, the second and its admin listener, oidc-provider, the
# client's redirect URI (served by providers.test.mjs).
read -r port1 admin1 port2 admin2 oidp_port client_port < <(node -e '
  const net = require("net");
  const servers = [0, 1, 2, 3, 4, 5].map(() => net.createServer());
  Promise.all(servers.map((s) => new Promise((r) => s.listen(0, "127.0.0.1", r)))).then(() => {
    console.log(servers.map((s) => s.address().port).join(" "));
    servers.forEach((s) => s.close());
  });')
[[ -n "$client_port" ]] || { echo "providers: no free ports on 127.0.0.1" >&2; exit 1; }

base1="https://127.0.0.1:$port1"
base2="https://127.0.0.1:$port2"
oidp_issuer="http://127.0.0.1:$oidp_port"
client_origin="http://127.0.0.1:$client_port"
oidp_secret="oidp-secret-0123456789abcdef"
gw2_secret="gw2-secret-0123456789abcdef"
web_secret="web-secret-0123456789abcdef"

# Each gateway: the shipped config in a directory of its own (relative paths in it, the store,
# the key secret, the dev certificate, the pid file, resolve there), its listeners set by the
# documented environment overrides, given to the server and to every CLI call alike. The
# passport dialect is off (its 4096-bit key is slow to generate and not used here).
mkdir -p "$tmp/gw1" "$tmp/gw2"
cp "$repo/gateway.toml" "$tmp/gw1/gateway.toml"
cp "$repo/gateway.toml" "$tmp/gw2/gateway.toml"
gw_env() { # gw_env 1|2 -> the environment of that gateway
  local n=$1 listen admin
  if [[ $n == 1 ]]; then listen=$port1 admin=$admin1; else listen=$port2 admin=$admin2; fi
  echo AUTHGATE__SERVER__LISTEN="127.0.0.1:$listen" AUTHGATE__ADMIN__LISTEN="127.0.0.1:$admin" \
    AUTHGATE__LOG__FORMAT=json AUTHGATE__DIALECTS__PASSPORT__ENABLED=false \
    AUTHGATE__AUTH__REFRESH_INTERVAL=250ms
}
ag() { # ag 1|2 ARGS... : the authgate CLI on that gateway's config
  local n=$1
  shift
  # shellcheck disable=SC2046
  env $(gw_env "$n") OIDP_SECRET="$oidp_secret" timeout 60 "$bin" "$@" --config "$tmp/gw$n/gateway.toml"
}

wait_ready() { # wait_ready NAME URL PID [CA]: until URL answers 200 (60 s at most)
  timeout 60 node - "$@" <<'EOF'
const fs = require("fs"), http = require("http"), https = require("https");
const [name, url, pid, ca] = process.argv.slice(2);
const alive = () => {
  try { return fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(")").pop().trim()[0] !== "Z"; }
  catch { return false; }
};
const probe = () => new Promise((resolve) => {
  if (ca && !fs.existsSync(ca)) return resolve(false);
  const lib = url.startsWith("https:") ? https : http;
  const request = lib.get(url, { ...(ca ? { ca: fs.readFileSync(ca) } : {}), timeout: 2000 },
    (response) => { response.resume(); resolve(response.statusCode === 200); });
  request.on("error", () => resolve(false));
  request.on("timeout", () => { request.destroy(); resolve(false); });
});
(async () => {
  for (;;) {
    if (!alive()) { console.error(`${name} exited during start-up`); process.exit(1); }
    if (await probe()) process.exit(0);
    await new Promise((r) => setTimeout(r, 200));
  }
})();
EOF
}

# oidc-provider, for the first gateway's callback.
log "starting oidc-provider on $oidp_issuer"
(cd "$here" && exec env OIDP_CLIENT_ID=authgate OIDP_CLIENT_SECRET="$oidp_secret" \
  OIDP_REDIRECT_URI="$base1/open/providers/oidp/callback" \
  node provider.mjs "$oidp_port" </dev/null >"$tmp/oidp.log" 2>&1) &
oidp_pid=$!
pids+=("$oidp_pid")
wait_ready oidc-provider "$oidp_issuer/.well-known/openid-configuration" "$oidp_pid" || {
  echo "providers: oidc-provider did not start" >&2
  exit 1
}

# The second gateway: frank (group 9, a verified e-mail), and a confidential client for the
# first gateway (no scope list: openid profile email may be asked).
log "registering frank and the client of the first gateway on the second gateway ($base2)"
ag 2 user add frank --id 900 --group-id 9 --email frank@example.org --password-stdin >/dev/null \
  <<<'frank staple battery'
ag 2 user set frank --mail-verified true >/dev/null
ag 2 client add authgate1 --name 'The first gateway' --grant authorization_code \
  --redirect-uri "$base1/open/providers/authgate2/callback" --secret-stdin >/dev/null <<<"$gw2_secret"
log "starting the second gateway on $base2"
# shellcheck disable=SC2046
env $(gw_env 2) "$bin" serve --config "$tmp/gw2/gateway.toml" </dev/null >"$tmp/gw2/gateway.log" 2>&1 &
gw2_pid=$!
pids+=("$gw2_pid")
wait_ready authgate2 "$base2/.well-known/openid-configuration" "$gw2_pid" "$tmp/gw2/certs/dev-cert.pem" || {
  echo "providers: the second gateway did not start" >&2
  exit 1
}

# The first gateway: both providers, users and the client.
printf '%s\n' "$gw2_secret" >"$tmp/gw2-secret"
cat >>"$tmp/gw1/gateway.toml" <<EOF

# Added by tests/providers_e2e/run.sh: the upstream providers.
[[login.providers]]
name = "oidp"
label = "Test OP"
issuer = "$oidp_issuer"
client_id = "authgate"
client_secret_env = "OIDP_SECRET"
allow_insecure_loopback = true
required_claim = "groups"
required_values = ["staff"]
provision = true
link_by_email = true
group_claim = "gid"
admin_claim = "groups"
admin_values = ["authgate-admins"]
max_session = "10m"
timeout = "2s"

[[login.providers]]
name = "authgate2"
label = "Authgate Two"
issuer = "$base2"
client_id = "authgate1"
client_secret_file = "$tmp/gw2-secret"
ca_file = "$tmp/gw2/certs/dev-cert.pem"
allowed_domains = ["example.org"]
provision = true
group_claim = "gid"
EOF
log "registering users and the client on the first gateway ($base1)"
ag 1 user add alice --id 100 --group-id 7 --email alice@example.com --password-stdin >/dev/null \
  <<<'correct horse battery'
ag 1 user add dave --id 300 --group-id 5 --email dave@corp.example --password-stdin >/dev/null \
  <<<'dave staple battery'
ag 1 user add dora --id 400 --group-id 5 --email dora@corp.example --password-stdin >/dev/null \
  <<<'dora staple battery'
ag 1 user disable dora >/dev/null
ag 1 user add root --id 500 --admin --email root@corp.example --password-stdin >/dev/null \
  <<<'root staple battery'
ag 1 client add web --name 'Web Shop' --grant authorization_code --grant implicit \
  --redirect-uri "$client_origin/cb" --scope read --secret-stdin >/dev/null <<<"$web_secret"
log "checking the first gateway's config (authgate check)"
ag 1 check >"$tmp/gw1/check.log" 2>&1 || { cat "$tmp/gw1/check.log" >&2; exit 1; }
log "starting the first gateway on $base1"
# shellcheck disable=SC2046
env $(gw_env 1) OIDP_SECRET="$oidp_secret" "$bin" serve --config "$tmp/gw1/gateway.toml" \
  </dev/null >"$tmp/gw1/gateway.log" 2>&1 &
gw1_pid=$!
pids+=("$gw1_pid")
wait_ready authgate1 "$base1/.well-known/oauth-authorization-server" "$gw1_pid" "$tmp/gw1/certs/dev-cert.pem" || {
  echo "providers: the first gateway did not start" >&2
  exit 1
}

# --- 3. the test -------------------------------------------------------------------------------
rm -rf "$artifacts"
mkdir -p "$artifacts"
status=0
log "running providers.test.mjs ($((SECONDS - started_at)) s so far)"
test_started=$SECONDS
# The test's own HTTP calls trust both gateways' dev certificates; the browser skips
# verification (ignoreHTTPSErrors). TMPDIR puts Chromium's profile in $tmp.
cat "$tmp/gw1/certs/dev-cert.pem" "$tmp/gw2/certs/dev-cert.pem" >"$tmp/ca.pem"
# shellcheck disable=SC2046
(cd "$here" && TMPDIR="$tmp" timeout -k 10 270 env $(gw_env 1) \
  AUTHGATE_BASE="$base1" \
  AUTHGATE2_BASE="$base2" \
  OIDP_ISSUER="$oidp_issuer" \
  OIDP_PID="$oidp_pid" \
  CLIENT_ORIGIN="$client_origin" \
  CLIENT_ID=web \
  CLIENT_SECRET="$web_secret" \
  AUTHGATE_BIN="$bin" \
  AUTHGATE_CONFIG="$tmp/gw1/gateway.toml" \
  OIDP_SECRET="$oidp_secret" \
  GATEWAY_LOG="$tmp/gw1/gateway.log" \
  CHROMIUM="$chromium" \
  ARTIFACTS="$artifacts" \
  NODE_EXTRA_CA_CERTS="$tmp/ca.pem" \
  node providers.test.mjs </dev/null) || status=$?
log "providers.test.mjs took $((SECONDS - test_started)) s"

if ! kill -0 "$gw1_pid" 2>/dev/null || ! kill -0 "$gw2_pid" 2>/dev/null; then
  echo "providers: a gateway exited during the run" >&2
  status=1
fi
shopt -s nullglob
shots=("$artifacts"/*.png)
if (( ${#shots[@]} )); then
  log "screenshots:"
  for shot in "${shots[@]}"; do echo "  $shot"; done
fi
log "done in $((SECONDS - started_at)) s (exit status $status)"
exit "$status"
