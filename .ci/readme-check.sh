#!/usr/bin/env bash
# Runs README.md's examples as written, against a freshly started target/debug/flowgate on a
# random port with its own database:
# - every ```sh block right after a `<!-- readme-check -->` line, each in its own bash with
#   -euo pipefail, `flowgate` on PATH, FLOWGATE_URL and DATABASE_URL set, localhost:8080 and
#   127.0.0.1:8080 pointed at the server, and curl failing on HTTP errors; then every run
#   those examples started must have finished (none left PENDING);
# - the Rust example: the README's ```rust block must be examples/report.rs, it must build
#   in a crate of its own with the README's [dependencies], and the
#   `<!-- readme-check: example -->` block runs against the example program.
# Any failure exits non-zero, naming the README line.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
admin_url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
fresh_db() {
  local name="fg_test_readme_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  psql "$admin_url" -qc "CREATE DATABASE $name" >/dev/null
  echo "${admin_url%/*}/$name"
}
real_curl="$(command -v curl)"
wait_ready() {
  for _ in $(seq 1 300); do
    "$real_curl" -fsS "$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "readme-check: nothing ready at $1" >&2
  return 1
}

# Prints the blocks fenced with ```$2 that follow a line equal to $1, each as
# "@@ <line>" then its lines.
blocks() {
  awk -v marker="$1" -v lang="$2" '
    armed && $0 == "```" lang { inside = 1; armed = 0; print "@@ " NR + 1; next }
    inside && $0 == "```" { inside = 0; next }
    inside { print; next }
    { armed = ($0 == marker) }
  ' README.md
}

# Runs each block of `blocks "$1" sh` against the server at $2 (port $3).
run_blocks() {
  local marker="$1" base="$2" port="$3" n=0
  mkdir -p "$work/blocks"
  blocks "$marker" sh | awk -v dir="$work/blocks" '
    /^@@ / { n++; file = sprintf("%s/%02d-%s.sh", dir, n, $2); next }
    { print > file }'
  for f in "$work"/blocks/*.sh; do
    [ -e "$f" ] || { echo "readme-check: no blocks marked $marker" >&2; return 1; }
    local line="${f##*-}"; line="${line%.sh}"
    sed -i -E "s#(127\.0\.0\.1|localhost):8080#\1:$port#g" "$f"
    echo "--- README.md line $line"
    if ! FLOWGATE_URL="$base" timeout 180 bash -euo pipefail "$f"; then
      echo "readme-check: the block at README.md line $line failed" >&2
      return 1
    fi
    n=$((n + 1))
  done
  rm -rf "$work/blocks"
  echo "--- $n block(s) marked $marker ran"
}

# `flowgate` on PATH (the debug build), curl that fails on HTTP errors.
mkdir -p "$work/bin"
ln -s "$root/target/debug/flowgate" "$work/bin/flowgate"
cat > "$work/bin/curl" <<'SH'
#!/bin/sh
exec REAL_CURL --fail-with-body "$@"
SH
sed -i "s#REAL_CURL#$real_curl#" "$work/bin/curl"
chmod +x "$work/bin/curl"
export PATH="$work/bin:$PATH"
unset NO_COLOR FLOWGATE_API_KEY

echo "== the shell examples against target/debug/flowgate"
db="$(fresh_db)"
port="$(free_port)"
base="http://127.0.0.1:$port"
DATABASE_URL="$db" FLOWGATE_ADDR="127.0.0.1:$port" FLOWGATE_SHUTDOWN_DELAY=0 \
  "$root/target/debug/flowgate" serve >"$work/serve.log" 2>&1 &
pids+=($!)
wait_ready "$base" || { tail -n 30 "$work/serve.log"; exit 1; }
if ! DATABASE_URL="$db" run_blocks "<!-- readme-check -->" "$base" "$port"; then
  echo "server log:"; tail -n 30 "$work/serve.log"; exit 1
fi
pending="$(psql "$db" -Atc "SELECT string_agg(id || ' ' || status, ', ') FROM flowgate.workflows WHERE status NOT IN ('SUCCESS')")"
if [ -n "$pending" ]; then
  echo "readme-check: runs the README started did not succeed: $pending" >&2
  exit 1
fi

echo "== the Rust example is examples/report.rs"
blocks "<!-- readme-example: examples/report.rs -->" rust | tail -n +2 >"$work/report.rs"
if ! diff -u examples/report.rs "$work/report.rs"; then
  echo "readme-check: README's Rust example differs from examples/report.rs" >&2
  exit 1
fi

echo "== it builds in a crate of its own with the README's [dependencies]"
mkdir -p "$work/crate/src"
ln -s "$root" "$work/flowgate"
{
  printf '[package]\nname = "my-workflows"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n'
  blocks "<!-- readme-crate -->" toml | tail -n +2
} >"$work/crate/Cargo.toml"
cp examples/report.rs "$work/crate/src/main.rs"
cp Cargo.lock "$work/crate/Cargo.lock"
(cd "$work/crate" && CARGO_TARGET_DIR="$root/target" cargo check --quiet)

echo "== the example program, and the README's commands against it"
cargo build --quiet --example report
db2="$(fresh_db)"
port2="$(free_port)"
DATABASE_URL="$db2" FLOWGATE_ADDR="127.0.0.1:$port2" FLOWGATE_SHUTDOWN_DELAY=0 \
  "$root/target/debug/examples/report" >"$work/report.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$port2" || { tail -n 30 "$work/report.log"; exit 1; }
if ! DATABASE_URL="$db2" run_blocks "<!-- readme-check: example -->" "http://127.0.0.1:$port2" "$port2"; then
  echo "example log:"; tail -n 30 "$work/report.log"; exit 1
fi
status="$(psql "$db2" -Atc "SELECT status FROM flowgate.workflows WHERE id = 'report-1'")"
[ "$status" = "SUCCESS" ] || { echo "readme-check: report-1 ended $status" >&2; exit 1; }
echo "readme-check: ok"
