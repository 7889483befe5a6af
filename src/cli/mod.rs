//! The `msms` command line: flags, their mapping onto the configuration layers, and the
//! messages a user sees. `main.rs` only calls [`run`].

use crate::text::{human_bytes, shell_quote, thousands};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};

use crate::commands::synth::{self, SynthLayout, SynthOptions};
use crate::config::{
    BinAggregation, BinOutput, BinRange, ByteSize, Dedup, Layer, Mode, Normalize, QualityFormat,
    Settings, SplitKey, Splits,
};
use crate::read::source::Decode;
use crate::run::pipeline::{self, BuildOptions, Progress, Summary};
use crate::text::error_chain;

/// msms-shards: turn GeMS-style MS/MS HDF5 datasets into validated, normalised,
/// checksummed Parquet shards for ML training.
#[derive(Debug, Parser)]
#[command(name = "msms", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Convert HDF5 inputs into Parquet shards under OUTPUT_ROOT/<split>/ (train unless
    /// --splits) plus OUTPUT_ROOT/manifest.json; --resume continues an interrupted run.
    #[command(after_help = AFTER_BUILD)]
    BuildShards(Box<BuildArgs>),
    /// Describe an HDF5 file without converting it: every dataset (dtype, shape, chunks,
    /// filters, stored vs raw bytes), the GeMS mapping, each dataset's decode path and an
    /// estimated conversion time. Exit 2 when it cannot be converted.
    Inspect(inspect::InspectArgs),
    /// Check an output root against its manifest: re-hash every shard, compare rows, schema
    /// and digests; with --full also check every spectrum. Exit 1 naming each mismatch.
    #[command(after_help = AFTER_VERIFY)]
    Verify(VerifyArgs),
    /// Same as `msms verify ROOT`, with the root given as --output ROOT.
    #[command(after_help = AFTER_VERIFY)]
    ValidateShards(ValidateShardsArgs),
    /// Write a quality report of an output root: one self-contained HTML page with charts
    /// (peaks per spectrum, precursor m/z, charge, retention time, rejection reasons, split
    /// and shard sizes) and quality_report.json with the same numbers.
    #[command(after_help = crate::commands::report::AFTER_HELP)]
    QualityReport(crate::commands::report::ReportArgs),
    /// Check this machine for a run: libhdf5 and SIMD level, cores, memory, and free space,
    /// writability and O_DIRECT at an output root; suggest a mode and show its profile.
    /// Exit 1 with one line per problem that would stop a run.
    #[command(after_help = doctor::AFTER_HELP)]
    Doctor(doctor::DoctorArgs),
    /// Cut a conversion into N parts for a cluster (Dask, Slurm): chunk-aligned runs of the
    /// input balanced by stored bytes, written to plan.json; each part is then converted by
    /// `msms build-shards --plan plan.json --part K --output-root ROOT`.
    #[command(after_help = AFTER_PLAN)]
    Plan(Box<PlanArgs>),
    /// Join the parts of a planned conversion: check every part's manifest and shard digests,
    /// then write ROOT/manifest.json listing all shards (no data is copied).
    #[command(
        after_help = "Exit codes: 0 merged; 2 a part is missing, interrupted, written with other settings or damaged \
(one line each, with the command that redoes it), or ROOT holds no plan.json; 1 the manifest cannot be written."
    )]
    Merge(MergeArgs),
    /// Write a synthetic GeMS-layout HDF5 file (for trying the tool, tests and benchmarks).
    Synth(SynthArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell) to stdout.
    #[command(after_help = crate::cli::interactive::COMPLETIONS_AFTER_HELP)]
    Completions(crate::cli::interactive::CompletionsArgs),
    /// Print the msms(1) man page to stdout, or with --output DIR write it and one page per
    /// subcommand (msms-build-shards.1, ...) there.
    #[command(after_help = crate::cli::interactive::MAN_AFTER_HELP)]
    Man(crate::cli::interactive::ManArgs),
}

