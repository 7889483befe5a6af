//! The SIMD level compiled into this build is the one the build was asked for.
//!
//! `wide` picks its instructions at compile time, so a build meant to exercise the AVX2 or
//! AVX-512 tiers (`RUSTFLAGS="-C target-cpu=x86-64-v3"` / `x86-64-v4`, as `scripts/test.sh`
//! does) could silently fall back to SSE2 if the flags were lost (another RUSTFLAGS source, a
//! cached build, a typo), and the property tests would then check the SSE2 tier twice.
//! `MSMS_EXPECT_SIMD` names the level the build must have (`sse2`, `avx2`, `avx512f`, ...:
//! the names of [`msms_kernels::simd_level`]). Unset, the test says so and what it found; with
//! `CI` set that is a failure, since CI must check every tier it claims.

use std::env;
use std::io::Write;

fn in_ci() -> bool {
    let ci = env::var("CI")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    !matches!(ci.as_str(), "" | "0" | "false" | "no")
}

#[test]
fn compiled_simd_level_is_the_expected_one() {
    let got = msms_kernels::simd_level();
    match env::var("MSMS_EXPECT_SIMD") {
        Ok(want) => assert_eq!(
            got, want,
            "msms-kernels was compiled for {got}, but MSMS_EXPECT_SIMD={want}: \
             the build's target-cpu did not reach the kernels (check RUSTFLAGS)"
        ),
        Err(_) if in_ci() => panic!(
            "MSMS_EXPECT_SIMD is not set (this build is {got}); CI must state the SIMD level \
             it tests (scripts/test.sh sets it)"
        ),
        // Written to the stderr handle, not with eprintln!, which the test harness captures
        // and hides for a passing test: the note must show in `cargo test`'s output.
        Err(_) => {
            let _ = writeln!(
                std::io::stderr(),
                "compiled_simd_level_is_the_expected_one: not checked (MSMS_EXPECT_SIMD unset); \
                 this build's SIMD level is {got}"
            );
        }
    }
}
