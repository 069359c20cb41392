#!/usr/bin/env bash
# The README's walks, run in order against a fresh gateway: README drift fails CI.
#
# What runs: every ```sh block of README.md preceded by the line `<!-- readme-test -->`, in
# the order of the README, as one shell session (variables and functions carry over from
# block to block, as for a reader who types them into one terminal). Unmarked blocks (docker,
# systemd, clusters, benchmarks, the browser step, the quickstart's own `serve`) are skipped.
#
# Checks: a command is one line (plus `\` continuation lines). The comment lines right after it
# that start with `# expect:` are its checks; other comments are prose for humans.
#   # expect: status 403        the HTTP status of the command's (last) curl response
#   # expect: json EXPR         stdout is JSON and `jq -e EXPR` holds
#   # expect: contains TEXT     stdout or stderr contains TEXT (literally, to the end of line)
#   # expect: header NAME: V    a response header NAME (any case) whose value contains V
#   # expect: exit N            the command's exit status is N (default: 0)
# Without `status`, every HTTP response of the command must be < 400. A failed check prints the
# README line, the command, what was expected and what came back, and the run stops there.
#
# How: a temp dir holds a copy of the shipped gateway.toml (like a fresh clone); the HTTPS and
# admin listeners go to free ports on 127.0.0.1 through AUTHGATE__SERVER__LISTEN and
# AUTHGATE__ADMIN__LISTEN, and the README's 127.0.0.1:8443 / 127.0.0.1:9090 are rewritten to
# them. The runner starts `authgate serve` itself; in the walk `cargo run … -- ARGS` and
# `authgate ARGS` both run the debug binary (never a second, release build), and `curl`
# records the response headers for the checks and refuses any host but 127.0.0.1.
#
# Run from anywhere:   bash tests/readme/run.sh
# Environment:         AUTHGATE_BIN      the binary (default: target/debug/authgate, honouring
#                                        CARGO_TARGET_DIR, built with `cargo build --locked`)
#                      README            the file to run (default: <repo>/README.md)
#                      VERBOSE=1         print every command's output
#                      KEEP_README_TMP=1 keep the temp dir (config, store, gateway log, walk)
# Needs: curl, jq, python3 (free ports). Exits non-zero when anything fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
readme="${README:-$repo/README.md}"
started=$SECONDS

log() { echo "== readme: $*"; }
die() { echo "readme: $*" >&2; exit 1; }

for tool in curl jq python3; do
  command -v "$tool" >/dev/null 2>&1 || die "\`$tool\` is not installed (the walks or this runner need it)"
done
[[ -f "$readme" ]] || die "no README at $readme"

# --- 1. the binary ---------------------------------------------------------------------------
if [[ -n "${AUTHGATE_BIN:-}" ]]; then
  bin="$AUTHGATE_BIN"
  [[ -x "$bin" ]] || die "AUTHGATE_BIN=$bin is not an executable file"
