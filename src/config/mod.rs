//! Run configuration: modes, profiles, the YAML file, `MSMS_*` environment variables and
//! their precedence.
//!
//! Settings come from four places. For every key the first one that sets it wins:
//!
//! 1. command-line flags (the CLI builds a [`Layer`] itself),
//! 2. the `--config` YAML file ([`Layer::from_yaml_file`]),
//! 3. the environment, `MSMS_*` ([`Layer::from_env`]),
//! 4. the default of the resolved [`Mode`] ([`Profile::for_mode`]) and the built-in defaults.
//!
//! The mode itself is resolved the same way (flag, then the file's `mode:`, then
//! `MSMS_MODE`, then `local`), and only then are the mode's profile defaults filled in,
//! so `mode: production` in a file changes the defaults of every key the file leaves out.
//!
//! [`Settings::resolve`] merges the layers and validates the result;
//! [`Settings::config_hash`] fingerprints the settings that affect output bytes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Log levels accepted by `logging.level` and `MSMS_LOG_LEVEL`, most to least severe.
pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// Log level used when no layer sets one.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// Minimum number of peaks used when no layer sets `min_peaks`.
pub const DEFAULT_MIN_PEAKS: usize = 1;

/// `bin_scale` used when binning is on and no layer sets it.
pub const DEFAULT_BIN_SCALE: f64 = 1.0;

/// Largest number of bins [`Settings::resolve`] accepts (the binning kernel's limit).
pub const MAX_BINS: usize = 10_000_000;

/// Relative tolerance of the bin-count rounding guard.
const BIN_COUNT_TOLERANCE: f64 = 1e-9;

/// Command-line flags of the keys whose [`ConfigError::Invalid`] messages name the flag too.
const KEY_FLAGS: [(&str, &str); 11] = [
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

/// Every environment variable [`Layer::from_env`] reads, with the key each one sets.
///
/// Other variables starting with `MSMS_` are ignored (other tools may set some), so a
/// misspelt name has no effect; this list is the reference for help texts.
pub const ENV_VARS: [(&str, &str); 24] = [
    ("MSMS_MODE", "mode"),
    ("MSMS_NUM_WORKERS", "profile.num_workers"),
    ("MSMS_SHARD_SIZE", "profile.shard_size"),
    ("MSMS_BATCH_SIZE", "profile.batch_size"),
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
    ("MSMS_LOG_LEVEL", "logging.level"),
    ("MSMS_LOG_FILE", "logging.file"),
    ("MSMS_OUTPUT_ROOT", "output_root"),
];

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// A value that could not be parsed from text (a mode, normalisation, size or log level).
///
/// Used as the `FromStr` error of [`Mode`], [`Normalize`] and [`ByteSize`], so it also
/// works as a clap value parser error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: {reason}")]
pub struct ParseError {
    what: &'static str,
    input: String,
    reason: String,
}

impl ParseError {
    fn new(what: &'static str, input: &str, reason: impl Into<String>) -> Self {
        ParseError {
            what,
            input: input.to_owned(),
            reason: reason.into(),
        }
    }

    /// What was being parsed, e.g. `"size"` or `"mode"`.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The text that was rejected.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Why it was rejected, without the input, e.g. `"must be greater than zero"`.
    pub fn reason(&self) -> &str {
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
        /// The file (or the origin given to [`Layer::from_yaml_str`]).
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
    /// A resolved setting is invalid (typically set directly on a [`Layer`] by the CLI), or
    /// a combination of settings is (e.g. `bin_width` without `bin_range`).
    ///
    /// Displays as `key = value (from origin): reason`; for the peak-selection, binning and
    /// quality keys the key is followed by its flag, e.g. `processing.bin_range (--bin-range)`.
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

// ---------------------------------------------------------------------------------------
// Mode and Normalize
// ---------------------------------------------------------------------------------------

/// Which profile of defaults to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// A laptop or workstation: few workers, 1 GB shards. The default.
    #[default]
    Local,
    /// A many-core server; `cloud` is accepted as an alias.
    Production,
}

/// How peak intensities are normalised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Normalize {
    /// Keep the stored intensities.
    None,
    /// Divide by the spectrum's largest intensity, the base peak (DreaMS / matchms). The
    /// default.
    #[default]
    Max,
    /// Divide by the sum of the intensities, so the total ion current is 1.
    Sum,
    /// Divide by the Euclidean (L2) norm of the intensities, so the spectrum has unit norm.
    L2,
    /// Take the square root of each intensity, then divide by the largest result.
    Sqrt,
}

/// How the intensities of the peaks that fall into one bin are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BinAggregation {
    /// Add them up (DreaMS-style). The default.
    #[default]
    Sum,
    /// Keep the largest (ms2deepscore-style).
    Max,
}

/// How a binned spectrum is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BinOutput {
    /// One value per bin, zeros included. The default.
    #[default]
    Dense,
    /// Only the non-empty bins, as (bin index, value) pairs.
    Sparse,
}

/// A GeMS quality format (DreaMS `dformats`): spectra that do not meet it are rejected.
///
/// Serialises and displays as `"A"`, `"B"` or `"C"`; parses those or their lowercase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QualityFormat {
    /// GeMS format A.
    A,
    /// GeMS format B.
    B,
    /// GeMS format C.
    C,
}

/// `as_str` (the first name of each variant), `Display`, `FromStr` (any listed name, ignoring
/// ASCII case and surrounding whitespace), and serde as that string, for a keyword enum.
macro_rules! keyword_enum {
    ($ty:ident, $what:literal, $expected:literal, { $($variant:ident => $name:literal $(| $alias:literal)*),+ $(,)? }) => {
        impl $ty {
            /// The canonical name, as written in configs and manifests.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = ParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let t = s.trim();
                $(
                    if t.eq_ignore_ascii_case($name) $(|| t.eq_ignore_ascii_case($alias))* {
                        return Ok($ty::$variant);
                    }
                )+
                Err(ParseError::new($what, s, concat!("expected ", $expected)))
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(FromStrVisitor::<$ty>::new($expected))
            }
        }
    };
}

keyword_enum!(Mode, "mode", "local, production or cloud", {
    Local => "local",
    Production => "production" | "cloud",
});
keyword_enum!(Normalize, "normalize", "none, max, sum, l2 or sqrt", {
    None => "none",
    Max => "max",
    Sum => "sum",
    L2 => "l2",
    Sqrt => "sqrt",
});
keyword_enum!(BinAggregation, "bin aggregation", "sum or max", {
    Sum => "sum",
    Max => "max",
});
keyword_enum!(BinOutput, "bin output", "dense or sparse", { Dense => "dense", Sparse => "sparse" });
keyword_enum!(QualityFormat, "quality format", "A, B or C", { A => "A", B => "B", C => "C" });
keyword_enum!(SplitKey, "split key", "auto, name, lsh or spectrum", {
    Auto => "auto",
    Name => "name",
    Lsh => "lsh",
    Spectrum => "spectrum",
});
keyword_enum!(Dedup, "dedup", "none or exact", { None => "none", Exact => "exact" });

