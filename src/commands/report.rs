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
//! # `quality_report.json` (report_version 1)
//!
//! ```text
//! {
//!   "format": "msms-shards-quality-report",
//!   "report_version": 1,
//!   "tool_version": "0.1.0",              // the msms that wrote the report
//!   "root": "shards/c1",                  // as given on the command line
//!   "manifest": { "format_version": 1, "tool_version": "0.1.0", "config_hash": "sha256:…",
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

use crate::text::{human_bytes, thousands as group};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int8Type, UInt16Type};
use clap::Args;
use msms_kernels::RejectReason;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use rayon::prelude::*;
use serde::Serialize;

use crate::commands::verify::{Verifier, VerifyError};
use crate::config::ByteSize;
use crate::format::manifest::MANIFEST;
use crate::format::manifest::{InputRecord, Manifest};
use crate::format::paths::is_plain_relative;
use crate::text::error_chain;

/// Default file name of the HTML report in the output root.
pub const HTML_NAME: &str = "quality_report.html";

/// Default file name of the JSON report in the output root.
pub const JSON_NAME: &str = "quality_report.json";

/// `format` of the JSON report.
pub const REPORT_FORMAT: &str = "msms-shards-quality-report";

/// `report_version` of the JSON report.
pub const REPORT_VERSION: u32 = 1;

/// Rows per batch when reading shards.
pub const BATCH_ROWS: usize = 8192;

/// Width of the `num_peaks` bins.
pub const NUM_PEAKS_BIN: u32 = 4;
/// `num_peaks` at and above this share the last bin (`128+`).
pub const NUM_PEAKS_TOP: u32 = 128;
/// Width of the `precursor_mz` bins, Da.
pub const PRECURSOR_BIN_DA: u32 = 25;
/// `precursor_mz` at and above this share the last bin, Da.
pub const PRECURSOR_TOP_DA: u32 = 2000;
/// Width of the `rt` bins, seconds.
pub const RT_BIN_S: u32 = 120;
/// `rt` at and above this shares the last bin, seconds.
pub const RT_TOP_S: u32 = 7200;
/// `charge` at and above this shares the last category (`6+`).
pub const CHARGE_TOP: i64 = 6;

/// The quantiles reported, in percent.
pub const QUANTILES: [u32; 7] = [1, 5, 25, 50, 75, 95, 99];

/// Resolution steps of a float column: `floor(v × per_unit)` is a value's step, steps
/// `0..len` are counted one by one (values beyond count as above the range).
#[derive(Clone, Copy, Debug)]
struct Fine {
    per_unit: f64,
    len: usize,
    /// Steps per chart bin.
    per_bin: usize,
    /// Chart bins before the overflow bin.
    bins: usize,
}

const PRECURSOR_FINE: Fine = Fine {
    per_unit: 10.0,
    len: 50_000,
    per_bin: PRECURSOR_BIN_DA as usize * 10,
    bins: (PRECURSOR_TOP_DA / PRECURSOR_BIN_DA) as usize,
};

const RT_FINE: Fine = Fine {
    per_unit: 1.0,
    len: 86_400,
    per_bin: RT_BIN_S as usize,
    bins: (RT_TOP_S / RT_BIN_S) as usize,
};

// ---------------------------------------------------------------------------------------
// Command line

/// Explanations shown after `msms quality-report --help`.
pub const AFTER_HELP: &str = "\
Reads ROOT/manifest.json and streams the columns num_peaks, precursor_mz, charge and rt of
every shard it lists (several shards at a time, -j), then writes:
  - the HTML page (default ROOT/quality_report.html): one self-contained file (inline CSS and
    SVG, no scripts, no external resources) with a header (dataset digest, tool version,
    config hash, settings, inputs, counts), a table of summary statistics, and seven charts:
    peaks per spectrum, precursor m/z, charge, retention time, rejection reasons, split
    sizes and shard sizes (with the shard size limit as a line). Hover a bar for its numbers.
  - the JSON (default: the HTML path with the extension .json, so ROOT/quality_report.json):
    every number of the page, documented keys (report_version 1; see the README).
Bins: peaks per spectrum by 4 up to 128+; precursor m/z by 25 Da up to 2000+; charge <0, 0..5,
6+ and null; retention time (seconds as stored) by 2 min up to 7200+ s. Nulls and non-finite
values are counted, not binned. Shards are not re-hashed: run `msms verify` for that.

Exit codes: 0 written; 2 ROOT or its manifest cannot be used (missing, an unfinished run, not
an msms-shards manifest, a shard path outside ROOT) or the output paths clash; 1 a shard cannot
be read or holds another row count than the manifest records, or an output cannot be written.

Examples:
  msms quality-report shards/c1
  msms quality-report shards/c1 --output /tmp/c1.html      # also writes /tmp/c1.json";

/// Arguments of `msms quality-report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output root of `msms build-shards`: the directory holding manifest.json.
    #[arg(value_name = "ROOT")]
    pub root: PathBuf,
    /// HTML file to write (replaced if present). Default: ROOT/quality_report.html.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// JSON file to write. Default: the --output path with the extension .json.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Shards read at the same time (default: one per core).
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Print errors only (no progress bar, no summary).
    #[arg(short, long)]
    pub quiet: bool,
}

/// `msms quality-report`: returns the exit code.
pub fn run(a: ReportArgs) -> i32 {
    let fail = |e: &ReportError| {
        eprintln!("msms quality-report: {}", error_chain(e));
        e.exit_code()
    };
    let html_path = a.output.clone().unwrap_or_else(|| a.root.join(HTML_NAME));
    let json_path = a
        .json
        .clone()
        .unwrap_or_else(|| html_path.with_extension("json"));
    if json_path == html_path {
        return fail(&ReportError::SamePath { path: html_path });
    }
    let started = Instant::now();
    let verifier = match Verifier::open(&a.root) {
        Ok(v) => v,
        Err(e) => return fail(&e.into()),
    };
    let total: u64 = verifier.manifest().shards.iter().map(|s| s.bytes).sum();
    let bar = (!a.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40.cyan/blue} {percent:>3}%  ETA {eta}  {msg}",
            )
            .expect("valid template"),
        );
        bar.set_message("reading shards");
        bar
    });
    let progress = |n: u64| {
        if let Some(b) = &bar {
            b.inc(n);
        }
    };
    let opts = Options {
        threads: a.threads.map(|n| n as usize),
    };
    let report = match Report::compute(&a.root, verifier.manifest(), &opts, &progress) {
        Ok(r) => r,
        Err(e) => {
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            return fail(&e);
        }
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let read_time = started.elapsed();
    let json = report.to_json();
    let html = report.to_html();
    for (path, text) in [(&json_path, &json), (&html_path, &html)] {
        if let Err(e) = write_atomically(path, text.as_bytes()) {
            return fail(&e);
        }
    }
    if !a.quiet {
        let _ = std::io::stdout().write_all(
            report
                .summary(&html_path, html.len(), &json_path, read_time.as_secs_f64())
                .as_bytes(),
        );
    }
    0
}

/// Write `bytes` to `path.tmp`, then rename it to `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Errors