const AFTER_PLAN: &str = "\
Example (3 parts; any engine runs the part commands, on a file system they all see):
  msms plan --input-hdf5 GeMS_C1_*.hdf5 --parts 3 --output shards/plan.json --splits train=0.98,val=0.01,test=0.01
  msms build-shards --plan shards/plan.json --part 0 --output-root shards   # … --part 1, --part 2
  msms merge shards
--dedup exact cannot be planned (it needs every earlier spectrum).";

/// Flags of `msms plan`: `--parts`, `--output`, and the processing flags of build-shards.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Number of parts.
    #[arg(long, value_name = "N")]
    pub parts: usize,
    /// Where to write the plan (JSON).
    #[arg(long, value_name = "PLAN.json")]
    pub output: PathBuf,
    /// The same inputs and processing options as `msms build-shards`.
    #[command(flatten)]
    pub build: BuildArgs,
}

/// Flags of `msms merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The output root given to every part (holds plan.json and parts/K/).
    #[arg(value_name = "ROOT")]
    pub root: PathBuf,
}

const AFTER_BUILD: &str = "\
Precedence: flag > --config file > environment (MSMS_*) > --mode profile default.
Profiles: local (default): workers min(4, cores), shard size 1GB, batch 1000;
          production / cloud: workers = cores, shard size 2GB, batch 10000.
Exit codes: 0 done; 2 bad input file, config, output root or checkpoint (nothing written);
            1 other failure (e.g. a write error: finished shards are kept, see --resume);
            130 interrupted by SIGINT/SIGTERM (finished shards kept, see --resume).
Crash safety: OUTPUT_ROOT/.msms/checkpoint.json records every finished shard; after a crash,
kill, full disk or Ctrl-C, run the same command with --resume to continue.

Example:
  msms build-shards --input-hdf5 GeMS_C1_DreaMS.0.hdf5 GeMS_C1_DreaMS.1.hdf5 --output-root shards/c1";

