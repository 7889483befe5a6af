"""Convert GeMS HDF5 files into one msms-shards dataset on a Dask cluster.

    python examples/dask/convert.py --msms /opt/msms/bin/msms \\
        --input-hdf5 /shared/GeMS_C1_DreaMS.0.hdf5 /shared/GeMS_C1_DreaMS.1.hdf5 \\
        --output-root /shared/shards/c1 --parts 16 [--scheduler tcp://head:8786] \\
        [--retries 3] [--resubmits 1] [--num-workers N] [--summary-json run.json] \\
        [-- --splits train=0.98,val=0.01,test=0.01 --shard-size 1GB ...]

Steps:

1. ``msms plan`` (here, on the client) cuts the input into ``--parts`` disjoint, chunk-aligned
   ranges balanced by stored bytes and writes ``ROOT/_plan.json``. The flags after ``--`` are
   ``msms build-shards`` processing flags (``--splits``, ``--shard-size``, ``--batch-size``,
   ``--max-peaks``, ``--mode``, ...); they are recorded in the plan, so every part converts
   with exactly the same settings.
2. One Dask task per part runs ``msms build-shards --plan ROOT/_plan.json --part K
   --output-root ROOT`` as a subprocess on a worker, which writes ``ROOT/parts/K/`` (its own
   shards, manifest and checkpoint).
3. ``msms merge ROOT`` (here) checks every part's manifest and shard digests and writes
   ``ROOT/_manifest.json`` listing every shard (``parts/K/<split>/shard-NNNNN.parquet``); no
   data is copied. The merged dataset has exactly the rows of a single-machine run with the
   same settings (spectrum ids are global); only the shard boundaries differ. Every name in
   ``ROOT`` that is not a shard starts with ``_`` or ``.``, so ``pandas.read_parquet(ROOT)``,
   ``pyarrow.dataset.dataset(ROOT)`` and ``datasets.load_dataset("parquet", data_dir=ROOT)``
   read it with no options.

Then it prints the merged ``dataset_digest``, the counts and the timing.

Where things must be:

- ``ROOT`` must be on a file system that the client and **every worker** see under the same
  path (NFS, Lustre, GPFS, CephFS, ...): workers write their parts there and the client reads
  them back to merge. The HDF5 inputs and the ``--msms`` binary must also be readable under
  the same paths on every worker (paths are made absolute here before anything is sent).
- Workers must not set ``MSMS_*`` variables that change output settings: a part whose settings
  resolve to another config hash than the plan's refuses to run (exit 2).

Scheduling:

- Without ``--scheduler``, a ``LocalCluster`` (``--local-workers`` processes, default 2, one
  thread each) runs on this machine. On a real cluster, start one Dask worker per node with
  ``--nthreads 1`` (one part at a time per node) and let msms use the node's cores (its
  ``--mode production`` profile, or ``--num-workers N`` here).
- Failures: a part whose subprocess exits non-zero raises on the worker; Dask runs it again up
  to ``--retries`` times (``client.submit(..., retries=)``), and a part whose task still failed
  (or whose worker died) is submitted afresh up to ``--resubmits`` times. Running a part
  again is safe: an interrupted part resumes from its checkpoint, a finished one only says so.
  Exit code 2 from msms (bad input, settings or plan: nothing to gain from another try) is not
  retried. The subprocess gets SIGTERM if the worker that started it dies (Linux), so a retry
  elsewhere never races an orphan writing the same part.
- A part already being converted by another copy (msms holds one lock per part root, so the
  second copy exits 2 saying the root "is in use by msms build-shards (pid …)"): the task waits
  on that lock until the other copy ends, then runs the part again, which finds it finished
  (or resumes it if the other copy died). ``waited_for_another_copy`` in the summary counts
  such waits.
- Running this script again with the same arguments continues: finished parts are skipped by
  msms itself, interrupted ones resume. A different plan for an existing ``ROOT/_plan.json`` is
  refused (use another ``--output-root``).

Exit codes: 0 merged; 1 a part still failed after its retries (the others are kept: run again
to continue); 2 bad arguments or ``msms plan`` refused; otherwise ``msms merge``'s exit code
when it refused (2: parts missing or mismatched, named in its message).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

STDERR_TAIL = 40  # lines of a failed part's stderr kept in its error
# What msms says (exit 2) when another command holds the output root it was given.
HELD = "is in use by msms"


def _pdeathsig_preexec():
    """A preexec_fn that asks Linux to send msms SIGTERM when the worker thread that started
    it dies (PR_SET_PDEATHSIG), or None off Linux. libc's prctl is looked up here, in the
    parent, so the child only makes one foreign call between fork and exec (no import, no
    dlopen: the worker has other threads)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    PR_SET_PDEATHSIG, sig = 1, int(signal.SIGTERM)

    def preexec() -> None:  # pragma: no cover - runs in the child
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return preexec


