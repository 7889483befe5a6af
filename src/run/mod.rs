//! The `build-shards` run, and its distribution over machines.
//!
//! Scheduling: the input is cut into units of rows aligned to the spectrum dataset's chunk
//! grid (`units`). One reader thread (libhdf5 is single-threaded) walks the units in order,
//! reads what only libhdf5 can read (strings, unsupported filters) and hands each unit to a
//! `rayon` pool of `num_workers` threads (`workers`), which decode the mapped chunks
//! ([`crate::read::mapped`]), validate, transform and encode it; the calling thread hands the
//! encoded batches to the shard writer in unit order (`stream`). A fixed number of tokens
//! bounds the units in flight, so memory does not grow with the input. In production mode
//! the workers are pinned to cores, grouped by NUMA node (`affinity`); local mode never
//! pins. `build` strings the stages together (open → plan → run → finish); `output_root`
//! prepares the output root and keeps the checkpoint; `root_lock` keeps a
//! second command off a root while one writes to it. The library prints nothing: notices,
//! progress lines and warnings are [`Event`]s handed to the caller ([`build_shards_with`]).
//!
//! `plan`: `msms plan` cuts a run into parts that `build-shards --plan --part` converts
//! (`msms merge`, which joins them, is a command: `crate::commands::merge`). `rebalance`:
//! `msms rebalance` rewrites a finished root's shards into even ones, with the same shard
//! planner, output-root rules, checkpoint and lock as a build.

pub(crate) mod affinity;
mod build;
mod encoding;
mod error;
mod metrics;
mod output_root;
pub(crate) mod plan;
mod preflight;
mod processing;
mod progress;
mod rebalance;
mod root_lock;
mod stream;
mod units;
mod workers;

pub use build::{build_shards, build_shards_with, detect_inputs, BuildOptions, Summary};
pub use error::RunError;
pub(crate) use output_root::other_format_checkpoint;
pub use progress::{Event, Progress};
pub use rebalance::{rebalance, RebalanceOptions, Rebalanced};
pub(crate) use root_lock::{lock_holder, only_lock};
pub use root_lock::{Holder, LockError, RootLock};
pub use workers::tune_allocator;
