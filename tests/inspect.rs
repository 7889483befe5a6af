//! `msms inspect FILE [--json]`: the real binary on small generated files. Every dataset is
//! listed with dtype, shape, chunk shape and filters; raw bytes agree with product(shape) ×
//! element size, and the human table with the JSON (the stored bytes, chunk counts and
//! filter pipelines are checked against h5py's own view of the file, an independent reader,
//! in tests/python/test_twins.py); the estimate is checked by its properties (time = spectra
//! ÷ rate, faster with more workers, capped when the spectrum falls back); the decode
//! path names the libhdf5 fallback and its reason where the memory map cannot be used; a
//! file that is not GeMS-like is listed and then refused (exit 2); a file that is not HDF5
//! is refused (exit 2) naming it.

mod common;

use std::ffi::CString;
use std::path::Path;

use common::*;
use msms_shards::read::h5::{self, Storage, WriteType};
use serde_json::Value;

/// `msms inspect FILE EXTRA...`.
fn inspect(file: &Path, extra: &[&str]) -> Run {
    let mut cmd = msms_command();
    cmd.arg("inspect").arg(file).args(extra);
    run_command(cmd)
}

/// `msms inspect FILE --json`, parsed; the exit code must be `code`.
#[track_caller]
fn inspect_json(file: &Path, code: i32) -> Value {
    let run = inspect(file, &["--json"]);
    run.expect_code(code);
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", run.stdout))
}

/// `msms inspect FILE --json EXTRA...`, parsed; the exit code must be 0.
#[track_caller]
fn inspect_json_with(file: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let run = inspect(file, &args);
    run.expect_code(0);
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", run.stdout))
}

/// `n` with commas between thousands, as the human report prints rates (`216,300`).
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The dataset object `name` of a report.
#[track_caller]
fn dataset<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["datasets"]
        .as_array()
        .expect("datasets")
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no dataset {name} in {report:#}"))
}

/// The table row of `name` in the human report (the line that starts with it).
#[track_caller]
fn table_row<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| {
            l.strip_prefix("  ")
                .and_then(|r| r.strip_prefix(name))
                .is_some_and(|r| r.starts_with("  "))
        })
        .unwrap_or_else(|| panic!("no table row for {name}:\n{stdout}"))
}

/// The line of `name` in the decode-path section.
#[track_caller]
fn decode_line<'a>(stdout: &'a str, name: &str) -> &'a str {
    let section = stdout
        .split("decode paths (--decode native):\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no decode section:\n{stdout}"));
    section
        .lines()
        .take_while(|l| !l.is_empty())
        .find(|l| l.trim_start().starts_with(&format!("{name}  ")))
        .unwrap_or_else(|| panic!("no decode line for {name}:\n{stdout}"))
}

const GEMS_DATASETS: [(&str, &str, &[u64], u64); 7] = [
    // name, dtype, trailing dims, element bytes
    ("RT", "float32", &[], 4),
    ("charge", "int8", &[], 1),
    ("instrument accuracy est.", "float32", &[], 4),
    ("lsh", "int64", &[], 8),
    ("name", "vlen-str", &[], 16),
    ("precursor_mz", "float32", &[], 4),
    ("spectrum", "float64", &[2, 128], 8),
];

