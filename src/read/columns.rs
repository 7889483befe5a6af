//! The datasets of one file that the workers decode from its memory map
//! ([`MappedColumns`]), and decoding them into a read unit's columns on a worker.
//!
//! The reader thread prepares them once per file ([`crate::read::mapped::MappedDataset::new`]
//! says which datasets qualify and why others fall back to libhdf5); each unit it reads
//! leaves them pending, and [`MappedColumns::decode`] fills them in.

use std::sync::Arc;

use arrow::array::ArrayRef;

use crate::read::detect::FileMapping;
use crate::read::dtype::{with_elem, wrap_width, Elem, ElemType, LshData, PeakData, ValueKind};
use crate::read::error::InputError;
use crate::read::h5::{self, DType};
use crate::read::mapped::{DecodeScratch, MappedDataset, MappedFile};

/// The datasets of one file that the workers decode from its memory map; `None` entries
/// are read through libhdf5.
#[derive(Debug, Default)]
pub(crate) struct MappedColumns {
    pub(crate) spectrum: Option<MappedDataset>,
    pub(crate) precursor: Option<MappedDataset>,
    /// `precursor` is stored as float32 (widened to float64 after decoding).
    precursor_f32: bool,
    pub(crate) rt: Option<MappedDataset>,
    pub(crate) charge: Option<MappedDataset>,
    pub(crate) accuracy: Option<MappedDataset>,
    pub(crate) lsh: Option<MappedDataset>,
    /// Per pass-through column: the mapped dataset, its element type and values per row.
    pub(crate) passthrough: Vec<Option<(MappedDataset, Elem, usize)>>,
    /// `dataset: reason` for each numeric dataset that falls back to libhdf5.
    pub(crate) fallbacks: Vec<String>,
    /// `dataset: decode path` for each mapped dataset.
    pub(crate) mapped: Vec<String>,
}

/// Prepares the datasets of one file for mapped decoding, recording which are mapped and
/// why the others fall back.
struct Mapper<'a> {
    mapping: &'a FileMapping,
    file: &'a h5::File,
    map: &'a Arc<MappedFile>,
    cols: MappedColumns,
}

impl Mapper<'_> {
    /// Prepare dataset `name` as `elem` (`None`: strings, never mapped, though the dataset is
    /// still opened). `None` when the file has no such dataset or it falls back.
    fn try_map(
        &mut self,
        name: &str,
        elem: Option<Elem>,
    ) -> Result<Option<MappedDataset>, InputError> {
        let path = &self.mapping.path;
        let Some(info) = self.mapping.dataset_info(name) else {
            return Ok(None);
        };
        let ds = self
            .file
            .dataset(name)
            .map_err(|e| InputError::h5(path, Some(name), e))?;
        let Some(elem) = elem else {
            return Ok(None);
        };
        let outcome = with_elem!(elem, T => MappedDataset::new::<T>(self.map, &ds, info)?);
        match outcome {
            Ok(m) => {
                self.cols.mapped.push(format!("{name}: {}", m.describe()));
                Ok(Some(m))
            }
            Err(why) => {
                self.cols.fallbacks.push(format!("{name}: {why}"));
                Ok(None)
            }
        }
    }

    /// [`Mapper::try_map`] for an optional dataset.
    fn try_map_opt(
        &mut self,
        name: &Option<String>,
        elem: Elem,
    ) -> Result<Option<MappedDataset>, InputError> {
        match name {
            Some(d) => self.try_map(d, Some(elem)),
            None => Ok(None),
        }
    }
}

impl MappedColumns {
    /// Nothing mapped: every dataset falls back to libhdf5 for `why`.
    pub(crate) fn none(why: String) -> MappedColumns {
        MappedColumns {
            fallbacks: vec![why],
            ..MappedColumns::default()
        }
    }

