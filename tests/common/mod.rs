//! Shared helpers of the integration tests: running the `msms` binary, generating inputs,
//! an independent oracle for what every spectrum should become, and reading shards back.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use arrow::array::{Array, AsArray, FixedSizeListArray};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int32Type, Int64Type, Int8Type, SchemaRef, UInt16Type,
    UInt64Type,
};
use msms_kernels::RejectReason;
use msms_shards::commands::synth::{
    self, SynthLayout, SynthOptions, SynthReport, SynthSpectrum, SLOTS,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use sha2::{Digest, Sha256};

/// The 13 fixed output columns, in order.
pub(crate) const FIXED_COLUMNS: [&str; 13] = [
    "spectrum_id",
    "source_index",
    "source_row",
    "name",
    "precursor_mz",
    "rt",
    "charge",
    "instrument_accuracy_est",
    "lsh",
    "num_peaks",
    "mz",
    "intensity",
    "gems_format",
];

/// What a finished `msms` process did.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Panic with both streams unless the exit code is `code`.
    #[track_caller]
    pub(crate) fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code {} (want {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "the binary panicked:\n{}",
            self.stderr
        );
        self
    }
}

/// A `Command` for the binary with every inherited `MSMS_*` variable removed, so that the
/// environment of whoever runs the tests cannot change the results.
pub(crate) fn msms_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_msms"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MSMS_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Held while this test process has an HDF5 file open for writing, and while it spawns a
/// child. libhdf5 opens files without `O_CLOEXEC` and `flock`s them, so a child spawned
/// while another test thread writes a file inherits that lock and keeps it for its whole
/// life; the next `msms` opening the file then fails with "unable to lock file".
static FORK_GUARD: Mutex<()> = Mutex::new(());

/// Take [`FORK_GUARD`].
pub(crate) fn fork_guard() -> MutexGuard<'static, ()> {
    FORK_GUARD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run a prepared command to completion.
pub(crate) fn run_command(mut cmd: Command) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = {
        let _g = fork_guard();
        cmd.spawn().expect("spawn msms")
    };
    let out = child.wait_with_output().expect("wait for msms");
    Run {
        code: out.status.code().expect("msms exited by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `msms ARGS...`.
pub(crate) fn msms<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = msms_command();
    cmd.args(args);
    run_command(cmd)
}

/// `msms build-shards --input-hdf5 INPUTS... --output-root ROOT EXTRA...`, not yet run.
pub(crate) fn build_command(inputs: &[&Path], root: &Path, extra: &[&str]) -> Command {
    let mut cmd = msms_command();
    cmd.arg("build-shards").arg("--input-hdf5");
    cmd.args(inputs);
    cmd.arg("--output-root").arg(root);
    cmd.args(extra);
    cmd
}

/// `msms build-shards --input-hdf5 INPUTS... --output-root ROOT EXTRA...`, run.
pub(crate) fn build(inputs: &[&Path], root: &Path, extra: &[&str]) -> Run {
    run_command(build_command(inputs, root, extra))
}

/// One generated input file.
#[derive(Clone, Debug)]
pub(crate) struct Input {
    pub(crate) path: PathBuf,
    pub(crate) layout: SynthLayout,
    pub(crate) spectra: u64,
    pub(crate) faults: f64,
    pub(crate) seed: u64,
    pub(crate) report: SynthReport,
}

/// Generate `path` with the library's sample writer.
pub(crate) fn synth_input(
    path: &Path,
    layout: &str,
    spectra: u64,
    faults: f64,
    seed: u64,
) -> Input {
    let layout: SynthLayout = layout.parse().expect("known layout");
    let _g = fork_guard();
    let report = synth::write(
        path,
        &SynthOptions {
            spectra,
            layout: layout.clone(),
            faults,
            seed,
        },
    )
    .expect("synth::write");
    assert_eq!(report.spectra, spectra);
    Input {
        path: path.to_path_buf(),
        layout,
        spectra,
        faults,
        seed,
        report,
    }
}

/// Lowercase hex SHA-256 of a file's bytes.
pub(crate) fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    hex::encode(Sha256::digest(&bytes))
}