else
  target="${CARGO_TARGET_DIR:-target}"
  [[ "$target" == /* ]] || target="$repo/$target"
  bin="$target/debug/authgate"
  # Always ask cargo: a no-op when the binary is current, never a stale binary.
  log "building authgate (cargo build --locked)"
  (cd "$repo" && cargo build --locked --quiet)
fi

# --- 2. extract the marked blocks into steps --------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/authgate-readme.XXXXXX")"
steps="$tmp/steps"
mkdir -p "$steps"
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
    echo "readme: FAILED (exit status $status)" >&2
    if [[ -f "$tmp/gateway.log" ]]; then
      echo "---- last lines of the gateway log ($tmp/gateway.log) ----" >&2
      tail -n 10 "$tmp/gateway.log" | sed 's/\x1b\[[0-9;]*m//g' >&2 || true
    fi
  fi
  if [[ -n "${KEEP_README_TMP:-}" ]]; then
    echo "readme: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap cleanup EXIT

# A command is complete when it does not end in `\` and parses on its own.
complete() { [[ "$1" != *\\ ]] && bash -n <<<"$1" 2>/dev/null; }

mapfile -t lines <"$readme"
name="$(basename "$readme")"
n=0          # steps
blocks=0
checks=0
cmd=""       # the command being read
cmd_line=0
marked=0     # the marker was seen, its fence not yet
in_block=""  # "run" inside a marked block, "skip" inside another fence
flush() {
  [[ -n "$cmd" ]] || return 0
  complete "$cmd" || die "$name:$cmd_line: the command does not parse: $cmd"
  n=$((n + 1))
  printf '%s\n' "$cmd" >"$steps/$n.cmd"
  echo "$cmd_line" >"$steps/$n.line"
  : >"$steps/$n.expect"
  cmd=""
}
for i in "${!lines[@]}"; do
  line="${lines[$i]}"
  lineno=$((i + 1))
  if [[ -z "$in_block" ]]; then
    if [[ "$line" == "<!-- readme-test -->" ]]; then
      marked=$lineno
    elif [[ "$line" =~ ^\`\`\` ]]; then
      if [[ $marked -ne 0 ]]; then
        [[ "$line" == '```sh' ]] || die "$name:$lineno: a readme-test block must be \`\`\`sh"
        in_block=run
        blocks=$((blocks + 1))
        marked=0
      else
        in_block=skip
      fi
    elif [[ $marked -ne 0 && -n "$line" ]]; then
      die "$name:$marked: <!-- readme-test --> is not followed by a \`\`\`sh block"
    fi
    continue
  fi
  if [[ "$line" == '```' ]]; then
    [[ "$in_block" == run ]] && flush
    [[ -z "$cmd" ]] || die "$name:$cmd_line: the block ends inside a command"
    in_block=""
    continue
  fi
  if [[ "$in_block" == skip ]]; then
    [[ ! "$line" =~ ^[[:space:]]*#\ expect: ]] ||
      die "$name:$lineno: \`# expect:\` in a block not marked <!-- readme-test -->"
    continue
  fi
  if [[ -n "$cmd" ]] && ! complete "$cmd"; then
    [[ ! "$line" =~ ^[[:space:]]*#\ expect: ]] || die "$name:$lineno: \`# expect:\` inside a command"
    cmd+=$'\n'"$line"
    continue
  fi
  if [[ "$line" =~ ^[[:space:]]*#\ expect:\ *(.*)$ ]]; then
    flush
    [[ $n -gt 0 ]] || die "$name:$lineno: \`# expect:\` before any command"
    printf '%s\n' "${BASH_REMATCH[1]}" >>"$steps/$n.expect"
    checks=$((checks + 1))
  elif [[ "$line" =~ ^[[:space:]]*(#.*)?$ ]]; then
    flush
  else
    flush
    cmd="$line"
    cmd_line=$lineno
  fi
done
[[ -z "$in_block" ]] || die "$name: a code block is not closed"
[[ $marked -eq 0 ]] || die "$name:$marked: <!-- readme-test --> is not followed by a \`\`\`sh block"
[[ $n -gt 0 ]] || die "$name: no <!-- readme-test --> blocks"
log "$blocks blocks, $n commands, $checks checks from $name"

# --- 3. a fresh gateway ------------------------------------------------------------------------
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port="$(free_port)"
admin_port="$(free_port)"
while [[ "$admin_port" == "$port" ]]; do admin_port="$(free_port)"; done

# The shipped config, as is, where a fresh clone has it; relative paths in it (store, secrets,
# dev certificate) resolve against $tmp/gateway. The walk's CLI commands read the same config.
mkdir -p "$tmp/gateway"
cp "$repo/gateway.toml" "$tmp/gateway/gateway.toml"
export AUTHGATE_CONFIG="$tmp/gateway/gateway.toml"
export AUTHGATE__SERVER__LISTEN="127.0.0.1:$port"
export AUTHGATE__ADMIN__LISTEN="127.0.0.1:$admin_port"
export CI=true

log "starting the gateway on https://127.0.0.1:$port (admin on 127.0.0.1:$admin_port)"
(cd "$tmp/gateway" && exec "$bin" serve) </dev/null >"$tmp/gateway.log" 2>&1 &
gateway_pid=$!
ready=""
for _ in $(seq 300); do
  kill -0 "$gateway_pid" 2>/dev/null || die "the gateway exited during start-up"
  if curl -sfk --max-time 2 -o /dev/null "https://127.0.0.1:$port/.well-known/jwks.json" &&
    curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$admin_port/readyz"; then
    ready=1
    break
  fi
  sleep 0.1
done
[[ -n "$ready" ]] || die "the gateway did not become ready on 127.0.0.1:$port within 30 s"

# --- 4. the walk: one shell session, the steps in order ---------------------------------------
walk="$tmp/walk.sh"
rewrite() {
  sed -e "s/127\.0\.0\.1:8443/127.0.0.1:$port/g" -e "s/127\.0\.0\.1:9090/127.0.0.1:$admin_port/g" "$1"
}
{
  cat <<'EOF'
# Generated by tests/readme/run.sh from the README's marked blocks.
set -uo pipefail
__rt_fail() { # step, what was expected, what came back
  local n=$1
  {
    echo
    echo "readme: FAILED at $__rt_name:$(cat "$__rt_steps/$n.line")"
    echo "  command (as in the README; ports 8443/9090 became $__rt_port/$__rt_admin_port):"
    sed 's/^/    /' "$__rt_steps/$n.cmd"
    echo "  expected: $2"
    echo "  actual:   $3"
    echo "  exit status: $__rt_rc"
    if [[ -s "$__rt_dir/headers" ]]; then
      echo "  --- response heads ---"
      sed 's/^/    /; s/\r$//' "$__rt_dir/headers"
    fi
    echo "  --- stdout ---"
    head -c 4000 "$__rt_dir/out" | sed 's/^/    /'; echo
    echo "  --- stderr ---"
    head -c 4000 "$__rt_dir/err" | sed 's/^/    /'; echo
  } >&2
  __rt_step=0
  exit 1
}
__rt_statuses() { sed -n 's/^HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$__rt_dir/headers" | tr -d '\r'; }
__rt_check() { # step
  local n=$1 kind arg want_exit=0 want_status="" got
  while IFS= read -r check || [[ -n "$check" ]]; do
    kind="${check%% *}"
    arg="${check#"$kind"}"; arg="${arg# }"
    case "$kind" in
      exit) want_exit="$arg" ;;
      status)
        want_status="$arg"
        got="$(__rt_statuses | tail -n 1)"
        [[ "$got" == "$arg" ]] || __rt_fail "$n" "status $arg" "status ${got:-(no HTTP response)}"
        ;;
      json)
        if ! got="$(jq -e "$arg" <"$__rt_dir/out" 2>&1)"; then
          __rt_fail "$n" "json $arg" "jq -e gave: $(tr '\n' ' ' <<<"$got")"
        fi
        ;;
      contains)
        grep -qF -- "$arg" "$__rt_dir/out" "$__rt_dir/err" || __rt_fail "$n" "contains $arg" "not in the output"
        ;;
      header)
        local hname="${arg%%:*}" hvalue="${arg#*:}"
        hvalue="${hvalue# }"
        tr -d '\r' <"$__rt_dir/headers" | grep -i "^$hname:" | grep -qF -- "$hvalue" ||
          __rt_fail "$n" "header $arg" "$(tr -d '\r' <"$__rt_dir/headers" | grep -i "^$hname:" || echo "no $hname header")"
        ;;
      *) __rt_fail "$n" "$check" "an unknown kind of check (status, json, contains, header, exit)" ;;
    esac
  done <"$__rt_steps/$n.expect"
  [[ "$__rt_rc" == "$want_exit" ]] || __rt_fail "$n" "exit status $want_exit" "exit status $__rt_rc"
  if [[ -z "$want_status" ]]; then
    for got in $(__rt_statuses); do
      [[ "$got" -lt 400 ]] || __rt_fail "$n" "HTTP status < 400 (no \`# expect: status\`)" "status $got"
    done
  fi
  if [[ -n "${VERBOSE:-}" ]]; then
    sed 's/^/    | /' "$__rt_dir/out" "$__rt_dir/err"
  fi
  printf 'ok  %s:%-4s %s\n' "$__rt_name" "$(cat "$__rt_steps/$n.line")" "$(head -n 1 "$__rt_steps/$n.cmd" | cut -c1-90)"
}
__rt_begin() { __rt_step=$1; : >"$__rt_dir/out"; : >"$__rt_dir/err"; : >"$__rt_dir/headers"; }
__rt_step=0
# The shell itself may stop inside a step (`set -u`: an unset variable): say where.
trap '__rt_rc=$?; [[ $__rt_rc -eq 0 || $__rt_step -eq 0 ]] || __rt_fail "$__rt_step" "the step to complete" "the walk shell exited"' EXIT

# What the README's commands call.
authgate() {
  if [[ "${1:-}" == serve ]]; then
    echo "readme-test: the runner serves the gateway itself; a walk may not run \`serve\`" >&2
    return 97
  fi
  timeout 120 "$__rt_bin" "$@"
}
cargo() { # `cargo run [-q] [--release] -- ARGS` is the CLI from a checkout: the debug binary
  if [[ "${1:-}" != run ]]; then
    echo "readme-test: a walk may not run \`cargo $*\`" >&2
    return 97
  fi
  shift
  while [[ $# -gt 0 && "$1" != -- ]]; do
    case "$1" in
      -q | --quiet | --release | --locked | --offline) shift ;;
      *) echo "readme-test: \`cargo run $1\` is not supported in a walk" >&2; return 97 ;;
    esac
  done
  [[ "${1:-}" == -- ]] && shift
  authgate "$@"
}
curl() { # the real curl, bounded in time, on 127.0.0.1 only, keeping the response heads
  local a heads rc=0
  for a in "$@"; do
    if [[ "$a" =~ ^[a-zA-Z]+:// && ! "$a" =~ ^https?://127\.0\.0\.1(:|/|$) ]]; then
      echo "readme-test: the walk may only talk to 127.0.0.1, not $a" >&2
      return 97
    fi
  done
  heads="$(mktemp "$__rt_dir/heads.XXXXXX")"
  command curl --max-time 30 -D "$heads" "$@" || rc=$?
  cat "$heads" >>"$__rt_dir/headers"
  rm -f "$heads"
  return "$rc"
}
EOF
  for ((i = 1; i <= n; i++)); do
    rewrite "$steps/$i.cmd" >"$steps/$i.run"
    rewrite "$steps/$i.expect" >"$steps/$i.expect.tmp" && mv "$steps/$i.expect.tmp" "$steps/$i.expect"
    echo "__rt_begin $i"
    echo "{"
    cat "$steps/$i.run"
    echo "} >\"\$__rt_dir/out\" 2>\"\$__rt_dir/err\" </dev/null"
    echo "__rt_rc=\$?"
    echo "__rt_check $i"
  done
  echo "__rt_step=0"
} >"$walk"

mkdir -p "$tmp/capture"
log "running the walk (one shell, in the directory of the config)"
status=0
(
  cd "$tmp/gateway"
  __rt_bin="$bin" __rt_name="$name" __rt_steps="$steps" __rt_dir="$tmp/capture" \
    __rt_port="$port" __rt_admin_port="$admin_port" \
    exec bash --noprofile --norc -c 'export -n __rt_bin __rt_name __rt_steps __rt_dir __rt_port __rt_admin_port; source "$0"' "$walk"
) </dev/null || status=$?
[[ $status -eq 0 ]] || exit "$status"

kill -0 "$gateway_pid" 2>/dev/null || die "the gateway is no longer running after the walk"
if grep -q "panicked" "$tmp/gateway.log"; then
  grep -n "panicked" "$tmp/gateway.log" >&2
  die "the gateway log shows a panic"
fi
log "ok: $n commands, $checks checks passed in $((SECONDS - started)) s"
