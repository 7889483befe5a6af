//! Text of the page: HTML escaping and the short forms of numbers (axis labels, table cells,
//! percentages).

use super::json::Num;

/// Escape text for HTML and SVG (element content and quoted attribute values).
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0 %".into()
    } else {
        format!("{:.2} %", 100.0 * part as f64 / whole as f64)
    }
}

/// Short axis label for a count: `950`, `1.5k`, `12k`, `3.2M`.
pub(crate) fn short_count(v: f64) -> String {
    let (x, suffix) = if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if x >= 100.0 || x.fract() == 0.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{suffix}")
}

/// Short axis label for bytes: `250 kB`, `1.5 GB`.
pub(crate) fn short_bytes(v: f64) -> String {
    let (x, unit) = if v >= 1e12 {
        (v / 1e12, "TB")
    } else if v >= 1e9 {
        (v / 1e9, "GB")
    } else if v >= 1e6 {
        (v / 1e6, "MB")
    } else if v >= 1e3 {
        (v / 1e3, "kB")
    } else {
        (v, "B")
    };
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s} {unit}")
}

/// A float for display: up to 4 decimals, trailing zeros dropped.
pub(crate) fn show_f64(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

pub(crate) fn show_num(n: Option<Num>) -> String {
    match n {
        None => "–".into(),
        Some(Num::Int(i)) => i.to_string(),
        Some(Num::Float(f)) => show_f64(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::thousands as group;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(escape("Ω-plasma_é"), "Ω-plasma_é");
    }

    #[test]
    fn short_labels_are_round() {
        assert_eq!(short_count(1500.0), "1.5k");
        assert_eq!(short_count(20_000.0), "20k");
        assert_eq!(short_count(0.0), "0");
        assert_eq!(short_bytes(300_000.0), "300 kB");
        assert_eq!(group(1_234_567), "1,234,567");
    }
}