/// The m/z range that is binned, written `MIN:MAX` (e.g. `10:1000`, `0.5:2000.25`).
///
/// Both ends are finite and `min < max`. Displays as `MIN:MAX` with each end in the
/// shortest form that parses back to the same `f64` (`10:1000`), so display and parse
/// round-trip; serialises as that string and deserialises from a string.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BinRange {
    /// Lower end (inclusive).
    pub min: f64,
    /// Upper end.
    pub max: f64,
}

impl BinRange {
    /// Why `min`/`max` do not form a range, if they do not.
    fn check(min: f64, max: f64) -> Result<(), &'static str> {
        if !(min.is_finite() && max.is_finite()) {
            Err("MIN and MAX must be finite numbers")
        } else if min >= max {
            Err("MIN must be less than MAX")
        } else {
            Ok(())
        }
    }
}

impl FromStr for BinRange {
    type Err = ParseError;

    /// Parses `MIN:MAX`; whitespace around either number is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ParseError::new("bin range", s, reason);
        let Some((lo, hi)) = s.split_once(':') else {
            return Err(err("expected MIN:MAX, e.g. 10:1000"));
        };
        let number = |t: &str| t.trim().parse::<f64>().ok();
        let (Some(min), Some(max)) = (number(lo), number(hi)) else {
            return Err(err("expected two numbers MIN:MAX, e.g. 10:1000"));
        };
        BinRange::check(min, max).map_err(err)?;
        Ok(BinRange { min, max })
    }
}

impl fmt::Display for BinRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.min, self.max)
    }
}

impl Serialize for BinRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BinRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(FromStrVisitor::<BinRange>::new(
            "a range MIN:MAX such as \"10:1000\"",
        ))
    }
}

/// Named splits with the fraction of spectra each receives, in order, e.g.
/// `train=0.98,val=0.01,test=0.01`.
///
/// Names are 1 to 64 characters of `A-Z a-z 0-9 _ -`, unique; fractions are finite, > 0,
/// and sum to 1 (within 1e-6). Displays (and serialises) as that comma list; parses from it
/// and, in YAML, also from a mapping `{train: 0.98, val: 0.01, test: 0.01}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Splits(pub Vec<(String, f64)>);

impl Splits {
    fn check(parts: Vec<(String, f64)>) -> Result<Splits, String> {
        if parts.is_empty() {
            return Err("expected NAME=FRACTION,… such as train=0.98,val=0.01,test=0.01".into());
        }
        if parts.len() > 64 {
            return Err(format!("{} splits; at most 64", parts.len()));
        }
        let mut sum = 0.0;
        for (i, (name, frac)) in parts.iter().enumerate() {
            let ok_name = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok_name {
                return Err(format!(
                    "split name {name:?}: use 1 to 64 of A-Z a-z 0-9 _ -"
                ));
            }
            if parts[..i].iter().any(|(n, _)| n == name) {
                return Err(format!("split {name} is listed twice"));
            }
            if !(frac.is_finite() && *frac > 0.0) {
                return Err(format!(
                    "split {name}: fraction {frac} must be greater than 0"
                ));
            }
            sum += frac;
        }
        if (sum - 1.0).abs() > 1e-6 {
            return Err(format!("the fractions sum to {sum}, not 1"));
        }
        Ok(Splits(parts))
    }

    /// The split names, in order.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|(n, _)| n.clone()).collect()
    }
}

impl FromStr for Splits {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ParseError::new("splits", s, &reason);
        let mut parts = Vec::new();
        for item in s.split(',') {
            let Some((name, frac)) = item.split_once('=') else {
                return Err(err(format!(
                    "{:?}: expected NAME=FRACTION, e.g. train=0.98,val=0.01,test=0.01",
                    item.trim()
                )));
            };
            let frac: f64 = frac
                .trim()
                .parse()
                .map_err(|_| err(format!("{:?}: not a number", frac.trim())))?;
            parts.push((name.trim().to_string(), frac));
        }
        Splits::check(parts).map_err(err)
    }
}

impl fmt::Display for Splits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, frac)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{name}={frac}")?;
        }
        Ok(())
    }
}

impl Serialize for Splits {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Splits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Splits;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "splits as \"train=0.98,val=0.01,test=0.01\" or a mapping of name to fraction",
                )
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Splits, E> {
                v.parse().map_err(|e: ParseError| E::custom(e))
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Splits, A::Error> {
                let mut parts = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, f64>()? {
                    parts.push((k, v));
                }
                Splits::check(parts).map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// What decides a spectrum's split (hashed with xxh3 and the seed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SplitKey {
    /// `lsh` when the inputs have it, else `spectrum`. The default.
    #[default]
    Auto,
    /// The `name` (`file_name`) column: all spectra of one source file stay together.
    Name,
    /// The `lsh` column: near-duplicate spectra (one LSH bucket) stay together.
    Lsh,
    /// Each spectrum on its own (its `spectrum_id`).
    Spectrum,
}

/// Which duplicates are dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Dedup {
    /// Keep every spectrum. The default.
    #[default]
    None,
    /// Drop a spectrum whose written peaks and precursor m/z equal an earlier one's.
    Exact,
}

/// Resolved binning of the peaks onto a fixed m/z grid.
///
/// Bins are `width` wide from `min` up to `max` (a peak is binned when
/// `min <= m/z < max`); each peak contributes `intensity ^ scale`, the contributions to one
/// bin are combined by `aggregation`, and the result is stored as `output`. ms2deepscore
/// bins with `max` and scale 0.5, DreaMS-style binning uses `sum` and scale 1.
///
/// [`Settings::resolve`] guarantees `1 <= bins <= `[`MAX_BINS`], counting bins as whole
/// widths in `[min, max)` with a `1e-9` relative rounding guard.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Binning {
    /// Bin width in m/z, finite and > 0.
    pub width: f64,
    /// Lower end of the binned range.
    pub min: f64,
    /// Upper end of the binned range; at least one whole bin fits between `min` and `max`.
    pub max: f64,
    /// How the peaks of one bin are combined; default `sum`.
    pub aggregation: BinAggregation,
    /// Intensity exponent `P` (binned value = `intensity ^ P`), finite and > 0; default 1.
    pub scale: f64,
    /// Dense or sparse storage; default `dense`.
    pub output: BinOutput,
}

