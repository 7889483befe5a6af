//! msms-shards: turn GeMS-style MS/MS HDF5 datasets into validated, normalised Parquet shards
//! with SHA-256 checksums and a manifest, ready for ML training.

pub mod cli;
pub mod commands;
pub mod config;
pub mod format;
pub mod process;
pub mod read;
pub mod run;
mod text;
pub mod write;
