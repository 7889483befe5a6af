"""What a compound pass-through column costs a conversion (issue 16).

    python benches/reference/compound_cost.py OUTDIR [--spectra 200000] [--msms target/release/msms]

Writes OUTDIR/m.h5 with h5py: `spectrum` (N, 2, 128) float64 (30 peaks each, gzip-4, chunks of
1024 rows), `precursor_mz`, and `meta`, a gzip-4 compound of 8 members (10 leaves: int32,
float64, a vlen string, S8, bool, an enum, a float32 (2,) subarray, a nested compound of two).
Then, best of 3 on a warm page cache: `msms build-shards` with and without
`--exclude-columns meta` (the difference is the column's cost: msms reads a compound one leaf
member at a time through libhdf5), and h5py reading the compound whole (`f["meta"][:]`).
"""

import argparse
import shutil
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np


def write(path: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    level = h5py.enum_dtype({"LOW": 0, "MID": 1, "HIGH": 2}, basetype="i1")
    dt = np.dtype([("scan", "i4"), ("score", "f8"), ("tag", h5py.string_dtype()), ("code", "S8"),
                   ("ok", "?"), ("level", level), ("xy", "f4", (2,)),
                   ("inner", [("a", "u2"), ("b", "f4")])])
    spec = np.zeros((n, 2, 128))
    spec[:, 0, :30] = np.sort(rng.uniform(50, 1000, (n, 30)), axis=1)
    spec[:, 1, :30] = rng.uniform(1, 1000, (n, 30))
    meta = np.empty(n, dtype=dt)
    meta["scan"] = np.arange(n)
    meta["score"] = rng.random(n)
    meta["tag"] = [f"tag{i % 1000}" for i in range(n)]
    meta["code"] = [b"c%d" % (i % 50) for i in range(n)]
    meta["ok"] = np.arange(n) % 2 == 0
    meta["level"] = np.arange(n) % 3
    meta["xy"] = rng.random((n, 2))
    meta["inner"]["a"] = np.arange(n) % 60000
    meta["inner"]["b"] = rng.random(n)
    gz = dict(compression="gzip", compression_opts=4)
    with h5py.File(path, "w") as f:
        f.create_dataset("spectrum", data=spec, chunks=(1024, 2, 128), **gz)
        f.create_dataset("precursor_mz", data=rng.uniform(100, 1000, n))
        f.create_dataset("meta", data=meta, chunks=(1024,), **gz)


def best(f, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--spectra", type=int, default=200_000)
    ap.add_argument("--msms", default="target/release/msms")
    a = ap.parse_args()
    a.outdir.mkdir(parents=True, exist_ok=True)
    h5 = a.outdir / "m.h5"
    write(h5, a.spectra)
    out = a.outdir / "out"

    def convert(*flags):
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([a.msms, "build-shards", "--input-hdf5", h5, "--output-root", out, "-q",
                        *flags], check=True)

    with_meta = best(convert)
    without = best(lambda: convert("--exclude-columns", "meta"))
    with h5py.File(h5) as f:
        h5py_meta = best(lambda: f["meta"][:])
    print(f"{a.spectra} spectra: msms {with_meta:.3f} s with meta, {without:.3f} s without "
          f"(meta costs {with_meta - without:.3f} s); h5py f['meta'][:] {h5py_meta:.3f} s")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
