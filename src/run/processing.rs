//! The kernels' settings ([`Processing`]) from the resolved configuration.

use msms_kernels::ValidationRules;

use crate::config::{Normalize, Settings};
use crate::process::batch::{Binner, Processing};
use crate::run::error::RunError;

/// The kernels' settings from the resolved configuration.
pub(crate) fn processing(s: &Settings) -> Result<Processing, RunError> {
    use crate::config::{BinAggregation, BinOutput, QualityFormat};
    use msms_kernels::bin::{BinAggregation as Agg, BinSpec};
    use msms_kernels::quality::GemsFormat;
    let binning = match &s.binning {
        None => None,
        Some(b) => {
            let aggregation = match b.aggregation {
                BinAggregation::Sum => Agg::Sum,
                BinAggregation::Max => Agg::Max,
            };
            let spec = BinSpec::new(b.min, b.max, b.width, aggregation, b.scale).map_err(|e| {
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
        normalize: match s.normalize {
            Normalize::None => msms_kernels::Normalize::None,
            Normalize::Max => msms_kernels::Normalize::Max,
            Normalize::Sum => msms_kernels::Normalize::Sum,
            Normalize::L2 => msms_kernels::Normalize::L2,
            Normalize::Sqrt => msms_kernels::Normalize::Sqrt,
        },
        binning,
        quality: s.quality_format.map(|q| match q {
            QualityFormat::A => GemsFormat::A,
            QualityFormat::B => GemsFormat::B,
            QualityFormat::C => GemsFormat::C,
        }),
    })
}
