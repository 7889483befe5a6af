//! `msms inspect FILE.hdf5 [--json]`: what an HDF5 file holds and what `msms build-shards`
//! would do with it, without converting anything.
//!
//! The report ([`Report`], printed by `crate::cli::inspect` as text or as JSON) has four parts:
//!
//! 1. **Datasets**: every dataset of the root group with its dtype, shape, storage (chunk
//!    shape, `contiguous` or `compact`), filter pipeline with parameters (`deflate(4)`),
//!    stored bytes (the chunks actually allocated, or the contiguous extent), raw bytes
//!    (product of the shape × the stored element size; variable-length strings count their
//!    16-byte heap references, the strings themselves live in the global heap and are in
//!    neither figure) and the ratio raw ÷ stored. Groups and other objects of the root group
//!    are listed by name (their contents are per file, not per spectrum, and never read).
//! 2. **GeMS mapping**: [`FileMapping::detect`], exactly as `build-shards` prints it at start,
//!    or the reason the file is refused.
//! 3. **Decode paths** under `--decode native`: for each dataset read, `mapped` (decoded from
//!    the memory map by the workers) or the libhdf5 fallback with the same reason the
//!    pipeline prints as a `notice:` ([`crate::read::MappedColumns`]); strings always go
//!    through libhdf5.
//! 4. **Estimated conversion time** ([`Estimate`], model documented there).
//!
//! [`inspect`] fails only when the file cannot be read or is not HDF5; a file `build-shards`
//! refuses gives a report with `convertible: false` and the `refusal`.

use std::path::Path;

use msms_kernels::Orientation;
use serde::Serialize;

use crate::read::h5::{self, DType, DatasetInfo, Layout, ObjectKind, MAX_CHUNK_RANK};
use crate::read::{Decode, FileMapping, InputError, MappedColumns, PeakElem, ValueKind};
use crate::text::thousands;

/// Version of the JSON object printed by `--json` (bumped when a field changes meaning or
/// is removed; new fields may appear without a bump).
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Most chunks whose index is read to count stored bytes (48 bytes of memory each); a
/// dataset declaring more, or more than the file has bytes, is reported without them.
pub(crate) const MAX_INDEXED_CHUNKS: u64 = 1 << 22;

/// Everything `msms inspect` reports about one file (the `--json` object).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Report {
    /// Always `msms-inspect`.
    pub(crate) format: &'static str,
    /// [`FORMAT_VERSION`].
    pub(crate) format_version: u32,
    /// Version of msms-shards.
    pub(crate) tool_version: &'static str,
    /// The file, as given.
    pub(crate) path: String,
    /// Its size in bytes.
    pub(crate) file_bytes: u64,
    /// Every dataset of the root group, in name order.
    pub(crate) datasets: Vec<DatasetReport>,
    /// Groups and other non-dataset objects of the root group.
    pub(crate) other_objects: Vec<OtherObject>,
    /// Sums over the datasets.
    pub(crate) totals: Totals,
    /// Whether `build-shards` accepts the file.
    pub(crate) convertible: bool,
    /// Why it does not (the message `build-shards` refuses it with).
    pub(crate) refusal: Option<String>,
    /// The detected mapping (when the file is GeMS-like).
    pub(crate) mapping: Option<MappingReport>,
    /// Estimated conversion time (when convertible).
    pub(crate) estimate: Option<Estimate>,
    /// The mapping as `build-shards` prints it at start (not in the JSON).
    #[serde(skip)]
    pub(crate) mapping_text: Option<String>,
}

