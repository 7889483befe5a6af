//! The per-spectrum checks of `msms verify --full`: the rules a manifest's `settings` imply
//! ([`SpectrumRules`]), one stored spectrum ([`SpectrumView`]), what can be wrong with it
//! ([`SpectrumFault`]) and the check itself ([`check_spectrum`]).

use std::fmt;

use msms_kernels::{GemsFormat, Normalize};

use super::ProblemKind;

/// Tolerance of the `sum` and `l2` normalisation checks: `|Σ I - 1|` resp.
/// `|sqrt(Σ I²) - 1|` must not exceed it. Each intensity is computed in `f64` and rounded
/// once to `f32` (relative error at most 2⁻²⁴), so a correctly normalised spectrum is within
/// about 6e-8 of 1, whatever its peak count; this allows 16 times that.
pub(crate) const NORM_TOLERANCE: f64 = 1e-6;

/// How one spectrum breaks what the writer guarantees.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub(crate) enum SpectrumFault {
    /// `spectrum_id` does not exceed the previous row's (the previous shard's last, for a
    /// shard's first row).
    IdOrder {
        /// The previous row's id.
        previous: u64,
    },
    /// `num_peaks` differs from the length of `mz` or `intensity`.
    PeakCount {
        /// `num_peaks`.
        num_peaks: u16,
        /// Length of `mz`.
        mz: usize,
        /// Length of `intensity`.
        intensity: usize,
    },
    /// A NaN or infinite value.
    NonFinite {
        /// `mz` or `intensity`.
        column: &'static str,
        /// Peak index.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A value `<= 0`.
    NonPositive {
        /// `mz` or `intensity`.
        column: &'static str,
        /// Peak index.
        index: usize,
        /// The value.
        value: f64,
    },
    /// An m/z not above the one before it.
    NotAscending {
        /// Peak index.
        index: usize,
        /// `mz[index - 1]`.
        previous: f64,
        /// `mz[index]`.
        value: f64,
    },
    /// Fewer peaks than the recorded settings allow.
    TooFewPeaks {
        /// Peaks.
        peaks: usize,
        /// Least allowed.
        min: usize,
    },
    /// More peaks than `max_peaks`.
    TooManyPeaks {
        /// Peaks.
        peaks: usize,
        /// `max_peaks`.
        max: usize,
    },
    /// Intensities not normalised as recorded.
    Normalisation {
        /// The recorded mode.
        mode: Normalize,
        /// The statistic found: the maximum (`max`, `sqrt`), the sum (`sum`) or the L2 norm
        /// (`l2`).
        value: f64,
    },
    /// The precursor m/z is not finite, not positive, or above `max_precursor_mz`.
    Precursor {
        /// `precursor_mz`.
        value: f64,
        /// `max_precursor_mz`, when set.
        max: Option<f64>,
    },
    /// `gems_format` below the `quality_format` required.
    QualityFormat {
        /// `gems_format` (`None`: null or unknown).
        found: Option<String>,
        /// Required.
        wanted: GemsFormat,
    },
}

impl fmt::Display for SpectrumFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IdOrder { previous } => {
                write!(
                    f,
                    "spectrum_id does not increase (previous row has {previous})"
                )
            }
            Self::PeakCount {
                num_peaks,
                mz,
                intensity,
            } => write!(
                f,
                "num_peaks is {num_peaks} but mz has {mz} values and intensity {intensity}"
            ),
            Self::NonFinite {
                column,
                index,
                value,
            } => write!(f, "{column}[{index}] is {value} (must be finite)"),
            Self::NonPositive {
                column,
                index,
                value,
            } => write!(f, "{column}[{index}] is {value} (must be > 0)"),
            Self::NotAscending {
                index,
                previous,
                value,
            } => write!(
                f,
                "mz[{index}] = {value} is not above mz[{}] = {previous} (m/z must be strictly \
                 ascending)",
                index - 1
            ),
            Self::TooFewPeaks { peaks, min } => {
                write!(
                    f,
                    "{peaks} peaks, fewer than the {min} the settings require"
                )
            }
            Self::TooManyPeaks { peaks, max } => {
                write!(f, "{peaks} peaks, more than max_peaks {max}")
            }
            Self::Normalisation { mode, value } => match mode {
                Normalize::Sum => write!(
                    f,
                    "intensities sum to {value}, not 1 (normalize sum, tolerance {NORM_TOLERANCE})"
                ),
                Normalize::L2 => write!(
                    f,
                    "intensity L2 norm is {value}, not 1 (normalize l2, tolerance {NORM_TOLERANCE})"
                ),
                _ => write!(
                    f,
                    "largest intensity is {value}, not exactly 1 (normalize {mode})"
                ),
            },
            Self::Precursor { value, max } => match max {
                Some(max) if value.is_finite() && *value > 0.0 => {
                    write!(f, "precursor_mz {value} is above max_precursor_mz {max}")
                }
                _ => write!(f, "precursor_mz {value} is not a finite positive m/z"),
            },
            Self::QualityFormat { found, wanted } => write!(
                f,
                "gems_format {} does not meet quality_format {}",
                found.as_deref().unwrap_or("null"),
                wanted.as_str()
            ),
        }
    }
}

