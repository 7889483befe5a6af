"""Every GeMS-like file h5py and hdf5plugin write (issue 16): strings in each form HDF5
stores them, LZF and the plugin filters, written here and converted by the binary, compared
value for value with what h5py reads from the same file.

- `name` as UTF-8 and ASCII variable-length strings, as variable-length bytes
  (`h5py.vlen_dtype(np.uint8)`), as fixed-length null-padded and space-padded strings; an
  ASCII pass-through column; two inputs of different string forms in one run;
- `spectrum` with h5py's LZF (with and without shuffle) and hdf5plugin's Zstd and LZ4, decoded
  by msms itself, and, where libhdf5 can apply them too (hdf5plugin's plugins on
  HDF5_PLUGIN_PATH), byte-identical shards from `--decode libhdf5`;
- Blosc and Bitshuffle: refused before anything is written, naming the dataset, filter id
  and name and the way out, and converted once HDF5_PLUGIN_PATH points at hdf5plugin's
  plugins; `msms inspect` says who reads each filter.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pyarrow.parquet as pq
import pytest
from msms_cli import clean_env, run_msms

N = 1500
NAMES = [f"run_{i % 9}.mzML" for i in range(N)]


def spectra(seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    spec = np.zeros((N, 2, 128))
    counts = 3 + np.arange(N) % 40
    for i, k in enumerate(counts):
        spec[i, 0, :k] = np.sort(rng.choice(np.arange(50.0, 1000.0, 0.25), k, replace=False))
        spec[i, 1, :k] = rng.uniform(1.0, 1000.0, k)
    return spec, rng.uniform(100.0, 1000.0, N), counts


def write(path: Path, name_form: str = "utf8", spectrum_filter: dict | None = None,
          extra: str | None = None) -> None:
    spec, prec, _ = spectra()
    storage = spectrum_filter if spectrum_filter is not None else dict(compression="gzip")
    with h5py.File(path, "w") as f:
        f.create_dataset("spectrum", data=spec, chunks=(256, 2, 128), **storage)
        f.create_dataset("precursor_mz", data=prec)
        raw = [n.encode() for n in NAMES]
        if name_form == "utf8":
            f.create_dataset("name", data=NAMES, dtype=h5py.string_dtype("utf-8"))
        elif name_form == "ascii":
            f.create_dataset("name", data=raw, dtype=h5py.string_dtype("ascii"))
        elif name_form == "bytes":
            d = f.create_dataset("name", (N,), dtype=h5py.vlen_dtype(np.uint8))
            for i, r in enumerate(raw):
                d[i] = np.frombuffer(r, dtype=np.uint8)
        elif name_form == "nullpad":
            f.create_dataset("name", data=np.array(raw, dtype="S16"))
        elif name_form == "spacepad":
            t = h5py.h5t.C_S1.copy()
            t.set_size(16)
            t.set_strpad(h5py.h5t.STR_SPACEPAD)
            sid = h5py.h5s.create_simple((N,))
            d = h5py.h5d.create(f.id, b"name", t, sid)
            d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([r.ljust(16) for r in raw], dtype="S16"))
        if extra == "smiles_ascii":
            f.create_dataset("smiles", data=[b"CC(=O)O"] * N, dtype=h5py.string_dtype("ascii"))


def convert(h5: Path | list, out: Path, *flags, code: int = 0, env: dict | None = None):
    inputs = h5 if isinstance(h5, list) else [h5]
    return run_msms("build-shards", "--input-hdf5", *inputs, "--output-root", out, "-q", *flags,
                    code=code, env=env)


def table(out: Path):
    m = json.loads((out / "_manifest.json").read_text())
    return pq.read_table([out / s["path"] for s in m["shards"]])


def assert_peaks_equal_h5py(out: Path, h5: Path) -> None:
    t = table(out)
    with h5py.File(h5, "r") as f:
        spec = f["spectrum"][:]
    assert t.num_rows == N
    for i in range(0, N, 7):
        k = int(t["num_peaks"][i].as_py())
        mz = np.array(t["mz"][i].as_py())
        np.testing.assert_array_equal(mz, spec[i, 0, :k])


def test_signed_vlen_bytes_keep_every_byte(tmp_path):
    """A C writer's vlen of `char` (signed on x86): bytes >= 0x80 (UTF-8 beyond ASCII) must
    come through, not be clipped to 0 by a signed-to-unsigned conversion."""
    h5 = tmp_path / "signed.h5"
    write(h5)
    names = ["m\u00e9thanol_%d" % i for i in range(N)]
    with h5py.File(h5, "a") as f:
        del f["name"]
        d = f.create_dataset("name", (N,), dtype=h5py.vlen_dtype(np.int8))
        for i, n in enumerate(names):
            d[i] = np.frombuffer(n.encode(), dtype=np.int8)
    out = tmp_path / "out"
    convert(h5, out)
    assert table(out)["name"].to_pylist() == names


@pytest.mark.parametrize("form", ["utf8", "ascii", "bytes", "nullpad", "spacepad"])
def test_name_in_every_string_form(tmp_path, form):
    h5 = tmp_path / f"{form}.h5"
    write(h5, name_form=form, extra="smiles_ascii")
    out = tmp_path / "out"
    convert(h5, out)
    t = table(out)
    assert t["name"].to_pylist() == NAMES
    assert t["smiles"].to_pylist() == ["CC(=O)O"] * N
    with h5py.File(h5, "r") as f:
        read = f["name"][:]
    if form == "bytes":
        read = [bytes(r).decode() for r in read]
    else:
        read = [r.decode() if isinstance(r, bytes) else r for r in read]
        read = [r.rstrip(" ") for r in read] if form == "spacepad" else read
    assert read == NAMES  # what h5py reads is what msms wrote


def test_mixed_string_forms_in_one_run(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    write(a, name_form="ascii")
    write(b, name_form="utf8")
    out = tmp_path / "out"
    convert([a, b], out)
    assert table(out)["name"].to_pylist() == NAMES + NAMES


FILTERS = {
    "lzf": dict(compression="lzf"),
    "shuffle+lzf": dict(compression="lzf", shuffle=True),
    "zstd": dict(hdf5plugin.Zstd(clevel=3)),
    "lz4": dict(hdf5plugin.LZ4()),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_filters_msms_decodes_itself(tmp_path, name):
    h5 = tmp_path / "f.h5"
    write(h5, spectrum_filter=FILTERS[name])
    out = tmp_path / "native"
    convert(h5, out)
    assert_peaks_equal_h5py(out, h5)
    shown = run_msms("inspect", h5).stdout
    assert "[read by msms]" in shown, shown
    if name in ("zstd", "lz4"):
        # libhdf5 applies them too with hdf5plugin's plugins: the same shards, byte for byte.
        ref = tmp_path / "libhdf5"
        convert(h5, ref, "--decode", "libhdf5", env=clean_env(HDF5_PLUGIN_PATH=hdf5plugin.PLUGIN_PATH))
        m = json.loads((out / "_manifest.json").read_text())
        for s in m["shards"]:
            assert (out / s["path"]).read_bytes() == (ref / s["path"]).read_bytes()


@pytest.mark.parametrize("name, fid", [("blosc", 32001), ("bitshuffle", 32008)])
def test_plugin_filters_refused_then_read_with_hdf5plugin(tmp_path, name, fid):
    h5 = tmp_path / f"{name}.h5"
    write(h5, spectrum_filter=dict(hdf5plugin.Blosc() if name == "blosc" else hdf5plugin.Bitshuffle()))
    out = tmp_path / "out"
    r = convert(h5, out, code=2)
    assert f"dataset `spectrum`: filter {fid} ({name}) cannot be decoded" in r.stderr, r.stderr
    assert "HDF5_PLUGIN_PATH" in r.stderr and "h5repack" in r.stderr, r.stderr
    assert not out.exists()
    shown = run_msms("inspect", h5, code=None).stdout
    assert f"[id {fid}: msms cannot read it]" in shown, shown
    env = clean_env(HDF5_PLUGIN_PATH=hdf5plugin.PLUGIN_PATH)
    convert(h5, out, env=env)
    assert_peaks_equal_h5py(out, h5)


def test_bool_columns_and_columns_left_out(tmp_path):
    """numpy bool (h5py: an enum FALSE/TRUE over int8) becomes an Arrow bool column, 1-D and
    2-D; another enum becomes its labels, dictionary-encoded (a value that is no member: its
    number); a compound with an object reference (no column can carry one) is left out with
    a notice naming the member and recorded in the manifest, unless --strict-columns, which
    refuses the file before anything is written."""
    h5 = tmp_path / "columns.h5"
    write(h5)
    rng = np.random.default_rng(3)
    flags = rng.random(N) > 0.5
    pairs = rng.random((N, 3)) > 0.5
    with h5py.File(h5, "a") as f:
        f.create_dataset("is_decoy", data=flags)
        f.create_dataset("flags3", data=pairs)
        f.create_dataset("pair", shape=(N,), dtype=[("a", "i4"), ("r", h5py.ref_dtype)])
        level = h5py.enum_dtype({"LOW": 0, "MID": 1, "HIGH": 2}, basetype="i1")
        f.create_dataset("level", data=(np.arange(N) % 4).astype("i1"), dtype=level)
    out = tmp_path / "out"
    r = run_msms("build-shards", "--input-hdf5", h5, "--output-root", out)
    assert "dataset `pair` left out: member `r`: unsupported dtype reference" in r.stderr, r.stderr
    assert "`level`" not in r.stderr, r.stderr
    t = table(out)
    assert t.schema.field("is_decoy").type == "bool"
    assert t["is_decoy"].to_pylist() == flags.tolist()
    assert t.schema.field("flags3").type.value_type == "bool"
    assert t["flags3"].to_pylist() == pairs.tolist()
    assert "pair" not in t.column_names
    assert str(t.schema.field("level").type) == "dictionary<values=string, indices=int32, ordered=0>"
    assert t["level"].to_pylist() == [["LOW", "MID", "HIGH", "3"][i % 4] for i in range(N)]
    m = json.loads((out / "_manifest.json").read_text())
    left = {x["dataset"]: x["reason"] for x in m["inputs"][0]["left_out"]}
    assert left == {"pair": "member `r`: unsupported dtype reference"}, left

    strict = tmp_path / "strict"
    r = run_msms("build-shards", "--input-hdf5", h5, "--output-root", strict, "--strict-columns", code=2)
    assert "dataset `pair`: member `r`: unsupported dtype reference (--strict-columns" in r.stderr, r.stderr
    assert not strict.exists()

    # A plan says so too, and with --strict-columns refuses before any part runs; its parts
    # then run with --strict-columns.
    plan = tmp_path / "_plan.json"
    args = ("plan", "--input-hdf5", h5, "--parts", "2", "--batch-size", "512", "--output", plan)
    r = run_msms(*args, "--strict-columns", code=2)
    assert "dataset `pair`: member `r`: unsupported dtype reference (--strict-columns" in r.stderr, r.stderr
    assert not plan.exists()
    r = run_msms(*args)
    assert "dataset `pair` left out: member `r`" in r.stderr, r.stderr
    assert "--strict-columns" not in json.loads(plan.read_text())["args"]
    with h5py.File(h5, "a") as f:
        del f["pair"]
    run_msms(*args, "--strict-columns")
    assert "--strict-columns" in json.loads(plan.read_text())["args"]
    parts = tmp_path / "parts"
    for k in ("0", "1"):
        # --metrics-file is the node's choice: passed on to the part.
        prom = tmp_path / f"part{k}.prom"
        run_msms("build-shards", "--plan", plan, "--part", k, "--output-root", parts, "-q",
                 "--metrics-file", prom)
        assert f'msms_spectra_read{{root="{parts / "parts" / k}"}}' in prom.read_text()
    run_msms("merge", parts)
    assert table(parts)["is_decoy"].to_pylist() == flags.tolist()


LEVELS = {"LOW": 0, "MID": 1, "HIGH": 2}


def write_nested(h5: Path) -> None:
    """`write`'s file with the nested columns h5py writes: a compound of every member kind
    (numbers, UTF-8 and fixed strings, bool, an enum, a subarray, a nested compound), an
    (N, 3) array of compounds, (N, 2) enums and strings, and a (N,) dataset of a subarray
    type (HDF5 array type)."""
    write(h5)
    rng = np.random.default_rng(11)
    level = h5py.enum_dtype(LEVELS, basetype="i1")
    inner = np.dtype([("a", "u2"), ("b", "f4")])
    dt = np.dtype([("scan", "i4"), ("score", "f8"), ("tag", h5py.string_dtype("utf-8")),
                   ("code", "S4"), ("ok", "?"), ("level", level), ("xy", "f4", (2, 2)),
                   ("inner", inner)])
    meta = np.empty(N, dtype=dt)
    meta["scan"] = np.arange(N) - 7
    meta["score"] = rng.random(N)
    meta["tag"] = [f"t{i}\u00e9" for i in range(N)]
    meta["code"] = [b"c%d" % (i % 100) for i in range(N)]
    meta["ok"] = np.arange(N) % 3 == 0
    meta["level"] = np.arange(N) % 4  # 3 is no member
    meta["xy"] = rng.random((N, 2, 2))
    meta["inner"]["a"] = np.arange(N) % 65000
    meta["inner"]["b"] = rng.random(N)
    with h5py.File(h5, "a") as f:
        f.create_dataset("meta", data=meta, chunks=(256,), compression="gzip", shuffle=True)
        f.create_dataset("pairs", data=np.array([[(i, j + 0.5) for j in range(3)] for i in range(N)],
                                                dtype=[("a", "i4"), ("b", "f8")]))
        f.create_dataset("levels2", data=(np.arange(2 * N).reshape(N, 2) % 3).astype("i1"),
                         dtype=level)
        f.create_dataset("tags2", data=[[f"a{i}", f"b{i}"] for i in range(N)],
                         dtype=h5py.string_dtype())
        f.create_dataset("vec3", shape=(N,), dtype=np.dtype(("f4", (3,))))
        f["vec3"][:] = rng.random((N, 3)).astype("f4")


def h5_as_py(v, dt: np.dtype):
    """One value h5py read, as pyarrow's `to_pylist` gives the column msms wrote: compounds
    as dicts, arrays as flat lists (C order), strings decoded, enums (h5py keeps their
    members in the dtype) as labels, a value that is no member as its number."""
    if dt.names:
        return {n: h5_as_py(v[n], dt.fields[n][0]) for n in dt.names}
    if dt.subdtype is not None:
        return [h5_as_py(x, dt.subdtype[0]) for x in np.asarray(v).reshape(-1)]
    if isinstance(v, bytes):
        return v.decode()
    members = h5py.check_enum_dtype(dt)
    if members is not None:
        labels = {value: label for label, value in members.items()}
        return labels.get(int(v), str(int(v)))
    return v.item() if isinstance(v, np.generic) else v


def test_compounds_become_structs_and_arrays_fixed_size_lists(tmp_path, hf_datasets):
    """Compounds become Arrow structs (members in order, each of its own kind; a nested
    compound a nested struct, a subarray member a fixed-size list), (N, k) datasets of any
    kind and HDF5 array types fixed-size lists: every row equals what h5py reads, the same
    bytes with --decode libhdf5 and one worker; DuckDB, polars, pandas and Hugging Face
    `datasets` read the nested columns; labels inside are dictionary-encoded in the file."""
    h5 = tmp_path / "nested.h5"
    write_nested(h5)
    out = tmp_path / "out"
    convert(h5, out)
    t = table(out)
    assert str(t.schema.field("meta").type) == (
        "struct<scan: int32 not null, score: double not null, tag: string not null, "
        "code: string not null, ok: bool not null, level: dictionary<values=string, "
        "indices=int32, ordered=0> not null, xy: fixed_size_list<item: float not null>[4] not null, "
        "inner: struct<a: uint16 not null, b: float not null> not null>")
    assert str(t.schema.field("pairs").type) == (
        "fixed_size_list<item: struct<a: int32 not null, b: double not null> not null>[3]")
    assert str(t.schema.field("vec3").type) == "fixed_size_list<item: float not null>[3]"
    with h5py.File(h5, "r") as f:
        for name in ["meta", "pairs", "levels2", "tags2", "vec3"]:
            d = f[name]
            row_type = np.dtype((d.dtype, d.shape[1:])) if d.ndim > 1 else d.dtype
            raw = d[:]
            assert t[name].to_pylist() == [h5_as_py(raw[i], row_type) for i in range(N)], name
    m = json.loads((out / "_manifest.json").read_text())
    assert "left_out" not in m["inputs"][0]
    for flags in (["--decode", "libhdf5"], ["--num-workers", "1"]):
        again = tmp_path / ("again" + flags[0])
        convert(h5, again, *flags)
        assert json.loads((again / "_manifest.json").read_text())["dataset_digest"] == m["dataset_digest"]
    shard = out / m["shards"][0]["path"]
    col = pq.ParquetFile(shard).metadata.row_group(0)
    enc = {col.column(i).path_in_schema: col.column(i).encodings for i in range(col.num_columns)}
    assert "RLE_DICTIONARY" in enc["meta.level"] and "RLE_DICTIONARY" in enc["levels2.list.item"]
    assert "RLE_DICTIONARY" not in enc["meta.tag"]
    import duckdb
    import polars as pl
    row = duckdb.connect().execute(f"SELECT meta.inner.a, meta.level, pairs[2].b, vec3[3] FROM '{shard}' "
                     "ORDER BY spectrum_id LIMIT 1 OFFSET 10").fetchone()
    assert row == (10, "HIGH", 1.5, pytest.approx(t["vec3"][10].as_py()[2]))
    p = pl.read_parquet(shard).sort("spectrum_id")
    assert p["meta"].struct.field("tag")[10] == "t10\u00e9"
    assert p["meta"].struct.field("scan").to_list() == t["meta"].combine_chunks().field("scan").to_pylist()
    frame = pq.read_table(shard).to_pandas().sort_values("spectrum_id")
    assert frame["meta"].iloc[10]["level"] == "HIGH" and list(frame["levels2"].iloc[10]) == ["HIGH", "LOW"]
    datasets, home = hf_datasets
    hf = datasets.load_dataset("parquet", data_files=[str(shard)], split="train",
                               cache_dir=str(home / "nested"))
    assert hf["spectrum_id"] == t["spectrum_id"].to_pylist()
    assert hf.features["meta"]["inner"]["a"].dtype == "uint16"
    assert hf[10]["meta"] == t["meta"][10].as_py() and hf[10]["pairs"] == t["pairs"][10].as_py()


def test_what_no_column_carries_is_left_out_naming_why(tmp_path):
    """Left out, each with its reason in the notice and the manifest, the rest converted:
    float16; a reference deep in nested compounds (named by its member path); a compound
    member name that is not UTF-8 (members are read by name); a compound of over 2^20 values
    per row though no array in it is; an array type over 2^20 values. A compound whose
    members all convert, beside them, is a struct."""
    h5 = tmp_path / "left_out.h5"
    write(h5)
    with h5py.File(h5, "a") as f:
        f.create_dataset("half", data=np.ones(N, dtype="f2"))
        f.create_dataset("deep", shape=(N,), dtype=[("a", [("b", [("c", "i4"), ("r", h5py.ref_dtype)])])])
        t = h5py.h5t.create(h5py.h5t.COMPOUND, 8)
        t.insert(b"\xff", 0, h5py.h5t.STD_I32LE)
        t.insert(b"ok", 4, h5py.h5t.STD_I32LE)
        h5py.h5d.create(f.id, b"badname", t, h5py.h5s.create_simple((N,)))
        wide = [(f"m{i}", "f4", (2**18,)) for i in range(5)]
        f.create_dataset("wide", shape=(N,), dtype=wide, chunks=(1,))
        f.create_dataset("huge", shape=(N,), dtype=np.dtype(("f4", (2**21,))), chunks=(1,))
        f.create_dataset("fine", data=np.array([(i, b"x") for i in range(N)], dtype=[("i", "i8"), ("s", "S2")]))
    out = tmp_path / "out"
    r = run_msms("build-shards", "--input-hdf5", h5, "--output-root", out)
    want = {
        "half": "unsupported dtype float16",
        "deep": "member `a.b.r`: unsupported dtype reference",
        "badname": 'unsupported dtype compound with a member name that is not UTF-8 ("\ufffd")',
        "wide": "compound{m0: float32[262144], m1: float32[262144], m2: float32[262144], "
                "m3: float32[262144], m4: float32[262144]} [1500] holds 1310720 values per row "
                "(1 to 1048576 are read)",
        "huge": "unsupported dtype float32[2097152]: an array of 2097152 values (1 to 1048576 are read)",
    }
    m = json.loads((out / "_manifest.json").read_text())
    assert {x["dataset"]: x["reason"] for x in m["inputs"][0]["left_out"]} == want
    for dataset, why in want.items():
        assert f"dataset `{dataset}` left out: {why} (--strict-columns" in r.stderr, r.stderr
    assert table(out)["fine"].to_pylist() == [{"i": i, "s": "x"} for i in range(N)]


def test_columns_and_exclude_columns_choose_pass_through_columns(tmp_path):
    """--columns keeps only the named pass-through columns, --exclude-columns drops the
    named ones (by dataset name); the choice is a setting (config hash, manifest), also from
    a config file; an unknown name is refused naming the file's columns."""
    h5 = tmp_path / "cols.h5"
    write(h5, extra="smiles_ascii")
    with h5py.File(h5, "a") as f:
        f.create_dataset("scan", data=np.arange(N, dtype=np.int32))
        f.create_dataset("is_decoy", data=np.arange(N) % 2 == 0)
    fixed = 13

    def columns(out):
        return table(out).column_names[fixed:]

    every = tmp_path / "every"
    convert(h5, every)
    assert sorted(columns(every)) == ["is_decoy", "scan", "smiles"]
    only = tmp_path / "only"
    convert(h5, only, "--columns", "scan,smiles")
    assert sorted(columns(only)) == ["scan", "smiles"]
    assert table(only)["scan"].to_pylist() == list(range(N))
    drop = tmp_path / "drop"
    convert(h5, drop, "--exclude-columns", "smiles")
    assert sorted(columns(drop)) == ["is_decoy", "scan"]
    cfg = tmp_path / "c.yaml"
    cfg.write_text("processing:\n  exclude_columns: [smiles]\n")
    via_yaml = tmp_path / "via_yaml"
    convert(h5, via_yaml, "--config", cfg)
    m = [json.loads((o / "_manifest.json").read_text()) for o in (every, drop, via_yaml)]
    assert m[1]["settings"]["exclude_columns"] == "smiles" and "exclude_columns" not in m[0]["settings"]
    assert m[1]["config_hash"] == m[2]["config_hash"] != m[0]["config_hash"]
    assert m[1]["dataset_digest"] == m[2]["dataset_digest"]
    r = convert(h5, tmp_path / "bad", "--columns", "smile", code=2)
    assert "--columns: `smile` is no pass-through column of any input (they have: is_decoy, scan, smiles)" in r.stderr, r.stderr
    # Two inputs that differ by one column convert as one run once it is excluded.
    other = tmp_path / "other.h5"
    write(other, extra="smiles_ascii")
    r = convert([h5, other], tmp_path / "differ", code=2)
    both = tmp_path / "both"
    convert([h5, other], both, "--exclude-columns", "scan,is_decoy")
    assert columns(both) == ["smiles"] and table(both).num_rows == 2 * N
    # A dataset left out can be excluded too, so that --strict-columns passes.
    with h5py.File(other, "a") as f:
        f.create_dataset("pair", shape=(N,), dtype=[("a", "i4"), ("r", h5py.ref_dtype)])
    strict = tmp_path / "strict_excluded"
    convert(other, strict, "--strict-columns", "--exclude-columns", "pair")
    assert columns(strict) == ["smiles"]


