//! `msms doctor`: what this machine offers a run, and what would stop one.
//!
//! Reports the linked libhdf5, the SIMD level compiled into the kernels, the usable cores and
//! their NUMA nodes, memory, and at an output root: the file system, free space, whether files
//! can be created there and whether shards would be written with `O_DIRECT`. It suggests a
//! mode by a fixed rule ([`suggest_mode`]) and shows the profile that mode resolves to here
//! (environment variables applied, as `build-shards` would).
//!
//! [`diagnose`] returns a [`Report`]; `crate::cli::doctor` prints it. Problems that would stop
//! a run ([`Report::problems`]) make the exit code 1, each on its own line; everything else
//! is information or a warning.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::machine::{
    available_memory, cgroup_memory, memory_needed, nearest_existing, read_meminfo, statfs,
    suggest_mode, PRODUCTION_MIN_CORES, PRODUCTION_MIN_MEMORY,
};
use crate::config::{ConfigError, Layer, Mode, Profile, Settings};
use crate::run::affinity::Topology;
use crate::text::human_bytes as decimal;

/// Free space needed at the output root, in shard sizes: one shard being written as `.tmp`
/// and one more so that the disk is not filled by the first.
pub(crate) const FREE_SPACE_SHARDS: u64 = 2;

/// Everything `msms doctor` found.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// True when nothing blocks a run (`problems` is empty).
    pub(crate) ok: bool,
    /// This build's version.
    pub(crate) msms_version: String,
    /// The linked libhdf5's version, e.g. `1.14.6`.
    pub hdf5_version: String,
    /// SIMD levels: compiled in, and the widest this CPU has.
    pub(crate) simd: Simd,
    /// Usable cores and their NUMA nodes.
    pub(crate) cpu: Cpu,
    /// Memory.
    pub(crate) memory: Memory,
    /// The output root's checks.
    pub(crate) output_root: OutputRoot,
    /// The suggested and the checked mode.
    pub(crate) mode: ModeChoice,
    /// The checked mode's profile, as resolved on this machine.
    pub(crate) profile: ProfileReport,
    /// Reasons a run would fail; empty when none.
    pub(crate) problems: Vec<String>,
    /// Things worth knowing that do not stop a run.
    pub(crate) warnings: Vec<String>,
}

/// SIMD levels.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Simd {
    /// What `wide` was compiled for (`msms --version` prints the same).
    pub(crate) compiled: String,
    /// The widest level this CPU reports at run time.
    pub(crate) cpu_supports: String,
}

/// Cores.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Cpu {
    /// `std::thread::available_parallelism` (affinity mask and cgroup quota applied): the
    /// number profiles are computed from.
    pub(crate) available_parallelism: usize,
    /// CPU ids per NUMA node, restricted to this process's affinity mask.
    pub(crate) numa_nodes: Vec<Vec<usize>>,
}

/// Memory, in bytes.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Memory {
    /// `MemTotal` of /proc/meminfo, or the cgroup limit when lower.
    pub(crate) total_bytes: Option<u64>,
    /// `MemAvailable` of /proc/meminfo, or what the cgroup limit leaves when lower.
    pub(crate) available_bytes: Option<u64>,
    /// The cgroup v2 `memory.max` of this process, when it sets one.
    pub(crate) cgroup_limit_bytes: Option<u64>,
    /// Estimated need of a run in the checked mode.
    pub(crate) needed_bytes: u64,
}