#[test]
fn human_report_names_every_dataset_with_dtype_shape_chunks_filters_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gems.hdf5");
    let n = 1500; // two row chunks, the second partial
    synth_input(&file, "gems", n, 0.0, 7);
    let run = inspect(&file, &[]);
    run.expect_code(0);
    let out = &run.stdout;
    assert!(
        out.starts_with(&format!("{}: HDF5, ", file.display())),
        "{out}"
    );
    let json = inspect_json(&file, 0);
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(
        out.contains(&format!("({size} bytes), 7 datasets")),
        "{out}"
    );
    for (name, dtype, rest, elem) in GEMS_DATASETS {
        let row = table_row(out, name);
        let cells: Vec<&str> = row[2 + name.len()..].split_whitespace().collect();
        let shape = std::iter::once(n)
            .chain(rest.iter().copied())
            .collect::<Vec<_>>();
        let tuple = |v: &[u64]| match v {
            [x] => format!("({x},)"),
            _ => format!(
                "({})",
                v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
            ),
        };
        let chunk = std::iter::once(1024)
            .chain(rest.iter().copied())
            .collect::<Vec<_>>();
        let text = cells.join(" ");
        assert!(
            text.starts_with(&format!(
                "{dtype} {} {} deflate(4) ",
                tuple(&shape),
                tuple(&chunk)
            )),
            "{name}: {row}"
        );
        // stored, raw, ratio are the last three cells: the JSON's figures (which
        // tests/python/test_twins.py checks against h5py), raw also by hand.
        let k = cells.len();
        let stored: u64 = cells[k - 3].parse().unwrap();
        let raw: u64 = cells[k - 2].parse().unwrap();
        assert_eq!(raw, shape.iter().product::<u64>() * elem, "{name} raw");
        let d = dataset(&json, name);
        assert_eq!(stored, d["stored_bytes"], "{name} stored");
        assert!(stored > 0 && stored < size, "{name} stored {stored}");
        let ratio = format!("{:.2}x", d["ratio"].as_f64().unwrap());
        assert_eq!(cells[k - 1], ratio, "{name} ratio");
    }
    // The mapping as build-shards prints it, then the decode paths and the estimate.
    assert!(
        out.contains("GeMS mapping (output column <- dataset):"),
        "{out}"
    );
    assert!(out.contains("mz, intensity <- spectrum ["), "{out}");
    assert!(out.contains("precursor_mz <- precursor_mz ["), "{out}");
    assert!(
        decode_line(out, "spectrum").ends_with("mapped (deflate decoded in-process)"),
        "{out}"
    );
    assert!(
        decode_line(out, "name").ends_with("libhdf5 (strings are always read through libhdf5)"),
        "{out}"
    );
    assert!(!out.contains("fallback"), "{out}");
    assert!(
        out.contains("\nestimated conversion: ~") && out.contains(" per 100k spectra ("),
        "{out}"
    );
    // The estimate as the JSON gives it (its figures are checked in `json_for_a_gems_file`).
    let e = &json["estimate"];
    let rate = e["spectra_per_second"].as_f64().unwrap() as u64;
    assert!(
        out.contains(&format!(" spectra ({}/s)\n", thousands(rate))),
        "{rate}: {out}"
    );
    assert!(
        out.contains(&format!("\n  model: {}\n", e["model"].as_str().unwrap())),
        "{out}"
    );
    assert!(
        e["model"]
            .as_str()
            .unwrap()
            .starts_with("1,500 spectra / ("),
        "{e:#}"
    );
    assert!(out.ends_with("convertible: yes\n"), "{out}");
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn json_for_a_gems_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gems.hdf5");
    let n = 2100;
    synth_input(&file, "gems", n, 0.0, 8);
    let r = inspect_json(&file, 0);
    assert_eq!(r["format"], "msms-inspect");
    assert_eq!(r["format_version"], 1);
    assert_eq!(r["path"], file.display().to_string());
    assert_eq!(
        r["file_bytes"],
        std::fs::metadata(&file).unwrap().len(),
        "{r:#}"
    );
    let names: Vec<&str> = r["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        GEMS_DATASETS.iter().map(|d| d.0).collect::<Vec<_>>(),
        "every dataset, in name order"
    );
    let (mut stored_sum, mut raw_sum) = (0, 0);
    for (name, dtype, rest, elem) in GEMS_DATASETS {
        let d = dataset(&r, name);
        let shape: Vec<u64> = std::iter::once(n).chain(rest.iter().copied()).collect();
        let chunk: Vec<u64> = std::iter::once(1024).chain(rest.iter().copied()).collect();
        assert_eq!(d["dtype"], dtype, "{name}");
        assert_eq!(d["shape"], serde_json::json!(shape), "{name}");
        assert_eq!(d["layout"], "chunked", "{name}");
        assert_eq!(d["chunk_shape"], serde_json::json!(chunk), "{name}");
        assert_eq!(
            d["filters"],
            serde_json::json!([{"name": "deflate", "id": 1, "params": [4],
                "reader": if dtype.contains("str") { "libhdf5" } else { "native" }}]),
            "{name}"
        );
        // 2100 rows in chunks of 1024: 3 chunks, all written by synth. The stored bytes are
        // checked against h5py in tests/python/test_twins.py; here: present, within the
        // file, and for the zero-padded peak tensor smaller than raw (random lsh values do
        // not deflate).
        assert_eq!(
            d["chunks"],
            serde_json::json!({"allocated": 3, "total": 3}),
            "{name}"
        );
        let raw = shape.iter().product::<u64>() * elem;
        let stored = d["stored_bytes"].as_u64().unwrap();
        let file_bytes = r["file_bytes"].as_u64().unwrap();
        assert!(stored > 0 && stored < file_bytes, "{name}: stored {stored}");
        if name == "spectrum" {
            assert!(stored < raw / 2, "{name}: stored {stored}, raw {raw}");
        }
        assert_eq!(d["raw_bytes"], raw, "{name}");
        let ratio = d["ratio"].as_f64().unwrap();
        assert!(
            (ratio - raw as f64 / stored as f64).abs() <= 0.005,
            "{name}"
        );
        assert!(d["error"].is_null(), "{name}");
        stored_sum += stored;
        raw_sum += raw;
    }
    assert_eq!(r["totals"]["stored_bytes"], stored_sum);
    assert_eq!(r["totals"]["raw_bytes"], raw_sum);
    assert!(stored_sum < r["file_bytes"].as_u64().unwrap());

    let spec = dataset(&r, "spectrum");
    assert_eq!(spec["column"], "mz, intensity, num_peaks");
    assert_eq!(spec["decode"]["path"], "mapped");
    assert_eq!(spec["decode"]["fallback"], false);
    assert_eq!(
        spec["decode"]["detail"],
        "mapped, 3 chunks of [1024, 2, 128], deflate"
    );
    assert_eq!(dataset(&r, "RT")["column"], "rt");
    assert_eq!(
        dataset(&r, "instrument accuracy est.")["column"],
        "instrument_accuracy_est"
    );
    let name = dataset(&r, "name");
    assert_eq!(name["decode"]["path"], "libhdf5");
    assert_eq!(name["decode"]["fallback"], false);

    assert_eq!(r["convertible"], true);
    assert!(r["refusal"].is_null());
    let m = &r["mapping"];
    assert_eq!(m["spectra"], n);
    assert_eq!(
        m["spectrum"],
        serde_json::json!({"dataset": "spectrum", "orientation": "(N, 2, P)",
                           "dtype": "float64", "peak_slots": 128})
    );
    let col = |c: &str| {
        m["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["column"] == c)
            .unwrap_or_else(|| panic!("no column {c}"))["dataset"]
            .clone()
    };
    assert_eq!(col("mz"), "spectrum");
    assert_eq!(col("precursor_mz"), "precursor_mz");
    assert_eq!(col("rt"), "RT");
    assert_eq!(col("instrument_accuracy_est"), "instrument accuracy est.");
    assert_eq!(col("name"), "name");
    assert_eq!(m["passthrough"], serde_json::json!([]));
    assert_eq!(m["row_bytes"], 2240);

    // The estimate: the gems class, mapped, for the workers assumed. Its rate model is not
    // recomputed here; what must hold whatever the measured constants: time = spectra ÷
    // rate (the rate rounded to whole spectra per second in the JSON), and the benchmark's
    // row width (2240 bytes) is not slowed down.
    let e = &r["estimate"];
    assert_eq!(e["input_class"], "deflate");
    assert_eq!(e["spectrum_decode"], "mapped");
    assert_eq!(e["row_scale"], 1.0);
    let w = e["workers"].as_u64().unwrap();
    let cores = e["cores"].as_u64().unwrap();
    assert_eq!(w, cores.min(4));
    assert_eq!(e["workers_from"], "local mode");
    let rate = e["spectra_per_second"].as_f64().unwrap();
    assert!(rate >= 1.0, "{e:#}");
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * b;
    assert!(
        close(e["seconds"].as_f64().unwrap(), n as f64 / rate),
        "{e:#}"
    );
    assert!(
        close(e["seconds_per_100k"].as_f64().unwrap(), 100_000.0 / rate),
        "{e:#}"
    );
    // Twice the spectra of the same kind: the same rate, twice the time.
    let file2 = dir.path().join("gems2.hdf5");
    synth_input(&file2, "gems", 2 * n, 0.0, 8);
    let e2 = &inspect_json(&file2, 0)["estimate"];
    assert_eq!(e2["spectra_per_second"], e["spectra_per_second"], "{e2:#}");
    assert!(
        close(
            e2["seconds"].as_f64().unwrap(),
            2.0 * e["seconds"].as_f64().unwrap()
        ),
        "{e2:#}"
    );

    // --num-workers changes only the estimate, and more workers are estimated faster.
    let mut rates = Vec::new();
    for workers in ["1", "2", "4"] {
        let r_w = inspect_json_with(&file, &["--num-workers", workers]);
        assert_eq!(r_w["estimate"]["workers"], workers.parse::<u64>().unwrap());
        assert_eq!(r_w["estimate"]["workers_from"], "--num-workers");
        assert_eq!(r_w["datasets"], r["datasets"]);
        assert_eq!(r_w["mapping"], r["mapping"]);
        rates.push(r_w["estimate"]["spectra_per_second"].as_f64().unwrap());
    }
    assert!(
        rates[0] >= 1.0 && rates[0] < rates[1] && rates[1] < rates[2],
        "{rates:?}"
    );
}

