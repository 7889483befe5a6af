//! One writer per output root: a second `build-shards` (fresh, `--resume`, `--overwrite`), a
//! second copy of one part, or a `merge` on a root another command holds exits 2 at once,
//! naming the holder, and the first run finishes unharmed; a run killed with SIGKILL leaves
//! no stale lock. Every wait is for a state: the first run is held at a stall point
//! (`MSMS_TEST_STALL_AT`) until the test creates its release file.

mod common;

use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::process::Command;

use common::*;

/// A conversion of `input` into `root` in several shards, with `extra` flags.
fn sharded(input: &Path, root: &Path, extra: &[&str]) -> Command {
    let mut cmd = build_command(
        &[input],
        root,
        &["--shard-size", "100kB", "--batch-size", "300", "-q"],
    );
    cmd.args(extra);
    cmd
}

fn host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(rc, 0);
    let end = buf.iter().position(|&b| b == 0).unwrap();
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The refusal of a command on a root held by `msms COMMAND` with `pid`.
#[track_caller]
fn assert_held_by(run: &Run, root: &Path, command: &str, pid: u32) {
    run.expect_code(2);
    let want = format!(
        "output root {} is in use by msms {command} (pid {pid} on {}, started ",
        root.display(),
        host()
    );
    assert!(
        run.stderr.contains(&want),
        "want {want:?} in:\n{}",
        run.stderr
    );
}

#[test]
fn a_second_run_on_a_held_root_is_refused_and_the_first_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 3000, 0.02, 7);
    // The reference: the same conversion, alone.
    let alone = dir.path().join("alone");
    run_command(sharded(&input.path, &alone, &[])).expect_code(0);
    let digest = read_manifest(&alone)["dataset_digest"].clone();
    assert!(read_manifest(&alone)["shards"].as_array().unwrap().len() >= 3);

    for (i, second) in [&[][..], &["--resume"], &["--overwrite"]]
        .iter()
        .enumerate()
    {
        let root = dir.path().join(format!("root{i}"));
        let first = Held::start(
            sharded(&input.path, &root, &[]),
            "shard-renamed:1",
            dir.path().join(format!("release{i}")),
        );
        let before = files_under(&root);
        assert!(
            before.contains(&"train/shard-00001.parquet".to_string()),
            "{before:?}"
        );
        let run = run_command(sharded(&input.path, &root, second));
        assert_held_by(&run, &root, "build-shards", first.pid());
        // The refused run touched nothing.
        assert_eq!(files_under(&root), before, "second run {second:?}");
        assert_eq!(first.release(), 0, "the first run after {second:?}");
        assert_eq!(read_manifest(&root)["dataset_digest"], digest);
        msms(["verify".as_ref(), root.as_os_str(), "--full".as_ref()]).expect_code(0);
        // Finished: no lock and no checkpoint left where readers look.
        assert!(!root.join(".msms").exists(), "{:?}", files_under(&root));
    }
}

#[test]
fn a_run_killed_with_sigkill_leaves_no_stale_lock() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 3000, 0.02, 8);
    let root = dir.path().join("root");
    stall_and_kill(sharded(&input.path, &root, &[]), "shard-renamed:1");
    // The dead run's lock file is still there, naming it; its lock went with it.
    let lock = std::fs::read_to_string(root.join(".msms/lock")).unwrap();
    assert!(lock.contains("\"command\":\"build-shards\""), "{lock}");
    run_command(sharded(&input.path, &root, &["--resume"])).expect_code(0);
    msms(["verify".as_ref(), root.as_os_str(), "--full".as_ref()]).expect_code(0);
    assert!(!root.join(".msms").exists(), "{:?}", files_under(&root));
}

#[test]
fn a_second_copy_of_one_part_is_refused_and_merge_waits_for_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let a = synth_input(&dir.path().join("a.hdf5"), "gems", 3000, 0.02, 1);
    let b = synth_input(&dir.path().join("b.hdf5"), "gems", 2000, 0.02, 2);
    let plan = dir.path().join("plan.json");
    msms([
        "plan".as_ref(),
        "--input-hdf5".as_ref(),
        a.path.as_os_str(),
        b.path.as_os_str(),
        "--parts".as_ref(),
        "2".as_ref(),
        "--output".as_ref(),
        plan.as_os_str(),
        "--shard-size".as_ref(),
        "100kB".as_ref(),
    ])
    .expect_code(0);
    let root = dir.path().join("root");
    let part = |k: usize| {
        let mut cmd = msms_command();
        cmd.arg("build-shards")
            .arg("--plan")
            .arg(&plan)
            .args(["--part", &k.to_string(), "-q", "--output-root"])
            .arg(&root);
        cmd
    };
    let first = Held::start(part(0), "shard-renamed:0", dir.path().join("release"));
    let again = run_command(part(0));
    assert_held_by(&again, &root.join("parts/0"), "build-shards", first.pid());
    // Another part is another root: it runs meanwhile.
    run_command(part(1)).expect_code(0);
    assert_eq!(first.release(), 0);
    msms(["merge".as_ref(), root.as_os_str()]).expect_code(0);
    msms(["verify".as_ref(), root.as_os_str(), "--full".as_ref()]).expect_code(0);
}

#[test]
fn merge_refuses_a_root_another_process_holds() {
    let dir = tempfile::tempdir().unwrap();
    let a = synth_input(&dir.path().join("a.hdf5"), "gems", 1000, 0.0, 3);
    let plan = dir.path().join("plan.json");
    let root = dir.path().join("root");
    msms([
        "plan".as_ref(),
        "--input-hdf5".as_ref(),
        a.path.as_os_str(),
        "--parts".as_ref(),
        "1".as_ref(),
        "--output".as_ref(),
        plan.as_os_str(),
    ])
    .expect_code(0);
    msms([
        "build-shards".as_ref(),
        "--plan".as_ref(),
        plan.as_os_str(),
        "--part".as_ref(),
        "0".as_ref(),
        "--output-root".as_ref(),
        root.as_os_str(),
        "-q".as_ref(),
    ])
    .expect_code(0);
    // This test process takes the root's lock the way msms does (flock on .msms/lock) and
    // records a holder: the protocol, checked from outside the library.
    std::fs::create_dir_all(root.join(".msms")).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(root.join(".msms/lock"))
        .unwrap();
    // SAFETY: flock on a descriptor this test owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, 0, "lock the root from the test");
    std::fs::write(
        root.join(".msms/lock"),
        format!(
            "{{\"command\":\"rebalance\",\"pid\":4242,\"host\":\"{}\",\"started\":\"2026-12-06T01:02:03Z\"}}\n",
            host()
        ),
    )
    .unwrap();
    let run = msms(["merge".as_ref(), root.as_os_str()]);
    assert_held_by(&run, &root, "rebalance", 4242);
    assert!(
        run.stderr.contains("started 2026-12-06T01:02:03Z"),
        "{}",
        run.stderr
    );
    assert!(find_no_manifest(&root), "a refused merge wrote a manifest");
    drop(file);
    msms(["merge".as_ref(), root.as_os_str()]).expect_code(0);
    msms(["verify".as_ref(), root.as_os_str()]).expect_code(0);
}

fn find_no_manifest(root: &Path) -> bool {
    !root.join("_manifest.json").exists() && !root.join("manifest.json").exists()
}
