//! The HDF5 shuffle filter's inverse and the gather of per-peak-slot chunks into rows.
//!
//! # Shuffle
//!
//! HDF5's shuffle filter (`H5Zshuffle.c`) stores a buffer of `n = len / elem_size` elements
//! as `elem_size` byte planes: byte 0 of every element, then byte 1 of every element, and
//! so on. The `len % elem_size` trailing bytes that do not form a whole element are copied
//! unchanged after the planes. A buffer with fewer than two whole elements, or element size
//! 1, is left as it is (HDF5 skips the filter then; the rule above gives the same bytes).
//!
//! [`unshuffle`] undoes the filter. Element sizes 2, 4 and 8 run a `wide` byte transpose
//! (16 elements per step; SSE2 on the default x86-64 build) when the target has 128-bit
//! SIMD compiled in; other sizes, and targets without it, use [`unshuffle_scalar`], the
//! portable fallback. [`shuffle`] is the forward filter, for tests and the synthetic writer.
//!
//! # Gather
//!
//! [`gather_chunk`] copies one decoded chunk of a 3-D row-major dataset (`[n, d1, d2]`, e.g.
//! GeMS `spectrum` `(N, 2, 128)`) into a destination holding a range of whole rows. Row
//! chunks `(c, 2, 128)` become a single copy; h5py's per-peak-slot chunks `(c, 1, 1)` become
//! a strided scatter; `(c, 1, k)` chunks copy runs of `k`. Edge chunks, which HDF5 stores at
//! full chunk size, are clipped to the dataset and to the destination's rows.

use wide::u8x16;

/// Undo HDF5's shuffle filter: `src` holds byte 0 of every element, then byte 1, …; `dst`
/// receives the elements in order.
///
/// The `src.len() % elem_size` trailing bytes are copied unchanged, as HDF5 does. Element
/// size 1 (and 0, which HDF5 refuses) is a plain copy. Element sizes 2, 4 and 8 use SIMD
/// where compiled in (see the module docs).
///
/// # Panics
///
/// If `dst.len() != src.len()`.
pub fn unshuffle(src: &[u8], elem_size: usize, dst: &mut [u8]) {
    assert_eq!(
        dst.len(),
        src.len(),
        "unshuffle: dst and src lengths differ"
    );
    if elem_size <= 1 || src.len() < 2 * elem_size {
        dst.copy_from_slice(src);
        return;
    }
    if SIMD {
        match elem_size {
            2 => return unshuffle_simd::<2>(src, dst),
            4 => return unshuffle_simd::<4>(src, dst),
            8 => return unshuffle_simd::<8>(src, dst),
            _ => {}
        }
    }
    unshuffle_scalar(src, elem_size, dst);
}

/// The portable scalar [`unshuffle`] (same result, no SIMD). Public so that benches and
/// callers can compare; prefer [`unshuffle`].
///
/// # Panics
///
/// If `dst.len() != src.len()`.
pub fn unshuffle_scalar(src: &[u8], elem_size: usize, dst: &mut [u8]) {
    assert_eq!(
        dst.len(),
        src.len(),
        "unshuffle: dst and src lengths differ"
    );
    if elem_size <= 1 || src.len() < 2 * elem_size {
        dst.copy_from_slice(src);
        return;
    }
    match elem_size {
        2 => unshuffle_fixed::<2>(src, dst),
        4 => unshuffle_fixed::<4>(src, dst),
        8 => unshuffle_fixed::<8>(src, dst),
        e => unshuffle_any(src, e, dst),
    }
}

/// HDF5's shuffle filter (the forward direction of [`unshuffle`]): element `i`'s byte `k`
/// goes to `dst[k * n + i]`, with `n = src.len() / elem_size`; trailing bytes are copied
/// unchanged. Element size 0 or 1 is a copy.
///
/// # Panics
///
/// If `dst.len() != src.len()`.
pub fn shuffle(src: &[u8], elem_size: usize, dst: &mut [u8]) {
    assert_eq!(dst.len(), src.len(), "shuffle: dst and src lengths differ");
    if elem_size <= 1 || src.len() < 2 * elem_size {
        dst.copy_from_slice(src);
        return;
    }
    let n = src.len() / elem_size;
    let body = n * elem_size;
    for (k, plane) in dst[..body].chunks_exact_mut(n).enumerate() {
        for (d, elem) in plane.iter_mut().zip(src[..body].chunks_exact(elem_size)) {
            *d = elem[k];
        }
    }
    dst[body..].copy_from_slice(&src[body..]);
}

