#!/usr/bin/env bash
# Third-party interop test: OAuth2, OpenID Connect and JWT clients that we did not write talk
# to a real gateway.
#
# Proves that Python's authlib (OAuth2Session) completes the browser code flow with PKCE
# (driving the login page like a browser; code_flow.py), the password, client credentials,
# refresh, token exchange (RFC 8693), revocation (RFC 7009), introspection (RFC 7662) and
# resource indicator (RFC 8707: `resource`, aud, invalid_target) flows,
# that PyJWT's JWKS client verifies our access tokens from /.well-known/jwks.json, and that the
# RFC 8414 metadata names the configured issuer (oauth2_interop.py). OpenID Connect, with the
# relying parties unchanged: authlib's OIDC client (oidc_interop.py: discovery, code flow with
# PKCE and nonce, parse_id_token with at_hash, UserInfo, refresh, logout; RS256 and ES256) and
# panva's openid-client v6 with jose (oidc/oidc_interop.mjs: default discovery, code flow with
# PKCE, nonce, state and RFC 9207 iss, UserInfo, refresh, prompt=none, form_post, RP-initiated
# logout, ES256 and public clients; ID tokens verified against the JWKS). This script sets the
# stage:
#   1. installs the pinned Python packages (requirements.txt) with pip and the pinned npm
#      packages (oidc/package-lock.json) with `npm ci`;
#   2. writes a gateway config into a temp dir (a copy of the shipped gateway.toml, with the
#      HTTPS and admin listeners on free ports, so nothing clashes with a gateway on 8443/9090);
#   3. registers users (one plain, two admins) and seven clients with the authgate CLI;
#   4. starts `authgate serve`, waits until it answers, runs the checks (oauth2_interop.py,
#      code_flow.py, oidc_interop.py, then oidc/oidc_interop.mjs under Node >= 20), and always
#      stops the gateway.
#
# Run from anywhere:   bash tests/interop/run.sh
# Environment:         AUTHGATE_BIN      the binary (default: <repo>/target/debug/authgate,
#                                        brought up to date with `cargo build --locked`)
#                      KEEP_INTEROP_TMP=1 keep the temp dir (config, store, gateway log)
# Exits non-zero when anything fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${AUTHGATE_BIN:-$repo/target/debug/authgate}"
python="${PYTHON:-python3}"

log() { echo "== interop: $*"; }

# --- 1. the binary and the Python packages ---------------------------------------------------
if [[ -n "${AUTHGATE_BIN:-}" ]]; then
  [[ -x "$bin" ]] || { echo "AUTHGATE_BIN=$bin is not an executable file" >&2; exit 1; }
else
  # Always ask cargo: a no-op when the binary is current, never a stale binary.
  log "building authgate (cargo build --locked)"
  (cd "$repo" && cargo build --locked --quiet)
fi

log "installing Python packages (tests/interop/requirements.txt)"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
pip_install() {
  timeout 600 "$python" -m pip install --quiet --requirement "$here/requirements.txt" "$@"
}
if ! pip_output="$(pip_install 2>&1)"; then
  if grep -q externally-managed-environment <<<"$pip_output"; then
    # A distribution's Python (PEP 668): these pinned, pure client packages may go beside it.
    pip_install --break-system-packages
  else
    echo "$pip_output" >&2
    exit 1
  fi
fi

command -v node >/dev/null || { echo "interop: node (>= 20) is required" >&2; exit 1; }
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if (( node_major < 20 )); then
  echo "interop: node >= 20 is required (found $(node --version))" >&2
  exit 1
fi
log "installing npm packages (tests/interop/oidc/package-lock.json)"
export npm_config_update_notifier=false
(cd "$here/oidc" && timeout 600 npm ci --no-audit --no-fund --loglevel=error </dev/null)

