//! Unpadding and validation of one peak block.

use crate::block::{Columns, Lanes, PeakBlock, PeakValue};
use crate::reason::RejectReason;

/// Per-spectrum validation rules that are not about the peak block alone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ValidationRules {
    /// Minimum number of real peaks; fewer gives [`RejectReason::TooFewPeaks`]. Default `1`.
    pub min_peaks: usize,
    /// Largest accepted precursor m/z (inclusive); above it gives
    /// [`RejectReason::BadPrecursor`]. `None` (the default) means no upper bound. A NaN bound
    /// rejects every precursor.
    pub max_precursor_mz: Option<f64>,
}

impl Default for ValidationRules {
    fn default() -> Self {
        Self {
            min_peaks: 1,
            max_precursor_mz: None,
        }
    }
}

/// `true` for a padding-like slot: m/z and intensity both compare equal to zero
/// (`-0.0 == 0.0`; NaN is never zero).
#[inline(always)]
fn is_zero_entry(mz: f64, intensity: f64) -> bool {
    (mz == 0.0) & (intensity == 0.0)
}

/// Number of slots before trailing padding: the index after the last slot that is not a
/// zero entry `(0, 0)`. `-0.0` counts as zero; NaN is not zero. `0` if every slot is padding.
///
/// Planar blocks are scanned backwards with SIMD; the result equals
/// [`portable::unpadded_len`](crate::portable::unpadded_len).
pub fn unpadded_len<T: PeakValue>(block: PeakBlock<'_, T>) -> usize {
    match block.columns() {
        Columns::Planar { mz, intensity } => simd_unpadded_len::<T::Lanes>(mz, intensity),
        Columns::Interleaved { .. } => scalar::unpadded_len(block),
    }
}

/// Bit of `reason` in a flag mask; lower bits are higher priority.
#[inline(always)]
const fn bit(reason: RejectReason) -> u32 {
    1 << reason as u32
}

/// Flags raised by one peak given the previous peak's m/z (`-Inf` before the first peak,
/// which can only compare equal to a non-finite m/z, already a higher-priority reason).
#[inline(always)]
fn peak_flags(prev_mz: f64, mz: f64, intensity: f64) -> u32 {
    let flag = |hit: bool, reason| u32::from(hit) * bit(reason);
    flag(
        !(mz.is_finite() & intensity.is_finite()),
        RejectReason::NonFinite,
    ) | flag(is_zero_entry(mz, intensity), RejectReason::PaddingGap)
        | flag(mz <= 0.0, RejectReason::NonPositiveMz)
        | flag(intensity <= 0.0, RejectReason::NonPositiveIntensity)
        | flag(mz == prev_mz, RejectReason::DuplicateMz)
        | flag(mz < prev_mz, RejectReason::UnsortedMz)
}

/// OR of [`peak_flags`] over a sequence of (m/z, intensity) peaks.
#[inline(always)]
fn scan_peaks(peaks: impl Iterator<Item = (f64, f64)>) -> u32 {
    let mut prev = f64::NEG_INFINITY;
    let mut flags = 0;
    for (mz, intensity) in peaks {
        flags |= peak_flags(prev, mz, intensity);
        prev = mz;
    }
    flags
}

/// Unpad, then validate.
///
/// Returns `Ok(n)`, the number of real peaks (they are slots `0..n`, and every later slot is
/// a zero entry), or the first applicable [`RejectReason`] in priority order; see the
/// [crate documentation](crate#validation) for the exact rules. `precursor_mz` is checked
/// against `rules` ([`RejectReason::BadPrecursor`]) only after the peaks pass.
///
/// Planar blocks take a SIMD fast path that only answers "all valid?"; a block that fails it
/// is re-checked by the portable scalar scan, which names the reason. The verdict always
/// equals [`portable::unpad_validate`](crate::portable::unpad_validate).
pub fn unpad_validate<T: PeakValue>(
    block: PeakBlock<'_, T>,
    precursor_mz: f64,
    rules: &ValidationRules,
) -> Result<usize, RejectReason> {
    match block.columns() {
        Columns::Planar { mz, intensity } => {
            let n = simd_unpadded_len::<T::Lanes>(mz, intensity);
            if n == 0 {
                return Err(RejectReason::Empty);
            }
            if n >= rules.min_peaks
                && precursor_ok(precursor_mz, rules)
                && simd_all_valid::<T::Lanes>(&mz[..n], &intensity[..n])
            {
                Ok(n)
            } else {
                scalar::verdict(block, n, precursor_mz, rules)
            }
        }
        Columns::Interleaved { .. } => scalar::unpad_validate(block, precursor_mz, rules),
    }
}

