//! Test helpers: building blocks from (m/z, intensity) pairs in every layout.

use crate::{Orientation, PeakValue};
use std::fmt::Debug;

/// A stored element type the tests can build from `f64`.
pub(crate) trait Elem: PeakValue + Debug + PartialEq {
    /// Type name for messages.
    const NAME: &'static str;
    /// Convert (rounding for `f32`).
    fn from_f64(v: f64) -> Self;
}

impl Elem for f32 {
    const NAME: &'static str = "f32";
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Elem for f64 {
    const NAME: &'static str = "f64";
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// `peaks` followed by `(0, 0)` up to `slots` slots.
pub(crate) fn padded(peaks: &[(f64, f64)], slots: usize) -> Vec<(f64, f64)> {
    let mut v = peaks.to_vec();
    v.resize(slots.max(peaks.len()), (0.0, 0.0));
    v
}

/// One row holding `slots` as laid out by `o`.
pub(crate) fn layout<T: Elem>(slots: &[(f64, f64)], o: Orientation) -> Vec<T> {
    let conv = |v| T::from_f64(v);
    match o {
        Orientation::Planar => slots
            .iter()
            .map(|s| conv(s.0))
            .chain(slots.iter().map(|s| conv(s.1)))
            .collect(),
        Orientation::Interleaved => slots.iter().flat_map(|s| [conv(s.0), conv(s.1)]).collect(),
    }
}

/// Call `f` with the row for `slots` in both orientations.
pub(crate) fn for_each_layout<T: Elem>(slots: &[(f64, f64)], mut f: impl FnMut(&[T], Orientation)) {
    for o in [Orientation::Planar, Orientation::Interleaved] {
        f(&layout::<T>(slots, o), o);
    }
}
