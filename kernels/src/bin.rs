//! Binning of peak lists into fixed m/z grids (dense or sparse).
//!
//! # Definition
//!
//! A [`BinSpec`] describes `bins` bins of width `W` starting at `MIN`:
//!
//! - **Bin count**: `q = (MAX - MIN) / W` in `f64`; `bins = round(q)` when `q` is within
//!   `1e-9 * round(q)` of `round(q)` (a rounding guard), else `floor(q)`. `bins` must be in
//!   `1..=10_000_000` ([`BinSpec::MAX_BINS`]).
//! - **Kept peaks**: `MIN <= mz < MAX` (NaN m/z is dropped).
//! - **Bin index**: `min(floor((mz - MIN) / W), bins - 1)`, the division done in `f64`.
//! - **Value**: the aggregation ([`BinAggregation::Sum`] or [`BinAggregation::Max`]) of
//!   `intensity ^ P` over the bin's peaks, accumulated in `f64` in input (= m/z) order starting
//!   from `0.0`, then rounded once to `f32`. Empty bins are `0.0`. For max the step is
//!   `acc = if v > acc { v } else { acc }`, i.e. Python's `max(acc, v)`.
//! - `intensity ^ P` is `i` for `P = 1`, `i.sqrt()` for `P = 0.5` (correctly rounded) and
//!   `i.powf(P)` otherwise, on the `f32` intensity widened to `f64`.
//!
//! # References and their differences
//!
//! - ms2deepscore `vectorize_spectrum` (matchms/ms2deepscore `ms2deepscore/tensorize_spectra.py`,
//!   commit `03f6a536`): `num_bins = int((max_mz - min_mz) / mz_bin_width)`; a peak is used when
//!   `min_mz <= mz < max_mz`; `bin_index = int((mz - min_mz) / mz_bin_width)`;
//!   `vector[bin_index] = max(vector[bin_index], intensity ** intensity_scaling)` on a `float64`
//!   vector of zeros. Identical to [`BinAggregation::Max`] with `P = intensity_scaling` except:
//!   (1) `num_bins` is truncated without a guard, so e.g. `W = 0.1` over `[0.7, 1000)` gives
//!   `9992.999999999998 → 9992` bins where we give 9,993 (over `[10, 1000)` both give 9,900,
//!   because `990 / 0.1` happens to round to exactly `9900.0`); (2) with such an under-count, or
//!   when `(mz - min) / W` rounds up to `num_bins` for `mz` just below `max`, its numba code
//!   indexes one past the end (no bounds check), where we clamp to the last bin;
//!   (3) it returns `float64`, we round to `f32`; (4) it computes `pow(x, 0.5)`, we use `sqrt`,
//!   which can only differ when libm's `pow` is not correctly rounded, and then by 1 `f64` ulp
//!   before the `f32` rounding.
//! - DreaMS `_bin_peak_list` (pluskal-lab/DreaMS `dreams/utils/spectra.py`, commit `1dce78fa`):
//!   `num_bins = int(max_mz / bin_step)`; for each bin `bin_ub` starts at `bin_step` and grows by
//!   repeated `bin_ub += bin_step`; a peak counts when `bin_ub - bin_step <= mz < bin_ub`;
//!   `bin_intensity += intensities[i]` from `0.` in peak order. Identical to
//!   [`BinAggregation::Sum`] with `MIN = 0`, `P = 1` except: (1) same unguarded bin count;
//!   (2) its bin edges come from accumulated additions (`k * bin_step` with drift), ours from one
//!   division, so a peak within a few ulps of an edge can land in the neighbouring bin (and a
//!   peak can fall in zero or two of its bins when two consecutive edges disagree);
//!   (3) it returns `float64`. On peaks that are not within rounding distance of an edge the
//!   results are equal after the `f32` rounding.
//!
//! # Implementation
//!
//! For m/z-sorted input (validated peaks) the bin indices are non-decreasing, so each bin's
//! peaks are a contiguous run aggregated in an `f64` register and written once: no scratch
//! buffer, no allocation. Unsorted input is detected on the fly and redone with a slower
//! allocation-free path (`O(n * distinct bins)`) with the same result.
//!
//! The default entry points ([`bin_dense`], [`bin_sparse`], [`bin_dense_zeroed`]) are the
//! `wide` tier ([`bin_dense_simd`] / [`bin_sparse_simd`]). It works on blocks of 64 peaks:
//! quotient, clamp and floor of four peaks per vector operation (the float-to-integer step by
//! the `2^52` trick, not four saturating scalar conversions), `sqrt` vectorised (in `f32` for
//! `max`, provably the same result), then a run-length pass that emits a whole block at once
//! when no two of its peaks share a bin (most blocks on a 0.1-wide grid) and falls back to
//! peak-by-peak runs otherwise. The scalar tier ([`bin_dense_scalar`] / [`bin_sparse_scalar`])
//! is one division and one branchy run step per peak; the `wide` tier falls back to it for input
//! it does not handle (NaN m/z between kept peaks, grids of 2^31 bins or more).
//!
//! Dense output writes `spec.bins` floats per spectrum: on a 9,900-bin grid zeroing the 39.6 KB
//! row alone runs at ~580 M peaks/s (128 peaks per row), so [`bin_dense`] is bounded by the
//! memset; [`bin_dense_zeroed`] skips it for rows that are already zero (the pipeline's
//! freshly zeroed Arrow buffer). Figures: `cargo bench -p msms-kernels --bench bin` and the
//! README.

use std::fmt;

use wide::{f32x4, f64x4};

use crate::names::{keyword_text, Keyword};

/// How peaks falling in the same bin are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BinAggregation {
    /// Sum of `intensity ^ P` (DreaMS `_bin_peak_list`). The default.
    #[default]
    Sum,
    /// Maximum of `intensity ^ P` (ms2deepscore `vectorize_spectrum`).
    Max,
}

impl BinAggregation {
    /// Both, in declaration order.
    pub const ALL: [BinAggregation; 2] = [BinAggregation::Sum, BinAggregation::Max];

