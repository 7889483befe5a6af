#!/usr/bin/env bash
# Output-identity check for refactors: the dataset digests of four conversions and every
# --help text of one msms binary, written to OUT (digests.txt, help-*.txt, version.txt).
# Run it with the binary before and after a change and `diff -r` the two folders.
#
#   bash scripts/digests.sh target/release/msms /tmp/digests-new
#
# The runs: the README sample (100,000 spectra, 1% faults, seed 7); a 1M-spectrum synth file
# with defaults; with --splits train=0.98,val=0.01,test=0.01 --dedup exact; with binning.
# Needs ~3 GB of scratch space under ${TMPDIR:-/tmp}; removes it when done.
set -euo pipefail
bin=$1 out=$2
mkdir -p "$out"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# The manifest is _manifest.json from output format 2 on, manifest.json before: either binary.
digest() { local m="$1/_manifest.json"; [[ -e "$m" ]] || m="$1/manifest.json"
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dataset_digest"])' "$m"; }
convert() { # NAME INPUT FLAGS...
    local name=$1 input=$2
    shift 2
    "$bin" build-shards --input-hdf5 "$input" --output-root "$scratch/$name" --overwrite "$@" >/dev/null 2>&1
    echo "$name $(digest "$scratch/$name")" >>"$out/digests.txt"
    rm -rf "${scratch:?}/$name"
}
: >"$out/digests.txt"
"$bin" synth "$scratch/sample.h5" --spectra 100000 --faults 0.01 --seed 7 >/dev/null
convert sample "$scratch/sample.h5"
"$bin" synth "$scratch/m1.h5" --spectra 1000000 >/dev/null
convert 1M-default "$scratch/m1.h5"
convert 1M-splits-dedup "$scratch/m1.h5" --splits train=0.98,val=0.01,test=0.01 --dedup exact
convert 1M-binned "$scratch/m1.h5" --bin-width 0.1 --bin-range 0:1000
"$bin" --help >"$out/help-top.txt"
for c in build-shards inspect verify validate-shards quality-report doctor plan merge synth completions man; do
    "$bin" "$c" --help >"$out/help-$c.txt"
done
"$bin" --version >"$out/version.txt"
