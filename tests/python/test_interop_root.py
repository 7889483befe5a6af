"""The output root opens as a dataset with no options (issue 13, point 2; output format 2).

Three roots are built with the binary from one `msms synth` input, and each is then used as
a user would (`msms verify`, `msms quality-report` with its default outputs) before it is
read:

- `unsplit`: `build-shards` with a small `--shard-size` (several shards in `train/`);
- `splits`: the same with `--splits train=0.8,val=0.1,test=0.1`;
- `merged`: `msms plan --parts 2 --output ROOT/_plan.json`, both parts, `msms merge`
  (`ROOT/parts/K/<split>/…`, the plan's copy and the merged manifest in the root).

Every reader below is given the root and nothing else, and must return every written
spectrum: the manifest's `counts.written` rows, and exactly the `spectrum_id` values of the
shards the manifest lists (read one by one with pyarrow, as the reference):
`pandas.read_parquet(ROOT)`, `pyarrow.parquet.read_table(ROOT)`,
`pyarrow.dataset.dataset(ROOT).to_table()`, DuckDB `read_parquet('ROOT/**/*.parquet')`, polars
`scan_parquet('ROOT/**/*.parquet')`, and Hugging Face `load_dataset("parquet",
data_dir=ROOT)` (offline), which makes one split per split directory (`train` alone without
`--splits`; `val` becomes `validation`; a merged root's `parts/K/train/` are all `train`).
Readers skip names starting with `_` or `.`, so everything in a root that is not a shard
(`_manifest.json`, `_quality_report.html/.json`, `_plan.json`, `.msms/`) is named so.

Run: MSMS_BIN=target/debug/msms .venv/bin/python -m pytest tests/python/test_interop_root.py -q
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from msms_cli import run_msms

N_SPECTRA = 3000
SHARD_SIZE = "300kB"
SPLITS = "train=0.8,val=0.1,test=0.1"
# Hugging Face's names for split directories (datasets.data_files: val/valid/dev → validation).
HF_SPLIT = {"train": "train", "val": "validation", "test": "test"}
ROOTS = ["unsplit", "splits", "merged"]
READERS = ["pandas", "pyarrow.parquet", "pyarrow.dataset", "duckdb", "polars"]


@dataclass
class Root:
    path: Path
    manifest: dict
    ids: dict[str, list[int]]  # split -> spectrum_id of every row, from the listed shards

    @property
    def all_ids(self) -> list[int]:
        return sorted(i for ids in self.ids.values() for i in ids)


def reference(path: Path) -> Root:
    """The root's manifest and, shard by shard as it lists them, the ids written."""
    m = json.loads((path / "_manifest.json").read_text())
    assert m["format_version"] == 2
    ids: dict[str, list[int]] = {}
    for s in m["shards"]:
        got = pq.read_table(path / s["path"], columns=["spectrum_id"])["spectrum_id"].to_pylist()
        assert len(got) == s["rows"], s["path"]
        ids.setdefault(s["split"], []).extend(got)
    assert sum(len(v) for v in ids.values()) == m["counts"]["written"] > 0
    return Root(path, m, ids)


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Root]:
    tmp = tmp_path_factory.mktemp("interop_root")
    h5 = tmp / "in.hdf5"
    run_msms("synth", h5, "--spectra", N_SPECTRA, "--faults", "0.02", "--seed", 13)
    build = ("build-shards", "--input-hdf5", h5, "-q", "--shard-size", SHARD_SIZE)
    run_msms(*build, "--output-root", tmp / "unsplit")
    run_msms(*build, "--output-root", tmp / "splits", "--splits", SPLITS)
    merged = tmp / "merged"
    merged.mkdir()
    plan = merged / "_plan.json"
    run_msms("plan", "--parts", 2, "--input-hdf5", h5, "--batch-size", 500,
             "--shard-size", SHARD_SIZE, "--output", plan)
    for k in (0, 1):
        run_msms("build-shards", "--plan", plan, "--part", k, "--output-root", merged, "-q")
    run_msms("merge", merged)
    out = {}
    for name in ROOTS:
        path = tmp / name
        run_msms("verify", path, "-q")
        run_msms("quality-report", path, "-q")
        assert (path / "_quality_report.html").is_file() and (path / "_quality_report.json").is_file()
        out[name] = reference(path)
    assert len(out["merged"].manifest["shards"]) >= 4
    assert set(out["splits"].ids) == {"train", "val", "test"}
    # The same spectra, however the root is laid out.
    assert out["unsplit"].all_ids == out["splits"].all_ids == out["merged"].all_ids
    return out


