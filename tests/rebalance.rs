//! `msms rebalance`: a merged 3-part root rewritten into even shards holds exactly the rows of
//! a single run, within the shard bound, verifies, and survives a kill -9 with `--resume`.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use arrow::array::{RecordBatch, RecordBatchReader};
use arrow::compute::concat_batches;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::reader::{FileReader, SerializedFileReader};

use common::*;

const SPLITS: [&str; 2] = ["--splits", "train=0.8,val=0.1,test=0.1"];
const SHARD_SIZE: u64 = 1_000_000;

/// A single run and the same conversion as 3 merged parts, both with 1 MB shards.
struct Fixture {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    single: PathBuf,
    merged: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let a = synth_input(&dir.join("a.hdf5"), "gems", 6000, 0.02, 1);
    let b = synth_input(&dir.join("b.hdf5"), "gems", 5000, 0.02, 2);
    let settings = [SPLITS[0], SPLITS[1], "--shard-size", "1MB"];
    let single = dir.join("single");
    build(&[&a.path, &b.path], &single, &settings).expect_code(0);
    let mut plan: Vec<std::ffi::OsString> = vec!["plan".into(), "--input-hdf5".into()];
    plan.extend([a.path.clone().into(), b.path.clone().into()]);
    plan.extend(["--parts".into(), "3".into(), "--output".into()]);
    plan.push(dir.join("plan.json").into());
    plan.extend(settings.iter().map(|s| s.into()));
    msms(plan).expect_code(0);
    let merged = dir.join("merged");
    for k in 0..3 {
        let mut cmd = msms_command();
        cmd.arg("build-shards")
            .arg("--plan")
            .arg(dir.join("plan.json"))
            .args(["--part", &k.to_string(), "--output-root"])
            .arg(&merged);
        run_command(cmd).expect_code(0);
    }
    msms(["merge".as_ref(), merged.as_os_str()]).expect_code(0);
    Fixture {
        _dir: tmp,
        dir,
        single,
        merged,
    }
}

/// `msms rebalance SOURCE --output-root OUT EXTRA...`, not yet run.
fn rebalance_command(source: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = msms_command();
    cmd.arg("rebalance")
        .arg(source)
        .arg("--output-root")
        .arg(out)
        .args(extra)
        // The encoding window is two row groups per thread: fixed, so that the checkpoints
        // the interruption test stops between fall where it expects them.
        .env("RAYON_NUM_THREADS", "2");
    cmd
}

fn rebalance(source: &Path, out: &Path, extra: &[&str]) -> Run {
    run_command(rebalance_command(source, out, extra))
}