#[test]
fn json_for_a_contiguous_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("contiguous.hdf5");
    let n = 700;
    synth_input(&file, "contiguous", n, 0.0, 9);
    let r = inspect_json(&file, 0);
    for (name, dtype, rest, elem) in GEMS_DATASETS {
        let d = dataset(&r, name);
        let shape: Vec<u64> = std::iter::once(n).chain(rest.iter().copied()).collect();
        let raw = shape.iter().product::<u64>() * elem;
        assert_eq!(d["dtype"], dtype, "{name}");
        assert_eq!(d["shape"], serde_json::json!(shape), "{name}");
        assert_eq!(d["layout"], "contiguous", "{name}");
        assert!(d["chunk_shape"].is_null(), "{name}");
        assert!(d["chunks"].is_null(), "{name}");
        assert_eq!(d["filters"], serde_json::json!([]), "{name}");
        // Contiguous and fully written: exactly the raw bytes are stored.
        assert_eq!(d["raw_bytes"], raw, "{name}");
        assert_eq!(d["stored_bytes"], raw, "{name}");
        assert_eq!(d["ratio"], 1.0, "{name}");
    }
    let spec = dataset(&r, "spectrum");
    assert_eq!(spec["decode"]["path"], "mapped");
    assert_eq!(spec["decode"]["detail"], "mapped, contiguous");
    assert_eq!(r["estimate"]["input_class"], "contiguous");
    assert_eq!(r["convertible"], true);

    // The human table says `contiguous` where the chunk shape would be, and `-` for filters.
    let run = inspect(&file, &[]);
    run.expect_code(0);
    let row = table_row(&run.stdout, "spectrum");
    assert!(
        row.split_whitespace().collect::<Vec<_>>().starts_with(&[
            "spectrum",
            "float64",
            "(700,",
            "2,",
            "128)",
            "contiguous",
            "-"
        ]),
        "{row}"
    );
    assert!(
        decode_line(&run.stdout, "spectrum")
            .ends_with("mapped (no filters: copied from the map in-process)"),
        "{}",
        run.stdout
    );
}

