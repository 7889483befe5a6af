//! Preflight: before a run writes anything, what would stop it part-way (its output does not
//! fit on the disk, its profile does not fit in memory) and what would slow it (more workers
//! than cores). Blocking findings refuse the run (exit 2, [`crate::run::RunError::Preflight`])
//! unless `--skip-preflight`; the rest are notices.
//!
//! The output is projected from the inputs and the settings without reading any spectrum: per
//! input, its rows in this run times an upper bound of a written row (every kept peak's m/z and
//! intensity uncompressed, plus the fixed columns and the binned vector), and, when nothing
//! is binned, never more than the input's stored bytes for those rows, doubled for float32
//! tensors (whose m/z are written as float64). Compressed shards of GeMS data come out at
//! 0.3-0.65× the stored bytes of the float64 inputs measured in the README, so this
//! over-projects rather than under.

use std::path::{Path, PathBuf};

use crate::config::machine::{
    available_memory, cgroup_memory, memory_needed, nearest_existing, read_meminfo, statfs,
    BASE_MEMORY, MEMORY_PER_BATCH_SPECTRUM,
};
use crate::config::Profile;
use crate::process::batch::Processing;
use crate::read::{FileMapping, PeakElem};
use crate::run::output_root::is_shard_file;
use crate::run::units::UnitPlan;
use crate::text::{human_bytes, thousands};

/// Bytes of a written row besides its peaks and binned values: ids, source, precursor,
/// retention time, charge, accuracy, `lsh`, `num_peaks`, list offsets, quality format, and a
/// name of a few dozen characters.
const ROW_FIXED_BYTES: u64 = 128;

/// What the preflight found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Findings {
    /// Reasons the run would fail part-way, one line each, with the numbers.
    pub(crate) problems: Vec<String>,
    /// Things worth saying that do not stop it.
    pub(crate) warnings: Vec<String>,
}

/// What the preflight checks a run against.
pub(crate) struct Preflight<'a> {
    /// The output root (`None`: a dry run, which writes nothing).
    pub(crate) root: Option<&'a Path>,
    /// The resolved profile (workers, batch size).
    pub(crate) profile: &'a Profile,
    /// The mode's name, for messages.
    pub(crate) mode: &'a str,
    /// Usable cores (`available_parallelism`).
    pub(crate) cores: usize,
    /// Projected output bytes ([`projected_output`]).
    pub(crate) projected: Projection,
}

/// The projected output of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Projection {
    /// Spectra read.
    pub(crate) rows: u64,
    /// Upper bound of the output bytes.
    pub(crate) bytes: u64,
    /// Stored bytes of the inputs' rows in this run (their share of each file).
    pub(crate) stored: u64,
}

/// The output [`Projection`] of converting `units` of `mappings` with `processing`.
pub(crate) fn projected_output(
    mappings: &[FileMapping],
    units: &[UnitPlan],
    processing: &Processing,
) -> Projection {
    let mut rows = vec![0u64; mappings.len()];
    for u in units {
        if let Some(r) = rows.get_mut(u.source) {
            *r += u.rows as u64;
        }
    }
    let mut total = Projection {
        rows: 0,
        bytes: 0,
        stored: 0,
    };
    for (m, &n) in mappings.iter().zip(&rows) {
        let peaks = processing
            .max_peaks
            .map_or(m.spectrum.slots, |k| k.min(m.spectrum.slots)) as u64;
        let binned = match &processing.binning {
            None => 0,
            Some(b) if b.sparse => 8 * peaks,
            Some(b) => 4 * b.spec.bins as u64,
        };
        let per_row = ROW_FIXED_BYTES + 12 * peaks + binned;
        let bound = n.saturating_mul(per_row);
        let stored = if m.rows == 0 {
            0
        } else {
            (m.file_bytes as u128 * n as u128 / m.rows as u128) as u64
        };
        // float32 peaks are written with float64 m/z: up to twice their stored width.
        let widened = match m.spectrum.elem {
            PeakElem::F32 => stored.saturating_mul(2),
            PeakElem::F64 => stored,
        };
        let bytes = if processing.binning.is_none() {
            bound.min(widened.max(ROW_FIXED_BYTES * n))
        } else {
            bound
        };
        total.rows += n;
        total.bytes = total.bytes.saturating_add(bytes);
        total.stored = total.stored.saturating_add(stored);
    }
    total
}

