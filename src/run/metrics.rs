//! `build-shards --metrics-file PATH`: the run's counters in the Prometheus text format,
//! rewritten every [`EVERY`] while the run goes and once when it ends, for node-exporter's
//! textfile collector (point it at the directory; name the file `*.prom`). Each write goes to
//! a temporary file beside PATH that is renamed over it, so a scrape never reads half a file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::write::atomic::write_atomic;
use crate::write::error::SinkError;

/// How often the file is rewritten while the run goes.
pub(crate) const EVERY: Duration = Duration::from_secs(2);

/// The counters of a run at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// Spectra read (with those of the interrupted run a `--resume` continues).
    pub(crate) read: u64,
    /// Spectra the run reads in all.
    pub(crate) total: u64,
    /// Spectra written.
    pub(crate) written: u64,
    /// Spectra rejected.
    pub(crate) rejected: u64,
    /// Shards finished.
    pub(crate) shards: u64,
    /// Bytes of the finished shards.
    pub(crate) bytes: u64,
}

/// The metrics file of a run.
#[derive(Debug)]
pub(crate) struct MetricsFile {
    path: PathBuf,
    root: String,
    started: f64,
    last: Option<Instant>,
}

impl MetricsFile {
    /// Metrics of the run writing to `root`, to be written to `path`.
    pub(crate) fn new(path: &Path, root: &Path) -> MetricsFile {
        MetricsFile {
            path: path.to_path_buf(),
            root: root.display().to_string(),
            started: unix_now(),
            last: None,
        }
    }

    /// Whether [`EVERY`] has passed since the last write (or none was made).
    pub(crate) fn due(&self) -> bool {
        self.last.is_none_or(|t| t.elapsed() >= EVERY)
    }

    /// Write `now`, with `msms_running` 1 or 0.
    pub(crate) fn write(&mut self, now: &Snapshot, running: bool) -> Result<(), SinkError> {
        self.last = Some(Instant::now());
        write_atomic(
            &self.path,
            text(&self.root, now, running, self.started, unix_now()).as_bytes(),
        )
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The Prometheus text form: one gauge per counter, labelled with the output root.
pub(crate) fn text(root: &str, s: &Snapshot, running: bool, started: f64, updated: f64) -> String {
    let label = root
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    let gauges: [(&str, &str, String); 9] = [
        (
            "msms_spectra_read",
            "Spectra read so far.",
            s.read.to_string(),
        ),
        (
            "msms_spectra_total",
            "Spectra the run reads in all.",
            s.total.to_string(),
        ),
        (
            "msms_spectra_written",
            "Spectra written so far.",
            s.written.to_string(),
        ),
        (
            "msms_spectra_rejected",
            "Spectra rejected so far.",
            s.rejected.to_string(),
        ),
        (
            "msms_shards_finished",
            "Shards finished (renamed into place).",
            s.shards.to_string(),
        ),
        (
            "msms_shard_bytes",
            "Bytes of the finished shards.",
            s.bytes.to_string(),
        ),
        (
            "msms_running",
            "1 while the run goes, 0 once it has ended.",
            u8::from(running).to_string(),
        ),
        (
            "msms_start_time_seconds",
            "When the run started, Unix time.",
            format!("{started:.3}"),
        ),
        (
            "msms_last_update_time_seconds",
            "When this file was written, Unix time.",
            format!("{updated:.3}"),
        ),
    ];
    let mut out = String::new();
    for (name, help, value) in gauges {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{root=\"{label}\"}} {value}\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_is_one_labelled_gauge_per_counter() {
        let s = Snapshot {
            read: 1000,
            total: 3000,
            written: 990,
            rejected: 10,
            shards: 2,
            bytes: 123_456,
        };
        let t = text("/data/\"x\"", &s, true, 1.5, 2.25);
        assert!(t.starts_with(
            "# HELP msms_spectra_read Spectra read so far.\n# TYPE msms_spectra_read gauge\nmsms_spectra_read{root=\"/data/\\\"x\\\"\"} 1000\n"
        ), "{t}");
        for line in [
            "msms_spectra_total{root=\"/data/\\\"x\\\"\"} 3000\n",
            "msms_spectra_rejected{root=\"/data/\\\"x\\\"\"} 10\n",
            "msms_shards_finished{root=\"/data/\\\"x\\\"\"} 2\n",
            "msms_shard_bytes{root=\"/data/\\\"x\\\"\"} 123456\n",
            "msms_running{root=\"/data/\\\"x\\\"\"} 1\n",
            "msms_start_time_seconds{root=\"/data/\\\"x\\\"\"} 1.500\n",
            "msms_last_update_time_seconds{root=\"/data/\\\"x\\\"\"} 2.250\n",
        ] {
            assert!(t.contains(line), "{line:?} in\n{t}");
        }
        assert_eq!(t.lines().count(), 27);
    }
}
