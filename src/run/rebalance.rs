//! `msms rebalance`: rewrite a finished output root (a single run, or parts joined by
//! `msms merge`) into even shards per split, from its shards alone (the HDF5 inputs are not
//! read).
//!
//! Each split's rows are read back from its shards in `spectrum_id` order, cut into row
//! groups of `row_group_size` rows (group `g` is the split's rows `g·R .. (g+1)·R`), encoded
//! and placed by the same [`ShardPlanner`] as `build-shards`: no shard exceeds the shard
//! size, and every shard of a split but its last holds at least half of it. The rows, their
//! order and their values are the source's; only the shard and row-group boundaries and the
//! compression change. The new manifest records the settings with the new layout (and their
//! config hash, as `build-shards` would compute it), the source's inputs, counts and schema,
//! and `rebalanced_from`: the source's dataset digest and config hash.
//!
//! Crash-safe as `build-shards`: the root is locked, shards are written under temporary
//! names and renamed into place, the checkpoint (`.msms/checkpoint.json`) records every
//! finalised shard with the [`Position`] after it (`group`, `pieces` as in a build; `unit` 0
//! and `skip` the split's rows before `group`), and `--resume` continues from it. Boundaries
//! depend only on the rows and the settings, so an interrupted and resumed rebalance writes
//! the same bytes as one that was not interrupted.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection, RowSelector};
use rayon::prelude::*;

use crate::config::{ByteSize, Compression, RecordedSettings};
use crate::format::checkpoint::{self, Checkpoint, Fingerprint, InputPrint, Position, ShardEntry};
use crate::format::manifest::{
    dataset_digest, find_manifest, Manifest, RebalancedFrom, RunRecord, ShardRecord, SplitRecord,
    FORMAT_VERSION,
};
use crate::process::batch::Counts;
use crate::process::groups::{GroupStart, Tiles};
use crate::run::build::write_manifest;
use crate::run::error::RunError;
use crate::run::output_root::{abandon, save_checkpoint, Prepare, Start};
use crate::run::progress::{Event, Events, Progress, ProgressReporter};
use crate::run::root_lock::RootLock;
use crate::write::encode::Encoder;
use crate::write::planner::{EncodedGroup, ShardPlanner};

/// Rows read from a source shard at a time.
const READ_BATCH: usize = 8192;

/// What `msms rebalance` is asked to do.
pub struct RebalanceOptions {
    /// The finished root to read.
    pub source: PathBuf,
    /// Where the rebalanced root is written.
    pub output_root: PathBuf,
    /// Largest shard; the source's when `None`.
    pub shard_size: Option<ByteSize>,
    /// Rows per row group; the source's when `None`.
    pub row_group_size: Option<usize>,
    /// Compression; the source's when `None`.
    pub compression: Option<Compression>,
    /// Replace an earlier run's output in the output root.
    pub overwrite: bool,
    /// Continue an interrupted rebalance from its checkpoint.
    pub resume: bool,
    /// Shard writer threads.
    pub writers: usize,
    /// Progress reporting.
    pub progress: Progress,
    /// Set by SIGINT/SIGTERM: stop at the next row group, keeping finished shards.
    pub stop: Option<&'static AtomicBool>,
    /// The command that continues an interrupted rebalance, kept in the checkpoint for
    /// `msms status`.
    pub resume_command: Option<String>,
}

/// What a rebalance wrote.
#[derive(Debug)]
pub struct Rebalanced {
    /// The new manifest.
    pub manifest: Manifest,
    /// Where it is.
    pub manifest_path: PathBuf,
    /// The source's manifest.
    pub source: Manifest,
    /// The rebalance had finished before: nothing was written.
    pub already_done: bool,
}

