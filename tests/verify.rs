//! `msms verify` and its alias `msms validate-shards`, through the binary: a fresh output root
//! passes; flipped bytes, truncated, missing and unlisted shards, leftover `.tmp` files and
//! edited manifests are each named with exit 1; `--full` catches a shard that is valid
//! Parquet with correct digests but breaks a spectrum invariant; a root without a manifest
//! exits 2.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float32Array, Float64Array, ListArray, PrimitiveArray, RecordBatch,
    StringArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Float32Type, Float64Type, UInt16Type, UInt64Type,
};
use common::*;
use msms_shards::format::manifest::{dataset_digest, ShardRecord};
use msms_shards::write::writer_properties;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

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
        root.join("_manifest.json"),
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
            &format!("{rel}: missing (listed in the manifest)"),
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
            "train/shard-00999.parquet: shard file not listed in the manifest",
            "test/shard-00000.parquet: shard file not listed in the manifest",
            ": 2 problems",
        ],
    );
}

#[test]
fn leftover_tmp_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path());
    fs::write(root.join("train/shard-00007.parquet.tmp"), b"half").unwrap();
    fs::write(root.join("_manifest.json.tmp"), b"{").unwrap();
    let run = verify(&root, &[]);
    run.expect_code(1);
    assert_lines(
        &run,
        &[
            "train/shard-00007.parquet.tmp: leftover temporary file",
            "_manifest.json.tmp: leftover temporary file",
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
                "_manifest.json: counts.written mismatch: manifest {written}, sum of shard rows {}",
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
            "_manifest.json: dataset_digest mismatch: manifest sha256:000",
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

/// Rewrite shard `i`: every batch read back goes through `edit(first row of the batch, batch)`
/// and is written with the run's writer properties passed through `props`; then record the
/// file's new size and SHA-256 and the new dataset digest in the manifest, so that only the
/// checks that read the rows (or the footer) can tell.
fn rewrite_shard_with(
    root: &Path,
    i: usize,
    props: impl FnOnce(WriterProperties) -> WriterProperties,
    mut edit: impl FnMut(usize, RecordBatch) -> RecordBatch,
) {
    let m = read_manifest(root);
    let rel = shard(root, i);
    let path = root.join(&rel);
    let builder = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
    let compression = m["profile"]["compression"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let run_props = writer_properties(&schema, m["config_hash"].as_str().unwrap(), compression);
    let mut w = ArrowWriter::try_new(
        fs::File::create(&path).unwrap(),
        schema.clone(),
        Some(props((*run_props).clone())),
    )
    .unwrap();
    let mut row = 0;
    for b in batches {
        let n = b.num_rows();
        w.write(&edit(row, b)).unwrap();
        row += n;
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

/// Rewrite shard `i` with `edit(row, mz, intensity)` applied to every row's peaks (lengths
/// kept), with the run's writer properties, then record its new size and SHA-256 and the new
/// dataset digest in the manifest: only the spectrum checks of `--full` can tell.
fn rewrite_shard(root: &Path, i: usize, edit: impl Fn(usize, &mut [f64], &mut [f32])) {
    rewrite_shard_with(
        root,
        i,
        |p| p,
        |row, b| {
            let schema = b.schema();
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
            RecordBatch::try_new(schema, cols).unwrap()
        },
    );
}

/// The `spectrum_id` of row `row` of shard `i`.
fn id_at(root: &Path, i: usize, row: usize) -> u64 {
    row_of(root, i, row)
        .column(0)
        .as_primitive::<UInt64Type>()
        .value(0)
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
        &empty.join("_manifest.json"),
        &["not the output root of a finished"],
    );
    assert_eq!(run.stdout, "");

    let absent = dir.path().join("absent");
    assert_refusal_message(&verify(&absent, &[]), &absent, &["no such directory"]);

    fs::write(empty.join("_manifest.json"), "{\"format\": \"other\"}").unwrap();
    assert_refusal_message(
        &verify(&empty, &[]),
        &empty.join("_manifest.json"),
        &["format is \"other\", not \"msms-shards\""],
    );
    fs::write(
        empty.join("_manifest.json"),
        "{\"format\": \"msms-shards\", \"format_version\": 99}",
    )
    .unwrap();
    assert_refusal_message(
        &verify(&empty, &[]),
        &empty.join("_manifest.json"),
        &["format_version 99"],
    );
    fs::write(empty.join("_manifest.json"), "not json").unwrap();
    assert_refusal_message(
        &msms([
            "validate-shards".as_ref(),
            "--output".as_ref(),
            empty.as_os_str(),
        ]),
        &empty.join("_manifest.json"),
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

// ---------------------------------------------------------------------------------------
// One broken promise at a time: a shard rewritten so that exactly one spectrum (or the
// footer) breaks one rule, with the manifest's digests brought up to date, so that only the
// targeted check can fire.

/// `b` with column `name` replaced by `array`.
fn with_column(b: RecordBatch, name: &str, array: ArrayRef) -> RecordBatch {
    let schema = b.schema();
    let mut cols = b.columns().to_vec();
    cols[schema.index_of(name).unwrap()] = array;
    RecordBatch::try_new(schema, cols).unwrap()
}

/// `b` with the primitive column `name` holding `value` at batch row `row`.
fn set_primitive<T: ArrowPrimitiveType>(
    b: RecordBatch,
    name: &str,
    row: usize,
    value: T::Native,
) -> RecordBatch {
    let a = b.column_by_name(name).unwrap().as_primitive::<T>();
    let v: PrimitiveArray<T> = a
        .iter()
        .enumerate()
        .map(|(j, x)| if j == row { Some(value) } else { x })
        .collect();
    with_column(b, name, Arc::new(v))
}

/// `b` with the string column `name` holding `value` at batch row `row`.
fn set_string(b: RecordBatch, name: &str, row: usize, value: Option<&str>) -> RecordBatch {
    let a = b.column_by_name(name).unwrap().as_string::<i32>();
    let v: StringArray = a
        .iter()
        .enumerate()
        .map(|(j, x)| if j == row { value } else { x })
        .collect();
    with_column(b, name, Arc::new(v))
}

/// An edit for [`rewrite_shard_with`] that applies `f(batch, row in batch)` to the batch
/// holding shard row `target` and leaves every other batch alone.
fn at_row(
    target: usize,
    f: impl Fn(RecordBatch, usize) -> RecordBatch,
) -> impl FnMut(usize, RecordBatch) -> RecordBatch {
    move |first, b| {
        if (first..first + b.num_rows()).contains(&target) {
            f(b, target - first)
        } else {
            b
        }
    }
}

/// Row `row` of shard `i`, as a one-row batch.
fn row_of(root: &Path, i: usize, row: usize) -> RecordBatch {
    let f = fs::File::open(root.join(shard(root, i))).unwrap();
    let mut seen = 0;
    for b in ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
    {
        let b = b.unwrap();
        if row < seen + b.num_rows() {
            return b.slice(row - seen, 1);
        }
        seen += b.num_rows();
    }
    panic!("shard {i} has no row {row}");
}

/// Column `name` of a one-row batch, as a primitive value.
fn value<T: ArrowPrimitiveType>(b: &RecordBatch, name: &str) -> T::Native {
    b.column_by_name(name).unwrap().as_primitive::<T>().value(0)
}

/// `verify --full` (and, where `also_plain`, plain `verify`) exit 1 listing exactly `want`
/// (one line each, contained) and the summary counting them.
#[track_caller]
fn assert_only_problems(root: &Path, want: &[String], also_plain: bool) {
    let mut runs = vec![verify(root, &["--full"])];
    if also_plain {
        runs.push(verify(root, &[]));
    }
    for run in runs {
        run.expect_code(1);
        let want_refs: Vec<&str> = want.iter().map(String::as_str).collect();
        assert_lines(&run, &want_refs);
        let summary = match want.len() {
            1 => ": 1 problem".to_string(),
            n => format!(": {n} problems"),
        };
        assert_lines(&run, &[&summary]);
        assert_eq!(
            run.stdout.lines().count(),
            want.len() + 1,
            "only the targeted problems and the summary:\n{}",
            run.stdout
        );
    }
}

/// An output root whose manifest records `--quality-format B` and `--max-precursor-mz 900`,
/// with at least two shards.
fn rules_root(dir: &Path) -> PathBuf {
    let input = synth_input(&dir.join("in.hdf5"), "gems", 2400, 0.05, 7);
    let root = dir.join("out");
    build(
        &[&input.path],
        &root,
        &[
            "--batch-size",
            "50",
            "--shard-size",
            "100kB",
            "--quality-format",
            "B",
            "--max-precursor-mz",
            "900",
            "-q",
        ],
    )
    .expect_code(0);
    let m = read_manifest(&root);
    assert_eq!(m["settings"]["quality_format"], "B");
    assert_eq!(m["settings"]["max_precursor_mz"], 900.0);
    let shards = m["shards"].as_array().unwrap().len();
    assert!(shards >= 2, "want two shards, got {shards}");
    assert!(m["shards"][1]["rows"].as_u64().unwrap() > 10);
    verify(&root, &["--full"]).expect_code(0);
    root
}

#[test]
fn full_names_a_num_peaks_that_differs_from_the_peak_lists() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path());
    let row = 4;
    let before = row_of(&root, 1, row);
    let peaks = before
        .column_by_name("mz")
        .unwrap()
        .as_list::<i32>()
        .value(0)
        .len();
    assert_eq!(
        usize::from(value::<UInt16Type>(&before, "num_peaks")),
        peaks,
        "a fresh shard's num_peaks is the length of mz"
    );
    let id = value::<UInt64Type>(&before, "spectrum_id");
    let wrong = peaks as u16 + 1;
    rewrite_shard_with(
        &root,
        1,
        |p| p,
        at_row(row, |b, r| {
            set_primitive::<UInt16Type>(b, "num_peaks", r, wrong)
        }),
    );
    // Digests, rows, schema, footer and ids all match: only --full reads num_peaks.
    verify(&root, &[]).expect_code(0);
    let rel = shard(&root, 1);
    assert_only_problems(
        &root,
        &[format!(
            "{rel}: row {row} (spectrum_id {id}): num_peaks is {wrong} but mz has {peaks} values \
             and intensity {peaks}"
        )],
        false,
    );
}

#[test]
fn full_names_a_precursor_above_the_recorded_maximum_or_not_positive() {
    let dir = tempfile::tempdir().unwrap();
    let root = rules_root(dir.path());
    let (above, negative) = (2, 6);
    let id = |row| value::<UInt64Type>(&row_of(&root, 1, row), "spectrum_id");
    let (above_id, negative_id) = (id(above), id(negative));
    rewrite_shard_with(
        &root,
        1,
        |p| p,
        |first, b| {
            let mut b = b;
            for (row, mz) in [(above, 950.5), (negative, -1.0)] {
                if (first..first + b.num_rows()).contains(&row) {
                    b = set_primitive::<Float64Type>(b, "precursor_mz", row - first, mz);
                }
            }
            b
        },
    );
    verify(&root, &[]).expect_code(0);
    let rel = shard(&root, 1);
    assert_only_problems(
        &root,
        &[
            format!(
                "{rel}: row {above} (spectrum_id {above_id}): precursor_mz 950.5 is above \
                 max_precursor_mz 900"
            ),
            format!(
                "{rel}: row {negative} (spectrum_id {negative_id}): precursor_mz -1 is not a \
                 finite positive m/z"
            ),
        ],
        false,
    );
}

#[test]
fn full_names_a_spectrum_below_the_recorded_quality_format() {
    let dir = tempfile::tempdir().unwrap();
    let root = rules_root(dir.path());
    let (class_c, null) = (3, 7);
    for row in [class_c, null] {
        let b = row_of(&root, 1, row);
        let g = b.column_by_name("gems_format").unwrap().as_string::<i32>();
        assert!(
            !g.is_null(0) && ["A", "B"].contains(&g.value(0)),
            "a kept spectrum meets B"
        );
    }
    let id = |row| value::<UInt64Type>(&row_of(&root, 1, row), "spectrum_id");
    let (c_id, null_id) = (id(class_c), id(null));
    rewrite_shard_with(
        &root,
        1,
        |p| p,
        |first, b| {
            let mut b = b;
            for (row, g) in [(class_c, Some("C")), (null, None)] {
                if (first..first + b.num_rows()).contains(&row) {
                    b = set_string(b, "gems_format", row - first, g);
                }
            }
            b
        },
    );
    verify(&root, &[]).expect_code(0);
    let rel = shard(&root, 1);
    assert_only_problems(
        &root,
        &[
            format!(
                "{rel}: row {class_c} (spectrum_id {c_id}): gems_format C does not meet \
                 quality_format B"
            ),
            format!(
                "{rel}: row {null} (spectrum_id {null_id}): gems_format null does not meet \
                 quality_format B"
            ),
        ],
        false,
    );
}

#[test]
fn spectrum_ids_out_of_order_are_named_within_and_across_shards() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path());
    let across = dir.path().join("across");
    copy_dir(&root, &across);

    // Within shard 1: rows 3 and 4 swap their ids; first and last stay as recorded.
    let (a, b) = (id_at(&root, 1, 3), id_at(&root, 1, 4));
    assert!(a < b);
    rewrite_shard_with(
        &root,
        1,
        |p| p,
        |first, batch| {
            let mut batch = batch;
            for (row, id) in [(3, b), (4, a)] {
                if (first..first + batch.num_rows()).contains(&row) {
                    batch = set_primitive::<UInt64Type>(batch, "spectrum_id", row - first, id);
                }
            }
            batch
        },
    );
    let rel = shard(&root, 1);
    assert_only_problems(
        &root,
        &[format!(
            "{rel}: row 4 (spectrum_id {a}): spectrum_id does not increase (previous row has {b})"
        )],
        true,
    );

    // Across shards: shard 2 starts at shard 1's last id (the manifest says so too).
    let last = read_manifest(&across)["shards"][1]["last_spectrum_id"]
        .as_u64()
        .unwrap();
    assert_eq!(
        id_at(
            &across,
            1,
            read_manifest(&across)["shards"][1]["rows"]
                .as_u64()
                .unwrap() as usize
                - 1
        ),
        last
    );
    rewrite_shard_with(
        &across,
        2,
        |p| p,
        at_row(0, |b, r| {
            set_primitive::<UInt64Type>(b, "spectrum_id", r, last)
        }),
    );
    edit_manifest(&across, |m| {
        m["shards"][2]["first_spectrum_id"] = last.into()
    });
    let rel2 = shard(&across, 2);
    assert_only_problems(
        &across,
        &[format!(
            "{rel2}: row 0 (spectrum_id {last}): spectrum_id does not increase (previous row has \
             {last})"
        )],
        true,
    );
}

#[test]
fn a_footer_format_version_other_than_the_manifests_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = fresh_root(dir.path());
    let version = read_manifest(&root)["format_version"].as_u64().unwrap();
    let other = (version + 1).to_string();
    let mut replaced = 0;
    rewrite_shard_with(
        &root,
        1,
        |p| {
            let kv: Vec<KeyValue> = p
                .key_value_metadata()
                .unwrap()
                .iter()
                .map(|k| {
                    if k.key == "msms_shards.format_version" {
                        assert_eq!(k.value.as_deref(), Some(version.to_string().as_str()));
                        replaced += 1;
                        KeyValue::new(k.key.clone(), other.clone())
                    } else {
                        k.clone()
                    }
                })
                .collect();
            p.into_builder().set_key_value_metadata(Some(kv)).build()
        },
        |_, b| b,
    );
    assert_eq!(replaced, 1);
    let rel = shard(&root, 1);
    assert_eq!(
        read_shard(&root.join(&rel), 1).key_value["msms_shards.format_version"],
        other
    );
    assert_only_problems(
        &root,
        &[format!(
            "{rel}: format_version (footer msms_shards.format_version) mismatch: manifest \
             {version}, file {other}"
        )],
        true,
    );
}
