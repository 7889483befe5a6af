#!/usr/bin/env bash
# The torch step of the test suite: msms_shards.torch under a real torch DataLoader with
# worker processes (tests/python_torch/). torch with its CUDA libraries is ~5.3 GB, so it
# lives in its own venv, .venv-torch (made once, reused while tests/python_torch/requirements.txt
# is unchanged), not in the main test venv. The package: the wheel scripts/test.sh built
# ($MSMS_WHEEL_DIR/msms_shards-*.whl) when given, else `pip install .`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
. scripts/ensure-cmake.sh
venv="$repo/.venv-torch"
req="$repo/tests/python_torch/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$( { cat "$req"; python3 -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    start=$SECONDS
    python3 -m venv --clear "$venv"
    "$venv/bin/pip" install --quiet --no-cache-dir --only-binary :all: -r "$req"
    echo "$want" > "$stamp"
    echo "test-torch: made $venv with torch in $((SECONDS - start)) s ($(du -sh "$venv" | cut -f1))"
else
    echo "test-torch: $venv is up to date; nothing to install"
fi
wheel=( "${MSMS_WHEEL_DIR:-/nonexistent}"/msms_shards-*.whl )
if [[ -f "${wheel[0]}" ]]; then
    "$venv/bin/pip" install --quiet --no-deps --force-reinstall "${wheel[0]}"
else
    "$venv/bin/pip" install --quiet --no-cache-dir --no-deps --force-reinstall .
fi
"$venv/bin/python" -m pytest tests/python_torch -q -rfEs
