#!/usr/bin/env bash
# The SQL the query macros check, against the migrations as they are now: installs the pinned
# sqlx-cli when it is missing, applies every migration to a fresh database, and fails if the
# committed .sqlx/ (what builds without a database, the Docker image's included) differs
# from what the queries describe there (`cargo sqlx prepare --check`).
# To refresh .sqlx/ after changing a query: the same steps with `prepare` instead of
# `prepare --check` (`.ci/sqlx-check.sh --write`).
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.8.6
if ! cargo sqlx --version 2>/dev/null | grep -qF "$version"; then
  cargo install sqlx-cli --version "$version" --locked --no-default-features --features postgres,rustls
fi
db=fg_test_sqlx_$$
admin=postgres://postgres@127.0.0.1:5432/postgres
psql "$admin" -qc "CREATE DATABASE $db"
trap 'psql "$admin" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db
cargo sqlx migrate run --source migrations
if [ "${1:-}" = --write ]; then
  cargo sqlx prepare -- --all-targets
else
  cargo sqlx prepare --check -- --all-targets
fi
