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
//! the same settings (the shard boundaries differ). Each part also keeps a copy of the plan
//! in the root, `ROOT/_plan.json` (`plan.json` in a format-1 root), which `msms merge` reads.
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
//!
//! This file: `plan.json` (the parts of a run, balanced by stored bytes), how it is read and
//! checked, and the `build-shards` arguments of each part; `msms merge` is
//! `crate::commands::merge`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{BinOutput, Dedup, Settings};
use crate::format::checkpoint::{Fingerprint, InputPrint};
use crate::read::FileMapping;
use crate::run::error::RunError;
use crate::run::units::{unit_spans, UnitSpan};

/// Why a plan cannot be made, read or used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PlanError {
    /// `--parts 0`.
    #[error("--parts must be at least 1")]
    NoParts,
    /// `--dedup exact` cannot be split.
    #[error("--dedup exact needs every spectrum before the current one, so it cannot be split into parts; convert on one machine, or drop --dedup")]
    Dedup,
    /// The inputs and settings cannot be converted.
    #[error(transparent)]
    Run(#[from] RunError),
    /// More parts than read units.
    #[error("the inputs make {units} read units; use at most that many parts (or a smaller --batch-size)")]
    TooManyParts {
        /// Read units in all.
        units: usize,
    },
    /// `plan.json` cannot be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The plan file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// `plan.json` is not JSON of a plan.
    #[error("{} is not a plan: {error}", path.display())]
    Parse {
        /// The plan file.
        path: PathBuf,
        /// What the parser said.
        error: serde_json::Error,
    },
    /// Another format or version.
    #[error("{}: format {format:?} version {version} (this msms reads msms-plan version {PLAN_VERSION})", path.display())]
    Version {
        /// The plan file.
        path: PathBuf,
        /// Its `format`.
        format: String,
        /// Its `version`.
        version: u32,
    },
    /// `--part K` beyond the plan's parts.
    #[error("--part {part}: the plan has parts 0 to {}", parts - 1)]
    NoSuchPart {
        /// The part asked for.
        part: usize,
        /// Parts in the plan.
        parts: usize,
    },
}

/// The plan format's version.
pub(crate) const PLAN_VERSION: u32 = 1;

/// Name of the plan's copy in the output root of a planned conversion: `build-shards --plan`
/// writes it there, `msms merge` reads it. It starts with `_` so that dataset readers of the
/// merged root skip it (output format 2 on).
pub(crate) const PLAN_COPY: &str = "_plan.json";

/// Name of the plan's copy in the root of a format-1 planned conversion.
pub(crate) const PLAN_COPY_V1: &str = "plan.json";

/// The plan's copy in `root`: `_plan.json`, else a format-1 root's `plan.json` when only that
/// exists.
pub(crate) fn plan_copy(root: &Path) -> PathBuf {
    let copy = root.join(PLAN_COPY);
    let old = root.join(PLAN_COPY_V1);
    if !copy.exists() && old.exists() {
        old
    } else {
        copy
    }
}

/// One part of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartPlan {
    /// Its number, from 0.
    pub(crate) part: usize,
    /// `[first, end)` read units.
    pub(crate) units: [u64; 2],
    /// Spectra in those units.
    pub(crate) rows: u64,
    /// Estimated stored (input) bytes.
    pub(crate) stored_bytes: u64,
    /// `spectrum_id` of its first spectrum.
    pub(crate) first_spectrum_id: u64,
}

/// `plan.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Plan {
    /// Always `msms-plan`.
    pub(crate) format: String,
    /// [`PLAN_VERSION`].
    pub(crate) version: u32,
    /// Version of the tool that planned.
    pub(crate) tool_version: String,
    /// Hash of the output-affecting settings; every part must resolve to it.
    pub(crate) config_hash: String,
    /// Those settings.
    pub(crate) settings: serde_json::Value,
    /// `build-shards` flags that give those settings.
    pub(crate) args: Vec<String>,
    /// The inputs (absolute paths) in order.
    pub(crate) inputs: Vec<InputPrint>,
    /// Read units in all.
    pub(crate) units: u64,
    /// The parts, in input order.
    pub(crate) parts: Vec<PartPlan>,
}

/// The `build-shards` flags that reproduce the output-affecting settings of `s` (and its
/// mode, for the profile).
pub(crate) fn settings_args(s: &Settings) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--mode".into(),
        s.mode.as_str().into(),
        "--shard-size".into(),
        s.profile.shard_size.to_string(),
        "--batch-size".into(),
        s.profile.batch_size.to_string(),
        "--row-group-size".into(),
        s.profile.row_group_size.to_string(),
        "--compression".into(),
        s.profile.compression.to_string(),
        "--normalize".into(),
        s.normalize.as_str().into(),
        "--min-peaks".into(),
        s.min_peaks.to_string(),
    ];
    let mut opt = |flag: &str, v: Option<String>| {
        if let Some(v) = v {
            a.push(flag.into());
            a.push(v);
        }
    };
    opt(
        "--max-precursor-mz",
        s.max_precursor_mz.map(|v| v.to_string()),
    );
    opt("--max-spectra", s.max_spectra.map(|v| v.to_string()));
    opt("--max-peaks", s.max_peaks.map(|v| v.to_string()));
    if let Some(b) = &s.binning {
        opt("--bin-width", Some(b.width.to_string()));
        opt("--bin-range", Some(format!("{}:{}", b.min, b.max)));
        opt("--bin-aggregation", Some(b.aggregation.as_str().into()));
        opt("--bin-scale", Some(b.scale.to_string()));
        if b.output == BinOutput::Sparse {
            opt("--bin-output", Some("sparse".into()));
        }
    }
    opt(
        "--quality-format",
        s.quality_format.map(|q| q.as_str().into()),
    );
    opt("--columns", s.columns.as_ref().map(|c| c.to_string()));
    opt(
        "--exclude-columns",
        s.exclude_columns.as_ref().map(|c| c.to_string()),
    );
    if let Some(sp) = &s.splits {
        opt("--splits", Some(sp.to_string()));
        opt("--seed", Some(s.seed.to_string()));
        opt("--split-key", Some(s.split_key.as_str().into()));
    }
    a
}

