//! `msms synth`: GeMS-layout sample files written through libhdf5, for the README's first
//! command, tests and benchmarks.
//!
//! Spectra are realistic in shape: most have few peaks, about 15 % fill all 128 slots; m/z
//! ascends from ~50, intensities span six decades, precursor m/z lies above the last peak.
//! Every row is a pure function of `(seed, row)` ([`spectrum_at`]), so tests can compute the
//! expected output without reading the file back. With `faults > 0`, that share of rows
//! carries one planted fault, cycling through every rejection reason.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use msms_kernels::RejectReason;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::read::h5::{self, H5Error, Storage, WriteType};

/// Peak slots per spectrum, as in GeMS.
pub const SLOTS: usize = 128;
/// Width of the pass-through embedding column of the `embedding` layout.
pub const EMBEDDING_DIM: usize = 1024;

/// How a synthetic file is stored. Names combine with commas, e.g. `high-form,float32`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SynthLayout {
    /// Storage of the datasets.
    pub chunking: Chunking,
    /// Compression filters (chunked layouts only).
    pub filters: Filters,
    /// float32 spectrum tensor instead of float64.
    pub float32: bool,
    /// Older (N, P, 2) `spectra` with `precursor mz`.
    pub high_form: bool,
    /// `file_name` as fixed-length strings and `lsh` as 64-byte hex strings.
    pub strings: bool,
    /// A (N, 1024) float32 `DreaMS_embedding`, `file_id`, `scan_number` and a `metadata/` group.
    pub embedding: bool,
}

/// Dataset storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Chunking {
    /// Row chunks of 1024 spectra, like DreaMS's writers.
    #[default]
    Rows,
    /// Per-peak-slot chunks (c, 1, 1), like h5py's automatic chunking.
    Auto,
    /// No chunking.
    Contiguous,
}

/// Filters on chunked datasets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Filters {
    /// gzip level 4.
    #[default]
    Gzip,
    /// No filters.
    None,
    /// shuffle + deflate + fletcher32.
    Shuffle,
}

/// A `--layout` name [`SynthLayout`] does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown layout `{0}`; combine: gems, auto-chunk, contiguous, gzip, no-compression, shuffle, float32, high-form, strings, embedding"
)]
pub struct UnknownLayout(pub String);

impl FromStr for SynthLayout {
    type Err = UnknownLayout;

    fn from_str(s: &str) -> Result<Self, UnknownLayout> {
        let mut l = SynthLayout::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "gems" | "rows" => l.chunking = Chunking::Rows,
                "auto-chunk" => {
                    l.chunking = Chunking::Auto;
                    l.filters = Filters::None;
                }
                "contiguous" => {
                    l.chunking = Chunking::Contiguous;
                    l.filters = Filters::None;
                }
                "gzip" => l.filters = Filters::Gzip,
                "no-compression" => l.filters = Filters::None,
                "shuffle" => l.filters = Filters::Shuffle,
                "float32" => l.float32 = true,
                "high-form" => l.high_form = true,
                "strings" => l.strings = true,
                "embedding" => l.embedding = true,
                other => return Err(UnknownLayout(other.to_string())),
            }
        }
        Ok(l)
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthOptions {
    /// Spectra (rows).
    pub spectra: u64,
    /// Storage layout.
    pub layout: SynthLayout,
    /// Share of rows with a planted fault, 0..=1.
    pub faults: f64,
    /// RNG seed.
    pub seed: u64,
}

/// What was generated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SynthReport {
    /// Spectra written.
    pub spectra: u64,
    /// Planted faults by reason. `too_few_peaks` faults are one-peak spectra: valid at the
    /// default `--min-peaks 1`, rejected with `--min-peaks 2`.
    pub planted: BTreeMap<RejectReason, u64>,
}

/// One generated row.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthSpectrum {
    /// m/z per slot (padding is 0).
    pub mz: [f64; SLOTS],
    /// Intensity per slot (padding is 0).
    pub intensity: [f64; SLOTS],
    /// Precursor m/z.
    pub precursor_mz: f64,
    /// Retention time, seconds.
    pub rt: f32,
    /// Charge.
    pub charge: i8,
    /// Instrument accuracy estimate.
    pub accuracy: f32,
    /// LSH bucket.
    pub lsh: i64,
    /// Source file name.
    pub name: String,
    /// The planted fault, if any.
    pub fault: Option<RejectReason>,
}

