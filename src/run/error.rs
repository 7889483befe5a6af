//! [`RunError`]: why a `build-shards` run stopped, and the exit code each reason gives.

use std::path::{Path, PathBuf};

use crate::format::checkpoint::CheckpointError;
use crate::read::InputError;
use crate::write::error::SinkError;

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An input cannot be converted or read (exit code 2).
    #[error(transparent)]
    Input(#[from] InputError),
    /// The output root is unusable as given (exit code 2).
    #[error("output root {}: {message}", path.display())]
    Output {
        /// The output root.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The root `msms rebalance` reads is unusable (exit code 2).
    #[error("source root {}: {message}", path.display())]
    Source {
        /// The source root.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Settings that cannot work together (exit code 2).
    #[error("{0}")]
    Settings(String),
    /// Writing failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A worker thread panicked (a bug).
    #[error("internal error: {0}")]
    Internal(String),
    /// The checkpoint cannot be used for `--resume` (exit code 2).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The preflight found what would stop the run part-way, one line each (exit code 2;
    /// `--skip-preflight` runs anyway).
    #[error("preflight: {}", .0.join("\npreflight: "))]
    Preflight(Vec<String>),
    /// Another command holds the output root, or its lock file cannot be made (exit code 2).
    #[error(transparent)]
    Locked(#[from] crate::run::root_lock::LockError),
    /// SIGINT or SIGTERM: the run stopped at a clean point (exit code 130).
    #[error("{}", interrupted_text(*shards, checkpoint.as_deref()))]
    Interrupted {
        /// Finalised shards kept.
        shards: usize,
        /// The checkpoint file (none in a dry run).
        checkpoint: Option<PathBuf>,
    },
}

fn interrupted_text(shards: usize, checkpoint: Option<&Path>) -> String {
    match checkpoint {
        Some(p) => format!(
            "interrupted: {shards} finished shards kept, the shard in progress dropped; {} records where to continue",
            p.display()
        ),
        None => "interrupted".into(),
    }
}

impl RunError {
    /// Exit code for the binary: 2 for bad input, settings or output root; 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Input(_)
            | RunError::Output { .. }
            | RunError::Source { .. }
            | RunError::Settings(_)
            | RunError::Checkpoint(_)
            | RunError::Preflight(_)
            | RunError::Locked(_) => 2,
            RunError::Sink(SinkError::ShardTooSmall { .. } | SinkError::Resume(_)) => 2,
            RunError::Interrupted { .. } => 130,
            RunError::Sink(_) | RunError::Internal(_) => 1,
        }
    }

    /// Refused for its input, settings or output root (exit code 2): such a run leaves
    /// nothing behind.
    pub(crate) fn is_refusal(&self) -> bool {
        self.exit_code() == 2
    }
}
