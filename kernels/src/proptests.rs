//! Property tests: every fast kernel against its naive oracle, bit for bit, on random blocks
//! (0..=130 slots, special values, duplicates, sorted runs), both orientations, both element
//! types.

use crate::testutil::{layout, Elem};
use crate::{
    extend_intensity, extend_intensity_at, extend_mz, extend_mz_at, oracle, portable, top_k,
    unpad_validate, unpadded_len, Normalize, Orientation, PeakBlock, ValidationRules,
};
use proptest::prelude::*;
use proptest::sample::Index;

const MAX_SLOTS: usize = 130;

/// Any value a stored slot might hold, weighted towards the interesting ones.
fn value() -> BoxedStrategy<f64> {
    prop_oneof![
        3 => Just(0.0),
        2 => Just(-0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(f64::from_bits(1)),
        1 => Just(f64::from(f32::from_bits(1))),
        1 => Just(-f64::from(f32::from_bits(1))),
        3 => (-5i32..=5).prop_map(f64::from),
        4 => 1e-3f64..3000.0,
        2 => any::<f64>(),
    ]
    .boxed()
}

/// Mostly-plausible m/z: small integers (so sorting yields duplicates) or fractions.
fn plausible_mz() -> BoxedStrategy<f64> {
    prop_oneof![(1u32..300).prop_map(f64::from), 1e-3f64..3000.0].boxed()
}

/// Slots of one spectrum (real peaks and padding), at most [`MAX_SLOTS`].
fn slots() -> BoxedStrategy<Vec<(f64, f64)>> {
    let raw = (
        prop::collection::vec((value(), value()), 0..=MAX_SLOTS),
        0usize..=8,
    )
        .prop_map(|(mut s, pad)| {
            let pad = pad.min(MAX_SLOTS - s.len());
            s.resize(s.len() + pad, (0.0, 0.0));
            s
        });
    let near_valid = (
        prop_oneof![0usize..=8, 0usize..=MAX_SLOTS].prop_flat_map(|len| {
            // Small integer intensities make ties at the top-k cut common.
            let intensity = prop_oneof![1e-6f64..1e7, (1u32..5).prop_map(f64::from)];
            prop::collection::vec((plausible_mz(), intensity), len)
        }),
        any::<bool>(),
        prop::collection::vec((any::<Index>(), 0u8..3, value()), 0..3),
        0usize..=MAX_SLOTS,
    )
        .prop_map(|(mut s, dedup, mutations, pad)| {
            s.sort_by(|a, b| a.0.total_cmp(&b.0));
            if dedup {
                s.dedup_by(|a, b| a.0 == b.0);
            }
            if !s.is_empty() {
                for (at, what, v) in mutations {
                    let i = at.index(s.len());
                    match what {
                        0 => s[i].0 = v,
                        1 => s[i].1 = v,
                        _ => s[i] = (0.0, 0.0), // a gap, or extra padding if last
                    }
                }
            }
            let pad = pad.min(MAX_SLOTS - s.len());
            s.resize(s.len() + pad, (0.0, 0.0));
            s
        });
    prop_oneof![raw, near_valid].boxed()
}

fn precursor() -> BoxedStrategy<f64> {
    prop_oneof![3 => 1.0f64..2000.0, 1 => value()].boxed()
}

fn rules() -> BoxedStrategy<ValidationRules> {
    (
        0usize..5,
        prop::option::of(prop_oneof![500.0f64..2500.0, value()]),
    )
        .prop_map(|(min_peaks, max_precursor_mz)| ValidationRules {
            min_peaks,
            max_precursor_mz,
        })
        .boxed()
}

/// Chooses a length in `0..bound`: a proptest [`Index`], or a fixed fraction for seeds.
#[derive(Clone, Copy, Debug)]
enum Pick {
    Random(Index),
    /// The last value, `bound - 1`.
    Last,
    /// `(bound - 1) / 2`.
    Middle,
    /// `0`.
    First,
}

impl Pick {
    fn index(self, bound: usize) -> usize {
        match self {
            Self::Random(i) => i.index(bound),
            Self::Last => bound - 1,
            Self::Middle => (bound - 1) / 2,
            Self::First => 0,
        }
    }
}

/// Bit patterns, with every NaN mapped to one canonical NaN: Rust leaves the sign and
/// payload of a NaN produced by arithmetic unspecified (RFC 3514; they differ between debug
/// and release builds), so only "is NaN" is comparable. Everything else, `-0.0` included,
/// must match bit for bit.
fn bits32(v: &[f32]) -> Vec<u32> {
    v.iter()
        .map(|x| if x.is_nan() { f32::NAN } else { *x }.to_bits())
        .collect()
}

/// As [`bits32`].
fn bits64(v: &[f64]) -> Vec<u64> {
    v.iter()
        .map(|x| if x.is_nan() { f64::NAN } else { *x }.to_bits())
        .collect()
}

/// All kernels against their oracles on one block, for one element type and orientation.
fn check<T: Elem>(
    s: &[(f64, f64)],
    o: Orientation,
    prec: f64,
    rules: &ValidationRules,
    n_pick: Pick,
    k_pick: Pick,
) -> Result<(), TestCaseError> {
    let data = layout::<T>(s, o);
    let b = PeakBlock::new(&data, o);
    prop_assert_eq!(b.slots(), s.len());

    let len = unpadded_len(b);
    prop_assert_eq!(len, oracle::unpadded_len(b));
    prop_assert_eq!(portable::unpadded_len(b), len);
    let verdict = unpad_validate(b, prec, rules);
    prop_assert_eq!(verdict, oracle::unpad_validate(b, prec, rules));
    prop_assert_eq!(portable::unpad_validate(b, prec, rules), verdict);

    // Copy-out kernels on any prefix, valid or not, and on the validated prefix.
    let n = n_pick.index(s.len() + 1);
    let mut mz = vec![7.0];
    extend_mz(b, n, &mut mz);
    prop_assert_eq!(bits64(&mz[1..]), bits64(&oracle::mz(b, n)));
    prop_assert_eq!(mz[0], 7.0);
    for mode in Normalize::ALL {
        let expected = bits32(&oracle::intensity(b, n, mode));
        let mut out = Vec::new();
        extend_intensity(b, n, mode, &mut out);
        prop_assert_eq!(bits32(&out), expected.clone(), "simd {:?}", mode);
        out.clear();
        portable::extend_intensity(b, n, mode, &mut out);
        prop_assert_eq!(bits32(&out), expected, "scalar {:?}", mode);
    }

    // Top-k of the prefix, and the copy-out of the selection.
    let k = k_pick.index(n + 2);
    let mut idx = vec![u32::MAX];
    top_k(b, n, k, &mut idx);
    prop_assert_eq!(&idx, &oracle::top_k(b, n, k), "k = {}", k);
    let mut scalar_idx = vec![u32::MAX];
    portable::top_k(b, n, k, &mut scalar_idx);
    prop_assert_eq!(&scalar_idx, &idx, "scalar k = {}", k);
    let mut mz_at = vec![7.0];
    extend_mz_at(b, &idx, &mut mz_at);
    prop_assert_eq!(bits64(&mz_at[1..]), bits64(&oracle::mz_at(b, &idx)));
    for mode in Normalize::ALL {
        let mut out = vec![3.0];
        extend_intensity_at(b, &idx, mode, &mut out);
        prop_assert_eq!(
            bits32(&out[1..]),
            bits32(&oracle::intensity_at(b, &idx, mode)),
            "at {:?}",
            mode
        );
    }

    if let Ok(n) = verdict {
        prop_assert!(n == len && n >= 1);
        for mode in [Normalize::Max, Normalize::Sqrt] {
            let mut out = Vec::new();
            extend_intensity(b, n, mode, &mut out);
            prop_assert!(out.iter().all(|v| (0.0..=1.0).contains(v)), "{:?}", out);
            prop_assert!(out.contains(&1.0));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn kernels_match_oracles(
        s in slots(),
        prec in precursor(),
        rules in rules(),
        n_pick in any::<Index>(),
        k_pick in any::<Index>(),
    ) {
        for o in [Orientation::Planar, Orientation::Interleaved] {
            let (n, k) = (Pick::Random(n_pick), Pick::Random(k_pick));
            check::<f64>(&s, o, prec, &rules, n, k)?;
            check::<f32>(&s, o, prec, &rules, n, k)?;
        }
    }
}

/// The generator must reach every verdict, or the oracle comparison proves little.
#[test]
fn generator_covers_every_verdict() {
    use crate::RejectReason;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    use std::collections::BTreeMap;

    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let strategy = (slots(), precursor(), rules());
    let mut seen: BTreeMap<Result<usize, RejectReason>, usize> = BTreeMap::new();
    for _ in 0..4000 {
        let (s, prec, rules) = strategy.new_tree(&mut runner).unwrap().current();
        let data = layout::<f64>(&s, Orientation::Planar);
        let verdict = unpad_validate(PeakBlock::new(&data, Orientation::Planar), prec, &rules);
        *seen.entry(verdict.map(|_| 0)).or_default() += 1;
    }
    for r in RejectReason::VALIDATION {
        let count = seen.get(&Err(r)).copied().unwrap_or(0);
        assert!(count >= 20, "{r:?} generated {count} times: {seen:?}");
    }
    assert!(seen.get(&Ok(0)).is_some_and(|&c| c >= 200), "{seen:?}");
}

/// Hand-written seeds at every lane boundary (f64x4 and f32x8: lengths 0, 1, lanes - 1,
/// lanes, lanes + 1, ..., 128), each planted with special values at the first, a middle and
/// the last position, padded to several widths: every SIMD head, body and tail path.
#[test]
fn lane_boundary_seeds() {
    let specials = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        f64::from(f32::from_bits(1)),
        f64::from_bits(1),
        -1.0,
        1e300,
    ];
    let rules = ValidationRules::default();
    let mut cases = 0;
    let lengths = (0usize..=18).chain([31, 32, 33, 63, 64, 65, 127, 128]);
    for len in lengths {
        let valid: Vec<(f64, f64)> = (0..len)
            .map(|i| (100.0 + 0.5 * i as f64, 1.0 + ((i * 7) % 5) as f64))
            .collect();
        let equal: Vec<(f64, f64)> = (0..len).map(|i| (100.0 + i as f64, 4.0)).collect();
        let mut seeds = vec![valid.clone(), equal];
        for at in [0, len / 2, len.saturating_sub(1)] {
            if len == 0 {
                break;
            }
            // Max at this position; duplicate m/z here; each special in each column.
            let mut s = valid.clone();
            s[at].1 = 1e6;
            seeds.push(s);
            if at > 0 {
                let mut s = valid.clone();
                s[at].0 = s[at - 1].0;
                seeds.push(s);
            }
            for &v in &specials {
                for col in 0..2 {
                    let mut s = valid.clone();
                    if col == 0 {
                        s[at].0 = v
                    } else {
                        s[at].1 = v
                    }
                    seeds.push(s);
                }
            }
        }
        for seed in seeds {
            for pad in [0, 1, 3, 8, 128 - len.min(128)] {
                let slots = crate::testutil::padded(&seed, seed.len() + pad);
                for o in [Orientation::Planar, Orientation::Interleaved] {
                    for k in [Pick::First, Pick::Middle, Pick::Last] {
                        check::<f64>(&slots, o, 500.0, &rules, Pick::Last, k).unwrap();
                        check::<f32>(&slots, o, 500.0, &rules, Pick::Last, k).unwrap();
                    }
                    cases += 1;
                }
            }
        }
    }
    assert!(cases > 5000, "{cases}");
}
