//! `.msms/checkpoint.json`: how far a run got, so that `build-shards --resume` continues it
//! after a crash, a kill, a full disk or Ctrl-C, with nothing lost and nothing duplicated.
//!
//! The checkpoint is written atomically (temporary file, fsync, rename, fsync of the
//! directory) when the run starts and every time a shard is finalised (renamed into place),
//! and records:
//!
//! - a `Fingerprint` of the inputs (path, size, modification time, spectra) and of the
//!   output-affecting settings, so that a resume with other inputs or settings is refused
//!   with a message saying what differs;
//! - the finalised shards, in order, each with its SHA-256 and the `Position` of its split
//!   right after it: the row group whose rows come next and the row ranges of it still to
//!   write, the read unit holding that group's first row and how many of the split's rows of
//!   that unit come before it, and the counts of every unit before that unit;
//! - progress: spectra read so far, updated every `checkpoint_interval` spectra (these updates
//!   are renamed into place but not fsynced: they carry no resume state).
//!
//! Shard boundaries depend only on the data and the settings (`crate::write::planner`), so a resume
//! that re-plans the same units from a recorded position writes the same bytes as the run
//! that was interrupted. A resume re-hashes the recorded shards and continues after the last
//! one that still matches; unfinished `.tmp` files and shards written after the last
//! checkpoint are removed first.
//!
//! Format (`version` 2; version 1, written before row groups were cut independently of read
//! units, is refused with that reason):
//!
//! ```text
//! {
//!   "format": "msms-shards-checkpoint",
//!   "version": 2,
//!   "fingerprint": { "tool_version": "0.1.0", "format_version": 1,
//!                    "config_hash": "sha256:…", "settings": { … },
//!                    "inputs": [ { "path": "a.h5", "bytes": 123, "modified_ns": 1764…,
//!                                  "spectra": 1000 } ] },
//!   "shards": [ { "split": "train", "path": "train/shard-00000.parquet", "rows": 990, "bytes": 456,
//!                 "sha256": "…", "first_spectrum_id": 0, "last_spectrum_id": 999,
//!                 "resume": { "group": 3, "pieces": [[32768, 32768]], "unit": 12, "skip": 40,
//!                             "counts": { "read": 12288, "accepted": 12001,
//!                                         "rejected": { "empty": 3, … } } } } ],
//!   "read_so_far": 20000,
//!   "updated_at": "2026-11-30T01:00:00Z",
//!   "resume_command": "msms build-shards --input-hdf5 a.h5 --output-root out --resume"
//! }
//! ```

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use msms_kernels::RejectReason;
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::format::manifest::{ShardRecord, FORMAT_VERSION};
use crate::process::batch::Counts;
use crate::read::FileMapping;

/// Directory under the output root that holds the checkpoint.
pub(crate) const DIR: &str = ".msms";
/// The checkpoint's file name inside [`DIR`].
pub(crate) const FILE: &str = "checkpoint.json";
/// Version of the checkpoint format.
pub(crate) const VERSION: u32 = 2;

/// Failures reading or checking a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The checkpoint file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file is not a checkpoint this version understands.
    #[error("{} is not a usable checkpoint: {message}", path.display())]
    Invalid {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The checkpoint belongs to a run over other inputs or with other settings.
    #[error("the checkpoint in {} was written for other inputs or settings:\n  {}\nresume with the same inputs and settings, or start over with --overwrite", path.display(), differences.join("\n  "))]
    Mismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// One line per difference.
        differences: Vec<String>,
    },
}

/// A rejection reason in saved counts that this build does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown rejection reason {0:?}")]
pub(crate) struct UnknownReason(String);

/// Path of the checkpoint under `root`.
pub(crate) fn path(root: &Path) -> PathBuf {
    root.join(DIR).join(FILE)
}

