//! `msms build-shards` end to end: every synth layout converted and read back value by value,
//! the manifest checked against the files, multiple inputs, shard bounds, `--max-spectra`,
//! `--dry-run`, determinism and the output-root rules.

mod common;

use std::path::Path;

use common::*;
use msms_kernels::RejectReason;

const SEED: u64 = 20_240_611;
const FAULTS: f64 = 0.1;

/// Generate a file in `layout` with planted faults, convert it, and check every value, the
/// rejection counts against the planted faults, and the manifest against the files.
fn check_layout(layout: &str, spectra: u64, min_peaks: usize) {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), layout, spectra, FAULTS, SEED);
    // Every validation reason is planted at least once, so the counts below mean something.
    for r in RejectReason::VALIDATION {
        assert!(
            input.report.planted.get(&r).copied().unwrap_or(0) > 0,
            "{layout}: no {r} planted: {:?}",
            input.report.planted
        );
    }
    let root = dir.path().join("out");
    let min = min_peaks.to_string();
    let mut args = vec!["--batch-size", "256", "--num-workers", "3"];
    if min_peaks != 1 {
        args.extend(["--min-peaks", &min]);
    }
    build(&[&input.path], &root, &args).expect_code(0);

    let (m, shards) = read_all(&root);
    let rules = Rules {
        min_peaks,
        ..Rules::default()
    };
    let want = expectation(&[&input], &rules, None);
    assert_rows(&all_rows(&shards), &want.rows);

    // Rejected counts per reason equal the planted faults; one-peak spectra (planted as
    // too_few_peaks) are only rejected with --min-peaks 2.
    let rejected = &m["counts"]["rejected"];
    // Every validation reason, then `duplicate` (--dedup exact).
    assert_eq!(
        rejected.as_object().unwrap().len(),
        RejectReason::ALL.len() + 1
    );
    assert_eq!(rejected["duplicate"], 0);
    assert_eq!(
        rejected["quality_format"], 0,
        "{layout}: no --quality-format given"
    );
    for r in RejectReason::VALIDATION {
        let planted = input.report.planted[&r];
        let want_n = if r == RejectReason::TooFewPeaks && min_peaks < 2 {
            0
        } else {
            planted
        };
        assert_eq!(rejected[r.as_str()], want_n, "{layout}: rejected {r}");
    }
    assert_counts(&m, &want);
    assert_eq!(m["counts"]["read"], spectra);
    assert_eq!(m["settings"]["min_peaks"], min_peaks as u64);
    assert_eq!(
        m["inputs"],
        serde_json::json!([{
            "path": input.path.display().to_string(),
            "bytes": std::fs::metadata(&input.path).unwrap().len(),
            "spectra": spectra,
            "first_spectrum_id": 0,
        }])
    );

    let pass = if input.layout.embedding {
        embedding_columns()
    } else {
        vec![]
    };
    assert_manifest_and_files(&root, &m, &shards, input.layout.strings, &pass);
}

#[test]
fn layout_gems() {
    check_layout("gems", 1500, 1);
}

#[test]
fn layout_gems_min_peaks_2_rejects_planted_one_peak_spectra() {
    check_layout("gems", 1500, 2);
}

#[test]
fn layout_auto_chunk() {
    check_layout("auto-chunk", 1500, 1);
}

#[test]
fn layout_contiguous() {
    check_layout("contiguous", 1500, 1);
}

#[test]
fn layout_shuffle() {
    check_layout("shuffle", 1500, 1);
}

#[test]
fn layout_float32() {
    check_layout("float32", 1500, 1);
}

#[test]
fn layout_float32_min_peaks_2() {
    check_layout("float32", 1500, 2);
}

#[test]
fn layout_high_form() {
    check_layout("high-form", 1500, 1);
}

#[test]
fn layout_strings() {
    check_layout("strings", 1500, 1);
}

#[test]
fn layout_embedding() {
    check_layout("embedding", 1200, 1);
}

#[test]
fn layout_high_form_float32_strings() {
    check_layout("high-form,float32,strings", 1500, 2);
}

#[test]
fn layout_auto_chunk_high_form_embedding() {
    check_layout("auto-chunk,high-form,embedding", 1100, 1);
}

#[test]
fn layout_shuffle_float32_strings() {
    check_layout("shuffle,float32,strings", 1500, 1);
}

