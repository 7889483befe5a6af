"""The no-skips-in-CI rule of tests/python/conftest.py, on a small test suite run in-process
by pytester with that conftest: with `CI` set every kind of skip (in a test, in a fixture, at
collection) fails and names its reason; without `CI` the same suite skips; xfail stays xfail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()

SUITE = {
    "test_in_test": """
import pytest
def test_needs_frobnicator():
    pytest.skip("frobnicator not installed")
def test_known_bug():
    pytest.xfail("a known bug, not a skip")
def test_runs():
    assert True
""",
    "test_in_fixture": """
import pytest
@pytest.fixture
def browser():
    pytest.skip("no browser on PATH")
def test_render(browser):
    pass
""",
    "test_at_collection": """
import pytest
pytest.importorskip("msms_no_such_module_for_the_skip_test")
def test_never_collected():
    pass
""",
}


@pytest.fixture
def suite(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(**SUITE)
    return pytester


@pytest.mark.parametrize("ci", ["1", "true", "yes"])
def test_skips_fail_under_ci(suite, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    # A collection error ends the session before any test runs, unless told to go on.
    r = suite.runpytest_inprocess("-rfEs", "-p", "no:cacheprovider", "--continue-on-collection-errors")
    r.assert_outcomes(passed=1, failed=1, errors=2, xfailed=1)
    r.stdout.fnmatch_lines_random(
        [
            f"*test_needs_frobnicator*CI='{ci}' forbids skips: frobnicator not installed*",
            f"*test_render*CI='{ci}' forbids skips: no browser on PATH*",
            f"*test_at_collection*CI='{ci}' forbids skips: could not import "
            "'msms_no_such_module_for_the_skip_test'*",
        ]
    )
    assert r.ret != 0


@pytest.mark.parametrize("ci", [None, "", "0", "false", "no"])
def test_skips_skip_outside_ci(suite, monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    r = suite.runpytest_inprocess("-rfEs", "-p", "no:cacheprovider")
    r.assert_outcomes(passed=1, skipped=3, xfailed=1)
    r.stdout.fnmatch_lines_random(
        ["SKIPPED*frobnicator not installed*", "SKIPPED*no browser on PATH*", "SKIPPED*could not import*"]
    )
    assert r.ret == 0
