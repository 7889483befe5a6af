//! Rows → Arrow: the run's fixed output schema, and the conversion of one read unit into a
//! `RecordBatch` of its accepted spectra plus per-reason rejection counts.

use std::sync::Arc;

use arrow::array::{
    new_null_array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int64Array,
    Int8Array, ListArray, RecordBatch, StringArray, StringDictionaryBuilder, UInt16Array,
    UInt32Array, UInt64Array,
};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use arrow::error::ArrowError;
use msms_kernels::bin::{bin_dense_zeroed, bin_sparse, BinSpec};
use msms_kernels::quality::{gems_format_validated, GemsFormat};
use msms_kernels::{
    extend_intensity, extend_intensity_at, extend_mz, extend_mz_at, top_k, unpad_validate,
    Normalize, PeakBlock, PeakValue, RejectReason, ValidationRules,
};

use crate::read::{FileMapping, InputError, LshData, PassColumn, PeakData, RawUnit, ValueKind};

/// Spectra read, written and rejected (by reason).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Spectra read from the inputs.
    pub read: u64,
    /// Spectra that passed validation (written, unless this is a dry run).
    pub accepted: u64,
    /// Rejections, indexed like [`RejectReason::ALL`].
    pub rejected: [u64; RejectReason::ALL.len()],
    /// Spectra dropped by `--dedup exact` (counted as rejected, reason `duplicate`).
    pub duplicate: u64,
    /// Spectra read with a string (name, lsh, a pass-through column) whose bytes are not
    /// UTF-8: each such sequence was replaced by U+FFFD.
    pub invalid_utf8: u64,
    /// The `spectrum_id`s of the first [`INVALID_UTF8_LISTED`] of them, ascending.
    pub invalid_utf8_ids: Vec<u64>,
}

/// How many `spectrum_id`s of spectra with invalid UTF-8 strings are listed.
pub const INVALID_UTF8_LISTED: usize = 10;

impl Counts {
    /// Add another unit's counts.
    pub fn add(&mut self, other: &Counts) {
        self.read += other.read;
        self.accepted += other.accepted;
        for (a, b) in self.rejected.iter_mut().zip(other.rejected) {
            *a += b;
        }
        self.duplicate += other.duplicate;
        self.invalid_utf8 += other.invalid_utf8;
        let room = INVALID_UTF8_LISTED.saturating_sub(self.invalid_utf8_ids.len());
        self.invalid_utf8_ids
            .extend(other.invalid_utf8_ids.iter().take(room));
    }

    /// Total rejections.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum::<u64>() + self.duplicate
    }

    /// Rejections by reason name, every reason listed (zeros included), in priority order,
    /// then `duplicate` (`--dedup exact`).
    pub fn rejected_by_reason(&self) -> Vec<(&'static str, u64)> {
        RejectReason::ALL
            .iter()
            .map(|r| (r.as_str(), self.rejected[*r as usize]))
            .chain([("duplicate", self.duplicate)])
            .collect()
    }
}

/// What to do to each spectrum.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Processing {
    /// Precursor and peak-count rules.
    pub rules: ValidationRules,
    /// Keep only the K most intense peaks (ties: lower m/z), in m/z order.
    pub max_peaks: Option<usize>,
    /// Intensity normalisation (over the kept peaks).
    pub normalize: Normalize,
    /// Binned output columns, from the written m/z and intensities.
    pub binning: Option<Binner>,
    /// Keep only spectra meeting this GeMS quality format (or a stricter one).
    pub quality: Option<GemsFormat>,
}

/// Binning of the written peaks into an extra column.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Binner {
    /// Grid, aggregation and power.
    pub spec: BinSpec,
    /// `binned` (dense fixed-size list) or `bin_index` + `bin_value` (sparse lists).
    pub sparse: bool,
}

