//! Detection: how one GeMS-style HDF5 file maps onto the output schema ([`FileMapping`]).
//!
//! Detection happens once per file, on one thread, before anything is written; a file that
//! cannot be converted (no spectrum tensor, datasets of different lengths, an unsupported
//! dtype or shape, no rows, or shapes declaring more data than the file can hold) is refused
//! with an [`InputError`] naming the file and the dataset. [`FileMapping::detect`] runs the
//! steps in order: list the root group, find the peak tensor, check that every other dataset
//! is per spectrum, assign the fixed columns, pass the rest through, bound the declared size.

use std::fmt;
use std::path::{Path, PathBuf};

use arrow::datatypes::DataType;
use msms_kernels::Orientation;

use crate::read::dtype::{width_type, PeakElem, ValueKind, MAX_ROW_VALUES};
use crate::read::error::InputError;
use crate::read::h5::{self, DType, DatasetInfo, Layout, ObjectKind};

/// Decoded input bytes one read unit may hold; wider rows give units (and row groups) of
/// fewer than `batch_size` spectra, so memory stays bounded whatever the input declares.
pub(crate) const UNIT_BYTES_BUDGET: u64 = 64 << 20;
/// Largest number of peak slots per spectrum (`num_peaks` is a uint16).
pub(crate) const MAX_PEAK_SLOTS: u64 = u16::MAX as u64;
/// Most bytes a stored byte can decode to: deflate's ceiling (a 258-byte match per 2 bits).
/// Data beyond this many times the file size cannot be stored in it: it would be fill values
/// of chunks never written, declared by the shape alone.
pub(crate) const MAX_EXPANSION: u64 = 1032;
/// Decoded bytes a file may declare beyond `MAX_EXPANSION` times its size (small files with
/// a few datasets never written, which read as fill values).
pub(crate) const DECLARED_SLACK: u64 = 16 << 20;

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
    pub(crate) fn data_type(&self) -> DataType {
        width_type(self.kind.arrow_type(), self.width)
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
    /// Per-spectrum datasets no output column can carry (their type or shape), with the
    /// reason: left out of the conversion (`--strict-columns` refuses the file instead).
    pub left_out: Vec<(String, String)>,
    /// Metadata of every dataset, for reports.
    pub datasets: Vec<DatasetInfo>,
}

