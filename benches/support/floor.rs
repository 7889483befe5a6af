//! The floor of a conversion (issue #13): the work no conversion of an input can skip,
//! measured on one core and divided by the cores.
//!
//! - **inflate**: every stored chunk of every chunked dataset of the input, decoded by the
//!   conversion's own chunk decoder (`msms_shards::read::inflate_all_chunks`: the chunk index
//!   from `H5Dchunk_iter`, the memory map, libdeflate);
//! - **zstd**: every encoded Parquet page of the conversion's shards compressed at the level
//!   the conversion uses (zstd level 1), one page at a time with one reused context
//!   (`zstd::bulk::Compressor`);
//! - **sha256**: the shard files hashed with SHA-256 (`sha2`, as the conversion), from memory.
//!
//! Each part is timed `runs` times on the calling thread and its fastest run kept. Used by
//! `benches/e2e.rs` and `examples/floor.rs` (which `scripts/bench-ratios.sh` runs).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::reader::{FileReader, SerializedFileReader};
use sha2::{Digest, Sha256};

/// The zstd level of a conversion (`ZstdLevel::default()` in `src/write/encode.rs`).
pub(crate) const CONVERSION_ZSTD_LEVEL: i32 = 1;

/// One floor measurement.
#[derive(Clone, Debug)]
pub(crate) struct Floor {
    /// Fastest decode of every stored chunk.
    pub(crate) inflate: Duration,
    /// Fastest zstd compression of every page.
    pub(crate) zstd: Duration,
    /// Fastest SHA-256 of the shards.
    pub(crate) sha256: Duration,
    /// The zstd level used.
    pub(crate) level: i32,
    /// Cores the sum is divided by.
    pub(crate) cores: usize,
    /// Chunks decoded.
    pub(crate) chunks: u64,
    /// Bytes the chunks decode to.
    pub(crate) inflated_bytes: u64,
    /// Pages compressed.
    pub(crate) pages: usize,
    /// Bytes of the uncompressed pages.
    pub(crate) page_bytes: u64,
    /// Bytes they compress to.
    pub(crate) zstd_bytes: u64,
    /// Bytes of the shards.
    pub(crate) shard_bytes: u64,
}

impl Floor {
    /// (inflate + zstd + sha256) / cores.
    pub(crate) fn total(&self) -> Duration {
        (self.inflate + self.zstd + self.sha256) / self.cores.max(1) as u32
    }

    /// `floor X s (inflate a s + zstd b s + sha256 c s) / 2 cores`, plus ` at zstd level L`
    /// when the level is not the conversion's.
    pub(crate) fn describe(&self) -> String {
        let level = if self.level == CONVERSION_ZSTD_LEVEL {
            String::new()
        } else {
            format!(" at zstd level {}", self.level)
        };
        format!(
            "floor {:.3} s (inflate {:.3} s + zstd {:.3} s + sha256 {:.3} s) / {} cores{level}",
            self.total().as_secs_f64(),
            self.inflate.as_secs_f64(),
            self.zstd.as_secs_f64(),
            self.sha256.as_secs_f64(),
            self.cores
        )
    }

    /// What was measured: chunks and bytes of each part.
    pub(crate) fn sizes(&self) -> String {
        let mb = |b: u64| b as f64 / 1e6;
        format!(
            "{} chunks inflated to {:.1} MB; {} pages, {:.1} MB → {:.1} MB at zstd level {} (the shards hold {:.1} MB, hashed)",
            self.chunks,
            mb(self.inflated_bytes),
            self.pages,
            mb(self.page_bytes),
            mb(self.zstd_bytes),
            self.level,
            mb(self.shard_bytes)
        )
    }

    /// `; NAME Y s = Z % of the floor (the floor is W % of it)`, for a conversion that took
    /// `took`.
    pub(crate) fn compare(&self, name: &str, took: Duration) -> String {
        let (f, t) = (self.total().as_secs_f64(), took.as_secs_f64());
        format!(
            "{}; {name} {t:.3} s = {:.0} % of the floor (the floor is {:.1} % of it)",
            self.describe(),
            100.0 * t / f,
            100.0 * f / t
        )
    }
}

/// Cores the floor's work is divided by: those this process may run on.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The zstd levels to measure: the conversion's, and `MSMS_BENCH_ZSTD_LEVEL` when it names
/// another.
pub(crate) fn levels() -> Vec<i32> {
    let mut levels = vec![CONVERSION_ZSTD_LEVEL];
    if let Some(l) = std::env::var("MSMS_BENCH_ZSTD_LEVEL")
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    {
        if l != CONVERSION_ZSTD_LEVEL {
            levels.push(l);
        }
    }
    levels
}

/// The `.parquet` files under `root` (any depth), sorted.
pub(crate) fn shards_under(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out.sort();
    out
}