#[test]
fn shuffle_layout_lists_filter_parameters_and_embedding_passthrough() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shuffle.hdf5");
    synth_input(&file, "shuffle,float32,embedding", 300, 0.0, 10);
    let run = inspect(&file, &[]);
    run.expect_code(0);
    let out = &run.stdout;
    let row = table_row(out, "spectrum");
    assert!(
        row.contains("  float32  ")
            && row.contains("  (300, 2, 128)  (300, 2, 128)  fletcher32, shuffle, deflate(4)  "),
        "{row}"
    );
    // HDF5 refuses shuffle and fletcher32 on variable-length strings.
    assert!(table_row(out, "name").contains("  deflate(4)  "), "{out}");
    assert!(
        decode_line(out, "spectrum")
            .ends_with("mapped (deflate+shuffle+fletcher32 decoded in-process)"),
        "{out}"
    );
    assert!(out.contains("other objects: metadata (group)"), "{out}");
    assert!(
        out.contains("skipped metadata: group (per-file arrays, not per spectrum)"),
        "{out}"
    );
    assert!(
        out.contains("DreaMS_embedding <- DreaMS_embedding [") && out.contains("(pass-through)"),
        "{out}"
    );

    let r = inspect_json(&file, 0);
    let d = dataset(&r, "spectrum");
    assert_eq!(
        d["filters"],
        serde_json::json!([
            {"name": "fletcher32", "id": 3, "params": [], "reader": "native"},
            {"name": "shuffle", "id": 2, "params": [4], "reader": "native"},
            {"name": "deflate", "id": 1, "params": [4], "reader": "native"},
        ])
    );
    assert_eq!(d["raw_bytes"], 300 * 2 * 128 * 4);
    let emb = dataset(&r, "DreaMS_embedding");
    assert_eq!(emb["raw_bytes"], 300 * 1024 * 4);
    assert_eq!(emb["column"], "DreaMS_embedding");
    assert_eq!(emb["decode"]["path"], "mapped");
    let m = &r["mapping"];
    assert_eq!(m["spectrum"]["dtype"], "float32");
    assert_eq!(
        m["passthrough"][0],
        serde_json::json!({"dataset": "DreaMS_embedding", "column": "DreaMS_embedding",
                           "data_type": "FixedSizeList(1024 x Float32)"})
    );
    assert_eq!(
        m["skipped"],
        serde_json::json!([{"name": "metadata",
                            "reason": "group (per-file arrays, not per spectrum)"}])
    );
    assert_eq!(
        r["other_objects"],
        serde_json::json!([{"name": "metadata", "kind": "group"}])
    );
    // Wider rows than the benchmark's slow the estimate down.
    let e = &r["estimate"];
    assert!(e["row_bytes"].as_u64().unwrap() > 2240);
    assert!(e["row_scale"].as_f64().unwrap() < 0.3, "{e:#}");
}

