//! `msms status ROOT`: how far a conversion has come, from what its output root holds, for a
//! root that is being written, was interrupted, is finished or not started, and for a planned
//! root (`_plan.json`) one row per part.
//!
//! Nothing is locked or written: a running command is recognised by its lock file
//! (`.msms/lock`, which exists only while a command holds the root or after one died) and its
//! recorded holder, whose process is looked up when it runs on this host. Progress comes from
//! the checkpoint (`.msms/checkpoint.json`: spectra read, finished shards, the counts as of the
//! last finished shard), totals from the checkpoint's inputs (or the plan's part), a finished
//! root's figures from its manifest.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::format::checkpoint::Checkpoint;
use crate::format::manifest::{find_manifest, Manifest};
use crate::run::plan::{part_command, part_root, plan_copy, Plan};
use crate::run::{lock_holder, Holder};

/// Where a root stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum State {
    /// A command holds the root.
    Running,
    /// A checkpoint and no manifest, and no command holds the root.
    Interrupted,
    /// A manifest.
    Finished,
    /// None of these.
    NotStarted,
}

impl State {
    /// `running`, `interrupted`, `finished`, `not started`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Interrupted => "interrupted",
            State::Finished => "finished",
            State::NotStarted => "not started",
        }
    }
}

/// One root's status (a single run's, or one part's).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RootStatus {
    /// The root.
    pub(crate) root: PathBuf,
    /// Where it stands.
    pub(crate) state: State,
    /// The command holding it (running), as it recorded itself.
    pub(crate) holder: Option<Holder>,
    /// Spectra read so far (a finished root: all it read).
    pub(crate) spectra_read: u64,
    /// Spectra the run reads in all, when known.
    pub(crate) spectra_total: Option<u64>,
    /// Spectra rejected: a finished root's count, else as of the last finished shard.
    pub(crate) rejected: u64,
    /// Shards finished.
    pub(crate) shards: usize,
    /// Bytes of the finished shards.
    pub(crate) bytes: u64,
    /// Spectra per second since the holder started (running).
    pub(crate) rate: Option<f64>,
    /// Seconds left at that rate (running, total known).
    pub(crate) eta_seconds: Option<f64>,
    /// When the checkpoint was last updated, RFC 3339 UTC.
    pub(crate) updated_at: Option<String>,
    /// How to continue it (interrupted, or a part not started).
    pub(crate) resume_command: Option<String>,
}

/// The status of a root: one run, or a plan's parts and whether they are merged.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Status {
    /// Always `msms-status`; the JSON form's version is [`STATUS_VERSION`].
    pub(crate) format: &'static str,
    /// [`STATUS_VERSION`].
    pub(crate) version: u32,
    /// The root asked about.
    pub(crate) root: PathBuf,
    /// The root's own status (a planned root: its merge, `finished` once merged).
    pub(crate) overall: RootStatus,
    /// A planned root's parts, in order (empty for a single run).
    pub(crate) parts: Vec<RootStatus>,
}

/// Version of the `--json` form.
pub(crate) const STATUS_VERSION: u32 = 1;

/// The status of `root`.
pub(crate) fn status(root: &Path) -> Status {
    let plan_path = plan_copy(root);
    let plan = plan_path
        .is_file()
        .then(|| Plan::load(&plan_path).ok())
        .flatten();
    let Some(plan) = plan else {
        return Status {
            format: "msms-status",
            version: STATUS_VERSION,
            root: root.to_path_buf(),
            overall: root_status(root, None, None),
            parts: Vec::new(),
        };
    };
    let parts: Vec<RootStatus> = plan
        .parts
        .iter()
        .map(|p| {
            root_status(
                &part_root(root, p.part),
                Some(p.rows),
                Some(part_command(root, p.part)),
            )
        })
        .collect();
    Status {
        format: "msms-status",
        version: STATUS_VERSION,
        root: root.to_path_buf(),
        overall: planned_overall(root, &plan, &parts),
        parts,
    }
}

/// A planned root as a whole: finished once merged (the merge's manifest), running while a
/// part runs (or a merge holds the root), interrupted when some parts are done or
/// interrupted and none runs, not started when no part has begun; its figures are the
/// parts' sums.
fn planned_overall(root: &Path, plan: &Plan, parts: &[RootStatus]) -> RootStatus {
    let merged = root_status(root, None, None);
    if merged.state == State::Finished || merged.state == State::Running {
        return merged;
    }
    let any = |s: State| parts.iter().any(|p| p.state == s);
    let state = if any(State::Running) {
        State::Running
    } else if parts.iter().all(|p| p.state == State::NotStarted) {
        State::NotStarted
    } else {
        State::Interrupted
    };
    let sum = |f: fn(&RootStatus) -> u64| parts.iter().map(f).sum::<u64>();
    let all_finished = parts.iter().all(|p| p.state == State::Finished);
    RootStatus {
        root: root.to_path_buf(),
        state,
        holder: None,
        spectra_read: sum(|p| p.spectra_read),
        spectra_total: Some(plan.parts.iter().map(|p| p.rows).sum()),
        rejected: sum(|p| p.rejected),
        shards: parts.iter().map(|p| p.shards).sum(),
        bytes: sum(|p| p.bytes),
        rate: None,
        eta_seconds: None,
        updated_at: None,
        resume_command: all_finished.then(|| {
            format!(
                "msms merge {}",
                crate::text::shell_quote(&root.to_string_lossy())
            )
        }),
    }
}

