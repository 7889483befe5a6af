//! Input side: detect how a GeMS-style HDF5 file maps onto the output schema, and read row
//! ranges of it.
//!
//! Detection happens once per file, on one thread, before anything is written; a file that
//! cannot be converted (no spectrum tensor, datasets of different lengths, an unsupported
//! dtype or shape, no rows, or shapes declaring more data than the file can hold) is refused
//! with an [`InputError`] naming the file and the dataset.
//!
//! Reading has two paths, chosen per dataset when a file is opened ([`Decode`]):
//!
//! - **mapped** ([`crate::read::mapped`]): numeric datasets whose chunks use only deflate, shuffle
//!   and fletcher32 (or contiguous storage) are decoded by the workers straight from a memory
//!   map of the file, in parallel; the reader thread only marks them pending in the
//!   [`RawUnit`], and [`RawUnit::decode_pending`] fills them in on a worker;
//! - **libhdf5**: strings, other filters and layouts, and everything under
//!   `--decode libhdf5`, through `H5Dread` of row hyperslabs on the reader thread, with each
//!   dataset's chunk cache sized to hold one band of chunks across a read unit, so every
//!   chunk is inflated once and memory stays bounded whatever the file size.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array,
    Int8Array, StringArray, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};
use arrow::datatypes::{DataType, Field};
use msms_kernels::Orientation;

pub use crate::read::error::InputError;
use crate::read::h5::{self, DType, DatasetInfo, Layout, ObjectKind};
use crate::read::mapped::{DecodeScratch, MappedDataset, MappedFile};

/// Which decoder reads row data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Decode {
    /// Decode chunks from a memory map wherever the dataset allows it (deflate, shuffle,
    /// fletcher32, contiguous), libhdf5 elsewhere.
    #[default]
    Native,
    /// Read everything through libhdf5's `H5Dread` (the reference path).
    Libhdf5,
}

impl Decode {
    /// `native` or `libhdf5`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decode::Native => "native",
            Decode::Libhdf5 => "libhdf5",
        }
    }
}

/// Largest number of values one row of a pass-through dataset may hold (guards allocation
/// against absurd declared shapes).
pub const MAX_ROW_VALUES: u64 = 1 << 20;
/// Largest fixed-length string element accepted, in bytes.
pub const MAX_FIXED_STRING: u64 = 1 << 16;
/// Decoded input bytes one read unit may hold; wider rows give units (and row groups) of
/// fewer than `batch_size` spectra, so memory stays bounded whatever the input declares.
pub const UNIT_BYTES_BUDGET: u64 = 64 << 20;
/// Largest number of peak slots per spectrum (`num_peaks` is a uint16).
pub const MAX_PEAK_SLOTS: u64 = u16::MAX as u64;
/// Most bytes a stored byte can decode to: deflate's ceiling (a 258-byte match per 2 bits).
/// Data beyond this many times the file size cannot be stored in it: it would be fill values
/// of chunks never written, declared by the shape alone.
pub const MAX_EXPANSION: u64 = 1032;
/// Decoded bytes a file may declare beyond `MAX_EXPANSION` times its size (small files with
/// a few datasets never written, which read as fill values).
pub const DECLARED_SLACK: u64 = 16 << 20;

/// Element type of the stored spectrum tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeakElem {
    /// float32
    F32,
    /// float64
    F64,
}

/// Where the peaks are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpectrumMapping {
    /// Dataset name (`spectrum` or `spectra`).
    pub dataset: String,
    /// (N, 2, P) planar or (N, P, 2) interleaved.
    pub orientation: Orientation,
    /// Stored element type.
    pub elem: PeakElem,
    /// Peak slots per spectrum (P).
    pub slots: usize,
}

/// How a per-spectrum string or numeric column is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// Integer of `size` bytes.
    Int {
        /// Bytes.
        size: usize,
        /// Signed?
        signed: bool,
    },
    /// Float of `size` bytes.
    Float {
        /// Bytes.
        size: usize,
    },
    /// Fixed- or variable-length string.
    Str,
}

impl ValueKind {
    fn of(d: &DType) -> Option<ValueKind> {
        match *d {
            DType::Int { size, signed } if matches!(size, 1 | 2 | 4 | 8) => {
                Some(ValueKind::Int { size, signed })
            }
            DType::Float { size } if matches!(size, 4 | 8) => Some(ValueKind::Float { size }),
            DType::FixedString { size } if size as u64 <= MAX_FIXED_STRING => Some(ValueKind::Str),
            DType::VarString => Some(ValueKind::Str),
            _ => None,
        }
    }

    fn arrow_type(self) -> DataType {
        match self {
            ValueKind::Int {
                size: 1,
                signed: true,
            } => DataType::Int8,
            ValueKind::Int {
                size: 2,
                signed: true,
            } => DataType::Int16,
            ValueKind::Int {
                size: 4,
                signed: true,
            } => DataType::Int32,
            ValueKind::Int { signed: true, .. } => DataType::Int64,
            ValueKind::Int { size: 1, .. } => DataType::UInt8,
            ValueKind::Int { size: 2, .. } => DataType::UInt16,
            ValueKind::Int { size: 4, .. } => DataType::UInt32,
            ValueKind::Int { .. } => DataType::UInt64,
            ValueKind::Float { size: 4 } => DataType::Float32,
            ValueKind::Float { .. } => DataType::Float64,
            ValueKind::Str => DataType::Utf8,
        }
    }
}

/// A per-spectrum dataset copied through as its own column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassColumn {
    /// Dataset name in the file.
    pub dataset: String,
    /// Output column name.
    pub column: String,
    /// Stored value kind.
    pub kind: ValueKind,
    /// Values per row: 1 for (N,), k for (N, k), the product of the trailing dims otherwise.
    pub width: usize,
}

