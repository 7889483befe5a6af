//! The value types of the settings: keyword enums ([`Mode`], [`BinOutput`], [`SplitKey`],
//! [`Dedup`], and the kernels' [`Normalize`], [`BinAggregation`], [`QualityFormat`]),
//! [`Compression`], [`BinRange`], [`Splits`], [`Binning`] and log levels, with their text and
//! serde forms.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

pub use msms_kernels::bin::BinAggregation;
/// A GeMS quality format (DreaMS `dformats`): spectra that do not meet it are rejected.
///
/// Serialises and displays as `"A"`, `"B"` or `"C"`; parses those or their lowercase.
pub use msms_kernels::quality::GemsFormat as QualityFormat;
use msms_kernels::Keyword;
pub use msms_kernels::Normalize;

use super::ParseError;

/// Log levels accepted by `logging.level` and `MSMS_LOG_LEVEL`, most to least severe.
pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// Which profile of defaults to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// A laptop or workstation: few workers, 1 GB shards. The default.
    #[default]
    Local,
    /// A many-core server; `cloud` is accepted as an alias.
    Production,
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

/// `as_str`, `Display`, `FromStr` and serde for a keyword enum of the configuration, from
/// its one name table (the [`Keyword`] implementation): the first name of a variant is its
/// canonical name (`as_str`, `Display`, serde), and parsing accepts any listed name, ignoring
/// ASCII case and surrounding whitespace.
macro_rules! keyword_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl Keyword for $ty {
            const WHAT: &'static str = $what;
            const NAMES: &'static [(Self, &'static str)] = &[$(($ty::$variant, $name)),+];
        }

        impl $ty {
            /// The canonical name, as written in configs and manifests.
            pub fn as_str(self) -> &'static str {
                self.name()
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
                Ok(Self::parse_keyword(s)?)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                keyword::serialize(self, serializer)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                keyword::deserialize(deserializer)
            }
        }
    };
}

keyword_enum!(Mode, "mode", {
    Local => "local",
    Production => "production",
    Production => "cloud",
});
keyword_enum!(BinOutput, "bin output", { Dense => "dense", Sparse => "sparse" });
keyword_enum!(SplitKey, "split key", {
    Auto => "auto",
    Name => "name",
    Lsh => "lsh",
    Spectrum => "spectrum",
});
keyword_enum!(Dedup, "dedup", { None => "none", Exact => "exact" });

/// The Parquet compression codec of the shards' column chunks: `zstd[:LEVEL]`, `lz4`,
/// `snappy` or `none`.
///
/// `lz4` is Parquet's `LZ4_RAW` (not the deprecated Hadoop-framed `LZ4`); `none` is
/// `UNCOMPRESSED`. Displays (and serialises) as its canonical text, `zstd:LEVEL` with the
/// level always written, so `zstd` and `zstd:1` are the same value and the same config hash;
/// parses that text, ignoring ASCII case and surrounding whitespace.
///
/// zstd levels are [`Compression::ZSTD_LEVELS`] (1 to 22): parquet's `ZstdLevel::try_new`
/// also takes 0 (zstd's "default", level 3) and negative "fast" levels, which are refused
/// here so that every accepted text names exactly one level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// zstd at this level (one of [`Compression::ZSTD_LEVELS`]). `Zstd(1)` is the default.
    Zstd(i32),
    /// LZ4 block compression, Parquet `LZ4_RAW`.
    Lz4,
    /// Snappy, Parquet `SNAPPY`.
    Snappy,
    /// No compression, Parquet `UNCOMPRESSED`.
    None,
}

impl Compression {
    /// The zstd levels accepted (the top of parquet's `ZstdLevel` range, from 1).
    pub const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = 1..=22;

    /// The level of a bare `zstd` (parquet's `ZstdLevel::default()`).
    pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

    /// The accepted forms, for error and help texts.
    pub const FORMS: &'static str = "zstd, zstd:LEVEL (LEVEL 1 to 22), lz4, snappy or none";

