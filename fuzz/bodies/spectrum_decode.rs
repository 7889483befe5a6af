//! Fuzz the peak-block kernels of `msms-kernels` on arbitrary padded blocks (`f32` and
//! `f64`, planar and interleaved): unpad + validate, m/z and intensity extraction under
//! every normalisation, top-k, binning (dense and sparse) and the GeMS quality formats.
//!
//! Every kernel is checked against the portable tier where there is one (bit for bit; NaN
//! compared by NaN-ness only) and against a naive oracle written here from the crate's
//! documentation:
//!
//! - `unpad_validate` / `unpadded_len` == `portable::*` == the documented priority rules;
//!   on `Ok(n)` every slot from `n` on is a zero entry.
//! - `extend_mz` / `extend_intensity` (append semantics kept) == `portable` == oracle
//!   formulas; on valid peaks `Max` and `Sqrt` give a base peak of exactly 1.0 and values
//!   in [0, 1].
//! - `top_k` == `portable::top_k` == oracle (intensity by `total_cmp` descending, ties to
//!   the lower index); ascending, length `min(k, n)`; `extend_*_at` on the selection ==
//!   oracle, and == `extend_*` when the selection is every peak.
//! - `bin_dense` == `bin_dense_scalar` == `bin_dense_zeroed` == oracle; `bin_sparse` ==
//!   `bin_sparse_scalar` == oracle (appending after existing entries); sparse indices
//!   strictly ascending, each `dense[idx] == value`, every bin absent from sparse is 0.
//! - `gems_format_validated` == `gems_format` on validated peaks; for any peaks `meets(f)`
//!   == `gems_format <= f` (A ⊂ B ⊂ C).
//!
//! Plain Rust, no libFuzzer: `fuzz_targets/spectrum_decode.rs` wraps [`run`] in `fuzz_target!`,
//! and the root's `tests/fuzz_corpus.rs` replays `fuzz/corpus/spectrum_decode/` through it.

use std::collections::BTreeMap;

use arbitrary::{Result, Unstructured};
use msms_kernels::bin::{
    bin_dense, bin_dense_scalar, bin_dense_zeroed, bin_sparse, bin_sparse_scalar, BinAggregation,
    BinSpec,
};
use msms_kernels::quality::{gems_format, gems_format_validated, meets, GemsFormat};
use msms_kernels::{
    extend_intensity, extend_intensity_at, extend_mz, extend_mz_at, portable, top_k,
    unpad_validate, unpadded_len, Normalize, Orientation, PeakBlock, PeakValue, RejectReason,
    ValidationRules,
};

/// Largest dense grid built per input (the kernels allow 10 million bins; the oracle and the
/// comparisons are linear in it).
const MAX_DENSE_BINS: usize = 1 << 16;

/// The target: one fuzz input, checked as the module docs say. Panics on a failed check.
pub(crate) fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = if u.arbitrary::<bool>().unwrap_or(false) {
        check_block::<f64>(&mut u)
    } else {
        check_block::<f32>(&mut u)
    };
}

