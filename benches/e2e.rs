//! End-to-end throughput of `build-shards` (issue workload): a synthetic GeMS file of
//! 1,000,000 spectra in (1024, 2, 128) float64 chunks with gzip 4, converted with default
//! processing to zstd Parquet shards with SHA-256 on the local disk.
//!
//! `cargo bench --bench e2e` runs, per input layout: the native (memory-mapped) decoder with
//! 1 and 2 workers writing shards, a 2-worker `--dry-run`, and the same 2-worker run through
//! the libhdf5 (`H5Dread`) decoder. `MSMS_BENCH_SPECTRA` changes the input size;
//! `MSMS_BENCH_LAYOUTS` (comma-separated `gems`, `auto-chunk`, `contiguous`, and
//! `h5py-gzip4`) the layouts. Inputs are generated once into `target/msms-bench/` and reused
//! by later runs; every iteration checks the number of spectra it converted.
//!
//! `h5py-gzip4` is issue #13's reference input: the `gems` file's spectra written again by
//! h5py (`benches/reference/h5py_gems.py`, every dataset in 1024-row chunks with gzip 4),
//! with the Python named by `MSMS_BENCH_PYTHON` (default `.venv/bin/python`, else `python3`;
//! it needs h5py and numpy).
//!
//! After the criterion groups, the **floor** of each layout measured (`support/floor.rs`:
//! inflating every stored chunk, zstd over the encoded pages, SHA-256 of the shards, each the
//! fastest of `MSMS_BENCH_FLOOR_RUNS` (3) one-core runs, summed and divided by the cores) is
//! printed with each conversion's mean time against it, one line per conversion; with
//! `MSMS_BENCH_ZSTD_LEVEL=L` also the floor at zstd level L. The conversion's mean is taken
//! over the iterations criterion ran, but for its first (warm-up) call. Not in
//! `cargo test --benches` (criterion's test mode).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use msms_shards::commands::synth::{self, SynthOptions};
use msms_shards::read::Decode;

#[path = "support/floor.rs"]
mod floor;

/// The h5py-written reference input of issue #13 (see the module documentation).
const H5PY_LAYOUT: &str = "h5py-gzip4";

fn spectra() -> u64 {
    std::env::var("MSMS_BENCH_SPECTRA")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

fn layouts() -> Vec<String> {
    std::env::var("MSMS_BENCH_LAYOUTS")
        .unwrap_or_else(|_| "gems,auto-chunk,contiguous".into())
        .split(',')
        .map(str::to_string)
        .collect()
}

/// The synthetic input, generated on first use (seeded: the same bytes every time).
fn input(layout: &str, n: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/msms-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let path = dir.join(format!("{layout}-{n}.hdf5"));
    if !path.exists() {
        let tmp = path.with_extension("hdf5.tmp");
        if layout == H5PY_LAYOUT {
            h5py_rewrite(&input("gems", n), &tmp);
        } else {
            let opts = SynthOptions {
                spectra: n,
                layout: layout.parse().expect("layout"),
                faults: 0.01,
                seed: 1,
            };
            synth::write(&tmp, &opts).expect("synth");
        }
        std::fs::rename(&tmp, &path).expect("rename");
    }
    path
}

/// `benches/reference/h5py_gems.py OUT --from SYNTH`: `synth`'s datasets written again by h5py.
fn h5py_rewrite(synth: &Path, out: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("MSMS_BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let venv = root.join(".venv/bin/python");
            if venv.exists() {
                venv
            } else {
                "python3".into()
            }
        });
    let status = Command::new(&python)
        .arg(root.join("benches/reference/h5py_gems.py"))
        .arg(out)
        .arg("--from")
        .arg(synth)
        .status()
        .unwrap_or_else(|e| panic!("{}: {e} (set MSMS_BENCH_PYTHON)", python.display()));
    assert!(status.success(), "h5py_gems.py failed: {status}");
}

/// Time spent in each benchmark's iterations and their count, by benchmark id in the order
/// run, for the floor comparison after the criterion groups (the first call of each
/// routine, criterion's first warm-up, is left out).
#[derive(Default)]
struct Timed {
    calls: u64,
    iters: u64,
    total: Duration,
}

static TIMES: Mutex<Vec<(String, Timed)>> = Mutex::new(Vec::new());

/// Run `f` `iters` times, record the time under `id` and return it (for `iter_custom`).
fn timed(id: &str, iters: u64, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    let took = t.elapsed();
    let mut times = TIMES.lock().unwrap_or_else(|e| e.into_inner());
    let at = match times.iter().position(|(k, _)| k == id) {
        Some(at) => at,
        None => {
            times.push((id.to_string(), Timed::default()));
            times.len() - 1
        }
    };
    let e = &mut times[at].1;
    e.calls += 1;
    if e.calls > 1 {
        e.iters += iters;
        e.total += took;
    }
    took
}

fn convert(input: &Path, out: Option<&Path>, workers: usize, decode: Decode, expect: u64) {
    assert_eq!(floor::convert(input, out, workers, decode, None), expect);
}

fn end_to_end(c: &mut Criterion) {
    msms_shards::run::tune_allocator();
    let n = spectra();
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = out_dir.path().join("out");
    let mut g = c.benchmark_group("e2e");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(30));
    for layout in layouts() {
        let file = input(&layout, n);
        // (name, workers, writes shards, decoder)
        let runs = [
            ("native", 1, true, Decode::Native),
            ("native", 2, true, Decode::Native),
            ("native-dry-run", 2, false, Decode::Native),
            ("libhdf5", 2, true, Decode::Libhdf5),
        ];
        for (name, workers, write, decode) in runs {
            let id = BenchmarkId::new(format!("{layout}/{name}"), workers);
            let key = format!("{layout}/{name}/{workers}");
            let dest = write.then_some(out.as_path());
            g.bench_with_input(id, &workers, |b, &w| {
                b.iter_custom(|iters| timed(&key, iters, || convert(&file, dest, w, decode, n)))
            });
        }
    }
    g.finish();
}

/// For each layout with a measured conversion: convert once more (2 workers) for the shards,
/// measure the floor, and print it against every conversion of that layout.
fn floors() {
    let times = std::mem::take(&mut *TIMES.lock().unwrap_or_else(|e| e.into_inner()));
    let n = spectra();
    let runs = std::env::var("MSMS_BENCH_FLOOR_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for layout in layouts() {
        let prefix = format!("{layout}/");
        let measured: Vec<&(String, Timed)> = times
            .iter()
            .filter(|(k, t)| k.starts_with(&prefix) && t.iters > 0)
            .collect();
        if measured.is_empty() {
            continue;
        }
        let file = input(&layout, n);
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        convert(&file, Some(&out), 2, Decode::Native, n);
        let shards = floor::shards_under(&out);
        let floors = floor::measure(&file, &shards, &floor::levels(), runs);
        println!("\nfloor of {layout} ({n} spectra): {}", floors[0].sizes());
        for (key, t) in measured {
            let mean = t.total / t.iters as u32;
            println!("{}", floors[0].compare(key, mean));
        }
        for f in &floors[1..] {
            println!("{}; {}", f.describe(), f.sizes());
        }
    }
}

criterion_group!(benches, end_to_end);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Criterion measures only with `--bench` (what `cargo bench` passes); not for `--list`.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list") {
        floors();
    }
}
