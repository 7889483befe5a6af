//! Naive reference implementations (tests only): one obvious expression per rule, through
//! the slot accessors, no layout tricks.

use crate::{Normalize, PeakBlock, PeakValue, RejectReason, ValidationRules};

/// Index after the last slot that is not `(0, 0)`.
pub fn unpadded_len<T: PeakValue>(b: PeakBlock<'_, T>) -> usize {
    (0..b.slots())
        .rev()
        .find(|&i| !(b.mz(i).to_f64() == 0.0 && b.intensity(i).to_f64() == 0.0))
        .map_or(0, |i| i + 1)
}

/// Each rule evaluated independently; first hit in priority order.
pub fn unpad_validate<T: PeakValue>(
    b: PeakBlock<'_, T>,
    p: f64,
    rules: &ValidationRules,
) -> Result<usize, RejectReason> {
    let n = unpadded_len(b);
    let mz = |i| b.mz(i).to_f64();
    let it = |i| b.intensity(i).to_f64();
    let checks = [
        n == 0,
        (0..n).any(|i| !mz(i).is_finite() || !it(i).is_finite()),
        (0..n).any(|i| mz(i) == 0.0 && it(i) == 0.0),
        (0..n).any(|i| mz(i) <= 0.0),
        (0..n).any(|i| it(i) <= 0.0),
        (1..n).any(|i| mz(i) == mz(i - 1)),
        (1..n).any(|i| mz(i) < mz(i - 1)),
        !(p.is_finite() && p > 0.0 && rules.max_precursor_mz.is_none_or(|m| p <= m)),
        n < rules.min_peaks,
    ];
    RejectReason::ALL
        .into_iter()
        .zip(checks)
        .find(|&(_, hit)| hit)
        .map_or(Ok(n), |(r, _)| Err(r))
}

/// First `n` m/z values widened.
pub fn mz<T: PeakValue>(b: PeakBlock<'_, T>, n: usize) -> Vec<f64> {
    (0..n).map(|i| b.mz(i).to_f64()).collect()
}

/// First `n` intensities, transformed.
pub fn intensity<T: PeakValue>(b: PeakBlock<'_, T>, n: usize, mode: Normalize) -> Vec<f32> {
    let it = |i| b.intensity(i).to_f64();
    let max = (0..n)
        .map(it)
        .fold(f64::NEG_INFINITY, |m, v| if v > m { v } else { m });
    (0..n)
        .map(|i| match mode {
            Normalize::None => it(i) as f32,
            Normalize::Max => (it(i) / max) as f32,
        })
        .collect()
}
