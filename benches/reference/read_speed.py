#!/usr/bin/env python3
"""Read speed of msms shards per row-group size (issue #13): how readers fare on the output.

For each shard given, and for the same rows written again by pyarrow itself with 128k-row
groups (the reference the issue sets), it times, best of RUNS (3), warm page cache:

- pyarrow   `pq.read_table(path)` (every column) and `pq.read_table(path, columns=[...])`
- DuckDB    a full scan (every list element touched) and a one-column aggregate
- polars    `pl.read_parquet(path)` and `pl.scan_parquet(path).select(col).collect()`
- first batch: `ParquetFile(path).read_row_group(k)` for a random k, the wait before a
  shuffling loader (one that reads row groups in random order) has its first rows

    python benches/reference/read_speed.py SHARD.parquet [SHARD.parquet ...]

Prints one table row per file: row groups, rows, MB, and spectra/s for each read.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time

import duckdb
import polars as pl
import pyarrow.parquet as pq

RUNS = int(os.environ.get("RUNS", "3"))


def best(fn) -> float:
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(path: str) -> dict:
    meta = pq.ParquetFile(path).metadata
    rows = meta.num_rows
    groups = meta.num_row_groups
    con = duckdb.connect()
    rng = random.Random(0)
    out = {
        "file": os.path.basename(os.path.dirname(path)) + "/" + os.path.basename(path),
        "row_groups": groups,
        "rows": rows,
        "MB": os.path.getsize(path) / 1e6,
        "pyarrow full": best(lambda: pq.read_table(path)),
        "pyarrow 1 col": best(lambda: pq.read_table(path, columns=["precursor_mz"])),
        "pyarrow peaks": best(lambda: pq.read_table(path, columns=["mz", "intensity"])),
        "duckdb full": best(
            lambda: con.execute(
                f"SELECT sum(len(mz)), sum(list_sum(intensity)), sum(precursor_mz), "
                f"count(name) FROM read_parquet('{path}')"
            ).fetchall()
        ),
        "duckdb 1 col": best(
            lambda: con.execute(f"SELECT avg(precursor_mz) FROM read_parquet('{path}')").fetchall()
        ),
        "polars full": best(lambda: pl.read_parquet(path)),
        "polars 1 col": best(lambda: pl.scan_parquet(path).select("precursor_mz").collect()),
        "first batch": best(
            lambda: pq.ParquetFile(path).read_row_group(rng.randrange(groups))
        ),
    }
    return out


def pyarrow_twin(path: str, dir: str, group_rows: int = 131072) -> str:
    """The same rows and schema written by pyarrow (zstd level 1, 128k-row groups)."""
    t = pq.read_table(path)
    out = os.path.join(dir, f"pyarrow-{group_rows}.parquet")
    pq.write_table(t, out, row_group_size=group_rows, compression="zstd", compression_level=1)
    return out


def main() -> None:
    paths = sys.argv[1:]
    if not paths:
        sys.exit(__doc__)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        twin = pyarrow_twin(paths[0], tmp)
        for p in paths + [twin]:
            r = measure(p)
            if p == twin:
                r["file"] = "pyarrow-written, 128k-row groups"
            results.append(r)
    keys = [k for k in results[0] if k not in ("file", "row_groups", "rows", "MB")]
    print("| file | row groups | MB | " + " | ".join(keys) + " |")
    print("|---|---|---|" + "---|" * len(keys))
    for r in results:
        cells = []
        for k in keys:
            if k == "first batch":
                cells.append(f"{r[k] * 1e3:.0f} ms")
            else:
                cells.append(f"{r['rows'] / r[k] / 1e3:,.0f}k/s")
        print(f"| {r['file']} | {r['row_groups']} | {r['MB']:.0f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