/// Checks at the output root.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OutputRoot {
    /// The root as given (or defaulted).
    pub(crate) path: PathBuf,
    /// Where the default came from when no --output-root was given.
    pub(crate) source: &'static str,
    /// Whether the root exists as a directory.
    pub(crate) exists: bool,
    /// The root, or the parent of it, that is a file: nothing can be created there.
    pub(crate) not_a_directory: Option<PathBuf>,
    /// The directory checked: the root, or its nearest existing parent.
    pub(crate) checked_path: PathBuf,
    /// Whether the root exists and holds entries (build-shards then needs --overwrite or
    /// --resume).
    pub(crate) not_empty: bool,
    /// Whether the root holds a checkpoint of an interrupted run (`.msms/checkpoint.json`).
    pub(crate) checkpoint: bool,
    /// Whether the root holds a finished run's manifest (`_manifest.json`, or a format-1
    /// run's `manifest.json`).
    pub(crate) manifest: bool,
    /// File system type, e.g. `ext2/3/4`, `xfs`, `tmpfs`, or its magic number in hex.
    pub(crate) filesystem: Option<String>,
    /// Bytes free for an unprivileged writer (`f_bavail * f_frsize`).
    pub(crate) free_bytes: Option<u64>,
    /// Size of the file system.
    pub(crate) total_bytes: Option<u64>,
    /// Bytes free needed by the checked mode: 2 x shard size.
    pub(crate) needed_bytes: u64,
    /// Whether a file could be created and removed there.
    pub(crate) writable: bool,
    /// `direct` (shards bypass the page cache), `buffered` (O_DIRECT refused; shards fall
    /// back to ordinary writes) or `unknown` (not writable).
    pub(crate) o_direct: String,
    /// The soft file-size limit (`ulimit -f`) in bytes, when there is one.
    pub(crate) file_size_limit_bytes: Option<u64>,
}

/// Which mode, and why.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ModeChoice {
    /// What [`suggest_mode`] gives for this machine.
    pub(crate) suggested: String,
    /// The mode checked: --mode if given, else the suggestion.
    pub(crate) checked: String,
    /// The mode `build-shards` uses without --mode here (MSMS_MODE if set, else local).
    pub(crate) build_shards_default: String,
    /// The rule, in words.
    pub(crate) rule: String,
}

/// A resolved profile.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProfileReport {
    /// Worker threads.
    pub(crate) num_workers: usize,
    /// Shard writer threads.
    pub(crate) writers: usize,
    /// Largest shard, as written in configs (`1GB`).
    pub(crate) shard_size: String,
    /// Largest shard in bytes.
    pub(crate) shard_size_bytes: u64,
    /// Spectra per read unit and row group.
    pub(crate) batch_size: usize,
    /// Spectra between checkpoint updates.
    pub(crate) checkpoint_interval: usize,
    /// MSMS_* variables that changed the mode's defaults.
    pub(crate) env_overrides: Vec<String>,
}

/// Findings that block a run (`problems`) and those that do not (`warnings`).
#[derive(Default)]
struct Findings {
    problems: Vec<String>,
    warnings: Vec<String>,
}

/// Runs every check: at `output_root` (default: `$MSMS_OUTPUT_ROOT`, else the current
/// directory), for `mode` (default: the suggested one). `env` are the environment variables
/// (`std::env::vars()`).
pub(crate) fn diagnose(
    output_root: Option<&Path>,
    mode: Option<Mode>,
    env: &[(String, String)],
) -> Report {
    let mut found = Findings::default();
    let simd = check_simd(&mut found);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let topo = Topology::detect();
    let cpu = Cpu {
        available_parallelism: cores,
        numa_nodes: topo.nodes.clone(),
    };
    let mut memory = read_memory();

    // Mode and profile.
    let suggested = suggest_mode(cores, memory.total_bytes);
    let checked = mode.unwrap_or(suggested);
    let env_layer = Layer::from_env(env.iter().cloned());
    let env_mode = env_layer.as_ref().ok().and_then(|l| l.mode);
    let (profile, env_overrides) = resolve_profile(checked, cores, &env_layer, &mut found);
    memory.needed_bytes = memory_needed(&profile);
    check_memory(&memory, checked, &profile, &mut found);

    let (root, source) = root_to_check(output_root, env);
    let output_root = check_root(&root, source, checked, &profile, &mut found);

    let mode = ModeChoice {
        suggested: suggested.as_str().into(),
        checked: checked.as_str().into(),
        build_shards_default: env_mode.unwrap_or_default().as_str().into(),
        rule: format!(
            "production when at least {PRODUCTION_MIN_CORES} usable cores and {} GiB of memory, else local",
            PRODUCTION_MIN_MEMORY >> 30
        ),
    };

    Report {
        ok: found.problems.is_empty(),
        msms_version: env!("CARGO_PKG_VERSION").into(),
        hdf5_version: crate::read::h5::library_version(),
        simd,
        cpu,
        memory,
        output_root,
        mode,
        profile: ProfileReport {
            num_workers: profile.num_workers,
            writers: profile.writers,
            shard_size: profile.shard_size.to_string(),
            shard_size_bytes: profile.shard_size.bytes(),
            batch_size: profile.batch_size,
            checkpoint_interval: profile.checkpoint_interval,
            env_overrides,
        },
        problems: found.problems,
        warnings: found.warnings,
    }
}

