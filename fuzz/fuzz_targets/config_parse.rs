//! cargo-fuzz entry point. The body, [`body::run`], is in `../bodies/config_parse.rs`, which
//! the root's `tests/fuzz_corpus.rs` also includes to replay `corpus/config_parse/` under
//! `cargo test`.

#![no_main]

#[path = "../bodies/config_parse.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
