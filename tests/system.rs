//! Promises about the machine and the file system, through the binary on real files: the
//! `O_DIRECT` fallback at open (a ramfs root), CPU pinning of the workers (their
//! `Cpus_allowed_list` read from /proc while the run is stalled), doctor's blocking checks,
//! and the ENOSPC and EACCES write errors.
//!
//! Mounting file systems and changing users needs root, as in CI: without it these tests say
//! what they skip and return, except with `CI` set, where they fail ([`require_root`]).

mod common;

use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::*;

// ---------------------------------------------------------------------------------------
// Helpers

/// Whether this test may do what needs root (`needs`). Outside CI, without root, it prints
/// what is skipped and returns `false`; with `CI` set it fails instead: no silent skips.
fn require_root(needs: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "not root, but CI must run this test: {needs} needs root"
    );
    eprintln!("SKIPPED (not root): {needs}");
    false
}

fn cstring(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// A file system mounted at a directory for the life of the value (unmounted on drop, also
/// when the test fails).
struct Mount {
    dir: PathBuf,
}

impl Mount {
    /// `mount -t FSTYPE -o OPTIONS FSTYPE DIR` (DIR is created).
    fn new(dir: &Path, fstype: &str, options: &str) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        let m = Mount {
            dir: dir.to_path_buf(),
        };
        m.call(fstype, 0, options);
        m
    }

    /// `mount -o remount,OPTIONS DIR`.
    fn remount(&self, fstype: &str, options: &str) {
        self.call(fstype, libc::MS_REMOUNT, options);
    }

    fn call(&self, fstype: &str, flags: libc::c_ulong, options: &str) {
        let (source, target) = (CString::new(fstype).unwrap(), cstring(&self.dir));
        let data = CString::new(options).unwrap();
        // SAFETY: every pointer is a live NUL-terminated string for the duration of the call.
        let rc = unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                source.as_ptr(),
                flags,
                data.as_ptr().cast(),
            )
        };
        assert_eq!(
            rc,
            0,
            "mount -t {fstype} -o {options} {} (flags {flags:#x}): {}",
            self.dir.display(),
            std::io::Error::last_os_error()
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let target = cstring(&self.dir);
        // SAFETY: `target` is a live NUL-terminated string; a lazy unmount of our own mount.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// A temporary directory that user nobody may enter and read (tempfile makes them 0700).
fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `setpriv` to user and group 65534 (nobody) running `msms ARGS...`, with the inherited
/// `MSMS_*` variables removed as for [`msms_command`].
fn as_nobody(args: &[&str]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_msms"))
        .args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MSMS_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Whether `dir` accepts `O_DIRECT`: `Ok(())`, or the error of opening a file there with it.
fn o_direct_open(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(".o_direct_probe");
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path);
    let _ = std::fs::remove_file(&path);
    opened.map(drop)
}

/// `msms build-shards` of `input` into `root` with `extra` flags, which must succeed; the
/// manifest.
fn converted(input: &Path, root: &Path, extra: &[&str]) -> serde_json::Value {
    build(&[input], root, extra).expect_code(0);
    read_manifest(root)
}

/// Every shard's record (`path`, `rows`, `bytes`, `sha256`, first and last id).
fn shard_records(manifest: &serde_json::Value) -> &Vec<serde_json::Value> {
    manifest["shards"].as_array().expect("shards")
}

/// The shard files under `root` hash to the reference manifest's digests, and the root
/// holds exactly the reference's files.
#[track_caller]
fn assert_same_shards(root: &Path, reference_root: &Path, what: &str) {
    let want = read_manifest(reference_root);
    let got = read_manifest(root);
    assert_eq!(shard_records(&got), shard_records(&want), "{what}: shards");
    assert_eq!(
        got["dataset_digest"], want["dataset_digest"],
        "{what}: dataset digest"
    );
    for s in shard_records(&want) {
        let path = s["path"].as_str().unwrap();
        assert_eq!(
            sha256_file(&root.join(path)),
            s["sha256"].as_str().unwrap(),
            "{what}: {path}'s bytes"
        );
    }
    assert_eq!(
        files_under(root),
        files_under(reference_root),
        "{what}: files"
    );
}

/// A `build-shards` run stopped at a stall point (`MSMS_TEST_STALL_AT`), killed on drop.
struct Stalled {
    child: Child,
}

impl Stalled {
    /// Start `cmd` with the stall hook at `point` and wait until it says it stalled there.
    fn at(mut cmd: Command, point: &str) -> Stalled {
        cmd.env("MSMS_TEST_STALL_AT", point)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = {
            let _g = fork_guard();
            cmd.spawn().expect("spawn msms")
        };
        let mut s = Stalled { child };
        let mut err = s.child.stderr.take().expect("piped stderr");
        let marker = format!("msms: stalled at {point}");
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        while !text.contains(&marker) {
            let n = err.read(&mut buf).expect("read stderr");
            assert!(n > 0, "the run ended without stalling at {point}:\n{text}");
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        s
    }

    /// Every thread of the process: (name, `Cpus_allowed_list`).
    fn threads(&self) -> Vec<(String, String)> {
        let dir = PathBuf::from(format!("/proc/{}/task", self.child.id()));
        let mut out = Vec::new();
        for task in std::fs::read_dir(&dir).unwrap() {
            let task = task.unwrap().path();
            let comm = std::fs::read_to_string(task.join("comm")).unwrap();
            let status = std::fs::read_to_string(task.join("status")).unwrap();
            out.push((comm.trim().to_string(), cpus_allowed_list(&status)));
        }
        out.sort();
        out
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `Cpus_allowed_list` value of a /proc status file.
fn cpus_allowed_list(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list")
        .trim()
        .to_string()
}

/// A Linux cpulist (`0-3,8`) as CPU ids (written here, independently of the product's).
fn cpus(list: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for item in list.trim().split(',').filter(|s| !s.is_empty()) {
        match item.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
            None => out.push(item.parse().unwrap()),
        }
    }
    out
}

/// The CPUs this process may run on (children inherit them), as /proc lists them.
fn own_cpus_allowed_list() -> String {
    cpus_allowed_list(&std::fs::read_to_string("/proc/self/status").unwrap())
}

/// The allowed CPUs in NUMA order: node by node in numeric node order (a CPU once), or as
/// they are without node information: the order in which the README promises workers are
/// pinned.
fn numa_order(allowed: &[usize]) -> Vec<usize> {
    let mut nodes: Vec<(usize, PathBuf)> = std::fs::read_dir("/sys/devices/system/node")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let id = name.strip_prefix("node")?.parse().ok()?;
                    Some((id, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();
    let mut order: Vec<usize> = Vec::new();
    for (_, dir) in nodes {
        let list = std::fs::read_to_string(dir.join("cpulist")).unwrap();
        for cpu in cpus(&list) {
            if allowed.contains(&cpu) && !order.contains(&cpu) {
                order.push(cpu);
            }
        }
    }
    if order.is_empty() {
        order = allowed.to_vec();
    }
    order
}

// ---------------------------------------------------------------------------------------
// O_DIRECT

/// 5 MB shards: each is more than one 4 MiB buffer of the direct writer, so a shard goes
/// out as whole buffers and a padded tail.
const DIRECT_SETTINGS: &[&str] = &["--shard-size", "5MB", "--row-group-size", "2000", "-q"];

#[test]
fn o_direct_refused_at_open_falls_back_to_buffered_writes_with_identical_shards() {
    if !require_root("mounting a ramfs (it refuses O_DIRECT at open)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 20_000, 0.02, 7);
    let reference = dir.path().join("ref");
    std::fs::create_dir(&reference).unwrap();
    o_direct_open(&reference).expect("premise: the temporary directory accepts O_DIRECT");
    let m = converted(&input.path, &reference, DIRECT_SETTINGS);
    assert!(shard_records(&m).len() >= 2, "want several shards: {m}");
    let biggest = shard_records(&m)
        .iter()
        .map(|s| s["bytes"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(biggest > 4 << 20, "want shards beyond one 4 MiB buffer");

    let ramfs = Mount::new(&dir.path().join("ramfs"), "ramfs", "mode=0755");
    let err = o_direct_open(&ramfs.dir).expect_err("premise: ramfs refuses O_DIRECT");
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
    let root = ramfs.dir.join("out");
    let run = build(&[&input.path], &root, DIRECT_SETTINGS);
    run.expect_code(0);
    assert_eq!(run.stderr, "", "no warning for the fallback");
    assert_same_shards(&root, &reference, "ramfs (buffered) against ext4 (direct)");

    // doctor tells the two apart.
    for (at, want) in [(&reference, "direct"), (&ramfs.dir, "buffered")] {
        let run = msms(["doctor", "--json", "--output-root", at.to_str().unwrap()]);
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(v["output_root"]["o_direct"], want, "{}", at.display());
    }
}

// ---------------------------------------------------------------------------------------
// CPU pinning

/// Settings that give a few dozen shards: the workers are still there when the first shard
/// stalls before its rename.
const PIN_SETTINGS: &[&str] = &[
    "--shard-size",
    "1MB",
    "--batch-size",
    "500",
    "--writers",
    "1",
    "-q",
];

/// An input for the pinning tests.
fn pin_input(dir: &Path) -> Input {
    synth_input(&dir.join("in.hdf5"), "gems", 20_000, 0.0, 11)
}

#[test]
fn production_mode_pins_each_worker_to_its_planned_core() {
    let dir = tempfile::tempdir().unwrap();
    let input = pin_input(dir.path());
    let mask = own_cpus_allowed_list();
    let order = numa_order(&cpus(&mask));
    // One worker more than cores: the plan wraps around to the first core.
    let workers = order.len() + 1;
    let n = workers.to_string();
    let mut extra = vec!["--mode", "production", "--num-workers", &n];
    extra.extend_from_slice(PIN_SETTINGS);
    let stalled = Stalled::at(
        build_command(&[&input.path], &dir.path().join("out"), &extra),
        "shard-rename:0",
    );
    let threads = stalled.threads();
    let mut seen = 0;
    for (name, list) in &threads {
        if let Some(i) = name.strip_prefix("msms-worker-") {
            let i: usize = i.parse().unwrap();
            assert_eq!(
                *list,
                order[i % order.len()].to_string(),
                "worker {i} (plan: {order:?} cycled; threads {threads:?})"
            );
            seen += 1;
        } else {
            assert_eq!(*list, mask, "{name} is not a worker: not pinned");
        }
    }
    assert_eq!(seen, workers, "worker threads: {threads:?}");
}

#[test]
fn local_mode_never_pins() {
    let dir = tempfile::tempdir().unwrap();
    let input = pin_input(dir.path());
    let mask = own_cpus_allowed_list();
    let mut extra = vec!["--mode", "local", "--num-workers", "2"];
    extra.extend_from_slice(PIN_SETTINGS);
    let stalled = Stalled::at(
        build_command(&[&input.path], &dir.path().join("out"), &extra),
        "shard-rename:0",
    );
    let threads = stalled.threads();
    let workers = threads
        .iter()
        .filter(|(name, _)| name.starts_with("msms-worker-"))
        .count();
    assert_eq!(workers, 2, "{threads:?}");
    for (name, list) in &threads {
        assert_eq!(*list, mask, "{name} keeps the process's CPUs");
    }
}

#[test]
fn a_pin_the_kernel_refuses_is_reported_and_the_run_succeeds() {
    // A plan wanting CPU 1023 (below CPU_SETSIZE, so the request reaches the kernel, which
    // refuses a CPU that is not online) for worker 1, through the topology test hook.
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    assert!(
        !cpus(&online).contains(&1023),
        "premise: CPU 1023 is not online ({online})"
    );
    let dir = tempfile::tempdir().unwrap();
    let input = pin_input(dir.path());
    let mask = own_cpus_allowed_list();
    let first = cpus(&mask)[0];
    let topology = format!("{first};1023");
    let mut extra = vec!["--mode", "production", "--num-workers", "2"];
    extra.extend_from_slice(PIN_SETTINGS);

    // While it runs: worker 0 on its core, worker 1 left on every CPU.
    let mut cmd = build_command(&[&input.path], &dir.path().join("stalled"), &extra);
    cmd.env("MSMS_TEST_TOPOLOGY", &topology);
    let stalled = Stalled::at(cmd, "shard-rename:0");
    let threads = stalled.threads();
    let list = |name: &str| {
        threads
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no thread {name}: {threads:?}"))
            .1
            .clone()
    };
    assert_eq!(list("msms-worker-0"), first.to_string());
    assert_eq!(
        list("msms-worker-1"),
        mask,
        "the refused pin leaves it as it was"
    );
    drop(stalled);

    // To the end: the summary says so, and the shards are those of a local run.
    let reference = dir.path().join("ref");
    converted(&input.path, &reference, PIN_SETTINGS);
    let root = dir.path().join("out");
    let extra: Vec<&str> = extra.into_iter().filter(|a| *a != "-q").collect();
    let mut cmd = build_command(&[&input.path], &root, &extra);
    cmd.env("MSMS_TEST_TOPOLOGY", &topology);
    let run = run_command(cmd);
    run.expect_code(0);
    let placement = format!(
        "pinned 2 workers to cores {first},1023 on 2 NUMA nodes (1 + 1) (1 pins refused by the system; those threads run unpinned)"
    );
    assert!(
        run.stdout
            .contains(&format!("\n  threads          {placement}\n")),
        "summary:\n{}",
        run.stdout
    );
    assert_eq!(read_manifest(&root)["run"]["threads"], placement.as_str());
    assert_eq!(
        shard_records(&read_manifest(&root)),
        shard_records(&read_manifest(&reference))
    );
}

// ---------------------------------------------------------------------------------------
// doctor's blocking checks

/// `msms doctor --mode local --output-root ROOT` with 10 MB shards, through `cmd` (the
/// binary, or a wrapper that runs it).
fn doctor_at(mut cmd: Command, root: &Path) -> Run {
    cmd.args(["doctor", "--mode", "local", "--output-root"])
        .arg(root)
        .env("MSMS_SHARD_SIZE", "10MB")
        .stdin(Stdio::null());
    run_command(cmd)
}

/// Exit code 1 and exactly `line` on stderr: the one blocking reason.
#[track_caller]
fn assert_blocked_by(run: &Run, line: &str) {
    run.expect_code(1);
    assert_eq!(run.stderr, format!("msms doctor: {line}\n"));
    assert!(
        run.stdout
            .ends_with("BLOCKED: 1 problem (listed on stderr)\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn doctor_blocks_a_root_with_too_little_free_space() {
    if !require_root("mounting a 1 MiB tmpfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmpfs = Mount::new(&dir.path().join("small"), "tmpfs", "size=1m");
    let root = tmpfs.dir.display().to_string();
    let run = doctor_at(msms_command(), &tmpfs.dir);
    assert_blocked_by(
        &run,
        &format!(
            "output root {root}: only 1.0 MB free at {root}; a local run needs at least 20.0 MB (2 x its shard size 10MB): free space, choose another root or a smaller --shard-size"
        ),
    );
    assert_eq!(files_under(&tmpfs.dir), Vec::<String>::new(), "probe files");
}

#[test]
fn doctor_blocks_a_run_needing_more_memory_than_available() {
    // 1000 workers x batches of 10^9 spectra x 8 KiB + 256 MiB = 8,192,000,268,435,456
    // bytes, about 7629394.8 GiB: more than any machine has.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = msms_command();
    cmd.env("MSMS_NUM_WORKERS", "1000")
        .env("MSMS_BATCH_SIZE", "1000000000");
    let run = doctor_at(cmd, dir.path());
    run.expect_code(1);
    let line = run.stderr.strip_suffix('\n').unwrap_or(&run.stderr);
    assert!(!line.contains('\n'), "one blocking reason:\n{}", run.stderr);
    let (head, tail) = line
        .split_once(" available; ")
        .unwrap_or_else(|| panic!("{line}"));
    let amount = head
        .strip_prefix("msms doctor: memory: only ")
        .unwrap_or_else(|| panic!("{line}"));
    let (number, unit) = amount.split_once(' ').unwrap();
    assert!(
        number.parse::<f64>().is_ok() && (unit == "GiB" || unit == "MiB"),
        "{line}"
    );
    assert_eq!(
        tail,
        "a local run with 1000 workers and batches of 1000000000 needs about 7629394.8 GiB (256 MiB + workers x batch x 8 KiB): use --mode local, fewer --num-workers or a smaller --batch-size"
    );
    // The same figure in the report.
    let mut json = msms_command();
    json.args(["doctor", "--json", "--mode", "local", "--output-root"])
        .arg(dir.path())
        .env("MSMS_SHARD_SIZE", "10MB")
        .env("MSMS_NUM_WORKERS", "1000")
        .env("MSMS_BATCH_SIZE", "1000000000");
    let run = run_command(json);
    run.expect_code(1);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["memory"]["needed_bytes"], 8_192_000_268_435_456u64);
    assert_eq!(v["ok"], false);
}

#[test]
fn doctor_blocks_a_file_size_limit_below_the_shard_size() {
    let dir = tempfile::tempdir().unwrap();
    // ulimit -f counts 1024-byte blocks: 1,024,000 bytes.
    let mut cmd = Command::new("bash");
    cmd.args(["-c", "ulimit -f 1000; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_msms"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MSMS_") {
            cmd.env_remove(k);
        }
    }
    let run = doctor_at(cmd, dir.path());
    assert_blocked_by(
        &run,
        "file-size limit (ulimit -f) is 1.0 MB, below the shard size 10MB: raise it or use a smaller --shard-size",
    );
}

#[test]
fn doctor_blocks_a_root_it_cannot_write_to() {
    if !require_root("running doctor as user nobody (setpriv) on a root-owned directory") {
        return;
    }
    let dir = open_tempdir();
    let root = dir.path().join("root-owned");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = as_nobody(&[]);
    cmd.env_remove("HOME");
    let run = doctor_at(cmd, &root);
    let r = root.display();
    assert_blocked_by(
        &run,
        &format!("output root {r}: cannot create a file in {r}: Permission denied (os error 13)"),
    );
}

// ---------------------------------------------------------------------------------------
// Write errors

/// 1 MB shards (about 0.9 MB each here), quiet.
/// `--skip-preflight`: the preflight would refuse this root before the disk fills (see
/// `preflight_refuses_a_root_the_output_cannot_fit`); here the disk is meant to fill.
const ENOSPC_SETTINGS: &[&str] = &["--shard-size", "1MB", "-q", "--skip-preflight"];

#[test]
fn preflight_refuses_a_root_the_output_cannot_fit() {
    if !require_root("mounting a 1 MiB tmpfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 3_000, 0.0, 6);
    let tmpfs = Mount::new(&dir.path().join("small"), "tmpfs", "size=1m");
    let root = tmpfs.dir.join("out");

    // Refused before anything is written, with the numbers and the ways out.
    let run = build(&[&input.path], &root, &["-q"]);
    run.expect_code(2);
    let want = format!(
        "msms build-shards: preflight: output root {}: the output of 3,000 spectra is projected at up to ",
        root.display()
    );
    assert!(run.stderr.starts_with(&want), "{}", run.stderr);
    for part in [
        "is free at",
        "free space or choose another --output-root (or run anyway with --skip-preflight)",
    ] {
        assert!(run.stderr.contains(part), "{part:?} in {}", run.stderr);
    }
    assert!(!root.exists(), "{:?}", files_under(&tmpfs.dir));
    assert_eq!(files_under(&tmpfs.dir), Vec::<String>::new());

    // --skip-preflight runs anyway, says what it skipped, and meets the full disk.
    let run = build(&[&input.path], &root, &["-q", "--skip-preflight"]);
    assert!(
        run.stderr
            .contains("warning (--skip-preflight): output root"),
        "{}",
        run.stderr
    );
    run.expect_code(1);
    assert!(
        run.stderr.contains("No space left on device"),
        "{}",
        run.stderr
    );

    // With room, the same command passes the preflight and converts.
    tmpfs.remount("tmpfs", "size=64m");
    let run = build(&[&input.path], &root, &["-q", "--resume"]);
    run.expect_code(0);
    assert!(!run.stderr.contains("preflight"), "{}", run.stderr);
}

#[test]
fn enospc_names_the_file_keeps_finished_shards_and_resume_finishes_the_run() {
    if !require_root("mounting a 3 MiB tmpfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 20_000, 0.02, 5);
    let reference = dir.path().join("ref");
    let m = converted(&input.path, &reference, ENOSPC_SETTINGS);
    assert!(shard_records(&m).len() >= 8, "want shards beyond 3 MiB");

    let tmpfs = Mount::new(&dir.path().join("small"), "tmpfs", "size=3m");
    let root = tmpfs.dir.join("out");
    let run = build(&[&input.path], &root, ENOSPC_SETTINGS);
    run.expect_code(1);

    // Finished shards are kept, whole, under their final names; nothing else but the
    // checkpoint (no `.tmp`).
    let files = files_under(&root);
    let kept: Vec<&String> = files.iter().filter(|f| f.ends_with(".parquet")).collect();
    assert!(kept.len() >= 2, "files: {files:?}");
    let mut want_files: Vec<String> = (0..kept.len())
        .map(|k| format!("train/shard-{k:05}.parquet"))
        .collect();
    want_files.insert(0, ".msms/checkpoint.json".into());
    assert_eq!(files, want_files);
    for (k, record) in shard_records(&m).iter().take(kept.len()).enumerate() {
        let path = format!("train/shard-{k:05}.parquet");
        assert_eq!(record["path"], path.as_str());
        assert_eq!(
            sha256_file(&root.join(&path)),
            record["sha256"].as_str().unwrap(),
            "{path} is the reference's"
        );
    }
    let checkpoint: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join(".msms/checkpoint.json")).unwrap())
            .unwrap();
    let listed: Vec<&str> = checkpoint["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        want_files[1..],
        "the checkpoint lists the kept shards"
    );

    // The skipped preflight's finding, then the shard that did not fit, then how to resume.
    let (skipped, stderr) = run.stderr.split_once('\n').unwrap();
    assert!(
        skipped.starts_with(&format!(
            "warning (--skip-preflight): output root {}: the output of 20,000 spectra is projected at up to ",
            root.display()
        )),
        "{skipped}"
    );
    let failed = root.join(format!("train/shard-{:05}.parquet.tmp", kept.len()));
    let resume = format!(
        "msms build-shards --input-hdf5 {} --output-root {} --shard-size 1MB -q --skip-preflight --resume",
        input.path.display(),
        root.display()
    );
    assert_eq!(
        stderr,
        format!(
            "msms build-shards: writing {}: No space left on device (os error 28)\n\
             msms build-shards: finished shards are kept; once the cause is fixed (e.g. space freed), continue with:\n  {resume}\n",
            failed.display()
        )
    );

    // Space freed: the advised command finishes the run, with the reference's shards.
    tmpfs.remount("tmpfs", "size=64m");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_msms")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &resume]).env("PATH", path);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MSMS_") {
            cmd.env_remove(k);
        }
    }
    run_command(cmd).expect_code(0);
    assert_same_shards(&root, &reference, "resumed after ENOSPC");
}

#[test]
fn eacces_at_the_output_root_is_reported_and_leaves_nothing() {
    if !require_root("running build-shards as user nobody (setpriv) into a root-owned directory") {
        return;
    }
    let dir = open_tempdir();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 2_000, 0.0, 3);
    let root = dir.path().join("root-owned");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let input_s = input.path.to_str().unwrap();

    // An existing root nobody may not write to.
    let run = run_command(as_nobody(&[
        "build-shards",
        "--input-hdf5",
        input_s,
        "--output-root",
        root.to_str().unwrap(),
        "-q",
    ]));
    // Refused before anything is written: the root's lock file cannot be made.
    run.expect_code(2);
    assert_eq!(
        run.stderr,
        format!(
            "msms build-shards: output root {}: creating {}: Permission denied (os error 13)\n",
            root.display(),
            root.join(".msms").display()
        )
    );
    assert_eq!(files_under(&root), Vec::<String>::new());

    // A root to be created in a directory nobody may not write to.
    let new = root.join("new");
    let run = run_command(as_nobody(&[
        "build-shards",
        "--input-hdf5",
        input_s,
        "--output-root",
        new.to_str().unwrap(),
        "-q",
    ]));
    run.expect_code(2);
    assert_eq!(
        run.stderr,
        format!(
            "msms build-shards: output root {}: cannot create it: Permission denied (os error 13)\n",
            new.display()
        )
    );
    assert!(!new.exists());
}