/// The SIMD level compiled in and the CPU's; a warning when the CPU has a wider one.
fn check_simd(found: &mut Findings) -> Simd {
    let simd = Simd {
        compiled: msms_kernels::simd_level().to_string(),
        cpu_supports: cpu_simd_level().to_string(),
    };
    if simd.compiled != simd.cpu_supports
        && simd_rank(&simd.cpu_supports) > simd_rank(&simd.compiled)
    {
        found.warnings.push(format!(
            "the kernels were compiled for {} but this CPU has {}: build with RUSTFLAGS=\"-C target-cpu=native\" to use it",
            simd.compiled, simd.cpu_supports
        ));
    }
    simd
}

/// Memory total and available from /proc/meminfo, lowered to a cgroup limit when there is
/// one (`needed_bytes` is left 0).
fn read_memory() -> Memory {
    let (mem_total, mem_available) = read_meminfo();
    let cgroup = cgroup_memory();
    let cgroup_limit = cgroup.map(|(limit, _)| limit);
    let total = match (mem_total, cgroup_limit) {
        (Some(t), Some(l)) => Some(t.min(l)),
        (t, l) => t.or(l),
    };
    let available = available_memory(mem_available, cgroup);
    Memory {
        total_bytes: total,
        available_bytes: available,
        cgroup_limit_bytes: cgroup_limit,
        needed_bytes: 0,
    }
}

/// The profile `checked` resolves to here with the environment applied (its defaults when
/// the environment is invalid: a problem), and the MSMS_* variables that changed it.
fn resolve_profile(
    checked: Mode,
    cores: usize,
    env_layer: &Result<Layer, ConfigError>,
    found: &mut Findings,
) -> (Profile, Vec<String>) {
    let defaults = Profile::for_mode(checked, cores);
    let profile = match env_layer {
        Ok(env_layer) => {
            let cli = Layer {
                mode: Some(checked),
                ..Layer::default()
            };
            match Settings::resolve(&cli, None, env_layer, cores) {
                Ok(s) => s.profile,
                Err(e) => {
                    found
                        .problems
                        .push(format!("environment: {}", crate::text::error_chain(&e)));
                    defaults
                }
            }
        }
        Err(e) => {
            found
                .problems
                .push(format!("environment: {}", crate::text::error_chain(e)));
            defaults
        }
    };
    let mut env_overrides = Vec::new();
    for (name, changed) in [
        (
            "MSMS_NUM_WORKERS",
            profile.num_workers != defaults.num_workers,
        ),
        ("MSMS_WRITERS", profile.writers != defaults.writers),
        ("MSMS_SHARD_SIZE", profile.shard_size != defaults.shard_size),
        ("MSMS_BATCH_SIZE", profile.batch_size != defaults.batch_size),
        (
            "MSMS_CHECKPOINT_INTERVAL",
            profile.checkpoint_interval != defaults.checkpoint_interval,
        ),
    ] {
        if changed {
            env_overrides.push(name.to_string());
        }
    }
    (profile, env_overrides)
}