/// The two element types, built from fuzz data.
trait Elem: PeakValue + std::fmt::Debug {
    const NAME: &'static str;
    /// Round an `f64` to this type.
    fn from_f64(v: f64) -> Self;
    /// Any bit pattern.
    fn any_bits(u: &mut Unstructured<'_>) -> Result<Self>;
    /// Smallest positive subnormal.
    const TINY: Self;
}

impl Elem for f64 {
    const NAME: &'static str = "f64";
    fn from_f64(v: f64) -> f64 {
        v
    }
    fn any_bits(u: &mut Unstructured<'_>) -> Result<f64> {
        Ok(f64::from_bits(u.arbitrary()?))
    }
    const TINY: f64 = f64::from_bits(1);
}

impl Elem for f32 {
    const NAME: &'static str = "f32";
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    fn any_bits(u: &mut Unstructured<'_>) -> Result<f32> {
        Ok(f32::from_bits(u.arbitrary()?))
    }
    const TINY: f32 = f32::from_bits(1);
}

/// Any value a stored slot might hold, weighted towards the interesting ones.
fn value<T: Elem>(u: &mut Unstructured<'_>) -> Result<T> {
    Ok(match u.int_in_range(0u8..=15)? {
        0 | 1 => T::from_f64(0.0),
        2 => T::from_f64(-0.0),
        3 => T::from_f64(f64::NAN),
        4 => T::from_f64(f64::INFINITY),
        5 => T::from_f64(f64::NEG_INFINITY),
        6 => T::TINY,
        7 => T::from_f64(f64::from(u.int_in_range(-5i8..=5)?)),
        8..=11 => T::from_f64(f64::from(u.arbitrary::<u16>()?) / 16.0),
        _ => T::any_bits(u)?,
    })
}

/// A precursor m/z or rule bound: mostly plausible, sometimes special.
fn number(u: &mut Unstructured<'_>, plausible: f64) -> Result<f64> {
    Ok(match u.int_in_range(0u8..=9)? {
        0..=4 => plausible,
        5 => f64::from(u.arbitrary::<u16>()?) / 8.0,
        6 => *u.choose(&[0.0, -0.0, f64::NAN, f64::INFINITY, -1.0, 1e-300, f64::MAX])?,
        _ => f64::from_bits(u.arbitrary()?),
    })
}

/// The slots of one spectrum as (m/z, intensity) pairs.
fn slots<T: Elem>(u: &mut Unstructured<'_>) -> Result<Vec<(T, T)>> {
    let p = match u.int_in_range(0u8..=7)? {
        0..=2 => 128,
        3 => u.int_in_range(0usize..=8)?,
        _ => u.int_in_range(0usize..=130)?,
    };
    let mut s = Vec::with_capacity(p);
    if u.ratio(1u8, 3)? {
        // Anything.
        for _ in 0..p {
            s.push((value::<T>(u)?, value::<T>(u)?));
        }
        return Ok(s);
    }
    // Near valid: ascending m/z, positive intensities, then padding; "sloppy" blocks also
    // get repeated or falling m/z and a few mutated slots.
    let n = u.int_in_range(0..=p)?;
    let sloppy = u.arbitrary::<bool>()?;
    let mut mz = 20.0 + f64::from(u.arbitrary::<u16>()?) / 64.0;
    let spread = *u.choose(&[1.0 / 64.0, 1.0 / 8.0, 1.0])?;
    let ties = u.arbitrary::<bool>()?;
    for _ in 0..n {
        let step = match u.int_in_range(0u8..=15)? {
            0 if sloppy => 0.0,
            1 if sloppy => 1e-9,
            2 if sloppy => -1.0,
            _ => f64::from(u.arbitrary::<u8>()?) * spread + 1e-2,
        };
        mz += step;
        let intensity = if ties {
            f64::from(u.int_in_range(1u8..=4)?)
        } else {
            match u.int_in_range(0u8..=3)? {
                0 => f64::from(u.arbitrary::<u32>()?) + 1.0,
                1 => 1e-6 + f64::from(u.arbitrary::<u8>()?),
                _ => f64::from(u.arbitrary::<u16>()?) + 0.5,
            }
        };
        s.push((T::from_f64(mz), T::from_f64(intensity)));
    }
    let neg_pad = u.ratio(1u8, 8)?;
    let pad = T::from_f64(if neg_pad { -0.0 } else { 0.0 });
    s.resize(p, (pad, pad));
    let mutations = if sloppy { u.int_in_range(0u8..=2)? } else { 0 };
    for _ in 0..mutations {
        if p == 0 {
            break;
        }
        let i = u.choose_index(p)?;
        let v = value::<T>(u)?;
        if u.arbitrary::<bool>()? {
            s[i].0 = v;
        } else {
            s[i].1 = v;
        }
    }
    Ok(s)
}

/// Lay out slots as a row of `2 * P` values.
fn layout<T: Elem>(slots: &[(T, T)], o: Orientation) -> Vec<T> {
    match o {
        Orientation::Planar => slots
            .iter()
            .map(|s| s.0)
            .chain(slots.iter().map(|s| s.1))
            .collect(),
        Orientation::Interleaved => slots.iter().flat_map(|s| [s.0, s.1]).collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Oracles (from the crate documentation)
// ---------------------------------------------------------------------------------------

fn is_zero_entry(m: f64, i: f64) -> bool {
    m == 0.0 && i == 0.0
}

fn oracle_unpadded_len(p: &[(f64, f64)]) -> usize {
    p.iter()
        .rposition(|&(m, i)| !is_zero_entry(m, i))
        .map_or(0, |i| i + 1)
}

fn oracle_validate(p: &[(f64, f64)], prec: f64, rules: &ValidationRules) -> Result2 {
    use RejectReason::*;
    let n = oracle_unpadded_len(p);
    let peaks = &p[..n];
    let pairs = || peaks.windows(2).map(|w| (w[0].0, w[1].0));
    if n == 0 {
        Err(Empty)
    } else if peaks.iter().any(|&(m, i)| !m.is_finite() || !i.is_finite()) {
        Err(NonFinite)
    } else if peaks.iter().any(|&(m, i)| is_zero_entry(m, i)) {
        Err(PaddingGap)
    } else if peaks.iter().any(|&(m, _)| m <= 0.0) {
        Err(NonPositiveMz)
    } else if peaks.iter().any(|&(_, i)| i <= 0.0) {
        Err(NonPositiveIntensity)
    } else if pairs().any(|(a, b)| b == a) {
        Err(DuplicateMz)
    } else if pairs().any(|(a, b)| b < a) {
        Err(UnsortedMz)
    } else if !(prec.is_finite() && prec > 0.0 && rules.max_precursor_mz.is_none_or(|m| prec <= m))
    {
        Err(BadPrecursor)
    } else if n < rules.min_peaks {
        Err(TooFewPeaks)
    } else {
        Ok(n)
    }
}

type Result2 = std::result::Result<usize, RejectReason>;

/// First strictly largest non-NaN value, from `-Inf`.
fn max_of(v: impl Iterator<Item = f64>) -> f64 {
    v.fold(f64::NEG_INFINITY, |m, x| if x > m { x } else { m })
}

fn oracle_intensity(v: &[f64], mode: Normalize) -> Vec<f32> {
    match mode {
        Normalize::None => v.iter().map(|&x| x as f32).collect(),
        Normalize::Max => {
            let d = max_of(v.iter().copied());
            v.iter().map(|&x| (x / d) as f32).collect()
        }
        Normalize::Sum => {
            let d = v.iter().fold(0.0, |s, &x| s + x);
            v.iter().map(|&x| (x / d) as f32).collect()
        }
        Normalize::L2 => {
            let d = v.iter().fold(0.0, |s, &x| s + x * x).sqrt();
            v.iter().map(|&x| (x / d) as f32).collect()
        }
        Normalize::Sqrt => {
            let d = max_of(v.iter().map(|x| x.sqrt()));
            v.iter().map(|&x| (x.sqrt() / d) as f32).collect()
        }
    }
}

/// Indices of the `k` best of `0..n` (intensity by `total_cmp` descending, then index),
/// ascending.
fn oracle_top_k(intensity: &[f64], k: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..intensity.len() as u32).collect();
    idx.sort_by(|&a, &b| {
        intensity[b as usize]
            .total_cmp(&intensity[a as usize])
            .then(a.cmp(&b))
    });
    idx.truncate(k);
    idx.sort_unstable();
    idx
}

/// Bin index → aggregated `f64`, per the `bin` module docs, in input order.
fn oracle_bins(spec: &BinSpec, mz: &[f64], intensity: &[f32]) -> BTreeMap<u32, f64> {
    let mut acc = BTreeMap::new();
    for (&m, &i) in mz.iter().zip(intensity) {
        if !(spec.min <= m && m < spec.max) {
            continue;
        }
        let q = ((m - spec.min) / spec.width).floor();
        let idx = if q >= (spec.bins - 1) as f64 {
            spec.bins - 1
        } else {
            q as usize
        };
        let x = f64::from(i);
        let v = if spec.power == 1.0 {
            x
        } else if spec.power == 0.5 {
            x.sqrt()
        } else {
            x.powf(spec.power)
        };
        let a = acc.entry(idx as u32).or_insert(0.0f64);
        *a = match spec.aggregation {
            BinAggregation::Sum => *a + v,
            BinAggregation::Max => {
                if v > *a {
                    v
                } else {
                    *a
                }
            }
        };
    }
    acc
}

// ---------------------------------------------------------------------------------------
// Comparisons
// ---------------------------------------------------------------------------------------

fn same32(a: f32, b: f32) -> bool {
    if a.is_nan() || b.is_nan() {
        a.is_nan() && b.is_nan()
    } else {
        a.to_bits() == b.to_bits()
    }
}

/// Equal element by element (NaN by NaN-ness); `what` names the comparison on failure.
fn assert_same32(got: &[f32], want: &[f32], what: impl Fn() -> String) {
    assert_eq!(got.len(), want.len(), "{}: lengths", what());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            same32(g, w),
            "{}[{i}]: got {g:?} ({:#x}), want {w:?} ({:#x})",
            what(),
            g.to_bits(),
            w.to_bits()
        );
    }
}