    /// Prepare every numeric dataset of `mapping` that can be decoded from `map`.
    pub(crate) fn open(
        mapping: &FileMapping,
        file: &h5::File,
        map: &Arc<MappedFile>,
    ) -> Result<MappedColumns, InputError> {
        let mut m = Mapper {
            mapping,
            file,
            map,
            cols: MappedColumns::default(),
        };
        let spectrum = m.try_map(
            &mapping.spectrum.dataset,
            Some(mapping.spectrum.elem.elem()),
        )?;
        // GeMS stores `precursor_mz` as float32 or float64; float32 is widened after the
        // decode (exact, as libhdf5's conversion).
        let precursor_f32 = mapping
            .dataset_info(&mapping.precursor_mz)
            .is_some_and(|d| d.dtype == DType::Float { size: 4 });
        let precursor = m.try_map(
            &mapping.precursor_mz,
            Some(if precursor_f32 { Elem::F32 } else { Elem::F64 }),
        )?;
        let rt = m.try_map_opt(&mapping.rt, Elem::F32)?;
        let charge = m.try_map_opt(&mapping.charge, Elem::I8)?;
        let accuracy = m.try_map_opt(&mapping.accuracy, Elem::F32)?;
        let lsh = match &mapping.lsh {
            Some((d, ValueKind::Str)) => m.try_map(d, None)?,
            Some((d, _)) => m.try_map(d, Some(Elem::I64))?,
            None => None,
        };
        let passthrough = mapping
            .passthrough
            .iter()
            .map(|p| {
                // Numbers are decoded from the map; anything else is read through libhdf5.
                let elem = match p.kind {
                    ValueKind::Num(e) => Some(e),
                    _ => None,
                };
                let mapped = m.try_map(&p.dataset, elem)?;
                Ok(mapped.zip(elem).map(|(d, e)| (d, e, p.width)))
            })
            .collect::<Result<Vec<_>, InputError>>()?;
        Ok(MappedColumns {
            spectrum,
            precursor,
            precursor_f32,
            rt,
            charge,
            accuracy,
            lsh,
            passthrough,
            ..m.cols
        })
    }

    /// Decode rows `at.start..at.start + at.rows` of every mapped dataset into `at`'s
    /// columns (on a worker). The tensor decodes into the worker's reused buffer.
    pub(crate) fn decode(
        &self,
        at: UnitColumns<'_>,
        scratch: &mut DecodeScratch,
    ) -> Result<(), InputError> {
        let (start, rows) = (at.start, at.rows);
        if let Some(m) = &self.spectrum {
            decode_peaks(m, start, rows, at.slots, at.peaks, scratch)?;
        }
        if let Some(m) = &self.precursor {
            *at.precursor_mz = if self.precursor_f32 {
                let narrow: Vec<f32> = mapped_vec(m, start, rows, 1, scratch)?;
                narrow.into_iter().map(f64::from).collect()
            } else {
                mapped_vec(m, start, rows, 1, scratch)?
            };
        }
        if let Some(m) = &self.rt {
            *at.rt = Some(mapped_vec(m, start, rows, 1, scratch)?);
        }
        if let Some(m) = &self.charge {
            *at.charge = Some(mapped_vec(m, start, rows, 1, scratch)?);
        }
        if let Some(m) = &self.accuracy {
            *at.accuracy = Some(mapped_vec(m, start, rows, 1, scratch)?);
        }
        if let Some(m) = &self.lsh {
            *at.lsh = Some(LshData::Int(mapped_vec(m, start, rows, 1, scratch)?));
        }
        for (i, m) in self.passthrough.iter().enumerate() {
            let Some((m, elem, width)) = m else { continue };
            let flat = with_elem!(*elem, T => {
                T::array(mapped_vec::<T>(m, start, rows, *width, scratch)?)
            });
            at.passthrough[i] = wrap_width(flat, elem.arrow_type(), *width);
        }
        Ok(())
    }
}

/// The columns of a read unit that [`MappedColumns::decode`] fills in, with the unit's rows.
pub(crate) struct UnitColumns<'u> {
    /// First row in the file.
    pub(crate) start: u64,
    /// Rows in the unit.
    pub(crate) rows: usize,
    /// Peak slots per spectrum.
    pub(crate) slots: usize,
    pub(crate) peaks: &'u mut PeakData,
    pub(crate) precursor_mz: &'u mut Vec<f64>,
    pub(crate) rt: &'u mut Option<Vec<f32>>,
    pub(crate) charge: &'u mut Option<Vec<i8>>,
    pub(crate) accuracy: &'u mut Option<Vec<f32>>,
    pub(crate) lsh: &'u mut Option<LshData>,
    pub(crate) passthrough: &'u mut [ArrayRef],
}

/// Decode the tensor rows into the worker's reused buffer ([`DecodeScratch::peaks_f64`] or
/// `peaks_f32`, given back by `RawUnit::recycle`), in the element type `peaks` holds.
fn decode_peaks(
    m: &MappedDataset,
    start: u64,
    rows: usize,
    slots: usize,
    peaks: &mut PeakData,
    scratch: &mut DecodeScratch,
) -> Result<(), InputError> {
    let n = rows * 2 * slots;
    match peaks {
        PeakData::F64(v) => {
            *v = std::mem::take(&mut scratch.peaks_f64);
            v.clear();
            v.resize(n, 0.0);
            m.read_rows(start, rows, v, scratch)
        }
        PeakData::F32(v) => {
            *v = std::mem::take(&mut scratch.peaks_f32);
            v.clear();
            v.resize(n, 0.0);
            m.read_rows(start, rows, v, scratch)
        }
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
