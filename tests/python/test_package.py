"""The Python package (issue 15): `pip install .` gives the `msms` command and `msms_shards`.

Against real roots written by the `msms` binary under test (a split root with small row
groups, the same input with `--max-peaks`, an h5py-written input with planted intensity ties):

- `msms_shards.open`: splits in manifest order, lengths, the manifest, errors naming the root;
- `batches`: every value against the shards read by pyarrow (top-k against an independent
  reference and against `msms build-shards --max-peaks`, ties included), padding, dtypes;
  exactly once over every combination of 1-3 ranks x 0-3 DataLoader workers, shuffled or not;
  the same batches for the same (seed, epoch), other ones for another epoch or seed;
- presets against verbatim copies of DreaMS's, MassSpecGym's and MS2DeepScore's code;
- `verify` with `msms verify`'s messages on an intact and a damaged root;
- the package's `msms` command: the same output and exit codes as the cargo-built binary.

The torch dataset is tested under a real DataLoader in tests/python_torch/ (its own venv:
torch is 5 GB; see scripts/test-torch.sh).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from msms_cli import clean_env, run_msms

import msms_shards

N_SPECTRA = 3000
SPLITS = "train=0.8,val=0.1,test=0.1"
TOP_K = 20
ROW_GROUP = 97


def split_table(root: Path, split: str) -> pa.Table:
    m = json.loads((root / "_manifest.json").read_text())
    paths = [root / s["path"] for s in m["shards"] if s["split"] == split]
    return pa.concat_tables([pq.read_table(p) for p in paths])


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """(split root, the same input with --max-peaks TOP_K, tmp dir)."""
    tmp = tmp_path_factory.mktemp("package")
    h5 = tmp / "in.hdf5"
    run_msms("synth", h5, "--spectra", N_SPECTRA, "--faults", "0.02", "--seed", 15)
    root = tmp / "root"
    run_msms("build-shards", "--input-hdf5", h5, "--output-root", root, "-q", "--splits", SPLITS,
             "--seed", 4, "--shard-size", "150KB", "--row-group-size", ROW_GROUP)
    capped = tmp / "capped"
    run_msms("build-shards", "--input-hdf5", h5, "--output-root", capped, "-q", "--max-peaks", TOP_K)
    return root, capped, tmp


def everything(split, **kw) -> dict:
    """All batches of `split` concatenated."""
    parts = list(split.batches(**kw))
    assert parts, kw
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def reference_top_k(mz: np.ndarray, it: np.ndarray, k: int):
    """Independent of the package: sort by (-intensity, m/z), keep k, back to m/z order."""
    keep = sorted(range(len(mz)), key=lambda i: (-float(it[i]), float(mz[i])))[:k]
    keep.sort(key=lambda i: float(mz[i]))
    return mz[keep], it[keep]


# --------------------------------------------------------------------------------------
# open


def test_open(roots):
    root, _, tmp = roots
    ds = msms_shards.open(root)
    manifest = json.loads((root / "_manifest.json").read_text())
    assert ds.manifest == manifest
    assert ds.splits == ["train", "val", "test"] == list(manifest["splits"])
    for s in ds.splits:
        assert len(ds[s]) == manifest["splits"][s]["rows"] > 0
        assert len(ds[s].row_groups) >= manifest["splits"][s]["rows"] // ROW_GROUP
        assert sum(g.rows for g in ds[s].row_groups) == len(ds[s])
    assert sum(len(ds[s]) for s in ds) == manifest["counts"]["written"]
    with pytest.raises(KeyError, match="no split 'validation'.*train, val, test"):
        ds["validation"]
    with pytest.raises(FileNotFoundError, match="no _manifest.json"):
        msms_shards.open(root / "train")
    assert msms_shards.__version__ == manifest["tool_version"]


# --------------------------------------------------------------------------------------
# batches: values


@pytest.mark.parametrize("split", ["train", "test"])
def test_batches_hold_the_shards_values(roots, split):
    root = roots[0]
    t = split_table(root, split)
    got = everything(msms_shards.open(root)[split], batch_size=50, max_peaks=TOP_K,
                     columns=["rt", "name", "charge"])
    n = t.num_rows
    assert got["spectrum_id"].dtype == np.uint64
    assert got["spectrum_id"].tolist() == t["spectrum_id"].to_pylist()
    assert got["mz"].shape == got["intensity"].shape == (n, TOP_K)
    assert got["mz"].dtype == got["intensity"].dtype == np.float32
    assert got["num_peaks"].dtype == np.int32 and got["precursor_mz"].dtype == np.float32
    assert np.array_equal(got["precursor_mz"], t["precursor_mz"].to_numpy().astype(np.float32))
    assert got["rt"].tolist() == t["rt"].to_pylist()
    assert got["name"].tolist() == t["name"].to_pylist()
    assert got["charge"].tolist() == t["charge"].to_pylist()
    truncated = 0
    for i, (mz, it) in enumerate(zip(t["mz"].to_pylist(), t["intensity"].to_pylist())):
        mz, it = np.array(mz), np.array(it, dtype=np.float32)
        k = got["num_peaks"][i]
        assert k == min(len(mz), TOP_K)
        want_mz, want_it = reference_top_k(mz, it, TOP_K)
        assert np.array_equal(got["mz"][i, :k], want_mz.astype(np.float32)), i
        assert np.array_equal(got["intensity"][i, :k], want_it), i
        assert not got["mz"][i, k:].any() and not got["intensity"][i, k:].any()
        truncated += len(mz) > TOP_K
    assert truncated > n // 4, "the input should exercise top-k"


def test_batch_sizes_and_drop_last(roots):
    split = msms_shards.open(roots[0])["train"]
    sizes = [len(b["spectrum_id"]) for b in split.batches(64)]
    assert sizes[:-1] == [64] * (len(sizes) - 1) and 0 < sizes[-1] <= 64
    assert sum(sizes) == len(split)
    full = [len(b["spectrum_id"]) for b in split.batches(64, shuffle=True, drop_last=True)]
    assert set(full) == {64} and len(full) == len(split) // 64


def test_top_k_equals_msms_max_peaks(roots):
    """The loader's top-k over the full peak lists = build-shards --max-peaks TOP_K."""
    root, capped, _ = roots
    ct = split_table(capped, "train")
    by_id = {sid: i for i, sid in enumerate(ct["spectrum_id"].to_pylist())}
    cmz, cit = ct["mz"].to_pylist(), ct["intensity"].to_pylist()
    checked = 0
    ds = msms_shards.open(root)
    for s in ds.splits:
        got = everything(ds[s], batch_size=100, max_peaks=TOP_K)
        for sid, mz, it, k in zip(got["spectrum_id"], got["mz"], got["intensity"], got["num_peaks"]):
            i = by_id[int(sid)]
            assert np.array_equal(mz[:k], np.array(cmz[i], dtype=np.float32)), sid
            assert np.array_equal(it[:k], np.array(cit[i], dtype=np.float32)), sid
            checked += 1
    assert checked == len(by_id)


