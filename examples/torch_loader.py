"""Stream msms-shards output into a model: fixed-size peak arrays, DreaMS style.

    python examples/torch_loader.py ROOT [--split train] [--batch-size 32] [--num-workers 0]
                                         [--max-peaks 128] [--pad-to 128] [--prepend-precursor]

prints the shape of the first batch. In your own code::

    from torch_loader import ShardDataset
    ds = ShardDataset("shards/c1", split="train", max_peaks=128, pad_to=128,
                      shuffle_shards=True, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=256, num_workers=4)
    for epoch in range(n_epochs):
        ds.set_epoch(epoch)               # a new shard order each epoch (with shuffle_shards)
        for batch in loader:
            batch["peaks"]                # (B, pad_to, 2) float32: m/z, intensity
            batch["mask"]                 # (B, pad_to) bool: True where a real peak is
            ...

What it does, per spectrum (a row of a shard; see README "Output contract"):

1. keeps the ``max_peaks`` most intense peaks. Ties are broken as ``msms build-shards
   --max-peaks`` breaks them: higher intensity first, then the lower m/z. The kept peaks are
   put back in ascending m/z order;
2. writes them into a zero-filled ``(pad_to, 2)`` array ``[m/z, intensity]``, with a boolean
   ``mask`` (True on real peaks) and ``num_peaks`` (how many are real). Padding is exactly
   ``(0.0, 0.0)``, as in the GeMS HDF5 files the shards come from;
3. with ``prepend_precursor=True``, row 0 is a pseudo-peak ``(precursor_mz,
   precursor_intensity)`` and the peaks follow, so arrays are ``(pad_to + 1, 2)``. This is
   what DreaMS feeds its transformer: its ``SpectrumPreprocessor`` trims to the n highest
   peaks, pads to n, makes intensities relative to the base peak (msms's default
   ``--normalize max`` already did that) and prepends ``[precursor m/z, 1.1]``
   (``prec_intens=1.1``, larger than any relative intensity, so the model can tell it apart).
   DreaMS's ``mask`` means something else (which peaks its masked-peak objective hides);
   here ``mask`` only marks real rows (the precursor row included).

Each item is ``dict(spectrum_id=int, precursor_mz=float, peaks=ndarray, mask=ndarray,
num_peaks=int)``; ``num_peaks`` counts real peak rows, the precursor row excluded.

Streaming: the manifest lists the split's shards in order; shards are read one at a time with
pyarrow (``iter_batches`` over only the four columns needed), so memory is one batch, not the
dataset. Within a shard, rows come in ``spectrum_id`` order. With ``shuffle_shards=True`` the
shard order is a permutation drawn from ``seed + epoch`` (the same in every worker); rows are
not shuffled across shards: put a shuffle buffer after this if your model needs one.

Workers: in a ``DataLoader`` with ``num_workers=W``, worker ``w`` reads shards ``w, w + W,
w + 2W, …`` of that order, so every spectrum is yielded exactly once per epoch; under
``torch.distributed`` (initialised), shards are also divided among ranks first. More workers
than shards leaves some idle, so write at least ``W × world size`` shards per split
(``--shard-size``).

Without torch the same class is a plain iterable yielding the same numpy dicts, and
``batches(ds, batch_size)`` stacks them like the DataLoader's default collate would.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow.parquet as pq

try:  # torch is optional: the numpy path is the same logic without the base class.
    import torch
    from torch.utils.data import IterableDataset as _Base
    from torch.utils.data import get_worker_info as _torch_worker_info

    HAVE_TORCH = True
except ImportError:  # pragma: no cover - depends on the environment
    torch = None
    _Base = object
    HAVE_TORCH = False

    def _torch_worker_info():
        return None


COLUMNS = ["spectrum_id", "precursor_mz", "mz", "intensity"]
DREAMS_PRECURSOR_INTENSITY = 1.1


def top_k_indices(mz: np.ndarray, intensity: np.ndarray, k: int | None) -> np.ndarray:
    """Indices of the k most intense peaks, in ascending m/z order (input m/z ascending).

    Ties: higher intensity first, then lower m/z, as ``msms build-shards --max-peaks``.
    """
    n = len(mz)
    if k is None or n <= k:
        return np.arange(n)
    # lexsort: the last key is the primary one. -intensity: most intense first; then m/z.
    order = np.lexsort((mz, -intensity.astype(np.float64)))
    return np.sort(order[:k])


# The manifest's names, newest first: `_manifest.json` (output format 2 on, skipped by
# dataset readers like every name starting with `_`), `manifest.json` (format 1).
MANIFEST_NAMES = ("_manifest.json", "manifest.json")


def read_manifest(root: str | os.PathLike) -> dict:
    """The manifest of `root`: `_manifest.json`, else a format-1 root's `manifest.json`."""
    for name in MANIFEST_NAMES:
        path = Path(root) / name
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            continue
    raise FileNotFoundError(
        f"{Path(root) / MANIFEST_NAMES[0]} not found (nor {MANIFEST_NAMES[1]}): not an "
        "msms-shards output root, or the run is unfinished"
    )


