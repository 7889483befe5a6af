//! `msms verify` and its alias `msms validate-shards`, through the binary: a fresh output root
//! passes; flipped bytes, truncated, missing and unlisted shards, leftover `.tmp` files and
//! edited manifests are each named with exit 1; `--full` catches a shard that is valid
//! Parquet with correct digests but breaks a spectrum invariant; a root without a manifest
//! exits 2.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, Float32Array, Float64Array, ListArray, RecordBatch};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, UInt64Type};
use common::*;
use msms_shards::format::manifest::{dataset_digest, ShardRecord};
use msms_shards::write::writer_properties;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;

/// A converted output root with several shards, built in `dir`; returns the root.
fn fresh_root(dir: &Path) -> PathBuf {
    sharded_root(dir, 400, 50, 7)
}

fn verify(root: &Path, extra: &[&str]) -> Run {
    let mut args = vec![std::ffi::OsStr::new("verify"), root.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    msms(args)
}

/// Shard `i`'s path relative to the root, as the manifest records it.
fn shard(root: &Path, i: usize) -> String {
    read_manifest(root)["shards"][i]["path"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Copy a directory tree.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

fn edit_manifest(root: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut m = read_manifest(root);
    edit(&mut m);
    fs::write(
        root.join("manifest.json"),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
}

#[track_caller]
fn assert_lines(run: &Run, want: &[&str]) {
    for w in want {
        assert!(
            run.stdout.lines().any(|l| l.contains(w)),
            "no line contains {w:?}:\n{}",
            run.stdout
        );
    }
}

#[test]
fn fresh_root_verifies_ok_plain_full_and_through_the_alias() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path());
    let m = read_manifest(&root);
    let shards = m["shards"].as_array().unwrap().len();
    let rows = m["counts"]["written"].as_u64().unwrap();

    let run = verify(&root, &[]);
    run.expect_code(0);
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "only the summary:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.starts_with(&format!(
            "msms verify: verified {shards} shards, {rows} rows, "
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.trim_end().ends_with(": OK"), "{}", run.stdout);

    let run = verify(&root, &["--full"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("(every spectrum checked)") && run.stdout.trim_end().ends_with(": OK"),
        "{}",
        run.stdout
    );

    let run = msms([
        "validate-shards".as_ref(),
        "--output".as_ref(),
        root.as_os_str(),
        "--full".as_ref(),
    ]);
    run.expect_code(0);
    assert!(run.stdout.trim_end().ends_with(": OK"), "{}", run.stdout);

    let run = verify(&root, &["-q", "-j", "1"]);
    run.expect_code(0);
    assert_eq!(run.stdout, "", "quiet prints nothing when all is well");
    assert_eq!(run.stderr, "");
}

#[test]
fn a_flipped_byte_anywhere_in_a_shard_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = fresh_root(dir.path());
    let rel = shard(&pristine, 1);
    let bytes = fs::read(pristine.join(&rel)).unwrap();
    let len = bytes.len();
    // Parquet ends with the footer, its 4-byte length and "PAR1".
    let footer_len = u32::from_le_bytes(bytes[len - 8..len - 4].try_into().unwrap()) as usize;
    let footer_start = len - 8 - footer_len;
    let positions = [
        ("first byte", 0),
        ("second byte", 1),
        ("middle", len / 2),
        ("inside the footer", footer_start + footer_len / 2),
        ("last footer byte", len - 9),
        ("footer length", len - 6),
        ("last byte", len - 1),
    ];
    for (what, pos) in positions {
        let root = dir.path().join(format!("flip-{pos}"));
        copy_dir(&pristine, &root);
        let mut b = bytes.clone();
        b[pos] ^= 0x01;
        fs::write(root.join(&rel), &b).unwrap();
        let run = verify(&root, &[]);
        run.expect_code(1);
        assert_lines(
            &run,
            &[&format!("{rel}: sha256 mismatch: manifest "), ": 1 problem"],
        );
        assert_eq!(
            run.stdout.lines().count(),
            2,
            "{what}: one problem line and the summary:\n{}",
            run.stdout
        );
    }
}

#[test]
fn a_truncated_shard_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path());
    let rel = shard(&root, 2);
    let path = root.join(&rel);
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let run = verify(&root, &[]);
    run.expect_code(1);
    assert_lines(
        &run,
        &[
            &format!(
                "{rel}: size mismatch: manifest {len} bytes, file {} bytes",
                len - 100
            ),
            &format!("{rel}: sha256 mismatch"),
            ": 2 problems",
        ],
    );
}

