//! `build_shards` and its stages: open (settings → processing, splits, schema, units, writer
//! properties, worker states) → plan (output root, resume from the checkpoint, shard
//! planners, the dedup state) → run ([`crate::run::stream`]) → finish (manifest, checkpoint
//! removal, summary; or, after a failure, what is kept for `--resume`).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use parquet::file::properties::WriterPropertiesPtr;

use crate::config::{Dedup, Settings};
use crate::format::checkpoint::{
    self, Checkpoint, CheckpointError, Fingerprint, Position, ShardEntry,
};
use crate::format::manifest::{manifest_name, MANIFEST};
use crate::format::manifest::{InputRecord, LeftOutRecord, Manifest, RunRecord, ShardRecord};
use crate::process::batch::{self, Counts, Processing};
use crate::process::groups::RowGroupCutter;
use crate::process::split::{self, SplitPlan};
use crate::read::{Decode, FileMapping, InputError};
use crate::run::error::RunError;
use crate::run::metrics::{MetricsFile, Snapshot};
use crate::run::output_root::{abandon, remove_checkpoint, save_checkpoint, Prepare, Start};
use crate::run::preflight::{projected_output, Preflight};
use crate::run::processing::processing;
use crate::run::progress::{Event, Events, Progress, ProgressReporter};
use crate::run::root_lock::RootLock;
use crate::run::stream::{Sink, Stream};
use crate::run::units::{check_list_offsets, part_units, read_units, UnitPlan};
use crate::run::workers::{Pool, Shared, WorkerState};
use crate::write::planner::ShardPlanner;

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
    /// Run even when the preflight finds a problem ([`crate::run::RunError::Preflight`]).
    pub skip_preflight: bool,
    /// Refuse an input with a per-spectrum dataset no column can carry
    /// ([`FileMapping::left_out`]) instead of leaving the dataset out with a notice.
    pub strict_columns: bool,
    /// The command that continues this run if it is interrupted, recorded in its checkpoint
    /// for `msms status` (the CLI gives its own command line with `--resume`).
    pub resume_command: Option<String>,
    /// Write the run's counters here in the Prometheus text format while it runs
    /// (`crate::run::metrics`).
    pub metrics_file: Option<PathBuf>,
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

/// Run `build-shards`: inputs → validated, normalised Parquet shards + manifest. Notices,
/// progress lines and warnings are dropped; [`build_shards_with`] hands them to a callback.
pub fn build_shards(opts: &BuildOptions, mappings: &[FileMapping]) -> Result<Summary, RunError> {
    build_shards_with(opts, mappings, &|_| {})
}

/// [`build_shards`], handing each [`Event`] to `report` as it happens (from the calling
/// thread or the reader thread).
pub fn build_shards_with(
    opts: &BuildOptions,
    mappings: &[FileMapping],
    report: &(dyn Fn(Event) + Sync),
) -> Result<Summary, RunError> {
    let started = Instant::now();
    if let Some(stop) = opts.stop {
        // A thread stalled by the test hook sees a SIGINT/SIGTERM too.
        crate::write::stall::watch_stop(stop);
    }
    let events = Events::new(report, opts.progress);
    let chosen = chosen_columns(&opts.settings, mappings)?;
    let mappings = &chosen[..];
    left_out_columns(opts, mappings, events)?;
    let mut opened = Opened::new(opts, mappings)?;
    preflight(opts, &opened, mappings, events)?;
    let metrics = opened.metrics(opts)?;
    let created_root = opts.output_root.as_ref().is_some_and(|r| !r.exists());
    let fingerprint = Fingerprint::of(&opts.settings, mappings);
    // Held for the whole run (released before a refused run's root is removed: the lock
    // file lives in it).
    let (root, start, lock) = prepare(opts, &fingerprint, events)?;
    let done = match start {
        Start::Fresh => Vec::new(),
        Start::Resume(done) => done,
        Start::Finished(m) => {
            return finished_summary(*m, root.as_deref().expect("not a dry run"), started)
        }
    };
    let mut sink = opened.sink(opts, root.as_deref(), fingerprint, done, metrics)?;
    let (result, ran) = opened.run(opts, mappings, &mut sink, events)?;
    let finish = Finish {
        opts,
        mappings,
        opened: &opened,
        root: root.as_deref(),
        started,
        events,
    };
    match result {
        Ok(entries) => finish.written(entries, sink, ran),
        Err(e) => {
            let e = finish.failed(e, sink);
            // A refused run leaves nothing behind, nor the root it created.
            if let (true, Some(r)) = (e.is_refusal(), root.as_deref()) {
                abandon(r, lock, created_root);
            }
            Err(e)
        }
    }
}

