//! Train/validation/test splits and exact deduplication, decided per spectrum from its data,
//! so that they are the same on every run, whatever the thread count, and survive `--resume`.
//!
//! **Splits.** A spectrum goes to split `k` when `xxh3_64(key, seed)`, read as a fraction of
//! 2^64, falls in the `k`-th interval of the cumulative fractions. The key is the `lsh` value
//! (`--split-key lsh`, the default when the inputs have one: spectra of one LSH bucket, i.e.
//! near duplicates, never straddle train and test), the `name` (all spectra of one source
//! file together) or the `spectrum_id` (each spectrum on its own). Integer keys are hashed
//! as their 8 little-endian bytes, strings as their UTF-8 bytes; a null key falls back to
//! the `spectrum_id`.
//!
//! **Deduplication** (`--dedup exact`). A spectrum is dropped when its written peaks and
//! precursor m/z equal those of a spectrum earlier in the input: the 128-bit xxh3 of the
//! precursor m/z, the m/z values and the intensities (little-endian bytes, each list
//! preceded by its length) is looked up in a set of every hash so far (16 bytes per
//! distinct spectrum kept). Units are checked against the set in input order, through
//! [`DedupGate`], so "earlier" is the input order whatever the thread count.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::array::{
    Array, AsArray, Float32Array, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch,
    StringArray, UInt64Array,
};
use arrow::datatypes::{DataType, Int32Type};
use parking_lot::{Condvar, Mutex};
use xxhash_rust::xxh3::{xxh3_128, xxh3_64_with_seed};

use crate::config::{Settings, SplitKey};

/// Why `--split-key` cannot be used with these inputs.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SplitKeyError {
    /// `--split-key lsh` without an `lsh` dataset.
    #[error("--split-key lsh: no input has an `lsh` dataset")]
    NoLsh,
    /// `--split-key name` without a `name` dataset.
    #[error("--split-key name: no input has a `name` or `file_name` dataset")]
    NoName,
}

/// A shard file that cannot be read for `--dedup exact` on `--resume`.
#[derive(Debug, thiserror::Error)]
#[error("reading {} for --dedup: {message}", path.display())]
pub(crate) struct DedupReadError {
    /// The shard file.
    path: PathBuf,
    /// What failed.
    message: String,
}

/// The splits of a run and how spectra are assigned to them.
#[derive(Clone, Debug)]
pub(crate) struct SplitPlan {
    /// Split names, in order (directory names under the output root).
    pub(crate) names: Vec<String>,
    /// Upper bound (inclusive) of each split's share of the hash space; the last is `u64::MAX`.
    bounds: Vec<u64>,
    seed: u64,
    /// The resolved key (never `Auto`).
    pub(crate) key: SplitKey,
}

impl SplitPlan {
    /// Everything to `train`.
    pub(crate) fn single() -> SplitPlan {
        SplitPlan {
            names: vec!["train".into()],
            bounds: vec![u64::MAX],
            seed: 0,
            key: SplitKey::Spectrum,
        }
    }

    /// The plan of `settings`; `has_lsh` / `has_name`: whether any input has that column.
    pub(crate) fn new(
        settings: &Settings,
        has_lsh: bool,
        has_name: bool,
    ) -> Result<SplitPlan, SplitKeyError> {
        let Some(splits) = &settings.splits else {
            return Ok(SplitPlan::single());
        };
        let key = match settings.split_key {
            SplitKey::Auto if has_lsh => SplitKey::Lsh,
            SplitKey::Auto => SplitKey::Spectrum,
            SplitKey::Lsh if !has_lsh => return Err(SplitKeyError::NoLsh),
            SplitKey::Name if !has_name => return Err(SplitKeyError::NoName),
            k => k,
        };
        let mut bounds = Vec::with_capacity(splits.0.len());
        let mut cumulative = 0.0f64;
        for (i, (_, frac)) in splits.0.iter().enumerate() {
            cumulative += frac;
            bounds.push(if i + 1 == splits.0.len() {
                u64::MAX
            } else {
                // 2^64 × cumulative, saturating.
                (cumulative.min(1.0) * 18_446_744_073_709_551_616.0).min(u64::MAX as f64) as u64
            });
        }
        Ok(SplitPlan {
            names: splits.names(),
            bounds,
            seed: settings.seed,
            key,
        })
    }

    /// Whether there is more than one split (otherwise nothing is hashed).
    pub(crate) fn is_split(&self) -> bool {
        self.names.len() > 1
    }

    fn index_of_hash(&self, h: u64) -> u8 {
        self.bounds.iter().position(|&b| h <= b).unwrap_or(0) as u8
    }