def wait_for_part(root: str, part: int) -> None:
    """Block until no msms holds part ``part``: msms keeps an exclusive ``flock`` on
    ``ROOT/parts/K/.msms/lock`` for its whole run and removes the file when done (the lock
    itself dies with its process, so a crashed holder releases it too)."""
    import fcntl

    try:
        fd = os.open(os.path.join(root, "parts", str(part), ".msms", "lock"), os.O_RDONLY)
    except FileNotFoundError:
        return  # let go already
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    finally:
        os.close(fd)


def run_part(msms: str, plan: str, part: int, root: str, part_args: list[str]) -> dict:
    """The task a Dask worker runs: convert one part with ``msms build-shards --plan``.

    Returns a dict (``ok`` True, or False for a failure not worth retrying: exit code 2);
    raises ``RuntimeError`` on any other failure, so that Dask's ``retries`` apply.
    """
    cmd = [msms, "build-shards", "--plan", plan, "--part", str(part), "--output-root", root, *part_args]
    start = time.time()
    preexec = _pdeathsig_preexec()
    waited = 0
    while True:
        r = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, errors="replace", preexec_fn=preexec,
        )
        if not (r.returncode == 2 and HELD in r.stderr):
            break
        # Another copy of this part is running (a speculative or resubmitted task whose
        # first copy lives on): wait until it lets go of the part, then run again, which
        # says "nothing to resume" if it finished, or resumes if it died.
        wait_for_part(root, part)
        waited += 1
    info = {
        "part": part,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "seconds": round(time.time() - start, 3),
        "returncode": r.returncode,
        "waited_for_another_copy": waited,
        "command": shlex.join(cmd),
        "stdout": r.stdout[-4000:],
        "stderr_tail": "\n".join(r.stderr.splitlines()[-STDERR_TAIL:]),
    }
    if r.returncode == 0:
        return {**info, "ok": True}
    if r.returncode == 2:
        return {**info, "ok": False}
    why = f"killed by signal {-r.returncode}" if r.returncode < 0 else f"exit code {r.returncode}"
    raise RuntimeError(
        f"part {part} on {info['host']}: {why} after {info['seconds']} s: {info['command']}\n"
        f"{info['stderr_tail']}"
    )


# --------------------------------------------------------------------------------------
# Client side


def parse_args(argv: list[str]) -> argparse.Namespace:
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    else:
        extra = []
    p = argparse.ArgumentParser(
        prog="convert.py",
        description="Convert GeMS HDF5 files into one msms-shards dataset on a Dask cluster: "
        "msms plan, one task per part (msms build-shards --plan --part K), msms merge.",
        epilog="Flags after -- go to `msms plan` (build-shards processing flags: --splits, "
        "--shard-size, --batch-size, --max-peaks, --mode, ...). ROOT, the inputs and the msms "
        "binary must be visible under the same paths on every worker.",
    )
    p.add_argument("--msms", required=True, help="path to the msms binary (the same path on every worker)")
    p.add_argument("--input-hdf5", nargs="+", required=True, metavar="FILE", help="input HDF5 files, in order")
    p.add_argument("--output-root", required=True, metavar="ROOT",
                   help="output root on a file system every worker sees (_plan.json, parts/K/, _manifest.json)")
    p.add_argument("--parts", type=int, required=True, metavar="N", help="number of parts (tasks)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address (tcp://host:8786); default: a LocalCluster on this machine")
    p.add_argument("--local-workers", type=int, default=2, metavar="N",
                   help="worker processes of the LocalCluster when no --scheduler is given (default 2)")
    p.add_argument("--retries", type=int, default=3, metavar="R",
                   help="Dask retries of a failed part task (client.submit retries=; default 3)")
    p.add_argument("--resubmits", type=int, default=1, metavar="S",
                   help="fresh submissions of a part whose task still failed (default 1)")
    p.add_argument("--num-workers", type=int, metavar="N",
                   help="msms worker threads per part (default: msms's profile for the plan's mode)")
    p.add_argument("--summary-json", metavar="PATH", help="also write the run summary (timings, parts) as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the final summary")
    a = p.parse_args(argv)
    a.extra = extra
    if a.parts < 1:
        p.error("--parts must be at least 1")
    if a.retries < 0 or a.resubmits < 0:
        p.error("--retries and --resubmits must be >= 0")
    return a


