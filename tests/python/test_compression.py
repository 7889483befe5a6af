"""`msms build-shards --compression` as the Python data stack reads it (issue 13).

One input (`msms synth` with planted faults) is converted four times, with the default
(`zstd:1`), `lz4` (Parquet LZ4_RAW), `snappy` and `none`, into small shards and row groups.
For each root:

- every column chunk of every footer names the codec asked for: the Thrift codec as DuckDB's
  `parquet_metadata` names it (`LZ4_RAW`, not the deprecated `LZ4`), and pyarrow's name for
  it (pyarrow calls LZ4_RAW `LZ4`: its C++ reader maps the deprecated Hadoop LZ4 elsewhere);
- pyarrow, DuckDB `read_parquet` and polars `read_parquet` read every row, and every column
  of every row equals the zstd root's (the codec changes bytes, not content);
- `msms verify --full` passes, and the manifest records the codec.

Run: cargo build && MSMS_BIN=target/debug/msms .venv/bin/python -m pytest tests/python/test_compression.py -q
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from msms_cli import run_msms

N_SPECTRA = 1500
SYNTH_SEED = 13
# --compression value (None: the default) -> (the manifest's text, the footers' Thrift codec
# name, pyarrow's name for that codec).
CODECS = {
    "zstd": (None, "zstd:1", "ZSTD", "ZSTD"),
    "lz4": ("lz4", "lz4", "LZ4_RAW", "LZ4"),
    "snappy": ("snappy", "snappy", "SNAPPY", "SNAPPY"),
    "none": ("none", "none", "UNCOMPRESSED", "UNCOMPRESSED"),
}


@dataclass
class Root:
    path: Path
    manifest: dict

    def shard_paths(self) -> list[Path]:
        return [self.path / s["path"] for s in self.manifest["shards"]]


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Root]:
    tmp = tmp_path_factory.mktemp("compression")
    h5 = tmp / "in.hdf5"
    run_msms("synth", h5, "--spectra", N_SPECTRA, "--faults", "0.02", "--seed", SYNTH_SEED)
    out = {}
    for name, (flag, *_) in CODECS.items():
        root = tmp / name
        extra = ["--compression", flag] if flag else []
        run_msms(
            "build-shards", "--input-hdf5", h5, "--output-root", root, "-q",
            "--batch-size", "250", "--shard-size", "150KB", *extra,
        )
        out[name] = Root(root, json.loads((root / "_manifest.json").read_text()))
    return out


@pytest.fixture(scope="module")
def reference(roots) -> pa.Table:
    """Every row of the zstd root, in spectrum_id order."""
    t = pa.concat_tables([pq.read_table(p) for p in roots["zstd"].shard_paths()])
    assert t.num_rows == roots["zstd"].manifest["counts"]["written"] > 0
    return t.sort_by("spectrum_id")


def assert_same_rows(columns: dict[str, list], reference: pa.Table, reader: str) -> None:
    assert list(columns) == reference.column_names, reader
    for name in reference.column_names:
        assert columns[name] == reference.column(name).to_pylist(), f"{reader}: column {name}"


@pytest.mark.parametrize("codec", list(CODECS))
def test_footers_name_the_codec_and_verify_passes(roots, codec):
    import duckdb

    root = roots[codec]
    _, text, thrift_name, pyarrow_name = CODECS[codec]
    assert root.manifest["settings"]["compression"] == text
    assert root.manifest["profile"]["compression"] == text
    paths = root.shard_paths()
    assert len(paths) > 1, "small shards, so several footers are read"
    chunks = 0
    for p in paths:
        meta = pq.ParquetFile(p).metadata
        assert meta.num_row_groups >= 1
        for i in range(meta.num_row_groups):
            rg = meta.row_group(i)
            for j in range(rg.num_columns):
                assert rg.column(j).compression == pyarrow_name, (p, i, j)
                chunks += 1
    con = duckdb.connect()
    try:
        codecs = con.execute(
            "SELECT compression, count(*) FROM parquet_metadata(?) GROUP BY compression",
            [[str(p) for p in paths]],
        ).fetchall()
    finally:
        con.close()
    assert codecs == [(thrift_name, chunks)]
    run_msms("verify", root.path, "--full")


@pytest.mark.parametrize("codec", list(CODECS))
def test_pyarrow_reads_every_row(roots, reference, codec):
    root = roots[codec]
    t = pa.concat_tables([pq.read_table(p) for p in root.shard_paths()]).sort_by("spectrum_id")
    assert t.num_rows == root.manifest["counts"]["written"]
    assert t.schema == reference.schema
    assert t.equals(reference)


@pytest.mark.parametrize("codec", list(CODECS))
def test_duckdb_reads_every_row(roots, reference, codec):
    import duckdb

    root = roots[codec]
    files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in root.shard_paths())
    con = duckdb.connect()
    try:
        con.execute("SET threads = 2")
        t = con.sql(f"SELECT * FROM read_parquet([{files}]) ORDER BY spectrum_id").to_arrow_table()
    finally:
        con.close()
    assert t.num_rows == reference.num_rows
    assert_same_rows({c: t.column(c).to_pylist() for c in t.column_names}, reference, "duckdb")


@pytest.mark.parametrize("codec", list(CODECS))
def test_polars_reads_every_row(roots, reference, codec):
    import polars as pl

    root = roots[codec]
    df = pl.read_parquet([str(p) for p in root.shard_paths()]).sort("spectrum_id")
    assert df.height == reference.num_rows
    assert_same_rows({c: df[c].to_list() for c in df.columns}, reference, "polars")
