//! Fuzz the YAML configuration: `Layer::from_yaml_str` on arbitrary text (or on a document
//! built from the schema's keys, when the first byte's top bit is set), then
//! `Settings::resolve` on every layer that parses.
//!
//! Checked:
//!
//! - Nothing panics, and parsing is deterministic (same layer, or same message, twice).
//! - A parse error is `ConfigError::Yaml` naming the origin: it displays as
//!   `fuzz.yaml[:line[:column]]: message` with a non-empty message, a 1-based position
//!   inside the text (line <= number of lines + 1, counting every YAML line break), and a
//!   column only with a line.
//! - A parsed layer resolves to the same result whichever layer carries it (command line,
//!   config file or environment: there is nothing else to take precedence over it); a
//!   resolve error is `ConfigError::Invalid` naming its key and the layer it came from.
//! - Resolved settings reflect every key the layer sets; counts are >= 1; the shard size
//!   is > 0 and its display parses back to the same size; a resolved bin range displays
//!   and parses back; a resolved binning is accepted by the kernels' `BinSpec::new` with
//!   `1 <= bins <= MAX_BINS` (the pipeline relies on that); `config_hash` is
//!   `sha256:` + 64 lowercase hex digits and is deterministic; the settings serialise to
//!   JSON (as the manifest does) and `output_settings_json` has the documented keys.
//!
//! Plain Rust, no libFuzzer: `fuzz_targets/config_parse.rs` wraps [`run`] in `fuzz_target!`,
//! and the root's `tests/fuzz_corpus.rs` replays `fuzz/corpus/config_parse/` through it.

use std::path::Path;

use arbitrary::Unstructured;
use msms_shards::config::{
    BinAggregation, BinRange, ByteSize, ConfigError, Layer, Settings, MAX_BINS,
};

const ORIGIN: &str = "fuzz.yaml";

/// The target: one fuzz input, checked as the module docs say. Panics on a failed check.
pub(crate) fn run(data: &[u8]) {
    // The first byte: the core count handed to `resolve` (low 7 bits, plus one) and, in its
    // top bit, whether the rest is YAML text as is or drives `structured` (a document built
    // from the schema's keys and interesting values, to reach `resolve` more often).
    let (cores, structured_doc, rest) = match data.split_first() {
        Some((&c, rest)) => (usize::from(c & 0x7f) + 1, c & 0x80 != 0, rest),
        None => (1, false, data),
    };
    let text = if structured_doc {
        structured(&mut Unstructured::new(rest)).unwrap_or_default()
    } else {
        String::from_utf8_lossy(rest).into_owned()
    };
    check(&text, cores);
}

const COUNTS: &[&str] = &[
    "0",
    "1",
    "2",
    "48",
    "-1",
    "1.5",
    "1e3",
    "0x10",
    "'7'",
    "null",
    "true",
    "~",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
];
const SIZES: &[&str] = &[
    "1GB",
    "1.5GB",
    "512MiB",
    "1048576",
    "0",
    "1e9",
    "1.5",
    "\"1 KiB\"",
    "1TiB",
    "1t",
    "2gi",
    "18446744073709551615",
    "18446744073709551616B",
    "16384TiB",
    "0.5B",
    "1.0000000000000000000001GB",
    "-1",
    ".5GB",
    "1.GB",
    "1..5GB",
    "1ZB",
    "\"\"",
    "null",
];
const FLOATS: &[&str] = &[
    "1000", "1000.0", "0", "-0.0", "-1", ".nan", ".inf", "-.inf", "1e308", "1e-320", "null", "0.1",
    "0.5", "2", "1e-9", "\"12\"", "true", "0x1p3",
];
const RANGES: &[&str] = &[
    "\"10:1000\"",
    "\"0:1\"",
    "\"1000:10\"",
    "\"-1e308:1e308\"",
    "\"0.7:1000\"",
    "\"nan:1\"",
    "10:1000",
    "\"0:1e-300\"",
    "\" 10 : 1000 \"",
    "\"1:1\"",
    "\"inf:1\"",
    "\"1:2:3\"",
    "\":\"",
    "12",
];
const NAMES: &[&str] = &[
    "[a.hdf5, b.hdf5]",
    "[]",
    "a.hdf5",
    "null",
    "out",
    "\"\"",
    "{}",
    "[1, 2]",
    "/tmp/x.log",
];

