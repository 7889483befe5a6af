//! CPU pinning for worker threads.
//!
//! In **production** mode the pipeline pins each worker thread to one core so the scheduler
//! cannot migrate it (keeping caches warm and page allocations NUMA-local). Workers are grouped
//! by NUMA node: consecutive workers fill the cores of node 0 first, then node 1, and so on, so
//! workers that cooperate on neighbouring batches share a node's memory and last-level cache.
//! In **local** mode nothing is ever pinned: a developer machine runs other work too, and the
//! OS scheduler knows better there.
//!
//! The intended flow is:
//!
//! 1. [`Topology::detect`] once, on the main thread, *before* any thread is pinned (it reads the
//!    calling thread's affinity mask, which spawned threads inherit);
//! 2. [`plan`] to get the core for each worker index;
//! 3. [`pin_current_thread`] at the start of each worker, with that worker's core;
//! 4. [`describe`] for the one-line run summary.
//!
//! Pinning is Linux-only (`sched_setaffinity`); elsewhere [`Topology::detect`] reports one node
//! with `available_parallelism` CPUs and [`pin_current_thread`] returns
//! [`std::io::ErrorKind::Unsupported`].

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

/// Largest number of CPUs a single `a-b` range in a cpulist may expand to.
const MAX_RANGE_CPUS: usize = 65_536;

/// Largest number of CPUs a whole cpulist may expand to (counted before de-duplication).
const MAX_LIST_CPUS: usize = 65_536;

/// Where Linux describes NUMA nodes (`node0/cpulist`, `node1/cpulist`, …).
const SYSFS_NODE_DIR: &str = "/sys/devices/system/node";

