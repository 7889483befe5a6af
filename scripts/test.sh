#!/usr/bin/env bash
# Every test: the Rust workspace (unit, property, integration and fuzz-corpus tests), the
# kernels crate again for each SIMD tier this CPU has (x86-64-v3 = AVX2, x86-64-v4 = AVX-512;
# `wide` fixes its instructions at compile time, so each tier is its own build, compared with
# the oracle by the same property tests), then the Python tests in the project's own venv:
# h5py-written inputs; shards read by pyarrow, DuckDB, polars and Hugging Face datasets; the
# quality report in headless Chromium; the Dask and Slurm examples; the Python package
# (`pip install .`), then, in its own venv, its torch dataset under a real DataLoader.
#
# With `CI` set (anything but empty, 0, false or no) nothing may skip: a missing browser, a
# missing man/groff, an unimportable Python dependency or a SIMD build that is not the level
# it was asked for fails the run, naming what is missing. Outside CI those skip and say so
# (pytest lists every skip: -rs).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ensure-cmake.sh

in_ci() {
    case "$(printf '%s' "${CI:-}" | tr '[:upper:]' '[:lower:]')" in
        "" | 0 | false | no) return 1 ;;
        *) return 0 ;;
    esac
}

target="${CARGO_TARGET_DIR:-target}"

# Builds target/debug/msms too (the integration tests run it); a separate `cargo build`
# would compile the dependency graph a second time with different feature unification.
# The default build is the x86-64 baseline: the kernels must say SSE2 (unless the caller
# chose other RUSTFLAGS, whose level this script cannot name).
if [[ -z "${RUSTFLAGS:-}" && "$(uname -m)" == x86_64 ]]; then
    MSMS_EXPECT_SIMD=sse2 cargo test --workspace
else
    cargo test --workspace
fi

# The kernels' SIMD tiers: one build per target CPU level, each in its own target directory
# (target/simd-<level>) so the main build stays warm. MSMS_EXPECT_SIMD makes
# kernels/tests/simd_level.rs fail if the build is not the level asked for.
simd_tier() {
    local cpu="$1" want="$2"
    echo "test.sh: msms-kernels for -C target-cpu=$cpu (SIMD level $want)"
    RUSTFLAGS="-C target-cpu=$cpu" RUSTDOCFLAGS="-C target-cpu=$cpu" MSMS_EXPECT_SIMD="$want" \
        cargo test -p msms-kernels --target-dir "$target/simd-$cpu"
}
# The CPU flags each level needs (Linux names; abm is lzcnt).
v3_flags="avx2 bmi1 bmi2 fma f16c abm movbe xsave"
v4_flags="$v3_flags avx512f avx512bw avx512cd avx512dq avx512vl"
lacks() { # the flags of "$1" that /proc/cpuinfo does not list
    local f have
    have=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    for f in $1; do [[ "$have" == *" $f "* ]] || printf '%s ' "$f"; done
}
if [[ "$(uname -m)" == x86_64 ]]; then
    missing="$(lacks "$v3_flags")"
    if [[ -z "$missing" ]]; then
        simd_tier x86-64-v3 avx2
    elif in_ci; then
        echo "test.sh: this CPU lacks ${missing% } for -C target-cpu=x86-64-v3, so the AVX2 tier cannot be tested; CI=$CI forbids skipping it" >&2
        exit 1
    else
        echo "test.sh: NOT TESTED: the AVX2 tier (-C target-cpu=x86-64-v3): this CPU lacks ${missing% }"
    fi
    # AVX-512 where the CPU has it (CI machines may not): said either way.
    missing="$(lacks "$v4_flags")"
    if [[ -z "$missing" ]]; then
        simd_tier x86-64-v4 avx512f
    else
        echo "test.sh: NOT TESTED: the AVX-512 tier (-C target-cpu=x86-64-v4): this CPU lacks ${missing% }"
    fi
else
    echo "test.sh: NOT TESTED: the x86-64 SIMD tiers (this machine is $(uname -m))"
fi

bash scripts/setup-python.sh
# The Python package (pyproject.toml: maturin, PyO3): built by pip from the project as
# `pip install .` builds it (`pip wheel .`), once, into target/wheels, then installed into the
# test venv (and by scripts/test-torch.sh into the torch venv). Gives .venv/bin/msms and the
# module msms_shards, tested by tests/python/test_package.py. Built with cargo's dev profile
# (MATURIN_PEP517_ARGS; `pip install .` builds release): the same code, from the artifacts the
# Rust tests above just compiled (~50 s here, where a cold release build takes ~3 min).
echo "test.sh: pip wheel . (dev profile) && pip install msms_shards-*.whl (the msms-shards Python package)"
wheels="$target/wheels"
rm -f "$wheels"/msms_shards-*.whl
MATURIN_PEP517_ARGS="--profile dev" \
    .venv/bin/pip wheel --quiet --no-cache-dir --no-deps --wheel-dir "$wheels" .
.venv/bin/pip install --quiet --no-deps --force-reinstall "$wheels"/msms_shards-*.whl
bash scripts/ensure-chromium.sh
# -rfEs: failures, errors and skips (with reasons) in the short summary; under CI,
# tests/python/conftest.py turns any skip into a failure.
case "$target" in
    /*) msms="$target/debug/msms" ;;
    *) msms="$PWD/$target/debug/msms" ;;
esac
MSMS_BIN="$msms" .venv/bin/python -m pytest tests/python -q -rfEs

# Its own step: msms_shards.torch under a real torch DataLoader, in .venv-torch (torch is ~5 GB).
MSMS_WHEEL_DIR="$wheels" bash scripts/test-torch.sh
