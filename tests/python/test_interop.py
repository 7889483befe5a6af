"""Python interoperability of `msms build-shards` (issue 2).

GeMS-like HDF5 files are written with h5py the way the DreaMS project writes them (flat
per-spectrum datasets, `spectrum` (N, 2, 128) float64 right-padded with zeros, h5py's
automatic chunking, gzip without shuffle or no compression); the shards are read back with
pyarrow and compared exactly against a numpy oracle.

Run: bash scripts/setup-python.sh && .venv/bin/python -m pytest tests/python -q
The binary is $MSMS_BIN, else <repo>/target/debug/msms (build it with `cargo build`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from msms_cli import run_msms

SLOTS = 128
N_SPECTRA = 2000
REASONS = (
    "empty",
    "non_finite",
    "padding_gap",
    "non_positive_mz",
    "non_positive_intensity",
    "duplicate_mz",
    "unsorted_mz",
    "bad_precursor",
    "too_few_peaks",
    "quality_format",
    # Not a validation reason: spectra dropped by --dedup exact (0 without it).
    "duplicate",
)
# Planted faults: reason -> how many spectra get it.
PLANTED = {
    "empty": 3,
    "non_finite": 4,
    "padding_gap": 3,
    "non_positive_mz": 2,
    "non_positive_intensity": 2,
    "duplicate_mz": 3,
    "unsorted_mz": 3,
    "bad_precursor": 4,
}
NAMES = [
    "GeMS_A/20170719_QC_01.mzML",
    "GeMS_A/20170719_QC_02.mzML",
    "MSV000081981/Ω-plasma_é_ü.mzXML",
    "MSV000080000/日本語_サンプル.mzML",
    "short.mzML",
]
STORAGE = {
    "gzip": dict(chunks=True, compression="gzip", compression_opts=4, shuffle=False),
    "plain": dict(chunks=True),
}


# --------------------------------------------------------------------------------------
# The binary


def build_shards(h5: Path, out: Path, *extra: str) -> dict:
    run_msms("build-shards", "--input-hdf5", h5, "--output-root", out, "-q", *extra)
    manifest = json.loads((out / "_manifest.json").read_text())
    return manifest


# --------------------------------------------------------------------------------------
# GeMS-like input and its oracle


@dataclass
class Gems:
    """The arrays written to a file, and which rows were planted with which fault."""

    spectrum: np.ndarray  # (N, 2, SLOTS) float64
    precursor_mz: np.ndarray  # float32
    rt: np.ndarray  # float32
    charge: np.ndarray  # int8
    accuracy: np.ndarray  # float32
    lsh: np.ndarray  # int64
    name: list[str]
    planted: dict[int, str]
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.precursor_mz)


def peak_counts(rng: np.random.Generator, n: int) -> np.ndarray:
    """Many small spectra, a share at the 128 cap, the rest spread out."""
    small = np.clip(np.rint(rng.lognormal(2.6, 0.8, n)), 1, SLOTS)
    spread = rng.integers(1, SLOTS + 1, n)
    kind = rng.random(n)
    counts = np.where(kind < 0.6, small, np.where(kind < 0.8, spread, SLOTS))
    counts[:3] = [1, 2, SLOTS]  # edge cases always present, at fixed rows
    return counts.astype(np.int64)


def make_gems(seed: int, n: int = N_SPECTRA, embedding: int = 0) -> Gems:
    rng = np.random.default_rng(seed)
    spectrum = np.zeros((n, 2, SLOTS), dtype=np.float64)
    counts = peak_counts(rng, n)
    for i, k in enumerate(counts):
        while True:
            mz = np.sort(rng.uniform(40.0, 1200.0, k))
            if k == 1 or np.all(np.diff(mz) > 0):
                break
        spectrum[i, 0, :k] = mz
        spectrum[i, 1, :k] = rng.lognormal(8.0, 2.0, k)
    precursor = rng.uniform(100.0, 1500.0, n).astype(np.float32)
    rt = rng.uniform(0.0, 7200.0, n).astype(np.float32)
    charge = rng.choice(np.array([-2, -1, 0, 1, 1, 1, 2, 2, 3], dtype=np.int8), n)
    accuracy = rng.choice(np.array([-1.0, 2.5e-6, 1e-5, 0.01], dtype=np.float32), n)
    lsh = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, n, dtype=np.int64, endpoint=True)
    name = [NAMES[j] for j in rng.integers(0, len(NAMES), n)]

    # Plant faults in distinct rows with at least 4 peaks (rows 0-2 stay valid edge cases).
    pool = np.flatnonzero(counts >= 4)
    pool = pool[pool >= 3]
    rows = rng.choice(pool, sum(PLANTED.values()), replace=False)
    planted: dict[int, str] = {}
    it = iter(rows.tolist())
    for reason, k in PLANTED.items():
        for v in range(k):
            r = next(it)
            planted[r] = reason
            m, s = spectrum[r, 0], spectrum[r, 1]
            npk = int(counts[r])
            j = 1 + v % (npk - 2)  # an inner peak: 1 <= j <= npk - 2
            if reason == "empty":
                spectrum[r] = 0.0
            elif reason == "non_finite":
                [lambda: s.__setitem__(j, np.nan), lambda: m.__setitem__(npk - 1, np.inf),
                 lambda: s.__setitem__(0, -np.inf), lambda: m.__setitem__(j, np.nan)][v % 4]()
            elif reason == "padding_gap":
                m[j] = s[j] = 0.0
            elif reason == "non_positive_mz":
                m[0] = [-m[0], 0.0][v % 2]  # (0, I>0) is a zero m/z, not padding
            elif reason == "non_positive_intensity":
                s[j] = [0.0, -s[j]][v % 2]
            elif reason == "duplicate_mz":
                m[j + 1] = m[j]
            elif reason == "unsorted_mz":
                m[j], m[j + 1] = m[j + 1], m[j]
            elif reason == "bad_precursor":
                precursor[r] = [np.nan, 0.0, -250.0, np.inf][v % 4]
    g = Gems(spectrum, precursor, rt, charge, accuracy, lsh, name, planted)
    if embedding:
        g.extra["DreaMS_embedding"] = rng.standard_normal((n, embedding)).astype(np.float32)
        g.extra["scan_number"] = rng.integers(1, 100_000, n).astype(np.int32)
    return g


def classify(mz: np.ndarray, it: np.ndarray, prec: float) -> tuple[str | None, int]:
    """Independent oracle of the validation rules (issue 2): (first reason or None, peaks)."""
    real = ~((mz == 0) & (it == 0))
    n = int(np.flatnonzero(real)[-1]) + 1 if real.any() else 0
    mz, it = mz[:n], it[:n]
    d = np.diff(mz)
    checks = [
        ("empty", n == 0),
        ("non_finite", not (np.isfinite(mz).all() and np.isfinite(it).all())),
        ("padding_gap", bool(((mz == 0) & (it == 0)).any())),
        ("non_positive_mz", bool((mz <= 0).any())),
        ("non_positive_intensity", bool((it <= 0).any())),
        ("duplicate_mz", bool((d == 0).any())),
        ("unsorted_mz", bool((d < 0).any())),
        ("bad_precursor", not (np.isfinite(prec) and prec > 0)),
        ("too_few_peaks", n < 1),
    ]
    return next((r for r, hit in checks if hit), None), n


def write_gems(path: Path, g: Gems, storage: dict, metadata_group: bool = False) -> None:
    """Write like DreaMS: flat top-level datasets, one row per spectrum."""
    with h5py.File(path, "w") as f:
        f.create_dataset("spectrum", data=g.spectrum, dtype=np.float64, **storage)
        f.create_dataset("precursor_mz", data=g.precursor_mz, dtype=np.float32, **storage)
        f.create_dataset("RT", data=g.rt, dtype=np.float32, **storage)
        f.create_dataset("charge", data=g.charge, dtype=np.int8, **storage)
        f.create_dataset("instrument accuracy est.", data=g.accuracy, dtype=np.float32, **storage)
        f.create_dataset("lsh", data=g.lsh, dtype=np.int64, **storage)
        f.create_dataset("name", data=g.name, dtype=h5py.string_dtype(), **storage)
        for k, v in g.extra.items():
            f.create_dataset(k, data=v, **storage)
        if metadata_group:
            meta = f.create_group("metadata")
            # Per-file arrays (not per spectrum); one has length N on purpose.
            meta.create_dataset("file_names", data=NAMES, dtype=h5py.string_dtype())
            meta.create_dataset("spectra_per_file", data=np.arange(g.n, dtype=np.int64))
            meta.attrs["source"] = "interop test"


# --------------------------------------------------------------------------------------
# Fixtures: one input file per storage variant, converted once with defaults and once into
# several small shards.


@dataclass
class Run:
    gems: Gems
    h5: Path
    out: Path
    manifest: dict


@pytest.fixture(scope="module", params=sorted(STORAGE))
def variant(request, tmp_path_factory) -> tuple[str, Gems, Path]:
    storage = request.param
    d = tmp_path_factory.mktemp(f"gems_{storage}")
    g = make_gems(seed=20240 + len(storage))
    h5 = d / f"GeMS_like_{storage}.hdf5"
    write_gems(h5, g, STORAGE[storage])
    return storage, g, h5


@pytest.fixture(scope="module")
def default_run(variant) -> Run:
    storage, g, h5 = variant
    out = h5.parent / "out_default"
    return Run(g, h5, out, build_shards(h5, out))


@pytest.fixture(scope="module")
def small_run(variant) -> Run:
    storage, g, h5 = variant
    out = h5.parent / "out_small"
    return Run(g, h5, out, build_shards(h5, out, "--shard-size", "200kB", "--batch-size", "100", "--row-group-size", "100"))


def read_all(out: Path) -> pa.Table:
    t = ds.dataset(out / "train", format="parquet").to_table()
    return t.sort_by("spectrum_id")


def expected_valid(g: Gems) -> tuple[np.ndarray, np.ndarray]:
    """(row indices of valid spectra, their peak counts), from the oracle."""
    rows, npk = [], []
    for i in range(g.n):
        reason, n = classify(g.spectrum[i, 0], g.spectrum[i, 1], float(g.precursor_mz[i]))
        if reason is None:
            rows.append(i)
            npk.append(n)
    return np.array(rows, dtype=np.int64), np.array(npk, dtype=np.int64)


def bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a.view({8: np.uint64, 4: np.uint32, 2: np.uint16, 1: np.uint8}[a.dtype.itemsize])


def flat_list(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    arr = col.combine_chunks()
    offsets = arr.offsets.to_numpy()
    values = arr.values.to_numpy(zero_copy_only=False)
    return offsets - offsets[0], values[offsets[0] : offsets[-1]]


# --------------------------------------------------------------------------------------
# Tests


def test_oracle_agrees_with_planted_faults():
    g = make_gems(seed=7, n=600)
    got = {}
    for i in range(g.n):
        reason, _ = classify(g.spectrum[i, 0], g.spectrum[i, 1], float(g.precursor_mz[i]))
        if reason is not None:
            got[i] = reason
    assert got == g.planted
    assert sorted(set(got.values())) == sorted(PLANTED)


def test_input_is_written_like_dreams(variant):
    storage, g, h5 = variant
    with h5py.File(h5, "r") as f:
        s = f["spectrum"]
        assert s.shape == (g.n, 2, SLOTS) and s.dtype == np.float64
        assert s.chunks is not None, "h5py automatic chunking expected"
        assert s.compression == ("gzip" if storage == "gzip" else None)
        assert not s.shuffle
        assert f["name"].dtype == h5py.string_dtype()
        assert f["charge"].dtype == np.int8 and f["lsh"].dtype == np.int64
        assert f["instrument accuracy est."].dtype == np.float32
        np.testing.assert_array_equal(bits(s[...]), bits(g.spectrum))


def test_values_exact(default_run):
    g = default_run.gems
    t = read_all(default_run.out)
    rows, npk = expected_valid(g)
    assert len(rows) == g.n - sum(PLANTED.values())

    ids = t["spectrum_id"].to_numpy()
    np.testing.assert_array_equal(ids, rows.astype(np.uint64))
    assert len(np.unique(ids)) == len(ids), "each valid spectrum exactly once"
    assert not set(g.planted) & set(ids.tolist()), "rejected spectra must be absent"
    np.testing.assert_array_equal(t["source_row"].to_numpy(), rows.astype(np.uint64))
    np.testing.assert_array_equal(t["source_index"].to_numpy(), np.zeros(len(rows), np.uint16))
    np.testing.assert_array_equal(t["num_peaks"].to_numpy(), npk.astype(np.uint16))

    offsets, mz = flat_list(t["mz"])
    ioffsets, inten = flat_list(t["intensity"])
    np.testing.assert_array_equal(offsets, np.concatenate([[0], np.cumsum(npk)]))
    np.testing.assert_array_equal(ioffsets, offsets)
    assert mz.dtype == np.float64 and inten.dtype == np.float32
    exp_mz = np.concatenate([g.spectrum[r, 0, :n] for r, n in zip(rows, npk)])
    exp_int = np.concatenate(
        [(g.spectrum[r, 1, :n] / g.spectrum[r, 1, :n].max()).astype(np.float32) for r, n in zip(rows, npk)]
    )
    np.testing.assert_array_equal(bits(mz), bits(exp_mz))  # bit-for-bit
    np.testing.assert_array_equal(bits(inten), bits(exp_int))
    # The base peak of every spectrum is exactly 1.0.
    maxima = np.maximum.reduceat(inten, offsets[:-1])
    assert np.all(maxima == np.float32(1.0))

    prec = t["precursor_mz"].to_numpy()
    assert prec.dtype == np.float64
    np.testing.assert_array_equal(bits(prec), bits(g.precursor_mz[rows].astype(np.float64)))
    np.testing.assert_array_equal(bits(t["rt"].to_numpy()), bits(g.rt[rows]))
    np.testing.assert_array_equal(t["charge"].to_numpy(), g.charge[rows])
    np.testing.assert_array_equal(
        bits(t["instrument_accuracy_est"].to_numpy()), bits(g.accuracy[rows])
    )
    np.testing.assert_array_equal(t["lsh"].to_numpy(), g.lsh[rows])
    assert t["name"].to_pylist() == [g.name[r] for r in rows]
    for c in t.column_names:
        # gems_format is null for spectra meeting no GeMS quality format.
        if c != "gems_format":
            assert t[c].null_count == 0, f"column {c} has nulls"


def test_rejection_counts(default_run):
    m = default_run.manifest
    g = default_run.gems
    c = m["counts"]
    want = {r: PLANTED.get(r, 0) for r in REASONS}
    assert c["rejected"] == want
    assert c["rejected_total"] == sum(PLANTED.values())
    assert c["read"] == g.n
    assert c["written"] == g.n - sum(PLANTED.values())
    assert sum(s["rows"] for s in m["shards"]) == c["written"]
    [inp] = m["inputs"]
    assert inp["path"] == str(default_run.h5)
    assert inp["bytes"] == default_run.h5.stat().st_size
    assert inp["spectra"] == g.n


def check_shard_files(run: Run) -> list[Path]:
    m = run.manifest
    assert m["format"] == "msms-shards"
    files = sorted((run.out / "train").iterdir())
    assert [f.name for f in files] == [f"shard-{i:05d}.parquet" for i in range(len(files))]
    assert [s["path"] for s in m["shards"]] == [f"train/{f.name}" for f in files]
    digest = hashlib.sha256()
    prev_last = -1
    for s, f in zip(m["shards"], files):
        data = f.read_bytes()
        assert s["split"] == "train"
        assert s["sha256"] == hashlib.sha256(data).hexdigest(), f.name
        assert s["bytes"] == len(data)
        meta = pq.ParquetFile(f).metadata
        assert s["rows"] == meta.num_rows
        ids = pq.read_table(f, columns=["spectrum_id"])["spectrum_id"].to_numpy()
        assert s["first_spectrum_id"] == ids[0] and s["last_spectrum_id"] == ids[-1]
        assert np.all(np.diff(ids.astype(np.int64)) > 0), "ids ascending within a shard"
        assert ids[0] > prev_last, "ids ascending across shards, in shard order"
        prev_last = int(ids[-1])
        digest.update(f"{s['path']} {s['sha256']}\n".encode())
    assert m["dataset_digest"] == "sha256:" + digest.hexdigest()
    assert not list(run.out.rglob("*.tmp")), "no temporary files left behind"
    return files


def test_manifest_sha256(default_run):
    files = check_shard_files(default_run)
    assert len(files) == 1  # ~1 MB of data, default shard size 1 GB


def test_schema_and_footer_metadata(default_run):
    f = default_run.out / "train" / "shard-00000.parquet"
    schema = pq.read_schema(f)
    expect = [
        ("spectrum_id", pa.uint64()),
        ("source_index", pa.uint16()),
        ("source_row", pa.uint64()),
        ("name", None),
        ("precursor_mz", pa.float64()),
        ("rt", pa.float32()),
        ("charge", pa.int8()),
        ("instrument_accuracy_est", pa.float32()),
        ("lsh", pa.int64()),
        ("num_peaks", pa.uint16()),
        ("mz", None),
        ("intensity", None),
        ("gems_format", pa.string()),
    ]
    assert schema.names == [n for n, _ in expect]
    for n, t in expect:
        if t is not None:
            assert schema.field(n).type == t, n
    name_t = schema.field("name").type
    assert pa.types.is_dictionary(name_t) and name_t.value_type == pa.string(), name_t
    for col, item in (("mz", pa.float64()), ("intensity", pa.float32())):
        t = schema.field(col).type
        assert pa.types.is_list(t) and t.value_type == item, (col, t)
    assert ds.dataset(default_run.out / "train", format="parquet").schema.equals(schema)

    kv = pq.ParquetFile(f).metadata.metadata or {}
    kv = {k.decode(): v.decode() for k, v in kv.items()}
    m = default_run.manifest
    assert kv["msms_shards.format_version"] == str(m["format_version"])
    assert kv["msms_shards.tool_version"] == m["tool_version"]
    assert kv["msms_shards.config_hash"] == m["config_hash"]
    assert m["config_hash"].startswith("sha256:") and len(m["config_hash"]) == 7 + 64
    assert [c["name"] for c in m["schema"]] == schema.names
    # Parquet-level: zstd compression, as the contract says.
    md = pq.ParquetFile(f).metadata
    assert {md.row_group(0).column(i).compression for i in range(md.num_columns)} == {"ZSTD"}


def test_small_shards(default_run, small_run):
    files = check_shard_files(small_run)
    assert len(files) >= 3, f"expected several shards at 200kB, got {len(files)}"
    for f in files:
        assert f.stat().st_size <= 200_000, f"{f.name} exceeds --shard-size"
        md = pq.ParquetFile(f).metadata
        assert md.num_row_groups >= 1
        assert all(md.row_group(i).num_rows <= 100 for i in range(md.num_row_groups))
    # Same rows and values as the single-shard run; same counts and config apart from sizes.
    assert read_all(small_run.out).equals(read_all(default_run.out))
    assert small_run.manifest["counts"] == default_run.manifest["counts"]


def test_deterministic(default_run, tmp_path):
    out = tmp_path / "again"
    m = build_shards(default_run.h5, out, "--num-workers", "1")
    assert [s["sha256"] for s in m["shards"]] == [s["sha256"] for s in default_run.manifest["shards"]]
    assert m["dataset_digest"] == default_run.manifest["dataset_digest"]


def test_passthrough_and_metadata_group(tmp_path):
    g = make_gems(seed=99, n=700, embedding=16)
    h5 = tmp_path / "with_embedding.hdf5"
    write_gems(h5, g, STORAGE["gzip"], metadata_group=True)
    out = tmp_path / "out"
    m = build_shards(h5, out)
    t = read_all(out)
    rows, _ = expected_valid(g)
    np.testing.assert_array_equal(t["spectrum_id"].to_numpy(), rows.astype(np.uint64))

    names = t.column_names
    assert names[:13][-4:] == ["num_peaks", "mz", "intensity", "gems_format"]
    assert set(names[13:]) == {"DreaMS_embedding", "scan_number"}, names
    assert not any("metadata" in n or "file_names" in n or "spectra_per_file" in n for n in names)

    emb_t = t.schema.field("DreaMS_embedding").type
    assert pa.types.is_fixed_size_list(emb_t), emb_t
    assert emb_t.list_size == 16 and emb_t.value_type == pa.float32()
    emb = t["DreaMS_embedding"].combine_chunks()
    got = emb.values.to_numpy().reshape(-1, 16)
    np.testing.assert_array_equal(bits(got), bits(g.extra["DreaMS_embedding"][rows]))

    assert t.schema.field("scan_number").type == pa.int32()
    np.testing.assert_array_equal(t["scan_number"].to_numpy(), g.extra["scan_number"][rows])
    assert m["counts"]["rejected"] == {r: PLANTED.get(r, 0) for r in REASONS}
    assert [c["name"] for c in m["schema"]] == names


def test_two_inputs_one_sequence(tmp_path):
    """Several inputs are numbered as one sequence of spectra, in the order given."""
    a, b = make_gems(seed=11, n=300), make_gems(seed=12, n=400)
    ha, hb = tmp_path / "a.hdf5", tmp_path / "b.hdf5"
    write_gems(ha, a, STORAGE["gzip"])
    write_gems(hb, b, STORAGE["plain"])
    out = tmp_path / "out"
    run_msms("build-shards", "--input-hdf5", ha, hb, "--output-root", out, "-q")
    m = json.loads((out / "_manifest.json").read_text())
    t = read_all(out)
    ra, _ = expected_valid(a)
    rb, _ = expected_valid(b)
    np.testing.assert_array_equal(
        t["spectrum_id"].to_numpy(), np.concatenate([ra, rb + a.n]).astype(np.uint64)
    )
    np.testing.assert_array_equal(
        t["source_index"].to_numpy(), np.repeat([0, 1], [len(ra), len(rb)]).astype(np.uint16)
    )
    np.testing.assert_array_equal(t["source_row"].to_numpy(), np.concatenate([ra, rb]).astype(np.uint64))
    np.testing.assert_array_equal(t["lsh"].to_numpy(), np.concatenate([a.lsh[ra], b.lsh[rb]]))
    assert t["name"].to_pylist() == [a.name[r] for r in ra] + [b.name[r] for r in rb]
    assert [(i["path"], i["spectra"], i["first_spectrum_id"]) for i in m["inputs"]] == [
        (str(ha), a.n, 0),
        (str(hb), b.n, a.n),
    ]
    assert m["counts"]["read"] == a.n + b.n
    assert m["counts"]["rejected"] == {r: 2 * PLANTED.get(r, 0) for r in REASONS}


def test_quiet_prints_nothing(tmp_path):
    g = make_gems(seed=3, n=50)
    h5 = tmp_path / "q.hdf5"
    write_gems(h5, g, STORAGE["plain"])
    r = run_msms("build-shards", "--input-hdf5", h5, "--output-root", tmp_path / "out", "-q")
    assert (tmp_path / "out" / "_manifest.json").is_file()
    assert r.stdout == "" and r.stderr == "", f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"


def test_unfiltered_partial_edge_chunks(tmp_path):
    """h5py/libhdf5's H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS stores edge chunks unfiltered and
    records it in the layout, not in the chunks' filter masks: the native decoder must not
    apply the filters to them (it reads such datasets through libhdf5, with a notice), and
    the output must equal libhdf5's."""
    import ctypes
    import glob

    libs = glob.glob(str(Path(h5py.__file__).parent.parent / "h5py.libs" / "libhdf5-*.so*"))
    if not libs:
        pytest.skip("h5py's bundled libhdf5 not found (h5py built against a system library)")
    lib = ctypes.CDLL(libs[0])
    lib.H5Pset_chunk_opts.argtypes = [ctypes.c_int64, ctypes.c_uint]
    dont_filter_partial = 0x0002
    n = 100
    rng = np.random.default_rng(1)
    spec = np.zeros((n, 2, 128))
    for r in range(n):
        k = 5 + r % 20
        spec[r, 0, :k] = np.sort(rng.uniform(50, 1000, k))
        spec[r, 1, :k] = rng.uniform(1, 100, k)
    prec = np.linspace(100.0, 900.0, n)
    h5 = tmp_path / "partial.hdf5"
    with h5py.File(h5, "w") as f:
        for name, data, chunk in [("spectrum", spec, (64, 2, 128)), ("precursor_mz", prec, (64,))]:
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_chunk(chunk)
            dcpl.set_shuffle()
            dcpl.set_deflate(4)
            assert lib.H5Pset_chunk_opts(dcpl.id, dont_filter_partial) >= 0
            d = h5py.h5d.create(
                f.id, name.encode(), h5py.h5t.py_create(data.dtype), h5py.h5s.create_simple(data.shape), dcpl=dcpl
            )
            d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(data))
    native, ref = tmp_path / "native", tmp_path / "ref"
    r = run_msms("build-shards", "--input-hdf5", h5, "--output-root", native)
    assert "partial edge chunks are stored unfiltered" in r.stderr, r.stderr
    build_shards(h5, ref, "--decode", "libhdf5")
    m = json.loads((native / "_manifest.json").read_text())
    assert m["counts"]["read"] == n and m["counts"]["written"] == n
    for shard in m["shards"]:
        assert (native / shard["path"]).read_bytes() == (ref / shard["path"]).read_bytes()
    t = read_all(native)
    np.testing.assert_array_equal(t["precursor_mz"].to_numpy(), prec)
    for r_ in (0, 63, 64, 99):
        k = 5 + r_ % 20
        assert t["mz"][r_].as_py() == list(spec[r_, 0, :k])
