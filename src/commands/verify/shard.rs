//! The checks of one shard ([`ShardContext::check`]: size and SHA-256, then footer, schema,
//! key-value metadata, spectrum ids and with `--full` every spectrum) and the files under the
//! root the manifest does not account for ([`stray_files`]).

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, SchemaRef, UInt16Type};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use crate::format::manifest::{ColumnRecord, Manifest, ShardRecord};
use crate::write::hashing::hash_file;

use super::{
    check_spectrum, Problem, ProblemKind, Recorded, SpectrumFault, SpectrumRules, SpectrumView,
};

/// Rows per batch when reading shards back.
const BATCH_ROWS: usize = 8192;

/// Files under the root the manifest does not account for: `<dir>/shard-*.parquet` not in
/// `listed`, and `*.tmp` in the root or any directory directly below it. Sorted by path.
pub(super) fn stray_files(root: &Path, listed: &BTreeSet<&str>) -> Vec<Problem> {
    let names = |dir: &Path| -> Vec<(String, bool)> {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        rd.filter_map(Result::ok)
            .map(|e| {
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                (e.file_name().to_string_lossy().into_owned(), is_dir)
            })
            .collect()
    };
    let mut out = Vec::new();
    for (name, is_dir) in names(root) {
        if !is_dir {
            if name.ends_with(".tmp") {
                out.push(Problem::new(&name, ProblemKind::Leftover));
            }
            continue;
        }
        for (file, sub_dir) in names(&root.join(&name)) {
            if sub_dir {
                continue;
            }
            let rel = format!("{name}/{file}");
            if file.ends_with(".tmp") {
                out.push(Problem::new(&rel, ProblemKind::Leftover));
            } else if file.starts_with("shard-")
                && file.ends_with(".parquet")
                && !listed.contains(rel.as_str())
            {
                out.push(Problem::new(&rel, ProblemKind::Unlisted));
            }
        }
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}

/// What checking one shard found.
pub(super) struct ShardOutcome {
    pub(super) file: String,
    pub(super) problems: Vec<Problem>,
    /// Spectrum problems in `problems`.
    pub(super) listed: usize,
    /// Spectrum problems beyond the cap, not in `problems`.
    pub(super) omitted: u64,
    pub(super) bytes: u64,
    /// First and last `spectrum_id` read.
    pub(super) ids: Option<(u64, u64)>,
    pub(super) spectra_checked: u64,
}

impl ShardOutcome {
    fn new(file: &str) -> ShardOutcome {
        ShardOutcome {
            file: file.to_string(),
            problems: Vec::new(),
            listed: 0,
            omitted: 0,
            bytes: 0,
            ids: None,
            spectra_checked: 0,
        }
    }

    pub(super) fn refused(file: &str, kind: ProblemKind) -> ShardOutcome {
        let mut out = ShardOutcome::new(file);
        out.problems.push(Problem::new(file, kind));
        out
    }

    /// Record a spectrum problem, listing at most `cap`.
    fn spectrum(&mut self, cap: usize, row: u64, spectrum_id: u64, fault: SpectrumFault) {
        if self.listed < cap {
            self.listed += 1;
            self.problems.push(Problem::new(
                &self.file,
                ProblemKind::Spectrum {
                    row,
                    spectrum_id,
                    fault,
                },
            ));
        } else {
            self.omitted += 1;
        }
    }
}

pub(super) struct ShardContext<'a> {
    pub(super) root: &'a Path,
    pub(super) manifest: &'a Manifest,
    pub(super) full: bool,
    pub(super) rules: SpectrumRules,
    pub(super) cap: usize,
    pub(super) progress: &'a (dyn Fn(u64) + Sync),
}