def test_top_k_ties_match_msms(roots):
    """Planted equal intensities at the cut: kept by lower m/z, as build-shards --max-peaks."""
    tmp = roots[2]
    rng = np.random.default_rng(7)
    n, k = 200, 6
    spectrum = np.zeros((n, 2, 128))
    for i in range(n):
        peaks = 8 + i % 40
        spectrum[i, 0, :peaks] = np.sort(rng.choice(np.arange(50.0, 900.0, 0.5), peaks, replace=False))
        levels = rng.choice([1.0, 2.0, 4.0, 8.0], peaks)  # many exact ties
        spectrum[i, 1, :peaks] = levels
    h5 = tmp / "ties.hdf5"
    with h5py.File(h5, "w") as f:
        f.create_dataset("spectrum", data=spectrum, chunks=(64, 2, 128), compression="gzip")
        f.create_dataset("precursor_mz", data=np.full(n, 950.0))
    whole, cut = tmp / "ties_whole", tmp / "ties_cut"
    run_msms("build-shards", "--input-hdf5", h5, "--output-root", whole, "-q")
    run_msms("build-shards", "--input-hdf5", h5, "--output-root", cut, "-q", "--max-peaks", k)
    got = everything(msms_shards.open(whole)["train"], batch_size=32, max_peaks=k)
    want = split_table(cut, "train")
    assert got["spectrum_id"].tolist() == want["spectrum_id"].to_pylist()
    ties = 0
    for i, (mz, it) in enumerate(zip(want["mz"].to_pylist(), want["intensity"].to_pylist())):
        assert np.array_equal(got["mz"][i, :k], np.array(mz, dtype=np.float32)), i
        assert np.array_equal(got["intensity"][i, :k], np.array(it, dtype=np.float32)), i
        full = spectrum[i, 1, : 8 + i % 40]
        ties += np.sort(full)[::-1][k - 1] == np.sort(full)[::-1][k]
    assert ties > n // 2, "most spectra should have a tie at the cut"


