//! Reading row ranges of an input file ([`FileReader`]) into read units ([`RawUnit`]).
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

use std::sync::Arc;

use arrow::array::{ArrayRef, Int8Array};
use msms_kernels::Orientation;

use crate::read::columns::{MappedColumns, UnitColumns};
use crate::read::detect::FileMapping;
use crate::read::dtype::{LshData, PeakData, PeakElem, ValueKind};
use crate::read::error::InputError;
use crate::read::h5::{self, DatasetInfo, Layout};
use crate::read::mapped::{DecodeScratch, MappedFile};
use crate::read::passthrough::read_pass;
use crate::read::Decode;

/// The rows `start_row..start_row + rows` of one input file, as read.
#[derive(Debug)]
pub(crate) struct RawUnit {
    /// Position of the unit in the whole run (ordering key).
    pub(crate) seq: u64,
    /// Position of the file among the inputs.
    pub(crate) source_index: u16,
    /// First row in the file.
    pub(crate) start_row: u64,
    /// Rows in the unit.
    pub(crate) rows: usize,
    /// `spectrum_id` of the first row.
    pub(crate) first_spectrum_id: u64,
    /// Peak slots per spectrum.
    pub(crate) slots: usize,
    /// Peak layout.
    pub(crate) orientation: Orientation,
    /// rows × 2 × slots values.
    pub(crate) peaks: PeakData,
    /// Precursor m/z, widened to f64.
    pub(crate) precursor_mz: Vec<f64>,
    /// Retention time.
    pub(crate) rt: Option<Vec<f32>>,
    /// Charge.
    pub(crate) charge: Option<Vec<i8>>,
    /// Instrument accuracy estimate.
    pub(crate) accuracy: Option<Vec<f32>>,
    /// LSH.
    pub(crate) lsh: Option<LshData>,
    /// Name or file name.
    pub(crate) name: Option<Vec<String>>,
    /// Pass-through columns, in mapping order, `rows` long.
    pub(crate) passthrough: Vec<ArrayRef>,
    /// Rows (from the unit's first) with a string that was not UTF-8 (U+FFFD put in),
    /// ascending, each once.
    pub(crate) invalid_utf8: Vec<u64>,
    /// Columns still to be decoded from the memory map ([`RawUnit::decode_pending`]).
    pub(crate) pending: Option<Arc<MappedColumns>>,
}

impl RawUnit {
    /// Hand the peak buffer back to the worker's scratch for the next unit.
    pub(crate) fn recycle(self, scratch: &mut DecodeScratch) {
        match self.peaks {
            PeakData::F64(v) => scratch.peaks_f64 = v,
            PeakData::F32(v) => scratch.peaks_f32 = v,
        }
    }

    /// Decode the columns left pending by the reader from the memory map (on a worker).
    pub(crate) fn decode_pending(&mut self, scratch: &mut DecodeScratch) -> Result<(), InputError> {
        let Some(cols) = self.pending.take() else {
            return Ok(());
        };
        let at = UnitColumns {
            start: self.start_row,
            rows: self.rows,
            slots: self.slots,
            peaks: &mut self.peaks,
            precursor_mz: &mut self.precursor_mz,
            rt: &mut self.rt,
            charge: &mut self.charge,
            accuracy: &mut self.accuracy,
            lsh: &mut self.lsh,
            passthrough: &mut self.passthrough,
        };
        cols.decode(at, scratch)
    }
}

