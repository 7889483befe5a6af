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
    """One Parquet row group of a split: the unit of work divided between ranks and workers."""

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
        ``spectrum_id`` ``(B,)`` uint64; each column of ``columns`` (scalars 1-D, fixed-size
        lists 2-D, other lists and strings object arrays). A spectrum with more peaks than
        ``max_peaks`` keeps its ``max_peaks`` most intense, ties to the lower m/z (the rule of
        ``build-shards --max-peaks``), in m/z order. ``preset`` adds model inputs
        (:mod:`msms_shards.presets`: ``"dreams"``, ``"massspecgym"``, ``"ms2deepscore"``).

        Work is divided by row group: all row groups of the split, in manifest order (or,
        with ``shuffle``, permuted by ``(seed, epoch)``), are dealt round-robin to the
        ``world_size × num_workers`` readers, reader ``rank × num_workers + worker_id`` taking
        its share; so each spectrum comes exactly once per epoch whatever the counts. Inside a
        torch DataLoader worker the worker id and count are picked up by themselves. With
        ``shuffle``, rows are also permuted within a buffer of about ``shuffle_buffer`` rows;
        the same ``(seed, epoch)`` and counts give the same batches.
        """
        worker_id, num_workers = _batches.worker_slot(worker_id, num_workers)
        return _batches.batches(
            self.row_groups,
            _batches.Request(
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
            ),
        )


def open(root: str | os.PathLike) -> Dataset:  # noqa: A001 - the API's name
    """Open the output root ``root`` (reads its manifest; shards are read when iterated)."""
    return Dataset(root)
