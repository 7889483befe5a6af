//! `msms quality-report ROOT`: one self-contained HTML page of charts and a JSON file of the
//! same numbers, for a finished output root.
//!
//! The manifest is read and checked as `msms verify` does ([`Verifier::open`]); then every
//! shard it lists is streamed, several at a time, reading only the columns `num_peaks`,
//! `precursor_mz`, `charge` and `rt` in batches of [`BATCH_ROWS`] rows. Shards are not
//! re-hashed (that is `msms verify`), but each one's row count must equal the manifest's.
//!
//! # Bins (fixed, so reports of different datasets compare bin for bin)
//!
//! | column | bins |
//! |---|---|
//! | `num_peaks` | `[0, 4)`, `[4, 8)`, …, `[124, 128)`, then `128+` (the GeMS cap and above): 33 bins |
//! | `precursor_mz` | `< 0`, then 25 Da bins `[0, 25)` … `[1975, 2000)`, then `2000+`: 82 bins |
//! | `charge` | `< 0`, `0`, `1`, `2`, `3`, `4`, `5`, `6+` (nulls: the `null` count) |
//! | `rt` (seconds, as stored) | `< 0`, then 120 s (2 min) bins `[0, 120)` … `[7080, 7200)`, then `7200+`: 62 bins |
//!
//! Lower edges are inclusive, upper edges exclusive. `precursor_mz` values fall in a bin by
//! their 0.1 Da resolution step (`floor(v × 10)`), `rt` values by their whole second
//! (`floor(v)`): the same steps the quantiles are read from. For every column,
//! `Σ bins.count + null + non_finite = rows`.
//!
//! # Statistics
//!
//! `count` is the non-null, finite values; `min`, `max` and `mean` are over those.
//! Quantiles are nearest-rank: `pQ` is the value of rank `ceil(Q/100 × count)` (at least 1)
//! in ascending order. They are exact for `num_peaks` and `charge`; for `precursor_mz` and
//! `rt` they are that value rounded down to the resolution (0.1 Da, 1 s) but not below
//! `min`, within `[0, 5000)` Da and `[0, 86400)` s; a quantile outside that range is `min`
//! (below) or `max` (above). The mean of a float column adds each shard's values in row
//! order and the shards' sums in manifest order, so the report is deterministic whatever
//! the thread count.
//!
//! # `_quality_report.json` (report_version 1)
//!
//! ```text
//! {
//!   "format": "msms-shards-quality-report",
//!   "report_version": 1,
//!   "tool_version": "0.1.0",              // the msms that wrote the report
//!   "root": "shards/c1",                  // as given on the command line
//!   "manifest": { "format_version": 2, "tool_version": "0.1.0", "config_hash": "sha256:…",
//!                 "dataset_digest": "sha256:…", "mode": "local", "created_at": "…",
//!                 "settings": { … }, "profile": { … },
//!                 "inputs": [ { "path", "bytes", "spectra", "first_spectrum_id" } ] },
//!   "counts": { "read": 3000, "written": 2862, "rejected_total": 138 },
//!   "rejected": [ { "reason": "empty", "count": 13 }, … ],   // validation order, all reasons
//!   "splits": [ { "name": "train", "shards": 8, "rows": 2862, "bytes": 1912345,
//!                 "columns": { … as below, this split's rows only … } } ],  // first-seen order
//!   "shards": { "count": 8, "bytes_total": …, "bytes_min": …, "bytes_max": …,
//!               "size_limit": "300kB", "size_limit_bytes": 300000, "over_limit": 0,
//!               "items": [ { "path": "train/shard-00000.parquet", "split": "train",
//!                            "rows": 371, "bytes": 268400 } ] },
//!   "columns": {
//!     "num_peaks":    { COLUMN }, "precursor_mz": { COLUMN },
//!     "charge":       { COLUMN, "values": [ { "value": 2, "count": 700 }, … ] },
//!     "rt":           { COLUMN }
//!   }
//! }
//! COLUMN = { "unit": "peaks" | "Da" | "e" | "s", "rows", "null", "non_finite", "count",
//!            "min", "max", "mean", "quantiles": { "p01", "p05", "p25", "p50", "p75", "p95", "p99" },
//!            "bins": [ { "label": "0-3", "lo": 0, "hi": 4, "count": 12 }, … ] }
//! ```
//!
//! `lo`/`hi` are `null` for an open end. `min`, `max`, `mean` and quantiles are `null` when
//! `count` is 0. Keys are never removed within a `report_version`.

