//! Row groups: the accepted rows of one split, in input order, cut into groups of a fixed
//! number of rows whatever the read units they arrived in.
//!
//! A row group's rows stay the tiles they were decoded as (one Arrow batch per read unit, or
//! part of one): nothing is copied to assemble them, and the encoder feeds its column writers
//! tile by tile. Group `g` of a split is always that split's accepted rows `g·R .. (g+1)·R`
//! (the last group of a run may be shorter), so the cut depends only on the data and `R`,
//! never on timing, worker counts or where a resumed run started.

use std::collections::VecDeque;

use arrow::array::{Array, RecordBatch, UInt64Array};

use crate::process::batch::Counts;

/// Rows of one schema held as a sequence of Arrow batches (tiles), in order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tiles {
    tiles: Vec<RecordBatch>,
    rows: usize,
}

impl Tiles {
    /// One tile.
    #[cfg(test)]
    pub(crate) fn one(batch: RecordBatch) -> Tiles {
        let mut t = Tiles::default();
        t.push(batch);
        t
    }

    /// Append a tile (an empty one is dropped).
    pub(crate) fn push(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.rows += batch.num_rows();
            self.tiles.push(batch);
        }
    }

    /// Rows in all tiles.
    pub(crate) fn num_rows(&self) -> usize {
        self.rows
    }

    /// The tiles, in order.
    pub(crate) fn tiles(&self) -> &[RecordBatch] {
        &self.tiles
    }

    /// Rows `start .. start + len` (zero-copy slices of the tiles they fall in).
    pub(crate) fn slice(&self, start: usize, len: usize) -> Tiles {
        let mut out = Tiles::default();
        let end = start + len;
        let mut at = 0;
        for t in &self.tiles {
            let (lo, hi) = (at, at + t.num_rows());
            at = hi;
            if hi <= start || lo >= end {
                continue;
            }
            let from = start.max(lo) - lo;
            let to = end.min(hi) - lo;
            out.push(t.slice(from, to - from));
        }
        out
    }

    /// `spectrum_id` (column 0) of row `row`.
    pub(crate) fn spectrum_id(&self, row: usize) -> u64 {
        let mut at = 0;
        for t in &self.tiles {
            if row < at + t.num_rows() {
                let ids = t.column(0).as_any().downcast_ref::<UInt64Array>();
                return ids.map_or(0, |a| a.value(row - at));
            }
            at += t.num_rows();
        }
        0
    }
}

/// Where a row group's first row is in the input.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct GroupStart {
    /// The read unit that holds it.
    pub(crate) unit: u64,
    /// The split's accepted rows of that unit before it.
    pub(crate) skip: u64,
    /// Counts of all units before `unit`.
    pub(crate) counts: Counts,
}

/// A row group of one split, cut and not yet encoded.
#[derive(Debug)]
pub(crate) struct RowGroup {
    /// Its sequence number within the split.
    pub(crate) seq: u64,
    pub(crate) rows: Tiles,
    pub(crate) start: GroupStart,
}

/// Rows waiting for the group they will belong to: a tile and where it came from.
#[derive(Debug)]
struct Pending {
    unit: u64,
    /// Accepted rows of the split in `unit` before this tile.
    offset: u64,
    counts_before: Counts,
    batch: RecordBatch,
}

/// Cuts one split's accepted rows, unit after unit in input order, into row groups of
/// `rows_per_group` rows.
#[derive(Debug)]
pub(crate) struct RowGroupCutter {
    rows_per_group: usize,
    next_seq: u64,
    pending: VecDeque<Pending>,
    pending_rows: usize,
    /// A resumed run: the split's rows start at this unit, after this many of its rows.
    resume_at: Option<(u64, u64)>,
}

impl RowGroupCutter {
    /// A cutter whose first group is number `first_seq`, starting at `start` (the unit and
    /// rows of it to skip; `(0, 0)` for a fresh run). Units before `start.0` are ignored.
    pub(crate) fn new(rows_per_group: usize, first_seq: u64, start: (u64, u64)) -> Self {
        RowGroupCutter {
            rows_per_group: rows_per_group.max(1),
            next_seq: first_seq,
            pending: VecDeque::new(),
            pending_rows: 0,
            resume_at: Some(start),
        }
    }

    /// The sequence number the next group will have (after [`Self::flush`], the number of
    /// groups of the split).
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Take the split's accepted rows of unit `unit` (units come in order); `counts_before`
    /// are the counts of every unit before it. Returns the groups this completes.
    pub(crate) fn absorb(
        &mut self,
        unit: u64,
        counts_before: &Counts,
        mut batch: RecordBatch,
    ) -> Vec<RowGroup> {
        let mut offset = 0;
        if let Some((at, skip)) = self.resume_at {
            if unit < at {
                return Vec::new();
            }
            if unit == at {
                let skip = (skip as usize).min(batch.num_rows());
                batch = batch.slice(skip, batch.num_rows() - skip);
                offset = skip as u64;
            }
            self.resume_at = None;
        }
        if batch.num_rows() > 0 {
            self.pending_rows += batch.num_rows();
            self.pending.push_back(Pending {
                unit,
                offset,
                counts_before: counts_before.clone(),
                batch,
            });
        }
        let mut groups = Vec::new();
        while self.pending_rows >= self.rows_per_group {
            groups.push(self.cut(self.rows_per_group));
        }
        groups
    }