/// One dataset.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct DatasetReport {
    /// Path in the file (root-group datasets: their name).
    pub(crate) name: String,
    /// `float64`, `int8`, `uint32`, `S64` (fixed-length string), `vlen-str`, `vlen-bytes`,
    /// `bool`, `enum8`, `compound{a: int32, b: float64[3]}`, or the HDF5 class name of
    /// anything else (`reference`, `opaque`, …).
    pub(crate) dtype: String,
    /// Dimensions.
    pub(crate) shape: Vec<u64>,
    /// `chunked`, `contiguous`, `compact` or `other` (virtual, external).
    pub(crate) layout: &'static str,
    /// Chunk shape for chunked datasets, else null.
    pub(crate) chunk_shape: Option<Vec<u64>>,
    /// The filter pipeline in pipeline (write) order.
    pub(crate) filters: Vec<FilterReport>,
    /// Chunks allocated and declared (chunked datasets whose index was read), else null.
    pub(crate) chunks: Option<ChunkCount>,
    /// Bytes stored in the file (null when unknown: other layouts, too many chunks).
    pub(crate) stored_bytes: Option<u64>,
    /// Elements × stored element size (null for types without a fixed size).
    pub(crate) raw_bytes: Option<u64>,
    /// raw ÷ stored (null when either is unknown or nothing is stored).
    pub(crate) ratio: Option<f64>,
    /// The output column(s) it becomes, e.g. `mz, intensity, num_peaks` (null: not read).
    pub(crate) column: Option<String>,
    /// How `--decode native` reads it (null: not read).
    pub(crate) decode: Option<DecodePath>,
    /// What failed while describing it, if anything.
    pub(crate) error: Option<String>,
}

/// One filter of a pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct FilterReport {
    /// `deflate`, `shuffle`, `fletcher32`, `szip`, `nbit`, `scaleoffset` or `filter-<id>`.
    pub(crate) name: String,
    /// HDF5 filter id (deflate 1, shuffle 2, fletcher32 3, szip 4, …; 32000+ registered).
    pub(crate) id: i32,
    /// Client data values as stored (deflate: level; shuffle: element size).
    pub(crate) params: Vec<u32>,
    /// Who undoes it on the default `--decode native`: `native`, `libhdf5` or `none` (a
    /// conversion refuses the file).
    pub(crate) reader: crate::read::filters::FilterReader,
}

/// Allocated vs declared chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct ChunkCount {
    /// Chunks with storage.
    pub(crate) allocated: u64,
    /// Chunks of the full grid (the rest read as fill values).
    pub(crate) total: u64,
}

/// How a dataset is decoded under `--decode native`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct DecodePath {
    /// `mapped` or `libhdf5`.
    pub(crate) path: &'static str,
    /// A libhdf5 read the pipeline announces with a `notice:` (false for strings, which
    /// always go through libhdf5).
    pub(crate) fallback: bool,
    /// Mapped: storage and filters (`mapped, 3 chunks of [1024, 2, 128], deflate`);
    /// libhdf5: the reason.
    pub(crate) detail: String,
}

/// A non-dataset object of the root group.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct OtherObject {
    /// Its name.
    pub(crate) name: String,
    /// `group` or `other` (named datatype, dangling link).
    pub(crate) kind: &'static str,
}

/// Sums over every dataset (unknown sizes count as 0).
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Totals {
    /// Stored bytes.
    pub(crate) stored_bytes: u64,
    /// Raw bytes.
    pub(crate) raw_bytes: u64,
    /// raw ÷ stored.
    pub(crate) ratio: Option<f64>,
}

/// The detected mapping.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct MappingReport {
    /// Spectra (N).
    pub(crate) spectra: u64,
    /// The peak tensor.
    pub(crate) spectrum: SpectrumReport,
    /// Every fixed output column with its dataset (null: absent, written as nulls).
    pub(crate) columns: Vec<ColumnSource>,
    /// Pass-through columns.
    pub(crate) passthrough: Vec<PassReport>,
    /// Objects not converted, with the reason.
    pub(crate) skipped: Vec<Skipped>,
    /// Decoded bytes per spectrum as the pipeline budgets them.
    pub(crate) row_bytes: u64,
}

/// The spectrum tensor.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SpectrumReport {
    /// `spectrum` or `spectra`.
    pub(crate) dataset: String,
    /// `(N, 2, P)` or `(N, P, 2)`.
    pub(crate) orientation: &'static str,
    /// `float64` or `float32`.
    pub(crate) dtype: &'static str,
    /// P.
    pub(crate) peak_slots: usize,
}

