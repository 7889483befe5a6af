//! Inputs that cannot be converted are refused before anything is written: exit code 2 and a
//! message naming the file and the dataset. Hostile files are built with the crate's own
//! HDF5 writer.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use msms_shards::read::h5::{File, Storage, WriteType};

/// A dataset to create: name, type, shape.
struct Ds {
    name: &'static str,
    ty: WriteType,
    shape: Vec<u64>,
}

fn ds(name: &'static str, ty: WriteType, shape: &[u64]) -> Ds {
    Ds {
        name,
        ty,
        shape: shape.to_vec(),
    }
}

/// A GeMS-like file with `n` rows whose datasets are `datasets` (unwritten datasets read
/// as zeros, which is enough for refusals that happen at detection).
fn write_file(path: &Path, datasets: &[Ds]) {
    let _g = fork_guard();
    let f = File::create(path).unwrap();
    for d in datasets {
        let chunked = Storage::Chunked {
            chunk: d.shape.iter().map(|&x| x.clamp(1, 64)).collect(),
            deflate: Some(1),
            shuffle: false,
            fletcher32: false,
        };
        let storage = if d.shape.is_empty() {
            Storage::Contiguous
        } else {
            chunked
        };
        f.create_dataset(d.name, &d.ty, &d.shape, &storage).unwrap();
    }
}

/// The usual scalar columns for `n` rows.
fn scalars(n: u64) -> Vec<Ds> {
    vec![
        ds("precursor_mz", WriteType::of::<f32>(), &[n]),
        ds("RT", WriteType::of::<f32>(), &[n]),
        ds("charge", WriteType::of::<i8>(), &[n]),
        ds("instrument accuracy est.", WriteType::of::<f32>(), &[n]),
        ds("lsh", WriteType::of::<i64>(), &[n]),
        ds("name", WriteType::VarString, &[n]),
    ]
}

struct Case {
    _dir: tempfile::TempDir,
    file: PathBuf,
    root: PathBuf,
}

fn case(datasets: Vec<Ds>) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.hdf5");
    write_file(&file, &datasets);
    let root = dir.path().join("out");
    Case {
        file,
        root,
        _dir: dir,
    }
}

/// Run build-shards on `inputs`, expect exit 2, a message naming `file` and containing every
/// one of `mentions`, no panic, and no output root at all.
#[track_caller]
fn assert_refused(inputs: &[&Path], root: &Path, file: &Path, mentions: &[&str]) -> Run {
    let run = build(inputs, root, &[]);
    assert_refusal_message(&run, file, mentions);
    assert!(
        !root.exists(),
        "output root created for a refused input: {:?}",
        files_under(root)
    );
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout);
    run
}

#[test]
fn valid_handmade_file_converts() {
    // The baseline for the hostile variants below: the same writer, nothing wrong, only
    // the two required datasets.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("handmade.hdf5");
    let n = 40u64;
    {
        let _g = fork_guard();
        let f = File::create(&file).unwrap();
        let spec = f
            .create_dataset(
                "spectrum",
                &WriteType::of::<f64>(),
                &[n, 2, 128],
                &Storage::Contiguous,
            )
            .unwrap();
        let mut peaks = vec![0.0f64; (n * 256) as usize];
        for r in 0..n as usize {
            peaks[r * 256] = 100.0 + r as f64;
            peaks[r * 256 + 128] = 5.0;
        }
        spec.write_rows(0, n, &peaks).unwrap();
        let p = f
            .create_dataset(
                "precursor_mz",
                &WriteType::of::<f32>(),
                &[n],
                &Storage::Contiguous,
            )
            .unwrap();
        p.write_rows(0, n, &vec![500.0f32; n as usize]).unwrap();
        // A per-spectrum dataset named like a fixed output column passes through renamed.
        let np = f
            .create_dataset(
                "num_peaks",
                &WriteType::of::<i16>(),
                &[n],
                &Storage::Contiguous,
            )
            .unwrap();
        np.write_rows(0, n, &(0..n as i16).map(|i| -i).collect::<Vec<_>>())
            .unwrap();
    }
    let c = Case {
        root: dir.path().join("out"),
        file,
        _dir: dir,
    };
    let run = build(&[&c.file], &c.root, &["--normalize", "none"]);
    run.expect_code(0);
    let (m, shards) = read_all(&c.root);
    let rows = all_rows(&shards);
    assert_eq!(rows.len(), 40);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.mz, [100.0 + i as f64]);
        assert_eq!(r.intensity, [5.0f32]);
        assert_eq!(r.precursor_mz, 500.0);
        // Absent optional datasets become nulls.
        assert_eq!(r.rt, None);
        assert_eq!(r.charge, None);
        assert_eq!(r.name, None);
        assert_eq!(r.lsh, Lsh::Null);
    }
    assert_eq!(m["counts"]["written"], 40);
    assert_eq!(rows.iter().map(|r| r.num_peaks).max(), Some(1));
    let schema = &shards[0].schema;
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(&names[..13], FIXED_COLUMNS);
    assert_eq!(&names[13..], ["input_num_peaks"]);
    let batch = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(c.root.join("train/shard-00000.parquet")).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap()
    .next()
    .unwrap()
    .unwrap();
    use arrow::array::AsArray;
    let col = batch
        .column_by_name("input_num_peaks")
        .unwrap()
        .as_primitive::<arrow::datatypes::Int16Type>();
    assert_eq!(
        col.values().to_vec(),
        (0..40i16).map(|i| -i).collect::<Vec<_>>()
    );
}

