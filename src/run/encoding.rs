//! Row groups between the cutters and the shard planners: encoded on the worker pool, at most
//! a fixed number at a time, and put back in order, split by split. A dry run encodes only a
//! sample of them ([`DRY_RUN_SAMPLE`]); the planner projects the others' sizes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::process::groups::RowGroup;
use crate::run::error::RunError;
use crate::run::workers::{encode_group, GroupDone, Shared};
use crate::write::encode::EncodedBatch;
use crate::write::planner::EncodedGroup;

/// A dry run encodes row group 0 of each split and every this-many-th after it.
pub(crate) const DRY_RUN_SAMPLE: u64 = 16;

/// Row groups cut and not yet placed: waiting for a worker, being encoded, or encoded and
/// waiting for the groups before them.
pub(crate) struct Encoding {
    /// Most groups being encoded at once.
    limit: usize,
    in_flight: usize,
    waiting: VecDeque<(usize, RowGroup)>,
    /// Per split, encoded groups by sequence number.
    ready: Vec<BTreeMap<u64, EncodedGroup>>,
    /// Per split, the sequence number of the next group to place.
    next: Vec<u64>,
    /// Dry run: only groups whose number is a multiple of this are encoded.
    sample: Option<u64>,
}

impl Encoding {
    /// At most `limit` groups encoded at once; split `k`'s first group is number `first[k]`;
    /// with `sample`, only the groups whose number is a multiple of it.
    pub(crate) fn new(limit: usize, first: Vec<u64>, sample: Option<u64>) -> Encoding {
        Encoding {
            limit: limit.max(1),
            in_flight: 0,
            waiting: VecDeque::new(),
            ready: first.iter().map(|_| BTreeMap::new()).collect(),
            next: first,
            sample,
        }
    }

    /// Queue group `g` of split `split` for encoding (or, outside a dry run's sample, for
    /// placing as it is).
    pub(crate) fn push(&mut self, split: usize, g: RowGroup) {
        if self.sample.is_some_and(|k| g.seq % k != 0) {
            let enc = EncodedBatch::unencoded(g.rows);
            let (seq, start) = (g.seq, g.start);
            self.ready[split].insert(seq, EncodedGroup { seq, start, enc });
        } else {
            self.waiting.push_back((split, g));
        }
    }

    /// Whether groups wait for a worker (the reader should not be let further ahead).
    pub(crate) fn holding(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Nothing is queued, being encoded or waiting to be placed.
    pub(crate) fn idle(&self) -> bool {
        self.waiting.is_empty() && self.in_flight == 0 && self.ready.iter().all(|r| r.is_empty())
    }

    /// Hand waiting groups to the pool, up to the limit; results come back on `tx`.
    pub(crate) fn dispatch(
        &mut self,
        pool: &rayon::ThreadPool,
        shared: &Arc<Shared>,
        tx: &Sender<GroupDone>,
    ) {
        while self.in_flight < self.limit {
            let Some((split, g)) = self.waiting.pop_front() else {
                break;
            };
            self.in_flight += 1;
            let (shared, tx) = (Arc::clone(shared), tx.clone());
            pool.spawn_fifo(move || encode_group(split, g, &shared, &tx));
        }
    }

    /// A group came back from the pool.
    pub(crate) fn done(&mut self, (split, group): GroupDone) -> Result<(), RunError> {
        self.in_flight -= 1;
        let g = group?;
        self.ready[split].insert(g.seq, g);
        Ok(())
    }

    /// The next group to place of any split, in each split's order.
    pub(crate) fn next_ready(&mut self) -> Option<(usize, EncodedGroup)> {
        for (split, ready) in self.ready.iter_mut().enumerate() {
            if let Some(g) = ready.remove(&self.next[split]) {
                self.next[split] += 1;
                return Some((split, g));
            }
        }
        None
    }
}
