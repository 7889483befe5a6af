//! The HTML page (`_quality_report.html`): self-contained (inline CSS and SVG, no scripts),
//! a header of facts, seven charts, the summary statistics, settings, profile and inputs.

use std::fmt::Write as _;

use super::display::{escape, percent, short_bytes, short_count, show_f64, show_num};
use super::json::{columns, JsonBin, JsonColumn, JsonColumns};
use super::svg::{Bar, HChart, Series, VChart, PALETTE};
use super::{
    Report, NUM_PEAKS_BIN, NUM_PEAKS_TOP, PRECURSOR_BIN_DA, PRECURSOR_TOP_DA, QUANTILES,
    REPORT_VERSION, RT_BIN_S, RT_TOP_S,
};
use crate::text::{human_bytes, thousands as group};

const CSS: &str = "\
:root{color-scheme:light;--fg:#1d1d1f;--muted:#5f6368;--line:#d9dce1;--card:#fff;--bg:#f5f6f8}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif}
main{max-width:1360px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:22px;margin:0 0 2px}
h2{font-size:15px;margin:0 0 2px}
.sub{color:var(--muted);margin:0 0 14px;overflow-wrap:anywhere}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:6px 18px;margin:0 0 16px;padding:12px 14px;background:var(--card);border:1px solid var(--line);border-radius:8px}
.facts div{min-width:0}
.facts dt{color:var(--muted);font-size:12px}
.facts dd{margin:0;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
code{font:12px/1.4 ui-monospace,'DejaVu Sans Mono',monospace}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}
figure{margin:0;padding:12px 14px 8px;background:var(--card);border:1px solid var(--line);border-radius:8px;min-width:0}
figcaption p{margin:0 0 4px;color:var(--muted);font-size:12px}
svg.chart{display:block;width:100%;height:auto}
svg text{font-family:system-ui,'DejaVu Sans',sans-serif;fill:#333}
svg .gl{stroke:#e6e8eb;stroke-width:1}
svg .axis{stroke:#555;stroke-width:1}
svg .yt{font-size:11px;text-anchor:end}
svg .xt{font-size:10.5px;text-anchor:middle}
svg .yl{font-size:12px;text-anchor:end}
svg .val{font-size:11px}
svg .at{font-size:12px;text-anchor:middle;fill:#555}
svg .lg{font-size:11px}
svg .empty{font-size:14px;text-anchor:middle;fill:#888}
svg .limit{stroke:#c0392b;stroke-width:1.5;stroke-dasharray:6 4}
svg .limitlabel{font-size:11px;text-anchor:end;fill:#c0392b}
svg rect:hover{opacity:.75}
section{margin-top:18px}
table{border-collapse:collapse;background:var(--card);border:1px solid var(--line);font-variant-numeric:tabular-nums;width:100%}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{background:#eef0f3;font-weight:600}
.wrap{overflow-x:auto}
td.text{text-align:left;white-space:normal;overflow-wrap:anywhere}
.two{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
footer{margin-top:22px;color:var(--muted);font-size:12px}
";

impl Report {
    /// The HTML page: self-contained, no scripts.
    pub(crate) fn to_html(&self) -> String {
        let charts = Charts::new(self);
        let mut h = String::with_capacity(64 * 1024);
        self.html_head(&mut h);
        self.html_header(&mut h);
        charts.render(&mut h);
        summary_table(&mut h, &charts.cols);
        self.settings_and_inputs(&mut h);
        self.footer(&mut h);
        h
    }

    /// From `<!DOCTYPE html>` to the opening `<main>`: title and style sheet.
    fn html_head(&self, h: &mut String) {
        let title = format!("msms quality report: {}", self.root);
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'; img-src data:\">\
             <link rel=\"icon\" href=\"data:,\">\
             <title>{}</title><style>{CSS}</style></head>\n<body><main>\n",
            escape(&title)
        );
    }

    /// The `<header>`: heading, provenance line and the facts list.
    fn html_header(&self, h: &mut String) {
        let m = &self.manifest;
        let _ = writeln!(
            h,
            "<header><h1>Quality report</h1><p class=\"sub\"><code>{}</code> · msms-shards \
             format {} · shards written by msms {} on {} · report by msms {}</p>",
            escape(&self.root),
            m.format_version,
            escape(&m.tool_version),
            escape(&m.run.created_at),
            env!("CARGO_PKG_VERSION"),
        );
        h.push_str("<dl class=\"facts\">");
        for (k, v) in &self.facts() {
            let _ = write!(h, "<div><dt>{}</dt><dd>{v}</dd></div>", escape(k));
        }
        h.push_str("</dl></header>\n");
    }

    /// The header's facts: name and value (HTML).
    fn facts(&self) -> Vec<(&'static str, String)> {
        let m = &self.manifest;
        let bytes: u64 = m.shards.iter().map(|s| s.bytes).sum();
        let c = &m.counts;
        let split_text: Vec<String> = (0..self.splits.len())
            .map(|i| format!("{} {}", self.splits[i], group(self.split_totals(i).0)))
            .collect();
        vec![
            (
                "dataset digest",
                format!("<code>{}</code>", escape(&m.dataset_digest)),
            ),
            (
                "config hash",
                format!("<code>{}</code>", escape(&m.config_hash)),
            ),
            (
                "tool version (shards / report)",
                format!(
                    "{} / {}",
                    escape(&m.tool_version),
                    env!("CARGO_PKG_VERSION")
                ),
            ),
            ("mode", escape(&m.mode)),
            ("spectra read", group(c.read)),
            (
                "written",
                format!("{} ({})", group(c.written), percent(c.written, c.read)),
            ),
            (
                "rejected",
                format!(
                    "{} ({})",
                    group(c.rejected_total),
                    percent(c.rejected_total, c.read)
                ),
            ),
            (
                "shards",
                format!("{} ({})", m.shards.len(), human_bytes(bytes)),
            ),
            (
                "splits",
                escape(&if split_text.is_empty() {
                    "none".to_string()
                } else {
                    split_text.join(", ")
                }),
            ),
            (
                "inputs",
                format!(
                    "{} file{}",
                    m.inputs.len(),
                    if m.inputs.len() == 1 { "" } else { "s" }
                ),
            ),
            (
                "shard size limit",
                self.size_limit.as_ref().map_or("not recorded".into(), |l| {
                    format!("{} ({} bytes)", escape(&l.0), group(l.1))
                }),
            ),
            (
                "run",
                escape(&format!(
                    "{} · {} workers, {} writers, decode {}",
                    m.run.created_at, m.run.num_workers, m.run.writers, m.run.decode
                )),
            ),
        ]
    }

    /// Settings and profile (key/value tables) beside the inputs table.
    fn settings_and_inputs(&self, h: &mut String) {
        let m = &self.manifest;
        h.push_str("<section class=\"two\"><div><h2>Settings</h2>");
        kv_table(h, &m.settings);
        h.push_str("<h2 style=\"margin-top:12px\">Profile</h2>");
        kv_table(h, &m.profile);
        h.push_str(
            "</div><div><h2>Inputs</h2><div class=\"wrap\"><table><thead><tr><th>path</th>\
             <th>spectra</th><th>bytes</th><th>first spectrum_id</th></tr></thead><tbody>",
        );
        for i in &m.inputs {
            let _ = write!(
                h,
                "<tr><td class=\"text\"><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&i.path),
                group(i.spectra),
                human_bytes(i.bytes),
                group(i.first_spectrum_id)
            );
        }
        h.push_str("</tbody></table></div></div></section>\n");
    }

    /// The footer and the end of the page.
    fn footer(&self, h: &mut String) {
        let _ = write!(
            h,
            "<footer>Written by <code>msms quality-report</code> {} from <code>{}</code>. \
             The numbers are also in the JSON report (report_version {REPORT_VERSION}). \
             Shards were read, not re-hashed: <code>msms verify</code> checks their digests.\
             </footer>\n</main></body></html>\n",
            env!("CARGO_PKG_VERSION"),
            escape(&self.root)
        );
    }
}

/// The table of summary statistics of the four columns.
fn summary_table(h: &mut String, cols: &JsonColumns) {
    h.push_str(
        "<section><h2>Summary statistics</h2><div class=\"wrap\"><table><thead><tr>\
         <th>column</th><th>unit</th><th>rows</th><th>null</th><th>non-finite</th>\
         <th>min</th>",
    );
    for p in QUANTILES {
        let _ = write!(h, "<th>p{p}</th>");
    }
    h.push_str("<th>max</th><th>mean</th></tr></thead><tbody>");
    for (name, col) in [
        ("num_peaks", &cols.num_peaks),
        ("precursor_mz", &cols.precursor_mz),
        ("charge", &cols.charge),
        ("rt", &cols.rt),
    ] {
        let _ = write!(
            h,
            "<tr><td><code>{name}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            col.unit,
            group(col.rows),
            group(col.null),
            group(col.non_finite),
            show_num(col.min)
        );
        for p in QUANTILES {
            let _ = write!(h, "<td>{}</td>", show_num(col.quantiles.get(p)));
        }
        let _ = write!(
            h,
            "<td>{}</td><td>{}</td></tr>",
            show_num(col.max),
            col.mean.map_or("–".into(), show_f64)
        );
    }
    h.push_str(
        "</tbody></table></div><p class=\"sub\">Quantiles are nearest-rank; precursor m/z \
         and rt quantiles are rounded down to 0.1 Da and 1 s.</p></section>\n",
    );
}

/// Tooltip value of a count of spectra.
fn spectra(n: u64) -> String {
    format!("{} spectra", group(n))
}

/// A column's count, median, mean, range and nulls, for a chart's note.
fn stats_line(col: &JsonColumn, unit: &str) -> String {
    format!(
        "{} values · median {}{unit} · mean {}{unit} · range {} to {}{unit}{}",
        group(col.count),
        show_num(col.quantiles.p50),
        col.mean.map_or("–".into(), show_f64),
        show_num(col.min),
        show_num(col.max),
        nulls_note(col)
    )
}

/// The seven charts of a report, drawn from its column summaries.
struct Charts<'a> {
    report: &'a Report,
    /// All rows.
    cols: JsonColumns,
    /// Per split, in the report's split order.
    split_cols: Vec<JsonColumns>,
    /// Per split, its colour.
    colors: Vec<&'static str>,
}

/// A float column's histogram (precursor m/z, retention time), with a `< 0` bar when
/// something is negative.
struct FloatChart<'s> {
    title: &'s str,
    note: String,
    x_title: &'s str,
    pick: fn(&JsonColumns) -> &JsonColumn,
    /// A tick label every this many regular bins.
    label_every: usize,
    /// Tick label of a bin's lower edge.
    tick: fn(i64) -> String,
    /// Tooltip heading of a bin.
    tip: fn(&JsonBin) -> String,
}

impl<'a> Charts<'a> {
    fn new(report: &'a Report) -> Charts<'a> {
        Charts {
            report,
            cols: columns(&report.all),
            split_cols: report.split_acc.iter().map(columns).collect(),
            colors: (0..report.splits.len())
                .map(|i| PALETTE[i % PALETTE.len()])
                .collect(),
        }
    }

    /// The grid of charts, in page order.
    fn render(&self, h: &mut String) {
        h.push_str("<div class=\"grid\">\n");
        self.peaks(h);
        self.precursor(h);
        self.charge(h);
        self.retention(h);
        self.rejections(h);
        self.split_sizes(h);
        self.shard_sizes(h);
        h.push_str("</div>\n");
    }

    /// One series per split, its values picked from the split's columns.
    fn series_of(&self, pick: &dyn Fn(&JsonColumns) -> Vec<u64>) -> Vec<Series<'a>> {
        (0..self.report.splits.len())
            .map(|i| Series {
                name: &self.report.splits[i],
                color: self.colors[i],
                values: pick(&self.split_cols[i]),
            })
            .collect()
    }

    /// 1. Peaks per spectrum.
    fn peaks(&self, h: &mut String) {
        let np = &self.cols.num_peaks;
        let bars: Vec<Bar> = np
            .bins
            .iter()
            .enumerate()
            .map(|(i, b)| Bar {
                label: (i % 4 == 0 || b.hi.is_none()).then(|| {
                    if b.hi.is_none() {
                        b.label.clone()
                    } else {
                        show_num(b.lo)
                    }
                }),
                tip: format!("{} peaks", b.label.replace('-', "–")),
                special: false,
            })
            .collect();
        figure(
            h,
            "Peaks per spectrum",
            &format!(
                "num_peaks in bins of {NUM_PEAKS_BIN}; the last bar is {NUM_PEAKS_TOP} (the GeMS cap) and above. {}",
                stats_line(np, "")
            ),
            &VChart {
                title: "Peaks per spectrum",
                x_title: "peaks per spectrum",
                y_title: "spectra",
                bars,
                series: self.series_of(&|c| c.num_peaks.bins.iter().map(|b| b.count).collect()),
                y_fmt: short_count,
                value_fmt: spectra,
                limit: None,
                min_step: 1.0,
                edge_labels: true,
            }
            .render(),
        );
    }

    /// 2. Precursor m/z.
    fn precursor(&self, h: &mut String) {
        self.float_chart(
            h,
            FloatChart {
                title: "Precursor m/z",
                note: format!(
                    "precursor_mz in {PRECURSOR_BIN_DA} Da bins; the last bar is {PRECURSOR_TOP_DA} Da and above. {}",
                    stats_line(&self.cols.precursor_mz, " Da")
                ),
                x_title: "precursor m/z (Da)",
                pick: |c| &c.precursor_mz,
                label_every: 8,
                tick: |v| v.to_string(),
                tip: |b| match (b.lo, b.hi) {
                    (None, _) => "below 0 Da".into(),
                    (Some(lo), None) => format!("{} Da and above", show_num(Some(lo))),
                    (Some(lo), Some(hi)) => {
                        format!("{}–{} Da", show_num(Some(lo)), show_num(Some(hi)))
                    }
                },
            },
        );
    }

    /// 4. Retention time.
    fn retention(&self, h: &mut String) {
        self.float_chart(
            h,
            FloatChart {
                title: "Retention time",
                note: format!(
                    "rt in seconds as stored, {} min ({RT_BIN_S} s) bins, axis in minutes; the last bar is {} min and above. {}",
                    RT_BIN_S / 60,
                    RT_TOP_S / 60,
                    stats_line(&self.cols.rt, " s")
                ),
                x_title: "retention time (min)",
                pick: |c| &c.rt,
                label_every: 5,
                tick: |v| (v / 60).to_string(),
                tip: |b| match (b.lo, b.hi) {
                    (None, _) => "below 0 s".into(),
                    (Some(lo), None) => format!(
                        "{} min ({} s) and above",
                        show_f64(lo.f64() / 60.0),
                        show_num(Some(lo))
                    ),
                    (Some(lo), Some(hi)) => format!(
                        "{}–{} min ({}–{} s)",
                        show_f64(lo.f64() / 60.0),
                        show_f64(hi.f64() / 60.0),
                        show_num(Some(lo)),
                        show_num(Some(hi))
                    ),
                },
            },
        );
    }

    /// A float column's histogram.
    fn float_chart(&self, h: &mut String, c: FloatChart<'_>) {
        let col = (c.pick)(&self.cols);
        // The `< 0` bar only when something is negative.
        let skip = usize::from(col.bins[0].count == 0);
        let bars: Vec<Bar> = col
            .bins
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(i, b)| Bar {
                label: if i == 0 {
                    Some(b.label.clone())
                } else if b.hi.is_none() {
                    Some(format!("{}+", (c.tick)(b.lo.map_or(0, |n| n.f64() as i64))))
                } else {
                    ((i - 1) % c.label_every == 0)
                        .then(|| (c.tick)(b.lo.map_or(0, |n| n.f64() as i64)))
                },
                tip: (c.tip)(b),
                special: i == 0,
            })
            .collect();
        let pick = c.pick;
        figure(
            h,
            c.title,
            &c.note,
            &VChart {
                title: c.title,
                x_title: c.x_title,
                y_title: "spectra",
                bars,
                series: self
                    .series_of(&|s| pick(s).bins.iter().skip(skip).map(|b| b.count).collect()),
                y_fmt: short_count,
                value_fmt: spectra,
                limit: None,
                min_step: 1.0,
                edge_labels: true,
            }
            .render(),
        );
    }

    /// 3. Charge: categorical, null first.
    fn charge(&self, h: &mut String) {
        let ch = &self.cols.charge;
        let mut bars = vec![Bar {
            label: Some("null".into()),
            tip: "charge null (not stored)".into(),
            special: true,
        }];
        let start = usize::from(ch.bins[0].count == 0);
        for b in &ch.bins[start..] {
            bars.push(Bar {
                label: Some(b.label.clone()),
                tip: match b.label.as_str() {
                    "0" => "charge 0 (unknown)".into(),
                    "<0" => "charge below 0".into(),
                    l => format!("charge {l}"),
                },
                special: b.label == "<0",
            });
        }
        let charge_values = |c: &JsonColumns| {
            let mut v = vec![c.charge.null];
            v.extend(c.charge.bins[start..].iter().map(|b| b.count));
            v
        };
        figure(
            h,
            "Charge",
            &format!(
                "precursor charge as stored; null: no charge stored, 0: unknown. Values: {}.",
                ch.values
                    .as_ref()
                    .map(|v| {
                        v.iter()
                            .map(|x| format!("{} × {}", x.value, group(x.count)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "none".into())
            ),
            &VChart {
                title: "Charge",
                x_title: "charge",
                y_title: "spectra",
                bars,
                series: self.series_of(&charge_values),
                y_fmt: short_count,
                value_fmt: spectra,
                limit: None,
                min_step: 1.0,
                edge_labels: false,
            }
            .render(),
        );
    }

    /// 5. Rejection reasons.
    fn rejections(&self, h: &mut String) {
        let c = &self.report.manifest.counts;
        let rejected = self.report.rejected();
        figure(
            h,
            "Rejection reasons",
            &format!(
                "spectra not written, by the first rule they break (manifest counts): {} of {} read ({}).",
                group(c.rejected_total),
                group(c.read),
                percent(c.rejected_total, c.read)
            ),
            &HChart {
                title: "Rejection reasons",
                x_title: "spectra rejected",
                rows: rejected
                    .iter()
                    .map(|(r, n)| {
                        (
                            r.clone(),
                            *n,
                            format!("{r}: {} spectra ({} of read)", group(*n), percent(*n, c.read)),
                        )
                    })
                    .collect(),
                colors: vec![PALETTE[5]; rejected.len()],
            }
            .render(),
        );
    }

    /// 6. Split sizes.
    fn split_sizes(&self, h: &mut String) {
        let r = self.report;
        let total_rows: u64 = r.manifest.shards.iter().map(|s| s.rows).sum();
        figure(
            h,
            "Split sizes",
            &format!(
                "rows per split (from the manifest's shard records, checked against the rows read): {} splits, {} rows.",
                r.splits.len(),
                group(total_rows)
            ),
            &HChart {
                title: "Split sizes",
                x_title: "spectra (rows)",
                rows: (0..r.splits.len())
                    .map(|i| {
                        let (rows, shards, bytes) = r.split_totals(i);
                        (
                            r.splits[i].clone(),
                            rows,
                            format!(
                                "{}: {} rows ({} of written), {} shard{}, {}",
                                r.splits[i],
                                group(rows),
                                percent(rows, total_rows),
                                shards,
                                if shards == 1 { "" } else { "s" },
                                human_bytes(bytes)
                            ),
                        )
                    })
                    .collect(),
                colors: self.colors.clone(),
            }
            .render(),
        );
    }

    /// 7. Shard sizes, with the size limit as a line.
    fn shard_sizes(&self, h: &mut String) {
        let r = self.report;
        let m = &r.manifest;
        let n_shards = m.shards.len();
        let stride = (n_shards / 16).max(1);
        let bars: Vec<Bar> = m
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| Bar {
                label: (i % stride == 0).then(|| i.to_string()),
                tip: format!("{} ({}, {} rows)", s.path, s.split, group(s.rows)),
                special: false,
            })
            .collect();
        let series: Vec<Series<'_>> = (0..r.splits.len())
            .map(|k| Series {
                name: &r.splits[k],
                color: self.colors[k],
                values: m
                    .shards
                    .iter()
                    .map(|s| if s.split == r.splits[k] { s.bytes } else { 0 })
                    .collect(),
            })
            .collect();
        let limit_note = match &r.size_limit {
            Some((text, b)) => format!(
                "the dashed line is the shard size limit, {text} ({} bytes)",
                group(*b)
            ),
            None => "no shard size limit recorded".into(),
        };
        figure(
            h,
            "Shard sizes",
            &format!(
                "bytes per shard, in manifest order; {limit_note}. Largest {}, smallest {}.",
                human_bytes(m.shards.iter().map(|s| s.bytes).max().unwrap_or(0)),
                human_bytes(m.shards.iter().map(|s| s.bytes).min().unwrap_or(0))
            ),
            &VChart {
                title: "Shard sizes",
                x_title: "shard (manifest order)",
                y_title: "bytes",
                bars,
                series,
                y_fmt: short_bytes,
                value_fmt: |b| format!("{} bytes ({})", group(b), human_bytes(b)),
                limit: r
                    .size_limit
                    .as_ref()
                    .map(|(text, b)| (*b, format!("limit {text}"))),
                min_step: 1.0,
                edge_labels: false,
            }
            .render(),
        );
    }
}

fn nulls_note(col: &JsonColumn) -> String {
    let mut parts = Vec::new();
    if col.null > 0 {
        parts.push(format!("{} null", group(col.null)));
    }
    if col.non_finite > 0 {
        parts.push(format!("{} non-finite", group(col.non_finite)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" · {} (not drawn)", parts.join(", "))
    }
}

/// A chart in a `<figure>` with its title and note (`note` is plain text).
fn figure(h: &mut String, title: &str, note: &str, svg: &str) {
    let _ = writeln!(
        h,
        "<figure><figcaption><h2>{}</h2><p>{}</p></figcaption>{svg}</figure>",
        escape(title),
        escape(note)
    );
}

/// A two-column table of a JSON object's keys and values (values as compact JSON).
fn kv_table(h: &mut String, v: &serde_json::Value) {
    h.push_str("<div class=\"wrap\"><table><tbody>");
    match v.as_object() {
        Some(map) => {
            for (k, v) in map {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let _ = write!(
                    h,
                    "<tr><td><code>{}</code></td><td class=\"text\"><code>{}</code></td></tr>",
                    escape(k),
                    escape(&text)
                );
            }
        }
        None => {
            let _ = write!(
                h,
                "<tr><td class=\"text\"><code>{}</code></td></tr>",
                escape(&v.to_string())
            );
        }
    }
    h.push_str("</tbody></table></div>");
}
