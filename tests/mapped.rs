//! The two row decoders of `msms build-shards`: `--decode native` (chunks decoded from a
//! memory map, libhdf5 per dataset where the map cannot be used) and `--decode libhdf5`
//! (everything through `H5Dread`) must write byte-identical shards and the same manifest
//! (but for its `run` object). Damaged inputs (a chunk past the end of the file, corrupt
//! deflate data, a wrong Fletcher-32 checksum) are refused with exit code 2 and a message
//! naming file, dataset and chunk, leaving nothing under the output root.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use msms_shards::read::h5::{self, ChunkRecord, Storage, WriteType};

const SEED: u64 = 20_241_129;
/// Several (1024-row) chunks, the last one partial.
const SPECTRA: u64 = 2_500;
const FAULTS: f64 = 0.01;

/// `build-shards --decode DECODE EXTRA...` of `inputs` into `root`.
fn build_decode(inputs: &[&Path], root: &Path, decode: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--decode", decode];
    args.extend_from_slice(extra);
    build(inputs, root, &args)
}

/// The manifest under `root` without its `run` object (the only part allowed to differ
/// between two runs with the same inputs and output settings).
fn manifest_without_run(root: &Path) -> serde_json::Value {
    let mut m = read_manifest(root);
    let obj = m.as_object_mut().expect("manifest is an object");
    assert!(obj.remove("run").is_some(), "manifest has no `run`");
    m
}

/// Assert the output roots `a` and `b` hold the same files with the same bytes, and
/// manifests equal but for `run`. Returns `a`'s manifest.
#[track_caller]
fn assert_same_output(a: &Path, b: &Path, what: &str) -> serde_json::Value {
    let files = files_under(a);
    assert_eq!(files, files_under(b), "{what}: files under the two roots");
    let shards: Vec<&String> = files.iter().filter(|f| f.ends_with(".parquet")).collect();
    assert!(!shards.is_empty(), "{what}: no shard written");
    assert!(
        files.iter().any(|f| f == "_manifest.json"),
        "{what}: no manifest"
    );
    for f in &shards {
        let x = std::fs::read(a.join(f)).unwrap();
        let y = std::fs::read(b.join(f)).unwrap();
        assert!(
            x == y,
            "{what}: {f} differs ({} vs {} bytes; sha256 {} vs {})",
            x.len(),
            y.len(),
            sha256_file(&a.join(f)),
            sha256_file(&b.join(f))
        );
    }
    let (ma, mb) = (read_manifest(a), read_manifest(b));
    for key in ["dataset_digest", "shards", "counts"] {
        assert_eq!(ma[key], mb[key], "{what}: manifest `{key}`");
    }
    assert_eq!(
        manifest_without_run(a),
        manifest_without_run(b),
        "{what}: manifests outside `run`"
    );
    ma
}

/// The `notice:` lines of a run's output.
fn notices(run: &Run) -> Vec<&str> {
    run.stdout
        .lines()
        .chain(run.stderr.lines())
        .filter(|l| l.starts_with("notice:"))
        .collect()
}

/// Assert `run` was refused (exit 2, no panic) with a message naming `file` and every one of
/// `mentions`, and that nothing is left under `root`: no shard, no manifest, no `.tmp`.
#[track_caller]
fn assert_refused(run: &Run, root: &Path, file: &Path, mentions: &[&str]) {
    assert_refusal_message(run, file, mentions);
    let left = files_under(root);
    assert!(left.is_empty(), "left behind after exit 2: {left:?}");
    // The run created the root (every caller gives a new one): it goes too.
    assert!(
        !root.exists(),
        "{} left behind after exit 2",
        root.display()
    );
}

/// The chunk index of `dataset` in `path`, sorted by logical offset (the numbering the
/// decoder's messages use).
fn chunks_of(path: &Path, dataset: &str) -> Vec<ChunkRecord> {
    let _g = fork_guard();
    let f = h5::File::open(path).unwrap();
    let mut c = f.dataset(dataset).unwrap().chunk_index(1 << 20).unwrap();
    c.sort_unstable_by_key(|c| c.offset);
    c
}

/// A copy of `src` at `dst` with `edit` applied to its bytes.
fn edited_copy(src: &Path, dst: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(src).unwrap();
    edit(&mut bytes);
    std::fs::write(dst, bytes).unwrap();
}

/// Invert `n` bytes at `at`.
fn flip(bytes: &mut [u8], at: usize, n: usize) {
    for b in &mut bytes[at..at + n] {
        *b = !*b;
    }
}

/// The decoder's name for chunk `i`: `chunk 2 at [2048, 0, 0] (byte 123, 456 bytes stored)`.
fn chunk_label(i: usize, c: &ChunkRecord) -> String {
    format!(
        "chunk {i} at {:?} (byte {}, {} bytes stored)",
        &c.offset[..],
        c.addr,
        c.size
    )
}

// ---------------------------------------------------------------------------------------
// 1. Every synth layout: the two decoders agree byte for byte, and the output is right.