/// Parses the Linux cpulist format (as in `/sys/devices/system/node/node0/cpulist`), for
/// example `"0-3,8,10-11\n"`, into a sorted, de-duplicated list of CPU ids.
///
/// Surrounding whitespace (including the trailing newline) and whitespace around items is
/// ignored; an empty or all-whitespace string is an empty list. Returns `None` on malformed
/// input: empty items (`"1,,2"`), non-decimal ids (`"a"`, `"+1"`), reversed ranges (`"3-1"`),
/// ids that overflow `usize`, a range of more than 65,536 CPUs, or a list expanding to more than
/// 65,536 CPUs in total, so hostile input cannot force an unbounded allocation.
pub(crate) fn parse_cpulist(s: &str) -> Option<Vec<usize>> {
    let s = s.trim();
    let mut cpus = Vec::new();
    if s.is_empty() {
        return Some(cpus);
    }
    for item in s.split(',') {
        let (lo, hi) = match item.split_once('-') {
            Some((lo, hi)) => (parse_cpu(lo)?, parse_cpu(hi)?),
            None => {
                let cpu = parse_cpu(item)?;
                (cpu, cpu)
            }
        };
        // `span` is the range length minus one, so `0-usize::MAX` cannot overflow.
        let span = hi.checked_sub(lo)?;
        if span >= MAX_RANGE_CPUS || cpus.len() + span >= MAX_LIST_CPUS {
            return None;
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Some(cpus)
}

/// Formats CPU ids compactly in the Linux cpulist format, the inverse of [`parse_cpulist`]:
/// `[0, 1, 2, 3, 8, 10, 11]` becomes `"0-3,8,10-11"`. The input need not be sorted or unique;
/// an empty input gives an empty string.
pub(crate) fn format_cpulist(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();

    let mut parts = Vec::new();
    let mut rest = sorted.as_slice();
    while let Some((&start, _)) = rest.split_first() {
        // Length of the run of consecutive ids beginning at `start`.
        let len = rest
            .iter()
            .enumerate()
            .take_while(|&(i, &cpu)| cpu - start == i)
            .count();
        let end = rest[len - 1];
        parts.push(if len == 1 {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        rest = &rest[len..];
    }
    parts.join(",")
}

/// One CPU id: ASCII decimal digits, optionally surrounded by whitespace.
fn parse_cpu(s: &str) -> Option<usize> {
    parse_decimal(s.trim())
}

/// Strict decimal: non-empty, digits only (no sign, no whitespace), fits in `usize`.
fn parse_decimal(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The CPUs this process may run on, grouped by NUMA node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Topology {
    /// CPU ids per NUMA node, in node-id order. Each node's list is sorted, and
    /// [`Topology::detect`] only reports non-empty nodes and CPUs in the process's affinity mask.
    pub(crate) nodes: Vec<Vec<usize>>,
}

impl Topology {
    /// Detects the NUMA layout of the CPUs the calling thread may run on.
    ///
    /// Reads `/sys/devices/system/node/node*/cpulist` (nodes in numeric id order) and keeps only
    /// CPUs in the affinity mask from `sched_getaffinity`; nodes left without CPUs (memory-only
    /// nodes, or nodes excluded by a cpuset) are dropped. Without node information in `/sys`,
    /// or on any error reading or parsing it, the result is one node holding all allowed CPUs;
    /// if even the affinity mask cannot be read, one node with CPUs
    /// `0..available_parallelism`. Never panics, and always reports at least one CPU.
    ///
    /// Call it before pinning anything: the mask is the calling thread's, so after
    /// [`pin_current_thread`] it would report just that one CPU.
    pub(crate) fn detect() -> Topology {
        let allowed = sys::allowed_cpus()
            .filter(|cpus| !cpus.is_empty())
            .unwrap_or_else(fallback_cpus);
        let nodes = match sysfs_nodes(Path::new(SYSFS_NODE_DIR), &allowed) {
            Some(nodes) => nodes,
            None => vec![allowed],
        };
        Topology { nodes }
    }

    /// Builds a topology from explicit per-node CPU lists (for tests and overrides). Each
    /// node's list is sorted and de-duplicated, and empty nodes are dropped.
    #[cfg(test)]
    pub(crate) fn from_nodes(nodes: Vec<Vec<usize>>) -> Topology {
        let nodes = nodes
            .into_iter()
            .map(|mut cpus| {
                cpus.sort_unstable();
                cpus.dedup();
                cpus
            })
            .filter(|cpus| !cpus.is_empty())
            .collect();
        Topology { nodes }
    }

    /// Total number of CPUs across all nodes.
    #[cfg(test)]
    pub(crate) fn cpus(&self) -> usize {
        self.nodes.iter().map(Vec::len).sum()
    }
}

/// CPUs `0..available_parallelism`, the last-resort guess when no affinity mask is available.
fn fallback_cpus() -> Vec<usize> {
    let n = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    (0..n).collect()
}

/// Reads the per-node CPU lists under `root` (a `/sys/devices/system/node`-like directory),
/// restricted to `allowed` (sorted). Returns `None` when there is no usable node information
/// or anything fails, so the caller falls back to a single node. A CPU listed under several
/// nodes is kept only in the first.
fn sysfs_nodes(root: &Path, allowed: &[usize]) -> Option<Vec<Vec<usize>>> {
    let mut dirs: Vec<(usize, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(root).ok()? {
        let entry = entry.ok()?;
        let name = entry.file_name();
        let id = name
            .to_str()
            .and_then(|name| name.strip_prefix("node"))
            .and_then(parse_decimal);
        if let Some(id) = id {
            dirs.push((id, entry.path()));
        }
    }
    dirs.sort_unstable_by_key(|&(id, _)| id);

    let mut taken = std::collections::HashSet::new();
    let mut nodes = Vec::new();
    for (_, dir) in dirs {
        let text = std::fs::read_to_string(dir.join("cpulist")).ok()?;
        let local: Vec<usize> = parse_cpulist(&text)?
            .into_iter()
            .filter(|cpu| allowed.binary_search(cpu).is_ok() && taken.insert(*cpu))
            .collect();
        if !local.is_empty() {
            nodes.push(local);
        }
    }
    (!nodes.is_empty()).then_some(nodes)
}

/// The CPU for each worker: `plan(topo, n)[i]` is the core worker `i` should pin to.
///
/// Workers fill the topology node by node — workers `0..k` take node 0's CPUs in order, the
/// next ones node 1's, and so on — so consecutive workers share a NUMA node. With more workers
/// than CPUs the assignment wraps around to node 0's first CPU again. An empty topology (or
/// zero workers) gives an empty plan.
pub(crate) fn plan(topo: &Topology, workers: usize) -> Vec<usize> {
    let order: Vec<usize> = topo.nodes.iter().flatten().copied().collect();
    if order.is_empty() {
        return Vec::new();
    }
    order.iter().copied().cycle().take(workers).collect()
}

/// Pins the calling thread to the single CPU `cpu` with `sched_setaffinity`.
///
/// # Errors
///
/// Fails with [`io::ErrorKind::InvalidInput`] if `cpu` does not fit in a `cpu_set_t`
/// (`CPU_SETSIZE`), with the OS error if the kernel refuses (for example a CPU that is offline
/// or outside the process's cpuset), and with [`io::ErrorKind::Unsupported`] off Linux. On
/// failure the thread's affinity is unchanged.
pub(crate) fn pin_current_thread(cpu: usize) -> io::Result<()> {
    sys::pin_current_thread(cpu)
}

/// One line for the run summary describing `plan` (as returned by [`plan`]) on `topo`, e.g.
/// `"pinned 48 workers to cores 0-47 on 2 NUMA nodes (24 + 24)"` or
/// `"pinned 2 workers to cores 0-1 (1 NUMA node)"`.
///
/// Cores are listed once each, compactly as ranges; the numbers in parentheses are workers per
/// NUMA node, counting only nodes that received workers. With more workers than cores (the
/// plan wraps around), the line says so and how many share a core. An empty plan gives
/// `"no workers pinned"`.
pub(crate) fn describe(topo: &Topology, plan: &[usize]) -> String {
    if plan.is_empty() {
        return "no workers pinned".to_string();
    }

    let mut node_of = HashMap::new();
    for (node, cpus) in topo.nodes.iter().enumerate() {
        for &cpu in cpus {
            node_of.entry(cpu).or_insert(node);
        }
    }
    let mut per_node = vec![0usize; topo.nodes.len()];
    for cpu in plan {
        if let Some(&node) = node_of.get(cpu) {
            per_node[node] += 1;
        }
    }
    let used: Vec<String> = per_node
        .iter()
        .filter(|&&workers| workers > 0)
        .map(ToString::to_string)
        .collect();

    let mut cores = plan.to_vec();
    cores.sort_unstable();
    cores.dedup();

    let workers = plan.len();
    let mut line = format!(
        "pinned {workers} {} to {} {}",
        if workers == 1 { "worker" } else { "workers" },
        if cores.len() == 1 { "core" } else { "cores" },
        format_cpulist(&cores),
    );
    match used.len() {
        0 => {}
        1 => line.push_str(" (1 NUMA node)"),
        n => line.push_str(&format!(" on {n} NUMA nodes ({})", used.join(" + "))),
    }
    if workers > cores.len() {
        // Never two workers on one core without saying so.
        line.push_str(&format!(
            "; more workers than cores: up to {} share a core",
            workers.div_ceil(cores.len())
        ));
    }
    line
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::mem::size_of;

    /// Number of CPU ids a `libc::cpu_set_t` can hold: `CPU_SETSIZE`, capped by the struct's
    /// actual size in bits so `CPU_SET`/`CPU_ISSET` never index past its bit array.
    fn cpu_set_capacity() -> usize {
        let bits = 8 * size_of::<libc::cpu_set_t>();
        usize::try_from(libc::CPU_SETSIZE).map_or(bits, |n| n.min(bits))
    }

    /// An empty CPU set.
    fn empty_cpu_set() -> libc::cpu_set_t {
        // SAFETY: `cpu_set_t` is a plain array of integers, for which all-zero bits is a valid
        // value (the empty set).
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid, exclusively borrowed `cpu_set_t`; CPU_ZERO only clears it.
        unsafe { libc::CPU_ZERO(&mut set) };
        set
    }

    /// The calling thread's affinity mask as sorted CPU ids, or `None` if the kernel refuses
    /// (for example with more CPUs than a `cpu_set_t` holds).
    pub(super) fn allowed_cpus() -> Option<Vec<usize>> {
        let mut set = empty_cpu_set();
        // SAFETY: `set` is a live, writable `cpu_set_t` and the size passed is exactly its size,
        // so the kernel writes only within it; pid 0 means the calling thread.
        let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
        if rc != 0 {
            return None;
        }
        let cpus = (0..cpu_set_capacity())
            // SAFETY: `cpu < cpu_set_capacity()`, so CPU_ISSET reads within `set`'s bit array.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect();
        Some(cpus)
    }

    /// See [`super::pin_current_thread`].
    pub(super) fn pin_current_thread(cpu: usize) -> io::Result<()> {
        let capacity = cpu_set_capacity();
        if cpu >= capacity {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot pin to CPU {cpu}: CPU ids must be below CPU_SETSIZE ({capacity})"),
            ));
        }
        let mut set = empty_cpu_set();
        // SAFETY: `cpu < cpu_set_capacity()` (checked above), so CPU_SET writes within `set`'s
        // bit array.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: `set` is a live, initialised `cpu_set_t` and the size passed is exactly its
        // size, so the kernel reads only within it; pid 0 means the calling thread.
        let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;

    /// No affinity mask off Linux: [`super::Topology::detect`] falls back to
    /// `0..available_parallelism`.
    pub(super) fn allowed_cpus() -> Option<Vec<usize>> {
        None
    }

    /// Pinning is not supported off Linux.
    pub(super) fn pin_current_thread(cpu: usize) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("cannot pin to CPU {cpu}: CPU pinning is only supported on Linux"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_by_four() -> Topology {
        Topology::from_nodes(vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]])
    }

    #[test]
    fn parses_valid_cpulists() {
        assert_eq!(
            parse_cpulist("0-3,8,10-11\n"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpulist("5"), Some(vec![5]));
        assert_eq!(parse_cpulist("0-0"), Some(vec![0]));
        assert_eq!(parse_cpulist("3,1-2,2,3"), Some(vec![1, 2, 3]));
        assert_eq!(parse_cpulist("  0 - 2 , 4\t\n"), Some(vec![0, 1, 2, 4]));
        assert_eq!(parse_cpulist(""), Some(vec![]));
        assert_eq!(parse_cpulist("\n"), Some(vec![]));
        assert_eq!(parse_cpulist("  \t "), Some(vec![]));
    }

    #[test]
    fn rejects_malformed_cpulists() {
        for bad in [
            "3-1", "a", "1,,2", ",", "1,", ",1", "-1", "1-", "-", "1-2-3", "1 2", "+1", "0x1",
            "1-a", "1;2", "0-8:2",
        ] {
            assert_eq!(parse_cpulist(bad), None, "{bad:?} should be rejected");
        }
        // Ids that overflow usize.
        assert_eq!(parse_cpulist("18446744073709551616"), None);
        assert_eq!(parse_cpulist("0-99999999999999999999999"), None);
    }

    #[test]
    fn bounds_cpulist_expansion() {
        assert_eq!(parse_cpulist("0-65535").map(|c| c.len()), Some(65_536));
        assert_eq!(parse_cpulist("0-65536"), None);
        assert_eq!(parse_cpulist("0-18446744073709551615"), None);
        assert_eq!(
            parse_cpulist("18446744073709551615"),
            Some(vec![usize::MAX])
        );
        // Each range is in bounds but the whole list is not.
        assert_eq!(parse_cpulist("0-40000,40001-80000"), None);
        assert_eq!(parse_cpulist("0-65535,0"), None);
    }

    #[test]
    fn formats_cpulists_as_ranges() {
        assert_eq!(format_cpulist(&[]), "");
        assert_eq!(format_cpulist(&[5]), "5");
        assert_eq!(format_cpulist(&[0, 1]), "0-1");
        assert_eq!(format_cpulist(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(format_cpulist(&[11, 3, 10, 3, 0, 2, 1, 8]), "0-3,8,10-11");
        assert_eq!(format_cpulist(&[0, 2, 4]), "0,2,4");
        let text = "0-3,8,10-11,13,100-127";
        assert_eq!(format_cpulist(&parse_cpulist(text).unwrap()), text);
    }

    #[test]
    fn from_nodes_normalises() {
        let topo = Topology::from_nodes(vec![vec![3, 1, 1, 2], vec![], vec![9, 8]]);
        assert_eq!(topo.nodes, vec![vec![1, 2, 3], vec![8, 9]]);
        assert_eq!(topo.cpus(), 5);
        assert_eq!(Topology::from_nodes(vec![]).cpus(), 0);
        assert_eq!(two_by_four().cpus(), 8);
    }

    #[test]
    fn plan_fills_node_by_node() {
        let topo = two_by_four();
        assert_eq!(plan(&topo, 3), vec![0, 1, 2]);
        assert_eq!(plan(&topo, 8), vec![0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(plan(&topo, 10), vec![0, 1, 2, 3, 4, 5, 6, 7, 0, 1]);
        assert_eq!(plan(&topo, 0), Vec::<usize>::new());
    }

    #[test]
    fn plan_follows_node_membership_not_cpu_ids() {
        // Interleaved numbering, as on many two-socket machines.
        let topo = Topology::from_nodes(vec![vec![0, 2, 4, 6], vec![1, 3, 5, 7]]);
        assert_eq!(plan(&topo, 6), vec![0, 2, 4, 6, 1, 3]);
    }

    #[test]
    fn plan_on_empty_topology_is_empty() {
        assert_eq!(plan(&Topology::default(), 4), Vec::<usize>::new());
        assert_eq!(
            plan(&Topology::from_nodes(vec![vec![]]), 4),
            Vec::<usize>::new()
        );
        // Even with empty nodes set directly through the public field.
        let raw = Topology {
            nodes: vec![vec![], vec![2]],
        };
        assert_eq!(plan(&raw, 3), vec![2, 2, 2]);
    }

    #[test]
    fn describes_plans() {
        let big = Topology::from_nodes(vec![(0..24).collect(), (24..48).collect()]);
        assert_eq!(
            describe(&big, &plan(&big, 48)),
            "pinned 48 workers to cores 0-47 on 2 NUMA nodes (24 + 24)"
        );
        let small = Topology::from_nodes(vec![vec![0, 1]]);
        assert_eq!(
            describe(&small, &plan(&small, 2)),
            "pinned 2 workers to cores 0-1 (1 NUMA node)"
        );
        assert_eq!(
            describe(&small, &plan(&small, 1)),
            "pinned 1 worker to core 0 (1 NUMA node)"
        );

        let topo = two_by_four();
        assert_eq!(
            describe(&topo, &plan(&topo, 3)),
            "pinned 3 workers to cores 0-2 (1 NUMA node)"
        );
        assert_eq!(
            describe(&topo, &plan(&topo, 10)),
            "pinned 10 workers to cores 0-7 on 2 NUMA nodes (6 + 4); more workers than cores: up to 2 share a core"
        );
        let interleaved = Topology::from_nodes(vec![vec![0, 2, 4, 6], vec![1, 3, 5, 7]]);
        assert_eq!(
            describe(&interleaved, &plan(&interleaved, 6)),
            "pinned 6 workers to cores 0-4,6 on 2 NUMA nodes (4 + 2)"
        );
        assert_eq!(describe(&topo, &[]), "no workers pinned");
        // CPUs outside the topology are listed but not attributed to a node.
        assert_eq!(
            describe(&topo, &[40, 41]),
            "pinned 2 workers to cores 40-41"
        );
    }

    /// A scratch directory laid out like `/sys/devices/system/node`, removed on drop.
    struct FakeSysfs(PathBuf);

    impl FakeSysfs {
        fn new(name: &str, nodes: &[(&str, Option<&str>)]) -> FakeSysfs {
            let root =
                std::env::temp_dir().join(format!("msms-affinity-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(root.join("possible"), "0-3\n").unwrap();
            std::fs::write(root.join("has_cpu"), "0-3\n").unwrap();
            for &(dir, cpulist) in nodes {
                std::fs::create_dir(root.join(dir)).unwrap();
                if let Some(cpulist) = cpulist {
                    std::fs::write(root.join(dir).join("cpulist"), cpulist).unwrap();
                }
            }
            FakeSysfs(root)
        }
    }

    impl Drop for FakeSysfs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn reads_sysfs_nodes_in_numeric_order() {
        let fake = FakeSysfs::new(
            "ok",
            &[
                ("node10", Some("8-9\n")),
                ("node2", Some("\n")), // memory-only node
                ("node0", Some("0-3\n")),
                ("node1", Some("4-7\n")),
                ("nodeX", None), // not a node directory
            ],
        );
        let allowed: Vec<usize> = (0..10).collect();
        assert_eq!(
            sysfs_nodes(&fake.0, &allowed),
            Some(vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]])
        );
        // Restricted by the affinity mask; node1 loses all its CPUs and is dropped.
        assert_eq!(
            sysfs_nodes(&fake.0, &[1, 2, 8]),
            Some(vec![vec![1, 2], vec![8]])
        );
        // Nothing allowed anywhere: no usable node information.
        assert_eq!(sysfs_nodes(&fake.0, &[42]), None);
    }

    #[test]
    fn sysfs_errors_mean_no_node_info() {
        let malformed = FakeSysfs::new(
            "malformed",
            &[("node0", Some("0-3\n")), ("node1", Some("7-4\n"))],
        );
        assert_eq!(sysfs_nodes(&malformed.0, &[0, 1]), None);
        let missing = FakeSysfs::new("missing", &[("node0", None)]);
        assert_eq!(sysfs_nodes(&missing.0, &[0, 1]), None);
        let empty = FakeSysfs::new("empty", &[]);
        assert_eq!(sysfs_nodes(&empty.0, &[0, 1]), None);
        assert_eq!(
            sysfs_nodes(Path::new("/nonexistent/msms-affinity"), &[0]),
            None
        );
    }

    #[test]
    fn detect_reports_usable_cpus() {
        let topo = Topology::detect();
        assert!(topo.cpus() >= 1, "detected {topo:?}");
        assert!(topo.nodes.iter().all(|node| !node.is_empty()));
        assert!(topo
            .nodes
            .iter()
            .all(|node| node.windows(2).all(|w| w[0] < w[1])));
        let mut all: Vec<usize> = topo.nodes.iter().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), topo.cpus(), "a CPU is listed under two nodes");
        if let Some(allowed) = sys::allowed_cpus() {
            assert!(all.iter().all(|cpu| allowed.contains(cpu)));
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn pins_to_detected_cpu() {
        let cpu = Topology::detect().nodes[0][0];
        // Pin a dedicated thread so the pin cannot leak into other tests should the harness
        // run them on a shared thread (e.g. `--test-threads=1`).
        let after = std::thread::spawn(move || {
            pin_current_thread(cpu).expect("pinning to a detected CPU");
            sys::allowed_cpus()
        })
        .join()
        .unwrap();
        assert_eq!(after, Some(vec![cpu]));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn rejects_cpus_beyond_cpu_setsize() {
        let setsize = usize::try_from(libc::CPU_SETSIZE).unwrap();
        let before = sys::allowed_cpus();
        for cpu in [setsize, usize::MAX] {
            let err = pin_current_thread(cpu).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        assert_eq!(
            sys::allowed_cpus(),
            before,
            "a failed pin must not change affinity"
        );
    }
}
