//! Crash safety of `msms build-shards`: the output is byte-identical whatever the number of
//! workers and writers, and a run killed (SIGKILL) at any moment, interrupted (SIGINT,
//! SIGTERM, twice) or stopped by a write error, then resumed with `--resume`, ends with
//! exactly the manifest (but for `run`) and the shards of an uninterrupted run.
//!
//! Every kill and signal is sent to a run stopped at a known state, never at a moment: the
//! child is stalled by the `MSMS_TEST_STALL_AT` hook, which prints `msms: stalled at ...` on
//! stderr, and the test reads that line from the pipe before it acts. The "random" kills are
//! seeded random stall points (a shard renamed, a shard holding some number of bytes, a
//! checkpoint being replaced).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ExitStatus, Stdio};

use common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Settings that cut the input into many small shards, so that kills land between,
/// inside and around many shard finalisations.
/// Small row groups, so that shards close (and the checkpoint records them) all through the
/// run rather than all at once from one large row group at its end.
const SETTINGS: [&str; 6] = [
    "--batch-size",
    "200",
    "--shard-size",
    "400000",
    "--row-group-size",
    "300",
];
const SPECTRA: u64 = 40_000;

struct Reference {
    input: Input,
    root: PathBuf,
    manifest: serde_json::Value,
    /// (path, sha256) of every shard.
    shards: Vec<(String, String)>,
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
    let mut args: Vec<&str> = SETTINGS.to_vec();
    args.extend(extra.iter().map(String::as_str));
    args.extend(["--num-workers", "1", "--writers", "1"]);
    build(&[&input.path], &root, &args).expect_code(0);
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

/// A run stopped at a stall point of the `MSMS_TEST_STALL_AT` hook, and its stderr so far.
struct Stalled {
    child: Child,
    err: ChildStderr,
    text: String,
}

impl Stalled {
    /// Start the conversion into `root` with the hook at `point` and return once it has
    /// stalled there (it said so on stderr). With `release`, a SIGINT/SIGTERM ends the stall
    /// (`MSMS_TEST_STALL_RELEASE=stop`) so the run can stop gracefully; otherwise only a
    /// kill ends it.
    #[track_caller]
    fn start(r: &Reference, root: &Path, extra: &[&str], point: &str, release: bool) -> Stalled {
        let mut cmd = command(r, root, extra);
        cmd.env("MSMS_TEST_STALL_AT", point);
        if release {
            cmd.env("MSMS_TEST_STALL_RELEASE", "stop");
        }
        let mut child = spawn(cmd);
        let err = child.stderr.take().expect("piped stderr");
        let mut s = Stalled {
            child,
            err,
            text: String::new(),
        };
        if !s.read_until(&format!("msms: stalled at {point}")) {
            let status = s.child.wait().unwrap();
            panic!("the run never reached {point} ({status}): {}", s.text);
        }
        s
    }

