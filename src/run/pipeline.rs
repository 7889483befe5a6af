//! Scheduling: the input is cut into units of rows aligned to the spectrum dataset's chunk
//! grid. One reader thread (libhdf5 is single-threaded) walks the units in order, reads what
//! only libhdf5 can read (strings, unsupported filters) and hands each unit to a `rayon` pool
//! of `num_workers` threads, which decode the mapped chunks ([`crate::read::mapped`]), validate,
//! transform and encode it; the calling thread hands the encoded batches to the shard writer
//! in unit order. A fixed number of tokens bounds the units in flight, so memory does not
//! grow with the input. In production mode the workers are pinned to cores, grouped by NUMA
//! node ([`crate::run::affinity`]); local mode never pins.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use msms_kernels::ValidationRules;

use crate::config::{Dedup, Mode, Normalize, Settings};
use crate::format::checkpoint::{
    self, Checkpoint, CheckpointError, Fingerprint, Position, ShardEntry,
};
use crate::format::manifest::ShardRecord;
use crate::format::manifest::{InputRecord, Manifest, RunRecord};
use crate::process::batch::{self, Binner, Counts, Processing, Scratch};
use crate::process::split::{self, SplitPlan};
use crate::read::mapped::DecodeScratch;
use crate::read::source::{
    Decode, FileMapping, FileReader, InputError, RawUnit, UNIT_BYTES_BUDGET,
};
use crate::run::affinity;
use crate::write::error::SinkError;
use crate::write::sink::{EncodedBatch, Encoder, ShardPlanner, UnitOutput};

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An input cannot be converted or read (exit code 2).
    #[error(transparent)]
    Input(#[from] InputError),
    /// The output root is unusable as given (exit code 2).
    #[error("output root {}: {message}", path.display())]
    Output {
        /// The output root.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Settings that cannot work together (exit code 2).
    #[error("{0}")]
    Settings(String),
    /// Writing failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A worker thread panicked (a bug).
    #[error("internal error: {0}")]
    Internal(String),
    /// The checkpoint cannot be used for `--resume` (exit code 2).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// SIGINT or SIGTERM: the run stopped at a clean point (exit code 130).
    #[error("{}", interrupted_text(*shards, checkpoint.as_deref()))]
    Interrupted {
        /// Finalised shards kept.
        shards: usize,
        /// The checkpoint file (none in a dry run).
        checkpoint: Option<PathBuf>,
    },
}

fn interrupted_text(shards: usize, checkpoint: Option<&Path>) -> String {
    match checkpoint {
        Some(p) => format!(
            "interrupted: {shards} finished shards kept, the shard in progress dropped; {} records where to continue",
            p.display()
        ),
        None => "interrupted".into(),
    }
}

impl RunError {
    /// Exit code for the binary: 2 for bad input, settings or output root; 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Input(_)
            | RunError::Output { .. }
            | RunError::Settings(_)
            | RunError::Checkpoint(_) => 2,
            RunError::Sink(SinkError::ShardTooSmall { .. } | SinkError::Resume(_)) => 2,
            RunError::Interrupted { .. } => 130,
            RunError::Sink(_) | RunError::Internal(_) => 1,
        }
    }
}

/// How to report progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Nothing.
    Quiet,
    /// A progress bar when stderr is a terminal, else a plain line every few seconds.
    Auto,
}

/// One `build-shards` run.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// Resolved settings (inputs, profile, processing).
    pub settings: Settings,
    /// Output root (required unless `dry_run`).
    pub output_root: Option<PathBuf>,
    /// Read, validate and transform everything, write nothing.
    pub dry_run: bool,
    /// Replace the output of an earlier run in a non-empty output root.
    pub overwrite: bool,
    /// Progress reporting.
    pub progress: Progress,
    /// Which decoder reads the row data (the output is the same either way).
    pub decode: Decode,
    /// Continue the interrupted run whose checkpoint is in the output root.
    pub resume: bool,
    /// Set (by a SIGINT/SIGTERM handler) to stop at the next clean point.
    pub stop: Option<&'static AtomicBool>,
    /// Convert only these read units (one part of a `msms plan`); all when `None`.
    pub units: Option<std::ops::Range<u64>>,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Spectra read, accepted, rejected by reason.
    pub counts: Counts,
    /// Shards written (or, in a dry run, that would be written).
    pub shards: Vec<ShardRecord>,
    /// Wall time.
    pub elapsed: Duration,
    /// The manifest (written unless dry run).
    pub manifest: Manifest,
    /// Where the manifest was written.
    pub manifest_path: Option<PathBuf>,
    /// How the inputs were decoded: per file, the mapped datasets and the fallbacks.
    pub decode_notes: Vec<String>,
    /// What was done about thread placement (pinning in production mode).
    pub placement: String,
    /// Spectra an interrupted run had converted before this `--resume` continued it (0
    /// otherwise); not part of this run's rate.
    pub read_before: u64,
}

impl Summary {
    /// Spectra read by this run per second of its wall time.
    pub fn spectra_per_second(&self) -> f64 {
        (self.counts.read - self.read_before) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Bytes in all shards.
    pub fn total_bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.bytes).sum()
    }
}

/// One unit of work: rows of one file.
#[derive(Clone, Copy, Debug)]
struct UnitPlan {
    seq: u64,
    source: usize,
    start: u64,
    rows: usize,
    first_id: u64,
}

