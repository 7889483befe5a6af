//! `msms inspect FILE.hdf5 [--json]`: its flags, help text, exit codes and the report as
//! printed (the library describing the file is [`crate::commands::inspect`]).
//!
//! Exit codes ([`run`]): 0 the file can be converted; 2 the file cannot be read or is not
//! HDF5 (a message naming it on stderr, nothing on stdout), or is HDF5 but cannot be
//! converted (the listing is still printed, or the JSON with `convertible: false` and
//! `refusal`, and the refusal goes to stderr).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;

use crate::commands::inspect::{inspect, DatasetReport, FilterReport, Report};
use crate::read::filters::FilterReader;
use crate::text::{human_bytes, thousands};

const AFTER_HELP: &str = "\
Prints, without converting anything:
  - every dataset of the root group: dtype, shape, chunk shape (or contiguous / compact),
    filters with parameters (e.g. shuffle, deflate(4), fletcher32, in pipeline order),
    stored bytes, raw bytes (shape x element size) and the ratio raw / stored;
  - the GeMS mapping build-shards detects (which dataset becomes which output column,
    pass-through columns, skipped objects), or why the file cannot be converted;
  - per dataset the decode path of --decode native: mapped (decoded in-process from a
    memory map) or the libhdf5 fallback with its reason;
  - an estimated conversion time on this machine (model in the output and the README).

Exit codes: 0 the file can be converted; 2 it cannot be read, is not HDF5 (message on
stderr), or is HDF5 but cannot be converted (listing printed, refusal on stderr).

Examples:
  msms inspect GeMS_C1_DreaMS.0.hdf5
  msms inspect GeMS_C1_DreaMS.0.hdf5 --json | jq '.datasets[] | {name, stored_bytes, raw_bytes}'
  msms inspect big.hdf5 --num-workers 48";

/// Arguments of `msms inspect`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct InspectArgs {
    /// The HDF5 file to describe.
    #[arg(value_name = "FILE.hdf5")]
    pub(crate) file: PathBuf,
    /// Print one JSON object on stdout instead of the report (stable field names, see
    /// `format_version`).
    #[arg(long)]
    pub(crate) json: bool,
    /// Workers to estimate the conversion time for (default: the local profile's,
    /// min(4, cores)).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) num_workers: Option<u32>,
}

/// `msms inspect`: print the report; 0 when the file can be converted, else 2.
pub(crate) fn run(a: InspectArgs) -> i32 {
    let report = match inspect(&a.file, a.num_workers.map(|n| n as usize)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("msms inspect: {e}");
            return 2;
        }
    };
    let out = if a.json {
        let mut s = serde_json::to_string_pretty(&report).expect("the report serialises");
        s.push('\n');
        s
    } else {
        human_text(&report)
    };
    // A closed pipe (`msms inspect F | head`) is not an error of the inspection.
    let _ = std::io::stdout().write_all(out.as_bytes());
    match &report.refusal {
        None => 0,
        Some(why) => {
            eprintln!("msms inspect: cannot convert: {why}");
            2
        }
    }
}

