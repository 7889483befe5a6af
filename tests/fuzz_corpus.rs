//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the fuzz targets'
//! bodies, so that `cargo test` (and CI, which never builds the libFuzzer workspace under
//! `fuzz/`) checks every saved input against the same invariants the fuzzer does.
//!
//! The bodies are plain Rust in `fuzz/bodies/`, included here exactly as the cargo-fuzz
//! targets in `fuzz/fuzz_targets/` include them. A failing input is named in the panic
//! message; reproduce it with `cargo fuzz run --sanitizer none <target> <file>` (see
//! `fuzz/README.md`).

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../fuzz/bodies/chunk_decode.rs"]
mod chunk_decode;
#[path = "../fuzz/bodies/config_parse.rs"]
mod config_parse;
#[path = "../fuzz/bodies/spectrum_decode.rs"]
mod spectrum_decode;

/// Every file of `fuzz/corpus/<target>/`, sorted by name.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Run every corpus file of `target` through `run`; panic naming the first file that fails.
/// Returns the number of files replayed.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let files = corpus(target);
    for path in &files {
        let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| run(&data))) {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic payload)");
            panic!(
                "fuzz target {target} failed on corpus file {} ({} bytes): {message}",
                path.display(),
                data.len()
            );
        }
    }
    assert!(!files.is_empty(), "fuzz/corpus/{target}/ is empty");
    files.len()
}

#[test]
fn chunk_decode_corpus() {
    let n = replay("chunk_decode", chunk_decode::run);
    eprintln!("chunk_decode: replayed {n} corpus files");
}

#[test]
fn spectrum_decode_corpus() {
    let n = replay("spectrum_decode", spectrum_decode::run);
    eprintln!("spectrum_decode: replayed {n} corpus files");
}

#[test]
fn config_parse_corpus() {
    let n = replay("config_parse", config_parse::run);
    eprintln!("config_parse: replayed {n} corpus files");
}