/// Names of the fixed output columns; a pass-through dataset with one of these names is
/// written as `input_<name>`.
pub(crate) const FIXED_COLUMNS: [&str; 12] = [
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
        let (datasets, mut skipped) = list_root(file)?;
        let spec = ["spectrum", "spectra"]
            .iter()
            .find_map(|n| datasets.iter().find(|d| d.name == *n))
            .cloned()
            .ok_or_else(|| {
                InputError::new(
                    path,
                    None,
                    "no spectrum tensor: expected a dataset `spectrum` (N, 2, P) or `spectra` (N, P, 2)",
                )
            })?;
        let spectrum = spectrum_mapping(path, &spec)?;
        let rows = spec.shape[0];
        let per_spectrum = per_spectrum(path, &datasets, &spec, &mut skipped)?;
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
            left_out: Vec::new(),
            datasets: datasets.clone(),
        };
        let mut picker = Picker {
            path,
            per_spectrum: &per_spectrum,
            used: vec![spec.name.clone()],
        };
        picker.assign_fixed(&mut mapping)?;
        for d in per_spectrum
            .iter()
            .filter(|d| !picker.used.contains(&d.name))
        {
            match pass_column(path, d) {
                Ok(column) => mapping.passthrough.push(column),
                Err(e) => mapping.left_out.push((d.name.clone(), e.message)),
            }
        }
        // The tensor and the fixed columns now; the pass-through columns once they are
        // chosen (`--columns`), so that one left out or excluded never refuses the file.
        mapping.check_reads(false)?;
        Ok(mapping)
    }

    /// Refuse what a conversion would read but cannot: more declared bytes than the file
    /// can hold ([`FileMapping::check_declared_size`]) and a filter nobody decodes
    /// ([`crate::read::filters::check`]), over the tensor and the fixed columns, and with
    /// `passthrough` the pass-through columns too. Nothing left out or not chosen counts.
    pub(crate) fn check_reads(&self, passthrough: bool) -> Result<(), InputError> {
        let fixed_only;
        let m = if passthrough {
            self
        } else {
            fixed_only = FileMapping {
                passthrough: Vec::new(),
                ..self.clone()
            };
            &fixed_only
        };
        let Some(spec) = m.dataset_info(&m.spectrum.dataset) else {
            return Ok(());
        };
        let read: Vec<&DatasetInfo> = m.used_datasets().filter(|d| d.name != spec.name).collect();
        m.check_declared_size(spec, &read)?;
        std::iter::once(spec)
            .chain(read.iter().copied())
            .try_for_each(|d| crate::read::filters::check(&m.path, d, true))
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
        let elem = |d: &DatasetInfo| -> u128 { d.dtype.stored_size().unwrap_or(0) as u128 };
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
    /// ([`value_bytes`] of each value).
    pub(crate) fn row_bytes(&self) -> u64 {
        let elem = match self.spectrum.elem {
            PeakElem::F32 => 4,
            PeakElem::F64 => 8,
        };
        let dataset_value = |d: &str| self.dataset_info(d).map_or(64, |i| value_bytes(&i.dtype));
        // `lsh` and `name` as 64 bytes (an int64 `lsh` too) or their fixed string size.
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
                .map(|p| (p.width as u64).saturating_mul(dataset_value(&p.dataset)))
                .fold(0, u64::saturating_add)
    }

    /// Rows per chunk of the spectrum dataset (`None` when it is not chunked).
    pub(crate) fn spectrum_chunk_rows(&self) -> Option<u64> {
        match &self.dataset_info(&self.spectrum.dataset)?.layout {
            Layout::Chunked(c) => c.first().copied().filter(|&r| r > 0),
            _ => None,
        }
    }

    /// Metadata of the dataset `name`, when the file has one.
    /// This mapping with only the pass-through columns `keep` names (all when `None`) and
    /// none `drop` names, matching a dataset's name or its output column's; datasets left
    /// out ([`FileMapping::left_out`]) are chosen the same way (the others are not read and
    /// not reported; the settings record the choice).
    pub(crate) fn select_columns(&self, keep: Option<&[String]>, drop: &[String]) -> FileMapping {
        let chosen = |names: [&str; 2]| {
            keep.is_none_or(|k| k.iter().any(|x| names.contains(&x.as_str())))
                && !drop.iter().any(|x| names.contains(&x.as_str()))
        };
        let mut out = self.clone();
        out.passthrough
            .retain(|p| chosen([p.dataset.as_str(), p.column.as_str()]));
        out.left_out
            .retain(|(d, _)| chosen([d.as_str(), d.as_str()]));
        out
    }

    /// The names `--columns` and `--exclude-columns` may use for this file: its pass-through
    /// datasets and columns, and the datasets left out.
    pub(crate) fn column_names(&self) -> Vec<&str> {
        self.passthrough
            .iter()
            .flat_map(|p| [p.dataset.as_str(), p.column.as_str()])
            .chain(self.left_out.iter().map(|(d, _)| d.as_str()))
            .collect()
    }

    /// The datasets a conversion reads: the spectrum tensor, the fixed columns' and the
    /// pass-through columns'.
    pub(crate) fn used_datasets(&self) -> impl Iterator<Item = &DatasetInfo> {
        let names: Vec<&str> = [
            Some(self.spectrum.dataset.as_str()),
            Some(self.precursor_mz.as_str()),
            self.rt.as_deref(),
            self.charge.as_deref(),
            self.accuracy.as_deref(),
            self.lsh.as_ref().map(|(n, _)| n.as_str()),
            self.name.as_deref(),
        ]
        .into_iter()
        .flatten()
        .chain(self.passthrough.iter().map(|p| p.dataset.as_str()))
        .collect();
        self.datasets
            .iter()
            .filter(move |d| names.contains(&d.name.as_str()))
    }

    /// Refuse the inputs when a dataset the run reads has a filter that `decode` cannot undo
    /// ([`crate::read::filters::check`]; detection already checked the native path).
    pub(crate) fn check_filters(&self, decode: crate::read::Decode) -> Result<(), InputError> {
        let native = decode == crate::read::Decode::Native;
        self.used_datasets()
            .try_for_each(|d| crate::read::filters::check(&self.path, d, native))
    }

    pub(crate) fn dataset_info(&self, name: &str) -> Option<&DatasetInfo> {
        self.datasets.iter().find(|d| d.name == name)
    }
}