#[test]
fn a_missing_shard_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path());
    let rel = shard(&root, 0);
    fs::remove_file(root.join(&rel)).unwrap();
    let run = verify(&root, &[]);
    run.expect_code(1);
    assert_lines(
        &run,
        &[
            &format!("{rel}: missing (listed in manifest.json)"),
            ": 1 problem",
        ],
    );
}

#[test]
fn an_unlisted_shard_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path());
    fs::copy(
        root.join(shard(&root, 0)),
        root.join("train/shard-00999.parquet"),
    )
    .unwrap();
    fs::create_dir(root.join("test")).unwrap();
    fs::write(root.join("test/shard-00000.parquet"), b"x").unwrap();
    // Other files are the user's business.
    fs::write(root.join("train/notes.txt"), b"x").unwrap();
    let run = verify(&root, &[]);
    run.expect_code(1);
    assert_lines(
        &run,
        &[
            "train/shard-00999.parquet: shard file not listed in manifest.json",
            "test/shard-00000.parquet: shard file not listed in manifest.json",
            ": 2 problems",
        ],
    );
}

#[test]
fn leftover_tmp_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path());
    fs::write(root.join("train/shard-00007.parquet.tmp"), b"half").unwrap();
    fs::write(root.join("manifest.json.tmp"), b"{").unwrap();
    let run = verify(&root, &[]);
    run.expect_code(1);
    assert_lines(
        &run,
        &[
            "train/shard-00007.parquet.tmp: leftover temporary file",
            "manifest.json.tmp: leftover temporary file",
            ": 2 problems",
        ],
    );
}

#[test]
fn manifest_edits_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path());
    let m = read_manifest(&root);
    let rows = m["shards"][1]["rows"].as_u64().unwrap();
    let first = m["shards"][2]["first_spectrum_id"].as_u64().unwrap();
    let written = m["counts"]["written"].as_u64().unwrap();
    let (rel1, rel2) = (shard(&root, 1), shard(&root, 2));
    edit_manifest(&root, |m| {
        m["shards"][1]["rows"] = (rows + 1).into();
        m["shards"][2]["first_spectrum_id"] = (first + 1).into();
    });
    let run = verify(&root, &[]);
    run.expect_code(1);
    assert_lines(
        &run,
        &[
            &format!("{rel1}: rows mismatch: manifest {}, file {rows}", rows + 1),
            &format!(
                "{rel2}: first_spectrum_id mismatch: manifest {}, file {first}",
                first + 1
            ),
            &format!(
                "manifest.json: counts.written mismatch: manifest {written}, sum of shard rows {}",
                written + 1
            ),
            ": 3 problems",
        ],
    );

    // A changed digest, and a schema and config hash that no longer describe the files.
    let root = dir.path().join("edited2");
    copy_dir(&dir.path().join("out"), &root);
    edit_manifest(&root, |m| {
        m["shards"][1]["rows"] = rows.into();
        m["shards"][2]["first_spectrum_id"] = first.into();
        m["dataset_digest"] = format!("sha256:{}", "0".repeat(64)).into();
        m["schema"][9]["type"] = "UInt32".into();
        m["config_hash"] = format!("sha256:{}", "1".repeat(64)).into();
    });
    let shards = m["shards"].as_array().unwrap().len();
    let run = verify(&root, &[]);
    run.expect_code(1);
    assert_lines(
        &run,
        &[
            "manifest.json: dataset_digest mismatch: manifest sha256:000",
            &format!(
                "{}: schema mismatch: column 9: manifest `num_peaks UInt32 not null`, file \
                 `num_peaks UInt16 not null` (same in {} more shards)",
                shard(&root, 0),
                shards - 1
            ),
            "config_hash (footer msms_shards.config_hash) mismatch: manifest sha256:111",
        ],
    );
}

