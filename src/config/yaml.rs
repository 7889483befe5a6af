//! The `--config` YAML file: its schema (private structs that map onto [`Layer`]) and
//! [`Layer::from_yaml_file`] / [`Layer::from_yaml_str`].

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::layer::to_usize;
use super::values::keyword;
use super::*;

// `expecting` on these structs: a value of the wrong type reads "expected a mapping of
// …", not the Rust type name.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of settings (mode, inputs, output_root, profile, processing, logging)"
)]
struct FileDoc {
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    inputs: Option<Vec<PathBuf>>,
    #[serde(default)]
    output_root: Option<PathBuf>,
    #[serde(default)]
    profile: Option<FileProfile>,
    #[serde(default)]
    processing: Option<FileProcessing>,
    #[serde(default)]
    logging: Option<FileLogging>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a mapping of profile settings")]
struct FileProfile {
    #[serde(default)]
    num_workers: Option<Count<1>>,
    #[serde(default)]
    shard_size: Option<ByteSize>,
    /// The seed system's name for `shard_size` (its migration guide says to set it).
    #[serde(default)]
    max_shard_size_bytes: Option<ByteSize>,
    #[serde(default)]
    batch_size: Option<Count<1>>,
    #[serde(default)]
    row_group_size: Option<Count<1>>,
    #[serde(default)]
    compression: Option<Compression>,
    #[serde(default)]
    checkpoint_interval: Option<Count<1>>,
    #[serde(default)]
    writers: Option<Count<1>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a mapping of processing settings")]
struct FileProcessing {
    #[serde(default, with = "keyword::option")]
    normalize: Option<Normalize>,
    #[serde(default)]
    min_peaks: Option<Count<0>>,
    #[serde(default)]
    max_precursor_mz: Option<PositiveF64>,
    #[serde(default)]
    max_spectra: Option<Count<1>>,
    #[serde(default)]
    max_peaks: Option<Count<1>>,
    #[serde(default)]
    bin_width: Option<PositiveF64>,
    #[serde(default)]
    bin_range: Option<BinRange>,
    #[serde(default, with = "keyword::option")]
    bin_aggregation: Option<BinAggregation>,
    #[serde(default)]
    bin_scale: Option<PositiveF64>,
    #[serde(default)]
    bin_output: Option<BinOutput>,
    #[serde(default, with = "keyword::option")]
    quality_format: Option<QualityFormat>,
    #[serde(default)]
    splits: Option<Splits>,
    #[serde(default)]
    seed: Option<Count<0>>,
    #[serde(default)]
    split_key: Option<SplitKey>,
    #[serde(default)]
    dedup: Option<Dedup>,
    #[serde(default)]
    columns: Option<ColumnList>,
    #[serde(default)]
    exclude_columns: Option<ColumnList>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a mapping of logging settings")]
struct FileLogging {
    #[serde(default)]
    level: Option<LogLevel>,
    #[serde(default)]
    file: Option<PathBuf>,
}

/// A whole number `>= MIN` and `<= usize::MAX`, checked while deserialising so that the
/// error carries the value's position.
struct Count<const MIN: u64>(u64);

/// `profile.shard_size`, or the seed system's `profile.max_shard_size_bytes` for it (with a
/// notice naming the key to use); both set is an error.
fn shard_size_key(
    shard_size: Option<ByteSize>,
    max_shard_size_bytes: Option<ByteSize>,
    origin: &Path,
    notices: &mut Vec<String>,
) -> Result<Option<ByteSize>, ConfigError> {
    match (shard_size, max_shard_size_bytes) {
        (Some(_), Some(_)) => Err(ConfigError::Yaml {
            path: origin.to_owned(),
            line: None,
            column: None,
            message: "profile: both shard_size and max_shard_size_bytes (an older name for it) are set; keep shard_size".into(),
        }),
        (None, Some(size)) => {
            notices.push(format!(
                "notice: {}: profile.max_shard_size_bytes is read as profile.shard_size, its name now",
                origin.display()
            ));
            Ok(Some(size))
        }
        (size, None) => Ok(size),
    }
}

/// A YAML 1.1 integer with `_` separators (`2_000_000_000`), which YAML 1.2 (and so this
/// parser) reads as a string: older configs, the seed system's among them, write sizes so.
/// `None` for anything else (plain integers arrive as numbers).
pub(super) fn yaml11_int(v: &str) -> Option<u64> {
    let mut chars = v.chars();
    let first = chars.next()?;
    if !('1'..='9').contains(&first) || !v.contains('_') {
        return None;
    }
    if !chars.all(|c| c.is_ascii_digit() || c == '_') {
        return None;
    }
    v.replace('_', "").parse().ok()
}

pub(super) fn check_count(v: u64, min: u64) -> Result<u64, String> {
    if v < min {
        Err(format!("must be at least {min}, got {v}"))
    } else if usize::try_from(v).is_err() {
        Err(format!("{v} is too large"))
    } else {
        Ok(v)
    }
}

impl<'de, const MIN: u64> Deserialize<'de> for Count<MIN> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<const MIN: u64>;
        impl<const MIN: u64> Visitor<'_> for V<MIN> {
            type Value = Count<MIN>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a whole number >= {MIN}")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count<MIN>, E> {
                check_count(v, MIN).map(Count).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count<MIN>, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("must be at least {MIN}, got {v}"))),
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Count<MIN>, E> {
                match yaml11_int(v) {
                    Some(n) => self.visit_u64(n),
                    None => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
                }
            }
        }
        // `deserialize_any`, not `deserialize_u64`: the latter rejects negative numbers as
        // a type error before the visitor can explain the bound.
        deserializer.deserialize_any(V::<MIN>)
    }
}

