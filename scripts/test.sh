#!/usr/bin/env bash
# Every test: the Rust workspace (unit, property and integration tests), then the Python
# interoperability tests (h5py-written inputs, pyarrow-read shards) in the project's own venv.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ensure-cmake.sh
cargo build --quiet
cargo test --workspace --quiet
bash scripts/setup-python.sh
MSMS_BIN="$PWD/target/debug/msms" .venv/bin/python -m pytest tests/python -q
