//! `msms rebalance`: its flags, help text and what it prints (the rewrite itself is
//! [`crate::run::rebalance`]).

use std::path::PathBuf;

use crate::config::{ByteSize, Compression};
use crate::run::{self, Progress, RebalanceOptions, RunError};
use crate::text::{error_chain, human_bytes, thousands};

/// Flags of `msms rebalance`.
#[derive(Debug, clap::Args)]
pub(crate) struct RebalanceArgs {
    /// A finished output root: a single run's, or a planned one's after `msms merge`.
    #[arg(value_name = "ROOT")]
    pub(crate) root: PathBuf,
    /// Where the rebalanced root is written (a new or empty directory, other than ROOT).
    #[arg(long, value_name = "DIR")]
    pub(crate) output_root: PathBuf,
    /// Largest shard file (500MB, 1GB, 512MiB, ...). Default: ROOT's shard size.
    #[arg(long, value_name = "SIZE")]
    pub(crate) shard_size: Option<ByteSize>,
    /// Rows per Parquet row group. Default: ROOT's.
    #[arg(long, value_name = "ROWS")]
    pub(crate) row_group_size: Option<usize>,
    /// Compression: zstd, zstd:LEVEL, lz4, snappy or none. Default: ROOT's.
    #[arg(long, value_name = "CODEC")]
    pub(crate) compression: Option<Compression>,
    /// Shard writer threads (each writes and hashes its own shards).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub(crate) writers: usize,
    /// Replace an earlier run's output in --output-root (its manifest, shards, checkpoint).
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// Continue an interrupted rebalance from the checkpoint in --output-root: finished shards
    /// are re-hashed and kept; the result is byte-identical to an uninterrupted rebalance.
    #[arg(long, conflicts_with = "overwrite")]
    pub(crate) resume: bool,
    /// No progress line or notices.
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

/// Text after `msms rebalance --help`.
pub(crate) const AFTER_HELP: &str = "\
Reads ROOT's shards (not the HDF5 inputs) split by split in spectrum_id order and writes the
same rows, in the same order, into even shards: none larger than --shard-size, all but the last
of each split at least half of it, row groups of --row-group-size rows. Use it after `msms merge`
(each part closed its own last shard, so small splits end up as one small shard per part), or to
change the shard size, row groups or compression of a finished root without converting again.

The new _manifest.json keeps ROOT's inputs, counts, schema and processing settings, records the
new layout (and its config hash) and names ROOT in \"rebalanced_from\": {\"dataset_digest\",
\"config_hash\"}. `msms verify --full` checks the result like any root.

Crash-safe like build-shards: the output root is locked while it runs; shards appear only when
complete; after an interruption (Ctrl-C, kill, crash) the same command with --resume continues
and gives the identical result.

Exit codes: 0 written (or already finished, with --resume); 2 ROOT is not a finished root, the
output root is not usable, or another command holds it; 1 a write failed; 130 interrupted
(finished shards kept: continue with --resume).

Examples:
  msms merge /data/shards/c1
  msms rebalance /data/shards/c1 --output-root /data/shards/c1-even
  msms rebalance /data/shards/c1 --output-root /data/shards/c1-256MB --shard-size 256MB --compression zstd:3";

/// `msms rebalance ROOT --output-root NEW`: rewrite, print what was written; the exit code.
pub(crate) fn run(a: &RebalanceArgs) -> i32 {
    let opts = RebalanceOptions {
        source: a.root.clone(),
        output_root: a.output_root.clone(),
        shard_size: a.shard_size,
        row_group_size: a.row_group_size,
        compression: a.compression,
        overwrite: a.overwrite,
        resume: a.resume,
        writers: a.writers,
        progress: if a.quiet {
            Progress::Quiet
        } else {
            Progress::Auto
        },
        stop: Some(crate::cli::build::install_stop_handlers()),
        resume_command: Some(crate::cli::build::resume_command()),
    };
    match run::rebalance(&opts, &|event| eprintln!("{event}")) {
        Ok(r) => {
            let m = &r.manifest;
            let what = if r.already_done {
                "already done"
            } else {
                "done"
            };
            println!(
                "msms rebalance: {what}: {} spectra, {} shards ({}) from {} ({} shards); {}",
                thousands(m.counts.written),
                m.shards.len(),
                human_bytes(m.shards.iter().map(|s| s.bytes).sum()),
                a.root.display(),
                r.source.shards.len(),
                r.manifest_path.display()
            );
            for (name, s) in &m.splits {
                println!(
                    "  {name:<10} {} spectra in {} shards, {}",
                    thousands(s.rows),
                    s.shards,
                    human_bytes(s.bytes)
                );
            }
            println!("  dataset digest   {}", m.dataset_digest);
            0
        }
        Err(e) => failed(&e, &opts),
    }
}

/// The error, and the command that continues when a checkpoint was left; the exit code.
fn failed(e: &RunError, opts: &RebalanceOptions) -> i32 {
    eprintln!("msms rebalance: {}", error_chain(e));
    let resumable = matches!(e.exit_code(), 1 | 130)
        && crate::format::checkpoint::path(&opts.output_root).is_file();
    if let (true, Some(cmd)) = (resumable, &opts.resume_command) {
        eprintln!("msms rebalance: finished shards are kept; continue with:\n  {cmd}");
    }
    e.exit_code()
}
