//! Read units: the input cut into runs of rows of one file, aligned to the spectrum dataset's
//! chunk grid and capped by the memory budget. `build-shards` reads them in order; `msms plan`
//! cuts a run into parts of whole units ([`unit_spans`]).

use std::ops::Range;

use crate::config::Settings;
use crate::process::batch::Processing;
use crate::read::{FileMapping, UNIT_BYTES_BUDGET};
use crate::run::error::RunError;
use crate::run::processing::processing;

/// One unit of work: rows of one file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UnitPlan {
    pub(crate) seq: u64,
    pub(crate) source: usize,
    pub(crate) start: u64,
    pub(crate) rows: usize,
    pub(crate) first_id: u64,
}

/// Rows per unit for one file: `batch_size` rounded to a whole number (at least one) of the
/// spectrum dataset's chunk rows, so each chunk is decoded by one unit, but at most
/// `max_rows` (the memory budget), below which it is rounded down to whole chunks when a
/// chunk fits, else `max_rows` itself.
fn unit_rows(m: &FileMapping, batch_size: usize, max_rows: usize) -> usize {
    let batch = batch_size.max(1);
    let Some(c) = m
        .spectrum_chunk_rows()
        .map(|c| c.min(u64::MAX >> 1) as usize)
    else {
        return batch.min(max_rows).max(1);
    };
    let want = ((batch + c / 2) / c).max(1).saturating_mul(c);
    if want <= max_rows {
        want
    } else if c <= max_rows {
        (max_rows / c) * c
    } else {
        max_rows.max(1)
    }
}

/// Split the inputs into units ([`unit_rows`] per file), in input order, stopping after
/// `max_spectra` spectra. Units never span files.
fn plan_units(
    mappings: &[FileMapping],
    batch_size: usize,
    max_rows: usize,
    max_spectra: Option<u64>,
) -> Vec<UnitPlan> {
    let mut units = Vec::new();
    let mut id = 0u64;
    let limit = max_spectra.unwrap_or(u64::MAX);
    for (source, m) in mappings.iter().enumerate() {
        let unit = unit_rows(m, batch_size, max_rows) as u64;
        let mut start = 0u64;
        while start < m.rows && id < limit {
            let rows = (m.rows - start).min(unit).min(limit - id);
            units.push(UnitPlan {
                seq: units.len() as u64,
                source,
                start,
                rows: rows as usize,
                first_id: id,
            });
            start += rows;
            id += rows;
        }
    }
    units
}

/// The read units of a run over `mappings` with `s`: the same list for `build-shards` and
/// `plan`, so a plan's parts are whole units.
pub(crate) fn read_units(
    s: &Settings,
    mappings: &[FileMapping],
    processing: &Processing,
) -> Vec<UnitPlan> {
    // Rows per read unit: the batch size, unless rows are so wide that a unit would exceed
    // the memory budget. Uniform over the run, so boundaries stay deterministic.
    let dense_bins = processing
        .binning
        .filter(|b| !b.sparse)
        .map_or(0, |b| 4 * b.spec.bins as u64);
    let row_bytes = dense_bins
        + mappings
            .iter()
            .map(FileMapping::row_bytes)
            .max()
            .unwrap_or(1)
            .max(1);
    let max_rows = (UNIT_BYTES_BUDGET / row_bytes).max(1) as usize;
    plan_units(mappings, s.profile.batch_size, max_rows, s.max_spectra)
}

/// One part of a plan: the units in `range`, renumbered from 0 (positions and checkpoints are
/// the part's own; spectrum ids stay those of the whole input).
pub(crate) fn part_units(
    units: &[UnitPlan],
    range: &Range<u64>,
) -> Result<Vec<UnitPlan>, RunError> {
    if range.end > units.len() as u64 || range.start >= range.end {
        return Err(RunError::Settings(format!(
            "the plan's part covers read units {}..{}, but these inputs and settings give {}",
            range.start,
            range.end,
            units.len()
        )));
    }
    let mut part = units[range.start as usize..range.end as usize].to_vec();
    for (i, u) in part.iter_mut().enumerate() {
        u.seq = i as u64;
    }
    Ok(part)
}