    /// `"sum"` or `"max"`.
    pub fn as_str(self) -> &'static str {
        self.name()
    }

    /// Inverse of [`as_str`](Self::as_str); exact, case-sensitive.
    pub fn from_str_name(name: &str) -> Option<BinAggregation> {
        Self::from_name(name)
    }
}

impl Keyword for BinAggregation {
    const WHAT: &'static str = "bin aggregation";
    const NAMES: &'static [(Self, &'static str)] = &[(Self::Sum, "sum"), (Self::Max, "max")];
}

keyword_text!(BinAggregation);

/// A validated binning grid. Build it with [`BinSpec::new`]; see the [module docs](self).
///
/// The fields are public for reading. A hand-built spec with inconsistent fields never causes
/// memory unsafety: indices are always clamped to `bins - 1`, and `bins == 0` keeps no peak.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BinSpec {
    /// Lower edge `MIN` (inclusive).
    pub min: f64,
    /// Upper edge `MAX` (exclusive).
    pub max: f64,
    /// Bin width `W`.
    pub width: f64,
    /// Number of bins (guarded whole widths in `[MIN, MAX)`).
    pub bins: usize,
    /// How a bin's peaks are combined.
    pub aggregation: BinAggregation,
    /// Intensity exponent `P` (ms2deepscore `intensity_scaling`).
    pub power: f64,
}

/// Why [`BinSpec::new`] refused its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum BinSpecError {
    /// The width is not finite or not `> 0`.
    Width(f64),
    /// `min` or `max` is not finite, or `min >= max`.
    Range {
        /// Requested lower edge.
        min: f64,
        /// Requested upper edge.
        max: f64,
    },
    /// The range holds no whole width.
    NoBins {
        /// Requested lower edge.
        min: f64,
        /// Requested upper edge.
        max: f64,
        /// Requested width.
        width: f64,
    },
    /// More than [`BinSpec::MAX_BINS`] bins (the value is `(max - min) / width`).
    TooManyBins(f64),
    /// The power is not finite or not `> 0`.
    Power(f64),
}

impl fmt::Display for BinSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BinSpecError::Width(w) if w.is_finite() => write!(f, "bin width must be > 0, got {w}"),
            BinSpecError::Width(w) => write!(f, "bin width must be finite, got {w}"),
            BinSpecError::Range { min, max } if min.is_finite() && max.is_finite() => {
                write!(f, "bin range minimum must be < maximum, got {min}:{max}")
            }
            BinSpecError::Range { min, max } => {
                write!(f, "bin range bounds must be finite, got {min}:{max}")
            }
            BinSpecError::NoBins { min, max, width } => write!(
                f,
                "bin range {min}:{max} holds no whole bin of width {width}"
            ),
            BinSpecError::TooManyBins(q) => write!(
                f,
                "too many bins: {q} > {} (increase the bin width or narrow the range)",
                BinSpec::MAX_BINS
            ),
            BinSpecError::Power(p) => write!(f, "bin scale power must be finite and > 0, got {p}"),
        }
    }
}

impl std::error::Error for BinSpecError {}

impl BinSpec {
    /// Largest accepted bin count.
    pub const MAX_BINS: usize = 10_000_000;

    /// Relative tolerance of the bin-count rounding guard.
    pub const BIN_COUNT_TOLERANCE: f64 = 1e-9;

    /// Validate the arguments and compute the guarded bin count.
    ///
    /// ```
    /// use msms_kernels::bin::{BinAggregation, BinSpec};
    /// let spec = BinSpec::new(10.0, 1000.0, 0.1, BinAggregation::Max, 0.5).unwrap();
    /// assert_eq!(spec.bins, 9_900);
    /// // Naively int((1000 - 0.7) / 0.1) = int(9992.999999999998) = 9992.
    /// assert_eq!(BinSpec::new(0.7, 1000.0, 0.1, BinAggregation::Sum, 1.0).unwrap().bins, 9_993);
    /// let err = BinSpec::new(0.0, 1.0, -1.0, BinAggregation::Sum, 1.0).unwrap_err();
    /// assert_eq!(err.to_string(), "bin width must be > 0, got -1");
    /// ```
    pub fn new(
        min: f64,
        max: f64,
        width: f64,
        aggregation: BinAggregation,
        power: f64,
    ) -> Result<BinSpec, BinSpecError> {
        if !(width.is_finite() && width > 0.0) {
            return Err(BinSpecError::Width(width));
        }
        if !(min.is_finite() && max.is_finite() && min < max) {
            return Err(BinSpecError::Range { min, max });
        }
        if !(power.is_finite() && power > 0.0) {
            return Err(BinSpecError::Power(power));
        }
        let q = (max - min) / width;
        if q > Self::MAX_BINS as f64 + 1.0 {
            // Also catches q = inf (max - min overflowing, or a subnormal width).
            return Err(BinSpecError::TooManyBins(q));
        }
        let bins = guarded_count(q);
        if bins == 0 {
            return Err(BinSpecError::NoBins { min, max, width });
        }
        if bins > Self::MAX_BINS {
            return Err(BinSpecError::TooManyBins(q));
        }
        Ok(BinSpec {
            min,
            max,
            width,
            bins,
            aggregation,
            power,
        })
    }
}

/// `round(q)` if `q` is within the relative tolerance of it, else `floor(q)`; `0 <= q` finite.
fn guarded_count(q: f64) -> usize {
    let r = q.round();
    let c = if (q - r).abs() <= BinSpec::BIN_COUNT_TOLERANCE * r {
        r
    } else {
        q.floor()
    };
    c as usize
}

/// Bin `mz` / `intensity` into `out` (dense, `out.len() == spec.bins`, zeroed first).
///
/// Panics when `out.len() != spec.bins` or `mz.len() != intensity.len()`.
///
/// ```
/// use msms_kernels::bin::{bin_dense, BinAggregation, BinSpec};
/// let spec = BinSpec::new(0.0, 4.0, 1.0, BinAggregation::Sum, 1.0).unwrap();
/// let mut out = [9.0f32; 4];
/// bin_dense(&spec, &[0.0, 1.5, 1.75, 4.0], &[1.0, 2.0, 3.0, 8.0], &mut out);
/// assert_eq!(out, [1.0, 5.0, 0.0, 0.0]);
/// ```
pub fn bin_dense(spec: &BinSpec, mz: &[f64], intensity: &[f32], out: &mut [f32]) {
    bin_dense_simd(spec, mz, intensity, out);
}

