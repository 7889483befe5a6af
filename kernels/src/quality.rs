//! GeMS quality formats A/B/C (DreaMS `dreams/utils/dformats.py`).
//!
//! # Reference
//!
//! DreaMS `DataFormat.val_spec` (pluskal-lab/DreaMS `dreams/utils/dformats.py`, commit
//! `4fbc05e6`) rejects a spectrum when any of these holds (`None` metadata skips its check):
//!
//! | check (reject when …)                                      | A      | B      | C       |
//! |------------------------------------------------------------|--------|--------|---------|
//! | `mslevel > max_ms_level`                                   | 2      | 2      | 10      |
//! | `prec_mz > max_prec_mz`                                    | 1000   | 1500   | 1500    |
//! | `tbxic_stdev > max_tbxic_stdev`                            | 1e-4   | 1e-3   | 1e-3    |
//! | `charge < min_charge or charge > max_charge`               | 1..=1  | 1..=1  | -1..=1  |
//! | `n < min_peaks_n or n > max_peaks_n` (`n = spec.shape[1]`) | 3..=128| 3..=128| 3..=128 |
//! | `su.max_mz(spec) > max_mz` (`peak_list[0].max()`)          | 1000   | 1500   | 1500    |
//! | `su.intens_amplitude(rel) < min_intensity_ampl`            | 20     | 20     | 18      |
//! | `su.num_high_peaks(rel, 0.1) < min_peaks_n`                | 3      | 3      | 3       |
//!
//! where `rel = su.to_rel_intensity(spec)` divides every intensity by the maximum
//! (`dreams/utils/spectra.py`: `to_rel_intensity`), `intens_amplitude(pl) =
//! max(pl[1]) / min(pl[1])` and `num_high_peaks(pl, t) = (pl[1] > t).sum()` (strictly
//! greater). `assign_dformat` tries `'A'`, `'B'`, `'C'` in that order and returns the first that
//! passes, else `'-'`; [`gems_format`] does the same and returns `None` for `'-'`.
//!
//! # Nesting
//!
//! Every threshold of A is at least as strict as B's, and B's as C's (charge 1 ∈ [-1, 1],
//! amplitude 20 ≥ 18, 1000 ≤ 1500, 1e-4 ≤ 1e-3, MS level 2 ≤ 10), so A ⊂ B ⊂ C: a spectrum
//! meeting a format meets every looser one, and [`gems_format`] returns the strictest format
//! met. `--quality-format X` therefore keeps exactly the spectra with `gems_format <= X`
//! ([`GemsFormat`] orders `A < B < C`); [`meets`] checks one format directly.
//!
//! # Inputs and deviations
//!
//! - `charge` is GeMS `charge` (int8); `precursor_mz` GeMS `precursor_mz`; `accuracy` is GeMS
//!   `instrument accuracy est.` (float32), which DreaMS passes as `tbxic_stdev`.
//! - There is no MS-level input: GeMS holds MS2 spectra only, so the MS-level check always passes.
//! - `mz` / `intensity` are the validated, unpadded peaks (`n` = their length), intensities as
//!   stored, widened to `f64`. All arithmetic is `f64` as in NumPy on GeMS's float64 `spectrum`.
//! - Comparisons follow Python exactly, including NaN: `prec_mz > limit` is false for NaN, so a
//!   NaN precursor m/z (or accuracy, or max m/z) does not fail its check.
//! - `accuracy` is widened to `f64` before comparing with `1e-4` / `1e-3` (NumPy 1 semantics
//!   for a float32 scalar vs a Python float). NumPy 2 (NEP 50) compares in float32 instead;
//!   the only float32 value on which the two differ is `f32(1e-3) = 0.0010000000475`, which
//!   fails B/C here (it is > 0.001) and would pass under NumPy 2. For `1e-4` they agree.
//! - The amplitude is computed as DreaMS does, on relative intensities:
//!   `(max / max) / (min / max)`, two roundings, not `max / min`.

use crate::block::{Columns, PeakBlock, PeakValue};
use crate::names::{keyword_text, Keyword};

