"""Independent oracles for every `msms synth` layout (issue 17, point 3).

The Rust integration tests write their inputs with `msms synth` (`synth::write`) and predict
the output with the same module's `synth::spectrum_at`, so a bug shared by the synthetic writer
and the reader would pass them. Here each synth layout has an h5py-written **twin**: the same
dataset names, dtypes, orientation, storage and filters, but the arrays are built in numpy from
a seed of their own and written by h5py (whose filter pipeline order, shuffle → deflate →
fletcher32, even differs from synth's). Each twin is converted with `msms build-shards`
(`--decode native` and `--decode libhdf5`), the shards are read back with pyarrow, and every
value is compared with the numpy arrays under the README's output contract: unpadded peaks in
m/z order, m/z widened exactly to float64, intensities divided by the spectrum's maximum in
float64 and rounded once to float32, precursor m/z widened to float64, the other columns as
stored, rows in input order with `spectrum_id` = row.

The same twins are the oracle for `msms inspect --json`: chunk counts, stored bytes, raw bytes,
ratios and filter pipelines come from h5py's own view of the file (`get_num_chunks`,
`get_chunk_info`, `get_storage_size`, the dataset creation property list), not from the
product's chunk index.

Run: MSMS_BIN=target/debug/msms .venv/bin/python -m pytest tests/python/test_twins.py -rs -q
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from msms_cli import run_msms

SLOTS = 128
EMBEDDING_DIM = 1024
N = 1300  # two full row chunks of 512 / one of 1024, and a partial edge chunk
# Row chunk length of the twins: 1024 like synth's gems layout; 512 per peak slot for the
# auto-chunk twin, so that its grid has several chunks along the rows as well.
ROW_CHUNK = {"rows": 1024, "auto": 512}
# Names of the vlen `name` dataset: non-ASCII and long ones included.
VLEN_NAMES = [
    "synth_run_0000.mzML",
    "MSV000081981/Ω-plasma_é_ü.mzXML",
    "MSV000080000/日本語_サンプル.mzML",
    "a" * 200 + ".mzML",
    "x",
]
# Names of the fixed-length S32 `file_name` dataset: ASCII, one exactly 32 bytes (no NUL
# terminator), one of 1 byte.
FIXED_NAMES = [b"synth_run_0000.mzML", b"GeMS_C1/QC_2017_07_19_0000.mzXML", b"q", b"run_7.mzML"]
assert len(FIXED_NAMES[1]) == 32


# --------------------------------------------------------------------------------------
# Layouts: one twin per `msms synth --layout` name


@dataclass(frozen=True)
class Layout:
    """How a twin is stored; mirrors `SynthLayout` in src/commands/synth.rs."""

    chunking: str = "rows"  # rows | auto | contiguous
    filters: str = "gzip"  # gzip | none | shuffle
    float32: bool = False
    high_form: bool = False
    strings: bool = False
    embedding: bool = False


LAYOUTS = {
    "gems": Layout(),
    "auto-chunk": Layout(chunking="auto", filters="none"),
    "contiguous": Layout(chunking="contiguous", filters="none"),
    "shuffle": Layout(filters="shuffle"),
    "float32": Layout(float32=True),
    "high-form": Layout(high_form=True),
    "strings": Layout(strings=True),
    "embedding": Layout(embedding=True),
    # The README's second sample: every alternative at once.
    "high-form,float32,strings,shuffle": Layout(filters="shuffle", float32=True, high_form=True, strings=True),
}


def storage(l: Layout, shape: tuple[int, ...], vlen: bool) -> dict:
    """h5py keyword arguments for a dataset of `shape` under layout `l`."""
    if l.chunking == "contiguous":
        return dict(chunks=None)
    if l.chunking == "rows":
        chunks = (min(shape[0], ROW_CHUNK["rows"]),) + shape[1:]
    else:  # per-peak-slot chunks (c, 1, 1), like h5py's automatic chunking of GeMS files
        chunks = (min(shape[0], ROW_CHUNK["auto"]),) + (1,) * (len(shape) - 1)
    kw = dict(chunks=chunks)
    if l.filters in ("gzip", "shuffle"):
        kw.update(compression="gzip", compression_opts=4)
    if l.filters == "shuffle" and not vlen:  # HDF5 refuses both on variable-length strings
        kw.update(shuffle=True, fletcher32=True)
    return kw


# --------------------------------------------------------------------------------------
# The arrays (numpy only) and the twin file (h5py only)


@dataclass
class Twin:
    """What was written, as numpy arrays, in (N, 2, SLOTS) orientation whatever the layout."""

    layout: Layout
    counts: np.ndarray  # peaks per spectrum
    peaks: np.ndarray  # (N, 2, SLOTS), float64 or float32 as stored, zero-padded
    precursor: np.ndarray  # float32
    rt: np.ndarray  # float32
    charge: np.ndarray  # int8
    accuracy: np.ndarray  # float32
    lsh: np.ndarray  # int64, or S64 hex strings
    name: list[str]
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def make_twin(l: Layout, seed: int, n: int = N) -> Twin:
    """Valid spectra only: strictly ascending positive m/z, positive intensities."""
    rng = np.random.default_rng(seed)
    fdt = np.float32 if l.float32 else np.float64
    counts = np.where(rng.random(n) < 0.15, SLOTS, 1 + (rng.random(n) ** 2 * (SLOTS - 1)).astype(np.int64))
    counts[:4] = [1, 2, SLOTS, SLOTS - 1]  # edge cases at fixed rows
    peaks = np.zeros((n, 2, SLOTS), dtype=fdt)
    for i, k in enumerate(counts):
        # Gaps of at least 0.01 keep m/z strictly ascending in float32 too (ulp < 0.001 here).
        mz = 40.0 + rng.uniform(0.0, 30.0) + np.cumsum(rng.uniform(0.01, 12.0, k))
        peaks[i, 0, :k] = mz.astype(fdt)
        peaks[i, 1, :k] = (10.0 ** rng.uniform(0.0, 6.0, k)).astype(fdt)
        assert np.all(np.diff(peaks[i, 0, :k]) > 0)
    last_mz = peaks[np.arange(n), 0, counts - 1].astype(np.float64)
    precursor = (last_mz + rng.uniform(1.0, 100.0, n)).astype(np.float32)
    rt = rng.uniform(0.0, 3600.0, n).astype(np.float32)
    charge = rng.integers(-2, 4, n, dtype=np.int8)
    accuracy = rng.choice(np.array([-1.0, 1e-5, 2.5e-6], dtype=np.float32), n)
    if l.strings:
        lsh = np.array([rng.bytes(32).hex().encode() for _ in range(n)], dtype="S64")
        name = [FIXED_NAMES[j].decode() for j in rng.integers(0, len(FIXED_NAMES), n)]
    else:
        lsh = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, n, dtype=np.int64, endpoint=True)
        name = [VLEN_NAMES[j] for j in rng.integers(0, len(VLEN_NAMES), n)]
    t = Twin(l, counts, peaks, precursor, rt, charge, accuracy, lsh, name)
    if l.embedding:
        t.extra["DreaMS_embedding"] = rng.standard_normal((n, EMBEDDING_DIM)).astype(np.float32)
        t.extra["file_id"] = rng.integers(0, 50, n).astype(np.int32)
        t.extra["scan_number"] = rng.integers(1, 100_000, n).astype(np.int32)
    return t


def write_twin(path: Path, t: Twin) -> None:
    """Write `t` with h5py under the dataset names synth uses for its layout."""
    l = t.layout
    with h5py.File(path, "w") as f:

        def put(name: str, data, dtype=None, vlen: bool = False) -> None:
            arr = np.asarray(data) if not vlen else data
            shape = (len(data),) + (np.asarray(data).shape[1:] if not vlen else ())
            f.create_dataset(name, data=arr, dtype=dtype, **storage(l, shape, vlen))

        if l.high_form:
            put("spectra", np.ascontiguousarray(t.peaks.transpose(0, 2, 1)))  # (N, SLOTS, 2)
            put("precursor mz", t.precursor)
        else:
            put("spectrum", t.peaks)
            put("precursor_mz", t.precursor)
        put("RT", t.rt)
        put("charge", t.charge)
        put("instrument accuracy est.", t.accuracy)
        put("lsh", t.lsh)
        if l.strings:
            put("file_name", np.array([s.encode() for s in t.name], dtype="S32"))
        else:
            put("name", t.name, dtype=h5py.string_dtype(), vlen=True)
        for k, v in t.extra.items():
            put(k, v)
        if l.embedding:
            f.create_group("metadata").create_dataset(
                "file_names", data=["a.mzML", "b.mzML", "c.mzML"], dtype=h5py.string_dtype()
            )


# --------------------------------------------------------------------------------------
# Helpers


def bits(a: np.ndarray) -> np.ndarray:
    """The bit patterns of `a`, so that comparisons are exact (NaN, -0.0)."""
    a = np.ascontiguousarray(a)
    return a.view({8: np.uint64, 4: np.uint32, 2: np.uint16, 1: np.uint8}[a.dtype.itemsize])


def flat_list(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(offsets from 0, values) of a list column."""
    arr = col.combine_chunks()
    offsets = arr.offsets.to_numpy()
    values = arr.values.to_numpy(zero_copy_only=False)
    return offsets - offsets[0], values[offsets[0] : offsets[-1]]


