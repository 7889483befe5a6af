//! End-to-end throughput of `build-shards` on a synthetic GeMS file, and of its stages.
//!
//! `cargo bench --bench pipeline` (set `MSMS_BENCH_SPECTRA` to change the input size;
//! default 100,000). Inputs are generated once, outside the timed loops; every iteration
//! checks the number of spectra it converted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use msms_shards::config::{Layer, Settings};
use msms_shards::pipeline::{build_shards, detect_inputs, BuildOptions, Progress};
use msms_shards::synth::{self, SynthOptions};

fn spectra() -> u64 {
    std::env::var("MSMS_BENCH_SPECTRA")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000)
}

fn input(dir: &Path, layout: &str, n: u64) -> PathBuf {
    let path = dir.join(format!("{}.hdf5", layout.replace(',', "_")));
    let opts = SynthOptions {
        spectra: n,
        layout: layout.parse().expect("layout"),
        faults: 0.01,
        seed: 1,
    };
    synth::write(&path, &opts).expect("synth");
    path
}

fn settings(input: &Path, workers: usize) -> Settings {
    let cli = Layer {
        inputs: Some(vec![input.to_path_buf()]),
        num_workers: Some(workers),
        ..Layer::default()
    };
    Settings::resolve(&cli, None, &Layer::default(), 2).expect("settings")
}

fn convert(input: &Path, out: Option<&Path>, workers: usize, expect: u64) {
    let s = settings(input, workers);
    let mappings = detect_inputs(&s.inputs).expect("inputs");
    let opts = BuildOptions {
        output_root: out.map(Path::to_path_buf),
        settings: s,
        dry_run: out.is_none(),
        overwrite: true,
        progress: Progress::Quiet,
        decode: Default::default(),
    };
    let summary = build_shards(&opts, &mappings).expect("build");
    assert_eq!(summary.counts.read, expect);
}

fn end_to_end(c: &mut Criterion) {
    let n = spectra();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("build_shards");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    for layout in ["gems", "auto-chunk", "contiguous"] {
        let file = input(dir.path(), layout, n);
        for workers in [1, 2] {
            g.bench_with_input(
                BenchmarkId::new(format!("{layout}/write"), workers),
                &workers,
                |b, &w| {
                    let out = dir.path().join("out");
                    b.iter(|| convert(&file, Some(&out), w, n));
                },
            );
        }
        g.bench_with_input(
            BenchmarkId::new(format!("{layout}/dry-run"), 2),
            &2,
            |b, &w| {
                b.iter(|| convert(&file, None, w, n));
            },
        );
    }
    g.finish();
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