/// Rows of the hand-made file: 3 chunks of 64.
const HN: u64 = 150;
const HCHUNK: u64 = 64;

/// A GeMS file whose datasets take the libhdf5 fallback for every reason a writer can
/// produce with the h5 module, plus a scale-offset filtered pass-through column.
fn write_fallback_file(path: &Path) {
    {
        let _g = fork_guard();
        let f = h5::File::create(path).unwrap();
        let chunked = |rest: &[u64], deflate: Option<u8>| Storage::Chunked {
            chunk: std::iter::once(HCHUNK)
                .chain(rest.iter().copied())
                .collect(),
            deflate,
            shuffle: false,
            fletcher32: false,
        };
        let spec = f
            .create_dataset(
                "spectrum",
                &WriteType::of::<f64>(),
                &[HN, 2, 4],
                &chunked(&[2, 4], Some(1)),
            )
            .unwrap();
        let mut peaks = vec![0.0f64; (HN * 8) as usize];
        for r in 0..HN as usize {
            peaks[r * 8] = 100.0 + r as f64;
            peaks[r * 8 + 4] = 10.0;
        }
        spec.write_rows(0, HN, &peaks).unwrap();
        // Big-endian float64: converted by libhdf5.
        let f64be = {
            let _l = h5::lock();
            WriteType::Numeric(*hdf5_sys::h5t::H5T_IEEE_F64BE)
        };
        let p = f
            .create_dataset("precursor_mz", &f64be, &[HN], &chunked(&[], Some(1)))
            .unwrap();
        p.write_rows(0, HN, &vec![500.0f64; HN as usize]).unwrap();
        // Only the first chunk written: the rest read as the fill value.
        let rt = f
            .create_dataset("RT", &WriteType::of::<f32>(), &[HN], &chunked(&[], Some(1)))
            .unwrap();
        rt.write_rows(0, HCHUNK, &vec![1.0f32; HCHUNK as usize])
            .unwrap();
        // Never written, contiguous: no storage allocated.
        f.create_dataset(
            "scan_number",
            &WriteType::of::<i32>(),
            &[HN],
            &Storage::Contiguous,
        )
        .unwrap();
    }
    add_scaleoffset_dataset(path, "file_id");
}

