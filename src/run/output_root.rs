//! The output root before and after a run: checking it and making it ready (`--overwrite`,
//! `--resume`), removing only what msms-shards writes, and the checkpoint file's saving and
//! removal.

use std::path::{Path, PathBuf};

use crate::format::checkpoint::{self, Checkpoint, CheckpointError, Fingerprint, ShardEntry};
use crate::format::manifest::{find_manifest, Manifest, FORMAT_VERSION, MANIFEST_NAMES};
use crate::run::error::RunError;
use crate::run::progress::Events;
use crate::run::root_lock::RootLock;
use crate::write::atomic::temp_path;
use crate::write::error::SinkError;

/// How a run starts, from what its output root holds.
pub(crate) enum Start {
    /// From the first unit.
    Fresh,
    /// After these finalised shards of an interrupted run (`--resume`).
    Resume(Vec<ShardEntry>),
    /// `--resume` on a root whose run already finished: nothing to do.
    Finished(Box<Manifest>),
}

/// What `build-shards` asks of the output root.
pub(crate) struct Prepare<'a> {
    pub(crate) root: &'a Path,
    /// Replace the output of an earlier run.
    pub(crate) overwrite: bool,
    /// Continue the interrupted run whose checkpoint is in the root.
    pub(crate) resume: bool,
    /// The run's inputs and settings.
    pub(crate) fingerprint: &'a Fingerprint,
    pub(crate) events: Events<'a>,
}

