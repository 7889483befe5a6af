//! `msms verify`: check a finished output root against its manifest (`_manifest.json`, or a
//! format-1 root's `manifest.json`: [`find_manifest`]).
//!
//! [`Verifier::open`] reads and checks the manifest (format `msms-shards`, a known
//! `format_version`); a root whose manifest cannot be used is a [`VerifyError`]. [`Verifier::run`]
//! then checks every shard the manifest lists, several at a time on a thread pool, and returns
//! a [`Report`] whose problems are in manifest order. Nothing is modified.
//!
//! Every run checks, for each shard:
//!
//! - the file exists, its size equals `bytes` and its SHA-256 (streamed, never read whole into
//!   memory) equals `sha256`. A shard that differs here is not opened further: its bytes are
//!   not the ones recorded, so whatever else is wrong with them follows from that;
//! - the Parquet footer is readable, its row count equals `rows`, its Arrow schema equals the
//!   manifest's `schema` (name, type, nullable, column by column), and its key-value metadata
//!   (`msms_shards.config_hash`, `msms_shards.format_version`, `msms_shards.tool_version`)
//!   equals the manifest's;
//! - the `spectrum_id` column (read alone: cheap) starts at `first_spectrum_id`, ends at
//!   `last_spectrum_id`, and strictly increases, within the shard and across the shards of
//!   its split;
//!
//! and for the dataset: `dataset_digest` recomputed from the shard list
//! ([`dataset_digest`]) equals the manifest's; `counts.written` is the sum of the shards'
//! rows, `counts.rejected_total` the sum of `counts.rejected`, and `counts.read` their sum;
//! every `<split>/shard-*.parquet` file under the root is listed in the manifest; no `*.tmp`
//! file is left in the root, its split directories or `.msms/`.
//!
//! [`Options::full`] also reads every row and checks every spectrum against what the writer
//! guarantees (see [`check_spectrum`]): finite, positive, strictly ascending m/z; finite,
//! positive intensities; `num_peaks` equal to both list lengths; the peak count within
//! `min_peaks` and `max_peaks`; the precursor m/z accepted by the recorded rules; the GeMS
//! quality format when one was required; and the intensities normalised as recorded.
//! Problems about single spectra are listed up to [`Options::max_listed`]; the rest are
//! counted in [`Report::omitted`].

//!
//! Rooms: [`problems`] (what a problem is and how it reads), [`spectrum`] (the per-spectrum
//! rules of `--full`), [`shard`] (the checks of one shard and the files no manifest lists).

mod problems;
mod shard;
mod spectrum;

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::commands::shard_pool;
use crate::format::manifest::Manifest;
use crate::format::manifest::{
    dataset_digest, find_manifest, ShardRecord, FORMAT_VERSION, MANIFEST, MANIFEST_V1,
};
use crate::format::paths::is_plain_relative;

pub(crate) use problems::{Problem, ProblemKind, Recorded};
use shard::{stray_files, ShardContext, ShardOutcome};
pub(crate) use spectrum::{check_spectrum, SpectrumFault, SpectrumRules, SpectrumView};

/// Default of [`Options::max_listed`].
pub(crate) const DEFAULT_MAX_LISTED: usize = 20;

