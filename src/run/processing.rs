//! The kernels' settings ([`Processing`]) from the resolved configuration.

use msms_kernels::bin::BinSpec;
use msms_kernels::ValidationRules;

use crate::config::{BinOutput, Settings};
use crate::process::batch::{Binner, Processing};
use crate::run::error::RunError;

/// The kernels' settings from the resolved configuration (config holds the kernels' own
/// `Normalize`, `BinAggregation` and `GemsFormat`, so nothing is translated).
pub(crate) fn processing(s: &Settings) -> Result<Processing, RunError> {
    let binning = match &s.binning {
        None => None,
        Some(b) => {
            let spec =
                BinSpec::new(b.min, b.max, b.width, b.aggregation, b.scale).map_err(|e| {
                    RunError::Settings(format!(
                        "--bin-width {} --bin-range {}:{} --bin-scale {}: {e}",
                        b.width, b.min, b.max, b.scale
                    ))
                })?;
            Some(Binner {
                spec,
                sparse: b.output == BinOutput::Sparse,
            })
        }
    };
    Ok(Processing {
        rules: ValidationRules {
            min_peaks: s.min_peaks,
            max_precursor_mz: s.max_precursor_mz,
        },
        max_peaks: s.max_peaks,
        normalize: s.normalize,
        binning,
        quality: s.quality_format,
    })
}