/// Rows per unit for one file: `batch_size` rounded to a whole number (at least one) of the
/// spectrum dataset's chunk rows, so each chunk is decoded by one unit, but at most
/// `max_rows` (the memory budget), below which it is rounded down to whole chunks when a
/// chunk fits, else `max_rows` itself.
fn unit_rows(m: &FileMapping, batch_size: usize, max_rows: usize) -> usize {
    let batch = batch_size.max(1);
    let Some(c) = m
        .spectrum_chunk_rows()
        .map(|c| c.min(u64::MAX >> 1) as usize)
    else {
        return batch.min(max_rows).max(1);
    };
    let want = ((batch + c / 2) / c).max(1).saturating_mul(c);
    if want <= max_rows {
        want
    } else if c <= max_rows {
        (max_rows / c) * c
    } else {
        max_rows.max(1)
    }
}

/// Split the inputs into units ([`unit_rows`] per file), in input order, stopping after
/// `max_spectra` spectra. Units never span files.
fn plan_units(
    mappings: &[FileMapping],
    batch_size: usize,
    max_rows: usize,
    max_spectra: Option<u64>,
) -> Vec<UnitPlan> {
    let mut units = Vec::new();
    let mut id = 0u64;
    let limit = max_spectra.unwrap_or(u64::MAX);
    for (source, m) in mappings.iter().enumerate() {
        let unit = unit_rows(m, batch_size, max_rows) as u64;
        let mut start = 0u64;
        while start < m.rows && id < limit {
            let rows = (m.rows - start).min(unit).min(limit - id);
            units.push(UnitPlan {
                seq: units.len() as u64,
                source,
                start,
                rows: rows as usize,
                first_id: id,
            });
            start += rows;
            id += rows;
        }
    }
    units
}

/// Detect every input's mapping (refusing bad files before anything is written).
pub fn detect_inputs(inputs: &[PathBuf]) -> Result<Vec<FileMapping>, InputError> {
    if inputs.len() > u16::MAX as usize + 1 {
        return Err(InputError {
            path: inputs[0].clone(),
            dataset: None,
            message: format!(
                "{} inputs: at most 65536 per run (source_index is uint16)",
                inputs.len()
            ),
        });
    }
    inputs.iter().map(|p| FileMapping::detect(p)).collect()
}

/// How a run starts, from what its output root holds.
enum Start {
    /// From the first unit.
    Fresh,
    /// After these finalised shards of an interrupted run (`--resume`).
    Resume(Vec<ShardEntry>),
    /// `--resume` on a root whose run already finished: nothing to do.
    Finished(Box<Manifest>),
}

/// The read units of a run over `mappings` with `s` (and the rows per unit cap): the same
/// list for `build-shards` and `plan`, so a plan's parts are whole units.
fn read_units(
    s: &Settings,
    mappings: &[FileMapping],
    processing: &Processing,
) -> (usize, Vec<UnitPlan>) {
    // Rows per read unit: the batch size, unless rows are so wide that a unit would exceed
    // the memory budget. Uniform over the run, so boundaries stay deterministic.
    let dense_bins = processing
        .binning
        .filter(|b| !b.sparse)
        .map_or(0, |b| 4 * b.spec.bins as u64);
    let row_bytes = dense_bins
        + mappings
            .iter()
            .map(FileMapping::row_bytes)
            .max()
            .unwrap_or(1)
            .max(1);
    let max_rows = (UNIT_BYTES_BUDGET / row_bytes).max(1) as usize;
    let units = plan_units(mappings, s.profile.batch_size, max_rows, s.max_spectra);
    (max_rows, units)
}

/// One unit as a plan sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitSpan {
    /// Input file (index into the inputs).
    pub source: usize,
    /// First row in that file.
    pub start: u64,
    /// Rows.
    pub rows: u64,
    /// `spectrum_id` of the first row.
    pub first_id: u64,
}

/// The read units `build-shards` would process, in order (for `msms plan`).
pub fn unit_spans(s: &Settings, mappings: &[FileMapping]) -> Result<Vec<UnitSpan>, RunError> {
    let processing = processing(s)?;
    let (_, units) = read_units(s, mappings, &processing);
    Ok(units
        .iter()
        .map(|u| UnitSpan {
            source: u.source,
            start: u.start,
            rows: u.rows as u64,
            first_id: u.first_id,
        })
        .collect())
}