/// [`bin_dense`] into a row that is already all zeros (e.g. a freshly zeroed Arrow buffer):
/// skips zeroing `spec.bins` floats, which costs more than binning 128 peaks on a 9,900-bin
/// grid. The result is unspecified (but memory-safe) when `out` is not all zeros.
///
/// ```
/// use msms_kernels::bin::{bin_dense_zeroed, BinAggregation, BinSpec};
/// let spec = BinSpec::new(0.0, 4.0, 1.0, BinAggregation::Sum, 1.0).unwrap();
/// let mut out = [0.0f32; 4];
/// bin_dense_zeroed(&spec, &[0.0, 1.5, 1.75, 4.0], &[1.0, 2.0, 3.0, 8.0], &mut out);
/// assert_eq!(out, [1.0, 5.0, 0.0, 0.0]);
/// ```
pub fn bin_dense_zeroed(spec: &BinSpec, mz: &[f64], intensity: &[f32], out: &mut [f32]) {
    check_dense(spec, mz, intensity, out);
    debug_assert!(
        out.iter().all(|&v| v.to_bits() == 0),
        "output row not zeroed"
    );
    dense_on_zeros::<Simd>(spec, mz, intensity, out);
}

/// Bin `mz` / `intensity`, **appending** the non-empty bins to `index` / `value` in ascending
/// index order. A bin is non-empty when at least one kept peak falls in it. Equal to the
/// non-empty entries of [`bin_dense`]. Panics when `mz.len() != intensity.len()`.
pub fn bin_sparse(
    spec: &BinSpec,
    mz: &[f64],
    intensity: &[f32],
    index: &mut Vec<u32>,
    value: &mut Vec<f32>,
) {
    bin_sparse_simd(spec, mz, intensity, index, value);
}

/// `wide` tier of [`bin_dense`] (what [`bin_dense`] runs; named for the tier benches).
pub fn bin_dense_simd(spec: &BinSpec, mz: &[f64], intensity: &[f32], out: &mut [f32]) {
    dense::<Simd>(spec, mz, intensity, out);
}

/// `wide` tier of [`bin_sparse`] (what [`bin_sparse`] runs; named for the tier benches).
pub fn bin_sparse_simd(
    spec: &BinSpec,
    mz: &[f64],
    intensity: &[f32],
    index: &mut Vec<u32>,
    value: &mut Vec<f32>,
) {
    sparse::<Simd>(spec, mz, intensity, index, value);
}

/// Portable scalar tier of [`bin_dense`] (same result bit for bit).
pub fn bin_dense_scalar(spec: &BinSpec, mz: &[f64], intensity: &[f32], out: &mut [f32]) {
    dense::<Scalar>(spec, mz, intensity, out);
}

/// Portable scalar tier of [`bin_sparse`] (same result bit for bit).
pub fn bin_sparse_scalar(
    spec: &BinSpec,
    mz: &[f64],
    intensity: &[f32],
    index: &mut Vec<u32>,
    value: &mut Vec<f32>,
) {
    sparse::<Scalar>(spec, mz, intensity, index, value);
}

fn check_dense(spec: &BinSpec, mz: &[f64], intensity: &[f32], out: &[f32]) {
    assert_eq!(
        out.len(),
        spec.bins,
        "dense output length must equal spec.bins"
    );
    assert_eq!(mz.len(), intensity.len(), "mz and intensity lengths differ");
}

fn dense<I: Indexer>(spec: &BinSpec, mz: &[f64], intensity: &[f32], out: &mut [f32]) {
    check_dense(spec, mz, intensity, out);
    out.fill(0.0);
    dense_on_zeros::<I>(spec, mz, intensity, out);
}

/// Tier `I` on a zeroed row; input it does not handle is redone on the next tier
/// ([`Indexer::SCALAR`]: the slow path, else the scalar tier).
fn dense_on_zeros<I: Indexer>(spec: &BinSpec, mz: &[f64], intensity: &[f32], out: &mut [f32]) {
    if spec.bins == 0 || mz.is_empty() {
        return;
    }
    let mut sink = Dense { out };
    if dispatch::<I, _>(spec, mz, intensity, &mut sink, true).is_err() {
        sink.out.fill(0.0);
        if I::SCALAR {
            let _ = dispatch::<I, _>(spec, mz, intensity, &mut sink, false);
        } else {
            dense_on_zeros::<Scalar>(spec, mz, intensity, sink.out);
        }
    }
}

fn sparse<I: Indexer>(
    spec: &BinSpec,
    mz: &[f64],
    intensity: &[f32],
    index: &mut Vec<u32>,
    value: &mut Vec<f32>,
) {
    assert_eq!(mz.len(), intensity.len(), "mz and intensity lengths differ");
    if spec.bins == 0 || mz.is_empty() {
        return;
    }
    let start = index.len();
    let vstart = value.len();
    index.reserve(mz.len());
    value.reserve(mz.len());
    let mut sink = Sparse { index, value };
    if dispatch::<I, _>(spec, mz, intensity, &mut sink, true).is_err() {
        sink.index.truncate(start);
        sink.value.truncate(vstart);
        if I::SCALAR {
            let _ = dispatch::<I, _>(spec, mz, intensity, &mut sink, false);
        } else {
            sparse::<Scalar>(spec, mz, intensity, sink.index, sink.value);
        }
    }
}

/// Where finished bins go.
trait Sink {
    fn emit(&mut self, bin: u32, acc: f64);

    /// `emit(bins[k], A::step(0.0, vals[k]))` for each `k`: runs of one peak, `bins` strictly
    /// increasing.
    #[inline(always)]
    fn emit_singles<A: Agg>(&mut self, bins: &[u32], vals: &[f64]) {
        for (&b, &v) in bins.iter().zip(vals) {
            self.emit(b, A::step(0.0, v));
        }
    }
}

struct Dense<'a> {
    out: &'a mut [f32],
}

impl Sink for Dense<'_> {
    #[inline(always)]
    fn emit(&mut self, bin: u32, acc: f64) {
        self.out[bin as usize] = acc as f32;
    }
}

