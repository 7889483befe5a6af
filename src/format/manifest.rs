//! `_manifest.json`: the record of a run, written last and atomically.
//!
//! Format (version `FORMAT_VERSION`); every field is always
//! present but `rebalanced_from`:
//!
//! ```text
//! {
//!   "format": "msms-shards",
//!   "format_version": 2,
//!   "tool_version": "0.1.0",
//!   "config_hash": "sha256:…",            // over the settings that affect the output bytes
//!   "settings": { … },                    // those settings, resolved
//!   "mode": "local",
//!   "profile": { "shard_size": "1GB", "batch_size": 1000, … },
//!   "schema": [ { "name": "spectrum_id", "type": "UInt64", "nullable": false }, … ],
//!   "inputs": [ { "path": "…", "bytes": 123, "spectra": 1000, "first_spectrum_id": 0,
//!                 "left_out": [ { "dataset": "pair", "reason": "unsupported dtype …" } ] } ],
//!                                         // left_out only when a dataset was left out
//!   "counts": { "read": 1000, "written": 990, "rejected_total": 10,
//!               "rejected": { "empty": 1, "non_finite": 2, … },
//!               "invalid_utf8": { "spectra": 2, "first_spectrum_ids": [3, 40] } },
//!                                         // invalid_utf8 only when a string was not UTF-8
//!   "splits": { "train": { "rows": 990, "shards": 1, "bytes": 456 } },
//!   "shards": [ { "split": "train", "path": "train/shard-00000.parquet", "rows": 990,
//!                 "bytes": 456, "sha256": "…", "first_spectrum_id": 0,
//!                 "last_spectrum_id": 999 } ],
//!   "dataset_digest": "sha256:…",         // over "<path> <sha256>\n" of every shard in order
//!   "rebalanced_from": { "dataset_digest": "sha256:…", "config_hash": "sha256:…" },
//!                                         // only in a root written by `msms rebalance`
//!   "run": { "created_at": "2026-11-29T19:00:00Z", "num_workers": 2, "writers": 1,
//!            "decode": "native", "threads": "2 workers, not pinned (local mode)" }
//! }
//! ```
//!
//! Everything outside `run` depends only on the inputs and the output-affecting settings, so
//! two runs over the same inputs with the same settings give the same manifest but for `run`.
//!
//! # Versions
//!
//! - 2: the manifest is `ROOT/_manifest.json`, so that nothing but shards is left where
//!   dataset readers look (they skip names starting with `_` or `.`): `pandas.read_parquet(ROOT)`
//!   and the like read the root with no options. Shards and the manifest's fields are as in 1.
//! - 1: the manifest was `ROOT/manifest.json`.
//!
//! Every command that reads a root finds its manifest with [`find_manifest`], so format-1
//! roots are still verified, reported on and merged; a manifest's name goes with its
//! `format_version` ([`manifest_name`]), and shard footers carry the same version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::process::batch::Counts;
use sha2::{Digest, Sha256};

/// One input file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    /// Path as given on the command line or in the config.
    pub path: String,
    /// File size in bytes.
    pub bytes: u64,
    /// Spectra in the file.
    pub spectra: u64,
    /// `spectrum_id` of the file's first row (ids number all inputs as one sequence).
    pub first_spectrum_id: u64,
    /// Per-spectrum datasets no output column could carry, left out (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOutRecord>,
}

/// A dataset of an input left out of the conversion, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOutRecord {
    /// Its name in the file.
    pub dataset: String,
    /// Why no column carries it (its type or shape).
    pub reason: String,
}

/// One column of the shard schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnRecord {
    /// Column name.
    pub name: String,
    /// Arrow type, as Arrow prints it.
    #[serde(rename = "type")]
    pub data_type: String,
    /// May hold nulls.
    pub nullable: bool,
}

/// Spectra counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountsRecord {
    /// Read from the inputs.
    pub read: u64,
    /// Written to shards.
    pub written: u64,
    /// Rejected, all reasons.
    pub rejected_total: u64,
    /// Rejected, by reason (every reason listed).
    pub rejected: BTreeMap<String, u64>,
    /// Spectra read with a string (name, lsh, a pass-through column) whose bytes were not
    /// UTF-8, replaced by U+FFFD (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_utf8: Option<InvalidUtf8Record>,
}

/// Strings that were not UTF-8, replaced by U+FFFD.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidUtf8Record {
    /// Spectra with such a string.
    pub spectra: u64,
    /// The `spectrum_id`s of the first of them (at most 10), ascending.
    pub first_spectrum_ids: Vec<u64>,
}