/// Add an int32 (HN,) dataset with the scale-offset filter (not decoded from the map) to
/// the file at `path`, through libhdf5 directly (the h5 module only writes deflate,
/// shuffle and fletcher32).
fn add_scaleoffset_dataset(path: &Path, name: &str) {
    use hdf5_sys::{h5d, h5f, h5p, h5s, h5t, h5z};
    let _g = fork_guard();
    let _l = h5::lock();
    let cpath = CString::new(path.to_str().unwrap()).unwrap();
    let cname = CString::new(name).unwrap();
    let data: Vec<i32> = (0..HN as i32).map(|i| 1000 + i).collect();
    // SAFETY: plain libhdf5 calls under the h5 module's lock, on ids created here and
    // closed before returning; the buffers outlive the calls that read them.
    unsafe {
        let file = h5f::H5Fopen(cpath.as_ptr(), h5f::H5F_ACC_RDWR, h5p::H5P_DEFAULT);
        assert!(file >= 0, "H5Fopen");
        let dims = [HN];
        let space = h5s::H5Screate_simple(1, dims.as_ptr(), std::ptr::null());
        let dcpl = h5p::H5Pcreate(*h5p::H5P_CLS_DATASET_CREATE);
        let chunk = [HCHUNK];
        assert!(h5p::H5Pset_chunk(dcpl, 1, chunk.as_ptr()) >= 0);
        assert!(h5p::H5Pset_scaleoffset(dcpl, h5z::H5Z_SO_INT, 0) >= 0);
        let ds = h5d::H5Dcreate2(
            file,
            cname.as_ptr(),
            *h5t::H5T_NATIVE_INT32,
            space,
            h5p::H5P_DEFAULT,
            dcpl,
            h5p::H5P_DEFAULT,
        );
        assert!(ds >= 0, "H5Dcreate2");
        assert!(
            h5d::H5Dwrite(
                ds,
                *h5t::H5T_NATIVE_INT32,
                h5s::H5S_ALL,
                h5s::H5S_ALL,
                h5p::H5P_DEFAULT,
                data.as_ptr().cast(),
            ) >= 0
        );
        h5d::H5Dclose(ds);
        h5p::H5Pclose(dcpl);
        h5s::H5Sclose(space);
        h5f::H5Fclose(file);
    }
}