/// A problem when the available memory is below what a `checked` run needs.
fn check_memory(memory: &Memory, checked: Mode, profile: &Profile, found: &mut Findings) {
    let needed_memory = memory.needed_bytes;
    if let Some(a) = memory.available_bytes {
        if a < needed_memory {
            found.problems.push(format!(
                "memory: only {} available; a {} run with {} workers and batches of {} needs about {} (256 MiB + workers x batch x 8 KiB): use --mode local, fewer --num-workers or a smaller --batch-size",
                gib(a),
                checked.as_str(),
                profile.num_workers,
                profile.batch_size,
                gib(needed_memory)
            ));
        }
    } else {
        found
            .warnings
            .push("memory: /proc/meminfo could not be read; available memory unknown".into());
    }
}

/// The output root to check and where it came from: `--output-root`, `MSMS_OUTPUT_ROOT` or
/// the current directory.
fn root_to_check(output_root: Option<&Path>, env: &[(String, String)]) -> (PathBuf, &'static str) {
    match output_root {
        Some(p) => (p.to_path_buf(), "--output-root"),
        None => match env
            .iter()
            .find(|(k, v)| k == "MSMS_OUTPUT_ROOT" && !v.trim().is_empty())
        {
            Some((_, v)) => (PathBuf::from(v.trim()), "MSMS_OUTPUT_ROOT"),
            None => (PathBuf::from("."), "current directory"),
        },
    }
}

/// The output root's checks; blocking findings go to `found.problems`.
fn check_root(
    root: &Path,
    source: &'static str,
    mode: Mode,
    profile: &Profile,
    found: &mut Findings,
) -> OutputRoot {
    let shard = profile.shard_size.bytes();
    let needed = shard.saturating_mul(FREE_SPACE_SHARDS);
    let (checked, meta) = nearest_existing(root);
    let is_dir = meta.as_ref().is_some_and(|m| m.is_dir());
    let exists = is_dir && checked == root;
    let mut out = OutputRoot {
        path: root.to_path_buf(),
        source,
        exists,
        not_a_directory: None,
        checked_path: checked.clone(),
        not_empty: false,
        checkpoint: false,
        manifest: false,
        filesystem: None,
        free_bytes: None,
        total_bytes: None,
        needed_bytes: needed,
        writable: false,
        o_direct: "unknown".into(),
        file_size_limit_bytes: file_size_limit(),
    };
    if let Some(limit) = out.file_size_limit_bytes {
        if limit < shard {
            found.problems.push(format!(
                "file-size limit (ulimit -f) is {}, below the shard size {}: raise it or use a smaller --shard-size",
                decimal(limit),
                profile.shard_size
            ));
        }
    }
    if meta.is_some() && !is_dir {
        out.not_a_directory = Some(checked.clone());
        found.problems.push(if checked == root {
            format!("output root {}: is a file, not a directory", root.display())
        } else {
            format!(
                "output root {}: {} is a file, not a directory, so the root cannot be created",
                root.display(),
                checked.display()
            )
        });
        return out;
    }
    if meta.is_none() {
        found.problems.push(format!(
            "output root {}: no part of the path can be read",
            root.display()
        ));
        return out;
    }
    if exists {
        check_contents(root, &mut out, found);
    }
    check_space(&mut out, mode, profile, found);
    check_writable(&mut out, found);
    out
}

/// What an existing root holds: a warning for an interrupted run or other entries.
fn check_contents(root: &Path, out: &mut OutputRoot, found: &mut Findings) {
    out.not_empty = std::fs::read_dir(root).is_ok_and(|mut d| d.next().is_some());
    out.checkpoint = crate::format::checkpoint::path(root).is_file();
    out.manifest = crate::format::manifest::find_manifest(root).is_some_and(|p| p.is_file());
    let format = crate::format::manifest::FORMAT_VERSION;
    let other_format = out
        .checkpoint
        .then(|| crate::run::other_format_checkpoint(root))
        .flatten();
    if let Some(v) = other_format {
        found.warnings.push(format!(
            "output root {} holds an interrupted run of output format {v}, which this msms (format {format}) cannot resume: start over with --overwrite",
            root.display()
        ));
    } else if out.checkpoint {
        found.warnings.push(format!(
            "output root {} holds an interrupted run: continue it with --resume, or start over with --overwrite",
            root.display()
        ));
    } else if out.not_empty {
        found.warnings.push(format!(
            "output root {} is not empty: build-shards needs --overwrite there (an earlier run's output is replaced, other files stay)",
            root.display()
        ));
    }
}

