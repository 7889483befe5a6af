"""The `msms` binary as every Python test runs it: the build under test, without the caller's
MSMS_* settings (which would change the output), with stdin closed and a timeout."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def msms_bin() -> Path:
    """`$MSMS_BIN` (set by scripts/test.sh), else the debug build; missing is a failure."""
    p = Path(os.environ.get("MSMS_BIN") or REPO / "target" / "debug" / "msms").resolve()
    if not p.is_file():
        pytest.fail(f"msms binary not found at {p}: run `cargo build` or set MSMS_BIN")
    return p


def clean_env(**extra) -> dict:
    """This environment without MSMS_* (which would change the settings), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSMS_")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(cmd, *, code: int | None = 0, env: dict | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `cmd` (any path-like items); assert its exit code unless `code` is None."""
    cmd = [str(c) for c in cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       env=env or clean_env(), timeout=timeout)
    if code is not None:
        assert r.returncode == code, (
            f"{' '.join(cmd)} exited {r.returncode}, not {code}\n"
            f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
        )
    return r


def run_msms(*args, code: int | None = 0, env: dict | None = None,
             timeout: float = 600) -> subprocess.CompletedProcess:
    """`msms ARGS…`, as [`run`] runs it."""
    return run([msms_bin(), *args], code=code, env=env, timeout=timeout)
