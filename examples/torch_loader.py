"""Train-side reading of msms-shards output with the package (`pip install ".[torch]"`).

    python examples/torch_loader.py ROOT [--split train] [--batch-size 256] [--num-workers 2]
                                         [--max-peaks 128] [--preset dreams|massspecgym|ms2deepscore]

prints the first batch's arrays and reads the whole split once. In your own code::

    from msms_shards.torch import SpectrumDataset
    ds = SpectrumDataset("shards/c1", "train", batch_size=256, max_peaks=128, shuffle=True, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=4)
    for epoch in range(n_epochs):
        ds.set_epoch(epoch)             # another row-group order and row shuffle per epoch
        for batch in loader:            # mz, intensity (B, 128) float32, num_peaks, precursor_mz, ...
            ...

Under torch.distributed the rank and world size are picked up; every spectrum of the split
comes once per epoch across all ranks and workers. Without torch, `msms_shards.open(ROOT)
[split].batches(...)` yields the same batches as numpy arrays.
"""

import argparse
import time

import torch

from msms_shards.torch import SpectrumDataset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root")
    p.add_argument("--split", default="train")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--max-peaks", type=int, default=128)
    p.add_argument("--preset", choices=["dreams", "massspecgym", "ms2deepscore"])
    a = p.parse_args()
    ds = SpectrumDataset(a.root, a.split, batch_size=a.batch_size, max_peaks=a.max_peaks,
                         shuffle=True, seed=0, preset=a.preset)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=a.num_workers)
    print(f"{a.split}: {a.batch_size} spectra per batch, {len(ds.split)} spectra, "
          f"{ds.num_batches(a.num_workers)} batches with {a.num_workers} workers")
    start, seen = time.perf_counter(), 0
    for i, batch in enumerate(loader):
        if i == 0:
            for k, v in batch.items():
                print(f"  {k} {tuple(v.shape)} {v.dtype}")
        seen += len(batch["spectrum_id"])
    print(f"read {seen} spectra in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