/// A fixed output column and its source.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ColumnSource {
    /// Output column.
    pub(crate) column: &'static str,
    /// Dataset, or null.
    pub(crate) dataset: Option<String>,
}

/// A pass-through column.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PassReport {
    /// Dataset.
    pub(crate) dataset: String,
    /// Output column (`input_<name>` on a clash with a fixed column).
    pub(crate) column: String,
    /// Arrow type of the column, e.g. `Float32` or `FixedSizeList(1024 x Float32)`.
    pub(crate) data_type: String,
}

/// An object not converted.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Skipped {
    /// Its name.
    pub(crate) name: String,
    /// Why.
    pub(crate) reason: String,
}

/// Estimated wall time of `msms build-shards` for this file on this machine.
///
/// **Model.** Throughput constants measured end to end (README, Performance: release build,
/// 1M realistic spectra, default processing, zstd Parquet, SHA-256, input in the page cache,
/// on the project's 2-core reference VM), per input class of the spectrum dataset:
///
/// | class | 1 worker (r1) | 2 workers (r2) | libhdf5 reader (cap) |
/// |---|---|---|---|
/// | `deflate` (any chunked spectrum with deflate, with or without shuffle/fletcher32) | 134,200/s | 216,300/s | 101,800/s |
/// | `chunked` (chunked, no deflate) | 163,300/s | 225,400/s | 204,900/s |
/// | `contiguous` | 224,800/s | 309,400/s | 321,800/s |
///
/// `rate(w) = r1 × (1 + g × (w − 1)) × s`, with `g = r2 / r1 − 1` the measured gain of one
/// more worker (0.61 for deflate: the 2-worker efficiency 1.61× / 2), `w` the workers
/// (local profile: min(4, cores), or `--num-workers`), and the row factor
/// `s = 2240 / (2240 + 2 × max(0, row_bytes − 2240))` slowing files whose rows are wider
/// than the benchmark's (2240 decoded bytes: a (2, 128) float64 tensor plus the fixed
/// columns), each extra byte weighted twice: a 1024-wide float32 `DreaMS_embedding`
/// pass-through (4,104 bytes more per row, s = 0.21) measured 4.4–5× slower than the plain
/// gems file (100k spectra, 1 and 2 workers), its random floats costing more per byte than
/// the zero-padded peak tensor to inflate, encode and write. Narrower rows (float32 tensors)
/// are not assumed faster. When the spectrum dataset falls back to libhdf5, its single
/// reader thread caps the rate at the class's libhdf5 figure × s. Time = spectra ÷ rate.
/// Beyond 2 workers the gain is extrapolated; the figures are for an otherwise idle machine,
/// and a cold disk adds the file size ÷ the disk's read speed.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Estimate {
    /// Estimated seconds for the whole file.
    pub(crate) seconds: f64,
    /// Estimated seconds per 100,000 spectra.
    pub seconds_per_100k: f64,
    /// Estimated spectra per second.
    pub(crate) spectra_per_second: f64,
    /// Workers assumed.
    pub(crate) workers: usize,
    /// `local mode` (min(4, cores)) or `--num-workers`.
    pub(crate) workers_from: &'static str,
    /// Cores of this machine (`available_parallelism`).
    pub(crate) cores: usize,
    /// `deflate`, `chunked` or `contiguous`.
    pub(crate) input_class: &'static str,
    /// How the spectrum dataset is decoded: `mapped` or `libhdf5`.
    pub(crate) spectrum_decode: &'static str,
    /// Decoded bytes per spectrum ([`FileMapping::row_bytes`]).
    pub(crate) row_bytes: u64,
    /// The row-width factor `s` of the model.
    pub(crate) row_scale: f64,
    /// The model in one line.
    pub(crate) model: String,
}

/// Decoded bytes per row of the benchmark files (README, Performance).
pub(crate) const BENCH_ROW_BYTES: u64 = 2240;

/// Per input class: (name, r1, r2, libhdf5 cap), spectra per second.
const CLASSES: [(&str, f64, f64, f64); 3] = [
    ("deflate", 134_200.0, 216_300.0, 101_800.0),
    ("chunked", 163_300.0, 225_400.0, 204_900.0),
    ("contiguous", 224_800.0, 309_400.0, 321_800.0),
];

