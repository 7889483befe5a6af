//! The `MSMS_*` environment variables: [`ENV_VARS`] and [`Layer::from_env`].

use std::path::PathBuf;
use std::str::FromStr;

use super::layer::to_usize;
use super::yaml::{check_count, check_positive_f64};
use super::*;

/// Every environment variable [`Layer::from_env`] reads, with the key each one sets.
///
/// Other variables starting with `MSMS_` are ignored (other tools may set some), so a
/// misspelt name has no effect; this list is the reference for help texts.
pub(crate) const ENV_VARS: [(&str, &str); 28] = [
    ("MSMS_MODE", "mode"),
    ("MSMS_NUM_WORKERS", "profile.num_workers"),
    ("MSMS_SHARD_SIZE", "profile.shard_size"),
    ("MSMS_BATCH_SIZE", "profile.batch_size"),
    ("MSMS_ROW_GROUP_SIZE", "profile.row_group_size"),
    ("MSMS_COMPRESSION", "profile.compression"),
    ("MSMS_CHECKPOINT_INTERVAL", "profile.checkpoint_interval"),
    ("MSMS_WRITERS", "profile.writers"),
    ("MSMS_NORMALIZE", "processing.normalize"),
    ("MSMS_MIN_PEAKS", "processing.min_peaks"),
    ("MSMS_MAX_PRECURSOR_MZ", "processing.max_precursor_mz"),
    ("MSMS_MAX_SPECTRA", "processing.max_spectra"),
    ("MSMS_MAX_PEAKS", "processing.max_peaks"),
    ("MSMS_BIN_WIDTH", "processing.bin_width"),
    ("MSMS_BIN_RANGE", "processing.bin_range"),
    ("MSMS_BIN_AGGREGATION", "processing.bin_aggregation"),
    ("MSMS_BIN_SCALE", "processing.bin_scale"),
    ("MSMS_BIN_OUTPUT", "processing.bin_output"),
    ("MSMS_QUALITY_FORMAT", "processing.quality_format"),
    ("MSMS_SPLITS", "processing.splits"),
    ("MSMS_SEED", "processing.seed"),
    ("MSMS_SPLIT_KEY", "processing.split_key"),
    ("MSMS_DEDUP", "processing.dedup"),
    ("MSMS_COLUMNS", "processing.columns"),
    ("MSMS_EXCLUDE_COLUMNS", "processing.exclude_columns"),
    ("MSMS_LOG_LEVEL", "logging.level"),
    ("MSMS_LOG_FILE", "logging.file"),
    ("MSMS_OUTPUT_ROOT", "output_root"),
];

impl Layer {
    /// Builds a layer from environment variables, e.g. `Layer::from_env(std::env::vars())`.
    ///
    /// Reads the variables listed in `ENV_VARS` (the one table of variable names and the keys they set). Values are trimmed, and an empty value
    /// counts as unset. Other variables, including unknown `MSMS_*` ones, are ignored
    /// (other tools may set some). A bad value is [`ConfigError::Env`] naming the
    /// variable and the value.
    pub fn from_env<I: IntoIterator<Item = (String, String)>>(
        vars: I,
    ) -> Result<Layer, ConfigError> {
        let mut layer = Layer::default();
        for (var, value) in vars {
            let Some(&(_, key)) = ENV_VARS.iter().find(|(name, _)| *name == var) else {
                continue;
            };
            let v = value.trim();
            if v.is_empty() {
                continue;
            }
            if let Err(reason) = layer.set_from_env(key, v) {
                return Err(ConfigError::Env { var, value, reason });
            }
        }
        Ok(layer)
    }

    /// Sets `key` (the second column of [`ENV_VARS`]) from its variable's trimmed,
    /// non-empty value; the error is the reason the value is refused.
    fn set_from_env(&mut self, key: &str, v: &str) -> Result<(), String> {
        let count = |min: u64| parse_env_count(v, min);
        match key {
            "mode" => self.mode = Some(parse(v)?),
            "profile.num_workers" => self.num_workers = Some(to_usize(count(1)?)),
            "profile.shard_size" => self.shard_size = Some(parse(v)?),
            "profile.batch_size" => self.batch_size = Some(to_usize(count(1)?)),
            "profile.row_group_size" => self.row_group_size = Some(to_usize(count(1)?)),
            "profile.compression" => self.compression = Some(parse(v)?),
            "profile.checkpoint_interval" => self.checkpoint_interval = Some(to_usize(count(1)?)),
            "profile.writers" => self.writers = Some(to_usize(count(1)?)),
            "processing.normalize" => self.normalize = Some(parse(v)?),
            "processing.min_peaks" => self.min_peaks = Some(to_usize(count(0)?)),
            "processing.max_precursor_mz" => self.max_precursor_mz = Some(parse_positive(v)?),
            "processing.max_spectra" => self.max_spectra = Some(count(1)?),
            "processing.max_peaks" => self.max_peaks = Some(to_usize(count(1)?)),
            "processing.bin_width" => self.bin_width = Some(parse_positive(v)?),
            "processing.bin_range" => self.bin_range = Some(parse(v)?),
            "processing.bin_aggregation" => self.bin_aggregation = Some(parse(v)?),
            "processing.bin_scale" => self.bin_scale = Some(parse_positive(v)?),
            "processing.bin_output" => self.bin_output = Some(parse(v)?),
            "processing.quality_format" => self.quality_format = Some(parse(v)?),
            "processing.splits" => self.splits = Some(parse(v)?),
            "processing.seed" => self.seed = Some(count(0)?),
            "processing.split_key" => self.split_key = Some(parse(v)?),
            "processing.dedup" => self.dedup = Some(parse(v)?),
            "processing.columns" => self.columns = Some(parse(v)?),
            "processing.exclude_columns" => self.exclude_columns = Some(parse(v)?),
            "logging.level" => self.log_level = Some(parse_log_level(v).map_err(reason)?),
            "logging.file" => self.log_file = Some(PathBuf::from(v)),
            "output_root" => self.output_root = Some(PathBuf::from(v)),
            _ => {}
        }
        Ok(())
    }
}