/// Counts in a stable, readable form (rejections by reason name).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SavedCounts {
    /// Spectra read.
    pub(crate) read: u64,
    /// Spectra accepted.
    pub(crate) accepted: u64,
    /// Rejections by reason.
    pub(crate) rejected: BTreeMap<String, u64>,
    /// Spectra with a string that was not UTF-8 (absent: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) invalid_utf8: u64,
    /// The first of their `spectrum_id`s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) invalid_utf8_ids: Vec<u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<&Counts> for SavedCounts {
    fn from(c: &Counts) -> Self {
        SavedCounts {
            read: c.read,
            accepted: c.accepted,
            rejected: c
                .rejected_by_reason()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            invalid_utf8: c.invalid_utf8,
            invalid_utf8_ids: c.invalid_utf8_ids.clone(),
        }
    }
}

impl SavedCounts {
    /// Back to [`Counts`]; an unknown reason name is an error.
    pub(crate) fn to_counts(&self) -> Result<Counts, UnknownReason> {
        let mut c = Counts {
            read: self.read,
            accepted: self.accepted,
            invalid_utf8: self.invalid_utf8,
            invalid_utf8_ids: self.invalid_utf8_ids.clone(),
            ..Counts::default()
        };
        for (name, n) in &self.rejected {
            if name == "duplicate" {
                c.duplicate = *n;
                continue;
            }
            let r = RejectReason::ALL
                .iter()
                .find(|r| r.as_str() == name)
                .ok_or_else(|| UnknownReason(name.clone()))?;
            c.rejected[*r as usize] = *n;
        }
        Ok(c)
    }
}

/// A place in a split's rows at which its next shard starts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Position {
    /// Sequence number of the split's row group whose rows come next (the number of row
    /// groups when the split is complete).
    pub(crate) group: u64,
    /// `[start, rows]` ranges of that row group's rows still to write, in order, as the shard
    /// planner had cut them. Empty: the whole row group.
    pub(crate) pieces: Vec<[u64; 2]>,
    /// Sequence number of the read unit that holds that row group's first row (the number of
    /// units when the input is exhausted).
    pub(crate) unit: u64,
    /// The split's accepted rows of `unit` before that first row.
    pub(crate) skip: u64,
    /// Counts of all units before `unit`.
    pub(crate) counts: SavedCounts,
}

/// One input as fingerprinted. (A plan lists its inputs this way.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputPrint {
    /// Path as given.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Modification time, nanoseconds since the Unix epoch (0 if unknown).
    pub modified_ns: u128,
    /// Spectra in the file.
    pub spectra: u64,
}

/// What must be equal for a resume to continue the same output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Fingerprint {
    /// Version of the tool that wrote the checkpoint.
    pub(crate) tool_version: String,
    /// Output layout version.
    pub(crate) format_version: u32,
    /// Hash of the output-affecting settings.
    pub(crate) config_hash: String,
    /// Those settings (to say which one differs).
    pub(crate) settings: serde_json::Value,
    /// The inputs in order.
    pub(crate) inputs: Vec<InputPrint>,
}