    /// The split index of every row of `batch` (a batch of the run's output schema).
    pub(crate) fn assign(&self, batch: &RecordBatch, out: &mut Vec<u8>) {
        out.clear();
        if !self.is_split() {
            out.resize(batch.num_rows(), 0);
            return;
        }
        let ids = spectrum_ids(batch);
        let by_id = |i: usize| xxh3_64_with_seed(&ids.value(i).to_le_bytes(), self.seed);
        let column = match self.key {
            SplitKey::Lsh => batch.column_by_name("lsh"),
            SplitKey::Name => batch.column_by_name("name"),
            _ => None,
        };
        let hashes: Vec<u64> = match column.map(|c| (c.data_type().clone(), c)) {
            Some((DataType::Int64, c)) => {
                let a = c.as_any().downcast_ref::<Int64Array>().expect("int64");
                (0..a.len())
                    .map(|i| {
                        if a.is_null(i) {
                            by_id(i)
                        } else {
                            xxh3_64_with_seed(&a.value(i).to_le_bytes(), self.seed)
                        }
                    })
                    .collect()
            }
            Some((DataType::Utf8, c)) => {
                let a = c.as_any().downcast_ref::<StringArray>().expect("utf8");
                (0..a.len())
                    .map(|i| {
                        if a.is_null(i) {
                            by_id(i)
                        } else {
                            xxh3_64_with_seed(a.value(i).as_bytes(), self.seed)
                        }
                    })
                    .collect()
            }
            Some((DataType::Dictionary(_, _), c)) => {
                let d = c.as_dictionary::<Int32Type>();
                let values = d.values().as_any().downcast_ref::<StringArray>();
                let keys: &Int32Array = d.keys();
                (0..keys.len())
                    .map(|i| match values {
                        Some(v) if keys.is_valid(i) => {
                            xxh3_64_with_seed(v.value(keys.value(i) as usize).as_bytes(), self.seed)
                        }
                        _ => by_id(i),
                    })
                    .collect()
            }
            // `spectrum`, or a key column this input lacks (null type): by id.
            _ => (0..batch.num_rows()).map(by_id).collect(),
        };
        out.extend(hashes.into_iter().map(|h| self.index_of_hash(h)));
    }
}

fn spectrum_ids(batch: &RecordBatch) -> &UInt64Array {
    batch
        .column(0)
        .as_any()
        .downcast_ref::<UInt64Array>()
        .expect("column 0 is spectrum_id")
}

/// The 128-bit xxh3 of each row's precursor m/z, m/z list and intensity list.
pub(crate) fn row_hashes(batch: &RecordBatch) -> Vec<u128> {
    let pmz = batch
        .column_by_name("precursor_mz")
        .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
        .expect("precursor_mz is float64");
    let mz = batch
        .column_by_name("mz")
        .and_then(|c| c.as_any().downcast_ref::<ListArray>())
        .expect("mz is a list");
    let int = batch
        .column_by_name("intensity")
        .and_then(|c| c.as_any().downcast_ref::<ListArray>())
        .expect("intensity is a list");
    let mz_values = mz
        .values()
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("mz values are float64");
    let int_values = int
        .values()
        .as_any()
        .downcast_ref::<Float32Array>()
        .expect("intensity values are float32");
    let (mo, io) = (mz.value_offsets(), int.value_offsets());
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    (0..batch.num_rows())
        .map(|i| {
            buf.clear();
            buf.extend_from_slice(&pmz.value(i).to_le_bytes());
            let (a, b) = (mo[i] as usize, mo[i + 1] as usize);
            buf.extend_from_slice(&((b - a) as u64).to_le_bytes());
            buf.extend_from_slice(bytemuck::cast_slice(&mz_values.values()[a..b]));
            let (c, d) = (io[i] as usize, io[i + 1] as usize);
            buf.extend_from_slice(&((d - c) as u64).to_le_bytes());
            buf.extend_from_slice(bytemuck::cast_slice(&int_values.values()[c..d]));
            xxh3_128(&buf)
        })
        .collect()
}

/// The hashes of every row with `spectrum_id < before` in the shard files `paths`: the dedup
/// state a resumed run starts from.
pub(crate) fn seen_in_shards(paths: &[PathBuf], before: u64) -> Result<Seen, DedupReadError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ProjectionMask;
    let mut seen = Seen::default();
    for path in paths {
        let fail = |message: String| DedupReadError {
            path: path.clone(),
            message,
        };
        let file = std::fs::File::open(path).map_err(|err| fail(err.to_string()))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|err| fail(err.to_string()))?;
        let wanted = ["spectrum_id", "precursor_mz", "mz", "intensity"];
        let schema = builder.parquet_schema();
        let leaves: Vec<usize> = (0..schema.num_columns())
            .filter(|&i| wanted.contains(&schema.column(i).path().parts()[0].as_str()))
            .collect();
        let mask = ProjectionMask::leaves(schema, leaves);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|err| fail(err.to_string()))?;
        for batch in reader {
            let batch = batch.map_err(|err| fail(err.to_string()))?;
            let ids = spectrum_ids(&batch);
            for (i, h) in row_hashes(&batch).into_iter().enumerate() {
                if ids.value(i) < before {
                    seen.insert(h);
                }
            }
        }
    }
    Ok(seen)
}