/// Rewrite shard `i` with `edit(row, mz, intensity)` applied to every row's peaks (lengths
/// kept), with the run's writer properties, then record its new size and SHA-256 and the new
/// dataset digest in the manifest: only the spectrum checks of `--full` can tell.
fn rewrite_shard(root: &Path, i: usize, edit: impl Fn(usize, &mut [f64], &mut [f32])) {
    let m = read_manifest(root);
    let rel = shard(root, i);
    let path = root.join(&rel);
    let builder = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
    let props = writer_properties(&schema, m["config_hash"].as_str().unwrap());
    let mut w = ArrowWriter::try_new(
        fs::File::create(&path).unwrap(),
        schema.clone(),
        Some((*props).clone()),
    )
    .unwrap();
    let mut row = 0;
    for b in batches {
        let list_of = |name: &str| b.column_by_name(name).unwrap().as_list::<i32>().clone();
        let (mz, it) = (list_of("mz"), list_of("intensity"));
        let mut mz_vals = mz.values().as_primitive::<Float64Type>().values().to_vec();
        let mut it_vals = it.values().as_primitive::<Float32Type>().values().to_vec();
        let offsets = mz.value_offsets().to_vec();
        assert_eq!(offsets, it.value_offsets());
        for r in 0..b.num_rows() {
            let (s, e) = (offsets[r] as usize, offsets[r + 1] as usize);
            edit(row + r, &mut mz_vals[s..e], &mut it_vals[s..e]);
        }
        row += b.num_rows();
        let list = |t: DataType, values: Arc<dyn Array>| {
            Arc::new(
                ListArray::try_new(
                    Arc::new(Field::new_list_field(t, false)),
                    OffsetBuffer::new(offsets.clone().into()),
                    values,
                    None,
                )
                .unwrap(),
            ) as Arc<dyn Array>
        };
        let mut cols = b.columns().to_vec();
        cols[schema.index_of("mz").unwrap()] =
            list(DataType::Float64, Arc::new(Float64Array::from(mz_vals)));
        cols[schema.index_of("intensity").unwrap()] =
            list(DataType::Float32, Arc::new(Float32Array::from(it_vals)));
        w.write(&RecordBatch::try_new(schema.clone(), cols).unwrap())
            .unwrap();
    }
    w.close().unwrap();
    let sha = sha256_file(&path);
    let bytes = fs::metadata(&path).unwrap().len();
    edit_manifest(root, |m| {
        m["shards"][i]["sha256"] = sha.into();
        m["shards"][i]["bytes"] = bytes.into();
        let recs: Vec<ShardRecord> = serde_json::from_value(m["shards"].clone()).unwrap();
        m["dataset_digest"] = dataset_digest(&recs).into();
    });
}

/// The `spectrum_id` of row `row` of shard `i`.
fn id_at(root: &Path, i: usize, row: usize) -> u64 {
    let f = fs::File::open(root.join(shard(root, i))).unwrap();
    let mut seen = 0;
    for b in ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
    {
        let b = b.unwrap();
        if row < seen + b.num_rows() {
            return b.column(0).as_primitive::<UInt64Type>().value(row - seen);
        }
        seen += b.num_rows();
    }
    panic!("shard {i} has no row {row}");
}

