//! msms-shards: turn GeMS-style MS/MS HDF5 datasets into validated, normalised Parquet shards
//! with SHA-256 checksums and a manifest, ready for ML training.
//!
//! One folder per stage of the flow; dependencies run one way, each room using only the
//! rooms before it:
//!
//! ```text
//! config → read → process → format → write → run → commands → cli
//! ```
//!
//! - [`config`]: modes, profiles, YAML, `MSMS_*` environment, flags' precedence → [`config::Settings`]
//! - [`read`]: HDF5 → read units (libhdf5 wrapper [`read::h5`], memory-mapped chunk decode
//!   [`read::mapped`], the file mapping [`read::FileMapping`])
//! - [`process`]: units → Arrow batches (the kernels applied; splits, dedup)
//! - [`format`](mod@format): the on-disk vocabulary every command shares (manifest, checkpoint, path rules)
//! - [`write`](mod@write): batches → shard files (Parquet encoding, shard planner, writer pool, hashing,
//!   atomic writes)
//! - [`run`]: `build-shards` orchestration ([`run::build_shards`]) and plans for clusters
//! - [`commands`]: verify, merge, inspect, doctor, quality report, [`commands::synth`]
//! - [`cli`]: the `msms` command line ([`cli::run`]); the only room that prints
//!
//! The public items are the entry points the binary, the tests, the benchmarks and the fuzz
//! targets use; everything else is crate-private.

pub mod cli;
pub mod commands;
pub mod config;
pub mod format;
pub mod process;
pub mod read;
pub mod run;
mod text;
pub mod write;
