//! [`Settings`]: the layers merged key by key and validated, and the config hash of the
//! settings that affect output bytes.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::values::keyword;
use super::yaml::check_positive_f64;
use super::*;

/// Log level used when no layer sets one.
const DEFAULT_LOG_LEVEL: &str = "info";

/// Minimum number of peaks used when no layer sets `min_peaks`.
const DEFAULT_MIN_PEAKS: usize = 1;

/// `bin_scale` used when binning is on and no layer sets it.
const DEFAULT_BIN_SCALE: f64 = 1.0;

/// Largest number of bins [`Settings::resolve`] accepts (the binning kernel's limit).
pub const MAX_BINS: usize = 10_000_000;

/// Relative tolerance of the bin-count rounding guard.
const BIN_COUNT_TOLERANCE: f64 = 1e-9;

/// Fully resolved settings.
///
/// Serialises (e.g. into the manifest) with `mode` as `"local"`/`"production"`,
/// `profile.shard_size` as a size string such as `"1GB"` and paths as strings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Settings {
    /// The resolved mode.
    pub mode: Mode,
    /// Throughput settings: the mode's defaults overridden key by key.
    pub profile: Profile,
    /// Input files, in order; empty when no layer sets them.
    pub inputs: Vec<PathBuf>,
    /// Output directory, if any layer sets it.
    pub output_root: Option<PathBuf>,
    /// Intensity normalisation; default `max`.
    #[serde(with = "keyword")]
    pub normalize: Normalize,
    /// Spectra with fewer peaks are rejected; default 1 (0 turns the check off; empty spectra are still rejected as `empty`).
    pub min_peaks: usize,
    /// Spectra with a larger precursor m/z are rejected; `None` is no limit (default).
    pub max_precursor_mz: Option<f64>,
    /// Stop after this many spectra; `None` is no limit (default).
    pub max_spectra: Option<u64>,
    /// Keep only the this many most intense peaks of each spectrum (ties broken by lower
    /// m/z); `None` keeps all (default).
    pub max_peaks: Option<usize>,
    /// Binning onto a fixed m/z grid; `None` (default) stores the peaks themselves.
    pub binning: Option<Binning>,
    /// Reject spectra that do not meet this GeMS quality format; `None` (default) keeps all.
    #[serde(with = "keyword::option")]
    pub quality_format: Option<QualityFormat>,
    /// Splits and their fractions; `None` (default) writes every spectrum to `train`.
    pub splits: Option<Splits>,
    /// Seed of the split assignment (only with `splits`); default 0.
    pub seed: u64,
    /// What decides a spectrum's split (only with `splits`); default `auto`.
    pub split_key: SplitKey,
    /// Which duplicate spectra are dropped; default none.
    pub dedup: Dedup,
    /// Only these pass-through columns (by dataset or column name); all when `None`.
    pub columns: Option<ColumnList>,
    /// Not these pass-through columns; none when `None`.
    pub exclude_columns: Option<ColumnList>,
    /// Log level, one of [`LOG_LEVELS`]; default `info`.
    pub log_level: String,
    /// Log file, if any; otherwise logs go to standard error.
    pub log_file: Option<PathBuf>,
}

/// The settings that change output bytes, in a fixed field order (hashed by
/// [`Settings::config_hash`]; changing this struct changes every config hash).
///
/// `row_group_size` and `compression` always have a value, so adding them changed every
/// hash. The optional fields after them are left out while unset, so that settings which do
/// not use them keep the hash they would have without those fields.
///
/// It also reads back a manifest's `settings` ([`RecordedSettings`]): unknown keys are
/// refused, so that settings this build does not understand are never hashed as if it did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputSettings {
    #[serde(with = "keyword")]
    normalize: Normalize,
    min_peaks: usize,
    max_precursor_mz: Option<f64>,
    max_spectra: Option<u64>,
    batch_size: usize,
    shard_size: ByteSize,
    // Manifests written before these two existed (row groups followed the read units, zstd
    // level 1) read back with the values those runs used as far as rebalance is concerned.
    #[serde(default = "super::profile::default_row_group_size")]
    row_group_size: usize,
    #[serde(default)]
    compression: Compression,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_peaks: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    binning: Option<Binning>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "keyword::option"
    )]
    quality_format: Option<QualityFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    splits: Option<Splits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    split_key: Option<SplitKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dedup: Option<Dedup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    columns: Option<ColumnList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exclude_columns: Option<ColumnList>,
}

const ORIGINS: [&str; 3] = ["command line", "config file", "environment"];

/// The layers by precedence: command line, config file, environment.
type Layers<'a> = [Option<&'a Layer>; 3];

/// The first layer that sets a key, with that layer's name.
fn pick<T: Clone>(
    layers: &Layers<'_>,
    get: impl Fn(&Layer) -> Option<T>,
) -> Option<(T, &'static str)> {
    layers
        .iter()
        .zip(ORIGINS)
        .find_map(|(layer, origin)| layer.and_then(&get).map(|v| (v, origin)))
}