impl Preflight<'_> {
    /// Run every check.
    pub(crate) fn check(&self) -> Findings {
        let mut found = Findings::default();
        if let Some(root) = self.root {
            self.check_space(root, &mut found);
        }
        self.check_memory(&mut found);
        self.check_cores(&mut found);
        found
    }

    /// The projected output against the free space at the root (or the nearest existing
    /// directory above it), counting the shards already there as space: `--overwrite`
    /// replaces them and `--resume` keeps them as part of the output.
    fn check_space(&self, root: &Path, found: &mut Findings) {
        let (at, meta) = nearest_existing(root);
        if !meta.is_some_and(|m| m.is_dir()) {
            return; // `build-shards` itself says what is wrong with such a root.
        }
        // A file system that reports no size (ramfs, some FUSE file systems) cannot be
        // checked: it says 0 bytes free whatever it holds.
        let Some((_, free, _)) = statfs(&at).filter(|&(_, _, total)| total > 0) else {
            return;
        };
        let shards = shard_bytes_under(root);
        let p = self.projected;
        if free.saturating_add(shards) < p.bytes {
            let there = if shards > 0 {
                format!(" (+ {} in shards already there)", human_bytes(shards))
            } else {
                String::new()
            };
            found.problems.push(format!(
                "output root {}: the output of {} spectra is projected at up to {} (at most {} B per spectrum, and no more than the inputs' {} stored), but only {} is free at {}{there}: free space or choose another --output-root (or run anyway with --skip-preflight)",
                root.display(),
                thousands(p.rows),
                human_bytes(p.bytes),
                p.bytes / p.rows.max(1),
                human_bytes(p.stored),
                human_bytes(free),
                at.display(),
            ));
        }
    }

    /// The profile's memory model against the memory available (the cgroup's limit when it
    /// is lower).
    fn check_memory(&self, found: &mut Findings) {
        let Some(available) = available_memory(read_meminfo().1, cgroup_memory()) else {
            return;
        };
        let needed = memory_needed(self.profile);
        if available < needed {
            found.problems.push(format!(
                "the {} profile needs about {} of memory ({} + {} workers × {} spectra per read unit × {}), but only {} is available: use fewer --num-workers or a smaller --batch-size (or run anyway with --skip-preflight)",
                self.mode,
                human_bytes(needed),
                human_bytes(BASE_MEMORY),
                self.profile.num_workers,
                self.profile.batch_size,
                human_bytes(MEMORY_PER_BATCH_SPECTRUM),
                human_bytes(available),
            ));
        }
    }

    /// More workers than cores: they take turns, which costs switches and memory and buys
    /// nothing.
    fn check_cores(&self, found: &mut Findings) {
        let w = self.profile.num_workers;
        if w > self.cores {
            found.warnings.push(format!(
                "warning: {w} workers on {} usable cores: workers share cores (up to {} per core), which buys no speed and costs memory; --num-workers {} fits this machine",
                self.cores,
                w.div_ceil(self.cores.max(1)),
                self.cores
            ));
        }
    }
}

/// Bytes of the shard files (and their temporaries) in `root` and its split directories.
fn shard_bytes_under(root: &Path) -> u64 {
    let mut dirs: Vec<PathBuf> = vec![root.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(root) {
        dirs.extend(
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path()),
        );
    }
    dirs.iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| is_shard_file(&e.path()))
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Mode, Profile};

    fn processing(max_peaks: Option<usize>) -> Processing {
        Processing {
            rules: msms_kernels::ValidationRules::default(),
            max_peaks,
            normalize: msms_kernels::Normalize::Max,
            binning: None,
            quality: None,
        }
    }

    fn units(rows: &[(usize, usize)]) -> Vec<UnitPlan> {
        rows.iter()
            .enumerate()
            .map(|(i, &(source, rows))| UnitPlan {
                seq: i as u64,
                source,
                start: 0,
                rows,
                first_id: 0,
            })
            .collect()
    }

    #[test]
    fn the_projection_is_the_row_bound_capped_by_the_stored_bytes() {
        let mut a = FileMapping::for_tests(1000, 128);
        a.file_bytes = 10_000_000; // 10 kB per row stored: the row bound is lower
        let mut b = FileMapping::for_tests(2000, 128);
        b.file_bytes = 600_000; // 300 B per row stored: lower than the bound
        let p = projected_output(&[a, b], &units(&[(0, 1000), (1, 1000)]), &processing(None));
        let bound = ROW_FIXED_BYTES + 12 * 128;
        assert_eq!(p.rows, 2000);
        // Half of b's rows: half its stored bytes.
        assert_eq!(p.bytes, 1000 * bound + 300_000);
        assert_eq!(p.stored, 10_000_000 + 300_000);
        // --max-peaks lowers the bound.
        let mut a = FileMapping::for_tests(1000, 128);
        a.file_bytes = 10_000_000;
        let p = projected_output(&[a], &units(&[(0, 1000)]), &processing(Some(10)));
        assert_eq!(p.bytes, 1000 * (ROW_FIXED_BYTES + 120));
    }

    #[test]
    fn more_workers_than_cores_is_a_warning_not_a_problem() {
        let mut profile = Profile::for_mode(Mode::Local, 2);
        profile.num_workers = 48;
        let f = Preflight {
            root: None,
            profile: &profile,
            mode: "local",
            cores: 2,
            projected: Projection {
                rows: 0,
                bytes: 0,
                stored: 0,
            },
        }
        .check();
        assert_eq!(
            f.warnings,
            ["warning: 48 workers on 2 usable cores: workers share cores (up to 24 per core), which buys no speed and costs memory; --num-workers 2 fits this machine"]
        );
        assert!(f.problems.is_empty(), "{:?}", f.problems);
    }

    #[test]
    fn a_projection_beyond_the_free_space_is_a_problem_naming_the_numbers() {
        let dir = std::env::temp_dir();
        let profile = Profile::for_mode(Mode::Local, 2);
        let huge = Projection {
            rows: 1_000_000,
            bytes: u64::MAX / 2,
            stored: u64::MAX / 2,
        };
        let f = Preflight {
            root: Some(&dir.join("msms-preflight-nonexistent/root")),
            profile: &profile,
            mode: "local",
            cores: 2,
            projected: huge,
        }
        .check();
        assert_eq!(f.problems.len(), 1, "{f:?}");
        assert!(
            f.problems[0].contains("the output of 1,000,000 spectra is projected at up to"),
            "{}",
            f.problems[0]
        );
        assert!(f.problems[0].contains("--skip-preflight"));
        let fits = Projection {
            rows: 10,
            bytes: 1000,
            stored: 1000,
        };
        let f = Preflight {
            root: Some(&dir),
            profile: &profile,
            mode: "local",
            cores: 2,
            projected: fits,
        }
        .check();
        assert!(f.problems.is_empty(), "{f:?}");
    }
}