/// The inputs with the pass-through columns `--columns` / `--exclude-columns` choose. A
/// name no input has (as a pass-through column or a dataset left out) is an error naming
/// those they have; a name only some inputs have is fine (excluding a column one input has
/// is how inputs that differ by it convert as one run).
pub(crate) fn chosen_columns(
    s: &Settings,
    mappings: &[FileMapping],
) -> Result<Vec<FileMapping>, crate::read::InputError> {
    let keep = s.columns.as_ref().map(|c| c.0.as_slice());
    let drop = s
        .exclude_columns
        .as_ref()
        .map_or(&[][..], |c| c.0.as_slice());
    for (flag, list) in [
        ("--columns", keep.unwrap_or(&[])),
        ("--exclude-columns", drop),
    ] {
        let known = |n: &String| {
            mappings
                .iter()
                .any(|m| m.column_names().contains(&n.as_str()))
        };
        if let (Some(missing), Some(first)) = (list.iter().find(|n| !known(n)), mappings.first()) {
            let mut have: Vec<&str> = mappings
                .iter()
                .flat_map(|m| m.passthrough.iter().map(|p| p.dataset.as_str()))
                .collect();
            have.sort_unstable();
            have.dedup();
            return Err(crate::read::InputError::new(
                &first.path,
                None,
                format!(
                    "{flag}: `{missing}` is no pass-through column of any input (they have: {})",
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                ),
            ));
        }
    }
    let chosen: Vec<FileMapping> = mappings
        .iter()
        .map(|m| m.select_columns(keep, drop))
        .collect();
    for m in &chosen {
        m.check_reads(true)?;
    }
    Ok(chosen)
}

/// Per-spectrum datasets no column can carry: each a notice (they are recorded in the
/// manifest's inputs), or with `--strict-columns` the first refuses the input.
fn left_out_columns(
    opts: &BuildOptions,
    mappings: &[FileMapping],
    events: Events,
) -> Result<(), RunError> {
    if opts.strict_columns {
        refuse_left_out(mappings)?;
    }
    for notice in left_out_notices(mappings) {
        events.notice(notice);
    }
    Ok(())
}

/// `--strict-columns`: refuse the first input with a dataset left out, naming it.
pub(crate) fn refuse_left_out(mappings: &[FileMapping]) -> Result<(), crate::read::InputError> {
    match mappings
        .iter()
        .find_map(|m| m.left_out.first().map(|d| (m, d)))
    {
        Some((m, (dataset, why))) => Err(crate::read::InputError::new(
            &m.path,
            Some(dataset),
            format!("{why} (--strict-columns: no dataset may be left out)"),
        )),
        None => Ok(()),
    }
}

/// One notice per dataset left out of `mappings`.
pub(crate) fn left_out_notices(mappings: &[FileMapping]) -> impl Iterator<Item = String> + '_ {
    mappings.iter().flat_map(|m| {
        m.left_out.iter().map(move |(dataset, why)| {
            format!(
                "notice: {}: dataset `{dataset}` left out: {why} (--strict-columns refuses the \
                 file instead)",
                m.path.display()
            )
        })
    })
}

/// The output root to write to (none in a dry run), how the run starts there, and the
/// root's lock, taken first.
fn prepare(
    opts: &BuildOptions,
    fingerprint: &Fingerprint,
    events: Events,
) -> Result<(Option<PathBuf>, Start, Option<RootLock>), RunError> {
    match (&opts.output_root, opts.dry_run) {
        (_, true) => Ok((None, Start::Fresh, None)),
        (Some(r), false) => {
            let lock = lock_root(r, events)?;
            let start = Prepare {
                root: r,
                overwrite: opts.overwrite,
                resume: opts.resume,
                fingerprint,
                events,
            }
            .run()?;
            Ok((Some(r.clone()), start, lock))
        }
        (None, false) => Err(RunError::Settings(
            "--output-root is required (or use --dry-run)".into(),
        )),
    }
}