/// Cut the run of `s` over `mappings` into `parts` parts balanced by stored bytes; with it,
/// a notice for each dataset the parts will leave out. With `strict_columns` an input with
/// a dataset left out is refused now, and every part is converted with `--strict-columns`.
pub(crate) fn make_plan(
    s: &Settings,
    mappings: &[FileMapping],
    parts: usize,
    strict_columns: bool,
) -> Result<(Plan, Vec<String>), PlanError> {
    if parts == 0 {
        return Err(PlanError::NoParts);
    }
    if s.dedup == Dedup::Exact {
        return Err(PlanError::Dedup);
    }
    // The columns the parts will read: their read units follow from them.
    let chosen = crate::run::build::chosen_columns(s, mappings).map_err(RunError::from)?;
    let mappings = &chosen[..];
    if strict_columns {
        crate::run::build::refuse_left_out(mappings).map_err(RunError::from)?;
    }
    let units = unit_spans(s, mappings)?;
    if units.len() < parts {
        return Err(PlanError::TooManyParts { units: units.len() });
    }
    let weight = |u: &UnitSpan| {
        let m = &mappings[u.source];
        (u.rows as u128 * m.file_bytes as u128 / m.rows.max(1) as u128) as u64
    };
    let total: u128 = units.iter().map(|u| weight(u) as u128).sum();
    let mut out = Vec::with_capacity(parts);
    let mut start = 0usize;
    let mut cum: u128 = 0;
    for k in 0..parts {
        let target = total * (k as u128 + 1) / parts as u128;
        let mut end = start;
        let mut bytes = 0u64;
        // At least one unit; leave at least one for every later part.
        while end < units.len() - (parts - k - 1)
            && (end == start || cum < target || k + 1 == parts)
        {
            cum += weight(&units[end]) as u128;
            bytes += weight(&units[end]);
            end += 1;
        }
        out.push(PartPlan {
            part: k,
            units: [start as u64, end as u64],
            rows: units[start..end].iter().map(|u| u.rows).sum(),
            stored_bytes: bytes,
            first_spectrum_id: units[start].first_id,
        });
        start = end;
    }
    let mut inputs = Fingerprint::of(s, mappings).inputs;
    for (i, m) in inputs.iter_mut().zip(mappings) {
        i.path = std::fs::canonicalize(&m.path)
            .unwrap_or_else(|_| m.path.clone())
            .display()
            .to_string();
    }
    let left_out = crate::run::build::left_out_notices(mappings).collect();
    let plan = Plan {
        format: "msms-plan".into(),
        version: PLAN_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        config_hash: s.config_hash(),
        settings: s.output_settings_json(),
        args: settings_args(s)
            .into_iter()
            .chain(strict_columns.then(|| "--strict-columns".to_string()))
            .collect(),
        inputs,
        units: units.len() as u64,
        parts: out,
    };
    Ok((plan, left_out))
}

impl Plan {
    /// Read and check `plan.json`.
    pub(crate) fn load(path: &Path) -> Result<Plan, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|error| PlanError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let p: Plan = serde_json::from_str(&text).map_err(|error| PlanError::Parse {
            path: path.to_path_buf(),
            error,
        })?;
        if p.format != "msms-plan" || p.version != PLAN_VERSION {
            return Err(PlanError::Version {
                path: path.to_path_buf(),
                format: p.format,
                version: p.version,
            });
        }
        Ok(p)
    }

    /// Pretty JSON with a trailing newline.
    pub(crate) fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plan serialises");
        s.push('\n');
        s
    }

    /// The `msms build-shards` arguments that convert part `k` into `root/parts/k`.
    pub(crate) fn part_argv(&self, k: usize, root: &Path) -> Result<Vec<OsString>, PlanError> {
        let part = self.parts.get(k).ok_or(PlanError::NoSuchPart {
            part: k,
            parts: self.parts.len(),
        })?;
        let mut argv: Vec<OsString> = vec!["msms".into(), "build-shards".into()];
        argv.extend(self.args.iter().map(OsString::from));
        argv.push("--input-hdf5".into());
        argv.extend(self.inputs.iter().map(|i| OsString::from(&i.path)));
        argv.push("--output-root".into());
        argv.push(part_root(root, k).into_os_string());
        argv.push("--part-units".into());
        argv.push(format!("{}:{}", part.units[0], part.units[1]).into());
        argv.push("--plan-config-hash".into());
        argv.push(self.config_hash.clone().into());
        Ok(argv)
    }
}

/// The command that converts part `k` of the plan in `root` (also what continues it).
pub(crate) fn part_command(root: &Path, k: usize) -> String {
    format!(
        "msms build-shards --plan {} --part {k} --output-root {}",
        plan_copy(root).display(),
        root.display()
    )
}

/// `root/parts/k`.
pub(crate) fn part_root(root: &Path, k: usize) -> PathBuf {
    root.join("parts").join(k.to_string())
}
