//! `msms build-shards`: its flags, their configuration layer, the run with its messages and
//! end-of-run summary, stopping on SIGINT/SIGTERM with a `--resume` hint, and a part of a plan
//! (`--plan P --part K`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use super::run;
use crate::config::{
    BinAggregation, BinOutput, BinRange, ByteSize, ColumnList, Compression, Dedup, Layer, Mode,
    Normalize, QualityFormat, Settings, SplitKey, Splits,
};
use crate::read::{Decode, FileMapping};
use crate::run::plan::{part_root, Plan};
use crate::run::{self, BuildOptions, Progress, RunError, Summary};
use crate::text::{error_chain, human_bytes, shell_quote};

/// Text after `msms build-shards --help`.
pub(crate) const AFTER_BUILD: &str = "\
Precedence: flag > --config file > environment (MSMS_*) > --mode profile default.
Profiles: local (default): workers min(4, cores), shard size 1GB, batch 1000;
          production / cloud: workers = cores, shard size 2GB, batch 10000;
          both: row groups of 32768 rows, compression zstd:1.
Exit codes: 0 done; 2 bad input file, config, output root or checkpoint (nothing written);
            1 other failure (e.g. a write error: finished shards are kept, see --resume);
            130 interrupted by SIGINT/SIGTERM (finished shards kept, see --resume).
Output: OUTPUT_ROOT/<split>/shard-NNNNN.parquet and OUTPUT_ROOT/_manifest.json (format 2;
format 1 named it manifest.json). Every name that is not a shard starts with _ or ., so pandas,
pyarrow, Hugging Face datasets, DuckDB and polars read OUTPUT_ROOT with no options.
Crash safety: OUTPUT_ROOT/.msms/checkpoint.json records every finished shard; after a crash,
kill, full disk or Ctrl-C, run the same command with --resume to continue. A format-1 root:
--overwrite replaces it; --resume says a finished one is done, and refuses an interrupted one
(its shards are format 1: start over with --overwrite).

Example:
  msms build-shards --input-hdf5 GeMS_C1_DreaMS.0.hdf5 GeMS_C1_DreaMS.1.hdf5 --output-root shards/c1";