#[inline(always)]
fn precursor_ok(precursor_mz: f64, rules: &ValidationRules) -> bool {
    precursor_mz.is_finite()
        && precursor_mz > 0.0
        && rules.max_precursor_mz.is_none_or(|max| precursor_mz <= max)
}

/// Index after the last slot of `mz`/`intensity` (equal lengths) that is not a zero entry.
///
/// A slot is a zero entry iff the bitwise OR of its m/z and intensity compares equal to
/// `0.0`: only `±0.0` have all bits but the sign clear, and a NaN pattern never compares
/// equal. So one OR per slot, and whole runs of padding are ORed together before one compare.
#[inline]
pub(crate) fn simd_unpadded_len<V: Lanes>(mz: &[V::Elem], intensity: &[V::Elem]) -> usize {
    let p = mz.len();
    let intensity = &intensity[..p];
    let n = V::N;
    if p < n {
        return scalar::last_real(mz, intensity);
    }
    let chunk = |s: usize| V::load(&mz[s..]) | V::load(&intensity[s..]);
    let mut end = p;
    // Four vectors at a time while everything is padding.
    while end >= 4 * n {
        let s = end - 4 * n;
        let or = chunk(s) | chunk(s + n) | chunk(s + 2 * n) | chunk(s + 3 * n);
        if !or.all_zero() {
            break;
        }
        end = s;
    }
    while end >= n {
        let s = end - n;
        if !chunk(s).all_zero() {
            return s + scalar::last_real(&mz[s..end], &intensity[s..end]);
        }
        end = s;
    }
    // `end < n`: slots `end..` are padding; the last real slot, if any, is below `end`.
    if end > 0 && !chunk(0).all_zero() {
        return scalar::last_real(&mz[..end], &intensity[..end]);
    }
    0
}

/// `true` if the peaks (`mz.len() == intensity.len() >= 1`) are all finite, m/z `> 0` and
/// strictly increasing, intensities `> 0`: every peak rule holds. `false` means "some rule
/// may fail" (a difference that overflows to infinity is a false alarm); the caller then
/// runs the exact scalar scan.
///
/// With `d = mz[i] - mz[i-1]` (for finite values `d > 0` iff `mz[i] > mz[i-1]`, thanks to
/// gradual underflow) and `s = d + intensity[i]`: `s - s` is `0` when both are finite and NaN
/// otherwise, summed into an accumulator that stays `0` until a non-finite value appears;
/// and a running minimum of `d` and the intensities must stay `> 0`. Peak 0 is checked
/// directly. The tail is one overlapping vector (both reductions are idempotent).
#[inline]
pub(crate) fn simd_all_valid<V: Lanes>(mz: &[V::Elem], intensity: &[V::Elem]) -> bool {
    let n = mz.len();
    let intensity = &intensity[..n];
    let (m0, i0) = (mz[0].to_f64(), intensity[0].to_f64());
    if !(m0.is_finite() & i0.is_finite() & (m0 > 0.0) & (i0 > 0.0)) {
        return false;
    }
    // Peaks 1..n, each against its predecessor.
    if n - 1 < V::N {
        return scan_peaks((0..n).map(|i| (mz[i].to_f64(), intensity[i].to_f64()))) == 0;
    }
    let zero = V::splat_f64(0.0);
    let mut nan = zero;
    let mut min = V::splat_f64(f64::INFINITY);
    let mut step = |i: usize| {
        let d = V::load(&mz[i..]) - V::load(&mz[i - 1..]);
        let it = V::load(&intensity[i..]);
        let s = d + it;
        // Deliberate: `s - s` is 0 for finite `s`, NaN for ±Inf and NaN.
        #[allow(clippy::eq_op)]
        let finite_probe = s - s;
        nan = nan + finite_probe;
        min = min.min_any(d.min_any(it));
    };
    let mut i = 1;
    while i + V::N <= n {
        step(i);
        i += V::N;
    }
    if i < n {
        step(n - V::N);
    }
    nan.all_zero() && min.reduce_min() > 0.0
}

/// The fast portable scalar kernels (no SIMD): the reference the SIMD paths are tested and
/// benchmarked against, and the path for interleaved blocks.
pub(crate) mod scalar {
    use super::*;

    /// Index after the last non-zero-entry slot of two equal-length columns.
    #[inline]
    pub(crate) fn last_real<T: PeakValue>(mz: &[T], intensity: &[T]) -> usize {
        mz.iter()
            .zip(intensity)
            .rposition(|(m, i)| !is_zero_entry(m.to_f64(), i.to_f64()))
            .map_or(0, |i| i + 1)
    }

