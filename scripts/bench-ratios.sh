#!/usr/bin/env bash
# Throughput ratios on one input (issue #13): msms build-shards with 2 workers, with 1 worker
# and as --dry-run (2 workers), the h5py + numpy + pyarrow conversion
# (benches/reference/h5py_pyarrow.py), and the floor (examples/floor.rs: inflate every stored
# chunk + zstd level 1 over the encoded pages + SHA-256 of the shards, on one core, divided by
# the cores). Release builds; each conversion the best of RUNS (3) wall times, with the peak
# RSS of that run (/usr/bin/time); the floor's parts the fastest of RUNS each.
#
#   scripts/bench-ratios.sh [INPUT.hdf5]
#
# Without INPUT: issue #13's reference input, the h5py-written gzip-4 GeMS file of
# MSMS_BENCH_SPECTRA (1,000,000) spectra in target/msms-bench/h5py-gzip4-N.hdf5, the same file
# as `MSMS_BENCH_LAYOUTS=h5py-gzip4 cargo bench --bench e2e` (generated once if missing, from
# target/msms-bench/gems-N.hdf5, itself `msms synth --faults 0.01 --seed 1`). Python:
# MSMS_BENCH_PYTHON, else .venv/bin/python, else python3 (needs h5py, numpy, pyarrow, and
# pytest for the generator). Other MSMS_* variables are ignored (cleared for every run).
# The binaries are copied to a scratch directory first, so a concurrent build cannot swap them.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
n=${MSMS_BENCH_SPECTRA:-1000000}
py=${MSMS_BENCH_PYTHON:-}
[ -n "$py" ] || { [ -x .venv/bin/python ] && py=.venv/bin/python || py=python3; }
for v in $(compgen -e | grep '^MSMS_' || true); do
    case $v in MSMS_BENCH_ZSTD_LEVEL) ;; *) unset "$v" ;; esac
done

. scripts/ensure-cmake.sh
cargo build --release --quiet --bin msms --example floor
target=${CARGO_TARGET_DIR:-target}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp "$target/release/msms" "$target/release/examples/floor" "$scratch/"
msms=$scratch/msms

input=${1:-}
if [ -z "$input" ]; then
    mkdir -p target/msms-bench
    input=target/msms-bench/h5py-gzip4-$n.hdf5
    if [ ! -e "$input" ]; then
        gems=target/msms-bench/gems-$n.hdf5
        if [ ! -e "$gems" ]; then
            "$msms" synth "$gems.tmp" --spectra "$n" --layout gems --faults 0.01 --seed 1 >/dev/null
            mv "$gems.tmp" "$gems"
        fi
        "$py" benches/reference/h5py_gems.py "$input.tmp" --from "$gems"
        mv "$input.tmp" "$input"
    fi
fi
spectra=$("$py" -c 'import h5py, sys; f = h5py.File(sys.argv[1], "r"); print(len(f["spectrum"] if "spectrum" in f else f["spectra"]))' "$input")
echo "input: $input ($spectra spectra, $(du -m "$input" | cut -f1) MB); best of $runs; $(nproc) cores"

# best NAME CMD...: run CMD $runs times; record the best wall time (s) and that run's peak RSS (MB).
declare -A best_s rss_mb
best() {
    local name=$1 i t0 t1 s
    shift
    for ((i = 0; i < runs; i++)); do
        rm -rf "$scratch/out"
        t0=$(date +%s%N)
        if ! /usr/bin/time -f %M -o "$scratch/rss" "$@" >"$scratch/log" 2>&1; then
            cat "$scratch/log" >&2
            echo "bench-ratios: $name failed" >&2
            exit 1
        fi
        t1=$(date +%s%N)
        s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
        if [ -z "${best_s[$name]:-}" ] || awk -v x="$s" -v y="${best_s[$name]}" 'BEGIN { exit !(x < y) }'; then
            best_s[$name]=$s
            rss_mb[$name]=$(awk '{ printf "%.1f", $1 / 1024 }' "$scratch/rss")
            cp "$scratch/log" "$scratch/log.$name"
        fi
    done
    printf '%-24s %8.3f s %12s spectra/s %9s MB max RSS\n' "$name" "${best_s[$name]}" \
        "$(awk -v n="$spectra" -v s="${best_s[$name]}" 'BEGIN { printf "%.0f", n / s }')" "${rss_mb[$name]}"
}
build=("$msms" build-shards --input-hdf5 "$input" --overwrite -q)
best "msms 2 workers" "${build[@]}" --output-root "$scratch/out" --num-workers 2
best "msms 1 worker" "${build[@]}" --output-root "$scratch/out" --num-workers 1
best "msms --dry-run" "${build[@]}" --output-root "$scratch/out" --num-workers 2 --dry-run
best "h5py + pyarrow" "$py" benches/reference/h5py_pyarrow.py "$input" "$scratch/out"
sed 's/^/    /' "$scratch/log.h5py + pyarrow"

# The floor, on the shards of one more 2-worker conversion.
rm -rf "$scratch/out"
"${build[@]}" --output-root "$scratch/out" --num-workers 2
"$scratch/floor" "$input" "$scratch/out" "$runs" >"$scratch/floor.txt"
sed '$d; s/^/    /' "$scratch/floor.txt"
floor_s=$(tail -1 "$scratch/floor.txt" | sed 's/.*floor_s=\([^ ]*\).*/\1/')
printf '%-24s %8.3f s %12s spectra/s\n' "floor" "$floor_s" \
    "$(awk -v n="$spectra" -v s="$floor_s" 'BEGIN { printf "%.0f", n / s }')"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
s2=${best_s["msms 2 workers"]} s1=${best_s["msms 1 worker"]} sd=${best_s["msms --dry-run"]} sp=${best_s["h5py + pyarrow"]}
echo "ratios (of spectra/s): 2w/1w $(ratio "$s1" "$s2")×; 2w/script $(ratio "$sp" "$s2")×; dry/full $(ratio "$s2" "$sd")×;" \
    "floor fraction (floor / 2-worker time) $(awk -v f="$floor_s" -v s="$s2" 'BEGIN { printf "%.1f", 100 * f / s }') %"