/// Flags of `msms build-shards`.
#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// HDF5 input files, numbered as one sequence of spectra in the order given.
    #[arg(long = "input-hdf5", value_name = "FILE", num_args = 1..)]
    pub(crate) input_hdf5: Vec<PathBuf>,
    /// Directory for _manifest.json and the shards; must be empty or absent (see --overwrite).
    #[arg(long, value_name = "DIR")]
    pub(crate) output_root: Option<PathBuf>,
    /// YAML config file (see configs/); flags override it.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Ask for the mode, inputs, output root, config file and main options on the terminal,
    /// show the equivalent command line and run it when confirmed (also what bare `msms`
    /// does on a terminal). Takes no other flags; refused (exit 2) without a terminal.
    #[arg(long)]
    pub(crate) interactive: bool,
    /// Profile: local (laptop), production or cloud (many-core server).
    #[arg(long, value_name = "MODE")]
    pub(crate) mode: Option<Mode>,
    /// Worker threads that validate, transform and encode.
    #[arg(long, value_name = "N")]
    pub(crate) num_workers: Option<usize>,
    /// Most spectra per Parquet row group. Read units are this rounded to the nearest whole
    /// number of the spectrum dataset's chunks (1000 → 1024 for (1024, 2, 128) chunks), so
    /// each chunk is decoded once; a unit with more is written as equal smaller row groups.
    #[arg(long, value_name = "N")]
    pub(crate) batch_size: Option<usize>,
    /// Largest shard file: bytes, or with units (500MB, 1GB decimal; 512MiB, 2GiB binary).
    #[arg(long, value_name = "SIZE")]
    pub(crate) shard_size: Option<ByteSize>,
    /// Rows per Parquet row group of each split's shards (the last, and one split to top up a
    /// shard, may hold fewer), independent of --batch-size (the read unit). Default: 32768.
    #[arg(long, value_name = "ROWS")]
    pub(crate) row_group_size: Option<usize>,
    /// Compression of the shards' column chunks: zstd (level 1), zstd:LEVEL (1 fastest to 22
    /// smallest), lz4 (Parquet LZ4_RAW), snappy or none. Default: zstd:1.
    #[arg(long, value_name = "CODEC")]
    pub(crate) compression: Option<Compression>,
    /// Convert only the first N spectra of the whole input sequence.
    #[arg(long, value_name = "N")]
    pub(crate) max_spectra: Option<u64>,
    /// Read, validate and transform everything; write nothing; report the projected shards.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Allow a non-empty output root: an earlier run's manifest, shards and checkpoint are
    /// removed when the run starts; other files are left alone.
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// Continue an interrupted run (crash, kill, full disk, Ctrl-C) from the checkpoint in the
    /// output root: finished shards are re-hashed and kept, the rest is written again, and the
    /// result is byte-identical to an uninterrupted run. Needs the same inputs and settings.
    #[arg(long, conflicts_with_all = ["overwrite", "dry_run"])]
    pub(crate) resume: bool,
    /// Run even when the preflight finds a problem (the projected output is larger than the
    /// free space at the output root, or the profile needs more memory than is available);
    /// the problems are then printed as warnings.
    #[arg(long)]
    pub(crate) skip_preflight: bool,
    /// Refuse an input with a per-spectrum dataset no column can carry (an object reference,
    /// opaque bytes, a shape too wide; also as a compound member) instead of leaving that
    /// dataset out with a notice (and in the manifest's `inputs[].left_out`). With `msms
    /// plan`, refused at planning, and every part runs with it.
    #[arg(long)]
    pub(crate) strict_columns: bool,
    /// While the run goes, write its counters (spectra read, total, written, rejected, shards
    /// finished and their bytes, running, start and update times) to PATH every 2 s in the
    /// Prometheus text format, for node-exporter's textfile collector (name it *.prom); each
    /// write replaces the file atomically, and the last one has msms_running 0.
    #[arg(long, value_name = "PATH")]
    pub(crate) metrics_file: Option<PathBuf>,
    /// Convert one part of a plan made by `msms plan` (with --part K): inputs and settings
    /// come from the plan; the part goes to OUTPUT_ROOT/parts/K/. Running a part again resumes
    /// it (with or without --resume), or says it is done.
    #[arg(long, value_name = "PLAN.json", requires = "part")]
    pub(crate) plan: Option<PathBuf>,
    /// The part of --plan to convert (0-based).
    #[arg(long, value_name = "K", requires = "plan")]
    pub(crate) part: Option<usize>,
    /// Internal (set by --plan): convert only read units A..B.
    #[arg(long, value_name = "A:B", hide = true)]
    pub(crate) part_units: Option<String>,
    /// Internal (set by --plan): the config hash the settings must resolve to.
    #[arg(long, value_name = "HASH", hide = true)]
    pub(crate) plan_config_hash: Option<String>,
    /// Shard writer threads (each writes a different shard; the output does not depend on
    /// the number). Default: 1 in local mode, 2 in production.
    #[arg(long, value_name = "N")]
    pub(crate) writers: Option<usize>,
    /// Keep only the K most intense peaks (ties: lower m/z first), in m/z order.
    #[arg(long, value_name = "K")]
    pub(crate) max_peaks: Option<usize>,
    /// Intensity normalisation: max (divide by the base peak; default), sum (total ion
    /// current 1), l2 (unit norm), sqrt (square root, then divide by the max) or none.
    #[arg(long, value_name = "HOW")]
    pub(crate) normalize: Option<Normalize>,
    /// Bin the written peaks into bins of this m/z width (adds `binned`, or `bin_index` and
    /// `bin_value` with --bin-output sparse). Needs --bin-range.
    #[arg(long, value_name = "W", allow_negative_numbers = true)]
    pub(crate) bin_width: Option<f64>,
    /// m/z range of the bins, MIN:MAX: a peak is binned when MIN <= m/z < MAX.
    #[arg(long, value_name = "MIN:MAX")]
    pub(crate) bin_range: Option<BinRange>,
    /// How peaks in one bin combine: sum (DreaMS-style; default) or max (ms2deepscore-style).
    #[arg(long, value_name = "HOW")]
    pub(crate) bin_aggregation: Option<BinAggregation>,
    /// Binned value = intensity^P (default 1; ms2deepscore uses 0.5).
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub(crate) bin_scale: Option<f64>,
    /// dense: one fixed-size list of all bins; sparse: non-empty bins as index/value lists.
    #[arg(long, value_name = "LAYOUT")]
    pub(crate) bin_output: Option<BinOutput>,
    /// Keep only spectra meeting GeMS quality format A, B or C (DreaMS); the column
    /// `gems_format` records every spectrum's class either way.
    #[arg(long, value_name = "A|B|C")]
    pub(crate) quality_format: Option<QualityFormat>,
    /// Divide the spectra into splits written under OUTPUT_ROOT/NAME/, e.g.
    /// train=0.98,val=0.01,test=0.01 (fractions summing to 1). Default: everything in train.
    #[arg(long, value_name = "NAME=FRAC,...")]
    pub(crate) splits: Option<Splits>,
    /// Seed of the split assignment (default 0): another seed, another division.
    #[arg(long, value_name = "N")]
    pub(crate) seed: Option<u64>,
    /// What decides a spectrum's split: lsh (near-duplicates stay together; the default when
    /// the inputs have an lsh dataset), name (all spectra of one source file together) or
    /// spectrum (each on its own; the default otherwise).
    #[arg(long, value_name = "KEY")]
    pub(crate) split_key: Option<SplitKey>,
    /// Only these pass-through columns (comma-separated dataset or column names; every other
    /// per-spectrum dataset beyond the fixed columns is left out).
    #[arg(long, value_name = "NAMES")]
    pub(crate) columns: Option<ColumnList>,
    /// Leave out these pass-through columns (comma-separated dataset or column names).
    #[arg(long, value_name = "NAMES")]
    pub(crate) exclude_columns: Option<ColumnList>,
    /// exact: drop spectra whose written peaks and precursor m/z equal an earlier one's
    /// (counted as rejected, reason `duplicate`; 16 bytes of memory per spectrum kept).
    #[arg(long, value_name = "HOW")]
    pub(crate) dedup: Option<Dedup>,
    /// Reject spectra with fewer peaks than this (default 1).
    #[arg(long, value_name = "N")]
    pub(crate) min_peaks: Option<usize>,
    /// Reject spectra whose precursor m/z is above this.
    #[arg(long, value_name = "MZ", allow_negative_numbers = true)]
    pub(crate) max_precursor_mz: Option<f64>,
    /// Print errors only.
    #[arg(short, long, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Print more: at the end, every shard (path, rows, bytes, SHA-256) and how each dataset
    /// was decoded.
    #[arg(short, long)]
    pub(crate) verbose: bool,
    /// Accepted for compatibility with the Python pipeline; has no effect.
    #[arg(long)]
    pub(crate) use_dask: bool,
    /// Row decoder: native (chunks decoded from a memory map where the filters allow it,
    /// libhdf5 elsewhere; default) or libhdf5 (everything through H5Dread). Same output.
    #[arg(long, value_name = "HOW", env = "MSMS_DECODE", value_enum, default_value_t = Decode::Native)]
    pub(crate) decode: Decode,
}