    /// [`unpadded_len`](super::unpadded_len) without SIMD.
    pub fn unpadded_len<T: PeakValue>(block: PeakBlock<'_, T>) -> usize {
        match block.columns() {
            Columns::Planar { mz, intensity } => last_real(mz, intensity),
            Columns::Interleaved { pairs } => pairs
                .chunks_exact(2)
                .rposition(|p| !is_zero_entry(p[0].to_f64(), p[1].to_f64()))
                .map_or(0, |i| i + 1),
        }
    }

    /// [`unpad_validate`](super::unpad_validate) without SIMD.
    pub fn unpad_validate<T: PeakValue>(
        block: PeakBlock<'_, T>,
        precursor_mz: f64,
        rules: &ValidationRules,
    ) -> Result<usize, RejectReason> {
        match unpadded_len(block) {
            0 => Err(RejectReason::Empty),
            n => verdict(block, n, precursor_mz, rules),
        }
    }

    /// The verdict for a block whose unpadded length is `n >= 1`.
    pub(crate) fn verdict<T: PeakValue>(
        block: PeakBlock<'_, T>,
        n: usize,
        precursor_mz: f64,
        rules: &ValidationRules,
    ) -> Result<usize, RejectReason> {
        let mut flags = match block.columns() {
            Columns::Planar { mz, intensity } => scan_peaks(
                mz[..n]
                    .iter()
                    .zip(&intensity[..n])
                    .map(|(m, i)| (m.to_f64(), i.to_f64())),
            ),
            Columns::Interleaved { pairs } => scan_peaks(
                pairs[..2 * n]
                    .chunks_exact(2)
                    .map(|p| (p[0].to_f64(), p[1].to_f64())),
            ),
        };
        if !precursor_ok(precursor_mz, rules) {
            flags |= bit(RejectReason::BadPrecursor);
        }
        if n < rules.min_peaks {
            flags |= bit(RejectReason::TooFewPeaks);
        }
        match flags {
            0 => Ok(n),
            _ => Err(RejectReason::ALL[flags.trailing_zeros() as usize]),
        }
    }
}

/// The portable scalar kernels, selectable by callers that must not use SIMD (and by the
/// benches, to report the SIMD speedup). Same results, bit for bit, as the crate-root
/// functions.
pub mod portable {
    pub use super::scalar::{unpad_validate, unpadded_len};
    pub use crate::normalize::scalar::extend_intensity;
    pub use crate::topk::scalar::top_k;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle;
    use crate::testutil::{for_each_layout, padded, Elem};
    use crate::Orientation;
    use RejectReason::*;

    const PREC: f64 = 500.0;

    /// Assert `unpad_validate` (and the oracle) give `expected` in both orientations and
    /// both element types, with `rules` and precursor `prec`.
    fn check_with(
        peaks: &[(f64, f64)],
        prec: f64,
        rules: ValidationRules,
        expected: Result<usize, RejectReason>,
    ) {
        for_each_layout(peaks, |data: &[f64], o| {
            run(data, o, prec, &rules, expected)
        });
        for_each_layout(peaks, |data: &[f32], o| {
            run(data, o, prec, &rules, expected)
        });
    }

    fn run<T: Elem>(
        data: &[T],
        o: Orientation,
        prec: f64,
        rules: &ValidationRules,
        expected: Result<usize, RejectReason>,
    ) {
        let block = PeakBlock::new(data, o);
        let ctx = format!("{} {o:?} {data:?}", T::NAME);
        assert_eq!(unpad_validate(block, prec, rules), expected, "{ctx}");
        assert_eq!(
            oracle::unpad_validate(block, prec, rules),
            expected,
            "oracle {ctx}"
        );
    }

    fn check(peaks: &[(f64, f64)], expected: Result<usize, RejectReason>) {
        check_with(peaks, PREC, ValidationRules::default(), expected);
    }

    /// `len` valid peaks: strictly increasing m/z, positive intensities.
    fn valid(len: usize) -> Vec<(f64, f64)> {
        (0..len)
            .map(|i| (100.0 + 1.5 * i as f64, 1.0 + (i % 7) as f64))
            .collect()
    }

    #[test]
    fn empty() {
        check(&[], Err(Empty));
        check(&padded(&[], 128), Err(Empty));
        check(&[(0.0, 0.0)], Err(Empty));
        // -0.0 counts as zero in either position.
        check(&[(-0.0, 0.0), (0.0, -0.0), (-0.0, -0.0)], Err(Empty));
        // Empty wins over everything, including a bad precursor and min_peaks.
        let rules = ValidationRules {
            min_peaks: 5,
            max_precursor_mz: Some(1.0),
        };
        check_with(&padded(&[], 8), f64::NAN, rules, Err(Empty));
    }

