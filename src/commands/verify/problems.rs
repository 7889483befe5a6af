//! What `msms verify` reports: a [`Problem`] (file and [`ProblemKind`]), the manifest
//! fields it compares ([`Recorded`]), and the text each problem is printed as.

use std::fmt;

use super::SpectrumFault;

/// A manifest field compared with what the files hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Recorded {
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

/// What is wrong with one file (or, for dataset-level problems, with the manifest).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub(crate) enum ProblemKind {
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
pub(crate) struct Problem {
    /// File, relative to the root; the manifest's (`_manifest.json`, or a format-1 root's
    /// `manifest.json`) for problems of the dataset as a whole.
    pub(crate) file: String,
    /// What differs.
    pub(crate) kind: ProblemKind,
    /// Later shards with exactly the same problem, not listed separately (a manifest-wide
    /// difference such as `schema` or `config_hash` shows in every shard).
    pub(crate) same_in: u64,
}

impl Problem {
    pub(super) fn new(file: &str, kind: ProblemKind) -> Problem {
        Problem {
            file: file.to_string(),
            kind,
            same_in: 0,
        }
    }

    /// Rows of `file` that could not be read (or not checked), and why.
    pub(super) fn rows(file: &str, error: impl Into<String>) -> Self {
        Problem::new(
            file,
            ProblemKind::Rows {
                error: error.into(),
            },
        )
    }

    pub(super) fn mismatch(
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
    pub(super) fn is_manifest_wide(&self) -> bool {
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
    pub(crate) fn is_spectrum(&self) -> bool {
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
            Self::Missing => write!(f, "missing (listed in the manifest)"),
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
            Self::Unlisted => write!(f, "shard file not listed in the manifest"),
            Self::Leftover => write!(
                f,
                "leftover temporary file (a write that never finished; not part of the dataset)"
            ),
            Self::BadPath => write!(
                f,
                "listed in the manifest but not a relative path inside the root (not checked)"
            ),
            Self::Duplicate => write!(f, "listed more than once in the manifest"),
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