/// An open input file ready to read row ranges.
pub(crate) struct FileReader {
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

impl FileMapping {
    /// Open the file for reading row ranges of about `unit_rows` rows with `decode`.
    pub(crate) fn reader(
        &self,
        unit_rows: usize,
        decode: Decode,
    ) -> Result<FileReader, InputError> {
        FileReader::open(self, unit_rows, decode)
    }
}

/// Chunk-cache bytes for a dataset read in bands of `unit_rows` rows: two bands of chunks,
/// clamped to [1 MiB, 256 MiB].
fn cache_bytes(info: &DatasetInfo, unit_rows: usize) -> usize {
    const MIB: u64 = 1 << 20;
    let Layout::Chunked(chunk) = &info.layout else {
        return MIB as usize;
    };
    // Bytes per element in a chunk (a compound: all its members, which are read one at a
    // time, so a chunk that does not fit would be inflated again for each).
    let elem = info.dtype.stored_size().unwrap_or(16) as u64;
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
                Err(e) => MappedColumns::none(format!("every dataset: {}", e.message)),
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
    pub(crate) fn mapped(&self) -> Option<&MappedColumns> {
        self.mapped.as_deref()
    }

    /// Is the dataset `which` picks decoded from the map (left pending in the unit)?
    fn pending(&self, which: impl Fn(&MappedColumns) -> bool) -> bool {
        self.mapped.as_deref().is_some_and(which)
    }

    /// `ds`, unless its data is decoded from the map.
    fn unless_mapped<'d>(
        &self,
        ds: &'d Option<h5::Dataset>,
        which: impl Fn(&MappedColumns) -> bool,
    ) -> Option<&'d h5::Dataset> {
        if self.pending(which) {
            None
        } else {
            ds.as_ref()
        }
    }

    /// An error of dataset `name` of this file.
    fn h5_error(&self, name: &str) -> impl Fn(h5::H5Error) -> InputError + '_ {
        let name = name.to_string();
        move |e| InputError::h5(&self.mapping.path, Some(&name), e)
    }

    /// Read rows `start..start + rows` of every mapped dataset.
    pub(crate) fn read(
        &self,
        seq: u64,
        source_index: u16,
        first_spectrum_id: u64,
        start: u64,
        rows: usize,
    ) -> Result<RawUnit, InputError> {
        let m = &self.mapping;
        let n = rows as u64;
        let peaks = self.read_peaks(start, n)?;
        let mut precursor_mz = Vec::new();
        if !self.pending(|c| c.precursor.is_some()) {
            self.precursor
                .read_rows::<f64>(start, n, &mut precursor_mz)
                .map_err(self.h5_error(&m.precursor_mz))?;
        }
        let mut invalid_utf8 = Vec::new();
        let lsh = self.read_lsh(start, rows, &mut invalid_utf8)?;
        let name = match (&self.name, &m.name) {
            (Some(ds), Some(d)) => {
                let mut v = Vec::with_capacity(rows);
                invalid_utf8.extend(
                    ds.read_strings(start, n, &mut v)
                        .map_err(self.h5_error(d))?,
                );
                Some(v)
            }
            _ => None,
        };
        let passthrough = self.read_passthrough(start, n, &mut invalid_utf8)?;
        invalid_utf8.sort_unstable();
        invalid_utf8.dedup();
        let rt_ds = self.unless_mapped(&self.rt, |c| c.rt.is_some());
        let charge_ds = self.unless_mapped(&self.charge, |c| c.charge.is_some());
        let accuracy_ds = self.unless_mapped(&self.accuracy, |c| c.accuracy.is_some());
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
            rt: self.read_num::<f32>(rt_ds, &m.rt, start, n)?,
            charge: self.read_num::<i8>(charge_ds, &m.charge, start, n)?,
            accuracy: self.read_num::<f32>(accuracy_ds, &m.accuracy, start, n)?,
            lsh,
            name,
            passthrough,
            invalid_utf8,
            pending: self.mapped.clone(),
        })
    }

    /// The tensor rows through libhdf5, or an empty buffer of the stored type when the
    /// workers decode them from the map.
    fn read_peaks(&self, start: u64, n: u64) -> Result<PeakData, InputError> {
        let spectrum = &self.mapping.spectrum;
        let elem = spectrum.elem;
        if self.pending(|c| c.spectrum.is_some()) {
            return Ok(match elem {
                PeakElem::F64 => PeakData::F64(Vec::new()),
                PeakElem::F32 => PeakData::F32(Vec::new()),
            });
        }
        let err = self.h5_error(&spectrum.dataset);
        Ok(match elem {
            PeakElem::F64 => {
                let mut v = Vec::new();
                self.spectrum
                    .read_rows::<f64>(start, n, &mut v)
                    .map_err(err)?;
                PeakData::F64(v)
            }
            PeakElem::F32 => {
                let mut v = Vec::new();
                self.spectrum
                    .read_rows::<f32>(start, n, &mut v)
                    .map_err(err)?;
                PeakData::F32(v)
            }
        })
    }

    /// One number per row of the optional dataset `ds` (named `name`), as `T`.
    fn read_num<T: h5::Native>(
        &self,
        ds: Option<&h5::Dataset>,
        name: &Option<String>,
        start: u64,
        n: u64,
    ) -> Result<Option<Vec<T>>, InputError> {
        match ds {
            None => Ok(None),
            Some(ds) => {
                let mut v = Vec::new();
                ds.read_rows::<T>(start, n, &mut v)
                    .map_err(|e| InputError::h5(&self.mapping.path, name.as_deref(), e))?;
                Ok(Some(v))
            }
        }
    }

    /// `lsh` through libhdf5 (strings, or integers as int64), unless decoded from the map.
    fn read_lsh(
        &self,
        start: u64,
        rows: usize,
        invalid_utf8: &mut Vec<u64>,
    ) -> Result<Option<LshData>, InputError> {
        let n = rows as u64;
        let lsh_ds = self.unless_mapped(&self.lsh, |c| c.lsh.is_some());
        Ok(match (lsh_ds, &self.mapping.lsh) {
            (Some(ds), Some((d, ValueKind::Str))) => {
                let mut v = Vec::with_capacity(rows);
                invalid_utf8.extend(
                    ds.read_strings(start, n, &mut v)
                        .map_err(self.h5_error(d))?,
                );
                Some(LshData::Str(v))
            }
            (Some(ds), Some((d, _))) => {
                let mut v = Vec::new();
                ds.read_rows::<i64>(start, n, &mut v)
                    .map_err(self.h5_error(d))?;
                Some(LshData::Int(v))
            }
            _ => None,
        })
    }

    /// Every pass-through column through libhdf5, or a placeholder for those decoded from
    /// the map.
    fn read_passthrough(
        &self,
        start: u64,
        n: u64,
        invalid_utf8: &mut Vec<u64>,
    ) -> Result<Vec<ArrayRef>, InputError> {
        self.passthrough
            .iter()
            .zip(&self.mapping.passthrough)
            .enumerate()
            .map(|(i, (ds, p))| {
                if self.pending(|c| c.passthrough[i].is_some()) {
                    // Placeholder, replaced by `decode_pending`.
                    Ok(Arc::new(Int8Array::from(Vec::<i8>::new())) as ArrayRef)
                } else {
                    read_pass(ds, p, start, n, invalid_utf8).map_err(self.h5_error(&p.dataset))
                }
            })
            .collect()
    }
}
