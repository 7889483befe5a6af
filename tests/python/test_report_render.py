"""`msms quality-report` renders in a real browser (issue 6).

A small output root is built (`msms synth` + `msms build-shards --splits`), its report is
written, and the HTML is opened in headless Chromium driven over the Chrome DevTools
protocol (CDP, through a websocket): every console message, uncaught exception and browser
log entry is collected (`Runtime.consoleAPICalled`, `Runtime.exceptionThrown`,
`Log.entryAdded`), every network request is recorded (`Network.requestWillBeSent`), the DOM
is queried, and a full-page screenshot is taken (`Page.captureScreenshot`), saved under the
test's tmp dir and copied to /tmp/msms-report.png.

The checker itself is tested: pages with `console.error`, `console.warn`, an uncaught
exception and a missing image must each be caught.

Chromium: `chromium`, `chromium-browser` or `google-chrome` on PATH
(`bash scripts/ensure-chromium.sh` installs Debian's `chromium` as root); the tests skip,
saying so, only when none is there, and fail instead under CI (tests/python/conftest.py).
Run: bash scripts/setup-python.sh && .venv/bin/python -m pytest tests/python/test_report_render.py -q
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import websocket
from msms_cli import run_msms

SCREENSHOT = Path("/tmp/msms-report.png")
CHART_TITLES = [
    "Peaks per spectrum",
    "Precursor m/z",
    "Charge",
    "Retention time",
    "Rejection reasons",
    "Split sizes",
    "Shard sizes",
]
# A laptop screen.
VIEWPORT = (1366, 768)


# --------------------------------------------------------------------------------------
# Chromium over the DevTools protocol


def find_browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageResult:
    """What loading one page produced."""

    console: list[dict] = field(default_factory=list)  # {"level", "text", "source"}
    requests: list[str] = field(default_factory=list)
    loaded: bool = False
    # After the load event: {"ready": document.readyState, "images", "pending"}.
    state: dict | None = None

    @property
    def complete(self) -> bool:
        """The load event fired, the document is complete and no image is still loading."""
        return (
            self.loaded
            and self.state is not None
            and self.state["ready"] == "complete"
            and self.state["pending"] == 0
        )

    def problems(self) -> list[dict]:
        """Console messages, exceptions and log entries at warning level or above."""
        return [m for m in self.console if m["level"] in ("error", "warning", "assert")]


class Browser:
    """Headless Chromium with a CDP connection to its browser endpoint."""

    def __init__(self, binary: str, workdir: Path):
        self.profile = Path(tempfile.mkdtemp(prefix="profile-", dir=workdir))
        self.log = open(workdir / "chromium.log", "wb")
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "--no-sandbox",  # root in a container
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--hide-scrollbars",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while True:
            if port_file.is_file():
                lines = port_file.read_text().split("\n")
                if len(lines) >= 2 and lines[0].strip() and lines[1].strip():
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                log = (workdir / "chromium.log").read_text(errors="replace")
                raise RuntimeError(f"Chromium did not start its DevTools endpoint:\n{log[-3000:]}")
            time.sleep(0.05)
        port, path = lines[0].strip(), lines[1].strip()
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}{path}", timeout=30, suppress_origin=True
        )
        self.ids = itertools.count(1)
        self.pending: list[dict] = []  # events read while waiting for a reply

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30) -> dict:
        msg_id = next(self.ids)
        msg: dict = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self._recv(deadline)
            if reply is None:
                continue
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.pending.append(reply)
        raise TimeoutError(f"no reply to {method} in {timeout} s")

    def _recv(self, deadline: float) -> dict | None:
        self.ws.settimeout(max(0.01, min(1.0, deadline - time.monotonic())))
        try:
            return json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None

    def events(self, seconds: float):
        """Events already read, then those arriving for `seconds` (a poll interval: callers
        wait for a state, not for this time)."""
        while self.pending:
            yield self.pending.pop(0)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ev = self._recv(deadline)
            if ev is not None and "method" in ev:
                yield ev

    def open(self, url: str, width: int, height: int) -> tuple[str, PageResult]:
        """Open `url` in a new tab; collect console, exceptions, log and requests until the
        page is complete: its load event fired, `document.readyState` is "complete" and every
        image is decoded (or failed). Returns the CDP session and what was seen.

        No settling time: the browser sends a session's messages in order, so every event
        the page raised before the final `Runtime.evaluate` answered has been read when its
        reply arrives. (Pages with timers could log later; the report has no script.)"""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call(
            "Target.attachToTarget", {"targetId": target, "flatten": True}
        )["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable", session=session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self.pending.clear()  # about:blank's events
        self.call("Page.navigate", {"url": url}, session=session)
        result = PageResult()
        # A hang guard only: the state waited for is the load event.
        deadline = time.monotonic() + 60
        while not result.loaded and time.monotonic() < deadline:
            for ev in self.events(0.1):
                if ev.get("sessionId") != session:
                    continue
                self._record(ev, result)
                if ev["method"] == "Page.loadEventFired":
                    result.loaded = True
        if result.loaded:
            state = self.call(
                "Runtime.evaluate",
                {
                    "expression": """(async () => {
                        await Promise.allSettled([...document.images].map(i => i.decode()));
                        return {ready: document.readyState,
                                images: document.images.length,
                                pending: [...document.images].filter(i => !i.complete).length};
                    })()""",
                    "awaitPromise": True,
                    "returnByValue": True,
                },
                session=session,
                timeout=60,
            )
            result.state = state["result"].get("value")
        # Everything read before the reply (events the browser sent first).
        while self.pending:
            ev = self.pending.pop(0)
            if ev.get("sessionId") == session:
                self._record(ev, result)
        return session, result

    @staticmethod
    def _record(ev: dict, result: PageResult) -> None:
        method, p = ev["method"], ev.get("params", {})
        if method == "Runtime.consoleAPICalled":
            level = {"warn": "warning", "assert": "assert"}.get(p["type"], p["type"])
            text = " ".join(
                str(a.get("value", a.get("description", ""))) for a in p.get("args", [])
            )
            result.console.append({"level": level, "text": text, "source": "console"})
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text", "")
            result.console.append({"level": "error", "text": text, "source": "exception"})
        elif method == "Log.entryAdded":
            e = p["entry"]
            result.console.append(
                {"level": e["level"], "text": e.get("text", ""), "source": e.get("source", "")}
            )
        elif method == "Network.requestWillBeSent":
            result.requests.append(p["request"]["url"])

    def evaluate(self, session: str, expression: str):
        r = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True},
            session=session,
        )
        if "exceptionDetails" in r:
            raise RuntimeError(f"evaluate: {r['exceptionDetails']}")
        return r["result"].get("value")

    def screenshot(self, session: str, width: int) -> bytes:
        """A PNG of the whole page at `width` CSS pixels."""
        metrics = self.call("Page.getLayoutMetrics", session=session)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = int(size["height"]) + 1
        data = self.call(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            },
            session=session,
            timeout=60,
        )["data"]
        return base64.b64decode(data)

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                try:
                    self.call("Browser.close", timeout=5)
                except Exception:
                    pass
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary = find_browser()
    if binary is None:
        pytest.skip(
            "no chromium, chromium-browser or google-chrome on PATH; "
            "`bash scripts/ensure-chromium.sh` installs Debian's chromium (as root)"
        )
    b = Browser(binary, tmp_path_factory.mktemp("chromium"))
    yield b
    b.close()


# --------------------------------------------------------------------------------------
# The report


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("report")
    h5 = d / "in.hdf5"
    run_msms("synth", h5, "--spectra", "4000", "--faults", "0.03", "--seed", "3")
    root = d / "out"
    run_msms(
        "build-shards", "--input-hdf5", h5, "--output-root", root, "-q",
        "--splits", "train=0.8,val=0.1,test=0.1", "--shard-size", "400kB",
        "--batch-size", "250",
    )
    r = run_msms("quality-report", root)
    assert "7 charts" in r.stdout, r.stdout
    html = root / "_quality_report.html"
    assert html.is_file() and (root / "_quality_report.json").is_file()
    return html


def test_report_renders_without_console_errors(browser, report, tmp_path):
    url = report.as_uri()
    session, page = browser.open(url, *VIEWPORT)
    assert page.complete, f"the page loaded completely: {page.loaded} {page.state}"
    assert page.console == [], f"console/log output: {page.console}"
    # Self-contained: the page itself is the only request (the icon is a data: URL).
    others = [u for u in page.requests if u != url and not u.startswith("data:")]
    assert others == [], f"requests beyond the page: {others}"

    dom = browser.evaluate(
        session,
        """(() => {
            const svgs = [...document.querySelectorAll('svg')];
            return {
              title: document.title,
              h2: [...document.querySelectorAll('figure h2')].map(e => e.textContent),
              svgs: svgs.map(s => { const r = s.getBoundingClientRect();
                                    return [r.width, r.height, s.querySelectorAll('rect').length]; }),
              scripts: document.querySelectorAll('script').length,
              legend: [...document.querySelectorAll('svg text.lg')].map(e => e.textContent),
              limit: document.querySelectorAll('svg line.limit').length,
              tooltips: document.querySelectorAll('svg rect > title').length,
              overflowX: document.documentElement.scrollWidth - window.innerWidth,
              text: document.body.innerText,
            };
        })()""",
    )
    assert dom["title"].startswith("msms quality report: ")
    assert dom["h2"] == CHART_TITLES
    assert len(dom["svgs"]) == 7
    for (w, h, rects), title in zip(dom["svgs"], CHART_TITLES):
        assert w > 300 and h > 100, f"{title}: drawn {w}x{h}"
        assert rects > 0, f"{title}: no bars"
    assert dom["scripts"] == 0
    assert dom["tooltips"] > 50, "bars carry hover titles"
    assert dom["limit"] == 1, "the shard size limit line"
    assert {"train", "val", "test"} <= set(dom["legend"]), dom["legend"]
    assert dom["overflowX"] <= 0, f"horizontal scrolling at {VIEWPORT[0]} px wide"
    manifest = json.loads((report.parent / "_manifest.json").read_text())
    assert manifest["dataset_digest"] in dom["text"]

    png = browser.screenshot(session, VIEWPORT[0])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 20_000, "a page with charts, not a blank image"
    shot = tmp_path / "msms-report.png"
    shot.write_bytes(png)
    try:
        SCREENSHOT.write_bytes(png)
    except OSError:
        pass  # /tmp not writable: the tmp copy stays


BROKEN = {
    "console.error": ('<script>console.error("x")</script>', "x"),
    "console.warn": ('<script>console.warn("careful")</script>', "careful"),
    "exception": ('<script>throw new Error("boom")</script>', "boom"),
    "missing image": ('<img src="no-such-image.png" alt="">', "no-such-image.png"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_the_checker_catches_console_errors(browser, tmp_path, kind):
    """The check above would see a broken page: each of these must be caught."""
    body, needle = BROKEN[kind]
    page_file = tmp_path / "broken.html"
    page_file.write_text(f"<!DOCTYPE html><html><head><meta charset=utf-8>"
                         f'<link rel="icon" href="data:,"><title>t</title></head>'
                         f"<body><p>hello</p>{body}</body></html>")
    _, page = browser.open(page_file.as_uri(), *VIEWPORT)
    assert page.complete, (page.loaded, page.state)
    problems = page.problems()
    assert problems, f"{kind}: nothing caught ({page.console})"
    if kind != "missing image":
        assert any(needle in p["text"] for p in problems), problems
    else:
        assert any(p["source"] == "network" for p in problems) or any(
            needle in p["text"] for p in problems
        ), problems


def test_a_clean_page_gives_no_messages(browser, tmp_path):
    """And the checker does not cry wolf: a plain page with a harmless script is clean."""
    page_file = tmp_path / "clean.html"
    page_file.write_text('<!DOCTYPE html><html><head><meta charset=utf-8>'
                         '<link rel="icon" href="data:,"><title>t</title></head>'
                         "<body><p>hello</p><script>document.title = 'ok'</script></body></html>")
    _, page = browser.open(page_file.as_uri(), *VIEWPORT)
    assert page.complete, (page.loaded, page.state)
    assert page.console == [], page.console