/// Check the output root and make it ready: with `overwrite`, remove an earlier run's output;
/// with `resume`, check the checkpoint against the inputs and settings, re-hash the shards it
/// lists and remove everything written after them.
///
/// Only what msms-shards writes is ever removed (`manifest.json`, `*/shard-*.parquet` and
/// their `.tmp` files, `.msms/checkpoint.json`, then directories left empty); anything else in
/// the directory stays.
fn prepare_output_root(
    root: &Path,
    opts: &BuildOptions,
    fingerprint: &Fingerprint,
) -> Result<Start, RunError> {
    let out_err = |message: String| RunError::Output {
        path: root.to_path_buf(),
        message,
    };
    let say = |line: String| {
        if opts.progress != Progress::Quiet {
            eprintln!("{line}");
        }
    };
    let fresh_start = || {
        if opts.resume {
            say(format!(
                "notice: {} holds no checkpoint (the run stopped before its first one): starting from the beginning",
                root.display()
            ));
        }
    };
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fresh_start();
            return std::fs::create_dir_all(root)
                .map(|()| Start::Fresh)
                .map_err(|e| out_err(format!("cannot create it: {e}")));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(out_err("is a file, not a directory".into()));
        }
        Err(e) => return Err(out_err(format!("cannot read it: {e}"))),
    };
    let entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    if entries.is_empty() {
        fresh_start();
        return Ok(Start::Fresh);
    }
    let saved = if opts.overwrite {
        None
    } else {
        Checkpoint::load(root)?
    };
    if !opts.resume {
        if let Some(cp) = &saved {
            return Err(out_err(format!(
                "holds an interrupted run ({}: {} shards finished, {} spectra read); continue it by adding --resume to the same command, or start over with --overwrite",
                checkpoint::path(root).display(),
                cp.shards.len(),
                cp.read_so_far
            )));
        }
        if !opts.overwrite {
            return Err(out_err(
                "is not empty; choose an empty or new directory, or pass --overwrite to replace an earlier run's output".into(),
            ));
        }
        remove_ours(root, &[], true).map_err(out_err)?;
        return Ok(Start::Fresh);
    }
    let Some(cp) = saved else {
        let manifest = root.join("manifest.json");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            let m: Manifest = serde_json::from_str(&text)
                .map_err(|e| out_err(format!("{} cannot be read: {e}", manifest.display())))?;
            let same_inputs = m.inputs.len() == fingerprint.inputs.len()
                && m.inputs
                    .iter()
                    .zip(&fingerprint.inputs)
                    .all(|(a, b)| a.path == b.path && a.bytes == b.bytes);
            if m.config_hash == fingerprint.config_hash && same_inputs {
                say(format!(
                    "notice: {} already holds this run, finished (manifest.json): nothing to resume",
                    root.display()
                ));
                return Ok(Start::Finished(Box::new(m)));
            }
            return Err(out_err(
                "holds a finished run with other inputs or settings (manifest.json) and no checkpoint; use --overwrite to convert again".into(),
            ));
        }
        fresh_start();
        remove_ours(root, &[], true).map_err(out_err)?;
        return Ok(Start::Fresh);
    };
    let differences = cp.fingerprint.differences(fingerprint);
    if !differences.is_empty() {
        return Err(CheckpointError::Mismatch {
            path: checkpoint::path(root),
            differences,
        }
        .into());
    }
    // Finalised shards must still be what the checkpoint says: re-hash them (in parallel),
    // keep the longest prefix that matches.
    use rayon::prelude::*;
    let found: Vec<Result<(u64, String), String>> = cp
        .shards
        .par_iter()
        .map(|e| {
            crate::write::hashing::hash_file(&root.join(&e.record.path), &mut |_| {})
                .map(|(sha, bytes)| (bytes, sha))
                .map_err(|e| e.to_string())
        })
        .collect();
    // Per split: the shards of a split after a damaged one are written again.
    let mut kept = Vec::new();
    let mut broken: Vec<String> = Vec::new();
    for (e, f) in cp.shards.iter().zip(found) {
        if broken.contains(&e.record.split) {
            continue;
        }
        let why = match f {
            Ok((bytes, sha)) if bytes == e.record.bytes && sha == e.record.sha256 => {
                kept.push(e.clone());
                continue;
            }
            Ok((bytes, _)) if bytes != e.record.bytes => {
                format!("{} bytes, {} recorded", bytes, e.record.bytes)
            }
            Ok(_) => "its SHA-256 differs from the recorded one".into(),
            Err(err) => err,
        };
        say(format!(
            "notice: {} does not match the checkpoint ({why}): it and every later shard of its split are written again",
            e.record.path
        ));
        broken.push(e.record.split.clone());
    }
    let keep: Vec<String> = kept.iter().map(|e| e.record.path.clone()).collect();
    remove_ours(root, &keep, false).map_err(out_err)?;
    say(format!(
        "resuming {}: {} finished shards verified and kept (the interrupted run had read {} spectra)",
        root.display(),
        kept.len(),
        cp.read_so_far
    ));
    Ok(Start::Resume(kept))
}