# --- 2. a config of our own in a temp dir ----------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/authgate-interop.XXXXXX")"
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
    echo "interop: FAILED (exit status $status)" >&2
  fi
  if [[ $status -ne 0 && -f "$tmp/gateway.log" ]]; then
    echo "---- last lines of the gateway log ($tmp/gateway.log) ----" >&2
    tail -n 40 "$tmp/gateway.log" >&2 || true
  fi
  if [[ -n "${KEEP_INTEROP_TMP:-}" ]]; then
    echo "interop: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap cleanup EXIT

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port="$(free_port)"
admin_port="$(free_port)"
while [[ "$admin_port" == "$port" ]]; do admin_port="$(free_port)"; done

# The shipped config, as is; the listeners are moved by the documented environment overrides
# (exported, so the CLI commands below read the same configuration as the server). Relative
# paths in it (store, key secret, dev certificate) resolve against $tmp, where they are created.
cp "$repo/gateway.toml" "$tmp/gateway.toml"
export AUTHGATE__SERVER__LISTEN="127.0.0.1:$port"
export AUTHGATE__ADMIN__LISTEN="127.0.0.1:$admin_port"
export AUTHGATE__LOG__FORMAT="json"
config="$tmp/gateway.toml"
issuer="https://127.0.0.1:$port"

# --- 3. users and clients ---------------------------------------------------------------------
log "registering users and clients in $tmp"
ag() { timeout 60 "$bin" --config "$config" "$@"; }
ag user add alice --id 100 --email alice@example.com --password-stdin >/dev/null <<<'correct horse battery'
ag user add root --id 1 --admin --password-stdin >/dev/null <<<'root password 0123'
ag user add root2 --id 2 --admin --password-stdin >/dev/null <<<'root2 password 0123'
ag client add web --grant password --grant refresh_token --grant client_credentials \
  --grant token_exchange --scope read --scope write --secret-stdin >/dev/null \
  <<<'web-secret-0123456789abcdef'
# A machine client whose secret the CLI generates (printed once as `client_secret: ...`).
# It may address its tokens to two APIs (RFC 8707 resources, no default: unaddressed otherwise).
svc_output="$(ag client add svc --grant client_credentials --scope read \
  --resource https://api.example/orders --resource https://api.example/billing </dev/null 2>&1)"
svc_secret="$(sed -n 's/^client_secret: //p' <<<"$svc_output")"
if [[ -z "$svc_secret" ]]; then
  echo "interop: \`authgate client add svc\` printed no client_secret: $svc_output" >&2
  exit 1
fi

# Browser code flow (code_flow.py): a confidential and a public client, the same redirect URI
# (it need not exist: the checks never follow the final redirect).
redirect_uri="https://client.example/cb"
ag client add webcode --grant authorization_code --grant refresh_token \
  --redirect-uri "$redirect_uri" --scope read --secret-stdin >/dev/null \
  <<<'webcode-secret-0123456789abcdef'
ag client add spa --public --grant authorization_code --grant refresh_token \
  --redirect-uri "$redirect_uri" --scope read </dev/null >/dev/null

# OpenID Connect relying parties (oidc/oidc_interop.mjs, oidc_interop.py): no --scope, so they
# may ask for openid profile email phone offline_access; a post-logout URI for RP-initiated
# logout; RS256 ID tokens (the default), ES256 for oidc-es, and a public client.
post_logout_uri="https://client.example/bye"
oidc_secret='oidc-secret-0123456789abcdef'
oidc_es_secret='oidc-es-secret-0123456789abcdef'
oidc_client() {
  ag client add "$@" --grant authorization_code --grant refresh_token \
    --redirect-uri "$redirect_uri" --post-logout-redirect-uri "$post_logout_uri" >/dev/null
}
oidc_client oidc --secret-stdin <<<"$oidc_secret"
oidc_client oidc-es --id-token-alg ES256 --secret-stdin <<<"$oidc_es_secret"
oidc_client oidc-spa --public </dev/null