impl Fingerprint {
    /// The fingerprint of a run over `mappings` with `settings`.
    pub(crate) fn of(settings: &Settings, mappings: &[FileMapping]) -> Fingerprint {
        Fingerprint {
            tool_version: env!("CARGO_PKG_VERSION").into(),
            format_version: FORMAT_VERSION,
            config_hash: settings.config_hash(),
            settings: settings.output_settings_json(),
            inputs: mappings
                .iter()
                .map(|m| InputPrint {
                    path: m.path.display().to_string(),
                    bytes: m.file_bytes,
                    modified_ns: std::fs::metadata(&m.path)
                        .and_then(|md| md.modified())
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_nanos()),
                    spectra: m.rows,
                })
                .collect(),
        }
    }

    /// One line per difference between the checkpoint's fingerprint (`self`) and `now`.
    pub(crate) fn differences(&self, now: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        if self.tool_version != now.tool_version || self.format_version != now.format_version {
            out.push(format!(
                "tool version: checkpoint {} (format {}), now {} (format {})",
                self.tool_version, self.format_version, now.tool_version, now.format_version
            ));
        }
        let empty = serde_json::Map::new();
        let (a, b) = (
            self.settings.as_object().unwrap_or(&empty),
            now.settings.as_object().unwrap_or(&empty),
        );
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        let null = serde_json::Value::Null;
        for k in keys {
            let (x, y) = (a.get(k).unwrap_or(&null), b.get(k).unwrap_or(&null));
            if x != y {
                out.push(format!("setting {k}: checkpoint {x}, now {y}"));
            }
        }
        if out.is_empty() && self.config_hash != now.config_hash {
            out.push(format!(
                "config hash: checkpoint {}, now {}",
                self.config_hash, now.config_hash
            ));
        }
        if self.inputs.len() != now.inputs.len() {
            out.push(format!(
                "inputs: checkpoint has {} files, now {}",
                self.inputs.len(),
                now.inputs.len()
            ));
        }
        for (i, (x, y)) in self.inputs.iter().zip(&now.inputs).enumerate() {
            let mut what = Vec::new();
            if x.path != y.path {
                what.push(format!("path {} → {}", x.path, y.path));
            }
            if x.bytes != y.bytes {
                what.push(format!("size {} → {} bytes", x.bytes, y.bytes));
            }
            if x.spectra != y.spectra {
                what.push(format!("spectra {} → {}", x.spectra, y.spectra));
            }
            if x.modified_ns != y.modified_ns {
                what.push("modified since the checkpoint".into());
            }
            if !what.is_empty() {
                out.push(format!("input {} ({}): {}", i + 1, y.path, what.join(", ")));
            }
        }
        out
    }
}

/// A finalised shard and where the input stands after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ShardEntry {
    /// The shard.
    #[serde(flatten)]
    pub(crate) record: ShardRecord,
    /// Where the next shard starts.
    pub(crate) resume: Position,
}

/// The checkpoint file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// Always `msms-shards-checkpoint`.
    pub(crate) format: String,
    /// [`VERSION`].
    pub(crate) version: u32,
    /// Inputs and settings of the run.
    pub(crate) fingerprint: Fingerprint,
    /// Finalised shards, in order.
    pub(crate) shards: Vec<ShardEntry>,
    /// Spectra read when the checkpoint was last updated (progress only).
    pub(crate) read_so_far: u64,
    /// RFC 3339 UTC time of the last update.
    pub(crate) updated_at: String,
    /// The command that continues the run (`--resume` added), as the command line that
    /// started it; shown by `msms status`. Absent in checkpoints written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) resume_command: Option<String>,
}

impl Checkpoint {
    /// A checkpoint with no shards yet.
    pub(crate) fn new(fingerprint: Fingerprint) -> Checkpoint {
        Checkpoint {
            format: "msms-shards-checkpoint".into(),
            version: VERSION,
            fingerprint,
            shards: Vec::new(),
            read_so_far: 0,
            updated_at: now(),
            resume_command: None,
        }
    }

    /// Where the input stands after the last finalised shard.
    #[cfg(test)]
    fn position(&self) -> Position {
        self.shards
            .last()
            .map(|s| s.resume.clone())
            .unwrap_or_default()
    }

    /// Read the checkpoint under `root`, if there is one.
    pub(crate) fn load(root: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
        let p = path(root);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CheckpointError::Read { path: p, source }),
        };
        let invalid = |message: String| CheckpointError::Invalid {
            path: p.clone(),
            message,
        };
        // The format and version first: an older checkpoint does not have today's fields.
        #[derive(Deserialize)]
        struct Header {
            format: String,
            version: u32,
        }
        let h: Header = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if h.format != "msms-shards-checkpoint" || h.version != VERSION {
            let why = if h.version < VERSION {
                "; it was written by an earlier msms, whose row groups followed the read units, \
                 so the run cannot be continued: start it again with --overwrite"
            } else {
                ""
            };
            return Err(invalid(format!(
                "format {:?} version {} (this build reads version {VERSION}){why}",
                h.format, h.version
            )));
        }
        let c: Checkpoint = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        Ok(Some(c))
    }

    /// Pretty JSON with a trailing newline.
    pub(crate) fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("checkpoint serialises");
        s.push('\n');
        s
    }
}

