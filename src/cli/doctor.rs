//! `msms doctor`: its flags, help text, exit codes and the report as printed (the checks
//! themselves are [`crate::commands::doctor`]).
//!
//! Problems that would stop a run make the exit code 1, each on its own line on stderr.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::PathBuf;

use crate::commands::doctor::{diagnose, gib, OutputRoot, Report};
use crate::config::Mode;
use crate::run::affinity::format_cpulist;
use crate::text::human_bytes as decimal;

/// Flags of `msms doctor`.
#[derive(Debug, clap::Args)]
pub(crate) struct DoctorArgs {
    /// Where shards would be written: file system, free space, whether files can be created
    /// and whether O_DIRECT works are checked there (for a directory that does not exist yet,
    /// at its nearest existing parent, where build-shards would create it). Default:
    /// $MSMS_OUTPUT_ROOT if set, else the current directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) output_root: Option<PathBuf>,
    /// Check for this mode (local, production or cloud) instead of the suggested one: its
    /// profile, the free space its shard size needs and the memory its workers need.
    #[arg(long, value_name = "MODE")]
    pub(crate) mode: Option<Mode>,
    /// Print the report as one JSON object on stdout (problems still go to stderr too).
    #[arg(long)]
    pub(crate) json: bool,
}

/// Text after `msms doctor --help`.
pub(crate) const AFTER_HELP: &str = "\
Checks (in this order): msms and libhdf5 versions; the SIMD level compiled into the kernels
(and whether this CPU has a wider one); usable cores (available_parallelism, NUMA nodes from
/sys); memory total and available (/proc/meminfo, a cgroup v2 limit if any); at the output
root: file system, free space (statvfs), whether a file can be created and removed, whether
O_DIRECT works (shards fall back to buffered writes where it does not), and the file-size
limit (ulimit -f).

Mode: build-shards uses local unless --mode (or MSMS_MODE, or mode: in a --config file) says
otherwise. Doctor suggests production when this machine has at least 16 usable cores and at
least 32 GiB of memory, local otherwise, and shows the profile that mode resolves to here
(MSMS_* variables applied).

A run is blocked (exit 1, one line per reason on stderr, `msms doctor: REASON`) when: the
output root or a parent is a file, or no file can be created there; free space there is
below 2 x the mode's shard size; available memory is below 256 MiB + workers x batch size
x 8 KiB; the file-size limit is below the shard size; an MSMS_* variable is invalid.
A non-empty output root, no O_DIRECT or a wider SIMD level left unused are warnings only.
Exit codes: 0 nothing blocks a run; 1 something does (each reason listed); 2 bad flags.

Examples:
  msms doctor --output-root /data/shards/c1
  msms doctor --mode production --json";

/// `msms doctor`: print the report; exit 0, or 1 when something blocks a run.
pub(crate) fn run(args: &DoctorArgs) -> i32 {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let report = diagnose(args.output_root.as_deref(), args.mode, &env);
    let text = if args.json {
        let mut s = serde_json::to_string_pretty(&report).expect("the report serialises");
        s.push('\n');
        s
    } else {
        render(&report)
    };
    let _ = io::stdout().write_all(text.as_bytes());
    let _ = io::stdout().flush();
    for p in &report.problems {
        eprintln!("msms doctor: {p}");
    }
    if report.ok {
        0
    } else {
        1
    }
}

/// The human-readable report.
pub(crate) fn render(r: &Report) -> String {
    let mut o = String::new();
    render_machine(&mut o, r);
    render_root(&mut o, &r.output_root);
    render_mode(&mut o, r);
    o
}

