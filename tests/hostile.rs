//! Hostile and broken inputs (issue 5, "Faults and hostile input"): each is refused with exit
//! code 2 and a message naming the file, the dataset and the chunk or rows, or its spectra
//! are counted as rejected; never a panic, never an allocation or a run sized by a number the
//! file declares, and nothing left under a final name in the output root. Files are written
//! through libhdf5 (the crate's writer, or `hdf5_sys` directly for what it does not expose).
//!
//! Cases covered elsewhere (bad_inputs.rs, mapped.rs, build_shards.rs, cli_config.rs) are not
//! repeated; these are the ones those leave open.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;
use msms_shards::read::h5::{self, File, Storage, WriteType};

// ---------------------------------------------------------------------------------------
// Helpers.

/// `build-shards --decode DECODE EXTRA...` of `inputs` into `root`, with the child's address
/// space limited to `AS_LIMIT` and its CPU time to `CPU_LIMIT`: a run that tries to allocate
/// by a declared dimension, or to loop over one, dies (and the test fails) instead of taking
/// the machine with it. The CPU limit counts the child's own work, not the time other tests
/// take: it is a guard against a runaway child, not a measure of speed (these runs take a
/// fraction of a CPU second).
fn build_limited(inputs: &[&Path], root: &Path, decode: &str, extra: &[&str]) -> Run {
    const AS_LIMIT: u64 = 4 << 30;
    const CPU_LIMIT: u64 = 300;
    use std::os::unix::process::CommandExt;
    let mut cmd = msms_command();
    cmd.arg("build-shards").arg("--input-hdf5");
    cmd.args(inputs);
    cmd.arg("--output-root").arg(root);
    cmd.args(["--decode", decode]);
    cmd.args(extra);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: `setrlimit` is async-signal-safe; the closure touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: AS_LIMIT,
                rlim_max: AS_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let cpu = libc::rlimit {
                rlim_cur: CPU_LIMIT,
                rlim_max: CPU_LIMIT + 10,
            };
            if libc::setrlimit(libc::RLIMIT_CPU, &cpu) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = {
        let _g = fork_guard();
        cmd.spawn().expect("spawn msms")
    };
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut s).unwrap();
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut s).unwrap();
        s
    });
    // The child's end is the state waited for; a runaway is ended by its CPU limit.
    let status = child.wait().expect("wait for msms");
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap()).into_owned();
    let Some(code) = status.code() else {
        panic!(
            "msms killed by {status} on {inputs:?} (--decode {decode} {extra:?}): a crash, memory \
             over the {AS_LIMIT}-byte limit or more than {CPU_LIMIT} s of CPU (SIGXCPU)\n--- stderr\n{stderr}"
        );
    };
    Run {
        code,
        stdout,
        stderr,
    }
}

/// Assert `run` was refused (exit 2, no panic) with a message naming `file` and every one of
/// `mentions`, and that nothing is under a final name in `root`: no shard, no manifest, no
/// `.tmp` (the root itself need not exist).
#[track_caller]
fn assert_refused(run: &Run, root: &Path, file: &Path, mentions: &[&str]) {
    assert_refusal_message(run, file, mentions);
    let left = files_under(root);
    assert!(left.is_empty(), "left behind after exit 2: {left:?}");
}

/// A temporary directory with an input path and an output root per decoder.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        Case {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

const DECODERS: [&str; 2] = ["native", "libhdf5"];

/// Rows of `n` one-peak spectra (m/z 100 + row / 8, intensity 1 + row), planar (N, 2, 128).
fn one_peak_rows(n: u64) -> Vec<f64> {
    let mut v = vec![0.0f64; n as usize * 256];
    for r in 0..n as usize {
        v[r * 256] = 100.0 + r as f64 / 8.0;
        v[r * 256 + 128] = 1.0 + r as f64;
    }
    v
}

/// A dataset made through `hdf5_sys` directly, for what the crate's writer does not expose:
/// maximum dimensions (`hdf5_sys::h5s::H5S_UNLIMITED`), a fill value, an extent set after
/// creation. Chunked with deflate; stored as float32 or float64; the first
/// `data.len() / row` rows are written from `data` (f64, converted by libhdf5).
struct RawDs<'a> {
    name: &'a str,
    float32: bool,
    dims: &'a [u64],
    maxdims: &'a [u64],
    chunk: &'a [u64],
    fill: Option<f64>,
    data: &'a [f64],
}