/// The preflight ([`Preflight`]) before anything is written: its warnings are printed (also
/// under `-q`), its problems refuse the run unless `--skip-preflight` (then they are
/// printed as warnings).
fn preflight(
    opts: &BuildOptions,
    opened: &Opened,
    mappings: &[FileMapping],
    events: Events,
) -> Result<(), RunError> {
    let found = Preflight {
        root: opts.output_root.as_deref().filter(|_| !opts.dry_run),
        profile: &opts.settings.profile,
        mode: opts.settings.mode.as_str(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        projected: projected_output(mappings, &opened.units, &opened.processing),
    }
    .check();
    for w in found.warnings {
        events.warning(w);
    }
    if found.problems.is_empty() {
        return Ok(());
    }
    if opts.skip_preflight {
        for p in found.problems {
            events.warning(format!("warning (--skip-preflight): {p}"));
        }
        return Ok(());
    }
    Err(RunError::Preflight(found.problems))
}

/// Lock `root` for this run ([`RootLock`]); where its file system has no locks, say so and
/// go on without one.
fn lock_root(root: &Path, events: Events) -> Result<Option<RootLock>, RunError> {
    let (lock, warning) = RootLock::acquire_where_supported(root, "build-shards")?;
    if let Some(w) = warning {
        events.warning(w);
    }
    Ok(lock)
}

/// The open stage: what the settings and inputs give, made before the output root is
/// touched (a failure here leaves nothing behind).
struct Opened {
    processing: Processing,
    split: SplitPlan,
    schema: SchemaRef,
    units: Vec<UnitPlan>,
    props: WriterPropertiesPtr,
    workers: usize,
    states: Vec<parking_lot::Mutex<WorkerState>>,
}

/// Where the run stage left off: the decode notes and the threads' placement.
struct Ran {
    decode_notes: Vec<String>,
    placement: String,
}

impl Opened {
    fn new(opts: &BuildOptions, mappings: &[FileMapping]) -> Result<Opened, RunError> {
        let s = &opts.settings;
        let processing = processing(s)?;
        let split = SplitPlan::new(
            s,
            mappings.iter().any(|m| m.lsh.is_some()),
            mappings.iter().any(|m| m.name.is_some()),
        )
        .map_err(|e| RunError::Settings(e.to_string()))?;
        for m in mappings {
            m.check_filters(opts.decode)?;
        }
        let schema = batch::output_schema(mappings, processing.binning.as_ref())?;
        let mut units = read_units(s, mappings, &processing);
        if let Some(range) = &opts.units {
            units = part_units(&units, range)?;
        }
        check_list_offsets(&units, mappings)?;
        let props =
            crate::write::writer_properties(&schema, &s.config_hash(), s.profile.compression);
        let workers = s.profile.num_workers.max(1);
        let states = WorkerState::for_workers(workers, &schema, &props)?;
        Ok(Opened {
            processing,
            split,
            schema,
            units,
            props,
            workers,
            states,
        })
    }

    /// The plan stage: each split resumes after its own last finalised shard (of `done`);
    /// reading starts at the earliest of those positions. A shard planner per split, the
    /// counts so far and the first checkpoint.
    fn sink<'r>(
        &self,
        opts: &BuildOptions,
        root: Option<&'r Path>,
        fingerprint: Fingerprint,
        done: Vec<ShardEntry>,
        metrics: Option<(MetricsFile, u64)>,
    ) -> Result<Sink<'r>, RunError> {
        let s = &opts.settings;
        let names = &self.split.names;
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
        let position = start_position(&positions);
        if positions.iter().any(|p| p.unit > self.units.len() as u64) {
            return Err(bad_checkpoint(
                root,
                format!(
                    "it resumes at read unit {} of {}",
                    position.unit,
                    self.units.len()
                ),
            ));
        }
        let counts = position
            .counts
            .to_counts()
            .map_err(|e| bad_checkpoint(root, e.to_string()))?;
        let mut cp = Checkpoint::new(fingerprint);
        cp.resume_command = opts.resume_command.clone();
        cp.shards = done;
        cp.read_so_far = counts.read;
        if let Some(r) = root {
            save_checkpoint(r, &cp, true)?;
        }
        let writers = s.profile.writers.max(1);
        let mut planners = Vec::with_capacity(names.len());
        for (name, done) in names.iter().zip(done_by_split) {
            planners.push(ShardPlanner::new(
                root,
                name,
                &self.schema,
                &self.props,
                s.profile.shard_size.0,
                writers,
                done,
            )?);
        }
        let cutters = positions
            .iter()
            .map(|p| RowGroupCutter::new(s.profile.row_group_size, p.group, (p.unit, p.skip)))
            .collect();
        Ok(Sink {
            root,
            planners,
            positions,
            cutters,
            mark: counts.read,
            read_before: counts.read,
            counts,
            cp,
            interval: s.profile.checkpoint_interval.max(1) as u64,
            metrics,
        })
    }

    /// `--metrics-file` (not in a dry run), written once here, before the output root is
    /// touched, so that a path that cannot be written stops the run before it starts (later
    /// writes that fail are let go: a conversion is not lost for its metrics).
    fn metrics(&self, opts: &BuildOptions) -> Result<Option<(MetricsFile, u64)>, RunError> {
        let (Some(path), Some(root), false) = (&opts.metrics_file, &opts.output_root, opts.dry_run)
        else {
            return Ok(None);
        };
        let total: u64 = self.units.iter().map(|u| u.rows as u64).sum();
        let mut m = MetricsFile::new(path, root);
        m.write(
            &Snapshot {
                total,
                ..Snapshot::default()
            },
            true,
        )
        .map_err(|e| RunError::Settings(format!("--metrics-file: {e}")))?;
        Ok(Some((m, total)))
    }

    /// The first unit to read: the earliest of the splits' positions.
    fn first_unit(sink: &Sink) -> u64 {
        start_position(&sink.positions).unit
    }

    /// `--dedup exact`: the hashes of every spectrum written before the first unit to read.
    fn dedup_gate(&self, s: &Settings, sink: &Sink) -> Result<Option<split::DedupGate>, RunError> {
        if s.dedup != Dedup::Exact {
            return Ok(None);
        }
        let first = self.units.get(Self::first_unit(sink) as usize);
        let mut seen = split::Seen::default();
        if let (Some(r), Some(first)) = (sink.root, first) {
            let before = first.first_id;
            let paths: Vec<PathBuf> = (sink.cp.shards.iter())
                .filter(|e| e.record.first_spectrum_id < before)
                .map(|e| r.join(&e.record.path))
                .collect();
            seen = split::seen_in_shards(&paths, before)
                .map_err(|e| bad_checkpoint(sink.root, e.to_string()))?;
        }
        Ok(Some(split::DedupGate::new(
            first.map_or(0, |u| u.seq),
            seen,
        )))
    }

    /// The run stage: start the workers, stream every unit through them into `sink`.
    fn run(
        &mut self,
        opts: &BuildOptions,
        mappings: &[FileMapping],
        sink: &mut Sink,
        events: Events,
    ) -> Result<(Result<Vec<ShardEntry>, RunError>, Ran), RunError> {
        let s = &opts.settings;
        let dedup = self.dedup_gate(s, sink)?;
        let total: u64 = self.units.iter().map(|u| u.rows as u64).sum();
        let mut progress = ProgressReporter::new(opts.progress, total, events);
        progress.update(sink.counts.read, &sink.counts);
        let pool = Pool::start(s.mode, self.workers)?;
        let shared = Arc::new(Shared {
            schema: Arc::clone(&self.schema),
            processing: self.processing,
            states: std::mem::take(&mut self.states),
            abort: Arc::new(AtomicBool::new(false)),
            split: self.split.clone(),
            dedup,
        });
        let stream = Stream {
            mappings,
            units: &self.units,
            from: Self::first_unit(sink),
            decode: opts.decode,
            events,
            stop: opts.stop,
            workers: self.workers,
        };
        let (result, decode_notes) = stream.run(&pool.pool, &shared, sink, &mut progress);
        let placement = pool.shut_down();
        progress.finish();
        Ok((
            result,
            Ran {
                decode_notes,
                placement,
            },
        ))
    }
}

