//! The run stage: one reader thread (libhdf5 is single-threaded) walks the units in order,
//! reads what only libhdf5 can read and hands each unit to the worker pool; the calling
//! thread puts the finished units back in order, cuts each split's rows into row groups,
//! has the pool encode them ([`Encoding`]) and hands them, in order, to the shard planners,
//! keeping the checkpoint. A fixed number of tokens bounds the units in flight; a unit's
//! token comes back once its rows are cut and no cut group waits for a worker.

use crate::run::metrics::{MetricsFile, Snapshot};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use crossbeam_channel::{bounded, never, select, unbounded, Receiver, Sender};

use crate::format::checkpoint::{self, Checkpoint, Position, ShardEntry};
use crate::process::batch::Counts;
use crate::process::groups::{RowGroup, RowGroupCutter};
use crate::read::{Decode, FileMapping, FileReader};
use crate::run::encoding::{Encoding, DRY_RUN_SAMPLE};
use crate::run::error::RunError;
use crate::run::output_root::save_checkpoint;
use crate::run::progress::{Events, ProgressReporter};
use crate::run::units::{reader_rows, UnitPlan};
use crate::run::workers::{run_unit, GroupDone, Shared, UnitDone};
use crate::write::planner::{EncodedGroup, ShardPlanner};

/// The sink's state: shard planners, counts so far and the checkpoint.
pub(crate) struct Sink<'a> {
    /// The output root (none in a dry run).
    pub(crate) root: Option<&'a Path>,
    /// One per split.
    pub(crate) planners: Vec<ShardPlanner>,
    /// Per split, where it resumes.
    pub(crate) positions: Vec<Position>,
    /// Per split, its rows cut into row groups (from its position on).
    pub(crate) cutters: Vec<RowGroupCutter>,
    pub(crate) counts: Counts,
    /// Spectra an interrupted run had converted before this `--resume` continued it.
    pub(crate) read_before: u64,
    pub(crate) cp: Checkpoint,
    /// Spectra between two progress checkpoints.
    pub(crate) interval: u64,
    /// Spectra read at the last checkpoint.
    pub(crate) mark: u64,
    /// `--metrics-file`, and the spectra the run reads in all.
    pub(crate) metrics: Option<(MetricsFile, u64)>,
}

impl Sink<'_> {
    /// A finalised shard is recorded at once (durably); progress every `interval` spectra
    /// (not fsynced: it carries no resume state).
    fn record(&mut self) -> Result<(), RunError> {
        let Some(r) = self.root else { return Ok(()) };
        let finalised: usize = self.planners.iter().map(|p| p.finalised().len()).sum();
        let new_shards = finalised > self.cp.shards.len();
        if new_shards || self.counts.read >= self.mark + self.interval {
            self.cp.shards = self
                .planners
                .iter()
                .flat_map(|p| p.finalised().iter().cloned())
                .collect();
            self.cp.read_so_far = self.counts.read;
            self.cp.updated_at = checkpoint::now();
            save_checkpoint(r, &self.cp, new_shards)?;
            self.mark = self.counts.read;
        }
        if let Some((m, total)) = self.metrics.as_mut().filter(|(m, _)| m.due()) {
            // Only the first write may fail the run (checked before it starts).
            let _ = m.write(&snapshot(&self.counts, &self.planners, *total), true);
        }
        Ok(())
    }

    /// The last metrics (`msms_running` 0), whatever the outcome.
    pub(crate) fn end_metrics(&mut self) {
        if let Some((m, total)) = &mut self.metrics {
            let _ = m.write(&snapshot(&self.counts, &self.planners, *total), false);
        }
    }

    /// Nothing arrived for a while: let the writers' results in, checkpoint.
    fn poll(&mut self) -> Result<(), RunError> {
        for p in &mut self.planners {
            p.poll(false)?;
        }
        self.record()
    }

    /// Unit `seq` (the next in order): count it, cut each split's rows into row groups (a
    /// split resumed further on skips rows its shards hold already); the groups completed.
    fn absorb(&mut self, seq: u64, parts: Vec<RecordBatch>, c: &Counts) -> Vec<(usize, RowGroup)> {
        let before = self.counts.clone();
        self.counts.add(c);
        let mut groups = Vec::new();
        for (k, (part, cutter)) in parts.into_iter().zip(&mut self.cutters).enumerate() {
            groups.extend(
                cutter
                    .absorb(seq, &before, part)
                    .into_iter()
                    .map(|g| (k, g)),
            );
        }
        groups
    }

    /// The input is exhausted: each split's last, shorter row group.
    fn flush(&mut self) -> Vec<(usize, RowGroup)> {
        let cutters = self.cutters.iter_mut().enumerate();
        cutters
            .filter_map(|(k, c)| c.flush().map(|g| (k, g)))
            .collect()
    }

    /// Row group `g` of split `split` (the next in its order) to its planner.
    fn place(&mut self, split: usize, g: EncodedGroup) -> Result<(), RunError> {
        let at = &self.positions[split];
        let pieces: &[[u64; 2]] = if g.seq == at.group { &at.pieces } else { &[] };
        self.planners[split].push_group(g, pieces)?;
        Ok(())
    }

    /// Every row group is placed: close the last shards, checkpoint; every finalised shard.
    fn finish(&mut self, n_units: u64) -> Result<Vec<ShardEntry>, RunError> {
        let mut all = Vec::new();
        for (p, c) in self.planners.iter_mut().zip(&self.cutters) {
            let end = Position {
                group: c.next_seq(),
                pieces: Vec::new(),
                unit: n_units,
                skip: 0,
                counts: (&self.counts).into(),
            };
            all.extend(p.finish(end)?);
        }
        self.record()?;
        Ok(all)
    }
}