impl Estimate {
    /// The estimate for `rows` spectra of `row_bytes` each, of input class `class`
    /// (`deflate`, `chunked`, `contiguous`), with the spectrum dataset mapped or not.
    pub(crate) fn compute(
        rows: u64,
        row_bytes: u64,
        class: &'static str,
        mapped: bool,
        workers: usize,
        workers_from: &'static str,
        cores: usize,
    ) -> Estimate {
        let &(_, r1, r2, cap) = CLASSES.iter().find(|c| c.0 == class).unwrap_or(&CLASSES[0]);
        let w = workers.max(1);
        let gain = r2 / r1 - 1.0;
        let extra = row_bytes.saturating_sub(BENCH_ROW_BYTES) as f64;
        let row_scale = BENCH_ROW_BYTES as f64 / (BENCH_ROW_BYTES as f64 + 2.0 * extra);
        let mut rate = r1 * (1.0 + gain * (w - 1) as f64) * row_scale;
        let mut capped = String::new();
        if !mapped && rate > cap * row_scale {
            rate = cap * row_scale;
            capped = format!(", capped at libhdf5's {}/s", thousands(cap as u64));
        }
        let model = format!(
            "{} spectra / ({}/s per worker × (1 + {gain:.2} × ({w} − 1)) × row factor {row_scale:.2}{capped}); \
             {class} input, measured on the 2-core reference VM (README, Performance), input in the page cache",
            thousands(rows),
            thousands(r1 as u64),
        );
        Estimate {
            seconds: rows as f64 / rate,
            seconds_per_100k: 100_000.0 / rate,
            spectra_per_second: rate.round(),
            workers: w,
            workers_from,
            cores,
            input_class: class,
            spectrum_decode: if mapped { "mapped" } else { "libhdf5" },
            row_bytes,
            row_scale,
            model,
        }
    }
}

/// Describe `path`. `Err` only when the file cannot be read or is not HDF5; a file that
/// `build-shards` refuses gives `Ok` with `convertible: false`.
pub(crate) fn inspect(path: &Path, workers: Option<usize>) -> Result<Report, InputError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| InputError::new(path, None, format!("cannot read: {e}")))?;
    if meta.is_dir() {
        return Err(InputError::new(
            path,
            None,
            "is a directory, not an HDF5 file",
        ));
    }
    let file_bytes = meta.len();
    let (datasets, other_objects) = list_root(path, file_bytes)?;
    let stored: u64 = datasets.iter().filter_map(|d| d.stored_bytes).sum();
    let raw: u64 = datasets.iter().filter_map(|d| d.raw_bytes).sum();
    let mut report = Report {
        format: "msms-inspect",
        format_version: FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION"),
        path: path.display().to_string(),
        file_bytes,
        datasets,
        other_objects,
        totals: Totals {
            stored_bytes: stored,
            raw_bytes: raw,
            ratio: ratio(raw, stored),
        },
        convertible: false,
        refusal: None,
        mapping: None,
        estimate: None,
        mapping_text: None,
    };
    let mapping = match FileMapping::detect(path).and_then(|m| m.check_reads(true).map(|()| m)) {
        Ok(m) => m,
        Err(e) => {
            report.refusal = Some(e.to_string());
            return Ok(report);
        }
    };
    if let Err(e) = add_mapping(&mut report, &mapping) {
        report.refusal = Some(e.to_string());
        return Ok(report);
    }
    report.convertible = true;
    report.estimate = Some(estimate(&report, &mapping, workers));
    Ok(report)
}

/// Every dataset of the root group, described, and the other objects there.
fn list_root(
    path: &Path,
    file_bytes: u64,
) -> Result<(Vec<DatasetReport>, Vec<OtherObject>), InputError> {
    let mut datasets = Vec::new();
    let mut other_objects = Vec::new();
    let file = h5::File::open(path).map_err(|e| InputError::h5(path, None, e))?;
    let members = file
        .root_members()
        .map_err(|e| InputError::h5(path, None, e))?;
    for (name, kind) in members {
        match kind {
            ObjectKind::Dataset => datasets.push(describe_dataset(&file, &name, file_bytes)),
            ObjectKind::Group => other_objects.push(OtherObject {
                name,
                kind: "group",
            }),
            ObjectKind::Other => other_objects.push(OtherObject {
                name,
                kind: "other",
            }),
        }
    }
    Ok((datasets, other_objects))
}

