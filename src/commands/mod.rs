//! The commands besides `build-shards`, each a library returning values that `crate::cli`
//! prints: `verify`, `merge`, `inspect`, `doctor`, `report` (quality-report), `status` and
//! [`synth`];
//! and `shard_pool`, the thread pool the commands that read every shard share.

pub(crate) mod doctor;
pub(crate) mod inspect;
pub(crate) mod merge;
pub(crate) mod report;
pub(crate) mod status;
pub mod synth;
pub(crate) mod verify;

/// A pool of `threads` (default: one per core) named `name-N`, for commands that work on
/// several shards at a time; the error is (threads asked for, why).
pub(crate) fn shard_pool(
    threads: Option<usize>,
    name: &'static str,
) -> Result<rayon::ThreadPool, (usize, String)> {
    let threads = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .map_err(|e| (threads, e.to_string()))
}
