//! Shard planning: decide shard boundaries from the exact encoded sizes of the row groups, in
//! order, and hand each row group to the writer thread of its shard ([`super::pool`]).
//!
//! A row group is encoded (by a worker) into in-memory column chunks before the planner sees
//! it, so the planner knows its exact size before it decides whether it still fits the open
//! shard.
//! Boundaries therefore depend only on the data and the settings, never on timing, and no
//! shard exceeds the configured maximum: the footer still to come is bounded from the chunks'
//! page counts, and a batch too large for an empty shard is split in halves.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use parquet::file::properties::WriterPropertiesPtr;

use crate::format::checkpoint::{Position, ShardEntry};
use crate::format::manifest::ShardRecord;
use crate::format::paths::shard_name;
use crate::process::groups::{GroupStart, Tiles};
use crate::write::encode::{parquet_schema, schema_bytes, EncodedBatch, Encoder};
use crate::write::error::SinkError;
use crate::write::pool::{Completion, WriterContext, WriterMsg, WriterPool};

/// One row group of a split, encoded, ready for the shard planner.
pub(crate) struct EncodedGroup {
    /// Its sequence number within the split.
    pub(crate) seq: u64,
    /// Where its first row is in the input.
    pub(crate) start: GroupStart,
    /// Its rows and their column chunks.
    pub(crate) enc: EncodedBatch,
}

/// The shard the planner is filling.
struct PlannedShard {
    index: usize,
    /// Bytes before the footer (magic + row groups), exact.
    bytes: u64,
    /// Upper bound of the footer so far.
    footer_reserve: u64,
    rows: u64,
    first_id: u64,
    last_id: u64,
}

/// A closed shard waiting for its writer to finalise it.
struct ClosedShard {
    record: ShardRecord,
    resume: Position,
    finalised: bool,
}

/// A run of rows of one row group, encoded or not yet.
struct Piece {
    start: usize,
    len: usize,
    enc: Option<EncodedBatch>,
}

/// What to do with the next piece, given the open shard.
enum Step {
    /// It fits the open shard.
    Append,
    /// The open shard is full enough: close it, then place the piece again.
    Close,
    /// Split the piece in halves, so the first half tops the open (or an empty) shard up.
    Split,
    /// No shard is open: open one and append the piece.
    Open,
    /// A single spectrum too large for an empty shard.
    Refuse,
}

/// Decides shard boundaries, in batch order, and hands the row groups to a pool of writer
/// threads that write different shards concurrently.
///
/// Boundaries depend only on the rows and the settings, never on timing or on the number of
/// writers: a row group goes to the open shard when its exact encoded size plus the bound of
/// the footer still fits `max_bytes`; when it does not and the shard holds at least half of
/// `max_bytes`, the shard is closed; when it holds less, the row group is split in halves
/// (recursively) so that the shard is topped up first. So no shard exceeds the maximum, and
/// every shard but the last holds at least half of it, unless the next single spectrum is
/// larger than what is left. Shard `k` is written by writer `k mod writers`.
///
/// Each closed shard remembers the [`Position`] of the input after it, which the checkpoint
/// records once the shard (and every shard before it) is finalised.
pub(crate) struct ShardPlanner {
    split: String,
    max_bytes: u64,
    base_footer: u64,
    encoder: Encoder,
    open: Option<PlannedShard>,
    next_index: usize,
    /// The writer threads; none in a dry run, which only projects the shards.
    pool: Option<WriterPool>,
    /// Dry run: bytes (chunks, footer bound) and rows of the row groups encoded so far, from
    /// which the others' sizes are projected.
    measured: [u64; 3],
    /// Closed shards not yet finalised, or finalised out of order.
    closed: BTreeMap<usize, ClosedShard>,
    /// Finalised shards, a contiguous prefix (including those of a resumed run).
    finalised: Vec<ShardEntry>,
    /// The first writer failure.
    failure: Option<SinkError>,
}