/// Every file under `dir` (recursively), relative paths with `/`, sorted.
pub(crate) fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap();
                out.push(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Assert `run` exited 2 (a refusal, not a panic) with a message on stderr naming `file` and
/// every one of `mentions`.
#[track_caller]
pub(crate) fn assert_refusal_message(run: &Run, file: &Path, mentions: &[&str]) {
    run.expect_code(2);
    let file_s = file.display().to_string();
    assert!(
        run.stderr.contains(&file_s),
        "message does not name {file_s}:\n{}",
        run.stderr
    );
    for m in mentions {
        assert!(
            run.stderr.contains(m),
            "message does not mention {m:?}:\n{}",
            run.stderr
        );
    }
}

/// The parsed `_manifest.json` under `root`.
pub(crate) fn read_manifest(root: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(root.join("_manifest.json")).expect("_manifest.json");
    serde_json::from_str(&text).expect("manifest is JSON")
}

// ---------------------------------------------------------------------------------------
// The oracle: what the issue says must happen to each spectrum, written independently of
// the kernels.

/// Processing settings the oracle applies.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rules {
    pub(crate) min_peaks: usize,
    pub(crate) max_precursor_mz: Option<f64>,
    pub(crate) normalize_max: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            min_peaks: 1,
            max_precursor_mz: None,
            normalize_max: true,
        }
    }
}

/// Validation as the issue states it: trailing (0, 0) entries are padding; the first reason
/// that applies, in the order. `Ok(n)` = number of real peaks.
pub(crate) fn oracle_validate(s: &SynthSpectrum, rules: &Rules) -> Result<usize, RejectReason> {
    let zero = |i: usize| s.mz[i] == 0.0 && s.intensity[i] == 0.0;
    let n = (0..SLOTS).rev().find(|&i| !zero(i)).map_or(0, |i| i + 1);
    let mz = &s.mz[..n];
    let it = &s.intensity[..n];
    if n == 0 {
        return Err(RejectReason::Empty);
    }
    if mz.iter().chain(it).any(|x| !x.is_finite()) {
        return Err(RejectReason::NonFinite);
    }
    if (0..n).any(zero) {
        return Err(RejectReason::PaddingGap);
    }
    if mz.iter().any(|&m| m <= 0.0) {
        return Err(RejectReason::NonPositiveMz);
    }
    if it.iter().any(|&x| x <= 0.0) {
        return Err(RejectReason::NonPositiveIntensity);
    }
    if mz.windows(2).any(|w| w[0] == w[1]) {
        return Err(RejectReason::DuplicateMz);
    }
    if mz.windows(2).any(|w| w[1] < w[0]) {
        return Err(RejectReason::UnsortedMz);
    }
    let p = s.precursor_mz;
    if !p.is_finite() || p <= 0.0 || rules.max_precursor_mz.is_some_and(|m| p > m) {
        return Err(RejectReason::BadPrecursor);
    }
    if n < rules.min_peaks {
        return Err(RejectReason::TooFewPeaks);
    }
    Ok(n)
}

/// One spectrum the shards must contain.
#[derive(Clone, Debug)]
pub(crate) struct Expected {
    pub(crate) spectrum_id: u64,
    pub(crate) source_index: u16,
    pub(crate) source_row: u64,
    pub(crate) spec: SynthSpectrum,
    pub(crate) mz: Vec<f64>,
    pub(crate) intensity: Vec<f32>,
    pub(crate) strings: bool,
    pub(crate) embedding: bool,
}

/// What a run over `inputs` must produce.
#[derive(Debug, Default)]
pub(crate) struct Expectation {
    pub(crate) rows: Vec<Expected>,
    pub(crate) read: u64,
    pub(crate) rejected: BTreeMap<&'static str, u64>,
}