struct Sparse<'a> {
    index: &'a mut Vec<u32>,
    value: &'a mut Vec<f32>,
}

impl Sink for Sparse<'_> {
    #[inline(always)]
    fn emit(&mut self, bin: u32, acc: f64) {
        self.index.push(bin);
        self.value.push(acc as f32);
    }

    #[inline(always)]
    fn emit_singles<A: Agg>(&mut self, bins: &[u32], vals: &[f64]) {
        self.index.extend_from_slice(bins);
        self.value
            .extend(vals.iter().map(|&v| A::step(0.0, v) as f32));
    }
}

/// Aggregation step (monomorphised so the hot loop has no branch on the kind).
trait Agg {
    /// `step` is `max` (lets the `wide` tier take `sqrt` in `f32`, see [`Simd`]).
    const IS_MAX: bool = false;
    fn step(acc: f64, v: f64) -> f64;
}

struct SumAgg;
impl Agg for SumAgg {
    #[inline(always)]
    fn step(acc: f64, v: f64) -> f64 {
        acc + v
    }
}

struct MaxAgg;
impl Agg for MaxAgg {
    const IS_MAX: bool = true;
    #[inline(always)]
    fn step(acc: f64, v: f64) -> f64 {
        if v > acc {
            v
        } else {
            acc
        }
    }
}

/// `intensity ^ P` (monomorphised for the common exponents).
trait Pow {
    fn apply(x: f64, p: f64) -> f64;

    /// `out[k] = apply(intensity[k])` (`out.len() == intensity.len()`).
    #[inline(always)]
    fn fill(intensity: &[f32], out: &mut [f64], p: f64) {
        for (o, &i) in out.iter_mut().zip(intensity) {
            *o = Self::apply(f64::from(i), p);
        }
    }
}

struct PowOne;
impl Pow for PowOne {
    #[inline(always)]
    fn apply(x: f64, _: f64) -> f64 {
        x
    }
}

struct PowSqrt;
impl Pow for PowSqrt {
    #[inline(always)]
    fn apply(x: f64, _: f64) -> f64 {
        x.sqrt()
    }

    /// `sqrtpd` is correctly rounded, as `f64::sqrt`: same bits.
    #[inline(always)]
    fn fill(intensity: &[f32], out: &mut [f64], _: f64) {
        let mut i4 = intensity.chunks_exact(4);
        let mut o4 = out.chunks_exact_mut(4);
        for (i, o) in (&mut i4).zip(&mut o4) {
            let v = f64x4::from([
                f64::from(i[0]),
                f64::from(i[1]),
                f64::from(i[2]),
                f64::from(i[3]),
            ]);
            o.copy_from_slice(&v.sqrt().to_array());
        }
        for (&i, o) in i4.remainder().iter().zip(o4.into_remainder()) {
            *o = f64::from(i).sqrt();
        }
    }
}

struct PowAny;
impl Pow for PowAny {
    #[inline(always)]
    fn apply(x: f64, p: f64) -> f64 {
        x.powf(p)
    }
}

/// `intensity ^ P` as defined in the module docs (used by the slow path and the oracle).
#[inline]
fn scaled(intensity: f32, p: f64) -> f64 {
    let x = f64::from(intensity);
    if p == 1.0 {
        x
    } else if p == 0.5 {
        x.sqrt()
    } else {
        x.powf(p)
    }
}

/// Marker: the input was not sorted by bin.
struct Unsorted;

/// Marker: this tier does not handle this input; the caller resets the sink and redoes it on
/// the next one (the `wide` tier → the scalar tier → the slow path for unsorted input).
struct Fallback;

impl From<Unsorted> for Fallback {
    fn from(_: Unsorted) -> Fallback {
        Fallback
    }
}

fn dispatch<I: Indexer, S: Sink>(
    spec: &BinSpec,
    mz: &[f64],
    intensity: &[f32],
    sink: &mut S,
    fast: bool,
) -> Result<(), Fallback> {
    macro_rules! go {
        ($agg:ty) => {
            if !fast {
                slow::<$agg, S>(spec, mz, intensity, sink);
                Ok(())
            } else if spec.power == 1.0 {
                I::run::<$agg, PowOne, S>(spec, mz, intensity, sink)
            } else if spec.power == 0.5 {
                I::run::<$agg, PowSqrt, S>(spec, mz, intensity, sink)
            } else {
                I::run::<$agg, PowAny, S>(spec, mz, intensity, sink)
            }
        };
    }
    match spec.aggregation {
        BinAggregation::Sum => go!(SumAgg),
        BinAggregation::Max => go!(MaxAgg),
    }
}

/// Run-length aggregation state for the sorted fast path.
struct Runs<'s, A, P, S> {
    sink: &'s mut S,
    cur: u32,
    acc: f64,
    started: bool,
    p: f64,
    _m: std::marker::PhantomData<(A, P)>,
}

impl<'s, A: Agg, P: Pow, S: Sink> Runs<'s, A, P, S> {
    fn new(sink: &'s mut S, p: f64) -> Self {
        Runs {
            sink,
            cur: 0,
            acc: 0.0,
            started: false,
            p,
            _m: std::marker::PhantomData,
        }
    }

    #[inline(always)]
    fn push(&mut self, bin: u32, intensity: f32) -> Result<(), Unsorted> {
        self.push_scaled(bin, P::apply(f64::from(intensity), self.p))
    }

    /// [`Runs::push`] of an already scaled value `v = intensity ^ P`.
    #[inline(always)]
    fn push_scaled(&mut self, bin: u32, v: f64) -> Result<(), Unsorted> {
        if bin == self.cur && self.started {
            self.acc = A::step(self.acc, v);
        } else {
            if self.started {
                if bin < self.cur {
                    return Err(Unsorted);
                }
                self.sink.emit(self.cur, self.acc);
            }
            self.started = true;
            self.cur = bin;
            self.acc = A::step(0.0, v);
        }
        Ok(())
    }

