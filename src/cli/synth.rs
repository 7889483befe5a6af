//! `msms synth`: write a synthetic GeMS-layout HDF5 file.

use std::path::PathBuf;

use clap::Args;

use crate::commands::synth::{self, SynthLayout, SynthOptions};

/// Flags of `msms synth`.
#[derive(Debug, Args)]
pub(crate) struct SynthArgs {
    /// Output HDF5 file (overwritten).
    #[arg(value_name = "OUT.hdf5")]
    pub(crate) out: PathBuf,
    /// Number of spectra.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) spectra: u64,
    /// Storage, comma-separated: gems (row chunks of 1024 + gzip 4, default), auto-chunk
    /// (h5py-style per-peak-slot chunks, uncompressed), contiguous, gzip, no-compression,
    /// shuffle (shuffle + deflate + fletcher32), float32, high-form ((N, 128, 2) `spectra`),
    /// strings (`file_name` and `lsh` as fixed-length strings), embedding (adds
    /// DreaMS_embedding (N, 1024), file_id, scan_number and a metadata/ group).
    #[arg(long, default_value = "gems", value_parser = clap::value_parser!(SynthLayout))]
    pub(crate) layout: SynthLayout,
    /// Share of spectra with a planted fault (0 to 1), cycling through every rejection reason.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) faults: f64,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
}

/// `msms synth`: write the file and say what was planted; exit 0, 2 (bad --faults) or 1.
pub(crate) fn synth_cmd(a: SynthArgs) -> i32 {
    if !(0.0..=1.0).contains(&a.faults) {
        eprintln!(
            "msms synth: --faults must be between 0 and 1, got {}",
            a.faults
        );
        return 2;
    }
    let opts = SynthOptions {
        spectra: a.spectra,
        layout: a.layout,
        faults: a.faults,
        seed: a.seed,
    };
    match synth::write(&a.out, &opts) {
        Ok(report) => {
            let planted: Vec<String> = report
                .planted
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            println!(
                "msms synth: wrote {} spectra to {} ({} bytes){}",
                report.spectra,
                a.out.display(),
                std::fs::metadata(&a.out).map(|m| m.len()).unwrap_or(0),
                if planted.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; planted faults: {} (too_few_peaks are one-peak spectra, rejected only with --min-peaks 2)",
                        planted.join(", ")
                    )
                }
            );
            0
        }
        Err(e) => {
            eprintln!("msms synth: {e}");
            1
        }
    }
}