mod accumulate;
mod display;
mod html;
mod json;
mod read;
mod svg;

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use msms_kernels::RejectReason;

use self::accumulate::{Acc, Sums};
use self::display::percent;
use self::read::{read_shards, ShardProblem};
use crate::commands::verify::{Verifier, VerifyError};
use crate::config::ByteSize;
use crate::format::manifest::{manifest_name, Manifest};
use crate::format::paths::is_plain_relative;
use crate::text::{human_bytes, thousands as group};
use crate::write::atomic::write_atomic;
use crate::write::error::SinkError;

/// Default file name of the HTML report in the output root. It starts with `_`, as every file
/// in a root that is not a shard does, so that dataset readers (pandas, pyarrow, Hugging Face
/// `datasets`) skip it; the JSON's default is the same name with `.json`.
pub(crate) const HTML_NAME: &str = "_quality_report.html";

/// `format` of the JSON report.
pub(crate) const REPORT_FORMAT: &str = "msms-shards-quality-report";

/// `report_version` of the JSON report.
pub(crate) const REPORT_VERSION: u32 = 1;

/// Rows per batch when reading shards.
pub(crate) const BATCH_ROWS: usize = 8192;

/// Width of the `num_peaks` bins.
pub(crate) const NUM_PEAKS_BIN: u32 = 4;
/// `num_peaks` at and above this share the last bin (`128+`).
pub(crate) const NUM_PEAKS_TOP: u32 = 128;
/// Width of the `precursor_mz` bins, Da.
pub(crate) const PRECURSOR_BIN_DA: u32 = 25;
/// `precursor_mz` at and above this share the last bin, Da.
pub(crate) const PRECURSOR_TOP_DA: u32 = 2000;
/// Width of the `rt` bins, seconds.
pub(crate) const RT_BIN_S: u32 = 120;
/// `rt` at and above this shares the last bin, seconds.
pub(crate) const RT_TOP_S: u32 = 7200;
/// `charge` at and above this shares the last category (`6+`).
pub(crate) const CHARGE_TOP: i64 = 6;

/// The quantiles reported, in percent.
pub(crate) const QUANTILES: [u32; 7] = [1, 5, 25, 50, 75, 95, 99];

/// The number of charts (`<svg>` elements) in the HTML report.
pub(crate) const CHARTS: usize = 7;

// ---------------------------------------------------------------------------------------
// Errors

/// Why no report was written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReportError {
    /// The root or its manifest cannot be used (exit 2).
    #[error(transparent)]
    Root(#[from] VerifyError),
    /// The manifest lists a shard path that is not a plain relative path (exit 2).
    #[error(
        "{}: shard path {path:?} is not a relative path inside the root; not reading it",
        manifest.display()
    )]
    BadPath {
        /// The manifest.
        manifest: PathBuf,
        /// The path recorded.
        path: String,
    },
    /// The HTML and JSON paths are the same file (exit 2).
    #[error(
        "{}: the HTML and the JSON report would be the same file; give --json FILE",
        path.display()
    )]
    SamePath {
        /// The path.
        path: PathBuf,
    },
    /// A shard cannot be read, or does not hold what the manifest records (exit 1).
    #[error("{}: {problem} (check the root with `msms verify`)", path.display())]
    Shard {
        /// The shard.
        path: PathBuf,
        /// What is wrong.
        problem: ShardProblem,
    },
    /// The thread pool could not be started (exit 1).
    #[error("cannot start {threads} threads: {message}")]
    Threads {
        /// Threads asked for.
        threads: usize,
        /// The cause.
        message: String,
    },
    /// An output file cannot be written (exit 1).
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

// ---------------------------------------------------------------------------------------
// Writing a report

/// The two files a report is written to.
#[derive(Clone, Debug)]
pub(crate) struct OutputPaths {
    /// The HTML page.
    pub(crate) html: PathBuf,
    /// The JSON document.
    pub(crate) json: PathBuf,
}

impl OutputPaths {
    /// `html` (default `root/_quality_report.html`) and `json` (default: the HTML path with
    /// the extension `.json`); refused when they are the same path.
    pub(crate) fn resolve(
        root: &Path,
        html: Option<PathBuf>,
        json: Option<PathBuf>,
    ) -> Result<OutputPaths, ReportError> {
        let html = html.unwrap_or_else(|| root.join(HTML_NAME));
        let json = json.unwrap_or_else(|| html.with_extension("json"));
        if json == html {
            return Err(ReportError::SamePath { path: html });
        }
        Ok(OutputPaths { html, json })
    }
}

