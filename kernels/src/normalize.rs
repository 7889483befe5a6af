//! Copying the real peaks out: m/z widened to `f64`, intensities (optionally normalised) as
//! `f32`; either the first `n` peaks or a selection of them (after [`top_k`](crate::top_k)).

use crate::block::{Columns, Lanes, PeakBlock, PeakValue};
use crate::names::{keyword_text, Keyword};

/// Intensity transform applied by [`extend_intensity`] and [`extend_intensity_at`].
///
/// Every mode computes in `f64` from the stored values and rounds once to `f32`. Statistics
/// (maximum, sum, sum of squares) are taken over the peaks being written: the first `n`, or
/// the selected ones. Sums are accumulated in index order, so results are reproducible
/// bit for bit (a vectorised, reordered sum could differ in the last bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Normalize {
    /// Store intensities as they are: `(I as f64) as f32`, one rounding.
    None,
    /// Divide by the maximum intensity (DreaMS, matchms `normalize_intensities`); the base
    /// peak becomes exactly `1.0`.
    #[default]
    Max,
    /// Divide by the sum of intensities (total ion current 1).
    Sum,
    /// Divide by the Euclidean norm `sqrt(Σ I²)` (unit L2 norm).
    L2,
    /// `sqrt(I) / max_j sqrt(I_j)` (spectrum_utils `scale_intensity("root")`, then max
    /// normalisation); the base peak becomes exactly `1.0`.
    Sqrt,
}

impl Normalize {
    /// Every mode, in declaration order.
    pub const ALL: [Normalize; 5] = [Self::None, Self::Max, Self::Sum, Self::L2, Self::Sqrt];

    /// The name used in configuration and manifests: `none`, `max`, `sum`, `l2`, `sqrt`.
    pub fn as_str(self) -> &'static str {
        self.name()
    }

    /// Inverse of [`as_str`](Self::as_str); `None` for an unknown name (exact match only).
    pub fn from_str_name(s: &str) -> Option<Self> {
        Self::from_name(s)
    }
}

impl Keyword for Normalize {
    const WHAT: &'static str = "normalize";
    const NAMES: &'static [(Self, &'static str)] = &[
        (Self::None, "none"),
        (Self::Max, "max"),
        (Self::Sum, "sum"),
        (Self::L2, "l2"),
        (Self::Sqrt, "sqrt"),
    ];
}

keyword_text!(Normalize);

/// Append the first `n` m/z values, widened to `f64` bit-exactly, to `out`.
///
/// # Panics
///
/// If `n > block.slots()`.
pub fn extend_mz<T: PeakValue>(block: PeakBlock<'_, T>, n: usize, out: &mut Vec<f64>) {
    match block.columns() {
        Columns::Planar { mz, .. } => out.extend(mz[..n].iter().map(|v| v.to_f64())),
        Columns::Interleaved { pairs } => {
            out.extend(pairs[..2 * n].chunks_exact(2).map(|p| p[0].to_f64()));
        }
    }
}

/// Append the m/z values of the slots listed in `idx` (in that order), widened to `f64`.
///
/// # Panics
///
/// If some index is `>= block.slots()`.
pub fn extend_mz_at<T: PeakValue>(block: PeakBlock<'_, T>, idx: &[u32], out: &mut Vec<f64>) {
    out.extend(idx.iter().map(|&i| block.mz(i as usize).to_f64()));
}

