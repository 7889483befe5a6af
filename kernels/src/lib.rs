//! Pure peak-list kernels for `msms-shards`: unpad, validate, select, normalise and bin one
//! spectrum's stored peak block, classify it by GeMS quality format, and undo HDF5's shuffle
//! filter. Slices in, caller-provided `Vec`s or slices out; no I/O, no HDF5 library, no
//! serde, and no allocation inside the hot loops.
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
//! [`extend_intensity`] appends `f32` intensities transformed by a [`Normalize`] mode, computed
//! in `f64` and rounded once: as stored ([`Normalize::None`]), divided by the maximum
//! ([`Normalize::Max`], so the base peak is exactly `1.0`), by the sum ([`Normalize::Sum`]), by
//! the L2 norm ([`Normalize::L2`]), or square-rooted then divided by the largest root
//! ([`Normalize::Sqrt`]). [`extend_mz_at`] and [`extend_intensity_at`] do the same for a
//! selection of peaks, e.g. the `k` most intense ones from [`top_k`].
//!
//! # Other kernels
//!
//! - [`top_k`]: the `k` most intense peaks, as slot indices in m/z order ([`topk`]).
//! - [`bin_dense`], [`bin_sparse`], [`bin_dense_zeroed`]: peaks onto a fixed m/z grid
//!   ([`BinSpec`], [`BinAggregation`]; the [`bin`] module documents the definition and how it
//!   differs from ms2deepscore and DreaMS).
//! - [`gems_format`], [`gems_format_validated`]: the strictest GeMS quality format
//!   ([`GemsFormat`] A, B or C) a spectrum meets, as DreaMS `dformats` ([`quality`]).
//! - [`unshuffle`], [`shuffle`](fn@shuffle), [`gather_chunk`]: HDF5's shuffle filter and the gather of
//!   decoded chunks into rows ([`shuffle`](mod@shuffle)).
//! - [`names`]: the one name table of each keyword enum ([`Normalize`], [`BinAggregation`],
//!   [`GemsFormat`]), parsed exactly ([`Keyword::from_name`]) or leniently (`FromStr`).
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
//! The hot kernels have two tiers with bit-identical results. The default entry points use
//! portable SIMD through the `wide` crate (`f64x4`/`f32x8` lanes for planar blocks: the
//! padding scan and the "all valid?" check of [`unpad_validate`], the maximum of
//! [`extend_intensity`], the counting passes of [`top_k`], the bin-index pass of the binning
//! kernels, the byte transpose of [`unshuffle`]); the scalar tier handles interleaved blocks,
//! the inputs a SIMD path does not cover (it falls back, e.g. an invalid block is re-scanned to
//! name its reason), and is callable directly through [`portable`] (and
//! [`bin_dense_scalar`](bin::bin_dense_scalar)/[`bin_sparse_scalar`](bin::bin_sparse_scalar), [`unshuffle_scalar`]) by callers that must avoid
//! SIMD and by the benches. The instruction set is fixed at compile time ([`simd_level`]
//! reports it). The test suite checks every kernel bit for bit against a naive oracle
//! (test-only) and the scalar tier on random blocks (proptest).

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