#[test]
fn fallbacks_show_libhdf5_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fallback.hdf5");
    write_fallback_file(&file);
    let run = inspect(&file, &[]);
    run.expect_code(0);
    let out = &run.stdout;
    let want = [
        ("spectrum", "mapped (deflate decoded in-process)"),
        (
            "precursor_mz",
            "libhdf5 fallback: stored type float64 is converted by libhdf5",
        ),
        (
            "RT",
            "libhdf5 fallback: 1 of 3 chunks allocated (the rest read as fill values)",
        ),
        (
            "scan_number",
            "libhdf5 fallback: no storage allocated (fill values)",
        ),
        (
            "file_id",
            "libhdf5 fallback: filter scaleoffset is decoded by libhdf5",
        ),
    ];
    for (name, path) in want {
        let line = decode_line(out, name);
        assert!(line.ends_with(path), "{name}: {line}\n{out}");
    }
    // The same reasons build-shards gives in its notices.
    let root = dir.path().join("out");
    let b = build(&[&file], &root, &[]);
    b.expect_code(0);
    for (name, path) in want.iter().skip(1) {
        let reason = path.strip_prefix("libhdf5 fallback: ").unwrap();
        let notice = format!(
            "notice: {}: {name}: {reason}; read through libhdf5",
            file.display()
        );
        assert!(b.stderr.contains(&notice), "{notice}\n{}", b.stderr);
    }
    // Table: the scale-offset filter with its parameters, the partial allocation, nothing
    // stored for the unwritten dataset.
    assert!(
        table_row(out, "file_id").contains("  scaleoffset(2, 0) [read by libhdf5]  "),
        "{}",
        table_row(out, "file_id")
    );
    assert!(
        out.contains("\n  RT: 1 of 3 chunks allocated (the rest read as fill values)\n"),
        "{out}"
    );
    let scan: Vec<&str> = table_row(out, "scan_number").split_whitespace().collect();
    assert_eq!(
        scan,
        [
            "scan_number",
            "int32",
            "(150,)",
            "contiguous",
            "-",
            "0",
            "600",
            "-"
        ]
    );

    let r = inspect_json(&file, 0);
    let p = dataset(&r, "precursor_mz");
    assert_eq!(
        p["decode"],
        serde_json::json!({"path": "libhdf5", "fallback": true,
                           "detail": "stored type float64 is converted by libhdf5"})
    );
    let rt = dataset(&r, "RT");
    assert_eq!(
        rt["chunks"],
        serde_json::json!({"allocated": 1, "total": 3})
    );
    // One chunk of 64 equal floats, deflated: something, and less than its 256 raw bytes.
    let rt_stored = rt["stored_bytes"].as_u64().unwrap();
    assert!(rt_stored > 0 && rt_stored < HCHUNK * 4, "{rt:#}");
    assert_eq!(rt["raw_bytes"], HN * 4);
    let scan = dataset(&r, "scan_number");
    assert_eq!(scan["stored_bytes"], 0);
    assert!(scan["ratio"].is_null());
    let fid = dataset(&r, "file_id");
    assert_eq!(fid["filters"][0]["name"], "scaleoffset");
    assert_eq!(fid["filters"][0]["id"], 6);
    assert_eq!(fid["decode"]["fallback"], true);
    // The spectrum is still mapped: the estimate is not capped.
    assert_eq!(r["estimate"]["spectrum_decode"], "mapped");
}

/// A 128-row file whose spectrum has chunks of 64 rows, of which the first `written_rows`
/// rows are written (64: the second chunk is never allocated, so the spectrum falls back
/// to libhdf5; 128: fully written, decoded from the map).
fn write_two_chunk_file(path: &Path, written_rows: u64) {
    let _g = fork_guard();
    let f = h5::File::create(path).unwrap();
    let chunked = |chunk: Vec<u64>| Storage::Chunked {
        chunk,
        deflate: Some(1),
        shuffle: false,
        fletcher32: false,
    };
    let s = f
        .create_dataset(
            "spectrum",
            &WriteType::of::<f64>(),
            &[128, 2, 4],
            &chunked(vec![64, 2, 4]),
        )
        .unwrap();
    s.write_rows(0, written_rows, &vec![0.0f64; written_rows as usize * 8])
        .unwrap();
    let p = f
        .create_dataset(
            "precursor_mz",
            &WriteType::of::<f32>(),
            &[128],
            &chunked(vec![64]),
        )
        .unwrap();
    p.write_rows(0, 128, &vec![500.0f32; 128]).unwrap();
}