# --- 4. serve, wait, check --------------------------------------------------------------------
log "starting the gateway on $issuer (admin on 127.0.0.1:$admin_port)"
"$bin" --config "$config" serve </dev/null >"$tmp/gateway.log" 2>&1 &
gateway_pid=$!

# Ready when the metadata answers over HTTPS with the dev certificate it generated (30 s at most).
if ! timeout 30 "$python" - "$issuer" "$tmp/certs/dev-cert.pem" "$gateway_pid" <<'EOF'; then
import os, ssl, sys, time, urllib.request
issuer, cert, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
while True:
    try:
        with open(f"/proc/{pid}/stat") as stat:  # gone, or a zombie not yet reaped
            alive = stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        alive = False
    if not alive:
        sys.exit("the gateway exited during start-up")
    try:
        if os.path.exists(cert):
            context = ssl.create_default_context(cafile=cert)
            url = issuer + "/.well-known/oauth-authorization-server"
            with urllib.request.urlopen(url, context=context, timeout=2) as response:
                if response.status == 200:
                    break
    except Exception:
        pass
    time.sleep(0.2)
EOF
  echo "interop: the gateway did not become ready on $issuer" >&2
  exit 1
fi

# Every script runs whatever the others say; the exit status is the first failure's.
status=0
failed() { local rc=$?; [[ $status -ne 0 ]] || status=$rc; }
log "running oauth2_interop.py"
timeout 300 "$python" "$here/oauth2_interop.py" \
  --issuer "$issuer" --ca "$tmp/certs/dev-cert.pem" \
  --client-id web --client-secret 'web-secret-0123456789abcdef' \
  --user alice --user-id 100 --user-password 'correct horse battery' \
  --admin root --admin-id 1 --admin-password 'root password 0123' \
  --other-admin-id 2 \
  --svc-client-id svc --svc-client-secret "$svc_secret" || failed

log "running code_flow.py"
timeout 300 "$python" "$here/code_flow.py" \
  --issuer "$issuer" --ca "$tmp/certs/dev-cert.pem" \
  --code-client-id webcode --code-client-secret 'webcode-secret-0123456789abcdef' \
  --public-client-id spa --redirect-uri "$redirect_uri" \
  --user alice --user-id 100 --user-password 'correct horse battery' || failed

log "running oidc_interop.py"
timeout 300 "$python" "$here/oidc_interop.py" \
  --issuer "$issuer" --ca "$tmp/certs/dev-cert.pem" \
  --client-id oidc --client-secret "$oidc_secret" \
  --es256-client-id oidc-es --es256-client-secret "$oidc_es_secret" \
  --redirect-uri "$redirect_uri" --post-logout-redirect-uri "$post_logout_uri" \
  --user alice --user-id 100 --user-email alice@example.com \
  --user-password 'correct horse battery' || failed

# Node trusts the dev certificate through NODE_EXTRA_CA_CERTS (its fetch included); the
# secrets travel in the environment, not on a command line.
log "running oidc/oidc_interop.mjs (openid-client, jose)"
(cd "$here/oidc" && timeout 300 env \
  OIDC_ISSUER="$issuer" \
  OIDC_CLIENT_ID=oidc OIDC_CLIENT_SECRET="$oidc_secret" \
  OIDC_ES256_CLIENT_ID=oidc-es OIDC_ES256_CLIENT_SECRET="$oidc_es_secret" \
  OIDC_PUBLIC_CLIENT_ID=oidc-spa \
  OIDC_REDIRECT_URI="$redirect_uri" OIDC_POST_LOGOUT_REDIRECT_URI="$post_logout_uri" \
  OIDC_USER=alice OIDC_USER_ID=100 OIDC_USER_EMAIL=alice@example.com \
  OIDC_USER_PASSWORD='correct horse battery' \
  NODE_EXTRA_CA_CERTS="$tmp/certs/dev-cert.pem" \
  node oidc_interop.mjs </dev/null) || failed
exit "$status"
