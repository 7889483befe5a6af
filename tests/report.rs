//! `msms quality-report`, through the binary: the JSON's numbers equal what the shards hold
//! (read back here with the parquet crate and binned independently), every histogram adds
//! up to the row count, the thread count does not change a byte, the HTML has one `<svg>`
//! per chart, loads nothing from outside and escapes every manifest string; nulls, NaN and
//! out-of-range values are counted where they belong; several splits are reported apart; a
//! root without a usable manifest exits 2, a missing shard 1.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, Float32Array, Int8Array, RecordBatch};
use arrow::datatypes::{Float32Type, Int8Type};
use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use serde_json::Value;

const CHART_TITLES: [&str; 7] = [
    "Peaks per spectrum",
    "Precursor m/z",
    "Charge",
    "Retention time",
    "Rejection reasons",
    "Split sizes",
    "Shard sizes",
];

/// A converted output root with several shards, built in `dir`.
fn fresh_root(dir: &Path, spectra: u64) -> PathBuf {
    sharded_root(dir, spectra, 100, 11)
}

fn report(root: &Path, extra: &[&str]) -> Run {
    let mut args = vec![std::ffi::OsStr::new("quality-report"), root.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    msms(args)
}

/// `1234` → `1,234` (up to 999,999).
fn grouped(n: u64) -> String {
    if n >= 1000 {
        format!("{},{:03}", n / 1000, n % 1000)
    } else {
        n.to_string()
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).expect("report JSON")).expect("JSON")
}

