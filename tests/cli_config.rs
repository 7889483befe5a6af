//! Command line and configuration: help, compatibility flags, `--config` errors, processing
//! options and the precedence of environment and flags.

mod common;

use common::*;
use parquet::basic::Compression;

#[test]
fn help_lists_the_commands_and_flags() {
    let run = msms(["--help"]);
    run.expect_code(0);
    assert!(run.stdout.contains("build-shards"), "{}", run.stdout);
    assert!(run.stdout.contains("synth"), "{}", run.stdout);

    let run = msms(["build-shards", "--help"]);
    run.expect_code(0);
    for flag in [
        "--input-hdf5",
        "--output-root",
        "--config",
        "--mode",
        "--num-workers",
        "--batch-size",
        "--shard-size",
        "--row-group-size",
        "--compression",
        "--max-spectra",
        "--dry-run",
        "--overwrite",
        "--normalize",
        "--min-peaks",
        "--max-precursor-mz",
        "--quiet",
    ] {
        assert!(
            run.stdout.contains(flag),
            "help lacks {flag}:\n{}",
            run.stdout
        );
    }

    let run = msms(["--version"]);
    run.expect_code(0);
    assert!(run.stdout.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn unknown_flag_exits_2() {
    let run = msms(["build-shards", "--no-such-flag"]);
    run.expect_code(2);
    assert!(run.stderr.contains("--no-such-flag"));
}

#[test]
fn use_dask_is_accepted_with_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 200, 0.1, 1);
    let root = dir.path().join("out");
    let run = build(&[&input.path], &root, &["--use-dask"]);
    run.expect_code(0);
    let notices: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("--use-dask"))
        .collect();
    assert_eq!(notices.len(), 1, "one notice line:\n{}", run.stderr);
    let (m, shards) = read_all(&root);
    let want = expectation(&[&input], &Rules::default(), None);
    assert_rows(&all_rows(&shards), &want.rows);
    assert_counts(&m, &want);
}

#[test]
fn synth_command_writes_the_same_file_as_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let lib = synth_input(
        &dir.path().join("lib.hdf5"),
        "float32,strings",
        300,
        0.2,
        77,
    );
    let cli = dir.path().join("cli.hdf5");
    let run = msms([
        "synth".as_ref(),
        cli.as_os_str(),
        "--spectra".as_ref(),
        "300".as_ref(),
        "--layout".as_ref(),
        "float32,strings".as_ref(),
        "--faults".as_ref(),
        "0.2".as_ref(),
        "--seed".as_ref(),
        "77".as_ref(),
    ] as [&std::ffi::OsStr; 10]);
    run.expect_code(0);
    for (r, n) in &lib.report.planted {
        assert!(
            run.stdout.contains(&format!("{r} {n}")),
            "planted {r} {n} not reported: {}",
            run.stdout
        );
    }
    // Converting either gives the same shards.
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    build(&[&lib.path], &a, &[]).expect_code(0);
    build(&[&cli], &b, &[]).expect_code(0);
    let (ma, _) = read_all(&a);
    let (mb, _) = read_all(&b);
    assert_eq!(ma["dataset_digest"], mb["dataset_digest"]);

    let run = msms(["synth", "x.hdf5", "--layout", "bogus"]);
    run.expect_code(2);
    let run = msms(["synth", "x.hdf5", "--faults", "1.5"]);
    run.expect_code(2);
}

#[test]
fn config_with_unknown_key_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 50, 0.0, 1);
    let cfg = dir.path().join("my config.yaml");
    std::fs::write(
        &cfg,
        "mode: local\nprofile:\n  batch_size: 100\n  shard_sise: 1GB\n",
    )
    .unwrap();
    let root = dir.path().join("out");
    let mut cmd = msms_command();
    cmd.arg("build-shards")
        .arg("--config")
        .arg(&cfg)
        .arg("--input-hdf5")
        .arg(&input.path)
        .arg("--output-root")
        .arg(&root);
    let run = run_command(cmd);
    run.expect_code(2);
    let want = format!("{}:4:", cfg.display());
    assert!(
        run.stderr.contains(&want),
        "want {want:?} in:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains("shard_sise"), "{}", run.stderr);
    assert!(!root.exists(), "nothing written");
}