/// Append the first `n` intensities to `out` after normalisation by `mode`:
///
/// - [`Normalize::None`]: `(I as f64) as f32` (one rounding; identity for `f32` blocks).
/// - [`Normalize::Max`]: `(I / max) as f32`, `max` the largest of the `n` intensities, so the
///   base peak is exactly `1.0`.
/// - [`Normalize::Sum`]: `(I / Σ I) as f32`, the sum accumulated in index order from `0.0`.
/// - [`Normalize::L2`]: `(I / sqrt(Σ I·I)) as f32`, same order, no fused multiply-add.
/// - [`Normalize::Sqrt`]: `(sqrt(I) / max_j sqrt(I_j)) as f32`.
///
/// All arithmetic is `f64`. Precondition: the `n` peaks passed validation
/// ([`unpad_validate`](crate::unpad_validate) returned `Ok(n)`), so every intensity is finite
/// and `> 0`. Otherwise the values are still deterministic (a maximum is the first strictly
/// largest non-NaN value, starting from `-Inf`; see the oracle tests) but meaningless;
/// nothing panics beyond the bound below.
///
/// The maximum for `Max` and `Sqrt` of a planar block is found with SIMD; the result is
/// bit-identical to [`portable::extend_intensity`](crate::portable::extend_intensity).
///
/// # Panics
///
/// If `n > block.slots()`.
pub fn extend_intensity<T: PeakValue>(
    block: PeakBlock<'_, T>,
    n: usize,
    mode: Normalize,
    out: &mut Vec<f32>,
) {
    let scale = match (mode, block.columns()) {
        (Normalize::Max | Normalize::Sqrt, Columns::Planar { intensity, .. }) => {
            let values = &intensity[..n];
            let max = simd_max::<T::Lanes>(values);
            // Only a zero (or absent) maximum depends on which equal value came first.
            if max > 0.0 {
                if mode == Normalize::Max {
                    Scale::Div(max)
                } else {
                    // sqrt is correctly rounded, hence monotone: max sqrt(I) = sqrt(max I).
                    Scale::SqrtDiv(max.sqrt())
                }
            } else {
                scale_of(mode, values.iter().map(|v| v.to_f64()))
            }
        }
        _ => scale_of(mode, intensities(block, n)),
    };
    extend_block(block, n, out, scale);
}

/// Append the intensities of the slots listed in `idx` (in that order), normalised by `mode`
/// with the statistics (maximum, sum, norm) taken over the selected peaks only; otherwise as
/// [`extend_intensity`].
///
/// # Panics
///
/// If some index is `>= block.slots()`.
pub fn extend_intensity_at<T: PeakValue>(
    block: PeakBlock<'_, T>,
    idx: &[u32],
    mode: Normalize,
    out: &mut Vec<f32>,
) {
    let values = idx.iter().map(|&i| block.intensity(i as usize).to_f64());
    let scale = scale_of(mode, values.clone());
    extend_scaled(out, values, scale);
}

/// How each `f64` intensity becomes an `f32`.
#[derive(Clone, Copy, Debug)]
enum Scale {
    /// `v as f32`.
    Identity,
    /// `(v / d) as f32`.
    Div(f64),
    /// `(sqrt(v) / d) as f32`.
    SqrtDiv(f64),
}

/// The scale for `mode` from the intensities, scalar, in index order.
#[inline]
fn scale_of(mode: Normalize, values: impl Iterator<Item = f64>) -> Scale {
    match mode {
        Normalize::None => Scale::Identity,
        Normalize::Max => Scale::Div(max_of(values)),
        Normalize::Sum => Scale::Div(values.fold(0.0, |s, v| s + v)),
        Normalize::L2 => Scale::Div(values.fold(0.0, |s, v| s + v * v).sqrt()),
        Normalize::Sqrt => Scale::SqrtDiv(max_of(values.map(f64::sqrt))),
    }
}

/// First strictly largest non-NaN value, starting from `-Inf`.
#[inline]
fn max_of(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(f64::NEG_INFINITY, |m, v| if v > m { v } else { m })
}

/// The first `n` intensities, widened.
#[inline]
fn intensities<'a, T: PeakValue>(
    block: PeakBlock<'a, T>,
    n: usize,
) -> impl Iterator<Item = f64> + Clone + 'a {
    let (slice, step, offset) = match block.columns() {
        Columns::Planar { intensity, .. } => (&intensity[..n], 1, 0),
        Columns::Interleaved { pairs } => (&pairs[..2 * n], 2, 1),
    };
    slice.iter().skip(offset).step_by(step).map(|v| v.to_f64())
}

