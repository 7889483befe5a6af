//! The `msms` command line: the top-level parser ([`Cli`] and its subcommands), [`run`] which
//! dispatches to one file per command, and the `--version` text. `main.rs` only calls [`run`].
//!
//! Files: `build` (build-shards and its parts of a plan), `verify` (verify, validate-shards),
//! `plan` (plan, merge), `rebalance`, `inspect`, `doctor`, `report` (quality-report), `synth`,
//! `completions` (completions, man), `values` (clap value types of library enums) and
//! `interactive` (the questions of `build-shards --interactive`). Printing, clap types and
//! exit codes live here, not in the library.

use clap::{Parser, Subcommand};

use self::build::{build, BuildArgs, AFTER_BUILD};
use self::plan::{merge_cmd, plan_cmd, MergeArgs, PlanArgs, AFTER_PLAN};
use self::synth::{synth_cmd, SynthArgs};
use self::verify::{verify_cmd, ValidateShardsArgs, VerifyArgs, AFTER_VERIFY};

mod build;
mod completions;
mod doctor;
mod inspect;
mod interactive;
mod plan;
mod rebalance;
mod report;
mod status;
mod synth;
mod values;
mod verify;

pub use self::verify::{verify_lines, Verified};

/// msms-shards: turn GeMS-style MS/MS HDF5 datasets into validated, normalised,
/// checksummed Parquet shards for ML training.
#[derive(Debug, Parser)]
#[command(name = "msms", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Convert HDF5 inputs into Parquet shards under OUTPUT_ROOT/<split>/ (train unless
    /// --splits) plus OUTPUT_ROOT/_manifest.json; --resume continues an interrupted run.
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
    /// and shard sizes) and _quality_report.json with the same numbers.
    #[command(after_help = report::AFTER_HELP)]
    QualityReport(report::ReportArgs),
    /// Check this machine for a run: libhdf5 and SIMD level, cores, memory, and free space,
    /// writability and O_DIRECT at an output root; suggest a mode and show its profile.
    /// Exit 1 with one line per problem that would stop a run.
    #[command(after_help = doctor::AFTER_HELP)]
    Doctor(doctor::DoctorArgs),
    /// How far a conversion has come: running, interrupted, finished or not started; spectra
    /// read of the total, rejected, finished shards and bytes, rate and time left while
    /// running, the command that continues it; one line per part of a planned root.
    #[command(after_help = status::AFTER_HELP)]
    Status(status::StatusArgs),
    /// Cut a conversion into N parts for a cluster (Dask, Slurm): chunk-aligned runs of the
    /// input balanced by stored bytes, written to a plan file; each part is then converted by
    /// `msms build-shards --plan PLAN.json --part K --output-root ROOT`.
    #[command(after_help = AFTER_PLAN)]
    Plan(Box<PlanArgs>),
    /// Join the parts of a planned conversion: check every part's manifest and shard digests,
    /// then write ROOT/_manifest.json listing all shards (no data is copied).
    #[command(
        after_help = "Exit codes: 0 merged; 2 a part is missing, interrupted, written with other settings or damaged, \
or the parts are of two output formats (one line each, with the command that redoes it), or ROOT holds no _plan.json \
(nor a format-1 root's plan.json); 1 the manifest cannot be written.
Parts of output format 1 (each with its manifest.json) merge into a format-1 root: ROOT/manifest.json."
    )]
    Merge(MergeArgs),
    /// Rewrite a finished root (a single run's, or merged parts) into even shards per split,
    /// from its shards alone: same rows in spectrum_id order, every shard within
    /// --shard-size and all but each split's last at least half full; optionally another
    /// row group size or compression.
    #[command(after_help = rebalance::AFTER_HELP)]
    Rebalance(rebalance::RebalanceArgs),
    /// Write a synthetic GeMS-layout HDF5 file (for trying the tool, tests and benchmarks).
    Synth(SynthArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell) to stdout.
    #[command(after_help = crate::cli::completions::COMPLETIONS_AFTER_HELP)]
    Completions(crate::cli::completions::CompletionsArgs),
    /// Print the msms(1) man page to stdout, or with --output DIR write it and one page per
    /// subcommand (msms-build-shards.1, ...) there.
    #[command(after_help = crate::cli::completions::MAN_AFTER_HELP)]
    Man(crate::cli::completions::ManArgs),
}

/// The command line [`run`] was given (the process's own arguments are another program's
/// when msms runs inside Python: `python /venv/bin/msms ...`).
/// The latest call's: the interactive mode runs the command it built through [`run`] again.
static ARGS: std::sync::Mutex<Option<Vec<String>>> = std::sync::Mutex::new(None);

/// The command line as [`run`] was given it (the program name first).
pub(crate) fn command_line() -> Vec<String> {
    ARGS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(|| std::env::args().collect())
}

/// Parse `args` and run; returns the process exit code.
///
/// `msms` (the binary) passes its own arguments; the Python package's `msms` command passes
/// `sys.argv`. Output, exit codes and signal handling are the same either way.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<T> = args.into_iter().collect();
    *ARGS.lock().unwrap_or_else(|e| e.into_inner()) = Some(
        args.iter()
            .map(|a| a.clone().into().to_string_lossy().into_owned())
            .collect(),
    );
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
        Command::Rebalance(a) => rebalance::run(&a),
        Command::Verify(a) => verify_cmd(&a.root, &a.flags),
        Command::ValidateShards(a) => verify_cmd(&a.output, &a.flags),
        Command::Doctor(a) => doctor::run(&a),
        Command::Status(a) => status::run(&a),
        Command::Completions(a) => crate::cli::completions::completions(&a),
        Command::Man(a) => crate::cli::completions::man(&a),
        Command::Inspect(a) => inspect::run(a),
        Command::QualityReport(a) => report::run(a),
    }
}

/// The `--version` text: version, SIMD level of the kernels and the bundled HDF5 version.
fn long_version() -> &'static str {
    let text = format!(
        "{}\nSIMD: {} (chosen at compile time by `wide`; build with RUSTFLAGS=\"-C target-cpu=native\" for this CPU's widest)\nHDF5: bundled static {}",
        env!("CARGO_PKG_VERSION"),
        msms_kernels::simd_level(),
        crate::read::h5::library_version()
    );
    Box::leak(text.into_boxed_str())
}