# --------------------------------------------------------------------------------------
# batches: division of work and shuffling


@pytest.mark.parametrize("shuffle", [False, True])
def test_exactly_once_over_ranks_and_workers(roots, shuffle):
    split = msms_shards.open(roots[0])["train"]
    want = sorted(split_table(roots[0], "train")["spectrum_id"].to_pylist())
    for world in (1, 2, 3):
        for workers in (0, 1, 2, 3):
            per_reader = []
            for rank in range(world):
                for w in range(max(workers, 1)):
                    ids = []
                    for b in split.batches(37, shuffle=shuffle, seed=5, epoch=2, rank=rank,
                                           world_size=world, worker_id=w,
                                           num_workers=max(workers, 1), max_peaks=8):
                        ids += b["spectrum_id"].tolist()
                    per_reader.append(ids)
            got = [i for ids in per_reader for i in ids]
            assert len(got) == len(want), (world, workers)
            assert sorted(got) == want, (world, workers)
            assert all(per_reader), f"a reader got no rows: {world} ranks x {workers} workers"


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_get_equal_batches_with_drop_last(roots, world):
    """DDP needs every rank to take the same number of steps: with drop_last they do, for
    any worker count, and num_batches says how many; without it, ranks differ by at most
    one batch and every spectrum comes once."""
    split = msms_shards.open(roots[0])["val"]  # few row groups: uneven by row group
    for workers in (0, 1, 2, 3):
        for drop_last in (True, False):
            counts = []
            for rank in range(world):
                n = 0
                for w in range(max(workers, 1)):
                    n += sum(1 for _ in split.batches(16, shuffle=True, seed=3, rank=rank,
                                                      world_size=world, worker_id=w,
                                                      num_workers=max(workers, 1),
                                                      drop_last=drop_last, max_peaks=4))
                counts.append(n)
                assert n == split.num_batches(16, rank, world, workers, drop_last), (rank, workers)
            if drop_last:
                assert len(set(counts)) == 1, (workers, counts)
            else:
                assert max(counts) - min(counts) <= 1, (workers, counts)


def test_nullable_columns_keep_one_dtype_and_their_nulls(roots):
    """`charge` is null for the spectra of an input without it: float64 with NaN in every
    batch, never a 0 that looks like a charge."""
    tmp = roots[2]
    a, b = tmp / "with_charge.hdf5", tmp / "without_charge.hdf5"
    run_msms("synth", a, "--spectra", 700, "--seed", 1)
    run_msms("synth", b, "--spectra", 700, "--seed", 2)
    with h5py.File(b, "a") as f:
        del f["charge"]
    root = tmp / "mixed"
    run_msms("build-shards", "--input-hdf5", a, b, "--output-root", root, "-q",
             "--row-group-size", 100)
    t = split_table(root, "train")
    want = t["charge"].to_pylist()
    assert None in want and any(v is not None for v in want)
    split = msms_shards.open(root)["train"]
    for shuffle in (False, True):
        got_ids, got = [], []
        for batch in split.batches(64, shuffle=shuffle, columns=["charge"], max_peaks=4):
            assert batch["charge"].dtype == np.float64
            got_ids += batch["spectrum_id"].tolist()
            got += batch["charge"].tolist()
        by_id = dict(zip(got_ids, got))
        for sid, v in zip(t["spectrum_id"].to_pylist(), want):
            if v is None:
                assert np.isnan(by_id[sid]), sid
            else:
                assert by_id[sid] == v, sid


def test_shuffle_is_deterministic_per_seed_and_epoch(roots):
    split = msms_shards.open(roots[0])["train"]

    def run(seed, epoch):
        return [b for b in split.batches(40, shuffle=True, seed=seed, epoch=epoch, max_peaks=16,
                                         shuffle_buffer=500)]

    a, again = run(1, 0), run(1, 0)
    assert len(a) == len(again)
    for x, y in zip(a, again):
        assert x.keys() == y.keys()
        for key in x:
            assert np.array_equal(x[key], y[key]), key
    ids = lambda bs: np.concatenate([b["spectrum_id"] for b in bs]).tolist()  # noqa: E731
    plain = ids(list(split.batches(40, max_peaks=16)))
    assert plain == sorted(plain)
    assert sorted(ids(a)) == plain and ids(a) != plain
    assert ids(run(1, 1)) != ids(a) and sorted(ids(run(1, 1))) == plain
    assert ids(run(2, 0)) != ids(a)
    # Rows move within the buffer, not only whole row groups: a batch mixes row groups.
    first = a[0]["spectrum_id"].astype(np.int64)
    assert np.ptp(first) > ROW_GROUP