impl BuildArgs {
    /// The command-line layer of the configuration these flags give.
    pub(crate) fn layer(&self) -> Layer {
        let a = self;
        Layer {
            mode: a.mode,
            inputs: (!a.input_hdf5.is_empty()).then(|| a.input_hdf5.clone()),
            output_root: a.output_root.clone(),
            num_workers: a.num_workers,
            writers: a.writers,
            shard_size: a.shard_size,
            batch_size: a.batch_size,
            row_group_size: a.row_group_size,
            compression: a.compression,
            normalize: a.normalize,
            max_peaks: a.max_peaks,
            bin_width: a.bin_width,
            bin_range: a.bin_range,
            bin_aggregation: a.bin_aggregation,
            bin_scale: a.bin_scale,
            bin_output: a.bin_output,
            quality_format: a.quality_format,
            splits: a.splits.clone(),
            seed: a.seed,
            split_key: a.split_key,
            columns: a.columns.clone(),
            exclude_columns: a.exclude_columns.clone(),
            dedup: a.dedup,
            min_peaks: a.min_peaks,
            max_precursor_mz: a.max_precursor_mz,
            max_spectra: a.max_spectra,
            log_level: if a.quiet {
                Some("error".into())
            } else if a.verbose {
                Some("debug".into())
            } else {
                None
            },
            ..Layer::default()
        }
    }
}