/// `(10000, 2, 128)`, `(10000,)`, `()`.
pub(crate) fn shape_text(s: &[u64]) -> String {
    match s {
        [x] => format!("({x},)"),
        _ => format!(
            "({})",
            s.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// `shuffle, deflate(4), fletcher32` (pipeline order), or `-`.
pub(crate) fn filters_text(f: &[FilterReport]) -> String {
    if f.is_empty() {
        return "-".into();
    }
    f.iter()
        .map(|f| {
            let p = &f.params;
            let shown: &[u32] = match f.id {
                // deflate: the level.
                1 => &p[..p.len().min(1)],
                // shuffle (element size), fletcher32, n-bit: nothing a user chose.
                2 | 3 | 5 => &[],
                // szip: options mask, pixels per block; scale-offset: type, factor.
                4 | 6 => &p[..p.len().min(2)],
                _ => &p[..p.len().min(6)],
            };
            let named = if shown.is_empty() {
                f.name.clone()
            } else {
                let vals: Vec<String> = shown.iter().map(u32::to_string).collect();
                format!(
                    "{}({}{})",
                    f.name,
                    vals.join(", "),
                    if f.id > 6 && p.len() > 6 { ", …" } else { "" }
                )
            };
            // Only the filters past the three everyone has say who reads them.
            match (f.id, f.reader) {
                (_, FilterReader::None) => format!("{named} [id {}: msms cannot read it]", f.id),
                (1..=3, _) => named,
                (_, FilterReader::Native) => format!("{named} [read by msms]"),
                (_, FilterReader::Libhdf5) => format!("{named} [read by libhdf5]"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `0.042 s`, `4.6 s`, `512 s (8.5 min)`.
fn seconds_text(s: f64) -> String {
    let base = if s < 0.1 {
        format!("{s:.3} s")
    } else if s < 10.0 {
        format!("{s:.2} s")
    } else if s < 100.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    };
    if s >= 7200.0 {
        format!("{base} ({:.1} h)", s / 3600.0)
    } else if s >= 120.0 {
        format!("{base} ({:.1} min)", s / 60.0)
    } else {
        base
    }
}

fn ratio_text(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}x"))
}

/// The report as printed without `--json`.
pub(crate) fn human_text(r: &Report) -> String {
    let mut out = String::new();
    file_line(&mut out, r);
    dataset_table(&mut out, r);
    dataset_notes(&mut out, r);
    mapping_section(&mut out, r);
    decode_section(&mut out, r);
    verdict(&mut out, r);
    out
}

/// `FILE: HDF5, SIZE (N bytes), K datasets, other objects: ...`.
fn file_line(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "{}: HDF5, {} ({} bytes), {} dataset{}{}",
        r.path,
        human_bytes(r.file_bytes),
        r.file_bytes,
        r.datasets.len(),
        if r.datasets.len() == 1 { "" } else { "s" },
        if r.other_objects.is_empty() {
            String::new()
        } else {
            format!(
                ", other objects: {}",
                r.other_objects
                    .iter()
                    .map(|o| format!("{} ({})", o.name, o.kind))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
}

/// Columns of the dataset table.
const TABLE_HEADER: [&str; 8] = [
    "dataset", "dtype", "shape", "chunks", "filters", "stored", "raw", "ratio",
];

/// The dataset table's rows: one per dataset, then the total.
fn table_rows(r: &Report) -> Vec<[String; 8]> {
    let mut rows: Vec<[String; 8]> = r
        .datasets
        .iter()
        .map(|d| {
            [
                d.name.clone(),
                d.dtype.clone(),
                shape_text(&d.shape),
                match (&d.chunk_shape, d.layout) {
                    (Some(c), _) => shape_text(c),
                    (None, l) => l.to_string(),
                },
                filters_text(&d.filters),
                d.stored_bytes.map_or("?".into(), |b| b.to_string()),
                d.raw_bytes.map_or("?".into(), |b| b.to_string()),
                ratio_text(d.ratio),
            ]
        })
        .collect();
    rows.push([
        "total".into(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        r.totals.stored_bytes.to_string(),
        r.totals.raw_bytes.to_string(),
        ratio_text(r.totals.ratio),
    ]);
    rows
}

/// The dataset table: header, a row per dataset, a rule, the total.
fn dataset_table(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "\ndatasets (root group; bytes; ratio = raw / stored; filters in pipeline order):"
    );
    let rows = table_rows(r);
    let mut width = TABLE_HEADER.map(str::len);
    for row in &rows {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String; 8]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            let pad = w - c.chars().count();
            // Numbers right-aligned, text left-aligned.
            if i >= 5 {
                s.push_str(&" ".repeat(pad + 2));
                s.push_str(c);
            } else {
                s.push_str("  ");
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            }
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&TABLE_HEADER.map(str::to_string)));
    let n = rows.len();
    for (i, row) in rows.iter().enumerate() {
        if i + 1 == n {
            let rule: usize = width.iter().map(|w| w + 2).sum::<usize>() - 2;
            let _ = writeln!(out, "  {}", "-".repeat(rule));
        }
        let _ = writeln!(out, "{}", line(row));
    }
}

/// Notes under the table: string sizes, errors, unallocated chunks.
fn dataset_notes(out: &mut String, r: &Report) {
    if r.datasets.iter().any(|d| d.dtype == "vlen-str") {
        let _ = writeln!(
            out,
            "  vlen-str: stored and raw count 16-byte heap references; the strings are in the global heap"
        );
    }
    for d in &r.datasets {
        if let Some(e) = &d.error {
            let _ = writeln!(out, "  {}: {e}", d.name);
        }
        if let Some(c) = d.chunks.filter(|c| c.allocated != c.total) {
            let _ = writeln!(
                out,
                "  {}: {} of {} chunks allocated (the rest read as fill values)",
                d.name, c.allocated, c.total
            );
        }
    }
}

/// The GeMS mapping as `build-shards` prints it, or `none`.
fn mapping_section(out: &mut String, r: &Report) {
    match &r.mapping_text {
        Some(text) => {
            let _ = writeln!(out, "\nGeMS mapping (output column <- dataset):");
            for l in text.lines() {
                let _ = writeln!(out, "  {l}");
            }
        }
        None => {
            let _ = writeln!(out, "\nGeMS mapping: none");
        }
    }
}

/// The decode path of every dataset read, in mapping order.
fn decode_section(out: &mut String, r: &Report) {
    // In mapping order: the spectrum tensor, the fixed columns, the pass-through columns.
    let order: Vec<&str> = r
        .mapping
        .iter()
        .flat_map(|m| {
            m.columns
                .iter()
                .filter_map(|c| c.dataset.as_deref())
                .chain(m.passthrough.iter().map(|p| p.dataset.as_str()))
        })
        .collect();
    let mut read: Vec<&DatasetReport> = r.datasets.iter().filter(|d| d.decode.is_some()).collect();
    read.sort_by_key(|d| order.iter().position(|n| *n == d.name));
    if read.is_empty() {
        return;
    }
    let _ = writeln!(out, "\ndecode paths (--decode native):");
    let w = read
        .iter()
        .map(|d| d.name.chars().count())
        .max()
        .unwrap_or(0);
    for d in &read {
        let p = d.decode.as_ref().expect("filtered");
        let text = match (p.path, p.fallback) {
            ("mapped", _) => {
                // Decode order: the reverse of the pipeline.
                let f: Vec<&str> = d.filters.iter().rev().map(|f| f.name.as_str()).collect();
                if f.is_empty() {
                    "mapped (no filters: copied from the map in-process)".to_string()
                } else {
                    format!("mapped ({} decoded in-process)", f.join("+"))
                }
            }
            (_, true) => format!("libhdf5 fallback: {}", p.detail),
            _ => format!("libhdf5 ({})", p.detail),
        };
        let _ = writeln!(out, "  {:<w$}  {text}", d.name);
    }
}

/// The estimated conversion time, then whether the file can be converted.
fn verdict(out: &mut String, r: &Report) {
    if let Some(e) = &r.estimate {
        let _ = writeln!(
            out,
            "\nestimated conversion: ~{} with {} worker{} ({}), ~{} per 100k spectra ({}/s)",
            seconds_text(e.seconds),
            e.workers,
            if e.workers == 1 { "" } else { "s" },
            e.workers_from,
            seconds_text(e.seconds_per_100k),
            thousands(e.spectra_per_second as u64),
        );
        let _ = writeln!(out, "  model: {}", e.model);
    }
    match &r.refusal {
        None => {
            let _ = writeln!(out, "\nconvertible: yes");
        }
        Some(why) => {
            let _ = writeln!(out, "\nconvertible: no: {why}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert_eq!(shape_text(&[10, 2, 128]), "(10, 2, 128)");
        assert_eq!(shape_text(&[10]), "(10,)");
        assert_eq!(shape_text(&[]), "()");
        let f = |name: &str, id, params: &[u32]| FilterReport {
            name: name.into(),
            id,
            params: params.to_vec(),
            reader: if id == 32001 {
                FilterReader::None
            } else if id > 6 {
                FilterReader::Native
            } else {
                FilterReader::Libhdf5
            },
        };
        assert_eq!(
            filters_text(&[
                f("shuffle", 2, &[8]),
                f("deflate", 1, &[4]),
                f("fletcher32", 3, &[])
            ]),
            "shuffle, deflate(4), fletcher32"
        );
        assert_eq!(
            filters_text(&[f("filter-32001", 32001, &[1, 2, 3, 4, 5, 6, 7])]),
            "filter-32001(1, 2, 3, 4, 5, 6, …) [id 32001: msms cannot read it]"
        );
        assert_eq!(
            filters_text(&[f("shuffle", 2, &[8]), f("lzf", 32000, &[4, 261, 524288])]),
            "shuffle, lzf(4, 261, 524288) [read by msms]"
        );
        assert_eq!(filters_text(&[]), "-");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(seconds_text(4.623), "4.62 s");
        assert_eq!(seconds_text(600.0), "600 s (10.0 min)");
    }
}
