//! Top-k peaks by intensity, kept in m/z order.
//!
//! Two tiers with the same result:
//!
//! - [`top_k`] (`wide`): the intensities of up to 128 peaks are gathered into a stack array,
//!   the `k`-th largest found by one `O(n)` selection on plain `f64`s, then one vector pass
//!   (four compares per instruction) counts the peaks above it and a second emits the kept
//!   indices straight in ascending order: no index sort, no per-peak keys. It handles
//!   intensities that are neither NaN nor zero (every validated peak); other input goes to
//!   the scalar tier, whose `total_cmp` order distinguishes `-0.0`, `0.0` and NaNs.
//! - [`scalar::top_k`] (also `portable::top_k`): a `u128` key per peak (intensity rank,
//!   index), `select_nth_unstable`, then a sort of the `k` kept indices.

use crate::block::{Columns, PeakBlock, PeakValue};
use std::cmp::Ordering;
use wide::f64x4;

/// Select the `k` most intense of the first `n` peaks: clears `out`, then writes their slot
/// indices in ascending order (= m/z order, since valid peaks ascend). `k >= n` keeps all,
/// `0..n`; `k == 0` keeps none.
///
/// Ties are broken deterministically: higher intensity first, then lower index (= lower
/// m/z). Intensities are compared as `f64` by [`f64::total_cmp`], which is numeric order for
/// validated (finite, positive) peaks and still a total order otherwise. numpy's
/// `argsort`/`argpartition` and matchms's `reduce_to_number_of_peaks` leave the choice
/// among equal intensities at the cut unspecified, so they agree with this only up to ties.
///
/// No allocation once `out` has capacity `n`.
///
/// # Panics
///
/// If `n > block.slots()`.
pub fn top_k<T: PeakValue>(block: PeakBlock<'_, T>, n: usize, k: usize, out: &mut Vec<u32>) {
    if !trivial(block, n, k, out) && n <= STACK_KEYS {
        let mut vals = [0f64; STACK_KEYS];
        let vals = &mut vals[..n];
        match block.columns() {
            Columns::Planar { intensity, .. } => {
                for (v, x) in vals.iter_mut().zip(intensity) {
                    *v = x.to_f64();
                }
            }
            Columns::Interleaved { pairs } => {
                for (v, pair) in vals.iter_mut().zip(pairs.chunks_exact(2)) {
                    *v = pair[1].to_f64();
                }
            }
        }
        if select_wide(vals, k, out) {
            return;
        }
    }
    scalar::top_k(block, n, k, out);
}

/// Handle `k >= n` and `k == 0` (true when done); panics when `n > block.slots()`.
fn trivial<T: PeakValue>(block: PeakBlock<'_, T>, n: usize, k: usize, out: &mut Vec<u32>) -> bool {
    out.clear();
    assert!(
        n <= block.slots(),
        "top_k over {n} peaks of a block with {} slots",
        block.slots()
    );
    if k >= n {
        out.extend(0..n as u32);
        return true;
    }
    k == 0
}