/// GeMS quality format, strictest first (`A < B < C`). See the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GemsFormat {
    /// DreaMS `DataFormatA`: charge 1, precursor and peaks ≤ 1000 m/z, accuracy ≤ 1e-4.
    A,
    /// DreaMS `DataFormatB`: charge 1, precursor and peaks ≤ 1500 m/z, accuracy ≤ 1e-3.
    B,
    /// DreaMS `DataFormatC`: charge −1..=1, ≤ 1500 m/z, accuracy ≤ 1e-3, amplitude ≥ 18.
    C,
}

impl GemsFormat {
    /// All formats, strictest first (the order DreaMS `assign_dformat` tries them).
    pub const ALL: [GemsFormat; 3] = [GemsFormat::A, GemsFormat::B, GemsFormat::C];

    /// `"A"`, `"B"` or `"C"` (DreaMS's names).
    pub fn as_str(self) -> &'static str {
        self.name()
    }

    /// Inverse of [`as_str`](Self::as_str); exact, case-sensitive.
    pub fn from_str_name(name: &str) -> Option<GemsFormat> {
        Self::from_name(name)
    }

    fn limits(self) -> Limits {
        match self {
            GemsFormat::A => Limits {
                min_charge: 1,
                max_charge: 1,
                max_prec_mz: 1000.0,
                max_mz: 1000.0,
                max_accuracy: 1e-4,
                min_intensity_ampl: 20.0,
            },
            GemsFormat::B => Limits {
                min_charge: 1,
                max_charge: 1,
                max_prec_mz: 1500.0,
                max_mz: 1500.0,
                max_accuracy: 1e-3,
                min_intensity_ampl: 20.0,
            },
            GemsFormat::C => Limits {
                min_charge: -1,
                max_charge: 1,
                max_prec_mz: 1500.0,
                max_mz: 1500.0,
                max_accuracy: 1e-3,
                min_intensity_ampl: 18.0,
            },
        }
    }
}

impl Keyword for GemsFormat {
    const WHAT: &'static str = "quality format";
    const NAMES: &'static [(Self, &'static str)] =
        &[(Self::A, "A"), (Self::B, "B"), (Self::C, "C")];
}

keyword_text!(GemsFormat);

/// DreaMS `min_peaks_n` (all of A, B, C).
const MIN_PEAKS: usize = 3;
/// DreaMS `max_peaks_n` (all of A, B, C).
const MAX_PEAKS: usize = 128;
/// DreaMS `high_intensity_thld` (all of A, B, C), compared with `>`.
const HIGH_INTENSITY: f64 = 0.1;

struct Limits {
    min_charge: i8,
    max_charge: i8,
    max_prec_mz: f64,
    max_mz: f64,
    max_accuracy: f64,
    min_intensity_ampl: f64,
}

/// Per-spectrum quantities the checks need, computed once.
struct Stats {
    n: usize,
    max_mz: f64,
    amplitude: f64,
    high_peaks: usize,
}

impl Stats {
    fn new(mz: &[f64], intensity: &[f64]) -> Stats {
        assert_eq!(mz.len(), intensity.len(), "mz and intensity lengths differ");
        let n = mz.len();
        // numpy `.max()`: NaN propagates.
        let max_mz = mz.iter().fold(f64::NEG_INFINITY, |a, &b| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        });
        let max_i = intensity.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let min_i = intensity.iter().fold(f64::INFINITY, |a, &b| a.min(b));
        // to_rel_intensity, then intens_amplitude = max(rel) / min(rel).
        // `max_i / max_i` is DreaMS's `max(rel)`: 1.0 unless max_i is 0, inf or NaN.
        #[allow(clippy::eq_op)]
        let amplitude = (max_i / max_i) / (min_i / max_i);
        let high_peaks = intensity
            .iter()
            .filter(|&&i| i / max_i > HIGH_INTENSITY)
            .count();
        Stats {
            n,
            max_mz,
            amplitude,
            high_peaks,
        }
    }

    fn meets(&self, f: GemsFormat, charge: Option<i8>, prec: f64, acc: Option<f32>) -> bool {
        let l = f.limits();
        // Each line is the negation of a DreaMS `val_spec` rejection (NaN-faithful).
        let reject = prec > l.max_prec_mz
            || acc.is_some_and(|a| f64::from(a) > l.max_accuracy)
            || charge.is_some_and(|c| c < l.min_charge || c > l.max_charge)
            || self.n < MIN_PEAKS
            || self.n > MAX_PEAKS
            || self.max_mz > l.max_mz
            || self.amplitude < l.min_intensity_ampl
            || self.high_peaks < MIN_PEAKS;
        !reject
    }
}

