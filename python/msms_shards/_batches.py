"""The loader's hot path: the split's rows dealt to readers in row-group order, decoded with
vectorised top-k, padded straight into their (shuffled) rows of a bounded buffer, and cut
into batches. No Python loop runs per spectrum: every step is a numpy operation over a
whole row group or buffer, or one Rust call (`_native.scatter_padded`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import _native
from . import presets as _presets

#: Rows a shuffle buffer collects before it is permuted and cut (two default row groups).
DEFAULT_SHUFFLE_BUFFER = 65536

#: The columns every batch has.
BASE_COLUMNS = ("spectrum_id", "precursor_mz", "num_peaks", "mz", "intensity")


@dataclass(frozen=True)
class Request:
    """What :meth:`Split.batches` was asked for, after the worker slot was resolved."""

    batch_size: int
    max_peaks: int
    shuffle: bool
    seed: int
    epoch: int
    rank: int
    world_size: int
    worker_id: int
    num_workers: int
    columns: Tuple[str, ...]
    drop_last: bool
    preset: Optional[str]
    shuffle_buffer: int

    def check(self) -> None:
        """Refuse values that cannot work, naming the argument."""
        for name in ("batch_size", "max_peaks", "world_size", "num_workers", "shuffle_buffer"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must be in 0..{self.world_size - 1}, got {self.rank}")
        if not 0 <= self.worker_id < self.num_workers:
            raise ValueError(f"worker_id must be in 0..{self.num_workers - 1}, got {self.worker_id}")
        if self.preset is not None and self.preset not in _presets.PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; presets: {', '.join(_presets.PRESETS)}")
        if self.preset is not None:
            key = _presets.KEYS[self.preset]
            if key in self.columns or key in BASE_COLUMNS:
                raise ValueError(
                    f"preset {self.preset!r} adds the key {key!r}, which columns= also asks for; "
                    "drop one of them"
                )

    @property
    def reader(self) -> int:
        """This reader's index among all ``world_size × num_workers`` readers."""
        return self.rank * self.num_workers + self.worker_id

    @property
    def readers(self) -> int:
        return self.world_size * self.num_workers


def worker_slot(worker_id: Optional[int], num_workers: Optional[int]) -> Tuple[int, int]:
    """The DataLoader worker this runs in: as given, else torch's (only if torch is already
    imported: this module never imports it), else the only worker."""
    if worker_id is not None or num_workers is not None:
        return int(worker_id or 0), int(num_workers or 1)
    torch = sys.modules.get("torch")
    if torch is not None:
        info = torch.utils.data.get_worker_info()
        if info is not None:
            return int(info.id), int(info.num_workers)
    return 0, 1


@dataclass(frozen=True)
class Segment:
    """Rows ``start .. stop`` of one row group, read by one reader."""

    group: object
    start: int
    stop: int


def deal(row_groups: Sequence, req: Request) -> List[Segment]:
    """This reader's rows, as segments of row groups.

    The split's row groups, in order (or permuted by ``(seed, epoch)``: the same permutation
    for every reader), are one sequence of ``N`` rows. Rank ``r`` takes rows
    ``N*r//world .. N*(r+1)//world`` (with ``drop_last``, ``N//world`` rows each, so that
    every rank has the same number of rows and batches: what DDP needs), and splits them
    among its workers the same way. So every row goes to exactly one reader (but the
    ``drop_last`` remainder), ranks differ by at most one row, and a reader reads its row
    groups whole but at most the two at the ends of its range.
    """
    order = np.arange(len(row_groups))
    if req.shuffle:
        order = np.random.default_rng([req.seed, req.epoch]).permutation(len(row_groups))
    groups = [row_groups[i] for i in order]
    total = sum(g.rows for g in groups)
    if req.drop_last and req.world_size > 1:
        per = total // req.world_size
        lo, hi = per * req.rank, per * (req.rank + 1)
    else:
        lo, hi = total * req.rank // req.world_size, total * (req.rank + 1) // req.world_size
    n = hi - lo
    lo, hi = lo + n * req.worker_id // req.num_workers, lo + n * (req.worker_id + 1) // req.num_workers
    out, at = [], 0
    for g in groups:
        a, b = max(lo, at), min(hi, at + g.rows)
        if a < b:
            out.append(Segment(g, a - at, b - at))
        at += g.rows
    return out