/// Flags of `msms build-shards`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// HDF5 input files, numbered as one sequence of spectra in the order given.
    #[arg(long = "input-hdf5", value_name = "FILE", num_args = 1..)]
    pub input_hdf5: Vec<PathBuf>,
    /// Directory for manifest.json and the shards; must be empty or absent (see --overwrite).
    #[arg(long, value_name = "DIR")]
    pub output_root: Option<PathBuf>,
    /// YAML config file (see configs/); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Ask for the mode, inputs, output root, config file and main options on the terminal,
    /// show the equivalent command line and run it when confirmed (also what bare `msms`
    /// does on a terminal). Takes no other flags; refused (exit 2) without a terminal.
    #[arg(long)]
    pub interactive: bool,
    /// Profile: local (laptop), production or cloud (many-core server).
    #[arg(long, value_name = "MODE")]
    pub mode: Option<Mode>,
    /// Worker threads that validate, transform and encode.
    #[arg(long, value_name = "N")]
    pub num_workers: Option<usize>,
    /// Most spectra per Parquet row group. Read units are this rounded to the nearest whole
    /// number of the spectrum dataset's chunks (1000 → 1024 for (1024, 2, 128) chunks), so
    /// each chunk is decoded once; a unit with more is written as equal smaller row groups.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Largest shard file: bytes, or with units (500MB, 1GB decimal; 512MiB, 2GiB binary).
    #[arg(long, value_name = "SIZE")]
    pub shard_size: Option<ByteSize>,
    /// Convert only the first N spectra of the whole input sequence.
    #[arg(long, value_name = "N")]
    pub max_spectra: Option<u64>,
    /// Read, validate and transform everything; write nothing; report the projected shards.
    #[arg(long)]
    pub dry_run: bool,
    /// Allow a non-empty output root: an earlier run's manifest, shards and checkpoint are
    /// removed when the run starts; other files are left alone.
    #[arg(long)]
    pub overwrite: bool,
    /// Continue an interrupted run (crash, kill, full disk, Ctrl-C) from the checkpoint in the
    /// output root: finished shards are re-hashed and kept, the rest is written again, and the
    /// result is byte-identical to an uninterrupted run. Needs the same inputs and settings.
    #[arg(long, conflicts_with_all = ["overwrite", "dry_run"])]
    pub resume: bool,
    /// Convert one part of a plan made by `msms plan` (with --part K): inputs and settings
    /// come from the plan; the part goes to OUTPUT_ROOT/parts/K/. Running a part again resumes
    /// it (with or without --resume), or says it is done.
    #[arg(long, value_name = "PLAN.json", requires = "part")]
    pub plan: Option<PathBuf>,
    /// The part of --plan to convert (0-based).
    #[arg(long, value_name = "K", requires = "plan")]
    pub part: Option<usize>,
    /// Internal (set by --plan): convert only read units A..B.
    #[arg(long, value_name = "A:B", hide = true)]
    pub part_units: Option<String>,
    /// Internal (set by --plan): the config hash the settings must resolve to.
    #[arg(long, value_name = "HASH", hide = true)]
    pub plan_config_hash: Option<String>,
    /// Shard writer threads (each writes a different shard; the output does not depend on
    /// the number). Default: 1 in local mode, 2 in production.
    #[arg(long, value_name = "N")]
    pub writers: Option<usize>,
    /// Keep only the K most intense peaks (ties: lower m/z first), in m/z order.
    #[arg(long, value_name = "K")]
    pub max_peaks: Option<usize>,
    /// Intensity normalisation: max (divide by the base peak; default), sum (total ion
    /// current 1), l2 (unit norm), sqrt (square root, then divide by the max) or none.
    #[arg(long, value_name = "HOW")]
    pub normalize: Option<Normalize>,
    /// Bin the written peaks into bins of this m/z width (adds `binned`, or `bin_index` and
    /// `bin_value` with --bin-output sparse). Needs --bin-range.
    #[arg(long, value_name = "W", allow_negative_numbers = true)]
    pub bin_width: Option<f64>,
    /// m/z range of the bins, MIN:MAX: a peak is binned when MIN <= m/z < MAX.
    #[arg(long, value_name = "MIN:MAX")]
    pub bin_range: Option<BinRange>,
    /// How peaks in one bin combine: sum (DreaMS-style; default) or max (ms2deepscore-style).
    #[arg(long, value_name = "HOW")]
    pub bin_aggregation: Option<BinAggregation>,
    /// Binned value = intensity^P (default 1; ms2deepscore uses 0.5).
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub bin_scale: Option<f64>,
    /// dense: one fixed-size list of all bins; sparse: non-empty bins as index/value lists.
    #[arg(long, value_name = "LAYOUT")]
    pub bin_output: Option<BinOutput>,
    /// Keep only spectra meeting GeMS quality format A, B or C (DreaMS); the column
    /// `gems_format` records every spectrum's class either way.
    #[arg(long, value_name = "A|B|C")]
    pub quality_format: Option<QualityFormat>,
    /// Divide the spectra into splits written under OUTPUT_ROOT/NAME/, e.g.
    /// train=0.98,val=0.01,test=0.01 (fractions summing to 1). Default: everything in train.
    #[arg(long, value_name = "NAME=FRAC,...")]
    pub splits: Option<Splits>,
    /// Seed of the split assignment (default 0): another seed, another division.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// What decides a spectrum's split: lsh (near-duplicates stay together; the default when
    /// the inputs have an lsh dataset), name (all spectra of one source file together) or
    /// spectrum (each on its own; the default otherwise).
    #[arg(long, value_name = "KEY")]
    pub split_key: Option<SplitKey>,
    /// exact: drop spectra whose written peaks and precursor m/z equal an earlier one's
    /// (counted as rejected, reason `duplicate`; 16 bytes of memory per spectrum kept).
    #[arg(long, value_name = "HOW")]
    pub dedup: Option<Dedup>,
    /// Reject spectra with fewer peaks than this (default 1).
    #[arg(long, value_name = "N")]
    pub min_peaks: Option<usize>,
    /// Reject spectra whose precursor m/z is above this.
    #[arg(long, value_name = "MZ", allow_negative_numbers = true)]
    pub max_precursor_mz: Option<f64>,
    /// Print errors only.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more: at the end, every shard (path, rows, bytes, SHA-256) and how each dataset
    /// was decoded.
    #[arg(short, long)]
    pub verbose: bool,
    /// Accepted for compatibility with the Python pipeline; has no effect.
    #[arg(long)]
    pub use_dask: bool,
    /// Row decoder: native (chunks decoded from a memory map where the filters allow it,
    /// libhdf5 elsewhere; default) or libhdf5 (everything through H5Dread). Same output.
    #[arg(long, value_name = "HOW", env = "MSMS_DECODE", value_enum, default_value_t = Decode::Native)]
    pub decode: Decode,
}