/// `MSMS_FUZZ_VERBOSE` set: print what each input exercised.
fn verbose() -> bool {
    static VERBOSE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("MSMS_FUZZ_VERBOSE").is_some())
}

// ---------------------------------------------------------------------------------------
// The target
// ---------------------------------------------------------------------------------------

fn check_block<T: Elem>(u: &mut Unstructured<'_>) -> Result<()> {
    let orientation = if u.arbitrary::<bool>()? {
        Orientation::Planar
    } else {
        Orientation::Interleaved
    };
    let slots = slots::<T>(u)?;
    let prec = number(u, 500.0)?;
    let rules = ValidationRules {
        min_peaks: match u.int_in_range(0u8..=3)? {
            0 => u.int_in_range(0usize..=131)?,
            _ => 1,
        },
        max_precursor_mz: if u.ratio(1u8, 3)? {
            Some(number(u, 1000.0)?)
        } else {
            None
        },
    };
    let row = layout(&slots, orientation);
    let block = PeakBlock::new(&row, orientation);
    let p = slots.len();
    assert_eq!(block.slots(), p);
    let wide: Vec<(f64, f64)> = slots.iter().map(|s| (s.0.to_f64(), s.1.to_f64())).collect();
    for (i, &(m, x)) in wide.iter().enumerate() {
        assert_eq!(block.mz(i).to_f64().to_bits(), m.to_bits());
        assert_eq!(block.intensity(i).to_f64().to_bits(), x.to_bits());
    }
    let ctx = format!("{} {orientation:?} P={p} prec={prec:?} {rules:?}", T::NAME);

    // Unpad + validate.
    let len = unpadded_len(block);
    assert_eq!(
        len,
        portable::unpadded_len(block),
        "unpadded_len vs portable, {ctx}"
    );
    assert_eq!(
        len,
        oracle_unpadded_len(&wide),
        "unpadded_len vs oracle, {ctx}"
    );
    let verdict = unpad_validate(block, prec, &rules);
    assert_eq!(
        verdict,
        portable::unpad_validate(block, prec, &rules),
        "verdict vs portable, {ctx}"
    );
    assert_eq!(
        verdict,
        oracle_validate(&wide, prec, &rules),
        "verdict vs oracle, {ctx}"
    );
    if let Ok(n) = verdict {
        assert_eq!(n, len);
        assert!(wide[n..].iter().all(|&(m, i)| is_zero_entry(m, i)));
    }
    let valid = verdict.is_ok();

    // The peaks the transforms see: the validated ones, or any prefix.
    let n = match verdict {
        Ok(n) => n,
        Err(_) if u.arbitrary::<bool>()? => len,
        Err(_) => u.int_in_range(0..=p)?,
    };
    let intensities: Vec<f64> = wide[..n].iter().map(|s| s.1).collect();

    // m/z extraction (appends after what is already there).
    let mut mz = vec![-1.5f64];
    extend_mz(block, n, &mut mz);
    assert_eq!(mz[0].to_bits(), (-1.5f64).to_bits());
    let mz = mz.split_off(1);
    assert_eq!(mz.len(), n);
    for (i, m) in mz.iter().enumerate() {
        assert_eq!(m.to_bits(), wide[i].0.to_bits(), "extend_mz[{i}], {ctx}");
    }

    // Intensity extraction, every mode.
    let mut by_mode = Vec::new();
    for mode in Normalize::ALL {
        let mut simd = vec![7.0f32];
        extend_intensity(block, n, mode, &mut simd);
        assert_eq!(
            simd[0].to_bits(),
            7.0f32.to_bits(),
            "extend_intensity clobbered, {ctx}"
        );
        let simd = simd.split_off(1);
        let mut port = Vec::new();
        portable::extend_intensity(block, n, mode, &mut port);
        assert_same32(&simd, &port, || {
            format!("extend_intensity {mode:?} vs portable, {ctx}")
        });
        let want = oracle_intensity(&intensities, mode);
        assert_same32(&simd, &want, || {
            format!("extend_intensity {mode:?} vs oracle, {ctx}")
        });
        if valid && matches!(mode, Normalize::Max | Normalize::Sqrt) {
            // Tiny ratios may round to 0 in f32; nothing is negative or above the base peak.
            assert!(
                simd.iter().all(|&v| (0.0..=1.0).contains(&v)),
                "{mode:?} outside [0, 1], {ctx}"
            );
            assert!(
                simd.contains(&1.0),
                "{mode:?} base peak not exactly 1, {ctx}"
            );
        }
        by_mode.push(simd);
    }

    // Top-k, and extraction of the selection.
    let k_pick = u.int_in_range(0usize..=(n + 2))?;
    for k in [0, 1, k_pick, n.saturating_sub(1), n, n + 1] {
        let mut got = vec![999u32];
        top_k(block, n, k, &mut got);
        let mut port = vec![999u32];
        portable::top_k(block, n, k, &mut port);
        assert_eq!(got, port, "top_k vs portable, k={k} n={n}, {ctx}");
        assert_eq!(got.len(), k.min(n), "top_k length, k={k} n={n}, {ctx}");
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "top_k not ascending: {got:?}, {ctx}"
        );
        assert!(got.iter().all(|&i| (i as usize) < n));
        assert_eq!(
            got,
            oracle_top_k(&intensities, k),
            "top_k vs oracle, k={k} n={n}, {ctx}"
        );

        let mut mz_at = vec![3.0f64];
        extend_mz_at(block, &got, &mut mz_at);
        assert_eq!(mz_at.len(), got.len() + 1);
        for (m, &i) in mz_at[1..].iter().zip(&got) {
            assert_eq!(m.to_bits(), wide[i as usize].0.to_bits());
        }
        let sel: Vec<f64> = got.iter().map(|&i| wide[i as usize].1).collect();
        for (mi, mode) in Normalize::ALL.into_iter().enumerate() {
            let mut at = Vec::new();
            extend_intensity_at(block, &got, mode, &mut at);
            let want = oracle_intensity(&sel, mode);
            assert_same32(&at, &want, || {
                format!("extend_intensity_at {mode:?} k={k}, {ctx}")
            });
            if got.len() == n {
                assert_same32(&at, &by_mode[mi], || {
                    format!("_at(all) vs extend {mode:?}, {ctx}")
                });
            }
        }
    }

    // Binning: the extracted peaks (normalised), or the raw slots.
    let spec = bin_spec(u)?;
    let mut binned = "none";
    if let Some(spec) = spec {
        let mode = *u.choose(&Normalize::ALL)?;
        let (bmz, bint): (Vec<f64>, Vec<f32>) = if u.arbitrary::<bool>()? {
            (
                mz.clone(),
                by_mode[Normalize::ALL.iter().position(|&m| m == mode).unwrap()].clone(),
            )
        } else {
            wide.iter().map(|&(m, i)| (m, i as f32)).unzip()
        };
        binned = check_binning(&spec, &bmz, &bint, &ctx);
    }

    // Quality formats.
    let charge = match u.int_in_range(0u8..=5)? {
        0 => None,
        1 | 2 => Some(1),
        3 => Some(-1),
        _ => Some(u.arbitrary::<i8>()?),
    };
    let accuracy = match u.int_in_range(0u8..=5)? {
        0 => None,
        1 => Some(5e-5f32),
        2 => Some(*u.choose(&[1e-4f32, 1e-3, 5e-4, 0.0, f32::NAN, f32::INFINITY])?),
        _ => Some(f32::from_bits(u.arbitrary()?)),
    };
    let fmt_prec = if u.arbitrary::<bool>()? {
        prec
    } else {
        number(u, 700.0)?
    };
    let general = gems_format(charge, fmt_prec, accuracy, &mz, &intensities);
    for f in GemsFormat::ALL {
        assert_eq!(
            meets(f, charge, fmt_prec, accuracy, &mz, &intensities),
            general.is_some_and(|g| g <= f),
            "meets({f:?}) vs gems_format {general:?}, {ctx}"
        );
    }
    if verbose() {
        eprintln!("{ctx}: verdict {verdict:?}, n {n}, binning {binned}, format {general:?}");
    }
    if valid {
        let fast = gems_format_validated(charge, fmt_prec, accuracy, block, n);
        assert_eq!(
            fast, general,
            "gems_format_validated vs gems_format (charge {charge:?}, prec {fmt_prec:?}, acc {accuracy:?}), {ctx}"
        );
    }
    Ok(())
}

