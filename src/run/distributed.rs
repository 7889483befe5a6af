//! Beyond one machine: `msms plan` cuts a conversion into parts that an existing engine (Dask,
//! Slurm, …) runs as `msms build-shards --plan plan.json --part K`, and `msms merge` joins the
//! parts' manifests into one, without copying data.
//!
//! A part is a contiguous run of the read units `build-shards` itself would process (whole
//! chunks of the spectrum dataset, see [`crate::run::pipeline::unit_spans`]), so parts are
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

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{BinOutput, Dedup, Settings};
use crate::format::checkpoint::{Fingerprint, InputPrint};
use crate::format::manifest::{dataset_digest, ShardRecord};
use crate::format::manifest::{Manifest, RunRecord, SplitRecord};
use crate::read::source::FileMapping;

/// The plan format's version.
pub const PLAN_VERSION: u32 = 1;

/// One part of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartPlan {
    /// Its number, from 0.
    pub part: usize,
    /// `[first, end)` read units.
    pub units: [u64; 2],
    /// Spectra in those units.
    pub rows: u64,
    /// Estimated stored (input) bytes.
    pub stored_bytes: u64,
    /// `spectrum_id` of its first spectrum.
    pub first_spectrum_id: u64,
}

/// `plan.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Always `msms-plan`.
    pub format: String,
    /// [`PLAN_VERSION`].
    pub version: u32,
    /// Version of the tool that planned.
    pub tool_version: String,
    /// Hash of the output-affecting settings; every part must resolve to it.
    pub config_hash: String,
    /// Those settings.
    pub settings: serde_json::Value,
    /// `build-shards` flags that give those settings.
    pub args: Vec<String>,
    /// The inputs (absolute paths) in order.
    pub inputs: Vec<InputPrint>,
    /// Read units in all.
    pub units: u64,
    /// The parts, in input order.
    pub parts: Vec<PartPlan>,
}

/// The `build-shards` flags that reproduce the output-affecting settings of `s` (and its
/// mode, for the profile).
pub fn settings_args(s: &Settings) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--mode".into(),
        s.mode.as_str().into(),
        "--shard-size".into(),
        s.profile.shard_size.to_string(),
        "--batch-size".into(),
        s.profile.batch_size.to_string(),
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
    if let Some(sp) = &s.splits {
        opt("--splits", Some(sp.to_string()));
        opt("--seed", Some(s.seed.to_string()));
        opt("--split-key", Some(s.split_key.as_str().into()));
    }
    a
}