/// Versions, SIMD, cores and memory.
fn render_machine(o: &mut String, r: &Report) {
    let nodes = &r.cpu.numa_nodes;
    let node_text = nodes
        .iter()
        .enumerate()
        .map(|(i, cpus)| format!("node {i}: cpus {}", format_cpulist(cpus)))
        .collect::<Vec<_>>()
        .join("; ");
    let _ = writeln!(o, "msms doctor");
    let _ = writeln!(o, "  msms          {}", r.msms_version);
    let _ = writeln!(
        o,
        "  HDF5          libhdf5 {} (bundled, static)",
        r.hdf5_version
    );
    let _ = writeln!(
        o,
        "  SIMD          {} compiled in; this CPU has {}",
        r.simd.compiled, r.simd.cpu_supports
    );
    let _ = writeln!(
        o,
        "  cores         {} usable; {} NUMA node{} ({node_text})",
        r.cpu.available_parallelism,
        nodes.len(),
        if nodes.len() == 1 { "" } else { "s" }
    );
    let opt = |v: Option<u64>| v.map_or_else(|| "unknown".to_string(), gib);
    let _ = writeln!(
        o,
        "  memory        {} total, {} available{}; a run needs about {}",
        opt(r.memory.total_bytes),
        opt(r.memory.available_bytes),
        r.memory
            .cgroup_limit_bytes
            .map(|l| format!(" (cgroup limit {})", gib(l)))
            .unwrap_or_default(),
        gib(r.memory.needed_bytes)
    );
}

/// The output root: what is there, then (unless a file is in the way) its checks.
fn render_root(o: &mut String, root: &OutputRoot) {
    let _ = writeln!(
        o,
        "  output root   {} ({}{})",
        root.path.display(),
        root.source,
        if let Some(f) = &root.not_a_directory {
            format!("; {} is a file, not a directory", f.display())
        } else if root.exists {
            if root.checkpoint {
                "; exists, holds an interrupted run's checkpoint".to_string()
            } else if root.manifest {
                "; exists, holds a finished run".to_string()
            } else if root.not_empty {
                "; exists, not empty".to_string()
            } else {
                "; exists, empty".to_string()
            }
        } else {
            format!(
                "; does not exist: checked {}, where it would be created",
                root.checked_path.display()
            )
        }
    );
    if root.not_a_directory.is_none() {
        render_root_checks(o, root);
    }
}

/// The mode and its profile, the warnings, and the verdict.
fn render_mode(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "  mode          {}: {} (rule: {})",
        r.mode.checked,
        if r.mode.checked == r.mode.suggested {
            "suggested for this machine".to_string()
        } else {
            format!("from --mode; suggested here: {}", r.mode.suggested)
        },
        r.mode.rule
    );
    let _ = writeln!(
        o,
        "                msms build-shards uses {} unless --mode is given; doctor suggests {}",
        r.mode.build_shards_default, r.mode.suggested
    );
    let p = &r.profile;
    let _ = writeln!(
        o,
        "  profile       {}: {} workers, {} writer{}, shard size {}, batch {}, checkpoint every {} spectra{}",
        r.mode.checked,
        p.num_workers,
        p.writers,
        if p.writers == 1 { "" } else { "s" },
        p.shard_size,
        p.batch_size,
        p.checkpoint_interval,
        if p.env_overrides.is_empty() {
            String::new()
        } else {
            format!(" (set by {})", p.env_overrides.join(", "))
        }
    );
    for w in &r.warnings {
        let _ = writeln!(o, "  warning: {w}");
    }
    if r.ok {
        let _ = writeln!(
            o,
            "OK: nothing blocks a run (msms build-shards --mode {} ...)",
            r.mode.checked
        );
    } else {
        let _ = writeln!(
            o,
            "BLOCKED: {} problem{} (listed on stderr)",
            r.problems.len(),
            if r.problems.len() == 1 { "" } else { "s" }
        );
    }
}

fn render_root_checks(o: &mut String, root: &OutputRoot) {
    let _ = writeln!(
        o,
        "    file system {}",
        root.filesystem.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(
        o,
        "    free space  {} of {}; {} needed (2 x shard size)",
        root.free_bytes.map_or_else(|| "unknown".into(), decimal),
        root.total_bytes.map_or_else(|| "unknown".into(), decimal),
        decimal(root.needed_bytes)
    );
    let _ = writeln!(
        o,
        "    writable    {}",
        if root.writable { "yes" } else { "no" }
    );
    let _ = writeln!(
        o,
        "    O_DIRECT    {}",
        match root.o_direct.as_str() {
            "direct" => "yes: shards are written direct (bypassing the page cache)",
            "buffered" => "no: refused here, shards are written through the page cache",
            _ => "unknown (no file could be created)",
        }
    );
    if let Some(l) = root.file_size_limit_bytes {
        let _ = writeln!(o, "    ulimit -f   {}", decimal(l));
    }
}
