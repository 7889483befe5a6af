//! `msms quality-report`: its flags, its `--help` text, the progress bar, and the messages and
//! exit codes of [`crate::commands::report::write_report`].

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

use clap::Args;

use crate::commands::report::{write_report, Options, OutputPaths, ReadProgress, ReportError};
use crate::text::error_chain;

/// Explanations shown after `msms quality-report --help`.
pub(crate) const AFTER_HELP: &str = "\
Reads ROOT/_manifest.json (or a format-1 root's manifest.json) and streams the columns
num_peaks, precursor_mz, charge and rt of every shard it lists (several shards at a time, -j),
then writes, under names starting with _ so that dataset readers of ROOT skip them:
  - the HTML page (default ROOT/_quality_report.html): one self-contained file (inline CSS and
    SVG, no scripts, no external resources) with a header (dataset digest, tool version,
    config hash, settings, inputs, counts), a table of summary statistics, and seven charts:
    peaks per spectrum, precursor m/z, charge, retention time, rejection reasons, split
    sizes and shard sizes (with the shard size limit as a line). Hover a bar for its numbers.
  - the JSON (default: the HTML path with the extension .json, so ROOT/_quality_report.json):
    every number of the page, documented keys (report_version 1; see the README).
Bins: peaks per spectrum by 4 up to 128+; precursor m/z by 25 Da up to 2000+; charge <0, 0..5,
6+ and null; retention time (seconds as stored) by 2 min up to 7200+ s. Nulls and non-finite
values are counted, not binned. Shards are not re-hashed: run `msms verify` for that.

Exit codes: 0 written; 2 ROOT or its manifest cannot be used (missing, an unfinished run, not
an msms-shards manifest, a shard path outside ROOT) or the output paths clash; 1 a shard cannot
be read or holds another row count than the manifest records, or an output cannot be written.

Examples:
  msms quality-report shards/c1
  msms quality-report shards/c1 --output /tmp/c1.html      # also writes /tmp/c1.json";

/// Arguments of `msms quality-report`.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Output root of `msms build-shards`: the directory holding _manifest.json.
    #[arg(value_name = "ROOT")]
    pub root: PathBuf,
    /// HTML file to write (replaced if present). Default: ROOT/_quality_report.html.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// JSON file to write. Default: the --output path with the extension .json.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Shards read at the same time (default: one per core).
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Print errors only (no progress bar, no summary).
    #[arg(short, long)]
    pub quiet: bool,
}

/// `msms quality-report`: returns the exit code.
pub(crate) fn run(a: ReportArgs) -> i32 {
    let fail = |e: &ReportError| {
        eprintln!("msms quality-report: {}", error_chain(e));
        exit_code(e)
    };
    let paths = match OutputPaths::resolve(&a.root, a.output, a.json) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let bar = Bar {
        show: !a.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        bar: OnceLock::new(),
    };
    let opts = Options {
        threads: a.threads.map(|n| n as usize),
    };
    let written = match write_report(&a.root, &paths, &opts, &bar) {
        Ok(w) => w,
        Err(e) => return fail(&e),
    };
    if !a.quiet {
        let _ = std::io::stdout().write_all(written.summary().as_bytes());
    }
    0
}

/// The process exit code for a report that was not written: 2 for what the user gave (the
/// root, its manifest, the output paths), 1 for what failed on the way.
fn exit_code(e: &ReportError) -> i32 {
    match e {
        ReportError::Root(_) | ReportError::BadPath { .. } | ReportError::SamePath { .. } => 2,
        ReportError::Shard { .. } | ReportError::Threads { .. } | ReportError::Write { .. } => 1,
    }
}

/// The progress bar on a terminal: bytes of shards read.
struct Bar {
    /// Whether to draw it (not `--quiet`, standard error is a terminal).
    show: bool,
    bar: OnceLock<indicatif::ProgressBar>,
}

impl ReadProgress for Bar {
    fn start(&self, total_bytes: u64) {
        if !self.show {
            return;
        }
        let bar = indicatif::ProgressBar::new(total_bytes);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40.cyan/blue} {percent:>3}%  ETA {eta}  {msg}",
            )
            .expect("valid template"),
        );
        bar.set_message("reading shards");
        let _ = self.bar.set(bar);
    }

    fn advance(&self, bytes: u64) {
        if let Some(b) = self.bar.get() {
            b.inc(bytes);
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.get() {
            b.finish_and_clear();
        }
    }
}