/// Convert `input` with both decoders (each with `extra`), assert identical output, check
/// the native output value by value against the oracle, and return the native root.
fn check_decoders_agree(
    input: &Input,
    dir: &Path,
    tag: &str,
    extra: &[&str],
    max_spectra: Option<u64>,
) -> PathBuf {
    let native = dir.join(format!("{tag}-native"));
    let lib = dir.join(format!("{tag}-libhdf5"));
    let rn = build_decode(&[&input.path], &native, "native", extra);
    rn.expect_code(0);
    let rl = build_decode(&[&input.path], &lib, "libhdf5", extra);
    rl.expect_code(0);
    // Every dataset of the synth layouts can be decoded from the map: no fallback notice.
    assert!(
        notices(&rn).is_empty(),
        "{tag}: unexpected fallback:\n{}",
        rn.stderr
    );
    assert!(
        notices(&rl).is_empty(),
        "{tag}: notice under --decode libhdf5"
    );

    assert_same_output(&native, &lib, tag);

    let (m, shards) = read_all(&native);
    let want = expectation(&[input], &Rules::default(), max_spectra);
    assert_rows(&all_rows(&shards), &want.rows);
    assert_counts(&m, &want);
    assert_eq!(
        m["counts"]["read"],
        max_spectra.unwrap_or(input.spectra).min(input.spectra),
        "{tag}: counts.read"
    );
    let pass = if input.layout.embedding {
        embedding_columns()
    } else {
        vec![]
    };
    assert_manifest_and_files(&native, &m, &shards, input.layout.strings, &pass);
    native
}

#[test]
fn native_and_libhdf5_outputs_are_byte_identical_on_every_layout() {
    let dir = tempfile::tempdir().unwrap();
    let layouts = [
        "gems",
        "auto-chunk",
        "contiguous",
        "shuffle",
        "float32",
        "high-form",
        "strings",
        "embedding",
        "shuffle,float32,strings",
        "high-form,float32,strings",
        "auto-chunk,high-form,embedding",
    ];
    for (i, layout) in layouts.iter().enumerate() {
        let spectra = if layout.contains("embedding") {
            1_300 // 4 KiB per row of embedding: still two chunks, the second partial
        } else {
            SPECTRA
        };
        let input = synth_input(
            &dir.path().join(format!("in{i}.hdf5")),
            layout,
            spectra,
            FAULTS,
            SEED + i as u64,
        );
        check_decoders_agree(&input, dir.path(), &format!("l{i}-{layout}"), &[], None);
    }

    // Batches smaller than a chunk, and a limit that ends inside a chunk.
    let gems = synth_input(&dir.path().join("gems.hdf5"), "gems", SPECTRA, FAULTS, SEED);
    let batch300 = check_decoders_agree(
        &gems,
        dir.path(),
        "batch300",
        &["--batch-size", "300", "--row-group-size", "700"],
        None,
    );
    let (_, shards) = read_all(&batch300);
    assert!(
        shards
            .iter()
            .flat_map(|s| &s.row_group_rows)
            .all(|&n| n <= 700),
        "row groups of at most --row-group-size 700, across units of 300: {:?}",
        shards.iter().map(|s| &s.row_group_rows).collect::<Vec<_>>()
    );
    check_decoders_agree(
        &gems,
        dir.path(),
        "max1500",
        &["--max-spectra", "1500"],
        Some(1500),
    );

    // Several shards: the decoders agree across shard boundaries too.
    let small = check_decoders_agree(
        &gems,
        dir.path(),
        "shards",
        &["--shard-size", "400kB"],
        None,
    );
    assert!(
        read_manifest(&small)["shards"].as_array().unwrap().len() >= 3,
        "--shard-size 400kB should give several shards"
    );

    // The worker count changes nothing but `run.num_workers`.
    let mut roots = Vec::new();
    for workers in ["1", "3"] {
        let root = dir.path().join(format!("workers{workers}"));
        build_decode(
            &[&gems.path],
            &root,
            "native",
            &[
                "--num-workers",
                workers,
                "--batch-size",
                "300",
                "--row-group-size",
                "700",
            ],
        )
        .expect_code(0);
        assert_eq!(
            read_manifest(&root)["run"]["num_workers"],
            workers.parse::<u64>().unwrap()
        );
        roots.push(root);
    }
    assert_same_output(&roots[0], &roots[1], "--num-workers 1 vs 3");
    assert_same_output(&roots[0], &batch300, "--num-workers 1 vs default");
}

// ---------------------------------------------------------------------------------------
// 2. A file whose last chunks lie past its end.

/// Byte offset of the end-of-file address in a version 0 superblock.
const SB0_EOF_ADDR: usize = 40;

