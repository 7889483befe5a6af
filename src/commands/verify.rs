//! `msms verify`: check a finished output root against its `manifest.json`.
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

use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, SchemaRef, UInt16Type};
use msms_kernels::{GemsFormat, Normalize};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use rayon::prelude::*;

use crate::commands::shard_pool;
use crate::format::manifest::{dataset_digest, ShardRecord, FORMAT_VERSION, MANIFEST};
use crate::format::manifest::{ColumnRecord, Manifest};
use crate::format::paths::is_plain_relative;
use crate::write::hashing::hash_file;

/// Default of [`Options::max_listed`].
pub const DEFAULT_MAX_LISTED: usize = 20;

/// Tolerance of the `sum` and `l2` normalisation checks: `|Σ I - 1|` resp.
/// `|sqrt(Σ I²) - 1|` must not exceed it. Each intensity is computed in `f64` and rounded
/// once to `f32` (relative error at most 2⁻²⁴), so a correctly normalised spectrum is within
/// about 6e-8 of 1, whatever its peak count; this allows 16 times that.
pub const NORM_TOLERANCE: f64 = 1e-6;

/// Rows per batch when reading shards back.
const BATCH_ROWS: usize = 8192;

/// Why a root could not be verified at all (the CLI exits 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
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
    /// There is no `manifest.json`.
    #[error(
        "{}: no such file: not the output root of a finished `msms build-shards` run{}",
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
    /// `manifest.json` cannot be read.
    #[error("cannot read {}", path.display())]
    ReadManifest {
        /// The manifest.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `manifest.json` is not a manifest.
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

/// A manifest field compared with what the files hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recorded {
    /// Shard `bytes` vs the file size.
    Bytes,
    /// Shard `sha256` vs the file's.
    Sha256,
    /// Shard `rows` vs the footer's row count.
    Rows,
    /// Shard `first_spectrum_id` vs the first row's.
    FirstSpectrumId,
    /// Shard `last_spectrum_id` vs the last row's.
    LastSpectrumId,
    /// `config_hash` vs the footer's `msms_shards.config_hash`.
    ConfigHash,
    /// `format_version` vs the footer's `msms_shards.format_version`.
    FormatVersion,
    /// `tool_version` vs the footer's `msms_shards.tool_version`.
    ToolVersion,
    /// `dataset_digest` vs the digest recomputed from the shard list.
    DatasetDigest,
    /// `counts.written` vs the sum of the shards' `rows`.
    Written,
    /// `counts.rejected_total` vs the sum of `counts.rejected`.
    RejectedTotal,
    /// `counts.read` vs `written + rejected_total`.
    Read,
    /// Shard `split` vs the first component of its path.
    Split,
}

impl Recorded {
    fn name(self) -> &'static str {
        match self {
            Self::Bytes => "size",
            Self::Sha256 => "sha256",
            Self::Rows => "rows",
            Self::FirstSpectrumId => "first_spectrum_id",
            Self::LastSpectrumId => "last_spectrum_id",
            Self::ConfigHash => "config_hash (footer msms_shards.config_hash)",
            Self::FormatVersion => "format_version (footer msms_shards.format_version)",
            Self::ToolVersion => "tool_version (footer msms_shards.tool_version)",
            Self::DatasetDigest => "dataset_digest",
            Self::Written => "counts.written",
            Self::RejectedTotal => "counts.rejected_total",
            Self::Read => "counts.read",
            Self::Split => "split",
        }
    }

    /// How the found value was obtained.
    fn source(self) -> &'static str {
        match self {
            Self::DatasetDigest => "recomputed from the shard list",
            Self::Written => "sum of shard rows",
            Self::RejectedTotal => "sum of counts.rejected",
            Self::Read => "written + rejected_total",
            Self::Split => "path",
            _ => "file",
        }
    }
}

/// What is wrong with one file (or, for dataset-level problems, with `manifest.json`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A shard listed in the manifest does not exist.
    Missing,
    /// A shard exists but cannot be read.
    Unreadable {
        /// The I/O error.
        error: String,
    },
    /// A recorded value differs from the file (or from the rest of the manifest).
    Mismatch {
        /// Which value.
        field: Recorded,
        /// As recorded in the manifest.
        expected: String,
        /// As found.
        found: String,
    },
    /// The Parquet footer cannot be read.
    Footer {
        /// The reader's error.
        error: String,
    },
    /// The footer's Arrow schema differs from the manifest's `schema`.
    Schema {
        /// The first difference.
        detail: String,
    },
    /// Rows of the shard cannot be decoded.
    Rows {
        /// The reader's error.
        error: String,
    },
    /// A `<split>/shard-*.parquet` file the manifest does not list.
    Unlisted,
    /// A `*.tmp` file: a write that never finished.
    Leftover,
    /// A manifest shard path that is not a plain relative path inside the root (not opened).
    BadPath,
    /// A manifest shard path listed more than once.
    Duplicate,
    /// A `settings` value this build does not understand, so the spectrum checks that depend
    /// on it were skipped.
    Setting {
        /// `settings` key.
        key: &'static str,
        /// Its value (JSON).
        value: String,
    },
    /// One spectrum breaks an invariant.
    Spectrum {
        /// Row within the shard, from 0.
        row: u64,
        /// The row's `spectrum_id`.
        spectrum_id: u64,
        /// What is wrong.
        fault: SpectrumFault,
    },
}

/// One problem: the file concerned (relative to the root, `/`-separated) and what is wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// File, relative to the root; `manifest.json` for problems of the dataset as a whole.
    pub file: String,
    /// What differs.
    pub kind: ProblemKind,
    /// Later shards with exactly the same problem, not listed separately (a manifest-wide
    /// difference such as `schema` or `config_hash` shows in every shard).
    pub same_in: u64,
}