def log(a: argparse.Namespace, msg: str) -> None:
    if not a.quiet:
        print(msg, file=sys.stderr, flush=True)


def make_plan(a: argparse.Namespace, msms: str, root: Path) -> tuple[dict, float]:
    """Run `msms plan` into ROOT/_plan.json (keeping an identical existing plan: a re-run
    continues). Exits 2 when msms refuses or ROOT holds another plan."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / "_plan.json"
    existed = final.exists()
    # Plan beside an existing _plan.json first, to compare; else straight into place.
    out = root / f".plan-{os.getpid()}.json" if existed else final
    start = time.time()
    try:
        cmd = [msms, "plan", "--input-hdf5", *a.input_hdf5, "--parts", str(a.parts), "--output", str(out), *a.extra]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout + r.stderr)
            print(f"convert.py: msms plan exited {r.returncode}: {shlex.join(cmd)}", file=sys.stderr)
            sys.exit(2)
        log(a, r.stdout.rstrip().replace(str(out), str(final)))
        new = json.loads(out.read_text())
        if existed:
            if json.loads(final.read_text()) != new:
                print(f"convert.py: {final} holds another plan (other inputs, settings or --parts); "
                      "give this conversion its own --output-root", file=sys.stderr)
                sys.exit(2)
            log(a, f"convert.py: {final} already holds this plan: continuing the earlier run")
    finally:
        if existed and out.exists():
            out.unlink()
    return new, time.time() - start


def start_client(a: argparse.Namespace):
    from dask.distributed import Client, LocalCluster

    if a.scheduler:
        return Client(a.scheduler), None
    cluster = LocalCluster(
        n_workers=a.local_workers, threads_per_worker=1, processes=True,
        dashboard_address=None, silence_logs=logging.WARNING,
    )
    return Client(cluster), cluster


def run_parts(a: argparse.Namespace, client, msms: str, plan_path: Path, root: Path, n_parts: int):
    """Submit every part, retry and resubmit failures; returns (results, failures), each a
    dict part -> info (failures: part -> error text)."""
    from dask.distributed import as_completed

    part_args = ["--quiet"]
    if a.num_workers:
        part_args += ["--num-workers", str(a.num_workers)]
    submissions: dict[int, int] = {}

    def submit(k: int):
        submissions[k] = submissions.get(k, 0) + 1
        return client.submit(
            run_part, msms, str(plan_path), k, str(root), part_args,
            key=f"msms-part-{k}-submission-{submissions[k]}-{os.getpid()}-{time.time_ns()}",
            pure=False, retries=a.retries,
        )

    pending = {}
    for k in range(n_parts):
        pending[submit(k)] = k
    results: dict[int, dict] = {}
    failures: dict[int, str] = {}
    queue = as_completed(list(pending))
    for fut in queue:
        k = pending.pop(fut)
        if fut.status == "finished":
            info = fut.result()
            info["submissions"] = submissions[k]
            if info["ok"]:
                results[k] = info
                log(a, f"part {k}: done in {info['seconds']:.2f} s on {info['host']} "
                       f"(submission {submissions[k]})")
            else:
                failures[k] = (f"msms exited 2 (bad input, settings or plan; not retried): "
                               f"{info['command']}\n{info['stderr_tail']}")
                log(a, f"part {k}: failed, not retried:\n{info['stderr_tail']}")
            continue
        err = fut.exception() if fut.status == "error" else f"task {fut.status}"
        if submissions[k] <= a.resubmits:
            log(a, f"part {k}: failed after {a.retries} retries ({str(err).splitlines()[0]}); "
                   f"submitting it again ({submissions[k] + 1} of {a.resubmits + 1})")
            new = submit(k)
            pending[new] = k
            queue.add(new)
        else:
            failures[k] = str(err)
            log(a, f"part {k}: failed for good: {err}")
    return results, failures, submissions


def main(argv: list[str] | None = None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    t0 = time.time()
    msms = str(Path(a.msms).resolve())
    root = Path(a.output_root).resolve()
    a.input_hdf5 = [str(Path(p).resolve()) for p in a.input_hdf5]
    plan, plan_s = make_plan(a, msms, root)
    n_parts = len(plan["parts"])
    plan_path = root / "_plan.json"

    t1 = time.time()
    client, cluster = start_client(a)
    try:
        cluster_s = time.time() - t1
        log(a, f"convert.py: {n_parts} parts on {client.scheduler.address} "
               f"({len(client.scheduler_info().get('workers', {}))} workers)")
        t2 = time.time()
        results, failures, submissions = run_parts(a, client, msms, plan_path, root, n_parts)
        parts_s = time.time() - t2
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

    summary: dict = {
        "output_root": str(root),
        "parts": n_parts,
        "timing_s": {"plan": round(plan_s, 3), "cluster_start": round(cluster_s, 3),
                     "parts": round(parts_s, 3)},
        "part_runs": {str(k): {key: v[key]
                               for key in ("host", "seconds", "submissions", "waited_for_another_copy")}
                      for k, v in sorted(results.items())},
        "submissions": {str(k): v for k, v in sorted(submissions.items())},
    }
    if failures:
        for k, err in sorted(failures.items()):
            print(f"convert.py: part {k} failed: {err}", file=sys.stderr)
        print(f"convert.py: {len(failures)} of {n_parts} parts failed; finished parts are kept, "
              "run the same command again to continue", file=sys.stderr)
        summary["failed_parts"] = sorted(failures)
        write_summary(a, summary)
        return 1

    t3 = time.time()
    r = subprocess.run([msms, "merge", str(root)], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    summary["timing_s"]["merge"] = round(time.time() - t3, 3)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        print(f"convert.py: msms merge {root} exited {r.returncode}", file=sys.stderr)
        summary["merge_exit"] = r.returncode
        write_summary(a, summary)
        return r.returncode
    total_s = time.time() - t0
    summary["timing_s"]["total"] = round(total_s, 3)

    m = json.loads((root / "_manifest.json").read_text())
    c = m["counts"]
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(c["rejected"].items()) if v)
    summary.update(dataset_digest=m["dataset_digest"], counts=c, shards=len(m["shards"]),
                   spectra_per_s=round(c["read"] / total_s) if total_s > 0 else None)
    t = summary["timing_s"]
    print(f"convert.py: merged {n_parts} parts into {root / '_manifest.json'}")
    print(f"  dataset digest   {m['dataset_digest']}")
    print(f"  spectra read     {c['read']}")
    print(f"  written          {c['written']}")
    print(f"  rejected         {c['rejected_total']}" + (f"   ({rejected})" if rejected else ""))
    print(f"  shards           {len(m['shards'])}   ("
          + ", ".join(f"{s} {v['shards']}" for s, v in m.get("splits", {}).items()) + ")")
    print(f"  timing           total {t['total']:.2f} s: plan {t['plan']:.2f} s, cluster start "
          f"{t['cluster_start']:.2f} s, parts {t['parts']:.2f} s, merge {t['merge']:.2f} s "
          f"({summary['spectra_per_s']} spectra/s overall)")
    slowest = max(results.values(), key=lambda v: v["seconds"])
    print(f"  parts            {len(results)} ok, slowest part {slowest['part']} "
          f"{slowest['seconds']:.2f} s; retried: "
          + (", ".join(f"part {k} ({n} submissions)" for k, n in sorted(submissions.items()) if n > 1) or "none"))
    write_summary(a, summary)
    return 0


def write_summary(a: argparse.Namespace, summary: dict) -> None:
    if a.summary_json:
        Path(a.summary_json).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