/// File system and free space at the checked directory; a problem when below the need.
fn check_space(out: &mut OutputRoot, mode: Mode, profile: &Profile, found: &mut Findings) {
    let Some((fs_type, free, total)) = statfs(&out.checked_path) else {
        return;
    };
    out.filesystem = Some(fs_name(fs_type));
    out.free_bytes = Some(free);
    out.total_bytes = Some(total);
    if free < out.needed_bytes {
        found.problems.push(format!(
            "output root {}: only {} free at {}; a {} run needs at least {} (2 x its shard size {}): free space, choose another root or a smaller --shard-size",
            out.path.display(),
            decimal(free),
            out.checked_path.display(),
            mode.as_str(),
            decimal(out.needed_bytes),
            profile.shard_size
        ));
    }
}

/// Whether a file can be created at the checked directory, and written with `O_DIRECT`.
fn check_writable(out: &mut OutputRoot, found: &mut Findings) {
    match probe_writable(&out.checked_path) {
        Ok(direct) => {
            out.writable = true;
            out.o_direct = if direct { "direct" } else { "buffered" }.into();
            if !direct {
                found.warnings.push(format!(
                    "O_DIRECT is refused at {}: shards are written through the page cache (same bytes, more CPU and cache pressure)",
                    out.checked_path.display()
                ));
            }
        }
        Err(e) => found.problems.push(format!(
            "output root {}: cannot create a file in {}: {e}",
            out.path.display(),
            out.checked_path.display()
        )),
    }
}

/// Creates and removes a probe file in `dir`; `Ok(true)` when an `O_DIRECT` write of one
/// aligned block also worked there (as [`crate::write::direct::ShardFile`] would write).
fn probe_writable(dir: &Path) -> io::Result<bool> {
    let name = |what: &str| {
        dir.join(format!(
            ".msms-doctor-{what}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ))
    };
    let plain = name("probe");
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&plain)?;
        let written = f.write_all(b"msms doctor probe\n");
        let _ = std::fs::remove_file(&plain);
        written?;
    }
    let direct = name("direct");
    let result = probe_direct(&direct);
    let _ = std::fs::remove_file(&direct);
    Ok(result)
}

/// One block, aligned as `O_DIRECT` needs.
#[repr(C, align(4096))]
struct Block([u8; 4096]);

fn probe_direct(path: &Path) -> bool {
    let file: File = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(f) => f,
        Err(_) => return false,
    };
    let block = Box::new(Block([0x5a; 4096]));
    file.write_all_at(&block.0, 0).is_ok()
}

/// A file system's name from its `statfs` magic number.
fn fs_name(magic: i64) -> String {
    let name = match magic as u32 {
        0xEF53 => "ext2/3/4",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794C_7630 => "overlayfs",
        0x6969 => "nfs",
        0x6573_5546 => "fuse",
        0x2FC1_2FC1 => "zfs",
        0xFF53_4D42 => "cifs",
        0xFE53_4D42 => "smb2",
        0x00C3_6400 => "ceph",
        0x0BD0_0BD0 => "lustre",
        0x4750_4653 => "gpfs",
        0xF2F5_2010 => "f2fs",
        0x0102_1997 => "9p",
        0x4D44 => "vfat",
        0x2011_BAB0 => "exfat",
        0x5346_544E => "ntfs",
        _ => return format!("type 0x{:x}", magic as u32),
    };
    name.into()
}

/// The soft `RLIMIT_FSIZE` in bytes, or `None` when unlimited.
fn file_size_limit() -> Option<u64> {
    // SAFETY: all-zero is a valid `rlimit`.
    let mut r: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `r` is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut r) } != 0
        || r.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    Some(r.rlim_cur as u64)
}