/// Add `datasets` to the HDF5 file at `path` (created when absent).
fn write_raw(path: &Path, datasets: &[RawDs]) {
    use hdf5_sys::{h5d, h5f, h5p, h5s, h5t};
    use std::ffi::{c_void, CString};
    let _g = fork_guard();
    if !path.exists() {
        File::create(path).unwrap();
    }
    let _l = h5::lock();
    let cpath = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: valid C strings; every array passed has one entry per dimension (`rank`);
    // `data` holds exactly the selected rows; every id is checked, then closed. The
    // process-wide HDF5 lock is held throughout.
    unsafe {
        let f = h5f::H5Fopen(cpath.as_ptr(), h5f::H5F_ACC_RDWR, h5p::H5P_DEFAULT);
        assert!(f >= 0, "H5Fopen {}", path.display());
        for ds in datasets {
            let rank = ds.dims.len();
            assert!(ds.maxdims.len() == rank && ds.chunk.len() == rank);
            let cname = CString::new(ds.name).unwrap();
            let space = h5s::H5Screate_simple(rank as i32, ds.dims.as_ptr(), ds.maxdims.as_ptr());
            assert!(space >= 0, "H5Screate_simple {}", ds.name);
            let dcpl = h5p::H5Pcreate(*h5p::H5P_CLS_DATASET_CREATE);
            assert!(h5p::H5Pset_chunk(dcpl, rank as i32, ds.chunk.as_ptr()) >= 0);
            assert!(h5p::H5Pset_deflate(dcpl, 1) >= 0);
            if let Some(v) = ds.fill {
                let st = h5p::H5Pset_fill_value(
                    dcpl,
                    *h5t::H5T_NATIVE_DOUBLE,
                    (&v as *const f64).cast::<c_void>(),
                );
                assert!(st >= 0, "H5Pset_fill_value");
            }
            let ftype = if ds.float32 {
                *h5t::H5T_NATIVE_FLOAT
            } else {
                *h5t::H5T_NATIVE_DOUBLE
            };
            let d = h5d::H5Dcreate2(
                f,
                cname.as_ptr(),
                ftype,
                space,
                h5p::H5P_DEFAULT,
                dcpl,
                h5p::H5P_DEFAULT,
            );
            assert!(d >= 0, "H5Dcreate2 {}", ds.name);
            if !ds.data.is_empty() {
                let row: u64 = ds.dims[1..].iter().product();
                let mut count = ds.dims.to_vec();
                count[0] = ds.data.len() as u64 / row;
                let start = vec![0u64; rank];
                let fspace = h5d::H5Dget_space(d);
                assert!(
                    h5s::H5Sselect_hyperslab(
                        fspace,
                        h5s::H5S_seloper_t::H5S_SELECT_SET,
                        start.as_ptr(),
                        std::ptr::null(),
                        count.as_ptr(),
                        std::ptr::null(),
                    ) >= 0
                );
                let mspace = h5s::H5Screate_simple(rank as i32, count.as_ptr(), std::ptr::null());
                let st = h5d::H5Dwrite(
                    d,
                    *h5t::H5T_NATIVE_DOUBLE,
                    mspace,
                    fspace,
                    h5p::H5P_DEFAULT,
                    ds.data.as_ptr().cast::<c_void>(),
                );
                assert!(st >= 0, "H5Dwrite {}", ds.name);
                h5s::H5Sclose(mspace);
                h5s::H5Sclose(fspace);
            }
            h5d::H5Dclose(d);
            h5p::H5Pclose(dcpl);
            h5s::H5Sclose(space);
        }
        assert!(h5f::H5Fclose(f) >= 0);
    }
}

const UNLIMITED: u64 = hdf5_sys::h5s::H5S_UNLIMITED;

/// The `spectrum` (float64) and `precursor_mz` (float32, 500 + row) datasets of `dims[0]`
/// rows through [`write_raw`], the first `written` rows with one-peak spectra.
fn write_raw_gems(
    path: &Path,
    dims: u64,
    maxdims: u64,
    chunk: u64,
    written: u64,
    fill: Option<f64>,
) {
    let peaks = one_peak_rows(written);
    let precursor: Vec<f64> = (0..written).map(|r| 500.0 + r as f64).collect();
    write_raw(
        path,
        &[
            RawDs {
                name: "spectrum",
                float32: false,
                dims: &[dims, 2, 128],
                maxdims: &[maxdims, 2, 128],
                chunk: &[chunk, 2, 128],
                fill,
                data: &peaks,
            },
            RawDs {
                name: "precursor_mz",
                float32: true,
                dims: &[dims],
                maxdims: &[maxdims],
                chunk: &[chunk],
                fill: None,
                data: &precursor,
            },
        ],
    );
}

// ---------------------------------------------------------------------------------------
// Huge declared dimensions: refused at detection, before any allocation or unit planning
// sized by them (a unit plan of 2^40 rows alone is 2^30 entries), under both decoders. No
// clock: the message is detection's, no output root is created, and a plan or buffer sized
// by the declared rows would break `build_limited`'s address-space limit (a loop over them,
// its CPU limit).