#[test]
fn config_file_values_apply_and_flags_override_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 400, 0.1, 8);
    let cfg = dir.path().join("c.yaml");
    let root = dir.path().join("from-config");
    std::fs::write(
        &cfg,
        format!(
            "inputs: [{}]\noutput_root: {}\nprofile:\n  batch_size: 70\nprocessing:\n  normalize: none\n  min_peaks: 2\n",
            input.path.display(),
            root.display()
        ),
    )
    .unwrap();
    let run = msms([
        "build-shards".as_ref(),
        "--config".as_ref(),
        cfg.as_os_str(),
    ] as [&std::ffi::OsStr; 3]);
    run.expect_code(0);
    let (m, shards) = read_all(&root);
    assert_eq!(m["settings"]["batch_size"], 70);
    assert_eq!(m["settings"]["normalize"], "none");
    let rules = Rules {
        min_peaks: 2,
        normalize_max: false,
        ..Rules::default()
    };
    assert_rows(
        &all_rows(&shards),
        &expectation(&[&input], &rules, None).rows,
    );

    // Flags win over the file.
    let root2 = dir.path().join("flags");
    let mut cmd = msms_command();
    cmd.arg("build-shards")
        .arg("--config")
        .arg(&cfg)
        .args(["--output-root"])
        .arg(&root2)
        .args([
            "--batch-size",
            "90",
            "--normalize",
            "max",
            "--min-peaks",
            "1",
        ]);
    run_command(cmd).expect_code(0);
    let (m, shards) = read_all(&root2);
    assert_eq!(m["settings"]["batch_size"], 90);
    assert_rows(
        &all_rows(&shards),
        &expectation(&[&input], &Rules::default(), None).rows,
    );
}

#[test]
fn a_seed_config_with_max_shard_size_bytes_and_underscored_integers_converts() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 400, 0.1, 9);
    let cfg = dir.path().join("seed.yaml");
    std::fs::write(
        &cfg,
        "profile:\n  max_shard_size_bytes: 2_000_000_000\n  batch_size: 1_000\n",
    )
    .unwrap();
    let root = dir.path().join("root");
    let mut cmd = msms_command();
    cmd.arg("build-shards")
        .arg("--config")
        .arg(&cfg)
        .arg("--input-hdf5")
        .arg(&input.path)
        .arg("--output-root")
        .arg(&root)
        .arg("-q");
    let run = run_command(cmd);
    run.expect_code(0);
    let notice = format!(
        "msms build-shards: notice: {}: profile.max_shard_size_bytes is read as profile.shard_size, its name now",
        cfg.display()
    );
    assert!(run.stderr.contains(&notice), "{}", run.stderr);
    let m = read_manifest(&root);
    assert_eq!(m["settings"]["shard_size"], "2GB");
    assert_eq!(m["settings"]["batch_size"], 1000);
}

#[test]
fn more_workers_than_cores_is_said_by_the_preflight_and_the_pinning() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 600, 0.0, 10);
    let cores = std::thread::available_parallelism().unwrap().get();
    let workers = 4 * cores;
    let mut cmd = msms_command();
    cmd.arg("build-shards")
        .arg("--input-hdf5")
        .arg(&input.path)
        .arg("--output-root")
        .arg(dir.path().join("root"))
        .args([
            "--mode",
            "production",
            "--num-workers",
            &workers.to_string(),
        ]);
    let run = run_command(cmd);
    run.expect_code(0);
    let warning = format!(
        "warning: {workers} workers on {cores} usable cores: workers share cores (up to 4 per core), which buys no speed and costs memory; --num-workers {cores} fits this machine"
    );
    assert!(run.stderr.contains(&warning), "{}", run.stderr);
    // Production pins: the placement says that cores are shared.
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains(&format!("pinned {workers} workers to cores"))
            && all.contains("more workers than cores: up to 4 share a core"),
        "{all}"
    );
}