/// Flags of `msms synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output HDF5 file (overwritten).
    #[arg(value_name = "OUT.hdf5")]
    pub out: PathBuf,
    /// Number of spectra.
    #[arg(long, default_value_t = 10_000)]
    pub spectra: u64,
    /// Storage, comma-separated: gems (row chunks of 1024 + gzip 4, default), auto-chunk
    /// (h5py-style per-peak-slot chunks, uncompressed), contiguous, gzip, no-compression,
    /// shuffle (shuffle + deflate + fletcher32), float32, high-form ((N, 128, 2) `spectra`),
    /// strings (`file_name` and `lsh` as fixed-length strings), embedding (adds
    /// DreaMS_embedding (N, 1024), file_id, scan_number and a metadata/ group).
    #[arg(long, default_value = "gems", value_parser = clap::value_parser!(SynthLayout))]
    pub layout: SynthLayout,
    /// Share of spectra with a planted fault (0 to 1), cycling through every rejection reason.
    #[arg(long, default_value_t = 0.0)]
    pub faults: f64,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Parse `args` and run; returns the process exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<T> = args.into_iter().collect();
    if args.len() == 1 && crate::cli::interactive::on_terminal() {
        return crate::cli::interactive::bare();
    }
    let command = Cli::command().long_version(long_version());
    let cli = match command
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Command::BuildShards(a) if a.interactive => crate::cli::interactive::build(&a),
        Command::BuildShards(a) => build(*a),
        Command::Synth(a) => synth_cmd(a),
        Command::Plan(a) => plan_cmd(*a),
        Command::Merge(a) => merge_cmd(a),
        Command::Verify(a) => verify_cmd(&a.root, &a.flags),
        Command::ValidateShards(a) => verify_cmd(&a.output, &a.flags),
        Command::Doctor(a) => doctor::run(&a),
        Command::Completions(a) => crate::cli::interactive::completions(&a),
        Command::Man(a) => crate::cli::interactive::man(&a),
        Command::Inspect(a) => inspect::run(a),
        Command::QualityReport(a) => crate::commands::report::run(a),
    }
}

fn synth_cmd(a: SynthArgs) -> i32 {
    if !(0.0..=1.0).contains(&a.faults) {
        eprintln!(
            "msms synth: --faults must be between 0 and 1, got {}",
            a.faults
        );
        return 2;
    }
    let opts = SynthOptions {
        spectra: a.spectra,
        layout: a.layout,
        faults: a.faults,
        seed: a.seed,
    };
    match synth::write(&a.out, &opts) {
        Ok(report) => {
            let planted: Vec<String> = report
                .planted
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            println!(
                "msms synth: wrote {} spectra to {} ({} bytes){}",
                report.spectra,
                a.out.display(),
                std::fs::metadata(&a.out).map(|m| m.len()).unwrap_or(0),
                if planted.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; planted faults: {} (too_few_peaks are one-peak spectra, rejected only with --min-peaks 2)",
                        planted.join(", ")
                    )
                }
            );
            0
        }
        Err(e) => {
            eprintln!("msms synth: {e}");
            1
        }
    }
}