#[test]
fn file_without_spectrum_tensor() {
    let c = case(scalars(50));
    assert_refused(&[&c.file], &c.root, &c.file, &["spectrum"]);
}

#[test]
fn datasets_of_different_lengths() {
    let mut d = vec![ds("spectrum", WriteType::of::<f64>(), &[50, 2, 128])];
    d.extend(scalars(50));
    d.push(ds("scan_number", WriteType::of::<i32>(), &[49]));
    let c = case(d);
    assert_refused(&[&c.file], &c.root, &c.file, &["scan_number", "49", "50"]);
}

#[test]
fn precursor_of_different_length() {
    let mut d = vec![ds("spectrum", WriteType::of::<f32>(), &[50, 2, 128])];
    d.extend(scalars(50).into_iter().skip(1));
    d.push(ds("precursor_mz", WriteType::of::<f32>(), &[51]));
    let c = case(d);
    assert_refused(&[&c.file], &c.root, &c.file, &["precursor_mz"]);
}

#[test]
fn integer_spectrum_tensor() {
    let mut d = vec![ds("spectrum", WriteType::of::<i32>(), &[30, 2, 128])];
    d.extend(scalars(30));
    let c = case(d);
    assert_refused(&[&c.file], &c.root, &c.file, &["spectrum", "dtype"]);
}

#[test]
fn string_spectrum_tensor() {
    let mut d = vec![ds("spectra", WriteType::FixedString(8), &[30, 128, 2])];
    d.extend(scalars(30));
    let c = case(d);
    assert_refused(&[&c.file], &c.root, &c.file, &["spectra", "dtype"]);
}

#[test]
fn spectrum_tensor_of_shape_n_3_128() {
    let mut d = vec![ds("spectrum", WriteType::of::<f64>(), &[30, 3, 128])];
    d.extend(scalars(30));
    let c = case(d);
    assert_refused(&[&c.file], &c.root, &c.file, &["spectrum", "shape"]);
}

#[test]
fn one_dimensional_spectrum() {
    let mut d = vec![ds("spectrum", WriteType::of::<f64>(), &[30])];
    d.extend(scalars(30));
    let c = case(d);
    assert_refused(&[&c.file], &c.root, &c.file, &["spectrum", "shape"]);
}

#[test]
fn string_precursor_mz() {
    let mut d = vec![ds("spectrum", WriteType::of::<f64>(), &[30, 2, 128])];
    d.extend(scalars(30).into_iter().skip(1));
    d.push(ds("precursor_mz", WriteType::VarString, &[30]));
    let c = case(d);
    assert_refused(&[&c.file], &c.root, &c.file, &["precursor_mz", "dtype"]);
}

#[test]
fn not_an_hdf5_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("random.hdf5");
    // Deterministic pseudo-random bytes.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let bytes: Vec<u8> = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&file, bytes).unwrap();
    let root = dir.path().join("out");
    assert_refused(&[&file], &root, &file, &[]);
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.hdf5");
    std::fs::write(&file, b"").unwrap();
    let root = dir.path().join("out");
    assert_refused(&[&file], &root, &file, &[]);
}