#[test]
fn truncated_file_is_refused_naming_dataset_and_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let full = synth_input(&dir.path().join("full.hdf5"), "gems", SPECTRA, 0.0, SEED);
    let len = std::fs::metadata(&full.path).unwrap().len();
    let keep = len * 7 / 10;

    // Plainly truncated: libhdf5 already refuses to open it (the superblock's end-of-file
    // address is past the end), whichever decoder is asked for.
    let cut = dir.path().join("cut.hdf5");
    std::fs::copy(&full.path, &cut).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cut)
        .unwrap()
        .set_len(keep)
        .unwrap();
    for decode in ["native", "libhdf5"] {
        let root = dir.path().join(format!("cut-{decode}"));
        let run = build_decode(&[&cut], &root, decode, &[]);
        assert_refused(&run, &root, &cut, &["truncated"]);
    }

    // Truncated with the superblock's end-of-file address moved to the new end (what a
    // file cut short but otherwise consistent looks like): the metadata at the start reads,
    // the chunk index points past the end. Superblock version 0 has no checksum.
    let bytes = std::fs::read(&full.path).unwrap();
    assert_eq!(&bytes[..8], b"\x89HDF\r\n\x1a\n", "HDF5 signature");
    assert_eq!(bytes[8], 0, "superblock version 0 expected");
    assert_eq!(
        u64::from_le_bytes(bytes[SB0_EOF_ADDR..SB0_EOF_ADDR + 8].try_into().unwrap()),
        len,
        "end-of-file address of the superblock"
    );
    let short = dir.path().join("short.hdf5");
    edited_copy(&full.path, &short, |b| {
        b.truncate(keep as usize);
        b[SB0_EOF_ADDR..SB0_EOF_ADDR + 8].copy_from_slice(&keep.to_le_bytes());
    });

    // The first spectrum chunk (in logical order) not wholly inside the file; the spectrum
    // is checked first, and at 70 % of the file its last chunks are gone.
    let chunks = chunks_of(&full.path, "spectrum");
    assert_eq!(chunks.len(), 3, "2500 rows in 1024-row chunks");
    let (i, c) = chunks
        .iter()
        .enumerate()
        .find(|(_, c)| c.addr + c.size > keep)
        .expect("a spectrum chunk past 70 % of the file");
    let root = dir.path().join("short-native");
    let run = build_decode(&[&short], &root, "native", &[]);
    let expected = format!(
        "chunk {i} at {:?}: bytes {}..{} lie beyond the end of the file ({keep} bytes)",
        &c.offset[..],
        c.addr,
        c.addr + c.size
    );
    assert_refused(&run, &root, &short, &["dataset `spectrum`", &expected]);
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout);

    // libhdf5 (chosen through the environment) fails too, on its own terms.
    let root = dir.path().join("short-libhdf5");
    let mut cmd = msms_command();
    cmd.env("MSMS_DECODE", "libhdf5")
        .arg("build-shards")
        .arg("--input-hdf5")
        .arg(&short)
        .arg("--output-root")
        .arg(&root);
    let run = run_command(cmd);
    assert_refused(&run, &root, &short, &[]);
    assert!(
        !run.stderr.contains("beyond the end of the file"),
        "MSMS_DECODE=libhdf5 still used the map:\n{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------------------
// 3. Corrupt chunk data.

#[test]
fn corrupt_compressed_chunk_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let gems = synth_input(&dir.path().join("gems.hdf5"), "gems", SPECTRA, FAULTS, SEED);
    let shuffle = synth_input(
        &dir.path().join("shuffle.hdf5"),
        "shuffle",
        SPECTRA,
        FAULTS,
        SEED,
    );
    // Small shards (the clean files give several), one worker: units finish in order, so
    // the damaged last chunk is met after earlier units were handed to the shard writer.
    let settings = ["--shard-size", "400kB", "--num-workers", "1"];

    // (input, dataset, chunk): the partial last chunk of the spectrum (earlier units are in
    // finished, renamed shards by then, which must go), a middle chunk of a rank-1 column
    // (cached across units), and a shuffle + deflate + fletcher32 chunk, where deflate,
    // the outermost filter of the synth pipeline, sees the damage first.
    let cases = [
        (&gems, "spectrum", 2usize),
        (&gems, "precursor_mz", 1),
        (&shuffle, "spectrum", 1),
    ];
    for (k, (input, dataset, i)) in cases.into_iter().enumerate() {
        let chunks = chunks_of(&input.path, dataset);
        let c = chunks[i];
        let bad = dir.path().join(format!("bad{k}.hdf5"));
        edited_copy(&input.path, &bad, |b| {
            flip(b, (c.addr + c.size / 2) as usize, 8)
        });

        let root = dir.path().join(format!("bad{k}-native"));
        let run = build_decode(&[&bad], &root, "native", &settings);
        let ds = format!("dataset `{dataset}`");
        assert_refused(&run, &root, &bad, &[&ds, &chunk_label(i, &c), "deflate"]);

        let root = dir.path().join(format!("bad{k}-libhdf5"));
        let run = build_decode(&[&bad], &root, "libhdf5", &settings);
        assert_refused(&run, &root, &bad, &[dataset]);
    }

    // The untouched files convert, into several shards with these settings.
    for input in [&gems, &shuffle] {
        let root = dir.path().join(format!(
            "clean-{}",
            input.path.file_stem().unwrap().to_string_lossy()
        ));
        build_decode(&[&input.path], &root, "native", &settings).expect_code(0);
        assert!(read_manifest(&root)["shards"].as_array().unwrap().len() >= 3);
    }
}

