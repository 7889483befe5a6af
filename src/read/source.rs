//! Old paths of the input side's items, kept while other modules move to `crate::read::X`
//! (detection is in `read/detect.rs`, reading in `read/reader.rs`, mapped columns in
//! `read/columns.rs`, element types in `read/dtype.rs`, [`Decode`] in `read/mod.rs`).

pub use crate::read::{
    Decode, FileMapping, InputError, PassColumn, PeakElem, SpectrumMapping, ValueKind,
};
pub(crate) use crate::read::{
    FileReader, LshData, MappedColumns, PeakData, RawUnit, UNIT_BYTES_BUDGET,
};
