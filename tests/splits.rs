//! `--splits`, `--seed`, `--split-key` and `--dedup exact`: deterministic, leak-free splits
//! under `<root>/<split>/`, recorded in the manifest, and exact duplicates dropped in input
//! order.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use common::*;

/// Every row of every shard of `split`, from the manifest's shard list.
fn split_rows(root: &Path, m: &serde_json::Value, split: &str) -> Vec<Row> {
    let (_, shards) = read_all(root);
    let mut rows = Vec::new();
    for (s, shard) in m["shards"].as_array().unwrap().iter().zip(shards) {
        if s["split"] != split {
            continue;
        }
        let path = s["path"].as_str().unwrap();
        assert!(path.starts_with(&format!("{split}/shard-")), "{path}");
        rows.extend(shard.rows);
    }
    rows
}

fn splits_run(root: &Path, input: &Input, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "--splits",
        "train=0.8,val=0.1,test=0.1",
        "--shard-size",
        "700000",
    ];
    args.extend_from_slice(extra);
    build(&[&input.path], root, &args).expect_code(0);
    read_manifest(root)
}

#[test]
fn splits_partition_the_spectra_by_lsh_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 6000, 0.02, 5);
    let root = dir.path().join("out");
    let m = splits_run(&root, &input, &[]);
    // Directories in the order given, the manifest's per-split counts match the shards.
    let mut seen_ids = HashSet::new();
    let mut lsh_split: HashMap<i64, String> = HashMap::new();
    let mut total = 0;
    for split in ["train", "val", "test"] {
        let rows = split_rows(&root, &m, split);
        assert!(!rows.is_empty(), "no rows in {split}");
        assert_eq!(m["splits"][split]["rows"], rows.len() as u64, "{split}");
        let shards = m["shards"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["split"] == split)
            .count();
        assert_eq!(m["splits"][split]["shards"], shards as u64);
        total += rows.len();
        let mut last = None;
        for r in &rows {
            assert!(seen_ids.insert(r.spectrum_id), "{} twice", r.spectrum_id);
            assert!(last < Some(r.spectrum_id), "ids increase within {split}");
            last = Some(r.spectrum_id);
            // The default key is lsh: one bucket never straddles two splits.
            let Lsh::Int(lsh) = r.lsh else {
                panic!("the sample has integer lsh values")
            };
            let prev = lsh_split.entry(lsh).or_insert_with(|| split.to_string());
            assert_eq!(prev, split, "lsh {lsh} in two splits");
        }
    }
    assert_eq!(total as u64, m["counts"]["written"].as_u64().unwrap());
    let frac = |s: &str| m["splits"][s]["rows"].as_f64().unwrap() / total as f64;
    assert!((frac("train") - 0.8).abs() < 0.05, "{}", m["splits"]);
    assert!((frac("val") - 0.1).abs() < 0.04, "{}", m["splits"]);
    assert!(m["settings"]["splits"] == "train=0.8,val=0.1,test=0.1");
    assert_eq!(m["settings"]["split_key"], "auto");
    assert_eq!(m["settings"]["seed"], 0);
    // verify accepts it (ids increase per split).
    let v = msms(["verify".as_ref(), root.as_os_str(), "--full".as_ref()]);
    v.expect_code(0);
}

#[test]
fn assignment_is_deterministic_and_follows_seed_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 4000, 0.0, 9);
    let assignment = |root: &Path, extra: &[&str]| -> BTreeMap<u64, String> {
        let m = splits_run(root, &input, extra);
        let mut out = BTreeMap::new();
        for split in ["train", "val", "test"] {
            for r in split_rows(root, &m, split) {
                out.insert(r.spectrum_id, split.to_string());
            }
        }
        out
    };
    let a = assignment(&dir.path().join("a"), &["--num-workers", "1"]);
    let b = assignment(
        &dir.path().join("b"),
        &["--num-workers", "3", "--writers", "2"],
    );
    assert_eq!(a, b, "threads change nothing");
    let files = |r: &str| {
        let root = dir.path().join(r);
        files_under(&root)
            .into_iter()
            .filter(|f| f.ends_with(".parquet"))
            .map(|f| (f.clone(), sha256_file(&root.join(&f))))
            .collect::<Vec<_>>()
    };
    assert_eq!(files("a"), files("b"), "byte-identical shards");
    let seeded = assignment(&dir.path().join("c"), &["--seed", "1"]);
    let moved = a.iter().filter(|(id, s)| seeded[*id] != **s).count();
    assert!(moved > a.len() / 10, "another seed moves spectra ({moved})");
    // By spectrum: each on its own, a different division than by lsh.
    let by_spectrum = assignment(&dir.path().join("d"), &["--split-key", "spectrum"]);
    assert_ne!(by_spectrum, a);
    let by_name = assignment(&dir.path().join("e"), &["--split-key", "name"]);
    assert_eq!(by_name.len(), a.len());
}