/// Why no report was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
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
    #[error("{}: {message} (check the root with `msms verify`)", path.display())]
    Shard {
        /// The shard.
        path: PathBuf,
        /// What is wrong.
        message: String,
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

impl ReportError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Root(_) | Self::BadPath { .. } | Self::SamePath { .. } => 2,
            Self::Shard { .. } | Self::Threads { .. } | Self::Write { .. } => 1,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Accumulators

/// Exact counts of an integer column: `counts[v - offset]`.
#[derive(Clone, Debug)]
struct IntAcc {
    offset: i64,
    counts: Vec<u64>,
    null: u64,
}

impl IntAcc {
    fn new(offset: i64) -> IntAcc {
        IntAcc {
            offset,
            counts: Vec::new(),
            null: 0,
        }
    }

    fn add(&mut self, v: i64) {
        let i = (v - self.offset) as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
    }

    fn merge(&mut self, o: &IntAcc) {
        if o.counts.len() > self.counts.len() {
            self.counts.resize(o.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.null += o.null;
    }

    fn values(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| (i as i64 + self.offset, c))
    }

    fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Nearest-rank quantile `q` (0..=1).
    fn quantile(&self, q: f64) -> Option<i64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = rank(q, n);
        let mut seen = 0;
        for (v, c) in self.values() {
            seen += c;
            if seen >= rank {
                return Some(v);
            }
        }
        None
    }
}

/// 1-based nearest rank of quantile `q` among `n` values.
fn rank(q: f64, n: u64) -> u64 {
    ((q * n as f64).ceil() as u64).clamp(1, n)
}

/// A float column: counts per resolution step, plus what falls outside.
#[derive(Clone, Debug)]
struct FloatAcc {
    fine: Fine,
    steps: Vec<u64>,
    below: u64,
    above: u64,
    null: u64,
    non_finite: u64,
    min: Option<f64>,
    max: Option<f64>,
}

impl FloatAcc {
    fn new(fine: Fine) -> FloatAcc {
        FloatAcc {
            fine,
            steps: vec![0; fine.len],
            below: 0,
            above: 0,
            null: 0,
            non_finite: 0,
            min: None,
            max: None,
        }
    }

    /// Add a value; returns whether it is finite (and so part of the sum).
    fn add(&mut self, v: f64) -> bool {
        if !v.is_finite() {
            self.non_finite += 1;
            return false;
        }
        if v < 0.0 {
            self.below += 1;
        } else {
            let step = (v * self.fine.per_unit).floor();
            if step < self.fine.len as f64 {
                self.steps[step as usize] += 1;
            } else {
                self.above += 1;
            }
        }
        // total_cmp: -0.0 below 0.0, so the result never depends on the order.
        if self.min.is_none_or(|m| v.total_cmp(&m).is_lt()) {
            self.min = Some(v);
        }
        if self.max.is_none_or(|m| v.total_cmp(&m).is_gt()) {
            self.max = Some(v);
        }
        true
    }

    fn merge(&mut self, o: &FloatAcc) {
        for (a, b) in self.steps.iter_mut().zip(&o.steps) {
            *a += b;
        }
        self.below += o.below;
        self.above += o.above;
        self.null += o.null;
        self.non_finite += o.non_finite;
        for v in [o.min, o.max].into_iter().flatten() {
            if self.min.is_none_or(|m| v.total_cmp(&m).is_lt()) {
                self.min = Some(v);
            }
            if self.max.is_none_or(|m| v.total_cmp(&m).is_gt()) {
                self.max = Some(v);
            }
        }
    }

    fn count(&self) -> u64 {
        self.below + self.above + self.steps.iter().sum::<u64>()
    }

    /// Nearest-rank quantile, rounded down to the resolution, clamped to `[min, max]`.
    fn quantile(&self, q: f64) -> Option<f64> {
        let (min, max) = (self.min?, self.max?);
        let rank = rank(q, self.count());
        if rank <= self.below {
            return Some(min);
        }
        let mut seen = self.below;
        for (i, &c) in self.steps.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some((i as f64 / self.fine.per_unit).clamp(min, max));
            }
        }
        Some(max)
    }

    /// Counts of the chart bins: `< 0`, the regular bins, then the overflow.
    fn bins(&self) -> Vec<u64> {
        let f = self.fine;
        let mut out = Vec::with_capacity(f.bins + 2);
        out.push(self.below);
        for b in 0..f.bins {
            out.push(self.steps[b * f.per_bin..(b + 1) * f.per_bin].iter().sum());
        }
        out.push(self.steps[f.bins * f.per_bin..].iter().sum::<u64>() + self.above);
        out
    }
}

/// The four columns of a set of rows (all of them, or one split's).
#[derive(Clone, Debug)]
struct Acc {
    rows: u64,
    num_peaks: IntAcc,
    charge: IntAcc,
    precursor: FloatAcc,
    rt: FloatAcc,
}

/// Float sums, kept apart from [`Acc`] so that they are added in a fixed order.
#[derive(Clone, Copy, Debug, Default)]
struct Sums {
    precursor: f64,
    rt: f64,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            rows: 0,
            num_peaks: IntAcc::new(0),
            charge: IntAcc::new(i64::from(i8::MIN)),
            precursor: FloatAcc::new(PRECURSOR_FINE),
            rt: FloatAcc::new(RT_FINE),
        }
    }

    fn merge(&mut self, o: &Acc) {
        self.rows += o.rows;
        self.num_peaks.merge(&o.num_peaks);
        self.charge.merge(&o.charge);
        self.precursor.merge(&o.precursor);
        self.rt.merge(&o.rt);
    }
}

// ---------------------------------------------------------------------------------------
// Reading the shards

/// How to compute a report.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Shards read at the same time; `None`: one per core.
    pub threads: Option<usize>,
}

/// Stream the four columns of one shard into `acc`; the float sums and the rows read.
fn read_shard(path: &Path, acc: &mut Acc) -> Result<Sums, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("Parquet footer unreadable: {e}"))?;
    let schema = builder.schema().clone();
    let wanted = [
        ("num_peaks", DataType::UInt16),
        ("precursor_mz", DataType::Float64),
        ("charge", DataType::Int8),
        ("rt", DataType::Float32),
    ];
    let mut roots = Vec::new();
    for (name, t) in &wanted {
        let i = schema
            .index_of(name)
            .map_err(|_| format!("no column {name}"))?;
        let found = schema.field(i).data_type();
        if found != t {
            return Err(format!("column {name} is {found}, not {t}"));
        }
        roots.push(i);
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| e.to_string())?;
    let mut sums = Sums::default();
    for batch in reader {
        let batch = batch.map_err(|e| format!("after row {}: {e}", acc.rows))?;
        let col = |name: &str| batch.column_by_name(name).expect("projected");
        let np = col("num_peaks").as_primitive::<UInt16Type>();
        let prec = col("precursor_mz").as_primitive::<Float64Type>();
        let charge = col("charge").as_primitive::<Int8Type>();
        let rt = col("rt").as_primitive::<Float32Type>();
        for i in 0..batch.num_rows() {
            if np.is_null(i) {
                acc.num_peaks.null += 1;
            } else {
                acc.num_peaks.add(i64::from(np.value(i)));
            }
            if charge.is_null(i) {
                acc.charge.null += 1;
            } else {
                acc.charge.add(i64::from(charge.value(i)));
            }
            if prec.is_null(i) {
                acc.precursor.null += 1;
            } else if acc.precursor.add(prec.value(i)) {
                sums.precursor += prec.value(i);
            }
            if rt.is_null(i) {
                acc.rt.null += 1;
            } else {
                let v = f64::from(rt.value(i));
                if acc.rt.add(v) {
                    sums.rt += v;
                }
            }
        }
        acc.rows += batch.num_rows() as u64;
    }
    Ok(sums)
}

// ---------------------------------------------------------------------------------------
// The report