#[test]
fn embedding_metadata_group_is_not_a_column_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("e.hdf5"), "embedding", 300, 0.0, 5);
    let root = dir.path().join("out");
    let run = build(&[&input.path], &root, &[]);
    run.expect_code(0);
    let (m, shards) = read_all(&root);
    for s in &shards {
        assert!(s
            .schema
            .fields()
            .iter()
            .all(|f| !f.name().contains("metadata") && !f.name().contains("file_names")));
    }
    let names: Vec<&str> = m["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(&names[13..], ["DreaMS_embedding", "file_id", "scan_number"]);
    // The skipped group is mentioned in the mapping printed at start.
    assert!(
        run.stderr.contains("metadata"),
        "no notice about metadata/: {}",
        run.stderr
    );
    assert_eq!(all_rows(&shards).len(), 300);
}

#[test]
fn two_inputs_are_one_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let a = synth_input(&dir.path().join("a.hdf5"), "gems", 700, FAULTS, 1);
    let b = synth_input(&dir.path().join("b.hdf5"), "gems", 500, FAULTS, 2);
    let root = dir.path().join("out");
    build(&[&a.path, &b.path], &root, &["--batch-size", "300"]).expect_code(0);
    let (m, shards) = read_all(&root);
    let rows = all_rows(&shards);
    let want = expectation(&[&a, &b], &Rules::default(), None);
    assert_rows(&rows, &want.rows);
    assert_counts(&m, &want);
    // The second file's ids start at the first file's row count.
    let first_b = rows.iter().find(|r| r.source_index == 1).unwrap();
    assert_eq!(first_b.spectrum_id, 700 + first_b.source_row);
    assert!(rows
        .iter()
        .all(|r| r.spectrum_id == r.source_row + 700 * r.source_index as u64));
    assert_eq!(
        rows.iter().filter(|r| r.source_index == 1).count() as u64,
        { want.rows.iter().filter(|e| e.source_index == 1).count() as u64 }
    );
    let inputs = m["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 2);
    assert_eq!(inputs[0]["path"], a.path.display().to_string());
    assert_eq!(inputs[0]["spectra"], 700);
    assert_eq!(inputs[1]["path"], b.path.display().to_string());
    assert_eq!(inputs[1]["spectra"], 500);
    assert_eq!(inputs[0]["first_spectrum_id"], 0);
    assert_eq!(inputs[1]["first_spectrum_id"], 700);
    assert_eq!(
        inputs[1]["bytes"],
        std::fs::metadata(&b.path).unwrap().len()
    );
    assert_eq!(m["counts"]["read"], 1200);
    assert_manifest_and_files(&root, &m, &shards, false, &[]);

    // Given in the other order, the numbering follows the order given.
    let root2 = dir.path().join("out2");
    build(&[&b.path, &a.path], &root2, &["--batch-size", "300"]).expect_code(0);
    let (_, shards2) = read_all(&root2);
    let want2 = expectation(&[&b, &a], &Rules::default(), None);
    assert_rows(&all_rows(&shards2), &want2.rows);
}

fn shard_files(root: &Path) -> Vec<String> {
    files_under(root)
        .into_iter()
        .filter(|f| f != "_manifest.json")
        .collect()
}

#[test]
fn small_shard_size_gives_several_bounded_shards() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 3000, FAULTS, 9);
    let root = dir.path().join("out");
    const BOUND: u64 = 300_000;
    build(
        &[&input.path],
        &root,
        &[
            "--shard-size",
            "300kB",
            "--batch-size",
            "200",
            "--row-group-size",
            "150",
        ],
    )
    .expect_code(0);
    let (m, shards) = read_all(&root);
    assert!(shards.len() >= 3, "only {} shards", shards.len());
    let files = shard_files(&root);
    let names: Vec<String> = (0..shards.len())
        .map(|i| format!("train/shard-{i:05}.parquet"))
        .collect();
    assert_eq!(files, names, "consecutive shard names, nothing else");
    let mut total = 0;
    for f in &files {
        let len = std::fs::metadata(root.join(f)).unwrap().len();
        assert!(len <= BOUND, "{f}: {len} bytes > {BOUND}");
        total += len;
    }
    // The bound is used, not dodged with tiny shards: on average at least half full.
    assert!(
        total / shards.len() as u64 > BOUND / 2,
        "shards average {} bytes",
        total / shards.len() as u64
    );
    // Row groups hold at most --row-group-size rows; only a group split to top a shard up
    // (or the last) holds fewer.
    let groups: Vec<i64> = shards
        .iter()
        .flat_map(|s| s.row_group_rows.clone())
        .collect();
    assert!(groups.iter().all(|&n| (1..=150).contains(&n)), "{groups:?}");
    let full = groups.iter().filter(|&&n| n == 150).count();
    assert!(full * 2 > groups.len(), "{groups:?}");
    let want = expectation(&[&input], &Rules::default(), None);
    assert_rows(&all_rows(&shards), &want.rows);
    assert_counts(&m, &want);
    assert_eq!(m["settings"]["shard_size"], "300kB");
    assert_manifest_and_files(&root, &m, &shards, false, &[]);
}

