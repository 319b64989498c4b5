#!/usr/bin/env bash
# The image's inputs, without Docker (CI machines cannot run it):
#  1. every COPY source in the Dockerfile exists and is not excluded by .dockerignore;
#  2. the crate compiles from exactly the files the Dockerfile copies: they are copied
#     alone into a clean temporary directory and checked there with `--locked --offline`
#     against the registry already fetched for the other CI steps.
# Step 2 is `cargo check`, not `cargo build`: it needs the same files and catches a missing
# one just the same, and sharing this checkout's target directory it reuses the
# dependencies' metadata and takes seconds, where a release build from a fresh directory
# takes minutes on a CI machine. (It writes no binary, so target/debug/flowgate is untouched.)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Sources of `COPY [--chown=…] src… dest` (not `COPY --from=…`, which copies between stages).
sources=$(awk 'toupper($1) == "COPY" && $2 !~ /^--from=/ {
    for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i }' Dockerfile)
[ -n "$sources" ] || { echo "docker-check: no COPY in Dockerfile" >&2; exit 1; }

status=0
for s in $sources; do
  if [ ! -e "$s" ]; then
    echo "docker-check: COPY source '$s' does not exist" >&2
    status=1
  elif [ -f .dockerignore ] && grep -qxE "/?${s%/}/?" .dockerignore; then
    echo "docker-check: COPY source '$s' is excluded by .dockerignore" >&2
    status=1
  fi
done
[ $status -eq 0 ] || exit $status

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Each source lands at its own relative path (every COPY here mirrors its source path).
for s in $sources; do
  mkdir -p "$tmp/$(dirname "$s")"
  cp -R "$s" "$tmp/$s"
done
echo "docker-check: COPY sources exist: $(echo $sources | tr '\n' ' ')"
# SQLX_OFFLINE as in the Dockerfile: every checked query must be described in .sqlx/.
(cd "$tmp" && SQLX_OFFLINE=true CARGO_TARGET_DIR="$root/target" cargo check --locked --offline --quiet --bin flowgate)
echo "docker-check: the crate compiles from exactly those files"