impl InvalidUtf8Record {
    /// The record of `counts`, when it has any.
    pub(crate) fn of(counts: &Counts) -> Option<InvalidUtf8Record> {
        (counts.invalid_utf8 > 0).then(|| InvalidUtf8Record {
            spectra: counts.invalid_utf8,
            first_spectrum_ids: counts.invalid_utf8_ids.clone(),
        })
    }
}

/// One split's share of the output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitRecord {
    /// Spectra written to the split.
    pub rows: u64,
    /// Its shards.
    pub shards: u64,
    /// Bytes of its shards.
    pub bytes: u64,
}

impl SplitRecord {
    /// Each split in `names` (in that order) with the rows, shards and bytes of `shards`.
    pub(crate) fn tally(
        names: &[String],
        shards: &[ShardRecord],
    ) -> indexmap::IndexMap<String, Self> {
        names
            .iter()
            .map(|name| {
                let of = || shards.iter().filter(|s| &s.split == name);
                let record = SplitRecord {
                    rows: of().map(|s| s.rows).sum(),
                    shards: of().count() as u64,
                    bytes: of().map(|s| s.bytes).sum(),
                };
                (name.clone(), record)
            })
            .collect()
    }
}

/// The root a rebalanced root was rewritten from (`msms rebalance`): the same rows, in other
/// shards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebalancedFrom {
    /// The source root's `dataset_digest`.
    pub dataset_digest: String,
    /// The source root's `config_hash`.
    pub config_hash: String,
}

/// Facts about this execution that do not affect the output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// RFC 3339 UTC time the manifest was written.
    pub created_at: String,
    /// Worker threads used.
    pub num_workers: usize,
    /// Shard writer threads used.
    pub writers: usize,
    /// Row decoder (`native` or `libhdf5`); the output does not depend on it.
    #[serde(default)]
    pub decode: String,
    /// Thread placement, e.g. `2 workers, not pinned (local mode)`.
    #[serde(default)]
    pub threads: String,
}

/// The manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `msms-shards`.
    pub format: String,
    /// Layout version.
    pub format_version: u32,
    /// Version of the tool that wrote the run.
    pub tool_version: String,
    /// Hash of the output-affecting settings.
    pub config_hash: String,
    /// The output-affecting settings.
    pub settings: serde_json::Value,
    /// Mode profile name.
    pub mode: String,
    /// Resolved profile.
    pub profile: serde_json::Value,
    /// Shard schema.
    pub schema: Vec<ColumnRecord>,
    /// Inputs in order; `spectrum_id`s number them as one sequence.
    pub inputs: Vec<InputRecord>,
    /// Counts.
    pub counts: CountsRecord,
    /// Rows, shards and bytes per split (`train` only, unless `--splits`), in the order of
    /// `--splits`.
    #[serde(default)]
    pub splits: indexmap::IndexMap<String, SplitRecord>,
    /// Shards in order: split by split (in the order of `--splits`), then by index.
    pub shards: Vec<ShardRecord>,
    /// Digest over the shard digests.
    pub dataset_digest: String,
    /// The root this one was rewritten from by `msms rebalance`; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalanced_from: Option<RebalancedFrom>,
    /// This execution.
    pub run: RunRecord,
}

impl RunRecord {
    /// This run's record, stamped now.
    pub(crate) fn now(
        num_workers: usize,
        writers: usize,
        decode: &str,
        threads: &str,
    ) -> RunRecord {
        RunRecord {
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            num_workers,
            writers,
            decode: decode.to_string(),
            threads: threads.to_string(),
        }
    }
}

impl Manifest {
    /// Assemble the manifest of a finished run.
    pub(crate) fn new(
        settings: &Settings,
        schema: &SchemaRef,
        inputs: Vec<InputRecord>,
        counts: &Counts,
        shards: &[ShardRecord],
        splits: &[String],
        run: RunRecord,
    ) -> Manifest {
        let mut profile = serde_json::to_value(settings.profile).unwrap_or_default();
        if let Some(p) = profile.as_object_mut() {
            // Execution details live in `run`, so that the rest is deterministic.
            p.remove("num_workers");
            p.remove("writers");
        }
        Manifest {
            format: "msms-shards".into(),
            format_version: FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            config_hash: settings.config_hash(),
            settings: settings.output_settings_json(),
            mode: settings.mode.as_str().into(),
            profile,
            schema: schema
                .fields()
                .iter()
                .map(|f| ColumnRecord {
                    name: f.name().clone(),
                    data_type: f.data_type().to_string(),
                    nullable: f.is_nullable(),
                })
                .collect(),
            inputs,
            counts: CountsRecord {
                read: counts.read,
                written: shards.iter().map(|s| s.rows).sum(),
                rejected_total: counts.rejected_total(),
                rejected: counts
                    .rejected_by_reason()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                invalid_utf8: InvalidUtf8Record::of(counts),
            },
            splits: SplitRecord::tally(splits, shards),
            shards: shards.to_vec(),
            dataset_digest: dataset_digest(shards),
            rebalanced_from: None,
            run,
        }
    }

