//! Stored peak blocks: element type, layout and slot access.

/// Element type of a stored peak block (`f32` or `f64`).
pub trait PeakValue: Copy + Send + Sync + 'static {
    /// Widen to `f64`. Exact for both implementors (`f32` widening is lossless).
    fn to_f64(self) -> f64;
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