/// `msms build-shards`: resolve the settings, check the inputs, convert, print the summary.
pub(crate) fn build(a: BuildArgs) -> i32 {
    if let Some(plan) = &a.plan {
        return build_part(plan, &a);
    }
    let prepared = resolved_settings(&a).and_then(|settings| {
        let units = part_units(&a)?;
        let log = Log::open(&settings)?;
        Ok((settings, units, log))
    });
    let (settings, units, mut log) = match prepared {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mappings = match checked_inputs(&a, &settings, &mut log) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let opts = BuildOptions {
        output_root: settings.output_root.clone(),
        settings,
        dry_run: a.dry_run,
        overwrite: a.overwrite,
        progress: if log.level >= 2 {
            Progress::Auto
        } else {
            Progress::Quiet
        },
        decode: a.decode,
        resume: a.resume,
        skip_preflight: a.skip_preflight,
        strict_columns: a.strict_columns,
        resume_command: Some(resume_command()),
        metrics_file: a.metrics_file.clone(),
        stop: Some(install_stop_handlers()),
        units,
    };
    match run::build_shards_with(&opts, &mappings, &|event| eprintln!("{event}")) {
        Ok(summary) => {
            report_done(&summary, a.dry_run, &mut log);
            0
        }
        Err(e) => report_failure(&e, &opts, &mut log),
    }
}

/// The settings of flags, `--config` file and environment; `Err` is the exit code after the
/// message (also when they miss the config hash a plan's part must have).
fn resolved_settings(a: &BuildArgs) -> Result<Settings, i32> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let resolved = (|| {
        let file = a.config.as_deref().map(Layer::from_yaml_file).transpose()?;
        for n in file.iter().flat_map(|f| &f.notices) {
            eprintln!("msms build-shards: {n}");
        }
        let env = Layer::from_env(std::env::vars())?;
        let cli = a.layer();
        Settings::resolve(&cli, file.as_ref(), &env, cores)
    })();
    let settings = match resolved {
        Ok(s) => s,
        Err(e) => {
            eprintln!("msms build-shards: {}", error_chain(&e));
            return Err(2);
        }
    };
    if let Some(want) = &a.plan_config_hash {
        if settings.config_hash() != *want {
            eprintln!(
                "msms build-shards: the plan's settings resolve to config hash {} here, not the plan's {want}; check the MSMS_* variables and the msms version on this machine",
                settings.config_hash()
            );
            return Err(2);
        }
    }
    Ok(settings)
}

/// The read units of `--part-units A:B` (set by `--plan`); `Err` is the exit code.
fn part_units(a: &BuildArgs) -> Result<Option<Range<u64>>, i32> {
    match a.part_units.as_deref().map(|t| {
        t.split_once(':')
            .and_then(|(x, y)| Some(x.parse::<u64>().ok()?..y.parse::<u64>().ok()?))
    }) {
        None => Ok(None),
        Some(Some(r)) => Ok(Some(r)),
        Some(None) => {
            eprintln!("msms build-shards: --part-units wants A:B");
            Err(2)
        }
    }
}

/// The inputs, opened and mapped, after the checks that need no file (inputs and output
/// root given); logs the settings and each mapping. `Err` is the exit code.
fn checked_inputs(
    a: &BuildArgs,
    settings: &Settings,
    log: &mut Log,
) -> Result<Vec<FileMapping>, i32> {
    if a.use_dask {
        log.at(1, "msms build-shards: note: --use-dask has no effect (conversion runs in-process on worker threads)");
    }
    if settings.inputs.is_empty() {
        log.at(
            0,
            "msms build-shards: no inputs: give --input-hdf5 FILE... (or `inputs:` in --config)",
        );
        return Err(2);
    }
    if settings.output_root.is_none() && !a.dry_run {
        log.at(
            0,
            "msms build-shards: no output root: give --output-root DIR (or --dry-run)",
        );
        return Err(2);
    }
    let mappings = match run::detect_inputs(&settings.inputs) {
        Ok(m) => m,
        Err(e) => {
            log.at(0, &format!("msms build-shards: refusing input: {e}"));
            return Err(2);
        }
    };
    let p = &settings.profile;
    log.at(
        2,
        &format!(
            "msms build-shards: mode {}: {} workers, batch {}, shard size {}, row group size {}, compression {}, normalize {}, min peaks {}{}{}",
            settings.mode.as_str(),
            p.num_workers,
            p.batch_size,
            p.shard_size,
            p.row_group_size,
            p.compression,
            settings.normalize.as_str(),
            settings.min_peaks,
            settings.max_precursor_mz.map(|m| format!(", max precursor m/z {m}")).unwrap_or_default(),
            settings.max_spectra.map(|m| format!(", first {m} spectra")).unwrap_or_default(),
        ),
    );
    for m in &mappings {
        log.at(2, m.to_string().trim_end());
    }
    Ok(mappings)
}

