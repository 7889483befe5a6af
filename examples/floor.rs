//! The floor of a conversion (issue #13), outside criterion: `cargo run --release --example
//! floor -- INPUT.hdf5 SHARD_ROOT [RUNS]`, where SHARD_ROOT holds the shards of a conversion
//! of INPUT with default settings (hashed); the pages to compress come from converting INPUT
//! once more, uncompressed, into a temporary directory. Prints what was measured, the floor
//! (the same code as the floor of `benches/e2e.rs`, `benches/support/floor.rs`; each part the
//! fastest of RUNS, default 3), and a last line `floor_s=… inflate_s=… zstd_s=… sha256_s=…
//! cores=…` for scripts (`scripts/bench-ratios.sh`). `MSMS_BENCH_ZSTD_LEVEL=L` adds the floor
//! at zstd level L (printed before the last line, which is always level 1).

#[allow(dead_code)] // `compare` is for the bench
#[path = "../benches/support/floor.rs"]
mod floor;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, root, runs) = match args.as_slice() {
        [i, r] => (PathBuf::from(i), PathBuf::from(r), 3),
        [i, r, n] if n.parse::<usize>().is_ok() => {
            (PathBuf::from(i), PathBuf::from(r), n.parse().unwrap_or(3))
        }
        _ => {
            eprintln!("usage: floor INPUT.hdf5 SHARD_ROOT [RUNS]");
            return ExitCode::from(2);
        }
    };
    let shards = floor::shards_under(&root);
    if shards.is_empty() {
        eprintln!("floor: no .parquet file under {}", root.display());
        return ExitCode::from(2);
    }
    let floors = floor::measure(&input, &shards, &floor::levels(), runs);
    println!("{}", floors[0].sizes());
    for f in floors.iter().rev() {
        println!("{}", f.describe());
    }
    let f = &floors[0];
    println!(
        "floor_s={:.4} inflate_s={:.4} zstd_s={:.4} sha256_s={:.4} cores={}",
        f.total().as_secs_f64(),
        f.inflate.as_secs_f64(),
        f.zstd.as_secs_f64(),
        f.sha256.as_secs_f64(),
        f.cores
    );
    ExitCode::SUCCESS
}
