//! Criterion benches for the peak kernels: unpad + validate + max-normalise of GeMS rows
//! (SIMD and portable scalar), top-k and each normalise mode. Inputs are seeded and built
//! outside the timed loop; throughput is in spectra.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use msms_kernels::{
    extend_intensity, extend_intensity_at, extend_mz, extend_mz_at, portable, top_k,
    unpad_validate, Normalize, Orientation, PeakBlock, ValidationRules,
};
use std::hint::black_box;

/// GeMS row width: 128 peak slots.
const SLOTS: usize = 128;
/// Spectra per batch (2 KiB each as f64: 2 MiB, about one decoded chunk).
const ROWS: usize = 1024;

/// splitmix64: a tiny seeded generator (no `rand` dependency for the kernels crate).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A batch of planar f64 GeMS rows, realistic peak counts: 15 % at the 128 cap, the rest
/// log-uniform in 1..128 (mostly few peaks); 2 % of rows get one defect (unsorted pair or
/// zero intensity). Returns the rows, precursors and the expected number accepted.
fn gems_rows(seed: u64) -> (Vec<f64>, Vec<f64>, usize) {
    let mut rng = Rng(seed);
    let mut data = vec![0.0f64; ROWS * 2 * SLOTS];
    let mut accepted = 0;
    for row in data.chunks_exact_mut(2 * SLOTS) {
        let n = if rng.unit() < 0.15 {
            SLOTS
        } else {
            (128f64.powf(rng.unit()) as usize).clamp(1, SLOTS - 1)
        };
        let (mz, intensity) = row.split_at_mut(SLOTS);
        let mut m = 50.0;
        for i in 0..n {
            m += 0.01 + rng.unit() * 8.0;
            mz[i] = m;
            intensity[i] = 1.0 + (rng.unit() * 1e4).floor();
        }
        if rng.unit() < 0.02 && n >= 2 {
            let i = (rng.next() % (n as u64 - 1)) as usize;
            if rng.next() % 2 == 0 {
                mz.swap(i, i + 1);
            } else {
                intensity[i + 1] = 0.0;
            }
        } else {
            accepted += 1;
        }
    }
    let precursors = (0..ROWS).map(|_| 100.0 + rng.unit() * 900.0).collect();
    (data, precursors, accepted)
}

type Validate =
    fn(PeakBlock<'_, f64>, f64, &ValidationRules) -> Result<usize, msms_kernels::RejectReason>;
type Extend = fn(PeakBlock<'_, f64>, usize, Normalize, &mut Vec<f32>);

/// Unpad, validate and copy out (m/z, normalised intensity) every row; the accepted count.
fn pipeline(
    data: &[f64],
    precursors: &[f64],
    validate: Validate,
    extend: Extend,
    mode: Normalize,
    mz: &mut Vec<f64>,
    intensity: &mut Vec<f32>,
) -> usize {
    let rules = ValidationRules::default();
    mz.clear();
    intensity.clear();
    let mut accepted = 0;
    for (row, &p) in data.chunks_exact(2 * SLOTS).zip(precursors) {
        let block = PeakBlock::new(row, Orientation::Planar);
        if let Ok(n) = validate(block, p, &rules) {
            extend_mz(block, n, mz);
            extend(block, n, mode, intensity);
            accepted += 1;
        }
    }
    accepted
}

fn bench_validate(c: &mut Criterion) {
    let (data, precursors, expected) = gems_rows(42);
    let (mut mz, mut intensity) = (
        Vec::with_capacity(ROWS * SLOTS),
        Vec::with_capacity(ROWS * SLOTS),
    );
    let variants: [(&str, Validate, Extend); 2] = [
        ("simd", unpad_validate, extend_intensity),
        (
            "scalar",
            portable::unpad_validate,
            portable::extend_intensity,
        ),
    ];
    let mut g = c.benchmark_group("unpad_validate_max_gems_f64");
    g.throughput(Throughput::Elements(ROWS as u64));
    for (name, validate, extend) in variants {
        let got = pipeline(
            &data,
            &precursors,
            validate,
            extend,
            Normalize::Max,
            &mut mz,
            &mut intensity,
        );
        assert_eq!(got, expected, "{name}");
        g.bench_function(name, |b| {
            b.iter(|| {
                pipeline(
                    black_box(&data),
                    &precursors,
                    validate,
                    extend,
                    Normalize::Max,
                    &mut mz,
                    &mut intensity,
                )
            })
        });
    }
    g.finish();

    // Each normalise mode on the validated rows (SIMD path only applies to max/sqrt).
    let mut g = c.benchmark_group("normalize_gems_f64");
    g.throughput(Throughput::Elements(ROWS as u64));
    let rules = ValidationRules::default();
    let valid: Vec<(usize, usize)> = data
        .chunks_exact(2 * SLOTS)
        .zip(&precursors)
        .enumerate()
        .filter_map(|(r, (row, &p))| {
            unpad_validate(PeakBlock::new(row, Orientation::Planar), p, &rules)
                .ok()
                .map(|n| (r, n))
        })
        .collect();
    assert_eq!(valid.len(), expected);
    let peaks: usize = valid.iter().map(|&(_, n)| n).sum();
    for mode in Normalize::ALL {
        let run = |out: &mut Vec<f32>| {
            out.clear();
            for &(r, n) in &valid {
                let row = &data[r * 2 * SLOTS..(r + 1) * 2 * SLOTS];
                extend_intensity(PeakBlock::new(row, Orientation::Planar), n, mode, out);
            }
            out.len()
        };
        assert_eq!(run(&mut intensity), peaks, "{mode}");
        g.bench_function(BenchmarkId::from_parameter(mode), |b| {
            b.iter(|| run(black_box(&mut intensity)))
        });
    }
    g.finish();

    // Top-k (k = 64) then copy-out of the kept peaks, on the validated rows.
    let mut g = c.benchmark_group("top_k_gems_f64");
    g.throughput(Throughput::Elements(valid.len() as u64));
    let kept: usize = valid.iter().map(|&(_, n)| n.min(64)).sum();
    let mut idx = Vec::with_capacity(SLOTS);
    type TopK = fn(PeakBlock<'_, f64>, usize, usize, &mut Vec<u32>);
    let mut run = |mz: &mut Vec<f64>, out: &mut Vec<f32>, with_copy: bool, select: TopK| {
        mz.clear();
        out.clear();
        let mut total = 0;
        for &(r, n) in &valid {
            let block = PeakBlock::new(
                &data[r * 2 * SLOTS..(r + 1) * 2 * SLOTS],
                Orientation::Planar,
            );
            select(block, n, 64, &mut idx);
            total += idx.len();
            if with_copy {
                extend_mz_at(block, &idx, mz);
                extend_intensity_at(block, &idx, Normalize::Max, out);
            }
        }
        total
    };
    assert_eq!(run(&mut mz, &mut intensity, true, portable::top_k), kept);
    let scalar_mz = mz.clone();
    assert_eq!(run(&mut mz, &mut intensity, true, top_k), kept);
    assert_eq!(intensity.len(), kept);
    assert_eq!(mz, scalar_mz);
    g.bench_function("k64/simd", |b| {
        b.iter(|| run(&mut mz, &mut intensity, false, top_k))
    });
    g.bench_function("k64/scalar", |b| {
        b.iter(|| run(&mut mz, &mut intensity, false, portable::top_k))
    });
    g.bench_function("k64_extend_max", |b| {
        b.iter(|| run(&mut mz, &mut intensity, true, top_k))
    });
    g.finish();
}

criterion_group!(benches, bench_validate);
criterion_main!(benches);
