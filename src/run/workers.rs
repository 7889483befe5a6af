//! The worker pool: `num_workers` threads (pinned to cores, NUMA node by node, in production
//! mode) that decode, validate, transform, deduplicate and divide among splits one read unit
//! at a time ([`run_unit`]), and encode one row group at a time ([`encode_group`]), each with
//! its own reusable state; and [`tune_allocator`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use arrow::array::{BooleanArray, RecordBatch};
use arrow::datatypes::SchemaRef;
use crossbeam_channel::Sender;

use crate::config::Mode;
use crate::process::batch::{self, Counts, Processing, Scratch};
use crate::process::groups::RowGroup;
use crate::process::split::{self, SplitPlan};
use crate::read::mapped::DecodeScratch;
use crate::read::RawUnit;
use crate::run::affinity;
use crate::run::error::RunError;
use crate::write::encode::Encoder;
use crate::write::error::SinkError;
use crate::write::planner::EncodedGroup;

/// A read unit back from the pool: its sequence number, and each split's accepted rows (in
/// split order) with the unit's counts, or why it failed.
pub(crate) type UnitDone = (u64, Result<(Vec<RecordBatch>, Counts), RunError>);

/// A row group back from the pool: its split, and the group encoded or why that failed.
pub(crate) type GroupDone = (usize, Result<EncodedGroup, RunError>);

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
pub(crate) struct Shared {
    pub(crate) schema: SchemaRef,
    pub(crate) processing: Processing,
    pub(crate) states: Vec<parking_lot::Mutex<WorkerState>>,
    pub(crate) abort: Arc<AtomicBool>,
    /// How rows are divided into splits.
    pub(crate) split: SplitPlan,
    /// `--dedup exact`.
    pub(crate) dedup: Option<split::DedupGate>,
}

/// One worker's reusable state.
pub(crate) struct WorkerState {
    encoder: Encoder,
    scratch: Scratch,
    decode: DecodeScratch,
}

impl WorkerState {
    /// One state per worker, indexed by the pool's thread index (each lock is only ever taken
    /// by its own thread).
    pub(crate) fn for_workers(
        workers: usize,
        schema: &SchemaRef,
        props: &parquet::file::properties::WriterPropertiesPtr,
    ) -> Result<Vec<parking_lot::Mutex<WorkerState>>, SinkError> {
        let mut states = Vec::with_capacity(workers);
        for _ in 0..workers {
            states.push(parking_lot::Mutex::new(WorkerState {
                encoder: Encoder::new(schema, props)?,
                scratch: Scratch::default(),
                decode: DecodeScratch::default(),
            }));
        }
        Ok(states)
    }
}

/// The worker threads, and what was done about their placement.
pub(crate) struct Pool {
    pub(crate) pool: rayon::ThreadPool,
    placement: String,
    pins_refused: Arc<AtomicUsize>,
}

impl Pool {
    /// `workers` threads; production mode pins each worker to a core, NUMA node by node.
    pub(crate) fn start(mode: Mode, workers: usize) -> Result<Pool, RunError> {
        let (pin_plan, placement) = if mode == Mode::Production {
            let topo = test_topology().unwrap_or_else(affinity::Topology::detect);
            let plan = affinity::plan(&topo, workers);
            let text = affinity::describe(&topo, &plan);
            (Some(plan), text)
        } else {
            (None, format!("{workers} workers, not pinned (local mode)"))
        };
        let pins_refused = Arc::new(AtomicUsize::new(0));
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
            .map_err(|e| {
                RunError::Internal(format!("cannot start {workers} worker threads: {e}"))
            })?;
        Ok(Pool {
            pool,
            placement,
            pins_refused,
        })
    }

    /// Stop the threads (units still queued after a failure see the abort flag and return
    /// without doing anything); what was done about their placement.
    pub(crate) fn shut_down(self) -> String {
        let Pool {
            pool,
            mut placement,
            pins_refused,
        } = self;
        drop(pool);
        let refused = pins_refused.load(Ordering::Relaxed);
        if refused > 0 {
            placement.push_str(&format!(
                " ({refused} pins refused by the system; those threads run unpinned)"
            ));
        }
        placement
    }
}