/// What a written spectrum must satisfy, from the manifest's `settings`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SpectrumRules {
    /// Normalisation applied (`None`: unknown, not checked).
    pub(crate) normalize: Option<Normalize>,
    /// Least number of peaks a written spectrum has: `max(1, min(min_peaks, max_peaks))`.
    pub(crate) min_peaks: usize,
    /// `max_peaks`, when set.
    pub(crate) max_peaks: Option<usize>,
    /// `max_precursor_mz`, when set.
    pub(crate) max_precursor_mz: Option<f64>,
    /// `quality_format`, when set.
    pub(crate) quality_format: Option<GemsFormat>,
}

impl SpectrumRules {
    /// Rules from a manifest's `settings`; also the settings that could not be understood
    /// (their checks are skipped).
    pub(crate) fn from_settings(settings: &serde_json::Value) -> (SpectrumRules, Vec<ProblemKind>) {
        let mut unknown = Vec::new();
        let mut bad = |key: &'static str, v: &serde_json::Value| {
            unknown.push(ProblemKind::Setting {
                key,
                value: v.to_string(),
            });
        };
        let get = |key: &str| settings.get(key).unwrap_or(&serde_json::Value::Null);
        let normalize = match get("normalize") {
            serde_json::Value::String(s) => Normalize::from_str_name(s),
            _ => None,
        };
        if normalize.is_none() {
            bad("normalize", get("normalize"));
        }
        let count = |v: &serde_json::Value| v.as_u64().map(|n| n as usize);
        let min_peaks = match get("min_peaks") {
            serde_json::Value::Null => Some(1),
            v => count(v),
        };
        if min_peaks.is_none() {
            bad("min_peaks", get("min_peaks"));
        }
        let max_peaks = match get("max_peaks") {
            serde_json::Value::Null => Ok(None),
            v => count(v).filter(|&k| k > 0).map(Some).ok_or(()),
        };
        if max_peaks.is_err() {
            bad("max_peaks", get("max_peaks"));
        }
        let max_precursor_mz = match get("max_precursor_mz") {
            serde_json::Value::Null => Ok(None),
            v => v.as_f64().map(Some).ok_or(()),
        };
        if max_precursor_mz.is_err() {
            bad("max_precursor_mz", get("max_precursor_mz"));
        }
        let quality_format = match get("quality_format") {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::String(s) => GemsFormat::from_str_name(s).map(Some).ok_or(()),
            _ => Err(()),
        };
        if quality_format.is_err() {
            bad("quality_format", get("quality_format"));
        }
        let max_peaks = max_peaks.unwrap_or(None);
        let min = min_peaks
            .unwrap_or(1)
            .min(max_peaks.unwrap_or(usize::MAX))
            .max(1);
        (
            SpectrumRules {
                normalize,
                min_peaks: min,
                max_peaks,
                max_precursor_mz: max_precursor_mz.unwrap_or(None),
                quality_format: quality_format.unwrap_or(None),
            },
            unknown,
        )
    }
}

/// One spectrum as stored, for [`check_spectrum`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpectrumView<'a> {
    /// `num_peaks`.
    pub(crate) num_peaks: u16,
    /// `mz`.
    pub(crate) mz: &'a [f64],
    /// `intensity`.
    pub(crate) intensity: &'a [f32],
    /// `precursor_mz`.
    pub(crate) precursor_mz: f64,
    /// `gems_format` (only looked at when a quality format is required).
    pub(crate) gems_format: Option<&'a str>,
}