/// The counters of the run for `--metrics-file`.
pub(crate) fn snapshot(counts: &Counts, planners: &[ShardPlanner], total: u64) -> Snapshot {
    let finalised = planners.iter().flat_map(|p| p.finalised());
    Snapshot {
        read: counts.read,
        total,
        written: counts.accepted,
        rejected: counts.rejected_total(),
        shards: planners.iter().map(|p| p.finalised().len() as u64).sum(),
        bytes: finalised.map(|e| e.record.bytes).sum(),
    }
}

/// SIGINT/SIGTERM: whether the run was asked to stop, and the error that says it stopped.
struct Stop<'a> {
    flag: Option<&'a AtomicBool>,
    checkpoint: Option<PathBuf>,
}

impl Stop<'_> {
    fn requested(&self) -> bool {
        self.flag.is_some_and(|f| f.load(Ordering::Relaxed))
    }

    fn interrupted(&self) -> RunError {
        RunError::Interrupted {
            shards: 0,
            checkpoint: self.checkpoint.clone(),
        }
    }
}

/// What the run stage reads, from where.
pub(crate) struct Stream<'a> {
    pub(crate) mappings: &'a [FileMapping],
    /// Every unit of the run.
    pub(crate) units: &'a [UnitPlan],
    /// The first unit to read.
    pub(crate) from: u64,
    pub(crate) decode: Decode,
    pub(crate) events: Events<'a>,
    /// Set to stop at the next clean point.
    pub(crate) stop: Option<&'a AtomicBool>,
    /// Worker threads.
    pub(crate) workers: usize,
}

/// How the reader hands units to the pool.
struct Feed<'a> {
    tokens: Receiver<()>,
    pool: &'a rayon::ThreadPool,
    shared: &'a Arc<Shared>,
    done: Sender<UnitDone>,
}

/// What the collecting thread takes back from the pool, and gives it.
struct Returns<'a> {
    units: Receiver<UnitDone>,
    groups: Receiver<GroupDone>,
    /// Where encoded row groups come back (the collector hands it to each encoding task).
    group_tx: Sender<GroupDone>,
    tokens: &'a Sender<()>,
    pool: &'a rayon::ThreadPool,
    shared: &'a Arc<Shared>,
}