#[test]
fn normalize_none_keeps_raw_intensities() {
    let dir = tempfile::tempdir().unwrap();
    for layout in ["gems", "float32"] {
        let input = synth_input(
            &dir.path().join(format!("{layout}.hdf5")),
            layout,
            600,
            0.1,
            3,
        );
        let root = dir.path().join(format!("out-{layout}"));
        build(&[&input.path], &root, &["--normalize", "none"]).expect_code(0);
        let (m, shards) = read_all(&root);
        let rules = Rules {
            normalize_max: false,
            ..Rules::default()
        };
        let want = expectation(&[&input], &rules, None);
        assert_rows(&all_rows(&shards), &want.rows);
        assert_counts(&m, &want);
        // Not normalised: some intensity is far above 1.
        assert!(all_rows(&shards)
            .iter()
            .any(|r| r.intensity.iter().any(|&i| i > 1000.0)));
        assert_eq!(m["settings"]["normalize"], "none");
    }
}

#[test]
fn normalize_max_puts_the_base_peak_at_one() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 500, 0.0, 13);
    let root = dir.path().join("out");
    build(&[&input.path], &root, &["--normalize", "max"]).expect_code(0);
    let (_, shards) = read_all(&root);
    for r in all_rows(&shards) {
        let max = r.intensity.iter().copied().fold(f32::MIN, f32::max);
        assert_eq!(max, 1.0, "id {}", r.spectrum_id);
        assert!(r.intensity.iter().all(|&i| i > 0.0 && i <= 1.0));
    }
}

#[test]
fn max_precursor_mz_rejects_above_it_as_bad_precursor() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 1000, 0.1, 17);
    let max = 600.0;
    let root = dir.path().join("out");
    build(&[&input.path], &root, &["--max-precursor-mz", "600"]).expect_code(0);
    let (m, shards) = read_all(&root);
    let rules = Rules {
        max_precursor_mz: Some(max),
        ..Rules::default()
    };
    let want = expectation(&[&input], &rules, None);
    assert_rows(&all_rows(&shards), &want.rows);
    assert_counts(&m, &want);
    let planted = input.report.planted[&msms_kernels::RejectReason::BadPrecursor];
    let bad = m["counts"]["rejected"]["bad_precursor"].as_u64().unwrap();
    assert!(
        bad > planted + 50,
        "the bound rejects many valid spectra: {bad} vs {planted} planted"
    );
    assert!(all_rows(&shards).iter().all(|r| r.precursor_mz <= max));
    assert_eq!(m["settings"]["max_precursor_mz"], 600.0);
}

#[test]
fn batch_size_from_environment_is_overridden_by_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 1000, 0.0, 23);
    let run_with = |root: &std::path::Path, flag: Option<&str>| {
        let mut cmd = msms_command();
        cmd.env("MSMS_BATCH_SIZE", "300")
            .arg("build-shards")
            .arg("--input-hdf5")
            .arg(&input.path)
            .arg("--output-root")
            .arg(root);
        if let Some(b) = flag {
            cmd.args(["--batch-size", b]);
        }
        run_command(cmd).expect_code(0);
        read_all(root)
    };
    let (m, shards) = run_with(&dir.path().join("env"), None);
    assert_eq!(m["settings"]["batch_size"], 300);
    assert_eq!(m["profile"]["batch_size"], 300);
    assert_eq!(shards.len(), 1);
    // The batch size is the read unit only: row groups follow --row-group-size.
    assert_eq!(shards[0].row_group_rows, [1000]);

    let (m, shards) = run_with(&dir.path().join("flag"), Some("450"));
    assert_eq!(m["settings"]["batch_size"], 450);
    assert_eq!(shards[0].row_group_rows, [1000]);

    // Without either, the local default.
    let root = dir.path().join("default");
    build(&[&input.path], &root, &[]).expect_code(0);
    let (m, shards) = read_all(&root);
    assert_eq!(m["settings"]["batch_size"], 1000);
    assert_eq!(m["mode"], "local");
    assert_eq!(shards[0].row_group_rows, [1000]);
}

#[test]
fn mode_production_uses_its_profile() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 100, 0.0, 2);
    let root = dir.path().join("out");
    build(
        &[&input.path],
        &root,
        &["--mode", "cloud", "--num-workers", "2"],
    )
    .expect_code(0);
    let m = read_manifest(&root);
    assert_eq!(m["mode"], "production");
    assert_eq!(m["settings"]["batch_size"], 10_000);
    assert_eq!(m["settings"]["shard_size"], "2GB");
    // The profile's 2 shard writers, recorded with the run (not with the settings).
    assert_eq!(m["run"]["writers"], 2);
    assert_eq!(m["run"]["num_workers"], 2);
}

