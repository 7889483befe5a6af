"""An output root as a dataset: its manifest, its splits, their row groups and verify."""

from __future__ import annotations

import builtins
import json
import os
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence

import pyarrow.parquet as pq

from . import _batches, _native

#: Manifest file names, newest format first (format 1 wrote ``manifest.json``).
MANIFEST_NAMES = ("_manifest.json", "manifest.json")


@dataclass(frozen=True)
class RowGroup:
    """One Parquet row group of a split: what a reader reads (ranks and workers divide the
    split's rows in row-group order)."""

    #: Path of its shard file.
    path: str
    #: Its index in the shard.
    index: int
    #: Its rows.
    rows: int


@dataclass(frozen=True)
class VerifyResult:
    """What ``msms verify ROOT`` (``--full``) found, with its messages."""

    #: Nothing differs from the manifest (``msms verify`` exits 0).
    ok: bool
    #: One line per problem, as ``msms verify`` prints them.
    problems: List[str]
    #: The summary line ``msms verify`` prints last.
    summary: str

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return "\n".join([*self.problems, self.summary])


class Dataset:
    """An msms-shards output root (a single run's, a merged or a rebalanced one).

    ``ds.splits`` are the split names in manifest order, ``ds[split]`` a :class:`Split`,
    ``ds.manifest`` the manifest as a dict.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = os.fspath(root)
        path = next(
            (os.path.join(self.root, n) for n in MANIFEST_NAMES
             if os.path.isfile(os.path.join(self.root, n))),
            None,
        )
        if path is None:
            raise FileNotFoundError(
                f"{self.root}: no _manifest.json (not an msms-shards output root, or its run "
                "has not finished: `msms status ROOT` tells)"
            )
        with builtins.open(path, encoding="utf-8") as f:
            self.manifest: dict = json.load(f)
        if self.manifest.get("format") != "msms-shards":
            raise ValueError(f"{path}: not an msms-shards manifest")
        names = list(self.manifest.get("splits") or {})
        if not names:
            names = list(dict.fromkeys(s["split"] for s in self.manifest["shards"]))
        self.splits: List[str] = names

    def __getitem__(self, split: str) -> "Split":
        if split not in self.splits:
            raise KeyError(f"no split {split!r} in {self.root}; its splits: {', '.join(self.splits)}")
        return Split(self, split)

    def __iter__(self) -> Iterator[str]:
        return iter(self.splits)

    def __repr__(self) -> str:
        rows = ", ".join(f"{s}: {len(self[s]):,}" for s in self.splits)
        return f"msms_shards.Dataset({self.root!r}; {rows})"

    def verify(self, full: bool = False) -> VerifyResult:
        """Run the checks of ``msms verify ROOT`` (``--full``: every spectrum too).

        Raises ``OSError`` with ``msms verify``'s message when the root or its manifest
        cannot be read.
        """
        ok, problems, summary = _native.verify(self.root, full)
        return VerifyResult(ok=ok, problems=list(problems), summary=summary)


class Split:
    """One split of a :class:`Dataset`: ``len(split)`` spectra, read with :meth:`batches`."""

    def __init__(self, dataset: Dataset, name: str):
        self.dataset = dataset
        self.name = name
        self.shards = [s for s in dataset.manifest["shards"] if s["split"] == name]
        self._row_groups: Optional[List[RowGroup]] = None

    def __len__(self) -> int:
        return sum(int(s["rows"]) for s in self.shards)

    def __repr__(self) -> str:
        return f"msms_shards.Split({self.name!r}, {len(self):,} spectra, {len(self.shards)} shards)"

    @property
    def row_groups(self) -> List[RowGroup]:
        """Every row group of the split, shard by shard in manifest order (read from the
        shards' footers once)."""
        if self._row_groups is None:
            groups = []
            for s in self.shards:
                path = os.path.join(self.dataset.root, s["path"])
                meta = pq.ParquetFile(path).metadata
                groups.extend(
                    RowGroup(path, i, meta.row_group(i).num_rows) for i in range(meta.num_row_groups)
                )
            self._row_groups = groups
        return self._row_groups

    def batches(
        self,
        batch_size: int,
        max_peaks: int = 128,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        columns: Optional[Sequence[str]] = None,
        drop_last: bool = False,
        *,
        preset: Optional[str] = None,
        shuffle_buffer: int = _batches.DEFAULT_SHUFFLE_BUFFER,
        worker_id: Optional[int] = None,
        num_workers: Optional[int] = None,
    ) -> Iterator[dict]:
        """Yield the split's spectra as dicts of numpy arrays, ``batch_size`` rows each (the
        last may be shorter unless ``drop_last``).

        Keys: ``mz`` and ``intensity`` ``(B, max_peaks)`` float32, zero-padded after each
        spectrum's ``num_peaks`` ``(B,)`` int32 peaks; ``precursor_mz`` ``(B,)`` float32;
        ``spectrum_id`` ``(B,)`` uint64; each column of ``columns`` (scalars 1-D, integer and
        boolean columns that may hold nulls as float64 with NaN, fixed-size lists 2-D, other
        lists and strings object arrays). A spectrum with more peaks than ``max_peaks`` keeps
        its ``max_peaks`` most intense stored intensities, ties to the lower m/z (the rule of
        ``build-shards --max-peaks``, which ranks the raw intensities before normalising: the
        same peaks under ``--normalize max``), in m/z order. ``preset`` adds model inputs
        (:mod:`msms_shards.presets`: ``"dreams"``, ``"massspecgym"``, ``"ms2deepscore"``).

        Work is divided by rows in row-group order: the split's row groups, in manifest
        order (or, with ``shuffle``, permuted by ``(seed, epoch)``), are one sequence that
        ranks cut into equal ranges (within one row) and each rank's workers cut again; so
        each spectrum comes exactly once per epoch whatever the counts, and a reader reads
        whole row groups but for the two at the ends of its range. With ``drop_last`` every
        rank gets the same number of rows (the last ``N % world_size`` of the epoch's order
        are left out) and so the same number of batches, which DDP needs
        (:meth:`num_batches`). Inside a torch DataLoader worker the worker id and count are
        picked up by themselves. With ``shuffle``, rows are also permuted within a buffer of
        about ``shuffle_buffer`` rows; the same ``(seed, epoch)`` and counts give the same
        batches. Bad arguments raise here, before the first batch.
        """
        req = self._request(batch_size, max_peaks, shuffle, seed, epoch, rank, world_size,
                            columns, drop_last, preset, shuffle_buffer, worker_id, num_workers)
        return _batches.batches(self.row_groups, req)

    def num_batches(self, batch_size: int, rank: int = 0, world_size: int = 1, num_workers: int = 0,
                    drop_last: bool = False) -> int:
        """How many batches :meth:`batches` yields to rank ``rank`` over all its
        ``num_workers`` DataLoader workers (0: the main process), for any ``seed``/``epoch``
        and with or without ``shuffle`` (a reader's row count depends only on the counts).
        Each worker ends with its own short batch unless ``drop_last``; with ``drop_last``
        every rank gets the same count."""
        workers = max(num_workers, 1)
        total = 0
        for w in range(workers):
            req = self._request(batch_size, 128, False, 0, 0, rank, world_size, None, drop_last,
                                None, _batches.DEFAULT_SHUFFLE_BUFFER, w, workers)
            rows = _batches.reader_rows(self.row_groups, req)
            total += rows // batch_size if drop_last else -(-rows // batch_size)
        return total

    def _request(self, batch_size, max_peaks, shuffle, seed, epoch, rank, world_size, columns,
                 drop_last, preset, shuffle_buffer, worker_id, num_workers) -> "_batches.Request":
        """The checked request (bad arguments raise here, not at the first batch)."""
        worker_id, num_workers = _batches.worker_slot(worker_id, num_workers)
        req = _batches.Request(
            batch_size=batch_size,
            max_peaks=max_peaks,
            shuffle=shuffle,
            seed=seed,
            epoch=epoch,
            rank=rank,
            world_size=world_size,
            worker_id=worker_id,
            num_workers=num_workers,
            columns=tuple(columns or ()),
            drop_last=drop_last,
            preset=preset,
            shuffle_buffer=shuffle_buffer,
        )
        req.check()
        return req


def open(root: str | os.PathLike) -> Dataset:  # noqa: A001 - the API's name
    """Open the output root ``root`` (reads its manifest; shards are read when iterated)."""
    return Dataset(root)
