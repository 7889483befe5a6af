//! msms-shards: turn GeMS-style MS/MS HDF5 datasets into validated, normalised Parquet shards
//! with SHA-256 checksums and a manifest, ready for ML training.
//!
//! The flow, one module per stage:
//!
//! ```text
//! source (HDF5 mapping, row reads) → batch (kernels: unpad, validate, normalise → Arrow)
//!   → sink (Parquet row groups, shard planner, hashing writer) → manifest
//! ```
//!
//! [`pipeline`] schedules the stages over threads; [`config`] resolves mode profiles, YAML,
//! environment and flags; [`synth`] writes sample inputs. The binary `msms` is a thin layer
//! over [`cli`].

pub mod affinity;
pub mod batch;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod direct;
pub mod distributed;
pub mod doctor;
pub mod h5;
pub mod inspect;
pub mod interactive;
pub mod manifest;
pub mod mapped;
pub mod pipeline;
pub mod report;
pub mod sink;
pub mod source;
pub mod split;
pub mod synth;
pub mod text;
pub mod verify;
