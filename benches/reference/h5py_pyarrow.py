#!/usr/bin/env python3
"""The conversion msms build-shards is compared against: h5py + numpy + pyarrow, vectorised.

What a competent Python user would write for a GeMS file (spectrum (N, 2, 128), precursor_mz,
RT, charge, `instrument accuracy est.`, lsh, name): read blocks of rows with h5py, unpad
(keep the peaks whose m/z is not 0), validate as DreaMS does (at least one peak, every m/z
and intensity finite and > 0, m/z strictly increasing), drop invalid spectra, divide each
spectrum's intensities by its maximum (float64, then float32), build the list<float64> m/z
and list<float32> intensity columns from offsets (numpy and pyarrow only, no Python loop per
spectrum), and write one zstd (level 1) Parquet file with a row group per block.

    python benches/reference/h5py_pyarrow.py IN.h5 OUTDIR [--block 65536]

Writes OUTDIR/part-00000.parquet and prints one line with spectra read, written and
rejected, bytes written, seconds (from opening the input to closing the output, imports
excluded) and spectra read per second.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def block_table(spec: np.ndarray, cols: dict, first: int) -> tuple[pa.Table, int]:
    """The valid spectra of one block as a table, and how many were rejected."""
    n = len(spec)
    mz, inten = spec[:, 0, :], spec[:, 1, :]
    keep = mz != 0
    counts = np.count_nonzero(keep, axis=1)
    fm, fi = mz[keep], inten[keep]  # row-major: each spectrum's peaks in slot order
    row = np.repeat(np.arange(n), counts)
    bad_peak = ~(np.isfinite(fm) & np.isfinite(fi) & (fm > 0) & (fi > 0))
    bad_peak[1:] |= (fm[1:] <= fm[:-1]) & (row[1:] == row[:-1])  # not strictly increasing
    valid = counts > 0
    valid[row[bad_peak]] = False

    take = valid[row]
    fm, fi = fm[take], fi[take]
    c = counts[valid]
    offsets = np.zeros(len(c) + 1, dtype=np.int32)
    np.cumsum(c, out=offsets[1:])
    if len(c):
        maxima = np.maximum.reduceat(fi, offsets[:-1])
        fi = (fi / np.repeat(maxima, c)).astype(np.float32)
    else:
        fi = fi.astype(np.float32)
    off = pa.array(offsets)
    table = pa.table(
        {
            "spectrum_id": pa.array(first + np.flatnonzero(valid).astype(np.uint64)),
            "name": pa.array(cols["name"][valid], type=pa.string()),
            "precursor_mz": pa.array(cols["precursor_mz"][valid].astype(np.float64)),
            "rt": pa.array(cols["rt"][valid]),
            "charge": pa.array(cols["charge"][valid]),
            "instrument_accuracy_est": pa.array(cols["accuracy"][valid]),
            "lsh": pa.array(cols["lsh"][valid]),
            "num_peaks": pa.array(c.astype(np.uint16)),
            "mz": pa.ListArray.from_arrays(off, pa.array(fm)),
            "intensity": pa.ListArray.from_arrays(off, pa.array(fi)),
        }
    )
    return table, n - len(c)


def convert(inp: Path, outdir: Path, block: int) -> tuple[int, int, int, Path]:
    """Convert `inp`; (read, written, rejected, output file)."""
    outdir.mkdir(parents=True, exist_ok=True)
    out = outdir / "part-00000.parquet"
    read = written = rejected = 0
    writer = None
    with h5py.File(inp, "r") as f:
        spec = f["spectrum"]
        n = spec.shape[0]
        buf = np.empty((min(block, n),) + spec.shape[1:], dtype=spec.dtype)
        for lo in range(0, n, block):
            hi = min(n, lo + block)
            b = buf[: hi - lo]
            spec.read_direct(b, np.s_[lo:hi], np.s_[0 : hi - lo])
            cols = {
                "precursor_mz": f["precursor_mz"][lo:hi],
                "rt": f["RT"][lo:hi],
                "charge": f["charge"][lo:hi],
                "accuracy": f["instrument accuracy est."][lo:hi],
                "lsh": f["lsh"][lo:hi],
                "name": f["name"].asstr()[lo:hi],
            }
            table, bad = block_table(b, cols, lo)
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema, compression="zstd", compression_level=1)
            writer.write_table(table, row_group_size=block)
            read += hi - lo
            written += table.num_rows
            rejected += bad
    if writer is not None:
        writer.close()
    return read, written, rejected, out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("input", type=Path)
    p.add_argument("outdir", type=Path)
    p.add_argument("--block", type=int, default=65536, help="rows per read and per row group")
    a = p.parse_args()
    t0 = time.perf_counter()
    read, written, rejected, out = convert(a.input, a.outdir, a.block)
    dt = time.perf_counter() - t0
    size = out.stat().st_size if out.exists() else 0
    print(
        f"h5py_pyarrow: read {read:,} spectra, wrote {written:,} (rejected {rejected:,}) to {out} "
        f"({size / 1e6:.1f} MB) in {dt:.2f} s: {read / dt:,.0f} spectra/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