    #[test]
    fn non_finite() {
        check(&[(f64::NAN, 1.0)], Err(NonFinite));
        check(&[(100.0, f64::NAN)], Err(NonFinite));
        check(&[(100.0, 1.0), (f64::INFINITY, 1.0)], Err(NonFinite));
        check(&[(100.0, f64::NEG_INFINITY), (200.0, 1.0)], Err(NonFinite));
        check(&[(f64::NEG_INFINITY, 1.0), (200.0, 1.0)], Err(NonFinite));
        // NaN is not padding: a NaN in a padding position ends the unpadded prefix there.
        check(
            &padded(&[(100.0, 1.0), (0.0, 0.0), (f64::NAN, 0.0)], 8),
            Err(NonFinite),
        );
        check(&padded(&[(100.0, 1.0), (0.0, f64::NAN)], 8), Err(NonFinite));
    }

    #[test]
    fn non_finite_beats_lower_priorities() {
        // NaN plus a gap.
        check(&[(f64::NAN, 1.0), (0.0, 0.0), (200.0, 1.0)], Err(NonFinite));
        // Inf plus duplicate, unsorted, non-positive and a bad precursor.
        let peaks = [(300.0, -1.0), (300.0, 1.0), (-5.0, f64::INFINITY)];
        check_with(&peaks, -1.0, ValidationRules::default(), Err(NonFinite));
    }

    #[test]
    fn padding_gap() {
        check(&[(100.0, 1.0), (0.0, 0.0), (200.0, 2.0)], Err(PaddingGap));
        check(&[(0.0, 0.0), (200.0, 2.0)], Err(PaddingGap));
        check(
            &padded(&[(100.0, 1.0), (-0.0, 0.0), (200.0, 2.0)], 9),
            Err(PaddingGap),
        );
        // Gap beats non-positive m/z, duplicates and unsorted peaks.
        let peaks = [(100.0, 1.0), (100.0, 1.0), (0.0, 0.0), (-1.0, 1.0)];
        check(&peaks, Err(PaddingGap));
    }

    #[test]
    fn non_positive_mz() {
        // (0, I) is a peak with zero m/z, not padding.
        check(&[(0.0, 5.0)], Err(NonPositiveMz));
        check(&[(100.0, 1.0), (0.0, 5.0)], Err(NonPositiveMz));
        check(&[(-0.0, 5.0), (100.0, 1.0)], Err(NonPositiveMz));
        check(&[(-3.0, 5.0), (100.0, 1.0)], Err(NonPositiveMz));
        // Beats non-positive intensity and duplicates.
        check(
            &[(100.0, 0.0), (100.0, 1.0), (-3.0, 5.0)],
            Err(NonPositiveMz),
        );
    }

    #[test]
    fn non_positive_intensity() {
        check(&[(100.0, 0.0)], Err(NonPositiveIntensity));
        check(&[(100.0, 1.0), (200.0, -0.0)], Err(NonPositiveIntensity));
        check(
            &padded(&[(100.0, -2.0), (200.0, 1.0)], 8),
            Err(NonPositiveIntensity),
        );
        // Beats duplicates and unsorted.
        check(
            &[(200.0, 1.0), (200.0, 0.0), (100.0, 1.0)],
            Err(NonPositiveIntensity),
        );
    }

    #[test]
    fn duplicate_mz() {
        check(&[(100.0, 1.0), (100.0, 2.0)], Err(DuplicateMz));
        // Duplicate and unsorted pairs in either order: DuplicateMz wins.
        check(&[(100.0, 1.0), (100.0, 2.0), (50.0, 1.0)], Err(DuplicateMz));
        check(&[(100.0, 1.0), (50.0, 2.0), (50.0, 1.0)], Err(DuplicateMz));
    }

    #[test]
    fn unsorted_mz() {
        check(&[(200.0, 1.0), (100.0, 1.0)], Err(UnsortedMz));
        let mut peaks = valid(9);
        peaks.swap(3, 4);
        check(&padded(&peaks, 128), Err(UnsortedMz));
        // Beats a bad precursor and too few peaks.
        let rules = ValidationRules {
            min_peaks: 3,
            max_precursor_mz: None,
        };
        check_with(&[(200.0, 1.0), (100.0, 1.0)], 0.0, rules, Err(UnsortedMz));
    }

