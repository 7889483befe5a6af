//! Copying the real peaks out: m/z widened to `f64`, intensities (optionally normalised) as
//! `f32`.

use crate::block::{Columns, PeakBlock, PeakValue};

/// Intensity transform applied by [`extend_intensity`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Normalize {
    /// Store intensities as they are: `(I as f64) as f32`, one rounding.
    None,
    /// Divide by the spectrum's maximum intensity in `f64`, then round once to `f32`; the
    /// base peak becomes exactly `1.0`.
    #[default]
    Max,
}

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

/// Append the first `n` intensities to `out` after normalisation.
///
/// - [`Normalize::Max`]: `(I as f64 / max) as f32`, with `max` the largest of the `n`
///   intensities computed in `f64`, so the base peak is exactly `1.0`.
/// - [`Normalize::None`]: `(I as f64) as f32` (one rounding; identity for `f32` blocks).
///
/// Precondition: the `n` peaks passed validation ([`unpad_validate`](crate::unpad_validate)
/// returned `Ok(n)`), so every intensity is finite and `> 0`. Otherwise the values are
/// unspecified (this scalar version takes `max` as the first strictly largest non-NaN value,
/// starting from `-Inf`), but nothing panics beyond the bound below.
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
    match mode {
        Normalize::None => extend_mapped(block, n, out, |v| v as f32),
        Normalize::Max => {
            let max = max_intensity(block, n);
            extend_mapped(block, n, out, |v| (v / max) as f32);
        }
    }
}

/// Largest of the first `n` intensities (`-Inf` for none; NaN never wins; ties keep the
/// first, which only matters for the sign of zero).
#[inline]
fn max_intensity<T: PeakValue>(block: PeakBlock<'_, T>, n: usize) -> f64 {
    #[inline(always)]
    fn step(max: f64, v: f64) -> f64 {
        if v > max {
            v
        } else {
            max
        }
    }
    match block.columns() {
        Columns::Planar { intensity, .. } => intensity[..n]
            .iter()
            .fold(f64::NEG_INFINITY, |m, v| step(m, v.to_f64())),
        Columns::Interleaved { pairs } => pairs[..2 * n]
            .chunks_exact(2)
            .fold(f64::NEG_INFINITY, |m, p| step(m, p[1].to_f64())),
    }
}

/// Append `f(I as f64)` for the first `n` intensities.
#[inline]
fn extend_mapped<T: PeakValue>(
    block: PeakBlock<'_, T>,
    n: usize,
    out: &mut Vec<f32>,
    f: impl Fn(f64) -> f32,
) {
    match block.columns() {
        Columns::Planar { intensity, .. } => {
            out.extend(intensity[..n].iter().map(|v| f(v.to_f64())));
        }
        Columns::Interleaved { pairs } => {
            out.extend(pairs[..2 * n].chunks_exact(2).map(|p| f(p[1].to_f64())));
        }
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