// ---------------------------------------------------------------------------------------
// A hand-made file: a spectrum with fletcher32 + shuffle and no deflate (mapped), and
// columns the map cannot serve (converted types, unallocated chunks or storage).

const HN: u64 = 700;
/// 11 chunks, the last one of 60 rows.
const HCHUNK: u64 = 64;
/// Rows of `instrument accuracy est.` written: 2 of its 11 chunks allocated.
const ACC_ROWS: u64 = 128;

fn hm_peaks(r: u64) -> Vec<(f64, f64)> {
    if r % 100 == 42 {
        return Vec::new(); // empty: rejected
    }
    (0..1 + r % 5)
        .map(|k| {
            (
                100.0 + 10.0 * k as f64 + r as f64 / 1024.0,
                2.0 * (k + 1) as f64 + r as f64,
            )
        })
        .collect()
}
fn hm_precursor(r: u64) -> f64 {
    500.0 + r as f64 * 0.25
}
fn hm_rt(r: u64) -> f64 {
    r as f64 * 1.5
}
fn hm_charge(r: u64) -> i32 {
    (r % 3) as i32 + 1
}
fn hm_accuracy(r: u64) -> f32 {
    if r < ACC_ROWS {
        r as f32 / 8.0
    } else {
        0.0 // fill value
    }
}
fn hm_lsh(r: u64) -> i64 {
    r as i64 * 1_000_003 - 5
}