impl Settings {
    /// Merges the layers, key by key: cli > file > env > mode default.
    ///
    /// The mode is resolved first with the same precedence (default `local`), then
    /// `Profile::for_mode(mode, cores)` supplies the defaults. Resolved values are
    /// validated (counts >= 1, `max_precursor_mz` finite and > 0, a known log level...);
    /// a bad one is [`ConfigError::Invalid`] naming the key and the layer it came from.
    pub fn resolve(
        cli: &Layer,
        file: Option<&Layer>,
        env: &Layer,
        cores: usize,
    ) -> Result<Settings, ConfigError> {
        let layers = [Some(cli), file, Some(env)];
        let mode = pick(&layers, |l| l.mode).map_or(Mode::default(), |(m, _)| m);
        let profile = resolve_profile(&layers, Profile::for_mode(mode, cores))?;
        let max_precursor_mz = resolve_positive(
            "processing.max_precursor_mz",
            pick(&layers, |l| l.max_precursor_mz),
        )?
        .map(|(v, _)| v);
        let max_spectra = resolve_nonzero(
            "processing.max_spectra",
            pick(&layers, |l| l.max_spectra),
            "must be at least 1 (leave it unset for no limit)",
        )?;
        let max_peaks = resolve_nonzero(
            "processing.max_peaks",
            pick(&layers, |l| l.max_peaks),
            "must be at least 1 (leave it unset to keep every peak)",
        )?;
        let binning = resolve_binning(&layers)?;
        let splits = pick(&layers, |l| l.splits.clone());
        if splits.is_none() {
            refuse_split_keys_without_splits(&layers)?;
        }
        let log_level = resolve_log_level(&layers)?;

        Ok(Settings {
            mode,
            profile,
            inputs: pick(&layers, |l| l.inputs.clone()).map_or_else(Vec::new, |(v, _)| v),
            output_root: pick(&layers, |l| l.output_root.clone()).map(|(v, _)| v),
            normalize: pick(&layers, |l| l.normalize).map_or(Normalize::default(), |(v, _)| v),
            min_peaks: pick(&layers, |l| l.min_peaks).map_or(DEFAULT_MIN_PEAKS, |(v, _)| v),
            max_precursor_mz,
            max_spectra,
            max_peaks,
            binning,
            quality_format: pick(&layers, |l| l.quality_format).map(|(v, _)| v),
            splits: splits.map(|(v, _)| v),
            seed: pick(&layers, |l| l.seed).map_or(0, |(v, _)| v),
            split_key: pick(&layers, |l| l.split_key).map_or(SplitKey::default(), |(v, _)| v),
            dedup: pick(&layers, |l| l.dedup).map_or(Dedup::default(), |(v, _)| v),
            columns: pick(&layers, |l| l.columns.clone()).map(|(v, _)| v),
            exclude_columns: pick(&layers, |l| l.exclude_columns.clone()).map(|(v, _)| v),
            log_level,
            log_file: pick(&layers, |l| l.log_file.clone()).map(|(v, _)| v),
        })
    }
    fn output_settings(&self) -> OutputSettings {
        OutputSettings {
            normalize: self.normalize,
            min_peaks: self.min_peaks,
            max_precursor_mz: self.max_precursor_mz,
            max_spectra: self.max_spectra,
            batch_size: self.profile.batch_size,
            shard_size: self.profile.shard_size,
            row_group_size: self.profile.row_group_size,
            compression: self.profile.compression,
            max_peaks: self.max_peaks,
            binning: self.binning,
            quality_format: self.quality_format,
            splits: self.splits.clone(),
            seed: self.splits.as_ref().map(|_| self.seed),
            split_key: self.splits.as_ref().map(|_| self.split_key),
            dedup: (self.dedup != Dedup::None).then_some(self.dedup),
            columns: self.columns.clone(),
            exclude_columns: self.exclude_columns.clone(),
        }
    }

    /// JSON of the settings that affect output bytes: `normalize`, `min_peaks`,
    /// `max_precursor_mz`, `max_spectra`, `batch_size`, `shard_size`, `row_group_size`,
    /// `compression`, `max_peaks`, `binning` and `quality_format` (and the split and dedup
    /// keys when set).
    ///
    /// Not included: `num_workers`, `writers`, logging, input paths, output root and the
    /// mode name. `shard_size` is its display string (`"1GB"`), `compression` its canonical
    /// text (`"zstd:1"`, `"lz4"`, `"snappy"`, `"none"`); unset limits and unset
    /// `max_peaks`, `binning` and `quality_format` are `null`. `binning` is an object
    /// `{"width", "min", "max", "aggregation", "scale", "output"}`.
    pub fn output_settings_json(&self) -> serde_json::Value {
        self.output_settings().to_json()
    }

    /// `"sha256:<hex>"` of the canonical JSON of the settings of
    /// [`Settings::output_settings_json`]: `serde_json::to_vec` of a struct with a fixed
    /// field order, so no whitespace.
    ///
    /// Field order: normalize, min_peaks, max_precursor_mz, max_spectra, batch_size,
    /// shard_size, row_group_size, compression, then max_peaks, binning, quality_format,
    /// splits, seed, split_key and dedup, each only when set (so settings that leave them
    /// unset hash as if these keys did not exist).
    /// Equal settings give equal hashes on every platform.
    pub fn config_hash(&self) -> String {
        self.output_settings().config_hash()
    }
}

impl OutputSettings {
    /// The manifest's `settings` object: the unset optional keys `max_peaks`, `binning` and
    /// `quality_format` written as `null`.
    fn to_json(&self) -> serde_json::Value {
        let mut v =
            serde_json::to_value(self).expect("output settings are plain strings and numbers");
        if let Some(map) = v.as_object_mut() {
            for key in ["max_peaks", "binning", "quality_format"] {
                map.entry(key).or_insert(serde_json::Value::Null);
            }
        }
        v
    }

    /// The config hash ([`Settings::config_hash`]).
    fn config_hash(&self) -> String {
        let bytes =
            serde_json::to_vec(self).expect("output settings are plain strings and numbers");
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
    }
}

/// The output settings a manifest records (its `settings`), read back so that a rewrite of
/// its shards (`msms rebalance`) can change their layout (shard size, row group size,
/// compression) and record and hash the result exactly as `build-shards` would.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RecordedSettings(OutputSettings);

impl RecordedSettings {
    /// Read a manifest's `settings`; keys this build does not know are refused.
    pub(crate) fn from_json(v: &serde_json::Value) -> Result<Self, serde_json::Error> {
        OutputSettings::deserialize(v).map(RecordedSettings)
    }

    /// The same settings with another shard size, row group size and compression.
    pub(crate) fn with_layout(
        mut self,
        shard_size: ByteSize,
        row_group_size: usize,
        compression: Compression,
    ) -> Self {
        self.0.shard_size = shard_size;
        self.0.row_group_size = row_group_size;
        self.0.compression = compression;
        self
    }

    /// Shard size, row group size and compression.
    pub(crate) fn layout(&self) -> (ByteSize, usize, Compression) {
        (self.0.shard_size, self.0.row_group_size, self.0.compression)
    }

    /// As a manifest records them ([`Settings::output_settings_json`]).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        self.0.to_json()
    }

    /// Their config hash ([`Settings::config_hash`]).
    pub(crate) fn config_hash(&self) -> String {
        self.0.config_hash()
    }
}