/// A finished run: with --verbose every decode path and shard, then the summary (stdout and
/// the log file).
fn report_done(summary: &Summary, dry_run: bool, log: &mut Log) {
    if log.level >= 3 {
        for line in &summary.decode_notes {
            log.at(3, &format!("  decode {line}"));
        }
        for s in &summary.shards {
            log.at(
                3,
                &format!(
                    "  shard {} rows {} bytes {} sha256 {}",
                    s.path, s.rows, s.bytes, s.sha256
                ),
            );
        }
    }
    let text = summary_text(summary, dry_run);
    if log.level >= 1 {
        print!("{text}");
    }
    if let Some(f) = &mut log.file {
        let _ = f.write_all(text.as_bytes());
    }
}

/// A failed run: the error, and how to resume when a checkpoint was left; the exit code.
fn report_failure(e: &RunError, opts: &BuildOptions, log: &mut Log) -> i32 {
    log.at(0, &format!("msms build-shards: {}", error_chain(e)));
    let resumable = matches!(e.exit_code(), 1 | 130)
        && opts
            .output_root
            .as_deref()
            .is_some_and(|r| crate::format::checkpoint::path(r).is_file());
    if resumable {
        let when = if e.exit_code() == 130 {
            "to continue"
        } else {
            "once the cause is fixed (e.g. space freed), continue"
        };
        log.at(
            0,
            &format!(
                "msms build-shards: finished shards are kept; {when} with:\n  {}",
                resume_command()
            ),
        );
    }
    e.exit_code()
}