/// A YAML document over the config schema: each key present or not, its value picked from
/// interesting literals, generated numbers, or raw fuzz text.
fn structured(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let mut doc = String::new();
    let value = |u: &mut Unstructured<'_>, pool: &[&str]| -> arbitrary::Result<String> {
        Ok(match u.int_in_range(0u8..=9)? {
            0 => {
                let len = u.int_in_range(0usize..=12)?;
                String::from_utf8_lossy(u.bytes(len.min(u.len()))?).into_owned()
            }
            1 => format!("{:?}", f64::from_bits(u.arbitrary()?)),
            _ => (*u.choose(pool)?).to_owned(),
        })
    };
    let key = |u: &mut Unstructured<'_>,
               doc: &mut String,
               indent: &str,
               name: &str,
               pool: &[&str]|
     -> arbitrary::Result<()> {
        if u.ratio(2u8, 5)? {
            let v = value(u, pool)?;
            doc.push_str(&format!("{indent}{name}: {v}\n"));
        }
        Ok(())
    };
    key(
        u,
        &mut doc,
        "",
        "mode",
        &["local", "production", "cloud", "Local", "x", "null", "~"],
    )?;
    key(u, &mut doc, "", "inputs", NAMES)?;
    key(u, &mut doc, "", "output_root", NAMES)?;
    if u.arbitrary()? {
        doc.push_str("profile:\n");
        key(u, &mut doc, "  ", "num_workers", COUNTS)?;
        key(u, &mut doc, "  ", "shard_size", SIZES)?;
        key(u, &mut doc, "  ", "batch_size", COUNTS)?;
        key(u, &mut doc, "  ", "checkpoint_interval", COUNTS)?;
        key(u, &mut doc, "  ", "writers", COUNTS)?;
    }
    if u.arbitrary()? {
        doc.push_str("processing:\n");
        key(
            u,
            &mut doc,
            "  ",
            "normalize",
            &["max", "sum", "l2", "sqrt", "none", "MAX", "x"],
        )?;
        key(u, &mut doc, "  ", "min_peaks", COUNTS)?;
        key(u, &mut doc, "  ", "max_precursor_mz", FLOATS)?;
        key(u, &mut doc, "  ", "max_spectra", COUNTS)?;
        key(u, &mut doc, "  ", "max_peaks", COUNTS)?;
        if u.ratio(1u8, 3)? {
            // A grid near a bin-count limit: width = (max - min) / k, k near 1 or 10^7.
            let min =
                f64::from(u.int_in_range(0u32..=2000)?) / f64::from(u.int_in_range(1u32..=100)?);
            let max = min
                + f64::from(u.int_in_range(1u32..=100_000)?)
                    / f64::from(u.int_in_range(1u32..=1000)?);
            let k = match u.int_in_range(0u8..=2)? {
                0 => 1.0 + f64::from(u.int_in_range(-2i32..=2)?) * 1e-10,
                1 => 1e7 + f64::from(u.int_in_range(-3i32..=3)?),
                _ => 1e7 * (1.0 + f64::from(u.int_in_range(-3i32..=3)?) * 1e-10),
            };
            doc.push_str(&format!(
                "  bin_width: {:?}\n  bin_range: \"{min:?}:{max:?}\"\n",
                (max - min) / k
            ));
        } else {
            key(u, &mut doc, "  ", "bin_width", FLOATS)?;
            key(u, &mut doc, "  ", "bin_range", RANGES)?;
        }
        key(
            u,
            &mut doc,
            "  ",
            "bin_aggregation",
            &["sum", "max", "Sum", "mean"],
        )?;
        key(u, &mut doc, "  ", "bin_scale", FLOATS)?;
        key(
            u,
            &mut doc,
            "  ",
            "bin_output",
            &["dense", "sparse", "Dense"],
        )?;
        key(
            u,
            &mut doc,
            "  ",
            "quality_format",
            &["A", "B", "C", "a", "D"],
        )?;
    }
    if u.arbitrary()? {
        doc.push_str("logging:\n");
        key(
            u,
            &mut doc,
            "  ",
            "level",
            &["error", "WARN", "Info", " debug ", "trace", "verbose"],
        )?;
        key(u, &mut doc, "  ", "file", NAMES)?;
    }
    Ok(doc)
}