/// Rewrite `opts.source` into `opts.output_root` (see the module documentation). Notices and
/// progress go to `report`.
pub fn rebalance(
    opts: &RebalanceOptions,
    report: &(dyn Fn(Event) + Sync),
) -> Result<Rebalanced, RunError> {
    let events = Events::new(report, opts.progress);
    if let Some(flag) = opts.stop {
        crate::write::stall::watch_stop(flag);
    }
    if let Some(holder) = crate::run::lock_holder(&opts.source) {
        return Err(RunError::Source {
            path: opts.source.clone(),
            message: format!(
                "is being written ({holder}); rebalance it once that command has finished"
            ),
        });
    }
    let source = Source::open(&opts.source)?;
    let layout = source.layout(opts)?;
    let fingerprint = source.fingerprint(&layout);
    check_distinct(&opts.source, &opts.output_root)?;
    let root = opts.output_root.as_path();
    let created_root = !root.exists();
    let (lock, warning) = RootLock::acquire_where_supported(root, "rebalance")?;
    if let Some(w) = warning {
        events.warning(w);
    }
    if opts.resume {
        if let Some(m) = finished_here(root, &source.manifest, &layout) {
            events.notice(format!(
                "notice: {} already holds this rebalance, finished: nothing to do",
                root.display()
            ));
            return Ok(Rebalanced {
                manifest_path: find_manifest(root).unwrap_or_else(|| root.join("_manifest.json")),
                manifest: m,
                source: source.manifest,
                already_done: true,
            });
        }
    }
    let start = Prepare {
        root,
        overwrite: opts.overwrite,
        resume: opts.resume,
        fingerprint: &fingerprint,
        events,
    }
    .run()?;
    let done = match start {
        Start::Fresh => Vec::new(),
        Start::Resume(done) => done,
        Start::Finished(m) => {
            return Ok(Rebalanced {
                manifest_path: find_manifest(root).unwrap_or_else(|| root.join("_manifest.json")),
                manifest: *m,
                source: source.manifest,
                already_done: true,
            })
        }
    };
    let mut cp = Checkpoint::new(fingerprint);
    cp.shards = done.clone();
    cp.resume_command = opts.resume_command.clone();
    save_checkpoint(root, &cp, true)?;
    let mut run = Rewrite {
        source: &source,
        layout: &layout,
        root,
        writers: opts.writers.max(1),
        stop: opts.stop,
        cp,
        progress: ProgressReporter::new(opts.progress, source.manifest.counts.written, events),
        rows_done: 0,
    };
    let shards = match run.all_splits(&done) {
        Ok(shards) => shards,
        Err(e @ RunError::Source { .. }) if done.is_empty() => {
            // A damaged source shard: nothing this run wrote can stand, and there is nothing
            // to resume until the source is repaired; removed, as build-shards does on a
            // refusal (a resumed run keeps what it had).
            abandon(root, lock, created_root);
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    run.progress.finish();
    let manifest = source.rebalanced_manifest(&layout, &shards, opts);
    let manifest_path = write_manifest(root, &manifest)?;
    Ok(Rebalanced {
        manifest,
        manifest_path,
        source: source.manifest,
        already_done: false,
    })
}

/// The source root and the output root must be apart: neither is the other or inside it
/// (shards under the source would be read as part of its dataset, and the other way round).
fn check_distinct(source: &Path, output: &Path) -> Result<(), RunError> {
    let (Some(src), Some(out)) = (resolved(source), resolved(output)) else {
        return Ok(());
    };
    let why = if src == out {
        "is the source root"
    } else if out.starts_with(&src) {
        "is inside the source root (readers of the source would read its shards twice)"
    } else if src.starts_with(&out) {
        "holds the source root"
    } else {
        return Ok(());
    };
    Err(RunError::Output {
        path: output.to_path_buf(),
        message: format!(
            "{why}; rebalance into a directory apart from it (then replace the source with it, \
             if you wish)"
        ),
    })
}

/// `p` made absolute with symbolic links resolved, through its nearest existing ancestor
/// (the output root may not exist yet).
fn resolved(p: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(p).ok()?;
    let mut base = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = base.canonicalize() {
            return Some(rest.iter().rev().fold(c, |acc, part| acc.join(part)));
        }
        rest.push(base.file_name()?.to_os_string());
        base = base.parent()?;
    }
}

/// The finished rebalance of `source` with `layout` that `root` holds, if it does.
fn finished_here(root: &Path, source: &Manifest, layout: &Layout) -> Option<Manifest> {
    if checkpoint::path(root).exists() {
        return None;
    }
    let text = std::fs::read_to_string(find_manifest(root)?).ok()?;
    let m: Manifest = serde_json::from_str(&text).ok()?;
    let from = m.rebalanced_from.as_ref()?;
    (from.dataset_digest == source.dataset_digest && m.config_hash == layout.settings.config_hash())
        .then_some(m)
}

/// The new layout: settings, and the writer properties that follow from them.
struct Layout {
    settings: RecordedSettings,
    shard_size: ByteSize,
    row_group_size: usize,
    compression: Compression,
    schema: SchemaRef,
    props: parquet::file::properties::WriterPropertiesPtr,
}

/// The finished root being rebalanced.
struct Source {
    root: PathBuf,
    manifest: Manifest,
    manifest_path: PathBuf,
}

impl Source {
    fn open(root: &Path) -> Result<Source, RunError> {
        let error = |message: String| RunError::Source {
            path: root.to_path_buf(),
            message,
        };
        let Some(manifest_path) = find_manifest(root) else {
            let why = if let Ok(Some(cp)) = Checkpoint::load(root) {
                let next = cp
                    .resume_command
                    .unwrap_or_else(|| "the command that started it, with --resume".into());
                format!(
                    "holds an interrupted run (a checkpoint, no manifest): finish it first: {next}"
                )
            } else if root.join("_plan.json").exists() || root.join("plan.json").exists() {
                "holds a planned run but no manifest: join its parts with `msms merge` first".into()
            } else {
                "has no _manifest.json: not an msms output root, or its run did not finish".into()
            };
            return Err(error(why));
        };
        let text = std::fs::read_to_string(&manifest_path)
            .map_err(|e| error(format!("{}: {e}", manifest_path.display())))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            error(format!(
                "{} is not a manifest: {e}",
                manifest_path.display()
            ))
        })?;
        Ok(Source {
            root: root.to_path_buf(),
            manifest,
            manifest_path,
        })
    }

    fn error(&self, message: String) -> RunError {
        RunError::Source {
            path: self.root.clone(),
            message,
        }
    }

    /// The source's settings with the requested layout, and the schema of its shards.
    fn layout(&self, opts: &RebalanceOptions) -> Result<Layout, RunError> {
        let recorded = RecordedSettings::from_json(&self.manifest.settings).map_err(|e| {
            self.error(format!(
                "its manifest's settings are not understood by this msms ({e}); rebalance it \
                 with the msms that wrote it"
            ))
        })?;
        let (size, rows, codec) = recorded.layout();
        let shard_size = opts.shard_size.unwrap_or(size);
        let row_group_size = opts.row_group_size.unwrap_or(rows);
        let compression = opts.compression.unwrap_or(codec);
        if row_group_size == 0 {
            return Err(RunError::Settings(
                "--row-group-size: must be at least 1".into(),
            ));
        }
        let settings = recorded.with_layout(shard_size, row_group_size, compression);
        let schema = self.schema()?;
        let props = crate::write::writer_properties(&schema, &settings.config_hash(), compression);
        Ok(Layout {
            settings,
            shard_size,
            row_group_size,
            compression,
            schema,
            props,
        })
    }

    /// The Arrow schema of the source's shards (from the first one's footer, not hashed
    /// here: it is hashed before any of its rows is read, [`Source::open_shard`]), without
    /// the file's key-value metadata.
    fn schema(&self) -> Result<SchemaRef, RunError> {
        let Some(first) = self.manifest.shards.first() else {
            return Ok(Arc::new(Schema::empty()));
        };
        // A footer that cannot be read: say so as any damaged shard is refused.
        let builder = self
            .open_reader(first)
            .or_else(|e| self.check_hash(first).and(Err(e)))?;
        Ok(Arc::new(Schema::new(builder.schema().fields().clone())))
    }

    /// Shard `rec`, hashed first (its rows must be the rows the source's digest names; it
    /// is then read from the page cache), opened for reading.
    fn open_shard(
        &self,
        rec: &ShardRecord,
    ) -> Result<ParquetRecordBatchReaderBuilder<File>, RunError> {
        self.check_hash(rec)?;
        self.open_reader(rec)
    }

    /// Refuse shard `rec` unless its bytes are the ones the manifest lists.
    fn check_hash(&self, rec: &ShardRecord) -> Result<(), RunError> {
        let path = self.root.join(&rec.path);
        let (sha, bytes) = crate::write::hashing::hash_file(&path, &mut |_| {})
            .map_err(|e| self.error(format!("shard {}: {e}", rec.path)))?;
        if sha != rec.sha256 || bytes != rec.bytes {
            return Err(self.error(format!(
                "shard {} is not the one its manifest lists ({bytes} bytes, SHA-256 {}…; the \
                 manifest says {} bytes, {}…): run `msms verify {}`",
                rec.path,
                short(&sha),
                rec.bytes,
                short(&rec.sha256),
                self.root.display()
            )));
        }
        Ok(())
    }

    /// Shard `rec` opened for reading, its row count checked against the manifest.
    fn open_reader(
        &self,
        rec: &ShardRecord,
    ) -> Result<ParquetRecordBatchReaderBuilder<File>, RunError> {
        let path = self.root.join(&rec.path);
        let file = File::open(&path).map_err(|e| self.error(format!("shard {}: {e}", rec.path)))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| self.error(format!("shard {}: {e}", rec.path)))?;
        let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        if rows != rec.rows {
            return Err(self.error(format!(
                "shard {} has {rows} rows, its manifest {}: run `msms verify {}`",
                rec.path,
                rec.rows,
                self.root.display()
            )));
        }
        Ok(builder)
    }

    /// The source's split names: its manifest's `splits`, in order, then any other split
    /// its shards name (a manifest written without `splits`).
    fn split_names(&self) -> Vec<String> {
        let m = &self.manifest;
        let mut names: Vec<String> = m.splits.keys().cloned().collect();
        for s in &m.shards {
            if !names.contains(&s.split) {
                names.push(s.split.clone());
            }
        }
        names
    }

    /// The source's shards of `split`, in `spectrum_id` order; their id ranges must not
    /// overlap.
    fn shards_of(&self, split: &str) -> Result<Vec<&ShardRecord>, RunError> {
        let mut shards: Vec<&ShardRecord> = self
            .manifest
            .shards
            .iter()
            .filter(|s| s.split == split)
            .collect();
        shards.sort_by_key(|s| s.first_spectrum_id);
        for w in shards.windows(2) {
            if w[1].first_spectrum_id <= w[0].last_spectrum_id {
                return Err(self.error(format!(
                    "shards {} and {} of split {split} overlap in spectrum_id ({}..={} and \
                     {}..={}): not a root msms wrote",
                    w[0].path,
                    w[1].path,
                    w[0].first_spectrum_id,
                    w[0].last_spectrum_id,
                    w[1].first_spectrum_id,
                    w[1].last_spectrum_id
                )));
            }
        }
        Ok(shards)
    }

    /// The checkpoint's fingerprint: the new settings, and the source's manifest as the input.
    fn fingerprint(&self, layout: &Layout) -> Fingerprint {
        let meta = std::fs::metadata(&self.manifest_path).ok();
        Fingerprint {
            tool_version: env!("CARGO_PKG_VERSION").into(),
            format_version: FORMAT_VERSION,
            config_hash: layout.settings.config_hash(),
            settings: layout.settings.to_json(),
            inputs: vec![InputPrint {
                path: self.manifest_path.display().to_string(),
                bytes: meta.as_ref().map_or(0, |m| m.len()),
                modified_ns: meta
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos()),
                spectra: self.manifest.counts.written,
            }],
        }
    }

    /// The manifest of the rebalanced root: the source's, with the new settings, shards and
    /// `rebalanced_from`.
    fn rebalanced_manifest(
        &self,
        layout: &Layout,
        shards: &[ShardRecord],
        opts: &RebalanceOptions,
    ) -> Manifest {
        let m = &self.manifest;
        let mut profile = m.profile.clone();
        if let Some(p) = profile.as_object_mut() {
            p.insert("shard_size".into(), layout.shard_size.to_string().into());
            p.insert("row_group_size".into(), layout.row_group_size.into());
            p.insert("compression".into(), layout.compression.to_string().into());
        }
        let names = self.split_names();
        let mut run = RunRecord::now(0, opts.writers.max(1), "", "");
        run.threads = format!("rebalanced from {} (msms rebalance)", self.root.display());
        Manifest {
            format: "msms-shards".into(),
            format_version: FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            config_hash: layout.settings.config_hash(),
            settings: layout.settings.to_json(),
            mode: m.mode.clone(),
            profile,
            schema: m.schema.clone(),
            inputs: m.inputs.clone(),
            counts: m.counts.clone(),
            splits: SplitRecord::tally(&names, shards),
            shards: shards.to_vec(),
            dataset_digest: dataset_digest(shards),
            rebalanced_from: Some(RebalancedFrom {
                dataset_digest: m.dataset_digest.clone(),
                config_hash: m.config_hash.clone(),
            }),
            run,
        }
    }
}