    /// Why this value cannot be used, if it cannot: a zstd level outside
    /// [`Compression::ZSTD_LEVELS`] (only possible when built in code, not parsed).
    pub(super) fn check(self) -> Result<(), String> {
        match self {
            Compression::Zstd(level) if !Compression::ZSTD_LEVELS.contains(&level) => Err(format!(
                "zstd level {level} is out of range: use 1 (fastest) to 22 (smallest)"
            )),
            _ => Ok(()),
        }
    }
}

impl Default for Compression {
    /// `zstd:1`.
    fn default() -> Self {
        Compression::Zstd(Compression::DEFAULT_ZSTD_LEVEL)
    }
}

impl FromStr for Compression {
    type Err = ParseError;

    /// Parses `zstd`, `zstd:LEVEL`, `lz4`, `snappy` or `none`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ParseError::new("compression", s, reason);
        let text = s.trim().to_ascii_lowercase();
        let (name, level) = match text.split_once(':') {
            Some((name, level)) => (name.trim(), Some(level.trim())),
            None => (text.as_str(), None),
        };
        let value = match (name, level) {
            ("zstd", None) => Compression::default(),
            ("zstd", Some(level)) => {
                let level: i32 = level.parse().map_err(|_| {
                    err(format!(
                        "zstd level {level:?} is not a whole number; expected {}",
                        Compression::FORMS
                    ))
                })?;
                Compression::Zstd(level)
            }
            ("lz4", None) => Compression::Lz4,
            ("snappy", None) => Compression::Snappy,
            ("none", None) => Compression::None,
            ("lz4" | "snappy" | "none", Some(_)) => {
                return Err(err(format!(
                    "only zstd takes a level; expected {}",
                    Compression::FORMS
                )))
            }
            _ => return Err(err(format!("expected {}", Compression::FORMS))),
        };
        value.check().map_err(err)?;
        Ok(value)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::Zstd(level) => write!(f, "zstd:{level}"),
            Compression::Lz4 => f.write_str("lz4"),
            Compression::Snappy => f.write_str("snappy"),
            Compression::None => f.write_str("none"),
        }
    }
}

impl Serialize for Compression {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Compression {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(FromStrVisitor::<Compression>::new(
            "a compression such as \"zstd:1\", \"lz4\", \"snappy\" or \"none\"",
        ))
    }
}

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
    pub(super) fn check(min: f64, max: f64) -> Result<(), &'static str> {
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
    pub(crate) fn names(&self) -> Vec<String> {
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
/// [`Settings::resolve`](super::Settings::resolve) guarantees `1 <= bins <= `[`MAX_BINS`](super::MAX_BINS), counting bins as whole
/// widths in `[min, max)` with a `1e-9` relative rounding guard.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Binning {
    /// Bin width in m/z, finite and > 0.
    pub width: f64,
    /// Lower end of the binned range.
    pub min: f64,
    /// Upper end of the binned range; at least one whole bin fits between `min` and `max`.
    pub max: f64,
    /// How the peaks of one bin are combined; default `sum`.
    #[serde(with = "keyword")]
    pub aggregation: BinAggregation,
    /// Intensity exponent `P` (binned value = `intensity ^ P`), finite and > 0; default 1.
    pub scale: f64,
    /// Dense or sparse storage; default `dense`.
    pub output: BinOutput,
}

/// Names of pass-through columns (`--columns`, `--exclude-columns`): comma-separated on
/// the command line and in `MSMS_*`, a list (or that comma text) in YAML. Names are the
/// dataset's name in the file or its output column's; each at least one character, no
/// duplicates. Displays (and serialises, for the config hash) as the comma text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnList(pub Vec<String>);

impl FromStr for ColumnList {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ColumnList::check(s.split(',').map(|n| n.trim().to_string()).collect())
            .map_err(|why| ParseError::new("column list", s, why))
    }
}