fn check(text: &str, cores: usize) {
    let origin = Path::new(ORIGIN);
    let parsed = Layer::from_yaml_str(text, origin);
    let again = Layer::from_yaml_str(text, origin);
    match (&parsed, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "parsing is not deterministic"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "error not deterministic"),
        _ => panic!("parsing is not deterministic: {parsed:?} vs {again:?}"),
    }
    if verbose() {
        match &parsed {
            Ok(l) => eprintln!(
                "parsed: {l:?} -> {:?}",
                Settings::resolve(&Layer::default(), Some(l), &Layer::default(), cores)
                    .map(|s| s.binning)
            ),
            Err(e) => eprintln!("error: {e}"),
        }
    }
    match parsed {
        Err(e) => check_parse_error(&e, text),
        Ok(layer) => check_resolve(&layer, cores),
    }
}

/// `MSMS_FUZZ_VERBOSE` set: print what each input exercised.
fn verbose() -> bool {
    static VERBOSE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("MSMS_FUZZ_VERBOSE").is_some())
}

fn check_parse_error(e: &ConfigError, text: &str) {
    let shown = e.to_string();
    assert!(!shown.is_empty());
    assert!(
        shown.starts_with(ORIGIN),
        "error does not name the file: {shown:?}"
    );
    match e {
        ConfigError::Yaml {
            path,
            line,
            column,
            message,
        } => {
            assert_eq!(path, Path::new(ORIGIN));
            assert!(!message.trim().is_empty(), "empty message: {shown:?}");
            let position = match (line, column) {
                (Some(l), Some(c)) => format!(":{l}:{c}"),
                (Some(l), None) => format!(":{l}"),
                (None, None) => String::new(),
                (None, Some(c)) => panic!("column {c} without a line: {shown:?}"),
            };
            assert_eq!(shown, format!("{ORIGIN}{position}: {message}"));
            // Lines as YAML counts them: \r\n, \r, \n, NEL, LS and PS all break a line.
            let unified = text.replace("\r\n", "\n");
            let breaks = unified
                .chars()
                .filter(|c| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'));
            let lines = breaks.count() + 1;
            if let Some(l) = line {
                assert!(
                    *l >= 1 && *l <= lines + 1,
                    "line {l} outside 1..={}: {shown:?}",
                    lines + 1
                );
            }
            if let Some(c) = column {
                assert!(*c >= 1, "column {c}: {shown:?}");
            }
        }
        other => panic!("from_yaml_str returned a non-YAML error: {other:?}"),
    }
}

fn check_resolve(layer: &Layer, cores: usize) {
    let none = Layer::default();
    let as_file = Settings::resolve(&none, Some(layer), &none, cores);
    let as_cli = Settings::resolve(layer, None, &none, cores);
    let as_env = Settings::resolve(&none, None, layer, cores);
    for (other, origin) in [(&as_cli, "command line"), (&as_env, "environment")] {
        match (&as_file, other) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "settings depend on the layer ({origin})"),
            (Err(a), Err(b)) => {
                let (ka, oa) = invalid_key(a);
                let (kb, ob) = invalid_key(b);
                assert_eq!(ka, kb, "different key refused as {origin}: {a} / {b}");
                assert_eq!((oa, ob), ("config file", origin), "{a} / {b}");
                // Same message but for the layer's name.
                let b_as_file = b
                    .to_string()
                    .replace(&format!("(from {origin})"), "(from config file)")
                    .replace(
                        &format!("which the {origin} sets"),
                        "which the config file sets",
                    );
                assert_eq!(a.to_string(), b_as_file);
            }
            _ => panic!("resolve depends on the layer ({origin}): {as_file:?} vs {other:?}"),
        }
    }
    let settings = match as_file {
        Err(e) => {
            let shown = e.to_string();
            let (key, origin) = invalid_key(&e);
            assert!(
                shown.starts_with(key),
                "{shown:?} does not start with its key"
            );
            assert!(
                shown.contains("(from config file)"),
                "{shown:?} does not name the layer"
            );
            assert_eq!(origin, "config file");
            return;
        }
        Ok(s) => s,
    };
    check_settings(layer, &settings);
    let again = Settings::resolve(&none, Some(layer), &none, cores).unwrap();
    assert_eq!(
        again.config_hash(),
        settings.config_hash(),
        "config hash not deterministic"
    );
}

/// The key and origin of a resolve error, which must be `ConfigError::Invalid`.
fn invalid_key(e: &ConfigError) -> (&'static str, &'static str) {
    match e {
        ConfigError::Invalid {
            key,
            origin,
            reason,
            ..
        } => {
            assert!(!reason.is_empty(), "empty reason: {e}");
            (key, origin)
        }
        other => panic!("resolve returned a non-Invalid error: {other:?}"),
    }
}