fn row_rng(seed: u64, row: u64) -> SmallRng {
    // splitmix64 of (seed, row): independent streams per row.
    let mut z = seed ^ row.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    SmallRng::seed_from_u64(z ^ (z >> 31))
}

/// Row `row` of a file generated with `seed` and `faults`. With `float32`, values are
/// rounded to f32 exactly as they are stored.
pub fn spectrum_at(seed: u64, row: u64, faults: f64, float32: bool) -> SynthSpectrum {
    let mut rng = row_rng(seed, row);
    let fault = (faults > 0.0 && rng.random::<f64>() < faults)
        .then(|| RejectReason::VALIDATION[rng.random_range(0..RejectReason::VALIDATION.len())]);
    let n = if fault == Some(RejectReason::TooFewPeaks) {
        1
    } else if rng.random::<f64>() < 0.15 {
        SLOTS
    } else {
        2 + (rng.random::<f64>().powi(2) * (SLOTS - 3) as f64) as usize
    };
    let round = |x: f64| if float32 { x as f32 as f64 } else { x };
    let mut mz = [0.0; SLOTS];
    let mut intensity = [0.0; SLOTS];
    let mut x = 50.0 + rng.random::<f64>() * 20.0;
    for i in 0..n {
        mz[i] = round(x);
        intensity[i] = round(10f64.powf(rng.random_range(0.0..6.0)));
        x += 0.01 + rng.random::<f64>() * 12.0;
    }
    let mut precursor_mz = mz[n - 1] + 1.0 + rng.random::<f64>() * 100.0;
    let k = rng.random_range(0..n.max(2) - 1); // a peak with a successor when n >= 2
    match fault {
        Some(RejectReason::Empty) => {
            mz = [0.0; SLOTS];
            intensity = [0.0; SLOTS];
        }
        Some(RejectReason::NonFinite) => {
            if rng.random::<bool>() {
                intensity[k] = f64::NAN;
            } else {
                mz[k] = f64::INFINITY;
            }
        }
        Some(RejectReason::PaddingGap) => {
            mz[k] = 0.0;
            intensity[k] = 0.0;
        }
        Some(RejectReason::NonPositiveMz) => mz[0] = -mz[0],
        Some(RejectReason::NonPositiveIntensity) => intensity[k] = 0.0,
        Some(RejectReason::DuplicateMz) => mz[k + 1] = mz[k],
        Some(RejectReason::UnsortedMz) => mz.swap(k, k + 1),
        Some(RejectReason::BadPrecursor) => {
            precursor_mz = [f64::NAN, -1.0, 0.0][rng.random_range(0..3)];
        }
        // Not planted: TooFewPeaks is the one-peak count above; QualityFormat is never drawn.
        Some(RejectReason::TooFewPeaks | RejectReason::QualityFormat) | None => {}
    }
    let lsh = rng.random::<i64>();
    SynthSpectrum {
        mz,
        intensity,
        precursor_mz: precursor_mz as f32 as f64,
        rt: rng.random_range(0.0..3600.0),
        charge: rng.random_range(0..4),
        accuracy: if rng.random::<f64>() < 0.2 {
            -1.0
        } else {
            1e-5
        },
        lsh,
        name: format!("synth_run_{:04}.mzML", row / 500),
        fault,
    }
}

/// The 64-character hex form of an LSH bucket (the `strings` layout).
pub fn lsh_hex(lsh: i64) -> String {
    format!("{:016x}", lsh as u64).repeat(4)
}

