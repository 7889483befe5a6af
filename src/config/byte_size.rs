//! [`ByteSize`]: a size in bytes written with decimal or binary units (`1GB`, `512MiB`).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::ParseError;

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
                match super::yaml::yaml11_int(v) {
                    Some(n) => self.visit_u64(n),
                    None => v.parse().map_err(|e: ParseError| E::custom(e)),
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testutil::{yaml, yaml_err};

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
}