/// Refuse units whose peak lists would overflow a list column's `i32` offsets.
pub(crate) fn check_list_offsets(
    units: &[UnitPlan],
    mappings: &[FileMapping],
) -> Result<(), RunError> {
    let max_slots = mappings.iter().map(|m| m.spectrum.slots).max().unwrap_or(1);
    let largest_unit = units.iter().map(|u| u.rows).max().unwrap_or(1);
    if (largest_unit as u64).saturating_mul(max_slots as u64) > i32::MAX as u64 {
        return Err(RunError::Settings(format!(
            "units of {largest_unit} spectra × {max_slots} peak slots overflow a list column; lower --batch-size"
        )));
    }
    Ok(())
}

/// Rows per read for sizing libhdf5's chunk cache: the largest unit of file `source`.
pub(crate) fn reader_rows(source: usize, units: &[UnitPlan]) -> usize {
    units
        .iter()
        .filter(|u| u.source == source)
        .map(|u| u.rows)
        .max()
        .unwrap_or(1)
}

/// One unit as a plan sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UnitSpan {
    /// Input file (index into the inputs).
    pub(crate) source: usize,
    /// First row in that file.
    pub(crate) start: u64,
    /// Rows.
    pub(crate) rows: u64,
    /// `spectrum_id` of the first row.
    pub(crate) first_id: u64,
}

/// The read units `build-shards` would process, in order (for `msms plan`).
pub(crate) fn unit_spans(
    s: &Settings,
    mappings: &[FileMapping],
) -> Result<Vec<UnitSpan>, RunError> {
    let processing = processing(s)?;
    let units = read_units(s, mappings, &processing);
    Ok(units
        .iter()
        .map(|u| UnitSpan {
            source: u.source,
            start: u.start,
            rows: u.rows as u64,
            first_id: u.first_id,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_cover_inputs_in_order_and_stop_at_max_spectra() {
        let m = |rows| FileMapping::for_tests(rows, 128);
        let files = [m(25), m(0), m(12)];
        let units = plan_units(&files, 10, usize::MAX, None);
        let shape: Vec<_> = units
            .iter()
            .map(|u| (u.source, u.start, u.rows, u.first_id))
            .collect();
        assert_eq!(
            shape,
            vec![
                (0, 0, 10, 0),
                (0, 10, 10, 10),
                (0, 20, 5, 20),
                (2, 0, 10, 25),
                (2, 10, 2, 35)
            ]
        );
        let units = plan_units(&files, 10, usize::MAX, Some(27));
        let shape: Vec<_> = units
            .iter()
            .map(|u| (u.source, u.start, u.rows, u.first_id))
            .collect();
        assert_eq!(
            shape,
            vec![
                (0, 0, 10, 0),
                (0, 10, 10, 10),
                (0, 20, 5, 20),
                (2, 0, 2, 25)
            ]
        );
        assert_eq!(
            units.iter().map(|u| u.seq).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
    }

    #[test]
    fn units_align_to_the_spectrum_chunk_grid_within_the_memory_cap() {
        let chunked = |rows: u64| {
            let mut m = FileMapping::for_tests(10_000, 128);
            m.datasets.push(crate::read::h5::DatasetInfo {
                name: m.spectrum.dataset.clone(),
                dtype: crate::read::h5::DType::Float { size: 8 },
                shape: vec![10_000, 2, 128],
                layout: crate::read::h5::Layout::Chunked(vec![rows, 2, 128]),
                filters: vec![],
                filter_ids: vec![],
            });
            m
        };
        let m = chunked(1024);
        assert_eq!(m.spectrum_chunk_rows(), Some(1024));
        assert_eq!(unit_rows(&m, 1000, usize::MAX), 1024);
        assert_eq!(unit_rows(&m, 1500, usize::MAX), 1024);
        assert_eq!(unit_rows(&m, 1600, usize::MAX), 2048);
        assert_eq!(unit_rows(&m, 1, usize::MAX), 1024);
        assert_eq!(
            unit_rows(&m, 5000, 3000),
            2048,
            "whole chunks under the cap"
        );
        assert_eq!(
            unit_rows(&chunked(4096), 1000, 2000),
            2000,
            "chunk above the cap"
        );
        assert_eq!(unit_rows(&FileMapping::for_tests(10, 128), 1000, 700), 700);
        let units = plan_units(&[m], 1000, usize::MAX, Some(2500));
        let starts: Vec<_> = units.iter().map(|u| (u.start, u.rows)).collect();
        assert_eq!(starts, vec![(0, 1024), (1024, 1024), (2048, 452)]);
    }
}
