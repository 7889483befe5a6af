//! The floor of a conversion (issue #13): the work no conversion of an input can skip,
//! measured on one core and divided by the cores.
//!
//! - **inflate**: every stored chunk of every chunked dataset of the input, decoded by the
//!   conversion's own chunk decoder (`msms_shards::read::inflate_all_chunks`: the chunk index
//!   from `H5Dchunk_iter`, the memory map, libdeflate);
//! - **zstd**: every encoded Parquet page of the conversion compressed at the level the
//!   conversion uses (zstd level 1), one page at a time with one reused context
//!   (`zstd::bulk::Compressor`); the pages are those of the same conversion run once more with
//!   `compression: none` (default settings otherwise: the same row groups, encodings and page
//!   boundaries, which parquet-rs cuts by uncompressed size);
//! - **sha256**: the shard files hashed with SHA-256 (`sha2`, as the conversion), from memory.
//!
//! Each part is timed `runs` times on the calling thread and its fastest run kept. Used by
//! `benches/e2e.rs` and `examples/floor.rs` (which `scripts/bench-ratios.sh` runs).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use msms_shards::config::{Compression, Layer, Settings};
use msms_shards::read::Decode;
use msms_shards::run::{build_shards, detect_inputs, BuildOptions, Progress};
use parquet::file::reader::{FileReader, SerializedFileReader};
use sha2::{Digest, Sha256};

/// The zstd level of a conversion with default settings.
pub(crate) const CONVERSION_ZSTD_LEVEL: i32 = Compression::DEFAULT_ZSTD_LEVEL;

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

/// The floor of converting `input` into `shards` (the output of a conversion with default
/// settings), at each zstd level of `levels`; each part the fastest of `runs`. The pages to
/// compress come from one more conversion of `input`, uncompressed (2 workers, into a
/// temporary directory, read into memory). Inflate and SHA-256 (of `shards`) are measured
/// once and shared by every level.
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

    // The same conversion's pages, uncompressed: default settings, `--compression none`.
    let plain = tempfile::tempdir().expect("tempdir");
    convert(
        input,
        Some(plain.path()),
        2,
        Decode::Native,
        Some(Compression::None),
    );
    let pages = uncompressed_pages(&shards_under(plain.path()));
    drop(plain);
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

/// The encoded Parquet pages of `shards`, written without compression
/// (`--compression none`): the bytes a conversion hands to its codec, one entry per page
/// (dictionary and data pages).
pub(crate) fn uncompressed_pages(shards: &[PathBuf]) -> Vec<Bytes> {
    let mut pages = Vec::new();
    for shard in shards {
        let file = Bytes::from(std::fs::read(shard).expect("read shard"));
        let reader = SerializedFileReader::new(file).expect("read shard");
        for rg in 0..reader.num_row_groups() {
            let row_group = reader.get_row_group(rg).expect("row group");
            for col in 0..row_group.num_columns() {
                let codec = row_group.metadata().column(col).compression();
                assert_eq!(
                    codec,
                    parquet::basic::Compression::UNCOMPRESSED,
                    "{}",
                    shard.display()
                );
                for page in row_group.get_column_page_reader(col).expect("pages") {
                    pages.push(page.expect("page").buffer().clone());
                }
            }
        }
    }
    pages
}

/// Convert `input` with default settings but `workers`, `decode` and `compression` (the
/// default, zstd level 1, when `None`) into `out`, or as a dry run when `out` is `None`;
/// the number of spectra read.
pub(crate) fn convert(
    input: &Path,
    out: Option<&Path>,
    workers: usize,
    decode: Decode,
    compression: Option<Compression>,
) -> u64 {
    let cli = Layer {
        inputs: Some(vec![input.to_path_buf()]),
        num_workers: Some(workers),
        compression,
        ..Layer::default()
    };
    let s = Settings::resolve(&cli, None, &Layer::default(), 2).expect("settings");
    let mappings = detect_inputs(&s.inputs).expect("inputs");
    let opts = BuildOptions {
        output_root: out.map(Path::to_path_buf),
        settings: s,
        dry_run: out.is_none(),
        overwrite: true,
        progress: Progress::Quiet,
        decode,
        resume: false,
        skip_preflight: false,
        strict_columns: false,
        resume_command: None,
        metrics_file: None,
        stop: None,
        units: None,
    };
    build_shards(&opts, &mappings).expect("build").counts.read
}
