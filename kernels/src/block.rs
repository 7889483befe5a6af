//! Stored peak blocks: element type, layout and slot access, and the SIMD lane abstraction
//! the kernels are written against.

use std::ops::{Add, BitOr, Sub};
use wide::{f32x8, f64x4};

/// Element type of a stored peak block (`f32` or `f64`).
///
/// Sealed: implemented for `f32` and `f64` only, each tied to its SIMD vector type.
pub trait PeakValue: Copy + Send + Sync + 'static + sealed::Sealed {
    /// Widen to `f64`. Exact for both implementors (`f32` widening is lossless).
    fn to_f64(self) -> f64;
}

pub(crate) mod sealed {
    /// Ties an element type to its [`Lanes`](super::Lanes) vector.
    pub trait Sealed {
        /// The `wide` vector the SIMD kernels use for this element type.
        type Lanes: super::Lanes<Elem = Self>;
    }
}

impl sealed::Sealed for f32 {
    type Lanes = f32x8;
}

impl sealed::Sealed for f64 {
    type Lanes = f64x4;
}

impl PeakValue for f32 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl PeakValue for f64 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

/// A small vector of [`PeakValue`]s: the one abstraction the SIMD kernels are generic over
/// (memchr style). Comparisons in the element type agree with comparisons after widening to
/// `f64` (widening is exact), so `f32` blocks are processed as `f32`.
///
/// `wide` picks instructions at compile time: `f64x4` is two SSE2 registers in the default
/// x86-64 build and one AVX register with `-C target-cpu=native` (see [`simd_level`](crate::simd_level)).
pub trait Lanes: Copy + Add<Output = Self> + Sub<Output = Self> + BitOr<Output = Self> {
    /// Element type.
    type Elem: PeakValue;
    /// Number of lanes.
    const N: usize;
    /// Load `s[..N]` (unaligned).
    fn load(s: &[Self::Elem]) -> Self;
    /// Every lane `v` (rounded to the element type; used for `0` and `±Inf` only).
    fn splat_f64(v: f64) -> Self;
    /// Lane-wise `self` if `self > acc`, else `acc` (NaN in `self` keeps `acc`).
    fn max_keep(self, acc: Self) -> Self;
    /// Lane-wise minimum; NaN lanes give an unspecified lane (callers detect NaN separately).
    fn min_any(self, other: Self) -> Self;
    /// `true` if every lane compares equal to `0.0` (`-0.0` included, NaN not).
    fn all_zero(self) -> bool;
    /// Largest lane widened (strict `>` fold from `-Inf`).
    fn reduce_max(self) -> f64;
    /// Smallest lane widened (strict `<` fold from `+Inf`).
    fn reduce_min(self) -> f64;
}

macro_rules! impl_lanes {
    ($v:ty, $e:ty, $n:literal) => {
        impl Lanes for $v {
            type Elem = $e;
            const N: usize = $n;
            #[inline(always)]
            fn load(s: &[$e]) -> Self {
                let a: [$e; $n] = s[..$n].try_into().unwrap();
                <$v>::new(a)
            }
            #[inline(always)]
            fn splat_f64(v: f64) -> Self {
                <$v>::splat(v as $e)
            }
            #[inline(always)]
            fn max_keep(self, acc: Self) -> Self {
                // x86 `max`: the second operand when either is NaN or they are equal.
                self.fast_max(acc)
            }
            #[inline(always)]
            fn min_any(self, other: Self) -> Self {
                self.fast_min(other)
            }
            #[inline(always)]
            fn all_zero(self) -> bool {
                self.simd_eq(<$v>::splat(0.0)).all()
            }
            #[inline(always)]
            fn reduce_max(self) -> f64 {
                self.to_array()
                    .iter()
                    .fold(f64::NEG_INFINITY, |m, &v| if f64::from(v) > m { f64::from(v) } else { m })
            }
            #[inline(always)]
            fn reduce_min(self) -> f64 {
                self.to_array()
                    .iter()
                    .fold(f64::INFINITY, |m, &v| if f64::from(v) < m { f64::from(v) } else { m })
            }
        }
    };
}

impl_lanes!(f64x4, f64, 4);
impl_lanes!(f32x8, f32, 8);

/// The SIMD instruction set `wide` was compiled for in this build, the widest first:
/// `"avx512f"`, `"avx2"`, `"avx"`, `"sse4.1"`, `"sse2"`, `"neon"`, `"simd128"` or `"scalar"`.
/// Fixed at compile time (`wide` does not dispatch at run time); build with
/// `RUSTFLAGS="-C target-cpu=native"` to use the host's widest set.
pub const fn simd_level() -> &'static str {
    if cfg!(target_feature = "avx512f") {
        "avx512f"
    } else if cfg!(target_feature = "avx2") {
        "avx2"
    } else if cfg!(target_feature = "avx") {
        "avx"
    } else if cfg!(target_feature = "sse4.1") {
        "sse4.1"
    } else if cfg!(target_feature = "sse2") {
        "sse2"
    } else if cfg!(target_feature = "neon") {
        "neon"
    } else if cfg!(target_feature = "simd128") {
        "simd128"
    } else {
        "scalar"
    }
}

