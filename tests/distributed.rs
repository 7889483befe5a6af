//! `msms plan`, `build-shards --plan --part`, `msms merge`: parts that any engine can run,
//! merged into one manifest holding exactly the rows of a single-machine run.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const SETTINGS: [&str; 4] = [
    "--splits",
    "train=0.8,val=0.1,test=0.1",
    "--shard-size",
    "1MB",
];

/// (spectrum_id, split, precursor m/z bits, m/z bits, intensity bits) of one row.
type RowContent = (u64, String, u64, Vec<u64>, Vec<u32>);

/// Every row, sorted by spectrum_id: the content of a dataset whatever its shard boundaries.
fn content(root: &Path) -> Vec<RowContent> {
    let (m, shards) = read_all(root);
    let mut rows = Vec::new();
    for (s, shard) in m["shards"].as_array().unwrap().iter().zip(shards) {
        let split = s["split"].as_str().unwrap().to_string();
        for r in shard.rows {
            rows.push((
                r.spectrum_id,
                split.clone(),
                r.precursor_mz.to_bits(),
                r.mz.iter().map(|v| v.to_bits()).collect(),
                r.intensity.iter().map(|v| v.to_bits()).collect(),
            ));
        }
    }
    rows.sort_by_key(|r| r.0);
    rows
}

fn inputs(dir: &Path) -> (Input, Input) {
    (
        synth_input(&dir.join("a.hdf5"), "gems", 6000, 0.02, 1),
        synth_input(&dir.join("b.hdf5"), "gems", 5000, 0.02, 2),
    )
}

fn plan(dir: &Path, a: &Input, b: &Input, parts: &str, extra: &[&str]) -> Run {
    let mut args: Vec<std::ffi::OsString> = vec![
        "plan".into(),
        "--input-hdf5".into(),
        a.path.clone().into(),
        b.path.clone().into(),
        "--parts".into(),
        parts.into(),
        "--output".into(),
        dir.join("plan.json").into(),
    ];
    args.extend(SETTINGS.iter().map(|s| s.into()));
    args.extend(extra.iter().map(|s| s.into()));
    msms(args)
}

fn part(dir: &Path, root: &Path, k: usize) -> Run {
    run_command(part_command(dir, root, k))
}

/// `msms build-shards --plan DIR/plan.json --part K --output-root ROOT`, not yet run.
fn part_command(dir: &Path, root: &Path, k: usize) -> Command {
    let mut cmd = msms_command();
    cmd.arg("build-shards")
        .arg("--plan")
        .arg(dir.join("plan.json"))
        .arg("--part")
        .arg(k.to_string())
        .arg("--output-root")
        .arg(root);
    cmd
}

#[test]
fn parts_merge_to_the_rows_of_a_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = inputs(dir.path());
    let p = plan(dir.path(), &a, &b, "3", &[]);
    p.expect_code(0);
    assert!(
        p.stdout.contains("3 parts of 11 read units"),
        "{}",
        p.stdout
    );
    let plan_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("plan.json")).unwrap())
            .unwrap();
    // Disjoint, covering, chunk-aligned (1024-row units) parts.
    let parts = plan_json["parts"].as_array().unwrap();
    let mut next = 0;
    for p in parts {
        assert_eq!(p["units"][0], next);
        next = p["units"][1].as_u64().unwrap();
        assert!(p["rows"].as_u64().unwrap() > 0);
    }
    assert_eq!(next, plan_json["units"].as_u64().unwrap());
    assert_eq!(
        parts
            .iter()
            .map(|p| p["rows"].as_u64().unwrap())
            .sum::<u64>(),
        11_000
    );

    let root = dir.path().join("out");
    for k in [2, 0, 1] {
        part(dir.path(), &root, k).expect_code(0);
        assert!(root.join(format!("parts/{k}/_manifest.json")).is_file());
    }
    // Running a part again is harmless: it says it is done, nothing changes.
    let before = sha256_file(&root.join("parts/1/_manifest.json"));
    let again = part(dir.path(), &root, 1);
    again.expect_code(0);
    assert!(
        again.stderr.contains("nothing to resume"),
        "{}",
        again.stderr
    );
    assert_eq!(sha256_file(&root.join("parts/1/_manifest.json")), before);
    // `--resume` is accepted too (a part resumes by itself).
    let mut cmd = msms_command();
    cmd.args([
        "build-shards".as_ref(),
        "--plan".as_ref(),
        dir.path().join("plan.json").as_os_str(),
        "--part".as_ref(),
        "1".as_ref(),
        "--output-root".as_ref(),
        root.as_os_str(),
        "--resume".as_ref(),
    ]);
    let again = run_command(cmd);
    again.expect_code(0);
    assert!(
        again.stderr.contains("nothing to resume"),
        "{}",
        again.stderr
    );

    let merged = msms(["merge".as_ref(), root.as_os_str()]);
    merged.expect_code(0);
    assert!(merged.stdout.contains("3 parts"), "{}", merged.stdout);
    let m = read_manifest(&root);
    for s in m["shards"].as_array().unwrap() {
        let path = s["path"].as_str().unwrap();
        assert!(path.starts_with("parts/"), "{path}");
        assert_eq!(
            sha256_file(&root.join(path)),
            s["sha256"].as_str().unwrap(),
            "{path}"
        );
    }
    msms(["verify".as_ref(), root.as_os_str(), "--full".as_ref()]).expect_code(0);

    let single = dir.path().join("single");
    let mut args = SETTINGS.to_vec();
    args.extend(["--num-workers", "1"]);
    build(&[&a.path, &b.path], &single, &args).expect_code(0);
    let s = read_manifest(&single);
    assert_eq!(m["counts"], s["counts"]);
    assert_eq!(m["splits"].as_object().unwrap().len(), 3);
    for split in ["train", "val", "test"] {
        assert_eq!(
            m["splits"][split]["rows"], s["splits"][split]["rows"],
            "{split}"
        );
    }
    assert_eq!(content(&root), content(&single));
}