def test_arguments_are_checked(roots):
    split = msms_shards.open(roots[0])["val"]
    for kw, msg in [
        (dict(batch_size=0), "batch_size must be at least 1"),
        (dict(batch_size=8, rank=2, world_size=2), r"rank must be in 0\.\.1"),
        (dict(batch_size=8, preset="spec2vec"), "unknown preset 'spec2vec'"),
        (dict(batch_size=8, preset="dreams", columns=["spectrum"]), "adds the key 'spectrum'"),
    ]:
        with pytest.raises(ValueError, match=msg):
            split.batches(**kw)  # raises when called, not at the first batch


# --------------------------------------------------------------------------------------
# presets, against verbatim copies of each project's code


def dreams_reference(mz, it, prec, n):
    """dreams/utils/spectra.py trim_peak_list, pad_peak_list, to_rel_intensity,
    prepend_precursor_peak, in SpectrumPreprocessor's order (dreams/utils/data.py)."""
    pl = np.array([mz, it])
    idx = np.argsort(pl[1])[-n:]
    pl = pl[:, np.sort(idx)]
    pad = n - pl.shape[-1]
    if pad > 0:
        pl = np.pad(pl, [(0, 0), (0, pad)], mode="constant", constant_values=0)
    pl = np.array([pl[0], pl[1] / pl[1].max()])
    spec = np.vstack([np.array([prec, 1.1]), pl.T])
    return spec.astype(np.float32)


def massspecgym_reference(mzs, intensities, max_mz=1005, bin_width=1):
    """matchms select_by_mz(10, max_mz) + normalize_intensities, then
    massspecgym/data/transforms.py SpecBinner._bin_mass_spectrum."""
    cond = np.logical_and(10 <= mzs, mzs <= max_mz)
    mzs, intensities = mzs[cond], intensities[cond]
    if len(mzs):
        intensities = intensities / np.max(intensities)
    num_bins = int(np.ceil(max_mz / bin_width))
    bin_indices = np.floor(mzs / bin_width).astype(int)
    valid_indices = bin_indices[mzs <= max_mz]
    valid_intensities = intensities[mzs <= max_mz]
    valid_indices = np.clip(valid_indices, 0, num_bins - 1)
    binned = np.zeros(num_bins)
    np.add.at(binned, valid_indices, valid_intensities)
    with np.errstate(invalid="ignore"):
        binned /= np.max(binned)
    return binned


def ms2deepscore_reference(mz_array, intensities_array, min_mz=10, max_mz=1000, mz_bin_width=0.1,
                           intensity_scaling=0.5):
    """matchms normalize_intensities, then ms2deepscore/tensorize_spectra.py
    vectorize_spectrum (without numba)."""
    intensities_array = intensities_array / np.max(intensities_array)
    num_bins = int((max_mz - min_mz) / mz_bin_width)
    vector = np.zeros((num_bins))
    for mz, intensity in zip(mz_array, intensities_array):
        if min_mz <= mz < max_mz:
            bin_index = int((mz - min_mz) / mz_bin_width)
            vector[bin_index] = max(vector[bin_index], intensity**intensity_scaling)
    return vector


def test_presets_match_their_definitions(roots):
    root = roots[0]
    t = split_table(root, "val")
    split = msms_shards.open(root)["val"]
    mzs = [np.array(m) for m in t["mz"].to_pylist()]
    its = [np.array(i, dtype=np.float32).astype(np.float64) for i in t["intensity"].to_pylist()]
    precs = t["precursor_mz"].to_pylist()

    n = 30
    got = everything(split, batch_size=64, max_peaks=n, preset="dreams")["spectrum"]
    assert got.shape == (t.num_rows, n + 1, 2) and got.dtype == np.float32
    compared = 0
    for i, (mz, it, prec) in enumerate(zip(mzs, its, precs)):
        srt = np.sort(it)[::-1]
        if len(it) > n and srt[n - 1] == srt[n]:
            continue  # a tie at the cut: DreaMS's unstable argsort decides; we keep the lower m/z
        assert np.array_equal(got[i], dreams_reference(mz, it, prec, n)), i
        compared += 1
    assert compared > 0.9 * t.num_rows

    got = everything(split, batch_size=64, preset="massspecgym")["binned"]
    assert got.shape == (t.num_rows, 1005) and got.dtype == np.float32
    for i, (mz, it) in enumerate(zip(mzs, its)):
        want = massspecgym_reference(mz, it)
        if np.isnan(want).all():
            assert not got[i].any(), i
        else:
            np.testing.assert_allclose(got[i], want, rtol=2e-7, atol=1e-7, err_msg=str(i))

    got = everything(split, batch_size=64, preset="ms2deepscore")["binned"]
    assert got.shape == (t.num_rows, 9900) and got.dtype == np.float32
    for i, (mz, it) in enumerate(zip(mzs, its)):
        assert np.array_equal(got[i], ms2deepscore_reference(mz, it).astype(np.float32)), i


