//! Crash safety of `msms build-shards`: the output is byte-identical whatever the number of
//! workers and writers, and a run killed (SIGKILL) at any moment, interrupted (SIGINT,
//! SIGTERM) or stopped by a write error, then resumed with `--resume`, ends with exactly the
//! manifest (but for `run`) and the shards of an uninterrupted run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};

/// Settings that cut the input into many small shards, so that kills land between,
/// inside and around many shard finalisations.
const SETTINGS: [&str; 4] = ["--batch-size", "200", "--shard-size", "400000"];
const SPECTRA: u64 = 40_000;

struct Reference {
    input: Input,
    root: PathBuf,
    manifest: serde_json::Value,
    /// (path, sha256) of every shard.
    shards: Vec<(String, String)>,
    elapsed: Duration,
    /// Settings of every run of the test besides [`SETTINGS`].
    extra: Vec<String>,
}

fn reference(dir: &Path) -> Reference {
    reference_with(dir, &[])
}

/// The uninterrupted run with [`SETTINGS`] and `extra` (`{input}` stands for the input's path).
fn reference_with(dir: &Path, extra: &[&str]) -> Reference {
    let input = synth_input(&dir.join("in.hdf5"), "gems", SPECTRA, 0.02, 11);
    let extra: Vec<String> = extra
        .iter()
        .map(|a| a.replace("{input}", &input.path.display().to_string()))
        .collect();
    let root = dir.join("reference");
    let t = Instant::now();
    let mut args: Vec<&str> = SETTINGS.to_vec();
    args.extend(extra.iter().map(String::as_str));
    args.extend(["--num-workers", "1", "--writers", "1"]);
    build(&[&input.path], &root, &args).expect_code(0);
    let elapsed = t.elapsed();
    let manifest = read_manifest(&root);
    let shards = shard_digests(&root);
    assert!(
        shards.len() >= 20,
        "the test needs many shards, got {}",
        shards.len()
    );
    Reference {
        input,
        root,
        manifest,
        shards,
        elapsed,
        extra,
    }
}

/// (path, sha256) of every shard the manifest lists, after checking each file's digest.
fn shard_digests(root: &Path) -> Vec<(String, String)> {
    let m = read_manifest(root);
    m["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let path = s["path"].as_str().unwrap().to_string();
            let sha = s["sha256"].as_str().unwrap().to_string();
            assert_eq!(sha256_file(&root.join(&path)), sha, "{path}");
            (path, sha)
        })
        .collect()
}

/// The manifest without `run` (time, threads, writers: not part of the output).
fn content(mut m: serde_json::Value) -> serde_json::Value {
    m.as_object_mut().unwrap().remove("run");
    m
}

/// `root` holds exactly the reference output: same manifest (but `run`), same shard bytes,
/// no other file (no `.tmp`, no checkpoint).
#[track_caller]
fn assert_same_output(r: &Reference, root: &Path, what: &str) {
    let m = read_manifest(root);
    assert_eq!(
        m["dataset_digest"], r.manifest["dataset_digest"],
        "{what}: dataset digest"
    );
    assert_eq!(content(m), content(r.manifest.clone()), "{what}: manifest");
    assert_eq!(shard_digests(root), r.shards, "{what}: shard digests");
    assert_eq!(
        files_under(root),
        files_under(&r.root),
        "{what}: files in the output root"
    );
}

fn command(r: &Reference, root: &Path, extra: &[&str]) -> std::process::Command {
    let mut cmd = msms_command();
    cmd.arg("build-shards")
        .arg("--input-hdf5")
        .arg(&r.input.path)
        .arg("--output-root")
        .arg(root)
        .args(SETTINGS)
        .args(&r.extra)
        .args(extra);
    cmd
}

fn spawn(mut cmd: std::process::Command) -> Child {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let _g = fork_guard();
    cmd.spawn().expect("spawn msms")
}

/// Read the child's stderr until `marker` appears (then return the text so far), or until
/// it exits.
fn wait_for_marker(child: &mut Child, marker: &str) -> String {
    use std::io::Read;
    let mut err = child.stderr.take().expect("piped stderr");
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = err.read(&mut buf).expect("read stderr");
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if text.contains(marker) {
            break;
        }
    }
    text
}