/// `build-shards --plan P --part K --output-root ROOT`: the part's own `build-shards`.
fn build_part(plan_path: &Path, a: &BuildArgs) -> i32 {
    let fail = |msg: String| {
        eprintln!("msms build-shards: {msg}");
        2
    };
    let given = settings_flags(a);
    if !given.is_empty() {
        return fail(format!(
            "--plan takes the inputs and settings from the plan; remove {}",
            given.join(", ")
        ));
    }
    let Some(root) = &a.output_root else {
        return fail("--plan needs --output-root ROOT (the same for every part)".into());
    };
    let k = a.part.expect("clap requires --part with --plan");
    let plan = match Plan::load(plan_path) {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    let mut argv = match plan.part_argv(k, root) {
        Ok(v) => v,
        Err(e) => return fail(e.to_string()),
    };
    if let Err(msg) = keep_plan_copy(&plan, root) {
        return fail(msg);
    }
    // A part that ran before resumes (or says it is finished).
    let proot = part_root(root, k);
    if let Some(v) = crate::run::other_format_checkpoint(&proot) {
        return fail(format!(
            "part {k}: {} holds an interrupted run started by an msms writing output format {v}, \
             which this msms (format {}) cannot resume (the shards of one root must all be of one \
             format): remove {} and run this command again",
            proot.display(),
            crate::format::manifest::FORMAT_VERSION,
            proot.display()
        ));
    }
    if std::fs::read_dir(&proot).is_ok_and(|mut d| d.next().is_some()) {
        argv.push("--resume".into());
    }
    if let Some(n) = a.num_workers {
        argv.extend(["--num-workers".into(), n.to_string().into()]);
    }
    if let Some(n) = a.writers {
        argv.extend(["--writers".into(), n.to_string().into()]);
    }
    if a.quiet {
        argv.push("--quiet".into());
    }
    if a.skip_preflight {
        argv.push("--skip-preflight".into());
    }
    if let Some(m) = &a.metrics_file {
        argv.extend(["--metrics-file".into(), m.clone().into_os_string()]);
    }
    if a.strict_columns && !argv.iter().any(|x| x == "--strict-columns") {
        argv.push("--strict-columns".into());
    }
    if a.verbose {
        argv.push("--verbose".into());
    }
    argv.extend(["--decode".into(), a.decode.as_str().into()]);
    run(argv)
}

/// The given flags a part takes from its plan instead (inputs and settings).
fn settings_flags(a: &BuildArgs) -> Vec<&'static str> {
    [
        (!a.input_hdf5.is_empty(), "--input-hdf5"),
        (a.config.is_some(), "--config"),
        (a.mode.is_some(), "--mode"),
        (a.shard_size.is_some(), "--shard-size"),
        (a.batch_size.is_some(), "--batch-size"),
        (a.row_group_size.is_some(), "--row-group-size"),
        (a.compression.is_some(), "--compression"),
        (a.max_spectra.is_some(), "--max-spectra"),
        (a.normalize.is_some(), "--normalize"),
        (a.max_peaks.is_some(), "--max-peaks"),
        (a.bin_width.is_some(), "--bin-width"),
        (a.bin_range.is_some(), "--bin-range"),
        (a.bin_aggregation.is_some(), "--bin-aggregation"),
        (a.bin_scale.is_some(), "--bin-scale"),
        (a.bin_output.is_some(), "--bin-output"),
        (a.quality_format.is_some(), "--quality-format"),
        (a.min_peaks.is_some(), "--min-peaks"),
        (a.max_precursor_mz.is_some(), "--max-precursor-mz"),
        (a.splits.is_some(), "--splits"),
        (a.seed.is_some(), "--seed"),
        (a.split_key.is_some(), "--split-key"),
        (a.columns.is_some(), "--columns"),
        (a.exclude_columns.is_some(), "--exclude-columns"),
        (a.dedup.is_some(), "--dedup"),
        (a.overwrite, "--overwrite"),
        (a.dry_run, "--dry-run"),
        (a.interactive, "--interactive"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, f)| *f)
    .collect()
}

/// The plan travels with the output (`msms merge ROOT` reads it there): write ROOT/_plan.json,
/// or check that the copy there is this plan; a plan.json in ROOT (a format-1 root's copy, or
/// the plan itself written there) must be this plan too. `Err` is the message.
fn keep_plan_copy(plan: &Plan, root: &Path) -> Result<(), String> {
    use crate::run::plan::{PLAN_COPY, PLAN_COPY_V1};
    for existing in [root.join(PLAN_COPY), root.join(PLAN_COPY_V1)] {
        if existing.exists() && Plan::load(&existing).ok().as_ref() != Some(plan) {
            return Err(format!(
                "{} holds another plan; give each plan its own output root",
                existing.display()
            ));
        }
    }
    let copy = root.join(PLAN_COPY);
    if !copy.exists() {
        let made = std::fs::create_dir_all(root)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                crate::write::atomic::write_atomic(&copy, plan.to_json().as_bytes())
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = made {
            return Err(format!("cannot write {}: {e}", copy.display()));
        }
    }
    Ok(())
}

/// Messages at a level, to stderr and to the log file when one is configured.
struct Log {
    level: u8,
    file: Option<std::fs::File>,
}

impl Log {
    /// The log of these settings: their level, and their log file opened for appending;
    /// `Err` is the exit code after the message.
    fn open(settings: &Settings) -> Result<Log, i32> {
        let file = match &settings.log_file {
            Some(p) => match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                Ok(f) => Some(f),
                Err(e) => {
                    eprintln!(
                        "msms build-shards: cannot open log file {}: {e}",
                        p.display()
                    );
                    return Err(2);
                }
            },
            None => None,
        };
        Ok(Log {
            level: Log::level_of(&settings.log_level),
            file,
        })
    }

    /// The number of a log level: error 0, warn 1, info 2, debug 3, anything else 4.
    fn level_of(name: &str) -> u8 {
        match name {
            "error" => 0,
            "warn" => 1,
            "info" => 2,
            "debug" => 3,
            _ => 4,
        }
    }

    /// `msg` on stderr when `level` is within the log's, and in the log file always.
    fn at(&mut self, level: u8, msg: &str) {
        if level <= self.level {
            eprintln!("{msg}");
        }
        if let Some(f) = &mut self.file {
            let _ = writeln!(f, "{msg}");
        }
    }
}