/// What [`write_report`] tells about its reading of the shards, for a progress display.
pub(crate) trait ReadProgress: Sync {
    /// The manifest is open: `total_bytes` of shards are to be read.
    fn start(&self, total_bytes: u64);
    /// A shard of `bytes` recorded bytes is read.
    fn advance(&self, bytes: u64);
    /// Reading is over (done or failed); nothing is written yet.
    fn finish(&self);
}

/// A report written by [`write_report`].
#[derive(Debug)]
pub(crate) struct Written {
    report: Report,
    paths: OutputPaths,
    html_bytes: usize,
    /// Seconds from opening the manifest to the last shard read.
    read_secs: f64,
}

impl Written {
    /// What `msms quality-report` prints when done.
    pub(crate) fn summary(&self) -> String {
        self.report.summary(
            &self.paths.html,
            self.html_bytes,
            &self.paths.json,
            self.read_secs,
        )
    }
}

/// Open the manifest under `root` (as `msms verify` does), read every shard it lists and
/// write the JSON and then the HTML report to `paths`, each replaced atomically.
pub(crate) fn write_report(
    root: &Path,
    paths: &OutputPaths,
    opts: &Options,
    progress: &dyn ReadProgress,
) -> Result<Written, ReportError> {
    let started = Instant::now();
    let verifier = Verifier::open(root)?;
    let manifest = verifier.manifest();
    progress.start(manifest.shards.iter().map(|s| s.bytes).sum());
    let report = Report::compute(root, manifest, opts, &|n| progress.advance(n));
    progress.finish();
    let report = report?;
    let read_secs = started.elapsed().as_secs_f64();
    let json = report.to_json();
    let html = report.to_html();
    for (path, text) in [(&paths.json, &json), (&paths.html, &html)] {
        write_output(path, text.as_bytes())?;
    }
    Ok(Written {
        report,
        paths: paths.clone(),
        html_bytes: html.len(),
        read_secs,
    })
}

/// Replace `path` by `bytes` atomically; the error names `path` and the I/O cause.
fn write_output(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    write_atomic(path, bytes).map_err(|e| ReportError::Write {
        path: path.to_path_buf(),
        source: match e {
            SinkError::Io { source, .. } => source,
            other => io::Error::other(other),
        },
    })
}

// ---------------------------------------------------------------------------------------
// The report

/// How to compute a report.
#[derive(Clone, Debug, Default)]
pub(crate) struct Options {
    /// Shards read at the same time; `None`: one per core.
    pub(crate) threads: Option<usize>,
}

/// Everything the report shows, computed from an output root.
#[derive(Debug)]
pub(crate) struct Report {
    root: String,
    manifest: Manifest,
    /// Split names: in order of first appearance in the manifest's shard list, then those of
    /// the manifest's `splits` that no shard holds.
    splits: Vec<String>,
    /// Per split: its accumulator and float sums.
    split_acc: Vec<(Acc, Sums)>,
    all: (Acc, Sums),
    size_limit: Option<(String, u64)>,
}

