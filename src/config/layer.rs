//! [`Layer`]: one source's optional settings (command line, config file or environment).

use std::path::PathBuf;

use super::*;

/// One layer of optional settings (file, env or CLI all map into this).
///
/// `None` means "not set here": the next layer down, or the default, applies. There is no
/// way for a layer to unset a value that a lower layer sets (for example a YAML
/// `max_precursor_mz: null` is the same as leaving the key out).
#[derive(Default, Clone, Debug, PartialEq)]
pub struct Layer {
    /// `mode`.
    pub mode: Option<Mode>,
    /// `inputs`: HDF5 files, in spectrum-numbering order. Relative paths are kept as
    /// written (relative to the working directory, not to the config file).
    pub inputs: Option<Vec<PathBuf>>,
    /// `output_root`: directory receiving `_manifest.json` and the split directories.
    pub output_root: Option<PathBuf>,
    /// `profile.num_workers`.
    pub num_workers: Option<usize>,
    /// `profile.shard_size`.
    pub shard_size: Option<ByteSize>,
    /// `profile.batch_size`.
    pub batch_size: Option<usize>,
    /// `profile.row_group_size`.
    pub row_group_size: Option<usize>,
    /// `profile.compression`.
    pub compression: Option<Compression>,
    /// `profile.checkpoint_interval`.
    pub checkpoint_interval: Option<usize>,
    /// `profile.writers`.
    pub writers: Option<usize>,
    /// `processing.normalize`.
    pub normalize: Option<Normalize>,
    /// `processing.min_peaks`.
    pub min_peaks: Option<usize>,
    /// `processing.max_precursor_mz`.
    pub max_precursor_mz: Option<f64>,
    /// `processing.max_spectra`.
    pub max_spectra: Option<u64>,
    /// `processing.max_peaks`: keep the K most intense peaks (>= 1).
    pub max_peaks: Option<usize>,
    /// `processing.bin_width`: turns binning on (finite, > 0).
    pub bin_width: Option<f64>,
    /// `processing.bin_range`: the binned m/z range, required with `bin_width`.
    pub bin_range: Option<BinRange>,
    /// `processing.bin_aggregation`.
    pub bin_aggregation: Option<BinAggregation>,
    /// `processing.bin_scale` (finite, > 0).
    pub bin_scale: Option<f64>,
    /// `processing.bin_output`.
    pub bin_output: Option<BinOutput>,
    /// `processing.quality_format`.
    pub quality_format: Option<QualityFormat>,
    /// `processing.splits`.
    pub splits: Option<Splits>,
    /// `processing.seed`: of the split assignment.
    pub seed: Option<u64>,
    /// `processing.split_key`.
    pub split_key: Option<SplitKey>,
    /// `processing.dedup`.
    pub dedup: Option<Dedup>,
    /// `processing.columns`: only these pass-through columns.
    pub columns: Option<ColumnList>,
    /// `processing.exclude_columns`: not these pass-through columns.
    pub exclude_columns: Option<ColumnList>,
    /// `logging.level`, lowercase, one of [`LOG_LEVELS`].
    pub log_level: Option<String>,
    /// `logging.file`.
    pub log_file: Option<PathBuf>,
    /// What reading this layer had to say, one line each (a key accepted under an older
    /// name); the caller shows them.
    pub notices: Vec<String>,
}

pub(super) fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}