/// Append the first `n` intensities of `block`, mapped by `scale`. The planar path is a
/// plain slice map, which the compiler vectorises (divide and narrow).
#[inline]
fn extend_block<T: PeakValue>(block: PeakBlock<'_, T>, n: usize, out: &mut Vec<f32>, scale: Scale) {
    match block.columns() {
        Columns::Planar { intensity, .. } => {
            extend_scaled(out, intensity[..n].iter().map(|v| v.to_f64()), scale);
        }
        Columns::Interleaved { pairs } => {
            extend_scaled(
                out,
                pairs[..2 * n].chunks_exact(2).map(|p| p[1].to_f64()),
                scale,
            );
        }
    }
}

#[inline]
fn extend_scaled(out: &mut Vec<f32>, values: impl Iterator<Item = f64>, scale: Scale) {
    match scale {
        Scale::Identity => out.extend(values.map(|v| v as f32)),
        Scale::Div(d) => out.extend(values.map(|v| (v / d) as f32)),
        Scale::SqrtDiv(d) => out.extend(values.map(|v| (v.sqrt() / d) as f32)),
    }
}

/// Lane-wise maximum of `values` widened to `f64`: `-Inf` for none; NaN never wins. Equal
/// values may resolve to either one, which only matters for the sign of zero (callers
/// recompute a zero maximum in order).
#[inline]
pub(crate) fn simd_max<V: Lanes>(values: &[V::Elem]) -> f64 {
    let n = values.len();
    if n < V::N {
        return max_of(values.iter().map(|v| v.to_f64()));
    }
    let mut acc = V::splat_f64(f64::NEG_INFINITY);
    let mut i = 0;
    while i + V::N <= n {
        acc = V::load(&values[i..]).max_keep(acc);
        i += V::N;
    }
    if i < n {
        // Overlapping last chunk: max is idempotent.
        acc = V::load(&values[n - V::N..]).max_keep(acc);
    }
    acc.reduce_max()
}

/// The fast portable scalar kernels (no SIMD): the reference the SIMD paths are tested and
/// benchmarked against, and a fallback for targets without SIMD.
pub(crate) mod scalar {
    use super::*;

