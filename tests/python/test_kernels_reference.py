"""Peak transforms of `msms build-shards` against independent reference implementations (issue 3).

GeMS-like HDF5 inputs (a few hundred spectra, realistic peaks, deliberate intensity ties) are
written with h5py as in test_interop.py, converted with the new flags, and every written value
is compared with:

- normalise: matchms `normalize_intensities` (max; matchms itself, installed from PyPI), numpy
  per the issue's definitions for sum / l2 / sqrt, and a port of spectrum_utils
  `scale_intensity("root")` + max for sqrt;
- top-k (`--max-peaks`): matchms `reduce_to_number_of_peaks`, compared up to ties, and the
  issue's deterministic tie rule (higher intensity first, then lower m/z) exactly;
- binning: faithful numpy ports of ms2deepscore `vectorize_spectrum` (max, P = 0.5) and DreaMS
  `_bin_peak_list` (sum, P = 1), plus the issue's own definition; dense and sparse agree;
- GeMS quality format: a port of DreaMS `dreams/utils/dformats.py` (`DataFormat.val_spec`,
  `assign_dformat`) compared with the `gems_format` column and `--quality-format A|B|C`.

Ports are of the upstream sources read for this test (matchms/ms2deepscore
`ms2deepscore/tensorize_spectra.py` and `SettingsMS2Deepscore.py`; pluskal-lab/DreaMS
`dreams/utils/spectra.py` and `dreams/utils/dformats.py`; bittremieux/spectrum_utils
`MsmsSpectrum.scale_intensity`). ms2deepscore and DreaMS are not installed (torch).

Exact float32 bit equality is asserted wherever the definition fixes every rounding; a
tolerance is used only where the reference computes in another precision or another order, and
each such place says why.

Run: bash scripts/setup-python.sh && .venv/bin/python -m pytest tests/python -q
The binary is $MSMS_BIN, else <repo>/target/debug/msms (build it with `cargo build`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from msms_cli import run_msms

SLOTS = 128
N_SPECTRA = 360
TOP_K = 10
F32 = np.float32

# --------------------------------------------------------------------------------------
# The binary (run through msms_cli)


def build_shards(h5: Path, out: Path, *extra: str) -> tuple[pa.Table, dict]:
    run_msms("build-shards", "--input-hdf5", h5, "--output-root", out, "-q", "--overwrite", *extra)
    manifest = json.loads((out / "_manifest.json").read_text())
    t = ds.dataset(out / "train", format="parquet").to_table().sort_by("spectrum_id")
    return t, manifest


def bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view({8: np.uint64, 4: np.uint32, 2: np.uint16, 1: np.uint8}[a.dtype.itemsize])


def lists(col: pa.ChunkedArray) -> list[np.ndarray]:
    """A list column as one numpy array per row."""
    arr = col.combine_chunks()
    off = arr.offsets.to_numpy()
    vals = arr.values.to_numpy(zero_copy_only=False)
    return [vals[off[i]: off[i + 1]] for i in range(len(arr))]


def dense(t: pa.Table, bins: int) -> np.ndarray:
    col = t["binned"].combine_chunks()
    assert pa.types.is_fixed_size_list(col.type), col.type
    assert col.type.list_size == bins and col.type.value_type == pa.float32(), col.type
    return col.values.to_numpy().reshape(len(t), bins)


def f32_ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in float32 ulps between two arrays of positive float32 values."""
    return np.abs(bits(a.astype(F32)).astype(np.int64) - bits(b.astype(F32)).astype(np.int64))


# --------------------------------------------------------------------------------------
# GeMS-like input


# m/z values placed on purpose: range edges of the bin settings used below and of the
# quality formats (10, 1000, 1500), the partial last width of 0.7-wide bins over 10..1000
# ([999.8, 1000)), and the values just below an edge.
SPECIAL_MZ = np.array([
    np.nextafter(10.0, 0.0), 10.0, 10.05, 999.8, 999.85, 999.9, 999.95, 999.99,
    np.nextafter(1000.0, 0.0), 1000.0, 1000.0001, np.nextafter(1500.0, 0.0), 1500.0, 1500.5,
])