impl Prepare<'_> {
    fn error(&self, message: String) -> RunError {
        RunError::Output {
            path: self.root.to_path_buf(),
            message,
        }
    }

    /// A run from the beginning: with `--resume`, say that there was nothing to resume.
    fn fresh_start(&self) {
        if self.resume {
            self.events.notice(format!(
                "notice: {} holds no checkpoint (the run stopped before its first one): starting from the beginning",
                self.root.display()
            ));
        }
    }

    /// Remove what an earlier run wrote (the checkpoint too).
    fn clear(&self) -> Result<(), RunError> {
        remove_ours(self.root, &[], true).map_err(|e| self.error(e.to_string()))
    }

    /// Check the output root and make it ready: with `overwrite`, remove an earlier run's
    /// output; with `resume`, check the checkpoint against the inputs and settings, re-hash
    /// the shards it lists and remove everything written after them.
    ///
    /// Only what msms-shards writes is ever removed (`_manifest.json`, a format-1 run's
    /// `manifest.json`, `*/shard-*.parquet` and their `.tmp` files, `.msms/checkpoint.json`,
    /// then directories left empty); anything else in the directory stays.
    pub(crate) fn run(&self) -> Result<Start, RunError> {
        let entries = match std::fs::read_dir(self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.fresh_start();
                return std::fs::create_dir_all(self.root)
                    .map(|()| Start::Fresh)
                    .map_err(|e| self.error(format!("cannot create it: {e}")));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                return Err(self.error("is a file, not a directory".into()));
            }
            Err(e) => return Err(self.error(format!("cannot read it: {e}"))),
        };
        // The lock this run holds (`root_lock`) leaves a root empty.
        if entries.filter_map(Result::ok).next().is_none() || crate::run::only_lock(self.root) {
            self.fresh_start();
            return Ok(Start::Fresh);
        }
        let saved = if self.overwrite {
            None
        } else {
            Checkpoint::load(self.root)?
        };
        if !self.resume {
            return self.start_over(saved.as_ref());
        }
        match saved {
            None => self.resume_without_checkpoint(),
            Some(cp) => self.resume_from(&cp),
        }
    }

    /// No `--resume`, a non-empty root: refuse unless `--overwrite` (and no checkpoint).
    fn start_over(&self, saved: Option<&Checkpoint>) -> Result<Start, RunError> {
        if let Some(cp) = saved {
            if let Some(why) = older_format(cp) {
                return Err(self.error(format!(
                    "holds an interrupted run ({}: {} shards finished, {} spectra read) {why}; start over with --overwrite, or finish it with the msms that started it",
                    checkpoint::path(self.root).display(),
                    cp.shards.len(),
                    cp.read_so_far
                )));
            }
            return Err(self.error(format!(
                "holds an interrupted run ({}: {} shards finished, {} spectra read); continue it by adding --resume to the same command, or start over with --overwrite",
                checkpoint::path(self.root).display(),
                cp.shards.len(),
                cp.read_so_far
            )));
        }
        if !self.overwrite {
            return Err(self.error(
                "is not empty; choose an empty or new directory, or pass --overwrite to replace an earlier run's output".into(),
            ));
        }
        self.clear()?;
        Ok(Start::Fresh)
    }

    /// `--resume` with no checkpoint: a finished run of the same inputs and settings is
    /// done; another finished run is refused; anything else starts from the beginning.
    fn resume_without_checkpoint(&self) -> Result<Start, RunError> {
        let found = find_manifest(self.root);
        if let Some((manifest, text)) =
            found.and_then(|p| std::fs::read_to_string(&p).ok().map(|text| (p, text)))
        {
            let m: Manifest = serde_json::from_str(&text)
                .map_err(|e| self.error(format!("{} cannot be read: {e}", manifest.display())))?;
            let name = manifest
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // A finished format-1 root is still a finished run: it is left as it is.
            let (finished, redo) = if m.format_version < FORMAT_VERSION {
                (
                    format!("{name}, output format {}", m.format_version),
                    format!(
                        "; --overwrite converts it again in format {FORMAT_VERSION} (_manifest.json)"
                    ),
                )
            } else {
                (name.clone(), String::new())
            };
            let fingerprint = self.fingerprint;
            let same_inputs = m.inputs.len() == fingerprint.inputs.len()
                && m.inputs
                    .iter()
                    .zip(&fingerprint.inputs)
                    .all(|(a, b)| a.path == b.path && a.bytes == b.bytes);
            if m.config_hash == fingerprint.config_hash && same_inputs {
                self.events.notice(format!(
                    "notice: {} already holds this run, finished ({finished}): nothing to resume{redo}",
                    self.root.display()
                ));
                return Ok(Start::Finished(Box::new(m)));
            }
            return Err(self.error(format!(
                "holds a finished run with other inputs or settings ({finished}) and no checkpoint; use --overwrite to convert again",
            )));
        }
        self.fresh_start();
        self.clear()?;
        Ok(Start::Fresh)
    }

    /// `--resume` from checkpoint `cp`: it must match the inputs and settings; the shards it
    /// lists that still match are kept, everything written after them removed.
    fn resume_from(&self, cp: &Checkpoint) -> Result<Start, RunError> {
        if let Some(why) = older_format(cp) {
            return Err(self.error(format!(
                "cannot resume the interrupted run there ({}) {why}; start over with --overwrite, or finish it with the msms that started it",
                checkpoint::path(self.root).display()
            )));
        }
        let differences = cp.fingerprint.differences(self.fingerprint);
        if !differences.is_empty() {
            return Err(CheckpointError::Mismatch {
                path: checkpoint::path(self.root),
                differences,
            }
            .into());
        }
        let kept = self.verified_shards(cp);
        let keep: Vec<String> = kept.iter().map(|e| e.record.path.clone()).collect();
        remove_ours(self.root, &keep, false).map_err(|e| self.error(e.to_string()))?;
        self.events.notice(format!(
            "resuming {}: {} finished shards verified and kept (the interrupted run had read {} spectra)",
            self.root.display(),
            kept.len(),
            cp.read_so_far
        ));
        Ok(Start::Resume(kept))
    }

    /// Finalised shards must still be what the checkpoint says: re-hash them (in parallel),
    /// keep per split the longest prefix that matches (the shards of a split after a damaged
    /// one are written again).
    fn verified_shards(&self, cp: &Checkpoint) -> Vec<ShardEntry> {
        use rayon::prelude::*;
        let found: Vec<Result<(u64, String), String>> = cp
            .shards
            .par_iter()
            .map(|e| {
                crate::write::hashing::hash_file(&self.root.join(&e.record.path), &mut |_| {})
                    .map(|(sha, bytes)| (bytes, sha))
                    .map_err(|e| e.to_string())
            })
            .collect();
        let mut kept = Vec::new();
        let mut broken: Vec<String> = Vec::new();
        for (e, f) in cp.shards.iter().zip(found) {
            if broken.contains(&e.record.split) {
                continue;
            }
            let why = match f {
                Ok((bytes, sha)) if bytes == e.record.bytes && sha == e.record.sha256 => {
                    kept.push(e.clone());
                    continue;
                }
                Ok((bytes, _)) if bytes != e.record.bytes => {
                    format!("{} bytes, {} recorded", bytes, e.record.bytes)
                }
                Ok(_) => "its SHA-256 differs from the recorded one".into(),
                Err(err) => err,
            };
            self.events.notice(format!(
                "notice: {} does not match the checkpoint ({why}): it and every later shard of its split are written again",
                e.record.path
            ));
            broken.push(e.record.split.clone());
        }
        kept
    }
}

/// The output format of the interrupted run whose checkpoint is in `root`, when it is another
/// than the one this build writes (such a run cannot be resumed: [`older_format`]); `None`
/// when there is no readable checkpoint or it is of this format.
pub(crate) fn other_format_checkpoint(root: &Path) -> Option<u32> {
    Checkpoint::load(root)
        .ok()
        .flatten()
        .map(|cp| cp.fingerprint.format_version)
        .filter(|&v| v != FORMAT_VERSION)
}

