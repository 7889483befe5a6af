//! `msms status`: its flags, help text and the status as printed (the status itself is
//! [`crate::commands::status`]).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::commands::status::{status, RootStatus, State, Status};
use crate::text::{human_bytes, thousands};

/// Flags of `msms status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// The output root of a conversion (a single run's, or a planned one's: ROOT holds
    /// _plan.json and parts/K/).
    #[arg(value_name = "ROOT")]
    pub(crate) root: PathBuf,
    /// Print the status as one JSON object (format "msms-status", version 1) on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Print it again every SECS seconds while the root is running (stops once it is not).
    #[arg(long, value_name = "SECS")]
    pub(crate) watch: Option<f64>,
}

/// Text after `msms status --help`.
pub(crate) const AFTER_HELP: &str = "\
States: running (a command holds the root: its lock file names it and its process is alive,
or it runs on another host), interrupted (a checkpoint and no manifest: continue it with the
resume command shown), finished (a manifest), not started. A planned root (ROOT/_plan.json)
shows one line per part and the whole: finished once merged; `msms merge ROOT` is shown when
every part is finished and the merge is not done.

Figures: spectra read (of the total the run reads), rejected (as of the last finished shard
while unfinished), finished shards and their bytes, and while running the rate since the
command started and the time left at that rate. Nothing is locked or written.

JSON (--json): {\"format\": \"msms-status\", \"version\": 1, \"root\", \"overall\": ROOT_STATUS,
\"parts\": [ROOT_STATUS, ...]}, each ROOT_STATUS {\"root\", \"state\" (running | interrupted |
finished | not_started), \"holder\" ({\"command\", \"pid\", \"host\", \"started\"} or null),
\"spectra_read\", \"spectra_total\" (null if unknown), \"rejected\", \"shards\", \"bytes\",
\"rate\" (spectra/s or null), \"eta_seconds\", \"updated_at\", \"resume_command\"}.

Exit codes: 0 always for a readable root (the state is in the output); 2 bad flags.

Examples:
  msms status /data/shards/c1
  msms status /data/shards/c1 --watch 10
  msms status /data/shards/c1 --json";

/// `msms status ROOT`: print it (again every `--watch` seconds while running); exit 0.
pub(crate) fn run(args: &StatusArgs) -> i32 {
    if let Some(secs) = args.watch {
        if !(secs.is_finite() && secs > 0.0) {
            eprintln!("msms status: --watch needs a number of seconds above 0, got {secs}");
            return 2;
        }
    }
    loop {
        let s = status(&args.root);
        let shown = if args.json {
            let mut j = serde_json::to_string_pretty(&s).expect("status serialises");
            j.push('\n');
            j
        } else {
            text(&s)
        };
        // A closed pipe (`msms status ROOT | head`) ends the command quietly.
        let mut out = std::io::stdout().lock();
        if out
            .write_all(shown.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return 0;
        }
        drop(out);
        match args.watch {
            Some(secs) if s.overall.state == State::Running => {
                std::thread::sleep(Duration::from_secs_f64(secs));
            }
            _ => return 0,
        }
    }
}

/// The status as printed.
pub(crate) fn text(s: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", s.root.display(), headline(&s.overall));
    figures(&mut out, &s.overall, "  ");
    for p in &s.parts {
        let k = p
            .root
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let _ = writeln!(out, "  part {k}: {}", headline(p));
        figures(&mut out, p, "    ");
    }
    out
}

/// `running: msms build-shards (pid …)`, or the state alone.
fn headline(r: &RootStatus) -> String {
    match &r.holder {
        Some(h) => format!("{} ({h})", r.state.as_str()),
        None => r.state.as_str().to_string(),
    }
}

/// The figures of one root, indented by `pad`.
fn figures(out: &mut String, r: &RootStatus, pad: &str) {
    if r.state == State::NotStarted && r.spectra_read == 0 {
        if let Some(c) = &r.resume_command {
            let _ = writeln!(out, "{pad}next       {c}");
        }
        return;
    }
    let total = match r.spectra_total {
        Some(t) if t > 0 => format!(
            " of {} ({:.1} %)",
            thousands(t),
            100.0 * r.spectra_read as f64 / t as f64
        ),
        Some(t) => format!(" of {}", thousands(t)),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "{pad}spectra    {} read{total}, {} rejected",
        thousands(r.spectra_read),
        thousands(r.rejected)
    );
    let _ = writeln!(
        out,
        "{pad}shards     {} finished, {}",
        r.shards,
        human_bytes(r.bytes)
    );
    if let Some(rate) = r.rate {
        let eta = r
            .eta_seconds
            .map_or(String::new(), |e| format!("; about {} left", duration(e)));
        let _ = writeln!(
            out,
            "{pad}rate       {} spectra/s{eta}",
            thousands(rate.round() as u64)
        );
    }
    if let Some(u) = &r.updated_at {
        if r.state != State::Finished {
            let _ = writeln!(out, "{pad}updated    {u}");
        }
    }
    if let Some(c) = &r.resume_command {
        let _ = writeln!(out, "{pad}next       {c}");
    }
}

/// `75 s`, `12 min`, `3.5 h`.
fn duration(secs: f64) -> String {
    if secs < 120.0 {
        format!("{secs:.0} s")
    } else if secs < 7200.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}