impl ColumnList {
    fn check(names: Vec<String>) -> Result<ColumnList, String> {
        if names.is_empty() || names.iter().any(|n| n.is_empty() || n.contains(',')) {
            return Err("expected one or more column names separated by commas, none empty".into());
        }
        if let Some(dup) = names
            .iter()
            .enumerate()
            .find(|(i, n)| names[..*i].contains(n))
        {
            return Err(format!("`{}` is named twice", dup.1));
        }
        Ok(ColumnList(names))
    }
}

impl fmt::Display for ColumnList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

impl Serialize for ColumnList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ColumnList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ColumnList;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("column names as a list or as \"a,b,c\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ColumnList, E> {
                v.parse().map_err(|e: ParseError| E::custom(e))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<ColumnList, A::Error> {
                let mut names = Vec::new();
                while let Some(n) = seq.next_element::<String>()? {
                    names.push(n);
                }
                ColumnList::check(names).map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Parses a log level (case-insensitive) into its lowercase name from [`LOG_LEVELS`].
pub(crate) fn parse_log_level(s: &str) -> Result<String, ParseError> {
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

/// Serde of a [`Keyword`] as its canonical name, and from any of its names (ignoring ASCII case
/// and surrounding whitespace): for `#[serde(with = "keyword")]` on the kernels' enums, which
/// have no serde of their own, and behind the config's own keyword enums.
pub(crate) mod keyword {
    use std::fmt;
    use std::marker::PhantomData;

    use msms_kernels::names::{expected, Keyword};
    use serde::de::{self, Deserializer, Visitor};
    use serde::Serializer;

    pub(crate) fn serialize<T: Keyword, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.name())
    }

    pub(crate) fn deserialize<'de, T: Keyword, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        d.deserialize_str(KeywordVisitor::<T>(PhantomData))
    }

    struct KeywordVisitor<T>(PhantomData<T>);

    impl<T: Keyword> Visitor<'_> for KeywordVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&expected::<T>())
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            T::parse_keyword(v).map_err(E::custom)
        }
    }

    /// The same for an optional keyword (`null` or absent is `None`).
    pub(crate) mod option {
        use msms_kernels::names::Keyword;
        use serde::{Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<T: Keyword, S: Serializer>(
            v: &Option<T>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.serialize_some(v.name()),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, T: Keyword, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<T>, D::Error> {
            struct Some<T>(T);
            impl<'de, T: Keyword> Deserialize<'de> for Some<T> {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    super::deserialize(d).map(Some)
                }
            }
            Ok(Option::<Some<T>>::deserialize(d)?.map(|v| v.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testutil::{yaml, yaml_err};

    /// Serialises a kernels' keyword as the config's structs do.
    #[derive(Serialize)]
    struct Kw<T: Keyword>(#[serde(with = "keyword")] T);

    #[test]
    fn column_lists_parse_and_refuse_empty_names() {
        assert_eq!(
            " smiles, scan ".parse::<ColumnList>().unwrap(),
            ColumnList(vec!["smiles".into(), "scan".into()])
        );
        assert_eq!(ColumnList(vec!["a".into(), "b".into()]).to_string(), "a,b");
        for bad in ["", "a,,b", "a,a"] {
            assert!(bad.parse::<ColumnList>().is_err(), "{bad:?}");
        }
        // YAML: a list (never empty, no name with a comma) or the comma text.
        assert!(serde_norway::from_str::<ColumnList>("[]").is_err());
        assert!(serde_norway::from_str::<ColumnList>("['a,b']").is_err());
        assert_eq!(
            serde_norway::from_str::<ColumnList>("[a, b]").unwrap(),
            ColumnList(vec!["a".into(), "b".into()])
        );
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
        assert_eq!(
            serde_json::to_string(&Kw(Normalize::Max)).unwrap(),
            "\"max\""
        );
        assert_eq!(yaml("mode: cloud\n").unwrap().mode, Some(Mode::Production));
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
                serde_json::to_string(&Kw(want)).unwrap(),
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
            serde_json::to_string(&Kw(BinAggregation::Max)).unwrap(),
            "\"max\""
        );
        assert_eq!(
            serde_json::to_string(&Kw(BinAggregation::Sum)).unwrap(),
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
        assert_eq!(
            serde_json::to_string(&Kw(QualityFormat::B)).unwrap(),
            "\"B\""
        );
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
    fn compression_parses_displays_and_round_trips() {
        assert_eq!(Compression::default(), Compression::Zstd(1));
        for (text, want, shown) in [
            ("zstd", Compression::Zstd(1), "zstd:1"),
            ("ZSTD", Compression::Zstd(1), "zstd:1"),
            ("zstd:1", Compression::Zstd(1), "zstd:1"),
            (" zstd : 3 ", Compression::Zstd(3), "zstd:3"),
            ("zstd:22", Compression::Zstd(22), "zstd:22"),
            ("zstd:07", Compression::Zstd(7), "zstd:7"),
            ("lz4", Compression::Lz4, "lz4"),
            ("LZ4", Compression::Lz4, "lz4"),
            ("snappy", Compression::Snappy, "snappy"),
            (" none ", Compression::None, "none"),
        ] {
            assert_eq!(text.parse::<Compression>(), Ok(want), "{text:?}");
            assert_eq!(want.to_string(), shown);
            assert_eq!(shown.parse::<Compression>(), Ok(want));
            assert_eq!(
                serde_json::to_string(&want).unwrap(),
                format!("\"{shown}\"")
            );
            assert_eq!(
                serde_json::from_str::<Compression>(&format!("\"{text}\"")).unwrap(),
                want
            );
        }
        let forms = "expected zstd, zstd:LEVEL (LEVEL 1 to 22), lz4, snappy or none";
        for (text, reason) in [
            (
                "zstd:0",
                "zstd level 0 is out of range: use 1 (fastest) to 22 (smallest)".to_owned(),
            ),
            (
                "zstd:23",
                "zstd level 23 is out of range: use 1 (fastest) to 22 (smallest)".to_owned(),
            ),
            (
                "zstd:-5",
                "zstd level -5 is out of range: use 1 (fastest) to 22 (smallest)".to_owned(),
            ),
            (
                "zstd:fast",
                format!("zstd level \"fast\" is not a whole number; {forms}"),
            ),
            (
                "zstd:",
                format!("zstd level \"\" is not a whole number; {forms}"),
            ),
            ("lz4:1", format!("only zstd takes a level; {forms}")),
            ("none:0", format!("only zstd takes a level; {forms}")),
            ("gzip", forms.to_owned()),
            ("lz4_raw", forms.to_owned()),
            ("uncompressed", forms.to_owned()),
            ("", forms.to_owned()),
        ] {
            let e = text.parse::<Compression>().unwrap_err();
            assert_eq!(e.what(), "compression");
            assert_eq!(e.reason(), reason, "{text:?}");
            assert_eq!(
                e.to_string(),
                format!("invalid compression {text:?}: {reason}")
            );
        }
        for level in Compression::ZSTD_LEVELS {
            let c = Compression::Zstd(level);
            assert_eq!(c.to_string().parse::<Compression>(), Ok(c));
        }
        // YAML: plain and quoted scalars; `none` is the codec, not null.
        for (text, want) in [
            ("profile:\n  compression: zstd:5\n", Compression::Zstd(5)),
            ("profile:\n  compression: 'zstd'\n", Compression::Zstd(1)),
            ("profile:\n  compression: lz4\n", Compression::Lz4),
            ("profile:\n  compression: \"snappy\"\n", Compression::Snappy),
            ("profile:\n  compression: none\n", Compression::None),
        ] {
            assert_eq!(yaml(text).unwrap().compression, Some(want), "{text}");
        }
        assert_eq!(
            yaml("profile:\n  compression: null\n").unwrap().compression,
            None
        );
        let msg = yaml_err("profile:\n  compression: zstd:0\n");
        assert!(
            msg.starts_with(
                "configs/x.yaml:2:16: profile.compression: invalid compression \"zstd:0\": zstd \
                 level 0 is out of range"
            ),
            "{msg}"
        );
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
}