/// Remove what msms-shards writes under `root` except the shards in `keep` (paths relative
/// to the root); the checkpoint too when `checkpoint` is set.
fn remove_ours(root: &Path, keep: &[String], checkpoint: bool) -> Result<(), String> {
    let ours = |p: &Path| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        name.starts_with("shard-") && (name.ends_with(".parquet") || name.ends_with(".parquet.tmp"))
    };
    let remove = |p: &Path| {
        std::fs::remove_file(p).map_err(|e| format!("cannot remove {}: {e}", p.display()))
    };
    let entries: Vec<_> = std::fs::read_dir(root)
        .map_err(|e| format!("cannot read it: {e}"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // symlink_metadata: a symlinked directory is not ours to clean.
        let is_dir = std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
        if is_dir && name == checkpoint::DIR {
            if checkpoint {
                for f in [checkpoint::FILE, "checkpoint.json.tmp"] {
                    let f = p.join(f);
                    if f.exists() {
                        remove(&f)?;
                    }
                }
                let _ = std::fs::remove_dir(&p);
            } else {
                let tmp = p.join("checkpoint.json.tmp");
                if tmp.exists() {
                    remove(&tmp)?;
                }
            }
        } else if is_dir {
            let files: Vec<_> = std::fs::read_dir(&p)
                .map_err(|e| format!("cannot read {}: {e}", p.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .collect();
            for f in files.iter().filter(|f| f.is_file() && ours(f)) {
                let rel = f
                    .strip_prefix(root)
                    .map(|r| r.to_string_lossy().replace('\\', "/"))
                    .unwrap_or_default();
                if !keep.contains(&rel) {
                    remove(f)?;
                }
            }
            // Only removed when nothing else is in it.
            let _ = std::fs::remove_dir(&p);
        } else if name == "manifest.json" || name == "manifest.json.tmp" {
            remove(&p)?;
        }
    }
    Ok(())
}

/// Write the checkpoint under `root` (fsynced when `durable`).
fn save_checkpoint(root: &Path, cp: &Checkpoint, durable: bool) -> Result<(), SinkError> {
    let dir = root.join(checkpoint::DIR);
    std::fs::create_dir_all(&dir).map_err(|source| SinkError::Io {
        op: "creating directory",
        path: dir,
        source,
    })?;
    let n = cp.shards.len();
    crate::write::atomic::write_replacing(
        &checkpoint::path(root),
        cp.to_json().as_bytes(),
        durable,
        &|| format!("checkpoint-rename:{n}"),
    )
}

/// The summary of a run that had already finished (`--resume` with nothing left to do).
fn finished_summary(m: Manifest, root: &Path, started: Instant) -> Result<Summary, RunError> {
    let counts = checkpoint::SavedCounts {
        read: m.counts.read,
        accepted: m.counts.written,
        rejected: m.counts.rejected.clone(),
    }
    .to_counts()
    .map_err(|e| RunError::Output {
        path: root.to_path_buf(),
        message: format!("manifest.json: {e}"),
    })?;
    Ok(Summary {
        shards: m.shards.clone(),
        elapsed: started.elapsed(),
        manifest_path: Some(root.join("manifest.json")),
        placement: "nothing to do: the run had finished".into(),
        read_before: counts.read,
        counts,
        manifest: m,
        decode_notes: Vec::new(),
    })
}

/// The kernels' settings from the resolved configuration.
fn processing(s: &Settings) -> Result<Processing, RunError> {
    use crate::config::{BinAggregation, BinOutput, QualityFormat};
    use msms_kernels::bin::{BinAggregation as Agg, BinSpec};
    use msms_kernels::quality::GemsFormat;
    let binning = match &s.binning {
        None => None,
        Some(b) => {
            let aggregation = match b.aggregation {
                BinAggregation::Sum => Agg::Sum,
                BinAggregation::Max => Agg::Max,
            };
            let spec = BinSpec::new(b.min, b.max, b.width, aggregation, b.scale).map_err(|e| {
                RunError::Settings(format!(
                    "--bin-width {} --bin-range {}:{} --bin-scale {}: {e}",
                    b.width, b.min, b.max, b.scale
                ))
            })?;
            Some(Binner {
                spec,
                sparse: b.output == BinOutput::Sparse,
            })
        }
    };
    Ok(Processing {
        rules: ValidationRules {
            min_peaks: s.min_peaks,
            max_precursor_mz: s.max_precursor_mz,
        },
        max_peaks: s.max_peaks,
        normalize: match s.normalize {
            Normalize::None => msms_kernels::Normalize::None,
            Normalize::Max => msms_kernels::Normalize::Max,
            Normalize::Sum => msms_kernels::Normalize::Sum,
            Normalize::L2 => msms_kernels::Normalize::L2,
            Normalize::Sqrt => msms_kernels::Normalize::Sqrt,
        },
        binning,
        quality: s.quality_format.map(|q| match q {
            QualityFormat::A => GemsFormat::A,
            QualityFormat::B => GemsFormat::B,
            QualityFormat::C => GemsFormat::C,
        }),
    })
}

/// Run `build-shards`: inputs → validated, normalised Parquet shards + manifest.
pub fn build_shards(opts: &BuildOptions, mappings: &[FileMapping]) -> Result<Summary, RunError> {
    let started = Instant::now();
    let s = &opts.settings;
    let processing = processing(s)?;
    let split_plan = SplitPlan::new(
        s,
        mappings.iter().any(|m| m.lsh.is_some()),
        mappings.iter().any(|m| m.name.is_some()),
    )
    .map_err(RunError::Settings)?;
    let schema = batch::output_schema(mappings, processing.binning.as_ref())?;
    let max_slots = mappings.iter().map(|m| m.spectrum.slots).max().unwrap_or(1);
    let (max_rows, mut units) = read_units(s, mappings, &processing);
    if let Some(range) = &opts.units {
        // One part of a plan: its units, renumbered from 0 (positions and checkpoints are
        // the part's own; spectrum ids stay those of the whole input).
        if range.end > units.len() as u64 || range.start >= range.end {
            return Err(RunError::Settings(format!(
                "the plan's part covers read units {}..{}, but these inputs and settings give {}",
                range.start,
                range.end,
                units.len()
            )));
        }
        units = units[range.start as usize..range.end as usize].to_vec();
        for (i, u) in units.iter_mut().enumerate() {
            u.seq = i as u64;
        }
    }
    let largest_unit = units.iter().map(|u| u.rows).max().unwrap_or(1);
    if (largest_unit as u64).saturating_mul(max_slots as u64) > i32::MAX as u64 {
        return Err(RunError::Settings(format!(
            "units of {largest_unit} spectra × {max_slots} peak slots overflow a list column; lower --batch-size"
        )));
    }
    let config_hash = s.config_hash();
    let props = crate::write::sink::writer_properties(&schema, &config_hash);
    let workers = s.profile.num_workers.max(1);
    // Per-worker state, indexed by the pool's thread index (each lock is only ever taken
    // by its own thread). Made before the output root is touched: a failure here leaves
    // nothing behind.
    let mut states = Vec::with_capacity(workers);
    for _ in 0..workers {
        states.push(parking_lot::Mutex::new(WorkerState {
            encoder: Encoder::new(&schema, &props)?,
            scratch: Scratch::default(),
            decode: DecodeScratch::default(),
        }));
    }
    let created_root = opts.output_root.as_ref().is_some_and(|r| !r.exists());
    let fingerprint = Fingerprint::of(s, mappings);
    let (root, start) = match (&opts.output_root, opts.dry_run) {
        (_, true) => (None, Start::Fresh),
        (Some(r), false) => (Some(r.clone()), prepare_output_root(r, opts, &fingerprint)?),
        (None, false) => {
            return Err(RunError::Settings(
                "--output-root is required (or use --dry-run)".into(),
            ))
        }
    };
    let done = match start {
        Start::Fresh => Vec::new(),
        Start::Resume(done) => done,
        Start::Finished(m) => {
            return finished_summary(*m, root.as_deref().expect("not a dry run"), started)
        }
    };
    // Each split resumes after its own last finalised shard; reading starts at the earliest
    // of those positions (units before a split's position are not given to its planner).
    let names = split_plan.names.clone();
    let done_by_split: Vec<Vec<ShardEntry>> = names
        .iter()
        .map(|n| {
            done.iter()
                .filter(|e| &e.record.split == n)
                .cloned()
                .collect()
        })
        .collect();
    let positions: Vec<Position> = done_by_split
        .iter()
        .map(|d| d.last().map(|e| e.resume.clone()).unwrap_or_default())
        .collect();
    let position = positions
        .iter()
        .min_by_key(|p| p.unit)
        .cloned()
        .unwrap_or_default();
    let checkpoint_path = root.as_deref().map(checkpoint::path).unwrap_or_default();
    let bad_checkpoint = |message: String| {
        RunError::Checkpoint(CheckpointError::Invalid {
            path: checkpoint_path.clone(),
            message,
        })
    };
    if positions.iter().any(|p| p.unit > units.len() as u64) {
        return Err(bad_checkpoint(format!(
            "it resumes at read unit {} of {}",
            position.unit,
            units.len()
        )));
    }
    let mut counts = position
        .counts
        .to_counts()
        .map_err(|e| bad_checkpoint(e.to_string()))?;
    let read_before = counts.read;
    let mut cp = Checkpoint::new(fingerprint);
    cp.shards = done.clone();
    cp.read_so_far = counts.read;
    if let Some(r) = &root {
        save_checkpoint(r, &cp, true)?;
    }
    let todo = &units[position.unit as usize..];
    let total: u64 = units.iter().map(|u| u.rows as u64).sum();
    let writers = s.profile.writers.max(1);
    let mut planners = Vec::with_capacity(names.len());
    for (name, done) in names.iter().zip(done_by_split) {
        planners.push(ShardPlanner::new(
            root.as_deref(),
            name,
            &schema,
            &props,
            s.profile.shard_size.0,
            writers,
            done,
        )?);
    }
    // `--dedup exact`: the hashes of every spectrum written before the first unit to read.
    let dedup = if s.dedup == Dedup::Exact {
        let mut seen = split::Seen::default();
        if let (Some(r), Some(first)) = (&root, todo.first()) {
            let before = first.first_id;
            let paths: Vec<PathBuf> = (cp.shards.iter())
                .filter(|e| e.record.first_spectrum_id < before)
                .map(|e| r.join(&e.record.path))
                .collect();
            seen = split::seen_in_shards(&paths, before).map_err(bad_checkpoint)?;
        }
        Some(split::DedupGate::new(
            todo.first().map_or(0, |u| u.seq),
            seen,
        ))
    } else {
        None
    };
    let mut progress = ProgressReporter::new(opts.progress, total);
    progress.update(counts.read, &counts);

    let in_flight = 2 * workers + 2;
    let abort = Arc::new(AtomicBool::new(false));
    let (token_tx, token_rx) = bounded::<()>(in_flight);
    for _ in 0..in_flight {
        token_tx.send(()).expect("capacity");
    }
    let (done_tx, done_rx) = bounded::<Done>(in_flight);

    // Worker pool; production mode pins each worker to a core, NUMA node by node.
    let (pin_plan, mut placement) = if s.mode == Mode::Production {
        let topo = affinity::Topology::detect();
        let plan = affinity::plan(&topo, workers);
        let text = affinity::describe(&topo, &plan);
        (Some(plan), text)
    } else {
        (None, format!("{workers} workers, not pinned (local mode)"))
    };
    let pins_refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let refused = Arc::clone(&pins_refused);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("msms-worker-{i}"))
        .start_handler(move |i| {
            if let Some(cpu) = pin_plan.as_ref().and_then(|p| p.get(i)) {
                // Pinning is an optimisation: a refused pin leaves the thread unpinned.
                if affinity::pin_current_thread(*cpu).is_err() {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .build()
        .map_err(|e| RunError::Internal(format!("cannot start {workers} worker threads: {e}")))?;
    let shared = Arc::new(Shared {
        schema: Arc::clone(&schema),
        batch_size: s.profile.batch_size.min(max_rows).max(1),
        processing,
        states,
        abort: Arc::clone(&abort),
        split: split_plan.clone(),
        dedup,
    });
    let mut decode_notes = Vec::new();
    let stop_requested = || {
        opts.stop
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    };
    let interrupted = || RunError::Interrupted {
        shards: 0,
        checkpoint: root.as_ref().map(|_| checkpoint_path.clone()),
    };

    let result = std::thread::scope(|scope| -> Result<Vec<ShardEntry>, RunError> {
        // Reader: files in order, units in order; each unit goes to the pool.
        let reader_abort = Arc::clone(&abort);
        let reader_done = done_tx.clone();
        let units_ref = &units;
        let (pool_ref, shared_ref, decode) = (&pool, &shared, opts.decode);
        let quiet = opts.progress == Progress::Quiet;
        let notes = scope.spawn(move || {
            let mut notes = Vec::new();
            // Ok(()) when done or told to stop; Err((seq, error)) to report.
            let read_all = || -> Result<(), (u64, RunError)> {
                let mut open: Option<(usize, FileReader)> = None;
                for u in todo {
                    if token_rx.recv().is_err() || reader_abort.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    if open.as_ref().is_none_or(|(i, _)| *i != u.source) {
                        drop(open.take());
                        let m = &mappings[u.source];
                        let r = m
                            .reader(reader_rows(u.source, units_ref), decode)
                            .map_err(|e| (u.seq, e.into()))?;
                        for (line, fallback) in decode_lines(m, &r, decode) {
                            if !quiet && fallback {
                                eprintln!("notice: {line}");
                            }
                            notes.push(line);
                        }
                        open = Some((u.source, r));
                    }
                    let reader = &open.as_ref().expect("opened").1;
                    let raw = reader
                        .read(u.seq, u.source as u16, u.first_id, u.start, u.rows)
                        .map_err(|e| (u.seq, e.into()))?;
                    let tx = reader_done.clone();
                    let shared = Arc::clone(shared_ref);
                    pool_ref.spawn_fifo(move || run_unit(raw, &shared, &tx));
                }
                Ok(())
            };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read_all))
                .unwrap_or_else(|_| {
                    Err((
                        u64::MAX,
                        RunError::Internal("the reader thread panicked".into()),
                    ))
                });
            if let Err((seq, e)) = outcome {
                reader_abort.store(true, Ordering::Relaxed);
                let _ = reader_done.send((seq, Err(e)));
            }
            notes
        });
        drop(done_tx);

        // Sink, on this thread: reorder by sequence number, plan shards, checkpoint.
        let mut pending: BTreeMap<u64, (Vec<UnitOutput>, Counts)> = BTreeMap::new();
        let mut next = position.unit;
        let n_units = units.len() as u64;
        let interval = s.profile.checkpoint_interval.max(1) as u64;
        let mut progress_mark = counts.read;
        let outcome = (|| {
            // A finalised shard is recorded at once (durably); progress every `interval`
            // spectra (not fsynced: it carries no resume state).
            let mut record = |planners: &[ShardPlanner],
                              cp: &mut Checkpoint,
                              counts: &Counts|
             -> Result<(), RunError> {
                let Some(r) = &root else { return Ok(()) };
                let finalised: usize = planners.iter().map(|p| p.finalised().len()).sum();
                let new_shards = finalised > cp.shards.len();
                if new_shards || counts.read >= progress_mark + interval {
                    cp.shards = planners
                        .iter()
                        .flat_map(|p| p.finalised().iter().cloned())
                        .collect();
                    cp.read_so_far = counts.read;
                    cp.updated_at = checkpoint::now();
                    save_checkpoint(r, cp, new_shards)?;
                    progress_mark = counts.read;
                }
                Ok(())
            };
            while next < n_units {
                let (seq, out) = match done_rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        if stop_requested() {
                            return Err(interrupted());
                        }
                        for p in &mut planners {
                            p.poll(false)?;
                        }
                        record(&planners, &mut cp, &counts)?;
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(RunError::Internal("a pipeline thread stopped early".into()))
                    }
                };
                pending.insert(seq, out?);
                while let Some((parts, c)) = pending.remove(&next) {
                    let before = counts.clone();
                    counts.add(&c);
                    for ((part, planner), at) in
                        parts.into_iter().zip(&mut planners).zip(&positions)
                    {
                        // A split resumed further on has these rows in its shards already.
                        if next < at.unit {
                            continue;
                        }
                        let pieces: &[[u64; 2]] = if next == at.unit { &at.pieces } else { &[] };
                        planner.push_unit(part, pieces, &before)?;
                    }
                    next += 1;
                    progress.update(counts.read, &counts);
                    let _ = token_tx.send(());
                    record(&planners, &mut cp, &counts)?;
                }
                if stop_requested() {
                    return Err(interrupted());
                }
            }
            let end = Position {
                unit: n_units,
                pieces: Vec::new(),
                counts: (&counts).into(),
            };
            let mut all = Vec::new();
            for p in &mut planners {
                all.extend(p.finish(end.clone())?);
            }
            record(&planners, &mut cp, &counts)?;
            Ok(all)
        })();
        if outcome.is_err() {
            abort.store(true, Ordering::Relaxed);
        }
        drop(token_tx);
        drop(done_rx);
        if let Ok(n) = notes.join() {
            decode_notes = n;
        }
        outcome
    });
    // After a failure, units still queued in the pool see the abort flag and return without
    // doing anything; dropping the pool lets its threads exit once they have.
    drop(pool);
    progress.finish();
    let refused = pins_refused.load(Ordering::Relaxed);
    if refused > 0 {
        placement.push_str(&format!(
            " ({refused} pins refused by the system; those threads run unpinned)"
        ));
    }
    let entries = match result {
        Ok(entries) => entries,
        Err(mut e) => {
            // The shard in progress is dropped; shards already closed are finalised.
            let kept: Vec<ShardEntry> = planners
                .into_iter()
                .flat_map(ShardPlanner::shut_down)
                .collect();
            let Some(root) = &root else { return Err(e) };
            if e.exit_code() == 2 {
                // A run refused for its input or settings leaves nothing behind: shards
                // finished before the problem surfaced are removed, with the checkpoint
                // (there is no manifest to describe them).
                for s in &kept {
                    let _ = std::fs::remove_file(root.join(&s.record.path));
                }
                let _ = remove_ours(root, &[], true);
                if created_root {
                    let _ = std::fs::remove_dir(root);
                }
            } else {
                // Keep what is finished, and say so in the checkpoint, for --resume.
                cp.shards = kept;
                cp.read_so_far = counts.read;
                cp.updated_at = checkpoint::now();
                if let Err(ce) = save_checkpoint(root, &cp, true) {
                    eprintln!("msms: warning: cannot update the checkpoint: {ce}");
                }
                if let RunError::Interrupted { shards, .. } = &mut e {
                    *shards = cp.shards.len();
                }
            }
            return Err(e);
        }
    };
    let shards: Vec<ShardRecord> = entries.into_iter().map(|e| e.record).collect();

    let inputs = mappings
        .iter()
        .scan(0u64, |first, m| {
            let rec = InputRecord {
                path: m.path.display().to_string(),
                bytes: m.file_bytes,
                spectra: m.rows,
                first_spectrum_id: *first,
            };
            *first += m.rows;
            Some(rec)
        })
        .collect();
    let run = RunRecord::now(workers, writers, opts.decode.as_str(), &placement);
    let manifest = Manifest::new(s, &schema, inputs, &counts, &shards, &names, run);
    let manifest_path = match &root {
        Some(r) => {
            let p = r.join("manifest.json");
            crate::write::atomic::write_replacing(
                &p,
                manifest.to_json().as_bytes(),
                true,
                &|| "manifest-rename".into(),
            )?;
            crate::write::stall::stall_point(&|| "manifest-renamed".into());
            // The run is complete: the checkpoint has served its purpose.
            remove_checkpoint(r)?;
            Some(p)
        }
        None => None,
    };
    Ok(Summary {
        counts,
        shards,
        elapsed: started.elapsed(),
        manifest,
        manifest_path,
        decode_notes,
        placement,
        read_before,
    })
}

/// Remove `.msms/checkpoint.json` and `.msms` once the manifest is in place.
fn remove_checkpoint(root: &Path) -> Result<(), SinkError> {
    let p = checkpoint::path(root);
    std::fs::remove_file(&p).map_err(|source| SinkError::Io {
        op: "removing the checkpoint",
        path: p,
        source,
    })?;
    let _ = std::fs::remove_dir(root.join(checkpoint::DIR));
    crate::write::atomic::sync_dir(root)
}

/// A finished unit (sequence number, row groups and counts) or why it failed.
type Done = (u64, Result<(Vec<UnitOutput>, Counts), RunError>);

/// Keep freed memory in the process instead of returning it to the kernel.
///
/// A run allocates and frees the same buffers (units of decoded spectra, Arrow arrays,
/// encoded column chunks, zstd contexts) thousands of times. glibc serves blocks above its
/// mmap threshold with fresh `mmap`s and trims the heap top back to the kernel, so those
/// buffers keep arriving as untouched pages, and the first touch of a page is expensive (on
/// the 2-core VM this project is measured on, about 4 ns per byte). With a 32 MiB mmap
/// threshold and no trimming, freed memory is reused; peak memory is unchanged (bounded by
/// the units in flight). Called once by the `msms` binary and the benchmarks; harmless to
/// call again.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc allocator parameters; it takes plain integers and
    // is safe to call at any time from any thread.
    unsafe {
        // 32 MiB is the largest threshold every glibc accepts (older ones refuse more, and
        // then fixing the trim threshold alone would freeze the mmap threshold at 128 KiB).
        if libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1 {
            libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        }
    }
}