/// Check one written spectrum against what the pipeline guarantees under `rules`; append each
/// fault found to `out` (at most one per kind of check).
///
/// The guarantees, from the validation rules of `msms_kernels` (`unpad_validate`) and
/// `batch::build`: m/z finite, `> 0` and strictly ascending (duplicates are rejected as
/// `duplicate_mz`); intensities finite and `> 0` after normalisation (a value that rounds to
/// 0 or overflows `f32` rejects the spectrum); at least `min_peaks` peaks (capped by
/// `max_peaks`, applied after validation) and at most `max_peaks`. Normalisation: `max` and
/// `sqrt` divide in `f64` by the largest value and round once to `f32`, so the base peak is
/// exactly `1.0`; `sum` and `l2` are checked within [`NORM_TOLERANCE`]; `none` is not checked.
/// Normalisation is only checked when every intensity is finite and positive.
pub(crate) fn check_spectrum(
    s: &SpectrumView<'_>,
    rules: &SpectrumRules,
    out: &mut Vec<SpectrumFault>,
) {
    let (mz, it) = (s.mz, s.intensity);
    if usize::from(s.num_peaks) != mz.len() || mz.len() != it.len() {
        out.push(SpectrumFault::PeakCount {
            num_peaks: s.num_peaks,
            mz: mz.len(),
            intensity: it.len(),
        });
    }
    if let Some((index, &value)) = mz.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        out.push(SpectrumFault::NonFinite {
            column: "mz",
            index,
            value,
        });
    }
    if let Some((index, &value)) = mz.iter().enumerate().find(|(_, &v)| v <= 0.0) {
        out.push(SpectrumFault::NonPositive {
            column: "mz",
            index,
            value,
        });
    }
    // `!(b > a)` also catches NaN neighbours, already reported above; skip those.
    if let Some(i) =
        (1..mz.len()).find(|&i| mz[i] <= mz[i - 1] && mz[i].is_finite() && mz[i - 1].is_finite())
    {
        out.push(SpectrumFault::NotAscending {
            index: i,
            previous: mz[i - 1],
            value: mz[i],
        });
    }
    let mut intensities_ok = true;
    if let Some((index, &value)) = it.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        intensities_ok = false;
        out.push(SpectrumFault::NonFinite {
            column: "intensity",
            index,
            value: value.into(),
        });
    }
    if let Some((index, &value)) = it.iter().enumerate().find(|(_, &v)| v <= 0.0) {
        intensities_ok = false;
        out.push(SpectrumFault::NonPositive {
            column: "intensity",
            index,
            value: value.into(),
        });
    }
    let peaks = mz.len().max(it.len());
    if peaks < rules.min_peaks {
        out.push(SpectrumFault::TooFewPeaks {
            peaks,
            min: rules.min_peaks,
        });
    }
    if let Some(max) = rules.max_peaks.filter(|&max| peaks > max) {
        out.push(SpectrumFault::TooManyPeaks { peaks, max });
    }
    let p = s.precursor_mz;
    if !(p.is_finite() && p > 0.0) || rules.max_precursor_mz.is_some_and(|max| p > max) {
        out.push(SpectrumFault::Precursor {
            value: p,
            max: rules.max_precursor_mz,
        });
    }
    if let Some(wanted) = rules.quality_format {
        let found = s.gems_format.and_then(GemsFormat::from_str_name);
        if found.is_none_or(|f| f > wanted) {
            out.push(SpectrumFault::QualityFormat {
                found: s.gems_format.map(str::to_string),
                wanted,
            });
        }
    }
    if intensities_ok && !it.is_empty() {
        if let Some(mode) = rules.normalize {
            out.extend(normalisation_fault(it, mode));
        }
    }
}