/// The position a run starts reading at: the earliest of the splits' `positions`.
fn start_position(positions: &[Position]) -> Position {
    positions
        .iter()
        .min_by_key(|p| p.unit)
        .cloned()
        .unwrap_or_default()
}

/// The checkpoint under `root` cannot be used: `message` says why.
fn bad_checkpoint(root: Option<&Path>, message: String) -> RunError {
    RunError::Checkpoint(CheckpointError::Invalid {
        path: root.map(checkpoint::path).unwrap_or_default(),
        message,
    })
}

/// The finish stage.
struct Finish<'a> {
    opts: &'a BuildOptions,
    mappings: &'a [FileMapping],
    opened: &'a Opened,
    root: Option<&'a Path>,
    started: Instant,
    events: Events<'a>,
}

impl Finish<'_> {
    /// After a failure: the shard in progress is dropped; shards already closed are
    /// finalised. A run refused for its input or settings leaves nothing behind (with the
    /// caller's [`abandon`]); otherwise
    /// what is finished is kept, and the checkpoint says so, for `--resume`.
    fn failed(&self, mut e: RunError, mut sink: Sink) -> RunError {
        sink.end_metrics();
        let Sink {
            planners,
            mut cp,
            counts,
            ..
        } = sink;
        let kept: Vec<ShardEntry> = planners
            .into_iter()
            .flat_map(ShardPlanner::shut_down)
            .collect();
        let Some(root) = self.root else { return e };
        if e.is_refusal() {
            // Shards finished before the problem surfaced are removed (there is no manifest
            // to describe them); the caller removes the rest ([`abandon`]).
            for s in &kept {
                let _ = std::fs::remove_file(root.join(&s.record.path));
            }
        } else {
            cp.shards = kept;
            cp.read_so_far = counts.read;
            cp.updated_at = checkpoint::now();
            if let Err(ce) = save_checkpoint(root, &cp, true) {
                self.events
                    .warning(format!("msms: warning: cannot update the checkpoint: {ce}"));
            }
            if let RunError::Interrupted { shards, .. } = &mut e {
                *shards = cp.shards.len();
            }
        }
        e
    }

    /// After success: write the manifest, remove the checkpoint; the summary.
    fn written(
        &self,
        entries: Vec<ShardEntry>,
        mut sink: Sink,
        ran: Ran,
    ) -> Result<Summary, RunError> {
        sink.end_metrics();
        let s = &self.opts.settings;
        let (counts, read_before) = (sink.counts, sink.read_before);
        let shards: Vec<ShardRecord> = entries.into_iter().map(|e| e.record).collect();
        let run = RunRecord::now(
            self.opened.workers,
            s.profile.writers.max(1),
            self.opts.decode.as_str(),
            &ran.placement,
        );
        let manifest = Manifest::new(
            s,
            &self.opened.schema,
            input_records(self.mappings),
            &counts,
            &shards,
            &self.opened.split.names,
            run,
        );
        let manifest_path = match self.root {
            Some(r) => Some(write_manifest(r, &manifest)?),
            None => None,
        };
        Ok(Summary {
            read_before,
            counts,
            shards,
            elapsed: self.started.elapsed(),
            manifest,
            manifest_path,
            decode_notes: ran.decode_notes,
            placement: ran.placement,
        })
    }
}