/// Whether [`unshuffle`] uses the `wide` path: only when `wide` compiles to real 128-bit
/// instructions, since its array fallback is slower than [`unshuffle_scalar`].
const SIMD: bool = cfg!(any(
    target_feature = "sse2",
    target_feature = "simd128",
    all(target_feature = "neon", target_arch = "aarch64")
));

/// Scalar unshuffle for a compile-time element size `E` (whole buffer, `len >= 2 * E`).
fn unshuffle_fixed<const E: usize>(src: &[u8], dst: &mut [u8]) {
    let n = src.len() / E;
    unshuffle_fixed_from::<E>(src, n, 0, dst);
    dst[n * E..].copy_from_slice(&src[n * E..]);
}

/// Scalar unshuffle of elements `from..n` (of `n` in the buffer) for element size `E`.
#[inline]
fn unshuffle_fixed_from<const E: usize>(src: &[u8], n: usize, from: usize, dst: &mut [u8]) {
    let planes: [&[u8]; E] = core::array::from_fn(|k| &src[k * n + from..(k + 1) * n]);
    for (i, out) in dst[from * E..n * E].chunks_exact_mut(E).enumerate() {
        let mut elem = [0u8; E];
        for (b, plane) in elem.iter_mut().zip(planes) {
            *b = plane[i];
        }
        out.copy_from_slice(&elem);
    }
}

/// Scalar unshuffle for any element size, one byte plane at a time (as HDF5 does).
fn unshuffle_any(src: &[u8], e: usize, dst: &mut [u8]) {
    let n = src.len() / e;
    let body = n * e;
    for (k, plane) in src[..body].chunks_exact(n).enumerate() {
        for (out, &b) in dst[..body].chunks_exact_mut(e).zip(plane) {
            out[k] = b;
        }
    }
    dst[body..].copy_from_slice(&src[body..]);
}

#[inline(always)]
fn load(s: &[u8]) -> u8x16 {
    let a: [u8; 16] = s[..16].try_into().expect("16 bytes");
    u8x16::new(a)
}

#[inline(always)]
fn store(d: &mut [u8], v: u8x16) {
    d[..16].copy_from_slice(&v.to_array());
}

#[inline(always)]
fn zip(a: u8x16, b: u8x16) -> (u8x16, u8x16) {
    (u8x16::unpack_low(a, b), u8x16::unpack_high(a, b))
}

/// SIMD unshuffle for `E` in {2, 4, 8}: 16 elements per step, read as one 16-byte vector
/// from each of the `E` planes and transposed with `log2(E)` rounds of byte interleaves
/// (plane `k` zipped with plane `k + E/2`, twice or three times, restores byte order).
/// The last `n % 16` elements and the trailing bytes go through the scalar path.
fn unshuffle_simd<const E: usize>(src: &[u8], dst: &mut [u8]) {
    let n = src.len() / E;
    let steps = n / 16;
    let planes: [&[u8]; E] = core::array::from_fn(|k| &src[k * n..(k + 1) * n]);
    for (s, out) in dst[..steps * 16 * E].chunks_exact_mut(16 * E).enumerate() {
        let at = s * 16;
        match E {
            2 => {
                let (a, b) = zip(load(&planes[0][at..]), load(&planes[1][at..]));
                store(&mut out[0..], a);
                store(&mut out[16..], b);
            }
            4 => {
                let p: [u8x16; 4] = core::array::from_fn(|k| load(&planes[k][at..]));
                let (a0, a1) = zip(p[0], p[2]);
                let (b0, b1) = zip(p[1], p[3]);
                let (c0, c1) = zip(a0, b0);
                let (c2, c3) = zip(a1, b1);
                for (j, v) in [c0, c1, c2, c3].into_iter().enumerate() {
                    store(&mut out[16 * j..], v);
                }
            }
            8 => {
                let p: [u8x16; 8] = core::array::from_fn(|k| load(&planes[k][at..]));
                // Round 1: bytes (k, k + 4).
                let (a0, a1) = zip(p[0], p[4]);
                let (b0, b1) = zip(p[1], p[5]);
                let (c0, c1) = zip(p[2], p[6]);
                let (d0, d1) = zip(p[3], p[7]);
                // Round 2: (0,4)+(2,6) and (1,5)+(3,7) → bytes (0,2,4,6) and (1,3,5,7).
                let (e0, e1) = zip(a0, c0);
                let (e2, e3) = zip(a1, c1);
                let (f0, f1) = zip(b0, d0);
                let (f2, f3) = zip(b1, d1);
                // Round 3: interleave evens and odds → bytes 0..8 of two elements each.
                let (g0, g1) = zip(e0, f0);
                let (g2, g3) = zip(e1, f1);
                let (g4, g5) = zip(e2, f2);
                let (g6, g7) = zip(e3, f3);
                for (j, v) in [g0, g1, g2, g3, g4, g5, g6, g7].into_iter().enumerate() {
                    store(&mut out[16 * j..], v);
                }
            }
            _ => unreachable!("unshuffle_simd: element size {E}"),
        }
    }
    unshuffle_fixed_from::<E>(src, n, steps * 16, dst);
    dst[n * E..].copy_from_slice(&src[n * E..]);
}