/// Set by the first SIGINT or SIGTERM.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        // Second signal: stop now. The checkpoint stays consistent (it is only ever replaced
        // atomically); a `.tmp` shard left behind is removed by --resume.
        // SAFETY: `_exit` is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// SIGINT and SIGTERM ask the run to stop at a clean point (a second one stops at once);
/// SIGXFSZ is ignored so that a file-size limit surfaces as an `EFBIG` write error with the
/// file's name instead of killing the process.
pub(crate) fn install_stop_handlers() -> &'static AtomicBool {
    let handler: extern "C" fn(libc::c_int) = on_stop_signal;
    // SAFETY: the handler only touches an atomic and calls `_exit`, both async-signal-safe;
    // `signal` with a valid function pointer or SIG_IGN has no other precondition.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    &STOP
}

/// This process's command line with `--resume` (and without `--overwrite`), quoted for a
/// POSIX shell.
pub(crate) fn resume_command() -> String {
    let mut args: Vec<String> = crate::cli::command_line()
        .into_iter()
        .enumerate()
        .map(|(i, a)| if i == 0 { "msms".to_string() } else { a })
        .filter(|a| a != "--overwrite")
        .collect();
    if !args.iter().any(|a| a == "--resume") {
        args.push("--resume".into());
    }
    args.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The end-of-run summary printed on stdout.
fn summary_text(s: &Summary, dry_run: bool) -> String {
    let c = &s.counts;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "msms build-shards: {} in {:.2} s",
        if dry_run {
            "dry run done (nothing written)"
        } else {
            "done"
        },
        s.elapsed.as_secs_f64()
    );
    let resumed = if s.read_before > 0 {
        format!("; {} read before the resume", s.read_before)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  spectra read     {:>12}   ({:.0} spectra/s{resumed})",
        c.read,
        s.spectra_per_second()
    );
    let _ = writeln!(
        out,
        "  {:<16} {:>12}",
        if dry_run { "would write" } else { "written" },
        c.accepted
    );
    let reasons: Vec<String> = c
        .rejected_by_reason()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "  rejected         {:>12}{}",
        c.rejected_total(),
        if reasons.is_empty() {
            String::new()
        } else {
            format!("   ({})", reasons.join(", "))
        }
    );
    if c.invalid_utf8 > 0 {
        let ids: Vec<String> = c.invalid_utf8_ids.iter().map(u64::to_string).collect();
        let _ = writeln!(
            out,
            "  not UTF-8        {:>12}   (spectra with a string whose bytes are not UTF-8, \
             replaced by U+FFFD; spectrum_id {}{})",
            c.invalid_utf8,
            ids.join(", "),
            if c.invalid_utf8 > ids.len() as u64 {
                ", …"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        out,
        "  {:<16} {:>12}   ({} total{})",
        if dry_run {
            "shards (projected)"
        } else {
            "shards"
        },
        s.shards.len(),
        human_bytes(s.total_bytes()),
        s.shards
            .iter()
            .map(|x| x.bytes)
            .max()
            .map(|m| format!(", largest {}", human_bytes(m)))
            .unwrap_or_default()
    );
    if s.manifest.splits.len() > 1 {
        let parts: Vec<String> = s
            .manifest
            .splits
            .iter()
            .map(|(n, r)| {
                let plural = if r.shards == 1 { "" } else { "s" };
                format!("{n} {} ({} shard{plural})", r.rows, r.shards)
            })
            .collect();
        let _ = writeln!(out, "  splits           {}", parts.join(", "));
    }
    let _ = writeln!(out, "  threads          {}", s.placement);
    if let Some(p) = &s.manifest_path {
        let _ = writeln!(out, "  manifest         {}", p.display());
        let _ = writeln!(out, "  dataset digest   {}", s.manifest.dataset_digest);
    }
    out
}
