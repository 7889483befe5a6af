//! The JSON document (`_quality_report.json`, see the module documentation of
//! [`super`]) and the column summaries the HTML page draws from.

use serde::Serialize;

use super::accumulate::{Acc, FloatAcc, IntAcc, Sums};
use super::{
    Report, CHARGE_TOP, NUM_PEAKS_BIN, NUM_PEAKS_TOP, PRECURSOR_BIN_DA, QUANTILES, REPORT_FORMAT,
    REPORT_VERSION, RT_BIN_S,
};
use crate::format::manifest::InputRecord;

impl Report {
    /// The JSON document (pretty, trailing newline).
    pub(crate) fn to_json(&self) -> String {
        let m = &self.manifest;
        let bytes: Vec<u64> = m.shards.iter().map(|s| s.bytes).collect();
        let doc = JsonReport {
            format: REPORT_FORMAT,
            report_version: REPORT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION"),
            root: self.root.clone(),
            manifest: JsonManifest {
                format_version: m.format_version,
                tool_version: m.tool_version.clone(),
                config_hash: m.config_hash.clone(),
                dataset_digest: m.dataset_digest.clone(),
                mode: m.mode.clone(),
                created_at: m.run.created_at.clone(),
                settings: m.settings.clone(),
                profile: m.profile.clone(),
                inputs: m.inputs.clone(),
            },
            counts: JsonCounts {
                read: m.counts.read,
                written: m.counts.written,
                rejected_total: m.counts.rejected_total,
            },
            rejected: self
                .rejected()
                .into_iter()
                .map(|(reason, count)| JsonReason { reason, count })
                .collect(),
            splits: (0..self.splits.len())
                .map(|i| {
                    let (rows, shards, bytes) = self.split_totals(i);
                    JsonSplit {
                        name: self.splits[i].clone(),
                        shards,
                        rows,
                        bytes,
                        columns: columns(&self.split_acc[i]),
                    }
                })
                .collect(),
            shards: JsonShards {
                count: m.shards.len() as u64,
                bytes_total: bytes.iter().sum(),
                bytes_min: bytes.iter().copied().min(),
                bytes_max: bytes.iter().copied().max(),
                size_limit: self.size_limit.as_ref().map(|l| l.0.clone()),
                size_limit_bytes: self.size_limit.as_ref().map(|l| l.1),
                over_limit: self
                    .size_limit
                    .as_ref()
                    .map_or(0, |l| bytes.iter().filter(|&&b| b > l.1).count() as u64),
                items: m
                    .shards
                    .iter()
                    .map(|s| JsonShard {
                        path: s.path.clone(),
                        split: s.split.clone(),
                        rows: s.rows,
                        bytes: s.bytes,
                    })
                    .collect(),
            },
            columns: columns(&self.all),
        };
        let mut s = serde_json::to_string_pretty(&doc).expect("report serialises");
        s.push('\n');
        s
    }
}

#[derive(Serialize)]
struct JsonReport {
    format: &'static str,
    report_version: u32,
    tool_version: &'static str,
    root: String,
    manifest: JsonManifest,
    counts: JsonCounts,
    rejected: Vec<JsonReason>,
    splits: Vec<JsonSplit>,
    shards: JsonShards,
    columns: JsonColumns,
}

#[derive(Serialize)]
struct JsonManifest {
    format_version: u32,
    tool_version: String,
    config_hash: String,
    dataset_digest: String,
    mode: String,
    created_at: String,
    settings: serde_json::Value,
    profile: serde_json::Value,
    inputs: Vec<InputRecord>,
}

#[derive(Serialize)]
struct JsonCounts {
    read: u64,
    written: u64,
    rejected_total: u64,
}

#[derive(Serialize)]
struct JsonReason {
    reason: String,
    count: u64,
}

#[derive(Serialize)]
struct JsonSplit {
    name: String,
    shards: u64,
    rows: u64,
    bytes: u64,
    columns: JsonColumns,
}

#[derive(Serialize)]
struct JsonShards {
    count: u64,
    bytes_total: u64,
    bytes_min: Option<u64>,
    bytes_max: Option<u64>,
    size_limit: Option<String>,
    size_limit_bytes: Option<u64>,
    over_limit: u64,
    items: Vec<JsonShard>,
}

#[derive(Serialize)]
struct JsonShard {
    path: String,
    split: String,
    rows: u64,
    bytes: u64,
}

#[derive(Serialize)]
pub(crate) struct JsonColumns {
    pub(crate) num_peaks: JsonColumn,
    pub(crate) precursor_mz: JsonColumn,
    pub(crate) charge: JsonColumn,
    pub(crate) rt: JsonColumn,
}

/// An integer or a float, printed as such.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub(crate) fn f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct JsonColumn {
    pub(crate) unit: &'static str,
    pub(crate) rows: u64,
    pub(crate) null: u64,
    pub(crate) non_finite: u64,
    pub(crate) count: u64,
    pub(crate) min: Option<Num>,
    pub(crate) max: Option<Num>,
    pub(crate) mean: Option<f64>,
    pub(crate) quantiles: JsonQuantiles,
    pub(crate) bins: Vec<JsonBin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) values: Option<Vec<JsonValue>>,
}

#[derive(Serialize)]
pub(crate) struct JsonQuantiles {
    pub(crate) p01: Option<Num>,
    pub(crate) p05: Option<Num>,
    pub(crate) p25: Option<Num>,
    pub(crate) p50: Option<Num>,
    pub(crate) p75: Option<Num>,
    pub(crate) p95: Option<Num>,
    pub(crate) p99: Option<Num>,
}

