//! Test hook: stall points that let the crash-safety tests stop a run at a named moment.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// The stall point a test asked for, read once from the environment.
struct Want {
    /// `MSMS_TEST_STALL_AT`.
    point: String,
    /// `MSMS_TEST_STALL_RELEASE=stop`: a stop request (SIGINT/SIGTERM) ends the stall.
    release_on_stop: bool,
    /// `MSMS_TEST_STALL_RELEASE=file:PATH`: the stall ends once PATH exists.
    release_file: Option<std::path::PathBuf>,
}

/// The run's stop flag (set by the first SIGINT/SIGTERM), when it has one.
static STOP: OnceLock<&'static AtomicBool> = OnceLock::new();

/// Let a stalled thread see the run's stop flag (see [`stall_point`]).
pub(crate) fn watch_stop(flag: &'static AtomicBool) {
    let _ = STOP.set(flag);
}

fn stop_requested() -> bool {
    STOP.get().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// Test hook for the crash-safety tests: when the environment variable `MSMS_TEST_STALL_AT`
/// names `point`, print `msms: stalled at <wanted>` to stderr (followed by ` (<point>)` when
/// the two differ) and sleep until killed. The points are the moments a crash is most
/// harmful: `shard-bytes:K:B` (a row group appended to shard K, which now holds B bytes),
/// `shard-rename:K` (shard K written and fsynced, not yet renamed), `shard-renamed:K` (renamed,
/// not yet in the checkpoint), `checkpoint-rename:N` (checkpoint with N shards written, not
/// renamed), `manifest-rename` and `manifest-renamed` (before and after the manifest's
/// rename). `NAME:>=K` stalls at the first `NAME:N` with `N >= K` (`NAME` may hold colons:
/// `shard-bytes:3:>=100000` is "shard 3 holds at least 100000 bytes"): checkpoints are saved
/// per batch of finalised shards, so with several writers a given count may be skipped.
///
/// Once the run is asked to stop (SIGINT/SIGTERM, see [`watch_stop`]), a stalled thread
/// prints `msms: stop requested while stalled at <wanted>`; it then stalls on, unless
/// `MSMS_TEST_STALL_RELEASE=stop`, which lets it go on so that the run stops gracefully.
/// `MSMS_TEST_STALL_RELEASE=file:PATH` lets the run go on once PATH exists (a test's signal
/// that it has done what it wanted to do while the run was held); the point no longer stalls
/// after that.
/// Without `MSMS_TEST_STALL_AT` a stall point costs one atomic load.
pub(crate) fn stall_point(point: &dyn Fn() -> String) {
    static WANT: OnceLock<Option<Want>> = OnceLock::new();
    let want = WANT.get_or_init(|| {
        let release = std::env::var("MSMS_TEST_STALL_RELEASE").unwrap_or_default();
        std::env::var("MSMS_TEST_STALL_AT").ok().map(|point| Want {
            point,
            release_on_stop: release == "stop",
            release_file: release.strip_prefix("file:").map(Into::into),
        })
    });
    let Some(want) = want else {
        return;
    };
    let here = point();
    let released = || want.release_file.as_ref().is_some_and(|f| f.exists());
    if !stall_matches(&want.point, &here) || released() {
        return;
    }
    if here == want.point {
        eprintln!("msms: stalled at {}", want.point);
    } else {
        eprintln!("msms: stalled at {} ({here})", want.point);
    }
    loop {
        if stop_requested() {
            eprintln!("msms: stop requested while stalled at {}", want.point);
            if want.release_on_stop {
                return;
            }
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        if released() {
            eprintln!("msms: released at {}", want.point);
            return;
        }
        // Only a stop request or the release file can end the stall: look for them often.
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether the stall point `here` matches the wanted `want` (see [`stall_point`]).
fn stall_matches(want: &str, here: &str) -> bool {
    if want == here {
        return true;
    }
    let (Some((wname, wmin)), Some((hname, hn))) = (want.split_once(":>="), here.rsplit_once(':'))
    else {
        return false;
    };
    match (wmin.parse::<u64>(), hn.parse::<u64>()) {
        (Ok(min), Ok(n)) => wname == hname && n >= min,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_points_match_exactly_or_from_a_count_on() {
        assert!(stall_matches("checkpoint-rename:7", "checkpoint-rename:7"));
        assert!(!stall_matches("checkpoint-rename:7", "checkpoint-rename:8"));
        assert!(stall_matches(
            "checkpoint-rename:>=7",
            "checkpoint-rename:8"
        ));
        assert!(stall_matches(
            "checkpoint-rename:>=7",
            "checkpoint-rename:7"
        ));
        assert!(!stall_matches(
            "checkpoint-rename:>=7",
            "checkpoint-rename:6"
        ));
        assert!(!stall_matches("checkpoint-rename:>=7", "shard-rename:9"));
        assert!(!stall_matches("manifest-rename", "manifest-renamed"));
    }

    #[test]
    fn byte_counts_of_one_shard_match_from_a_count_on() {
        assert!(stall_matches("shard-bytes:3:>=1000", "shard-bytes:3:1000"));
        assert!(stall_matches(
            "shard-bytes:3:>=1000",
            "shard-bytes:3:250000"
        ));
        assert!(!stall_matches("shard-bytes:3:>=1000", "shard-bytes:3:999"));
        // Another shard, however many bytes it holds.
        assert!(!stall_matches(
            "shard-bytes:3:>=1000",
            "shard-bytes:13:5000"
        ));
        assert!(!stall_matches("shard-bytes:3:>=1000", "shard-bytes:2:5000"));
        // Another point with the same number.
        assert!(!stall_matches("shard-renamed:>=3", "shard-bytes:3:5000"));
        assert!(!stall_matches("shard-bytes:>=3", "shard-bytes:3:5000"));
        // Exactly.
        assert!(stall_matches("shard-bytes:3:4", "shard-bytes:3:4"));
        assert!(!stall_matches("shard-bytes:3:4", "shard-bytes:3:5"));
    }
}