/// Write a synthetic GeMS file at `path`.
pub fn write(path: &Path, opts: &SynthOptions) -> Result<SynthReport, H5Error> {
    let n = opts.spectra;
    let l = &opts.layout;
    let file = h5::File::create(path)?;
    let datasets = Datasets::create(&file, n, l)?;
    let mut report = SynthReport {
        spectra: n,
        planted: BTreeMap::new(),
    };
    const BLOCK: u64 = 4096;
    let mut start = 0;
    while start < n {
        let rows = (n - start).min(BLOCK);
        let specs: Vec<SynthSpectrum> = (start..start + rows)
            .map(|r| spectrum_at(opts.seed, r, opts.faults, l.float32))
            .collect();
        for s in &specs {
            if let Some(f) = s.fault {
                *report.planted.entry(f).or_default() += 1;
            }
        }
        datasets.write_block(l, start, &specs)?;
        start += rows;
    }
    Ok(report)
}

/// How a dataset of `shape` is stored in a file of `n` rows with layout `l` (`vlen`: it
/// holds variable-length strings).
fn storage(l: &SynthLayout, n: u64, shape: &[u64], vlen: bool) -> Storage {
    let rows = n.max(1);
    let chunk: Vec<u64> = match l.chunking {
        Chunking::Contiguous => return Storage::Contiguous,
        Chunking::Rows => std::iter::once(rows.min(1024))
            .chain(shape[1..].iter().copied())
            .collect(),
        Chunking::Auto => std::iter::once(rows.min(4096))
            .chain(shape[1..].iter().map(|_| 1))
            .collect(),
    };
    let (deflate, shuffle, fletcher32) = match l.filters {
        Filters::Gzip => (Some(4), false, false),
        Filters::None => (None, false, false),
        // HDF5 refuses shuffle and fletcher32 on variable-length strings.
        Filters::Shuffle if vlen => (Some(4), false, false),
        Filters::Shuffle => (Some(4), true, true),
    };
    Storage::Chunked {
        chunk,
        deflate,
        shuffle,
        fletcher32,
    }
}

/// The datasets of a synthetic file. Created in file order; the fields are declared in
/// reverse, so that they are closed in the reverse order of their creation.
struct Datasets {
    /// `DreaMS_embedding`, `file_id` and `scan_number` (the `embedding` layout).
    extra: Option<(h5::Dataset, h5::Dataset, h5::Dataset)>,
    name: h5::Dataset,
    lsh: h5::Dataset,
    accuracy: h5::Dataset,
    charge: h5::Dataset,
    rt: h5::Dataset,
    precursor: h5::Dataset,
    spectrum: h5::Dataset,
}

impl Datasets {
    /// Create every dataset of a file of `n` rows with layout `l`.
    fn create(file: &h5::File, n: u64, l: &SynthLayout) -> Result<Datasets, H5Error> {
        let make = |name: &str, t: WriteType, shape: &[u64]| {
            let vlen = matches!(t, WriteType::VarString);
            file.create_dataset(name, &t, shape, &storage(l, n, shape, vlen))
        };
        let spec_shape: Vec<u64> = if l.high_form {
            vec![n, SLOTS as u64, 2]
        } else {
            vec![n, 2, SLOTS as u64]
        };
        let spec_type = if l.float32 {
            WriteType::of::<f32>()
        } else {
            WriteType::of::<f64>()
        };
        let spectrum = make(
            if l.high_form { "spectra" } else { "spectrum" },
            spec_type,
            &spec_shape,
        )?;
        let precursor = make(
            if l.high_form {
                "precursor mz"
            } else {
                "precursor_mz"
            },
            WriteType::of::<f32>(),
            &[n],
        )?;
        let rt = make("RT", WriteType::of::<f32>(), &[n])?;
        let charge = make("charge", WriteType::of::<i8>(), &[n])?;
        let accuracy = make("instrument accuracy est.", WriteType::of::<f32>(), &[n])?;
        let lsh = make(
            "lsh",
            if l.strings {
                WriteType::FixedString(64)
            } else {
                WriteType::of::<i64>()
            },
            &[n],
        )?;
        let name = make(
            if l.strings { "file_name" } else { "name" },
            if l.strings {
                WriteType::FixedString(32)
            } else {
                WriteType::VarString
            },
            &[n],
        )?;
        let extra = if l.embedding {
            file.create_group("metadata")?;
            let names = file.create_dataset(
                "metadata/file_names",
                &WriteType::VarString,
                &[3],
                &Storage::Contiguous,
            )?;
            names.write_strings(
                0,
                &["a.mzML".into(), "b.mzML".into(), "c.mzML".into()],
                None,
            )?;
            Some((
                make(
                    "DreaMS_embedding",
                    WriteType::of::<f32>(),
                    &[n, EMBEDDING_DIM as u64],
                )?,
                make("file_id", WriteType::of::<i32>(), &[n])?,
                make("scan_number", WriteType::of::<i32>(), &[n])?,
            ))
        } else {
            None
        };
        Ok(Datasets {
            extra,
            name,
            lsh,
            accuracy,
            charge,
            rt,
            precursor,
            spectrum,
        })
    }