fn long_version() -> &'static str {
    let text = format!(
        "{}\nSIMD: {} (chosen at compile time by `wide`; build with RUSTFLAGS=\"-C target-cpu=native\" for this CPU's widest)\nHDF5: bundled static {}",
        env!("CARGO_PKG_VERSION"),
        msms_kernels::simd_level(),
        crate::read::h5::library_version()
    );
    Box::leak(text.into_boxed_str())
}

/// Messages at a level, to stderr and to the log file when one is configured.
struct Log {
    level: u8,
    file: Option<std::fs::File>,
}

impl Log {
    fn level_of(name: &str) -> u8 {
        match name {
            "error" => 0,
            "warn" => 1,
            "info" => 2,
            "debug" => 3,
            _ => 4,
        }
    }

    fn at(&mut self, level: u8, msg: &str) {
        if level <= self.level {
            eprintln!("{msg}");
        }
        if let Some(f) = &mut self.file {
            let _ = writeln!(f, "{msg}");
        }
    }
}

impl BuildArgs {
    /// The command-line layer of the configuration these flags give.
    pub fn layer(&self) -> Layer {
        let a = self;
        Layer {
            mode: a.mode,
            inputs: (!a.input_hdf5.is_empty()).then(|| a.input_hdf5.clone()),
            output_root: a.output_root.clone(),
            num_workers: a.num_workers,
            writers: a.writers,
            shard_size: a.shard_size,
            batch_size: a.batch_size,
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

fn build(a: BuildArgs) -> i32 {
    if let Some(plan) = &a.plan {
        return build_part(plan, &a);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let resolved = (|| {
        let file = a.config.as_deref().map(Layer::from_yaml_file).transpose()?;
        let env = Layer::from_env(std::env::vars())?;
        let cli = a.layer();
        Settings::resolve(&cli, file.as_ref(), &env, cores)
    })();
    let settings = match resolved {
        Ok(s) => s,
        Err(e) => {
            eprintln!("msms build-shards: {}", error_chain(&e));
            return 2;
        }
    };
    if let Some(want) = &a.plan_config_hash {
        if settings.config_hash() != *want {
            eprintln!(
                "msms build-shards: the plan's settings resolve to config hash {} here, not the plan's {want}; check the MSMS_* variables and the msms version on this machine",
                settings.config_hash()
            );
            return 2;
        }
    }
    let units = match a.part_units.as_deref().map(|t| {
        t.split_once(':')
            .and_then(|(x, y)| Some(x.parse::<u64>().ok()?..y.parse::<u64>().ok()?))
    }) {
        None => None,
        Some(Some(r)) => Some(r),
        Some(None) => {
            eprintln!("msms build-shards: --part-units wants A:B");
            return 2;
        }
    };
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
                return 2;
            }
        },
        None => None,
    };
    let mut log = Log {
        level: Log::level_of(&settings.log_level),
        file,
    };
    if a.use_dask {
        log.at(1, "msms build-shards: note: --use-dask has no effect (conversion runs in-process on worker threads)");
    }
    if settings.inputs.is_empty() {
        log.at(
            0,
            "msms build-shards: no inputs: give --input-hdf5 FILE... (or `inputs:` in --config)",
        );
        return 2;
    }
    if settings.output_root.is_none() && !a.dry_run {
        log.at(
            0,
            "msms build-shards: no output root: give --output-root DIR (or --dry-run)",
        );
        return 2;
    }
    let mappings = match pipeline::detect_inputs(&settings.inputs) {
        Ok(m) => m,
        Err(e) => {
            log.at(0, &format!("msms build-shards: refusing input: {e}"));
            return 2;
        }
    };
    let p = &settings.profile;
    log.at(
        2,
        &format!(
            "msms build-shards: mode {}: {} workers, batch {}, shard size {}, normalize {}, min peaks {}{}{}",
            settings.mode.as_str(),
            p.num_workers,
            p.batch_size,
            p.shard_size,
            settings.normalize.as_str(),
            settings.min_peaks,
            settings.max_precursor_mz.map(|m| format!(", max precursor m/z {m}")).unwrap_or_default(),
            settings.max_spectra.map(|m| format!(", first {m} spectra")).unwrap_or_default(),
        ),
    );
    for m in &mappings {
        log.at(2, m.to_string().trim_end());
    }
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
        stop: Some(install_stop_handlers()),
        units,
    };
    match pipeline::build_shards(&opts, &mappings) {
        Ok(summary) => {
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
            let text = summary_text(&summary, a.dry_run);
            if log.level >= 1 {
                print!("{text}");
            }
            if let Some(f) = &mut log.file {
                let _ = f.write_all(text.as_bytes());
            }
            0
        }
        Err(e) => {
            log.at(0, &format!("msms build-shards: {}", error_chain(&e)));
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
fn install_stop_handlers() -> &'static AtomicBool {
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
fn resume_command() -> String {
    let mut args: Vec<String> = std::env::args()
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
pub fn summary_text(s: &Summary, dry_run: bool) -> String {
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

// ---------------------------------------------------------------------------------------
// msms verify / msms validate-shards

const AFTER_VERIFY: &str = "\
Checks, for every shard listed in ROOT/manifest.json (several shards at a time):
  - the file exists and its size and SHA-256 equal the manifest's (a single changed byte is
    found); a shard that differs here is not opened further;
  - its Parquet footer reads, and its row count, Arrow schema (names, types, nullability)
    and msms_shards.config_hash, format_version and tool_version equal the manifest's;
  - its spectrum_id column starts and ends at the recorded first/last ids and strictly
    increases, within the shard and across shards;
and for the dataset: dataset_digest recomputed from the shard list; counts.written = sum of
the shards' rows, counts.read = written + rejected; no */shard-*.parquet file the manifest
does not list; no leftover *.tmp file.

--full also reads every row: m/z finite, > 0 and strictly ascending; intensities finite and
> 0; num_peaks equal to both list lengths; peak count within min_peaks and max_peaks;
precursor m/z allowed; gems_format meeting quality_format; intensities normalised as the
manifest's settings record (max, sqrt: largest exactly 1; sum, l2: within 1e-6 of 1).

Output: one line per problem on stdout, `FILE: what differs` with FILE relative to ROOT
(manifest.json for the dataset as a whole), then one summary line on stdout. A progress bar
goes to stderr when it is a terminal.
Exit codes: 0 everything matches; 1 at least one problem (each listed); 2 ROOT or its
manifest.json cannot be read, or is not an msms-shards manifest of a known version.

Examples:
  msms verify shards/c1
  msms verify shards/c1 --full -j 8
  msms validate-shards --output shards/c1";

/// Flags shared by `msms verify` and `msms validate-shards`.
#[derive(Debug, Args)]
pub struct VerifyFlags {
    /// Also read every row and check every spectrum: m/z finite, positive and strictly
    /// ascending, intensities finite and positive, peak counts, precursor, quality format,
    /// and normalisation as recorded in the manifest. Reads the peak columns of every shard.
    #[arg(long)]
    pub full: bool,
    /// Print only the problems: no progress bar and no summary line (the exit code tells).
    #[arg(short, long)]
    pub quiet: bool,
    /// Shards checked at the same time (default: one per core). 1 suits a spinning disk.
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// With --full: problems with single spectra listed before the rest are only counted.
    #[arg(long, value_name = "N", default_value_t = crate::commands::verify::DEFAULT_MAX_LISTED)]
    pub max_listed: usize,
}

/// Arguments of `msms verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Output root of `msms build-shards`: the directory holding manifest.json.
    #[arg(value_name = "ROOT")]
    pub root: PathBuf,
    /// How to check.
    #[command(flatten)]
    pub flags: VerifyFlags,
}

/// Arguments of `msms validate-shards`.
#[derive(Debug, Args)]
pub struct ValidateShardsArgs {
    /// Output root of `msms build-shards`: the directory holding manifest.json.
    #[arg(long, value_name = "ROOT")]
    pub output: PathBuf,
    /// How to check.
    #[command(flatten)]
    pub flags: VerifyFlags,
}

/// `msms verify ROOT`: print each problem, then the summary; exit 0, 1 or 2.
fn verify_cmd(root: &std::path::Path, f: &VerifyFlags) -> i32 {
    use crate::commands::verify::{Options, Verifier};
    let fail = |e: &dyn std::error::Error| {
        eprintln!("msms verify: {}", error_chain(e));
        2
    };
    let verifier = match Verifier::open(root) {
        Ok(v) => v,
        Err(e) => return fail(&e),
    };
    let opts = Options {
        full: f.full,
        threads: f.threads.map(|n| n as usize),
        max_listed: f.max_listed,
    };
    let bar = (!f.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
        let bar = indicatif::ProgressBar::new(verifier.work(f.full));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40.cyan/blue} {percent:>3}%  ETA {eta}  {msg}",
            )
            .expect("valid template"),
        );
        bar.set_message(if f.full {
            "hashing, checking spectra"
        } else {
            "hashing"
        });
        bar
    });
    let progress = |n: u64| {
        if let Some(b) = &bar {
            b.inc(n);
        }
    };
    let report = match verifier.run(&opts, &progress) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut out = String::new();
    for p in &report.problems {
        let _ = writeln!(out, "{p}");
    }
    if report.omitted > 0 {
        let _ = writeln!(
            out,
            "… and {} more problems with single spectra (--max-listed N lists more)",
            report.omitted
        );
    }
    if !f.quiet {
        out.push_str(&verify_summary(&report));
    }
    // A closed pipe (`msms verify ROOT | head`) is not an error of the verification.
    let _ = std::io::stdout().write_all(out.as_bytes());
    if report.is_ok() {
        0
    } else {
        1
    }
}