/// Parses a log level (case-insensitive) into its lowercase name from [`LOG_LEVELS`].
pub fn parse_log_level(s: &str) -> Result<String, ParseError> {
    let lower = s.trim().to_ascii_lowercase();
    if LOG_LEVELS.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(ParseError::new(
            "log level",
            s,
            "expected error, warn, info, debug or trace",
        ))
    }
}

/// Deserialises a string through `FromStr`, reporting the parse error's reason.
struct FromStrVisitor<T> {
    expecting: &'static str,
    _t: std::marker::PhantomData<T>,
}

impl<T> FromStrVisitor<T> {
    fn new(expecting: &'static str) -> Self {
        FromStrVisitor {
            expecting,
            _t: std::marker::PhantomData,
        }
    }
}

impl<T: FromStr<Err = ParseError>> Visitor<'_> for FromStrVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(|e: ParseError| E::custom(e))
    }
}

// ---------------------------------------------------------------------------------------
// ByteSize
// ---------------------------------------------------------------------------------------

/// A size in bytes, e.g. the maximum shard size.
///
/// Parses plain byte counts (`1048576`), decimal units (`kB`/`KB`, `MB`, `GB`, `TB`:
/// powers of 1000) and binary units (`KiB`, `MiB`, `GiB`, `TiB`: powers of 1024), with an
/// optional fraction (`1.5GB`), optional space before the unit, any ASCII case, and the
/// trailing `B` optional (`1G`, `512Mi`, `1234B`). The result must be a whole number of
/// bytes, greater than zero and at most `u64::MAX`.
///
/// Displays with the largest unit that divides it exactly (`1GB`, `512MiB`, `1234B`), so
/// that parsing the display gives the same value back. Deserialises from an integer or a
/// string; serialises as the display string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

/// Units by descending size: (display name, multiplier).
const UNITS: [(&str, u64); 8] = [
    ("TiB", 1 << 40),
    ("TB", 1_000_000_000_000),
    ("GiB", 1 << 30),
    ("GB", 1_000_000_000),
    ("MiB", 1 << 20),
    ("MB", 1_000_000),
    ("KiB", 1 << 10),
    ("kB", 1_000),
];

impl ByteSize {
    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

fn unit_multiplier(unit: &str) -> Option<u64> {
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        _ => return None,
    };
    Some(mult)
}

impl FromStr for ByteSize {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ParseError::new("size", s, reason);
        let text = s.trim();
        if text.is_empty() {
            return Err(err("empty; expected e.g. 1GB, 512MiB or 1048576"));
        }
        if text.starts_with('-') {
            return Err(err("must be greater than zero"));
        }
        let num_end = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(num_end);
        let unit = unit.trim_start();
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => (i, f),
            None => (number, ""),
        };
        if int_part.is_empty()
            || frac_part.contains('.')
            || (number.contains('.') && frac_part.is_empty())
        {
            return Err(err(
                "expected a number followed by an optional unit, e.g. 1.5GB",
            ));
        }
        let Some(mult) = unit_multiplier(unit) else {
            return Err(err(
                "unknown unit; expected B, kB, MB, GB, TB, KiB, MiB, GiB or TiB",
            ));
        };
        let too_large = || err("too large; the maximum is 18446744073709551615 bytes");
        // Exact arithmetic: int * mult + frac * mult / 10^len(frac), all in u128.
        let frac_digits = frac_part.trim_end_matches('0');
        if frac_digits.len() > 20 {
            return Err(err("too many decimal places"));
        }
        let int: u128 = int_part.parse().map_err(|_| too_large())?;
        let mut total = int.checked_mul(u128::from(mult)).ok_or_else(too_large)?;
        if !frac_digits.is_empty() {
            let frac: u128 = frac_digits.parse().map_err(|_| too_large())?;
            let scale = 10u128.pow(frac_digits.len() as u32);
            let scaled = frac * u128::from(mult);
            if scaled % scale != 0 {
                return Err(err("not a whole number of bytes"));
            }
            total = total.checked_add(scaled / scale).ok_or_else(too_large)?;
        }
        if total == 0 {
            return Err(err("must be greater than zero"));
        }
        u64::try_from(total).map(ByteSize).map_err(|_| too_large())
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        if bytes != 0 {
            if let Some((name, mult)) = UNITS.iter().find(|(_, m)| bytes % m == 0) {
                return write!(f, "{}{name}", bytes / mult);
            }
        }
        write!(f, "{bytes}B")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 1GB, 512MiB or 1048576")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                if v == 0 {
                    Err(E::custom("size must be greater than zero"))
                } else {
                    Ok(ByteSize(v))
                }
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom("size must be greater than zero")),
                }
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ByteSize, E> {
                // `1e9` is a float in YAML; accept it when it is a whole number of bytes.
                if v.fract() == 0.0 && (1.0..18_446_744_073_709_551_616.0).contains(&v) {
                    Ok(ByteSize(v as u64))
                } else {
                    Err(E::custom(format!(
                        "size {v} is not a whole number of bytes greater than zero; \
                         use a unit for fractions, e.g. 1.5GB"
                    )))
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(|e: ParseError| E::custom(e))
            }
        }
        deserializer.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------
// Profile
// ---------------------------------------------------------------------------------------

/// Throughput settings that a mode sets by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// Decode/transform worker threads.
    pub num_workers: usize,
    /// Maximum size of one Parquet shard.
    pub shard_size: ByteSize,
    /// Spectra per read unit and row group (units rounded to whole chunks of the spectrum
    /// dataset; row groups of at most this many).
    pub batch_size: usize,
    /// Spectra between two progress updates of the checkpoint (it is also written whenever a
    /// shard is finalised, which is what `--resume` continues from).
    pub checkpoint_interval: usize,
    /// Shard writer threads; the output does not depend on the number.
    pub writers: usize,
}

impl Profile {
    /// The defaults of `mode` on a machine with `cores` cores (treated as at least 1).
    ///
    /// | key | local | production |
    /// | --- | --- | --- |
    /// | `num_workers` | min(4, cores) | cores |
    /// | `shard_size` | 1GB | 2GB |
    /// | `batch_size` | 1000 | 10000 |
    /// | `checkpoint_interval` | 5000 | 10000 |
    /// | `writers` | 1 | 2 |
    pub fn for_mode(mode: Mode, cores: usize) -> Profile {
        let cores = cores.max(1);
        match mode {
            Mode::Local => Profile {
                num_workers: cores.min(4),
                shard_size: ByteSize(1_000_000_000),
                batch_size: 1_000,
                checkpoint_interval: 5_000,
                writers: 1,
            },
            Mode::Production => Profile {
                num_workers: cores,
                shard_size: ByteSize(2_000_000_000),
                batch_size: 10_000,
                checkpoint_interval: 10_000,
                writers: 2,
            },
        }
    }
}

