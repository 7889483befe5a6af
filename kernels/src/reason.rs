//! Rejection reasons, in priority order.

use std::fmt;

/// Why a spectrum was rejected.
///
/// Declaration order is priority order: [`unpad_validate`](crate::unpad_validate) reports
/// the first applicable reason. [`as_str`](Self::as_str) gives the `snake_case` name used in
/// manifests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// No real peaks: every slot is padding.
    Empty,
    /// Some m/z or intensity is NaN or ±Inf.
    NonFinite,
    /// A zero entry `(0, 0)` followed by a real peak.
    PaddingGap,
    /// Some m/z is `<= 0`.
    NonPositiveMz,
    /// Some intensity is `<= 0`.
    NonPositiveIntensity,
    /// Two consecutive peaks have equal m/z.
    DuplicateMz,
    /// Some m/z is smaller than the one before it.
    UnsortedMz,
    /// Precursor m/z is not finite, `<= 0`, or above the configured maximum.
    BadPrecursor,
    /// Fewer real peaks than the configured minimum.
    TooFewPeaks,
    /// Below the GeMS quality format asked for. Never returned by
    /// [`unpad_validate`](crate::unpad_validate): the caller assigns it after
    /// [`gems_format`](crate::quality::gems_format).
    QualityFormat,
}

impl RejectReason {
    /// Every reason, in priority order (`ALL[r as usize] == r`).
    pub const ALL: [RejectReason; 10] = [
        Self::Empty,
        Self::NonFinite,
        Self::PaddingGap,
        Self::NonPositiveMz,
        Self::NonPositiveIntensity,
        Self::DuplicateMz,
        Self::UnsortedMz,
        Self::BadPrecursor,
        Self::TooFewPeaks,
        Self::QualityFormat,
    ];

    /// The reasons [`unpad_validate`](crate::unpad_validate) reports, in priority order: all
    /// but [`QualityFormat`](Self::QualityFormat).
    pub const VALIDATION: [RejectReason; 9] = [
        Self::Empty,
        Self::NonFinite,
        Self::PaddingGap,
        Self::NonPositiveMz,
        Self::NonPositiveIntensity,
        Self::DuplicateMz,
        Self::UnsortedMz,
        Self::BadPrecursor,
        Self::TooFewPeaks,
    ];

    /// The `snake_case` name used in manifests, e.g. `"non_positive_mz"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::NonFinite => "non_finite",
            Self::PaddingGap => "padding_gap",
            Self::NonPositiveMz => "non_positive_mz",
            Self::NonPositiveIntensity => "non_positive_intensity",
            Self::DuplicateMz => "duplicate_mz",
            Self::UnsortedMz => "unsorted_mz",
            Self::BadPrecursor => "bad_precursor",
            Self::TooFewPeaks => "too_few_peaks",
            Self::QualityFormat => "quality_format",
        }
    }

    /// Inverse of [`as_str`](Self::as_str); `None` for an unknown name (exact match only).
    pub fn from_str_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::RejectReason::{self, *};

    #[test]
    fn all_is_in_declaration_order() {
        for (i, r) in RejectReason::ALL.into_iter().enumerate() {
            assert_eq!(r as usize, i);
        }
        assert!(RejectReason::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn names() {
        let names: Vec<&str> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "empty",
                "non_finite",
                "padding_gap",
                "non_positive_mz",
                "non_positive_intensity",
                "duplicate_mz",
                "unsorted_mz",
                "bad_precursor",
                "too_few_peaks",
                "quality_format",
            ]
        );
        assert_eq!(DuplicateMz.to_string(), "duplicate_mz");
    }

    #[test]
    fn name_round_trip() {
        for r in RejectReason::ALL {
            assert_eq!(RejectReason::from_str_name(r.as_str()), Some(r));
        }
        assert_eq!(RejectReason::from_str_name("Empty"), None);
        assert_eq!(RejectReason::from_str_name(""), None);
        assert_eq!(RejectReason::from_str_name("empty "), None);
        assert_eq!(
            RejectReason::from_str_name("too_few_peaks"),
            Some(TooFewPeaks)
        );
    }
}