/// The expected output of `inputs` (numbered as one sequence), under `rules`, stopping
/// after `max_spectra`. Also checks the oracle agrees with every planted fault.
pub(crate) fn expectation(
    inputs: &[&Input],
    rules: &Rules,
    max_spectra: Option<u64>,
) -> Expectation {
    let mut e = Expectation::default();
    for r in RejectReason::ALL {
        e.rejected.insert(r.as_str(), 0);
    }
    // Not a validation reason: spectra dropped by --dedup exact (none without it).
    e.rejected.insert("duplicate", 0);
    let limit = max_spectra.unwrap_or(u64::MAX);
    let mut id = 0u64;
    for (source_index, inp) in inputs.iter().enumerate() {
        for row in 0..inp.spectra {
            if id >= limit {
                return e;
            }
            let spec = synth::spectrum_at(inp.seed, row, inp.faults, inp.layout.float32);
            let verdict = oracle_validate(&spec, rules);
            // The generator plants exactly the fault it reports (checked at default rules).
            let default_verdict = oracle_validate(&spec, &Rules::default());
            match spec.fault {
                Some(RejectReason::TooFewPeaks) => {
                    assert_eq!(
                        default_verdict,
                        Ok(1),
                        "row {row}: a planted one-peak spectrum"
                    )
                }
                Some(f) => assert_eq!(default_verdict, Err(f), "row {row}: planted {f}"),
                None => assert!(default_verdict.is_ok(), "row {row}: unplanted but invalid"),
            }
            e.read += 1;
            match verdict {
                Err(r) => *e.rejected.get_mut(r.as_str()).unwrap() += 1,
                Ok(n) => {
                    let max = spec.intensity[..n]
                        .iter()
                        .copied()
                        .fold(f64::NEG_INFINITY, f64::max);
                    let intensity = spec.intensity[..n]
                        .iter()
                        .map(|&i| {
                            if rules.normalize_max {
                                (i / max) as f32
                            } else {
                                i as f32
                            }
                        })
                        .collect();
                    e.rows.push(Expected {
                        spectrum_id: id,
                        source_index: source_index as u16,
                        source_row: row,
                        mz: spec.mz[..n].to_vec(),
                        intensity,
                        spec,
                        strings: inp.layout.strings,
                        embedding: inp.layout.embedding,
                    });
                }
            }
            id += 1;
        }
    }
    e
}

// ---------------------------------------------------------------------------------------
// Reading shards back.

/// `lsh` as read back.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Lsh {
    Int(i64),
    Str(String),
    Null,
}

/// One row of a shard.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) shard: usize,
    pub(crate) spectrum_id: u64,
    pub(crate) source_index: u16,
    pub(crate) source_row: u64,
    pub(crate) name: Option<String>,
    pub(crate) precursor_mz: f64,
    pub(crate) rt: Option<f32>,
    pub(crate) charge: Option<i8>,
    pub(crate) accuracy: Option<f32>,
    pub(crate) lsh: Lsh,
    pub(crate) num_peaks: u16,
    pub(crate) mz: Vec<f64>,
    pub(crate) intensity: Vec<f32>,
    pub(crate) embedding: Option<Vec<f32>>,
    pub(crate) file_id: Option<i32>,
    pub(crate) scan_number: Option<i32>,
}

/// One shard file, read back.
#[derive(Debug)]
pub(crate) struct Shard {
    pub(crate) rows: Vec<Row>,
    pub(crate) schema: SchemaRef,
    pub(crate) key_value: HashMap<String, String>,
    pub(crate) compressions: Vec<Compression>,
    pub(crate) row_group_rows: Vec<i64>,
}

fn opt<T: Copy>(a: &dyn Array, i: usize, v: impl Fn(usize) -> T) -> Option<T> {
    (!a.is_null(i)).then(|| v(i))
}