    /// Read stderr until `marker` is in it (true) or the child closed it (false).
    fn read_until(&mut self, marker: &str) -> bool {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        while !self.text.contains(marker) {
            let n = self.err.read(&mut buf).expect("read stderr");
            if n == 0 {
                return false;
            }
            self.text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        true
    }

    /// Wait until the child says `marker` on stderr.
    #[track_caller]
    fn expect(&mut self, marker: &str) {
        assert!(self.read_until(marker), "no {marker:?}: {}", self.text);
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: plain kill(2) on our own child's pid (not yet waited for).
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// kill -9, and wait for the child.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Wait for the child to exit by itself: its status and all of its stderr.
    fn finish(mut self) -> (ExitStatus, String) {
        use std::io::Read;
        let mut rest = Vec::new();
        self.err.read_to_end(&mut rest).expect("read stderr");
        self.text.push_str(&String::from_utf8_lossy(&rest));
        (self.child.wait().unwrap(), self.text)
    }
}

/// Run the conversion into `root` with the `MSMS_TEST_STALL_AT` hook at `point`, and
/// SIGKILL it once it stalls there: it is running, by construction.
#[track_caller]
fn kill_at(r: &Reference, root: &Path, extra: &[&str], point: &str) {
    Stalled::start(r, root, extra, point, false).kill();
}

/// The index of a shard from its path (`train/shard-00005.parquet` → 5).
fn shard_index(path: &str) -> usize {
    let name = path.rsplit('/').next().unwrap();
    name.trim_start_matches("shard-")
        .trim_end_matches(".parquet")
        .parse()
        .unwrap_or_else(|_| panic!("shard path {path}"))
}

/// A seeded random stall point of the run `r`, of one of three kinds: `kind % 3 == 0`, a
/// shard renamed into place and not yet checkpointed (`shard-renamed:>=K`); 1, a shard in the
/// middle of being written, holding at least B bytes (`shard-bytes:K:>=B`, B at most half the
/// shard's final size, so reached before its footer); 2, a checkpoint with at least K shards
/// being replaced (K at most half the shards: checkpoints are saved per batch of finalised
/// shards, and the last ones may be finalised with the manifest). Every point is reached by
/// every run, whatever the threads, so the kill hits a running process.
fn random_point(r: &Reference, rng: &mut SmallRng, kind: usize) -> String {
    let n = r.shards.len();
    // Shard indices restart in each split; the stall matches the first split to reach one.
    let last = r.shards.iter().map(|(p, _)| shard_index(p)).max().unwrap();
    match kind % 3 {
        0 => format!("shard-renamed:>={}", rng.random_range(0..=last)),
        1 => {
            let k = rng.random_range(0..=last);
            let smallest = r.manifest["shards"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| shard_index(s["path"].as_str().unwrap()) == k)
                .map(|s| s["bytes"].as_u64().unwrap())
                .min()
                .unwrap();
            format!("shard-bytes:{k}:>={}", rng.random_range(1..=smallest / 2))
        }
        _ => format!("checkpoint-rename:>={}", rng.random_range(1..=n / 2)),
    }
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

/// kill -9 at the states where a crash hurts most and at seeded random states (all reached
/// through the `MSMS_TEST_STALL_AT` hook, so every kill hits a running process); resume
/// each; compare with the uninterrupted run.
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
            !root.join("_manifest.json").exists() || point == "manifest-renamed",
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

    // Random states, seeded: shards renamed, shards being written, checkpoints being
    // replaced, spread over the whole run.
    let mut rng = SmallRng::seed_from_u64(2026);
    for i in 0..10 {
        let root = dir.path().join(format!("random-{i}"));
        let workers = ["1", "2", "3"][i % 3];
        let writers = ["1", "2"][i % 2];
        let point = random_point(&r, &mut rng, i);
        kill_at(
            &r,
            &root,
            &["--num-workers", workers, "--writers", writers],
            &point,
        );
        // Resume with other thread counts than the killed run: allowed, same bytes.
        resume_and_compare(
            &r,
            &root,
            &["--num-workers", ["2", "1", "4"][i % 3]],
            &format!("random kill {i} at {point} ({workers} workers, {writers} writers)"),
        );
        trials += 1;
    }

    // Killed twice: during the run, then during the resume.
    let root = dir.path().join("twice");
    kill_at(&r, &root, &[], "shard-renamed:4");
    kill_at(&r, &root, &["--resume"], &format!("shard-rename:{}", n - 3));
    resume_and_compare(&r, &root, &[], "killed twice");
    trials += 1;
    assert!(trials >= 17, "{trials} trials");
}

/// SIGINT or SIGTERM while shard 3 has just been renamed into place (stalled there; the
/// signal ends the stall): exit 130, every closed shard finalised and kept in the
/// checkpoint, nothing unfinished left; then `--resume` (or `--overwrite`) gives the same
/// output.
#[test]
fn sigint_and_sigterm_stop_cleanly_with_130_then_resume_or_start_over() {
    let dir = tempfile::tempdir().unwrap();
    let r = reference(dir.path());
    let point = "shard-renamed:3";
    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let root = dir.path().join(name);
        let s = Stalled::start(&r, &root, &["--writers", "2"], point, true);
        s.signal(signal);
        let (status, stderr) = s.finish();
        assert_eq!(status.code(), Some(130), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("msms: stop requested while stalled at {point}")),
            "{name}: {stderr}"
        );
        assert!(stderr.contains("interrupted"), "{name}: {stderr}");
        assert!(stderr.contains("--resume"), "{name}: {stderr}");
        assert!(!stderr.contains("--overwrite"), "{name}: {stderr}");
        let files = files_under(&root);
        assert!(
            files.iter().all(|f| !f.ends_with(".tmp")),
            "{name}: {files:?}"
        );
        assert!(files.contains(&".msms/checkpoint.json".to_string()));
        assert!(!files.contains(&"_manifest.json".to_string()));
        // Shards 0..=3 were closed before the signal: all are finalised and kept, as the
        // message says, and they are the reference's first shards, byte for byte.
        let checkpoint: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join(".msms/checkpoint.json")).unwrap(),
        )
        .unwrap();
        let kept: Vec<(String, String)> = checkpoint["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let path = s["path"].as_str().unwrap().to_string();
                assert_eq!(
                    sha256_file(&root.join(&path)),
                    s["sha256"],
                    "{name}: {path}"
                );
                (path, s["sha256"].as_str().unwrap().to_string())
            })
            .collect();
        assert!(
            kept.len() >= 4 && kept.len() < r.shards.len(),
            "{name}: {} shards kept",
            kept.len()
        );
        assert_eq!(kept[..], r.shards[..kept.len()], "{name}: kept shards");
        assert!(
            stderr.contains(&format!("interrupted: {} finished shards kept", kept.len())),
            "{name}: {stderr}"
        );
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