/// The `wide` tier on `vals` (`1 <= k < vals.len() <= STACK_KEYS`): false, with `out`
/// untouched, when some value is NaN or zero.
fn select_wide(vals: &[f64], k: usize, out: &mut Vec<u32>) -> bool {
    let n = vals.len();
    let zero = f64x4::splat(0.0);
    let mut odd = false;
    let mut v4 = vals.chunks_exact(4);
    for v in &mut v4 {
        let v = f64x4::from([v[0], v[1], v[2], v[3]]);
        // NaN != NaN; 0.0 == -0.0 == 0.0.
        odd |= (v.simd_ne(v) | v.simd_eq(zero)).any();
    }
    odd |= v4.remainder().iter().any(|&v| v.is_nan() || v == 0.0);
    if odd {
        return false;
    }
    // Without NaN and signed zeros, numeric order is `total_cmp` order, which is the signed
    // integer order of `ordered_bits`: select on integers, the cheapest comparison.
    let mut keys = [0i64; STACK_KEYS];
    let keys = &mut keys[..n];
    for (key, &v) in keys.iter_mut().zip(vals) {
        *key = ordered_bits(v);
    }
    let (_, &mut t, _) = keys.select_nth_unstable(n - k);
    let t = f64::from_bits(ordered_bits_inverse(t) as u64);
    let vt = f64x4::splat(t);
    let mut v4 = vals.chunks_exact(4);
    let mut above = 0usize;
    for v in &mut v4 {
        let v = f64x4::from([v[0], v[1], v[2], v[3]]);
        above += v.simd_gt(vt).to_bitmask().count_ones() as usize;
    }
    above += v4.remainder().iter().filter(|&&v| v > t).count();
    // Peaks equal to the threshold fill the remaining places, lowest index first.
    let mut ties = k - above;
    for (c, v) in vals.chunks(4).enumerate() {
        let base = (c * 4) as u32;
        let (gt, eq) = if v.len() == 4 {
            let v = f64x4::from([v[0], v[1], v[2], v[3]]);
            (v.simd_gt(vt).to_bitmask(), v.simd_eq(vt).to_bitmask())
        } else {
            let mask = |f: &dyn Fn(f64) -> bool| {
                v.iter()
                    .enumerate()
                    .fold(0u32, |m, (l, &x)| m | (u32::from(f(x)) << l))
            };
            (mask(&|x| x > t), mask(&|x| x == t))
        };
        let mut keep = gt;
        let mut eq = eq;
        while eq != 0 && ties > 0 {
            keep |= eq & eq.wrapping_neg();
            eq &= eq - 1;
            ties -= 1;
        }
        while keep != 0 {
            out.push(base + keep.trailing_zeros());
            keep &= keep - 1;
        }
    }
    debug_assert_eq!(out.len(), k);
    true
}