def read_shards(out: Path) -> pa.Table:
    return ds.dataset(out / "train", format="parquet").to_table()


def filters_of(dset: h5py.Dataset) -> list[tuple[int, list[int]]]:
    """(filter id, client data) in pipeline order, from the dataset creation property list."""
    p = dset.id.get_create_plist()
    out = []
    for i in range(p.get_nfilters()):
        code, _flags, values, _name = p.get_filter(i)
        out.append((int(code), [int(v) for v in values]))
    return out


# --------------------------------------------------------------------------------------
# Fixtures: one twin per layout, converted with each decode path


@dataclass
class Converted:
    twin: Twin
    h5: Path
    out: dict[str, Path]  # decode -> output root
    manifest: dict[str, dict]


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def converted(request, tmp_path_factory) -> Converted:
    name = request.param
    l = LAYOUTS[name]
    d = tmp_path_factory.mktemp("twin_" + name.replace(",", "_"))
    t = make_twin(l, seed=17_000 + sorted(LAYOUTS).index(name))
    h5 = d / "twin.hdf5"
    write_twin(h5, t)
    outs, manifests = {}, {}
    for decode in ("native", "libhdf5"):
        out = d / f"out_{decode}"
        run_msms("build-shards", "--input-hdf5", h5, "--output-root", out, "--decode", decode, "-q")
        outs[decode] = out
        manifests[decode] = json.loads((out / "_manifest.json").read_text())
    return Converted(t, h5, outs, manifests)