#[test]
fn huge_declared_extent_is_refused_at_detection() {
    let c = Case::new();
    const N: u64 = 1 << 40;
    // (file, dataset the message names, the phrases it must contain)
    let mut cases: Vec<(PathBuf, &str, Vec<String>)> = Vec::new();

    // Fixed dims (2^40, 2, 128), nothing written.
    let none = c.path("none-written.hdf5");
    write_raw_gems(&none, N, N, 1024, 0, None);
    // The same with two chunks written (the rest read as fill values).
    let two = c.path("two-chunks.hdf5");
    write_raw_gems(&two, N, N, 1024, 2048, None);
    // Unlimited max dims, current extent 2^40.
    let unl = c.path("unlimited.hdf5");
    write_raw_gems(&unl, N, UNLIMITED, 1024, 1000, None);
    for f in [&none, &two, &unl] {
        cases.push((
            f.clone(),
            "spectrum",
            vec![
                format!("declared shape [{N}, 2, 128]: the per-spectrum datasets of {N} rows need"),
                "more than a file of".into(),
                "the rest would be fill values of chunks never written".into(),
            ],
        ));
    }
    // The largest extent libhdf5 accepts for float64 (2, 128) rows: 2^64 / 2048 elements.
    let max = c.path("max-extent.hdf5");
    let n_max = (1u64 << 53) - 1;
    write_raw_gems(&max, n_max, UNLIMITED, 1 << 12, 0, None);
    cases.push((
        max.clone(),
        "spectrum",
        vec![format!("declared shape [{n_max}, 2, 128]")],
    ));
    // A small spectrum tensor and a huge pass-through column: every dataset has the same
    // number of rows, so a wide pass-through carries the declared size.
    let wide = c.path("wide-passthrough.hdf5");
    write_raw_gems(&wide, 2_000_000, 2_000_000, 4096, 0, None);
    write_raw(
        &wide,
        &[RawDs {
            name: "embedding",
            float32: true,
            dims: &[2_000_000, 1 << 20],
            maxdims: &[2_000_000, 1 << 20],
            chunk: &[1, 1 << 16],
            fill: None,
            data: &[],
        }],
    );
    // The tensor alone is already more than the file can hold: detection names it before
    // the pass-through columns are even chosen.
    cases.push((
        wide.clone(),
        "spectrum",
        vec!["declared shape [2000000, 2, 128]: the per-spectrum datasets of 2000000 rows".into()],
    ));

    for (file, dataset, phrases) in &cases {
        let ds = format!("dataset `{dataset}`");
        let mut mentions: Vec<&str> = vec![&ds];
        mentions.extend(phrases.iter().map(String::as_str));
        for decode in DECODERS {
            let root = c.path(&format!(
                "{}-{decode}",
                file.file_stem().unwrap().to_string_lossy()
            ));
            let run = build_limited(&[file], &root, decode, &[]);
            assert_refused(&run, &root, file, &mentions);
            assert!(!root.exists(), "refused at detection: no output root");
        }
    }
}

#[test]
fn declared_row_width_is_bounded() {
    let c = Case::new();
    // Peak slots beyond num_peaks' uint16.
    let slots = c.path("slots.hdf5");
    write_raw(
        &slots,
        &[
            RawDs {
                name: "spectrum",
                float32: true,
                dims: &[10, 2, 1 << 20],
                maxdims: &[10, 2, 1 << 20],
                chunk: &[1, 2, 1 << 14],
                fill: None,
                data: &[],
            },
            RawDs {
                name: "precursor_mz",
                float32: true,
                dims: &[10],
                maxdims: &[10],
                chunk: &[10],
                fill: None,
                data: &[],
            },
        ],
    );
    // A pass-through column of more than 2^20 values per row.
    let wide = c.path("wide.hdf5");
    write_raw_gems(&wide, 10, 10, 10, 10, None);
    write_raw(
        &wide,
        &[RawDs {
            name: "wide",
            float32: true,
            dims: &[10, 1 << 21],
            maxdims: &[10, 1 << 21],
            chunk: &[1, 1 << 16],
            fill: None,
            data: &[],
        }],
    );
    // Seventeen pass-through columns of 2^20 float32 each: every one within the per-column
    // bound, together 68 MiB per spectrum, more than a read unit holds.
    let many = c.path("many.hdf5");
    write_raw_gems(&many, 4, 4, 4, 4, None);
    let names: Vec<String> = (0..17).map(|i| format!("wide{i:02}")).collect();
    let cols: Vec<RawDs> = names
        .iter()
        .map(|n| RawDs {
            name: n,
            float32: true,
            dims: &[4, 1 << 20],
            maxdims: &[4, 1 << 20],
            chunk: &[1, 1 << 16],
            fill: None,
            data: &[],
        })
        .collect();
    write_raw(&many, &cols);
    let cases: [(&Path, &[&str]); 2] = [
        (
            &slots,
            &[
                "dataset `spectrum`",
                "unsupported shape [10, 2, 1048576]: 1 to 65535 peak slots per spectrum",
            ],
        ),
        (
            &many,
            &[
                "dataset `wide00`",
                // 2 × 128 float64 peaks, 64 bytes of fixed columns, 17 × 2^20 float32.
                "declared shape [4, 1048576]: one row of the per-spectrum datasets is 71305280 \
                 bytes decoded, more than a read unit holds (67108864 bytes)",
            ],
        ),
    ];
    for (file, mentions) in cases {
        for decode in DECODERS {
            let root = c.path(&format!(
                "{}-{decode}",
                file.file_stem().unwrap().to_string_lossy()
            ));
            let run = build_limited(&[file], &root, decode, &[]);
            assert_refused(&run, &root, file, mentions);
            assert!(!root.exists(), "refused at detection: no output root");
        }
    }
    // A pass-through column wider than a column may be is left out (not read: its declared
    // size does not count), with a notice; --strict-columns refuses the file instead.
    let why = "unsupported shape [10, 2097152] for a pass-through column";
    for decode in DECODERS {
        let root = c.path(&format!("wide-{decode}"));
        let run = build_limited(&[&wide], &root, decode, &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("dataset `wide` left out: {why}")),
            "{}",
            run.stderr
        );
        let strict = c.path(&format!("wide-strict-{decode}"));
        let run = build_limited(&[&wide], &strict, decode, &["--strict-columns"]);
        assert_refused(&run, &strict, &wide, &["dataset `wide`", why]);
        assert!(!strict.exists(), "refused at detection: no output root");
    }
}