/// Whether the spectrum meets GeMS quality `format` (DreaMS `DataFormat{A,B,C}.val_spec`).
///
/// `mz` and `intensity` are the validated, unpadded peaks (equal lengths; panics otherwise).
/// Because A ⊂ B ⊂ C, `meets(f, ..)` equals `gems_format(..).is_some_and(|g| g <= f)`.
pub fn meets(
    format: GemsFormat,
    charge: Option<i8>,
    precursor_mz: f64,
    accuracy: Option<f32>,
    mz: &[f64],
    intensity: &[f64],
) -> bool {
    Stats::new(mz, intensity).meets(format, charge, precursor_mz, accuracy)
}

/// The strictest GeMS quality format the spectrum meets, or `None` (DreaMS
/// `assign_dformat` returning `'-'`). See the [module docs](self) for the exact rules.
///
/// ```
/// use msms_kernels::quality::{gems_format, GemsFormat};
///
/// let mz = [100.0, 200.0, 300.0, 400.0];
/// let intensity = [1.0, 50.0, 20.0, 100.0]; // amplitude 100, three peaks > 10 %
/// assert_eq!(gems_format(Some(1), 500.0, Some(5e-5), &mz, &intensity), Some(GemsFormat::A));
/// assert_eq!(gems_format(Some(-1), 500.0, Some(5e-5), &mz, &intensity), Some(GemsFormat::C));
/// assert_eq!(gems_format(Some(2), 500.0, None, &mz, &intensity), None);
/// ```
pub fn gems_format(
    charge: Option<i8>,
    precursor_mz: f64,
    accuracy: Option<f32>,
    mz: &[f64],
    intensity: &[f64],
) -> Option<GemsFormat> {
    let stats = Stats::new(mz, intensity);
    GemsFormat::ALL
        .into_iter()
        .find(|&f| stats.meets(f, charge, precursor_mz, accuracy))
}

/// [`gems_format`] of the first `n` peaks of a block that passed validation (m/z strictly
/// ascending, every value finite and positive), without copying them out: the maximum m/z
/// is the last one, and the intensity statistics are two passes over the stored column.
/// Same result as [`gems_format`] on those peaks (checked by a test); on blocks that did not
/// pass validation the result is unspecified.
pub fn gems_format_validated<T: PeakValue>(
    charge: Option<i8>,
    precursor_mz: f64,
    accuracy: Option<f32>,
    block: PeakBlock<'_, T>,
    n: usize,
) -> Option<GemsFormat> {
    let stats = match block.columns() {
        Columns::Planar { intensity, .. } => {
            Stats::validated(block, n, intensity[..n].iter().map(|v| v.to_f64()))
        }
        Columns::Interleaved { pairs } => Stats::validated(
            block,
            n,
            pairs[..2 * n].iter().skip(1).step_by(2).map(|v| v.to_f64()),
        ),
    };
    GemsFormat::ALL
        .into_iter()
        .find(|&f| stats.meets(f, charge, precursor_mz, accuracy))
}