impl JsonQuantiles {
    fn new(q: impl Fn(f64) -> Option<Num>) -> JsonQuantiles {
        let v: Vec<Option<Num>> = QUANTILES.iter().map(|&p| q(f64::from(p) / 100.0)).collect();
        JsonQuantiles {
            p01: v[0],
            p05: v[1],
            p25: v[2],
            p50: v[3],
            p75: v[4],
            p95: v[5],
            p99: v[6],
        }
    }

    pub(crate) fn get(&self, percent: u32) -> Option<Num> {
        match percent {
            1 => self.p01,
            5 => self.p05,
            25 => self.p25,
            50 => self.p50,
            75 => self.p75,
            95 => self.p95,
            99 => self.p99,
            _ => None,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct JsonBin {
    pub(crate) label: String,
    pub(crate) lo: Option<Num>,
    pub(crate) hi: Option<Num>,
    pub(crate) count: u64,
}

#[derive(Serialize)]
pub(crate) struct JsonValue {
    pub(crate) value: i64,
    pub(crate) count: u64,
}

/// Summary of an integer column; `bins` as (label, lo, hi, count).
fn int_column(
    unit: &'static str,
    rows: u64,
    acc: &IntAcc,
    bins: Vec<JsonBin>,
    values: bool,
) -> JsonColumn {
    let count = acc.count();
    let sum: i128 = acc
        .values()
        .map(|(v, c)| i128::from(v) * i128::from(c))
        .sum();
    let min = acc.values().next().map(|(v, _)| Num::Int(v));
    let max = acc.values().last().map(|(v, _)| Num::Int(v));
    JsonColumn {
        unit,
        rows,
        null: acc.null,
        non_finite: 0,
        count,
        min,
        max,
        mean: (count > 0).then(|| sum as f64 / count as f64),
        quantiles: JsonQuantiles::new(|q| acc.quantile(q).map(Num::Int)),
        bins,
        values: values.then(|| {
            acc.values()
                .map(|(value, count)| JsonValue { value, count })
                .collect()
        }),
    }
}

/// Summary of a float column with its chart bins (`< 0`, regular bins of `width` units,
/// overflow).
fn float_column(unit: &'static str, rows: u64, acc: &FloatAcc, sum: f64, width: u32) -> JsonColumn {
    let counts = acc.bins();
    let n = acc.fine.bins as u32;
    let mut bins = Vec::with_capacity(counts.len());
    bins.push(JsonBin {
        label: "<0".into(),
        lo: None,
        hi: Some(Num::Int(0)),
        count: counts[0],
    });
    for b in 0..n {
        bins.push(JsonBin {
            label: format!("{}-{}", b * width, (b + 1) * width),
            lo: Some(Num::Int(i64::from(b * width))),
            hi: Some(Num::Int(i64::from((b + 1) * width))),
            count: counts[b as usize + 1],
        });
    }
    bins.push(JsonBin {
        label: format!("{}+", n * width),
        lo: Some(Num::Int(i64::from(n * width))),
        hi: None,
        count: counts[n as usize + 1],
    });
    let count = acc.count();
    JsonColumn {
        unit,
        rows,
        null: acc.null,
        non_finite: acc.non_finite,
        count,
        min: acc.min.map(Num::Float),
        max: acc.max.map(Num::Float),
        mean: (count > 0).then(|| sum / count as f64),
        quantiles: JsonQuantiles::new(|q| acc.quantile(q).map(Num::Float)),
        bins,
        values: None,
    }
}

pub(crate) fn columns((acc, sums): &(Acc, Sums)) -> JsonColumns {
    let np = &acc.num_peaks;
    let mut bins = Vec::new();
    let per = NUM_PEAKS_BIN as usize;
    let top = NUM_PEAKS_TOP as usize;
    for b in 0..top / per {
        let lo = b * per;
        bins.push(JsonBin {
            label: format!("{}-{}", lo, lo + per - 1),
            lo: Some(Num::Int(lo as i64)),
            hi: Some(Num::Int((lo + per) as i64)),
            count: np.counts.iter().skip(lo).take(per).sum(),
        });
    }
    bins.push(JsonBin {
        label: format!("{top}+"),
        lo: Some(Num::Int(top as i64)),
        hi: None,
        count: np.counts.iter().skip(top).sum(),
    });
    let num_peaks = int_column("peaks", acc.rows, np, bins, false);

    let ch = &acc.charge;
    let count_in = |lo: i64, hi: i64| -> u64 {
        ch.values()
            .filter(|&(v, _)| v >= lo && v < hi)
            .map(|(_, c)| c)
            .sum()
    };
    let mut bins = vec![JsonBin {
        label: "<0".into(),
        lo: None,
        hi: Some(Num::Int(0)),
        count: count_in(i64::MIN, 0),
    }];
    for v in 0..CHARGE_TOP {
        bins.push(JsonBin {
            label: v.to_string(),
            lo: Some(Num::Int(v)),
            hi: Some(Num::Int(v + 1)),
            count: count_in(v, v + 1),
        });
    }
    bins.push(JsonBin {
        label: format!("{CHARGE_TOP}+"),
        lo: Some(Num::Int(CHARGE_TOP)),
        hi: None,
        count: count_in(CHARGE_TOP, i64::MAX),
    });
    let charge = int_column("e", acc.rows, ch, bins, true);
    JsonColumns {
        num_peaks,
        precursor_mz: float_column(
            "Da",
            acc.rows,
            &acc.precursor,
            sums.precursor,
            PRECURSOR_BIN_DA,
        ),
        charge,
        rt: float_column("s", acc.rows, &acc.rt, sums.rt, RT_BIN_S),
    }
}