impl ShardPlanner {
    /// Shards go to `root/split/` (created on first use); `root = None` writes nothing and only
    /// projects the shards (dry run): row groups that come unencoded are given the bytes per
    /// row of those encoded before them (the shard boundaries follow from those sizes as in a
    /// real run), and a shard's bytes are its row groups' plus the fixed part of its footer. `done` are the shards an interrupted run already finalised; the
    /// next shard is numbered after them.
    pub(crate) fn new(
        root: Option<&Path>,
        split: &str,
        schema: &SchemaRef,
        props: &WriterPropertiesPtr,
        max_bytes: u64,
        writers: usize,
        done: Vec<ShardEntry>,
    ) -> Result<ShardPlanner, SinkError> {
        let kv: u64 = props
            .key_value_metadata()
            .map(|kv| {
                kv.iter()
                    .map(|k| k.key.len() + k.value.as_ref().map_or(0, |v| v.len()) + 16)
                    .sum::<usize>()
            })
            .unwrap_or(0) as u64;
        let pool = match root {
            Some(root) => Some(WriterPool::start(
                WriterContext {
                    root: root.to_path_buf(),
                    split: split.to_string(),
                    schema: Arc::clone(schema),
                    props: Arc::clone(props),
                    max_bytes,
                },
                writers,
            )?),
            None => None,
        };
        Ok(ShardPlanner {
            split: split.to_string(),
            max_bytes,
            // Magic + footer length + file metadata: schema, key-value pairs, created_by.
            base_footer: 1024 + kv + schema_bytes(&parquet_schema(schema, props)?),
            encoder: Encoder::new(schema, props)?,
            open: None,
            next_index: done.len(),
            pool,
            measured: [0; 3],
            closed: BTreeMap::new(),
            finalised: done,
            failure: None,
        })
    }

    /// Finalised shards so far, in order (a contiguous prefix).
    pub(crate) fn finalised(&self) -> &[ShardEntry] {
        &self.finalised
    }

    fn send(&mut self, index: usize, msg: WriterMsg) -> Result<(), SinkError> {
        let Some(pool) = &self.pool else {
            return Ok(());
        };
        if !pool.send(index, msg) {
            // A writer thread only ends early by panicking.
            return Err(SinkError::Io {
                op: "handing a row group to writer thread of",
                path: PathBuf::from(shard_name(&self.split, index)),
                source: io::Error::other("the writer thread stopped (please report this)"),
            });
        }
        Ok(())
    }

    /// Take in writer reports; with `wait`, until every closed shard is finalised. Returns
    /// how many shards joined the finalised prefix, or the first writer failure.
    pub(crate) fn poll(&mut self, wait: bool) -> Result<usize, SinkError> {
        let before = self.finalised.len();
        let Some(done) = self.pool.as_ref().map(|p| p.done.clone()) else {
            return Ok(0);
        };
        loop {
            if let Some(e) = self.failure.take() {
                return Err(e);
            }
            let pending = self.closed.values().any(|c| !c.finalised);
            let msg = if wait && pending {
                match done.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            } else {
                match done.try_recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            };
            self.take_report(msg);
        }
        Ok(self.finalised.len() - before)
    }

    /// Record one writer report, and move the shards finalised in order to the prefix.
    fn take_report(&mut self, msg: Completion) {
        match msg {
            Completion::Finalised {
                index,
                sha256,
                bytes,
            } => {
                if let Some(c) = self.closed.get_mut(&index) {
                    c.record.sha256 = sha256;
                    c.record.bytes = bytes;
                    c.finalised = true;
                }
            }
            Completion::Failed { error, .. } => {
                self.failure.get_or_insert(error);
            }
        }
        self.move_finalised();
    }

    /// Move the shards finalised in order from `closed` to the finalised prefix.
    fn move_finalised(&mut self) {
        while let Some(entry) = self.closed.first_entry() {
            if !entry.get().finalised {
                break;
            }
            let c = entry.remove();
            self.finalised.push(ShardEntry {
                record: c.record,
                resume: c.resume,
            });
        }
    }