#[test]
fn spectrum_fallback_caps_the_estimate_at_libhdf5s_rate() {
    let dir = tempfile::tempdir().unwrap();
    let partial = dir.path().join("partial.hdf5");
    let full = dir.path().join("full.hdf5");
    write_two_chunk_file(&partial, 64);
    write_two_chunk_file(&full, 128);
    let r = inspect_json(&partial, 0);
    let d = dataset(&r, "spectrum");
    assert_eq!(d["decode"]["path"], "libhdf5");
    assert_eq!(
        d["decode"]["detail"],
        "1 of 2 chunks allocated (the rest read as fill values)"
    );
    assert_eq!(r["estimate"]["spectrum_decode"], "libhdf5");
    assert_eq!(
        inspect_json(&full, 0)["estimate"]["spectrum_decode"],
        "mapped"
    );
    // The same file shape, same class, same row width: only the decode path differs. The
    // libhdf5 reader is one thread, so its rate does not grow with the workers and is never
    // above the mapped rate.
    let rate = |file: &Path, workers: &str| {
        let e = &inspect_json_with(file, &["--num-workers", workers])["estimate"];
        assert_eq!(e["input_class"], "deflate", "{e:#}");
        e["spectra_per_second"].as_f64().unwrap()
    };
    let (capped1, capped8) = (rate(&partial, "1"), rate(&partial, "8"));
    let (mapped1, mapped8) = (rate(&full, "1"), rate(&full, "8"));
    assert!(capped1 >= 1.0, "{capped1}");
    assert_eq!(
        capped8, capped1,
        "a single reader thread: no gain from workers"
    );
    assert!(capped1 <= mapped1, "{capped1} > {mapped1}");
    assert!(mapped1 < mapped8, "{mapped1} >= {mapped8}");
    assert!(capped8 < mapped8, "{capped8} >= {mapped8}");
}

#[test]
fn hdf5_that_is_not_gems_is_listed_then_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("other.hdf5");
    {
        let _g = fork_guard();
        let f = h5::File::create(&file).unwrap();
        let d = f
            .create_dataset(
                "temperature",
                &WriteType::of::<f32>(),
                &[10, 3],
                &Storage::Contiguous,
            )
            .unwrap();
        d.write_rows(0, 10, &[1.5f32; 30]).unwrap();
    }
    let run = inspect(&file, &[]);
    assert_refusal_message(&run, &file, &["cannot convert", "no spectrum tensor"]);
    let row: Vec<&str> = table_row(&run.stdout, "temperature")
        .split_whitespace()
        .collect();
    assert_eq!(
        row,
        [
            "temperature",
            "float32",
            "(10,",
            "3)",
            "contiguous",
            "-",
            "120",
            "120",
            "1.00x"
        ]
    );
    assert!(run.stdout.contains("GeMS mapping: none"), "{}", run.stdout);
    assert!(
        run.stdout.contains("convertible: no: ") && run.stdout.contains("no spectrum tensor"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("estimated conversion"));

    let r = inspect_json(&file, 2);
    assert_eq!(r["convertible"], false);
    assert!(r["refusal"]
        .as_str()
        .unwrap()
        .contains("no spectrum tensor"));
    assert!(r["mapping"].is_null() && r["estimate"].is_null());
    assert_eq!(dataset(&r, "temperature")["raw_bytes"], 120);
    assert!(dataset(&r, "temperature")["decode"].is_null());
}

#[test]
fn not_hdf5_or_missing_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.hdf5");
    std::fs::write(&text, "not an HDF5 file\n").unwrap();
    for json in [false, true] {
        let run = inspect(&text, if json { &["--json"] } else { &[] });
        assert_refusal_message(&run, &text, &["msms inspect: "]);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
    let missing = dir.path().join("missing.hdf5");
    let run = inspect(&missing, &[]);
    assert_refusal_message(&run, &missing, &["cannot read", "No such file"]);
    let run = inspect(dir.path(), &[]);
    assert_refusal_message(&run, dir.path(), &["is a directory"]);
}

#[test]
fn help_documents_output_exit_codes_and_an_example() {
    let run = msms(["inspect", "--help"]);
    run.expect_code(0);
    for want in [
        "--json",
        "--num-workers",
        "Exit codes:",
        "Examples:",
        "msms inspect GeMS_C1_DreaMS.0.hdf5",
    ] {
        assert!(run.stdout.contains(want), "{want}:\n{}", run.stdout);
    }
    let run = msms(["--help"]);
    assert!(run.stdout.contains("inspect"), "{}", run.stdout);
}
