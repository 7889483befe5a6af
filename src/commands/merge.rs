//! `msms merge`: check every part of a plan and write one manifest listing all their shards.

use crate::run::{LockError, RootLock};
use std::path::{Path, PathBuf};

use crate::commands::verify;
use crate::format::manifest::{
    dataset_digest, find_manifest, manifest_name, Manifest, RunRecord, ShardRecord, SplitRecord,
    FORMAT_VERSION, MANIFEST, MANIFEST_NAMES,
};
use crate::run::plan::{part_command, part_root, plan_copy, PartPlan, Plan, PlanError};

/// Why `msms merge` refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MergeError {
    /// No usable plan.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The plan has no parts.
    #[error("{}: the plan has no parts", root.display())]
    NoParts {
        /// The root.
        root: PathBuf,
    },
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
    /// Another command holds the root, or its lock file cannot be made.
    #[error(transparent)]
    Locked(#[from] LockError),
}

/// What [`merge`] wrote, and what it has to say about it.
#[derive(Debug)]
pub(crate) struct Merged {
    /// The manifest written.
    pub(crate) manifest: Manifest,
    /// One line each, for the user (the root could not be locked on this file system).
    pub(crate) notices: Vec<String>,
}

/// Check every part of the plan in `root/_plan.json` (or a format-1 root's `plan.json`: [`plan_copy`]) (manifest, settings, rows, shard digests)
/// and write `root/_manifest.json` listing every shard (paths `parts/K/<split>/…`).
///
/// The parts must all be of one output format. Parts written by a format-1 msms (each with
/// its `manifest.json`) are merged into a format-1 root: `root/manifest.json`, format 1, as
/// their shards' footers say. A manifest of the other name left by an earlier merge is
/// removed, so that the root holds one.
///
/// The root is locked for the merge ([`RootLock`]); another command holding it is an error.
pub(crate) fn merge(root: &Path) -> Result<Merged, MergeError> {
    let plan = Plan::load(&plan_copy(root))?;
    let (_lock, warning) = RootLock::acquire_where_supported(root, "merge")?;
    let notices: Vec<String> = warning.into_iter().collect();
    let mut problems = Vec::new();
    let mut manifests: Vec<Manifest> = Vec::new();
    for part in &plan.parts {
        match checked_part(root, &plan, part) {
            Ok(m) => manifests.push(m),
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() {
        problems = format_problems(root, &plan, &manifests);
    }
    if !problems.is_empty() {
        return Err(MergeError::Parts {
            root: root.to_path_buf(),
            problems,
        });
    }
    let merged = merged(root, &manifests)?;
    let name = manifest_name(merged.format_version);
    crate::write::atomic::write_atomic(&root.join(name), merged.to_json().as_bytes())?;
    for stale in MANIFEST_NAMES.iter().filter(|n| **n != name) {
        let p = root.join(stale);
        if p.is_file() {
            std::fs::remove_file(&p).map_err(|source| crate::write::error::SinkError::Io {
                op: "removing an earlier merge's manifest",
                path: p,
                source,
            })?;
        }
    }
    Ok(Merged {
        manifest: merged,
        notices,
    })
}

/// Parts of an older output format than the newest part's, one line each (shards of two
/// formats cannot be listed in one manifest). The newest is this build's format (a part of a
/// newer one does not verify), so the older parts are the ones to convert again.
fn format_problems(root: &Path, plan: &Plan, manifests: &[Manifest]) -> Vec<String> {
    let newest = manifests
        .iter()
        .map(|m| m.format_version)
        .max()
        .unwrap_or(0);
    manifests
        .iter()
        .zip(&plan.parts)
        .filter(|(m, _)| m.format_version != newest)
        .map(|(m, part)| {
            let k = part.part;
            format!(
                "part {k}: output format {} ({}), other parts format {newest} ({}): all parts must \
                 be of one format; convert it again with this msms: remove {}, then {}",
                m.format_version,
                manifest_name(m.format_version),
                manifest_name(newest),
                part_root(root, k).display(),
                part_command(root, k)
            )
        })
        .collect()
}

/// The manifest of `part`, when it is finished, with the plan's settings and rows, and its
/// shards verify; else the problem, in one line.
fn checked_part(root: &Path, plan: &Plan, part: &PartPlan) -> Result<Manifest, String> {
    let k = part.part;
    let proot = part_root(root, k);
    let path = find_manifest(&proot).unwrap_or_else(|| proot.join(MANIFEST));
    let m: Manifest = match std::fs::read_to_string(&path) {
        Ok(t) => serde_json::from_str(&t)
            .map_err(|e| format!("part {k}: {} is not a manifest: {e}", path.display()))?,
        Err(_) => {
            let why = if let Some(v) = crate::run::other_format_checkpoint(&proot) {
                format!(
                    "interrupted, started by an msms writing output format {v}, which this msms \
                     (format {FORMAT_VERSION}) cannot resume: remove {} and run it again",
                    proot.display()
                )
            } else if crate::format::checkpoint::path(&proot).exists() {
                "interrupted (a checkpoint, no manifest): run it again to resume".into()
            } else {
                "missing (no manifest): not run, or not finished".into()
            };
            return Err(format!("part {k}: {why}: {}", part_command(root, k)));
        }
    };
    if m.config_hash != plan.config_hash {
        return Err(format!(
            "part {k}: written with other settings (config hash {}, the plan's {})",
            m.config_hash, plan.config_hash
        ));
    }
    if m.counts.read != part.rows {
        return Err(format!(
            "part {k}: read {} spectra, the plan's part has {}",
            m.counts.read, part.rows
        ));
    }
    match verify::verify(&proot, &verify::Options::default()) {
        Ok(r) if r.problems.is_empty() => Ok(m),
        Ok(r) => Err(format!(
            "part {k}: {} problem(s) with its shards (run `msms verify {}`)",
            r.problems.len(),
            proot.display()
        )),
        Err(e) => Err(format!("part {k}: {e}")),
    }
}

/// One manifest for the parts' `manifests`: every shard (split by split, in the order of
/// `--splits`, then part by part, in input order), the counts summed.
fn merged(root: &Path, manifests: &[Manifest]) -> Result<Manifest, MergeError> {
    let first = manifests
        .first()
        .cloned()
        .ok_or_else(|| MergeError::NoParts {
            root: root.to_path_buf(),
        })?;
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
        // Parts are in input order, so the first ids of the whole are the first parts'.
        if let Some(r) = &m.counts.invalid_utf8 {
            let whole = counts.invalid_utf8.get_or_insert_with(|| {
                crate::format::manifest::InvalidUtf8Record {
                    spectra: 0,
                    first_spectrum_ids: Vec::new(),
                }
            });
            whole.spectra += r.spectra;
            let room = crate::process::batch::INVALID_UTF8_LISTED
                .saturating_sub(whole.first_spectrum_ids.len());
            whole
                .first_spectrum_ids
                .extend(r.first_spectrum_ids.iter().take(room));
        }
    }
    let splits = SplitRecord::tally(&split_names, &shards);
    Ok(Manifest {
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
    })
}