/// The widest SIMD level this CPU reports, in the names of [`msms_kernels::simd_level`].
fn cpu_simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            "avx512f"
        } else if std::arch::is_x86_feature_detected!("avx2") {
            "avx2"
        } else if std::arch::is_x86_feature_detected!("avx") {
            "avx"
        } else if std::arch::is_x86_feature_detected!("sse4.1") {
            "sse4.1"
        } else {
            "sse2"
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        "neon"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        msms_kernels::simd_level()
    }
}

/// Order of SIMD levels, widest highest.
fn simd_rank(level: &str) -> u8 {
    match level {
        "avx512f" => 6,
        "avx2" => 5,
        "avx" => 4,
        "sse4.1" => 3,
        "sse2" | "neon" | "simd128" => 2,
        _ => 1,
    }
}

/// `12.3 GiB` (binary units, for memory).
pub(crate) fn gib(b: u64) -> String {
    let g = b as f64 / (1u64 << 30) as f64;
    if g >= 1.0 {
        format!("{g:.1} GiB")
    } else {
        format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_estimate_grows_with_workers_and_batch() {
        // Worked out by hand from the documented figures: a base of 256 MiB (268,435,456
        // bytes) plus workers × batch spectra × 8 KiB (8,192 bytes).
        // Local on 2 cores: 2 workers × 1,000 spectra × 8,192 = 16,384,000.
        assert_eq!(
            memory_needed(&Profile::for_mode(Mode::Local, 2)),
            284_819_456
        );
        // Local on 48 cores: at most 4 workers × 1,000 × 8,192 = 32,768,000.
        assert_eq!(
            memory_needed(&Profile::for_mode(Mode::Local, 48)),
            301_203_456
        );
        // Production on 64 cores: 64 workers × 10,000 × 8,192 = 5,242,880,000.
        assert_eq!(
            memory_needed(&Profile::for_mode(Mode::Production, 64)),
            5_511_315_456
        );
        // Absurd settings saturate instead of wrapping around.
        let mut huge = Profile::for_mode(Mode::Production, 64);
        huge.num_workers = usize::MAX;
        assert_eq!(memory_needed(&huge), u64::MAX);
    }

    #[test]
    fn nearest_existing_walks_up_to_a_directory_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        let (p, m) = nearest_existing(&deep);
        assert_eq!(p, dir.path());
        assert!(m.unwrap().is_dir());
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let (p, m) = nearest_existing(&file.join("sub/root"));
        assert_eq!(p, file);
        assert!(m.unwrap().is_file());
        let (p, _) = nearest_existing(Path::new("no-such-dir-for-doctor/x"));
        assert_eq!(p, Path::new("."));
    }

    #[test]
    fn memory_below_the_need_blocks_a_run_and_unknown_memory_only_warns() {
        // A local profile of 2 workers and batches of 1000: 256 MiB + 2 x 1000 x 8 KiB =
        // 284,819,456 bytes, 271.6 MiB.
        let profile = Profile::for_mode(Mode::Local, 2);
        let memory = |available: Option<u64>| Memory {
            total_bytes: Some(1 << 30),
            available_bytes: available,
            cgroup_limit_bytes: None,
            needed_bytes: 284_819_456,
        };
        let check = |available: Option<u64>| {
            let mut found = Findings::default();
            check_memory(&memory(available), Mode::Local, &profile, &mut found);
            (found.problems, found.warnings)
        };
        assert_eq!(
            check(Some(100 << 20)),
            (
                vec!["memory: only 100 MiB available; a local run with 2 workers and batches of 1000 needs about 272 MiB (256 MiB + workers x batch x 8 KiB): use --mode local, fewer --num-workers or a smaller --batch-size".to_string()],
                vec![]
            )
        );
        assert_eq!(check(Some(284_819_455)).0.len(), 1, "one byte short blocks");
        assert_eq!(check(Some(284_819_456)), (vec![], vec![]), "just enough");
        assert_eq!(
            check(None),
            (
                vec![],
                vec![
                    "memory: /proc/meminfo could not be read; available memory unknown".to_string()
                ]
            )
        );
    }
}