/// Test hook: `MSMS_TEST_TOPOLOGY`, NUMA nodes' cpulists separated by `;` (e.g. `0;1023`),
/// stands in for the detected topology when production mode plans the pins, so that the
/// tests can plan a pin the kernel refuses (a CPU that is not online). Unset or malformed:
/// `None`.
fn test_topology() -> Option<affinity::Topology> {
    let text = std::env::var("MSMS_TEST_TOPOLOGY").ok()?;
    let nodes = text
        .split(';')
        .map(affinity::parse_cpulist)
        .collect::<Option<Vec<_>>>()?;
    Some(affinity::Topology { nodes })
}

/// Decode, validate, transform and divide one unit among the splits on a pool thread; send
/// the result.
pub(crate) fn run_unit(mut raw: RawUnit, shared: &Shared, tx: &Sender<UnitDone>) {
    let seq = raw.seq;
    if shared.abort.load(Ordering::Relaxed) {
        // The run is stopping; whoever stopped it has reported why.
        return;
    }
    let index = rayon::current_thread_index().unwrap_or(0) % shared.states.len();
    let mut state = shared.states[index].lock();
    let WorkerState {
        scratch, decode, ..
    } = &mut *state;
    // A panic here is a bug; report it instead of leaving the sink waiting.
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        raw.decode_pending(decode)?;
        work(&raw, shared, scratch)
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

/// Encode row group `group` of split `split` on a pool thread; send the result.
pub(crate) fn encode_group(split: usize, group: RowGroup, shared: &Shared, tx: &Sender<GroupDone>) {
    if shared.abort.load(Ordering::Relaxed) {
        return;
    }
    let index = rayon::current_thread_index().unwrap_or(0) % shared.states.len();
    let state = shared.states[index].lock();
    let RowGroup { seq, rows, start } = group;
    let first = rows.spectrum_id(0);
    let n = rows.num_rows() as u64;
    // A panic here is a bug; report it instead of leaving the sink waiting.
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        state.encoder.encode(rows).map_err(RunError::from)
    }))
    .unwrap_or_else(|_| {
        Err(RunError::Internal(format!(
            "a worker panicked encoding spectra {first}..{}",
            first + n
        )))
    });
    drop(state);
    let group = out.map(|enc| EncodedGroup { seq, start, enc });
    let _ = tx.send((split, group));
}

/// Build a unit's batch, drop duplicates (`--dedup exact`) and divide it among the splits:
/// each split's rows, in split order.
fn work(
    raw: &RawUnit,
    shared: &Shared,
    scratch: &mut Scratch,
) -> Result<(Vec<RecordBatch>, Counts), RunError> {
    let (mut batch, mut counts) =
        batch::build(raw, &shared.schema, &shared.processing, scratch).map_err(SinkError::from)?;
    if let Some(gate) = &shared.dedup {
        batch = drop_duplicates(batch, raw.seq, gate, &shared.abort, &mut counts)?;
    }
    Ok((divide(batch, &shared.split)?, counts))
}

/// `--dedup exact`: wait for unit `seq`'s turn at the gate, drop the rows seen before.
fn drop_duplicates(
    batch: RecordBatch,
    seq: u64,
    gate: &split::DedupGate,
    abort: &AtomicBool,
    counts: &mut Counts,
) -> Result<RecordBatch, RunError> {
    let hashes = split::row_hashes(&batch);
    let Some(keep) = gate.filter(seq, &hashes, abort) else {
        return Err(RunError::Internal("stopped".into()));
    };
    let dropped = keep.iter().filter(|k| !**k).count();
    if dropped == 0 {
        return Ok(batch);
    }
    counts.duplicate += dropped as u64;
    counts.accepted -= dropped as u64;
    Ok(
        arrow::compute::filter_record_batch(&batch, &BooleanArray::from(keep))
            .map_err(SinkError::from)?,
    )
}

/// The rows of `batch` of each split, in split order.
fn divide(batch: RecordBatch, plan: &SplitPlan) -> Result<Vec<RecordBatch>, RunError> {
    if !plan.is_split() {
        return Ok(vec![batch]);
    }
    let mut which = Vec::new();
    plan.assign(&batch, &mut which);
    Ok((0..plan.names.len())
        .map(|k| {
            let mask: BooleanArray = which.iter().map(|w| Some(usize::from(*w) == k)).collect();
            arrow::compute::filter_record_batch(&batch, &mask)
        })
        .collect::<Result<_, _>>()
        .map_err(SinkError::from)?)
}