#[test]
fn shard_size_in_binary_units_is_a_bound_too() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "float32", 2000, 0.0, 3);
    let root = dir.path().join("out");
    build(
        &[&input.path],
        &root,
        &["--shard-size", "256KiB", "--batch-size", "100"],
    )
    .expect_code(0);
    let (m, shards) = read_all(&root);
    assert!(shards.len() >= 2);
    for f in shard_files(&root) {
        assert!(std::fs::metadata(root.join(&f)).unwrap().len() <= 262_144);
    }
    let want = expectation(&[&input], &Rules::default(), None);
    assert_rows(&all_rows(&shards), &want.rows);
    assert_manifest_and_files(&root, &m, &shards, false, &[]);
}

#[test]
fn shard_size_too_small_for_one_spectrum_exits_2_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 200, 0.0, 4);
    let root = dir.path().join("out");
    let run = build(&[&input.path], &root, &["--shard-size", "2kB"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("--shard-size"),
        "message does not mention --shard-size: {}",
        run.stderr
    );
    let left: Vec<String> = files_under(&root)
        .into_iter()
        .filter(|f| f.ends_with(".tmp") || f.ends_with(".parquet") || f.ends_with(".json"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn max_spectra_reads_the_first_n_of_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let a = synth_input(&dir.path().join("a.hdf5"), "gems", 600, FAULTS, 11);
    let b = synth_input(&dir.path().join("b.hdf5"), "float32", 600, FAULTS, 12);
    for (n, batch) in [(900u64, "256"), (250, "100"), (600, "1000"), (1, "7")] {
        let root = dir.path().join(format!("out{n}"));
        let run = build(
            &[&a.path, &b.path],
            &root,
            &["--max-spectra", &n.to_string(), "--batch-size", batch],
        );
        run.expect_code(0);
        let (m, shards) = read_all(&root);
        let want = expectation(&[&a, &b], &Rules::default(), Some(n));
        assert_eq!(want.read, n);
        assert_rows(&all_rows(&shards), &want.rows);
        assert_counts(&m, &want);
        assert_eq!(m["counts"]["read"], n, "max-spectra {n}");
        assert_eq!(m["settings"]["max_spectra"], n);
        assert!(all_rows(&shards).iter().all(|r| r.spectrum_id < n));
        assert_manifest_and_files(&root, &m, &shards, false, &[]);
    }
}

/// The `shards` line of the summary: (projected?, count, total as printed).
fn shards_line(stdout: &str) -> (bool, u64, String) {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("shards"))
        .unwrap_or_else(|| panic!("no shards line in:\n{stdout}"));
    let rest = line.trim_start().strip_prefix("shards").unwrap();
    let (projected, rest) = match rest.trim_start().strip_prefix("(projected)") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let count = rest.split_whitespace().next().unwrap().parse().unwrap();
    // "... N   (7.9 MB total, largest 2.1 MB)" -> "7.9 MB"
    let inside = line.rsplit_once('(').unwrap().1;
    let total = inside.split(" total").next().unwrap().to_string();
    (projected, count, total)
}

#[test]
fn dry_run_writes_nothing_and_projects_the_real_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 2500, FAULTS, 21);
    // 100-row groups: 25 of them, of which the dry run encodes 2 (0 and 16) and projects
    // the rest.
    let settings = [
        "--shard-size",
        "250kB",
        "--batch-size",
        "150",
        "--row-group-size",
        "100",
    ];

    let dry_root = dir.path().join("nested").join("dry");
    let mut args = settings.to_vec();
    args.push("--dry-run");
    let dry = build(&[&input.path], &dry_root, &args);
    dry.expect_code(0);
    assert!(!dry_root.exists(), "dry run created the output root");
    assert!(
        !dir.path().join("nested").exists(),
        "dry run created a parent directory"
    );
    assert!(dry.stdout.contains("projected"), "stdout: {}", dry.stdout);

    let real_root = dir.path().join("real");
    let real = build(&[&input.path], &real_root, &settings);
    real.expect_code(0);
    let (m, _) = read_all(&real_root);
    let real_shards = m["shards"].as_array().unwrap();
    assert!(real_shards.len() >= 2);

    let (dl, dcount, dtotal) = shards_line(&dry.stdout);
    let (rl, rcount, rtotal) = shards_line(&real.stdout);
    assert!(dl && !rl, "projected label only in the dry run");
    // Projected from a sample of encoded row groups: the shard count within one, the bytes
    // within 10 %.
    assert!(
        dcount.abs_diff(real_shards.len() as u64) <= 1,
        "projected shard count {dcount}, real {}",
        real_shards.len()
    );
    assert_eq!(rcount, real_shards.len() as u64);
    let value = |t: &str| -> f64 {
        let (num, unit) = t.split_once(' ').unwrap();
        let scale = match unit {
            "kB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            u => panic!("unit {u}"),
        };
        num.parse::<f64>().unwrap() * scale
    };
    let ratio = value(&dtotal) / value(&rtotal);
    assert!(
        (0.9..1.1).contains(&ratio),
        "projected {dtotal}, real {rtotal}"
    );
    // The printed total is the real byte total, rounded.
    let total: u64 = real_shards
        .iter()
        .map(|s| s["bytes"].as_u64().unwrap())
        .sum();
    let (num, unit) = rtotal.split_once(' ').unwrap();
    let scale = match unit {
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        u => panic!("unit {u}"),
    };
    let printed: f64 = num.parse().unwrap();
    assert!((printed * scale - total as f64).abs() <= 0.05 * scale + 1.0);

    // The same counts are reported.
    for key in ["spectra read", "rejected"] {
        let pick = |s: &str| {
            s.lines()
                .find(|l| l.trim_start().starts_with(key))
                .unwrap()
                .split_whitespace()
                .nth(key.split(' ').count())
                .unwrap()
                .to_string()
        };
        assert_eq!(pick(&dry.stdout), pick(&real.stdout), "{key}");
    }
}

