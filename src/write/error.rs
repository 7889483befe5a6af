//! [`SinkError`]: failures while encoding or writing shards and other output files.

use std::io;
use std::path::{Path, PathBuf};

/// Failures while encoding or writing shards.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A filesystem operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Parquet encoding failed.
    #[error("encoding Parquet")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow failed while slicing a batch.
    #[error("preparing a batch")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The maximum shard size cannot hold even one spectrum.
    #[error("--shard-size {max} bytes cannot hold a single spectrum ({need} bytes needed for spectrum_id {spectrum_id}); raise it")]
    ShardTooSmall {
        /// Configured maximum.
        max: u64,
        /// Bytes one row group of that spectrum needs.
        need: u64,
        /// The spectrum.
        spectrum_id: u64,
    },
    /// A checkpoint's position does not fit the data it is resumed on.
    #[error("{0}")]
    Resume(String),
}

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> SinkError + 'a {
    move |source| SinkError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
