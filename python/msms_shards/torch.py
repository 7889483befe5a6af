"""``SpectrumDataset``: the batches of :meth:`msms_shards.Split.batches` as a PyTorch
``IterableDataset`` of tensors.

Use it with ``DataLoader(ds, batch_size=None, num_workers=W)``: the dataset yields whole
batches, and each DataLoader worker reads its own share of the row groups (picked up from
``torch.utils.data.get_worker_info()``), so every spectrum comes once per epoch. Call
``set_epoch(e)`` before each epoch when shuffling (with ``persistent_workers=True`` the
workers keep the epoch they started with, so leave that off or recreate the loader).
"""

from __future__ import annotations

import os
from typing import Iterator, Optional, Sequence

import torch
import torch.utils.data

from ._dataset import Dataset


def _distributed() -> tuple:
    """(rank, world size) of an initialised ``torch.distributed`` group, else (0, 1)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class SpectrumDataset(torch.utils.data.IterableDataset):
    """Batches of one split of an output root as dicts of tensors.

    ``rank`` and ``world_size`` default to those of an initialised ``torch.distributed``
    group; the other arguments are those of :meth:`msms_shards.Split.batches`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        batch_size: int = 256,
        max_peaks: int = 128,
        shuffle: bool = False,
        seed: int = 0,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        columns: Optional[Sequence[str]] = None,
        drop_last: bool = False,
        preset: Optional[str] = None,
        shuffle_buffer: Optional[int] = None,
    ):
        super().__init__()
        self.split = Dataset(root)[split]
        # None: taken from torch.distributed when iterating (it may be set up after this).
        self.rank, self.world_size = rank, world_size
        self.options = dict(
            batch_size=batch_size,
            max_peaks=max_peaks,
            shuffle=shuffle,
            seed=seed,
            columns=columns,
            drop_last=drop_last,
            preset=preset,
        )
        if shuffle_buffer is not None:
            self.options["shuffle_buffer"] = shuffle_buffer
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose shuffle the next iteration uses."""
        self.epoch = int(epoch)

    def _ranks(self) -> tuple:
        found_rank, found_world = _distributed()
        rank = found_rank if self.rank is None else self.rank
        return rank, found_world if self.world_size is None else self.world_size

    def num_batches(self, num_workers: int = 0) -> int:
        """Batches this rank gets per epoch from a DataLoader with ``num_workers`` workers
        (for schedulers and progress bars; every rank gets the same with ``drop_last``)."""
        rank, world = self._ranks()
        o = self.options
        return self.split.num_batches(o["batch_size"], rank, world, num_workers, o["drop_last"])

    def __iter__(self) -> Iterator[dict]:
        rank, world = self._ranks()
        for batch in self.split.batches(rank=rank, world_size=world, epoch=self.epoch, **self.options):
            yield {k: _tensor(v) for k, v in batch.items()}


def _tensor(v):
    """A numpy array as a tensor (no copy); object arrays (strings) stay as they are;
    ``uint64`` ids become ``int64`` (torch has no uint64 arithmetic)."""
    if v.dtype == object:
        return v
    if v.dtype.kind == "u" and v.dtype.itemsize == 8:
        v = v.astype("int64")
    return torch.from_numpy(v)
