//! Facts about the machine that choose a profile and that a run is checked against: memory
//! from /proc/meminfo and the cgroup, the suggested mode, the memory a profile needs, free
//! space at a path.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::config::{Mode, Profile};

/// Memory a run needs besides its batches (bytes): libraries, the writer's row group, the
/// chunk index.
pub(crate) const BASE_MEMORY: u64 = 256 << 20;
/// Memory per spectrum of each worker's batch (bytes): the decoded row, the transformed
/// peaks and their Arrow copy, with room to spare (a GeMS row is 2 KiB as float64).
pub(crate) const MEMORY_PER_BATCH_SPECTRUM: u64 = 8 << 10;

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

/// Estimated memory a run with `profile` needs: [`BASE_MEMORY`] + workers x batch size x
/// [`MEMORY_PER_BATCH_SPECTRUM`].
pub(crate) fn memory_needed(profile: &Profile) -> u64 {
    BASE_MEMORY.saturating_add(
        (profile.num_workers as u64)
            .saturating_mul(profile.batch_size as u64)
            .saturating_mul(MEMORY_PER_BATCH_SPECTRUM),
    )
}

/// `root` if it exists, else its nearest existing ancestor (`.` for a relative path with
/// none), with its metadata; `None` metadata when not even that can be read.
pub(crate) fn nearest_existing(root: &Path) -> (PathBuf, Option<std::fs::Metadata>) {
    let mut p = root.to_path_buf();
    loop {
        let probe = if p.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            p.clone()
        };
        if let Ok(m) = std::fs::metadata(&probe) {
            return (probe, Some(m));
        }
        match p.parent() {
            Some(parent) => p = parent.to_path_buf(),
            None => return (probe, None),
        }
    }
}

/// (f_type, bytes free to unprivileged users, total bytes) of the file system holding `path`.
pub(crate) fn statfs(path: &Path) -> Option<(i64, u64, u64)> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `statvfs`/`statfs` are plain C structs for which all-zero is a valid value.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `vfs` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut vfs) } != 0 {
        return None;
    }
    // SAFETY: as above.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `fs` a valid out-pointer.
    let fs_type = if unsafe { libc::statfs(c.as_ptr(), &mut fs) } == 0 {
        fs.f_type as i64
    } else {
        0
    };
    let frsize = vfs.f_frsize as u64;
    Some((
        fs_type,
        (vfs.f_bavail as u64).saturating_mul(frsize),
        (vfs.f_blocks as u64).saturating_mul(frsize),
    ))
}

/// Memory available: `MemAvailable`, lowered to what a cgroup's (limit, use) leaves when
/// that is less; whichever is known when only one is.
pub(crate) fn available_memory(
    mem_available: Option<u64>,
    cgroup: Option<(u64, u64)>,
) -> Option<u64> {
    match (mem_available, cgroup) {
        (Some(a), Some((limit, used))) => Some(a.min(limit.saturating_sub(used))),
        (a, c) => a.or(c.map(|(limit, used)| limit.saturating_sub(used))),
    }
}

/// (`MemTotal`, `MemAvailable`) of /proc/meminfo in bytes.
pub(crate) fn read_meminfo() -> (Option<u64>, Option<u64>) {
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
        return (None, None);
    };
    parse_meminfo(&text)
}

/// This process's cgroup v2 memory limit and use, when it has a limit.
pub(crate) fn cgroup_memory() -> Option<(u64, u64)> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
    let limit: u64 = std::fs::read_to_string(dir.join("memory.max"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let used = std::fs::read_to_string(dir.join("memory.current"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    Some((limit, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_production_only_with_enough_cores_and_memory() {
        assert_eq!(suggest_mode(2, Some(24 << 30)), Mode::Local);
        assert_eq!(suggest_mode(64, Some(16 << 30)), Mode::Local);
        assert_eq!(suggest_mode(8, Some(256 << 30)), Mode::Local);
        assert_eq!(suggest_mode(16, Some(32 << 30)), Mode::Production);
        assert_eq!(suggest_mode(64, None), Mode::Local);
    }

    #[test]
    fn parses_meminfo() {
        let text = "MemTotal:       24684084 kB\nMemFree:        12403964 kB\nMemAvailable:   23413144 kB\n";
        assert_eq!(
            parse_meminfo(text),
            (Some(24_684_084 * 1024), Some(23_413_144 * 1024))
        );
        assert_eq!(parse_meminfo("garbage"), (None, None));
    }
}