#[test]
fn merge_names_missing_and_mismatched_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = inputs(dir.path());
    plan(dir.path(), &a, &b, "3", &[]).expect_code(0);
    let root = dir.path().join("out");
    part(dir.path(), &root, 0).expect_code(0);
    part(dir.path(), &root, 2).expect_code(0);
    let r = msms(["merge".as_ref(), root.as_os_str()]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("part 1: missing") && r.stderr.contains("--part 1"),
        "{}",
        r.stderr
    );
    assert!(!root.join("_manifest.json").exists());
    // A damaged shard in a part is named too.
    part(dir.path(), &root, 1).expect_code(0);
    let victim = root.join("parts/2/train/shard-00000.parquet");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&victim, bytes).unwrap();
    let r = msms(["merge".as_ref(), root.as_os_str()]);
    r.expect_code(2);
    assert!(r.stderr.contains("part 2: 1 problem(s)"), "{}", r.stderr);
}

#[test]
fn plans_and_parts_refuse_what_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = inputs(dir.path());
    let r = plan(dir.path(), &a, &b, "3", &["--dedup", "exact"]);
    r.expect_code(2);
    assert!(r.stderr.contains("--dedup exact"), "{}", r.stderr);
    let r = plan(dir.path(), &a, &b, "3", &["--output-root", "somewhere"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("--output-root (give it to each part)"),
        "{}",
        r.stderr
    );
    let r = plan(dir.path(), &a, &b, "50", &[]);
    r.expect_code(2);
    assert!(r.stderr.contains("11 read units"), "{}", r.stderr);
    plan(dir.path(), &a, &b, "2", &[]).expect_code(0);
    let root = dir.path().join("out");
    let r = part(dir.path(), &root, 5);
    r.expect_code(2);
    assert!(r.stderr.contains("--part 5"), "{}", r.stderr);
    let mut cmd = part_command(dir.path(), &root, 0);
    cmd.args(["--normalize", "sum"]);
    let r = run_command(cmd);
    r.expect_code(2);
    assert!(r.stderr.contains("remove --normalize"), "{}", r.stderr);
    // Every setting a part would ignore is refused, naming it.
    let mut cmd = part_command(dir.path(), &root, 0);
    cmd.args([
        "--exclude-columns",
        "scan",
        "--seed",
        "3",
        "--bin-output",
        "sparse",
    ]);
    let r = run_command(cmd);
    r.expect_code(2);
    assert!(
        r.stderr
            .contains("remove --bin-output, --seed, --exclude-columns"),
        "{}",
        r.stderr
    );
    // Settings that resolve differently on a worker (here an environment variable the plan
    // did not pin) are caught by the config hash.
    let mut cmd = part_command(dir.path(), &root, 0);
    cmd.env("MSMS_QUALITY_FORMAT", "A");
    let r = run_command(cmd);
    r.expect_code(2);
    assert!(r.stderr.contains("config hash"), "{}", r.stderr);
}

