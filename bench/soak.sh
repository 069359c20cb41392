#!/usr/bin/env bash
# The soak run of issue 26: two authgate instances in cluster mode on one PostgreSQL database
# (a database of its own, dropped afterwards), a recording upstream, a steady mixed load and a
# chaos schedule — config reloads (one invalid), a key rotation, the upstream killed and
# restarted, the database cut through a TCP relay (never the machine's PostgreSQL itself), one
# instance SIGKILLed and restarted, and a rolling upgrade (an instance replaced by a build of
# this commit with one more, no-op, schema migration while the other serves). The driver is
# bench/soak.rs; it records each window (outcomes, p50/p99, RSS and open fds of each instance)
# and ends with the verdict, a Markdown report and a plot.
#
#   bash bench/soak.sh                  # 10 minutes, 100 operations/s, release build
#   DURATION=1800 bash bench/soak.sh    # longer
#   SOAK_SMOKE=1 bash bench/soak.sh     # 2 minutes, 40 operations/s, debug build (CI)
#
# Writes soak.md and soak.svg to RESULTS_DIR (default bench/results; with SOAK_SMOKE a temp dir
# unless RESULTS_DIR is set). Needs PostgreSQL (AUTHGATE_TEST_DATABASE_URL, default
# postgres://postgres:postgres@127.0.0.1:5432/test) and psql. Everything on 127.0.0.1; stops
# what it started. Exit status: 0 pass, 1 a criterion failed, 2 the stage could not be set up.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
if [[ -n "${SOAK_SMOKE:-}" ]]; then
  DURATION=${DURATION:-120}; RATE=${RATE:-40}; PROFILE=${PROFILE:-debug}
else
  DURATION=${DURATION:-600}; RATE=${RATE:-100}; PROFILE=${PROFILE:-release}
fi
WINDOW=${WINDOW:-10}
PG=${AUTHGATE_TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/test}
command -v psql >/dev/null || { echo "soak: psql is needed" >&2; exit 2; }

work=$(mktemp -d /tmp/authgate-soak.XXXXXX)
db="soak_$$_$(date +%s)"
cleanup() {
  psql "$PG" -qtAc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  [[ -n "${KEEP_SOAK_TMP:-}" ]] && echo "soak: kept $work" || rm -rf "$work"
}
trap cleanup EXIT
if [[ -n "${SOAK_SMOKE:-}" ]]; then RESULTS_DIR=${RESULTS_DIR:-$work/results}; fi
RESULTS_DIR=${RESULTS_DIR:-bench/results}

flags=(--locked)
[[ "$PROFILE" == release ]] && flags+=(--release)
target="${CARGO_TARGET_DIR:-target}"
[[ "$target" == /* ]] || target="$repo/$target"
# The upgrade build first, then the normal one: target/ is left with the normal binary.
echo "== soak: building the upgrade build (soak-noop-migration) and this one ($PROFILE)"
cargo build "${flags[@]}" --quiet --features soak-noop-migration --bin authgate
cp "$target/$PROFILE/authgate" "$work/authgate-upgrade"
cargo build "${flags[@]}" --quiet --bin authgate --example soak
cp "$target/$PROFILE/authgate" "$work/authgate"

psql "$PG" -qtAc "CREATE DATABASE $db" >/dev/null
# The same server and credentials, the new database.
base=${PG%%\?*}; query=""; [[ "$PG" == *\?* ]] && query="?${PG#*\?}"
db_url="${base%/*}/$db$query"

command_line="bash bench/soak.sh"
[[ -n "${SOAK_SMOKE:-}" ]] && command_line="SOAK_SMOKE=1 $command_line"
echo "== soak: ${DURATION}s at ${RATE} operations/s (work dir $work)"
status=0
SOAK_BIN="$work/authgate" SOAK_BIN_UPGRADE="$work/authgate-upgrade" SOAK_DB="$db_url" \
SOAK_SMOKE="${SOAK_SMOKE:-}" SOAK_WORK="$work" SOAK_RESULTS="$RESULTS_DIR" DURATION="$DURATION" RATE="$RATE" WINDOW="$WINDOW" \
SOAK_COMMAND="$command_line" "$target/$PROFILE/examples/soak" > "$work/report.out" || status=$?
if [[ $status -ne 0 ]]; then
  cat "$work/report.out"
  for log in "$work"/a.log "$work"/b.log; do
    [[ -f "$log" ]] && { echo "--- $log (last 30 lines)"; tail -n 30 "$log"; }
  done
fi
echo "== soak: report in $RESULTS_DIR/soak.md ($( [[ $status -eq 0 ]] && echo pass || echo "exit $status"))"
exit $status
