//! End-to-end throughput of `build-shards` (issue workload): a synthetic GeMS file of
//! 1,000,000 spectra in (1024, 2, 128) float64 chunks with gzip 4, converted with default
//! processing to zstd Parquet shards with SHA-256 on the local disk.
//!
//! `cargo bench --bench e2e` runs, per input layout: the native (memory-mapped) decoder with
//! 1 and 2 workers writing shards, a 2-worker `--dry-run`, and the same 2-worker run through
//! the libhdf5 (`H5Dread`) decoder. `MSMS_BENCH_SPECTRA` changes the input size;
//! `MSMS_BENCH_LAYOUTS` (comma-separated `gems`, `auto-chunk`, `contiguous`) the layouts.
//! Inputs are generated once into `target/msms-bench/` and reused by later runs; every
//! iteration checks the number of spectra it converted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use msms_shards::commands::synth::{self, SynthOptions};
use msms_shards::config::{Layer, Settings};
use msms_shards::read::Decode;
use msms_shards::run::{build_shards, detect_inputs, BuildOptions, Progress};

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
        let opts = SynthOptions {
            spectra: n,
            layout: layout.parse().expect("layout"),
            faults: 0.01,
            seed: 1,
        };
        synth::write(&tmp, &opts).expect("synth");
        std::fs::rename(&tmp, &path).expect("rename");
    }
    path
}

fn convert(input: &Path, out: Option<&Path>, workers: usize, decode: Decode, expect: u64) {
    let cli = Layer {
        inputs: Some(vec![input.to_path_buf()]),
        num_workers: Some(workers),
        ..Layer::default()
    };
    let s = Settings::resolve(&cli, None, &Layer::default(), 2).expect("settings");
    let mappings = detect_inputs(&s.inputs).expect("inputs");
    let opts = BuildOptions {
        output_root: out.map(Path::to_path_buf),
        settings: s,
        dry_run: out.is_none(),
        overwrite: true,
        progress: Progress::Quiet,
        decode,
        resume: false,
        stop: None,
        units: None,
    };
    let summary = build_shards(&opts, &mappings).expect("build");
    assert_eq!(summary.counts.read, expect);
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
        for workers in [1, 2] {
            g.bench_with_input(
                BenchmarkId::new(format!("{layout}/native"), workers),
                &workers,
                |b, &w| b.iter(|| convert(&file, Some(&out), w, Decode::Native, n)),
            );
        }
        g.bench_with_input(
            BenchmarkId::new(format!("{layout}/native-dry-run"), 2),
            &2,
            |b, &w| b.iter(|| convert(&file, None, w, Decode::Native, n)),
        );
        g.bench_with_input(
            BenchmarkId::new(format!("{layout}/libhdf5"), 2),
            &2,
            |b, &w| b.iter(|| convert(&file, Some(&out), w, Decode::Libhdf5, n)),
        );
    }
    g.finish();
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