/// Hasher for keys that are already uniform hashes: their low 64 bits.
#[derive(Default)]
pub(crate) struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u128 keys are hashed; fold anything else in for completeness.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(b);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// Set of row hashes.
pub(crate) type Seen = HashSet<u128, BuildHasherDefault<PreHashed>>;

/// The set of spectra seen so far, consulted by units strictly in input order.
pub(crate) struct DedupGate {
    state: Mutex<(u64, Seen)>,
    turn: Condvar,
}

impl DedupGate {
    /// A gate whose first unit is `first_seq`, with the hashes of the spectra before it.
    pub(crate) fn new(first_seq: u64, seen: Seen) -> DedupGate {
        DedupGate {
            state: Mutex::new((first_seq, seen)),
            turn: Condvar::new(),
        }
    }

    /// Wait for unit `seq`'s turn, then mark which of its rows are new (`true`: keep) and
    /// record them. `None` when the run is stopping (`abort`).
    pub(crate) fn filter(
        &self,
        seq: u64,
        hashes: &[u128],
        abort: &AtomicBool,
    ) -> Option<Vec<bool>> {
        let mut state = self.state.lock();
        while state.0 != seq {
            if abort.load(Ordering::Relaxed) {
                return None;
            }
            self.turn.wait_for(&mut state, Duration::from_millis(50));
        }
        let keep = hashes.iter().map(|h| state.1.insert(*h)).collect();
        state.0 += 1;
        drop(state);
        self.turn.notify_all();
        Some(keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Layer, Splits};

    fn settings(splits: &str, key: Option<SplitKey>, seed: u64) -> Settings {
        let cli = Layer {
            splits: Some(splits.parse::<Splits>().unwrap()),
            split_key: key,
            seed: Some(seed),
            ..Layer::default()
        };
        Settings::resolve(&cli, None, &Layer::default(), 2).unwrap()
    }

    #[test]
    fn fractions_are_met_and_the_assignment_is_a_function_of_key_and_seed() {
        let plan = SplitPlan::new(
            &settings("train=0.8,val=0.15,test=0.05", None, 7),
            false,
            false,
        )
        .unwrap();
        assert_eq!(plan.key, SplitKey::Spectrum);
        let mut counts = [0usize; 3];
        for id in 0u64..200_000 {
            let h = xxh3_64_with_seed(&id.to_le_bytes(), 7);
            counts[plan.index_of_hash(h) as usize] += 1;
        }
        let share = |n: usize| n as f64 / 200_000.0;
        assert!((share(counts[0]) - 0.8).abs() < 0.005, "{counts:?}");
        assert!((share(counts[1]) - 0.15).abs() < 0.005, "{counts:?}");
        assert!((share(counts[2]) - 0.05).abs() < 0.005, "{counts:?}");
        assert_eq!(plan.index_of_hash(0), 0);
        assert_eq!(plan.index_of_hash(u64::MAX), 2);
    }

    #[test]
    fn keys_the_inputs_lack_are_refused_and_auto_prefers_lsh() {
        let s = settings("a=0.5,b=0.5", Some(SplitKey::Lsh), 0);
        assert!(SplitPlan::new(&s, false, true)
            .unwrap_err()
            .to_string()
            .contains("lsh"));
        let s = settings("a=0.5,b=0.5", Some(SplitKey::Name), 0);
        assert!(SplitPlan::new(&s, true, false)
            .unwrap_err()
            .to_string()
            .contains("name"));
        let s = settings("a=0.5,b=0.5", None, 0);
        assert_eq!(SplitPlan::new(&s, true, true).unwrap().key, SplitKey::Lsh);
    }

    #[test]
    fn the_gate_admits_units_in_order_and_drops_repeats() {
        let gate = std::sync::Arc::new(DedupGate::new(5, Seen::default()));
        let abort = std::sync::Arc::new(AtomicBool::new(false));
        let (g, a) = (gate.clone(), abort.clone());
        // Unit 6 waits for unit 5 even though it asks first.
        let later = std::thread::spawn(move || g.filter(6, &[1, 2, 9], &a));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            gate.filter(5, &[1, 1, 3], &abort),
            Some(vec![true, false, true])
        );
        assert_eq!(later.join().unwrap(), Some(vec![false, true, true]));
        abort.store(true, Ordering::Relaxed);
        assert_eq!(gate.filter(9, &[4], &abort), None);
    }
}