fn bin_spec(u: &mut Unstructured<'_>) -> Result<Option<BinSpec>> {
    if u.ratio(1u8, 4)? {
        return Ok(None);
    }
    let min = match u.int_in_range(0u8..=4)? {
        0 | 1 => 0.0,
        2 => 10.0,
        3 => f64::from(u.arbitrary::<u16>()?) / 16.0,
        _ => number(u, 0.7)?,
    };
    let max = match u.int_in_range(0u8..=4)? {
        0 | 1 => 1000.0,
        2 => min + f64::from(u.arbitrary::<u16>()?) / 4.0,
        3 => 2000.25,
        _ => number(u, 1500.0)?,
    };
    let width = match u.int_in_range(0u8..=5)? {
        0 => 0.1,
        1 => 1.0,
        2 => 0.01,
        3 => f64::from(u.int_in_range(1u16..=4000)?) / 64.0,
        _ => number(u, 0.5)?,
    };
    let power = match u.int_in_range(0u8..=4)? {
        0 => 1.0,
        1 => 0.5,
        2 => 2.0,
        3 => f64::from(u.int_in_range(1u8..=40)?) / 10.0,
        _ => number(u, 0.25)?,
    };
    let aggregation = if u.arbitrary::<bool>()? {
        BinAggregation::Sum
    } else {
        BinAggregation::Max
    };
    match BinSpec::new(min, max, width, aggregation, power) {
        Ok(spec) => {
            assert!((1..=BinSpec::MAX_BINS).contains(&spec.bins), "{spec:?}");
            Ok(Some(spec))
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            Ok(None)
        }
    }
}