/// Members of the root group that are not converted, with the reason ([`FileMapping::skipped`]).
type Skipped = Vec<(String, &'static str)>;

/// The datasets of the root group with their metadata, and the other members skipped with
/// the reason.
fn list_root(file: &h5::File) -> Result<(Vec<DatasetInfo>, Skipped), InputError> {
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
            ObjectKind::Group => skipped.push((name, "group (per-file arrays, not per spectrum)")),
            ObjectKind::Other => skipped.push((name, "not a dataset")),
        }
    }
    Ok((datasets, skipped))
}

/// Every dataset but the tensor `spec` must be per spectrum: same first dimension. Scalars
/// are skipped (added to `skipped`); a different length refuses the file.
fn per_spectrum<'d>(
    path: &Path,
    datasets: &'d [DatasetInfo],
    spec: &DatasetInfo,
    skipped: &mut Skipped,
) -> Result<Vec<&'d DatasetInfo>, InputError> {
    let rows = spec.shape[0];
    let mut per_spectrum = Vec::new();
    for d in datasets {
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
    Ok(per_spectrum)
}

/// Assigns the per-spectrum datasets to the fixed columns by name, remembering which ones
/// it used (the rest are passed through).
struct Picker<'a> {
    path: &'a Path,
    per_spectrum: &'a [&'a DatasetInfo],
    used: Vec<String>,
}

impl<'a> Picker<'a> {
    /// The first of `names` present, marked used.
    fn pick(&mut self, names: &[&str]) -> Option<&'a DatasetInfo> {
        let per_spectrum = self.per_spectrum;
        let d = names
            .iter()
            .find_map(|n| per_spectrum.iter().find(|d| d.name == *n))?;
        self.used.push(d.name.clone());
        Some(*d)
    }

    /// `d`'s name when it holds one number per spectrum.
    fn numeric_1d(&self, d: &DatasetInfo) -> Result<String, InputError> {
        match ValueKind::of(&d.dtype) {
            Ok(ValueKind::Num(_)) if d.shape.len() == 1 => Ok(d.name.clone()),
            Ok(ValueKind::Num(_)) => Err(InputError::new(
                self.path,
                Some(&d.name),
                format!(
                    "unsupported shape {:?}: expected one value per spectrum",
                    d.shape
                ),
            )),
            _ => Err(InputError::new(
                self.path,
                Some(&d.name),
                format!(
                    "unsupported dtype {}: expected a number per spectrum",
                    d.dtype
                ),
            )),
        }
    }

    /// The first of `names` present, checked to be one number per spectrum.
    fn numeric(&mut self, names: &[&str]) -> Result<Option<String>, InputError> {
        self.pick(names).map(|d| self.numeric_1d(d)).transpose()
    }

    /// Assign precursor m/z (required), RT, charge, accuracy, lsh and name.
    fn assign_fixed(&mut self, m: &mut FileMapping) -> Result<(), InputError> {
        m.precursor_mz = self
            .numeric(&["precursor_mz", "precursor mz"])?
            .ok_or_else(|| {
                InputError::new(
                    self.path,
                    None,
                    "no precursor m/z: expected a dataset `precursor_mz` or `precursor mz`",
                )
            })?;
        m.rt = self.numeric(&["RT", "rt"])?;
        m.charge = self.numeric(&["charge"])?;
        m.accuracy = self.numeric(&["instrument accuracy est."])?;
        if let Some(d) = self.pick(&["lsh"]) {
            let kind = match ValueKind::of(&d.dtype) {
                Ok(k @ ValueKind::Num(e)) if e.is_int() && d.shape.len() == 1 => k,
                Ok(ValueKind::Str) if d.shape.len() == 1 => ValueKind::Str,
                _ => {
                    return Err(InputError::new(
                        self.path,
                        Some(&d.name),
                        format!("unsupported dtype {} or shape {:?} for lsh: expected int64 or strings (N,)", d.dtype, d.shape),
                    ))
                }
            };
            m.lsh = Some((d.name.clone(), kind));
        }
        if let Some(d) = self.pick(&["name", "file_name"]) {
            if ValueKind::of(&d.dtype) != Ok(ValueKind::Str) || d.shape.len() != 1 {
                return Err(InputError::new(
                    self.path,
                    Some(&d.name),
                    format!(
                        "unsupported dtype {} or shape {:?}: expected strings (N,)",
                        d.dtype, d.shape
                    ),
                ));
            }
            m.name = Some(d.name.clone());
        }
        Ok(())
    }
}