impl Problem {
    fn new(file: &str, kind: ProblemKind) -> Problem {
        Problem {
            file: file.to_string(),
            kind,
            same_in: 0,
        }
    }

    /// Rows of `file` that could not be read (or not checked), and why.
    fn rows(file: &str, error: impl Into<String>) -> Self {
        Problem::new(
            file,
            ProblemKind::Rows {
                error: error.into(),
            },
        )
    }

    fn mismatch(
        file: &str,
        field: Recorded,
        expected: impl ToString,
        found: impl ToString,
    ) -> Self {
        Problem::new(
            file,
            ProblemKind::Mismatch {
                field,
                expected: expected.to_string(),
                found: found.to_string(),
            },
        )
    }

    /// Whether this problem is the same in every shard it occurs in, so that it is listed
    /// once: a schema or footer key-value difference.
    fn is_manifest_wide(&self) -> bool {
        match &self.kind {
            ProblemKind::Schema { .. } => true,
            ProblemKind::Mismatch { field, .. } => matches!(
                field,
                Recorded::ConfigHash | Recorded::FormatVersion | Recorded::ToolVersion
            ),
            _ => false,
        }
    }

    /// Whether this problem is about a single spectrum (those are capped in the listing).
    pub fn is_spectrum(&self) -> bool {
        matches!(self.kind, ProblemKind::Spectrum { .. })
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.kind)?;
        match self.same_in {
            0 => Ok(()),
            1 => write!(f, " (same in 1 more shard)"),
            n => write!(f, " (same in {n} more shards)"),
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(f, "missing (listed in {MANIFEST})"),
            Self::Unreadable { error } => write!(f, "cannot read: {error}"),
            Self::Mismatch {
                field,
                expected,
                found,
            } => write!(
                f,
                "{} mismatch: manifest {expected}, {} {found}",
                field.name(),
                field.source()
            ),
            Self::Footer { error } => write!(f, "Parquet footer unreadable: {error}"),
            Self::Schema { detail } => write!(f, "schema mismatch: {detail}"),
            Self::Rows { error } => write!(f, "rows cannot be decoded: {error}"),
            Self::Unlisted => write!(f, "shard file not listed in {MANIFEST}"),
            Self::Leftover => write!(
                f,
                "leftover temporary file (a write that never finished; not part of the dataset)"
            ),
            Self::BadPath => write!(
                f,
                "listed in {MANIFEST} but not a relative path inside the root (not checked)"
            ),
            Self::Duplicate => write!(f, "listed more than once in {MANIFEST}"),
            Self::Setting { key, value } => write!(
                f,
                "settings.{key} = {value} is not understood by this msms; the checks that \
                 depend on it were skipped"
            ),
            Self::Spectrum {
                row,
                spectrum_id,
                fault,
            } => write!(f, "row {row} (spectrum_id {spectrum_id}): {fault}"),
        }
    }
}

/// How one spectrum breaks what the writer guarantees.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SpectrumFault {
    /// `spectrum_id` does not exceed the previous row's (the previous shard's last, for a
    /// shard's first row).
    IdOrder {
        /// The previous row's id.
        previous: u64,
    },
    /// `num_peaks` differs from the length of `mz` or `intensity`.
    PeakCount {
        /// `num_peaks`.
        num_peaks: u16,
        /// Length of `mz`.
        mz: usize,
        /// Length of `intensity`.
        intensity: usize,
    },
    /// A NaN or infinite value.
    NonFinite {
        /// `mz` or `intensity`.
        column: &'static str,
        /// Peak index.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A value `<= 0`.
    NonPositive {
        /// `mz` or `intensity`.
        column: &'static str,
        /// Peak index.
        index: usize,
        /// The value.
        value: f64,
    },
    /// An m/z not above the one before it.
    NotAscending {
        /// Peak index.
        index: usize,
        /// `mz[index - 1]`.
        previous: f64,
        /// `mz[index]`.
        value: f64,
    },
    /// Fewer peaks than the recorded settings allow.
    TooFewPeaks {
        /// Peaks.
        peaks: usize,
        /// Least allowed.
        min: usize,
    },
    /// More peaks than `max_peaks`.
    TooManyPeaks {
        /// Peaks.
        peaks: usize,
        /// `max_peaks`.
        max: usize,
    },
    /// Intensities not normalised as recorded.
    Normalisation {
        /// The recorded mode.
        mode: Normalize,
        /// The statistic found: the maximum (`max`, `sqrt`), the sum (`sum`) or the L2 norm
        /// (`l2`).
        value: f64,
    },
    /// The precursor m/z is not finite, not positive, or above `max_precursor_mz`.
    Precursor {
        /// `precursor_mz`.
        value: f64,
        /// `max_precursor_mz`, when set.
        max: Option<f64>,
    },
    /// `gems_format` below the `quality_format` required.
    QualityFormat {
        /// `gems_format` (`None`: null or unknown).
        found: Option<String>,
        /// Required.
        wanted: GemsFormat,
    },
}