/// A value through its `FromStr`; the error is the parse error's reason.
fn parse<T: FromStr>(v: &str) -> Result<T, String>
where
    T::Err: Into<ParseError>,
{
    v.parse().map_err(reason)
}

/// A finite number greater than zero.
fn parse_positive(v: &str) -> Result<f64, String> {
    let parsed: f64 = v
        .parse()
        .map_err(|_| "expected a number greater than zero".to_owned())?;
    check_positive_f64(parsed)
}

fn reason(e: impl Into<ParseError>) -> String {
    e.into().reason().to_owned()
}

fn parse_env_count(v: &str, min: u64) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) => check_count(n, min),
        Err(_) if v.parse::<i64>().is_ok() => Err(format!("must be at least {min}")),
        Err(_) => Err(format!("expected a whole number >= {min}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testutil::env;

    #[test]
    fn env_layer_parses_every_variable() {
        let l = env(&[
            ("MSMS_MODE", "production"),
            ("MSMS_NUM_WORKERS", "12"),
            ("MSMS_SHARD_SIZE", "512MiB"),
            ("MSMS_BATCH_SIZE", "2000"),
            ("MSMS_ROW_GROUP_SIZE", "4096"),
            ("MSMS_COMPRESSION", " ZSTD:3 "),
            ("MSMS_CHECKPOINT_INTERVAL", "7000"),
            ("MSMS_WRITERS", " 3 "),
            ("MSMS_NORMALIZE", "none"),
            ("MSMS_MIN_PEAKS", "0"),
            ("MSMS_MAX_PRECURSOR_MZ", "1500.5"),
            ("MSMS_MAX_SPECTRA", "42"),
            ("MSMS_LOG_LEVEL", "Trace"),
            ("MSMS_LOG_FILE", "/var/log/msms.log"),
            ("MSMS_OUTPUT_ROOT", "out"),
            ("MSMS_MAX_PEAKS", "100"),
            ("MSMS_BIN_WIDTH", "0.01"),
            ("MSMS_BIN_RANGE", " 0.5:2000.25 "),
            ("MSMS_BIN_AGGREGATION", "SUM"),
            ("MSMS_BIN_SCALE", "1"),
            ("MSMS_BIN_OUTPUT", "dense"),
            ("MSMS_QUALITY_FORMAT", "c"),
            ("MSMS_SPLITS", "train=0.98, val=0.01, test=0.01"),
            ("MSMS_SEED", "0"),
            ("MSMS_SPLIT_KEY", "LSH"),
            ("MSMS_DEDUP", "none"),
            ("MSMS_COLUMNS", "smiles, scan"),
            ("MSMS_EXCLUDE_COLUMNS", "DreaMS_embedding"),
            ("MSMS_SOMETHING_ELSE", "whatever"),
            ("PATH", "/usr/bin"),
            ("MSMS_BATCH", "not read"),
        ])
        .unwrap();
        assert_eq!(
            l,
            Layer {
                mode: Some(Mode::Production),
                inputs: None,
                output_root: Some("out".into()),
                num_workers: Some(12),
                shard_size: Some(ByteSize(536_870_912)),
                batch_size: Some(2000),
                row_group_size: Some(4096),
                compression: Some(Compression::Zstd(3)),
                checkpoint_interval: Some(7000),
                writers: Some(3),
                normalize: Some(Normalize::None),
                min_peaks: Some(0),
                max_precursor_mz: Some(1500.5),
                max_spectra: Some(42),
                max_peaks: Some(100),
                bin_width: Some(0.01),
                bin_range: Some(BinRange {
                    min: 0.5,
                    max: 2000.25
                }),
                bin_aggregation: Some(BinAggregation::Sum),
                bin_scale: Some(1.0),
                bin_output: Some(BinOutput::Dense),
                quality_format: Some(QualityFormat::C),
                splits: Some(Splits(vec![
                    ("train".into(), 0.98),
                    ("val".into(), 0.01),
                    ("test".into(), 0.01)
                ])),
                seed: Some(0),
                split_key: Some(SplitKey::Lsh),
                dedup: Some(Dedup::None),
                columns: Some(ColumnList(vec!["smiles".into(), "scan".into()])),
                exclude_columns: Some(ColumnList(vec!["DreaMS_embedding".into()])),
                log_level: Some("trace".into()),
                log_file: Some("/var/log/msms.log".into()),
                notices: Vec::new(),
            }
        );
        assert_eq!(env(&[("MSMS_WRITERS", "  ")]).unwrap(), Layer::default());
    }

    #[test]
    fn env_bad_values_name_the_variable() {
        let cases: &[(&str, &str, &str)] = &[
            ("MSMS_NUM_WORKERS", "0", "must be at least 1"),
            ("MSMS_NUM_WORKERS", "-4", "must be at least 1"),
            ("MSMS_BATCH_SIZE", "lots", "expected a whole number"),
            ("MSMS_WRITERS", "1.5", "expected a whole number"),
            ("MSMS_SHARD_SIZE", "0", "must be greater than zero"),
            ("MSMS_SHARD_SIZE", "1 XB", "unknown unit"),
            ("MSMS_MODE", "laptop", "expected local, production or cloud"),
            (
                "MSMS_NORMALIZE",
                "total",
                "expected none, max, sum, l2 or sqrt",
            ),
            ("MSMS_MAX_PEAKS", "0", "must be at least 1"),
            ("MSMS_MAX_PEAKS", "many", "expected a whole number"),
            ("MSMS_BIN_WIDTH", "0", "greater than zero"),
            ("MSMS_BIN_WIDTH", "-0.1", "greater than zero"),
            ("MSMS_BIN_WIDTH", "nan", "finite"),
            ("MSMS_BIN_RANGE", "10", "expected MIN:MAX"),
            ("MSMS_BIN_RANGE", "1000:10", "MIN must be less than MAX"),
            ("MSMS_BIN_AGGREGATION", "mean", "expected sum or max"),
            ("MSMS_BIN_SCALE", "inf", "finite"),
            ("MSMS_BIN_OUTPUT", "csr", "expected dense or sparse"),
            ("MSMS_QUALITY_FORMAT", "D", "expected A, B or C"),
            ("MSMS_MAX_PRECURSOR_MZ", "-1", "greater than zero"),
            ("MSMS_MAX_PRECURSOR_MZ", "inf", "finite"),
            ("MSMS_MAX_PRECURSOR_MZ", "big", "greater than zero"),
            ("MSMS_MAX_SPECTRA", "0", "must be at least 1"),
            ("MSMS_LOG_LEVEL", "loud", "expected error, warn"),
            ("MSMS_CHECKPOINT_INTERVAL", "0", "must be at least 1"),
            ("MSMS_ROW_GROUP_SIZE", "0", "must be at least 1"),
            ("MSMS_ROW_GROUP_SIZE", "-5", "must be at least 1"),
            ("MSMS_ROW_GROUP_SIZE", "64k", "expected a whole number"),
            ("MSMS_COMPRESSION", "zstd:0", "zstd level 0 is out of range"),
            (
                "MSMS_COMPRESSION",
                "zstd:23",
                "zstd level 23 is out of range",
            ),
            (
                "MSMS_COMPRESSION",
                "gzip",
                "expected zstd, zstd:LEVEL (LEVEL 1 to 22), lz4, snappy or none",
            ),
            ("MSMS_COMPRESSION", "lz4:3", "only zstd takes a level"),
        ];
        for (var, value, want) in cases {
            let err = env(&[(var, value)]).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("environment variable {var}={value:?}: ")),
                "{msg}"
            );
            assert!(msg.contains(want), "{msg}");
            assert!(matches!(err, ConfigError::Env { .. }));
        }
    }

    #[test]
    fn env_vars_lists_every_variable_read() {
        let keys: Vec<&str> = ENV_VARS.iter().map(|(v, _)| *v).collect();
        for var in [
            "MSMS_MAX_PEAKS",
            "MSMS_BIN_WIDTH",
            "MSMS_BIN_RANGE",
            "MSMS_BIN_AGGREGATION",
            "MSMS_BIN_SCALE",
            "MSMS_BIN_OUTPUT",
            "MSMS_QUALITY_FORMAT",
        ] {
            assert!(keys.contains(&var), "{var}");
            let key = format!("processing.{}", var["MSMS_".len()..].to_ascii_lowercase());
            assert!(ENV_VARS.contains(&(var, key.as_str())), "{var}");
        }
    }
}
