//! Accumulators of the four report columns: exact counts of the integer columns
//! ([`IntAcc`]), counts per resolution step of the float columns ([`FloatAcc`]), and their
//! nearest-rank quantiles.

use super::{PRECURSOR_BIN_DA, PRECURSOR_TOP_DA, RT_BIN_S, RT_TOP_S};

/// Resolution steps of a float column: `floor(v × per_unit)` is a value's step, steps
/// `0..len` are counted one by one (values beyond count as above the range).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fine {
    per_unit: f64,
    len: usize,
    /// Steps per chart bin.
    per_bin: usize,
    /// Chart bins before the overflow bin.
    pub(crate) bins: usize,
}

pub(crate) const PRECURSOR_FINE: Fine = Fine {
    per_unit: 10.0,
    len: 50_000,
    per_bin: PRECURSOR_BIN_DA as usize * 10,
    bins: (PRECURSOR_TOP_DA / PRECURSOR_BIN_DA) as usize,
};

pub(crate) const RT_FINE: Fine = Fine {
    per_unit: 1.0,
    len: 86_400,
    per_bin: RT_BIN_S as usize,
    bins: (RT_TOP_S / RT_BIN_S) as usize,
};

/// Exact counts of an integer column: `counts[v - offset]`.
#[derive(Clone, Debug)]
pub(crate) struct IntAcc {
    offset: i64,
    pub(crate) counts: Vec<u64>,
    pub(crate) null: u64,
}

impl IntAcc {
    pub(crate) fn new(offset: i64) -> IntAcc {
        IntAcc {
            offset,
            counts: Vec::new(),
            null: 0,
        }
    }

    pub(crate) fn add(&mut self, v: i64) {
        let i = (v - self.offset) as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
    }

    pub(crate) fn merge(&mut self, o: &IntAcc) {
        if o.counts.len() > self.counts.len() {
            self.counts.resize(o.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.null += o.null;
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| (i as i64 + self.offset, c))
    }

    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Nearest-rank quantile `q` (0..=1).
    pub(crate) fn quantile(&self, q: f64) -> Option<i64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = rank(q, n);
        let mut seen = 0;
        for (v, c) in self.values() {
            seen += c;
            if seen >= rank {
                return Some(v);
            }
        }
        None
    }
}

/// 1-based nearest rank of quantile `q` among `n` values.
fn rank(q: f64, n: u64) -> u64 {
    ((q * n as f64).ceil() as u64).clamp(1, n)
}

/// A float column: counts per resolution step, plus what falls outside.
#[derive(Clone, Debug)]
pub(crate) struct FloatAcc {
    pub(crate) fine: Fine,
    steps: Vec<u64>,
    below: u64,
    above: u64,
    pub(crate) null: u64,
    pub(crate) non_finite: u64,
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
}

impl FloatAcc {
    pub(crate) fn new(fine: Fine) -> FloatAcc {
        FloatAcc {
            fine,
            steps: vec![0; fine.len],
            below: 0,
            above: 0,
            null: 0,
            non_finite: 0,
            min: None,
            max: None,
        }
    }

    /// Add a value; returns whether it is finite (and so part of the sum).
    pub(crate) fn add(&mut self, v: f64) -> bool {
        if !v.is_finite() {
            self.non_finite += 1;
            return false;
        }
        if v < 0.0 {
            self.below += 1;
        } else {
            let step = (v * self.fine.per_unit).floor();
            if step < self.fine.len as f64 {
                self.steps[step as usize] += 1;
            } else {
                self.above += 1;
            }
        }
        // total_cmp: -0.0 below 0.0, so the result never depends on the order.
        if self.min.is_none_or(|m| v.total_cmp(&m).is_lt()) {
            self.min = Some(v);
        }
        if self.max.is_none_or(|m| v.total_cmp(&m).is_gt()) {
            self.max = Some(v);
        }
        true
    }