/// The run's output schema: fixed columns, then the pass-through columns of the inputs.
/// All inputs must agree on the pass-through columns and on the type of `lsh`.
pub(crate) fn output_schema(
    mappings: &[FileMapping],
    binning: Option<&Binner>,
) -> Result<SchemaRef, InputError> {
    let first = mappings.first().expect("at least one input");
    let lsh_strings = one_schema(mappings)?;
    let lsh_type = if lsh_strings {
        DataType::Utf8
    } else {
        DataType::Int64
    };
    let mut fields = fixed_fields(lsh_type);
    match binning {
        Some(b) if b.sparse => {
            let list = |t| DataType::List(Arc::new(Field::new_list_field(t, false)));
            fields.push(Field::new("bin_index", list(DataType::UInt32), false));
            fields.push(Field::new("bin_value", list(DataType::Float32), false));
        }
        Some(b) => fields.push(Field::new(
            "binned",
            DataType::FixedSizeList(
                Arc::new(Field::new_list_field(DataType::Float32, false)),
                b.spec.bins as i32,
            ),
            false,
        )),
        None => {}
    }
    fields.extend(
        first
            .passthrough
            .iter()
            .map(|p| Field::new(&p.column, p.data_type(), false)),
    );
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = fields.iter().map(|f| f.name()).find(|n| !seen.insert(*n)) {
        let p = first.passthrough.iter().find(|p| &p.column == dup);
        return Err(InputError {
            path: first.path.clone(),
            dataset: p.map(|p| p.dataset.clone()),
            message: format!("two datasets map to the output column `{dup}`; rename one of them"),
        });
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// Refuse inputs that would give different schemas: `lsh` of another kind, other
/// pass-through columns than the first input's. Whether `lsh` holds strings (the first input
/// with an `lsh` decides).
fn one_schema(mappings: &[FileMapping]) -> Result<bool, InputError> {
    let first = mappings.first().expect("at least one input");
    let strings = |k: &ValueKind| *k == ValueKind::Str;
    let lsh_strings = mappings
        .iter()
        .find_map(|m| m.lsh.as_ref().map(|(_, k)| strings(k)));
    let kind_name = |strings: bool| if strings { "strings" } else { "integers" };
    for m in mappings {
        let refuse = |dataset: Option<&str>, message: String| InputError {
            path: m.path.clone(),
            dataset: dataset.map(str::to_string),
            message,
        };
        if let (Some((d, k)), Some(want)) = (&m.lsh, lsh_strings) {
            if strings(k) != want {
                return Err(refuse(
                    Some(d),
                    format!(
                        "lsh is {} here but {} in an earlier input: one schema per run",
                        kind_name(strings(k)),
                        kind_name(want),
                    ),
                ));
            }
        }
        if !same_columns(&m.passthrough, &first.passthrough) {
            let names = |p: &[PassColumn]| {
                p.iter()
                    .map(|c| format!("{} {}", c.column, c.data_type()))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(refuse(
                None,
                format!(
                    "pass-through datasets [{}] differ from the first input's [{}]: one schema per run",
                    names(&m.passthrough),
                    names(&first.passthrough)
                ),
            ));
        }
    }
    Ok(lsh_strings == Some(true))
}

/// The columns every run writes, in order (`lsh` of `lsh_type`).
fn fixed_fields(lsh_type: DataType) -> Vec<Field> {
    vec![
        Field::new("spectrum_id", DataType::UInt64, false),
        Field::new("source_index", DataType::UInt16, false),
        Field::new("source_row", DataType::UInt64, false),
        Field::new(
            "name",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
        Field::new("precursor_mz", DataType::Float64, false),
        Field::new("rt", DataType::Float32, true),
        Field::new("charge", DataType::Int8, true),
        Field::new("instrument_accuracy_est", DataType::Float32, true),
        Field::new("lsh", lsh_type, true),
        Field::new("num_peaks", DataType::UInt16, false),
        Field::new(
            "mz",
            DataType::List(Arc::new(Field::new_list_field(DataType::Float64, false))),
            false,
        ),
        Field::new(
            "intensity",
            DataType::List(Arc::new(Field::new_list_field(DataType::Float32, false))),
            false,
        ),
        Field::new("gems_format", DataType::Utf8, true),
    ]
}

fn same_columns(a: &[PassColumn], b: &[PassColumn]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.column == y.column && x.data_type() == y.data_type())
}

/// Reused per-worker buffers for the peak columns.
#[derive(Default)]
pub(crate) struct Scratch {
    keep: Vec<u32>,
    /// Indices of the peaks kept by top-k.
    idx: Vec<u32>,
    gems: Vec<Option<&'static str>>,
    binned: Vec<f32>,
    bin_index: Vec<u32>,
    bin_value: Vec<f32>,
    bin_offsets: Vec<i32>,
    mz: Vec<f64>,
    intensity: Vec<f32>,
    offsets: Vec<i32>,
    num_peaks: Vec<u16>,
}

impl Scratch {
    /// Empty every buffer (keeping its capacity) for the next unit.
    fn clear(&mut self) {
        self.keep.clear();
        self.mz.clear();
        self.intensity.clear();
        self.offsets.clear();
        self.offsets.push(0);
        self.num_peaks.clear();
        self.gems.clear();
        self.binned.clear();
        self.bin_index.clear();
        self.bin_value.clear();
        self.bin_offsets.clear();
        self.bin_offsets.push(0);
    }
}

/// Validate and transform every spectrum of `unit`; return the accepted rows as a batch of
/// `schema`, and the unit's counts.
pub(crate) fn build(
    unit: &RawUnit,
    schema: &SchemaRef,
    processing: &Processing,
    scratch: &mut Scratch,
) -> Result<(RecordBatch, Counts), ArrowError> {
    let mut counts = Counts {
        read: unit.rows as u64,
        invalid_utf8: unit.invalid_utf8.len() as u64,
        invalid_utf8_ids: unit
            .invalid_utf8
            .iter()
            .take(INVALID_UTF8_LISTED)
            .map(|r| unit.first_spectrum_id + r)
            .collect(),
        ..Counts::default()
    };
    scratch.clear();
    match &unit.peaks {
        PeakData::F64(v) => peaks_into(v, unit, processing, scratch, &mut counts),
        PeakData::F32(v) => peaks_into(v, unit, processing, scratch, &mut counts),
    }
    counts.accepted = scratch.keep.len() as u64;

    let keep = UInt32Array::from(std::mem::take(&mut scratch.keep));
    let mut columns = row_columns(unit, schema, &keep)?;
    peak_columns(scratch, &mut columns)?;
    if let Some(b) = &processing.binning {
        bin_columns(b, scratch, &mut columns)?;
    }
    for p in &unit.passthrough {
        columns.push(take(p.as_ref(), &keep, None)?);
    }
    scratch.keep = keep.into_parts().1.into();
    Ok((RecordBatch::try_new(Arc::clone(schema), columns)?, counts))
}

/// The per-spectrum columns of the rows `keep` of `unit`, `spectrum_id` to `lsh`.
fn row_columns(
    unit: &RawUnit,
    schema: &SchemaRef,
    keep: &UInt32Array,
) -> Result<Vec<ArrayRef>, ArrowError> {
    let rows = keep.len();
    let null = |t: &DataType| new_null_array(t, rows);
    let ids: UInt64Array = keep
        .values()
        .iter()
        .map(|&i| unit.first_spectrum_id + i as u64)
        .collect();
    let src_rows: UInt64Array = keep
        .values()
        .iter()
        .map(|&i| unit.start_row + i as u64)
        .collect();
    let name: ArrayRef = match &unit.name {
        Some(names) => {
            let mut b = StringDictionaryBuilder::<Int32Type>::new();
            for &i in keep.values() {
                b.append_value(&names[i as usize]);
            }
            Arc::new(b.finish())
        }
        None => null(schema.field_with_name("name")?.data_type()),
    };
    let lsh: ArrayRef = match &unit.lsh {
        Some(LshData::Int(v)) => take(&Int64Array::from(v.clone()), keep, None)?,
        Some(LshData::Str(v)) => Arc::new(
            keep.values()
                .iter()
                .map(|&i| Some(v[i as usize].as_str()))
                .collect::<StringArray>(),
        ),
        None => null(schema.field_with_name("lsh")?.data_type()),
    };
    let f32_col = |v: &Option<Vec<f32>>| -> ArrayRef {
        match v {
            Some(v) => Arc::new(
                keep.values()
                    .iter()
                    .map(|&i| v[i as usize])
                    .collect::<Float32Array>(),
            ),
            None => null(&DataType::Float32),
        }
    };
    let charge: ArrayRef = match &unit.charge {
        Some(v) => Arc::new(
            keep.values()
                .iter()
                .map(|&i| v[i as usize])
                .collect::<Int8Array>(),
        ),
        None => null(&DataType::Int8),
    };
    let precursor: Float64Array = keep
        .values()
        .iter()
        .map(|&i| unit.precursor_mz[i as usize])
        .collect();
    Ok(vec![
        Arc::new(ids),
        Arc::new(UInt16Array::from(vec![unit.source_index; rows])),
        Arc::new(src_rows),
        name,
        Arc::new(precursor),
        f32_col(&unit.rt),
        charge,
        f32_col(&unit.accuracy),
        lsh,
    ])
}

/// The peak columns from `scratch`: `num_peaks`, `mz`, `intensity`, `gems_format`.
fn peak_columns(scratch: &mut Scratch, columns: &mut Vec<ArrayRef>) -> Result<(), ArrowError> {
    let offsets = OffsetBuffer::new(ScalarBuffer::from(std::mem::take(&mut scratch.offsets)));
    let mz = ListArray::try_new(
        Arc::new(Field::new_list_field(DataType::Float64, false)),
        offsets.clone(),
        Arc::new(Float64Array::from(std::mem::take(&mut scratch.mz))),
        None,
    )?;
    let intensity = ListArray::try_new(
        Arc::new(Field::new_list_field(DataType::Float32, false)),
        offsets,
        Arc::new(Float32Array::from(std::mem::take(&mut scratch.intensity))),
        None,
    )?;
    let gems: StringArray = scratch.gems.drain(..).collect();
    columns.push(Arc::new(UInt16Array::from(std::mem::take(
        &mut scratch.num_peaks,
    ))));
    columns.push(Arc::new(mz));
    columns.push(Arc::new(intensity));
    columns.push(Arc::new(gems));
    Ok(())
}

/// The binned columns from `scratch`: `bin_index` + `bin_value` (sparse) or `binned`.
fn bin_columns(
    b: &Binner,
    scratch: &mut Scratch,
    columns: &mut Vec<ArrayRef>,
) -> Result<(), ArrowError> {
    if b.sparse {
        let offsets =
            OffsetBuffer::new(ScalarBuffer::from(std::mem::take(&mut scratch.bin_offsets)));
        columns.push(Arc::new(ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::UInt32, false)),
            offsets.clone(),
            Arc::new(UInt32Array::from(std::mem::take(&mut scratch.bin_index))),
            None,
        )?));
        columns.push(Arc::new(ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Float32, false)),
            offsets,
            Arc::new(Float32Array::from(std::mem::take(&mut scratch.bin_value))),
            None,
        )?));
    } else {
        columns.push(Arc::new(FixedSizeListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Float32, false)),
            b.spec.bins as i32,
            Arc::new(Float32Array::from(std::mem::take(&mut scratch.binned))),
            None,
        )?));
    }
    Ok(())
}