/// Everything the report shows, computed from an output root.
#[derive(Debug)]
pub struct Report {
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
    pub fn compute(
        root: &Path,
        manifest: &Manifest,
        opts: &Options,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Report, ReportError> {
        for s in &manifest.shards {
            if !is_plain_relative(&s.path) {
                return Err(ReportError::BadPath {
                    manifest: root.join(MANIFEST),
                    path: s.path.clone(),
                });
            }
        }
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
        let pool = crate::commands::shard_pool(opts.threads, "msms-report")
            .map_err(|(threads, message)| ReportError::Threads { threads, message })?;
        // Counts, minima and maxima are merged as shards finish (order does not matter);
        // the float sums are kept per shard and added in manifest order below.
        let merged: Vec<Mutex<Acc>> = splits.iter().map(|_| Mutex::new(Acc::new())).collect();
        let sums: Vec<Result<Sums, ReportError>> = pool.install(|| {
            manifest
                .shards
                .par_iter()
                .zip(&split_of)
                .map(|(rec, &split)| {
                    let path = root.join(&rec.path);
                    let mut acc = Acc::new();
                    // A reader panic on damaged bytes is reported as that shard's error.
                    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        read_shard(&path, &mut acc)
                    }))
                    .unwrap_or_else(|_| Err("the Parquet reader panicked".into()));
                    let sums = read
                        .and_then(|sums| {
                            if acc.rows == rec.rows {
                                Ok(sums)
                            } else {
                                Err(format!(
                                    "{} rows, the manifest records {}",
                                    acc.rows, rec.rows
                                ))
                            }
                        })
                        .map_err(|message| ReportError::Shard {
                            path: path.clone(),
                            message,
                        })?;
                    merged[split]
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .merge(&acc);
                    progress(rec.bytes);
                    Ok(sums)
                })
                .collect()
        });
        let mut split_sums = vec![Sums::default(); splits.len()];
        let mut all_sums = Sums::default();
        for (s, &split) in sums.into_iter().zip(&split_of) {
            let s = s?;
            split_sums[split].precursor += s.precursor;
            split_sums[split].rt += s.rt;
            all_sums.precursor += s.precursor;
            all_sums.rt += s.rt;
        }
        let split_acc: Vec<(Acc, Sums)> = merged
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
            .zip(split_sums)
            .collect();
        let mut all = Acc::new();
        for (a, _) in &split_acc {
            all.merge(a);
        }
        let size_limit = [
            manifest.settings.get("shard_size"),
            manifest.profile.get("shard_size"),
        ]
        .into_iter()
        .flatten()
        .find_map(|v| match v {
            serde_json::Value::String(s) => {
                s.parse::<ByteSize>().ok().map(|b| (s.clone(), b.bytes()))
            }
            serde_json::Value::Number(n) => n.as_u64().map(|b| (b.to_string(), b)),
            _ => None,
        });
        Ok(Report {
            root: root.display().to_string(),
            manifest: manifest.clone(),
            splits,
            split_acc,
            all: (all, all_sums),
            size_limit,
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

    /// The JSON document (pretty, trailing newline).
    pub fn to_json(&self) -> String {
        let m = &self.manifest;
        let bytes: Vec<u64> = m.shards.iter().map(|s| s.bytes).collect();
        let doc = JsonReport {
            format: REPORT_FORMAT,
            report_version: REPORT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION"),
            root: self.root.clone(),
            manifest: JsonManifest {
                format_version: m.format_version,
                tool_version: m.tool_version.clone(),
                config_hash: m.config_hash.clone(),
                dataset_digest: m.dataset_digest.clone(),
                mode: m.mode.clone(),
                created_at: m.run.created_at.clone(),
                settings: m.settings.clone(),
                profile: m.profile.clone(),
                inputs: m.inputs.clone(),
            },
            counts: JsonCounts {
                read: m.counts.read,
                written: m.counts.written,
                rejected_total: m.counts.rejected_total,
            },
            rejected: self
                .rejected()
                .into_iter()
                .map(|(reason, count)| JsonReason { reason, count })
                .collect(),
            splits: (0..self.splits.len())
                .map(|i| {
                    let (rows, shards, bytes) = self.split_totals(i);
                    JsonSplit {
                        name: self.splits[i].clone(),
                        shards,
                        rows,
                        bytes,
                        columns: columns(&self.split_acc[i]),
                    }
                })
                .collect(),
            shards: JsonShards {
                count: m.shards.len() as u64,
                bytes_total: bytes.iter().sum(),
                bytes_min: bytes.iter().copied().min(),
                bytes_max: bytes.iter().copied().max(),
                size_limit: self.size_limit.as_ref().map(|l| l.0.clone()),
                size_limit_bytes: self.size_limit.as_ref().map(|l| l.1),
                over_limit: self
                    .size_limit
                    .as_ref()
                    .map_or(0, |l| bytes.iter().filter(|&&b| b > l.1).count() as u64),
                items: m
                    .shards
                    .iter()
                    .map(|s| JsonShard {
                        path: s.path.clone(),
                        split: s.split.clone(),
                        rows: s.rows,
                        bytes: s.bytes,
                    })
                    .collect(),
            },
            columns: columns(&self.all),
        };
        let mut s = serde_json::to_string_pretty(&doc).expect("report serialises");
        s.push('\n');
        s
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

/// The number of charts (`<svg>` elements) in the HTML report.
pub const CHARTS: usize = 7;

// ---------------------------------------------------------------------------------------
// JSON document

#[derive(Serialize)]
struct JsonReport {
    format: &'static str,
    report_version: u32,
    tool_version: &'static str,
    root: String,
    manifest: JsonManifest,
    counts: JsonCounts,
    rejected: Vec<JsonReason>,
    splits: Vec<JsonSplit>,
    shards: JsonShards,
    columns: JsonColumns,
}

#[derive(Serialize)]
struct JsonManifest {
    format_version: u32,
    tool_version: String,
    config_hash: String,
    dataset_digest: String,
    mode: String,
    created_at: String,
    settings: serde_json::Value,
    profile: serde_json::Value,
    inputs: Vec<InputRecord>,
}

#[derive(Serialize)]
struct JsonCounts {
    read: u64,
    written: u64,
    rejected_total: u64,
}

#[derive(Serialize)]
struct JsonReason {
    reason: String,
    count: u64,
}

#[derive(Serialize)]
struct JsonSplit {
    name: String,
    shards: u64,
    rows: u64,
    bytes: u64,
    columns: JsonColumns,
}

#[derive(Serialize)]
struct JsonShards {
    count: u64,
    bytes_total: u64,
    bytes_min: Option<u64>,
    bytes_max: Option<u64>,
    size_limit: Option<String>,
    size_limit_bytes: Option<u64>,
    over_limit: u64,
    items: Vec<JsonShard>,
}

#[derive(Serialize)]
struct JsonShard {
    path: String,
    split: String,
    rows: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct JsonColumns {
    num_peaks: JsonColumn,
    precursor_mz: JsonColumn,
    charge: JsonColumn,
    rt: JsonColumn,
}

/// An integer or a float, printed as such.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

#[derive(Serialize)]
struct JsonColumn {
    unit: &'static str,
    rows: u64,
    null: u64,
    non_finite: u64,
    count: u64,
    min: Option<Num>,
    max: Option<Num>,
    mean: Option<f64>,
    quantiles: JsonQuantiles,
    bins: Vec<JsonBin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<Vec<JsonValue>>,
}

#[derive(Serialize)]
struct JsonQuantiles {
    p01: Option<Num>,
    p05: Option<Num>,
    p25: Option<Num>,
    p50: Option<Num>,
    p75: Option<Num>,
    p95: Option<Num>,
    p99: Option<Num>,
}

impl JsonQuantiles {
    fn new(q: impl Fn(f64) -> Option<Num>) -> JsonQuantiles {
        let v: Vec<Option<Num>> = QUANTILES.iter().map(|&p| q(f64::from(p) / 100.0)).collect();
        JsonQuantiles {
            p01: v[0],
            p05: v[1],
            p25: v[2],
            p50: v[3],
            p75: v[4],
            p95: v[5],
            p99: v[6],
        }
    }

    fn get(&self, percent: u32) -> Option<Num> {
        match percent {
            1 => self.p01,
            5 => self.p05,
            25 => self.p25,
            50 => self.p50,
            75 => self.p75,
            95 => self.p95,
            99 => self.p99,
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct JsonBin {
    label: String,
    lo: Option<Num>,
    hi: Option<Num>,
    count: u64,
}

#[derive(Serialize)]
struct JsonValue {
    value: i64,
    count: u64,
}

/// Summary of an integer column; `bins` as (label, lo, hi, count).
fn int_column(
    unit: &'static str,
    rows: u64,
    acc: &IntAcc,
    bins: Vec<JsonBin>,
    values: bool,
) -> JsonColumn {
    let count = acc.count();
    let sum: i128 = acc
        .values()
        .map(|(v, c)| i128::from(v) * i128::from(c))
        .sum();
    let min = acc.values().next().map(|(v, _)| Num::Int(v));
    let max = acc.values().last().map(|(v, _)| Num::Int(v));
    JsonColumn {
        unit,
        rows,
        null: acc.null,
        non_finite: 0,
        count,
        min,
        max,
        mean: (count > 0).then(|| sum as f64 / count as f64),
        quantiles: JsonQuantiles::new(|q| acc.quantile(q).map(Num::Int)),
        bins,
        values: values.then(|| {
            acc.values()
                .map(|(value, count)| JsonValue { value, count })
                .collect()
        }),
    }
}

/// Summary of a float column with its chart bins (`< 0`, regular bins of `width` units,
/// overflow).
fn float_column(unit: &'static str, rows: u64, acc: &FloatAcc, sum: f64, width: u32) -> JsonColumn {
    let counts = acc.bins();
    let n = acc.fine.bins as u32;
    let mut bins = Vec::with_capacity(counts.len());
    bins.push(JsonBin {
        label: "<0".into(),
        lo: None,
        hi: Some(Num::Int(0)),
        count: counts[0],
    });
    for b in 0..n {
        bins.push(JsonBin {
            label: format!("{}-{}", b * width, (b + 1) * width),
            lo: Some(Num::Int(i64::from(b * width))),
            hi: Some(Num::Int(i64::from((b + 1) * width))),
            count: counts[b as usize + 1],
        });
    }
    bins.push(JsonBin {
        label: format!("{}+", n * width),
        lo: Some(Num::Int(i64::from(n * width))),
        hi: None,
        count: counts[n as usize + 1],
    });
    let count = acc.count();
    JsonColumn {
        unit,
        rows,
        null: acc.null,
        non_finite: acc.non_finite,
        count,
        min: acc.min.map(Num::Float),
        max: acc.max.map(Num::Float),
        mean: (count > 0).then(|| sum / count as f64),
        quantiles: JsonQuantiles::new(|q| acc.quantile(q).map(Num::Float)),
        bins,
        values: None,
    }
}

fn columns((acc, sums): &(Acc, Sums)) -> JsonColumns {
    let np = &acc.num_peaks;
    let mut bins = Vec::new();
    let per = NUM_PEAKS_BIN as usize;
    let top = NUM_PEAKS_TOP as usize;
    for b in 0..top / per {
        let lo = b * per;
        bins.push(JsonBin {
            label: format!("{}-{}", lo, lo + per - 1),
            lo: Some(Num::Int(lo as i64)),
            hi: Some(Num::Int((lo + per) as i64)),
            count: np.counts.iter().skip(lo).take(per).sum(),
        });
    }
    bins.push(JsonBin {
        label: format!("{top}+"),
        lo: Some(Num::Int(top as i64)),
        hi: None,
        count: np.counts.iter().skip(top).sum(),
    });
    let num_peaks = int_column("peaks", acc.rows, np, bins, false);

    let ch = &acc.charge;
    let count_in = |lo: i64, hi: i64| -> u64 {
        ch.values()
            .filter(|&(v, _)| v >= lo && v < hi)
            .map(|(_, c)| c)
            .sum()
    };
    let mut bins = vec![JsonBin {
        label: "<0".into(),
        lo: None,
        hi: Some(Num::Int(0)),
        count: count_in(i64::MIN, 0),
    }];
    for v in 0..CHARGE_TOP {
        bins.push(JsonBin {
            label: v.to_string(),
            lo: Some(Num::Int(v)),
            hi: Some(Num::Int(v + 1)),
            count: count_in(v, v + 1),
        });
    }
    bins.push(JsonBin {
        label: format!("{CHARGE_TOP}+"),
        lo: Some(Num::Int(CHARGE_TOP)),
        hi: None,
        count: count_in(CHARGE_TOP, i64::MAX),
    });
    let charge = int_column("e", acc.rows, ch, bins, true);
    JsonColumns {
        num_peaks,
        precursor_mz: float_column(
            "Da",
            acc.rows,
            &acc.precursor,
            sums.precursor,
            PRECURSOR_BIN_DA,
        ),
        charge,
        rt: float_column("s", acc.rows, &acc.rt, sums.rt, RT_BIN_S),
    }
}

// ---------------------------------------------------------------------------------------
// Formatting helpers

/// Escape text for HTML and SVG (element content and quoted attribute values).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0 %".into()
    } else {
        format!("{:.2} %", 100.0 * part as f64 / whole as f64)
    }
}

/// Short axis label for a count: `950`, `1.5k`, `12k`, `3.2M`.
fn short_count(v: f64) -> String {
    let (x, suffix) = if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if x >= 100.0 || x.fract() == 0.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{suffix}")
}

/// Short axis label for bytes: `250 kB`, `1.5 GB`.
fn short_bytes(v: f64) -> String {
    let (x, unit) = if v >= 1e12 {
        (v / 1e12, "TB")
    } else if v >= 1e9 {
        (v / 1e9, "GB")
    } else if v >= 1e6 {
        (v / 1e6, "MB")
    } else if v >= 1e3 {
        (v / 1e3, "kB")
    } else {
        (v, "B")
    };
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s} {unit}")
}

/// A float for display: up to 4 decimals, trailing zeros dropped.
fn show_f64(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

fn show_num(n: Option<Num>) -> String {
    match n {
        None => "–".into(),
        Some(Num::Int(i)) => i.to_string(),
        Some(Num::Float(f)) => show_f64(f),
    }
}

/// Tick step and axis top for values up to `max`: steps of 1, 2 or 5 × 10^k, about five
/// ticks; at least `min_step`.
fn nice_axis(max: f64, min_step: f64) -> (f64, f64) {
    let max = if max > 0.0 { max } else { 1.0 };
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = if norm <= 1.0 {
        mag
    } else if norm <= 2.0 {
        2.0 * mag
    } else if norm <= 5.0 {
        5.0 * mag
    } else {
        10.0 * mag
    };
    let step = step.max(min_step);
    (step, (max / step).ceil() * step)
}

// ---------------------------------------------------------------------------------------
// SVG charts

/// Okabe–Ito colours: distinguishable with common colour-vision deficiencies.
const PALETTE: [&str; 7] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
];
const GREY: &str = "#8c8c8c";

/// One stacked series (a split).
struct Series<'a> {
    name: &'a str,
    color: &'a str,
    values: Vec<u64>,
}

/// A vertical bar chart.
struct VChart<'a> {
    /// Accessible name of the figure.
    title: &'a str,
    x_title: &'a str,
    y_title: &'a str,
    /// One per bar.
    bars: Vec<Bar>,
    series: Vec<Series<'a>>,
    /// Axis label of a value.
    y_fmt: fn(f64) -> String,
    /// Tooltip text of a value.
    value_fmt: fn(u64) -> String,
    /// A dashed horizontal line at this value, with this label.
    limit: Option<(u64, String)>,
    min_step: f64,
    /// Labels at the bars' left edges (histograms: a bin's lower edge) instead of centred;
    /// `special` bars keep theirs centred.
    edge_labels: bool,
}

struct Bar {
    /// Label under the bar (`None`: no label).
    label: Option<String>,
    /// Tooltip heading.
    tip: String,
    /// Drawn grey (a null or out-of-range bar).
    special: bool,
}

const W: f64 = 640.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;

fn svg_open(out: &mut String, title: &str, h: f64) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {h}\" role=\"img\" \
         aria-label=\"{}\" class=\"chart\">",
        escape(title)
    );
}