/// Add the detected mapping to `report`: each dataset's output column and decode path.
/// `Err`: why the pipeline's reader refuses the file.
fn add_mapping(report: &mut Report, mapping: &FileMapping) -> Result<(), InputError> {
    report.mapping_text = Some(mapping.to_string());
    report.mapping = Some(mapping_report(mapping));
    for d in &mut report.datasets {
        d.column = column_of(mapping, &d.name);
    }
    // The decode paths, exactly as the pipeline decides them when it opens the file.
    let reader = mapping.reader(1024, Decode::Native)?;
    let cols = reader.mapped();
    for d in &mut report.datasets {
        if d.column.is_some() {
            d.decode = Some(decode_path(mapping, &d.name, cols));
        }
    }
    Ok(())
}

/// The conversion time of a convertible file, for `workers` (default: the local profile's).
fn estimate(report: &Report, mapping: &FileMapping, workers: Option<usize>) -> Estimate {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (w, from) = match workers {
        Some(w) => (w, "--num-workers"),
        None => (cores.min(4), "local mode"),
    };
    let spec = report
        .datasets
        .iter()
        .find(|d| d.name == mapping.spectrum.dataset);
    let class = match spec.map(|d| (d.layout, d.filters.iter().any(|f| f.id == 1))) {
        Some(("contiguous", _)) => "contiguous",
        Some(("chunked", false)) => "chunked",
        _ => "deflate",
    };
    let mapped = spec
        .and_then(|d| d.decode.as_ref())
        .is_some_and(|p| p.path == "mapped");
    Estimate::compute(
        mapping.rows,
        mapping.row_bytes(),
        class,
        mapped,
        w,
        from,
        cores,
    )
}

/// Element size in the file, when fixed (variable-length strings: the 16-byte heap
/// reference).
fn elem_size(d: &DType) -> Option<u64> {
    d.stored_size().map(|s| s as u64)
}

fn ratio(raw: u64, stored: u64) -> Option<f64> {
    (stored > 0).then(|| ((raw as f64 / stored as f64) * 100.0).round() / 100.0)
}

/// Metadata, filters and stored size of one dataset; failures are recorded in `error`.
fn describe_dataset(file: &h5::File, name: &str, file_bytes: u64) -> DatasetReport {
    let mut r = DatasetReport {
        name: name.to_string(),
        dtype: "?".into(),
        shape: Vec::new(),
        layout: "other",
        chunk_shape: None,
        filters: Vec::new(),
        chunks: None,
        stored_bytes: None,
        raw_bytes: None,
        ratio: None,
        column: None,
        decode: None,
        error: None,
    };
    if let Err(e) = fill_dataset(file, name, file_bytes, &mut r) {
        r.error = Some(e.to_string());
    }
    r
}