#[test]
fn missing_output_root_or_inputs_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 10, 0.0, 2);
    let mut cmd = msms_command();
    cmd.arg("build-shards").arg("--input-hdf5").arg(&input.path);
    let run = run_command(cmd);
    run.expect_code(2);
    assert!(run.stderr.contains("--output-root"), "{}", run.stderr);

    let run = msms(["build-shards", "--output-root", "x"]);
    run.expect_code(2);
    assert!(run.stderr.contains("--input-hdf5"), "{}", run.stderr);
}

#[test]
fn quiet_prints_nothing_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 100, 0.0, 2);
    let root = dir.path().join("out");
    let run = build(&[&input.path], &root, &["-q"]);
    run.expect_code(0);
    assert!(run.stderr.is_empty(), "stderr: {}", run.stderr);
}

#[test]
fn min_peaks_0_still_rejects_empty_spectra() {
    // `empty` is the first reason in the order; --min-peaks only adds too_few_peaks.
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 800, 0.1, 29);
    let root = dir.path().join("out");
    build(&[&input.path], &root, &["--min-peaks", "0"]).expect_code(0);
    let (m, shards) = read_all(&root);
    let rules = Rules {
        min_peaks: 0,
        ..Rules::default()
    };
    let want = expectation(&[&input], &rules, None);
    assert_rows(&all_rows(&shards), &want.rows);
    assert_counts(&m, &want);
    assert_eq!(
        m["counts"]["rejected"]["empty"],
        input.report.planted[&msms_kernels::RejectReason::Empty]
    );
    assert!(all_rows(&shards).iter().all(|r| r.num_peaks >= 1));
}

#[test]
fn invalid_transform_settings_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 10, 0.0, 2);
    let root = dir.path().join("out");
    let cases: [(&[&str], &str); 5] = [
        (&["--max-peaks", "0"], "--max-peaks"),
        (
            &["--bin-width", "0", "--bin-range", "10:1000"],
            "--bin-width",
        ),
        (
            &["--bin-width", "-1", "--bin-range", "10:1000"],
            "--bin-width",
        ),
        (
            &["--bin-width", "0.1", "--bin-range", "1000:10"],
            "--bin-range",
        ),
        (&["--bin-width", "0.1"], "--bin-range"),
    ];
    for (args, flag) in cases {
        let run = build(&[&input.path], &root, args);
        run.expect_code(2);
        assert!(run.stderr.contains(flag), "{args:?}: {}", run.stderr);
        assert!(!root.exists(), "{args:?} wrote {}", root.display());
    }
}

#[test]
fn binning_and_top_k_change_the_schema_and_the_peaks() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 300, 0.0, 2);
    let root = dir.path().join("out");
    build(
        &[&input.path],
        &root,
        &[
            "--max-peaks",
            "5",
            "--bin-width",
            "0.7",
            "--bin-range",
            "0.7:1000",
            "--bin-output",
            "sparse",
        ],
    )
    .expect_code(0);
    let (m, shards) = read_all(&root);
    assert_eq!(m["settings"]["max_peaks"], 5);
    let names: Vec<&str> = shards[0]
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(&names[13..], ["bin_index", "bin_value"]);
    let rows = all_rows(&shards);
    assert_eq!(rows.len(), 300);
    for r in &rows {
        let s = msms_shards::commands::synth::spectrum_at(2, r.source_row, 0.0, false);
        let n =
            s.mz.iter()
                .zip(&s.intensity)
                .rposition(|(m, i)| *m != 0.0 || *i != 0.0)
                .unwrap()
                + 1;
        assert_eq!(r.num_peaks as usize, n.min(5), "row {}", r.source_row);
        assert_eq!(r.mz.len(), n.min(5));
        // The kept peaks are the most intense ones, in ascending m/z.
        let mut sorted = s.intensity[..n].to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let cutoff = sorted[n.min(5) - 1];
        assert!(r.mz.windows(2).all(|w| w[0] < w[1]));
        for mz in &r.mz {
            let j = s.mz.iter().position(|x| x == mz).unwrap();
            assert!(
                s.intensity[j] >= cutoff,
                "row {}: kept a peak below the top 5",
                r.source_row
            );
        }
    }
}