# --------------------------------------------------------------------------------------
# The twins are twins of synth's layouts


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_twin_has_the_structure_of_the_synth_layout(name, tmp_path):
    """Same dataset names, dtypes, shapes past N, storage kind and filter set as the file
    `msms synth --layout NAME` writes, so each twin stands for its layout."""
    l = LAYOUTS[name]
    synth = tmp_path / "synth.hdf5"
    run_msms("synth", synth, "--spectra", 300, "--layout", name, "--seed", 3)
    twin = tmp_path / "twin.hdf5"
    write_twin(twin, make_twin(l, seed=3, n=300))

    def describe(path: Path) -> dict:
        with h5py.File(path, "r") as f:
            out = {}
            for k, dset in f.items():
                if isinstance(dset, h5py.Group):
                    out[k] = "group"
                    continue
                chunked = dset.chunks is not None
                out[k] = (
                    str(dset.dtype) if dset.dtype.kind != "O" else "vlen-str",
                    dset.shape[1:],
                    chunked,
                    dset.chunks[1:] if chunked else None,
                    sorted(code for code, _ in filters_of(dset)),
                )
            return out

    assert describe(twin) == describe(synth)


# --------------------------------------------------------------------------------------
# Values, checked one by one against the numpy arrays


@pytest.mark.parametrize("decode", ["native", "libhdf5"])
def test_values_exact(converted, decode):
    t = converted.twin
    l = t.layout
    n = len(t.counts)
    m = converted.manifest[decode]
    assert m["counts"]["read"] == n and m["counts"]["written"] == n
    assert m["counts"]["rejected_total"] == 0
    tab = read_shards(converted.out[decode])

    # Input order, every spectrum once.
    ids = tab["spectrum_id"].to_numpy()
    np.testing.assert_array_equal(ids, np.arange(n, dtype=np.uint64))
    np.testing.assert_array_equal(tab["source_row"].to_numpy(), np.arange(n, dtype=np.uint64))
    np.testing.assert_array_equal(tab["source_index"].to_numpy(), np.zeros(n, np.uint16))
    np.testing.assert_array_equal(tab["num_peaks"].to_numpy(), t.counts.astype(np.uint16))

    # Peaks: unpadded, in m/z order, m/z widened exactly, intensity / max rounded once.
    offsets, mz = flat_list(tab["mz"])
    ioffsets, inten = flat_list(tab["intensity"])
    np.testing.assert_array_equal(offsets, np.concatenate([[0], np.cumsum(t.counts)]))
    np.testing.assert_array_equal(ioffsets, offsets)
    assert mz.dtype == np.float64 and inten.dtype == np.float32
    want_mz = np.concatenate([t.peaks[i, 0, :k].astype(np.float64) for i, k in enumerate(t.counts)])
    want_int = np.concatenate(
        [
            (t.peaks[i, 1, :k].astype(np.float64) / t.peaks[i, 1, :k].astype(np.float64).max()).astype(np.float32)
            for i, k in enumerate(t.counts)
        ]
    )
    np.testing.assert_array_equal(bits(mz), bits(want_mz))
    np.testing.assert_array_equal(bits(inten), bits(want_int))

    # Scalars.
    prec = tab["precursor_mz"].to_numpy()
    assert prec.dtype == np.float64
    np.testing.assert_array_equal(bits(prec), bits(t.precursor.astype(np.float64)))
    np.testing.assert_array_equal(bits(tab["rt"].to_numpy()), bits(t.rt))
    np.testing.assert_array_equal(tab["charge"].to_numpy(), t.charge)
    np.testing.assert_array_equal(bits(tab["instrument_accuracy_est"].to_numpy()), bits(t.accuracy))
    if l.strings:
        assert pa.types.is_string(tab.schema.field("lsh").type), tab.schema
        assert tab["lsh"].to_pylist() == [s.decode() for s in t.lsh]
    else:
        assert tab.schema.field("lsh").type == pa.int64()
        np.testing.assert_array_equal(tab["lsh"].to_numpy(), t.lsh)
    assert tab["name"].to_pylist() == t.name

    # Pass-through columns, as stored.
    extra = [c for c in tab.column_names if c not in FIXED]
    assert sorted(extra) == sorted(t.extra), tab.column_names
    for k, v in t.extra.items():
        col = tab[k].combine_chunks()
        if v.ndim == 2:
            got = col.values.to_numpy().reshape(-1, v.shape[1])
        else:
            got = col.to_numpy()
        np.testing.assert_array_equal(bits(got), bits(v), err_msg=k)
    for c in tab.column_names:
        if c != "gems_format":
            assert tab[c].null_count == 0, c