// ---------------------------------------------------------------------------------------
// Zero rows, zero peak slots.

#[test]
fn zero_rows_and_zero_peak_slots_are_refused() {
    let c = Case::new();
    // Contiguous datasets of the given shapes, no data written.
    let contiguous_file = |path: &Path, spectrum: &[u64], rows: u64| {
        let _g = fork_guard();
        let f = File::create(path).unwrap();
        f.create_dataset(
            "spectrum",
            &WriteType::of::<f64>(),
            spectrum,
            &Storage::Contiguous,
        )
        .unwrap();
        f.create_dataset(
            "precursor_mz",
            &WriteType::of::<f32>(),
            &[rows],
            &Storage::Contiguous,
        )
        .unwrap();
    };
    // Contiguous, as h5py writes an empty array.
    let contiguous = c.path("zero-contiguous.hdf5");
    contiguous_file(&contiguous, &[0, 2, 128], 0);
    // Chunked and resizable, never extended (a writer that stopped before its first row).
    let resizable = c.path("zero-resizable.hdf5");
    write_raw_gems(&resizable, 0, UNLIMITED, 1024, 0, None);
    // Rows, but no peak slots: (N, 2, 0).
    let no_slots = c.path("zero-slots.hdf5");
    contiguous_file(&no_slots, &[50, 2, 0], 50);
    let no_rows = [
        "dataset `spectrum`",
        "shape [0, 2, 128]: no spectra (0 rows)",
    ];
    let cases: [(&Path, &[&str]); 3] = [
        (&contiguous, &no_rows),
        (&resizable, &no_rows),
        (
            &no_slots,
            &[
                "dataset `spectrum`",
                "unsupported shape [50, 2, 0]: 1 to 65535 peak slots per spectrum",
            ],
        ),
    ];
    for (file, mentions) in cases {
        for decode in DECODERS {
            let root = c.path(&format!(
                "{}-{decode}",
                file.file_stem().unwrap().to_string_lossy()
            ));
            let run = build_limited(&[file], &root, decode, &[]);
            assert_refused(&run, &root, file, mentions);
            assert!(!root.exists(), "refused at detection: no output root");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Damaged chunks. The native decoder's messages for corrupt deflate data, a Fletcher-32
// mismatch and a file cut short are tested in mapped.rs; here: the libhdf5 path's messages
// (dataset and rows), and a chunk whose index entry points past the end of an intact file.

/// The chunk index of `dataset` in `path`, sorted by logical offset (the numbering the
/// native decoder's messages use).
fn chunks_of(path: &Path, dataset: &str) -> Vec<h5::ChunkRecord> {
    let _g = fork_guard();
    let f = File::open(path).unwrap();
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
fn flip(bytes: &mut [u8], at: u64, n: usize) {
    for b in &mut bytes[at as usize..at as usize + n] {
        *b = !*b;
    }
}

/// Small shards and one worker: units finish in order, so by the time a damaged later chunk
/// is met, earlier units are in finished shards, which a refused run must remove.
const IN_ORDER: [&str; 4] = ["--shard-size", "400kB", "--num-workers", "1"];

/// The message of an `H5Dread` failure under `--decode libhdf5`, as far as it is ours.
fn h5dread_failure(file: &Path, dataset: &str, rows: std::ops::Range<u64>) -> String {
    format!(
        "dataset `{dataset}`: H5Dread failed for {}:/{dataset} rows {}..{}: ",
        file.display(),
        rows.start,
        rows.end
    )
}

#[test]
fn chunk_address_beyond_the_end_of_the_file() {
    let c = Case::new();
    let input = synth_input(&c.path("gems.hdf5"), "gems", 2500, 0.0, 11);
    let chunks = chunks_of(&input.path, "spectrum");
    assert_eq!(chunks.len(), 3, "2500 rows in 1024-row chunks");
    let (i, ch) = (2usize, chunks[2]);
    let bytes = std::fs::read(&input.path).unwrap();
    let len = bytes.len() as u64;
    // The chunk's entry in the version 1 B-tree of the dataset: key (size u32, filter mask
    // u32, offsets (rank + 1) × u64), then the child pointer, the chunk's address (no
    // checksum covers it).
    let mut key = Vec::new();
    key.extend_from_slice(&(ch.size as u32).to_le_bytes());
    key.extend_from_slice(&ch.filter_mask.to_le_bytes());
    for o in [ch.offset[0], ch.offset[1], ch.offset[2], 0] {
        key.extend_from_slice(&o.to_le_bytes());
    }
    key.extend_from_slice(&ch.addr.to_le_bytes());
    let at: Vec<usize> = bytes
        .windows(key.len())
        .enumerate()
        .filter(|(_, w)| *w == key.as_slice())
        .map(|(p, _)| p + key.len() - 8)
        .collect();
    assert_eq!(at.len(), 1, "one B-tree entry for chunk {i}");
    let moved = len + (1 << 20);
    let bad = c.path("moved.hdf5");
    edited_copy(&input.path, &bad, |b| {
        b[at[0]..at[0] + 8].copy_from_slice(&moved.to_le_bytes())
    });
    assert_eq!(chunks_of(&bad, "spectrum")[i].addr, moved);

    // Native: refused when the file is opened, before any unit is read.
    let root = c.path("native");
    let run = build_limited(&[&bad], &root, "native", &IN_ORDER);
    let want = format!(
        "dataset `spectrum`: chunk {i} at {:?}: bytes {moved}..{} lie beyond the end of the file ({len} bytes)",
        &ch.offset[..],
        moved + ch.size
    );
    assert_refused(&run, &root, &bad, &[&want]);

    // libhdf5: the earlier units are converted (and their shards finished) first.
    let root = c.path("libhdf5");
    let run = build_limited(&[&bad], &root, "libhdf5", &IN_ORDER);
    let want_rows = h5dread_failure(&bad, "spectrum", 2048..2500);
    let want_detail = format!(
        "addr overflow, addr = {moved}, size = {}, eoa = {len}",
        ch.size
    );
    assert_refused(&run, &root, &bad, &[&want_rows, &want_detail]);
}

#[test]
fn damaged_chunks_under_libhdf5_name_dataset_and_rows() {
    let c = Case::new();
    // Corrupt deflate data in the middle chunk of the spectrum.
    let gems = synth_input(&c.path("gems.hdf5"), "gems", 2500, 0.0, 12);
    let ch = chunks_of(&gems.path, "spectrum")[1];
    let deflate = c.path("deflate.hdf5");
    edited_copy(&gems.path, &deflate, |b| flip(b, ch.addr + ch.size / 2, 8));
    // A Fletcher-32 mismatch: fletcher32 without deflate, a data byte of chunk 3 flipped.
    let f32file = c.path("f32.hdf5");
    {
        let _g = fork_guard();
        let f = File::create(&f32file).unwrap();
        let s = f
            .create_dataset(
                "spectrum",
                &WriteType::of::<f64>(),
                &[300, 2, 128],
                &Storage::Chunked {
                    chunk: vec![64, 2, 128],
                    deflate: None,
                    shuffle: false,
                    fletcher32: true,
                },
            )
            .unwrap();
        s.write_rows(0, 300, &one_peak_rows(300)).unwrap();
        let p = f
            .create_dataset(
                "precursor_mz",
                &WriteType::of::<f32>(),
                &[300],
                &Storage::Contiguous,
            )
            .unwrap();
        p.write_rows(0, 300, &vec![500.0f32; 300]).unwrap();
    }
    let ch3 = chunks_of(&f32file, "spectrum")[3];
    let fletcher = c.path("fletcher.hdf5");
    edited_copy(&f32file, &fletcher, |b| flip(b, ch3.addr + 1000, 1));

    for (file, rows, extra) in [
        (&deflate, 1024..2048, &IN_ORDER[..]),
        (
            &fletcher,
            192..256,
            &["--batch-size", "64", "--num-workers", "1"][..],
        ),
    ] {
        let root = c.path(&format!(
            "{}-libhdf5",
            file.file_stem().unwrap().to_string_lossy()
        ));
        let run = build_limited(&[file], &root, "libhdf5", extra);
        let want = h5dread_failure(file, "spectrum", rows);
        assert_refused(&run, &root, file, &[&want]);
    }
}

// ---------------------------------------------------------------------------------------
// Truncated files.

/// Byte offset of the end-of-file address in a version 0 superblock.
const SB0_EOF_ADDR: usize = 40;

#[test]
fn truncated_file_is_refused_by_both_decoders() {
    let c = Case::new();
    let full = synth_input(&c.path("full.hdf5"), "gems", 2500, 0.0, 13);
    let bytes = std::fs::read(&full.path).unwrap();
    let len = bytes.len();
    assert_eq!(&bytes[..8], b"\x89HDF\r\n\x1a\n", "HDF5 signature");
    assert_eq!(bytes[8], 0, "superblock version 0 expected");

    // Cut anywhere: libhdf5 refuses to open it (the superblock's end-of-file address is past
    // the end, or the superblock itself is cut), whichever decoder is asked for; nothing
    // inside can be named.
    for keep in [40, 96, 4096, len / 2, len - 1] {
        let file = c.path(&format!("cut{keep}.hdf5"));
        std::fs::write(&file, &bytes[..keep]).unwrap();
        let opened = format!(
            "refusing input: {0}: H5Fopen failed for {0}: ",
            file.display()
        );
        let detail =
            format!("truncated file: eof = {keep}, sblock->base_addr = 0, stored_eof = {len}");
        let mut mentions = vec![opened.as_str()];
        if keep > 48 {
            mentions.push(&detail);
        }
        for decode in DECODERS {
            let root = c.path(&format!("cut{keep}-{decode}"));
            let run = build_limited(&[&file], &root, decode, &[]);
            assert_refused(&run, &root, &file, &mentions);
        }
    }

    // Cut, with the superblock's end-of-file address moved to the new end: the metadata at
    // the start reads, the chunks past the cut do not. The native decoder names the chunk
    // (mapped.rs); libhdf5 names the first dataset and rows it cannot read.
    let keep = len * 7 / 10;
    let short = c.path("short.hdf5");
    edited_copy(&full.path, &short, |b| {
        b.truncate(keep);
        b[SB0_EOF_ADDR..SB0_EOF_ADDR + 8].copy_from_slice(&(keep as u64).to_le_bytes());
    });
    let root = c.path("short-libhdf5");
    let run = build_limited(&[&short], &root, "libhdf5", &IN_ORDER);
    assert_refused(
        &run,
        &root,
        &short,
        &["H5Dread failed for", ": addr overflow, addr = "],
    );
    // Which dataset and rows: the message's, and one of that dataset's chunks in those rows
    // does lie past the cut.
    let (_, rest) = run.stderr.split_once("dataset `").unwrap();
    let (dataset, rest) = rest.split_once('`').unwrap();
    let (_, rest) = rest.split_once(" rows ").unwrap();
    let (range, _) = rest.split_once(':').unwrap();
    let (lo, hi) = range.split_once("..").unwrap();
    let (lo, hi): (u64, u64) = (lo.parse().unwrap(), hi.parse().unwrap());
    assert_eq!(
        run.stderr
            .matches(&h5dread_failure(&short, dataset, lo..hi))
            .count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        chunks_of(&full.path, dataset)
            .iter()
            .any(|c| c.offset[0] < hi && c.offset[0] + 1024 > lo && c.addr + c.size > keep as u64),
        "no chunk of {dataset} rows {lo}..{hi} lies past byte {keep}"
    );
}

// ---------------------------------------------------------------------------------------
// Fill values and resizable datasets: converted, unwritten rows counted as rejected.

#[test]
fn unwritten_chunks_read_as_fill_values_and_are_rejected() {
    let c = Case::new();
    // 3000 rows in 1024-row chunks, the first 1000 written: chunk 0 holds 24 unwritten rows,
    // chunks 1 and 2 are never allocated.
    for (fill, reason) in [(None, "empty"), (Some(f64::NAN), "non_finite")] {
        let file = c.path(&format!("{reason}.hdf5"));
        write_raw_gems(&file, 3000, 3000, 1024, 1000, fill);
        let mut roots = Vec::new();
        for decode in DECODERS {
            let root = c.path(&format!("{reason}-{decode}"));
            let run = build_limited(&[&file], &root, decode, &["--normalize", "none"]);
            run.expect_code(0);
            if decode == "native" {
                let notice = format!(
                    "notice: {}: spectrum: 1 of 3 chunks allocated (the rest read as fill values); read through libhdf5",
                    file.display()
                );
                assert!(run.stderr.contains(&notice), "{}", run.stderr);
            }
            let (m, shards) = read_all(&root);
            assert_eq!(m["counts"]["read"], 3000);
            assert_eq!(m["counts"]["written"], 1000);
            assert_eq!(m["counts"]["rejected"][reason], 2000, "{reason}");
            assert_eq!(m["counts"]["rejected_total"], 2000);
            let rows = all_rows(&shards);
            assert_eq!(
                rows.iter().map(|r| r.source_row).collect::<Vec<_>>(),
                (0..1000).collect::<Vec<_>>()
            );
            for r in rows {
                let k = r.source_row;
                assert_eq!(r.mz, [100.0 + k as f64 / 8.0], "row {k}");
                assert_eq!(r.intensity, [1.0 + k as f32], "row {k}");
                assert_eq!(r.precursor_mz, 500.0 + k as f64, "row {k}");
            }
            roots.push(root);
        }
        let files = files_under(&roots[0]);
        assert_eq!(files, files_under(&roots[1]), "{reason}: files");
        for f in files.iter().filter(|f| f.ends_with(".parquet")) {
            assert_eq!(
                sha256_file(&roots[0].join(f)),
                sha256_file(&roots[1].join(f)),
                "{reason}: {f} differs between native and libhdf5"
            );
        }
    }
}

#[test]
fn resizable_datasets_and_chunks_larger_than_the_extent_convert() {
    let c = Case::new();
    // (rows, chunk rows): a partial edge chunk; one chunk far larger than the extent.
    for (n, chunk) in [(700u64, 256u64), (300, 4096)] {
        let file = c.path(&format!("resizable-{chunk}.hdf5"));
        write_raw_gems(&file, n, UNLIMITED, chunk, n, None);
        let mut digests = Vec::new();
        for decode in DECODERS {
            let root = c.path(&format!("resizable-{chunk}-{decode}"));
            let run = build_limited(&[&file], &root, decode, &["--normalize", "none"]);
            run.expect_code(0);
            assert!(
                !run.stderr.contains("notice:"),
                "every dataset mapped:\n{}",
                run.stderr
            );
            let (m, shards) = read_all(&root);
            assert_eq!(m["counts"]["read"], n);
            assert_eq!(m["counts"]["written"], n);
            let rows = all_rows(&shards);
            assert_eq!(rows.len() as u64, n);
            for r in rows {
                let k = r.source_row;
                assert_eq!(r.mz, [100.0 + k as f64 / 8.0], "row {k}");
                assert_eq!(r.intensity, [1.0 + k as f32], "row {k}");
                assert_eq!(r.precursor_mz, 500.0 + k as f64, "row {k}");
            }
            digests.push(m["dataset_digest"].clone());
        }
        assert_eq!(digests[0], digests[1], "chunk {chunk}: native vs libhdf5");
    }
}

// ---------------------------------------------------------------------------------------
// A corrupt link count in the root group.

/// HDF5's metadata checksum (`H5_checksum_lookup3`: Bob Jenkins' `hashlittle`, initial
/// value 0).
fn lookup3(key: &[u8]) -> u32 {
    let mix = |a: &mut u32, b: &mut u32, c: &mut u32| {
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(4);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(6);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(8);
        *b = b.wrapping_add(*a);
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(16);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(19);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(4);
        *b = b.wrapping_add(*a);
    };
    let word = |k: &[u8]| {
        let mut w = [0u8; 4];
        w[..k.len().min(4)].copy_from_slice(&k[..k.len().min(4)]);
        u32::from_le_bytes(w)
    };
    let init = 0xdead_beefu32.wrapping_add(key.len() as u32);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut k = key;
    while k.len() > 12 {
        a = a.wrapping_add(word(&k[0..4]));
        b = b.wrapping_add(word(&k[4..8]));
        c = c.wrapping_add(word(&k[8..12]));
        mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    if k.is_empty() {
        return c;
    }
    a = a.wrapping_add(word(&k[..k.len().min(4)]));
    if k.len() > 4 {
        b = b.wrapping_add(word(&k[4..k.len().min(8)]));
    }
    if k.len() > 8 {
        c = c.wrapping_add(word(&k[8..]));
    }
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(14));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(11));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(25));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(16));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(4));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(14));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(24));
    c
}

