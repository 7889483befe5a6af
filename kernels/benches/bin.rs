//! Criterion benchmark of the binning kernels: `wide` tier (= `bin_dense` / `bin_sparse`) vs scalar
//! tier on GeMS-like spectra: 128 sorted peaks in [10, 1000), grid 0.1 over [10, 1000) = 9,900 bins.
//!
//! `dense/*` zero the 39.6 KB row of every spectrum, which bounds them (see `memset` below).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use msms_kernels::bin::{
    bin_dense_scalar, bin_dense_simd, bin_sparse_scalar, bin_sparse_simd, BinAggregation, BinSpec,
};

const SPECTRA: usize = 1024;
const PEAKS: usize = 128;

/// Deterministic xorshift64* stream in [0, 1).
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `SPECTRA` spectra of `PEAKS` peaks each, m/z sorted within each spectrum (a few below 10
/// and above 1000 so the keep test is exercised).
fn inputs() -> (Vec<f64>, Vec<f32>) {
    let mut rng = Rng(0x5eed_0b1a_u64);
    let mut mz = Vec::with_capacity(SPECTRA * PEAKS);
    let mut intensity = Vec::with_capacity(SPECTRA * PEAKS);
    for _ in 0..SPECTRA {
        let mut row: Vec<f64> = (0..PEAKS).map(|_| 5.0 + rng.next_f64() * 1000.0).collect();
        row.sort_by(f64::total_cmp);
        mz.extend(row);
        intensity.extend((0..PEAKS).map(|_| (1.0 + rng.next_f64() * 1e4) as f32));
    }
    (mz, intensity)
}

type DenseFn = fn(&BinSpec, &[f64], &[f32], &mut [f32]);
type SparseFn = fn(&BinSpec, &[f64], &[f32], &mut Vec<u32>, &mut Vec<f32>);

fn bench(c: &mut Criterion) {
    let (mz, intensity) = inputs();
    let total = (SPECTRA * PEAKS) as u64;
    let specs = [
        (
            "sum_p1",
            BinSpec::new(10.0, 1000.0, 0.1, BinAggregation::Sum, 1.0).unwrap(),
        ),
        (
            "max_p0.5",
            BinSpec::new(10.0, 1000.0, 0.1, BinAggregation::Max, 0.5).unwrap(),
        ),
    ];
    let dense_fns: [(&str, DenseFn); 2] = [("simd", bin_dense_simd), ("scalar", bin_dense_scalar)];
    let sparse_fns: [(&str, SparseFn); 2] =
        [("simd", bin_sparse_simd), ("scalar", bin_sparse_scalar)];

    let mut group = c.benchmark_group("bin");
    group.throughput(Throughput::Elements(total));
    for (name, spec) in specs {
        // Checked once, outside the timed loop: both tiers agree and every kept peak counted.
        let mut out = vec![0.0f32; spec.bins];
        let mut out2 = vec![0.0f32; spec.bins];
        let mut kept = 0usize;
        for (m, i) in mz.chunks(PEAKS).zip(intensity.chunks(PEAKS)) {
            bin_dense_simd(&spec, m, i, &mut out);
            bin_dense_scalar(&spec, m, i, &mut out2);
            assert_eq!(out, out2);
            kept += m.iter().filter(|&&x| (10.0..1000.0).contains(&x)).count();
            assert!(out.iter().any(|&v| v > 0.0));
        }
        assert!(kept > 0);

        for (tier, f) in dense_fns {
            let mut out = vec![0.0f32; spec.bins];
            group.bench_function(format!("dense/{name}/{tier}"), |b| {
                b.iter(|| {
                    for (m, i) in mz.chunks(PEAKS).zip(intensity.chunks(PEAKS)) {
                        f(&spec, black_box(m), black_box(i), &mut out);
                        black_box(&out);
                    }
                })
            });
        }
        for (tier, f) in sparse_fns {
            let mut index = Vec::with_capacity(PEAKS);
            let mut value = Vec::with_capacity(PEAKS);
            group.bench_function(format!("sparse/{name}/{tier}"), |b| {
                b.iter(|| {
                    for (m, i) in mz.chunks(PEAKS).zip(intensity.chunks(PEAKS)) {
                        index.clear();
                        value.clear();
                        f(&spec, black_box(m), black_box(i), &mut index, &mut value);
                        black_box((&index, &value));
                    }
                })
            });
        }
    }
    // The floor under dense binning: zeroing one 9,900-bin row per 128-peak spectrum.
    let mut row = vec![0.0f32; 9_900];
    group.bench_function("dense_row_memset_only", |b| {
        b.iter(|| {
            for _ in 0..SPECTRA {
                row.fill(0.0);
                black_box(&mut row);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