/// The first 12 hex digits of a digest, for messages.
fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// The rewrite in progress.
struct Rewrite<'a> {
    source: &'a Source,
    layout: &'a Layout,
    root: &'a Path,
    writers: usize,
    stop: Option<&'static AtomicBool>,
    cp: Checkpoint,
    progress: ProgressReporter<'a>,
    rows_done: u64,
}

impl Rewrite<'_> {
    /// Every split in the source manifest's order, each after its shards in `done`; all
    /// finalised shards, split by split.
    fn all_splits(&mut self, done: &[ShardEntry]) -> Result<Vec<ShardRecord>, RunError> {
        let names = self.source.split_names();
        let mut finished: Vec<ShardEntry> = Vec::new();
        for name in &names {
            let kept: Vec<ShardEntry> = done
                .iter()
                .filter(|e| &e.record.split == name)
                .cloned()
                .collect();
            let entries = self.split(name, kept, &finished)?;
            finished.extend(entries);
        }
        Ok(finished.into_iter().map(|e| e.record).collect())
    }

    /// Rewrite one split, after its `kept` shards; `before` are the earlier splits' shards
    /// (for the checkpoint).
    fn split(
        &mut self,
        name: &str,
        kept: Vec<ShardEntry>,
        before: &[ShardEntry],
    ) -> Result<Vec<ShardEntry>, RunError> {
        let r = self.layout.row_group_size;
        let start = kept.last().map(|e| e.resume.clone()).unwrap_or_default();
        // `skip` is the split's rows before `group` (all of them after its last shard).
        let first_row = start.skip;
        let shards = self.source.shards_of(name)?;
        let total: u64 = shards.iter().map(|s| s.rows).sum();
        if first_row != (start.group * r as u64).min(total) {
            return Err(RunError::Sink(crate::write::error::SinkError::Resume(
                format!(
                "the checkpoint resumes split {name} at row {first_row} (row group {}), which is \
                 not where a row group of {r} rows starts in its {total} rows",
                start.group
            ),
            )));
        }
        self.rows_done += first_row;
        let mut planner = ShardPlanner::new(
            Some(self.root),
            name,
            &self.layout.schema,
            &self.layout.props,
            self.layout.shard_size.bytes(),
            self.writers,
            kept,
        )?;
        let mut groups = Groups {
            source: self.source,
            schema: &self.layout.schema,
            shards: &shards,
            next_shard: 0,
            skip: first_row,
            reader: None,
            pending: Tiles::default(),
            rows_per_group: r,
        };
        let mut seq = start.group;
        let mut pieces = start.pieces;
        let window = rayon::current_num_threads().max(1) * 2;
        loop {
            if self.stop.is_some_and(|f| f.load(Ordering::Relaxed)) {
                return Err(self.interrupted(planner, before));
            }
            let batch = groups.next_window(window)?;
            if batch.is_empty() {
                break;
            }
            let encoded = encode_all(batch, &self.layout.schema, &self.layout.props)?;
            for enc in encoded {
                let rows = enc.rows.num_rows() as u64;
                let group = EncodedGroup {
                    seq,
                    start: GroupStart {
                        unit: 0,
                        skip: seq * r as u64,
                        counts: Counts::default(),
                    },
                    enc,
                };
                planner.push_group(group, &std::mem::take(&mut pieces))?;
                seq += 1;
                self.rows_done += rows;
            }
            self.progress.update(self.rows_done, &Counts::default());
            self.save(&planner, before)?;
        }
        let end = Position {
            group: seq,
            pieces: Vec::new(),
            unit: 0,
            skip: total,
            counts: Default::default(),
        };
        let entries = planner.finish(end)?;
        self.cp.shards = before.iter().chain(&entries).cloned().collect();
        save_checkpoint(self.root, &self.cp, true)?;
        Ok(entries)
    }

    /// Record the finalised shards in the checkpoint, when there are new ones.
    fn save(&mut self, planner: &ShardPlanner, before: &[ShardEntry]) -> Result<(), RunError> {
        let now = before.len() + planner.finalised().len();
        if now != self.cp.shards.len() {
            self.cp.shards = before.iter().chain(planner.finalised()).cloned().collect();
            self.cp.read_so_far = self.rows_done;
            self.cp.updated_at = checkpoint::now();
            save_checkpoint(self.root, &self.cp, true)?;
        }
        Ok(())
    }

    /// Stop: the shards already closed are finalised and recorded, the open one dropped.
    fn interrupted(&mut self, planner: ShardPlanner, before: &[ShardEntry]) -> RunError {
        let finalised = planner.shut_down();
        self.cp.shards = before.iter().chain(&finalised).cloned().collect();
        self.cp.read_so_far = self.rows_done;
        if let Err(e) = save_checkpoint(self.root, &self.cp, true) {
            return e.into();
        }
        RunError::Interrupted {
            shards: self.cp.shards.len(),
            checkpoint: Some(checkpoint::path(self.root)),
        }
    }
}