impl PassColumn {
    /// The Arrow type of the output column.
    pub fn data_type(&self) -> DataType {
        let inner = self.kind.arrow_type();
        if self.width == 1 {
            inner
        } else {
            DataType::FixedSizeList(
                Arc::new(Field::new("item", inner, false)),
                self.width as i32,
            )
        }
    }
}

/// How one input file maps onto the output schema.
#[derive(Clone, Debug)]
pub struct FileMapping {
    /// The input file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub file_bytes: u64,
    /// Spectra (N).
    pub rows: u64,
    /// The peak tensor.
    pub spectrum: SpectrumMapping,
    /// `precursor_mz` or `precursor mz`.
    pub precursor_mz: String,
    /// `RT`.
    pub rt: Option<String>,
    /// `charge`.
    pub charge: Option<String>,
    /// `instrument accuracy est.`.
    pub accuracy: Option<String>,
    /// `lsh`, integer or string.
    pub lsh: Option<(String, ValueKind)>,
    /// `name` or `file_name`.
    pub name: Option<String>,
    /// Every other per-spectrum dataset.
    pub passthrough: Vec<PassColumn>,
    /// Groups and non-per-spectrum objects skipped, with the reason.
    pub skipped: Vec<(String, &'static str)>,
    /// Metadata of every dataset, for reports.
    pub datasets: Vec<DatasetInfo>,
}

/// Names of the fixed output columns; a pass-through dataset with one of these names is
/// written as `input_<name>`.
pub const FIXED_COLUMNS: [&str; 12] = [
    "spectrum_id",
    "source_index",
    "source_row",
    "name",
    "precursor_mz",
    "rt",
    "charge",
    "instrument_accuracy_est",
    "lsh",
    "num_peaks",
    "mz",
    "intensity",
];

impl FileMapping {
    /// Open `path` and work out its mapping. Refuses files that cannot be converted.
    pub fn detect(path: &Path) -> Result<FileMapping, InputError> {
        let file_bytes = std::fs::metadata(path)
            .map_err(|e| InputError::new(path, None, format!("cannot read: {e}")))?
            .len();
        let file = h5::File::open(path).map_err(|e| InputError::h5(path, None, e))?;
        Self::detect_open(&file, file_bytes)
    }

    fn detect_open(file: &h5::File, file_bytes: u64) -> Result<FileMapping, InputError> {
        let path = file.path();
        let members = file
            .root_members()
            .map_err(|e| InputError::h5(path, None, e))?;
        let mut datasets = Vec::new();
        let mut skipped = Vec::new();
        for (name, kind) in members {
            match kind {
                ObjectKind::Dataset => {
                    let ds = file
                        .dataset(&name)
                        .map_err(|e| InputError::h5(path, Some(&name), e))?;
                    datasets.push(
                        ds.info(&name)
                            .map_err(|e| InputError::h5(path, Some(&name), e))?,
                    );
                }
                ObjectKind::Group => {
                    skipped.push((name, "group (per-file arrays, not per spectrum)"))
                }
                ObjectKind::Other => skipped.push((name, "not a dataset")),
            }
        }
        let find = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| datasets.iter().find(|d| d.name == *n))
                .cloned()
        };
        let spec = find(&["spectrum", "spectra"]).ok_or_else(|| {
            InputError::new(
                path,
                None,
                "no spectrum tensor: expected a dataset `spectrum` (N, 2, P) or `spectra` (N, P, 2)",
            )
        })?;
        let spectrum = spectrum_mapping(path, &spec)?;
        let rows = spec.shape[0];

        // Every other dataset must be per spectrum: same first dimension.
        let mut per_spectrum = Vec::new();
        for d in &datasets {
            if d.name == spec.name {
                continue;
            }
            if d.shape.is_empty() {
                skipped.push((d.name.clone(), "scalar dataset (not per spectrum)"));
                continue;
            }
            if d.shape[0] != rows {
                return Err(InputError::new(
                    path,
                    Some(&d.name),
                    format!(
                        "datasets of different lengths: `{}` has {} rows but `{}` has {rows}",
                        d.name, d.shape[0], spec.name
                    ),
                ));
            }
            per_spectrum.push(d);
        }