impl Stats {
    /// [`Stats::new`] for validated peaks; `intensity` yields the `n` intensities.
    fn validated<T: PeakValue>(
        block: PeakBlock<'_, T>,
        n: usize,
        intensity: impl Iterator<Item = f64> + Clone,
    ) -> Stats {
        let max_mz = if n == 0 {
            f64::NEG_INFINITY
        } else {
            block.mz(n - 1).to_f64()
        };
        let (max_i, min_i) = intensity
            .clone()
            .fold((f64::NEG_INFINITY, f64::INFINITY), |(hi, lo), v| {
                (hi.max(v), lo.min(v))
            });
        #[allow(clippy::eq_op)]
        let amplitude = (max_i / max_i) / (min_i / max_i);
        let high_peaks = intensity.filter(|&i| i / max_i > HIGH_INTENSITY).count();
        Stats {
            n,
            max_mz,
            amplitude,
            high_peaks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use GemsFormat::{A, B, C};

    #[test]
    fn validated_fast_path_equals_the_general_one() {
        use crate::testutil::for_each_layout;
        // Deterministic pseudo-random validated spectra around every threshold.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        for case in 0..400 {
            let n = case % 131;
            let mut mz = 20.0 + next() * 5.0;
            let peaks: Vec<(f64, f64)> = (0..n)
                .map(|_| {
                    mz += 0.01 + next() * 14.0;
                    let i = if case % 3 == 0 {
                        1.0 + (next() * 4.0).floor()
                    } else {
                        1e-3 + next() * 1e4
                    };
                    (mz, i)
                })
                .collect();
            let charge = [None, Some(1i8), Some(2), Some(-1)][case % 4];
            let prec = 200.0 + next() * 1400.0;
            let acc = [None, Some(5e-5f32), Some(5e-4)][case % 3];
            let want = gems_format(
                charge,
                prec,
                acc,
                &peaks.iter().map(|p| p.0).collect::<Vec<_>>(),
                &peaks.iter().map(|p| p.1).collect::<Vec<_>>(),
            );
            for_each_layout(&peaks, |d: &[f64], o| {
                let got = gems_format_validated(charge, prec, acc, PeakBlock::new(d, o), n);
                assert_eq!(got, want, "case {case} {o:?}");
            });
        }
    }

    /// A spectrum that meets A: 4 peaks ≤ 1000, amplitude 100, 3 peaks > 0.1.
    fn good() -> (Vec<f64>, Vec<f64>) {
        (
            vec![100.0, 200.0, 300.0, 400.0],
            vec![1.0, 50.0, 20.0, 100.0],
        )
    }

    fn fmt(
        charge: Option<i8>,
        prec: f64,
        acc: Option<f32>,
        mz: &[f64],
        i: &[f64],
    ) -> Option<GemsFormat> {
        let got = gems_format(charge, prec, acc, mz, i);
        // Consistency with `meets` and the nesting A ⊂ B ⊂ C.
        for f in GemsFormat::ALL {
            assert_eq!(
                meets(f, charge, prec, acc, mz, i),
                got.is_some_and(|g| g <= f),
                "{f:?}"
            );
        }
        got
    }

    #[test]
    fn names_round_trip() {
        for f in GemsFormat::ALL {
            assert_eq!(GemsFormat::from_str_name(f.as_str()), Some(f));
        }
        assert_eq!(GemsFormat::from_str_name("a"), None);
        assert_eq!(GemsFormat::from_str_name("-"), None);
        assert!(A < B && B < C);
    }

    #[test]
    fn charge_boundaries() {
        let (mz, i) = good();
        let f = |c| fmt(c, 500.0, Some(5e-5), &mz, &i);
        assert_eq!(f(Some(1)), Some(A));
        assert_eq!(f(None), Some(A));
        assert_eq!(f(Some(0)), Some(C));
        assert_eq!(f(Some(-1)), Some(C));
        assert_eq!(f(Some(-2)), None);
        assert_eq!(f(Some(2)), None);
        assert_eq!(f(Some(i8::MIN)), None);
    }

    #[test]
    fn precursor_boundaries() {
        let (mz, i) = good();
        let f = |p| fmt(Some(1), p, None, &mz, &i);
        assert_eq!(f(1000.0), Some(A));
        assert_eq!(f(1000.0f64.next_up()), Some(B));
        assert_eq!(f(1500.0), Some(B));
        assert_eq!(f(1500.0f64.next_up()), None);
        // Python: `nan > 1000.` is False, so NaN passes.
        assert_eq!(f(f64::NAN), Some(A));
        assert_eq!(f(f64::INFINITY), None);
    }

    #[test]
    fn max_mz_boundaries() {
        let (mut mz, i) = good();
        let mut f = |last: f64| {
            mz[3] = last;
            fmt(Some(1), 500.0, None, &mz, &i)
        };
        assert_eq!(f(1000.0), Some(A));
        assert_eq!(f(1000.0f64.next_up()), Some(B));
        assert_eq!(f(1500.0), Some(B));
        assert_eq!(f(1500.0f64.next_up()), None);
        // The maximum is over all peaks, not the last one.
        assert_eq!(
            fmt(
                Some(1),
                500.0,
                None,
                &[1200.0, 300.0, 400.0, 500.0],
                &[1.0, 50.0, 20.0, 100.0]
            ),
            Some(B)
        );
    }

    #[test]
    fn accuracy_boundaries() {
        let (mz, i) = good();
        let f = |a| fmt(Some(1), 500.0, a, &mz, &i);
        // f32(1e-4) = 9.99999974e-5 <= 1e-4; the next float32 is above.
        assert_eq!(f(Some(1e-4)), Some(A));
        assert_eq!(f(Some(1e-4f32.next_up())), Some(B));
        // f32(1e-3) = 1.00000005e-3 > 1e-3 in f64 (NumPy 1 semantics): fails B and C.
        assert_eq!(f(Some(1e-3f32.next_down())), Some(B));
        assert_eq!(f(Some(1e-3)), None);
        assert_eq!(f(None), Some(A));
        assert_eq!(f(Some(f32::NAN)), Some(A));
    }

    #[test]
    fn amplitude_boundaries() {
        let mz = [100.0, 200.0, 300.0, 400.0];
        let f = |min_i: f64| fmt(Some(1), 500.0, None, &mz, &[min_i, 50.0, 20.0, 100.0]);
        assert_eq!(f(5.0), Some(A)); // amplitude exactly 20
        assert_eq!(f(5.0f64.next_up()), Some(C)); // just below 20: C needs only 18
        assert_eq!(
            fmt(
                Some(0),
                500.0,
                None,
                &mz,
                &[5.0f64.next_up(), 50.0, 20.0, 100.0]
            ),
            Some(C)
        );
        assert_eq!(f(100.0 / 18.0), Some(C)); // amplitude 18 (after the relative-intensity roundings)
        assert_eq!(f(6.0), None); // 16.7 < 18
    }

    #[test]
    fn amplitude_uses_relative_intensities() {
        // DreaMS computes (max / max) / (min / max) = 20.000000000000004 >= 20 here, while
        // max / min = 19.999999999999996 < 20: A (not C) is right.
        let (max_i, min_i) = (947.88f64, 47.394000000000005f64);
        assert!(max_i / min_i < 20.0);
        assert!((max_i / max_i) / (min_i / max_i) >= 20.0);
        let mz = [100.0, 200.0, 300.0, 400.0];
        let i = [min_i, 500.0, 400.0, max_i];
        assert_eq!(fmt(Some(1), 500.0, None, &mz, &i), Some(A));
    }

    #[test]
    fn high_peak_boundaries() {
        let mz = [100.0, 200.0, 300.0, 400.0];
        let f = |i: &[f64]| fmt(Some(1), 500.0, None, &mz, i);
        // Relative intensity exactly 0.1 is not "> 0.1".
        assert_eq!(f(&[1.0, 10.0, 10.0, 100.0]), None);
        assert_eq!(f(&[1.0, 10.0, 10.0f64.next_up(), 100.0]), None);
        assert_eq!(f(&[1.0, 10.5, 10.5, 100.0]), Some(A));
        assert_eq!(f(&[1.0, 10.0f64.next_up().next_up(), 10.5, 100.0]), Some(A));
    }

    #[test]
    fn peak_count_boundaries() {
        // n = 2: too few, even though both are high.
        assert_eq!(fmt(Some(1), 500.0, None, &[1.0, 2.0], &[1.0, 100.0]), None);
        assert_eq!(fmt(Some(1), 500.0, None, &[], &[]), None);
        // n = 128 passes, n = 129 fails every format.
        let mk = |n: usize| {
            let mz: Vec<f64> = (0..n).map(|k| 100.0 + k as f64).collect();
            let mut i = vec![1.0; n];
            i[0] = 100.0;
            i[1] = 50.0;
            i[2] = 50.0;
            (mz, i)
        };
        let (mz, i) = mk(128);
        assert_eq!(fmt(Some(1), 500.0, None, &mz, &i), Some(A));
        let (mz, i) = mk(129);
        assert_eq!(fmt(Some(1), 500.0, None, &mz, &i), None);
        let (mz, i) = mk(3);
        assert_eq!(fmt(Some(1), 500.0, None, &mz, &i), None); // amplitude 100/50 = 2
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn length_mismatch_panics() {
        gems_format(None, 1.0, None, &[1.0], &[]);
    }
}