fn check_settings(layer: &Layer, s: &Settings) {
    // Every key the layer sets wins (it is the only layer).
    if let Some(m) = layer.mode {
        assert_eq!(s.mode, m);
    }
    let p = &s.profile;
    for (set, got) in [
        (layer.num_workers, p.num_workers),
        (layer.batch_size, p.batch_size),
        (layer.checkpoint_interval, p.checkpoint_interval),
        (layer.writers, p.writers),
    ] {
        assert!(got >= 1, "profile count {got} < 1: {p:?}");
        if let Some(v) = set {
            assert_eq!(got, v);
        }
    }
    assert!(p.shard_size.bytes() > 0);
    if let Some(v) = layer.shard_size {
        assert_eq!(p.shard_size, v);
    }
    let shown = p.shard_size.to_string();
    assert_eq!(
        shown.parse::<ByteSize>(),
        Ok(p.shard_size),
        "shard size {shown:?} does not round-trip"
    );
    if let Some(v) = &layer.inputs {
        assert_eq!(&s.inputs, v);
    }
    assert_eq!(s.output_root, layer.output_root);
    if let Some(v) = layer.normalize {
        assert_eq!(s.normalize, v);
    }
    if let Some(v) = layer.min_peaks {
        assert_eq!(s.min_peaks, v);
    }
    assert_eq!(s.max_precursor_mz, layer.max_precursor_mz);
    if let Some(v) = s.max_precursor_mz {
        assert!(v.is_finite() && v > 0.0);
    }
    assert_eq!(s.max_spectra, layer.max_spectra);
    assert_ne!(s.max_spectra, Some(0));
    assert_eq!(s.max_peaks, layer.max_peaks);
    assert_ne!(s.max_peaks, Some(0));
    assert_eq!(s.quality_format, layer.quality_format);
    if let Some(v) = &layer.log_level {
        assert_eq!(&s.log_level, v);
    }
    assert!(msms_shards::config::LOG_LEVELS.contains(&s.log_level.as_str()));
    assert_eq!(s.log_file, layer.log_file);

    // Binning: on exactly when bin_width is set, and then what the kernels accept.
    assert_eq!(s.binning.is_some(), layer.bin_width.is_some());
    if let Some(r) = layer.bin_range {
        let shown = r.to_string();
        assert_eq!(
            shown.parse::<BinRange>(),
            Ok(r),
            "bin range {shown:?} does not round-trip"
        );
    }
    if let Some(b) = s.binning {
        assert_eq!(Some(b.width), layer.bin_width);
        let r = layer.bin_range.expect("binning without a range");
        assert_eq!((b.min, b.max), (r.min, r.max));
        if let Some(v) = layer.bin_scale {
            assert_eq!(b.scale, v);
        }
        if let Some(v) = layer.bin_aggregation {
            assert_eq!(b.aggregation, v);
        }
        if let Some(v) = layer.bin_output {
            assert_eq!(b.output, v);
        }
        let aggregation = match b.aggregation {
            BinAggregation::Sum => msms_kernels::BinAggregation::Sum,
            BinAggregation::Max => msms_kernels::BinAggregation::Max,
        };
        let spec = msms_kernels::BinSpec::new(b.min, b.max, b.width, aggregation, b.scale)
            .unwrap_or_else(|e| panic!("resolved binning {b:?} refused by the kernels: {e}"));
        assert!(
            (1..=MAX_BINS).contains(&spec.bins),
            "resolved binning {b:?} has {} bins",
            spec.bins
        );
    } else {
        for (set, key) in [
            (layer.bin_range.is_some(), "bin_range"),
            (layer.bin_aggregation.is_some(), "bin_aggregation"),
            (layer.bin_scale.is_some(), "bin_scale"),
            (layer.bin_output.is_some(), "bin_output"),
        ] {
            assert!(!set, "{key} accepted without bin_width");
        }
    }

    // Hash and JSON.
    let hash = s.config_hash();
    let hex = hash.strip_prefix("sha256:").expect("config hash prefix");
    assert!(
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "config hash {hash:?}"
    );
    serde_json::to_string(s).expect("settings serialise to JSON");
    let json = s.output_settings_json();
    let obj = json.as_object().expect("output settings are an object");
    for key in [
        "normalize",
        "min_peaks",
        "max_precursor_mz",
        "max_spectra",
        "batch_size",
        "shard_size",
        "max_peaks",
        "binning",
        "quality_format",
    ] {
        assert!(obj.contains_key(key), "output settings lack {key}: {json}");
    }
}