    /// Write `specs`, rows `start..` of the file.
    fn write_block(
        &self,
        l: &SynthLayout,
        start: u64,
        specs: &[SynthSpectrum],
    ) -> Result<(), H5Error> {
        let rows = specs.len() as u64;
        self.write_peaks(l, start, specs)?;
        let col = |f: &dyn Fn(&SynthSpectrum) -> f32| specs.iter().map(f).collect::<Vec<f32>>();
        self.precursor
            .write_rows(start, rows, &col(&|s| s.precursor_mz as f32))?;
        self.rt.write_rows(start, rows, &col(&|s| s.rt))?;
        self.accuracy
            .write_rows(start, rows, &col(&|s| s.accuracy))?;
        self.charge.write_rows(
            start,
            rows,
            &specs.iter().map(|s| s.charge).collect::<Vec<_>>(),
        )?;
        self.write_labels(l, start, specs)?;
        if let Some((emb, file_id, scan)) = &self.extra {
            let e: Vec<f32> = (start..start + rows).flat_map(embedding_row).collect();
            emb.write_rows(start, rows, &e)?;
            file_id.write_rows(
                start,
                rows,
                &(start..start + rows)
                    .map(|r| (r / 500) as i32)
                    .collect::<Vec<_>>(),
            )?;
            scan.write_rows(
                start,
                rows,
                &(start..start + rows)
                    .map(|r| (r % 500) as i32 + 1)
                    .collect::<Vec<_>>(),
            )?;
        }
        Ok(())
    }

    /// The peak tensor of `specs`, in the layout's orientation and float width.
    fn write_peaks(
        &self,
        l: &SynthLayout,
        start: u64,
        specs: &[SynthSpectrum],
    ) -> Result<(), H5Error> {
        let rows = specs.len() as u64;
        let mut peaks = Vec::with_capacity(specs.len() * 2 * SLOTS);
        for s in specs {
            if l.high_form {
                for i in 0..SLOTS {
                    peaks.push(s.mz[i]);
                    peaks.push(s.intensity[i]);
                }
            } else {
                peaks.extend_from_slice(&s.mz);
                peaks.extend_from_slice(&s.intensity);
            }
        }
        if l.float32 {
            let p32: Vec<f32> = peaks.iter().map(|&x| x as f32).collect();
            self.spectrum.write_rows(start, rows, &p32)
        } else {
            self.spectrum.write_rows(start, rows, &peaks)
        }
    }

    /// `lsh` and the file name: integers and variable-length strings, or fixed-length
    /// strings with the `strings` layout.
    fn write_labels(
        &self,
        l: &SynthLayout,
        start: u64,
        specs: &[SynthSpectrum],
    ) -> Result<(), H5Error> {
        let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        if l.strings {
            self.lsh.write_strings(
                start,
                &specs.iter().map(|s| lsh_hex(s.lsh)).collect::<Vec<_>>(),
                Some(64),
            )?;
            self.name.write_strings(start, &names, Some(32))
        } else {
            self.lsh.write_rows(
                start,
                specs.len() as u64,
                &specs.iter().map(|s| s.lsh).collect::<Vec<_>>(),
            )?;
            self.name.write_strings(start, &names, None)
        }
    }
}

/// The embedding row written for `row` (cheap, deterministic).
pub fn embedding_row(row: u64) -> impl Iterator<Item = f32> {
    (0..EMBEDDING_DIM).map(move |j| ((row as f32) * 0.001 + j as f32 * 0.5).sin())
}