/// What every pool thread shares.
struct Shared {
    schema: SchemaRef,
    /// Most rows per row group.
    batch_size: usize,
    processing: Processing,
    states: Vec<parking_lot::Mutex<WorkerState>>,
    abort: Arc<AtomicBool>,
    /// How rows are divided into splits.
    split: SplitPlan,
    /// `--dedup exact`.
    dedup: Option<split::DedupGate>,
}

/// One worker's reusable state.
struct WorkerState {
    encoder: Encoder,
    scratch: Scratch,
    decode: DecodeScratch,
}

/// Rows per read for sizing libhdf5's chunk cache: the largest unit of file `source`.
fn reader_rows(source: usize, units: &[UnitPlan]) -> usize {
    units
        .iter()
        .filter(|u| u.source == source)
        .map(|u| u.rows)
        .max()
        .unwrap_or(1)
}

/// One line per dataset of `m`: how it is decoded, and whether it is a fallback to libhdf5
/// under `--decode native` (printed as a notice).
fn decode_lines(m: &FileMapping, r: &FileReader, decode: Decode) -> Vec<(String, bool)> {
    let file = m.path.display();
    match (decode, r.mapped()) {
        (Decode::Libhdf5, _) => vec![(
            format!("{file}: every dataset read through libhdf5 (--decode libhdf5)"),
            false,
        )],
        (Decode::Native, None) => vec![(
            format!("{file}: no dataset can be decoded from the map; read through libhdf5"),
            true,
        )],
        (Decode::Native, Some(cols)) => cols
            .mapped
            .iter()
            .map(|l| (format!("{file}: {l}"), false))
            .chain(
                cols.fallbacks
                    .iter()
                    .map(|l| (format!("{file}: {l}; read through libhdf5"), true)),
            )
            .collect(),
    }
}

