//! Test hook: stall points that let the crash-safety tests stop a run at a named moment.

/// Test hook for the crash-safety tests: when the environment variable `MSMS_TEST_STALL_AT`
/// equals `point`, print `msms: stalled at <point>` to stderr and sleep until killed. The
/// points are the moments a crash is most harmful: `shard-rename:K` (shard K written and
/// fsynced, not yet renamed), `shard-renamed:K` (renamed, not yet in the checkpoint),
/// `checkpoint-rename:N` (checkpoint with N shards written, not renamed), `manifest-rename`
/// and `manifest-renamed` (before and after the manifest's rename). `NAME:>=K` stalls at
/// the first `NAME:N` with `N >= K`: checkpoints are saved per batch of finalised shards, so
/// with several writers a given count may be skipped.
pub(crate) fn stall_point(point: &dyn Fn() -> String) {
    static WANT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let Some(want) = WANT.get_or_init(|| std::env::var("MSMS_TEST_STALL_AT").ok()) else {
        return;
    };
    let here = point();
    if stall_matches(want, &here) {
        eprintln!("msms: stalled at {want}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Whether the stall point `here` matches the wanted `want` (see [`stall_point`]).
fn stall_matches(want: &str, here: &str) -> bool {
    if want == here {
        return true;
    }
    let (Some((wname, wmin)), Some((hname, hn))) = (want.split_once(":>="), here.split_once(':'))
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
}
