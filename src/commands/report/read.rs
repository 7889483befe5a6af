//! Reading the shards: each one's four columns streamed into an [`Acc`], several shards at a
//! time, each one's row count checked against the manifest's.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Mutex;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int8Type, UInt16Type};
use arrow::error::ArrowError;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;
use rayon::prelude::*;

use super::accumulate::{Acc, Sums};
use super::{ReportError, BATCH_ROWS};
use crate::format::manifest::{Manifest, ShardRecord};

/// What is wrong with one shard (the text after the shard's path in
/// [`ReportError::Shard`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ShardProblem {
    /// The file cannot be opened.
    #[error("cannot open: {0}")]
    Open(io::Error),
    /// The Parquet footer cannot be read.
    #[error("Parquet footer unreadable: {0}")]
    Footer(ParquetError),
    /// A column the report reads is missing.
    #[error("no column {0}")]
    NoColumn(&'static str),
    /// A column the report reads has another type.
    #[error("column {name} is {found}, not {wanted}")]
    ColumnType {
        /// The column.
        name: &'static str,
        /// Its type in the shard.
        found: DataType,
        /// The type the report reads.
        wanted: DataType,
    },
    /// The batch reader cannot be built.
    #[error("{0}")]
    Reader(ParquetError),
    /// A batch cannot be decoded.
    #[error("after row {row}: {error}")]
    Batch {
        /// Rows read before the batch.
        row: u64,
        /// The cause.
        error: ArrowError,
    },
    /// The Parquet reader panicked on the file's bytes.
    #[error("the Parquet reader panicked")]
    Panicked,
    /// The shard holds another row count than the manifest records.
    #[error("{read} rows, the manifest records {recorded}")]
    Rows {
        /// Rows read.
        read: u64,
        /// Rows the manifest records.
        recorded: u64,
    },
}

/// The columns read, with the type each must have.
const WANTED: [(&str, DataType); 4] = [
    ("num_peaks", DataType::UInt16),
    ("precursor_mz", DataType::Float64),
    ("charge", DataType::Int8),
    ("rt", DataType::Float32),
];

/// Stream the four columns of one shard into `acc`; the float sums and the rows read.
fn read_shard(path: &Path, acc: &mut Acc) -> Result<Sums, ShardProblem> {
    let file = File::open(path).map_err(ShardProblem::Open)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(ShardProblem::Footer)?;
    let schema = builder.schema().clone();
    let mut roots = Vec::new();
    for (name, t) in &WANTED {
        let i = schema
            .index_of(name)
            .map_err(|_| ShardProblem::NoColumn(name))?;
        let found = schema.field(i).data_type();
        if found != t {
            return Err(ShardProblem::ColumnType {
                name,
                found: found.clone(),
                wanted: t.clone(),
            });
        }
        roots.push(i);
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(ShardProblem::Reader)?;
    let mut sums = Sums::default();
    for batch in reader {
        let batch = batch.map_err(|error| ShardProblem::Batch {
            row: acc.rows,
            error,
        })?;
        add_batch(&batch, acc, &mut sums);
        acc.rows += batch.num_rows() as u64;
    }
    Ok(sums)
}

/// Add one batch's values to `acc` and its finite floats to `sums`.
fn add_batch(batch: &arrow::record_batch::RecordBatch, acc: &mut Acc, sums: &mut Sums) {
    let col = |name: &str| batch.column_by_name(name).expect("projected");
    let np = col("num_peaks").as_primitive::<UInt16Type>();
    let prec = col("precursor_mz").as_primitive::<Float64Type>();
    let charge = col("charge").as_primitive::<Int8Type>();
    let rt = col("rt").as_primitive::<Float32Type>();
    for i in 0..batch.num_rows() {
        if np.is_null(i) {
            acc.num_peaks.null += 1;
        } else {
            acc.num_peaks.add(i64::from(np.value(i)));
        }
        if charge.is_null(i) {
            acc.charge.null += 1;
        } else {
            acc.charge.add(i64::from(charge.value(i)));
        }
        if prec.is_null(i) {
            acc.precursor.null += 1;
        } else if acc.precursor.add(prec.value(i)) {
            sums.precursor += prec.value(i);
        }
        if rt.is_null(i) {
            acc.rt.null += 1;
        } else {
            let v = f64::from(rt.value(i));
            if acc.rt.add(v) {
                sums.rt += v;
            }
        }
    }
}

/// Read the shard `rec` under `root` into a fresh accumulator and check its row count.
fn read_recorded(root: &Path, rec: &ShardRecord) -> Result<(Acc, Sums), ReportError> {
    let path = root.join(&rec.path);
    let mut acc = Acc::new();
    // A reader panic on damaged bytes is reported as that shard's error.
    let read =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_shard(&path, &mut acc)))
            .unwrap_or(Err(ShardProblem::Panicked));
    let sums = read
        .and_then(|sums| {
            if acc.rows == rec.rows {
                Ok(sums)
            } else {
                Err(ShardProblem::Rows {
                    read: acc.rows,
                    recorded: rec.rows,
                })
            }
        })
        .map_err(|problem| ReportError::Shard {
            path: path.clone(),
            problem,
        })?;
    Ok((acc, sums))
}

/// Read every shard `manifest` lists under `root` on `pool`; shard `k` belongs to split
/// `split_of[k]` of `splits`. Returns each split's accumulator and, in manifest order, each
/// shard's float sums (or its error). `progress` is told each shard's recorded bytes when it
/// is done.
pub(crate) fn read_shards(
    root: &Path,
    manifest: &Manifest,
    split_of: &[usize],
    splits: usize,
    pool: &rayon::ThreadPool,
    progress: &(dyn Fn(u64) + Sync),
) -> (Vec<Acc>, Vec<Result<Sums, ReportError>>) {
    // Counts, minima and maxima are merged as shards finish (order does not matter);
    // the float sums are kept per shard and added in manifest order by the caller.
    let merged: Vec<Mutex<Acc>> = (0..splits).map(|_| Mutex::new(Acc::new())).collect();
    let sums: Vec<Result<Sums, ReportError>> = pool.install(|| {
        manifest
            .shards
            .par_iter()
            .zip(split_of)
            .map(|(rec, &split)| {
                let (acc, sums) = read_recorded(root, rec)?;
                merged[split]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .merge(&acc);
                progress(rec.bytes);
                Ok(sums)
            })
            .collect()
    });
    let merged = merged
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect();
    (merged, sums)
}
