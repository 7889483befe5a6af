"""No silent skips in CI (issue 17).

With `CI` set in the environment (any value but empty, `0`, `false` or `no`), a test that
would skip fails instead, naming what is missing: a skip in CI means the run checked less than
it claims. Outside CI a skip stays a skip, and `scripts/test.sh` runs pytest with `-rs` so
every skip is listed with its reason. Collection-time skips (a module-level
`pytest.importorskip` or `pytest.skip(allow_module_level=True)`) are turned into failures too.
Expected failures (`xfail`) are not skips and are left alone.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    """True when `CI` is set to anything but an empty, `0`, `false` or `no` value."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _skip_reason(longrepr) -> str:
    # A skip's longrepr is (path, lineno, "Skipped: reason").
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        path, lineno, msg = longrepr
        return f"{msg.removeprefix('Skipped: ')} ({path}:{lineno})"
    return str(longrepr)


def _as_failure(longrepr) -> str:
    return f"skipped, and CI={os.environ.get('CI')!r} forbids skips: {_skip_reason(longrepr)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and not hasattr(rep, "wasxfail") and in_ci():
        rep.outcome = "failed"
        rep.longrepr = _as_failure(rep.longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and in_ci():
        rep.outcome = "failed"
        rep.longrepr = _as_failure(rep.longrepr)


@pytest.fixture(scope="module")
def hf_datasets(tmp_path_factory):
    """Hugging Face `datasets`, imported offline with its caches in the test's temporary
    directory; `(datasets module, HF home)`."""
    home = tmp_path_factory.mktemp("hf_home")
    # Set before the first import, since datasets and huggingface_hub read them when imported.
    os.environ.update(
        HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", HF_HOME=str(home),
        HF_DATASETS_CACHE=str(home / "datasets"), HF_HUB_DISABLE_TELEMETRY="1",
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
    )
    import datasets

    datasets.disable_progress_bars()
    return datasets, home