#[test]
fn truncated_hdf5_file() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.hdf5");
    synth_input(&full, "gems", 3000, 0.0, 1);
    let bytes = std::fs::read(&full).unwrap();
    for (i, keep) in [bytes.len() / 2, bytes.len() - 1000, 4096]
        .into_iter()
        .enumerate()
    {
        let file = dir.path().join(format!("truncated{i}.hdf5"));
        std::fs::write(&file, &bytes[..keep]).unwrap();
        let root = dir.path().join(format!("out{i}"));
        let run = build(&[&file], &root, &[]);
        run.expect_code(2);
        assert!(
            run.stderr.contains(&file.display().to_string()),
            "truncated at {keep}: message does not name the file:\n{}",
            run.stderr
        );
        // Nothing half-written, whatever stage noticed the damage.
        let left: Vec<String> = files_under(&root)
            .into_iter()
            .filter(|f| f.ends_with(".tmp") || f.ends_with(".parquet") || f.ends_with(".json"))
            .collect();
        assert!(left.is_empty(), "truncated at {keep}: left {left:?}");
    }
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("does-not-exist.hdf5");
    let root = dir.path().join("out");
    assert_refused(&[&file], &root, &file, &[]);
}

#[test]
fn a_bad_second_input_refuses_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let good = synth_input(&dir.path().join("good.hdf5"), "gems", 200, 0.0, 3);
    let bad = dir.path().join("bad.hdf5");
    let mut d = vec![ds("spectrum", WriteType::of::<i64>(), &[10, 2, 128])];
    d.extend(scalars(10));
    write_file(&bad, &d);
    let root = dir.path().join("out");
    let run = assert_refused(&[&good.path, &bad], &root, &bad, &["spectrum"]);
    assert!(!run.stderr.contains(&format!("{}:", good.path.display())));
}

#[test]
fn inputs_with_different_lsh_types_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = synth_input(&dir.path().join("a.hdf5"), "gems", 100, 0.0, 3);
    let b = synth_input(&dir.path().join("b.hdf5"), "strings", 100, 0.0, 4);
    let root = dir.path().join("out");
    assert_refused(&[&a.path, &b.path], &root, &b.path, &["lsh"]);
}

#[test]
fn inputs_with_different_pass_through_columns_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = synth_input(&dir.path().join("a.hdf5"), "gems", 100, 0.0, 3);
    let b = synth_input(&dir.path().join("b.hdf5"), "embedding", 100, 0.0, 4);
    let root = dir.path().join("out");
    assert_refused(&[&a.path, &b.path], &root, &b.path, &["DreaMS_embedding"]);
}

/// The `N` of "N bytes needed" in a shard-size error.
fn bytes_needed(stderr: &str) -> u64 {
    let (before, _) = stderr
        .split_once(" bytes needed")
        .unwrap_or_else(|| panic!("cannot find the bytes needed in: {stderr}"));
    before
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("cannot parse the bytes needed in: {stderr}"))
}

#[test]
fn shard_size_too_small_for_a_later_spectrum_leaves_nothing() {
    // Spectrum 0 has one peak; every later one 128 peaks of incompressible values. A shard
    // size that holds spectrum 0 but not spectrum 1 fails the run after the first shard
    // could be finalised: the exit code is 2 ("nothing written"), so nothing may remain.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grow.hdf5");
    let n = 20u64;
    {
        let _g = fork_guard();
        let f = File::create(&file).unwrap();
        let spec = f
            .create_dataset(
                "spectrum",
                &WriteType::of::<f64>(),
                &[n, 2, 128],
                &Storage::Contiguous,
            )
            .unwrap();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut peaks = vec![0.0f64; (n * 256) as usize];
        peaks[0] = 100.0;
        peaks[128] = 1.0;
        for r in 1..n as usize {
            let mut mz = 50.0;
            for k in 0..128 {
                mz += 0.5 + rnd();
                peaks[r * 256 + k] = mz;
                peaks[r * 256 + 128 + k] = 1.0 + rnd() * 1e6;
            }
        }
        spec.write_rows(0, n, &peaks).unwrap();
        let p = f
            .create_dataset(
                "precursor_mz",
                &WriteType::of::<f32>(),
                &[n],
                &Storage::Contiguous,
            )
            .unwrap();
        p.write_rows(0, n, &vec![900.0f32; n as usize]).unwrap();
    }
    // The need of spectrum 0, as the tool reports it.
    let probe = build(&[&file], &dir.path().join("probe"), &["--shard-size", "1"]);
    probe.expect_code(2);
    let need0 = bytes_needed(&probe.stderr);

    let root = dir.path().join("out");
    let shard_size = need0.to_string();
    let run = build(
        &[&file],
        &root,
        &["--shard-size", &shard_size, "--batch-size", "1"],
    );
    run.expect_code(2);
    assert!(run.stderr.contains("--shard-size"), "{}", run.stderr);
    let left = files_under(&root);
    assert!(
        left.is_empty(),
        "exit 2 promises nothing written, but left: {left:?}"
    );
}
