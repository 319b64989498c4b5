#!/usr/bin/env bash
# The Python client's tests against the real binary (target/debug/flowgate), in a cached
# virtualenv with pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${FLOWGATE_CI_CACHE:-$HOME/.cache/flowgate-ci}/pyclient"
[ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "httpx==0.28.1" "httpx-sse==0.4.3" "pytest==9.2.0"
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall ./clients/python
rm -rf clients/python/build clients/python/*.egg-info
"$venv/bin/pytest" -q -p no:cacheprovider clients/python/tests