#[test]
fn dry_run_projects_the_real_runs_shards_through_the_library() {
    use msms_shards::config::{ByteSize, Layer, Settings};
    use msms_shards::run::{build_shards, detect_inputs, BuildOptions, Progress};

    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "high-form", 2000, FAULTS, 22);
    let cli = Layer {
        inputs: Some(vec![input.path.clone()]),
        batch_size: Some(128),
        row_group_size: Some(100),
        shard_size: Some(ByteSize(200_000)),
        num_workers: Some(2),
        ..Layer::default()
    };
    let settings = Settings::resolve(&cli, None, &Layer::default(), 2).unwrap();
    let mappings = detect_inputs(&settings.inputs).unwrap();
    let dry = build_shards(
        &BuildOptions {
            settings: settings.clone(),
            output_root: None,
            dry_run: true,
            overwrite: false,
            progress: Progress::Quiet,
            decode: Default::default(),
            resume: false,
            skip_preflight: false,
            strict_columns: false,
            resume_command: None,
            metrics_file: None,
            stop: None,
            units: None,
        },
        &mappings,
    )
    .unwrap();
    assert!(dry.manifest_path.is_none());

    let root = dir.path().join("out");
    build(
        &[&input.path],
        &root,
        &[
            "--batch-size",
            "128",
            "--row-group-size",
            "100",
            "--shard-size",
            "200000",
        ],
    )
    .expect_code(0);
    let m = read_manifest(&root);
    let real: Vec<msms_shards::format::manifest::ShardRecord> =
        serde_json::from_value(m["shards"].clone()).unwrap();
    assert!(real.len() >= 2);
    // The dry run encodes a sample of the row groups and projects the rest: the rows are
    // exact, the shard count and bytes close; it has no digests.
    assert_eq!(
        dry.counts.accepted,
        m["counts"]["written"].as_u64().unwrap()
    );
    let rows = |v: &[msms_shards::format::manifest::ShardRecord]| -> u64 {
        v.iter().map(|s| s.rows).sum()
    };
    assert_eq!(rows(&dry.shards), rows(&real));
    assert!(
        dry.shards.len().abs_diff(real.len()) <= 1,
        "{} projected shards, {} real",
        dry.shards.len(),
        real.len()
    );
    let bytes = |v: &[msms_shards::format::manifest::ShardRecord]| -> f64 {
        v.iter().map(|s| s.bytes as f64).sum()
    };
    let ratio = bytes(&dry.shards) / bytes(&real);
    assert!((0.9..1.1).contains(&ratio), "projected/real bytes {ratio}");
    assert!(dry.shards.iter().all(|s| s.sha256.is_empty()));
}