/// Why a root could not be verified at all (the CLI exits 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum VerifyError {
    /// The root does not exist or is not a directory.
    #[error(
        "{}: {} (give the output root of `msms build-shards`)",
        path.display(),
        if *exists { "not a directory" } else { "no such directory" }
    )]
    NotADirectory {
        /// The root.
        path: PathBuf,
        /// Something (not a directory) is there.
        exists: bool,
    },
    /// There is no manifest (`_manifest.json`, nor a format-1 root's `manifest.json`).
    #[error(
        "{}: no such file (nor {MANIFEST_V1}, as format 1 named it): not the output root of a finished `msms build-shards` run{}",
        path.display(),
        if *interrupted {
            " (.msms/checkpoint.json is there: an interrupted run; finish it with \
             `msms build-shards ... --resume`)"
        } else {
            ""
        }
    )]
    NoManifest {
        /// Where the manifest should be.
        path: PathBuf,
        /// The root holds a checkpoint of an unfinished run.
        interrupted: bool,
    },
    /// The manifest cannot be read.
    #[error("cannot read {}", path.display())]
    ReadManifest {
        /// The manifest.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The manifest is not a manifest.
    #[error("{}: not an msms-shards manifest", path.display())]
    ParseManifest {
        /// The manifest.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// `format` is not `msms-shards`.
    #[error("{}: format is {found}, not \"msms-shards\"", path.display())]
    Format {
        /// The manifest.
        path: PathBuf,
        /// The `format` found (JSON).
        found: String,
    },
    /// `format_version` is one this build does not know.
    #[error(
        "{}: format_version {found} is not one this msms reads (1 to {FORMAT_VERSION}); \
         verify it with the msms that wrote it",
        path.display()
    )]
    Version {
        /// The manifest.
        path: PathBuf,
        /// The `format_version` found (JSON).
        found: String,
    },
    /// The thread pool could not be started.
    #[error("cannot start {threads} verification threads: {message}")]
    Threads {
        /// Threads asked for.
        threads: usize,
        /// The cause.
        message: String,
    },
}

/// How to verify.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// Also read every row and check every spectrum.
    pub(crate) full: bool,
    /// Threads hashing and reading shards (each works on a different shard); `None`: one
    /// per core.
    pub(crate) threads: Option<usize>,
    /// Problems about single spectra listed in the report; the rest are only counted.
    pub(crate) max_listed: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            full: false,
            threads: None,
            max_listed: DEFAULT_MAX_LISTED,
        }
    }
}

/// The outcome of a verification.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Report {
    /// Shards listed in the manifest.
    pub(crate) shards: usize,
    /// Rows the manifest records (sum over shards).
    pub(crate) rows: u64,
    /// Bytes read while hashing the shards.
    pub(crate) bytes: u64,
    /// Whether every spectrum was checked ([`Options::full`]).
    pub(crate) full: bool,
    /// Spectra checked one by one (`--full`).
    pub(crate) spectra_checked: u64,
    /// Problems: each shard's in manifest order, then the dataset's (filed under the
    /// manifest's name), then
    /// files the manifest does not list. Spectrum problems beyond [`Options::max_listed`]
    /// are left out and counted in [`omitted`](Self::omitted).
    pub(crate) problems: Vec<Problem>,
    /// Spectrum problems found but not listed.
    pub(crate) omitted: u64,
}

impl Report {
    /// No problem found.
    pub(crate) fn is_ok(&self) -> bool {
        self.problems.is_empty() && self.omitted == 0
    }

    /// Problems found, listed or not.
    pub(crate) fn problem_count(&self) -> u64 {
        self.problems.iter().map(|p| 1 + p.same_in).sum::<u64>() + self.omitted
    }
}

/// An output root whose manifest has been read and accepted.
#[derive(Debug)]
pub(crate) struct Verifier {
    root: PathBuf,
    manifest: Manifest,
    /// The manifest's file name (`_manifest.json`, or `manifest.json` in a format-1 root).
    manifest_name: String,
}