/// Resolves the `bin_*` keys (each with the usual precedence) into [`Binning`].
///
/// Binning is on only when `bin_width` resolves to a value; it then needs `bin_range`,
/// and the other `bin_*` keys are refused without it.
fn resolve_binning(layers: &Layers<'_>) -> Result<Option<Binning>, ConfigError> {
    let width = resolve_positive("processing.bin_width", pick(layers, |l| l.bin_width))?;
    let range = pick(layers, |l| l.bin_range);
    let aggregation = pick(layers, |l| l.bin_aggregation);
    let scale = resolve_positive("processing.bin_scale", pick(layers, |l| l.bin_scale))?;
    let output = pick(layers, |l| l.bin_output);

    if let Some((r, origin)) = range {
        if let Err(reason) = BinRange::check(r.min, r.max) {
            return Err(ConfigError::Invalid {
                key: "processing.bin_range",
                value: r.to_string(),
                origin,
                reason: reason.to_owned(),
            });
        }
    }

    let Some((width, width_origin)) = width else {
        refuse_bin_keys_without_width(range, aggregation, scale, output)?;
        return Ok(None);
    };

    let Some((range, range_origin)) = range else {
        return Err(ConfigError::Invalid {
            key: "processing.bin_range",
            value: "unset".to_owned(),
            origin: width_origin,
            reason: format!(
                "required with bin_width (--bin-width), which the {width_origin} sets to \
                 {width}; give the binned m/z range as MIN:MAX, e.g. 10:1000"
            ),
        });
    };
    check_bin_count((width, width_origin), (range, range_origin))?;
    Ok(Some(Binning {
        width,
        min: range.min,
        max: range.max,
        aggregation: aggregation.map_or(BinAggregation::default(), |(v, _)| v),
        scale: scale.map_or(DEFAULT_BIN_SCALE, |(v, _)| v),
        output: output.map_or(BinOutput::default(), |(v, _)| v),
    }))
}