impl Report {
    /// Read every shard `manifest` lists under `root` (the manifest as [`Verifier::open`]
    /// returns it); `progress` is told each shard's recorded bytes when it is done.
    pub(crate) fn compute(
        root: &Path,
        manifest: &Manifest,
        opts: &Options,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Report, ReportError> {
        check_paths(root, manifest)?;
        let (splits, split_of) = split_order(manifest);
        let pool = crate::commands::shard_pool(opts.threads, "msms-report")
            .map_err(|(threads, message)| ReportError::Threads { threads, message })?;
        let (merged, sums) = read_shards(root, manifest, &split_of, splits.len(), &pool, progress);
        // The float sums are added in manifest order, whatever order the shards finished in.
        let mut split_sums = vec![Sums::default(); splits.len()];
        let mut all_sums = Sums::default();
        for (s, &split) in sums.into_iter().zip(&split_of) {
            let s = s?;
            split_sums[split].precursor += s.precursor;
            split_sums[split].rt += s.rt;
            all_sums.precursor += s.precursor;
            all_sums.rt += s.rt;
        }
        let split_acc: Vec<(Acc, Sums)> = merged.into_iter().zip(split_sums).collect();
        let mut all = Acc::new();
        for (a, _) in &split_acc {
            all.merge(a);
        }
        Ok(Report {
            root: root.display().to_string(),
            manifest: manifest.clone(),
            splits,
            split_acc,
            all: (all, all_sums),
            size_limit: size_limit(manifest),
        })
    }

    /// Rejection counts in validation order, then any other reason the manifest records.
    fn rejected(&self) -> Vec<(String, u64)> {
        let r = &self.manifest.counts.rejected;
        let mut out: Vec<(String, u64)> = RejectReason::ALL
            .iter()
            .map(|x| {
                (
                    x.as_str().to_string(),
                    r.get(x.as_str()).copied().unwrap_or(0),
                )
            })
            .collect();
        for (k, v) in r {
            if !out.iter().any(|(n, _)| n == k) {
                out.push((k.clone(), *v));
            }
        }
        out
    }

    /// Rows, shards and bytes of split `i`, from the manifest.
    fn split_totals(&self, i: usize) -> (u64, u64, u64) {
        let name = &self.splits[i];
        self.manifest
            .shards
            .iter()
            .filter(|s| s.split == *name)
            .fold((0, 0, 0), |(r, n, b), s| (r + s.rows, n + 1, b + s.bytes))
    }

    /// What `msms quality-report` prints when done.
    fn summary(&self, html: &Path, html_bytes: usize, json: &Path, secs: f64) -> String {
        let m = &self.manifest;
        let mut out = String::new();
        let bytes: u64 = m.shards.iter().map(|s| s.bytes).sum();
        let _ = writeln!(
            out,
            "msms quality-report: read {} spectra from {} shard{} ({}) in {secs:.2} s",
            group(self.all.0.rows),
            m.shards.len(),
            if m.shards.len() == 1 { "" } else { "s" },
            human_bytes(bytes)
        );
        let splits: Vec<String> = (0..self.splits.len())
            .map(|i| format!("{} {}", self.splits[i], group(self.split_totals(i).0)))
            .collect();
        let _ = writeln!(
            out,
            "  splits      {}",
            if splits.is_empty() {
                "none (no shards)".to_string()
            } else {
                splits.join(", ")
            }
        );
        let c = &m.counts;
        let _ = writeln!(
            out,
            "  rejected    {} of {} read ({})",
            group(c.rejected_total),
            group(c.read),
            percent(c.rejected_total, c.read)
        );
        let _ = writeln!(
            out,
            "  html        {} ({}, {CHARTS} charts)",
            html.display(),
            human_bytes(html_bytes as u64)
        );
        let _ = writeln!(out, "  json        {}", json.display());
        out
    }
}

/// Refuse a manifest that lists a shard path outside the root.
fn check_paths(root: &Path, manifest: &Manifest) -> Result<(), ReportError> {
    for s in &manifest.shards {
        if !is_plain_relative(&s.path) {
            return Err(ReportError::BadPath {
                manifest: root.join(manifest_name(manifest.format_version)),
                path: s.path.clone(),
            });
        }
    }
    Ok(())
}

/// The split names (in order of first appearance in the shard list, then the manifest's
/// splits that no shard holds) and, per shard, the index of its split.
fn split_order(manifest: &Manifest) -> (Vec<String>, Vec<usize>) {
    let mut splits: Vec<String> = Vec::new();
    let split_of: Vec<usize> = manifest
        .shards
        .iter()
        .map(|s| match splits.iter().position(|x| *x == s.split) {
            Some(i) => i,
            None => {
                splits.push(s.split.clone());
                splits.len() - 1
            }
        })
        .collect();
    // Splits the manifest records but no shard holds (too few rows for a shard).
    for name in manifest.splits.keys() {
        if !splits.contains(name) {
            splits.push(name.clone());
        }
    }
    (splits, split_of)
}

/// The shard size limit the manifest records (settings first, then profile): as written,
/// and in bytes.
fn size_limit(manifest: &Manifest) -> Option<(String, u64)> {
    [
        manifest.settings.get("shard_size"),
        manifest.profile.get("shard_size"),
    ]
    .into_iter()
    .flatten()
    .find_map(|v| match v {
        serde_json::Value::String(s) => s.parse::<ByteSize>().ok().map(|b| (s.clone(), b.bytes())),
        serde_json::Value::Number(n) => n.as_u64().map(|b| (b.to_string(), b)),
        _ => None,
    })
}