/// Decode, validate, transform and encode one unit on a pool thread; send the result.
fn run_unit(mut raw: RawUnit, shared: &Shared, tx: &Sender<Done>) {
    let seq = raw.seq;
    if shared.abort.load(Ordering::Relaxed) {
        // The run is stopping; whoever stopped it has reported why.
        return;
    }
    let index = rayon::current_thread_index().unwrap_or(0) % shared.states.len();
    let mut state = shared.states[index].lock();
    let WorkerState {
        encoder,
        scratch,
        decode,
    } = &mut *state;
    // A panic here is a bug; report it instead of leaving the sink waiting.
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        raw.decode_pending(decode)?;
        work(&raw, shared, scratch, encoder)
    }))
    .unwrap_or_else(|_| {
        Err(RunError::Internal(format!(
            "a worker panicked on spectra {}..{}",
            raw.first_spectrum_id,
            raw.first_spectrum_id + raw.rows as u64
        )))
    });
    raw.recycle(decode);
    drop(state);
    let _ = tx.send((seq, out));
}

/// Build a unit's batch, drop duplicates (`--dedup exact`), divide it among the splits, and
/// encode each split's rows as row groups of at most `max_rows` rows: one when they fit,
/// else the fewest that do, of equal size (±1), so a unit of whole chunks larger than the
/// batch size never gives a sliver of a row group. One [`UnitOutput`] per split, in order.
fn work(
    raw: &RawUnit,
    shared: &Shared,
    scratch: &mut Scratch,
    encoder: &Encoder,
) -> Result<(Vec<UnitOutput>, Counts), RunError> {
    let (mut batch, mut counts) =
        batch::build(raw, &shared.schema, &shared.processing, scratch).map_err(SinkError::from)?;
    if let Some(gate) = &shared.dedup {
        let hashes = split::row_hashes(&batch);
        let Some(keep) = gate.filter(raw.seq, &hashes, &shared.abort) else {
            return Err(RunError::Internal("stopped".into()));
        };
        let dropped = keep.iter().filter(|k| !**k).count();
        if dropped > 0 {
            counts.duplicate += dropped as u64;
            counts.accepted -= dropped as u64;
            batch = arrow::compute::filter_record_batch(
                &batch,
                &arrow::array::BooleanArray::from(keep),
            )
            .map_err(SinkError::from)?;
        }
    }
    let parts: Vec<arrow::array::RecordBatch> = if shared.split.is_split() {
        let mut which = Vec::new();
        shared.split.assign(&batch, &mut which);
        (0..shared.split.names.len())
            .map(|k| {
                let mask: arrow::array::BooleanArray =
                    which.iter().map(|w| Some(usize::from(*w) == k)).collect();
                arrow::compute::filter_record_batch(&batch, &mask)
            })
            .collect::<Result<_, _>>()
            .map_err(SinkError::from)?
    } else {
        vec![batch]
    };
    let max_rows = shared.batch_size.max(1);
    let mut out = Vec::with_capacity(parts.len());
    for batch in parts {
        let n = batch.num_rows();
        let count = n.div_ceil(max_rows).max(1);
        let mut groups: Vec<EncodedBatch> = Vec::with_capacity(count);
        let mut at = 0;
        for k in 0..count {
            let len = n / count + usize::from(k < n % count);
            let mut enc = encoder.encode(batch.slice(at, len))?;
            enc.offset = at;
            groups.push(enc);
            at += len;
        }
        out.push(UnitOutput {
            seq: raw.seq,
            batch,
            groups,
        });
    }
    Ok((out, counts))
}