fn legend(out: &mut String, series: &[Series<'_>], y: f64) {
    if series.len() < 2 {
        return;
    }
    let mut x = W - RIGHT;
    for s in series.iter().rev() {
        let w = 22.0 + 7.0 * s.name.chars().count() as f64;
        x -= w;
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"lg\">{}</text>",
            y - 9.0,
            s.color,
            x + 14.0,
            y,
            escape(s.name)
        );
    }
}

impl VChart<'_> {
    fn render(&self) -> String {
        let (top, bottom, h) = (28.0, 52.0, 320.0);
        let pw = W - LEFT - RIGHT;
        let ph = h - top - bottom;
        let n = self.bars.len().max(1);
        let totals: Vec<u64> = (0..self.bars.len())
            .map(|i| self.series.iter().map(|s| s.values[i]).sum())
            .collect();
        let data_max = totals.iter().copied().max().unwrap_or(0);
        let line_max = self.limit.as_ref().map_or(0, |l| l.0);
        let (step, ymax) = nice_axis(data_max.max(line_max) as f64 * 1.02, self.min_step);
        let y = |v: f64| top + ph - v / ymax * ph;
        let band = pw / n as f64;
        let bw = (band * 0.84).max(0.6);
        let mut out = String::new();
        svg_open(&mut out, self.title, h);
        legend(&mut out, &self.series, 14.0);
        // Grid and y ticks.
        let mut t = 0.0;
        while t <= ymax + step * 1e-9 {
            let yy = y(t);
            let _ = write!(
                out,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" class=\"gl\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" class=\"yt\">{}</text>",
                W - RIGHT,
                LEFT - 6.0,
                yy + 4.0,
                escape(&(self.y_fmt)(t))
            );
            t += step;
        }
        // Bars, stacked by series.
        for (i, bar) in self.bars.iter().enumerate() {
            let x = LEFT + i as f64 * band + (band - bw) / 2.0;
            let mut base = 0u64;
            for s in &self.series {
                let v = s.values[i];
                if v == 0 {
                    continue;
                }
                let (y0, y1) = (y(base as f64), y((base + v) as f64));
                let color = if bar.special { GREY } else { s.color };
                let tip = if self.series.len() > 1 {
                    format!(
                        "{}\n{}: {} (all splits: {})",
                        bar.tip,
                        s.name,
                        (self.value_fmt)(v),
                        (self.value_fmt)(totals[i])
                    )
                } else {
                    format!("{}: {}", bar.tip, (self.value_fmt)(v))
                };
                let _ = write!(
                    out,
                    "<rect x=\"{x:.2}\" y=\"{y1:.2}\" width=\"{bw:.2}\" height=\"{:.2}\" \
                     fill=\"{color}\"><title>{}</title></rect>",
                    (y0 - y1).max(0.5),
                    escape(&tip)
                );
                base += v;
            }
            if let Some(label) = &bar.label {
                let _ = write!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" class=\"xt\">{}</text>",
                    if self.edge_labels && !bar.special {
                        LEFT + i as f64 * band
                    } else {
                        LEFT + (i as f64 + 0.5) * band
                    },
                    top + ph + 14.0,
                    escape(label)
                );
            }
        }
        if data_max == 0 {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"empty\">no data</text>",
                LEFT + pw / 2.0,
                top + ph / 2.0
            );
        }
        if let Some((v, label)) = &self.limit {
            let yy = y(*v as f64);
            let _ = write!(
                out,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" class=\"limit\">\
                 <title>{}</title></line>\
                 <text x=\"{:.1}\" y=\"{:.1}\" class=\"limitlabel\">{}</text>",
                W - RIGHT,
                escape(label),
                W - RIGHT - 4.0,
                yy - 5.0,
                escape(label)
            );
        }
        // Axes and their titles.
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{top}\" y2=\"{:.1}\" class=\"axis\"/>\
             <line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" class=\"axis\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"at\">{}</text>\
             <text transform=\"translate(14 {:.1}) rotate(-90)\" class=\"at\">{}</text></svg>",
            top + ph,
            W - RIGHT,
            top + ph,
            top + ph,
            LEFT + pw / 2.0,
            h - 10.0,
            escape(self.x_title),
            top + ph / 2.0,
            escape(self.y_title)
        );
        out
    }
}

