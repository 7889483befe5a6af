//! How long msms's own chunk decoders take to undo a file's filters (issue #16's filter
//! measurement): `cargo run --release --example decode_time -- FILE.h5 [RUNS]` decodes every
//! stored chunk of every dataset the mapped path reads, on one thread
//! (`msms_shards::read::inflate_all_chunks`), and prints the fastest of RUNS (default 3) as
//! `decode_s=… raw_bytes=… stored_bytes=…` (raw: the decoded bytes). `benches/reference/filters_read.py` compares it
//! with h5py (and hdf5plugin) reading the same file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first().map(PathBuf::from) else {
        eprintln!("usage: decode_time FILE.h5 [RUNS]");
        return ExitCode::from(2);
    };
    let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(3);
    let mut best = f64::INFINITY;
    let mut totals = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        match msms_shards::read::inflate_all_chunks(&path) {
            Ok(got) => totals = Some(got),
            Err(e) => {
                eprintln!("decode_time: {e}");
                return ExitCode::from(1);
            }
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    let t = totals.expect("at least one run");
    println!(
        "decode_s={best:.4} raw_bytes={} stored_bytes={}",
        t.bytes_out, t.stored_bytes
    );
    ExitCode::SUCCESS
}