/// Now, RFC 3339 UTC, seconds.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_round_trip_by_reason_name() {
        let mut c = Counts {
            read: 10,
            accepted: 7,
            ..Counts::default()
        };
        c.rejected[RejectReason::ALL[1] as usize] = 3;
        let saved = SavedCounts::from(&c);
        assert_eq!(saved.rejected[RejectReason::ALL[1].as_str()], 3);
        assert_eq!(saved.to_counts().unwrap(), c);
        let mut bad = saved.clone();
        bad.rejected.insert("no_such_reason".into(), 1);
        assert_eq!(
            bad.to_counts().unwrap_err().to_string(),
            "unknown rejection reason \"no_such_reason\""
        );
    }

    #[test]
    fn differences_name_the_setting_and_the_input() {
        let print = |bytes: u64, normalize: &str| Fingerprint {
            tool_version: "0.1.0".into(),
            format_version: 1,
            config_hash: format!("sha256:{normalize}"),
            settings: serde_json::json!({ "normalize": normalize, "min_peaks": 1 }),
            inputs: vec![InputPrint {
                path: "a.h5".into(),
                bytes,
                modified_ns: 5,
                spectra: 10,
            }],
        };
        assert!(print(1, "max").differences(&print(1, "max")).is_empty());
        let d = print(1, "max").differences(&print(2, "sum"));
        assert_eq!(
            d,
            vec![
                "setting normalize: checkpoint \"max\", now \"sum\"".to_string(),
                "input 1 (a.h5): size 1 → 2 bytes".to_string(),
            ]
        );
    }

    #[test]
    fn a_checkpoint_round_trips_and_gives_the_last_position() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Checkpoint::load(dir.path()).unwrap().is_none());
        let mut c = Checkpoint::new(Fingerprint {
            tool_version: "0.1.0".into(),
            format_version: 1,
            config_hash: "sha256:x".into(),
            settings: serde_json::json!({}),
            inputs: vec![],
        });
        assert_eq!(c.position(), Position::default());
        let resume = Position {
            group: 2,
            pieces: vec![[10, 20], [30, 5]],
            unit: 3,
            skip: 7,
            counts: SavedCounts::default(),
        };
        c.shards.push(ShardEntry {
            record: ShardRecord {
                split: "train".into(),
                path: "train/shard-00000.parquet".into(),
                rows: 1,
                bytes: 2,
                sha256: "ab".into(),
                first_spectrum_id: 0,
                last_spectrum_id: 0,
            },
            resume: resume.clone(),
        });
        std::fs::create_dir_all(dir.path().join(DIR)).unwrap();
        std::fs::write(path(dir.path()), c.to_json()).unwrap();
        let back = Checkpoint::load(dir.path()).unwrap().unwrap();
        assert_eq!(back, c);
        assert_eq!(back.position(), resume);
        std::fs::write(path(dir.path()), "{\"format\": 1}").unwrap();
        let err = Checkpoint::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is not a usable checkpoint"), "{err}");
        // A version-1 checkpoint (positions in read units, no row groups) says why it cannot
        // be continued, rather than which field it lacks.
        let v1 = c.to_json().replace("\"version\": 2", "\"version\": 1");
        assert!(v1.contains("\"version\": 1"), "{v1}");
        std::fs::write(path(dir.path()), v1).unwrap();
        let err = Checkpoint::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("version 1 (this build reads version 2)"),
            "{err}"
        );
        assert!(err.contains("start it again with --overwrite"), "{err}");
    }
}