def hidden(rel: Path) -> bool:
    """Whether a reader skips `rel`: some component starts with `_` or `.`."""
    return any(part.startswith(("_", ".")) for part in rel.parts)


@pytest.mark.parametrize("name", ROOTS)
def test_nothing_but_listed_shards_where_readers_look(roots, name):
    r = roots[name]
    visible = sorted(
        p.relative_to(r.path).as_posix()
        for p in r.path.rglob("*")
        if p.is_file() and not hidden(p.relative_to(r.path))
    )
    assert visible == sorted(s["path"] for s in r.manifest["shards"])
    assert not (r.path / "manifest.json").exists()
    skipped = sorted(p.name for p in r.path.iterdir() if hidden(Path(p.name)))
    want = ["_manifest.json", "_quality_report.html", "_quality_report.json"]
    if name == "merged":
        want.append("_plan.json")
    assert skipped == sorted(want)


def read_ids(reader: str, root: Path) -> list[int]:
    """Every spectrum_id `reader` returns for `root`, given nothing but the root."""
    if reader == "pandas":
        import pandas as pd

        return pd.read_parquet(root)["spectrum_id"].tolist()
    if reader == "pyarrow.parquet":
        return pq.read_table(root)["spectrum_id"].to_pylist()
    if reader == "pyarrow.dataset":
        import pyarrow.dataset as ds

        return ds.dataset(root).to_table()["spectrum_id"].to_pylist()
    if reader == "duckdb":
        import duckdb

        con = duckdb.connect()
        try:
            con.execute("SET threads = 2")
            rows = con.execute(f"SELECT spectrum_id FROM read_parquet('{root}/**/*.parquet')").fetchall()
        finally:
            con.close()
        return [r[0] for r in rows]
    if reader == "polars":
        import polars as pl

        return pl.scan_parquet(f"{root}/**/*.parquet").select("spectrum_id").collect()["spectrum_id"].to_list()
    raise AssertionError(reader)


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("name", ROOTS)
def test_the_root_reads_with_no_options(roots, name, reader):
    r = roots[name]
    got = read_ids(reader, r.path)
    assert len(got) == r.manifest["counts"]["written"]
    # Exactly the written spectra: each once, no other.
    assert sorted(got) == r.all_ids
    assert not [i for i, n in Counter(got).items() if n > 1]


@pytest.mark.parametrize("name", ROOTS)
def test_huggingface_load_dataset_with_data_dir(roots, name, hf_datasets):
    datasets, home = hf_datasets
    r = roots[name]
    dd = datasets.load_dataset("parquet", data_dir=str(r.path), cache_dir=str(home / "cache" / name))
    # One split per split directory; a root without --splits (merged or not) is all train.
    want = {HF_SPLIT[s]: sorted(ids) for s, ids in r.ids.items()}
    if name != "splits":
        assert set(want) == {"train"}
    assert {k: d.num_rows for k, d in dd.items()} == {k: len(v) for k, v in want.items()}
    assert {k: sorted(d["spectrum_id"]) for k, d in dd.items()} == want
    assert sum(d.num_rows for d in dd.values()) == r.manifest["counts"]["written"]
    if name == "splits":
        assert {k: d.num_rows for k, d in dd.items()} == {
            HF_SPLIT[s]: rec["rows"] for s, rec in r.manifest["splits"].items()
        }


def test_package_reads_format2_and_format1_roots(roots):
    """msms_shards.open finds `_manifest.json`, and a format-1 root's `manifest.json` (the
    committed fixture made by the last format-1 msms, tests/fixtures/format1/)."""
    import msms_shards
    from msms_cli import REPO

    r = roots["splits"]
    ds = msms_shards.open(r.path)
    assert ds.manifest == r.manifest
    got = [i for b in ds["val"].batches(64) for i in b["spectrum_id"].tolist()]
    assert sorted(got) == sorted(r.ids["val"])

    old = REPO / "tests" / "fixtures" / "format1" / "split"
    ds = msms_shards.open(old)
    assert ds.manifest["format_version"] == 1
    for split in ("train", "test"):
        want = [
            i for s in ds.manifest["shards"] if s["split"] == split
            for i in pq.read_table(old / s["path"], columns=["spectrum_id"])["spectrum_id"].to_pylist()
        ]
        got = [i for b in ds[split].batches(32) for i in b["spectrum_id"].tolist()]
        assert got == want and len(got) == ds.manifest["splits"][split]["rows"]
    assert ds.verify().ok
    with pytest.raises(FileNotFoundError, match="no _manifest.json"):
        msms_shards.open(old / "train")