#[test]
fn split_settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 100, 0.0, 1);
    let root = dir.path().join("out");
    for (args, says) in [
        (
            vec!["--splits", "train=0.9,val=0.2"],
            "the fractions sum to 1.1",
        ),
        (vec!["--splits", "train=1,train=0"], "train"),
        (vec!["--splits", "a/b=1"], "split name"),
        (vec!["--splits", "train"], "expected NAME=FRACTION"),
        (vec!["--seed", "3"], "needs splits"),
        (vec!["--split-key", "lsh"], "needs splits"),
    ] {
        let run = build(&[&input.path], &root, &args);
        run.expect_code(2);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(!root.join("_manifest.json").exists());
    }
}

#[test]
fn dedup_exact_drops_repeats_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 3000, 0.02, 4);
    let once = dir.path().join("once");
    build(
        &[&input.path],
        &once,
        &["--dedup", "exact", "--splits", "train=0.9,test=0.1"],
    )
    .expect_code(0);
    let m1 = read_manifest(&once);
    assert_eq!(m1["counts"]["rejected"]["duplicate"], 0);
    // The same file twice: every spectrum of the second copy is a duplicate of the first,
    // so the shards are exactly those of one copy.
    let twice = dir.path().join("twice");
    build(
        &[&input.path, &input.path],
        &twice,
        &[
            "--dedup",
            "exact",
            "--splits",
            "train=0.9,test=0.1",
            "--num-workers",
            "3",
        ],
    )
    .expect_code(0);
    let m2 = read_manifest(&twice);
    assert_eq!(m2["counts"]["read"], 6000);
    assert_eq!(m2["counts"]["written"], m1["counts"]["written"]);
    assert_eq!(
        m2["counts"]["rejected"]["duplicate"],
        m1["counts"]["written"]
    );
    assert_eq!(
        m2["counts"]["rejected_total"].as_u64().unwrap(),
        6000 - m2["counts"]["written"].as_u64().unwrap()
    );
    assert_eq!(m2["dataset_digest"], m1["dataset_digest"]);
    assert_eq!(m2["settings"]["dedup"], "exact");
    // Without dedup, the second copy is written too.
    let all = dir.path().join("all");
    build(&[&input.path, &input.path], &all, &[]).expect_code(0);
    let m3 = read_manifest(&all);
    assert_eq!(
        m3["counts"]["written"].as_u64().unwrap(),
        2 * m1["counts"]["written"].as_u64().unwrap()
    );
    assert_eq!(m3["counts"]["rejected"]["duplicate"], 0);
}

#[test]
fn split_key_name_keeps_every_name_in_one_split() {
    let dir = tempfile::tempdir().unwrap();
    // The sample names its spectra after their source run, one name per 500 rows: 24 names,
    // each on many rows. The lsh values differ row by row, so lsh or spectrum as the key would
    // scatter a name's rows over the splits.
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 12_000, 0.0, 21);
    let root = dir.path().join("out");
    build(
        &[&input.path],
        &root,
        &[
            "--splits",
            "train=0.5,val=0.25,test=0.25",
            "--split-key",
            "name",
            "--shard-size",
            "1MB",
        ],
    )
    .expect_code(0);
    let m = read_manifest(&root);
    assert_eq!(m["settings"]["split_key"], "name");
    let mut name_split: HashMap<String, &str> = HashMap::new();
    let mut rows_of_name: HashMap<String, usize> = HashMap::new();
    let mut non_empty = 0;
    let mut total = 0;
    for split in ["train", "val", "test"] {
        let rows = split_rows(&root, &m, split);
        total += rows.len();
        non_empty += usize::from(!rows.is_empty());
        for r in rows {
            let name = r.name.clone().expect("every spectrum has a name");
            *rows_of_name.entry(name.clone()).or_default() += 1;
            let first = *name_split.entry(name.clone()).or_insert(split);
            assert_eq!(first, split, "name {name} in {first} and {split}");
        }
    }
    assert_eq!(total as u64, m["counts"]["written"].as_u64().unwrap());
    assert_eq!(total, 12_000);
    assert_eq!(name_split.len(), 24, "names: {:?}", rows_of_name);
    assert!(rows_of_name.values().all(|&n| n == 500), "{rows_of_name:?}");
    assert!(
        non_empty >= 2,
        "all names landed in one split: {name_split:?}"
    );
    let v = msms(["verify".as_ref(), root.as_os_str(), "--full".as_ref()]);
    v.expect_code(0);
}