/// `--compression` sets the codec of every column chunk (read back from the footers), the
/// rows are the same whatever the codec, `msms verify --full` passes, and the codec is part of
/// the recorded settings and the config hash.
#[test]
fn compression_sets_every_column_chunk_codec_and_verify_passes() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 400, 0.1, 31);
    let want = expectation(&[&input], &Rules::default(), None);
    // The footer's codec, by name (a zstd chunk does not record its level).
    let codec_of = |c: &Compression| match c {
        Compression::ZSTD(_) => "ZSTD",
        Compression::LZ4_RAW => "LZ4_RAW",
        Compression::SNAPPY => "SNAPPY",
        Compression::UNCOMPRESSED => "UNCOMPRESSED",
        other => panic!("unexpected codec {other:?}"),
    };
    let cases: [(&[&str], &str, &str); 6] = [
        (&[], "zstd:1", "ZSTD"),
        (&["--compression", "zstd"], "zstd:1", "ZSTD"),
        (&["--compression", "ZSTD:9"], "zstd:9", "ZSTD"),
        (&["--compression", "lz4"], "lz4", "LZ4_RAW"),
        (&["--compression", "snappy"], "snappy", "SNAPPY"),
        (&["--compression", "none"], "none", "UNCOMPRESSED"),
    ];
    let mut hashes = Vec::new();
    for (i, (args, text, codec)) in cases.into_iter().enumerate() {
        let root = dir.path().join(format!("out{i}"));
        // Small shards and row groups, so several footers and many column chunks are read.
        let mut extra = vec!["--shard-size", "60KB", "--batch-size", "100"];
        extra.extend_from_slice(args);
        build(&[&input.path], &root, &extra).expect_code(0);
        let (m, shards) = read_all(&root);
        assert!(shards.len() > 1, "{args:?}: {} shards", shards.len());
        for (k, s) in shards.iter().enumerate() {
            assert!(!s.compressions.is_empty());
            for c in &s.compressions {
                assert_eq!(codec_of(c), codec, "{args:?}: shard {k}");
            }
        }
        assert_rows(&all_rows(&shards), &want.rows);
        assert_counts(&m, &want);
        assert_eq!(m["settings"]["compression"], *text, "{args:?}");
        assert_eq!(m["profile"]["compression"], *text, "{args:?}");
        let v = msms(["verify".as_ref(), root.as_os_str(), "--full".as_ref()]);
        v.expect_code(0);
        hashes.push(m["config_hash"].as_str().unwrap().to_owned());
    }
    // `zstd` is the default zstd:1; every other codec has its own config hash.
    assert_eq!(hashes[0], hashes[1]);
    for (i, h) in hashes.iter().enumerate().skip(2) {
        assert!(!hashes[..i].contains(h), "case {i}: hash {h} repeats");
    }

    // The environment sets it too, and the flag overrides the environment.
    let root = dir.path().join("env");
    let mut cmd = msms_command();
    cmd.env("MSMS_COMPRESSION", "snappy")
        .arg("build-shards")
        .arg("--input-hdf5")
        .arg(&input.path)
        .arg("--output-root")
        .arg(&root);
    run_command(cmd).expect_code(0);
    let (m, shards) = read_all(&root);
    assert_eq!(m["settings"]["compression"], "snappy");
    assert!(shards[0]
        .compressions
        .iter()
        .all(|c| *c == Compression::SNAPPY));
    let root = dir.path().join("env-and-flag");
    let mut cmd = msms_command();
    cmd.env("MSMS_COMPRESSION", "snappy")
        .arg("build-shards")
        .arg("--input-hdf5")
        .arg(&input.path)
        .arg("--output-root")
        .arg(&root)
        .args(["--compression", "lz4"]);
    run_command(cmd).expect_code(0);
    let (m, shards) = read_all(&root);
    assert_eq!(m["settings"]["compression"], "lz4");
    assert!(shards[0]
        .compressions
        .iter()
        .all(|c| *c == Compression::LZ4_RAW));
}

