//! Command-line values of library types: [`clap::ValueEnum`] for types the library defines
//! without depending on clap ([`Decode`]). Names and help lines are what the derive gave.

use clap::builder::PossibleValue;
use clap::ValueEnum;

use crate::read::Decode;

impl ValueEnum for Decode {
    fn value_variants<'a>() -> &'a [Self] {
        &[Decode::Native, Decode::Libhdf5]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            Decode::Native => PossibleValue::new(Decode::Native.as_str()).help(
                "Decode chunks from a memory map wherever the dataset allows it (deflate, \
                 shuffle, fletcher32, contiguous), libhdf5 elsewhere",
            ),
            Decode::Libhdf5 => PossibleValue::new(Decode::Libhdf5.as_str())
                .help("Read everything through libhdf5's `H5Dread` (the reference path)"),
        })
    }
}