fn fill_dataset(
    file: &h5::File,
    name: &str,
    file_bytes: u64,
    r: &mut DatasetReport,
) -> Result<(), h5::H5Error> {
    let ds = file.dataset(name)?;
    let info: DatasetInfo = ds.info(name)?;
    r.dtype = info.dtype.to_string();
    r.shape = info.shape.clone();
    r.raw_bytes = elem_size(&info.dtype)
        .and_then(|e| info.shape.iter().try_fold(e, |acc, &x| acc.checked_mul(x)));
    r.layout = match info.layout {
        Layout::Chunked(_) => "chunked",
        Layout::Contiguous => "contiguous",
        Layout::Compact => "compact",
        Layout::Other => "other",
    };
    r.filters = ds
        .raw_filters()?
        .into_iter()
        .enumerate()
        .map(|(i, f)| FilterReport {
            name: info
                .filters
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("filter-{}", f.id)),
            reader: crate::read::filters::FilterReader::of(f.id, &info.dtype, true),
            id: f.id,
            params: f.cd_values,
        })
        .collect();
    match &info.layout {
        Layout::Chunked(chunk) => {
            r.chunk_shape = Some(chunk.clone());
            let total = info
                .shape
                .iter()
                .zip(chunk)
                .map(|(&d, &c)| d.div_ceil(c.max(1)))
                .try_fold(1u64, |a, n| a.checked_mul(n));
            let rank_ok = (1..=MAX_CHUNK_RANK).contains(&info.shape.len());
            if let Some(total) =
                total.filter(|&t| rank_ok && t <= MAX_INDEXED_CHUNKS && t <= file_bytes.max(1))
            {
                let chunks = if total == 0 {
                    Vec::new()
                } else {
                    ds.chunk_index(total as usize)?
                };
                r.chunks = Some(ChunkCount {
                    allocated: chunks.len() as u64,
                    total,
                });
                r.stored_bytes = Some(chunks.iter().map(|c| c.size).sum());
            }
        }
        Layout::Contiguous => {
            r.stored_bytes = Some(ds.contiguous_extent()?.map_or(0, |(_, size)| size));
        }
        // Compact data lives unfiltered in the object header.
        Layout::Compact => r.stored_bytes = r.raw_bytes,
        Layout::Other => {}
    }
    if let (Some(raw), Some(stored)) = (r.raw_bytes, r.stored_bytes) {
        r.ratio = ratio(raw, stored);
    }
    Ok(())
}

/// The output column(s) dataset `name` becomes under `m`, if any.
fn column_of(m: &FileMapping, name: &str) -> Option<String> {
    let is = |d: &Option<String>| d.as_deref() == Some(name);
    if m.spectrum.dataset == name {
        Some("mz, intensity, num_peaks".into())
    } else if m.precursor_mz == name {
        Some("precursor_mz".into())
    } else if is(&m.rt) {
        Some("rt".into())
    } else if is(&m.charge) {
        Some("charge".into())
    } else if is(&m.accuracy) {
        Some("instrument_accuracy_est".into())
    } else if m.lsh.as_ref().is_some_and(|(d, _)| d == name) {
        Some("lsh".into())
    } else if is(&m.name) {
        Some("name".into())
    } else {
        m.passthrough
            .iter()
            .find(|p| p.dataset == name)
            .map(|p| p.column.clone())
    }
}

/// Why dataset `name` is always read through libhdf5 under `m`, when it is: strings, and
/// values that are not plain numbers (enums, compounds, array types).
fn always_libhdf5(m: &FileMapping, name: &str) -> Option<&'static str> {
    let strings = "strings are always read through libhdf5";
    if m.name.as_deref() == Some(name)
        || m.lsh
            .as_ref()
            .is_some_and(|(d, k)| d == name && *k == ValueKind::Str)
    {
        return Some(strings);
    }
    match &m.passthrough.iter().find(|p| p.dataset == name)?.kind {
        ValueKind::Num(_) => None,
        ValueKind::Str => Some(strings),
        _ => Some("enums, compounds and array types are always read through libhdf5"),
    }
}

/// The entry for `name` in a `dataset: text` list (the longest matching name wins).
fn entry_for<'a>(lines: &'a [String], names: &[&str], name: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(": ")?;
        // A longer dataset name that starts with `name: ` owns this line.
        let longer = names
            .iter()
            .any(|n| n.len() > name.len() && l.starts_with(n) && l[n.len()..].starts_with(": "));
        (!longer).then_some(rest)
    })
}