    pub(crate) fn merge(&mut self, o: &FloatAcc) {
        for (a, b) in self.steps.iter_mut().zip(&o.steps) {
            *a += b;
        }
        self.below += o.below;
        self.above += o.above;
        self.null += o.null;
        self.non_finite += o.non_finite;
        for v in [o.min, o.max].into_iter().flatten() {
            if self.min.is_none_or(|m| v.total_cmp(&m).is_lt()) {
                self.min = Some(v);
            }
            if self.max.is_none_or(|m| v.total_cmp(&m).is_gt()) {
                self.max = Some(v);
            }
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.below + self.above + self.steps.iter().sum::<u64>()
    }

    /// Nearest-rank quantile, rounded down to the resolution, clamped to `[min, max]`.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        let (min, max) = (self.min?, self.max?);
        let rank = rank(q, self.count());
        if rank <= self.below {
            return Some(min);
        }
        let mut seen = self.below;
        for (i, &c) in self.steps.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some((i as f64 / self.fine.per_unit).clamp(min, max));
            }
        }
        Some(max)
    }

    /// Counts of the chart bins: `< 0`, the regular bins, then the overflow.
    pub(crate) fn bins(&self) -> Vec<u64> {
        let f = self.fine;
        let mut out = Vec::with_capacity(f.bins + 2);
        out.push(self.below);
        for b in 0..f.bins {
            out.push(self.steps[b * f.per_bin..(b + 1) * f.per_bin].iter().sum());
        }
        out.push(self.steps[f.bins * f.per_bin..].iter().sum::<u64>() + self.above);
        out
    }
}

/// The four columns of a set of rows (all of them, or one split's).
#[derive(Clone, Debug)]
pub(crate) struct Acc {
    pub(crate) rows: u64,
    pub(crate) num_peaks: IntAcc,
    pub(crate) charge: IntAcc,
    pub(crate) precursor: FloatAcc,
    pub(crate) rt: FloatAcc,
}

/// Float sums, kept apart from [`Acc`] so that they are added in a fixed order.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sums {
    pub(crate) precursor: f64,
    pub(crate) rt: f64,
}

impl Acc {
    pub(crate) fn new() -> Acc {
        Acc {
            rows: 0,
            num_peaks: IntAcc::new(0),
            charge: IntAcc::new(i64::from(i8::MIN)),
            precursor: FloatAcc::new(PRECURSOR_FINE),
            rt: FloatAcc::new(RT_FINE),
        }
    }

    pub(crate) fn merge(&mut self, o: &Acc) {
        self.rows += o.rows;
        self.num_peaks.merge(&o.num_peaks);
        self.charge.merge(&o.charge);
        self.precursor.merge(&o.precursor);
        self.rt.merge(&o.rt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles_of_integers() {
        let mut a = IntAcc::new(0);
        for v in [5, 1, 3, 2, 4] {
            a.add(v);
        }
        assert_eq!(a.quantile(0.5), Some(3));
        assert_eq!(a.quantile(0.01), Some(1));
        assert_eq!(a.quantile(0.99), Some(5));
        assert_eq!(a.quantile(0.2), Some(1));
        assert_eq!(a.quantile(0.21), Some(2));
        assert_eq!(IntAcc::new(0).quantile(0.5), None);
        let mut c = IntAcc::new(-128);
        c.add(-1);
        c.add(2);
        assert_eq!(c.values().collect::<Vec<_>>(), vec![(-1, 1), (2, 1)]);
    }

    #[test]
    fn float_bins_and_quantiles_follow_the_steps() {
        let mut a = FloatAcc::new(PRECURSOR_FINE);
        for v in [-3.0, 0.0, 24.99, 25.0, 1999.95, 2000.0, 9000.0, f64::NAN] {
            a.add(v);
        }
        assert_eq!(a.non_finite, 1);
        assert_eq!(a.count(), 7);
        let bins = a.bins();
        assert_eq!(bins.len(), 82);
        assert_eq!(bins[0], 1, "< 0");
        assert_eq!(bins[1], 2, "[0, 25)");
        assert_eq!(bins[2], 1, "[25, 50)");
        assert_eq!(bins[80], 1, "[1975, 2000)");
        assert_eq!(bins[81], 2, "2000+");
        assert_eq!(bins.iter().sum::<u64>(), 7);
        assert_eq!(a.min, Some(-3.0));
        assert_eq!(a.max, Some(9000.0));
        assert_eq!(a.quantile(0.01), Some(-3.0));
        assert_eq!(a.quantile(0.5), Some(25.0));
        assert_eq!(a.quantile(0.99), Some(9000.0));
        let mut b = FloatAcc::new(PRECURSOR_FINE);
        b.add(123.456);
        assert_eq!(b.quantile(0.5), Some(123.456), "clamped up to min");
        b.add(123.99);
        assert_eq!(b.quantile(1.0), Some(123.9), "rounded down to 0.1");
    }
}
