#!/usr/bin/env bash
# Build the `kerno` Python package and run its tests (pytest) and type checks (mypy).
#
# The venv lives in the workspace's target dir (PYKERNO_VENV overrides), outside git. The
# first run creates it and installs the tools from PyPI; later runs only rebuild the
# extension (cargo is incremental) and run the tests. Exits non-zero when anything fails.
# Tests named test_root_* need root; without root they are skipped (under CI=true they run
# and fail instead, so CI never skips them silently).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${PYKERNO_VENV:-$repo/target/pyenv}"
python="${PYTHON:-python3}"
# Bump when the list changes: the stamp makes later runs skip pip entirely.
tools=("maturin>=1.9.4,<2" "pytest>=8" "mypy>=1.10" "nbclient" "nbformat" "ipykernel" "matplotlib")
stamp="$venv/.kerno-tools"

if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  echo "run-tests: creating $venv"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "${tools[*]}" ]; then
  echo "run-tests: installing ${tools[*]}"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${tools[@]}"
  printf '%s' "${tools[*]}" >"$stamp"
fi

export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:$PATH"

echo "run-tests: building the extension (maturin develop)"
(cd "$here" && maturin develop --quiet)

# The CLI, for the tests that check Python renders exactly what `kerno doctor` prints.
echo "run-tests: building the kerno CLI"
(cd "$repo" && cargo build --quiet -p kerno-cli)
target_dir="$(cd "$repo" && cargo metadata --format-version 1 --no-deps | python -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
export PYKERNO_CLI="${PYKERNO_CLI:-$target_dir/debug/kerno}"

status=0
echo "run-tests: pytest"
(cd "$here" && python -m pytest -ra -p no:cacheprovider --ignore=tests/test_custom_rule_crate.py tests) || status=1

# A Rust rule from a crate of its own, linked into a test build of the wheel: its threshold
# must reach Python like a built-in one. The wheel is rebuilt without it afterwards, so the
# venv keeps the real package.
echo "run-tests: pytest against a build with the test-only rule crate (tests/kerno-test-rule)"
(cd "$here" && maturin develop --quiet --features test-rule \
  && python -m pytest -ra -p no:cacheprovider tests/test_custom_rule_crate.py) || status=1
(cd "$here" && maturin develop --quiet) || status=1

echo "run-tests: mypy --strict (examples, package, tests) against the stubs"
(cd "$here" && mypy --strict --cache-dir "$repo/target/mypy-cache" \
  "$repo/examples/python/runbook.py" "$repo/examples/python/make_incident.py" kerno tests) || status=1

exit $status