impl fmt::Display for SpectrumFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IdOrder { previous } => {
                write!(
                    f,
                    "spectrum_id does not increase (previous row has {previous})"
                )
            }
            Self::PeakCount {
                num_peaks,
                mz,
                intensity,
            } => write!(
                f,
                "num_peaks is {num_peaks} but mz has {mz} values and intensity {intensity}"
            ),
            Self::NonFinite {
                column,
                index,
                value,
            } => write!(f, "{column}[{index}] is {value} (must be finite)"),
            Self::NonPositive {
                column,
                index,
                value,
            } => write!(f, "{column}[{index}] is {value} (must be > 0)"),
            Self::NotAscending {
                index,
                previous,
                value,
            } => write!(
                f,
                "mz[{index}] = {value} is not above mz[{}] = {previous} (m/z must be strictly \
                 ascending)",
                index - 1
            ),
            Self::TooFewPeaks { peaks, min } => {
                write!(
                    f,
                    "{peaks} peaks, fewer than the {min} the settings require"
                )
            }
            Self::TooManyPeaks { peaks, max } => {
                write!(f, "{peaks} peaks, more than max_peaks {max}")
            }
            Self::Normalisation { mode, value } => match mode {
                Normalize::Sum => write!(
                    f,
                    "intensities sum to {value}, not 1 (normalize sum, tolerance {NORM_TOLERANCE})"
                ),
                Normalize::L2 => write!(
                    f,
                    "intensity L2 norm is {value}, not 1 (normalize l2, tolerance {NORM_TOLERANCE})"
                ),
                _ => write!(
                    f,
                    "largest intensity is {value}, not exactly 1 (normalize {mode})"
                ),
            },
            Self::Precursor { value, max } => match max {
                Some(max) if value.is_finite() && *value > 0.0 => {
                    write!(f, "precursor_mz {value} is above max_precursor_mz {max}")
                }
                _ => write!(f, "precursor_mz {value} is not a finite positive m/z"),
            },
            Self::QualityFormat { found, wanted } => write!(
                f,
                "gems_format {} does not meet quality_format {}",
                found.as_deref().unwrap_or("null"),
                wanted.as_str()
            ),
        }
    }
}

/// What a written spectrum must satisfy, from the manifest's `settings`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpectrumRules {
    /// Normalisation applied (`None`: unknown, not checked).
    pub normalize: Option<Normalize>,
    /// Least number of peaks a written spectrum has: `max(1, min(min_peaks, max_peaks))`.
    pub min_peaks: usize,
    /// `max_peaks`, when set.
    pub max_peaks: Option<usize>,
    /// `max_precursor_mz`, when set.
    pub max_precursor_mz: Option<f64>,
    /// `quality_format`, when set.
    pub quality_format: Option<GemsFormat>,
}

impl SpectrumRules {
    /// Rules from a manifest's `settings`; also the settings that could not be understood
    /// (their checks are skipped).
    pub fn from_settings(settings: &serde_json::Value) -> (SpectrumRules, Vec<ProblemKind>) {
        let mut unknown = Vec::new();
        let mut bad = |key: &'static str, v: &serde_json::Value| {
            unknown.push(ProblemKind::Setting {
                key,
                value: v.to_string(),
            });
        };
        let get = |key: &str| settings.get(key).unwrap_or(&serde_json::Value::Null);
        let normalize = match get("normalize") {
            serde_json::Value::String(s) => Normalize::from_str_name(s),
            _ => None,
        };
        if normalize.is_none() {
            bad("normalize", get("normalize"));
        }
        let count = |v: &serde_json::Value| v.as_u64().map(|n| n as usize);
        let min_peaks = match get("min_peaks") {
            serde_json::Value::Null => Some(1),
            v => count(v),
        };
        if min_peaks.is_none() {
            bad("min_peaks", get("min_peaks"));
        }
        let max_peaks = match get("max_peaks") {
            serde_json::Value::Null => Ok(None),
            v => count(v).filter(|&k| k > 0).map(Some).ok_or(()),
        };
        if max_peaks.is_err() {
            bad("max_peaks", get("max_peaks"));
        }
        let max_precursor_mz = match get("max_precursor_mz") {
            serde_json::Value::Null => Ok(None),
            v => v.as_f64().map(Some).ok_or(()),
        };
        if max_precursor_mz.is_err() {
            bad("max_precursor_mz", get("max_precursor_mz"));
        }
        let quality_format = match get("quality_format") {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::String(s) => GemsFormat::from_str_name(s).map(Some).ok_or(()),
            _ => Err(()),
        };
        if quality_format.is_err() {
            bad("quality_format", get("quality_format"));
        }
        let max_peaks = max_peaks.unwrap_or(None);
        let min = min_peaks
            .unwrap_or(1)
            .min(max_peaks.unwrap_or(usize::MAX))
            .max(1);
        (
            SpectrumRules {
                normalize,
                min_peaks: min,
                max_peaks,
                max_precursor_mz: max_precursor_mz.unwrap_or(None),
                quality_format: quality_format.unwrap_or(None),
            },
            unknown,
        )
    }
}

/// One spectrum as stored, for [`check_spectrum`].
#[derive(Clone, Copy, Debug)]
pub struct SpectrumView<'a> {
    /// `num_peaks`.
    pub num_peaks: u16,
    /// `mz`.
    pub mz: &'a [f64],
    /// `intensity`.
    pub intensity: &'a [f32],
    /// `precursor_mz`.
    pub precursor_mz: f64,
    /// `gems_format` (only looked at when a quality format is required).
    pub gems_format: Option<&'a str>,
}