/// Read one shard completely.
pub(crate) fn read_shard(path: &Path, shard: usize) -> Shard {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("a Parquet file");
    let meta = builder.metadata().clone();
    let schema = builder.schema().clone();
    let key_value = meta
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let compressions = meta
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns().iter().map(|c| c.compression()))
        .collect();
    let row_group_rows = meta.row_groups().iter().map(|rg| rg.num_rows()).collect();
    let reader = builder.with_batch_size(4096).build().expect("reader");
    let mut rows = Vec::new();
    for batch in reader {
        let b = batch.expect("batch decodes");
        let col = |name: &str| b.column_by_name(name).map(|c| c.as_ref());
        let req = |name: &str| col(name).unwrap_or_else(|| panic!("column {name}"));
        let ids = req("spectrum_id").as_primitive::<UInt64Type>();
        let src = req("source_index").as_primitive::<UInt16Type>();
        let srow = req("source_row").as_primitive::<UInt64Type>();
        let name = req("name").as_dictionary::<Int32Type>();
        let name_values = name.values().as_string::<i32>();
        let prec = req("precursor_mz").as_primitive::<Float64Type>();
        let rt = req("rt").as_primitive::<Float32Type>();
        let charge = req("charge").as_primitive::<Int8Type>();
        let acc = req("instrument_accuracy_est").as_primitive::<Float32Type>();
        let lsh = req("lsh");
        let np = req("num_peaks").as_primitive::<UInt16Type>();
        let mz = req("mz").as_list::<i32>();
        let it = req("intensity").as_list::<i32>();
        let emb = col("DreaMS_embedding").map(|c| {
            c.as_any()
                .downcast_ref::<FixedSizeListArray>()
                .expect("DreaMS_embedding is a fixed-size list")
        });
        let file_id = col("file_id").map(|c| c.as_primitive::<Int32Type>());
        let scan = col("scan_number").map(|c| c.as_primitive::<Int32Type>());
        for i in 0..b.num_rows() {
            rows.push(Row {
                shard,
                spectrum_id: ids.value(i),
                source_index: src.value(i),
                source_row: srow.value(i),
                name: (!name.is_null(i))
                    .then(|| name_values.value(name.keys().value(i) as usize).to_string()),
                precursor_mz: prec.value(i),
                rt: opt(rt, i, |i| rt.value(i)),
                charge: opt(charge, i, |i| charge.value(i)),
                accuracy: opt(acc, i, |i| acc.value(i)),
                lsh: if lsh.is_null(i) {
                    Lsh::Null
                } else {
                    match lsh.data_type() {
                        DataType::Int64 => Lsh::Int(lsh.as_primitive::<Int64Type>().value(i)),
                        DataType::Utf8 => Lsh::Str(lsh.as_string::<i32>().value(i).to_string()),
                        t => panic!("lsh has type {t}"),
                    }
                },
                num_peaks: np.value(i),
                mz: mz.value(i).as_primitive::<Float64Type>().values().to_vec(),
                intensity: it.value(i).as_primitive::<Float32Type>().values().to_vec(),
                embedding: emb.map(|e| e.value(i).as_primitive::<Float32Type>().values().to_vec()),
                file_id: file_id.map(|a| a.value(i)),
                scan_number: scan.map(|a| a.value(i)),
            });
        }
    }
    Shard {
        rows,
        schema,
        key_value,
        compressions,
        row_group_rows,
    }
}

/// Every shard listed in the manifest under `root`, read in manifest order.
pub(crate) fn read_all(root: &Path) -> (serde_json::Value, Vec<Shard>) {
    let m = read_manifest(root);
    let shards = m["shards"]
        .as_array()
        .expect("shards array")
        .iter()
        .enumerate()
        .map(|(i, s)| read_shard(&root.join(s["path"].as_str().unwrap()), i))
        .collect();
    (m, shards)
}

/// All rows of all shards, in shard order.
pub(crate) fn all_rows(shards: &[Shard]) -> Vec<&Row> {
    shards.iter().flat_map(|s| &s.rows).collect()
}