    /// Push a block. When its bins strictly increase and start after the current run (no two
    /// peaks share a bin: the common case for 128 peaks on a 9,900-bin grid), every peak but
    /// the last is its own finished run, emitted in bulk; otherwise peak by peak.
    #[inline(always)]
    fn push_block(&mut self, bins: &[u32], vals: &[f64]) -> Result<(), Unsorted> {
        let (Some(&first), Some(&last)) = (bins.first(), bins.last()) else {
            return Ok(());
        };
        let increasing = bins.windows(2).fold(true, |ok, w| ok & (w[0] < w[1]));
        if !increasing || (self.started && first <= self.cur) {
            for (&b, &v) in bins.iter().zip(vals) {
                self.push_scaled(b, v)?;
            }
            return Ok(());
        }
        if self.started {
            self.sink.emit(self.cur, self.acc);
        }
        let n = bins.len() - 1;
        self.sink.emit_singles::<A>(&bins[..n], &vals[..n]);
        self.started = true;
        self.cur = last;
        self.acc = A::step(0.0, vals[n]);
        Ok(())
    }

    fn finish(self) {
        if self.started {
            self.sink.emit(self.cur, self.acc);
        }
    }
}

/// Grid constants shared by both tiers.
#[derive(Clone, Copy)]
struct Grid {
    min: f64,
    max: f64,
    width: f64,
    /// `bins - 1` as `f64` (exact: bins ≤ 10^7 in any spec from `new`, and ≤ 2^53 anyway).
    last: f64,
}

impl Grid {
    fn new(spec: &BinSpec) -> Grid {
        Grid {
            min: spec.min,
            max: spec.max,
            width: spec.width,
            last: (spec.bins - 1) as f64,
        }
    }

    /// Bin of a kept peak: `min(floor((mz - min) / width), bins - 1)`, or `None` if dropped.
    #[inline(always)]
    fn bin(&self, mz: f64) -> Option<u32> {
        if self.min <= mz && mz < self.max {
            Some(self.clamp((mz - self.min) / self.width))
        } else {
            None
        }
    }

    /// `q >= 0`; truncation is floor. Saturating cast keeps a hand-built huge `bins` safe.
    #[inline(always)]
    fn clamp(&self, q: f64) -> u32 {
        (if q < self.last { q } else { self.last }) as u32
    }
}

/// One instantiation of the sorted fast path.
trait Indexer {
    /// The last tier before the slow path (unsorted input).
    const SCALAR: bool;

    fn run<A: Agg, P: Pow, S: Sink>(
        spec: &BinSpec,
        mz: &[f64],
        intensity: &[f32],
        sink: &mut S,
    ) -> Result<(), Fallback>;
}

/// Portable scalar tier: one division per peak.
struct Scalar;

impl Indexer for Scalar {
    const SCALAR: bool = true;

    fn run<A: Agg, P: Pow, S: Sink>(
        spec: &BinSpec,
        mz: &[f64],
        intensity: &[f32],
        sink: &mut S,
    ) -> Result<(), Fallback> {
        let g = Grid::new(spec);
        let mut runs = Runs::<A, P, S>::new(sink, spec.power);
        for (&m, &i) in mz.iter().zip(intensity) {
            if let Some(b) = g.bin(m) {
                runs.push(b, i)?;
            }
        }
        runs.finish();
        Ok(())
    }
}

/// `out[k] = f64(sqrtf(intensity[k]))`, four lanes per `sqrtps`.
///
/// Used only for `max` with `P = 0.5`, where it yields the same `f32` result as the `f64`
/// definition: `sqrt` of an `f32` computed in `f64` and rounded to `f32` is the correctly
/// rounded `f32` square root (53 ≥ 2 × 24 + 2, so the double rounding is innocuous), and
/// rounding to `f32` is monotonic, so it commutes with `max`; NaN, negative and `-0.0` inputs
/// give NaN / `-0.0` in both, which `max` from `0.0` ignores in both.
#[inline(always)]
fn sqrt_f32_widened(intensity: &[f32], out: &mut [f64]) {
    let mut i4 = intensity.chunks_exact(4);
    let mut o4 = out.chunks_exact_mut(4);
    for (i, o) in (&mut i4).zip(&mut o4) {
        let r = f32x4::from([i[0], i[1], i[2], i[3]]).sqrt().to_array();
        for (o, r) in o.iter_mut().zip(r) {
            *o = f64::from(r);
        }
    }
    for (&i, o) in i4.remainder().iter().zip(o4.into_remainder()) {
        *o = f64::from(i.sqrt());
    }
}

/// Peaks per block of the `wide` tier (stack scratch: 64 × (4 + 8) bytes).
const BLOCK: usize = 64;

/// `2^52`: adding it to a non-negative `f64` below `2^52` rounds to an integer whose value sits
/// in the low mantissa bits.
const MAGIC: f64 = 4_503_599_627_370_496.0;

/// `wide` tier, in two passes per block of [`BLOCK`] peaks:
///
/// 1. keep mask, quotient `(mz - min) / W` (one vector division per four peaks), clamp,
///    floor and conversion to `u32` (vector `2^52` trick instead of four saturating scalar
///    conversions), and `intensity ^ P` (`sqrt` vectorised) into stack scratch;
/// 2. the run-length aggregation of the scalar tier over the scratch.
///
/// The kept peaks of sorted input are one contiguous range; a dropped peak inside it (NaN m/z)
/// makes the caller redo the spectrum on the scalar tier. Grids of `2^31` bins or more (only
/// hand-built specs) also go to the scalar tier.
struct Simd;

impl Indexer for Simd {
    const SCALAR: bool = false;