/// Check one written spectrum against what the pipeline guarantees under `rules`; append each
/// fault found to `out` (at most one per kind of check).
///
/// The guarantees, from the validation rules of `msms_kernels` (`unpad_validate`) and
/// `batch::build`: m/z finite, `> 0` and strictly ascending (duplicates are rejected as
/// `duplicate_mz`); intensities finite and `> 0` after normalisation (a value that rounds to
/// 0 or overflows `f32` rejects the spectrum); at least `min_peaks` peaks (capped by
/// `max_peaks`, applied after validation) and at most `max_peaks`. Normalisation: `max` and
/// `sqrt` divide in `f64` by the largest value and round once to `f32`, so the base peak is
/// exactly `1.0`; `sum` and `l2` are checked within [`NORM_TOLERANCE`]; `none` is not checked.
/// Normalisation is only checked when every intensity is finite and positive.
pub fn check_spectrum(s: &SpectrumView<'_>, rules: &SpectrumRules, out: &mut Vec<SpectrumFault>) {
    let (mz, it) = (s.mz, s.intensity);
    if usize::from(s.num_peaks) != mz.len() || mz.len() != it.len() {
        out.push(SpectrumFault::PeakCount {
            num_peaks: s.num_peaks,
            mz: mz.len(),
            intensity: it.len(),
        });
    }
    if let Some((index, &value)) = mz.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        out.push(SpectrumFault::NonFinite {
            column: "mz",
            index,
            value,
        });
    }
    if let Some((index, &value)) = mz.iter().enumerate().find(|(_, &v)| v <= 0.0) {
        out.push(SpectrumFault::NonPositive {
            column: "mz",
            index,
            value,
        });
    }
    // `!(b > a)` also catches NaN neighbours, already reported above; skip those.
    if let Some(i) =
        (1..mz.len()).find(|&i| mz[i] <= mz[i - 1] && mz[i].is_finite() && mz[i - 1].is_finite())
    {
        out.push(SpectrumFault::NotAscending {
            index: i,
            previous: mz[i - 1],
            value: mz[i],
        });
    }
    let mut intensities_ok = true;
    if let Some((index, &value)) = it.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        intensities_ok = false;
        out.push(SpectrumFault::NonFinite {
            column: "intensity",
            index,
            value: value.into(),
        });
    }
    if let Some((index, &value)) = it.iter().enumerate().find(|(_, &v)| v <= 0.0) {
        intensities_ok = false;
        out.push(SpectrumFault::NonPositive {
            column: "intensity",
            index,
            value: value.into(),
        });
    }
    let peaks = mz.len().max(it.len());
    if peaks < rules.min_peaks {
        out.push(SpectrumFault::TooFewPeaks {
            peaks,
            min: rules.min_peaks,
        });
    }
    if let Some(max) = rules.max_peaks.filter(|&max| peaks > max) {
        out.push(SpectrumFault::TooManyPeaks { peaks, max });
    }
    let p = s.precursor_mz;
    if !(p.is_finite() && p > 0.0) || rules.max_precursor_mz.is_some_and(|max| p > max) {
        out.push(SpectrumFault::Precursor {
            value: p,
            max: rules.max_precursor_mz,
        });
    }
    if let Some(wanted) = rules.quality_format {
        let found = s.gems_format.and_then(GemsFormat::from_str_name);
        if found.is_none_or(|f| f > wanted) {
            out.push(SpectrumFault::QualityFormat {
                found: s.gems_format.map(str::to_string),
                wanted,
            });
        }
    }
    if intensities_ok && !it.is_empty() {
        if let Some(mode) = rules.normalize {
            let values = it.iter().map(|&v| f64::from(v));
            let (value, ok) = match mode {
                Normalize::None => (0.0, true),
                Normalize::Max | Normalize::Sqrt => {
                    let max = values.fold(f64::NEG_INFINITY, f64::max);
                    (max, max == 1.0)
                }
                Normalize::Sum => {
                    let sum: f64 = values.sum();
                    (sum, (sum - 1.0).abs() <= NORM_TOLERANCE)
                }
                Normalize::L2 => {
                    let norm = values.map(|v| v * v).sum::<f64>().sqrt();
                    (norm, (norm - 1.0).abs() <= NORM_TOLERANCE)
                }
            };
            if !ok {
                out.push(SpectrumFault::Normalisation { mode, value });
            }
        }
    }
}

/// How to verify.
#[derive(Clone, Debug)]
pub struct Options {
    /// Also read every row and check every spectrum.
    pub full: bool,
    /// Threads hashing and reading shards (each works on a different shard); `None`: one
    /// per core.
    pub threads: Option<usize>,
    /// Problems about single spectra listed in the report; the rest are only counted.
    pub max_listed: usize,
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
pub struct Report {
    /// Shards listed in the manifest.
    pub shards: usize,
    /// Rows the manifest records (sum over shards).
    pub rows: u64,
    /// Bytes read while hashing the shards.
    pub bytes: u64,
    /// Whether every spectrum was checked ([`Options::full`]).
    pub full: bool,
    /// Spectra checked one by one (`--full`).
    pub spectra_checked: u64,
    /// Problems: each shard's in manifest order, then the dataset's (`manifest.json`), then
    /// files the manifest does not list. Spectrum problems beyond [`Options::max_listed`]
    /// are left out and counted in [`omitted`](Self::omitted).
    pub problems: Vec<Problem>,
    /// Spectrum problems found but not listed.
    pub omitted: u64,
}

impl Report {
    /// No problem found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty() && self.omitted == 0
    }

    /// Problems found, listed or not.
    pub fn problem_count(&self) -> u64 {
        self.problems.iter().map(|p| 1 + p.same_in).sum::<u64>() + self.omitted
    }
}

/// An output root whose manifest has been read and accepted.
#[derive(Debug)]
pub struct Verifier {
    root: PathBuf,
    manifest: Manifest,
}