/// A finite number greater than zero.
struct PositiveF64(f64);

pub(super) fn check_positive_f64(v: f64) -> Result<f64, String> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!(
            "must be a finite number greater than zero, got {v}"
        ))
    }
}

impl<'de> Deserialize<'de> for PositiveF64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PositiveF64;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a finite number greater than zero")
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<PositiveF64, E> {
                check_positive_f64(v).map(PositiveF64).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PositiveF64, E> {
                self.visit_f64(v as f64)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PositiveF64, E> {
                self.visit_f64(v as f64)
            }
        }
        deserializer.deserialize_f64(V)
    }
}

/// A validated, lowercased log level.
struct LogLevel(String);

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LogLevel;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one of error, warn, info, debug, trace")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<LogLevel, E> {
                parse_log_level(v).map(LogLevel).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

impl Layer {
    /// Reads and parses a YAML config file (see [`Layer::from_yaml_str`]).
    ///
    /// An unreadable file is [`ConfigError::Io`] naming the path.
    pub fn from_yaml_file(path: &Path) -> Result<Layer, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Layer::from_yaml_str(&text, path)
    }

    /// Parses YAML config text; `origin` is the file name used in error messages.
    ///
    /// Every key is optional and an empty document is an empty layer. Unknown keys, wrong
    /// types and invalid values (zero or negative counts and sizes, a non-positive
    /// `max_precursor_mz`, an unknown mode, normalisation or log level) are
    /// [`ConfigError::Yaml`], displayed as `origin:line:column: key: message`.
    pub fn from_yaml_str(text: &str, origin: &Path) -> Result<Layer, ConfigError> {
        let doc: Option<FileDoc> = serde_norway::from_str(text).map_err(|e| {
            let location = e.location();
            let mut message = e.to_string();
            if let Some(loc) = &location {
                let suffix = format!(" at line {} column {}", loc.line(), loc.column());
                if let Some(stripped) = message.strip_suffix(&suffix) {
                    message = stripped.to_owned();
                }
            }
            ConfigError::Yaml {
                path: origin.to_owned(),
                line: location.as_ref().map(|l| l.line()),
                column: location.as_ref().map(|l| l.column()),
                message,
            }
        })?;
        let Some(doc) = doc else {
            return Ok(Layer::default());
        };
        let FileProfile {
            num_workers,
            shard_size,
            max_shard_size_bytes,
            batch_size,
            row_group_size,
            compression,
            checkpoint_interval,
            writers,
        } = doc.profile.unwrap_or_default();
        let FileProcessing {
            normalize,
            min_peaks,
            max_precursor_mz,
            max_spectra,
            max_peaks,
            bin_width,
            bin_range,
            bin_aggregation,
            bin_scale,
            bin_output,
            quality_format,
            splits,
            seed,
            split_key,
            dedup,
            columns,
            exclude_columns,
        } = doc.processing.unwrap_or_default();
        let FileLogging { level, file } = doc.logging.unwrap_or_default();
        let mut notices = Vec::new();
        let shard_size = shard_size_key(shard_size, max_shard_size_bytes, origin, &mut notices)?;
        let usize_of = |c: Option<Count<1>>| c.map(|c| to_usize(c.0));
        Ok(Layer {
            mode: doc.mode,
            inputs: doc.inputs,
            output_root: doc.output_root,
            num_workers: usize_of(num_workers),
            shard_size,
            batch_size: usize_of(batch_size),
            row_group_size: usize_of(row_group_size),
            compression,
            checkpoint_interval: usize_of(checkpoint_interval),
            writers: usize_of(writers),
            normalize,
            min_peaks: min_peaks.map(|c| to_usize(c.0)),
            max_precursor_mz: max_precursor_mz.map(|v| v.0),
            max_spectra: max_spectra.map(|c| c.0),
            max_peaks: usize_of(max_peaks),
            bin_width: bin_width.map(|v| v.0),
            bin_range,
            bin_aggregation,
            bin_scale: bin_scale.map(|v| v.0),
            bin_output,
            quality_format,
            splits,
            seed: seed.map(|c| c.0),
            split_key,
            dedup,
            columns,
            exclude_columns,
            log_level: level.map(|l| l.0),
            log_file: file,
            notices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testutil::{yaml, yaml_err};
    use std::path::Path;

    const LOCAL_YAML: &str = include_str!("../../configs/gems_local.yaml");
    const PRODUCTION_YAML: &str = include_str!("../../configs/gems_production_48core.yaml");

    #[test]
    fn seed_configs_read_max_shard_size_bytes_and_underscored_integers() {
        let l = yaml("profile:\n  max_shard_size_bytes: 2_000_000_000\n  batch_size: 10_000\n")
            .unwrap();
        assert_eq!(l.shard_size, Some(ByteSize(2_000_000_000)));
        assert_eq!(l.batch_size, Some(10_000));
        assert_eq!(
            l.notices,
            ["notice: configs/x.yaml: profile.max_shard_size_bytes is read as profile.shard_size, its name now"]
        );
        let l = yaml("profile:\n  shard_size: 1_500_000\n  row_group_size: 32_768\n").unwrap();
        assert_eq!(l.shard_size, Some(ByteSize(1_500_000)));
        assert_eq!(l.row_group_size, Some(32_768));
        assert!(l.notices.is_empty());
        let msg = yaml_err("profile:\n  shard_size: 1GB\n  max_shard_size_bytes: 2GB\n");
        assert!(
            msg.contains("both shard_size and max_shard_size_bytes"),
            "{msg}"
        );
        // Only YAML 1.1 integers: a leading separator, a sign or other characters are not.
        for bad in ["_1000", "1_000x", "0_1", "-1_000"] {
            let msg = yaml_err(&format!("profile:\n  batch_size: \"{bad}\"\n"));
            assert!(msg.contains("expected a whole number >= 1"), "{bad}: {msg}");
        }
        assert_eq!(yaml11_int("1_0_0_"), Some(100));
        assert_eq!(yaml11_int("1000"), None);
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let text = "mode: local\n\
                    # comment\n\
                    profile:\n  num_workers: 2\n\n  batch_size: 10\n  shard_sise: 1GB\n";
        let msg = yaml_err(text);
        assert!(msg.starts_with("configs/x.yaml:7:3: "), "{msg}");
        assert!(
            msg.contains("unknown field `shard_sise`, expected one of"),
            "{msg}"
        );
        assert!(!msg.contains(" at line "), "{msg}");
        match yaml(text).unwrap_err() {
            ConfigError::Yaml {
                path, line, column, ..
            } => {
                assert_eq!(path, Path::new("configs/x.yaml"));
                assert_eq!((line, column), (Some(7), Some(3)));
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = yaml_err("mode: local\nverbose: true\n");
        assert!(
            msg.starts_with("configs/x.yaml:2:1: unknown field `verbose`"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_type_names_file_line_and_key() {
        let msg = yaml_err("profile:\n  writers: 1\n  num_workers: many\n");
        assert!(
            msg.starts_with("configs/x.yaml:3:16: profile.num_workers: invalid type: string"),
            "{msg}"
        );
        let msg = yaml_err("inputs: a.hdf5\n");
        assert!(
            msg.starts_with("configs/x.yaml:1:9: inputs: invalid type"),
            "{msg}"
        );
        let msg = yaml_err("profile: 4\n");
        assert!(
            msg.starts_with("configs/x.yaml:1:10: profile: invalid type"),
            "{msg}"
        );
    }

    #[test]
    fn invalid_values_name_file_line_and_key() {
        let cases: &[(&str, &str)] = &[
            (
                "profile:\n  num_workers: 0\n",
                "configs/x.yaml:2:16: profile.num_workers: must be at least 1, got 0",
            ),
            (
                "profile:\n  writers: -2\n",
                "configs/x.yaml:2:12: profile.writers: must be at least 1, got -2",
            ),
            (
                "profile:\n  batch_size: 0\n",
                "configs/x.yaml:2:15: profile.batch_size: must be at least 1, got 0",
            ),
            (
                "profile:\n  row_group_size: 0\n",
                "configs/x.yaml:2:19: profile.row_group_size: must be at least 1, got 0",
            ),
            (
                "profile:\n  compression: zstd:23\n",
                "configs/x.yaml:2:16: profile.compression: invalid compression \"zstd:23\": zstd \
                 level 23 is out of range",
            ),
            (
                "profile:\n  compression: brotli\n",
                "configs/x.yaml:2:16: profile.compression: invalid compression \"brotli\": \
                 expected zstd, zstd:LEVEL (LEVEL 1 to 22), lz4, snappy or none",
            ),
            (
                "profile:\n  compression: 3\n",
                "configs/x.yaml:2:16: profile.compression: invalid compression \"3\": expected \
                 zstd, zstd:LEVEL",
            ),
            (
                "profile:\n  checkpoint_interval: 0\n",
                "configs/x.yaml:2:24: profile.checkpoint_interval: must be at least 1",
            ),
            (
                "processing:\n  min_peaks: -1\n",
                "configs/x.yaml:2:14: processing.min_peaks: must be at least 0, got -1",
            ),
            (
                "processing:\n  max_precursor_mz: 0\n",
                "configs/x.yaml:2:21: processing.max_precursor_mz: must be a finite number",
            ),
            (
                "processing:\n  max_precursor_mz: .inf\n",
                "configs/x.yaml:2:21: processing.max_precursor_mz: must be a finite number",
            ),
            (
                "processing:\n  max_spectra: 0\n",
                "configs/x.yaml:2:16: processing.max_spectra: must be at least 1",
            ),
            (
                "processing:\n  normalize: total\n",
                "configs/x.yaml:2:14: processing.normalize: invalid normalize \"total\"",
            ),
            (
                "processing:\n  max_peaks: 0\n",
                "configs/x.yaml:2:14: processing.max_peaks: must be at least 1, got 0",
            ),
            (
                "processing:\n  bin_width: 0\n",
                "configs/x.yaml:2:14: processing.bin_width: must be a finite number",
            ),
            (
                "processing:\n  bin_width: -0.5\n",
                "configs/x.yaml:2:14: processing.bin_width: must be a finite number",
            ),
            (
                "processing:\n  bin_scale: .nan\n",
                "configs/x.yaml:2:14: processing.bin_scale: must be a finite number",
            ),
            (
                "processing:\n  bin_range: \"1000:10\"\n",
                "configs/x.yaml:2:14: processing.bin_range: invalid bin range \"1000:10\": \
                 MIN must be less than MAX",
            ),
            (
                "processing:\n  bin_range: 10\n",
                "configs/x.yaml:2:14: processing.bin_range: invalid bin range \"10\"",
            ),
            (
                "processing:\n  bin_aggregation: mean\n",
                "configs/x.yaml:2:20: processing.bin_aggregation: invalid bin aggregation",
            ),
            (
                "processing:\n  bin_output: csr\n",
                "configs/x.yaml:2:15: processing.bin_output: invalid bin output \"csr\"",
            ),
            (
                "processing:\n  quality_format: D\n",
                "configs/x.yaml:2:19: processing.quality_format: invalid quality format \"D\"",
            ),
            (
                "logging:\n  level: loud\n",
                "configs/x.yaml:2:10: logging.level: invalid log level \"loud\"",
            ),
            (
                "mode: laptop\n",
                "configs/x.yaml:1:7: mode: invalid mode \"laptop\"",
            ),
        ];
        for (text, want) in cases {
            let msg = yaml_err(text);
            assert!(msg.starts_with(want), "{text:?}\n got: {msg}\nwant: {want}");
        }
        // Zero is a valid min_peaks.
        assert_eq!(
            yaml("processing:\n  min_peaks: 0\n").unwrap().min_peaks,
            Some(0)
        );
    }

    #[test]
    fn yaml_syntax_and_edge_cases() {
        assert_eq!(yaml("").unwrap(), Layer::default());
        assert_eq!(yaml("# nothing\n").unwrap(), Layer::default());
        assert_eq!(
            yaml("profile:\nprocessing:\n  max_precursor_mz: null\n").unwrap(),
            Layer::default()
        );
        let msg = yaml_err("mode: local\nprofile: [\n");
        assert!(msg.starts_with("configs/x.yaml:"), "{msg}");
        let msg = yaml_err("profile:\n  writers: 1\n  writers: 2\n");
        assert!(
            msg.starts_with("configs/x.yaml:2:3: profile: duplicate field"),
            "{msg}"
        );
    }

    #[test]
    fn full_yaml_maps_every_key() {
        let text = "mode: cloud\ninputs: [a.hdf5, b.hdf5]\noutput_root: shards/c1\n\
                    profile:\n  num_workers: 6\n  shard_size: 1GB\n  batch_size: 1000\n  \
                    row_group_size: 8192\n  compression: snappy\n  \
                    checkpoint_interval: 5000\n  writers: 1\n\
                    processing:\n  normalize: none\n  min_peaks: 3\n  \
                    max_precursor_mz: 1000.0\n  max_spectra: 100000\n  \
                    max_peaks: 150\n  bin_width: 0.1\n  bin_range: 10:1000\n  \
                    bin_aggregation: max\n  bin_scale: 0.5\n  bin_output: sparse\n  \
                    quality_format: B\n  splits: {train: 0.9, test: 0.1}\n  seed: 7\n  \
                    split_key: name\n  dedup: exact\n  columns: [smiles, scan]\n  \
                    exclude_columns: scan\n\
                    logging:\n  level: DEBUG\n  file: msms.log\n";
        let l = yaml(text).unwrap();
        assert_eq!(
            l,
            Layer {
                mode: Some(Mode::Production),
                inputs: Some(vec!["a.hdf5".into(), "b.hdf5".into()]),
                output_root: Some("shards/c1".into()),
                num_workers: Some(6),
                shard_size: Some(ByteSize(1_000_000_000)),
                batch_size: Some(1000),
                row_group_size: Some(8192),
                compression: Some(Compression::Snappy),
                checkpoint_interval: Some(5000),
                writers: Some(1),
                normalize: Some(Normalize::None),
                min_peaks: Some(3),
                max_precursor_mz: Some(1000.0),
                max_spectra: Some(100_000),
                max_peaks: Some(150),
                bin_width: Some(0.1),
                bin_range: Some(BinRange {
                    min: 10.0,
                    max: 1000.0
                }),
                bin_aggregation: Some(BinAggregation::Max),
                bin_scale: Some(0.5),
                bin_output: Some(BinOutput::Sparse),
                quality_format: Some(QualityFormat::B),
                splits: Some(Splits(vec![("train".into(), 0.9), ("test".into(), 0.1)])),
                seed: Some(7),
                split_key: Some(SplitKey::Name),
                dedup: Some(Dedup::Exact),
                columns: Some(ColumnList(vec!["smiles".into(), "scan".into()])),
                exclude_columns: Some(ColumnList(vec!["scan".into()])),
                log_level: Some("debug".into()),
                log_file: Some("msms.log".into()),
                notices: Vec::new(),
            }
        );
    }

    #[test]
    fn unreadable_file_names_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        let err = Layer::from_yaml_file(&missing).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
        assert_eq!(
            err.to_string(),
            format!("cannot read config file {}", missing.display())
        );
        assert!(std::error::Error::source(&err).is_some());

        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "profile:\n  writerz: 2\n").unwrap();
        let msg = Layer::from_yaml_file(&bad).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!(
                "{}:2:3: profile: unknown field `writerz`",
                bad.display()
            )),
            "{msg}"
        );

        let good = dir.path().join("good.yaml");
        std::fs::write(&good, "profile:\n  writers: 2\n").unwrap();
        assert_eq!(Layer::from_yaml_file(&good).unwrap().writers, Some(2));
    }

    /// The shipped configs only document max_peaks, the bin_* keys and quality_format.
    fn assert_no_peak_selection_binning_or_quality(file: &Layer) {
        assert_eq!(file.max_peaks, None);
        assert_eq!(file.bin_width, None);
        assert_eq!(file.bin_range, None);
        assert_eq!(file.bin_aggregation, None);
        assert_eq!(file.bin_scale, None);
        assert_eq!(file.bin_output, None);
        assert_eq!(file.quality_format, None);
        let s = Settings::resolve(&Layer::default(), Some(file), &Layer::default(), 2).unwrap();
        assert_eq!(
            (s.max_peaks, s.binning, s.quality_format),
            (None, None, None)
        );
    }

    /// Uncommenting the documented examples of a shipped config gives a valid config.
    fn uncommented_examples(text: &str) -> String {
        text.lines()
            .map(|line| {
                let trimmed = line.trim_start();
                let indent = &line[..line.len() - trimmed.len()];
                match trimmed.strip_prefix("# ") {
                    Some(rest)
                        if [
                            "max_peaks:",
                            "bin_width:",
                            "bin_range:",
                            "bin_aggregation:",
                            "bin_scale:",
                            "bin_output:",
                            "quality_format:",
                        ]
                        .iter()
                        .any(|k| rest.starts_with(k)) =>
                    {
                        format!("{indent}{rest}\n")
                    }
                    _ => format!("{line}\n"),
                }
            })
            .collect()
    }

    #[test]
    fn shipped_config_examples_are_valid() {
        for (name, text) in [
            ("configs/gems_local.yaml", LOCAL_YAML),
            ("configs/gems_production_48core.yaml", PRODUCTION_YAML),
        ] {
            let on = uncommented_examples(text);
            let file = Layer::from_yaml_str(&on, Path::new(name)).unwrap();
            assert!(file.max_peaks.is_some(), "{name}");
            assert!(file.quality_format.is_some(), "{name}");
            let s =
                Settings::resolve(&Layer::default(), Some(&file), &Layer::default(), 2).unwrap();
            assert!(s.binning.is_some(), "{name}");
        }
    }

    #[test]
    fn shipped_local_config() {
        let file = Layer::from_yaml_str(LOCAL_YAML, Path::new("configs/gems_local.yaml")).unwrap();
        assert_eq!(file.mode, Some(Mode::Local));
        assert_eq!(
            file.num_workers, None,
            "local leaves workers to min(4, cores)"
        );
        assert_eq!(file.shard_size, Some(ByteSize(1_000_000_000)));
        assert_eq!(file.batch_size, Some(1_000));
        assert_eq!(file.row_group_size, Some(32_768));
        assert_eq!(file.compression, Some(Compression::Zstd(1)));
        assert_eq!(file.checkpoint_interval, Some(5_000));
        assert_eq!(file.writers, Some(1));
        assert_eq!(file.normalize, Some(Normalize::Max));
        assert_eq!(file.min_peaks, Some(1));
        assert_eq!(file.max_precursor_mz, None);
        assert_eq!(file.max_spectra, None);
        assert_eq!(file.log_level.as_deref(), Some("info"));
        assert_eq!(file.inputs, None);
        assert_eq!(file.output_root, None);
        assert_eq!(file.log_file, None);
        assert_no_peak_selection_binning_or_quality(&file);
        for cores in [2, 48] {
            let s = Settings::resolve(&Layer::default(), Some(&file), &Layer::default(), cores)
                .unwrap();
            assert_eq!(s.profile, Profile::for_mode(Mode::Local, cores));
        }
    }

    #[test]
    fn shipped_production_config() {
        let file = Layer::from_yaml_str(
            PRODUCTION_YAML,
            Path::new("configs/gems_production_48core.yaml"),
        )
        .unwrap();
        assert_eq!(file.mode, Some(Mode::Production));
        assert_eq!(file.row_group_size, Some(32_768));
        assert_eq!(file.compression, Some(Compression::Zstd(1)));
        assert_eq!(file.normalize, Some(Normalize::Max));
        assert_eq!(file.min_peaks, Some(1));
        assert_eq!(file.log_level.as_deref(), Some("info"));
        assert_no_peak_selection_binning_or_quality(&file);
        // Resolved on a 2-core machine: the file's explicit values still apply.
        let s = Settings::resolve(&Layer::default(), Some(&file), &Layer::default(), 2).unwrap();
        assert_eq!(s.mode, Mode::Production);
        assert_eq!(
            s.profile,
            Profile {
                num_workers: 48,
                shard_size: ByteSize(2_000_000_000),
                batch_size: 10_000,
                row_group_size: 32_768,
                compression: Compression::Zstd(1),
                checkpoint_interval: 10_000,
                writers: 2,
            }
        );
        assert_eq!(s.profile, Profile::for_mode(Mode::Production, 48));
    }
}