/// README: "A second signal exits at once (`--resume` cleans up)". The first SIGINT asks for
/// the graceful stop, which waits for the writers; one is stalled in the middle of shard 5,
/// so that stop cannot finish. The second SIGINT ends the run at once: exit 130, without
/// the graceful stop's report, shard 5's `.tmp` left behind; `--resume` removes it and ends
/// with the reference's bytes.
#[test]
fn a_second_sigint_exits_at_once_and_resume_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let r = reference(dir.path());
    let root = dir.path().join("out");
    let shard5 = &r.manifest["shards"][5];
    assert_eq!(shard5["path"], "train/shard-00005.parquet");
    let point = format!("shard-bytes:5:>={}", shard5["bytes"].as_u64().unwrap() / 2);
    let mut s = Stalled::start(&r, &root, &["--writers", "2"], &point, false);
    s.signal(libc::SIGINT);
    // The first signal was handled: the stop flag is set, the writer still stalled.
    s.expect(&format!("msms: stop requested while stalled at {point}"));
    s.signal(libc::SIGINT);
    let (status, stderr) = s.finish();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        !stderr.contains("interrupted") && !stderr.contains("--resume"),
        "the graceful stop ran: {stderr}"
    );
    let files = files_under(&root);
    assert!(
        files.contains(&"train/shard-00005.parquet.tmp".to_string()),
        "{files:?}"
    );
    assert!(!files.contains(&"_manifest.json".to_string()), "{files:?}");
    let run = resume_and_compare(&r, &root, &[], "after a second SIGINT");
    assert!(run.stderr.contains("resuming"), "{}", run.stderr);
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
    assert!(!root.join("_manifest.json").exists());
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
    let mut rng = SmallRng::seed_from_u64(7);
    for i in 0..3 {
        let root = dir.path().join(format!("random-{i}"));
        let point = random_point(&r, &mut rng, i);
        kill_at(&r, &root, &["--num-workers", "2"], &point);
        resume_and_compare(
            &r,
            &root,
            &[],
            &format!("splits+dedup, random kill {i} at {point}"),
        );
    }
}
