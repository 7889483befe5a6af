"""The Python loader against pyarrow, one core, same run (issue 15's goal: a full pass of
`batches(256, max_peaks=128, shuffle=True)` at >= 50 % of the speed of
`pyarrow.parquet.read_table` of the same columns).

    python benches/reference/loader_bench.py ROOT [--split train] [--repeat 3]

Pins itself to one core (os.sched_setaffinity) and reads with pyarrow's threads off, so both
sides get one core; prints best-of-N seconds and spectra/s for each, and the ratio. Run it
on a warm page cache (it reads everything once first).
"""

import argparse
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq

import msms_shards

COLUMNS = ["spectrum_id", "precursor_mz", "num_peaks", "mz", "intensity"]


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - t)
    return min(times), n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("--split", default="train")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=256)
    a = p.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    split = msms_shards.open(a.root)[a.split]
    paths = [os.path.join(a.root, s["path"]) for s in split.shards]

    def arrow():
        return sum(pq.read_table(p, columns=COLUMNS, use_threads=False).num_rows for p in paths)

    def loader():
        return sum(len(b["spectrum_id"]) for b in split.batches(a.batch_size, max_peaks=128, shuffle=True))

    arrow()  # warm the page cache
    ta, na = best(arrow, a.repeat)
    tl, nl = best(loader, a.repeat)
    assert na == nl == len(split), (na, nl, len(split))
    print(f"spectra: {na:,} ({a.split}, {len(paths)} shards, {len(split.row_groups)} row groups), one core")
    print(f"pyarrow read_table ({', '.join(COLUMNS)}): {ta:.3f} s, {na / ta:,.0f} spectra/s")
    print(f"msms_shards batches({a.batch_size}, max_peaks=128, shuffle=True): {tl:.3f} s, {nl / tl:,.0f} spectra/s")
    print(f"loader / read_table: {ta / tl:.2f}")


if __name__ == "__main__":
    main()