fn edit_manifest(root: &Path, edit: impl FnOnce(&mut Value)) {
    let mut m = read_manifest(root);
    edit(&mut m);
    fs::write(
        root.join("_manifest.json"),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
}

/// One column as the oracle sees it.
#[derive(Default, Debug)]
struct Column {
    rows: u64,
    null: u64,
    non_finite: u64,
    /// Finite values, sorted.
    values: Vec<f64>,
}

impl Column {
    fn add(&mut self, v: Option<f64>) {
        self.rows += 1;
        match v {
            None => self.null += 1,
            Some(v) if !v.is_finite() => self.non_finite += 1,
            Some(v) => self.values.push(v),
        }
    }

    fn finish(mut self) -> Column {
        self.values.sort_by(f64::total_cmp);
        self
    }

    /// Nearest rank: the value of rank ceil(q n), at least 1.
    fn quantile(&self, q: f64) -> f64 {
        let n = self.values.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.values[rank - 1]
    }

    /// Counts per bin, `bin` giving each finite value's index.
    fn bins(&self, len: usize, bin: impl Fn(f64) -> usize) -> Vec<u64> {
        let mut out = vec![0; len];
        for &v in &self.values {
            out[bin(v)] += 1;
        }
        out
    }
}

/// The four columns of every row of the listed shards (optionally one split's).
fn oracle(root: &Path, split: Option<&str>) -> [Column; 4] {
    let m = read_manifest(root);
    let mut cols: [Column; 4] = Default::default();
    for (i, s) in m["shards"].as_array().unwrap().iter().enumerate() {
        if split.is_some_and(|x| s["split"] != x) {
            continue;
        }
        let shard = read_shard(&root.join(s["path"].as_str().unwrap()), i);
        for r in &shard.rows {
            cols[0].add(Some(f64::from(r.num_peaks)));
            cols[1].add(Some(r.precursor_mz));
            cols[2].add(r.charge.map(f64::from));
            cols[3].add(r.rt.map(f64::from));
        }
    }
    cols.map(Column::finish)
}

fn counts(col: &Value, key: &str) -> Vec<u64> {
    col[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} array in {col}"))
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .collect()
}

/// Check one JSON column against the oracle: counts, min/max/mean, quantiles, bins.
#[track_caller]
fn assert_column(name: &str, j: &Value, o: &Column, bins: &[u64], resolution: Option<(f64, f64)>) {
    let n = o.values.len() as u64;
    assert_eq!(j["rows"].as_u64(), Some(o.rows), "{name} rows");
    assert_eq!(j["null"].as_u64(), Some(o.null), "{name} null");
    assert_eq!(
        j["non_finite"].as_u64(),
        Some(o.non_finite),
        "{name} non_finite"
    );
    assert_eq!(j["count"].as_u64(), Some(n), "{name} count");
    let got = counts(j, "bins");
    assert_eq!(got, bins, "{name} bins");
    assert_eq!(
        got.iter().sum::<u64>() + o.null + o.non_finite,
        o.rows,
        "{name}: bins + null + non_finite = rows"
    );
    if n == 0 {
        assert!(j["min"].is_null() && j["mean"].is_null() && j["quantiles"]["p50"].is_null());
        return;
    }
    let (min, max) = (o.values[0], o.values[o.values.len() - 1]);
    // serde_json's parser may be off by an ulp (its `float_roundtrip` feature is off).
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
    let got = |k: &str| j[k].as_f64().unwrap_or_else(|| panic!("{name} {k}"));
    assert!(
        close(got("min"), min),
        "{name} min {}, want {min}",
        got("min")
    );
    assert!(
        close(got("max"), max),
        "{name} max {}, want {max}",
        got("max")
    );
    let mean = o.values.iter().sum::<f64>() / n as f64;
    let got = j["mean"].as_f64().unwrap();
    assert!(
        (got - mean).abs() <= 1e-9 * mean.abs().max(1.0),
        "{name} mean {got}, want {mean}"
    );
    for p in [1, 5, 25, 50, 75, 95, 99] {
        let exact = o.quantile(f64::from(p) / 100.0);
        let got = j["quantiles"][format!("p{p:02}")].as_f64().unwrap();
        match resolution {
            None => assert!(close(got, exact), "{name} p{p} = {got}, want {exact}"),
            Some((res, top)) => {
                let want = if exact < 0.0 {
                    min
                } else if exact >= top {
                    max
                } else {
                    exact
                };
                assert!(
                    close(got, want)
                        || (got < want && got > want - res - 1e-9 && got >= min - 1e-9),
                    "{name} p{p} = {got}, exact {exact} (resolution {res})"
                );
            }
        }
    }
}

fn num_peaks_bins(c: &Column) -> Vec<u64> {
    c.bins(33, |v| ((v as usize) / 4).min(32))
}
fn precursor_bins(c: &Column) -> Vec<u64> {
    c.bins(82, |v| {
        if v < 0.0 {
            0
        } else {
            1 + ((v / 25.0).floor() as usize).min(80)
        }
    })
}
fn charge_bins(c: &Column) -> Vec<u64> {
    c.bins(8, |v| if v < 0.0 { 0 } else { 1 + (v as usize).min(6) })
}
fn rt_bins(c: &Column) -> Vec<u64> {
    c.bins(62, |v| {
        if v < 0.0 {
            0
        } else {
            1 + ((v / 120.0).floor() as usize).min(60)
        }
    })
}

/// Every column of a JSON `columns` object against the oracle.
#[track_caller]
fn assert_columns(j: &Value, o: &[Column; 4]) {
    assert_column(
        "num_peaks",
        &j["num_peaks"],
        &o[0],
        &num_peaks_bins(&o[0]),
        None,
    );
    assert_column(
        "precursor_mz",
        &j["precursor_mz"],
        &o[1],
        &precursor_bins(&o[1]),
        Some((0.1, 5000.0)),
    );
    assert_column("charge", &j["charge"], &o[2], &charge_bins(&o[2]), None);
    assert_column(
        "rt",
        &j["rt"],
        &o[3],
        &rt_bins(&o[3]),
        Some((1.0, 86_400.0)),
    );
    // Exact charge values.
    let mut want: Vec<(i64, u64)> = Vec::new();
    for &v in &o[2].values {
        match want.last_mut() {
            Some((x, n)) if *x == v as i64 => *n += 1,
            _ => want.push((v as i64, 1)),
        }
    }
    let got: Vec<(i64, u64)> = j["charge"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["value"].as_i64().unwrap(), x["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, want, "charge values");
}

/// Tags the report writes; anything else (a `<script>`, an `<img>`, a `<b>` smuggled in
/// through a manifest string) fails the check.
const TAGS: [&str; 31] = [
    "html",
    "head",
    "meta",
    "link",
    "title",
    "style",
    "body",
    "main",
    "header",
    "h1",
    "h2",
    "p",
    "code",
    "dl",
    "div",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "svg",
    "rect",
    "text",
    "line",
    "section",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "footer",
];

/// The HTML is one self-contained page: the seven charts, only the tags the report writes,
/// no event handlers, nothing loaded from outside, no script.
#[track_caller]
fn assert_self_contained(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 7, "one <svg> per chart");
    assert_eq!(html.matches("</svg>").count(), 7);
    for t in CHART_TITLES {
        assert!(html.contains(&format!("<h2>{t}</h2>")), "chart title {t}");
    }
    // Escaped text never holds `<`, so every `<` opens a tag the report wrote.
    for part in html.split('<').skip(1) {
        let tag = &part[..part.find('>').expect("tag closed")];
        if tag.starts_with('!') || tag.starts_with('/') {
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(TAGS.contains(&name.as_str()), "unexpected tag <{tag}>");
        let lower = tag.to_ascii_lowercase();
        assert!(!lower.contains(" src="), "a fetch: <{tag}>");
        assert!(!lower.contains(" on"), "an event handler: <{tag}>");
        if let Some(i) = lower.find("href=") {
            assert!(lower[i..].starts_with("href=\"data:"), "a link: <{tag}>");
        }
    }
    let lower = html.to_ascii_lowercase();
    for bad in ["@import", "url("] {
        assert!(!lower.contains(bad), "the page contains {bad:?}");
    }
    // The only URL is the SVG namespace, which is an identifier, not a fetch.
    assert_eq!(
        lower.matches("://").count(),
        lower
            .matches("xmlns=\"http://www.w3.org/2000/svg\"")
            .count(),
        "URLs other than the SVG namespace"
    );
}

#[test]
fn json_numbers_equal_the_shards_and_the_html_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path(), 1500);
    let run = report(&root, &["-j", "2"]);
    run.expect_code(0);
    let m = read_manifest(&root);
    let shards = m["shards"].as_array().unwrap();
    let rows: u64 = shards.iter().map(|s| s["rows"].as_u64().unwrap()).sum();
    assert!(
        run.stdout.starts_with(&format!(
            "msms quality-report: read {} spectra from {} shards (",
            grouped(rows),
            shards.len()
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("_quality_report.html"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("7 charts"), "{}", run.stdout);

    let j = read_json(&root.join("_quality_report.json"));
    assert_eq!(j["format"], "msms-shards-quality-report");
    assert_eq!(j["report_version"], 1);
    assert_eq!(j["manifest"]["dataset_digest"], m["dataset_digest"]);
    assert_eq!(j["manifest"]["config_hash"], m["config_hash"]);
    assert_eq!(j["manifest"]["settings"], m["settings"]);
    assert_eq!(j["manifest"]["inputs"], m["inputs"]);
    for k in ["read", "written", "rejected_total"] {
        assert_eq!(j["counts"][k], m["counts"][k], "counts.{k}");
    }
    // Rejections: every reason of the manifest, in validation order.
    let reasons: Vec<(&str, u64)> = j["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["reason"].as_str().unwrap(), r["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(reasons[0].0, "empty");
    assert_eq!(
        reasons.len(),
        m["counts"]["rejected"].as_object().unwrap().len()
    );
    for (r, n) in &reasons {
        assert_eq!(m["counts"]["rejected"][r].as_u64(), Some(*n), "{r}");
    }
    assert!(
        reasons.iter().map(|r| r.1).sum::<u64>() > 0,
        "faults were planted"
    );

    // Splits and shards.
    assert_eq!(j["splits"].as_array().unwrap().len(), 1);
    assert_eq!(j["splits"][0]["name"], "train");
    assert_eq!(j["splits"][0]["rows"].as_u64(), Some(rows));
    assert_eq!(j["splits"][0]["shards"].as_u64(), Some(shards.len() as u64));
    let s = &j["shards"];
    assert_eq!(s["count"].as_u64(), Some(shards.len() as u64));
    assert_eq!(s["size_limit"], "100kB");
    assert_eq!(s["size_limit_bytes"].as_u64(), Some(100_000));
    assert_eq!(s["over_limit"].as_u64(), Some(0));
    let bytes: Vec<u64> = shards
        .iter()
        .map(|s| s["bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(s["bytes_total"].as_u64(), Some(bytes.iter().sum()));
    assert_eq!(s["bytes_max"].as_u64(), bytes.iter().copied().max());
    for (item, rec) in s["items"].as_array().unwrap().iter().zip(shards) {
        for k in ["path", "split", "rows", "bytes"] {
            assert_eq!(item[k], rec[k], "shard {k}");
        }
    }

    // Columns, against the shards read back here.
    let o = oracle(&root, None);
    assert_eq!(o[0].rows, rows);
    assert_columns(&j["columns"], &o);
    assert_columns(&j["splits"][0]["columns"], &o);

    let html = fs::read_to_string(root.join("_quality_report.html")).unwrap();
    assert_self_contained(&html);
    assert!(html.contains(m["dataset_digest"].as_str().unwrap()));
    assert!(html.contains(m["config_hash"].as_str().unwrap()));
    assert!(html.contains("limit 100kB"), "the shard size limit line");
    assert!(!root.join("_quality_report.html.tmp").exists());

    // The thread count changes nothing; a second run replaces the files.
    let first_json = fs::read(root.join("_quality_report.json")).unwrap();
    report(&root, &["-j", "1", "-q"]).expect_code(0);
    assert_eq!(
        fs::read(root.join("_quality_report.json")).unwrap(),
        first_json
    );
    assert_eq!(
        fs::read_to_string(root.join("_quality_report.html")).unwrap(),
        html
    );
    // The report does not disturb `msms verify`.
    msms(["verify".as_ref(), root.as_os_str(), "-q".as_ref()]).expect_code(0);
}

#[test]
fn quiet_output_and_other_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path(), 600);
    let out = dir.path().join("elsewhere");
    fs::create_dir(&out).unwrap();
    let html = out.join("r.html");
    let run = report(&root, &["-q", "--output", html.to_str().unwrap()]);
    run.expect_code(0);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "");
    assert!(html.is_file());
    assert!(out.join("r.json").is_file(), "JSON next to --output");
    assert!(!root.join("_quality_report.html").exists());

    let json = dir.path().join("x.json");
    report(
        &root,
        &[
            "-q",
            "-o",
            html.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
    )
    .expect_code(0);
    assert_eq!(read_json(&json)["report_version"], 1);

    // The same file for both: refused before anything is read.
    let run = report(&root, &["-o", json.to_str().unwrap()]);
    run.expect_code(2);
    assert!(run.stderr.contains("same file"), "{}", run.stderr);

    // An output directory that does not exist: a write error, exit 1, named.
    let missing = dir.path().join("no/such/dir/r.html");
    let run = report(&root, &["-o", missing.to_str().unwrap()]);
    run.expect_code(1);
    assert!(run.stderr.contains("cannot write"), "{}", run.stderr);

    let help = msms(["quality-report", "--help"]);
    help.expect_code(0);
    for w in ["ROOT", "--output", "--json", "Exit codes", "128+", "2000+"] {
        assert!(
            help.stdout.contains(w),
            "--help mentions {w}:\n{}",
            help.stdout
        );
    }
}

/// Replace shard 0's `rt` and `charge` with values that exercise nulls, NaN, negative and
/// out-of-range numbers.
fn plant_odd_values(root: &Path) {
    let rel = read_manifest(root)["shards"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let path = root.join(rel);
    let builder = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
    let mut w =
        ArrowWriter::try_new(fs::File::create(&path).unwrap(), schema.clone(), None).unwrap();
    let mut row = 0usize;
    for b in batches {
        let rt = b
            .column_by_name("rt")
            .unwrap()
            .as_primitive::<Float32Type>();
        let charge = b
            .column_by_name("charge")
            .unwrap()
            .as_primitive::<Int8Type>();
        let rt: Float32Array = (0..b.num_rows())
            .map(|i| match row + i {
                0 => None,
                1 => Some(f32::NAN),
                2 => Some(-5.0),
                3 => Some(1.0e6),
                4 => Some(f32::INFINITY),
                5 => None,
                _ => Some(rt.value(i)),
            })
            .collect();
        let charge: Int8Array = (0..b.num_rows())
            .map(|i| match row + i {
                0 | 1 => None,
                2 => Some(-1),
                3 => Some(9),
                4 => Some(6),
                _ => Some(charge.value(i)),
            })
            .collect();
        let mut cols = b.columns().to_vec();
        cols[schema.index_of("rt").unwrap()] = Arc::new(rt) as Arc<dyn Array>;
        cols[schema.index_of("charge").unwrap()] = Arc::new(charge) as Arc<dyn Array>;
        w.write(&RecordBatch::try_new(schema.clone(), cols).unwrap())
            .unwrap();
        row += b.num_rows();
    }
    w.close().unwrap();
}

#[test]
fn nulls_nan_and_out_of_range_values_are_counted_where_they_belong() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path(), 600);
    plant_odd_values(&root);
    report(&root, &["-q"]).expect_code(0);
    let j = read_json(&root.join("_quality_report.json"));
    let o = oracle(&root, None);
    assert_eq!(
        (o[3].null, o[3].non_finite),
        (2, 2),
        "the planted rt values"
    );
    assert_eq!(o[2].null, 2, "the planted charge nulls");
    assert_columns(&j["columns"], &o);
    let rt = &j["columns"]["rt"];
    assert_eq!(rt["bins"][0]["label"], "<0");
    assert_eq!(rt["bins"][0]["count"].as_u64(), Some(1));
    assert_eq!(rt["bins"][61]["label"], "7200+");
    assert_eq!(rt["min"].as_f64(), Some(-5.0));
    assert_eq!(rt["max"].as_f64(), Some(1.0e6));
    let charge = &j["columns"]["charge"];
    assert_eq!(charge["bins"][0]["count"].as_u64(), Some(1), "charge < 0");
    assert_eq!(charge["bins"][7]["label"], "6+");
    let html = fs::read_to_string(root.join("_quality_report.html")).unwrap();
    assert_self_contained(&html);
    assert!(
        html.contains("2 null, 2 non-finite"),
        "rt caption notes them"
    );
}

#[test]
fn manifest_strings_are_escaped_in_the_html() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path(), 400);
    let hostile = [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(2)>",
        "</style><b>bold</b>",
        "\"><svg onload=alert(3)>",
        "a & b 'quoted'",
    ];
    edit_manifest(&root, |m| {
        m["inputs"][0]["path"] = hostile[0].into();
        m["settings"]["normalize"] = hostile[1].into();
        m["settings"][hostile[2]] = hostile[3].into();
        m["mode"] = hostile[2].into();
        m["tool_version"] = hostile[4].into();
        m["run"]["created_at"] = hostile[3].into();
        m["dataset_digest"] = hostile[1].into();
        for s in m["shards"].as_array_mut().unwrap() {
            s["split"] = hostile[3].into();
        }
    });
    report(&root, &["-q"]).expect_code(0);
    let html = fs::read_to_string(root.join("_quality_report.html")).unwrap();
    for h in hostile {
        assert!(!html.contains(h), "unescaped {h:?} in the HTML");
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert!(html.contains("a &amp; b &#39;quoted&#39;"));
    for twice in [
        "&amp;lt;",
        "&amp;gt;",
        "&amp;amp;",
        "&amp;#39;",
        "&amp;quot;",
    ] {
        assert!(!html.contains(twice), "escaped twice: {twice}");
    }
    assert_self_contained(&html);
    // The JSON keeps them verbatim (JSON-escaped).
    let j = read_json(&root.join("_quality_report.json"));
    assert_eq!(j["manifest"]["inputs"][0]["path"], hostile[0]);
    assert_eq!(j["splits"][0]["name"], hostile[3]);
}

#[test]
fn several_splits_are_reported_apart() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 1200, 0.02, 5);
    let root = dir.path().join("out");
    build(
        &[&input.path],
        &root,
        &[
            "--splits",
            "train=0.7,val=0.2,test=0.1",
            "--shard-size",
            "100kB",
            "--batch-size",
            "100",
            "-q",
        ],
    )
    .expect_code(0);
    report(&root, &["-q", "-j", "3"]).expect_code(0);
    let j = read_json(&root.join("_quality_report.json"));
    let m = read_manifest(&root);
    let names: Vec<&str> = j["splits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["train", "val", "test"], "the order of --splits");
    let mut total = 0;
    for s in j["splits"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        let recs: Vec<&Value> = m["shards"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["split"] == name)
            .collect();
        let rows: u64 = recs.iter().map(|r| r["rows"].as_u64().unwrap()).sum();
        assert!(rows > 0, "{name} has rows");
        assert_eq!(s["rows"].as_u64(), Some(rows), "{name} rows");
        assert_eq!(
            s["rows"], m["splits"][name]["rows"],
            "{name}: manifest splits"
        );
        assert_eq!(
            s["shards"].as_u64(),
            Some(recs.len() as u64),
            "{name} shards"
        );
        assert_columns(&s["columns"], &oracle(&root, Some(name)));
        total += rows;
    }
    assert_eq!(j["columns"]["num_peaks"]["rows"].as_u64(), Some(total));
    assert_columns(&j["columns"], &oracle(&root, None));
    let html = fs::read_to_string(root.join("_quality_report.html")).unwrap();
    assert_self_contained(&html);
    for name in ["train", "val", "test"] {
        assert!(
            html.contains(&format!("class=\"lg\">{name}</text>")),
            "legend entry {name}"
        );
    }
}

#[test]
fn a_split_without_shards_is_listed_with_zero_rows() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path(), 300);
    edit_manifest(&root, |m| {
        m["splits"]["holdout"] = serde_json::json!({ "rows": 0, "shards": 0, "bytes": 0 });
    });
    report(&root, &["-q"]).expect_code(0);
    let j = read_json(&root.join("_quality_report.json"));
    let names: Vec<&str> = j["splits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["train", "holdout"]);
    assert_eq!(j["splits"][1]["rows"].as_u64(), Some(0));
    assert_eq!(j["splits"][1]["columns"]["rt"]["rows"].as_u64(), Some(0));
}

#[test]
fn a_root_without_shards_still_gives_every_chart() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path(), 300);
    edit_manifest(&root, |m| {
        m["shards"] = Value::Array(Vec::new());
    });
    report(&root, &["-q"]).expect_code(0);
    let j = read_json(&root.join("_quality_report.json"));
    assert_eq!(j["columns"]["num_peaks"]["rows"].as_u64(), Some(0));
    assert!(j["columns"]["rt"]["quantiles"]["p50"].is_null());
    // The manifest's `splits` still names train: listed, with no rows.
    assert_eq!(j["splits"][0]["name"], "train");
    assert_eq!(j["splits"][0]["rows"].as_u64(), Some(0));
    let html = fs::read_to_string(root.join("_quality_report.html")).unwrap();
    assert_self_contained(&html);
    assert!(html.contains("no data"));
}