    /// The input is exhausted: the last, shorter group, if rows are left.
    pub(crate) fn flush(&mut self) -> Option<RowGroup> {
        (self.pending_rows > 0).then(|| self.cut(self.pending_rows))
    }

    /// The next group, of the first `rows` pending rows.
    fn cut(&mut self, rows: usize) -> RowGroup {
        let front = self.pending.front().expect("rows are pending");
        let start = GroupStart {
            unit: front.unit,
            skip: front.offset,
            counts: front.counts_before.clone(),
        };
        let mut tiles = Tiles::default();
        let mut need = rows;
        while need > 0 {
            let p = self.pending.front_mut().expect("rows are pending");
            let n = p.batch.num_rows();
            if n <= need {
                need -= n;
                tiles.push(self.pending.pop_front().expect("front").batch);
            } else {
                tiles.push(p.batch.slice(0, need));
                p.batch = p.batch.slice(need, n - need);
                p.offset += need as u64;
                need = 0;
            }
        }
        self.pending_rows -= rows;
        let seq = self.next_seq;
        self.next_seq += 1;
        RowGroup {
            seq,
            rows: tiles,
            start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn ids(r: std::ops::Range<u64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "spectrum_id",
            DataType::UInt64,
            false,
        )]));
        RecordBatch::try_new(schema, vec![Arc::new(UInt64Array::from_iter_values(r))]).unwrap()
    }

    fn all_ids(t: &Tiles) -> Vec<u64> {
        (0..t.num_rows()).map(|r| t.spectrum_id(r)).collect()
    }

    fn counts(read: u64) -> Counts {
        Counts {
            read,
            ..Counts::default()
        }
    }

    /// Units of the given sizes (ids continuing from one to the next) through a cutter.
    fn cut_all(sizes: &[u64], per_group: usize, start: (u64, u64), first: u64) -> Vec<RowGroup> {
        let mut c = RowGroupCutter::new(per_group, first, start);
        let mut out = Vec::new();
        let mut id = 0;
        for (u, &n) in sizes.iter().enumerate() {
            out.extend(c.absorb(u as u64, &counts(id), ids(id..id + n)));
            id += n;
        }
        out.extend(c.flush());
        out
    }

    #[test]
    fn groups_have_the_asked_rows_whatever_the_unit_sizes() {
        let groups = cut_all(&[7, 0, 3, 12, 1, 5], 5, (0, 0), 0);
        let sizes: Vec<usize> = groups.iter().map(|g| g.rows.num_rows()).collect();
        assert_eq!(sizes, [5, 5, 5, 5, 5, 3]);
        let seqs: Vec<u64> = groups.iter().map(|g| g.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3, 4, 5]);
        let every: Vec<u64> = groups.iter().flat_map(|g| all_ids(&g.rows)).collect();
        assert_eq!(every, (0..28).collect::<Vec<_>>());
        // Group 1 (rows 5..10) starts inside unit 0 after 5 of its rows; group 2 (rows 10..15)
        // in unit 3 (ids 10..22) at its first row; its counts are those of units 0..3.
        assert_eq!((groups[1].start.unit, groups[1].start.skip), (0, 5));
        assert_eq!((groups[2].start.unit, groups[2].start.skip), (3, 0));
        assert_eq!(groups[2].start.counts.read, 10);
        assert_eq!((groups[4].start.unit, groups[4].start.skip), (3, 10));
    }

    #[test]
    fn a_cutter_started_at_a_group_start_cuts_the_same_groups_from_there() {
        let sizes = [7, 0, 3, 12, 1, 5, 9];
        let full = cut_all(&sizes, 4, (0, 0), 0);
        for g in &full {
            let resumed = cut_all(&sizes, 4, (g.start.unit, g.start.skip), g.seq);
            let tail = &full[g.seq as usize..];
            assert_eq!(resumed.len(), tail.len(), "from group {}", g.seq);
            for (a, b) in resumed.iter().zip(tail) {
                assert_eq!(a.seq, b.seq);
                assert_eq!(all_ids(&a.rows), all_ids(&b.rows));
                assert_eq!(a.start, b.start);
            }
        }
    }

    #[test]
    fn slices_cross_tiles_without_losing_or_repeating_a_row() {
        let mut t = Tiles::default();
        t.push(ids(0..3));
        t.push(ids(3..3));
        t.push(ids(3..10));
        t.push(ids(10..11));
        assert_eq!(t.num_rows(), 11);
        assert_eq!(t.tiles().len(), 3, "the empty tile is dropped");
        for start in 0..=11 {
            for len in 0..=(11 - start) {
                let s = t.slice(start, len);
                let want: Vec<u64> = (start as u64..(start + len) as u64).collect();
                assert_eq!(all_ids(&s), want, "slice({start}, {len})");
            }
        }
    }
}
