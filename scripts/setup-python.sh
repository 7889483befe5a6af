#!/usr/bin/env bash
# Create (or reuse) the Python venv for tests/python at <repo>/.venv and install the pinned
# requirements. Idempotent and non-interactive: the install is skipped when the stamp file
# records the same requirements hash (and interpreter). Prints one line saying what it did.
#
#   bash scripts/setup-python.sh      # then: .venv/bin/python -m pytest tests/python -q
#
# Environment: PYTHON (default python3) chooses the interpreter that creates the venv.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
req="$repo/tests/python/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
    echo "setup-python: '$python' not found; install Python 3 (Debian/Ubuntu: apt-get install -y python3 python3-venv)" >&2
    exit 1
fi
[[ -f "$req" ]] || { echo "setup-python: missing $req" >&2; exit 1; }

if ! pyversion="$("$python" -c 'import sys; print(sys.version)' 2>&1)"; then
    echo "setup-python: '$python' does not run: $pyversion" >&2
    exit 1
fi
# The hash covers the requirements and the interpreter version, so a new Python rebuilds.
want="$( { cat "$req"; printf '%s\n' "$pyversion"; } | sha256sum | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "setup-python: $venv is up to date (requirements $(printf %.12s "$want")); nothing to do"
    exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

make_venv() {
    # --clear: a half-made venv (e.g. from a run without ensurepip) is rebuilt from scratch.
    "$python" -m venv --clear "$venv" >"$log" 2>&1
}

created="reused"
venv_version() { "$venv/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null; }
# (Re)create when absent, broken (no pip), or made by another interpreter.
if [[ ! -x "$venv/bin/python" ]] || [[ "$(venv_version || true)" != "$pyversion" ]] \
        || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    if ! make_venv; then
        if grep -qiE 'ensurepip|venv' "$log" && command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
            # Debian/Ubuntu ship venv/ensurepip separately (python3-venv or python3.X-venv).
            pyver="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq >>"$log" 2>&1 || true
            apt-get install -y -qq "python${pyver}-venv" >>"$log" 2>&1 \
                || apt-get install -y -qq python3-venv >>"$log" 2>&1 || true
            make_venv || { cat "$log" >&2; echo "setup-python: '$python -m venv' still fails after installing python3-venv (see above)" >&2; exit 1; }
        else
            cat "$log" >&2
            echo "setup-python: '$python -m venv' failed; install the venv module (Debian/Ubuntu: sudo apt-get install -y python3-venv) and rerun" >&2
            exit 1
        fi
    fi
    created="created"
fi

if ! "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
        --only-binary :all: -r "$req" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-python: pip install -r $req failed (see above)" >&2
    exit 1
fi
printf '%s\n' "$want" >"$stamp"
echo "setup-python: $created $venv and installed $(grep -cE '^[A-Za-z0-9]' "$req") pinned packages from tests/python/requirements.txt"