impl ShardContext<'_> {
    pub(super) fn check(&self, rec: &ShardRecord) -> ShardOutcome {
        let mut out = ShardOutcome::new(&rec.path);
        let mut reported = 0u64;
        let mut report_progress = |done: u64| {
            // Never report more than the shard's share, whatever the file really holds.
            let total = if self.full { 2 * rec.bytes } else { rec.bytes };
            let step = done.min(total.saturating_sub(reported));
            reported += step;
            (self.progress)(step);
        };
        let path = self.root.join(&rec.path);
        let file = &rec.path;
        match hash_file(&path, &mut report_progress) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                out.problems.push(Problem::new(file, ProblemKind::Missing));
            }
            Err(e) => out.problems.push(Problem::new(
                file,
                ProblemKind::Unreadable {
                    error: e.to_string(),
                },
            )),
            Ok((sha, bytes)) => {
                out.bytes = bytes;
                if bytes != rec.bytes {
                    out.problems.push(Problem::mismatch(
                        file,
                        Recorded::Bytes,
                        format!("{} bytes", rec.bytes),
                        format!("{bytes} bytes"),
                    ));
                }
                if sha != rec.sha256 {
                    out.problems
                        .push(Problem::mismatch(file, Recorded::Sha256, &rec.sha256, sha));
                }
                if out.problems.is_empty() {
                    // The bytes are the recorded ones; a reader panic would still be a bug
                    // worth reporting rather than a crash of the whole verification.
                    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.check_contents(rec, &path, &mut out, &mut report_progress)
                    }));
                    if read.is_err() {
                        out.problems
                            .push(Problem::rows(file, "the Parquet reader panicked"));
                    }
                }
            }
        }
        // `<split>/shard-…`, or `parts/K/<split>/shard-…` in a merged root (`msms merge`).
        let dir = rec.path.rsplit('/').nth(1).unwrap_or_default();
        let parts_ok = rec.path.matches('/').count() == 1
            || (rec.path.starts_with("parts/") && rec.path.matches('/').count() == 3);
        if dir != rec.split || !parts_ok {
            out.problems
                .push(Problem::mismatch(file, Recorded::Split, &rec.split, dir));
        }
        report_progress(u64::MAX);
        out
    }

    /// Footer, schema, key-value metadata, spectrum ids, and with `full` every spectrum.
    fn check_contents(
        &self,
        rec: &ShardRecord,
        path: &Path,
        out: &mut ShardOutcome,
        progress: &mut dyn FnMut(u64),
    ) {
        let file = rec.path.as_str();
        let builder = match File::open(path)
            .map_err(|e| e.to_string())
            .and_then(|f| ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| e.to_string()))
        {
            Ok(b) => b,
            Err(error) => {
                out.problems
                    .push(Problem::new(file, ProblemKind::Footer { error }));
                return;
            }
        };
        self.check_footer(rec, &builder, out);
        let roots = match self.projection(builder.schema()) {
            Ok(roots) => roots,
            Err(why) => {
                out.problems.push(Problem::rows(file, why.to_string()));
                return;
            }
        };
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let reader = match builder
            .with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                out.problems.push(Problem::rows(file, e.to_string()));
                return;
            }
        };
        self.read_rows(rec, reader, out, progress);
        if let Some((first, last)) = out.ids {
            if first != rec.first_spectrum_id {
                out.problems.push(Problem::mismatch(
                    file,
                    Recorded::FirstSpectrumId,
                    rec.first_spectrum_id,
                    first,
                ));
            }
            if last != rec.last_spectrum_id {
                out.problems.push(Problem::mismatch(
                    file,
                    Recorded::LastSpectrumId,
                    rec.last_spectrum_id,
                    last,
                ));
            }
        }
    }

    /// The footer against the manifest: row count, Arrow schema and key-value metadata.
    fn check_footer(
        &self,
        rec: &ShardRecord,
        builder: &ParquetRecordBatchReaderBuilder<File>,
        out: &mut ShardOutcome,
    ) {
        let file = rec.path.as_str();
        let m = self.manifest;
        let meta = builder.metadata();
        let rows = meta.file_metadata().num_rows().max(0) as u64;
        if rows != rec.rows {
            out.problems
                .push(Problem::mismatch(file, Recorded::Rows, rec.rows, rows));
        }
        if let Some(detail) = schema_difference(&m.schema, builder.schema()) {
            out.problems
                .push(Problem::new(file, ProblemKind::Schema { detail }));
        }
        let kv = |key: &str| {
            meta.file_metadata()
                .key_value_metadata()
                .and_then(|kv| kv.iter().find(|k| k.key == key))
                .map(|k| k.value.clone().unwrap_or_default())
        };
        for (field, key, want) in [
            (
                Recorded::ConfigHash,
                "msms_shards.config_hash",
                m.config_hash.clone(),
            ),
            (
                Recorded::FormatVersion,
                "msms_shards.format_version",
                m.format_version.to_string(),
            ),
            (
                Recorded::ToolVersion,
                "msms_shards.tool_version",
                m.tool_version.clone(),
            ),
        ] {
            let found = kv(key);
            if found.as_deref() != Some(want.as_str()) {
                out.problems.push(Problem::mismatch(
                    file,
                    field,
                    want,
                    found.unwrap_or_else(|| "(absent)".into()),
                ));
            }
        }
    }

    /// The columns to read (root indices of `schema`): spectrum_id always; with `full`, what
    /// the spectrum checks need. `Err`: why the rows cannot be checked.
    fn projection(&self, schema: &SchemaRef) -> Result<Vec<usize>, Unchecked> {
        let mut wanted: Vec<(&str, DataType)> = vec![("spectrum_id", DataType::UInt64)];
        if self.full {
            let list = |t| DataType::List(Arc::new(Field::new_list_field(t, false)));
            wanted.extend([
                ("precursor_mz", DataType::Float64),
                ("num_peaks", DataType::UInt16),
                ("mz", list(DataType::Float64)),
                ("intensity", list(DataType::Float32)),
            ]);
            if self.rules.quality_format.is_some() {
                wanted.push(("gems_format", DataType::Utf8));
            }
        }
        let mut roots = Vec::new();
        for (name, t) in &wanted {
            match schema.index_of(name) {
                Ok(i) if equal_ignoring_field_names(schema.field(i).data_type(), t) => {
                    roots.push(i)
                }
                Ok(i) => {
                    return Err(Unchecked::Type {
                        name: name.to_string(),
                        found: schema.field(i).data_type().clone(),
                        wanted: t.clone(),
                    });
                }
                Err(_) => return Err(Unchecked::Missing(name.to_string())),
            }
        }
        Ok(roots)
    }

    /// Read every batch: spectrum ids in order (the first and last into `out.ids`), and with
    /// `full` every spectrum.
    fn read_rows(
        &self,
        rec: &ShardRecord,
        reader: ParquetRecordBatchReader,
        out: &mut ShardOutcome,
        progress: &mut dyn FnMut(u64),
    ) {
        let file = rec.path.as_str();
        let mut row = 0u64;
        let mut first: Option<u64> = None;
        let mut last: Option<u64> = None;
        let mut faults = Vec::new();
        for batch in reader {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    out.problems
                        .push(Problem::rows(file, format!("after row {row}: {e}")));
                    break;
                }
            };
            let ids = batch
                .column_by_name("spectrum_id")
                .expect("projected")
                .as_primitive::<arrow::datatypes::UInt64Type>();
            for (i, id) in ids.values().iter().copied().enumerate() {
                if let Some(prev) = last.filter(|&p| id <= p) {
                    out.spectrum(
                        self.cap,
                        row + i as u64,
                        id,
                        SpectrumFault::IdOrder { previous: prev },
                    );
                }
                first.get_or_insert(id);
                last = Some(id);
            }
            if self.full {
                self.check_batch(&batch, row, out, &mut faults);
                out.spectra_checked += batch.num_rows() as u64;
                let done = rec.bytes.saturating_mul(batch.num_rows() as u64);
                progress(done.checked_div(rec.rows).unwrap_or(0));
            }
            row += batch.num_rows() as u64;
        }
        if let (Some(first), Some(last)) = (first, last) {
            out.ids = Some((first, last));
        }
    }

    /// Run [`check_spectrum`] on every row of `batch` (rows `row..` of the shard).
    fn check_batch(
        &self,
        batch: &RecordBatch,
        row: u64,
        out: &mut ShardOutcome,
        faults: &mut Vec<SpectrumFault>,
    ) {
        let col = |name: &str| batch.column_by_name(name).expect("projected");
        let ids = col("spectrum_id").as_primitive::<arrow::datatypes::UInt64Type>();
        let precursor = col("precursor_mz").as_primitive::<Float64Type>();
        let num_peaks = col("num_peaks").as_primitive::<UInt16Type>();
        let mz = col("mz").as_list::<i32>();
        let intensity = col("intensity").as_list::<i32>();
        let gems = batch
            .column_by_name("gems_format")
            .map(|c| c.as_string::<i32>());
        let (mz_off, mz_vals) = (
            mz.value_offsets(),
            mz.values().as_primitive::<Float64Type>().values(),
        );
        let (it_off, it_vals) = (
            intensity.value_offsets(),
            intensity.values().as_primitive::<Float32Type>().values(),
        );
        for i in 0..batch.num_rows() {
            let view = SpectrumView {
                num_peaks: num_peaks.value(i),
                mz: &mz_vals[mz_off[i] as usize..mz_off[i + 1] as usize],
                intensity: &it_vals[it_off[i] as usize..it_off[i + 1] as usize],
                precursor_mz: precursor.value(i),
                gems_format: gems.and_then(|g| (!g.is_null(i)).then(|| g.value(i))),
            };
            faults.clear();
            check_spectrum(&view, &self.rules, faults);
            for fault in faults.drain(..) {
                out.spectrum(self.cap, row + i as u64, ids.value(i), fault);
            }
        }
    }
}