def split_shards(root: str | os.PathLike, split: str) -> list[Path]:
    """The split's shard files, in the manifest's (spectrum_id) order."""
    manifest = read_manifest(root)
    shards = [Path(root) / s["path"] for s in manifest["shards"] if s["split"] == split]
    if not shards:
        # Shards are listed split by split in the order of --splits; empty splits last.
        known = list(dict.fromkeys([*(s["split"] for s in manifest["shards"]), *manifest.get("splits", {})]))
        if split not in known:
            raise ValueError(f"no split {split!r} in {root}; splits: {', '.join(known) or 'none'}")
    return shards


def _distributed() -> tuple[int, int]:
    """(rank, world size) of an initialised torch.distributed group, else (0, 1)."""
    if HAVE_TORCH and torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ShardDataset(_Base):
    """A split of an msms-shards output root as a stream of fixed-size peak arrays.

    Parameters
    ----------
    root: the output root (holds ``_manifest.json``, or ``manifest.json`` if format 1).
    split: a split name of the manifest (``train`` unless ``--splits`` named others).
    max_peaks: keep at most this many peaks (top-k by intensity); None keeps all, and then a
        spectrum with more than ``pad_to`` peaks is an error.
    pad_to: rows of the peak array (before the precursor row). At least ``max_peaks``.
    shuffle_shards: read the split's shards in a seeded random order (see ``set_epoch``).
    seed: seed of that order.
    prepend_precursor: add the DreaMS precursor pseudo-peak as row 0.
    precursor_intensity: its intensity (DreaMS: 1.1).
    dtype: dtype of ``peaks`` (float32 by default, as DreaMS; float64 keeps m/z exact).
    batch_rows: rows per pyarrow read batch (memory, not the DataLoader's batch size).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        max_peaks: int | None = 128,
        pad_to: int = 128,
        shuffle_shards: bool = False,
        seed: int = 0,
        *,
        prepend_precursor: bool = False,
        precursor_intensity: float = DREAMS_PRECURSOR_INTENSITY,
        dtype=np.float32,
        batch_rows: int = 1024,
    ):
        if max_peaks is not None and max_peaks < 1:
            raise ValueError(f"max_peaks must be at least 1 (or None), got {max_peaks}")
        if max_peaks is not None and max_peaks > pad_to:
            raise ValueError(f"max_peaks ({max_peaks}) exceeds pad_to ({pad_to})")
        self.root = Path(root)
        self.split = split
        self.max_peaks = max_peaks
        self.pad_to = pad_to
        self.shuffle_shards = shuffle_shards
        self.seed = seed
        self.epoch = 0
        self.prepend_precursor = prepend_precursor
        self.precursor_intensity = precursor_intensity
        self.dtype = np.dtype(dtype)
        self.batch_rows = batch_rows
        self.shards = split_shards(self.root, split)

    @property
    def rows(self) -> int:
        """Spectra in the split (from the manifest; no shard is opened)."""
        manifest = read_manifest(self.root)
        return sum(s["rows"] for s in manifest["shards"] if s["split"] == self.split)

    def set_epoch(self, epoch: int) -> None:
        """Shard order of the next pass (call before iterating, as with DistributedSampler)."""
        self.epoch = epoch

    def shard_order(self) -> list[Path]:
        """Every shard of the split, in the order this epoch reads them (all workers)."""
        shards = list(self.shards)
        if self.shuffle_shards:
            rng = np.random.default_rng([self.seed, self.epoch])
            shards = [shards[i] for i in rng.permutation(len(shards))]
        return shards

    def worker_shards(self, worker_id: int = 0, num_workers: int = 1) -> list[Path]:
        """The shards one DataLoader worker (of this process's rank) reads."""
        rank, world = _distributed()
        part, parts = rank * num_workers + worker_id, world * num_workers
        return self.shard_order()[part::parts]

    def __iter__(self) -> Iterator[dict]:
        info = _torch_worker_info()
        if info is None:
            return self.iter_worker(0, 1)
        return self.iter_worker(info.id, info.num_workers)

    def iter_worker(self, worker_id: int, num_workers: int) -> Iterator[dict]:
        """What worker ``worker_id`` of ``num_workers`` yields (``__iter__`` asks torch)."""
        for path in self.worker_shards(worker_id, num_workers):
            yield from self.iter_shard(path)

    def iter_shard(self, path: str | os.PathLike) -> Iterator[dict]:
        f = pq.ParquetFile(path)
        try:
            for batch in f.iter_batches(batch_size=self.batch_rows, columns=COLUMNS):
                yield from self._spectra(batch)
        finally:
            f.close()

    def _spectra(self, batch) -> Iterator[dict]:
        ids = batch.column("spectrum_id").to_numpy()
        prec = batch.column("precursor_mz").to_numpy()
        mz_col, it_col = batch.column("mz"), batch.column("intensity")
        # The offsets index the (unsliced) child arrays directly; no copies of the peaks.
        offsets = mz_col.offsets.to_numpy()
        mz_all = mz_col.values.to_numpy()
        it_all = it_col.values.to_numpy()
        if not np.array_equal(offsets, it_col.offsets.to_numpy()):
            raise ValueError("mz and intensity lists differ in length")
        first = 1 if self.prepend_precursor else 0
        rows = self.pad_to + first
        for r in range(len(ids)):
            mz = mz_all[offsets[r] : offsets[r + 1]]
            it = it_all[offsets[r] : offsets[r + 1]]
            keep = top_k_indices(mz, it, self.max_peaks)
            n = len(keep)
            if n > self.pad_to:
                raise ValueError(
                    f"spectrum {ids[r]} has {n} peaks, more than pad_to={self.pad_to}: set max_peaks"
                )
            peaks = np.zeros((rows, 2), dtype=self.dtype)
            mask = np.zeros(rows, dtype=bool)
            if first:
                peaks[0] = (prec[r], self.precursor_intensity)
            peaks[first : first + n, 0] = mz[keep]
            peaks[first : first + n, 1] = it[keep]
            mask[: first + n] = True
            yield {
                "spectrum_id": int(ids[r]),
                "precursor_mz": float(prec[r]),
                "peaks": peaks,
                "mask": mask,
                "num_peaks": n,
            }


def collate(items: list[dict]) -> dict:
    """Stack items into batch arrays, as torch's default collate does (numpy, no torch)."""
    out = {}
    for key in items[0]:
        vals = [it[key] for it in items]
        out[key] = np.stack(vals) if isinstance(vals[0], np.ndarray) else np.asarray(vals)
    return out


def batches(dataset, batch_size: int) -> Iterator[dict]:
    """numpy stand-in for ``DataLoader(dataset, batch_size)`` (single process)."""
    buf = []
    for item in dataset:
        buf.append(item)
        if len(buf) == batch_size:
            yield collate(buf)
            buf = []
    if buf:
        yield collate(buf)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", help="msms-shards output root (holds _manifest.json)")
    p.add_argument("--split", default="train")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader workers (torch only)")
    p.add_argument("--max-peaks", type=int, default=128)
    p.add_argument("--pad-to", type=int, default=128)
    p.add_argument("--prepend-precursor", action="store_true")
    p.add_argument("--shuffle-shards", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--numpy", action="store_true", help="use the numpy path even if torch is installed")
    a = p.parse_args(argv)

    try:
        ds = ShardDataset(
            a.root, a.split, max_peaks=a.max_peaks, pad_to=a.pad_to,
            shuffle_shards=a.shuffle_shards, seed=a.seed, prepend_precursor=a.prepend_precursor,
        )
    except (OSError, ValueError) as e:
        print(f"torch_loader: {e}", file=sys.stderr)
        return 2
    if HAVE_TORCH and not a.numpy:
        from torch.utils.data import DataLoader

        backend = f"torch {torch.__version__} DataLoader (num_workers={a.num_workers})"
        it = iter(DataLoader(ds, batch_size=a.batch_size, num_workers=a.num_workers))
    else:
        backend = "numpy (torch not installed)" if not HAVE_TORCH else "numpy (--numpy)"
        it = batches(ds, a.batch_size)
    batch = next(it, None)
    print(f"{a.root} split {a.split}: {len(ds.shards)} shards, {ds.rows} spectra; {backend}")
    if batch is None:
        print("no spectra in this split")
        return 0
    for key, val in batch.items():
        print(f"  {key:<13} {tuple(val.shape)} {str(val.dtype).replace('torch.', '')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