/// The manifest's inputs: each with the `spectrum_id` of its first spectrum.
fn input_records(mappings: &[FileMapping]) -> Vec<InputRecord> {
    mappings
        .iter()
        .scan(0u64, |first, m| {
            let rec = InputRecord {
                path: m.path.display().to_string(),
                bytes: m.file_bytes,
                spectra: m.rows,
                first_spectrum_id: *first,
                left_out: m
                    .left_out
                    .iter()
                    .map(|(dataset, reason)| LeftOutRecord {
                        dataset: dataset.clone(),
                        reason: reason.clone(),
                    })
                    .collect(),
            };
            *first += m.rows;
            Some(rec)
        })
        .collect()
}

/// Write `root/_manifest.json`; the run is complete, so the checkpoint has served its
/// purpose and is removed.
pub(super) fn write_manifest(root: &Path, manifest: &Manifest) -> Result<PathBuf, RunError> {
    let p = root.join(MANIFEST);
    crate::write::atomic::write_replacing(&p, manifest.to_json().as_bytes(), true, &|| {
        "manifest-rename".into()
    })?;
    crate::write::stall::stall_point(&|| "manifest-renamed".into());
    remove_checkpoint(root)?;
    Ok(p)
}

/// The summary of a run that had already finished (`--resume` with nothing left to do).
fn finished_summary(m: Manifest, root: &Path, started: Instant) -> Result<Summary, RunError> {
    // A finished format-1 root keeps its `manifest.json`.
    let name = manifest_name(m.format_version);
    let counts = checkpoint::SavedCounts {
        read: m.counts.read,
        accepted: m.counts.written,
        rejected: m.counts.rejected.clone(),
        invalid_utf8: m.counts.invalid_utf8.as_ref().map_or(0, |r| r.spectra),
        invalid_utf8_ids: m
            .counts
            .invalid_utf8
            .as_ref()
            .map_or_else(Vec::new, |r| r.first_spectrum_ids.clone()),
    }
    .to_counts()
    .map_err(|e| RunError::Output {
        path: root.to_path_buf(),
        message: format!("{name}: {e}"),
    })?;
    Ok(Summary {
        shards: m.shards.clone(),
        elapsed: started.elapsed(),
        manifest_path: Some(root.join(name)),
        placement: "nothing to do: the run had finished".into(),
        read_before: counts.read,
        counts,
        manifest: m,
        decode_notes: Vec::new(),
    })
}