fn bits64(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn bits32(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Assert `rows` are exactly `want`: same spectra, in order, each value exact.
#[track_caller]
pub(crate) fn assert_rows(rows: &[&Row], want: &[Expected]) {
    let got_ids: Vec<u64> = rows.iter().map(|r| r.spectrum_id).collect();
    let want_ids: Vec<u64> = want.iter().map(|e| e.spectrum_id).collect();
    if got_ids != want_ids {
        let got: std::collections::BTreeSet<_> = got_ids.iter().collect();
        let exp: std::collections::BTreeSet<_> = want_ids.iter().collect();
        let missing: Vec<_> = exp.difference(&got).take(10).collect();
        let extra: Vec<_> = got.difference(&exp).take(10).collect();
        panic!(
            "spectrum ids differ: {} rows, want {}; missing {missing:?}; unexpected {extra:?}; \
             in order: {}",
            got_ids.len(),
            want_ids.len(),
            got_ids.windows(2).all(|w| w[0] < w[1])
        );
    }
    for (r, e) in rows.iter().zip(want) {
        let id = e.spectrum_id;
        let s = &e.spec;
        assert_eq!(r.source_index, e.source_index, "id {id}: source_index");
        assert_eq!(r.source_row, e.source_row, "id {id}: source_row");
        assert_eq!(r.num_peaks as usize, e.mz.len(), "id {id}: num_peaks");
        assert_eq!(bits64(&r.mz), bits64(&e.mz), "id {id}: mz");
        assert_eq!(
            bits32(&r.intensity),
            bits32(&e.intensity),
            "id {id}: intensity"
        );
        assert_eq!(
            r.precursor_mz.to_bits(),
            s.precursor_mz.to_bits(),
            "id {id}: precursor_mz"
        );
        assert_eq!(r.rt.map(f32::to_bits), Some(s.rt.to_bits()), "id {id}: rt");
        assert_eq!(r.charge, Some(s.charge), "id {id}: charge");
        assert_eq!(
            r.accuracy.map(f32::to_bits),
            Some(s.accuracy.to_bits()),
            "id {id}: instrument_accuracy_est"
        );
        let lsh = if e.strings {
            Lsh::Str(synth::lsh_hex(s.lsh))
        } else {
            Lsh::Int(s.lsh)
        };
        assert_eq!(r.lsh, lsh, "id {id}: lsh");
        assert_eq!(r.name.as_deref(), Some(s.name.as_str()), "id {id}: name");
        if e.embedding {
            let want: Vec<f32> = synth::embedding_row(e.source_row).collect();
            let got = r.embedding.as_ref().expect("DreaMS_embedding column");
            assert_eq!(bits32(got), bits32(&want), "id {id}: DreaMS_embedding");
            assert_eq!(
                r.file_id,
                Some((e.source_row / 500) as i32),
                "id {id}: file_id"
            );
            assert_eq!(
                r.scan_number,
                Some((e.source_row % 500) as i32 + 1),
                "id {id}: scan_number"
            );
        } else {
            assert!(r.embedding.is_none() && r.file_id.is_none() && r.scan_number.is_none());
        }
    }
}

/// Assert the manifest's per-reason counts and totals equal `want`.
#[track_caller]
pub(crate) fn assert_counts(m: &serde_json::Value, want: &Expectation) {
    let c = &m["counts"];
    assert_eq!(c["read"], want.read, "counts.read");
    assert_eq!(c["written"], want.rows.len() as u64, "counts.written");
    let rejected: BTreeMap<String, u64> = c["rejected"]
        .as_object()
        .expect("counts.rejected")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    let want_rejected: BTreeMap<String, u64> = want
        .rejected
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    assert_eq!(rejected, want_rejected, "counts.rejected");
    assert_eq!(
        c["rejected_total"],
        want.rejected.values().sum::<u64>(),
        "counts.rejected_total"
    );
}

/// Check everything the manifest says about the shards against the files themselves, and
/// the fixed shard schema and footer. `strings`: lsh is utf8; `pass`: the pass-through
/// columns expected after the fixed ones.
#[track_caller]
pub(crate) fn assert_manifest_and_files(
    root: &Path,
    m: &serde_json::Value,
    shards: &[Shard],
    strings: bool,
    pass: &[(&str, DataType)],
) {
    assert_eq!(m["format"], "msms-shards");
    let config_hash = m["config_hash"].as_str().expect("config_hash");
    assert!(config_hash.starts_with("sha256:") && config_hash.len() == 7 + 64);
    let recs = m["shards"].as_array().unwrap();
    assert_eq!(recs.len(), shards.len());
    assert!(!recs.is_empty(), "at least one shard");

    // Files under root: exactly _manifest.json and the listed shards.
    let mut want_files: Vec<String> = recs
        .iter()
        .map(|s| s["path"].as_str().unwrap().to_string())
        .collect();
    want_files.push("_manifest.json".into());
    want_files.sort();
    assert_eq!(files_under(root), want_files, "files under the output root");

    let mut digest = Sha256::new();
    let mut total_rows = 0u64;
    for (i, (rec, shard)) in recs.iter().zip(shards).enumerate() {
        let rel = rec["path"].as_str().unwrap();
        assert_eq!(rel, format!("train/shard-{i:05}.parquet"));
        assert_eq!(rec["split"], "train");
        let path = root.join(rel);
        let sha = sha256_file(&path);
        assert_eq!(rec["sha256"], sha.as_str(), "{rel}: sha256");
        assert_eq!(
            rec["bytes"],
            std::fs::metadata(&path).unwrap().len(),
            "{rel}: bytes"
        );
        assert_eq!(rec["rows"], shard.rows.len() as u64, "{rel}: rows");
        assert!(!shard.rows.is_empty(), "{rel}: empty shard");
        assert_eq!(
            rec["first_spectrum_id"],
            shard.rows.first().unwrap().spectrum_id,
            "{rel}: first_spectrum_id"
        );
        assert_eq!(
            rec["last_spectrum_id"],
            shard.rows.last().unwrap().spectrum_id,
            "{rel}: last_spectrum_id"
        );
        total_rows += shard.rows.len() as u64;
        digest.update(format!("{rel} {sha}\n").as_bytes());

        // Footer.
        assert_eq!(
            shard
                .key_value
                .get("msms_shards.format_version")
                .map(String::as_str),
            Some(m["format_version"].to_string().as_str()),
            "{rel}: format_version"
        );
        assert_eq!(
            shard.key_value.get("msms_shards.tool_version"),
            m["tool_version"].as_str().map(str::to_string).as_ref(),
            "{rel}: tool_version"
        );
        assert_eq!(
            shard
                .key_value
                .get("msms_shards.config_hash")
                .map(String::as_str),
            Some(config_hash),
            "{rel}: config_hash"
        );
        assert!(!shard.compressions.is_empty());
        for c in &shard.compressions {
            assert!(
                matches!(c, Compression::ZSTD(_)),
                "{rel}: compression {c:?}"
            );
        }

        // Schema read back.
        assert_schema(&shard.schema, strings, pass);
        // The manifest's schema describes the file's.
        let ms: Vec<(String, String)> = m["schema"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["type"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let fs: Vec<(String, String)> = shard
            .schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect();
        assert_eq!(ms, fs, "{rel}: manifest schema vs file schema");
    }
    assert_eq!(m["counts"]["written"], total_rows, "rows sum");
    assert_eq!(
        m["dataset_digest"],
        format!("sha256:{}", hex::encode(digest.finalize())),
        "dataset_digest"
    );
    // Spectrum ids increase across the whole dataset.
    let ids: Vec<u64> = all_rows(shards).iter().map(|r| r.spectrum_id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids ascend across shards"
    );
}

/// Assert the column names and Arrow types of a shard.
#[track_caller]
pub(crate) fn assert_schema(schema: &SchemaRef, strings: bool, pass: &[(&str, DataType)]) {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut want_names: Vec<&str> = FIXED_COLUMNS.to_vec();
    want_names.extend(pass.iter().map(|(n, _)| *n));
    assert_eq!(names, want_names, "column names");
    let t = |n: &str| schema.field_with_name(n).unwrap().data_type().clone();
    assert_eq!(t("spectrum_id"), DataType::UInt64);
    assert_eq!(t("source_index"), DataType::UInt16);
    assert_eq!(t("source_row"), DataType::UInt64);
    assert_eq!(
        t("name"),
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
    );
    assert_eq!(t("precursor_mz"), DataType::Float64);
    assert_eq!(t("rt"), DataType::Float32);
    assert_eq!(t("charge"), DataType::Int8);
    assert_eq!(t("instrument_accuracy_est"), DataType::Float32);
    assert_eq!(
        t("lsh"),
        if strings {
            DataType::Utf8
        } else {
            DataType::Int64
        }
    );
    assert_eq!(t("num_peaks"), DataType::UInt16);
    match t("mz") {
        DataType::List(f) => assert_eq!(f.data_type(), &DataType::Float64),
        other => panic!("mz is {other}"),
    }
    match t("intensity") {
        DataType::List(f) => assert_eq!(f.data_type(), &DataType::Float32),
        other => panic!("intensity is {other}"),
    }
    assert_eq!(t("gems_format"), DataType::Utf8);
    for (n, dt) in pass {
        assert_eq!(&t(n), dt, "pass-through {n}");
    }
}

/// The pass-through columns of the `embedding` layout, in the order they must appear.
pub(crate) fn embedding_columns() -> Vec<(&'static str, DataType)> {
    vec![
        (
            "DreaMS_embedding",
            DataType::FixedSizeList(
                std::sync::Arc::new(arrow::datatypes::Field::new(
                    "item",
                    DataType::Float32,
                    false,
                )),
                synth::EMBEDDING_DIM as i32,
            ),
        ),
        ("file_id", DataType::Int32),
        ("scan_number", DataType::Int32),
    ]
}

/// A converted output root `dir/out` with several shards (100 kB each at most): `spectra`
/// synthetic gems spectra (5 % planted faults, `seed`) in row groups of `batch_size`.
pub(crate) fn sharded_root(dir: &Path, spectra: u64, batch_size: u32, seed: u64) -> PathBuf {
    let input = synth_input(&dir.join("in.hdf5"), "gems", spectra, 0.05, seed);
    let root = dir.join("out");
    let batch = batch_size.to_string();
    build(
        &[&input.path],
        &root,
        &["--batch-size", &batch, "--shard-size", "100kB", "-q"],
    )
    .expect_code(0);
    let shards = read_manifest(&root)["shards"].as_array().unwrap().len();
    assert!(shards >= 3, "want several shards, got {shards}");
    root
}

/// Run `cmd` with the test hook `MSMS_TEST_STALL_AT=point`, read its stderr until it prints
/// `msms: stalled at POINT` (a state, not a moment), then SIGKILL it and reap it; returns
/// what it printed on stderr. Panics if it exits without stalling there.
#[track_caller]
pub(crate) fn stall_and_kill(mut cmd: Command, point: &str) -> String {
    cmd.env("MSMS_TEST_STALL_AT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = {
        let _g = fork_guard();
        cmd.spawn().expect("spawn msms")
    };
    let mut err = child.stderr.take().expect("piped stderr");
    let text = read_until_stalled(&mut err, point);
    child.kill().expect("kill the stalled msms");
    child.wait().expect("reap the stalled msms");
    text
}

/// Read a child's stderr until it prints `msms: stalled at POINT` (a state, not a moment);
/// returns what it printed. Panics if the stream ends first.
#[track_caller]
pub(crate) fn read_until_stalled(err: &mut impl std::io::Read, point: &str) -> String {
    let marker = format!("msms: stalled at {point}");
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains(&marker) {
        let n = err.read(&mut buf).expect("read stderr");
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(text.contains(&marker), "never stalled at {point}:\n{text}");
    text
}

/// A run held at a stall point until [`Held::release`].
pub(crate) struct Held {
    child: Child,
    release: PathBuf,
}

impl Held {
    /// Spawn `cmd` held at `point`; return once it says it stalled there.
    #[track_caller]
    pub(crate) fn start(mut cmd: Command, point: &str, release: PathBuf) -> Held {
        cmd.env("MSMS_TEST_STALL_AT", point)
            .env(
                "MSMS_TEST_STALL_RELEASE",
                format!("file:{}", release.display()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = {
            let _g = fork_guard();
            cmd.spawn().expect("spawn msms")
        };
        let mut err = child.stderr.take().expect("piped stderr");
        read_until_stalled(&mut err, point);
        // Drain the rest in the background so that the child never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        Held { child, release }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Let the run go on and wait for its exit code.
    pub(crate) fn release(mut self) -> i32 {
        std::fs::write(&self.release, b"").expect("create the release file");
        let status = self.child.wait().expect("wait for the held msms");
        status.code().expect("the held msms exited by a signal")
    }
}

impl Drop for Held {
    /// A test that fails before releasing its held run must not leave it stalled forever.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