/// Every row of `split`, as one Arrow batch, in the order the manifest lists its shards.
fn split_rows(root: &Path, split: &str) -> RecordBatch {
    let m = read_manifest(root);
    let mut batches = Vec::new();
    let mut schema = None;
    for s in m["shards"].as_array().unwrap() {
        if s["split"] != split {
            continue;
        }
        let path = root.join(s["path"].as_str().unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        schema = Some(reader.schema());
        batches.extend(reader.map(|b| b.unwrap()));
    }
    concat_batches(&schema.expect("the split has shards"), &batches).unwrap()
}

/// (path, sha256) of every shard the manifest lists.
fn shard_digests(root: &Path) -> Vec<(String, String)> {
    read_manifest(root)["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap().to_string(),
                s["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every shard within `max` bytes (as on disk), and every one of a split but its last at
/// least half of it.
fn assert_even(root: &Path, max: u64) {
    let m = read_manifest(root);
    for split in m["splits"].as_object().unwrap().keys() {
        let shards: Vec<&serde_json::Value> = m["shards"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| &s["split"] == split)
            .collect();
        assert!(!shards.is_empty(), "{split}");
        for (i, s) in shards.iter().enumerate() {
            let path = root.join(s["path"].as_str().unwrap());
            let bytes = std::fs::metadata(&path).unwrap().len();
            assert_eq!(bytes, s["bytes"].as_u64().unwrap(), "{}", path.display());
            assert!(bytes <= max, "{}: {bytes} > {max}", path.display());
            if i + 1 < shards.len() {
                assert!(bytes >= max / 2, "{}: {bytes} < {max}/2", path.display());
            }
        }
    }
}

#[test]
fn a_merged_root_rebalances_to_the_rows_of_a_single_run_in_even_shards() {
    let f = fixture();
    let merged = read_manifest(&f.merged);
    let single = read_manifest(&f.single);
    // The parts left one small last shard per split each.
    let small = merged["shards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["bytes"].as_u64().unwrap() < SHARD_SIZE / 2)
        .count();
    assert!(small > 3, "{small} small shards in the merged root");

    let even = f.dir.join("even");
    let r = rebalance(&f.merged, &even, &[]);
    r.expect_code(0);
    assert!(
        r.stdout.contains("msms rebalance: done: 10,"),
        "{}",
        r.stdout
    );
    let m = read_manifest(&even);
    assert_even(&even, SHARD_SIZE);
    for split in ["train", "val", "test"] {
        assert_eq!(
            split_rows(&even, split),
            split_rows(&f.single, split),
            "{split}"
        );
        assert_eq!(m["splits"][split]["rows"], single["splits"][split]["rows"]);
    }
    // The same settings as the single run: the same config hash, counts and schema, and
    // here (row groups cut alike) the same number of shards per split.
    for key in [
        "config_hash",
        "settings",
        "counts",
        "schema",
        "inputs",
        "mode",
    ] {
        assert_eq!(m[key], single[key], "{key}");
    }
    for split in ["train", "val", "test"] {
        assert_eq!(
            m["splits"][split]["shards"],
            single["splits"][split]["shards"]
        );
    }
    assert_eq!(
        m["rebalanced_from"],
        serde_json::json!({
            "dataset_digest": merged["dataset_digest"],
            "config_hash": merged["config_hash"],
        })
    );
    assert!(m["run"]["threads"]
        .as_str()
        .unwrap()
        .starts_with("rebalanced from "));
    msms(["verify".as_ref(), even.as_os_str(), "--full".as_ref()]).expect_code(0);
    // The source is untouched and still verifies.
    msms(["verify".as_ref(), f.merged.as_os_str()]).expect_code(0);

    // Another layout: smaller shards, small row groups, another codec.
    let small = f.dir.join("small");
    rebalance(
        &f.merged,
        &small,
        &[
            "--shard-size",
            "400KB",
            "--row-group-size",
            "700",
            "--compression",
            "lz4",
        ],
    )
    .expect_code(0);
    let m = read_manifest(&small);
    assert_even(&small, 400_000);
    assert_eq!(m["settings"]["shard_size"], "400kB");
    assert_eq!(m["settings"]["row_group_size"], 700);
    assert_eq!(m["settings"]["compression"], "lz4");
    assert_eq!(m["profile"]["compression"], "lz4");
    assert_ne!(m["config_hash"], single["config_hash"]);
    assert_eq!(m["counts"], single["counts"]);
    for split in ["train", "val", "test"] {
        assert_eq!(
            split_rows(&small, split),
            split_rows(&f.single, split),
            "{split}"
        );
    }
    for s in m["shards"].as_array().unwrap() {
        let path = small.join(s["path"].as_str().unwrap());
        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let meta = reader.metadata();
        let kv = meta.file_metadata().key_value_metadata().unwrap();
        let hash = kv
            .iter()
            .find(|k| k.key == "msms_shards.config_hash")
            .and_then(|k| k.value.clone());
        assert_eq!(hash.as_deref(), m["config_hash"].as_str());
        for g in meta.row_groups() {
            assert!(g.num_rows() <= 700, "{}", path.display());
            assert!(g
                .columns()
                .iter()
                .all(|c| c.compression() == Compression::LZ4_RAW));
        }
    }
    msms(["verify".as_ref(), small.as_os_str(), "--full".as_ref()]).expect_code(0);
}

#[test]
fn an_interrupted_rebalance_resumes_to_the_same_bytes() {
    let f = fixture();
    let layout = ["--shard-size", "300KB", "--row-group-size", "500"];
    let whole = f.dir.join("whole");
    rebalance(&f.merged, &whole, &layout).expect_code(0);
    let want = shard_digests(&whole);
    assert!(want.len() > 12, "{} shards", want.len());

    let cut = f.dir.join("cut");
    // Killed (SIGKILL) while the checkpoint listing its 6th shard is being written.
    stall_and_kill(
        rebalance_command(&f.merged, &cut, &layout),
        "checkpoint-rename:>=6",
    );
    let status = msms(["status".as_ref(), cut.as_os_str()]);
    status.expect_code(0);
    assert!(status.stdout.contains("interrupted"), "{}", status.stdout);
    assert!(status.stdout.contains("rebalance"), "{}", status.stdout);
    // Without --resume the interrupted run is named, not overwritten.
    let again = rebalance(&f.merged, &cut, &layout);
    again.expect_code(2);
    assert!(again.stderr.contains("--resume"), "{}", again.stderr);
    let resumed = rebalance(&f.merged, &cut, &[&layout[..], &["--resume"]].concat());
    resumed.expect_code(0);
    let kept: usize = resumed
        .stderr
        .split("resuming ")
        .nth(1)
        .and_then(|t| t.split(": ").nth(1))
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resume notice:\n{}", resumed.stderr));
    assert!(
        (1..want.len()).contains(&kept),
        "{kept} kept\n{}",
        resumed.stderr
    );
    assert_eq!(shard_digests(&cut), want);
    assert_eq!(
        read_manifest(&cut)["dataset_digest"],
        read_manifest(&whole)["dataset_digest"]
    );
    assert!(!cut.join(".msms").exists());
    msms(["verify".as_ref(), cut.as_os_str(), "--full".as_ref()]).expect_code(0);
    // A finished rebalance resumed is done.
    let done = rebalance(&f.merged, &cut, &[&layout[..], &["--resume"]].concat());
    done.expect_code(0);
    assert!(done.stdout.contains("already done"), "{}", done.stdout);
    assert_eq!(shard_digests(&cut), want);
}

#[test]
fn ctrl_c_stops_a_rebalance_cleanly_and_resume_finishes_it() {
    let f = fixture();
    let layout = ["--shard-size", "300KB", "--row-group-size", "500"];
    let whole = f.dir.join("whole");
    rebalance(&f.merged, &whole, &layout).expect_code(0);
    let out = f.dir.join("stopped");
    // Held once shard 2 of train is in place; SIGINT then lets it stop at a clean point.
    let mut cmd = rebalance_command(&f.merged, &out, &layout);
    cmd.env("MSMS_TEST_STALL_AT", "shard-renamed:2")
        .env("MSMS_TEST_STALL_RELEASE", "stop")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = {
        let _g = fork_guard();
        cmd.spawn().unwrap()
    };
    let mut err = child.stderr.take().unwrap();
    let mut text = read_until_stalled(&mut err, "shard-renamed:2");
    // SAFETY: signalling our own child, which has not been reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    std::io::Read::read_to_string(&mut err, &mut text).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(
        text.contains("interrupted: ") && text.contains("--resume"),
        "{text}"
    );
    assert!(!out.join("_manifest.json").exists());
    rebalance(&f.merged, &out, &[&layout[..], &["--resume"]].concat()).expect_code(0);
    assert_eq!(shard_digests(&out), shard_digests(&whole));
}

#[test]
fn rebalance_refuses_a_source_that_is_not_what_its_manifest_says() {
    let f = fixture();
    let m = read_manifest(&f.merged);
    // The last shard of the merged root changed (one byte): found when it is reached.
    let last = m["shards"].as_array().unwrap().last().unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    refused_when_damaged(&f, "from_damaged", &last, |_| 200);
    // The first shard's footer unreadable (its length's high byte flipped; the schema is
    // read from it): refused the same way.
    let first = m["shards"][0]["path"].as_str().unwrap().to_string();
    refused_when_damaged(&f, "from_damaged_first", &first, |len| len - 5);
    // Inside the source root: refused before anything is written.
    let r = rebalance(&f.merged, &f.merged.join("even"), &[]);
    r.expect_code(2);
    assert!(r.stderr.contains("inside the source root"), "{}", r.stderr);
    assert!(!f.merged.join("even").exists());
}

/// A copy of the fixture's merged root with one byte of `shard` flipped (at `at(its
/// length)`), rebalanced into `out`: refused naming the shard and `msms verify`, and nothing
/// of `out` is left (no checkpoint to trip over once the source is repaired).
fn refused_when_damaged(f: &Fixture, out: &str, shard: &str, at: impl Fn(usize) -> usize) {
    let copy = f.dir.join(format!("copy_for_{out}"));
    copy_dir(&f.merged, &copy);
    let mut bytes = std::fs::read(copy.join(shard)).unwrap();
    let at = at(bytes.len());
    bytes[at] ^= 0x40;
    std::fs::write(copy.join(shard), bytes).unwrap();
    let out = f.dir.join(out);
    let r = rebalance(&copy, &out, &[]);
    r.expect_code(2);
    assert!(
        r.stderr.contains(shard) && r.stderr.contains("msms verify"),
        "{}",
        r.stderr
    );
    assert!(!out.exists(), "{:?}", files_under(&out));
}

/// Copy a directory tree.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn rebalance_refuses_what_it_cannot_rewrite_and_holds_its_root() {
    let f = fixture();
    // Parts not yet merged: no manifest at the root.
    let unmerged = f.dir.join("unmerged");
    std::fs::create_dir(&unmerged).unwrap();
    std::fs::copy(f.dir.join("plan.json"), unmerged.join("_plan.json")).unwrap();
    let r = rebalance(&unmerged, &f.dir.join("x"), &[]);
    r.expect_code(2);
    assert!(r.stderr.contains("msms merge"), "{}", r.stderr);
    assert!(!f.dir.join("x").exists());
    // Into itself.
    let r = rebalance(&f.merged, &f.merged, &[]);
    r.expect_code(2);
    assert!(r.stderr.contains("is the source root"), "{}", r.stderr);

    // A second command on a root a rebalance holds exits 2 naming it; the first finishes.
    let out = f.dir.join("held");
    let held = Held::start(
        rebalance_command(&f.merged, &out, &["--shard-size", "300KB"]),
        "shard-renamed:1",
        f.dir.join("release"),
    );
    let second = rebalance(&f.merged, &out, &["--shard-size", "300KB", "--resume"]);
    second.expect_code(2);
    assert!(
        second.stderr.contains("rebalance") && second.stderr.contains(&held.pid().to_string()),
        "{}",
        second.stderr
    );
    let build = build(&[&f.dir.join("a.hdf5")], &out, &["--overwrite"]);
    build.expect_code(2);
    assert_eq!(held.release(), 0);
    msms(["verify".as_ref(), out.as_os_str(), "--full".as_ref()]).expect_code(0);
    assert_even(&out, 300_000);
}