    /// [`extend_intensity`](super::extend_intensity) without SIMD.
    pub fn extend_intensity<T: PeakValue>(
        block: PeakBlock<'_, T>,
        n: usize,
        mode: Normalize,
        out: &mut Vec<f32>,
    ) {
        let scale = scale_of(mode, intensities(block, n));
        extend_block(block, n, out, scale);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{for_each_layout, padded, Elem};
    use crate::Orientation;

    fn bits32(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn bits64(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    const PEAKS: [(f64, f64); 4] = [(100.1, 3.0), (200.2, 7.7), (300.3, 0.1), (400.4, 1e-30)];

    fn check_max<T: Elem>(data: &[T], o: Orientation) {
        let block = PeakBlock::new(data, o);
        let mut out = vec![-7.0f32];
        extend_intensity(block, 4, Normalize::Max, &mut out);
        let max = block.intensity(1).to_f64();
        let expected: Vec<f32> = std::iter::once(-7.0)
            .chain((0..4).map(|i| (block.intensity(i).to_f64() / max) as f32))
            .collect();
        assert_eq!(bits32(&out), bits32(&expected), "{} {o:?}", T::NAME);
        assert_eq!(out[2].to_bits(), 1.0f32.to_bits(), "base peak exactly 1");
        assert!(out[1..].iter().all(|&v| v > 0.0 && v <= 1.0));
    }

    #[test]
    fn max_normalisation_is_exact() {
        let peaks = padded(&PEAKS, 8);
        for_each_layout(&peaks, check_max::<f64>);
        for_each_layout(&peaks, check_max::<f32>);
        // Spot check a hand-computed value: 3 / 7.7 in f64, rounded once.
        let data = crate::testutil::layout::<f64>(&peaks, Orientation::Planar);
        let mut out = Vec::new();
        extend_intensity(
            PeakBlock::new(&data, Orientation::Planar),
            4,
            Normalize::Max,
            &mut out,
        );
        assert_eq!(out[0].to_bits(), ((3.0f64 / 7.7) as f32).to_bits());
        assert_ne!(out[0].to_bits(), (3.0f32 / 7.7f32).to_bits());
    }

    #[test]
    fn max_is_over_first_n_only() {
        let peaks = [(1.0, 2.0), (2.0, 4.0), (3.0, 100.0)];
        for_each_layout(&peaks, |data: &[f64], o| {
            let mut out = Vec::new();
            extend_intensity(PeakBlock::new(data, o), 2, Normalize::Max, &mut out);
            assert_eq!(out, [0.5, 1.0]);
        });
    }

    #[test]
    fn none_mode_rounds_once() {
        let peaks = [(1.0, 0.1), (2.0, 1e300), (3.0, 1.5)];
        for_each_layout(&peaks, |data: &[f64], o| {
            let mut out = Vec::new();
            extend_intensity(PeakBlock::new(data, o), 3, Normalize::None, &mut out);
            assert_eq!(out[0].to_bits(), 0.1f32.to_bits());
            assert_eq!(out[1], f32::INFINITY);
            assert_eq!(out[2], 1.5);
        });
        for_each_layout(&peaks, |data: &[f32], o| {
            let mut out = Vec::new();
            extend_intensity(PeakBlock::new(data, o), 3, Normalize::None, &mut out);
            assert_eq!(
                bits32(&out),
                bits32(&[data_i(data, o, 0), data_i(data, o, 1), 1.5])
            );
        });
    }

    fn data_i(data: &[f32], o: Orientation, i: usize) -> f32 {
        PeakBlock::new(data, o).intensity(i)
    }

    #[test]
    fn mz_widened_bit_exactly() {
        let peaks = padded(&[(0.1, 1.0), (123.456_789, 2.0), (1999.9, 3.0)], 9);
        for_each_layout(&peaks, |data: &[f32], o| {
            let mut out = vec![42.0];
            extend_mz(PeakBlock::new(data, o), 3, &mut out);
            let expected = [
                42.0,
                f64::from(0.1f32),
                f64::from(123.456_79f32),
                f64::from(1999.9f32),
            ];
            assert_eq!(bits64(&out), bits64(&expected), "{o:?}");
            assert_ne!(out[1], 0.1f64, "f32 0.1 is not f64 0.1");
        });
        for_each_layout(&peaks, |data: &[f64], o| {
            let mut out = Vec::new();
            extend_mz(PeakBlock::new(data, o), 3, &mut out);
            assert_eq!(bits64(&out), bits64(&[0.1, 123.456_789, 1999.9]), "{o:?}");
        });
    }

    #[test]
    fn zero_peaks_append_nothing() {
        let peaks = padded(&[], 4);
        for_each_layout(&peaks, |data: &[f64], o| {
            let block = PeakBlock::new(data, o);
            let (mut mz, mut int) = (vec![1.0], vec![2.0]);
            extend_mz(block, 0, &mut mz);
            extend_intensity(block, 0, Normalize::Max, &mut int);
            assert_eq!((mz, int), (vec![1.0], vec![2.0]));
        });
    }

    #[test]
    #[should_panic]
    fn mz_n_beyond_slots_panics() {
        let data = [1.0f64, 2.0, 3.0, 4.0];
        extend_mz(
            PeakBlock::new(&data, Orientation::Planar),
            3,
            &mut Vec::new(),
        );
    }

    #[test]
    #[should_panic]
    fn intensity_n_beyond_slots_panics() {
        let data = [1.0f64, 2.0, 3.0, 4.0];
        let block = PeakBlock::new(&data, Orientation::Interleaved);
        extend_intensity(block, 3, Normalize::None, &mut Vec::new());
    }

    #[test]
    fn default_mode_is_max() {
        assert_eq!(Normalize::default(), Normalize::Max);
    }
}