    /// Plan one row group (the next in order). `pieces` (from a checkpoint) replaces it by
    /// the ranges of its rows the interrupted run still had to write.
    pub(crate) fn push_group(
        &mut self,
        group: EncodedGroup,
        pieces: &[[u64; 2]],
    ) -> Result<(), SinkError> {
        self.poll(false)?;
        let EncodedGroup { seq, start, enc } = group;
        let enc = self.measure(enc);
        let rows = enc.rows.clone();
        let whole = (enc.bytes, enc.footer_bytes);
        let mut queue = queue_of(seq, enc, pieces)?;
        while let Some(mut p) = queue.pop_front() {
            if p.len == 0 {
                continue;
            }
            let enc = self.encoded(&rows, whole, &mut p)?;
            match self.step(enc.bytes + enc.footer_bytes, p.len) {
                Step::Append => self.append(enc)?,
                Step::Close => {
                    let resume = Position {
                        group: seq,
                        pieces: std::iter::once(&p)
                            .chain(queue.iter())
                            .map(|q| [q.start as u64, q.len as u64])
                            .collect(),
                        unit: start.unit,
                        skip: start.skip,
                        counts: (&start.counts).into(),
                    };
                    self.close_open(resume)?;
                    p.enc = Some(enc);
                    queue.push_front(p);
                }
                Step::Split => split_front(&mut queue, p),
                Step::Open => {
                    self.open_next()?;
                    self.append(enc)?;
                }
                Step::Refuse => return Err(self.too_small(&enc)),
            }
        }
        Ok(())
    }

    /// Dry run: count an encoded row group's bytes, or give an unencoded one the bytes per
    /// row of those counted so far.
    fn measure(&mut self, mut enc: EncodedBatch) -> EncodedBatch {
        if self.pool.is_some() {
            return enc;
        }
        let rows = enc.rows.num_rows() as u64;
        if enc.encoded {
            let m = &mut self.measured;
            (m[0], m[1], m[2]) = (m[0] + enc.bytes, m[1] + enc.footer_bytes, m[2] + rows);
        } else {
            let [bytes, footer, of] = self.measured;
            (enc.bytes, enc.footer_bytes) = (share(bytes, rows, of), share(footer, rows, of));
        }
        enc
    }

    /// The piece's row group: the one it came with, or its rows encoded now (in a dry run,
    /// its share of the whole group's bytes).
    fn encoded(
        &self,
        rows: &Tiles,
        whole: (u64, u64),
        p: &mut Piece,
    ) -> Result<EncodedBatch, SinkError> {
        match p.enc.take() {
            Some(e) => Ok(e),
            None if self.pool.is_none() => {
                let n = rows.num_rows().max(1) as u64;
                let mut e = EncodedBatch::unencoded(rows.slice(p.start, p.len));
                let rows = p.len as u64;
                (e.bytes, e.footer_bytes) = (share(whole.0, rows, n), share(whole.1, rows, n));
                e.offset = p.start;
                Ok(e)
            }
            None => {
                let mut e = self.encoder.encode(rows.slice(p.start, p.len))?;
                e.offset = p.start;
                Ok(e)
            }
        }
    }

    /// Where a piece of `rows` rows needing `need` bytes (chunks and footer bound) goes.
    fn step(&self, need: u64, rows: usize) -> Step {
        match &self.open {
            Some(s) if s.bytes + s.footer_reserve + need > self.max_bytes => {
                if s.bytes >= self.max_bytes / 2 || rows == 1 {
                    Step::Close
                } else {
                    // Under half full: split, so the first half tops the shard up.
                    Step::Split
                }
            }
            Some(_) => Step::Append,
            // Leading magic (4 bytes) + footer: does the piece fit even an empty shard?
            None if 4 + self.base_footer + need > self.max_bytes => {
                if rows == 1 {
                    Step::Refuse
                } else {
                    Step::Split
                }
            }
            None => Step::Open,
        }
    }

    /// The error for a single spectrum (`enc`) that does not fit an empty shard.
    fn too_small(&self, enc: &EncodedBatch) -> SinkError {
        SinkError::ShardTooSmall {
            max: self.max_bytes,
            need: 4 + self.base_footer + enc.bytes + enc.footer_bytes,
            spectrum_id: enc.rows.spectrum_id(0),
        }
    }

    /// Open the next shard.
    fn open_next(&mut self) -> Result<(), SinkError> {
        let index = self.next_index;
        self.next_index += 1;
        self.send(index, WriterMsg::Open { index })?;
        self.open = Some(PlannedShard {
            index,
            bytes: 4,
            footer_reserve: self.base_footer,
            rows: 0,
            first_id: 0,
            last_id: 0,
        });
        Ok(())
    }