/// A horizontal bar chart (long category names).
struct HChart<'a> {
    title: &'a str,
    x_title: &'a str,
    rows: Vec<(String, u64, String)>,
    colors: Vec<&'a str>,
}

impl HChart<'_> {
    fn render(&self) -> String {
        let (left, right, top, row_h, bottom) = (170.0, 110.0, 12.0, 24.0, 44.0);
        let n = self.rows.len().max(1);
        let h = top + n as f64 * row_h + bottom;
        let pw = W - left - right;
        let max = self.rows.iter().map(|r| r.1).max().unwrap_or(0);
        let (step, xmax) = nice_axis(max as f64, 1.0);
        let x = |v: f64| left + v / xmax * pw;
        let mut out = String::new();
        svg_open(&mut out, self.title, h);
        let bottom_y = top + n as f64 * row_h;
        let mut t = 0.0;
        while t <= xmax + step * 1e-9 {
            let xx = x(t);
            let _ = write!(
                out,
                "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{top}\" y2=\"{bottom_y:.1}\" class=\"gl\"/>\
                 <text x=\"{xx:.1}\" y=\"{:.1}\" class=\"xt\">{}</text>",
                bottom_y + 14.0,
                short_count(t)
            );
            t += step;
        }
        for (i, (name, v, tip)) in self.rows.iter().enumerate() {
            let yy = top + i as f64 * row_h;
            let color = self.colors.get(i).copied().unwrap_or(PALETTE[0]);
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"yl\">{}</text>\
                 <rect x=\"{left}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{color}\">\
                 <title>{}</title></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\" class=\"val\">{}</text>",
                left - 8.0,
                yy + row_h / 2.0 + 4.0,
                escape(name),
                yy + 3.0,
                (x(*v as f64) - left).max(if *v > 0 { 1.0 } else { 0.0 }),
                row_h - 6.0,
                escape(tip),
                x(*v as f64) + 5.0,
                yy + row_h / 2.0 + 4.0,
                group(*v)
            );
        }
        if self.rows.is_empty() {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"empty\">no data</text>",
                left + pw / 2.0,
                top + row_h / 2.0 + 4.0
            );
        }
        let _ = write!(
            out,
            "<line x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{bottom_y:.1}\" class=\"axis\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"at\">{}</text></svg>",
            left + pw / 2.0,
            h - 8.0,
            escape(self.x_title)
        );
        out
    }
}