/// `msms verify: verified 12 shards, 1,234,567 rows, 8.1 GB: OK` (or `: 3 problems`).
pub fn verify_summary(r: &crate::commands::verify::Report) -> String {
    let n = r.problem_count();
    format!(
        "msms verify: verified {} shard{}, {} rows{}, {}: {}\n",
        r.shards,
        if r.shards == 1 { "" } else { "s" },
        thousands(r.rows),
        if r.full {
            " (every spectrum checked)"
        } else {
            ""
        },
        human_bytes(r.bytes),
        match n {
            0 => "OK".to_string(),
            1 => "1 problem".to_string(),
            n => format!("{} problems", thousands(n)),
        }
    )
}

/// `build-shards --plan P --part K --output-root ROOT`: the part's own `build-shards`.
fn build_part(plan_path: &std::path::Path, a: &BuildArgs) -> i32 {
    use crate::run::distributed::{part_root, Plan};
    let fail = |msg: String| {
        eprintln!("msms build-shards: {msg}");
        2
    };
    let given: Vec<&str> = [
        (!a.input_hdf5.is_empty(), "--input-hdf5"),
        (a.config.is_some(), "--config"),
        (a.mode.is_some(), "--mode"),
        (a.shard_size.is_some(), "--shard-size"),
        (a.batch_size.is_some(), "--batch-size"),
        (a.max_spectra.is_some(), "--max-spectra"),
        (a.normalize.is_some(), "--normalize"),
        (a.max_peaks.is_some(), "--max-peaks"),
        (a.bin_width.is_some(), "--bin-width"),
        (a.quality_format.is_some(), "--quality-format"),
        (a.min_peaks.is_some(), "--min-peaks"),
        (a.max_precursor_mz.is_some(), "--max-precursor-mz"),
        (a.splits.is_some(), "--splits"),
        (a.dedup.is_some(), "--dedup"),
        (a.overwrite, "--overwrite"),
        (a.dry_run, "--dry-run"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, f)| *f)
    .collect();
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
        Err(e) => return fail(e),
    };
    let mut argv = match plan.part_argv(k, root) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    // The plan travels with the output: `msms merge ROOT` reads it there.
    let copy = root.join("plan.json");
    if !copy.exists() {
        let made = std::fs::create_dir_all(root)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                crate::write::atomic::write_atomic(&copy, plan.to_json().as_bytes())
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = made {
            return fail(format!("cannot write {}: {e}", copy.display()));
        }
    } else if Plan::load(&copy).ok().as_ref() != Some(&plan) {
        return fail(format!(
            "{} holds another plan; give each plan its own output root",
            copy.display()
        ));
    }
    // A part that ran before resumes (or says it is finished).
    let proot = part_root(root, k);
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
    if a.verbose {
        argv.push("--verbose".into());
    }
    argv.extend(["--decode".into(), a.decode.as_str().into()]);
    run(argv)
}

