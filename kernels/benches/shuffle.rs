//! Criterion benchmarks for the HDF5 unshuffle and the chunk gather.
//!
//! `unshuffle/*`: 2 MiB shuffled buffers, element sizes 2, 4 and 8, the dispatching
//! (`simd`) kernel against the portable `scalar` one. `gather/*`: one GeMS-shaped dataset
//! block (1024 rows of (2, 128) `f64`) assembled from row chunks (1024, 2, 128) or from
//! h5py-style (4096, 1, 1) per-peak-slot chunks. Inputs are seeded and built outside the
//! timed loop; every result is checked once against the expected output before timing.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use msms_kernels::{gather_chunk, shuffle, unshuffle, unshuffle_scalar};
use std::hint::black_box;

const LEN: usize = 2 << 20;

fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn bench_unshuffle(c: &mut Criterion) {
    let mut g = c.benchmark_group("unshuffle");
    g.throughput(Throughput::Bytes(LEN as u64));
    let plain = bytes(LEN, 0x5eed);
    for elem in [2usize, 4, 8] {
        let mut shuffled = vec![0u8; LEN];
        shuffle(&plain, elem, &mut shuffled);
        let mut out = vec![0u8; LEN];
        type Kernel = fn(&[u8], usize, &mut [u8]);
        let kernels: [(&str, Kernel); 2] = [("simd", unshuffle), ("scalar", unshuffle_scalar)];
        for (name, f) in kernels {
            f(&shuffled, elem, &mut out);
            assert!(out == plain, "{name} unshuffle, elem {elem}");
            g.bench_with_input(BenchmarkId::new(name, elem), &elem, |b, &e| {
                b.iter(|| f(black_box(&shuffled), e, black_box(&mut out)))
            });
        }
    }
    g.finish();
}

fn bench_gather(c: &mut Criterion) {
    const N: usize = 1024;
    let dims = [N, 2, 128];
    let row_len = dims[1] * dims[2];
    let data: Vec<f64> = (0..N * row_len).map(|i| i as f64).collect();
    // Row chunks: the whole block is one (1024, 2, 128) chunk.
    let row_chunk = data.clone();
    // h5py-style slot chunks (4096, 1, 1): one per (j, k), covering rows 0..4096 of a
    // 1024-row dataset (an edge chunk clipped to the dims).
    let slot_chunks: Vec<(Vec<f64>, [usize; 3])> = (0..dims[1])
        .flat_map(|j| (0..dims[2]).map(move |k| (j, k)))
        .map(|(j, k)| {
            let mut v = vec![0.0; 4096];
            for (r, x) in v.iter_mut().take(N).enumerate() {
                *x = data[r * row_len + j * dims[2] + k];
            }
            (v, [0, j, k])
        })
        .collect();

    let mut g = c.benchmark_group("gather");
    g.throughput(Throughput::Bytes((N * row_len * 8) as u64));
    let mut dst = vec![f64::NAN; N * row_len];

    let rows = |dst: &mut [f64]| gather_chunk(&row_chunk, [N, 2, 128], [0, 0, 0], dims, dst, 0, N);
    assert_eq!(rows(&mut dst), N * row_len);
    assert!(dst == data, "row-chunk gather");
    g.bench_function("chunk_1024x2x128", |b| b.iter(|| rows(black_box(&mut dst))));

    dst.fill(f64::NAN);
    let slots = |dst: &mut [f64]| {
        slot_chunks
            .iter()
            .map(|(v, off)| gather_chunk(v, [4096, 1, 1], *off, dims, dst, 0, N))
            .sum::<usize>()
    };
    assert_eq!(slots(&mut dst), N * row_len);
    assert!(dst == data, "slot-chunk gather");
    g.bench_function("chunk_4096x1x1", |b| b.iter(|| slots(black_box(&mut dst))));
    g.finish();
}

criterion_group!(benches, bench_unshuffle, bench_gather);
criterion_main!(benches);