impl Verifier {
    /// Read `root/manifest.json` and check it is an msms-shards manifest of a known version.
    pub fn open(root: &Path) -> Result<Verifier, VerifyError> {
        if !root.is_dir() {
            return Err(VerifyError::NotADirectory {
                path: root.to_path_buf(),
                exists: root.exists(),
            });
        }
        let path = root.join(MANIFEST);
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
        Ok(Verifier {
            root: root.to_path_buf(),
            manifest,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Units of work [`run`](Self::run) reports through its progress callback: the shards'
    /// recorded bytes, twice with `full` (hashing, then reading the rows).
    pub fn work(&self, full: bool) -> u64 {
        let bytes: u64 = self.manifest.shards.iter().map(|s| s.bytes).sum();
        if full {
            2 * bytes
        } else {
            bytes
        }
    }

    /// Check everything; `progress` is called with increments of [`work`](Self::work) from
    /// the worker threads.
    pub fn run(
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
                .map(|k| Problem::new(MANIFEST, k))
                .collect()
        } else {
            Vec::new()
        };

        // Paths: inside the root, listed once.
        let mut seen = BTreeSet::new();
        let plan: Vec<(&ShardRecord, Option<ProblemKind>)> = m
            .shards
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

        let pool = shard_pool(opts.threads, "msms-verify")
            .map_err(|(threads, message)| VerifyError::Threads { threads, message })?;
        let ctx = ShardContext {
            root: &self.root,
            manifest: m,
            full: opts.full,
            rules,
            cap: opts.max_listed,
            progress,
        };
        let outcomes: Vec<ShardOutcome> = pool.install(|| {
            plan.par_iter()
                .map(|(rec, refuse)| match refuse {
                    Some(kind) => {
                        progress(if opts.full { 2 * rec.bytes } else { rec.bytes });
                        ShardOutcome::refused(&rec.path, kind.clone())
                    }
                    None => ctx.check(rec),
                })
                .collect()
        });

        // In manifest order; spectrum problems capped across the whole dataset.
        let mut report = Report {
            shards: m.shards.len(),
            rows: m.shards.iter().map(|s| s.rows).sum(),
            bytes: 0,
            full: opts.full,
            spectra_checked: 0,
            problems: Vec::new(),
            omitted: 0,
        };
        let mut listed = 0usize;
        // Ids increase within each split (splits interleave in spectrum_id order).
        let mut previous_last: std::collections::HashMap<&str, u64> = Default::default();
        for (out, rec) in outcomes.into_iter().zip(&m.shards) {
            report.bytes += out.bytes;
            report.spectra_checked += out.spectra_checked;
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
                let earlier = p.is_manifest_wide().then(|| {
                    report
                        .problems
                        .iter_mut()
                        .find(|q| q.kind == p.kind && q.is_manifest_wide())
                });
                if let Some(Some(q)) = earlier {
                    q.same_in += 1;
                } else if !p.is_spectrum() {
                    report.problems.push(p);
                } else if listed < opts.max_listed {
                    listed += 1;
                    report.problems.push(p);
                } else {
                    report.omitted += 1;
                }
            }
            report.omitted += out.omitted;
        }

        // The dataset as a whole.
        let d = MANIFEST;
        let digest = dataset_digest(&m.shards);
        if digest != m.dataset_digest {
            report.problems.push(Problem::mismatch(
                d,
                Recorded::DatasetDigest,
                &m.dataset_digest,
                digest,
            ));
        }
        let c = &m.counts;
        if c.written != report.rows {
            report.problems.push(Problem::mismatch(
                d,
                Recorded::Written,
                c.written,
                report.rows,
            ));
        }
        let rejected: u64 = c.rejected.values().sum();
        if c.rejected_total != rejected {
            report.problems.push(Problem::mismatch(
                d,
                Recorded::RejectedTotal,
                c.rejected_total,
                rejected,
            ));
        }
        if c.read != c.written.saturating_add(c.rejected_total) {
            report.problems.push(Problem::mismatch(
                d,
                Recorded::Read,
                c.read,
                c.written.saturating_add(c.rejected_total),
            ));
        }
        report.problems.extend(settings_notes);
        report.problems.extend(stray_files(&self.root, &seen));
        Ok(report)
    }
}

/// Read the manifest under `root` and verify everything, without progress reports.
pub fn verify(root: &Path, opts: &Options) -> Result<Report, VerifyError> {
    Verifier::open(root)?.run(opts, &|_| {})
}

/// Files under the root the manifest does not account for: `<dir>/shard-*.parquet` not in
/// `listed`, and `*.tmp` in the root or any directory directly below it. Sorted by path.
fn stray_files(root: &Path, listed: &BTreeSet<&str>) -> Vec<Problem> {
    let names = |dir: &Path| -> Vec<(String, bool)> {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        rd.filter_map(Result::ok)
            .map(|e| {
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                (e.file_name().to_string_lossy().into_owned(), is_dir)
            })
            .collect()
    };
    let mut out = Vec::new();
    for (name, is_dir) in names(root) {
        if !is_dir {
            if name.ends_with(".tmp") {
                out.push(Problem::new(&name, ProblemKind::Leftover));
            }
            continue;
        }
        for (file, sub_dir) in names(&root.join(&name)) {
            if sub_dir {
                continue;
            }
            let rel = format!("{name}/{file}");
            if file.ends_with(".tmp") {
                out.push(Problem::new(&rel, ProblemKind::Leftover));
            } else if file.starts_with("shard-")
                && file.ends_with(".parquet")
                && !listed.contains(rel.as_str())
            {
                out.push(Problem::new(&rel, ProblemKind::Unlisted));
            }
        }
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}

/// What checking one shard found.
struct ShardOutcome {
    file: String,
    problems: Vec<Problem>,
    /// Spectrum problems in `problems`.
    listed: usize,
    /// Spectrum problems beyond the cap, not in `problems`.
    omitted: u64,
    bytes: u64,
    /// First and last `spectrum_id` read.
    ids: Option<(u64, u64)>,
    spectra_checked: u64,
}

impl ShardOutcome {
    fn new(file: &str) -> ShardOutcome {
        ShardOutcome {
            file: file.to_string(),
            problems: Vec::new(),
            listed: 0,
            omitted: 0,
            bytes: 0,
            ids: None,
            spectra_checked: 0,
        }
    }

    fn refused(file: &str, kind: ProblemKind) -> ShardOutcome {
        let mut out = ShardOutcome::new(file);
        out.problems.push(Problem::new(file, kind));
        out
    }

    /// Record a spectrum problem, listing at most `cap`.
    fn spectrum(&mut self, cap: usize, row: u64, spectrum_id: u64, fault: SpectrumFault) {
        if self.listed < cap {
            self.listed += 1;
            self.problems.push(Problem::new(
                &self.file,
                ProblemKind::Spectrum {
                    row,
                    spectrum_id,
                    fault,
                },
            ));
        } else {
            self.omitted += 1;
        }
    }
}

struct ShardContext<'a> {
    root: &'a Path,
    manifest: &'a Manifest,
    full: bool,
    rules: SpectrumRules,
    cap: usize,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl ShardContext<'_> {
    fn check(&self, rec: &ShardRecord) -> ShardOutcome {
        let mut out = ShardOutcome::new(&rec.path);
        let mut reported = 0u64;
        let mut report_progress = |done: u64| {
            // Never report more than the shard's share, whatever the file really holds.
            let total = if self.full { 2 * rec.bytes } else { rec.bytes };
            let step = done.min(total.saturating_sub(reported));
            reported += step;
            (self.progress)(step);
        };
        let path = self.root.join(&rec.path);
        let file = &rec.path;
        match hash_file(&path, &mut report_progress) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                out.problems.push(Problem::new(file, ProblemKind::Missing));
            }
            Err(e) => out.problems.push(Problem::new(
                file,
                ProblemKind::Unreadable {
                    error: e.to_string(),
                },
            )),
            Ok((sha, bytes)) => {
                out.bytes = bytes;
                if bytes != rec.bytes {
                    out.problems.push(Problem::mismatch(
                        file,
                        Recorded::Bytes,
                        format!("{} bytes", rec.bytes),
                        format!("{bytes} bytes"),
                    ));
                }
                if sha != rec.sha256 {
                    out.problems
                        .push(Problem::mismatch(file, Recorded::Sha256, &rec.sha256, sha));
                }
                if out.problems.is_empty() {
                    // The bytes are the recorded ones; a reader panic would still be a bug
                    // worth reporting rather than a crash of the whole verification.
                    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.check_contents(rec, &path, &mut out, &mut report_progress)
                    }));
                    if read.is_err() {
                        out.problems
                            .push(Problem::rows(file, "the Parquet reader panicked"));
                    }
                }
            }
        }
        // `<split>/shard-…`, or `parts/K/<split>/shard-…` in a merged root (`msms merge`).
        let dir = rec.path.rsplit('/').nth(1).unwrap_or_default();
        let parts_ok = rec.path.matches('/').count() == 1
            || (rec.path.starts_with("parts/") && rec.path.matches('/').count() == 3);
        if dir != rec.split || !parts_ok {
            out.problems
                .push(Problem::mismatch(file, Recorded::Split, &rec.split, dir));
        }
        report_progress(u64::MAX);
        out
    }

    /// Footer, schema, key-value metadata, spectrum ids, and with `full` every spectrum.
    fn check_contents(
        &self,
        rec: &ShardRecord,
        path: &Path,
        out: &mut ShardOutcome,
        progress: &mut dyn FnMut(u64),
    ) {
        let file = rec.path.as_str();
        let m = self.manifest;
        let builder = match File::open(path)
            .map_err(|e| e.to_string())
            .and_then(|f| ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| e.to_string()))
        {
            Ok(b) => b,
            Err(error) => {
                out.problems
                    .push(Problem::new(file, ProblemKind::Footer { error }));
                return;
            }
        };
        let meta = builder.metadata().clone();
        let rows = meta.file_metadata().num_rows().max(0) as u64;
        if rows != rec.rows {
            out.problems
                .push(Problem::mismatch(file, Recorded::Rows, rec.rows, rows));
        }
        let schema = builder.schema().clone();
        if let Some(detail) = schema_difference(&m.schema, &schema) {
            out.problems
                .push(Problem::new(file, ProblemKind::Schema { detail }));
        }
        let kv = |key: &str| {
            meta.file_metadata()
                .key_value_metadata()
                .and_then(|kv| kv.iter().find(|k| k.key == key))
                .map(|k| k.value.clone().unwrap_or_default())
        };
        for (field, key, want) in [
            (
                Recorded::ConfigHash,
                "msms_shards.config_hash",
                m.config_hash.clone(),
            ),
            (
                Recorded::FormatVersion,
                "msms_shards.format_version",
                m.format_version.to_string(),
            ),
            (
                Recorded::ToolVersion,
                "msms_shards.tool_version",
                m.tool_version.clone(),
            ),
        ] {
            let found = kv(key);
            if found.as_deref() != Some(want.as_str()) {
                out.problems.push(Problem::mismatch(
                    file,
                    field,
                    want,
                    found.unwrap_or_else(|| "(absent)".into()),
                ));
            }
        }

        // Columns to read: spectrum_id always; with `full`, what the spectrum checks need.
        let mut wanted: Vec<(&str, DataType)> = vec![("spectrum_id", DataType::UInt64)];
        if self.full {
            let list = |t| DataType::List(Arc::new(Field::new_list_field(t, false)));
            wanted.extend([
                ("precursor_mz", DataType::Float64),
                ("num_peaks", DataType::UInt16),
                ("mz", list(DataType::Float64)),
                ("intensity", list(DataType::Float32)),
            ]);
            if self.rules.quality_format.is_some() {
                wanted.push(("gems_format", DataType::Utf8));
            }
        }
        let mut roots = Vec::new();
        for (name, t) in &wanted {
            match schema.index_of(name) {
                Ok(i) if equal_ignoring_field_names(schema.field(i).data_type(), t) => {
                    roots.push(i)
                }
                Ok(i) => {
                    out.problems.push(Problem::rows(
                        file,
                        format!(
                            "column {name} is {}, not {t}: rows not checked",
                            schema.field(i).data_type()
                        ),
                    ));
                    return;
                }
                Err(_) => {
                    out.problems.push(Problem::rows(
                        file,
                        format!("no column {name}: rows not checked"),
                    ));
                    return;
                }
            }
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let reader = match builder
            .with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                out.problems.push(Problem::rows(file, e.to_string()));
                return;
            }
        };
        let mut row = 0u64;
        let mut first: Option<u64> = None;
        let mut last: Option<u64> = None;
        let mut faults = Vec::new();
        for batch in reader {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    out.problems
                        .push(Problem::rows(file, format!("after row {row}: {e}")));
                    break;
                }
            };
            let ids = batch
                .column_by_name("spectrum_id")
                .expect("projected")
                .as_primitive::<arrow::datatypes::UInt64Type>();
            for (i, id) in ids.values().iter().copied().enumerate() {
                if let Some(prev) = last.filter(|&p| id <= p) {
                    out.spectrum(
                        self.cap,
                        row + i as u64,
                        id,
                        SpectrumFault::IdOrder { previous: prev },
                    );
                }
                first.get_or_insert(id);
                last = Some(id);
            }
            if self.full {
                self.check_batch(&batch, row, out, &mut faults);
                out.spectra_checked += batch.num_rows() as u64;
                let done = rec.bytes.saturating_mul(batch.num_rows() as u64);
                progress(done.checked_div(rec.rows).unwrap_or(0));
            }
            row += batch.num_rows() as u64;
        }
        if let (Some(first), Some(last)) = (first, last) {
            out.ids = Some((first, last));
            if first != rec.first_spectrum_id {
                out.problems.push(Problem::mismatch(
                    file,
                    Recorded::FirstSpectrumId,
                    rec.first_spectrum_id,
                    first,
                ));
            }
            if last != rec.last_spectrum_id {
                out.problems.push(Problem::mismatch(
                    file,
                    Recorded::LastSpectrumId,
                    rec.last_spectrum_id,
                    last,
                ));
            }
        }
    }

    /// Run [`check_spectrum`] on every row of `batch` (rows `row..` of the shard).
    fn check_batch(
        &self,
        batch: &RecordBatch,
        row: u64,
        out: &mut ShardOutcome,
        faults: &mut Vec<SpectrumFault>,
    ) {
        let col = |name: &str| batch.column_by_name(name).expect("projected");
        let ids = col("spectrum_id").as_primitive::<arrow::datatypes::UInt64Type>();
        let precursor = col("precursor_mz").as_primitive::<Float64Type>();
        let num_peaks = col("num_peaks").as_primitive::<UInt16Type>();
        let mz = col("mz").as_list::<i32>();
        let intensity = col("intensity").as_list::<i32>();
        let gems = batch
            .column_by_name("gems_format")
            .map(|c| c.as_string::<i32>());
        let (mz_off, mz_vals) = (
            mz.value_offsets(),
            mz.values().as_primitive::<Float64Type>().values(),
        );
        let (it_off, it_vals) = (
            intensity.value_offsets(),
            intensity.values().as_primitive::<Float32Type>().values(),
        );
        for i in 0..batch.num_rows() {
            let view = SpectrumView {
                num_peaks: num_peaks.value(i),
                mz: &mz_vals[mz_off[i] as usize..mz_off[i + 1] as usize],
                intensity: &it_vals[it_off[i] as usize..it_off[i + 1] as usize],
                precursor_mz: precursor.value(i),
                gems_format: gems.and_then(|g| (!g.is_null(i)).then(|| g.value(i))),
            };
            faults.clear();
            check_spectrum(&view, &self.rules, faults);
            for fault in faults.drain(..) {
                out.spectrum(self.cap, row + i as u64, ids.value(i), fault);
            }
        }
    }
}

