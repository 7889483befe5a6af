//! Configuration errors: [`ParseError`] (one value that does not parse) and [`ConfigError`]
//! (loading or resolving the configuration, naming where the bad setting came from).

use std::path::PathBuf;

use msms_kernels::UnknownName;

/// Command-line flags of the keys whose [`ConfigError::Invalid`] messages name the flag too.
const KEY_FLAGS: [(&str, &str); 13] = [
    ("profile.row_group_size", "--row-group-size"),
    ("profile.compression", "--compression"),
    ("processing.splits", "--splits"),
    ("processing.seed", "--seed"),
    ("processing.split_key", "--split-key"),
    ("processing.dedup", "--dedup"),
    ("processing.max_peaks", "--max-peaks"),
    ("processing.bin_width", "--bin-width"),
    ("processing.bin_range", "--bin-range"),
    ("processing.bin_aggregation", "--bin-aggregation"),
    ("processing.bin_scale", "--bin-scale"),
    ("processing.bin_output", "--bin-output"),
    ("processing.quality_format", "--quality-format"),
];

/// ` (--flag)` for a key listed in [`KEY_FLAGS`], otherwise empty.
fn flag_suffix(key: &str) -> String {
    KEY_FLAGS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or_else(String::new, |(_, flag)| format!(" ({flag})"))
}

/// A value that could not be parsed from text (a mode, size, range, splits or log level).
///
/// Used as the `FromStr` error of the configuration's own value types, e.g.
/// [`Mode`](super::Mode) and [`ByteSize`](super::ByteSize), so it also works as a clap value
/// parser error. The kernels' keyword enums (e.g. [`Normalize`](super::Normalize)) fail with
/// [`UnknownName`] instead, which converts into this with the same message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: {reason}")]
pub struct ParseError {
    what: &'static str,
    input: String,
    reason: String,
}

impl From<UnknownName> for ParseError {
    fn from(e: UnknownName) -> Self {
        ParseError::new(e.what(), e.input(), e.reason())
    }
}

impl ParseError {
    pub(crate) fn new(what: &'static str, input: &str, reason: impl Into<String>) -> Self {
        ParseError {
            what,
            input: input.to_owned(),
            reason: reason.into(),
        }
    }

    /// What was being parsed, e.g. `"size"` or `"mode"`.
    #[cfg(test)]
    pub(crate) fn what(&self) -> &'static str {
        self.what
    }

    /// Why it was rejected, without the input, e.g. `"must be greater than zero"`.
    pub(crate) fn reason(&self) -> &str {
        &self.reason
    }
}

/// An error while loading or resolving the configuration.
///
/// Each message names where the bad setting came from (file and position, environment
/// variable, or resolved key) and does not repeat the message of its `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid YAML, has an unknown key, a value of the wrong type or
    /// an invalid value.
    ///
    /// Displays as `path:line:column: message`, where the message names the key
    /// (e.g. `profile.batch_size: must be at least 1, got 0`).
    #[error("{}{}: {message}", path.display(), location_suffix(*line, *column))]
    Yaml {
        /// The file (or the origin given to [`Layer::from_yaml_str`](super::Layer::from_yaml_str)).
        path: PathBuf,
        /// 1-based line of the offending key or value, when known.
        line: Option<usize>,
        /// 1-based column of the offending key or value, when known.
        column: Option<usize>,
        /// What is wrong, including the dotted key path when there is one.
        message: String,
    },
    /// An `MSMS_*` environment variable has an invalid value.
    #[error("environment variable {var}={value:?}: {reason}")]
    Env {
        /// The variable, e.g. `MSMS_NUM_WORKERS`.
        var: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A resolved setting is invalid (typically set directly on a [`Layer`](super::Layer) by the CLI), or
    /// a combination of settings is (e.g. `bin_width` without `bin_range`).
    ///
    /// Displays as `key = value (from origin): reason`; for the row-group, compression,
    /// split, peak-selection, binning and quality keys the key is followed by its flag, e.g.
    /// `processing.bin_range (--bin-range)`.
    #[error("{key}{} = {value} (from {origin}): {reason}", flag_suffix(key))]
    Invalid {
        /// The key, in the YAML file's dotted form, e.g. `profile.writers`.
        key: &'static str,
        /// The rejected value, as text.
        value: String,
        /// The layer that set it: `command line`, `config file` or `environment`.
        origin: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

fn location_suffix(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}