    /// Pretty JSON with a trailing newline.
    pub(crate) fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("manifest serialises");
        s.push('\n');
        s
    }
}

/// Version of the on-disk layout (shard files, columns, manifest) that this build writes.
/// Bumped on any change readers must know about; see the module documentation for what
/// each version changed. Versions 1 to this one are read.
pub(crate) const FORMAT_VERSION: u32 = 2;

/// A finalised shard, as recorded in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardRecord {
    /// Split (`train`).
    pub split: String,
    /// Path relative to the output root, `/`-separated.
    pub path: String,
    /// Spectra in the shard.
    pub rows: u64,
    /// File size.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    /// `spectrum_id` of the first row.
    pub first_spectrum_id: u64,
    /// `spectrum_id` of the last row.
    pub last_spectrum_id: u64,
}

/// SHA-256 over the shard list in order: one line `<path> <sha256>\n` per shard. Identifies
/// the dataset's content as a whole.
pub fn dataset_digest(shards: &[ShardRecord]) -> String {
    let mut h = Sha256::new();
    for s in shards {
        h.update(s.path.as_bytes());
        h.update(b" ");
        h.update(s.sha256.as_bytes());
        h.update(b"\n");
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Name of the manifest file in an output root (format 2 on).
pub(crate) const MANIFEST: &str = "_manifest.json";

/// Name of the manifest file in a format-1 output root.
pub(crate) const MANIFEST_V1: &str = "manifest.json";

/// Every name a manifest has had, in the order [`find_manifest`] looks for them.
pub(crate) const MANIFEST_NAMES: [&str; 2] = [MANIFEST, MANIFEST_V1];

/// The manifest's file name in a root of format `format_version`.
pub(crate) fn manifest_name(format_version: u32) -> &'static str {
    if format_version <= 1 {
        MANIFEST_V1
    } else {
        MANIFEST
    }
}

/// The manifest of the output root `root`: `_manifest.json` if it exists, else the format-1
/// `manifest.json` if that exists; `None` when neither does (no finished run). What is found
/// is not read: the version inside is the caller's to check.
pub(crate) fn find_manifest(root: &Path) -> Option<PathBuf> {
    MANIFEST_NAMES
        .iter()
        .map(|name| root.join(name))
        .find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_digest_is_over_path_and_digest_lines() {
        let rec = |path: &str, sha: &str| ShardRecord {
            split: "train".into(),
            path: path.into(),
            rows: 1,
            bytes: 1,
            sha256: sha.into(),
            first_spectrum_id: 0,
            last_spectrum_id: 0,
        };
        let shards = [
            rec("train/shard-00000.parquet", "aa"),
            rec("train/shard-00001.parquet", "bb"),
        ];
        let want = hex::encode(Sha256::digest(
            b"train/shard-00000.parquet aa\ntrain/shard-00001.parquet bb\n",
        ));
        assert_eq!(dataset_digest(&shards), format!("sha256:{want}"));
        assert_ne!(dataset_digest(&shards[..1]), dataset_digest(&shards));
    }

    #[test]
    fn the_manifest_is_found_under_either_name_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(find_manifest(root), None);
        std::fs::write(root.join("manifest.json"), "{}").unwrap();
        assert_eq!(find_manifest(root), Some(root.join("manifest.json")));
        std::fs::write(root.join("_manifest.json"), "{}").unwrap();
        assert_eq!(find_manifest(root), Some(root.join("_manifest.json")));
        assert_eq!(manifest_name(1), "manifest.json");
        assert_eq!(manifest_name(FORMAT_VERSION), "_manifest.json");
        assert!(
            MANIFEST.starts_with('_'),
            "dataset readers must skip the manifest"
        );
    }
}