/// Cut the run of `s` over `mappings` into `parts` parts balanced by stored bytes.
pub fn make_plan(s: &Settings, mappings: &[FileMapping], parts: usize) -> Result<Plan, String> {
    if parts == 0 {
        return Err("--parts must be at least 1".into());
    }
    if s.dedup == Dedup::Exact {
        return Err("--dedup exact needs every spectrum before the current one, so it cannot be split into parts; convert on one machine, or drop --dedup".into());
    }
    let units = crate::run::pipeline::unit_spans(s, mappings).map_err(|e| e.to_string())?;
    if units.len() < parts {
        return Err(format!(
            "the inputs make {} read units; use at most that many parts (or a smaller --batch-size)",
            units.len()
        ));
    }
    let weight = |u: &crate::run::pipeline::UnitSpan| {
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
    Ok(Plan {
        format: "msms-plan".into(),
        version: PLAN_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        config_hash: s.config_hash(),
        settings: s.output_settings_json(),
        args: settings_args(s),
        inputs,
        units: units.len() as u64,
        parts: out,
    })
}

impl Plan {
    /// Read and check `plan.json`.
    pub fn load(path: &Path) -> Result<Plan, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let p: Plan = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a plan: {e}", path.display()))?;
        if p.format != "msms-plan" || p.version != PLAN_VERSION {
            return Err(format!(
                "{}: format {:?} version {} (this msms reads msms-plan version {PLAN_VERSION})",
                path.display(),
                p.format,
                p.version
            ));
        }
        Ok(p)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plan serialises");
        s.push('\n');
        s
    }

    /// The `msms build-shards` arguments that convert part `k` into `root/parts/k`.
    pub fn part_argv(&self, k: usize, root: &Path) -> Result<Vec<OsString>, String> {
        let part = self.parts.get(k).ok_or_else(|| {
            format!(
                "--part {k}: the plan has parts 0 to {}",
                self.parts.len() - 1
            )
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

/// `root/parts/k`.
pub fn part_root(root: &Path, k: usize) -> PathBuf {
    root.join("parts").join(k.to_string())
}

/// Why `msms merge` refused.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// No usable plan.
    #[error("{0}")]
    Plan(String),
    /// Parts missing or not matching; one line each.
    #[error("cannot merge {}: {} part(s) missing or mismatched:\n  {}", root.display(), problems.len(), problems.join("\n  "))]
    Parts {
        /// The root.
        root: PathBuf,
        /// One line per part problem.
        problems: Vec<String>,
    },
    /// Writing the manifest failed.
    #[error(transparent)]
    Write(#[from] crate::write::error::SinkError),
}

/// Check every part of the plan in `root/plan.json` (manifest, settings, rows, shard digests)
/// and write `root/manifest.json` listing every shard (paths `parts/K/<split>/…`).
pub fn merge(root: &Path) -> Result<Manifest, MergeError> {
    let plan = Plan::load(&root.join("plan.json")).map_err(MergeError::Plan)?;
    let mut problems = Vec::new();
    let mut manifests: Vec<Manifest> = Vec::new();
    for part in &plan.parts {
        let k = part.part;
        let proot = part_root(root, k);
        let path = proot.join("manifest.json");
        let m: Manifest = match std::fs::read_to_string(&path) {
            Ok(t) => match serde_json::from_str(&t) {
                Ok(m) => m,
                Err(e) => {
                    problems.push(format!(
                        "part {k}: {} is not a manifest: {e}",
                        path.display()
                    ));
                    continue;
                }
            },
            Err(_) => {
                let why = if crate::format::checkpoint::path(&proot).exists() {
                    "interrupted (a checkpoint, no manifest): run it again to resume"
                } else {
                    "missing (no manifest): not run, or not finished"
                };
                problems.push(format!(
                    "part {k}: {why}: msms build-shards --plan {} --part {k} --output-root {}",
                    root.join("plan.json").display(),
                    root.display()
                ));
                continue;
            }
        };
        if m.config_hash != plan.config_hash {
            problems.push(format!(
                "part {k}: written with other settings (config hash {}, the plan's {})",
                m.config_hash, plan.config_hash
            ));
            continue;
        }
        if m.counts.read != part.rows {
            problems.push(format!(
                "part {k}: read {} spectra, the plan's part has {}",
                m.counts.read, part.rows
            ));
            continue;
        }
        match crate::commands::verify::verify(&proot, &crate::commands::verify::Options::default())
        {
            Ok(r) if r.problems.is_empty() => manifests.push(m),
            Ok(r) => problems.push(format!(
                "part {k}: {} problem(s) with its shards (run `msms verify {}`)",
                r.problems.len(),
                proot.display()
            )),
            Err(e) => problems.push(format!("part {k}: {e}")),
        }
    }
    if !problems.is_empty() {
        return Err(MergeError::Parts {
            root: root.to_path_buf(),
            problems,
        });
    }
    let first = manifests
        .first()
        .cloned()
        .ok_or_else(|| MergeError::Plan(format!("{}: the plan has no parts", root.display())))?;
    // Shards split by split (in the order of --splits), then part by part (input order).
    let split_names: Vec<String> = first.splits.keys().cloned().collect();
    let mut shards: Vec<ShardRecord> = Vec::new();
    for name in &split_names {
        for (k, m) in manifests.iter().enumerate() {
            for s in m.shards.iter().filter(|s| &s.split == name) {
                let mut s = s.clone();
                s.path = format!("parts/{k}/{}", s.path);
                shards.push(s);
            }
        }
    }
    let mut counts = first.counts.clone();
    for m in &manifests[1..] {
        counts.read += m.counts.read;
        counts.written += m.counts.written;
        counts.rejected_total += m.counts.rejected_total;
        for (k, v) in &m.counts.rejected {
            *counts.rejected.entry(k.clone()).or_insert(0) += v;
        }
    }
    let splits = SplitRecord::tally(&split_names, &shards);
    let merged = Manifest {
        dataset_digest: dataset_digest(&shards),
        splits,
        shards,
        counts,
        run: RunRecord {
            created_at: crate::format::checkpoint::now(),
            num_workers: 0,
            writers: 0,
            decode: String::new(),
            threads: format!("merged from {} parts (msms merge)", manifests.len()),
        },
        ..first
    };
    crate::write::atomic::write_atomic(&root.join("manifest.json"), merged.to_json().as_bytes())?;
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Layer;

    #[test]
    fn settings_args_resolve_back_to_the_same_hash() {
        let cli = Layer {
            max_peaks: Some(64),
            splits: Some("train=0.9,test=0.1".parse().unwrap()),
            seed: Some(3),
            bin_width: Some(0.5),
            bin_range: Some("10:1000".parse().unwrap()),
            max_precursor_mz: Some(1200.5),
            ..Layer::default()
        };
        let s = Settings::resolve(&cli, None, &Layer::default(), 2).unwrap();
        let args = settings_args(&s);
        let mut argv = vec!["msms".to_string(), "build-shards".to_string()];
        argv.extend(args);
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(&argv).unwrap();
        let crate::cli::Command::BuildShards(b) = cli.command else {
            panic!("build-shards")
        };
        let again = Settings::resolve(&b.layer(), None, &Layer::default(), 2).unwrap();
        assert_eq!(again.config_hash(), s.config_hash());
    }
}
