#!/usr/bin/env bash
# The main job on a generated sample: build msms (release), write a 100,000-spectrum
# GeMS-layout HDF5 file with 1% planted faults, convert it, and print the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ensure-cmake.sh
cargo build --release --quiet
msms=target/release/msms
mkdir -p sample
spectra=${SAMPLE_SPECTRA:-100000}
"$msms" synth sample/gems_sample.hdf5 --spectra "$spectra" --faults 0.01 --seed 7
"$msms" build-shards --input-hdf5 sample/gems_sample.hdf5 --output-root sample/shards --overwrite "$@"
echo "sample: shards in sample/shards/train/, manifest in sample/shards/_manifest.json"