/// A progress bar on a terminal, a plain line every 5 s otherwise.
struct ProgressReporter {
    bar: Option<indicatif::ProgressBar>,
    plain: bool,
    total: u64,
    started: Instant,
    last: Instant,
}

impl ProgressReporter {
    fn new(mode: Progress, total: u64) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = (mode == Progress::Auto && tty).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40.cyan/blue} {human_pos}/{human_len} spectra  ETA {eta}  {msg}",
                )
                .expect("valid template"),
            );
            bar
        });
        let now = Instant::now();
        ProgressReporter {
            bar,
            plain: mode == Progress::Auto && !tty,
            total,
            started: now,
            last: now,
        }
    }

    fn update(&mut self, read: u64, counts: &Counts) {
        if let Some(bar) = &self.bar {
            bar.set_position(read);
            let rate = read as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "{rate:.0} spectra/s, {} rejected",
                counts.rejected_total()
            ));
        } else if self.plain && self.last.elapsed() >= Duration::from_secs(5) {
            self.last = Instant::now();
            let rate = read as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            eprintln!(
                "progress: {read}/{} spectra ({:.1}%), {:.0} spectra/s, {} rejected",
                self.total,
                100.0 * read as f64 / self.total.max(1) as f64,
                rate,
                counts.rejected_total()
            );
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_cover_inputs_in_order_and_stop_at_max_spectra() {
        let m = |rows| FileMapping::for_tests(rows, 128);
        let files = [m(25), m(0), m(12)];
        let units = plan_units(&files, 10, usize::MAX, None);
        let shape: Vec<_> = units
            .iter()
            .map(|u| (u.source, u.start, u.rows, u.first_id))
            .collect();
        assert_eq!(
            shape,
            vec![
                (0, 0, 10, 0),
                (0, 10, 10, 10),
                (0, 20, 5, 20),
                (2, 0, 10, 25),
                (2, 10, 2, 35)
            ]
        );
        let units = plan_units(&files, 10, usize::MAX, Some(27));
        let shape: Vec<_> = units
            .iter()
            .map(|u| (u.source, u.start, u.rows, u.first_id))
            .collect();
        assert_eq!(
            shape,
            vec![
                (0, 0, 10, 0),
                (0, 10, 10, 10),
                (0, 20, 5, 20),
                (2, 0, 2, 25)
            ]
        );
        assert_eq!(
            units.iter().map(|u| u.seq).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
    }

    #[test]
    fn units_align_to_the_spectrum_chunk_grid_within_the_memory_cap() {
        let chunked = |rows: u64| {
            let mut m = FileMapping::for_tests(10_000, 128);
            m.datasets.push(crate::read::h5::DatasetInfo {
                name: m.spectrum.dataset.clone(),
                dtype: crate::read::h5::DType::Float { size: 8 },
                shape: vec![10_000, 2, 128],
                layout: crate::read::h5::Layout::Chunked(vec![rows, 2, 128]),
                filters: vec![],
            });
            m
        };
        let m = chunked(1024);
        assert_eq!(m.spectrum_chunk_rows(), Some(1024));
        assert_eq!(unit_rows(&m, 1000, usize::MAX), 1024);
        assert_eq!(unit_rows(&m, 1500, usize::MAX), 1024);
        assert_eq!(unit_rows(&m, 1600, usize::MAX), 2048);
        assert_eq!(unit_rows(&m, 1, usize::MAX), 1024);
        assert_eq!(
            unit_rows(&m, 5000, 3000),
            2048,
            "whole chunks under the cap"
        );
        assert_eq!(
            unit_rows(&chunked(4096), 1000, 2000),
            2000,
            "chunk above the cap"
        );
        assert_eq!(unit_rows(&FileMapping::for_tests(10, 128), 1000, 700), 700);
        let units = plan_units(&[m], 1000, usize::MAX, Some(2500));
        let starts: Vec<_> = units.iter().map(|u| (u.start, u.rows)).collect();
        assert_eq!(starts, vec![(0, 1024), (1024, 1024), (2048, 452)]);
    }
}