/// `a` and `b` equal but for the names of list item fields (writers differ: `item`, `element`).
fn equal_ignoring_field_names(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::List(x), DataType::List(y)) => {
            x.is_nullable() == y.is_nullable()
                && equal_ignoring_field_names(x.data_type(), y.data_type())
        }
        _ => a == b,
    }
}

/// The first difference between the manifest's columns and a shard's Arrow schema.
fn schema_difference(manifest: &[ColumnRecord], schema: &SchemaRef) -> Option<String> {
    let show = |name: &str, t: &str, nullable: bool| {
        format!("{name} {t}{}", if nullable { "" } else { " not null" })
    };
    for (i, (want, got)) in manifest.iter().zip(schema.fields()).enumerate() {
        let got_type = got.data_type().to_string();
        if want.name != *got.name()
            || want.data_type != got_type
            || want.nullable != got.is_nullable()
        {
            return Some(format!(
                "column {i}: manifest `{}`, file `{}`",
                show(&want.name, &want.data_type, want.nullable),
                show(got.name(), &got_type, got.is_nullable())
            ));
        }
    }
    let (a, b) = (manifest.len(), schema.fields().len());
    if a != b {
        let extra = if a > b {
            format!("manifest also has `{}`", manifest[b].name)
        } else {
            format!("file also has `{}`", schema.field(a).name())
        };
        return Some(format!("manifest {a} columns, file {b} columns ({extra})"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use msms_kernels::{extend_intensity, extend_intensity_at, top_k, Orientation, PeakBlock};

    fn rules(normalize: Normalize) -> SpectrumRules {
        SpectrumRules {
            normalize: Some(normalize),
            min_peaks: 1,
            max_peaks: None,
            max_precursor_mz: None,
            quality_format: None,
        }
    }

    fn faults(mz: &[f64], it: &[f32], r: &SpectrumRules) -> Vec<SpectrumFault> {
        let mut out = Vec::new();
        check_spectrum(
            &SpectrumView {
                num_peaks: mz.len() as u16,
                mz,
                intensity: it,
                precursor_mz: 500.0,
                gems_format: None,
            },
            r,
            &mut out,
        );
        out
    }

    /// Deterministic pseudo-random intensities spanning many orders of magnitude.
    fn intensities(seed: u64, n: usize) -> Vec<f64> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                10f64.powf(u * 8.0 - 2.0)
            })
            .collect()
    }

    /// Whatever the kernels write passes the check, for every mode and peak count, with and
    /// without top-k: the tolerances match what the writer guarantees.
    #[test]
    fn kernel_output_passes_for_every_mode() {
        for mode in Normalize::ALL {
            for n in [1usize, 2, 3, 7, 64, 128, 1000] {
                for seed in 0..20 {
                    let mz: Vec<f64> = (0..n).map(|i| 50.0 + i as f64 * 0.5).collect();
                    let it = intensities(seed * 1000 + n as u64, n);
                    let mut block = mz.clone();
                    block.extend(&it);
                    let block = PeakBlock::new(&block[..], Orientation::Planar);
                    let mut out = Vec::new();
                    extend_intensity(block, n, mode, &mut out);
                    assert_eq!(faults(&mz, &out, &rules(mode)), vec![], "{mode} n {n}");
                    if n > 3 {
                        let mut idx = Vec::new();
                        top_k(block, n, 3, &mut idx);
                        let mut out = Vec::new();
                        extend_intensity_at(block, &idx, mode, &mut out);
                        let kept: Vec<f64> = idx.iter().map(|&i| mz[i as usize]).collect();
                        assert_eq!(faults(&kept, &out, &rules(mode)), vec![], "{mode} top 3");
                    }
                }
            }
        }
    }

    #[test]
    fn each_invariant_is_named() {
        let max = rules(Normalize::Max);
        assert!(matches!(
            faults(&[100.0, 200.0], &[f32::NAN, 1.0], &max)[..],
            [SpectrumFault::NonFinite {
                column: "intensity",
                index: 0,
                ..
            }]
        ));
        assert_eq!(
            faults(&[200.0, 100.0], &[0.5, 1.0], &max),
            vec![SpectrumFault::NotAscending {
                index: 1,
                previous: 200.0,
                value: 100.0
            }]
        );
        // Equal m/z are rejected by the pipeline (duplicate_mz): strictly ascending.
        assert!(matches!(
            faults(&[100.0, 100.0], &[0.5, 1.0], &max)[..],
            [SpectrumFault::NotAscending { index: 1, .. }]
        ));
        assert!(matches!(
            faults(&[-1.0, 100.0], &[0.5, 1.0], &max)[..],
            [SpectrumFault::NonPositive { column: "mz", .. }]
        ));
        assert!(matches!(
            faults(&[1.0, 100.0], &[0.0, 1.0], &max)[..],
            [SpectrumFault::NonPositive {
                column: "intensity",
                ..
            }]
        ));
        assert!(matches!(
            faults(&[1.0, 100.0], &[0.5, 0.999_999_9], &max)[..],
            [SpectrumFault::Normalisation {
                mode: Normalize::Max,
                ..
            }]
        ));
        assert!(matches!(
            faults(&[1.0, 100.0], &[0.5, 0.6], &rules(Normalize::Sum))[..],
            [SpectrumFault::Normalisation {
                mode: Normalize::Sum,
                ..
            }]
        ));
        assert!(matches!(
            faults(&[1.0, 100.0], &[0.5, 0.5], &rules(Normalize::L2))[..],
            [SpectrumFault::Normalisation {
                mode: Normalize::L2,
                ..
            }]
        ));
        assert_eq!(
            faults(&[1.0, 100.0], &[5.0, 7.0], &rules(Normalize::None)),
            vec![]
        );
        assert!(matches!(
            faults(&[], &[], &max)[..],
            [SpectrumFault::TooFewPeaks { peaks: 0, min: 1 }]
        ));
        let capped = SpectrumRules {
            max_peaks: Some(1),
            ..max
        };
        assert!(matches!(
            faults(&[1.0, 2.0], &[0.5, 1.0], &capped)[..],
            [SpectrumFault::TooManyPeaks { peaks: 2, max: 1 }]
        ));
    }

    #[test]
    fn rules_follow_the_settings() {
        let (r, unknown) = SpectrumRules::from_settings(&serde_json::json!({
            "normalize": "sqrt", "min_peaks": 5, "max_peaks": 3, "max_precursor_mz": 900.5,
            "quality_format": "B"
        }));
        assert!(unknown.is_empty());
        assert_eq!(r.normalize, Some(Normalize::Sqrt));
        // Top-k after validation can leave fewer than min_peaks.
        assert_eq!(r.min_peaks, 3);
        assert_eq!(r.max_peaks, Some(3));
        assert_eq!(r.max_precursor_mz, Some(900.5));
        assert_eq!(r.quality_format, Some(GemsFormat::B));
        let (r, unknown) = SpectrumRules::from_settings(&serde_json::json!({
            "normalize": "zscore", "min_peaks": 0
        }));
        assert_eq!(r.normalize, None);
        assert_eq!(r.min_peaks, 1);
        assert_eq!(
            unknown,
            vec![ProblemKind::Setting {
                key: "normalize",
                value: "\"zscore\"".into()
            }]
        );
    }

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