def reader_rows(row_groups: Sequence, req: Request) -> int:
    """Rows :func:`deal` gives this reader."""
    return sum(s.stop - s.start for s in deal(row_groups, req))


@dataclass
class Part:
    """Rows waiting in the shuffle buffer: a decoded row group (its peaks still flat), or the
    rows a buffer left over (padded already)."""

    rows: int
    #: Row-aligned arrays: scalars, requested columns, preset inputs, ``num_peaks``; for a
    #: left-over part also the padded ``mz`` and ``intensity``.
    arrays: Dict[str, np.ndarray]
    #: ``(mz, intensity, offsets)`` of a row group: flat kept peaks, int64 offsets.
    peaks: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None


def batches(row_groups: Sequence, req: Request) -> Iterator[Dict[str, np.ndarray]]:
    """Batches of this reader's row groups (see :meth:`Split.batches`)."""
    req.check()
    mine = deal(row_groups, req)
    rng = np.random.default_rng([req.seed, req.epoch, req.reader]) if req.shuffle else None
    want = max(req.shuffle_buffer if req.shuffle else 1, req.batch_size)
    files: Dict[str, pq.ParquetFile] = {}
    pending: List[Part] = []
    rows = 0
    for seg in mine:
        path = seg.group.path
        if path not in files:
            files.clear()  # one shard open at a time
            files[path] = pq.ParquetFile(path)
        table = read_group(files[path], seg.group.index, req)
        if (seg.start, seg.stop) != (0, table.num_rows):
            table = table.slice(seg.start, seg.stop - seg.start)
        part = decode(table, req)
        pending.append(part)
        rows += part.rows
        if rows >= want:
            buf = assemble(pending, placement(rows, rng), req.max_peaks)
            full = (rows // req.batch_size) * req.batch_size
            yield from cut(buf, 0, full, req.batch_size)
            pending = [Part(rows - full, take(buf, slice(full, rows)))] if rows > full else []
            rows -= full
    if rows:
        buf = assemble(pending, placement(rows, rng), req.max_peaks)
        end = (rows // req.batch_size) * req.batch_size if req.drop_last else rows
        yield from cut(buf, 0, end, req.batch_size)


def placement(rows: int, rng: Optional[np.random.Generator]) -> np.ndarray:
    """Where each buffered row goes: a random permutation when shuffling, else in order."""
    return rng.permutation(rows) if rng is not None else np.arange(rows)


def assemble(parts: List[Part], dest: np.ndarray, width: int) -> Dict[str, np.ndarray]:
    """The buffer's rows, row ``i`` (in part order) at ``dest[i]``: the flat peaks padded
    straight into place (one copy each, in Rust), the row arrays scattered with numpy."""
    total = len(dest)
    out = {
        "mz": np.zeros((total, width), dtype=np.float32),
        "intensity": np.zeros((total, width), dtype=np.float32),
    }
    for k, v in parts[0].arrays.items():
        if k not in out:
            out[k] = np.empty((total, *v.shape[1:]), dtype=v.dtype)
    at = 0
    for p in parts:
        d = dest[at : at + p.rows]
        if p.peaks is not None:
            mz, intensity, offsets = p.peaks
            _native.scatter_padded(mz, offsets, d, out["mz"], width)
            _native.scatter_padded(intensity, offsets, d, out["intensity"], width)
        for k, v in p.arrays.items():
            out[k][d] = v
        at += p.rows
    return out


def read_group(file: pq.ParquetFile, index: int, req: Request) -> pa.Table:
    """The columns a batch needs of one row group."""
    cols = list(dict.fromkeys([*BASE_COLUMNS, *req.columns]))
    return file.read_row_group(index, columns=cols)


def decode(table: pa.Table, req: Request) -> Part:
    """A row group's rows: flat peaks after top-k, scalars, requested columns and the
    preset's inputs."""
    mz_list = list_array(table.column("mz"))
    in_list = list_array(table.column("intensity"))
    offsets = np.asarray(mz_list.offsets, dtype=np.int64)
    base = offsets[0]
    mz = mz_list.values.to_numpy()[base : offsets[-1]]
    intensity = in_list.values.to_numpy()[base : offsets[-1]]
    counts = np.diff(offsets)
    arrays: Dict[str, np.ndarray] = {
        "spectrum_id": table.column("spectrum_id").to_numpy().astype(np.uint64, copy=False),
        "precursor_mz": table.column("precursor_mz").to_numpy().astype(np.float32),
    }
    if req.preset is not None:
        arrays.update(_presets.PRESETS[req.preset](mz, intensity, counts, arrays["precursor_mz"], req.max_peaks))
    kept_mz, kept_in, kept = top_k(mz, intensity, counts, req.max_peaks)
    if kept is not counts:
        offsets = np.concatenate(([0], np.cumsum(kept)))
    arrays["num_peaks"] = kept.astype(np.int32)
    for name in req.columns:
        if name not in arrays and name not in ("mz", "intensity"):
            arrays[name] = column_array(table.column(name), table.schema.field(name))
    return Part(table.num_rows, arrays, (kept_mz, kept_in, offsets))


def list_array(col: pa.ChunkedArray) -> pa.ListArray:
    """One list array (a row group read as one chunk is the common case: no copy)."""
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def top_k(
    mz: np.ndarray, intensity: np.ndarray, counts: np.ndarray, k: int
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each spectrum's ``k`` most intense peaks, ties to the lower m/z, kept in m/z order
    (the flat peaks of spectra with at most ``k`` are returned as they are)."""
    over = counts > k
    if not over.any():
        return mz, intensity, counts
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    n_over = counts[over]
    seg = np.repeat(np.arange(len(n_over)), n_over)
    first = np.concatenate(([0], np.cumsum(n_over)[:-1]))
    pos = np.repeat(starts[over], n_over) + (np.arange(n_over.sum()) - np.repeat(first, n_over))
    # Sorted by spectrum, then intensity descending, then m/z ascending.
    order = np.lexsort((mz[pos], -intensity[pos].astype(np.float64), seg))
    rank = np.arange(len(order)) - np.repeat(first, n_over)
    keep = np.ones(len(mz), dtype=bool)
    keep[pos[order[rank >= k]]] = False
    return mz[keep], intensity[keep], np.minimum(counts, k)


def pad(values: np.ndarray, counts: np.ndarray, width: int) -> np.ndarray:
    """Flat per-spectrum values as ``(n, width)`` float32 rows, zero after each count."""
    out = np.zeros((len(counts), width), dtype=np.float32)
    out[np.arange(width) < counts[:, None]] = values
    return out


def column_array(col: pa.ChunkedArray, field: pa.Field) -> np.ndarray:
    """A requested column as numpy, its dtype fixed by the schema (never by the rows at
    hand): floats as they are (NaN for null); integers and booleans as they are when the
    column cannot hold nulls, else float64 with NaN for null (as pandas reads them);
    fixed-size lists 2-D; strings, structs (dicts) and other lists object arrays (None for
    null)."""
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    t = field.type
    if pa.types.is_dictionary(t):
        arr, t = arr.dictionary_decode(), t.value_type
    if pa.types.is_fixed_size_list(t):
        width = t.list_size
        return arr.flatten().to_numpy(zero_copy_only=False).reshape(len(arr), width)
    if (pa.types.is_integer(t) or pa.types.is_boolean(t)) and field.nullable:
        return arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return arr.to_numpy(zero_copy_only=False)


def take(buf: Dict[str, np.ndarray], index) -> Dict[str, np.ndarray]:
    return {k: v[index] for k, v in buf.items()}


def cut(buf: Dict[str, np.ndarray], start: int, end: int, size: int) -> Iterator[Dict[str, np.ndarray]]:
    for at in range(start, end, size):
        yield take(buf, slice(at, min(at + size, end)))