impl Verifier {
    /// Find the manifest of `root` ([`find_manifest`]) and check it is an msms-shards
    /// manifest of a known version.
    pub(crate) fn open(root: &Path) -> Result<Verifier, VerifyError> {
        if !root.is_dir() {
            return Err(VerifyError::NotADirectory {
                path: root.to_path_buf(),
                exists: root.exists(),
            });
        }
        let path = find_manifest(root).unwrap_or_else(|| root.join(MANIFEST));
        let text = std::fs::read_to_string(&path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                VerifyError::NoManifest {
                    path: path.clone(),
                    interrupted: crate::format::checkpoint::path(root).is_file(),
                }
            } else {
                VerifyError::ReadManifest {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let parse_err = |source| VerifyError::ParseManifest {
            path: path.clone(),
            source,
        };
        // Format and version first, so that another file or version gets the right message.
        let value: serde_json::Value = serde_json::from_str(&text).map_err(parse_err)?;
        let format = value.get("format").unwrap_or(&serde_json::Value::Null);
        if format != "msms-shards" {
            return Err(VerifyError::Format {
                path,
                found: format.to_string(),
            });
        }
        let version = value
            .get("format_version")
            .unwrap_or(&serde_json::Value::Null);
        if !version
            .as_u64()
            .is_some_and(|v| (1..=u64::from(FORMAT_VERSION)).contains(&v))
        {
            return Err(VerifyError::Version {
                path,
                found: version.to_string(),
            });
        }
        let manifest: Manifest = serde_json::from_value(value).map_err(parse_err)?;
        let manifest_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Verifier {
            root: root.to_path_buf(),
            manifest,
            manifest_name,
        })
    }

    /// The manifest.
    pub(crate) fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Units of work [`run`](Self::run) reports through its progress callback: the shards'
    /// recorded bytes, twice with `full` (hashing, then reading the rows).
    pub(crate) fn work(&self, full: bool) -> u64 {
        let bytes: u64 = self.manifest.shards.iter().map(|s| s.bytes).sum();
        if full {
            2 * bytes
        } else {
            bytes
        }
    }

    /// Check everything; `progress` is called with increments of [`work`](Self::work) from
    /// the worker threads.
    pub(crate) fn run(
        &self,
        opts: &Options,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Report, VerifyError> {
        let m = &self.manifest;
        let (rules, unknown) = SpectrumRules::from_settings(&m.settings);
        // Settings the spectrum checks cannot use: reported after the dataset checks.
        let settings_notes: Vec<Problem> = if opts.full {
            unknown
                .into_iter()
                .map(|k| Problem::new(&self.manifest_name, k))
                .collect()
        } else {
            Vec::new()
        };
        let (plan, seen) = plan_paths(&m.shards);
        let ctx = ShardContext {
            root: &self.root,
            manifest: m,
            full: opts.full,
            rules,
            cap: opts.max_listed,
            progress,
        };
        let outcomes = check_shards(&ctx, &plan, opts.threads)?;
        let mut report = Report::empty(m, opts.full);
        report.gather(outcomes, &m.shards, opts.max_listed);
        report.check_dataset(m, &self.manifest_name);
        report.problems.extend(settings_notes);
        report.problems.extend(stray_files(&self.root, &seen));
        Ok(report)
    }
}

/// Each shard with the reason it is not opened, if any (a path outside the root, or one
/// listed before), and the set of paths listed.
fn plan_paths(
    shards: &[ShardRecord],
) -> (Vec<(&ShardRecord, Option<ProblemKind>)>, BTreeSet<&str>) {
    let mut seen = BTreeSet::new();
    let plan = shards
        .iter()
        .map(|rec| {
            let refuse = if !is_plain_relative(&rec.path) {
                Some(ProblemKind::BadPath)
            } else if !seen.insert(rec.path.as_str()) {
                Some(ProblemKind::Duplicate)
            } else {
                None
            };
            (rec, refuse)
        })
        .collect();
    (plan, seen)
}

/// Check every planned shard on a pool of `threads`; outcomes in plan order.
fn check_shards(
    ctx: &ShardContext<'_>,
    plan: &[(&ShardRecord, Option<ProblemKind>)],
    threads: Option<usize>,
) -> Result<Vec<ShardOutcome>, VerifyError> {
    let pool = shard_pool(threads, "msms-verify")
        .map_err(|(threads, message)| VerifyError::Threads { threads, message })?;
    Ok(pool.install(|| {
        plan.par_iter()
            .map(|(rec, refuse)| match refuse {
                Some(kind) => {
                    (ctx.progress)(if ctx.full { 2 * rec.bytes } else { rec.bytes });
                    ShardOutcome::refused(&rec.path, kind.clone())
                }
                None => ctx.check(rec),
            })
            .collect()
    }))
}

impl Report {
    /// A report of `m`'s shards with nothing checked yet.
    fn empty(m: &Manifest, full: bool) -> Report {
        Report {
            shards: m.shards.len(),
            rows: m.shards.iter().map(|s| s.rows).sum(),
            bytes: 0,
            full,
            spectra_checked: 0,
            problems: Vec::new(),
            omitted: 0,
        }
    }

    /// Add the shards' outcomes in manifest order; spectrum problems capped at `cap` across
    /// the whole dataset, a manifest-wide problem listed once.
    fn gather(&mut self, outcomes: Vec<ShardOutcome>, shards: &[ShardRecord], cap: usize) {
        let mut listed = 0usize;
        // Ids increase within each split (splits interleave in spectrum_id order).
        let mut previous_last: HashMap<&str, u64> = HashMap::new();
        for (out, rec) in outcomes.into_iter().zip(shards) {
            self.bytes += out.bytes;
            self.spectra_checked += out.spectra_checked;
            let mut shard_problems = out.problems;
            if let Some((first, last)) = out.ids {
                let previous_last = previous_last.entry(rec.split.as_str()).or_insert(u64::MAX);
                let previous = Some(*previous_last).filter(|&p| p != u64::MAX);
                if let Some(previous) = previous.filter(|&p| first <= p) {
                    let fault = SpectrumFault::IdOrder { previous };
                    let kind = ProblemKind::Spectrum {
                        row: 0,
                        spectrum_id: first,
                        fault,
                    };
                    shard_problems.insert(0, Problem::new(&out.file, kind));
                }
                *previous_last = last;
            }
            for p in shard_problems {
                self.list(p, &mut listed, cap);
            }
            self.omitted += out.omitted;
        }
    }

    /// List `p`, unless it repeats an earlier manifest-wide problem (then counted there) or
    /// is a spectrum problem beyond the `cap` (`listed` so far; then only counted).
    fn list(&mut self, p: Problem, listed: &mut usize, cap: usize) {
        let earlier = p.is_manifest_wide().then(|| {
            self.problems
                .iter_mut()
                .find(|q| q.kind == p.kind && q.is_manifest_wide())
        });
        if let Some(Some(q)) = earlier {
            q.same_in += 1;
        } else if !p.is_spectrum() {
            self.problems.push(p);
        } else if *listed < cap {
            *listed += 1;
            self.problems.push(p);
        } else {
            self.omitted += 1;
        }
    }

    /// The dataset as a whole: its digest and counts (problems filed under `d`, the
    /// manifest's file name).
    fn check_dataset(&mut self, m: &Manifest, d: &str) {
        let digest = dataset_digest(&m.shards);
        if digest != m.dataset_digest {
            self.problems.push(Problem::mismatch(
                d,
                Recorded::DatasetDigest,
                &m.dataset_digest,
                digest,
            ));
        }
        let c = &m.counts;
        if c.written != self.rows {
            self.problems.push(Problem::mismatch(
                d,
                Recorded::Written,
                c.written,
                self.rows,
            ));
        }
        let rejected: u64 = c.rejected.values().sum();
        if c.rejected_total != rejected {
            self.problems.push(Problem::mismatch(
                d,
                Recorded::RejectedTotal,
                c.rejected_total,
                rejected,
            ));
        }
        if c.read != c.written.saturating_add(c.rejected_total) {
            self.problems.push(Problem::mismatch(
                d,
                Recorded::Read,
                c.read,
                c.written.saturating_add(c.rejected_total),
            ));
        }
    }
}

/// Read the manifest under `root` and verify everything, without progress reports.
pub(crate) fn verify(root: &Path, opts: &Options) -> Result<Report, VerifyError> {
    Verifier::open(root)?.run(opts, &|_| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_must_stay_inside_the_root() {
        assert!(is_plain_relative("train/shard-00000.parquet"));
        for bad in [
            "",
            "/etc/passwd",
            "../x.parquet",
            "train/../../x",
            "train//x",
            "./x",
            "a\\b",
        ] {
            assert!(!is_plain_relative(bad), "{bad}");
        }
    }
}