fn peaks_into<T: PeakValue>(
    data: &[T],
    unit: &RawUnit,
    processing: &Processing,
    s: &mut Scratch,
    counts: &mut Counts,
) {
    let width = 2 * unit.slots;
    for (i, row) in data.chunks_exact(width).enumerate() {
        let block = PeakBlock::new(row, unit.orientation);
        let n = match unpad_validate(block, unit.precursor_mz[i], &processing.rules) {
            Ok(n) => n,
            Err(reason) => {
                counts.rejected[reason as usize] += 1;
                continue;
            }
        };
        // GeMS quality format, from the validated peaks as stored.
        let format = gems_format_validated(
            unit.charge.as_ref().map(|c| c[i]),
            unit.precursor_mz[i],
            unit.accuracy.as_ref().map(|a| a[i]),
            block,
            n,
        );
        if let Some(wanted) = processing.quality {
            if format.is_none_or(|f| f > wanted) {
                counts.rejected[RejectReason::QualityFormat as usize] += 1;
                continue;
            }
        }
        let top = processing.max_peaks.filter(|&k| k < n);
        let start = s.intensity.len();
        match top {
            Some(k) => {
                top_k(block, n, k, &mut s.idx);
                extend_intensity_at(block, &s.idx, processing.normalize, &mut s.intensity);
            }
            None => extend_intensity(block, n, processing.normalize, &mut s.intensity),
        }
        // float64 input can leave float32's range once rounded (I / max below the
        // smallest subnormal, or a raw value above f32::MAX): such a spectrum would
        // carry a 0 or an infinity, so it is rejected like its stored equivalent.
        let out = &s.intensity[start..];
        let reason = if out.iter().any(|v| !v.is_finite()) {
            Some(RejectReason::NonFinite)
        } else if out.iter().any(|v| *v <= 0.0) {
            Some(RejectReason::NonPositiveIntensity)
        } else {
            None
        };
        if let Some(reason) = reason {
            counts.rejected[reason as usize] += 1;
            s.intensity.truncate(start);
            continue;
        }
        let mz_start = s.mz.len();
        match top {
            Some(_) => extend_mz_at(block, &s.idx, &mut s.mz),
            None => extend_mz(block, n, &mut s.mz),
        }
        if let Some(b) = &processing.binning {
            let (mz, intensity) = (&s.mz[mz_start..], &s.intensity[start..]);
            if b.sparse {
                bin_sparse(&b.spec, mz, intensity, &mut s.bin_index, &mut s.bin_value);
                s.bin_offsets.push(s.bin_index.len() as i32);
            } else {
                let at = s.binned.len();
                // `resize` zeroes the row; the kernel need not zero it again.
                s.binned.resize(at + b.spec.bins, 0.0);
                bin_dense_zeroed(&b.spec, mz, intensity, &mut s.binned[at..]);
            }
        }
        s.gems.push(format.map(GemsFormat::as_str));
        s.offsets.push(s.mz.len() as i32);
        s.num_peaks.push((s.mz.len() - mz_start) as u16);
        s.keep.push(i as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::{Float32Type, Float64Type};
    use msms_kernels::Orientation;

    /// A unit of planar float64 spectra with 4 slots each.
    fn unit(spectra: &[(&[f64], &[f64])]) -> RawUnit {
        let slots = 4;
        let mut peaks = Vec::new();
        for (mz, int) in spectra {
            let pad = |v: &[f64]| -> Vec<f64> {
                v.iter()
                    .copied()
                    .chain(std::iter::repeat(0.0))
                    .take(slots)
                    .collect()
            };
            peaks.extend(pad(mz));
            peaks.extend(pad(int));
        }
        RawUnit {
            seq: 0,
            source_index: 0,
            start_row: 10,
            rows: spectra.len(),
            first_spectrum_id: 100,
            slots,
            orientation: Orientation::Planar,
            peaks: PeakData::F64(peaks),
            precursor_mz: vec![500.0; spectra.len()],
            rt: None,
            charge: None,
            accuracy: None,
            lsh: None,
            name: None,
            pending: None,
            passthrough: vec![],
            invalid_utf8: vec![],
        }
    }

    fn schema() -> SchemaRef {
        let m = FileMapping::for_tests(0, 4);
        output_schema(&[m], None).unwrap()
    }

    fn run(u: &RawUnit, normalize: Normalize) -> (RecordBatch, Counts) {
        let p = Processing {
            rules: ValidationRules::default(),
            max_peaks: None,
            normalize,
            binning: None,
            quality: None,
        };
        build(u, &schema(), &p, &mut Scratch::default()).unwrap()
    }

    #[test]
    fn intensities_leaving_float32_range_reject_the_spectrum() {
        let u = unit(&[
            (&[100.0, 200.0, 300.0], &[1e-50, 1.0, 1e300]),
            (&[100.0, 200.0], &[1.0, 1e300]),
            (&[150.0, 250.0], &[2.0, 8.0]),
        ]);
        let (batch, counts) = run(&u, Normalize::Max);
        // Max: 1e-50 / 1e300 and 1 / 1e300 underflow to 0 in float32.
        assert_eq!(
            counts.rejected[RejectReason::NonPositiveIntensity as usize],
            2
        );
        assert_eq!(counts.accepted, 1);
        let ids = batch
            .column(0)
            .as_primitive::<arrow::datatypes::UInt64Type>();
        assert_eq!(ids.values().to_vec(), vec![102]);

        let (batch, counts) = run(&u, Normalize::None);
        // None: 1e300 is infinite in float32 (non_finite comes before non_positive_intensity).
        assert_eq!(counts.rejected[RejectReason::NonFinite as usize], 2);
        assert_eq!(
            counts.rejected[RejectReason::NonPositiveIntensity as usize],
            0
        );
        assert_eq!(batch.num_rows(), 1);
        let mz = batch.column_by_name("mz").unwrap().as_list::<i32>();
        let int = batch.column_by_name("intensity").unwrap().as_list::<i32>();
        assert_eq!(
            mz.value(0).as_primitive::<Float64Type>().values().to_vec(),
            vec![150.0, 250.0]
        );
        assert_eq!(
            int.value(0).as_primitive::<Float32Type>().values().to_vec(),
            vec![2.0, 8.0]
        );
        assert_eq!(mz.value_offsets(), &[0, 2]);
    }

    #[test]
    fn accepted_rows_keep_their_ids_rows_and_normalised_values() {
        let u = unit(&[
            (&[100.0, 200.0], &[3.0, 6.0]),
            (&[], &[]),
            (&[50.0], &[7.0]),
        ]);
        let (batch, counts) = run(&u, Normalize::Max);
        assert_eq!(counts.read, 3);
        assert_eq!(counts.rejected[RejectReason::Empty as usize], 1);
        let col = |n: &str| batch.column_by_name(n).unwrap().clone();
        assert_eq!(
            col("spectrum_id")
                .as_primitive::<arrow::datatypes::UInt64Type>()
                .values()
                .to_vec(),
            vec![100, 102]
        );
        assert_eq!(
            col("source_row")
                .as_primitive::<arrow::datatypes::UInt64Type>()
                .values()
                .to_vec(),
            vec![10, 12]
        );
        assert_eq!(
            col("num_peaks")
                .as_primitive::<arrow::datatypes::UInt16Type>()
                .values()
                .to_vec(),
            vec![2, 1]
        );
        let int = col("intensity");
        let int = int.as_list::<i32>();
        assert_eq!(
            int.value(0).as_primitive::<Float32Type>().values().to_vec(),
            vec![0.5, 1.0]
        );
        assert_eq!(
            int.value(1).as_primitive::<Float32Type>().values().to_vec(),
            vec![1.0]
        );
        assert_eq!(col("name").null_count(), 2);
    }
}
