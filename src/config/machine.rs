//! Facts about the machine that choose a profile: memory from /proc/meminfo, the suggested mode.

use crate::config::Mode;

/// Fewest usable cores for which [`suggest_mode`] suggests `production`.
pub(crate) const PRODUCTION_MIN_CORES: usize = 16;

/// Least total memory (bytes) for which [`suggest_mode`] suggests `production`.
pub(crate) const PRODUCTION_MIN_MEMORY: u64 = 32 << 30;

/// The mode suggested for a machine: `production` with at least [`PRODUCTION_MIN_CORES`]
/// usable cores and [`PRODUCTION_MIN_MEMORY`] of memory, else `local`. Unknown memory counts
/// as too little.
pub(crate) fn suggest_mode(cores: usize, total_memory: Option<u64>) -> Mode {
    if cores >= PRODUCTION_MIN_CORES && total_memory.is_some_and(|m| m >= PRODUCTION_MIN_MEMORY) {
        Mode::Production
    } else {
        Mode::Local
    }
}

/// (`MemTotal`, `MemAvailable`) in bytes from /proc/meminfo text.
pub(crate) fn parse_meminfo(text: &str) -> (Option<u64>, Option<u64>) {
    let field = |key: &str| {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(key)?.strip_prefix(':')?;
            let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kb.saturating_mul(1024))
        })
    };
    (field("MemTotal"), field("MemAvailable"))
}