def test_bytes_that_are_not_utf8_are_replaced_and_counted(tmp_path):
    """Invalid UTF-8 in a name (fixed-length) and in a pass-through column (variable-length
    ASCII) is replaced by U+FFFD, never silently: the manifest counts the spectra and lists
    the first spectrum_ids, and the summary says so."""
    h5 = tmp_path / "bad_utf8.h5"
    write(h5)
    bad_names = {3, 40, 41, 700}
    bad_smiles = {41, 1200}
    with h5py.File(h5, "a") as f:
        del f["name"]
        raw = [b"ok_%d" % i if i not in bad_names else b"bad\xff\xfe%d" % i for i in range(N)]
        f.create_dataset("name", data=np.array(raw, dtype="S16"))
        sm = [b"CCO" if i not in bad_smiles else b"C\xc3(" for i in range(N)]
        f.create_dataset("smiles", data=sm, dtype=h5py.string_dtype("ascii"))
    out = tmp_path / "out"
    r = run_msms("build-shards", "--input-hdf5", h5, "--output-root", out)
    bad = sorted(bad_names | bad_smiles)
    assert f"not UTF-8                   {len(bad)}" in r.stdout, r.stdout
    m = json.loads((out / "_manifest.json").read_text())
    assert m["counts"]["invalid_utf8"] == {"spectra": len(bad), "first_spectrum_ids": bad}
    t = table(out)
    assert t["name"][3].as_py() == "bad\ufffd\ufffd3"
    assert t["smiles"][1200].as_py() == "C\ufffd("
    assert t["name"][4].as_py() == "ok_4"
    # Two workers or one, the same count (and the same bytes).
    one = tmp_path / "one"
    run_msms("build-shards", "--input-hdf5", h5, "--output-root", one, "--num-workers", "1", "-q")
    m1 = json.loads((one / "_manifest.json").read_text())
    assert m1["counts"] == m["counts"] and m1["dataset_digest"] == m["dataset_digest"]


def test_an_excluded_column_is_not_checked(tmp_path):
    """A pass-through column nobody can decode (Blosc, no plugin) refuses the file, naming
    it; excluded with --exclude-columns, it is neither read nor checked."""
    h5 = tmp_path / "blosc_column.h5"
    write(h5)
    with h5py.File(h5, "a") as f:
        f.create_dataset("emb", data=np.ones((N, 8), dtype=np.float32), chunks=(256, 8),
                         **hdf5plugin.Blosc())
    r = convert(h5, tmp_path / "refused", code=2)
    assert "dataset `emb`: filter 32001 (blosc) cannot be decoded" in r.stderr, r.stderr
    assert not (tmp_path / "refused").exists()
    out = tmp_path / "out"
    convert(h5, out, "--exclude-columns", "emb")
    assert "emb" not in table(out).column_names