/// Decoded bytes of one value stored as `d`, for sizing read units: its size for numbers,
/// at least 64 bytes for a string or a label (the text and its offset), the members' sum for
/// a compound, the elements' for an array type.
fn value_bytes(d: &DType) -> u64 {
    match d {
        DType::Int { size, .. } | DType::Float { size } => *size as u64,
        DType::FixedString { size } => (*size as u64).max(64),
        DType::VarString | DType::VarBytes | DType::Enum { .. } | DType::Other(_) => 64,
        DType::Bool => 1,
        DType::Compound { members, .. } => members
            .iter()
            .map(|(_, t)| value_bytes(t))
            .fold(0, u64::saturating_add),
        DType::Array { dims, base } => h5::values_in(dims).saturating_mul(value_bytes(base)),
    }
}

/// A per-spectrum dataset not assigned to a fixed column, as a pass-through column: any
/// shape (N, ...) of values of any [`ValueKind`], at most [`MAX_ROW_VALUES`] values per row
/// (leaf values: through compounds and array types).
fn pass_column(path: &Path, d: &DatasetInfo) -> Result<PassColumn, InputError> {
    let refuse = |why: String| InputError::new(path, Some(&d.name), why);
    let width = h5::values_in(&d.shape[1..]);
    if !(1..=MAX_ROW_VALUES).contains(&width) {
        return Err(refuse(format!(
            "unsupported shape {:?} for a pass-through column",
            d.shape
        )));
    }
    let kind = ValueKind::of(&d.dtype).map_err(refuse)?;
    let per_row = width.saturating_mul(kind.leaf_values());
    if per_row > MAX_ROW_VALUES {
        return Err(refuse(format!(
            "{} {:?} holds {per_row} values per row (1 to {MAX_ROW_VALUES} are read)",
            d.dtype, d.shape
        )));
    }
    let column = if FIXED_COLUMNS.contains(&d.name.as_str()) {
        format!("input_{}", d.name)
    } else {
        d.name.clone()
    };
    Ok(PassColumn {
        dataset: d.name.clone(),
        column,
        kind,
        width: width as usize,
    })
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
            left_out: vec![],
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
        for (name, why) in &self.left_out {
            writeln!(
                f,
                "  left out {name}: {why} (--strict-columns refuses the file)"
            )?;
        }
        for (name, why) in &self.skipped {
            writeln!(f, "  skipped {name}: {why}")?;
        }
        Ok(())
    }
}