@dataclass
class Gems:
    spectrum: np.ndarray  # (N, 2, SLOTS) float64, right-padded with zeros
    counts: np.ndarray  # peaks per spectrum
    precursor_mz: np.ndarray  # float32
    charge: np.ndarray  # int8
    accuracy: np.ndarray  # float32

    @property
    def n(self) -> int:
        return len(self.counts)

    def peaks(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        k = int(self.counts[i])
        return self.spectrum[i, 0, :k], self.spectrum[i, 1, :k]


def _mz_list(rng: np.random.Generator, k: int, with_special: bool) -> np.ndarray:
    special = rng.choice(SPECIAL_MZ, rng.integers(1, 4), replace=False) if with_special else []
    while True:
        base = rng.uniform(5.0, 1600.0, k)
        mz = np.unique(np.concatenate([special, base]))[:k]
        if len(mz) == k:
            return np.sort(mz)


def _intensities(rng: np.random.Generator, k: int, kind: int) -> np.ndarray:
    if kind == 0:  # continuous, no ties in practice
        return rng.lognormal(8.0, 2.0, k)
    if kind == 1:  # ion counts from a small set: many ties everywhere
        return rng.integers(1, 12, k).astype(np.float64) * 250.0
    if kind == 2:  # continuous, with a tie straddling the top-k cutoff
        it = rng.lognormal(8.0, 1.5, k)
        if k > TOP_K:
            order = np.argsort(-it, kind="stable")
            lo, hi = max(0, TOP_K - 2), min(k, TOP_K + 2)
            it[order[lo:hi]] = it[order[lo]]
        return it
    if kind == 3:  # all equal
        return np.full(k, 1234.5)
    if kind == 4:  # quality edge cases: relative intensity exactly 0.1, amplitude near 18 / 20
        it = rng.uniform(150.0, 1000.0, k)
        it[rng.integers(0, k)] = 1000.0
        it[rng.choice(k, min(k, 2), replace=False)] = 100.0  # 100 / 1000 == 0.1 exactly
        it[rng.integers(0, k)] = 1000.0 / rng.choice([17.5, 18.0, 19.0, 19.999, 20.0, 20.001, 25.0,
                                                     50.0, 200.0, 1000.0])
        it[it.argmax()] = 1000.0
        return it
    # kind 5: continuous with the base peak at the first or the last position
    it = rng.uniform(1.0, 5000.0, k)
    it[0 if rng.random() < 0.5 else -1] = 10000.0
    return it


def make_gems(seed: int, n: int = N_SPECTRA) -> Gems:
    rng = np.random.default_rng(seed)
    spectrum = np.zeros((n, 2, SLOTS), dtype=np.float64)
    small = np.clip(np.rint(rng.lognormal(2.6, 0.7, n)), 1, SLOTS)
    spread = rng.integers(1, SLOTS + 1, n)
    kind = rng.random(n)
    counts = np.where(kind < 0.55, small, np.where(kind < 0.85, spread, SLOTS)).astype(np.int64)
    counts[:6] = [1, 2, 3, TOP_K, TOP_K + 1, SLOTS]
    for i, k in enumerate(counts):
        k = int(k)
        spectrum[i, 0, :k] = _mz_list(rng, k, with_special=(i % 3 == 0))
        spectrum[i, 1, :k] = _intensities(rng, k, i % 6)
    precursor = rng.uniform(100.0, 1700.0, n).astype(F32)
    precursor[rng.choice(n, 12, replace=False)] = rng.choice(
        np.array([1000.0, 1500.0, np.nextafter(F32(1000.0), F32(2000.0)), 999.99], dtype=F32), 12)
    charge = rng.choice(np.array([-2, -1, 0, 1, 1, 1, 1, 1, 2, 3], dtype=np.int8), n)
    # Instrument accuracy estimates (DreaMS stores the file's TBXIC median stdev here).
    # float32(1e-4) < 1e-4 but float32(1e-3) > 1e-3: both sides of a limit.
    accuracy = rng.choice(np.array([-1.0, 1e-5, 9e-5, 1e-4, 5e-4, 1e-3, 2e-3], dtype=F32), n)
    # Every sixth spectrum (intensity kind 4) is built around DreaMS's quality limits: peaks up
    # to just below / exactly at / above 1000 and 1500, precursor m/z at the limits, mostly
    # charge 1 and a small accuracy estimate, so that A, B, C and none all occur.
    for i in range(4, n, 6):
        k = max(int(counts[i]), 4)
        counts[i] = k
        top = rng.choice([995.0, 1000.0, 1000.0, 1000.0001, 1400.0, 1500.0, 1600.0])
        top = min(top, 1000.0) if i % 12 == 4 else top
        mz = np.unique(np.concatenate([[top], rng.uniform(40.0, top, k - 1)]))
        while len(mz) < k:
            mz = np.unique(np.concatenate([mz, rng.uniform(40.0, top, 1)]))
        spectrum[i, 0, :] = 0.0
        spectrum[i, 0, :k] = mz[:k] if mz[-1] == top else mz[-k:]
        spectrum[i, 0, :k] = np.sort(spectrum[i, 0, :k])
        spectrum[i, 1, :] = 0.0
        spectrum[i, 1, :k] = _intensities(rng, k, 4)
        precursor[i] = rng.choice(np.array([300.0, 650.0, 999.5, 1000.0, 1000.0001, 1200.0, 1500.0,
                                            1500.1], dtype=F32))
        charge[i] = rng.choice(np.array([1, 1, 1, 1, 1, -1, 0, 2], dtype=np.int8))
        accuracy[i] = rng.choice(np.array([1e-5, 9e-5, 1e-4, 1e-4, 5e-4, 1e-3, 2e-3, -1.0],
                                          dtype=F32))
        if i % 12 == 4:  # half of them meet A's metadata limits, so that A is common enough
            precursor[i], charge[i] = min(precursor[i], F32(1000.0)), 1
            accuracy[i] = min(accuracy[i], F32(1e-4))
    return Gems(spectrum, counts, precursor, charge, accuracy)


def write_gems(path: Path, g: Gems, charge: bool = True, accuracy: bool = True) -> None:
    """Write like DreaMS: flat top-level datasets, one row per spectrum, h5py chunking + gzip."""
    storage = dict(chunks=True, compression="gzip", compression_opts=4, shuffle=False)
    with h5py.File(path, "w") as f:
        f.create_dataset("spectrum", data=g.spectrum, dtype=np.float64, **storage)
        f.create_dataset("precursor_mz", data=g.precursor_mz, dtype=F32, **storage)
        if charge:
            f.create_dataset("charge", data=g.charge, dtype=np.int8, **storage)
        if accuracy:
            f.create_dataset("instrument accuracy est.", data=g.accuracy, dtype=F32, **storage)


@pytest.fixture(scope="module")
def gems(tmp_path_factory) -> tuple[Gems, Path]:
    d = tmp_path_factory.mktemp("kernels_ref")
    g = make_gems(seed=3_2024)
    h5 = d / "GeMS_like.hdf5"
    write_gems(h5, g)
    return g, h5


@pytest.fixture(scope="module")
def convert(gems):
    """convert(*flags) -> (table, manifest), cached per flag tuple for the module."""
    g, h5 = gems
    cache: dict[tuple[str, ...], tuple[pa.Table, dict]] = {}

    def run(*flags: str) -> tuple[pa.Table, dict]:
        if flags not in cache:
            out = h5.parent / f"out_{len(cache)}"
            cache[flags] = build_shards(h5, out, *flags)
        return cache[flags]

    return run


def test_input_has_what_the_references_need():
    g = make_gems(seed=3_2024)
    ties_at_cutoff = no_ties = 0
    for i in range(g.n):
        mz, it = g.peaks(i)
        assert np.all(np.diff(mz) > 0) and np.all(it > 0)
        if len(it) > TOP_K:
            s = np.sort(it)[::-1]
            ties_at_cutoff += s[TOP_K - 1] == s[TOP_K]
            no_ties += len(np.unique(it)) == len(it)
    assert ties_at_cutoff >= 40 and no_ties >= 40, (ties_at_cutoff, no_ties)
    allmz = np.concatenate([g.peaks(i)[0] for i in range(g.n)])
    assert np.sum((allmz >= 999.8) & (allmz < 1000.0)) >= 10


# --------------------------------------------------------------------------------------
# Normalisation


def matchms_modules():
    # A plain import, not importorskip: matchms is pinned in requirements.txt, so a missing or
    # broken matchms (or one of its dependencies) is a failure, not a skipped reference test.
    import matchms
    from matchms.filtering import normalize_intensities, reduce_to_number_of_peaks
    from matchms.logging_functions import set_matchms_logger_level

    set_matchms_logger_level("ERROR")
    return matchms.Spectrum, normalize_intensities, reduce_to_number_of_peaks


def matchms_spectrum(Spectrum, mz: np.ndarray, it: np.ndarray, prec: float):
    return Spectrum(mz=np.array(mz, dtype=np.float64), intensities=np.array(it, dtype=np.float64),
                    metadata={"precursor_mz": float(prec)}, metadata_harmonization=False)


def spectrum_utils_root_max(it: np.ndarray) -> np.ndarray:
    """spectrum_utils `scale_intensity("root")` (degree 2) then `scale_intensity(max_intensity=1)`.

    spectrum_utils computes `np.power(intensity, 1 / degree).astype(np.float32)` and then divides
    the float32 values by their maximum (`intensity / intensity.max() * max_intensity`), i.e. it
    rounds to float32 twice; msms computes sqrt(I) / max(sqrt(I)) in float64 and rounds once.
    """
    root = np.power(it, 1 / 2).astype(F32)
    return (root / root.max() * 1.0).astype(F32)


def seq_sum(x: np.ndarray) -> float:
    """Σx accumulated left to right in float64 (np.add.accumulate is strictly sequential)."""
    return float(np.add.accumulate(x)[-1])


def expected_norm(it: np.ndarray, how: str, sequential: bool = True) -> np.ndarray:
    """The issue's definitions, float64 throughout, rounded once to float32.

    For sum and l2 the sum is taken in m/z order (as msms documents); with sequential=False numpy's
    pairwise np.sum is used instead.
    """
    s = seq_sum if sequential else (lambda x: float(np.sum(x)))
    if how == "none":
        return it.astype(F32)
    if how == "max":
        return (it / it.max()).astype(F32)
    if how == "sum":
        return (it / s(it)).astype(F32)
    if how == "l2":
        return (it / math.sqrt(s(it * it))).astype(F32)
    if how == "sqrt":
        r = np.sqrt(it)
        return (r / r.max()).astype(F32)
    raise ValueError(how)


def order_sensitive_intensities(how: str, k: int, near: float) -> np.ndarray:
    """Intensities whose `--normalize how` (sum or l2) rounds to other float32 values when ΣI
    (or ΣI²) is taken left to right than with numpy's pairwise np.sum.

    A first peak of 1.0, then k - 2 peaks too small to move a left-to-right sum of 1.0 (each
    term under half an ulp of 1.0) but not a pairwise one (which adds them up in separate
    accumulators first), then a last peak P found by a search over neighbouring float64 values
    such that one quotient falls between the two sums' float32 rounding boundaries: P / ΣI
    (or P / sqrt(ΣI²)) next to the midpoint of two float32 values near `near`. Positive,
    finite and valid. Both sums come from `expected_norm`, the test's own definitions.
    """
    tiny = 2.0**-54 if how == "sum" else 2.0**-28  # for l2, tiny² = 2^-56
    a = F32(near)
    mid = (float(a) + float(np.nextafter(a, F32(2.0)))) / 2
    p0 = mid / (1 - mid) if how == "sum" else mid / math.sqrt(1 - mid * mid)
    it = np.full(k, tiny)
    it[0] = 1.0
    for j in range(4000):
        it[-1] = p0 + (j // 2) * (-1) ** j * math.ulp(p0)
        if np.any(expected_norm(it, how) != expected_norm(it, how, sequential=False)):
            return it.copy()
    raise AssertionError(f"no order-sensitive {how} spectrum of {k} peaks near {near}")


# (how, peaks, float32 value near which a quotient is placed) for the order-sensitive spectra.
ORDER_SENSITIVE = [
    (how, k, near) for how in ("sum", "l2") for k, near in [(40, 0.3), (64, 0.6), (128, 0.45)]
]


@pytest.fixture(scope="module")
def order_sensitive(tmp_path_factory) -> tuple[Gems, Path]:
    """Spectra on which the left-to-right and the pairwise sum give other float32 results
    (`order_sensitive_intensities`), as a GeMS-like file: the realistic input has none (its
    float32 results agree with numpy's pairwise sum on every row), so without these the exact
    comparison in test_normalize could not tell msms's documented summation order from
    another."""
    n = len(ORDER_SENSITIVE)
    spectrum = np.zeros((n, 2, SLOTS), dtype=np.float64)
    counts = np.zeros(n, dtype=np.int64)
    for i, (how, k, near) in enumerate(ORDER_SENSITIVE):
        spectrum[i, 0, :k] = np.linspace(100.0, 900.0, k)
        spectrum[i, 1, :k] = order_sensitive_intensities(how, k, near)
        counts[i] = k
    g = Gems(spectrum, counts, np.full(n, 950.0, dtype=F32), np.ones(n, dtype=np.int8),
             np.full(n, 1e-5, dtype=F32))
    d = tmp_path_factory.mktemp("order_sensitive")
    h5 = d / "order_sensitive.hdf5"
    write_gems(h5, g)
    return g, h5


@pytest.mark.parametrize("how", ["none", "max", "sum", "l2", "sqrt"])
def test_normalize(gems, convert, order_sensitive, how):
    g, _ = gems
    t, m = convert("--normalize", how)
    inputs = [("realistic", g, t)]
    if how in ("sum", "l2"):
        og, oh5 = order_sensitive
        ot, _ = build_shards(oh5, oh5.parent / f"out_{how}", "--normalize", how)
        inputs.append(("order-sensitive", og, ot))
    # Spectra (input, id) whose result differs from the one with numpy's pairwise sum.
    pairwise_off = set()
    for name, g, t in inputs:
        ids = t["spectrum_id"].to_numpy()
        np.testing.assert_array_equal(ids, np.arange(g.n, dtype=np.uint64))  # all spectra valid
        got = lists(t["intensity"])
        gmz = lists(t["mz"])
        for row, i in enumerate(ids):
            mz, it = g.peaks(int(i))
            np.testing.assert_array_equal(bits(gmz[row]), bits(mz))
            assert got[row].dtype == F32
            want = expected_norm(it, how)
            assert np.array_equal(bits(got[row]), bits(want)), (
                f"--normalize {how}, {name} spectrum {i}: intensities {it.tolist()}\n"
                f"expected {want.tolist()}\nactual   {got[row].tolist()}"
            )
            if how in ("sum", "l2"):
                # numpy's pairwise np.sum (what numpy-based pipelines use) rounds ΣI differently
                # from a left-to-right sum; the float64 quotients then differ by a few float64
                # ulps, which can move the float32 result by at most one ulp.
                alt = expected_norm(it, how, sequential=False)
                np.testing.assert_allclose(got[row], alt, rtol=1e-6)
                assert f32_ulps(got[row], alt).max() <= 1
                if np.any(got[row] != alt):
                    pairwise_off.add((name, int(i)))
            if how in ("max", "sqrt"):
                assert got[row].max() == F32(1.0)
            if how == "sqrt":
                # spectrum_utils rounds sqrt(I) to float32 before dividing: a different precision.
                np.testing.assert_allclose(got[row], spectrum_utils_root_max(it), rtol=1e-6)
    if how in ("sum", "l2"):
        # The exact comparison above pins the sum to msms's documented left-to-right order
        # only where the other order gives other float32 values: every order-sensitive
        # spectrum made for this mode must be one of them (so a reordered, e.g. vectorised or
        # pairwise, sum in msms fails the exact comparison there).
        made = {("order-sensitive", i) for i, (h, _, _) in enumerate(ORDER_SENSITIVE) if h == how}
        assert made <= pairwise_off, (
            f"--normalize {how}: order-sensitive spectra {sorted(i for _, i in made - pairwise_off)} "
            f"give the same float32 values with numpy's pairwise sum (differing: {sorted(pairwise_off)})"
        )
    assert m["settings"]["normalize"] == how


def test_normalize_max_equals_matchms(gems, convert):
    Spectrum, normalize_intensities, _ = matchms_modules()
    g, _ = gems
    t, _ = convert("--normalize", "max")
    got = lists(t["intensity"])
    for row, i in enumerate(t["spectrum_id"].to_numpy()):
        mz, it = g.peaks(int(i))
        s = normalize_intensities(matchms_spectrum(Spectrum, mz, it, g.precursor_mz[i]))
        # matchms divides in float64 (intensities / max): one rounding to float32 gives msms's.
        want = s.peaks.intensities.astype(F32)
        np.testing.assert_array_equal(bits(s.peaks.mz), bits(mz))
        assert np.array_equal(bits(got[row]), bits(want)), (i, it.tolist(), want, got[row])


# --------------------------------------------------------------------------------------
# Top-k


def topk_issue_rule(mz: np.ndarray, it: np.ndarray, k: int) -> np.ndarray:
    """Indices kept by the issue's rule: higher intensity first, then lower m/z; in m/z order."""
    if len(it) <= k:
        return np.arange(len(it))
    order = np.lexsort((mz, -it))  # last key is primary
    return np.sort(order[:k])


@pytest.mark.parametrize("how", ["max", "sum"])
def test_top_k(gems, convert, how):
    Spectrum, normalize_intensities, reduce_to_number_of_peaks = matchms_modules()
    g, _ = gems
    t, _ = convert("--max-peaks", str(TOP_K), "--normalize", how)
    ids = t["spectrum_id"].to_numpy()
    np.testing.assert_array_equal(ids, np.arange(g.n, dtype=np.uint64))
    got_mz, got_it = lists(t["mz"]), lists(t["intensity"])
    np.testing.assert_array_equal(t["num_peaks"].to_numpy(),
                                  np.minimum(g.counts, TOP_K).astype(np.uint16))
    exact = with_ties = 0
    for row, i in enumerate(ids):
        mz, it = g.peaks(int(i))
        # The kept peaks are peaks of the input (bit-exact m/z), in m/z order.
        pos = np.searchsorted(mz, got_mz[row])
        assert np.array_equal(bits(mz[pos]), bits(got_mz[row])), i
        assert np.all(np.diff(pos) > 0), i

        # 1. The issue's deterministic tie rule, exactly.
        keep = topk_issue_rule(mz, it, TOP_K)
        np.testing.assert_array_equal(pos, keep, err_msg=f"spectrum {i}: {it.tolist()}")
        # Normalisation happens after top-k, over the kept peaks.
        want = expected_norm(it[keep], how)
        assert np.array_equal(bits(got_it[row]), bits(want)), (i, want, got_it[row])

        # 2. matchms reduce_to_number_of_peaks (argsort, ties in arbitrary order): up to ties.
        s = reduce_to_number_of_peaks(matchms_spectrum(Spectrum, mz, it, g.precursor_mz[i]),
                                      n_max=TOP_K)
        ref_it = s.peaks.intensities
        np.testing.assert_array_equal(np.sort(it[pos]), np.sort(ref_it), err_msg=str(i))
        srt = np.sort(it)[::-1]
        tie = len(it) > TOP_K and srt[TOP_K - 1] == srt[TOP_K]
        if tie:
            with_ties += 1
        else:
            # No tie across the cutoff: exactly the same peaks, and (for max) the same values as
            # matchms's normalize_intensities on the reduced spectrum.
            exact += 1
            np.testing.assert_array_equal(bits(got_mz[row]), bits(s.peaks.mz))
            if how == "max":
                ref = normalize_intensities(s).peaks.intensities.astype(F32)
                assert np.array_equal(bits(got_it[row]), bits(ref)), i
    assert exact >= 100 and with_ties >= 40, (exact, with_ties)


# --------------------------------------------------------------------------------------
# Binning: references


def guarded_bins(mn: float, mx: float, w: float) -> int:
    """The issue's bin count: whole widths in [MIN, MAX), with a rounding guard.

    (MAX - MIN) / W within a relative 1e-9 of an integer counts as that integer (0.1 over
    0.7..1000: 9992.999999999998 -> 9993); otherwise floor. (0.1 over 10..1000 needs no guard:
    990 / 0.1 rounds to exactly 9900.0.) The settings used here are far from the guard's
    tolerance either way.
    """
    q = (mx - mn) / w
    r = round(q)
    return int(r) if abs(q - r) <= 1e-9 * r else math.floor(q)


def bin_issue(mz, it, mn, mx, w, agg, p) -> np.ndarray:
    """The issue's definition, written independently of both upstream projects.

    Kept when MIN <= m/z < MAX; index floor((m/z - MIN) / W) clamped to the last bin; value =
    sum or max of intensity**P accumulated in float64 in m/z order, rounded once to float32.
    """
    bins = guarded_bins(mn, mx, w)
    out = np.zeros(bins, dtype=np.float64)
    for m, i in zip(mz.tolist(), np.asarray(it, dtype=np.float64).tolist()):
        if mn <= m < mx:
            j = min(math.floor((m - mn) / w), bins - 1)
            v = i ** p
            out[j] = out[j] + v if agg == "sum" else max(out[j], v)
    return out.astype(F32)


def ms2deepscore_vectorize_spectrum(mz_array, intensities_array, min_mz, max_mz, mz_bin_width,
                                    intensity_scaling):
    """Port of ms2deepscore `tensorize_spectra.vectorize_spectrum` (numba there, Python here).

    Upstream:
        num_bins = int((max_mz - min_mz) / mz_bin_width)
        vector = np.zeros((num_bins))
        for mz, intensity in zip(mz_array, intensities_array):
            if min_mz <= mz < max_mz:
                bin_index = int((mz - min_mz) / mz_bin_width)
                vector[bin_index] = max(vector[bin_index], intensity ** intensity_scaling)
        return vector

    Differences from the issue's definition (the only change in this port is the second):
    - num_bins is truncated with no rounding guard: 0.1 over 0.7..1000 gives 9992 bins, not 9993
      (over its default 10..1000 both give 9900).
    - bin_index is not clamped: a peak in [min + num_bins * width, max) gets index >= num_bins;
      under numba's nopython mode (no bounds check) that write is out of bounds. The port does
      not write it and returns those peaks' values as `overflow` instead.
    """
    num_bins = int((max_mz - min_mz) / mz_bin_width)
    vector = np.zeros((num_bins))
    overflow = []
    for mz, intensity in zip(mz_array.tolist(), intensities_array.tolist()):
        if min_mz <= mz < max_mz:
            bin_index = int((mz - min_mz) / mz_bin_width)
            if bin_index >= num_bins:
                overflow.append(intensity ** intensity_scaling)
                continue
            vector[bin_index] = max(vector[bin_index], intensity ** intensity_scaling)
    return vector, overflow


def dreams_bin_peak_list(peak_list: np.ndarray, max_mz: float, bin_step: float) -> np.ndarray:
    """Port of DreaMS `dreams/utils/spectra.py::_bin_peak_list` (numba there, numpy here).

    Upstream:
        bin_ub = bin_step
        num_bins = int(max_mz / bin_step)
        binned_pl = []
        for _ in range(num_bins):
            bin_intensity = 0.
            for i, mz in enumerate(mzs):
                if bin_ub - bin_step <= mz < bin_ub:
                    bin_intensity += intensities[i]
            binned_pl.append(bin_intensity)
            bin_ub += bin_step

    The upper bounds are the running sum step + step + ... (np.add.accumulate reproduces that
    sequence exactly), each bin adds its peaks in m/z order starting from 0.0. Differences from
    the issue's definition: the range always starts at 0; num_bins truncates (no rounding guard)
    and peaks in a partial last width are dropped, not clamped; bin edges drift with the running
    sum, so an m/z within that drift of a multiple of the step (e.g. 100.1 with step 0.1) can land
    in a different bin than floor(m/z / W).
    """
    mzs, intensities = peak_list
    num_bins = int(max_mz / bin_step)
    ub = np.add.accumulate(np.full(num_bins, bin_step, dtype=np.float64))
    lb = ub - bin_step
    binned = np.zeros(num_bins, dtype=np.float64)
    for i, mz in enumerate(mzs):
        binned[(lb <= mz) & (mz < ub)] += intensities[i]
    return binned


def check_sparse_matches_dense(t_dense: pa.Table, t_sparse: pa.Table, bins: int) -> None:
    assert "binned" not in t_sparse.column_names and "bin_index" not in t_dense.column_names
    for name, item in (("bin_index", pa.uint32()), ("bin_value", pa.float32())):
        typ = t_sparse.schema.field(name).type
        assert pa.types.is_list(typ) and typ.value_type == item, (name, typ)
    d = dense(t_dense, bins)
    np.testing.assert_array_equal(t_sparse["spectrum_id"].to_numpy(),
                                  t_dense["spectrum_id"].to_numpy())
    for row, (idx, val) in enumerate(zip(lists(t_sparse["bin_index"]),
                                         lists(t_sparse["bin_value"]))):
        assert idx.dtype == np.uint32 and val.dtype == F32
        assert np.all(np.diff(idx.astype(np.int64)) > 0), "bin_index strictly ascending"
        nz = np.flatnonzero(d[row])
        np.testing.assert_array_equal(idx, nz.astype(np.uint32), err_msg=f"row {row}")
        assert np.array_equal(bits(val), bits(d[row][nz])), f"row {row}"


# --------------------------------------------------------------------------------------
# Binning: tests

def ms2ds_flags(output: str, bin_range: str = "10:1000") -> tuple[str, ...]:
    return ("--normalize", "max", "--bin-width", "0.1", "--bin-range", bin_range,
            "--bin-aggregation", "max", "--bin-scale", "0.5", "--bin-output", output)


# (range flag, MIN, bins by the issue, bins by ms2deepscore). 10..1000 is ms2deepscore's default
# (SettingsMS2Deepscore: min_mz 10, max_mz 1000, mz_bin_width 0.1, intensity_scaling 0.5) and
# both agree on 9900 bins; 0.7..1000 exercises the rounding guard on purpose: there only the
# first 9992 bins are compared with ms2deepscore and the last one with the issue's definition.
MS2DS_CASES = [("10:1000", 10.0, 9900, 9900), ("0.7:1000", 0.7, 9993, 9992)]


@pytest.mark.parametrize("bin_range,mn,bins,ref_bins", MS2DS_CASES)
def test_binning_ms2deepscore(gems, convert, bin_range, mn, bins, ref_bins):
    g, _ = gems
    assert guarded_bins(mn, 1000.0, 0.1) == bins and int((1000 - mn) / 0.1) == ref_bins
    td, _ = convert(*ms2ds_flags("dense", bin_range))
    ts, _ = convert(*ms2ds_flags("sparse", bin_range))
    d = dense(td, bins)
    overflowed = 0
    for row, (mz, it) in enumerate(zip(lists(td["mz"]), lists(td["intensity"]))):
        # Binned from the written (normalised, float32) intensities, widened to float64.
        it64 = it.astype(np.float64)
        ref, overflow = ms2deepscore_vectorize_spectrum(mz, it64, mn, 1000, 0.1, 0.5)
        assert len(ref) == ref_bins
        # ms2deepscore's max of float64 values, rounded once: the same as msms's.
        assert np.array_equal(bits(d[row, :ref_bins]), bits(ref.astype(F32))), (
            f"spectrum {row}: first differing bins "
            f"{np.flatnonzero(d[row, :ref_bins] != ref.astype(F32))[:5]}, mz {mz.tolist()}"
        )
        if bins > ref_bins:
            # The extra bin exists only under the issue's definition: it holds the peaks that
            # ms2deepscore would write out of bounds.
            last = F32(max(overflow)) if overflow else F32(0.0)
            assert d[row, ref_bins] == last, (row, overflow, d[row, ref_bins])
        else:
            assert not overflow, (row, overflow)
        overflowed += bool(overflow)
        np.testing.assert_array_equal(bits(d[row]),
                                      bits(bin_issue(mz, it, mn, 1000.0, 0.1, "max", 0.5)))
    if bins > ref_bins:
        assert overflowed >= 5, "the input must put peaks into [999.9, 1000)"
    check_sparse_matches_dense(td, ts, bins)


def test_binning_matchms_to_ms2deepscore_pipeline(gems, convert):
    """matchms normalize_intensities -> ms2deepscore vectorize_spectrum, end to end on raw data.

    ms2deepscore bins matchms's float64 intensities; msms bins its float32-rounded written
    intensities. sqrt of the two differs by at most ~1 float32 ulp, hence rtol=1e-6 here (the
    exact comparison on the same intensities is test_binning_ms2deepscore).
    """
    Spectrum, normalize_intensities, _ = matchms_modules()
    g, _ = gems
    td, _ = convert(*ms2ds_flags("dense"))
    d = dense(td, 9900)
    for row, i in enumerate(td["spectrum_id"].to_numpy()):
        mz, it = g.peaks(int(i))
        s = normalize_intensities(matchms_spectrum(Spectrum, mz, it, g.precursor_mz[i]))
        ref, _ = ms2deepscore_vectorize_spectrum(s.peaks.mz, s.peaks.intensities, 10, 1000, 0.1, 0.5)
        np.testing.assert_allclose(d[row], ref, rtol=1e-6, atol=0, err_msg=str(i))


@pytest.mark.parametrize("width", ["1", "0.05"])
def test_binning_dreams(gems, convert, width):
    g, _ = gems
    w = float(width)
    flags = ("--normalize", "max", "--bin-width", width, "--bin-range", "0:1000",
             "--bin-aggregation", "sum", "--bin-scale", "1")
    td, _ = convert(*flags, "--bin-output", "dense")
    ts, _ = convert(*flags, "--bin-output", "sparse")
    bins = guarded_bins(0.0, 1000.0, w)
    assert bins == int(1000.0 / w)  # no rounding-guard difference for these settings
    d = dense(td, bins)
    compared = 0
    for row, (mz, it) in enumerate(zip(lists(td["mz"]), lists(td["intensity"]))):
        it64 = it.astype(np.float64)
        issue = bin_issue(mz, it, 0.0, 1000.0, w, "sum", 1.0)
        assert np.array_equal(bits(d[row]), bits(issue)), row
        ref = dreams_bin_peak_list(np.array([mz, it64]), 1000.0, w).astype(F32)
        if np.array_equal(ref, issue):
            # Same peaks per bin, added in the same order in float64, rounded once.
            assert np.array_equal(bits(d[row]), bits(ref)), row
            compared += 1
        else:
            # Only DreaMS's drifting running-sum edges may differ from floor(m/z / W): the
            # spectrum must hold an m/z on a multiple of the step (the SPECIAL_MZ values).
            on_edge = np.abs(mz / w - np.rint(mz / w)) < 1e-6
            assert on_edge.any(), (row, mz.tolist())
    assert compared >= len(td) // 2, (compared, len(td))  # a third hold SPECIAL_MZ
    check_sparse_matches_dense(td, ts, bins)


def test_binning_dreams_edge_drift_follows_issue(tmp_path):
    """m/z exactly on multiples of the step: only the issue's definition is asserted.

    DreaMS's running-sum edges drift from k * 0.1, so it bins some of these m/z one bin off;
    msms bins floor(m/z / W) as the issue defines (computed in float64).
    """
    mz = np.array([0.3, 100.1, 250.7, 300.3, 512.9, 700.7, 999.9])
    it = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
    g = Gems(np.zeros((1, 2, SLOTS)), np.array([len(mz)]), np.array([800.0], F32),
             np.array([1], np.int8), np.array([1e-5], F32))
    g.spectrum[0, 0, :len(mz)], g.spectrum[0, 1, :len(mz)] = mz, it
    h5 = tmp_path / "grid.hdf5"
    write_gems(h5, g)
    t, _ = build_shards(h5, tmp_path / "out", "--normalize", "none", "--bin-width", "0.1",
                        "--bin-range", "0:1000", "--bin-aggregation", "sum", "--bin-scale", "1",
                        "--bin-output", "sparse")
    [idx], [val] = lists(t["bin_index"]), lists(t["bin_value"])
    want = np.array([math.floor(m / 0.1) for m in mz], dtype=np.uint32)
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(val, it.astype(F32))
    ref = dreams_bin_peak_list(np.array([mz, it]), 1000.0, 0.1)
    assert not np.array_equal(np.flatnonzero(ref), want.astype(np.int64)), (
        "expected DreaMS's drifting edges to disagree on at least one of these m/z")


@pytest.mark.parametrize("agg,scale", [("sum", "2"), ("max", "0.5")])
def test_binning_issue_definition_partial_width(gems, convert, agg, scale):
    """0.7-wide bins over 10..1000: 1414 whole widths, [999.8, 1000) clamped into the last bin.

    Also after top-k and sqrt normalisation: binning uses the written intensities.
    """
    g, _ = gems
    flags = ("--max-peaks", "20", "--normalize", "sqrt", "--bin-width", "0.7", "--bin-range",
             "10:1000", "--bin-aggregation", agg, "--bin-scale", scale)
    td, _ = convert(*flags, "--bin-output", "dense")
    ts, _ = convert(*flags, "--bin-output", "sparse")
    bins = guarded_bins(10.0, 1000.0, 0.7)
    assert bins == 1414
    d = dense(td, bins)
    clamped = 0
    for row, (mz, it) in enumerate(zip(lists(td["mz"]), lists(td["intensity"]))):
        want = bin_issue(mz, it, 10.0, 1000.0, 0.7, agg, float(scale))
        assert np.array_equal(bits(d[row]), bits(want)), (
            f"row {row}: bins {np.flatnonzero(d[row] != want)[:5]} mz {mz.tolist()}")
        clamped += int(np.any((mz >= 10.0 + 1414 * 0.7) & (mz < 1000.0)))
    assert clamped >= 5
    check_sparse_matches_dense(td, ts, bins)


def test_binning_clamps_rounding_overflow(tmp_path):
    """(MAX - MIN) / W is exactly 33330 for 0.03 over 0..999.9, yet the largest m/z below 999.9
    gives floor((m/z - MIN) / W) = 33330: it must be clamped into bin 33329, and 999.9 dropped."""
    top = float(np.nextafter(999.9, 0.0))
    assert (999.9 - 0.0) / 0.03 == 33330.0 and math.floor(top / 0.03) == 33330
    mz = np.array([0.0 + 1e-3, 0.03, 500.0, 999.87, top, 999.9])
    it = np.array([1.0, 2.0, 3.0, 5.0, 7.0, 11.0])
    g = Gems(np.zeros((1, 2, SLOTS)), np.array([len(mz)]), np.array([800.0], F32),
             np.array([1], np.int8), np.array([1e-5], F32))
    g.spectrum[0, 0, :len(mz)], g.spectrum[0, 1, :len(mz)] = mz, it
    h5 = tmp_path / "clamp.hdf5"
    write_gems(h5, g)
    flags = ("--normalize", "none", "--bin-width", "0.03", "--bin-range", "0:999.9",
             "--bin-aggregation", "sum", "--bin-scale", "1")
    td, _ = build_shards(h5, tmp_path / "dense", *flags, "--bin-output", "dense")
    ts, _ = build_shards(h5, tmp_path / "sparse", *flags, "--bin-output", "sparse")
    want = bin_issue(mz, it, 0.0, 999.9, 0.03, "sum", 1.0)
    assert len(want) == 33330 and want[33329] == F32(5.0 + 7.0)
    d = dense(td, 33330)
    np.testing.assert_array_equal(bits(d[0]), bits(want))
    check_sparse_matches_dense(td, ts, 33330)


# --------------------------------------------------------------------------------------
# GeMS quality format (DreaMS dformats.py)


class DataFormat:
    """Port of DreaMS `dformats.DataFormat.val_spec` (MS/MS checks; no MS level in GeMS)."""

    def val_spec(self, spec, prec_mz, tbxic_stdev=None, charge=None, mslevel=None) -> bool:
        if spec.shape[0] != 2:
            raise ValueError("The input array should have 2 rows (m/z and intensity).")
        if mslevel is not None and mslevel > self.max_ms_level:
            return False
        if prec_mz is not None and prec_mz > self.max_prec_mz:
            return False
        if tbxic_stdev is not None and tbxic_stdev > self.max_tbxic_stdev:
            return False
        if charge is not None and (charge < self.min_charge or charge > self.max_charge):
            return False
        if spec.shape[1] < self.min_peaks_n or spec.shape[1] > self.max_peaks_n:
            return False
        if su_max_mz(spec) > self.max_mz:
            return False
        spec = su_to_rel_intensity(spec)
        if su_intens_amplitude(spec) < self.min_intensity_ampl:
            return False
        if su_num_high_peaks(spec, self.high_intensity_thld) < self.min_peaks_n:
            return False
        return True


class DataFormatA(DataFormat):
    max_ms_level, min_peaks_n, max_peaks_n = 2, 3, 128
    min_charge, max_charge = 1, 1
    min_intensity_ampl, max_tbxic_stdev = 20.0, 1e-4
    max_prec_mz, max_mz, high_intensity_thld = 1000.0, 1000.0, 0.1


class DataFormatB(DataFormat):
    max_ms_level, min_peaks_n, max_peaks_n = 2, 3, 128
    min_charge, max_charge = 1, 1
    min_intensity_ampl, max_tbxic_stdev = 20.0, 1e-3
    max_prec_mz, max_mz, high_intensity_thld = 1500.0, 1500.0, 0.1


class DataFormatC(DataFormat):
    max_ms_level, min_peaks_n, max_peaks_n = 10, 3, 128
    min_charge, max_charge = -1, 1
    min_intensity_ampl, max_tbxic_stdev = 18.0, 1e-3
    max_prec_mz, max_mz, high_intensity_thld = 1500.0, 1500.0, 0.1


FORMATS = {"A": DataFormatA(), "B": DataFormatB(), "C": DataFormatC()}


def su_to_rel_intensity(peak_list):  # dreams/utils/spectra.py
    return np.array([peak_list[0], peak_list[1] / peak_list[1].max()])


def su_intens_amplitude(peak_list):
    return max(peak_list[1]) / min(peak_list[1])


def su_num_high_peaks(peak_list, high_intensity_thld):
    return (peak_list[1] > high_intensity_thld).sum()


def su_max_mz(peak_list):
    return peak_list[0].max()


def assign_dformat(spec, **kwargs) -> str:
    for e in ["A", "B", "C"]:
        if FORMATS[e].val_spec(spec, **kwargs):
            return e
    return "-"


def gems_kwargs(g: Gems, i: int, charge: bool = True, accuracy: bool = True) -> dict:
    """GeMS columns as DreaMS's arguments.

    `instrument accuracy est.` is what DreaMS's merge_lcmsms_hdf5s stores from the file's
    'TBXICs median stdev' (the value assign_dformat gets as tbxic_stdev), rounded to float32.
    It is compared as a Python float (float64), as DreaMS compared the float64 original; under
    NumPy 2's NEP 50 a np.float32 scalar would instead compare in float32 and float32(1e-3)
    would pass the 1e-3 limit. Precursor m/z is float32 in GeMS, compared the same way.
    """
    return dict(
        prec_mz=float(g.precursor_mz[i]),
        tbxic_stdev=float(g.accuracy[i]) if accuracy else None,
        charge=int(g.charge[i]) if charge else None,
    )


def reference_formats(g: Gems, charge: bool = True, accuracy: bool = True) -> list[str | None]:
    out = []
    for i in range(g.n):
        mz, it = g.peaks(i)
        spec = np.array([mz, it])
        kw = gems_kwargs(g, i, charge, accuracy)
        f = assign_dformat(spec, **kw)
        # A ⊂ B ⊂ C in DreaMS's thresholds: meeting one format means meeting every looser one.
        met = [FORMATS[e].val_spec(spec, **kw) for e in "ABC"]
        assert met == sorted(met), (i, met)
        out.append(None if f == "-" else f)
    return out


def test_dreams_formats_are_nested():
    a, b, c = DataFormatA, DataFormatB, DataFormatC
    for strict, loose in ((a, b), (b, c)):
        assert strict.max_prec_mz <= loose.max_prec_mz and strict.max_mz <= loose.max_mz
        assert strict.max_tbxic_stdev <= loose.max_tbxic_stdev
        assert strict.max_ms_level <= loose.max_ms_level
        assert loose.min_charge <= strict.min_charge <= strict.max_charge <= loose.max_charge
        assert strict.min_intensity_ampl >= loose.min_intensity_ampl
        assert strict.min_peaks_n >= loose.min_peaks_n and strict.max_peaks_n <= loose.max_peaks_n
        assert strict.high_intensity_thld >= loose.high_intensity_thld


def test_gems_format_column(gems, convert):
    g, _ = gems
    t, m = convert("--normalize", "max")
    assert t.schema.field("gems_format").type == pa.string()
    want = reference_formats(g)
    got = t["gems_format"].to_pylist()
    assert len(got) == g.n
    diff = [(i, want[i], got[i]) for i in range(g.n) if want[i] != got[i]]
    assert not diff, f"(spectrum, DreaMS, msms): {diff[:10]}"
    counts = {f: want.count(f) for f in ("A", "B", "C", None)}
    assert all(v >= 10 for v in counts.values()), counts
    assert m["counts"]["rejected"].get("quality_format", 0) == 0


@pytest.mark.parametrize("fmt", ["A", "B", "C"])
def test_quality_format_filter(gems, convert, fmt):
    g, _ = gems
    t, m = convert("--normalize", "max", "--quality-format", fmt)
    allowed = {"A": {"A"}, "B": {"A", "B"}, "C": {"A", "B", "C"}}[fmt]
    want = reference_formats(g)
    keep = [i for i in range(g.n) if want[i] in allowed]
    # Kept: exactly the spectra meeting `fmt` (by nesting, those classified `fmt` or stricter).
    assert keep == [i for i in range(g.n)
                    if FORMATS[fmt].val_spec(np.array(g.peaks(i)), **gems_kwargs(g, i))]
    np.testing.assert_array_equal(t["spectrum_id"].to_numpy(), np.array(keep, dtype=np.uint64))
    assert t["gems_format"].to_pylist() == [want[i] for i in keep]
    c = m["counts"]
    assert c["rejected"]["quality_format"] == g.n - len(keep)
    assert c["written"] == len(keep) and c["read"] == g.n
    assert c["rejected_total"] == g.n - len(keep)


def test_gems_format_without_charge_and_accuracy(tmp_path):
    """Absent datasets give None in DreaMS's val_spec, which skips those checks."""
    g = make_gems(seed=77, n=200)
    h5 = tmp_path / "no_charge.hdf5"
    write_gems(h5, g, charge=False, accuracy=False)
    t, _ = build_shards(h5, tmp_path / "out")
    want = reference_formats(g, charge=False, accuracy=False)
    got = t["gems_format"].to_pylist()
    diff = [(i, want[i], got[i]) for i in range(g.n) if want[i] != got[i]]
    assert not diff, f"(spectrum, DreaMS, msms): {diff[:10]}"
    assert want.count("A") >= 5