    #[test]
    fn bad_precursor() {
        let peaks = valid(3);
        let rules = ValidationRules::default();
        for prec in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, -5.0] {
            check_with(&peaks, prec, rules, Err(BadPrecursor));
        }
        let capped = ValidationRules {
            min_peaks: 1,
            max_precursor_mz: Some(1000.0),
        };
        check_with(&peaks, 1000.0, capped, Ok(3));
        check_with(&peaks, 1_000.000_000_001, capped, Err(BadPrecursor));
        let nan_cap = ValidationRules {
            max_precursor_mz: Some(f64::NAN),
            ..capped
        };
        check_with(&peaks, 10.0, nan_cap, Err(BadPrecursor));
        // Beats too few peaks.
        let strict = ValidationRules {
            min_peaks: 10,
            ..capped
        };
        check_with(&peaks, 2000.0, strict, Err(BadPrecursor));
        // Subnormal precursor is positive and finite.
        check_with(&peaks, f64::from_bits(1), rules, Ok(3));
    }

    #[test]
    fn too_few_peaks() {
        let rules = |min_peaks| ValidationRules {
            min_peaks,
            max_precursor_mz: None,
        };
        check_with(&padded(&valid(2), 8), PREC, rules(3), Err(TooFewPeaks));
        check_with(&padded(&valid(3), 8), PREC, rules(3), Ok(3));
        check_with(&valid(1), PREC, rules(0), Ok(1));
        check_with(&[], PREC, rules(0), Err(Empty));
    }

    #[test]
    fn subnormals_are_positive_and_not_padding() {
        // f32 subnormal, exactly representable in both element types.
        let tiny = f64::from(f32::from_bits(1));
        check(&[(tiny, tiny), (1.0, 1.0)], Ok(2));
        check(&padded(&[(100.0, 1.0), (0.0, tiny)], 8), Err(NonPositiveMz));
        check(
            &padded(&[(100.0, 1.0), (200.0, 1.0), (tiny, 0.0)], 8),
            Err(NonPositiveIntensity),
        );
        check(&[(-tiny, 1.0)], Err(NonPositiveMz));
        check(&[(100.0, -tiny)], Err(NonPositiveIntensity));
        // f64 subnormal: positive for f64 blocks (it rounds to 0 in f32, so f64 only).
        let t64 = f64::from_bits(1);
        for o in [Orientation::Planar, Orientation::Interleaved] {
            let data = crate::testutil::layout::<f64>(&padded(&[(t64, t64), (1.0, t64)], 4), o);
            let block = PeakBlock::new(&data, o);
            assert_eq!(unpadded_len(block), 2);
            assert_eq!(
                unpad_validate(block, PREC, &ValidationRules::default()),
                Ok(2)
            );
        }
    }

    #[test]
    fn lengths() {
        for n in [0, 1, 7, 8, 9, 128] {
            let expected = if n == 0 { Err(Empty) } else { Ok(n) };
            // Exactly full, and padded to GeMS width.
            check(&valid(n), expected);
            check(&padded(&valid(n), 128), expected);
            check(&padded(&valid(n), 130), expected);
        }
    }

    #[test]
    fn unpadded_len_values() {
        let cases: &[(&[(f64, f64)], usize)] = &[
            (&[], 0),
            (&[(0.0, 0.0)], 0),
            (&[(-0.0, -0.0), (0.0, 0.0)], 0),
            (&[(1.0, 1.0)], 1),
            (&[(1.0, 1.0), (0.0, 0.0), (0.0, 0.0)], 1),
            (&[(0.0, 0.0), (1.0, 1.0), (0.0, 0.0)], 2),
            (&[(1.0, 1.0), (0.0, 0.0), (f64::NAN, 0.0), (0.0, 0.0)], 3),
            (&[(0.0, 0.0), (0.0, f64::NAN)], 2),
            (&[(0.0, 0.0), (0.0, -1.0)], 2),
        ];
        for &(peaks, expected) in cases {
            for_each_layout(peaks, |data: &[f64], o| {
                assert_eq!(
                    unpadded_len(PeakBlock::new(data, o)),
                    expected,
                    "{o:?} {data:?}"
                );
            });
            for_each_layout(peaks, |data: &[f32], o| {
                assert_eq!(
                    unpadded_len(PeakBlock::new(data, o)),
                    expected,
                    "{o:?} {data:?}"
                );
            });
        }
        for n in [0, 1, 7, 8, 9, 128] {
            let peaks = padded(&valid(n), 128);
            for_each_layout(&peaks, |data: &[f64], o| {
                assert_eq!(unpadded_len(PeakBlock::new(data, o)), n);
            });
        }
    }

    #[test]
    fn default_rules() {
        assert_eq!(
            ValidationRules::default(),
            ValidationRules {
                min_peaks: 1,
                max_precursor_mz: None
            }
        );
    }
}