        let mut mapping = FileMapping {
            path: path.to_path_buf(),
            file_bytes,
            rows,
            spectrum,
            precursor_mz: String::new(),
            rt: None,
            charge: None,
            accuracy: None,
            lsh: None,
            name: None,
            passthrough: Vec::new(),
            skipped,
            datasets: datasets.clone(),
        };
        let mut used: Vec<String> = vec![spec.name.clone()];
        let pick = |names: &[&str], used: &mut Vec<String>| -> Option<DatasetInfo> {
            let d = names
                .iter()
                .find_map(|n| per_spectrum.iter().find(|d| d.name == *n))?;
            used.push(d.name.clone());
            Some((*d).clone())
        };
        let numeric_1d = |d: &DatasetInfo| -> Result<String, InputError> {
            match ValueKind::of(&d.dtype) {
                Some(ValueKind::Int { .. } | ValueKind::Float { .. }) if d.shape.len() == 1 => {
                    Ok(d.name.clone())
                }
                Some(ValueKind::Int { .. } | ValueKind::Float { .. }) => Err(InputError::new(
                    path,
                    Some(&d.name),
                    format!(
                        "unsupported shape {:?}: expected one value per spectrum",
                        d.shape
                    ),
                )),
                _ => Err(InputError::new(
                    path,
                    Some(&d.name),
                    format!(
                        "unsupported dtype {}: expected a number per spectrum",
                        d.dtype
                    ),
                )),
            }
        };
        mapping.precursor_mz = match pick(&["precursor_mz", "precursor mz"], &mut used) {
            Some(d) => numeric_1d(&d)?,
            None => {
                return Err(InputError::new(
                    path,
                    None,
                    "no precursor m/z: expected a dataset `precursor_mz` or `precursor mz`",
                ))
            }
        };
        mapping.rt = pick(&["RT", "rt"], &mut used)
            .as_ref()
            .map(numeric_1d)
            .transpose()?;
        mapping.charge = pick(&["charge"], &mut used)
            .as_ref()
            .map(numeric_1d)
            .transpose()?;
        mapping.accuracy = pick(&["instrument accuracy est."], &mut used)
            .as_ref()
            .map(numeric_1d)
            .transpose()?;
        if let Some(d) = pick(&["lsh"], &mut used) {
            let kind = match ValueKind::of(&d.dtype) {
                Some(k @ ValueKind::Int { .. }) if d.shape.len() == 1 => k,
                Some(ValueKind::Str) if d.shape.len() == 1 => ValueKind::Str,
                _ => {
                    return Err(InputError::new(
                        path,
                        Some(&d.name),
                        format!("unsupported dtype {} or shape {:?} for lsh: expected int64 or strings (N,)", d.dtype, d.shape),
                    ))
                }
            };
            mapping.lsh = Some((d.name.clone(), kind));
        }
        if let Some(d) = pick(&["name", "file_name"], &mut used) {
            if ValueKind::of(&d.dtype) != Some(ValueKind::Str) || d.shape.len() != 1 {
                return Err(InputError::new(
                    path,
                    Some(&d.name),
                    format!(
                        "unsupported dtype {} or shape {:?}: expected strings (N,)",
                        d.dtype, d.shape
                    ),
                ));
            }
            mapping.name = Some(d.name.clone());
        }
        for d in per_spectrum.iter().filter(|d| !used.contains(&d.name)) {
            let kind = ValueKind::of(&d.dtype).ok_or_else(|| {
                InputError::new(
                    path,
                    Some(&d.name),
                    format!("unsupported dtype {}", d.dtype),
                )
            })?;
            let width = d.shape[1..]
                .iter()
                .try_fold(1u64, |acc, &x| acc.checked_mul(x));
            let width = match width {
                Some(w)
                    if (1..=MAX_ROW_VALUES).contains(&w) && (kind != ValueKind::Str || w == 1) =>
                {
                    w
                }
                _ => {
                    return Err(InputError::new(
                        path,
                        Some(&d.name),
                        format!("unsupported shape {:?} for a pass-through column", d.shape),
                    ))
                }
            };
            let column = if FIXED_COLUMNS.contains(&d.name.as_str()) {
                format!("input_{}", d.name)
            } else {
                d.name.clone()
            };
            mapping.passthrough.push(PassColumn {
                dataset: d.name.clone(),
                column,
                kind,
                width: width as usize,
            });
        }
        mapping.check_declared_size(&spec, &per_spectrum)?;
        Ok(mapping)
    }

    /// Refuse shapes a run cannot take: no spectra at all, one row (over every per-spectrum
    /// dataset) wider than a read unit, or more decoded bytes than [`MAX_EXPANSION`] times
    /// the file size plus [`DECLARED_SLACK`] (an extent set without data, chunks never
    /// written). Unit planning, buffers and the work of a run then stay bounded by the
    /// file's real size, not by numbers it declares.
    fn check_declared_size(
        &self,
        spec: &DatasetInfo,
        others: &[&DatasetInfo],
    ) -> Result<(), InputError> {
        let path = &self.path;
        if self.rows == 0 {
            return Err(InputError::new(
                path,
                Some(&spec.name),
                format!("shape {:?}: no spectra (0 rows)", spec.shape),
            ));
        }
        // Stored bytes per element (variable-length strings: a 16-byte heap reference) of
        // one row, and of the whole dataset.
        let elem = |d: &DatasetInfo| -> u128 {
            match d.dtype {
                DType::Int { size, .. } | DType::Float { size } | DType::FixedString { size } => {
                    size as u128
                }
                DType::VarString => 16,
                DType::Other(_) => 0,
            }
        };
        let per_row = |d: &DatasetInfo| -> u128 {
            d.shape[1..]
                .iter()
                .fold(elem(d), |acc, &x| acc.saturating_mul(u128::from(x)))
        };
        let declared = |d: &DatasetInfo| per_row(d).saturating_mul(u128::from(self.rows));
        let all = || std::iter::once(spec).chain(others.iter().copied());
        let row_bytes = self.row_bytes();
        if row_bytes > UNIT_BYTES_BUDGET {
            // The first of the widest, the first of the largest: named in the message.
            let widest = all()
                .min_by_key(|d| std::cmp::Reverse(per_row(d)))
                .unwrap_or(spec);
            return Err(InputError::new(
                path,
                Some(&widest.name),
                format!(
                    "declared shape {:?}: one row of the per-spectrum datasets is {row_bytes} \
                     bytes decoded, more than a read unit holds ({UNIT_BYTES_BUDGET} bytes)",
                    widest.shape
                ),
            ));
        }
        let total: u128 = all().map(declared).fold(0, u128::saturating_add);
        let bound =
            u128::from(self.file_bytes) * u128::from(MAX_EXPANSION) + u128::from(DECLARED_SLACK);
        if total > bound {
            let largest = all()
                .min_by_key(|d| std::cmp::Reverse(declared(d)))
                .unwrap_or(spec);
            return Err(InputError::new(
                path,
                Some(&largest.name),
                format!(
                    "declared shape {:?}: the per-spectrum datasets of {} rows need {total} \
                     bytes decoded, more than a file of {} bytes can hold ({bound} at most: \
                     deflate expands {MAX_EXPANSION}-fold); the rest would be fill values of \
                     chunks never written",
                    largest.shape, self.rows, self.file_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Decoded bytes of one row: peaks, the fixed columns and the pass-through columns
    /// (strings counted as 64 bytes or their fixed size).
    pub fn row_bytes(&self) -> u64 {
        let elem = match self.spectrum.elem {
            PeakElem::F32 => 4,
            PeakElem::F64 => 8,
        };
        let value = |k: ValueKind| match k {
            ValueKind::Int { size, .. } | ValueKind::Float { size } => size as u64,
            ValueKind::Str => 64,
        };
        let fixed_string = |d: &str| match self.dataset_info(d).map(|i| &i.dtype) {
            Some(DType::FixedString { size }) => (*size as u64).max(64),
            _ => 64,
        };
        2 * self.spectrum.slots as u64 * elem
            + 64
            + self.lsh.as_ref().map_or(0, |(d, _)| fixed_string(d))
            + self.name.as_deref().map_or(0, fixed_string)
            + self
                .passthrough
                .iter()
                .map(|p| match p.kind {
                    ValueKind::Str => fixed_string(&p.dataset),
                    k => p.width as u64 * value(k),
                })
                .sum::<u64>()
    }

    /// Open the file for reading row ranges of about `unit_rows` rows with `decode`.
    pub fn reader(&self, unit_rows: usize, decode: Decode) -> Result<FileReader, InputError> {
        FileReader::open(self, unit_rows, decode)
    }

    /// Rows per chunk of the spectrum dataset (`None` when it is not chunked).
    pub fn spectrum_chunk_rows(&self) -> Option<u64> {
        match &self.dataset_info(&self.spectrum.dataset)?.layout {
            Layout::Chunked(c) => c.first().copied().filter(|&r| r > 0),
            _ => None,
        }
    }

    /// Stored bytes of every dataset, summed (for reports).
    pub fn dataset_info(&self, name: &str) -> Option<&DatasetInfo> {
        self.datasets.iter().find(|d| d.name == name)
    }
}

#[cfg(test)]
impl FileMapping {
    /// A float64 planar mapping with only the required datasets, for unit tests.
    pub(crate) fn for_tests(rows: u64, slots: usize) -> FileMapping {
        FileMapping {
            path: PathBuf::from("test.hdf5"),
            file_bytes: 0,
            rows,
            spectrum: SpectrumMapping {
                dataset: "spectrum".into(),
                orientation: Orientation::Planar,
                elem: PeakElem::F64,
                slots,
            },
            precursor_mz: "precursor_mz".into(),
            rt: None,
            charge: None,
            accuracy: None,
            lsh: None,
            name: None,
            passthrough: vec![],
            skipped: vec![],
            datasets: vec![],
        }
    }
}

fn spectrum_mapping(path: &Path, d: &DatasetInfo) -> Result<SpectrumMapping, InputError> {
    let elem = match d.dtype {
        DType::Float { size: 8 } => PeakElem::F64,
        DType::Float { size: 4 } => PeakElem::F32,
        ref other => {
            return Err(InputError::new(
                path,
                Some(&d.name),
                format!(
                "unsupported dtype {other} for the spectrum tensor: expected float32 or float64"
            ),
            ))
        }
    };
    let bad_shape = || {
        InputError::new(
            path,
            Some(&d.name),
            format!(
                "unsupported shape {:?}: expected (N, 2, P) or (N, P, 2)",
                d.shape
            ),
        )
    };
    if d.shape.len() != 3 {
        return Err(bad_shape());
    }
    let (orientation, slots) = match (d.name.as_str(), d.shape[1], d.shape[2]) {
        ("spectra", _, 2) => (Orientation::Interleaved, d.shape[1]),
        (_, 2, p) => (Orientation::Planar, p),
        (_, p, 2) => (Orientation::Interleaved, p),
        _ => return Err(bad_shape()),
    };
    if slots == 0 || slots > MAX_PEAK_SLOTS {
        return Err(InputError::new(
            path,
            Some(&d.name),
            format!(
                "unsupported shape {:?}: 1 to {MAX_PEAK_SLOTS} peak slots per spectrum",
                d.shape
            ),
        ));
    }
    Ok(SpectrumMapping {
        dataset: d.name.clone(),
        orientation,
        elem,
        slots: slots as usize,
    })
}

impl fmt::Display for FileMapping {
    /// The mapping as printed at start: one line per output column and its source.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.spectrum;
        let dinfo = |name: &str| {
            self.dataset_info(name)
                .map(|d| {
                    let layout = match &d.layout {
                        Layout::Chunked(c) => format!("chunks {c:?}"),
                        Layout::Contiguous => "contiguous".into(),
                        Layout::Compact => "compact".into(),
                        Layout::Other => "other layout".into(),
                    };
                    let filters = if d.filters.is_empty() {
                        "no filters".into()
                    } else {
                        d.filters.join("+")
                    };
                    format!("{} {:?}, {layout}, {filters}", d.dtype, d.shape)
                })
                .unwrap_or_default()
        };
        writeln!(
            f,
            "{} ({} spectra, {} bytes)",
            self.path.display(),
            self.rows,
            self.file_bytes
        )?;
        writeln!(
            f,
            "  mz, intensity <- {} [{}] ({})",
            s.dataset,
            dinfo(&s.dataset),
            match s.orientation {
                Orientation::Planar => "(N, 2, P)",
                Orientation::Interleaved => "(N, P, 2) high form",
            }
        )?;
        let mut line = |col: &str, src: Option<&str>| match src {
            Some(d) => writeln!(f, "  {col} <- {d} [{}]", dinfo(d)),
            None => writeln!(f, "  {col} <- (absent: null)"),
        };
        line("precursor_mz", Some(&self.precursor_mz))?;
        line("rt", self.rt.as_deref())?;
        line("charge", self.charge.as_deref())?;
        line("instrument_accuracy_est", self.accuracy.as_deref())?;
        line("lsh", self.lsh.as_ref().map(|(d, _)| d.as_str()))?;
        line("name", self.name.as_deref())?;
        for p in &self.passthrough {
            writeln!(
                f,
                "  {} <- {} [{}] (pass-through)",
                p.column,
                p.dataset,
                dinfo(&p.dataset)
            )?;
        }
        for (name, why) in &self.skipped {
            writeln!(f, "  skipped {name}: {why}")?;
        }
        Ok(())
    }
}

/// Peaks of a read unit, in the stored element type.
#[derive(Debug)]
pub enum PeakData {
    /// float32 tensor rows.
    F32(Vec<f32>),
    /// float64 tensor rows.
    F64(Vec<f64>),
}

/// `lsh` values of a read unit.
#[derive(Debug)]
pub enum LshData {
    /// int64 buckets.
    Int(Vec<i64>),
    /// 64-byte hex strings.
    Str(Vec<String>),
}

/// The rows `start_row..start_row + rows` of one input file, as read.
#[derive(Debug)]
pub struct RawUnit {
    /// Position of the unit in the whole run (ordering key).
    pub seq: u64,
    /// Position of the file among the inputs.
    pub source_index: u16,
    /// First row in the file.
    pub start_row: u64,
    /// Rows in the unit.
    pub rows: usize,
    /// `spectrum_id` of the first row.
    pub first_spectrum_id: u64,
    /// Peak slots per spectrum.
    pub slots: usize,
    /// Peak layout.
    pub orientation: Orientation,
    /// rows × 2 × slots values.
    pub peaks: PeakData,
    /// Precursor m/z, widened to f64.
    pub precursor_mz: Vec<f64>,
    /// Retention time.
    pub rt: Option<Vec<f32>>,
    /// Charge.
    pub charge: Option<Vec<i8>>,
    /// Instrument accuracy estimate.
    pub accuracy: Option<Vec<f32>>,
    /// LSH.
    pub lsh: Option<LshData>,
    /// Name or file name.
    pub name: Option<Vec<String>>,
    /// Pass-through columns, in mapping order, `rows` long.
    pub passthrough: Vec<ArrayRef>,
    /// Columns still to be decoded from the memory map ([`RawUnit::decode_pending`]).
    pub pending: Option<Arc<MappedColumns>>,
}

/// The datasets of one file that the workers decode from its memory map; `None` entries
/// are read through libhdf5.
#[derive(Debug, Default)]
pub struct MappedColumns {
    spectrum: Option<MappedDataset>,
    precursor: Option<MappedDataset>,
    /// `precursor` is stored as float32 (widened to float64 after decoding).
    precursor_f32: bool,
    rt: Option<MappedDataset>,
    charge: Option<MappedDataset>,
    accuracy: Option<MappedDataset>,
    lsh: Option<MappedDataset>,
    passthrough: Vec<Option<(MappedDataset, ValueKind, usize)>>,
    /// `dataset: reason` for each numeric dataset that falls back to libhdf5.
    pub fallbacks: Vec<String>,
    /// `dataset: decode path` for each mapped dataset.
    pub mapped: Vec<String>,
}

impl MappedColumns {
    /// Prepare every numeric dataset of `mapping` that can be decoded from `map`.
    fn open(
        mapping: &FileMapping,
        file: &h5::File,
        map: &Arc<MappedFile>,
    ) -> Result<MappedColumns, InputError> {
        let path = &mapping.path;
        let mut cols = MappedColumns::default();
        let mut try_map = |name: &str,
                           kind: Option<&ValueKind>|
         -> Result<Option<MappedDataset>, InputError> {
            let Some(info) = mapping.dataset_info(name) else {
                return Ok(None);
            };
            let ds = file
                .dataset(name)
                .map_err(|e| InputError::h5(path, Some(name), e))?;
            let outcome = match kind {
                None => return Ok(None),
                Some(ValueKind::Str) => return Ok(None),
                Some(ValueKind::Int {
                    size: 1,
                    signed: true,
                }) => MappedDataset::new::<i8>(map, &ds, info)?,
                Some(ValueKind::Int {
                    size: 2,
                    signed: true,
                }) => MappedDataset::new::<i16>(map, &ds, info)?,
                Some(ValueKind::Int {
                    size: 4,
                    signed: true,
                }) => MappedDataset::new::<i32>(map, &ds, info)?,
                Some(ValueKind::Int { signed: true, .. }) => {
                    MappedDataset::new::<i64>(map, &ds, info)?
                }
                Some(ValueKind::Int { size: 1, .. }) => MappedDataset::new::<u8>(map, &ds, info)?,
                Some(ValueKind::Int { size: 2, .. }) => MappedDataset::new::<u16>(map, &ds, info)?,
                Some(ValueKind::Int { size: 4, .. }) => MappedDataset::new::<u32>(map, &ds, info)?,
                Some(ValueKind::Int { .. }) => MappedDataset::new::<u64>(map, &ds, info)?,
                Some(ValueKind::Float { size: 4 }) => MappedDataset::new::<f32>(map, &ds, info)?,
                Some(ValueKind::Float { .. }) => MappedDataset::new::<f64>(map, &ds, info)?,
            };
            match outcome {
                Ok(m) => {
                    cols.mapped.push(format!("{name}: {}", m.describe()));
                    Ok(Some(m))
                }
                Err(why) => {
                    cols.fallbacks.push(format!("{name}: {why}"));
                    Ok(None)
                }
            }
        };
        const F64: ValueKind = ValueKind::Float { size: 8 };
        const F32: ValueKind = ValueKind::Float { size: 4 };
        const I8: ValueKind = ValueKind::Int {
            size: 1,
            signed: true,
        };
        const I64: ValueKind = ValueKind::Int {
            size: 8,
            signed: true,
        };
        let spectrum_kind = match mapping.spectrum.elem {
            PeakElem::F64 => F64,
            PeakElem::F32 => F32,
        };
        let spectrum = try_map(&mapping.spectrum.dataset, Some(&spectrum_kind))?;
        // GeMS stores `precursor_mz` as float32 or float64; float32 is widened after the
        // decode (exact, as libhdf5's conversion).
        let precursor_f32 = mapping
            .dataset_info(&mapping.precursor_mz)
            .is_some_and(|d| d.dtype == DType::Float { size: 4 });
        let precursor = try_map(
            &mapping.precursor_mz,
            Some(if precursor_f32 { &F32 } else { &F64 }),
        )?;
        let rt = match &mapping.rt {
            Some(d) => try_map(d, Some(&F32))?,
            None => None,
        };
        let charge = match &mapping.charge {
            Some(d) => try_map(d, Some(&I8))?,
            None => None,
        };
        let accuracy = match &mapping.accuracy {
            Some(d) => try_map(d, Some(&F32))?,
            None => None,
        };
        let lsh = match &mapping.lsh {
            Some((d, ValueKind::Str)) => try_map(d, None)?,
            Some((d, _)) => try_map(d, Some(&I64))?,
            None => None,
        };
        let passthrough = mapping
            .passthrough
            .iter()
            .map(|p| Ok(try_map(&p.dataset, Some(&p.kind))?.map(|m| (m, p.kind, p.width))))
            .collect::<Result<Vec<_>, InputError>>()?;
        cols.spectrum = spectrum;
        cols.precursor = precursor;
        cols.precursor_f32 = precursor_f32;
        cols.rt = rt;
        cols.charge = charge;
        cols.accuracy = accuracy;
        cols.lsh = lsh;
        cols.passthrough = passthrough;
        Ok(cols)
    }
}

/// Decode `rows` rows of `m` from `start` into a new vector of `rows * width` values.
fn mapped_vec<T: bytemuck::Pod + Default>(
    m: &MappedDataset,
    start: u64,
    rows: usize,
    width: usize,
    scratch: &mut DecodeScratch,
) -> Result<Vec<T>, InputError> {
    let mut v = vec![T::default(); rows * width];
    m.read_rows(start, rows, &mut v, scratch)?;
    Ok(v)
}

impl RawUnit {
    /// Hand the peak buffer back to the worker's scratch for the next unit.
    pub fn recycle(self, scratch: &mut DecodeScratch) {
        match self.peaks {
            PeakData::F64(v) => scratch.peaks_f64 = v,
            PeakData::F32(v) => scratch.peaks_f32 = v,
        }
    }

    /// Decode the columns left pending by the reader from the memory map (on a worker).
    pub fn decode_pending(&mut self, scratch: &mut DecodeScratch) -> Result<(), InputError> {
        let Some(cols) = self.pending.take() else {
            return Ok(());
        };
        let (start, rows) = (self.start_row, self.rows);
        if let Some(m) = &cols.spectrum {
            // The tensor decodes into the worker's reused buffer ([`RawUnit::recycle`]).
            let n = rows * 2 * self.slots;
            match &mut self.peaks {
                PeakData::F64(v) => {
                    *v = std::mem::take(&mut scratch.peaks_f64);
                    v.clear();
                    v.resize(n, 0.0);
                    m.read_rows(start, rows, v, scratch)?;
                }
                PeakData::F32(v) => {
                    *v = std::mem::take(&mut scratch.peaks_f32);
                    v.clear();
                    v.resize(n, 0.0);
                    m.read_rows(start, rows, v, scratch)?;
                }
            }
        }
        if let Some(m) = &cols.precursor {
            self.precursor_mz = if cols.precursor_f32 {
                let narrow: Vec<f32> = mapped_vec(m, start, rows, 1, scratch)?;
                narrow.into_iter().map(f64::from).collect()
            } else {
                mapped_vec(m, start, rows, 1, scratch)?
            };
        }
        if let Some(m) = &cols.rt {
            self.rt = Some(mapped_vec(m, start, rows, 1, scratch)?);
        }
        if let Some(m) = &cols.charge {
            self.charge = Some(mapped_vec(m, start, rows, 1, scratch)?);
        }
        if let Some(m) = &cols.accuracy {
            self.accuracy = Some(mapped_vec(m, start, rows, 1, scratch)?);
        }
        if let Some(m) = &cols.lsh {
            self.lsh = Some(LshData::Int(mapped_vec(m, start, rows, 1, scratch)?));
        }
        for (i, m) in cols.passthrough.iter().enumerate() {
            let Some((m, kind, width)) = m else { continue };
            let (kind, width, n) = (*kind, *width, *width);
            let flat: ArrayRef = match kind {
                ValueKind::Int {
                    size: 1,
                    signed: true,
                } => Arc::new(Int8Array::from(mapped_vec::<i8>(
                    m, start, rows, n, scratch,
                )?)),
                ValueKind::Int {
                    size: 2,
                    signed: true,
                } => Arc::new(Int16Array::from(mapped_vec::<i16>(
                    m, start, rows, n, scratch,
                )?)),
                ValueKind::Int {
                    size: 4,
                    signed: true,
                } => Arc::new(Int32Array::from(mapped_vec::<i32>(
                    m, start, rows, n, scratch,
                )?)),
                ValueKind::Int { signed: true, .. } => Arc::new(Int64Array::from(
                    mapped_vec::<i64>(m, start, rows, n, scratch)?,
                )),
                ValueKind::Int { size: 1, .. } => Arc::new(UInt8Array::from(mapped_vec::<u8>(
                    m, start, rows, n, scratch,
                )?)),
                ValueKind::Int { size: 2, .. } => Arc::new(UInt16Array::from(mapped_vec::<u16>(
                    m, start, rows, n, scratch,
                )?)),
                ValueKind::Int { size: 4, .. } => Arc::new(UInt32Array::from(mapped_vec::<u32>(
                    m, start, rows, n, scratch,
                )?)),
                ValueKind::Int { .. } => Arc::new(UInt64Array::from(mapped_vec::<u64>(
                    m, start, rows, n, scratch,
                )?)),
                ValueKind::Float { size: 4 } => Arc::new(Float32Array::from(mapped_vec::<f32>(
                    m, start, rows, n, scratch,
                )?)),
                ValueKind::Float { .. } => Arc::new(Float64Array::from(mapped_vec::<f64>(
                    m, start, rows, n, scratch,
                )?)),
                ValueKind::Str => unreachable!("strings are never mapped"),
            };
            self.passthrough[i] = wrap_width(flat, kind, width);
        }
        Ok(())
    }
}

/// A flat values array as the pass-through column: itself for width 1, else a fixed-size list.
fn wrap_width(flat: ArrayRef, kind: ValueKind, width: usize) -> ArrayRef {
    if width == 1 {
        return flat;
    }
    let field = Arc::new(Field::new("item", kind.arrow_type(), false));
    Arc::new(FixedSizeListArray::new(field, width as i32, flat, None))
}

/// An open input file ready to read row ranges.
pub struct FileReader {
    mapping: FileMapping,
    spectrum: h5::Dataset,
    precursor: h5::Dataset,
    rt: Option<h5::Dataset>,
    charge: Option<h5::Dataset>,
    accuracy: Option<h5::Dataset>,
    lsh: Option<h5::Dataset>,
    name: Option<h5::Dataset>,
    passthrough: Vec<h5::Dataset>,
    /// Datasets the workers decode from the map (native decoding only).
    mapped: Option<Arc<MappedColumns>>,
    // Kept last so datasets close before the file.
    _file: h5::File,
}

/// Chunk-cache bytes for a dataset read in bands of `unit_rows` rows: two bands of chunks,
/// clamped to [1 MiB, 256 MiB].
fn cache_bytes(info: &DatasetInfo, unit_rows: usize) -> usize {
    const MIB: u64 = 1 << 20;
    let Layout::Chunked(chunk) = &info.layout else {
        return MIB as usize;
    };
    let elem = match info.dtype {
        DType::Int { size, .. } | DType::Float { size } | DType::FixedString { size } => {
            size as u64
        }
        _ => 16,
    };
    let chunk_bytes = chunk.iter().product::<u64>().saturating_mul(elem);
    let across: u64 = info
        .shape
        .iter()
        .zip(chunk)
        .skip(1)
        .map(|(&d, &c)| d.div_ceil(c.max(1)))
        .product();
    let bands = (unit_rows as u64).div_ceil(chunk[0].max(1)) + 1;
    let want = chunk_bytes.saturating_mul(across).saturating_mul(bands);
    want.clamp(MIB, 256 * MIB) as usize
}

impl FileReader {
    fn open(
        mapping: &FileMapping,
        unit_rows: usize,
        decode: Decode,
    ) -> Result<FileReader, InputError> {
        let path = &mapping.path;
        let file = h5::File::open(path).map_err(|e| InputError::h5(path, None, e))?;
        let mapped = match decode {
            Decode::Libhdf5 => None,
            Decode::Native => Some(Arc::new(match MappedFile::open(path) {
                Ok(map) => MappedColumns::open(mapping, &file, &map)?,
                // A file system that cannot map files: everything through libhdf5.
                Err(e) => MappedColumns {
                    fallbacks: vec![format!("every dataset: {}", e.message)],
                    ..MappedColumns::default()
                },
            })),
        };
        let open = |name: &str| -> Result<h5::Dataset, InputError> {
            let ds = file
                .dataset(name)
                .map_err(|e| InputError::h5(path, Some(name), e))?;
            match mapping.dataset_info(name) {
                Some(info) if matches!(info.layout, Layout::Chunked(_)) => ds
                    .reopen_with_cache(&file, name, cache_bytes(info, unit_rows))
                    .map_err(|e| InputError::h5(path, Some(name), e)),
                _ => Ok(ds),
            }
        };
        let opt = |name: &Option<String>| name.as_deref().map(open).transpose();
        Ok(FileReader {
            spectrum: open(&mapping.spectrum.dataset)?,
            precursor: open(&mapping.precursor_mz)?,
            rt: opt(&mapping.rt)?,
            charge: opt(&mapping.charge)?,
            accuracy: opt(&mapping.accuracy)?,
            lsh: mapping.lsh.as_ref().map(|(d, _)| open(d)).transpose()?,
            name: opt(&mapping.name)?,
            passthrough: mapping
                .passthrough
                .iter()
                .map(|p| open(&p.dataset))
                .collect::<Result<_, _>>()?,
            mapping: mapping.clone(),
            mapped,
            _file: file,
        })
    }

    /// The datasets decoded from the memory map, with the fallbacks (native decoding only).
    pub fn mapped(&self) -> Option<&MappedColumns> {
        self.mapped.as_deref()
    }

    /// Read rows `start..start + rows` of every mapped dataset.
    pub fn read(
        &self,
        seq: u64,
        source_index: u16,
        first_spectrum_id: u64,
        start: u64,
        rows: usize,
    ) -> Result<RawUnit, InputError> {
        let m = &self.mapping;
        let path = &m.path;
        let n = rows as u64;
        let err = |d: &str| {
            let d = d.to_string();
            move |e: h5::H5Error| InputError::h5(path, Some(&d), e)
        };
        let pend = self.mapped.as_deref();
        let peaks = match m.spectrum.elem {
            _ if pend.is_some_and(|c| c.spectrum.is_some()) => match m.spectrum.elem {
                PeakElem::F64 => PeakData::F64(Vec::new()),
                PeakElem::F32 => PeakData::F32(Vec::new()),
            },
            PeakElem::F64 => {
                let mut v = Vec::new();
                self.spectrum
                    .read_rows::<f64>(start, n, &mut v)
                    .map_err(err(&m.spectrum.dataset))?;
                PeakData::F64(v)
            }
            PeakElem::F32 => {
                let mut v = Vec::new();
                self.spectrum
                    .read_rows::<f32>(start, n, &mut v)
                    .map_err(err(&m.spectrum.dataset))?;
                PeakData::F32(v)
            }
        };
        fn num<T: h5::Native>(
            ds: Option<&h5::Dataset>,
            name: &Option<String>,
            start: u64,
            n: u64,
            path: &Path,
        ) -> Result<Option<Vec<T>>, InputError> {
            match ds {
                None => Ok(None),
                Some(ds) => {
                    let mut v = Vec::new();
                    ds.read_rows::<T>(start, n, &mut v)
                        .map_err(|e| InputError::h5(path, name.as_deref(), e))?;
                    Ok(Some(v))
                }
            }
        }
        let mut precursor_mz = Vec::new();
        if pend.is_none_or(|c| c.precursor.is_none()) {
            self.precursor
                .read_rows::<f64>(start, n, &mut precursor_mz)
                .map_err(err(&m.precursor_mz))?;
        }
        fn unless(mapped: bool, ds: &Option<h5::Dataset>) -> Option<&h5::Dataset> {
            if mapped {
                None
            } else {
                ds.as_ref()
            }
        }
        let rt_ds = unless(pend.is_some_and(|c| c.rt.is_some()), &self.rt);
        let charge_ds = unless(pend.is_some_and(|c| c.charge.is_some()), &self.charge);
        let accuracy_ds = unless(pend.is_some_and(|c| c.accuracy.is_some()), &self.accuracy);
        let lsh_ds = unless(pend.is_some_and(|c| c.lsh.is_some()), &self.lsh);
        let lsh = match (lsh_ds, &m.lsh) {
            (Some(ds), Some((d, ValueKind::Str))) => {
                let mut v = Vec::with_capacity(rows);
                ds.read_strings(start, n, &mut v).map_err(err(d))?;
                Some(LshData::Str(v))
            }
            (Some(ds), Some((d, _))) => {
                let mut v = Vec::new();
                ds.read_rows::<i64>(start, n, &mut v).map_err(err(d))?;
                Some(LshData::Int(v))
            }
            _ => None,
        };
        let name = match (&self.name, &m.name) {
            (Some(ds), Some(d)) => {
                let mut v = Vec::with_capacity(rows);
                ds.read_strings(start, n, &mut v).map_err(err(d))?;
                Some(v)
            }
            _ => None,
        };
        let passthrough = self
            .passthrough
            .iter()
            .zip(&m.passthrough)
            .enumerate()
            .map(|(i, (ds, p))| {
                if pend.is_some_and(|c| c.passthrough[i].is_some()) {
                    // Placeholder, replaced by `decode_pending`.
                    Ok(Arc::new(Int8Array::from(Vec::<i8>::new())) as ArrayRef)
                } else {
                    read_pass(ds, p, start, n).map_err(err(&p.dataset))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(RawUnit {
            seq,
            source_index,
            start_row: start,
            rows,
            first_spectrum_id,
            slots: m.spectrum.slots,
            orientation: m.spectrum.orientation,
            peaks,
            precursor_mz,
            rt: num::<f32>(rt_ds, &m.rt, start, n, path)?,
            charge: num::<i8>(charge_ds, &m.charge, start, n, path)?,
            accuracy: num::<f32>(accuracy_ds, &m.accuracy, start, n, path)?,
            lsh,
            name,
            passthrough,
            pending: self.mapped.clone(),
        })
    }
}

fn read_pass(
    ds: &h5::Dataset,
    p: &PassColumn,
    start: u64,
    n: u64,
) -> Result<ArrayRef, h5::H5Error> {
    fn values<T: h5::Native>(ds: &h5::Dataset, start: u64, n: u64) -> Result<Vec<T>, h5::H5Error> {
        let mut v = Vec::new();
        ds.read_rows::<T>(start, n, &mut v)?;
        Ok(v)
    }
    let flat: ArrayRef = match p.kind {
        ValueKind::Int {
            size: 1,
            signed: true,
        } => Arc::new(Int8Array::from(values::<i8>(ds, start, n)?)),
        ValueKind::Int {
            size: 2,
            signed: true,
        } => Arc::new(Int16Array::from(values::<i16>(ds, start, n)?)),
        ValueKind::Int {
            size: 4,
            signed: true,
        } => Arc::new(Int32Array::from(values::<i32>(ds, start, n)?)),
        ValueKind::Int { signed: true, .. } => {
            Arc::new(Int64Array::from(values::<i64>(ds, start, n)?))
        }
        ValueKind::Int { size: 1, .. } => Arc::new(UInt8Array::from(values::<u8>(ds, start, n)?)),
        ValueKind::Int { size: 2, .. } => Arc::new(UInt16Array::from(values::<u16>(ds, start, n)?)),
        ValueKind::Int { size: 4, .. } => Arc::new(UInt32Array::from(values::<u32>(ds, start, n)?)),
        ValueKind::Int { .. } => Arc::new(UInt64Array::from(values::<u64>(ds, start, n)?)),
        ValueKind::Float { size: 4 } => Arc::new(Float32Array::from(values::<f32>(ds, start, n)?)),
        ValueKind::Float { .. } => Arc::new(Float64Array::from(values::<f64>(ds, start, n)?)),
        ValueKind::Str => {
            let mut v = Vec::with_capacity(n as usize);
            ds.read_strings(start, n, &mut v)?;
            Arc::new(StringArray::from(v))
        }
    };
    if p.width == 1 {
        return Ok(flat);
    }
    let field = Arc::new(Field::new("item", p.kind.arrow_type(), false));
    Ok(Arc::new(FixedSizeListArray::new(
        field,
        p.width as i32,
        flat,
        None,
    )))
}