#[test]
fn full_names_shard_row_and_spectrum_id_of_a_broken_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path());
    let (nan_row, sorted_row) = (3usize, 5usize);
    rewrite_shard(&root, 1, |row, mz, it| {
        if row == nan_row {
            it[0] = f32::NAN;
        }
        if row == sorted_row && mz.len() >= 2 {
            mz.swap(0, 1);
        }
    });
    let rel = shard(&root, 1);
    let (nan_id, sorted_id) = (id_at(&root, 1, nan_row), id_at(&root, 1, sorted_row));

    // Digests, rows, schema and footer all match: only --full can see it.
    verify(&root, &[]).expect_code(0);

    let run = verify(&root, &["--full"]);
    run.expect_code(1);
    assert_lines(
        &run,
        &[
            &format!(
                "{rel}: row {nan_row} (spectrum_id {nan_id}): intensity[0] is NaN (must be finite)"
            ),
            &format!("{rel}: row {sorted_row} (spectrum_id {sorted_id}): mz[1] = "),
            "(m/z must be strictly ascending)",
            ": 2 problems",
        ],
    );
}

#[test]
fn full_caps_the_listed_spectrum_problems() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path());
    // Halve every intensity of shard 0: no spectrum is max-normalised any more.
    rewrite_shard(&root, 0, |_, _, it| it.iter_mut().for_each(|v| *v *= 0.5));
    let rows = read_manifest(&root)["shards"][0]["rows"].as_u64().unwrap();
    assert!(rows > 20, "shard 0 has only {rows} rows");
    let rel = shard(&root, 0);
    let run = verify(&root, &["--full"]);
    run.expect_code(1);
    let listed: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with(&format!("{rel}: row ")))
        .collect();
    assert_eq!(listed.len(), 20, "{}", run.stdout);
    assert!(
        listed[0].ends_with("largest intensity is 0.5, not exactly 1 (normalize max)"),
        "{}",
        listed[0]
    );
    assert_lines(
        &run,
        &[
            &format!(
                "… and {} more problems with single spectra (--max-listed N lists more)",
                rows - 20
            ),
            &format!(": {rows} problems"),
        ],
    );
    let run = verify(&root, &["--full", "--max-listed", "2", "-q"]);
    run.expect_code(1);
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);
}

#[test]
fn root_without_manifest_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let run = verify(&empty, &[]);
    assert_refusal_message(
        &run,
        &empty.join("manifest.json"),
        &["not the output root of a finished"],
    );
    assert_eq!(run.stdout, "");

    let absent = dir.path().join("absent");
    assert_refusal_message(&verify(&absent, &[]), &absent, &["no such directory"]);

    fs::write(empty.join("manifest.json"), "{\"format\": \"other\"}").unwrap();
    assert_refusal_message(
        &verify(&empty, &[]),
        &empty.join("manifest.json"),
        &["format is \"other\", not \"msms-shards\""],
    );
    fs::write(
        empty.join("manifest.json"),
        "{\"format\": \"msms-shards\", \"format_version\": 99}",
    )
    .unwrap();
    assert_refusal_message(
        &verify(&empty, &[]),
        &empty.join("manifest.json"),
        &["format_version 99"],
    );
    fs::write(empty.join("manifest.json"), "not json").unwrap();
    assert_refusal_message(
        &msms([
            "validate-shards".as_ref(),
            "--output".as_ref(),
            empty.as_os_str(),
        ]),
        &empty.join("manifest.json"),
        &["not an msms-shards manifest"],
    );
}

#[test]
fn help_documents_checks_output_and_exit_codes() {
    let run = msms(["--help"]);
    run.expect_code(0);
    assert!(run.stdout.contains("verify") && run.stdout.contains("validate-shards"));
    for cmd in ["verify", "validate-shards"] {
        let run = msms([cmd, "--help"]);
        run.expect_code(0);
        for want in ["--full", "--quiet", "Exit codes: 0", "stdout", "SHA-256"] {
            assert!(run.stdout.contains(want), "{cmd} --help lacks {want}");
        }
    }
}
