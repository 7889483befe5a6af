"""msms's own filter decoders against h5py (with hdf5plugin) reading the same file (issue 16).

    python benches/reference/filters_read.py GEMS.hdf5 OUTDIR [--spectra 200000]

Takes the first N rows of GEMS.hdf5's `spectrum` (N, 2, 128) float64 and writes one file per
filter into OUTDIR with h5py and hdf5plugin (chunks of (1024, 2, 128), as DreaMS writes), then
for each file times, on one core, best of 3 on a warm page cache:
  h5py:  f["spectrum"][:] (libhdf5 and the filter's own C code: h5py's lzf, hdf5plugin's
         plugins);
  msms:  `cargo run --release --example decode_time` (msms's decoders, every chunk).
Prints one line per filter: stored MB, both times, and msms's speed relative to h5py's.
"""

import argparse
import os
import subprocess
import time
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np

REPO = Path(__file__).resolve().parents[2]
FILTERS = {
    "gzip-4": dict(compression="gzip", compression_opts=4),
    "shuffle+gzip-4": dict(compression="gzip", compression_opts=4, shuffle=True),
    "lzf": dict(compression="lzf"),
    "shuffle+lzf": dict(compression="lzf", shuffle=True),
    "zstd-3": dict(hdf5plugin.Zstd(clevel=3)),
    "lz4": dict(hdf5plugin.LZ4()),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("gems")
    p.add_argument("outdir")
    p.add_argument("--spectra", type=int, default=200_000)
    a = p.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    out = Path(a.outdir)
    out.mkdir(parents=True, exist_ok=True)
    with h5py.File(a.gems, "r") as f:
        spec = f["spectrum"][: a.spectra]
    exe = REPO / "target" / "release" / "examples" / "decode_time"
    print(f"{len(spec):,} spectra, (N, 2, 128) float64, {spec.nbytes / 1e6:.0f} MB raw; one core, best of 3")
    for name, kw in FILTERS.items():
        h5 = out / f"{name}.h5"
        with h5py.File(h5, "w") as f:
            f.create_dataset("spectrum", data=spec, chunks=(1024, 2, 128), **kw)
        f = h5py.File(h5, "r")
        f["spectrum"][:]  # warm
        times = []
        for _ in range(3):
            t = time.perf_counter()
            f["spectrum"][:]
            times.append(time.perf_counter() - t)
        f.close()
        r = subprocess.run(["taskset", "-c", "0", str(exe), str(h5), "3"], capture_output=True, text=True, check=True)
        fields = dict(kv.split("=") for kv in r.stdout.split())
        ms = float(fields["decode_s"])
        stored = int(fields["stored_bytes"]) / 1e6
        print(f"{name:15} stored {stored:7.1f} MB   h5py {min(times):6.3f} s   msms {ms:6.3f} s   msms/h5py speed {min(times) / ms:5.2f}x")
        h5.unlink()


if __name__ == "__main__":
    main()