// ---------------------------------------------------------------------------------------
// HTML page

const CSS: &str = "\
:root{color-scheme:light;--fg:#1d1d1f;--muted:#5f6368;--line:#d9dce1;--card:#fff;--bg:#f5f6f8}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif}
main{max-width:1360px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:22px;margin:0 0 2px}
h2{font-size:15px;margin:0 0 2px}
.sub{color:var(--muted);margin:0 0 14px;overflow-wrap:anywhere}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:6px 18px;margin:0 0 16px;padding:12px 14px;background:var(--card);border:1px solid var(--line);border-radius:8px}
.facts div{min-width:0}
.facts dt{color:var(--muted);font-size:12px}
.facts dd{margin:0;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
code{font:12px/1.4 ui-monospace,'DejaVu Sans Mono',monospace}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}
figure{margin:0;padding:12px 14px 8px;background:var(--card);border:1px solid var(--line);border-radius:8px;min-width:0}
figcaption p{margin:0 0 4px;color:var(--muted);font-size:12px}
svg.chart{display:block;width:100%;height:auto}
svg text{font-family:system-ui,'DejaVu Sans',sans-serif;fill:#333}
svg .gl{stroke:#e6e8eb;stroke-width:1}
svg .axis{stroke:#555;stroke-width:1}
svg .yt{font-size:11px;text-anchor:end}
svg .xt{font-size:10.5px;text-anchor:middle}
svg .yl{font-size:12px;text-anchor:end}
svg .val{font-size:11px}
svg .at{font-size:12px;text-anchor:middle;fill:#555}
svg .lg{font-size:11px}
svg .empty{font-size:14px;text-anchor:middle;fill:#888}
svg .limit{stroke:#c0392b;stroke-width:1.5;stroke-dasharray:6 4}
svg .limitlabel{font-size:11px;text-anchor:end;fill:#c0392b}
svg rect:hover{opacity:.75}
section{margin-top:18px}
table{border-collapse:collapse;background:var(--card);border:1px solid var(--line);font-variant-numeric:tabular-nums;width:100%}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{background:#eef0f3;font-weight:600}
.wrap{overflow-x:auto}
td.text{text-align:left;white-space:normal;overflow-wrap:anywhere}
.two{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
footer{margin-top:22px;color:var(--muted);font-size:12px}
";

impl Report {
    /// The HTML page: self-contained, no scripts.
    pub fn to_html(&self) -> String {
        let m = &self.manifest;
        let cols = columns(&self.all);
        let split_cols: Vec<JsonColumns> = self.split_acc.iter().map(columns).collect();
        let colors: Vec<&str> = (0..self.splits.len())
            .map(|i| PALETTE[i % PALETTE.len()])
            .collect();
        let mut h = String::with_capacity(64 * 1024);
        let title = format!("msms quality report: {}", self.root);
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'; img-src data:\">\
             <link rel=\"icon\" href=\"data:,\">\
             <title>{}</title><style>{CSS}</style></head>\n<body><main>\n",
            escape(&title)
        );
        // Header.
        let _ = writeln!(
            h,
            "<header><h1>Quality report</h1><p class=\"sub\"><code>{}</code> · msms-shards \
             format {} · shards written by msms {} on {} · report by msms {}</p>",
            escape(&self.root),
            m.format_version,
            escape(&m.tool_version),
            escape(&m.run.created_at),
            env!("CARGO_PKG_VERSION"),
        );
        let bytes: u64 = m.shards.iter().map(|s| s.bytes).sum();
        let c = &m.counts;
        let split_text: Vec<String> = (0..self.splits.len())
            .map(|i| format!("{} {}", self.splits[i], group(self.split_totals(i).0)))
            .collect();
        let facts: Vec<(&str, String)> = vec![
            (
                "dataset digest",
                format!("<code>{}</code>", escape(&m.dataset_digest)),
            ),
            (
                "config hash",
                format!("<code>{}</code>", escape(&m.config_hash)),
            ),
            (
                "tool version (shards / report)",
                format!(
                    "{} / {}",
                    escape(&m.tool_version),
                    env!("CARGO_PKG_VERSION")
                ),
            ),
            ("mode", escape(&m.mode)),
            ("spectra read", group(c.read)),
            (
                "written",
                format!("{} ({})", group(c.written), percent(c.written, c.read)),
            ),
            (
                "rejected",
                format!(
                    "{} ({})",
                    group(c.rejected_total),
                    percent(c.rejected_total, c.read)
                ),
            ),
            (
                "shards",
                format!("{} ({})", m.shards.len(), human_bytes(bytes)),
            ),
            (
                "splits",
                escape(&if split_text.is_empty() {
                    "none".to_string()
                } else {
                    split_text.join(", ")
                }),
            ),
            (
                "inputs",
                format!(
                    "{} file{}",
                    m.inputs.len(),
                    if m.inputs.len() == 1 { "" } else { "s" }
                ),
            ),
            (
                "shard size limit",
                self.size_limit.as_ref().map_or("not recorded".into(), |l| {
                    format!("{} ({} bytes)", escape(&l.0), group(l.1))
                }),
            ),
            (
                "run",
                escape(&format!(
                    "{} · {} workers, {} writers, decode {}",
                    m.run.created_at, m.run.num_workers, m.run.writers, m.run.decode
                )),
            ),
        ];
        h.push_str("<dl class=\"facts\">");
        for (k, v) in &facts {
            let _ = write!(h, "<div><dt>{}</dt><dd>{v}</dd></div>", escape(k));
        }
        h.push_str("</dl></header>\n");

        // Charts.
        h.push_str("<div class=\"grid\">\n");
        let series_of = |pick: &dyn Fn(&JsonColumns) -> Vec<u64>| -> Vec<Series<'_>> {
            (0..self.splits.len())
                .map(|i| Series {
                    name: &self.splits[i],
                    color: colors[i],
                    values: pick(&split_cols[i]),
                })
                .collect()
        };
        let spectra = |n: u64| format!("{} spectra", group(n));
        let stats_line = |col: &JsonColumn, unit: &str| {
            format!(
                "{} values · median {}{unit} · mean {}{unit} · range {} to {}{unit}{}",
                group(col.count),
                show_num(col.quantiles.p50),
                col.mean.map_or("–".into(), show_f64),
                show_num(col.min),
                show_num(col.max),
                nulls_note(col)
            )
        };

        // 1. Peaks per spectrum.
        let np = &cols.num_peaks;
        let bars: Vec<Bar> = np
            .bins
            .iter()
            .enumerate()
            .map(|(i, b)| Bar {
                label: (i % 4 == 0 || b.hi.is_none()).then(|| {
                    if b.hi.is_none() {
                        b.label.clone()
                    } else {
                        show_num(b.lo)
                    }
                }),
                tip: format!("{} peaks", b.label.replace('-', "–")),
                special: false,
            })
            .collect();
        figure(
            &mut h,
            "Peaks per spectrum",
            &format!(
                "num_peaks in bins of {NUM_PEAKS_BIN}; the last bar is {NUM_PEAKS_TOP} (the GeMS cap) and above. {}",
                stats_line(np, "")
            ),
            &VChart {
                title: "Peaks per spectrum",
                x_title: "peaks per spectrum",
                y_title: "spectra",
                bars,
                series: series_of(&|c| c.num_peaks.bins.iter().map(|b| b.count).collect()),
                y_fmt: short_count,
                value_fmt: spectra,
                limit: None,
                min_step: 1.0,
                edge_labels: true,
            }
            .render(),
        );

        // 2. Precursor m/z; 4. retention time: float columns with an optional `< 0` bar.
        let float_chart = |h: &mut String,
                           title: &str,
                           note: String,
                           x_title: &str,
                           pick: fn(&JsonColumns) -> &JsonColumn,
                           label_every: usize,
                           tick: &dyn Fn(i64) -> String,
                           tip: &dyn Fn(&JsonBin) -> String| {
            let col = pick(&cols);
            // The `< 0` bar only when something is negative.
            let skip = usize::from(col.bins[0].count == 0);
            let bars: Vec<Bar> = col
                .bins
                .iter()
                .enumerate()
                .skip(skip)
                .map(|(i, b)| Bar {
                    label: if i == 0 {
                        Some(b.label.clone())
                    } else if b.hi.is_none() {
                        Some(format!("{}+", tick(b.lo.map_or(0, |n| n.f64() as i64))))
                    } else {
                        ((i - 1) % label_every == 0)
                            .then(|| tick(b.lo.map_or(0, |n| n.f64() as i64)))
                    },
                    tip: tip(b),
                    special: i == 0,
                })
                .collect();
            figure(
                h,
                title,
                &note,
                &VChart {
                    title,
                    x_title,
                    y_title: "spectra",
                    bars,
                    series: series_of(&|c| {
                        pick(c).bins.iter().skip(skip).map(|b| b.count).collect()
                    }),
                    y_fmt: short_count,
                    value_fmt: spectra,
                    limit: None,
                    min_step: 1.0,
                    edge_labels: true,
                }
                .render(),
            );
        };
        float_chart(
            &mut h,
            "Precursor m/z",
            format!(
                "precursor_mz in {PRECURSOR_BIN_DA} Da bins; the last bar is {PRECURSOR_TOP_DA} Da and above. {}",
                stats_line(&cols.precursor_mz, " Da")
            ),
            "precursor m/z (Da)",
            |c| &c.precursor_mz,
            8,
            &|v| v.to_string(),
            &|b| match (b.lo, b.hi) {
                (None, _) => "below 0 Da".into(),
                (Some(lo), None) => format!("{} Da and above", show_num(Some(lo))),
                (Some(lo), Some(hi)) => format!("{}–{} Da", show_num(Some(lo)), show_num(Some(hi))),
            },
        );

        // 3. Charge: categorical, null first.
        let ch = &cols.charge;
        let mut bars = vec![Bar {
            label: Some("null".into()),
            tip: "charge null (not stored)".into(),
            special: true,
        }];
        let start = usize::from(ch.bins[0].count == 0);
        for b in &ch.bins[start..] {
            bars.push(Bar {
                label: Some(b.label.clone()),
                tip: match b.label.as_str() {
                    "0" => "charge 0 (unknown)".into(),
                    "<0" => "charge below 0".into(),
                    l => format!("charge {l}"),
                },
                special: b.label == "<0",
            });
        }
        let charge_values = |c: &JsonColumns| {
            let mut v = vec![c.charge.null];
            v.extend(c.charge.bins[start..].iter().map(|b| b.count));
            v
        };
        figure(
            &mut h,
            "Charge",
            &format!(
                "precursor charge as stored; null: no charge stored, 0: unknown. Values: {}.",
                ch.values
                    .as_ref()
                    .map(|v| {
                        v.iter()
                            .map(|x| format!("{} × {}", x.value, group(x.count)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "none".into())
            ),
            &VChart {
                title: "Charge",
                x_title: "charge",
                y_title: "spectra",
                bars,
                series: series_of(&charge_values),
                y_fmt: short_count,
                value_fmt: spectra,
                limit: None,
                min_step: 1.0,
                edge_labels: false,
            }
            .render(),
        );

        // 4. Retention time.
        float_chart(
            &mut h,
            "Retention time",
            format!(
                "rt in seconds as stored, {} min ({RT_BIN_S} s) bins, axis in minutes; the last bar is {} min and above. {}",
                RT_BIN_S / 60,
                RT_TOP_S / 60,
                stats_line(&cols.rt, " s")
            ),
            "retention time (min)",
            |c| &c.rt,
            5,
            &|v| (v / 60).to_string(),
            &|b| match (b.lo, b.hi) {
                (None, _) => "below 0 s".into(),
                (Some(lo), None) => format!("{} min ({} s) and above", show_f64(lo.f64() / 60.0), show_num(Some(lo))),
                (Some(lo), Some(hi)) => format!(
                    "{}–{} min ({}–{} s)",
                    show_f64(lo.f64() / 60.0),
                    show_f64(hi.f64() / 60.0),
                    show_num(Some(lo)),
                    show_num(Some(hi))
                ),
            },
        );

        // 5. Rejection reasons.
        let rejected = self.rejected();
        figure(
            &mut h,
            "Rejection reasons",
            &format!(
                "spectra not written, by the first rule they break (manifest counts): {} of {} read ({}).",
                group(c.rejected_total),
                group(c.read),
                percent(c.rejected_total, c.read)
            ),
            &HChart {
                title: "Rejection reasons",
                x_title: "spectra rejected",
                rows: rejected
                    .iter()
                    .map(|(r, n)| {
                        (
                            r.clone(),
                            *n,
                            format!("{r}: {} spectra ({} of read)", group(*n), percent(*n, c.read)),
                        )
                    })
                    .collect(),
                colors: vec![PALETTE[5]; rejected.len()],
            }
            .render(),
        );

        // 6. Split sizes.
        let total_rows: u64 = m.shards.iter().map(|s| s.rows).sum();
        figure(
            &mut h,
            "Split sizes",
            &format!(
                "rows per split (from the manifest's shard records, checked against the rows read): {} splits, {} rows.",
                self.splits.len(),
                group(total_rows)
            ),
            &HChart {
                title: "Split sizes",
                x_title: "spectra (rows)",
                rows: (0..self.splits.len())
                    .map(|i| {
                        let (rows, shards, bytes) = self.split_totals(i);
                        (
                            self.splits[i].clone(),
                            rows,
                            format!(
                                "{}: {} rows ({} of written), {} shard{}, {}",
                                self.splits[i],
                                group(rows),
                                percent(rows, total_rows),
                                shards,
                                if shards == 1 { "" } else { "s" },
                                human_bytes(bytes)
                            ),
                        )
                    })
                    .collect(),
                colors: colors.clone(),
            }
            .render(),
        );

        // 7. Shard sizes.
        let n_shards = m.shards.len();
        let stride = (n_shards / 16).max(1);
        let bars: Vec<Bar> = m
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| Bar {
                label: (i % stride == 0).then(|| i.to_string()),
                tip: format!("{} ({}, {} rows)", s.path, s.split, group(s.rows)),
                special: false,
            })
            .collect();
        let series: Vec<Series<'_>> = (0..self.splits.len())
            .map(|k| Series {
                name: &self.splits[k],
                color: colors[k],
                values: m
                    .shards
                    .iter()
                    .map(|s| {
                        if s.split == self.splits[k] {
                            s.bytes
                        } else {
                            0
                        }
                    })
                    .collect(),
            })
            .collect();
        let limit_note = match &self.size_limit {
            Some((text, b)) => format!(
                "the dashed line is the shard size limit, {text} ({} bytes)",
                group(*b)
            ),
            None => "no shard size limit recorded".into(),
        };
        figure(
            &mut h,
            "Shard sizes",
            &format!(
                "bytes per shard, in manifest order; {limit_note}. Largest {}, smallest {}.",
                human_bytes(m.shards.iter().map(|s| s.bytes).max().unwrap_or(0)),
                human_bytes(m.shards.iter().map(|s| s.bytes).min().unwrap_or(0))
            ),
            &VChart {
                title: "Shard sizes",
                x_title: "shard (manifest order)",
                y_title: "bytes",
                bars,
                series,
                y_fmt: short_bytes,
                value_fmt: |b| format!("{} bytes ({})", group(b), human_bytes(b)),
                limit: self
                    .size_limit
                    .as_ref()
                    .map(|(text, b)| (*b, format!("limit {text}"))),
                min_step: 1.0,
                edge_labels: false,
            }
            .render(),
        );
        h.push_str("</div>\n");

        // Summary statistics.
        h.push_str(
            "<section><h2>Summary statistics</h2><div class=\"wrap\"><table><thead><tr>\
             <th>column</th><th>unit</th><th>rows</th><th>null</th><th>non-finite</th>\
             <th>min</th>",
        );
        for p in QUANTILES {
            let _ = write!(h, "<th>p{p}</th>");
        }
        h.push_str("<th>max</th><th>mean</th></tr></thead><tbody>");
        for (name, col) in [
            ("num_peaks", &cols.num_peaks),
            ("precursor_mz", &cols.precursor_mz),
            ("charge", &cols.charge),
            ("rt", &cols.rt),
        ] {
            let _ = write!(
                h,
                "<tr><td><code>{name}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                col.unit,
                group(col.rows),
                group(col.null),
                group(col.non_finite),
                show_num(col.min)
            );
            for p in QUANTILES {
                let _ = write!(h, "<td>{}</td>", show_num(col.quantiles.get(p)));
            }
            let _ = write!(
                h,
                "<td>{}</td><td>{}</td></tr>",
                show_num(col.max),
                col.mean.map_or("–".into(), show_f64)
            );
        }
        h.push_str(
            "</tbody></table></div><p class=\"sub\">Quantiles are nearest-rank; precursor m/z \
             and rt quantiles are rounded down to 0.1 Da and 1 s.</p></section>\n",
        );

        // Settings, profile, inputs.
        h.push_str("<section class=\"two\"><div><h2>Settings</h2>");
        kv_table(&mut h, &m.settings);
        h.push_str("<h2 style=\"margin-top:12px\">Profile</h2>");
        kv_table(&mut h, &m.profile);
        h.push_str(
            "</div><div><h2>Inputs</h2><div class=\"wrap\"><table><thead><tr><th>path</th>\
             <th>spectra</th><th>bytes</th><th>first spectrum_id</th></tr></thead><tbody>",
        );
        for i in &m.inputs {
            let _ = write!(
                h,
                "<tr><td class=\"text\"><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&i.path),
                group(i.spectra),
                human_bytes(i.bytes),
                group(i.first_spectrum_id)
            );
        }
        h.push_str("</tbody></table></div></div></section>\n");
        let _ = write!(
            h,
            "<footer>Written by <code>msms quality-report</code> {} from <code>{}</code>. \
             The numbers are also in the JSON report (report_version {REPORT_VERSION}). \
             Shards were read, not re-hashed: <code>msms verify</code> checks their digests.\
             </footer>\n</main></body></html>\n",
            env!("CARGO_PKG_VERSION"),
            escape(&self.root)
        );
        h
    }
}

fn nulls_note(col: &JsonColumn) -> String {
    let mut parts = Vec::new();
    if col.null > 0 {
        parts.push(format!("{} null", group(col.null)));
    }
    if col.non_finite > 0 {
        parts.push(format!("{} non-finite", group(col.non_finite)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" · {} (not drawn)", parts.join(", "))
    }
}

/// A chart in a `<figure>` with its title and note (`note` is plain text).
fn figure(h: &mut String, title: &str, note: &str, svg: &str) {
    let _ = writeln!(
        h,
        "<figure><figcaption><h2>{}</h2><p>{}</p></figcaption>{svg}</figure>",
        escape(title),
        escape(note)
    );
}

/// A two-column table of a JSON object's keys and values (values as compact JSON).
fn kv_table(h: &mut String, v: &serde_json::Value) {
    h.push_str("<div class=\"wrap\"><table><tbody>");
    match v.as_object() {
        Some(map) => {
            for (k, v) in map {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let _ = write!(
                    h,
                    "<tr><td><code>{}</code></td><td class=\"text\"><code>{}</code></td></tr>",
                    escape(k),
                    escape(&text)
                );
            }
        }
        None => {
            let _ = write!(
                h,
                "<tr><td class=\"text\"><code>{}</code></td></tr>",
                escape(&v.to_string())
            );
        }
    }
    h.push_str("</tbody></table></div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(escape("Ω-plasma_é"), "Ω-plasma_é");
    }

    #[test]
    fn nearest_rank_quantiles_of_integers() {
        let mut a = IntAcc::new(0);
        for v in [5, 1, 3, 2, 4] {
            a.add(v);
        }
        assert_eq!(a.quantile(0.5), Some(3));
        assert_eq!(a.quantile(0.01), Some(1));
        assert_eq!(a.quantile(0.99), Some(5));
        assert_eq!(a.quantile(0.2), Some(1));
        assert_eq!(a.quantile(0.21), Some(2));
        assert_eq!(IntAcc::new(0).quantile(0.5), None);
        let mut c = IntAcc::new(-128);
        c.add(-1);
        c.add(2);
        assert_eq!(c.values().collect::<Vec<_>>(), vec![(-1, 1), (2, 1)]);
    }

    #[test]
    fn float_bins_and_quantiles_follow_the_steps() {
        let mut a = FloatAcc::new(PRECURSOR_FINE);
        for v in [-3.0, 0.0, 24.99, 25.0, 1999.95, 2000.0, 9000.0, f64::NAN] {
            a.add(v);
        }
        assert_eq!(a.non_finite, 1);
        assert_eq!(a.count(), 7);
        let bins = a.bins();
        assert_eq!(bins.len(), 82);
        assert_eq!(bins[0], 1, "< 0");
        assert_eq!(bins[1], 2, "[0, 25)");
        assert_eq!(bins[2], 1, "[25, 50)");
        assert_eq!(bins[80], 1, "[1975, 2000)");
        assert_eq!(bins[81], 2, "2000+");
        assert_eq!(bins.iter().sum::<u64>(), 7);
        assert_eq!(a.min, Some(-3.0));
        assert_eq!(a.max, Some(9000.0));
        assert_eq!(a.quantile(0.01), Some(-3.0));
        assert_eq!(a.quantile(0.5), Some(25.0));
        assert_eq!(a.quantile(0.99), Some(9000.0));
        let mut b = FloatAcc::new(PRECURSOR_FINE);
        b.add(123.456);
        assert_eq!(b.quantile(0.5), Some(123.456), "clamped up to min");
        b.add(123.99);
        assert_eq!(b.quantile(1.0), Some(123.9), "rounded down to 0.1");
    }

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(nice_axis(0.0, 1.0), (1.0, 1.0));
        assert_eq!(nice_axis(3.0, 1.0), (1.0, 3.0));
        assert_eq!(nice_axis(97.0, 1.0), (20.0, 100.0));
        assert_eq!(nice_axis(1234.0, 1.0), (500.0, 1500.0));
        assert_eq!(short_count(1500.0), "1.5k");
        assert_eq!(short_count(20_000.0), "20k");
        assert_eq!(short_count(0.0), "0");
        assert_eq!(short_bytes(300_000.0), "300 kB");
        assert_eq!(group(1_234_567), "1,234,567");
    }
}