impl Stream<'_> {
    /// Read every unit from `from` on through the pool into `sink`; the finalised shards, and
    /// the decode notes.
    pub(crate) fn run(
        &self,
        pool: &rayon::ThreadPool,
        shared: &Arc<Shared>,
        sink: &mut Sink,
        progress: &mut ProgressReporter,
    ) -> (Result<Vec<ShardEntry>, RunError>, Vec<String>) {
        let in_flight = 2 * self.workers + 2;
        let (token_tx, token_rx) = bounded::<()>(in_flight);
        for _ in 0..in_flight {
            token_tx.send(()).expect("capacity");
        }
        let (done_tx, done_rx) = unbounded::<UnitDone>();
        let (group_tx, group_rx) = unbounded::<GroupDone>();
        let stop = Stop {
            flag: self.stop,
            checkpoint: sink.root.map(checkpoint::path),
        };
        let mut decode_notes = Vec::new();
        let result = std::thread::scope(|scope| {
            let feed = Feed {
                tokens: token_rx,
                pool,
                shared,
                done: done_tx.clone(),
            };
            let notes = scope.spawn(move || self.reader(feed));
            drop(done_tx);
            let returns = Returns {
                units: done_rx.clone(),
                groups: group_rx,
                group_tx,
                tokens: &token_tx,
                pool,
                shared,
            };
            let outcome = self.collect(sink, &returns, progress, &stop);
            drop(returns);
            if outcome.is_err() {
                shared.abort.store(true, Ordering::Relaxed);
            }
            drop(token_tx);
            drop(done_rx);
            if let Ok(n) = notes.join() {
                decode_notes = n;
            }
            outcome
        });
        (result, decode_notes)
    }

    /// The reader thread: files in order, units in order; each unit goes to the pool. A
    /// failure (or a panic) stops the run and is reported to the sink. The decode notes.
    fn reader(&self, feed: Feed) -> Vec<String> {
        let mut notes = Vec::new();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.read_all(&feed, &mut notes)
        }))
        .unwrap_or_else(|_| {
            Err((
                u64::MAX,
                RunError::Internal("the reader thread panicked".into()),
            ))
        });
        if let Err((seq, e)) = outcome {
            feed.shared.abort.store(true, Ordering::Relaxed);
            let _ = feed.done.send((seq, Err(e)));
        }
        notes
    }

    /// Ok(()) when done or told to stop; Err((seq, error)) to report.
    fn read_all(&self, feed: &Feed, notes: &mut Vec<String>) -> Result<(), (u64, RunError)> {
        let mut open: Option<(usize, FileReader)> = None;
        for u in &self.units[self.from as usize..] {
            if feed.tokens.recv().is_err() || feed.shared.abort.load(Ordering::Relaxed) {
                return Ok(());
            }
            if open.as_ref().is_none_or(|(i, _)| *i != u.source) {
                drop(open.take());
                open = Some((u.source, self.open(u, notes)?));
            }
            let reader = &open.as_ref().expect("opened").1;
            let raw = reader
                .read(u.seq, u.source as u16, u.first_id, u.start, u.rows)
                .map_err(|e| (u.seq, e.into()))?;
            let tx = feed.done.clone();
            let shared = Arc::clone(feed.shared);
            feed.pool.spawn_fifo(move || run_unit(raw, &shared, &tx));
        }
        Ok(())
    }

    /// Open the file of unit `u`; note how each dataset is decoded (a fallback to libhdf5
    /// under `--decode native` is a notice too).
    fn open(&self, u: &UnitPlan, notes: &mut Vec<String>) -> Result<FileReader, (u64, RunError)> {
        let m = &self.mappings[u.source];
        let r = m
            .reader(reader_rows(u.source, self.units), self.decode)
            .map_err(|e| (u.seq, e.into()))?;
        for (line, fallback) in decode_lines(m, &r, self.decode) {
            if fallback {
                self.events.notice(format!("notice: {line}"));
            }
            notes.push(line);
        }
        Ok(r)
    }

    /// Sink, on this thread: put units back in order, cut row groups and have them encoded,
    /// place them in order, checkpoint.
    fn collect(
        &self,
        sink: &mut Sink,
        r: &Returns,
        progress: &mut ProgressReporter,
        stop: &Stop,
    ) -> Result<Vec<ShardEntry>, RunError> {
        let mut pending: BTreeMap<u64, (Vec<RecordBatch>, Counts)> = BTreeMap::new();
        let mut next = self.from;
        let n_units = self.units.len() as u64;
        let first = sink.cutters.iter().map(RowGroupCutter::next_seq).collect();
        let sample = sink.root.is_none().then_some(DRY_RUN_SAMPLE);
        let mut enc = Encoding::new(self.workers + 1, first, sample);
        // Tokens of units whose rows are cut, held back while cut groups wait for a worker.
        let mut owed = 0;
        let mut flushed = false;
        loop {
            enc.dispatch(r.pool, r.shared, &r.group_tx);
            if !enc.holding() {
                for _ in 0..std::mem::take(&mut owed) {
                    let _ = r.tokens.send(());
                }
            }
            while let Some((split, g)) = enc.next_ready() {
                sink.place(split, g)?;
                sink.record()?;
            }
            if next == n_units && !flushed {
                flushed = true;
                for (k, g) in sink.flush() {
                    enc.push(k, g);
                }
                continue;
            }
            if flushed && enc.idle() {
                break;
            }
            if stop.requested() {
                return Err(stop.interrupted());
            }
            let exhausted = never();
            let units = if next < n_units { &r.units } else { &exhausted };
            select! {
                recv(units) -> m => {
                    let Ok((seq, out)) = m else {
                        return Err(RunError::Internal("a pipeline thread stopped early".into()));
                    };
                    pending.insert(seq, out?);
                    while let Some((parts, c)) = pending.remove(&next) {
                        for (k, g) in sink.absorb(next, parts, &c) {
                            enc.push(k, g);
                        }
                        next += 1;
                        owed += 1;
                        progress.update(sink.counts.read, &sink.counts);
                    }
                    sink.record()?;
                }
                recv(r.groups) -> m => enc.done(m.expect("the collector holds a sender"))?,
                default(Duration::from_millis(100)) => sink.poll()?,
            }
        }
        sink.finish(n_units)
    }
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
