//! Naive reference implementations (tests only): one obvious expression per rule, through
//! the slot accessors, no layout tricks.

use crate::{Normalize, PeakBlock, PeakValue, RejectReason, ValidationRules};

/// Index after the last slot that is not `(0, 0)`.
pub(crate) fn unpadded_len<T: PeakValue>(b: PeakBlock<'_, T>) -> usize {
    (0..b.slots())
        .rev()
        .find(|&i| !(b.mz(i).to_f64() == 0.0 && b.intensity(i).to_f64() == 0.0))
        .map_or(0, |i| i + 1)
}

/// Each rule evaluated independently; first hit in priority order.
pub(crate) fn unpad_validate<T: PeakValue>(
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
pub(crate) fn mz<T: PeakValue>(b: PeakBlock<'_, T>, n: usize) -> Vec<f64> {
    (0..n).map(|i| b.mz(i).to_f64()).collect()
}

/// First `n` intensities, transformed.
pub(crate) fn intensity<T: PeakValue>(b: PeakBlock<'_, T>, n: usize, mode: Normalize) -> Vec<f32> {
    let v: Vec<f64> = (0..n).map(|i| b.intensity(i).to_f64()).collect();
    transform(&v, mode)
}

/// Indices of the `k` most intense of the first `n` peaks, ascending: sort every index by
/// (intensity descending by `total_cmp`, index ascending), keep `k`, sort.
pub(crate) fn top_k<T: PeakValue>(b: PeakBlock<'_, T>, n: usize, k: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..n as u32).collect();
    idx.sort_by(|&x, &y| {
        let it = |i: u32| b.intensity(i as usize).to_f64();
        it(y).total_cmp(&it(x)).then(x.cmp(&y))
    });
    idx.truncate(k);
    idx.sort();
    idx
}

/// The m/z values at `idx`, widened.
pub(crate) fn mz_at<T: PeakValue>(b: PeakBlock<'_, T>, idx: &[u32]) -> Vec<f64> {
    idx.iter().map(|&i| b.mz(i as usize).to_f64()).collect()
}

/// The intensities at `idx`, transformed with statistics over those peaks only.
pub(crate) fn intensity_at<T: PeakValue>(
    b: PeakBlock<'_, T>,
    idx: &[u32],
    mode: Normalize,
) -> Vec<f32> {
    let v: Vec<f64> = idx
        .iter()
        .map(|&i| b.intensity(i as usize).to_f64())
        .collect();
    transform(&v, mode)
}

/// One formula per mode over the `f64` intensities `v`, in index order.
pub(crate) fn transform(v: &[f64], mode: Normalize) -> Vec<f32> {
    let max = |it: &mut dyn Iterator<Item = f64>| {
        it.fold(f64::NEG_INFINITY, |m, x| if x > m { x } else { m })
    };
    match mode {
        Normalize::None => v.iter().map(|&x| x as f32).collect(),
        Normalize::Max => {
            let m = max(&mut v.iter().copied());
            v.iter().map(|&x| (x / m) as f32).collect()
        }
        Normalize::Sum => {
            let mut s = 0.0;
            for &x in v {
                s += x;
            }
            v.iter().map(|&x| (x / s) as f32).collect()
        }
        Normalize::L2 => {
            let mut s = 0.0;
            for &x in v {
                s += x * x;
            }
            let norm = s.sqrt();
            v.iter().map(|&x| (x / norm) as f32).collect()
        }
        Normalize::Sqrt => {
            let m = max(&mut v.iter().map(|x| x.sqrt()));
            v.iter().map(|&x| (x.sqrt() / m) as f32).collect()
        }
    }
}
