//! Format-1 output roots (`ROOT/manifest.json`, shard footers saying
//! `msms_shards.format_version` = 1), as the msms before format 2 wrote them, are still read:
//! `verify`, `quality-report`, `merge` (of format-1 parts), `build-shards --resume` /
//! `--overwrite` and `doctor` accept them; an interrupted run of another format is refused
//! with the reason. New output is format 2 with `ROOT/_manifest.json`.
//!
//! The format-1 roots are real ones, made by the b27fe57 msms (`tests/fixtures/format1/`,
//! whose README says how); each test works on a copy.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// The committed format-1 fixtures.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format1")
}

/// Copy the directory `from` to `to` (created), recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A copy of the fixtures (inputs `a.h5`, `b.h5`, roots `split/`, `planned/`) in `dir`.
fn fixture_copy(dir: &Path) -> PathBuf {
    let to = dir.join("f1");
    copy_dir(&fixtures(), &to);
    to
}

/// A JSON file.
fn read_json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `msms_shards.format_version` of every shard the manifest `m` of `root` lists.
fn footer_versions(root: &Path, m: &serde_json::Value) -> Vec<String> {
    m["shards"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let path = root.join(s["path"].as_str().unwrap());
            read_shard(&path, i).key_value["msms_shards.format_version"].clone()
        })
        .collect()
}

/// `msms ARGS...` run in `cwd` (the format-1 manifests record their inputs as `a.h5`,
/// `b.h5`, relative to the directory they were converted in).
fn msms_in(cwd: &Path, args: &[&str]) -> Run {
    let mut cmd = msms_command();
    cmd.current_dir(cwd).args(args);
    run_command(cmd)
}

/// The `build-shards` command line that made the fixture `split/`, with `extra` flags.
fn split_command<'a>(root: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "build-shards",
        "--input-hdf5",
        "a.h5",
        "b.h5",
        "--output-root",
        root,
        "--splits",
        "train=0.6,test=0.4",
        "--shard-size",
        "40kB",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn the_fixture_is_a_real_format1_root() {
    let root = fixtures().join("split");
    assert!(root.join("manifest.json").is_file());
    assert!(!root.join("_manifest.json").exists());
    let m = read_json(&root.join("manifest.json"));
    assert_eq!(m["format_version"], 1);
    let versions = footer_versions(&root, &m);
    assert_eq!(versions.len(), 4);
    assert!(versions.iter().all(|v| v == "1"), "{versions:?}");
}

