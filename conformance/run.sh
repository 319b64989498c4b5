#!/usr/bin/env bash
# Runs the Durable Streams conformance suite against a flowgate binary on a fresh database
# and a random port, then the client end-to-end check (client-e2e.mjs) on the same server.
# Prints the pass/fail/skip counts; exits non-zero if any test fails.
# Usage: conformance/run.sh [path/to/flowgate] [extra vitest args, e.g. -t "SSE Mode"]
# The per-test timeout is raised from vitest's 5 s to 20 s (CONFORMANCE_TEST_TIMEOUT_MS): the
# property tests send ~2,000 requests each to a debug build on a shared 2-core machine. Tests
# that wait for the server bring their own bounds, so this changes no verdict on behaviour.
# env: TEST_DATABASE_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres),
#      CONFORMANCE_SUBSCRIPTIONS=1 to include the reserved __ds subscription tests,
#      CONFORMANCE_API_KEY=k to run the server with that API key and send it on every
#      request (subscription callbacks send the wake's token instead; see with-key.mjs).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="${1:-$HERE/../target/debug/flowgate}"; shift || true
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
cd "$HERE"
ADMIN="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DB="fg_test_conformance_$$_$RANDOM"
BASE="${ADMIN%/*}"
LONG_POLL_S="${CONFORMANCE_LONG_POLL_S:-1}"

[ -d node_modules/@durable-streams/server-conformance-tests ] || npm ci --no-fund --no-audit

psql "$ADMIN" -qc "CREATE DATABASE $DB"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
LOG="$(mktemp)"
# The suite's webhook receiver listens on 127.0.0.1.
FLOWGATE_API_KEYS="${CONFORMANCE_API_KEY:-}" \
DATABASE_URL="$BASE/$DB" FLOWGATE_ADDR="127.0.0.1:$PORT" FLOWGATE_DS_LONG_POLL="$LONG_POLL_S" \
  FLOWGATE_DS_WEBHOOK_LOOPBACK=true \
  RUST_LOG="${RUST_LOG:-warn}" "$BIN" serve >"$LOG" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
  rm -f "$LOG"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { cat "$LOG"; echo "flowgate exited"; exit 1; }
  sleep 0.1
done

export NO_COLOR=1; unset FORCE_COLOR
set +e
CONFORMANCE_TEST_URL="http://127.0.0.1:$PORT" CONFORMANCE_SUBSCRIPTIONS="${CONFORMANCE_SUBSCRIPTIONS:-1}" \
CONFORMANCE_LONG_POLL_MS="$((LONG_POLL_S * 1000))" \
  timeout -k 10 "${CONFORMANCE_TIMEOUT_S:-900}" node_modules/.bin/vitest run \
    --config vitest.config.mjs --no-coverage --testTimeout="${CONFORMANCE_TEST_TIMEOUT_MS:-20000}" \
    --reporter=default --reporter=json --outputFile.json=conformance-results.json "$@" \
    >conformance.log 2>&1
rc=$?
set -e
grep -E "✗|×|FAIL" conformance.log | head -60 || true
tail -6 conformance.log
node -e 'const r=require("./conformance-results.json");console.log(`conformance: total=${r.numTotalTests} passed=${r.numPassedTests} failed=${r.numFailedTests} skipped=${r.numPendingTests+(r.numTodoTests||0)}`)'

# The TypeScript client follows a workflow stream through the mapping, on the same server.
set +e
timeout -k 5 120 node client-e2e.mjs "http://127.0.0.1:$PORT"
e2e=$?
set -e
[ "$rc" -eq 0 ] || exit "$rc"
exit "$e2e"