#[test]
fn unusable_roots_exit_2_and_unreadable_shards_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    // No such directory; an empty one; an interrupted run; a manifest that is not JSON.
    let run = report(&dir.path().join("nope"), &[]);
    run.expect_code(2);
    assert!(run.stderr.contains("no such directory"), "{}", run.stderr);
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let run = report(&empty, &[]);
    run.expect_code(2);
    let manifest = empty.join("_manifest.json");
    assert!(
        run.stderr.starts_with("msms quality-report: ")
            && run.stderr.contains(&manifest.display().to_string()),
        "{}",
        run.stderr
    );
    fs::create_dir(empty.join(".msms")).unwrap();
    fs::write(empty.join(".msms/checkpoint.json"), "{}").unwrap();
    let run = report(&empty, &[]);
    run.expect_code(2);
    assert!(run.stderr.contains("interrupted run"), "{}", run.stderr);
    fs::write(&manifest, "{ not json").unwrap();
    let run = report(&empty, &[]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("not an msms-shards manifest"),
        "{}",
        run.stderr
    );
    assert!(!empty.join("_quality_report.html").exists());

    // A shard path outside the root is not read.
    fs::create_dir(dir.path().join("a")).unwrap();
    let root = fresh_root(&dir.path().join("a"), 400);
    let pristine = read_manifest(&root);
    edit_manifest(&root, |m| {
        m["shards"][0]["path"] = "../../etc/passwd".into()
    });
    let run = report(&root, &[]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("not a relative path inside the root"),
        "{}",
        run.stderr
    );

    // A missing shard, a truncated one, and rows the manifest does not record: exit 1.
    edit_manifest(&root, |m| *m = pristine.clone());
    let rel = pristine["shards"][1]["path"].as_str().unwrap().to_string();
    let shard = root.join(&rel);
    let bytes = fs::read(&shard).unwrap();
    fs::remove_file(&shard).unwrap();
    let run = report(&root, &[]);
    run.expect_code(1);
    assert!(
        run.stderr.contains(&rel) && run.stderr.contains("msms verify"),
        "{}",
        run.stderr
    );
    fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
    let run = report(&root, &[]);
    run.expect_code(1);
    assert!(run.stderr.contains(&rel), "{}", run.stderr);
    fs::write(&shard, &bytes).unwrap();
    edit_manifest(&root, |m| {
        let r = m["shards"][1]["rows"].as_u64().unwrap();
        m["shards"][1]["rows"] = (r + 1).into();
    });
    let run = report(&root, &[]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("the manifest records"),
        "{}",
        run.stderr
    );
    assert!(
        !root.join("_quality_report.html").exists(),
        "nothing written on failure"
    );
    assert!(!root.join("_quality_report.json").exists());
}
