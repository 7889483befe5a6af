//! cargo-fuzz entry point. The body, [`body::run`], is in `../bodies/chunk_decode.rs`, which
//! the root's `tests/fuzz_corpus.rs` also includes to replay `corpus/chunk_decode/` under
//! `cargo test`.

#![no_main]

#[path = "../bodies/chunk_decode.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