// ---------------------------------------------------------------------------------------
// YAML file schema (private; maps onto Layer)
// ---------------------------------------------------------------------------------------

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
    #[serde(default)]
    batch_size: Option<Count<1>>,
    #[serde(default)]
    checkpoint_interval: Option<Count<1>>,
    #[serde(default)]
    writers: Option<Count<1>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a mapping of processing settings")]
struct FileProcessing {
    #[serde(default)]
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
    #[serde(default)]
    bin_aggregation: Option<BinAggregation>,
    #[serde(default)]
    bin_scale: Option<PositiveF64>,
    #[serde(default)]
    bin_output: Option<BinOutput>,
    #[serde(default)]
    quality_format: Option<QualityFormat>,
    #[serde(default)]
    splits: Option<Splits>,
    #[serde(default)]
    seed: Option<Count<0>>,
    #[serde(default)]
    split_key: Option<SplitKey>,
    #[serde(default)]
    dedup: Option<Dedup>,
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

fn check_count(v: u64, min: u64) -> Result<u64, String> {
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
        }
        // `deserialize_any`, not `deserialize_u64`: the latter rejects negative numbers as
        // a type error before the visitor can explain the bound.
        deserializer.deserialize_any(V::<MIN>)
    }
}

/// A finite number greater than zero.
struct PositiveF64(f64);

fn check_positive_f64(v: f64) -> Result<f64, String> {
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

// ---------------------------------------------------------------------------------------
// Layer
// ---------------------------------------------------------------------------------------

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
    /// `output_root`: directory receiving `manifest.json` and the split directories.
    pub output_root: Option<PathBuf>,
    /// `profile.num_workers`.
    pub num_workers: Option<usize>,
    /// `profile.shard_size`.
    pub shard_size: Option<ByteSize>,
    /// `profile.batch_size`.
    pub batch_size: Option<usize>,
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
    /// `logging.level`, lowercase, one of [`LOG_LEVELS`].
    pub log_level: Option<String>,
    /// `logging.file`.
    pub log_file: Option<PathBuf>,
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
            batch_size,
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
        } = doc.processing.unwrap_or_default();
        let FileLogging { level, file } = doc.logging.unwrap_or_default();
        let usize_of = |c: Option<Count<1>>| c.map(|c| to_usize(c.0));
        Ok(Layer {
            mode: doc.mode,
            inputs: doc.inputs,
            output_root: doc.output_root,
            num_workers: usize_of(num_workers),
            shard_size,
            batch_size: usize_of(batch_size),
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
            log_level: level.map(|l| l.0),
            log_file: file,
        })
    }

    /// Builds a layer from environment variables, e.g. `Layer::from_env(std::env::vars())`.
    ///
    /// Reads the variables listed in [`ENV_VARS`]. Values are trimmed, and an empty value
    /// counts as unset. Other variables, including unknown `MSMS_*` ones, are ignored
    /// (other tools may set some). A bad value is [`ConfigError::Env`] naming the
    /// variable and the value.
    pub fn from_env<I: IntoIterator<Item = (String, String)>>(
        vars: I,
    ) -> Result<Layer, ConfigError> {
        let mut layer = Layer::default();
        for (var, value) in vars {
            if !var.starts_with("MSMS_") {
                continue;
            }
            let v = value.trim();
            if v.is_empty() {
                continue;
            }
            let bad = |reason: String| ConfigError::Env {
                var: var.clone(),
                value: value.clone(),
                reason,
            };
            let count = |min: u64| parse_env_count(v, min).map_err(bad);
            let positive = || -> Result<f64, ConfigError> {
                let parsed: f64 = v
                    .parse()
                    .map_err(|_| bad("expected a number greater than zero".to_owned()))?;
                check_positive_f64(parsed).map_err(bad)
            };
            match var.as_str() {
                "MSMS_MODE" => layer.mode = Some(v.parse().map_err(|e| bad(reason(e)))?),
                "MSMS_NUM_WORKERS" => layer.num_workers = Some(to_usize(count(1)?)),
                "MSMS_SHARD_SIZE" => {
                    layer.shard_size = Some(v.parse().map_err(|e| bad(reason(e)))?)
                }
                "MSMS_BATCH_SIZE" => layer.batch_size = Some(to_usize(count(1)?)),
                "MSMS_CHECKPOINT_INTERVAL" => layer.checkpoint_interval = Some(to_usize(count(1)?)),
                "MSMS_WRITERS" => layer.writers = Some(to_usize(count(1)?)),
                "MSMS_NORMALIZE" => layer.normalize = Some(v.parse().map_err(|e| bad(reason(e)))?),
                "MSMS_MIN_PEAKS" => layer.min_peaks = Some(to_usize(count(0)?)),
                "MSMS_MAX_PRECURSOR_MZ" => layer.max_precursor_mz = Some(positive()?),
                "MSMS_MAX_SPECTRA" => layer.max_spectra = Some(count(1)?),
                "MSMS_MAX_PEAKS" => layer.max_peaks = Some(to_usize(count(1)?)),
                "MSMS_BIN_WIDTH" => layer.bin_width = Some(positive()?),
                "MSMS_BIN_RANGE" => layer.bin_range = Some(v.parse().map_err(|e| bad(reason(e)))?),
                "MSMS_BIN_AGGREGATION" => {
                    layer.bin_aggregation = Some(v.parse().map_err(|e| bad(reason(e)))?)
                }
                "MSMS_BIN_SCALE" => layer.bin_scale = Some(positive()?),
                "MSMS_BIN_OUTPUT" => {
                    layer.bin_output = Some(v.parse().map_err(|e| bad(reason(e)))?)
                }
                "MSMS_QUALITY_FORMAT" => {
                    layer.quality_format = Some(v.parse().map_err(|e| bad(reason(e)))?)
                }
                "MSMS_SPLITS" => layer.splits = Some(v.parse().map_err(|e| bad(reason(e)))?),
                "MSMS_SEED" => layer.seed = Some(count(0)?),
                "MSMS_SPLIT_KEY" => layer.split_key = Some(v.parse().map_err(|e| bad(reason(e)))?),
                "MSMS_DEDUP" => layer.dedup = Some(v.parse().map_err(|e| bad(reason(e)))?),
                "MSMS_LOG_LEVEL" => {
                    layer.log_level = Some(parse_log_level(v).map_err(|e| bad(reason(e)))?)
                }
                "MSMS_LOG_FILE" => layer.log_file = Some(PathBuf::from(v)),
                "MSMS_OUTPUT_ROOT" => layer.output_root = Some(PathBuf::from(v)),
                _ => {}
            }
        }
        Ok(layer)
    }
}

fn reason(e: ParseError) -> String {
    e.reason
}

fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn parse_env_count(v: &str, min: u64) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) => check_count(n, min),
        Err(_) if v.parse::<i64>().is_ok() => Err(format!("must be at least {min}")),
        Err(_) => Err(format!("expected a whole number >= {min}")),
    }
}

// ---------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------

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
    pub quality_format: Option<QualityFormat>,
    /// Splits and their fractions; `None` (default) writes every spectrum to `train`.
    pub splits: Option<Splits>,
    /// Seed of the split assignment (only with `splits`); default 0.
    pub seed: u64,
    /// What decides a spectrum's split (only with `splits`); default `auto`.
    pub split_key: SplitKey,
    /// Which duplicate spectra are dropped; default none.
    pub dedup: Dedup,
    /// Log level, one of [`LOG_LEVELS`]; default `info`.
    pub log_level: String,
    /// Log file, if any; otherwise logs go to standard error.
    pub log_file: Option<PathBuf>,
}

/// The settings that change output bytes, in a fixed field order (hashed by
/// [`Settings::config_hash`]; changing this struct changes every config hash).
///
/// The fields added after `shard_size` are left out while unset, so that settings which do
/// not use them keep the hash they had before those fields existed.
#[derive(Serialize)]
struct OutputSettings {
    normalize: Normalize,
    min_peaks: usize,
    max_precursor_mz: Option<f64>,
    max_spectra: Option<u64>,
    batch_size: usize,
    shard_size: ByteSize,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_peaks: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    binning: Option<Binning>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quality_format: Option<QualityFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    splits: Option<Splits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    split_key: Option<SplitKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dedup: Option<Dedup>,
}

const ORIGINS: [&str; 3] = ["command line", "config file", "environment"];

/// The first layer that sets a key, with that layer's name.
fn pick<T: Clone>(
    layers: &[Option<&Layer>; 3],
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
    /// [`Profile::for_mode`]`(mode, cores)` supplies the defaults. Resolved values are
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
        let defaults = Profile::for_mode(mode, cores);

        let count = |key: &'static str,
                     min: usize,
                     default: usize,
                     get: fn(&Layer) -> Option<usize>|
         -> Result<usize, ConfigError> {
            match pick(&layers, get) {
                Some((v, origin)) if v < min => Err(ConfigError::Invalid {
                    key,
                    value: v.to_string(),
                    origin,
                    reason: format!("must be at least {min}"),
                }),
                Some((v, _)) => Ok(v),
                None => Ok(default),
            }
        };

        let profile = Profile {
            num_workers: count("profile.num_workers", 1, defaults.num_workers, |l| {
                l.num_workers
            })?,
            shard_size: match pick(&layers, |l| l.shard_size) {
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
            batch_size: count("profile.batch_size", 1, defaults.batch_size, |l| {
                l.batch_size
            })?,
            checkpoint_interval: count(
                "profile.checkpoint_interval",
                1,
                defaults.checkpoint_interval,
                |l| l.checkpoint_interval,
            )?,
            writers: count("profile.writers", 1, defaults.writers, |l| l.writers)?,
        };

        let max_precursor_mz = match pick(&layers, |l| l.max_precursor_mz) {
            Some((v, origin)) => {
                Some(
                    check_positive_f64(v).map_err(|reason| ConfigError::Invalid {
                        key: "processing.max_precursor_mz",
                        value: v.to_string(),
                        origin,
                        reason,
                    })?,
                )
            }
            None => None,
        };
        let max_spectra = match pick(&layers, |l| l.max_spectra) {
            Some((0, origin)) => {
                return Err(ConfigError::Invalid {
                    key: "processing.max_spectra",
                    value: "0".to_owned(),
                    origin,
                    reason: "must be at least 1 (leave it unset for no limit)".to_owned(),
                })
            }
            other => other.map(|(v, _)| v),
        };
        let max_peaks = match pick(&layers, |l| l.max_peaks) {
            Some((0, origin)) => {
                return Err(ConfigError::Invalid {
                    key: "processing.max_peaks",
                    value: "0".to_owned(),
                    origin,
                    reason: "must be at least 1 (leave it unset to keep every peak)".to_owned(),
                })
            }
            other => other.map(|(v, _)| v),
        };
        let binning = resolve_binning(&layers)?;
        let splits = pick(&layers, |l| l.splits.clone());
        if splits.is_none() {
            // Without splits these keys would silently do nothing.
            if let Some((v, origin)) = pick(&layers, |l| l.seed) {
                return Err(ConfigError::Invalid {
                    key: "processing.seed",
                    value: v.to_string(),
                    origin,
                    reason: "needs splits (--splits)".to_owned(),
                });
            }
            if let Some((v, origin)) = pick(&layers, |l| l.split_key) {
                return Err(ConfigError::Invalid {
                    key: "processing.split_key",
                    value: v.to_string(),
                    origin,
                    reason: "needs splits (--splits)".to_owned(),
                });
            }
        }
        let log_level = match pick(&layers, |l| l.log_level.clone()) {
            Some((v, origin)) => parse_log_level(&v).map_err(|e| ConfigError::Invalid {
                key: "logging.level",
                value: v.clone(),
                origin,
                reason: e.reason,
            })?,
            None => DEFAULT_LOG_LEVEL.to_owned(),
        };

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
            max_peaks: self.max_peaks,
            binning: self.binning,
            quality_format: self.quality_format,
            splits: self.splits.clone(),
            seed: self.splits.as_ref().map(|_| self.seed),
            split_key: self.splits.as_ref().map(|_| self.split_key),
            dedup: (self.dedup != Dedup::None).then_some(self.dedup),
        }
    }

    /// JSON of the settings that affect output bytes: `normalize`, `min_peaks`,
    /// `max_precursor_mz`, `max_spectra`, `batch_size`, `shard_size`, `max_peaks`,
    /// `binning` and `quality_format`.
    ///
    /// Not included: `num_workers`, `writers`, logging, input paths, output root and the
    /// mode name. `shard_size` is its display string (`"1GB"`); unset limits and unset
    /// `max_peaks`, `binning` and `quality_format` are `null`. `binning` is an object
    /// `{"width", "min", "max", "aggregation", "scale", "output"}`.
    pub fn output_settings_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self.output_settings())
            .expect("output settings are plain strings and numbers");
        if let Some(map) = v.as_object_mut() {
            for key in ["max_peaks", "binning", "quality_format"] {
                map.entry(key).or_insert(serde_json::Value::Null);
            }
        }
        v
    }

    /// `"sha256:<hex>"` of the canonical JSON of the settings of
    /// [`Settings::output_settings_json`]: `serde_json::to_vec` of a struct with a fixed
    /// field order, so no whitespace.
    ///
    /// Field order: normalize, min_peaks, max_precursor_mz, max_spectra, batch_size,
    /// shard_size, then max_peaks, binning and quality_format, each only when set (so
    /// settings that leave all three unset hash as they did before these keys existed).
    /// Equal settings give equal hashes on every platform.
    pub fn config_hash(&self) -> String {
        let bytes = serde_json::to_vec(&self.output_settings())
            .expect("output settings are plain strings and numbers");
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
    }
}