/// Run the conversion into `root` with the `MSMS_TEST_STALL_AT` hook at `point`, and
/// SIGKILL it once it stalls there.
#[track_caller]
fn kill_at(r: &Reference, root: &Path, extra: &[&str], point: &str) {
    let mut cmd = command(r, root, extra);
    cmd.env("MSMS_TEST_STALL_AT", point);
    let mut child = spawn(cmd);
    let text = wait_for_marker(&mut child, &format!("stalled at {point}"));
    assert!(
        text.contains(&format!("msms: stalled at {point}")),
        "never reached {point}: {text}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Resume the run in `root` and check the result against the reference.
#[track_caller]
fn resume_and_compare(r: &Reference, root: &Path, extra: &[&str], what: &str) -> Run {
    let mut args = vec!["--resume"];
    args.extend_from_slice(extra);
    let run = run_command(command(r, root, &args));
    run.expect_code(0);
    assert_same_output(r, root, what);
    run
}

#[test]
fn output_is_identical_for_any_workers_and_writers() {
    let dir = tempfile::tempdir().unwrap();
    let r = reference(dir.path());
    for workers in ["1", "2", "4"] {
        for writers in ["1", "2"] {
            let root = dir.path().join(format!("w{workers}-{writers}"));
            let run = run_command(command(
                &r,
                &root,
                &["--num-workers", workers, "--writers", writers],
            ));
            run.expect_code(0);
            assert_same_output(&r, &root, &format!("{workers} workers × {writers} writers"));
            let m = read_manifest(&root);
            assert_eq!(m["run"]["writers"], writers.parse::<u64>().unwrap());
        }
    }
    // No shard exceeds the bound; every shard but the last is at least half full.
    let m = &r.manifest;
    let shards = m["shards"].as_array().unwrap();
    for (i, s) in shards.iter().enumerate() {
        let bytes = s["bytes"].as_u64().unwrap();
        assert!(bytes <= 400_000, "{s}");
        if i + 1 < shards.len() {
            assert!(bytes >= 200_000, "{s}");
        }
    }
}

/// kill -9 at the moments a crash hurts most (stalled there by the `MSMS_TEST_STALL_AT`
/// hook) and at seeded random times; resume each; compare with the uninterrupted run.
#[test]
fn kill_9_at_any_moment_then_resume_gives_identical_output() {
    let dir = tempfile::tempdir().unwrap();
    let r = reference(dir.path());
    let n = r.shards.len();
    let mut trials = 0;

    let points = [
        // Before the first checkpoint exists: --resume starts over and says so.
        "checkpoint-rename:0".to_string(),
        // Shard written and fsynced, not renamed.
        "shard-rename:3".to_string(),
        // Renamed into place, not yet in the checkpoint.
        format!("shard-renamed:{}", n / 2),
        // A checkpoint being replaced (with two writers, shards may be recorded two at a
        // time, so "the first checkpoint with at least 7 shards").
        "checkpoint-rename:>=7".to_string(),
        // All shards done; manifest written, not renamed / renamed, checkpoint not removed.
        "manifest-rename".to_string(),
        "manifest-renamed".to_string(),
    ];
    for (i, point) in points.iter().enumerate() {
        let root = dir.path().join(format!("stall-{i}"));
        let workers = ["1", "2"][i % 2];
        kill_at(
            &r,
            &root,
            &["--num-workers", workers, "--writers", "2"],
            point,
        );
        assert!(
            !root.join("manifest.json").exists() || point == "manifest-renamed",
            "{point}: a manifest before the end"
        );
        let run = resume_and_compare(&r, &root, &[], point);
        if point == "checkpoint-rename:0" {
            assert!(
                run.stderr.contains("holds no checkpoint") && run.stderr.contains("beginning"),
                "{}",
                run.stderr
            );
        } else {
            assert!(run.stderr.contains("resuming"), "{point}: {}", run.stderr);
        }
        trials += 1;
    }

    // Random moments, seeded: after a random number of finalised shards plus a random part
    // of one shard's time, so the kills spread over the whole run and hit every kind of
    // state (writing, finalising, checkpointing), whatever the machine's speed.
    let mut rng = rand::rngs::SmallRng::seed_from_u64(2026);
    let per_shard = r.elapsed / n as u32;
    let mut killed_mid_run = 0;
    for i in 0..10 {
        let root = dir.path().join(format!("random-{i}"));
        let workers = ["1", "2", "3"][i % 3];
        let writers = ["1", "2"][i % 2];
        let child_cmd = command(&r, &root, &["--num-workers", workers, "--writers", writers]);
        let mut child = spawn(child_cmd);
        let after = rng.random_range(0..n - 1);
        let extra = per_shard.mul_f64(rng.random_range(0.0..1.0));
        wait_for_shards(&root, after, &mut child);
        std::thread::sleep(extra);
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Resume with other thread counts than the killed run: allowed, same bytes.
        resume_and_compare(
            &r,
            &root,
            &["--num-workers", ["2", "1", "4"][i % 3]],
            &format!("random kill {i} after {after} shards + {extra:?}"),
        );
        trials += 1;
    }
    assert!(
        killed_mid_run >= 8,
        "only {killed_mid_run} of 10 random kills hit a running process"
    );

    // Killed twice: during the run, then during the resume.
    let root = dir.path().join("twice");
    kill_at(&r, &root, &[], "shard-renamed:4");
    kill_at(&r, &root, &["--resume"], &format!("shard-rename:{}", n - 3));
    resume_and_compare(&r, &root, &[], "killed twice");
    trials += 1;
    assert!(trials >= 17, "{trials} trials");
}

/// Wait until the checkpoint in `root` lists at least `k` shards (the run is under way).
fn wait_for_shards(root: &Path, k: usize, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let shards = std::fs::read_to_string(root.join(".msms/checkpoint.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .map_or(0, |c| c["shards"].as_array().map_or(0, |a| a.len()));
        if shards >= k {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before {k} shards were checkpointed"
        );
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn sigint_and_sigterm_stop_cleanly_with_130_then_resume_or_start_over() {
    let dir = tempfile::tempdir().unwrap();
    let r = reference(dir.path());
    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let root = dir.path().join(name);
        let mut child = spawn(command(&r, &root, &["--writers", "2"]));
        wait_for_shards(&root, 3, &mut child);
        // SAFETY: plain kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{name}: {stderr}");
        assert!(stderr.contains("interrupted"), "{name}: {stderr}");
        assert!(stderr.contains("--resume"), "{name}: {stderr}");
        assert!(!stderr.contains("--overwrite"), "{name}: {stderr}");
        let files = files_under(&root);
        assert!(
            files.iter().all(|f| !f.ends_with(".tmp")),
            "{name}: {files:?}"
        );
        assert!(files.contains(&".msms/checkpoint.json".to_string()));
        assert!(!files.contains(&"manifest.json".to_string()));
        // Without --resume, the interrupted run is not silently replaced.
        let again = run_command(command(&r, &root, &[]));
        again.expect_code(2);
        assert!(
            again.stderr.contains("holds an interrupted run")
                && again.stderr.contains("--resume")
                && again.stderr.contains("--overwrite"),
            "{}",
            again.stderr
        );
        if signal == libc::SIGINT {
            resume_and_compare(&r, &root, &[], name);
        } else {
            // Starting over instead: --overwrite removes the shards and the checkpoint.
            run_command(command(&r, &root, &["--overwrite"])).expect_code(0);
            assert_same_output(&r, &root, "started over with --overwrite");
        }
    }
}

#[test]
fn resume_refuses_other_settings_or_inputs_and_says_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let r = reference(dir.path());
    let root = dir.path().join("out");
    kill_at(&r, &root, &[], "shard-renamed:2");

    let other = run_command(command(&r, &root, &["--resume", "--normalize", "sum"]));
    other.expect_code(2);
    assert!(
        other
            .stderr
            .contains("setting normalize: checkpoint \"max\", now \"sum\""),
        "{}",
        other.stderr
    );
    let other = run_command(command(&r, &root, &["--resume", "--max-peaks", "50"]));
    other.expect_code(2);
    assert!(
        other
            .stderr
            .contains("setting max_peaks: checkpoint null, now 50"),
        "{}",
        other.stderr
    );
    // Another input file in the same place.
    let moved = dir.path().join("moved.hdf5");
    std::fs::rename(&r.input.path, &moved).unwrap();
    synth_input(&r.input.path, "gems", SPECTRA - 1, 0.02, 11);
    let other = run_command(command(&r, &root, &["--resume"]));
    other.expect_code(2);
    assert!(
        other.stderr.contains("input 1") && other.stderr.contains("spectra 40000 → 39999"),
        "{}",
        other.stderr
    );
    std::fs::rename(&moved, &r.input.path).unwrap();
    // The refusals changed nothing: the right command still resumes to the same output.
    resume_and_compare(&r, &root, &[], "after refusals");
    // And resuming a finished run does nothing, successfully.
    let again = resume_and_compare(&r, &root, &[], "resume of a finished run");
    assert!(
        again.stderr.contains("nothing to resume"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_damaged_finished_shard_is_written_again_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let r = reference(dir.path());
    let root = dir.path().join("out");
    kill_at(&r, &root, &[], "shard-renamed:9");
    // Flip one byte of shard 5: shards 5.. are written again, 0..4 kept.
    let victim = root.join("train/shard-00005.parquet");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&victim, bytes).unwrap();
    let run = resume_and_compare(&r, &root, &[], "damaged shard");
    assert!(
        run.stderr
            .contains("train/shard-00005.parquet does not match the checkpoint"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("5 finished shards verified"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_file_size_limit_fails_cleanly_and_resume_finishes_the_run() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let r = reference(dir.path());
    let root = dir.path().join("out");
    // 300 kB per file: every shard (up to 400 kB) may hit it. SIGXFSZ is ignored by msms,
    // so the write fails with EFBIG.
    let mut cmd = command(&r, &root, &["--writers", "2"]);
    // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 300_000,
                rlim_max: 300_000,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let run = run_command(cmd);
    run.expect_code(1);
    assert!(
        run.stderr.contains("shard-") && run.stderr.contains(".parquet.tmp"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("File too large"), "{}", run.stderr);
    assert!(run.stderr.contains("--resume"), "{}", run.stderr);
    // Nothing unfinished or oversized under any name; the checkpoint is there.
    for f in files_under(&root) {
        assert!(!f.ends_with(".tmp"), "{f}");
        if f.ends_with(".parquet") {
            let bytes = std::fs::metadata(root.join(&f)).unwrap().len();
            assert!(bytes <= 300_000, "{f}: {bytes}");
        }
    }
    assert!(root.join(".msms/checkpoint.json").is_file());
    assert!(!root.join("manifest.json").exists());
    // With the limit lifted, the run finishes as if nothing happened.
    resume_and_compare(&r, &root, &[], "after a file-size limit");
}

/// The same crash safety with three splits and `--dedup exact` over the input given twice
/// (every spectrum of the second copy is a duplicate): each split resumes after its own last
/// shard, and the dedup state is rebuilt from the kept shards.
#[test]
fn kill_9_with_splits_and_dedup_then_resume_gives_identical_output() {
    let dir = tempfile::tempdir().unwrap();
    let r = reference_with(
        dir.path(),
        &[
            "--input-hdf5",
            "{input}",
            "--splits",
            "train=0.8,val=0.1,test=0.1",
            "--dedup",
            "exact",
        ],
    );
    assert_eq!(r.manifest["counts"]["read"], 2 * SPECTRA);
    assert_eq!(
        r.manifest["counts"]["rejected"]["duplicate"],
        r.manifest["counts"]["written"]
    );
    let n = r.shards.len();
    for (i, point) in [
        "shard-renamed:2".to_string(),
        "shard-rename:9".to_string(),
        format!("shard-renamed:{}", n / 2),
        "manifest-rename".to_string(),
    ]
    .iter()
    .enumerate()
    {
        let root = dir.path().join(format!("stall-{i}"));
        kill_at(&r, &root, &["--num-workers", "2", "--writers", "2"], point);
        resume_and_compare(&r, &root, &[], &format!("splits+dedup, {point}"));
    }
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    for i in 0..3 {
        let root = dir.path().join(format!("random-{i}"));
        let mut child = spawn(command(&r, &root, &["--num-workers", "2"]));
        let after = rng.random_range(0..n - 1);
        wait_for_shards(&root, after, &mut child);
        child.kill().unwrap();
        child.wait().unwrap();
        resume_and_compare(&r, &root, &[], &format!("splits+dedup, random kill {i}"));
    }
}