    fn run<A: Agg, P: Pow, S: Sink>(
        spec: &BinSpec,
        mz: &[f64],
        intensity: &[f32],
        sink: &mut S,
    ) -> Result<(), Fallback> {
        let g = Grid::new(spec);
        if g.last >= 2_147_483_648.0 {
            return Err(Fallback);
        }
        let kept = |m: f64| g.min <= m && m < g.max;
        let Some(lo) = mz.iter().position(|&m| kept(m)) else {
            return Ok(());
        };
        let hi = mz.iter().rposition(|&m| kept(m)).map_or(lo, |h| h + 1);
        let (mz, intensity) = (&mz[lo..hi], &intensity[lo..hi]);
        let (vmin, vmax, vw, vlast, vmagic, vone) = (
            f64x4::splat(g.min),
            f64x4::splat(g.max),
            f64x4::splat(g.width),
            f64x4::splat(g.last),
            f64x4::splat(MAGIC),
            f64x4::splat(1.0),
        );
        let mut runs = Runs::<A, P, S>::new(sink, spec.power);
        let mut bins = [0u32; BLOCK];
        let mut vals = [0f64; BLOCK];
        for (m, i) in mz.chunks(BLOCK).zip(intensity.chunks(BLOCK)) {
            let n = m.len();
            let mut all_kept = true;
            let mut m4 = m.chunks_exact(4);
            let mut b4 = bins[..n].chunks_exact_mut(4);
            for (m, b) in (&mut m4).zip(&mut b4) {
                let m = f64x4::from([m[0], m[1], m[2], m[3]]);
                all_kept &= (m.simd_ge(vmin) & m.simd_lt(vmax)).all();
                // 0 <= q <= last < 2^31 when kept (lanes of a rejected block are not used).
                let q = ((m - vmin) / vw).fast_min(vlast);
                // round(q) by the magic add, minus one where it rounded up: floor(q).
                let r = (q + vmagic) - vmagic;
                let f = r - (r.simd_gt(q) & vone);
                let bits: [u64; 4] = wide::bytemuck::cast(f + vmagic);
                for (b, bits) in b.iter_mut().zip(bits) {
                    *b = bits as u32;
                }
            }
            for (&m, b) in m4.remainder().iter().zip(b4.into_remainder()) {
                all_kept &= kept(m);
                *b = g.clamp((m - g.min) / g.width);
            }
            if !all_kept {
                return Err(Fallback);
            }
            if A::IS_MAX && spec.power == 0.5 {
                sqrt_f32_widened(i, &mut vals[..n]);
            } else {
                P::fill(i, &mut vals[..n], spec.power);
            }
            runs.push_block(&bins[..n], &vals[..n])?;
        }
        runs.finish();
        Ok(())
    }
}

