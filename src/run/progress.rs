//! What a run tells its caller while it runs: the [`Progress`] mode, the [`Event`]s (notices,
//! plain progress lines, warnings) handed to the caller's callback instead of being printed,
//! and the progress bar drawn on a terminal.

use std::fmt;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use crate::process::batch::Counts;

/// How to report progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Nothing (warnings excepted).
    Quiet,
    /// A progress bar when stderr is a terminal, else a plain line every few seconds; notices
    /// about the output root and the inputs.
    Auto,
}

/// A line a run has for its user, as it happens; the `msms` binary prints each on stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// About the output root, a resumed run or how an input is decoded (not under
    /// [`Progress::Quiet`]).
    Notice(String),
    /// A plain progress line ([`Progress::Auto`] when stderr is not a terminal).
    Progress(String),
    /// Something failed that does not change the run's outcome (in every progress mode).
    Warning(String),
}

impl fmt::Display for Event {
    /// The line as the user sees it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Notice(s) | Event::Progress(s) | Event::Warning(s) => f.write_str(s),
        }
    }
}

/// Where a run's [`Event`]s go: the caller's callback, filtered by the progress mode.
#[derive(Clone, Copy)]
pub(crate) struct Events<'a> {
    report: &'a (dyn Fn(Event) + Sync),
    quiet: bool,
}

impl<'a> Events<'a> {
    pub(crate) fn new(report: &'a (dyn Fn(Event) + Sync), mode: Progress) -> Self {
        Events {
            report,
            quiet: mode == Progress::Quiet,
        }
    }

    /// A notice, unless quiet.
    pub(crate) fn notice(&self, line: String) {
        if !self.quiet {
            (self.report)(Event::Notice(line));
        }
    }

    /// A warning, always.
    pub(crate) fn warning(&self, line: String) {
        (self.report)(Event::Warning(line));
    }

    fn progress(&self, line: String) {
        (self.report)(Event::Progress(line));
    }
}

/// A progress bar on a terminal, a plain line every 5 s otherwise.
pub(crate) struct ProgressReporter<'a> {
    bar: Option<indicatif::ProgressBar>,
    plain: bool,
    total: u64,
    started: Instant,
    last: Instant,
    events: Events<'a>,
}

impl<'a> ProgressReporter<'a> {
    pub(crate) fn new(mode: Progress, total: u64, events: Events<'a>) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = (mode == Progress::Auto && tty).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40.cyan/blue} {human_pos}/{human_len} spectra  ETA {eta}  {msg}",
                )
                .expect("valid template"),
            );
            bar
        });
        let now = Instant::now();
        ProgressReporter {
            bar,
            plain: mode == Progress::Auto && !tty,
            total,
            started: now,
            last: now,
            events,
        }
    }

    pub(crate) fn update(&mut self, read: u64, counts: &Counts) {
        if let Some(bar) = &self.bar {
            bar.set_position(read);
            let rate = read as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "{rate:.0} spectra/s, {} rejected",
                counts.rejected_total()
            ));
        } else if self.plain && self.last.elapsed() >= Duration::from_secs(5) {
            self.last = Instant::now();
            let rate = read as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            self.events.progress(format!(
                "progress: {read}/{} spectra ({:.1}%), {:.0} spectra/s, {} rejected",
                self.total,
                100.0 * read as f64 / self.total.max(1) as f64,
                rate,
                counts.rejected_total()
            ));
        }
    }

    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_drops_notices_and_keeps_warnings() {
        let got = parking_lot::Mutex::new(Vec::new());
        let report = |e: Event| got.lock().push(e.to_string());
        for mode in [Progress::Quiet, Progress::Auto] {
            let events = Events::new(&report, mode);
            events.notice("notice: n".into());
            events.warning("msms: warning: w".into());
        }
        assert_eq!(
            *got.lock(),
            ["msms: warning: w", "notice: n", "msms: warning: w"]
        );
    }
}