/// Resolves the `bin_*` keys (each with the usual precedence) into [`Binning`].
///
/// Binning is on only when `bin_width` resolves to a value; it then needs `bin_range`,
/// and the other `bin_*` keys are refused without it.
fn resolve_binning(layers: &[Option<&Layer>; 3]) -> Result<Option<Binning>, ConfigError> {
    let positive = |key: &'static str,
                    picked: Option<(f64, &'static str)>|
     -> Result<Option<(f64, &'static str)>, ConfigError> {
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
    };
    let width = positive("processing.bin_width", pick(layers, |l| l.bin_width))?;
    let range = pick(layers, |l| l.bin_range);
    let aggregation = pick(layers, |l| l.bin_aggregation);
    let scale = positive("processing.bin_scale", pick(layers, |l| l.bin_scale))?;
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
    // Whole widths in [min, max): round(q) when q is within 1e-9 * round(q) of it, else
    // floor(q) (the same count as the binning kernel).
    let q = (range.max - range.min) / width;
    let bins = if !q.is_finite() {
        f64::INFINITY
    } else if (q - q.round()).abs() <= BIN_COUNT_TOLERANCE * q.round() {
        q.round()
    } else {
        q.floor()
    };
    if bins < 1.0 {
        return Err(ConfigError::Invalid {
            key: "processing.bin_width",
            value: width.to_string(),
            origin: width_origin,
            reason: format!(
                "fewer than one whole bin fits in bin_range {range} (from {range_origin}): \
                 (MAX - MIN) / width = {q}"
            ),
        });
    }
    if bins > MAX_BINS as f64 {
        return Err(ConfigError::Invalid {
            key: "processing.bin_width",
            value: width.to_string(),
            origin: width_origin,
            reason: format!(
                "too many bins for bin_range {range} (from {range_origin}): \
                 (MAX - MIN) / width = {q} > {MAX_BINS}; increase the width or narrow the range"
            ),
        });
    }
    Ok(Some(Binning {
        width,
        min: range.min,
        max: range.max,
        aggregation: aggregation.map_or(BinAggregation::default(), |(v, _)| v),
        scale: scale.map_or(DEFAULT_BIN_SCALE, |(v, _)| v),
        output: output.map_or(BinOutput::default(), |(v, _)| v),
    }))
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL_YAML: &str = include_str!("../../configs/gems_local.yaml");
    const PRODUCTION_YAML: &str = include_str!("../../configs/gems_production_48core.yaml");

    fn env(pairs: &[(&str, &str)]) -> Result<Layer, ConfigError> {
        Layer::from_env(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    fn yaml(text: &str) -> Result<Layer, ConfigError> {
        Layer::from_yaml_str(text, Path::new("configs/x.yaml"))
    }

    fn yaml_err(text: &str) -> String {
        yaml(text).unwrap_err().to_string()
    }

    #[test]
    fn byte_size_parses() {
        let table: &[(&str, u64)] = &[
            ("1048576", 1_048_576),
            ("1", 1),
            ("1234B", 1234),
            ("1234 b", 1234),
            ("500MB", 500_000_000),
            ("1GB", 1_000_000_000),
            ("1gb", 1_000_000_000),
            ("1G", 1_000_000_000),
            ("2 GB", 2_000_000_000),
            ("10kB", 10_000),
            ("10KB", 10_000),
            ("10k", 10_000),
            ("1TB", 1_000_000_000_000),
            ("512MiB", 536_870_912),
            ("512mib", 536_870_912),
            ("512Mi", 536_870_912),
            ("2GiB", 2_147_483_648),
            ("64KiB", 65_536),
            ("1TiB", 1_099_511_627_776),
            ("1.5GB", 1_500_000_000),
            ("1.5 KiB", 1536),
            ("0.5MB", 500_000),
            ("1.000GB", 1_000_000_000),
            ("  7MB  ", 7_000_000),
            ("18446744073709551615", u64::MAX),
        ];
        for (text, want) in table {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(*want)), "{text}");
        }
    }

    #[test]
    fn byte_size_rejects() {
        let table: &[(&str, &str)] = &[
            ("0", "must be greater than zero"),
            ("0GB", "must be greater than zero"),
            ("0.0MiB", "must be greater than zero"),
            ("-1", "must be greater than zero"),
            ("-5GB", "must be greater than zero"),
            ("", "empty"),
            ("GB", "expected a number"),
            ("abc", "expected a number"),
            (".5GB", "expected a number"),
            ("1.GB", "expected a number"),
            ("1.2.3GB", "expected a number"),
            ("1XB", "unknown unit"),
            ("1 G B", "unknown unit"),
            ("12 34", "unknown unit"),
            ("1.3B", "not a whole number of bytes"),
            ("0.1KiB", "not a whole number of bytes"),
            ("18446744073709551616", "too large"),
            ("20000000TB", "too large"),
            ("99999999999999999999999999999999999999999", "too large"),
        ];
        for (text, want) in table {
            let err = text.parse::<ByteSize>().unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(want), "{text:?}: {msg}");
            assert!(msg.starts_with(&format!("invalid size {text:?}")), "{msg}");
        }
    }

    #[test]
    fn byte_size_display_round_trips() {
        let table: &[(u64, &str)] = &[
            (1_000_000_000, "1GB"),
            (2_000_000_000, "2GB"),
            (536_870_912, "512MiB"),
            (1234, "1234B"),
            (1, "1B"),
            (1000, "1kB"),
            (1024, "1KiB"),
            (1_500_000_000, "1500MB"),
            (1_024_000, "1000KiB"),
            (1_099_511_627_776, "1TiB"),
            (3_000_000_000_000, "3TB"),
            (u64::MAX, "18446744073709551615B"),
        ];
        for (bytes, want) in table {
            assert_eq!(ByteSize(*bytes).to_string(), *want);
            assert_eq!(want.parse::<ByteSize>(), Ok(ByteSize(*bytes)));
        }
        for bytes in [7, 999, 1001, 4096, 10_000_000, 123_456_789, 3 << 30] {
            let shown = ByteSize(bytes).to_string();
            assert_eq!(shown.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{shown}");
        }
    }

    #[test]
    fn byte_size_serde() {
        assert_eq!(
            serde_json::to_string(&ByteSize(2_000_000_000)).unwrap(),
            "\"2GB\""
        );
        let l = yaml("profile:\n  shard_size: 1048576\n").unwrap();
        assert_eq!(l.shard_size, Some(ByteSize(1_048_576)));
        let l = yaml("profile:\n  shard_size: 512MiB\n").unwrap();
        assert_eq!(l.shard_size, Some(ByteSize(536_870_912)));
        let l = yaml("profile:\n  shard_size: \"1.5 GB\"\n").unwrap();
        assert_eq!(l.shard_size, Some(ByteSize(1_500_000_000)));
        let msg = yaml_err("profile:\n  shard_size: 0\n");
        assert!(
            msg.starts_with("configs/x.yaml:2:15: profile.shard_size: "),
            "{msg}"
        );
        assert!(msg.contains("greater than zero"), "{msg}");
        let msg = yaml_err("profile:\n  shard_size: -3GB\n");
        assert!(msg.starts_with("configs/x.yaml:2:15: "), "{msg}");
        let msg = yaml_err("profile:\n  shard_size: 1.5\n");
        assert!(msg.contains("not a whole number of bytes"), "{msg}");
        let msg = yaml_err("profile:\n  shard_size: lots\n");
        assert!(msg.contains("invalid size \"lots\""), "{msg}");
    }

    #[test]
    fn mode_and_normalize_parse() {
        assert_eq!("local".parse::<Mode>(), Ok(Mode::Local));
        assert_eq!("production".parse::<Mode>(), Ok(Mode::Production));
        assert_eq!("cloud".parse::<Mode>(), Ok(Mode::Production));
        assert_eq!("Cloud".parse::<Mode>(), Ok(Mode::Production));
        assert_eq!(Mode::Production.as_str(), "production");
        assert_eq!(Mode::default(), Mode::Local);
        let e = "laptop".parse::<Mode>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid mode \"laptop\": expected local, production or cloud"
        );
        assert_eq!("max".parse::<Normalize>(), Ok(Normalize::Max));
        assert_eq!("none".parse::<Normalize>(), Ok(Normalize::None));
        assert_eq!(Normalize::None.as_str(), "none");
        assert!("total".parse::<Normalize>().is_err());
        assert_eq!(
            serde_json::to_string(&Mode::Production).unwrap(),
            "\"production\""
        );
        assert_eq!(serde_json::to_string(&Normalize::Max).unwrap(), "\"max\"");
        assert_eq!(yaml("mode: cloud\n").unwrap().mode, Some(Mode::Production));
    }

    #[test]
    fn profiles_per_mode() {
        let gb = |n: u64| ByteSize(n * 1_000_000_000);
        assert_eq!(
            Profile::for_mode(Mode::Local, 2),
            Profile {
                num_workers: 2,
                shard_size: gb(1),
                batch_size: 1_000,
                checkpoint_interval: 5_000,
                writers: 1
            }
        );
        assert_eq!(
            Profile::for_mode(Mode::Local, 48),
            Profile {
                num_workers: 4,
                shard_size: gb(1),
                batch_size: 1_000,
                checkpoint_interval: 5_000,
                writers: 1
            }
        );
        assert_eq!(
            Profile::for_mode(Mode::Production, 2),
            Profile {
                num_workers: 2,
                shard_size: gb(2),
                batch_size: 10_000,
                checkpoint_interval: 10_000,
                writers: 2
            }
        );
        assert_eq!(
            Profile::for_mode(Mode::Production, 48),
            Profile {
                num_workers: 48,
                shard_size: gb(2),
                batch_size: 10_000,
                checkpoint_interval: 10_000,
                writers: 2
            }
        );
        assert_eq!(Profile::for_mode(Mode::Production, 0).num_workers, 1);
    }

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
                    checkpoint_interval: 5000\n  writers: 1\n\
                    processing:\n  normalize: none\n  min_peaks: 3\n  \
                    max_precursor_mz: 1000.0\n  max_spectra: 100000\n  \
                    max_peaks: 150\n  bin_width: 0.1\n  bin_range: 10:1000\n  \
                    bin_aggregation: max\n  bin_scale: 0.5\n  bin_output: sparse\n  \
                    quality_format: B\n  splits: {train: 0.9, test: 0.1}\n  seed: 7\n  \
                    split_key: name\n  dedup: exact\n\
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
                log_level: Some("debug".into()),
                log_file: Some("msms.log".into()),
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

    #[test]
    fn env_layer_parses_every_variable() {
        let l = env(&[
            ("MSMS_MODE", "production"),
            ("MSMS_NUM_WORKERS", "12"),
            ("MSMS_SHARD_SIZE", "512MiB"),
            ("MSMS_BATCH_SIZE", "2000"),
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
                log_level: Some("trace".into()),
                log_file: Some("/var/log/msms.log".into()),
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
                checkpoint_interval: 10_000,
                writers: 2,
            }
        );
        assert_eq!(s.profile, Profile::for_mode(Mode::Production, 48));
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
                "max_peaks": null,
                "binning": null,
                "quality_format": null
            })
        );
        let hash = base.config_hash();
        assert!(hash.starts_with("sha256:"));
        assert_eq!(hash.len(), "sha256:".len() + 64);
        // The exact canonical bytes that are hashed.
        let canonical = br#"{"normalize":"max","min_peaks":1,"max_precursor_mz":null,"max_spectra":null,"batch_size":1000,"shard_size":"1GB"}"#;
        assert_eq!(
            hash,
            format!("sha256:{}", hex::encode(Sha256::digest(canonical)))
        );

        // Stable for equal settings, even when resolved differently.
        let again = Settings::resolve(
            &Layer::default(),
            Some(&yaml("profile:\n  shard_size: 1000MB\n").unwrap()),
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
        let mut changed = base;
        changed.profile.shard_size = ByteSize(2_000_000_000);
        assert_ne!(changed.config_hash(), hash);
    }

    #[test]
    fn new_normalize_modes_and_bin_enums_parse() {
        for (text, want) in [
            ("none", Normalize::None),
            ("max", Normalize::Max),
            ("sum", Normalize::Sum),
            ("l2", Normalize::L2),
            ("L2", Normalize::L2),
            (" sqrt ", Normalize::Sqrt),
        ] {
            assert_eq!(text.parse::<Normalize>(), Ok(want), "{text}");
            assert_eq!(want.as_str().parse::<Normalize>(), Ok(want));
            assert_eq!(want.to_string(), want.as_str());
            assert_eq!(
                serde_json::to_string(&want).unwrap(),
                format!("\"{}\"", want.as_str())
            );
        }
        assert_eq!(Normalize::default(), Normalize::Max);
        assert_eq!(
            "l1".parse::<Normalize>().unwrap_err().to_string(),
            "invalid normalize \"l1\": expected none, max, sum, l2 or sqrt"
        );

        assert_eq!(BinAggregation::default(), BinAggregation::Sum);
        for (text, want) in [("sum", BinAggregation::Sum), ("MAX", BinAggregation::Max)] {
            assert_eq!(text.parse::<BinAggregation>(), Ok(want));
            assert_eq!(want.to_string(), want.as_str());
            assert_eq!(want.as_str().parse::<BinAggregation>(), Ok(want));
        }
        assert_eq!(
            serde_json::to_string(&BinAggregation::Max).unwrap(),
            "\"max\""
        );
        assert_eq!(
            serde_json::to_string(&BinAggregation::Sum).unwrap(),
            "\"sum\""
        );
        assert_eq!(
            "mean".parse::<BinAggregation>().unwrap_err().to_string(),
            "invalid bin aggregation \"mean\": expected sum or max"
        );

        assert_eq!(BinOutput::default(), BinOutput::Dense);
        for (text, want) in [("dense", BinOutput::Dense), ("Sparse", BinOutput::Sparse)] {
            assert_eq!(text.parse::<BinOutput>(), Ok(want));
            assert_eq!(want.to_string(), want.as_str());
            assert_eq!(want.as_str().parse::<BinOutput>(), Ok(want));
        }
        assert_eq!(
            serde_json::to_string(&BinOutput::Sparse).unwrap(),
            "\"sparse\""
        );
        assert!("csr".parse::<BinOutput>().is_err());

        for (text, want) in [
            ("A", QualityFormat::A),
            ("a", QualityFormat::A),
            ("B", QualityFormat::B),
            ("b", QualityFormat::B),
            (" C ", QualityFormat::C),
            ("c", QualityFormat::C),
        ] {
            assert_eq!(text.parse::<QualityFormat>(), Ok(want), "{text}");
            assert_eq!(want.as_str().parse::<QualityFormat>(), Ok(want));
            assert_eq!(want.to_string(), want.as_str());
        }
        assert_eq!(serde_json::to_string(&QualityFormat::B).unwrap(), "\"B\"");
        for bad in ["D", "AB", "", "format A"] {
            let e = bad.parse::<QualityFormat>().unwrap_err();
            assert_eq!(e.reason(), "expected A, B or C", "{bad:?}");
        }

        let l = yaml(
            "processing:\n  normalize: l2\n  bin_aggregation: Max\n  bin_output: sparse\n  \
             quality_format: a\n",
        )
        .unwrap();
        assert_eq!(l.normalize, Some(Normalize::L2));
        assert_eq!(l.bin_aggregation, Some(BinAggregation::Max));
        assert_eq!(l.bin_output, Some(BinOutput::Sparse));
        assert_eq!(l.quality_format, Some(QualityFormat::A));
    }

    #[test]
    fn bin_range_parses_and_round_trips() {
        let r = |min: f64, max: f64| BinRange { min, max };
        for (text, want, shown) in [
            ("10:1000", r(10.0, 1000.0), "10:1000"),
            ("0.5:2000.25", r(0.5, 2000.25), "0.5:2000.25"),
            (" 10 : 1000 ", r(10.0, 1000.0), "10:1000"),
            ("10.0:1000.0", r(10.0, 1000.0), "10:1000"),
            ("-5:5", r(-5.0, 5.0), "-5:5"),
            ("0:0.1", r(0.0, 0.1), "0:0.1"),
            ("1e1:1e3", r(10.0, 1000.0), "10:1000"),
        ] {
            assert_eq!(text.parse::<BinRange>(), Ok(want), "{text}");
            assert_eq!(want.to_string(), shown);
            assert_eq!(shown.parse::<BinRange>(), Ok(want));
        }
        for (min, max) in [
            (0.1, 0.30000000000000004),
            (1.0 / 3.0, 2000.123456789),
            (0.0, 1e300),
        ] {
            let shown = r(min, max).to_string();
            assert_eq!(shown.parse::<BinRange>(), Ok(r(min, max)), "{shown}");
        }
        for (text, want) in [
            ("10", "expected MIN:MAX"),
            ("", "expected MIN:MAX"),
            ("1000:10", "MIN must be less than MAX"),
            ("10:10", "MIN must be less than MAX"),
            ("a:b", "expected two numbers MIN:MAX"),
            ("10:", "expected two numbers MIN:MAX"),
            ("10:20:30", "expected two numbers MIN:MAX"),
            ("nan:5", "must be finite"),
            ("0:inf", "must be finite"),
            ("-inf:0", "must be finite"),
        ] {
            let e = text.parse::<BinRange>().unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("invalid bin range {text:?}: ")),
                "{msg}"
            );
            assert!(msg.contains(want), "{text:?}: {msg}");
            assert_eq!(e.what(), "bin range");
        }
        assert_eq!(
            serde_json::to_string(&r(10.0, 1000.0)).unwrap(),
            "\"10:1000\""
        );
        assert_eq!(
            serde_json::from_str::<BinRange>("\"0.5:2000.25\"").unwrap(),
            r(0.5, 2000.25)
        );
        assert!(serde_json::from_str::<BinRange>("10").is_err());
        // YAML: plain and quoted scalars.
        for text in [
            "processing:\n  bin_range: 10:1000\n",
            "processing:\n  bin_range: \"10:1000\"\n",
            "processing:\n  bin_range: '10.0 : 1000'\n",
        ] {
            assert_eq!(
                yaml(text).unwrap().bin_range,
                Some(r(10.0, 1000.0)),
                "{text}"
            );
        }
        let msg = yaml_err("processing:\n  bin_range: a:b\n");
        assert!(
            msg.starts_with("configs/x.yaml:2:14: processing.bin_range: invalid bin range \"a:b\""),
            "{msg}"
        );
        let msg = yaml_err("processing:\n  bin_range: [10, 1000]\n");
        assert!(
            msg.starts_with("configs/x.yaml:2:14: processing.bin_range: invalid type"),
            "{msg}"
        );
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

    #[test]
    fn config_hash_of_defaults_is_pinned() {
        let base = Settings::resolve(&Layer::default(), None, &Layer::default(), 2).unwrap();
        // The hash of the default settings from before max_peaks, binning and
        // quality_format existed: unset, they are left out of the hashed bytes.
        assert_eq!(
            base.config_hash(),
            "sha256:0e4f035272627c3e9b3e3fd5278ba8c38cb3e89681865145a8a3407dfde24843"
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
        let canonical = br#"{"normalize":"max","min_peaks":1,"max_precursor_mz":null,"max_spectra":null,"batch_size":1000,"shard_size":"1GB","max_peaks":100,"binning":{"width":0.1,"min":10.0,"max":1000.0,"aggregation":"max","scale":0.5,"output":"dense"},"quality_format":"A"}"#;
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
pub mod machine;