    /// Append `enc` to the open shard and hand it to the shard's writer.
    fn append(&mut self, enc: EncodedBatch) -> Result<(), SinkError> {
        let n = enc.rows.num_rows();
        let s = self.open.as_mut().expect("a shard is open");
        if s.rows == 0 {
            s.first_id = enc.rows.spectrum_id(0);
        }
        s.last_id = enc.rows.spectrum_id(n - 1);
        s.rows += n as u64;
        s.bytes += enc.bytes;
        s.footer_reserve += enc.footer_bytes;
        let index = s.index;
        self.send(index, WriterMsg::RowGroup(enc.chunks))
    }

    fn close_open(&mut self, resume: Position) -> Result<(), SinkError> {
        let Some(s) = self.open.take() else {
            return Ok(());
        };
        self.send(s.index, WriterMsg::Close { planned: s.bytes })?;
        // A dry run projects the shard's bytes and has no digest: its row groups' bytes (real or
        // projected) and the footer's fixed part; each row group's footer entries (a few kB in
        // the real files, bounded far higher by `footer_reserve`) are left out.
        let projected = self.pool.is_none();
        self.closed.insert(
            s.index,
            ClosedShard {
                record: ShardRecord {
                    split: self.split.clone(),
                    path: shard_name(&self.split, s.index),
                    rows: s.rows,
                    bytes: if projected {
                        s.bytes + self.base_footer
                    } else {
                        0
                    },
                    sha256: String::new(),
                    first_spectrum_id: s.first_id,
                    last_spectrum_id: s.last_id,
                },
                resume,
                finalised: projected,
            },
        );
        self.move_finalised();
        Ok(())
    }

    /// The input is exhausted at `end`: close the last shard, let every writer finish and
    /// exit, and return all finalised shards.
    pub(crate) fn finish(&mut self, end: Position) -> Result<Vec<ShardEntry>, SinkError> {
        self.close_open(end)?;
        // Closing the channels lets each writer finish what it was sent and exit, so the
        // wait below ends even if a writer thread died.
        if let Some(pool) = &mut self.pool {
            pool.close();
        }
        self.poll(true)?;
        if let Some(pool) = &mut self.pool {
            pool.join();
        }
        if let Some((index, _)) = self.closed.iter().find(|(_, c)| !c.finalised) {
            return Err(SinkError::Io {
                op: "finalising",
                path: PathBuf::from(shard_name(&self.split, *index)),
                source: io::Error::other("the writer thread stopped (please report this)"),
            });
        }
        Ok(self.finalised.clone())
    }

    /// Stop (error or interruption): the open shard is dropped, shards already closed are
    /// finalised by their writers, which then exit. Returns the finalised prefix.
    pub(crate) fn shut_down(mut self) -> Vec<ShardEntry> {
        self.stop_writers();
        // Take every report; a failure no longer matters, the prefix does. Each `Err` consumes
        // a report, so this ends.
        while self.poll(false).is_err() {}
        std::mem::take(&mut self.finalised)
    }

    fn stop_writers(&mut self) {
        self.open = None;
        // Closing the channels lets each writer finish what it was sent, drop an open shard
        // and exit.
        if let Some(pool) = &mut self.pool {
            pool.close();
            pool.join();
        }
    }
}

impl Drop for ShardPlanner {
    /// An unfinished shard (error or interruption) never reaches its final name.
    fn drop(&mut self) {
        self.stop_writers();
    }
}