/// Why the rows of a shard cannot be checked: a column to read is missing or of another type.
#[derive(Debug, thiserror::Error)]
enum Unchecked {
    /// No such column.
    #[error("no column {0}: rows not checked")]
    Missing(String),
    /// The column has another type.
    #[error("column {name} is {found}, not {wanted}: rows not checked")]
    Type {
        /// Column.
        name: String,
        /// Its type in the shard.
        found: DataType,
        /// The type the checks read.
        wanted: DataType,
    },
}

/// `a` and `b` equal but for the names of list item fields (writers differ: `item`, `element`).
fn equal_ignoring_field_names(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::List(x), DataType::List(y)) => {
            x.is_nullable() == y.is_nullable()
                && equal_ignoring_field_names(x.data_type(), y.data_type())
        }
        _ => a == b,
    }
}

/// The first difference between the manifest's columns and a shard's Arrow schema.
fn schema_difference(manifest: &[ColumnRecord], schema: &SchemaRef) -> Option<String> {
    let show = |name: &str, t: &str, nullable: bool| {
        format!("{name} {t}{}", if nullable { "" } else { " not null" })
    };
    for (i, (want, got)) in manifest.iter().zip(schema.fields()).enumerate() {
        let got_type = got.data_type().to_string();
        if want.name != *got.name()
            || want.data_type != got_type
            || want.nullable != got.is_nullable()
        {
            return Some(format!(
                "column {i}: manifest `{}`, file `{}`",
                show(&want.name, &want.data_type, want.nullable),
                show(got.name(), &got_type, got.is_nullable())
            ));
        }
    }
    let (a, b) = (manifest.len(), schema.fields().len());
    if a != b {
        let extra = if a > b {
            format!("manifest also has `{}`", manifest[b].name)
        } else {
            format!("file also has `{}`", schema.field(a).name())
        };
        return Some(format!("manifest {a} columns, file {b} columns ({extra})"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchecked_rows_are_named() {
        assert_eq!(
            Unchecked::Missing("mz".into()).to_string(),
            "no column mz: rows not checked"
        );
        let list = DataType::List(Arc::new(Field::new_list_field(DataType::Float64, false)));
        let e = Unchecked::Type {
            name: "mz".into(),
            found: DataType::Float64,
            wanted: list.clone(),
        };
        assert_eq!(
            e.to_string(),
            format!(
                "column mz is {}, not {list}: rows not checked",
                DataType::Float64
            )
        );
    }
}
