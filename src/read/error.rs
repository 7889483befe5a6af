//! [`InputError`]: a file that cannot be converted, or a failure reading it, naming the file
//! and the dataset.

use std::path::{Path, PathBuf};

use crate::read::h5;

/// A file that cannot be converted, or a failure reading it.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", path.display(), dataset.as_deref().map(|d| format!(": dataset `{d}`")).unwrap_or_default())]
pub struct InputError {
    /// The input file.
    pub path: PathBuf,
    /// The dataset concerned, when there is one.
    pub dataset: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    pub(crate) fn new(path: &Path, dataset: Option<&str>, message: impl Into<String>) -> Self {
        InputError {
            path: path.to_path_buf(),
            dataset: dataset.map(str::to_string),
            message: message.into(),
        }
    }

    pub(crate) fn h5(path: &Path, dataset: Option<&str>, e: h5::H5Error) -> Self {
        InputError::new(path, dataset, e.to_string())
    }
}