/// The pieces of a row group to place, in order: the whole group, or with `pieces` (from a
/// checkpoint) the row ranges an interrupted run still had to write (the group's own
/// encoding is reused when a range is all of it).
fn queue_of(
    seq: u64,
    enc: EncodedBatch,
    pieces: &[[u64; 2]],
) -> Result<VecDeque<Piece>, SinkError> {
    let rows = enc.rows.num_rows();
    if pieces.is_empty() {
        return Ok(VecDeque::from([Piece {
            start: 0,
            len: rows,
            enc: Some(enc),
        }]));
    }
    let mut whole = Some(enc);
    let mut q = VecDeque::new();
    for &[start, len] in pieces {
        let (start, len) = (start as usize, len as usize);
        if start.checked_add(len).is_none_or(|end| end > rows) {
            return Err(SinkError::Resume(format!(
                "the checkpoint resumes row group {seq} at rows {start}..{}, but it has {rows} rows",
                start.saturating_add(len)
            )));
        }
        let enc = if (start, len) == (0, rows) {
            whole.take()
        } else {
            None
        };
        q.push_back(Piece { start, len, enc });
    }
    Ok(q)
}

/// The bytes of `rows` rows, projected from `bytes` for `of` rows (rounded up).
fn share(bytes: u64, rows: u64, of: u64) -> u64 {
    (bytes * rows).div_ceil(of.max(1))
}

