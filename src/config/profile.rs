//! [`Profile`]: the throughput and output-layout settings whose defaults depend on the
//! [`Mode`].

use serde::Serialize;

use super::{ByteSize, Compression, Mode};

/// Throughput and output-layout settings that a mode sets by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// Decode/transform worker threads.
    pub num_workers: usize,
    /// Maximum size of one Parquet shard.
    pub shard_size: ByteSize,
    /// Spectra per read unit and row group (units rounded to whole chunks of the spectrum
    /// dataset; row groups of at most this many).
    pub batch_size: usize,
    /// Most rows per Parquet row group of each split's shards (independent of `batch_size`,
    /// which stays the read unit).
    pub row_group_size: usize,
    /// Compression codec of the shards' column chunks.
    pub compression: Compression,
    /// Spectra between two progress updates of the checkpoint (it is also written whenever a
    /// shard is finalised, which is what `--resume` continues from).
    pub checkpoint_interval: usize,
    /// Shard writer threads; the output does not depend on the number.
    pub writers: usize,
}

impl Profile {
    /// The defaults of `mode` on a machine with `cores` cores (treated as at least 1).
    ///
    /// | key | local | production |
    /// | --- | --- | --- |
    /// | `num_workers` | min(4, cores) | cores |
    /// | `shard_size` | 1GB | 2GB |
    /// | `batch_size` | 1000 | 10000 |
    /// | `row_group_size` | 32768 | 32768 |
    /// | `compression` | zstd:1 | zstd:1 |
    /// | `checkpoint_interval` | 5000 | 10000 |
    /// | `writers` | 1 | 2 |
    pub(crate) fn for_mode(mode: Mode, cores: usize) -> Profile {
        let row_group_size = default_row_group_size();
        let cores = cores.max(1);
        match mode {
            Mode::Local => Profile {
                num_workers: cores.min(4),
                shard_size: ByteSize(1_000_000_000),
                batch_size: 1_000,
                row_group_size,
                compression: Compression::Zstd(1),
                checkpoint_interval: 5_000,
                writers: 1,
            },
            Mode::Production => Profile {
                num_workers: cores,
                shard_size: ByteSize(2_000_000_000),
                batch_size: 10_000,
                row_group_size,
                compression: Compression::Zstd(1),
                checkpoint_interval: 10_000,
                writers: 2,
            },
        }
    }
}

/// Rows per row group in every mode (also what a manifest written before `row_group_size`
/// existed reads back as).
pub(crate) fn default_row_group_size() -> usize {
    32_768
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_per_mode() {
        let gb = |n: u64| ByteSize(n * 1_000_000_000);
        assert_eq!(
            Profile::for_mode(Mode::Local, 2),
            Profile {
                num_workers: 2,
                shard_size: gb(1),
                batch_size: 1_000,
                row_group_size: 32_768,
                compression: Compression::Zstd(1),
                checkpoint_interval: 5_000,
                writers: 1
            }
        );
        assert_eq!(
            Profile::for_mode(Mode::Local, 48),
            Profile {
                num_workers: 4,
                shard_size: gb(1),
                batch_size: 1_000,
                row_group_size: 32_768,
                compression: Compression::Zstd(1),
                checkpoint_interval: 5_000,
                writers: 1
            }
        );
        assert_eq!(
            Profile::for_mode(Mode::Production, 2),
            Profile {
                num_workers: 2,
                shard_size: gb(2),
                batch_size: 10_000,
                row_group_size: 32_768,
                compression: Compression::Zstd(1),
                checkpoint_interval: 10_000,
                writers: 2
            }
        );
        assert_eq!(
            Profile::for_mode(Mode::Production, 48),
            Profile {
                num_workers: 48,
                shard_size: gb(2),
                batch_size: 10_000,
                row_group_size: 32_768,
                compression: Compression::Zstd(1),
                checkpoint_interval: 10_000,
                writers: 2
            }
        );
        assert_eq!(Profile::for_mode(Mode::Production, 0).num_workers, 1);
        // zstd:1 is what the shards were written with before the setting existed.
        for mode in [Mode::Local, Mode::Production] {
            assert_eq!(
                Profile::for_mode(mode, 2).compression,
                Compression::default()
            );
        }
    }
}
