//! Input side: detect how a GeMS-style HDF5 file maps onto the output schema
//! ([`FileMapping`]), and read row ranges of it (`FileReader`, `RawUnit`), decoding
//! numeric datasets from a memory map where they allow it ([`mapped`]) and through libhdf5
//! ([`h5`]) elsewhere.

mod columns;
mod detect;
mod dtype;
pub mod error;
pub(crate) mod filters;
pub mod h5;
pub mod mapped;
mod passthrough;
mod reader;

pub(crate) use columns::MappedColumns;
pub(crate) use detect::UNIT_BYTES_BUDGET;
pub use detect::{FileMapping, PassColumn, SpectrumMapping};
pub use dtype::{Elem, PeakElem, ValueKind};
pub(crate) use dtype::{LshData, PeakData};
pub use error::InputError;
pub use mapped::{inflate_all_chunks, InflateTotals};
pub(crate) use reader::{FileReader, RawUnit};

/// Which decoder reads row data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Decode {
    /// Decode chunks from a memory map wherever the dataset allows it (deflate, shuffle,
    /// fletcher32, contiguous), libhdf5 elsewhere.
    #[default]
    Native,
    /// Read everything through libhdf5's `H5Dread` (the reference path).
    Libhdf5,
}

impl Decode {
    /// `native` or `libhdf5`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decode::Native => "native",
            Decode::Libhdf5 => "libhdf5",
        }
    }
}