#[test]
fn bad_compression_or_row_group_size_exits_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 10, 0.0, 2);
    let root = dir.path().join("out");
    let cases: [(&[&str], &[&str]); 6] = [
        (
            &["--compression", "zstd:0"],
            &["--compression", "zstd level 0 is out of range: use 1 (fastest) to 22"],
        ),
        (
            &["--compression", "zstd:23"],
            &["--compression", "zstd level 23 is out of range"],
        ),
        (
            &["--compression", "gzip"],
            &[
                "--compression",
                "expected zstd, zstd:LEVEL (LEVEL 1 to 22), lz4, snappy or none",
            ],
        ),
        (
            &["--compression", "lz4:2"],
            &["--compression", "only zstd takes a level"],
        ),
        (
            &["--row-group-size", "0"],
            &["profile.row_group_size (--row-group-size) = 0 (from command line): must be at least 1"],
        ),
        (&["--row-group-size", "lots"], &["--row-group-size"]),
    ];
    for (args, mentions) in cases {
        let run = build(&[&input.path], &root, args);
        run.expect_code(2);
        for m in mentions {
            assert!(run.stderr.contains(m), "{args:?}: {}", run.stderr);
        }
        assert!(!root.exists(), "{args:?} wrote {}", root.display());
    }
    for (var, value, mention) in [
        (
            "MSMS_COMPRESSION",
            "zstd:99",
            "zstd level 99 is out of range",
        ),
        ("MSMS_COMPRESSION", "brotli", "expected zstd, zstd:LEVEL"),
        ("MSMS_ROW_GROUP_SIZE", "0", "must be at least 1"),
    ] {
        let mut cmd = msms_command();
        cmd.env(var, value)
            .arg("build-shards")
            .arg("--input-hdf5")
            .arg(&input.path)
            .arg("--output-root")
            .arg(&root);
        let run = run_command(cmd);
        run.expect_code(2);
        assert!(
            run.stderr
                .contains(&format!("environment variable {var}={value:?}: ")),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(mention), "{}", run.stderr);
        assert!(!root.exists());
    }
}

/// `--row-group-size` resolves like `--batch-size` (flag > file > environment > default)
/// and is recorded in the manifest's settings and profile and in the config hash.
#[test]
fn row_group_size_is_resolved_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 50, 0.0, 3);
    let cfg = dir.path().join("rg.yaml");
    std::fs::write(&cfg, "profile:\n  row_group_size: 2000\n").unwrap();
    let cfg = cfg.to_str().unwrap();
    let run_with = |name: &str, env: Option<&str>, args: &[&str]| {
        let root = dir.path().join(name);
        let mut cmd = msms_command();
        if let Some(v) = env {
            cmd.env("MSMS_ROW_GROUP_SIZE", v);
        }
        cmd.arg("build-shards")
            .arg("--input-hdf5")
            .arg(&input.path)
            .arg("--output-root")
            .arg(&root)
            .args(args);
        run_command(cmd).expect_code(0);
        read_manifest(&root)
    };
    let default = run_with("default", None, &[]);
    assert_eq!(default["settings"]["row_group_size"], 32_768);
    assert_eq!(default["profile"]["row_group_size"], 32_768);
    let production = run_with("production", None, &["--mode", "production"]);
    assert_eq!(production["settings"]["row_group_size"], 32_768);
    let env = run_with("env", Some("3000"), &[]);
    assert_eq!(env["settings"]["row_group_size"], 3000);
    assert_eq!(env["profile"]["row_group_size"], 3000);
    assert_ne!(env["config_hash"], default["config_hash"]);
    let file = run_with("file", Some("3000"), &["--config", cfg]);
    assert_eq!(file["settings"]["row_group_size"], 2000, "file beats env");
    let flag = run_with(
        "flag",
        Some("3000"),
        &["--config", cfg, "--row-group-size", "4000"],
    );
    assert_eq!(flag["settings"]["row_group_size"], 4000, "flag wins");
    assert_eq!(flag["profile"]["row_group_size"], 4000);
}