/// Write the hand-made file.
fn write_handmade(path: &Path) {
    let _g = fork_guard();
    let f = h5::File::create(path).unwrap();
    let n = HN;
    let chunked =
        |rest: &[u64], deflate: Option<u8>, shuffle: bool, fletcher32: bool| Storage::Chunked {
            chunk: std::iter::once(HCHUNK)
                .chain(rest.iter().copied())
                .collect(),
            deflate,
            shuffle,
            fletcher32,
        };
    let spec = f
        .create_dataset(
            "spectrum",
            &WriteType::of::<f64>(),
            &[n, 2, 128],
            &chunked(&[2, 128], None, true, true),
        )
        .unwrap();
    let mut peaks = vec![0.0f64; (n * 256) as usize];
    for r in 0..n {
        for (k, (mz, it)) in hm_peaks(r).into_iter().enumerate() {
            peaks[r as usize * 256 + k] = mz;
            peaks[r as usize * 256 + 128 + k] = it;
        }
    }
    spec.write_rows(0, n, &peaks).unwrap();

    // Big-endian float64: libhdf5 converts it.
    let f64be = {
        let _l = h5::lock();
        WriteType::Numeric(*hdf5_sys::h5t::H5T_IEEE_F64BE)
    };
    let p = f
        .create_dataset(
            "precursor_mz",
            &f64be,
            &[n],
            &chunked(&[], Some(1), false, false),
        )
        .unwrap();
    p.write_rows(0, n, &(0..n).map(hm_precursor).collect::<Vec<_>>())
        .unwrap();
    // RT as float64 (read as float32), charge as int32 (read as int8): converted.
    let rt = f
        .create_dataset(
            "RT",
            &WriteType::of::<f64>(),
            &[n],
            &chunked(&[], Some(1), false, false),
        )
        .unwrap();
    rt.write_rows(0, n, &(0..n).map(hm_rt).collect::<Vec<_>>())
        .unwrap();
    let charge = f
        .create_dataset(
            "charge",
            &WriteType::of::<i32>(),
            &[n],
            &Storage::Contiguous,
        )
        .unwrap();
    charge
        .write_rows(0, n, &(0..n).map(hm_charge).collect::<Vec<_>>())
        .unwrap();
    // Only the first chunks written: the rest read as the fill value.
    let acc = f
        .create_dataset(
            "instrument accuracy est.",
            &WriteType::of::<f32>(),
            &[n],
            &chunked(&[], Some(1), false, false),
        )
        .unwrap();
    acc.write_rows(
        0,
        ACC_ROWS,
        &(0..ACC_ROWS).map(hm_accuracy).collect::<Vec<_>>(),
    )
    .unwrap();
    // Native int64, contiguous: mapped.
    let lsh = f
        .create_dataset("lsh", &WriteType::of::<i64>(), &[n], &Storage::Contiguous)
        .unwrap();
    lsh.write_rows(0, n, &(0..n).map(hm_lsh).collect::<Vec<_>>())
        .unwrap();
    let name = f
        .create_dataset("name", &WriteType::VarString, &[n], &Storage::Contiguous)
        .unwrap();
    name.write_strings(
        0,
        &(0..n).map(|r| format!("n{r}")).collect::<Vec<_>>(),
        None,
    )
    .unwrap();
    // A pass-through column never written: no storage allocated.
    f.create_dataset(
        "scan_number",
        &WriteType::of::<i32>(),
        &[n],
        &Storage::Contiguous,
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// 4. Fallback to libhdf5 per dataset.

#[test]
fn fallback_filters_and_notice() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("handmade.hdf5");
    write_handmade(&file);
    let native = dir.path().join("native");
    let lib = dir.path().join("libhdf5");
    let extra = ["--normalize", "none", "--batch-size", "100"];
    let rn = build_decode(&[&file], &native, "native", &extra);
    rn.expect_code(0);
    let rl = build_decode(&[&file], &lib, "libhdf5", &extra);
    rl.expect_code(0);

    // One notice per dataset the map cannot serve, with the reason; none for the spectrum
    // (fletcher32 + shuffle) and lsh (contiguous int64), which are mapped.
    let f = file.display();
    let mut got = notices(&rn);
    got.sort();
    let mut want = vec![
        format!("notice: {f}: RT: stored type float64 is converted by libhdf5; read through libhdf5"),
        format!("notice: {f}: charge: stored type int32 is converted by libhdf5; read through libhdf5"),
        format!(
            "notice: {f}: instrument accuracy est.: {} of {} chunks allocated (the rest read as fill values); read through libhdf5",
            ACC_ROWS / HCHUNK,
            HN.div_ceil(HCHUNK)
        ),
        format!("notice: {f}: precursor_mz: stored type float64 is converted by libhdf5; read through libhdf5"),
        format!("notice: {f}: scan_number: no storage allocated (fill values); read through libhdf5"),
    ];
    want.sort();
    assert_eq!(got, want, "notices:\n{}", rn.stderr);
    assert!(notices(&rl).is_empty(), "notice under --decode libhdf5");

    let m = assert_same_output(&native, &lib, "hand-made file");

    // The values, as written.
    assert_handmade_rows(&native, &m, hm_accuracy, |_| Some(0));
}

/// Assert the rows under `root` (converted with `--normalize none`) are the hand-made
/// values: every row but the empty ones, with `accuracy(row)` and `scan(row)`.
#[track_caller]
fn assert_handmade_rows(
    root: &Path,
    m: &serde_json::Value,
    accuracy: impl Fn(u64) -> f32,
    scan: impl Fn(u64) -> Option<i32>,
) {
    let (_, shards) = read_all(root);
    let rows = all_rows(&shards);
    let kept: Vec<u64> = (0..HN).filter(|r| !hm_peaks(*r).is_empty()).collect();
    assert_eq!(rows.iter().map(|r| r.source_row).collect::<Vec<_>>(), kept);
    assert_eq!(m["counts"]["read"], HN);
    assert_eq!(m["counts"]["rejected"]["empty"], HN - kept.len() as u64);
    assert_eq!(m["counts"]["rejected_total"], HN - kept.len() as u64);
    for row in rows {
        let r = row.source_row;
        assert_eq!(row.spectrum_id, r);
        let peaks = hm_peaks(r);
        assert_eq!(
            row.mz,
            peaks.iter().map(|p| p.0).collect::<Vec<_>>(),
            "row {r}: mz"
        );
        assert_eq!(
            row.intensity,
            peaks.iter().map(|p| p.1 as f32).collect::<Vec<_>>(),
            "row {r}: intensity"
        );
        assert_eq!(row.precursor_mz, hm_precursor(r), "row {r}: precursor_mz");
        assert_eq!(row.rt, Some(hm_rt(r) as f32), "row {r}: rt");
        assert_eq!(row.charge, Some(hm_charge(r) as i8), "row {r}: charge");
        assert_eq!(row.accuracy, Some(accuracy(r)), "row {r}: accuracy");
        assert_eq!(row.lsh, Lsh::Int(hm_lsh(r)), "row {r}: lsh");
        assert_eq!(row.name.as_deref(), Some(format!("n{r}").as_str()));
        assert_eq!(row.scan_number, scan(r), "row {r}: scan_number");
    }
}

// ---------------------------------------------------------------------------------------
// Chunk shapes the synth layouts never make: edge chunks along the peak axes, one chunk for
// a whole column, odd byte counts under fletcher32, shuffle spanning the checksum.

/// A file of the hand-made values, every dataset mapped, with odd chunk shapes. `high_form`:
/// float32 `spectra` (N, 128, 2) instead of float64 `spectrum` (N, 2, 128).
fn write_odd_chunks(path: &Path, high_form: bool) {
    let _g = fork_guard();
    let f = h5::File::create(path).unwrap();
    let n = HN;
    let st =
        |chunk: &[u64], deflate: Option<u8>, shuffle: bool, fletcher32: bool| Storage::Chunked {
            chunk: chunk.to_vec(),
            deflate,
            shuffle,
            fletcher32,
        };
    let mut peaks = vec![0.0f64; (n * 256) as usize];
    for r in 0..n {
        for (k, (mz, it)) in hm_peaks(r).into_iter().enumerate() {
            let base = r as usize * 256;
            if high_form {
                peaks[base + 2 * k] = mz;
                peaks[base + 2 * k + 1] = it;
            } else {
                peaks[base + k] = mz;
                peaks[base + 128 + k] = it;
            }
        }
    }
    if high_form {
        // Edge chunks along the slot axis (128 = 2 × 50 + 28), one value per chunk column.
        let spec = f
            .create_dataset(
                "spectra",
                &WriteType::of::<f32>(),
                &[n, 128, 2],
                &st(&[100, 50, 1], Some(1), true, false),
            )
            .unwrap();
        let p32: Vec<f32> = peaks.iter().map(|&x| x as f32).collect();
        spec.write_rows(0, n, &p32).unwrap();
    } else {
        // Edge chunks along the slot axis (128 = 3 × 40 + 8) and the row axis.
        let spec = f
            .create_dataset(
                "spectrum",
                &WriteType::of::<f64>(),
                &[n, 2, 128],
                &st(&[48, 1, 40], Some(1), true, true),
            )
            .unwrap();
        spec.write_rows(0, n, &peaks).unwrap();
    }
    let p = f
        .create_dataset(
            if high_form {
                "precursor mz"
            } else {
                "precursor_mz"
            },
            &WriteType::of::<f64>(),
            &[n],
            &st(&[63], Some(1), false, true),
        )
        .unwrap();
    p.write_rows(0, n, &(0..n).map(hm_precursor).collect::<Vec<_>>())
        .unwrap();
    let rt = f
        .create_dataset(
            "RT",
            &WriteType::of::<f32>(),
            &[n],
            &st(&[63], None, true, true),
        )
        .unwrap();
    rt.write_rows(0, n, &(0..n).map(|r| hm_rt(r) as f32).collect::<Vec<_>>())
        .unwrap();
    // 63 one-byte values: an odd byte count under fletcher32.
    let charge = f
        .create_dataset(
            "charge",
            &WriteType::of::<i8>(),
            &[n],
            &st(&[63], None, false, true),
        )
        .unwrap();
    charge
        .write_rows(
            0,
            n,
            &(0..n).map(|r| hm_charge(r) as i8).collect::<Vec<_>>(),
        )
        .unwrap();
    // One chunk holding the whole column (shared by every unit).
    let acc = f
        .create_dataset(
            "instrument accuracy est.",
            &WriteType::of::<f32>(),
            &[n],
            &st(&[n], Some(1), false, false),
        )
        .unwrap();
    acc.write_rows(0, n, &(0..n).map(|r| r as f32 / 8.0).collect::<Vec<_>>())
        .unwrap();
    let lsh = f
        .create_dataset(
            "lsh",
            &WriteType::of::<i64>(),
            &[n],
            &st(&[63], Some(1), true, false),
        )
        .unwrap();
    lsh.write_rows(0, n, &(0..n).map(hm_lsh).collect::<Vec<_>>())
        .unwrap();
    let name = f
        .create_dataset(
            "name",
            &WriteType::VarString,
            &[n],
            &st(&[63], Some(1), false, false),
        )
        .unwrap();
    name.write_strings(
        0,
        &(0..n).map(|r| format!("n{r}")).collect::<Vec<_>>(),
        None,
    )
    .unwrap();
    // int32 pass-through: shuffle over 63 × 4 + 4 bytes, the checksum shuffled with the data.
    let scan = f
        .create_dataset(
            "scan_number",
            &WriteType::of::<i32>(),
            &[n],
            &st(&[63], None, true, true),
        )
        .unwrap();
    scan.write_rows(0, n, &(0..n).map(|r| r as i32 * 7 - 3).collect::<Vec<_>>())
        .unwrap();
}

#[test]
fn odd_chunk_shapes_decode_identically() {
    let dir = tempfile::tempdir().unwrap();
    for high_form in [false, true] {
        let file = dir.path().join(format!("odd-{high_form}.hdf5"));
        write_odd_chunks(&file, high_form);
        for extra in [&["--batch-size", "100"][..], &["--batch-size", "1000"][..]] {
            let tag = format!("high_form {high_form}, {extra:?}");
            let native = dir.path().join(format!("native-{high_form}-{}", extra[1]));
            let lib = dir.path().join(format!("libhdf5-{high_form}-{}", extra[1]));
            let mut args = vec!["--normalize", "none"];
            args.extend_from_slice(extra);
            let rn = build_decode(&[&file], &native, "native", &args);
            rn.expect_code(0);
            build_decode(&[&file], &lib, "libhdf5", &args).expect_code(0);
            assert!(
                notices(&rn).is_empty(),
                "{tag}: every dataset here can be mapped:\n{}",
                rn.stderr
            );
            let m = assert_same_output(&native, &lib, &tag);
            // The values, as written (the float32 peaks of the high form widen exactly).
            assert_handmade_rows(&native, &m, |r| r as f32 / 8.0, |r| Some(r as i32 * 7 - 3));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Chunks stored with some filters skipped (their filter-mask bits set), as libhdf5 does when
// an optional filter fails; written here with `H5Dwrite_chunk`.

/// HDF5's byte shuffle of `data` with `elem`-byte elements (whole elements only).
fn shuffle_bytes(data: &[u8], elem: usize) -> Vec<u8> {
    let n = data.len() / elem;
    let mut out = data.to_vec();
    for i in 0..n {
        for j in 0..elem {
            out[j * n + i] = data[i * elem + j];
        }
    }
    out
}

/// Replace the chunk at `offset` of `dataset` by `data`, stored with filter mask `mask`.
fn write_chunk_raw(path: &Path, dataset: &str, offset: [u64; 3], mask: u32, data: &[u8]) {
    use hdf5_sys::{h5d, h5f, h5p};
    let _l = h5::lock();
    let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let cname = std::ffi::CString::new(dataset).unwrap();
    // SAFETY: valid C strings; every id is checked before use and closed; `offset` has one
    // entry per dimension of the (rank-3) dataset and `data` outlives the call. The
    // process-wide HDF5 lock is held throughout.
    unsafe {
        let f = h5f::H5Fopen(cpath.as_ptr(), h5f::H5F_ACC_RDWR, h5p::H5P_DEFAULT);
        assert!(f >= 0, "H5Fopen {}", path.display());
        let d = h5d::H5Dopen2(f, cname.as_ptr(), h5p::H5P_DEFAULT);
        assert!(d >= 0, "H5Dopen2 {dataset}");
        let st = h5d::H5Dwrite_chunk(
            d,
            h5p::H5P_DEFAULT,
            mask,
            offset.as_ptr(),
            data.len(),
            data.as_ptr().cast(),
        );
        assert!(st >= 0, "H5Dwrite_chunk {dataset} {offset:?}");
        assert!(h5d::H5Dclose(d) >= 0);
        assert!(h5f::H5Fclose(f) >= 0);
    }
}

#[test]
fn chunks_with_skipped_filters_decode_identically() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("masked.hdf5");
    let n = HN;
    let row = 2 * 128;
    let mut peaks = vec![0.0f64; n as usize * row];
    for r in 0..n {
        for (k, (mz, it)) in hm_peaks(r).into_iter().enumerate() {
            peaks[r as usize * row + k] = mz;
            peaks[r as usize * row + 128 + k] = it;
        }
    }
    let guard = fork_guard();
    {
        let f = h5::File::create(&file).unwrap();
        // Pipeline: shuffle (bit 0), deflate (bit 1).
        let spec = f
            .create_dataset(
                "spectrum",
                &WriteType::of::<f64>(),
                &[n, 2, 128],
                &Storage::Chunked {
                    chunk: vec![HCHUNK, 2, 128],
                    deflate: Some(1),
                    shuffle: true,
                    fletcher32: false,
                },
            )
            .unwrap();
        spec.write_rows(0, n, &peaks).unwrap();
        let p = f
            .create_dataset(
                "precursor_mz",
                &WriteType::of::<f64>(),
                &[n],
                &Storage::Contiguous,
            )
            .unwrap();
        p.write_rows(0, n, &(0..n).map(hm_precursor).collect::<Vec<_>>())
            .unwrap();
    }
    let chunk_bytes = |c: u64| -> Vec<u8> {
        let lo = (c * HCHUNK) as usize * row;
        le_bytes(&peaks[lo..lo + HCHUNK as usize * row])
    };
    let zlib = |data: &[u8]| -> Vec<u8> {
        let mut z = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
        let mut out = vec![0u8; z.zlib_compress_bound(data.len())];
        let len = z.zlib_compress(data, &mut out).unwrap();
        out.truncate(len);
        out
    };
    // Chunk 1: no filter applied; chunk 2: shuffle only; chunk 3: deflate only; chunk 4:
    // both (as written by libhdf5, but through the direct path).
    write_chunk_raw(&file, "spectrum", [HCHUNK, 0, 0], 0b11, &chunk_bytes(1));
    write_chunk_raw(
        &file,
        "spectrum",
        [2 * HCHUNK, 0, 0],
        0b10,
        &shuffle_bytes(&chunk_bytes(2), 8),
    );
    write_chunk_raw(
        &file,
        "spectrum",
        [3 * HCHUNK, 0, 0],
        0b01,
        &zlib(&chunk_bytes(3)),
    );
    write_chunk_raw(
        &file,
        "spectrum",
        [4 * HCHUNK, 0, 0],
        0,
        &zlib(&shuffle_bytes(&chunk_bytes(4), 8)),
    );
    drop(guard);
    let masks: Vec<u32> = chunks_of(&file, "spectrum")
        .iter()
        .map(|c| c.filter_mask)
        .collect();
    assert_eq!(&masks[..5], [0, 0b11, 0b10, 0b01, 0]);

    let native = dir.path().join("native");
    let lib = dir.path().join("libhdf5");
    let args = ["--normalize", "none", "--batch-size", "100"];
    let rn = build_decode(&[&file], &native, "native", &args);
    rn.expect_code(0);
    assert!(
        notices(&rn).is_empty(),
        "unexpected fallback:\n{}",
        rn.stderr
    );
    build_decode(&[&file], &lib, "libhdf5", &args).expect_code(0);
    let m = assert_same_output(&native, &lib, "chunks with skipped filters");
    let (_, shards) = read_all(&native);
    let rows = all_rows(&shards);
    let kept: Vec<u64> = (0..n).filter(|r| !hm_peaks(*r).is_empty()).collect();
    assert_eq!(rows.iter().map(|r| r.source_row).collect::<Vec<_>>(), kept);
    assert_eq!(m["counts"]["written"], kept.len() as u64);
    for row in rows {
        let r = row.source_row;
        let p = hm_peaks(r);
        assert_eq!(row.mz, p.iter().map(|p| p.0).collect::<Vec<_>>(), "row {r}");
        assert_eq!(
            row.intensity,
            p.iter().map(|p| p.1 as f32).collect::<Vec<_>>(),
            "row {r}"
        );
        assert_eq!(row.precursor_mz, hm_precursor(r), "row {r}");
    }
}

/// Little-endian bytes of `v`.
fn le_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

// ---------------------------------------------------------------------------------------
// 3b. A Fletcher-32 mismatch, on a chunk without deflate (so the checksum is what sees it).

#[test]
fn fletcher32_mismatch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("handmade.hdf5");
    write_handmade(&file);
    let chunks = chunks_of(&file, "spectrum");
    assert_eq!(chunks.len() as u64, HN.div_ceil(HCHUNK));
    // Stored chunk: the shuffled (data + checksum); shuffle leaves the trailing 4 bytes
    // (not a whole 8-byte element) in place, so the checksum is the last 4 bytes.
    let i = 5;
    let c = chunks[i];
    let bytes = std::fs::read(&file).unwrap();
    let end = (c.addr + c.size) as usize;
    assert_eq!(
        c.size,
        HCHUNK * 2 * 128 * 8 + 4,
        "unfiltered chunk + checksum"
    );
    let stored = u32::from_le_bytes(bytes[end - 4..end].try_into().unwrap());

    // A flipped data byte: the stored sum no longer matches.
    let bad = dir.path().join("bad-data.hdf5");
    edited_copy(&file, &bad, |b| flip(b, (c.addr + c.size / 3) as usize, 1));
    let root = dir.path().join("bad-data-native");
    let run = build_decode(&[&bad], &root, "native", &[]);
    let stored_s = format!("fletcher32 checksum mismatch (stored {stored:#010x}, computed");
    assert_refused(
        &run,
        &root,
        &bad,
        &["dataset `spectrum`", &chunk_label(i, &c), &stored_s],
    );
    let root = dir.path().join("bad-data-libhdf5");
    let run = build_decode(&[&bad], &root, "libhdf5", &[]);
    assert_refused(&run, &root, &bad, &["spectrum"]);

    // A flipped checksum over intact data: same refusal, naming the new stored value.
    let bad = dir.path().join("bad-sum.hdf5");
    edited_copy(&file, &bad, |b| flip(b, end - 4, 4));
    let root = dir.path().join("bad-sum-native");
    let run = build_decode(&[&bad], &root, "native", &[]);
    let want = format!(
        "fletcher32 checksum mismatch (stored {:#010x}, computed {stored:#010x})",
        !stored
    );
    assert_refused(
        &run,
        &root,
        &bad,
        &["dataset `spectrum`", &chunk_label(i, &c), &want],
    );
    let root = dir.path().join("bad-sum-libhdf5");
    let run = build_decode(&[&bad], &root, "libhdf5", &[]);
    assert_refused(&run, &root, &bad, &["spectrum"]);
}

// ---------------------------------------------------------------------------------------
// `read::inflate_all_chunks`: the input side of the e2e bench's floor.

/// Every chunk of every chunked root dataset is decoded once, at its stored size (the vlen
/// `name` as 16-byte heap references); contiguous datasets have nothing to decode; a
/// damaged chunk is an error naming the dataset.
#[test]
fn inflate_all_chunks_decodes_every_stored_chunk() {
    use msms_shards::read::inflate_all_chunks;
    let dir = tempfile::tempdir().unwrap();
    let gems = synth_input(&dir.path().join("gems.hdf5"), "gems", SPECTRA, FAULTS, SEED);
    let t = inflate_all_chunks(&gems.path).unwrap();
    let names = [
        "spectrum",
        "precursor_mz",
        "RT",
        "charge",
        "instrument accuracy est.",
        "lsh",
        "name",
    ];
    let per_row = 2 * 128 * 8 + 4 + 4 + 1 + 4 + 8 + 16;
    let grid = SPECTRA.div_ceil(1024);
    assert_eq!(t.datasets, names.len());
    assert_eq!(t.chunks, grid * names.len() as u64);
    assert_eq!(t.bytes_out, grid * 1024 * per_row);
    let stored: u64 = names
        .iter()
        .flat_map(|n| chunks_of(&gems.path, n))
        .map(|c| c.size)
        .sum();
    assert_eq!(t.stored_bytes, stored);

    let contiguous = synth_input(
        &dir.path().join("contiguous.hdf5"),
        "contiguous",
        SPECTRA,
        FAULTS,
        SEED,
    );
    assert_eq!(inflate_all_chunks(&contiguous.path).unwrap().chunks, 0);

    let c = chunks_of(&gems.path, "RT")[1];
    let bad = dir.path().join("bad.hdf5");
    edited_copy(&gems.path, &bad, |b| {
        flip(b, (c.addr + c.size / 2) as usize, 8)
    });
    let e = inflate_all_chunks(&bad).unwrap_err().to_string();
    assert!(e.contains("dataset `RT`") && e.contains("deflate"), "{e}");
}