FIXED = {
    "spectrum_id",
    "source_index",
    "source_row",
    "name",
    "precursor_mz",
    "rt",
    "charge",
    "instrument_accuracy_est",
    "lsh",
    "num_peaks",
    "mz",
    "intensity",
    "gems_format",
}


def test_decode_paths_agree_byte_for_byte(converted):
    """`--decode native` and `--decode libhdf5` write the same shards (README, Input)."""
    a, b = converted.manifest["native"], converted.manifest["libhdf5"]
    assert [s["sha256"] for s in a["shards"]] == [s["sha256"] for s in b["shards"]]
    assert a["dataset_digest"] == b["dataset_digest"]


# --------------------------------------------------------------------------------------
# msms inspect, checked against h5py's view of the same file

# Bytes of one variable-length string element in the file: a global heap ID (4-byte length,
# 8-byte collection address, 4-byte object index; HDF5 file format spec, "Global Heap ID").
# h5py reports the in-memory pointer size (8) instead, so this is the documented figure.
VLEN_ELEMENT_BYTES = 16


def inspect_json(path: Path) -> dict:
    r = run_msms("inspect", path, "--json")
    return json.loads(r.stdout)


def check_inspect_against_h5py(path: Path) -> dict:
    """Every dataset's figures in `msms inspect --json` equal h5py's; returns the report."""
    r = inspect_json(path)
    assert r["file_bytes"] == path.stat().st_size
    by_name = {d["name"]: d for d in r["datasets"]}
    stored_sum = raw_sum = 0
    with h5py.File(path, "r") as f:
        names = sorted(k for k, v in f.items() if isinstance(v, h5py.Dataset))
        assert sorted(by_name) == names
        for k in names:
            dset, d = f[k], by_name[k]
            sid = dset.id
            assert d["shape"] == list(dset.shape), k
            # Raw: elements × the stored element size.
            vlen = h5py.check_string_dtype(dset.dtype) is not None and dset.dtype.kind == "O"
            elem = VLEN_ELEMENT_BYTES if vlen else sid.get_type().get_size()
            raw = int(np.prod(dset.shape, dtype=np.int64)) * elem
            assert d["raw_bytes"] == raw, k
            # Stored: what libhdf5 says is allocated, chunk by chunk and in total.
            storage_size = sid.get_storage_size()
            if dset.chunks is None:
                assert d["layout"] == "contiguous", k
                assert d["chunk_shape"] is None and d["chunks"] is None, k
                assert d["stored_bytes"] == storage_size, k
            else:
                assert d["layout"] == "chunked", k
                assert d["chunk_shape"] == list(dset.chunks), k
                allocated = sid.get_num_chunks()
                infos = [sid.get_chunk_info(i) for i in range(allocated)]
                chunk_sum = sum(i.size for i in infos)
                assert chunk_sum == storage_size, k  # h5py agrees with itself
                grid = math.prod(-(-s // c) for s, c in zip(dset.shape, dset.chunks))
                assert d["chunks"] == {"allocated": allocated, "total": grid}, k
                assert d["stored_bytes"] == chunk_sum, k
                # Every chunk lies inside the file.
                assert all(i.byte_offset + i.size <= path.stat().st_size for i in infos), k
            if d["stored_bytes"]:
                assert d["ratio"] == round(raw / d["stored_bytes"], 2), k
            else:
                assert d["ratio"] is None, k
            assert [(x["id"], x["params"]) for x in d["filters"]] == filters_of(dset), k
            stored_sum += d["stored_bytes"]
            raw_sum += raw
    assert r["totals"]["stored_bytes"] == stored_sum
    assert r["totals"]["raw_bytes"] == raw_sum
    return r


def test_inspect_figures_match_h5py(converted):
    r = check_inspect_against_h5py(converted.h5)
    assert r["convertible"] is True
    l = converted.twin.layout
    spec = r["mapping"]["spectrum"]
    assert spec["dataset"] == ("spectra" if l.high_form else "spectrum")
    assert spec["orientation"] == ("(N, P, 2)" if l.high_form else "(N, 2, P)")
    assert spec["dtype"] == ("float32" if l.float32 else "float64")
    assert spec["peak_slots"] == SLOTS
    assert r["mapping"]["spectra"] == len(converted.twin.counts)


@pytest.mark.parametrize("name", ["gems", "auto-chunk", "contiguous", "shuffle,float32,embedding"])
def test_inspect_figures_match_h5py_on_synth_files(name, tmp_path):
    """The same oracle on files `msms synth` writes (its own filter order and chunking)."""
    path = tmp_path / "synth.hdf5"
    run_msms("synth", path, "--spectra", 1500, "--layout", name, "--seed", 5)
    check_inspect_against_h5py(path)


def test_inspect_counts_unallocated_chunks(tmp_path):
    """Chunks never written are neither counted nor stored: h5py allocates only the chunks
    that a write touched, and inspect must report exactly those."""
    path = tmp_path / "partial.hdf5"
    t = make_twin(Layout(), seed=11, n=N)
    write_twin(path, t)
    with h5py.File(path, "a") as f:
        # Rows 0..99 only: 1 of 3 chunks of 512; the partially written chunk is allocated whole.
        rt = f.create_dataset("scan_number", shape=(N,), dtype=np.int32, chunks=(512,), compression="gzip")
        rt[:100] = np.arange(100, dtype=np.int32)
        # Never written, contiguous: nothing allocated.
        f.create_dataset("file_id", shape=(N,), dtype=np.int32)
    r = check_inspect_against_h5py(path)
    d = {x["name"]: x for x in r["datasets"]}
    assert d["scan_number"]["chunks"] == {"allocated": 1, "total": 3}
    assert d["file_id"]["stored_bytes"] == 0 and d["file_id"]["ratio"] is None