fn plan_cmd(a: PlanArgs) -> i32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let resolved = (|| {
        let file = a
            .build
            .config
            .as_deref()
            .map(Layer::from_yaml_file)
            .transpose()?;
        let env = Layer::from_env(std::env::vars())?;
        Settings::resolve(&a.build.layer(), file.as_ref(), &env, cores)
    })();
    let settings = match resolved {
        Ok(s) => s,
        Err(e) => {
            eprintln!("msms plan: {}", error_chain(&e));
            return 2;
        }
    };
    if settings.inputs.is_empty() {
        eprintln!("msms plan: no inputs: give --input-hdf5 FILE...");
        return 2;
    }
    let b = &a.build;
    let pointless: Vec<&str> = [
        (
            b.output_root.is_some(),
            "--output-root (give it to each part)",
        ),
        (b.resume, "--resume"),
        (b.overwrite, "--overwrite"),
        (b.dry_run, "--dry-run"),
        (b.plan.is_some(), "--plan"),
        (b.interactive, "--interactive"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, f)| *f)
    .collect();
    if !pointless.is_empty() {
        eprintln!(
            "msms plan: {} has no meaning for a plan; remove it",
            pointless.join(", ")
        );
        return 2;
    }
    let mappings = match pipeline::detect_inputs(&settings.inputs) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("msms plan: refusing input: {e}");
            return 2;
        }
    };
    let plan = match crate::run::distributed::make_plan(&settings, &mappings, a.parts) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("msms plan: {e}");
            return 2;
        }
    };
    if let Err(e) = crate::write::atomic::write_atomic(&a.output, plan.to_json().as_bytes()) {
        eprintln!("msms plan: {}", error_chain(&e));
        return 1;
    }
    println!(
        "msms plan: {} parts of {} read units ({} spectra) in {}",
        plan.parts.len(),
        plan.units,
        plan.parts.iter().map(|p| p.rows).sum::<u64>(),
        a.output.display()
    );
    for p in &plan.parts {
        println!(
            "  part {:>3}: units {}..{}, {} spectra from spectrum_id {}, ~{}",
            p.part,
            p.units[0],
            p.units[1],
            p.rows,
            p.first_spectrum_id,
            human_bytes(p.stored_bytes)
        );
    }
    println!(
        "run each part:  msms build-shards --plan {} --part K --output-root ROOT\nthen:           msms merge ROOT",
        a.output.display()
    );
    0
}

fn merge_cmd(a: MergeArgs) -> i32 {
    match crate::run::distributed::merge(&a.root) {
        Ok(m) => {
            println!(
                "msms merge: {} parts, {} shards, {} spectra written ({} read); {}",
                m.run.threads.split_whitespace().nth(2).unwrap_or("?"),
                m.shards.len(),
                m.counts.written,
                m.counts.read,
                a.root.join("manifest.json").display()
            );
            println!("  dataset digest   {}", m.dataset_digest);
            0
        }
        Err(e) => {
            eprintln!("msms merge: {}", error_chain(&e));
            match e {
                crate::run::distributed::MergeError::Write(_) => 1,
                _ => 2,
            }
        }
    }
}
mod doctor;
mod inspect;
pub mod interactive;