/// Without `bin_width` the other `bin_*` keys would do nothing: refuse the first one set.
fn refuse_bin_keys_without_width(
    range: Option<(BinRange, &'static str)>,
    aggregation: Option<(BinAggregation, &'static str)>,
    scale: Option<(f64, &'static str)>,
    output: Option<(BinOutput, &'static str)>,
) -> Result<(), ConfigError> {
    let unused = |key: &'static str, value: String, origin: &'static str| {
        Err(ConfigError::Invalid {
            key,
            value,
            origin,
            reason: "only meaningful with bin_width (--bin-width); set bin_width to bin \
                     the peaks, or leave this key out"
                .to_owned(),
        })
    };
    if let Some((v, origin)) = range {
        return unused("processing.bin_range", v.to_string(), origin);
    }
    if let Some((v, origin)) = aggregation {
        return unused("processing.bin_aggregation", v.to_string(), origin);
    }
    if let Some((v, origin)) = scale {
        return unused("processing.bin_scale", v.to_string(), origin);
    }
    if let Some((v, origin)) = output {
        return unused("processing.bin_output", v.to_string(), origin);
    }
    Ok(())
}

/// At least one and at most [`MAX_BINS`] whole widths fit in the range.
///
/// Whole widths in `[min, max)`: `round(q)` when `q` is within `1e-9 * round(q)` of it, else
/// `floor(q)` (the same count as the binning kernel).
fn check_bin_count(
    (width, width_origin): (f64, &'static str),
    (range, range_origin): (BinRange, &'static str),
) -> Result<(), ConfigError> {
    let q = (range.max - range.min) / width;
    let bins = if !q.is_finite() {
        f64::INFINITY
    } else if (q - q.round()).abs() <= BIN_COUNT_TOLERANCE * q.round() {
        q.round()
    } else {
        q.floor()
    };
    let invalid = |reason: String| ConfigError::Invalid {
        key: "processing.bin_width",
        value: width.to_string(),
        origin: width_origin,
        reason,
    };
    if bins < 1.0 {
        return Err(invalid(format!(
            "fewer than one whole bin fits in bin_range {range} (from {range_origin}): \
             (MAX - MIN) / width = {q}"
        )));
    }
    if bins > MAX_BINS as f64 {
        return Err(invalid(format!(
            "too many bins for bin_range {range} (from {range_origin}): \
             (MAX - MIN) / width = {q} > {MAX_BINS}; increase the width or narrow the range"
        )));
    }
    Ok(())
}

/// The `profile.*` keys: each layer's value, else the mode's default; counts must be >= 1,
/// `shard_size` > 0 and a zstd `compression` level within 1..=22.
fn resolve_profile(layers: &Layers<'_>, defaults: Profile) -> Result<Profile, ConfigError> {
    let count = |key: &'static str, default: usize, get: fn(&Layer) -> Option<usize>| {
        resolve_count(layers, key, 1, default, get)
    };
    Ok(Profile {
        num_workers: count("profile.num_workers", defaults.num_workers, |l| {
            l.num_workers
        })?,
        shard_size: match pick(layers, |l| l.shard_size) {
            Some((ByteSize(0), origin)) => {
                return Err(ConfigError::Invalid {
                    key: "profile.shard_size",
                    value: "0".to_owned(),
                    origin,
                    reason: "must be greater than zero".to_owned(),
                })
            }
            Some((v, _)) => v,
            None => defaults.shard_size,
        },
        batch_size: count("profile.batch_size", defaults.batch_size, |l| l.batch_size)?,
        row_group_size: count("profile.row_group_size", defaults.row_group_size, |l| {
            l.row_group_size
        })?,
        compression: match pick(layers, |l| l.compression) {
            Some((v, origin)) => {
                v.check().map_err(|reason| ConfigError::Invalid {
                    key: "profile.compression",
                    value: v.to_string(),
                    origin,
                    reason,
                })?;
                v
            }
            None => defaults.compression,
        },
        checkpoint_interval: count(
            "profile.checkpoint_interval",
            defaults.checkpoint_interval,
            |l| l.checkpoint_interval,
        )?,
        writers: count("profile.writers", defaults.writers, |l| l.writers)?,
    })
}

/// A count key: the first layer's value (at least `min`), else `default`.
fn resolve_count(
    layers: &Layers<'_>,
    key: &'static str,
    min: usize,
    default: usize,
    get: fn(&Layer) -> Option<usize>,
) -> Result<usize, ConfigError> {
    match pick(layers, get) {
        Some((v, origin)) if v < min => Err(ConfigError::Invalid {
            key,
            value: v.to_string(),
            origin,
            reason: format!("must be at least {min}"),
        }),
        Some((v, _)) => Ok(v),
        None => Ok(default),
    }
}

/// An optional limit that must not be 0 (`reason` says so when it is).
fn resolve_nonzero<T: Default + PartialEq>(
    key: &'static str,
    picked: Option<(T, &'static str)>,
    reason: &str,
) -> Result<Option<T>, ConfigError> {
    match picked {
        Some((v, origin)) if v == T::default() => Err(ConfigError::Invalid {
            key,
            value: "0".to_owned(),
            origin,
            reason: reason.to_owned(),
        }),
        other => Ok(other.map(|(v, _)| v)),
    }
}

/// A picked number that must be finite and greater than zero.
fn resolve_positive(
    key: &'static str,
    picked: Option<(f64, &'static str)>,
) -> Result<Option<(f64, &'static str)>, ConfigError> {
    match picked {
        Some((v, origin)) => match check_positive_f64(v) {
            Ok(v) => Ok(Some((v, origin))),
            Err(reason) => Err(ConfigError::Invalid {
                key,
                value: v.to_string(),
                origin,
                reason,
            }),
        },
        None => Ok(None),
    }
}

/// Without splits, `seed` and `split_key` would silently do nothing: refuse them.
fn refuse_split_keys_without_splits(layers: &Layers<'_>) -> Result<(), ConfigError> {
    let needs_splits = |key: &'static str, value: String, origin: &'static str| {
        Err(ConfigError::Invalid {
            key,
            value,
            origin,
            reason: "needs splits (--splits)".to_owned(),
        })
    };
    if let Some((v, origin)) = pick(layers, |l| l.seed) {
        return needs_splits("processing.seed", v.to_string(), origin);
    }
    if let Some((v, origin)) = pick(layers, |l| l.split_key) {
        return needs_splits("processing.split_key", v.to_string(), origin);
    }
    Ok(())
}

/// `logging.level`, lowercased and checked, else [`DEFAULT_LOG_LEVEL`].
fn resolve_log_level(layers: &Layers<'_>) -> Result<String, ConfigError> {
    match pick(layers, |l| l.log_level.clone()) {
        Some((v, origin)) => parse_log_level(&v).map_err(|e| ConfigError::Invalid {
            key: "logging.level",
            value: v.clone(),
            origin,
            reason: e.reason().to_owned(),
        }),
        None => Ok(DEFAULT_LOG_LEVEL.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testutil::{env, yaml};

    #[test]
    fn defaults_when_nothing_set() {
        let s = Settings::resolve(&Layer::default(), None, &Layer::default(), 8).unwrap();
        assert_eq!(s.mode, Mode::Local);
        assert_eq!(s.profile, Profile::for_mode(Mode::Local, 8));
        assert_eq!(s.profile.num_workers, 4);
        assert!(s.inputs.is_empty());
        assert_eq!(s.output_root, None);
        assert_eq!(s.normalize, Normalize::Max);
        assert_eq!(s.min_peaks, 1);
        assert_eq!(s.max_precursor_mz, None);
        assert_eq!(s.max_spectra, None);
        assert_eq!(s.log_level, "info");
        assert_eq!(s.log_file, None);
    }

    #[test]
    fn precedence_cli_file_env_default() {
        let cli = Layer {
            batch_size: Some(111),
            ..Layer::default()
        };
        let file =
            yaml("profile:\n  batch_size: 222\n  writers: 3\nprocessing:\n  normalize: none\n")
                .unwrap();
        let env = env(&[
            ("MSMS_BATCH_SIZE", "333"),
            ("MSMS_WRITERS", "4"),
            ("MSMS_NORMALIZE", "max"),
            ("MSMS_MIN_PEAKS", "5"),
        ])
        .unwrap();
        let s = Settings::resolve(&cli, Some(&file), &env, 2).unwrap();
        assert_eq!(s.profile.batch_size, 111, "cli wins over file and env");
        assert_eq!(s.profile.writers, 3, "file beats env");
        assert_eq!(s.normalize, Normalize::None, "file beats env");
        assert_eq!(s.min_peaks, 5, "env beats default");
        assert_eq!(s.profile.checkpoint_interval, 5_000, "default");

        // Without the file, env wins over the default.
        let s = Settings::resolve(&cli, None, &env, 2).unwrap();
        assert_eq!(s.profile.batch_size, 111);
        assert_eq!(s.profile.writers, 4);
        assert_eq!(s.normalize, Normalize::Max);
    }

    #[test]
    fn precedence_of_row_group_size_and_compression() {
        let cli = Layer {
            row_group_size: Some(111),
            compression: Some(Compression::Snappy),
            ..Layer::default()
        };
        let file = yaml("profile:\n  row_group_size: 222\n  compression: zstd:9\n").unwrap();
        let env = env(&[("MSMS_ROW_GROUP_SIZE", "333"), ("MSMS_COMPRESSION", "lz4")]).unwrap();
        let s = Settings::resolve(&cli, Some(&file), &env, 2).unwrap();
        assert_eq!(s.profile.row_group_size, 111, "cli wins over file and env");
        assert_eq!(s.profile.compression, Compression::Snappy, "cli wins");

        let s = Settings::resolve(&Layer::default(), Some(&file), &env, 2).unwrap();
        assert_eq!(s.profile.row_group_size, 222, "file beats env");
        assert_eq!(
            s.profile.compression,
            Compression::Zstd(9),
            "file beats env"
        );

        let s = Settings::resolve(&Layer::default(), None, &env, 2).unwrap();
        assert_eq!(s.profile.row_group_size, 333, "env beats default");
        assert_eq!(s.profile.compression, Compression::Lz4, "env beats default");

        // The defaults, the same in both modes, and independent of batch_size.
        for mode in [Mode::Local, Mode::Production] {
            let cli = Layer {
                mode: Some(mode),
                batch_size: Some(7),
                ..Layer::default()
            };
            let s = Settings::resolve(&cli, None, &Layer::default(), 48).unwrap();
            assert_eq!(s.profile.row_group_size, 32_768, "{mode:?}");
            assert_eq!(s.profile.compression, Compression::Zstd(1), "{mode:?}");
            assert_eq!(s.profile.batch_size, 7);
        }
        // `none` from the environment is a codec, not "unset".
        let s = Settings::resolve(
            &Layer::default(),
            None,
            &env_vars(&[("MSMS_COMPRESSION", "none")]),
            2,
        )
        .unwrap();
        assert_eq!(s.profile.compression, Compression::None);
        let s = Settings::resolve(
            &Layer::default(),
            Some(&yaml("profile:\n  compression: none\n").unwrap()),
            &Layer::default(),
            2,
        )
        .unwrap();
        assert_eq!(s.profile.compression, Compression::None);
    }

    fn env_vars(pairs: &[(&str, &str)]) -> Layer {
        env(pairs).unwrap()
    }

    #[test]
    fn mode_precedence_changes_defaults() {
        let file = yaml("mode: production\n").unwrap();
        let env_local = env(&[("MSMS_MODE", "local")]).unwrap();
        let s = Settings::resolve(&Layer::default(), Some(&file), &env_local, 48).unwrap();
        assert_eq!(s.mode, Mode::Production);
        assert_eq!(s.profile, Profile::for_mode(Mode::Production, 48));
        assert_eq!(s.profile.shard_size, ByteSize(2_000_000_000));
        assert_eq!(s.profile.batch_size, 10_000);

        let cli = Layer {
            mode: Some(Mode::Local),
            ..Layer::default()
        };
        let s = Settings::resolve(&cli, Some(&file), &env_local, 48).unwrap();
        assert_eq!(s.mode, Mode::Local);
        assert_eq!(s.profile.num_workers, 4);

        let env_cloud = env(&[("MSMS_MODE", "cloud")]).unwrap();
        let s = Settings::resolve(&Layer::default(), None, &env_cloud, 2).unwrap();
        assert_eq!(s.mode, Mode::Production);
        assert_eq!(s.profile.writers, 2);
    }

    #[test]
    fn resolve_validates_cli_values() {
        let cli = Layer {
            writers: Some(0),
            ..Layer::default()
        };
        let msg = Settings::resolve(&cli, None, &Layer::default(), 2)
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "profile.writers = 0 (from command line): must be at least 1"
        );

        let cli = Layer {
            row_group_size: Some(0),
            ..Layer::default()
        };
        let err = Settings::resolve(&cli, None, &Layer::default(), 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "profile.row_group_size (--row-group-size) = 0 (from command line): \
             must be at least 1"
        );
        // A zstd level out of range set on a layer directly (the parsers refuse it earlier).
        let zstd = |level: i32| Layer {
            compression: Some(Compression::Zstd(level)),
            ..Layer::default()
        };
        for (err, level, origin) in [
            (
                resolve_err(zstd(0), None, Layer::default()),
                0,
                "command line",
            ),
            (
                resolve_err(Layer::default(), Some(zstd(23)), Layer::default()),
                23,
                "config file",
            ),
            (
                resolve_err(Layer::default(), None, zstd(-1)),
                -1,
                "environment",
            ),
        ] {
            assert_eq!(
                err.to_string(),
                format!(
                    "profile.compression (--compression) = zstd:{level} (from {origin}): zstd \
                     level {level} is out of range: use 1 (fastest) to 22 (smallest)"
                )
            );
            assert!(matches!(
                err,
                ConfigError::Invalid {
                    key: "profile.compression",
                    ..
                }
            ));
        }

        let cli = Layer {
            max_precursor_mz: Some(f64::NAN),
            ..Layer::default()
        };
        let msg = Settings::resolve(&cli, None, &Layer::default(), 2)
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("processing.max_precursor_mz = NaN (from command line)"));

        let file = Layer {
            shard_size: Some(ByteSize(0)),
            ..Layer::default()
        };
        let msg = Settings::resolve(&Layer::default(), Some(&file), &Layer::default(), 2)
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "profile.shard_size = 0 (from config file): must be greater than zero"
        );

        let env_layer = Layer {
            log_level: Some("LOUD".into()),
            ..Layer::default()
        };
        let msg = Settings::resolve(&Layer::default(), None, &env_layer, 2)
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("logging.level = LOUD (from environment)"),
            "{msg}"
        );
    }

    #[test]
    fn settings_serialize_to_json() {
        let file = yaml("inputs: [a.hdf5]\noutput_root: out\n").unwrap();
        let s = Settings::resolve(&Layer::default(), Some(&file), &Layer::default(), 2).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "mode": "local",
                "profile": {
                    "num_workers": 2,
                    "shard_size": "1GB",
                    "batch_size": 1000,
                    "row_group_size": 32768,
                    "compression": "zstd:1",
                    "checkpoint_interval": 5000,
                    "writers": 1
                },
                "inputs": ["a.hdf5"],
                "output_root": "out",
                "normalize": "max",
                "min_peaks": 1,
                "max_precursor_mz": null,
                "max_spectra": null,
                "max_peaks": null,
                "binning": null,
                "quality_format": null,
                "splits": null,
                "seed": 0,
                "split_key": "auto",
                "dedup": "none",
                "columns": null,
                "exclude_columns": null,
                "log_level": "info",
                "log_file": null
            })
        );
    }

    #[test]
    fn output_settings_and_hash() {
        let base = Settings::resolve(&Layer::default(), None, &Layer::default(), 2).unwrap();
        assert_eq!(
            base.output_settings_json(),
            serde_json::json!({
                "normalize": "max",
                "min_peaks": 1,
                "max_precursor_mz": null,
                "max_spectra": null,
                "batch_size": 1000,
                "shard_size": "1GB",
                "row_group_size": 32768,
                "compression": "zstd:1",
                "max_peaks": null,
                "binning": null,
                "quality_format": null
            })
        );
        let hash = base.config_hash();
        assert!(hash.starts_with("sha256:"));
        assert_eq!(hash.len(), "sha256:".len() + 64);
        // The exact canonical bytes that are hashed.
        let canonical = br#"{"normalize":"max","min_peaks":1,"max_precursor_mz":null,"max_spectra":null,"batch_size":1000,"shard_size":"1GB","row_group_size":32768,"compression":"zstd:1"}"#;
        assert_eq!(
            hash,
            format!("sha256:{}", hex::encode(Sha256::digest(canonical)))
        );

        // Stable for equal settings, even when resolved differently (`zstd` is `zstd:1`).
        let again = Settings::resolve(
            &Layer::default(),
            Some(&yaml("profile:\n  shard_size: 1000MB\n  compression: ZSTD\n").unwrap()),
            &Layer::default(),
            2,
        )
        .unwrap();
        assert_eq!(again.config_hash(), hash);

        // Not affected by workers, writers, logging, inputs, output root.
        let mut other = base.clone();
        other.profile.num_workers = 32;
        other.profile.writers = 4;
        other.log_level = "trace".into();
        other.inputs = vec!["x.hdf5".into()];
        other.output_root = Some("elsewhere".into());
        assert_eq!(other.config_hash(), hash);

        // Changed by anything that changes output bytes.
        let mut changed = base.clone();
        changed.normalize = Normalize::None;
        assert_ne!(changed.config_hash(), hash);
        let mut changed = base.clone();
        changed.max_precursor_mz = Some(1000.0);
        assert_ne!(changed.config_hash(), hash);
        let mut changed = base.clone();
        changed.profile.shard_size = ByteSize(2_000_000_000);
        assert_ne!(changed.config_hash(), hash);
        let mut seen = vec![hash];
        let mut changed = base.clone();
        changed.profile.row_group_size = 1000;
        seen.push(changed.config_hash());
        for c in [
            Compression::Zstd(2),
            Compression::Zstd(22),
            Compression::Lz4,
            Compression::Snappy,
            Compression::None,
        ] {
            let mut changed = base.clone();
            changed.profile.compression = c;
            seen.push(changed.config_hash());
        }
        for (i, h) in seen.iter().enumerate() {
            assert!(!seen[..i].contains(h), "{h} repeats");
        }
    }

    #[test]
    fn precedence_of_new_keys() {
        let cli = Layer {
            max_peaks: Some(10),
            bin_width: Some(0.5),
            ..Layer::default()
        };
        let file = yaml(
            "processing:\n  max_peaks: 20\n  bin_width: 1.0\n  bin_range: 0:100\n  \
             quality_format: B\n",
        )
        .unwrap();
        let env = env(&[
            ("MSMS_MAX_PEAKS", "30"),
            ("MSMS_BIN_WIDTH", "2"),
            ("MSMS_BIN_RANGE", "0:50"),
            ("MSMS_BIN_SCALE", "0.5"),
            ("MSMS_QUALITY_FORMAT", "C"),
        ])
        .unwrap();

        let s = Settings::resolve(&cli, Some(&file), &env, 2).unwrap();
        assert_eq!(s.max_peaks, Some(10), "cli wins");
        assert_eq!(s.quality_format, Some(QualityFormat::B), "file beats env");
        assert_eq!(
            s.binning,
            Some(Binning {
                width: 0.5,
                min: 0.0,
                max: 100.0,
                aggregation: BinAggregation::Sum,
                scale: 0.5,
                output: BinOutput::Dense,
            }),
            "width from cli, range from file, scale from env, the rest default"
        );

        let s = Settings::resolve(&Layer::default(), Some(&file), &env, 2).unwrap();
        assert_eq!(s.max_peaks, Some(20), "file beats env");
        assert_eq!(s.binning.unwrap().width, 1.0);

        let s = Settings::resolve(&Layer::default(), None, &env, 2).unwrap();
        assert_eq!(s.max_peaks, Some(30), "env beats default");
        assert_eq!(s.quality_format, Some(QualityFormat::C));
        let b = s.binning.unwrap();
        assert_eq!((b.width, b.min, b.max, b.scale), (2.0, 0.0, 50.0, 0.5));

        let s = Settings::resolve(&Layer::default(), None, &Layer::default(), 2).unwrap();
        assert_eq!(s.max_peaks, None, "default keeps every peak");
        assert_eq!(s.binning, None, "binning is off by default");
        assert_eq!(s.quality_format, None);

        // ms2deepscore-style binning from the file alone.
        let file = yaml(
            "processing:\n  bin_width: 0.1\n  bin_range: 10:1000\n  bin_aggregation: max\n  \
             bin_scale: 0.5\n  bin_output: sparse\n",
        )
        .unwrap();
        let s = Settings::resolve(&Layer::default(), Some(&file), &Layer::default(), 2).unwrap();
        assert_eq!(
            s.binning,
            Some(Binning {
                width: 0.1,
                min: 10.0,
                max: 1000.0,
                aggregation: BinAggregation::Max,
                scale: 0.5,
                output: BinOutput::Sparse,
            })
        );
    }

    fn resolve_err(cli: Layer, file: Option<Layer>, env: Layer) -> ConfigError {
        Settings::resolve(&cli, file.as_ref(), &env, 2).unwrap_err()
    }

    #[test]
    fn resolve_refuses_bad_binning_naming_key_flag_and_layer() {
        let width = |w: f64| Layer {
            bin_width: Some(w),
            ..Layer::default()
        };
        // bin_width without bin_range, from each layer.
        for (err, origin) in [
            (
                resolve_err(width(0.1), None, Layer::default()),
                "command line",
            ),
            (
                resolve_err(Layer::default(), Some(width(0.1)), Layer::default()),
                "config file",
            ),
            (
                resolve_err(Layer::default(), None, width(0.1)),
                "environment",
            ),
        ] {
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!(
                    "processing.bin_range (--bin-range) = unset (from {origin}): \
                     required with bin_width (--bin-width)"
                )),
                "{msg}"
            );
            assert!(
                msg.contains(&format!("which the {origin} sets to 0.1")),
                "{msg}"
            );
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        key: "processing.bin_range",
                        ..
                    }
                ),
                "{err:?}"
            );
        }

        // Binning keys without bin_width, each named, from each layer.
        let range = BinRange {
            min: 10.0,
            max: 1000.0,
        };
        let cases: Vec<(Layer, &str, &str)> = vec![
            (
                Layer {
                    bin_range: Some(range),
                    ..Layer::default()
                },
                "processing.bin_range (--bin-range) = 10:1000",
                "processing.bin_range",
            ),
            (
                Layer {
                    bin_aggregation: Some(BinAggregation::Max),
                    ..Layer::default()
                },
                "processing.bin_aggregation (--bin-aggregation) = max",
                "processing.bin_aggregation",
            ),
            (
                Layer {
                    bin_scale: Some(0.5),
                    ..Layer::default()
                },
                "processing.bin_scale (--bin-scale) = 0.5",
                "processing.bin_scale",
            ),
            (
                Layer {
                    bin_output: Some(BinOutput::Sparse),
                    ..Layer::default()
                },
                "processing.bin_output (--bin-output) = sparse",
                "processing.bin_output",
            ),
        ];
        for (layer, prefix, key) in cases {
            for (err, origin) in [
                (
                    resolve_err(layer.clone(), None, Layer::default()),
                    "command line",
                ),
                (
                    resolve_err(Layer::default(), Some(layer.clone()), Layer::default()),
                    "config file",
                ),
                (
                    resolve_err(Layer::default(), None, layer.clone()),
                    "environment",
                ),
            ] {
                let msg = err.to_string();
                assert_eq!(
                    msg,
                    format!(
                        "{prefix} (from {origin}): only meaningful with bin_width \
                         (--bin-width); set bin_width to bin the peaks, or leave this key out"
                    )
                );
                assert!(matches!(err, ConfigError::Invalid { key: k, .. } if k == key));
            }
        }
        // Also from the real parsers.
        let msg = Settings::resolve(
            &Layer::default(),
            Some(&yaml("processing:\n  bin_output: dense\n").unwrap()),
            &Layer::default(),
            2,
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.starts_with("processing.bin_output (--bin-output) = dense (from config file)"),
            "{msg}"
        );
        let msg = Settings::resolve(
            &Layer::default(),
            None,
            &env(&[("MSMS_BIN_SCALE", "0.5")]).unwrap(),
            2,
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.starts_with("processing.bin_scale (--bin-scale) = 0.5 (from environment)"),
            "{msg}"
        );

        // Fewer than one whole bin: named on bin_width and its layer.
        let file = yaml("processing:\n  bin_width: 20\n  bin_range: 0:10\n").unwrap();
        let err = resolve_err(Layer::default(), Some(file), Layer::default());
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "processing.bin_width (--bin-width) = 20 (from config file): fewer than one \
                 whole bin fits in bin_range 0:10 (from config file)"
            ),
            "{msg}"
        );
        let cli = Layer {
            bin_width: Some(1000.5),
            ..Layer::default()
        };
        let env_range = env(&[("MSMS_BIN_RANGE", "0.5:1000")]).unwrap();
        let msg = resolve_err(cli, None, env_range).to_string();
        assert!(
            msg.starts_with(
                "processing.bin_width (--bin-width) = 1000.5 (from command line): fewer than \
                 one whole bin fits in bin_range 0.5:1000 (from environment)"
            ),
            "{msg}"
        );
        // Exactly one bin is fine, including when (max - min) / width rounds just below 1.
        for (w, lo, hi) in [(10.0, 0.0, 10.0), (0.2, 0.1, 0.3), (0.7, 0.1, 0.8)] {
            let cli = Layer {
                bin_width: Some(w),
                bin_range: Some(BinRange { min: lo, max: hi }),
                ..Layer::default()
            };
            let s = Settings::resolve(&cli, None, &Layer::default(), 2).unwrap();
            assert_eq!(s.binning.unwrap().width, w);
        }
        let cli = Layer {
            bin_width: Some(10.0),
            bin_range: Some(BinRange {
                min: 0.0,
                max: 9.99,
            }),
            ..Layer::default()
        };
        assert!(Settings::resolve(&cli, None, &Layer::default(), 2).is_err());

        // At most MAX_BINS bins.
        let binned = |w: f64, lo: f64, hi: f64| {
            let cli = Layer {
                bin_width: Some(w),
                bin_range: Some(BinRange { min: lo, max: hi }),
                ..Layer::default()
            };
            Settings::resolve(&cli, None, &Layer::default(), 2)
        };
        assert!(binned(1.0, 0.0, 1e7).is_ok());
        assert!(binned(0.1, 0.7, 1000.0).is_ok());
        for (w, lo, hi) in [
            (1.0, 0.0, 1e7 + 1.0),
            (1e-300, 0.0, 1.0),
            (1.0, -1e308, 1e308),
        ] {
            let msg = binned(w, lo, hi).unwrap_err().to_string();
            assert!(
                msg.starts_with(&format!(
                    "processing.bin_width (--bin-width) = {w} (from command line): too many bins"
                )),
                "{msg}"
            );
        }
    }

    #[test]
    fn resolve_validates_new_cli_values() {
        let cases: Vec<(Layer, &str)> = vec![
            (
                Layer {
                    max_peaks: Some(0),
                    ..Layer::default()
                },
                "processing.max_peaks (--max-peaks) = 0 (from command line): must be at least 1",
            ),
            (
                Layer {
                    bin_width: Some(0.0),
                    bin_range: Some(BinRange { min: 0.0, max: 1.0 }),
                    ..Layer::default()
                },
                "processing.bin_width (--bin-width) = 0 (from command line): must be a finite \
                 number greater than zero",
            ),
            (
                Layer {
                    bin_width: Some(f64::NAN),
                    ..Layer::default()
                },
                "processing.bin_width (--bin-width) = NaN (from command line): must be a finite",
            ),
            (
                Layer {
                    bin_width: Some(1.0),
                    bin_range: Some(BinRange {
                        min: 0.0,
                        max: 10.0,
                    }),
                    bin_scale: Some(-1.0),
                    ..Layer::default()
                },
                "processing.bin_scale (--bin-scale) = -1 (from command line): must be a finite",
            ),
            (
                Layer {
                    bin_width: Some(1.0),
                    bin_range: Some(BinRange {
                        min: 10.0,
                        max: 5.0,
                    }),
                    ..Layer::default()
                },
                "processing.bin_range (--bin-range) = 10:5 (from command line): MIN must be \
                 less than MAX",
            ),
            (
                Layer {
                    bin_width: Some(1.0),
                    bin_range: Some(BinRange {
                        min: f64::NAN,
                        max: 5.0,
                    }),
                    ..Layer::default()
                },
                "processing.bin_range (--bin-range) = NaN:5 (from command line): MIN and MAX \
                 must be finite",
            ),
        ];
        for (cli, want) in cases {
            let msg = Settings::resolve(&cli, None, &Layer::default(), 2)
                .unwrap_err()
                .to_string();
            assert!(msg.starts_with(want), "\n got: {msg}\nwant: {want}");
        }
        // Keys without a flag entry keep the old message form.
        let cli = Layer {
            writers: Some(0),
            ..Layer::default()
        };
        let msg = Settings::resolve(&cli, None, &Layer::default(), 2)
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "profile.writers = 0 (from command line): must be at least 1"
        );
    }

    #[test]
    fn recorded_settings_hash_as_the_settings_that_wrote_them() {
        let cases = [
            "",
            "processing:\n  max_peaks: 100\n  bin_width: 0.1\n  bin_range: 10:1000\n  \
             bin_aggregation: max\n  bin_scale: 0.5\n  quality_format: A\n",
            "processing:\n  splits: train=0.8,test=0.2\n  seed: 7\n  split_key: name\n  \
             dedup: exact\n  max_precursor_mz: 1000.5\n  max_spectra: 90\n  normalize: l2\n",
        ];
        for text in cases {
            let file = yaml(text).unwrap();
            let s =
                Settings::resolve(&Layer::default(), Some(&file), &Layer::default(), 2).unwrap();
            let back = RecordedSettings::from_json(&s.output_settings_json()).unwrap();
            assert_eq!(back.config_hash(), s.config_hash(), "{text}");
            assert_eq!(back.to_json(), s.output_settings_json(), "{text}");
            // Another layout hashes as build-shards with that layout.
            let layout = (ByteSize(5_000_000), 100, Compression::Lz4);
            let moved = back.with_layout(layout.0, layout.1, layout.2);
            assert_eq!(moved.layout(), layout);
            let mut t = s.clone();
            (
                t.profile.shard_size,
                t.profile.row_group_size,
                t.profile.compression,
            ) = layout;
            assert_eq!(moved.config_hash(), t.config_hash(), "{text}");
            assert_ne!(moved.config_hash(), s.config_hash());
        }
        let mut unknown = Settings::resolve(&Layer::default(), None, &Layer::default(), 2)
            .unwrap()
            .output_settings_json();
        unknown["future_key"] = serde_json::json!(1);
        let e = RecordedSettings::from_json(&unknown).unwrap_err();
        assert!(e.to_string().contains("unknown field `future_key`"), "{e}");
    }

    #[test]
    fn config_hash_of_defaults_is_pinned() {
        let base = Settings::resolve(&Layer::default(), None, &Layer::default(), 2).unwrap();
        // The hash of the default settings, pinned: it changes only when the canonical JSON
        // does. (row_group_size and compression, always present, changed it from
        // sha256:0e4f0352…; the unset max_peaks, binning and quality_format are left out of
        // the hashed bytes.)
        assert_eq!(
            base.config_hash(),
            "sha256:663585b3722f7ee0d7159e88ea2871c74535e2677d978a5fbfd551921e70bb1e"
        );
        let binned = Settings::resolve(
            &Layer::default(),
            Some(
                &yaml(
                    "processing:\n  max_peaks: 100\n  bin_width: 0.1\n  bin_range: 10:1000\n  \
                     bin_aggregation: max\n  bin_scale: 0.5\n  quality_format: A\n",
                )
                .unwrap(),
            ),
            &Layer::default(),
            2,
        )
        .unwrap();
        assert_eq!(
            binned.output_settings_json(),
            serde_json::json!({
                "normalize": "max",
                "min_peaks": 1,
                "max_precursor_mz": null,
                "max_spectra": null,
                "batch_size": 1000,
                "shard_size": "1GB",
                "row_group_size": 32768,
                "compression": "zstd:1",
                "max_peaks": 100,
                "binning": {
                    "width": 0.1,
                    "min": 10.0,
                    "max": 1000.0,
                    "aggregation": "max",
                    "scale": 0.5,
                    "output": "dense"
                },
                "quality_format": "A"
            })
        );
        let canonical = br#"{"normalize":"max","min_peaks":1,"max_precursor_mz":null,"max_spectra":null,"batch_size":1000,"shard_size":"1GB","row_group_size":32768,"compression":"zstd:1","max_peaks":100,"binning":{"width":0.1,"min":10.0,"max":1000.0,"aggregation":"max","scale":0.5,"output":"dense"},"quality_format":"A"}"#;
        assert_eq!(
            binned.config_hash(),
            format!("sha256:{}", hex::encode(Sha256::digest(canonical)))
        );

        let hash = base.config_hash();
        let mut seen = vec![hash.clone()];
        let mut add = |s: &Settings| {
            let h = s.config_hash();
            assert!(!seen.contains(&h), "{h} repeats");
            seen.push(h);
        };
        let mut s = base.clone();
        s.max_peaks = Some(100);
        add(&s);
        s.max_peaks = Some(101);
        add(&s);
        let mut s = base.clone();
        s.quality_format = Some(QualityFormat::A);
        add(&s);
        s.quality_format = Some(QualityFormat::B);
        add(&s);
        let b = binned.binning.unwrap();
        let mut s = base.clone();
        s.binning = Some(b);
        add(&s);
        for change in [
            Binning { width: 0.2, ..b },
            Binning { min: 0.0, ..b },
            Binning { max: 2000.0, ..b },
            Binning {
                aggregation: BinAggregation::Sum,
                ..b
            },
            Binning { scale: 1.0, ..b },
            Binning {
                output: BinOutput::Sparse,
                ..b
            },
        ] {
            s.binning = Some(change);
            add(&s);
        }
        for n in [Normalize::Sum, Normalize::L2, Normalize::Sqrt] {
            let mut s = base.clone();
            s.normalize = n;
            add(&s);
        }
    }
}