/// Create `path` in the latest file format (superblock 3, groups with link info messages).
fn create_latest_format(path: &Path) {
    use hdf5_sys::{h5f, h5p};
    let _g = fork_guard();
    let _l = h5::lock();
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; the property list and file ids are checked and closed.
    unsafe {
        let fapl = h5p::H5Pcreate(*h5p::H5P_CLS_FILE_ACCESS);
        assert!(fapl >= 0);
        assert!(
            h5p::H5Pset_libver_bounds(fapl, h5f::H5F_LIBVER_LATEST, h5f::H5F_LIBVER_LATEST) >= 0
        );
        let f = h5f::H5Fcreate(c.as_ptr(), h5f::H5F_ACC_TRUNC, h5p::H5P_DEFAULT, fapl);
        assert!(f >= 0, "H5Fcreate {}", path.display());
        assert!(h5f::H5Fclose(f) >= 0);
        h5p::H5Pclose(fapl);
    }
}

#[test]
fn corrupt_link_count_is_not_trusted() {
    let c = Case::new();
    // Twelve links in the root group: more than the 8 of compact storage, so they are kept
    // in dense storage, indexed by a version 2 B-tree whose header records their count.
    let good = c.path("links.hdf5");
    create_latest_format(&good);
    write_raw_gems(&good, 10, 10, 10, 10, None);
    let names: Vec<String> = (0..10).map(|i| format!("col{i:02}")).collect();
    let data = vec![1.0f64; 10];
    let cols: Vec<RawDs> = names
        .iter()
        .map(|n| RawDs {
            name: n,
            float32: true,
            dims: &[10],
            maxdims: &[10],
            chunk: &[10],
            fill: None,
            data: &data,
        })
        .collect();
    write_raw(&good, &cols);
    let bytes = std::fs::read(&good).unwrap();
    // The B-tree header: "BTHD", version 0, type 5 (link name index), node size u32, record
    // size u16, depth u16, split %, merge %, root address u64, root records u16, total
    // records u64 (at 26), checksum u32 (at 34, over the 34 bytes before it).
    let at: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"BTHD")
        .map(|(p, _)| p)
        .collect();
    assert_eq!(at.len(), 1, "one v2 B-tree (the link name index)");
    let p = at[0];
    assert_eq!(&bytes[p + 4..p + 6], [0, 5], "version 0, link name index");
    assert_eq!(
        u64::from_le_bytes(bytes[p + 26..p + 34].try_into().unwrap()),
        12
    );
    let stored = u32::from_le_bytes(bytes[p + 34..p + 38].try_into().unwrap());
    assert_eq!(lookup3(&bytes[p..p + 34]), stored, "checksum reproduced");

    let reference = c.path("reference");
    build_limited(&[&good], &reference, "native", &[]).expect_code(0);
    let want = read_manifest(&reference)["dataset_digest"].clone();
    for count in [13u64, 1 << 62] {
        let bad = c.path(&format!("count-{count}.hdf5"));
        edited_copy(&good, &bad, |b| {
            b[p + 26..p + 34].copy_from_slice(&count.to_le_bytes());
            let sum = lookup3(&b[p..p + 34]);
            b[p + 34..p + 38].copy_from_slice(&sum.to_le_bytes());
        });
        // The links themselves are intact: the file converts, the count is never used.
        for decode in DECODERS {
            let root = c.path(&format!("count-{count}-{decode}"));
            build_limited(&[&bad], &root, decode, &[]).expect_code(0);
            let m = read_manifest(&root);
            assert_eq!(
                m["dataset_digest"], want,
                "count {count}, --decode {decode}"
            );
            assert_eq!(m["counts"]["written"], 10);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Config files: every bad one exits 2 naming the file and, where there is one, the key with
// its line and column, before anything is written. (An unknown key: cli_config.rs.)

#[test]
fn bad_config_files_name_file_and_key() {
    let c = Case::new();
    let input = synth_input(&c.path("in.hdf5"), "gems", 20, 0.0, 1);
    let root = c.path("out");
    let run_with = |cfg: &Path| {
        let mut cmd = msms_command();
        cmd.arg("build-shards")
            .arg("--config")
            .arg(cfg)
            .arg("--input-hdf5")
            .arg(&input.path)
            .arg("--output-root")
            .arg(&root);
        run_command(cmd)
    };
    // (YAML, the message after `path:`)
    let cases: &[(&str, &str)] = &[
        // Wrong types.
        (
            "profile:\n  batch_size: many\n",
            "2:15: profile.batch_size: invalid type: string \"many\", expected a whole number >= 1",
        ),
        (
            "profile:\n  num_workers: 1.5\n",
            "2:16: profile.num_workers: invalid type: floating point `1.5`, expected a whole number >= 1",
        ),
        (
            "profile:\n  shard_size: [1]\n",
            "2:15: profile.shard_size: invalid type: sequence, expected a size such as 1GB, 512MiB or 1048576",
        ),
        (
            "processing:\n  min_peaks: true\n",
            "2:14: processing.min_peaks: invalid type: boolean `true`, expected a whole number >= 0",
        ),
        (
            "inputs: a.hdf5\n",
            "1:9: inputs: invalid type: string \"a.hdf5\", expected a sequence",
        ),
        (
            "profile: 4\n",
            "1:10: profile: invalid type: integer `4`, expected a mapping of profile settings",
        ),
        (
            "- local\n",
            "1:1: invalid type: sequence, expected a mapping of settings (mode, inputs, output_root, profile, processing, logging)",
        ),
        // Negative (and zero) sizes and counts.
        (
            "profile:\n  shard_size: -5\n",
            "2:15: profile.shard_size: size must be greater than zero",
        ),
        (
            "profile:\n  shard_size: -5MB\n",
            "2:15: profile.shard_size: invalid size \"-5MB\": must be greater than zero",
        ),
        (
            "profile:\n  batch_size: -1\n",
            "2:15: profile.batch_size: must be at least 1, got -1",
        ),
        (
            "profile:\n  num_workers: -2\n",
            "2:16: profile.num_workers: must be at least 1, got -2",
        ),
        (
            "profile:\n  writers: 0\n",
            "2:12: profile.writers: must be at least 1, got 0",
        ),
        (
            "processing:\n  max_spectra: -1\n",
            "2:16: processing.max_spectra: must be at least 1, got -1",
        ),
        (
            "profile:\n  batch_size: 99999999999999999999999\n",
            "2:15: profile.batch_size: invalid type: integer `99999999999999999999999` as u128, expected a whole number >= 1",
        ),
    ];
    for (i, (yaml, want)) in cases.iter().enumerate() {
        let cfg = c.path(&format!("bad {i}.yaml"));
        std::fs::write(&cfg, yaml).unwrap();
        let run = run_with(&cfg);
        let want = format!("{}:{want}", cfg.display());
        assert_refusal_message(&run, &cfg, &[&want]);
        assert_eq!(run.stderr.lines().count(), 1, "{yaml:?}: {}", run.stderr);
        assert!(!root.exists(), "{yaml:?}: output root created");
    }

    // Unreadable: missing, a directory, not UTF-8.
    let missing = c.path("missing.yaml");
    let dir = c.path("dir.yaml");
    std::fs::create_dir(&dir).unwrap();
    let binary = c.path("binary.yaml");
    std::fs::write(&binary, b"profile:\n  batch_size: \xff\xfe\n").unwrap();
    for cfg in [&missing, &dir, &binary] {
        let run = run_with(cfg);
        let want = format!("cannot read config file {}", cfg.display());
        assert_refusal_message(&run, cfg, &[&want]);
        assert!(!root.exists(), "{}: output root created", cfg.display());
    }
}
