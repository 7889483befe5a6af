//! Pure peak-list kernels for `msms-shards`: unpad, validate and normalise one spectrum's
//! stored peak block. Slices in, caller-provided `Vec`s out; no I/O, no HDF5, and no
//! allocation inside the hot loops.
//!
//! # Data model
//!
//! A stored spectrum is a row of `2 * P` values of type `T` ([`PeakValue`]: `f32` or `f64`)
//! holding `P` peak *slots* (GeMS uses `P = 128`). The [`Orientation`] says how the row is
//! laid out: [`Orientation::Planar`] (GeMS `spectrum`, shape `(N, 2, P)`: `P` m/z values then
//! `P` intensities) or [`Orientation::Interleaved`] (older "high form" `spectra`, shape
//! `(N, P, 2)`: m/z and intensity alternate). [`PeakBlock`] wraps one such row.
//!
//! # Padding
//!
//! Real peaks occupy a prefix of the slots; the rest are *zero entries*, slots whose m/z and
//! intensity both compare equal to `0.0` (`-0.0` counts as zero, NaN does not).
//! [`unpadded_len`] is the index just after the last slot that is not a zero entry, so
//! trailing zero entries are padding and everything before them is treated as data.
//!
//! # Validation
//!
//! [`unpad_validate`] unpads, then checks the prefix of `n = unpadded_len` slots against the
//! DreaMS `is_valid_peak_list` rules plus per-spectrum [`ValidationRules`]. It returns
//! `Ok(n)` or the *first* applicable [`RejectReason`] in declaration (= priority) order:
//!
//! 1. [`Empty`](RejectReason::Empty): `n == 0`.
//! 2. [`NonFinite`](RejectReason::NonFinite): some m/z or intensity is NaN or ±Inf.
//! 3. [`PaddingGap`](RejectReason::PaddingGap): some slot in the prefix is a zero entry,
//!    i.e. padding followed by a real peak.
//! 4. [`NonPositiveMz`](RejectReason::NonPositiveMz): some m/z `<= 0`.
//! 5. [`NonPositiveIntensity`](RejectReason::NonPositiveIntensity): some intensity `<= 0`.
//! 6. [`DuplicateMz`](RejectReason::DuplicateMz): some `mz[i] == mz[i - 1]`.
//! 7. [`UnsortedMz`](RejectReason::UnsortedMz): some `mz[i] < mz[i - 1]`.
//! 8. [`BadPrecursor`](RejectReason::BadPrecursor): precursor m/z not finite, `<= 0`, or
//!    above [`ValidationRules::max_precursor_mz`] when set.
//! 9. [`TooFewPeaks`](RejectReason::TooFewPeaks): `n < ValidationRules::min_peaks`.
//!
//! # Output
//!
//! [`extend_mz`] appends m/z values widened to `f64` (exact for `f32` input).
//! [`extend_intensity`] appends `f32` intensities, either as stored (one rounding from `f64`)
//! or divided by the maximum of the spectrum in `f64` ([`Normalize::Max`]), so the base peak
//! is exactly `1.0`.
//!
//! # Example
//!
//! ```
//! use msms_kernels::*;
//!
//! // Two peaks and one padding slot, GeMS planar layout: m/z row, then intensity row.
//! let row = [100.5f32, 200.25, 0.0, 4.0, 8.0, 0.0];
//! let block = PeakBlock::new(&row, Orientation::Planar);
//! let n = unpad_validate(block, 450.0, &ValidationRules::default()).unwrap();
//! assert_eq!(n, 2);
//!
//! let (mut mz, mut intensity) = (Vec::new(), Vec::new());
//! extend_mz(block, n, &mut mz);
//! extend_intensity(block, n, Normalize::Max, &mut intensity);
//! assert_eq!(mz, [100.5, 200.25]);
//! assert_eq!(intensity, [0.5, 1.0]);
//!
//! let unsorted = [2.0f64, 1.0, 5.0, 5.0];
//! let block = PeakBlock::new(&unsorted, Orientation::Planar);
//! let verdict = unpad_validate(block, 450.0, &ValidationRules::default());
//! assert_eq!(verdict, Err(RejectReason::UnsortedMz));
//! assert_eq!(RejectReason::UnsortedMz.as_str(), "unsorted_mz");
//! ```
//!
//! # Structure
//!
//! Each public kernel is a fast scalar implementation written as a single pass that is
//! amenable to a later `wide` SIMD path; the test suite checks every kernel bit-for-bit
//! against a naive oracle (test-only) on random blocks.

#![warn(missing_docs)]

mod block;
pub mod names;
mod normalize;
mod reason;
mod validate;

pub mod bin;
pub mod quality;
pub mod shuffle;
pub mod topk;

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod testutil;

pub use bin::{bin_dense, bin_dense_zeroed, bin_sparse, BinAggregation, BinSpec, BinSpecError};
pub use block::{simd_level, Orientation, PeakBlock, PeakValue};
pub use names::{Keyword, UnknownName};
pub use normalize::{extend_intensity, extend_intensity_at, extend_mz, extend_mz_at, Normalize};
pub use quality::{gems_format, gems_format_validated, GemsFormat};
pub use reason::RejectReason;
pub use shuffle::{gather_chunk, shuffle, unshuffle, unshuffle_scalar};
pub use topk::top_k;
pub use validate::{portable, unpad_validate, unpadded_len, ValidationRules};