/// How the `P` peak slots of one spectrum are laid out in its row of `2 * P` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Orientation {
    /// GeMS `spectrum` `(N, 2, P)`: first `P` values are m/z, next `P` are intensities.
    Planar,
    /// Older high form `spectra` `(N, P, 2)`: values alternate m/z, intensity.
    Interleaved,
}

/// One spectrum's padded peak block: `data.len() == 2 * peaks`.
///
/// A cheap, copyable view; it never owns or copies the values.
#[derive(Clone, Copy, Debug)]
pub struct PeakBlock<'a, T> {
    data: &'a [T],
    orientation: Orientation,
}

/// The two layouts, resolved to slices, for the kernels' inner loops.
pub(crate) enum Columns<'a, T> {
    /// `mz.len() == intensity.len() == P`.
    Planar { mz: &'a [T], intensity: &'a [T] },
    /// `pairs.len() == 2 * P`, alternating m/z, intensity.
    Interleaved { pairs: &'a [T] },
}

impl<'a, T: PeakValue> PeakBlock<'a, T> {
    /// Wrap one spectrum's row of `2 * P` values laid out as `orientation`.
    ///
    /// # Panics
    ///
    /// If `data.len()` is odd (it cannot hold whole (m/z, intensity) slots).
    #[inline]
    pub fn new(data: &'a [T], orientation: Orientation) -> Self {
        assert!(
            data.len() % 2 == 0,
            "peak block length {} is odd; expected 2 * slots",
            data.len()
        );
        Self { data, orientation }
    }

    /// Number of peak slots `P` (real peaks plus padding).
    #[inline]
    pub fn slots(&self) -> usize {
        self.data.len() / 2
    }

    /// The m/z value stored in slot `i`.
    ///
    /// # Panics
    ///
    /// If `i >= self.slots()`.
    #[inline]
    pub fn mz(&self, i: usize) -> T {
        match self.columns() {
            Columns::Planar { mz, .. } => mz[i],
            Columns::Interleaved { pairs } => pairs[2 * i],
        }
    }

    /// The intensity stored in slot `i`.
    ///
    /// # Panics
    ///
    /// If `i >= self.slots()`.
    #[inline]
    pub fn intensity(&self, i: usize) -> T {
        match self.columns() {
            Columns::Planar { intensity, .. } => intensity[i],
            Columns::Interleaved { pairs } => pairs[2 * i + 1],
        }
    }

    /// The raw row of `2 * P` values.
    #[inline]
    pub fn data(&self) -> &'a [T] {
        self.data
    }

    /// The layout of [`data`](Self::data).
    #[inline]
    pub fn orientation(&self) -> Orientation {
        self.orientation
    }

    /// Split the row into per-layout slices.
    #[inline]
    pub(crate) fn columns(&self) -> Columns<'a, T> {
        match self.orientation {
            Orientation::Planar => {
                let (mz, intensity) = self.data.split_at(self.slots());
                Columns::Planar { mz, intensity }
            }
            Orientation::Interleaved => Columns::Interleaved { pairs: self.data },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planar_access() {
        let data = [1.0f64, 2.0, 3.0, 10.0, 20.0, 30.0];
        let b = PeakBlock::new(&data, Orientation::Planar);
        assert_eq!(b.slots(), 3);
        assert_eq!((b.mz(0), b.mz(2)), (1.0, 3.0));
        assert_eq!((b.intensity(0), b.intensity(2)), (10.0, 30.0));
        assert_eq!(b.orientation(), Orientation::Planar);
        assert_eq!(b.data().len(), 6);
    }

    #[test]
    fn interleaved_access() {
        let data = [1.0f32, 10.0, 2.0, 20.0, 3.0, 30.0];
        let b = PeakBlock::new(&data, Orientation::Interleaved);
        assert_eq!(b.slots(), 3);
        assert_eq!((b.mz(1), b.intensity(1)), (2.0, 20.0));
        assert_eq!((b.mz(2), b.intensity(2)), (3.0, 30.0));
    }

    #[test]
    fn empty_block_has_no_slots() {
        let b = PeakBlock::<f64>::new(&[], Orientation::Planar);
        assert_eq!(b.slots(), 0);
    }

    #[test]
    #[should_panic(expected = "odd")]
    fn odd_length_panics() {
        let _ = PeakBlock::new(&[1.0f64, 2.0, 3.0], Orientation::Planar);
    }

    #[test]
    #[should_panic]
    fn planar_mz_out_of_range_panics() {
        // Index 2 would land in the intensity half without the split.
        let data = [1.0f64, 2.0, 10.0, 20.0];
        let _ = PeakBlock::new(&data, Orientation::Planar).mz(2);
    }

    #[test]
    #[should_panic]
    fn interleaved_intensity_out_of_range_panics() {
        let data = [1.0f64, 2.0, 10.0, 20.0];
        let _ = PeakBlock::new(&data, Orientation::Interleaved).intensity(2);
    }

    #[test]
    fn f32_widens_exactly() {
        assert_eq!(0.1f32.to_f64().to_bits(), f64::from(0.1f32).to_bits());
        assert_ne!(0.1f32.to_f64(), 0.1f64);
        assert_eq!(0.1f64.to_f64().to_bits(), 0.1f64.to_bits());
    }
}
