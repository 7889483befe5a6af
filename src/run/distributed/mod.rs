//! Beyond one machine: `msms plan` cuts a conversion into parts that an existing engine (Dask,
//! Slurm, …) runs as `msms build-shards --plan plan.json --part K`, and `msms merge` joins the
//! parts' manifests into one, without copying data.
//!
//! A part is a contiguous run of the read units `build-shards` itself would process (whole
//! chunks of the spectrum dataset, see `crate::run::units::unit_spans`), so parts are
//! disjoint, chunk-aligned and cover every input; they are balanced by stored bytes (each
//! unit weighs its rows × its file's bytes per spectrum). Part `K` is written to
//! `ROOT/parts/K/` as an ordinary output root (own manifest, own checkpoint: `--resume`
//! works per part, and a finished part run again only says so). Spectrum ids are those of
//! the whole input, so the merged dataset holds exactly the rows of a single-machine run with
//! the same settings (the shard boundaries differ).
//!
//! `plan.json` (`format` `msms-plan`, `version` 1):
//!
//! ```text
//! { "format": "msms-plan", "version": 1, "tool_version": "0.1.0",
//!   "config_hash": "sha256:…",                 // of the output-affecting settings
//!   "settings": { … },                          // those settings, as in a manifest
//!   "args": ["--mode", "local", "--shard-size", "1GB", …],   // the flags that give them
//!   "inputs": [ { "path": "/abs/a.hdf5", "bytes": …, "modified_ns": …, "spectra": … } ],
//!   "units": 977,                               // read units in all
//!   "parts": [ { "part": 0, "units": [0, 326], "rows": 333824, "stored_bytes": 308124672,
//!                "first_spectrum_id": 0 }, … ] }
//! ```

mod merge;
mod plan;

pub(crate) use merge::{merge, MergeError};
pub(crate) use plan::{make_plan, part_root, Plan};
