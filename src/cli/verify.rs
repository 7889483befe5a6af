//! `msms verify ROOT` and `msms validate-shards --output ROOT`: their flags, the progress
//! bar, one line per problem and the summary line.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::text::{error_chain, human_bytes, thousands};

/// Text after `msms verify --help` and `msms validate-shards --help`.
pub(crate) const AFTER_VERIFY: &str = "\
Checks, for every shard listed in ROOT/_manifest.json (several shards at a time; a format-1
root, written before msms named it so, has ROOT/manifest.json and is checked the same way):
  - the file exists and its size and SHA-256 equal the manifest's (a single changed byte is
    found); a shard that differs here is not opened further;
  - its Parquet footer reads, and its row count, Arrow schema (names, types, nullability)
    and msms_shards.config_hash, format_version and tool_version equal the manifest's (so a
    format-1 root's shards must say format 1, a format-2 root's format 2);
  - its spectrum_id column starts and ends at the recorded first/last ids and strictly
    increases, within the shard and across shards;
and for the dataset: dataset_digest recomputed from the shard list; counts.written = sum of
the shards' rows, counts.read = written + rejected; no */shard-*.parquet file the manifest
does not list; no leftover *.tmp file.

--full also reads every row: m/z finite, > 0 and strictly ascending; intensities finite and
> 0; num_peaks equal to both list lengths; peak count within min_peaks and max_peaks;
precursor m/z allowed; gems_format meeting quality_format; intensities normalised as the
manifest's settings record (max, sqrt: largest exactly 1; sum, l2: within 1e-6 of 1).

Output: one line per problem on stdout, `FILE: what differs` with FILE relative to ROOT (the
manifest's name for the dataset as a whole), then one summary line on stdout. A progress bar
goes to stderr when it is a terminal.
Exit codes: 0 everything matches; 1 at least one problem (each listed); 2 ROOT or its
manifest cannot be read, or is not an msms-shards manifest of a known version (1 or 2).

Examples:
  msms verify shards/c1
  msms verify shards/c1 --full -j 8
  msms validate-shards --output shards/c1";

/// Flags shared by `msms verify` and `msms validate-shards`.
#[derive(Debug, Args)]
pub(crate) struct VerifyFlags {
    /// Also read every row and check every spectrum: m/z finite, positive and strictly
    /// ascending, intensities finite and positive, peak counts, precursor, quality format,
    /// and normalisation as recorded in the manifest. Reads the peak columns of every shard.
    #[arg(long)]
    pub(crate) full: bool,
    /// Print only the problems: no progress bar and no summary line (the exit code tells).
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Shards checked at the same time (default: one per core). 1 suits a spinning disk.
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) threads: Option<u32>,
    /// With --full: problems with single spectra listed before the rest are only counted.
    #[arg(long, value_name = "N", default_value_t = crate::commands::verify::DEFAULT_MAX_LISTED)]
    pub(crate) max_listed: usize,
}

/// Arguments of `msms verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Output root of `msms build-shards`: the directory holding _manifest.json.
    #[arg(value_name = "ROOT")]
    pub(crate) root: PathBuf,
    /// How to check.
    #[command(flatten)]
    pub(crate) flags: VerifyFlags,
}

/// Arguments of `msms validate-shards`.
#[derive(Debug, Args)]
pub(crate) struct ValidateShardsArgs {
    /// Output root of `msms build-shards`: the directory holding _manifest.json.
    #[arg(long, value_name = "ROOT")]
    pub(crate) output: PathBuf,
    /// How to check.
    #[command(flatten)]
    pub(crate) flags: VerifyFlags,
}

/// `msms verify ROOT`: print each problem, then the summary; exit 0, 1 or 2.
pub(crate) fn verify_cmd(root: &Path, f: &VerifyFlags) -> i32 {
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
    for line in problem_lines(&report) {
        let _ = writeln!(out, "{line}");
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

/// The problem lines `msms verify` prints, the count of omitted ones last.
fn problem_lines(report: &crate::commands::verify::Report) -> Vec<String> {
    let mut lines: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    if report.omitted > 0 {
        lines.push(format!(
            "… and {} more problems with single spectra (--max-listed N lists more)",
            report.omitted
        ));
    }
    lines
}

/// What `msms verify ROOT [--full]` found, as it prints it (for the Python package's
/// `Dataset.verify`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Nothing differs (exit code 0).
    pub ok: bool,
    /// One line per problem (stdout before the summary).
    pub problems: Vec<String>,
    /// The summary line, without its newline.
    pub summary: String,
}

/// Run `msms verify ROOT` (with `--full`: every spectrum) without printing; `Err` is the
/// message it prints with exit code 2 (ROOT or its manifest unreadable).
pub fn verify_lines(root: &Path, full: bool) -> Result<Verified, String> {
    use crate::commands::verify::{Options, Verifier};
    let report = Verifier::open(root)
        .and_then(|v| {
            v.run(
                &Options {
                    full,
                    ..Options::default()
                },
                &|_| {},
            )
        })
        .map_err(|e| format!("msms verify: {}", error_chain(&e)))?;
    Ok(Verified {
        ok: report.is_ok(),
        problems: problem_lines(&report),
        summary: verify_summary(&report).trim_end().to_string(),
    })
}

/// `msms verify: verified 12 shards, 1,234,567 rows, 8.1 GB: OK` (or `: 3 problems`).
fn verify_summary(r: &crate::commands::verify::Report) -> String {
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