/// Encode row groups in parallel, keeping their order.
fn encode_all(
    groups: Vec<Tiles>,
    schema: &SchemaRef,
    props: &parquet::file::properties::WriterPropertiesPtr,
) -> Result<Vec<crate::write::encode::EncodedBatch>, RunError> {
    groups
        .into_par_iter()
        .map_init(
            || Encoder::new(schema, props),
            |encoder, tiles| match encoder {
                Ok(e) => e.encode(tiles).map_err(RunError::from),
                Err(e) => Err(RunError::Internal(format!("creating an encoder: {e}"))),
            },
        )
        .collect()
}

/// A split's rows, read from its source shards in order and cut into row groups.
struct Groups<'a> {
    source: &'a Source,
    schema: &'a SchemaRef,
    shards: &'a [&'a ShardRecord],
    next_shard: usize,
    /// Rows still to skip (those before the resume point).
    skip: u64,
    reader: Option<(
        String,
        parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    )>,
    pending: Tiles,
    rows_per_group: usize,
}

impl Groups<'_> {
    /// Up to `n` row groups (all but the split's last of `rows_per_group` rows); none at the
    /// end.
    fn next_window(&mut self, n: usize) -> Result<Vec<Tiles>, RunError> {
        let r = self.rows_per_group;
        let mut out = Vec::new();
        while out.len() < n {
            while self.pending.num_rows() < r {
                match self.next_batch()? {
                    Some(b) => self.pending.push(b),
                    None => break,
                }
            }
            let rows = self.pending.num_rows();
            if rows == 0 {
                break;
            }
            let take = rows.min(r);
            out.push(self.pending.slice(0, take));
            self.pending = self.pending.slice(take, rows - take);
        }
        Ok(out)
    }

    /// The next batch of rows, opening the next shard when one is exhausted.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>, RunError> {
        loop {
            if let Some((path, reader)) = &mut self.reader {
                match reader.next() {
                    Some(Ok(b)) => {
                        let b = RecordBatch::try_new(Arc::clone(self.schema), b.columns().to_vec())
                            .map_err(|e| {
                                self.source.error(format!(
                                    "shard {path}: its columns differ from the first shard's: {e}"
                                ))
                            })?;
                        return Ok(Some(b));
                    }
                    Some(Err(e)) => return Err(self.source.error(format!("shard {path}: {e}"))),
                    None => self.reader = None,
                }
            }
            let Some(rec) = self.shards.get(self.next_shard) else {
                return Ok(None);
            };
            self.next_shard += 1;
            if self.skip >= rec.rows {
                self.skip -= rec.rows;
                continue;
            }
            let mut builder = self.source.open_shard(rec)?.with_batch_size(READ_BATCH);
            if self.skip > 0 {
                let skip = self.skip as usize;
                builder = builder.with_row_selection(RowSelection::from(vec![
                    RowSelector::skip(skip),
                    RowSelector::select(rec.rows as usize - skip),
                ]));
                self.skip = 0;
            }
            let reader = builder
                .build()
                .map_err(|e| self.source.error(format!("shard {}: {e}", rec.path)))?;
            self.reader = Some((rec.path.clone(), reader));
        }
    }
}
