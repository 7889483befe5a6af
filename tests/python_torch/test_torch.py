"""`msms_shards.torch.SpectrumDataset` under a real torch DataLoader with worker processes
(issue 15). Runs in its own venv (.venv-torch: torch is 5 GB), made by scripts/test-torch.sh,
which CI runs as its own step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from msms_shards.torch import SpectrumDataset

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("torch")
    msms = Path(sys.executable).parent / "msms"  # the package's command
    h5, out = tmp / "in.hdf5", tmp / "root"
    for args in (["synth", h5, "--spectra", "2500", "--seed", "8"],
                 ["build-shards", "--input-hdf5", h5, "--output-root", out, "-q",
                  "--splits", "train=0.9,val=0.1", "--row-group-size", "111"]):
        subprocess.run([str(msms), *map(str, args)], check=True, stdin=subprocess.DEVNULL)
    return out


def ids_of(loader) -> list:
    got = []
    for batch in loader:
        assert batch["mz"].dtype == torch.float32 and batch["mz"].shape[1:] == (64,)
        assert batch["spectrum_id"].dtype == torch.int64
        got += batch["spectrum_id"].tolist()
    return got


def all_ids(root: Path, split: str) -> list:
    m = json.loads((root / "_manifest.json").read_text())
    import pyarrow.parquet as pq

    return sorted(i for s in m["shards"] if s["split"] == split
                  for i in pq.read_table(root / s["path"], columns=["spectrum_id"])["spectrum_id"].to_pylist())


@pytest.mark.parametrize("workers", [0, 2, 3])
def test_every_spectrum_once_per_epoch(root, workers):
    ds = SpectrumDataset(root, "train", batch_size=50, max_peaks=64, shuffle=True, seed=2)
    loader = DataLoader(ds, batch_size=None, num_workers=workers)
    got, batches = [], 0
    for batch in loader:
        got += batch["spectrum_id"].tolist()
        batches += 1
    assert sorted(got) == all_ids(root, "train") and len(got) == len(set(got))
    assert batches == ds.num_batches(workers)


def test_epochs_reshuffle_and_repeat(root):
    ds = SpectrumDataset(root, "train", batch_size=50, max_peaks=64, shuffle=True, seed=2)
    loader = DataLoader(ds, batch_size=None, num_workers=2)
    ds.set_epoch(0)
    first = ids_of(loader)
    ds.set_epoch(1)
    second = ids_of(loader)
    ds.set_epoch(0)
    again = ids_of(loader)
    assert first == again and first != second and sorted(first) == sorted(second)


def test_two_ranks_with_workers_partition_the_split(root):
    got = []
    for rank in range(2):
        ds = SpectrumDataset(root, "val", batch_size=16, max_peaks=64, rank=rank, world_size=2)
        got += ids_of(DataLoader(ds, batch_size=None, num_workers=2))
    assert sorted(got) == all_ids(root, "val") and len(got) == len(set(got))


def test_ranks_take_equal_steps_with_drop_last(root):
    """What DDP needs: the same number of batches on every rank."""
    steps = []
    for rank in range(3):
        ds = SpectrumDataset(root, "train", batch_size=32, max_peaks=64, shuffle=True,
                             rank=rank, world_size=3, drop_last=True)
        n = sum(1 for _ in DataLoader(ds, batch_size=None, num_workers=2))
        assert n == ds.num_batches(2)
        steps.append(n)
    assert len(set(steps)) == 1, steps


def test_preset_tensors(root):
    ds = SpectrumDataset(root, "val", batch_size=8, max_peaks=100, preset="dreams")
    batch = next(iter(DataLoader(ds, batch_size=None, num_workers=1)))
    assert batch["spectrum"].shape == (8, 101, 2) and batch["spectrum"].dtype == torch.float32
    assert torch.all(batch["spectrum"][:, 0, 1] == torch.tensor(np.float32(1.1)))


def test_example_runs(root):
    r = subprocess.run([sys.executable, str(REPO / "examples" / "torch_loader.py"), str(root),
                        "--split", "val", "--batch-size", "16", "--num-workers", "2"],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert "val: 16 spectra per batch" in r.stdout, r.stdout
    assert "mz (16, 128) torch.float32" in r.stdout, r.stdout
