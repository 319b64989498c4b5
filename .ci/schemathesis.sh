#!/usr/bin/env bash
# Fuzzes the real binary against its own /openapi.json with schemathesis: a fresh database,
# a random port, waits capped at half a second; the two SSE-only endpoints are left out (they
# stream until the client leaves). Durable Streams reads stay in: their SSE mode (live=sse) needs
# an existing stream and ends after a minute. Fails on any 5xx or response that does not match
# the schema.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=4.32.5
VENV=target/schemathesis-venv
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$VERSION"
fi
ADMIN=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB="fg_test_schemathesis_$$"
psql "$ADMIN" -qc "CREATE DATABASE $DB"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
cargo build --bin flowgate
# SCHEMATHESIS_KEY=k runs the server with that API key and sends it (the keyed surface).
AUTH=()
if [ -n "${SCHEMATHESIS_KEY:-}" ]; then AUTH=(-H "Authorization: Bearer $SCHEMATHESIS_KEY"); fi
FLOWGATE_API_KEYS="${SCHEMATHESIS_KEY:-}" \
DATABASE_URL="${ADMIN%/*}/$DB" FLOWGATE_ADDR="127.0.0.1:$PORT" FLOWGATE_MAX_WAIT=0.5 \
  FLOWGATE_SHUTDOWN_DELAY=0 FLOWGATE_DRAIN_TIMEOUT=1 RUST_LOG=warn \
  target/debug/flowgate serve >target/schemathesis-flowgate.log 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -fs "$BASE/readyz" >/dev/null && break; sleep 0.5; done
# Deterministic by default; SCHEMATHESIS_SEED=N explores other inputs.
if [ -n "${SCHEMATHESIS_SEED:-}" ]; then MODE=(--seed "$SCHEMATHESIS_SEED"); else MODE=(--generation-deterministic); fi
timeout 900 "$VENV/bin/schemathesis" run "$BASE/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-15}" --request-timeout 5 --workers 1 \
  --phases examples,coverage,fuzzing \
  --exclude-operation-id-regex '^get_v1_workflows_id_(live|streams_key)$' \
  "${MODE[@]}" "${AUTH[@]}" "$@"