/// Copy one decoded chunk of a 3-D row-major dataset into a destination holding whole rows.
///
/// The dataset has dims `[n, d1, d2]` and element type `T`; `dst` holds rows
/// `row_start..row_start + rows` of it, row-major (`rows * d1 * d2` elements). The chunk has
/// shape `chunk`, its data `chunk_data` is row-major at full chunk size (as HDF5 stores edge
/// chunks), and it starts at dataset coordinates `offset`. The part of the chunk inside both
/// the dataset and the destination's rows is copied; the rest is ignored. Returns the number
/// of elements copied (0 when they do not overlap).
///
/// Covers row chunks `(c, d1, d2)` (one copy), h5py's per-peak-slot chunks `(c, 1, 1)` (a
/// strided scatter), `(c, 1, k)`, and partial edge chunks.
///
/// Never panics when `chunk_data.len() >= chunk` product and `dst.len() >= rows * d1 * d2`
/// (checked with `debug_assert!`); shorter slices panic on indexing in release builds.
pub fn gather_chunk<T: Copy>(
    chunk_data: &[T],
    chunk: [usize; 3],
    offset: [usize; 3],
    dims: [usize; 3],
    dst: &mut [T],
    row_start: usize,
    rows: usize,
) -> usize {
    let [c0, c1, c2] = chunk;
    let [d0, d1, d2] = dims;
    let row_len = d1 * d2;
    debug_assert!(
        chunk_data.len() >= c0 * c1 * c2,
        "gather_chunk: chunk data {} < chunk {chunk:?}",
        chunk_data.len()
    );
    debug_assert!(
        dst.len() >= rows * row_len,
        "gather_chunk: dst {} < {rows} rows of {dims:?}",
        dst.len()
    );

    // Intersection, in dataset coordinates.
    let r_lo = offset[0].max(row_start);
    let r_hi = offset[0]
        .saturating_add(c0)
        .min(d0)
        .min(row_start.saturating_add(rows));
    let j_lo = offset[1];
    let j_hi = offset[1].saturating_add(c1).min(d1);
    let k_lo = offset[2];
    let k_hi = offset[2].saturating_add(c2).min(d2);
    if r_lo >= r_hi || j_lo >= j_hi || k_lo >= k_hi {
        return 0;
    }
    let (nr, nj, nk) = (r_hi - r_lo, j_hi - j_lo, k_hi - k_lo);
    let chunk_row = c1 * c2;
    let src0 = (r_lo - offset[0]) * chunk_row;
    let dst0 = (r_lo - row_start) * row_len + j_lo * d2 + k_lo;

    if nj == d1 && nk == d2 && c1 == d1 && c2 == d2 {
        // Whole rows, contiguous on both sides.
        let len = nr * row_len;
        dst[dst0..dst0 + len].copy_from_slice(&chunk_data[src0..src0 + len]);
    } else if nj == 1 && nk == 1 {
        // One slot per row (h5py's (c, 1, 1) chunks, or a clipped corner): strided scatter.
        let src = &chunk_data[src0..][..(nr - 1) * chunk_row + 1];
        let dst = &mut dst[dst0..][..(nr - 1) * row_len + 1];
        if chunk_row == 1 {
            for (d, s) in dst.iter_mut().step_by(row_len).zip(src) {
                *d = *s;
            }
        } else {
            for (d, s) in dst
                .iter_mut()
                .step_by(row_len)
                .zip(src.iter().step_by(chunk_row))
            {
                *d = *s;
            }
        }
    } else {
        for r in 0..nr {
            for j in 0..nj {
                let s = src0 + r * chunk_row + j * c2;
                let d = dst0 + r * row_len + j * d2;
                dst[d..d + nk].copy_from_slice(&chunk_data[s..s + nk]);
            }
        }
    }
    nr * nj * nk
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The naive oracle: byte `k` of element `i` is at `src[k * n + i]`; the tail is copied.
    fn naive_unshuffle(src: &[u8], e: usize) -> Vec<u8> {
        let n = src.len() / e.max(1);
        (0..src.len())
            .map(|i| {
                if e > 1 && i < n * e {
                    src[(i % e) * n + i / e]
                } else {
                    src[i]
                }
            })
            .collect()
    }

    /// The naive gather oracle: every chunk element, one at a time.
    fn naive_gather(
        chunk_data: &[u64],
        chunk: [usize; 3],
        offset: [usize; 3],
        dims: [usize; 3],
        dst: &mut [u64],
        row_start: usize,
        rows: usize,
    ) -> usize {
        let mut copied = 0;
        for a in 0..chunk[0] {
            for b in 0..chunk[1] {
                for c in 0..chunk[2] {
                    let (r, j, k) = (offset[0] + a, offset[1] + b, offset[2] + c);
                    if r < dims[0]
                        && j < dims[1]
                        && k < dims[2]
                        && r >= row_start
                        && r < row_start + rows
                    {
                        dst[((r - row_start) * dims[1] + j) * dims[2] + k] =
                            chunk_data[(a * chunk[1] + b) * chunk[2] + c];
                        copied += 1;
                    }
                }
            }
        }
        copied
    }

    fn check_unshuffle(data: &[u8], e: usize) -> Result<(), TestCaseError> {
        let expected = naive_unshuffle(data, e);
        let mut simd = vec![0xAA; data.len()];
        unshuffle(data, e, &mut simd);
        prop_assert_eq!(&simd, &expected, "unshuffle e={} len={}", e, data.len());
        let mut scalar = vec![0x55; data.len()];
        unshuffle_scalar(data, e, &mut scalar);
        prop_assert_eq!(
            &scalar,
            &expected,
            "unshuffle_scalar e={} len={}",
            e,
            data.len()
        );
        // Round trip: shuffle(unshuffle(x)) == x and unshuffle(shuffle(x)) == x.
        let mut back = vec![0; data.len()];
        shuffle(&simd, e, &mut back);
        prop_assert_eq!(&back, data, "shuffle∘unshuffle e={} len={}", e, data.len());
        let mut fwd = vec![0; data.len()];
        shuffle(data, e, &mut fwd);
        unshuffle(&fwd, e, &mut back);
        prop_assert_eq!(&back, data, "unshuffle∘shuffle e={} len={}", e, data.len());
        Ok(())
    }

    fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn unshuffle_seeded_lengths() {
        for e in [1usize, 2, 3, 4, 5, 8, 16] {
            let mut lens = vec![
                0,
                1,
                e.saturating_sub(1),
                e,
                e + 1,
                2 * e - 1,
                2 * e,
                2 * e + 1,
            ];
            lens.extend([15, 16, 17, 31, 32, 33, 1000]);
            // Every SIMD step boundary ± tail, plus a buffer over 1 MiB.
            lens.extend((0..=3).flat_map(|s| (0..e + 2).map(move |t| s * 16 * e + t)));
            lens.push((1 << 20) + 3);
            for len in lens {
                check_unshuffle(&bytes(len, len as u64), e).unwrap();
            }
        }
    }

    #[test]
    fn shuffle_matches_hdf5_example() {
        // H5Zshuffle.c: "0123012301230123" -> "0000111122223333", tail copied.
        let src = [0u8, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 9, 8];
        let mut dst = [0u8; 14];
        shuffle(&src, 4, &mut dst);
        assert_eq!(dst, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 9, 8]);
        let mut back = [0u8; 14];
        unshuffle(&dst, 4, &mut back);
        assert_eq!(back, src);
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn unshuffle_rejects_length_mismatch() {
        unshuffle(&[0; 8], 4, &mut [0; 7]);
    }

    #[test]
    fn gather_row_and_slot_chunks() {
        let dims = [5, 2, 3];
        let data: Vec<u64> = (0..30).collect();
        // Row chunks (2, 2, 3): the edge chunk at row 4 holds one real row.
        let mut dst = vec![u64::MAX; 30];
        let mut copied = 0;
        for r in (0..5).step_by(2) {
            let mut chunk = vec![0u64; 12];
            let real = (5 - r).min(2) * 6;
            chunk[..real].copy_from_slice(&data[r * 6..r * 6 + real]);
            copied += gather_chunk(&chunk, [2, 2, 3], [r, 0, 0], dims, &mut dst, 0, 5);
        }
        assert_eq!((copied, &dst), (30, &data));
        // (3, 1, 1) chunks into rows 1..4 only.
        let mut dst = vec![u64::MAX; 18];
        let mut copied = 0;
        for r in (0..5).step_by(3) {
            for j in 0..2 {
                for k in 0..3 {
                    let chunk: Vec<u64> = (r..r + 3)
                        .map(|rr| if rr < 5 { data[rr * 6 + j * 3 + k] } else { 0 })
                        .collect();
                    copied += gather_chunk(&chunk, [3, 1, 1], [r, j, k], dims, &mut dst, 1, 3);
                }
            }
        }
        assert_eq!((copied, &dst[..]), (18, &data[6..24]));
    }

    fn shape_case() -> impl Strategy<Value = ([usize; 3], [usize; 3], [usize; 3], usize, usize, u64)>
    {
        (1usize..40, 1usize..4, 1usize..10)
            .prop_flat_map(|(d0, d1, d2)| {
                let chunk = prop_oneof![
                    (1usize..=d0 + 3, Just(d1), Just(d2)).boxed(),
                    (1usize..=d0 + 3, Just(1usize), Just(1usize)).boxed(),
                    (1usize..=d0 + 3, Just(1usize), 1usize..=d2 + 2).boxed(),
                    (1usize..=d0 + 3, 1usize..=d1 + 1, 1usize..=d2 + 2).boxed(),
                ];
                (
                    Just([d0, d1, d2]),
                    chunk,
                    0usize..=d0,
                    0usize..=d0 + 1,
                    any::<u64>(),
                )
            })
            .prop_flat_map(|(dims, (c0, c1, c2), row_start, rows, seed)| {
                // Offsets on the chunk grid (as HDF5 has them), plus a few just past the dims.
                (
                    Just(dims),
                    Just([c0, c1, c2]),
                    (
                        0..=dims[0] / c0 + 1,
                        0..=dims[1] / c1 + 1,
                        0..=dims[2] / c2 + 1,
                    ),
                    Just(row_start),
                    Just(rows),
                    Just(seed),
                )
            })
            .prop_map(|(dims, chunk, (a, b, c), row_start, rows, seed)| {
                (
                    dims,
                    chunk,
                    [a * chunk[0], b * chunk[1], c * chunk[2]],
                    row_start,
                    rows,
                    seed,
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn unshuffle_matches_oracle(e in prop::sample::select(vec![1usize, 2, 3, 4, 6, 8, 16]),
                                    data in prop::collection::vec(any::<u8>(), 0..700)) {
            check_unshuffle(&data, e)?;
        }

        #[test]
        fn gather_matches_oracle((dims, chunk, offset, row_start, rows, seed) in shape_case()) {
            let len = chunk[0] * chunk[1] * chunk[2];
            let data: Vec<u64> = (0..len as u64).map(|i| seed ^ (i + 1)).collect();
            let dst_len = rows * dims[1] * dims[2];
            let mut expected = vec![u64::MAX; dst_len];
            let want = naive_gather(&data, chunk, offset, dims, &mut expected, row_start, rows);
            let mut got = vec![u64::MAX; dst_len];
            let copied = gather_chunk(&data, chunk, offset, dims, &mut got, row_start, rows);
            prop_assert_eq!(copied, want);
            prop_assert_eq!(got, expected);
            // Same through f32, as the decoder uses it.
            let data32: Vec<f32> = data.iter().map(|&v| v as f32).collect();
            let mut got32 = vec![f32::NAN; dst_len];
            prop_assert_eq!(gather_chunk(&data32, chunk, offset, dims, &mut got32, row_start, rows), want);
        }
    }
}