/// Put the two halves of `p` at the front of `queue`, first half first.
fn split_front(queue: &mut VecDeque<Piece>, p: Piece) {
    let half = p.len / 2;
    queue.push_front(Piece {
        start: p.start + half,
        len: p.len - half,
        enc: None,
    });
    queue.push_front(Piece {
        start: p.start,
        len: half,
        enc: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::batch::Counts;
    use crate::write::encode::writer_properties;
    use arrow::array::{Float64Array, RecordBatch, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use sha2::{Digest, Sha256};
    use std::fs;

    fn batch(schema: &SchemaRef, ids: std::ops::Range<u64>) -> RecordBatch {
        let v: Vec<f64> = ids.clone().map(|i| (i as f64).sin() * 1e6).collect();
        RecordBatch::try_new(
            Arc::clone(schema),
            vec![
                Arc::new(UInt64Array::from_iter_values(ids)),
                Arc::new(Float64Array::from(v)),
            ],
        )
        .unwrap()
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("spectrum_id", DataType::UInt64, false),
            Field::new("x", DataType::Float64, false),
        ]))
    }

    /// Row group `seq` of `rows` rows (ids continuing from group to group), encoded as a
    /// worker hands it over.
    fn group(enc: &Encoder, schema: &SchemaRef, seq: u64, rows: u64) -> EncodedGroup {
        let b = batch(schema, seq * rows..(seq + 1) * rows);
        EncodedGroup {
            seq,
            start: GroupStart {
                unit: seq,
                skip: 0,
                counts: Counts::default(),
            },
            enc: enc.encode(Tiles::one(b)).unwrap(),
        }
    }

    /// A planner into `root` and an encoder, for the test schema.
    fn planner(root: &Path, max: u64, writers: usize) -> (ShardPlanner, Encoder, SchemaRef) {
        let schema = schema();
        let props = writer_properties(&schema, "sha256:test", Default::default());
        let w = ShardPlanner::new(
            Some(root),
            "train",
            &schema,
            &props,
            max,
            writers,
            Vec::new(),
        )
        .unwrap();
        (w, Encoder::new(&schema, &props).unwrap(), schema)
    }

    /// Plan and write row groups `from..n` of `rows` rows into `root`, resuming after `done`.
    fn run(
        root: &Path,
        writers: usize,
        max: u64,
        n: u64,
        rows: u64,
        done: Vec<ShardEntry>,
    ) -> Vec<ShardEntry> {
        let schema = schema();
        let props = writer_properties(&schema, "sha256:test", Default::default());
        let start = done.last().map(|e| e.resume.clone()).unwrap_or_default();
        let mut w =
            ShardPlanner::new(Some(root), "train", &schema, &props, max, writers, done).unwrap();
        let enc = Encoder::new(&schema, &props).unwrap();
        for seq in start.group..n {
            let pieces: &[[u64; 2]] = if seq == start.group {
                &start.pieces
            } else {
                &[]
            };
            w.push_group(group(&enc, &schema, seq, rows), pieces)
                .unwrap();
        }
        w.finish(Position {
            group: n,
            unit: n,
            ..Position::default()
        })
        .unwrap()
    }

    #[test]
    fn shards_stay_under_the_bound_fill_half_and_keep_every_row_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let max = 40_000;
        let shards = run(dir.path(), 1, max, 20, 1_000, Vec::new());
        assert!(
            shards.len() > 3,
            "expected several shards, got {}",
            shards.len()
        );
        let mut next = 0;
        for (i, e) in shards.iter().enumerate() {
            let s = &e.record;
            assert_eq!(s.path, format!("train/shard-{i:05}.parquet"));
            let bytes = fs::read(dir.path().join(&s.path)).unwrap();
            assert_eq!(bytes.len() as u64, s.bytes);
            assert!(s.bytes <= max, "{} is {} bytes", s.path, s.bytes);
            if i + 1 < shards.len() {
                assert!(s.bytes >= max / 2, "{} is {} bytes", s.path, s.bytes);
            }
            assert_eq!(s.sha256, hex::encode(Sha256::digest(&bytes)));
            assert_eq!(s.first_spectrum_id, next);
            next = s.last_spectrum_id + 1;
        }
        assert_eq!(next, 20_000);
        assert_eq!(shards.iter().map(|s| s.record.rows).sum::<u64>(), 20_000);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("train"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn row_groups_larger_than_half_a_shard_are_split_to_fill_it() {
        // 1300-row groups of ~21 kB against 20 kB shards: none fits a shard whole, so every
        // shard is filled by pieces of them.
        let dir = tempfile::tempdir().unwrap();
        let max = 20_000;
        let shards = run(dir.path(), 2, max, 5, 1_300, Vec::new());
        for (i, e) in shards.iter().enumerate() {
            assert!(e.record.bytes <= max);
            if i + 1 < shards.len() {
                assert!(e.record.bytes >= max / 2, "{:?}", e.record);
            }
        }
        assert_eq!(shards.iter().map(|s| s.record.rows).sum::<u64>(), 6_500);
    }

    #[test]
    fn writers_and_resume_points_do_not_change_a_byte() {
        let max = 30_000;
        let one = tempfile::tempdir().unwrap();
        // 4000-row groups of ~36 kB against 30 kB shards: each is split, so boundaries fall
        // inside row groups (a resume piece starting after a group's first row), which must
        // occur for the test to matter.
        let full = run(one.path(), 1, max, 6, 4_000, Vec::new());
        assert!(full.len() > 3);
        assert!(full
            .iter()
            .any(|e| e.resume.pieces.first().is_some_and(|p| p[0] != 0)));
        let two = tempfile::tempdir().unwrap();
        assert_eq!(run(two.path(), 2, max, 6, 4_000, Vec::new()), full);
        let three = tempfile::tempdir().unwrap();
        assert_eq!(run(three.path(), 3, max, 6, 4_000, Vec::new()), full);
        // Resume after every shard: the shards written after it are the same bytes.
        for k in 0..full.len() {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir_all(dir.path().join("train")).unwrap();
            for e in &full[..=k] {
                fs::copy(
                    one.path().join(&e.record.path),
                    dir.path().join(&e.record.path),
                )
                .unwrap();
            }
            let resumed = run(dir.path(), 1 + k % 2, max, 6, 4_000, full[..=k].to_vec());
            assert_eq!(resumed, full, "resumed after shard {k}");
        }
    }

    #[test]
    fn a_bound_below_one_row_is_refused_without_leaving_files() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, enc, schema) = planner(dir.path(), 500, 2);
        let mut g = group(&enc, &schema, 0, 2);
        g.enc = enc.encode(Tiles::one(batch(&schema, 7..9))).unwrap();
        let err = w.push_group(g, &[]).unwrap_err();
        assert!(
            matches!(
                err,
                SinkError::ShardTooSmall {
                    max: 500,
                    spectrum_id: 7,
                    ..
                }
            ),
            "{err}"
        );
        drop(w);
        // Refused before a shard was opened: not even the split directory exists.
        assert!(!dir.path().join("train").exists());
    }

    #[test]
    fn a_dropped_planner_leaves_no_tmp_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, enc, schema) = planner(dir.path(), 1 << 20, 1);
        w.push_group(group(&enc, &schema, 0, 100), &[]).unwrap();
        let done = w.shut_down();
        assert!(done.is_empty());
        let left: Vec<_> = fs::read_dir(dir.path().join("train"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