#[test]
fn format1_roots_verify_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let f1 = fixture_copy(dir.path());
    let root = f1.join("split");
    let root_s = root.to_str().unwrap();

    let run = msms(["verify", root_s]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("verified 4 shards, 16 rows") && run.stdout.contains(": OK"),
        "{}",
        run.stdout
    );
    msms(["verify", "--full", root_s]).expect_code(0);
    for part in ["0", "1"] {
        let p = f1.join("planned/parts").join(part);
        msms(["verify", "--full", p.to_str().unwrap()]).expect_code(0);
    }

    // The report reads it too; its default outputs start with `_` (readers skip them).
    let run = msms(["quality-report", root_s]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("_quality_report.html"),
        "{}",
        run.stdout
    );
    let j = read_json(&root.join("_quality_report.json"));
    assert_eq!(j["manifest"]["format_version"], 1);
    assert_eq!(j["counts"]["written"], 16);
    assert!(root.join("_quality_report.html").is_file());
    assert!(!root.join("quality_report.html").exists());

    // Verify compares each footer with the manifest it read, not with this build's format:
    // a format-1 manifest over shards whose footers say 2 is a mismatch in every shard.
    let new = dir.path().join("new");
    build(&[f1.join("a.h5").as_path()], &new, &["-q"]).expect_code(0);
    let mut m = read_manifest(&new);
    assert_eq!(m["format_version"], 2);
    m["format_version"] = 1.into();
    std::fs::remove_file(new.join("_manifest.json")).unwrap();
    std::fs::write(
        new.join("manifest.json"),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
    let run = msms(["verify", new.to_str().unwrap()]);
    run.expect_code(1);
    assert!(
        run.stdout.contains(
            "train/shard-00000.parquet: format_version (footer msms_shards.format_version) \
             mismatch: manifest 1, file 2"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn format1_parts_merge_into_a_format1_root_and_mixed_formats_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f1 = fixture_copy(dir.path());
    let root = f1.join("planned");
    let root_s = root.to_str().unwrap();

    // Every part format 1: the merged root is format 1, named as format 1 names it, and
    // verifies (its shards' footers say 1).
    let run = msms(["merge", root_s]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains(&root.join("manifest.json").display().to_string()),
        "{}",
        run.stdout
    );
    assert!(!root.join("_manifest.json").exists());
    let m = read_json(&root.join("manifest.json"));
    assert_eq!(m["format_version"], 1);
    assert_eq!(m["counts"]["read"], 24);
    assert_eq!(m["shards"].as_array().unwrap().len(), 2);
    msms(["verify", "--full", root_s]).expect_code(0);

    // Part 1 converted again by this msms (format 2): the plan's inputs are where this test
    // copied them; the plan is otherwise the one the parts were made with.
    let plan_path = root.join("plan.json");
    let mut plan = read_json(&plan_path);
    for (i, name) in ["a.h5", "b.h5"].iter().enumerate() {
        plan["inputs"][i]["path"] = f1.join(name).to_str().unwrap().into();
    }
    // This msms hashes more settings than the one that made the plan (row group size and
    // compression), so it would refuse the plan's parts as made; a plan this msms makes for
    // the same inputs carries the hash its parts are checked against.
    let fresh = dir.path().join("fresh-plan.json");
    msms_in(
        &f1,
        &[
            "plan",
            "--parts",
            "2",
            "--input-hdf5",
            "a.h5",
            "b.h5",
            "--output",
            fresh.to_str().unwrap(),
        ],
    )
    .expect_code(0);
    assert_ne!(plan["config_hash"], read_json(&fresh)["config_hash"]);
    plan["config_hash"] = read_json(&fresh)["config_hash"].clone();
    std::fs::write(&plan_path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    std::fs::remove_dir_all(root.join("parts/1")).unwrap();
    let part = |k: &str| {
        msms([
            "build-shards",
            "--plan",
            plan_path.to_str().unwrap(),
            "--part",
            k,
            "--output-root",
            root_s,
            "-q",
        ])
    };
    part("1").expect_code(0);
    assert!(root.join("parts/1/_manifest.json").is_file());
    // The part kept its copy of the plan under a name readers skip.
    assert_eq!(read_json(&root.join("_plan.json")), plan);

    let before = std::fs::read(root.join("manifest.json")).unwrap();
    let run = msms(["merge", root_s]);
    run.expect_code(2);
    // Part 0 (format 1) is refused; since this msms also hashes more settings, its config
    // hash differs too, which is what merge names (the format check is in
    // src/commands/merge.rs, for parts of one hash).
    assert!(
        run.stderr
            .contains("part 0: written with other settings (config hash sha256:"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(root.join("manifest.json")).unwrap(), before);
    assert!(!root.join("_manifest.json").exists());

    // Part 0 converted again too: a format-2 root; the earlier merge's manifest.json is gone.
    std::fs::remove_dir_all(root.join("parts/0")).unwrap();
    part("0").expect_code(0);
    let run = msms(["merge", root_s]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains(&root.join("_manifest.json").display().to_string()),
        "{}",
        run.stdout
    );
    assert!(!root.join("manifest.json").exists());
    let m2 = read_manifest(&root);
    assert_eq!(m2["format_version"], 2);
    assert_eq!(m2["counts"], m["counts"]);
    msms(["verify", root_s]).expect_code(0);
}

#[test]
fn build_shards_resumes_nothing_in_and_overwrites_a_finished_format1_root() {
    let dir = tempfile::tempdir().unwrap();
    let f1 = fixture_copy(dir.path());
    let before = files_under(&f1.join("split"));
    let digests: Vec<String> = before
        .iter()
        .map(|f| sha256_file(&f1.join("split").join(f)))
        .collect();

    // The same inputs and flags: this msms hashes more settings than the one that wrote the
    // root (row group size and compression), so the root holds "other settings"; refused,
    // naming the format-1 manifest, nothing touched.
    let run = msms_in(&f1, &split_command("split", &["--resume"]));
    run.expect_code(2);
    assert!(
        run.stderr.contains(
            "holds a finished run with other inputs or settings (manifest.json, output format 1) \
             and no checkpoint; use --overwrite"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(files_under(&f1.join("split")), before);
    let after: Vec<String> = before
        .iter()
        .map(|f| sha256_file(&f1.join("split").join(f)))
        .collect();
    assert_eq!(after, digests);

    // Other settings: refused, naming the format-1 manifest.
    let run = msms_in(
        &f1,
        &[
            "build-shards",
            "--input-hdf5",
            "a.h5",
            "--output-root",
            "split",
            "--resume",
        ],
    );
    run.expect_code(2);
    assert!(
        run.stderr.contains(
            "holds a finished run with other inputs or settings (manifest.json, output format 1) \
             and no checkpoint; use --overwrite"
        ),
        "{}",
        run.stderr
    );

    // Neither flag: not empty.
    let run = msms_in(&f1, &split_command("split", &[]));
    run.expect_code(2);
    assert!(run.stderr.contains("is not empty"), "{}", run.stderr);

    // --overwrite: the format-1 manifest and shards are replaced by format-2 output; other
    // files stay.
    std::fs::write(f1.join("split/keep.txt"), "mine").unwrap();
    msms_in(&f1, &split_command("split", &["--overwrite", "-q"])).expect_code(0);
    let root = f1.join("split");
    let m = read_manifest(&root);
    assert_eq!(m["format_version"], 2);
    let mut want: Vec<String> = m["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap().to_string())
        .collect();
    want.extend(["_manifest.json".to_string(), "keep.txt".to_string()]);
    want.sort();
    assert_eq!(files_under(&root), want);
    assert!(footer_versions(&root, &m).iter().all(|v| v == "2"));
    msms(["verify", "--full", root.to_str().unwrap()]).expect_code(0);
}

/// `--overwrite` removes either manifest name and its temporary, and nothing else.
#[test]
fn overwrite_removes_both_manifest_names_and_their_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.h5"), "gems", 50, 0.0, 3);
    let root = dir.path().join("out");
    std::fs::create_dir(&root).unwrap();
    for name in [
        "manifest.json",
        "manifest.json.tmp",
        "_manifest.json",
        "_manifest.json.tmp",
        "notes.json",
    ] {
        std::fs::write(root.join(name), "{}").unwrap();
    }
    build(&[&input.path], &root, &["--overwrite", "-q"]).expect_code(0);
    assert_eq!(
        files_under(&root),
        ["_manifest.json", "notes.json", "train/shard-00000.parquet"]
    );
    assert_eq!(read_manifest(&root)["format_version"], 2);
}

#[test]
fn an_interrupted_run_of_another_format_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.h5"), "gems", 2000, 0.02, 8);
    let root = dir.path().join("shards");
    let root_s = root.to_str().unwrap();
    let typed = |extra: &[&str]| {
        let mut cmd = msms_command();
        cmd.arg("build-shards")
            .arg("--input-hdf5")
            .arg(&input.path)
            .args(["--output-root", root_s, "--shard-size", "100kB"])
            .args(extra);
        cmd
    };
    stall_and_kill(typed(&[]), "shard-renamed:1");
    // What the format-1 msms leaves when interrupted: the same checkpoint, but format 1.
    let cp_path = root.join(".msms/checkpoint.json");
    let mut cp = read_json(&cp_path);
    assert_eq!(cp["fingerprint"]["format_version"], 2);
    cp["fingerprint"]["format_version"] = 1.into();
    std::fs::write(&cp_path, serde_json::to_string_pretty(&cp).unwrap()).unwrap();

    let why = "because it was started by msms 0.1.0 writing output format 1 (manifest.json), \
               and this msms writes format 2 (_manifest.json): the shards of one root must all \
               be of one format; start over with --overwrite";
    let run = run_command(typed(&["--resume"]));
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("cannot resume the interrupted run there")
            && run.stderr.contains(why),
        "{}",
        run.stderr
    );
    let run = run_command(typed(&[]));
    run.expect_code(2);
    assert!(
        run.stderr.contains("holds an interrupted run") && run.stderr.contains(why),
        "{}",
        run.stderr
    );
    assert!(cp_path.is_file(), "a refusal removed the checkpoint");

    // doctor says so too.
    let mut cmd = msms_command();
    cmd.args(["doctor", "--json", "--output-root", root_s])
        .env("MSMS_SHARD_SIZE", "10MB");
    let run = run_command(cmd);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("doctor --json");
    assert_eq!(v["output_root"]["checkpoint"], true);
    let warnings = v["warnings"].to_string();
    assert!(
        warnings.contains(
            "holds an interrupted run of output format 1, which this msms (format 2) cannot \
             resume: start over with --overwrite"
        ),
        "{warnings}"
    );

    run_command(typed(&["--overwrite", "-q"])).expect_code(0);
    assert!(!cp_path.exists());
    assert_eq!(read_manifest(&root)["format_version"], 2);
    msms(["verify", root_s]).expect_code(0);
}

#[test]
fn doctor_sees_a_finished_format1_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = fixture_copy(dir.path()).join("split");
    let mut cmd = msms_command();
    cmd.args(["doctor", "--json", "--output-root", root.to_str().unwrap()])
        .env("MSMS_SHARD_SIZE", "10MB");
    let run = run_command(cmd);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("doctor --json");
    assert_eq!(v["output_root"]["manifest"], true);
    assert_eq!(v["output_root"]["checkpoint"], false);
}