/// `f64::total_cmp`'s transform: signed integer order of the result is `total_cmp` order.
#[inline(always)]
fn ordered_bits(v: f64) -> i64 {
    let bits = v.to_bits() as i64;
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

/// Inverse of [`ordered_bits`] (the transform is an involution).
#[inline(always)]
fn ordered_bits_inverse(key: i64) -> i64 {
    key ^ ((((key >> 63) as u64) >> 1) as i64)
}

/// Up to this many peaks (GeMS: 128), sort keys live in a stack array.
const STACK_KEYS: usize = 128;

/// The portable scalar tier.
pub mod scalar {
    use super::*;

    /// [`top_k`](super::top_k) by `u128` keys and a sort of the kept indices.
    pub fn top_k<T: PeakValue>(block: PeakBlock<'_, T>, n: usize, k: usize, out: &mut Vec<u32>) {
        if trivial(block, n, k, out) {
            return;
        }
        out.extend(0..n as u32);
        match block.columns() {
            Columns::Planar { intensity, .. } => select(out, k, |i| intensity[i].to_f64()),
            Columns::Interleaved { pairs } => select(out, k, |i| pairs[2 * i + 1].to_f64()),
        }
    }
}

/// Keep the `k` (`1 <= k < out.len()`) best of the indices `0..out.len()` in `out`,
/// ascending.
#[inline]
fn select(out: &mut Vec<u32>, k: usize, intensity: impl Fn(usize) -> f64) {
    let n = out.len();
    if n <= STACK_KEYS {
        // One integer key per peak: the natural order of `key` is the selection order.
        let mut keys = [0u128; STACK_KEYS];
        let keys = &mut keys[..n];
        for (i, key) in keys.iter_mut().enumerate() {
            *key = rank_key(intensity(i), i);
        }
        keys.select_nth_unstable(k - 1);
        out.clear();
        out.extend(keys[..k].iter().map(|&key| key as u32));
    } else {
        let first = |a: &u32, b: &u32| -> Ordering {
            intensity(*b as usize)
                .total_cmp(&intensity(*a as usize))
                .then(a.cmp(b))
        };
        out.select_nth_unstable_by(k - 1, first);
        out.truncate(k);
    }
    out.sort_unstable();
}

/// A `u128` whose ascending order is: intensity descending by [`f64::total_cmp`], then
/// index ascending. High half: the complement of the intensity's total-order bits (the
/// `total_cmp` transform, then the sign bit flipped to order as unsigned); low half: `i`.
#[inline(always)]
fn rank_key(v: f64, i: usize) -> u128 {
    let ordered = ordered_bits(v) as u64 ^ (1 << 63);
    (u128::from(!ordered) << 64) | i as u128
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle;
    use crate::testutil::for_each_layout;
    use crate::Orientation;

    fn run(peaks: &[(f64, f64)], n: usize, k: usize) -> Vec<u32> {
        let mut first: Option<Vec<u32>> = None;
        let mut check = |block: PeakBlock<'_, _>, o: Orientation| {
            let mut out = vec![99];
            top_k(block, n, k, &mut out);
            assert_eq!(out, oracle::top_k(block, n, k), "{o:?}");
            let mut scalar_out = vec![99];
            scalar::top_k(block, n, k, &mut scalar_out);
            assert_eq!(scalar_out, out, "scalar {o:?}");
            match &first {
                None => first = Some(out),
                Some(f) => assert_eq!(&out, f, "{o:?}"),
            }
        };
        for_each_layout(peaks, |d: &[f64], o| check(PeakBlock::new(d, o), o));
        for_each_layout(peaks, |d: &[f32], o| {
            let block = PeakBlock::new(d, o);
            let mut out = vec![99];
            top_k(block, n, k, &mut out);
            assert_eq!(out, oracle::top_k(block, n, k), "f32 {o:?}");
        });
        first.unwrap()
    }

    #[test]
    fn keeps_most_intense_in_mz_order() {
        let peaks = [(1.0, 5.0), (2.0, 1.0), (3.0, 9.0), (4.0, 7.0), (5.0, 2.0)];
        assert_eq!(run(&peaks, 5, 2), [2, 3]);
        assert_eq!(run(&peaks, 5, 3), [0, 2, 3]);
        assert_eq!(run(&peaks, 5, 1), [2]);
        assert_eq!(run(&peaks, 4, 3), [0, 2, 3]);
    }

    #[test]
    fn k_at_least_n_keeps_all_and_zero_keeps_none() {
        let peaks = [(1.0, 5.0), (2.0, 1.0), (3.0, 9.0)];
        assert_eq!(run(&peaks, 3, 3), [0, 1, 2]);
        assert_eq!(run(&peaks, 3, 100), [0, 1, 2]);
        assert_eq!(run(&peaks, 2, 2), [0, 1]);
        assert_eq!(run(&peaks, 3, 0), Vec::<u32>::new());
        assert_eq!(run(&peaks, 0, 0), Vec::<u32>::new());
        assert_eq!(run(&peaks, 0, 5), Vec::<u32>::new());
    }

    #[test]
    fn ties_prefer_lower_mz() {
        let equal: Vec<(f64, f64)> = (0..10).map(|i| (100.0 + f64::from(i), 3.0)).collect();
        assert_eq!(run(&equal, 10, 4), [0, 1, 2, 3]);
        let peaks = [(1.0, 2.0), (2.0, 5.0), (3.0, 2.0), (4.0, 5.0), (5.0, 2.0)];
        assert_eq!(run(&peaks, 5, 3), [0, 1, 3]);
        assert_eq!(run(&peaks, 5, 4), [0, 1, 2, 3]);
    }

    #[test]
    fn rank_key_follows_total_cmp() {
        let vals = [
            f64::NEG_INFINITY,
            -1e300,
            -1.0,
            -f64::MIN_POSITIVE,
            -0.0,
            0.0,
            f64::from_bits(1),
            1.0,
            1e300,
            f64::INFINITY,
            f64::NAN,
        ];
        for a in vals {
            for b in vals {
                let by_key = rank_key(b, 0).cmp(&rank_key(a, 0));
                assert_eq!(by_key, a.total_cmp(&b), "{a} {b}");
            }
        }
        assert!(rank_key(1.0, 3) < rank_key(1.0, 4));
        for v in vals {
            assert_eq!(
                ordered_bits_inverse(ordered_bits(v)) as u64,
                v.to_bits(),
                "{v}"
            );
        }
    }

    #[test]
    fn long_blocks_use_the_comparator_path() {
        let peaks: Vec<(f64, f64)> = (0..300)
            .map(|i| (f64::from(i) + 1.0, f64::from((i * 37) % 11)))
            .collect();
        for k in [1, 5, 64, 299] {
            run(&peaks, 300, k);
            run(&peaks, 129, k);
        }
    }

    #[test]
    #[should_panic(expected = "top_k over 3 peaks")]
    fn n_beyond_slots_panics() {
        let data = [1.0f64, 2.0, 3.0, 4.0];
        top_k(
            PeakBlock::new(&data, Orientation::Planar),
            3,
            1,
            &mut Vec::new(),
        );
    }
}