def test_massspecgym_edges_and_ms2deepscore_float_quirk():
    """Edge m/z values through the preset functions and the references directly."""
    from msms_shards import presets

    mz = np.array([9.99, 10.0, 10.1, 10.7, 500.5, 999.99, 1000.0, 1004.5, 1005.0, 1005.01])
    it = np.array([1.0, 0.5, 0.25, 0.75, 0.3, 0.2, 0.9, 0.4, 0.6, 0.8], dtype=np.float32)
    counts = np.array([len(mz)])
    msg = presets.massspecgym(mz, it, counts, np.zeros(1, np.float32), 128)["binned"][0]
    np.testing.assert_allclose(msg, massspecgym_reference(mz, it.astype(np.float64)), rtol=2e-7)
    assert msg[1004] > 0 and msg[9] == 0  # 1005.0 in the last bin; 9.99 dropped
    m2 = presets.ms2deepscore(mz, it, counts, np.zeros(1, np.float32), 128)["binned"][0]
    assert np.array_equal(m2, ms2deepscore_reference(mz, it.astype(np.float64)).astype(np.float32))
    assert m2[0] > 0  # 10.1 falls in bin 0, as int((10.1 - 10) / 0.1) says


# --------------------------------------------------------------------------------------
# verify and the msms command


def test_verify_has_msms_verifys_messages(roots):
    root, _, tmp = roots
    ds = msms_shards.open(root)
    r = ds.verify()
    assert r.ok and bool(r) and r.problems == []
    cli = run_msms("verify", root)
    assert r.summary == cli.stdout.strip()
    assert ds.verify(full=True).summary.endswith("(every spectrum checked), " + r.summary.split(", ")[-1])

    damaged = tmp / "damaged"
    shutil.copytree(root, damaged)
    victim = damaged / ds["val"].shards[0]["path"]
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    r = msms_shards.open(damaged).verify()
    cli = run_msms("verify", damaged, code=1)
    assert not r.ok and len(r.problems) >= 1
    assert str(r) + "\n" == cli.stdout
    assert any(ds["val"].shards[0]["path"] in p for p in r.problems)
    # The manifest gone after the dataset was opened: msms verify's exit-2 message.
    opened = msms_shards.open(damaged)
    (damaged / "_manifest.json").unlink()
    with pytest.raises(OSError, match="msms verify: .*_manifest.json"):
        opened.verify()


def package_msms() -> Path:
    """The `msms` console script installed with the package beside this interpreter."""
    p = Path(sys.executable).parent / "msms"
    assert p.is_file(), f"{p}: the package's msms command is not installed (pip install .)"
    return p


@pytest.mark.parametrize("args, code", [
    (["--version"], 0),
    (["verify", "{root}"], 0),
    (["verify", "{root}/missing"], 2),
    (["build-shards", "--no-such-flag"], 2),
    (["status", "{root}"], 0),
])
def test_package_msms_is_the_binary(roots, args, code):
    root = roots[0]
    args = [a.format(root=root) for a in args]
    want = run_msms(*args, code=code)
    got = subprocess.run([str(package_msms()), *args], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, env=clean_env(), timeout=120)
    assert got.returncode == code, got.stderr
    assert got.stdout == want.stdout
    assert got.stderr == want.stderr


def test_package_msms_converts_to_the_same_digest(roots):
    root, _, tmp = roots
    out = tmp / "via_package"
    r = subprocess.run([str(package_msms()), "build-shards", "--input-hdf5", str(tmp / "in.hdf5"),
                        "--output-root", str(out), "-q", "--splits", SPLITS, "--seed", "4",
                        "--shard-size", "150KB", "--row-group-size", str(ROW_GROUP)],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, env=clean_env(),
                       timeout=300)
    assert r.returncode == 0, r.stderr
    a = json.loads((out / "_manifest.json").read_text())
    b = json.loads((root / "_manifest.json").read_text())
    assert a["dataset_digest"] == b["dataset_digest"]