/// Returns which comparisons ran: `"sparse"` only, or `"dense+sparse"`.
fn check_binning(spec: &BinSpec, mz: &[f64], intensity: &[f32], ctx: &str) -> &'static str {
    let ctx = format!("{spec:?}, {} peaks, {ctx}", mz.len());
    let want = oracle_bins(spec, mz, intensity);

    // Sparse, appended after existing entries.
    let (mut index, mut value) = (vec![u32::MAX], vec![-2.0f32]);
    bin_sparse(spec, mz, intensity, &mut index, &mut value);
    assert_eq!(
        (index[0], value[0].to_bits()),
        (u32::MAX, (-2.0f32).to_bits()),
        "sparse prefix clobbered"
    );
    let (index, value) = (index.split_off(1), value.split_off(1));
    let (mut si, mut sv) = (Vec::new(), Vec::new());
    bin_sparse_scalar(spec, mz, intensity, &mut si, &mut sv);
    assert_eq!(index, si, "bin_sparse vs scalar indices, {ctx}");
    assert_same32(&value, &sv, || {
        format!("bin_sparse vs scalar values, {ctx}")
    });
    assert_eq!(index.len(), value.len());
    assert!(
        index.windows(2).all(|w| w[0] < w[1]),
        "sparse indices not ascending, {ctx}"
    );
    let want_idx: Vec<u32> = want.keys().copied().collect();
    assert_eq!(index, want_idx, "sparse bins hit vs oracle, {ctx}");
    let want_val: Vec<f32> = want.values().map(|&v| v as f32).collect();
    assert_same32(&value, &want_val, || {
        format!("sparse values vs oracle, {ctx}")
    });

    if spec.bins > MAX_DENSE_BINS {
        return "sparse";
    }
    let mut dense = vec![f32::NAN; spec.bins];
    bin_dense(spec, mz, intensity, &mut dense);
    let mut scalar = vec![5.0f32; spec.bins];
    bin_dense_scalar(spec, mz, intensity, &mut scalar);
    assert_same32(&dense, &scalar, || format!("bin_dense vs scalar, {ctx}"));
    let mut zeroed = vec![0.0f32; spec.bins];
    bin_dense_zeroed(spec, mz, intensity, &mut zeroed);
    assert_same32(&dense, &zeroed, || {
        format!("bin_dense vs bin_dense_zeroed, {ctx}")
    });
    // Dense and sparse describe the same row.
    let mut from_sparse = vec![0.0f32; spec.bins];
    for (&i, &v) in index.iter().zip(&value) {
        assert!((i as usize) < spec.bins);
        assert!(
            same32(dense[i as usize], v),
            "dense[{i}] != sparse value, {ctx}"
        );
        from_sparse[i as usize] = v;
    }
    assert_same32(&dense, &from_sparse, || {
        format!("bins absent from sparse are not 0, {ctx}")
    });
    if index.is_empty() {
        "dense+sparse (no bin hit)"
    } else {
        "dense+sparse"
    }
}