/// Why this build cannot continue the run of checkpoint `cp`, when it was started by an msms
/// that wrote another output format: its shards and this build's would mix in one root.
fn older_format(cp: &Checkpoint) -> Option<String> {
    let v = cp.fingerprint.format_version;
    (v != FORMAT_VERSION).then(|| {
        format!(
            "because it was started by msms {} writing output format {v} ({}), and this msms writes format {FORMAT_VERSION} ({}): the shards of one root must all be of one format",
            cp.fingerprint.tool_version,
            crate::format::manifest::manifest_name(v),
            crate::format::manifest::manifest_name(FORMAT_VERSION),
        )
    })
}

/// Why what an earlier run wrote cannot be removed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RemoveError {
    /// The output root cannot be listed.
    #[error("cannot read it: {error}")]
    ReadRoot {
        /// What the system said.
        error: std::io::Error,
    },
    /// A directory in it cannot be listed.
    #[error("cannot read {}: {error}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// A file cannot be removed.
    #[error("cannot remove {}: {error}", path.display())]
    Remove {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
}

fn remove_file(p: &Path) -> Result<(), RemoveError> {
    std::fs::remove_file(p).map_err(|error| RemoveError::Remove {
        path: p.to_path_buf(),
        error,
    })
}

/// Whether `p` is a shard file or its temporary.
pub(crate) fn is_shard_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with("shard-") && (name.ends_with(".parquet") || name.ends_with(".parquet.tmp"))
}

/// Remove what msms-shards writes under `root` except the shards in `keep` (paths relative
/// to the root); the checkpoint too when `checkpoint` is set.
pub(crate) fn remove_ours(
    root: &Path,
    keep: &[String],
    checkpoint: bool,
) -> Result<(), RemoveError> {
    let entries: Vec<_> = std::fs::read_dir(root)
        .map_err(|error| RemoveError::ReadRoot { error })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // symlink_metadata: a symlinked directory is not ours to clean.
        let is_dir = std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
        if is_dir && name == checkpoint::DIR {
            remove_checkpoint_files(&p, checkpoint)?;
        } else if is_dir {
            remove_shards_in(root, &p, keep)?;
        } else if MANIFEST_NAMES
            .iter()
            .any(|m| *m == name || temp_path(Path::new(m)).as_os_str() == name)
        {
            remove_file(&p)?;
        }
    }
    Ok(())
}

/// Leave nothing of a refused run under `root`: what msms-shards wrote there (shards,
/// checkpoint), then, once `lock` is released (its file lives in the root), the root itself
/// when the run created it.
pub(crate) fn abandon(root: &Path, lock: Option<RootLock>, created_root: bool) {
    let _ = remove_ours(root, &[], true);
    drop(lock);
    if created_root {
        let _ = std::fs::remove_dir(root);
    }
}

/// In the checkpoint directory `dir`: the checkpoint's temporary file, and with `checkpoint`
/// the checkpoint and the directory too.
fn remove_checkpoint_files(dir: &Path, checkpoint: bool) -> Result<(), RemoveError> {
    if checkpoint {
        for f in [
            dir.join(checkpoint::FILE),
            temp_path(&dir.join(checkpoint::FILE)),
        ] {
            if f.exists() {
                remove_file(&f)?;
            }
        }
        let _ = std::fs::remove_dir(dir);
    } else {
        let tmp = temp_path(&dir.join(checkpoint::FILE));
        if tmp.exists() {
            remove_file(&tmp)?;
        }
    }
    Ok(())
}

/// The shard files in split directory `dir` not in `keep`, then `dir` if nothing else is in it.
fn remove_shards_in(root: &Path, dir: &Path, keep: &[String]) -> Result<(), RemoveError> {
    let files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|error| RemoveError::ReadDir {
            path: dir.to_path_buf(),
            error,
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    for f in files.iter().filter(|f| f.is_file() && is_shard_file(f)) {
        let rel = f
            .strip_prefix(root)
            .map(|r| r.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        if !keep.contains(&rel) {
            remove_file(f)?;
        }
    }
    // Only removed when nothing else is in it.
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

/// Write the checkpoint under `root` (fsynced when `durable`).
pub(crate) fn save_checkpoint(
    root: &Path,
    cp: &Checkpoint,
    durable: bool,
) -> Result<(), SinkError> {
    let dir = root.join(checkpoint::DIR);
    std::fs::create_dir_all(&dir).map_err(|source| SinkError::Io {
        op: "creating directory",
        path: dir,
        source,
    })?;
    let n = cp.shards.len();
    crate::write::atomic::write_replacing(
        &checkpoint::path(root),
        cp.to_json().as_bytes(),
        durable,
        &|| format!("checkpoint-rename:{n}"),
    )
}

/// Remove `.msms/checkpoint.json` and `.msms` once the manifest is in place.
pub(crate) fn remove_checkpoint(root: &Path) -> Result<(), SinkError> {
    let p = checkpoint::path(root);
    std::fs::remove_file(&p).map_err(|source| SinkError::Io {
        op: "removing the checkpoint",
        path: p,
        source,
    })?;
    let _ = std::fs::remove_dir(root.join(checkpoint::DIR));
    crate::write::atomic::sync_dir(root)
}
