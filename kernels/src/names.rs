//! Keyword names: the one name table of each keyword enum ([`Normalize`](crate::Normalize),
//! [`BinAggregation`](crate::BinAggregation), [`GemsFormat`](crate::GemsFormat), and the
//! caller's own), read exactly ([`Keyword::from_name`], e.g. a manifest) or leniently
//! ([`Keyword::parse_keyword`], the `FromStr` of the kernels' enums, e.g. a config file).

use std::fmt;

/// An enum whose variants are written as fixed names.
pub trait Keyword: Copy + PartialEq + 'static {
    /// What a value is, as named in [`UnknownName`] messages, e.g. `"normalize"`.
    const WHAT: &'static str;

    /// Every accepted name with its variant, in the order listed in messages. A variant's
    /// first name is its canonical name; later names of the same variant are aliases.
    const NAMES: &'static [(Self, &'static str)];

    /// The canonical name.
    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(v, _)| *v == self)
            .map_or("", |(_, n)| *n)
    }

    /// Inverse of [`name`](Self::name): the canonical name, exact and case-sensitive.
    fn from_name(s: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(v, n)| *n == s && v.name() == s)
            .map(|(v, _)| *v)
    }

    /// Any listed name (canonical or alias), ignoring ASCII case and surrounding whitespace.
    fn parse_keyword(s: &str) -> Result<Self, UnknownName> {
        let t = s.trim();
        Self::NAMES
            .iter()
            .find(|(_, n)| t.eq_ignore_ascii_case(n))
            .map(|(v, _)| *v)
            .ok_or_else(|| UnknownName {
                what: Self::WHAT,
                input: s.to_owned(),
                expected: expected::<Self>(),
            })
    }
}

/// Every name of `T`, as `a, b or c`.
pub fn expected<T: Keyword>() -> String {
    let names: Vec<&str> = T::NAMES.iter().map(|(_, n)| *n).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => (*last).to_owned(),
        None => String::new(),
    }
}

/// A name that is none of a [`Keyword`]'s names.
///
/// Displays as `invalid WHAT "INPUT": expected a, b or c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    what: &'static str,
    input: String,
    expected: String,
}

impl UnknownName {
    /// What was being parsed, e.g. `"normalize"`.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The text that was rejected, as given (not trimmed).
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Why it was rejected, without the input: `expected a, b or c`.
    pub fn reason(&self) -> String {
        format!("expected {}", self.expected)
    }
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} {:?}: expected {}",
            self.what, self.input, self.expected
        )
    }
}

impl std::error::Error for UnknownName {}

/// `Display` (the canonical name) and `FromStr` ([`Keyword::parse_keyword`]) of a keyword.
macro_rules! keyword_text {
    ($ty:ty) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::names::Keyword::name(*self))
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::names::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$ty as $crate::names::Keyword>::parse_keyword(s)
            }
        }
    };
}
pub(crate) use keyword_text;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BinAggregation, GemsFormat, Normalize};

    fn round_trip<T: Keyword + fmt::Debug>(all: &[T]) {
        for &v in all {
            assert_eq!(T::from_name(v.name()), Some(v));
            assert_eq!(
                T::parse_keyword(&format!(" {} ", v.name().to_ascii_uppercase())),
                Ok(v)
            );
        }
    }

    #[test]
    fn names_parse_exactly_and_leniently() {
        round_trip(&Normalize::ALL);
        round_trip(&BinAggregation::ALL);
        round_trip(&GemsFormat::ALL);
        assert_eq!(GemsFormat::from_name("a"), None);
        assert_eq!(GemsFormat::parse_keyword(" a"), Ok(GemsFormat::A));
        assert_eq!(
            "L3".parse::<Normalize>().unwrap_err().to_string(),
            r#"invalid normalize "L3": expected none, max, sum, l2 or sqrt"#
        );
        let e = "mean".parse::<BinAggregation>().unwrap_err();
        assert_eq!(
            (e.what(), e.input(), e.reason().as_str()),
            ("bin aggregation", "mean", "expected sum or max")
        );
        assert_eq!(
            "D".parse::<GemsFormat>().unwrap_err().to_string(),
            r#"invalid quality format "D": expected A, B or C"#
        );
    }
}
