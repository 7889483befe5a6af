#!/usr/bin/env bash
# Every test: the Rust workspace (unit, property, integration and fuzz-corpus tests), then
# the Python tests in the project's own venv: h5py-written inputs; shards read by pyarrow,
# DuckDB, polars and Hugging Face datasets; the quality report in headless Chromium; the
# Dask and Slurm examples.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ensure-cmake.sh
# Builds target/debug/msms too (the integration tests run it); a separate `cargo build`
# would compile the dependency graph a second time with different feature unification.
cargo test --workspace
bash scripts/setup-python.sh
bash scripts/ensure-chromium.sh
MSMS_BIN="$PWD/target/debug/msms" .venv/bin/python -m pytest tests/python -q