/// Replace `root/parts/K/_manifest.json` by `edit` of itself.
fn edit_part_manifest(root: &Path, k: usize, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = root.join(format!("parts/{k}/_manifest.json"));
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut m);
    std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
}

/// `msms merge ROOT` refuses with exit 2: stderr is exactly the header naming the root and
/// `problems.len()` parts, then one indented line per problem; no manifest is written.
#[track_caller]
fn assert_merge_refuses(root: &Path, problems: &[String]) {
    let r = msms(["merge".as_ref(), root.as_os_str()]);
    r.expect_code(2);
    let mut want = format!(
        "msms merge: cannot merge {}: {} part(s) missing or mismatched:\n",
        root.display(),
        problems.len()
    );
    for p in problems {
        want.push_str(&format!("  {p}\n"));
    }
    assert_eq!(r.stderr, want);
    assert_eq!(r.stdout, "");
    assert!(
        !root.join("_manifest.json").exists(),
        "a refused merge wrote a manifest"
    );
}

#[test]
fn merge_refuses_parts_with_another_config_hash_or_spectrum_count() {
    let dir = tempfile::tempdir().unwrap();
    let a = synth_input(&dir.path().join("a.hdf5"), "gems", 2500, 0.02, 3);
    let b = synth_input(&dir.path().join("b.hdf5"), "gems", 1500, 0.02, 4);
    plan(dir.path(), &a, &b, "2", &[]).expect_code(0);
    let plan_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("plan.json")).unwrap())
            .unwrap();
    let plan_hash = plan_json["config_hash"].as_str().unwrap().to_string();
    let rows: Vec<u64> = plan_json["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rows"].as_u64().unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows.iter().sum::<u64>(), 4000);
    let root = dir.path().join("out");
    for (k, &want) in rows.iter().enumerate() {
        part(dir.path(), &root, k).expect_code(0);
        let m = read_manifest(&root.join(format!("parts/{k}")));
        assert_eq!(m["config_hash"], plan_hash.as_str());
        assert_eq!(m["counts"]["read"], want);
    }
    let pristine: Vec<String> = (0..2)
        .map(|k| std::fs::read_to_string(root.join(format!("parts/{k}/_manifest.json"))).unwrap())
        .collect();
    let restore = || {
        for (k, text) in pristine.iter().enumerate() {
            std::fs::write(root.join(format!("parts/{k}/_manifest.json")), text).unwrap();
        }
    };

    // Part 0 written with other settings.
    let other = format!("sha256:{}", "1".repeat(64));
    edit_part_manifest(&root, 0, |m| m["config_hash"] = other.clone().into());
    assert_merge_refuses(
        &root,
        &[format!(
            "part 0: written with other settings (config hash {other}, the plan's {plan_hash})"
        )],
    );
    restore();

    // Part 1 read another number of spectra than the plan gives it (its counts and shard
    // rows consistent, so only the plan can tell).
    edit_part_manifest(&root, 1, |m| {
        let read = m["counts"]["read"].as_u64().unwrap();
        m["counts"]["read"] = (read + 1).into();
        let rejected = m["counts"]["rejected"]["empty"].as_u64().unwrap();
        m["counts"]["rejected"]["empty"] = (rejected + 1).into();
        let total = m["counts"]["rejected_total"].as_u64().unwrap();
        m["counts"]["rejected_total"] = (total + 1).into();
    });
    assert_merge_refuses(
        &root,
        &[format!(
            "part 1: read {} spectra, the plan's part has {}",
            rows[1] + 1,
            rows[1]
        )],
    );

    // Both at once: each part named on its own line, in part order.
    edit_part_manifest(&root, 0, |m| m["config_hash"] = other.clone().into());
    assert_merge_refuses(
        &root,
        &[
            format!(
                "part 0: written with other settings (config hash {other}, the plan's {plan_hash})"
            ),
            format!(
                "part 1: read {} spectra, the plan's part has {}",
                rows[1] + 1,
                rows[1]
            ),
        ],
    );

    // Restored, the same parts merge.
    restore();
    let merged = msms(["merge".as_ref(), root.as_os_str()]);
    merged.expect_code(0);
    assert_eq!(read_manifest(&root)["counts"]["read"], 4000);
}
