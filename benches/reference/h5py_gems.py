#!/usr/bin/env python3
"""Issue #13's reference input: a GeMS file written by h5py, with gzip level 4.

The spectra are those `msms synth` makes (by default `--layout gems --faults 0.01 --seed 1`,
the e2e bench's `gems` input): a synth file is read with h5py and every dataset written again
by the test suite's h5py twin writer (`write_twin` of tests/python/test_twins.py, layout
`gems`): spectrum (N, 2, 128) float64 in (1024, 2, 128) chunks, precursor_mz, RT,
`instrument accuracy est.` float32, charge int8, lsh int64 and name (vlen utf-8), each in
1024-row chunks with h5py's gzip filter at level 4 (compression='gzip', compression_opts=4).

    python benches/reference/h5py_gems.py OUT.h5 --spectra 1000000
    python benches/reference/h5py_gems.py OUT.h5 --from target/msms-bench/gems-1000000.hdf5

Without --from, `msms synth` runs into a temporary file next to OUT (the binary: --msms,
else $MSMS_BIN, else target/release/msms). Needs h5py, numpy and pytest (test_twins imports
it); holds the whole file in memory once (about 2.2 GB for 1M spectra).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))
from test_twins import LAYOUTS, Twin, write_twin  # noqa: E402  (the suite's h5py writer)


def read_synth(path: Path) -> Twin:
    """The datasets of a `msms synth --layout gems` file, as a twin of layout `gems`."""
    with h5py.File(path, "r") as f:
        peaks = f["spectrum"][:]
        return Twin(
            layout=LAYOUTS["gems"],
            counts=np.count_nonzero(peaks[:, 0, :], axis=1),
            peaks=peaks,
            precursor=f["precursor_mz"][:],
            rt=f["RT"][:],
            charge=f["charge"][:],
            accuracy=f["instrument accuracy est."][:],
            lsh=f["lsh"][:],
            name=f["name"].asstr()[:],
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="the HDF5 file to write (overwritten)")
    p.add_argument("--spectra", type=int, default=1_000_000, help="without --from (default 1,000,000)")
    p.add_argument("--from", dest="src", type=Path, help="an existing `msms synth --layout gems` file")
    p.add_argument("--msms", type=Path, help="msms binary for `msms synth`")
    p.add_argument("--faults", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=a.out.resolve().parent) as tmp:
        src = a.src
        if src is None:
            msms = a.msms or Path(os.environ.get("MSMS_BIN") or REPO / "target" / "release" / "msms")
            src = Path(tmp) / "synth.hdf5"
            subprocess.run(
                [str(msms), "synth", str(src), "--spectra", str(a.spectra), "--layout", "gems",
                 "--faults", str(a.faults), "--seed", str(a.seed)],
                check=True, stdout=subprocess.DEVNULL,
            )
        twin = read_synth(src)
    write_twin(a.out, twin)
    with h5py.File(a.out, "r") as f:
        s = f["spectrum"]
        assert s.chunks == (min(len(s), 1024), 2, 128) and s.compression == "gzip" and s.compression_opts == 4
    print(
        f"h5py_gems: wrote {len(twin.peaks):,} spectra to {a.out} ({a.out.stat().st_size / 1e6:.1f} MB, "
        f"h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version}) in {time.perf_counter() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