/// The manifest without its `run` object.
fn without_run(mut m: serde_json::Value) -> serde_json::Value {
    m.as_object_mut()
        .unwrap()
        .remove("run")
        .expect("a run object");
    m
}

#[test]
fn output_is_identical_whatever_the_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let a = synth_input(&dir.path().join("a.hdf5"), "gems", 1500, FAULTS, 31);
    let b = synth_input(&dir.path().join("b.hdf5"), "gems", 700, FAULTS, 32);
    let common = ["--batch-size", "100", "--shard-size", "200kB"];
    let mut manifests = Vec::new();
    let mut contents = Vec::new();
    for workers in ["1", "2", "5", "1"] {
        let root = dir
            .path()
            .join(format!("out-{workers}-{}", manifests.len()));
        let mut args = common.to_vec();
        args.extend(["--num-workers", workers]);
        build(&[&a.path, &b.path], &root, &args).expect_code(0);
        let m = read_manifest(&root);
        assert_eq!(m["run"]["num_workers"], workers.parse::<u64>().unwrap());
        let files = shard_files(&root);
        let bytes: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|f| (f.clone(), std::fs::read(root.join(f)).unwrap()))
            .collect();
        manifests.push(without_run(m));
        contents.push(bytes);
    }
    assert!(contents[0].len() >= 3, "want several shards");
    for i in 1..manifests.len() {
        assert_eq!(manifests[i], manifests[0], "manifest of run {i}");
        assert_eq!(contents[i].len(), contents[0].len());
        for (x, y) in contents[i].iter().zip(&contents[0]) {
            assert_eq!(x.0, y.0);
            assert!(x.1 == y.1, "{} differs between runs", x.0);
        }
    }
}

#[test]
fn non_empty_output_root_is_refused_unless_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 1500, FAULTS, 41);
    let root = dir.path().join("out");
    std::fs::create_dir_all(root.join("old")).unwrap();
    std::fs::write(root.join("old/keep.txt"), b"precious").unwrap();

    let run = build(&[&input.path], &root, &[]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("--overwrite"),
        "no hint at --overwrite: {}",
        run.stderr
    );
    assert!(run.stderr.contains(&root.display().to_string()));
    assert_eq!(files_under(&root), ["old/keep.txt"], "nothing written");

    // --overwrite: a run with many small shards...
    let many = [
        "--overwrite",
        "--shard-size",
        "150kB",
        "--batch-size",
        "100",
    ];
    build(&[&input.path], &root, &many).expect_code(0);
    let m = read_manifest(&root);
    let n_many = m["shards"].as_array().unwrap().len();
    assert!(n_many >= 4, "{n_many} shards");
    let mut want = vec!["_manifest.json".to_string(), "old/keep.txt".to_string()];
    want.extend((0..n_many).map(|i| format!("train/shard-{i:05}.parquet")));
    want.sort();
    assert_eq!(files_under(&root), want);

    // ...is refused again without --overwrite, and left as it was.
    build(&[&input.path], &root, &["--max-spectra", "10"]).expect_code(2);
    assert_eq!(files_under(&root), want);
    assert_eq!(read_manifest(&root), m);

    // Replaced by a one-shard run: no stale shard of the earlier run survives.
    build(
        &[&input.path],
        &root,
        &["--max-spectra", "1000", "--overwrite"],
    )
    .expect_code(0);
    assert_eq!(
        files_under(&root),
        [
            "_manifest.json",
            "old/keep.txt",
            "train/shard-00000.parquet"
        ],
        "earlier shards removed, the foreign file kept"
    );
    let m = read_manifest(&root);
    assert_eq!(m["counts"]["read"], 1000);
    let shard = read_shard(&root.join("train/shard-00000.parquet"), 0);
    assert_eq!(
        m["shards"][0]["sha256"],
        sha256_file(&root.join("train/shard-00000.parquet"))
    );
    let want = expectation(&[&input], &Rules::default(), Some(1000));
    assert_rows(&shard.rows.iter().collect::<Vec<_>>(), &want.rows);
    assert_eq!(
        std::fs::read(root.join("old/keep.txt")).unwrap(),
        b"precious"
    );

    // An empty existing directory is fine without --overwrite.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    build(&[&input.path], &empty, &[]).expect_code(0);
    let (m, shards) = read_all(&empty);
    assert_manifest_and_files(&empty, &m, &shards, false, &[]);

    // An output root that is a file is refused.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let run = build(&[&input.path], &file, &["--overwrite"]);
    run.expect_code(2);
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}