/// The status of one root; `total` and `command` (how to start or continue it) when a plan
/// gives them.
fn root_status(root: &Path, total: Option<u64>, command: Option<String>) -> RootStatus {
    let mut s = RootStatus {
        root: root.to_path_buf(),
        state: State::NotStarted,
        holder: None,
        spectra_read: 0,
        spectra_total: total,
        rejected: 0,
        shards: 0,
        bytes: 0,
        rate: None,
        eta_seconds: None,
        updated_at: None,
        resume_command: None,
    };
    let holder = lock_holder(root);
    let manifest = find_manifest(root)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str::<Manifest>(&t).ok());
    let checkpoint = Checkpoint::load(root).ok().flatten();
    if let Some(m) = &manifest {
        s.spectra_read = m.counts.read;
        s.spectra_total = Some(m.counts.read);
        s.rejected = m.counts.rejected_total;
        s.shards = m.shards.len();
        s.bytes = m.shards.iter().map(|r| r.bytes).sum();
    } else if let Some(cp) = &checkpoint {
        s.spectra_read = cp.read_so_far;
        s.spectra_total = total.or_else(|| Some(cp_total(cp)));
        s.rejected = cp
            .shards
            .last()
            .map_or(0, |e| e.resume.counts.rejected.values().sum());
        s.shards = cp.shards.len();
        s.bytes = cp.shards.iter().map(|e| e.record.bytes).sum();
        s.updated_at = Some(cp.updated_at.clone());
    }
    s.state = match (&holder, &manifest, &checkpoint) {
        (Some(_), _, _) => State::Running,
        (None, Some(_), _) => State::Finished,
        (None, None, Some(_)) => State::Interrupted,
        (None, None, None) => State::NotStarted,
    };
    if let Some(h) = &holder {
        s.rate = rate(s.spectra_read, &h.started, s.updated_at.as_deref());
        s.eta_seconds = match (s.rate, s.spectra_total) {
            (Some(r), Some(t)) if r > 0.0 => Some(t.saturating_sub(s.spectra_read) as f64 / r),
            _ => None,
        };
    }
    s.holder = holder;
    if matches!(s.state, State::Interrupted | State::NotStarted) {
        s.resume_command = command.or_else(|| checkpoint.and_then(|cp| cp.resume_command));
    }
    s
}

/// Spectra a single run reads: its inputs' spectra, at most `max_spectra` when set.
fn cp_total(cp: &Checkpoint) -> u64 {
    let all: u64 = cp.fingerprint.inputs.iter().map(|i| i.spectra).sum();
    cp.fingerprint
        .settings
        .get("max_spectra")
        .and_then(serde_json::Value::as_u64)
        .map_or(all, |m| m.min(all))
}

/// Spectra per second from `started` to `updated_at` (the checkpoint's last update).
fn rate(read: u64, started: &str, updated_at: Option<&str>) -> Option<f64> {
    let start = chrono::DateTime::parse_from_rfc3339(started).ok()?;
    let end = chrono::DateTime::parse_from_rfc3339(updated_at?).ok()?;
    let secs = (end - start).num_milliseconds() as f64 / 1000.0;
    (secs > 0.0 && read > 0).then(|| read as f64 / secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_runs_from_the_holders_start_to_the_last_update() {
        let r = rate(10_000, "2026-12-06T01:00:00Z", Some("2026-12-06T01:00:04Z"));
        assert_eq!(r, Some(2_500.0));
        assert_eq!(
            rate(0, "2026-12-06T01:00:00Z", Some("2026-12-06T01:00:04Z")),
            None
        );
        assert_eq!(
            rate(5, "2026-12-06T01:00:04Z", Some("2026-12-06T01:00:04Z")),
            None
        );
        assert_eq!(rate(5, "garbage", Some("2026-12-06T01:00:04Z")), None);
    }

    #[test]
    fn an_empty_or_missing_root_is_not_started() {
        let dir = std::env::temp_dir().join(format!("msms-status-{}", std::process::id()));
        let s = status(&dir.join("missing"));
        assert_eq!(s.overall.state, State::NotStarted);
        assert!(s.parts.is_empty());
        assert_eq!(s.overall.spectra_total, None);
    }
}