/// Unsorted input: emit bins in ascending order, each aggregated over its peaks in input order.
/// `O(n * distinct bins)`, no allocation.
fn slow<A: Agg, S: Sink>(spec: &BinSpec, mz: &[f64], intensity: &[f32], sink: &mut S) {
    let g = Grid::new(spec);
    let mut prev: Option<u32> = None;
    loop {
        let next = mz
            .iter()
            .filter_map(|&m| g.bin(m))
            .filter(|&b| prev.is_none_or(|p| b > p))
            .min();
        let Some(b) = next else { return };
        let acc = mz
            .iter()
            .zip(intensity)
            .filter(|&(&m, _)| g.bin(m) == Some(b))
            .fold(0.0, |acc, (_, &i)| A::step(acc, scaled(i, spec.power)));
        sink.emit(b, acc);
        prev = Some(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use BinAggregation::{Max, Sum};

    /// Naive oracle: the module-doc definition, with an `f64` accumulator per bin.
    fn oracle(spec: &BinSpec, mz: &[f64], intensity: &[f32]) -> (Vec<f32>, Vec<u32>, Vec<f32>) {
        if spec.bins == 0 {
            return (vec![], vec![], vec![]);
        }
        let mut acc = vec![0.0f64; spec.bins];
        let mut hit = vec![false; spec.bins];
        for (&m, &i) in mz.iter().zip(intensity) {
            if spec.min <= m && m < spec.max {
                let b = (((m - spec.min) / spec.width).floor() as usize).min(spec.bins - 1);
                let v = scaled(i, spec.power);
                acc[b] = match spec.aggregation {
                    Sum => acc[b] + v,
                    Max => {
                        if v > acc[b] {
                            v
                        } else {
                            acc[b]
                        }
                    }
                };
                hit[b] = true;
            }
        }
        let dense: Vec<f32> = acc.iter().map(|&a| a as f32).collect();
        let idx: Vec<u32> = (0..spec.bins)
            .filter(|&b| hit[b])
            .map(|b| b as u32)
            .collect();
        let val = idx.iter().map(|&b| dense[b as usize]).collect();
        (dense, idx, val)
    }

    /// Bit patterns, with every NaN as one canonical NaN: Rust leaves the sign and payload of
    /// a NaN produced by arithmetic unspecified (`NaN + NaN` may return either operand's), and
    /// LLVM may commute the add, so only NaN-ness is part of the contract.
    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter()
            .map(|x| {
                if x.is_nan() {
                    f32::NAN.to_bits()
                } else {
                    x.to_bits()
                }
            })
            .collect()
    }

    /// All four entry points agree bit for bit with the oracle.
    fn check(spec: &BinSpec, mz: &[f64], intensity: &[f32]) -> Vec<f32> {
        let (want, want_idx, want_val) = oracle(spec, mz, intensity);
        let mut out = vec![0.0f32; spec.bins];
        bin_dense_zeroed(spec, mz, intensity, &mut out);
        assert_eq!(
            bits(&out),
            bits(&want),
            "dense_zeroed {spec:?} {mz:?} {intensity:?}"
        );
        for dense_fn in [bin_dense, bin_dense_scalar, bin_dense_simd] {
            let mut out = vec![f32::NAN; spec.bins];
            dense_fn(spec, mz, intensity, &mut out);
            assert_eq!(
                bits(&out),
                bits(&want),
                "dense {spec:?} {mz:?} {intensity:?}"
            );
        }
        for sparse_fn in [bin_sparse, bin_sparse_scalar, bin_sparse_simd] {
            let (mut idx, mut val) = (vec![7u32], vec![7.0f32]);
            sparse_fn(spec, mz, intensity, &mut idx, &mut val);
            assert_eq!(idx[0], 7, "sparse must append");
            assert_eq!(&idx[1..], want_idx, "sparse index {spec:?} {mz:?}");
            assert_eq!(
                bits(&val[1..]),
                bits(&want_val),
                "sparse value {spec:?} {mz:?}"
            );
        }
        want
    }

    fn spec(min: f64, max: f64, width: f64, agg: BinAggregation, p: f64) -> BinSpec {
        BinSpec::new(min, max, width, agg, p).unwrap()
    }

    #[test]
    fn names_round_trip() {
        for a in [Sum, Max] {
            assert_eq!(BinAggregation::from_str_name(a.as_str()), Some(a));
        }
        assert_eq!(BinAggregation::from_str_name("mean"), None);
    }

    #[test]
    fn bin_count_guard() {
        assert_eq!(spec(10.0, 1000.0, 0.1, Max, 0.5).bins, 9_900);
        // Naive int((1000 - 0.7) / 0.1) = int(9992.999999999998) = 9992.
        assert_eq!((1000.0f64 - 0.7) / 0.1, 9992.999999999998);
        assert_eq!(spec(0.7, 1000.0, 0.1, Sum, 1.0).bins, 9_993);
        assert_eq!(spec(0.0, 0.3, 0.1, Sum, 1.0).bins, 3); // 2.9999999999999996
        assert_eq!(spec(0.7, 1.0, 0.1, Sum, 1.0).bins, 3); // 3.0000000000000004
        assert_eq!(spec(0.0, 1500.0, 0.05, Sum, 1.0).bins, 30_000);
        assert_eq!(spec(0.0, 10.5, 1.0, Sum, 1.0).bins, 10); // partial last width dropped
        assert_eq!(spec(0.0, 10.999, 1.0, Sum, 1.0).bins, 10);
        assert_eq!(spec(0.0, 1e7, 1.0, Sum, 1.0).bins, BinSpec::MAX_BINS);
    }

    #[test]
    fn spec_errors() {
        let e = |min, max, w, p| BinSpec::new(min, max, w, Sum, p).unwrap_err();
        assert_eq!(e(0.0, 1.0, -1.0, 1.0), BinSpecError::Width(-1.0));
        assert_eq!(
            e(0.0, 1.0, -1.0, 1.0).to_string(),
            "bin width must be > 0, got -1"
        );
        assert_eq!(e(0.0, 1.0, 0.0, 1.0), BinSpecError::Width(0.0));
        assert_eq!(
            e(0.0, 1.0, f64::INFINITY, 1.0).to_string(),
            "bin width must be finite, got inf"
        );
        assert!(matches!(e(0.0, 1.0, f64::NAN, 1.0), BinSpecError::Width(_)));
        assert_eq!(
            e(5.0, 5.0, 1.0, 1.0),
            BinSpecError::Range { min: 5.0, max: 5.0 }
        );
        assert_eq!(
            e(6.0, 5.0, 1.0, 1.0).to_string(),
            "bin range minimum must be < maximum, got 6:5"
        );
        assert!(matches!(
            e(f64::NAN, 5.0, 1.0, 1.0),
            BinSpecError::Range { .. }
        ));
        assert!(matches!(
            e(0.0, f64::INFINITY, 1.0, 1.0),
            BinSpecError::Range { .. }
        ));
        assert!(matches!(e(0.0, 0.5, 1.0, 1.0), BinSpecError::NoBins { .. }));
        assert!(matches!(
            e(0.0, 1e7 + 1.0, 1.0, 1.0),
            BinSpecError::TooManyBins(_)
        ));
        assert!(matches!(
            e(0.0, 1.0, 1e-300, 1.0),
            BinSpecError::TooManyBins(_)
        ));
        assert!(matches!(
            e(-f64::MAX, f64::MAX, 1.0, 1.0),
            BinSpecError::TooManyBins(_)
        ));
        assert_eq!(e(0.0, 1.0, 0.5, 0.0), BinSpecError::Power(0.0));
        assert!(matches!(e(0.0, 1.0, 0.5, -1.0), BinSpecError::Power(_)));
        assert!(matches!(e(0.0, 1.0, 0.5, f64::NAN), BinSpecError::Power(_)));
        for err in [
            e(0.0, 1.0, 0.5, 0.0),
            e(0.0, 0.5, 1.0, 1.0),
            e(0.0, 1e9, 1.0, 1.0),
        ] {
            let _: &dyn std::error::Error = &err;
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn edges_min_max_and_clamp() {
        let s = spec(10.0, 1000.0, 0.1, Sum, 1.0);
        let mz = [10.0, 999.95, 1000.0f64.next_down(), 1000.0, 9.999];
        let out = check(&s, &mz, &[1.0, 2.0, 4.0, 8.0, 16.0]);
        assert_eq!(out[0], 1.0, "peak at MIN kept in bin 0");
        assert_eq!(out[9_899], 6.0, "peaks just below MAX in the last bin");
        assert_eq!(
            out.iter().sum::<f32>(),
            7.0,
            "peak at MAX and below MIN dropped"
        );
        // A quotient that rounds up to `bins` is clamped: [16.4, 100) has 8,360 bins of 0.01
        // and (100 - ulp - 16.4) / 0.01 == 8360.0 in f64 (ms2deepscore would index past the end).
        let s = spec(16.4, 100.0, 0.01, Max, 1.0);
        assert_eq!(s.bins, 8_360);
        let m = 100.0f64.next_down();
        assert_eq!((m - 16.4) / 0.01, 8360.0);
        let out = check(&s, &[m], &[2.0]);
        assert_eq!(out[8_359], 2.0);
        // Guarded count: 9993 bins, the last one reachable.
        let s = spec(0.7, 1000.0, 0.1, Sum, 1.0);
        let out = check(&s, &[999.99], &[3.0]);
        assert_eq!(out[9_992], 3.0);
    }

    #[test]
    fn max_sqrt_and_sum() {
        let mz = [100.01, 100.02, 100.5, 101.0, 101.2];
        let i = [4.0, 9.0, 16.0, 25.0, 36.0];
        // ms2deepscore: max of sqrt(intensity) per 1-wide bin.
        let out = check(&spec(100.0, 103.0, 1.0, Max, 0.5), &mz, &i);
        assert_eq!(out, [4.0, 6.0, 0.0]);
        // DreaMS: sum of intensities.
        let out = check(&spec(100.0, 103.0, 1.0, Sum, 1.0), &mz, &i);
        assert_eq!(out, [29.0, 61.0, 0.0]);
        // Other powers.
        let out = check(
            &spec(0.0, 2.0, 1.0, Sum, 2.0),
            &[0.5, 0.6, 1.5],
            &[3.0, 4.0, 2.0],
        );
        assert_eq!(out, [25.0, 4.0]);
        // In f32 steps 1 + 2^-24 rounds back to 1 (tie to even) twice; in f64 it is exact.
        let tiny = 2.0f32.powi(-24);
        let out = check(
            &spec(0.0, 1.0, 1.0, Sum, 1.0),
            &[0.1, 0.2, 0.3],
            &[1.0, tiny, tiny],
        );
        assert_eq!(
            out,
            [1.0 + 2.0f32.powi(-23)],
            "f64 accumulation, one rounding"
        );
    }

    #[test]
    fn empty_and_dropped() {
        let s = spec(0.0, 10.0, 1.0, Sum, 1.0);
        assert!(check(&s, &[], &[]).iter().all(|&x| x == 0.0));
        assert!(check(&s, &[-1.0, 10.0, f64::NAN, f64::INFINITY], &[1.0; 4])
            .iter()
            .all(|&x| x == 0.0));
    }

    #[test]
    fn unsorted_input_takes_slow_path() {
        let s = spec(0.0, 10.0, 1.0, Sum, 1.0);
        let out = check(
            &s,
            &[5.5, 1.0, 5.2, 9.9, 1.5, 0.0, 3.0, 2.0, 8.0],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        );
        assert_eq!(out, [6.0, 7.0, 8.0, 7.0, 0.0, 4.0, 0.0, 0.0, 9.0, 4.0]);
    }

    #[test]
    fn hand_built_specs_are_safe() {
        let mut s = spec(0.0, 10.0, 1.0, Sum, 1.0);
        s.bins = 0;
        check(&s, &[1.0], &[1.0]);
        s.bins = 2; // inconsistent with the range: indices clamp to 1
        assert_eq!(check(&s, &[0.5, 7.0], &[1.0, 2.0]), [1.0, 2.0]);
    }

    #[test]
    #[should_panic(expected = "spec.bins")]
    fn dense_length_checked() {
        bin_dense(&spec(0.0, 10.0, 1.0, Sum, 1.0), &[], &[], &mut [0.0; 3]);
    }

    fn arb_spec() -> impl Strategy<Value = BinSpec> {
        (
            -5.0f64..500.0,
            prop_oneof![
                Just(0.1f64),
                Just(0.01),
                Just(0.05),
                Just(1.0),
                0.001f64..50.0
            ],
            1usize..3000,
            prop_oneof![Just(Sum), Just(Max)],
            prop_oneof![Just(1.0f64), Just(0.5), Just(2.0), 0.05f64..3.0],
        )
            .prop_filter_map("valid spec", |(min, w, n, agg, p)| {
                BinSpec::new(min, min + w * n as f64, w, agg, p).ok()
            })
    }

    /// Peaks around the grid: sorted (the common case) or not, with exact edges, duplicates
    /// and out-of-range values mixed in.
    fn arb_peaks(s: BinSpec) -> impl Strategy<Value = (BinSpec, Vec<f64>, Vec<f32>)> {
        let span = s.max - s.min;
        let mz = prop_oneof![
            6 => (s.min - span * 0.05)..(s.max + span * 0.05),
            1 => (0usize..=s.bins).prop_map(move |k| s.min + k as f64 * s.width),
            1 => Just(s.min),
            1 => Just(s.max),
            1 => Just(s.max.next_down()),
            1 => (0usize..=s.bins).prop_map(move |k| (s.min + k as f64 * s.width).next_down()),
            1 => prop_oneof![Just(f64::NAN), Just(-f64::NAN)],
        ];
        // Non-positive, NaN and infinite intensities never pass validation, but the kernels
        // take any input: both tiers must still agree with the oracle.
        let intensity = prop_oneof![
            8 => 1e-6f32..1e6,
            2 => Just(1.0f32),
            2 => (1u32..=0x7f7f_ffff).prop_map(f32::from_bits),
            1 => prop_oneof![
                Just(0.0f32),
                Just(-0.0),
                Just(-1.5),
                Just(f32::NAN),
                Just(f32::INFINITY),
                Just(f32::from_bits(1)),
            ],
        ];
        (
            proptest::collection::vec((mz, intensity), 0..=130),
            any::<bool>(),
        )
            .prop_map(move |(mut peaks, sorted)| {
                if sorted {
                    peaks.sort_by(|a, b| a.0.total_cmp(&b.0));
                }
                let (mz, i) = peaks.into_iter().unzip();
                (s, mz, i)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn simd_and_scalar_match_oracle((s, mz, i) in arb_spec().prop_flat_map(arb_peaks)) {
            check(&s, &mz, &i);
        }
    }

    #[test]
    fn runs_across_block_boundaries() {
        // 200 sorted peaks, one per bin except shared bins straddling the 64-peak blocks
        // (63/64, 127/128/129) and a run filling most of the last block.
        for agg in [Sum, Max] {
            let s = spec(0.0, 1000.0, 1.0, agg, 0.5);
            let mut mz: Vec<f64> = (0..200).map(|k| 2.0 * k as f64 + 0.25).collect();
            mz[64] = mz[63] + 0.5;
            mz[128] = mz[127] + 0.25;
            mz[129] = mz[127] + 0.5;
            for m in &mut mz[150..] {
                *m = 399.5;
            }
            mz.sort_by(f64::total_cmp);
            let i: Vec<f32> = (0..200).map(|k| (k % 17) as f32 + 0.5).collect();
            let out = check(&s, &mz, &i);
            assert_eq!(out.iter().filter(|&&v| v != 0.0).count(), 200 - 1 - 2 - 49);
        }
    }

    #[test]
    fn lane_tails() {
        // Lengths 0..=9 around the 4-lane chunking, peaks in every lane position.
        let s = spec(0.0, 100.0, 0.1, Max, 0.5);
        for n in 0..=9 {
            for skip in 0..n.max(1) {
                let mz: Vec<f64> = (0..n)
                    .map(|k| {
                        if k == skip {
                            150.0
                        } else {
                            10.0 + k as f64 * 0.05
                        }
                    })
                    .collect();
                let i: Vec<f32> = (0..n).map(|k| 1.0 + k as f32).collect();
                check(&s, &mz, &i);
            }
        }
    }
}