/// How `--decode native` reads dataset `name` (one the mapping uses).
fn decode_path(m: &FileMapping, name: &str, cols: Option<&MappedColumns>) -> DecodePath {
    if let Some(why) = always_libhdf5(m, name) {
        return DecodePath {
            path: "libhdf5",
            fallback: false,
            detail: why.into(),
        };
    }
    let fallback = |detail: String| DecodePath {
        path: "libhdf5",
        fallback: true,
        detail,
    };
    let Some(cols) = cols else {
        return fallback("no dataset can be decoded from the map".into());
    };
    let names: Vec<&str> = m.datasets.iter().map(|d| d.name.as_str()).collect();
    if let Some(d) = entry_for(&cols.mapped, &names, name) {
        return DecodePath {
            path: "mapped",
            fallback: false,
            detail: d.to_string(),
        };
    }
    if let Some(why) = entry_for(&cols.fallbacks, &names, name)
        .or_else(|| entry_for(&cols.fallbacks, &[], "every dataset"))
    {
        return fallback(why.to_string());
    }
    fallback("not decoded from the map".into())
}

fn mapping_report(m: &FileMapping) -> MappingReport {
    let s = &m.spectrum;
    let col = |column: &'static str, d: Option<&str>| ColumnSource {
        column,
        dataset: d.map(str::to_string),
    };
    MappingReport {
        spectra: m.rows,
        spectrum: SpectrumReport {
            dataset: s.dataset.clone(),
            orientation: match s.orientation {
                Orientation::Planar => "(N, 2, P)",
                Orientation::Interleaved => "(N, P, 2)",
            },
            dtype: match s.elem {
                PeakElem::F64 => "float64",
                PeakElem::F32 => "float32",
            },
            peak_slots: s.slots,
        },
        columns: vec![
            col("mz", Some(&s.dataset)),
            col("intensity", Some(&s.dataset)),
            col("num_peaks", Some(&s.dataset)),
            col("precursor_mz", Some(&m.precursor_mz)),
            col("rt", m.rt.as_deref()),
            col("charge", m.charge.as_deref()),
            col("instrument_accuracy_est", m.accuracy.as_deref()),
            col("lsh", m.lsh.as_ref().map(|(d, _)| d.as_str())),
            col("name", m.name.as_deref()),
        ],
        passthrough: m
            .passthrough
            .iter()
            .map(|p| PassReport {
                dataset: p.dataset.clone(),
                column: p.column.clone(),
                data_type: match p.data_type() {
                    arrow::datatypes::DataType::FixedSizeList(f, n) => {
                        format!("FixedSizeList({n} x {})", f.data_type())
                    }
                    t => t.to_string(),
                },
            })
            .collect(),
        skipped: m
            .skipped
            .iter()
            .map(|(name, why)| Skipped {
                name: name.clone(),
                reason: why.to_string(),
            })
            .collect(),
        row_bytes: m.row_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_matches_the_measured_points() {
        // 1M gems spectra, 2 workers: the README's 216,300/s → 4.62 s.
        let e = Estimate::compute(1_000_000, 2240, "deflate", true, 2, "local mode", 2);
        assert!((e.spectra_per_second - 216_300.0).abs() < 1.0, "{e:?}");
        assert!((e.seconds - 4.623).abs() < 0.01, "{e:?}");
        let e1 = Estimate::compute(1_000_000, 2240, "deflate", true, 1, "local mode", 2);
        assert!((e1.spectra_per_second - 134_200.0).abs() < 1.0);
        // Falling back to libhdf5 caps the rate at its reader's.
        let f = Estimate::compute(1_000_000, 2240, "deflate", false, 4, "local mode", 4);
        assert!((f.spectra_per_second - 101_800.0).abs() < 1.0, "{f:?}");
        // Wider rows are slower; narrower are not faster.
        let wide = Estimate::compute(1000, 4480, "contiguous", true, 1, "local mode", 1);
        assert!((wide.spectra_per_second - 74_933.0).abs() < 1.0, "{wide:?}");
        let narrow = Estimate::compute(1000, 1000, "contiguous", true, 1, "local mode", 1);
        assert!((narrow.spectra_per_second - 224_800.0).abs() < 1.0);
    }

    #[test]
    fn entries_by_longest_name() {
        let lines = vec!["a: b: mapped".to_string(), "a: libhdf5".to_string()];
        let names = ["a", "a: b"];
        assert_eq!(entry_for(&lines, &names, "a"), Some("libhdf5"));
        assert_eq!(entry_for(&lines, &names, "a: b"), Some("mapped"));
    }
}