/// A fault when the (finite, positive) intensities `it` are not normalised as `mode` says.
fn normalisation_fault(it: &[f32], mode: Normalize) -> Option<SpectrumFault> {
    let values = it.iter().map(|&v| f64::from(v));
    let (value, ok) = match mode {
        Normalize::None => (0.0, true),
        Normalize::Max | Normalize::Sqrt => {
            let max = values.fold(f64::NEG_INFINITY, f64::max);
            (max, max == 1.0)
        }
        Normalize::Sum => {
            let sum: f64 = values.sum();
            (sum, (sum - 1.0).abs() <= NORM_TOLERANCE)
        }
        Normalize::L2 => {
            let norm = values.map(|v| v * v).sum::<f64>().sqrt();
            (norm, (norm - 1.0).abs() <= NORM_TOLERANCE)
        }
    };
    (!ok).then_some(SpectrumFault::Normalisation { mode, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use msms_kernels::{extend_intensity, extend_intensity_at, top_k, Orientation, PeakBlock};

    fn rules(normalize: Normalize) -> SpectrumRules {
        SpectrumRules {
            normalize: Some(normalize),
            min_peaks: 1,
            max_peaks: None,
            max_precursor_mz: None,
            quality_format: None,
        }
    }

    fn faults(mz: &[f64], it: &[f32], r: &SpectrumRules) -> Vec<SpectrumFault> {
        let mut out = Vec::new();
        check_spectrum(
            &SpectrumView {
                num_peaks: mz.len() as u16,
                mz,
                intensity: it,
                precursor_mz: 500.0,
                gems_format: None,
            },
            r,
            &mut out,
        );
        out
    }

    /// Deterministic pseudo-random intensities spanning many orders of magnitude.
    fn intensities(seed: u64, n: usize) -> Vec<f64> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                10f64.powf(u * 8.0 - 2.0)
            })
            .collect()
    }

    /// Whatever the kernels write passes the check, for every mode and peak count, with and
    /// without top-k: the tolerances match what the writer guarantees.
    #[test]
    fn kernel_output_passes_for_every_mode() {
        for mode in Normalize::ALL {
            for n in [1usize, 2, 3, 7, 64, 128, 1000] {
                for seed in 0..20 {
                    let mz: Vec<f64> = (0..n).map(|i| 50.0 + i as f64 * 0.5).collect();
                    let it = intensities(seed * 1000 + n as u64, n);
                    let mut block = mz.clone();
                    block.extend(&it);
                    let block = PeakBlock::new(&block[..], Orientation::Planar);
                    let mut out = Vec::new();
                    extend_intensity(block, n, mode, &mut out);
                    assert_eq!(faults(&mz, &out, &rules(mode)), vec![], "{mode} n {n}");
                    if n > 3 {
                        let mut idx = Vec::new();
                        top_k(block, n, 3, &mut idx);
                        let mut out = Vec::new();
                        extend_intensity_at(block, &idx, mode, &mut out);
                        let kept: Vec<f64> = idx.iter().map(|&i| mz[i as usize]).collect();
                        assert_eq!(faults(&kept, &out, &rules(mode)), vec![], "{mode} top 3");
                    }
                }
            }
        }
    }

    #[test]
    fn each_invariant_is_named() {
        let max = rules(Normalize::Max);
        assert!(matches!(
            faults(&[100.0, 200.0], &[f32::NAN, 1.0], &max)[..],
            [SpectrumFault::NonFinite {
                column: "intensity",
                index: 0,
                ..
            }]
        ));
        assert_eq!(
            faults(&[200.0, 100.0], &[0.5, 1.0], &max),
            vec![SpectrumFault::NotAscending {
                index: 1,
                previous: 200.0,
                value: 100.0
            }]
        );
        // Equal m/z are rejected by the pipeline (duplicate_mz): strictly ascending.
        assert!(matches!(
            faults(&[100.0, 100.0], &[0.5, 1.0], &max)[..],
            [SpectrumFault::NotAscending { index: 1, .. }]
        ));
        assert!(matches!(
            faults(&[-1.0, 100.0], &[0.5, 1.0], &max)[..],
            [SpectrumFault::NonPositive { column: "mz", .. }]
        ));
        assert!(matches!(
            faults(&[1.0, 100.0], &[0.0, 1.0], &max)[..],
            [SpectrumFault::NonPositive {
                column: "intensity",
                ..
            }]
        ));
        assert!(matches!(
            faults(&[1.0, 100.0], &[0.5, 0.999_999_9], &max)[..],
            [SpectrumFault::Normalisation {
                mode: Normalize::Max,
                ..
            }]
        ));
        assert!(matches!(
            faults(&[1.0, 100.0], &[0.5, 0.6], &rules(Normalize::Sum))[..],
            [SpectrumFault::Normalisation {
                mode: Normalize::Sum,
                ..
            }]
        ));
        assert!(matches!(
            faults(&[1.0, 100.0], &[0.5, 0.5], &rules(Normalize::L2))[..],
            [SpectrumFault::Normalisation {
                mode: Normalize::L2,
                ..
            }]
        ));
        assert_eq!(
            faults(&[1.0, 100.0], &[5.0, 7.0], &rules(Normalize::None)),
            vec![]
        );
        assert!(matches!(
            faults(&[], &[], &max)[..],
            [SpectrumFault::TooFewPeaks { peaks: 0, min: 1 }]
        ));
        let capped = SpectrumRules {
            max_peaks: Some(1),
            ..max
        };
        assert!(matches!(
            faults(&[1.0, 2.0], &[0.5, 1.0], &capped)[..],
            [SpectrumFault::TooManyPeaks { peaks: 2, max: 1 }]
        ));
    }

    #[test]
    fn rules_follow_the_settings() {
        let (r, unknown) = SpectrumRules::from_settings(&serde_json::json!({
            "normalize": "sqrt", "min_peaks": 5, "max_peaks": 3, "max_precursor_mz": 900.5,
            "quality_format": "B"
        }));
        assert!(unknown.is_empty());
        assert_eq!(r.normalize, Some(Normalize::Sqrt));
        // Top-k after validation can leave fewer than min_peaks.
        assert_eq!(r.min_peaks, 3);
        assert_eq!(r.max_peaks, Some(3));
        assert_eq!(r.max_precursor_mz, Some(900.5));
        assert_eq!(r.quality_format, Some(GemsFormat::B));
        let (r, unknown) = SpectrumRules::from_settings(&serde_json::json!({
            "normalize": "zscore", "min_peaks": 0
        }));
        assert_eq!(r.normalize, None);
        assert_eq!(r.min_peaks, 1);
        assert_eq!(
            unknown,
            vec![ProblemKind::Setting {
                key: "normalize",
                value: "\"zscore\"".into()
            }]
        );
    }
}