/// The floor of converting `input` into `shards` (a conversion's output), at each zstd level
/// of `levels`; each part the fastest of `runs`. Inflate and SHA-256 are measured once and
/// shared by every level.
pub(crate) fn measure(input: &Path, shards: &[PathBuf], levels: &[i32], runs: usize) -> Vec<Floor> {
    assert!(!shards.is_empty(), "no shard to measure the floor with");
    let runs = runs.max(1);
    let mut inflate = Duration::MAX;
    let mut totals = None;
    for _ in 0..runs {
        let t = Instant::now();
        let got = msms_shards::read::inflate_all_chunks(input).expect("inflate every chunk");
        inflate = inflate.min(t.elapsed());
        totals = Some(got);
    }
    let totals = totals.expect("one run");

    let files: Vec<Vec<u8>> = shards
        .iter()
        .map(|p| std::fs::read(p).expect("read shard"))
        .collect();
    let mut sha256 = Duration::MAX;
    for _ in 0..runs {
        let t = Instant::now();
        for f in &files {
            std::hint::black_box(Sha256::digest(f));
        }
        sha256 = sha256.min(t.elapsed());
    }
    let shard_bytes = files.iter().map(|f| f.len() as u64).sum();
    drop(files);

    let pages = uncompressed_pages(shards);
    let page_bytes = pages.iter().map(|p| p.len() as u64).sum();
    levels
        .iter()
        .map(|&level| {
            let (mut zstd, mut zstd_bytes) = (Duration::MAX, 0);
            for _ in 0..runs {
                let (t, b) = compress_pages(&pages, level);
                zstd = zstd.min(t);
                zstd_bytes = b;
            }
            Floor {
                inflate,
                zstd,
                sha256,
                level,
                cores: cores(),
                chunks: totals.chunks,
                inflated_bytes: totals.bytes_out,
                pages: pages.len(),
                page_bytes,
                zstd_bytes,
                shard_bytes,
            }
        })
        .collect()
}

/// Compress every page on its own with one reused zstd context at `level`: the time taken
/// and the compressed bytes.
fn compress_pages(pages: &[Bytes], level: i32) -> (Duration, u64) {
    let mut c = zstd::bulk::Compressor::new(level).expect("zstd context");
    let largest = pages.iter().map(Bytes::len).max().unwrap_or(0);
    let mut out = vec![0u8; zstd::zstd_safe::compress_bound(largest)];
    let mut bytes = 0u64;
    let t = Instant::now();
    for p in pages {
        bytes += c.compress_to_buffer(p, &mut out).expect("zstd") as u64;
    }
    (t.elapsed(), bytes)
}

/// The encoded Parquet pages of `shards`, uncompressed: the bytes a conversion hands to its
/// codec, one entry per page (dictionary and data pages).
///
/// Stand-in until `build-shards` can write uncompressed shards (`--compression none`,
/// issue #13): each shard is read back row group by row group and re-encoded in memory with
/// the conversion's own writer properties (`msms_shards::write::writer_properties`) with
/// compression off. That gives the conversion's pages: the same row groups, encodings and
/// page boundaries (parquet-rs cuts pages by their uncompressed size, whatever the codec).
/// Once the option exists, convert once with it (`Layer { compression: .. }`) and read the
/// pages of those shards here instead of re-encoding.
pub(crate) fn uncompressed_pages(shards: &[PathBuf]) -> Vec<Bytes> {
    let mut pages = Vec::new();
    for shard in shards {
        let file = Bytes::from(reencode_uncompressed(shard));
        let reader = SerializedFileReader::new(file).expect("read the re-encoded shard");
        for rg in 0..reader.num_row_groups() {
            let row_group = reader.get_row_group(rg).expect("row group");
            for col in 0..row_group.num_columns() {
                for page in row_group.get_column_page_reader(col).expect("pages") {
                    pages.push(page.expect("page").buffer().clone());
                }
            }
        }
    }
    pages
}

/// `shard` re-encoded with the conversion's writer properties and no compression.
fn reencode_uncompressed(shard: &Path) -> Vec<u8> {
    let open = || File::open(shard).expect("open shard");
    let builder = ParquetRecordBatchReaderBuilder::try_new(open()).expect("read shard");
    let schema = builder.schema().clone();
    let meta = builder.metadata().clone();
    let config_hash = meta
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == "msms_shards.config_hash"))
        .and_then(|k| k.value.clone())
        .unwrap_or_default();
    let props = msms_shards::write::writer_properties(&schema, &config_hash);
    let props = (*props)
        .clone()
        .into_builder()
        .set_compression(Compression::UNCOMPRESSED)
        .build();
    let mut w = ArrowWriter::try_new(Vec::new(), schema, Some(props)).expect("writer");
    for rg in 0..meta.num_row_groups() {
        let rows = meta.row_group(rg).num_rows() as usize;
        let reader = ParquetRecordBatchReaderBuilder::try_new(open())
            .expect("read shard")
            .with_row_groups(vec![rg])
            .with_batch_size(rows.max(1))
            .build()
            .expect("row group reader");
        for batch in reader {
            w.write(&batch.expect("batch")).expect("re-encode");
        }
        // One row group per row group of the shard.
        w.flush().expect("flush row group");
    }
    w.into_inner().expect("finish")
}
